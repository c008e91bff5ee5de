"""Polls each active connector config every ``sync_frequency_minutes``; "sync now"; pause, resume, stop.

Plain asyncio, no Qt: ``runbook-desk connectors run`` (a server, a systemd unit) runs this class. The desktop
app drives the same rule (:func:`is_due`) from a Qt timer instead (``desktop.background.sync_jobs``), each
sync on a worker's own loop, because the sync engine writes SQLite on its loop's thread and the GUI thread
must not. Tests run this class on a plain loop with an injected clock and sleep. One rule above all: never
two syncs of one config at once (two would race on the cursor): this class never starts a second one, and
across processes (team mode) :func:`~connectors.sync.run_sync` takes the connector's database lock, so a
second scheduler's attempt ends at once in ``on_busy``, not as a failure. A config is due when it never
synced or its last attempt (``last_sync_at``, set by failures too, so a broken connector is retried once per
interval, not hammered) is at least its frequency ago. Pausing clears ``is_active`` in the store, so it
survives a restart; a paused config still syncs on "sync now".

A sync's connector errors are in its report (:func:`connectors.sync.run_sync` records them); anything else it
raises is a bug, handed to ``on_error`` (the app shows a notification) and never lost in a dropped task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Coroutine
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import sessionmaker

from connectors.configs import ConfigRow, list_configs, set_active
from connectors.http import Sleep
from connectors.sync import Clock, SyncReport, run_sync, utcnow
from core.store.locks import SyncBusyError
from core.store.tenancy import TenantSession

log = logging.getLogger(__name__)

SyncFunction = Callable[[int], Coroutine[Any, Any, SyncReport]]
DEFAULT_POLL_SECONDS = 30.0
__all__ = ["Clock", "SyncScheduler", "is_due", "next_run_at", "utcnow"]


def next_run_at(config: ConfigRow) -> datetime | None:
    """When the scheduler next syncs this config; None when it is paused or never synced (due at once)."""
    if not config.is_active or config.last_sync_at is None:
        return None
    return config.last_sync_at + timedelta(minutes=config.sync_frequency_minutes)


def is_due(config: ConfigRow, now: datetime, running: Collection[int] = frozenset()) -> bool:
    """The scheduling rule, shared with the desktop's Qt-timer scheduler: active, not running, and never
    synced or last attempted at least its frequency ago."""
    if not config.is_active or config.id in running:
        return False
    next_run = next_run_at(config)
    return next_run is None or now >= next_run


class SyncScheduler:
    def __init__(
        self,
        sessions: sessionmaker[TenantSession],
        *,
        sync: SyncFunction | None = None,
        clock: Clock = utcnow,
        sleep: Sleep = asyncio.sleep,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        on_report: Callable[[SyncReport], None] | None = None,
        on_error: Callable[[int, BaseException], None] | None = None,
        on_busy: Callable[[int, str], None] | None = None,
    ) -> None:
        self._sessions = sessions
        # The sync stamps its times with the scheduler's clock, so "due" compares times of one clock.
        self._sync = sync or (lambda config_id: run_sync(sessions, config_id, clock=clock))
        self._clock = clock
        self._sleep = sleep
        self._poll_seconds = poll_seconds
        self._on_report = on_report
        self._on_error = on_error
        self._on_busy = on_busy
        self._running: dict[int, asyncio.Task[SyncReport]] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False

    # --- life cycle -------------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Begin polling on the running loop; returns the polling task."""
        if self._loop_task is None or self._loop_task.done():
            self._stopping = False
            self._loop_task = asyncio.get_running_loop().create_task(
                self._poll_forever(), name="sync-scheduler"
            )
        return self._loop_task

    async def stop(self) -> None:
        """Stop polling and cancel running syncs (each is recorded as cancelled, its stored pages kept)."""
        self._stopping = True
        tasks = [t for t in (self._loop_task, *self._running.values()) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("sync scheduler: a task failed while stopping: %r", result)
        self._loop_task = None

    @property
    def running(self) -> frozenset[int]:
        return frozenset(cid for cid, task in self._running.items() if not task.done())

    async def wait_for_running(self) -> None:
        """Return once no sync is running (those started meanwhile included); their errors stay theirs."""
        while tasks := [task for task in self._running.values() if not task.done()]:
            await asyncio.wait(tasks)

    # --- what the UI calls ------------------------------------------------------------------------------

    async def sync_now(self, config_id: int) -> SyncReport:
        """Sync this config now, active or paused; joins a sync of it already running instead of a second."""
        return await asyncio.shield(self._launch(config_id))

    def pause(self, config_id: int) -> ConfigRow:
        """No more scheduled syncs (a running one finishes); remembered in the store."""
        return set_active(self._sessions, config_id, False)

    def resume(self, config_id: int) -> ConfigRow:
        return set_active(self._sessions, config_id, True)

    # --- polling ----------------------------------------------------------------------------------------

    def due(self, config: ConfigRow, now: datetime) -> bool:
        return is_due(config, now, self.running)

    def tick(self) -> list[asyncio.Task[SyncReport]]:
        """Start every due sync; returns the tasks started (tests await them)."""
        now = self._clock()
        with self._sessions() as session:
            configs = list_configs(session, active_only=True)
        return [self._launch(config.id) for config in configs if self.due(config, now)]

    async def _poll_forever(self) -> None:
        while not self._stopping:
            self.tick()
            await self._sleep(self._poll_seconds)

    def _launch(self, config_id: int) -> asyncio.Task[SyncReport]:
        task = self._running.get(config_id)
        if task is not None and not task.done():
            return task
        task = asyncio.get_running_loop().create_task(self._sync(config_id), name=f"sync-{config_id}")
        self._running[config_id] = task
        task.add_done_callback(lambda done: self._finished(config_id, done))
        return task

    def _finished(self, config_id: int, task: asyncio.Task[SyncReport]) -> None:
        if self._running.get(config_id) is task:
            del self._running[config_id]
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, SyncBusyError):  # another scheduler or desktop has it: it is not a failure
            log.info("sync of connector %s skipped: %s", config_id, error)
            if self._on_busy is not None:
                self._on_busy(config_id, str(error))
            return
        if error is not None:
            log.error("sync of connector %s failed unexpectedly: %r", config_id, error)
            if self._on_error is not None:
                self._on_error(config_id, error)
            return
        if self._on_report is not None:
            self._on_report(task.result())
