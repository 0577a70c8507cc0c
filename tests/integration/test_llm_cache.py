"""The prompt cache of the in-process model: exact prompt tokens, the reused prefix, the prompt log."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from service.backends.llm import GenerationStats, build_generator
from service.backends.llm.llama_cpp import LlamaCppGenerator, reusable_prefix
from service.pipeline.confidence import guessed_figures
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


def test_token_log_probabilities_tell_a_copied_figure_from_a_guessed_one(generator):
    """The real model's digits: sure when copied from the prompt, unsure when it must make one up."""
    gen = generator[0]
    copy = [
        {
            "role": "user",
            "content": "Passaggio: Il ponte costerà 27 milioni di euro, dice il sindaco.\n"
            "Domanda: Quanto costerà il ponte? Rispondi con una frase.",
        }
    ]
    unasked = GenerationStats()
    "".join(gen.stream(copy, max_tokens=40, stats=unasked))
    assert unasked.token_logprobs == []  # only recorded when asked for
    copied = GenerationStats()
    assert gen.prefills  # the answer path: a prefilled reply, continued
    text = "".join(gen.stream(copy, max_tokens=40, stats=copied, prefix="Il ponte", logprobs=True))
    assert "27" in text and copied.completion_tokens < 40
    assert "".join(p for p, _ in copied.token_logprobs) == text
    assert all(lp <= 0.0 for _, lp in copied.token_logprobs)
    assert guessed_figures(copied.token_logprobs, 0.35) == set()
    guessed = GenerationStats()
    made_up = "".join(
        gen.stream(
            [{"role": "user", "content": "Scrivi un numero intero a caso tra 10 e 99. Solo il numero."}],
            max_tokens=8,
            stats=guessed,
            logprobs=True,
        )
    )
    figures = set(re.findall(r"\d+", made_up))
    assert figures and guessed_figures(guessed.token_logprobs, 0.35) == figures
