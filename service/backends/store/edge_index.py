"""The live Edge shard of a store, and the builds of its search index that replace it.

``EdgeShard.optimize()`` builds the HNSW index in Rust without releasing Python's GIL:
run in the serving process it would stop every request for as long as it takes
(~1.5 minutes per 100k chunks on 2 cores). So a build works on a copy:

1. under the write lock (reads go on), the live generation is flushed and copied into
   the next generation folder; from then on the ids of points written are remembered;
2. a child process (niced in the background) opens the copy and optimises it, while the
   live shard keeps answering: new points are searched exactly in its appendable segment;
3. under the write lock, the built shard is opened, the remembered points are copied
   from the live shard into it (or deleted from it), ``CURRENT`` names it, and it
   replaces the live shard; the old generation is deleted.

A crash at any step leaves ``CURRENT`` naming a complete generation (see
:mod:`.edge_folder`). The child dies with its parent (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from service.backends.store.edge_folder import EdgeFolder

log = logging.getLogger(__name__)
T = TypeVar("T")

# The child: dies with its parent, opens the copy, optimises it, closes it (which flushes).
_OPTIMISE = """
import ctypes, os, signal, sys
ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[2]):
    sys.exit(3)
if sys.argv[3] == "background":
    os.nice(10)
from qdrant_edge import EdgeShard
shard = EdgeShard.load(sys.argv[1])
shard.optimize()
shard.close()
"""
SYNC_BATCH = 256


class LiveShard:
    """The open shard, guarded: reads take ``lock``; writes take ``write_lock`` then ``lock``."""

    def __init__(self, folder: EdgeFolder, shard: Any, reopen: Callable[[Path], Any]):
        self.folder = folder
        self._shard = shard
        self._reopen = reopen  # opens a generation folder with the store's config
        self.lock = threading.RLock()
        self.write_lock = threading.RLock()
        self._touched: set[str] | None = None
        self._build: _Build | None = None

    def read(self, call: Callable[[Any], T]) -> T:
        with self.lock:
            return call(self._shard)

    def write(self, call: Callable[[Any], T], ids: Iterable[str] | Callable[[], Iterable[str]]) -> T:
        """Run a write; ``ids`` are the points it may change, remembered while a build runs (a
        callable is called then only, before the write)."""
        with self.write_lock:
            if self._touched is not None:
                self._touched.update(ids() if callable(ids) else ids)
            with self.lock:
                return call(self._shard)

    @property
    def building(self) -> bool:
        return self._build is not None

    def start_build(self, foreground: bool) -> None:
        """Copy the live generation and start optimising the copy (no-op while one runs)."""
        with self.write_lock:
            if self._build is not None:
                return
            target = self.folder.next_generation()
            with self.lock:
                self._shard.flush()
                live = self.folder.current()
            assert live is not None
            started = time.monotonic()
            shutil.copytree(live, target)
            log.info(
                "store: copied %s to %s in %.1f s to build its search index",
                live,
                target,
                time.monotonic() - started,
            )
            self._touched = set()
            self._build = _Build(self, target, foreground)

    def wait_build(self, progress: Callable[[float], None] | None = None) -> None:
        build = self._build
        if build is not None:
            build.wait(progress)

    def _finish(self, target: Path, ok: bool) -> None:
        """Called by the build's thread when the child exited."""
        with self.write_lock:
            try:
                if ok:
                    self._swap(target)
                else:
                    shutil.rmtree(target, ignore_errors=True)
            except Exception:
                log.exception(
                    "store: the index build in %s could not be swapped in; the store is unchanged", target
                )
                shutil.rmtree(target, ignore_errors=True)
            finally:
                self._touched = None
                self._build = None

    def _swap(self, target: Path) -> None:
        from qdrant_edge import UpdateOperation

        built = self._reopen(target)
        try:
            touched = sorted(self._touched or ())
            for start in range(0, len(touched), SYNC_BATCH):
                ids = touched[start : start + SYNC_BATCH]
                with self.lock:
                    records = self._shard.retrieve(ids, with_payload=True, with_vector=True)
                present = {str(r.id) for r in records}
                gone: list[Any] = [i for i in ids if i not in present]
                if records:
                    from qdrant_edge import Point

                    built.update(
                        UpdateOperation.upsert_points([Point(r.id, r.vector, r.payload) for r in records])
                    )
                if gone:
                    built.update(UpdateOperation.delete_points(gone))
            built.flush()
            self.folder.make_current(target)
        except BaseException:
            built.close()
            raise
        with self.lock:
            old, self._shard = self._shard, built
            old.close()
        self.folder.remove_others(target)

    def close(self) -> None:
        build = self._build
        if build is not None:
            build.stop()
        with self.write_lock, self.lock:
            if self._shard is not None:
                self._shard.close()
                self._shard = None


class _Build:
    """One child process optimising a copy, and the thread that waits for it."""

    def __init__(self, live: LiveShard, target: Path, foreground: bool):
        self._live = live
        self._target = target
        self._started = time.monotonic()
        mode = "foreground" if foreground else "background"
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _OPTIMISE, str(target), str(os.getpid()), mode],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._done = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="fonti-store-index", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        _, err = self._proc.communicate()
        ok = self._proc.returncode == 0 and not self._stopped
        if not ok and not self._stopped:
            log.warning(
                "store: building the search index failed (exit %s): %s",
                self._proc.returncode,
                err.decode(errors="replace").strip()[-500:],
            )
        elif ok:
            log.info("store: search index built in %.1f s", time.monotonic() - self._started)
        try:
            self._live._finish(self._target, ok)
        finally:
            self._done.set()

    def wait(self, progress: Callable[[float], None] | None = None) -> None:
        while not self._done.wait(0.5):
            if progress is not None:
                progress(time.monotonic() - self._started)

    def stop(self) -> None:
        self._stopped = True
        if self._proc.poll() is None:
            self._proc.kill()
        self._done.wait()
