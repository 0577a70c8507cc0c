"""The first start after qdrant-client's local mode: its store is copied into Qdrant Edge, once.

Fonti before Qdrant Edge kept its chunks in a local-mode folder (``meta.json`` and
``collection/<name>`` in ``FONTI_STORE_PATH``). When that folder holds one and no Edge store
exists yet, :func:`upgrade_local_mode` copies every point (re-encoding the lexical vectors)
into a new Edge store beside it and says so in one log line. The copy is built under a
temporary name and renamed when the counts agree, so a start cut short begins again (the
points already copied are kept: upserts by id). The local-mode files are left for the user
to delete.
"""

from __future__ import annotations

import logging
import os
import shutil
import time

from service.backends.store.base import StoreError, edge_folder
from service.backends.store.copy import copy_points, local_mode_store, verify
from service.backends.store.edge import EdgeStore
from service.backends.store.edge_folder import CURRENT_FILE
from service.backends.store.qdrant_io import open_qdrant_source
from service.settings import StoreSettings

log = logging.getLogger(__name__)


def upgrade_local_mode(settings: StoreSettings, dim: int, embedder: str) -> None:
    """Copy the local-mode store of ``settings`` into its Edge store when that does not exist yet."""
    root = edge_folder(settings)
    if (
        settings.url
        or (root / CURRENT_FILE).exists()
        or not local_mode_store(settings.path, settings.collection)
    ):
        return
    started = time.monotonic()
    building = root.with_name(f".{root.name}.upgrading")
    source = open_qdrant_source(settings)
    try:
        if source.dense_size != dim or (embedder and source.embedder and source.embedder != embedder):
            raise StoreError(
                f"the qdrant-client local-mode store {source.where} was built with the embedder "
                f"{source.embedder!r} (dense size {source.dense_size}), this configuration uses {embedder!r} "
                f"(dense size {dim}): it cannot become this configuration's store. Set FONTI_EMBED_* back, "
                "or use a new FONTI_STORE_PATH and ingest again; nothing was changed."
            )
        target = EdgeStore(settings, dim, source.embedder or embedder, folder=building)
        try:
            copied = copy_points(source, target)
            held = verify(source.count(), target)
        finally:
            target.close()
    finally:
        source.close()
    if root.exists():
        shutil.rmtree(root)  # an Edge folder without a store in it (nothing to lose)
    os.rename(building, root)
    log.info(
        "store: copied the %d chunks of the qdrant-client local-mode store %s into the Qdrant Edge store "
        "%s in %.1f s (%d there; lexical vectors re-encoded); the local-mode files (%s, %s) are no longer "
        "read and can be deleted",
        copied,
        source.where,
        root,
        time.monotonic() - started,
        held,
        settings.path / "meta.json",
        settings.path / "collection",
    )
