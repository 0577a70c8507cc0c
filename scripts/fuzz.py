"""Fuzz every endpoint with schemathesis against a real uvicorn on loopback.

Starts Fonti (real models, a temporary local store with a few dev articles, API keys
on, reads guarded too so every /v1 route declares its security), then runs
``st run`` on its OpenAPI schema. Passes when no response is a 5xx and every response
conforms to the schema (status code, content type, headers, body). Exit status: that
of schemathesis (0 = no failure found).

    python scripts/fuzz.py                 # make fuzz: 40 examples per operation
    python scripts/fuzz.py --max-examples 3 --phases examples,fuzzing   # the bounded test
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

KEY = "fuzz-key-0123456789"
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance,negative_data_rejection,"
    "positive_data_acceptance,missing_required_header,unsupported_method,ignored_auth"
)


def main(argv: list[str] | None = None) -> int:
    """Run the fuzzer; returns schemathesis's exit status."""
    from service.settings import LLMSettings, ServerSettings, Settings, StoreSettings
    from tests.factories import live_server

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--max-examples", type=int, default=40, help="test cases per API operation")
    p.add_argument("--seed", type=int, default=1, help="hypothesis seed (reproducible runs)")
    p.add_argument("--phases", default="examples,coverage,fuzzing", help="schemathesis phases")
    p.add_argument("--checks", default=CHECKS, help="schemathesis checks")
    p.add_argument("--articles", type=int, default=3, help="dev articles ingested first")
    p.add_argument(
        "--dev-data",
        type=Path,
        default=Path(os.environ.get("FONTI_DEV_DATA", REPO.parent / "shared/data/dev")),
    )
    p.add_argument("--report", type=Path, default=None, help="folder for schemathesis's JUnit report")
    args = p.parse_args(argv)

    st = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if st is None:
        print("fuzz: schemathesis is not installed (pip install -e '.[dev]')", file=sys.stderr)
        return 2
    files = sorted((args.dev_data / "articles").glob("*.txt"))[: args.articles]
    articles = [{"id": f.name, "text": f.read_text("utf-8")} for f in files]
    with tempfile.TemporaryDirectory(prefix="fonti-fuzz-") as tmp:
        settings = Settings(
            store=StoreSettings(path=Path(tmp) / "store"),
            # Short answers keep each generated case to seconds; the pipeline is unchanged.
            llm=LLMSettings(max_tokens=24, warmup=False),
            server=ServerSettings(api_keys=KEY, require_key_for_ask=True, request_deadline_s=120),
        )
        with live_server(settings, articles, headers={"Authorization": f"Bearer {KEY}"}) as (url, _):
            cmd = [
                st,
                "--config-file",
                str(REPO / "scripts" / "schemathesis.toml"),
                "run",
                f"{url}/openapi.json",
                "--header",
                f"Authorization: Bearer {KEY}",
                "--checks",
                args.checks,
                "--max-examples",
                str(args.max_examples),
                "--seed",
                str(args.seed),
                "--phases",
                args.phases,
                "--workers",
                "1",
                "--generation-database",
                "none",
                "--request-timeout",
                "180",
                "--no-color",
            ]
            if args.report:
                cmd += ["--report", "junit", "--report-dir", str(args.report)]
            print(
                "fuzz:",
                " ".join(c if "Bearer" not in c else "Authorization: Bearer ***" for c in cmd),
                flush=True,
            )
            return subprocess.run(cmd, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
