"""Sentence-level support checks with the real default embedder (no LLM)."""

from __future__ import annotations

import pytest

from service.backends.embedder import build_embedder
from service.pipeline.retrieve import Passage
from service.pipeline.support import SUPPORTED_MIN, SupportChecker, claim_of
from service.settings import EmbedSettings


def passage(n: int, outlet: str, text: str, title: str = "Alluvione in Emilia-Romagna") -> Passage:
    return Passage(
        chunk_id=str(n),
        article_id="a.txt",
        outlet=outlet,
        title=title,
        text=text,
        url=None,
        published=None,
        score=0.0,
        dense_score=0.8,
        number=n,
    )


PASSAGES = [
    passage(1, "Il Tempo", "Nella notte l'acqua ha invaso di nuovo strade e abitazioni a Cesena e Forlì."),
    passage(
        2,
        "ANSA",
        "Il ministro Musumeci ha detto che gli sfollati sono almeno cinquemila e che i danni sono ingenti.",
    ),
    passage(
        3,
        "Borderline24",
        "Il conto delle vittime è di nove. I comuni colpiti sono 41, gli sfollati circa 20 mila.",
    ),
]


@pytest.fixture(scope="module")
def checker() -> SupportChecker:
    return SupportChecker(build_embedder(EmbedSettings()))


def test_claim_drops_markers_outlets_and_the_attribution_lead():
    assert claim_of("Secondo ANSA [2], il ministro Musumeci parla di cinquemila sfollati.", PASSAGES) == (
        "il ministro Musumeci parla di cinquemila sfollati."
    )


def test_citation_moves_to_the_passage_that_states_the_claim(checker: SupportChecker):
    text = "Secondo Il Tempo [1], il ministro Musumeci ha detto che gli sfollati sono almeno cinquemila."
    final, order, checks = checker.verify(text, PASSAGES, [1])
    assert order == [2]
    assert (
        final
        == "Secondo Il Tempo [1], il ministro Musumeci ha detto che gli sfollati sono almeno cinquemila."
    )
    assert checks[0].citations == [1] and not checks[0].unsupported


def test_correct_citation_is_kept(checker: SupportChecker):
    text = "Secondo Borderline24 [1], i comuni colpiti sono 41. Secondo ANSA [2], gli sfollati sono almeno cinquemila."
    final, order, checks = checker.verify(text, PASSAGES, [3, 2])
    assert order == [3, 2] and final == text
    assert [c.citations for c in checks] == [[1], [2]]
    assert not any(c.unsupported for c in checks)


def test_uncited_sentence_gets_the_passage_that_clearly_supports_it(checker: SupportChecker):
    text = "Il conto delle vittime è di nove e i comuni colpiti sono 41."
    final, order, checks = checker.verify(text, PASSAGES, [])
    assert order == [3] and final.endswith("41 [1].")
    assert checks[0].citations == [1] and not checks[0].unsupported


def test_sentence_no_passage_supports_is_flagged_not_hidden(checker: SupportChecker):
    text = (
        "Secondo ANSA [1], ha gli sfollati. La finale di Sanremo è stata vinta da Angelina Mango con La noia."
    )
    final, _, checks = checker.verify(text, PASSAGES, [2])
    assert len(checks) == 2
    sanremo = checks[1]
    assert sanremo.text.startswith("La finale di Sanremo")
    assert sanremo.unsupported and sanremo.citations == [] and sanremo.support < SUPPORTED_MIN
    assert "Sanremo" in final  # flagged, not silently removed
