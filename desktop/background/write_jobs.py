"""Writes to ticketing systems from the desktop: draining the write-back queue, creating an incident's ticket.

Both write the store, so (the rule of :mod:`desktop.background.sync_jobs`) each runs as a
:class:`~desktop.background.tasks.TaskRunner` job with its own event loop on the pool thread
(:func:`~desktop.background.sync_jobs.run_coroutine`), cancellable while a request waits on the network.
Rows out, never ORM objects.

:class:`WritebackDrainer` is the window's one drainer: :meth:`~WritebackDrainer.drain_soon` after a review
decision and on every sync tick starts a drain unless one is running (then it runs once more after it, so an
approval made during a drain is not left waiting for the next tick). A drain with nothing due costs one
query; posting failures are the rows' own state (the ticket's status widget shows them), not errors.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal
from sqlalchemy.orm import sessionmaker

from connectors.base import CreatedTicket
from connectors.configs import get_config, settings_for
from connectors.writes import WritebackReport, create_incident_ticket, drain_writebacks
from core.store.tenancy import TenantSession
from core.workflow.writeback import WritebackRow, retry_writeback, writebacks_of
from desktop.background.sync_jobs import run_coroutine
from desktop.background.tasks import Task, TaskContext
from desktop.context import AppContext, TransportFactory

log = logging.getLogger(__name__)

DRAIN_LIMIT = 50


def drain_job(
    task: TaskContext,
    sessions: sessionmaker[TenantSession],
    transport_factory: TransportFactory | None,
    actor: str,
) -> WritebackReport:
    """Post the due write-backs (one batch) on this worker's own loop."""
    task.report(0, None, "posting approved runbooks to their tickets")
    return run_coroutine(
        task,
        lambda: drain_writebacks(
            sessions, limit=DRAIN_LIMIT, actor=actor, progress=task, transport_factory=transport_factory
        ),
    )


def create_incident_job(
    task: TaskContext,
    sessions: sessionmaker[TenantSession],
    incident_id: int,
    config_id: int,
    transport_factory: TransportFactory | None,
    actor: str,
) -> CreatedTicket:
    """Create the incident's ticket through the config's connector (once: connectors.writes guards it)."""
    transport = None
    if transport_factory is not None:
        with sessions() as session:
            transport = transport_factory(settings_for(get_config(session, config_id)))
    task.report(0, None, "creating the ticket")
    return run_coroutine(
        task,
        lambda: create_incident_ticket(sessions, incident_id, config_id, actor=actor, transport=transport),
    )


def load_writebacks(sessions: sessionmaker[TenantSession], ticket_id: int) -> tuple[WritebackRow, ...]:
    with sessions() as session:
        return tuple(writebacks_of(session, ticket_id))


def retry_job(sessions: sessionmaker[TenantSession], writeback_id: int, actor: str) -> WritebackRow:
    with sessions.begin() as session:
        return retry_writeback(session, writeback_id, actor)


class WritebackDrainer(QObject):
    """Starts drains on demand, never two at once; lives on the GUI thread.

    Signals: ``drained(WritebackReport)`` after each drain (the status widgets reload on it).
    """

    drained = Signal(object)

    def __init__(self, context: AppContext, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._context = context
        self._task: Task | None = None
        self._again = False
        self._stopped = False

    @property
    def running(self) -> bool:
        return self._task is not None and self._task.is_active

    def drain_soon(self, *_ignored: object) -> Task | None:
        """Drain now, or once more after the running drain; takes (and ignores) a signal's arguments."""
        if self._stopped:
            return None
        if self.running:
            self._again = True
            return self._task
        self._again = False
        self._task = self._context.runner.run(
            drain_job,
            self._context.sessions,
            self._context.transport_factory,
            self._context.reviewer(),
            title="Posting approved runbooks",
            progress=True,
            on_done=self._on_drained,
            on_error=self._on_failed,
        )
        return self._task

    def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()

    def _on_drained(self, report: WritebackReport) -> None:
        if report.written or report.failed:
            log.info("%s", report.headline())
        self.drained.emit(report)
        self._after()

    def _on_failed(self, _exc: Exception, _traceback_text: str) -> None:
        # A bug, not a failed post (those are the rows' state): the window notifies every failed task.
        self._after()

    def _after(self) -> None:
        self._task = None
        if self._again:
            self.drain_soon()
