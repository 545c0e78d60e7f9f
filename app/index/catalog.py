"""FolderCatalog: the collections of the ``faiss`` backend, one folder each under the indexes
folder (``app.index.collection``). One process owns the folder: nothing else changes it."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

from app.core.errors import ConflictError, storage_error
from app.index.base import ResolveTransform, VectorTransform
from app.index.collection import STORE_FILE, WHITENING_DIR, Collection
from app.index.folders import empty_trash, move_to_trash, sweep
from app.index.store import DocumentStore
from app.transforms.whitening import Whitening


class FolderCatalog:
    """Collections as folders under ``root`` (see ``CollectionCatalog``).

    Args:
        root: The indexes folder (created if missing).
    """

    shared = False

    def __init__(self, root: Path) -> None:
        self.root = root
        self.read_only: str | None = None

    def start(self) -> None:
        """Create the folder and probe that it can be written (else every collection opens
        read-only, ``read_only`` saying why); clear interrupted creates and deletes."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-probe-{uuid.uuid4().hex[:8]}"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            self.read_only = str(storage_error("writing to the indexes folder", exc))
        else:
            sweep(self.root)

    def names(self) -> list[str]:
        """The folders holding a store, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(
            folder.name
            for folder in self.root.iterdir()
            if not folder.name.startswith(".") and (folder / STORE_FILE).is_file()
        )

    def revision(self, name: str) -> str | None:
        """The name while its folder exists (only this process changes it)."""
        return name if (self.root / name).exists() else None

    def open(self, name: str, resolve: ResolveTransform) -> Collection:
        """Open and reconcile ``root/name``; its own whitening comes from its
        ``whitening-<id>/`` folder, and older leftovers of refits are removed."""
        folder = self.root / name
        store = DocumentStore(folder / STORE_FILE, read_only=self.read_only is not None)
        try:
            meta = store.get_meta()
            transform = resolve(meta)
            own = folder / (meta.get("whitening_dir") or WHITENING_DIR)
            if transform is None and own.is_dir():
                transform = Whitening.load(own, dimension=int(meta["dimension"]))
            collection = Collection(folder, store, transform, writable=self.read_only is None)
            collection.reconcile()
        except BaseException:
            store.close()
            raise
        current = meta.get("whitening_dir")
        if self.read_only is None and current is not None:
            for leftover in folder.glob(f"{WHITENING_DIR}*"):
                if leftover.name != current and leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
        return collection

    def create(self, meta: dict[str, Any], transform: VectorTransform | None) -> Collection:
        """``Collection.create`` under ``root``; ``ConflictError`` when the name's folder exists."""
        if (self.root / str(meta["name"])).exists():
            raise ConflictError(f"collection {meta['name']!r} already exists")
        return Collection.create(self.root, meta, transform)

    def remove(self, name: str) -> None:
        """Move the folder out of the way (atomic), then delete it."""
        try:
            trash = move_to_trash(self.root / name)
        except OSError as exc:
            raise storage_error(f"deleting collection {name!r}", exc) from None
        empty_trash(trash)

    def close(self) -> None:
        """Nothing to release."""
