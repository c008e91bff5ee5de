"""Start the GUI: one QApplication, qasync's event loop as the asyncio loop, the main window.

Qt's event loop and asyncio's are the same loop (qasync), and the app's one rule for async work is:
network-only coroutines run on the GUI loop (qasync); work that writes the store runs on a worker. The
wizard's connection test and preview are awaited on this loop without blocking the window; syncs and every
blocking call go to the :class:`~desktop.background.tasks.TaskRunner` (why:
:mod:`desktop.background.sync_jobs`). High-DPI scaling is on by default in Qt 6, and the platform's own style
is kept: forcing Fusion would make the app look foreign on every desktop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import qasync
from PySide6.QtCore import QCoreApplication, QSettings
from PySide6.QtWidgets import QApplication

from connectors.registry import load_all
from connectors.secrets import REDACTOR, install_secret_redaction
from core.logs import install_log_file, workspace_log_folder
from core.matching.embedding import Embedder
from core.store.workspace import WORKSPACE_ENV, Workspace, resolve_workspace_dir
from desktop.dialogs.settings import chosen_workspace
from desktop.main_window import SETTINGS_APPLICATION, SETTINGS_ORGANIZATION, SHUTDOWN_WAIT_MS, MainWindow

log = logging.getLogger(__name__)

DISPLAY_NAME = "Runbook Desk"
DESKTOP_FILE_NAME = "runbook-desk"


def _application(argv: list[str]) -> QApplication:
    existing = QCoreApplication.instance()
    if existing is None:
        app = QApplication(argv)
    elif isinstance(existing, QApplication):
        app = existing  # a test harness (pytest-qt) or an embedding host made it already
    else:
        raise RuntimeError(
            f"a {type(existing).__name__} exists already; the desktop app needs a QApplication"
        )
    app.setOrganizationName(SETTINGS_ORGANIZATION)
    app.setApplicationName(SETTINGS_APPLICATION)
    # The display name is what Qt appends to window titles that lack it; ours always start with it.
    app.setApplicationDisplayName(DISPLAY_NAME)
    app.setDesktopFileName(DESKTOP_FILE_NAME)
    try:
        app.setApplicationVersion(version("runbook-desk"))
    except PackageNotFoundError:
        log.debug("runbook-desk is not installed as a distribution; no application version set")
    return app


def preferred_workspace_dir(explicit: str | None) -> Path:
    """``--workspace``, then ``$RUNBOOK_DESK_WORKSPACE``, then the Settings choice, then the default."""
    if explicit or os.environ.get(WORKSPACE_ENV):
        return resolve_workspace_dir(explicit)
    chosen = chosen_workspace(QSettings(SETTINGS_ORGANIZATION, SETTINGS_APPLICATION))
    return chosen if chosen is not None else resolve_workspace_dir(None)


def _unwind_pending_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what still awaits on the GUI loop (a wizard's test left waiting on a server at Quit) and let it
    close its HTTP client, as ``asyncio.run`` does; a task destroyed pending would only log an error."""
    pending = asyncio.all_tasks(loop)
    if not pending:
        return
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.wait(pending, timeout=SHUTDOWN_WAIT_MS / 1000))


def run_app(
    workspace: Workspace,
    tenant_slug: str,
    argv: list[str],
    *,
    settings: QSettings | None = None,
    seed_demo: bool = False,
    embedder_factory: Callable[[], Embedder] | None = None,
) -> int:
    """Show the main window until the user closes it; the workspace is closed on the way out, always.

    ``settings`` defaults to ``QSettings("RunbookDesk", "RunbookDesk")``; tests pass their own. Returns the
    process exit code: 0 once the last window is closed (a failure before that raises).
    """
    window: MainWindow | None = None
    # The workspace's log file (core.logs), redacted; it replaces the CLI's, which may name another folder.
    log_file = install_log_file(workspace_log_folder(workspace.root), redactor=REDACTOR)
    try:
        load_all()  # connector modules' loggers must exist before the redacting filter is put on them
        install_secret_redaction()
        app = _application(argv)
        # qasync's documented pattern: the Qt loop is the asyncio loop, and it runs until the application's
        # aboutToQuit (last window closed, or Quit) resolves the awaited event.
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        app_close_event = asyncio.Event()
        app.aboutToQuit.connect(app_close_event.set)
        try:
            window = MainWindow(workspace, tenant_slug, settings=settings, embedder_factory=embedder_factory)
            window.show()
            window.start_startup_jobs(seed_demo=seed_demo)
            with loop:  # closing it waits for its executor's threads (DNS lookups, keychain reads)
                loop.run_until_complete(app_close_event.wait())
                _unwind_pending_tasks(loop)
        finally:
            app.aboutToQuit.disconnect(app_close_event.set)
            asyncio.set_event_loop(None)
        return 0
    finally:
        if window is not None:
            # The usual path closed the window (and stopped its workers) already; an app.quit() from elsewhere
            # did not. Workers must be done before the engine they use is disposed.
            window.runner.shutdown(timeout_ms=SHUTDOWN_WAIT_MS)
        workspace.close()
        log_file.uninstall()
