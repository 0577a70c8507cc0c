"""The prompt cache of the in-process model: exact prompt tokens, the reused prefix, the prompt log."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from service.backends.llm import GenerationStats, build_generator
from service.backends.llm.llama_cpp import LlamaCppGenerator, reusable_prefix
from service.pipeline.prompts import PromptLibrary
from service.settings import LLMSettings, Settings


@pytest.fixture(scope="module")
def generator(tmp_path_factory: pytest.TempPathFactory) -> tuple[LlamaCppGenerator, Path, PromptLibrary]:
    log = tmp_path_factory.mktemp("log") / "prompts.jsonl"
    settings = Settings(llm=LLMSettings(prompt_log=log))
    gen = build_generator(settings.llm, settings.models_dir)
    assert isinstance(gen, LlamaCppGenerator)
    return gen, log, PromptLibrary(settings.prompts_dir)


def test_prompt_tokens_are_what_llama_cpp_evaluates_and_the_system_prefix_is_reused(generator):
    gen, log, prompts = generator
    gen.warmup(prompts.system)
    passages = [
        SimpleNamespace(
            number=1,
            outlet="Notizie del Nord",
            title="Ponte chiuso",
            text="Il sindaco Rossi chiude il ponte.",
        )
    ]
    messages = prompts.answer_messages("Chi chiude il ponte?", "it", passages)
    ids = gen.prompt_token_ids(messages)
    assert ids is not None
    stats = GenerationStats()
    assert "".join(gen.stream(messages, max_tokens=6, stats=stats))
    assert stats.prompt_tokens == len(ids)
    # llama.cpp's own record of what it evaluated starts with exactly these tokens.
    assert [int(t) for t in gen._context("answer").input_ids[: len(ids)]] == ids
    warm = gen.prompt_token_ids(
        [{"role": "system", "content": prompts.system}, {"role": "user", "content": "Hi"}]
    )
    assert warm is not None
    assert (
        stats.cached_tokens == reusable_prefix(warm, ids) > gen.count_tokens(prompts.system)
    )  # the warm-up left it cached
    again = GenerationStats()
    "".join(gen.stream(messages, max_tokens=6, stats=again))
    assert again.cached_tokens == len(ids) - 1 and again.prompt_tokens == len(ids)
    records = [json.loads(line) for line in log.read_text("utf-8").splitlines()]
    last = records[-1]
    assert last["slot"] == "answer" and last["messages"] == messages
    assert (last["prompt_tokens"], last["cached_tokens"]) == (len(ids), len(ids) - 1)
    assert 1 <= last["completion_tokens"] <= 6 and 0 < last["first_token_s"] <= last["total_s"]


def test_the_evidence_step_reads_the_model_distribution_under_a_grammar(generator):
    """The real model, prefilled with "Evidence:" and held to a grammar, reports what it weighed."""
    from pathlib import Path

    from service.pipeline.prompts import PromptLibrary

    gen = generator[0]
    prompts = PromptLibrary(Path(__file__).resolve().parents[2] / "prompts")
    passages = (
        "[1] Eco di Valle: Il ponte costerà 27 milioni di euro, dice il sindaco.\n[2] Radio Borgo: Piove."
    )
    messages = [
        {"role": "system", "content": prompts.system},
        {
            "role": "user",
            "content": f"Passages:\n{passages}\nQuestion: Quanto costerà il ponte?\nAnswer in Italian.",
        },
    ]
    plain = GenerationStats()
    "".join(gen.stream(messages, max_tokens=2, stats=plain, prefix="Evidence:"))
    assert plain.steps == []  # only recorded when asked for
    stats = GenerationStats()
    text = "".join(
        gen.stream(
            messages,
            max_tokens=2,
            stats=stats,
            prefix="Evidence:",
            grammar=prompts.evidence_grammar(2),
            top_logprobs=40,
        )
    )
    assert gen.constrains and text == " [1", text  # the grammar allows only " NONE" or " [1]"/" [2]"
    assert [s.piece for s in stats.steps] == [" [", "1"]
    head, number = stats.steps
    assert " NONE" in head.top and head.logprob(" [") > head.logprob(" NONE")
    assert number.logprob("1") > number.logprob("2") > float("-inf")
    assert all(lp <= 0.0 for step in stats.steps for lp in step.top.values())


def test_prompt_lookup_drafting_writes_the_greedy_reply_in_fewer_model_calls(generator, monkeypatch):
    """Proposals copied from the prompt are checked against the model's own greedy choice: the
    reply is the one written without drafting, and whole runs of it are accepted per call."""
    gen = generator[0]
    settings = Settings()
    assert settings.llm.draft_tokens > 0  # the fixture's generator drafts (the default)
    plain = build_generator(settings.llm.model_copy(update={"draft_tokens": 0}), settings.models_dir)
    sentence = (
        "Il consiglio comunale di Borgo Alto ha approvato il bilancio 2024 con 17 voti favorevoli, "
        "6 contrari e 2 astenuti, dopo una seduta durata fino a mezzanotte."
    )
    messages = [{"role": "user", "content": f"Copy this sentence exactly, nothing else:\n{sentence}"}]
    ctx = gen._context("answer")
    evaluated: list[int] = []
    evaluate = ctx.eval
    monkeypatch.setattr(ctx, "eval", lambda tokens: (evaluated.append(len(tokens)), evaluate(tokens))[1])
    drafted_stats, plain_stats = GenerationStats(), GenerationStats()
    drafted = "".join(gen.stream(messages, max_tokens=48, stats=drafted_stats))
    reference = "".join(plain.stream(messages, max_tokens=48, stats=plain_stats))
    assert drafted == reference and "17 voti favorevoli" in drafted
    assert drafted_stats.completion_tokens == plain_stats.completion_tokens
    decode_calls = evaluated[1:]  # after the prompt
    assert len(decode_calls) < drafted_stats.completion_tokens / 2, evaluated
    assert max(decode_calls) > 1
