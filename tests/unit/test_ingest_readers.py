"""Reading every supported file format into articles (pure parsing, no models)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.files import iter_sources, read_bytes, read_file
from ingest.formats import ArticleInput, parse_article
from ingest.pipeline import article_id_for
from ingest.readers import ReadError, markdown_to_text, split_front_matter
from tests.factories import FIXTURES

FRONT_MATTER_MD = """---
title: "Ponte chiuso: sei mesi di lavori"
outlet: Gazzetta di Prova
url: https://gazzetta.example/ponte
published: 2024-03-05
topic: Cronaca
---
# Ponte chiuso: sei mesi di lavori

Il sindaco **Rossi** ha annunciato la chiusura del [ponte sul fiume](https://example.org/ponte) per lavori
urgenti alla struttura portante.

> Secondo i tecnici il cantiere durerà almeno *sei mesi* e costerà due milioni di euro.
"""

AGGREGATOR = """Titolo aggregato sul ponte

Il sindaco Rossi ha annunciato la chiusura del ponte sul fiume per lavori urgenti fino a marzo. (ANSA)

Secondo il Comune i lavori sul ponte dureranno almeno sei mesi e costeranno due milioni. (Il Tempo)
"""


def only(items):
    (item,) = items
    return item


def test_front_matter_fields_and_markdown_body(tmp_path: Path):
    f = tmp_path / "ponte.md"
    f.write_text(FRONT_MATTER_MD, encoding="utf-8")
    label, inp = only(read_file(f, tmp_path))
    assert label == str(f)
    assert isinstance(inp, ArticleInput)
    assert (inp.title, inp.outlet, inp.url, inp.published, inp.topic) == (
        "Ponte chiuso: sei mesi di lavori",
        "Gazzetta di Prova",
        "https://gazzetta.example/ponte",
        "2024-03-05",
        "Cronaca",
    )
    article = parse_article(inp, article_id_for(inp))
    assert article.id == "https://gazzetta.example/ponte"  # no id: the url
    texts = [p.text for p in article.paragraphs]
    assert texts[0].startswith(
        "Il sindaco Rossi ha annunciato la chiusura del ponte sul fiume per lavori urgenti"
    )
    assert "**" not in " ".join(texts) and "](" not in " ".join(texts) and "*sei" not in " ".join(texts)
    assert texts[1].startswith("Secondo i tecnici")
    assert {p.outlet for p in article.paragraphs} == {"Gazzetta di Prova"}
    assert article.title == "Ponte chiuso: sei mesi di lavori"  # the '# ' heading repeats it: not a paragraph


def test_front_matter_id_wins_and_aggregator_body_keeps_outlets(tmp_path: Path):
    f = tmp_path / "a.txt"
    f.write_text("---\nid: ponte-42\ntopic: Cronaca\n---\n" + AGGREGATOR, encoding="utf-8")
    _, inp = only(read_file(f, tmp_path))
    article = parse_article(inp, article_id_for(inp))
    assert article.id == "ponte-42" and article.topic == "Cronaca"
    assert [p.outlet for p in article.paragraphs] == ["ANSA", "Il Tempo"]


def test_file_without_id_or_url_is_named_by_its_path_under_the_folder(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text(AGGREGATOR, encoding="utf-8")
    ((_, inp),) = list(iter_sources([str(tmp_path)]))
    assert isinstance(inp, ArticleInput) and inp.id == "sub/a.txt"


def test_bad_front_matter_names_the_line(tmp_path: Path):
    f = tmp_path / "bad.md"
    f.write_text("---\ntitle: ok\noutlet: [unclosed\n---\nbody\n", encoding="utf-8")
    _, err = only(read_file(f))
    assert isinstance(err, ReadError) and "line" in err.message and "YAML" in err.message
    f.write_text("---\ntitle: ok\nauthor: someone\n---\nbody\n", encoding="utf-8")
    _, err = only(read_file(f))
    assert isinstance(err, ReadError) and "author" in err.message


def test_parse_errors_keep_the_file_line_numbers_after_front_matter():
    inp = only(
        read_bytes(
            b"---\ntitle: T\n---\n\nParagrafo senza testata che non finisce con la fonte ma e lungo abbastanza.\n",
            "x.txt",
            "aggregator",
        )
    )[1]
    with pytest.raises(ValueError, match="line 5"):
        parse_article(inp, "x")


def test_latin1_and_cp1252_files_decode_to_the_same_unicode(tmp_path: Path):
    text = "Perché il ponte? L’assessore dice «sei mesi» — costo 2 milioni di €. (Gazzetta)\n"
    body = "Titolo con àèìòù\n\n" + text
    for enc in ("utf-8", "cp1252"):
        (tmp_path / f"{enc}.txt").write_bytes(body.encode(enc))
    (tmp_path / "latin1.txt").write_bytes(
        body.replace("’", "'").replace("—", "-").replace("€", "euro").encode("latin-1")
    )
    got = {p.name: inp for p, inp in ((Path(lbl), i) for lbl, i in iter_sources([str(tmp_path)]))}
    assert isinstance(got["utf-8.txt"], ArticleInput)
    assert got["utf-8.txt"].text == got["cp1252.txt"].text
    assert "Perché il ponte? L’assessore dice «sei mesi» — costo 2 milioni di €." in got["cp1252.txt"].text
    assert "Titolo con àèìòù" in got["latin1.txt"].text and "Perché" in got["latin1.txt"].text


def test_jsonl_feed_reports_bad_lines_by_number_and_keeps_the_rest():
    lines = [
        json.dumps(
            {"id": "a1", "title": "Uno", "outlet": "ANSA", "text": "Primo articolo del feed.", "author": "x"}
        ),
        "",
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"title": "senza testo"}),
        json.dumps({"text": "Testo", "published": {"nested": 1}}),
        json.dumps({"text": "Testo", "format": "pdf"}),
        json.dumps(
            {"url": "https://x.example/2", "title": "Due", "outlet": "AGI", "text": "Secondo articolo."}
        ),
    ]
    items = list(read_bytes("\n".join(lines).encode(), "feed.jsonl"))
    labels = [lbl for lbl, _ in items]
    assert labels == [
        "feed.jsonl:1",
        "feed.jsonl:3",
        "feed.jsonl:4",
        "feed.jsonl:5",
        "feed.jsonl:6",
        "feed.jsonl:7",
        "feed.jsonl:8",
    ]
    errors = {lbl: i.message for lbl, i in items if isinstance(i, ReadError)}
    assert set(errors) == {"feed.jsonl:3", "feed.jsonl:4", "feed.jsonl:5", "feed.jsonl:6", "feed.jsonl:7"}
    assert "invalid JSON" in errors["feed.jsonl:3"] and "'text'" in errors["feed.jsonl:5"]
    assert "published" in errors["feed.jsonl:6"] and "format" in errors["feed.jsonl:7"]
    good = [i for _, i in items if isinstance(i, ArticleInput)]
    assert [article_id_for(i) for i in good] == ["a1", "https://x.example/2"]


def test_html_page_main_text_and_metadata_from_cp1252_bytes():
    html = (FIXTURES / "ponte.html").read_text("utf-8").encode("cp1252")
    _, inp = only(read_bytes(html, "ponte.html", default_id="ponte.html"))
    assert isinstance(inp, ArticleInput)
    assert inp.outlet == "Gazzetta di Prova"
    assert inp.title == "Ponte chiuso per lavori, il sindaco: «Sei mesi»"
    assert inp.url == "https://gazzetta.example/cronaca/ponte-chiuso"
    assert inp.published == "2024-03-05"
    article = parse_article(inp, article_id_for(inp))
    assert article.id == "https://gazzetta.example/cronaca/ponte-chiuso"
    text = " ".join(p.text for p in article.paragraphs)
    assert "Perché così a lungo?" in text and "fiume Adige" in text
    for boilerplate in ("Abbonati", "P.IVA", "Home"):
        assert boilerplate not in text
    assert {p.outlet for p in article.paragraphs} == {"Gazzetta di Prova"}


def test_html_without_main_text_is_an_error():
    _, err = only(
        read_bytes(b"<html><head><title>x</title></head><body><script>1</script></body></html>", "empty.html")
    )
    assert isinstance(err, ReadError) and "no main text" in err.message
    # A page with a scrap of text but no site name still fails, when parsed, with a reason.
    _, inp = only(read_bytes(b"<html><body><nav>Home</nav></body></html>", "nav.html"))
    assert isinstance(inp, ArticleInput)
    with pytest.raises(ValueError, match="outlet"):
        parse_article(inp, "nav.html")


def test_format_can_be_forced_whatever_the_suffix():
    line = json.dumps({"id": "z", "outlet": "ANSA", "title": "T", "text": "Corpo dell'articolo."}).encode()
    ((_, inp),) = list(read_bytes(line, "feed.txt", "jsonl"))
    assert isinstance(inp, ArticleInput) and inp.id == "z"


def test_markdown_unwrapping_keeps_lines():
    md = "# Titolo\n\nUn [link](http://x) e **grassetto** e `codice`.\n> citazione"
    assert markdown_to_text(md).split("\n") == ["Titolo", "", "Un link e grassetto e codice.", "citazione"]
    assert split_front_matter("no front matter\n---\n") == ({}, "no front matter\n---\n", 0)
