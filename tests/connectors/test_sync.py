"""The sync engine with the tiny connector: runs, counts, failures, alerts, resume, the analysis hand-off."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from connectors import base
from connectors.base import ConnectorSpec, Cursor, Page
from connectors.configs import ConfigRow, create_config, get_config, remove_config
from connectors.sync import ALERT_AFTER_FAILURES, INTERRUPTED, SyncReport, run_sync, stored_cursor
from core.matching.analysis import count_pending, tenant_thresholds
from core.store.models import Analysis, AnalysisDecision, AuditEvent, SyncRun, SyncStatus, Ticket
from core.store.tenancy import TenantSession
from tests.connectors.fake_base import InjectedFailure
from tests.connectors.standard_suite import SleepRecorder
from tests.connectors.tiny_connector import GOOD_TOKEN, FakeTiny, TinyConnector

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


def runs(sessions: sessionmaker[TenantSession]) -> list[SyncRun]:
    with sessions() as session:
        return list(session.scalars(select(SyncRun).order_by(SyncRun.id)))


def test_each_page_commits_tickets_cursor_and_counts_together(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession]
) -> None:
    add(tiny, 12)
    config = make_config(sessions, tiny)
    seen: list[tuple[int, int, str | None]] = []

    def progress(report: SyncReport) -> None:
        # What another connection sees after each page: the page's rows, its cursor and the run's counts.
        with sessions() as session:
            stored = session.scalar(select(func.count()).select_from(Ticket)) or 0
            cursor = stored_cursor(session, config.id)
            run = session.get(SyncRun, report.run_id)
            assert run is not None
            seen.append((stored, run.items_new, cursor.last_id if cursor else None))

    report = sync(sessions, tiny, config, progress=progress)
    assert report.ok
    assert seen == [(5, 5, "T00005"), (10, 10, "T00010"), (12, 12, "T00012")]
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


def test_cancel_callback_stops_between_pages(tiny: FakeTiny, sessions: sessionmaker[TenantSession]) -> None:
    add(tiny, 12)
    config = make_config(sessions, tiny)
    report = sync(sessions, tiny, config, cancel=lambda: True)
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
    tiny: FakeTiny, sessions: sessionmaker[TenantSession], monkeypatch: pytest.MonkeyPatch
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


class LoopingConnector(TinyConnector):
    """Pagination that never advances: the same page again and again (a real vendor bug class)."""

    spec: ClassVar[ConnectorSpec] = TinyConnector.spec

    async def fetch(self, since: Cursor | None, *, page_size: int | None = None) -> AsyncIterator[Page]:
        first = None
        async for page in super().fetch(since, page_size=page_size):
            first = first or page
            while True:
                yield first


def test_pagination_that_never_advances_is_stopped(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    add(tiny, 8)
    config = make_config(sessions, tiny)
    monkeypatch.setitem(base._REGISTRY, "tiny", LoopingConnector)
    report = sync(sessions, tiny, config)
    assert report.status is SyncStatus.FAILED
    assert report.error is not None and "pagination does not advance" in report.error
    assert report.pages <= 4


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
        thresholds = tenant_thresholds(session)
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
    with sessions() as session:
        assert list(session.scalars(select(Ticket.connector_config_id))) == [None, None, None]
        assert session.scalar(select(func.count()).select_from(SyncRun)) == 0  # runs go with the config

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
    """Migration 0004's ON DELETE SET NULL, checked without the application's own detaching."""
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
