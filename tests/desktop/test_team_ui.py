"""Team mode in the window (issue 17) on the default single-user workspace: nothing is locked, there is no
Members page, the Settings' Team database tab keeps passwords out of files, and a database refusal reaches
the analyst as one clear line. The PostgreSQL side is ``test_team_ui_postgres.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg.errors
import pytest
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot
from sqlalchemy import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

from core.errors import PermissionDeniedError
from core.store.db import POSTGRES_KEYRING_SERVICE, postgres_keyring_account
from core.store.workspace import TEAM_SETTINGS_FILENAME, Workspace, workspace_database_url
from desktop.dialogs.settings import SettingsDialog
from desktop.main_window import PAGE_TITLES, MainWindow
from desktop.pages.members import MembersPage
from desktop.refusals import describe_error, is_refusal
from desktop.widgets.notifications import Level
from tests.helpers.memory_keyring import MemoryKeyring

WAIT_MS = 20_000
TEAM_URL = "postgresql://alice@db.example:5433/runbooks"


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings" / "runbook-desk.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot: QtBot, workspace: Workspace, settings: QSettings) -> Iterator[MainWindow]:
    window = MainWindow(workspace, "default", settings=settings)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    yield window
    window.close()


@pytest.fixture
def settings_dialog(qtbot: QtBot, window: MainWindow) -> Iterator[SettingsDialog]:
    dialog = window.open_settings()
    qtbot.waitUntil(lambda: dialog.learning.state is not None, timeout=WAIT_MS)
    yield dialog
    dialog.reject()


def refused(message: str) -> ProgrammingError:
    """What SQLAlchemy raises when PostgreSQL refuses a write with SQLSTATE 42501."""
    return ProgrammingError(
        "UPDATE connector_configs SET name=%(name)s",
        {"name": "typed by the analyst"},
        psycopg.errors.InsufficientPrivilege(message),
    )


def test_a_local_workspace_has_no_members_page_and_locks_nothing(window: MainWindow) -> None:
    assert window.members_page is None
    assert window.stack.count() == window.nav_list.count() == len(PAGE_TITLES)
    assert [action.text() for action in window.page_actions] == list(PAGE_TITLES)
    assert window.team_label.text() == "Local workspace"
    assert window.context.permissions.team is False
    assert not window.admin_lock.active and not window.analyst_lock.active
    connectors = window.connectors_page
    assert connectors.add_action.isEnabled() and connectors.add_button.isEnabled()
    assert window.import_tickets_action.isEnabled() and window.analyse_action.isEnabled()
    assert window.runbooks_page.new_action.isEnabled()


def test_a_local_workspace_keeps_its_settings_editable_and_names_its_file(
    settings_dialog: SettingsDialog, workspace: Workspace
) -> None:
    assert settings_dialog.link_spin.isEnabled() and settings_dialog.window_spin.isEnabled()
    assert [settings_dialog.tabs.tabText(n) for n in range(settings_dialog.tabs.count())] == [
        "General",
        "Learning",
        "Team database",
    ]
    panel = settings_dialog.team_database
    assert str(workspace.db_path) in panel.current_label.text()
    assert not panel.local_button.isEnabled()  # it uses its file already


def test_the_members_page_built_on_a_local_workspace_explains_itself(
    qtbot: QtBot, window: MainWindow
) -> None:
    page = MembersPage(window.context)
    qtbot.addWidget(page)
    page.show()
    assert page.intro.text().startswith("Single-user workspace")
    assert page.table.isHidden() and page.toolbar.isHidden()
    assert page.reload() is None  # nothing to load: no membership on SQLite


def test_a_password_in_the_url_is_refused_masked_and_nothing_is_written(
    settings_dialog: SettingsDialog, workspace: Workspace
) -> None:
    panel = settings_dialog.team_database
    panel.url_edit.setText("postgresql://alice:hunter2@db.example/runbooks")
    assert not panel.use_button.isEnabled() and not panel.test_button.isEnabled()
    assert "carries a password" in panel.message_label.text()
    assert "hunter2" not in panel.message_label.text()
    assert panel.use_database() is None
    assert not (workspace.root / TEAM_SETTINGS_FILENAME).exists()


def test_use_this_database_stores_the_password_in_the_keychain_only(
    qtbot: QtBot, settings_dialog: SettingsDialog, workspace: Workspace, memory_keyring: MemoryKeyring
) -> None:
    panel = settings_dialog.team_database
    chosen: list[str] = []
    panel.database_chosen.connect(chosen.append)
    panel.url_edit.setText(TEAM_URL)
    panel.password_edit.setText("s3cret-typed-once")
    assert panel.use_button.isEnabled()
    panel.use_database()
    qtbot.waitUntil(lambda: chosen == [TEAM_URL], timeout=WAIT_MS)

    account = postgres_keyring_account(make_url(TEAM_URL))
    assert account == "alice@db.example:5433/runbooks"
    assert memory_keyring.get_password(POSTGRES_KEYRING_SERVICE, account) == "s3cret-typed-once"
    assert workspace_database_url(workspace.root) == TEAM_URL
    assert "Restart Runbook Desk" in panel.message_label.text()
    assert panel.password_edit.text() == ""
    for path in workspace.root.rglob("*"):  # the password is in no file of the workspace
        if path.is_file():
            assert b"s3cret-typed-once" not in path.read_bytes(), path

    panel.use_local_file()
    assert workspace_database_url(workspace.root) is None


def test_a_connection_test_that_fails_says_why_without_the_password(
    qtbot: QtBot, settings_dialog: SettingsDialog, memory_keyring: MemoryKeyring
) -> None:
    panel = settings_dialog.team_database
    panel.url_edit.setText("postgresql://alice@127.0.0.1:1/runbooks")  # nothing listens on port 1
    panel.password_edit.setText("never-shown")
    task = panel.test_connection()
    assert task is not None
    qtbot.waitUntil(lambda: not task.is_active, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: panel.message_label.text().startswith("cannot connect"), timeout=WAIT_MS)
    text = panel.message_label.text()
    assert "postgresql://alice@127.0.0.1:1/runbooks" in text
    assert "never-shown" not in text and "Traceback" not in text
    assert panel.test_button.isEnabled()


def test_a_database_refusal_is_one_clear_line() -> None:
    error = refused("permission denied: update on connector_configs needs the admin role in tenant 1")
    assert is_refusal(error)
    assert describe_error(error) == (
        "The database refused: "
        "permission denied: update on connector_configs needs the admin role in tenant 1"
    )
    assert "typed by the analyst" not in describe_error(error)  # the statement's parameters stay out

    denied = PermissionDeniedError(
        "changing a connector needs the admin role; bob is viewer in tenant default"
    )
    assert is_refusal(denied)
    assert describe_error(denied).startswith("Not allowed: changing a connector needs the admin role")

    other = OperationalError("SELECT 1", {}, psycopg.errors.AdminShutdown("terminating connection"))
    assert not is_refusal(other)
    assert describe_error(other) == str(other)


def _refuse() -> None:
    raise refused('new row violates row-level security policy for table "team_members"')


def test_a_refused_job_notifies_the_refusal_without_a_traceback(qtbot: QtBot, window: MainWindow) -> None:
    page_errors: list[str] = []  # the page that ran it shows it inline too; the window notifies
    task = window.runner.run(
        _refuse, title="Adding a member", on_error=lambda exc, _tb: page_errors.append(describe_error(exc))
    )
    qtbot.waitUntil(lambda: not task.is_active, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: bool(window.notifications.notifications()), timeout=WAIT_MS)
    [notification] = window.notifications.notifications()
    assert notification.level is Level.ERROR
    assert notification.text == (
        "Adding a member failed: The database refused: new row violates row-level security policy for table "
        '"team_members"'
    )
    assert notification.details == ""
    assert page_errors == [notification.text.removeprefix("Adding a member failed: ")]
