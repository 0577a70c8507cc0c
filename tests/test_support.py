"""Sentence-level support checks with the real default embedder (no LLM)."""

from __future__ import annotations

import pytest

from service.backends.embedder import build_embedder
from service.pipeline.retrieve import Passage
from service.pipeline.support import (
    SUPPORTED_MIN,
    SentenceCheck,
    SupportChecker,
    _add_markers,
    claim_of,
    merge_repeats,
)
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


def test_a_citation_does_not_move_to_a_passage_without_the_sentence_s_figures(checker: SupportChecker):
    passages = [
        passage(1, "AgenPress", "Francoforte rivede al rialzo le stime d'inflazione: 2,5% nel 2024.", "Bce"),
        passage(
            2,
            "GEA",
            "La presidente ha spiegato che la disinflazione procede nella direzione giusta e ha indicato "
            "un'inflazione al 2,4% nel 2024, con una stabilizzazione intorno al 2%.",
            "Bce",
        ),
    ]
    # GEA's wording with AgenPress's figure: closest to GEA's passage, but GEA never says 2,5%.
    text = (
        "Secondo AgenPress [1], la presidente ha spiegato che la disinflazione procede nella direzione "
        "giusta e ha indicato un'inflazione al 2,5% nel 2024."
    )
    scores = checker.scores(text, passages)
    assert scores[1] > scores[0] + 0.04  # the wording alone would move it
    _, order, _ = checker.verify(text, passages, [1])
    assert order == [1]
    _, order, _ = checker.verify(text.replace("2,5%", "2,4%"), passages, [1])
    assert order == [2]  # with GEA's own figure it moves


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


CORROBORATING = [
    *PASSAGES,
    passage(
        4, "Italianotizie", "Sono 41 i comuni colpiti dall'alluvione; gli sfollati sono circa ventimila."
    ),
    passage(5, "Il Resto del Carlino", "Sono 38 i comuni colpiti secondo la Regione, che conta i danni."),
]


def test_a_listed_passage_that_states_the_claim_is_cited_too(checker: SupportChecker):
    text = "Secondo Borderline24 [1], i comuni colpiti sono 41."
    _, order, checks = checker.verify(text, CORROBORATING, [3])
    assert order == [3]
    question = "Quanti comuni sono stati colpiti?"
    order, checks = checker.corroborate(question, checks, CORROBORATING, order, [3, 4, 5, 1])
    # Italianotizie states 41 too; the Carlino's 38 (close wording, other figure) and Il Tempo do not
    assert order == [3, 4]
    # the added outlet is named beside the sentence's own: a reader asking which outlets reads it
    assert checks[0].text == "Secondo Borderline24 [1] e Italianotizie [2], i comuni colpiti sono 41."
    assert checks[0].citations == [1, 2]
    # unlisted, Italianotizie still qualifies: it holds the claim's own figure, 41
    _, order2, checks2 = checker.verify(text, CORROBORATING, [3])
    order2, checks2 = checker.corroborate(question, checks2, CORROBORATING, order2, [])
    assert order2 == [3, 4]
    # but a claim without a figure of its own takes only what the model listed
    text = "Secondo Borderline24 [1], nella notte l'acqua ha invaso strade e abitazioni a Cesena."
    _, order3, checks3 = checker.verify(text, CORROBORATING, [1])
    order3, checks3 = checker.corroborate("Dove è arrivata l'acqua?", checks3, CORROBORATING, order3, [])
    assert order3 == [1] and checks3[0].citations == [1]


def test_corroboration_needs_the_asked_figure_and_half_of_the_claims_own(checker: SupportChecker):
    # the model joins the asked figure to a neighbouring one of its passage ("41 … 20 mila"):
    # Italianotizie prints 41 but spells the other out ("ventimila") and still states the fact
    passages = [
        *CORROBORATING,
        passage(
            6,
            "Corriere Romagna",
            "Secondo la Regione, i comuni colpiti dalle piene sono 41 e gli sfollati circa 20 mila, "
            "in gran parte nel Ravennate.",
        ),
    ]
    text = "Secondo Corriere Romagna [1], i comuni colpiti sono 41 e gli sfollati circa 20 mila."
    _, order, checks = checker.verify(text, passages, [6])
    order, checks = checker.corroborate(
        "Quanti comuni sono stati colpiti?", checks, passages, order, [3, 4, 5]
    )
    assert order == [6, 3, 4]  # Borderline24 holds both figures, Italianotizie one of two, Carlino none
    # a figure the question gave must be in the corroborating passage: 38 is not 41
    text = "Secondo Borderline24 [1], i comuni colpiti sono 41."
    _, order, checks = checker.verify(text, CORROBORATING, [3])
    question = "Quali testate indicano in 41 il numero dei comuni colpiti?"
    order, checks = checker.corroborate(question, checks, CORROBORATING, order, [4, 5])
    assert order == [3, 4] and checks[0].citations == [1, 2]


def test_a_sentence_far_from_the_question_is_left_out(checker: SupportChecker):
    text = (
        "Secondo Borderline24 [1], i comuni colpiti dall'alluvione sono 41. "
        "Secondo Il Tempo [2], nella notte l'acqua ha invaso di nuovo strade e abitazioni a Cesena."
    )
    _, order, checks = checker.verify(text, PASSAGES, [3, 1])
    order, checks = checker.drop_tangents(
        "Quanti comuni sono stati colpiti dall'alluvione?", checks, PASSAGES, order
    )
    assert [c.text for c in checks] == ["Secondo Borderline24 [1], i comuni colpiti dall'alluvione sono 41."]
    assert order == [3]
    # two sides of one question both stay
    text = (
        "Secondo Borderline24 [1], le vittime sono nove. "
        "Secondo ANSA [2], gli sfollati sono almeno cinquemila."
    )
    _, order, checks = checker.verify(text, PASSAGES, [3, 2])
    order, checks = checker.drop_tangents("Quante vittime e quanti sfollati?", checks, PASSAGES, order)
    assert len(checks) == 2 and order == [3, 2]


def test_each_outlet_the_question_names_keeps_its_closest_sentence(checker: SupportChecker):
    text = (
        "Secondo Borderline24 [1], i comuni colpiti dall'alluvione sono 41. "
        "Secondo Il Tempo [2], nella notte l'acqua ha invaso di nuovo strade e abitazioni a Cesena."
    )
    question = "Quanti comuni sono stati colpiti dall'alluvione secondo Borderline24 e secondo Il Tempo?"
    _, order, checks = checker.verify(text, PASSAGES, [3, 1])
    _, unnamed = checker.drop_tangents(question, checks, PASSAGES, order)
    assert len(unnamed) == 1  # far from the question: a tangent, unless the question asks for it
    order, named = checker.drop_tangents(question, checks, PASSAGES, order, ["Borderline24", "Il Tempo"])
    assert len(named) == 2 and order == [3, 1]


def test_a_claim_repeated_under_several_outlets_is_written_once(checker: SupportChecker):
    checks = [
        SentenceCheck("Secondo Borderline24 [1], i comuni colpiti sono 41.", [1], False, 0.9),
        SentenceCheck("Secondo Italianotizie [2], i comuni colpiti sono 41.", [2], False, 0.9),
        SentenceCheck("Secondo ANSA [3], gli sfollati sono almeno cinquemila.", [3], False, 0.9),
    ]
    order, merged, repeated = merge_repeats(checks, CORROBORATING, [3, 4, 2])
    assert [c.text for c in merged] == [
        "Secondo Borderline24 [1], i comuni colpiti sono 41.",
        "Secondo ANSA [2], gli sfollati sono almeno cinquemila.",
    ]
    assert order == [3, 2] and repeated == [4]
    # the repeat's outlet comes back as a citation only when its passage states the claim
    order, merged = checker.corroborate("Quanti comuni?", merged, CORROBORATING, order, repeated)
    assert [c.text for c in merged] == [
        "Secondo Borderline24 [1] e Italianotizie [2], i comuni colpiti sono 41.",
        "Secondo ANSA [3], gli sfollati sono almeno cinquemila.",
    ]
    assert order == [3, 4, 2]


def test_added_outlets_are_named_in_the_sentence_lead():
    order = [3]
    text = _add_markers("According to Borderline24 [1], 41 towns were hit.", [4, 5], order, CORROBORATING)
    assert (
        text
        == "According to Borderline24 [1], Italianotizie [2] and Il Resto del Carlino [3], 41 towns were hit."
    )
    assert order == [3, 4, 5]
    assert _add_markers("Selon Borderline24 [1], 41 communes.", [4], [3], CORROBORATING) == (
        "Selon Borderline24 [1] et Italianotizie [2], 41 communes."
    )
    # no lead naming the outlet: markers only
    assert (
        _add_markers("I comuni colpiti sono 41 [1].", [4], [3], CORROBORATING)
        == "I comuni colpiti sono 41 [1] [2]."
    )
