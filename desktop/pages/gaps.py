"""The Gaps page: recurring tickets no runbook covers, ranked by impact, with a Pareto chart and the actions.

The analysis (:func:`core.analytics.gaps.analyse_gaps`) runs in a worker of the context's
:class:`~desktop.background.tasks.TaskRunner` with progress and cancel (:mod:`desktop.background.gap_jobs`);
the page holds only the frozen :class:`~core.analytics.gaps.GapReport` it returns. The Pareto chart is
:class:`~desktop.widgets.pareto_chart.ParetoChart`.

**Generation queue** (the second tab; :mod:`core.analytics.generation_queue`). After every analysis a
background task generates, as the app (audited as ``runbook-desk``), the draft of each gap whose procedure
confidence is above 70 % and has none yet, and puts it *awaiting approval* (status "in review" on the
Runbooks page); ``auto_generate = False`` only lists the queue. The tab counts the three groups and gives
each gap its button: "Approve generation" (50-70 %: the draft is generated in the analyst's name),
"Write it…" (below 50 %: the editor opens pre-filled), or the draft already made.

For the window: :attr:`GapsPage.draft_requested` ``(RunbookDraft)`` opens the runbook editor;
:attr:`GapsPage.error_occurred` ``(str)`` reports a failed analysis, dismissal, export or generation;
:attr:`GapsPage.drafts_generated` ``(tuple[int, ...])`` names the runbooks a queue run just generated.
"""

from __future__ import annotations

import html
import logging
from dataclasses import replace
from datetime import UTC, datetime, time
from pathlib import Path

from PySide6.QtCore import QDate, QModelIndex, Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core.analytics.gaps import (
    GapCluster,
    GapQuery,
    GapReport,
    draft_from_gap,
    rerank,
    trend_words,
)
from core.analytics.generation_queue import AUTOMATIC_ABOVE, PROMPT_FROM, Bucket, GenerationQueue, QueueEntry
from core.store.models import TicketKind
from core.store.repository import SYSTEM_ACTOR
from core.workflow.drafts import RunbookDraft
from desktop.background.gap_jobs import dismiss, export, load_facets, run_gap_analysis
from desktop.background.generation_jobs import approve_generation, generate_queue_drafts, load_queue
from desktop.background.tasks import Task
from desktop.context import AppContext
from desktop.widgets.browse import focus_filter_box, row_filter_edit
from desktop.widgets.dates import python_date
from desktop.widgets.links import link_safe_browser
from desktop.widgets.pareto_chart import ParetoChart
from desktop.widgets.table_layout import show_cut_text_as_tooltips
from desktop.widgets.table_models import Column, RowTableModel

log = logging.getLogger(__name__)

ALL = "All"
DEFAULT_MONTHS = 12
ERROR_STYLE = "color: palette(bright-text); background: #b3261e; padding: 4px;"
_NUMBER = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


def _hours(value: float | None) -> str | None:
    if value is None:
        return None
    return f"{value / 24:.1f} d" if value >= 48 else f"{value:.1f} h"


GAP_COLUMNS: tuple[Column[GapCluster], ...] = (
    Column("#", lambda c: c.rank, alignment=_NUMBER),
    Column("Gap", lambda c: c.label, tooltip=lambda c: ", ".join(c.terms)),
    Column("Tickets", lambda c: c.size, alignment=_NUMBER),
    Column("Share", lambda c: f"{c.share:.0%}", alignment=_NUMBER),
    Column("Trend", lambda c: c.trend.value, tooltip=trend_words),
    Column("MTTR", lambda c: _hours(c.mttr_hours), alignment=_NUMBER),
    Column("Impact", lambda c: round(c.impact), alignment=_NUMBER),
    Column("Cumulative", lambda c: f"{c.cumulative_share:.0%}", alignment=_NUMBER),
)


class GapTableModel(RowTableModel[GapCluster]):
    """The ranked gaps: a thin adapter over frozen :class:`GapCluster` rows (see ``table_models``)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(GAP_COLUMNS, parent)


def _draft_state(entry: QueueEntry) -> str:
    if entry.draft is None:
        return "—"
    status = entry.draft.status.value.replace("_", " ")
    return f"#{entry.draft.runbook_id} {status}"


ACTION_COLUMN = "Action"
QUEUE_COLUMNS: tuple[Column[QueueEntry], ...] = (
    Column("Gap", lambda e: e.cluster.label, tooltip=lambda e: e.confidence.explain()),
    Column("Tickets", lambda e: e.cluster.size, alignment=_NUMBER),
    Column("Confidence", lambda e: f"{e.confidence.value:.0%}", alignment=_NUMBER),
    Column("Queue", lambda e: e.bucket.words),
    Column("Draft", _draft_state, tooltip=lambda e: e.draft.title if e.draft else None),
    Column(ACTION_COLUMN, lambda _e: None),  # a button per gap (GapsPage._place_queue_buttons)
)


class QueueTableModel(RowTableModel[QueueEntry]):
    """The generation queue, ranked as the gaps: a thin adapter over frozen :class:`QueueEntry` rows."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(QUEUE_COLUMNS, parent)


def queue_counts_text(queue: GenerationQueue) -> str:
    counts = queue.counts()
    return (
        f"Generated automatically, awaiting approval (above {AUTOMATIC_ABOVE:.0%}): "
        f"{counts[Bucket.AUTOMATIC]} · Approve generation ({PROMPT_FROM:.0%}–{AUTOMATIC_ABOVE:.0%}): "
        f"{counts[Bucket.PROMPT]} · Manual authoring (below {PROMPT_FROM:.0%}): {counts[Bucket.MANUAL]}"
    )


# --- Rendering ---------------------------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value))


def cluster_html(cluster: GapCluster, entry: QueueEntry | None = None) -> str:
    """The detail pane: every ticket and runbook value escaped (external text)."""
    severity = ", ".join(f"{_e(s)} {n}" for s, n in cluster.severity_mix)
    mttr = _hours(cluster.mttr_hours) or f"none resolved (impact uses {_hours(cluster.impact_hours)})"
    tickets = "".join(
        f"<li><b>{_e(t.external_id)}</b> {_e(t.title)} <i>({_e(t.severity or 'no severity')}, "
        f"similarity {t.similarity:.2f})</i></li>"
        for t in cluster.central_tickets
    )
    notes = "".join(
        f"<li>{_e(n.text)} <i>({_e(n.source_ticket)}{f', {n.count} tickets' if n.count > 1 else ''})</i></li>"
        for n in cluster.resolution_notes
    )
    runbook = cluster.nearest_runbook
    runbook_html = (
        f"<p><b>Nearest runbook:</b> {_e(runbook.title)} — confidence {runbook.confidence:.0%}, first choice "
        f"for {runbook.share:.0%} of these tickets.</p><p><b>Why it does not cover them:</b> "
        f"{_e(runbook.reason)}</p>"
        if runbook
        else "<p><b>Nearest runbook:</b> none ranked.</p>"
    )
    rows = [
        ("Tickets", f"{cluster.size} ({cluster.share:.0%} of uncovered)"),
        ("Trend", _e(trend_words(cluster))),
        ("Severity", severity),
    ]
    if cluster.platform is not None:
        rows.append(("Platform", _e(cluster.platform.value)))
    rows += [
        ("MTTR", _e(mttr)),
        (
            "Impact",
            f"{cluster.impact:,.0f} ({cluster.impact_share:.0%} of total; {cluster.size} × weight "
            f"{cluster.mean_severity_weight:.1f} × {_hours(cluster.impact_hours)})",
        ),
    ]
    if cluster.covering_article is not None:  # issue 14: the procedure exists as a knowledge article
        article = cluster.covering_article
        rows.append(
            (
                "Knowledge",
                f"<b>{_e(article.words)}</b> (confidence {article.confidence:.0%}; the cheaper fix)",
            )
        )
    if entry is not None:
        draft = f"; draft #{entry.draft.runbook_id} “{_e(entry.draft.title)}”" if entry.draft else ""
        rows.append(
            (
                "Generation",
                f"{_e(entry.bucket.words)}{draft} — procedure confidence {_e(entry.confidence.explain())}",
            )
        )
    table = "".join(f"<tr><th align='left'>{name}</th><td>{value}</td></tr>" for name, value in rows)
    steps = "".join(
        f"<li>{_e(n.text)} <i>({_e(n.source_ticket)}{f', {n.count} tickets' if n.count > 1 else ''})</i></li>"
        for n in cluster.steps
    )
    return (
        f"<h2>#{cluster.rank} {_e(cluster.label)}</h2>"
        f"<p><b>Terms:</b> {_e(', '.join(cluster.terms))}</p>"
        f'<table cellspacing="0" cellpadding="2">{table}</table>'
        f"<h3>Most typical tickets</h3><ol>{tickets}</ol>"
        + (
            f"<h3>How they were resolved</h3><ul>{notes}</ul>"
            if notes
            else "<p><i>No resolution notes.</i></p>"
        )
        + (f"<h3>Candidate steps for a runbook</h3><ol>{steps}</ol>" if steps else "")
        + runbook_html
    )


# --- The page ----------------------------------------------------------------------------------------------


class GapsPage(QWidget):
    draft_requested = Signal(object)  # RunbookDraft
    error_occurred = Signal(str)
    analysed = Signal(object)  # GapReport
    dismissed = Signal(str)  # the dismissed cluster's key
    queue_loaded = Signal(object)  # GenerationQueue
    drafts_generated = Signal(object)  # tuple[int, ...]: runbook ids

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._context = context
        self._task: Task | None = None
        self._queue_task: Task | None = None
        self.report: GapReport | None = None
        self.queue: GenerationQueue | None = None
        # Decided: every analysis on this page generates the automatic drafts (module docstring).
        self.auto_generate = True

        today = QDate.currentDate()
        self.date_from = QDateEdit(today.addMonths(-DEFAULT_MONTHS), self)
        self.date_from.setObjectName("gapsDateFrom")
        self.date_to = QDateEdit(today, self)
        self.date_to.setObjectName("gapsDateTo")
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
        self.source_combo = QComboBox(self)
        self.source_combo.setObjectName("gapsSource")
        self.kind_combo = QComboBox(self)
        self.kind_combo.setObjectName("gapsKind")
        self.category_combo = QComboBox(self)
        self.category_combo.setObjectName("gapsCategory")
        for combo in (self.source_combo, self.kind_combo, self.category_combo):
            combo.addItem(ALL, None)
        for kind in TicketKind:
            self.kind_combo.addItem(kind.value.capitalize(), kind.value)
        self.analyse_button = QPushButton("Find gaps", self)
        self.analyse_button.setObjectName("gapsAnalyseButton")
        self.analyse_button.setToolTip("Group the uncovered tickets of this range and rank them by impact")
        self.analyse_button.clicked.connect(self.start_analysis)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName("gapsCancelButton")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setMaximumWidth(180)
        self.progress_bar.setRange(0, 100)
        self.progress_bar.hide()

        filter_strip = QWidget(self)
        filters = QHBoxLayout(filter_strip)
        filters.setContentsMargins(0, 0, 0, 0)
        for text, widget in (
            ("From", self.date_from),
            ("to", self.date_to),
            ("Source", self.source_combo),
            ("Kind", self.kind_combo),
            ("Category", self.category_combo),
        ):
            filters.addWidget(QLabel(text, self))
            filters.addWidget(widget)
        filters.addStretch(1)
        filters.addWidget(self.progress_bar)
        filters.addWidget(self.analyse_button)
        filters.addWidget(self.cancel_button)

        self.summary_label = QLabel("Choose a range and press “Find gaps”.", self)
        self.summary_label.setObjectName("gapsSummary")
        self.summary_label.setWordWrap(True)
        self.error_label = QLabel(self)
        self.error_label.setObjectName("gapsError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(ERROR_STYLE)
        self.error_label.hide()

        self.model = GapTableModel(self)
        self.table = QTableView(self)
        self.table.setObjectName("gapsTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        show_cut_text_as_tooltips(self.table)  # a long gap label cut off in its cell: all of it on hover
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(
            self.model.column_index("Gap"), QHeaderView.ResizeMode.Stretch
        )
        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.filter_edit = row_filter_edit(self.table, "gapsFilter", "Filter the gaps by label or terms")
        self.chart = ParetoChart(self)
        self.chart.setObjectName("gapsPareto")
        self.chart.bar_clicked.connect(self.select_row)

        self.detail = link_safe_browser(self, "gapDetail")
        self.draft_button = QPushButton("Draft runbook from this gap", self)
        self.draft_button.setObjectName("gapsDraftButton")
        self.draft_button.clicked.connect(self.request_draft)
        self.dismiss_button = QPushButton("Not a gap…", self)
        self.dismiss_button.setObjectName("gapsDismissButton")
        self.dismiss_button.setToolTip(
            "Hide this cluster now and in later analyses (recorded in the audit trail)"
        )
        self.dismiss_button.clicked.connect(self.ask_dismiss)
        self.export_html_button = QPushButton("Export HTML…", self)
        self.export_html_button.clicked.connect(lambda: self.choose_export("html"))
        self.export_csv_button = QPushButton("Export CSV…", self)
        self.export_csv_button.clicked.connect(lambda: self.choose_export("csv"))

        ranked = QWidget(self)
        left_layout = QVBoxLayout(ranked)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.chart)
        left_layout.addWidget(self.filter_edit)
        left_layout.addWidget(self.table, 1)
        exports = QHBoxLayout()
        exports.addWidget(self.export_html_button)
        exports.addWidget(self.export_csv_button)
        exports.addStretch(1)
        left_layout.addLayout(exports)

        self.queue_counts_label = QLabel("The generation queue fills after an analysis.", self)
        self.queue_counts_label.setObjectName("gapsQueueCounts")
        self.queue_counts_label.setWordWrap(True)
        self.queue_model = QueueTableModel(self)
        self.queue_table = QTableView(self)
        self.queue_table.setObjectName("gapsQueueTable")
        self.queue_table.setModel(self.queue_model)
        self.queue_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.queue_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.queue_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.queue_table.verticalHeader().hide()
        show_cut_text_as_tooltips(self.queue_table)
        self.queue_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.queue_table.horizontalHeader().setSectionResizeMode(
            self.queue_model.column_index("Gap"), QHeaderView.ResizeMode.Stretch
        )
        self.queue_table.selectionModel().currentRowChanged.connect(self._on_queue_row_changed)
        self.queue_buttons: dict[str, QPushButton] = {}
        queue_page = QWidget(self)
        queue_layout = QVBoxLayout(queue_page)
        queue_layout.setContentsMargins(0, 0, 0, 0)
        queue_layout.addWidget(self.queue_counts_label)
        queue_layout.addWidget(self.queue_table, 1)

        left = QTabWidget(self)
        left.setObjectName("gapsTabs")
        left.addTab(ranked, "Ranked gaps")
        left.addTab(queue_page, "Generation queue")
        self.tabs = left
        right = QWidget(self)
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.detail, 1)
        actions = QHBoxLayout()
        actions.addWidget(self.draft_button)
        actions.addWidget(self.dismiss_button)
        actions.addStretch(1)
        right_layout.addLayout(actions)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("gapsSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)

        # A strip that scrolls sideways when the window is narrow, so the filters do not set the window's
        # minimum width (every other page shrinks to a few hundred pixels).
        self.filter_scroll = QScrollArea(self)
        self.filter_scroll.setWidget(filter_strip)
        self.filter_scroll.setWidgetResizable(True)
        self.filter_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.filter_scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.filter_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.filter_scroll.setFixedHeight(
            filter_strip.sizeHint().height() + self.filter_scroll.horizontalScrollBar().sizeHint().height()
        )
        layout = QVBoxLayout(self)
        layout.addWidget(self.filter_scroll)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.error_label)
        layout.addWidget(self.splitter, 1)
        self._update_actions()
        self._facets_loaded = False
        runner = context.runner
        runner.task_finished.connect(self._on_queue_task_finished)
        runner.task_progress.connect(self._on_progress)
        runner.task_finished.connect(self._on_finished)
        runner.task_failed.connect(self._on_failed_task)

    # --- inputs ------------------------------------------------------------------------------------------

    def query(self) -> GapQuery:
        since = datetime.combine(python_date(self.date_from.date()), time.min, UTC)
        # The "to" day is included: the query's end is exclusive, so it is the next midnight.
        until = datetime.combine(python_date(self.date_to.date().addDays(1)), time.min, UTC)
        return GapQuery(
            since=since,
            until=until,
            source_systems=frozenset({self.source_combo.currentData()} - {None}),
            kinds=frozenset({TicketKind(k) for k in {self.kind_combo.currentData()} - {None}}),
            categories=frozenset({self.category_combo.currentData()} - {None}),
        )

    def focus_filter(self) -> None:
        focus_filter_box(self.filter_edit)

    def set_range(self, since: QDate, until: QDate) -> None:
        self.date_from.setDate(since)
        self.date_to.setDate(until)

    def load_facets(self) -> Task:
        return self._context.runner.run(
            load_facets, self._context.sessions, title="Loading gap filters", on_done=self._facets_done
        )

    def _facets_done(self, facets: tuple[tuple[str, ...], tuple[str, ...]]) -> None:
        sources, categories = facets
        for combo, values in ((self.source_combo, sources), (self.category_combo, categories)):
            current = combo.currentData()
            combo.clear()
            combo.addItem(ALL, None)
            for value in values:
                combo.addItem(value, value)
            combo.setCurrentIndex(max(combo.findData(current), 0))
        self._facets_loaded = True

    def showEvent(self, event: QShowEvent) -> None:
        if not self._facets_loaded:  # the first show reads the sources and categories for the filters
            self._facets_loaded = True
            self.load_facets()
        super().showEvent(event)

    # --- analysis ----------------------------------------------------------------------------------------

    def start_analysis(self) -> Task | None:
        if self.is_running():
            return None
        self.error_label.hide()
        self.progress_bar.setValue(0)
        self.progress_bar.show()
        self.cancel_button.setEnabled(True)
        self.analyse_button.setEnabled(False)
        self.summary_label.setText("Finding gaps…")
        self._task = self._context.runner.run(
            run_gap_analysis,
            self._context,
            self.query(),
            title="Finding gaps",
            on_done=self._analysis_done,
            on_error=self._failed,
            progress=True,
        )
        return self._task

    def is_running(self) -> bool:
        return self._task is not None and self._task.is_active

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self.cancel_button.setEnabled(False)

    def stop(self) -> None:
        self.cancel()
        if self._queue_task is not None:  # a draft being written finishes its transaction; the rest stops
            self._queue_task.cancel()

    def _on_progress(self, task: Task) -> None:
        if task is self._task and task.progress is not None:
            self.progress_bar.setValue(task.progress.done)
            if task.progress.message:
                self.summary_label.setText(task.progress.message)

    def _on_finished(self, task: Task) -> None:
        if task is not self._task:
            return
        self._idle()
        if task.cancel_requested and self.report is None:
            self.summary_label.setText("Cancelled.")
        elif task.cancel_requested:
            self.summary_label.setText(self._summary(self.report) + " (a newer run was cancelled)")

    def _on_failed_task(self, task: Task, _exc: object, _traceback_text: str) -> None:
        if task is self._task:
            self._idle()

    def _idle(self) -> None:
        self.progress_bar.hide()
        self.cancel_button.setEnabled(False)
        self.analyse_button.setEnabled(True)

    def _analysis_done(self, report: GapReport) -> None:
        self.show_report(report)
        self.analysed.emit(report)
        self.show_queue(GenerationQueue(entries=()))  # the old queue's gaps may be gone; a new one follows
        self.queue_counts_label.setText("Updating the generation queue…")
        self.refresh_queue(generate=self.auto_generate)

    def show_report(self, report: GapReport) -> None:
        self.report = report
        self.model.set_rows(report.clusters)
        self.chart.set_clusters(report.clusters)
        self.summary_label.setText(self._summary(report))
        if report.clusters:
            self.select_row(0)
        else:
            self._show_none()
        self._update_actions()

    @staticmethod
    def _summary(report: GapReport | None) -> str:
        if report is None:
            return ""
        text = (
            f"{report.in_range:,} tickets in range, {report.uncovered:,} uncovered: "
            f"{len(report.clusters)} gaps, {report.noise:,} tickets in no gap"
        )
        if report.dismissed:
            text += f", {len(report.dismissed)} dismissed as not a gap"
        if report.not_analysed:
            text += f". {report.not_analysed:,} tickets are not analysed yet and were left out"
        return text + "."

    def _failed(self, exc: Exception, traceback_text: str) -> None:
        log.error("gap page task failed:\n%s", traceback_text)
        message = f"Gap analysis failed: {exc}"
        self.error_label.setText(message)
        self.error_label.setToolTip(traceback_text)
        self.error_label.show()
        self.error_occurred.emit(message)

    # --- selection ---------------------------------------------------------------------------------------

    def select_row(self, row: int) -> None:
        if 0 <= row < self.model.rowCount():
            self.table.selectRow(row)

    def current_cluster(self) -> GapCluster | None:
        index = self.table.currentIndex()
        if not index.isValid():
            return None
        return self.model.row_at(index)

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        cluster = self.current_cluster()
        self.chart.set_selected(current.row() if cluster is not None else None)
        if cluster is None:
            self._show_none()
        else:
            self.detail.setHtml(cluster_html(cluster, self.queue_entry(cluster.key)))
        self._update_actions()

    def _show_none(self) -> None:
        self.detail.setHtml("<p><i>Select a gap to see its tickets, resolutions and nearest runbook.</i></p>")

    def _update_actions(self) -> None:
        has_cluster = self.current_cluster() is not None
        self.draft_button.setEnabled(has_cluster)
        self.dismiss_button.setEnabled(has_cluster)
        has_report = self.report is not None
        self.export_html_button.setEnabled(has_report)
        self.export_csv_button.setEnabled(has_report)

    # --- actions -----------------------------------------------------------------------------------------

    def request_draft(self) -> RunbookDraft | None:
        cluster = self.current_cluster()
        if cluster is None:
            return None
        draft = draft_from_gap(cluster)
        self.draft_requested.emit(draft)
        return draft

    def ask_dismiss(self) -> None:
        cluster = self.current_cluster()
        if cluster is None:
            return
        reason, accepted = QInputDialog.getText(
            self,
            "Not a gap",
            f"Hide “{cluster.label}” ({cluster.size} tickets) now and in later analyses.\nReason (optional):",
            QLineEdit.EchoMode.Normal,
        )
        if accepted:
            self.dismiss_current(reason.strip() or None)

    def dismiss_current(self, reason: str | None = None) -> Task | None:
        cluster = self.current_cluster()
        if cluster is None or self.report is None:
            return None
        return self._context.runner.run(
            dismiss,
            self._context.sessions,
            cluster,
            self.report.model_id,
            self._context.reviewer(),
            reason,
            title="Dismissing a gap",
            on_done=self._dismissed,
            on_error=self._failed,
        )

    def _dismissed(self, cluster_key: str) -> None:
        assert self.report is not None  # a dismissal starts from a shown report
        remaining = rerank([c for c in self.report.clusters if c.key != cluster_key])
        self.report = replace(self.report, clusters=remaining)
        row = max(self.table.currentIndex().row(), 0)
        self.show_report(self.report)
        self.select_row(min(row, len(remaining) - 1))
        if self.queue is not None:
            entries = tuple(e for e in self.queue.entries if e.key != cluster_key)
            self.show_queue(replace(self.queue, entries=entries))
        self.dismissed.emit(cluster_key)

    def choose_export(self, kind: str) -> None:
        if self.report is None:
            return
        pattern = "HTML report (*.html)" if kind == "html" else "CSV (*.csv)"
        file_name, _ = QFileDialog.getSaveFileName(self, "Export gaps", f"gaps.{kind}", pattern)
        if file_name:
            self.export_to(Path(file_name), kind)

    def export_to(self, path: Path, kind: str) -> Task | None:
        if self.report is None:
            return None
        return self._context.runner.run(
            export,
            self._context.sessions,
            self.report,
            path,
            kind,
            self._context.reviewer(),
            title=f"Exporting {path.name}",
            on_done=self._exported,
            on_error=self._failed,
        )

    def _exported(self, path: Path) -> None:
        self.summary_label.setText(f"{self._summary(self.report)} Exported to {path}.")

    # --- generation queue --------------------------------------------------------------------------------

    def refresh_queue(self, *, generate: bool) -> Task | None:
        """Rebuild the queue for the shown report in the background, generating the automatic drafts first
        when ``generate``; one run at a time (a later request waits for the report's next analysis)."""
        if self.report is None or (self._queue_task is not None and self._queue_task.is_active):
            return None
        clusters = self.report.clusters
        if generate:
            self._queue_task = self._context.runner.run(
                generate_queue_drafts,
                self._context.sessions,
                clusters,
                SYSTEM_ACTOR,  # the app decided, not the analyst: audited as runbook-desk
                title="Generating draft runbooks",
                on_done=self._queue_done,
                on_error=self._queue_failed,
                progress=True,
            )
        else:
            self._queue_task = self._context.runner.run(
                load_queue,
                self._context.sessions,
                clusters,
                title="Loading the generation queue",
                on_done=self._queue_done,
                on_error=self._queue_failed,
            )
        return self._queue_task

    def approve_generation(self, key: str) -> Task | None:
        """The analyst approves generating this gap's draft (a 50-70 % gap); generated in their name."""
        if self.report is None:
            return None
        button = self.queue_buttons.get(key)
        if button is not None:
            button.setEnabled(False)
        self._queue_task = self._context.runner.run(
            approve_generation,
            self._context.sessions,
            self.report.clusters,
            key,
            self._context.reviewer(),
            title="Generating a draft runbook",
            on_done=self._queue_done,
            on_error=self._queue_failed,
        )
        return self._queue_task

    def queue_entry(self, key: str) -> QueueEntry | None:
        if self.queue is None:
            return None
        try:
            return self.queue.entry(key)
        except KeyError:
            return None

    def _on_queue_task_finished(self, task: Task) -> None:
        if task is self._queue_task:
            self._queue_task = None

    def _queue_done(self, queue: GenerationQueue) -> None:
        if self.report is not None:  # a dismissal meanwhile: keep only the gaps still listed
            keys = {c.key for c in self.report.clusters}
            queue = replace(queue, entries=tuple(e for e in queue.entries if e.key in keys))
        self.show_queue(queue)
        self.queue_loaded.emit(queue)
        if queue.generated:
            self.summary_label.setText(
                f"{self._summary(self.report)} {len(queue.generated)} draft runbook(s) generated, awaiting "
                "approval on the Runbooks page."
            )
            self.drafts_generated.emit(queue.generated)

    def _queue_failed(self, exc: Exception, traceback_text: str) -> None:
        log.error("generation queue task failed:\n%s", traceback_text)
        message = f"Draft generation failed: {exc}"
        self.error_label.setText(message)
        self.error_label.setToolTip(traceback_text)
        self.error_label.show()
        self.error_occurred.emit(message)
        if self.queue is not None:
            self.show_queue(self.queue)  # re-enable the buttons

    def show_queue(self, queue: GenerationQueue) -> None:
        self.queue = queue
        self.queue_model.set_rows(queue.entries)
        self.queue_counts_label.setText(queue_counts_text(queue))
        self.tabs.setTabText(1, f"Generation queue ({len(queue.entries)})")
        self._place_queue_buttons()
        cluster = self.current_cluster()
        if cluster is not None:
            self.detail.setHtml(cluster_html(cluster, self.queue_entry(cluster.key)))

    def _place_queue_buttons(self) -> None:
        """One button per gap: approve its generation, write it by hand, or (with a draft) nothing."""
        self.queue_buttons = {}
        column = self.queue_model.column_index(ACTION_COLUMN)
        for row, entry in enumerate(self.queue_model.rows):
            index = self.queue_model.index(row, column)
            if entry.draft is not None:  # the model's reset removed the old buttons: nothing to place
                continue
            if entry.bucket is Bucket.MANUAL:
                button = QPushButton("Write it…", self.queue_table)
                button.setToolTip("Open the runbook editor pre-filled from this gap")
                button.clicked.connect(lambda _checked=False, key=entry.key: self._draft_by_hand(key))
            else:
                button = QPushButton("Approve generation", self.queue_table)
                button.setToolTip(
                    "Generate this gap's draft runbook now, in your name; it waits for approval on the "
                    "Runbooks page"
                )
                button.clicked.connect(lambda _checked=False, key=entry.key: self.approve_generation(key))
            button.setObjectName(f"gapsQueueButton-{entry.key}")
            self.queue_buttons[entry.key] = button
            self.queue_table.setIndexWidget(index, button)

    def _draft_by_hand(self, key: str) -> RunbookDraft | None:
        entry = self.queue_entry(key)
        if entry is None:
            return None
        draft = draft_from_gap(entry.cluster)
        self.draft_requested.emit(draft)
        return draft

    def _on_queue_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return
        key = self.queue_model.row_at(current).key
        for row, cluster in enumerate(self.model.rows):
            if cluster.key == key:
                self.select_row(row)
                return
