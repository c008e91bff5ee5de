"""The Alerts page: what the monitoring systems are firing now, grouped into incidents, each with the runbook
the engine suggests for it, so the on-call analyst sees the fix next to the alarm (issue 13).

The list holds the open incidents (the resolved ones too with "Show resolved"), worst first: severity,
title, hosts and services, how many alerts, the suggested runbook with its calibrated confidence and the
analysis' decision, when it opened and last fired (relative times, the exact time in the tooltip), and what
changed since the last monitoring sync ("new", "+3 alerts", "escalated to critical", "resolved"). Selecting
an incident lists its alerts; selecting an alert shows its raw message and rule expression exactly as the
monitoring system sent them (the matcher's cleaned text is never shown: the analyst reads the source).

Keys (off while a text field has the focus): ``J``/``K`` next/previous incident, ``Enter`` open the incident
in Review (where its runbook is approved like any ticket's), ``C`` create it in a ticketing system, ``S``
show or hide the resolved ones; Ctrl+F filters.

Every read and write runs on a worker (:mod:`desktop.background.alert_jobs`). The page reloads after each
monitoring sync and each analysis (the window calls :meth:`AlertsPage.reload`), even when hidden: the
navigation rail's badge counts its open incidents. :meth:`AlertsPage.announce` asks the store for the
critical incidents with a confident runbook not announced yet and emits one notification per incident;
the store marks them, so each is announced once.

Signals: ``open_in_review(ticket_id, number)``, ``notify(Level, text, details)``, ``loaded()``,
``counts_changed(open, critical)``.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from connectors.base import CreatedTicket, NewIncident
from core.monitoring.queries import AlertRow, IncidentRow
from core.store.models import AnalysisDecision
from desktop.background.alert_jobs import (
    AlertsLoad,
    TicketRequest,
    create_ticket,
    load_alerts,
    load_ticket_request,
    take_notifications,
)
from desktop.background.tasks import Task
from desktop.context import AppContext
from desktop.widgets.browse import focus_filter_box
from desktop.widgets.links import link_safe_browser
from desktop.widgets.notifications import Level
from desktop.widgets.table_layout import ColumnFitter, show_cut_text_as_tooltips
from desktop.widgets.table_models import (
    SORT_ROLE,
    AnyIndex,
    Column,
    RowTableModel,
    format_local_datetime,
)

log = logging.getLogger(__name__)

RowT = TypeVar("RowT")

_NUMBER_ALIGNMENT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter

# The badge colours of the app's one severity scale (core.monitoring.events.Severity), white text on each.
SEVERITY_COLOURS: dict[str, QColor] = {
    "critical": QColor("#b3261e"),  # the app's error red
    "high": QColor("#c4540a"),
    "warning": QColor("#9a6700"),
    "info": QColor("#4a6a8a"),
}
DECISION_WORDS: dict[AnalysisDecision, str] = {
    AnalysisDecision.LINK_RUNBOOK: "Confident",
    AnalysisDecision.FLAG_REVIEW: "Needs review",
    AnalysisDecision.GENERATE_RUNBOOK: "No runbook",
}
EMPTY_NO_CONNECTOR = (
    "No monitoring connector yet. Add Datadog, SolarWinds or Zabbix on the Connectors page: their alerts "
    "arrive here, grouped into incidents, each with the runbook that fits it."
)
EMPTY_NO_INCIDENT = "No open incidents: every monitored alert is resolved."


def relative_time(then: datetime | None, now: datetime) -> str:
    """Coarse on purpose: on call, "3 min ago" against "2 h ago" is what matters, not the second."""
    if then is None:
        return ""
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def confidence_text(confidence: float | None) -> str:
    return "" if confidence is None else f"{confidence:.0%}"


def decision_text(decision: AnalysisDecision | None) -> str:
    return "Not analysed yet" if decision is None else DECISION_WORDS.get(decision, decision.value)


def incident_number(row: IncidentRow) -> str:
    """The incident's ticket number in the review queue (core.monitoring: ``MON-<id>``)."""
    return f"MON-{row.id}"


def _joined(values: tuple[str, ...] | list[str]) -> str:
    return ", ".join(values)


def _where(row: IncidentRow) -> str:
    return " · ".join(part for part in (_joined(row.hosts), _joined(row.services)) if part)


def short_title(row: IncidentRow) -> str:
    """The incident's title without its "[critical] " prefix, where the severity is shown beside it (the
    ticket keeps the prefix: in the review queue or a ticketing system it is the only place it shows)."""
    return row.title.removeprefix(f"[{row.severity}] ")


def _runbook(row: IncidentRow) -> str | None:
    return row.runbook_title


def _ticket(row: IncidentRow) -> str | None:
    return row.created_number


INCIDENT_COLUMNS: tuple[Column[IncidentRow], ...] = (
    Column("Severity", lambda row: str(row.severity)),
    Column("Title", short_title, tooltip=short_title),
    Column("Hosts / services", _where, tooltip=_where, shrinkable=True),
    Column("Alerts", lambda row: len(row.alerts), alignment=_NUMBER_ALIGNMENT),
    Column("Runbook", _runbook, tooltip=_runbook, shrinkable=True),
    Column("Confidence", lambda row: row.confidence, alignment=_NUMBER_ALIGNMENT),
    Column("Decision", lambda row: decision_text(row.decision)),
    Column("Opened", lambda row: row.opened_at),
    Column("Last alert", lambda row: row.last_alert_at),
    Column("Changed", lambda row: _joined(row.changes), tooltip=lambda row: _joined(row.changes)),
    Column("Ticket", _ticket, tooltip=lambda row: row.created_url),
)

ALERT_COLUMNS: tuple[Column[AlertRow], ...] = (
    Column("Severity", lambda alert: str(alert.severity)),
    Column("Title", lambda alert: alert.title, tooltip=lambda alert: alert.title),
    Column("Source", lambda alert: alert.source_system),
    Column("Host", lambda alert: alert.host, shrinkable=True),
    Column("Status", lambda alert: str(alert.status).capitalize()),
    Column("Occurrences", lambda alert: alert.occurrence_count, alignment=_NUMBER_ALIGNMENT),
    Column("First seen", lambda alert: alert.first_seen),
    Column("Last seen", lambda alert: alert.last_seen),
    Column(
        "Tags", lambda alert: _tags_text(alert.tags), tooltip=lambda a: _tags_text(a.tags), shrinkable=True
    ),
)


def _tags_text(tags: object) -> str:
    """Tags as the source has them: a list ("env:prod") or a mapping (Zabbix tag/value pairs)."""
    if isinstance(tags, dict):
        return ", ".join(f"{key}:{value}" if value else str(key) for key, value in tags.items())
    if isinstance(tags, list | tuple):
        return ", ".join(str(tag) for tag in tags)
    return "" if tags is None else str(tags)


class LiveRowModel(RowTableModel[RowT]):
    """Rows with times shown relative to the load ("5 min ago", the exact time as the tooltip), confidence
    as a percentage and the severity as a coloured badge; sorting stays on the raw values."""

    def __init__(self, columns: tuple[Column[RowT], ...], parent: QWidget | None = None) -> None:
        super().__init__(columns, parent)
        self.now = datetime.now(UTC)

    def set_rows_at(self, rows: tuple[RowT, ...], now: datetime) -> None:
        self.now = now
        self.set_rows(rows)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        column = self.columns[index.column()]
        if column.header == "Severity" and role in (
            Qt.ItemDataRole.BackgroundRole,
            Qt.ItemDataRole.ForegroundRole,
        ):
            colour = SEVERITY_COLOURS.get(str(column.getter(self.rows[index.row()])))
            if colour is None:
                return None
            return colour if role == Qt.ItemDataRole.BackgroundRole else QColor("white")
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            value = column.getter(self.rows[index.row()])
            if isinstance(value, datetime):
                if role == Qt.ItemDataRole.DisplayRole:
                    return relative_time(value, self.now)
                return format_local_datetime(value)
            if column.header == "Confidence" and role == Qt.ItemDataRole.DisplayRole:
                return confidence_text(value if isinstance(value, float) else None)
        if role == SORT_ROLE and column.header == "Severity":
            return ("info", "warning", "high", "critical").index(str(column.getter(self.rows[index.row()])))
        return super().data(index, role)


def _table(
    parent: QWidget, object_name: str, model: LiveRowModel[RowT]
) -> tuple[QTableView, QSortFilterProxyModel]:
    proxy = QSortFilterProxyModel(parent)
    proxy.setSourceModel(model)
    proxy.setSortRole(SORT_ROLE)
    proxy.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    table = QTableView(parent)
    table.setObjectName(object_name)
    table.setModel(proxy)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setTabKeyNavigation(False)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    table.verticalHeader().hide()
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    table.setSortingEnabled(True)
    show_cut_text_as_tooltips(table)
    return table, proxy


def _is_text_input(widget: QWidget | None) -> bool:
    """Where letters are typing: the page's letter keys stand aside for it."""
    while widget is not None:
        if isinstance(widget, QLineEdit | QAbstractSpinBox | QTextEdit | QPlainTextEdit):
            return True
        if isinstance(widget, QComboBox) and widget.isEditable():
            return True
        widget = widget.parentWidget()
    return False


def ticket_preview(request: NewIncident) -> str:
    """The request as the ticketing connector receives it (:func:`connectors.writes.new_incident`)."""
    lines = [
        f"Title: {request.title}",
        f"Severity: {request.severity}",
        f"Configuration item: {request.configuration_item or '(none)'}",
    ]
    if request.runbook_title:
        lines.append(f"Runbook: {request.runbook_title}")
    if request.runbook_url:
        lines.append(f"Runbook link: {request.runbook_url}")
    lines.append(f"Correlation id: {request.correlation_id}")
    return "\n".join([*lines, "", "Description:", request.description])


class CreateTicketDialog(QDialog):
    """Choose the ticketing connector and read exactly what will be sent before anything is."""

    def __init__(self, row: IncidentRow, request: TicketRequest, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("createTicketDialog")
        self.setWindowTitle(f"Create a ticket for {incident_number(row)}")
        self.row = row
        self.target_combo = QComboBox(self)
        self.target_combo.setObjectName("ticketTarget")
        for target in request.targets:
            self.target_combo.addItem(
                f"{target.name} ({target.display_name}: {target.access_text()})", target.config_id
            )
        self.preview = QPlainTextEdit(ticket_preview(request.incident), self)
        self.preview.setObjectName("ticketPreview")
        self.preview.setReadOnly(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        create = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        create.setText("Create ticket")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Create in:", self.target_combo)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("This is sent; nothing else:", self))
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.buttons)
        self.resize(640, 420)

    def config_id(self) -> int:
        return int(self.target_combo.currentData())


class AlertsPage(QWidget):
    """Incidents | the selected incident's alerts and text; see the module docstring for keys and signals."""

    open_in_review = Signal(int, str)  # ticket id, its number (MON-<id>)
    notify = Signal(object, str, str)  # Level, text, details
    loaded = Signal()
    counts_changed = Signal(int, int)  # open incidents, of which critical

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self._runner = context.runner
        self._load_task: Task | None = None
        self._side_tasks: list[Task] = []
        self.load: AlertsLoad | None = None
        self.active_dialog: QDialog | None = None
        self._creating: set[int] = set()  # incident ids whose ticket is being created

        self.filter_edit = QLineEdit(self)
        self.filter_edit.setObjectName("alertsFilter")
        self.filter_edit.setPlaceholderText("Filter by title, host or service")
        self.filter_edit.setClearButtonEnabled(True)
        self.source_combo = QComboBox(self)
        self.source_combo.setObjectName("alertsSourceFilter")
        self.source_combo.addItem("All sources", None)
        self.show_resolved = QCheckBox("Show &resolved", self)
        self.show_resolved.setObjectName("alertsShowResolved")
        self.review_button = QPushButton("Open in Review", self)
        self.review_button.setObjectName("alertsOpenInReview")
        self.review_button.setToolTip("Approve or change the suggested runbook in the review queue (Enter)")
        self.create_button = QPushButton("Create ticket in…", self)
        self.create_button.setObjectName("alertsCreateTicket")
        self.create_button.setToolTip("Create this incident in a ticketing system, with its alerts (C)")
        bar = QHBoxLayout()
        bar.addWidget(self.filter_edit, 2)
        bar.addWidget(self.source_combo)
        bar.addWidget(self.show_resolved)
        bar.addStretch(1)
        bar.addWidget(self.review_button)
        bar.addWidget(self.create_button)

        self.empty_label = QLabel(self)
        self.empty_label.setObjectName("alertsEmpty")
        self.empty_label.setWordWrap(True)
        self.empty_label.hide()
        self.error_label = QLabel(self)
        self.error_label.setObjectName("alertsError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: palette(bright-text); background: #b3261e; padding: 4px;")
        self.error_label.hide()

        self.incident_model: LiveRowModel[IncidentRow] = LiveRowModel(INCIDENT_COLUMNS, self)
        self.incident_table, self.incident_proxy = _table(self, "incidentTable", self.incident_model)
        self.incident_proxy.setFilterKeyColumn(-1)
        self.incident_fitter = ColumnFitter(
            self.incident_table,
            self.incident_model.column_index("Title"),
            shrinkable=[n for n, column in enumerate(INCIDENT_COLUMNS) if column.shrinkable],
        )
        # Worst first as the store orders them; a stable sort keeps the store's order within a severity.
        self.incident_table.sortByColumn(
            self.incident_model.column_index("Severity"), Qt.SortOrder.DescendingOrder
        )
        self.alert_model: LiveRowModel[AlertRow] = LiveRowModel(ALERT_COLUMNS, self)
        self.alert_table, self.alert_proxy = _table(self, "alertTable", self.alert_model)
        self.incident_view = link_safe_browser(self, "incidentDetail")
        self.alert_view = link_safe_browser(self, "alertDetail")

        self.detail_splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.detail_splitter.setObjectName("alertsDetailSplitter")
        self.detail_splitter.setChildrenCollapsible(False)
        for widget in (self.incident_view, self.alert_table, self.alert_view):
            self.detail_splitter.addWidget(widget)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("alertsSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.incident_table)
        self.splitter.addWidget(self.detail_splitter)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.summary_label = QLabel(self)
        self.summary_label.setObjectName("alertsSummary")

        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.error_label)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.summary_label)

        self.filter_edit.textChanged.connect(self._apply_filters)
        self.source_combo.currentIndexChanged.connect(self._apply_filters)
        self.show_resolved.toggled.connect(lambda _checked: self.reload())
        self.review_button.clicked.connect(self.open_selected_in_review)
        self.create_button.clicked.connect(self.create_ticket_for_selected)
        self.incident_table.selectionModel().currentRowChanged.connect(self._on_incident_changed)
        self.alert_table.selectionModel().currentRowChanged.connect(self._on_alert_changed)
        self.incident_table.doubleClicked.connect(lambda _index: self.open_selected_in_review())
        self._build_shortcuts()
        self._show_incident(None)

    def _build_shortcuts(self) -> None:
        bindings: list[tuple[str, Callable[[], None]]] = [
            ("J", lambda: self._step(1)),
            ("K", lambda: self._step(-1)),
            ("Return", self.open_selected_in_review),
            ("Enter", self.open_selected_in_review),
            ("C", self.create_ticket_for_selected),
            ("S", self.show_resolved.toggle),
        ]
        self.shortcuts: dict[str, QShortcut] = {}
        for key, slot in bindings:
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(self._unless_typing(slot))
            self.shortcuts[key] = shortcut

    @staticmethod
    def _unless_typing(slot: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            if not _is_text_input(QApplication.focusWidget()):
                slot()

        return run

    # --- loading ------------------------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        """Keyboard first: arriving on the page puts the keys on the incident list."""
        super().showEvent(event)
        focus = QApplication.focusWidget()
        if focus is None or not self.isAncestorOf(focus):
            self.incident_table.setFocus(Qt.FocusReason.OtherFocusReason)

    def focus_filter(self) -> None:
        focus_filter_box(self.filter_edit)

    def reload(self) -> Task:
        """Load the incidents afresh; a newer load cancels an older one."""
        if self._load_task is not None and self._load_task.is_active:
            self._load_task.cancel()
        self._load_task = self._runner.run(
            load_alerts,
            self.context.sessions,
            self.show_resolved.isChecked(),
            title="Loading the monitoring incidents",
            on_done=self._loaded,
            on_error=self._load_error,
        )
        return self._load_task

    def is_loading(self) -> bool:
        return self._load_task is not None and self._load_task.is_active

    def stop(self) -> None:
        for task in (self._load_task, *self._side_tasks):
            if task is not None and task.is_active:
                task.cancel()
        if self.active_dialog is not None:
            self.active_dialog.reject()

    def _loaded(self, load: AlertsLoad) -> None:
        previous = self.current_incident()
        self.load = load
        self.error_label.hide()
        self.incident_model.set_rows_at(load.incidents, load.loaded_at)
        sources = sorted({alert.source_system for row in load.incidents for alert in row.alerts})
        chosen = self.source_combo.currentData()
        self.source_combo.blockSignals(True)
        self.source_combo.clear()
        self.source_combo.addItem("All sources", None)
        for source in sources:
            self.source_combo.addItem(source.capitalize(), source)
        self.source_combo.setCurrentIndex(max(0, self.source_combo.findData(chosen)))
        self.source_combo.blockSignals(False)
        self._apply_filters()
        if previous is None or not self.select_incident(previous.id):
            self._select_first()
        open_rows = [row for row in load.incidents if str(row.status) == "open"]
        critical = sum(1 for row in open_rows if str(row.severity) == "critical")
        self.counts_changed.emit(len(open_rows), critical)
        self.loaded.emit()

    def _load_error(self, exc: Exception, traceback_text: str) -> None:
        log.error("loading the monitoring incidents failed:\n%s", traceback_text)
        self.error_label.setText(f"Could not load the incidents: {exc}")
        self.error_label.setToolTip(traceback_text)
        self.error_label.show()

    def _apply_filters(self) -> None:
        """Text and source narrow the loaded rows (a few hundred at most) without a reload."""
        needle = self.filter_edit.text().strip().casefold()
        source = self.source_combo.currentData()
        for number, row in enumerate(self.incident_model.rows):
            text = " ".join([row.title, *row.hosts, *row.services, *(a.title for a in row.alerts)]).casefold()
            shown = (not needle or needle in text) and (
                source is None or any(alert.source_system == source for alert in row.alerts)
            )
            proxy_row = self.incident_proxy.mapFromSource(self.incident_model.index(number, 0)).row()
            self.incident_table.setRowHidden(proxy_row, not shown)
        self._show_summary()
        current = self.current_incident()
        if current is not None and not self._is_shown(current.id):
            self._select_first()

    def _is_shown(self, incident_id: int) -> bool:
        proxy_row = self._proxy_row_of(incident_id)
        return proxy_row is not None and not self.incident_table.isRowHidden(proxy_row)

    def _show_summary(self) -> None:
        load = self.load
        if load is None:
            return
        shown = self.shown_incidents()
        open_count = sum(1 for row in load.incidents if str(row.status) == "open")
        ratio = load.compression
        parts = [f"{open_count:,} open incident{'s' if open_count != 1 else ''}"]
        if len(shown) != len(load.incidents):
            parts.append(f"{len(shown):,} shown")
        if ratio.events:
            parts.append(  # deduplication, then correlation: what an AIOps product reports
                f"{ratio.events:,} events → {ratio.alerts:,} alerts ({ratio.ratio:.1f} events per alert) → "
                f"{ratio.incidents:,} incidents"
            )
        if load.since is not None:
            parts.append(f"changes since the last sync {relative_time(load.since, load.loaded_at)}")
        self.summary_label.setText(" · ".join(parts))
        if load.monitoring_connectors == 0 and not load.incidents:
            self.empty_label.setText(EMPTY_NO_CONNECTOR)
        elif not load.incidents:
            self.empty_label.setText(EMPTY_NO_INCIDENT)
        self.empty_label.setVisible(not load.incidents)

    # --- selection ------------------------------------------------------------------------------------------

    def shown_incidents(self) -> list[IncidentRow]:
        """The rows the filters let through, in view order."""
        rows = []
        for proxy_row in range(self.incident_proxy.rowCount()):
            if not self.incident_table.isRowHidden(proxy_row):
                rows.append(self._incident_at(proxy_row))
        return rows

    def _incident_at(self, proxy_row: int) -> IncidentRow:
        source = self.incident_proxy.mapToSource(self.incident_proxy.index(proxy_row, 0))
        return self.incident_model.row_at(source)

    def _proxy_row_of(self, incident_id: int) -> int | None:
        for number, row in enumerate(self.incident_model.rows):
            if row.id == incident_id:
                return self.incident_proxy.mapFromSource(self.incident_model.index(number, 0)).row()
        return None

    def current_incident(self) -> IncidentRow | None:
        current = self.incident_table.currentIndex()
        if not current.isValid():
            return None
        return self._incident_at(current.row())

    def select_incident(self, incident_id: int) -> bool:
        proxy_row = self._proxy_row_of(incident_id)
        if proxy_row is None or self.incident_table.isRowHidden(proxy_row):
            return False
        self.incident_table.selectRow(proxy_row)
        self._show_incident(self.current_incident())  # also when it was current already: its row changed
        return True

    def _select_first(self) -> None:
        for proxy_row in range(self.incident_proxy.rowCount()):
            if not self.incident_table.isRowHidden(proxy_row):
                self.incident_table.selectRow(proxy_row)
                self._show_incident(self.current_incident())
                return
        self.incident_table.setCurrentIndex(QModelIndex())
        self._show_incident(None)

    def _step(self, step: int) -> None:
        visible = [r for r in range(self.incident_proxy.rowCount()) if not self.incident_table.isRowHidden(r)]
        if not visible:
            return
        current = self.incident_table.currentIndex().row()
        position = visible.index(current) + step if current in visible else 0
        self.incident_table.selectRow(visible[max(0, min(len(visible) - 1, position))])

    def _on_incident_changed(self, _current: QModelIndex, _previous: QModelIndex) -> None:
        self._show_incident(self.current_incident())

    def _show_incident(self, row: IncidentRow | None) -> None:
        now = self.load.loaded_at if self.load is not None else datetime.now(UTC)
        self.alert_model.set_rows_at(row.alerts if row is not None else (), now)
        if row is None:
            self.incident_view.setHtml("<p><i>Select an incident to see its alerts and runbook.</i></p>")
            self.alert_view.clear()
        else:
            self.incident_view.setHtml(incident_html(row, now))
            if self.alert_proxy.rowCount():
                self.alert_table.selectRow(0)
            else:
                self.alert_view.clear()
        self._update_buttons()

    def _on_alert_changed(self, _current: QModelIndex, _previous: QModelIndex) -> None:
        alert = self.current_alert()
        if alert is None:
            self.alert_view.clear()
        else:
            self.alert_view.setHtml(alert_html(alert))

    def current_alert(self) -> AlertRow | None:
        current = self.alert_table.currentIndex()
        if not current.isValid():
            return None
        return self.alert_model.row_at(self.alert_proxy.mapToSource(current))

    def _update_buttons(self) -> None:
        row = self.current_incident()
        self.review_button.setEnabled(row is not None and row.ticket_id is not None)
        if row is not None and row.created_number:
            self.create_button.setText(f"Created: {row.created_number}")
            self.create_button.setEnabled(False)
            self.create_button.setToolTip(row.created_url or f"Created as {row.created_number}")
        else:
            creating = row is not None and row.id in self._creating
            self.create_button.setText("Creating…" if creating else "Create ticket in…")
            self.create_button.setEnabled(row is not None and not creating)
            self.create_button.setToolTip("Create this incident in a ticketing system, with its alerts (C)")

    # --- actions --------------------------------------------------------------------------------------------

    def open_selected_in_review(self) -> None:
        row = self.current_incident()
        if row is not None and row.ticket_id is not None:
            self.open_in_review.emit(row.ticket_id, incident_number(row))

    def create_ticket_for_selected(self) -> None:
        row = self.current_incident()
        if row is None or not self.create_button.isEnabled() or self.active_dialog is not None:
            return
        self._track(
            self._runner.run(
                load_ticket_request,
                self.context.sessions,
                row.id,
                title="Loading the ticketing connectors",
                on_done=lambda request: self._choose_target(row, request),
                on_error=self._error_handler("list the ticketing connectors"),
            )
        )

    def _choose_target(self, row: IncidentRow, request: TicketRequest) -> None:
        if not request.targets:
            self.notify.emit(
                Level.INFO,
                "No ticketing connector can create incidents. Add ServiceNow, Jira, ServiceDesk Plus or "
                "Remedy on the Connectors page with an account that may create tickets.",
                "",
            )
            return
        dialog = CreateTicketDialog(row, request, self)
        dialog.accepted.connect(lambda: self._create(row, dialog.config_id()))
        dialog.finished.connect(self._dialog_closed)
        self.active_dialog = dialog
        dialog.open()  # window-modal, never a nested event loop

    def _dialog_closed(self) -> None:
        if self.active_dialog is not None:
            self.active_dialog.deleteLater()
        self.active_dialog = None

    def _create(self, row: IncidentRow, config_id: int) -> None:
        self._creating.add(row.id)
        self._update_buttons()
        self._track(
            self._runner.run(
                create_ticket,
                self.context.sessions,
                row.id,
                config_id,
                self.context.transport_factory,
                self.context.reviewer(),
                title=f"Creating a ticket for {incident_number(row)}",
                progress=True,
                on_done=lambda created: self._created(row, created),
                on_error=self._create_failed(row),
            )
        )

    def _created(self, row: IncidentRow, created: CreatedTicket) -> None:
        self._creating.discard(row.id)
        verb = "was already" if created.existed else "is now"
        message = f"{incident_number(row)} “{short_title(row)}” {verb} {created.number}."
        self.notify.emit(Level.INFO, message, "")
        self.reload()

    def _create_failed(self, row: IncidentRow) -> Callable[[Exception, str], None]:
        def failed(exc: Exception, traceback_text: str) -> None:
            self._creating.discard(row.id)
            self._update_buttons()
            log.info("creating the ticket of incident %s failed: %s\n%s", row.id, exc, traceback_text)

        return failed  # the window's task_failed handler shows the error

    def announce(self) -> Task:
        """Notify each critical incident with a confident runbook that was not announced yet, once."""
        return self._track(
            self._runner.run(
                take_notifications,
                self.context.sessions,
                title="Looking for critical incidents to announce",
                on_done=self._announce,
                on_error=self._error_handler("look for critical incidents"),
            )
        )

    def _announce(self, rows: tuple[IncidentRow, ...]) -> None:
        for row in rows:
            self.notify.emit(Level.ALERT, announcement(row), "")

    def _track(self, task: Task) -> Task:
        self._side_tasks = [t for t in self._side_tasks if t.is_active] + [task]
        return task

    def _error_handler(self, what: str) -> Callable[[Exception, str], None]:
        def show(exc: Exception, traceback_text: str) -> None:
            log.info("could not %s: %s\n%s", what, exc, traceback_text)  # the window notifies the failure

        return show


def announcement(row: IncidentRow) -> str:
    """The notification of a critical incident with a confident runbook: what fires and what fixes it."""
    confidence = f" ({row.confidence:.0%})" if row.confidence is not None else ""
    return (
        f"Critical incident {incident_number(row)}: {short_title(row)}. "
        f"Suggested runbook: “{row.runbook_title}”{confidence}. See the Alerts page."
    )


def incident_html(row: IncidentRow, now: datetime) -> str:
    """The incident's facts and its suggested runbook, every value escaped."""

    def fact(label: str, value: str) -> str:
        return f"<tr><th align='left'>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"

    runbook = row.runbook_title or "none yet"
    if row.runbook_title and row.confidence is not None:
        runbook += f" ({row.confidence:.0%})"
    facts = [
        fact("Number", incident_number(row)),
        fact("Severity", str(row.severity)),
        fact("Status", str(row.status).capitalize()),
        fact("Hosts", _joined(row.hosts)),
        fact("Services", _joined(row.services)),
        fact("Suggested runbook", runbook),
        fact("Decision", decision_text(row.decision)),
        fact("Opened", f"{relative_time(row.opened_at, now)} ({format_local_datetime(row.opened_at)})"),
        fact(
            "Last alert",
            f"{relative_time(row.last_alert_at, now)} ({format_local_datetime(row.last_alert_at)})",
        ),
    ]
    if row.changes:
        facts.append(fact("Since the last sync", _joined(row.changes)))
    if row.created_number:
        created = html.escape(row.created_number)
        if row.created_url:
            created = f"<a href='{html.escape(row.created_url, quote=True)}'>{created}</a>"
        facts.append(f"<tr><th align='left'>Ticket</th><td>{created}</td></tr>")
    return f"<h3>{html.escape(row.title)}</h3><table cellspacing='4'>{''.join(facts)}</table>"


PRE_WRAP = "white-space: pre-wrap"  # verbatim, but a long line wraps instead of hiding behind a scroll bar


def alert_html(alert: AlertRow) -> str:
    """One alert as the monitoring system sent it: the message and rule expression verbatim."""
    parts = [f"<h4>{html.escape(alert.title)}</h4>"]
    if alert.source_url:
        link = html.escape(alert.source_url, quote=True)
        parts.append(f"<p><a href='{link}'>Open in {html.escape(alert.source_system)}</a></p>")
    parts.append(f"<pre style='{PRE_WRAP}'>{html.escape(alert.message or '')}</pre>")
    if alert.expression:
        parts.append(
            f"<p><b>Rule expression</b></p><pre style='{PRE_WRAP}'>{html.escape(alert.expression)}</pre>"
        )
    tags = _tags_text(alert.tags)
    if tags:
        parts.append(f"<p><b>Tags</b>: {html.escape(tags)}</p>")
    return "".join(parts)
