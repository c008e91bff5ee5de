"""Execution tracking (roadmap: Execution Tracking): did a linked runbook fix its ticket.

An outcome is known from two places:

* the analyst says so (*resolved it / partly / did not help*), in the review page or ``review outcome``:
  :func:`record_outcome`;
* the source system's later history of the ticket, read when it syncs or a file is re-imported: the ticket
  resolved after the link, reopened, or the same problem back on the same configuration item soon after
  (:mod:`core.workflow.outcome_inference`, in the transaction that stores each batch of tickets).

One row per (ticket, runbook, source) in ``runbook_outcomes``; :func:`effective_outcomes` says which one
counts: the analyst's word wins; else an inferred failure (a reopen, a recurrence) wins over an inferred
success, because a ticket that was closed and came back was not fixed. Matching reads it for the weight of
past decisions (a runbook that did not help is a weaker vote); :mod:`core.analytics.outcome_stats` for the
per-runbook success rate, and the Metrics scorecard for its MTTR.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from core.errors import RunbookDeskError
from core.store.models import (
    LinkDecision,
    OutcomeKind,
    OutcomeSource,
    Runbook,
    RunbookOutcome,
    Ticket,
    TicketRunbookLink,
)
from core.store.repository import record_audit
from core.store.tenancy import TenantSession

OUTCOME_ENTITY = "runbook_outcome"  # audit entity_type of an outcome row
# Resolved states that are not a fix: a cancelled ticket proves nothing about the runbook.
NOT_FIXED_STATES = frozenset({"cancelled", "canceled", "closed skipped"})
# Outcome kinds as a success score: the per-runbook success rate is their mean.
OUTCOME_SCORE: Mapping[OutcomeKind, float] = {
    OutcomeKind.RESOLVED: 1.0,
    OutcomeKind.PARTLY: 0.5,
    OutcomeKind.FAILED: 0.0,
}
INFERRED_FAILURES = (OutcomeSource.SOURCE_REOPENED, OutcomeSource.RECURRENCE)


class OutcomeError(RunbookDeskError):
    """An outcome that cannot be recorded (no such ticket, no linked runbook, an unknown runbook)."""


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    ticket_id: int
    runbook_id: int
    outcome: OutcomeKind
    source: OutcomeSource
    recorded_by: str
    recorded_at: datetime


# --------------------------------------------------------------------------------------------------------
# The analyst's outcome
# --------------------------------------------------------------------------------------------------------


def _linked_runbook(session: TenantSession, ticket: Ticket) -> int:
    linked = session.scalars(
        select(TicketRunbookLink.runbook_id)
        .where(TicketRunbookLink.ticket_id == ticket.id, TicketRunbookLink.decision == LinkDecision.LINKED)
        .order_by(TicketRunbookLink.reviewed_at.desc(), TicketRunbookLink.id.desc())
    ).all()
    if not linked:
        raise OutcomeError(f"ticket {ticket.external_id} has no linked runbook: link one before its outcome")
    return linked[0]


def record_outcome(
    session: TenantSession,
    ticket_id: int,
    outcome: OutcomeKind,
    actor: str,
    *,
    runbook_id: int | None = None,
    note: str | None = None,
) -> OutcomeRecord:
    """The analyst's outcome for the ticket's linked runbook (or ``runbook_id``); replaces their earlier one.

    Audited (``outcome.record``) in the caller's transaction, with the previous outcome as ``before``.
    """
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise OutcomeError(f"no ticket with id {ticket_id}")
    if runbook_id is None:
        runbook_id = _linked_runbook(session, ticket)
    elif session.get(Runbook, runbook_id) is None:
        raise OutcomeError(f"no runbook with id {runbook_id}")
    row = session.scalar(
        select(RunbookOutcome).where(
            RunbookOutcome.ticket_id == ticket_id,
            RunbookOutcome.runbook_id == runbook_id,
            RunbookOutcome.source == OutcomeSource.ANALYST,
        )
    )
    before = None if row is None else {"outcome": OutcomeKind(row.outcome).value, "note": row.note}
    now = datetime.now(UTC)
    if row is None:
        row = RunbookOutcome(
            tenant_id=session.tenant_id,
            ticket_id=ticket_id,
            runbook_id=runbook_id,
            source=OutcomeSource.ANALYST,
        )
        session.add(row)
    row.outcome = outcome
    row.note = note
    row.recorded_by = actor
    row.recorded_at = now
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="outcome.record",
        entity_type=OUTCOME_ENTITY,
        entity_id=row.id,
        before=before,
        after={"ticket_id": ticket_id, "runbook_id": runbook_id, "outcome": outcome.value, "note": note},
    )
    return OutcomeRecord(ticket_id, runbook_id, outcome, OutcomeSource.ANALYST, actor, now)


# --------------------------------------------------------------------------------------------------------
# Which outcome counts
# --------------------------------------------------------------------------------------------------------


def decide_outcome(by_source: Mapping[OutcomeSource, OutcomeKind]) -> OutcomeKind | None:
    """The outcome that counts among one pair's rows (module docstring); None when there is none."""
    if OutcomeSource.ANALYST in by_source:
        return by_source[OutcomeSource.ANALYST]
    if any(source in by_source for source in INFERRED_FAILURES):
        return OutcomeKind.FAILED
    return by_source.get(OutcomeSource.SOURCE_RESOLVED)


def effective_outcomes(
    session: TenantSession, ticket_ids: Collection[int] | None = None
) -> dict[tuple[int, int], OutcomeKind]:
    """The outcome that counts per (ticket id, runbook id) (module docstring), for ``ticket_ids`` or all."""
    query = select(
        RunbookOutcome.ticket_id, RunbookOutcome.runbook_id, RunbookOutcome.source, RunbookOutcome.outcome
    )
    if ticket_ids is not None:
        query = query.where(RunbookOutcome.ticket_id.in_(list(ticket_ids)))
    by_pair: dict[tuple[int, int], dict[OutcomeSource, OutcomeKind]] = {}
    for ticket_id, runbook_id, source, outcome in session.execute(query):
        by_pair.setdefault((ticket_id, runbook_id), {})[OutcomeSource(source)] = OutcomeKind(outcome)
    effective: dict[tuple[int, int], OutcomeKind] = {}
    for pair, sources in by_pair.items():
        decided = decide_outcome(sources)
        if decided is not None:
            effective[pair] = decided
    return effective


__all__ = [
    "INFERRED_FAILURES",
    "NOT_FIXED_STATES",
    "OUTCOME_ENTITY",
    "OUTCOME_SCORE",
    "OutcomeError",
    "OutcomeRecord",
    "decide_outcome",
    "effective_outcomes",
    "record_outcome",
]
