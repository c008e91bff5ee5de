"""What the Tickets page runs on worker threads: plain functions, their own session, frozen rows out."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import sessionmaker

from core.store.repository import TicketRow, count_tickets, list_tickets
from core.store.tenancy import TenantSession
from core.workflow.history import HistoryEntry, TicketDecision, decision_history, ticket_decisions


@dataclass(frozen=True, slots=True)
class TicketLoad:
    ticket_rows: tuple[TicketRow, ...]
    total: int
    decisions: dict[int, TicketDecision] = field(default_factory=dict)  # by ticket id


def load_tickets(sessions: sessionmaker[TenantSession], search: str, limit: int) -> TicketLoad:
    with sessions() as session:
        ticket_rows = tuple(list_tickets(session, search=search or None, limit=limit))
        total = count_tickets(session)
        decisions = ticket_decisions(session, [row.id for row in ticket_rows])
    return TicketLoad(ticket_rows, total, decisions)


def load_ticket_history(sessions: sessionmaker[TenantSession], ticket_id: int) -> tuple[HistoryEntry, ...]:
    with sessions() as session:
        return tuple(decision_history(session, ticket_id))
