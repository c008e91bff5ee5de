"""Writes to ticketing systems: posting approved runbook links (write-backs) and creating incidents.

Both go through the connector's own write methods (:meth:`~connectors.base.Connector.add_work_note`,
:meth:`~connectors.base.Connector.create_incident`) on a connector built exactly as a sync builds it (the
config's settings with its keychain secrets, the shared HTTP client with its limits and its backoff on 429
and 5xx), so a write is retried the framework's way and never waits without end.

Write-backs (:func:`drain_writebacks`). :mod:`core.workflow.writeback` queues them with the decision; a drain
takes the due ones (pending first, then failed ones with attempts left, oldest first), posts each, and records
``written`` (with the note's id) or ``failed`` (with the error text redacted and cut,
:func:`connectors.secrets.redacted_excerpt`), one attempt more, one audit row each. The decision is never
touched. Two drains at once (the desktop's and a CLI's) cannot post one note twice: a drain *claims* a row
by stamping ``last_attempt_at`` with a conditional UPDATE before posting, and skips rows another drain
claimed within :data:`CLAIM_LEASE` (which also spaces out automatic retries of a failing row).

Incident creation (:func:`create_incident_ticket`). Never two tickets for one monitoring incident:
- a stored ``created_number`` is returned as it is (``existed=True``), nothing is sent;
- before the POST, one transaction claims the incident (``created_config_id``, ``created_by``, and
  ``created_at`` = the claim time, ``created_number`` still NULL); a second call finding a claim younger than
  :data:`CREATE_CLAIM_TTL` refuses with :class:`IncidentCreationInProgressError` instead of posting again;
- a failed POST releases the claim (and audits nothing: no ticket exists); an app killed mid-POST leaves a
  claim that expires after the TTL, and the retry sends the same ``correlation_id``
  (``runbook-desk:<tenant>:<incident id>``), by which a connector that can search for it finds the ticket
  the lost answer created instead of creating a second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import sessionmaker

from connectors.base import Connector, ConnectorSettings, CreatedTicket, NewIncident, WorkNote
from connectors.configs import ConfigRow, config_row, settings_for
from connectors.errors import ConfigurationError, ConnectorError
from connectors.http import Sleep
from connectors.registry import connector_class
from connectors.secrets import redacted_excerpt
from core.errors import RunbookDeskError
from core.progress import NO_PROGRESS, Progress, raise_if_cancelled
from core.queries import latest_analysis
from core.store.models import (
    AlertStatus,
    Analysis,
    ConnectorConfig,
    LinkDecision,
    MonitoringAlert,
    MonitoringIncident,
    Runbook,
    Ticket,
    TicketRunbookLink,
    TicketWriteback,
    WritebackStatus,
)
from core.store.repository import record_audit
from core.store.tenancy import TenantSession
from core.workflow.writeback import MAX_ATTEMPTS, WRITEBACK_ENTITY, due_condition, write_back_enabled

log = logging.getLogger(__name__)

# A transport per connector's settings (the desktop's test seam, desktop.context.TransportFactory).
TransportFactory = Callable[[ConnectorSettings], httpx.AsyncBaseTransport | None]

CLAIM_LEASE = timedelta(minutes=5)
CREATE_CLAIM_TTL = timedelta(minutes=10)
INCIDENT_ENTITY = "monitoring_incident"
MAX_ALERTS_IN_DESCRIPTION = 50


def _now() -> datetime:
    return datetime.now(UTC)


def runbook_url(external_ref: str | None) -> str | None:
    """The runbook's address for the note: its external reference when that is a web address (a KB page),
    else None (a file name means nothing in the other system)."""
    if external_ref and external_ref.strip().lower().startswith(("http://", "https://")):
        return external_ref.strip()
    return None


# --- write-backs -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WritebackReport:
    """One drain: notes written, attempts that failed, and write-backs still due afterwards (pending, or
    failed with automatic attempts left: a later drain tries them once :data:`CLAIM_LEASE` has passed)."""

    written: int
    failed: int
    pending: int

    def headline(self) -> str:
        return f"write-backs: {self.written} written, {self.failed} failed, {self.pending} waiting"


@dataclass(frozen=True, slots=True)
class _Job:
    writeback_id: int
    config_id: int | None
    note: WorkNote


def _due_ids(session: TenantSession, limit: int) -> list[int]:
    cutoff = _now() - CLAIM_LEASE
    return list(
        session.scalars(
            select(TicketWriteback.id)
            .where(
                due_condition(),
                or_(TicketWriteback.last_attempt_at.is_(None), TicketWriteback.last_attempt_at < cutoff),
            )
            .order_by(TicketWriteback.attempts, TicketWriteback.approved_at, TicketWriteback.id)
            .limit(limit)
        )
    )


def _claim(sessions: sessionmaker[TenantSession], limit: int) -> list[_Job]:
    """Claim up to ``limit`` due rows for this drain (module docstring) and read what each note needs."""
    jobs: list[_Job] = []
    now = _now()
    cutoff = now - CLAIM_LEASE
    with sessions.begin() as session:
        for writeback_id in _due_ids(session, limit):
            claimed = session.execute(
                update(TicketWriteback)
                .where(
                    TicketWriteback.id == writeback_id,
                    due_condition(),
                    or_(TicketWriteback.last_attempt_at.is_(None), TicketWriteback.last_attempt_at < cutoff),
                )
                .values(last_attempt_at=now)
                .execution_options(synchronize_session=False)
            )
            if getattr(claimed, "rowcount", 0) != 1:
                continue  # another drain took it between the select and here
            row = session.get(TicketWriteback, writeback_id)
            ticket = session.get(Ticket, row.ticket_id) if row is not None else None
            runbook = session.get(Runbook, row.runbook_id) if row is not None else None
            if row is None or ticket is None or runbook is None:
                continue
            jobs.append(
                _Job(
                    writeback_id,
                    row.connector_config_id,
                    WorkNote(
                        ticket_external_id=ticket.external_id,
                        ticket_payload=dict(ticket.raw_payload or {}),
                        runbook_title=runbook.title,
                        runbook_url=runbook_url(runbook.external_ref),
                        confidence=row.confidence,
                        approved_by=row.approved_by,
                    ),
                )
            )
    return jobs


def _record(
    sessions: sessionmaker[TenantSession],
    writeback_id: int,
    actor: str,
    *,
    remote_id: str | None = None,
    error: str | None = None,
) -> None:
    """Store one attempt's outcome (written when ``error`` is None) and audit it."""
    now = _now()
    with sessions.begin() as session:
        row = session.get(TicketWriteback, writeback_id)
        if row is None:  # cancelled (the approval undone) while the note was on its way
            log.info("write-back %s vanished during its post; outcome not stored", writeback_id)
            return
        row.attempts += 1
        row.last_attempt_at = now
        if error is None:
            row.status = WritebackStatus.WRITTEN
            row.written_at = now
            row.remote_id = remote_id
            row.last_error = None
        else:
            row.status = WritebackStatus.FAILED
            row.last_error = redacted_excerpt(error)
        session.flush()
        record_audit(
            session,
            actor=actor,
            action="writeback.written" if error is None else "writeback.failed",
            entity_type=WRITEBACK_ENTITY,
            entity_id=row.id,
            after={
                "ticket_id": row.ticket_id,
                "runbook_id": row.runbook_id,
                "connector_config_id": row.connector_config_id,
                "attempts": row.attempts,
                "remote_id": row.remote_id,
                "error": row.last_error,
                "gave_up": error is not None and row.attempts >= MAX_ATTEMPTS,
            },
        )


def _config(sessions: sessionmaker[TenantSession], config_id: int | None) -> tuple[ConfigRow | None, bool]:
    """The config row and whether its ``write_back`` option is (still) on."""
    if config_id is None:
        return None, False
    with sessions() as session:
        config = session.get(ConnectorConfig, config_id)
        return (config_row(config), write_back_enabled(config)) if config is not None else (None, False)


def _pending(sessions: sessionmaker[TenantSession]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count(TicketWriteback.id)).where(due_condition())) or 0)


async def drain_writebacks(
    sessions: sessionmaker[TenantSession],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Sleep = asyncio.sleep,
    limit: int = 50,
    actor: str = "runbook-desk",
    progress: Progress = NO_PROGRESS,
    transport_factory: TransportFactory | None = None,
) -> WritebackReport:
    """Post up to ``limit`` due write-backs, one connector per config; a connector's error never raises (it
    becomes the row's ``last_error``). ``progress`` hears each post and may cancel between two: the rows not
    posted yet are released for the next drain and :class:`~core.errors.OperationCancelledError` raised.

    ``actor`` is whom the audit rows credit with the posting (the approving analyst is named in the note).
    ``transport_factory`` picks a transport per connector (the desktop's test seam); ``transport`` is one
    for all.
    """
    jobs = _claim(sessions, limit)
    unfinished = {job.writeback_id for job in jobs}
    counts = {"written": 0, "failed": 0}

    def record(job: _Job, *, remote_id: str | None = None, error: str | None = None) -> None:
        _record(sessions, job.writeback_id, actor, remote_id=remote_id, error=error)
        counts["failed" if error is not None else "written"] += 1
        unfinished.discard(job.writeback_id)

    by_config: dict[int | None, list[_Job]] = {}
    for job in jobs:
        by_config.setdefault(job.config_id, []).append(job)
    try:
        for config_id, config_jobs in by_config.items():
            await _post_all(
                sessions,
                config_id,
                config_jobs,
                record,
                transport,
                transport_factory,
                sleep,
                progress,
                lambda: len(jobs) - len(unfinished),
                len(jobs),
            )
    except BaseException:  # cancelled (or a bug): what was not posted goes back to the queue unclaimed
        _release(sessions, unfinished)
        raise
    progress.report(len(jobs), len(jobs), "")
    return WritebackReport(counts["written"], counts["failed"], _pending(sessions))


async def _post_all(
    sessions: sessionmaker[TenantSession],
    config_id: int | None,
    jobs: Sequence[_Job],
    record: Callable[..., None],
    transport: httpx.AsyncBaseTransport | None,
    transport_factory: TransportFactory | None,
    sleep: Sleep,
    progress: Progress,
    done: Callable[[], int],
    total: int,
) -> None:
    """Post one config's notes through one connector (one login, one client)."""
    config, enabled = _config(sessions, config_id)
    if config is None or not enabled:
        reason = (
            "the connector was removed"
            if config is None
            else f"write-back is turned off for the connector {config.name}"
        )
        for job in jobs:
            record(job, error=reason)
        return
    try:
        settings = settings_for(config)
        if transport is None and transport_factory is not None:
            transport = transport_factory(settings)
        connector = connector_class(config.connector_type).create(settings, transport=transport, sleep=sleep)
    except ConnectorError as exc:  # settings or keychain: no note of this config can be posted
        for job in jobs:
            record(job, error=str(exc))
        return
    try:
        for job in jobs:
            raise_if_cancelled(progress, "posting write-backs")
            progress.report(done(), total, f"{config.name}: posting to {job.note.ticket_external_id}")
            try:
                remote_id = await connector.add_work_note(job.note)
            except ConnectorError as exc:
                record(job, error=str(exc))
            else:
                record(job, remote_id=remote_id)
    finally:
        await _close(connector)


def _release(sessions: sessionmaker[TenantSession], writeback_ids: Collection[int]) -> None:
    if not writeback_ids:
        return
    with sessions.begin() as session:
        session.execute(
            update(TicketWriteback)
            .where(TicketWriteback.id.in_(list(writeback_ids)))
            .values(last_attempt_at=None)
            .execution_options(synchronize_session=False)
        )


async def _close(connector: Connector) -> None:
    try:
        await connector.close()
    except ConnectorError as exc:  # a failed logout must not undo notes already posted
        log.info("%s: closing the session failed: %s", connector.name, exc)


# --- incident creation -----------------------------------------------------------------------------------


class IncidentCreationInProgressError(RunbookDeskError):
    """Another call is creating this incident's ticket right now (its claim is younger than the TTL)."""


class IncidentNotFoundError(RunbookDeskError):
    pass


def correlation_id(tenant_slug: str, incident_id: int) -> str:
    """The id a ticketing system can find our incident by (NewIncident docstring): stable per incident."""
    return f"runbook-desk:{tenant_slug}:{incident_id}"


@dataclass(frozen=True, slots=True)
class _Suggestion:
    title: str
    url: str | None
    confidence: float | None


def _suggestion(session: TenantSession, ticket_id: int | None) -> _Suggestion | None:
    """The runbook to name in the new ticket: the one an analyst approved for the incident, else the latest
    analysis's best match with its calibrated confidence."""
    if ticket_id is None:
        return None
    approved = session.execute(
        select(Runbook, TicketRunbookLink.confidence_score)
        .join(TicketRunbookLink, TicketRunbookLink.runbook_id == Runbook.id)
        .where(
            TicketRunbookLink.ticket_id == ticket_id,
            TicketRunbookLink.decision == LinkDecision.LINKED,
            TicketRunbookLink.reviewed_at.is_not(None),
        )
        .order_by(TicketRunbookLink.reviewed_at.desc())
        .limit(1)
    ).first()
    if approved is not None:
        runbook, confidence = approved
        return _Suggestion(runbook.title, runbook_url(runbook.external_ref), confidence)
    latest = latest_analysis([ticket_id])
    best = session.execute(
        select(Runbook, Analysis.confidence)
        .join(Analysis, Analysis.best_runbook_id == Runbook.id)
        .join(latest, latest.c.analysis_id == Analysis.id)
    ).first()
    if best is None:
        return None
    runbook, confidence = best
    return _Suggestion(runbook.title, runbook_url(runbook.external_ref), confidence)


def _alert_line(alert: MonitoringAlert) -> str:
    where = ", ".join(part for part in (alert.host, alert.service) if part)
    seen = f"first seen {alert.first_seen:%Y-%m-%d %H:%M} UTC"
    if alert.occurrence_count > 1:
        seen += f", {alert.occurrence_count} occurrences, last {alert.last_seen:%Y-%m-%d %H:%M} UTC"
    head = f"- [{alert.severity}] {alert.title}" + (f" ({where})" if where else "")
    lines = [f"{head}: {seen}; {AlertStatus(alert.status).value}"]
    if alert.message.strip():
        lines.append(f"  {alert.message.strip()}")
    if alert.source_url:
        lines.append(f"  {alert.source_url}")
    return "\n".join(lines)


def new_incident(session: TenantSession, incident: MonitoringIncident) -> NewIncident:
    """What to create for ``incident``: its title, its alerts (raw text, worst first) and the suggested
    runbook with its confidence, under the incident's stable correlation id."""
    alerts = list(
        session.scalars(
            select(MonitoringAlert)
            .where(MonitoringAlert.incident_id == incident.id)
            .order_by(MonitoringAlert.first_seen, MonitoringAlert.id)
        )
    )
    suggestion = _suggestion(session, incident.ticket_id)
    parts = [f"Monitoring incident opened {incident.opened_at:%Y-%m-%d %H:%M} UTC by Runbook Desk."]
    if incident.hosts:
        parts.append(f"Hosts: {', '.join(incident.hosts)}")
    if incident.services:
        parts.append(f"Services: {', '.join(incident.services)}")
    parts.append(f"\nAlerts ({len(alerts)}):")
    parts.extend(_alert_line(alert) for alert in alerts[:MAX_ALERTS_IN_DESCRIPTION])
    if len(alerts) > MAX_ALERTS_IN_DESCRIPTION:
        parts.append(f"... and {len(alerts) - MAX_ALERTS_IN_DESCRIPTION} more")
    if suggestion is not None:
        confidence = f" (confidence {suggestion.confidence:.0%})" if suggestion.confidence is not None else ""
        parts.append(f"\nSuggested runbook: {suggestion.title}{confidence}")
        if suggestion.url:
            parts.append(suggestion.url)
    return NewIncident(
        correlation_id=correlation_id(session.tenant_slug, incident.id),
        title=incident.title,
        description="\n".join(parts),
        severity=incident.severity,
        configuration_item=incident.hosts[0] if incident.hosts else None,
        runbook_title=suggestion.title if suggestion else None,
        runbook_url=suggestion.url if suggestion else None,
    )


def _stored(incident: MonitoringIncident) -> CreatedTicket | None:
    """The ticket created before; the store keeps its number, not the system's internal id, so the number
    stands in for ``external_id``."""
    if incident.created_number is None:
        return None
    return CreatedTicket(
        number=incident.created_number,
        external_id=incident.created_number,
        url=incident.created_url,
        existed=True,
    )


async def create_incident_ticket(
    sessions: sessionmaker[TenantSession],
    incident_id: int,
    config_id: int,
    *,
    actor: str,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Sleep = asyncio.sleep,
) -> CreatedTicket:
    """Create the incident's ticket through the config's connector, once (module docstring).

    Returns the stored ticket with ``existed=True`` when one was created before. A connector error
    releases the claim and propagates, auditing nothing.
    """
    now = _now()
    with sessions.begin() as session:
        incident = session.get(MonitoringIncident, incident_id)
        if incident is None:
            raise IncidentNotFoundError(f"monitoring incident {incident_id} does not exist in this tenant")
        stored = _stored(incident)
        if stored is not None:
            return stored
        if (
            incident.created_config_id is not None
            and incident.created_at is not None
            and now - incident.created_at < CREATE_CLAIM_TTL
        ):
            raise IncidentCreationInProgressError(
                f"{incident.created_by or 'someone'} is creating the ticket of incident {incident_id} "
                f"(started {incident.created_at:%H:%M:%S} UTC); try again in a minute"
            )
        config = session.get(ConnectorConfig, config_id)
        if config is None:
            raise ConfigurationError(f"connector #{config_id}", "no such connector config")
        row = config_row(config)
        incident.created_config_id = config_id
        incident.created_by = actor
        incident.created_at = now  # the claim's time until the number is stored
        request = new_incident(session, incident)
    try:
        created = await _create(row, request, transport, sleep)
    except BaseException:
        _release_claim(sessions, incident_id, now)
        raise
    with sessions.begin() as session:
        incident = session.get(MonitoringIncident, incident_id)
        if incident is None:  # deleted while the POST ran: the ticket exists over there; say so in the log
            log.warning("incident %s vanished while its ticket %s was created", incident_id, created.number)
            return created
        incident.created_number = created.number
        incident.created_url = created.url
        incident.created_config_id = config_id
        incident.created_by = actor
        incident.created_at = _now()
        record_audit(
            session,
            actor=actor,
            action="incident.ticket_created",
            entity_type=INCIDENT_ENTITY,
            entity_id=incident_id,
            after={
                "connector_config_id": config_id,
                "connector": row.name,
                "number": created.number,
                "external_id": created.external_id,
                "url": created.url,
                "found_existing": created.existed,
                "correlation_id": request.correlation_id,
            },
        )
    return created


async def _create(
    config: ConfigRow, request: NewIncident, transport: httpx.AsyncBaseTransport | None, sleep: Sleep
) -> CreatedTicket:
    connector = connector_class(config.connector_type).create(
        settings_for(config), transport=transport, sleep=sleep
    )
    try:
        return await connector.create_incident(request)
    finally:
        await _close(connector)


def _release_claim(sessions: sessionmaker[TenantSession], incident_id: int, claimed_at: datetime) -> None:
    """Undo this call's claim (only if it is still this call's and no number was stored)."""
    with sessions.begin() as session:
        session.execute(
            update(MonitoringIncident)
            .where(
                MonitoringIncident.id == incident_id,
                MonitoringIncident.created_number.is_(None),
                MonitoringIncident.created_at == claimed_at,
            )
            .values(created_config_id=None, created_by=None, created_at=None)
            .execution_options(synchronize_session=False)
        )


__all__ = [
    "CLAIM_LEASE",
    "CREATE_CLAIM_TTL",
    "IncidentCreationInProgressError",
    "IncidentNotFoundError",
    "WritebackReport",
    "correlation_id",
    "create_incident_ticket",
    "drain_writebacks",
    "new_incident",
    "runbook_url",
]
