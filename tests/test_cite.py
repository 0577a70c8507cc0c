"""Citation markers while streaming: holding back, dropping, renumbering."""

from __future__ import annotations

from service.pipeline.answer import (
    attach_missing_citations,
    drop_unsupported_numbers,
    missing_question_numbers,
)
from service.pipeline.cite import (
    MarkerRewriter,
    fix_attributions,
    markers_in,
    number_keys,
    rewrite_markers,
    tidy_spacing,
    unsupported_numbers,
)
from service.pipeline.grounding import recite_figures
from service.pipeline.retrieve import Passage


def feed_all(deltas: list[str], valid: int) -> tuple[str, list[int], list[str]]:
    rw = MarkerRewriter(valid)
    pieces = [rw.feed(d) for d in deltas] + [rw.flush()]
    return "".join(pieces), rw.order, pieces


def test_marker_split_across_chunks_is_held_then_renumbered():
    text, order, pieces = feed_all(["Peskov denied it [", "3", "]. Also [1", "]."], valid=5)
    assert text == "Peskov denied it [1]. Also [2]."
    assert order == [3, 1]
    assert "[" not in pieces[0]  # nothing partial was emitted
    assert all(p.count("[") == p.count("]") for p in pieces)


def test_dangling_and_out_of_range_markers_are_dropped():
    text, order = rewrite_markers("A [7]. B [2]. C [0].", valid=3)
    assert text == "A . B [1]. C ."
    assert order == [2]
    assert tidy_spacing(text) == "A. B [1]. C."
    text, order, _ = feed_all(["Trailing [", "2"], valid=3)
    assert text == "Trailing [2" and order == []  # an unfinished marker is plain text


def test_grouped_markers_and_repeats():
    text, order = rewrite_markers("X [2, 4]. Y [4][2]. Z [2].", valid=4)
    assert text == "X [1][2]. Y [2][1]. Z [1]."
    assert order == [2, 4]
    assert markers_in(text) == [1, 2, 2, 1, 1]


def test_brackets_that_are_not_markers_pass_through():
    text, order = rewrite_markers("Il voto [ndr: televoto] e [a] sono testo.", valid=3)
    assert text == "Il voto [ndr: televoto] e [a] sono testo."
    assert order == []


def _passage(outlet: str, text: str, title: str = "T") -> Passage:
    return Passage("id", "art", outlet, title, text, None, None, 1.0, 0.9, ["art"])


def test_uncited_sentence_gets_the_outlet_it_names():
    passages = [_passage("Panorama", "Turetta ha 23 anni."), _passage("Reggio Sera", "Turetta ha 22 anni.")]
    order = [1]
    out = attach_missing_citations(
        "According to Panorama [1], he is 23. According to Reggio Sera, he is 22.", passages, order
    )
    assert out.endswith("According to Reggio Sera, he is 22 [2].")
    assert order == [1, 2]


def test_uncited_unsupported_sentence_stays_uncited():
    passages = [_passage("ANSA", "Il ponte chiude a marzo.")]
    order: list[int] = []
    out = attach_missing_citations("The weather in Tokyo is sunny today.", passages, order)
    assert order == [] and "[" not in out


def test_an_unmarked_sentence_gets_the_passage_the_model_listed_as_its_source():
    # English answer, Italian passages: too few shared words to attach by overlap; the
    # model named passage 2 on its sources line, so that is the sentence's citation.
    passages = [
        _passage("TPI", "Leone XIV succede a Francesco."),
        _passage("Blasting News", "Nato a Chicago il 14 settembre 1955, agostiniano."),
        _passage("CoratoViva", "La fumata bianca alle 18:07."),
    ]
    order: list[int] = []
    sentence = "Leo XIV was born in Chicago on September 14, 1955."
    assert attach_missing_citations(sentence, passages, order) == sentence and order == []
    out = attach_missing_citations(sentence, passages, order, listed=[2, 9])
    assert out == "Leo XIV was born in Chicago on September 14, 1955 [1]." and order == [2]
    order = []
    out = attach_missing_citations("According to TPI, he succeeds Francis.", passages, order, listed=[2])
    assert out == "According to TPI, he succeeds Francis [1]." and order == [1]  # the outlet it names wins


def test_attribution_names_follow_the_marker():
    outlets = {1: "Il Messaggero Veneto", 2: "WIRED Italia"}
    text = "Secondo Il Giorno [1], Peskov ha smentito. According to the article [2], it was false."
    assert fix_attributions(text, outlets) == (
        "Secondo Il Messaggero Veneto [1], Peskov ha smentito. According to WIRED Italia [2], it was false."
    )
    same = "Secondo il Messaggero Veneto [1], Peskov ha smentito."
    assert fix_attributions(same, outlets) == same
    assert fix_attributions("Peskov ha smentito [3].", outlets) == "Peskov ha smentito [3]."
    # names with dots are names too; a sentence's full stop still ends the name
    dotted = "Secondo Fanpage.it [1], era Corey Comperatore."
    assert (
        fix_attributions(dotted, {1: "Italianotizie"}) == "Secondo Italianotizie [1], era Corey Comperatore."
    )
    two = "Secondo lui. Poi Peskov [2] ha smentito."
    assert fix_attributions(two, outlets) == two


def test_numbers_match_across_separators_scales_and_skip_single_digits():
    assert number_keys("magnitudo 4,4 alle 20:10 del 2024, 9 morti") == {"4.4", "2010", "2024"}
    assert number_keys("2,5%") == {"2.5"} and number_keys("alle 9.30") == {"9.3", "930"}  # not 25; 9:30
    assert unsupported_numbers("magnitude 4.4 at 20.10", "magnitudo 4,4 alle 20:10") == set()
    assert unsupported_numbers(
        "recorded in March 2025 was 4.4", "il più forte, di magnitudo 4.4, nel 2024"
    ) == {"2025"}
    assert (
        unsupported_numbers(
            "45,000 people and 5.000 evacuees", "in piazza 45 mila fedeli, almeno 5mila sfollati"
        )
        == set()
    )
    assert unsupported_numbers("a fine of 15 million euros", "una sanzione da 15 milioni di euro") == set()
    assert unsupported_numbers("1.5 billion", "1,5 miliardi") == set()
    assert unsupported_numbers("100 mila euro", "una provvisionale di 500 mila euro") == {"100 mila"}
    assert unsupported_numbers("in 2024", "nessuna data", allowed={"2024"}) == set()
    # a scaled figure backs its value, not its bare digits: "13 mila evacuati" is not 13 dead
    assert unsupported_numbers("13 people died", "nove vittime, 13 mila evacuati") == {"13"}
    assert unsupported_numbers("15 million euros", "una multa da 15 mln") == set()


def test_sentences_with_invented_numbers_are_dropped_and_markers_renumbered():
    passages = [
        _passage("Leggo", "Geolier ha preso il 60% al televoto.", title="Sanremo 2024, la finale"),
        _passage("Il Mattino", "Al televoto Geolier sfiora il 60 per cento."),
    ]
    text = (
        "Secondo Leggo [1], Geolier ha ottenuto il 16,1% nel 2024. Secondo Il Mattino [2], ha preso il 60%."
    )
    kept, order = drop_unsupported_numbers(text, passages, [1, 2])
    assert kept == "Secondo Il Mattino [1], ha preso il 60%."
    assert order == [2]
    # the year comes from the cited passage's title: supported
    kept, order = drop_unsupported_numbers(
        "Secondo Leggo [1], nel 2024 Geolier ha preso il 60%.", passages, [1]
    )
    assert order == [1] and "60%" in kept
    kept, order = drop_unsupported_numbers("Secondo Leggo [1], il 31,2% della giuria.", passages, [1])
    assert kept == "" and order == []
    # a number the question states is not a claim of the answer
    kept, order = drop_unsupported_numbers(
        "Secondo Leggo [1], nella serata del 2025 Geolier ha preso il 60%.", passages, [1], "E nel 2025?"
    )
    assert order == [1]


def test_an_unsupported_aside_is_cut_not_the_whole_sentence():
    passages = [_passage("Offida.info", "La vittima è Corey Comperatore, ex capo dei vigili del fuoco.")]
    kept, order = drop_unsupported_numbers(
        "Secondo Offida.info [1], la vittima era Corey Comperatore, 50 anni, ex capo dei vigili del fuoco.",
        passages,
        [1],
    )
    assert kept == "Secondo Offida.info [1], la vittima era Corey Comperatore, ex capo dei vigili del fuoco."
    assert order == [1]
    kept, _ = drop_unsupported_numbers("Secondo Offida.info [1], nato il 14 settembre 1955.", passages, [1])
    assert kept == ""


def test_digits_of_outlet_names_are_not_figures():
    passages = [
        _passage("RTL 102.5", "Navalny sarebbe morto per una trombosi."),
        _passage("Palermo 24h", "Testo."),
    ]
    _, order = drop_unsupported_numbers("Secondo RTL 102.5 [1], una trombosi.", passages, [1])
    assert order == [1]
    assert missing_question_numbers("Cosa dice RTL 102.5 sulla morte di Navalny?", passages) == set()
    assert missing_question_numbers("Cosa è successo nel marzo 2025?", passages) == {"2025"}
    # a full date whose day and month the passages name: the missing year is the page's habit
    quake = [_passage("Newsroom Italia", "La sequenza è cominciata alle 19:51 di lunedì 20 maggio.")]
    assert missing_question_numbers("A che ora del 20 maggio 2024 è cominciata?", quake) == set()
    assert missing_question_numbers("What happened on May 20, 2024?", quake) == set()
    assert missing_question_numbers("A che ora del 21 maggio 2024 è cominciata?", quake) == {"21", "2024"}
    assert missing_question_numbers("Quanto è costato il maggio 2024?", quake) == {"2024"}
    # the model writes the outlet in its own case: "il Sole 24 ORE" is still the outlet, not "24"
    sole = [_passage("Il Sole 24 ORE", "Silvio Berlusconi si è spento alle 9:30 al San Raffaele.")]
    text, order = drop_unsupported_numbers("Secondo il Sole 24 ORE [1], si è spento alle 9:30.", sole, [1])
    assert order == [1] and "9:30" in text


def test_a_presupposed_month_must_be_in_the_main_story():
    from service.pipeline.grounding import missing_question_months, months_in

    assert months_in("recorded in March 2025") == {3} and months_in("il 20 maggio 2024") == {5}
    assert months_in("May I ask who won?") == set() and months_in("the May 2023 flood") == {5}
    story = [
        _passage("Newsroom Italia", "La sequenza è cominciata alle 19:51 di lunedì 20 maggio con una scossa.")
    ]
    assert missing_question_months("What was the magnitude recorded in March 2025?", story) == {3}
    assert missing_question_months("A che ora del 20 maggio 2024 è stata la scossa?", story) == set()
    assert missing_question_months("Who felt the earthquake?", story) == set()


def test_an_outlet_name_is_written_as_plain_text_that_cannot_forge_a_marker():
    # outlet names come from articles: markup and a "[3]" in one must not reach the answer as such
    outlet = "<b>Eco</b> [3]"
    assert fix_attributions("Secondo Pippo [1], il ponte è chiuso.", {1: outlet}) == (
        "Secondo Eco (3) [1], il ponte è chiuso."
    )
    from pathlib import Path

    from service.pipeline.prompts import PromptLibrary

    said = PromptLibrary(Path(__file__).parents[1] / "prompts").also_reported(
        "it", outlet, "[2]", "Il ponte è chiuso."
    )
    assert said == "Secondo Eco (3) [2]: «Il ponte è chiuso.»"


def test_an_invented_date_is_cut_as_an_aside():
    passages = [
        _passage("Il Sole 24 ORE", "Silvio Berlusconi è morto alle 9.30 all'ospedale San Raffaele di Milano.")
    ]
    kept, order = drop_unsupported_numbers(
        "According to Il Sole 24 ORE [1], Silvio Berlusconi died at 9:30 on Monday, June 13, 2018, "
        "at the San Raffaele Hospital in Milan.",
        passages,
        [1],
    )
    assert kept == (
        "According to Il Sole 24 ORE [1], Silvio Berlusconi died at 9:30 on Monday, "
        "at the San Raffaele Hospital in Milan."
    )
    assert order == [1]


def test_a_decimal_is_not_backed_by_its_digits_as_an_integer():
    passages = [
        _passage("GEA", "L'inflazione è al 2,4% nel 2024.", title="La Bce taglia i tassi di 25 punti base")
    ]
    kept, _ = drop_unsupported_numbers("Secondo GEA [1], l'inflazione è al 2,5% nel 2024.", passages, [1])
    assert kept == ""
    kept, _ = drop_unsupported_numbers("According to GEA [1], inflation is 2.4% in 2024.", passages, [1])
    assert kept == "According to GEA [1], inflation is 2.4% in 2024."


def test_a_figure_cited_to_the_wrong_passage_moves_to_the_passage_that_holds_it():
    passages = [
        _passage("Panorama", "Il 23enne Filippo Turetta è stato condannato all'ergastolo."),
        _passage(
            "Reggio Sera", "Il collegio presieduto da Stefano Manduzio ha riconosciuto il 22enne colpevole."
        ),
        _passage("Il Dubbio", "La Corte ha riconosciuto il 22enne colpevole di omicidio."),
        _passage("Open", "La sentenza è arrivata dopo sei ore di camera di consiglio."),
    ]
    text = "Secondo Panorama [1], il collegio presieduto da Stefano Manduzio ha condannato il 22enne."
    order = [1]
    moved = recite_figures(text, passages, order, "Chi presiedeva il collegio?")
    # both other passages hold "22": the one the sentence overlaps most wins
    assert (
        moved == "Secondo Panorama [2], il collegio presieduto da Stefano Manduzio ha condannato il 22enne."
    )
    assert order == [1, 2]
    kept, kept_order = drop_unsupported_numbers(moved, passages, order)
    assert kept_order == [2] and "22enne" in kept
    # the passages the model listed on its sources line come first
    order = [1]
    moved = recite_figures(text, passages, order, "", listed=[3])
    assert order == [1, 3] and "[2]" in moved
    # a sentence whose cited passage holds its figures, or whose figures no passage holds, stays
    for sentence in (
        "Secondo Panorama [1], il 23enne è stato condannato.",
        "Secondo Panorama [1], aveva 25 anni.",
    ):
        order = [1]
        assert recite_figures(sentence, passages, order) == sentence and order == [1]
    # several markers: the first becomes the holder's, the rest go
    order = [1, 4]
    moved = recite_figures(
        "Per Panorama [1] e Open [2] Manduzio presiedeva, il 22enne.", passages, order, "", [2]
    )
    assert moved == "Per Panorama [3] e Open Manduzio presiedeva, il 22enne." and order == [1, 4, 2]
    # a figure that recurs in a passage the model neither listed nor copied is not its source
    order = [4]
    claim = "Secondo Open [1], il processo è durato 22 giorni."
    assert recite_figures(claim, passages, order) == claim and order == [4]
    # nor is a passage another sentence already cites: the moved sentence would repeat it
    order = [1, 2]
    text = "Secondo Panorama [1], Manduzio presiedeva il collegio sul 22enne. Secondo Reggio Sera [2], il 22enne."
    assert recite_figures(text, passages, order, "", [2]) == text
    # two sentences that could move to the same passage: only the first does
    order = [1]
    text = "Secondo Panorama [1], il 22enne è colpevole. Per Panorama [1], Manduzio ha condannato il 22enne."
    moved = recite_figures(text, passages, order, "", [2])
    assert (
        moved
        == "Secondo Panorama [2], il 22enne è colpevole. Per Panorama [1], Manduzio ha condannato il 22enne."
    )


def test_a_score_in_the_question_is_one_figure_and_a_round_of_16_is_not_a_figure():
    match = [
        _passage("Sardegna Live", "A Berlino la Svizzera vince 2-0 e vola ai quarti; al 37' Freuler segna.")
    ]
    assert missing_question_numbers("Chi ha segnato nella sconfitta per 2-1 contro la Svizzera?", match) == {
        "1-2"
    }
    assert missing_question_numbers("Who scored in Italy's 0-2 defeat?", match) == set()
    assert missing_question_numbers("Who scored in the round of 16 against Italy?", match) == set()
    assert missing_question_numbers("Who scored in the last 16 match?", match) == set()
    # a formation or a range of days is not a score; Italian prose writes "vince 2 a 1"
    assert missing_question_numbers("Perché il 4-3-3 contro la Svizzera?", match) == set()
    dates = [_passage("ANSA", "Si vota l'8 e 9 giugno; la Svizzera vince 2 a 1 a Colonia nel 2024.")]
    assert missing_question_numbers("Chi vota alle europee dell'8-9 giugno?", dates) == set()
    assert missing_question_numbers("Who scored in the 2-1 win?", dates) == set()
    # "the last 48 hours" is a figure, only a draw's round is not
    assert missing_question_numbers("What happened in the last 48 hours?", match) == {"48"}
