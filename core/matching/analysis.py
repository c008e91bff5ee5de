"""Ticket analysis (roadmap: Auto-Analysis Workflow, 2. Automatic Analysis): search, take the best
confidence, decide, record.

Decision tree, thresholds per tenant (:class:`core.settings.Thresholds`; defaults from the roadmap's
Auto-Analysis Workflow, 3. Runbook Generation Queue):

* confidence >= ``existing`` (0.70): ``link_runbook``, stored as an automatic link;
* confidence >= ``partial`` (0.50): ``flag_review``, the top matches become suggestions;
* below: ``generate_runbook``, a candidate for a new runbook.

Batch analysis picks tickets whose current analysis is missing or stale (ticket text, model or thresholds
changed), so re-running on unchanged tickets costs one query. It embeds a batch at once, commits per batch
(resumable after a kill) and checks for cancellation between batches: a cancel raises
:class:`~core.errors.OperationCancelledError`, the batches committed before it stay. An analyst's decision on
a link is never overwritten by a re-analysis. Every link the machine makes or takes back gets an audit row
in the same transaction (``analysis.auto_link`` / ``analysis.auto_unlink``).

The machine's links of a ticket are exactly its latest analysis's: a re-analysis removes the unreviewed links
(suggestions, automatic links) to runbooks it no longer proposes, so a retired runbook or one a better new
runbook displaced does not keep a ticket "covered". Reviewed links are never touched.

Changed runbooks (approved, edited, imported, retired) reach the tickets analysed before them through
:mod:`core.matching.rematch`: :func:`analyze_pending` analyses the stale tickets first, then drains the
re-match requests (:func:`reanalyse_indexed` re-matches a ticket with the vector its index already holds).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.orm import sessionmaker

from core.errors import OperationCancelledError
from core.matching.engine import MatchingEngine, RunbookMatch
from core.matching.rematch import RematchReport, clear_requests, latest_request_id, rematch_pending
from core.matching.tenant_calibration import analysed_with_current_calibration
from core.matching.text import ticket_lexical_text, ticket_text
from core.progress import NO_PROGRESS, Progress, raise_if_cancelled
from core.settings import Thresholds, load_settings
from core.store.models import Analysis, AnalysisDecision, LinkDecision, Ticket, TicketRunbookLink
from core.store.repository import LINK_ENTITY, SYSTEM_ACTOR, record_audit
from core.store.tenancy import TenantSession

TOP_K = 5
BATCH_SIZE = 128


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    ticket_id: int
    decision: AnalysisDecision
    confidence: float
    matches: tuple[RunbookMatch, ...]


@dataclass
class BatchReport:
    analysed: int = 0
    linked: int = 0
    flagged: int = 0
    drafts: int = 0
    skipped_current: int = 0
    elapsed_s: float = 0.0
    # What draining the re-match requests did after the stale tickets (None with ``reanalyse_all``, which
    # re-analyses every ticket and so clears the requests).
    rematch: RematchReport | None = None


def _stale_filter(model_id: str, thresholds: Thresholds) -> ColumnElement[bool]:
    current = exists().where(
        and_(
            Analysis.ticket_id == Ticket.id,
            Analysis.ticket_content_hash == Ticket.content_hash,
            Analysis.model_id == model_id,
            Analysis.threshold_existing == thresholds.existing,
            Analysis.threshold_partial == thresholds.partial,
            analysed_with_current_calibration(),  # a refit or revert re-decides every ticket
        )
    )
    return ~current


@dataclass(frozen=True, slots=True)
class _LinkChange:
    """A link the machine made or took back, waiting for its audit row (written once the link has an id)."""

    link: TicketRunbookLink
    ticket_id: int
    runbook_id: int
    confidence: float | None  # None: a link taken back because the runbook is no longer proposed
    decision: AnalysisDecision
    before: dict[str, Any] | None
    removed: bool = False


def record_result(
    session: TenantSession,
    ticket: Ticket,
    result: AnalysisResult,
    thresholds: Thresholds,
    model_id: str,
    *,
    link_changes: list[_LinkChange] | None = None,
    links: Sequence[TicketRunbookLink] | None = None,
) -> None:
    """Store the analysis and its links. The audit rows of automatic links are written here, or appended to
    ``link_changes`` for the caller to write per batch (:func:`_audit_link_changes`: one flush, not one per
    ticket). ``links``: the ticket's links, when the caller read them for a whole batch (:func:`_links_of`:
    one query, where a query per ticket also flushed the session each time)."""
    session.add(
        Analysis(
            tenant_id=session.tenant_id,
            ticket_id=ticket.id,
            decision=result.decision,
            confidence=result.confidence,
            best_runbook_id=result.matches[0].runbook_id if result.matches else None,
            model_id=model_id,
            threshold_existing=thresholds.existing,
            threshold_partial=thresholds.partial,
            ticket_content_hash=ticket.content_hash,
        )
    )
    if links is None:
        links = session.scalars(
            select(TicketRunbookLink).where(TicketRunbookLink.ticket_id == ticket.id)
        ).all()
    existing = {link.runbook_id: link for link in links}
    suggest = result.matches[:1] if result.decision is AnalysisDecision.LINK_RUNBOOK else result.matches[:3]
    if result.decision is AnalysisDecision.GENERATE_RUNBOOK:
        suggest = result.matches[:1]  # the nearest runbook, shown so the analyst sees why it does not fit
    now = datetime.now(UTC)
    changed: list[_LinkChange] = []
    for rank, match in enumerate(suggest):
        link = existing.get(match.runbook_id)
        if link is not None and link.reviewed_at is not None:
            continue  # an analyst decided; the machine does not overrule
        auto = rank == 0 and result.decision is AnalysisDecision.LINK_RUNBOOK
        before = _link_state(link) if link is not None else None
        was_linked = before is not None and before["decision"] == LinkDecision.LINKED.value
        if link is None:
            link = TicketRunbookLink(
                tenant_id=session.tenant_id, ticket_id=ticket.id, runbook_id=match.runbook_id
            )
            session.add(link)
        link.confidence_score = match.confidence
        link.updated_by = SYSTEM_ACTOR  # who a second analyst's "changed by … at …" names (issue 17)
        link.linked_automatically = auto
        link.decision = LinkDecision.LINKED if auto else LinkDecision.SUGGESTED
        # A link that stays linked keeps its time: it is how long the link has stood unchallenged (a
        # standing automatic link becomes evidence for similar tickets after its spot-check period).
        link.linked_at = (link.linked_at if was_linked and link.linked_at else now) if auto else None
        if was_linked != auto:
            changed.append(
                _LinkChange(link, ticket.id, match.runbook_id, match.confidence, result.decision, before)
            )
    proposed = {match.runbook_id for match in suggest}
    for runbook_id, link in existing.items():
        if runbook_id in proposed or link.reviewed_at is not None:
            continue
        # The machine's own earlier suggestion or link that this analysis no longer makes.
        before = _link_state(link)
        session.delete(link)
        if before["decision"] == LinkDecision.LINKED.value:
            changed.append(
                _LinkChange(link, ticket.id, runbook_id, None, result.decision, before, removed=True)
            )
    if link_changes is not None:
        link_changes.extend(changed)
    elif changed:
        _audit_link_changes(session, changed, thresholds, model_id)


def _link_state(link: TicketRunbookLink) -> dict[str, Any]:
    return {
        "decision": LinkDecision(link.decision).value,
        "linked_automatically": bool(link.linked_automatically),
    }


def _audit_link_changes(
    session: TenantSession, changed: list[_LinkChange], thresholds: Thresholds, model_id: str
) -> None:
    """One audit row per link the machine made or took back: an auditor asks "why is this ticket linked to
    this runbook, and who decided?" of one link, so the answer (confidence, model, thresholds) sits on it."""
    if not changed:
        return
    session.flush()  # ids of the new links
    for change in changed:
        link = change.link
        unlinked = change.removed or link.decision is not LinkDecision.LINKED
        record_audit(
            session,
            actor=SYSTEM_ACTOR,
            action="analysis.auto_unlink" if unlinked else "analysis.auto_link",
            entity_type=LINK_ENTITY,
            entity_id=link.id,
            before=change.before,
            after={
                "ticket_id": change.ticket_id,
                "runbook_id": change.runbook_id,
                "decision": change.decision.value,
                "link": None if change.removed else _link_state(link),
                "confidence": None if change.confidence is None else float(change.confidence),
                "model_id": model_id,
                "thresholds": {"existing": thresholds.existing, "partial": thresholds.partial},
            },
        )


def analyze_ticket(engine: MatchingEngine, session: TenantSession, ticket: Ticket) -> AnalysisResult:
    """Analyse one ticket now and record the outcome in ``session`` (the caller commits)."""
    thresholds = load_settings(session, Thresholds)
    prepared = ticket_text(ticket)
    vector = engine.embedder.encode([prepared])
    engine.ticket_index.add([ticket.id], vector)
    matches = engine.search_many(
        [prepared], vector, TOP_K, exclude_ticket_ids=[ticket.id], lexical_texts=[ticket_lexical_text(ticket)]
    )[0]
    result = _result(ticket.id, matches, thresholds)
    record_result(session, ticket, result, thresholds, engine.embedder.model_id)
    return result


def _result(ticket_id: int, matches: list[RunbookMatch], thresholds: Thresholds) -> AnalysisResult:
    confidence = matches[0].confidence if matches else 0.0
    return AnalysisResult(ticket_id, thresholds.decide(confidence), confidence, tuple(matches))


def count_pending(engine: MatchingEngine, sessions: sessionmaker[TenantSession]) -> int:
    with sessions() as session:
        thresholds = load_settings(session, Thresholds)
        query = (
            select(func.count())
            .select_from(Ticket)
            .where(_stale_filter(engine.embedder.model_id, thresholds))
        )
        return session.scalar(query) or 0


def analyze_pending(
    engine: MatchingEngine,
    sessions: sessionmaker[TenantSession],
    *,
    since: datetime | None = None,
    reanalyse_all: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: Progress = NO_PROGRESS,
) -> BatchReport:
    """Analyse every ticket without a current analysis (or all, or those updated since a time).

    Without ``reanalyse_all`` it then drains the re-match requests of runbooks changed since the tickets
    were analysed (:func:`~core.matching.rematch.rematch_pending`, in ``report.rematch``); with it, every
    ticket is matched against today's runbooks, which answers the requests made before the run: they are
    deleted with its last batch. Reports ``(analysed, pending)`` after each batch; a cancel between batches
    raises :class:`~core.errors.OperationCancelledError` after saving the index of the batches committed.
    """
    started = time.perf_counter()
    report = BatchReport()
    model_id = engine.embedder.model_id
    with sessions() as session:
        thresholds = load_settings(session, Thresholds)
        # Similar lengths in one batch: the model pads every text to the batch's longest (measured: -16%).
        text_length = func.length(Ticket.title) + func.coalesce(func.length(Ticket.description), 0)
        query = select(Ticket.id).order_by(text_length, Ticket.id)
        if not reanalyse_all:
            query = query.where(_stale_filter(model_id, thresholds))
        if since is not None:
            query = query.where(Ticket.updated_at >= since)
        pending = list(session.scalars(query))
        total_tickets = session.scalar(select(func.count()).select_from(Ticket)) or 0
        last_request = latest_request_id(session)
    if last_request is not None:
        # A runbook changed since the indexes were last brought in line: match against it from the first
        # batch, so the tickets analysed here need no second pass when the requests are drained.
        engine.refresh(progress)
    report.skipped_current = total_tickets - len(pending)
    try:
        for start in range(0, len(pending), batch_size):
            raise_if_cancelled(progress, "ticket analysis")
            batch = pending[start : start + batch_size]
            finishing = reanalyse_all and since is None and start + batch_size >= len(pending)
            # Every ticket re-analysed against the current runbooks answers every re-match request made
            # before this run; they go with the last batch (a run cut short leaves them for the next).
            on_commit = None
            if finishing and last_request is not None:
                on_commit = _clear_requests_up_to(last_request)
            _analyse_batch(engine, sessions, batch, thresholds, report, on_commit=on_commit)
            done = min(start + batch_size, len(pending))
            progress.report(done, len(pending), f"analysed {done:,} of {len(pending):,} tickets")
        if not reanalyse_all:
            # Then the tickets analysed before a runbook changed (none of those just analysed).
            report.rematch = rematch_pending(engine, sessions, progress, already_current=set(pending))
        elif since is None and last_request is not None and not pending:
            with sessions.begin() as session:
                clear_requests(session, up_to_id=last_request)
    except OperationCancelledError:
        engine.save()  # the committed batches' vectors, so the next run does not embed them again
        raise
    engine.save()
    report.elapsed_s = time.perf_counter() - started
    return report


def _clear_requests_up_to(last_request: int) -> Callable[[TenantSession], None]:
    def clear(session: TenantSession) -> None:
        clear_requests(session, up_to_id=last_request)

    return clear


def _analyse_batch(
    engine: MatchingEngine,
    sessions: sessionmaker[TenantSession],
    ids: list[int],
    thresholds: Thresholds,
    report: BatchReport,
    *,
    on_commit: Callable[[TenantSession], None] | None = None,
) -> None:
    """Embed, search, decide and record one batch of tickets in one transaction (``on_commit`` joins it)."""
    model_id = engine.embedder.model_id
    with sessions.begin() as session:
        tickets = list(session.scalars(select(Ticket).where(Ticket.id.in_(ids)).order_by(Ticket.id)))
        texts = [ticket_text(t) for t in tickets]
        vectors = engine.embedder.encode(texts)
        engine.ticket_index.add([t.id for t in tickets], vectors)
        link_changes: list[_LinkChange] = []
        links = _links_of(session, ids)
        for ticket, matches in zip(tickets, _search(engine, tickets, texts, vectors), strict=True):
            result = _result(ticket.id, matches, thresholds)
            record_result(
                session,
                ticket,
                result,
                thresholds,
                model_id,
                link_changes=link_changes,
                links=links[ticket.id],
            )
            report.analysed += 1
            if result.decision is AnalysisDecision.LINK_RUNBOOK:
                report.linked += 1
            elif result.decision is AnalysisDecision.FLAG_REVIEW:
                report.flagged += 1
            else:
                report.drafts += 1
        _audit_link_changes(session, link_changes, thresholds, model_id)
        if on_commit is not None:
            on_commit(session)


def _links_of(session: TenantSession, ticket_ids: Sequence[int]) -> dict[int, list[TicketRunbookLink]]:
    """The links of a batch of tickets, per ticket (every ticket a key), in one query."""
    links: dict[int, list[TicketRunbookLink]] = {ticket_id: [] for ticket_id in ticket_ids}
    for link in session.scalars(select(TicketRunbookLink).where(TicketRunbookLink.ticket_id.in_(ticket_ids))):
        links[link.ticket_id].append(link)
    return links


def _search(
    engine: MatchingEngine, tickets: Sequence[Ticket], texts: Sequence[str], vectors: np.ndarray
) -> list[list[RunbookMatch]]:
    """The matches of a batch of tickets: the one call both analysis paths make."""
    return engine.search_many(
        texts,
        vectors,
        TOP_K,
        exclude_ticket_ids=[ticket.id for ticket in tickets],
        lexical_texts=[ticket_lexical_text(ticket) for ticket in tickets],
    )


def reanalyse_indexed(
    engine: MatchingEngine, session: TenantSession, ticket_ids: Sequence[int], thresholds: Thresholds
) -> list[AnalysisResult]:
    """Re-match tickets the ticket index already holds, with the vectors it holds, and record the results.

    For re-matching after a runbook changed (:mod:`core.matching.rematch`): the ticket's text did not change,
    so its vector did not either, and taking it from the index spares the model entirely. Tickets missing
    from the index are left out (the next analysis of stale tickets embeds them). The caller commits.
    """
    indexed = [ticket_id for ticket_id in ticket_ids if ticket_id in engine.ticket_index]
    if not indexed:
        return []
    by_id = {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_(indexed)))}
    tickets = [by_id[ticket_id] for ticket_id in indexed if ticket_id in by_id]
    vectors = engine.ticket_index.vectors([t.id for t in tickets])
    texts = [ticket_text(t) for t in tickets]
    model_id = engine.embedder.model_id
    link_changes: list[_LinkChange] = []
    links = _links_of(session, [t.id for t in tickets])
    results = []
    for ticket, matches in zip(tickets, _search(engine, tickets, texts, vectors), strict=True):
        result = _result(ticket.id, matches, thresholds)
        record_result(
            session, ticket, result, thresholds, model_id, link_changes=link_changes, links=links[ticket.id]
        )
        results.append(result)
    _audit_link_changes(session, link_changes, thresholds, model_id)
    return results
