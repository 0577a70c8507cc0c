"""The evidence-first answer path on scripted model output: reading, deciding, verifying, streaming.

No model is loaded: a scripted generator replays replies and the distributions a real
backend reports, so every branch of the mechanism is checked in milliseconds. The same
path runs on the real model in tests/test_evidence_real.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from service.backends.llm import ChatMessage, GenerationLoad, GenerationStats, Generator, TokenStep
from service.pipeline.answer import AnswerService
from service.pipeline.calibration import Calibrator, Logistic, passage_features
from service.pipeline.evidence import EvidenceRead, EvidenceReader, read_distribution, written_ids
from service.pipeline.prompts import PromptLibrary
from service.pipeline.retrieve import Passage
from service.pipeline.verify import SentenceVerifier, figures, name_outlets, renumber
from service.settings import Settings
from tests.factories import REPO

PROMPTS = PromptLibrary(REPO / "prompts")


def passage(
    n: int, outlet: str, text: str, score: float = 0.5, dense: float = 0.85, article: str = "a"
) -> Passage:
    return Passage(
        chunk_id=f"c{n}",
        article_id=article,
        outlet=outlet,
        title="Il ponte chiude",
        text=text,
        url=None,
        published=None,
        score=score,
        dense_score=dense,
        article_ids=[article],
        number=n,
        position=n,
    )


PASSAGES = [
    passage(1, "Eco di Valle", "Il cantiere del ponte aprirà lunedì alle 7.", 0.9, 0.88),
    passage(2, "Gazzetta Valle", "Per i lavori la Regione ha stanziato 2.000.000 di euro.", 0.5, 0.84),
    passage(3, "Radio Borgo", "I lavori inizieranno lunedì alle 7, ha confermato il Comune.", 0.7, 0.86),
]


class Scripted(Generator):
    """Replays one scripted reply per call and the per-step distributions given for it."""

    name = "scripted"

    def __init__(self, replies: Sequence[tuple[str, list[TokenStep]]], prefills: bool = True):
        self.load = GenerationLoad()
        self._replies = list(replies)
        self._prefills = prefills
        self.calls: list[dict[str, Any]] = []

    @property
    def prefills(self) -> bool:
        return self._prefills

    @property
    def constrains(self) -> bool:
        return True

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        stats: GenerationStats | None = None,
        slot: str = "answer",
        prefix: str = "",
        grammar: str | None = None,
        top_logprobs: int = 0,
    ) -> Iterator[str]:
        self.calls.append(
            {"messages": messages, "prefix": prefix, "grammar": grammar, "top": top_logprobs, "slot": slot}
        )
        text, steps = self._replies.pop(0)
        if stats is not None:
            stats.steps = list(steps) if top_logprobs else []
            stats.prompt_tokens = 100
        for i, word in enumerate(text.split(" ")):
            if stats is not None:
                stats.completion_tokens = i + 1  # a word a token
            yield word if i == 0 else " " + word

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)

    def check_ready(self) -> str | None:
        return None


def evidence_steps(p_none: float, first: Sequence[float]) -> list[TokenStep]:
    """What a backend reports for the two evidence steps: NONE vs "[", then the passage numbers."""
    head = {" NONE": math.log(p_none), " [": math.log(1 - p_none), " The": -9.0}
    nums = {str(i + 1): math.log(p) for i, p in enumerate(first)} | {"]": -12.0}
    return [TokenStep(" [", head), TokenStep("1", nums)]


def test_the_distribution_is_read_and_renormalised_over_what_the_grammar_allows():
    p_none, first = read_distribution(evidence_steps(0.2, [0.1, 0.1, 0.6]), 3)  # type: ignore[misc]
    assert p_none == pytest.approx(0.2)
    assert first == pytest.approx([0.125, 0.125, 0.75])
    assert read_distribution([], 3) is None
    # a NONE reply has no second step: the pick is uniform
    assert read_distribution([TokenStep(" NONE", {" NONE": -0.1, " [": -2.4})], 2)[1] == [0.5, 0.5]  # type: ignore[index]


def test_written_ids_keep_existing_passages_once_in_order():
    assert written_ids(" [3] [1] [3] [9]\nAnswer: x", 4) == [3, 1]
    assert written_ids(" NONE", 4) == []


def test_the_evidence_grammar_allows_only_passages_that_exist():
    g = PROMPTS.evidence_grammar(3)
    assert '"1" | "2" | "3"' in g and '"4"' not in g and '" NONE"' in g


def test_the_reader_prefills_evidence_under_the_grammar_and_reads_two_steps():
    gen = Scripted([(" [3]", evidence_steps(0.1, [0.2, 0.2, 0.6]))])
    read = EvidenceReader(gen, PROMPTS).read([], 3, GenerationStats())
    assert read.measured and read.p_none == pytest.approx(0.1) and read.written == [3]
    call = gen.calls[0]
    assert call["prefix"] == "Evidence:" and call["grammar"] and call["top"] > 0


def test_a_backend_without_prefill_or_logprobs_is_read_from_what_it_wrote():
    gen = Scripted([("Evidence: [2] [3]\nAnswer: According to", [])], prefills=False)
    read = EvidenceReader(gen, PROMPTS).read([], 3, GenerationStats())
    assert not read.measured and read.written == [2, 3] and read.p_none == 0.0
    assert read.first == [0.0, 1.0, 0.0]
    assert gen.calls[0]["prefix"] == "" and gen.calls[0]["grammar"].startswith('root ::= "Evidence:"')


def calibrator(answer_threshold: float = 0.5, cite_threshold: float = 0.5) -> Calibrator:
    """A hand-made calibration: passages by the model's pick, questions by P(NONE)."""
    passage_model = Logistic(
        ("log_first", "first_share", "rank", "fused_share", "dense_gap", "top_story"),
        (0.0,) * 6,
        (1.0,) * 6,
        (0.0, 6.0, 0.0, 0.0, 0.0, 0.0),
        -3.0,
    )
    question_model = Logistic(("logit_none", "best_passage"), (0.0, 0.0), (1.0, 1.0), (-1.0, 0.0), 0.0)
    return Calibrator(passage_model, question_model, cite_threshold, answer_threshold, 4, cite_threshold)


def test_the_decision_cites_every_passage_the_model_rates_and_abstains_on_none():
    read = EvidenceRead(0.05, [0.45, 0.05, 0.5])
    decision = calibrator().decide(PASSAGES, read)
    assert decision.evidence == [3, 1] and not decision.abstain
    assert calibrator().decide(PASSAGES, EvidenceRead(0.97, [0.4, 0.2, 0.4])).abstain


def test_features_are_relative_to_the_best_passage():
    feats = passage_features(PASSAGES, EvidenceRead(0.1, [0.2, 0.2, 0.6]))
    assert feats[0]["rank"] == 0.0 and feats[0]["fused_share"] == 1.0 and feats[0]["dense_gap"] == 0.0
    assert feats[2]["first_share"] == 1.0 and feats[1]["rank"] == pytest.approx(math.log(3))  # third by score


def test_figures_agree_whatever_the_locale():
    assert figures("5.000 morti, il 3,75%, alle 20:10") == {"5000", "375", "2010"}
    assert figures("5,000 dead") == {"5000"} and figures("2 morti") == set()
    assert figures("about 6, 200 people") == {"6200"}  # a tokenizer's space after the separator
    assert figures("at 15:00") == {"1500", "15"}  # the hour alone, as "alle 15" writes it


def verifier() -> SentenceVerifier:
    return SentenceVerifier("When does the bridge site open?", PASSAGES, [1, 3], "According to")


def test_a_sentence_citing_evidence_with_held_figures_passes():
    v = verifier()
    checked = v.check("According to Eco di Valle [1], the site opens on Monday at 7.")
    assert checked.ok and checked.passages == [1]


def test_the_model_may_cite_outside_the_evidence_and_the_trace_says_so():
    checked = verifier().check("According to Gazzetta Valle [2], works open on Monday at 7 [3].")
    assert checked.ok and checked.passages == [2, 3] and checked.outside == [2]


def test_the_outlet_named_before_a_marker_follows_the_marker():
    fixed = verifier().check("According to Gazzetta Valle [3], the works start on Monday.")
    assert fixed.ok and fixed.text.startswith("According to Radio Borgo [3]"), fixed.text


def test_a_sentence_without_a_marker_cites_what_the_one_before_cited():
    v = verifier()
    assert v.check("According to Radio Borgo [3], the works start on Monday.").ok
    bare = v.check("The Comune confirmed the start on Monday.")
    assert bare.ok and bare.passages == [3] and bare.text.endswith("Monday [3].")


def test_an_evidence_outlet_named_without_its_marker_is_cited():
    checked = verifier().check("According to Eco di Valle [1], the site opens at 7, and Radio Borgo agrees.")
    assert checked.ok and checked.passages == [1, 3] and checked.text.endswith("agrees [3].")


def test_a_figure_held_by_an_uncited_evidence_passage_cites_it():
    v = SentenceVerifier("When?", PASSAGES, [1, 2, 3], "According to")
    checked = v.check("According to Eco di Valle [1], the site opens at 7 and costs 2.000.000 euros.")
    assert checked.ok and checked.passages == [1, 2], checked


def test_a_figure_no_cited_passage_holds_fails_the_sentence():
    checked = verifier().check("According to Eco di Valle [1], the site opens on Monday at 8:30.")
    assert not checked.ok and "830" in str(checked.failure)


def test_renumber_assigns_citation_ids_by_first_use():
    ids: dict[int, int] = {}
    assert renumber("A [3] and B [1].", ids) == ("A [1] and B [2].", [1, 2])
    assert renumber("C [1] [3] .", ids) == ("C [2] [1].", [2, 1])


# The short answer the scripted model commits to before answering (nothing to hold: no figure).
SHORT = " On Monday morning.\nAnswer:"


OUTLET_OF = {1: "ANSA", 2: "Euronews", 3: "Il Post", 4: "Il Post", 5: "Sky TG24"}


def test_every_cited_outlet_the_sentence_does_not_name_is_named_beside_its_marker():
    text = name_outlets("Secondo ANSA [1], il ponte è chiuso [2] [3] [4].", OUTLET_OF)
    assert text == "Secondo ANSA [1], il ponte è chiuso (Euronews [2], Il Post [3] [4])."
    # markers whose outlet the sentence names are left alone, before and inside a run
    assert (
        name_outlets("Le pont, selon ANSA [1] [5].", OUTLET_OF) == "Le pont, selon ANSA [1] (Sky TG24 [5])."
    )
    # inside a sentence a marker stands after a name or a phrase: no outlet name is put there
    assert name_outlets("Selon ANSA [1] [5], le pont.", OUTLET_OF) == "Selon ANSA [1] [5], le pont."
    text = name_outlets("Il sindaco [2] chiude il ponte [3]».", OUTLET_OF)
    assert text == "Il sindaco [2] chiude il ponte (Il Post [3])»."
    assert (
        name_outlets("Laut Euronews [2], die Brücke [2].", OUTLET_OF) == "Laut Euronews [2], die Brücke [2]."
    )
    assert name_outlets("Según Il Post [3] y Euronews [2].", OUTLET_OF) == "Según Il Post [3] y Euronews [2]."


def test_names_the_sentence_gives_are_left_as_written():
    # an outlet the model named beside another passage's marker is not renamed: on the sets
    # measured the name was as often right as the marker (docs/citations.md)
    text = name_outlets("Selon ANSA [1], Sky TG24 [2] et Il Post [3], le pont.", OUTLET_OF)
    assert text == "Selon ANSA [1], Sky TG24 [2] et Il Post [3], le pont."
    # markers of no passage are left as written
    assert name_outlets("Mario Rossi said so [9].", OUTLET_OF) == "Mario Rossi said so [9]."


def test_a_short_answer_is_judged_on_its_first_figure_once_it_is_complete():
    v = SentenceVerifier("How much will the works cost?", PASSAGES, [1, 3], "According to")
    assert v.commitment("About 2.0") == (False, None)  # may still be 2.000.000
    assert v.commitment("Radio Borgo [3]: on Monday") == (False, None)  # no figure yet
    assert v.commitment("Monday, at 7", final=True) == (True, None)  # one digit: not compared
    settled, failure = v.commitment("About 2.000.000 euros, says the Region.")
    assert settled and "2000000" in str(failure)  # held by passage 2, which is not evidence
    assert v.commitment("At 15:30 on Monday, says the mayor") == (
        True,
        "short answer: no evidence passage holds ['1530']",
    )
    # a figure the question asks is held; so is one of an evidence passage
    assert SentenceVerifier("Is it 2024?", PASSAGES, [1], "According to").commitment(
        "Yes, 2024.", final=True
    ) == (True, None)


def test_a_short_answer_with_a_figure_the_evidence_lacks_makes_the_answer_an_abstention():
    reply = " the site opens on Monday at 7."
    gen = Scripted(
        [
            (" [1]", evidence_steps(0.05, [0.8, 0.1, 0.1])),
            (" In 2026, with 2.000.000 euros.", []),
            (reply, []),
        ]
    )
    events = events_of(service(gen, calibrator()), "How much will the works cost?")
    assert [k for k, _ in events] == ["done"] and events[0][1].abstained
    assert len(gen.calls) == 2  # no answer was written


def test_a_figure_cut_by_the_short_answers_token_limit_is_not_judged():
    cut = " ".join(["word"] * 22) + " in 20"  # 24 words: the limit, "20" may have been "2026"
    gen = Scripted(
        [(" [1]", evidence_steps(0.05, [0.8, 0.1, 0.1])), (cut, []), (" the site opens at 7.", [])]
    )
    done = events_of(service(gen, calibrator()), "When does the bridge site open?")[-1][1]
    assert not done.abstained and done.answer.startswith("According to Eco di Valle [1]")


def test_the_trace_keeps_the_answer_a_failed_short_answer_stopped():
    gen = Scripted(
        [
            (" [1]", evidence_steps(0.05, [0.8, 0.1, 0.1])),
            (" In 2026, with 2.000.000 euros.", []),
            (" the site opens on Monday at 7.", []),
        ]
    )
    from service.metrics import Metrics

    svc = service(gen, calibrator())
    svc._settings = Settings(answer_trace=True)
    svc._metrics = metrics = Metrics()
    done = events_of(svc, "How much will the works cost?")[-1][1]
    assert done.abstained and done.answer and not done.sentences
    assert done.trace["short"]["failure"] and done.trace["sentences"][0]["text"].startswith(
        "According to Eco di Valle [1]"
    )
    # the stopped answer was written for the trace only: /metrics counts no generation for it
    assert metrics.registry.get_sample_value("fonti_answer_completion_tokens_total") == 0
    assert (
        metrics.registry.get_sample_value(
            "fonti_model_tokens_total", {"step": "answer", "kind": "completion"}
        )
        is None
    )
    assert metrics.registry.get_sample_value("fonti_answer_step_seconds_count", {"step": "short_answer"}) == 1
    assert metrics.registry.get_sample_value("fonti_answers_total", {"outcome": "abstained"}) == 1


def service(gen: Generator, cal: Calibrator, named: Sequence[str] = ()) -> AnswerService:
    class Found:
        embedder = None

        def named_outlets(self, question: str) -> list[str]:
            return [n for n in named if n in question]

        def search(self, *a: Any, **k: Any) -> list[Passage]:
            return [passage(p.number, p.outlet, p.text, p.score, p.dense_score) for p in PASSAGES]

    return AnswerService(Found(), gen, PROMPTS, Settings(), calibrator=cal)  # type: ignore[arg-type]


def events_of(svc: AnswerService, question: str) -> list[tuple[str, Any]]:
    return [(e.kind, e.data) for e in svc.stream(question) if e.kind != "checkpoint"]


def test_only_verified_sentences_are_streamed_and_done_holds_exactly_them():
    reply = (
        " the site opens on Monday at 7. It will cost 9.999 euros [1]. "
        "Radio Borgo [3] says the works start on Monday at 7."
    )
    gen = Scripted([(" [1]", evidence_steps(0.05, [0.5, 0.05, 0.45])), (SHORT, []), (reply, [])])
    events = events_of(service(gen, calibrator()), "When does the bridge site open?")
    tokens = [d for k, d in events if k == "token"]
    done = events[-1][1]
    assert events[-1][0] == "done" and not done.abstained
    assert "".join(tokens) == done.answer
    assert "9.999" not in done.answer  # the unheld figure's sentence was never shown
    assert len(done.sentences) == 2 and [s.text for s in done.sentences] == [t.strip() for t in tokens]
    # the first sentence also cites the other evidence passage; ids run 1, 2 by first use
    assert (
        done.sentences[0].text.startswith("According to Eco di Valle [1]") and "[2]" in done.sentences[0].text
    )
    assert "(Radio Borgo [2])" in done.sentences[0].text  # the outlet it adds is named beside its marker
    assert [c.outlet for c in done.citations] == ["Eco di Valle", "Radio Borgo"]
    assert [c.id for c in done.citations] == [1, 2]
    cited_events = [d.outlet for k, d in events if k == "citation"]
    assert cited_events == ["Eco di Valle", "Radio Borgo"]
    assert gen.calls[1]["prefix"] == "Evidence: [1] [3]\nShort answer:"
    answer_call = gen.calls[2]
    # the answer opens on the likeliest evidence passage, named by its outlet
    assert answer_call["prefix"] == "Evidence: [1] [3]\nAnswer: According to Eco di Valle [1],"


def test_metrics_time_every_step_and_count_each_steps_tokens():
    from service.metrics import Metrics

    reply = " the site opens on Monday at 7."
    gen = Scripted([(" [1]", evidence_steps(0.05, [0.5, 0.05, 0.45])), (SHORT, []), (reply, [])])
    svc = service(gen, calibrator())
    svc._metrics = metrics = Metrics()
    done = events_of(svc, "When does the bridge site open?")[-1][1]
    assert not done.abstained

    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    for step in ("retrieval", "evidence", "short_answer", "answer"):
        assert value("fonti_answer_step_seconds_count", step=step) == 1, step
    assert value("fonti_answer_step_seconds_count", step="translation") is None  # nothing translated
    # the scripted backend: 100 prompt tokens a call, a word a token
    assert value("fonti_model_tokens_total", step="evidence", kind="prompt") == 100
    assert value("fonti_model_tokens_total", step="short_answer", kind="completion") == len(SHORT.split(" "))
    assert value("fonti_model_tokens_total", step="answer", kind="completion") == len(reply.split(" "))


def test_a_follow_up_rewrite_is_a_step_of_its_own_in_the_metrics():
    from service.metrics import Metrics
    from service.pipeline.followup import Turn

    rewrite = "When does the bridge site open?"
    gen = Scripted([(rewrite, []), (" NONE", evidence_steps(0.9, [0.3, 0.3, 0.4]))])
    svc = service(gen, calibrator())
    svc._metrics = metrics = Metrics()
    history = [Turn("user", "Who closes the bridge?"), Turn("assistant", "Mayor Rossi [1].")]
    events = svc.stream("And when does the site open?", history=history)
    done = next(e.data for e in events if e.kind == "done")
    assert done.standalone_question == rewrite and gen.calls[0]["slot"] == "side"
    sample = metrics.registry.get_sample_value
    assert sample("fonti_answer_step_seconds_count", {"step": "followup"}) == 1
    assert sample("fonti_model_tokens_total", {"step": "followup", "kind": "completion"}) == len(
        rewrite.split(" ")
    )
    assert sample("fonti_answer_step_seconds_count", {"step": "short_answer"}) is None  # it abstained first


def test_no_answer_is_written_when_the_calibration_abstains():
    gen = Scripted([(" NONE", evidence_steps(0.9, [0.3, 0.3, 0.4]))])
    events = events_of(service(gen, calibrator()), "How much will the works cost?")
    assert [k for k, _ in events] == ["done"]
    assert events[0][1].abstained and events[0][1].citations == []
    assert len(gen.calls) == 1  # the model wrote nothing after its evidence read


def test_an_answer_whose_every_sentence_fails_is_an_abstention_and_nothing_is_streamed():
    gen = Scripted(
        [(" [1]", evidence_steps(0.05, [0.8, 0.1, 0.1])), (SHORT, []), (" it opened in 1999.", [])]
    )
    events = events_of(service(gen, calibrator()), "When does the bridge site open?")
    assert [k for k, _ in events] == ["done"] and events[0][1].abstained


def test_the_answer_is_prefilled_in_the_question_language():
    gen = Scripted(
        [
            (" [1]", evidence_steps(0.05, [0.8, 0.1, 0.1])),
            (" lundi à 7 h.", []),
            (" le chantier ouvre lundi à 7 h.", []),
        ]
    )
    events = events_of(service(gen, calibrator()), "Quand le chantier du pont ouvre-t-il ?")
    done = events[-1][1]
    assert done.language == "fr" and done.answer.startswith("Selon Eco di Valle [1]")
    assert gen.calls[2]["prefix"].endswith("Answer: Selon Eco di Valle [1],")
