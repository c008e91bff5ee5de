"""The scheduler with a fake clock: due configs sync, never twice at once; sync now, pause, resume, stop."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import sessionmaker

from connectors.configs import ConfigRow, create_config, get_config
from connectors.scheduler import SyncScheduler
from connectors.sync import SyncReport, run_sync
from core.store.models import SyncStatus
from core.store.tenancy import TenantSession
from tests.connectors.fake_base import InjectedFailure
from tests.connectors.standard_suite import SleepRecorder
from tests.connectors.tiny_connector import GOOD_TOKEN, FakeTiny


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def make_config(sessions: sessionmaker[TenantSession], name: str, minutes: int = 5) -> ConfigRow:
    return create_config(
        sessions,
        connector_type="tiny",
        name=name,
        base_url=FakeTiny.base_url,
        secrets={"token": GOOD_TOKEN},
        sync_frequency_minutes=minutes,
        actor="test",
    )


@pytest.fixture
def calls() -> list[int]:
    return []


def scheduler_for(
    sessions: sessionmaker[TenantSession],
    tiny: FakeTiny,
    clock: FakeClock,
    calls: list[int],
    **kwargs: object,
) -> SyncScheduler:
    async def sync(config_id: int) -> SyncReport:
        calls.append(config_id)
        return await run_sync(sessions, config_id, transport=tiny.transport(), sleep=SleepRecorder())

    return SyncScheduler(sessions, sync=sync, clock=clock, **kwargs)  # type: ignore[arg-type]


def test_configs_sync_when_due_and_not_before(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession], calls: list[int]
) -> None:
    clock = FakeClock()
    fast = make_config(sessions, "fast", minutes=5)
    slow = make_config(sessions, "slow", minutes=60)

    async def scenario() -> None:
        scheduler = scheduler_for(sessions, tiny, clock, calls)
        await asyncio.gather(*scheduler.tick())  # never synced: both due
        assert sorted(calls) == sorted([fast.id, slow.id])
        clock.now = datetime.now(UTC) + timedelta(minutes=4)
        assert scheduler.tick() == []
        clock.now = datetime.now(UTC) + timedelta(minutes=6)
        await asyncio.gather(*scheduler.tick())
        assert calls.count(fast.id) == 2 and calls.count(slow.id) == 1

    asyncio.run(scenario())


def test_never_two_syncs_of_one_config_at_once(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession], calls: list[int]
) -> None:
    config = make_config(sessions, "one")

    async def scenario() -> None:
        gate = asyncio.Event()
        running = 0
        most = 0

        async def slow_sync(config_id: int) -> SyncReport:
            nonlocal running, most
            running += 1
            most = max(most, running)
            calls.append(config_id)
            await gate.wait()
            running -= 1
            return await run_sync(sessions, config_id, transport=tiny.transport())

        scheduler = SyncScheduler(sessions, sync=slow_sync, clock=FakeClock())
        first = scheduler.tick()
        now = asyncio.ensure_future(scheduler.sync_now(config.id))
        await asyncio.sleep(0)
        assert scheduler.tick() == []  # running: not due again
        assert scheduler.running == {config.id}
        gate.set()
        await asyncio.gather(*first)
        report = await now
        assert report.ok
        assert calls == [config.id] and most == 1  # "sync now" joined the running sync

    asyncio.run(scenario())


def test_pause_resume_and_sync_now_of_a_paused_config(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession], calls: list[int]
) -> None:
    config = make_config(sessions, "paused")

    async def scenario() -> None:
        scheduler = scheduler_for(sessions, tiny, FakeClock(), calls)
        assert scheduler.pause(config.id).is_active is False
        assert scheduler.tick() == []
        report = await scheduler.sync_now(config.id)
        assert report.status is SyncStatus.SUCCEEDED
        assert scheduler.resume(config.id).is_active is True
        with sessions() as session:
            assert get_config(session, config.id).is_active

    asyncio.run(scenario())
    assert calls == [config.id]


def test_the_polling_loop_runs_until_stopped_and_reports(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession], calls: list[int]
) -> None:
    config = make_config(sessions, "loop", minutes=1)
    clock = FakeClock()
    reports: list[SyncReport] = []

    async def scenario() -> None:
        ticks = 0

        async def sleep(seconds: float) -> None:
            nonlocal ticks
            ticks += 1
            clock.now += timedelta(seconds=seconds)
            await asyncio.sleep(0.01)  # let the started syncs run

        scheduler = scheduler_for(
            sessions, tiny, clock, calls, sleep=sleep, poll_seconds=30, on_report=reports.append
        )
        scheduler.start()
        while ticks < 6:
            await asyncio.sleep(0.01)
        await scheduler.stop()

    asyncio.run(scenario())
    # Synced at start, then due once a minute of fake time later (every 2 ticks of 30 s).
    assert 2 <= calls.count(config.id) <= 4
    assert reports and all(r.ok for r in reports)


def test_an_unexpected_error_reaches_on_error(sessions: sessionmaker[TenantSession], tiny: FakeTiny) -> None:
    config = make_config(sessions, "buggy")
    errors: list[tuple[int, BaseException]] = []

    async def broken(config_id: int) -> SyncReport:
        raise RuntimeError("bug")

    async def scenario() -> None:
        scheduler = SyncScheduler(
            sessions, sync=broken, clock=FakeClock(), on_error=lambda c, e: errors.append((c, e))
        )
        tasks = scheduler.tick()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)

    asyncio.run(scenario())
    assert [(c, str(e)) for c, e in errors] == [(config.id, "bug")]


def test_stop_cancels_a_running_sync_and_records_it(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession]
) -> None:
    config = make_config(sessions, "stopped")
    for number in range(1, 13):
        tiny.add_ticket(tiny.new_ticket(number, datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=number)))

    async def scenario() -> None:
        async def hanging_sleep(seconds: float) -> None:
            await asyncio.Event().wait()  # a 429 wait that never ends

        tiny.fail_next(InjectedFailure(429))

        async def sync(config_id: int) -> SyncReport:
            return await run_sync(sessions, config_id, transport=tiny.transport(), sleep=hanging_sleep)

        scheduler = SyncScheduler(sessions, sync=sync, clock=FakeClock())
        scheduler.tick()
        await asyncio.sleep(0.05)
        assert scheduler.running == {config.id}
        await scheduler.stop()
        assert scheduler.running == frozenset()

    asyncio.run(scenario())
    with sessions() as session:
        row = get_config(session, config.id)
    assert row.consecutive_failures == 0 and row.last_sync_at is not None
