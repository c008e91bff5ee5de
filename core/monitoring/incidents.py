"""The ticket row through which an incident is matched to runbooks, reviewed and counted.

An incident becomes a :class:`~core.store.models.Ticket` of kind ``alert``: source system ``monitoring``,
instance ``""``, external id ``MON-<incident id>``. Its description is each alert's raw text (title,
message, rule expression, tags) exactly as the monitoring system sent it: that is what the analyst reads.
What the matcher embeds is prepared from it separately (:mod:`core.monitoring.alert_text`).

The row is written through :func:`core.store.tickets.upsert_tickets`, so its content hash decides whether
:func:`core.matching.analysis.analyze_pending` re-analyses it: an incident that gained an alert, changed
severity, or resolved is matched again; a repeat of a known alert with the same text is not (the repeat
count and last-seen time are deliberately not part of the ticket's content, nor ``updated_at``: an alert
firing every minute must not re-run the matcher every minute).

No outcome inference runs on these rows (the sync does it only for the ticketing connectors' changes): an
alert that recovers on its own says nothing about whether the suggested runbook helped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from core.monitoring.events import severity_rank
from core.store.models import (
    UNKNOWN_INSTANCE,
    IncidentStatus,
    MonitoringAlert,
    MonitoringIncident,
    Ticket,
    TicketKind,
)
from core.store.tenancy import TenantSession
from core.store.tickets import MAX_TITLE, TicketValues, upsert_tickets

SOURCE_SYSTEM = "monitoring"
MAX_DESCRIBED_ALERTS = 50
INSTANCE = UNKNOWN_INSTANCE  # "": the incidents are this workspace's own, not an instance's


def external_id(incident_id: int) -> str:
    return f"MON-{incident_id}"


def alert_block(alert: MonitoringAlert) -> str:
    """One alert's raw text for the description: labelled lines, values unchanged.

    The labels (``Message:``, ``Expression:``, ``Tags:``) are what :mod:`core.monitoring.alert_text` reads
    to tell the rule expression from the human text.
    """
    where = ", ".join(
        part
        for part in (
            alert.source_system,
            alert.host and f"host {alert.host}",
            alert.service and f"service {alert.service}",
        )
        if part
    )
    lines = [f"[{alert.severity}] {alert.title} ({where})"]
    if alert.message.strip():
        lines.append(f"Message: {alert.message.strip()}")
    if alert.expression and alert.expression.strip():
        lines.append(f"Expression: {alert.expression.strip()}")
    if alert.tags:
        lines.append(f"Tags: {', '.join(alert.tags)}")
    return "\n".join(lines)


def incident_values(incident: MonitoringIncident, alerts: Sequence[MonitoringAlert]) -> TicketValues:
    """The ticket of one incident (``alerts`` in the order they fired; module docstring)."""
    resolved = incident.status is IncidentStatus.RESOLVED
    return TicketValues(
        external_id=external_id(incident.id),
        source_system=SOURCE_SYSTEM,
        title=incident.title[:MAX_TITLE],
        description=describe(alerts),
        status=incident.status.value,
        severity=incident.severity,
        assignee=None,
        kind=TicketKind.ALERT,
        category=incident.services[0] if incident.services else None,
        configuration_item=incident.hosts[0] if incident.hosts else None,
        resolution_notes=None,
        resolved_at=incident.resolved_at if resolved else None,
        created_at=incident.opened_at,
        updated_at=_last_change(incident, alerts),
        source_url=None,
        raw_payload={"incident_id": incident.id, "alert_ids": [alert.id for alert in alerts]},
    )


def describe(alerts: Sequence[MonitoringAlert]) -> str:
    """Each alert's block, in firing order; past :data:`MAX_DESCRIBED_ALERTS`, the worst ones and a count.

    A service-wide incident can gather hundreds of alerts; the ticket (and what the matcher reads of it,
    which stops after 256 word pieces anyway) keeps the ones that matter, the Alerts page lists them all.
    """
    shown = list(alerts)
    if len(shown) > MAX_DESCRIBED_ALERTS:
        rank = {id(alert): position for position, alert in enumerate(alerts)}
        worst = sorted(alerts, key=lambda a: (-severity_rank(a.severity), rank[id(a)]))[:MAX_DESCRIBED_ALERTS]
        shown = sorted(worst, key=lambda a: rank[id(a)])
    blocks = [alert_block(alert) for alert in shown]
    if len(alerts) > len(shown):
        blocks.append(f"(+{len(alerts) - len(shown)} more alerts)")
    return "\n\n".join(blocks)


def _last_change(incident: MonitoringIncident, alerts: Sequence[MonitoringAlert]) -> datetime:
    """When the incident last changed as a ticket: an alert joined, or it resolved (not every repeat)."""
    joined = max(alert.first_seen for alert in alerts)
    if incident.status is IncidentStatus.RESOLVED and incident.resolved_at is not None:
        return max(joined, incident.resolved_at)
    return joined


def sync_incident_tickets(
    session: TenantSession, incidents: Sequence[tuple[MonitoringIncident, Sequence[MonitoringAlert]]]
) -> None:
    """Upsert the tickets of ``incidents`` (each with its alerts) and link each incident to its ticket."""
    if not incidents:
        return
    upsert_tickets(
        session, [incident_values(incident, alerts) for incident, alerts in incidents], instance=INSTANCE
    )
    unlinked = {external_id(incident.id): incident for incident, _ in incidents if incident.ticket_id is None}
    if unlinked:
        for ticket_id, ticket_external_id in session.execute(
            select(Ticket.id, Ticket.external_id).where(
                Ticket.source_system == SOURCE_SYSTEM,
                Ticket.source_instance == INSTANCE,
                Ticket.external_id.in_(unlinked),
            )
        ):
            unlinked[ticket_external_id].ticket_id = ticket_id
