"""The one way the desktop app runs work off the GUI thread.

Modelled on picard's ``run_task`` (a function on a ``QThreadPool``, its result or error posted back to the GUI
thread) and napari's ``thread_worker`` (progress and cancel for long jobs)::

    task = runner.run(load_tickets, sessions, "vpn", title="Loading tickets", on_done=show, on_error=warn)
    task.cancel()

* ``fn`` runs on a pool thread. It gets plain arguments and returns plain, immutable data (row tuples). It
  opens its own database session: a Session is never shared between threads, and ORM objects never reach Qt.
* With ``progress=True`` the function receives a :class:`TaskContext` first; it calls
  ``context.report(done, total, message)`` and checks ``context.cancelled`` (or calls
  ``context.raise_if_cancelled()``) between steps; ``context.wait_for_cancel(seconds)`` is a sleep that
  wakes on cancel. Cancelling is cooperative: Python cannot stop a thread.
* ``on_done(result)`` and ``on_error(exception, traceback_text)`` run on the GUI thread, as do the runner's
  ``task_*`` signals (a status bar listens to those). ``run`` is generic: ``on_done`` is typed with what
  ``fn`` returns, so a callback never narrows ``object`` again. A cancelled task's result is dropped:
  ``on_done`` is not called. An error is never swallowed: it reaches ``on_error`` and ``task_failed`` (the
  window turns every ``task_failed`` into a notification); without an ``on_error``, or once the runner is
  shut down, it is logged as an error too.
* ``TaskContext`` is a :class:`core.progress.Progress`, so core and connector functions take it as their
  ``progress``; when they stop with :class:`core.errors.OperationCancelledError` (``raise_if_cancelled``)
  the runner records a clean cancel, not a failure.

How results reach the GUI thread: the worker emits signals of a small bridge QObject that lives in the GUI
thread; they are connected with ``Qt.QueuedConnection`` to the runner's slots, so Qt posts each emission as an
event to the GUI thread's event loop. Workers never call widgets, and nothing here calls ``sys.exit``.

Why not subclass ``QThread`` per job: a thread per job costs a thread start and leaves its lifetime to us
(destroying a running ``QThread`` aborts the process); the ``QThread`` object lives in the thread that created
it, so slots defined on the subclass run on the GUI thread, not in ``run()`` - the classic source of "the
worker froze the UI" bugs; and nothing caps how many run at once. A ``QThreadPool`` reuses a bounded set of
threads, queues the rest and lets shutdown wait for all of them, and the job itself stays a plain function
that tests can call without Qt.

Coroutines follow the app's one rule: network-only coroutines run on the GUI loop (qasync); work that writes
the store runs on a worker. So a sync is a job here, run to completion on its own event loop in its worker
thread (:func:`desktop.background.sync_jobs.run_coroutine`), while the wizard's connection test and preview
are tasks on the GUI thread's qasync loop (:mod:`desktop.dialogs.connector_wizard.probes`), not jobs.
"""

from __future__ import annotations

import enum
import itertools
import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from PySide6.QtCore import QObject, QRunnable, Qt, QThread, QThreadPool, Signal, Slot

from core.errors import OperationCancelledError

log = logging.getLogger(__name__)

# A loop that reports per row would flood the GUI event queue; a status bar needs ~20 updates a second.
PROGRESS_INTERVAL_S = 0.05

T = TypeVar("T")
ErrorCallback = Callable[[Exception, str], None]


class TaskState(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TaskCancelledError(OperationCancelledError):
    """Raised in a task by :meth:`TaskContext.raise_if_cancelled`; the runner treats it (and any
    :class:`~core.errors.OperationCancelledError`) as a clean stop."""


@dataclass(frozen=True, slots=True)
class TaskProgress:
    done: int
    total: int | None  # None: the task does not know how much work there is (a busy indicator)
    message: str


class Task:
    """What the GUI holds of one submitted job. Read and changed on the GUI thread only; ``cancel`` is safe
    from anywhere because it only sets a ``threading.Event``."""

    def __init__(
        self, task_id: int, title: str, cancel_event: threading.Event, *, quiet: bool = False
    ) -> None:
        self.id = task_id
        self.title = title
        # A routine check the analyst did not ask for (the Review page's poll every 5 s): the status bar
        # does not show it, or it would flash there all day.
        self.quiet = quiet
        self.state = TaskState.QUEUED
        self.progress: TaskProgress | None = None
        self._cancel_event = cancel_event

    def cancel(self) -> None:
        self._cancel_event.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel_event.is_set()

    @property
    def is_active(self) -> bool:
        return self.state in (TaskState.QUEUED, TaskState.RUNNING)

    def __repr__(self) -> str:
        return f"<Task {self.id} {self.title!r} {self.state.value}>"


class TaskContext:
    """Handed to a ``progress=True`` task on its worker thread: report progress, notice cancellation."""

    def __init__(self, task_id: int, title: str, cancel_event: threading.Event, bridge: _Bridge) -> None:
        self.task_id = task_id
        self.title = title
        self._cancel_event = cancel_event
        self._bridge = bridge
        self._last_report = 0.0
        self._last_message: str | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancel_event.is_set()

    def wait_for_cancel(self, timeout_s: float | None = None) -> bool:
        """Sleep that wakes early on cancel (a retry back-off, a poll interval); True if cancelled."""
        return self._cancel_event.wait(timeout_s)

    def raise_if_cancelled(self) -> None:
        if self._cancel_event.is_set():
            raise TaskCancelledError(self.title)

    def report(self, done: int, total: int | None = None, message: str = "") -> None:
        """Throttled to one update per ``PROGRESS_INTERVAL_S``; the final step (``done >= total``) and a new
        phase (another message) always get through: a dropped "updating the indexes" once left "loading the
        matching model" on screen for the whole 15 s of a first indexing (issue 16, item 3)."""
        now = time.monotonic()
        is_final = total is not None and done >= total
        # A phase is a message without a count, or the first of a counted run ("indexed 0 of 1,146");
        # "indexed 128 of 1,146" after "indexed 64 of 1,146" is the same phase, still throttled.
        new_phase = message != self._last_message and (total is None or done == 0)
        if not (is_final or new_phase) and now - self._last_report < PROGRESS_INTERVAL_S:
            return
        self._last_report = now
        self._last_message = message
        self._bridge.progressed.emit(self.task_id, TaskProgress(done, total, message))


class _Bridge(QObject):
    """Lives in the GUI thread; workers emit its signals, Qt queues them to the runner's slots."""

    began = Signal(int)
    progressed = Signal(int, object)
    succeeded = Signal(int, object)
    failed = Signal(int, object, str)
    cancelled = Signal(int)


class _TaskRunnable(QRunnable):
    def __init__(
        self,
        task_id: int,
        fn: Callable[..., object],
        args: tuple[object, ...],
        context: TaskContext | None,
        cancel_event: threading.Event,
        bridge: _Bridge,
    ) -> None:
        super().__init__()
        self._task_id = task_id
        self._fn = fn
        self._args = args
        self._context = context
        self._cancel_event = cancel_event
        self._bridge = bridge

    def run(self) -> None:  # on a pool thread: touch nothing but the bridge's signals
        if self._cancel_event.is_set():  # cancelled while still queued
            self._bridge.cancelled.emit(self._task_id)
            return
        self._bridge.began.emit(self._task_id)
        call_args = self._args if self._context is None else (self._context, *self._args)
        try:
            result = self._fn(*call_args)
        except OperationCancelledError:
            self._bridge.cancelled.emit(self._task_id)
        # This is the boundary where a worker's error changes threads: it is not swallowed but handed, with
        # its traceback, to the GUI thread (on_error / task_failed / the log). BaseException (SystemExit,
        # KeyboardInterrupt) is deliberately not caught.
        except Exception as exc:  # noqa: BLE001
            self._bridge.failed.emit(self._task_id, exc, traceback.format_exc())
        else:
            self._bridge.succeeded.emit(self._task_id, result)
        finally:
            # Drop references to arguments and results early; the pool may keep this object a while.
            self._fn = _noop
            self._args = ()
            self._context = None


def _noop(*_args: object) -> None:
    return None


@dataclass(slots=True)
class _Record:
    task: Task
    # The result's type was checked where run() was called; here it is only passed through.
    on_done: Callable[[Any], None] | None
    on_error: ErrorCallback | None


class TaskRunner(QObject):
    """Runs plain functions on its own ``QThreadPool``; create it on the GUI thread.

    Signals (all emitted on the GUI thread):

    * ``task_started(Task)`` - when :meth:`run` accepts the task.
    * ``task_progress(Task)`` - ``task.progress`` holds the latest :class:`TaskProgress`.
    * ``task_finished(Task)`` - the task ended without an error: ``task.state`` is ``SUCCEEDED`` or
      ``CANCELLED``. Emitted after ``on_done``.
    * ``task_failed(Task, Exception, str)`` - the exception and its formatted traceback. Emitted after
      ``on_error``.
    """

    task_started = Signal(object)
    task_progress = Signal(object)
    task_finished = Signal(object)
    task_failed = Signal(object, object, str)

    def __init__(self, parent: QObject | None = None, *, max_threads: int | None = None) -> None:
        super().__init__(parent)
        # Our own pool, not QThreadPool.globalInstance(): shutdown waits for our jobs only, and each test's
        # runner is independent.
        self._pool = QThreadPool(self)
        if max_threads is not None:
            self._pool.setMaxThreadCount(max_threads)
        self._ids = itertools.count(1)
        self._records: dict[int, _Record] = {}
        self._shut_down = False
        self._bridge = _Bridge(self)
        queued = Qt.ConnectionType.QueuedConnection
        self._bridge.began.connect(self._on_began, queued)
        self._bridge.progressed.connect(self._on_progressed, queued)
        self._bridge.succeeded.connect(self._on_succeeded, queued)
        self._bridge.failed.connect(self._on_failed, queued)
        self._bridge.cancelled.connect(self._on_cancelled, queued)

    def run(
        self,
        fn: Callable[..., T],
        *args: object,
        title: str | None = None,
        on_done: Callable[[T], None] | None = None,
        on_error: ErrorCallback | None = None,
        progress: bool = False,
        quiet: bool = False,
    ) -> Task:
        """Queue ``fn(*args)`` (``fn(context, *args)`` with ``progress=True``); returns its :class:`Task`.
        ``quiet``: a routine background check, not shown in the status bar (:attr:`Task.quiet`)."""
        if QThread.currentThread() is not self.thread():
            raise RuntimeError("TaskRunner.run must be called from the thread the runner lives in (the GUI)")
        if self._shut_down:
            raise RuntimeError("TaskRunner has been shut down")
        task_id = next(self._ids)
        task_title = title or str(getattr(fn, "__name__", "task"))
        cancel_event = threading.Event()
        task = Task(task_id, task_title, cancel_event, quiet=quiet)
        context = TaskContext(task_id, task_title, cancel_event, self._bridge) if progress else None
        self._records[task_id] = _Record(task, on_done, on_error)
        self.task_started.emit(task)
        self._pool.start(_TaskRunnable(task_id, fn, args, context, cancel_event, self._bridge))
        return task

    def active_tasks(self) -> tuple[Task, ...]:
        return tuple(record.task for record in self._records.values())

    def cancel(self, task_id: int) -> None:
        record = self._records.get(task_id)
        if record is not None:
            record.task.cancel()

    def cancel_all(self) -> None:
        for record in self._records.values():
            record.task.cancel()

    def wait_for_done(self, timeout_ms: int = -1) -> bool:
        """Block until every worker returned (their results are still queued to the GUI thread)."""
        return self._pool.waitForDone(timeout_ms)

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel everything and wait for the workers; after this no ``on_done`` runs and ``run`` refuses.

        Call it before the runner's owner is destroyed: a worker must not emit into a deleted bridge.
        """
        self._shut_down = True
        self.cancel_all()
        finished = self._pool.waitForDone(timeout_ms)
        if not finished:
            log.error("background tasks still running after %d ms: %s", timeout_ms, self.active_tasks())
        return finished

    # --- GUI-thread side -------------------------------------------------------------------------------

    @Slot(int)
    def _on_began(self, task_id: int) -> None:
        record = self._records.get(task_id)
        if record is not None and record.task.state is TaskState.QUEUED:
            record.task.state = TaskState.RUNNING

    @Slot(int, object)
    def _on_progressed(self, task_id: int, task_progress: TaskProgress) -> None:
        record = self._records.get(task_id)
        if record is None or not record.task.is_active:
            return
        record.task.progress = task_progress
        self.task_progress.emit(record.task)

    @Slot(int, object)
    def _on_succeeded(self, task_id: int, result: object) -> None:
        record = self._records.pop(task_id, None)
        if record is None:
            return
        task = record.task
        if task.cancel_requested:  # cancelled after the work was done but before it was delivered
            task.state = TaskState.CANCELLED
            self.task_finished.emit(task)
            return
        task.state = TaskState.SUCCEEDED
        try:
            if record.on_done is not None:
                record.on_done(result)
        finally:
            self.task_finished.emit(task)

    @Slot(int, object, str)
    def _on_failed(self, task_id: int, exc: Exception, traceback_text: str) -> None:
        record = self._records.pop(task_id, None)
        if record is None:
            return
        task = record.task
        task.state = TaskState.FAILED
        try:
            if record.on_error is not None and not self._shut_down:
                record.on_error(exc, traceback_text)
            else:
                # Nobody (left) to show it: the log is the notification of last resort.
                log.error("background task %r failed:\n%s", task.title, traceback_text)
        finally:
            self.task_failed.emit(task, exc, traceback_text)

    @Slot(int)
    def _on_cancelled(self, task_id: int) -> None:
        record = self._records.pop(task_id, None)
        if record is None:
            return
        record.task.state = TaskState.CANCELLED
        self.task_finished.emit(record.task)
