"""The Metrics page: the success criteria as a scorecard, each metric over time, and the active alerts.

The metrics are the roadmap's (roadmap: Monitoring & Observability, "Metrics to Track" and "Alerts").
Everything the page shows comes from :mod:`core.analytics.metrics` and
:mod:`core.analytics.health_alerts`, computed in a worker (:mod:`desktop.background.metrics_jobs`) that
opens its own session and hands back frozen rows. The page loads when first shown and again when the range,
the bucket or the store changes (the window marks it stale).

Alerts are evaluated by this page for the whole window: every :data:`ALERT_INTERVAL_MS` on its own timer,
and when the window asks (after an analysis). One evaluation runs at a time; a request while one runs
queues exactly one more, so the latest state is always evaluated. Newly raised alerts are announced through
:attr:`MetricsPage.alert_raised` (the window turns them into notifications) and listed here; cleared ones
leave the list. Thresholds are the tenant's (``tenants.settings``), edited in
:class:`~desktop.dialogs.alert_settings.AlertSettingsDialog`.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from pathlib import Path

from PySide6.QtCore import QDate, Qt, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from core.analytics.health_alerts import AlertChanges, AlertRow
from core.analytics.metrics import (
    COVERAGE_GOAL,
    FALSE_POSITIVE_GOAL,
    METRICS,
    Bucket,
    GoalStatus,
    MetricDefinition,
    MetricKind,
    MetricRange,
    ScoreItem,
    export_csv,
    format_change,
    format_value,
)
from desktop.background.metrics_jobs import (
    MetricsLoad,
    load_metrics,
    run_alert_evaluation,
)
from desktop.background.tasks import Task
from desktop.context import AppContext
from desktop.dialogs.alert_settings import AlertSettingsDialog
from desktop.widgets.browse import focus_filter_box
from desktop.widgets.dates import python_date
from desktop.widgets.line_chart import ChartData, ChartLine, LineChart
from desktop.widgets.reflow_grid import ReflowGrid
from desktop.widgets.runbook_outcomes import RunbookOutcomesSection
from desktop.widgets.table_models import Column, RowTableModel, format_local_datetime

log = logging.getLogger(__name__)

ALERT_INTERVAL_MS = 5 * 60_000
# Cards and charts wrap onto more rows as the window narrows (ReflowGrid) rather than widening it.
CARD_COLUMNS, CARD_MIN_WIDTH = 4, 220
CHART_COLUMNS, CHART_MIN_WIDTH = 3, 260  # LineChart.minimumWidth()


@dataclass(frozen=True, slots=True)
class RangePreset:
    label: str
    days: int | None  # None: the dates in the date boxes
    bucket: Bucket  # chosen with the preset (the bucket box can change it after)


RANGE_PRESETS: tuple[RangePreset, ...] = (
    RangePreset("Last 7 days", 7, Bucket.DAY),
    RangePreset("Last 30 days", 30, Bucket.DAY),
    RangePreset("Last 90 days", 90, Bucket.WEEK),
    RangePreset("Last 365 days", 365, Bucket.WEEK),
    RangePreset("Custom dates", None, Bucket.DAY),
)
DEFAULT_PRESET = 2


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- presentation helpers ---------------------------------------------------------------------------------


def bucket_label_format(bucket: Bucket) -> Callable[[datetime], str]:
    if bucket is Bucket.HOUR:
        return lambda start: start.strftime("%d %b %H:00")
    return lambda start: start.strftime("%d %b")


def value_format(metric: MetricDefinition) -> Callable[[float], str]:
    if metric.kind is MetricKind.RATIO:
        return lambda value: f"{value:.0%}"
    if metric.unit == "confidence":
        return lambda value: f"{value:.2f}"
    if metric.kind is MetricKind.MEAN:
        return lambda value: f"{value:,.0f}" if abs(value) >= 10 or value == 0 else f"{value:.1f}"
    return lambda value: f"{value:,.0f}" if value >= 1 or value == 0 else f"{value:.1f}"


def chart_data(metric: MetricDefinition, load: MetricsLoad) -> ChartData:
    report = load.report
    series = report.of(metric.key)
    goal: float | None = None
    goal_label = ""
    if metric.key == "coverage":
        goal, goal_label = COVERAGE_GOAL, f"goal: at least {COVERAGE_GOAL * 100:.0f} %"
    elif metric.key == "false_positive_rate":
        goal, goal_label = FALSE_POSITIVE_GOAL, f"goal: under {FALSE_POSITIVE_GOAL * 100:.0f} %"
    elif metric.key == "average_confidence":
        goal, goal_label = load.review_threshold, f"review threshold {load.review_threshold:.2f}"
    title = metric.title if metric.kind is MetricKind.RATIO else f"{metric.title} ({metric.unit})"
    return ChartData(
        title=title,
        buckets=report.metric_range.bucket_starts(),
        bucket_label=bucket_label_format(report.metric_range.bucket),
        lines=tuple(ChartLine(s.group, tuple(p.value for p in s.points)) for s in series),
        value_format=value_format(metric),
        fixed_max=1.0 if metric.kind is MetricKind.RATIO or metric.unit == "confidence" else None,
        goal=goal,
        goal_label=goal_label,
        whole_numbers=metric.kind is MetricKind.COUNT,
    )


def score_text(item: ScoreItem) -> str:
    """The card's big figure; a change of resolution time reads as speed ("50 % faster"), not as "-50%"."""
    if item.key in ("coverage", "false_positive_rate"):
        return format_value(MetricKind.RATIO, item.value)
    if item.value is None:
        return format_change(item.value)
    rounded = round(abs(item.value) * 100)
    if rounded == 0:
        return "same speed"
    return f"{rounded} % {'faster' if item.value < 0 else 'slower'}"


STATUS_TEXT = {
    GoalStatus.MET: "✓ goal met",
    GoalStatus.MISSED: "✗ goal missed",
    GoalStatus.NO_DATA: "no data",
}
STATUS_COLOR = {GoalStatus.MET: "#1b7f3b", GoalStatus.MISSED: "#b3261e", GoalStatus.NO_DATA: "palette(mid)"}


def alert_text(alert: AlertRow) -> str:
    return f"{alert.title} · since {format_local_datetime(alert.raised_at)}\n{alert.message}"


# One wrapped column: the panel is narrow, and an alert reads as a sentence, not as table cells.
ALERT_COLUMNS: tuple[Column[AlertRow], ...] = (
    Column("Alert", alert_text, tooltip=lambda alert: alert.message),
)


# --- widgets ----------------------------------------------------------------------------------------------


class ScoreCard(QFrame):
    """One success criterion: its value, the goal and whether it is met."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title_label = QLabel(self)
        self.title_label.setWordWrap(True)  # "MTTR, linked vs unlinked · goal: …" is wider than a narrow card
        self.value_label = QLabel("-", self)
        font = self.value_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        self.value_label.setFont(font)
        self.status_label = QLabel(self)
        self.status_label.setWordWrap(True)
        self.sentence_label = QLabel(self)
        self.sentence_label.setObjectName("scoreSentence")
        self.sentence_label.setWordWrap(True)
        self.detail_label = QLabel(self)
        self.detail_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(2)
        layout.addWidget(self.title_label)
        value_row = QHBoxLayout()
        value_row.addWidget(self.value_label)
        value_row.addWidget(self.status_label, 1, Qt.AlignmentFlag.AlignBottom)
        layout.addLayout(value_row)
        layout.addWidget(self.sentence_label)
        layout.addWidget(self.detail_label)
        self.item: ScoreItem | None = None

    def set_item(self, item: ScoreItem) -> None:
        self.item = item
        self.setObjectName(f"score-{item.key}")
        self.title_label.setText(f"<b>{html.escape(item.title)}</b> · goal: {html.escape(item.goal)}")
        self.value_label.setText(score_text(item))
        self.status_label.setText(STATUS_TEXT[item.status])
        self.status_label.setStyleSheet(f"color: {STATUS_COLOR[item.status]};")
        self.sentence_label.setText(item.sentence)
        self.detail_label.setText(item.detail)
        self.setAccessibleName(f"{item.title}: {item.sentence} {STATUS_TEXT[item.status]}")


class MetricsPage(QWidget):
    loaded = Signal()
    load_failed = Signal(str)
    alerts_evaluated = Signal(object)  # AlertChanges
    alert_raised = Signal(str)  # one newly raised alert, as a sentence for a notification
    exported = Signal(object)  # the CSV file's Path

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._context = context
        self.clock: Callable[[], datetime] = utcnow  # tests pin "now"
        self._load_task: Task | None = None
        self._evaluation: Task | None = None
        self._evaluate_again = False
        self._stale = True
        self._stopped = False
        self.current: MetricsLoad | None = None

        self.range_combo = QComboBox(self)
        self.range_combo.setObjectName("metricsRange")
        for preset in RANGE_PRESETS:
            self.range_combo.addItem(preset.label)
        today = QDate.currentDate()
        self.from_edit = self._date_edit(today.addDays(-30), "metricsFrom")
        self.to_edit = self._date_edit(today, "metricsTo")
        self.bucket_combo = QComboBox(self)
        self.bucket_combo.setObjectName("metricsBucket")
        for bucket in Bucket:
            self.bucket_combo.addItem(bucket.value.capitalize(), bucket.value)
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.clicked.connect(self.reload)
        self.export_button = QPushButton("Export CSV…", self)
        self.export_button.setObjectName("exportMetricsButton")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self.choose_export_file)
        self.thresholds_button = QPushButton("Alert thresholds…", self)
        self.thresholds_button.clicked.connect(self.open_alert_settings)

        # A tool bar, not a row of widgets: in a narrow window what does not fit moves behind its » button
        # instead of forcing the whole window wider.
        self.controls = QToolBar(self)
        self.controls.setObjectName("metricsControls")
        spacer = QWidget(self.controls)
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        for widget in (
            QLabel("Range ", self),
            self.range_combo,
            self.from_edit,
            QLabel(" to ", self),
            self.to_edit,
            QLabel(" by ", self),
            self.bucket_combo,
            self.refresh_button,
            spacer,
            self.thresholds_button,
            self.export_button,
        ):
            self.controls.addWidget(widget)

        self.summary_label = QLabel(self)
        self.summary_label.setObjectName("metricsSummary")
        self.summary_label.setWordWrap(True)
        self.error_label = QLabel(self)
        self.error_label.setObjectName("metricsErrorLabel")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: palette(bright-text); background: #b3261e; padding: 4px;")
        self.error_label.hide()

        # The scorecard above the charts, both in one scroll area: in a small window they wrap and scroll,
        # and nothing on this page sets the window's minimum size (issue 16).
        scroll_host = QWidget(self)
        self.score_grid = ReflowGrid(CARD_MIN_WIDTH, CARD_COLUMNS, scroll_host)
        self.score_grid.setObjectName("scoreCards")
        self.score_cards = [ScoreCard(self.score_grid) for _ in range(4)]
        for card in self.score_cards:
            self.score_grid.add_widget(card)
        self.charts_grid = ReflowGrid(CHART_MIN_WIDTH, CHART_COLUMNS, scroll_host)
        self.charts_grid.setObjectName("metricCharts")
        self.charts: dict[str, LineChart] = {}
        for metric in METRICS:
            chart = LineChart(self.charts_grid)
            chart.setObjectName(f"chart-{metric.key}")
            chart.setWhatsThis(metric.definition)
            self.charts[metric.key] = chart
            self.charts_grid.add_widget(chart)
        scroll_layout = QVBoxLayout(scroll_host)
        scroll_layout.setContentsMargins(0, 0, 0, 0)
        scroll_layout.addWidget(self.score_grid)
        scroll_layout.addWidget(self.charts_grid, 1)
        # Execution tracking: the runbooks whose outcomes say they need revising (loads with the page).
        self.outcomes_section = RunbookOutcomesSection(context.runner, context.sessions, scroll_host)
        scroll_layout.addWidget(self.outcomes_section)
        self.charts_scroll = QScrollArea(self)
        self.charts_scroll.setObjectName("metricsScroll")
        self.charts_scroll.setWidgetResizable(True)
        self.charts_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.charts_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.charts_scroll.setWidget(scroll_host)

        alerts_panel = QWidget(self)
        self.alerts_label = QLabel("Active alerts", alerts_panel)
        self.alert_model: RowTableModel[AlertRow] = RowTableModel(ALERT_COLUMNS, self)
        self.alert_table = QTableView(alerts_panel)
        self.alert_table.setObjectName("alertTable")
        self.alert_table.setModel(self.alert_model)
        self.alert_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.alert_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.alert_table.setWordWrap(True)
        self.alert_table.verticalHeader().hide()
        self.alert_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.alert_table.horizontalHeader().setStretchLastSection(True)
        self.no_alerts_label = QLabel("No active alerts.", alerts_panel)
        self.check_button = QPushButton("Check alerts now", alerts_panel)
        self.check_button.clicked.connect(self.evaluate_alerts)
        alerts_layout = QVBoxLayout(alerts_panel)
        alerts_layout.setContentsMargins(0, 0, 0, 0)
        alerts_layout.addWidget(self.alerts_label)
        alerts_layout.addWidget(self.no_alerts_label)
        alerts_layout.addWidget(self.alert_table, 1)
        alerts_layout.addWidget(self.check_button)

        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("metricsSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.charts_scroll)
        self.splitter.addWidget(alerts_panel)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([900, 330])

        layout = QVBoxLayout(self)
        layout.addWidget(self.controls)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.error_label)
        layout.addWidget(self.splitter, 1)

        self.range_combo.setCurrentIndex(DEFAULT_PRESET)
        self._apply_preset(DEFAULT_PRESET)
        self.range_combo.currentIndexChanged.connect(self._on_preset_chosen)
        self.bucket_combo.currentIndexChanged.connect(self._on_choice_changed)
        self.from_edit.dateChanged.connect(self._on_choice_changed)
        self.to_edit.dateChanged.connect(self._on_choice_changed)
        self._show_alerts(())

        self.alert_timer = QTimer(self)
        self.alert_timer.setInterval(ALERT_INTERVAL_MS)
        self.alert_timer.timeout.connect(self.evaluate_alerts)
        self.alert_timer.start()

    def _date_edit(self, value: QDate, name: str) -> QDateEdit:
        edit = QDateEdit(value, self)
        edit.setObjectName(name)
        edit.setCalendarPopup(True)
        edit.setDisplayFormat("yyyy-MM-dd")
        return edit

    # --- range ------------------------------------------------------------------------------------------

    def _apply_preset(self, index: int) -> None:
        preset = RANGE_PRESETS[index]
        custom = preset.days is None
        self.from_edit.setEnabled(custom)
        self.to_edit.setEnabled(custom)
        for widget in (self.bucket_combo, self.from_edit, self.to_edit):
            widget.blockSignals(True)
        self.bucket_combo.setCurrentIndex(self.bucket_combo.findData(preset.bucket.value))
        if preset.days is not None:
            today = self.clock().date()
            self.from_edit.setDate(QDate(today - timedelta(days=preset.days - 1)))
            self.to_edit.setDate(QDate(today))
        for widget in (self.bucket_combo, self.from_edit, self.to_edit):
            widget.blockSignals(False)

    def _on_preset_chosen(self, index: int) -> None:
        self._apply_preset(index)
        self.reload()

    def _on_choice_changed(self) -> None:
        self.reload()

    def set_range(self, first_day: date, last_day: date, bucket: Bucket) -> None:
        """Custom dates (both inclusive) and a bucket, as a user would pick them; reloads."""
        self.range_combo.blockSignals(True)
        self.range_combo.setCurrentIndex(len(RANGE_PRESETS) - 1)
        self.range_combo.blockSignals(False)
        self._apply_preset(len(RANGE_PRESETS) - 1)
        for widget in (self.bucket_combo, self.from_edit, self.to_edit):
            widget.blockSignals(True)
        self.from_edit.setDate(QDate(first_day))
        self.to_edit.setDate(QDate(last_day))
        self.bucket_combo.setCurrentIndex(self.bucket_combo.findData(bucket.value))
        for widget in (self.bucket_combo, self.from_edit, self.to_edit):
            widget.blockSignals(False)
        self.reload()

    def metric_range(self) -> MetricRange:
        """The chosen days, whole UTC days from the first to the last (inclusive)."""
        first = python_date(self.from_edit.date())
        last = python_date(self.to_edit.date())
        bucket = Bucket(self.bucket_combo.currentData())
        since = datetime.combine(first, time(), tzinfo=UTC)
        until = datetime.combine(last, time(), tzinfo=UTC) + timedelta(days=1)
        return MetricRange(since, until, bucket)

    # --- loading ----------------------------------------------------------------------------------------

    def focus_filter(self) -> None:
        """Ctrl+F: the page filters by range, not by text; the range is where the keyboard goes."""
        focus_filter_box(self.range_combo)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._stale:
            self.reload()

    def mark_stale(self) -> None:
        """The store changed: reload now if visible, else when next shown."""
        self._stale = True
        if self.isVisible():
            self.reload()

    def is_loading(self) -> bool:
        return self._load_task is not None and self._load_task.is_active

    def reload(self) -> None:
        if self._stopped:
            return
        self.cancel_load()
        try:
            metric_range = self.metric_range()
        except ValueError as exc:
            self._show_error(str(exc))
            return
        self._stale = False
        self.outcomes_section.reload()
        self._load_task = self._context.runner.run(
            load_metrics,
            self._context.sessions,
            metric_range,
            title="Loading metrics",
            on_done=self._loaded,
            on_error=self._load_error,
        )

    def cancel_load(self) -> None:
        if self._load_task is not None and self._load_task.is_active:
            self._load_task.cancel()
        self._load_task = None

    def stop(self) -> None:
        """The window is closing: no more loads, evaluations or timer ticks."""
        self._stopped = True
        self.alert_timer.stop()
        self.cancel_load()
        self.outcomes_section.stop()
        if self._evaluation is not None and self._evaluation.is_active:
            self._evaluation.cancel()

    def _loaded(self, result: MetricsLoad) -> None:
        self.current = result
        self.error_label.hide()
        metric_range = result.report.metric_range
        last_day = (metric_range.until - timedelta(days=1)).date()
        self.summary_label.setText(
            f"Tickets opened {metric_range.since:%d %b %Y} – {last_day:%d %b %Y} (UTC), by "
            f"{metric_range.bucket.value}; ingestion and sync runs by their own times. "
            "Hover a chart for its values; What's This (Shift+F1) for its definition."
        )
        for card, item in zip(self.score_cards, result.report.scorecard.items, strict=True):
            card.set_item(item)
        for metric in METRICS:
            self.charts[metric.key].set_data(chart_data(metric, result))
        self._show_alerts(result.alerts)
        self.export_button.setEnabled(True)
        self.loaded.emit()

    def _show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()
        self.load_failed.emit(message)

    def _load_error(self, exc: Exception, traceback_text: str) -> None:
        log.error("loading metrics failed:\n%s", traceback_text)
        self.error_label.setToolTip(traceback_text)
        self._show_error(f"Could not load the metrics: {exc}")

    # --- alerts -----------------------------------------------------------------------------------------

    def _show_alerts(self, alerts: tuple[AlertRow, ...]) -> None:
        self.alert_model.set_rows(alerts)
        self.alerts_label.setText(
            f"<b>Active alerts ({len(alerts)})</b>" if alerts else "<b>Active alerts</b>"
        )
        self.no_alerts_label.setVisible(not alerts)

    def is_evaluating(self) -> bool:
        return self._evaluation is not None and self._evaluation.is_active

    def evaluate_alerts(self) -> None:
        """Evaluate the alert rules in a worker (after an analysis, on the timer, on "Check alerts now")."""
        if self._stopped:
            return
        if self.is_evaluating():
            self._evaluate_again = True
            return
        self._evaluate_again = False
        self._evaluation = self._context.runner.run(
            run_alert_evaluation,
            self._context.sessions,
            self.clock(),
            title="Checking alerts",
            on_done=self._evaluated,
            on_error=self._evaluation_failed,
        )

    def _evaluated(self, result: AlertChanges) -> None:
        self._evaluation = None
        self._show_alerts(result.active)
        for alert in result.raised:
            self.alert_raised.emit(f"Alert: {alert.title}. {alert.message}")
        self.alerts_evaluated.emit(result)
        if self._evaluate_again:
            self.evaluate_alerts()

    def _evaluation_failed(self, exc: Exception, traceback_text: str) -> None:
        # The window's task_failed handler notifies; the page says it too, where the alerts are.
        self._evaluation = None
        log.error("evaluating alerts failed:\n%s", traceback_text)
        self.alerts_label.setText(f"<b>Active alerts</b> (the last check failed: {exc})")
        if self._evaluate_again:
            self.evaluate_alerts()

    def open_alert_settings(self) -> AlertSettingsDialog:
        dialog = AlertSettingsDialog(self._context, self)
        dialog.saved.connect(lambda _settings: self.evaluate_alerts())
        dialog.open()
        return dialog

    # --- export -----------------------------------------------------------------------------------------

    def choose_export_file(self) -> None:
        file_name, _ = QFileDialog.getSaveFileName(self, "Export metrics", "metrics.csv", "CSV files (*.csv)")
        if file_name:
            self.export_csv_to(Path(file_name))

    def export_csv_to(self, path: Path) -> Task | None:
        if self.current is None:
            return None
        return self._context.runner.run(
            partial(export_csv, actor=self._context.reviewer()),
            self._context.sessions,
            self.current.report,
            path,
            title=f"Exporting metrics to {path.name}",
            on_done=lambda _rows: self.exported.emit(path),
        )
