"""What to import: the scope in the system's own terms, optional field-mapping overrides, and a live preview
of the first records as the sync would store them (re-read a moment after the analyst stops typing)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
)

from connectors.base import CheckProblem, CheckResult, ConnectorSpec, diagnose
from connectors.errors import ConfigurationError
from connectors.secrets import redact_text
from core.knowledge.records import ArticleValues
from core.monitoring.events import AlertEvent
from core.store.tickets import TicketValues
from desktop.background.connector_jobs import ConnectorDraft
from desktop.dialogs.connector_wizard.feedback import busy_bar, describe_result
from desktop.dialogs.connector_wizard.form_pages import FormPage
from desktop.dialogs.connector_wizard.probes import (
    PREVIEW_LIMIT,
    GuiTask,
    PreviewResult,
    preview_draft,
    start_on_gui_loop,
)
from desktop.widgets.config_form import FieldForm
from desktop.widgets.table_models import Column, RowTableModel

if TYPE_CHECKING:  # the pages and the wizard refer to each other; only the wizard module imports the pages
    from desktop.dialogs.connector_wizard.wizard import ConnectorWizard

PREVIEW_DELAY_MS = 700


def _one_line(text: str | None, limit: int = 160) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


Record = TicketValues | AlertEvent | ArticleValues  # a monitoring connector previews alert events, ...


def _text(record: Record) -> str:
    if isinstance(record, TicketValues):
        return record.description
    return record.message if isinstance(record, AlertEvent) else record.body


def _severity(record: Record) -> str | None:
    if isinstance(record, TicketValues):
        return record.severity
    return record.severity.value if isinstance(record, AlertEvent) else record.state.value


PREVIEW_COLUMNS: tuple[Column[Record], ...] = (
    Column("Number", lambda record: record.external_id),
    Column("Title", lambda record: record.title, tooltip=lambda record: record.title),
    Column(
        "Description",
        lambda record: _one_line(_text(record)),
        tooltip=lambda record: (_text(record) or "")[:2000],
    ),
    Column("Severity", _severity),
    Column("Updated", lambda record: record.updated_at),
)


class ScopePage(FormPage):
    def __init__(self, wizard: ConnectorWizard) -> None:
        super().__init__(wizard)
        self.setTitle("What to import")
        self.setSubTitle(
            f"Limit the sync in the system's own terms. The preview shows the first {PREVIEW_LIMIT} records "
            "as they will be stored."
        )
        self.mapping_form: FieldForm | None = None
        self.mapping_box = QGroupBox("Field mapping (optional)", self)
        self._mapping_layout = QVBoxLayout(self.mapping_box)
        self.mapping_box.hide()
        self.page_layout.addWidget(self.mapping_box)
        self.preview_model: RowTableModel[Record] = RowTableModel(PREVIEW_COLUMNS, self)
        self.preview_table = QTableView(self)
        self.preview_table.setObjectName("previewTable")
        self.preview_table.setModel(self.preview_model)
        self.preview_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.preview_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.preview_table.setWordWrap(False)
        self.preview_table.verticalHeader().hide()
        header = self.preview_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(
            self.preview_model.column_index("Description"), QHeaderView.ResizeMode.Stretch
        )
        self.preview_status = QLabel(self)
        self.preview_status.setObjectName("previewStatus")
        self.preview_status.setWordWrap(True)
        self.preview_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.spinner = busy_bar(self)
        self.refresh_button = QPushButton("Refresh preview", self)
        self.refresh_button.setObjectName("refreshPreviewButton")
        self.refresh_button.clicked.connect(self.refresh_preview)
        status_row = QHBoxLayout()
        status_row.addWidget(self.preview_status, 1)
        status_row.addWidget(self.refresh_button)
        self.page_layout.addLayout(status_row)
        self.page_layout.addWidget(self.spinner)
        self.page_layout.addWidget(self.preview_table, 1)
        self.preview_ok = False
        self._task: GuiTask | None = None
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(PREVIEW_DELAY_MS)
        self._debounce.timeout.connect(self.refresh_preview)

    def build(self, spec: ConnectorSpec) -> None:
        form = self._replace_form([f for f in spec.fields if f.page == "scope"])
        form.changed.connect(self._edited)
        if self.mapping_form is not None:
            self._mapping_layout.removeWidget(self.mapping_form)
            self.mapping_form.deleteLater()
            self.mapping_form = None
        mapping_fields = [f for f in spec.fields if f.page == "mapping"]
        if mapping_fields:
            self.mapping_form = FieldForm(mapping_fields, self.mapping_box)
            self.mapping_form.changed.connect(self._edited)
            self._mapping_layout.addWidget(self.mapping_form)
        self.mapping_box.setVisible(bool(mapping_fields))

    def options(self, auth_mode: str) -> dict[str, Any]:
        values = super().options(auth_mode)
        if self.mapping_form is not None:
            values |= self.mapping_form.options(auth_mode)
        return values

    def initializePage(self) -> None:
        self.refresh_preview()

    def cleanupPage(self) -> None:
        self._debounce.stop()
        self._stop_task()
        self.spinner.hide()

    def is_running(self) -> bool:
        return self._task is not None and not self._task.done()

    def _edited(self) -> None:
        self.preview_ok = False
        self.completeChanged.emit()
        self._debounce.start()

    def _stop_task(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._task = None

    def refresh_preview(self) -> None:
        self._debounce.stop()
        self._stop_task()
        self.preview_ok = False
        self.completeChanged.emit()
        try:
            draft = self._wizard.draft()
        except ConfigurationError as exc:
            self._show_problem(diagnose(exc))
            return
        self.preview_status.setText("Reading the first records…")
        self.spinner.show()
        self._task = start_on_gui_loop(self._preview(draft), f"Previewing {draft.name}", self._preview_failed)

    async def _preview(self, draft: ConnectorDraft) -> None:
        result = await preview_draft(draft, self._wizard.context.transport_factory)
        self._task = None
        self._show_preview(result)

    def _show_preview(self, result: PreviewResult) -> None:
        self.spinner.hide()
        if result.problem is not None:
            self._show_problem(result.problem)
            return
        self.preview_model.set_rows(result.tickets)
        self.preview_table.resizeColumnToContents(self.preview_model.column_index("Number"))
        if result.tickets:
            self.preview_status.setText(
                f"The first {len(result.tickets)} records as they will be stored. Check that titles, "
                "descriptions and severities look right."
            )
        else:
            self.preview_status.setText(
                "No record matches this scope yet: the sync will import nothing until one does."
            )
        self.preview_ok = True
        self.completeChanged.emit()

    def _preview_failed(self, task: GuiTask, exc: BaseException) -> None:
        if task is not self._task:  # replaced by a newer preview meanwhile
            return
        self._task = None
        self._show_problem(CheckResult(CheckProblem.OTHER, f"the preview failed: {redact_text(str(exc))}"))

    def _show_problem(self, result: CheckResult) -> None:
        self.spinner.hide()
        self.preview_model.set_rows(())
        title, message, hint = describe_result(result)
        self.preview_status.setText(
            f"<b>{title}</b>: {message}" + (f"<br>What to do: {hint}" if hint else "")
        )
        self.preview_ok = False
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.preview_ok and not self.is_running()
