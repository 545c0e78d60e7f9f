"""The ``faiss`` backend's folder steps that make creates and deletes atomic: a collection is
built under a staging name and renamed into place, and deleted by first renaming it into the
trash; ``sweep`` removes what an interrupted create or delete left behind."""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from app.core.files import fsync_dir

logger = logging.getLogger(__name__)

#: Prefixes of folders that are not collections: one being created, one being deleted.
STAGING_PREFIX = ".creating-"
TRASH_PREFIX = ".deleted-"


def create_atomically(root: Path, name: str, fill: Callable[[Path], None]) -> Path:
    """Make ``root/name``: ``fill`` writes its files into a staging folder, which is then
    renamed into place (and the rename made durable). On any failure the staging folder is
    removed and the error raised: nothing is left behind.

    Raises:
        OSError, and whatever ``fill`` raises.
    """
    staging = root / f"{STAGING_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir()
        fill(staging)
        staging.rename(root / name)
        fsync_dir(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return root / name


def move_to_trash(folder: Path) -> Path:
    """Rename a collection folder out of the way (the first, atomic step of a delete).

    Raises:
        OSError: It could not be renamed; it is unchanged.
    """
    trash = folder.with_name(f"{TRASH_PREFIX}{folder.name}-{uuid.uuid4().hex[:8]}")
    folder.rename(trash)
    return trash


def empty_trash(trash: Path) -> None:
    """Remove a renamed folder; what cannot be removed now is swept on the next start."""
    shutil.rmtree(trash, ignore_errors=True)
    if trash.exists():
        logger.warning("files of a deleted collection left in %s", trash.name)


def sweep(root: Path) -> None:
    """Remove what interrupted creates and deletes left in the indexes folder."""
    for folder in root.iterdir():
        if folder.name.startswith((STAGING_PREFIX, TRASH_PREFIX)) and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
