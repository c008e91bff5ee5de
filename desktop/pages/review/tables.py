"""The review page's table views: their common look, and the queue's view with its selection rules.

The queue keeps its own order (the analysis' priority) until a header is clicked, and a decided ticket leaves
it at once with the next one selected, so the analyst never waits for a reload between decisions.

Column widths follow :mod:`desktop.widgets.table_layout`: the title column takes the room the short columns
leave (never under a readable minimum), and a cut-off cell shows its whole text as a tooltip.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QSortFilterProxyModel, Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from core.workflow.review import ReviewQueueRow
from desktop.pages.review.models import ReviewQueueModel
from desktop.widgets.table_layout import fit_columns_by_header, show_cut_text_as_tooltips
from desktop.widgets.table_models import SORT_ROLE

# Free-text columns of the queue that give up width before its Title does.
QUEUE_SHRINKABLE = ("Best runbook", "Source")


def review_table(parent: QWidget, object_name: str) -> QTableView:
    table = QTableView(parent)
    style_review_table(table, object_name)
    return table


def style_review_table(table: QTableView, object_name: str) -> None:
    table.setObjectName(object_name)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    # Tab goes to the next pane, not cell by cell (which scrolls Number and Title away and, past the last
    # column, selects another ticket); the arrows and J/K move inside the table.
    table.setTabKeyNavigation(False)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    table.verticalHeader().hide()
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    show_cut_text_as_tooltips(table)


class QueueTable(QTableView):
    """The review queue: ``queue_model`` (frozen rows) behind a sorting ``queue_proxy``; several rows may be
    selected for a bulk decision."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        style_review_table(self, "reviewQueue")
        self.queue_model = ReviewQueueModel(self)
        self.queue_proxy = QSortFilterProxyModel(self)
        self.queue_proxy.setSourceModel(self.queue_model)
        self.queue_proxy.setSortRole(SORT_ROLE)
        self.queue_proxy.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setModel(self.queue_proxy)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        # Number and Title stay in view without scrolling sideways; the columns after them scroll.
        self.column_fitter = fit_columns_by_header(self, "Title", shrinkable=QUEUE_SHRINKABLE)
        # Unsorted (-1) is the queue's own order; clicking a header sorts, and the sort indicator can be
        # cleared again by sortByColumn(-1).
        self.setSortingEnabled(True)
        self.sortByColumn(-1, Qt.SortOrder.AscendingOrder)

    def current_row(self) -> ReviewQueueRow | None:
        current = self.currentIndex()
        if not current.isValid():
            return None
        return self.queue_model.row_at(self.queue_proxy.mapToSource(current))

    def rows_in_view_order(self) -> list[ReviewQueueRow]:
        proxy = self.queue_proxy
        return [
            self.queue_model.row_at(proxy.mapToSource(proxy.index(r, 0))) for r in range(proxy.rowCount())
        ]

    def selected_rows(self) -> list[ReviewQueueRow]:
        """The selected queue rows in view order; the current row alone when nothing else is selected."""
        proxy_rows = sorted({index.row() for index in self.selectionModel().selectedRows()})
        rows = [
            self.queue_model.row_at(self.queue_proxy.mapToSource(self.queue_proxy.index(r, 0)))
            for r in proxy_rows
        ]
        if not rows:
            current = self.current_row()
            return [current] if current is not None else []
        return rows

    def proxy_row_of(self, ticket_id: int) -> int | None:
        row_number = self.queue_model.row_number_of(ticket_id)
        if row_number is None:
            return None
        return self.queue_proxy.mapFromSource(self.queue_model.index(row_number, 0)).row()

    def select_proxy_row(self, row: int) -> bool:
        """Make ``row`` (in view order) current and the only selected one; False (and nothing selected)
        when there is no such row."""
        if not 0 <= row < self.queue_proxy.rowCount():
            self.selectionModel().clear()
            return False
        index = self.queue_proxy.index(row, 0)
        self.selectionModel().setCurrentIndex(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.scrollTo(index)
        return True

    def stepped_row(self, step: int) -> int | None:
        """The view row ``step`` rows from the current one, kept inside the queue; None when it is empty."""
        count = self.queue_proxy.rowCount()
        if not count:
            return None
        current = self.currentIndex().row()
        return max(0, min(count - 1, current + step if current >= 0 else 0))

    def remove_ticket_ids(self, ticket_ids: set[int]) -> int | None:
        """Drop decided tickets; returns the ticket to select next: the one after the current row (or the
        last one left before it), None when none is left."""
        current = self.currentIndex().row()
        proxy_rows = self.rows_in_view_order()
        after = [r for r in proxy_rows[max(current, 0) :] if r.ticket_id not in ticket_ids]
        before = [r for r in proxy_rows[: max(current, 0)] if r.ticket_id not in ticket_ids]
        next_id = after[0].ticket_id if after else before[-1].ticket_id if before else None
        self.queue_model.remove_ticket_ids(ticket_ids)
        return next_id
