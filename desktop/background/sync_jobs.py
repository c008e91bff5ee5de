"""Connector work that writes the store: syncs on a worker's own event loop, and their schedule.

The app's one rule for async work: **network-only coroutines run on the GUI loop (qasync); work that writes
the store runs on a worker.** The GUI thread's asyncio loop is qasync's (installed by
:func:`desktop.app.run_app`), and a coroutine that only talks to a server (the wizard's connection test and
preview, :mod:`desktop.dialogs.connector_wizard.probes`) is awaited there: it never blocks the window, Cancel
is ``task.cancel()``, and its result is used where it is awaited, on the GUI thread. A sync is different:
:func:`connectors.sync.run_sync` writes SQLite on the thread of the loop it runs on (one transaction per
page), and on the GUI loop a page of upserts would stall the window. So each sync is a
:class:`~desktop.background.tasks.TaskRunner` job that runs ``asyncio.run(...)`` on its pool thread
(:func:`run_coroutine`): the job's loop, its HTTP client and its store writes all live and die on that
thread, and its result reaches the GUI thread the way every job's does. :func:`run_coroutine` supervises the
coroutine and cancels it when the task's cancel event is set, so "Cancel" interrupts a request that is
waiting on the network, not only between pages.

:class:`SyncDispatcher` is the desktop's scheduler, owned by the main window: the scheduling rule of
:mod:`connectors.scheduler` (:func:`~connectors.scheduler.is_due`), driven by a ``QTimer``, with each sync
dispatched to a worker job. Never two syncs of one config at once: a second request joins the first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, TypeVar

import httpx
from PySide6.QtCore import QObject, QTimer, Signal
from sqlalchemy.orm import sessionmaker

from connectors.base import ConnectorSettings
from connectors.configs import get_config, list_configs, settings_for
from connectors.scheduler import is_due, utcnow
from connectors.sync import SyncReport, run_sync
from core.store.tenancy import TenantSession
from desktop.background.tasks import Task, TaskCancelledError, TaskContext, TaskState
from desktop.context import AppContext, TransportFactory

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

T = TypeVar("T")

CANCEL_POLL_S = 0.05
DEFAULT_POLL_MS = 30_000  # how often due syncs are looked for; a config's own frequency is in minutes


def run_coroutine(task: TaskContext, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``make()`` to completion on a fresh event loop in this (worker) thread; cancel it on task cancel.

    Raises :class:`~desktop.background.tasks.TaskCancelledError` when cancelled, which the runner treats as a
    clean stop.
    """

    async def supervise() -> T:
        work = asyncio.ensure_future(make())
        while not work.done():
            await asyncio.wait({work}, timeout=CANCEL_POLL_S)
            if task.cancelled and not work.done():
                work.cancel()
                await asyncio.wait({work})  # let it record its cancellation (a sync run) and close its client
                if not work.cancelled():
                    work.exception()  # it ended otherwise meanwhile; retrieved so asyncio does not log it
                raise TaskCancelledError(task.title)
        if work.cancelled():
            raise TaskCancelledError(task.title)
        return work.result()

    return asyncio.run(supervise())


def transport_for(
    transport_factory: TransportFactory | None, settings: ConnectorSettings
) -> httpx.AsyncBaseTransport | None:
    return transport_factory(settings) if transport_factory is not None else None


def sync_connector(
    task: TaskContext,
    sessions: sessionmaker[TenantSession],
    config_id: int,
    transport_factory: TransportFactory | None,
    actor: str,
) -> SyncReport:
    """One incremental sync on this worker's own loop; the run is recorded whatever happens."""
    transport = None
    if transport_factory is not None:
        with sessions() as session:
            row = get_config(session, config_id)
        transport = transport_for(transport_factory, settings_for(row))

    task.report(0, None, "connecting")
    return run_coroutine(
        task, lambda: run_sync(sessions, config_id, transport=transport, progress=task, actor=actor)
    )


def due_config_ids(
    sessions: sessionmaker[TenantSession], now: datetime, running: frozenset[int]
) -> tuple[int, ...]:
    with sessions() as session:
        configs = list_configs(session, active_only=True)
    return tuple(config.id for config in configs if is_due(config, now, running))


class SyncDispatcher(QObject):
    """Starts due syncs every ``poll_ms`` and on demand, each as a worker job; lives on the GUI thread.

    Signals (GUI thread): ``sync_started(config_id)``, ``sync_progress(config_id, message)``,
    ``sync_finished(SyncReport)`` (connector failures included: see ``report.ok``), ``sync_ended(config_id)``
    (after every end: finished, failed with a bug, or cancelled).
    """

    sync_started = Signal(int)
    sync_progress = Signal(int, str)
    sync_finished = Signal(object)
    sync_ended = Signal(int)

    def __init__(
        self,
        context: AppContext,
        *,
        poll_ms: int = DEFAULT_POLL_MS,
        clock: Clock = utcnow,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._context = context
        runner = context.runner
        self._runner = runner
        self._clock = clock
        self._running: dict[int, Task] = {}
        self._poll_task: Task | None = None
        self._stopped = True
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self.poll)
        runner.task_progress.connect(self._on_task_progress)
        runner.task_finished.connect(self._on_task_ended)
        runner.task_failed.connect(self._on_task_failed)  # bound methods: disconnected if we are deleted

    @property
    def active(self) -> bool:
        return not self._stopped

    @property
    def running(self) -> frozenset[int]:
        return frozenset(config_id for config_id, task in self._running.items() if task.is_active)

    def start(self) -> None:
        """Poll now and every ``poll_ms`` from here on."""
        self._stopped = False
        self._timer.start()
        self.poll()

    def stop(self) -> None:
        """No more polls or syncs; running syncs are cancelled (each is recorded as cancelled)."""
        self._stopped = True
        self._timer.stop()
        if self._poll_task is not None:
            self._poll_task.cancel()
        for task in self._running.values():
            task.cancel()

    def poll(self) -> Task | None:
        if self._stopped or (self._poll_task is not None and self._poll_task.is_active):
            return None
        self._poll_task = self._runner.run(
            due_config_ids,
            self._context.sessions,
            self._clock(),
            self.running,
            title="Loading connector schedules",
            on_done=self._start_due,
        )
        return self._poll_task

    def _start_due(self, config_ids: tuple[int, ...]) -> None:
        if self._stopped:
            return
        for config_id in config_ids:
            self.sync_now(config_id)

    def sync_now(self, config_id: int, name: str | None = None) -> Task:
        """Sync this config now (active or paused); joins a sync of it that is already running."""
        running = self._running.get(config_id)
        if running is not None and running.is_active:
            return running
        task = self._runner.run(
            sync_connector,
            self._context.sessions,
            config_id,
            self._context.transport_factory,
            self._context.reviewer(),
            title=f"Syncing {name}" if name else f"Syncing connector #{config_id}",
            progress=True,
            on_done=self._on_synced,
        )
        self._running[config_id] = task
        self.sync_started.emit(config_id)
        return task

    def _on_synced(self, report: SyncReport) -> None:
        self.sync_finished.emit(report)

    def _config_of(self, task: Task) -> int | None:
        return next((cid for cid, running in self._running.items() if running is task), None)

    def _on_task_progress(self, task: Task) -> None:
        config_id = self._config_of(task)
        if config_id is not None and task.progress is not None:
            self.sync_progress.emit(config_id, task.progress.message)

    def _on_task_failed(self, task: Task, _exc: object, _traceback_text: str) -> None:
        self._on_task_ended(task)  # the window's notification shows the error; a sync's bug is no different

    def _on_task_ended(self, task: Task) -> None:
        config_id = self._config_of(task)
        if config_id is None:
            return
        del self._running[config_id]
        if task.state is TaskState.CANCELLED:
            log.info("sync of connector %s cancelled", config_id)
        self.sync_ended.emit(config_id)
