"""What the Alerts page runs on worker threads: the incident list, the once-only notifications, the ticketing
connectors an incident can be created in, and the creation itself.

Plain functions with their own session, frozen rows out (:mod:`core.monitoring.queries`), as every page's
jobs. Creating the ticket is a network call that writes the store (the number is kept on the incident), so
it runs like a sync: on its worker's own event loop (:func:`~desktop.background.sync_jobs.run_coroutine`),
cancellable, never on the GUI loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from connectors.base import ConnectorKind, CreatedTicket, NewIncident, WriteAccess
from connectors.configs import ConfigRow, get_config, list_configs, settings_for
from connectors.registry import connector_class, connector_types
from connectors.writes import create_incident_ticket, new_incident
from core.monitoring.queries import (
    Compression,
    IncidentRow,
    compression,
    incidents_to_notify,
    list_incidents,
    mark_notified,
)
from core.store.models import AuditEvent, MonitoringIncident, SyncRun, SyncStatus
from core.store.tenancy import TenantSession
from desktop.background.sync_jobs import run_coroutine, transport_for
from desktop.background.tasks import TaskContext
from desktop.context import TransportFactory

# How far back the connection tests are read for each connector's write access: the newest test per
# connector is what counts, and a workspace runs a handful a day.
CHECKS_READ = 500


@dataclass(frozen=True, slots=True)
class AlertsLoad:
    """One load of the page: the incidents, and what the page says around them."""

    incidents: tuple[IncidentRow, ...]
    monitoring_connectors: int  # none configured: the empty state says to add one
    compression: Compression
    since: datetime | None  # the start of the last monitoring sync: "what changed" is relative to it
    loaded_at: datetime  # "5 min ago" is relative to it


@dataclass(frozen=True, slots=True)
class TicketTarget:
    """A ticketing connector an incident can be created in, with what its last connection test said."""

    config_id: int
    name: str
    display_name: str  # the system: "ServiceNow", "Jira"...
    write: WriteAccess | None  # None: never tested since write checks exist

    def access_text(self) -> str:
        """The test page's words, so the analyst reads the same thing in both places."""
        if self.write is WriteAccess.ALLOWED:
            return "can create incidents and post notes"
        if self.write is WriteAccess.UNKNOWN:
            return "not known until the first write"
        return "not tested yet"


def kind_types(kind: ConnectorKind) -> dict[str, str]:
    """Connector type -> display name of the registered connectors of one kind (plugins included)."""
    return {spec.type: spec.display_name for spec in connector_types() if spec.kind is kind}


def monitoring_configs(session: TenantSession) -> list[ConfigRow]:
    types = kind_types(ConnectorKind.MONITORING)
    return [row for row in list_configs(session) if row.connector_type in types]


def last_monitoring_sync(session: TenantSession, config_ids: Iterable[int]) -> datetime | None:
    """When the newest finished sync of a monitoring connector started: the "last sync" of the page's
    "what changed since the last sync"."""
    ids = list(config_ids)
    if not ids:
        return None
    started: datetime | None = session.scalar(
        select(func.max(SyncRun.started_at)).where(
            SyncRun.connector_config_id.in_(ids), SyncRun.status != SyncStatus.RUNNING
        )
    )
    if started is not None and started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return started


def load_alerts(sessions: sessionmaker[TenantSession], include_resolved: bool) -> AlertsLoad:
    with sessions() as session:
        configs = monitoring_configs(session)
        since = last_monitoring_sync(session, (row.id for row in configs))
        return AlertsLoad(
            incidents=tuple(list_incidents(session, include_resolved=include_resolved, since=since)),
            monitoring_connectors=len(configs),
            compression=compression(session),
            since=since,
            loaded_at=datetime.now(UTC),
        )


def take_notifications(sessions: sessionmaker[TenantSession]) -> tuple[IncidentRow, ...]:
    """The critical incidents with a confident runbook not announced yet, marked announced in the same
    transaction: each is shown once, whichever window or restart asks next."""
    with sessions.begin() as session:
        rows = tuple(incidents_to_notify(session))
        if rows:
            mark_notified(session, [row.id for row in rows])
        return rows


def _last_write_access(session: TenantSession) -> dict[tuple[str, str], WriteAccess]:
    """(type, name) -> the write access the newest connection test of that connector found.

    By name and type, not id: the wizard tests a connector before it is saved (no id yet)."""
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "connector.check")
        .order_by(AuditEvent.id.desc())
        .limit(CHECKS_READ)
    )
    found: dict[tuple[str, str], WriteAccess] = {}
    for event in events:
        after = event.after or {}
        key = (str(after.get("type", "")), str(after.get("name", "")))
        if key in found or not after.get("ok"):
            continue
        value = after.get("write")
        if value in set(WriteAccess):
            found[key] = WriteAccess(value)
    return found


@dataclass(frozen=True, slots=True)
class TicketRequest:
    """What the confirmation shows: where the incident can be created, and exactly what would be sent."""

    targets: tuple[TicketTarget, ...]
    incident: NewIncident


def load_ticket_request(sessions: sessionmaker[TenantSession], incident_id: int) -> TicketRequest:
    """The targets and the request :func:`connectors.writes.create_incident_ticket` would send, built by
    the same function, so the confirmation shows what is sent and nothing else."""
    with sessions() as session:
        incident = session.get(MonitoringIncident, incident_id)
        if incident is None or incident.tenant_id != session.tenant_id:
            raise LookupError(f"no monitoring incident {incident_id} in tenant {session.tenant_slug}")
        request = new_incident(session, incident)
        targets = ticket_targets(session)
    return TicketRequest(targets, request)


def ticket_targets(session: TenantSession) -> tuple[TicketTarget, ...]:
    """The ticketing connectors that can create an incident and were not found read-only, by name."""
    types = kind_types(ConnectorKind.TICKETING)
    access = _last_write_access(session)
    targets = []
    for row in list_configs(session):
        if row.connector_type not in types or not connector_class(row.connector_type).can_write:
            continue
        write = access.get((row.connector_type, row.name))
        if write in (WriteAccess.DENIED, WriteAccess.NOT_SUPPORTED):
            continue
        targets.append(TicketTarget(row.id, row.name, types[row.connector_type], write))
    return tuple(sorted(targets, key=lambda target: target.name.casefold()))


def create_ticket(
    task: TaskContext,
    sessions: sessionmaker[TenantSession],
    incident_id: int,
    config_id: int,
    transport_factory: TransportFactory | None,
    actor: str,
) -> CreatedTicket:
    """Create the incident's ticket through the connector (once: a second call returns the first)."""
    transport = None
    if transport_factory is not None:
        with sessions() as session:
            transport = transport_for(transport_factory, settings_for(get_config(session, config_id)))
    task.report(0, None, "creating the ticket")
    return run_coroutine(
        task,
        lambda: create_incident_ticket(sessions, incident_id, config_id, actor=actor, transport=transport),
    )
