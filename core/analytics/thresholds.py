"""The auto-link threshold advisor: how precise and how wide automatic linking would be at each threshold,
measured on the tenant's own reviewed decisions, and the lowest threshold that keeps it precise enough.

For a threshold ``t`` over the tickets' latest analyses:

* **coverage(t)**: the share of analysed tickets whose best confidence is ``>= t`` (what would be linked
  automatically);
* **precision(t)**: among the *reviewed* tickets at or above ``t`` (an analyst decided on at least one of
  their links), the share whose best runbook the analyst approved. A ticket whose best runbook was rejected,
  or left aside while the analyst linked another, counts as a mistake: auto-linking it would have been wrong.

The suggestion is the lowest ``t`` on a 0.01 grid (0.05 .. 0.99) with precision ``>= target`` (default 0.90,
the roadmap's "< 10 % false positives") that at least ``min_reviewed`` reviewed tickets support; with fewer
it refuses and says why, as it does when no threshold reaches the target. Precision measured on a handful of
decisions is a guess, and a guessed threshold links thousands of tickets.

Applying writes :class:`core.settings.Thresholds` with one audit row (``settings.thresholds``, the advisor's
evidence in ``after``), in the caller's transaction. The review threshold is lowered only when it must be,
to stay below the new link threshold. Every analysis then records old thresholds, so
:func:`core.matching.analysis.analyze_pending` re-decides every ticket on its next run (the app starts one
at once; the CLI says to run ``analyze``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from sqlalchemy import exists, select

from core.errors import RunbookDeskError
from core.queries import latest_analysis
from core.settings import SettingsSection, Thresholds, load_settings, save_settings
from core.store.models import Analysis, LinkDecision, TicketRunbookLink
from core.store.repository import record_audit
from core.store.tenancy import TenantSession

__all__ = [
    "GRID",
    "AdvisorSettings",
    "CurvePoint",
    "ThresholdAdvice",
    "ThresholdAdvisorError",
    "ThresholdChange",
    "advise_threshold",
    "apply_suggestion",
    "apply_threshold",
]

GRID: tuple[float, ...] = tuple(round(step / 100, 2) for step in range(5, 100))
REVIEW_BAND = 0.05  # a review threshold that must move goes this far below the new link threshold


class ThresholdAdvisorError(RunbookDeskError):
    """Nothing to apply: the advisor refused to suggest (too few decisions, target out of reach)."""


@dataclass(frozen=True, slots=True)
class AdvisorSettings(SettingsSection):
    """The advisor's defaults (tenant setting ``threshold_advisor``)."""

    SECTION: ClassVar[str] = "threshold_advisor"

    target_precision: float = 0.90
    min_reviewed: int = 30  # reviewed tickets at or above a threshold before its precision is trusted

    def __post_init__(self) -> None:
        if not 0.0 < self.target_precision <= 1.0:
            raise ValueError("the target precision must be above 0 and at most 100 %")
        if self.min_reviewed < 1:
            raise ValueError("a suggestion needs at least 1 reviewed ticket")


@dataclass(frozen=True, slots=True)
class CurvePoint:
    threshold: float
    tickets: int  # analysed tickets with best confidence >= threshold
    coverage: float  # tickets / analysed tickets
    reviewed: int  # of those, reviewed by an analyst
    approved: int  # of those, whose best runbook the analyst approved
    precision: float | None  # approved / reviewed; None when nothing reviewed is that high

    def as_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "tickets": self.tickets,
            "coverage": self.coverage,
            "reviewed": self.reviewed,
            "approved": self.approved,
            "precision": self.precision,
        }


@dataclass(frozen=True, slots=True)
class ThresholdAdvice:
    target: float
    min_reviewed: int
    analysed: int  # tickets with an analysis
    reviewed: int  # of those, reviewed
    current: Thresholds
    at_current: CurvePoint
    points: tuple[CurvePoint, ...]  # one per GRID threshold
    suggested: CurvePoint | None
    message: str  # the suggestion, or why there is none, in words

    def as_dict(self) -> dict[str, Any]:
        return {
            "target_precision": self.target,
            "min_reviewed": self.min_reviewed,
            "analysed": self.analysed,
            "reviewed": self.reviewed,
            "current": self.current.to_json(),
            "at_current": self.at_current.as_dict(),
            "suggested": self.suggested.as_dict() if self.suggested else None,
            "message": self.message,
            "curve": [point.as_dict() for point in self.points],
        }


def _ticket_outcomes(session: TenantSession) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per analysed ticket (latest analysis): best confidence, reviewed?, best runbook approved?"""
    latest = latest_analysis()
    reviewed = exists().where(
        TicketRunbookLink.ticket_id == Analysis.ticket_id, TicketRunbookLink.reviewed_at.is_not(None)
    )
    approved = exists().where(
        TicketRunbookLink.ticket_id == Analysis.ticket_id,
        TicketRunbookLink.runbook_id == Analysis.best_runbook_id,
        TicketRunbookLink.decision == LinkDecision.LINKED,
        TicketRunbookLink.reviewed_at.is_not(None),
    )
    rows = session.execute(
        select(Analysis.confidence, reviewed, approved).join(latest, latest.c.analysis_id == Analysis.id)
    ).all()
    confidence = np.array([row[0] for row in rows], dtype=np.float64)
    was_reviewed = np.array([bool(row[1]) for row in rows], dtype=bool)
    was_approved = np.array([bool(row[2]) for row in rows], dtype=bool)
    return confidence, was_reviewed, was_approved


def _point(
    threshold: float, confidence: np.ndarray, reviewed: np.ndarray, approved: np.ndarray
) -> CurvePoint:
    above = confidence >= threshold
    tickets = int(above.sum())
    reviewed_above = int((above & reviewed).sum())
    approved_above = int((above & reviewed & approved).sum())
    return CurvePoint(
        threshold=threshold,
        tickets=tickets,
        coverage=tickets / len(confidence) if len(confidence) else 0.0,
        reviewed=reviewed_above,
        approved=approved_above,
        precision=approved_above / reviewed_above if reviewed_above else None,
    )


def _describe_point(point: CurvePoint, analysed: int) -> str:
    precision = "no reviewed tickets" if point.precision is None else f"{point.precision:.0%} precision"
    return (
        f"{precision} ({point.approved:,} of {point.reviewed:,} reviewed approved), "
        f"{point.coverage:.0%} coverage ({point.tickets:,} of {analysed:,} tickets)"
    )


def advise_threshold(
    session: TenantSession, *, target: float | None = None, min_reviewed: int | None = None
) -> ThresholdAdvice:
    """The precision/coverage curve and the suggested auto-link threshold (module docstring)."""
    settings = load_settings(session, AdvisorSettings)
    target = settings.target_precision if target is None else target
    min_reviewed = settings.min_reviewed if min_reviewed is None else min_reviewed
    AdvisorSettings(target_precision=target, min_reviewed=min_reviewed)  # validates both
    current = load_settings(session, Thresholds)
    confidence, reviewed, approved = _ticket_outcomes(session)
    points = tuple(_point(t, confidence, reviewed, approved) for t in GRID)
    at_current = _point(current.existing, confidence, reviewed, approved)
    supported = [point for point in points if point.reviewed >= min_reviewed]
    suggested = next(
        (p for p in supported if p.precision is not None and p.precision >= target),
        None,
    )
    analysed = len(confidence)
    now = f"Now (link at {current.existing:.2f}): {_describe_point(at_current, analysed)}."
    if suggested is not None:
        message = (
            f"Suggested: link automatically at {suggested.threshold:.2f} or above. Of the "
            f"{suggested.reviewed:,} reviewed tickets there, {suggested.precision or 0:.0%} had their best "
            f"runbook approved (target {target:.0%}); {suggested.coverage:.0%} of the {analysed:,} analysed "
            f"tickets would be linked automatically. {now}"
        )
    elif not supported:
        message = (
            f"Too few reviewed decisions to suggest a threshold: {int(reviewed.sum()):,} tickets reviewed, "
            f"and a threshold needs at least {min_reviewed:,} reviewed tickets at or above it before its "
            f"precision means anything. Review more tickets and ask again. {now}"
        )
    else:
        best = max(supported, key=lambda p: (p.precision or 0.0, -p.threshold))
        message = (
            f"No threshold reaches {target:.0%} precision with at least {min_reviewed:,} reviewed tickets "
            f"above it: the best is {best.precision or 0:.0%} at {best.threshold:.2f} ({best.reviewed:,} "
            f"reviewed). Keep the current threshold, or refit the calibration first. {now}"
        )
    return ThresholdAdvice(
        target=target,
        min_reviewed=min_reviewed,
        analysed=analysed,
        reviewed=int(reviewed.sum()),
        current=current,
        at_current=at_current,
        points=points,
        suggested=suggested,
        message=message,
    )


@dataclass(frozen=True, slots=True)
class ThresholdChange:
    before: Thresholds
    after: Thresholds

    @property
    def changed(self) -> bool:
        return self.before != self.after

    @property
    def sentence(self) -> str:
        if not self.changed:
            return f"The link threshold is already {self.after.existing:.2f}; nothing changed."
        text = f"Link threshold {self.before.existing:.2f} -> {self.after.existing:.2f}"
        if self.after.partial != self.before.partial:
            text += (
                f"; review threshold {self.before.partial:.2f} -> {self.after.partial:.2f}, to stay below it"
            )
        return text + "."


def apply_threshold(
    session: TenantSession, threshold: float, actor: str, *, advice: ThresholdAdvice | None = None
) -> ThresholdChange:
    """Set the tenant's link threshold to ``threshold`` in the caller's transaction, audited with the
    advisor's evidence when ``advice`` is given. The review threshold moves only if it must."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"the link threshold must be above 0 and at most 1, got {threshold}")
    before = load_settings(session, Thresholds)
    partial = before.partial if before.partial < threshold else max(0.0, round(threshold - REVIEW_BAND, 2))
    after = Thresholds(existing=threshold, partial=partial)
    change = ThresholdChange(before, after)
    if not change.changed:
        return change
    save_settings(session, after)  # not audited there: the row below carries the evidence too
    evidence: dict[str, Any] = {}
    if advice is not None:
        evidence = {
            "advisor": {
                "target_precision": advice.target,
                "min_reviewed": advice.min_reviewed,
                "suggested": advice.suggested.as_dict() if advice.suggested else None,
                "analysed": advice.analysed,
                "reviewed": advice.reviewed,
            }
        }
    record_audit(
        session,
        actor=actor,
        action=f"settings.{Thresholds.SECTION}",
        entity_type="tenant",
        entity_id=session.tenant_id,
        before=before.to_json(),
        after=after.to_json() | evidence,
    )
    return change


def apply_suggestion(session: TenantSession, advice: ThresholdAdvice, actor: str) -> ThresholdChange:
    """Apply ``advice``'s suggested threshold; :class:`ThresholdAdvisorError` when it suggested none."""
    if advice.suggested is None:
        raise ThresholdAdvisorError(advice.message)
    return apply_threshold(session, advice.suggested.threshold, actor, advice=advice)
