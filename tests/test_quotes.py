"""Sentences the service quotes itself, with the real default embedder (no LLM)."""

from __future__ import annotations

import pytest

from service.backends.embedder import build_embedder
from service.pipeline.listing import passages_stating
from service.pipeline.quotes import answer_stating, cite_stating, keep_stating, quote_named, quote_sources
from service.pipeline.support import SentenceCheck, SupportChecker
from service.settings import EmbedSettings
from tests.test_support import CORROBORATING, passage


@pytest.fixture(scope="module")
def checker() -> SupportChecker:
    return SupportChecker(build_embedder(EmbedSettings()))


LISTING = [
    *CORROBORATING,
    passage(
        6,
        "Corriere Romagna",
        "Le piene hanno colpito 41 comuni. Gli sfollati sono ventimila, dice la Regione.",
    ),
]


def test_which_outlets_answers_keep_the_sentences_on_outlets_that_state_the_detail(checker: SupportChecker):
    question = "Quali testate indicano in 41 il numero dei comuni colpiti?"
    stating = passages_stating(question, LISTING)
    assert stating.numbers == {3, 4, 6}
    text = (
        "Secondo ANSA [1], gli sfollati sono almeno cinquemila. "
        "Secondo Borderline24 [2], il conto delle vittime è di nove e i comuni colpiti sono 41."
    )
    _, order, checks = checker.verify(text, LISTING, [2, 3])
    order, checks = keep_stating(checks, order, stating)
    # ANSA's sentence is about the story, not about who says 41
    assert [c.text for c in checks] == [
        "Secondo Borderline24 [1], il conto delle vittime è di nove e i comuni colpiti sono 41."
    ]
    assert order == [3]
    # the other outlets that say 41 are quoted in their own words, after the sentence stating it
    order, checks = cite_stating(
        checker, checks, LISTING, order, stating, lambda o, m, q: f"Secondo {o} {m}: «{q}»"
    )
    assert [c.text for c in checks] == [
        "Secondo Borderline24 [1], il conto delle vittime è di nove e i comuni colpiti sono 41.",
        "Secondo Italianotizie [2]: «Sono 41 i comuni colpiti dall'alluvione; gli sfollati sono circa ventimila.»",
        "Secondo Corriere Romagna [3]: «Le piene hanno colpito 41 comuni.»",
    ]
    assert order == [3, 4, 6] and [c.citations for c in checks] == [[1], [2], [3]]
    assert not any(c.unsupported for c in checks)


def test_which_outlets_answers_are_left_alone_when_no_sentence_rests_on_the_detail(checker: SupportChecker):
    question = "Quali testate indicano in 41 il numero dei comuni colpiti?"
    stating = passages_stating(question, LISTING)
    text = "Secondo ANSA [1], gli sfollati sono almeno cinquemila."
    _, order, checks = checker.verify(text, LISTING, [2])
    assert keep_stating(checks, order, stating) == (order, checks)
    assert cite_stating(checker, checks, LISTING, order, stating, lambda o, m, q: "") == (order, checks)


def test_an_answer_resting_off_the_models_own_sources_is_replaced_by_a_quote_of_them(checker: SupportChecker):
    sources = [
        passage(
            1,
            "Affaritaliani.it",
            "Notte di paura a Pozzuoli. Il sindaco di Napoli ha chiuso le scuole in diverse zone della città. "
            "Per l'Ingv il suolo si solleva di 2 centimetri al mese.",
            title="Sciame sismico ai Campi Flegrei",
        ),
        passage(
            2,
            "Corriere Adriatico",
            "La Protezione civile non segnala feriti ma alcune lesioni agli edifici.",
            title="Sciame sismico ai Campi Flegrei",
        ),
    ]
    question = "Chi ha disposto la chiusura delle scuole a Napoli?"
    text = "Secondo Corriere Adriatico [1], la Protezione civile non segnala feriti."
    _, order, checks = checker.verify(text, sources, [2])
    say = lambda o, m, q: f"Secondo {o} {m}: «{q}»"  # noqa: E731
    # the model listed [1] as its evidence and wrote from [2]: [1]'s closest sentence is shown
    order2, checks2 = quote_sources(checker, question, checks, sources, order, [1], [2], say)
    assert order2 == [1]
    assert [c.text for c in checks2] == [
        "Secondo Affaritaliani.it [1]: «Il sindaco di Napoli ha chiuso le scuole in diverse zone della città.»"
    ]
    assert checks2[0].citations == [1] and not checks2[0].unsupported
    # a sentence on a listed passage, no sources line, or nothing backed: left as written
    assert quote_sources(checker, question, checks, sources, order, [2], [2], say) == (order, checks)
    assert quote_sources(checker, question, checks, sources, order, [], [2], say) == (order, checks)
    flagged = [SentenceCheck(checks[0].text, [], True, 0.5)]
    assert quote_sources(checker, question, flagged, sources, order, [1], [2], say) == (order, flagged)
    # the model cited its listed passage and verification moved the citation: a correction, kept
    assert quote_sources(checker, question, checks, sources, order, [1], [1], say) == (order, checks)


def test_each_named_outlet_left_without_a_sentence_gets_its_own_closest_sentence(checker: SupportChecker):
    flood = [
        passage(
            1,
            "LiveSicilia",
            "Sale a nove il numero delle vittime. Le persone evacuate sono 13 mila, i fiumi esondati 21.",
        ),
        passage(2, "Italianotizie", "Le vittime salgono a 13: le ultime sono due coniugi di Russi."),
    ]
    question = "How many people died according to LiveSicilia, and according to Italianotizie?"
    say = lambda o, m, q: f"According to {o} {m}: “{q}”"  # noqa: E731
    checks = [SentenceCheck("According to Italianotizie [1], 13 people died.", [1], False, 0.9)]
    order, out = quote_named(checker, question, checks, flood, [2], ["LiveSicilia", "Italianotizie"], say)
    # the LiveSicilia side the model got wrong (and grounding dropped) comes back in its own words
    assert [c.text for c in out] == [
        "According to Italianotizie [1], 13 people died.",
        "According to LiveSicilia [2]: “Sale a nove il numero delle vittime.”",
    ]
    assert order == [2, 1] and out[1].citations == [2] and not out[1].unsupported
    # nothing to stand beside: no quotes instead of an answer
    flagged = [SentenceCheck("According to Italianotizie, 13 people died.", [], True, 0.5)]
    assert quote_named(checker, question, flagged, flood, [], ["LiveSicilia"], say) == ([], flagged)


def test_an_answer_on_no_passage_with_the_detail_gives_way_to_the_closest_that_has_it(
    checker: SupportChecker,
):
    question = "Quale testata indica in 41 il numero dei comuni colpiti?"
    stating = passages_stating(question, LISTING)
    assert stating.numbers == {3, 4, 6} and stating.one
    say = lambda o, m, q: f"Secondo {o} {m}: «{q}»"  # noqa: E731
    _, order, checks = checker.verify("Secondo ANSA [1], gli sfollati sono almeno cinquemila.", LISTING, [2])
    order, checks = answer_stating(checker, question, checks, LISTING, order, stating, say)
    assert len(checks) == 1 and order[0] in stating.numbers
    assert "41" in checks[0].text and checks[0].citations == [1] and not checks[0].unsupported
    # a question for one outlet keeps the one it has: no other outlet is added
    assert cite_stating(checker, checks, LISTING, order, stating, say) == (order, checks)
    # an answer already on a passage with the detail, or withheld, is left as it is
    _, order2, checks2 = checker.verify("Secondo Borderline24 [1], i comuni colpiti sono 41.", LISTING, [3])
    assert answer_stating(checker, question, checks2, LISTING, order2, stating, say) == (order2, checks2)
    flagged = [SentenceCheck("Gli sfollati sono cinquemila.", [], True, 0.5)]
    assert answer_stating(checker, question, flagged, LISTING, [], stating, say) == ([], flagged)


def test_an_unsupported_sentence_on_a_stating_passage_does_not_decide(checker: SupportChecker):
    stating = passages_stating("Quali testate indicano in 41 il numero dei comuni colpiti?", LISTING)
    checks = [
        SentenceCheck("Secondo ANSA [1], gli sfollati sono almeno cinquemila.", [1], False, 0.9),
        SentenceCheck("Secondo Borderline24 [2], il sindaco si è dimesso.", [2], True, 0.5),
    ]
    assert keep_stating(checks, [2, 3], stating) == ([2, 3], checks)


def test_a_quoted_sentence_is_one_outlets_words_and_gets_no_corroborating_outlet(checker: SupportChecker):
    text = "Secondo Borderline24 [1]: «I comuni colpiti sono 41, gli sfollati circa 20 mila.»"
    _, order, checks = checker.verify(text, CORROBORATING, [3])
    order, checks = checker.corroborate("Quanti comuni?", checks, CORROBORATING, order, [4])
    assert order == [3] and checks[0].text == text
