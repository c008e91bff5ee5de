"""Knowledge articles as the engine's second collection (issue 14): sectioned, embedded, indexed, ranked.

An article is matched the way a runbook is (:mod:`core.matching.engine`), so an analyst reads both
confidences on one scale:

* **Sections.** ``body`` is Markdown (:mod:`core.knowledge.markdown`), so :func:`split_runbook_sections` cuts
  it like a runbook, title first; the parts are stored in ``article_sections`` and rebuilt only for an
  article whose ``content_hash`` changed. Their vectors go through the engine's embedding cache, so a
  section whose text did not change is never embedded again, even when its article changed elsewhere.
* **Indexes.** One FAISS index over the sections (``<workspace>/indexes/<tenant>/article_sections.faiss``)
  and the FTS5 table ``article_fts`` (migration 0013: title, body and the attachments' text, filled by
  triggers). Every article is indexed whatever its state, so ``include_unpublished`` needs no second
  index; the state is filtered when candidates are read from the store (published only by default).
* **Ranking.** Candidates are the articles of the nearest sections and the best BM25 hits. Each gets the
  pair scores the runbook calibration reads (:data:`core.matching.engine.FEATURES`): the cosine of its best
  section, the share of the ticket's words in the article, the share of the article title's words in the
  ticket, and a vote of 0 (no analyst has decided an article for a ticket).

**Confidence: the shipped calibrator, reused.** The features are computed exactly as for runbooks, so the
engine's calibrator (the tenant's refit, else ``resources/calibration.json``) maps them to a probability in
[0, 1]. Its limit: it was fitted on (ticket, runbook) decisions. Articles are written differently (longer,
vendor prose, several procedures in one page), so "0.8" means "scores like a runbook that was right 80 %
of the time", not a measured hit rate for articles; a calibration fitted on article decisions would need
analysts to decide articles, which nothing records yet. The attachments' text is searched by words (it
brings candidates and breaks ties through the fused rank) but does not feed the coverage scores: a
40-page PDF contains most words of any ticket, and the calibration never saw such a document.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from sqlalchemy import delete, select, text
from sqlalchemy.orm import defer, sessionmaker

from core.matching import pg_search
from core.matching.calibration import (
    BM25_NORMALISED,
    DENSE_COSINE,
    FUSED_SCORE,
    LEXICAL_COVERAGE,
    TITLE_COVERAGE,
    VOTE_SCORE,
    Calibrator,
)
from core.matching.embedding_cache import CachedEmbedder, text_hash
from core.matching.engine import (
    CANDIDATES,
    RRF_K,
    SECTION_BATCH,
    TITLE_WEIGHT,
    _reporting,
    lexical_coverage,
)
from core.matching.lexical import fts_query, shared_terms, term_parts
from core.matching.text import TITLE_SECTION_NAME, lexical_terms, split_runbook_sections
from core.matching.vector_index import VectorIndex
from core.progress import NO_PROGRESS, Progress
from core.store.models import ArticleSection, KnowledgeArticle
from core.store.team import is_team_session
from core.store.tenancy import TenantSession

__all__ = [
    "ARTICLE_INDEX_NAME",
    "ATTACHMENT_WEIGHT",
    "PUBLISHED",
    "ArticleCollection",
    "ArticleMatch",
    "ArticleRefresh",
]

ARTICLE_INDEX_NAME = "article_sections"
PUBLISHED = "published"  # core.knowledge.records.ArticleState.PUBLISHED, as stored
ATTACHMENT_WEIGHT = 0.5  # bm25() column weight of the attachments' text against the body (title: 3.0)


@dataclass(frozen=True, slots=True)
class ArticleMatch:
    """One ranked knowledge article for a text, with the section that explains it."""

    article_id: int
    number: str | None
    title: str
    url: str | None
    source_system: str
    space: str | None
    state: str
    confidence: float  # the runbook calibration applied to the same pair scores (module docstring)
    dense_score: float  # cosine of the article's best section to the text
    shared_terms: tuple[str, ...]
    section_name: str  # the best section's heading ("" when only words matched)
    section_text: str  # that section's text (every chunk of it), or the article's opening
    coverage_score: float = 0.0  # share of the text's distinct words found in the article, in [0, 1]
    title_coverage: float = 0.0  # share of the article title's distinct words found in the text, in [0, 1]
    vote_score: float = 0.0  # always 0: nobody decides articles for tickets (yet)
    lexical_score: float = 0.0  # BM25 over title, body and attachments, normalised to the best hit
    fused_score: float = 0.0  # reciprocal rank fusion, 1.0 = first on both sides (not calibrated)


@dataclass(frozen=True, slots=True)
class ArticleRefresh:
    articles_rebuilt: int  # articles whose sections were cut again (new or changed content hash)
    added: int  # section vectors added to the index
    removed: int


# The calibration features, read off an article match (the names of core.matching.engine.FEATURE_VALUES).
ARTICLE_FEATURE_VALUES: Mapping[str, Callable[[ArticleMatch], float]] = {
    DENSE_COSINE: lambda m: m.dense_score,
    LEXICAL_COVERAGE: lambda m: m.coverage_score,
    TITLE_COVERAGE: lambda m: m.title_coverage,
    VOTE_SCORE: lambda m: m.vote_score,
    BM25_NORMALISED: lambda m: m.lexical_score,
    FUSED_SCORE: lambda m: m.fused_score,
}


def rank_articles(calibrator: Calibrator | None, matches: Sequence[ArticleMatch]) -> list[ArticleMatch]:
    """Each match with its confidence, best first (ties: fused rank, cosine, article id).

    Without a calibrator (or with one naming a feature articles lack) the cosine stands in, as for runbooks.
    """
    if not matches:
        return []
    usable = calibrator is not None and all(n in ARTICLE_FEATURE_VALUES for n in calibrator.feature_names)
    if calibrator is not None and usable:
        getters = [ARTICLE_FEATURE_VALUES[name] for name in calibrator.feature_names]
        scores = np.array([[get(m) for get in getters] for m in matches], dtype=np.float64)
        probabilities = calibrator.predict(scores.reshape(len(matches), len(getters)))
    else:
        probabilities = np.clip([m.dense_score for m in matches], 0.0, 1.0)
    out = [replace(m, confidence=float(p)) for m, p in zip(matches, probabilities, strict=True)]
    return sorted(
        out,
        key=lambda m: (-m.confidence if usable else 0.0, -m.fused_score, -m.dense_score, m.article_id),
    )


@dataclass(frozen=True, slots=True)
class _ArticleTerms:
    content_hash: str
    whole: frozenset[str]
    with_parts: frozenset[str]
    title: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Candidate:
    article_id: int
    cosine: float
    section_name: str
    lexical_score: float
    fused: float


class ArticleCollection:
    """One tenant's articles in the engine: their sections, the FAISS index over them, and the search.

    The engine owns it (``engine.articles``), refreshes it in :meth:`MatchingEngine.refresh` and saves its
    index with the others. Searches are thread-safe; a refresh runs in a background job.
    """

    def __init__(
        self, sessions: sessionmaker[TenantSession], embedder: CachedEmbedder, index: VectorIndex
    ) -> None:
        self._sessions = sessions
        self.embedder = embedder
        self.index = index
        self._lock = threading.RLock()
        self._owners: dict[int, tuple[int, str]] = {}
        self._sections_by_article: dict[int, list[tuple[int, str]]] = {}
        self._terms_cache: dict[int, _ArticleTerms] = {}
        with sessions() as session:
            self._set_owners(
                {
                    sid: (aid, name)
                    for sid, aid, name in session.execute(
                        select(ArticleSection.id, ArticleSection.article_id, ArticleSection.name)
                    )
                }
            )

    def _set_owners(self, owners: dict[int, tuple[int, str]]) -> None:
        by_article: dict[int, list[tuple[int, str]]] = {}
        for section_id, (article_id, name) in sorted(owners.items()):
            by_article.setdefault(article_id, []).append((section_id, name))
        self._owners = owners
        self._sections_by_article = by_article

    def expected_ids(self) -> set[int]:
        with self._sessions() as session:
            return set(session.scalars(select(ArticleSection.id)))

    # ------------------------------------------------------------------------------------------------
    # Refresh

    def refresh(self, progress: Progress = NO_PROGRESS) -> ArticleRefresh:
        """Sections rebuilt for new and changed articles, then the index synced: only new vectors embedded."""
        with self._lock:
            rebuilt = self._sync_sections()
            with self._sessions() as session:
                sections = session.execute(
                    select(
                        ArticleSection.id, ArticleSection.article_id, ArticleSection.name, ArticleSection.text
                    )
                ).all()
            self._set_owners({sid: (aid, name) for sid, aid, name, _ in sections})
            section_text = {sid: body for sid, _, _, body in sections}
            sync = self.index.sync_with(
                section_text,
                _reporting(
                    lambda ids: self.embedder.encode([section_text[i] for i in ids]),
                    progress,
                    "article sections",
                    len(section_text.keys() - self.index.ids()),
                ),
                batch_size=SECTION_BATCH,
            )
        return ArticleRefresh(articles_rebuilt=rebuilt, added=sync.added, removed=sync.removed)

    def _sync_sections(self) -> int:
        rebuilt = 0
        with self._sessions.begin() as session:
            current = dict(session.execute(select(KnowledgeArticle.id, KnowledgeArticle.content_hash)).all())
            indexed = dict(
                session.execute(
                    select(ArticleSection.article_id, ArticleSection.article_content_hash).distinct()
                ).all()
            )
            stale = [aid for aid, digest in indexed.items() if current.get(aid) != digest]
            if stale:
                session.execute(delete(ArticleSection).where(ArticleSection.article_id.in_(stale)))
            changed = [aid for aid, digest in current.items() if indexed.get(aid) != digest]
            for article in session.scalars(select(KnowledgeArticle).where(KnowledgeArticle.id.in_(changed))):
                for ordinal, section in enumerate(split_runbook_sections(article.body, article.title)):
                    session.add(
                        ArticleSection(
                            tenant_id=session.tenant_id,
                            article_id=article.id,
                            ordinal=ordinal,
                            name=section.name[:200],
                            text=section.text,
                            text_hash=text_hash(section.text),
                            article_content_hash=article.content_hash,
                        )
                    )
                rebuilt += 1
        return rebuilt

    # ------------------------------------------------------------------------------------------------
    # Search

    def search(
        self,
        query_text: str,
        vector: np.ndarray,
        k: int,
        *,
        calibrator: Calibrator | None,
        lexical_text: str | None = None,
        include_unpublished: bool = False,
    ) -> list[ArticleMatch]:
        """Top-k articles for a text whose embedding is ``vector``; ``lexical_text``: what FTS searches for,
        when not the text (an alert's raw expressions); the pair scores read ``query_text``."""
        if k < 1:
            return []
        hits = self.index.search(vector.reshape(1, -1), CANDIDATES * 3)[0]
        dense: dict[int, tuple[float, str]] = {}
        for section_id, score in hits:
            owner = self._owners.get(section_id)
            if owner is None:
                continue
            article_id, name = owner
            if article_id not in dense or score > dense[article_id][0]:
                dense[article_id] = (score, name)
        with self._sessions() as session:
            lexical = self._lexical(
                session, lexical_text if lexical_text is not None else query_text, include_unpublished
            )
            candidates = self._candidates(dense, lexical, vector)
            if not candidates:
                return []
            # The original HTML and the attachments' text can be large and are not shown; the body is read
            # only for an article whose terms are not cached yet (or as a section's fallback).
            query = select(KnowledgeArticle).where(KnowledgeArticle.id.in_(candidates))
            query = query.options(
                defer(KnowledgeArticle.raw_payload),
                defer(KnowledgeArticle.attachment_text),
                defer(KnowledgeArticle.body),
            )
            if not include_unpublished:
                query = query.where(KnowledgeArticle.status == PUBLISHED)
            articles = {a.id: a for a in session.scalars(query)}
            terms = self._article_terms(articles.values())
            query_terms = lexical_terms(query_text)
            distinct = set(query_terms)
            with_parts = distinct | {part for term in query_terms for part in term_parts(term)}
            matches = [
                ArticleMatch(
                    article_id=aid,
                    number=article.number,
                    title=article.title,
                    url=article.url,
                    source_system=article.source_system,
                    space=article.space,
                    state=article.status or "",
                    confidence=0.0,
                    dense_score=candidates[aid].cosine,
                    shared_terms=(),
                    section_name=candidates[aid].section_name,
                    section_text="",
                    coverage_score=lexical_coverage(distinct, terms[aid].with_parts),
                    title_coverage=lexical_coverage(terms[aid].title, with_parts),
                    lexical_score=candidates[aid].lexical_score,
                    fused_score=candidates[aid].fused,
                )
                for aid, article in sorted(articles.items())
            ]
            ranked = rank_articles(calibrator, matches)[:k]
            return [
                replace(
                    m,
                    shared_terms=tuple(shared_terms(query_terms, terms[m.article_id].whole)),
                    section_text=_section_text(session, articles[m.article_id], m.section_name),
                )
                for m in ranked
            ]

    @staticmethod
    def _lexical(session: TenantSession, query_text: str, include_unpublished: bool) -> dict[int, float]:
        if is_team_session(session):  # core.matching.pg_search: the same BM25 on PostgreSQL
            ranked = pg_search.search(
                session,
                "article_fts",
                query_text,
                tenant_id=session.tenant_id,
                limit=CANDIDATES,
                weights=(TITLE_WEIGHT, 1.0, ATTACHMENT_WEIGHT),
                where="" if include_unpublished else "src.status = :published",
                params={"published": PUBLISHED},
            )
            return dict(ranked)
        match = fts_query(query_text)
        if match is None:
            return {}
        state = "" if include_unpublished else "AND a.status = :published "
        rows = session.execute(
            text(
                "SELECT article_fts.rowid, "
                "-bm25(article_fts, :title_weight, 1.0, :attachment_weight) AS score "
                "FROM article_fts JOIN knowledge_articles a ON a.id = article_fts.rowid "
                f"WHERE article_fts MATCH :match AND a.tenant_id = :tenant {state}"
                "ORDER BY score DESC LIMIT :limit"
            ),
            {
                "match": match,
                "tenant": session.tenant_id,
                "limit": CANDIDATES,
                "title_weight": TITLE_WEIGHT,
                "attachment_weight": ATTACHMENT_WEIGHT,
                "published": PUBLISHED,
            },
        ).all()
        return {int(rowid): float(score) for rowid, score in rows}

    def _candidates(
        self, dense: Mapping[int, tuple[float, str]], lexical: Mapping[int, float], vector: np.ndarray
    ) -> dict[int, _Candidate]:
        """Dense and lexical candidates with their cosine (exact for the lexical-only ones) and fused rank."""
        dense_ids = sorted(dense, key=lambda a: (-dense[a][0], a))[:CANDIDATES]
        dense_rank = {aid: rank for rank, aid in enumerate(dense_ids, start=1)}
        lexical_rank = {aid: r for r, aid in enumerate(sorted(lexical, key=lambda a: (-lexical[a], a)), 1)}
        top_lexical = max(lexical.values(), default=0.0)
        out: dict[int, _Candidate] = {}
        for aid in dense_rank.keys() | lexical_rank.keys():
            fused = sum(1 / (RRF_K + ranks[aid]) for ranks in (dense_rank, lexical_rank) if aid in ranks)
            cosine, name = dense[aid] if aid in dense else self._best_section(aid, vector)
            out[aid] = _Candidate(
                article_id=aid,
                cosine=cosine,
                section_name=name,
                lexical_score=lexical.get(aid, 0.0) / top_lexical if top_lexical > 0 else 0.0,
                fused=fused * (RRF_K + 1) / 2,
            )
        return out

    def _best_section(self, article_id: int, vector: np.ndarray) -> tuple[float, str]:
        sections = [(sid, n) for sid, n in self._sections_by_article.get(article_id, ()) if sid in self.index]
        if not sections:
            return 0.0, ""
        scores = self.index.vectors([sid for sid, _ in sections]) @ vector.reshape(-1)
        best = int(np.argmax(scores))
        return float(scores[best]), sections[best][1]

    def _article_terms(self, articles: Collection[KnowledgeArticle]) -> dict[int, _ArticleTerms]:
        """Title and body terms per content version (the attachments stay out: module docstring)."""
        out: dict[int, _ArticleTerms] = {}
        for article in articles:
            cached = self._terms_cache.get(article.id)
            if cached is None or cached.content_hash != article.content_hash:
                whole = frozenset(lexical_terms(f"{article.title}\n{article.body}"))
                parts = {part for term in whole for part in term_parts(term)}
                cached = _ArticleTerms(
                    article.content_hash, whole, whole | parts, frozenset(lexical_terms(article.title))
                )
                self._terms_cache[article.id] = cached
            out[article.id] = cached
        return out


def _section_text(session: TenantSession, article: KnowledgeArticle, section_name: str) -> str:
    """Every chunk of the best section; for the title (or words only) the first section after the title."""
    query = select(ArticleSection.name, ArticleSection.text).where(ArticleSection.article_id == article.id)
    sections = session.execute(query.order_by(ArticleSection.ordinal)).all()
    if section_name and section_name != TITLE_SECTION_NAME:
        parts = [body for name, body in sections if name == section_name]
        if parts:
            return "\n\n".join(dict.fromkeys(parts))
    return sections[1][1] if len(sections) > 1 else article.body[:2000]
