"""``fonti ingest``, ``fonti list`` and ``fonti delete``: through the running service, else the store.

Qdrant local mode lets one process own the store folder. When ``fonti serve`` owns it
(or ``--url`` names a service) these commands use the HTTP API; otherwise they open the
store themselves.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from itertools import islice
from typing import Any
from urllib.parse import quote

from ingest.files import FILE_FORMATS, Item, SourceError, iter_sources
from ingest.formats import ArticleInput
from ingest.pipeline import ArticleOutcome, IngestError, IngestReport
from ingest.readers import ReadError
from service.settings import Settings

HTTP_BATCH = 50


def _err(message: str) -> None:
    print(f"fonti: {message}", file=sys.stderr)


def add_ingest_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``fonti ingest``."""
    p.add_argument("paths", nargs="+", help="files, folders (recursive) or - for JSON Lines on stdin")
    p.add_argument("--glob", default="*", help="file pattern inside folders (default: every known type)")
    p.add_argument("--format", default="auto", choices=FILE_FORMATS, help="file format (default: by suffix)")
    p.add_argument("--outlet", default=None, help="outlet of plain articles that name none")
    p.add_argument("--url", default=None, help="send to this running service instead of opening the store")
    p.add_argument(
        "--progress", action="store_true", help="show the progress bar even when not on a terminal"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="print one line per article")


def _with_outlet(items: Iterable[Item], outlet: str | None) -> Iterator[Item]:
    for label, item in items:
        if outlet and isinstance(item, ArticleInput) and not item.outlet:
            item = ArticleInput(**{**vars(item), "outlet": outlet})
        yield label, item


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[ArticleOutcome | IngestError], None]]:
    from tqdm import tqdm

    bar = tqdm(unit="article", disable=not enabled, file=sys.stderr, dynamic_ncols=True)
    started = time.perf_counter()
    chunks = 0

    def update(event: ArticleOutcome | IngestError) -> None:
        nonlocal chunks
        if isinstance(event, ArticleOutcome) and event.status != "skipped":
            chunks += event.chunks
        bar.update(1)
        bar.set_postfix_str(
            f"{chunks / max(time.perf_counter() - started, 1e-6):.1f} chunks/s", refresh=False
        )

    try:
        yield update
    finally:
        bar.close()


def _report_event(event: ArticleOutcome | IngestError, verbose: bool) -> None:
    if isinstance(event, IngestError):
        _err(f"{event.source}: {event.error}")
        return
    for w in event.warnings:
        _err(f"{event.source or event.id}: {w}")
    if verbose:
        print(f"{event.status:9} {event.id}  ({event.chunks} chunks, {len(event.outlets)} outlets)")


def _ingest_http(
    url: str, items: Iterable[Item], on_event: Callable[[Any], None], headers: dict[str, str] | None = None
) -> IngestReport:
    import httpx

    report = IngestReport()
    started = time.perf_counter()
    it = iter(items)
    with httpx.Client(timeout=3600, headers=headers) as client:
        while batch := list(islice(it, HTTP_BATCH)):
            send = [(label, inp) for label, inp in batch if isinstance(inp, ArticleInput)]
            for label, inp in batch:
                if isinstance(inp, ReadError):
                    error = IngestError(source=label, error=inp.message)
                    report.errors.append(error)
                    on_event(error)
            if not send:
                continue
            r = client.post(url + "/v1/articles", json={"articles": [inp.as_request() for _, inp in send]})
            if r.status_code != 200:
                raise RuntimeError(f"{url} answered {r.status_code}: {r.text[:500]}")
            out = r.json()
            for a in out["articles"]:
                outcome = ArticleOutcome(
                    id=a["id"],
                    chunks=a["chunks"],
                    status=a["status"],
                    outlets=a["outlets"],
                    source=send[int(a["source"])][0],
                    warnings=a["warnings"],
                )
                report.articles.append(outcome)
                on_event(outcome)
            for e in out["errors"]:
                error = IngestError(source=send[e["index"]][0], error=e["error"], id=e.get("id"))
                report.errors.append(error)
                on_event(error)
    report.seconds = time.perf_counter() - started
    return report


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    """Ingest paths; exit 0 only when every article of every file went in (or was unchanged)."""
    from service.discovery import client_headers, find_service

    try:
        items = _with_outlet(iter_sources(args.paths, args.glob, args.format), args.outlet)
        first = next(items, None)
    except SourceError as exc:
        _err(str(exc))
        return 2
    if first is None:
        _err("no article files found in " + ", ".join(args.paths))
        return 2
    items = _chain(first, items)
    url = find_service(settings, args.url)
    show = args.progress or sys.stderr.isatty()
    with ExitStack() as stack:
        ingest, store = (None, None) if url else stack.enter_context(_open_store(settings))
        if not url and ingest is None:
            return 2
        with _progress_bar(show) as bar:

            def on_event(event: ArticleOutcome | IngestError) -> None:
                bar(event)
                _report_event(event, args.verbose)

            if url:
                try:
                    report = _ingest_http(url, items, on_event, client_headers(settings))
                except Exception as exc:  # connection refused, 4xx/5xx: say which service and why
                    _err(str(exc))
                    return 1
            else:
                assert ingest is not None
                report = ingest.ingest(items, progress=on_event)
        if store is not None:
            _build_index(store, show)
    print(report.summary() + (f" (through {url})" if url else ""))
    return 1 if report.errors else 0


def _build_index(store: Any, show: bool) -> None:
    """Build the search index of what was written now, so the next start searches it at once (a
    running service builds it in the background instead). The bar shows the time it takes."""
    from tqdm import tqdm

    bar = tqdm(
        desc="building the search index", bar_format="{desc}: {elapsed}", disable=not show, file=sys.stderr
    )

    def tick(elapsed: float) -> None:
        bar.n = int(elapsed)
        bar.refresh()

    try:
        store.build_index(tick)
    finally:
        bar.close()


def _chain(first: Item, rest: Iterator[Item]) -> Iterator[Item]:
    yield first
    yield from rest


@contextmanager
def _open_store(settings: Settings) -> Iterator[tuple[Any, Any]]:
    """``(IngestService, store)`` on the local store, or ``(None, None)`` after printing why not."""
    from ingest.pipeline import IngestService
    from service.backends.embedder import build_embedder
    from service.backends.store import StoreError, build_store
    from service.model_prep import ModelFileError

    try:
        embedder = build_embedder(settings.embed, settings.models_dir)
    except ModelFileError as exc:
        _err(str(exc))
        yield None, None
        return
    try:
        store = build_store(settings.store, embedder.dim, embedder.name)
    except StoreError as exc:
        _err(str(exc))
        yield None, None
        return
    try:
        yield IngestService(embedder, store, settings.embed.batch_size), store
    finally:
        store.close()


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print stored articles: id, chunks, outlets, title (one page, or all with --all)."""
    import json

    from ingest.stored_articles import list_articles
    from service.discovery import client_headers, find_service

    rows: list[dict[str, Any]] = []
    url = find_service(settings, args.url)
    offset = args.offset
    if url:
        import httpx

        while True:
            params = {"limit": args.limit, **({"offset": offset} if offset else {})}
            r = httpx.get(url + "/v1/articles", params=params, headers=client_headers(settings), timeout=60)
            if r.status_code != 200:
                _err(f"{url} answered {r.status_code}: {r.text[:500]}")
                return 1
            page = r.json()
            rows += page["articles"]
            offset = page["next_offset"]
            if not (args.all and offset):
                break
    else:
        with _open_store(settings) as (_, store):
            if store is None:
                return 2
            while True:
                summaries, offset = list_articles(store, args.limit, offset)
                rows += [s.model_dump() for s in summaries]
                if not (args.all and offset):
                    break
    if args.json:
        print(json.dumps({"articles": rows, "next_offset": offset}, ensure_ascii=False, indent=2))
        return 0
    for a in rows:
        print(f"{a['id']}\t{a['chunks']} chunks\t{', '.join(a['outlets'])}\t{a['title']}")
    if offset and not args.all:
        print(f"(more: --offset {offset}, or --all)", file=sys.stderr)
    return 0


def cmd_delete(args: argparse.Namespace, settings: Settings) -> int:
    """Delete articles by id; exit 1 when one of them is not stored."""
    from service.discovery import client_headers, find_service

    url = find_service(settings, args.url)
    missing = 0
    if url:
        import httpx

        for article_id in args.ids:
            r = httpx.delete(
                f"{url}/v1/articles/{quote(article_id, safe='')}",
                headers=client_headers(settings),
                timeout=60,
            )
            if r.status_code == 200:
                print(f"deleted {article_id} ({r.json()['deleted_chunks']} chunks)")
            elif r.status_code == 404:
                missing += 1
                _err(f"{article_id}: not stored")
            else:
                _err(f"{url} answered {r.status_code}: {r.text[:500]}")
                return 1
    else:
        with _open_store(settings) as (ingest, _):
            if ingest is None:
                return 2
            for article_id in args.ids:
                chunks = ingest.delete(article_id)
                if chunks:
                    print(f"deleted {article_id} ({chunks} chunks)")
                else:
                    missing += 1
                    _err(f"{article_id}: not stored")
    return 1 if missing else 0
