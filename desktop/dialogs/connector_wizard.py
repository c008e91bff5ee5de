"""The connector setup wizard: from nothing to a tested, previewed, scheduled connector without a terminal.

Pages (ids in order): choose the system (the registry), where (instance URL, deployment or data centre,
optional CA bundle), how (auth mode and credentials), test (the connector's own ``check``), what (scope in
the system's own terms and a live preview of the first 10 normalised records), when (poll interval, first-sync
start, name). Every form is generated from the chosen connector's declared schema
(:mod:`desktop.widgets.config_form`): a ``ConfigField``'s ``page`` says where it goes ("where", "auth",
"scope", and
"mapping" for optional field-mapping overrides, shown only when a connector declares any).

Nothing is stored before Finish: typed secrets live in the line edits and the jobs' arguments only. Finish
saves through :func:`desktop.background.connector_jobs.save_connector` (``create_config``: validation,
keychain, audit)
on a worker, and emits :attr:`ConnectorWizard.saved`; the Connectors page starts the first sync. In edit mode
the wizard opens on the "where" page pre-filled; secrets show as stored and are replaced only if typed again.

Network work (test, preview) runs on worker threads, each job on its own event loop
(:func:`desktop.background.sync_jobs.run_coroutine`), cancellable; tests inject fake systems with
``transport_factory``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from PySide6.QtCore import QDate, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)
from sqlalchemy.orm import sessionmaker

from connectors.base import (
    CheckProblem,
    CheckResult,
    ConfigField,
    ConnectorSpec,
    FieldType,
    connector_class,
    connector_types,
    diagnose,
)
from connectors.configs import DEFAULT_FREQUENCY_MINUTES, ConfigRow, validate_options
from connectors.errors import ConfigurationError, ConnectorError
from connectors.onboarding import check_base_url, default_first_sync_start
from connectors.secrets import redact_text, register_secret
from core.importing.tickets import TicketValues
from core.resources import resources_dir
from core.store.tenancy import TenantSession
from desktop.background.connector_jobs import (
    PREVIEW_LIMIT,
    ConnectorDraft,
    PreviewResult,
    check_connection,
    preview_records,
    save_connector,
)
from desktop.background.sync_jobs import TransportFactory
from desktop.background.tasks import Task, TaskRunner
from desktop.context import AppContext
from desktop.widgets.config_form import FieldForm
from desktop.widgets.table_models import Column, RowTableModel

SYSTEM_PAGE, WHERE_PAGE, AUTH_PAGE, TEST_PAGE, SCOPE_PAGE, WHEN_PAGE = range(6)
PREVIEW_DELAY_MS = 700
MAX_FREQUENCY_MINUTES = 24 * 60
BASE_URL_KEY = "base_url"
CA_BUNDLE_KEY = "ca_bundle"

URL_FIELD = ConfigField(
    BASE_URL_KEY, "Instance URL", FieldType.URL, placeholder="https://servicedesk.example.com", page="where"
)
CA_FIELD = ConfigField(
    CA_BUNDLE_KEY,
    "Custom CA bundle",
    FieldType.PATH,
    required=False,
    help="Only when the server's certificate is signed by your organisation's own CA: that CA's PEM file. "
    "Certificates are always verified.",
    page="where",
)

PROBLEM_TITLES: dict[CheckProblem, str] = {
    CheckProblem.OK: "Connected",
    CheckProblem.CONFIGURATION: "A setting is wrong",
    CheckProblem.CONNECTION: "Cannot reach the server",
    CheckProblem.TLS: "The server's TLS certificate is not trusted",
    CheckProblem.TIMEOUT: "The server did not answer in time",
    CheckProblem.AUTHENTICATION: "Wrong credentials (HTTP 401)",
    CheckProblem.PERMISSION: "Signed in, but not allowed to read (HTTP 403)",
    CheckProblem.NOT_FOUND: "Wrong URL or API version (HTTP 404)",
    CheckProblem.GONE: "This API was removed (HTTP 410)",
    CheckProblem.RATE_LIMITED: "Rate limited (HTTP 429)",
    CheckProblem.SERVER: "The server failed (HTTP 5xx)",
    CheckProblem.BAD_RESPONSE: "The server's answer is not this API's",
    CheckProblem.OTHER: "The server refused the request",
}

_BADGE_COLOURS = ("#1f6feb", "#8250df", "#bf3989", "#1a7f37", "#9a6700", "#cf222e")


def connector_icon(spec: ConnectorSpec, size: int = 32) -> QIcon:
    """The connector's icon file when it ships one, else a coloured badge with its initial."""
    if spec.icon:
        path = resources_dir() / "icons" / "connectors" / spec.icon
        if path.is_file():
            return QIcon(str(path))
    colour = _BADGE_COLOURS[int(hashlib.sha1(spec.type.encode()).hexdigest(), 16) % len(_BADGE_COLOURS)]
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(QColor(colour))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawRoundedRect(0, 0, size, size, size / 5, size / 5)
        font = QFont()
        font.setBold(True)
        font.setPixelSize(size // 2)
        painter.setFont(font)
        painter.setPen(QColor("white"))
        painter.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, spec.display_name[:1].upper())
    finally:
        painter.end()
    return QIcon(pixmap)


def describe_result(result: CheckResult) -> tuple[str, str, str]:
    """Title, message and hint of a check result, with any secret masked."""
    return PROBLEM_TITLES[result.problem], redact_text(result.message), redact_text(result.hint)


def _one_line(text: str | None, limit: int = 160) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


PREVIEW_COLUMNS: tuple[Column[TicketValues], ...] = (
    Column("Number", lambda ticket: ticket.external_id),
    Column("Title", lambda ticket: ticket.title, tooltip=lambda ticket: ticket.title),
    Column(
        "Description",
        lambda ticket: _one_line(ticket.description),
        tooltip=lambda ticket: (ticket.description or "")[:2000],
    ),
    Column("Severity", lambda ticket: ticket.severity),
    Column("Updated", lambda ticket: ticket.updated_at),
)


def _error_label(parent: QWidget, object_name: str) -> QLabel:
    label = QLabel(parent)
    label.setObjectName(object_name)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setStyleSheet("color: #b3261e;")
    label.hide()
    return label


def _busy_bar(parent: QWidget) -> QProgressBar:
    bar = QProgressBar(parent)
    bar.setRange(0, 0)  # a spinner: we cannot know how long a server takes
    bar.setTextVisible(False)
    bar.setMaximumHeight(10)
    bar.hide()
    return bar


# --- pages -------------------------------------------------------------------------------------------------


class SystemPage(QWizardPage):
    def __init__(self, wizard: ConnectorWizard) -> None:
        super().__init__(wizard)
        self._wizard = wizard
        self.setTitle("Which system?")
        self.setSubTitle(
            "Runbook Desk reads tickets from these systems. The next pages ask what this one needs."
        )
        self.system_list = QListWidget(self)
        self.system_list.setObjectName("systemList")
        self.system_list.setIconSize(QSize(32, 32))
        self.system_list.setSpacing(4)
        self.specs: dict[str, ConnectorSpec] = {}
        for spec in connector_types():
            self.specs[spec.type] = spec
            item = QListWidgetItem(
                connector_icon(spec), f"{spec.display_name}\n{spec.kind.value.capitalize()}"
            )
            item.setData(Qt.ItemDataRole.UserRole, spec.type)
            item.setToolTip(spec.description)
            self.system_list.addItem(item)
        self.description = QLabel(self)
        self.description.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.system_list, 1)
        layout.addWidget(self.description)
        self.system_list.currentItemChanged.connect(self._on_current_changed)
        self.system_list.itemDoubleClicked.connect(lambda _item: wizard.next())

    def select(self, connector_type: str) -> None:
        for row in range(self.system_list.count()):
            item = self.system_list.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == connector_type:
                self.system_list.setCurrentItem(item)
                return
        raise KeyError(connector_type)

    def selected_spec(self) -> ConnectorSpec | None:
        item = self.system_list.currentItem()
        return None if item is None else self.specs[item.data(Qt.ItemDataRole.UserRole)]

    def _on_current_changed(self, *_args: object) -> None:
        spec = self.selected_spec()
        self.description.setText(spec.description if spec is not None else "")
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.selected_spec() is not None

    def validatePage(self) -> bool:
        spec = self.selected_spec()
        if spec is None:
            return False
        self._wizard.set_spec(spec)
        return True


class _FormPage(QWizardPage):
    """A page whose form is rebuilt from the spec when the system changes."""

    def __init__(self, wizard: ConnectorWizard) -> None:
        super().__init__(wizard)
        self._wizard = wizard
        self.form: FieldForm | None = None
        self.page_layout = QVBoxLayout(self)
        self.form_host = QVBoxLayout()
        self.page_layout.addLayout(self.form_host)

    def _replace_form(self, fields: list[ConfigField], *, stored_secrets: tuple[str, ...] = ()) -> FieldForm:
        if self.form is not None:
            self.form_host.removeWidget(self.form)
            self.form.deleteLater()
        self.form = FieldForm(fields, self, stored_secrets=stored_secrets)
        self.form_host.addWidget(self.form)
        return self.form

    def options(self, auth_mode: str) -> dict[str, Any]:
        return {} if self.form is None else self.form.options(auth_mode)


class WherePage(_FormPage):
    def __init__(self, wizard: ConnectorWizard) -> None:
        super().__init__(wizard)
        self.setTitle("Where is it?")
        self.setSubTitle("The address of your instance; paste it from the browser, the wizard tidies it up.")
        self.url_feedback = QLabel(self)
        self.url_feedback.setObjectName("urlFeedback")
        self.url_feedback.setWordWrap(True)
        self.suggestion_button = QPushButton(self)
        self.suggestion_button.setObjectName("useSuggestionButton")
        self.suggestion_button.hide()
        self.suggestion_button.clicked.connect(self._use_suggestion)
        self._suggestion: str | None = None
        self.error_label = _error_label(self, "whereError")
        self.page_layout.addWidget(self.url_feedback)
        self.page_layout.addWidget(self.suggestion_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.page_layout.addWidget(self.error_label)
        self.page_layout.addStretch(1)

    def build(self, spec: ConnectorSpec) -> None:
        declared = {f.key: f for f in spec.fields}
        fields = [declared.get(BASE_URL_KEY, URL_FIELD)]
        fields += [f for f in spec.fields if f.page == "where" and f.key not in (BASE_URL_KEY, CA_BUNDLE_KEY)]
        fields.append(declared.get(CA_BUNDLE_KEY, CA_FIELD))
        form = self._replace_form(fields)
        form.editors[BASE_URL_KEY].changed.connect(self._url_edited)
        form.changed.connect(self.completeChanged.emit)
        self._url_edited()

    @property
    def url_edit(self) -> QLineEdit:
        assert self.form is not None
        widget = self.form.editors[BASE_URL_KEY].input
        assert isinstance(widget, QLineEdit)
        return widget

    def base_url(self) -> str:
        return self.url_edit.text().strip()

    def ca_bundle(self) -> str | None:
        assert self.form is not None
        value = self.form.editors[CA_BUNDLE_KEY].value()
        return str(value) if value else None

    def set_ca_bundle(self, path: str) -> None:
        assert self.form is not None
        self.form.editors[CA_BUNDLE_KEY].set_value(path)

    def options(self, auth_mode: str) -> dict[str, Any]:
        values = super().options(auth_mode)
        values.pop(BASE_URL_KEY, None)
        values.pop(CA_BUNDLE_KEY, None)
        return values

    def isComplete(self) -> bool:
        return self.form is not None and bool(self.base_url())

    def _url_edited(self) -> None:
        self.url_feedback.clear()
        self.suggestion_button.hide()
        self.error_label.hide()

    def _use_suggestion(self) -> None:
        if self._suggestion:
            self.url_edit.setText(self._suggestion)
            self.validatePage()

    def validatePage(self) -> bool:
        spec = self._wizard.spec
        assert spec is not None and self.form is not None
        check = check_base_url(self.base_url(), spec.type)
        notes = [f"Changed: {', '.join(check.changes)}." if check.changes else ""]
        notes += [f"Note: {warning}." for warning in check.warnings]
        if not check.ok:
            self.url_feedback.setText(" ".join(n for n in notes if n))
            self.error_label.setText(check.problem or "")
            self.error_label.show()
            self._suggestion = check.suggestion
            if check.suggestion:
                self.suggestion_button.setText(f"Use {check.suggestion}")
                self.suggestion_button.show()
            return False
        self.url_edit.setText(check.url)  # clears the feedback: set it after
        self.url_feedback.setText(
            " ".join(n for n in [f"Runbook Desk will connect to {check.url}.", *notes] if n)
        )
        ca_bundle = self.ca_bundle()
        if ca_bundle and not os.path.isfile(ca_bundle):
            self.error_label.setText(f"The CA bundle {ca_bundle} does not exist or is not a file.")
            self.error_label.show()
            return False
        missing = self.form.missing(self._wizard.auth_page.auth_mode())
        if missing:
            self.error_label.setText(f"Fill in: {', '.join(missing)}.")
            self.error_label.show()
            return False
        return True


class AuthPage(_FormPage):
    def __init__(self, wizard: ConnectorWizard) -> None:
        super().__init__(wizard)
        self.setTitle("How does Runbook Desk sign in?")
        self.setSubTitle(
            "Nothing is stored yet. When you finish, secrets go to the OS keychain, never into the database."
        )
        self.mode_combo = QComboBox(self)
        self.mode_combo.setObjectName("authMode")
        self.mode_help = QLabel(self)
        self.mode_help.setWordWrap(True)
        mode_row = QFormLayout()
        mode_row.addRow("Sign in with:", self.mode_combo)
        mode_row.addRow("", self.mode_help)
        self.page_layout.insertLayout(0, mode_row)
        self.error_label = _error_label(self, "authError")
        self.page_layout.addWidget(self.error_label)
        self.page_layout.addStretch(1)
        self._spec: ConnectorSpec | None = None
        self.mode_combo.currentIndexChanged.connect(self._mode_changed)

    def build(self, spec: ConnectorSpec, stored_secrets: tuple[str, ...]) -> None:
        self._spec = spec
        self._replace_form([f for f in spec.fields if f.page == "auth"], stored_secrets=stored_secrets)
        self.mode_combo.blockSignals(True)
        self.mode_combo.clear()
        for mode in spec.auth_modes:
            self.mode_combo.addItem(mode.label, mode.key)
        self.mode_combo.blockSignals(False)
        self.mode_combo.setEnabled(len(spec.auth_modes) > 1)
        self._mode_changed()

    def auth_mode(self) -> str:
        value = self.mode_combo.currentData()
        return str(value) if value else ""

    def set_auth_mode(self, auth_mode: str) -> None:
        index = self.mode_combo.findData(auth_mode)
        if index >= 0:
            self.mode_combo.setCurrentIndex(index)

    def secrets(self) -> dict[str, str]:
        return {} if self.form is None else self.form.secrets(self.auth_mode())

    def _mode_changed(self, *_args: object) -> None:
        mode = self.auth_mode()
        if self.form is not None:
            self.form.set_auth_mode(mode)
        helps = {m.key: m.help for m in self._spec.auth_modes} if self._spec else {}
        self.mode_help.setText(helps.get(mode, ""))
        self.error_label.hide()
        self._wizard.apply_auth_mode(mode)

    def validatePage(self) -> bool:
        assert self.form is not None
        missing = self.form.missing(self.auth_mode(), self._wizard.stored_secret_fields())
        if missing:
            self.error_label.setText(f"Fill in: {', '.join(missing)}.")
            self.error_label.show()
            return False
        self.error_label.hide()
        return True


class ConnectionTestPage(QWizardPage):
    def __init__(self, wizard: ConnectorWizard) -> None:
        super().__init__(wizard)
        self._wizard = wizard
        self.setTitle("Test the connection")
        self.setSubTitle("Reachability, TLS, sign-in and read permission; a problem is named exactly.")
        self.result: CheckResult | None = None
        self._task: Task | None = None
        self.status_label = QLabel(self)
        self.status_label.setObjectName("checkStatus")
        self.status_label.setWordWrap(True)
        self.spinner = _busy_bar(self)
        self.cancel_button = QPushButton("Cancel test", self)
        self.cancel_button.setObjectName("cancelCheckButton")
        self.cancel_button.clicked.connect(self.cancel_check)
        self.retry_button = QPushButton("Test again", self)
        self.retry_button.setObjectName("retryCheckButton")
        self.retry_button.clicked.connect(self.start_check)
        self.result_title = QLabel(self)
        self.result_title.setObjectName("checkTitle")
        title_font = self.result_title.font()
        title_font.setBold(True)
        title_font.setPointSizeF(title_font.pointSizeF() * 1.15)
        self.result_title.setFont(title_font)
        self.result_message = QLabel(self)
        self.result_message.setObjectName("checkMessage")
        self.result_message.setWordWrap(True)
        self.result_message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hint_label = QLabel(self)
        self.hint_label.setObjectName("checkHint")
        self.hint_label.setWordWrap(True)
        self.ca_button = QPushButton("Choose the CA bundle…", self)
        self.ca_button.setObjectName("chooseCaButton")
        self.ca_button.setToolTip("Certificate checks stay on: trust your organisation's CA instead")
        self.ca_button.clicked.connect(self.choose_ca_bundle)
        self.ca_button.hide()
        buttons = QHBoxLayout()
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.retry_button)
        buttons.addWidget(self.ca_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status_label)
        layout.addWidget(self.spinner)
        layout.addSpacing(8)
        layout.addWidget(self.result_title)
        layout.addWidget(self.result_message)
        layout.addWidget(self.hint_label)
        layout.addLayout(buttons)
        layout.addStretch(1)

    def initializePage(self) -> None:
        self.start_check()

    def cleanupPage(self) -> None:  # Back: a running test is of settings about to change
        self.cancel_check()

    def is_running(self) -> bool:
        return self._task is not None and self._task.is_active

    def start_check(self) -> None:
        self._stop_task()
        self._show(None)
        try:
            draft = self._wizard.draft()
        except ConfigurationError as exc:
            self._show(diagnose(exc))
            return
        self.status_label.setText(f"Connecting to {draft.base_url}…")
        self.spinner.show()
        self.cancel_button.setEnabled(True)
        self.retry_button.setEnabled(False)
        self._task = self._wizard.runner.run(
            check_connection,
            draft,
            self._wizard.transport_factory,
            title=f"Testing {draft.name}",
            progress=True,
            on_done=self._checked,
            on_error=self._check_failed,
        )

    def cancel_check(self) -> None:
        if self.is_running():
            self._stop_task()
            self._show(None)
            self.status_label.setText("Test cancelled. Test again, or go back and change the settings.")

    def _stop_task(self) -> None:
        if self._task is not None and self._task.is_active:
            self._task.cancel()
        self._task = None

    def _checked(self, result: object) -> None:
        self._task = None
        if isinstance(result, CheckResult):
            self._show(result)

    def _check_failed(self, exc: Exception, _traceback_text: str) -> None:
        self._task = None
        self._show(CheckResult(CheckProblem.OTHER, f"the test itself failed: {redact_text(str(exc))}"))

    def _show(self, result: CheckResult | None) -> None:
        self.result = result
        self.spinner.hide()
        self.cancel_button.setEnabled(False)
        self.retry_button.setEnabled(True)
        self.ca_button.setVisible(result is not None and result.problem is CheckProblem.TLS)
        if result is None:
            self.status_label.clear()
            self.result_title.clear()
            self.result_message.clear()
            self.hint_label.clear()
        else:
            title, message, hint = describe_result(result)
            self.status_label.setText("Connected." if result.ok else "The test found a problem:")
            self.result_title.setText(title)
            self.result_title.setStyleSheet("color: #1a7f37;" if result.ok else "color: #b3261e;")
            self.result_message.setText(message)
            self.hint_label.setText(f"What to do: {hint}" if hint and not result.ok else "")
        self.completeChanged.emit()

    def choose_ca_bundle(self) -> None:
        file_name, _ = QFileDialog.getOpenFileName(
            self, "CA bundle that signed the server's certificate", "", "PEM (*.pem *.crt *.cer);;All (*)"
        )
        if file_name:
            self.use_ca_bundle(file_name)

    def use_ca_bundle(self, path: str) -> None:
        """Trust this CA file for the connection (the "where" page's CA field) and test again."""
        self._wizard.where_page.set_ca_bundle(path)
        self.start_check()

    def isComplete(self) -> bool:
        return self.result is not None and self.result.ok


class ScopePage(_FormPage):
    def __init__(self, wizard: ConnectorWizard) -> None:
        super().__init__(wizard)
        self.setTitle("What to import")
        self.setSubTitle(
            f"Limit the sync in the system's own terms. The preview shows the first {PREVIEW_LIMIT} records "
            "as they will be stored."
        )
        self.mapping_form: FieldForm | None = None
        self.mapping_box = QGroupBox("Field mapping (optional)", self)
        self.mapping_box.setLayout(QVBoxLayout())
        self.mapping_box.hide()
        self.page_layout.addWidget(self.mapping_box)
        self.preview_model: RowTableModel[TicketValues] = RowTableModel(PREVIEW_COLUMNS, self)
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
        self.spinner = _busy_bar(self)
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
        self._task: Task | None = None
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(PREVIEW_DELAY_MS)
        self._debounce.timeout.connect(self.refresh_preview)

    def build(self, spec: ConnectorSpec) -> None:
        form = self._replace_form([f for f in spec.fields if f.page == "scope"])
        form.changed.connect(self._edited)
        if self.mapping_form is not None:
            self.mapping_box.layout().removeWidget(self.mapping_form)
            self.mapping_form.deleteLater()
            self.mapping_form = None
        mapping_fields = [f for f in spec.fields if f.page == "mapping"]
        if mapping_fields:
            self.mapping_form = FieldForm(mapping_fields, self.mapping_box)
            self.mapping_form.changed.connect(self._edited)
            self.mapping_box.layout().addWidget(self.mapping_form)
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
        return self._task is not None and self._task.is_active

    def _edited(self) -> None:
        self.preview_ok = False
        self.completeChanged.emit()
        self._debounce.start()

    def _stop_task(self) -> None:
        if self._task is not None and self._task.is_active:
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
        self._task = self._wizard.runner.run(
            preview_records,
            draft,
            self._wizard.transport_factory,
            title=f"Previewing {draft.name}",
            progress=True,
            on_done=self._previewed,
            on_error=self._preview_failed,
        )

    def _previewed(self, result: object) -> None:
        self._task = None
        self.spinner.hide()
        if not isinstance(result, PreviewResult):
            return
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

    def _preview_failed(self, exc: Exception, _traceback_text: str) -> None:
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


class WhenPage(QWizardPage):
    def __init__(self, wizard: ConnectorWizard) -> None:
        super().__init__(wizard)
        self._wizard = wizard
        self.setTitle("When to sync")
        self.setSubTitle(
            "How often to look for new and changed tickets, where the first sync starts, and a name."
        )
        self.name_edit = QLineEdit(self)
        self.name_edit.setObjectName("connectorName")
        self.name_edit.setPlaceholderText("e.g. ServiceNow production")
        self.name_edit.textChanged.connect(lambda _t: self.completeChanged.emit())
        self.frequency_spin = QSpinBox(self)
        self.frequency_spin.setObjectName("syncFrequency")
        self.frequency_spin.setRange(1, MAX_FREQUENCY_MINUTES)
        self.frequency_spin.setValue(DEFAULT_FREQUENCY_MINUTES)
        self.frequency_spin.setSuffix(" min")
        self.start_edit = QDateEdit(self)
        self.start_edit.setObjectName("firstSyncStart")
        self.start_edit.setCalendarPopup(True)
        self.start_edit.setDisplayFormat("yyyy-MM-dd")
        start = default_first_sync_start().astimezone()
        self.start_edit.setDate(QDate(start.year, start.month, start.day))
        self.start_edit.setMaximumDate(QDate.currentDate())
        self.start_note = QLabel(self)
        self.start_note.setWordWrap(True)
        self.summary = QLabel(self)
        self.summary.setObjectName("connectorSummary")
        self.summary.setWordWrap(True)
        self.saving_bar = _busy_bar(self)
        self.error_label = _error_label(self, "saveError")
        form = QFormLayout()
        form.addRow("Name:", self.name_edit)
        form.addRow("Sync every:", self.frequency_spin)
        form.addRow("First sync from:", self.start_edit)
        form.addRow("", self.start_note)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addSpacing(8)
        layout.addWidget(self.summary)
        layout.addWidget(self.saving_bar)
        layout.addWidget(self.error_label)
        layout.addStretch(1)
        self.setFinalPage(True)

    def configure_for_edit(self, existing: ConfigRow | None) -> None:
        if existing is None:
            self.start_note.setText("Tickets updated before this date are not imported.")
            return
        self.name_edit.setText(existing.name)
        self.frequency_spin.setValue(existing.sync_frequency_minutes)
        self.start_edit.setEnabled(False)
        self.start_note.setText("The next sync continues where the last one stopped.")

    def initializePage(self) -> None:
        if not self.name_edit.text().strip():
            self.name_edit.setText(self._wizard.default_name())
        self.error_label.hide()
        self.summary.setText(self._wizard.summary_text())

    def name(self) -> str:
        return self.name_edit.text().strip()

    def first_sync_start(self) -> datetime:
        date = self.start_edit.date()
        return datetime(date.year(), date.month(), date.day()).astimezone().astimezone(UTC)

    def show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.show()

    def isComplete(self) -> bool:
        return bool(self.name()) and not self._wizard.is_saving()


# --- the wizard --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SaveOutcome:
    config: ConfigRow | None
    problem: str | None = None


def save_job(sessions: sessionmaker[TenantSession], draft: ConnectorDraft, actor: str) -> SaveOutcome:
    """On a worker: save, turning a refusal we can explain (a duplicate name, a locked keychain) into text."""
    try:
        return SaveOutcome(save_connector(sessions, draft, actor))
    except ConnectorError as exc:
        return SaveOutcome(None, str(exc))


class ConnectorWizard(QWizard):
    """Add a connector, or (``existing``) edit one. ``saved(ConfigRow)`` fires once the row is committed."""

    saved = Signal(object)

    def __init__(
        self,
        context: AppContext,
        *,
        transport_factory: TransportFactory | None = None,
        existing: ConfigRow | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.context = context
        self.transport_factory = transport_factory
        self.existing = existing
        self.spec: ConnectorSpec | None = None
        self._save_task: Task | None = None
        self.setObjectName("connectorWizard")
        self.setWindowTitle(f"Edit {existing.name}" if existing else "Add a connector")
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.system_page = SystemPage(self)
        self.where_page = WherePage(self)
        self.auth_page = AuthPage(self)
        self.test_page = ConnectionTestPage(self)
        self.scope_page = ScopePage(self)
        self.when_page = WhenPage(self)
        for page_id, page in (
            (SYSTEM_PAGE, self.system_page),
            (WHERE_PAGE, self.where_page),
            (AUTH_PAGE, self.auth_page),
            (TEST_PAGE, self.test_page),
            (SCOPE_PAGE, self.scope_page),
            (WHEN_PAGE, self.when_page),
        ):
            self.setPage(page_id, page)
        self.when_page.configure_for_edit(existing)
        if existing is not None:
            self.system_page.select(existing.connector_type)
            self.set_spec(connector_class(existing.connector_type).spec)
            self.setStartId(WHERE_PAGE)
        self.setButtonText(QWizard.WizardButton.FinishButton, "Save" if existing else "Finish")
        self.resize(820, 640)

    @property
    def runner(self) -> TaskRunner:
        return self.context.runner

    def stored_secret_fields(self) -> tuple[str, ...]:
        return self.existing.secret_fields if self.existing is not None else ()

    def set_spec(self, spec: ConnectorSpec) -> None:
        """Generate the form pages for this connector (kept as they are if it is the same one)."""
        if self.spec is not None and self.spec.type == spec.type:
            return
        self.spec = spec
        self.where_page.build(spec)
        self.auth_page.build(spec, self.stored_secret_fields())
        self.scope_page.build(spec)
        if self.existing is not None:
            self._prefill(self.existing)
        self.apply_auth_mode(self.auth_page.auth_mode())

    def apply_auth_mode(self, auth_mode: str) -> None:
        """Show each form's fields of this auth mode only (a field may declare the modes it belongs to)."""
        forms = (
            self.where_page.form,
            self.auth_page.form,
            self.scope_page.form,
            self.scope_page.mapping_form,
        )
        for form in forms:
            if form is not None:
                form.set_auth_mode(auth_mode)

    def _prefill(self, existing: ConfigRow) -> None:
        assert self.where_page.form and self.auth_page.form and self.scope_page.form
        self.where_page.url_edit.setText(existing.base_url)
        if existing.ca_bundle:
            self.where_page.set_ca_bundle(existing.ca_bundle)
        self.auth_page.set_auth_mode(existing.auth_mode)
        for form in (
            self.where_page.form,
            self.auth_page.form,
            self.scope_page.form,
            self.scope_page.mapping_form,
        ):
            if form is not None:
                form.set_values({k: v for k, v in existing.options.items() if k in form.editors})

    def default_name(self) -> str:
        assert self.spec is not None
        host = urlsplit(self.where_page.base_url()).hostname or ""
        label = host.split(".")[0] if host else ""
        return f"{self.spec.display_name} ({label})" if label else self.spec.display_name

    def draft(self) -> ConnectorDraft:
        """What the pages hold now, validated like the CLI validates it; raises ConfigurationError."""
        spec = self.spec
        if spec is None:
            raise ConfigurationError("connector", "choose a system first")
        mode = self.auth_page.auth_mode()
        name = self.when_page.name() or self.default_name()
        raw = self.where_page.options(mode) | self.auth_page.options(mode) | self.scope_page.options(mode)
        options = validate_options(spec, name, mode, raw)
        secrets = self.auth_page.secrets()
        for value in secrets.values():
            register_secret(value)  # masked in any message or log line from here on
        existing = self.existing
        return ConnectorDraft(
            connector_type=spec.type,
            name=name,
            base_url=self.where_page.base_url(),
            auth_mode=mode,
            options=options,
            secrets=secrets,
            ca_bundle=self.where_page.ca_bundle(),
            sync_frequency_minutes=self.when_page.frequency_spin.value(),
            first_sync_start=None if existing else self.when_page.first_sync_start(),
            existing_id=existing.id if existing else None,
            keychain_key=existing.keychain_key if existing else "",
            stored_secret_fields=existing.secret_fields if existing else (),
        )

    def summary_text(self) -> str:
        try:
            draft = self.draft()
        except ConfigurationError as exc:
            return redact_text(str(exc))
        secret_state = [
            f"{key}: {'entered' if key in draft.secrets else 'stored'}"
            for key in sorted(set(draft.secrets) | set(draft.stored_secret_fields))
        ]
        lines = [
            f"System: {self.spec.display_name if self.spec else draft.connector_type}",
            f"Address: {draft.base_url}",
            f"Sign-in: {draft.auth_mode}"
            + (f" ({', '.join(secret_state)}; kept in the OS keychain)" if secret_state else ""),
        ]
        if draft.ca_bundle:
            lines.append(f"CA bundle: {draft.ca_bundle}")
        scope = ", ".join(f"{k}={v}" for k, v in draft.options.items())
        if scope:
            lines.append(f"Options: {scope}")
        if not self.existing:
            lines.append(
                "The first sync starts as soon as you finish; the Connectors page shows its progress."
            )
        return "\n".join(lines)

    # --- finishing ---------------------------------------------------------------------------------------

    def is_saving(self) -> bool:
        return self._save_task is not None and self._save_task.is_active

    def accept(self) -> None:
        if self.is_saving():
            return
        try:
            draft = self.draft()
        except ConfigurationError as exc:
            self.when_page.show_error(redact_text(str(exc)))
            return
        self.when_page.error_label.hide()
        self._save_task = self.runner.run(
            save_job,
            self.context.sessions,
            draft,
            self.context.reviewer(),
            title=f"Saving {draft.name}",
            on_done=self._saved,
            on_error=self._save_failed,
        )
        self._set_saving(True)

    def _set_saving(self, saving: bool) -> None:
        self.when_page.saving_bar.setVisible(saving)
        for button in (QWizard.WizardButton.BackButton, QWizard.WizardButton.CancelButton):
            self.button(button).setEnabled(not saving)
        self.when_page.completeChanged.emit()

    def _saved(self, result: object) -> None:
        self._save_task = None
        self._set_saving(False)
        if not isinstance(result, SaveOutcome):
            return
        if result.config is None:
            self.when_page.show_error(redact_text(result.problem or "not saved"))
            return
        self.saved.emit(result.config)
        super().accept()

    def _save_failed(self, exc: Exception, _traceback_text: str) -> None:
        self._save_task = None
        self._set_saving(False)
        self.when_page.show_error(f"Not saved: {redact_text(str(exc))}")

    def reject(self) -> None:
        if self.is_saving():  # the row is being committed: Cancel would not undo it
            return
        self.test_page.cancel_check()
        self.scope_page.cleanupPage()
        super().reject()
