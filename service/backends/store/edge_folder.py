"""The folder of a Qdrant Edge store: its owner lock, what it was built with, and its generations.

``FONTI_STORE_PATH/edge/<collection>/`` holds

* ``owner.lock``: locked (``flock``) by the one process that has the store open, and naming
  it (pid, command, start time), so a second process gets an error that says who holds it;
* ``fonti.json``: what the store was built with (dense size, embedder, sparse encoder);
* ``CURRENT``: the name of the live generation;
* ``gen-NNNNNN/``: Edge shards (segments, WAL, ``edge_config.json``). One is live; the next
  one exists only while its search index is built from a copy (:mod:`.edge_index`).

``CURRENT`` is replaced atomically, so a crash at any moment leaves the live generation
whole; folders it does not name are leftovers and are removed at the next open.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from service.backends.store.base import StoreError

LOCK_FILE = "owner.lock"
META_FILE = "fonti.json"
CURRENT_FILE = "CURRENT"
GENERATION = "gen-{:06d}"


@dataclass(frozen=True)
class StoreMeta:
    """What the vectors of a store mean; a store is only opened with the same values."""

    dense_size: int
    embedder: str
    sparse: str
    format: int = 1


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EdgeFolder:
    """One store folder, locked by this process for as long as the object lives (see :meth:`close`)."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._lock_fd: int | None = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder()
            os.close(self._lock_fd)
            self._lock_fd = None
            raise StoreError(
                f"the store folder {root} is in use by another process ({holder}). Send articles "
                "through its API with `fonti ingest --url http://HOST:PORT`, or stop it first."
            ) from None
        os.ftruncate(self._lock_fd, 0)
        started = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        record = {"pid": os.getpid(), "command": " ".join(sys.argv)[:300], "since": started}
        os.pwrite(self._lock_fd, json.dumps(record).encode(), 0)

    def _holder(self) -> str:
        try:
            record = json.loads((self.root / LOCK_FILE).read_text("utf-8"))
            return f"pid {record['pid']}: {record['command']!r} since {record['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "a process that did not say which"

    # --- metadata -------------------------------------------------------------------------
    def read_meta(self) -> StoreMeta | None:
        try:
            raw = json.loads((self.root / META_FILE).read_text("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StoreError(
                f"{self.root / META_FILE} is unreadable ({exc}); the store cannot be opened"
            ) from exc
        return StoreMeta(
            dense_size=int(raw["dense_size"]),
            embedder=str(raw["embedder"]),
            sparse=str(raw["sparse"]),
            format=int(raw.get("format", 1)),
        )

    def write_meta(self, meta: StoreMeta) -> None:
        _write_atomic(self.root / META_FILE, json.dumps(asdict(meta), indent=1) + "\n")

    # --- generations ----------------------------------------------------------------------
    def current(self) -> Path | None:
        """The live generation, None for a new store."""
        try:
            name = (self.root / CURRENT_FILE).read_text("utf-8").strip()
        except FileNotFoundError:
            return None
        path = self.root / name
        if not name.startswith("gen-") or not path.is_dir():
            raise StoreError(f"{self.root / CURRENT_FILE} names {name!r}, which is not a generation here")
        return path

    def next_generation(self) -> Path:
        numbers = [int(p.name[4:]) for p in self.root.glob("gen-*") if p.name[4:].isdigit()]
        return self.root / GENERATION.format(max(numbers, default=0) + 1)

    def make_current(self, generation: Path) -> None:
        _write_atomic(self.root / CURRENT_FILE, generation.name + "\n")

    def remove_others(self, keep: Path | None) -> None:
        """Delete the generations that are not ``keep`` (leftovers of a build or a swap)."""
        for path in self.root.glob("gen-*"):
            if path != keep:
                shutil.rmtree(path, ignore_errors=True)

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
