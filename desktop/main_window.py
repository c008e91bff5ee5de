"""The main window: navigation on the left, one page per job, a status bar that shows background work.

Pages load their rows through the :class:`~desktop.background.tasks.TaskRunner`: the worker function opens
its own
tenant session, turns ORM objects into frozen rows and returns them; the page's model is reset with those rows
on the GUI thread. Typing in a search box restarts a short timer, and a new load cancels the previous one so a
slow, stale result never overwrites a newer one.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from PySide6.QtCore import QByteArray, QMimeData, QSettings, QSortFilterProxyModel, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
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

from core.importing import ImportSummary
from core.importing.demo import DemoSeed
from core.matching.embedding import Embedder
from core.store.repository import TicketRow, count_tickets, list_tickets
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from core.workflow.drafts import RunbookDraft
from desktop.background import jobs
from desktop.background.tasks import Task, TaskRunner
from desktop.context import AppContext
from desktop.dialogs.settings import SettingsDialog
from desktop.widgets.notifications import Level, NotificationArea
from desktop.widgets.table_models import (
    SORT_ROLE,
    TICKET_COLUMNS,
    Column,
    RowTableModel,
    format_local_datetime,
    humanize,
)

log = logging.getLogger(__name__)

SETTINGS_ORGANIZATION = "RunbookDesk"
SETTINGS_APPLICATION = "RunbookDesk"
GEOMETRY_KEY = "main_window/geometry"
WINDOW_STATE_KEY = "main_window/state"
PAGE_KEY = "main_window/page"
SPLITTER_KEY_PREFIX = "main_window/splitters/"

SHUTDOWN_WAIT_MS = 60_000
# The newest tickets first; a search narrows the rest. Loading 100k rows into a table helps nobody.
TICKET_LOAD_LIMIT = 1000
SEARCH_DELAY_MS = 250
DEFAULT_SIZE = (1280, 800)
LINK_SCHEMES = frozenset({"http", "https", "mailto"})

PAGE_TITLES = ("Review", "Tickets", "Runbooks", "Gaps", "Connectors", "Metrics")
REVIEW_PAGE, TICKETS_PAGE, RUNBOOKS_PAGE, GAPS_PAGE, CONNECTORS_PAGE, METRICS_PAGE = range(len(PAGE_TITLES))
PLACEHOLDER_TEXT: dict[int, str] = {}  # every page is real now; kept for pages still to come


# --- Work done on pool threads: plain functions, own session, rows out ----------------------------------


@dataclass(frozen=True, slots=True)
class TicketLoad:
    ticket_rows: tuple[TicketRow, ...]
    total: int


def load_tickets(sessions: sessionmaker[TenantSession], search: str, limit: int) -> TicketLoad:
    with sessions() as session:
        ticket_rows = tuple(list_tickets(session, search=search or None, limit=limit))
        total = count_tickets(session)
    return TicketLoad(ticket_rows, total)


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
        embedder_factory: Callable[[], Embedder] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._workspace = workspace
        self._tenant = workspace.tenant(tenant_slug)
        self._settings = (
            settings if settings is not None else QSettings(SETTINGS_ORGANIZATION, SETTINGS_APPLICATION)
        )
        self._owns_runner = runner is None
        self.runner = runner if runner is not None else TaskRunner(self)
        self.context = AppContext(workspace, tenant_slug, self.runner)
        if embedder_factory is not None:  # tests share the session's loaded model
            self.context.embedder_factory = embedder_factory
        self.setWindowTitle(f"Runbook Desk — {workspace.root.name}")

        self.nav_list = QListWidget(self)
        self.nav_list.setObjectName("navigation")
        self.nav_list.addItems(PAGE_TITLES)
        self.nav_list.setMaximumWidth(220)

        self.tickets_page = TicketsPage(self.runner, self.context.sessions, self)
        # Imported here, not at the top: desktop.pages.runbooks builds on BrowsePage from this module.
        from desktop.pages.runbooks import RunbooksPage

        self.runbooks_page = RunbooksPage(self.context, self)
        self.runbooks_page.notice.connect(lambda text: self.statusBar().showMessage(text, 10_000))
        from desktop.pages.review.page import ReviewPage

        self.review_page = ReviewPage(self.context, self)  # loads its queue when first shown
        self.review_page.draft_requested.connect(self._open_draft_for_ticket)
        self.review_page.decision_made.connect(lambda _record: self._update_counts())
        from desktop.pages.gaps import GapsPage

        self.gaps_page = GapsPage(self.context, self)  # runs its analysis when asked
        self.gaps_page.draft_requested.connect(self.runbooks_page.open_draft)
        self.gaps_page.error_occurred.connect(lambda text: self.notifications.notify(Level.ERROR, text))
        from desktop.pages.connectors import ConnectorsPage

        self.connectors_page = ConnectorsPage(self.context, self)  # syncs start with start_startup_jobs
        self.connectors_page.notify.connect(
            lambda level, text, details: self.notifications.notify(level, text, details)
        )
        self.connectors_page.analysis_requested.connect(self.start_analysis)
        from desktop.pages.metrics import MetricsPage

        self.metrics_page = MetricsPage(self.context, self)  # loads when shown; evaluates alerts on a timer
        self.metrics_page.alert_raised.connect(lambda text: self.notifications.notify(Level.ERROR, text))
        self.connectors_page.scheduler.sync_finished.connect(lambda _r: self.metrics_page.evaluate_alerts())
        self.stack = QStackedWidget(self)
        for page_number in range(len(PAGE_TITLES)):
            if page_number == REVIEW_PAGE:
                self.stack.addWidget(self.review_page)
            elif page_number == TICKETS_PAGE:
                self.stack.addWidget(self.tickets_page)
            elif page_number == RUNBOOKS_PAGE:
                self.stack.addWidget(self.runbooks_page)
            elif page_number == GAPS_PAGE:
                self.stack.addWidget(self.gaps_page)
            elif page_number == CONNECTORS_PAGE:
                self.stack.addWidget(self.connectors_page)
            elif page_number == METRICS_PAGE:
                self.stack.addWidget(self.metrics_page)
            else:
                self.stack.addWidget(PlaceholderPage(PLACEHOLDER_TEXT[page_number], self))
        self.nav_list.currentRowChanged.connect(self.stack.setCurrentIndex)

        self.main_splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.main_splitter.setObjectName("mainSplitter")
        self.main_splitter.setChildrenCollapsible(False)
        self.main_splitter.addWidget(self.nav_list)
        self.main_splitter.addWidget(self.stack)
        self.main_splitter.setStretchFactor(1, 1)
        self.notifications = NotificationArea(self)
        central = QWidget(self)
        central_layout = QVBoxLayout(central)
        central_layout.setContentsMargins(0, 0, 0, 0)
        central_layout.setSpacing(0)
        central_layout.addWidget(self.notifications)
        central_layout.addWidget(self.main_splitter, 1)
        self.setCentralWidget(central)
        self.setAcceptDrops(True)

        self._build_status_bar()
        self.connectors_page.attach_alerts(self.nav_list.item(CONNECTORS_PAGE), self.statusBar())
        self._build_menus()
        self._build_toolbar()
        self._jobs: dict[str, Task] = {}  # the running job of each kind: one import, one analysis...
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
        self.import_tickets_action = self._action(
            "Import &tickets…", QKeySequence("Ctrl+I"), self.choose_ticket_file
        )
        self.import_runbooks_action = self._action(
            "Import &runbook folder…", QKeySequence("Ctrl+Shift+I"), self.choose_runbook_folder
        )
        file_menu.addAction(self.import_tickets_action)
        file_menu.addAction(self.import_runbooks_action)
        file_menu.addSeparator()
        self.settings_action = self._action(
            "&Settings…", QKeySequence(QKeySequence.StandardKey.Preferences), self.open_settings
        )
        self.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        file_menu.addAction(self.settings_action)
        file_menu.addSeparator()
        file_menu.addAction(self._action("&Quit", QKeySequence(QKeySequence.StandardKey.Quit), self.close))

        edit_menu = self.menuBar().addMenu("&Edit")
        self.find_action = self._action(
            "&Find", QKeySequence(QKeySequence.StandardKey.Find), self.focus_current_search
        )
        edit_menu.addAction(self.find_action)

        analysis_menu = self.menuBar().addMenu("&Analysis")
        self.analyse_action = self._action(
            "&Analyse new tickets", QKeySequence("Ctrl+Shift+A"), self.start_analysis
        )
        self.rebuild_action = self._action("&Rebuild indexes", QKeySequence(), self.start_rebuild)
        analysis_menu.addAction(self.analyse_action)
        analysis_menu.addAction(self.rebuild_action)

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

    def _build_toolbar(self) -> None:
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        toolbar.addWidget(QLabel(" Tenant: ", toolbar))
        self.tenant_combo = QComboBox(toolbar)
        self.tenant_combo.setObjectName("tenantSwitcher")
        self.tenant_combo.setToolTip("Each tenant has its own tickets, runbooks, thresholds and indexes")
        for tenant in self._workspace.tenants():
            self.tenant_combo.addItem(tenant.name, tenant.slug)
        self.tenant_combo.setCurrentIndex(self.tenant_combo.findData(self._tenant.slug))
        self.tenant_combo.activated.connect(self._on_tenant_chosen)
        toolbar.addWidget(self.tenant_combo)
        toolbar.addSeparator()
        for action in (self.import_tickets_action, self.analyse_action, self.settings_action):
            toolbar.addAction(action)

    # --- jobs ------------------------------------------------------------------------------------------

    def _start_job(
        self,
        kind: str,
        fn: Callable[..., object],
        *args: object,
        title: str,
        on_done: Callable[[object], None],
    ) -> Task | None:
        """Run one job of a kind at a time; a second request while one runs says so instead of queueing."""
        running = self._jobs.get(kind)
        if running is not None and running.is_active:
            self.statusBar().showMessage(f"{running.title} is already running", 5000)
            return None
        task = self.runner.run(fn, self.context, *args, title=title, on_done=on_done, progress=True)
        self._jobs[kind] = task
        return task

    def start_startup_jobs(self, *, seed_demo: bool) -> None:
        """After the window is visible: import the demo on its first start, then analyse what is pending."""
        self.connectors_page.start_scheduler()
        if seed_demo:
            self._start_job(
                "import", jobs.seed_demo_workspace, title="Preparing the demo", on_done=self._seeded
            )
        else:
            self.start_analysis()

    def _seeded(self, result: object) -> None:
        if isinstance(result, DemoSeed):
            self.notifications.notify(
                Level.INFO,
                f"Demo workspace ready: {result.runbooks.inserted} runbooks and {result.tickets.inserted} "
                "tickets. Analysing them now; the review queue fills as it goes.",
            )
        self.reload()
        self.start_analysis()

    def start_import(self, path: Path) -> Task | None:
        if jobs.import_kind(path) is None:
            self.notifications.notify(
                Level.ERROR,
                f"{path.name} is neither a ticket export (.csv, .json, .jsonl) nor a folder of runbooks.",
            )
            return None
        return self._start_job(
            "import", jobs.import_path, path, title=f"Importing {path.name}", on_done=self._imported
        )

    def _imported(self, result: object) -> None:
        if not isinstance(result, ImportSummary):
            return
        details = "\n".join(f"{row.location}: {row.reason}" for row in result.rejected)
        level = (
            Level.ERROR if result.rejected_count and not (result.inserted or result.updated) else Level.INFO
        )
        self.notifications.notify(level, f"Imported {result.headline()}", details)
        self.reload()
        if result.inserted or result.updated:
            self.start_analysis()

    def choose_ticket_file(self) -> None:
        file_name, _ = QFileDialog.getOpenFileName(
            self, "Import tickets", "", "Ticket exports (*.csv *.tsv *.json *.jsonl *.ndjson);;All files (*)"
        )
        if file_name:
            self.start_import(Path(file_name))

    def choose_runbook_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import a folder of Markdown runbooks")
        if folder:
            self.start_import(Path(folder))

    def start_analysis(self) -> Task | None:
        return self._start_job(
            "analysis", jobs.analyse_new_tickets, title="Analysing tickets", on_done=self._analysed
        )

    def _analysed(self, result: object) -> None:
        if isinstance(result, jobs.AnalysisOutcome) and result.batch.analysed:
            batch = result.batch
            self.notifications.notify(
                Level.INFO,
                f"Analysed {batch.analysed:,} tickets: {batch.linked:,} linked, {batch.flagged:,} to review, "
                f"{batch.drafts:,} without a runbook.",
            )
        self.reload()
        self.metrics_page.evaluate_alerts()

    def start_rebuild(self) -> Task | None:
        return self._start_job(
            "analysis", jobs.rebuild_indexes, title="Rebuilding indexes", on_done=lambda _r: self.reload()
        )

    def open_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.context, self._settings, self)
        dialog.thresholds_saved.connect(lambda _t: self.start_analysis())
        dialog.open()
        return dialog

    # --- tenants -----------------------------------------------------------------------------------------

    def _on_tenant_chosen(self, index: int) -> None:
        slug = self.tenant_combo.itemData(index)
        if isinstance(slug, str) and slug != self._tenant.slug:
            self.switch_tenant(slug)

    def switch_tenant(self, slug: str) -> MainWindow:
        """Open the other tenant in a fresh window (own sessions, engine and jobs) and close this one."""
        replacement = MainWindow(
            self._workspace,
            slug,
            settings=self._settings,
            embedder_factory=self.context.embedder_factory,
        )
        self.save_state()
        replacement.show()
        replacement.start_startup_jobs(seed_demo=False)
        self.close()
        return replacement

    # --- drag and drop -------------------------------------------------------------------------------

    @staticmethod
    def _dropped_paths(mime: QMimeData) -> list[Path]:
        return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]

    def can_import(self, mime: QMimeData) -> bool:
        paths = self._dropped_paths(mime)
        return bool(paths) and all(jobs.import_kind(path) for path in paths)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self.can_import(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = self._dropped_paths(event.mimeData())
        event.acceptProposedAction()
        for path in paths[:1]:  # one import at a time; the job refuses a second while one runs
            self.start_import(path)
        if len(paths) > 1:
            self.statusBar().showMessage("Drop one file or folder at a time", 5000)

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
        if self.review_page.isVisible():  # a hidden review page reloads when it is next shown
            self.review_page.reload()
        else:
            self.review_page.mark_stale()
        self.metrics_page.mark_stale()

    def _open_draft_for_ticket(self, draft: object, ticket_id: int) -> None:
        """``D`` on the review page: the editor opens pre-filled; its first save records the decision."""
        if not isinstance(draft, RunbookDraft):
            return
        editor = self.runbooks_page.open_draft(draft)
        editor.saved.connect(
            lambda runbook_id: self.review_page.record_draft(ticket_id, runbook_id),
            Qt.ConnectionType.SingleShotConnection,
        )

    def _update_counts(self) -> None:
        parts = []
        if self.tickets_page.total_count is not None:
            parts.append(f"{self.tickets_page.total_count:,} tickets")
        if self.runbooks_page.total_count is not None:
            parts.append(f"{self.runbooks_page.total_count:,} runbooks")
        self.counts_label.setText(" · ".join(parts))

    def _on_task_failed(self, task: Task, exc: object, traceback_text: str) -> None:
        self.statusBar().showMessage(f"{task.title} failed: {exc}", 15_000)
        self.notifications.notify(Level.ERROR, f"{task.title} failed: {exc}", traceback_text)

    # --- persistence -----------------------------------------------------------------------------------

    def _splitters(self) -> tuple[QSplitter, ...]:
        return (
            self.main_splitter,
            self.tickets_page.splitter,
            self.runbooks_page.splitter,
            *self.review_page.splitters(),
        )

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
        if splitter is self.main_splitter:
            return [180, 1100]
        return [650, 450] if splitter.count() == 2 else [360, 460, 460]

    def save_state(self) -> None:
        self._settings.setValue(GEOMETRY_KEY, self.saveGeometry())
        self._settings.setValue(WINDOW_STATE_KEY, self.saveState())
        for splitter in self._splitters():
            self._settings.setValue(SPLITTER_KEY_PREFIX + splitter.objectName(), splitter.saveState())
        self._settings.setValue(PAGE_KEY, self.stack.currentIndex())
        self._settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.runbooks_page.close_editors():  # an editor with unsaved text, and the user kept it
            event.ignore()
            return
        self.save_state()
        self.tickets_page.stop()
        self.runbooks_page.stop()
        self.review_page.stop()
        self.gaps_page.stop()
        self.connectors_page.stop()
        self.metrics_page.stop()
        if self._owns_runner:
            # Jobs stop at their next cancel check, but loading the model cannot be interrupted (up to ~10 s):
            # hide first, then wait for it. A worker still running Python when the interpreter exits aborts
            # the process.
            self.hide()
            self.runner.shutdown(timeout_ms=SHUTDOWN_WAIT_MS)
        super().closeEvent(event)
