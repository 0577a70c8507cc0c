"""Ingestion into the default store (Qdrant Edge) with the real default embedder."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.formats import ArticleInput
from ingest.pipeline import IngestService
from service.backends.embedder import Embedder, build_embedder
from service.backends.store import StoreError, VectorStore, build_store
from service.pipeline.retrieve import Retriever
from service.settings import EmbedSettings, StoreSettings
from tests.conftest import SAMPLE

PAGE = """Titolo di prova sul ponte

Approfondimenti:
Cronaca

Il sindaco Rossi ha annunciato la chiusura del ponte sul fiume per lavori urgenti fino a marzo. (ANSA)

Se ne è parlato anche su altre testate

Secondo il Comune i lavori sul ponte dureranno almeno sei mesi e costeranno due milioni. (Il Tempo)
"""


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return build_embedder(EmbedSettings())  # the default: e5_st


@pytest.fixture
def store(tmp_path: Path, embedder: Embedder):
    s = build_store(StoreSettings(path=tmp_path / "q"), embedder.dim, embedder.name)
    yield s
    s.close()


def ids_and_texts(store: VectorStore) -> dict[str, str]:
    return {p.id: p.payload["text"] for p in store.iter_points()}


def test_same_article_twice_changes_nothing(store, embedder):
    service = IngestService(embedder, store)
    first = service.ingest([("a", ArticleInput(text=PAGE, id="ponte"))])
    assert first.ingested == 1 and first.chunks == 2
    before = ids_and_texts(store)
    again = service.ingest([("a", ArticleInput(text=PAGE, id="ponte"))])
    assert again.ingested == 0 and again.skipped == 1
    assert ids_and_texts(store) == before


def test_payload_keeps_one_outlet_per_chunk_without_the_marker(store, embedder):
    IngestService(embedder, store).ingest([("a", ArticleInput(text=PAGE, id="ponte", url="https://x.it/p"))])
    points = sorted(store.iter_points(), key=lambda p: p.payload["position"])
    assert [p.payload["outlet"] for p in points] == ["ANSA", "Il Tempo"]
    for p in points:
        assert not p.payload["text"].endswith(")")
        assert p.payload["article_id"] == "ponte"
        assert p.payload["title"] == "Titolo di prova sul ponte"
        assert p.payload["topic"] == "Cronaca"
        assert p.payload["url"] == "https://x.it/p"


def test_changed_article_replaces_its_chunks_without_orphans(store, embedder):
    service = IngestService(embedder, store)
    service.ingest([("a", ArticleInput(text=PAGE, id="ponte"))])
    service.ingest([("b", ArticleInput(text=PAGE.replace("Rossi", "Bianchi"), id="other"))])
    changed = PAGE.replace("due milioni", "tre milioni")
    before = store.count()
    report = service.ingest([("a", ArticleInput(text=changed, id="ponte"))])
    assert (report.ingested, report.replaced, report.skipped) == (0, 1, 0)
    assert store.count() == before == 4
    texts = [p.payload["text"] for p in store.iter_points() if p.payload["article_id"] == "ponte"]
    assert len(texts) == 2
    assert any("tre milioni" in t for t in texts) and not any("due milioni" in t for t in texts)
    assert store.count() == 4  # the other article is untouched


def test_bad_article_is_reported_and_the_rest_stored(store, embedder):
    report = IngestService(embedder, store).ingest(
        [
            ("good", ArticleInput(text=PAGE, id="ponte")),
            (
                "bad",
                ArticleInput(text="Solo un titolo\n\nNessuna testata qui.", format="aggregator", id="bad"),
            ),
        ]
    )
    assert [a.id for a in report.articles] == ["ponte"]
    assert report.errors[0].source == "bad"
    assert store.count() == 2


def test_second_process_on_the_same_folder_gets_a_clear_error(tmp_path, embedder):
    settings = StoreSettings(path=tmp_path / "q")
    owner = build_store(settings, embedder.dim, embedder.name)
    try:
        # the Edge store's owner lock (flock on a descriptor of its own) holds within a process too
        with pytest.raises(StoreError, match="in use by another process"):
            build_store(settings, embedder.dim, embedder.name)
    finally:
        owner.close()


def test_store_built_with_another_embedder_is_refused(tmp_path, embedder):
    settings = StoreSettings(path=tmp_path / "q")
    build_store(settings, embedder.dim, embedder.name).close()
    with pytest.raises(StoreError, match="embedder"):
        build_store(settings, embedder.dim, "sentence-transformers/other")
    with pytest.raises(StoreError, match="dense size"):
        build_store(settings, 768, embedder.name)


def test_english_query_finds_the_italian_paragraph(store, embedder):
    service = IngestService(embedder, store)
    items = [
        (f.name, ArticleInput(text=f.read_text("utf-8"), id=f.name)) for f in sorted(SAMPLE.glob("*.txt"))
    ]
    assert service.ingest(items).ingested == len(items) == 3
    hits = Retriever(embedder, store).search("How large is the fine imposed on OpenAI?", top_k=3)
    assert hits[0].article_id == "garante-multa-openai-chatgpt.txt"
    assert "15 milioni" in " ".join(h.text for h in hits)
    hits = Retriever(embedder, store).search("Who denied the contacts between Musk and Putin?", top_k=4)
    assert any("Peskov" in h.text for h in hits)


def test_rare_names_and_figures_are_found_by_the_lexical_side(store, embedder):
    """A rare word or figure in the query finds its passage among semantically closer ones."""
    distractors = [
        (
            "doping-1",
            "Il tennista è stato sospeso per doping dopo un controllo positivo al torneo di Indian Wells.",
        ),
        ("doping-2", "L'agenzia antidoping ha chiesto due anni di squalifica per l'atleta trovato positivo."),
        ("doping-3", "Il campione si dice innocente: la sostanza proibita sarebbe arrivata da una crema."),
        (
            "doping-4",
            "Il tribunale sportivo deciderà a febbraio sul ricorso contro l'assoluzione del giocatore.",
        ),
        ("mercato", "Il governo stanzia 1,5 miliardi per il porto di Genova e le infrastrutture del Nord."),
        (
            "kremlino",
            "Musk avrebbe parlato regolarmente anche con Sergei Kiriyenko, primo vice capo di gabinetto.",
        ),
        (
            "target",
            "Nelle analisi del massaggiatore è comparso il clostebol, uno steroide presente in uno spray.",
        ),
    ]
    service = IngestService(embedder, store)
    items = [
        (aid, ArticleInput(text=t, id=aid, title="Notizie", outlet="ANSA", format="plain"))
        for aid, t in distractors
    ]
    assert service.ingest(items).ingested == len(items)
    hybrid = Retriever(embedder, store)
    dense = Retriever(embedder, store, mode="dense")
    for query, want in (("clostebol", "target"), ("Kiriyenko", "kremlino"), ("1,5 miliardi", "mercato")):
        ranked = [p.article_id for p in hybrid.search(query, top_k=7)]
        dense_ranked = [p.article_id for p in dense.search(query, top_k=7)]
        print(f"{query!r}: hybrid rank {ranked.index(want) + 1}, dense rank {dense_ranked.index(want) + 1}")
        assert ranked[0] == want, (query, ranked)
