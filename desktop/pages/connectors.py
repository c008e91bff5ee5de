"""The Connectors page: configured connectors, their schedule and health, and each one's sync history.

The table is a :class:`~desktop.widgets.table_models.RowTableModel` over frozen :class:`ConnectorStatusRow`
values built from the store on a worker (:func:`desktop.background.connector_jobs.load_overview`) plus what
only the GUI knows (which syncs run now, their latest progress). Actions: Add (the wizard), Sync now,
Pause/Resume, Edit (the wizard pre-filled), Rotate secret (:mod:`desktop.dialogs.rotate_secret`: the new value
is tested before it replaces the stored one), Delete (keep or purge the tickets it brought; its keychain
entries go). The Secrets column shows each stored secret's age and, past the tenant's rotation period, that a
rotation is due (issue 17). The history pane lists the selected connector's runs with counts, duration and
the full error text.

Scheduling: the window owns the :class:`~desktop.background.sync_jobs.SyncDispatcher` (it starts it after
start-up and stops it on close); the page is handed it to show which syncs run and to start "Sync now". A
sync that brought new or changed tickets asks for an analysis (``analysis_requested``) so they reach the
review queue. A connector failing :data:`~connectors.sync.ALERT_AFTER_FAILURES` times in a row shows an alert
on the page and in the status bar (:meth:`ConnectorsPage.attach_alerts`); the window's navigation rail
counts failing connectors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStatusBar,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from connectors.configs import ConfigRow, RemoveResult
from connectors.rotation import RotationResult
from connectors.runs import ConnectorOverviewRow, SyncRunRow
from connectors.scheduler import next_run_at
from connectors.secrets import redact_text
from connectors.sync import ALERT_AFTER_FAILURES, SyncReport
from core.store.models import TeamRole
from desktop.background.connector_jobs import (
    delete_connector,
    load_history,
    load_overview,
    set_connector_active,
)
from desktop.background.sync_jobs import SyncDispatcher
from desktop.background.tasks import Task
from desktop.context import AppContext
from desktop.dialogs.connector_wizard import ConnectorWizard
from desktop.dialogs.rotate_secret import RotateSecretDialog
from desktop.permissions import RoleLock
from desktop.widgets.browse import focus_filter_box, row_filter_edit
from desktop.widgets.notifications import Level
from desktop.widgets.table_layout import show_cut_text_as_tooltips
from desktop.widgets.table_models import Column, RowTableModel

STATUS_SYNCING = "syncing"
STATUS_FAILING = "failing"
STATUS_PAUSED = "paused"
STATUS_ACTIVE = "active"

_NUMBER = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_FAILING_COLOUR = QColor("#b3261e")


@dataclass(frozen=True, slots=True)
class ConnectorStatusRow:
    """One table row: the stored overview plus what only the GUI knows (a sync running now)."""

    overview: ConnectorOverviewRow
    syncing: bool = False
    progress: str = ""

    @property
    def id(self) -> int:
        return self.overview.config.id

    @property
    def config(self) -> ConfigRow:
        return self.overview.config

    @property
    def failing(self) -> bool:
        return self.config.consecutive_failures >= ALERT_AFTER_FAILURES

    @property
    def status(self) -> str:
        if self.syncing:
            return STATUS_SYNCING
        if self.failing:
            return STATUS_FAILING
        return STATUS_ACTIVE if self.config.is_active else STATUS_PAUSED

    def status_text(self) -> str:
        if self.syncing:
            return f"syncing: {self.progress}" if self.progress else "syncing…"
        return self.status

    @property
    def rotation_due(self) -> bool:
        return any(age.due for age in self.overview.secrets)

    def secrets_text(self) -> str:
        """``password · 97 days old, rotate due``; one entry per stored secret."""
        return "; ".join(age.label() for age in self.overview.secrets)

    def next_run(self) -> datetime | str | None:
        if not self.config.is_active:
            return "paused"
        if self.syncing:
            return "now"
        return next_run_at(self.config) or "due now"


def _secrets_tooltip(row: ConnectorStatusRow) -> str | None:
    lines = []
    for age in row.overview.secrets:
        used = age.last_used_at.strftime("%Y-%m-%d %H:%M UTC") if age.last_used_at else "not yet"
        changed = "rotated" if age.rotated_at is not None and age.rotated_at >= age.stored_at else "stored"
        lines.append(
            f"{age.field}: {changed} {age.changed_at:%Y-%m-%d}, last used {used}; "
            f"rotation every {age.rotation_days} days (Settings)"
        )
    return "\n".join(lines) or None


def _status_tooltip(row: ConnectorStatusRow) -> str | None:
    if row.failing and row.overview.last_error:
        return f"{row.config.consecutive_failures} failures in a row. Last error: {row.overview.last_error}"
    return row.overview.last_error


CONNECTOR_COLUMNS: tuple[Column[ConnectorStatusRow], ...] = (
    Column("System", lambda row: row.overview.system),
    Column("Name", lambda row: row.config.name, tooltip=lambda row: row.config.base_url),
    Column("Status", lambda row: row.status_text(), tooltip=_status_tooltip),
    Column("Last sync", lambda row: row.config.last_sync_at),
    Column("Last successful sync", lambda row: row.config.last_successful_sync_at),
    Column("Failures in a row", lambda row: row.config.consecutive_failures, alignment=_NUMBER),
    Column("Next run", lambda row: row.next_run()),
    Column("Items synced", lambda row: row.overview.items_synced, alignment=_NUMBER),
    Column("Secrets", lambda row: row.secrets_text(), tooltip=_secrets_tooltip, shrinkable=True),
)


def _duration(run: SyncRunRow) -> str | None:
    seconds = run.duration_s
    if seconds is None:
        return None
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


HISTORY_COLUMNS: tuple[Column[SyncRunRow], ...] = (
    Column("Started", lambda run: run.started_at),
    Column("Status", lambda run: run.status),
    Column("New", lambda run: run.items_new, alignment=_NUMBER),
    Column("Updated", lambda run: run.items_updated, alignment=_NUMBER),
    Column("Unchanged", lambda run: run.items_unchanged, alignment=_NUMBER),
    Column("Failed", lambda run: run.items_failed, alignment=_NUMBER),
    Column("Duration", _duration, alignment=_NUMBER),
    Column(
        "Error",
        lambda run: " ".join((run.error_text or "").split())[:200],
        tooltip=lambda run: run.error_text,
    ),
)


class ConnectorTableModel(RowTableModel[ConnectorStatusRow]):
    """Connector rows; :meth:`replace_row` updates one row in place (progress) without a reset."""

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if role == Qt.ItemDataRole.ForegroundRole and index.isValid() and 0 <= index.row() < len(self.rows):
            row = self.rows[index.row()]
            if row.failing and index.column() == self.column_index("Status"):
                return QBrush(_FAILING_COLOUR)
            if row.rotation_due and index.column() == self.column_index("Secrets"):
                return QBrush(_FAILING_COLOUR)
            return None
        return super().data(index, role)

    def replace_row(self, row: ConnectorStatusRow) -> bool:
        for number, existing in enumerate(self.rows):
            if existing.id == row.id:
                self._rows = (*self.rows[:number], row, *self.rows[number + 1 :])
                self.dataChanged.emit(self.index(number, 0), self.index(number, self.columnCount() - 1))
                return True
        return False


class ConnectorsPage(QWidget):
    """See the module docstring; ``scheduler`` is the window's (a test hands the page its own)."""

    notify = Signal(object, str, str)  # Level, text, details: the window's notification area shows them
    analysis_requested = Signal()  # a sync brought new or changed tickets
    loaded = Signal()
    history_loaded = Signal()

    def __init__(
        self,
        context: AppContext,
        scheduler: SyncDispatcher,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.context = context
        self.scheduler = scheduler
        self.scheduler.sync_started.connect(lambda config_id: self._mark_syncing(config_id, True, ""))
        self.scheduler.sync_progress.connect(
            lambda config_id, text: self._mark_syncing(config_id, True, text)
        )
        self.scheduler.sync_finished.connect(self._on_sync_finished)
        self.scheduler.sync_ended.connect(self._on_sync_ended)
        self.wizard: ConnectorWizard | None = None
        self.delete_box: QMessageBox | None = None
        self.rotate_dialog: RotateSecretDialog | None = None
        self.failing_names: tuple[str, ...] = ()
        self._load_task: Task | None = None
        self._history_task: Task | None = None
        self.loaded_once = False
        self._stopped = False
        self._select_after_load: int | None = None
        self.status_alert: QLabel | None = None

        self.toolbar = QToolBar(self)
        self.add_action = self.toolbar.addAction("Add…", self.open_add_wizard)
        self.sync_action = self.toolbar.addAction("Sync now", self.sync_selected)
        self.pause_action = self.toolbar.addAction("Pause", self.toggle_pause_selected)
        self.edit_action = self.toolbar.addAction("Edit…", self.open_edit_wizard)
        self.rotate_action = self.toolbar.addAction("Rotate secret…", self.open_rotate_dialog)
        # Team mode: secrets are an admin's (the database refuses anyone else's rotation); shown, disabled.
        self.secrets_lock = RoleLock(context.permissions, TeamRole.ADMIN, self)
        self.secrets_lock.lock(self.rotate_action)
        self.delete_action = self.toolbar.addAction("Delete…", self.delete_selected)
        self.toolbar.addSeparator()
        self.toolbar.addAction("Refresh", self.reload)

        self.alert_label = QLabel(self)
        self.alert_label.setObjectName("connectorAlert")
        self.alert_label.setWordWrap(True)
        self.alert_label.setStyleSheet("color: white; background: #b3261e; padding: 6px;")
        self.alert_label.hide()
        self.empty_label = QLabel(
            "No connectors yet. Add one to pull tickets from ServiceNow, Jira, ServiceDesk Plus or Remedy.",
            self,
        )
        self.empty_label.setWordWrap(True)
        self.empty_label.hide()  # until the first load says there is nothing
        self.add_button = QPushButton("Add a connector…", self)
        self.add_button.clicked.connect(self.open_add_wizard)
        self.add_button.hide()

        self.model = ConnectorTableModel(CONNECTOR_COLUMNS, self)
        self.table = QTableView(self)
        self.table.setObjectName("connectorsTable")
        self._setup_table(self.table, self.model, stretch="Name")
        # Through the action: a role that may not edit (team mode) has it locked, double-click included.
        self.table.doubleClicked.connect(lambda _index: self.edit_action.trigger())
        self.filter_edit = row_filter_edit(
            self.table, "connectorsFilter", "Filter the connectors by name, system or status"
        )

        self.history_model: RowTableModel[SyncRunRow] = RowTableModel(HISTORY_COLUMNS, self)
        self.history_table = QTableView(self)
        self.history_table.setObjectName("syncHistoryTable")
        self._setup_table(self.history_table, self.history_model, stretch="Error")
        self.history_title = QLabel("Sync history", self)
        self.error_text = QPlainTextEdit(self)
        self.error_text.setObjectName("syncErrorText")
        self.error_text.setReadOnly(True)
        self.error_text.setPlaceholderText("Select a run to see its full error text.")
        self.error_text.setMaximumHeight(110)
        history = QWidget(self)
        history_layout = QVBoxLayout(history)
        history_layout.setContentsMargins(0, 0, 0, 0)
        history_layout.addWidget(self.history_title)
        history_layout.addWidget(self.history_table, 1)
        history_layout.addWidget(self.error_text)

        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.setObjectName("connectorsSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(history)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)

        layout = QVBoxLayout(self)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.alert_label)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.add_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.filter_edit)
        layout.addWidget(self.splitter, 1)

        self.table.selectionModel().currentRowChanged.connect(lambda *_a: self._selection_changed())
        self.history_table.selectionModel().currentRowChanged.connect(lambda *_a: self._show_run_error())
        self._selection_changed()

    @staticmethod
    def _setup_table(table: QTableView, model: RowTableModel, *, stretch: str) -> None:  # type: ignore[type-arg]
        table.setModel(model)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)
        table.verticalHeader().hide()
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(model.column_index(stretch), QHeaderView.ResizeMode.Stretch)
        show_cut_text_as_tooltips(table)  # a long error or URL cut off in its cell: the whole text on hover

    # --- life cycle --------------------------------------------------------------------------------------

    def focus_filter(self) -> None:
        focus_filter_box(self.filter_edit)

    def stop(self) -> None:
        """The window is closing: no more loads or syncs from here (the window stops its scheduler)."""
        self._stopped = True
        for task in (self._load_task, self._history_task):
            if task is not None and task.is_active:
                task.cancel()
        if self.wizard is not None:
            self.wizard.reject()
        if self.rotate_dialog is not None:
            self.rotate_dialog.cancel()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self.loaded_once:
            self.reload()

    def attach_alerts(self, status_bar: QStatusBar) -> None:
        """Show the failing-connector alert in this status bar too (the window's navigation rail counts
        failing connectors itself: :mod:`core.analytics.attention`)."""
        self.status_alert = QLabel(status_bar)
        self.status_alert.setObjectName("connectorStatusAlert")
        self.status_alert.setStyleSheet("color: white; background: #b3261e; padding: 0 6px;")
        self.status_alert.hide()
        status_bar.addPermanentWidget(self.status_alert)
        self._show_alert()

    # --- loading -----------------------------------------------------------------------------------------

    def reload(self) -> Task | None:
        if self._stopped:
            return None
        if self._load_task is not None and self._load_task.is_active:
            self._load_task.cancel()
        self._load_task = self.context.runner.run(
            load_overview, self.context.sessions, title="Loading connectors", on_done=self._loaded
        )
        return self._load_task

    def is_loading(self) -> bool:
        return self._load_task is not None and self._load_task.is_active

    def _loaded(self, overview_rows: tuple[ConnectorOverviewRow, ...]) -> None:
        self._load_task = None
        previous = self.current_row()
        running = self.scheduler.running
        progress = {row.id: row.progress for row in self.model.rows}
        self.model.set_rows(
            ConnectorStatusRow(overview, overview.id in running, progress.get(overview.id, ""))
            for overview in overview_rows
        )
        self.loaded_once = True
        has_rows = bool(self.model.rows)
        self.empty_label.setVisible(not has_rows)
        self.add_button.setVisible(not has_rows)
        wanted = self._select_after_load or (previous.id if previous is not None else None)
        self._select_after_load = None
        selected = wanted is not None and self.select_config(wanted)
        if not selected and has_rows:
            self.table.selectRow(0)
        self._selection_changed()
        self._update_alert()
        self.loaded.emit()

    def select_config(self, config_id: int) -> bool:
        number = self.model.position_of(lambda row: row.id == config_id)
        if number is not None:
            self.table.selectRow(number)
        return number is not None

    def current_row(self) -> ConnectorStatusRow | None:
        return self.model.row_or_none(self.table.currentIndex())

    def _selection_changed(self) -> None:
        row = self.current_row()
        for action in (self.sync_action, self.pause_action, self.edit_action, self.delete_action):
            action.setEnabled(row is not None)
        self.pause_action.setText("Resume" if row is not None and not row.config.is_active else "Pause")
        self.rotate_action.setEnabled(row is not None and bool(row.config.secret_fields))
        self._load_history(row)

    def _load_history(self, row: ConnectorStatusRow | None) -> None:
        if self._history_task is not None and self._history_task.is_active:
            self._history_task.cancel()
        self._history_task = None
        if row is None:
            self.history_title.setText("Sync history")
            self.history_model.set_rows(())
            self.error_text.clear()
            return
        self.history_title.setText(f"Sync history of {row.config.name}")
        if self._stopped:
            return
        self._history_task = self.context.runner.run(
            load_history,
            self.context.sessions,
            row.id,
            title=f"Loading the sync history of {row.config.name}",
            on_done=self._history_loaded,
        )

    def _history_loaded(self, runs: tuple[SyncRunRow, ...]) -> None:
        self._history_task = None
        self.history_model.set_rows(runs)
        if self.history_model.rows:
            self.history_table.selectRow(0)
        self._show_run_error()
        self.history_loaded.emit()

    def _show_run_error(self) -> None:
        index = self.history_table.currentIndex()
        if not index.isValid() or index.row() >= len(self.history_model.rows):
            self.error_text.clear()
            return
        run = self.history_model.rows[index.row()]
        self.error_text.setPlainText(run.error_text or f"Run {run.id}: {run.status}, no error.")

    # --- alerts ------------------------------------------------------------------------------------------

    def _update_alert(self) -> None:
        names = tuple(row.config.name for row in self.model.rows if row.failing)
        if names != self.failing_names:
            self.failing_names = names
            self._show_alert()

    def alert_text(self) -> str:
        if not self.failing_names:
            return ""
        if len(self.failing_names) == 1:
            return (
                f"{self.failing_names[0]} has failed {ALERT_AFTER_FAILURES} or more syncs in a row; "
                "see its sync history for the error."
            )
        return f"{len(self.failing_names)} connectors are failing: {', '.join(self.failing_names)}."

    def _show_alert(self) -> None:
        text = self.alert_text()
        self.alert_label.setText(f"⚠ {text}" if text else "")
        self.alert_label.setVisible(bool(text))
        if self.status_alert is not None:
            count = len(self.failing_names)
            self.status_alert.setText(
                f"⚠ {count} connector{'s' if count != 1 else ''} failing" if count else ""
            )
            self.status_alert.setToolTip(text)
            self.status_alert.setVisible(bool(text))

    # --- actions -----------------------------------------------------------------------------------------

    def open_add_wizard(self) -> ConnectorWizard:
        return self._open_wizard(None)

    def open_edit_wizard(self) -> ConnectorWizard | None:
        row = self.current_row()
        if row is None:
            return None
        return self._open_wizard(row.config)

    def _open_wizard(self, existing: ConfigRow | None) -> ConnectorWizard:
        if self.wizard is not None:
            self.wizard.raise_()
            return self.wizard
        wizard = ConnectorWizard(self.context, existing=existing, parent=self)
        wizard.saved.connect(lambda row: self._on_saved(row, created=existing is None))
        wizard.finished.connect(lambda _result: self._wizard_closed(wizard))
        self.wizard = wizard
        wizard.open()  # window-modal, no nested event loop
        return wizard

    def _wizard_closed(self, wizard: ConnectorWizard) -> None:
        if self.wizard is wizard:
            self.wizard = None
        wizard.deleteLater()

    def _on_saved(self, row: ConfigRow, *, created: bool) -> None:
        if created:
            self.notify.emit(Level.INFO, f"Added {row.name}; its first sync runs now.", "")
            if not self._stopped:
                self.scheduler.sync_now(row.id, row.name)
        else:
            self.notify.emit(Level.INFO, f"Saved the changes to {row.name}.", "")
        self._select_after_load = row.id
        self.reload()

    def open_rotate_dialog(self) -> RotateSecretDialog | None:
        """Replace one of the selected connector's secrets after a connection test with the new value."""
        row = self.current_row()
        if row is None or not row.config.secret_fields or self._stopped:
            return None
        if self.rotate_dialog is not None and self.rotate_dialog.isVisible():
            self.rotate_dialog.raise_()
            return self.rotate_dialog
        dialog = RotateSecretDialog(self.context, row.config, row.overview.secrets, self)
        dialog.setObjectName("rotateSecretDialog")
        dialog.rotated.connect(self._on_rotated)
        self.rotate_dialog = dialog
        dialog.open()  # window-modal, no nested event loop
        return dialog

    def _on_rotated(self, result: RotationResult) -> None:
        self.notify.emit(Level.INFO, result.headline(), "")
        self.reload()

    def sync_selected(self) -> Task | None:
        row = self.current_row()
        if row is None or self._stopped:
            return None
        return self.scheduler.sync_now(row.id, row.config.name)

    def toggle_pause_selected(self) -> Task | None:
        row = self.current_row()
        if row is None or self._stopped:
            return None
        active = not row.config.is_active
        return self.context.runner.run(
            set_connector_active,
            self.context.sessions,
            row.id,
            active,
            self.context.reviewer(),
            title=f"{'Resuming' if active else 'Pausing'} {row.config.name}",
            on_done=self._activity_changed,
        )

    def _activity_changed(self, _row: ConfigRow) -> None:
        self.reload()

    def delete_selected(self) -> QMessageBox | None:
        """Ask whether to keep or purge the tickets it brought; the answer starts the removal."""
        row = self.current_row()
        if row is None:
            return None
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Delete connector",
            f"Delete {row.config.name}? Its credentials are removed from the keychain and its sync history "
            f"is deleted.\n\nWhat about the {row.overview.items_synced:,} tickets it brought?",
            QMessageBox.StandardButton.NoButton,
            self,
        )
        box.setObjectName("deleteConnectorBox")
        self.keep_button = box.addButton("Delete, keep the tickets", QMessageBox.ButtonRole.AcceptRole)
        self.purge_button = box.addButton("Delete with its tickets", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.buttonClicked.connect(lambda button: self._delete_answered(row, button))
        self.delete_box = box
        box.open()  # not exec(): no nested event loop
        return box

    def _delete_answered(self, row: ConnectorStatusRow, button: object) -> None:
        self.delete_box = None
        if button is self.keep_button:
            self.start_delete(row.id, row.config.name, purge_tickets=False)
        elif button is self.purge_button:
            self.start_delete(row.id, row.config.name, purge_tickets=True)

    def start_delete(self, config_id: int, name: str, *, purge_tickets: bool) -> Task | None:
        if self._stopped:
            return None
        running = self.scheduler.running
        if config_id in running:  # a sync writing the cursor of a row being deleted would fail anyway
            self.notify.emit(Level.ERROR, f"{name} is syncing; delete it when the sync has finished.", "")
            return None
        return self.context.runner.run(
            delete_connector,
            self.context.sessions,
            config_id,
            purge_tickets,
            self.context.reviewer(),
            title=f"Deleting {name}",
            on_done=self._deleted,
        )

    def _deleted(self, result: RemoveResult) -> None:
        what = (
            f"{result.tickets_purged:,} tickets deleted"
            if result.tickets_purged
            else f"{result.tickets_kept:,} tickets kept"
        )
        self.notify.emit(Level.INFO, f"Deleted {result.config.name}: {what}.", "")
        if result.keychain_problem:
            self.notify.emit(
                Level.ERROR,
                f"{result.config.name} is deleted, but its keychain entries could not be removed.",
                redact_text(result.keychain_problem),
            )
        self.reload()

    # --- syncs -------------------------------------------------------------------------------------------

    def _mark_syncing(self, config_id: int, syncing: bool, progress: str) -> None:
        for row in self.model.rows:
            if row.id == config_id:
                self.model.replace_row(dataclasses.replace(row, syncing=syncing, progress=progress))
                return

    def _on_sync_finished(self, report: SyncReport) -> None:
        headline = redact_text(report.headline())
        if report.ok:
            if report.new or report.updated:
                self.notify.emit(Level.INFO, headline, "")
                self.analysis_requested.emit()
        else:
            details = redact_text(report.error or "")
            self.notify.emit(Level.ERROR, headline, details)

    def _on_sync_ended(self, config_id: int) -> None:
        self._mark_syncing(config_id, False, "")
        self.reload()
