"""A tenant's own calibration (issue 12, item 4): the refit math on synthetic decisions through the real
Platt fit, then refits, versions, revert and audits on the analysed demo with the real matcher."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from core.matching.analysis import analyze_pending, count_pending
from core.matching.calibration import (
    BM25_NORMALISED,
    DENSE_COSINE,
    FUSED_SCORE,
    PlattCalibrator,
    calibrator_from_dict,
)
from core.matching.engine import MatchingEngine, open_engine
from core.matching.tenant_calibration import (
    CALIBRATION_ENTITY,
    CalibrationError,
    CalibrationSettings,
    NotEnoughDecisionsError,
    calibration_changed_at,
    calibration_status,
    fit_and_compare,
    grouped_folds,
    load_active_calibrator,
    log_loss,
    refit_calibration,
    reload_engine_calibrator,
    revert_calibration,
    stale_analysis_count,
    training_pairs,
)
from core.settings import save_settings
from core.store.models import AuditEvent, CalibrationVersion
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from tests.helpers.labelled_review import review_like_the_labels
from tests.helpers.progress import RecordingProgress

NAMES = (DENSE_COSINE, BM25_NORMALISED, FUSED_SCORE)
TRUE_WEIGHTS = np.array([6.0, 2.0, 0.0])
TRUE_INTERCEPT = -4.0


def platt(weights: np.ndarray, intercept: float, n_samples: int = 100) -> PlattCalibrator:
    """A calibrator with the given curve, as one restored from JSON would be."""
    calibrator = calibrator_from_dict(
        {
            "kind": "platt",
            "format_version": 1,
            "feature_names": list(NAMES),
            "n_samples": n_samples,
            "weights": [float(w) for w in weights],
            "intercept": intercept,
        }
    )
    assert isinstance(calibrator, PlattCalibrator)
    return calibrator


def synthetic_decisions(seed: int = 7, tickets: int = 150) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1-3 decided runbooks per ticket; approved with the probability the true curve gives."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(1000, 1000 + tickets), rng.integers(1, 4, size=tickets))
    features = rng.uniform(0.0, 1.0, size=(len(groups), 3))
    probability = 1 / (1 + np.exp(-(features @ TRUE_WEIGHTS + TRUE_INTERCEPT)))
    labels = (rng.uniform(size=len(groups)) < probability).astype(np.int64)
    return features, labels, groups


# --- the math ----------------------------------------------------------------------------------------------


def test_grouped_folds_never_split_a_ticket_and_are_deterministic() -> None:
    _features, labels, groups = synthetic_decisions()
    folds = grouped_folds(groups, labels, 5, seed=3)
    for ticket in np.unique(groups):
        assert len(set(folds[groups == ticket].tolist())) == 1, f"ticket {ticket} split over folds"
    assert np.array_equal(folds, grouped_folds(groups, labels, 5, seed=3))
    assert set(folds.tolist()) == {0, 1, 2, 3, 4}
    # The rarer rejections are spread: every fold holds some.
    for fold in range(5):
        assert (labels[folds == fold] == 0).any()
    # Another order of the same rows gives every ticket the same fold.
    order = np.random.default_rng(1).permutation(len(groups))
    shuffled = grouped_folds(groups[order], labels[order], 5, seed=3)
    assert np.array_equal(shuffled, folds[order])


def test_a_refit_that_beats_an_overconfident_calibration_is_adopted() -> None:
    features, labels, groups = synthetic_decisions()
    overconfident = platt(TRUE_WEIGHTS * 2.5, TRUE_INTERCEPT * 2.5)

    result = fit_and_compare(features, labels, groups, overconfident)

    assert result.adopted
    assert result.logloss_after < result.logloss_before
    assert result.ece_after < result.ece_before
    assert result.n_decisions == len(labels)
    assert result.n_tickets == len(np.unique(groups))
    assert (result.n_approved, result.n_rejected) == (int(labels.sum()), int((labels == 0).sum()))
    assert result.logloss_before == pytest.approx(log_loss(overconfident.predict(features), labels))
    # The candidate is a real Platt fit over the same features, close to the curve that made the labels.
    assert isinstance(result.calibrator, PlattCalibrator)
    assert result.calibrator.feature_names == NAMES
    assert result.calibrator.n_samples == len(labels)
    assert result.calibrator.weights[0] > result.calibrator.weights[2]


def test_a_refit_that_does_not_beat_the_calibration_in_use_is_refused() -> None:
    features, labels, groups = synthetic_decisions()
    truth = platt(TRUE_WEIGHTS, TRUE_INTERCEPT)  # the curve the decisions were drawn from

    result = fit_and_compare(features, labels, groups, truth)

    assert result.logloss_after > result.logloss_before
    assert not result.adopted


def test_the_figures_are_the_same_for_the_same_decisions() -> None:
    features, labels, groups = synthetic_decisions()
    current = platt(TRUE_WEIGHTS * 2.5, TRUE_INTERCEPT * 2.5)
    first = fit_and_compare(features, labels, groups, current)
    second = fit_and_compare(features, labels, groups, current)
    assert (first.logloss_after, first.ece_after) == (second.logloss_after, second.ece_after)


def test_a_refit_needs_both_approvals_and_rejections() -> None:
    features, labels, groups = synthetic_decisions()
    with pytest.raises(NotEnoughDecisionsError, match="both kinds"):
        fit_and_compare(features, np.ones_like(labels), groups, platt(TRUE_WEIGHTS, TRUE_INTERCEPT))
    with pytest.raises(ValueError, match="one row per decision"):
        fit_and_compare(features[:-1], labels, groups, platt(TRUE_WEIGHTS, TRUE_INTERCEPT))


# --- on a real store, with the real matcher ----------------------------------------------------------------


@pytest.fixture
def demo_sessions(analysed_demo: Workspace) -> sessionmaker[TenantSession]:
    return analysed_demo.session_factory()


@pytest.fixture
def engine(analysed_demo: Workspace, embedder) -> MatchingEngine:
    engine = open_engine(analysed_demo, "default", embedder)
    engine.refresh()
    return engine


def overconfident_copy(engine: MatchingEngine) -> PlattCalibrator:
    """The shipped curve made far too sure of itself (a calibration a tenant's decisions should beat)."""
    shipped = engine.calibrator
    assert isinstance(shipped, PlattCalibrator)
    state = shipped.to_dict()
    state["weights"] = [w * 3 for w in state["weights"]]
    state["intercept"] = state["intercept"] * 3 + 4
    calibrator = calibrator_from_dict(state)
    assert isinstance(calibrator, PlattCalibrator)
    return calibrator


def audit_rows(sessions: sessionmaker[TenantSession], action: str) -> list[AuditEvent]:
    with sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_too_few_decisions_refuse_a_refit_and_store_nothing(
    demo_sessions: sessionmaker[TenantSession], engine: MatchingEngine
) -> None:
    approvals, rejections = review_like_the_labels(demo_sessions, 30)
    with demo_sessions() as session:
        status = calibration_status(session)
    assert (status.approvals, status.rejections) == (approvals, rejections)
    assert not status.eligible and "a refit needs 50" in (status.not_eligible_because or "")

    with pytest.raises(NotEnoughDecisionsError, match="a refit needs 50"):
        refit_calibration(engine, demo_sessions, "admin")
    with demo_sessions() as session:
        assert session.scalar(select(func.count()).select_from(CalibrationVersion)) == 0


def test_refit_adopts_a_better_calibration_keeps_every_version_and_reverts(
    demo_sessions: sessionmaker[TenantSession], engine: MatchingEngine, analysed_demo: Workspace, embedder
) -> None:
    approvals, rejections = review_like_the_labels(demo_sessions, 140)
    assert approvals >= 5 and rejections >= 5, (approvals, rejections)
    with demo_sessions() as session:
        pairs = training_pairs(session)
    explicit = [pair for pair in pairs if not pair.passed_over]
    assert (sum(p.label for p in explicit), len(explicit) - sum(p.label for p in explicit)) == (
        approvals,
        rejections,
    )
    passed_over = [pair for pair in pairs if pair.passed_over]
    approved_tickets = {pair.ticket_id for pair in explicit if pair.label == 1}
    assert passed_over, "the suggestions shown beside an approval are negatives too"
    assert all(pair.label == 0 and pair.ticket_id in approved_tickets for pair in passed_over)
    engine.calibrator = overconfident_copy(engine)
    progress = RecordingProgress()

    adopted = refit_calibration(engine, demo_sessions, "admin", progress=progress)

    assert adopted.adopted, adopted.version.note
    assert adopted.version.active and adopted.version.status == "in use"
    assert adopted.version.n_decisions + adopted.skipped_pairs == len(pairs)
    assert adopted.version.logloss_after is not None and adopted.version.logloss_before is not None
    assert adopted.version.logloss_after < adopted.version.logloss_before
    assert "Adopted" in adopted.version.note and "your decisions" in adopted.version.note
    assert engine.calibrator is adopted.result.calibrator
    assert progress.reports[-1][0] == progress.reports[-1][1]
    [refit_audit] = audit_rows(demo_sessions, "calibration.refit")
    assert refit_audit.entity_type == CALIBRATION_ENTITY and refit_audit.entity_id == adopted.version.id
    assert refit_audit.actor == "admin"
    assert refit_audit.after is not None and refit_audit.after["adopted"] is True
    # A new engine on this workspace picks the tenant's version up.
    with demo_sessions() as session:
        active = load_active_calibrator(session)
        assert active is not None and active.to_dict() == adopted.result.calibrator.to_dict()
        changed_at = calibration_changed_at(session)
        assert changed_at is not None
        assert stale_analysis_count(session) > 0  # every analysis predates the new calibration
    assert open_engine(analysed_demo, "default", embedder).calibrator.to_dict() == active.to_dict()
    assert count_pending(engine, demo_sessions) > 0
    analyze_pending(engine, demo_sessions)  # re-decides exactly the stale ones
    with demo_sessions() as session:
        assert stale_analysis_count(session) == 0
    assert count_pending(engine, demo_sessions) == 0

    # The same decisions again: a candidate fitted on them cannot beat the version fitted on them all.
    refused = refit_calibration(engine, demo_sessions, "admin")
    assert not refused.adopted
    assert "Not adopted" in refused.version.note and f"version {adopted.version.id}" in refused.version.note
    assert engine.calibrator is adopted.result.calibrator
    with demo_sessions() as session:
        status = calibration_status(session)
    assert [v.id for v in status.versions] == [refused.version.id, adopted.version.id]
    assert [v.status for v in status.versions] == ["not adopted", "in use"]
    assert status.active is not None and status.active.id == adopted.version.id

    reverted = revert_calibration(demo_sessions, "admin")
    assert reverted.reverted.id == adopted.version.id and reverted.now_active is None
    shipped = reload_engine_calibrator(engine, demo_sessions)
    assert (
        shipped is not None
        and shipped.to_dict() == open_engine(analysed_demo, "default", embedder).calibrator.to_dict()
    )
    with demo_sessions() as session:
        assert load_active_calibrator(session) is None
        assert [v.status for v in calibration_status(session).versions] == ["not adopted", "reverted"]
        assert stale_analysis_count(session) > 0  # the revert re-decides too
    [revert_audit] = audit_rows(demo_sessions, "calibration.revert")
    assert revert_audit.before == {"active_version": adopted.version.id}
    assert revert_audit.after == {"active_version": None}
    with pytest.raises(CalibrationError, match="no version to revert"):
        revert_calibration(demo_sessions, "admin")
    assert len(audit_rows(demo_sessions, "calibration.refit")) == 2


def test_revert_goes_back_to_the_previous_adopted_version(demo_sessions: sessionmaker[TenantSession]) -> None:
    first = platt(TRUE_WEIGHTS, TRUE_INTERCEPT)
    second = platt(TRUE_WEIGHTS * 2, TRUE_INTERCEPT)
    with demo_sessions.begin() as session:  # as two adopted refits leave them
        for calibrator, active in ((first, False), (second, True)):
            session.add(
                CalibrationVersion(
                    calibrator=calibrator.to_dict(),
                    n_decisions=60,
                    n_tickets=55,
                    adopted=True,
                    active=active,
                    fitted_by="admin",
                )
            )
    with demo_sessions() as session:
        loaded = load_active_calibrator(session)
        assert loaded is not None and loaded.to_dict() == second.to_dict()

    outcome = revert_calibration(demo_sessions, "admin")

    assert outcome.now_active is not None and outcome.now_active.status == "in use"
    with demo_sessions() as session:
        loaded = load_active_calibrator(session)
        assert loaded is not None and loaded.to_dict() == first.to_dict()
    assert revert_calibration(demo_sessions, "admin").now_active is None
    with demo_sessions() as session:
        assert load_active_calibrator(session) is None


def test_a_version_on_features_the_matcher_no_longer_computes_falls_back(
    demo_sessions: sessionmaker[TenantSession], caplog: pytest.LogCaptureFixture
) -> None:
    old = PlattCalibrator(("retired_feature",)).fit([0.1, 0.9, 0.2, 0.8], [0, 1, 0, 1])
    with demo_sessions.begin() as session:
        session.add(
            CalibrationVersion(
                calibrator=old.to_dict(), n_decisions=4, n_tickets=4, adopted=True, active=True, fitted_by="x"
            )
        )
    with demo_sessions() as session:
        assert load_active_calibrator(session, known_features=NAMES) is None
    assert "retired_feature" in caplog.text


def test_calibration_settings_validate() -> None:
    with pytest.raises(ValueError, match="2 folds"):
        CalibrationSettings(folds=1)
    with pytest.raises(ValueError, match="min_decisions"):
        CalibrationSettings(min_decisions=5, min_per_class=5)


def test_the_minimum_is_a_tenant_setting(
    demo_sessions: sessionmaker[TenantSession], engine: MatchingEngine
) -> None:
    review_like_the_labels(demo_sessions, 30)
    with demo_sessions.begin() as session:
        save_settings(session, CalibrationSettings(min_decisions=20, min_per_class=3))
    with demo_sessions() as session:
        status = calibration_status(session)
    assert status.eligible and status.min_decisions == 20
    outcome = refit_calibration(engine, demo_sessions, "admin")
    assert outcome.version.n_decisions >= 20
