"""The store's shared domain rules, each defined once as SQL that review, metrics, gaps and alerts compose.

Before this module each of those re-derived the rules in its own words; a change to one (say, what counts as
covered) then had to be found in four places. The rules:

* *opened time* of a ticket: the source system's ``created_at``, or ``ingested_at`` when the source gave none
  (:func:`ticket_opened_at`).
* *latest analysis* of a ticket: its ``analyses`` row with the highest id; ids grow with every run
  (:func:`latest_analysis`).
* *analysed ticket*: has at least one ``analyses`` row (:func:`is_analysed`).
* *covered ticket* (linked): has a ``ticket_runbook_links`` row whose decision is ``linked``, i.e. an analyst
  approved it, or analysis linked it automatically and no analyst reverted it (:func:`is_covered`).
* *ticket facets*: the source systems, severities and categories that occur, which filters offer
  (:func:`ticket_facets`).

The expressions are correlated with :class:`~core.store.models.Ticket`: use them in a query that selects from
the tickets table. They read the tenant's rows only because :class:`~core.store.tenancy.TenantSession` adds
the tenant filter to every statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Subquery, exists, func, select

from core.store.models import Analysis, LinkDecision, Ticket, TicketRunbookLink
from core.store.tenancy import TenantSession

__all__ = [
    "TicketFacets",
    "has_link",
    "is_analysed",
    "is_covered",
    "latest_analysis",
    "ticket_facets",
    "ticket_opened_at",
]


def ticket_opened_at() -> ColumnElement[datetime]:
    """When a ticket was opened: the source's creation time, else when it reached this store.

    SQLite hands ``coalesce`` of two datetimes back as the stored text; callers that read the value (not
    only compare it) parse it.
    """
    return func.coalesce(Ticket.created_at, Ticket.ingested_at)


def latest_analysis(ticket_ids: Sequence[int] | None = None) -> Subquery:
    """``(ticket_id, analysis_id)`` of each analysed ticket's latest analysis (of ``ticket_ids`` only, when
    given: filtered before grouping, so a lookup of a few tickets does not group the whole table). Join
    ``Analysis`` on ``analysis_id`` for its columns."""
    query = select(Analysis.ticket_id.label("ticket_id"), func.max(Analysis.id).label("analysis_id"))
    if ticket_ids is not None:
        query = query.where(Analysis.ticket_id.in_(list(ticket_ids)))
    return query.group_by(Analysis.ticket_id).subquery("latest_analysis")


def is_analysed() -> ColumnElement[bool]:
    return exists().where(Analysis.ticket_id == Ticket.id)


def has_link(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """The ticket has a runbook link meeting every one of ``conditions``."""
    return exists().where(TicketRunbookLink.ticket_id == Ticket.id, *conditions)


def is_covered() -> ColumnElement[bool]:
    """The ticket has a runbook linked: approved by an analyst, or automatic and not reverted."""
    return has_link(TicketRunbookLink.decision == LinkDecision.LINKED)


@dataclass(frozen=True, slots=True)
class TicketFacets:
    """The values the filters offer: those that occur, sorted, without empty ones."""

    source_systems: tuple[str, ...]
    severities: tuple[str, ...]
    categories: tuple[str, ...]


def _distinct_values(session: TenantSession, column: Any) -> tuple[str, ...]:
    values = session.scalars(select(column).where(column.is_not(None)).distinct().order_by(column))
    return tuple(value for value in values if value)


def ticket_facets(session: TenantSession) -> TicketFacets:
    return TicketFacets(
        source_systems=_distinct_values(session, Ticket.source_system),
        severities=_distinct_values(session, Ticket.severity),
        categories=_distinct_values(session, Ticket.category),
    )
