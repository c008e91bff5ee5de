"""A tiny review queue for the concurrency tests: one ticket awaiting review, two runbooks suggested for it.

Written with the ORM and no model, so it costs milliseconds on either engine; the suggestions look like
what :func:`core.matching.analysis.record_result` leaves (unreviewed, the machine's ``updated_by``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import sessionmaker

from core.store.models import (
    Analysis,
    AnalysisDecision,
    LinkDecision,
    Runbook,
    RunbookStatus,
    Ticket,
    TicketRunbookLink,
)
from core.store.repository import SYSTEM_ACTOR
from core.store.tenancy import TenantSession


@dataclass(frozen=True)
class SeededTicket:
    ticket_id: int
    external_id: str
    runbook_ids: tuple[int, int]


def seed_review_ticket(
    sessions: sessionmaker[TenantSession], external_id: str = "INC0017001"
) -> SeededTicket:
    with sessions.begin() as session:
        runbooks = [
            Runbook(
                title=title, body=f"# {title}\n\nSteps.", status=RunbookStatus.APPROVED, content_hash=title
            )
            for title in ("VPN drops every hour", "Reset the VPN client")
        ]
        ticket = Ticket(
            external_id=external_id,
            source_system="csv",
            title="VPN disconnects",
            description="The VPN drops every hour.",
            content_hash=f"hash-{external_id}",
        )
        session.add_all([*runbooks, ticket])
        session.flush()
        session.add(
            Analysis(
                ticket_id=ticket.id,
                decision=AnalysisDecision.FLAG_REVIEW,
                confidence=0.6,
                best_runbook_id=runbooks[0].id,
                model_id="test",
                threshold_existing=0.8,
                threshold_partial=0.5,
                ticket_content_hash=ticket.content_hash,
            )
        )
        for runbook, confidence in zip(runbooks, (0.6, 0.55), strict=True):
            session.add(
                TicketRunbookLink(
                    ticket_id=ticket.id,
                    runbook_id=runbook.id,
                    confidence_score=confidence,
                    decision=LinkDecision.SUGGESTED,
                    updated_by=SYSTEM_ACTOR,
                )
            )
        session.flush()
        return SeededTicket(ticket.id, external_id, (runbooks[0].id, runbooks[1].id))
