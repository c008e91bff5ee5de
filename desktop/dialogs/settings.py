"""Settings: who decisions are recorded as, this tenant's decision thresholds, and the workspace folder
("General"); the tenant's own calibration and the threshold advisor ("Learning",
:mod:`desktop.dialogs.calibration_settings`); which store the workspace opens ("Team database",
:mod:`desktop.dialogs.team_database`). In team mode the thresholds and the calibration are an admin's: other
roles see them disabled, with the role they need.

The reviewer name and the workspace folder are per-user preferences (``QSettings``); the thresholds belong to
the tenant and live in the workspace, so every analyst of that tenant sees the same decisions. Saving the
thresholds is a small write, still done by the task runner: a long import holding the SQLite write lock must
not freeze the dialog. A threshold change is audited (``settings.thresholds``), typed or applied from the
advisor. The tenant's credential rotation period is on "General" too (issue 17,
:class:`core.store.connector_secrets.SecretSettings`).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core.monitoring.settings import MAX_INCIDENT_HOURS, MAX_WINDOW_MINUTES, MonitoringSettings
from core.settings import SettingsSection, Thresholds, load_settings
from core.store.connector_secrets import MAX_ROTATION_DAYS, SecretSettings
from core.store.models import TeamRole
from core.store.repository import current_actor
from desktop.background.settings_jobs import save_tenant_sections
from desktop.context import AppContext
from desktop.dialogs.calibration_settings import LearningPanel
from desktop.dialogs.team_database import TeamDatabasePanel
from desktop.permissions import RoleLock
from desktop.refusals import describe_error

REVIEWER_KEY = "review/reviewer_name"
WORKSPACE_KEY = "workspace/path"


def reviewer_name(settings: QSettings) -> str | None:
    value = settings.value(REVIEWER_KEY, "", str)
    if not isinstance(value, str):
        return None
    return value.strip() or None


def chosen_workspace(settings: QSettings) -> Path | None:
    """The workspace folder picked in settings, used at the next start when no --workspace is given."""
    value = settings.value(WORKSPACE_KEY, "", str)
    return Path(value) if isinstance(value, str) and value else None


class SettingsDialog(QDialog):
    """Emits ``thresholds_saved`` once the tenant's thresholds are stored and ``calibration_changed`` once a
    refit is adopted or a version reverted (the window re-analyses after either)."""

    thresholds_saved = Signal(object)
    calibration_changed = Signal()

    def __init__(self, app: AppContext, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._app = app
        self._settings = settings
        with app.sessions() as session:  # a read: WAL readers never wait for a writer
            self._initial = load_settings(session, Thresholds)
            self._initial_monitoring = load_settings(session, MonitoringSettings)
            self._initial_secrets = load_settings(session, SecretSettings)

        reviewer_box = QGroupBox("Review", self)
        self.reviewer_edit = QLineEdit(reviewer_name(settings) or "", reviewer_box)
        self.reviewer_edit.setPlaceholderText(current_actor())
        self.reviewer_edit.setToolTip("Recorded as reviewed_by on every decision; empty = your OS user name")
        reviewer_form = QFormLayout(reviewer_box)
        reviewer_form.addRow("Record decisions as", self.reviewer_edit)

        tenant = app.workspace.tenant(app.tenant_slug)
        thresholds_box = QGroupBox(f"Decision thresholds for tenant “{tenant.name}”", self)
        self.link_spin = self._spin(self._initial.existing, thresholds_box)
        self.review_spin = self._spin(self._initial.partial, thresholds_box)
        thresholds_form = QFormLayout(thresholds_box)
        thresholds_form.addRow("Link automatically at or above", self.link_spin)
        thresholds_form.addRow("Send to review at or above", self.review_spin)
        thresholds_form.addRow(
            QLabel("Below the review threshold the ticket is a candidate for a new runbook.")
        )
        self.thresholds_error = QLabel(thresholds_box)
        self.thresholds_error.setObjectName("thresholdsError")
        thresholds_form.addRow(self.thresholds_error)

        monitoring_box = QGroupBox("Monitoring alerts", self)
        self.window_spin = QSpinBox(monitoring_box)
        self.window_spin.setRange(1, MAX_WINDOW_MINUTES)
        self.window_spin.setSuffix(" min")
        self.window_spin.setValue(self._initial_monitoring.correlation_window_minutes)
        self.max_hours_spin = QSpinBox(monitoring_box)
        self.max_hours_spin.setRange(1, MAX_INCIDENT_HOURS)
        self.max_hours_spin.setSuffix(" h")
        self.max_hours_spin.setValue(self._initial_monitoring.max_incident_hours)
        monitoring_form = QFormLayout(monitoring_box)
        monitoring_form.addRow("Group alerts on one host or service within", self.window_spin)
        monitoring_form.addRow("An incident takes no new alert after", self.max_hours_spin)

        secrets_box = QGroupBox("Connector secrets", self)
        self.rotation_spin = QSpinBox(secrets_box)
        self.rotation_spin.setObjectName("secretRotationDays")
        self.rotation_spin.setRange(1, MAX_ROTATION_DAYS)
        self.rotation_spin.setSuffix(" days")
        self.rotation_spin.setValue(self._initial_secrets.secret_rotation_days)
        self.rotation_spin.setToolTip(
            "A connector's password, token or client secret this old raises an alert; rotate it on the "
            "Connectors page"
        )
        secrets_form = QFormLayout(secrets_box)
        secrets_form.addRow("Remind to rotate a secret after", self.rotation_spin)

        workspace_box = QGroupBox("Workspace", self)
        self.workspace_edit = QLineEdit(str(chosen_workspace(settings) or app.workspace.root), workspace_box)
        self.workspace_edit.setToolTip("Takes effect at the next start (unless --workspace is given)")
        browse = QPushButton("Choose…", workspace_box)
        browse.clicked.connect(self._choose_workspace)
        row = QHBoxLayout()
        row.addWidget(self.workspace_edit, 1)
        row.addWidget(browse)
        workspace_layout = QVBoxLayout(workspace_box)
        workspace_layout.addWidget(QLabel(f"Open now: {app.workspace.root}"))
        workspace_layout.addLayout(row)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        general = QWidget(self)
        general_layout = QVBoxLayout(general)
        for widget in (reviewer_box, thresholds_box, monitoring_box, secrets_box, workspace_box):
            general_layout.addWidget(widget)
        general_layout.addStretch(1)
        self.learning = LearningPanel(app, self)
        self.learning.thresholds_applied.connect(self._thresholds_applied)
        self.learning.calibration_changed.connect(self.calibration_changed)
        self.tabs = QTabWidget(self)
        self.team_database = TeamDatabasePanel(app, self)
        self.tabs.addTab(general, "General")
        self.tabs.addTab(self.learning, "Learning")
        self.tabs.addTab(self.team_database, "Team database")
        # Team mode: the tenant's thresholds and calibration are an admin's (issue 17); shown, not editable.
        self.admin_lock = RoleLock(app.permissions, TeamRole.ADMIN, self)
        self.admin_lock.lock(
            self.link_spin,
            self.review_spin,
            self.learning.refit_button,
            self.learning.revert_button,
            self.learning.apply_button,
            self.rotation_spin,  # the credential rotation period: connectors and secrets are an admin's
        )
        # The monitoring settings are the tenant's too: a viewer's write would be refused.
        self.analyst_lock = RoleLock(app.permissions, TeamRole.ANALYST, self)
        self.analyst_lock.lock(self.window_spin, self.max_hours_spin)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.buttons)

    @staticmethod
    def _spin(value: float, parent: QWidget) -> QDoubleSpinBox:
        spin = QDoubleSpinBox(parent)
        spin.setRange(0.0, 1.0)
        spin.setDecimals(2)
        spin.setSingleStep(0.05)
        spin.setValue(value)
        return spin

    def _choose_workspace(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Workspace folder", self.workspace_edit.text())
        if folder:
            self.workspace_edit.setText(folder)

    def thresholds(self) -> Thresholds:
        return Thresholds(existing=self.link_spin.value(), partial=self.review_spin.value())

    def monitoring(self) -> MonitoringSettings:
        return MonitoringSettings(
            correlation_window_minutes=self.window_spin.value(),
            max_incident_hours=self.max_hours_spin.value(),
        )

    def secrets(self) -> SecretSettings:
        return SecretSettings(secret_rotation_days=self.rotation_spin.value())

    def save(self) -> None:
        try:
            thresholds = self.thresholds()
        except ValueError as exc:
            self.thresholds_error.setText(str(exc))
            return
        self._settings.setValue(REVIEWER_KEY, self.reviewer_edit.text().strip())
        workspace_text = self.workspace_edit.text().strip()
        if workspace_text and Path(workspace_text) != self._app.workspace.root:
            self._settings.setValue(WORKSPACE_KEY, workspace_text)
        self._app.reviewer_name = reviewer_name(self._settings)
        changed: list[SettingsSection] = []
        if thresholds != self._initial:
            changed.append(thresholds)
        if self.monitoring() != self._initial_monitoring:  # applies to the next sync's alerts
            changed.append(self.monitoring())
        if self.secrets() != self._initial_secrets:  # the next alert evaluation uses it
            changed.append(self.secrets())
        if not changed:
            self.accept()
            return
        self.buttons.setEnabled(False)
        self._app.runner.run(
            save_tenant_sections,
            self._app.sessions,
            changed,
            self._app.reviewer(),
            title="Saving the tenant's settings",
            on_done=self._saved,
            on_error=self._failed,
        )

    def _thresholds_applied(self, thresholds: Thresholds) -> None:
        """The advisor stored new thresholds: shown here, so a later Save does not put the old ones back."""
        self._initial = thresholds
        self.link_spin.setValue(thresholds.existing)
        self.review_spin.setValue(thresholds.partial)
        self.thresholds_saved.emit(thresholds)

    def _saved(self, saved: tuple[SettingsSection, ...]) -> None:
        for value in saved:
            if isinstance(value, Thresholds):
                self.thresholds_saved.emit(value)
        self.accept()

    def _failed(self, exc: Exception, _traceback_text: str) -> None:
        self.buttons.setEnabled(True)
        self.thresholds_error.setText(f"Could not save the settings: {describe_error(exc)}")
