"""Issue 16, item 4: the window says which workspace is open, ``--demo`` says where its workspace lives, and a
command run afterwards on another, empty workspace says so."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

import desktop.app
from core.store.workspace import WORKSPACE_ENV, Workspace, demo_workspace_dir, last_app_workspace
from desktop.cli.common import EXIT_OK
from desktop.launcher import main as launcher_main
from desktop.main_window import MainWindow


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings" / "runbook-desk.ini"), QSettings.Format.IniFormat)


def open_window(qtbot: QtBot, workspace: Workspace, settings: QSettings) -> MainWindow:
    window = MainWindow(workspace, "default", settings=settings)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.fixture
def demo_workspace() -> Iterator[Workspace]:
    workspace = Workspace.open(demo_workspace_dir())  # under the test's own XDG_DATA_HOME
    yield workspace
    workspace.close()


def test_title_and_status_bar_name_the_demo_workspace_and_its_folder(
    qtbot: QtBot, demo_workspace: Workspace, settings: QSettings
) -> None:
    window = open_window(qtbot, demo_workspace, settings)
    try:
        folder = str(demo_workspace.root.resolve())
        assert window.windowTitle() == f"Runbook Desk — Demo workspace: {folder}"
        assert window.workspace_label.text() == f"Demo workspace: {folder}"
    finally:
        window.close()


def test_title_names_the_whole_folder_not_only_its_last_name(
    qtbot: QtBot, tmp_path: Path, settings: QSettings
) -> None:
    # Two folders both called "workspace": the title must tell them apart.
    with Workspace.open(tmp_path / "team-a" / "workspace") as workspace:
        window = open_window(qtbot, workspace, settings)
        try:
            assert window.windowTitle() == f"Runbook Desk — Workspace: {workspace.root.resolve()}"
            assert "team-a" in window.workspace_label.text()
            assert "Demo" not in window.workspace_label.text()
        finally:
            window.close()


def test_demo_with_the_env_variable_says_where_it_lives_and_a_later_import_warns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    opened: list[tuple[Path, bool]] = []

    def fake_run_app(workspace: Workspace, _tenant: str, _argv: list[str], *, seed_demo: bool) -> int:
        opened.append((workspace.root, seed_demo))
        workspace.close()
        return 0

    monkeypatch.setattr(desktop.app, "run_app", fake_run_app)
    env_root = Path(os.environ[WORKSPACE_ENV]).resolve()
    demo_root = demo_workspace_dir().resolve()

    assert launcher_main(["--demo"]) == EXIT_OK
    err = capsys.readouterr().err
    # The demo stays in its own folder: the variable names the user's workspace, not a place for demo data.
    assert opened == [(demo_root, True)]
    assert f"runbook-desk: demo workspace: {demo_root}" in err
    assert f"{WORKSPACE_ENV}={os.environ[WORKSPACE_ENV]} is not used by --demo" in err
    assert last_app_workspace() == demo_root

    export = tmp_path / "jira.csv"
    export.write_text("number,short_description\nJ-1,Printer offline\n", encoding="utf-8")
    assert launcher_main(["import", "tickets", str(export), "--source-system", "jira"]) == EXIT_OK
    err = capsys.readouterr().err
    assert f"workspace {env_root} has no tickets and no runbooks" in err
    assert f"--workspace {demo_root}" in err
