"""The Tickets page: every imported or synced ticket, newest first, searchable, with its full text beside.

Loading 100k rows into a table helps nobody: the page shows the :data:`TICKET_LOAD_LIMIT` most recently
updated tickets and a search narrows the rest (in the store, on a worker).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from sqlalchemy.orm import sessionmaker

from core.store.repository import TicketRow
from core.store.tenancy import TenantSession
from desktop.background.tasks import Task, TaskRunner
from desktop.background.ticket_jobs import TicketLoad, load_tickets
from desktop.widgets.browse import BrowsePage
from desktop.widgets.links import link_safe_browser
from desktop.widgets.table_models import TICKET_COLUMNS
from desktop.widgets.ticket_detail import ticket_detail_html

TICKET_LOAD_LIMIT = 1000


class TicketsPage(BrowsePage[TicketRow]):
    def __init__(
        self, runner: TaskRunner, sessions: sessionmaker[TenantSession], parent: QWidget | None = None
    ) -> None:
        super().__init__(
            runner,
            TICKET_COLUMNS,
            noun="tickets",
            search_placeholder="Search tickets by number, title or description",
            splitter_name="ticketsSplitter",
            parent=parent,
        )
        self._sessions = sessions
        self.table.sortByColumn(self.model.column_index("Updated"), Qt.SortOrder.DescendingOrder)

    def _build_detail(self) -> QWidget:
        self.detail = link_safe_browser(self, "ticketDetail")
        return self.detail

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
        self._rows_loaded(result.ticket_rows, result.total)

    def _show_row(self, row: TicketRow) -> None:
        self.detail.setHtml(ticket_detail_html(row))

    def _show_no_selection(self) -> None:
        self.detail.setHtml("<p><i>Select a ticket to see its description and resolution notes.</i></p>")

    def _summary(self, shown: int, total: int, search: str) -> str:
        if search:
            capped = " (first matches only; refine the search)" if shown >= TICKET_LOAD_LIMIT else ""
            return f"{shown:,} of {total:,} tickets match “{search}”{capped}"
        if shown < total:
            return f"Showing the {shown:,} most recently updated of {total:,} tickets; search to find others"
        return f"{total:,} tickets"
