"""What kind of value a question asks for, and whether an answer gives one.

"A che ora…?" wants a clock time, "On what date…?" a date, "How many…?" an amount,
"In che posizione si è classificata…?" a rank. When every sentence the service would
publish lacks that kind of value, the answer talks about the story without answering
the question (a small model copies the closest passage: "the exchange halted trading
during the outage" for "at what time did it halt?"), so the service abstains instead.
Only the kind is checked: whether the value is right is for grounding and verification.
The patterns lean towards asking nothing: a question they misread as asking for a
kind would lose a right answer, one they miss only keeps today's behaviour.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

from service.pipeline.cite import blank_markers, strip_outlets
from service.pipeline.grounding import TOKEN, dates_in, is_year, months_in

Kind = Literal["time", "date", "number", "rank"]

_TIME_ASKED = re.compile(
    r"(?i)\b(?:at what time|what time(?! of (?:year|day))|at which time|a che ora|a quale ora|a che ore)\b"
)
_DATE_ASKED = re.compile(
    r"(?i)\b(?:on what date|what date|on which date|which date"
    r"|in what year|in which year|what year|which year|on what day|what day"
    r"|in che data|in quale data|in che giorno|in quale giorno|che giorno"
    r"|in che anno|in quale anno|che anno)\b"
)
# A place in a ranking, not a place on a map or a political position: the question
# must also say that someone finished, ranked or placed.
_RANK_ASKED = re.compile(r"(?i)\b(?:che|quale|what|which)\s+(?:posizione|posto|place|position|rank)\b")
_RANK_CONTEXT = re.compile(
    r"(?i)\b(?:classificat\w*|piazzat\w*|arrivat[oaie]|finish\w*|placed|ranked|ranking|classifica)\b"
)
# "quanti/quante" anywhere ("Entro quanti giorni…?"), except "tutti quanti"; the singular
# only where it opens the question, alone or after a preposition ("Quanto è durato…?",
# "A quanto ammonta…?", "Per quanto tempo…?"): elsewhere it is mostly a conjunction
# ("secondo quanto riferito", "più di quanto previsto"), and "Quanto a Salvini, …", "Per
# quanto riguarda…" are "as for".
_NUMBER_ASKED = re.compile(
    r"(?i)\b(?:how many|how much|how long|how old|what share|what percentage|what proportion"
    r"|che percentuale|quale percentuale)\b"
    r"|(?<!\btutti )(?<!\btutte )\bquant[ie]\b"
    r"|^\W*(?:(?:a|da|di|per|in|su|fino a)\s+)?quant[oa]\b(?!\s+(?:a|pare|riguarda)\b)"
)

_HOUR_WORDS = (
    "una|due|tre|quattro|cinque|sei|sette|otto|nove|dieci|undici|dodici|tredici|quattordici"
    "|quindici|sedici|diciassette|diciotto|diciannove|venti|ventuno|ventidue|ventitré|ventitre"
    "|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
)
_TIME = re.compile(
    r"(?i)\b\d{1,2}[:.]\d{2}\b|\b\d{1,2}\s*(?:a\.?m\.?|p\.?m\.?|o'clock)"
    rf"|\b(?:ore|alle|le|delle|dalle|h|at|after|before|around|by|until)\s+(?:\d{{1,2}}|{_HOUR_WORDS})\b"
    r"|\b(?:mezzogiorno|mezzanotte|noon|midnight)\b"
)
_RANK = re.compile(
    r"(?i)\b\d+\s*(?:°|º|ª|st\b|nd\b|rd\b|th\b)"
    r"|\b(?:prim|second|terz|quart|quint|sest|settim|ottav|non|decim|ultim|penultim)[oaie]\b"
    r"|\b(?!medesim)\w+esim[oaie]\b"  # "undicesima", "ventesimo"
    r"|\b(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth"
    r"|\w+teenth|twentieth|thirtieth|last|runner-up|winner|won|wins|vinto|vince|vincitrice"
    r"|vincitore|podio|podium)\b"
)
# "secondo quanto riferito", "secondo il governo", and an answer's leading "Secondo …":
# "according to", not "second".
_ACCORDING = re.compile(
    r"(?i)\bsecond[oa]\b(?=\s+(?:quanto|cui|il|lo|la|i|gli|le|me|fonti)\b|\s+l')|(?:^|(?<=[.!?]))\s*Secondo\b"
)
_DUE_TO = re.compile(r"(?i)\bdue to\b")  # English, not Italian "due"
_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")
_WEEKDAYS = frozenset(
    "lunedì martedì mercoledì giovedì venerdì sabato domenica "
    "monday tuesday wednesday thursday friday saturday sunday".split()
)
# The parts Italian and English cardinals are written with: "quarantadue",
# "cinquantatré", "duecento", "tremila", "ventuno" (venti + uno, the vowel dropped).
_NUMBER_PARTS = tuple(
    sorted(
        """
        uno due tre tré quattro cinque sei sette otto nove dieci undici dodici tredici
        quattordici quindici sedici diciassette diciotto diciannove venti vent trenta trent
        quaranta quarant cinquanta cinquant sessanta sessant settanta settant ottanta
        ottant novanta novant cento cent mille mila milione milioni miliardo miliardi
        one two three four five six seven eight nine ten eleven twelve thirteen fourteen
        fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty
        seventy eighty ninety hundred hundreds thousand thousands million millions
        billion billions
        """.split(),
        key=len,
        reverse=True,
    )
)
# Amounts said without digits; "un", "uno" and "una" alone are articles.
_AMOUNT_WORDS = frozenset(
    "decina decine dozzina dozzine centinaio centinaia migliaio migliaia paio metà "
    "dozen dozens couple half none zero nessuno nessuna".split()
)


@lru_cache(maxsize=4096)
def _is_number_word(word: str) -> bool:
    """Whether ``word`` is written entirely with cardinal parts ("quarantadue": quaranta+due)."""
    if not word:
        return True
    return any(word.startswith(p) and _is_number_word(word[len(p) :]) for p in _NUMBER_PARTS)


def asked_kind(question: str) -> Kind | None:
    """The kind of value ``question`` asks for, or None when it asks for something else."""
    if _TIME_ASKED.search(question):
        return "time"
    if _DATE_ASKED.search(question):
        return "date"
    if _RANK_ASKED.search(question) and _RANK_CONTEXT.search(question):
        return "rank"
    if _NUMBER_ASKED.search(question.strip()):
        return "number"
    return None


def _numbers(text: str) -> set[str]:
    found = {m.group(0).rstrip(".,") for m in _DIGITS.finditer(text)}
    for word in TOKEN.findall(text.casefold()):
        if word in _AMOUNT_WORDS or (word not in ("un", "uno") and _is_number_word(word)):
            found.add(word)
    return found


def _dates(text: str) -> set[str]:
    tokens = TOKEN.findall(text)
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
    return bool(_numbers(_DUE_TO.sub(" ", answer)) - _numbers(question))


def misses_asked_kind(question: str, sentences: list[str], outlets: list[str]) -> bool:
    """True when ``question`` asks for a kind of value and none of ``sentences`` gives one.

    Markers ("[2]") and outlet names, with the "Secondo" that introduces one, are not
    part of the answer's values.
    """
    kind = asked_kind(question)
    if kind is None:
        return False
    text = blank_markers(" ".join(sentences))
    for outlet in sorted({o for o in outlets if o}, key=len, reverse=True):
        text = re.sub(rf"(?i)\bsecond[oa]\s+(?:(?:il|lo|la)\s+|l')?{re.escape(outlet)}(?!\w)", " ", text)
    return not gives_kind(kind, strip_outlets(text, outlets), question)
