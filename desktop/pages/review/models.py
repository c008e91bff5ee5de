"""Qt models of the review page: the queue, a ticket's ranked matches, the runbooks to link to.

All three are :class:`~desktop.widgets.table_models.RowTableModel` over frozen rows from
:mod:`core.workflow.review`, so they
share its contract: no ORM objects, reset wholesale, sorted by a proxy on ``SORT_ROLE``. What they add is
presentation (decision labels, percentages, a confidence bar) and, for the queue, dropping decided tickets
without a reload, so the analyst's place in a sorted, filtered queue survives each decision. Rows of decided
tickets (a decided filter) say what was decided, about which runbook, by whom and when.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TypeVar

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QRect, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
)

from core.store.models import AnalysisDecision
from core.workflow.review import MatchView, ReviewQueueRow, ReviewStatus, RunbookChoice
from desktop.widgets.table_models import SORT_ROLE, Column, RowTableModel, format_local_datetime, humanize

AnyIndex = QModelIndex | QPersistentModelIndex
_NUMBER_ALIGNMENT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter

# What each analysis decision asks of the analyst, in the words the filter bar and the table use.
DECISION_LABELS: dict[AnalysisDecision, str] = {
    AnalysisDecision.FLAG_REVIEW: "Needs review",
    AnalysisDecision.GENERATE_RUNBOOK: "Needs a runbook",
    AnalysisDecision.LINK_RUNBOOK: "Spot-check",
}
# The decided-ticket filters, in the same words.
STATUS_LABELS: dict[ReviewStatus, str] = {
    ReviewStatus.TO_DECIDE: "To decide",
    ReviewStatus.APPROVED: "Approved",
    ReviewStatus.REJECTED: "Rejected",
    ReviewStatus.DECIDED: "All decided",
}
PERCENT_HEADERS = frozenset({"Confidence", "Semantic", "Lexical"})


def percent(value: float | None) -> str:
    return "" if value is None else f"{round(value * 100)} %"


def _decision_label(row: ReviewQueueRow) -> str:
    if row.reviewed is not None:
        return STATUS_LABELS[ReviewStatus.APPROVED if row.reviewed.approved else ReviewStatus.REJECTED]
    return DECISION_LABELS.get(row.decision, row.decision.value)


def _decision_tooltip(row: ReviewQueueRow) -> str | None:
    """Who decided and when (and why, for a rejection), on a decided ticket's row."""
    reviewed = row.reviewed
    if reviewed is None:
        return None
    verb = "Approved" if reviewed.approved else "Rejected"
    when = f" on {format_local_datetime(reviewed.reviewed_at)}" if reviewed.reviewed_at else ""
    why = f": {reviewed.reason}" if reviewed.reason else ""
    return f"{verb} “{reviewed.runbook_title}” by {reviewed.reviewed_by or 'unknown'}{when}{why}"


def _runbook_title(row: ReviewQueueRow) -> str | None:
    """The best match while the ticket waits; once decided, the runbook the decision was about."""
    return row.reviewed.runbook_title if row.reviewed is not None else row.best_runbook_title


QUEUE_COLUMNS: tuple[Column[ReviewQueueRow], ...] = (
    Column("Number", lambda row: row.external_id),
    Column("Title", lambda row: row.title, tooltip=lambda row: row.title),
    Column("Decision", _decision_label, tooltip=_decision_tooltip),
    Column("Confidence", lambda row: row.confidence, alignment=_NUMBER_ALIGNMENT),
    Column("Best runbook", _runbook_title, tooltip=_runbook_title),
    Column("Severity", lambda row: row.severity),
    Column("Status", lambda row: row.status),
    Column("Source", lambda row: row.source_system),
    Column("Updated", lambda row: row.updated_at),
)


def _link_label(view: MatchView) -> str | None:
    if view.link_decision is None:
        return None
    if view.link_decision == "linked" and view.linked_automatically:
        return "Auto-linked"
    return humanize(view.link_decision)


MATCH_COLUMNS: tuple[Column[MatchView], ...] = (
    Column("#", lambda view: view.rank, alignment=_NUMBER_ALIGNMENT),
    Column("Runbook", lambda view: view.runbook.title, tooltip=lambda view: view.runbook.title),
    Column("Confidence", lambda view: view.match.confidence),
    Column("Semantic", lambda view: view.match.dense_score, alignment=_NUMBER_ALIGNMENT),
    Column("Lexical", lambda view: view.match.coverage_score, alignment=_NUMBER_ALIGNMENT),
    Column("Link", _link_label),
)

CHOICE_COLUMNS: tuple[Column[RunbookChoice], ...] = (
    Column("Title", lambda choice: choice.title, tooltip=lambda choice: choice.title),
    Column("Status", lambda choice: humanize(choice.status)),
    Column("Service", lambda choice: choice.service),
)


RowT = TypeVar("RowT")


class PercentTableModel(RowTableModel[RowT]):
    """A row table whose score columns (fractions 0..1) read as whole percentages; sorting stays numeric."""

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if role == Qt.ItemDataRole.DisplayRole and index.isValid() and not index.parent().isValid():
            column_number = index.column()
            if (
                0 <= column_number < len(self.columns)
                and self.columns[column_number].header in PERCENT_HEADERS
            ):
                value = super().data(index, SORT_ROLE)
                return percent(value) if isinstance(value, int | float) else ""
        return super().data(index, role)


class ReviewQueueModel(PercentTableModel[ReviewQueueRow]):
    """The queue; decided tickets are dropped in place so the next one can be selected at once."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(QUEUE_COLUMNS, parent)

    def remove_ticket_ids(self, ticket_ids: Collection[int]) -> int:
        """Remove the rows of these tickets, one contiguous block at a time; returns how many went."""
        wanted = set(ticket_ids)
        removed = 0
        row_number = len(self.rows) - 1
        while row_number >= 0:  # from the end, so earlier row numbers stay valid
            if self.rows[row_number].ticket_id not in wanted:
                row_number -= 1
                continue
            last = row_number
            while row_number - 1 >= 0 and self.rows[row_number - 1].ticket_id in wanted:
                row_number -= 1
            self.beginRemoveRows(QModelIndex(), row_number, last)
            self._rows = self._rows[:row_number] + self._rows[last + 1 :]
            self.endRemoveRows()
            removed += last - row_number + 1
            row_number -= 1
        return removed

    def row_number_of(self, ticket_id: int) -> int | None:
        for row_number, row in enumerate(self.rows):
            if row.ticket_id == ticket_id:
                return row_number
        return None


class MatchTableModel(PercentTableModel[MatchView]):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(MATCH_COLUMNS, parent)


class RunbookChoiceModel(RowTableModel[RunbookChoice]):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(CHOICE_COLUMNS, parent)


class ConfidenceBarDelegate(QStyledItemDelegate):
    """Draws a fraction (the cell's ``SORT_ROLE`` value) as a small progress bar with its percentage."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        value = index.data(SORT_ROLE)
        if not isinstance(value, int | float):
            super().paint(painter, option, index)
            return
        # The selection background first, so a selected row still looks selected behind the bar.
        style = option.widget.style() if option.widget is not None else QApplication.style()
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter, option.widget)
        bar = QStyleOptionProgressBar()
        bar.rect = QRect(option.rect.adjusted(2, 3, -2, -3))
        bar.minimum = 0
        bar.maximum = 100
        bar.progress = max(0, min(100, round(value * 100)))
        bar.text = percent(value)
        bar.textVisible = True
        bar.state = option.state | QStyle.StateFlag.State_Horizontal
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, option.widget)
