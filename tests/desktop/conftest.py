"""Desktop fixtures: the GUI thread's asyncio loop, as the app has it."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator

import pytest
import qasync
from PySide6.QtWidgets import QApplication

TASK_UNWIND_S = 5.0


@pytest.fixture(autouse=True)
def _collect_widgets_on_the_gui_thread() -> Iterator[None]:
    """A test's windows and their QTimers become garbage when it ends; collect them here, on the GUI thread.

    Left to chance, Python's cyclic GC may run on a TaskRunner worker thread during a later test and destroy a
    QObject there, which Qt reports as "Timers cannot be stopped from another thread" (a WARNING that fails
    that unrelated test). Everything older is frozen first (gc.freeze), so the collection scans only what this
    test made, not the model and the session's fixtures: milliseconds instead of a second."""
    gc.freeze()
    yield
    gc.collect()


@pytest.fixture(autouse=True)
def gui_loop(qapp: QApplication) -> Iterator[asyncio.AbstractEventLoop]:
    """qasync's loop over pytest-qt's ``qapp``, the running loop of the test's thread, closed after it.

    Autouse because any window can open the connector wizard, whose test and preview are tasks on the running
    loop (``desktop.dialogs.connector_wizard.probes``), as in the app. pytest-qt drives Qt's events
    (``qtbot.waitUntil``, ``qtbot.wait``), not ``loop.run_forever``; the loop's callbacks are Qt timer
    events, so they run whenever pytest-qt processes events. What ``run_forever`` would add is being
    asyncio's running loop (``asyncio.get_running_loop()``, which httpx and ``asyncio.sleep`` need), so the
    fixture sets that, as qasync's ``run_forever`` does. Not ``QEventLoop(already_running=True)``: that loop
    must be ended with ``stop()``, which calls ``QApplication.exit()``, and with no ``exec()`` running that
    leaves Qt's quit flag set, so every later ``QEventLoop.exec()`` (each ``qtbot.wait``) returns at once and
    no timer fires in the tests that follow.

    After the test (its widgets are closed by then, and a closed wizard cancels its tasks) any task still
    pending is cancelled and allowed to unwind, so none is destroyed pending.
    """
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    asyncio.events._set_running_loop(loop)
    try:
        yield loop
    finally:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        deadline = time.monotonic() + TASK_UNWIND_S
        while not all(task.done() for task in pending) and time.monotonic() < deadline:
            qapp.processEvents()
        asyncio.events._set_running_loop(None)
        loop.close()
        asyncio.set_event_loop(None)
        stuck = [task.get_name() for task in pending if not task.done()]
        assert not stuck, f"GUI-loop tasks did not unwind in {TASK_UNWIND_S} s after cancel: {stuck}"
