"""Hybrid search latency in Qdrant local mode on synthetic collections (generated, not committed).

For each size (default 10,000 and 100,000 chunks) builds a fresh local-mode store in a
temporary folder with random unit dense vectors and BM25 sparse vectors of generated
Italian-like text, then times ``hybrid_search`` (dense + lexical prefetch, RRF fusion —
the exact call the service makes) for a set of queries. Prints p50/p95 per size and the
growth factor; writes JSON.

    python scripts/bench_search.py [--sizes 10000 100000] [--queries 50]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

VOCAB = (
    "governo comune regione ministero sindaco cantiere bilancio scuola ospedale treno ponte porto museo "
    "tribunale procura sentenza indagine elezioni partito sindacato sciopero contratto stipendi prezzi "
    "inflazione energia gas bollette clima alluvione siccità turismo stagione record calcio campionato "
    "Kiriyenko Peskov clostebol Sinner Mattarella Meloni Lagarde Bce Musk Putin Starlink Sanremo Geolier"
).split()
DIM = 384


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def build(path: Path, size: int, rnd: random.Random) -> float:
    import numpy as np

    from service.backends.store import StorePoint
    from service.backends.store.lexical import passage_vector
    from service.backends.store.qdrant import QdrantStore
    from service.settings import StoreSettings

    store = QdrantStore(StoreSettings(path=path), DIM, "bench/random")
    gen = np.random.default_rng(rnd.randrange(2**32))
    started = time.perf_counter()
    try:
        for start in range(0, size, 1000):
            n = min(1000, size - start)
            dense = gen.standard_normal((n, DIM)).astype(np.float32)
            dense /= np.linalg.norm(dense, axis=1, keepdims=True)
            points = []
            for i in range(n):
                text = " ".join(rnd.choice(VOCAB) for _ in range(50))
                payload = {
                    "article_id": f"a{(start + i) // 5}",
                    "position": (start + i) % 5,
                    "outlet": "X",
                    "text": text,
                }
                points.append(
                    StorePoint(f"{start + i:032x}", payload, dense=dense[i], sparse=passage_vector(text))
                )
            store.upsert(points)
    finally:
        store.close()
    return time.perf_counter() - started


def time_queries(path: Path, queries: int, limit: int, rnd: random.Random) -> list[float]:
    import numpy as np

    from service.backends.store.lexical import query_vector
    from service.backends.store.qdrant import QdrantStore
    from service.settings import StoreSettings

    store = QdrantStore(StoreSettings(path=path), DIM, "bench/random")
    gen = np.random.default_rng(7)
    times = []
    try:
        for q in range(queries + 3):
            vec = gen.standard_normal(DIM).astype(np.float32)
            vec /= np.linalg.norm(vec)
            sparse = query_vector(" ".join(rnd.choice(VOCAB) for _ in range(6)))
            t = time.perf_counter()
            store.hybrid_search(vec, sparse, limit)
            if q >= 3:  # the first queries warm caches
                times.append((time.perf_counter() - t) * 1000)
    finally:
        store.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument(
        "--limit", type=int, default=24, help="candidates per query (FONTI_RETRIEVAL_CANDIDATES)"
    )
    parser.add_argument("--out", type=Path, default=Path("var/bench/search.json"))
    args = parser.parse_args()
    rnd = random.Random(1)
    results = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="fonti-bench-search-") as tmp:
            build_s = build(Path(tmp) / "store", size, rnd)
            times = time_queries(Path(tmp) / "store", args.queries, args.limit, rnd)
        row = {
            "chunks": size,
            "build_s": round(build_s, 1),
            "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(percentile(times, 95), 1),
        }
        results.append(row)
        print(
            f"{size:>8} chunks: hybrid search p50 {row['p50_ms']:.1f} ms, p95 {row['p95_ms']:.1f} ms "
            f"(build {row['build_s']:.0f} s)",
            flush=True,
        )
    if len(results) > 1:
        a, b = results[0], results[-1]
        print(
            f"growth {b['chunks'] / a['chunks']:.0f}x chunks -> p50 x{b['p50_ms'] / a['p50_ms']:.1f}, "
            f"p95 x{b['p95_ms'] / a['p95_ms']:.1f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"local_mode": results, "limit": args.limit}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
