"""Sparse lexical vectors (BM25) for the ``lexical`` vector; the engine applies the IDF modifier.

The engine computes the inverse document frequency at query time (``Modifier.IDF``), so a
chunk's vector holds only the saturated term frequency and the query's holds ones.

The encoder is Qdrant's own BM25 (``qdrant_edge.Bm25``, Rust, the analysers of a Qdrant
server's full-text index): a chunk is analysed in its article's language, Italian or
English (Snowball stemmer and stop words; "multato", "multe" and "multa" are one term),
and a question in both, since it may be asked in any language about articles in either.
On the dev set it beat Fonti's previous encoder (accent-folded words, no stemming, kept
here as :class:`FoldedWords` for ``scripts/compare_sparse.py``): MRR 0.861 -> 0.9.

A store records the :attr:`~SparseEncoder.name` of the encoder that wrote it and is
opened only with the same one; ``fonti migrate`` re-encodes from the stored text.
"""

from __future__ import annotations

import threading
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Protocol

from service.backends.store.base import SparseVec
from service.text import tokens

# Article languages that get their own analyser; anything else is read as the closer one.
LANGUAGES = {"it": "italian", "en": "english"}
DEFAULT_LANGUAGE = "it"
_K1 = 1.2
_B = 0.75
_AVG_LEN = 60.0  # typical chunk length in tokens; only shapes the length normalisation


class SparseEncoder(Protocol):
    """Turns stored text and questions into sparse vectors of the same term space."""

    name: str

    def passage(self, text: str, language: str) -> SparseVec:
        """Term-frequency part of BM25 for a stored chunk of an article in ``language``."""
        ...

    def query(self, text: str) -> SparseVec:
        """One per distinct query term (the engine's IDF weighs them)."""
        ...


def _vector(weights: dict[int, float]) -> SparseVec:
    items = sorted(weights.items())
    return SparseVec([i for i, _ in items], [float(v) for _, v in items])


class SnowballBm25:
    """Qdrant's BM25 with the Italian and English Snowball analysers (see the module docstring)."""

    name = "bm25-snowball-it-en/k1.2-b0.75-avg60"

    def __init__(self) -> None:
        from qdrant_edge import Bm25, Bm25Config

        self._models = {
            code: Bm25(Bm25Config(k=_K1, b=_B, avg_len=_AVG_LEN, language=name))
            for code, name in LANGUAGES.items()
        }

    def passage(self, text: str, language: str) -> SparseVec:
        model = self._models.get(language) or self._models[DEFAULT_LANGUAGE]
        v = model.embed_document(text)
        return SparseVec(list(v.indices), [float(x) for x in v.values])

    def query(self, text: str) -> SparseVec:
        ids = {i for model in self._models.values() for i in model.embed_query(text).indices}
        return _vector(dict.fromkeys(ids, 1.0))


class FoldedWords:
    """Fonti's encoder before Qdrant Edge: :func:`service.text.tokens` (accent-folded words and
    verbatim figures, a short stop list, no stemming), crc32 token ids. For comparisons."""

    name = "fonti-folded-words/k1.2-b0.75-avg60"

    @staticmethod
    def _token_id(token: str) -> int:
        return zlib.crc32(token.encode("utf-8")) & 0x7FFFFFFF

    def passage(self, text: str, language: str = DEFAULT_LANGUAGE) -> SparseVec:
        toks = tokens(text)
        if not toks:
            return SparseVec([], [])
        norm = _K1 * (1 - _B + _B * len(toks) / _AVG_LEN)
        weights: dict[int, float] = {}
        for tok, tf in Counter(toks).items():
            tid = self._token_id(tok)
            weights[tid] = weights.get(tid, 0.0) + tf * (_K1 + 1) / (tf + norm)
        return _vector(weights)

    def query(self, text: str) -> SparseVec:
        return _vector({self._token_id(t): 1.0 for t in set(tokens(text))})


def lexical_text(outlet: str, title: str, text: str) -> str:
    """What a chunk's lexical vector indexes: the outlet's name and the title are words too."""
    return f"{outlet}\n{title}\n{text}"


_encoder: SparseEncoder | None = None


def encoder() -> SparseEncoder:
    """The encoder every store of this version writes and every search uses."""
    global _encoder
    if _encoder is None:
        _encoder = SnowballBm25()
    return _encoder


@contextmanager
def compared_encoder(other: SparseEncoder) -> Iterator[None]:
    """Use ``other`` instead within the block (``scripts/compare_sparse.py``; not thread-safe)."""
    global _encoder
    saved, _encoder = _encoder, other
    try:
        yield
    finally:
        _encoder = saved


def passage_vector(text: str, language: str = DEFAULT_LANGUAGE) -> SparseVec:
    """The stored chunk's sparse vector (``language``: its article's, see :func:`article_language`)."""
    return encoder().passage(text, language)


def query_vector(text: str) -> SparseVec:
    """The question's sparse vector."""
    return encoder().query(text)


_langid_lock = threading.Lock()


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages(list(LANGUAGES))
    return ident


def article_language(text: str) -> str:
    """The analyser language of an article's text: ``it`` or ``en`` (py3langid, offline)."""
    if not text.strip():
        return DEFAULT_LANGUAGE
    with _langid_lock:
        lang, _ = _identifier().classify(text[:4000])
    return str(lang) if lang in LANGUAGES else DEFAULT_LANGUAGE
