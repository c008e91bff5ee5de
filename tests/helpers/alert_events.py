"""Monitoring events for the Alerts page and ``alerts`` CLI tests: three incidents as a sync brings them.

Times are relative to the ``now`` the caller passes, a quarter minute off the minute, so "40 min ago" on the
page does not flip while a test runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import sessionmaker

from core.monitoring.events import AlertEvent, Severity
from core.monitoring.ingest import store_events
from core.store.models import AlertStatus
from core.store.tenancy import TenantSession

DISK_MESSAGE = "Filesystem /var on db01 is 97% full; the database logs cannot be written."
DISK_MESSAGE_AGAIN = "Filesystem /var on db01 is 98% full; the database logs cannot be written."
DISK_EXPRESSION = "last(/db01/vfs.fs.size[/var,pfree])<5"
K8S_EXPRESSION = "max:kubernetes_state.container.status_report.count.waiting{reason:crashloopbackoff} > 0"


def event(
    now: datetime,
    external_id: str,
    minutes_ago: float,
    title: str,
    host: str,
    severity: Severity,
    *,
    message: str = "",
    expression: str | None = None,
    service: str | None = None,
    source: str = "zabbix",
    tags: tuple[str, ...] = (),
    monitor_id: str | None = None,
) -> AlertEvent:
    at = now - timedelta(minutes=minutes_ago + 0.25)  # a quarter minute off the "N min ago" boundaries
    return AlertEvent(
        external_id=external_id,
        source_system=source,
        monitor_id=monitor_id or title,
        title=title,
        message=message,
        severity=severity,
        status=AlertStatus.TRIGGERED,
        occurred_at=at,
        updated_at=at,
        host=host,
        service=service,
        expression=expression,
        tags=tags,
    )


def events(now: datetime) -> tuple[AlertEvent, ...]:
    """Three incidents: a critical disk on db01 that fired twice (one alert, counted twice), a crash-looping
    pod from Datadog, a warning CPU on web01 (three hours ago, beyond the others' correlation window)."""
    return (
    event(
        now, "zbx-1", 130, "Free disk space is less than 5% on volume /var", "db01", Severity.CRITICAL,
        message=DISK_MESSAGE, expression=DISK_EXPRESSION, tags=("scope:capacity",), monitor_id="13021",
    ),
    event(
        now, "zbx-2", 125, "Free disk space is less than 3% on volume /var", "db01", Severity.CRITICAL,
        message=DISK_MESSAGE_AGAIN, expression=DISK_EXPRESSION, tags=("scope:capacity",), monitor_id="13021",
    ),
    event(
        now, "dd-1", 40, "Pod payments-api is in CrashLoopBackOff", "k8s-prod", Severity.HIGH,
        message="Back-off restarting failed container payments-api in pod payments-api-7d9f",
        expression=K8S_EXPRESSION, service="payments", source="datadog",
    ),
    event(
        now, "zbx-3", 185, "High CPU utilization (over 90% for 5m)", "web01", Severity.WARNING,
        message="CPU utilization on web01 has been above 90% for 5 minutes.",
        expression="min(/web01/system.cpu.util,5m)>90",
    ),
)  # fmt: skip


def ingest(sessions: sessionmaker[TenantSession], batch: tuple[AlertEvent, ...] | None = None) -> None:
    by_source: dict[str, list[AlertEvent]] = {}
    for one in batch if batch is not None else events(datetime.now(UTC)):
        by_source.setdefault(one.source_system, []).append(one)
    with sessions.begin() as session:
        for source, of_source in by_source.items():
            store_events(session, of_source, instance=f"{source}.example.com", connector_config_id=None)
