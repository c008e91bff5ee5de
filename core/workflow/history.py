"""A ticket's decision history and the analyst's undo history, both read back from the audit trail.

Why the audit trail and no table of its own: every decision already writes one append-only audit row per link
it changed, with the link's state before and after, in the transaction that made it
(:mod:`core.workflow.review`); the machine's automatic links and the recorded outcomes are audited the same
way. Reading history from there needs no second copy that could drift from what happened, covers decisions
made before this module existed, and survives a restart by construction.

Steps. One decision (approve, reject, link another, draft; on one ticket or a bulk selection) is one *step*.
Its rows share the deciding analyst and the decision's instant, which every decision stamps on each link it
changes (``reviewed_by`` / ``reviewed_at`` in the row's "after" state): that pair is the step's key. An undo
(``review.undo``) restores the links of one step, and each of its rows has as "before" the link as that step
left it, so it names the step it undid by the same key. A step is *live* while no undo row names it. A step's
public id is the id of its first audit row; any of its rows' ids finds it.

Undo history: an actor's live steps, newest first. One whose links no longer are what it left (someone decided
again since) is listed as ``changed_since`` and undoing it is refused (:class:`ReviewConflictError`), as it
always was: restoring it would throw the later decision away. :func:`undo_last` therefore undoes the actor's
newest live step that can still be undone; :func:`undo_step` undoes a named one or refuses. Every undo is the
ordinary :func:`core.workflow.review.undo`, audited in the caller's transaction.

Cost. The queries are written for an index on ``audit_events (entity_type, entity_id)`` and one on
``action`` (a range, not LIKE, so it can use one): with them, a ticket's history and the undo history take
10-25 ms on a 1M-row trail. Without them a ticket's history scans the trail (about 1.6 s at 1M rows, 0.3 s
at 200k), and so does the undo history of an analyst with few decisions; both run on workers.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select

from core.store.models import (
    Analysis,
    AnalysisDecision,
    AuditEvent,
    LinkDecision,
    Runbook,
    RunbookOutcome,
    Ticket,
    TicketRunbookLink,
)
from core.store.repository import LINK_ENTITY, SYSTEM_ACTOR
from core.store.sql import json_field_equals
from core.store.tenancy import TenantSession
from core.workflow.outcomes import OUTCOME_ENTITY
from core.workflow.review import (
    DecisionRecord,
    LinkChange,
    LinkState,
    ReviewConflictError,
    ReviewError,
    reviewed_links,
    undo,
)

UNDO_ACTION = "review.undo"
SUPERSEDE_ACTION = "review.supersede"  # written inside a "link another" or "draft" step, never alone
UNDO_DEPTH = 50  # steps the undo history offers: far more than anyone undoes one by one
_FIRST_BATCH = 64  # audit rows read by the first query of a walk through the trail
_SCAN_BATCH = 512  # and by each one after it
_ID_CHUNK = 500

StepKey = tuple[str, datetime]  # (reviewed_by, reviewed_at) of the links a step changed


class HistoryKind(enum.StrEnum):
    """What one history entry records."""

    AUTO_LINKED = "auto_linked"  # the machine linked the runbook (its confidence was over the threshold)
    AUTO_UNLINKED = "auto_unlinked"  # re-analysis took its own automatic link back
    APPROVED = "approved"
    REJECTED = "rejected"
    LINKED = "linked"  # the analyst linked another runbook than the suggestions
    DRAFTED = "drafted"  # the analyst drafted a new runbook for the ticket, linked to it
    SUPERSEDED = "superseded"  # the machine's automatic link, set aside by the analyst's link or draft
    UNDONE = "undone"
    OUTCOME = "outcome"  # whether the linked runbook fixed the ticket


_KIND_OF_ACTION = {
    "analysis.auto_link": HistoryKind.AUTO_LINKED,
    "analysis.auto_unlink": HistoryKind.AUTO_UNLINKED,
    "review.approve": HistoryKind.APPROVED,
    "review.reject": HistoryKind.REJECTED,
    "review.link_other": HistoryKind.LINKED,
    "review.draft": HistoryKind.DRAFTED,
    SUPERSEDE_ACTION: HistoryKind.SUPERSEDED,
    UNDO_ACTION: HistoryKind.UNDONE,
}
_DONE_TEXT = {  # an undone action, as "undid <text>"
    "review.approve": "the approval of",
    "review.reject": "the rejection of",
    "review.link_other": "the link to",
    "review.draft": "the link to the draft",
    SUPERSEDE_ACTION: "setting aside the automatic link to",
}
_OUTCOME_TEXT = {"resolved": "resolved it", "partly": "partly helped", "failed": "did not help"}


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One thing that happened to one ticket's links; plain data, safe to hand to the GUI thread."""

    audit_id: int  # also finds the step of an analyst's decision (:func:`undo_step`)
    kind: HistoryKind
    actor: str
    at: datetime
    ticket_id: int
    runbook_id: int | None
    runbook_title: str | None  # the runbook's title today; None once the runbook is deleted
    reason: str | None = None  # a rejection's reason, an outcome's note
    confidence: float | None = None  # the machine's confidence, for its automatic links
    outcome: str | None = None  # resolved / partly / failed
    outcome_source: str | None = None  # analyst, or how the source system's history showed it
    undoes: str | None = None  # for an undo: the audit action undone
    undone: bool = False  # an analyst's decision that was undone later

    @property
    def by_machine(self) -> bool:
        return self.actor == SYSTEM_ACTOR

    @property
    def runbook_text(self) -> str:
        if self.runbook_title is not None:
            return f"“{self.runbook_title}”"
        return f"runbook {self.runbook_id}" if self.runbook_id is not None else "no runbook"

    def describe(self) -> str:
        """What happened, as a sentence an analyst reads (who and when are shown beside it)."""
        runbook = self.runbook_text
        outcome = _OUTCOME_TEXT.get(self.outcome or "", self.outcome or "")
        text = {
            HistoryKind.AUTO_LINKED: f"linked automatically to {runbook}",
            HistoryKind.AUTO_UNLINKED: f"took back the automatic link to {runbook} on re-analysis",
            HistoryKind.APPROVED: f"approved {runbook}",
            HistoryKind.REJECTED: f"rejected {runbook}",
            HistoryKind.LINKED: f"linked another runbook: {runbook}",
            HistoryKind.DRAFTED: f"drafted {runbook} for this ticket and linked it",
            HistoryKind.SUPERSEDED: f"set aside the automatic link to {runbook}",
            HistoryKind.UNDONE: f"undid {_DONE_TEXT.get(self.undoes or '', 'a decision on')} {runbook}",
            HistoryKind.OUTCOME: f"outcome of {runbook}: {outcome}",
        }[self.kind]
        if self.kind is HistoryKind.OUTCOME and self.outcome_source not in (None, "analyst"):
            text += f" ({(self.outcome_source or '').replace('_', ' ')})"
        if self.confidence is not None and self.kind in (HistoryKind.AUTO_LINKED, HistoryKind.AUTO_UNLINKED):
            text += f" (confidence {round(self.confidence * 100)} %)"
        if self.reason:
            text += f": {self.reason}" if self.kind is not HistoryKind.OUTCOME else f" ({self.reason})"
        if self.undone:
            text += " (undone)"
        return text


# ----------------------------------------------------------------------------------------------------------
# Reading audit rows
# ----------------------------------------------------------------------------------------------------------


def _state(row: AuditEvent, side: str) -> dict[str, Any]:
    payload = row.after if side == "after" else row.before
    return payload if isinstance(payload, dict) else {}


def _link_json(row: AuditEvent, side: str) -> dict[str, Any] | None:
    link = _state(row, side).get("link")
    return link if isinstance(link, dict) else None


def _ticket_of(row: AuditEvent) -> int | None:
    for side in ("after", "before"):
        ticket_id = _state(row, side).get("ticket_id")
        if isinstance(ticket_id, int):
            return ticket_id
    return None


def _runbook_of(row: AuditEvent) -> int | None:
    for side in ("after", "before"):
        runbook_id = _state(row, side).get("runbook_id")
        if isinstance(runbook_id, int):
            return runbook_id
    return None


def _key(link: dict[str, Any] | None) -> StepKey | None:
    """The step a link state belongs to: who decided it and when (None: no analyst's decision)."""
    if link is None or not link.get("reviewed_by") or not isinstance(link.get("reviewed_at"), str):
        return None
    reviewed_at = datetime.fromisoformat(link["reviewed_at"])
    if reviewed_at.tzinfo is None:
        reviewed_at = reviewed_at.replace(tzinfo=UTC)
    return str(link["reviewed_by"]), reviewed_at


def _decision_key(row: AuditEvent) -> StepKey | None:
    """The step an analyst's decision row belongs to (None for undo rows and anything else)."""
    if not row.action.startswith("review.") or row.action == UNDO_ACTION:
        return None
    return _key(_link_json(row, "after"))


def _undone_key(row: AuditEvent) -> StepKey | None:
    """The step an undo row undid: the link as that step left it is the undo's "before"."""
    return _key(_link_json(row, "before")) if row.action == UNDO_ACTION else None


def _titles(session: TenantSession, runbook_ids: set[int]) -> dict[int, str]:
    if not runbook_ids:
        return {}
    rows = session.execute(select(Runbook.id, Runbook.title).where(Runbook.id.in_(sorted(runbook_ids))))
    return {runbook_id: title for runbook_id, title in rows}


def _ticket_rows(session: TenantSession, ticket_id: int) -> list[AuditEvent]:
    """Every audit row about the ticket's links and outcomes.

    By entity id first (the ticket's links and outcome rows), which stays cheap on a long trail; the JSON of
    undo rows is read only to find a link an undo deleted (a link the undone decision had created).
    """
    link_ids = set(
        session.scalars(select(TicketRunbookLink.id).where(TicketRunbookLink.ticket_id == ticket_id))
    )
    outcome_ids = set(session.scalars(select(RunbookOutcome.id).where(RunbookOutcome.ticket_id == ticket_id)))
    deleted_link_ids = set(
        session.scalars(
            select(AuditEvent.entity_id).where(
                AuditEvent.action == UNDO_ACTION,
                AuditEvent.entity_type == LINK_ENTITY,
                json_field_equals(AuditEvent.after, "ticket_id", ticket_id),
            )
        )
    )
    link_ids |= {link_id for link_id in deleted_link_ids if link_id is not None}
    conditions = []
    if link_ids:
        conditions.append(
            and_(AuditEvent.entity_type == LINK_ENTITY, AuditEvent.entity_id.in_(sorted(link_ids)))
        )
    if outcome_ids:
        conditions.append(
            and_(AuditEvent.entity_type == OUTCOME_ENTITY, AuditEvent.entity_id.in_(sorted(outcome_ids)))
        )
    if not conditions:
        return []
    rows = session.scalars(select(AuditEvent).where(or_(*conditions)).order_by(AuditEvent.id.desc()))
    # A link id SQLite reused after an undo deleted the link may belong to another ticket now.
    return [row for row in rows if _ticket_of(row) == ticket_id]


def decision_history(session: TenantSession, ticket_id: int) -> list[HistoryEntry]:
    """Who decided what about the ticket, newest first: the machine's links, the analysts' decisions and
    undos (a decision later undone says so), and the outcomes recorded."""
    rows = _ticket_rows(session, ticket_id)
    undone_keys = {key for row in rows if (key := _undone_key(row)) is not None}
    titles = _titles(session, {runbook_id for row in rows if (runbook_id := _runbook_of(row)) is not None})
    entries = []
    for row in rows:
        kind = _KIND_OF_ACTION.get(row.action)
        if kind is None and row.entity_type == OUTCOME_ENTITY:
            kind = HistoryKind.OUTCOME
        if kind is None:
            continue  # an action this view does not know (yet): left out rather than mislabelled
        after, after_link = _state(row, "after"), _link_json(row, "after") or {}
        runbook_id = _runbook_of(row)
        key = _decision_key(row)
        confidence = after.get("confidence")
        entries.append(
            HistoryEntry(
                audit_id=row.id,
                kind=kind,
                actor=row.actor,
                at=row.occurred_at,
                ticket_id=ticket_id,
                runbook_id=runbook_id,
                runbook_title=titles.get(runbook_id) if runbook_id is not None else None,
                reason=after_link.get("reason") if kind is HistoryKind.REJECTED else after.get("note"),
                confidence=float(confidence) if isinstance(confidence, int | float) else None,
                outcome=after.get("outcome") if kind is HistoryKind.OUTCOME else None,
                outcome_source=after.get("source") if kind is HistoryKind.OUTCOME else None,
                undoes=after.get("undoes") if kind is HistoryKind.UNDONE else None,
                undone=key is not None and key in undone_keys,
            )
        )
    return entries


# ----------------------------------------------------------------------------------------------------------
# Current decision per ticket (the Tickets page's columns)
# ----------------------------------------------------------------------------------------------------------


class TicketState(enum.StrEnum):
    """Where a ticket stands: an analyst's decision, else what the latest analysis decided."""

    APPROVED = "approved"
    REJECTED = "rejected"
    AUTO_LINKED = "auto_linked"  # linked by the machine, not reviewed yet (to spot-check)
    NEEDS_REVIEW = "needs_review"
    NEEDS_RUNBOOK = "needs_runbook"
    NOT_ANALYSED = "not_analysed"


_STATE_OF_ANALYSIS = {
    AnalysisDecision.LINK_RUNBOOK: TicketState.AUTO_LINKED,
    AnalysisDecision.FLAG_REVIEW: TicketState.NEEDS_REVIEW,
    AnalysisDecision.GENERATE_RUNBOOK: TicketState.NEEDS_RUNBOOK,
}


@dataclass(frozen=True, slots=True)
class TicketDecision:
    """A ticket's decision and the runbook it is about (linked, rejected or suggested)."""

    state: TicketState
    runbook_id: int | None = None
    runbook_title: str | None = None
    decided_by: str | None = None  # the analyst, for an approval or a rejection
    decided_at: datetime | None = None


def ticket_decisions(session: TenantSession, ticket_ids: Sequence[int]) -> dict[int, TicketDecision]:
    """Each ticket's :class:`TicketDecision`; a ticket never analysed nor decided is ``NOT_ANALYSED``."""
    ids = list(dict.fromkeys(ticket_ids))
    decided = reviewed_links(session, ids)
    result = {
        ticket_id: TicketDecision(
            TicketState.APPROVED if reviewed.approved else TicketState.REJECTED,
            reviewed.runbook_id,
            reviewed.runbook_title,
            reviewed.reviewed_by,
            reviewed.reviewed_at,
        )
        for ticket_id, reviewed in decided.items()
    }
    pending = [ticket_id for ticket_id in ids if ticket_id not in result]
    for start in range(0, len(pending), _ID_CHUNK):
        chunk = pending[start : start + _ID_CHUNK]
        latest = (
            select(Analysis.ticket_id, func.max(Analysis.id).label("analysis_id"))
            .where(Analysis.ticket_id.in_(chunk))
            .group_by(Analysis.ticket_id)
            .subquery()
        )
        rows = session.execute(
            select(Analysis.ticket_id, Analysis.decision, Analysis.best_runbook_id, Runbook.title)
            .join(latest, latest.c.analysis_id == Analysis.id)
            .outerjoin(Runbook, Runbook.id == Analysis.best_runbook_id)
        ).all()
        for ticket_id, decision, runbook_id, title in rows:
            state = _STATE_OF_ANALYSIS[AnalysisDecision(decision)]
            if state is TicketState.NEEDS_RUNBOOK:  # the nearest runbook does not fit: name none
                result[ticket_id] = TicketDecision(state)
            else:
                result[ticket_id] = TicketDecision(state, runbook_id, title)
        # The machine's link counts over the analysis' best match (they differ only after a re-analysis).
        auto_links = session.execute(
            select(TicketRunbookLink.ticket_id, TicketRunbookLink.runbook_id, Runbook.title)
            .join(Runbook, Runbook.id == TicketRunbookLink.runbook_id)
            .where(
                TicketRunbookLink.ticket_id.in_(chunk),
                TicketRunbookLink.decision == LinkDecision.LINKED,
                TicketRunbookLink.reviewed_at.is_(None),
            )
        ).all()
        for ticket_id, runbook_id, title in auto_links:
            result[ticket_id] = TicketDecision(TicketState.AUTO_LINKED, runbook_id, title)
    for ticket_id in ids:
        result.setdefault(ticket_id, TicketDecision(TicketState.NOT_ANALYSED))
    return result


# ----------------------------------------------------------------------------------------------------------
# Undo history
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UndoStep:
    """One analyst's decision that was not undone, rebuilt from its audit rows."""

    step_id: int  # the id of the step's first audit row
    record: DecisionRecord  # what :func:`core.workflow.review.undo` takes
    ticket_labels: tuple[str, ...]  # the tickets' external ids, in decision order
    runbook_title: str | None  # the runbook of the step's first link: what a one-ticket step was about
    changed_since: bool  # a link no longer is what the step left: undoing it would be refused

    @property
    def action(self) -> str:
        return self.record.action

    @property
    def actor(self) -> str:
        return self.record.actor

    @property
    def decided_at(self) -> datetime:
        return self.record.decided_at

    @property
    def subject(self) -> str:
        """What the step was about: "INC0010042 → “VPN …”", or "3 tickets"."""
        if len(self.ticket_labels) == 1:
            label = self.ticket_labels[0]
            return f"{label} → “{self.runbook_title}”" if self.runbook_title else label
        return f"{len(self.ticket_labels)} tickets"


def _is_review_action() -> ColumnElement[bool]:
    """``action`` starts with "review.", as a range: unlike LIKE, a range can use an index on ``action``."""
    return and_(AuditEvent.action >= "review.", AuditEvent.action < "review/")


def _rows(
    session: TenantSession, *, after_id: int | None = None, before_id: int | None = None, reviews: bool
) -> Iterator[AuditEvent]:
    """Audit rows in id order (newest first when ``before_id`` is given or neither bound is), in batches.

    ``reviews``: only the analysts' decision and undo rows on links (the undo history's walk). Without it, a
    step's neighbours: its rows are contiguous (one transaction), so the walk stops at the first other row
    and never reads far.
    """
    backwards = after_id is None
    cursor = before_id if backwards else after_id
    size = _FIRST_BATCH  # most walks end early (a step's edge, enough live steps): read little at first
    while True:
        query = select(AuditEvent)
        if reviews:
            query = query.where(AuditEvent.entity_type == LINK_ENTITY, _is_review_action())
        if cursor is not None:
            query = query.where(AuditEvent.id < cursor if backwards else AuditEvent.id > cursor)
        order = AuditEvent.id.desc() if backwards else AuditEvent.id
        batch = list(session.scalars(query.order_by(order).limit(size)))
        yield from batch
        if len(batch) < size:
            return
        cursor = batch[-1].id
        size = _SCAN_BATCH


def _change_of(row: AuditEvent) -> LinkChange:
    before = _link_json(row, "before")
    after = _link_json(row, "after")
    ticket_id, runbook_id = _ticket_of(row), _runbook_of(row)
    if after is None or ticket_id is None or runbook_id is None or row.entity_id is None:
        raise ReviewError(f"audit row {row.id} ({row.action}) does not record the link it changed")
    return LinkChange(
        row.entity_id,
        ticket_id,
        runbook_id,
        LinkState.from_json(before) if before is not None else None,
        LinkState.from_json(after),
    )


def _record_of(key: StepKey, rows: Sequence[AuditEvent]) -> DecisionRecord:
    """The :class:`DecisionRecord` a step's rows (oldest first) describe, as the decision returned it."""
    primary = next((row.action for row in rows if row.action != SUPERSEDE_ACTION), rows[0].action)
    return DecisionRecord(primary, key[0], key[1], tuple(_change_of(row) for row in rows))


def _current_states(session: TenantSession, pairs: set[tuple[int, int]]) -> dict[tuple[int, int], LinkState]:
    states: dict[tuple[int, int], LinkState] = {}
    ticket_ids = sorted({ticket_id for ticket_id, _runbook_id in pairs})
    for start in range(0, len(ticket_ids), _ID_CHUNK):
        links = session.scalars(
            select(TicketRunbookLink).where(
                TicketRunbookLink.ticket_id.in_(ticket_ids[start : start + _ID_CHUNK])
            )
        )
        for link in links:
            pair = (link.ticket_id, link.runbook_id)
            if pair in pairs:
                states[pair] = LinkState.of(link)
    return states


def _steps(session: TenantSession, keyed_rows: list[tuple[StepKey, list[AuditEvent]]]) -> list[UndoStep]:
    """UndoSteps of (key, rows oldest first), in the order given, with labels, titles and the change check."""
    records = [(rows[0].id, _record_of(key, rows)) for key, rows in keyed_rows]
    pairs = {(c.ticket_id, c.runbook_id) for _step_id, record in records for c in record.changes}
    current = _current_states(session, pairs)
    ticket_ids = {ticket_id for ticket_id, _runbook_id in pairs}
    labels: dict[int, str] = {}
    ordered_ids = sorted(ticket_ids)
    for start in range(0, len(ordered_ids), _ID_CHUNK):
        chunk = ordered_ids[start : start + _ID_CHUNK]
        for ticket_id, external_id in session.execute(
            select(Ticket.id, Ticket.external_id).where(Ticket.id.in_(chunk))
        ):
            labels[ticket_id] = external_id
    titles = _titles(session, {record.changes[0].runbook_id for _step_id, record in records})
    steps = []
    for step_id, record in records:
        changed = any(current.get((c.ticket_id, c.runbook_id)) != c.after for c in record.changes)
        steps.append(
            UndoStep(
                step_id=step_id,
                record=record,
                ticket_labels=tuple(labels.get(t, f"ticket {t}") for t in record.ticket_ids),
                runbook_title=titles.get(record.changes[0].runbook_id),
                changed_since=changed,
            )
        )
    return steps


def undo_history(
    session: TenantSession, actor: str | None = None, *, limit: int = UNDO_DEPTH
) -> list[UndoStep]:
    """The live steps (not undone) of ``actor`` (everyone's when None), newest first, at most ``limit``.

    Walks the trail backwards: undo rows are newer than the steps they undo, so by the time a step is met
    every undo of it has been seen. A step's rows are contiguous (one transaction), so a step is complete
    once a row of another step follows it.
    """
    undone: set[StepKey] = set()
    keyed: dict[StepKey, list[AuditEvent]] = {}  # newest step first; its rows newest first
    live = 0
    for row in _rows(session, reviews=True):
        if (key := _undone_key(row)) is not None:
            undone.add(key)
            continue
        if (key := _decision_key(row)) is None:
            continue
        if key not in keyed:
            if live >= limit:
                break  # the limit-th live step is complete: a newer row of another step came after it
            if key not in undone and (actor is None or key[0] == actor):
                live += 1
            keyed[key] = []
        keyed[key].append(row)
    wanted = [
        (key, list(reversed(rows)))
        for key, rows in keyed.items()
        if key not in undone and (actor is None or key[0] == actor)
    ][:limit]
    return _steps(session, wanted)


def find_step(session: TenantSession, audit_id: int) -> UndoStep:
    """The step the audit row ``audit_id`` belongs to (any of its rows), live or not; ReviewError if none."""
    row = session.get(AuditEvent, audit_id)
    key = _decision_key(row) if row is not None and row.entity_type == LINK_ENTITY else None
    if row is None or key is None:
        raise ReviewError(f"audit row {audit_id} is not an analyst's decision")
    first = row
    for earlier in _rows(session, before_id=row.id, reviews=False):
        if _decision_key(earlier) != key:
            break
        first = earlier
    rows = []
    for later in _rows(session, after_id=first.id - 1, reviews=False):
        if _decision_key(later) != key:
            break
        rows.append(later)
    return _steps(session, [(key, rows)])[0]


def is_undone(session: TenantSession, step: UndoStep) -> bool:
    key = (step.actor, step.decided_at)
    for row in _rows(session, after_id=step.step_id, reviews=True):
        if row.action == UNDO_ACTION and _undone_key(row) == key:
            return True
    return False


def undo_step(session: TenantSession, audit_id: int, actor: str) -> tuple[UndoStep, DecisionRecord]:
    """Undo the step of audit row ``audit_id`` (audited, in the caller's transaction).

    Refused when it was undone already (:class:`ReviewError`) or a link changed since
    (:class:`ReviewConflictError`). Returns the step and the undo's own record.
    """
    step = find_step(session, audit_id)
    if is_undone(session, step):
        raise ReviewError(f"{_step_text(step)} was undone already")
    if step.changed_since:
        raise ReviewConflictError(
            f"{_step_text(step)}: a link changed after it (decided again since); not undoing"
        )
    return step, undo(session, step.record, actor)


def undo_last(session: TenantSession, actor: str) -> tuple[UndoStep, DecisionRecord]:
    """Undo ``actor``'s newest decision that can still be undone (audited, in the caller's transaction).

    A newer step of theirs that someone decided over since is passed by (it cannot be undone; the message
    of :class:`ReviewError` when nothing is left says so). Returns the step undone and the undo's record.
    """
    steps = undo_history(session, actor)
    for step in steps:
        if not step.changed_since:
            return step, undo(session, step.record, actor)
    changed = f" ({len(steps)} changed since by a later decision)" if steps else ""
    raise ReviewError(f"{actor} has no decision left to undo{changed}")


def _step_text(step: UndoStep) -> str:
    return f"step {step.step_id} ({step.action} {step.subject} by {step.actor})"


__all__ = [
    "UNDO_DEPTH",
    "HistoryEntry",
    "HistoryKind",
    "TicketDecision",
    "TicketState",
    "UndoStep",
    "decision_history",
    "find_step",
    "is_undone",
    "ticket_decisions",
    "undo_history",
    "undo_last",
    "undo_step",
]
