"""Settings > Learning's work off the GUI thread: reading the calibration versions and the threshold curve,
refitting (scores every reviewed decision: seconds), reverting, applying a suggested threshold.

Each opens its own sessions and returns plain frozen data (:class:`LearningState`, the core's outcome
rows). None re-analyses: the panel says the calibration or thresholds changed, and the window starts its one
analysis job, which picks up exactly the stale tickets (:mod:`core.matching.tenant_calibration`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import sessionmaker

from core.analytics.thresholds import ThresholdAdvice, ThresholdChange, advise_threshold, apply_suggestion
from core.matching.tenant_calibration import (
    CalibrationStatus,
    RefitOutcome,
    RevertOutcome,
    calibration_status,
    refit_calibration,
    reload_engine_calibrator,
    revert_calibration,
)
from core.store.tenancy import TenantSession
from desktop.background.tasks import TaskContext
from desktop.context import AppContext


@dataclass(frozen=True, slots=True)
class LearningState:
    status: CalibrationStatus
    advice: ThresholdAdvice


def load_learning_state(sessions: sessionmaker[TenantSession], target: float | None) -> LearningState:
    """The calibration versions and the advisor's curve at ``target`` precision (None: the setting)."""
    with sessions() as session:
        return LearningState(calibration_status(session), advise_threshold(session, target=target))


def refit_in_background(task: TaskContext, app: AppContext) -> RefitOutcome:
    """Bring the indexes up to date (a decision on an unindexed ticket cannot be scored), then refit."""
    task.report(0, None, "loading the matching model")
    engine = app.engine()
    task.raise_if_cancelled()
    task.report(0, None, "updating the runbook and ticket indexes")
    engine.refresh(progress=task)
    return refit_calibration(engine, app.sessions, app.reviewer(), progress=task)


def revert_in_background(app: AppContext) -> RevertOutcome:
    """Revert the active version and hand the engine the calibration now in use."""
    outcome = revert_calibration(app.sessions, app.reviewer())
    reload_engine_calibrator(app.engine(), app.sessions)
    return outcome


def apply_suggested_threshold(
    sessions: sessionmaker[TenantSession], advice: ThresholdAdvice, actor: str
) -> ThresholdChange:
    with sessions.begin() as session:
        return apply_suggestion(session, advice, actor)
