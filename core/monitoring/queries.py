"""What the Alerts page, the notifier and the CLI read of monitoring: immutable rows, never live ORM objects.

An :class:`IncidentRow` carries its alerts and the suggestion of its ticket's latest analysis (the runbook,
its calibrated confidence and the decision), or the runbook an analyst linked, which wins over it.

``changes`` says what happened since a time (the page passes its previous refresh, i.e. the last sync):
"new" (the incident's ticket row appeared after it), "+N alerts" (alerts first seen after it), "escalated to
critical" (the incident's worst severity is above the worst of the alerts it had by then) and "resolved".
The alert rows keep their current state only, so an alert that itself went from warning to critical on a
repeat is not told apart from one that was critical all along: the escalation is counted from alerts joining.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select

from core.monitoring.correlation import ordered_alerts
from core.monitoring.events import Severity, severity_rank
from core.monitoring.settings import MonitoringSettings
from core.settings import load_settings, save_settings
from core.store.models import (
    Analysis,
    AnalysisDecision,
    IncidentStatus,
    LinkDecision,
    MonitoringAlert,
    MonitoringEvent,
    MonitoringIncident,
    Runbook,
    Ticket,
    TicketRunbookLink,
    utcnow,
)
from core.store.tenancy import TenantSession

__all__ = [
    "AlertRow",
    "Compression",
    "IncidentRow",
    "MonitoringSettings",
    "compression",
    "incident",
    "incidents_to_notify",
    "list_incidents",
    "mark_notified",
    "monitoring_settings",
    "save_monitoring_settings",
]


@dataclass(frozen=True)
class AlertRow:
    id: int
    source_system: str
    title: str
    message: str
    expression: str | None
    severity: str
    status: str
    host: str | None
    service: str | None
    tags: tuple[str, ...]
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
    occurrence_count: int
    source_url: str | None


@dataclass(frozen=True)
class IncidentRow:
    id: int
    ticket_id: int | None
    title: str
    severity: str
    status: str
    hosts: tuple[str, ...]
    services: tuple[str, ...]
    opened_at: datetime
    last_alert_at: datetime
    resolved_at: datetime | None
    alerts: tuple[AlertRow, ...]
    runbook_id: int | None
    runbook_title: str | None
    confidence: float | None
    decision: AnalysisDecision | None
    created_number: str | None
    created_url: str | None
    created_config_id: int | None
    changes: tuple[str, ...]


@dataclass(frozen=True)
class Compression:
    """Events in, alerts kept (deduplication), incidents made (correlation); ``ratio`` = events / alerts."""

    events: int
    alerts: int
    incidents: int
    ratio: float


@dataclass(frozen=True)
class _Suggestion:
    runbook_id: int | None
    runbook_title: str | None
    confidence: float | None
    decision: AnalysisDecision | None


_NO_SUGGESTION = _Suggestion(None, None, None, None)

# Worst first in SQL: an unknown severity string sorts last.
_SEVERITY_ORDER = case(
    {severity.value: -severity.rank for severity in Severity}, value=MonitoringIncident.severity, else_=1
)
_OPEN_FIRST = case((MonitoringIncident.status == IncidentStatus.OPEN, 0), else_=1)


def list_incidents(
    session: TenantSession,
    *,
    include_resolved: bool = False,
    since: datetime | None = None,
    limit: int = 500,
) -> list[IncidentRow]:
    """Incidents, open first, worst severity first, most recent alert first; ``since``: see ``changes``."""
    query = select(MonitoringIncident).order_by(
        _OPEN_FIRST, _SEVERITY_ORDER, MonitoringIncident.last_alert_at.desc(), MonitoringIncident.id.desc()
    )
    if not include_resolved:
        query = query.where(MonitoringIncident.status == IncidentStatus.OPEN)
    return _rows(session, list(session.scalars(query.limit(limit))), since)


def incident(
    session: TenantSession, incident_id: int, *, since: datetime | None = None
) -> IncidentRow | None:
    found = session.get(MonitoringIncident, incident_id)
    return None if found is None else _rows(session, [found], since)[0]


def incidents_to_notify(session: TenantSession) -> list[IncidentRow]:
    """Open critical incidents whose runbook the analysis would link, not notified yet (sent once)."""
    candidates = list(
        session.scalars(
            select(MonitoringIncident)
            .where(
                MonitoringIncident.status == IncidentStatus.OPEN,
                MonitoringIncident.severity == Severity.CRITICAL.value,
                MonitoringIncident.notified_at.is_(None),
                MonitoringIncident.ticket_id.is_not(None),
            )
            .order_by(MonitoringIncident.opened_at, MonitoringIncident.id)
        )
    )
    return [row for row in _rows(session, candidates, None) if row.decision is AnalysisDecision.LINK_RUNBOOK]


def mark_notified(session: TenantSession, incident_ids: Collection[int]) -> None:
    """Record that the desktop notification of these incidents was shown (the caller commits)."""
    now = utcnow()
    for found in session.scalars(select(MonitoringIncident).where(MonitoringIncident.id.in_(incident_ids))):
        found.notified_at = now


def compression(session: TenantSession) -> Compression:
    """The deduplication and correlation figures AIOps products publish (events in / alerts kept)."""
    events = session.scalar(select(func.count()).select_from(MonitoringEvent)) or 0
    alerts = session.scalar(select(func.count()).select_from(MonitoringAlert)) or 0
    incidents = session.scalar(select(func.count()).select_from(MonitoringIncident)) or 0
    return Compression(events, alerts, incidents, events / alerts if alerts else 0.0)


def monitoring_settings(session: TenantSession) -> MonitoringSettings:
    return load_settings(session, MonitoringSettings)


def save_monitoring_settings(session: TenantSession, settings: MonitoringSettings, actor: str) -> None:
    """Store the tenant's monitoring settings, audited (``settings.monitoring``, before and after)."""
    save_settings(session, settings, actor=actor)


# --- Building rows ------------------------------------------------------------------------------------------


def _rows(
    session: TenantSession, incidents: Sequence[MonitoringIncident], since: datetime | None
) -> list[IncidentRow]:
    ids = [found.id for found in incidents]
    alerts: dict[int, list[MonitoringAlert]] = {incident_id: [] for incident_id in ids}
    for alert in session.scalars(select(MonitoringAlert).where(MonitoringAlert.incident_id.in_(ids))):
        alerts[alert.incident_id or 0].append(alert)
    ticket_ids = [found.ticket_id for found in incidents if found.ticket_id is not None]
    suggestions = _suggestions(session, ticket_ids)
    ingested = dict(
        session.execute(select(Ticket.id, Ticket.ingested_at).where(Ticket.id.in_(ticket_ids))).all()
    )
    # When each alert first reached us (its oldest stored event): "what changed since the last sync" compares
    # our own clock with our own clock, never a source's event time with the sync's start.
    arrived: dict[int, datetime] = (
        dict(
            session.execute(
                select(MonitoringEvent.alert_id, func.min(MonitoringEvent.ingested_at))
                .where(MonitoringEvent.alert_id.in_([a.id for members in alerts.values() for a in members]))
                .group_by(MonitoringEvent.alert_id)
            ).all()
        )
        if since is not None
        else {}
    )
    rows = []
    for found in incidents:
        members = ordered_alerts(alerts[found.id])
        suggestion = suggestions.get(found.ticket_id, _NO_SUGGESTION) if found.ticket_id else _NO_SUGGESTION
        rows.append(
            IncidentRow(
                id=found.id,
                ticket_id=found.ticket_id,
                title=found.title,
                severity=found.severity,
                status=found.status.value,
                hosts=tuple(found.hosts),
                services=tuple(found.services),
                opened_at=found.opened_at,
                last_alert_at=found.last_alert_at,
                resolved_at=found.resolved_at,
                alerts=tuple(_alert_row(alert) for alert in members),
                runbook_id=suggestion.runbook_id,
                runbook_title=suggestion.runbook_title,
                confidence=suggestion.confidence,
                decision=suggestion.decision,
                created_number=found.created_number,
                created_url=found.created_url,
                created_config_id=found.created_config_id,
                changes=()
                if since is None
                else _changes(
                    found,
                    members,
                    since,
                    ingested.get(found.ticket_id) if found.ticket_id else None,
                    arrived,
                ),
            )
        )
    return rows


def _alert_row(alert: MonitoringAlert) -> AlertRow:
    return AlertRow(
        id=alert.id,
        source_system=alert.source_system,
        title=alert.title,
        message=alert.message,
        expression=alert.expression,
        severity=alert.severity,
        status=alert.status.value,
        host=alert.host,
        service=alert.service,
        tags=tuple(alert.tags),
        first_seen=alert.first_seen,
        last_seen=alert.last_seen,
        resolved_at=alert.resolved_at,
        occurrence_count=alert.occurrence_count,
        source_url=alert.source_url,
    )


def _suggestions(session: TenantSession, ticket_ids: Sequence[int]) -> dict[int, _Suggestion]:
    """Per ticket: the runbook an analyst linked, else its latest analysis's best runbook."""
    if not ticket_ids:
        return {}
    latest = (
        select(func.max(Analysis.id)).where(Analysis.ticket_id.in_(ticket_ids)).group_by(Analysis.ticket_id)
    )
    out: dict[int, _Suggestion] = {}
    for ticket_id, decision, confidence, runbook_id, title in session.execute(
        select(
            Analysis.ticket_id,
            Analysis.decision,
            Analysis.confidence,
            Analysis.best_runbook_id,
            Runbook.title,
        )
        .outerjoin(Runbook, Runbook.id == Analysis.best_runbook_id)
        .where(Analysis.id.in_(latest))
    ):
        out[ticket_id] = _Suggestion(runbook_id, title, confidence, decision)
    for ticket_id, linked_id, linked_title, link_confidence in session.execute(
        select(
            TicketRunbookLink.ticket_id,
            TicketRunbookLink.runbook_id,
            Runbook.title,
            TicketRunbookLink.confidence_score,
        )
        .join(Runbook, Runbook.id == TicketRunbookLink.runbook_id)
        .where(
            TicketRunbookLink.ticket_id.in_(ticket_ids),
            TicketRunbookLink.decision == LinkDecision.LINKED,
            TicketRunbookLink.reviewed_by.is_not(None),
        )
        .order_by(TicketRunbookLink.reviewed_at)
    ):
        previous = out.get(ticket_id, _NO_SUGGESTION)
        out[ticket_id] = _Suggestion(linked_id, linked_title, link_confidence, previous.decision)
    return out


def _changes(
    found: MonitoringIncident,
    alerts: Sequence[MonitoringAlert],
    since: datetime,
    ingested_at: datetime | None,
    arrived: Mapping[int, datetime],
) -> tuple[str, ...]:
    """What changed since ``since`` (our clock: the last monitoring sync's start), read from when rows reached
    us: the incident's ticket (new), its alerts' first events (joined, escalated), its row (resolved)."""
    if ingested_at is not None and ingested_at > since:
        changes = ["new"]
    else:
        changes = []
        joined = sum(1 for alert in alerts if arrived.get(alert.id, since) > since)
        if joined:
            changes.append(f"+{joined} alert{'s' if joined > 1 else ''}")
        before = [alert for alert in alerts if arrived.get(alert.id, since) <= since]
        if before and severity_rank(found.severity) > max(severity_rank(a.severity) for a in before):
            changes.append(f"escalated to {found.severity}")
    if found.status is IncidentStatus.RESOLVED and found.row_updated_at > since:
        changes.append("resolved")
    return tuple(changes)
