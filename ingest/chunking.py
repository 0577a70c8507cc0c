"""Paragraph-sized chunks that keep their outlet; long paragraphs are split on sentences."""

from __future__ import annotations

from ingest.articles import Article, Chunk
from service.backends.store.lexical import lexical_text as store_lexical_text
from service.text import split_sentences

MAX_CHUNK_CHARS = 1200


def _pieces(text: str, max_chars: int) -> list[str]:
    if len(text) <= max_chars:
        return [text]
    pieces: list[str] = []
    current = ""
    for sentence in split_sentences(text):
        while len(sentence) > max_chars:  # one endless sentence: cut on a space
            cut = sentence.rfind(" ", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if current and len(current) + 1 + len(sentence) > max_chars:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        pieces.append(current)
    return pieces


def chunk_article(article: Article, max_chars: int = MAX_CHUNK_CHARS) -> list[Chunk]:
    """Chunks in reading order; every chunk has exactly the outlet of its paragraph."""
    digest = article.content_hash()
    chunks: list[Chunk] = []
    for para in article.paragraphs:
        for piece in _pieces(para.text, max_chars):
            chunks.append(
                Chunk(
                    article_id=article.id,
                    position=len(chunks),
                    text=piece,
                    outlet=para.outlet,
                    title=article.title,
                    article_hash=digest,
                    topic=article.topic,
                    published=article.published,
                    url=article.url,
                    section=para.section,
                )
            )
    return chunks


def dense_text(chunk: Chunk) -> str:
    """What the dense embedder sees: the title gives a paragraph its story."""
    return f"{chunk.title}\n{chunk.text}"


def lexical_text(chunk: Chunk) -> str:
    """What the lexical vector indexes: outlet names are searchable words too (the store's
    format, which ``fonti migrate`` rebuilds from the payload to re-encode)."""
    return store_lexical_text(chunk.outlet, chunk.title, chunk.text)
