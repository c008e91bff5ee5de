"""The scheduler with a fake clock and an injected sleep: due configs sync, never twice at once; sync now,
pause, resume, stop. Nothing here waits on real time: the clock is set, the sleep advances it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import sessionmaker

from connectors.configs import ConfigRow, create_config, get_config
from connectors.scheduler import SyncScheduler
from connectors.sync import SyncReport, run_sync
from connectors.testing.fake_system import InjectedFailure
from connectors.testing.standard_suite import SleepRecorder
from core.store.models import SyncStatus
from core.store.tenancy import TenantSession
from tests.connectors.tiny_connector import GOOD_TOKEN, FakeTiny

START = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = START

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
    """A scheduler whose syncs are real runs against the fake, stamped with the scheduler's clock."""

    async def sync(config_id: int) -> SyncReport:
        calls.append(config_id)
        return await run_sync(
            sessions, config_id, transport=tiny.transport(), sleep=SleepRecorder(), clock=clock
        )

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
        clock.now = START + timedelta(minutes=4, seconds=59)
        assert scheduler.tick() == []
        clock.now = START + timedelta(minutes=5)  # exactly the frequency after the last attempt: due
        await asyncio.gather(*scheduler.tick())
        assert calls.count(fast.id) == 2 and calls.count(slow.id) == 1

    asyncio.run(scenario())
    with sessions() as session:
        assert get_config(session, fast.id).last_sync_at == START + timedelta(minutes=5)


def test_never_two_syncs_of_one_config_at_once(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession], calls: list[int]
) -> None:
    config = make_config(sessions, "one")

    async def scenario() -> None:
        gate = asyncio.Event()
        started = asyncio.Event()
        running = 0
        most = 0

        async def slow_sync(config_id: int) -> SyncReport:
            nonlocal running, most
            running += 1
            most = max(most, running)
            calls.append(config_id)
            started.set()
            await gate.wait()
            running -= 1
            return await run_sync(sessions, config_id, transport=tiny.transport())

        scheduler = SyncScheduler(sessions, sync=slow_sync, clock=FakeClock())
        first = scheduler.tick()
        now = asyncio.ensure_future(scheduler.sync_now(config.id))
        await started.wait()  # the first sync is waiting at the gate; "sync now" has asked meanwhile
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


def test_the_polling_loop_syncs_each_time_the_frequency_has_passed_until_stopped(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession], calls: list[int]
) -> None:
    config = make_config(sessions, "loop", minutes=1)
    clock = FakeClock()
    reports: list[SyncReport] = []
    polled_at: list[datetime] = []

    async def scenario() -> None:
        enough = asyncio.Event()

        async def sleep(seconds: float) -> None:
            """The poll interval, passed on the fake clock once the syncs this poll started are done."""
            await scheduler.wait_for_running()
            polled_at.append(clock.now)
            if len(polled_at) == 6:
                enough.set()
                await asyncio.Event().wait()  # parked here until stop() cancels the loop
            clock.now += timedelta(seconds=seconds)

        scheduler = scheduler_for(
            sessions, tiny, clock, calls, sleep=sleep, poll_seconds=30, on_report=reports.append
        )
        scheduler.start()
        await enough.wait()
        await scheduler.stop()

    asyncio.run(scenario())
    assert polled_at == [START + timedelta(seconds=30 * n) for n in range(6)]
    # Polls at 0, 30, ... 150 s; with a 1-minute frequency the syncs are at 0, 60 and 120 s.
    assert calls == [config.id] * 3
    assert [r.ok for r in reports] == [True, True, True]
    with sessions() as session:
        assert get_config(session, config.id).last_sync_at == START + timedelta(seconds=120)


def test_an_unexpected_error_reaches_on_error(
    sessions: sessionmaker[TenantSession], tiny: FakeTiny, caplog: pytest.LogCaptureFixture
) -> None:
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

    asyncio.run(scenario())
    assert [(c, str(e)) for c, e in errors] == [(config.id, "bug")]
    assert [r.getMessage() for r in caplog.records] == [
        f"sync of connector {config.id} failed unexpectedly: RuntimeError('bug')"
    ]


def test_stop_cancels_a_running_sync_and_records_it(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession]
) -> None:
    config = make_config(sessions, "stopped")
    for number in range(1, 13):
        tiny.add_ticket(tiny.new_ticket(number, datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=number)))

    async def scenario() -> None:
        waiting = asyncio.Event()

        async def hanging_sleep(seconds: float) -> None:
            waiting.set()
            await asyncio.Event().wait()  # a 429 wait that never ends

        tiny.fail_next(InjectedFailure(429))

        async def sync(config_id: int) -> SyncReport:
            return await run_sync(sessions, config_id, transport=tiny.transport(), sleep=hanging_sleep)

        scheduler = SyncScheduler(sessions, sync=sync, clock=FakeClock())
        scheduler.tick()
        await waiting.wait()  # the sync is inside its retry wait
        assert scheduler.running == {config.id}
        await scheduler.stop()
        assert scheduler.running == frozenset()

    asyncio.run(scenario())
    with sessions() as session:
        row = get_config(session, config.id)
    assert row.consecutive_failures == 0 and row.last_sync_at is not None
