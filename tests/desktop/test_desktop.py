"""Desktop shell: row table models, the background task runner, the main window and app start-up.

Headless (QT_QPA_PLATFORM=offscreen, set by conftest.py), real SQLite workspaces in tmp_path, and every
QSettings object points at a file in tmp_path: no test reads or writes the developer's settings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt, QThread, QTimer
from PySide6.QtTest import QAbstractItemModelTester
from PySide6.QtWidgets import QApplication, QWidget
from sqlalchemy.orm import sessionmaker

from core.store.models import Runbook, RunbookStatus, Ticket
from core.store.repository import RunbookRow, TicketRow
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from desktop.app import run_app
from desktop.background import ticket_jobs
from desktop.background.tasks import TaskCancelledError, TaskContext, TaskRunner, TaskState
from desktop.main_window import GAPS_PAGE, GEOMETRY_KEY, RUNBOOKS_PAGE, TICKETS_PAGE, MainWindow
from desktop.widgets.table_models import (
    RUNBOOK_COLUMNS,
    SORT_ROLE,
    TICKET_COLUMNS,
    Column,
    RowTableModel,
)
from desktop.widgets.ticket_detail import ticket_detail_html

WAIT_MS = 10_000

UPDATED = datetime(2024, 3, 5, 14, 30, tzinfo=UTC)


def ticket_row(row_id: int, **changes: object) -> TicketRow:
    values: dict[str, object] = {
        "id": row_id,
        "external_id": f"INC{row_id:07d}",
        "source_system": "servicenow",
        "title": f"Ticket {row_id}",
        "description": "Something broke.",
        "status": "Resolved",
        "severity": "2 - High",
        "assignee": None,
        "kind": "incident",
        "category": "Network",
        "configuration_item": None,
        "resolution_notes": "Restarted it.",
        "created_at": UPDATED - timedelta(hours=2),
        "updated_at": UPDATED,
        "resolved_at": None,
        "source_url": None,
    }
    values.update(changes)
    return TicketRow(**values)  # type: ignore[arg-type]


def runbook_row(row_id: int, **changes: object) -> RunbookRow:
    values: dict[str, object] = {
        "id": row_id,
        "title": f"Runbook {row_id}",
        "body": "# Steps\n\n1. Check it.",
        "tags": ("vpn", "network"),
        "service": "VPN",
        "status": "in_review",
        "source": "authored",
        "external_ref": None,
        "current_revision": row_id,
        "updated_at": UPDATED,
    }
    values.update(changes)
    return RunbookRow(**values)  # type: ignore[arg-type]


@pytest.fixture
def utc_plus_two_desktop(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fixed local zone (POSIX TZ string, no tz database needed) so local-time display is checkable."""
    monkeypatch.setenv("TZ", "RBD-2")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def settings_desktop(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings" / "runbook-desk.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def runner_desktop(qapp: QApplication) -> Iterator[TaskRunner]:
    runner = TaskRunner()
    yield runner
    runner.shutdown()
    runner.deleteLater()


# --- RowTableModel --------------------------------------------------------------------------------------


def test_row_table_model_passes_model_tester(qapp: QApplication) -> None:
    model = RowTableModel[TicketRow](TICKET_COLUMNS)
    model.set_rows([ticket_row(1), ticket_row(2)])
    tester = QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    model.set_rows([ticket_row(3), ticket_row(4, severity=None, updated_at=None), ticket_row(5)])
    model.set_rows([])
    model.set_rows([ticket_row(6)])
    assert model.rowCount() == 1
    assert model.columnCount() == len(TICKET_COLUMNS)
    del tester


def test_model_tester_covers_alignment_and_tooltips(qapp: QApplication) -> None:
    # The tester inspects the first cell's roles, so put the aligned, tool-tipped column first.
    columns = (
        Column[RunbookRow](
            "Revision",
            lambda row: row.current_revision,
            alignment=Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
            tooltip=lambda row: f"revision {row.current_revision}",
        ),
        *RUNBOOK_COLUMNS,
    )
    model = RowTableModel[RunbookRow](columns)
    tester = QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    model.set_rows([runbook_row(1), runbook_row(2)])
    assert model.data(model.index(1, 0), Qt.ItemDataRole.ToolTipRole) == "revision 2"
    del tester


def test_ticket_columns_display_strings(qapp: QApplication, utc_plus_two_desktop: None) -> None:
    model = RowTableModel[TicketRow](TICKET_COLUMNS)
    model.set_rows([ticket_row(7, title="VPN down <again>"), ticket_row(8, severity=None, updated_at=None)])

    def display(row: int) -> list[str]:
        return [model.data(model.index(row, column)) for column in range(model.columnCount())]

    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in range(6)] == [
        "Number",
        "Title",
        "Severity",
        "Status",
        "Category",
        "Updated",
    ]
    # 14:30 UTC is 16:30 in UTC+2.
    assert display(0) == [
        "INC0000007",
        "VPN down <again>",
        "2 - High",
        "Resolved",
        "Network",
        "2024-03-05 16:30",
    ]
    assert display(1)[2] == ""
    assert display(1)[5] == ""
    assert model.data(model.index(0, 1), Qt.ItemDataRole.ToolTipRole) == "VPN down <again>"
    assert model.data(model.index(0, 5), SORT_ROLE) == UPDATED.timestamp()
    assert model.data(model.index(1, 5), SORT_ROLE) is None
    assert model.data(model.index(5, 0)) is None  # out of range: no data, no crash


def test_runbook_columns_display_strings(qapp: QApplication, utc_plus_two_desktop: None) -> None:
    model = RowTableModel[RunbookRow](RUNBOOK_COLUMNS)
    model.set_rows([runbook_row(3, service=None, tags=())])
    cells = [model.data(model.index(0, column)) for column in range(model.columnCount())]
    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in range(6)] == [
        "Title",
        "Service",
        "Status",
        "Tags",
        "Revision",
        "Updated",
    ]
    assert cells == ["Runbook 3", "", "In review", "", "3", "2024-03-05 16:30"]
    model.set_rows([runbook_row(4)])
    assert model.data(model.index(0, 3)) == "vpn, network"
    alignment = model.data(model.index(0, 4), Qt.ItemDataRole.TextAlignmentRole)
    assert alignment == Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
    assert model.data(model.index(0, 4), SORT_ROLE) == 4


def test_row_at_returns_the_row_and_rejects_foreign_indexes(qapp: QApplication) -> None:
    model = RowTableModel[TicketRow](TICKET_COLUMNS)
    rows = (ticket_row(1), ticket_row(2))
    model.set_rows(rows)
    assert model.row_at(model.index(1, 3)) is rows[1]
    other = RowTableModel[TicketRow](TICKET_COLUMNS)
    other.set_rows(rows)
    with pytest.raises(IndexError):
        model.row_at(other.index(0, 0))
    with pytest.raises(IndexError):
        model.row_at(model.index(9, 0))


# --- TaskRunner -----------------------------------------------------------------------------------------


def test_runner_delivers_result_on_gui_thread(qtbot, qapp: QApplication, runner_desktop: TaskRunner) -> None:
    worker_threads: list[QThread] = []
    delivered: list[tuple[object, bool]] = []

    def work(a: int, b: int) -> int:
        worker_threads.append(QThread.currentThread())
        return a + b

    def on_done(result: object) -> None:
        delivered.append((result, QThread.currentThread() is qapp.thread()))

    with qtbot.waitSignal(runner_desktop.task_finished, timeout=WAIT_MS) as finished:
        task = runner_desktop.run(work, 2, 3, title="Adding", on_done=on_done)
    assert delivered == [(5, True)]
    assert worker_threads[0] is not qapp.thread()
    assert finished.args == [task]
    assert task.state is TaskState.SUCCEEDED
    assert task.title == "Adding"
    assert runner_desktop.active_tasks() == ()


def test_runner_delivers_errors_with_traceback(qtbot, qapp: QApplication, runner_desktop: TaskRunner) -> None:
    errors: list[tuple[Exception, str, bool]] = []

    def broken_step() -> None:
        raise ValueError("disk on fire")

    def on_error(exc: Exception, traceback_text: str) -> None:
        errors.append((exc, traceback_text, QThread.currentThread() is qapp.thread()))

    with qtbot.waitSignal(runner_desktop.task_failed, timeout=WAIT_MS) as failed:
        task = runner_desktop.run(broken_step, on_done=pytest.fail, on_error=on_error)
    [(exc, traceback_text, on_gui_thread)] = errors
    assert isinstance(exc, ValueError)
    assert str(exc) == "disk on fire"
    assert "broken_step" in traceback_text
    assert "ValueError: disk on fire" in traceback_text
    assert on_gui_thread
    assert failed.args[0] is task
    assert failed.args[1] is exc
    assert task.state is TaskState.FAILED


def test_runner_logs_errors_nobody_handles(
    qtbot, runner_desktop: TaskRunner, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise KeyError("missing")

    with qtbot.waitSignal(runner_desktop.task_failed, timeout=WAIT_MS):
        runner_desktop.run(broken, title="Unwatched job")
    assert "Unwatched job" in caplog.text
    assert "KeyError" in caplog.text


def test_runner_reports_progress(qtbot, runner_desktop: TaskRunner) -> None:
    seen: list[tuple[int, int | None, str]] = []

    def count_up(context: TaskContext, steps: int) -> str:
        for step in range(1, steps + 1):
            context.report(step, steps, f"step {step}")
        return "counted"

    def on_progress(task: object) -> None:
        progress = task.progress  # type: ignore[attr-defined]
        seen.append((progress.done, progress.total, progress.message))

    runner_desktop.task_progress.connect(on_progress)
    results: list[object] = []
    with qtbot.waitSignal(runner_desktop.task_finished, timeout=WAIT_MS):
        runner_desktop.run(count_up, 5, progress=True, on_done=results.append)
    assert results == ["counted"]
    assert seen, "no progress reached the GUI thread"
    assert seen[-1] == (5, 5, "step 5")  # the final step always gets through the throttle
    assert [done for done, _total, _message in seen] == sorted(done for done, _total, _message in seen)


def test_a_new_phase_gets_through_the_throttle(qtbot, runner_desktop: TaskRunner) -> None:
    """Issue 16, item 3: "loading the matching model" stayed on screen through the whole first indexing
    because the next phase's message came within the throttle interval and was dropped."""
    seen: list[str] = []

    def phases(context: TaskContext) -> None:
        context.report(0, None, "loading the matching model")
        context.report(0, None, "updating the runbook and ticket indexes")
        for done in range(1, 50):  # a counted phase stays throttled
            context.report(done, 100, f"indexed {done} of 100 tickets")

    runner_desktop.task_progress.connect(lambda task: seen.append(task.progress.message))
    with qtbot.waitSignal(runner_desktop.task_finished, timeout=WAIT_MS):
        runner_desktop.run(phases, progress=True)
    assert seen[:2] == ["loading the matching model", "updating the runbook and ticket indexes"]
    assert len(seen) < 10, seen


def test_cancel_stops_a_long_task(qtbot, runner_desktop: TaskRunner) -> None:
    stopped = threading.Event()

    def wait_forever(context: TaskContext) -> str:
        try:
            context.report(0, None, "waiting")
            if context.wait_for_cancel(60):
                raise TaskCancelledError("asked to stop")
            return "never"
        finally:
            stopped.set()

    with qtbot.waitSignal(runner_desktop.task_progress, timeout=WAIT_MS):
        task = runner_desktop.run(wait_forever, progress=True, on_done=pytest.fail, on_error=pytest.fail)
    assert task.state is TaskState.RUNNING
    started = time.monotonic()
    with qtbot.waitSignal(runner_desktop.task_finished, timeout=WAIT_MS):
        task.cancel()
    assert time.monotonic() - started < 30
    assert stopped.is_set()
    assert task.state is TaskState.CANCELLED
    assert runner_desktop.active_tasks() == ()


def test_cancelled_task_result_is_dropped(qtbot, runner_desktop: TaskRunner) -> None:
    release = threading.Event()

    def finishes_anyway() -> str:
        release.wait(WAIT_MS / 1000)
        return "stale"

    with qtbot.waitSignal(runner_desktop.task_finished, timeout=WAIT_MS):
        task = runner_desktop.run(finishes_anyway, on_done=pytest.fail)
        runner_desktop.cancel(task.id)
        release.set()
    assert task.state is TaskState.CANCELLED


def test_queued_task_cancelled_before_it_starts_never_runs(qtbot, qapp: QApplication) -> None:
    runner = TaskRunner(max_threads=1)
    release = threading.Event()
    ran: list[str] = []
    try:
        blocker = runner.run(release.wait, WAIT_MS / 1000)
        queued = runner.run(ran.append, "queued ran")
        queued.cancel()
        with qtbot.waitSignals([runner.task_finished, runner.task_finished], timeout=WAIT_MS):
            release.set()
        assert ran == []
        assert blocker.state is TaskState.SUCCEEDED
        assert queued.state is TaskState.CANCELLED
    finally:
        runner.shutdown()


def test_run_refuses_other_threads_and_after_shutdown(qtbot, qapp: QApplication) -> None:
    runner = TaskRunner()
    errors: list[BaseException] = []

    def from_worker() -> None:
        try:
            runner.run(print)
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=from_worker)
    thread.start()
    thread.join(WAIT_MS / 1000)
    assert len(errors) == 1
    assert runner.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        runner.run(print)


# --- MainWindow -----------------------------------------------------------------------------------------


@pytest.fixture
def seeded_workspace_desktop(
    workspace: Workspace, sessions: sessionmaker[TenantSession]
) -> Iterator[Workspace]:
    with sessions.begin() as session:
        session.add_all(
            [
                Ticket(
                    external_id="INC0010001",
                    source_system="servicenow",
                    title="VPN tunnel drops every hour",
                    description="Users in Lyon lose the VPN every hour.",
                    resolution_notes="Raised the IKE lifetime to 8 hours.",
                    severity="2 - High",
                    status="Resolved",
                    category="Network",
                    content_hash="x",
                    updated_at=UPDATED,
                ),
                Ticket(
                    external_id="INC0010002",
                    source_system="servicenow",
                    title="Printer on floor 3 jams",
                    description="Paper jam, <b>again</b>.",
                    severity="4 - Low",
                    status="New",
                    category="Hardware",
                    content_hash="x",
                    updated_at=UPDATED - timedelta(days=1),
                ),
                Ticket(
                    external_id="INC0010003",
                    source_system="servicenow",
                    title="Disk full on db-7",
                    description="The data volume is at 100 %.",
                    severity="1 - Critical",
                    status="In Progress",
                    category="Database",
                    content_hash="x",
                    updated_at=UPDATED - timedelta(days=2),
                ),
                Runbook(
                    title="Reset a VPN tunnel",
                    body="# Reset the tunnel\n\n1. Open the firewall console.\n2. Clear the IKE SA.\n",
                    status=RunbookStatus.APPROVED,
                    service="VPN",
                    tags=["vpn", "network"],
                ),
                Runbook(
                    title="Free disk space",
                    body="Delete old *logs* first.",
                    status=RunbookStatus.DRAFT,
                    service="Database",
                ),
            ]
        )
    return workspace


def open_window(qtbot, workspace: Workspace, settings: QSettings) -> MainWindow:
    window = MainWindow(workspace, "default", settings=settings)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: not window.tickets_page.is_loading() and not window.runbooks_page.is_loading())
    return window


@pytest.fixture
def window_desktop(
    qtbot, seeded_workspace_desktop: Workspace, settings_desktop: QSettings
) -> Iterator[MainWindow]:
    window = open_window(qtbot, seeded_workspace_desktop, settings_desktop)
    yield window
    window.close()  # stops its workers before the workspace fixture disposes the engine


def table_column(window_page: object, header: str) -> list[str]:
    page = window_page
    model = page.table.model()  # type: ignore[attr-defined]
    column = page.model.column_index(header)  # type: ignore[attr-defined]
    return [model.index(row, column).data() for row in range(model.rowCount())]


def test_window_shows_tickets_and_runbooks(
    window_desktop: MainWindow, seeded_workspace_desktop: Workspace
) -> None:
    window = window_desktop
    assert window.windowTitle() == f"Runbook Desk — Workspace: {seeded_workspace_desktop.root.resolve()}"
    assert window.current_page() is window.review_page  # a first start opens on Review (issue 16)
    # Sorted by Updated, newest first.
    assert table_column(window.tickets_page, "Number") == ["INC0010001", "INC0010002", "INC0010003"]
    assert table_column(window.runbooks_page, "Title") == ["Free disk space", "Reset a VPN tunnel"]
    assert table_column(window.runbooks_page, "Status") == ["Draft", "Approved"]
    assert window.counts_label.text() == "3 tickets · 2 runbooks"
    assert window.tenant_label.text() == "Tenant: Default"
    assert window.workspace_label.text() == f"Workspace: {seeded_workspace_desktop.root.resolve()}"
    assert window.tickets_page.summary_label.text() == "3 tickets"


def test_table_sorts_through_the_proxy(window_desktop: MainWindow) -> None:
    page = window_desktop.tickets_page
    page.table.sortByColumn(page.model.column_index("Severity"), Qt.SortOrder.AscendingOrder)
    assert table_column(page, "Severity") == ["1 - Critical", "2 - High", "4 - Low"]
    page.table.sortByColumn(page.model.column_index("Title"), Qt.SortOrder.DescendingOrder)
    assert table_column(page, "Title")[0] == "VPN tunnel drops every hour"


def test_selecting_a_ticket_fills_the_detail_pane(qtbot, window_desktop: MainWindow) -> None:
    page = window_desktop.tickets_page
    assert "Select a ticket" in page.detail.toPlainText()
    proxy_row = table_column(page, "Number").index("INC0010002")
    rect = page.table.visualRect(page.table.model().index(proxy_row, 1))
    qtbot.mouseClick(page.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    text = page.detail.toPlainText()
    assert "Printer on floor 3 jams" in text
    assert "INC0010002" in text
    assert "4 - Low" in text
    assert "Paper jam, <b>again</b>." in text  # shown as text, not markup
    assert "No resolution notes." in text

    page.table.selectRow(table_column(page, "Number").index("INC0010001"))
    text = page.detail.toPlainText()
    assert "Users in Lyon lose the VPN every hour." in text
    assert "Raised the IKE lifetime to 8 hours." in text


def test_selecting_a_runbook_renders_its_markdown(qtbot, window_desktop: MainWindow) -> None:
    window_desktop.show_page(RUNBOOKS_PAGE)
    page = window_desktop.runbooks_page
    page.table.selectRow(table_column(page, "Title").index("Reset a VPN tunnel"))
    assert "Reset a VPN tunnel" in page.detail_header.text()
    assert "Approved" in page.detail_header.text()
    document = page.detail.document()
    assert "# Reset" not in page.detail.toPlainText()  # rendered, not shown as source
    assert document.firstBlock().text() == "Reset the tunnel"
    assert document.firstBlock().blockFormat().headingLevel() == 1
    assert "Clear the IKE SA." in page.detail.toPlainText()


def test_search_box_filters_tickets(qtbot, window_desktop: MainWindow) -> None:
    page = window_desktop.tickets_page
    page.table.selectRow(table_column(page, "Number").index("INC0010001"))
    qtbot.keyClicks(page.search_edit, "vpn")
    qtbot.waitUntil(lambda: page.table.model().rowCount() == 1, timeout=WAIT_MS)
    assert table_column(page, "Number") == ["INC0010001"]
    assert page.summary_label.text() == "1 of 3 tickets match “vpn”"
    assert "VPN tunnel drops every hour" in page.detail.toPlainText()  # selection survives the reload

    with qtbot.waitSignal(page.loaded, timeout=WAIT_MS):
        page.search_edit.clear()
    assert page.table.model().rowCount() == 3


def test_runbook_search_and_status_filter(qtbot, window_desktop: MainWindow) -> None:
    page = window_desktop.runbooks_page
    with qtbot.waitSignal(page.loaded, timeout=WAIT_MS):
        page.status_combo.setCurrentIndex(page.status_combo.findData(RunbookStatus.DRAFT.value))
    assert table_column(page, "Title") == ["Free disk space"]
    assert page.summary_label.text() == "1 of 2 runbooks match"

    with qtbot.waitSignal(page.loaded, timeout=WAIT_MS):
        page.search_edit.setText("firewall")  # matches the body
        page.status_combo.setCurrentIndex(0)  # reloads at once, with the search text
    assert table_column(page, "Title") == ["Reset a VPN tunnel"]


def test_a_newer_load_cancels_the_older_one(qtbot, window_desktop: MainWindow) -> None:
    page = window_desktop.tickets_page
    page.search_edit.setText("printer")
    page.reload()
    older = page._load_task
    with qtbot.waitSignal(page.loaded, timeout=WAIT_MS):
        page.reload()
    assert older is not None
    qtbot.waitUntil(lambda: not older.is_active, timeout=WAIT_MS)
    assert older.state is TaskState.CANCELLED
    assert table_column(page, "Number") == ["INC0010002"]


def test_load_error_is_shown(
    qtbot, window_desktop: MainWindow, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_list_tickets(*_args: object, **_kwargs: object) -> list[TicketRow]:
        raise RuntimeError("database is on holiday")

    monkeypatch.setattr(ticket_jobs, "list_tickets", broken_list_tickets)
    window_desktop.show_page(TICKETS_PAGE)  # the window opens on Review
    page = window_desktop.tickets_page
    with qtbot.waitSignal(page.load_failed, timeout=WAIT_MS) as failed:
        page.reload()
    assert failed.args == ["Could not load tickets: database is on holiday"]
    assert page.error_label.isVisible()
    assert "broken_list_tickets" in page.error_label.toolTip()
    assert "database is on holiday" in window_desktop.statusBar().currentMessage()
    assert "database is on holiday" in caplog.text


def test_status_bar_shows_task_progress_and_cancels(qtbot, window_desktop: MainWindow) -> None:
    status = window_desktop.task_status
    # The window's own start-up loads (queue, counts, monitoring) show there until they end: on a loaded
    # machine they may still be running now.
    qtbot.waitUntil(lambda: not status.isVisible(), timeout=WAIT_MS)

    def long_job(context: TaskContext) -> None:
        context.report(3, 10, "syncing")
        if context.wait_for_cancel(60):
            raise TaskCancelledError("stop")

    task = window_desktop.runner.run(long_job, title="Long job", progress=True)
    qtbot.waitUntil(lambda: status.isVisible() and status.progress_bar.value() == 3, timeout=WAIT_MS)
    assert status.label.text() == "Long job: syncing"
    assert status.progress_bar.maximum() == 10
    with qtbot.waitSignal(window_desktop.runner.task_finished, timeout=WAIT_MS):
        qtbot.mouseClick(status.cancel_button, Qt.MouseButton.LeftButton)
    assert task.state is TaskState.CANCELLED
    assert not status.isVisible()


def test_a_quiet_task_runs_without_showing_in_the_status_bar(qtbot, window_desktop: MainWindow) -> None:
    status = window_desktop.task_status
    qtbot.waitUntil(lambda: not status.isVisible(), timeout=WAIT_MS)
    release = threading.Event()
    seen: list[bool] = []
    task = window_desktop.runner.run(release.wait, 30, title="Checking for others' decisions", quiet=True)
    qtbot.waitUntil(lambda: task.state is TaskState.RUNNING, timeout=WAIT_MS)
    seen.append(status.isVisible())
    with qtbot.waitSignal(window_desktop.runner.task_finished, timeout=WAIT_MS):
        release.set()
    assert seen == [False] and not status.isVisible()


def test_keyboard_shortcuts(qtbot, window_desktop: MainWindow) -> None:
    window = window_desktop
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)
    assert window.current_page() is window.runbooks_page
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.runbooks_page.search_edit.hasFocus()
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert window.current_page() is window.alerts_page
    assert window.nav_list.currentItem().text() == "Alerts"
    qtbot.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert window.current_page() is window.tickets_page
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.tickets_page.search_edit.hasFocus()
    qtbot.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert window.current_page() is window.review_page
    assert window.nav_list.currentItem().text() == "Review"
    qtbot.keyClick(window, Qt.Key.Key_7, Qt.KeyboardModifier.ControlModifier)
    page = window.current_page()
    assert page is window.metrics_page
    assert window.nav_list.currentItem().text() == "Metrics"
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)  # no search here: no-op


def test_geometry_and_splitters_are_saved_on_close(
    qtbot, seeded_workspace_desktop: Workspace, settings_desktop: QSettings
) -> None:
    window = open_window(qtbot, seeded_workspace_desktop, settings_desktop)
    window.resize(700, 500)
    window.show_page(TICKETS_PAGE)  # the window opens on Review; this splitter is laid out once shown
    window.tickets_page.splitter.setSizes([400, 250])
    window.show_page(RUNBOOKS_PAGE)
    saved_sizes = window.tickets_page.splitter.sizes()
    window.close()
    assert settings_desktop.contains(GEOMETRY_KEY)
    assert Path(settings_desktop.fileName()).is_file()

    reread = QSettings(settings_desktop.fileName(), QSettings.Format.IniFormat)
    reopened = open_window(qtbot, seeded_workspace_desktop, reread)
    assert (reopened.width(), reopened.height()) == (700, 500)
    assert reopened.current_page() is reopened.runbooks_page
    reopened.show_page(TICKETS_PAGE)
    assert reopened.tickets_page.splitter.sizes() == saved_sizes
    reopened.close()


def test_a_page_saved_by_an_older_version_opens_the_same_page_now_that_alerts_came_in(
    qtbot, seeded_workspace_desktop: Workspace, settings_desktop: QSettings
) -> None:
    """Older versions saved the page's index; Alerts (issue 13) moved every page after Review by one."""
    settings_desktop.setValue("main_window/page", 2)  # Runbooks, in the order those versions had
    window = open_window(qtbot, seeded_workspace_desktop, settings_desktop)
    assert window.current_page() is window.runbooks_page
    window.show_page(GAPS_PAGE)
    window.close()
    reread = QSettings(settings_desktop.fileName(), QSettings.Format.IniFormat)
    assert reread.value("main_window/page_name") == "gaps" and not reread.contains("main_window/page")
    reopened = open_window(qtbot, seeded_workspace_desktop, reread)
    assert reopened.current_page() is reopened.gaps_page
    reopened.close()


# --- run_app --------------------------------------------------------------------------------------------


def test_run_app_shows_the_window_and_closes_the_workspace(
    qtbot, qapp: QApplication, seeded_workspace_desktop: Workspace, settings_desktop: QSettings, embedder
) -> None:
    root = seeded_workspace_desktop.root
    shown: list[str] = []

    def close_when_loaded() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        loaded = len(windows) == 1 and None not in (
            windows[0].tickets_page.total_count,
            windows[0].runbooks_page.total_count,
        )
        if not loaded:  # both lists load on workers, in either order
            QTimer.singleShot(10, close_when_loaded)
            return
        shown.append(windows[0].counts_label.text())
        windows[0].close()

    QTimer.singleShot(0, close_when_loaded)
    exit_code = run_app(
        seeded_workspace_desktop,
        "default",
        ["runbook-desk"],
        settings=settings_desktop,
        embedder_factory=lambda: embedder,
    )
    assert exit_code == 0
    assert shown == ["3 tickets · 2 runbooks"]
    assert qapp.applicationName() == "RunbookDesk"
    assert settings_desktop.contains(GEOMETRY_KEY)
    # The lock is released: the workspace opens again.
    Workspace.open(root).close()
    leftover: list[QWidget] = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
    for widget in leftover:
        widget.deleteLater()


def test_ticket_detail_html_escapes_and_links_only_web_urls(qapp: QApplication) -> None:
    safe = ticket_detail_html(ticket_row(1, title="<script>x</script>", source_url="https://sn.example/INC1"))
    assert "&lt;script&gt;" in safe
    assert "<script>" not in safe
    assert 'href="https://sn.example/INC1"' in safe
    local = ticket_detail_html(ticket_row(2, source_url="file:///etc/passwd"))
    assert "passwd" not in local
