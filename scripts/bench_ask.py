"""Answer latency through Fonti's HTTP API vs raw llama-cpp-python on the identical prompts, same run.

Starts ``fonti serve`` in a subprocess (fresh store in a temporary folder, the
environment's settings, FONTI_LLM_PROMPT_LOG on), ingests the articles over HTTP and
asks each question with streaming, measuring as a client: time to first token (TTFT),
last token, total. The service's prompt log gives the exact messages it sent, the
prompt tokens and how many of them llama.cpp reused from its KV cache. Right after
each answer (never both computing at once), this process runs the same messages
through ``llama_cpp.Llama.create_chat_completion`` with the same settings and
max_tokens = Fonti's generated token count:

- ``raw``: with the KV cache holding exactly the prefix Fonti had cached, so both
  process the same uncached tokens (the TTFT and decode baseline);
- ``raw_uncached`` (every ``--uncached-every``-th question): with an empty cache, so the
  whole prompt, the fixed system prefix included, is processed (the cache effect).

Token identity is checked on llama.cpp's own state: after the raw run, its context must
start with the prompt tokens Fonti reported. At the end it reads the peak RSS (VmHWM)
of the serving process. Prints medians, p95 and ratios; writes JSON.

    python scripts/bench_ask.py [--limit N] [--uncached-every 3] [--out var/bench/ask.json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEV = REPO.parent / "shared" / "data" / "dev"


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    return v[max(0, min(len(v) - 1, round(q / 100 * len(v) + 0.5) - 1))]


def proc_status(pid: int) -> dict[str, int]:
    """VmHWM / VmRSS (kB) of a process, and its Pss from smaps_rollup."""
    out: dict[str, int] = {}
    for name in ("status", "smaps_rollup"):
        try:
            lines = Path(f"/proc/{pid}/{name}").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS", "Pss") and rest.split():
                out[key + "_kB"] = int(rest.split()[0])
    return out


def rss_by_mapping(pid: int, top: int = 8) -> dict[str, int]:
    """Resident kB of a process grouped by mapped file (anonymous memory as '[anon]'), largest first."""
    sizes: dict[str, int] = {}
    name = "[anon]"
    try:
        lines = Path(f"/proc/{pid}/smaps").read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
            name = head[5] if len(head) > 5 else "[anon]"
            name = name if name.startswith("[") else Path(name).name
        elif line.startswith("Rss:"):
            sizes[name] = sizes.get(name, 0) + int(head[1])
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1])[:top])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ask(client: Any, question: str) -> dict[str, Any]:
    """One streamed /v1/ask; client-side times in seconds and the final body."""
    start = time.perf_counter()
    first = last = None
    event, done = "", None
    with client.stream("POST", "/v1/ask", json={"question": question, "stream": True}) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:].strip()
            elif line.startswith("data: "):
                if event == "token":
                    last = time.perf_counter() - start
                    first = first if first is not None else last
                elif event == "done":
                    done = json.loads(line[6:])
    if done is None:
        raise RuntimeError("no 'done' event")
    return {"ttft_s": first, "last_token_s": last, "total_s": time.perf_counter() - start, "body": done}


def common_prefix(a: Any, b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def raw_run(
    llm: Any, messages: list[dict[str, str]], max_tokens: int, s: Any, prefix: str = "", formatter: Any = None
) -> dict[str, Any]:
    """Plain ``create_chat_completion`` (stream) with Fonti's sampling settings; times in seconds.

    With a ``prefix`` (Fonti prefills the reply), the same chat template rendered and
    continued with ``create_completion``, as the service does.
    """
    from service.backends.llm.llama_cpp import chunk_text, continue_reply

    start = time.perf_counter()
    first = last = None
    deltas = 0
    common = {"max_tokens": max_tokens, "temperature": s.temperature, "seed": s.seed, "stream": True}
    if prefix:
        rendered = formatter(messages=messages)
        ids = llm.tokenize((rendered.prompt + prefix).encode(), add_bos=False, special=True)
        chunks = continue_reply(llm, rendered, ids, **common)
    else:
        chunks = llm.create_chat_completion(messages=messages, **common)
    for chunk in chunks:
        if chunk_text(chunk):
            last = time.perf_counter() - start
            first = first if first is not None else last
            deltas += 1
    return {"ttft_s": first, "last_token_s": last, "total_s": time.perf_counter() - start, "deltas": deltas}


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}s"


def decode_rate(tokens: float, first: float | None, last: float | None) -> float | None:
    """(generated tokens - 1) / (last token - first token)."""
    if first is None or last is None or tokens < 2 or last <= first:
        return None
    return (tokens - 1) / (last - first)


def start_service(tmp: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        FONTI_STORE_PATH=str(tmp / "store"),
        FONTI_HOST="127.0.0.1",
        FONTI_PORT=str(port),
        FONTI_LLM_PROMPT_LOG=str(log),
        HF_HUB_OFFLINE="1",
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    out = (tmp / "serve.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve"], env=env, stdout=out, stderr=subprocess.STDOUT
    )


def wait_ready(client: Any, proc: subprocess.Popen[bytes], tmp: Path) -> float:
    start = time.perf_counter()
    while True:
        if proc.poll() is not None:
            raise RuntimeError("fonti serve exited:\n" + (tmp / "serve.log").read_text()[-3000:])
        try:
            if client.get("/readyz").status_code == 200:
                return time.perf_counter() - start
        except Exception:
            pass
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=Path, default=DEV / "questions.jsonl")
    parser.add_argument("--articles", type=Path, default=DEV / "articles")
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions")
    parser.add_argument(
        "--uncached-every", type=int, default=3, help="raw run with an empty cache on every N-th question"
    )
    parser.add_argument("--out", type=Path, default=REPO / "var" / "bench" / "ask.json")
    args = parser.parse_args()
    # The process environment the service sets before its models load (offline, passive
    # OpenMP threads); the same here, so the comparison isolates what Fonti adds.
    from service.backends.runtime import model_runtime_env

    model_runtime_env()

    import httpx

    from ingest.files import iter_sources
    from ingest.readers import ReadError
    from service.evaluation.runner import load_questions
    from service.settings import Settings

    questions = load_questions(args.questions)[: args.limit]
    settings = Settings()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="fonti-bench-ask-") as tmp_name:
        tmp = Path(tmp_name)
        port, log = free_port(), tmp / "prompts.jsonl"
        proc = start_service(tmp, port, log)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=900) as client:
                startup_s = wait_ready(client, proc, tmp)
                after_start = proc_status(proc.pid)
                items = []
                for label, item in iter_sources([str(args.articles)]):
                    if isinstance(item, ReadError):
                        raise RuntimeError(f"{label}: {item.message}")
                    items.append(item.as_request())
                t = time.perf_counter()
                client.post("/v1/articles", json={"articles": items}).raise_for_status()
                ingest_s = time.perf_counter() - t
                after_ingest = proc_status(proc.pid)
                rows = run_questions(client, questions, log, settings, args.uncached_every, args.out)
                final = proc_status(proc.pid) | {"rss_by_mapping_kB": rss_by_mapping(proc.pid)}
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    memory = {"after_startup": after_start, "after_ingest": after_ingest, "after_questions": final}
    result = summarise(rows, settings, startup_s, ingest_s, memory, load_start, os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": result, "questions": rows}, indent=1, ensure_ascii=False))
    print_summary(result)
    print(f"-> {args.out}")
    return 0 if result["token_identical"] else 1


def run_questions(
    client: Any, questions: list[dict[str, Any]], log: Path, settings: Any, uncached_every: int, out: Path
) -> list[dict[str, Any]]:
    """Each question through Fonti, then the same prompt through the raw model in this process.

    The rows so far are written to ``out`` after each question; Ctrl-C stops after the
    current one and the summary covers the questions done.
    """
    rows: list[dict[str, Any]] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        for row in _measure(client, questions, log, settings, uncached_every):
            rows.append(row)
            out.write_text(json.dumps({"partial": True, "questions": rows}, indent=1, ensure_ascii=False))
    except KeyboardInterrupt:
        print(f"interrupted: {len(rows)} questions measured", file=sys.stderr)
    return rows


def _measure(
    client: Any, questions: list[dict[str, Any]], log: Path, settings: Any, uncached_every: int
) -> Iterator[dict[str, Any]]:

    from service.backends.llm.llama_cpp import _gguf_chat_formatter, open_llama
    from service.model_prep.gguf import resolve_gguf

    s = settings.llm
    raw = open_llama(s, resolve_gguf(s.model_path, settings.models_dir), s.n_ctx)
    formatter = _gguf_chat_formatter(raw)
    seen = 0
    for i, q in enumerate(questions):
        row: dict[str, Any] = {"id": q["id"], "question": q["question"], "load1": os.getloadavg()[0]}
        fonti = ask(client, q["question"])
        body = fonti.pop("body")
        records = [json.loads(x) for x in log.read_text("utf-8").splitlines()[seen:]] if log.exists() else []
        seen += len(records)
        answer_records = [r for r in records if r["slot"] == "answer"]
        row["fonti"] = fonti | {k: body[k] for k in ("timings", "abstained", "answer")}
        if not answer_records:  # no answer generation: off-topic, missing figures, recheck
            row["llm"] = False
            yield row
            continue
        rec = answer_records[-1]
        row["llm"] = True
        row["fonti"]["server"] = {k: rec[k] for k in ("prompt_tokens", "cached_tokens", "completion_tokens")}
        row["fonti"]["server"] |= {"ttft_s": rec["first_token_s"], "total_s": rec["total_s"]}
        messages, k = rec["messages"], max(1, int(rec["completion_tokens"]))
        prefix = rec.get("prefix", "")
        prompt = formatter(messages=messages).prompt + prefix
        ids = list(raw.tokenize(prompt.encode(), add_bos=False, special=True))
        cached = int(rec["cached_tokens"])
        if uncached_every and i % uncached_every == 0:
            raw.reset()
            row["raw_uncached"] = raw_run(raw, messages, 1, s, prefix, formatter)
        if common_prefix(raw._input_ids, ids) < cached:
            raw.reset()
            raw.eval(ids[:cached])  # untimed: give the raw model the same cached prefix Fonti had
        raw.n_tokens = cached
        row["raw"] = raw_run(raw, messages, k, s, prefix, formatter)
        row["raw"]["generated_tokens"] = max(row["raw"]["deltas"], raw.n_tokens - len(ids))
        row["token_identical"] = len(ids) == rec["prompt_tokens"] and list(raw.input_ids[: len(ids)]) == ids
        row["uncached_tokens"] = len(ids) - cached
        f, r = row["fonti"], row["raw"]
        print(
            f"{q['id']:>6} prompt {len(ids):4d} (cached {cached:4d}) gen {k:3d} | fonti ttft "
            f"{_s(f['ttft_s'])} total {_s(f['total_s'])} | raw ttft {_s(r['ttft_s'])} "
            f"total {_s(r['total_s'])}"
            + (f" uncached {_s(row['raw_uncached']['ttft_s'])}" if "raw_uncached" in row else "")
            + f" | identical {row['token_identical']} | load {row['load1']:.1f}",
            flush=True,
        )
        yield row


def _stats(values: list[float | None]) -> dict[str, float | None]:
    v = [x for x in values if x is not None]
    med = statistics.median(v) if v else None
    return {"n": len(v), "median": med and round(med, 3), "p95": (p := pct(v, 95)) and round(p, 3)}


def summarise(
    rows: list[dict[str, Any]],
    settings: Any,
    startup_s: float,
    ingest_s: float,
    memory: dict[str, Any],
    load_start: tuple[float, float, float],
    load_end: tuple[float, float, float],
) -> dict[str, Any]:
    """Medians, p95 and Fonti/raw ratios over the questions that reached the LLM."""
    gen = [r for r in rows if r["llm"]]
    unc = [r for r in gen if "raw_uncached" in r]

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a and b else None

    def f_decode(r: dict[str, Any]) -> float | None:
        f = r["fonti"]
        return decode_rate(f["server"]["completion_tokens"], f["ttft_s"], f["last_token_s"])

    def r_decode(r: dict[str, Any]) -> float | None:
        return decode_rate(r["raw"]["generated_tokens"], r["raw"]["ttft_s"], r["raw"]["last_token_s"])

    table = {
        "retrieval_ms": _stats([r["fonti"]["timings"].get("retrieval_ms") for r in rows]),
        "prompt_tokens": _stats([r["fonti"]["server"]["prompt_tokens"] for r in gen]),
        "cached_prompt_tokens": _stats([r["fonti"]["server"]["cached_tokens"] for r in gen]),
        "uncached_prompt_tokens": _stats([r["uncached_tokens"] for r in gen]),
        "generated_tokens": _stats([r["fonti"]["server"]["completion_tokens"] for r in gen]),
        "fonti_ttft_s": _stats([r["fonti"]["ttft_s"] for r in gen]),
        "raw_ttft_s": _stats([r["raw"]["ttft_s"] for r in gen]),
        "fonti_decode_tok_s": _stats([f_decode(r) for r in gen]),
        "raw_decode_tok_s": _stats([r_decode(r) for r in gen]),
        "fonti_total_s": _stats([r["fonti"]["total_s"] for r in gen]),
        "raw_total_s": _stats([r["raw"]["total_s"] for r in gen]),
        "fonti_total_s_all_questions": _stats([r["fonti"]["total_s"] for r in rows]),
        "ttft_ratio_fonti_raw": _stats([ratio(r["fonti"]["ttft_s"], r["raw"]["ttft_s"]) for r in gen]),
        "decode_ratio_fonti_raw": _stats([ratio(f_decode(r), r_decode(r)) for r in gen]),
        "raw_prompt_tok_s": _stats(
            [r["uncached_tokens"] / r["raw"]["ttft_s"] for r in gen if r["raw"]["ttft_s"]]
        ),
    }
    within = [
        r["fonti"]["ttft_s"] <= 1.1 * r["raw"]["ttft_s"] + 0.2
        for r in gen
        if r["fonti"]["ttft_s"] is not None and r["raw"]["ttft_s"] is not None
    ]
    cache = {
        "questions": len(unc),
        "prompt_tokens_median": _stats([r["fonti"]["server"]["prompt_tokens"] for r in unc])["median"],
        "raw_ttft_uncached_s": _stats([r["raw_uncached"]["ttft_s"] for r in unc]),
        "raw_ttft_prefix_cached_s": _stats([r["raw"]["ttft_s"] for r in unc]),
        "fonti_ttft_s": _stats([r["fonti"]["ttft_s"] for r in unc]),
        "ratio_cached_vs_uncached": _stats(
            [ratio(r["raw"]["ttft_s"], r["raw_uncached"]["ttft_s"]) for r in unc]
        ),
        "cache_hit_rate": round(
            sum(r["fonti"]["server"]["cached_tokens"] for r in gen)
            / max(1, sum(r["fonti"]["server"]["prompt_tokens"] for r in gen)),
            3,
        ),
    }
    s = settings.llm
    return {
        "questions": len(rows),
        "reached_llm": len(gen),
        "token_identical": all(r["token_identical"] for r in gen),
        "settings": {
            "n_threads": s.n_threads,
            "n_threads_batch": s.n_threads_batch,
            "n_batch": s.n_batch,
            "n_ctx": s.n_ctx,
            "n_gpu_layers": s.n_gpu_layers,
            "passage_token_budget": settings.retrieval.passage_token_budget,
        },
        "table": table,
        "ttft_within_10pct_plus_0_2s": f"{sum(within)} of {len(within)}",
        "kv_cache": cache,
        "startup_s": round(startup_s, 2),
        "ingest_s": round(ingest_s, 2),
        "serving_process_memory_kB": memory,
        "load_average": {"start": load_start, "end": load_end},
        "cpus": os.cpu_count(),
        "llama_cpp": _build_info(),
    }


def _build_info() -> str:
    """The llama.cpp build both processes load (same PYTHONPATH): version and CPU features."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode().strip()
    return f"{llama_cpp.__version__} {llama_cpp.__file__}: {info}"


def print_summary(res: dict[str, Any]) -> None:
    print(
        f"\n{res['questions']} questions, {res['reached_llm']} reached the LLM; settings {res['settings']}; "
        f"token-identical prompts: {res['token_identical']}"
    )
    print(f"{'':32}{'median':>10}{'p95':>10}{'n':>5}")
    for name, st in res["table"].items():
        med = "-" if st["median"] is None else f"{st['median']:.3f}"
        p95 = "-" if st["p95"] is None else f"{st['p95']:.3f}"
        print(f"{name:32}{med:>10}{p95:>10}{st['n']:>5}")
    print(f"Fonti TTFT <= 1.1 x raw + 0.2 s: {res['ttft_within_10pct_plus_0_2s']}")
    c = res["kv_cache"]
    print(
        f"KV cache ({c['questions']} questions, median prompt {c['prompt_tokens_median']} tokens): raw TTFT "
        f"uncached {c['raw_ttft_uncached_s']['median']} s, with the prefix cached "
        f"{c['raw_ttft_prefix_cached_s']['median']} s (ratio {c['ratio_cached_vs_uncached']['median']}); "
        f"Fonti {c['fonti_ttft_s']['median']} s; prompt tokens reused overall: {c['cache_hit_rate']:.1%}"
    )
    m = res["serving_process_memory_kB"]
    print(
        f"serving process: start-up {res['startup_s']} s, ingest {res['ingest_s']} s; peak RSS (VmHWM) "
        f"{m['after_questions'].get('VmHWM_kB', 0) / 1024:.0f} MiB, RSS now "
        f"{m['after_questions'].get('VmRSS_kB', 0) / 1024:.0f} MiB, PSS "
        f"{m['after_questions'].get('Pss_kB', 0) / 1024:.0f} MiB"
    )
    print(f"load average start {res['load_average']['start']}, end {res['load_average']['end']}")


if __name__ == "__main__":
    sys.exit(main())
