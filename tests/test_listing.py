"""Which-outlets questions: the telling detail and the passages that state it (pure logic)."""

from __future__ import annotations

import pytest

from service.pipeline.listing import asks_which_outlets, passages_stating
from tests.test_support import passage

FLOOD = [
    passage(1, "ANSA", "Il primo bilancio dell'Emilia-Romagna parla di due morti e 23 comuni allagati."),
    passage(
        2, "Borderline24", "Il conto delle vittime è di nove. I comuni colpiti sono 41, gli sfollati 20 mila."
    ),
    passage(
        3,
        "Italianotizie",
        "Le vittime salgono a 13; i comuni coinvolti sono 41 e gli sfollati circa 10 mila.",
    ),
    passage(
        4,
        "Corriere della Sera",
        "L'allerta rossa è prolungata fino a giovedì 18 maggio. I comuni sott'acqua sono 24.",
    ),
    passage(
        5,
        "Il Tempo",
        "Nella notte l'acqua ha invaso strade e case a Cesena, secondo la Regione Emilia-Romagna.",
    ),
]


@pytest.mark.parametrize(
    ("question", "asks"),
    [
        ("Quali testate indicano in 41 il numero dei comuni colpiti?", True),
        ("Quale testata riferisce che Musk ha parlato con Kiriyenko?", True),
        ("Which outlets link the report to the 5 November election?", True),
        ("Which outlet says that Musk wanted Russian TV on air?", True),
        ("What newspapers reported the fine?", True),
        ("Quale stima di inflazione riporta AgenPress?", False),
        ("Quanti comuni sono stati colpiti?", False),
        ("Which city was hit hardest?", False),
        ("Which sources report the evacuation?", True),
        ("Which news agency reported the fine first?", True),
        ("È vero che fonti ucraine confermano 41 vittime?", False),
        ("Which agency downgraded Italy's rating?", False),
        ("What sources of energy does Italy import?", False),
    ],
)
def test_which_outlets_questions_are_recognised(question: str, asks: bool):
    assert asks_which_outlets(question) is asks


def test_a_figure_singles_out_the_passages_that_state_it():
    stating = passages_stating("Quali testate indicano in 41 il numero dei comuni colpiti?", FLOOD)
    assert stating.numbers == {2, 3} and not stating.one
    assert passages_stating("Quale testata indica 41 comuni colpiti?", FLOOD).one  # asks for one outlet
    # the quote is the passage's sentence that holds the detail, verbatim
    assert stating.quote(FLOOD[1].text) == "I comuni colpiti sono 41, gli sfollati 20 mila."


def test_a_day_and_month_and_a_name_are_details_too():
    by_date = passages_stating("Which outlets mention 18 May?", FLOOD)
    assert by_date.numbers == {4}
    by_name = passages_stating("Quali testate citano Cesena?", FLOOD)
    assert by_name.numbers == {5}
    # every detail must be held: Cesena and 41 are never in one passage
    assert passages_stating("Quali testate citano Cesena e 41 comuni?", FLOOD).numbers == set()


def test_story_names_years_and_unheld_words_single_nothing_out():
    # "Emilia-Romagna" is in every title; 2023 names the story; "Bologna" is in no passage
    for question in (
        "Quali testate parlano dell'alluvione in Emilia-Romagna?",
        "Quali testate raccontano l'alluvione del 2023?",
        "Which outlets mention Bologna?",
    ):
        assert passages_stating(question, FLOOD).numbers == set(), question
    # a detail half of the passages hold still counts; one most of them hold does not
    assert passages_stating("Quali testate citano i comuni colpiti e le vittime, 41?", FLOOD).numbers == {
        2,
        3,
    }
    assert passages_stating("Quanti comuni sono 41?", FLOOD).numbers == set()  # not a which-outlets question


def test_the_quote_cannot_carry_markup_or_forge_a_marker():
    stating = passages_stating("Quali testate indicano 41 comuni?", FLOOD)
    text = "Premessa. I comuni <b>colpiti</b> sono 41 [3] secondo https://x.example/a la Regione."
    quote = stating.quote(text)
    assert "<b>" not in quote and "https://" not in quote and "[3]" not in quote
    assert "41 (3)" in quote
    # a tag split to survive one cleaning pass, and a long bracketed number, are not let through
    quote = stating.quote("I comuni sono 41 <<b>script>alert(1)<</b>/script> [0001].")
    assert "<" not in quote and ">" not in quote and "[" not in quote


def test_a_capital_inside_a_word_is_not_a_name():
    assert (
        passages_stating("Quali testate citano l'iPhone?", [*FLOOD, passage(6, "X", "Un Phone.")]).numbers
        == set()
    )
