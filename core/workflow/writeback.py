"""Write-backs: an analyst's approved runbook link, posted to the source ticket in its ticketing system.

Opt-in per connector. A link is queued only for a ticket a connector config stored
(``tickets.connector_config_id``; a file import has none) whose option ``write_back`` is true. The option is
read straight from ``connector_configs.config_json["options"]``, the layout :mod:`connectors.configs` writes:
core does not import the connector layer. Only ticketing connectors declare the option, so only their tickets
qualify.

Once per link. ``ticket_writebacks`` is unique by (ticket, runbook): a second approval of the same link (a
re-approval after an undo, a bulk approve over it) queues nothing. A write-back already *written* is never
posted again, whatever the analyst does to the link afterwards: the note is in the other system.

Undo, reject. A decision that leaves the link not approved (an undo of the approval, a later reject)
*cancels* a write-back not yet written: its row is deleted (audited ``writeback.cancelled`` with the row's
state, so the trail keeps it), and a new approval queues a fresh one. A pending row is deleted rather than
marked because a cancelled write-back has nothing left to do and the unique key must let the re-approval in.

Posting is the connector layer's (:func:`connectors.writes.drain_writebacks`): it takes rows that are pending,
or failed with fewer than :data:`MAX_ATTEMPTS` attempts, and records the outcome. After :data:`MAX_ATTEMPTS` a
row stays failed until an analyst retries it (:func:`retry_writeback`), which starts its count again. Nothing
here touches the link itself: a failed write never blocks or changes the decision.

All functions run in the caller's transaction and append their audit rows to it, so an approval and its
queued write-back commit together (or neither does).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from core.errors import RunbookDeskError
from core.store.models import (
    ConnectorConfig,
    LinkDecision,
    Runbook,
    Ticket,
    TicketRunbookLink,
    TicketWriteback,
    WritebackStatus,
)
from core.store.repository import record_audit
from core.store.tenancy import TenantSession

# The option a ticketing connector's spec declares (BOOLEAN, default off) and connectors.configs stores
# under config_json["options"].
WRITE_BACK_OPTION = "write_back"
OPTIONS_KEY = "options"
# Automatic attempts before a write-back waits for an analyst's retry. Each attempt already retries
# transient HTTP failures with the shared client's backoff, so five failed attempts are a real problem.
MAX_ATTEMPTS = 5
WRITEBACK_ENTITY = "ticket_writeback"
REMOVED_CONNECTOR = "(removed connector)"
_ENABLED_CACHE = "writeback_enabled_configs"


class WritebackError(RunbookDeskError):
    """A write-back request that cannot be done (unknown id, retry of one that has not failed)."""


@dataclass(frozen=True, slots=True)
class WritebackRow:
    """One write-back as the ticket view, the CLI and the status widget show it; plain data, thread-safe."""

    id: int
    ticket_id: int
    ticket_external_id: str
    runbook_id: int
    runbook_title: str
    connector_name: str
    status: WritebackStatus
    attempts: int
    last_error: str | None
    written_at: datetime | None
    remote_id: str | None
    approved_by: str
    approved_at: datetime
    confidence: float | None
    last_attempt_at: datetime | None

    @property
    def gave_up(self) -> bool:
        """Failed and out of automatic attempts: only an analyst's retry posts it now."""
        return self.status is WritebackStatus.FAILED and self.attempts >= MAX_ATTEMPTS


def write_back_enabled(config: ConnectorConfig) -> bool:
    """The config's ``write_back`` option as :mod:`connectors.configs` stores options; True only if set."""
    options = (config.config_json or {}).get(OPTIONS_KEY) or {}
    return isinstance(options, Mapping) and options.get(WRITE_BACK_OPTION) is True


def _enabled_configs(session: TenantSession) -> frozenset[int]:
    """Ids of the tenant's configs with ``write_back`` on, read once per transaction: a bulk approval of
    thousands of links asks once, not per link (a bulk approval of 5,000 file-imported tickets took 4.5 s
    with a ticket and config lookup per link, 2.7 s without the write-back check, 2.7-3.6 s with this)."""
    cache: tuple[object, frozenset[int]] | None = session.info.get(_ENABLED_CACHE)
    transaction = session.get_transaction()
    if cache is not None and cache[0] is transaction:
        return cache[1]
    configs = session.scalars(select(ConnectorConfig)).all()
    enabled = frozenset(config.id for config in configs if write_back_enabled(config))
    session.info[_ENABLED_CACHE] = (transaction, enabled)
    return enabled


def _approved(link: TicketRunbookLink | None) -> bool:
    """An analyst's approval: linked and reviewed (an automatic link nobody confirmed is not posted)."""
    return link is not None and link.decision == LinkDecision.LINKED and link.reviewed_at is not None


def _row_json(row: TicketWriteback) -> dict[str, Any]:
    return {
        "ticket_id": row.ticket_id,
        "runbook_id": row.runbook_id,
        "connector_config_id": row.connector_config_id,
        "status": WritebackStatus(row.status).value,
        "attempts": row.attempts,
        "approved_by": row.approved_by,
        "confidence": row.confidence,
        "last_error": row.last_error,
        "remote_id": row.remote_id,
    }


def _existing(session: TenantSession, ticket_id: int, runbook_id: int) -> TicketWriteback | None:
    return session.scalars(
        select(TicketWriteback).where(
            TicketWriteback.ticket_id == ticket_id, TicketWriteback.runbook_id == runbook_id
        )
    ).one_or_none()


def queue_writeback(session: TenantSession, link: TicketRunbookLink, actor: str) -> TicketWriteback | None:
    """Queue the approved ``link`` for posting to its source ticket; the new row, or None when nothing was
    queued (not an approval, not a synced ticket, write-back off for its connector, or queued before)."""
    if not _approved(link):
        return None
    enabled = _enabled_configs(session)
    if not enabled:  # most tenants: no connector opted in, nothing more to look up (bulk approvals)
        return None
    config_id = session.scalar(select(Ticket.connector_config_id).where(Ticket.id == link.ticket_id))
    if config_id is None or config_id not in enabled:
        return None
    config = session.get(ConnectorConfig, config_id)
    if config is None:
        return None
    if _existing(session, link.ticket_id, link.runbook_id) is not None:
        return None
    row = TicketWriteback(
        tenant_id=session.tenant_id,
        ticket_id=link.ticket_id,
        runbook_id=link.runbook_id,
        connector_config_id=config.id,
        status=WritebackStatus.PENDING,
        confidence=link.confidence_score,
        approved_by=link.reviewed_by or actor,
        approved_at=link.reviewed_at,
        attempts=0,
    )
    try:
        # A savepoint: should another session have queued the same link meanwhile, the unique key refuses
        # this row without rolling back the analyst's decision around it.
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return None
    record_audit(
        session,
        actor=actor,
        action="writeback.queued",
        entity_type=WRITEBACK_ENTITY,
        entity_id=row.id,
        after=_row_json(row) | {"connector": config.name},
    )
    return row


def cancel_writeback(session: TenantSession, ticket_id: int, runbook_id: int, actor: str) -> bool:
    """Drop the link's write-back if it was not written yet (module docstring); True when one was dropped."""
    row = _existing(session, ticket_id, runbook_id)
    if row is None or row.status == WritebackStatus.WRITTEN:
        return False
    before = _row_json(row)
    row_id = row.id
    session.delete(row)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="writeback.cancelled",
        entity_type=WRITEBACK_ENTITY,
        entity_id=row_id,
        before=before,
        after={"reason": "the approval was undone or replaced before it was written"},
    )
    return True


def follow_decision(
    session: TenantSession, ticket_id: int, runbook_id: int, link: TicketRunbookLink | None, actor: str
) -> None:
    """Keep the write-back in step with a decision on one link: approved queues it, anything else
    (rejected, undone, removed) cancels one not yet written. The review workflow calls it for every link a
    decision or an undo changes."""
    if link is not None and _approved(link):
        queue_writeback(session, link, actor)
    else:
        cancel_writeback(session, ticket_id, runbook_id, actor)


def retry_writeback(session: TenantSession, writeback_id: int, actor: str) -> WritebackRow:
    """Put a failed write-back back in the queue with a fresh count of attempts (audited)."""
    row = session.get(TicketWriteback, writeback_id)
    if row is None or row.tenant_id != session.tenant_id:
        raise WritebackError(f"write-back {writeback_id} does not exist in this tenant")
    if row.status != WritebackStatus.FAILED:
        raise WritebackError(
            f"write-back {writeback_id} is {WritebackStatus(row.status).value}; only a failed one is retried"
        )
    before = _row_json(row)
    row.status = WritebackStatus.PENDING
    row.attempts = 0
    row.last_attempt_at = None  # lets the next drain take it at once (connectors.writes claims by it)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="writeback.retry",
        entity_type=WRITEBACK_ENTITY,
        entity_id=row.id,
        before=before,
        after=_row_json(row),
    )
    return _rows(session, TicketWriteback.id == row.id)[0]


def _rows(session: TenantSession, *conditions: Any, limit: int | None = None) -> list[WritebackRow]:
    query = (
        select(TicketWriteback, Runbook.title, Ticket.external_id, ConnectorConfig.name)
        .join(Runbook, Runbook.id == TicketWriteback.runbook_id)
        .join(Ticket, Ticket.id == TicketWriteback.ticket_id)
        .outerjoin(ConnectorConfig, ConnectorConfig.id == TicketWriteback.connector_config_id)
        .where(*conditions)
        .order_by(TicketWriteback.approved_at.desc(), TicketWriteback.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    return [
        WritebackRow(
            id=row.id,
            ticket_id=row.ticket_id,
            ticket_external_id=external_id,
            runbook_id=row.runbook_id,
            runbook_title=title,
            connector_name=connector_name or REMOVED_CONNECTOR,
            status=WritebackStatus(row.status),
            attempts=row.attempts,
            last_error=row.last_error,
            written_at=row.written_at,
            remote_id=row.remote_id,
            approved_by=row.approved_by,
            approved_at=row.approved_at,
            confidence=row.confidence,
            last_attempt_at=row.last_attempt_at,
        )
        for row, title, external_id, connector_name in session.execute(query).all()
    ]


def writebacks_of(session: TenantSession, ticket_id: int) -> list[WritebackRow]:
    """The ticket's write-backs, the latest approval first."""
    return _rows(session, TicketWriteback.ticket_id == ticket_id)


def list_writebacks(
    session: TenantSession, *, status: WritebackStatus | None = None, limit: int = 500
) -> list[WritebackRow]:
    """Every write-back of the tenant (of one status), the latest approval first: the CLI's list."""
    conditions = [TicketWriteback.status == status] if status is not None else []
    return _rows(session, *conditions, limit=limit)


def due_condition() -> Any:
    """Rows a drain should attempt: pending, or failed with automatic attempts left."""
    return or_(
        TicketWriteback.status == WritebackStatus.PENDING,
        (TicketWriteback.status == WritebackStatus.FAILED) & (TicketWriteback.attempts < MAX_ATTEMPTS),
    )


__all__ = [
    "MAX_ATTEMPTS",
    "WRITE_BACK_OPTION",
    "WritebackError",
    "WritebackRow",
    "cancel_writeback",
    "due_condition",
    "follow_decision",
    "list_writebacks",
    "queue_writeback",
    "retry_writeback",
    "write_back_enabled",
    "writebacks_of",
]
