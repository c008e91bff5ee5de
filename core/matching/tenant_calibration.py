"""A tenant's own calibration: refitted from its analysts' reviewed decisions, adopted only when it is better.

The shipped calibration (``resources/calibration.json``) was fitted on someone else's tickets and runbooks.
Once a tenant's analysts have reviewed enough matches, the same features say more when they are weighed on
the tenant's own decisions. This module does that refit, carefully:

* **Training pairs** are the reviewed links (``ticket_runbook_links.reviewed_at`` set): an approval
  (``linked``) is 1, a rejection (``rejected``, a superseded automatic link included) is 0. So are the
  *passed-over* suggestions: runbooks shown for a ticket whose analyst approved another one are 0 too, as
  the shipped fit counts every shown non-answer. Without them the fit sees only plausible candidates and
  learns to trust the vote far too much (issue 12's bench: the advisor then lowered the threshold to 0.58
  and precision on unseen tickets fell to 0.90). Eligibility counts the explicit decisions only. Links to
  runbooks that are not approved are left out: the matcher never scores them. Each pair's features come from
  :meth:`MatchingEngine.score_pairs`, i.e. what the matcher sees *now* for that ticket and runbook.
* **Eligible** once there are ``CalibrationSettings.min_decisions`` pairs (default 50), with at least
  ``min_per_class`` approvals and as many rejections: a calibrator fitted on approvals only learns nothing.
* **Cross-validated by ticket** (:func:`grouped_folds`): every pair of one ticket lands in the same fold, so
  a ticket's other decisions never teach the model the answer for it. Folds are dealt in a seeded order, so
  the same decisions always give the same figures.
* **Compared** on the same pairs with the calibration in use (the shipped one, or the tenant's active
  version): held-out log-loss and expected calibration error (ECE). The candidate is adopted only when it is
  better on *both*; either way it is kept as a :class:`~core.store.models.CalibrationVersion` row with its
  figures and a note an analyst can read (:func:`describe_refit`).
* **Revert** deactivates the active version and puts back the previous adopted one, or the shipped default.

Every refit and revert writes its audit row in the transaction that stores it.

Re-deciding afterwards: a new calibrator changes every confidence, so every analysis made before the change
is out of date. :func:`calibration_changed_at` is when the calibration in use last changed;
:func:`stale_analysis_count` counts the tickets whose latest analysis is older. The app's refit/revert job
and the CLI re-analyse those tickets right after the change, through the same engine; an interrupted run
leaves them counted as stale (``calibration status`` and Settings say so, ``analyze --all`` redoes them).

The fitting math (:func:`fit_and_compare`) takes plain arrays, so it is tested without a store or a model.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import sessionmaker

from core.errors import RunbookDeskError
from core.matching.calibration import (
    Calibrator,
    PlattCalibrator,
    calibrator_from_dict,
    expected_calibration_error,
)
from core.progress import NO_PROGRESS, Progress, raise_if_cancelled
from core.queries import latest_analysis
from core.settings import SettingsSection, load_settings
from core.store.models import (
    Analysis,
    CalibrationVersion,
    LinkDecision,
    Runbook,
    RunbookStatus,
    TicketRunbookLink,
)
from core.store.repository import record_audit
from core.store.tenancy import TenantSession

if TYPE_CHECKING:  # the engine pulls FAISS; this module names it only for types
    from core.matching.engine import MatchingEngine

__all__ = [
    "CALIBRATION_ENTITY",
    "CalibrationError",
    "CalibrationSettings",
    "CalibrationStatus",
    "NotEnoughDecisionsError",
    "RefitOutcome",
    "RefitResult",
    "RevertOutcome",
    "TrainingPair",
    "VersionRow",
    "analysed_with_current_calibration",
    "calibration_changed_at",
    "calibration_status",
    "describe_refit",
    "fit_and_compare",
    "grouped_folds",
    "load_active_calibrator",
    "log_loss",
    "refit_calibration",
    "reload_engine_calibrator",
    "revert_calibration",
    "stale_analysis_count",
    "training_pairs",
]

log = logging.getLogger(__name__)

CALIBRATION_ENTITY = "calibration_version"  # audit entity_type of a refit or revert
DEFAULT_FOLDS = 5
DEFAULT_SEED = 20270120  # fixed: the same decisions always give the same folds and figures
SCORE_BATCH = 64  # pairs scored per engine call: one vote lookup each, progress between them
LOG_LOSS_EPSILON = 1e-6  # probabilities clipped to [eps, 1 - eps]: one confident mistake costs at most ~14


class CalibrationError(RunbookDeskError):
    """A refit or revert that cannot be done (no calibration to compare with, nothing to revert to)."""


class NotEnoughDecisionsError(CalibrationError):
    """Too few reviewed decisions, or only one kind of them, to fit and check a calibration."""


@dataclass(frozen=True, slots=True)
class CalibrationSettings(SettingsSection):
    """When a tenant's calibration may be refitted, and how it is checked (tenant setting ``calibration``)."""

    SECTION: ClassVar[str] = "calibration"

    min_decisions: int = 50
    min_per_class: int = 5  # approvals and rejections each: fewer cannot be spread over the folds
    folds: int = DEFAULT_FOLDS
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ValueError("cross-validation needs at least 2 folds")
        if self.min_per_class < 2:
            raise ValueError("a refit needs at least 2 approvals and 2 rejections")
        if self.min_decisions < 2 * self.min_per_class:
            raise ValueError("min_decisions must allow min_per_class approvals and rejections")


# --- Training pairs -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrainingPair:
    ticket_id: int
    runbook_id: int
    label: int  # 1: the analyst approved the link, 0: rejected it (or passed it over)
    passed_over: bool = False  # shown for a ticket whose analyst approved another runbook


def training_pairs(session: TenantSession) -> list[TrainingPair]:
    """The tenant's reviewed decisions on approved runbooks, and the suggestions passed over for another
    approved runbook (module docstring), ordered by ticket then runbook."""
    approved_runbook = Runbook.status == RunbookStatus.APPROVED
    rows = session.execute(
        select(TicketRunbookLink.ticket_id, TicketRunbookLink.runbook_id, TicketRunbookLink.decision)
        .join(Runbook, Runbook.id == TicketRunbookLink.runbook_id)
        .where(
            TicketRunbookLink.reviewed_at.is_not(None),
            TicketRunbookLink.decision.in_([LinkDecision.LINKED, LinkDecision.REJECTED]),
            approved_runbook,
        )
    ).all()
    pairs = {
        (ticket_id, runbook_id): TrainingPair(
            ticket_id, runbook_id, 1 if LinkDecision(decision) is LinkDecision.LINKED else 0
        )
        for ticket_id, runbook_id, decision in rows
    }
    approved_tickets = {pair.ticket_id for pair in pairs.values() if pair.label == 1}
    shown = session.execute(
        select(TicketRunbookLink.ticket_id, TicketRunbookLink.runbook_id)
        .join(Runbook, Runbook.id == TicketRunbookLink.runbook_id)
        .where(
            TicketRunbookLink.reviewed_at.is_(None),
            TicketRunbookLink.decision == LinkDecision.SUGGESTED,
            TicketRunbookLink.ticket_id.in_(approved_tickets),
            approved_runbook,
        )
    )
    for ticket_id, runbook_id in shown:
        pairs.setdefault((ticket_id, runbook_id), TrainingPair(ticket_id, runbook_id, 0, passed_over=True))
    return [pairs[key] for key in sorted(pairs)]


def _explicit_counts(pairs: list[TrainingPair]) -> tuple[int, int]:
    """Approvals and rejections an analyst made (passed-over suggestions are not decisions)."""
    explicit = [pair for pair in pairs if not pair.passed_over]
    approvals = sum(pair.label for pair in explicit)
    return approvals, len(explicit) - approvals


def _eligibility(approvals: int, rejections: int, settings: CalibrationSettings) -> str | None:
    """Why these decisions cannot be refitted on, in words; None when they can."""
    total = approvals + rejections
    if total >= settings.min_decisions and min(approvals, rejections) >= settings.min_per_class:
        return None
    have = f"{total:,} reviewed decisions so far ({approvals:,} approvals, {rejections:,} rejections)"
    return (
        f"{have}; a refit needs {settings.min_decisions:,}, with at least {settings.min_per_class} "
        "approvals and as many rejections"
    )


# --- The math -----------------------------------------------------------------------------------------------


def log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of the predicted probabilities: what the mistakes cost (0 is perfect)."""
    clipped = np.clip(np.asarray(probs, dtype=np.float64), LOG_LOSS_EPSILON, 1 - LOG_LOSS_EPSILON)
    observed = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(observed * np.log(clipped) + (1 - observed) * np.log(1 - clipped)))


def grouped_folds(groups: np.ndarray, labels: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """The fold (0 .. n_folds-1) of each row; all rows of one group (a ticket) share one fold.

    Groups holding a rejection are dealt round-robin first, then the rest continue the round, each set in a
    seeded shuffle of the sorted group ids: every fold gets its share of the rarer rejections, and the same
    decisions always give the same folds.
    """
    group_array = np.asarray(groups)
    label_array = np.asarray(labels)
    unique = np.unique(group_array)
    with_rejection = set(np.unique(group_array[label_array == 0]).tolist())
    rng = np.random.default_rng(seed)
    rejected = [g for g in unique.tolist() if g in with_rejection]
    others = [g for g in unique.tolist() if g not in with_rejection]
    order = [*rng.permutation(np.array(rejected, dtype=unique.dtype)).tolist()]
    order += rng.permutation(np.array(others, dtype=unique.dtype)).tolist()
    fold_of = {group: index % n_folds for index, group in enumerate(order)}
    return np.array([fold_of[group] for group in group_array.tolist()], dtype=np.int64)


@dataclass(frozen=True, slots=True)
class RefitResult:
    """A candidate calibrator fitted on every decision, with held-out figures against the one in use."""

    calibrator: Calibrator
    n_decisions: int
    n_tickets: int
    n_approved: int
    n_rejected: int
    folds: int
    logloss_before: float
    logloss_after: float
    ece_before: float
    ece_after: float

    @property
    def adopted(self) -> bool:
        """Better on both counts: its mistakes cost less, and its confidence is closer to the agreement."""
        return self.logloss_after < self.logloss_before and self.ece_after < self.ece_before


def _new_candidate(current: Calibrator) -> Calibrator:
    """A Platt curve over the features the calibration in use reads: Platt's smoothing suits a few
    hundred decisions, and the same features keep the two comparable."""
    return PlattCalibrator(current.feature_names)


def fit_and_compare(
    features: np.ndarray,
    labels: np.ndarray | Sequence[int],
    groups: np.ndarray | Sequence[int],
    current: Calibrator,
    *,
    folds: int = DEFAULT_FOLDS,
    seed: int = DEFAULT_SEED,
) -> RefitResult:
    """Fit a candidate on ``features``/``labels`` and compare it with ``current`` on held-out decisions.

    ``features`` has the columns of ``current.feature_names``; ``groups`` is each row's ticket id. The
    candidate's figures are out-of-fold (each decision predicted by a model fitted without its ticket);
    ``current`` was never fitted on these decisions, so its figures are held-out as they are.
    """
    matrix = np.asarray(features, dtype=np.float64)
    label_array = np.asarray(labels, dtype=np.int64)
    group_array = np.asarray(groups)
    if matrix.ndim != 2 or len(matrix) != len(label_array) or len(group_array) != len(label_array):
        raise ValueError(
            f"features {matrix.shape}, labels {label_array.shape} and groups {group_array.shape} must have "
            "one row per decision"
        )
    approvals = int(label_array.sum())
    rejections = len(label_array) - approvals
    n_tickets = len(np.unique(group_array))
    n_folds = min(folds, n_tickets)
    if approvals == 0 or rejections == 0 or n_folds < 2:
        raise NotEnoughDecisionsError(
            f"{len(label_array)} decisions on {n_tickets} tickets ({approvals} approvals, {rejections} "
            "rejections): a refit needs both kinds, on at least 2 tickets"
        )
    fold_of = grouped_folds(group_array, label_array, n_folds, seed)
    held_out = np.empty(len(label_array), dtype=np.float64)
    for fold in range(n_folds):
        test = fold_of == fold
        train = ~test
        if label_array[train].min() == label_array[train].max():
            raise NotEnoughDecisionsError(
                "too few approvals or rejections to check a refit on decisions it has not seen"
            )
        model = _new_candidate(current).fit(matrix[train], label_array[train])
        held_out[test] = model.predict(matrix[test])
    before = current.predict(matrix)
    return RefitResult(
        calibrator=_new_candidate(current).fit(matrix, label_array),
        n_decisions=len(label_array),
        n_tickets=n_tickets,
        n_approved=approvals,
        n_rejected=rejections,
        folds=n_folds,
        logloss_before=log_loss(before, label_array),
        logloss_after=log_loss(held_out, label_array),
        ece_before=expected_calibration_error(before, label_array),
        ece_after=expected_calibration_error(held_out, label_array),
    )


def _percent_change(before: float, after: float) -> str:
    if before <= 0:
        return "the same" if after <= 0 else "more"
    change = (after - before) / before
    return f"{abs(change):.0%} {'less' if change < 0 else 'more'}"


def describe_refit(result: RefitResult, compared_with: str) -> str:
    """The refit in words an analyst reads in Settings (and the version's stored note)."""
    points_before = round(result.ece_before * 100)
    points_after = round(result.ece_after * 100)
    sentences = [
        f"Fitted on {result.n_decisions:,} of your decisions ({result.n_approved:,} approvals, "
        f"{result.n_rejected:,} rejections, on {result.n_tickets:,} tickets).",
        "Checked on decisions it had not seen (each ticket predicted by a fit made without it): "
        f"mistakes cost {_percent_change(result.logloss_before, result.logloss_after)} than with "
        f"{compared_with} (log-loss {result.logloss_after:.3f} against {result.logloss_before:.3f}); its "
        f"confidence was off from how often you agreed by {points_after} points on average, against "
        f"{points_before} (calibration error {result.ece_after:.3f} against {result.ece_before:.3f}).",
    ]
    if result.adopted:
        sentences.append("Adopted: it is better on both counts.")
    else:
        sentences.append(
            f"Not adopted: it has to beat {compared_with} on both counts; {compared_with} stays."
        )
    return " ".join(sentences)


# --- Versions -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VersionRow:
    """One fitted version as plain data (Settings and the CLI show these, never ORM rows)."""

    id: int
    fitted_at: datetime
    fitted_by: str
    n_decisions: int
    n_tickets: int
    logloss_before: float | None
    logloss_after: float | None
    ece_before: float | None
    ece_after: float | None
    adopted: bool
    active: bool
    reverted_at: datetime | None
    note: str

    @property
    def status(self) -> str:
        if self.active:
            return "in use"
        if self.reverted_at is not None:
            return "reverted"
        if self.adopted:
            return "replaced"
        return "not adopted"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fitted_at": self.fitted_at.isoformat(),
            "fitted_by": self.fitted_by,
            "n_decisions": self.n_decisions,
            "n_tickets": self.n_tickets,
            "logloss_before": self.logloss_before,
            "logloss_after": self.logloss_after,
            "ece_before": self.ece_before,
            "ece_after": self.ece_after,
            "adopted": self.adopted,
            "active": self.active,
            "reverted_at": self.reverted_at.isoformat() if self.reverted_at else None,
            "status": self.status,
            "note": self.note,
        }


def _version_row(version: CalibrationVersion) -> VersionRow:
    return VersionRow(
        id=version.id,
        fitted_at=version.fitted_at,
        fitted_by=version.fitted_by,
        n_decisions=version.n_decisions,
        n_tickets=version.n_tickets,
        logloss_before=version.logloss_before,
        logloss_after=version.logloss_after,
        ece_before=version.ece_before,
        ece_after=version.ece_after,
        adopted=bool(version.adopted),
        active=bool(version.active),
        reverted_at=version.reverted_at,
        note=version.note or "",
    )


def _active_version(session: TenantSession) -> CalibrationVersion | None:
    return session.scalar(
        select(CalibrationVersion)
        .where(CalibrationVersion.active.is_(True))
        .order_by(CalibrationVersion.id.desc())
        .limit(1)
    )


def _name(version: CalibrationVersion | VersionRow | None) -> str:
    return "the shipped calibration" if version is None else f"your calibration version {version.id}"


def load_active_calibrator(
    session: TenantSession, *, known_features: Collection[str] | None = None
) -> Calibrator | None:
    """The tenant's active calibrator, or None (the shipped default applies).

    ``known_features``: the features this build's matcher computes. A version fitted on a feature it no
    longer computes (or stored damaged) cannot be applied; it is skipped with a warning, not fatal: the
    matcher keeps working on the shipped calibration.
    """
    version = _active_version(session)
    if version is None:
        return None
    try:
        calibrator = calibrator_from_dict(version.calibrator)
    except ValueError as exc:
        log.warning(
            "calibration version %d is not valid (%s); using the shipped calibration", version.id, exc
        )
        return None
    unknown = set(calibrator.feature_names) - set(known_features or calibrator.feature_names)
    if unknown:
        log.warning(
            "calibration version %d uses features this version does not compute (%s); using the shipped "
            "calibration",
            version.id,
            ", ".join(sorted(unknown)),
        )
        return None
    return calibrator


def calibration_changed_at(session: TenantSession) -> datetime | None:
    """When the calibration in use last changed: the latest adoption or revert (None: never changed)."""
    adopted = session.scalar(
        select(func.max(CalibrationVersion.fitted_at)).where(CalibrationVersion.adopted.is_(True))
    )
    reverted = session.scalar(select(func.max(CalibrationVersion.reverted_at)))
    times = [_aware(moment) for moment in (adopted, reverted) if moment is not None]
    return max(times, default=None)


def analysed_with_current_calibration() -> ColumnElement[bool]:
    """SQL: this ``Analysis`` row was made with the calibration in use (after its latest change).

    :func:`core.matching.analysis.analyze_pending` treats an analysis failing this as stale, so a refit or
    revert interrupted before its re-analysis is finished by the next plain ``analyze``.
    """
    adopted = (
        select(func.max(CalibrationVersion.fitted_at))
        .where(CalibrationVersion.adopted.is_(True))
        .scalar_subquery()
    )
    reverted = select(func.max(CalibrationVersion.reverted_at)).scalar_subquery()
    return and_(
        or_(adopted.is_(None), Analysis.analysed_at >= adopted),
        or_(reverted.is_(None), Analysis.analysed_at >= reverted),
    )


def _aware(moment: datetime | str) -> datetime:
    """``max()`` over a UtcDateTime column comes back as SQLite's naive text or datetime; read it as UTC."""
    parsed = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def stale_analysis_count(session: TenantSession) -> int:
    """Tickets whose latest analysis predates the calibration in use (their confidence is out of date)."""
    latest = latest_analysis()
    query = (
        select(func.count())
        .select_from(Analysis)
        .join(latest, latest.c.analysis_id == Analysis.id)
        .where(~analysed_with_current_calibration())
    )
    return session.scalar(query) or 0


@dataclass(frozen=True, slots=True)
class CalibrationStatus:
    """What Settings and ``calibration status`` show."""

    active: VersionRow | None
    versions: tuple[VersionRow, ...]  # newest first
    approvals: int
    rejections: int
    min_decisions: int
    not_eligible_because: str | None
    changed_at: datetime | None
    stale_analyses: int

    @property
    def eligible(self) -> bool:
        return self.not_eligible_because is None

    @property
    def in_use(self) -> str:
        """One sentence: which calibration turns scores into confidence."""
        if self.active is None:
            return "In use: the shipped calibration (the one the app comes with)."
        return (
            f"In use: your calibration version {self.active.id}, fitted on {self.active.n_decisions:,} of "
            f"your decisions on {self.active.fitted_at:%Y-%m-%d} by {self.active.fitted_by}."
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "in_use": self.active.id if self.active else "shipped",
            "summary": self.in_use,
            "approvals": self.approvals,
            "rejections": self.rejections,
            "min_decisions": self.min_decisions,
            "eligible": self.eligible,
            "not_eligible_because": self.not_eligible_because,
            "changed_at": self.changed_at.isoformat() if self.changed_at else None,
            "stale_analyses": self.stale_analyses,
            "versions": [version.as_dict() for version in self.versions],
        }


def calibration_status(session: TenantSession) -> CalibrationStatus:
    settings = load_settings(session, CalibrationSettings)
    pairs = training_pairs(session)
    approvals, rejections = _explicit_counts(pairs)
    versions = tuple(
        _version_row(version)
        for version in session.scalars(select(CalibrationVersion).order_by(CalibrationVersion.id.desc()))
    )
    return CalibrationStatus(
        active=next((version for version in versions if version.active), None),
        versions=versions,
        approvals=approvals,
        rejections=rejections,
        min_decisions=settings.min_decisions,
        not_eligible_because=_eligibility(approvals, rejections, settings),
        changed_at=calibration_changed_at(session),
        stale_analyses=stale_analysis_count(session),
    )


# --- Refit and revert ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefitOutcome:
    version: VersionRow
    result: RefitResult
    skipped_pairs: int  # reviewed decisions the matcher could not score (ticket not indexed yet)

    @property
    def adopted(self) -> bool:
        return self.result.adopted


def _pair_features(
    engine: MatchingEngine, pairs: Sequence[TrainingPair], calibrator: Calibrator, progress: Progress
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features (the calibrator's columns), labels and ticket ids of the pairs the matcher can score now."""
    from core.matching.engine import calibrator_features

    matches = []
    kept: list[TrainingPair] = []
    for start in range(0, len(pairs), SCORE_BATCH):
        raise_if_cancelled(progress, "calibration refit")
        batch = pairs[start : start + SCORE_BATCH]
        scored = engine.score_pairs([(pair.ticket_id, pair.runbook_id) for pair in batch])
        for pair, match in zip(batch, scored, strict=True):
            if match is not None:
                matches.append(match)
                kept.append(pair)
        done = start + len(batch)
        progress.report(done, len(pairs), f"scored {done:,} of {len(pairs):,} reviewed decisions")
    features = (
        calibrator_features(calibrator, matches)
        if matches
        else np.zeros((0, len(calibrator.feature_names)), dtype=np.float64)
    )
    labels = np.array([pair.label for pair in kept], dtype=np.int64)
    groups = np.array([pair.ticket_id for pair in kept], dtype=np.int64)
    return features, labels, groups


def refit_calibration(
    engine: MatchingEngine,
    sessions: sessionmaker[TenantSession],
    actor: str,
    *,
    progress: Progress = NO_PROGRESS,
) -> RefitOutcome:
    """Refit the tenant's calibration from its reviewed decisions; store the version, audited; adopt it
    (and hand it to ``engine``) only when it beats the calibration in use on both held-out figures.

    Raises :class:`NotEnoughDecisionsError` (nothing stored) when the decisions do not allow a refit. The
    caller re-analyses afterwards when the outcome was adopted (module docstring).
    """
    current = engine.calibrator
    if current is None:
        raise CalibrationError(
            "no calibration is in use to compare a refit with (resources/calibration.json)"
        )
    with sessions() as session:
        settings = load_settings(session, CalibrationSettings)
        pairs = training_pairs(session)
        active = _active_version(session)
        compared_with = _name(active)
    reason = _eligibility(*_explicit_counts(pairs), settings)
    if reason is not None:
        raise NotEnoughDecisionsError(reason)
    progress.report(0, len(pairs), "scoring your reviewed decisions")
    features, labels, groups = _pair_features(engine, pairs, current, progress)
    scored_approvals = int(labels.sum())
    reason = _eligibility(scored_approvals, len(labels) - scored_approvals, settings)
    if reason is not None:
        raise NotEnoughDecisionsError(f"of the decisions the matcher can score now, {reason}")
    raise_if_cancelled(progress, "calibration refit")
    progress.report(len(pairs), len(pairs), "fitting and checking the calibration")
    result = fit_and_compare(features, labels, groups, current, folds=settings.folds, seed=settings.seed)
    with sessions.begin() as session:
        previous = _active_version(session)
        if previous is not None and result.adopted:
            previous.active = False
        version = CalibrationVersion(
            tenant_id=session.tenant_id,
            calibrator=result.calibrator.to_dict(),
            n_decisions=result.n_decisions,
            n_tickets=result.n_tickets,
            logloss_before=result.logloss_before,
            logloss_after=result.logloss_after,
            ece_before=result.ece_before,
            ece_after=result.ece_after,
            adopted=result.adopted,
            active=result.adopted,
            note=describe_refit(result, compared_with),
            fitted_by=actor,
            fitted_at=datetime.now(UTC),
        )
        session.add(version)
        session.flush()
        record_audit(
            session,
            actor=actor,
            action="calibration.refit",
            entity_type=CALIBRATION_ENTITY,
            entity_id=version.id,
            before={"active_version": previous.id if previous is not None else None},
            after={
                "version": version.id,
                "adopted": result.adopted,
                "active_version": version.id if result.adopted else (previous.id if previous else None),
                "n_decisions": result.n_decisions,
                "n_tickets": result.n_tickets,
                "logloss_before": result.logloss_before,
                "logloss_after": result.logloss_after,
                "ece_before": result.ece_before,
                "ece_after": result.ece_after,
            },
        )
        row = _version_row(version)
    if result.adopted:
        engine.calibrator = result.calibrator
    return RefitOutcome(row, result, skipped_pairs=len(pairs) - len(labels))


@dataclass(frozen=True, slots=True)
class RevertOutcome:
    reverted: VersionRow
    now_active: VersionRow | None  # None: the shipped calibration

    @property
    def sentence(self) -> str:
        return f"Reverted version {self.reverted.id}; in use now: {_name(self.now_active)}."


def revert_calibration(sessions: sessionmaker[TenantSession], actor: str) -> RevertOutcome:
    """Stop using the active version: the previous adopted version (not itself reverted) comes back, else
    the shipped calibration. Audited. Call :func:`reload_engine_calibrator` and re-analyse afterwards."""
    with sessions.begin() as session:
        active = _active_version(session)
        if active is None:
            raise CalibrationError("the shipped calibration is in use: there is no version to revert")
        previous = session.scalar(
            select(CalibrationVersion)
            .where(
                CalibrationVersion.adopted.is_(True),
                CalibrationVersion.reverted_at.is_(None),
                CalibrationVersion.id < active.id,
            )
            .order_by(CalibrationVersion.id.desc())
            .limit(1)
        )
        active.active = False
        active.reverted_at = datetime.now(UTC)
        if previous is not None:
            previous.active = True
        record_audit(
            session,
            actor=actor,
            action="calibration.revert",
            entity_type=CALIBRATION_ENTITY,
            entity_id=active.id,
            before={"active_version": active.id},
            after={"active_version": previous.id if previous is not None else None},
        )
        session.flush()
        return RevertOutcome(_version_row(active), _version_row(previous) if previous else None)


def reload_engine_calibrator(
    engine: MatchingEngine, sessions: sessionmaker[TenantSession]
) -> Calibrator | None:
    """Give ``engine`` the calibration now in use (the tenant's active version, else the shipped one)."""
    from core.matching.engine import FEATURES, load_default_calibrator
    from core.resources import default_calibration_path

    with sessions() as session:
        calibrator = load_active_calibrator(session, known_features=FEATURES)
    engine.calibrator = calibrator or load_default_calibrator(default_calibration_path())
    return engine.calibrator
