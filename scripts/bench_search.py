"""Hybrid search latency of the store on a synthetic collection (generated, not committed).

Builds a store of ``--chunks`` chunks in a temporary folder and times ``hybrid_search``
(dense + lexical prefetch, RRF fusion, the call the service makes) with an outlet filter.

The data is synthetic: dense vectors are random unit vectors (384 dims, the default
embedder's size; random vectors have no cluster structure, the hard case for HNSW), the
lexical vectors are this version's BM25 of generated Italian-like text (50 words drawn
from a Zipf distribution over 20,000 made-up words, as in news text), and each chunk has
one of 20 outlets (5 % each). Each query filters one outlet at random.

Qdrant Edge (the default store): points are upserted through ``EdgeStore``, then its
search index is built by a child process (``build_index``, as at the end of ``fonti
ingest``) while this process keeps searching every half second (``during_build``
latencies); ``build_s`` = upsert + index build.
Then a fresh process opens the store and times the queries: ``rss_mib`` is its resident
memory after them. ``--engines local`` adds qdrant-client's local mode (Fonti's store
before Qdrant Edge; slow, default only up to 20,000 chunks).

The last line printed is a JSON object {"engine", "chunks", "build_s", "p50_ms", "p95_ms",
"rss_mib"} for Qdrant Edge (one line per engine, Edge last); ``--out`` gets every figure.

    python scripts/bench_search.py --chunks 100000 [--queries 200] [--engines local edge]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DIM = 384
OUTLETS = 20
VOCAB = 20_000
WORDS_PER_CHUNK = 50
BATCH = 512
ENGINE_NAMES = {"edge": "qdrant-edge", "local": "qdrant-client-local"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class Corpus:
    """Deterministic synthetic chunks and queries."""

    def __init__(self, seed: int = 1):
        import numpy as np

        self.rnd = random.Random(seed)
        self.gen = np.random.default_rng(seed)
        syllables = (
            "ba be bi bo bu ca ce ci co cu da de di do du fa fe fi fo la le li lo lu ma me mi mo mu na ne"
        )
        sy = (
            syllables.split() + "ni no nu pa pe pi po pu ra re ri ro ru sa se si so su ta te ti to tu".split()
        )
        words: set[str] = set()
        while len(words) < VOCAB:
            words.add("".join(self.rnd.choice(sy) for _ in range(self.rnd.randint(2, 4))))
        self.words = sorted(words)
        weights = [1 / (rank + 1) ** 1.07 for rank in range(VOCAB)]
        total = sum(weights)
        self.cum = list(__import__("itertools").accumulate(w / total for w in weights))

    def text(self, n: int) -> str:
        import bisect

        return " ".join(
            self.words[min(VOCAB - 1, bisect.bisect(self.cum, self.rnd.random()))] for _ in range(n)
        )

    def dense(self, n: int) -> Any:
        import numpy as np

        v = self.gen.standard_normal((n, DIM)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def points(self, start: int, n: int) -> list[Any]:
        from service.backends.store import StorePoint
        from service.backends.store.lexical import passage_vector

        vectors = self.dense(n)
        out = []
        for i in range(n):
            k = start + i
            text = self.text(WORDS_PER_CHUNK)
            payload = {
                "article_id": f"a{k // 5:07d}",
                "position": k % 5,
                "outlet": f"Outlet {k % OUTLETS:02d}",
                "topic": "Cronaca",
                "published": f"2024-{1 + k % 12:02d}-{1 + k % 28:02d}",
                "title": f"Titolo {k // 5}",
                "text": text,
                "article_hash": "h",
            }
            out.append(StorePoint(f"{k:032x}", payload, dense=vectors[i], sparse=passage_vector(text, "it")))
        return out


def open_store(engine: str, path: Path, background: bool = False) -> Any:
    from service.settings import StoreSettings

    if engine == "local":
        from service.backends.store.qdrant import QdrantStore

        return QdrantStore(StoreSettings(path=path), DIM, "bench/random")
    from service.backends.store.edge import EdgeStore

    return EdgeStore(StoreSettings(path=path), DIM, "bench/random", background_index=background)


def query(store: Any, corpus: Corpus, limit: int) -> float:
    from service.backends.store.lexical import query_vector

    vec = corpus.dense(1)[0]
    sparse = query_vector(corpus.text(6))
    where = {"outlet": f"Outlet {corpus.rnd.randrange(OUTLETS):02d}"}
    started = time.perf_counter()
    hits = store.hybrid_search(vec, sparse, limit, where)
    elapsed = (time.perf_counter() - started) * 1000
    assert hits and all(h.payload["outlet"] == where["outlet"] for h in hits)
    return elapsed


def build(engine: str, path: Path, chunks: int, limit: int) -> dict[str, Any]:
    corpus = Corpus(seed=1)
    store = open_store(engine, path)
    started = time.perf_counter()
    try:
        for start in range(0, chunks, BATCH):
            store.upsert(corpus.points(start, min(BATCH, chunks - start)))
            if start and start % 100_000 < BATCH:
                print(
                    f"  {engine}: {start} chunks upserted ({time.perf_counter() - started:.0f} s)", flush=True
                )
        upsert_s = time.perf_counter() - started
        during: list[float] = []
        index_s = 0.0
        if engine == "edge":
            index_started = time.perf_counter()
            # The index is built by a child process; this one keeps searching meanwhile (every
            # half second), on the points as they are, exactly.
            store.build_index(lambda _elapsed: during.append(query(store, corpus, limit)))
            index_s = time.perf_counter() - index_started
    finally:
        store.close()
    row: dict[str, Any] = {"upsert_s": round(upsert_s, 1), "index_s": round(index_s, 1)}
    if during:
        row |= {
            "during_build_queries": len(during),
            "during_build_p50_ms": round(statistics.median(during), 2),
            "during_build_p95_ms": round(percentile(during, 95), 2),
        }
    row["disk_mib"] = round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20)
    return row


def rss_mib() -> dict[str, int]:
    status = Path("/proc/self/status").read_text()
    values = {
        k: int(v.split()[0])
        for k, v in (line.split(":", 1) for line in status.splitlines())
        if k in ("VmRSS", "VmHWM")
    }
    return {"rss_mib": round(values["VmRSS"] / 1024), "peak_rss_mib": round(values["VmHWM"] / 1024)}


def query_phase(engine: str, path: Path, queries: int, limit: int) -> dict[str, Any]:
    """In a fresh process: open the store, warm up, time ``queries`` hybrid searches."""
    corpus = Corpus(seed=7)
    started = time.perf_counter()
    store = open_store(engine, path)
    open_s = time.perf_counter() - started
    try:
        for _ in range(10):
            query(store, corpus, limit)
        times = [query(store, corpus, limit) for _ in range(queries)]
        mem = rss_mib()
    finally:
        store.close()
    return {
        "open_s": round(open_s, 2),
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(percentile(times, 95), 2),
        **mem,
    }


def run_engine(engine: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fonti-bench-search-", dir=args.tmp) as tmp:
        path = Path(tmp) / "store"
        started = time.perf_counter()
        built = build(engine, path, args.chunks, args.limit)
        build_s = time.perf_counter() - started
        r = subprocess.run(
            [
                sys.executable,
                __file__,
                "--query-phase",
                engine,
                str(path),
                "--chunks",
                str(args.chunks),
                "--queries",
                str(args.queries),
                "--limit",
                str(args.limit),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if r.returncode != 0:
            raise SystemExit(f"query phase failed: {r.stderr[-2000:]}")
        measured = json.loads(r.stdout.strip().splitlines()[-1])
    return {
        "engine": ENGINE_NAMES[engine],
        "chunks": args.chunks,
        "build_s": round(build_s, 1),
        "p50_ms": measured["p50_ms"],
        "p95_ms": measured["p95_ms"],
        "rss_mib": measured["rss_mib"],
        "details": {**built, **measured},
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--limit", type=int, default=24, help="candidates per query (FONTI_RETRIEVAL_CANDIDATES)"
    )
    parser.add_argument(
        "--engines",
        nargs="+",
        choices=["local", "edge"],
        default=None,
        help="default: local and edge up to 20,000 chunks, else edge",
    )
    parser.add_argument("--tmp", default=None, help="folder for the temporary store (default: the system's)")
    parser.add_argument("--out", type=Path, default=None, help="JSON of every figure (default var/bench/)")
    parser.add_argument("--query-phase", nargs=2, metavar=("ENGINE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.query_phase:
        engine, path = args.query_phase
        print(json.dumps(query_phase(engine, Path(path), args.queries, args.limit)))
        return 0
    engines = args.engines or (["local", "edge"] if args.chunks <= 20_000 else ["edge"])
    engines = sorted(engines, key=lambda e: e == "edge")  # Edge last: its line ends the output
    print(
        f"bench-search: {args.chunks} synthetic chunks (random 384-d unit vectors, BM25 of generated "
        f"text, {OUTLETS} outlets), {args.queries} hybrid queries with an outlet filter, top {args.limit}",
        flush=True,
    )
    rows = []
    for engine in engines:
        row = run_engine(engine, args)
        rows.append(row)
        print(f"{row['engine']} details: {json.dumps(row['details'])}", flush=True)
    out = args.out or Path(f"var/bench/search-{args.chunks}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    for row in rows:
        print(json.dumps({k: row[k] for k in ("engine", "chunks", "build_s", "p50_ms", "p95_ms", "rss_mib")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
