"""Per-runbook outcome figures (roadmap: Execution Tracking -> success metrics): how often a runbook fixed the
tickets it was linked to, how fast those tickets were resolved compared with tickets that had no runbook,
its latest failures, and whether it needs revising.

Which outcomes count. Per (ticket, runbook) the outcome that counts is :func:`core.workflow.outcomes.
decide_outcome`'s. The analyst's word always counts; an inferred outcome counts only while the runbook is
still linked to the ticket (a source resolution of a ticket whose automatic link was later rejected says
nothing about the runbook).

Success rate: the mean of resolved = 1, partly = 0.5, failed = 0 over the outcomes recorded since the
runbook's current revision was saved: a runbook flagged for revision and then revised starts afresh, so the
flag says something about the text an analyst reads today. The lifetime figures are kept beside it.

MTTR with vs without (lifetime, hours):

* *with*: the tickets whose outcome with this runbook counts and is not a failure, and that are resolved:
  the time the source inference recorded (``time_to_resolve_s``), else ``resolved_at - created_at``;
* *without*: resolved tickets that had no runbook at hand: none linked before their resolution, and no
  outcome recorded for any runbook (history imported before Runbook Desk, tickets nobody covered). Compared
  category by category: the mean of each category's MTTR, weighted by the *with* tickets' category mix, so a
  runbook for quick password resets is not compared with the slow hardware tickets of other categories.

A runbook needs revision when it is not retired, has at least ``revision_min_outcomes`` counted outcomes
since its current revision and a success rate below ``revision_success_rate`` (:class:`OutcomeSettings`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, func, select

from core.settings import OutcomeSettings, load_settings
from core.store.models import (
    LinkDecision,
    OutcomeKind,
    OutcomeSource,
    Runbook,
    RunbookOutcome,
    RunbookRevision,
    RunbookStatus,
    Ticket,
    TicketRunbookLink,
)
from core.store.sql import hours_between
from core.store.tenancy import TenantSession
from core.workflow.outcomes import INFERRED_FAILURES, OUTCOME_SCORE, decide_outcome

LAST_FAILURES = 3  # shown per runbook
NO_CATEGORY = ""  # the category key of tickets without one


@dataclass(frozen=True, slots=True)
class OutcomeFailure:
    """One ticket the runbook did not fix, as the analyst recognises it."""

    ticket_id: int
    external_id: str
    source: OutcomeSource
    recorded_at: datetime
    note: str | None


@dataclass(frozen=True, slots=True)
class RunbookOutcomeStats:
    runbook_id: int
    title: str
    status: str
    revision: int
    revision_saved_at: datetime | None  # outcomes after this count toward the success rate and the flag
    resolved: int  # since the current revision
    partly: int
    failed: int
    lifetime_outcomes: int
    lifetime_success_rate: float | None
    mttr_with_hours: float | None
    with_count: int
    mttr_without_hours: float | None
    without_count: int
    last_failures: tuple[OutcomeFailure, ...]  # newest first, any revision
    needs_revision: bool

    @property
    def outcomes(self) -> int:
        return self.resolved + self.partly + self.failed

    @property
    def success_rate(self) -> float | None:
        """Since the current revision; None without an outcome."""
        return _success_rate(self.resolved, self.partly, self.failed)

    @property
    def mttr_change(self) -> float | None:
        """(with - without) / without: below 0 means the runbook's tickets are resolved faster."""
        if self.mttr_with_hours is None or not self.mttr_without_hours:
            return None
        return (self.mttr_with_hours - self.mttr_without_hours) / self.mttr_without_hours


def _success_rate(resolved: int, partly: int, failed: int) -> float | None:
    count = resolved + partly + failed
    if not count:
        return None
    score = (
        resolved * OUTCOME_SCORE[OutcomeKind.RESOLVED]
        + partly * OUTCOME_SCORE[OutcomeKind.PARTLY]
        + failed * OUTCOME_SCORE[OutcomeKind.FAILED]
    )
    return score / count


@dataclass(frozen=True, slots=True)
class _Counted:
    """One (ticket, runbook) pair's outcome that counts, and the row that decided it."""

    ticket_id: int
    runbook_id: int
    outcome: OutcomeKind
    source: OutcomeSource
    recorded_at: datetime
    note: str | None
    time_to_resolve_s: float | None  # of the pair's source resolution, when there is one


def _counted_outcomes(session: TenantSession, runbook_ids: Collection[int] | None) -> list[_Counted]:
    query = select(RunbookOutcome)
    if runbook_ids is not None:
        query = query.where(RunbookOutcome.runbook_id.in_(list(runbook_ids)))
    by_pair: dict[tuple[int, int], dict[OutcomeSource, RunbookOutcome]] = {}
    for row in session.scalars(query):
        by_pair.setdefault((row.ticket_id, row.runbook_id), {})[OutcomeSource(row.source)] = row
    if not by_pair:
        return []
    linked_query = select(TicketRunbookLink.ticket_id, TicketRunbookLink.runbook_id).where(
        TicketRunbookLink.decision == LinkDecision.LINKED
    )
    if runbook_ids is not None:
        linked_query = linked_query.where(TicketRunbookLink.runbook_id.in_(list(runbook_ids)))
    linked = {(ticket_id, runbook_id) for ticket_id, runbook_id in session.execute(linked_query)}
    counted = []
    for (ticket_id, runbook_id), rows in by_pair.items():
        if (ticket_id, runbook_id) not in linked:
            rows = {source: row for source, row in rows.items() if source is OutcomeSource.ANALYST}
        outcome = decide_outcome({source: OutcomeKind(row.outcome) for source, row in rows.items()})
        if outcome is None:
            continue
        deciding = _deciding_row(rows, outcome)
        success = rows.get(OutcomeSource.SOURCE_RESOLVED)
        counted.append(
            _Counted(
                ticket_id,
                runbook_id,
                outcome,
                OutcomeSource(deciding.source),
                deciding.recorded_at,
                deciding.note,
                success.time_to_resolve_s if success is not None else None,
            )
        )
    return counted


def _deciding_row(rows: Mapping[OutcomeSource, RunbookOutcome], outcome: OutcomeKind) -> RunbookOutcome:
    if OutcomeSource.ANALYST in rows:
        return rows[OutcomeSource.ANALYST]
    if outcome is OutcomeKind.FAILED:
        return max((rows[s] for s in INFERRED_FAILURES if s in rows), key=lambda row: row.recorded_at)
    return rows[OutcomeSource.SOURCE_RESOLVED]


@dataclass(frozen=True, slots=True)
class _TicketTimes:
    external_id: str
    category: str
    hours_to_resolve: float | None


def _ticket_times(session: TenantSession, ticket_ids: Collection[int]) -> dict[int, _TicketTimes]:
    times: dict[int, _TicketTimes] = {}
    ids = sorted(ticket_ids)
    for start in range(0, len(ids), 500):
        query = select(
            Ticket.id, Ticket.external_id, Ticket.category, Ticket.created_at, Ticket.resolved_at
        ).where(Ticket.id.in_(ids[start : start + 500]))
        for ticket_id, external_id, category, created_at, resolved_at in session.execute(query):
            hours = None
            if created_at is not None and resolved_at is not None and resolved_at >= created_at:
                hours = (resolved_at - created_at).total_seconds() / 3600
            times[ticket_id] = _TicketTimes(external_id, _category_key(category), hours)
    return times


def _category_key(category: str | None) -> str:
    return (category or NO_CATEGORY).strip().casefold()


def baseline_mttr_by_category(session: TenantSession) -> dict[str, tuple[float, int]]:
    """(mean hours, tickets) per category of the resolved tickets that had no runbook at hand (module
    docstring), keyed by the lower-case category ("" for none)."""
    hours = hours_between(Ticket.created_at, Ticket.resolved_at)
    linked_before = exists().where(
        TicketRunbookLink.ticket_id == Ticket.id,
        TicketRunbookLink.decision == LinkDecision.LINKED,
        TicketRunbookLink.created_at <= Ticket.resolved_at,
    )
    with_outcome = exists().where(RunbookOutcome.ticket_id == Ticket.id)
    key = func.lower(func.trim(func.coalesce(Ticket.category, NO_CATEGORY)))
    query = (
        select(key, func.avg(hours), func.count())
        .where(
            and_(Ticket.created_at.is_not(None), Ticket.resolved_at.is_not(None)),
            Ticket.resolved_at >= Ticket.created_at,
            ~linked_before,
            ~with_outcome,
        )
        .group_by(key)
    )
    return {category: (float(mean), count) for category, mean, count in session.execute(query)}


def _without(
    with_categories: list[str], baseline: Mapping[str, tuple[float, int]]
) -> tuple[float | None, int]:
    """The baseline MTTR weighted by the categories of the *with* tickets (those with a baseline)."""
    weights: dict[str, int] = {}
    for category in with_categories:
        if category in baseline:
            weights[category] = weights.get(category, 0) + 1
    if not weights:
        return None, 0
    total = sum(weights.values())
    mean = sum(baseline[category][0] * weight for category, weight in weights.items()) / total
    return mean, sum(baseline[category][1] for category in weights)


def _revision_times(session: TenantSession, runbooks: Collection[Runbook]) -> dict[int, datetime]:
    query = select(RunbookRevision.runbook_id, RunbookRevision.revision, RunbookRevision.created_at).where(
        RunbookRevision.runbook_id.in_([runbook.id for runbook in runbooks])
    )
    current = {runbook.id: runbook.current_revision for runbook in runbooks}
    return {
        runbook_id: saved_at
        for runbook_id, revision, saved_at in session.execute(query)
        if current.get(runbook_id) == revision
    }


def runbook_outcome_stats(
    session: TenantSession,
    runbook_ids: Collection[int] | None = None,
    *,
    settings: OutcomeSettings | None = None,
) -> dict[int, RunbookOutcomeStats]:
    """The figures of every runbook with at least one counted outcome (of ``runbook_ids`` only, if given)."""
    settings = settings if settings is not None else load_settings(session, OutcomeSettings)
    counted = _counted_outcomes(session, runbook_ids)
    if not counted:
        return {}
    by_runbook: dict[int, list[_Counted]] = {}
    for outcome in counted:
        by_runbook.setdefault(outcome.runbook_id, []).append(outcome)
    runbooks = list(session.scalars(select(Runbook).where(Runbook.id.in_(list(by_runbook)))))
    saved = _revision_times(session, runbooks)
    times = _ticket_times(session, {outcome.ticket_id for outcome in counted})
    baseline = baseline_mttr_by_category(session)
    stats: dict[int, RunbookOutcomeStats] = {}
    for runbook in runbooks:
        stats[runbook.id] = _runbook_stats(
            runbook, by_runbook[runbook.id], saved.get(runbook.id), times, baseline, settings
        )
    return stats


def _runbook_stats(
    runbook: Runbook,
    outcomes: list[_Counted],
    revision_saved_at: datetime | None,
    times: Mapping[int, _TicketTimes],
    baseline: Mapping[str, tuple[float, int]],
    settings: OutcomeSettings,
) -> RunbookOutcomeStats:
    current = [o for o in outcomes if revision_saved_at is None or o.recorded_at >= revision_saved_at]
    kinds = [o.outcome for o in current]
    lifetime_score = sum(OUTCOME_SCORE[o.outcome] for o in outcomes)
    with_hours: list[float] = []
    with_categories: list[str] = []
    for outcome in outcomes:
        if outcome.outcome is OutcomeKind.FAILED or outcome.ticket_id not in times:
            continue
        ticket = times[outcome.ticket_id]
        hours = (
            outcome.time_to_resolve_s / 3600
            if outcome.time_to_resolve_s is not None
            else ticket.hours_to_resolve
        )
        if hours is not None:
            with_hours.append(hours)
            with_categories.append(ticket.category)
    without_hours, without_count = _without(with_categories, baseline)
    failures = sorted(
        (o for o in outcomes if o.outcome is OutcomeKind.FAILED and o.ticket_id in times),
        key=lambda o: o.recorded_at,
        reverse=True,
    )[:LAST_FAILURES]
    resolved, partly, failed = (
        kinds.count(kind) for kind in (OutcomeKind.RESOLVED, OutcomeKind.PARTLY, OutcomeKind.FAILED)
    )
    rate = _success_rate(resolved, partly, failed)
    return RunbookOutcomeStats(
        runbook_id=runbook.id,
        title=runbook.title,
        status=RunbookStatus(runbook.status).value,
        revision=runbook.current_revision,
        revision_saved_at=revision_saved_at,
        resolved=resolved,
        partly=partly,
        failed=failed,
        lifetime_outcomes=len(outcomes),
        lifetime_success_rate=lifetime_score / len(outcomes),
        mttr_with_hours=sum(with_hours) / len(with_hours) if with_hours else None,
        with_count=len(with_hours),
        mttr_without_hours=without_hours,
        without_count=without_count,
        last_failures=tuple(
            OutcomeFailure(o.ticket_id, times[o.ticket_id].external_id, o.source, o.recorded_at, o.note)
            for o in failures
        ),
        needs_revision=(
            runbook.status != RunbookStatus.RETIRED
            and len(kinds) >= settings.revision_min_outcomes
            and rate is not None
            and rate < settings.revision_success_rate
        ),
    )


def revision_order(stats: RunbookOutcomeStats) -> tuple[float, int, str]:
    """Sort key of flagged runbooks: the lowest success rate first, then the most outcomes (surest first)."""
    return (stats.success_rate or 0.0, -stats.outcomes, stats.title.casefold())


def runbooks_needing_revision(
    session: TenantSession, *, settings: OutcomeSettings | None = None
) -> list[RunbookOutcomeStats]:
    """The runbooks flagged for revision, in :func:`revision_order`."""
    stats = runbook_outcome_stats(session, settings=settings)
    return sorted((item for item in stats.values() if item.needs_revision), key=revision_order)


__all__ = [
    "OutcomeFailure",
    "RunbookOutcomeStats",
    "baseline_mttr_by_category",
    "revision_order",
    "runbook_outcome_stats",
    "runbooks_needing_revision",
]
