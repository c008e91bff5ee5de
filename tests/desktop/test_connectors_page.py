"""The Connectors page: its table and history, sync now, pause/resume, edit, delete, scheduling and the
failing-connector alert. Real SQLite, the in-memory keychain, the local fake ServiceNow, headless Qt."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtTest import QAbstractItemModelTester
from PySide6.QtWidgets import QWizard
from sqlalchemy import func, select

from connectors.configs import ConfigRow, create_config, update_config
from connectors.runs import ConnectorOverviewRow, SyncRunRow
from connectors.secrets import SERVICE_NAME
from connectors.sync import ALERT_AFTER_FAILURES
from core.store.models import SyncRun, Ticket
from core.store.workspace import Workspace
from desktop.background.sync_jobs import SyncDispatcher
from desktop.background.tasks import TaskRunner
from desktop.context import AppContext
from desktop.main_window import CONNECTORS_PAGE, PAGE_TITLES, MainWindow
from desktop.pages.connectors import (
    CONNECTOR_COLUMNS,
    HISTORY_COLUMNS,
    ConnectorsPage,
    ConnectorStatusRow,
    ConnectorTableModel,
)
from desktop.widgets.nav_rail import BadgeTone
from desktop.widgets.table_models import RowTableModel
from tests.connectors.fake_servicenow import FakeServiceNow
from tests.helpers.connector_ui import (
    RECENT_TICKETS,
    WAIT_MS,
    click_finish,
    click_next,
    configs,
    servicenow,
    tickets_of,
)
from tests.helpers.memory_keyring import MemoryKeyring


@pytest.fixture
def runner(qtbot) -> Iterator[TaskRunner]:
    task_runner = TaskRunner()
    yield task_runner
    task_runner.shutdown()


@pytest.fixture
def context(workspace: Workspace, runner: TaskRunner) -> AppContext:
    return AppContext(workspace, "default", runner)


@pytest.fixture
def fake() -> FakeServiceNow:
    return servicenow()


def add_config(
    context: AppContext, fake: FakeServiceNow, name: str = "prod", *, good: bool = True, active: bool = True
) -> ConfigRow:
    settings = fake.settings(good_credentials=good)
    return create_config(
        context.sessions,
        connector_type="servicenow",
        name=name,
        base_url=fake.base_url,
        options=settings.options,
        secrets=settings.secrets,
        is_active=active,
    )


def make_page(qtbot, context: AppContext, fake: FakeServiceNow) -> ConnectorsPage:  # type: ignore[no-untyped-def]
    context.transport_factory = lambda _settings: fake.transport()
    page = ConnectorsPage(context, SyncDispatcher(context))
    qtbot.addWidget(page)
    page.show()
    qtbot.waitUntil(lambda: page.loaded_once and not page.is_loading(), timeout=WAIT_MS)
    return page


def settle(qtbot, page: ConnectorsPage) -> None:  # type: ignore[no-untyped-def]
    """No sync running and the table reloaded after the last one."""
    qtbot.waitUntil(lambda: not page.context.runner.active_tasks(), timeout=WAIT_MS)


def synced_runs(context: AppContext) -> int:
    with context.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(SyncRun).where(SyncRun.finished_at.is_not(None)))
            or 0
        )


def sync_and_wait(qtbot, page: ConnectorsPage) -> None:  # type: ignore[no-untyped-def]
    task = page.sync_selected()
    assert task is not None
    qtbot.waitUntil(lambda: not task.is_active, timeout=WAIT_MS)
    settle(qtbot, page)


# --- models -----------------------------------------------------------------------------------------------


def test_connector_and_history_models_pass_the_model_tester(
    qtbot, context: AppContext, fake: FakeServiceNow
) -> None:
    configs_ = [add_config(context, fake, name) for name in ("a", "b", "c")]
    now = datetime.now(UTC)
    rows = [
        ConnectorStatusRow(ConnectorOverviewRow(config, "ServiceNow", 3, None, None)) for config in configs_
    ]
    model = ConnectorTableModel(CONNECTOR_COLUMNS)
    history: RowTableModel[SyncRunRow] = RowTableModel(HISTORY_COLUMNS)
    testers = [
        QAbstractItemModelTester(m, QAbstractItemModelTester.FailureReportingMode.Warning)
        for m in (model, history)
    ]
    model.set_rows(rows)
    assert model.replace_row(ConnectorStatusRow(rows[1].overview, syncing=True, progress="3 new"))
    assert model.index(1, model.column_index("Status")).data() == "syncing: 3 new"
    assert model.index(0, model.column_index("Next run")).data() == "due now"
    assert model.index(0, model.column_index("Items synced")).data() == "3"
    history.set_rows(
        [
            SyncRunRow(2, now - timedelta(seconds=3), now, "failed", 0, 0, 0, 0, "prod: HTTP 401 on GET /x"),
            SyncRunRow(
                1, now - timedelta(seconds=9), now - timedelta(seconds=7), "succeeded", 5, 1, 2, 0, None
            ),
        ]
    )
    assert history.index(1, history.column_index("Duration")).data() == "2.0 s"
    assert history.index(0, history.column_index("Error")).data(3) == "prod: HTTP 401 on GET /x"  # tooltip
    model.set_rows([])
    history.set_rows([])
    del testers


def test_page_models_pass_the_model_tester_while_syncing(
    qtbot, context: AppContext, fake: FakeServiceNow
) -> None:
    add_config(context, fake)
    page = make_page(qtbot, context, fake)
    testers = [
        QAbstractItemModelTester(m, QAbstractItemModelTester.FailureReportingMode.Warning)
        for m in (page.model, page.history_model)
    ]
    sync_and_wait(qtbot, page)
    qtbot.waitUntil(lambda: page.history_model.rowCount() == 1, timeout=WAIT_MS)
    del testers


# --- actions ----------------------------------------------------------------------------------------------


def test_table_shows_each_connector_and_sync_now_fills_the_history(
    qtbot, workspace: Workspace, context: AppContext, fake: FakeServiceNow
) -> None:
    add_config(context, fake)
    page = make_page(qtbot, context, fake)
    [row] = page.model.rows
    headers = [c.header for c in page.model.columns]
    assert headers == [
        "System",
        "Name",
        "Status",
        "Last sync",
        "Last successful sync",
        "Failures in a row",
        "Next run",
        "Items synced",
        "Secrets",
    ]
    assert (row.overview.system, row.config.name, row.status, row.overview.items_synced) == (
        "ServiceNow",
        "prod",
        "active",
        0,
    )
    sync_and_wait(qtbot, page)
    [row] = page.model.rows
    # No first-sync start date here (not made by the wizard): the whole history is read.
    assert row.overview.items_synced == RECENT_TICKETS + 1 == tickets_of(workspace, "servicenow")
    assert row.config.last_successful_sync_at is not None
    assert isinstance(row.next_run(), datetime)
    qtbot.waitUntil(lambda: page.history_model.rowCount() == 1, timeout=WAIT_MS)
    [run] = page.history_model.rows
    assert (run.status, run.items_new, run.items_failed) == ("succeeded", RECENT_TICKETS + 1, 0)
    assert "no error" in page.error_text.toPlainText()


def test_pause_and_resume(qtbot, context: AppContext, fake: FakeServiceNow) -> None:
    add_config(context, fake)
    page = make_page(qtbot, context, fake)
    assert page.pause_action.text() == "Pause"
    with qtbot.waitSignal(page.loaded, timeout=WAIT_MS):
        page.toggle_pause_selected()
    assert page.model.rows[0].status == "paused" and page.model.rows[0].next_run() == "paused"
    assert page.pause_action.text() == "Resume"
    # The scheduler leaves a paused connector alone.
    page.scheduler.start()
    settle(qtbot, page)
    assert fake.requests == []
    page.scheduler.stop()
    with qtbot.waitSignal(page.loaded, timeout=WAIT_MS):
        page.toggle_pause_selected()
    assert page.model.rows[0].status == "active" and page.pause_action.text() == "Pause"


def test_the_scheduler_syncs_due_active_connectors_only(
    qtbot, context: AppContext, fake: FakeServiceNow
) -> None:
    add_config(context, fake, "active one")
    add_config(context, fake, "paused one", active=False)
    page = make_page(qtbot, context, fake)
    page.reload()
    page.scheduler.start()
    # Wait on the outcome, not on "a sync is running": on a busy machine the sync can start and finish
    # between two polls of that condition.
    qtbot.waitUntil(lambda: synced_runs(context) >= 1, timeout=WAIT_MS)
    settle(qtbot, page)
    by_name = {row.config.name: row for row in page.model.rows}
    assert by_name["active one"].config.last_sync_at is not None
    assert by_name["paused one"].config.last_sync_at is None
    # Synced a moment ago: not due again until its frequency has passed.
    assert page.scheduler.poll() is not None
    settle(qtbot, page)
    assert len(page.history_model.rows) <= 1
    page.scheduler.stop()
    page.stop()
    assert not page.scheduler.active and page.reload() is None


def test_edit_reopens_the_wizard_prefilled_and_saves_the_change(
    qtbot, workspace: Workspace, context: AppContext, fake: FakeServiceNow, memory_keyring: MemoryKeyring
) -> None:
    row = add_config(context, fake)
    page = make_page(qtbot, context, fake)
    wizard = page.open_edit_wizard()
    assert wizard is not None and wizard.existing == row
    assert wizard.windowTitle() == "Edit prod"
    click_next(qtbot, wizard)  # where -> how
    wizard.auth_page.form.editors["password"].set_value("a-new-password")  # type: ignore[union-attr]
    fake.password = "a-new-password"  # the analyst changed it on the server too
    click_next(qtbot, wizard)
    qtbot.waitUntil(lambda: wizard.test_page.result is not None, timeout=WAIT_MS)
    assert wizard.test_page.result is not None and wizard.test_page.result.ok
    click_next(qtbot, wizard)
    qtbot.waitUntil(lambda: wizard.scope_page.preview_ok, timeout=WAIT_MS)
    click_next(qtbot, wizard)
    wizard.when_page.name_edit.setText("prod (renamed)")
    with qtbot.waitSignal(page.loaded, timeout=WAIT_MS):
        click_finish(qtbot, wizard)
    assert [r.config.name for r in page.model.rows] == ["prod (renamed)"]
    assert memory_keyring.entries == {(SERVICE_NAME, f"{row.keychain_key}/password"): "a-new-password"}
    assert page.wizard is None
    assert fake.requests and all(r.url.host == "fake.service-now.com" for r in fake.requests)
    assert configs(workspace)[0].keychain_key == row.keychain_key


@pytest.mark.parametrize("purge", [False, True])
def test_delete_asks_keep_or_purge_and_removes_the_keychain_entries(
    qtbot,
    workspace: Workspace,
    context: AppContext,
    fake: FakeServiceNow,
    memory_keyring: MemoryKeyring,
    purge: bool,
) -> None:
    add_config(context, fake)
    page = make_page(qtbot, context, fake)
    sync_and_wait(qtbot, page)
    assert memory_keyring.entries
    box = page.delete_selected()
    assert box is not None and "tickets it brought" in box.text()
    with qtbot.waitSignal(page.loaded, timeout=WAIT_MS):
        (page.purge_button if purge else page.keep_button).click()
    assert page.model.rows == () and page.empty_label.isVisible()
    assert configs(workspace) == [] and memory_keyring.entries == {}
    with workspace.session_factory("default")() as session:
        left = session.scalar(select(func.count()).select_from(Ticket)) or 0
    assert left == (0 if purge else RECENT_TICKETS + 1)


def test_cancelling_delete_keeps_everything(
    qtbot, workspace: Workspace, context: AppContext, fake: FakeServiceNow
) -> None:
    add_config(context, fake)
    page = make_page(qtbot, context, fake)
    box = page.delete_selected()
    assert box is not None
    box.reject()
    settle(qtbot, page)
    assert len(configs(workspace)) == 1


# --- the window: alert, scheduling, shutdown --------------------------------------------------------------


def test_three_failed_runs_raise_the_alert_in_the_nav_rail_and_status_bar(
    qtbot, workspace: Workspace, tmp_path: Path, fake: FakeServiceNow
) -> None:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(workspace, "default", settings=settings)
    qtbot.addWidget(window)
    window.show()
    page = window.connectors_page
    window.context.transport_factory = lambda _settings: fake.transport()
    row = add_config(window.context, fake, good=False)
    rail = window.nav_list
    window.show_page(CONNECTORS_PAGE)
    qtbot.waitUntil(lambda: page.model.rowCount() == 1, timeout=WAIT_MS)
    for attempt in range(1, ALERT_AFTER_FAILURES + 1):
        sync_and_wait(qtbot, page)
        assert page.model.rows[0].config.consecutive_failures == attempt
        # The rail counts a connector whose last sync failed from the first failure on.
        qtbot.waitUntil(lambda: rail_count(window) == 1, timeout=WAIT_MS)
        if attempt < ALERT_AFTER_FAILURES:
            assert not page.alert_label.isVisible()
    assert page.model.rows[0].status == "failing"
    assert page.alert_label.isVisible() and "prod" in page.alert_label.text()
    badge = rail.badge(CONNECTORS_PAGE)
    assert badge is not None and badge.tone is BadgeTone.ALERT and "prod" in badge.description
    assert rail.item(CONNECTORS_PAGE).text() == PAGE_TITLES[CONNECTORS_PAGE]  # the title stays the title
    assert page.status_alert is not None and page.status_alert.isVisible()
    assert page.status_alert.text() == "⚠ 1 connector failing"
    # The history pane has each run and the full error text; no secret in it.
    qtbot.waitUntil(lambda: page.history_model.rowCount() == ALERT_AFTER_FAILURES, timeout=WAIT_MS)
    assert {run.status for run in page.history_model.rows} == {"failed"}
    assert "401" in page.error_text.toPlainText() and "wrong-password" not in page.error_text.toPlainText()
    assert any("401" in n.text for n in window.notifications.notifications())
    # Credentials fixed: the next good sync clears the alert everywhere.
    update_config(window.context.sessions, row.id, secrets={"password": fake.password})
    sync_and_wait(qtbot, page)
    assert not page.alert_label.isVisible() and not page.status_alert.isVisible()
    qtbot.waitUntil(lambda: rail.badge(CONNECTORS_PAGE) is None, timeout=WAIT_MS)
    window.close()


def rail_count(window: MainWindow) -> int:
    badge = window.nav_list.badge(CONNECTORS_PAGE)
    return 0 if badge is None else badge.count


def test_the_window_starts_and_stops_the_scheduler(qtbot, workspace: Workspace, tmp_path: Path) -> None:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(workspace, "default", settings=settings)
    qtbot.addWidget(window)
    window.show()
    assert window.stack.widget(CONNECTORS_PAGE) is window.connectors_page
    assert window.connectors_page.scheduler is window.sync_scheduler
    assert not window.sync_scheduler.active
    window.start_syncs()
    assert window.sync_scheduler.active
    window.close()
    assert not window.sync_scheduler.active


def test_add_from_the_empty_page_opens_the_wizard(qtbot, context: AppContext, fake: FakeServiceNow) -> None:
    page = make_page(qtbot, context, fake)
    assert page.empty_label.isVisible() and page.add_button.isVisible()
    page.add_button.click()
    assert page.wizard is not None and page.wizard.isVisible()
    page.wizard.button(QWizard.WizardButton.CancelButton).click()
    assert page.wizard is None
