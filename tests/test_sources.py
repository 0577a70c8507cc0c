"""The model's leading sources line: parsed across stream chunks and never shown."""

from __future__ import annotations

import pytest

from service.pipeline.sources import SOURCES_PREFILL, SourcesHead


def run(chunks: list[str], prefilled: str = "") -> tuple[str, list[int]]:
    head = SourcesHead(prefilled)
    text = "".join(head.feed(c) for c in chunks) + head.flush()
    return text, head.numbers


@pytest.mark.parametrize(
    ("chunks", "prefilled", "text", "numbers"),
    [
        (["1] [3]\nSecondo", " Leggo [1], sì."], SOURCES_PREFILL, "Secondo Leggo [1], sì.", [1, 3]),
        # token by token, as the model streams it
        (["1", "]", " [", "3", "]\n", "Sec", "ondo"], SOURCES_PREFILL, "Secondo", [1, 3]),
        (
            ["Sour", "ces: [2", "]", "\n", "According to ANSA [2], yes."],
            "",
            "According to ANSA [2], yes.",
            [2],
        ),
        (["2], [2], [5]\nok"], SOURCES_PREFILL, "ok", [2, 5]),
        # no line break: the list ends where the words start
        (["1] Secondo Leggo [1], sì."], SOURCES_PREFILL, "Secondo Leggo [1], sì.", [1]),
        # the model gives up after the list, or writes no list at all
        (["]\nNOT_FOUND"], SOURCES_PREFILL, "NOT_FOUND", []),
        (["NOT_", "FOUND"], "", "NOT_FOUND", []),
        # a reply without the line (a server that cannot prefill) passes through whole
        (["According to ANSA [1], ", "yes."], "", "According to ANSA [1], yes.", []),
        # no passage states the answer
        ([" n", "one", "\n", "NOT_FOUND"], SOURCES_PREFILL, "NOT_FOUND", []),
        ([" none"], SOURCES_PREFILL, "", []),
        # a bare list and nothing else
        (["1] [2]"], SOURCES_PREFILL, "", [1, 2]),
        # a second block with its own sources line: the line goes, its numbers count
        (
            ["1]\nSecondo A [1], 2,5%.\n", "\nSou", "rces: [", "2]\nSecondo B [2], 2,4%."],
            SOURCES_PREFILL,
            "Secondo A [1], 2,5%.\n\nSecondo B [2], 2,4%.",
            [1, 2],
        ),
        (["1]\nSì.\nSources: [3] Secondo C [3], no."], SOURCES_PREFILL, "Sì.\nSecondo C [3], no.", [1, 3]),
        (["1]\nSì.\nSources: none"], SOURCES_PREFILL, "Sì.\n", [1]),
        (["1]\nSources: [2]\nSì."], SOURCES_PREFILL, "Sì.", [1, 2]),
        # a line that only starts like the lead is text
        (["1]\nSì.\nSou", "nd advice.\nSo"], SOURCES_PREFILL, "Sì.\nSound advice.\nSo", [1]),
    ],
)
def test_sources_line_is_split_from_the_answer(chunks, prefilled, text, numbers):
    assert run(chunks, prefilled) == (text, numbers)


def test_text_is_held_only_while_it_can_still_be_the_sources_line():
    head = SourcesHead()
    assert head.feed("Sou") == ""
    assert head.feed("nd advice") == "Sound advice"
    head = SourcesHead(SOURCES_PREFILL)
    assert head.feed("4] [1]") == ""  # the line may go on
    assert head.feed("\nSecondo") == "Secondo"
    assert head.numbers == [4, 1]
    assert head.feed(" [4]") == " [4]"  # later markers are the answer's


@pytest.mark.parametrize(
    "reply",
    [
        "1] [2]\nSecondo A [1], sì.\n\nSources: [3]\nSecondo C [3], no.",
        "1]\nSì.\nSources: [2] Secondo B [2], no.\nSou",
        " none\nNOT_FOUND",
    ],
)
def test_character_by_character_gives_what_one_chunk_gives(reply):
    assert run(list(reply), SOURCES_PREFILL) == run([reply], SOURCES_PREFILL)
