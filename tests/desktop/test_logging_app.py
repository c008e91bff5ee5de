"""Issue 18, item 10, in the desktop app: it logs to the same file as the CLI, in its workspace, redacted."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from connectors.secrets import register_secret
from core.logs import LOG_FILE_NAME, active_log_file
from core.store.workspace import Workspace
from desktop import app as desktop_app

SECRET = "Sup3r-s3cret-pw"


class _Runner:
    def shutdown(self, timeout_ms: int) -> None:
        return None


class _WindowThatQuits:
    """Stands in for the main window: notes where the log goes, logs a secret-bearing line, then quits."""

    seen_log: Path | None = None

    def __init__(self, *_args: object, **_kwargs: object) -> None:
        self.runner = _Runner()

    def show(self) -> None:
        _WindowThatQuits.seen_log = active_log_file()
        logging.getLogger("desktop.main_window").info("window for token %s", SECRET)

    def start_startup_jobs(self, *, seed_demo: bool) -> None:
        QTimer.singleShot(0, QApplication.quit)


def test_the_app_logs_to_its_workspace_log_file_with_secrets_masked(
    qapp: QApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_secret(SECRET)
    monkeypatch.setattr(desktop_app, "MainWindow", _WindowThatQuits)
    workspace = Workspace.open(tmp_path / "ws")
    assert desktop_app.run_app(workspace, "default", ["runbook-desk"]) == 0
    log_path = tmp_path / "ws" / "logs" / LOG_FILE_NAME
    assert _WindowThatQuits.seen_log == log_path
    logged = log_path.read_text(encoding="utf-8")
    assert "window for token ***" in logged
    assert SECRET not in logged
    assert active_log_file() is None  # uninstalled with the workspace
