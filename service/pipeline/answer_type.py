"""What kind of value a question asks for, and whether an answer gives one.

"A che ora…?" wants a clock time, "On what date…?" a date, "How many…?" a number,
"In che posizione…?" a rank.
When every sentence the service would publish lacks that kind of value, the answer
talks about the story without answering the question (a small model copies the
closest passage: "the exchange halted trading during the outage" for "at what time
did it halt?"), so the service abstains instead. Only the kind is checked: whether
the value is right is for grounding and verification.
"""

from __future__ import annotations

import re
from typing import Literal

from service.pipeline.cite import strip_outlets
from service.pipeline.grounding import dates_in, is_year, months_in

Kind = Literal["time", "date", "number", "rank"]

_TIME_ASKED = re.compile(r"(?i)\b(?:at what time|what time|at which time|a che ora|a quale ora|a che ore)\b")
_DATE_ASKED = re.compile(
    r"(?i)\b(?:on what date|what date|on which date|which date"
    r"|in what year|in which year|what year|which year|on what day|what day"
    r"|in che data|in quale data|in che giorno|in quale giorno|che giorno"
    r"|in che anno|in quale anno|che anno)\b"
)
_RANK_ASKED = re.compile(
    r"(?i)\b(?:in che posizione|in quale posizione|che posizione|in che posto|a che posto"
    r"|what position|which position|what place|which place|what rank)\b"
)
_NUMBER_ASKED = re.compile(
    r"(?i)\b(?:how many|how much|how long|how old|what share|what percentage|what proportion"
    r"|quant[ie]|che percentuale|quale percentuale)\b"
    # "quanto"/"quanta" ask for an amount, except in "in quanto" (because), "per quanto"
    # (however much), "quanto riguarda" (as regards) and "tanto quanto".
    r"|(?<!\bin )(?<!\bper )(?<!\btanto )\bquant[oa]\b(?! riguarda)"
)

_TIME = re.compile(
    r"(?i)\b\d{1,2}[:.]\d{2}\b|\b(?:ore|alle|h)\s*\d{1,2}\b|\b\d{1,2}\s*(?:a\.?m\.?|p\.?m\.?)"
    r"|\b(?:mezzogiorno|mezzanotte|noon|midnight)\b"
)
_WEEKDAYS = frozenset(
    "lunedì martedì mercoledì giovedì venerdì sabato domenica "
    "monday tuesday wednesday thursday friday saturday sunday".split()
)
_RANK = re.compile(
    r"(?i)\b\d+\s*(?:°|º|ª|st\b|nd\b|rd\b|th\b)|\b(?:prim|second|terz|quart|quint|sest|settim|ottav|non|decim"
    r"|ultim|penultim)[oaie]\b|\b(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last"
    r"|runner-up|winner|won|wins|vinto|vince|vincitrice|vincitore|podio|podium)\b"
)
# "Secondo <outlet> [1], …" and "secondo quanto riferito" say "according to", not "second".
_ACCORDING = re.compile(
    r"(?i)\bsecond[oa]\b(?=\s*(?:,|quanto\b|cui\b|(?:il|lo|la|i|gli|le|me|fonti)\b|l'))|(?:^|(?<=[.!?]))\s*Secondo\b"
)
_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")
_TOKEN = re.compile(r"[^\W_]+")
# Spelled-out amounts (passages write "nove vittime", answers "twelve golds"). Articles
# and "one" are left out: "un", "una" and "one" are rarely the amount asked for.
_NUMBER_WORDS = frozenset(
    """
    due tre quattro cinque sei sette otto nove dieci undici dodici tredici quattordici
    quindici sedici diciassette diciotto diciannove venti trenta quaranta cinquanta
    sessanta settanta ottanta novanta cento mille mila milione milioni miliardo miliardi
    dozzina dozzine centinaia migliaia decine metà
    two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
    sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty
    ninety hundred hundreds thousand thousands million millions billion billions dozen
    dozens half none zero nessuno nessuna
    """.split()
)


def asked_kind(question: str) -> Kind | None:
    """The kind of value ``question`` asks for, or None when it asks for something else."""
    if _TIME_ASKED.search(question):
        return "time"
    if _DATE_ASKED.search(question):
        return "date"
    if _RANK_ASKED.search(question):
        return "rank"
    if _NUMBER_ASKED.search(question):
        return "number"
    return None


def _numbers(text: str) -> set[str]:
    found = {m.group(0).rstrip(".,") for m in _DIGITS.finditer(text)}
    found |= {w for w in _TOKEN.findall(text.casefold()) if w in _NUMBER_WORDS}
    # "ventitré", "duecento", "thirty-two": compounds built on a number word
    found |= {w for w in _TOKEN.findall(text.casefold()) if re.match(r"(?:venti|trenta|cento|mille)\w+", w)}
    return found


def _dates(text: str) -> set[str]:
    tokens = _TOKEN.findall(text)
    found = {t for t in tokens if is_year(t)}
    found |= {f"{d}/{m}" for d, m in dates_in(text)}
    found |= {f"m{m}" for m in months_in(text)}
    found |= {m.group(0) for m in re.finditer(r"\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b", text)}
    found |= {w.casefold() for w in tokens if w.casefold() in _WEEKDAYS}
    return found


def gives_kind(kind: Kind, answer: str, question: str) -> bool:
    """Whether ``answer`` holds a value of ``kind`` that the question did not already hold.

    ``answer`` should be free of citation markers and outlet names (the digits of "RTL
    102.5" are not an amount). The question's own values do not count: "the ECB cut of
    6 June" does not answer "on what date was the next cut after 6 June?".
    """
    if kind == "time":
        return bool(_TIME.search(answer))
    if kind == "date":
        return bool(_dates(answer) - _dates(question))
    if kind == "rank":
        return bool(_RANK.search(_ACCORDING.sub(" ", answer)))
    return bool(_numbers(answer) - _numbers(question))


def misses_asked_kind(question: str, sentences: list[str], outlets: list[str]) -> bool:
    """True when ``question`` asks for a kind of value and none of ``sentences`` gives one.

    Markers ("[2]") and outlet names are not part of the answer's values.
    """
    kind = asked_kind(question)
    if kind is None:
        return False
    text = strip_outlets(re.sub(r"\[\d+(?:\s*[,;]\s*\d+)*\]", " ", " ".join(sentences)), outlets)
    return not gives_kind(kind, text, question)
