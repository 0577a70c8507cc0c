"""Guessed figures: digits the model wrote with low probability leave the answer."""

from __future__ import annotations

import math

from service.pipeline.confidence import drop_guessed_figures, guessed_figures

SURE = math.log(0.98)


def reply(*parts: tuple[str, float]) -> list[tuple[str, float]]:
    return list(parts)


def test_a_figure_written_with_low_joint_probability_is_a_guess():
    pieces = reply(
        ("Sources:", 0.0),
        (" [", 0.0),
        ("1", math.log(0.4)),  # a marker: never a figure
        ("]\n", 0.0),
        ("Secondo X [", 0.0),
        ("1", 0.0),
        ("], il viaggio è il ", 0.0),
        ("1", math.log(0.5)),
        ("4", math.log(0.5)),  # 14: 0.25 jointly
        (" settembre ", 0.0),
        ("1", SURE),
        ("9", SURE),
        ("5", SURE),
        ("5", SURE),
        (".", 0.0),
    )
    assert guessed_figures(pieces, 0.4) == {"14"}
    assert guessed_figures(pieces, 0.2) == set()
    assert guessed_figures(pieces, 0.0) == set()  # off
    assert guessed_figures([], 0.4) == set()  # the backend does not report probabilities


def test_figures_span_pieces_and_separators_and_skip_the_sources_line():
    pieces = reply(
        ("Sources: ", 0.0),
        ("2", math.log(0.1)),  # an unbracketed source number on the sources line
        ("\nIl tasso scende al ", 0.0),
        ("3", SURE),
        (",", 0.0),
        ("7", math.log(0.6)),
        ("5", math.log(0.6)),  # 3,75: 0.35 jointly
        ("% [1].", 0.0),
    )
    assert guessed_figures(pieces, 0.4) == {"3,75"}


def test_a_figure_also_written_with_confidence_is_not_a_guess():
    pieces = reply(("Il ", 0.0), ("4", math.log(0.3)), ("0 e poi ", 0.0), ("4", SURE), ("0.", 0.0))
    assert guessed_figures(pieces, 0.4) == set()


def test_sentences_stating_a_guessed_figure_leave_and_markers_renumber():
    text = "Secondo A [1], è il 14 settembre 1955. Secondo B [2], sono 140 fedeli e 3,14 euro. Secondo C [3], ha 2 anni."
    out, order = drop_guessed_figures(text, [5, 7, 9], {"14"})
    # "140" and "3,14" are other figures: only the sentence stating 14 goes.
    assert out == "Secondo B [1], sono 140 fedeli e 3,14 euro. Secondo C [2], ha 2 anni."
    assert order == [7, 9]
    assert drop_guessed_figures(text, [5, 7, 9], set()) == (text, [5, 7, 9])


def test_digits_of_an_outlet_name_are_not_the_sentence_s_figure():
    text = "Secondo Il Sole 24 ORE [1], la Borsa sale."
    assert drop_guessed_figures(text, [2], {"24"}, ["Il Sole 24 ORE"]) == (text, [2])
    out, order = drop_guessed_figures(text, [2], {"24"})
    assert (out, order) == ("", [])
