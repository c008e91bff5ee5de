"""The sync lock on SQLite (one process holds the workspace): a second sync of one connector is refused at
once, and the scheduler reports it as skipped, not failed."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.orm import sessionmaker

from connectors.configs import create_config
from connectors.scheduler import SyncScheduler
from connectors.sync import SyncReport, run_sync
from core.store.locks import SyncBusyError, connector_sync_lock
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from tests.connectors.tiny_connector import FakeTiny


def _config(sessions: sessionmaker[TenantSession], tiny: FakeTiny) -> int:
    settings = tiny.settings()
    return create_config(
        sessions,
        connector_type="tiny",
        name=settings.name,
        base_url=settings.base_url,
        secrets=dict(settings.secrets),
        actor="test",
    ).id


def test_a_sync_of_a_connector_being_synced_is_refused(workspace: Workspace, tiny: FakeTiny) -> None:
    sessions = workspace.session_factory()
    config_id = _config(sessions, tiny)
    with (
        connector_sync_lock(workspace.engine, config_id, "Tiny prod"),
        pytest.raises(SyncBusyError, match="Tiny prod is being synced already"),
    ):
        asyncio.run(run_sync(sessions, config_id, transport=tiny.transport()))
    assert asyncio.run(run_sync(sessions, config_id, transport=tiny.transport())).ok  # free again


def test_the_scheduler_reports_a_busy_connector_as_skipped(workspace: Workspace, tiny: FakeTiny) -> None:
    sessions = workspace.session_factory()
    config_id = _config(sessions, tiny)
    busy: list[str] = []
    errors: list[BaseException] = []
    reports: list[SyncReport] = []
    scheduler = SyncScheduler(
        sessions,
        sync=lambda cid: run_sync(sessions, cid, transport=tiny.transport()),
        on_busy=lambda _cid, message: busy.append(message),
        on_error=lambda _cid, error: errors.append(error),
        on_report=reports.append,
    )

    async def tick_while_locked() -> None:
        with connector_sync_lock(workspace.engine, config_id, "Tiny prod"):
            scheduler.tick()
            await scheduler.wait_for_running()

    asyncio.run(tick_while_locked())
    assert busy == ["connector Tiny prod is being synced already"]
    assert errors == [] and reports == []
