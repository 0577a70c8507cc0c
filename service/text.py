"""Text helpers shared by ingestion, the store's lexical encoder and the answer pipeline.

Sentence splitting (chunking long paragraphs, verifying answers sentence by sentence),
accent folding and the lexical tokens (the sparse vectors, word overlap). Both sides
import them from here, so a passage is cut and tokenized the same way when it is
stored and when an answer is checked against it.
"""

from __future__ import annotations

import re
import unicodedata

# A sentence ends at . ! ? … (with its closing quote, if any) before a space and a capital, a
# digit or an opening quote; a capital letter alone before the dot is an initial ("John J. Hopfield").
_SENTENCE_END = re.compile(r"(?<!\b[A-ZÀ-Ý])[.!?…][»\"”’]?(?=\s+[\"“«A-ZÀ-Ý0-9])")

_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*|[^\W\d_]+", re.UNICODE)

# Very common function words carry no signal and would only dilute the query.
# (a block of words, not ruff's preferred 100-line list literal)
_STOP = frozenset(
    """
    a ad al alla alle allo agli ai anche che chi con cui da dal dalla dalle dei del della delle
    dello di e ed gli ha hanno ho il in la le lo ma ne nei nel nella nelle non o per piu quale quali
    quando se si sono su sua sue suo suoi tra fra un una uno e è era erano essere stato stata sia
    the of and to in on at by for with from is are was were be been it its that this which who whom
    what how when where why an as or not did does do has have had according
    """.split()
)


def split_sentences(text: str) -> list[str]:
    """Split text into sentences (news prose in the Latin-script languages Fonti answers in)."""
    sentences, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        sentences.append(text[start : m.end()].strip())
        start = m.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


def complete_sentences(text: str) -> tuple[list[str], str]:
    """The sentences of ``text`` known to be complete, and the rest as it is (spaces kept).

    For text that is still growing (a streamed answer): only a sentence followed by the
    start of another is complete.
    """
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    if not ends:
        return [], text
    return split_sentences(text[: ends[-1]]), text[ends[-1] :]


def fold(text: str) -> str:
    """Lower-case and strip accents: "Perché" and "perche" become the same token."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def tokens(text: str) -> list[str]:
    """Lexical tokens of ``text`` without stop words.

    Lower-cased, accent-folded words; numbers keep their inner separators ("1,5",
    "20:10") so that figures are found verbatim.
    """
    return [t for t in _TOKEN.findall(fold(text)) if t not in _STOP]
