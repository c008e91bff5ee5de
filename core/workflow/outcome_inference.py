"""Outcomes inferred from the source's history of a ticket (roadmap: Execution Tracking), when it syncs or a
file is re-imported: :func:`infer_from_changes` runs in the transaction that stores each batch of tickets.

Rules, for a ticket and a runbook *linked* to it (by an analyst, or automatically and not reverted), each
only when the runbook was attached before the resolution it is judged on: a runbook linked to a ticket already
closed (a history export imported and analysed afterwards) neither fixed nor failed it. "Attached" is when
the runbook was first put before the analyst on that ticket: the link row's creation (as a suggestion or a
link), which re-analysis does not move (it stamps ``linked_at`` afresh on every run).

* **resolved** (``source_resolved``, success): the ticket is resolved now (not cancelled) and was resolved
  after the runbook was attached; ``time_to_resolve_s`` is ``resolved_at - created_at``.
* **reopened** (``source_reopened``, failure): the ticket was resolved after the link and is not any more.
  Seen two ways: the ticket upsert compares the stored status with the new one
  (:class:`core.store.tickets.TicketChanges`), and a stored success whose ticket is no longer resolved.
* **recurrence** (``recurrence``, failure of the *first* ticket's runbook, ``evidence_ticket_id`` the new
  ticket): the same configuration item raised a *similar* ticket within ``recurrence_days``
  (:class:`~core.settings.OutcomeSettings`, 7 by default) of the first one's resolution. "Similar" is a
  store-only rule, because the sync path has no matching engine (no model, no FAISS): the same configuration
  item (case-insensitive), the same category when both have one, and titles sharing at least
  ``recurrence_title_overlap`` of the shorter title's terms (:func:`core.matching.text.lexical_terms`). Two
  unrelated tickets on a busy shared item (an ERP) rarely share their title's terms; the same alert raised
  again always does. A ticket opened before the first one was resolved is a duplicate, not a recurrence; a
  first ticket that was cancelled, or is open again, is not judged by this rule.

Idempotent: a re-sync updates the inferred row (unique per ticket, runbook and source), never adds a second;
a row whose values did not change is neither written nor audited. Every row written is audited
(``outcome.inferred``, by the app). An inferred row is never withdrawn by a later sync: the analyst's
outcome (:func:`core.workflow.outcomes.record_outcome`) overrides it.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import func, select

from core.matching.text import lexical_terms
from core.settings import OutcomeSettings, load_settings
from core.store.models import (
    LinkDecision,
    OutcomeKind,
    OutcomeSource,
    RunbookOutcome,
    Ticket,
    TicketRunbookLink,
)
from core.store.repository import SYSTEM_ACTOR, record_audit
from core.store.tenancy import TenantSession
from core.store.tickets import Reopened, TicketChanges, is_resolved
from core.workflow.outcomes import NOT_FIXED_STATES, OUTCOME_ENTITY

CHUNK = 500  # tickets per round of queries (and ids per IN (...) list)


@dataclass
class InferenceReport:
    """Inferred rows written (created or changed) by one call, per rule; unchanged rows are not counted."""

    resolved: int = 0
    reopened: int = 0
    recurrences: int = 0

    @property
    def written(self) -> int:
        return self.resolved + self.reopened + self.recurrences


@dataclass(frozen=True, slots=True)
class TicketFacts:
    """What the rules read of a ticket; the last three fields are worked out once, when it is read."""

    id: int
    external_id: str
    title: str
    status: str | None
    category: str | None
    configuration_item: str | None
    created_at: datetime | None
    resolved_at: datetime | None
    ingested_at: datetime
    item: str  # the configuration item, trimmed and case-folded ("" for none)
    category_key: str  # the category, likewise
    fixed: bool  # resolved now, and not by a cancel

    @property
    def opened_at(self) -> datetime:
        return self.created_at or self.ingested_at


_FACT_COLUMNS = (
    Ticket.id,
    Ticket.external_id,
    Ticket.title,
    Ticket.status,
    Ticket.category,
    Ticket.configuration_item,
    Ticket.created_at,
    Ticket.resolved_at,
    Ticket.ingested_at,
)


def _facts(row: Sequence[Any]) -> TicketFacts:
    ticket_id, external_id, title, status, category, item, created_at, resolved_at, ingested_at = row[:9]
    return TicketFacts(
        id=ticket_id,
        external_id=external_id,
        title=title,
        status=status,
        category=category,
        configuration_item=item,
        created_at=created_at,
        resolved_at=resolved_at,
        ingested_at=ingested_at,
        item=_normal(item),
        category_key=_normal(category),
        fixed=is_resolved(status, resolved_at) and _normal(status) not in NOT_FIXED_STATES,
    )


def _normal(text: str | None) -> str:
    return (text or "").strip().casefold()


def similar_recurrence(first: TicketFacts, later: TicketFacts, settings: OutcomeSettings) -> bool:
    """``later`` is the problem of ``first`` again (the store-only rule of the module docstring)."""
    if not first.item or first.item != later.item:
        return False
    if first.category_key and later.category_key and first.category_key != later.category_key:
        return False
    first_terms, later_terms = _title_terms(first.title), _title_terms(later.title)
    if not first_terms or not later_terms:
        return False
    shared = len(first_terms & later_terms)
    smaller = min(len(first_terms), len(later_terms))
    return shared > 0 and shared / smaller >= settings.recurrence_title_overlap


@functools.lru_cache(maxsize=4096)
def _title_terms(title: str) -> frozenset[str]:
    # Only candidates on the same item and in the window get here; an alert storm repeats one title.
    return frozenset(lexical_terms(title))


@dataclass(frozen=True, slots=True)
class _Link:
    ticket_id: int
    runbook_id: int
    since: datetime  # when the runbook was attached to the ticket


def _link_since(created_at: datetime, linked_at: datetime | None) -> datetime:
    # Re-analysis stamps linked_at again each time it re-links; the row's creation is the first attachment.
    return min(created_at, linked_at) if linked_at is not None else created_at


def _item_key() -> Any:
    return func.lower(func.trim(Ticket.configuration_item))


def _opened_at() -> Any:
    return func.coalesce(Ticket.created_at, Ticket.ingested_at)


def _chunks(ids: Sequence[int], size: int = CHUNK) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


# --------------------------------------------------------------------------------------------------------
# Writing the rows
# --------------------------------------------------------------------------------------------------------


class _OutcomeWriter:
    """Creates or updates inferred rows by their unique key; writes only what changed, audits each one.

    Rows are read per batch of tickets (:meth:`preload`) and flushed once per batch (:meth:`finish`): a
    re-import resolving thousands of linked tickets must not cost a query and a flush per ticket.
    """

    def __init__(self, session: TenantSession, actor: str, report: InferenceReport) -> None:
        self._session = session
        self._actor = actor
        self._report = report
        self._rows: dict[tuple[int, int, OutcomeSource], RunbookOutcome] = {}
        self._loaded: set[int] = set()
        self._pending: list[tuple[RunbookOutcome, dict[str, Any] | None]] = []

    def preload(self, ticket_ids: Collection[int]) -> None:
        wanted = sorted({ticket_id for ticket_id in ticket_ids if ticket_id not in self._loaded})
        for chunk in _chunks(wanted):
            query = select(RunbookOutcome).where(RunbookOutcome.ticket_id.in_(chunk))
            for row in self._session.scalars(query):
                self._rows[(row.ticket_id, row.runbook_id, OutcomeSource(row.source))] = row
            self._loaded.update(chunk)

    def row(self, ticket_id: int, runbook_id: int, source: OutcomeSource) -> RunbookOutcome | None:
        self.preload((ticket_id,))
        return self._rows.get((ticket_id, runbook_id, source))

    def stored_pairs(self, ticket_ids: Collection[int], source: OutcomeSource) -> set[tuple[int, int]]:
        """(ticket, runbook) pairs with a ``source`` row: a light lookup for many tickets outside the batch
        (the first tickets of recurrences), without loading their rows."""
        pairs: set[tuple[int, int]] = set()
        for chunk in _chunks(sorted(set(ticket_ids))):
            query = select(RunbookOutcome.ticket_id, RunbookOutcome.runbook_id).where(
                RunbookOutcome.ticket_id.in_(chunk), RunbookOutcome.source == source
            )
            pairs.update((ticket_id, runbook_id) for ticket_id, runbook_id in self._session.execute(query))
        return pairs

    def write(
        self,
        ticket_id: int,
        runbook_id: int,
        source: OutcomeSource,
        outcome: OutcomeKind,
        *,
        note: str,
        time_to_resolve_s: float | None = None,
        evidence_ticket_id: int | None = None,
    ) -> None:
        row = self.row(ticket_id, runbook_id, source)
        values = (outcome, time_to_resolve_s, evidence_ticket_id)
        if (
            row is not None
            and (OutcomeKind(row.outcome), row.time_to_resolve_s, row.evidence_ticket_id) == values
        ):
            return  # a re-sync of the same facts: nothing to write
        before = None if row is None else _state(row)
        if row is None:
            row = RunbookOutcome(
                tenant_id=self._session.tenant_id, ticket_id=ticket_id, runbook_id=runbook_id, source=source
            )
            self._session.add(row)
            self._rows[(ticket_id, runbook_id, source)] = row
        row.outcome = outcome
        row.time_to_resolve_s = time_to_resolve_s
        row.evidence_ticket_id = evidence_ticket_id
        row.note = note
        row.recorded_by = self._actor
        row.recorded_at = datetime.now(UTC)
        self._pending.append((row, before))
        if source is OutcomeSource.SOURCE_RESOLVED:
            self._report.resolved += 1
        elif source is OutcomeSource.SOURCE_REOPENED:
            self._report.reopened += 1
        else:
            self._report.recurrences += 1

    def finish(self) -> None:
        """Flush the rows written (their ids) and audit each one, in the caller's transaction."""
        if not self._pending:
            return
        self._session.flush()
        for row, before in self._pending:
            record_audit(
                self._session,
                actor=self._actor,
                action="outcome.inferred",
                entity_type=OUTCOME_ENTITY,
                entity_id=row.id,
                before=before,
                after={"ticket_id": row.ticket_id, "runbook_id": row.runbook_id} | _state(row),
            )
        self._pending.clear()


def _state(row: RunbookOutcome) -> dict[str, Any]:
    return {
        "source": OutcomeSource(row.source).value,
        "outcome": OutcomeKind(row.outcome).value,
        "time_to_resolve_s": row.time_to_resolve_s,
        "evidence_ticket_id": row.evidence_ticket_id,
        "note": row.note,
    }


# --------------------------------------------------------------------------------------------------------
# The rules
# --------------------------------------------------------------------------------------------------------


def infer_from_changes(
    session: TenantSession, changes: TicketChanges, *, settings: OutcomeSettings | None = None
) -> InferenceReport:
    """:func:`infer_outcomes` over what one upsert wrote (its inserted and changed tickets and reopens)."""
    return infer_outcomes(session, changes.ticket_ids, reopened=changes.reopened, settings=settings)


def infer_outcomes(
    session: TenantSession,
    ticket_ids: Collection[int],
    *,
    reopened: Mapping[int, Reopened] | None = None,
    settings: OutcomeSettings | None = None,
    actor: str = SYSTEM_ACTOR,
) -> InferenceReport:
    """Apply the rules of the module docstring to ``ticket_ids`` (the tickets a batch inserted or changed),
    in the caller's transaction. ``reopened`` is what the upsert saw of resolved tickets it reopened.

    The batch's tickets are judged both as the *first* ticket of a recurrence (resolved, a similar one
    follows) and as its *evidence* (new, a similar one was resolved shortly before), so the order in which a
    source delivers the two does not matter.
    """
    report = InferenceReport()
    ids = sorted(set(ticket_ids))
    if not ids:
        return report
    settings = settings if settings is not None else load_settings(session, OutcomeSettings)
    reopened = reopened or {}
    window = timedelta(days=settings.recurrence_days)
    writer = _OutcomeWriter(session, actor, report)
    for chunk in _chunks(ids):
        query = select(*_FACT_COLUMNS).where(Ticket.id.in_(chunk))
        tickets = {facts.id: facts for facts in map(_facts, session.execute(query))}
        links = _linked(session, chunk)
        writer.preload(chunk)
        for link in links:
            ticket = tickets[link.ticket_id]
            _infer_resolution(writer, ticket, link)
            _infer_reopen(writer, ticket, link, reopened.get(ticket.id))
        found = _recurrences_after(session, tickets, links, window, settings)
        found += _recurrences_before(session, tickets, window, settings)
        _write_recurrences(writer, found)
        writer.finish()
    return report


def _linked(session: TenantSession, ticket_ids: Sequence[int]) -> list[_Link]:
    query = select(
        TicketRunbookLink.ticket_id,
        TicketRunbookLink.runbook_id,
        TicketRunbookLink.created_at,
        TicketRunbookLink.linked_at,
    ).where(
        TicketRunbookLink.ticket_id.in_(list(ticket_ids)), TicketRunbookLink.decision == LinkDecision.LINKED
    )
    return [
        _Link(ticket_id, runbook_id, _link_since(created_at, linked_at))
        for ticket_id, runbook_id, created_at, linked_at in session.execute(query)
    ]


def _infer_resolution(writer: _OutcomeWriter, ticket: TicketFacts, link: _Link) -> None:
    if not ticket.fixed or ticket.resolved_at is None or ticket.resolved_at < link.since:
        return
    seconds = None
    if ticket.created_at is not None and ticket.resolved_at >= ticket.created_at:
        seconds = (ticket.resolved_at - ticket.created_at).total_seconds()
    writer.write(
        ticket.id,
        link.runbook_id,
        OutcomeSource.SOURCE_RESOLVED,
        OutcomeKind.RESOLVED,
        time_to_resolve_s=seconds,
        note=f"{ticket.external_id} was resolved ({ticket.status or 'resolution time set'}) after the link",
    )


def _infer_reopen(writer: _OutcomeWriter, ticket: TicketFacts, link: _Link, reopen: Reopened | None) -> None:
    if is_resolved(ticket.status, ticket.resolved_at):
        return
    known_success = writer.row(ticket.id, link.runbook_id, OutcomeSource.SOURCE_RESOLVED) is not None
    seen_now = False
    if reopen is not None and _normal(reopen.previous_status) not in NOT_FIXED_STATES:
        previous = reopen.previous_resolved_at
        seen_now = known_success if previous is None else previous >= link.since
    if not (seen_now or known_success):
        return
    if writer.row(ticket.id, link.runbook_id, OutcomeSource.SOURCE_REOPENED) is not None:
        return  # known already; its first note stays
    was = reopen.previous_status if reopen is not None and reopen.previous_status else "resolved"
    writer.write(
        ticket.id,
        link.runbook_id,
        OutcomeSource.SOURCE_REOPENED,
        OutcomeKind.FAILED,
        note=f"{ticket.external_id} was reopened: {was} -> {ticket.status or 'not resolved'}",
    )


@dataclass(frozen=True, slots=True)
class _Recurrence:
    first: TicketFacts
    runbook_id: int
    later: TicketFacts


def _match(
    firsts: Sequence[tuple[TicketFacts, int]],
    laters: Iterable[TicketFacts],
    window: timedelta,
    settings: OutcomeSettings,
) -> list[_Recurrence]:
    """Each (first ticket, runbook) against the later tickets opened on its item within the window after its
    resolution: a sorted list per item and a binary search, not every pair."""
    by_item: dict[str, list[TicketFacts]] = {}
    for ticket in laters:
        by_item.setdefault(ticket.item, []).append(ticket)
    opened_by_item: dict[str, list[datetime]] = {}
    for item, candidates in by_item.items():
        candidates.sort(key=lambda ticket: (ticket.opened_at, ticket.id))
        opened_by_item[item] = [ticket.opened_at for ticket in candidates]
    found: list[_Recurrence] = []
    for first, runbook_id in firsts:
        if first.resolved_at is None or first.item not in by_item:
            continue
        opened = opened_by_item[first.item]
        start = bisect.bisect_right(opened, first.resolved_at)
        stop = bisect.bisect_right(opened, first.resolved_at + window)
        # The earliest similar one is the evidence (sorted by opening): no need to look further.
        evidence = next(
            (
                later
                for later in by_item[first.item][start:stop]
                if later.id != first.id and similar_recurrence(first, later, settings)
            ),
            None,
        )
        if evidence is not None:
            found.append(_Recurrence(first, runbook_id, evidence))
    return found


def _recurrences_after(
    session: TenantSession,
    tickets: Mapping[int, TicketFacts],
    links: Sequence[_Link],
    window: timedelta,
    settings: OutcomeSettings,
) -> list[_Recurrence]:
    """The batch's resolved, linked tickets as the *first*: similar tickets opened after them."""
    firsts = []
    for link in links:
        first = tickets[link.ticket_id]
        if first.item and first.fixed and first.resolved_at is not None and first.resolved_at >= link.since:
            firsts.append((first, link.runbook_id))
    if not firsts:
        return []
    resolved = [first.resolved_at for first, _ in firsts if first.resolved_at is not None]
    query = select(*_FACT_COLUMNS).where(
        _item_key().in_(sorted({first.item for first, _ in firsts})),
        _opened_at() > min(resolved),
        _opened_at() <= max(resolved) + window,
    )
    return _match(firsts, map(_facts, session.execute(query)), window, settings)


def _recurrences_before(
    session: TenantSession, tickets: Mapping[int, TicketFacts], window: timedelta, settings: OutcomeSettings
) -> list[_Recurrence]:
    """The batch's tickets as the *evidence*: similar, linked tickets resolved shortly before they opened."""
    laters = [ticket for ticket in tickets.values() if ticket.item]
    if not laters:
        return []
    query = (
        select(
            *_FACT_COLUMNS,
            TicketRunbookLink.runbook_id,
            TicketRunbookLink.created_at,
            TicketRunbookLink.linked_at,
        )
        .join(TicketRunbookLink, TicketRunbookLink.ticket_id == Ticket.id)
        .where(
            TicketRunbookLink.decision == LinkDecision.LINKED,
            _item_key().in_(sorted({later.item for later in laters})),
            Ticket.resolved_at >= min(later.opened_at for later in laters) - window,
            Ticket.resolved_at < max(later.opened_at for later in laters),
        )
    )
    firsts = []
    for row in session.execute(query):
        first = _facts(row)
        since = _link_since(cast(datetime, row[-2]), cast(datetime | None, row[-1]))
        if first.fixed and first.resolved_at is not None and first.resolved_at >= since:
            firsts.append((first, cast(int, row[-3])))
    return _match(firsts, laters, window, settings)


def _write_recurrences(writer: _OutcomeWriter, found: Sequence[_Recurrence]) -> None:
    """One row per (first ticket, runbook), with the earliest similar ticket as its evidence. A row stored
    already keeps its evidence: the failure is the same whichever later ticket showed it."""
    earliest: dict[tuple[int, int], _Recurrence] = {}
    for recurrence in found:
        key = (recurrence.first.id, recurrence.runbook_id)
        known = earliest.get(key)
        later = recurrence.later
        if known is None or (later.opened_at, later.id) < (known.later.opened_at, known.later.id):
            earliest[key] = recurrence
    stored = writer.stored_pairs([first_id for first_id, _ in earliest], OutcomeSource.RECURRENCE)
    new = sorted(pair for pair in earliest if pair not in stored)
    writer.preload([first_id for first_id, _ in new])
    for first_id, runbook_id in new:
        recurrence = earliest[(first_id, runbook_id)]
        first, later = recurrence.first, recurrence.later
        gap = later.opened_at - (first.resolved_at or later.opened_at)
        writer.write(
            first_id,
            runbook_id,
            OutcomeSource.RECURRENCE,
            OutcomeKind.FAILED,
            evidence_ticket_id=later.id,
            note=(
                f"{later.external_id} opened on {first.configuration_item} {_duration_text(gap)} after "
                f"{first.external_id} was resolved"
            ),
        )


def _duration_text(gap: timedelta) -> str:
    hours = gap.total_seconds() / 3600
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.1f} days"


__all__ = [
    "CHUNK",
    "InferenceReport",
    "TicketFacts",
    "infer_from_changes",
    "infer_outcomes",
    "similar_recurrence",
]
