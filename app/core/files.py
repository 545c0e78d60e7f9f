"""Durable file-system steps shared by the stores (stdlib only)."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(folder: str | Path) -> None:
    """Flush ``folder``'s entries to disk, so a rename or a new file in it survives a crash.

    Raises:
        OSError: The folder cannot be opened or synced.
    """
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
