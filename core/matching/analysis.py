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
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.orm import sessionmaker

from core.errors import OperationCancelledError
from core.matching.engine import MatchingEngine, RunbookMatch
from core.matching.text import ticket_text
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


def _stale_filter(model_id: str, thresholds: Thresholds) -> ColumnElement[bool]:
    current = exists().where(
        and_(
            Analysis.ticket_id == Ticket.id,
            Analysis.ticket_content_hash == Ticket.content_hash,
            Analysis.model_id == model_id,
            Analysis.threshold_existing == thresholds.existing,
            Analysis.threshold_partial == thresholds.partial,
        )
    )
    return ~current


@dataclass(frozen=True, slots=True)
class _LinkChange:
    """A link the machine made or took back, waiting for its audit row (written once the link has an id)."""

    link: TicketRunbookLink
    ticket_id: int
    match: RunbookMatch
    decision: AnalysisDecision
    before: dict[str, Any] | None


def record_result(
    session: TenantSession,
    ticket: Ticket,
    result: AnalysisResult,
    thresholds: Thresholds,
    model_id: str,
    *,
    link_changes: list[_LinkChange] | None = None,
) -> None:
    """Store the analysis and its links. The audit rows of automatic links are written here, or appended to
    ``link_changes`` for the caller to write per batch (:func:`_audit_link_changes`: one flush, not one per
    ticket)."""
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
    existing = {
        link.runbook_id: link
        for link in session.scalars(select(TicketRunbookLink).where(TicketRunbookLink.ticket_id == ticket.id))
    }
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
        if link is None:
            link = TicketRunbookLink(
                tenant_id=session.tenant_id, ticket_id=ticket.id, runbook_id=match.runbook_id
            )
            session.add(link)
        link.confidence_score = match.confidence
        link.linked_automatically = auto
        link.decision = LinkDecision.LINKED if auto else LinkDecision.SUGGESTED
        link.linked_at = now if auto else None
        was_linked = before is not None and before["decision"] == LinkDecision.LINKED.value
        if was_linked != auto:
            changed.append(_LinkChange(link, ticket.id, match, result.decision, before))
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
        record_audit(
            session,
            actor=SYSTEM_ACTOR,
            action="analysis.auto_link" if link.decision is LinkDecision.LINKED else "analysis.auto_unlink",
            entity_type=LINK_ENTITY,
            entity_id=link.id,
            before=change.before,
            after={
                "ticket_id": change.ticket_id,
                "runbook_id": change.match.runbook_id,
                "decision": change.decision.value,
                "link": _link_state(link),
                "confidence": float(change.match.confidence),
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
    matches = engine.search_many([prepared], vector, TOP_K)[0]
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

    Reports ``(analysed, pending)`` after each batch; a cancel between batches raises
    :class:`~core.errors.OperationCancelledError` after saving the index of the batches committed.
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
    report.skipped_current = total_tickets - len(pending)
    try:
        for start in range(0, len(pending), batch_size):
            raise_if_cancelled(progress, "ticket analysis")
            _analyse_batch(engine, sessions, pending[start : start + batch_size], thresholds, report)
            done = min(start + batch_size, len(pending))
            progress.report(done, len(pending), f"analysed {done:,} of {len(pending):,} tickets")
    except OperationCancelledError:
        engine.save()  # the committed batches' vectors, so the next run does not embed them again
        raise
    engine.save()
    report.elapsed_s = time.perf_counter() - started
    return report


def _analyse_batch(
    engine: MatchingEngine,
    sessions: sessionmaker[TenantSession],
    ids: list[int],
    thresholds: Thresholds,
    report: BatchReport,
) -> None:
    """Embed, search, decide and record one batch of tickets in one transaction."""
    model_id = engine.embedder.model_id
    with sessions.begin() as session:
        tickets = list(session.scalars(select(Ticket).where(Ticket.id.in_(ids)).order_by(Ticket.id)))
        texts = [ticket_text(t) for t in tickets]
        vectors = engine.embedder.encode(texts)
        engine.ticket_index.add([t.id for t in tickets], vectors)
        link_changes: list[_LinkChange] = []
        for ticket, matches in zip(tickets, engine.search_many(texts, vectors, TOP_K), strict=True):
            result = _result(ticket.id, matches, thresholds)
            record_result(session, ticket, result, thresholds, model_id, link_changes=link_changes)
            report.analysed += 1
            if result.decision is AnalysisDecision.LINK_RUNBOOK:
                report.linked += 1
            elif result.decision is AnalysisDecision.FLAG_REVIEW:
                report.flagged += 1
            else:
                report.drafts += 1
        _audit_link_changes(session, link_changes, thresholds, model_id)
