"""The kind of value a question asks for, and answers that talk around it."""

from __future__ import annotations

import pytest

from service.pipeline.answer_type import asked_kind, gives_kind, misses_asked_kind


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("A che ora è morto Silvio Berlusconi?", "time"),
        ("At what time was the Habemus Papam proclaimed?", "time"),
        ("On what date was the body found?", "date"),
        ("In che anno è nato Leone XIV?", "date"),
        ("In what year was he ordained?", "date"),
        ("How many people died in the flood?", "number"),
        ("According to Malagò, how many athletes reached a final?", "number"),
        ("Quante medaglie d'oro ha vinto l'Italia?", "number"),
        ("A quanto ammonta la multa?", "number"),
        ("Quanto era durato il primo ricovero?", "number"),
        ("Che percentuale ha ottenuto Geolier?", "number"),
        ("What share of the vote did Annalisa get?", "number"),
        ("In che posizione si è classificata all'Eurovision?", "rank"),
        ("What place did Italy finish in the medal table?", "rank"),
        ("Per quanto tempo è rimasto in ospedale?", "number"),
        ("Entro quanti giorni saranno depositate le motivazioni?", "number"),
        ("Who denied the contacts?", None),
        ("Secondo quanto riportato dall'ANSA, chi ha vinto il Festival?", None),
        ("Quanto a Salvini, cosa ha detto?", None),
        ("Cosa è emerso su quanto accaduto a Caivano?", None),
        ("Which place was hit hardest by the flood?", None),
        ("Che posizione ha assunto la Lega sul premierato?", None),
        ("What time of year is the festival held?", None),
        ("Quale testata riporta la smentita?", None),
        ("Perché la Corte ha escluso la crudeltà, in quanto aggravante?", None),
        ("Per quanto riguarda la Bce, cosa ha detto Lagarde?", None),
        ("What was the result of the match?", None),
    ],
)
def test_the_kind_a_question_asks_for(question, kind):
    assert asked_kind(question) == kind


def test_an_answer_gives_the_kind_only_with_a_value_the_question_did_not_hold():
    assert gives_kind("time", "si è spento alle 9:30 al San Raffaele", "A che ora?")
    assert gives_kind("time", "proclaimed at 19.13", "At what time?")
    for time in ("poco dopo le 10", "verso le 18", "at 9 in the morning", "alle nove", "at noon"):
        assert gives_kind("time", time, "A che ora?"), time
    assert not gives_kind("time", "la Borsa ha interrotto le contrattazioni il 19 luglio", "A che ora?")
    assert gives_kind("date", "found on November 18, 2023", "On what date was it found?")
    assert gives_kind("date", "è stato ordinato nel 1982", "In che anno?")
    assert gives_kind("date", "si è riunito lunedì", "What day did it meet?")
    # the question's own date is not an answer to "what date after it?"
    question = "On what date did the ECB cut rates again after the cut of 6 June 2024?"
    assert not gives_kind("date", "after the cut of 6 June 2024 Lagarde did not commit", question)
    assert gives_kind("number", "il conto delle vittime è di nove", "Quanti morti?")
    assert gives_kind("number", "ha vinto 12 ori", "Quante medaglie d'oro nel 2024?")
    assert gives_kind("number", "twenty-three years old", "How old is he?")
    for amount in (
        "duecento",
        "tremila",
        "quarantadue",
        "cinquantatré",
        "ventuno",
        "una decina",
        "only one died",
    ):
        assert gives_kind("number", amount, "Quanti?"), amount
    # words that merely start like a number, the article "un", English "due to"
    for other in ("Ventimiglia", "ventilatori", "millennio", "Trento", "un uomo", "due to the outage"):
        assert not gives_kind("number", other, "Quanti?"), other
    assert not gives_kind("number", "United, Delta and American suspended all flights", "How many flights?")
    assert not gives_kind("number", "the outage of 19 July 2024", "How many flights after 19 July 2024?")


def test_a_rank_is_an_ordinal_not_an_italian_according_to():
    question = "In che posizione si è classificata?"
    assert gives_kind("rank", "si è classificata settima", question)
    assert gives_kind("rank", "è arrivata seconda", question)
    assert gives_kind("rank", "Italy finished 9th in the medal table", "What place?")
    assert gives_kind("rank", "Angelina Mango ha vinto", question)
    assert gives_kind("rank", "si è classificata undicesima", question)
    assert gives_kind("rank", "Italy finished eleventh", "What place?")
    assert not misses_asked_kind(
        question, ["Secondo Sport.it [1], è arrivata seconda, dietro la Croazia."], ["Sport.it"]
    )
    # "Secondo <outlet> [1]," is "according to"; percentages are not a place
    assert misses_asked_kind(question, ["Secondo Sport.it [1], ha chiuso con il 40,3%."], ["Sport.it"])
    assert misses_asked_kind(question, ["Secondo quanto riferito, la gara è stata seguita."], [])


def test_outlet_names_and_markers_are_not_values():
    outlets = ["RTL 102.5", "Il Sole 24 ORE"]
    assert misses_asked_kind("How many died?", ["According to RTL 102.5 [1], many died."], outlets)
    assert misses_asked_kind("A che ora?", ["Secondo il Sole 24 ORE [2], è morto in mattinata."], outlets)
    assert not misses_asked_kind("How many died?", ["According to RTL 102.5 [1], 13 died."], outlets)
    # a question that asks for no kind of value is never missed
    assert not misses_asked_kind("Who denied it?", ["According to RTL 102.5 [1], Peskov."], outlets)
