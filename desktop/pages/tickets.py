"""The Tickets page: every imported or synced ticket, newest first, searchable, with its full text beside.

Loading 100k rows into a table helps nobody: the page shows the :data:`TICKET_LOAD_LIMIT` most recently
updated tickets and a search narrows the rest (in the store, on a worker).

Each row says where the ticket stands (an analyst's approval or rejection, else what the analysis decided)
and which runbook that is about; the detail pane adds the ticket's decision history, read on a worker when
the ticket is selected. Decisions are made on the Review page, so coming back to this page reloads the list:
what it shows is never older than the last visit.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, replace
from typing import Any, cast

from PySide6.QtCore import Qt
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QWidget
from sqlalchemy.orm import sessionmaker

from core.store.repository import TicketRow
from core.store.tenancy import TenantSession
from core.workflow.history import HistoryEntry, TicketDecision, TicketState
from desktop.background.tasks import Task, TaskRunner
from desktop.background.ticket_jobs import TicketLoad, load_ticket_history, load_tickets
from desktop.widgets.browse import BrowsePage
from desktop.widgets.decision_history import history_html
from desktop.widgets.links import link_safe_browser
from desktop.widgets.table_models import TICKET_COLUMNS, CellValue, Column, format_local_datetime
from desktop.widgets.ticket_detail import ticket_detail_html

log = logging.getLogger(__name__)

TICKET_LOAD_LIMIT = 1000

STATE_LABELS: dict[TicketState, str] = {
    TicketState.APPROVED: "Approved",
    TicketState.REJECTED: "Rejected",
    TicketState.AUTO_LINKED: "Auto-linked",
    TicketState.NEEDS_REVIEW: "Needs review",
    TicketState.NEEDS_RUNBOOK: "Needs a runbook",
    TicketState.NOT_ANALYSED: "Not analysed",
}


@dataclass(frozen=True, slots=True)
class TicketListRow:
    """A ticket with where it stands, as one row of the list."""

    ticket: TicketRow
    decision: TicketDecision

    @property
    def id(self) -> int:
        return self.ticket.id


def decision_text(decision: TicketDecision) -> str:
    """ "Approved by ana on 2026-09-01 10:00", or the state alone when the machine decided."""
    text = STATE_LABELS[decision.state]
    if decision.decided_by:
        text += f" by {decision.decided_by}"
    if decision.decided_at is not None:
        text += f" on {format_local_datetime(decision.decided_at)}"
    return text


def _on_ticket(column: Column[TicketRow]) -> Column[TicketListRow]:
    """A ticket column read through the list row (every other setting of the column kept)."""
    getter, tooltip = column.getter, column.tooltip

    def read(row: TicketListRow) -> CellValue:
        return getter(row.ticket)

    def tip(row: TicketListRow) -> str | None:
        return tooltip(row.ticket) if tooltip is not None else None

    changes: dict[str, Any] = {"getter": read, "tooltip": tip if tooltip is not None else None}
    return cast(Column[TicketListRow], replace(column, **changes))


def _list_columns() -> tuple[Column[TicketListRow], ...]:
    ticket_columns = [_on_ticket(column) for column in TICKET_COLUMNS]
    title_at = next(n for n, column in enumerate(ticket_columns) if column.header == "Title")
    decision_columns: list[Column[TicketListRow]] = [
        Column(
            "Decision",
            lambda row: STATE_LABELS[row.decision.state],
            tooltip=lambda row: decision_text(row.decision),
        ),
        Column(
            "Runbook",
            lambda row: row.decision.runbook_title,
            tooltip=lambda row: row.decision.runbook_title,
            shrinkable=True,  # gives up width before the ticket's Title does (ColumnFitter)
        ),
    ]
    return (*ticket_columns[: title_at + 1], *decision_columns, *ticket_columns[title_at + 1 :])


TICKET_LIST_COLUMNS = _list_columns()


class TicketsPage(BrowsePage[TicketListRow]):
    def __init__(
        self, runner: TaskRunner, sessions: sessionmaker[TenantSession], parent: QWidget | None = None
    ) -> None:
        super().__init__(
            runner,
            TICKET_LIST_COLUMNS,
            noun="tickets",
            search_placeholder="Search tickets by number, title or description",
            splitter_name="ticketsSplitter",
            parent=parent,
        )
        self._sessions = sessions
        self._history_task: Task | None = None
        self.table.sortByColumn(self.model.column_index("Updated"), Qt.SortOrder.DescendingOrder)

    def _build_detail(self) -> QWidget:
        self.detail = link_safe_browser(self, "ticketDetail")
        return self.detail

    def showEvent(self, event: QShowEvent) -> None:
        """Back on the page: reload, since decisions on the Review page may have changed what it shows."""
        super().showEvent(event)
        if self.total_count is not None and not self.is_loading():
            self.reload()

    def stop(self) -> None:
        super().stop()
        self._cancel_history()

    def _start_load(self, search: str) -> Task:
        return self._runner.run(
            load_tickets,
            self._sessions,
            search,
            TICKET_LOAD_LIMIT,
            title="Loading tickets",
            on_done=self._on_loaded,
            on_error=self._load_error,
        )

    def _on_loaded(self, result: TicketLoad) -> None:
        not_analysed = TicketDecision(TicketState.NOT_ANALYSED)
        rows = tuple(
            TicketListRow(ticket, result.decisions.get(ticket.id, not_analysed))
            for ticket in result.ticket_rows
        )
        self._rows_loaded(rows, result.total)

    def _detail_html(self, row: TicketListRow, history: str) -> str:
        facts = [("Decision", decision_text(row.decision)), ("Runbook", row.decision.runbook_title)]
        return ticket_detail_html(row.ticket, extra_facts=facts) + history

    def _show_row(self, row: TicketListRow) -> None:
        loading = "<h3>Decision history</h3><p><i>Loading…</i></p>"
        self.detail.setHtml(self._detail_html(row, loading))
        self._cancel_history()
        self._history_task = self._runner.run(
            load_ticket_history,
            self._sessions,
            row.id,
            title=f"Loading the history of {row.ticket.external_id}",
            on_done=lambda entries: self._history_loaded(row, entries),
            on_error=self._history_error,
        )

    def _history_loaded(self, row: TicketListRow, entries: tuple[HistoryEntry, ...]) -> None:
        current = self.current_row()
        if current is None or current.id != row.id:
            return  # the analyst moved on while it loaded
        self.detail.setHtml(self._detail_html(current, history_html(entries)))

    def _history_error(self, exc: Exception, traceback_text: str) -> None:
        """Shown where the history would be; the window notifies every failed task; the log has the trace."""
        log.error("reading a ticket's decision history failed:\n%s", traceback_text)
        current = self.current_row()
        if current is not None:
            message = html.escape(f"Could not read the decision history: {exc}")
            self.detail.setHtml(
                self._detail_html(current, f"<h3>Decision history</h3><p><i>{message}</i></p>")
            )

    def _cancel_history(self) -> None:
        if self._history_task is not None and self._history_task.is_active:
            self._history_task.cancel()
        self._history_task = None

    def _show_no_selection(self) -> None:
        self.detail.setHtml(
            "<p><i>Select a ticket to see its description, resolution notes and decision history.</i></p>"
        )

    def _summary(self, shown: int, total: int, search: str) -> str:
        if search:
            capped = " (first matches only; refine the search)" if shown >= TICKET_LOAD_LIMIT else ""
            return f"{shown:,} of {total:,} tickets match “{search}”{capped}"
        if shown < total:
            return f"Showing the {shown:,} most recently updated of {total:,} tickets; search to find others"
        return f"{total:,} tickets"
