"""Building monitoring events for the core monitoring tests: real-looking values, times relative to T0."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import sessionmaker

from core.monitoring.events import AlertEvent, Severity
from core.monitoring.ingest import IngestResult, store_events
from core.store.models import AlertStatus
from core.store.tenancy import TenantSession

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def event(
    external_id: str,
    minute: float,
    *,
    title: str = "Disk full on /var",
    host: str | None = "db01",
    service: str | None = None,
    monitor_id: str | None = None,
    severity: Severity = Severity.HIGH,
    status: AlertStatus = AlertStatus.TRIGGERED,
    resolved_minute: float | None = None,
    recovers: str | None = None,
    message: str = "",
    expression: str | None = None,
    tags: tuple[str, ...] = (),
    source_system: str = "zabbix",
) -> AlertEvent:
    """An event fired ``minute`` minutes after T0 (the monitor id defaults to the title)."""
    occurred = T0 + timedelta(minutes=minute)
    resolved = None if resolved_minute is None else T0 + timedelta(minutes=resolved_minute)
    return AlertEvent(
        external_id=external_id,
        source_system=source_system,
        monitor_id=monitor_id or title,
        title=title,
        message=message,
        severity=severity,
        status=status,
        occurred_at=occurred,
        updated_at=resolved or occurred,
        host=host,
        service=service,
        expression=expression,
        tags=tags,
        resolved_at=resolved,
        recovers=recovers,
    )


def ingest(
    sessions: sessionmaker[TenantSession], events: Sequence[AlertEvent], *, instance: str = "zbx.example.com"
) -> IngestResult:
    with sessions.begin() as session:
        return store_events(session, events, instance=instance, connector_config_id=None)


def minutes(value: float) -> datetime:
    return T0 + timedelta(minutes=value)
