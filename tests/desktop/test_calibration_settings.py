"""Settings > Learning (issue 12, items 4 and 5): calibration versions with their figures, a refit in the
background, a revert that asks first, and the threshold advisor's one-click apply. Real store, real model,
headless Qt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtTest import QAbstractItemModelTester
from PySide6.QtWidgets import QDialogButtonBox
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.matching.calibration import PlattCalibrator, calibrator_from_dict
from core.matching.embedding import SentenceTransformerEmbedder
from core.matching.engine import load_default_calibrator
from core.matching.tenant_calibration import load_active_calibrator, stale_analysis_count
from core.monitoring.settings import MonitoringSettings
from core.resources import default_calibration_path
from core.settings import Thresholds, load_settings
from core.store.models import AuditEvent, CalibrationVersion
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from desktop.background.tasks import TaskRunner
from desktop.context import AppContext
from desktop.dialogs.settings import SettingsDialog
from desktop.main_window import MainWindow
from tests.helpers.labelled_review import review_like_the_labels

WAIT_MS = 60_000


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings" / "runbook-desk.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def sessions(analysed_demo: Workspace) -> sessionmaker[TenantSession]:
    review_like_the_labels(analysed_demo.session_factory(), 140)
    return analysed_demo.session_factory()


@pytest.fixture
def context(
    analysed_demo: Workspace, sessions: sessionmaker[TenantSession], embedder: SentenceTransformerEmbedder
) -> Iterator[AppContext]:
    runner = TaskRunner()
    yield AppContext(
        analysed_demo, "default", runner, embedder_factory=lambda: embedder, reviewer_name="dana"
    )
    runner.shutdown(WAIT_MS)


def add_overconfident_version(sessions: sessionmaker[TenantSession]) -> int:
    """An active version far too sure of itself: a refit on the analysts' decisions beats it."""
    shipped = load_default_calibrator(default_calibration_path())
    assert isinstance(shipped, PlattCalibrator)
    state = shipped.to_dict()
    state["weights"] = [w * 3 for w in state["weights"]]
    state["intercept"] = state["intercept"] * 3 + 4
    assert isinstance(calibrator_from_dict(state), PlattCalibrator)
    with sessions.begin() as session:
        version = CalibrationVersion(
            calibrator=state, n_decisions=60, n_tickets=60, adopted=True, active=True, fitted_by="earlier"
        )
        session.add(version)
        session.flush()
        return version.id


def open_dialog(qtbot, context: AppContext, settings: QSettings) -> SettingsDialog:
    dialog = SettingsDialog(context, settings)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.learning.loaded, timeout=WAIT_MS):
        dialog.show()
    dialog.tabs.setCurrentWidget(dialog.learning)
    return dialog


def audits(sessions: sessionmaker[TenantSession], action: str) -> list[AuditEvent]:
    with sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_versions_with_figures_and_a_refit_in_the_background(
    qtbot, context: AppContext, settings: QSettings, sessions: sessionmaker[TenantSession]
) -> None:
    earlier = add_overconfident_version(sessions)
    dialog = open_dialog(qtbot, context, settings)
    panel = dialog.learning

    assert f"your calibration version {earlier}" in panel.status_label.text()
    assert "reviewed 140 matches" in panel.status_label.text()
    assert [row.id for row in panel.version_model.rows] == [earlier]
    assert panel.refit_button.isEnabled() and panel.revert_button.isEnabled()
    QAbstractItemModelTester(panel.version_model, QAbstractItemModelTester.FailureReportingMode.Fatal)

    with qtbot.waitSignal(dialog.calibration_changed, timeout=WAIT_MS):
        task = panel.refit()
        assert not panel.refit_button.isEnabled()  # one refit at a time; the dialog stays responsive
        assert task.is_active
    qtbot.waitUntil(lambda: len(panel.version_model.rows) == 2, timeout=WAIT_MS)

    newest, replaced = panel.version_model.rows
    assert (newest.status, replaced.status) == ("in use", "replaced")
    assert panel.progress_label.text() == f"Adopted: version {newest.id}."
    assert panel.note_label.text().startswith(f"Version {newest.id} (in use): Fitted on ")
    assert "mistakes cost" in panel.note_label.text() and "Adopted" in panel.note_label.text()
    logloss = panel.version_model.index(0, panel.version_model.column_index("Log-loss before → after"))
    assert logloss.data() == f"{newest.logloss_before:.3f} → {newest.logloss_after:.3f}"
    assert context.engine().calibrator is not None
    with sessions() as session:
        active = load_active_calibrator(session)
    assert active is not None and context.engine().calibrator.to_dict() == active.to_dict()
    [audit] = audits(sessions, "calibration.refit")
    assert audit.actor == "dana" and audit.entity_id == newest.id


def test_revert_asks_first_then_goes_back(
    qtbot, context: AppContext, settings: QSettings, sessions: sessionmaker[TenantSession]
) -> None:
    version = add_overconfident_version(sessions)
    dialog = open_dialog(qtbot, context, settings)
    panel = dialog.learning

    box = panel.ask_revert()
    assert box is not None and "go back to the shipped calibration" in box.text()
    box.reject()
    qtbot.wait(50)
    with sessions() as session:
        assert load_active_calibrator(session) is not None

    box = panel.ask_revert()
    assert box is not None and panel.revert_confirm_button is not None
    with qtbot.waitSignal(dialog.calibration_changed, timeout=WAIT_MS):
        panel.revert_confirm_button.click()
    qtbot.waitUntil(lambda: panel.version_model.rows[0].status == "reverted", timeout=WAIT_MS)

    assert panel.progress_label.text() == f"Reverted version {version}; in use now: the shipped calibration."
    assert "In use: the shipped calibration" in panel.status_label.text()
    assert not panel.revert_button.isEnabled()
    shipped = load_default_calibrator(default_calibration_path())
    assert shipped is not None and context.engine().calibrator.to_dict() == shipped.to_dict()
    [audit] = audits(sessions, "calibration.revert")
    assert audit.actor == "dana" and audit.after == {"active_version": None}


def test_the_advisor_draws_the_curve_and_applies_its_suggestion_in_one_click(
    qtbot, context: AppContext, settings: QSettings, sessions: sessionmaker[TenantSession]
) -> None:
    dialog = open_dialog(qtbot, context, settings)
    panel = dialog.learning
    state = panel.state
    assert state is not None
    advice = state.advice
    assert advice.suggested is not None, advice.message
    assert panel.advice_label.text() == advice.message
    assert panel.curve.advice is advice
    assert f"suggested {advice.suggested.threshold:.2f}" in panel.curve.summary()
    assert panel.apply_button.isEnabled()

    with (
        qtbot.waitSignal(panel.loaded, timeout=WAIT_MS),  # it reads the curve again afterwards
        qtbot.waitSignal(dialog.thresholds_saved, timeout=WAIT_MS) as saved,
    ):
        panel.apply_button.click()

    applied = saved.args[0]
    assert isinstance(applied, Thresholds) and applied.existing == advice.suggested.threshold
    assert dialog.link_spin.value() == pytest.approx(applied.existing)
    assert dialog.review_spin.value() == pytest.approx(applied.partial)
    with sessions() as session:
        assert load_settings(session, Thresholds) == applied
    [audit] = audits(sessions, "settings.thresholds")
    assert audit.actor == "dana" and audit.after is not None and "advisor" in audit.after
    assert panel.state is not None and panel.state.advice.current == applied
    assert not panel.apply_button.isEnabled()  # the suggestion is the threshold in use
    assert "Link threshold 0.70 -> " in panel.apply_label.text()


def test_a_higher_target_is_recomputed(
    qtbot, context: AppContext, settings: QSettings, sessions: sessionmaker[TenantSession]
) -> None:
    dialog = open_dialog(qtbot, context, settings)
    panel = dialog.learning
    with qtbot.waitSignal(panel.loaded, timeout=WAIT_MS):
        panel.target_spin.setValue(99.0)
    assert panel.state is not None and panel.state.advice.target == pytest.approx(0.99)


def test_the_window_reanalyses_after_a_revert(
    qtbot,
    analysed_demo: Workspace,
    sessions: sessionmaker[TenantSession],
    settings: QSettings,
    embedder: SentenceTransformerEmbedder,
) -> None:
    add_overconfident_version(sessions)
    window = MainWindow(analysed_demo, "default", settings=settings, embedder_factory=lambda: embedder)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: not window.runner.active_tasks(), timeout=WAIT_MS)
    dialog = window.open_settings()
    qtbot.waitUntil(lambda: dialog.learning.state is not None, timeout=WAIT_MS)

    with qtbot.waitSignal(dialog.calibration_changed, timeout=WAIT_MS):
        dialog.learning.revert()
    qtbot.waitUntil(lambda: not window.runner.active_tasks(), timeout=WAIT_MS)

    with sessions() as session:
        assert stale_analysis_count(session) == 0  # the window's analysis re-decided every ticket
    dialog.reject()
    window.close()


def test_the_monitoring_correlation_settings_are_saved_with_the_thresholds_in_one_save(
    qtbot, context: AppContext, settings: QSettings, sessions: sessionmaker[TenantSession]
) -> None:
    """Settings > General > Monitoring alerts (issue 13): the window and the longest incident, audited."""
    dialog = open_dialog(qtbot, context, settings)
    dialog.tabs.setCurrentIndex(0)
    assert (dialog.window_spin.value(), dialog.max_hours_spin.value()) == (10, 24)
    dialog.window_spin.setValue(15)
    dialog.max_hours_spin.setValue(6)
    dialog.link_spin.setValue(0.8)
    dialog.reviewer_edit.setText("dana")
    with qtbot.waitSignal(dialog.thresholds_saved, timeout=WAIT_MS) as saved:
        dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    assert isinstance(saved.args[0], Thresholds) and saved.args[0].existing == pytest.approx(0.8)
    with sessions() as session:
        assert load_settings(session, MonitoringSettings) == MonitoringSettings(15, 6)
    [audit] = audits(sessions, "settings.monitoring")
    assert audit.actor == "dana"
    assert audit.after == {"correlation_window_minutes": 15, "max_incident_hours": 6}
