"""Team mode in the window on a real PostgreSQL server (issue 17): the role read at start-up locks what it
does not allow, the Members page changes ``team_members`` (keyboard first), and what the database refuses
reaches the analyst as one clear line. Skipped with the reason without a server (``make test-team`` starts
one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from sqlalchemy import make_url, select

from connectors.configs import create_config
from core.settings import Thresholds
from core.store.db import POSTGRES_KEYRING_SERVICE, postgres_keyring_account
from core.store.models import TeamMember, TeamRole
from core.store.team import add_member
from core.store.workspace import Workspace
from desktop.background.connector_jobs import set_connector_active
from desktop.background.settings_jobs import save_tenant_sections
from desktop.main_window import CONNECTORS_PAGE, MEMBERS_PAGE, PAGE_TITLES, MainWindow
from desktop.pages.members import MemberDialog
from tests.connectors.fake_servicenow import FakeServiceNow
from tests.helpers.memory_keyring import MemoryKeyring
from tests.helpers.postgres import PgServer

pytestmark = pytest.mark.team

WAIT_MS = 30_000


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings" / "runbook-desk.ini"), QSettings.Format.IniFormat)


def open_window(qtbot: QtBot, workspace: Workspace, settings: QSettings) -> MainWindow:
    window = MainWindow(workspace, "default", settings=settings)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def focus_table(qtbot: QtBot, window: MainWindow) -> None:
    """The window active and its Members table focused: where Enter and Delete act (a closing dialog gives
    the focus back a moment later)."""
    page = window.members_page
    assert page is not None
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=WAIT_MS)
    page.table.setFocus()
    qtbot.waitUntil(page.table.hasFocus, timeout=WAIT_MS)


def dialog_opened(qtbot: QtBot, window: MainWindow) -> MemberDialog:
    """The page's member dialog, once it is the active window (until then the keys still go to the table)."""
    page = window.members_page
    assert page is not None and page.dialog is not None
    dialog = page.dialog
    qtbot.waitUntil(lambda: QApplication.activeWindow() is dialog, timeout=WAIT_MS)
    return dialog


def wait_idle(qtbot: QtBot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: not window.runner.active_tasks(), timeout=WAIT_MS)


@pytest.fixture
def viewer_workspace(
    tmp_path: Path,
    pg_server: PgServer,
    pg_database: str,
    team_workspace: Workspace,
    memory_keyring: MemoryKeyring,
) -> Iterator[Workspace]:
    """A viewer's desktop: its own login, a viewer of the default tenant, where a connector exists."""
    fake = FakeServiceNow()
    servicenow = fake.settings()
    create_config(
        team_workspace.session_factory(),
        connector_type="servicenow",
        name="prod-sn",
        base_url=fake.base_url,
        options=servicenow.options,
        secrets=servicenow.secrets,
    )
    password = pg_server.create_login("b2_viewer")
    with team_workspace.session_factory()() as session:
        add_member(session, "b2_viewer", TeamRole.VIEWER, "test")
        session.commit()
    url = pg_server.url(pg_database, "b2_viewer")
    memory_keyring.set_password(POSTGRES_KEYRING_SERVICE, postgres_keyring_account(make_url(url)), password)
    workspace = Workspace.open(tmp_path / "viewer-desktop", database_url=url)
    yield workspace
    workspace.close()


@pytest.fixture
def viewer_window(qtbot: QtBot, viewer_workspace: Workspace, settings: QSettings) -> Iterator[MainWindow]:
    window = open_window(qtbot, viewer_workspace, settings)
    window.show_page(CONNECTORS_PAGE)
    qtbot.waitUntil(lambda: window.connectors_page.current_row() is not None, timeout=WAIT_MS)
    wait_idle(qtbot, window)
    yield window
    window.close()


def test_a_viewers_window_disables_connector_and_write_actions_naming_the_role(
    viewer_window: MainWindow, pg_database: str
) -> None:
    window = viewer_window
    assert window.team_label.text() == f"Team: b2_viewer@127.0.0.1/{pg_database} · viewer"
    connectors = window.connectors_page
    assert connectors.current_row() is not None  # a connector is selected: only the role disables these
    for action in (
        connectors.add_action,
        connectors.sync_action,
        connectors.pause_action,
        connectors.edit_action,
        connectors.rotate_action,
        connectors.delete_action,
    ):
        action.setEnabled(True)  # what the page's own logic does on a selection: the lock holds
        assert not action.isEnabled(), action.text()
        assert action.toolTip() == "Needs the admin role (you are viewer in this tenant)"
    connectors.table.doubleClicked.emit(connectors.table.currentIndex())
    assert connectors.wizard is None  # double-click edits through the locked action
    for action in (
        window.import_tickets_action,
        window.import_runbooks_action,
        window.analyse_action,
        window.runbooks_page.new_action,
        window.runbooks_page.import_action,
    ):
        assert not action.isEnabled(), action.text()
        assert action.toolTip() == "Needs the analyst role (you are viewer in this tenant)"
    assert window.start_analysis() is None  # a viewer's desktop runs no analysis
    # The Members page is there in team mode, after the others, but the list is an admin's.
    assert window.stack.count() == len(PAGE_TITLES) + 1
    assert window.page_actions[MEMBERS_PAGE].shortcut().toString() == "Ctrl+8"
    members = window.members_page
    assert members is not None and members.table.isHidden()
    assert "Only an admin sees and changes the list" in members.intro.text()


def test_a_viewers_settings_show_the_thresholds_and_calibration_disabled(
    qtbot: QtBot, viewer_window: MainWindow
) -> None:
    dialog = viewer_window.open_settings()
    try:
        assert not dialog.link_spin.isEnabled() and not dialog.review_spin.isEnabled()
        assert not dialog.window_spin.isEnabled()
        assert "b2_viewer (viewer in this tenant)" in dialog.team_database.current_label.text()
        qtbot.waitUntil(lambda: dialog.learning.state is not None, timeout=WAIT_MS)
        assert not dialog.learning.refit_button.isEnabled()
        assert dialog.learning.refit_button.toolTip().startswith("Needs the admin role")
    finally:
        dialog.reject()


def test_what_the_database_refuses_a_viewer_is_one_clear_line(
    qtbot: QtBot, viewer_window: MainWindow
) -> None:
    """The role is read at start-up; had it changed since, the database still refuses, and says so."""
    window = viewer_window
    row = window.connectors_page.current_row()
    assert row is not None
    errors: list[Exception] = []
    sessions = window.context.sessions
    pause = window.runner.run(
        set_connector_active,
        sessions,
        row.id,
        False,
        "b2_viewer",
        title="Pausing prod-sn",
        on_error=lambda exc, _tb: errors.append(exc),
    )
    qtbot.waitUntil(lambda: not pause.is_active, timeout=WAIT_MS)
    thresholds = window.runner.run(
        save_tenant_sections,
        sessions,
        [Thresholds(existing=0.9, partial=0.5)],
        "b2_viewer",
        title="Saving the tenant's settings",
        on_error=lambda exc, _tb: errors.append(exc),
    )
    qtbot.waitUntil(lambda: not thresholds.is_active, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: len(window.notifications.notifications()) == 2, timeout=WAIT_MS)
    texts = sorted(notification.text for notification in window.notifications.notifications())
    assert texts[0].startswith("Pausing prod-sn failed: The database refused: permission denied")
    assert texts[1].startswith("Saving the tenant's settings failed: The database refused: ")
    for notification in window.notifications.notifications():
        assert notification.details == ""  # no traceback, no SQL
        assert "[SQL" not in notification.text and "sqlalche.me" not in notification.text
    assert len(errors) == 2
    with window.context.sessions() as session:  # nothing changed
        assert (
            session.scalar(select(TeamMember.role).where(TeamMember.login == "b2_viewer")) is TeamRole.VIEWER
        )


def test_an_admin_adds_changes_and_is_refused_removing_the_last_admin_on_the_members_page(
    qtbot: QtBot, team_workspace: Workspace, pg_server: PgServer, settings: QSettings
) -> None:
    pg_server.create_login("b2_newcomer")
    window = open_window(qtbot, team_workspace, settings)
    try:
        assert window.team_label.text().endswith("· admin")
        page = window.members_page
        assert page is not None
        window.page_actions[MEMBERS_PAGE].trigger()
        assert window.current_page() is page
        qtbot.waitUntil(lambda: page.loaded_once, timeout=WAIT_MS)

        # Add: Ctrl+N on the page, type the login, Enter.
        focus_table(qtbot, window)
        qtbot.keyClick(page.table, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
        dialog = dialog_opened(qtbot, window)
        assert dialog.role() is TeamRole.ANALYST
        qtbot.keyClicks(dialog.login_edit, "b2_newcomer")
        qtbot.keyClick(dialog.login_edit, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: [m.login for m in page.model.rows] == ["b2_newcomer"], timeout=WAIT_MS)
        with team_workspace.session_factory()() as session:
            member = session.scalar(select(TeamMember).where(TeamMember.login == "b2_newcomer"))
            assert member is not None
            assert (member.role, member.added_by) == (TeamRole.ANALYST, window.context.reviewer())
        current = page.current_member()
        assert current is not None and current.login == "b2_newcomer"

        # Change the role: Enter on the row, pick admin, Enter.
        focus_table(qtbot, window)
        qtbot.keyClick(page.table, Qt.Key.Key_Return)
        dialog = dialog_opened(qtbot, window)
        assert dialog.login_edit.isReadOnly()
        dialog.role_combo.setCurrentIndex(dialog.role_combo.findData(TeamRole.ADMIN.value))
        qtbot.keyClick(dialog.role_combo, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: page.model.rows[0].role is TeamRole.ADMIN, timeout=WAIT_MS)

        # Remove: Delete asks first; the tenant's last admin is refused, inline.
        focus_table(qtbot, window)
        qtbot.keyClick(page.table, Qt.Key.Key_Delete)
        box = page.remove_box
        assert box is not None and "b2_newcomer" in box.text()
        page.remove_button.click()
        qtbot.waitUntil(lambda: page.error_label.isVisibleTo(page), timeout=WAIT_MS)
        assert "last admin" in page.error_label.text()
        with team_workspace.session_factory()() as session:
            assert session.scalar(select(TeamMember.role).where(TeamMember.login == "b2_newcomer")) is (
                TeamRole.ADMIN
            )
        wait_idle(qtbot, window)
    finally:
        window.close()
