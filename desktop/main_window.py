"""The main window: navigation on the left, one page per job, a status bar that shows background work.

Pages load their rows through the :class:`~desktop.tasks.TaskRunner`: the worker function opens its own
tenant session, turns ORM objects into frozen rows and returns them; the page's model is reset with those rows
on the GUI thread. Typing in a search box restarts a short timer, and a new load cancels the previous one so a
slow, stale result never overwrites a newer one.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from PySide6.QtCore import QByteArray, QSettings, QSortFilterProxyModel, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QMainWindow,
    QProgressBar,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from sqlalchemy.orm import sessionmaker

from core.models import RunbookStatus
from core.repository import RunbookRow, TicketRow, count_tickets, list_runbooks, list_tickets
from core.tenancy import TenantSession
from core.workspace import Workspace
from desktop.table_models import (
    RUNBOOK_COLUMNS,
    SORT_ROLE,
    TICKET_COLUMNS,
    Column,
    RowTableModel,
    format_local_datetime,
    humanize,
)
from desktop.tasks import Task, TaskRunner

log = logging.getLogger(__name__)

SETTINGS_ORGANIZATION = "RunbookDesk"
SETTINGS_APPLICATION = "RunbookDesk"
GEOMETRY_KEY = "main_window/geometry"
WINDOW_STATE_KEY = "main_window/state"
PAGE_KEY = "main_window/page"
SPLITTER_KEY_PREFIX = "main_window/splitters/"

# The newest tickets first; a search narrows the rest. Loading 100k rows into a table helps nobody.
TICKET_LOAD_LIMIT = 1000
SEARCH_DELAY_MS = 250
DEFAULT_SIZE = (1280, 800)
LINK_SCHEMES = frozenset({"http", "https", "mailto"})

PAGE_TITLES = ("Review", "Tickets", "Runbooks", "Gaps", "Connectors", "Metrics")
REVIEW_PAGE, TICKETS_PAGE, RUNBOOKS_PAGE, GAPS_PAGE, CONNECTORS_PAGE, METRICS_PAGE = range(len(PAGE_TITLES))
PLACEHOLDER_TEXT = {
    REVIEW_PAGE: "Review arrives with the matching engine: suggested runbook links to accept or reject.",
    GAPS_PAGE: "Gaps arrives with gap analysis: recurring tickets that no runbook covers.",
    CONNECTORS_PAGE: "Connectors arrives with the connector registry and the sync scheduler.",
    METRICS_PAGE: "Metrics arrives with reporting: time to resolve and runbook coverage.",
}


# --- Work done on pool threads: plain functions, own session, rows out ----------------------------------


@dataclass(frozen=True, slots=True)
class TicketLoad:
    ticket_rows: tuple[TicketRow, ...]
    total: int


@dataclass(frozen=True, slots=True)
class RunbookLoad:
    runbook_rows: tuple[RunbookRow, ...]
    total: int


def load_tickets(sessions: sessionmaker[TenantSession], search: str, limit: int) -> TicketLoad:
    with sessions() as session:
        ticket_rows = tuple(list_tickets(session, search=search or None, limit=limit))
        total = count_tickets(session)
    return TicketLoad(ticket_rows, total)


def load_runbooks(
    sessions: sessionmaker[TenantSession], search: str, status: RunbookStatus | None
) -> RunbookLoad:
    with sessions() as session:
        runbook_rows = tuple(list_runbooks(session, status=status, search=search or None))
        # The core has no runbook count yet; runbooks number in the hundreds, so listing them all is cheap.
        filtered = bool(search) or status is not None
        total = len(list_runbooks(session)) if filtered else len(runbook_rows)
    return RunbookLoad(runbook_rows, total)


# --- Detail rendering -------------------------------------------------------------------------------------


def _text_block(text: str | None, empty: str) -> str:
    if not text or not text.strip():
        return f"<p><i>{html.escape(empty)}</i></p>"
    return f'<p style="white-space: pre-wrap;">{html.escape(text)}</p>'


def _safe_link(url: str | None) -> str | None:
    if url and QUrl(url).scheme().lower() in LINK_SCHEMES:
        return url
    return None


def ticket_detail_html(ticket: TicketRow) -> str:
    """The ticket as escaped rich text: every value comes from an external system and may contain markup."""
    metadata: list[tuple[str, str | None]] = [
        ("Number", ticket.external_id),
        ("Source", ticket.source_system),
        ("Kind", humanize(ticket.kind)),
        ("Status", ticket.status),
        ("Severity", ticket.severity),
        ("Category", ticket.category),
        ("Configuration item", ticket.configuration_item),
        ("Assignee", ticket.assignee),
        ("Created", format_local_datetime(ticket.created_at) if ticket.created_at else None),
        ("Updated", format_local_datetime(ticket.updated_at) if ticket.updated_at else None),
        ("Resolved", format_local_datetime(ticket.resolved_at) if ticket.resolved_at else None),
    ]
    table_rows = "".join(
        f'<tr><th align="left">{html.escape(label)}</th><td>{html.escape(value)}</td></tr>'
        for label, value in metadata
        if value
    )
    link = _safe_link(ticket.source_url)
    if link:
        escaped = html.escape(link, quote=True)
        table_rows += f'<tr><th align="left">Link</th><td><a href="{escaped}">{escaped}</a></td></tr>'
    return (
        f"<h2>{html.escape(ticket.title)}</h2>"
        f'<table cellspacing="0" cellpadding="2">{table_rows}</table>'
        f"<h3>Description</h3>{_text_block(ticket.description, 'No description.')}"
        f"<h3>Resolution notes</h3>{_text_block(ticket.resolution_notes, 'No resolution notes.')}"
    )


def runbook_header_html(runbook: RunbookRow) -> str:
    facts = [
        runbook.service and f"Service: {runbook.service}",
        f"Status: {humanize(runbook.status)}",
        f"Revision {runbook.current_revision}",
        f"Updated {format_local_datetime(runbook.updated_at)}",
        runbook.tags and "Tags: " + ", ".join(runbook.tags),
    ]
    fact_line = " · ".join(html.escape(fact) for fact in facts if fact)
    return f"<h2>{html.escape(runbook.title)}</h2><p>{fact_line}</p>"


def _open_link(url: QUrl) -> None:
    """Detail panes show text from external systems: open web and mail links only, never local files."""
    if url.scheme().lower() in LINK_SCHEMES:
        QDesktopServices.openUrl(url)
    else:
        log.info("not opening link %s: only %s links open", url.toString(), ", ".join(sorted(LINK_SCHEMES)))


def _detail_browser(parent: QWidget, object_name: str) -> QTextBrowser:
    browser = QTextBrowser(parent)
    browser.setObjectName(object_name)
    browser.setOpenLinks(False)  # QTextBrowser would otherwise try to load relative links as documents
    browser.anchorClicked.connect(_open_link)
    return browser


# --- Pages -----------------------------------------------------------------------------------------------


class _HasId(Protocol):
    @property
    def id(self) -> int: ...


RowT = TypeVar("RowT", bound=_HasId)


class PlaceholderPage(QWidget):
    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel(text, self)
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)


class BrowsePage(QWidget, Generic[RowT]):
    """Search box, sortable table and a detail pane over one kind of row. Subclasses load and render."""

    loaded = Signal()
    load_failed = Signal(str)

    def __init__(
        self,
        runner: TaskRunner,
        columns: Sequence[Column[RowT]],
        *,
        noun: str,
        search_placeholder: str,
        splitter_name: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._runner = runner
        self._noun = noun
        self._load_task: Task | None = None
        self.total_count: int | None = None

        self.search_edit = QLineEdit(self)
        self.search_edit.setObjectName(f"{noun}SearchEdit")
        self.search_edit.setPlaceholderText(search_placeholder)
        self.search_edit.setClearButtonEnabled(True)

        self.model: RowTableModel[RowT] = RowTableModel(columns, self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setSortLocaleAware(True)

        self.table = QTableView(self)
        self.table.setObjectName(f"{noun}Table")
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        # One line of text per row: the style's default row height fits far fewer tickets on screen.
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(self.model.column_index("Title"), QHeaderView.ResizeMode.Stretch)
        self.table.setSortingEnabled(True)

        self.summary_label = QLabel(self)
        self.error_label = QLabel(self)
        self.error_label.setObjectName(f"{noun}ErrorLabel")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: palette(bright-text); background: #b3261e; padding: 4px;")
        self.error_label.hide()

        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName(splitter_name)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self._build_detail())
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)

        self.filter_bar = QHBoxLayout()
        self.filter_bar.addWidget(self.search_edit, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(self.filter_bar)
        layout.addWidget(self.error_label)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.summary_label)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.reload)
        self.search_edit.textChanged.connect(self._search_timer.start)
        self.search_edit.returnPressed.connect(self.reload)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_row_changed)
        self._show_no_selection()

    # Subclass hooks.
    def _build_detail(self) -> QWidget:
        raise NotImplementedError

    def _start_load(self, search: str) -> Task:
        raise NotImplementedError

    def _show_row(self, row: RowT) -> None:
        raise NotImplementedError

    def _show_no_selection(self) -> None:
        raise NotImplementedError

    def _summary(self, shown: int, total: int, search: str) -> str:
        raise NotImplementedError

    # Behaviour shared by all pages.
    def focus_search(self) -> None:
        self.search_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search_edit.selectAll()

    def search_text(self) -> str:
        return self.search_edit.text().strip()

    def reload(self) -> None:
        self._search_timer.stop()
        self.cancel_load()
        self._load_task = self._start_load(self.search_text())

    def stop(self) -> None:
        """No more loads: the window is closing (a pending search must not start one on a stopped runner)."""
        self._search_timer.stop()
        self.cancel_load()

    def cancel_load(self) -> None:
        if self._load_task is not None and self._load_task.is_active:
            self._load_task.cancel()
        self._load_task = None

    def is_loading(self) -> bool:
        return self._load_task is not None and self._load_task.is_active

    def current_row(self) -> RowT | None:
        current = self.table.currentIndex()
        if not current.isValid():
            return None
        return self.model.row_at(self.proxy.mapToSource(current))

    def _rows_loaded(self, rows: tuple[RowT, ...], total: int) -> None:
        previous = self.current_row()
        self.model.set_rows(rows)
        self.total_count = total
        self.error_label.hide()
        self.summary_label.setText(self._summary(len(rows), total, self.search_text()))
        if previous is None or not self._select_row_id(previous.id):
            self._show_no_selection()
        self.loaded.emit()

    def _load_error(self, exc: Exception, traceback_text: str) -> None:
        log.error("loading %s failed:\n%s", self._noun, traceback_text)
        message = f"Could not load {self._noun}: {exc}"
        self.error_label.setText(message)
        self.error_label.setToolTip(traceback_text)
        self.error_label.show()
        self.load_failed.emit(message)

    def _select_row_id(self, row_id: int) -> bool:
        for row_number, row in enumerate(self.model.rows):
            if row.id == row_id:
                proxy_index = self.proxy.mapFromSource(self.model.index(row_number, 0))
                self.table.selectRow(proxy_index.row())
                return True
        return False

    def _on_current_row_changed(self, current: object, _previous: object) -> None:
        row = self.current_row()
        if row is None:
            self._show_no_selection()
        else:
            self._show_row(row)


class TicketsPage(BrowsePage[TicketRow]):
    def __init__(
        self, runner: TaskRunner, sessions: sessionmaker[TenantSession], parent: QWidget | None = None
    ) -> None:
        super().__init__(
            runner,
            TICKET_COLUMNS,
            noun="tickets",
            search_placeholder="Search tickets by number, title or description",
            splitter_name="ticketsSplitter",
            parent=parent,
        )
        self._sessions = sessions
        self.table.sortByColumn(self.model.column_index("Updated"), Qt.SortOrder.DescendingOrder)

    def _build_detail(self) -> QWidget:
        self.detail = _detail_browser(self, "ticketDetail")
        return self.detail

    def _start_load(self, search: str) -> Task:
        return self._runner.run(
            load_tickets,
            self._sessions,
            search,
            TICKET_LOAD_LIMIT,
            title="Loading tickets",
            on_done=self._on_loaded,
            on_error=self._load_error,
        )

    def _on_loaded(self, result: object) -> None:
        assert isinstance(result, TicketLoad)
        self._rows_loaded(result.ticket_rows, result.total)

    def _show_row(self, row: TicketRow) -> None:
        self.detail.setHtml(ticket_detail_html(row))

    def _show_no_selection(self) -> None:
        self.detail.setHtml("<p><i>Select a ticket to see its description and resolution notes.</i></p>")

    def _summary(self, shown: int, total: int, search: str) -> str:
        if search:
            capped = " (first matches only; refine the search)" if shown >= TICKET_LOAD_LIMIT else ""
            return f"{shown:,} of {total:,} tickets match “{search}”{capped}"
        if shown < total:
            return f"Showing the {shown:,} most recently updated of {total:,} tickets; search to find others"
        return f"{total:,} tickets"


class RunbooksPage(BrowsePage[RunbookRow]):
    def __init__(
        self, runner: TaskRunner, sessions: sessionmaker[TenantSession], parent: QWidget | None = None
    ) -> None:
        super().__init__(
            runner,
            RUNBOOK_COLUMNS,
            noun="runbooks",
            search_placeholder="Search runbooks by title or text",
            splitter_name="runbooksSplitter",
            parent=parent,
        )
        self._sessions = sessions
        self.status_combo = QComboBox(self)
        self.status_combo.setObjectName("runbookStatusFilter")
        self.status_combo.addItem("All statuses", None)
        for status in RunbookStatus:
            self.status_combo.addItem(humanize(status.value) or status.value, status.value)
        self.status_combo.currentIndexChanged.connect(self.reload)
        self.filter_bar.addWidget(self.status_combo)
        self.table.sortByColumn(self.model.column_index("Title"), Qt.SortOrder.AscendingOrder)

    def _build_detail(self) -> QWidget:
        pane = QWidget(self)
        self.detail_header = QLabel(pane)
        self.detail_header.setObjectName("runbookDetailHeader")
        self.detail_header.setTextFormat(Qt.TextFormat.RichText)
        self.detail_header.setWordWrap(True)
        self.detail_header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail = _detail_browser(pane, "runbookDetail")
        layout = QVBoxLayout(pane)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.detail_header)
        layout.addWidget(self.detail, 1)
        return pane

    def status_filter(self) -> RunbookStatus | None:
        value = self.status_combo.currentData()
        return RunbookStatus(value) if value else None

    def _start_load(self, search: str) -> Task:
        return self._runner.run(
            load_runbooks,
            self._sessions,
            search,
            self.status_filter(),
            title="Loading runbooks",
            on_done=self._on_loaded,
            on_error=self._load_error,
        )

    def _on_loaded(self, result: object) -> None:
        assert isinstance(result, RunbookLoad)
        self._rows_loaded(result.runbook_rows, result.total)

    def _show_row(self, row: RunbookRow) -> None:
        self.detail_header.setText(runbook_header_html(row))
        self.detail.setMarkdown(row.body if row.body.strip() else "*This runbook has no steps yet.*")

    def _show_no_selection(self) -> None:
        self.detail_header.setText("")
        self.detail.setMarkdown("*Select a runbook to read it.*")

    def _summary(self, shown: int, total: int, search: str) -> str:
        if search or self.status_filter() is not None:
            return f"{shown:,} of {total:,} runbooks match"
        return f"{total:,} runbooks"


# --- Status bar ------------------------------------------------------------------------------------------


class TaskStatusWidget(QWidget):
    """The newest running task, its progress and a Cancel button; hidden while nothing runs."""

    def __init__(self, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tasks: dict[int, Task] = {}
        self.label = QLabel(self)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setMaximumWidth(160)
        self.progress_bar.setTextVisible(False)
        self.cancel_button = QToolButton(self)
        self.cancel_button.setObjectName("cancelTaskButton")
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Cancel this background task")
        self.cancel_button.clicked.connect(self.cancel_current)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.cancel_button)
        runner.task_started.connect(self._on_task_changed)
        runner.task_progress.connect(self._on_task_changed)
        runner.task_finished.connect(self._on_task_ended)
        runner.task_failed.connect(self._on_task_failed)
        self.hide()

    def current_task(self) -> Task | None:
        return next(reversed(self._tasks.values()), None)

    def cancel_current(self) -> None:
        task = self.current_task()
        if task is not None:
            task.cancel()
            self.cancel_button.setEnabled(False)

    def _on_task_changed(self, task: Task) -> None:
        if task.is_active:
            self._tasks[task.id] = task
        self._refresh()

    def _on_task_ended(self, task: Task) -> None:
        self._tasks.pop(task.id, None)
        self._refresh()

    def _on_task_failed(self, task: Task, _exc: object, _traceback_text: str) -> None:
        self._on_task_ended(task)

    def _refresh(self) -> None:
        task = self.current_task()
        if task is None:
            self.hide()
            return
        text = task.title
        progress = task.progress
        if progress is not None and progress.message:
            text += f": {progress.message}"
        if len(self._tasks) > 1:
            text += f" (+{len(self._tasks) - 1} more)"
        self.label.setText(text)
        if progress is not None and progress.total:
            self.progress_bar.setRange(0, progress.total)
            self.progress_bar.setValue(min(progress.done, progress.total))
        else:
            self.progress_bar.setRange(0, 0)  # busy indicator: the task does not know its size
        self.cancel_button.setEnabled(not task.cancel_requested)
        self.show()


# --- Window ----------------------------------------------------------------------------------------------


class MainWindow(QMainWindow):
    def __init__(
        self,
        workspace: Workspace,
        tenant_slug: str,
        *,
        settings: QSettings | None = None,
        runner: TaskRunner | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._workspace = workspace
        self._tenant = workspace.tenant(tenant_slug)
        self._sessions = workspace.session_factory(tenant_slug)
        self._settings = (
            settings if settings is not None else QSettings(SETTINGS_ORGANIZATION, SETTINGS_APPLICATION)
        )
        self._owns_runner = runner is None
        self.runner = runner if runner is not None else TaskRunner(self)
        self.setWindowTitle(f"Runbook Desk — {workspace.root.name}")

        self.nav_list = QListWidget(self)
        self.nav_list.setObjectName("navigation")
        self.nav_list.addItems(PAGE_TITLES)
        self.nav_list.setMaximumWidth(220)

        self.tickets_page = TicketsPage(self.runner, self._sessions, self)
        self.runbooks_page = RunbooksPage(self.runner, self._sessions, self)
        self.stack = QStackedWidget(self)
        for page_number in range(len(PAGE_TITLES)):
            if page_number == TICKETS_PAGE:
                self.stack.addWidget(self.tickets_page)
            elif page_number == RUNBOOKS_PAGE:
                self.stack.addWidget(self.runbooks_page)
            else:
                self.stack.addWidget(PlaceholderPage(PLACEHOLDER_TEXT[page_number], self))
        self.nav_list.currentRowChanged.connect(self.stack.setCurrentIndex)

        self.main_splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.main_splitter.setObjectName("mainSplitter")
        self.main_splitter.setChildrenCollapsible(False)
        self.main_splitter.addWidget(self.nav_list)
        self.main_splitter.addWidget(self.stack)
        self.main_splitter.setStretchFactor(1, 1)
        self.setCentralWidget(self.main_splitter)

        self._build_status_bar()
        self._build_menus()
        self.tickets_page.loaded.connect(self._update_counts)
        self.runbooks_page.loaded.connect(self._update_counts)
        self.runner.task_failed.connect(self._on_task_failed)

        self._restore_state()
        self.reload()

    # --- construction ----------------------------------------------------------------------------------

    def _build_status_bar(self) -> None:
        status_bar = self.statusBar()
        self.task_status = TaskStatusWidget(self.runner, self)
        self.counts_label = QLabel(self)
        self.tenant_label = QLabel(f"Tenant: {self._tenant.name}", self)
        self.tenant_label.setToolTip(f"Tenant slug: {self._tenant.slug}")
        self.workspace_label = QLabel(str(self._workspace.root), self)
        self.workspace_label.setToolTip(f"Workspace folder: {self._workspace.root}")
        self.workspace_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        status_bar.addPermanentWidget(self.task_status)
        status_bar.addPermanentWidget(self.counts_label)
        status_bar.addPermanentWidget(self.tenant_label)
        status_bar.addPermanentWidget(self.workspace_label)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.reload_action = self._action(
            "&Reload", QKeySequence(QKeySequence.StandardKey.Refresh), self.reload
        )
        file_menu.addAction(self.reload_action)
        file_menu.addSeparator()
        file_menu.addAction(self._action("&Quit", QKeySequence(QKeySequence.StandardKey.Quit), self.close))

        edit_menu = self.menuBar().addMenu("&Edit")
        self.find_action = self._action(
            "&Find", QKeySequence(QKeySequence.StandardKey.Find), self.focus_current_search
        )
        edit_menu.addAction(self.find_action)

        go_menu = self.menuBar().addMenu("&Go")
        self.page_actions: list[QAction] = []
        for page_number, title in enumerate(PAGE_TITLES):
            action = self._action(
                title, QKeySequence(f"Ctrl+{page_number + 1}"), self._page_switcher(page_number)
            )
            go_menu.addAction(action)
            self.page_actions.append(action)

    def _action(self, text: str, shortcut: QKeySequence, slot: Callable[[], object]) -> QAction:
        action = QAction(text, self)
        action.setShortcut(shortcut)
        action.triggered.connect(slot)
        return action

    def _page_switcher(self, page_number: int) -> Callable[[], None]:
        def switch() -> None:
            self.show_page(page_number)

        return switch

    # --- behaviour -------------------------------------------------------------------------------------

    def show_page(self, page_number: int) -> None:
        self.nav_list.setCurrentRow(page_number)

    def current_page(self) -> QWidget:
        return self.stack.currentWidget()

    def focus_current_search(self) -> None:
        page = self.current_page()
        if isinstance(page, BrowsePage):
            page.focus_search()

    def reload(self) -> None:
        self.tickets_page.reload()
        self.runbooks_page.reload()

    def _update_counts(self) -> None:
        parts = []
        if self.tickets_page.total_count is not None:
            parts.append(f"{self.tickets_page.total_count:,} tickets")
        if self.runbooks_page.total_count is not None:
            parts.append(f"{self.runbooks_page.total_count:,} runbooks")
        self.counts_label.setText(" · ".join(parts))

    def _on_task_failed(self, task: Task, exc: object, _traceback_text: str) -> None:
        self.statusBar().showMessage(f"{task.title} failed: {exc}", 15_000)

    # --- persistence -----------------------------------------------------------------------------------

    def _splitters(self) -> tuple[QSplitter, ...]:
        return (self.main_splitter, self.tickets_page.splitter, self.runbooks_page.splitter)

    def _restore_state(self) -> None:
        geometry = self._settings.value(GEOMETRY_KEY)
        if not (isinstance(geometry, QByteArray) and self.restoreGeometry(geometry)):
            available = self.screen().availableGeometry()
            self.resize(
                min(DEFAULT_SIZE[0], available.width() * 9 // 10),
                min(DEFAULT_SIZE[1], available.height() * 9 // 10),
            )
        window_state = self._settings.value(WINDOW_STATE_KEY)
        if isinstance(window_state, QByteArray):
            self.restoreState(window_state)
        for splitter in self._splitters():
            splitter_state = self._settings.value(SPLITTER_KEY_PREFIX + splitter.objectName())
            if not (isinstance(splitter_state, QByteArray) and splitter.restoreState(splitter_state)):
                splitter.setSizes(self._default_splitter_sizes(splitter))
        page = self._settings.value(PAGE_KEY, TICKETS_PAGE, int)
        self.show_page(page if isinstance(page, int) and 0 <= page < len(PAGE_TITLES) else TICKETS_PAGE)

    def _default_splitter_sizes(self, splitter: QSplitter) -> list[int]:
        return [180, 1100] if splitter is self.main_splitter else [650, 450]

    def save_state(self) -> None:
        self._settings.setValue(GEOMETRY_KEY, self.saveGeometry())
        self._settings.setValue(WINDOW_STATE_KEY, self.saveState())
        for splitter in self._splitters():
            self._settings.setValue(SPLITTER_KEY_PREFIX + splitter.objectName(), splitter.saveState())
        self._settings.setValue(PAGE_KEY, self.stack.currentIndex())
        self._settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_state()
        self.tickets_page.stop()
        self.runbooks_page.stop()
        if self._owns_runner:
            self.runner.shutdown()
        super().closeEvent(event)
