"""The main window: navigation on the left, one page per job, a status bar that shows background work.

The window owns what outlives a page: the :class:`~desktop.context.AppContext` (workspace, tenant sessions,
task runner, test seams), the connector :class:`~desktop.background.sync_jobs.SyncDispatcher` (started after
start-up, stopped on close), the long jobs of the File and Analysis menus (one of each kind at a time) and
the notification area every page reports to. Pages are independent of each other; the window wires their
signals together (a review decision refreshes the counts, a draft opens the runbook editor...).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from PySide6.QtCore import QByteArray, QMimeData, QSettings, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from core.analytics.attention import AttentionCounts
from core.importing import ImportSummary
from core.importing.demo import DemoSeed
from core.matching.embedding import Embedder
from core.matching.engine import RefreshReport
from core.matching.rematch import RematchReport
from core.store.models import TeamRole
from core.store.workspace import Workspace, describe_workspace
from core.workflow.drafts import RunbookDraft
from desktop.background import jobs
from desktop.background.nav_jobs import load_attention_counts
from desktop.background.rematch_jobs import reanalyse_all_tickets
from desktop.background.sync_jobs import SyncDispatcher
from desktop.background.tasks import Task, TaskRunner
from desktop.background.write_jobs import WritebackDrainer
from desktop.context import AppContext
from desktop.dialogs.settings import SettingsDialog
from desktop.pages.alerts import AlertsPage
from desktop.pages.connectors import ConnectorsPage
from desktop.pages.gaps import GapsPage
from desktop.pages.members import MembersPage
from desktop.pages.metrics import MetricsPage
from desktop.pages.review.page import ReviewPage
from desktop.pages.runbooks import RunbooksPage
from desktop.pages.tickets import TicketsPage
from desktop.permissions import RoleLock, read_permissions
from desktop.refusals import describe_error, is_refusal
from desktop.widgets.browse import HasFilterBox
from desktop.widgets.elided_label import ElidedLabel
from desktop.widgets.nav_icons import nav_icon
from desktop.widgets.nav_rail import BadgeTone, NavRail
from desktop.widgets.notifications import Level, NotificationArea
from desktop.widgets.splitter_defaults import SplitterProportions
from desktop.widgets.task_status import TaskStatusWidget

log = logging.getLogger(__name__)

T = TypeVar("T")

SETTINGS_ORGANIZATION = "RunbookDesk"
SETTINGS_APPLICATION = "RunbookDesk"
GEOMETRY_KEY = "main_window/geometry"
WINDOW_STATE_KEY = "main_window/state"
# The page the window was left on, by its name (PAGE_ICONS): an index would point elsewhere once a page is
# added. PAGE_KEY is the index older versions saved, read once in the order they had (OLD_PAGE_ORDER).
PAGE_NAME_KEY = "main_window/page_name"
PAGE_KEY = "main_window/page"
OLD_PAGE_ORDER = ("review", "tickets", "runbooks", "gaps", "connectors", "metrics")
SPLITTER_KEY_PREFIX = "main_window/splitters/"

SHUTDOWN_WAIT_MS = 60_000
DEFAULT_SIZE = (1280, 800)
# Every page must work from this size up (issue 16): the window's minimum size never exceeds it.
SMALLEST_SUPPORTED_SIZE = (1024, 700)
# Store changes come in bursts (a bulk decision, an analysis then its reload); one recount after the burst.
ATTENTION_DELAY_MS = 150

# By splitter object name (the settings key too); the review page's three panes are queue | ticket | matches,
# and its match pane keeps the ranked runbooks' table short (five rows) above the selected section's text.
DEFAULT_SPLITTER_SIZES: dict[str, tuple[int, ...]] = {
    "ticketsSplitter": (70, 30),
    "runbooksSplitter": (66, 34),
    "reviewSplitter": (34, 21, 45),
    "reviewTicketSplitter": (60, 40),
    "reviewMatchSplitter": (34, 66),
    "alertsSplitter": (62, 38),
    "alertsDetailSplitter": (35, 30, 35),
}

PAGE_TITLES = ("Review", "Alerts", "Tickets", "Runbooks", "Gaps", "Connectors", "Metrics")
# desktop.widgets.nav_icons
PAGE_ICONS = ("review", "alerts", "tickets", "runbooks", "gaps", "connectors", "metrics")
# The widest count each page's badge is given room for (the review queue runs to thousands; incidents,
# alerts and failing connectors to a handful): the rail is as wide as its widest row needs.
PAGE_BADGE_RESERVES = ("999+", "99+", "", "", "", "99+", "99+")
REVIEW_PAGE, ALERTS_PAGE, TICKETS_PAGE, RUNBOOKS_PAGE, GAPS_PAGE, CONNECTORS_PAGE, METRICS_PAGE = range(
    len(PAGE_TITLES)
)
# Team mode only (issue 17): the Members page, after the others, so their numbers (Ctrl+1..7) never shift.
MEMBERS_PAGE = len(PAGE_TITLES)
MEMBERS_TITLE, MEMBERS_NAME = "Members", "members"


def _demo_extras(seed: DemoSeed) -> str:
    """ ", 15 monitoring incidents and 16 knowledge articles": what else the demo brought, when it did."""
    parts = []
    if seed.alerts is not None and seed.alerts.incident_ids:
        parts.append(f"{len(seed.alerts.incident_ids)} monitoring incidents")
    if seed.articles is not None and seed.articles.new:
        parts.append(f"{seed.articles.new} knowledge articles")
    return "".join(f", {part}" for part in parts)


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
        # The role, read once: pages lock what it does not allow (the database refuses it anyway).
        self.context.permissions = read_permissions(self.context.sessions)
        # The pages by name (the settings key of the page left on); a team database adds Members.
        self.page_titles = PAGE_TITLES + ((MEMBERS_TITLE,) if workspace.is_team else ())
        self.page_names = PAGE_ICONS + ((MEMBERS_NAME,) if workspace.is_team else ())
        if embedder_factory is not None:  # tests share the session's loaded model
            self.context.embedder_factory = embedder_factory
        self.setWindowTitle(f"Runbook Desk — {describe_workspace(workspace.root)}")
        self.notifications = NotificationArea(self)
        # Connector syncs, every few minutes while the window is open; started by start_syncs.
        self.sync_scheduler = SyncDispatcher(self.context, parent=self)
        # Approved links posted to their source tickets (opt-in per connector): after decisions and syncs.
        self.writeback_drainer = WritebackDrainer(self.context, parent=self)

        # The rail: page icons, and the counts of what waits on each page (refresh_attention).
        self.nav_list = NavRail(
            self.page_titles,
            [nav_icon(name, self.palette(), self.devicePixelRatioF()) for name in self.page_names],
            PAGE_BADGE_RESERVES + ("",) * (len(self.page_names) - len(PAGE_ICONS)),
            self,
        )
        self._attention_task: Task | None = None
        self._attention_again = False
        self.attention: AttentionCounts | None = None  # the latest counts, once loaded
        self._attention_timer = QTimer(self)
        self._attention_timer.setSingleShot(True)
        self._attention_timer.setInterval(ATTENTION_DELAY_MS)
        self._attention_timer.timeout.connect(self._load_attention)

        self.tickets_page = TicketsPage(self.runner, self.context.sessions, self)
        self.runbooks_page = RunbooksPage(self.context, self)
        self.runbooks_page.notice.connect(lambda text: self.statusBar().showMessage(text, 10_000))
        self.runbooks_page.rematched.connect(self._rematched)  # a runbook change reached old tickets
        self.review_page = ReviewPage(self.context, self)  # loads its queue when first shown
        self.review_page.draft_requested.connect(self._open_draft_for_ticket)
        self.review_page.decision_made.connect(lambda _record: self._update_counts())
        self.review_page.decision_made.connect(self.writeback_drainer.drain_soon)
        # The ticket on the Review page shows where its approved runbook stands in the source system.
        self.review_page.writeback_status.retried.connect(self.writeback_drainer.drain_soon)
        self.writeback_drainer.drained.connect(self.review_page.writeback_status.reload)
        self.review_page.decision_made.connect(self.review_page.writeback_status.reload)
        self.sync_scheduler.sync_ended.connect(self.writeback_drainer.drain_soon)
        self.review_page.decision_made.connect(lambda _record: self.refresh_attention())
        self.review_page.queue_loaded.connect(self.refresh_attention)
        self.gaps_page = GapsPage(self.context, self)  # runs its analysis when asked
        self.gaps_page.draft_requested.connect(self.runbooks_page.open_draft)
        # "Adopt as runbook" beside a ticket's articles: the Runbooks page adopts it and selects the draft.
        self.review_page.knowledge_pane.adopt_requested.connect(self._adopt_article)
        self.gaps_page.error_occurred.connect(lambda text: self.notifications.notify(Level.ERROR, text))
        self.gaps_page.drafts_generated.connect(self._gap_drafts_generated)
        self.connectors_page = ConnectorsPage(self.context, self.sync_scheduler, self)
        self.connectors_page.notify.connect(self.notifications.notify)
        self.connectors_page.analysis_requested.connect(self._analyse_after_sync)
        self.connectors_page.loaded.connect(self.refresh_attention)
        self.metrics_page = MetricsPage(self.context, self)  # loads when shown; evaluates alerts on a timer
        self.metrics_page.alert_raised.connect(lambda text: self.notifications.notify(Level.ALERT, text))
        self.sync_scheduler.sync_finished.connect(lambda _report: self.metrics_page.evaluate_alerts())
        self.sync_scheduler.sync_finished.connect(lambda _report: self.refresh_attention())
        self.metrics_page.alerts_evaluated.connect(lambda _changes: self.refresh_attention())
        # Monitoring: the incidents reload after every sync and analysis (its badge counts them even while
        # the page is hidden); a critical incident with a confident runbook is announced once.
        self.alerts_page = AlertsPage(self.context, self)
        self.alerts_page.notify.connect(self._alerts_notify)
        self.alerts_page.open_in_review.connect(self.open_in_review)
        self.alerts_page.counts_changed.connect(self._show_incident_counts)
        self.sync_scheduler.sync_finished.connect(lambda _report: self.alerts_page.reload())
        self._analysis_again = False  # a sync brought tickets while an analysis ran: one more after it
        # An outcome changes a runbook's success rate: the library's flag and the Metrics section show it.
        self.review_page.decisions.outcome_recorded.connect(lambda _record: self.metrics_page.mark_stale())
        self.review_page.decisions.outcome_recorded.connect(lambda _record: self.runbooks_page.reload())
        pages: dict[int, QWidget] = {
            REVIEW_PAGE: self.review_page,
            ALERTS_PAGE: self.alerts_page,
            TICKETS_PAGE: self.tickets_page,
            RUNBOOKS_PAGE: self.runbooks_page,
            GAPS_PAGE: self.gaps_page,
            CONNECTORS_PAGE: self.connectors_page,
            METRICS_PAGE: self.metrics_page,
        }
        self.members_page: MembersPage | None = None
        if workspace.is_team:
            self.members_page = MembersPage(self.context, self)
            pages[MEMBERS_PAGE] = self.members_page
        self.stack = QStackedWidget(self)
        for page_number in range(len(self.page_titles)):
            self.stack.addWidget(pages[page_number])
        self.nav_list.currentRowChanged.connect(self.stack.setCurrentIndex)

        # Rail and pages side by side in a plain layout, not a splitter: the rail is as wide as its entries
        # need (NavRail), and nothing a page asks for can squeeze it.
        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.setSpacing(0)
        body.addWidget(self.nav_list)
        body.addWidget(self.stack, 1)
        central = QWidget(self)
        central_layout = QVBoxLayout(central)
        central_layout.setContentsMargins(0, 0, 0, 0)
        central_layout.setSpacing(0)
        central_layout.addWidget(self.notifications)
        central_layout.addLayout(body, 1)
        self.setCentralWidget(central)
        self.setAcceptDrops(True)

        self._build_status_bar()
        self.connectors_page.attach_alerts(self.statusBar())
        self._build_menus()
        self._build_toolbar()
        self._lock_by_role()
        self._jobs: dict[str, Task] = {}  # the running job of each kind: one import, one analysis...
        self._closing = False
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
        # Elided in the middle: a long workspace path must not widen the window (issue 16).
        self.workspace_label = ElidedLabel(describe_workspace(self._workspace.root), self)
        self.workspace_label.setToolTip(f"Workspace folder: {self._workspace.root}")
        self.workspace_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        status_bar.addPermanentWidget(self.task_status)
        status_bar.addPermanentWidget(self.counts_label)
        # Team mode: who this is, on which database, in which role; "Local workspace" on SQLite.
        self.team_label = QLabel(self._team_text(), self)
        self.team_label.setObjectName("teamStatus")
        self.team_label.setToolTip(
            "A team's PostgreSQL database: what you may do here depends on your role in this tenant"
            if self._workspace.is_team
            else "A single-user workspace: one SQLite file on this computer"
        )
        status_bar.addPermanentWidget(self.tenant_label)
        status_bar.addPermanentWidget(self.team_label)
        status_bar.addPermanentWidget(self.workspace_label)

    def _team_text(self) -> str:
        """``Team: alice@db.example/runbooks · analyst``, or ``Local workspace``."""
        if not self._workspace.is_team:
            return "Local workspace"
        permissions = self.context.permissions
        url = self._workspace.engine.url
        role = permissions.role.value if permissions.role is not None else "no member"
        return f"Team: {permissions.login}@{url.host or 'localhost'}/{url.database} · {role}"

    def _lock_by_role(self) -> None:
        """Disable what the role does not allow, the role it needs as tooltip (:mod:`desktop.permissions`).

        Admin: connectors (add, edit, sync, pause, delete; the page locks its secret rotation itself) and
        the alert thresholds. Analyst: imports, analyses, the Runbooks, Gaps and Alerts pages' writes; the
        Review page's decisions are its own to lock. Settings lock their thresholds and calibration.
        """
        permissions = self.context.permissions
        self.admin_lock = RoleLock(permissions, TeamRole.ADMIN, self)
        connectors = self.connectors_page
        self.admin_lock.lock(
            connectors.add_action,
            connectors.sync_action,
            connectors.pause_action,
            connectors.edit_action,
            connectors.delete_action,
            connectors.add_button,
            self.metrics_page.thresholds_button,
        )
        self.analyst_lock = RoleLock(permissions, TeamRole.ANALYST, self)
        runbooks = self.runbooks_page
        self.analyst_lock.lock(
            self.import_tickets_action,
            self.import_runbooks_action,
            self.analyse_action,
            self.reanalyse_all_action,
            runbooks.new_action,
            runbooks.edit_action,
            runbooks.table_edit_action,
            *runbooks.status_actions.values(),
            runbooks.import_action,
            runbooks.adopt_action,
            self.gaps_page.draft_button,
            self.gaps_page.dismiss_button,
            self.alerts_page.create_button,
        )

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
        # Ctrl+, as on every desktop: Qt's Preferences key has no binding on Linux or Windows (it is Cmd+, on
        # macOS, which Qt spells Ctrl+, too).
        self.settings_action = self._action("&Settings…", QKeySequence("Ctrl+,"), self.open_settings)
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
        self.reanalyse_all_action = self._action(
            "Re-analyse &all tickets", QKeySequence(), self.start_full_analysis
        )
        self.reanalyse_all_action.setToolTip("Match every ticket again against today's runbooks and settings")
        analysis_menu.addAction(self.reanalyse_all_action)

        go_menu = self.menuBar().addMenu("&Go")
        self.page_actions: list[QAction] = []
        for page_number, title in enumerate(self.page_titles):
            action = self._action(
                title, QKeySequence(f"Ctrl+{page_number + 1}"), self._page_switcher(page_number)
            )
            go_menu.addAction(action)
            self.page_actions.append(action)
        # Ctrl+Tab cycles the pages as it cycles tabs elsewhere; left to Qt it does nothing or leaves the
        # focus on a widget with no visible focus (issue 16, item 1).
        go_menu.addSeparator()
        self.next_page_action = self._action(
            "&Next page", QKeySequence(QKeySequence.StandardKey.NextChild), lambda: self._step_page(1)
        )
        self.previous_page_action = self._action(
            "&Previous page",
            QKeySequence(QKeySequence.StandardKey.PreviousChild),
            lambda: self._step_page(-1),
        )
        go_menu.addAction(self.next_page_action)
        go_menu.addAction(self.previous_page_action)

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
        fn: Callable[..., T],
        *args: object,
        title: str,
        on_done: Callable[[T], None],
    ) -> Task | None:
        """Run one job of a kind at a time; a second request while one runs says so instead of queueing."""
        running = self._jobs.get(kind)
        if running is not None and running.is_active:
            self.statusBar().showMessage(f"{running.title} is already running", 5000)
            return None
        task = self.runner.run(
            fn, self.context, *args, title=title, on_done=on_done, on_error=self._job_failed, progress=True
        )
        self._jobs[kind] = task
        return task

    def _job_failed(self, exc: Exception, traceback_text: str) -> None:
        """The notification comes from ``_on_task_failed`` (every task's failure gets one); the log keeps the
        trace for support."""
        log.info("a window job failed: %s\n%s", exc, traceback_text)

    def start_startup_jobs(self, *, seed_demo: bool) -> None:
        """After the window is visible: start the connector syncs, import the demo on its first start, then
        analyse what is pending."""
        self.start_syncs()
        if seed_demo:
            self._start_job(
                "import", jobs.seed_demo_workspace, title="Preparing the demo", on_done=self._seeded
            )
        else:
            self.start_analysis()

    def _adopt_article(self, article_id: int) -> None:
        self.show_page(RUNBOOKS_PAGE)
        self.runbooks_page.adopt_article(article_id)

    def start_syncs(self) -> None:
        """Load the connectors (their alert shows before the page is opened) and poll for due syncs."""
        if self._closing:
            return
        self.connectors_page.reload()
        # Syncs write the connectors' cursors and runs, an admin's rows in team mode (and their secrets are
        # in the admin's keychain): another role's window shows the connectors and runs none.
        if self.context.permissions.allows(TeamRole.ADMIN):
            self.sync_scheduler.start()

    def _seeded(self, seed: DemoSeed | None) -> None:
        if seed is not None:
            self.notifications.notify(
                Level.INFO,
                f"Demo workspace ready: {seed.runbooks.inserted} runbooks, {seed.tickets.inserted} tickets"
                f"{_demo_extras(seed)}. Analysing them now; the review queue fills as it goes.",
            )
        self.reload()
        self.start_analysis()

    def start_import(self, path: Path) -> Task | None:
        if not self.context.permissions.allows(TeamRole.ANALYST):
            self.notifications.notify(
                Level.ERROR, f"Not imported: {self.context.permissions.needs(TeamRole.ANALYST).lower()}."
            )
            return None
        if jobs.import_kind(path) is None:
            self.notifications.notify(
                Level.ERROR,
                f"{path.name} is neither a ticket export (.csv, .json, .jsonl) nor a folder of runbooks.",
            )
            return None
        return self._start_job(
            "import", jobs.import_path, path, title=f"Importing {path.name}", on_done=self._imported
        )

    def _imported(self, result: ImportSummary) -> None:
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
        if not self.context.permissions.allows(TeamRole.ANALYST):
            return None  # a viewer's analyses would be refused: the team's analysts' desktops run them
        return self._start_job(
            "analysis", jobs.analyse_new_tickets, title="Analysing tickets", on_done=self._analysed
        )

    def _analysed(self, result: jobs.AnalysisOutcome) -> None:
        if result.batch.analysed:
            batch = result.batch
            self.notifications.notify(
                Level.INFO,
                f"Analysed {batch.analysed:,} tickets: {batch.linked:,} linked, {batch.flagged:,} to review, "
                f"{batch.drafts:,} without a runbook.",
            )
        if result.batch.rematch is not None and result.batch.rematch.reanalysed:
            self.notifications.notify(Level.INFO, _sentence(result.batch.rematch.headline()))
        self.reload()
        self.metrics_page.evaluate_alerts()
        self.alerts_page.announce()
        if self._analysis_again:
            self._analysis_again = False
            self.start_analysis()

    def _analyse_after_sync(self) -> None:
        """A sync brought new or changed tickets or alerts: analyse them now, or right after the running
        analysis (which may have read the store before they arrived), so a firing alert gets its runbook
        within one sync."""
        running = self._jobs.get("analysis")
        if running is not None and running.is_active:
            self._analysis_again = True
        else:
            self.start_analysis()

    def _alerts_notify(self, level: Level, text: str, details: str) -> None:
        self.notifications.notify(level, text, details)
        if level is Level.ALERT:
            QApplication.alert(self)  # the taskbar entry asks for attention when the window is behind

    def _show_incident_counts(self, open_count: int, critical: int) -> None:
        """The Alerts badge: open incidents, red while one is critical."""
        description = f"{open_count} open incident{'s' if open_count != 1 else ''}"
        if critical:
            description += f", {critical} critical"
        self.nav_list.set_badge(
            ALERTS_PAGE,
            open_count,
            BadgeTone.ALERT if critical else BadgeTone.COUNT,
            description if open_count else "No open incidents",
        )

    def open_in_review(self, ticket_id: int, number: str) -> None:
        """Show an incident's ticket on the Review page: the queue filtered to its number, the ticket
        selected; a ticket decided already is looked for among the decided ones."""
        page = self.review_page
        bar = page.filter_bar
        for widget in (bar.search_edit, bar.decision_combo, bar.source_combo, bar.severity_combo):
            widget.blockSignals(True)
        bar.search_edit.setText(number)
        for combo in (bar.decision_combo, bar.source_combo, bar.severity_combo):
            combo.setCurrentIndex(0)
        bar.confidence_min.setValue(bar.confidence_min.minimum())
        bar.confidence_max.setValue(bar.confidence_max.maximum())
        bar.date_field_combo.setCurrentIndex(0)  # "Any date"
        for widget in (bar.search_edit, bar.decision_combo, bar.source_combo, bar.severity_combo):
            widget.blockSignals(False)

        def select(*, decided: bool) -> None:
            if page.select_ticket(ticket_id):
                page.queue_table.setFocus(Qt.FocusReason.OtherFocusReason)
            elif not decided:
                page.queue_loaded.connect(
                    lambda: select(decided=True), Qt.ConnectionType.SingleShotConnection
                )
                bar.decision_combo.setCurrentIndex(bar.decision_combo.findData("decided"))  # reloads
            else:
                self.statusBar().showMessage(f"{number} is not in the review queue", 10_000)

        page.queue_loaded.connect(lambda: select(decided=False), Qt.ConnectionType.SingleShotConnection)
        self.show_page(REVIEW_PAGE)
        page.reload()

    def start_rebuild(self) -> Task | None:
        return self._start_job(
            "analysis", jobs.rebuild_indexes, title="Rebuilding indexes", on_done=self._rebuilt
        )

    def _rebuilt(self, _refresh: RefreshReport) -> None:
        self.reload()

    def start_full_analysis(self) -> Task | None:
        """Analysis > Re-analyse all tickets: every ticket matched again, with progress and cancel."""
        if not self.context.permissions.allows(TeamRole.ANALYST):
            return None
        return self._start_job(
            "analysis", reanalyse_all_tickets, title="Re-analysing all tickets", on_done=self._reanalysed
        )

    def _reanalysed(self, result: jobs.AnalysisOutcome) -> None:
        self._analysed(result)
        self._refresh_gaps()

    def _rematched(self, report: RematchReport) -> None:
        """Old tickets were re-matched after a runbook change: the queue, the gaps and the metrics show it."""
        if not report.requests:
            return
        if report.reanalysed:
            self.notifications.notify(Level.INFO, _sentence(report.headline()))
        self.reload()
        self.metrics_page.evaluate_alerts()
        self._refresh_gaps()

    def _gap_drafts_generated(self, runbook_ids: tuple[int, ...]) -> None:
        """The Gaps page's queue wrote drafts: say so, and list them on the Runbooks page."""
        self.notifications.notify(
            Level.INFO,
            f"{len(runbook_ids)} draft runbook(s) generated from gaps, awaiting approval on the Runbooks "
            "page.",
        )
        self.runbooks_page.reload()

    def _refresh_gaps(self) -> None:
        if self.gaps_page.report is not None:  # the gaps shown are out of date; none shown, nothing to redo
            self.gaps_page.start_analysis()

    def open_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.context, self._settings, self)
        dialog.thresholds_saved.connect(lambda _t: self.start_analysis())
        dialog.calibration_changed.connect(self.start_analysis)  # its analyses are stale: re-decided
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
        allowed = self.context.permissions.allows(TeamRole.ANALYST)
        return allowed and bool(paths) and all(jobs.import_kind(path) for path in paths)

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

    def current_page(self) -> QWidget | None:
        return self.stack.currentWidget()

    def focus_current_search(self) -> None:
        """Edit > Find (Ctrl+F): every page's filter box, so what is typed next filters and never reaches
        a page's letter shortcuts."""
        page = self.current_page()
        if isinstance(page, HasFilterBox):
            page.focus_filter()

    def _step_page(self, step: int) -> None:
        self.show_page((self.stack.currentIndex() + step) % self.stack.count())
        page = self.current_page()
        focus = QApplication.focusWidget()
        if page is None or (focus is not None and focus.isVisible() and page.isAncestorOf(focus)):
            return  # the page put the keys where it wants them (the review queue)
        widget: QWidget | None = page.nextInFocusChain()
        while widget is not None and widget is not page:  # the Tab order from the page: its first taker
            if (
                page.isAncestorOf(widget)
                and widget.focusPolicy() & Qt.FocusPolicy.TabFocus
                and widget.isEnabled()
                and widget.isVisible()
                and not widget.visibleRegion().isEmpty()
            ):
                widget.setFocus(Qt.FocusReason.TabFocusReason)
                return
            widget = widget.nextInFocusChain()

    def reload(self) -> None:
        self.alerts_page.reload()
        self.tickets_page.reload()
        self.runbooks_page.reload()
        if self.review_page.isVisible():  # a hidden review page reloads when it is next shown
            self.review_page.reload()
        else:
            self.review_page.mark_stale()
        self.metrics_page.mark_stale()
        self.refresh_attention()

    def _open_draft_for_ticket(self, draft: RunbookDraft, ticket_id: int) -> None:
        """``D`` on the review page: the editor opens pre-filled; its first save records the decision."""
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

    # --- the rail's counts ------------------------------------------------------------------------------

    def refresh_attention(self) -> None:
        """Recount what waits on each page (the rail's badges) shortly, once per burst of changes.

        Called on everything that can change a count: a decision or undo, a queue reload (imports and
        analyses reload it), a finished sync or connector change, an alert evaluation, the window's reload.
        The count runs on a worker (:func:`~desktop.background.nav_jobs.load_attention_counts`, three
        small queries); one at a time, and a request while one runs queues exactly one more.
        """
        if not self._closing:
            self._attention_timer.start()

    def _load_attention(self) -> None:
        if self._closing:
            return
        if self._attention_task is not None and self._attention_task.is_active:
            self._attention_again = True
            return
        self._attention_again = False
        self._attention_task = self.runner.run(
            load_attention_counts,
            self.context.sessions,
            title="Loading the counts of waiting work",
            on_done=self._show_attention,
            on_error=self._attention_failed,
        )

    def _attention_finished(self) -> None:
        self._attention_task = None
        if self._attention_again:
            self.refresh_attention()

    def _attention_failed(self, exc: Exception, traceback_text: str) -> None:
        # The window's task_failed handler notifies; the badges keep their last counts.
        log.info("counting the work waiting failed: %s\n%s", exc, traceback_text)
        self._attention_finished()

    def _show_attention(self, counts: AttentionCounts) -> None:
        self.attention = counts
        review_words = [f"{counts.needs_review:,} need review"]
        if counts.needs_runbook:
            review_words.append(f"{counts.needs_runbook:,} need a runbook")
        if counts.spot_check:
            review_words.append(f"{counts.spot_check:,} auto-links to spot-check")
        self.nav_list.set_badge(
            REVIEW_PAGE,
            counts.needs_review,
            BadgeTone.COUNT,
            f"Tickets awaiting a decision: {', '.join(review_words)}",
        )
        alerts = counts.open_alerts
        self.nav_list.set_badge(
            METRICS_PAGE,
            alerts,
            BadgeTone.ALERT,
            f"{alerts} open alert{'s' if alerts != 1 else ''}: {', '.join(counts.open_alert_titles)}"
            if alerts
            else "No open alerts",
        )
        failing = counts.failing_connectors
        self.nav_list.set_badge(
            CONNECTORS_PAGE,
            failing,
            BadgeTone.ALERT,
            f"Last sync failed: {', '.join(counts.failing_connector_names)}"
            if failing
            else "No connector is failing",
        )
        self._attention_finished()

    def _on_task_failed(self, task: Task, exc: object, traceback_text: str) -> None:
        # A refusal by role is one clear line (desktop.refusals); its traceback would only hide it.
        text = describe_error(exc) if isinstance(exc, BaseException) else str(exc)
        details = "" if isinstance(exc, BaseException) and is_refusal(exc) else traceback_text
        self.statusBar().showMessage(f"{task.title} failed: {text}", 15_000)
        self.notifications.notify(Level.ERROR, f"{task.title} failed: {text}", details)

    # --- persistence -----------------------------------------------------------------------------------

    def _splitters(self) -> tuple[QSplitter, ...]:
        return (
            self.tickets_page.splitter,
            self.runbooks_page.splitter,
            *self.review_page.splitters(),
            self.alerts_page.splitter,
            self.alerts_page.detail_splitter,
        )

    def _restore_state(self) -> None:
        self._splitter_defaults: dict[str, SplitterProportions] = {}
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
                self._splitter_defaults[splitter.objectName()] = SplitterProportions(
                    splitter, self._default_splitter_sizes(splitter)
                )
        # A first start opens on the Review queue, the analyst's work (issue 16); later ones where they left.
        name = self._settings.value(PAGE_NAME_KEY, "", str)
        if not name:
            old = self._settings.value(PAGE_KEY, 0, int)
            name = OLD_PAGE_ORDER[old] if isinstance(old, int) and 0 <= old < len(OLD_PAGE_ORDER) else ""
        self.show_page(self.page_names.index(name) if name in self.page_names else REVIEW_PAGE)

    def _default_splitter_sizes(self, splitter: QSplitter) -> list[int]:
        """First-start proportions (a splitter scales them to its size): the lists get the room, since a
        title cut off in a list cannot be read anywhere, while the text panes beside them wrap (issue 16)."""
        sizes = DEFAULT_SPLITTER_SIZES.get(splitter.objectName())
        if sizes is not None and len(sizes) == splitter.count():
            return list(sizes)
        return [1] * splitter.count()

    def save_state(self) -> None:
        self._settings.setValue(GEOMETRY_KEY, self.saveGeometry())
        self._settings.setValue(WINDOW_STATE_KEY, self.saveState())
        for splitter in self._splitters():
            defaults = self._splitter_defaults.get(splitter.objectName())
            if defaults is not None and defaults.pending:
                continue  # never shown: its sizes are not the user's, and the defaults apply next time too
            self._settings.setValue(SPLITTER_KEY_PREFIX + splitter.objectName(), splitter.saveState())
        self._settings.setValue(PAGE_NAME_KEY, self.page_names[self.stack.currentIndex()])
        self._settings.remove(PAGE_KEY)
        self._settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.runbooks_page.close_editors():  # an editor with unsaved text, and the user kept it
            event.ignore()
            return
        self.save_state()
        self._closing = True
        self._attention_timer.stop()
        if self._attention_task is not None and self._attention_task.is_active:
            self._attention_task.cancel()
        self.sync_scheduler.stop()  # running syncs are cancelled (each is recorded as cancelled)
        self.writeback_drainer.stop()  # a post in flight is cancelled; its row stays due for the next start
        self.tickets_page.stop()
        self.runbooks_page.stop()
        self.review_page.stop()
        self.alerts_page.stop()
        self.gaps_page.stop()
        self.connectors_page.stop()
        self.metrics_page.stop()
        if self.members_page is not None:
            self.members_page.stop()
        if self._owns_runner:
            # Jobs stop at their next cancel check, but loading the model cannot be interrupted (up to ~10 s):
            # hide first, then wait for it. A worker still running Python when the interpreter exits aborts
            # the process.
            self.hide()
            self.runner.shutdown(timeout_ms=SHUTDOWN_WAIT_MS)
        super().closeEvent(event)


def _sentence(text: str) -> str:
    return f"{text[:1].upper()}{text[1:]}."
