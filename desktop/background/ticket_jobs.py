"""What the Tickets page runs on worker threads: plain functions, their own session, frozen rows out."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import sessionmaker

from core.store.repository import TicketRow, count_tickets, list_tickets
from core.store.tenancy import TenantSession


@dataclass(frozen=True, slots=True)
class TicketLoad:
    ticket_rows: tuple[TicketRow, ...]
    total: int


def load_tickets(sessions: sessionmaker[TenantSession], search: str, limit: int) -> TicketLoad:
    with sessions() as session:
        ticket_rows = tuple(list_tickets(session, search=search or None, limit=limit))
        total = count_tickets(session)
    return TicketLoad(ticket_rows, total)
