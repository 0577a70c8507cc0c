"""The ingest service: parse → chunk → embed (dense + lexical) → store, idempotently.

Articles are taken in groups: one store query tells which are unchanged (skipped without
re-embedding), the chunks of the others are embedded and upserted in batches that span
articles, and only then are an article's stale chunks (another content hash) deleted.
A crash at any point leaves at worst a partly written new version next to the old one;
the next run sees the hashes do not match and writes the article again, so nothing is
lost and nothing stays duplicated. Parsing runs in a thread ahead of embedding.
"""

from __future__ import annotations

import functools
import hashlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ingest.articles import Article, ArticleFormatError, Chunk
from ingest.chunking import chunk_article, dense_text, lexical_text
from ingest.formats import ArticleInput, clean_text, parse_article
from ingest.readers import ReadError
from service.backends.embedder import Embedder
from service.backends.store import SparseVec, StorePoint, VectorStore
from service.backends.store.lexical import article_language, passage_vector

if TYPE_CHECKING:
    from service.metrics import Metrics

Status = Literal["ingested", "replaced", "skipped"]
# Articles looked up in the store with one query (a group is also cut at 8 embedding batches).
GROUP_ARTICLES = 64
_DONE = object()


@dataclass
class ArticleOutcome:
    id: str
    chunks: int
    status: Status
    outlets: list[str]
    source: str = ""
    warnings: list[str] = field(default_factory=list)


@dataclass
class IngestError:
    source: str
    error: str
    id: str | None = None


@dataclass
class IngestReport:
    articles: list[ArticleOutcome] = field(default_factory=list)
    errors: list[IngestError] = field(default_factory=list)
    seconds: float = 0.0

    def _count(self, status: Status) -> int:
        return sum(a.status == status for a in self.articles)

    @property
    def ingested(self) -> int:
        return self._count("ingested")

    @property
    def replaced(self) -> int:
        return self._count("replaced")

    @property
    def skipped(self) -> int:
        return self._count("skipped")

    @property
    def chunks(self) -> int:
        """Chunks embedded and written in this run."""
        return sum(a.chunks for a in self.articles if a.status != "skipped")

    def summary(self) -> str:
        """The one-line summary printed at the end of a run."""
        return (
            f"{self.ingested} ingested, {self.replaced} replaced, {self.skipped} skipped, "
            f"{len(self.errors)} failed; {self.chunks} chunks in {self.seconds:.1f} s"
        )


def article_id_for(inp: ArticleInput) -> str:
    """The given id, else the url, else a stable hash of outlet + title + text."""
    if inp.id and inp.id.strip():
        return inp.id.strip()
    if inp.url and inp.url.strip():
        return inp.url.strip()
    h = hashlib.sha256()
    for part in (inp.outlet or "", inp.title or "", clean_text(inp.text).strip()):
        h.update(part.encode("utf-8") + b"\x1f")
    return "sha256:" + h.hexdigest()[:32]


@dataclass
class _Parsed:
    source: str
    article: Article
    chunks: list[Chunk]
    digest: str
    sparse: list[SparseVec]
    language: str  # the analyser of its sparse vectors, also stored in the payload


class _Writer:
    """Runs store writes in order on a thread of its own, so they overlap the embedding.

    The embedder (torch) releases the GIL while it computes; Qdrant's client code runs
    meanwhile. An error in a write is raised at the next ``submit`` or ``drain``.
    """

    def __init__(self) -> None:
        self._tasks: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fonti-store-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            task = self._tasks.get()
            try:
                if task is None:
                    return
                if self._error is None:
                    task()
            except BaseException as exc:  # re-raised in the submitting thread
                self._error = exc
            finally:
                self._tasks.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, task: Callable[[], None]) -> None:
        self._raise()
        self._tasks.put(task)

    def drain(self) -> None:
        """Wait until every submitted write is done."""
        self._tasks.join()
        self._raise()

    def close(self) -> None:
        self._tasks.put(None)
        self._thread.join()


Progress = Callable[[ArticleOutcome | IngestError], None]


class IngestService:
    """Writes articles into the vector store through the embedder."""

    def __init__(
        self, embedder: Embedder, store: VectorStore, batch_size: int = 32, metrics: Metrics | None = None
    ):
        self._embedder = embedder
        self._store = store
        self._batch = batch_size
        self._metrics = metrics
        # One writer at a time: two requests carrying the same article must not interleave
        # their upsert and stale-chunk deletion.
        self._write_lock = threading.Lock()

    def parse(self, inp: ArticleInput) -> Article:
        """Parse one input (raises :class:`ArticleFormatError`)."""
        return parse_article(inp, article_id_for(inp))

    def _parse_all(
        self, items: Iterable[tuple[str, ArticleInput | ReadError]]
    ) -> Iterator[_Parsed | IngestError]:
        for source, inp in items:
            if isinstance(inp, ReadError):
                yield IngestError(source=source, error=inp.message)
                continue
            try:
                article = self.parse(inp)
            except ArticleFormatError as exc:
                yield IngestError(source=source, error=str(exc), id=inp.id)
                continue
            chunks = chunk_article(article)
            language = article_language("\n".join([article.title, *(p.text for p in article.paragraphs)]))
            # here: off the embedding thread
            sparse = [passage_vector(lexical_text(c), language) for c in chunks]
            yield _Parsed(source, article, chunks, article.content_hash(), sparse, language)

    def _embed(self, chunks: list[tuple[Chunk, SparseVec, str]]) -> Iterator[list[StorePoint]]:
        for start in range(0, len(chunks), self._batch):
            batch = chunks[start : start + self._batch]
            vectors = self._embedder.embed_passages([dense_text(c) for c, _, _ in batch])
            yield [
                StorePoint(c.point_id, {**c.payload(), "language": lang}, dense=v, sparse=sv)
                for (c, sv, lang), v in zip(batch, vectors, strict=True)
            ]

    def _write_group(
        self, group: list[_Parsed], report: IngestReport, progress: Progress | None, writer: _Writer
    ) -> None:
        writer.drain()  # the previous group is stored: its state is what we compare with
        states = self._store.article_states([p.article.id for p in group])
        todo: list[tuple[_Parsed, ArticleOutcome]] = []
        for p in group:
            state = states.get(p.article.id, {})
            if state == {p.digest: len(p.chunks)}:
                status: Status = "skipped"
            else:
                status = "replaced" if any(h != p.digest for h in state) else "ingested"
            outcome = ArticleOutcome(
                id=p.article.id,
                chunks=len(p.chunks),
                status=status,
                outlets=p.article.outlets,
                source=p.source,
                warnings=p.article.warnings,
            )
            if status == "skipped":
                report.articles.append(outcome)
                if progress:
                    progress(outcome)
            else:
                todo.append((p, outcome))
        chunks = [(c, sv, p.language) for p, _ in todo for c, sv in zip(p.chunks, p.sparse, strict=True)]
        for points in self._embed(chunks):
            writer.submit(functools.partial(self._store.upsert, points))

        def finish() -> None:
            for p, outcome in todo:
                if outcome.status == "replaced":
                    self._store.delete_article(p.article.id, keep_hash=p.digest)
                report.articles.append(outcome)
                if progress:
                    progress(outcome)

        writer.submit(finish)

    def ingest(
        self, items: Iterable[tuple[str, ArticleInput | ReadError]], progress: Progress | None = None
    ) -> IngestReport:
        """Ingest ``(source label, input)`` pairs; bad ones are reported, the rest stored.

        ``progress`` is called once per article (outcome or error) as it completes.
        """
        started = time.perf_counter()
        report = IngestReport()
        if progress is not None:
            # Called from the consumer and from the store-writer thread: one at a time.
            callback, progress_lock = progress, threading.Lock()

            def progress(event: ArticleOutcome | IngestError) -> None:
                with progress_lock:
                    callback(event)

        parsed: queue.Queue[object] = queue.Queue(maxsize=4 * GROUP_ARTICLES)
        failure: list[BaseException] = []
        stop = threading.Event()

        def put(entry: object) -> bool:
            while not stop.is_set():
                try:
                    parsed.put(entry, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for entry in self._parse_all(items):
                    if not put(entry):
                        return
            except BaseException as exc:  # re-raised in the caller's thread
                failure.append(exc)
            finally:
                put(_DONE)

        threading.Thread(target=produce, name="fonti-parse", daemon=True).start()
        try:
            self._consume(parsed, report, progress)
        finally:
            stop.set()
        if failure:
            raise failure[0]
        report.seconds = time.perf_counter() - started
        if self._metrics is not None:
            self._metrics.observe_ingest([a.status for a in report.articles], report.chunks)
        return report

    def _consume(self, parsed: queue.Queue[object], report: IngestReport, progress: Progress | None) -> None:
        with self._write_lock:
            writer = _Writer()
            try:
                group: list[_Parsed] = []
                while True:
                    entry = parsed.get()
                    if entry is _DONE:
                        break
                    if isinstance(entry, IngestError):
                        report.errors.append(entry)
                        if progress:
                            progress(entry)
                        continue
                    assert isinstance(entry, _Parsed)
                    # The same id twice in a group would be checked against a stale state.
                    if any(g.article.id == entry.article.id for g in group):
                        self._write_group(group, report, progress, writer)
                        group = []
                    group.append(entry)
                    if len(group) >= GROUP_ARTICLES or sum(len(g.chunks) for g in group) >= 8 * self._batch:
                        self._write_group(group, report, progress, writer)
                        group = []
                if group:
                    self._write_group(group, report, progress, writer)
                writer.drain()
            finally:
                writer.close()

    def delete(self, article_id: str) -> int:
        """Remove an article; returns how many chunks it had (0: it was not stored)."""
        with self._write_lock:
            chunks = sum(self._store.article_states([article_id]).get(article_id, {}).values())
            if chunks:
                self._store.delete_article(article_id)
            return chunks
