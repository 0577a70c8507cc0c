"""A bounded schemathesis run (scripts/fuzz.py, the same as `make fuzz` with fewer cases):
every endpoint of a real uvicorn with the real models, no 5xx, no schema violation."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.factories import REPO

pytestmark = pytest.mark.e2e


def test_schemathesis_finds_no_5xx_and_no_schema_violation():
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    r = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "fuzz.py"),
            "--max-examples",
            "4",
            "--phases",
            "examples,fuzzing",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    print(r.stdout[-4000:])
    assert r.returncode == 0, r.stdout[-8000:] + r.stderr[-3000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", r.stdout)
    tested = re.search(r"Tested: (\d+)", r.stdout)
    assert selected and tested, r.stdout[-3000:]
    assert selected.group(1) == selected.group(2) == tested.group(1)  # every operation was fuzzed
    assert " failed" not in r.stdout
