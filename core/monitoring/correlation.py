"""Correlating deduplicated alerts into incidents: one problem on one host or service, one incident.

Rules (issue 13: "alerts on the same host/CI or service within a window group into one incident"):

- An alert without an incident joins an **open** incident that shares its host/CI (case-insensitive) or its
  service and whose time span comes within the window of the alert's (the alert fired no more than
  ``window`` after the incident's last alert, nor more than ``window`` before its first). With several
  such incidents it joins the one opened first (then the lowest id); otherwise it opens a new incident.
  Incidents are never merged: an incident's id (and the ticket ``MON-<id>`` through which it is matched
  and perhaps created in a ticketing system) stays stable.
- An incident takes no new alert once it is ``max_incident_hours`` old (default 24, a tenant setting): a
  service that never stops alerting gets one incident a day, not one for ever.
- Only open incidents whose ``last_alert_at`` is within the window are candidates, fetched once per call
  with a range filter on (status, last_alert_at, opened_at) over the alerts' time span, so the work is
  bounded by how many incidents are open in that span, never by history.
- An incident is resolved when all its alerts are resolved (``resolved_at`` = the last resolution) and
  open again as soon as one of them is not.
- **Re-trigger after resolution.** The alert row is one per fingerprint, so its re-firing is the same row
  triggered again. Within the window after its incident's resolution it reopens that incident (a flap is
  one problem); later it leaves it and is correlated afresh like a new alert (a new incident, or another
  open one on its host/service). The old incident keeps what it had showed (title, times) and stays
  resolved; an incident left with no alert at all is not recomputed.
- Determinism: the alerts of one call are handled in the order (first seen, fingerprint), not in the order
  the page delivered them, so shuffling a page cannot change the grouping.

Every incident touched gets its ticket row (kind ``alert``, source ``monitoring``) upserted by
:func:`core.monitoring.incidents.sync_incident_tickets`, so :func:`core.matching.analysis.analyze_pending`
matches a new or changed incident like any ticket, within the same sync.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select

from core.monitoring.events import severity_rank
from core.monitoring.incidents import sync_incident_tickets
from core.monitoring.settings import MonitoringSettings
from core.settings import load_settings
from core.store.models import AlertStatus, IncidentStatus, MonitoringAlert, MonitoringIncident
from core.store.tenancy import TenantSession


def correlate(
    session: TenantSession,
    alert_ids: Collection[int],
    *,
    window: timedelta | None = None,
    max_span: timedelta | None = None,
) -> set[int]:
    """Put ``alert_ids`` into incidents (module docstring); the ids of the incidents created or changed.

    ``window`` None: the tenant's ``correlation_window_minutes`` (default 10); ``max_span`` None: its
    ``max_incident_hours`` (default 24). The caller owns the transaction (the sync page's).
    """
    if not alert_ids:
        return set()
    settings = load_settings(session, MonitoringSettings)
    window = settings.window if window is None else window
    max_span = settings.max_span if max_span is None else max_span
    alerts = sorted(
        session.scalars(select(MonitoringAlert).where(MonitoringAlert.id.in_(alert_ids))),
        key=lambda a: (a.first_seen, a.fingerprint),
    )
    # The open incidents any of these alerts could join, read once (the alerts' time span plus the window);
    # incidents opened below are added to it.
    nearby = list(
        session.scalars(
            select(MonitoringIncident).where(
                MonitoringIncident.status == IncidentStatus.OPEN,
                MonitoringIncident.last_alert_at >= min(a.first_seen for a in alerts) - window,
                MonitoringIncident.opened_at <= max(a.last_seen for a in alerts) + window,
            )
        )
    )
    touched: dict[int, MonitoringIncident] = {}
    for alert in alerts:
        left = alert.incident_id
        incident = _current_incident(session, alert, window)
        if incident is None and left is not None:
            # Re-triggered long after its incident was resolved: that incident loses the alert.
            previous = session.get(MonitoringIncident, left)
            if previous is not None:
                touched[previous.id] = previous
        if incident is None:
            incident = _candidate(nearby, alert, window, max_span)
            if incident is None:
                incident = _open_incident(session, alert)
                nearby.append(incident)
            alert.incident_id = incident.id
        _absorb(incident, alert)
        if incident not in nearby:  # reopened by a re-trigger: the next alerts may join it too
            nearby.append(incident)
        touched[incident.id] = incident
    session.flush()
    members: dict[int, list[MonitoringAlert]] = {incident_id: [] for incident_id in touched}
    for member in session.scalars(select(MonitoringAlert).where(MonitoringAlert.incident_id.in_(touched))):
        members[member.incident_id or 0].append(member)
    summarised = []
    for incident_id, incident in touched.items():
        if members[incident_id]:  # an incident left with no alert keeps what it showed
            summarise(incident, members[incident_id])
            summarised.append((incident, ordered_alerts(members[incident_id])))
    session.flush()
    sync_incident_tickets(session, summarised)
    return set(touched)


def _current_incident(
    session: TenantSession, alert: MonitoringAlert, window: timedelta
) -> MonitoringIncident | None:
    """The incident the alert stays in: its own, unless it re-triggered longer than ``window`` after that
    incident was resolved (then None: it is correlated afresh)."""
    if alert.incident_id is None:
        return None
    incident = session.get(MonitoringIncident, alert.incident_id)
    if incident is None:
        return None
    retriggered_late = (
        incident.status is IncidentStatus.RESOLVED
        and alert.status is not AlertStatus.RESOLVED
        and incident.resolved_at is not None
        and alert.last_seen - incident.resolved_at > window
    )
    if retriggered_late:
        alert.incident_id = None
        return None
    return incident


def _candidate(
    nearby: Sequence[MonitoringIncident], alert: MonitoringAlert, window: timedelta, max_span: timedelta
) -> MonitoringIncident | None:
    """The open incident this alert joins: same host or service, time spans within ``window``, opened no
    longer than ``max_span`` before the alert (a service that never stops alerting would otherwise make one
    incident of a week); the one opened first (then the lowest id) when several qualify."""
    host = (alert.host or "").casefold()
    service = (alert.service or "").casefold()
    if not host and not service:
        return None
    matching = [
        incident
        for incident in nearby
        if incident.status is IncidentStatus.OPEN
        and incident.last_alert_at >= alert.first_seen - window
        and incident.opened_at <= alert.last_seen + window
        and incident.opened_at >= alert.first_seen - max_span
        and (
            (host and host in _folded(incident.hosts)) or (service and service in _folded(incident.services))
        )
    ]
    return min(matching, key=lambda incident: (incident.opened_at, incident.id), default=None)


def _folded(names: Iterable[str]) -> set[str]:
    return {name.casefold() for name in names}


def _open_incident(session: TenantSession, alert: MonitoringAlert) -> MonitoringIncident:
    incident = MonitoringIncident(
        tenant_id=session.tenant_id,
        title=alert.title,
        severity=alert.severity,
        status=IncidentStatus.OPEN,
        hosts=[],
        services=[],
        opened_at=alert.first_seen,
        last_alert_at=alert.last_seen,
    )
    session.add(incident)
    session.flush()
    return incident


def _absorb(incident: MonitoringIncident, alert: MonitoringAlert) -> None:
    """Widen the incident by one alert at once, so the next alert of this call sees its host and times."""
    if alert.host and alert.host.casefold() not in _folded(incident.hosts):
        incident.hosts = [*incident.hosts, alert.host]
    if alert.service and alert.service.casefold() not in _folded(incident.services):
        incident.services = [*incident.services, alert.service]
    incident.opened_at = min(incident.opened_at, alert.first_seen)
    incident.last_alert_at = max(incident.last_alert_at, alert.last_seen)
    if alert.status is not AlertStatus.RESOLVED:
        incident.status = IncidentStatus.OPEN
        incident.resolved_at = None


def ordered_alerts(alerts: Iterable[MonitoringAlert]) -> list[MonitoringAlert]:
    """An incident's alerts in the order they fired (first seen, then fingerprint): how they are shown."""
    return sorted(alerts, key=lambda a: (a.first_seen, a.fingerprint))


def worst_alert(alerts: Sequence[MonitoringAlert]) -> MonitoringAlert:
    """The alert that names the incident: the worst severity, the first to fire among those."""
    return min(ordered_alerts(alerts), key=lambda a: -severity_rank(a.severity))


def summarise(incident: MonitoringIncident, alerts: Sequence[MonitoringAlert]) -> None:
    """Recompute the incident's summary from all its alerts (the rules of the module docstring)."""
    ordered = ordered_alerts(alerts)
    worst = worst_alert(ordered)
    incident.severity = worst.severity
    incident.hosts = _unique(a.host for a in ordered)
    incident.services = _unique(a.service for a in ordered)
    incident.opened_at = ordered[0].first_seen
    incident.last_alert_at = max(a.last_seen for a in ordered)
    if all(a.status is AlertStatus.RESOLVED for a in ordered):
        incident.status = IncidentStatus.RESOLVED
        incident.resolved_at = max(_resolution(a) for a in ordered)
    else:
        incident.status = IncidentStatus.OPEN
        incident.resolved_at = None
    incident.title = incident_title(worst, len(ordered))[:1000]


def _resolution(alert: MonitoringAlert) -> datetime:
    return alert.resolved_at or alert.last_seen


def _unique(names: Iterable[str | None]) -> list[str]:
    seen: dict[str, str] = {}
    for name in names:
        if name and name.casefold() not in seen:
            seen[name.casefold()] = name
    return list(seen.values())


def incident_title(worst: MonitoringAlert, alert_count: int) -> str:
    """``[critical] db01: Disk full on /var (+2 alerts)``: severity, where, the worst alert, how many more."""
    where = worst.host or worst.service or worst.source_system
    more = alert_count - 1
    suffix = "" if more == 0 else f" (+{more} alert{'s' if more > 1 else ''})"
    return f"[{worst.severity}] {where}: {worst.title}{suffix}"
