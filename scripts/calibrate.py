"""Fit the answer pipeline's calibration (service/pipeline/calibration.json) on tune + dev only.

    python scripts/calibrate.py collect SET.jsonl ARTICLES_DIR OUT.jsonl   # real models, ~8 s a question
    python scripts/calibrate.py fit DUMP.jsonl [DUMP.jsonl ...] [--write]
    python scripts/calibrate.py corroboration SET.jsonl RESULTS.jsonl [--write]

``collect`` ingests the articles into a throw-away store and, for every question, runs
exactly the answer pipeline's retrieval and evidence read (``AnswerService.gather``),
dumping the passages, their gold labels and the model's distribution. ``fit`` turns the
dumps into the features of :mod:`service.pipeline.calibration`, fits the passage and
question models (logistic regression), and picks the two thresholds on predictions made
out of fold (folds by story), so no threshold is chosen on the questions that set it:
the citation threshold maximises passage F1; the answer threshold maximises balanced
accuracy (abstaining on unanswerable questions, answering the others) among thresholds
whose out-of-fold false abstention stays within ``--max-false-abstention``.
``corroboration`` reads a traced ``fonti eval`` of the tune split (FONTI_ANSWER_TRACE=true)
and picks the probability an evidence passage the model did not cite itself needs to be
cited beside its own citations (``add_threshold``): the one that maximises the outlet F1
of the answers given (ties: the higher).
Never pass the frozen test split (data/calibration/test) to this script.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from service.pipeline.calibration import (  # noqa: E402
    CALIBRATION_FILE,
    PASSAGE_FEATURES,
    QUESTION_FEATURES,
    Logistic,
    passage_features,
    question_features,
)
from service.pipeline.evidence import EvidenceRead  # noqa: E402
from service.pipeline.retrieve import Passage  # noqa: E402

MAX_EVIDENCE = 4


def collect(questions: Path, articles: Path, out: Path) -> None:
    """Dump what ``AnswerService.gather`` sees for every question of ``questions``."""
    if "calibration/test" in str(questions.resolve()):
        raise SystemExit("calibrate.py: the test split is frozen; fit on tune and dev only")
    from ingest.files import iter_files, read_file
    from service.app import build_components
    from service.pipeline.language import detect_language
    from service.settings import Settings, StoreSettings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(store=StoreSettings(path=Path(tmp) / "store"))
        c = build_components(settings)
        try:
            items = [item for path, root in iter_files([articles]) for item in read_file(path, root)]
            c.ingest.ingest(items)
            with out.open("w", encoding="utf-8") as f:
                for line in questions.read_text("utf-8").splitlines():
                    if not line.strip():
                        continue
                    q = json.loads(line)
                    g = c.answers.gather(q["question"], detect_language(q["question"]))
                    f.write(json.dumps(_record(q, g), ensure_ascii=False) + "\n")
                    f.flush()
                    print(q["id"], "ok" if g else "no passages", flush=True)
        finally:
            c.close()


def _record(q: dict[str, Any], g: Any) -> dict[str, Any]:
    gold_o, gold_a = set(q.get("gold_outlets") or []), set(q.get("gold_articles") or [])
    rec: dict[str, Any] = {k: q.get(k) for k in ("id", "question", "lang", "kind", "story")}
    if g is None:
        return {**rec, "passages": []}
    rec["read"] = {"p_none": g.read.p_none, "first": g.read.first, "written": g.read.written}
    rec["passages"] = [
        {
            "number": p.number,
            "outlet": p.outlet,
            "article_id": p.article_id,
            "article_ids": p.article_ids,
            "title": p.title,
            "text": p.text,
            "score": p.score,
            "dense_score": p.dense_score,
            "gold": bool(p.outlet in gold_o and set(p.article_ids) & gold_a),
        }
        for p in g.passages
    ]
    return rec


def _passages(rec: dict[str, Any]) -> list[Passage]:
    return [
        Passage(
            chunk_id=str(i),
            article_id=p["article_id"],
            outlet=p["outlet"],
            title=p["title"],
            text=p["text"],
            url=None,
            published=None,
            score=p["score"],
            dense_score=p["dense_score"],
            article_ids=p["article_ids"],
            number=p["number"],
        )
        for i, p in enumerate(rec["passages"])
    ]


def _fit(x: np.ndarray, y: np.ndarray, names: tuple[str, ...]) -> Logistic:
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=1.0, max_iter=1000).fit((x - mean) / scale, y)
    return Logistic(
        names,
        tuple(float(v) for v in mean),
        tuple(float(v) for v in scale),
        tuple(float(v) for v in model.coef_[0]),
        float(model.intercept_[0]),
    )


def _tables(
    recs: list[dict[str, Any]], passage_model: Logistic | None
) -> tuple[np.ndarray, np.ndarray, list[int], np.ndarray, np.ndarray]:
    """Passage matrix and labels (with each row's question index), question matrix and labels."""
    px, py, owner, qx, qy = [], [], [], [], []
    for qi, rec in enumerate(recs):
        ps = _passages(rec)
        read = EvidenceRead(rec["read"]["p_none"], rec["read"]["first"], rec["read"]["written"])
        feats = passage_features(ps, read)
        for f, p in zip(feats, rec["passages"], strict=True):
            px.append([f[n] for n in PASSAGE_FEATURES])
            py.append(int(p["gold"]))
            owner.append(qi)
        probs = [passage_model.probability(f) for f in feats] if passage_model else [0.0] * len(ps)
        qf = question_features(read, probs)
        qx.append([qf[n] for n in QUESTION_FEATURES])
        qy.append(int(rec["kind"] != "unanswerable"))
    return np.array(px), np.array(py), owner, np.array(qx), np.array(qy)


def _out_of_fold(recs: list[dict[str, Any]], folds: int) -> tuple[list[list[float]], list[float]]:
    """Passage and question probabilities, each predicted by models fitted without its story."""
    stories = sorted({r.get("story") or r["id"] for r in recs})
    fold_of = {s: i % folds for i, s in enumerate(stories)}
    passage_p: list[list[float]] = [[] for _ in recs]
    question_p: list[float] = [0.0] * len(recs)
    for k in range(folds):
        train = [r for r in recs if fold_of[r.get("story") or r["id"]] != k]
        test_idx = [i for i, r in enumerate(recs) if fold_of[r.get("story") or r["id"]] == k]
        pm, qm = fit_models(train)
        for i in test_idx:
            rec = recs[i]
            ps = _passages(rec)
            read = EvidenceRead(rec["read"]["p_none"], rec["read"]["first"], rec["read"]["written"])
            probs = [pm.probability(f) for f in passage_features(ps, read)]
            passage_p[i] = probs
            question_p[i] = qm.probability(question_features(read, probs))
    return passage_p, question_p


def fit_models(recs: list[dict[str, Any]]) -> tuple[Logistic, Logistic]:
    """The passage model, then the question model fed with its probabilities."""
    px, py, _, _, _ = _tables(recs, None)
    pm = _fit(px, py, PASSAGE_FEATURES)
    _, _, _, qx, qy = _tables(recs, pm)
    return pm, _fit(qx, qy, QUESTION_FEATURES)


def _cite_threshold(
    recs: list[dict[str, Any]], passage_p: list[list[float]]
) -> tuple[float, dict[str, float]]:
    best = (0.0, 0.5, {})
    for t in np.arange(0.05, 0.96, 0.01):
        tp = fp = fn = 0
        for rec, probs in zip(recs, passage_p, strict=True):
            if rec["kind"] == "unanswerable" or not probs:
                continue
            order = sorted(range(len(probs)), key=lambda i: -probs[i])
            chosen = {i for i in order if probs[i] >= t}
            chosen = set(sorted(chosen, key=lambda i: -probs[i])[:MAX_EVIDENCE]) or {order[0]}
            gold = {i for i, p in enumerate(rec["passages"]) if p["gold"]}
            tp, fp, fn = tp + len(chosen & gold), fp + len(chosen - gold), fn + len(gold - chosen)
        precision, recall = tp / max(1, tp + fp), tp / max(1, tp + fn)
        f1 = 2 * precision * recall / max(1e-9, precision + recall)
        if f1 > best[0]:
            best = (f1, float(t), {"precision": precision, "recall": recall, "f1": f1})
    return best[1], best[2]


def _answer_threshold(
    recs: list[dict[str, Any]], question_p: list[float], max_false: float
) -> tuple[float, dict[str, float]]:
    answerable = [p for r, p in zip(recs, question_p, strict=True) if r["kind"] != "unanswerable"]
    unanswerable = [p for r, p in zip(recs, question_p, strict=True) if r["kind"] == "unanswerable"]
    best = (-1.0, 0.0, {})
    for t in np.arange(0.0, 1.0, 0.01):
        false_abst = sum(p < t for p in answerable) / max(1, len(answerable))
        abstention = sum(p < t for p in unanswerable) / max(1, len(unanswerable))
        if false_abst > max_false:
            continue
        score = abstention + (1 - false_abst)
        if score > best[0]:
            best = (score, float(t), {"abstention": abstention, "false_abstention": false_abst})
    return best[1], best[2]


def _single_signals(recs: list[dict[str, Any]]) -> dict[str, float]:
    """Each signal on its own (no fitting): the passage it ranks first, and how it separates questions."""
    out: dict[str, float] = {}
    answerable = [r for r in recs if any(x["gold"] for x in r["passages"])]
    scorers = {
        "model_pick": lambda r, i: r["read"]["first"][i],
        "retrieval_rank": lambda r, i: r["passages"][i]["score"],
        "dense_score": lambda r, i: r["passages"][i]["dense_score"],
    }
    for name, score in scorers.items():
        hits = sum(
            r["passages"][max(range(len(r["passages"])), key=lambda i: score(r, i))]["gold"]
            for r in answerable
        )
        out[f"best_passage_is_gold[{name}]"] = round(hits / max(1, len(answerable)), 4)
    signals = {
        "1 - p_none": lambda r: 1 - r["read"]["p_none"],
        "max model_pick": lambda r: max(r["read"]["first"]),
        "max dense_score": lambda r: max(x["dense_score"] for x in r["passages"]),
    }
    for name, signal in signals.items():
        pos = [signal(r) for r in recs if r["kind"] != "unanswerable"]
        neg = [signal(r) for r in recs if r["kind"] == "unanswerable"]
        out[f"question_auc[{name}]"] = round(_auc(pos, neg), 4)
    return out


def _auc(pos: list[float], neg: list[float]) -> float:
    if not pos or not neg:
        return float("nan")
    wins = sum((a > b) + 0.5 * (a == b) for a in pos for b in neg)
    return wins / (len(pos) * len(neg))


def fit(dumps: list[Path], write: bool, folds: int, max_false: float) -> None:
    recs = [json.loads(line) for d in dumps for line in d.read_text("utf-8").splitlines() if line.strip()]
    recs = [r for r in recs if r["passages"]]
    passage_p, question_p = _out_of_fold(recs, folds)
    cite_t, cite_fig = _cite_threshold(recs, passage_p)
    answer_t, answer_fig = _answer_threshold(recs, question_p, max_false)
    pos = [
        p
        for r, ps in zip(recs, passage_p, strict=True)
        for p, x in zip(ps, r["passages"], strict=True)
        if x["gold"]
    ]
    neg = [
        p
        for r, ps in zip(recs, passage_p, strict=True)
        for p, x in zip(ps, r["passages"], strict=True)
        if not x["gold"]
    ]
    answerable = [
        (r, ps) for r, ps in zip(recs, passage_p, strict=True) if any(x["gold"] for x in r["passages"])
    ]
    top1 = sum(r["passages"][max(range(len(ps)), key=lambda i: ps[i])]["gold"] for r, ps in answerable)
    q_pos = [p for r, p in zip(recs, question_p, strict=True) if r["kind"] != "unanswerable"]
    q_neg = [p for r, p in zip(recs, question_p, strict=True) if r["kind"] == "unanswerable"]
    pm, qm = fit_models(recs)
    singles = _single_signals(recs)
    report = {
        "fitted_on": [d.name for d in dumps],
        "questions": len(recs),
        "out_of_fold": {
            "passage_auc": round(_auc(pos, neg), 4),
            "best_passage_is_gold": round(top1 / max(1, len(answerable)), 4),
            "question_auc": round(_auc(q_pos, q_neg), 4),
            "citation": {k: round(v, 4) for k, v in cite_fig.items()},
            "answer": {k: round(v, 4) for k, v in answer_fig.items()},
        },
        "single_signals": singles,
    }
    print(json.dumps(report, indent=2))
    for name, model in (("passage", pm), ("question", qm)):
        print(name, {f: round(w, 3) for f, w in zip(model.features, model.coef, strict=True)})
    if write:
        kept = json.loads(CALIBRATION_FILE.read_text("utf-8")) if CALIBRATION_FILE.is_file() else {}
        data = {
            "about": "Fitted by scripts/calibrate.py on tune + dev; never on data/calibration/test.",
            **report,
            "passage_model": _as_dict(pm),
            "question_model": _as_dict(qm),
            "cite_threshold": round(cite_t, 2),
            "answer_threshold": round(answer_t, 2),
            "max_evidence": MAX_EVIDENCE,
            # fitted separately, from a traced eval (``corroboration``): kept across refits
            **{k: kept[k] for k in ("add_threshold", "corroboration_fit") if k in kept},
        }
        CALIBRATION_FILE.write_text(json.dumps(data, indent=2) + "\n", "utf-8")
        print("wrote", CALIBRATION_FILE)


def corroboration(questions: Path, results: Path, write: bool) -> None:
    """Fit ``add_threshold`` on a traced eval (see the module doc)."""
    if "calibration/test" in str(questions.resolve()):
        raise SystemExit("calibrate.py: the test split is frozen; fit on tune and dev only")
    gold_of = {
        q["id"]: set(q.get("gold_outlets") or [])
        for q in map(json.loads, questions.read_text("utf-8").splitlines())
        if q.get("id")
    }
    base_tp = base_fp = gold_total = 0
    candidates: list[tuple[float, bool]] = []
    for row in map(json.loads, results.read_text("utf-8").splitlines()):
        body, gold = row.get("answer") or {}, gold_of[row["id"]]
        gold_total += len(gold)
        trace = body.get("trace") or {}
        shown = [s for s in trace.get("sentences", []) if not s["failure"]]
        if body.get("abstained") or not shown:
            continue
        outlet = {p["number"]: p["outlet"] for p in trace["passages"]}
        prob = {p["number"]: p["probability"] for p in trace["passages"]}
        own = {outlet[n] for s in shown for n in s["passages"]}
        base_tp, base_fp = base_tp + len(own & gold), base_fp + len(own - gold)
        for n in trace["evidence"]:
            if outlet[n] not in own:
                own.add(outlet[n])
                candidates.append((prob[n], outlet[n] in gold))
    best = (-1.0, 1.0, {})
    for t in sorted({p for p, _ in candidates} | {1.01}, reverse=True):
        tp = base_tp + sum(g for p, g in candidates if p >= t)
        fp = base_fp + sum(not g for p, g in candidates if p >= t)
        precision, recall = tp / max(1, tp + fp), tp / max(1, gold_total)
        f1 = 2 * precision * recall / max(1e-9, precision + recall)
        if f1 > best[0] + 1e-9:
            best = (f1, t, {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)})
    print(
        json.dumps({"add_threshold": round(best[1], 4), "candidates": len(candidates), **best[2]}, indent=2)
    )
    if write:
        data = json.loads(CALIBRATION_FILE.read_text("utf-8"))
        data["add_threshold"] = round(best[1], 4)
        data["corroboration_fit"] = {"results": str(results), **best[2]}
        CALIBRATION_FILE.write_text(json.dumps(data, indent=2) + "\n", "utf-8")
        print("wrote", CALIBRATION_FILE)


def _as_dict(m: Logistic) -> dict[str, Any]:
    return {
        "features": list(m.features),
        "mean": [round(v, 6) for v in m.mean],
        "scale": [round(v, 6) for v in m.scale],
        "coef": [round(v, 6) for v in m.coef],
        "intercept": round(m.intercept, 6),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("questions", type=Path)
    c.add_argument("articles", type=Path)
    c.add_argument("out", type=Path)
    f = sub.add_parser("fit")
    f.add_argument("dumps", type=Path, nargs="+")
    f.add_argument("--write", action="store_true", help="write service/pipeline/calibration.json")
    f.add_argument("--folds", type=int, default=5)
    f.add_argument("--max-false-abstention", type=float, default=0.08)
    k = sub.add_parser("corroboration")
    k.add_argument("questions", type=Path)
    k.add_argument("results", type=Path)
    k.add_argument("--write", action="store_true", help="write add_threshold into calibration.json")
    args = ap.parse_args()
    if args.cmd == "collect":
        collect(args.questions, args.articles, args.out)
    elif args.cmd == "fit":
        fit(args.dumps, args.write, args.folds, args.max_false_abstention)
    else:
        corroboration(args.questions, args.results, args.write)


if __name__ == "__main__":
    main()
