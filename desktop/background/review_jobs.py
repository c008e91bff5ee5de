"""What the review page runs on worker threads: the queue, a ticket's matches, drafts and decisions.

Plain functions with their own session; the matcher (``context.engine()``, which loads the model on first
use) is only touched here, never on the GUI thread. Rows out, never ORM objects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import sessionmaker

from core.queries import TicketFacets, ticket_facets
from core.store.models import AnalysisDecision
from core.store.tenancy import TenantSession
from core.workflow.drafts import RunbookDraft
from core.workflow.history import UndoStep, undo_history
from core.workflow.review import (
    DecisionRecord,
    QueueFilters,
    ReviewQueueRow,
    ReviewStatus,
    RunbookChoice,
    TicketReview,
    draft_from_ticket,
    load_review_queue,
    load_ticket_review,
    queue_counts,
    runbook_choices,
    status_counts,
)
from desktop.context import AppContext

# The head of the queue in its own order; filters narrow the rest (a 100k backlog is not read into a table).
QUEUE_LOAD_LIMIT = 5000
MATCHES_SHOWN = 5


@dataclass(frozen=True, slots=True)
class QueueLoad:
    rows: tuple[ReviewQueueRow, ...]
    counts: dict[AnalysisDecision, int]
    facets: TicketFacets
    status_counts: dict[ReviewStatus, int] = field(default_factory=dict)  # to decide, approved, rejected...


def load_queue(sessions: sessionmaker[TenantSession], filters: QueueFilters) -> QueueLoad:
    with sessions() as session:
        return QueueLoad(
            tuple(load_review_queue(session, filters, limit=QUEUE_LOAD_LIMIT)),
            queue_counts(session, filters),
            ticket_facets(session),
            status_counts(session, filters),
        )


def load_status_counts(
    sessions: sessionmaker[TenantSession], filters: QueueFilters
) -> dict[ReviewStatus, int]:
    with sessions() as session:
        return status_counts(session, filters)


def load_undo_history(sessions: sessionmaker[TenantSession], actor: str) -> tuple[UndoStep, ...]:
    """The reviewer's undo stack as the store has it (newest first): it outlives the window."""
    with sessions() as session:
        return tuple(undo_history(session, actor))


def load_counts(sessions: sessionmaker[TenantSession], filters: QueueFilters) -> dict[AnalysisDecision, int]:
    with sessions() as session:
        return queue_counts(session, filters)


def load_review(context: AppContext, ticket_id: int) -> TicketReview:
    engine = context.engine()
    with context.sessions() as session:
        return load_ticket_review(session, engine, ticket_id, k=MATCHES_SHOWN)


def build_draft(context: AppContext, ticket_id: int) -> tuple[RunbookDraft, int]:
    engine = context.engine()
    with context.sessions() as session:
        return draft_from_ticket(session, engine, ticket_id), ticket_id


def decide(
    sessions: sessionmaker[TenantSession], decision: Callable[..., DecisionRecord], *args: object
) -> DecisionRecord:
    """One decision, one transaction: the link change and its audit row commit together or not at all."""
    with sessions.begin() as session:
        return decision(session, *args)


def load_choices(sessions: sessionmaker[TenantSession]) -> tuple[RunbookChoice, ...]:
    with sessions() as session:
        return tuple(runbook_choices(session))
