"""Outlets named in a question (pure matching; the answer path is in tests/test_api.py)."""

from __future__ import annotations

from service.pipeline.named_outlets import OutletNames, named_outlets

OUTLETS = [
    "Open",
    "TPI",
    "RTL 102.5",
    "Notizie.it",
    "Italianotizie",
    "Corriere",
    "Corriere della Sera",
    "IL GIORNO",
    "fanpage.it",
    "Leggo",
    "ANSA",
]


def test_names_written_as_names_are_found_in_order():
    q = "Quale causa della morte riportano Italianotizie, RTL 102.5 e Notizie.it?"
    assert named_outlets(q, OUTLETS) == ["Italianotizie", "RTL 102.5", "Notizie.it"]
    assert named_outlets("Will the body lie in state? Compare Open and TPI.", OUTLETS) == ["Open", "TPI"]
    assert named_outlets("Cosa scrive Il Giorno sull'alluvione?", OUTLETS) == ["IL GIORNO"]
    assert named_outlets("Secondo fanpage.it chi ha vinto?", OUTLETS) == ["fanpage.it"]
    assert named_outlets("ANSA: quanti sfollati?", OUTLETS) == ["ANSA"]


def test_the_longest_name_wins_and_common_words_are_not_names():
    assert named_outlets("Cosa scrive il Corriere della Sera?", OUTLETS) == ["Corriere della Sera"]
    assert named_outlets("Is the bridge open again?", OUTLETS) == []
    assert named_outlets("Il giorno dopo chi ha parlato?", OUTLETS) == []
    assert named_outlets("Leggo che il ponte è chiuso: fino a quando?", OUTLETS) == []
    assert named_outlets("Quante notizie.it?", OUTLETS) == []  # not written as a name
    assert named_outlets("Who won?", []) == []


def test_outlet_names_are_cached_for_the_ttl():
    reads: list[int] = []

    def read() -> list[str]:
        reads.append(1)
        return ["ANSA"]

    names = OutletNames(read, ttl_s=60)
    assert names.get().find("Secondo ANSA?") == ["ANSA"] and names.get().find("ANSA: chi?") == ["ANSA"]
    assert len(reads) == 1
    assert OutletNames(read, ttl_s=0).get().find("Secondo ANSA?") == ["ANSA"] and len(reads) == 2
