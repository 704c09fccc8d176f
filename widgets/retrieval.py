"""Which pieces of the store's knowledge a customer message needs: the bot's prompt carries only these.

Articles are split into chunks of a few paragraphs (`chunk_text`). Per message, PostgreSQL full-text search
(`search` tsvectors, 'simple' configuration, GIN index; every word matched as a prefix so "ship" finds
"shipping") ranks the store's chunks; where it finds nothing (e.g. Chinese, which the 'simple' parser does
not split into words) or on SQLite, a substring match on the message's words and CJK character pairs does.
Only the top chunks, within a token budget, go into the prompt, labelled `art-<chunk id>` so a reply's
`sources` name the articles it used. The ranking depends only on the message and the store's articles, so
the run's estimate and its call build the same prompt.
"""

from __future__ import annotations

import re

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection
from django.db.models import F, Q

from agents.llm import tokens
from merchants.models import Merchant
from widgets.models import Article, ArticleChunk

TOP_CHUNKS = 4
KNOWLEDGE_TOKEN_BUDGET = 1500
CHUNK_CHARS = 800
MAX_TERMS = 24
FALLBACK_CANDIDATES = 200

_PARAGRAPHS = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s*")  # noqa: RUF001 - CJK full stops end sentences too
_LATIN_WORD = re.compile(r"[^\W\u3000-\u9fff\uac00-\ud7af\uf900-\ufaff]{3,}")
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]+")
_STOPWORDS = frozenset(
    [
        "the",
        "and",
        "you",
        "your",
        "are",
        "for",
        "can",
        "what",
        "how",
        "does",
        "did",
        "with",
        "have",
        "has",
        "this",
        "that",
        "from",
        "will",
        "our",
        "any",
        "about",
        "there",
        "when",
        "which",
        "who",
        "why",
        "please",
        "hello",
        "thanks",
        "thank",
        "could",
        "would",
        "should",
        "want",
        "need",
        "tell",
        "know",
    ]
)


def chunk_text(body: str, *, limit: int = CHUNK_CHARS) -> list[str]:
    """`body` as chunks of whole paragraphs up to `limit` characters; a longer paragraph is cut at
    sentence ends (or hard, for a sentence longer than the limit)."""
    pieces: list[str] = []
    for paragraph in (p.strip() for p in _PARAGRAPHS.split(body or "")):
        if not paragraph:
            continue
        if len(paragraph) <= limit:
            pieces.append(paragraph)
            continue
        sentence_chunk = ""
        for sentence in (s for s in _SENTENCE_END.split(paragraph) if s):
            while len(sentence) > limit:
                pieces.append(sentence[:limit])
                sentence = sentence[limit:]
            if sentence_chunk and len(sentence_chunk) + 1 + len(sentence) > limit:
                pieces.append(sentence_chunk)
                sentence_chunk = ""
            sentence_chunk = f"{sentence_chunk} {sentence}".strip()
        if sentence_chunk:
            pieces.append(sentence_chunk)
    chunks: list[str] = []
    for piece in pieces:
        if chunks and len(chunks[-1]) + 2 + len(piece) <= limit:
            chunks[-1] = f"{chunks[-1]}\n\n{piece}"
        else:
            chunks.append(piece)
    return chunks


def search_terms(message: str) -> tuple[list[str], list[str]]:
    """(words, CJK character pairs) of a message, lower-cased, without the commonest English words."""
    text = message.lower()
    words = list(dict.fromkeys(w for w in _LATIN_WORD.findall(text) if w not in _STOPWORDS))[:MAX_TERMS]
    pairs: list[str] = []
    for run in _CJK_RUN.findall(text):
        pairs.extend(run[i : i + 2] for i in range(max(len(run) - 1, 1)))
    return words, list(dict.fromkeys(pairs))[:MAX_TERMS]


def _full_text(merchant: Merchant, words: list[str]) -> list[ArticleChunk]:
    # Raw tsquery: each term is letters and digits only (the regex), so nothing can break the syntax.
    query = SearchQuery(" | ".join(f"{w}:*" for w in words), search_type="raw", config="simple")
    return list(
        ArticleChunk.objects.filter(merchant=merchant, search=query)
        .annotate(rank=SearchRank(F("search"), query))
        .select_related("article")
        .order_by("-rank", "id")[:TOP_CHUNKS]
    )


def _substring(merchant: Merchant, terms: list[str]) -> list[ArticleChunk]:
    matches = Q()
    for term in terms:
        matches |= Q(text__icontains=term) | Q(article__title__icontains=term)
    candidates = (
        ArticleChunk.objects.filter(merchant=merchant)
        .filter(matches)
        .select_related("article")
        .order_by("id")[:FALLBACK_CANDIDATES]
    )
    scored = []
    for chunk in candidates:
        haystack = f"{chunk.article.title}\n{chunk.text}".lower()
        score = sum(haystack.count(term) for term in terms) + sum(
            3 for term in terms if term in chunk.article.title.lower()
        )
        scored.append((-score, chunk.pk, chunk))
    return [chunk for _score, _pk, chunk in sorted(scored, key=lambda s: (s[0], s[1]))[:TOP_CHUNKS]]


def relevant_chunks(*, merchant: Merchant, message: str) -> list[ArticleChunk]:
    """The store's chunks that best match `message`, best first (at most TOP_CHUNKS)."""
    words, pairs = search_terms(message)
    found: list[ArticleChunk] = []
    if words and connection.vendor == "postgresql":
        found = _full_text(merchant, words)
    if not found and (words or pairs):
        found = _substring(merchant, words + pairs)
    return found


def section_text(chunk: ArticleChunk) -> str:
    title = chunk.article.title
    # An article imported from the profile often starts with its own title ("Shipping: ...").
    return chunk.text if chunk.text.startswith(title) else f"{title}: {chunk.text}"


def knowledge_for(merchant: Merchant, message: str) -> tuple[tuple[str, str], ...] | None:
    """The bot's knowledge for one message: None while the store has no article (the bot then reads the
    store profile's knowledge base, as before articles existed); otherwise the relevant chunks, maybe none."""
    if not Article.objects.filter(merchant=merchant).exists():
        return None
    sections: list[tuple[str, str]] = []
    used = 0
    for chunk in relevant_chunks(merchant=merchant, message=message):
        text = section_text(chunk)
        cost = tokens.count_tokens(text) + 8
        if sections and used + cost > KNOWLEDGE_TOKEN_BUDGET:
            break
        used += cost
        sections.append((chunk.label, text))
    return tuple(sections)
