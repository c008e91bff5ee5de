"""What the store knows about each connector's syncs: the overview of every config, and one config's runs.

Read queries over :class:`~core.store.models.SyncRun` and :class:`~core.store.models.Ticket` for the views
that show connector health (the desktop's Connectors page). They live here rather than in the GUI so the
GUI holds no SQL, and they hand back frozen rows (never ORM objects), so the rows can cross threads.

Runs outlive their connector: a removed config's runs keep the name it ran under and lose its id
(:func:`removed_connectors_history` reads them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select

from connectors.configs import ConfigRow, list_configs
from connectors.errors import ConnectorError
from connectors.registry import connector_class
from core.store.connector_secrets import SecretAge, secret_ages
from core.store.models import SyncRun, SyncStatus, Ticket, utcnow
from core.store.tenancy import TenantSession

HISTORY_LIMIT = 200


@dataclass(frozen=True, slots=True)
class ConnectorOverviewRow:
    """One configured connector with what a health view shows beside its config."""

    config: ConfigRow
    system: str  # the connector type's display name
    items_synced: int  # tickets in the store that this connector brought
    last_status: str | None  # of its latest run
    last_error: str | None
    secrets: tuple[SecretAge, ...] = ()  # each stored secret's age (issue 17: rotation)

    @property
    def id(self) -> int:
        return self.config.id


@dataclass(frozen=True, slots=True)
class SyncRunRow:
    id: int
    started_at: datetime
    finished_at: datetime | None
    status: str
    items_new: int
    items_updated: int
    items_unchanged: int
    items_failed: int
    error_text: str | None
    connector_name: str = ""  # the config's name when the run started
    config_id: int | None = None  # None once the connector was removed

    @property
    def duration_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return max(0.0, (self.finished_at - self.started_at).total_seconds())


def connector_overview(session: TenantSession) -> tuple[ConnectorOverviewRow, ...]:
    """Every config with its ticket count, its latest run's outcome and its secrets' ages."""
    configs = list_configs(session)
    counts: dict[int, int] = {
        config_id: int(count)
        for config_id, count in session.execute(
            select(Ticket.connector_config_id, func.count())
            .where(Ticket.connector_config_id.is_not(None))
            .group_by(Ticket.connector_config_id)
        )
        if config_id is not None
    }
    latest_ids = (
        select(func.max(SyncRun.id))
        .where(SyncRun.connector_config_id.is_not(None))
        .group_by(SyncRun.connector_config_id)
        .scalar_subquery()
    )
    latest = {
        run.connector_config_id: run
        for run in session.scalars(select(SyncRun).where(SyncRun.id.in_(latest_ids)))
    }
    ages = secret_ages(session, utcnow())
    rows = []
    for config in configs:
        run = latest.get(config.id)
        rows.append(
            ConnectorOverviewRow(
                config=config,
                system=display_name(config.connector_type),
                items_synced=counts.get(config.id, 0),
                last_status=SyncStatus(run.status).value if run is not None else None,
                last_error=run.error_text if run is not None else None,
                secrets=tuple(age for age in ages if age.config_id == config.id),
            )
        )
    return tuple(rows)


def display_name(connector_type: str) -> str:
    """The connector type's display name; the bare type for a config of a connector this build lacks."""
    try:
        return connector_class(connector_type).spec.display_name
    except ConnectorError:
        return connector_type


def sync_history(
    session: TenantSession, config_id: int, limit: int = HISTORY_LIMIT
) -> tuple[SyncRunRow, ...]:
    """The config's runs, newest first."""
    return _rows(session, SyncRun.connector_config_id == config_id, limit)


def removed_connectors_history(session: TenantSession, limit: int = HISTORY_LIMIT) -> tuple[SyncRunRow, ...]:
    """The runs of connectors removed since, newest first; each names the connector it ran for."""
    return _rows(session, SyncRun.connector_config_id.is_(None), limit)


def _rows(session: TenantSession, which: ColumnElement[bool], limit: int) -> tuple[SyncRunRow, ...]:
    runs = session.scalars(select(SyncRun).where(which).order_by(SyncRun.id.desc()).limit(limit))
    return tuple(
        SyncRunRow(
            id=run.id,
            config_id=run.connector_config_id,
            connector_name=run.connector_name,
            started_at=run.started_at,
            finished_at=run.finished_at,
            status=SyncStatus(run.status).value,
            items_new=run.items_new,
            items_updated=run.items_updated,
            items_unchanged=run.items_unchanged,
            items_failed=run.items_failed,
            error_text=run.error_text,
        )
        for run in runs
    )
