"""Detect the question's language offline (py3langid's bundled model, among the five answered; no network).

On the dev and tune questions (159, five languages) the model alone names the language
of 158; the English/Italian function-word hints it once had changed none of them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

LANGUAGE_NAMES = {
    "en": "English",
    "it": "Italian",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
}
DEFAULT_LANGUAGE = "en"
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages(list(LANGUAGE_NAMES))
    return ident


def detect_language(text: str) -> str:
    """ISO 639-1 code of ``text`` among :data:`LANGUAGE_NAMES` (English for empty text)."""
    if not text.strip():
        return DEFAULT_LANGUAGE
    with _lock:
        lang, _ = _identifier().classify(text)
    return str(lang)


@lru_cache(maxsize=4096)
def word_languages(word: str) -> dict[str, float]:
    """py3langid's probability of each of :data:`LANGUAGE_NAMES` for one word on its own."""
    with _lock:
        return {str(lang): float(p) for lang, p in _identifier().rank(word)}


def prose_language(text: str, names: Iterable[str] = ()) -> str:
    """The language ``text`` is written in, judged on its prose.

    Citation markers and the ``names`` it contains (outlets: "Il Foglio", "Le Scienze")
    are left out: a name is not prose, and it can outweigh a short sentence.
    """
    prose = re.sub(r"\[\d+\]", " ", text)
    for name in sorted(set(names), key=len, reverse=True):
        if name.strip():
            prose = re.sub(rf"(?<!\w){re.escape(name.strip())}(?!\w)", " ", prose)
    return detect_language(prose)


def language_name(code: str) -> str:
    """English name of a language code, for the prompt."""
    return LANGUAGE_NAMES.get(code, "English")
