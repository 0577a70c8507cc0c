"""Pure logic of passage selection: duplicate collapsing and article focus."""

from __future__ import annotations

from service.pipeline.retrieve import Passage, collapse_duplicates, focus_on_top_articles


def _p(article: str, outlet: str, text: str) -> Passage:
    return Passage(
        f"{article}:{text[:8]}", article, outlet, article.upper(), text, None, None, 1.0, 0.8, [article]
    )


def test_focus_keeps_the_top_articles_first_in_rank_order():
    ranked = [
        _p("a", "X", "uno"),
        _p("a", "Y", "due"),
        _p("b", "Z", "tre"),
        _p("c", "W", "quattro"),
        _p("a", "V", "cinque"),
        _p("b", "U", "sei"),
    ]
    focused = focus_on_top_articles(ranked, 2)
    # the two best passages are both from "a": its third passage moves up
    assert [p.text for p in focused] == ["uno", "due", "cinque", "tre", "quattro", "sei"]
    focused = focus_on_top_articles(ranked, 3)
    assert [p.text for p in focused] == ["uno", "due", "tre", "cinque", "sei", "quattro"]
    assert focus_on_top_articles(ranked, 0) == ranked


def test_same_outlet_copies_collapse_and_keep_every_article():
    text = "Il portavoce del Cremlino Dmitry Peskov ha smentito la notizia del Wall Street Journal."
    merged = collapse_duplicates([_p("a", "ANSA", text), _p("b", "ANSA", text), _p("b", "Rai", text)])
    assert [(p.outlet, p.article_ids) for p in merged] == [("ANSA", ["a", "b"]), ("Rai", ["b"])]


def test_diversify_moves_a_new_outlet_above_a_near_copy():
    import numpy as np

    from service.pipeline.retrieve import diversify

    ranked = [_p("a", "X", "uno"), _p("b", "X", "due"), _p("c", "Y", "tre"), _p("d", "Z", "quattro")]
    base = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    near = np.array([0.99, 0.14, 0.0], dtype=np.float32)
    other = np.array([0.0, 1.0, 0.0], dtype=np.float32)
    third = np.array([0.0, 0.0, 1.0], dtype=np.float32)
    for p, v in zip(ranked, (base, near / np.linalg.norm(near), other, third), strict=True):
        p.vector = v
    assert [p.text for p in diversify(ranked, 1.0)] == ["uno", "due", "tre", "quattro"]
    assert [p.text for p in diversify(ranked, 0.7)] == ["uno", "tre", "quattro", "due"]
    ranked[3].vector = None  # without vectors nothing changes
    assert diversify(ranked, 0.5) == ranked


def test_prompt_order_groups_articles_and_orders_their_passages():
    from service.pipeline.evidence import order_by_article

    ranked = [_p("a", "X", "uno"), _p("b", "Y", "due"), _p("a", "Z", "tre"), _p("a", "W", "quattro")]
    for p, position in zip(ranked, (2, 0, 0, 1), strict=True):
        p.position = position
    reading = order_by_article(list(ranked))
    assert [p.text for p in reading] == ["tre", "quattro", "uno", "due"]  # article a by position, then b
    assert [p.number for p in reading] == [1, 2, 3, 4]
