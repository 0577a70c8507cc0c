"""Defences against article text that tries to steer the model (prompt injection).

Two sides:

* **Into the prompt** (:func:`redact_instructions`, :func:`quote_for_prompt`): article
  text, titles and outlets are untrusted. Sentences that speak to an AI ("ignore previous
  instructions", "AI assistants must…", "SYSTEM:", requests for the system prompt,
  orders about the answer) are cut, and everything from a chat-template control token
  on. Control tokens (``<|im_start|>``…) would be parsed as real role switches by
  llama.cpp, so their brackets are replaced; line breaks are folded, so each passage is
  exactly one prompt line ``[n] Outlet: text`` and no line of an article can pose as a
  prompt line (``system: …``, ``Question: …``); ``[n]`` in the text becomes ``(n)``, so an
  article cannot forge a passage header or a citation marker.
* **Out of the model** (:class:`AnswerGuard`): answers are plain text. Whatever an
  article talked the model into, the answer that leaves the service has no HTML or
  script, no URLs and no Markdown links (citations carry the article's url). The guard
  works on the token stream, so streamed tokens are clean too: it holds back only an
  unfinished word or an unclosed tag.
"""

from __future__ import annotations

import re

# "<|im_start|>", "<|endoftext|>", DeepSeek's fullwidth "<｜…｜>": any "<|" or "|>" opener/closer.
_CONTROL_OPEN = re.compile(r"<\s*[|｜]")
_CONTROL_CLOSE = re.compile(r"[|｜]\s*>")
_MARKER_LIKE = re.compile(r"\[\s*(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\s*\]")
_SPACES = re.compile(r"\s+")


_I = re.IGNORECASE
# Sentences addressed to an AI instead of a reader. News prose about AI rarely combines
# these; an article that does loses one sentence from the prompt, which is cheap.
_AI = (
    r"\b(?:AI|A\.I\.|IA|KI|chatbots?|language models?|LLMs?|modell[oi] linguistic[oi]|"
    r"sistemi automatici|automated systems|virtual assistants?|assistente virtuale|assistenti virtuali|"
    r"intelligenz[ae] artificial[ei]|artificial intelligence|intelligence artificielle)\b"
)
_OBLIGE = (
    r"\b(?:must|should|shall|have to|need to|always|never|only|deve|devono|dovete|devi|sempre|mai|"
    r"soltanto|esclusivamente|doit|doivent|toujours|muss|müssen|immer|nur|debe|deben|siempre)\b"
)
_REPLY = r"\b(?:answers?|responses?|reply|replies|risposta|risposte|réponses?|antwort(?:en)?|respuestas?)\b"
_INSTRUCTION_PATTERNS = [
    # "ignore all previous instructions", "ignora le istruzioni precedenti", ...
    re.compile(
        r"\b(?:ignore|disregard|forget|override|ignora|ignorate|ignorare|dimentica|dimenticate|ignorez|"
        r"oubliez|ignoriere|vergiss|olvida)\b.{0,60}?\b(?:instructions?|istruzioni|rules|regole|prompt|"
        r"consignes|anweisungen|instrucciones|indicazioni|guidelines)\b",
        _I,
    ),
    re.compile(rf"{_AI}.{{0,120}}?{_OBLIGE}|{_OBLIGE}.{{0,60}}?{_AI}", _I),
    re.compile(
        r"\b(?:system prompt|prompt di sistema|istruzioni di sistema|system (?:message|instructions?))\b", _I
    ),
    re.compile(r"^\W*(?:system|assistant|sistema|assistente)\s*:", _I),
    # "answer only in German", "rispondi soltanto con", "responde siempre en español"
    re.compile(
        r"\b(?:answer|reply|respond|rispondi|rispondete|rispondere|responde|responda|répondez|réponds|"
        rf"antworte|antworten)\b.{{0,40}}?{_OBLIGE}",
        _I,
    ),
    # "include in the answer", "chiudi la risposta con", "le risposte devono"
    re.compile(
        r"\b(?:includ\w*|inser\w*|aggiung\w*|add|append|end|close|chiud\w*|termin\w*|conclud\w*|"
        rf"begin|start|inizi\w*)\b.{{0,30}}?{_REPLY}|{_REPLY}.{{0,40}}?\b(?:must|devono|deve|vanno|va)\b",
        _I,
    ),
    re.compile(r"\b(?:when|while|if) (?:summari[sz]\w*|answering|responding|replying)\b", _I),
]


def looks_like_instruction(sentence: str) -> bool:
    """Whether a sentence of an article speaks to an AI (orders, role labels, prompt requests)."""
    return any(p.search(sentence) for p in _INSTRUCTION_PATTERNS)


def redact_instructions(text: str) -> str:
    """``text`` with its sentences that look like instructions to an AI replaced by "…".

    Chat-template control tokens never occur in news: the text from the first one on is
    dropped whole (a forged turn follows them).
    """
    from service.text import split_sentences

    control = _CONTROL_OPEN.search(text)
    if control:
        text = text[: control.start()].rstrip() + " …"
    sentences = split_sentences(text)
    if not any(looks_like_instruction(s) for s in sentences):
        return text
    return " ".join("…" if looks_like_instruction(s) else s for s in sentences)


def quote_for_prompt(text: str, markers: bool = False) -> str:
    """``text`` made safe to place inside a quoted passage of the prompt (see module doc).

    ``markers``: keep ``[n]`` (an answer sentence the service verified, whose markers are its own).
    """
    text = _CONTROL_OPEN.sub("‹", text)
    text = _CONTROL_CLOSE.sub("›", text)
    if not markers:
        text = _MARKER_LIKE.sub(r"(\1)", text)
    return _SPACES.sub(" ", text).strip()


_SCRIPT_BLOCK = re.compile(r"<\s*(script|style)\b[^>]*>.*?<\s*/\s*\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<\s*/?\s*[a-zA-Z!][^<>]*>")
# A URL, with the "(" of a Markdown link or an aside before it (its ")" is inside \S+).
_URL = re.compile(r"\(?(?:\b(?:https?|ftp)://|\bwww\.|\bjavascript:)\S+", re.IGNORECASE)
# An opening "<tag" (or "<script …>…") not yet closed: hold it back until it is.
_OPEN_TAG = re.compile(r"<\s*/?\s*[a-zA-Z!][^<>]*$")
_OPEN_SCRIPT = re.compile(r"<\s*(script|style)\b(?![^<]*<\s*/\s*\1\s*>)", re.IGNORECASE | re.DOTALL)
_MAX_HELD = 600  # an "unclosed tag" longer than this was never a tag: let it go (minus the "<")


def clean_answer_text(text: str) -> str:
    """Complete text with markup, script blocks and URLs (Markdown link targets too) removed."""
    text = _SCRIPT_BLOCK.sub("", text)
    text = _TAG.sub("", text)
    return _URL.sub("", text)


_BRACKETED_DIGITS = re.compile(r"\[\s*(\d[\d\s,;]*)\]")


def quote_for_answer(text: str) -> str:
    """An article's sentence as the service quotes it in an answer: plain text, no forged ``[n]``.

    Unlike model text, which streams through :class:`AnswerGuard`, this is article text
    placed in the answer whole: angle brackets left after the cleaning (a tag split to
    survive one pass, ``<<b>script>``) are written as ‹ › and any bracketed number as
    ``(n)``, so that nothing in it is markup or a citation marker.
    """
    text = clean_answer_text(text).replace("<", "‹").replace(">", "›")
    return _SPACES.sub(" ", _BRACKETED_DIGITS.sub(r"(\1)", text)).strip()


class AnswerGuard:
    """Streaming form of :func:`clean_answer_text`: ``feed`` deltas, then ``flush``.

    Text is released up to the last whitespace (a URL is one word) and never past an
    unclosed tag or script block, so what is emitted is final.
    """

    def __init__(self) -> None:
        self._pending = ""

    def _cut(self, text: str) -> int:
        """Where the held-back tail starts: an unclosed tag, else the last unfinished word."""
        tag = _OPEN_TAG.search(text)
        if tag:
            return tag.start()
        space = max(text.rfind(" "), text.rfind("\n"))
        return space + 1  # the last word may still grow into a URL

    def feed(self, delta: str) -> str:
        """Add model text; return the part that is now final and clean."""
        text = _SCRIPT_BLOCK.sub("", self._pending + delta)
        script = _OPEN_SCRIPT.search(text)
        if script:  # hold everything from an unclosed <script> on; nothing after it is final
            head, held = text[: script.start()], text[script.start() :]
            if len(held) > _MAX_HELD:
                held = ""  # a script that never closes: drop it
            self._pending = held
            return _URL.sub("", _TAG.sub("", head))
        # Complete tags go before the cut, so holding the last word never splits one.
        text = _TAG.sub("", text)
        cut = self._cut(text)
        if len(text) - cut > _MAX_HELD:  # an "unclosed tag" this long was never a tag
            text = text[:cut] + text[cut:].replace("<", "", 1)
            cut = self._cut(text)
        ready, self._pending = text[:cut], text[cut:]
        return _URL.sub("", ready)

    def flush(self) -> str:
        """End of stream: the held-back tail, cleaned; an unclosed tag or script is dropped."""
        text, self._pending = self._pending, ""
        script = _OPEN_SCRIPT.search(text)
        if script:
            text = text[: script.start()]
        text = _TAG.sub("", text)
        tag = _OPEN_TAG.search(text)
        if tag:
            text = text[: tag.start()]
        return _URL.sub("", text)
