"""``fonti migrate``: copy a store into another (a Qdrant Edge folder, a local-mode folder, a server).

A store is named by where it lives:

* ``http(s)://HOST:PORT``: a Qdrant server or cluster (the collection of ``--to-collection``
  or ``FONTI_STORE_COLLECTION``);
* ``local:FOLDER``: qdrant-client's local mode (Fonti before Qdrant Edge);
* ``FOLDER``: Qdrant Edge, as ``FONTI_STORE_PATH=FOLDER`` opens it (``FOLDER/edge/<collection>``).

The source is the configured store (``FONTI_QDRANT_URL``, else the Edge store in
``FONTI_STORE_PATH``, else a local-mode store there) unless ``--from`` names one. Points are
upserted by id in batches (a copy that stopped half way is finished by running it again),
lexical vectors written by another sparse encoder are re-encoded from the stored text, and
the counts are compared at the end. An Edge store copied into a new Edge folder is copied
as files (its generation and metadata: no re-encoding, no index to rebuild). A target with
another schema or embedder is refused, as at start-up.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from service.backends.store import StoreError, VectorStore
from service.backends.store.base import edge_folder
from service.backends.store.copy import Source, copy_points, local_mode_store, verify
from service.backends.store.qdrant_io import open_qdrant_source
from service.settings import StoreSettings

Engine = Literal["edge", "local", "server"]
ENGINE_NAMES = {"edge": "Qdrant Edge", "local": "qdrant-client local mode", "server": "Qdrant server"}


@dataclass(frozen=True)
class StoreSpec:
    """A store named on the command line (or the configured one)."""

    engine: Engine
    settings: StoreSettings

    @property
    def where(self) -> str:
        if self.engine == "server":
            return f"{self.settings.url} (collection {self.settings.collection!r})"
        if self.engine == "local":
            return f"local:{self.settings.path} (collection {self.settings.collection!r})"
        return str(edge_folder(self.settings))

    def same_as(self, other: StoreSpec) -> bool:
        return self.engine == other.engine and self.where == other.where


@dataclass(frozen=True)
class MigrationReport:
    """What a migration did."""

    source: str
    target: str
    copied: int
    source_count: int
    target_before: int
    target_count: int
    how: str


def parse_spec(
    spec: str, base: StoreSettings, api_key: str | None = None, collection: str | None = None
) -> StoreSpec:
    """The store ``spec`` names (see the module docstring); other settings are ``base``'s."""
    update: dict[str, object] = {"collection": collection or base.collection}
    if spec.startswith(("http://", "https://")):
        update |= {"url": spec, "api_key": api_key or base.api_key}
        return StoreSpec("server", base.model_copy(update=update))
    update |= {"url": None, "api_key": None}
    if spec.startswith("local:"):
        return StoreSpec("local", base.model_copy(update={**update, "path": Path(spec[len("local:") :])}))
    return StoreSpec("edge", base.model_copy(update={**update, "path": Path(spec)}))


def configured_source(settings: StoreSettings) -> StoreSpec:
    """The configured store: a server, else the Edge store, else a local-mode store in the folder."""
    if settings.url:
        return StoreSpec("server", settings)
    edge = StoreSpec("edge", settings)
    if not (edge_folder(settings) / "CURRENT").exists() and local_mode_store(
        settings.path, settings.collection
    ):
        return StoreSpec("local", settings)
    return edge


def open_source(spec: StoreSpec) -> Source:
    if spec.engine == "edge":
        from service.backends.store.edge import open_edge_source

        return open_edge_source(edge_folder(spec.settings))
    return open_qdrant_source(spec.settings)


def open_target(spec: StoreSpec, dim: int, embedder: str) -> VectorStore:
    if spec.engine == "edge":
        from service.backends.store.edge import EdgeStore

        return EdgeStore(spec.settings, dim, embedder)
    from service.backends.store.qdrant import QdrantStore

    return QdrantStore(spec.settings, dim, embedder)


def _copy_edge_files(source: StoreSpec, target: StoreSpec) -> bool:
    """Copy an Edge store into a folder without one as files; False when that does not apply."""
    from service.backends.store.edge_folder import EdgeFolder
    from service.backends.store.lexical import encoder

    root = edge_folder(target.settings)
    if source.engine != "edge" or target.engine != "edge" or (root / "CURRENT").exists():
        return False
    src = EdgeFolder(edge_folder(source.settings))  # held: nobody writes while we copy
    try:
        current, meta = src.current(), src.read_meta()
        if current is None or meta is None or meta.sparse != encoder().name:
            return False
        dst = EdgeFolder(root)
        try:
            dst.remove_others(None)
            shutil.copytree(current, root / current.name)
            dst.write_meta(meta)
            dst.make_current(root / current.name)
        finally:
            dst.close()
    finally:
        src.close()
    return True


def migrate(
    source: StoreSpec,
    target: StoreSpec,
    batch: int = 256,
    progress: Callable[[int], None] | None = None,
    index_progress: Callable[[float], None] | None = None,
) -> MigrationReport:
    """Copy every point of ``source`` into ``target``; the counts are checked afterwards."""
    if source.same_as(target):
        raise StoreError(f"source and target are the same store ({source.where})")
    if _copy_edge_files(source, target):
        src = open_source(source)
        try:
            count, meta = src.count(), (src.dense_size, src.embedder)
        finally:
            src.close()
        dst = open_target(target, *meta)
        try:
            held = verify(count, dst)
        finally:
            dst.close()
        return MigrationReport(source.where, target.where, count, count, 0, held, "as files")
    src = open_source(source)
    try:
        dst = open_target(target, src.dense_size, src.embedder)
        try:
            before = dst.count()  # raises StoreError when a server target is unreachable
            copied = copy_points(src, dst, batch, progress)
            source_count = src.count()
            held = verify(source_count, dst)
            dst.build_index(index_progress)
        finally:
            dst.close()
    finally:
        src.close()
    how = "point by point" + (", lexical vectors re-encoded" if _reencodes(src) else "")
    return MigrationReport(source.where, target.where, copied, source_count, before, held, how)


def _reencodes(src: Source) -> bool:
    from service.backends.store.lexical import encoder

    return src.sparse != encoder().name


def add_migrate_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``fonti migrate``."""
    forms = (
        "http[s]://HOST:PORT (a Qdrant server), local:FOLDER (qdrant-client local mode) "
        "or FOLDER (Qdrant Edge)"
    )
    p.add_argument("--to", required=True, help=f"target: {forms}")
    p.add_argument(
        "--from", dest="source", default=None, help="source, same forms (default: the configured store)"
    )
    p.add_argument(
        "--to-api-key", default=None, help="API key of the target server (default FONTI_QDRANT_API_KEY)"
    )
    p.add_argument("--to-collection", default=None, help="target collection (default: the same name)")
    p.add_argument("--batch", type=int, default=256, help="points per read/upsert batch")


def _every(seconds: float, line: str) -> Callable[[float], None]:
    """A progress callback that prints ``line`` with the seconds elapsed every ``seconds``."""
    last = [0.0]

    def tick(elapsed: float) -> None:
        if elapsed - last[0] >= seconds:
            last[0] = elapsed
            print(line.format(elapsed), file=sys.stderr)

    return tick


def cmd_migrate(args: argparse.Namespace, settings: StoreSettings) -> int:
    """Entry point of ``fonti migrate``; returns the exit status."""
    source = parse_spec(args.source, settings) if args.source else configured_source(settings)
    target = parse_spec(args.to, settings, args.to_api_key, args.to_collection)
    print(
        f"copying {ENGINE_NAMES[source.engine]} {source.where} "
        f"to {ENGINE_NAMES[target.engine]} {target.where}",
        file=sys.stderr,
    )
    started = time.monotonic()
    try:
        report = migrate(
            source,
            target,
            batch=args.batch,
            progress=lambda n: print(f"  {n} points copied", file=sys.stderr),
            index_progress=_every(10.0, "  building the search index: {:.0f} s"),
        )
    except StoreError as exc:
        print(f"fonti: {exc}", file=sys.stderr)
        return 2
    print(
        f"{report.copied} points copied ({report.how}) in {time.monotonic() - started:.1f} s; "
        f"source {report.source_count}, target {report.target_count} (held {report.target_before} before)"
    )
    return 0
