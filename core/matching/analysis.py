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
a link is never overwritten by a re-analysis.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.orm import sessionmaker

from core.errors import OperationCancelledError
from core.matching.engine import MatchingEngine, RunbookMatch
from core.matching.text import ticket_text
from core.progress import NO_PROGRESS, Progress, raise_if_cancelled
from core.settings import Thresholds, load_settings
from core.store.models import Analysis, AnalysisDecision, LinkDecision, Ticket, TicketRunbookLink
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


def record_result(
    session: TenantSession, ticket: Ticket, result: AnalysisResult, thresholds: Thresholds, model_id: str
) -> None:
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
    for rank, match in enumerate(suggest):
        link = existing.get(match.runbook_id)
        if link is not None and link.reviewed_at is not None:
            continue  # an analyst decided; the machine does not overrule
        auto = rank == 0 and result.decision is AnalysisDecision.LINK_RUNBOOK
        if link is None:
            link = TicketRunbookLink(
                tenant_id=session.tenant_id, ticket_id=ticket.id, runbook_id=match.runbook_id
            )
            session.add(link)
        link.confidence_score = match.confidence
        link.linked_automatically = auto
        link.decision = LinkDecision.LINKED if auto else LinkDecision.SUGGESTED
        link.linked_at = now if auto else None


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
        for ticket, matches in zip(tickets, engine.search_many(texts, vectors, TOP_K), strict=True):
            result = _result(ticket.id, matches, thresholds)
            record_result(session, ticket, result, thresholds, model_id)
            report.analysed += 1
            if result.decision is AnalysisDecision.LINK_RUNBOOK:
                report.linked += 1
            elif result.decision is AnalysisDecision.FLAG_REVIEW:
                report.flagged += 1
            else:
                report.drafts += 1
