"""Storing a page of monitoring events: one row per event, deduplicated into one alert per fingerprint.

Called by the sync engine (:mod:`connectors.sync`) inside the page's transaction, so a page's events, the
alerts they change and the cursor after them commit together. The rules:

- an event is unique by (source system, instance, external id): re-reading it changes nothing unless its
  content changed (then it counts as updated), exactly like a ticket;
- a new *firing* event (``AlertEvent.firing``: not an acknowledgement or reset record) of a known
  fingerprint is a repeat: the alert's ``occurrence_count`` goes up, ``last_seen``
  moves to the event's time, and an alert that had been resolved triggers again when the repeat is newer
  than its resolution;
- an event whose state is RESOLVED (the problem recovered) resolves its alert, unless a newer firing of the
  same fingerprint came after it; an event with ``recovers`` resolves the alert of the event it names;
- an acknowledged event marks a triggered alert acknowledged;
- a separate recovery record (``recovers``) whose target event is stored is counted against the target's
  alert, not fingerprinted into an alert of its own.

The alerts touched are then correlated into incidents (:func:`core.monitoring.correlation.correlate`), in
the same transaction, so a page's incidents and their ticket rows commit with its events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select

from core.monitoring.correlation import correlate
from core.monitoring.events import AlertEvent
from core.store.models import AlertStatus, MonitoringAlert, MonitoringEvent
from core.store.sql import fit_to_column
from core.store.tenancy import TenantSession


@dataclass
class IngestResult:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    alerts_created: int = 0
    alert_ids: set[int] = field(default_factory=set)  # alerts created or changed by this page
    incident_ids: set[int] = field(default_factory=set)  # incidents they opened or changed (correlation)


def store_events(
    session: TenantSession,
    events: Sequence[AlertEvent],
    *,
    instance: str,
    connector_config_id: int | None,
) -> IngestResult:
    """Upsert ``events`` (oldest first) and apply them to their alerts; see the module docstring."""
    result = IngestResult()
    if not events:
        return result
    systems = {event.source_system for event in events}
    stored = {
        (row.source_system, row.external_id): row
        for row in session.scalars(
            select(MonitoringEvent).where(
                MonitoringEvent.source_system.in_(systems),
                MonitoringEvent.source_instance == instance,
                MonitoringEvent.external_id.in_({event.external_id for event in events}),
            )
        )
    }
    alerts = {
        alert.fingerprint: alert
        for alert in session.scalars(
            select(MonitoringAlert).where(
                MonitoringAlert.fingerprint.in_({event.fingerprint for event in events})
            )
        )
    }
    touched: list[MonitoringAlert] = []
    for event in events:
        digest = event.content_hash
        row = stored.get((event.source_system, event.external_id))
        if row is not None and row.content_hash == digest:
            result.unchanged += 1
            continue
        recovered = _recovered_alert(session, event, instance, stored) if event.recovers else None
        if recovered is not None:
            # A separate recovery record belongs to the alert it ends, whatever its own title says (a
            # Datadog "[Recovered] ..." title would otherwise fingerprint as a new, already resolved alert).
            alert = recovered
            _resolve(alert, event)
        else:
            known = alerts.get(event.fingerprint)
            if known is None:
                alert = _new_alert(session, event, instance, connector_config_id)
                alerts[event.fingerprint] = alert
                result.alerts_created += 1
            else:
                alert = known
            if (
                known is not None
                and row is None
                and event.firing
                and not (event.recovers or _is_recovery_of(alert, event))
            ):
                _repeat(alert, event)
            _apply_state(alert, event)
        if row is None:
            row = MonitoringEvent(
                tenant_id=session.tenant_id,
                connector_config_id=connector_config_id,
                source_system=event.source_system,
                source_instance=instance,
                external_id=event.external_id,
                fingerprint=alert.fingerprint,  # a recovery record's is its target's
                alert=alert,
            )
            session.add(row)
            stored[(event.source_system, event.external_id)] = row
            result.new += 1
        else:
            result.updated += 1
        row.title = event.title[:1000]
        row.status = event.status
        row.occurred_at = event.occurred_at
        row.source_updated_at = event.updated_at
        row.content_hash = digest
        touched.append(alert)
    session.flush()  # once per page: a flush per event was half the ingestion time (bench/monitoring.py)
    result.alert_ids = {alert.id for alert in touched}
    result.incident_ids = correlate(session, result.alert_ids)
    return result


def _new_alert(
    session: TenantSession, event: AlertEvent, instance: str, connector_config_id: int | None
) -> MonitoringAlert:
    alert = MonitoringAlert(
        tenant_id=session.tenant_id,
        connector_config_id=connector_config_id,
        source_system=event.source_system,
        source_instance=instance,
        external_id=event.external_id,
        monitor_id=event.monitor_id,
        fingerprint=event.fingerprint,
        title=event.title[:1000],
        message=event.message,
        expression=event.expression,
        severity=event.severity.value,
        status=event.status,
        # Descriptive text cut to its column (PostgreSQL refuses longer text; core.store.sql.fit_to_column).
        host=fit_to_column(MonitoringAlert.host, event.host),
        service=fit_to_column(MonitoringAlert.service, event.service),
        tags=list(event.tags),
        first_seen=event.occurred_at,
        last_seen=event.occurred_at,
        resolved_at=None,
        occurrence_count=1,
        source_url=fit_to_column(MonitoringAlert.source_url, event.source_url),
        raw_payload=event.raw_payload,
    )
    session.add(alert)
    return alert


def _repeat(alert: MonitoringAlert, event: AlertEvent) -> None:
    """A new event of a known fingerprint: one more occurrence; the newest firing's text and payload."""
    alert.occurrence_count += 1
    if event.occurred_at >= alert.last_seen:
        alert.last_seen = event.occurred_at
        alert.external_id = event.external_id
        alert.title = event.title[:1000]
        alert.message = event.message
        alert.expression = event.expression
        alert.severity = event.severity.value
        alert.service = fit_to_column(MonitoringAlert.service, event.service)
        alert.tags = list(event.tags)
        alert.source_url = fit_to_column(MonitoringAlert.source_url, event.source_url)
        alert.raw_payload = event.raw_payload
    if event.occurred_at < alert.first_seen:
        alert.first_seen = event.occurred_at


def _is_recovery_of(alert: MonitoringAlert, event: AlertEvent) -> bool:
    """A record of the recovery alone (not a problem that has since recovered): not one more occurrence."""
    return (
        event.status is AlertStatus.RESOLVED
        and event.occurred_at >= alert.last_seen
        and (event.resolved_at is None or event.resolved_at <= event.occurred_at)
    )


def _apply_state(alert: MonitoringAlert, event: AlertEvent) -> None:
    """The event's state on its alert; an older event cannot undo what a newer firing says."""
    if event.status is AlertStatus.RESOLVED:
        resolved_at = event.resolved_at or event.updated_at or event.occurred_at
        if event.occurred_at >= alert.last_seen:
            alert.status = AlertStatus.RESOLVED
            alert.resolved_at = resolved_at
        return
    if event.occurred_at < alert.last_seen and alert.external_id != event.external_id:
        return  # an older firing's state: the newest one decides
    if (
        alert.status is AlertStatus.RESOLVED
        and alert.resolved_at is not None
        and event.occurred_at <= alert.resolved_at
    ):
        return  # fired before the recovery we already know of
    alert.status = event.status
    alert.resolved_at = None


def _recovered_alert(
    session: TenantSession,
    event: AlertEvent,
    instance: str,
    stored: dict[tuple[str, str], MonitoringEvent],
) -> MonitoringAlert | None:
    """The alert of the event a separate recovery record names (None when that event is not stored)."""
    assert event.recovers is not None
    target = stored.get((event.source_system, event.recovers)) or session.scalar(
        select(MonitoringEvent).where(
            MonitoringEvent.source_system == event.source_system,
            MonitoringEvent.source_instance == instance,
            MonitoringEvent.external_id == event.recovers,
        )
    )
    return None if target is None else target.alert


def _resolve(alert: MonitoringAlert, event: AlertEvent) -> None:
    """A recovery record ends its alert, unless the alert fired again after the recovery."""
    recovered_at = event.resolved_at or event.occurred_at
    if recovered_at >= alert.last_seen:
        alert.status = AlertStatus.RESOLVED
        alert.resolved_at = recovered_at
