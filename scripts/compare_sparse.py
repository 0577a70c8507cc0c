"""Dev retrieval per sparse encoder on the same engine: Qdrant's BM25 (Snowball) vs Fonti's previous one.

For each question set (a folder with ``questions.jsonl`` and ``articles/``), its articles
are ingested into a fresh Qdrant Edge store once per encoder (same chunks, same dense
vectors: the embedder runs once), and every answerable question is searched as
``POST /v1/search`` does (top 10, the service's candidates); the figures are those of
``fonti eval --retrieval-only`` (:mod:`service.evaluation.retrieval`): gold-outlet recall
at 5 and 10, gold-article hit at 5, MRR of the first gold outlet.

    python scripts/compare_sparse.py ../shared/data/dev data/calibration/tune data/calibration/test
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class CachingEmbedder:
    """The real embedder, each text embedded once across the stores."""

    def __init__(self, real: Any):
        self._real = real
        self.dim, self.name = real.dim, real.name
        self._cache: dict[str, np.ndarray] = {}

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            self._cache.update(zip(todo, self._real.embed_passages(todo), strict=True))
        return np.stack([self._cache[t] for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        if ("q", text) not in self._cache:
            self._cache[("q", text)] = self._real.embed_query(text)  # type: ignore[index]
        return self._cache[("q", text)]  # type: ignore[index]


def evaluate(folder: Path, embedder: CachingEmbedder, candidates: int) -> dict[str, Any]:
    from ingest.files import iter_sources
    from ingest.pipeline import IngestService
    from service.backends.store.edge import EdgeStore
    from service.evaluation.retrieval import score_hits, summarise_retrieval
    from service.pipeline.retrieve import Retriever
    from service.settings import StoreSettings

    questions = [
        json.loads(line) for line in (folder / "questions.jsonl").read_text("utf-8").splitlines() if line
    ]
    with tempfile.TemporaryDirectory(prefix="fonti-compare-sparse-") as tmp:
        store = EdgeStore(StoreSettings(path=Path(tmp)), embedder.dim, embedder.name)
        try:
            report = IngestService(embedder, store).ingest(iter_sources([str(folder / "articles")]))  # type: ignore[arg-type]
            assert not report.errors, report.errors
            retriever = Retriever(embedder, store)  # type: ignore[arg-type]
            rows = []
            for q in questions:
                if not q.get("gold_outlets"):
                    continue
                hits = retriever.search(q["question"], 10, candidates=max(candidates, 30))
                scored = score_hits(
                    q,
                    [
                        {"outlet": h.outlet, "article_id": h.article_id, "article_ids": h.article_ids}
                        for h in hits
                    ],
                )
                if scored is not None:
                    rows.append(scored)
        finally:
            store.close()
    return summarise_retrieval(rows)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sets", nargs="+", type=Path, help="folders with questions.jsonl and articles/")
    parser.add_argument("--out", type=Path, default=Path("var/bench/compare-sparse.json"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from service.backends.embedder import build_embedder
    from service.backends.store.lexical import FoldedWords, SnowballBm25, compared_encoder
    from service.settings import Settings

    settings = Settings()
    embedder = CachingEmbedder(build_embedder(settings.embed, settings.models_dir))
    results: dict[str, Any] = {}
    metrics = ("outlet_recall_at_5", "outlet_recall_at_10", "article_hit_at_5", "mrr")
    print(f"{'set':10} {'encoder':38} {'n':>3} " + " ".join(f"{m:>19}" for m in metrics))
    for folder in args.sets:
        for enc in (FoldedWords(), SnowballBm25()):
            with compared_encoder(enc):
                summary = evaluate(folder, embedder, settings.retrieval.candidates)
            results.setdefault(folder.name, {})[enc.name] = {
                k: summary[k] for k in ("overall", "by_language")
            }
            o = summary["overall"]
            print(
                f"{folder.name:10} {enc.name:38} {o['questions']:>3} "
                + " ".join(f"{o[m]:>19.3f}" for m in metrics)
            )
            langs = ", ".join(
                f"{k} {v['mrr']:.3f} (n={v['questions']})" for k, v in summary["by_language"].items()
            )
            print(f"{'':10} {'  MRR by question language':38} {langs}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
