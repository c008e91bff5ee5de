"""Tenant-scoped reads and writes the UI and CLI share.

Functions take a :class:`~core.store.tenancy.TenantSession` (already bound to one tenant) and return frozen
row
objects, never live ORM instances: rows cross threads and reach Qt models, ORM objects must not.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select

from core.store.models import AuditEvent, Runbook, RunbookRevision, RunbookStatus, Ticket
from core.store.tenancy import TenantSession


@dataclass(frozen=True, slots=True)
class TicketRow:
    id: int
    external_id: str
    source_system: str
    title: str
    description: str
    status: str | None
    severity: str | None
    assignee: str | None
    kind: str
    category: str | None
    configuration_item: str | None
    resolution_notes: str | None
    created_at: datetime | None
    updated_at: datetime | None
    resolved_at: datetime | None
    source_url: str | None


@dataclass(frozen=True, slots=True)
class RunbookRow:
    id: int
    title: str
    body: str
    tags: tuple[str, ...]
    service: str | None
    status: str
    source: str
    external_ref: str | None
    current_revision: int
    updated_at: datetime


def ticket_row(ticket: Ticket) -> TicketRow:
    return TicketRow(
        id=ticket.id,
        external_id=ticket.external_id,
        source_system=ticket.source_system,
        title=ticket.title,
        description=ticket.description,
        status=ticket.status,
        severity=ticket.severity,
        assignee=ticket.assignee,
        kind=ticket.kind.value,
        category=ticket.category,
        configuration_item=ticket.configuration_item,
        resolution_notes=ticket.resolution_notes,
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        resolved_at=ticket.resolved_at,
        source_url=ticket.source_url,
    )


def runbook_row(runbook: Runbook) -> RunbookRow:
    return RunbookRow(
        id=runbook.id,
        title=runbook.title,
        body=runbook.body,
        tags=tuple(runbook.tags),
        service=runbook.service,
        status=runbook.status.value,
        source=runbook.source.value,
        external_ref=runbook.external_ref,
        current_revision=runbook.current_revision,
        updated_at=runbook.updated_at,
    )


def list_tickets(
    session: TenantSession, *, search: str | None = None, limit: int | None = None, offset: int = 0
) -> list[TicketRow]:
    query = select(Ticket).order_by(Ticket.updated_at.desc().nulls_last(), Ticket.id.desc())
    if search:
        pattern = f"%{search}%"
        query = query.where(
            or_(
                Ticket.title.ilike(pattern),
                Ticket.external_id.ilike(pattern),
                Ticket.description.ilike(pattern),
            )
        )
    query = query.offset(offset).limit(limit)
    return [ticket_row(t) for t in session.scalars(query)]


def count_tickets(session: TenantSession) -> int:
    return session.scalar(select(func.count()).select_from(Ticket)) or 0


def list_runbooks(
    session: TenantSession, *, status: RunbookStatus | None = None, search: str | None = None
) -> list[RunbookRow]:
    query = select(Runbook).order_by(Runbook.title)
    if status is not None:
        query = query.where(Runbook.status == status)
    if search:
        query = query.where(or_(Runbook.title.ilike(f"%{search}%"), Runbook.body.ilike(f"%{search}%")))
    return [runbook_row(r) for r in session.scalars(query)]


def current_actor() -> str:
    """The OS user name: who the audit trail names unless settings say otherwise."""
    try:
        return getpass.getuser()
    except OSError:  # no login name (some containers): still audit, with an honest placeholder
        return "unknown-user"


def record_audit(
    session: TenantSession,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: int | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        tenant_id=session.tenant_id,
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        before=before,
        after=after,
    )
    session.add(event)
    return event


def add_revision(session: TenantSession, runbook: Runbook, author: str) -> RunbookRevision:
    """Snapshot the runbook's current text as its next revision (call after changing it)."""
    runbook.current_revision = (runbook.current_revision or 0) + 1
    revision = RunbookRevision(
        tenant_id=session.tenant_id,
        revision=runbook.current_revision,
        title=runbook.title,
        body=runbook.body,
        tags=list(runbook.tags or []),
        service=runbook.service,
        author=author,
    )
    runbook.revisions.append(revision)
    return revision
