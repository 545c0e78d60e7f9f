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


def write_durably(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and flush it to disk before returning.

    Serialising in memory first and writing with Python's file I/O means a full or read-only
    disk surfaces as an ``OSError`` with its errno, whichever library made the bytes.

    Raises:
        OSError: The file could not be written (``errno.ENOSPC`` when the disk is full...).
    """
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
