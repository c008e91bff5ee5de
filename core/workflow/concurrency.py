"""Optimistic concurrency: two analysts on one store, and the second write is refused, never lost (issue 17).

Runbooks and ticket-runbook links carry a ``version`` that SQLAlchemy checks and bumps on every UPDATE
(``version_id_col`` in :mod:`core.store.models`) and an ``updated_by``. Two kinds of race end here:

* *Read, then decide later.* The review page shows a ticket; minutes later the analyst approves. The
  decision carries the versions it displayed (:class:`~core.workflow.review.LinkVersions`) and the workflow
  compares them with the store before writing. Re-reading at decision time would hide the conflict: the
  write would then be based on a state the analyst never saw.
* *Two writes in the same instant.* Both passed that check; the database decides. An UPDATE whose
  ``WHERE version = :read`` matches nothing raises :class:`~sqlalchemy.orm.exc.StaleDataError`, and a
  second INSERT of the same (ticket, runbook) link breaks the unique constraint. Both mean "someone else
  wrote first".

Either way the caller gets :class:`~core.errors.ConcurrentChangeError` naming who and when ("changed by
alice at 2026-12-06 10:04:31 UTC") and its transaction rolls back: nothing is overwritten. After a failed
flush the session cannot read any more, so the winner's name is read on a fresh connection of the same
engine (the same login: on PostgreSQL, row-level security shows it the same rows).

Who: on PostgreSQL the database login (:func:`core.store.team.current_login`: the server knows it, the app
cannot make it up); on SQLite, one analyst per file, the name the app knows the analyst by.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from core.errors import ConcurrentChangeError
from core.store.models import AuditEvent, Runbook, TicketRunbookLink
from core.store.team import current_login
from core.store.tenancy import TenantSession

UNKNOWN_EDITOR = "another session"  # a row written before team mode, or by the app itself without a name


def editor(session: TenantSession, actor: str) -> str:
    """The name ``updated_by`` records: the database login in team mode, else the app's actor."""
    return current_login(session) or actor


def changed_text(who: str | None, when: datetime | None) -> str:
    """'changed by alice at 2026-12-06 10:04:31 UTC' (naive times are the store's UTC)."""
    name = who or UNKNOWN_EDITOR
    if when is None:
        return f"changed by {name}"
    moment = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return f"changed by {name} at {moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _engine_of(session: TenantSession) -> Engine:
    bind = session.get_bind()
    return bind.engine if isinstance(bind, Connection) else bind


def link_writer(session: TenantSession, ticket_id: int, runbook_id: int) -> tuple[str, datetime] | None:
    """Who last wrote the (ticket, runbook) link and when, read on a fresh connection; None: no such link."""
    query = select(TicketRunbookLink.updated_by, TicketRunbookLink.updated_at).where(
        TicketRunbookLink.tenant_id == session.tenant_id,
        TicketRunbookLink.ticket_id == ticket_id,
        TicketRunbookLink.runbook_id == runbook_id,
    )
    with _engine_of(session).connect() as connection:
        row = connection.execute(query).first()
    return (row[0], row[1]) if row is not None else None


def runbook_writer(session: TenantSession, runbook_id: int) -> tuple[str, datetime] | None:
    query = select(Runbook.updated_by, Runbook.updated_at).where(
        Runbook.tenant_id == session.tenant_id, Runbook.id == runbook_id
    )
    with _engine_of(session).connect() as connection:
        row = connection.execute(query).first()
    return (row[0], row[1]) if row is not None else None


def last_audited_writer(
    session: TenantSession, entity_type: str, entity_id: int
) -> tuple[str, datetime] | None:
    """Who last changed an entity per the audit trail: for a row that is gone (an undo removed the link)."""
    event = session.execute(
        select(AuditEvent.db_login, AuditEvent.actor, AuditEvent.occurred_at)
        .where(AuditEvent.entity_type == entity_type, AuditEvent.entity_id == entity_id)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).first()
    if event is None:
        return None
    db_login, actor, occurred_at = event
    return (db_login or actor, occurred_at)


@contextmanager
def link_write_guard(session: TenantSession, subject: str, ticket_id: int, runbook_id: int) -> Iterator[None]:
    """Around the flush that writes one link: another session's write that won the race becomes a
    :class:`ConcurrentChangeError` naming it (a stale UPDATE, or an INSERT of a link that now exists)."""
    try:
        yield
    except StaleDataError as exc:
        writer = link_writer(session, ticket_id, runbook_id)
        who, when = writer if writer is not None else (None, None)
        raise ConcurrentChangeError(f"{subject} was {changed_text(who, when)}; nothing was saved") from exc
    except IntegrityError as exc:
        writer = link_writer(session, ticket_id, runbook_id)
        if writer is None:
            raise  # not the (ticket, runbook) uniqueness: a real error
        raise ConcurrentChangeError(f"{subject} was {changed_text(*writer)}; nothing was saved") from exc


@contextmanager
def runbook_write_guard(session: TenantSession, runbook_id: int, title: str) -> Iterator[None]:
    """As :func:`link_write_guard`, for a runbook's UPDATE."""
    try:
        yield
    except StaleDataError as exc:
        writer = runbook_writer(session, runbook_id)
        who, when = writer if writer is not None else (None, None)
        raise ConcurrentChangeError(f"“{title}” was {changed_text(who, when)}; nothing was saved") from exc
