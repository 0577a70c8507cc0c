"""Prompt-processing and decode speed of the default model for thread and batch settings.

One fixed prompt (Fonti's system prompt and a user turn with ~900 tokens of passages
from the first dev articles, as Fonti builds it) is run through raw llama-cpp-python in
a fresh subprocess per configuration: prompt processing of the whole uncached prompt
(time to the first token), then decoding ``--decode`` tokens. Configurations run in
``--rounds`` interleaved rounds so a change of machine load hits them all; medians are
printed with the load average. Writes JSON.

    python scripts/bench_threads.py [--rounds 2] [--decode 48] [--build DIR] [--out var/bench/threads.json]

``--build DIR`` adds the default configuration run with another llama-cpp-python build
installed in DIR (``pip install --target DIR ...``), e.g. one compiled with AVX-512.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEV_ARTICLES = REPO.parent / "shared" / "data" / "dev" / "articles"

DEFAULT = {"n_threads": 1, "n_threads_batch": 2, "n_batch": 512, "omp": "PASSIVE", "mmap": True, "build": ""}
CONFIGS: list[dict[str, Any]] = [
    DEFAULT,
    DEFAULT | {"n_batch": 128},
    DEFAULT | {"n_threads_batch": 1},
    DEFAULT | {"n_threads_batch": 1, "n_batch": 128},
    DEFAULT | {"n_threads": 2},
    DEFAULT | {"omp": "ACTIVE"},  # libgomp's default; Fonti sets PASSIVE for its embedder
    DEFAULT | {"mmap": False},
]
KEYS = tuple(DEFAULT)


def fixed_messages(budget: int = 900) -> list[dict[str, str]]:
    """Fonti's prompt for one question over the first dev articles' paragraphs (about ``budget`` tokens)."""
    from types import SimpleNamespace

    from ingest.chunking import chunk_article
    from ingest.formats import ArticleInput, parse_article
    from service.pipeline.prompts import PromptLibrary

    passages: list[Any] = []
    chars = 0
    for path in sorted(DEV_ARTICLES.glob("*.txt")):
        article = parse_article(ArticleInput(text=path.read_text("utf-8"), id=path.name), path.name)
        for c in chunk_article(article):
            if chars > budget * 3.2:  # about 3.2 characters per token in these articles
                break
            passages.append(
                SimpleNamespace(number=len(passages) + 1, outlet=c.outlet, title=c.title, text=c.text)
            )
            chars += len(c.text)
    return PromptLibrary(REPO / "prompts").answer_messages("Che cosa è successo?", "it", passages)


def child(cfg: dict[str, Any]) -> dict[str, Any]:
    """Runs in the subprocess: load, process the prompt uncached, decode; times in seconds."""
    import llama_cpp
    from llama_cpp import Llama

    from service.backends.llm.llama_cpp import _gguf_chat_formatter
    from service.model_prep.gguf import resolve_gguf
    from service.settings import Settings

    settings = Settings()
    llm = Llama(
        model_path=str(resolve_gguf(settings.llm.model_path, settings.models_dir)),
        n_ctx=4096,
        n_threads=cfg["n_threads"],
        n_threads_batch=cfg["n_threads_batch"],
        n_batch=cfg["n_batch"],
        seed=0,
        use_mmap=cfg["mmap"],
        verbose=False,
    )
    messages = fixed_messages()
    llm.create_chat_completion(messages=[{"role": "user", "content": "Ciao"}], max_tokens=1)  # page in
    llm.reset()
    start = time.perf_counter()
    first = last = None
    n = 0
    for chunk in llm.create_chat_completion(
        messages=messages, max_tokens=cfg["decode"], temperature=0.0, seed=0, stream=True
    ):
        if chunk["choices"][0]["delta"].get("content"):
            last = time.perf_counter() - start
            first = first if first is not None else last
            n += 1
    prompt = _gguf_chat_formatter(llm)(messages=messages).prompt
    prompt_tokens = len(llm.tokenize(prompt.encode(), add_bos=False, special=True))
    status = Path("/proc/self/status").read_text()
    hwm = next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmHWM"))
    assert first is not None and last is not None
    return {
        "prompt_tokens": prompt_tokens,
        "ttft_s": round(first, 3),
        "prompt_tok_s": round(prompt_tokens / first, 2),
        "generated": n,
        "decode_tok_s": round((n - 1) / (last - first), 2) if n > 1 and last > first else None,
        "vm_hwm_mib": round(hwm / 1024),
        "avx512": "AVX512 = 1" in llama_cpp.llama_print_system_info().decode(),
    }


def run_config(cfg: dict[str, Any], decode: int, timeout: float) -> dict[str, Any]:
    env = dict(os.environ, OMP_WAIT_POLICY=cfg["omp"], HF_HUB_OFFLINE="1")
    path = [cfg["build"]] if cfg["build"] else []
    env["PYTHONPATH"] = os.pathsep.join([*path, str(REPO), os.environ.get("PYTHONPATH", "")])
    base = cfg | {"load1": os.getloadavg()[0]}
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(cfg | {"decode": decode})],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return base | {"error": f"timed out after {timeout:.0f} s"}
    except subprocess.CalledProcessError as exc:
        return base | {"error": exc.stderr[-500:] or f"exit status {exc.returncode}"}
    return base | json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--decode", type=int, default=48, help="tokens decoded per run")
    parser.add_argument("--timeout", type=float, default=300, help="seconds one configuration may take")
    parser.add_argument("--out", type=Path, default=REPO / "var" / "bench" / "threads.json")
    parser.add_argument("--build", default="", help="folder of another llama-cpp-python build to compare")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    configs = CONFIGS + ([DEFAULT | {"build": args.build}] if args.build else [])
    runs = []
    for r in range(args.rounds):
        for cfg in configs if r % 2 == 0 else configs[::-1]:
            res = run_config(cfg, args.decode, args.timeout)
            runs.append(res)
            print(json.dumps(res), flush=True)
    rows = []
    for cfg in configs:
        mine = [x for x in runs if all(x[k] == cfg[k] for k in KEYS)]
        ok = [x for x in mine if "error" not in x]

        def med(key: str, ok: list[dict[str, Any]] = ok) -> float | None:
            v = [x[key] for x in ok if x.get(key) is not None]
            return round(statistics.median(v), 2) if v else None

        rows.append(
            cfg
            | {
                "build": cfg["build"] or "installed",
                **{
                    k: med(k)
                    for k in ("prompt_tokens", "prompt_tok_s", "ttft_s", "decode_tok_s", "vm_hwm_mib")
                },
                "load1": [round(x["load1"], 1) for x in mine],
                "errors": [x["error"] for x in mine if "error" in x],
            }
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"configs": rows, "runs": runs, "cpus": os.cpu_count()}, indent=1))
    head = ("threads", "batch thr", "n_batch", "omp", "mmap", "pp tok/s", "ttft s", "decode tok/s", "HWM MiB")
    print("\n" + "".join(f"{h:>13}" for h in head) + "  load / build")
    for x in rows:
        cells = [x[k] for k in ("n_threads", "n_threads_batch", "n_batch", "omp", "mmap")]
        cells += [x[k] or "-" for k in ("prompt_tok_s", "ttft_s", "decode_tok_s", "vm_hwm_mib")]
        print(
            "".join(f"{c!s:>13}" for c in cells)
            + f"  {x['load1']} {x['build']} {'; '.join(x['errors'])[:80]}"
        )
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
