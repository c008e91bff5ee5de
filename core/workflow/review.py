"""The review workspace's domain: the queue of tickets awaiting an analyst, their decisions, undo, drafts.

Queue. A ticket is in the queue while its *latest* analysis stands without an analyst's decision, i.e. no
``ticket_runbook_links`` row of the ticket has ``reviewed_at`` set. Order: ``flag_review`` first (a human is
needed), then ``generate_runbook`` (a gap to fill), then ``link_runbook`` (auto-linked, to spot-check). Within
the first two groups the highest confidence comes first (the quickest decisions: likely approvals, nearest
runbooks to extend); among auto-links the *lowest* comes first, because those are the ones most likely wrong.
Filtering, ordering and counting run in SQL: the queue may hold a 100k-ticket backlog.

Decided tickets. The same query shows the tickets an analyst already decided (:class:`ReviewStatus`:
approved, rejected, either), most recently decided first, each row carrying what was decided
(:class:`ReviewedLink`), so a decision can be found again, checked and changed: a decided ticket that
vanished from every list was the complaint (issue 16).

Decisions. ``approve``, ``reject``, ``link_other`` and ``record_draft`` change links and append one
``audit_events`` row per link changed, in the caller's transaction (``with sessions.begin() as session:``),
so a decision is all-or-nothing. Each returns a :class:`DecisionRecord` with every touched link's state
before and after; :func:`undo` puts the "before" back exactly (including an automatic link the analyst
overruled), refuses if the link changed since (:class:`ReviewConflictError`) and is audited itself: the
audit table is append-only, so undo adds history and never deletes it. An undo returns a record too.

Reject semantics: rejecting a suggestion *is* a decision about the ticket, so the ticket leaves the queue
(an analyst who gives a reason expects to move on). A ticket whose best match was rejected and nothing linked
stays uncovered, which is exactly what gap analysis looks for; ``link_other`` and ``record_draft`` exist for
the analyst who knows the better answer. Linking another runbook or a new draft also rejects the machine's
unreviewed *automatic* link on the ticket: the analyst has said it is not the right runbook.

Write-back: every link a decision or an undo changes goes through
:func:`core.workflow.writeback.follow_decision` in the same transaction: an approval of a synced ticket's
link queues its post to the source ticket (when that connector opted in), an undo or reject cancels one not
yet written. The post itself never touches the decision.

Re-analysis (:func:`core.matching.analysis.record_result`) skips links with ``reviewed_at`` set, so decisions
survive;
the ticket stays out of the queue.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from sqlalchemy import ColumnElement, Select, case, func, or_, select
from sqlalchemy.orm import aliased

from core.errors import ConcurrentChangeError, RunbookDeskError
from core.knowledge.enrichment import ARTICLES_FOR_DRAFT, ArticleSearch, steps_from_articles
from core.matching.text import (
    lexical_terms,
    prepare_ticket_text,
    ticket_lexical_text,
    ticket_text,
)
from core.queries import has_link, latest_analysis
from core.settings import Thresholds, load_settings
from core.store.models import (
    Analysis,
    AnalysisDecision,
    LinkDecision,
    Runbook,
    RunbookSection,
    RunbookStatus,
    Ticket,
    TicketRunbookLink,
)
from core.store.repository import (
    LINK_ENTITY,
    RunbookRow,
    TicketRow,
    record_audit,
    runbook_row,
    ticket_row,
)
from core.store.tenancy import TenantSession
from core.workflow.concurrency import changed_text, editor, last_audited_writer, link_write_guard
from core.workflow.draft_steps import candidate_steps, dominant_platform
from core.workflow.drafts import CandidateStep, RunbookDraft
from core.workflow.writeback import follow_decision

if TYPE_CHECKING:  # the engine pulls FAISS; the review rules only name its result types
    from core.matching.articles import ArticleMatch
    from core.matching.engine import RunbookMatch, SimilarTicket
    from core.workflow.history import HistoryEntry

DRAFT_STEP_LIMIT = 6
SIMILAR_FOR_DRAFT = 10


class ReviewError(RunbookDeskError):
    """A decision could not be made: unknown ticket or runbook, nothing to approve."""


class ReviewConflictError(ReviewError, ConcurrentChangeError):
    """Undo refused: a link changed after the decision, so restoring it would overwrite someone's work.
    A :class:`~core.errors.ConcurrentChangeError` too: the page treats both alike (say so, reload)."""


# ----------------------------------------------------------------------------------------------------------
# Queue
# ----------------------------------------------------------------------------------------------------------

DECISION_ORDER: tuple[AnalysisDecision, ...] = (
    AnalysisDecision.FLAG_REVIEW,
    AnalysisDecision.GENERATE_RUNBOOK,
    AnalysisDecision.LINK_RUNBOOK,
)

# Ids per IN (...) list: far below SQLite's variable limit, and a few lists cover the queue's 5,000 rows.
_ID_CHUNK = 500


class ReviewStatus(enum.StrEnum):
    """Which tickets a queue query shows, by what an analyst decided about them."""

    TO_DECIDE = "to_decide"  # no analyst decision yet: the review queue proper
    APPROVED = "approved"  # an analyst linked a runbook (approved a match, linked another, drafted one)
    REJECTED = "rejected"  # an analyst rejected a match and linked none
    DECIDED = "decided"  # approved or rejected


DECIDED_STATUSES: tuple[ReviewStatus, ...] = (
    ReviewStatus.APPROVED,
    ReviewStatus.REJECTED,
    ReviewStatus.DECIDED,
)


@dataclass(frozen=True, slots=True)
class ReviewedLink:
    """What an analyst decided about a ticket, as a decided-ticket row shows it.

    ``runbook_id``/``runbook_title``: the linked runbook when approved, else the (latest) rejected one.
    """

    approved: bool
    runbook_id: int
    runbook_title: str
    reviewed_by: str | None
    reviewed_at: datetime | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class LinkVersions:
    """A ticket's links as the analyst saw them: ``(link id, version)`` pairs, by link id.

    A decision carries the versions its screen showed (:mod:`core.workflow.concurrency`); if the store holds
    anything else by then (a link changed, added or removed by another analyst or a re-analysis), the
    decision is refused with who and when instead of being made on a ticket the analyst has not seen.
    """

    ticket_id: int
    links: tuple[tuple[int, int], ...] = ()


def link_versions(session: TenantSession, ticket_ids: Sequence[int]) -> dict[int, LinkVersions]:
    """The current :class:`LinkVersions` of each ticket (an empty one for a ticket without links)."""
    found: dict[int, list[tuple[int, int]]] = {ticket_id: [] for ticket_id in ticket_ids}
    ids = list(found)
    for start in range(0, len(ids), _ID_CHUNK):
        rows = session.execute(
            select(TicketRunbookLink.ticket_id, TicketRunbookLink.id, TicketRunbookLink.version).where(
                TicketRunbookLink.ticket_id.in_(ids[start : start + _ID_CHUNK])
            )
        ).all()
        for ticket_id, link_id, version in rows:
            found[ticket_id].append((link_id, version))
    return {ticket_id: LinkVersions(ticket_id, tuple(sorted(pairs))) for ticket_id, pairs in found.items()}


@dataclass(frozen=True, slots=True)
class ReviewQueueRow:
    ticket_id: int
    external_id: str
    title: str
    source_system: str
    severity: str | None
    status: str | None
    created_at: datetime | None
    updated_at: datetime | None
    decision: AnalysisDecision
    confidence: float
    best_runbook_id: int | None
    best_runbook_title: str | None
    analysed_at: datetime
    reviewed: ReviewedLink | None = None  # set on decided tickets (a decided-ticket filter)
    seen: LinkVersions | None = None  # the ticket's links as this row was read: a decision carries it

    @property
    def id(self) -> int:
        """The ticket id, under the name the desktop's row helpers select by."""
        return self.ticket_id


@dataclass(frozen=True, slots=True)
class QueueFilters:
    """What the filter bar asks for; empty collections and ``None`` mean "no restriction".

    Confidence bounds are fractions (0..1), inclusive. ``date_from`` is inclusive, ``date_to`` exclusive,
    applied to the ticket's ``created_at`` or ``updated_at`` (the source system's times) per ``date_field``.
    ``text`` matches title, description or external id, case-insensitively, as a plain substring.
    ``status`` chooses between the queue proper (the default) and the tickets already decided.
    """

    decisions: frozenset[AnalysisDecision] = frozenset()
    source_systems: frozenset[str] = frozenset()
    severities: frozenset[str] = frozenset()
    confidence_min: float | None = None
    confidence_max: float | None = None
    date_field: Literal["created", "updated"] = "updated"
    date_from: datetime | None = None
    date_to: datetime | None = None
    text: str = ""
    status: ReviewStatus = ReviewStatus.TO_DECIDE


def _reviewed() -> ColumnElement[bool]:
    return TicketRunbookLink.reviewed_at.is_not(None)


def _undecided() -> ColumnElement[bool]:
    return ~has_link(_reviewed())


def _approved() -> ColumnElement[bool]:
    return has_link(_reviewed(), TicketRunbookLink.decision == LinkDecision.LINKED)


def _rejected() -> ColumnElement[bool]:
    """Rejected, nothing linked ("link another" rejects the machine's link too; that ticket is approved)."""
    return has_link(_reviewed(), TicketRunbookLink.decision == LinkDecision.REJECTED) & ~_approved()


def _status_condition(status: ReviewStatus) -> ColumnElement[bool]:
    if status is ReviewStatus.APPROVED:
        return _approved()
    if status is ReviewStatus.REJECTED:
        return _rejected()
    if status is ReviewStatus.DECIDED:
        return has_link(_reviewed())
    return _undecided()


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _apply_filters(query: Select[Any], filters: QueueFilters, *, with_decisions: bool) -> Select[Any]:
    if with_decisions and filters.decisions:
        query = query.where(Analysis.decision.in_(sorted(filters.decisions)))
    if filters.source_systems:
        query = query.where(Ticket.source_system.in_(sorted(filters.source_systems)))
    if filters.severities:
        query = query.where(Ticket.severity.in_(sorted(filters.severities)))
    if filters.confidence_min is not None:
        query = query.where(Analysis.confidence >= filters.confidence_min)
    if filters.confidence_max is not None:
        query = query.where(Analysis.confidence <= filters.confidence_max)
    date_column = Ticket.created_at if filters.date_field == "created" else Ticket.updated_at
    if filters.date_from is not None:
        query = query.where(date_column >= filters.date_from)
    if filters.date_to is not None:
        query = query.where(date_column < filters.date_to)
    text = filters.text.strip()
    if text:
        pattern = _like_pattern(text)
        query = query.where(
            or_(
                Ticket.title.ilike(pattern, escape="\\"),
                Ticket.description.ilike(pattern, escape="\\"),
                Ticket.external_id.ilike(pattern, escape="\\"),
            )
        )
    return query


def _queue_base(columns: Sequence[Any], status: ReviewStatus | None = ReviewStatus.TO_DECIDE) -> Select[Any]:
    """The analysed tickets in ``status`` (every analysed ticket when None), with their latest analysis."""
    latest = latest_analysis()
    query = (
        select(*columns)
        .select_from(Ticket)
        .join(latest, latest.c.ticket_id == Ticket.id)
        .join(Analysis, Analysis.id == latest.c.analysis_id)
    )
    return query if status is None else query.where(_status_condition(status))


def _last_decided_at() -> Any:
    """When an analyst last decided about the ticket: decided tickets are listed most recent first."""
    return (
        select(func.max(TicketRunbookLink.reviewed_at))
        .where(TicketRunbookLink.ticket_id == Ticket.id)
        .correlate(Ticket)
        .scalar_subquery()
    )


def reviewed_links(session: TenantSession, ticket_ids: Sequence[int]) -> dict[int, ReviewedLink]:
    """What an analyst decided about each of these tickets (decided tickets only).

    The linked runbook when one is linked by a decision (the latest); else the latest rejected one.
    """
    best: dict[int, tuple[tuple[bool, datetime, int], ReviewedLink]] = {}
    never = datetime.min.replace(tzinfo=UTC)
    ids = list(dict.fromkeys(ticket_ids))
    for start in range(0, len(ids), _ID_CHUNK):
        rows = session.execute(
            select(
                TicketRunbookLink.id,
                TicketRunbookLink.ticket_id,
                TicketRunbookLink.runbook_id,
                TicketRunbookLink.decision,
                TicketRunbookLink.reviewed_by,
                TicketRunbookLink.reviewed_at,
                TicketRunbookLink.reason,
                Runbook.title,
            )
            .join(Runbook, Runbook.id == TicketRunbookLink.runbook_id)
            .where(TicketRunbookLink.ticket_id.in_(ids[start : start + _ID_CHUNK]), _reviewed())
        ).all()
        for link_id, ticket_id, runbook_id, decision, by, at, reason, title in rows:
            approved = LinkDecision(decision) is LinkDecision.LINKED
            rank = (approved, at or never, link_id)  # a link beats a rejection; then the latest decision
            if ticket_id not in best or rank > best[ticket_id][0]:
                best[ticket_id] = (rank, ReviewedLink(approved, runbook_id, title, by, at, reason))
    return {ticket_id: reviewed for ticket_id, (_rank, reviewed) in best.items()}


def load_review_queue(
    session: TenantSession, filters: QueueFilters | None = None, *, limit: int | None = None
) -> list[ReviewQueueRow]:
    """The tickets awaiting a decision in queue order, or (``filters.status``) decided ones, latest first."""
    filters = filters or QueueFilters()
    best = aliased(Runbook)
    order: tuple[Any, ...]
    if filters.status is ReviewStatus.TO_DECIDE:
        group = case(
            {decision: position for position, decision in enumerate(DECISION_ORDER)},
            value=Analysis.decision,
            else_=len(DECISION_ORDER),
        )
        within_group = case(
            (Analysis.decision == AnalysisDecision.LINK_RUNBOOK, Analysis.confidence),
            else_=-Analysis.confidence,
        )
        order = (group, within_group, Ticket.id)
    else:
        order = (_last_decided_at().desc(), Ticket.id.desc())
    query = (
        _queue_base(
            (
                Ticket.id,
                Ticket.external_id,
                Ticket.title,
                Ticket.source_system,
                Ticket.severity,
                Ticket.status,
                Ticket.created_at,
                Ticket.updated_at,
                Analysis.decision,
                Analysis.confidence,
                Analysis.best_runbook_id,
                best.title,
                Analysis.analysed_at,
            ),
            filters.status,
        )
        .outerjoin(best, best.id == Analysis.best_runbook_id)
        .order_by(*order)
        .limit(limit)
    )
    query = _apply_filters(query, filters, with_decisions=True)
    rows = [ReviewQueueRow(*values) for values in session.execute(query).all()]
    seen = link_versions(session, [row.ticket_id for row in rows])
    rows = [replace(row, seen=seen[row.ticket_id]) for row in rows]
    if filters.status is ReviewStatus.TO_DECIDE:
        return rows
    reviewed = reviewed_links(session, [row.ticket_id for row in rows])
    return [replace(row, reviewed=reviewed.get(row.ticket_id)) for row in rows]


def queue_counts(session: TenantSession, filters: QueueFilters | None = None) -> dict[AnalysisDecision, int]:
    """Tickets awaiting a decision per analysis decision, under every filter *except* the decision one.

    The decision filter is left out on purpose: the counts tell the analyst what choosing each decision
    would show, which is what a count next to a filter is for.
    """
    filters = filters or QueueFilters()
    query = _queue_base((Analysis.decision, func.count())).group_by(Analysis.decision)
    query = _apply_filters(query, filters, with_decisions=False)
    counts = dict.fromkeys(DECISION_ORDER, 0)
    for decision, count in session.execute(query).all():
        counts[AnalysisDecision(decision)] = int(count)
    return counts


def status_counts(session: TenantSession, filters: QueueFilters | None = None) -> dict[ReviewStatus, int]:
    """Analysed tickets per :class:`ReviewStatus`, under every filter except the decision and status ones
    (like :func:`queue_counts`: what choosing each status would show)."""
    filters = filters or QueueFilters()
    approved, rejected = _approved(), _rejected()
    query = _queue_base(
        (
            func.coalesce(func.sum(case((_undecided(), 1), else_=0)), 0),
            func.coalesce(func.sum(case((approved, 1), else_=0)), 0),
            func.coalesce(func.sum(case((rejected, 1), else_=0)), 0),
        ),
        None,
    )
    to_decide, approved_count, rejected_count = session.execute(
        _apply_filters(query, filters, with_decisions=False)
    ).one()
    return {
        ReviewStatus.TO_DECIDE: int(to_decide),
        ReviewStatus.APPROVED: int(approved_count),
        ReviewStatus.REJECTED: int(rejected_count),
        ReviewStatus.DECIDED: int(approved_count) + int(rejected_count),
    }


def is_in_queue(session: TenantSession, ticket_id: int) -> bool:
    query = _queue_base((Ticket.id,)).where(Ticket.id == ticket_id)
    return session.execute(query).first() is not None


# ----------------------------------------------------------------------------------------------------------
# Decisions
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkState:
    """Every column of a link a decision may change; enough to put the link back exactly."""

    decision: LinkDecision
    confidence_score: float | None
    linked_automatically: bool
    linked_at: datetime | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    reason: str | None

    @classmethod
    def of(cls, link: TicketRunbookLink) -> LinkState:
        return cls(
            decision=LinkDecision(link.decision),
            confidence_score=link.confidence_score,
            linked_automatically=bool(link.linked_automatically),
            linked_at=link.linked_at,
            reviewed_by=link.reviewed_by,
            reviewed_at=link.reviewed_at,
            reason=link.reason,
        )

    def apply_to(self, link: TicketRunbookLink) -> None:
        link.decision = self.decision
        link.confidence_score = self.confidence_score
        link.linked_automatically = self.linked_automatically
        link.linked_at = self.linked_at
        link.reviewed_by = self.reviewed_by
        link.reviewed_at = self.reviewed_at
        link.reason = self.reason

    @classmethod
    def from_json(cls, state: Mapping[str, Any]) -> LinkState:
        """The state an audit row recorded (``to_json``), for an undo rebuilt from the audit trail."""
        return cls(
            decision=LinkDecision(state["decision"]),
            confidence_score=state.get("confidence_score"),
            linked_automatically=bool(state.get("linked_automatically")),
            linked_at=_from_iso(state.get("linked_at")),
            reviewed_by=state.get("reviewed_by"),
            reviewed_at=_from_iso(state.get("reviewed_at")),
            reason=state.get("reason"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision.value,
            "confidence_score": self.confidence_score,
            "linked_automatically": self.linked_automatically,
            "linked_at": _iso(self.linked_at),
            "reviewed_by": self.reviewed_by,
            "reviewed_at": _iso(self.reviewed_at),
            "reason": self.reason,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _from_iso(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class LinkChange:
    """One link's state before (``None``: the link did not exist) and after a decision."""

    link_id: int
    ticket_id: int
    runbook_id: int
    before: LinkState | None
    after: LinkState | None  # None only in an undo that removed a link the decision had created


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """What a decision did, for the undo stack; plain data, safe to hand to the GUI thread."""

    action: str
    actor: str
    decided_at: datetime
    changes: tuple[LinkChange, ...]
    skipped_ticket_ids: tuple[int, ...] = ()  # bulk: tickets with nothing to decide on (no best match)

    @property
    def ticket_ids(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(change.ticket_id for change in self.changes))


StateMaker = Callable[[LinkState | None], LinkState]


def _now() -> datetime:
    return datetime.now(UTC)


def _require_ticket(session: TenantSession, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or ticket.tenant_id != session.tenant_id:
        raise ReviewError(f"ticket {ticket_id} does not exist in this tenant")
    return ticket


def _require_runbook(session: TenantSession, runbook_id: int) -> Runbook:
    runbook = session.get(Runbook, runbook_id)
    if runbook is None or runbook.tenant_id != session.tenant_id:
        raise ReviewError(f"runbook {runbook_id} does not exist in this tenant")
    return runbook


def _link(session: TenantSession, ticket_id: int, runbook_id: int) -> TicketRunbookLink | None:
    return session.scalars(
        select(TicketRunbookLink).where(
            TicketRunbookLink.ticket_id == ticket_id, TicketRunbookLink.runbook_id == runbook_id
        )
    ).one_or_none()


def _check_seen(
    session: TenantSession, ticket: Ticket, seen: LinkVersions | None, ours: Iterable[int] = ()
) -> None:
    """Refuse the decision when the ticket's links are no longer what the analyst saw (``seen``); None: the
    caller (a script, the CLI) decides on the current state and only the write-time check applies.

    Called before writing, and again after (``ours``: the links this decision wrote, left out): another
    analyst's new link to a *different* runbook of the ticket touches no row this decision writes, so no
    version check sees it. On PostgreSQL the second call runs after this transaction took its tenant's
    audit-chain lock (:mod:`core.store.audit_chain`, taken by the flush of the decision's audit rows), which
    every decision takes, so it sees every decision committed before this one.
    """
    if seen is None:
        return
    skip = set(ours)
    rows = [
        row
        for row in session.execute(
            select(
                TicketRunbookLink.id,
                TicketRunbookLink.version,
                TicketRunbookLink.updated_by,
                TicketRunbookLink.updated_at,
            ).where(TicketRunbookLink.ticket_id == ticket.id)
        ).all()
        if row[0] not in skip
    ]
    expected = tuple(pair for pair in seen.links if pair[0] not in skip)
    if tuple(sorted((link_id, version) for link_id, version, _by, _at in rows)) == expected:
        return
    seen_versions = dict(expected)
    changed = [(at, by) for link_id, version, by, at in rows if seen_versions.get(link_id) != version]
    who: str | None = None
    when: datetime | None = None
    if changed:
        when, who = max(changed, key=lambda pair: _aware(pair[0]))
    else:  # nothing new or changed, so a link the analyst saw is gone: the audit trail knows who removed it
        present = {link_id for link_id, *_rest in rows}
        removed = [link_id for link_id, _version in expected if link_id not in present]
        writer = last_audited_writer(session, LINK_ENTITY, removed[0]) if removed else None
        if writer is not None:
            who, when = writer
    raise ConcurrentChangeError(
        f"{ticket.external_id} was {changed_text(who, when)}; your decision was not saved"
    )


def _recheck_seen(
    session: TenantSession, ticket: Ticket, seen: LinkVersions | None, changes: Iterable[LinkChange]
) -> None:
    """After writing: the rest of the ticket's links are still as seen (see :func:`_check_seen`)."""
    if seen is None:
        return
    session.flush()  # the audit rows: on PostgreSQL this takes the tenant's chain lock first
    _check_seen(session, ticket, seen, [change.link_id for change in changes])


def _aware(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _ticket_name(session: TenantSession, ticket_id: int) -> str:
    ticket = session.get(Ticket, ticket_id)
    return ticket.external_id if ticket is not None else f"ticket {ticket_id}"


def _audit_json(change: LinkChange, state: LinkState | None, **extra: Any) -> dict[str, Any]:
    return {
        "ticket_id": change.ticket_id,
        "runbook_id": change.runbook_id,
        "link": state.to_json() if state is not None else None,
        **extra,
    }


def _set_link(
    session: TenantSession,
    ticket_id: int,
    runbook_id: int,
    make_state: StateMaker,
    *,
    action: str,
    actor: str,
) -> LinkChange:
    """Create or update one link to ``make_state(before)`` and audit it; the caller owns the transaction."""
    link = _link(session, ticket_id, runbook_id)
    before = LinkState.of(link) if link is not None else None
    after: LinkState = make_state(before)
    # Asked before the link changes: on PostgreSQL it is a query, whose autoflush would write the link
    # twice (two versions for one decision).
    who = editor(session, actor)
    subject = _ticket_name(session, ticket_id)
    if link is None:
        link = TicketRunbookLink(tenant_id=session.tenant_id, ticket_id=ticket_id, runbook_id=runbook_id)
        session.add(link)
    after.apply_to(link)
    link.updated_by = who
    # The new link's id, for the audit row and the undo record. Another analyst who wrote this link since
    # it was read (a stale version, or the same new link inserted first) makes it a ConcurrentChangeError.
    with link_write_guard(session, subject, ticket_id, runbook_id):
        session.flush()
    change = LinkChange(link.id, ticket_id, runbook_id, before, after)
    record_audit(
        session,
        actor=actor,
        action=action,
        entity_type=LINK_ENTITY,
        entity_id=link.id,
        before=_audit_json(change, before) if before is not None else None,
        after=_audit_json(change, after),
    )
    follow_decision(session, ticket_id, runbook_id, link, actor)  # queue or cancel the write-back
    return change


def _linked_by(actor: str, now: datetime, confidence: float | None) -> StateMaker:
    def make(before: LinkState | None) -> LinkState:
        if confidence is None and before is not None:
            confidence_score = before.confidence_score  # linking by hand keeps the machine's score, if any
        else:
            confidence_score = confidence
        return LinkState(
            decision=LinkDecision.LINKED,
            confidence_score=confidence_score,
            # Provenance: a confirmed automatic link stays marked automatic (auto-link precision metrics).
            linked_automatically=bool(before and before.linked_automatically),
            linked_at=before.linked_at if before and before.linked_at else now,
            reviewed_by=actor,
            reviewed_at=now,
            reason=None,
        )

    return make


def _rejected_by(actor: str, now: datetime, reason: str | None) -> StateMaker:
    def make(before: LinkState | None) -> LinkState:
        return LinkState(
            decision=LinkDecision.REJECTED,
            confidence_score=before.confidence_score if before else None,
            linked_automatically=bool(before and before.linked_automatically),
            linked_at=None,
            reviewed_by=actor,
            reviewed_at=now,
            reason=(reason or "").strip() or None,
        )

    return make


def approve(
    session: TenantSession,
    ticket_id: int,
    runbook_id: int,
    confidence: float | None,
    actor: str,
    seen: LinkVersions | None = None,
) -> DecisionRecord:
    """Link the ticket to the runbook the analyst confirmed (a suggestion or an automatic link).

    ``seen``: the ticket's links as the analyst's screen showed them; a change since raises
    :class:`~core.errors.ConcurrentChangeError` and writes nothing (the same for every decision below).
    """
    ticket = _require_ticket(session, ticket_id)
    _check_seen(session, ticket, seen)
    _require_runbook(session, runbook_id)
    now = _now()
    change = _set_link(
        session,
        ticket_id,
        runbook_id,
        _linked_by(actor, now, confidence),
        action="review.approve",
        actor=actor,
    )
    _recheck_seen(session, ticket, seen, (change,))
    return DecisionRecord("review.approve", actor, now, (change,))


def reject(
    session: TenantSession,
    ticket_id: int,
    runbook_id: int,
    reason: str | None,
    actor: str,
    seen: LinkVersions | None = None,
) -> DecisionRecord:
    """Mark the suggestion wrong (with an optional reason); the ticket leaves the queue (module docstring)."""
    ticket = _require_ticket(session, ticket_id)
    _check_seen(session, ticket, seen)
    _require_runbook(session, runbook_id)
    now = _now()
    change = _set_link(
        session, ticket_id, runbook_id, _rejected_by(actor, now, reason), action="review.reject", actor=actor
    )
    _recheck_seen(session, ticket, seen, (change,))
    return DecisionRecord("review.reject", actor, now, (change,))


def _link_instead(
    session: TenantSession,
    ticket_id: int,
    runbook_id: int,
    actor: str,
    action: str,
    reason: str,
    seen: LinkVersions | None,
) -> DecisionRecord:
    ticket = _require_ticket(session, ticket_id)
    _check_seen(session, ticket, seen)
    _require_runbook(session, runbook_id)
    now = _now()
    changes = [
        _set_link(session, ticket_id, runbook_id, _linked_by(actor, now, None), action=action, actor=actor)
    ]
    machine_links = session.scalars(
        select(TicketRunbookLink).where(
            TicketRunbookLink.ticket_id == ticket_id,
            TicketRunbookLink.runbook_id != runbook_id,
            TicketRunbookLink.linked_automatically.is_(True),
            TicketRunbookLink.decision == LinkDecision.LINKED,
            TicketRunbookLink.reviewed_at.is_(None),
        )
    ).all()
    for link in machine_links:
        changes.append(
            _set_link(
                session,
                ticket_id,
                link.runbook_id,
                _rejected_by(actor, now, reason),
                action="review.supersede",
                actor=actor,
            )
        )
    _recheck_seen(session, ticket, seen, changes)
    return DecisionRecord(action, actor, now, tuple(changes))


def link_other(
    session: TenantSession, ticket_id: int, runbook_id: int, actor: str, seen: LinkVersions | None = None
) -> DecisionRecord:
    """Link a runbook the analyst picked; an unreviewed automatic link to another runbook is rejected."""
    return _link_instead(
        session,
        ticket_id,
        runbook_id,
        actor,
        "review.link_other",
        f"analyst linked runbook {runbook_id}",
        seen,
    )


def record_draft(
    session: TenantSession,
    ticket_id: int,
    runbook_id_of_new_draft: int,
    actor: str,
    seen: LinkVersions | None = None,
) -> DecisionRecord:
    """Link the ticket to the draft runbook written for it (after the editor saved it)."""
    return _link_instead(
        session,
        ticket_id,
        runbook_id_of_new_draft,
        actor,
        "review.draft",
        f"analyst drafted runbook {runbook_id_of_new_draft}",
        seen,
    )


def _latest_best(session: TenantSession, ticket_ids: Sequence[int]) -> dict[int, tuple[int | None, float]]:
    latest = latest_analysis(ticket_ids)
    rows = session.execute(
        select(Analysis.ticket_id, Analysis.best_runbook_id, Analysis.confidence).join(
            latest, latest.c.analysis_id == Analysis.id
        )
    ).all()
    return {ticket_id: (runbook_id, confidence) for ticket_id, runbook_id, confidence in rows}


def _bulk(
    session: TenantSession,
    ticket_ids: Iterable[int],
    actor: str,
    action: str,
    make: Callable[[datetime, float], StateMaker],
    seen: Mapping[int, LinkVersions] | None,
) -> DecisionRecord:
    ids = list(dict.fromkeys(ticket_ids))
    for ticket_id in ids:  # one ticket changed by someone else refuses the whole batch
        if seen is not None and ticket_id in seen:
            _check_seen(session, _require_ticket(session, ticket_id), seen[ticket_id])
    best = _latest_best(session, ids)
    now = _now()
    changes: list[LinkChange] = []
    skipped: list[int] = []
    for ticket_id in ids:
        runbook_id, confidence = best.get(ticket_id, (None, 0.0))
        if runbook_id is None:
            skipped.append(ticket_id)
            continue
        changes.append(
            _set_link(session, ticket_id, runbook_id, make(now, confidence), action=action, actor=actor)
        )
    for ticket_id in ids:
        if seen is not None and ticket_id in seen:
            mine = [change for change in changes if change.ticket_id == ticket_id]
            _recheck_seen(session, _require_ticket(session, ticket_id), seen[ticket_id], mine)
    return DecisionRecord(action, actor, now, tuple(changes), tuple(skipped))


def bulk_approve(
    session: TenantSession,
    ticket_ids: Iterable[int],
    actor: str,
    seen: Mapping[int, LinkVersions] | None = None,
) -> DecisionRecord:
    """Approve each ticket's best match (its latest analysis), all in the caller's one transaction."""
    return _bulk(
        session,
        ticket_ids,
        actor,
        "review.approve",
        lambda now, confidence: _linked_by(actor, now, confidence),
        seen,
    )


def bulk_reject(
    session: TenantSession,
    ticket_ids: Iterable[int],
    reason: str | None,
    actor: str,
    seen: Mapping[int, LinkVersions] | None = None,
) -> DecisionRecord:
    """Reject each ticket's best match, with one reason for all."""
    return _bulk(
        session,
        ticket_ids,
        actor,
        "review.reject",
        lambda now, _confidence: _rejected_by(actor, now, reason),
        seen,
    )


def undo(session: TenantSession, record: DecisionRecord, actor: str) -> DecisionRecord:
    """Put every link the record touched back as it was, audited as ``review.undo``.

    Refuses (nothing written) when a link no longer is what the decision left, e.g. another decision or an
    edit came in between: restoring would silently throw that work away.
    """
    now = _now()
    editor_name = editor(session, actor)  # before any change (see _set_link)
    inverse: list[LinkChange] = []
    for change in reversed(record.changes):
        link = _link(session, change.ticket_id, change.runbook_id)
        current = LinkState.of(link) if link is not None else None
        if current != change.after:
            writer = (
                (link.updated_by, link.updated_at)
                if link is not None
                else last_audited_writer(session, LINK_ENTITY, change.link_id)
            )
            who, when = writer if writer is not None else (None, None)
            raise ReviewConflictError(
                f"link of ticket {change.ticket_id} to runbook {change.runbook_id} changed after "
                f"{record.action} ({changed_text(who, when)}); not undoing"
            )
        subject = _ticket_name(session, change.ticket_id)
        if change.before is None:
            if link is not None:
                session.delete(link)
        else:
            if link is None:
                link = TicketRunbookLink(
                    tenant_id=session.tenant_id, ticket_id=change.ticket_id, runbook_id=change.runbook_id
                )
                session.add(link)
            change.before.apply_to(link)
            link.updated_by = editor_name
        with link_write_guard(session, subject, change.ticket_id, change.runbook_id):
            session.flush()
        reverted = LinkChange(
            link.id if link is not None else change.link_id,
            change.ticket_id,
            change.runbook_id,
            current,
            change.before,
        )
        record_audit(
            session,
            actor=actor,
            action="review.undo",
            entity_type=LINK_ENTITY,
            entity_id=reverted.link_id,
            before=_audit_json(reverted, current),
            after=_audit_json(reverted, change.before, undoes=record.action),
        )
        restored = link if change.before is not None else None
        follow_decision(session, change.ticket_id, change.runbook_id, restored, actor)
        inverse.append(reverted)
    return DecisionRecord("review.undo", actor, now, tuple(inverse))


# ----------------------------------------------------------------------------------------------------------
# The side-by-side view's data
# ----------------------------------------------------------------------------------------------------------


class SimilarTicketSource(Protocol):
    """What drafting and the side-by-side view need of the matcher (``MatchingEngine`` fits)."""

    def similar_tickets(self, ticket_id: int, k: int = 5) -> list[SimilarTicket]: ...


class TicketMatcher(SimilarTicketSource, Protocol):
    def search(
        self,
        query_text: str,
        k: int = 5,
        *,
        exclude_ticket_id: int | None = None,
        lexical_text: str | None = None,
    ) -> list[RunbookMatch]: ...

    def search_articles(
        self,
        query_text: str,
        k: int = 3,
        *,
        lexical_text: str | None = None,
        include_unpublished: bool = False,
    ) -> list[ArticleMatch]: ...


@dataclass(frozen=True, slots=True)
class MatchView:
    """One ranked runbook for the ticket, with the text that explains it."""

    rank: int
    match: RunbookMatch
    runbook: RunbookRow
    section_text: str  # the best-matching section (or the runbook's opening when only words matched)
    link_decision: str | None  # the ticket's existing link to this runbook: suggested, linked, rejected
    linked_automatically: bool


@dataclass(frozen=True, slots=True)
class TicketReview:
    ticket: TicketRow
    ticket_terms_text: str  # the text of the ticket the match terms came from (title + cleaned description)
    similar: tuple[SimilarTicket, ...]
    matches: tuple[MatchView, ...]
    analysis_decision: AnalysisDecision | None
    analysis_confidence: float | None
    history: tuple[HistoryEntry, ...] = ()  # who decided what about the ticket, newest first
    articles: tuple[ArticleMatch, ...] = ()  # the published knowledge articles that match it, best first
    seen: LinkVersions | None = None  # the ticket's links as shown: a decision on this view carries it


def _section_text(session: TenantSession, runbook: Runbook, section_name: str | None) -> str:
    query = select(RunbookSection.name, RunbookSection.text).where(RunbookSection.runbook_id == runbook.id)
    sections = session.execute(query.order_by(RunbookSection.ordinal)).all()
    if section_name is not None:
        parts = [body for name, body in sections if name == section_name]
        if parts:
            return "\n\n".join(dict.fromkeys(parts))
    # Words matched but no section was near in meaning: the first section after the title tells what it is.
    return sections[1][1] if len(sections) > 1 else runbook.body[:2000]


def load_ticket_review(
    session: TenantSession,
    matcher: TicketMatcher,
    ticket_id: int,
    *,
    k: int = 5,
    similar_k: int = 5,
    articles_k: int = 3,
) -> TicketReview:
    """Everything the side-by-side view shows for one ticket (run in a worker: it encodes the ticket)."""
    ticket = _require_ticket(session, ticket_id)
    prepared = ticket_text(ticket)
    # Its own decision does not vote; the lexical side reads what the analysis's did (an alert's expressions).
    matches = matcher.search(
        prepared, k, exclude_ticket_id=ticket_id, lexical_text=ticket_lexical_text(ticket)
    )
    links = {
        link.runbook_id: link
        for link in session.scalars(select(TicketRunbookLink).where(TicketRunbookLink.ticket_id == ticket_id))
    }
    runbooks = {
        runbook.id: runbook
        for runbook in session.scalars(select(Runbook).where(Runbook.id.in_([m.runbook_id for m in matches])))
    }
    views = []
    for rank, match in enumerate(matches, start=1):
        runbook = runbooks.get(match.runbook_id)
        if runbook is None:  # deleted since the index was written
            continue
        link = links.get(match.runbook_id)
        views.append(
            MatchView(
                rank=rank,
                match=match,
                runbook=runbook_row(runbook),
                section_text=_section_text(session, runbook, match.best_section),
                link_decision=LinkDecision(link.decision).value if link is not None else None,
                linked_automatically=bool(link and link.linked_automatically),
            )
        )
    latest = latest_analysis([ticket_id])
    analysis = session.scalars(select(Analysis).join(latest, latest.c.analysis_id == Analysis.id)).first()
    # Imported here: the history module builds on this one's decisions (it imports this module).
    from core.workflow.history import decision_history

    return TicketReview(
        ticket=ticket_row(ticket),
        ticket_terms_text=prepared,
        similar=tuple(matcher.similar_tickets(ticket_id, similar_k)),
        matches=tuple(views),
        analysis_decision=AnalysisDecision(analysis.decision) if analysis else None,
        analysis_confidence=analysis.confidence if analysis else None,
        history=tuple(decision_history(session, ticket_id)),
        articles=tuple(
            matcher.search_articles(prepared, articles_k, lexical_text=ticket_lexical_text(ticket))
        ),
        seen=LinkVersions(ticket_id, tuple(sorted((link.id, link.version) for link in links.values()))),
    )


# Mirrors core.matching.text's term pattern: runs of word characters joined by . - @ ' so that the spans
# found here
# are exactly the terms lexical_terms() produced on the other side.
_TERM_SPAN = re.compile(r"\w+(?:[.\-@'’]\w+)*")


def term_spans(text: str, terms: Iterable[str]) -> list[tuple[int, int]]:
    """Character spans in ``text`` of the given lexical terms (shared terms), for highlighting.

    Each candidate word is normalised by :func:`core.matching.text.lexical_terms` itself, so "Outlook's",
    "OUTLOOK"
    and "outlook" all light up for the term ``outlook`` just as the matcher counted them.
    """
    wanted = set(terms)
    if not wanted:
        return []
    spans = []
    for match in _TERM_SPAN.finditer(text):
        normalised = lexical_terms(match.group())
        if normalised and normalised[0] in wanted:
            spans.append((match.start(), match.end()))
    return spans


# ----------------------------------------------------------------------------------------------------------
# Drafts
# ----------------------------------------------------------------------------------------------------------


def draft_from_ticket(
    session: TenantSession, engine_or_similar: SimilarTicketSource, ticket_id: int
) -> RunbookDraft:
    """A new runbook pre-filled from a ticket no runbook covers.

    Title: the ticket's title without mail prefixes. Symptoms: its description, cleaned like the matcher
    cleans it (markup, greetings, signatures and quoted replies go; error codes and hostnames stay). Steps:
    the resolution notes of the most similar *resolved* tickets, most similar first, each citing its ticket
    so the author can check it; notes that hold no action ("Resolved - user confirmed.", "handed to the
    devops team"), repeated notes and steps for another platform than the ticket's are left out
    (:func:`core.workflow.draft_steps.candidate_steps`). Beside them, when the matcher searches articles,
    the steps of the best matching published articles at or above the review threshold, each citing its
    article (:mod:`core.knowledge.enrichment`).
    """
    ticket = _require_ticket(session, ticket_id)
    title = prepare_ticket_text(ticket.title, None) or ticket.title.strip() or ticket.external_id
    symptoms = prepare_ticket_text("", ticket.description)
    notes: list[tuple[str, str | None]] = []
    if ticket.resolution_notes:  # the ticket's own fix, when it already has one, comes first
        notes.append((ticket.resolution_notes, ticket.external_id))
    for similar in engine_or_similar.similar_tickets(ticket_id, SIMILAR_FOR_DRAFT):
        if similar.resolved and similar.resolution_notes:
            notes.append((similar.resolution_notes, similar.external_id))
    # Actions only, status and hand-over clauses dropped, steps for another platform than the ticket's left
    # out (core.workflow.draft_steps).
    platform = dominant_platform([f"{ticket.title}\n{ticket.description}\n{ticket.resolution_notes or ''}"])
    steps = candidate_steps(notes, platform=platform, limit=DRAFT_STEP_LIMIT)
    # The steps of the best matching published articles, each citing its article (core.knowledge.enrichment).
    article_steps: tuple[CandidateStep, ...] = ()
    if isinstance(engine_or_similar, ArticleSearch):
        hits = engine_or_similar.search_articles(
            ticket_text(ticket), ARTICLES_FOR_DRAFT, lexical_text=ticket_lexical_text(ticket)
        )
        threshold = load_settings(session, Thresholds).partial
        article_steps = steps_from_articles(
            session, hits, threshold=threshold, platform=platform, known=steps
        )
    tags = tuple(dict.fromkeys(t for t in (ticket.category, ticket.configuration_item) if t and t.strip()))
    return RunbookDraft(
        title=title,
        symptoms=symptoms,
        steps=tuple(steps),
        tags=tuple(tag.strip().lower() for tag in tags[:1]),
        service=ticket.configuration_item or None,
        source_ticket_ids=(ticket.id,),
        article_steps=article_steps,
    )


@dataclass(frozen=True, slots=True)
class RunbookChoice:
    """A runbook as the "link to another runbook" dialog lists it."""

    id: int
    title: str
    status: str
    service: str | None
    tags: tuple[str, ...] = field(default=())


_STATUS_RANK = {
    RunbookStatus.APPROVED: 0,
    RunbookStatus.IN_REVIEW: 1,
    RunbookStatus.DRAFT: 2,
    RunbookStatus.RETIRED: 3,
}


def runbook_choices(session: TenantSession) -> list[RunbookChoice]:
    """Every runbook, approved first (what matching links to), then in review, drafts, retired; by title."""
    status_rank = case(dict(_STATUS_RANK), value=Runbook.status, else_=len(_STATUS_RANK))
    rows = session.execute(
        select(Runbook.id, Runbook.title, Runbook.status, Runbook.service, Runbook.tags).order_by(
            status_rank, func.lower(Runbook.title), Runbook.id
        )
    ).all()
    return [
        RunbookChoice(rid, title, RunbookStatus(status).value, service, tuple(tags or ()))
        for rid, title, status, service, tags in rows
    ]


__all__ = [
    "DECIDED_STATUSES",
    "DECISION_ORDER",
    "DecisionRecord",
    "LinkChange",
    "LinkState",
    "LinkVersions",
    "MatchView",
    "QueueFilters",
    "ReviewConflictError",
    "ReviewError",
    "ReviewQueueRow",
    "ReviewStatus",
    "ReviewedLink",
    "RunbookChoice",
    "SimilarTicketSource",
    "TicketMatcher",
    "TicketReview",
    "approve",
    "bulk_approve",
    "bulk_reject",
    "draft_from_ticket",
    "is_in_queue",
    "link_other",
    "link_versions",
    "load_review_queue",
    "load_ticket_review",
    "queue_counts",
    "record_draft",
    "reject",
    "reviewed_links",
    "runbook_choices",
    "status_counts",
    "term_spans",
    "undo",
]
