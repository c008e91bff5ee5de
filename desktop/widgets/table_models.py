"""Table models that adapt tuples of frozen rows to Qt, and the ticket and runbook column sets.

Like vorta's ``*_model.py`` files, a model here holds nothing but immutable rows built by the core
(``TicketRow``, ``RunbookRow``) and is reset wholesale when a load finishes: there are no live ORM objects
behind it, so a view can never trigger a lazy load on the GUI thread or read a half-committed row. Sorting
and any client-side filtering belong to a ``QSortFilterProxyModel`` between model and view; it sorts on
:data:`SORT_ROLE`, which gives raw values (numbers as numbers, times as timestamps) instead of display text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt

from core.store.repository import RunbookRow, TicketRow

RowT = TypeVar("RowT")

CellValue = str | int | float | datetime | tuple[str, ...] | None
AnyIndex = QModelIndex | QPersistentModelIndex

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
DATETIME_FORMAT = "%Y-%m-%d %H:%M"

_NUMBER_ALIGNMENT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


# No slots=True: on Python 3.11 a slotted frozen generic dataclass breaks ``Column[TicketRow](...)``.
@dataclass(frozen=True)
class Column(Generic[RowT]):
    """One column: its header, how to read the cell's value from a row, and optional presentation.

    ``shrinkable``: free text (a service, tags) that may be cut, with a tooltip, before a narrow view cuts
    the title (:class:`desktop.widgets.table_layout.ColumnFitter`).
    """

    header: str
    getter: Callable[[RowT], CellValue]
    alignment: Qt.AlignmentFlag | None = None
    tooltip: Callable[[RowT], str | None] | None = None
    shrinkable: bool = False


def format_local_datetime(value: datetime) -> str:
    """The store hands back aware UTC times; people read them in their own time zone. A naive time is taken
    as UTC, as the store itself does."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone().strftime(DATETIME_FORMAT)


def display_text(value: CellValue) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_local_datetime(value)
    if isinstance(value, tuple):
        return ", ".join(value)
    return str(value)


def sort_value(value: CellValue) -> str | int | float | None:
    """None stays None: the proxy sorts invalid values after everything else, whatever the column's type."""
    if isinstance(value, datetime):
        return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, tuple):
        return ", ".join(value)
    return value


def humanize(value: str | None) -> str | None:
    """``in_review`` -> ``In review``: enum values as a person would write them."""
    if value is None:
        return None
    return value.replace("_", " ").capitalize()


class RowTableModel(QAbstractTableModel, Generic[RowT]):
    """A read-only table over a tuple of rows; :meth:`set_rows` replaces them all."""

    def __init__(self, columns: Sequence[Column[RowT]], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._columns: tuple[Column[RowT], ...] = tuple(columns)
        self._rows: tuple[RowT, ...] = ()

    @property
    def rows(self) -> tuple[RowT, ...]:
        return self._rows

    @property
    def columns(self) -> tuple[Column[RowT], ...]:
        return self._columns

    def set_rows(self, rows: Iterable[RowT]) -> None:
        self.beginResetModel()
        self._rows = tuple(rows)
        self.endResetModel()

    def row_at(self, index: AnyIndex) -> RowT:
        """The row behind an index of *this* model (map a proxy index with ``mapToSource`` first)."""
        if not index.isValid() or index.model() is not self or not 0 <= index.row() < len(self._rows):
            raise IndexError(f"no row at {index.row()}, {index.column()} in this model")
        return self._rows[index.row()]

    def row_or_none(self, index: AnyIndex) -> RowT | None:
        """The row at ``index``'s row number (a view's current index), or None when there is none."""
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        return self._rows[index.row()]

    def position_of(self, wanted: Callable[[RowT], bool]) -> int | None:
        """The row number of the first row ``wanted`` accepts (to select it again after a reload)."""
        return next((number for number, row in enumerate(self._rows) if wanted(row)), None)

    def column_index(self, header: str) -> int:
        for number, column in enumerate(self._columns):
            if column.header == header:
                return number
        raise KeyError(header)

    # --- QAbstractItemModel ---------------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's own default
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's own default
        return 0 if parent.isValid() else len(self._columns)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or index.parent().isValid():
            return None
        row_number, column_number = index.row(), index.column()
        if not (0 <= row_number < len(self._rows) and 0 <= column_number < len(self._columns)):
            return None
        column = self._columns[column_number]
        row = self._rows[row_number]
        if role == Qt.ItemDataRole.DisplayRole:
            return display_text(column.getter(row))
        if role == SORT_ROLE:
            return sort_value(column.getter(row))
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return column.alignment
        if role == Qt.ItemDataRole.ToolTipRole and column.tooltip is not None:
            return column.tooltip(row)
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return self._columns[section].header if 0 <= section < len(self._columns) else None
        return str(section + 1) if 0 <= section < len(self._rows) else None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren


def _ticket_tooltip(ticket: TicketRow) -> str:
    return ticket.title


def _runbook_tooltip(runbook: RunbookRow) -> str:
    return runbook.title


TICKET_COLUMNS: tuple[Column[TicketRow], ...] = (
    Column("Number", lambda ticket: ticket.external_id),
    Column("Title", lambda ticket: ticket.title, tooltip=_ticket_tooltip),
    Column("Severity", lambda ticket: ticket.severity),
    Column("Status", lambda ticket: ticket.status),
    Column("Category", lambda ticket: ticket.category, shrinkable=True),
    Column("Updated", lambda ticket: ticket.updated_at),
)

RUNBOOK_COLUMNS: tuple[Column[RunbookRow], ...] = (
    Column("Title", lambda runbook: runbook.title, tooltip=_runbook_tooltip),
    Column("Service", lambda runbook: runbook.service, shrinkable=True),
    Column("Status", lambda runbook: humanize(runbook.status)),
    Column("Tags", lambda runbook: runbook.tags, shrinkable=True),
    Column("Revision", lambda runbook: runbook.current_revision, alignment=_NUMBER_ALIGNMENT),
    Column("Updated", lambda runbook: runbook.updated_at),
)
