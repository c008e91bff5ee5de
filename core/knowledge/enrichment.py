"""Knowledge articles as candidate steps of a draft runbook (issue 14, "Enrichment").

Drafting a runbook from a ticket (:func:`core.workflow.review.draft_from_ticket`) or from a gap
(:func:`core.analytics.gaps.draft_from_gap`, which the generation queue's drafts use too) offers, beside the
steps mined from resolution notes, the steps of the best matching *published* articles whose calibrated
confidence reaches the tenant's review threshold (below it the matcher itself says the article does not fit),
each citing its article by number and URL. The steps of an article are its procedure's list items
(:func:`core.workflow.draft_steps.article_steps`).

The search is the engine's (:meth:`MatchingEngine.search_articles`, :class:`ArticleSearch` here so this module
needs neither the engine nor its FAISS stack); an object without it (a test's similar-tickets source, an
engine from before issue 14) simply gives no article steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from sqlalchemy import select

from core.knowledge.records import ArticleState
from core.store.models import KnowledgeArticle
from core.store.tenancy import TenantSession
from core.workflow.draft_steps import Platform, article_candidate_steps
from core.workflow.drafts import CandidateStep

__all__ = [
    "ARTICLES_FOR_DRAFT",
    "ARTICLE_STEP_LIMIT",
    "ArticleHit",
    "ArticleSearch",
    "steps_from_articles",
]

ARTICLES_FOR_DRAFT = 3  # the best matching articles read for steps
ARTICLE_STEP_LIMIT = 8


class ArticleHit(Protocol):
    """What enrichment reads of a match (:class:`core.matching.articles.ArticleMatch` fits)."""

    @property
    def article_id(self) -> int: ...
    @property
    def number(self) -> str | None: ...
    @property
    def title(self) -> str: ...
    @property
    def url(self) -> str | None: ...
    @property
    def confidence(self) -> float: ...


@runtime_checkable
class ArticleSearch(Protocol):
    def search_articles(
        self,
        query_text: str,
        k: int = 3,
        *,
        lexical_text: str | None = None,
        include_unpublished: bool = False,
    ) -> Sequence[ArticleHit]: ...


def steps_from_articles(
    session: TenantSession,
    hits: Iterable[ArticleHit],
    *,
    threshold: float,
    platform: Platform | None,
    limit: int = ARTICLE_STEP_LIMIT,
    known: Iterable[CandidateStep] = (),
) -> tuple[CandidateStep, ...]:
    """The candidate steps of the hits at or above ``threshold`` that are still published in the store, best
    first, each citing its article (number, else title, and URL); repeats of ``known`` steps left out."""
    confident = sorted((hit for hit in hits if hit.confidence >= threshold), key=lambda hit: -hit.confidence)
    if not confident:
        return ()
    bodies = dict(
        session.execute(
            select(KnowledgeArticle.id, KnowledgeArticle.body).where(
                KnowledgeArticle.id.in_([hit.article_id for hit in confident]),
                KnowledgeArticle.status == ArticleState.PUBLISHED.value,
            )
        ).all()
    )
    articles = [
        (bodies[hit.article_id], hit.number or hit.title, hit.url)
        for hit in confident
        if hit.article_id in bodies
    ]
    return article_candidate_steps(articles, platform=platform, limit=limit, known=known)
