"""The sync engine with the tiny connector: runs, counts, failures, alerts, resume, the analysis hand-off;
and record identity with two ServiceNow instances and a file export."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from connectors.base import Cursor
from connectors.configs import ConfigRow, create_config, get_config, remove_config, update_config
from connectors.sync import (
    ALERT_AFTER_FAILURES,
    INTERRUPTED,
    SyncCancelledError,
    SyncReport,
    run_sync,
    stored_cursor,
)
from connectors.testing.fake_system import InjectedFailure, Misbehaviour
from connectors.testing.standard_suite import SleepRecorder
from core.importing import import_tickets
from core.matching.analysis import count_pending
from core.settings import Thresholds, load_settings
from core.store.models import (
    UNKNOWN_INSTANCE,
    Analysis,
    AnalysisDecision,
    AuditEvent,
    SyncRun,
    SyncStatus,
    Ticket,
)
from core.store.tenancy import TenantSession
from tests.connectors.fake_servicenow import FakeServiceNow
from tests.connectors.tiny_connector import GOOD_TOKEN, FakeTiny, TinyConnector
from tests.helpers.progress import RecordingProgress

START = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def add(fake: FakeTiny, count: int, *, first: int = 1, same_time: bool = False) -> None:
    for number in range(first, first + count):
        when = START if same_time else START + timedelta(minutes=number)
        fake.add_ticket(fake.new_ticket(number, when))


def make_config(sessions: sessionmaker[TenantSession], fake: FakeTiny, *, good: bool = True) -> ConfigRow:
    settings = fake.settings(good_credentials=good)
    return create_config(
        sessions,
        connector_type="tiny",
        name=settings.name,
        base_url=settings.base_url,
        secrets=dict(settings.secrets),
        actor="test",
    )


def sync(
    sessions: sessionmaker[TenantSession], fake: FakeTiny, config: ConfigRow, **kwargs: Any
) -> SyncReport:
    kwargs.setdefault("sleep", SleepRecorder())
    return asyncio.run(run_sync(sessions, config.id, transport=fake.transport(), page_size=5, **kwargs))


class LookingProgress(RecordingProgress):
    """Also runs ``look`` at every report, right after the engine committed a page."""

    def __init__(self, look: Callable[[], None]) -> None:
        super().__init__()
        self._look = look

    def report(self, done: int, total: int | None = None, message: str = "") -> None:
        super().report(done, total, message)
        self._look()


def runs(sessions: sessionmaker[TenantSession]) -> list[SyncRun]:
    with sessions() as session:
        return list(session.scalars(select(SyncRun).order_by(SyncRun.id)))


def test_each_page_commits_tickets_cursor_and_counts_together(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession]
) -> None:
    add(tiny, 12)
    config = make_config(sessions, tiny)
    seen: list[tuple[int, int, str | None]] = []

    def look() -> None:
        # What another connection sees after each page: the page's rows, its cursor and the run's counts.
        with sessions() as session:
            stored = session.scalar(select(func.count()).select_from(Ticket)) or 0
            cursor = stored_cursor(session, config.id)
            run = session.scalars(select(SyncRun).order_by(SyncRun.id.desc())).first()
            assert run is not None
            seen.append((stored, run.items_new, cursor.last_id if cursor else None))

    progress = LookingProgress(look)
    report = sync(sessions, tiny, config, progress=progress)
    assert report.ok
    assert seen == [(5, 5, "T00005"), (10, 10, "T00010"), (12, 12, "T00012")]
    assert progress.reports[-1] == (3, None, "12 new, 0 updated (3 pages)")
    run = runs(sessions)[-1]
    assert (run.status, run.items_new, run.finished_at is not None) == (SyncStatus.SUCCEEDED, 12, True)
    row = _config(sessions, config)
    assert row.last_sync_at is not None and row.last_successful_sync_at is not None
    assert row.consecutive_failures == 0


def test_records_at_the_cursor_are_not_counted_twice(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession]
) -> None:
    add(tiny, 8, same_time=True)  # one timestamp: only the id tie-break orders them
    config = make_config(sessions, tiny)
    assert sync(sessions, tiny, config).new == 8
    add(tiny, 2, first=9, same_time=True)
    report = sync(sessions, tiny, config)
    # The query re-reads the whole second (lookback); the 8 stored at the cursor are skipped, not "unchanged".
    assert (report.new, report.updated, report.unchanged, report.skipped) == (2, 0, 0, 8)
    assert tiny.ticket_queries()[-1] == START - timedelta(seconds=1)


def test_lookback_rereads_count_as_unchanged(tiny: FakeTiny, sessions: sessionmaker[TenantSession]) -> None:
    add(tiny, 3)
    tiny.tickets["T00003"].updated_at = tiny.tickets["T00002"].updated_at + timedelta(milliseconds=400)
    config = make_config(sessions, tiny)
    assert sync(sessions, tiny, config).new == 3
    report = sync(sessions, tiny, config)
    # T00002 lies 0.4 s before the cursor, inside the 1 s lookback: re-read, stored already, unchanged.
    assert (report.new, report.unchanged, report.skipped) == (0, 1, 1)


def test_records_a_second_connector_reads_again_count_once_as_unchanged(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession]
) -> None:
    """Issue 18, item 18: two connectors of one instance; the second re-reads the first's 7 records. It
    adopts them (stamps its id) without changing them: 7 unchanged, not "7 updated, 7 unchanged"."""
    add(tiny, 7)
    first = make_config(sessions, tiny)
    assert (sync(sessions, tiny, first).new, len(tiny.tickets)) == (7, 7)
    settings = tiny.settings()
    second = create_config(
        sessions,
        connector_type="tiny",
        name="Tiny prod, second reader",
        base_url=settings.base_url,
        secrets=dict(settings.secrets),
        actor="test",
    )
    report = sync(sessions, tiny, second)
    assert (report.new, report.updated, report.unchanged, report.failed, report.skipped) == (0, 0, 7, 0, 0)
    run = runs(sessions)[-1]
    assert (run.items_new, run.items_updated, run.items_unchanged, run.items_failed) == (0, 0, 7, 0)
    with sessions() as session:  # adopted all the same: removing the second config can purge them
        assert set(session.scalars(select(Ticket.connector_config_id))) == {second.id}

    tiny.tickets["T00003"].title = "changed at the source"
    tiny.tickets["T00003"].updated_at = START + timedelta(hours=1)
    again = sync(sessions, tiny, first, full=True)  # one changed, six re-adopted: each counted once
    assert (again.new, again.updated, again.unchanged) == (0, 1, 6)


def test_record_failures_are_counted_and_the_sync_goes_on(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession]
) -> None:
    add(tiny, 6)
    tiny.broken_ids.add("T00002")
    config = make_config(sessions, tiny)
    report = sync(sessions, tiny, config)
    assert (report.status, report.new, report.failed) == (SyncStatus.SUCCEEDED, 5, 1)
    assert runs(sessions)[-1].items_failed == 1


def test_three_failures_in_a_row_raise_one_alert_and_success_resets(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession]
) -> None:
    add(tiny, 2)
    config = make_config(sessions, tiny)
    reports = []
    for _ in range(ALERT_AFTER_FAILURES + 1):
        tiny.fail_next(InjectedFailure(403, message="role itil missing"))
        reports.append(sync(sessions, tiny, config))
    assert [r.consecutive_failures for r in reports] == [1, 2, 3, 4]
    assert [r.alert for r in reports] == [False, False, True, True]
    assert reports[0].error == "Tiny prod: HTTP 403 on GET /api/tickets: role itil missing"
    assert [r.error_text for r in runs(sessions)] == [reports[0].error] * 4
    with sessions() as session:
        alerts = list(session.scalars(select(AuditEvent).where(AuditEvent.action == "connector.sync_alert")))
    assert len(alerts) == 1  # when the count reaches 3, not again at 4
    assert alerts[0].after == {"consecutive_failures": 3, "last_error": reports[0].error}
    assert _config(sessions, config).last_successful_sync_at is None

    ok = sync(sessions, tiny, config)
    assert (ok.ok, ok.consecutive_failures, ok.alert) == (True, 0, False)
    assert _config(sessions, config).consecutive_failures == 0


def test_a_cancel_stops_between_pages_and_raises_the_one_cancellation_error(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession]
) -> None:
    add(tiny, 12)
    config = make_config(sessions, tiny)
    with pytest.raises(SyncCancelledError, match="sync of Tiny prod cancelled") as cancelled:
        sync(sessions, tiny, config, progress=RecordingProgress(cancel_after=1))
    report = cancelled.value.report
    assert (report.status, report.pages, report.new) == (SyncStatus.CANCELLED, 1, 5)
    assert runs(sessions)[-1].status is SyncStatus.CANCELLED
    assert _config(sessions, config).consecutive_failures == 0  # cancelling is not failing
    assert sync(sessions, tiny, config).new == 7


def test_a_run_left_running_by_a_crash_is_closed_by_the_next(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession]
) -> None:
    config = make_config(sessions, tiny)
    with sessions.begin() as session:
        session.add(SyncRun(tenant_id=session.tenant_id, connector_config_id=config.id))
    assert sync(sessions, tiny, config).ok
    first, second = runs(sessions)
    assert (first.status, first.error_text) == (SyncStatus.FAILED, INTERRUPTED)
    assert second.status is SyncStatus.SUCCEEDED


def test_full_sync_ignores_the_cursor(tiny: FakeTiny, sessions: sessionmaker[TenantSession]) -> None:
    add(tiny, 4)
    config = make_config(sessions, tiny)
    sync(sessions, tiny, config)
    report = sync(sessions, tiny, config, full=True)
    assert (report.new, report.unchanged, report.full) == (0, 4, True)
    assert tiny.ticket_queries()[-1] is None


def test_a_bug_in_a_connector_is_recorded_and_propagates(
    tiny: FakeTiny,
    sessions: sessionmaker[TenantSession],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = make_config(sessions, tiny)

    async def broken_fetch(self: TinyConnector, since: Cursor | None, *, page_size: int | None = None) -> Any:
        raise TypeError("a bug")
        yield  # pragma: no cover -- makes this an async generator

    monkeypatch.setattr(TinyConnector, "fetch", broken_fetch)
    with pytest.raises(TypeError, match="a bug"):
        sync(sessions, tiny, config)
    run = runs(sessions)[-1]
    assert (run.status, run.error_text) == (SyncStatus.FAILED, "internal error (see the log)")
    assert [r.getMessage() for r in caplog.records] == ["sync Tiny prod: internal error"]


def test_pagination_that_never_advances_is_stopped_and_what_was_read_is_kept(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession]
) -> None:
    """The engine has no guard of its own: the page loop's one guard stops a server that answers the same
    page for ever, the run is recorded as failed with that reason, and the first page is stored."""
    add(tiny, 8)
    config = make_config(sessions, tiny)
    tiny.misbehaviour = Misbehaviour.SAME_PAGE_FOREVER
    report = sync(sessions, tiny, config)
    assert report.status is SyncStatus.FAILED
    assert report.error is not None and "the paging does not advance" in report.error
    assert report.pages <= 2
    assert report.new >= 1


def test_new_and_changed_tickets_are_pending_analysis(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession]
) -> None:
    """No queue needed: analyze_pending's content-hash filter sees exactly what the sync stored or changed."""
    engine: Any = SimpleNamespace(
        embedder=SimpleNamespace(model_id="test-model")
    )  # count_pending reads only this
    add(tiny, 3)
    config = make_config(sessions, tiny)
    sync(sessions, tiny, config)
    assert count_pending(engine, sessions) == 3
    with sessions.begin() as session:
        thresholds = load_settings(session, Thresholds)
        for ticket in session.scalars(select(Ticket)):
            session.add(
                Analysis(
                    tenant_id=session.tenant_id,
                    ticket_id=ticket.id,
                    decision=AnalysisDecision.GENERATE_RUNBOOK,
                    confidence=0.1,
                    model_id="test-model",
                    threshold_existing=thresholds.existing,
                    threshold_partial=thresholds.partial,
                    ticket_content_hash=ticket.content_hash,
                )
            )
    assert count_pending(engine, sessions) == 0
    tiny.tickets["T00002"].description = "Now the toner is empty too."
    tiny.tickets["T00002"].updated_at = START + timedelta(hours=1)
    report = sync(sessions, tiny, config)
    assert report.updated == 1
    assert count_pending(engine, sessions) == 1


def test_remove_keeps_or_purges_the_connectors_tickets(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession]
) -> None:
    add(tiny, 3)
    config = make_config(sessions, tiny)
    sync(sessions, tiny, config)
    kept = remove_config(sessions, config.id, actor="test")
    assert (kept.tickets_kept, kept.tickets_purged, kept.keychain_problem) == (3, 0, None)
    assert kept.sync_runs_kept == 1
    with sessions() as session:
        assert list(session.scalars(select(Ticket.connector_config_id))) == [None, None, None]
        # The run history stays, under the name the connector had (issue 18, item 6).
        run = session.scalars(select(SyncRun)).one()
        assert (run.connector_config_id, run.connector_name, run.items_new) == (None, "Tiny prod", 3)

    again = make_config(sessions, tiny)
    tiny.tickets["T00001"].title = "changed"
    tiny.tickets["T00001"].updated_at = START + timedelta(hours=1)
    sync(sessions, tiny, again, full=True)
    purged = remove_config(sessions, again.id, purge_tickets=True, actor="test")
    # A re-read adopts the tickets, changed or not: all three are the new config's, and purged with it.
    assert purged.tickets_purged == 3
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_deleting_the_config_row_sets_tickets_free_in_the_database(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession]
) -> None:
    """The database's ON DELETE SET NULL (0004, kept by 0007), without the application's own detaching."""
    add(tiny, 2)
    config = make_config(sessions, tiny)
    sync(sessions, tiny, config)
    with sessions.begin() as session:
        session.delete(session.get_one(_model(), config.id))
    with sessions() as session:
        assert list(session.scalars(select(Ticket.connector_config_id))) == [None, None]


def _model() -> Any:
    from core.store.models import ConnectorConfig

    return ConnectorConfig


def _config(sessions: sessionmaker[TenantSession], config: ConfigRow) -> ConfigRow:
    with sessions() as session:
        return get_config(session, config.id)


def test_the_token_is_sent_and_never_stored(tiny: FakeTiny, sessions: sessionmaker[TenantSession]) -> None:
    add(tiny, 1)
    config = make_config(sessions, tiny)
    sync(sessions, tiny, config)
    assert tiny.requests[0].headers["Authorization"] == f"Bearer {GOOD_TOKEN}"
    with sessions() as session:
        assert GOOD_TOKEN not in str(get_config(session, config.id).public_dict())


# --- record identity across instances (the rule in core.store.models) -----------------------------------


def servicenow_instance(host: str, subject: str) -> FakeServiceNow:
    """A fake ServiceNow at ``host`` holding INC0000001..3, titled after ``subject``."""
    fake = FakeServiceNow()
    fake.base_url = f"https://{host}"  # type: ignore[misc]  # an instance of its own, not the class default
    for number in (1, 2, 3):
        ticket = fake.new_ticket(number, START + timedelta(minutes=number))
        ticket.title = f"{subject} {number}"
        fake.add_ticket(ticket)
    return fake


def servicenow_config(sessions: sessionmaker[TenantSession], fake: FakeServiceNow, name: str) -> ConfigRow:
    settings = fake.settings()
    return create_config(
        sessions,
        connector_type="servicenow",
        name=name,
        base_url=fake.base_url,
        auth_mode=settings.auth_mode,
        options=dict(settings.options),
        secrets=dict(settings.secrets),
        actor="test",
    )


def sync_servicenow(
    sessions: sessionmaker[TenantSession], fake: FakeServiceNow, config: ConfigRow, **kwargs: Any
) -> SyncReport:
    report = asyncio.run(
        run_sync(sessions, config.id, transport=fake.transport(), sleep=SleepRecorder(), **kwargs)
    )
    assert report.ok, report.error
    return report


def stored(sessions: sessionmaker[TenantSession]) -> list[tuple[str, str, str]]:
    with sessions() as session:
        query = select(Ticket.source_instance, Ticket.external_id, Ticket.title).order_by(
            Ticket.source_instance, Ticket.external_id
        )
        return [(instance, number, title) for instance, number, title in session.execute(query)]


def test_two_servicenow_instances_with_the_same_numbers_stay_two_tickets(
    sessions: sessionmaker[TenantSession],
) -> None:
    acme = servicenow_instance("acme.service-now.com", "Acme VPN")
    globex = servicenow_instance("globex.service-now.com", "Globex printer")
    acme_config = servicenow_config(sessions, acme, "Acme")
    globex_config = servicenow_config(sessions, globex, "Globex")
    assert sync_servicenow(sessions, acme, acme_config).new == 3
    assert sync_servicenow(sessions, globex, globex_config).new == 3  # before: 3 "updated" over Acme's
    again = sync_servicenow(sessions, acme, acme_config, full=True)
    assert (again.new, again.updated, again.unchanged) == (0, 0, 3)

    assert stored(sessions) == [
        *[("acme.service-now.com", f"INC000000{n}", f"Acme VPN {n}") for n in (1, 2, 3)],
        *[("globex.service-now.com", f"INC000000{n}", f"Globex printer {n}") for n in (1, 2, 3)],
    ]
    with sessions() as session:
        query = select(Ticket.source_instance, Ticket.connector_config_id).distinct()
        owners = {instance: owner for instance, owner in session.execute(query)}
    assert owners == {"acme.service-now.com": acme_config.id, "globex.service-now.com": globex_config.id}


def test_a_csv_export_and_the_api_of_one_instance_are_one_ticket(
    sessions: sessionmaker[TenantSession], tmp_path: Path
) -> None:
    acme = servicenow_instance("acme.service-now.com", "VPN drops")
    export = tmp_path / "incidents.csv"
    export.write_text(
        "number,short_description,description,state,sys_created_on,sys_updated_on\n"
        "INC0000001,VPN drops (as exported),first,New,2026-05-04 08:00:00,2026-05-04 08:01:00\n"
        "INC0000002,VPN drops (as exported),second,New,2026-05-04 08:00:00,2026-05-04 08:02:00\n",
        encoding="utf-8",
    )
    # History imported before any connector exists: the file cannot say which instance it came from.
    assert import_tickets(sessions, export).inserted == 2
    assert {instance for instance, _, _ in stored(sessions)} == {UNKNOWN_INSTANCE}

    # The connector of that instance takes those rows over instead of adding twins.
    config = servicenow_config(sessions, acme, "Acme")
    report = sync_servicenow(sessions, acme, config)
    assert (report.new, report.updated) == (1, 2)
    assert stored(sessions) == [
        ("acme.service-now.com", f"INC000000{n}", f"VPN drops {n}") for n in (1, 2, 3)
    ]

    # The export again, now that the system has one known instance: it lands on the synced rows.
    again = import_tickets(sessions, export)
    assert (again.inserted, again.updated) == (0, 2)
    assert len(stored(sessions)) == 3
    with sessions() as session:
        kept_owner = session.scalars(select(Ticket.connector_config_id).distinct()).all()
    assert kept_owner == [config.id]  # a file import does not detach the connector's rows


def test_a_connector_moved_to_a_new_address_takes_its_tickets_along(
    sessions: sessionmaker[TenantSession],
) -> None:
    acme = servicenow_instance("acme.service-now.com", "Acme VPN")
    config = servicenow_config(sessions, acme, "Acme")
    sync_servicenow(sessions, acme, config)
    acme.base_url = "https://support.acme.example"  # type: ignore[misc]  # the instance's new custom domain
    update_config(sessions, config.id, base_url=acme.base_url, actor="test")
    assert {instance for instance, _, _ in stored(sessions)} == {"support.acme.example"}
    again = sync_servicenow(sessions, acme, config, full=True)
    assert (again.new, again.updated) == (0, 3)  # the same three; updated: their links name the new host
    assert len(stored(sessions)) == 3
    with sessions() as session:
        moved = session.scalars(select(AuditEvent).where(AuditEvent.action == "connector.update")).one()
    assert moved.after is not None and moved.after["tickets_moved"] == 3
