"""The tenant's alert thresholds (roadmap: Monitoring & Observability, "Alerts"), from the Metrics page."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.settings import AlertSettings, load_settings
from desktop.background.settings_jobs import save_tenant_settings
from desktop.context import AppContext


class AlertSettingsDialog(QDialog):
    """The tenant's alert thresholds; saved by a worker (a long import may hold the write lock)."""

    saved = Signal(object)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Alert thresholds")
        self._context = context
        with context.sessions() as session:  # a read: WAL readers never wait for a writer
            current = load_settings(session, AlertSettings)
        self.sync_spin = QSpinBox(self)
        self.sync_spin.setRange(1, 100)
        self.sync_spin.setValue(current.sync_failures)
        self.unlinked_spin = QSpinBox(self)
        self.unlinked_spin.setRange(0, 1_000_000)
        self.unlinked_spin.setValue(current.unlinked_count)
        self.window_spin = QDoubleSpinBox(self)
        self.window_spin.setRange(1.0, 24 * 90)
        self.window_spin.setDecimals(0)
        self.window_spin.setSuffix(" h")
        self.window_spin.setValue(current.unlinked_window_hours)
        self.samples_spin = QSpinBox(self)
        self.samples_spin.setRange(10, 100_000)
        self.samples_spin.setValue(current.confidence_samples)
        self.rate_spin = QDoubleSpinBox(self)
        self.rate_spin.setRange(1.0, 99.0)
        self.rate_spin.setDecimals(0)
        self.rate_spin.setSuffix(" %")
        self.rate_spin.setValue(round(current.rate_limit_ratio * 100))
        self.error_label = QLabel(self)
        self.error_label.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Connector failed syncs in a row, at least", self.sync_spin)
        form.addRow("Unlinked tickets, more than", self.unlinked_spin)
        form.addRow("… arriving within", self.window_spin)
        form.addRow("Average confidence of the last … analyses", self.samples_spin)
        form.addRow("API requests left, at most", self.rate_spin)
        note = QLabel("Confidence is compared with the tenant's review threshold (File > Settings).", self)
        note.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

    def settings(self) -> AlertSettings:
        return AlertSettings(
            sync_failures=self.sync_spin.value(),
            unlinked_count=self.unlinked_spin.value(),
            unlinked_window_hours=self.window_spin.value(),
            confidence_samples=self.samples_spin.value(),
            rate_limit_ratio=self.rate_spin.value() / 100,
        )

    def save(self) -> None:
        try:
            settings = self.settings()
        except ValueError as exc:
            self.error_label.setText(str(exc))
            return
        self.buttons.setEnabled(False)
        self._context.runner.run(
            save_tenant_settings,
            self._context.sessions,
            settings,
            self._context.reviewer(),
            title="Saving alert thresholds",
            on_done=self._saved,
            on_error=self._failed,
        )

    def _saved(self, settings: AlertSettings) -> None:
        self.saved.emit(settings)
        self.accept()

    def _failed(self, exc: Exception, _traceback_text: str) -> None:
        self.buttons.setEnabled(True)
        self.error_label.setText(f"Could not save the thresholds: {exc}")
