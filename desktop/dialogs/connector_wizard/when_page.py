"""The last page: how often to sync, where the first sync starts, the connector's name, and a summary."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from PySide6.QtCore import QDate
from PySide6.QtWidgets import QDateEdit, QFormLayout, QLabel, QLineEdit, QSpinBox, QVBoxLayout, QWizardPage

from connectors.configs import DEFAULT_FREQUENCY_MINUTES, ConfigRow
from connectors.onboarding import default_first_sync_start
from desktop.dialogs.connector_wizard.feedback import busy_bar, error_label

if TYPE_CHECKING:  # the pages and the wizard refer to each other; only the wizard module imports the pages
    from desktop.dialogs.connector_wizard.wizard import ConnectorWizard

MAX_FREQUENCY_MINUTES = 24 * 60


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
        self.saving_bar = busy_bar(self)
        self.error_label = error_label(self, "saveError")
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
