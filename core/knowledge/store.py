"""Storing a page of knowledge articles: upserted by identity (the rule in :mod:`core.store.models`) and
content hash, in the sync page's transaction, like tickets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from core.knowledge.records import ArticleValues
from core.store.models import KnowledgeArticle
from core.store.sql import fit_to_column
from core.store.tenancy import TenantSession


@dataclass
class ArticleChanges:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    changed_ids: tuple[int, ...] = ()  # articles inserted or changed: what the index must embed again


def upsert_articles(
    session: TenantSession,
    articles: Sequence[ArticleValues],
    *,
    instance: str,
    connector_config_id: int | None,
) -> ArticleChanges:
    """Insert new articles, update changed ones (by content hash), count the rest as unchanged."""
    result = ArticleChanges()
    if not articles:
        return result
    stored = {
        (row.source_system, row.external_id): row
        for row in session.scalars(
            select(KnowledgeArticle).where(
                KnowledgeArticle.source_system.in_({a.source_system for a in articles}),
                KnowledgeArticle.source_instance == instance,
                KnowledgeArticle.external_id.in_({a.external_id for a in articles}),
            )
        )
    }
    changed: list[KnowledgeArticle] = []
    for article in articles:
        digest = article.content_hash
        row = stored.get((article.source_system, article.external_id))
        if row is not None and row.content_hash == digest:
            result.unchanged += 1
            continue
        if row is None:
            row = KnowledgeArticle(
                tenant_id=session.tenant_id,
                source_system=article.source_system,
                source_instance=instance,
                external_id=article.external_id,
            )
            session.add(row)
            stored[(article.source_system, article.external_id)] = row
            result.new += 1
        else:
            result.updated += 1
        row.connector_config_id = connector_config_id
        # Descriptive text cut to its column (PostgreSQL refuses longer text; core.store.sql.fit_to_column).
        row.number = fit_to_column(KnowledgeArticle.number, article.number)
        row.title = article.title[:1000]
        row.body = article.body
        row.url = fit_to_column(KnowledgeArticle.url, article.url)
        row.status = article.state.value
        row.space = fit_to_column(KnowledgeArticle.space, article.space)
        row.category = fit_to_column(KnowledgeArticle.category, article.category)
        row.author = fit_to_column(KnowledgeArticle.author, article.author)
        row.attachments = list(article.attachments)
        row.attachment_text = article.attachment_text
        row.raw_payload = article.raw_payload
        row.source_updated_at = article.updated_at
        row.content_hash = digest
        changed.append(row)
    session.flush()
    result.changed_ids = tuple(row.id for row in changed)
    return result
