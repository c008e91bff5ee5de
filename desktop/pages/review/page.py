"""The review page: the queue on the left, the ticket and its ranked runbooks side by side, decisions by key.

Keys (page-wide, off while a text field has focus so typing a filter never approves anything):
``A``/Enter approve the selected match (or, with several queue rows selected, each one's best match),
``R`` reject (a dialog asks for an optional reason), ``L`` link another runbook, ``D`` draft a new runbook,
``J``/``K`` next/previous ticket, ``Up``/``Down`` (on the queue), ``1``-``5``, ``[``/``]`` switch matches,
``Ctrl+Z`` undo the last decision.

Every database read and write runs through the context's :class:`~desktop.background.tasks.TaskRunner` with
its own
session; the matcher (``context.engine()``, which loads the model on first use) is only touched in workers.
A decided ticket is dropped from the model at once and the next one selected, so the analyst never waits
for a reload between decisions; the counts are refreshed behind. Errors show on the page and go out through
:attr:`ReviewPage.error_occurred`.

For the window: :attr:`ReviewPage.decision_made` (a :class:`~core.workflow.review.DecisionRecord`, also for
undo) so
other pages can refresh, and :attr:`ReviewPage.draft_requested` ``(RunbookDraft, ticket_id)`` for the
runbook editor; once the editor saved the draft, call :meth:`ReviewPage.record_draft` with its id.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time

from PySide6.QtCore import (
    QDate,
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import QDesktopServices, QHideEvent, QKeyEvent, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableView,
    QTextBrowser,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)
from sqlalchemy.orm import sessionmaker

from core.store.models import AnalysisDecision
from core.store.tenancy import TenantSession
from core.workflow.drafts import RunbookDraft
from core.workflow.review import (
    DECISION_ORDER,
    DecisionRecord,
    MatchView,
    QueueFacets,
    QueueFilters,
    ReviewQueueRow,
    RunbookChoice,
    TicketReview,
    approve,
    bulk_approve,
    bulk_reject,
    draft_from_ticket,
    link_other,
    load_review_queue,
    load_ticket_review,
    queue_counts,
    queue_facets,
    record_draft,
    reject,
    runbook_choices,
    term_spans,
    undo,
)
from desktop.background.tasks import Task, TaskRunner
from desktop.context import AppContext
from desktop.pages.review.models import (
    DECISION_LABELS,
    ConfidenceBarDelegate,
    MatchTableModel,
    ReviewQueueModel,
    RunbookChoiceModel,
    percent,
)
from desktop.widgets.table_models import SORT_ROLE, format_local_datetime

log = logging.getLogger(__name__)

SEARCH_DELAY_MS = 250
# The head of the queue in its own order; filters narrow the rest (a 100k backlog is not read into a table).
QUEUE_LOAD_LIMIT = 5000
# Holding J down must not start a model search per ticket passed; the one the analyst stops on is loaded.
DETAIL_DELAY_MS = 120
MATCHES_SHOWN = 5
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
HIGHLIGHT_STYLE = "background-color: #ffd54f; color: #000000;"
ERROR_STYLE = "color: palette(bright-text); background: #b3261e; padding: 4px;"


# --- Work done on pool threads: own session, plain rows out --------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueLoad:
    rows: tuple[ReviewQueueRow, ...]
    counts: dict[AnalysisDecision, int]
    facets: QueueFacets


def load_queue(sessions: sessionmaker[TenantSession], filters: QueueFilters) -> QueueLoad:
    with sessions() as session:
        return QueueLoad(
            tuple(load_review_queue(session, filters, limit=QUEUE_LOAD_LIMIT)),
            queue_counts(session, filters),
            queue_facets(session),
        )


def load_counts(sessions: sessionmaker[TenantSession], filters: QueueFilters) -> dict[AnalysisDecision, int]:
    with sessions() as session:
        return queue_counts(session, filters)


def load_review(context: AppContext, ticket_id: int) -> TicketReview:
    engine = context.engine()
    with context.sessions() as session:
        return load_ticket_review(session, engine, ticket_id, k=MATCHES_SHOWN)


def build_draft(context: AppContext, ticket_id: int) -> tuple[RunbookDraft, int]:
    engine = context.engine()
    with context.sessions() as session:
        return draft_from_ticket(session, engine, ticket_id), ticket_id


def decide(
    sessions: sessionmaker[TenantSession], decision: Callable[..., DecisionRecord], *args: object
) -> DecisionRecord:
    """One decision, one transaction: the link change and its audit row commit together or not at all."""
    with sessions.begin() as session:
        return decision(session, *args)


def load_choices(sessions: sessionmaker[TenantSession]) -> tuple[RunbookChoice, ...]:
    with sessions() as session:
        return tuple(runbook_choices(session))


# --- Rendering ---------------------------------------------------------------------------------------


def highlight_html(text: str, terms: Sequence[str]) -> str:
    """``text`` escaped, with the shared terms marked; external text never becomes markup."""
    out: list[str] = []
    position = 0
    for start, end in term_spans(text, terms):
        out.append(html.escape(text[position:start]))
        out.append(f'<span style="{HIGHLIGHT_STYLE}">{html.escape(text[start:end])}</span>')
        position = end
    out.append(html.escape(text[position:]))
    return "".join(out)


def _pre(inner_html: str) -> str:
    return f'<p style="white-space: pre-wrap;">{inner_html}</p>'


def _safe_link(url: str | None) -> str | None:
    if url and QUrl(url).scheme().lower() in LINK_SCHEMES:
        return url
    return None


def ticket_html(review: TicketReview, terms: Sequence[str]) -> str:
    ticket = review.ticket
    facts: list[tuple[str, str | None]] = [
        ("Number", ticket.external_id),
        ("Source", ticket.source_system),
        ("Status", ticket.status),
        ("Severity", ticket.severity),
        ("Category", ticket.category),
        ("Configuration item", ticket.configuration_item),
        ("Assignee", ticket.assignee),
        ("Created", format_local_datetime(ticket.created_at) if ticket.created_at else None),
        ("Updated", format_local_datetime(ticket.updated_at) if ticket.updated_at else None),
    ]
    if review.analysis_decision is not None:
        facts.append(
            (
                "Analysis",
                f"{DECISION_LABELS[review.analysis_decision]} · {percent(review.analysis_confidence)}",
            )
        )
    rows = "".join(
        f'<tr><th align="left">{html.escape(label)}</th><td>{html.escape(value)}</td></tr>'
        for label, value in facts
        if value
    )
    link = _safe_link(ticket.source_url)
    if link:
        escaped = html.escape(link, quote=True)
        rows += f'<tr><th align="left">Link</th><td><a href="{escaped}">{escaped}</a></td></tr>'
    description = ticket.description.strip()
    return (
        f"<h2>{highlight_html(ticket.title, terms)}</h2>"
        f'<table cellspacing="0" cellpadding="2">{rows}</table>'
        "<h3>Description</h3>"
        + (_pre(highlight_html(description, terms)) if description else "<p><i>No description.</i></p>")
    )


def similar_html(review: TicketReview) -> str:
    if not review.similar:
        return "<p><i>No similar past tickets.</i></p>"
    parts = ["<h3>Similar past tickets</h3>"]
    for similar in review.similar:
        state = "resolved" if similar.resolved else (similar.status or "open")
        parts.append(
            f"<p><b>{html.escape(similar.external_id)}</b> {html.escape(similar.title)} "
            f"<i>({html.escape(state)}, similarity {similar.similarity:.2f})</i>"
        )
        notes = (similar.resolution_notes or "").strip()
        parts.append(_pre(html.escape(notes)) if notes else "<p><i>No resolution notes.</i></p>")
    return "".join(parts)


def match_html(view: MatchView) -> str:
    terms = view.match.shared_terms
    section = view.match.best_section or "Opening (only words matched)"
    facts = [f"Section: {section}", f"Status: {view.runbook.status.replace('_', ' ')}"]
    if view.runbook.service:
        facts.append(f"Service: {view.runbook.service}")
    return (
        f"<h3>{highlight_html(view.runbook.title, terms)}</h3>"
        f"<p>{html.escape(' · '.join(facts))}</p>"
        f"{_pre(highlight_html(view.section_text, terms))}"
    )


def signals_text(view: MatchView) -> str:
    match = view.match
    shared = ", ".join(match.shared_terms) if match.shared_terms else "none"
    return (
        f"Semantic {match.dense_score:.2f} · Lexical {match.lexical_score:.2f} · "
        f"Fused {match.fused_score:.2f} · Shared terms: {shared}"
    )


def _open_link(url: QUrl) -> None:
    """Only web and mail links open: the text comes from external systems."""
    if url.scheme().lower() in LINK_SCHEMES:
        QDesktopServices.openUrl(url)


def _browser(parent: QWidget, object_name: str) -> QTextBrowser:
    browser = QTextBrowser(parent)
    browser.setObjectName(object_name)
    browser.setOpenLinks(False)
    browser.anchorClicked.connect(_open_link)
    return browser


def _table(parent: QWidget, object_name: str) -> QTableView:
    table = QTableView(parent)
    table.setObjectName(object_name)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    table.verticalHeader().hide()
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    return table


def _is_text_input(widget: QWidget | None) -> bool:
    """A widget where letters and Enter are typing: the page's letter shortcuts stand aside for it."""
    while widget is not None:
        if isinstance(widget, QLineEdit | QAbstractSpinBox | QTextEdit | QPlainTextEdit):
            return True
        if isinstance(widget, QComboBox) and widget.isEditable():
            return True
        widget = widget.parentWidget()
    return False


# --- Dialogs -----------------------------------------------------------------------------------------


class RejectDialog(QDialog):
    """Asks why (optional): the reason is stored on the link and in the audit trail."""

    def __init__(self, count: int, runbook_title: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("rejectDialog")
        self.setWindowTitle("Reject match")
        what = (
            f"Reject “{runbook_title}” for this ticket?"
            if count == 1 and runbook_title
            else f"Reject the best match of {count} tickets?"
        )
        self.label = QLabel(what, self)
        self.label.setWordWrap(True)
        self.reason_edit = QLineEdit(self)
        self.reason_edit.setObjectName("rejectReason")
        self.reason_edit.setPlaceholderText("Reason (optional), e.g. “different product”")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Reject")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addWidget(self.reason_edit)
        layout.addWidget(buttons)

    def reason(self) -> str | None:
        return self.reason_edit.text().strip() or None


class LinkRunbookDialog(QDialog):
    """A search box over every runbook (approved first); Enter links the highlighted one."""

    choices_loaded = Signal()

    def __init__(
        self, runner: TaskRunner, sessions: sessionmaker[TenantSession], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("linkRunbookDialog")
        self.setWindowTitle("Link to another runbook")
        self.resize(640, 420)
        self.search_edit = QLineEdit(self)
        self.search_edit.setObjectName("linkRunbookSearch")
        self.search_edit.setPlaceholderText("Search runbooks by title, service or status")
        self.search_edit.setClearButtonEnabled(True)
        self.model = RunbookChoiceModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterKeyColumn(-1)
        self.table = _table(self, "linkRunbookTable")
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setModel(self.proxy)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.doubleClicked.connect(self.accept)
        self.error_label = QLabel(self)
        self.error_label.setStyleSheet(ERROR_STYLE)
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Link")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.search_edit)
        layout.addWidget(self.error_label)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.buttons)
        self.search_edit.textChanged.connect(self._filter)
        self.search_edit.installEventFilter(self)
        self._task = runner.run(
            load_choices, sessions, title="Loading runbooks", on_done=self._loaded, on_error=self._failed
        )

    def _loaded(self, result: object) -> None:
        assert isinstance(result, tuple)
        self.model.set_rows(result)
        self._select_first()
        self.choices_loaded.emit()

    def _failed(self, exc: Exception, traceback_text: str) -> None:
        log.error("loading runbooks to link failed:\n%s", traceback_text)
        self.error_label.setText(f"Could not load runbooks: {exc}")
        self.error_label.show()

    def _filter(self, text: str) -> None:
        self.proxy.setFilterFixedString(text.strip())
        self._select_first()

    def _select_first(self) -> None:
        if self.proxy.rowCount() and not self.table.currentIndex().isValid():
            self.table.selectRow(0)
        elif self.proxy.rowCount():
            self.table.selectRow(min(self.table.currentIndex().row(), self.proxy.rowCount() - 1))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Up/Down in the search box walk the list, so the hands never leave the keyboard."""
        if watched is self.search_edit and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            step = {Qt.Key.Key_Down: 1, Qt.Key.Key_Up: -1}.get(Qt.Key(event.key()))
            if step is not None and self.proxy.rowCount():
                row = self.table.currentIndex().row() + step
                self.table.selectRow(max(0, min(self.proxy.rowCount() - 1, row)))
                return True
        return super().eventFilter(watched, event)

    def chosen(self) -> RunbookChoice | None:
        current = self.table.currentIndex()
        if not current.isValid():
            return None
        return self.model.row_at(self.proxy.mapToSource(current))

    def accept(self) -> None:
        if self.chosen() is not None:
            super().accept()

    def done(self, result: int) -> None:
        if self._task.is_active:
            self._task.cancel()
        super().done(result)


# --- The page ----------------------------------------------------------------------------------------


class ReviewPage(QWidget):
    """Queue | ticket and similar tickets | ranked runbooks; see the module docstring for keys and signals."""

    decision_made = Signal(object)  # DecisionRecord (an undo too)
    draft_requested = Signal(object, int)  # RunbookDraft, ticket id
    error_occurred = Signal(str)
    queue_loaded = Signal()
    review_loaded = Signal(int)  # ticket id now shown side by side

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self._runner = context.runner
        self._sessions = context.sessions
        self._queue_task: Task | None = None
        self._review_task: Task | None = None
        self._decision_task: Task | None = None
        self._draft_task: Task | None = None
        self._review: TicketReview | None = None
        self._facets = QueueFacets((), ())
        self._select_after_load: int | None = None
        self._loaded_once = False
        self.counts: dict[AnalysisDecision, int] = {}
        self.undo_stack: list[DecisionRecord] = []
        self.active_dialog: QDialog | None = None
        self.ask_reject_reason = True
        self.setObjectName("reviewPage")

        self._build_filter_bar()
        self._build_queue()
        self._build_ticket_pane()
        self._build_match_pane()

        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("reviewSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.queue_table)
        self.splitter.addWidget(self.ticket_splitter)
        self.splitter.addWidget(self.match_pane)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setStretchFactor(2, 3)

        self.counts_label = QLabel(self)
        self.counts_label.setObjectName("reviewCounts")
        self.status_label = QLabel(self)
        self.status_label.setObjectName("reviewStatus")
        self.status_label.setWordWrap(True)
        self.error_label = QLabel(self)
        self.error_label.setObjectName("reviewError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(ERROR_STYLE)
        self.error_label.hide()

        # Three panes, a filter bar and the decision buttons need about 950 px; in a narrower window the page
        # scrolls rather than forcing the whole window (every page shares one stack) to that width.
        content = QWidget(self)
        content_layout = QVBoxLayout(content)
        content_layout.setContentsMargins(0, 0, 0, 0)
        content_layout.addLayout(self.filter_bar)
        content_layout.addWidget(self.counts_label)
        content_layout.addWidget(self.error_label)
        content_layout.addWidget(self.splitter, 1)
        content_layout.addWidget(self.status_label)
        self.scroll_area = QScrollArea(self)
        self.scroll_area.setObjectName("reviewScroll")
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setWidget(content)
        layout = QVBoxLayout(self)
        layout.addWidget(self.scroll_area)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.reload)
        self._detail_timer = QTimer(self)
        self._detail_timer.setSingleShot(True)
        self._detail_timer.setInterval(DETAIL_DELAY_MS)
        self._detail_timer.timeout.connect(self._load_current_review)
        self._connect_filters()
        self._build_shortcuts()
        self._show_no_ticket()

    # --- construction ----------------------------------------------------------------------------------

    def _build_filter_bar(self) -> None:
        self.search_edit = QLineEdit(self)
        self.search_edit.setObjectName("reviewSearch")
        self.search_edit.setPlaceholderText("Filter by number, title or description")
        self.search_edit.setClearButtonEnabled(True)
        self.decision_combo = QComboBox(self)
        self.decision_combo.setObjectName("reviewDecisionFilter")
        self.decision_combo.addItem("All decisions", None)
        for decision in DECISION_ORDER:
            self.decision_combo.addItem(DECISION_LABELS[decision], decision.value)
        self.source_combo = QComboBox(self)
        self.source_combo.setObjectName("reviewSourceFilter")
        self.source_combo.addItem("All sources", None)
        self.severity_combo = QComboBox(self)
        self.severity_combo.setObjectName("reviewSeverityFilter")
        self.severity_combo.addItem("All severities", None)
        self.confidence_min = QSpinBox(self)
        self.confidence_min.setObjectName("reviewConfidenceMin")
        self.confidence_max = QSpinBox(self)
        self.confidence_max.setObjectName("reviewConfidenceMax")
        for spin, value, prefix in ((self.confidence_min, 0, "≥ "), (self.confidence_max, 100, "≤ ")):
            spin.setRange(0, 100)
            spin.setValue(value)
            spin.setPrefix(prefix)
            spin.setSuffix(" %")
            spin.setToolTip("Confidence of the best match")
        self.date_field_combo = QComboBox(self)
        self.date_field_combo.setObjectName("reviewDateField")
        self.date_field_combo.addItem("Any date", None)
        self.date_field_combo.addItem("Created", "created")
        self.date_field_combo.addItem("Updated", "updated")
        today = QDate.currentDate()
        self.date_from = QDateEdit(today.addMonths(-1), self)
        self.date_from.setObjectName("reviewDateFrom")
        self.date_to = QDateEdit(today, self)
        self.date_to.setObjectName("reviewDateTo")
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setEnabled(False)
        self.filter_bar = QHBoxLayout()
        self.filter_bar.addWidget(self.search_edit, 2)
        for widget in (
            self.decision_combo,
            self.source_combo,
            self.severity_combo,
            self.confidence_min,
            self.confidence_max,
            self.date_field_combo,
            self.date_from,
            self.date_to,
        ):
            self.filter_bar.addWidget(widget)

    def _build_queue(self) -> None:
        self.queue_model = ReviewQueueModel(self)
        self.queue_proxy = QSortFilterProxyModel(self)
        self.queue_proxy.setSourceModel(self.queue_model)
        self.queue_proxy.setSortRole(SORT_ROLE)
        self.queue_proxy.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.queue_table = _table(self, "reviewQueue")
        self.queue_table.setModel(self.queue_proxy)
        self.queue_table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        queue_header = self.queue_table.horizontalHeader()
        for header, width in (("Number", 100), ("Title", 260), ("Decision", 120), ("Confidence", 90)):
            queue_header.resizeSection(self.queue_model.column_index(header), width)
        # Unsorted (-1) is the queue's own order; clicking a header sorts, and the sort indicator can be
        # cleared again by sortByColumn(-1).
        self.queue_table.setSortingEnabled(True)
        self.queue_table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.queue_table.selectionModel().currentRowChanged.connect(self._on_current_ticket_changed)
        self.queue_table.installEventFilter(self)

    def _build_ticket_pane(self) -> None:
        self.ticket_view = _browser(self, "reviewTicket")
        self.similar_view = _browser(self, "reviewSimilar")
        self.ticket_splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.ticket_splitter.setObjectName("reviewTicketSplitter")
        self.ticket_splitter.setChildrenCollapsible(False)
        self.ticket_splitter.addWidget(self.ticket_view)
        self.ticket_splitter.addWidget(self.similar_view)
        self.ticket_splitter.setStretchFactor(0, 3)
        self.ticket_splitter.setStretchFactor(1, 2)

    def _build_match_pane(self) -> None:
        self.match_model = MatchTableModel(self)
        self.match_table = _table(self, "reviewMatches")
        self.match_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.match_table.setModel(self.match_model)
        match_header = self.match_table.horizontalHeader()
        for header in ("#", "Semantic", "Lexical", "Link"):
            match_header.setSectionResizeMode(
                self.match_model.column_index(header), QHeaderView.ResizeMode.ResizeToContents
            )
        match_header.setSectionResizeMode(
            self.match_model.column_index("Runbook"), QHeaderView.ResizeMode.Stretch
        )
        match_header.resizeSection(self.match_model.column_index("Confidence"), 110)
        self._bar_delegate = ConfidenceBarDelegate(self)
        self.match_table.setItemDelegateForColumn(
            self.match_model.column_index("Confidence"), self._bar_delegate
        )
        self.match_table.selectionModel().currentRowChanged.connect(self._on_current_match_changed)

        self.confidence_bar = QProgressBar(self)
        self.confidence_bar.setObjectName("reviewConfidence")
        self.confidence_bar.setRange(0, 100)
        self.confidence_bar.setFormat("Confidence %p %")
        self.signals_label = QLabel(self)
        self.signals_label.setObjectName("reviewSignals")
        self.signals_label.setWordWrap(True)
        self.match_view = _browser(self, "reviewMatchText")

        self.approve_button = QPushButton("&Approve (A)", self)
        self.reject_button = QPushButton("&Reject (R)", self)
        self.link_button = QPushButton("&Link other (L)", self)
        self.draft_button = QPushButton("&Draft (D)", self)
        self.undo_button = QPushButton("Undo (Ctrl+Z)", self)
        for button, slot in (
            (self.approve_button, self.approve_selected),
            (self.reject_button, self.reject_selected),
            (self.link_button, self.link_other_runbook),
            (self.draft_button, self.draft_runbook),
            (self.undo_button, self.undo_last),
        ):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the queue
            button.clicked.connect(slot)
        buttons = QHBoxLayout()
        for button in (
            self.approve_button,
            self.reject_button,
            self.link_button,
            self.draft_button,
            self.undo_button,
        ):
            buttons.addWidget(button)

        detail = QWidget(self)
        detail_layout = QVBoxLayout(detail)
        detail_layout.setContentsMargins(0, 0, 0, 0)
        detail_layout.addWidget(self.confidence_bar)
        detail_layout.addWidget(self.signals_label)
        detail_layout.addWidget(self.match_view, 1)

        self.match_splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.match_splitter.setObjectName("reviewMatchSplitter")
        self.match_splitter.setChildrenCollapsible(False)
        self.match_splitter.addWidget(self.match_table)
        self.match_splitter.addWidget(detail)
        self.match_splitter.setStretchFactor(0, 1)
        self.match_splitter.setStretchFactor(1, 3)

        self.match_pane = QWidget(self)
        pane_layout = QVBoxLayout(self.match_pane)
        pane_layout.setContentsMargins(0, 0, 0, 0)
        pane_layout.addWidget(self.match_splitter, 1)
        pane_layout.addLayout(buttons)
        self._update_buttons()

    def _connect_filters(self) -> None:
        self.search_edit.textChanged.connect(self._search_timer.start)
        self.search_edit.returnPressed.connect(self.reload)
        for combo in (self.decision_combo, self.source_combo, self.severity_combo):
            combo.currentIndexChanged.connect(self.reload)
        for spin in (self.confidence_min, self.confidence_max):
            spin.valueChanged.connect(self._search_timer.start)
        self.date_field_combo.currentIndexChanged.connect(self._on_date_field_changed)
        for edit in (self.date_from, self.date_to):
            edit.dateChanged.connect(self._search_timer.start)

    def _build_shortcuts(self) -> None:
        bindings: list[tuple[str, Callable[[], None]]] = [
            ("A", self.approve_selected),
            ("Return", self.approve_selected),
            ("Enter", self.approve_selected),
            ("R", self.reject_selected),
            ("L", self.link_other_runbook),
            ("D", self.draft_runbook),
            ("J", self.next_ticket),
            ("K", self.previous_ticket),
            ("]", self.next_match),
            ("[", self.previous_match),
            ("Ctrl+Z", self.undo_last),
        ]
        bindings += [
            (str(number), self._match_selector(number - 1)) for number in range(1, MATCHES_SHOWN + 1)
        ]
        self.shortcuts: dict[str, QShortcut] = {}
        for key, slot in bindings:
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)
            self.shortcuts[key] = shortcut
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.focusChanged.connect(self._on_focus_changed)

    def _match_selector(self, row: int) -> Callable[[], None]:
        def select() -> None:
            self.select_match(row)

        return select

    def showEvent(self, event: QShowEvent) -> None:
        """The queue loads when the page is first shown, so a window opened on another page pays nothing."""
        super().showEvent(event)
        focus = QApplication.focusWidget()
        if focus is None or not self.isAncestorOf(focus):
            # Keyboard first: arriving on the page puts the keys on the queue, not in the first text box.
            self.queue_table.setFocus(Qt.FocusReason.OtherFocusReason)
        if not self._loaded_once and not (self._queue_task is not None and self._queue_task.is_active):
            self.reload()
        elif self.current_row() is not None and self._review is None:
            self._detail_timer.start()

    def hideEvent(self, event: QHideEvent) -> None:
        """Hidden (another page, or the window closing): no load may start behind the analyst's back."""
        self._search_timer.stop()
        self._detail_timer.stop()
        super().hideEvent(event)

    def splitters(self) -> tuple[QSplitter, ...]:
        """For the window to save and restore; object names are stable settings keys."""
        return (self.splitter, self.ticket_splitter, self.match_splitter)

    # --- filters and loading ------------------------------------------------------------------------------

    def filters(self) -> QueueFilters:
        decision = self.decision_combo.currentData()
        source = self.source_combo.currentData()
        severity = self.severity_combo.currentData()
        low, high = self.confidence_min.value(), self.confidence_max.value()
        date_field = self.date_field_combo.currentData()
        date_from = date_to = None
        if date_field:
            local = datetime.now().astimezone().tzinfo
            date_from = datetime.combine(self.date_from.date().toPython(), time.min, local)
            # Inclusive of the "to" day: the query's upper bound is exclusive, so take the next midnight.
            date_to = datetime.combine(self.date_to.date().addDays(1).toPython(), time.min, local)
        return QueueFilters(
            decisions=frozenset({AnalysisDecision(decision)}) if decision else frozenset(),
            source_systems=frozenset({source}) if source else frozenset(),
            severities=frozenset({severity}) if severity else frozenset(),
            confidence_min=low / 100 if low > 0 else None,
            confidence_max=high / 100 if high < 100 else None,
            date_field=date_field or "updated",
            date_from=date_from,
            date_to=date_to,
            text=self.search_edit.text().strip(),
        )

    def _on_date_field_changed(self) -> None:
        enabled = bool(self.date_field_combo.currentData())
        self.date_from.setEnabled(enabled)
        self.date_to.setEnabled(enabled)
        self.reload()

    def mark_stale(self) -> None:
        """New analyses or imports happened while hidden: load afresh when next shown."""
        self._loaded_once = False

    def reload(self) -> None:
        """Load the queue with the current filters; a newer load cancels an older one."""
        self._search_timer.stop()
        if self._queue_task is not None and self._queue_task.is_active:
            self._queue_task.cancel()
        self._queue_task = self._runner.run(
            load_queue,
            self._sessions,
            self.filters(),
            title="Loading the review queue",
            on_done=self._queue_loaded,
            on_error=self._error_handler("load the review queue"),
        )

    def is_loading(self) -> bool:
        return any(
            task is not None and task.is_active
            for task in (self._queue_task, self._review_task, self._decision_task, self._draft_task)
        )

    def stop(self) -> None:
        """The window is closing: no new loads, and pending ones are dropped."""
        self._search_timer.stop()
        self._detail_timer.stop()
        for task in (self._queue_task, self._review_task, self._draft_task):
            if task is not None and task.is_active:
                task.cancel()
        if self.active_dialog is not None:
            self.active_dialog.reject()

    def _queue_loaded(self, result: object) -> None:
        assert isinstance(result, QueueLoad)
        self._loaded_once = True
        previous = self.current_row()
        self._set_facets(result.facets)
        self.queue_model.set_rows(result.rows)
        self._show_counts(result.counts)
        self.error_label.hide()
        wanted, self._select_after_load = self._select_after_load, None
        selected = wanted is not None and self.select_ticket(wanted)
        if not selected and (previous is None or not self.select_ticket(previous.ticket_id)):
            self._select_proxy_row(0)
        self.queue_loaded.emit()

    def _set_facets(self, facets: QueueFacets) -> None:
        if facets == self._facets:
            return
        self._facets = facets
        for combo, values in (
            (self.source_combo, facets.source_systems),
            (self.severity_combo, facets.severities),
        ):
            chosen = combo.currentData()
            combo.blockSignals(True)  # refilling is not a filter change; no reload loop
            try:
                while combo.count() > 1:
                    combo.removeItem(1)
                for value in values:
                    combo.addItem(value, value)
                combo.setCurrentIndex(max(0, combo.findData(chosen)) if chosen else 0)
            finally:
                combo.blockSignals(False)

    def _show_counts(self, counts: dict[AnalysisDecision, int]) -> None:
        self.counts = dict(counts)
        shown = self.queue_model.rowCount()
        capped = f" (showing the first {shown:,}; filter to see others)" if shown >= QUEUE_LOAD_LIMIT else ""
        self.counts_label.setText(
            " · ".join(f"{DECISION_LABELS[d]}: {counts.get(d, 0):,}" for d in DECISION_ORDER)
            + f" · In queue: {sum(counts.values()):,}{capped}"
        )
        for position, decision in enumerate(DECISION_ORDER, start=1):
            self.decision_combo.setItemText(
                position, f"{DECISION_LABELS[decision]} ({counts.get(decision, 0):,})"
            )

    def _counts_loaded(self, result: object) -> None:
        assert isinstance(result, dict)
        self._show_counts(result)

    def _refresh_counts(self) -> None:
        self._runner.run(
            load_counts,
            self._sessions,
            self.filters(),
            title="Counting the review queue",
            on_done=self._counts_loaded,
            on_error=self._error_handler("count the review queue"),
        )

    # --- selection ----------------------------------------------------------------------------------------

    def current_row(self) -> ReviewQueueRow | None:
        current = self.queue_table.currentIndex()
        if not current.isValid():
            return None
        return self.queue_model.row_at(self.queue_proxy.mapToSource(current))

    def selected_rows(self) -> list[ReviewQueueRow]:
        """The selected queue rows in view order; the current row alone when nothing else is selected."""
        proxy_rows = sorted({index.row() for index in self.queue_table.selectionModel().selectedRows()})
        rows = [
            self.queue_model.row_at(self.queue_proxy.mapToSource(self.queue_proxy.index(r, 0)))
            for r in proxy_rows
        ]
        if not rows:
            current = self.current_row()
            return [current] if current is not None else []
        return rows

    def select_ticket(self, ticket_id: int) -> bool:
        row_number = self.queue_model.row_number_of(ticket_id)
        if row_number is None:
            return False
        self._select_proxy_row(self.queue_proxy.mapFromSource(self.queue_model.index(row_number, 0)).row())
        return True

    def _select_proxy_row(self, row: int) -> None:
        if not 0 <= row < self.queue_proxy.rowCount():
            self.queue_table.selectionModel().clear()
            self._show_no_ticket()
            return
        index = self.queue_proxy.index(row, 0)
        self.queue_table.selectionModel().setCurrentIndex(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.queue_table.scrollTo(index)

    def next_ticket(self) -> None:
        self._step_ticket(1)

    def previous_ticket(self) -> None:
        self._step_ticket(-1)

    def _step_ticket(self, step: int) -> None:
        count = self.queue_proxy.rowCount()
        if count:
            current = self.queue_table.currentIndex().row()
            self._select_proxy_row(max(0, min(count - 1, current + step if current >= 0 else 0)))

    def _on_current_ticket_changed(self, _current: QModelIndex, _previous: QModelIndex) -> None:
        row = self.current_row()
        if row is None:
            self._show_no_ticket()
            return
        if self._review is not None and self._review.ticket.id == row.ticket_id:
            return
        self._review = None
        self.match_model.set_rows(())
        self.ticket_view.setHtml(
            f"<h2>{html.escape(row.title)}</h2><p><i>Finding the matching runbooks…</i></p>"
        )
        self.similar_view.clear()
        self._show_no_match("Loading matches…")
        self._detail_timer.start()
        self._update_buttons()

    def _load_current_review(self) -> None:
        row = self.current_row()
        if row is None:
            return
        if self._review_task is not None and self._review_task.is_active:
            self._review_task.cancel()
        self._review_task = self._runner.run(
            load_review,
            self.context,
            row.ticket_id,
            title=f"Matching {row.external_id}",
            on_done=self._review_ready,
            on_error=self._error_handler(f"match {row.external_id}"),
        )

    def _review_ready(self, result: object) -> None:
        assert isinstance(result, TicketReview)
        row = self.current_row()
        if row is None or row.ticket_id != result.ticket.id:
            return  # the analyst moved on while it loaded
        self._review = result
        self.similar_view.setHtml(similar_html(result))
        self.match_model.set_rows(result.matches)
        if result.matches:
            self.select_match(0)
        else:
            self.ticket_view.setHtml(ticket_html(result, ()))
            self._show_no_match("No approved runbook matches this ticket. Press D to draft one.")
        self._update_buttons()
        self.review_loaded.emit(result.ticket.id)

    def current_match(self) -> MatchView | None:
        current = self.match_table.currentIndex()
        if not current.isValid() or self._review is None:
            return None
        return self.match_model.row_at(current)

    def select_match(self, row: int) -> None:
        if 0 <= row < self.match_model.rowCount():
            self.match_table.selectionModel().setCurrentIndex(
                self.match_model.index(row, 0),
                QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
            )

    def next_match(self) -> None:
        self.select_match(self.match_table.currentIndex().row() + 1)

    def previous_match(self) -> None:
        self.select_match(max(0, self.match_table.currentIndex().row() - 1))

    def _on_current_match_changed(self, _current: QModelIndex, _previous: QModelIndex) -> None:
        view = self.current_match()
        if view is None or self._review is None:
            return
        self.ticket_view.setHtml(ticket_html(self._review, view.match.shared_terms))
        self.match_view.setHtml(match_html(view))
        self.confidence_bar.setValue(round(view.match.confidence * 100))
        self.confidence_bar.setEnabled(True)
        self.signals_label.setText(signals_text(view))

    def _show_no_ticket(self) -> None:
        self._review = None
        self.match_model.set_rows(())
        message = "The queue is empty." if self.queue_model.rowCount() == 0 else "Select a ticket to review."
        self.ticket_view.setHtml(f"<p><i>{html.escape(message)}</i></p>")
        self.similar_view.clear()
        self._show_no_match("")
        self._update_buttons()

    def _show_no_match(self, message: str) -> None:
        self.match_view.setHtml(f"<p><i>{html.escape(message)}</i></p>" if message else "")
        self.confidence_bar.setValue(0)
        self.confidence_bar.setEnabled(False)
        self.signals_label.clear()

    def _update_buttons(self) -> None:
        has_ticket = self.current_row() is not None
        for button in (self.approve_button, self.reject_button, self.link_button, self.draft_button):
            button.setEnabled(has_ticket)
        self.undo_button.setEnabled(bool(self.undo_stack))

    # --- keys ---------------------------------------------------------------------------------------------

    def _on_focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        self._refresh_shortcuts(new)

    def _refresh_shortcuts(self, focus: QWidget | None) -> None:
        """Letter and Enter shortcuts stand aside while a text field has focus, so typing stays typing, and
        all of them while a dialog of the page is open: its keys are the dialog's until it closes."""
        typing = _is_text_input(focus)
        dialog_open = self.active_dialog is not None
        for key, shortcut in self.shortcuts.items():
            # A text field handles Ctrl+Z itself (it takes the shortcut override), so undo stays on there.
            shortcut.setEnabled(not dialog_open and (key == "Ctrl+Z" or not typing))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Up/Down on the queue switch matches (J/K move through tickets; Shift+arrows still select)."""
        if watched is self.queue_table and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            # Arrow keys carry the keypad modifier on some platforms (macOS); it is not a real modifier here.
            if event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier == Qt.KeyboardModifier.NoModifier:
                if event.key() == Qt.Key.Key_Down:
                    self.next_match()
                    return True
                if event.key() == Qt.Key.Key_Up:
                    self.previous_match()
                    return True
        return super().eventFilter(watched, event)

    # --- decisions ----------------------------------------------------------------------------------------

    def _decision_busy(self) -> bool:
        if self._decision_task is not None and self._decision_task.is_active:
            self.status_label.setText("Still saving the last decision…")
            return True
        return False

    def _run_decision(self, label: str, decision: Callable[..., DecisionRecord], *args: object) -> None:
        self._decision_task = self._runner.run(
            decide,
            self._sessions,
            decision,
            *args,
            title=label,
            on_done=self._decision_done,
            on_error=self._error_handler(label.lower()),
        )

    def approve_selected(self) -> None:
        rows = self.selected_rows()
        if not rows or self._decision_busy():
            return
        actor = self.context.reviewer()
        if len(rows) > 1:
            self._run_decision(
                f"Approving {len(rows)} tickets", bulk_approve, [r.ticket_id for r in rows], actor
            )
            return
        row = rows[0]
        target = self._target(row)
        if target is None:
            self.status_label.setText(f"{row.external_id} has no match to approve: link (L) or draft (D).")
            return
        runbook_id, confidence, _title = target
        self._run_decision(
            f"Approving {row.external_id}", approve, row.ticket_id, runbook_id, confidence, actor
        )

    def _target(self, row: ReviewQueueRow) -> tuple[int, float | None, str | None] | None:
        """The match a decision on ``row`` is about: the selected one once loaded, else the analysis' best."""
        view = self.current_match()
        if view is not None and self._review is not None and self._review.ticket.id == row.ticket_id:
            return view.runbook.id, view.match.confidence, view.runbook.title
        if row.best_runbook_id is None:
            return None
        return row.best_runbook_id, row.confidence, row.best_runbook_title

    def reject_selected(self) -> None:
        rows = self.selected_rows()
        if not rows or self._decision_busy():
            return
        target = self._target(rows[0]) if len(rows) == 1 else None
        if len(rows) == 1 and target is None:
            self.status_label.setText(f"{rows[0].external_id} has no match to reject.")
            return
        if not self.ask_reject_reason:
            self._reject(rows, target, None)
            return
        dialog = RejectDialog(len(rows), target[2] if target else None, self)
        dialog.accepted.connect(lambda: self._reject(rows, target, dialog.reason()))
        self._open_dialog(dialog)

    def _reject(
        self,
        rows: list[ReviewQueueRow],
        target: tuple[int, float | None, str | None] | None,
        reason: str | None,
    ) -> None:
        if self._decision_busy():
            return
        actor = self.context.reviewer()
        if len(rows) > 1 or target is None:
            ids = [r.ticket_id for r in rows]
            self._run_decision(f"Rejecting {len(rows)} tickets", bulk_reject, ids, reason, actor)
            return
        row = rows[0]
        self._run_decision(f"Rejecting {row.external_id}", reject, row.ticket_id, target[0], reason, actor)

    def link_other_runbook(self) -> None:
        row = self.current_row()
        if row is None or self._decision_busy():
            return
        dialog = LinkRunbookDialog(self._runner, self._sessions, self)

        def chosen() -> None:
            choice = dialog.chosen()
            if choice is not None and not self._decision_busy():
                self._run_decision(
                    f"Linking {row.external_id}",
                    link_other,
                    row.ticket_id,
                    choice.id,
                    self.context.reviewer(),
                )

        dialog.accepted.connect(chosen)
        self._open_dialog(dialog)
        dialog.search_edit.setFocus(Qt.FocusReason.OtherFocusReason)

    def draft_runbook(self) -> None:
        row = self.current_row()
        if row is None:
            return
        if self._draft_task is not None and self._draft_task.is_active:
            return
        self.status_label.setText(f"Drafting a runbook from {row.external_id}…")
        self._draft_task = self._runner.run(
            build_draft,
            self.context,
            row.ticket_id,
            title=f"Drafting from {row.external_id}",
            on_done=self._draft_ready,
            on_error=self._error_handler(f"draft from {row.external_id}"),
        )

    def _draft_ready(self, result: object) -> None:
        assert isinstance(result, tuple)
        draft, ticket_id = result
        self.status_label.setText(f"Draft “{draft.title}” opened in the editor; save it to link the ticket.")
        self.draft_requested.emit(draft, ticket_id)

    def record_draft(self, ticket_id: int, runbook_id: int) -> None:
        """Call once the editor saved the draft opened for ``ticket_id``: links it as an undoable decision."""
        self._run_decision(
            f"Linking ticket {ticket_id} to its draft",
            record_draft,
            ticket_id,
            runbook_id,
            self.context.reviewer(),
        )

    def undo_last(self) -> None:
        if not self.undo_stack or self._decision_busy():
            return
        record = self.undo_stack[-1]
        self._decision_task = self._runner.run(
            decide,
            self._sessions,
            undo,
            record,
            self.context.reviewer(),
            title="Undoing the last decision",
            on_done=self._undo_done,
            on_error=self._error_handler("undo the last decision"),
        )

    def _open_dialog(self, dialog: QDialog) -> None:
        self.active_dialog = dialog
        self._refresh_shortcuts(QApplication.focusWidget())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(self._dialog_closed)
        dialog.open()

    def _dialog_closed(self) -> None:
        self.active_dialog = None
        self.queue_table.setFocus(Qt.FocusReason.OtherFocusReason)
        self._refresh_shortcuts(QApplication.focusWidget())

    def _decision_done(self, result: object) -> None:
        assert isinstance(result, DecisionRecord)
        if result.changes:
            self.undo_stack.append(result)
        decided = set(result.ticket_ids)
        self._drop_tickets(decided)
        message = f"{_ACTION_TEXT.get(result.action, result.action)} {len(decided)} ticket(s)."
        if result.skipped_ticket_ids:
            message += f" {len(result.skipped_ticket_ids)} had no match and stay in the queue."
        self.status_label.setText(message + " Ctrl+Z undoes it.")
        self.error_label.hide()
        self._update_buttons()
        self._refresh_counts()
        self.decision_made.emit(result)

    def _drop_tickets(self, ticket_ids: set[int]) -> None:
        """Remove decided tickets and select the one after the current (or the last one left)."""
        if not ticket_ids:
            return
        current = self.queue_table.currentIndex().row()
        next_id: int | None = None
        proxy_rows = [
            self.queue_model.row_at(self.queue_proxy.mapToSource(self.queue_proxy.index(r, 0)))
            for r in range(self.queue_proxy.rowCount())
        ]
        after = [r for r in proxy_rows[max(current, 0) :] if r.ticket_id not in ticket_ids]
        before = [r for r in proxy_rows[: max(current, 0)] if r.ticket_id not in ticket_ids]
        if after:
            next_id = after[0].ticket_id
        elif before:
            next_id = before[-1].ticket_id
        self.queue_model.remove_ticket_ids(ticket_ids)
        if next_id is None or not self.select_ticket(next_id):
            self._select_proxy_row(-1)

    def _undo_done(self, result: object) -> None:
        assert isinstance(result, DecisionRecord)
        undone = self.undo_stack.pop()
        self.status_label.setText(f"Undid: {_ACTION_TEXT.get(undone.action, undone.action).lower()}.")
        self._update_buttons()
        # The undone tickets are back in the queue: reload it and put the analyst on the first of them.
        self._select_after_load = undone.ticket_ids[0] if undone.ticket_ids else None
        self.reload()
        self.decision_made.emit(result)

    # --- errors ------------------------------------------------------------------------------------------

    def _error_handler(self, what: str) -> Callable[[Exception, str], None]:
        def show(exc: Exception, traceback_text: str) -> None:
            log.error("could not %s:\n%s", what, traceback_text)
            message = f"Could not {what}: {exc}"
            self.error_label.setText(message)
            self.error_label.setToolTip(traceback_text)
            self.error_label.show()
            self.error_occurred.emit(message)

        return show


_ACTION_TEXT = {
    "review.approve": "Approved",
    "review.reject": "Rejected",
    "review.link_other": "Linked",
    "review.draft": "Linked the draft of",
    "review.undo": "Undid",
}
