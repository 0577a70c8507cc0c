"""Answer sentences written in another language than the question's, translated before they are shown.

Scripted model output (no model loaded); the real model runs the same path in
tests/integration/test_evidence_real.py.
"""

from __future__ import annotations

from service.metrics import Metrics
from service.pipeline.language import detect_language, prose_language
from service.pipeline.translate import SentenceTranslator, Source
from tests.unit.test_evidence_pipeline import (
    PASSAGES,
    PROMPTS,
    Scripted,
    calibrator,
    events_of,
    evidence_steps,
    service,
)

QUESTION = "Quand le chantier du pont ouvre-t-il ?"
ITALIAN = " le chantier ouvre lundi à 7 h. Radio Borgo [3] scrive che il Comune ha confermato i lavori da lunedì mattina."


def answer_with(
    translation: str, metrics: Metrics | None = None
) -> tuple[list[tuple[str, object]], Scripted]:
    gen = Scripted(
        [
            (" [1]", evidence_steps(0.05, [0.8, 0.1, 0.1])),
            (" lundi à 7 h.", []),
            (ITALIAN, []),
            (translation, []),
        ]
    )
    svc = service(gen, calibrator())
    svc._metrics = metrics
    return events_of(svc, QUESTION), gen


def test_a_sentence_in_another_language_is_shown_translated_and_done_holds_what_was_streamed():
    events, gen = answer_with(
        "Radio Borgo [3] écrit que la commune a confirmé les travaux à partir de lundi matin."
    )
    done = events[-1][1]
    tokens = "".join(d for k, d in events if k == "token")
    assert tokens == done.answer and not done.abstained
    assert done.answer.startswith("Selon Eco di Valle [1]")
    assert "Radio Borgo [2] écrit que la commune a confirmé" in done.answer
    assert "scrive" not in done.answer
    request = gen.calls[3]
    assert request["slot"] == "side"  # the answer's cached prompt is not evicted
    prompt = request["messages"][-1]["content"]
    assert "Italian text into French" in prompt
    # the outlet's name is masked as its marker: the model cannot translate it
    assert "Radio Borgo" not in prompt and "[3] scrive che" in prompt


def test_the_translation_is_timed_and_its_tokens_counted_as_a_step_of_its_own():
    translation = "Radio Borgo [3] écrit que la commune a confirmé les travaux à partir de lundi matin."
    metrics = Metrics()
    events, _ = answer_with(translation, metrics)
    assert not events[-1][1].abstained
    sample = metrics.registry.get_sample_value
    assert sample("fonti_answer_step_seconds_count", {"step": "translation"}) == 1
    assert sample("fonti_model_tokens_total", {"step": "translation", "kind": "completion"}) == len(
        translation.split(" ")
    )


def test_a_line_that_introduces_the_translation_is_left_out():
    events, _ = answer_with(
        "Voici la traduction :\nRadio Borgo [3] écrit que la commune a confirmé les travaux à partir de lundi matin."
    )
    assert "Radio Borgo [2] écrit que la commune a confirmé" in events[-1][1].answer


def test_a_translation_that_loses_a_marker_is_not_shown():
    events, _ = answer_with("La commune a confirmé les travaux à partir de lundi matin.")
    done = events[-1][1]
    assert "Radio Borgo [2] scrive che il Comune" in done.answer  # the verified original


def test_a_translation_with_a_figure_no_passage_holds_is_not_shown():
    events, _ = answer_with("Radio Borgo [3] écrit que les travaux coûteront 9.999 euros à partir de lundi.")
    done = events[-1][1]
    assert "9.999" not in done.answer and "scrive" in done.answer


def test_a_translation_in_yet_another_language_is_not_shown():
    events, _ = answer_with(
        "Radio Borgo [3] writes that the council confirmed the works from Monday morning."
    )
    assert "scrive" in events[-1][1].answer


def test_the_prefilled_opening_and_the_outlet_names_are_kept_as_written():
    gen = Scripted([("il cantiere aprirà lunedì; selon [3], i lavori iniziano lunedì.", [])])
    translator = SentenceTranslator(gen, PROMPTS, PASSAGES, "Selon", "fr", 64)
    sentence = (
        "Selon Eco di Valle [1], il cantiere aprirà lunedì; selon Radio Borgo [3], i lavori iniziano lunedì."
    )
    assert translator.source(sentence) == Source("it")
    assert translator.translate(sentence, "it").failure == "written in it"  # the reply is still Italian
    prompt = gen.calls[0]["messages"][-1]["content"]
    assert prompt.endswith("il cantiere aprirà lunedì; selon [3], i lavori iniziano lunedì.")
    gen = Scripted([("le chantier ouvrira lundi ; selon [3], les travaux commencent lundi.", [])])
    translator = SentenceTranslator(gen, PROMPTS, PASSAGES, "Selon", "fr", 64)
    translation = translator.translate(sentence, "it")
    assert translation.failure is None and translation.text == (
        "Selon Eco di Valle [1], le chantier ouvrira lundi ; selon Radio Borgo [3], les travaux commencent lundi."
    )


def test_the_question_language_is_read_without_the_outlets_it_names():
    question = "Wie alt ist Rossi laut Le Notizie del Giorno und laut Corriere della Sera?"
    named = ["Le Notizie del Giorno", "Corriere della Sera"]
    assert detect_language(question) == "it"  # the names outweigh the German prose
    assert prose_language(question, named) == "de"
    gen = Scripted([(" NONE", evidence_steps(0.9, [0.3, 0.3, 0.4]))])
    done = events_of(service(gen, calibrator(), named), question)[-1][1]
    assert done.language == "de"


def test_a_sentence_that_copies_words_from_a_passage_in_another_language_is_rewritten():
    translator = SentenceTranslator(
        Scripted([]), PROMPTS, PASSAGES, "According to", "en", 64, "When do the works start?"
    )
    sentence = "According to Eco di Valle [1], the cantiere del ponte opens on Monday at 7."
    assert translator.source(sentence, [1]) == Source("it", ("cantiere",))
    # only words of a passage the sentence cites, in a language other than the question's
    assert translator.source(sentence, [2]) is None
    english = SentenceTranslator(
        Scripted([]), PROMPTS, PASSAGES, "Secondo", "it", 64, "Quando aprirà il cantiere?"
    )
    assert (
        english.source("Secondo Eco di Valle [1], il cantiere del ponte aprirà lunedì alle 7.", [1]) is None
    )
    # names are kept (upper case), and so is a word the question itself uses
    asked = SentenceTranslator(
        Scripted([]), PROMPTS, PASSAGES, "According to", "en", 64, "When does the cantiere open?"
    )
    assert asked.source("According to Eco di Valle [1], the cantiere opens on Monday at 7.", [1]) is None
    assert translator.source("According to Eco di Valle [1], Valle opens on Monday at 7.", [1]) is None


def test_copied_words_are_translated_with_a_request_that_says_the_text_is_mixed():
    gen = Scripted(
        [
            (" [1]", evidence_steps(0.05, [0.8, 0.1, 0.1])),
            (" lunedì", []),
            (" the cantiere del ponte opens on Monday at 7.", []),
            ("the bridge works start on Monday at 7.", []),
        ]
    )
    events = events_of(service(gen, calibrator()), "When do the bridge works start?")
    done = events[-1][1]
    assert done.answer == "According to Eco di Valle [1], the bridge works start on Monday at 7."
    assert "".join(d for k, d in events if k == "token") == done.answer
    prompt = gen.calls[3]["messages"][-1]["content"]
    assert prompt.startswith("Rewrite this text entirely in English, translating its Italian words")
    assert prompt.endswith("the cantiere del ponte opens on Monday at 7.")


def test_a_rewrite_of_copied_words_that_drops_a_name_is_not_shown():
    gen = Scripted([("the Office of the mayor opens the bridge works on Monday at 7.", [])])
    translator = SentenceTranslator(
        gen, PROMPTS, PASSAGES, "According to", "en", 64, "When do the works start?"
    )
    sentence = "According to Eco di Valle [1], Mario Rossi opens the cantiere on Monday at 7."
    translation = translator.translate(sentence, "it", ["cantiere"])
    assert translation.failure == "a name lost: Mario, Rossi"
    gen = Scripted([("Mario Rossi opens the building site on Monday at 7.", [])])
    translator = SentenceTranslator(
        gen, PROMPTS, PASSAGES, "According to", "en", 64, "When do the works start?"
    )
    translation = translator.translate(sentence, "it", ["cantiere"])
    assert translation.failure is None
    assert (
        translation.text
        == "According to Eco di Valle [1], Mario Rossi opens the building site on Monday at 7."
    )


def test_a_rewrite_that_translates_none_of_the_copied_words_is_not_shown():
    gen = Scripted([("Mario Rossi has opened the cantiere on Monday at 7.", [])])
    translator = SentenceTranslator(
        gen, PROMPTS, PASSAGES, "According to", "en", 64, "When do the works start?"
    )
    sentence = "According to Eco di Valle [1], Mario Rossi opens the cantiere on Monday at 7."
    assert translator.translate(sentence, "it", ["cantiere"]).failure == "no copied word translated"
