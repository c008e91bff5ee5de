"""Start the GUI: one QApplication, the main window, Qt's event loop until the last window closes.

The GUI thread runs Qt's event loop and nothing else: all work, blocking calls and coroutines alike (a
connector's check, preview or sync), goes to the :class:`~desktop.background.tasks.TaskRunner`, a coroutine
on its own event loop in its worker (see :mod:`desktop.background.sync_jobs` for why not an asyncio loop on
the GUI thread). High-DPI scaling is on by default in Qt 6, and the platform's own style is kept: forcing
Fusion would make the app look foreign on every desktop.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QSettings
from PySide6.QtWidgets import QApplication

from connectors.registry import load_all
from connectors.secrets import install_secret_redaction
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
    try:
        load_all()  # connector modules' loggers must exist before the redacting filter is put on them
        install_secret_redaction()
        app = _application(argv)
        window = MainWindow(workspace, tenant_slug, settings=settings, embedder_factory=embedder_factory)
        window.show()
        window.start_startup_jobs(seed_demo=seed_demo)
        # Returns once the last window is closed (or Quit); 0 unless something called exit() with a code.
        return app.exec()
    finally:
        if window is not None:
            # The usual path closed the window (and stopped its workers) already; an app.quit() from elsewhere
            # did not. Workers must be done before the engine they use is disposed.
            window.runner.shutdown(timeout_ms=SHUTDOWN_WAIT_MS)
        workspace.close()
