"""Settings > Learning: the tenant's own calibration and the auto-link threshold advisor (issue 12, items 4
and 5), embedded in :class:`desktop.dialogs.settings.SettingsDialog`.

* **Calibration**: which calibration turns scores into confidence, every fitted version with its held-out
  figures before and after (log-loss: what mistakes cost; calibration error: how far the confidence is from
  how often analysts agreed) and its note in plain words; "Refit now" runs in the background with progress;
  "Revert…" asks first.
* **Threshold advisor**: the precision/coverage curve of the auto-link threshold at a target precision, the
  suggestion in words, and "Apply suggested threshold" (audited).

Everything that reads or writes the store runs on the task runner (:mod:`desktop.background.learning_jobs`).
The panel emits :attr:`LearningPanel.calibration_changed` and :attr:`LearningPanel.thresholds_applied`; the
dialog passes them on and the window re-analyses (the stale analyses are exactly the ones to redo).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.analytics.thresholds import ThresholdAdvice, ThresholdChange
from core.matching.tenant_calibration import CalibrationStatus, RefitOutcome, RevertOutcome, VersionRow
from desktop.background.learning_jobs import (
    LearningState,
    apply_suggested_threshold,
    load_learning_state,
    refit_in_background,
    revert_in_background,
)
from desktop.background.tasks import Task
from desktop.context import AppContext
from desktop.widgets.table_models import Column, RowTableModel
from desktop.widgets.threshold_curve import ThresholdCurve

_NUMBER = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


def _before_after(before: float | None, after: float | None) -> str | None:
    if before is None or after is None:
        return None
    return f"{before:.3f} → {after:.3f}"


VERSION_COLUMNS: tuple[Column[VersionRow], ...] = (
    Column("Version", lambda v: v.id, _NUMBER),
    Column("Fitted", lambda v: v.fitted_at),
    Column("By", lambda v: v.fitted_by),
    Column("Decisions", lambda v: v.n_decisions, _NUMBER),
    Column(
        "Log-loss before → after",
        lambda v: _before_after(v.logloss_before, v.logloss_after),
        _NUMBER,
        tooltip=lambda _v: "What mistakes cost on decisions the fit had not seen (lower is better)",
    ),
    Column(
        "Calibration error before → after",
        lambda v: _before_after(v.ece_before, v.ece_after),
        _NUMBER,
        tooltip=lambda _v: "How far the confidence was from how often you agreed (lower is better)",
    ),
    Column("Status", lambda v: v.status, tooltip=lambda v: v.note),
)


class LearningPanel(QWidget):
    """Calibration versions and the threshold advisor of the window's tenant."""

    loaded = Signal()  # a (re)load finished and the widgets show it
    calibration_changed = Signal()  # a refit was adopted, or a version reverted
    thresholds_applied = Signal(object)  # core.settings.Thresholds, after "Apply suggested threshold"

    def __init__(self, app: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._app = app
        self._state: LearningState | None = None
        self._busy: Task | None = None
        self.revert_box: QMessageBox | None = None
        self.revert_confirm_button: QPushButton | None = None

        calibration_box = QGroupBox("Confidence calibration", self)
        self.status_label = QLabel("Loading…", calibration_box)
        self.status_label.setObjectName("calibrationStatus")
        self.status_label.setWordWrap(True)
        self.note_label = QLabel(calibration_box)
        self.note_label.setObjectName("calibrationNote")
        self.note_label.setWordWrap(True)
        self.version_model: RowTableModel[VersionRow] = RowTableModel(VERSION_COLUMNS, self)
        self.versions_view = QTableView(calibration_box)
        self.versions_view.setModel(self.version_model)
        self.versions_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.versions_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.versions_view.verticalHeader().hide()
        self.versions_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.versions_view.setMinimumHeight(90)
        self.versions_view.setMaximumHeight(150)
        self.versions_view.selectionModel().currentRowChanged.connect(self._show_selected_note)
        self.refit_button = QPushButton("Refit now", calibration_box)
        self.refit_button.setToolTip("Fit a calibration on your decisions; used only if it is better")
        self.refit_button.clicked.connect(self.refit)
        self.revert_button = QPushButton("Revert…", calibration_box)
        self.revert_button.setToolTip("Stop using the active version")
        self.revert_button.clicked.connect(self.ask_revert)
        self.progress_label = QLabel(calibration_box)
        self.progress_label.setObjectName("calibrationProgress")
        self.progress_label.setWordWrap(True)
        calibration_buttons = QHBoxLayout()
        calibration_buttons.addWidget(self.refit_button)
        calibration_buttons.addWidget(self.revert_button)
        calibration_buttons.addWidget(self.progress_label, 1)
        calibration_layout = QVBoxLayout(calibration_box)
        calibration_layout.addWidget(self.status_label)
        calibration_layout.addWidget(self.versions_view)
        calibration_layout.addWidget(self.note_label)
        calibration_layout.addLayout(calibration_buttons)

        advisor_box = QGroupBox("Auto-link threshold advisor", self)
        self.target_spin = QDoubleSpinBox(advisor_box)
        self.target_spin.setRange(50.0, 100.0)
        self.target_spin.setDecimals(0)
        self.target_spin.setSingleStep(1.0)
        self.target_spin.setSuffix(" %")
        self.target_spin.setValue(90.0)
        self.target_spin.setKeyboardTracking(False)
        self.target_spin.valueChanged.connect(lambda _value: self.reload())
        target_row = QHBoxLayout()
        target_row.addWidget(QLabel("Automatic links must be right at least", advisor_box))
        target_row.addWidget(self.target_spin)
        target_row.addWidget(QLabel("of the time (precision)", advisor_box))
        target_row.addStretch(1)
        self.curve = ThresholdCurve(advisor_box)
        self.advice_label = QLabel("Loading…", advisor_box)
        self.advice_label.setObjectName("thresholdAdvice")
        self.advice_label.setWordWrap(True)
        self.apply_button = QPushButton("Apply suggested threshold", advisor_box)
        self.apply_button.setEnabled(False)
        self.apply_button.clicked.connect(self.apply_suggestion)
        self.apply_label = QLabel(advisor_box)
        self.apply_label.setObjectName("thresholdApplied")
        self.apply_label.setWordWrap(True)
        apply_row = QHBoxLayout()
        apply_row.addWidget(self.apply_button)
        apply_row.addWidget(self.apply_label, 1)
        advisor_layout = QVBoxLayout(advisor_box)
        advisor_layout.addLayout(target_row)
        advisor_layout.addWidget(self.curve, 1)
        advisor_layout.addWidget(self.advice_label)
        advisor_layout.addLayout(apply_row)

        layout = QVBoxLayout(self)
        layout.addWidget(calibration_box)
        layout.addWidget(advisor_box, 1)
        app.runner.task_progress.connect(self._progressed)
        self._set_buttons()
        self.reload()

    # --- loading ----------------------------------------------------------------------------------------

    @property
    def state(self) -> LearningState | None:
        return self._state

    def reload(self) -> Task:
        return self._app.runner.run(
            load_learning_state,
            self._app.sessions,
            self.target_spin.value() / 100,
            title="Reading calibration and decisions",
            on_done=self._loaded,
        )

    def _loaded(self, state: LearningState) -> None:
        self._state = state
        self._show_status(state.status)
        self._show_advice(state.advice)
        self._set_buttons()
        self.loaded.emit()

    def _show_status(self, status: CalibrationStatus) -> None:
        decisions = status.approvals + status.rejections
        lines = [
            status.in_use,
            f"Your analysts have reviewed {decisions:,} matches ({status.approvals:,} approved, "
            f"{status.rejections:,} rejected).",
            "A refit can run now."
            if status.eligible
            else f"Not enough for a refit yet: {status.not_eligible_because}.",
        ]
        if status.stale_analyses:
            lines.append(
                f"{status.stale_analyses:,} tickets still carry a confidence from the previous calibration; "
                "the next analysis re-decides them."
            )
        self.status_label.setText(" ".join(lines))
        self.version_model.set_rows(status.versions)
        shown = status.active or (status.versions[0] if status.versions else None)
        self.note_label.setText(self._note(shown))

    @staticmethod
    def _note(version: VersionRow | None) -> str:
        if version is None:
            return ""
        return f"Version {version.id} ({version.status}): {version.note}"

    def _show_selected_note(self) -> None:
        index = self.versions_view.currentIndex()
        if index.isValid():
            self.note_label.setText(self._note(self.version_model.row_at(index)))

    def _show_advice(self, advice: ThresholdAdvice) -> None:
        self.curve.set_advice(advice)
        self.advice_label.setText(advice.message)

    def _set_buttons(self) -> None:
        status = self._state.status if self._state else None
        idle = self._busy is None or not self._busy.is_active
        self.refit_button.setEnabled(idle and status is not None and status.eligible)
        self.revert_button.setEnabled(idle and status is not None and status.active is not None)
        advice = self._state.advice if self._state else None
        self.apply_button.setEnabled(
            idle
            and advice is not None
            and advice.suggested is not None
            and advice.suggested.threshold != advice.current.existing
        )

    # --- refit ------------------------------------------------------------------------------------------

    def refit(self) -> Task:
        self.progress_label.setText("Refitting on your decisions…")
        self._busy = self._app.runner.run(
            refit_in_background,
            self._app,
            title="Refitting the calibration",
            on_done=self._refitted,
            on_error=self._failed,
            progress=True,
        )
        self._set_buttons()
        return self._busy

    def _progressed(self, task: Task) -> None:
        if self._busy is not None and task.id == self._busy.id and task.progress and task.progress.message:
            self.progress_label.setText(task.progress.message[:1].upper() + task.progress.message[1:] + "…")

    def _finished(self, message: str) -> None:
        self._busy = None
        self.progress_label.setText(message)
        self.reload()

    def _refitted(self, outcome: RefitOutcome) -> None:
        verdict = "Adopted" if outcome.adopted else "Kept, not adopted"
        self._finished(f"{verdict}: version {outcome.version.id}.")
        if outcome.adopted:
            self.calibration_changed.emit()

    def _failed(self, exc: Exception, _traceback_text: str) -> None:
        self._finished(f"Refit failed: {exc}")

    # --- revert -----------------------------------------------------------------------------------------

    def ask_revert(self) -> QMessageBox | None:
        """Ask first (with what comes back); the answer starts the revert."""
        status = self._state.status if self._state else None
        if status is None or status.active is None:
            return None
        previous = next(
            (
                v
                for v in status.versions
                if v.adopted and v.reverted_at is None and v.id < status.active.id and not v.active
            ),
            None,
        )
        back_to = f"your version {previous.id}" if previous else "the shipped calibration"
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Revert calibration",
            f"Stop using calibration version {status.active.id} and go back to {back_to}?\n\n"
            "Every ticket's confidence is computed again with it; your decisions stay as they are. "
            "The version is kept, marked reverted.",
            QMessageBox.StandardButton.NoButton,
            self,
        )
        box.setObjectName("revertCalibrationBox")
        self.revert_confirm_button = box.addButton("Revert", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.buttonClicked.connect(self._revert_answered)
        self.revert_box = box
        box.open()  # not exec(): no nested event loop
        return box

    def _revert_answered(self, button: object) -> None:
        self.revert_box = None
        if button is self.revert_confirm_button:
            self.revert()

    def revert(self) -> Task:
        self.progress_label.setText("Reverting…")
        self._busy = self._app.runner.run(
            revert_in_background,
            self._app,
            title="Reverting the calibration",
            on_done=self._reverted,
            on_error=self._revert_failed,
        )
        self._set_buttons()
        return self._busy

    def _reverted(self, outcome: RevertOutcome) -> None:
        self._finished(outcome.sentence)
        self.calibration_changed.emit()

    def _revert_failed(self, exc: Exception, _traceback_text: str) -> None:
        self._finished(f"Revert failed: {exc}")

    # --- thresholds -------------------------------------------------------------------------------------

    def apply_suggestion(self) -> Task | None:
        advice = self._state.advice if self._state else None
        if advice is None or advice.suggested is None:
            return None
        self.apply_button.setEnabled(False)
        return self._app.runner.run(
            apply_suggested_threshold,
            self._app.sessions,
            advice,
            self._app.reviewer(),
            title="Applying the suggested threshold",
            on_done=self._applied,
            on_error=self._apply_failed,
        )

    def _applied(self, change: ThresholdChange) -> None:
        self.apply_label.setText(change.sentence)
        self.reload()
        if change.changed:
            self.thresholds_applied.emit(change.after)

    def _apply_failed(self, exc: Exception, _traceback_text: str) -> None:
        self.apply_label.setText(f"Could not apply the threshold: {exc}")
        self._set_buttons()
