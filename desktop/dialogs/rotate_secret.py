"""Rotate a connector's secret from the Connectors page: type the new value, it is tested, then it replaces
the old one (issue 17, :mod:`connectors.rotation`).

The test and the replacement run as one worker job (:func:`desktop.background.secret_jobs.rotate_secret_job`),
so the window stays responsive while the server answers and Cancel stops the test. A refused value leaves
the old one in place; the dialog stays open with the test's diagnosis (masked of every secret, the new one
included) so the analyst can correct a typo and try again. The typed value lives in the password field and
the job's arguments only, and the field is cleared when the dialog closes.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from connectors.configs import ConfigRow
from connectors.rotation import RotationResult
from connectors.secrets import redact_text
from core.store.connector_secrets import SecretAge
from desktop.background.secret_jobs import rotate_secret_job
from desktop.background.tasks import Task
from desktop.context import AppContext
from desktop.dialogs.connector_wizard.feedback import busy_bar, describe_result, error_label


class RotateSecretDialog(QDialog):
    """Emits ``rotated(RotationResult)`` once the new value passed the test and replaced the old one."""

    rotated = Signal(object)

    def __init__(
        self,
        context: AppContext,
        config: ConfigRow,
        ages: tuple[SecretAge, ...] = (),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Rotate a secret of {config.name}")
        self._context = context
        self._config = config
        self.task: Task | None = None
        self.outcome: RotationResult | None = None
        labels = {age.field: age.label() for age in ages}
        self.field_combo = QComboBox(self)
        self.field_combo.setObjectName("rotateField")
        for field in config.secret_fields:
            self.field_combo.addItem(labels.get(field, field), field)
        self.value_edit = QLineEdit(self)
        self.value_edit.setObjectName("rotateValue")
        self.value_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.value_edit.setPlaceholderText("the new value, as set in the system")
        self.value_edit.textChanged.connect(lambda _text: self._update_buttons())
        note = QLabel(
            "Change the secret in the system first, then enter the new value here. It is tested with a "
            "connection test before it replaces the stored one; if the test fails, the stored one stays.",
            self,
        )
        note.setWordWrap(True)
        self.status_label = QLabel(self)
        self.status_label.setObjectName("rotateStatus")
        self.status_label.setWordWrap(True)
        self.error = error_label(self, "rotateError")
        self.spinner = busy_bar(self)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.rotate_button: QPushButton = self.buttons.addButton(
            "Test and rotate", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.rotate_button.setObjectName("rotateButton")
        self.buttons.accepted.connect(self.start_rotation)
        self.buttons.rejected.connect(self.cancel)
        form = QFormLayout()
        form.addRow("Secret", self.field_combo)
        form.addRow("New value", self.value_edit)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addLayout(form)
        layout.addWidget(self.spinner)
        layout.addWidget(self.status_label)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self._update_buttons()

    @property
    def field(self) -> str:
        return str(self.field_combo.currentData())

    @property
    def busy(self) -> bool:
        return self.task is not None and self.task.is_active

    def _update_buttons(self) -> None:
        self.rotate_button.setEnabled(bool(self.value_edit.text()) and not self.busy)
        self.field_combo.setEnabled(not self.busy)
        self.value_edit.setEnabled(not self.busy)

    def start_rotation(self) -> Task | None:
        value = self.value_edit.text()
        if not value or self.busy:
            return None
        self.error.hide()
        self.status_label.setText(f"Testing the new {self.field}…")
        self.spinner.show()
        self.task = self._context.runner.run(
            rotate_secret_job,
            self._context.sessions,
            self._config.id,
            self.field,
            value,
            self._context.transport_factory,
            self._context.reviewer(),
            title=f"Rotating the {self.field} of {self._config.name}",
            progress=True,
            on_done=self._finished,
            on_error=self._failed,
        )
        self._update_buttons()
        return self.task

    def cancel(self) -> None:
        if self.task is not None and self.task.is_active:
            self.task.cancel()  # the keychain is written only after a passed test: nothing half-done
        self.reject()

    def _finished(self, result: RotationResult) -> None:
        self.task = None
        self.spinner.hide()
        self.outcome = result
        if result.rotated:
            self.rotated.emit(result)
            self.accept()
            return
        title, message, hint = describe_result(result.check)
        self.status_label.setText(f"Not rotated: {title}. The stored {result.field} stays in use.")
        self.error.setText(f"{message}\n{hint}".strip())
        self.error.show()
        self._update_buttons()

    def _failed(self, exc: Exception, _traceback_text: str) -> None:
        self.task = None
        self.spinner.hide()
        self.status_label.setText("Not rotated.")
        self.error.setText(redact_text(str(exc)))
        self.error.show()
        self._update_buttons()

    def done(self, result: int) -> None:
        self.value_edit.clear()  # the typed secret does not outlive the dialog in a widget
        super().done(result)
