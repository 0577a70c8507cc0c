"""Bounded load test of backpressure against a real `fonti serve` on loopback.

Starts `fonti serve` (a subprocess, real models, a temporary store with the articles
ingested), then runs ``--clients`` concurrent clients for ``--duration`` seconds, each
asking random questions from the question file (half JSON, half streaming). A client
that gets a 503 waits ``min(Retry-After, --max-backoff)`` s, so the queue stays under
pressure. A separate prober times ``GET /healthz`` every 100 ms and a sampler reads the
server's RSS every second. Afterwards the server gets SIGTERM and must exit 0.

Pass criteria (exit status 0 when all hold): no 5xx other than 503/504, every 503
carries Retry-After, RSS growth from the first to the last 10 s ≤ 10 %, /healthz p99 <
100 ms, clean exit on SIGTERM. Only loopback: the script starts its own server.

    make load    # = python scripts/load_test.py --questions DEV/questions.jsonl --articles DEV/articles
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss(pid: int) -> int:
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss)
    except ImportError:  # /proc fallback (Linux)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS") from None


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.status: Counter[str] = Counter()
        self.missing_retry_after = 0
        self.stream_errors: Counter[str] = Counter()
        self.answer_s: list[float] = []
        self.reject_s: list[float] = []
        self.transport_errors: Counter[str] = Counter()
        self.samples: list[str] = []  # bodies of unexpected 5xx responses
        self.reject_reasons: Counter[str] = Counter()

    def add(self, key: str, **kw: Any) -> None:
        with self.lock:
            self.status[key] += 1
            if kw.get("no_retry_after"):
                self.missing_retry_after += 1
            if "answer_s" in kw:
                self.answer_s.append(kw["answer_s"])
            if "reject_s" in kw:
                self.reject_s.append(kw["reject_s"])
            if "stream_error" in kw:
                self.stream_errors[kw["stream_error"]] += 1


def _client(
    url: str, questions: list[str], stop: threading.Event, stats: Stats, stream: bool, backoff: float
) -> None:
    rng = random.Random()
    with httpx.Client(base_url=url, timeout=httpx.Timeout(300, connect=10)) as client:
        while not stop.is_set():
            body = {"question": rng.choice(questions), "stream": stream}
            started = time.monotonic()
            try:
                with client.stream("POST", "/v1/ask", json=body) as r:
                    raw = "".join(r.iter_text())
                    took = time.monotonic() - started
                    if r.status_code == 503:
                        retry = r.headers.get("retry-after", "")
                        reason = "shutdown" if "shutting down" in raw else "queue full"
                        with stats.lock:
                            stats.reject_reasons[reason] += 1
                        timing = {"reject_s": took} if reason == "queue full" else {}
                        stats.add("503", no_retry_after=not retry.isdigit(), **timing)
                        time.sleep(
                            min(float(retry) if retry.isdigit() else 1.0, backoff) * rng.uniform(0.5, 1.0)
                        )
                        continue
                    if r.status_code == 200 and stream:
                        kinds = [ln[7:] for ln in raw.splitlines() if ln.startswith("event: ")]
                        if kinds and kinds[-1] == "error":
                            err = raw.rsplit("data: ", 1)[-1][:60]
                            stats.add("200-stream-error", stream_error=err)
                            continue
                        if not kinds:
                            stats.add("200-stream-cut")
                            continue
                    if r.status_code >= 500 and r.status_code not in (503, 504) and len(stats.samples) < 5:
                        stats.samples.append(
                            f"{r.status_code} x-request-id={r.headers.get('x-request-id')} {raw[:300]}"
                        )
                    stats.add(str(r.status_code), **({"answer_s": took} if r.status_code == 200 else {}))
            except httpx.HTTPError as exc:
                if not stop.is_set():
                    with stats.lock:
                        stats.transport_errors[type(exc).__name__] += 1
                    time.sleep(0.5)


def _prober(url: str, stop: threading.Event, out: list[float], failures: Counter[str]) -> None:
    with httpx.Client(base_url=url, timeout=5) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                r = client.get("/healthz")
                out.append((time.perf_counter() - started) * 1000)
                if r.status_code != 200:
                    failures[str(r.status_code)] += 1
            except httpx.HTTPError as exc:
                failures[type(exc).__name__] += 1
            time.sleep(max(0.0, 0.1 - (time.perf_counter() - started)))


def _sampler(pid: int, stop: threading.Event, out: list[tuple[float, int]], t0: float) -> None:
    while not stop.is_set():
        out.append((time.monotonic() - t0, _rss(pid)))
        stop.wait(1.0)


def main(argv: list[str] | None = None) -> int:
    """Run the load test; 0 when every criterion holds."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--questions", type=Path, required=True, help="JSONL with a 'question' per line")
    p.add_argument("--articles", type=Path, required=True, help="folder of articles to ingest first")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    p.add_argument("--max-backoff", type=float, default=1.0, help="cap on honouring Retry-After (s)")
    p.add_argument("--out", type=Path, default=None, help="write the summary JSON here too")
    p.add_argument("--server-log", type=Path, default=None, help="keep the server's log here")
    p.add_argument("--log-level", default="warning", help="FONTI_LOG_LEVEL of the server")
    args = p.parse_args(argv)

    questions = [
        json.loads(line)["question"] for line in args.questions.read_text("utf-8").splitlines() if line
    ]
    articles = [{"id": f.name, "text": f.read_text("utf-8")} for f in sorted(args.articles.glob("*.txt"))]
    with tempfile.TemporaryDirectory(prefix="fonti-load-") as tmp:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("FONTI_") or k.startswith("FONTI_LLM_")
        }
        env.update(
            PYTHONPATH=str(REPO),
            HF_HUB_OFFLINE="1",
            FONTI_HOST="127.0.0.1",
            FONTI_PORT=str(port),
            FONTI_STORE_PATH=str(Path(tmp) / "store"),
            FONTI_LOG_LEVEL=args.log_level,
        )
        log_path = Path(tmp) / "server.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "service.cli", "serve"], env=env, stdout=log, stderr=log
            )
        try:
            deadline = time.monotonic() + 300
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    print(log_path.read_text()[-3000:], file=sys.stderr)
                    return 2
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.5)
            r = httpx.post(url + "/v1/articles", json={"articles": articles}, timeout=1800)
            r.raise_for_status()
            print(
                f"load: {r.json()['ingested']} articles in; {args.clients} clients for {args.duration:g} s",
                flush=True,
            )

            stats, health_ms, health_fail = Stats(), [], Counter[str]()
            rss: list[tuple[float, int]] = []
            stop, sampling = threading.Event(), threading.Event()
            t0 = time.monotonic()
            threads = [threading.Thread(target=_sampler, args=(proc.pid, sampling, rss, t0), daemon=True)]
            threads += [
                threading.Thread(target=_prober, args=(url, stop, health_ms, health_fail), daemon=True)
            ]
            threads += [
                threading.Thread(
                    target=_client,
                    args=(url, questions, stop, stats, i % 2 == 1, args.max_backoff),
                    daemon=True,
                )
                for i in range(args.clients)
            ]
            for t in threads:
                t.start()
            time.sleep(args.duration)
            stop.set()
            sampling.set()
            for t in threads:
                t.join(timeout=10)  # clients in flight disconnect; their generations are cancelled
            time.sleep(1)
            proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            try:
                code = proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = -9
            exit_s = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
        first = [b for t, b in rss if t <= 10]
        last = [b for t, b in rss if t >= args.duration - 10]
        growth = (
            (statistics.mean(last) - statistics.mean(first)) / statistics.mean(first)
            if first and last
            else None
        )
        server_errors = {
            k: v for k, v in stats.status.items() if k.startswith("5") and k not in ("503", "504")
        }
        log_text = log_path.read_text("utf-8", errors="replace")
        if args.server_log:
            args.server_log.write_text(log_text, "utf-8")
        summary = {
            "clients": args.clients,
            "duration_s": args.duration,
            "responses": dict(stats.status),
            "server_errors_other_than_503_504": server_errors,
            "server_error_samples": stats.samples,
            "transport_errors": dict(stats.transport_errors),
            "stream_errors": dict(stats.stream_errors),
            "503_reasons": dict(stats.reject_reasons),
            "503_without_retry_after": stats.missing_retry_after,
            # time to a "queue full" 503 (the ones at shutdown waited in the queue first)
            "reject_ms_p50": round(_percentile(stats.reject_s, 50) * 1000, 1) if stats.reject_s else None,
            "reject_ms_p99": round(_percentile(stats.reject_s, 99) * 1000, 1) if stats.reject_s else None,
            "answers_completed": len(stats.answer_s),
            "answer_s_p50": round(_percentile(stats.answer_s, 50), 1) if stats.answer_s else None,
            "health_probes": len(health_ms),
            "health_failures": dict(health_fail),
            "health_ms_p50": round(_percentile(health_ms, 50), 1) if health_ms else None,
            "health_ms_p99": round(_percentile(health_ms, 99), 1) if health_ms else None,
            "health_ms_max": round(max(health_ms), 1) if health_ms else None,
            "rss_mb_first_10s": round(statistics.mean(first) / 2**20, 1) if first else None,
            "rss_mb_last_10s": round(statistics.mean(last) / 2**20, 1) if last else None,
            "rss_growth_pct": round(growth * 100, 2) if growth is not None else None,
            "sigterm_exit_code": code,
            "sigterm_exit_s": round(exit_s, 1),
            "server_log_tracebacks": log_text.count("Traceback"),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        }
        checks = {
            "no 5xx other than 503/504": not server_errors,
            "every 503 has Retry-After": stats.missing_retry_after == 0,
            "RSS growth <= 10%": growth is not None and growth <= 0.10,
            "health p99 < 100 ms": bool(health_ms) and _percentile(health_ms, 99) < 100 and not health_fail,
            "SIGTERM exit 0": code == 0,
        }
        summary["checks"] = checks
        if "Traceback" in log_text:  # show the first server error in full
            start = log_text.index("Traceback")
            print(log_text[max(0, log_text.rfind("\n", 0, start - 300)) : start + 4000], file=sys.stderr)
        print(json.dumps(summary, indent=2))
        if args.out:
            args.out.write_text(json.dumps(summary, indent=2))
        return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
