"""Adopt a knowledge article as a runbook, and notice when the article changes afterwards (issue 14).

**Adopt** (:func:`adopt_article`). The article becomes a *draft* runbook through the normal authoring service
(:func:`core.workflow.runbooks.create_runbook`: revision 1, a ``runbook.create`` audit row), so it then goes
through the normal review and approval, and approving it requests the re-match of the tickets near it like
any runbook. The runbook: ``source = kb``, ``external_ref`` = the article's URL (its number when it has no
URL), ``source_article_id`` and ``source_article_hash`` (the article's content hash now), the article's title,
its Markdown body followed by a ``Source: [KB0012345](url)`` line, and tags from the article's category and
space. A ``knowledge.adopted`` audit row records the adoption *and the article's text as adopted* (title,
state, body): that text is the base of the "source changed" diff, whatever the analyst edits in the runbook
afterwards. Adopting an article twice returns the runbook adopted the first time, whatever its status since.
A retired article is not adopted (its authors withdrew it); a draft one is (an analyst may know better).

**Source changed** (:func:`source_changes`, :func:`source_changed`). A re-sync that edits an article gives it
a new content hash; an adopted runbook whose ``source_article_hash`` differs from its article's hash *and*
whose article reads differently (title, state or body: the hash also covers fields nobody reads, like the
update time) is listed with a unified diff (difflib) from the text as adopted to the text now. Retired
runbooks are not listed.

**Acknowledge** (:func:`acknowledge_source_change`), the simplest behaviour that loses nothing: the runbook
takes the article's current text as a new revision (:func:`~core.workflow.runbooks.save_runbook`, so an
approved runbook stays approved and its tickets are re-matched), and its hash moves to the article's. The
analyst's own edits stay in the revision history, where the history dialog's diff shows what to carry over.
With ``take_article_text=False`` the runbook text is kept as it is and only the change is marked seen (the new
article text becomes the base of the next diff). Either way a ``knowledge.source_acknowledged`` audit row
holds the new base.

Transactions as in :mod:`core.workflow.runbooks`: inside the caller's ``with sessions.begin()``, flush only.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from core.errors import RunbookDeskError
from core.knowledge.records import ArticleState
from core.store.models import AuditEvent, KnowledgeArticle, Runbook, RunbookSource, RunbookStatus
from core.store.repository import record_audit
from core.store.tenancy import TenantSession
from core.workflow.runbooks import ENTITY, create_runbook, save_runbook

__all__ = [
    "ACTION_ACKNOWLEDGED",
    "ACTION_ADOPTED",
    "AdoptError",
    "SourceChange",
    "acknowledge_source_change",
    "adopt_article",
    "adopted_runbook_id",
    "adopted_text",
    "article_body_with_source",
    "find_article",
    "source_changed",
    "source_changes",
    "source_line",
]

ACTION_ADOPTED = "knowledge.adopted"
ACTION_ACKNOWLEDGED = "knowledge.source_acknowledged"
_BASE_ACTIONS = (ACTION_ADOPTED, ACTION_ACKNOWLEDGED)
MAX_TAGS = 2


class AdoptError(RunbookDeskError):
    """An adoption or acknowledgement that cannot be done; the message is meant for the person who acted."""


@dataclass(frozen=True, slots=True)
class SourceChange:
    """An adopted runbook whose article changed since it was adopted (or last acknowledged)."""

    runbook_id: int
    runbook_title: str
    article_id: int
    number: str | None
    url: str | None
    diff: str  # unified diff: the article as adopted -> the article now


def _article(session: TenantSession, article_id: int) -> KnowledgeArticle:
    article = session.scalar(select(KnowledgeArticle).where(KnowledgeArticle.id == article_id))
    if article is None:
        raise AdoptError(f"there is no knowledge article {article_id} in this tenant")
    return article


def _literal(text: str) -> str:
    """``text`` as a LIKE pattern that matches only itself (case aside)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def find_article(session: TenantSession, reference: str) -> KnowledgeArticle:
    """The article people quote as ``reference``: its number (KB0012345, case-insensitive), else its
    external id; two articles with the same number (two instances) must be told apart by external id."""
    wanted = reference.strip()
    for column in (KnowledgeArticle.number, KnowledgeArticle.external_id):
        found = session.scalars(
            select(KnowledgeArticle).where(column.ilike(_literal(wanted), escape="\\"))
        ).all()
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            ids = ", ".join(f"{a.source_system} {a.external_id}" for a in found)
            raise AdoptError(f"{wanted} names {len(found)} articles ({ids}): give the external id")
    raise AdoptError(f"there is no knowledge article {wanted} in this tenant")


def source_line(article: KnowledgeArticle) -> str:
    """``Source: [KB0012345](https://…)``: the line that keeps the link to the article in the runbook."""
    label = (article.number or article.title).replace("[", "(").replace("]", ")")
    if article.url:
        return f"Source: [{label}]({article.url})"
    return f"Source: {label} ({article.source_system})"


def article_body_with_source(article: KnowledgeArticle) -> str:
    body = article.body.strip()
    return f"{body}\n\n{source_line(article)}" if body else source_line(article)


def _tags(article: KnowledgeArticle) -> list[str]:
    """The category, then the space, as tags: a short tidy word list, not a sentence."""
    tags: list[str] = []
    for value in (article.category, article.space):
        tag = " ".join((value or "").split()).lower()
        if tag and len(tag) <= 40 and tag not in tags:
            tags.append(tag)
    return tags[:MAX_TAGS]


def adopted_text(article: KnowledgeArticle) -> dict[str, Any]:
    """What the base of the "source changed" diff holds of an article."""
    return {"title": article.title, "state": article.status or "", "body": article.body}


def _text_lines(text: dict[str, Any]) -> list[str]:
    return [
        f"Title: {text.get('title', '')}",
        f"State: {text.get('state', '')}",
        "",
        *str(text.get("body", "")).splitlines(),
    ]


def adopted_runbook_id(session: TenantSession, article_id: int) -> int | None:
    """The runbook adopted from this article, if any (the oldest, should a race have made two)."""
    return session.scalar(
        select(Runbook.id).where(Runbook.source_article_id == article_id).order_by(Runbook.id).limit(1)
    )


def adopt_article(session: TenantSession, article_id: int, actor: str) -> int:
    """A draft runbook from the article (see the module docstring); returns its id. Idempotent."""
    article = _article(session, article_id)
    existing = adopted_runbook_id(session, article.id)
    if existing is not None:
        return existing
    if article.status == ArticleState.RETIRED.value:  # its own authors withdrew it
        raise AdoptError(
            f"{article.number or article.title} is retired in {article.source_system}: not adopted"
        )
    runbook_id = create_runbook(
        session,
        title=article.title or article.number or f"Article {article.id}",
        body=article_body_with_source(article),
        tags=_tags(article),
        service=None,
        actor=actor,
        status=RunbookStatus.DRAFT,
        source=RunbookSource.KB,
    )
    runbook = session.scalar(select(Runbook).where(Runbook.id == runbook_id))
    assert runbook is not None  # just created in this session
    runbook.external_ref = (article.url or article.number or article.external_id)[:500]
    runbook.source_article_id = article.id
    runbook.source_article_hash = article.content_hash
    session.flush()
    record_audit(
        session,
        actor=actor,
        action=ACTION_ADOPTED,
        entity_type=ENTITY,
        entity_id=runbook_id,
        before=None,
        after={
            "article_id": article.id,
            "number": article.number,
            "url": article.url,
            "source_system": article.source_system,
            "article_hash": article.content_hash,
            "adopted": adopted_text(article),
        },
    )
    session.flush()
    return runbook_id


def _base_text(session: TenantSession, runbook: Runbook) -> dict[str, Any]:
    """The article's text as last adopted or acknowledged (the newest such audit row), or its revision 1
    body when the trail has none (a runbook adopted by hand)."""
    events = session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.entity_type == ENTITY,
            AuditEvent.entity_id == runbook.id,
            AuditEvent.action.in_(_BASE_ACTIONS),
        )
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    for event in events:
        text = (event.after or {}).get("adopted")
        if isinstance(text, dict):
            return text
    first = runbook.revisions[0] if runbook.revisions else None
    return {
        "title": first.title if first else runbook.title,
        "state": "",
        "body": first.body if first else "",
    }


def _change(session: TenantSession, runbook: Runbook, article: KnowledgeArticle) -> SourceChange | None:
    if article.content_hash == runbook.source_article_hash:
        return None
    label = article.number or f"article {article.id}"
    lines = difflib.unified_diff(
        _text_lines(_base_text(session, runbook)),
        _text_lines(adopted_text(article)),
        fromfile=f"{label} as adopted",
        tofile=f"{label} now",
        lineterm="",
    )
    diff = "\n".join(lines)
    if not diff:  # only fields nobody reads changed (the update time, the raw payload)
        return None
    return SourceChange(
        runbook_id=runbook.id,
        runbook_title=runbook.title,
        article_id=article.id,
        number=article.number,
        url=article.url,
        diff=diff,
    )


def source_changes(session: TenantSession) -> list[SourceChange]:
    """Every adopted, not retired runbook whose article reads differently now; by runbook id."""
    rows = session.execute(
        select(Runbook, KnowledgeArticle)
        .join(KnowledgeArticle, KnowledgeArticle.id == Runbook.source_article_id)
        .where(
            Runbook.status != RunbookStatus.RETIRED,
            Runbook.source_article_hash.is_not(None),
            KnowledgeArticle.content_hash != Runbook.source_article_hash,
        )
        .order_by(Runbook.id)
    ).all()
    changes = (_change(session, runbook, article) for runbook, article in rows)
    return [change for change in changes if change is not None]


def source_changed(session: TenantSession, runbook_id: int) -> SourceChange | None:
    """The runbook's source change, or None (not adopted, article gone, unchanged, retired)."""
    runbook = session.scalar(select(Runbook).where(Runbook.id == runbook_id))
    if runbook is None or runbook.source_article_id is None or runbook.status == RunbookStatus.RETIRED:
        return None
    article = session.scalar(select(KnowledgeArticle).where(KnowledgeArticle.id == runbook.source_article_id))
    return None if article is None else _change(session, runbook, article)


def acknowledge_source_change(
    session: TenantSession, runbook_id: int, actor: str, *, take_article_text: bool = True
) -> int:
    """Re-base the runbook on its article's current text (see the module docstring); returns its revision."""
    runbook = session.scalar(select(Runbook).where(Runbook.id == runbook_id))
    if runbook is None or runbook.source_article_id is None:
        raise AdoptError(f"runbook {runbook_id} was not adopted from a knowledge article")
    article = session.scalar(select(KnowledgeArticle).where(KnowledgeArticle.id == runbook.source_article_id))
    if article is None:
        raise AdoptError(f"the article runbook {runbook_id} was adopted from is no longer in the store")
    before = {"article_hash": runbook.source_article_hash, "revision": runbook.current_revision}
    revision = runbook.current_revision
    if take_article_text:
        revision = save_runbook(
            session,
            runbook.id,
            title=article.title or runbook.title,
            body=article_body_with_source(article),
            tags=runbook.tags or (),
            service=runbook.service,
            actor=actor,
            expected_revision=runbook.current_revision,
        )
    runbook.source_article_hash = article.content_hash
    session.flush()
    record_audit(
        session,
        actor=actor,
        action=ACTION_ACKNOWLEDGED,
        entity_type=ENTITY,
        entity_id=runbook.id,
        before=before,
        after={
            "article_id": article.id,
            "article_hash": article.content_hash,
            "revision": revision,
            "took_article_text": take_article_text,
            "adopted": adopted_text(article),
        },
    )
    session.flush()
    return revision
