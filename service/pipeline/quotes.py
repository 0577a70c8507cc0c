"""Sentences the service writes itself: an outlet's own sentence, quoted verbatim and cited.

The 1.5B model writes most answers; these steps replace or complete them where the
evidence says the model went wrong, always with an article's own words (through
:func:`service.pipeline.sanitize.quote_for_answer`) under its outlet's name, never
with new claims:

- :func:`keep_stating`, :func:`answer_stating`, :func:`cite_stating`: "which outlets…?"
  questions, answered by the passages holding the asked detail
  (:func:`service.pipeline.listing.passages_stating`);
- :func:`quote_sources`: the model cited none of the passages its own sources line named;
- :func:`quote_named`: an outlet the question names was left without a sentence.

``say(outlet, marker, quote)`` renders the sentence in the answer's language
(``prompts/also_reported.j2``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from service.pipeline.listing import Stating
from service.pipeline.retrieve import Passage
from service.pipeline.support import SUPPORTED_MIN, SentenceCheck, SupportChecker, outlets_cited, renumbered

Say = Callable[[str, str, str], str]


def _backed(checks: list[SentenceCheck], order: list[int]) -> bool:
    """Some sentence cites a passage and is supported: there is an answer to replace or complete."""
    return any(c.passages(order) and not c.unsupported for c in checks)


def _closest_quote(
    checker: SupportChecker, question: str, numbers: list[int], passages: list[Passage], say: Say, marker: int
) -> tuple[int, str] | None:
    """The passage among ``numbers`` with the sentence closest to the question, and that sentence said."""
    k, quote = checker.closest_sentence(question, [passages[n - 1] for n in numbers])
    if not quote:
        return None
    return numbers[k], say(passages[numbers[k] - 1].outlet, f"[{marker}]", quote)


def _answer_with_quote(
    checker: SupportChecker,
    question: str,
    numbers: list[int],
    passages: list[Passage],
    say: Say,
    fallback: tuple[list[int], list[SentenceCheck]],
) -> tuple[list[int], list[SentenceCheck]]:
    """An answer made of the quote :func:`_closest_quote` finds among ``numbers`` (``fallback`` when none)."""
    quoted = _closest_quote(checker, question, numbers, passages, say, 1)
    return ([quoted[0]], [SentenceCheck(quoted[1], [1], False, 1.0)]) if quoted else fallback


def keep_stating(
    checks: list[SentenceCheck], order: list[int], stating: Stating
) -> tuple[list[int], list[SentenceCheck]]:
    """Leave out the sentences that rest only on passages lacking the asked detail.

    ``stating`` are the passages holding every detail a which-outlets question singles
    out (:func:`service.pipeline.listing.passages_stating`). When some sentence cites one
    of them, a sentence citing none of them is another outlet's account of the story,
    not an answer. Nothing changes when no sentence cites one.
    """
    if not any(set(c.passages(order)) & stating.numbers and not c.unsupported for c in checks):
        return order, checks
    kept = [c for c in checks if not c.passages(order) or set(c.passages(order)) & stating.numbers]
    return renumbered([c.text for c in kept], [(c.unsupported, c.support) for c in kept], order)


def cite_stating(
    checker: SupportChecker,
    checks: list[SentenceCheck],
    passages: list[Passage],
    order: list[int],
    stating: Stating,
    say: Say,
) -> tuple[list[int], list[SentenceCheck]]:
    """Quote every other outlet whose passage holds the asked detail, after the sentence stating it.

    For "which outlets report 41 municipalities?" the outlets are the answer (a
    question for one outlet, "which outlet…?", keeps the one it has). Each
    ``stating`` passage (see :func:`keep_stating`) of an outlet the answer does not
    cite yet, and that supports that sentence at least ``SUPPORTED_MIN`` (same
    story), gets a sentence of its own: ``say(outlet, marker, quote)`` with the
    passage's sentence that holds the detail, verbatim ("Secondo Borderline24 [2]:
    «I comuni colpiti sono 41…»") — the outlet's own words, not the model's.
    """
    anchors = [
        i for i, c in enumerate(checks) if not c.unsupported and set(c.passages(order)) & stating.numbers
    ]
    if stating.one or not anchors:
        return order, checks
    # the sentence that itself holds the detail, else the first resting on a passage that does
    i = min(anchors, key=lambda i: not all(d(checks[i].text) for d in stating.details))
    order = list(order)
    cited = outlets_cited(checks, passages, order)
    scores = checker.scores(checks[i].text, passages)
    added: list[tuple[str, tuple[bool, float]]] = []
    for n in sorted(stating.numbers):
        p = passages[n - 1]
        if p.outlet.casefold() in cited or float(scores[n - 1]) < SUPPORTED_MIN:
            continue
        quote = stating.quote(p.text)
        if not quote:
            continue
        cited.add(p.outlet.casefold())
        order.append(n)
        added.append((say(p.outlet, f"[{len(order)}]", quote), (False, float(scores[n - 1]))))
    texts = [c.text for c in checks]
    flags = [(c.unsupported, c.support) for c in checks]
    texts[i + 1 : i + 1] = [t for t, _ in added]
    flags[i + 1 : i + 1] = [f for _, f in added]
    return renumbered(texts, flags, order)


def answer_stating(
    checker: SupportChecker,
    question: str,
    checks: list[SentenceCheck],
    passages: list[Passage],
    order: list[int],
    stating: Stating,
    say: Say,
) -> tuple[list[int], list[SentenceCheck]]:
    """When no sentence rests on a passage holding the asked detail, quote the closest that does.

    "Which outlet describes Musk as founder, chief executive and controlling
    shareholder of Tesla and SpaceX?": when the answer cites only passages without
    the question's telling details (see :func:`keep_stating`), it is another
    outlet's account of the story; the ``stating`` passage sentence closest to the
    question replaces it, quoted and cited. Only in place of an answer that has a
    backed sentence: an answer withheld stays withheld.
    """
    if not stating.numbers or not _backed(checks, order):
        return order, checks
    if any(set(c.passages(order)) & stating.numbers for c in checks):
        return order, checks
    return _answer_with_quote(checker, question, sorted(stating.numbers), passages, say, (order, checks))


def quote_sources(
    checker: SupportChecker,
    question: str,
    checks: list[SentenceCheck],
    passages: list[Passage],
    order: list[int],
    sources: list[int],
    written: list[int],
    say: Say,
) -> tuple[list[int], list[SentenceCheck]]:
    """When the model cites none of the passages it named as its evidence, quote that passage instead.

    The model's sources line is its choice of evidence, made before it writes; a
    small model then sometimes copies a neighbouring passage ("Sources: [1]", then
    "According to <outlet of [2]> [2], …" about something else). The sentences rest
    on a passage the model itself did not consider an answer; the first listed
    passage's sentence closest to the question, verbatim and cited, replaces them:
    ``say(outlet, "[1]", quote)``. ``written`` are the passages the model's own
    markers cited: nothing changes when one of them is listed (a citation that
    verification moved off a listed passage is a correction, not this case), when a
    sentence cites a listed passage now, when the model listed none, or when no
    sentence is backed by a passage (the answer is then withheld, not replaced).
    """
    listed = [n for n in sources if 1 <= n <= len(passages)]
    now = {n for c in checks for n in c.passages(order)}
    if not listed or not _backed(checks, order) or set(listed) & (set(written) | now):
        return order, checks
    return _answer_with_quote(checker, question, listed[:1], passages, say, (order, checks))


def quote_named(
    checker: SupportChecker,
    question: str,
    checks: list[SentenceCheck],
    passages: list[Passage],
    order: list[int],
    named: Sequence[str],
    say: Say,
) -> tuple[list[int], list[SentenceCheck]]:
    """Give each outlet the question names, and the answer does not cite, its own closest sentence.

    "How many died according to LiveSicilia, and according to Italianotizie?": the
    model may write one side with the other's figure ("LiveSicilia: 13"; its passage
    says "nove"), and grounding drops that sentence. Each named outlet that has a
    prompt passage but no sentence left gets its passage sentence closest to the
    question, quoted verbatim and cited: ``say(outlet, marker, quote)``. Only beside
    an answer: when no sentence is backed, the answer is withheld, not made of quotes.
    """
    if not named or not _backed(checks, order):
        return order, checks
    order = list(order)
    cited = outlets_cited(checks, passages, order)
    texts = [c.text for c in checks]
    flags = [(c.unsupported, c.support) for c in checks]
    for outlet in named:
        own = [n for n, p in enumerate(passages, start=1) if p.outlet.casefold() == outlet.casefold()]
        if not own or outlet.casefold() in cited:
            continue
        quoted = _closest_quote(checker, question, own, passages, say, len(order) + 1)
        if quoted is None:
            continue
        order.append(quoted[0])
        texts.append(quoted[1])
        flags.append((False, 1.0))
        cited.add(outlet.casefold())
    return renumbered(texts, flags, order)
