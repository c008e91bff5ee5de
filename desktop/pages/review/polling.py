"""The review page's watch on other analysts: a change token polled on a worker (team mode, issue 17).

Polling, not LISTEN/NOTIFY (:mod:`core.workflow.changes` says why): every :data:`POLL_INTERVAL_MS` the
poller asks, on the page's :class:`~desktop.background.tasks.TaskRunner`, whether the tenant's change token
moved and whose changes moved it. The query is two index lookups (well under a millisecond on SQLite), but
on a team's server it is a network round trip that a stalled server could stretch to seconds, so it never
runs on the GUI thread. Only others' changes are reported (:attr:`QueuePoller.changed`); the page's own
decisions are already on screen.

While the page is busy (a queue load or a decision in flight) a result is not taken: the token stays where
it was and the next tick reports the same changes again, so none is lost behind a reload.

A server that cannot be reached is told once (:attr:`QueuePoller.failed`), not every five seconds, and the
poll goes on: the next success clears it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer, Signal
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from core.store.models import TeamRole
from core.store.team import current_login, has_role
from core.store.tenancy import TenantSession
from core.workflow.changes import POLL_INTERVAL_S, ChangeToken, QueueChanges, change_token, changes_since
from core.workflow.review import QueueFilters
from desktop.background.review_jobs import QueueLoad, load_queue
from desktop.background.tasks import Task, TaskRunner

log = logging.getLogger(__name__)

POLL_INTERVAL_MS = int(POLL_INTERVAL_S * 1000)


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """A queue load with where the store stood before it (the poll's starting point) and the login's
    right to decide (a viewer's page turns the decision actions off)."""

    token: ChangeToken
    can_decide: bool
    load: QueueLoad


def load_queue_snapshot(sessions: sessionmaker[TenantSession], filters: QueueFilters) -> QueueSnapshot:
    """The token is read *before* the queue: a change landing in between is reported by the next poll
    (a spare reload at worst), never missed."""
    with sessions() as session:
        token = change_token(session)
        can_decide = has_role(session, TeamRole.ANALYST)
    return QueueSnapshot(token, can_decide, load_queue(sessions, filters))


@dataclass(frozen=True, slots=True)
class PollFailure:
    message: str


def poll_changes(
    sessions: sessionmaker[TenantSession], since: ChangeToken, our_actor: str
) -> QueueChanges | PollFailure:
    """Others' changes since ``since``; an unreachable server is a value, reported once by the poller."""
    try:
        with sessions() as session:
            return changes_since(session, since, our_login=current_login(session), our_actor=our_actor)
    except OperationalError as exc:  # the server is down or the network gone; the next tick tries again
        return PollFailure(str(exc.orig) if exc.orig is not None else str(exc))


class QueuePoller(QObject):
    """Polls while started; emits :attr:`changed` with others' :class:`QueueChanges`."""

    changed = Signal(object)  # QueueChanges: others decided, or tickets were (re)analysed
    failed = Signal(str)  # the store could not be reached (once per outage)

    def __init__(
        self,
        runner: TaskRunner,
        sessions: sessionmaker[TenantSession],
        our_actor: Callable[[], str],
        busy: Callable[[], bool],
        interval_ms: int = POLL_INTERVAL_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._runner = runner
        self._sessions = sessions
        self._our_actor = our_actor
        self._busy = busy
        self._task: Task | None = None
        self._failing = False
        self.token: ChangeToken | None = None  # None until the first queue load says where the store stood
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.poll)

    def start(self) -> None:
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        if self._task is not None and self._task.is_active:
            self._task.cancel()

    def poll(self) -> None:
        if self.token is None or (self._task is not None and self._task.is_active) or self._busy():
            return
        since = self.token
        self._task = self._runner.run(
            poll_changes,
            self._sessions,
            since,
            self._our_actor(),
            title="Checking for others' decisions",
            on_done=lambda result: self._polled(since, result),
            quiet=True,
        )

    def _polled(self, since: ChangeToken, result: QueueChanges | PollFailure) -> None:
        if isinstance(result, PollFailure):
            if not self._failing:
                self._failing = True
                log.warning("could not check the review queue for others' changes: %s", result.message)
                self.failed.emit(f"Could not check for others' decisions: {result.message}")
            return
        self._failing = False
        if self.token != since or self._busy():
            return  # a queue load set a newer token meanwhile, or one is running: the next tick decides
        if result.queue_changed:
            self.changed.emit(result)  # the page reloads; its load sets the token
        else:
            self.token = result.token  # only our own changes, or nothing the queue shows
