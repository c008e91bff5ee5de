"""Issue 18, item 6 (connector side): every sync and every connection test is on the audit trail, and
removing a connector keeps its sync history.

Each run leaves ``connector.sync.start`` when it opens (so a run killed part-way is on the trail) and
``connector.sync`` with its outcome when it ends, or when the next run finds it cut off. Each check leaves
``connector.check``: the CLI's, and :func:`connectors.configs.record_check` for the wizard's tests of a draft.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.orm import sessionmaker

from connectors.base import CheckProblem, CheckResult
from connectors.configs import ConfigRow, check_config, create_config, record_check, remove_config
from connectors.runs import connector_overview, removed_connectors_history, sync_history
from connectors.secrets import register_secret
from connectors.sync import INTERRUPTED, SyncCancelledError, SyncReport, run_sync
from connectors.testing.fake_system import InjectedFailure
from connectors.testing.standard_suite import SleepRecorder
from core.store.db import create_sqlite_engine
from core.store.migrations import alembic_config, current_revision, upgrade_to
from core.store.models import AuditEvent, SyncRun, SyncStatus
from core.store.repository import current_actor
from core.store.tenancy import TenantSession
from core.store.workspace import DB_FILENAME
from desktop.cli.main import EXIT_ERROR, EXIT_OK, main
from tests.connectors.tiny_connector import GOOD_TOKEN, FakeTiny
from tests.helpers.progress import RecordingProgress

START = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def make_config(sessions: sessionmaker[TenantSession], fake: FakeTiny, name: str = "Tiny prod") -> ConfigRow:
    return create_config(
        sessions,
        connector_type="tiny",
        name=name,
        base_url=fake.base_url,
        secrets={"token": GOOD_TOKEN},
        actor="test",
    )


def sync(
    sessions: sessionmaker[TenantSession], fake: FakeTiny, config: ConfigRow, **kwargs: Any
) -> SyncReport:
    kwargs.setdefault("sleep", SleepRecorder())
    kwargs.setdefault("actor", "ana")
    return asyncio.run(run_sync(sessions, config.id, transport=fake.transport(), page_size=5, **kwargs))


def trail(sessions: sessionmaker[TenantSession], prefix: str) -> list[AuditEvent]:
    with sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action.startswith(prefix)).order_by(AuditEvent.id)
            )
        )


def test_every_run_is_audited_when_it_starts_and_when_it_ends(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession]
) -> None:
    for number in range(1, 8):
        tiny.add_ticket(tiny.new_ticket(number, START + timedelta(minutes=number)))
    config = make_config(sessions, tiny)
    ok = sync(sessions, tiny, config)
    tiny.fail_next(InjectedFailure(403, message=f"token {GOOD_TOKEN} lacks the itil role"))
    failed = sync(sessions, tiny, config, full=True)
    with pytest.raises(SyncCancelledError):
        sync(sessions, tiny, config, full=True, progress=RecordingProgress(cancel_after=1))

    events = trail(sessions, "connector.sync")
    assert [(e.action, e.actor, e.entity_type, e.entity_id) for e in events] == [
        (action, "ana", "connector_config", config.id)
        for _ in range(3)
        for action in ("connector.sync.start", "connector.sync")
    ]
    run_ids = [run.id for run in sync_history_rows(sessions, config)]
    assert [e.after["run_id"] for e in events if e.after] == [r for r in run_ids for _ in range(2)]
    started = events[0].after
    assert started == {"name": "Tiny prod", "run_id": ok.run_id, "full": False}
    outcomes = [e.after for e in events[1::2] if e.after]
    assert [(o["status"], o["new"], o["unchanged"], o["pages"]) for o in outcomes] == [
        ("succeeded", 7, 0, 2),
        ("failed", 0, 0, 0),
        ("cancelled", 0, 5, 1),
    ]
    assert outcomes[0]["error"] is None and outcomes[2]["error"] == "cancelled"
    assert (
        outcomes[1]["error"]
        == failed.error
        == "Tiny prod: HTTP 403 on GET /api/tickets: token *** lacks the itil role"
    )
    assert GOOD_TOKEN not in json.dumps([e.after for e in events])


def sync_history_rows(sessions: sessionmaker[TenantSession], config: ConfigRow) -> list[Any]:
    with sessions() as session:
        return sorted(sync_history(session, config.id), key=lambda run: run.id)


def test_a_run_cut_off_by_a_kill_is_on_the_trail_twice(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession]
) -> None:
    """Its start row was written with the run; its end is audited by the next run, which closes it."""
    config = make_config(sessions, tiny)
    killed = sync(sessions, tiny, config)
    with sessions.begin() as session:  # what a kill -9 mid-run leaves: the run still "running"
        run = session.get_one(SyncRun, killed.run_id)
        run.status, run.finished_at = SyncStatus.RUNNING, None
    assert sync(sessions, tiny, config, actor="cron").ok
    closing = [
        e for e in trail(sessions, "connector.sync") if e.after and e.after.get("error") == INTERRUPTED
    ]
    assert [(e.actor, e.action, e.after["run_id"], e.after["status"]) for e in closing if e.after] == [
        ("cron", "connector.sync", killed.run_id, "failed")
    ]


def test_the_cli_check_and_sync_are_audited_under_the_users_name(
    tiny: FakeTiny, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = str(tmp_path / "ws")
    monkeypatch.setenv("RUNBOOK_DESK_SECRET_TOKEN", GOOD_TOKEN)
    add = ["connectors", "add", "tiny", "--name", "Tiny prod", "--url", tiny.base_url, "--workspace", ws]
    assert main(add) == EXIT_OK
    assert main(["connectors", "check", "Tiny prod", "--workspace", ws]) == EXIT_OK
    tiny.fail_next(InjectedFailure(401, message=f"invalid token {GOOD_TOKEN}"))
    assert main(["connectors", "check", "Tiny prod", "--workspace", ws, "--json"]) == EXIT_ERROR
    assert main(["connectors", "sync", "Tiny prod", "--workspace", ws]) == EXIT_OK
    capsys.readouterr()

    engine = create_sqlite_engine(Path(ws) / DB_FILENAME)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT actor, action, entity_id, after FROM audit_events ORDER BY id")
            ).all()
    finally:
        engine.dispose()
    checks = [
        (actor, entity, json.loads(after))
        for actor, action, entity, after in rows
        if action == "connector.check"
    ]
    assert [(actor, entity) for actor, entity, _ in checks] == [(current_actor(), 1)] * 2
    assert [(after["ok"], after["problem"]) for _, _, after in checks] == [
        (True, "ok"),
        (False, "authentication"),
    ]
    assert checks[0][2] | {"message": ""} == {
        "name": "Tiny prod",
        "type": "tiny",
        "base_url": tiny.base_url,
        "ok": True,
        "problem": "ok",
        "message": "",
    }
    assert checks[1][2]["message"] == "Tiny prod: HTTP 401 on GET /api/me: invalid token ***"
    assert [action for _, action, _, _ in rows if action.startswith("connector.sync")] == [
        "connector.sync.start",
        "connector.sync",
    ]
    assert GOOD_TOKEN not in repr(rows)


class HangingServer(httpx.AsyncBaseTransport):
    """Takes the request and never answers: the check waits until it is cancelled."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.reached.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")  # pragma: no cover


def test_the_desktops_check_path_is_audited_drafts_and_cancellations_included(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession]
) -> None:
    """``record_check`` is what the wizard calls after testing a draft (no config id yet); ``check_config``
    audits a stored connector's test even when it is cancelled mid-way."""
    register_secret(GOOD_TOKEN)  # the wizard registers a secret as it is typed
    record_check(
        sessions,
        connector_type="tiny",
        name="Draft",
        base_url=tiny.base_url,
        result=CheckResult(CheckProblem.TLS, f"certificate not trusted; sent {GOOD_TOKEN}", "pick a CA"),
        actor="ana",
    )
    config = make_config(sessions, tiny)

    async def cancelled_check() -> None:
        server = HangingServer()
        task = asyncio.ensure_future(check_config(sessions, config, transport=server, actor="ana"))
        await server.reached.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled_check())
    result = asyncio.run(check_config(sessions, config, transport=tiny.transport(), actor="ana"))
    assert result.ok
    events = trail(sessions, "connector.check")
    assert [(e.actor, e.entity_id) for e in events] == [("ana", None), ("ana", config.id), ("ana", config.id)]
    outcomes = [e.after for e in events if e.after]
    assert [(o["name"], o["ok"], o["problem"]) for o in outcomes] == [
        ("Draft", False, "tls"),
        ("Tiny prod", False, "cancelled"),
        ("Tiny prod", True, "ok"),
    ]
    assert outcomes[0]["message"] == "certificate not trusted; sent ***"


def test_removing_a_connector_keeps_its_runs_under_its_name(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession]
) -> None:
    tiny.add_ticket(tiny.new_ticket(1, START))
    config = make_config(sessions, tiny)
    sync(sessions, tiny, config)
    tiny.fail_next(InjectedFailure(500, message="down"), times=5)
    sync(sessions, tiny, config)
    removed = remove_config(sessions, config.id, actor="ana")
    assert removed.sync_runs_kept == 2

    again = make_config(sessions, tiny)  # the same name again: a new connector, with a history of its own
    with sessions() as session:
        kept = removed_connectors_history(session)
        assert sync_history(session, again.id) == ()
        assert [row.last_status for row in connector_overview(session)] == [None]
    assert [(r.connector_name, r.config_id, r.status, r.items_new) for r in kept] == [
        ("Tiny prod", None, "failed", 0),
        ("Tiny prod", None, "succeeded", 1),
    ]
    assert kept[0].error_text is not None and "HTTP 500" in kept[0].error_text
    (audited,) = trail(sessions, "connector.remove")
    assert audited.after == {"tickets_purged": 0, "tickets_kept": 1, "sync_runs_kept": 2}


def test_0008_names_the_runs_and_lets_them_outlive_their_connector(tmp_path: Path) -> None:
    engine = create_sqlite_engine(tmp_path / DB_FILENAME)
    upgrade_to(engine, "0007")
    now = "2026-01-01 00:00:00"
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO tenants VALUES (1, 'default', 'Default', '{{}}', '{now}', '{now}')"))
        for config_id, name in ((3, "Acme ServiceNow"), (4, "Corp Jira")):
            conn.execute(
                text(
                    "INSERT INTO connector_configs (id, tenant_id, connector_type, name, config_json, "
                    "is_active, sync_frequency_minutes, consecutive_failures, created_at, updated_at) VALUES "
                    f"({config_id}, 1, 'servicenow', '{name}', '{{}}', 1, 5, 0, '{now}', '{now}')"
                )
            )
        for run_id, config_id in ((10, 3), (11, 3), (12, 4)):
            conn.execute(
                text(
                    "INSERT INTO sync_runs (id, tenant_id, connector_config_id, started_at, status, "
                    "items_new, items_updated, items_unchanged, items_failed, created_at, updated_at) VALUES "
                    f"({run_id}, 1, {config_id}, '{now}', 'succeeded', {run_id}, 0, 0, 0, '{now}', '{now}')"
                )
            )
    upgrade_to(engine, "0008")
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        named = conn.execute(text("SELECT id, connector_name, items_new FROM sync_runs ORDER BY id")).all()
        assert named == [(10, "Acme ServiceNow", 10), (11, "Acme ServiceNow", 11), (12, "Corp Jira", 12)]
        conn.execute(text("DELETE FROM connector_configs WHERE id = 3"))
        kept = conn.execute(text("SELECT id, connector_config_id FROM sync_runs ORDER BY id")).all()
        assert kept == [(10, None), (11, None), (12, 4)]
    command.downgrade(alembic_config(engine), "0007")  # the old schema cannot hold a run without its config
    assert current_revision(engine) == "0007"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM sync_runs")).scalars().all() == [12]
    engine.dispose()
