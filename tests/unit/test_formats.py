"""The aggregator and plain formats, on the dev pages and on hand-made edge cases."""

from __future__ import annotations

import pytest

from ingest.articles import ArticleFormatError
from ingest.chunking import chunk_article
from ingest.formats import ArticleInput, detect_format, parse_article, split_outlet
from service.text import split_sentences
from tests.factories import DEV_ARTICLES, dev_data


def parse_file(name: str):
    path = dev_data(DEV_ARTICLES / name)
    return parse_article(ArticleInput(text=path.read_text("utf-8")), name)


def test_every_dev_page_parses_with_outlets_on_every_paragraph():
    files = sorted(dev_data(DEV_ARTICLES).glob("*.txt"))
    assert len(files) == 15
    for f in files:
        text = f.read_text("utf-8")
        article = parse_article(ArticleInput(text=text), f.name)
        marked_lines = [ln for ln in text.splitlines() if split_outlet(ln.strip())[1]]
        assert len(article.paragraphs) == len(marked_lines), f.name
        assert [p.outlet for p in article.paragraphs] == [split_outlet(ln.strip())[1] for ln in marked_lines]
        assert article.title and article.topic, f.name
        assert not article.warnings, (f.name, article.warnings)
        for p in article.paragraphs:
            assert not p.text.rstrip().endswith(f"({p.outlet})")
            assert "Ultim'ora" not in p.text


def test_seed_page_outlets_exactly():
    article = parse_file("musk-putin-wsj.txt")
    assert article.title.startswith("Quelle conversazioni segrete tra Elon Musk e Vladimir Putin")
    assert article.topic == "Ucraina"
    assert article.dateline == "Ultim'ora news 25 ottobre ore 20"
    assert article.outlets == [
        "Milano Finanza",
        "CremonaOggi",
        "L'HuffPost",
        "Adnkronos",
        "ilmessaggero.it",
        "Il Messaggero Veneto",
        "WIRED Italia",
    ]
    first = article.paragraphs[0].text
    assert first.startswith("Elon Musk, l’uomo più ricco del mondo")
    assert article.paragraphs[4].section == "I contatti segreti tra Musk e Putin"


@pytest.mark.parametrize(
    ("name", "outlets"),
    [
        (
            "cremlino-smentisce-musk-putin.txt",
            [
                "Il Messaggero Veneto",
                "WIRED Italia",
                "il Giornale",
                "Milano Finanza",
                "Corriere della Sera",
                "ilmessaggero.it",
                "QUOTIDIANO NAZIONALE",
                "Nicola Porro",
            ],
        ),
        (
            "morte-navalny.txt",
            [
                "Sardegna Live",
                "Metropolitan Magazine",
                "Italianotizie",
                "RTL 102.5",
                "Notizie.it",
                "Open",
                "ANSA",
            ],
        ),
        (
            "terremoto-campi-flegrei.txt",
            ["Affaritaliani.it", "Newsroom Italia", "Corriere Adriatico", "Binews"],
        ),
        (
            "bce-taglio-tassi.txt",
            ["Adnkronos", "AgenPress", "Altarimini", "GEA", "FinanzaOnline", "Palermo 24h"],
        ),
    ],
)
def test_exact_outlets_of_dev_pages(name, outlets):
    assert parse_file(name).outlets == outlets


def test_cut_paragraph_keeps_outlet():
    article = parse_file("cremlino-smentisce-musk-putin.txt")
    qn = next(p for p in article.paragraphs if p.outlet == "QUOTIDIANO NAZIONALE")
    assert qn.text.endswith("a…")


PAGE = """Titolo della pagina di prova

Più informazioni:
Economia

Aggiornato 3 maggio 2024 ore 9.30 La prima notizia racconta un fatto con abbastanza parole per essere un paragrafo vero e proprio. (Testata Uno)

Ne scrivono anche altri siti

Una sezione qualsiasi

Il secondo paragrafo riporta una cifra, 1,5 miliardi, e cita un'altra fonte che ne parla con molte parole. (Testata Due 24)

La frase finale tra parentesi non è una testata ma un anno e resta nel testo del paragrafo come tale (2023). (Testata Tre)
"""


def test_shapes_not_lists_separators_headings_dateline():
    article = parse_article(ArticleInput(text=PAGE), "x")
    assert article.title == "Titolo della pagina di prova"
    assert article.topic == "Economia"
    assert article.published == "2024-05-03"
    assert article.outlets == ["Testata Uno", "Testata Due 24", "Testata Tre"]
    assert article.paragraphs[0].text.startswith("La prima notizia")
    assert article.paragraphs[1].section == "Una sezione qualsiasi"
    assert article.paragraphs[2].text.endswith("(2023).")
    texts = " ".join(p.text for p in article.paragraphs)
    assert "Ne scrivono anche altri siti" not in texts


def test_paragraph_without_outlet_is_reported_not_misattributed():
    text = (
        PAGE
        + "\nUn paragrafo lungo senza alcuna testata alla fine, che non può essere attribuito a nessuno dei siti.\n"
    )
    article = parse_article(ArticleInput(text=text), "x")
    assert len(article.paragraphs) == 3
    assert article.warnings and "line" in article.warnings[0]


def test_plain_article_and_auto_detection():
    text = "Un titolo\n\nPrimo paragrafo del pezzo,\nsu due righe.\n\nSecondo paragrafo."
    assert detect_format(text) == "plain"
    assert detect_format(PAGE) == "aggregator"
    article = parse_article(ArticleInput(text=text, outlet="Il Post", url="https://ilpost.it/x"), "x")
    assert article.title == "Un titolo"
    assert [p.text for p in article.paragraphs] == [
        "Primo paragrafo del pezzo, su due righe.",
        "Secondo paragrafo.",
    ]
    assert article.outlets == ["Il Post"]


def test_errors_name_the_problem():
    with pytest.raises(ArticleFormatError, match="outlet"):
        parse_article(ArticleInput(text="Titolo\n\nTesto senza testata.", format="plain"), "x")
    with pytest.raises(ArticleFormatError, match=r"line 1: .*Outlet"):
        parse_article(ArticleInput(text="Titolo\n\nTesto senza testata.", format="aggregator"), "x")
    with pytest.raises(ArticleFormatError, match="empty"):
        parse_article(ArticleInput(text="  \n\n ", format="aggregator"), "x")
    with pytest.raises(ArticleFormatError, match="unknown format"):
        parse_article(ArticleInput(text="x", format="html"), "x")  # type: ignore[arg-type]


def test_split_outlet_rejects_non_outlets():
    assert split_outlet("Il fatto (ANSA)") == ("Il fatto", "ANSA")
    assert split_outlet("Nel (2022)")[1] is None
    assert split_outlet("(ANSA)")[1] is None
    assert split_outlet("testo (una lunga parentesi di molte parole che non è una testata)")[1] is None


def test_long_paragraph_split_on_sentences_keeps_outlet():
    sentence = "Questa è una frase di prova che occupa un po' di spazio nel paragrafo. "
    text = "Titolo\n\n" + sentence * 40 + "(Testata)"
    article = parse_article(ArticleInput(text=text), "x")
    chunks = chunk_article(article)
    assert len(chunks) > 1
    assert all(c.outlet == "Testata" and len(c.text) <= 1200 for c in chunks)
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert len({c.point_id for c in chunks}) == len(chunks)
    assert split_sentences("Uno. Due! «Tre» è qui.") == ["Uno.", "Due!", "«Tre» è qui."]
