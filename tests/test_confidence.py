"""Guessed figures: digits the model wrote with low probability leave the answer."""

from __future__ import annotations

import math

import numpy as np

from service.backends.llm.token_logprobs import TokenLogprobs
from service.pipeline.confidence import drop_guessed_figures, guessed_figures

SURE = math.log(0.98)
HALF = math.log(0.5)


def test_a_figure_written_with_low_joint_probability_is_a_guess():
    pieces = [
        ("Sources:", 0.0),
        (" [", 0.0),
        ("1", math.log(0.4)),
        ("]\n", 0.0),
        ("Secondo X [", 0.0),
        ("2", math.log(0.1)),  # a citation marker, however unsure: never a figure
        ("], il viaggio è il ", 0.0),
        ("1", HALF),
        ("4", HALF),  # 14: 0.25 jointly
        (" settembre ", 0.0),
        ("1", SURE),
        ("9", SURE),
        ("5", SURE),
        ("5", SURE),
        (".", 0.0),
    ]
    assert guessed_figures(pieces, 0.4) == {"14"}
    assert guessed_figures(pieces, 0.2) == set()
    assert guessed_figures(pieces, 0.0) == set()  # off
    assert guessed_figures([], 0.4) == set()  # the backend does not report probabilities
    assert guessed_figures(pieces, 0.4, question="Che cosa accade il 14?") == set()  # the question's own


def test_figures_span_pieces_and_separators_and_only_the_sources_list_is_skipped():
    pieces = [
        ("Sources: ", 0.0),
        ("2", math.log(0.1)),  # an unbracketed passage number on the sources line
        (" Il tasso scende al ", 0.0),  # the model answers on the same line
        ("3", SURE),
        (",", 0.0),
        ("7", math.log(0.6)),
        ("5", math.log(0.6)),  # 3,75: 0.35 jointly
        ("% [1]. Vince ", 0.0),
        ("2", SURE),
        ("-", 0.0),
        ("0", math.log(0.3)),  # one figure, "2-0"
        (" contro il G", 0.0),
        ("7", math.log(0.1)),  # a name's digit, not a figure
        (".", 0.0),
    ]
    assert guessed_figures(pieces, 0.4) == {"3,75", "2-0"}


def test_a_guess_is_judged_where_it_is_first_written():
    # Later mentions copy the reply's own figure with certainty: still a guess.
    pieces = [("Il ", 0.0), ("4", math.log(0.3)), ("0 e poi ", 0.0), ("4", SURE), ("0.", 0.0)]
    assert guessed_figures(pieces, 0.4) == {"40"}
    # Digits of an outlet name are not its first mention.
    pieces = [("Secondo Il Sole 24 ORE, sono ", 0.0), ("2", HALF), ("4", HALF), (" miliardi.", 0.0)]
    assert guessed_figures(pieces, 0.4, outlets=["Il Sole 24 ORE"]) == {"24"}


def test_sentences_stating_a_guessed_figure_leave_and_markers_renumber():
    text = (
        "Secondo A [1], è il 14 settembre 1955. Secondo B [2], sono 140 fedeli e 3,14 euro. "
        "Secondo C [3], ha 2 anni."
    )
    out, order = drop_guessed_figures(text, [5, 7, 9], {"14"})
    # "140" and "3,14" are other figures: only the sentence stating 14 goes.
    assert out == "Secondo B [1], sono 140 fedeli e 3,14 euro. Secondo C [2], ha 2 anni."
    assert order == [7, 9]
    assert drop_guessed_figures(text, [5, 7, 9], set()) == (text, [5, 7, 9])


def test_a_citation_marker_or_a_word_s_digits_are_not_the_guessed_figure():
    text = "Secondo A [1], sono morte 2 persone. Secondo B [2], il ponte è chiuso [1, 2]. Il COVID-19 e il G2 no."
    out, order = drop_guessed_figures(text, [4, 6], {"2", "19"})
    assert out == "Secondo B [1], il ponte è chiuso [2][1]. Il COVID-19 e il G2 no."
    assert order == [6, 4]


def test_digits_of_an_outlet_name_are_not_the_sentence_s_figure():
    text = "Secondo Il Sole 24 ORE [1], la Borsa sale."
    assert drop_guessed_figures(text, [2], {"24"}, ["Il Sole 24 ORE"]) == (text, [2])
    assert drop_guessed_figures(text, [2], {"24"}) == ("", [])


class _Vocabulary:
    """Three tokens: 0 = " il", 1 = "1", 2 = "4"."""

    def n_vocab(self) -> int:
        return 3

    def detokenize(self, tokens: list[int]) -> bytes:
        return "".join([" il", "1", "4"][t] for t in tokens).encode()


def test_the_recorder_pairs_each_sampled_token_with_its_probability_from_the_call_before():
    recorder = TokenLogprobs(_Vocabulary())
    uniform = np.zeros(3, dtype=np.float32)
    sure_of_4 = np.array([-30.0, -30.0, 0.0], dtype=np.float32)
    recorder(np.array([7]), uniform)  # the first call: nothing sampled yet
    assert recorder.tokens == []
    recorder(np.array([7, 0]), uniform)  # " il" was sampled: no digit, not normalised
    recorder(np.array([7, 0, 1]), sure_of_4)  # "1", sampled from the uniform logits
    recorder(np.array([7, 0, 1, 2]), uniform)  # "4", sampled when it was sure
    assert [t for t, _ in recorder.tokens] == [0, 1, 2]
    assert recorder.tokens[0][1] == 0.0
    assert abs(recorder.tokens[1][1] - np.log(1 / 3)) < 1e-6
    assert abs(recorder.tokens[2][1]) < 1e-6
    assert recorder.pieces() == [(" il", 0.0), ("1", recorder.tokens[1][1]), ("4", recorder.tokens[2][1])]
