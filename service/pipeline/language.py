"""Detect the question's language offline (py3langid's bundled model; no network)."""

from __future__ import annotations

import re
import threading
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
# Questions are short; when the statistical model is unsure, these function words decide.
_HINTS = {
    "it": re.compile(
        r"(?i)\b(chi|che|cosa|quale|quali|quanti|quante|quando|dove|perch[eé]|come|il|la|del|della|di|è|ha|hanno|sono)\b"
    ),
    "en": re.compile(r"(?i)\b(who|what|which|when|where|why|how|the|of|did|does|is|are|was|were|and)\b"),
}
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages(list(LANGUAGE_NAMES))
    return ident


def detect_language(text: str) -> str:
    """ISO 639-1 code of ``text`` among :data:`LANGUAGE_NAMES` (English when unsure)."""
    if not text.strip():
        return DEFAULT_LANGUAGE
    with _lock:
        lang, prob = _identifier().classify(text)
    if prob >= 0.9:
        return str(lang)
    hits = {code: len(rx.findall(text)) for code, rx in _HINTS.items()}
    best = max(hits, key=lambda c: hits[c])
    if hits[best] > 0 and list(hits.values()).count(hits[best]) == 1:
        return best
    return str(lang) if prob >= 0.5 else DEFAULT_LANGUAGE


def language_name(code: str) -> str:
    """English name of a language code, for the prompt."""
    return LANGUAGE_NAMES.get(code, "English")
