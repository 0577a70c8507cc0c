"""Ingest throughput: the whole pipeline vs the raw embedder on the same chunks, same run.

Generates a corpus of aggregator pages in a temporary folder (nothing is committed),
ingests it from disk into a fresh store, Qdrant Edge (read → parse → chunk → embed →
lexical vectors → upsert), then embeds exactly the same chunk texts with the embedder
alone in batches of the same size. Prints chunks/s of both and their ratio; writes JSON.

    python scripts/bench_ingest.py [--articles 2000] [--out var/bench/ingest.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

OUTLETS = [
    "ANSA",
    "AGI",
    "Il Post",
    "Adnkronos",
    "Il Tempo",
    "RaiNews",
    "la Repubblica",
    "Corriere della Sera",
]
VOCAB = (
    "governo comune regione ministero sindaco cantiere bilancio scuola ospedale treno ponte porto museo "
    "tribunale procura sentenza indagine elezioni partito sindacato sciopero contratto stipendi prezzi "
    "inflazione energia gas bollette clima alluvione siccità turismo stagione record calcio campionato"
).split()


def make_corpus(folder: Path, articles: int, seed: int = 7) -> None:
    """``articles`` aggregator pages of 2-4 paragraphs (~40 words each) with outlet markers."""
    rnd = random.Random(seed)
    for i in range(articles):
        paras = []
        for _ in range(rnd.randint(2, 4)):
            words = " ".join(rnd.choice(VOCAB) for _ in range(40))
            paras.append(f"{words.capitalize()} per {rnd.randint(2, 999)} milioni. ({rnd.choice(OUTLETS)})")
        title = " ".join(rnd.choice(VOCAB) for _ in range(6)).capitalize()
        (folder / f"a{i:05d}.txt").write_text(f"{title} {i}\n\n" + "\n\n".join(paras) + "\n", "utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("var/bench/ingest.json"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from ingest.chunking import chunk_article, dense_text
    from ingest.files import iter_sources
    from ingest.formats import ArticleInput, parse_article
    from ingest.pipeline import IngestService, article_id_for
    from service.backends.embedder import build_embedder
    from service.backends.store import build_store
    from service.settings import Settings, StoreSettings

    settings = Settings()
    embedder = build_embedder(settings.embed, settings.models_dir)
    batch = settings.embed.batch_size

    def raw_pass(texts: list[str]) -> float:
        started = time.perf_counter()
        for i in range(0, len(texts), batch):
            embedder.embed_passages(texts[i : i + batch])
        return time.perf_counter() - started

    with tempfile.TemporaryDirectory(prefix="fonti-bench-ingest-") as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        make_corpus(corpus, args.articles)
        texts = []
        for _, inp in iter_sources([str(corpus)]):
            assert isinstance(inp, ArticleInput)
            texts += [dense_text(c) for c in chunk_article(parse_article(inp, article_id_for(inp)))]
        embedder.embed_passages(["riscaldamento"])  # load lazily initialised state outside the timings
        # The raw embedder runs before and after the pipeline and the two are averaged, so a
        # change of load on a shared machine during the run biases neither side.
        raw_before = raw_pass(texts)
        store = build_store(StoreSettings(path=Path(tmp) / "store"), embedder.dim, embedder.name)
        try:
            started = time.perf_counter()
            report = IngestService(embedder, store, batch).ingest(iter_sources([str(corpus)]))
            pipeline_s = time.perf_counter() - started
            stored = store.count()
        finally:
            store.close()
        raw_after = raw_pass(texts)
        if report.errors:
            print(f"bench: {len(report.errors)} articles failed, first: {report.errors[0]}", file=sys.stderr)
            return 1
    raw_s = (raw_before + raw_after) / 2

    result = {
        "embedder": f"{settings.embed.backend} ({embedder.name})",
        "raw_seconds_before_and_after": [round(raw_before, 2), round(raw_after, 2)],
        "batch_size": batch,
        "articles": args.articles,
        "chunks": len(texts),
        "stored_points": stored,
        "pipeline_seconds": round(pipeline_s, 2),
        "pipeline_chunks_per_s": round(len(texts) / pipeline_s, 2),
        "pipeline_articles_per_s": round(args.articles / pipeline_s, 2),
        "raw_embedder_seconds": round(raw_s, 2),
        "raw_embedder_chunks_per_s": round(len(texts) / raw_s, 2),
        "ratio_pipeline_vs_raw": round(raw_s / pipeline_s, 3),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"embedder {result['embedder']}, batch {batch}: {args.articles} articles, {len(texts)} chunks")
    print(
        f"pipeline (read+parse+chunk+embed+lexical+upsert): {result['pipeline_chunks_per_s']:.1f} chunks/s "
        f"({result['pipeline_articles_per_s']:.1f} articles/s, {pipeline_s:.1f} s)"
    )
    print(
        f"raw embedder on the same chunks: {result['raw_embedder_chunks_per_s']:.1f} chunks/s ({raw_s:.1f} s)"
    )
    print(f"ratio pipeline/raw: {result['ratio_pipeline_vs_raw']:.3f} (target >= 0.85)   -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
