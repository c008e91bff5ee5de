"""The browse layout two pages share (Tickets, Runbooks): a search box, a sortable table of frozen rows and a
detail pane beside it.

A subclass says how to load rows (a task on the runner) and how to show one; this class owns the rest: typing
restarts a short timer, a new load cancels the previous one so a slow, stale result never overwrites a newer
one, the selection survives a reload, and a failed load shows on the page. It is a widget rather than a page
so pages can build on it without importing each other.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar, runtime_checkable

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from desktop.background.tasks import Task, TaskRunner
from desktop.widgets.table_layout import ColumnFitter, show_cut_text_as_tooltips
from desktop.widgets.table_models import SORT_ROLE, Column, RowTableModel

log = logging.getLogger(__name__)

SEARCH_DELAY_MS = 250


@runtime_checkable
class HasFilterBox(Protocol):
    """A page Edit > Find (Ctrl+F) can send the keyboard to: every page has one, so the letters typed after
    Ctrl+F land in a filter and never in a page's letter shortcuts (issue 16, item 1)."""

    def focus_filter(self) -> None: ...


def focus_filter_box(edit: QWidget) -> None:
    """Focus ``edit`` as Ctrl+F does, its text selected so typing replaces the previous filter."""
    edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
    if isinstance(edit, QLineEdit):
        edit.selectAll()


def row_filter_edit(table: QTableView, object_name: str, placeholder: str) -> QLineEdit:
    """A filter box over a table that holds every row already (gaps, connectors): rows whose cells do not
    contain the typed text are hidden, not removed, so row numbers (a chart's bars) keep their meaning."""
    edit = QLineEdit(table.parentWidget())
    edit.setObjectName(object_name)
    edit.setPlaceholderText(placeholder)
    edit.setClearButtonEnabled(True)

    def apply() -> None:
        model = table.model()
        needle = edit.text().strip().casefold()
        for row in range(model.rowCount()):
            table.setRowHidden(row, bool(needle) and needle not in _row_text(model, row))

    edit.textChanged.connect(apply)
    table.model().modelReset.connect(apply)
    table.model().rowsInserted.connect(apply)
    return edit


def _row_text(model: QAbstractItemModel, row: int) -> str:
    cells = (model.index(row, column).data() for column in range(model.columnCount()))
    return " ".join(str(cell) for cell in cells if cell is not None).casefold()


class _HasId(Protocol):
    @property
    def id(self) -> int: ...


RowT = TypeVar("RowT", bound=_HasId)


class BrowsePage(QWidget, Generic[RowT]):
    """Search box, sortable table and a detail pane over one kind of row. Subclasses load and render."""

    loaded = Signal()
    load_failed = Signal(str)

    def __init__(
        self,
        runner: TaskRunner,
        columns: Sequence[Column[RowT]],
        *,
        noun: str,
        search_placeholder: str,
        splitter_name: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._runner = runner
        self._noun = noun
        self._load_task: Task | None = None
        self.total_count: int | None = None

        self.search_edit = QLineEdit(self)
        self.search_edit.setObjectName(f"{noun}SearchEdit")
        self.search_edit.setPlaceholderText(search_placeholder)
        self.search_edit.setClearButtonEnabled(True)

        self.model: RowTableModel[RowT] = RowTableModel(columns, self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setSortLocaleAware(True)

        self.table = QTableView(self)
        self.table.setObjectName(f"{noun}Table")
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTabKeyNavigation(False)  # Tab moves between the search, the table and the detail
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        # One line of text per row: the style's default row height fits far fewer tickets on screen.
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        # The title gets the room; short columns fit what they hold; a cut-off cell has a tooltip.
        self.column_fitter = ColumnFitter(
            self.table,
            self.model.column_index("Title"),
            shrinkable=[number for number, column in enumerate(columns) if column.shrinkable],
        )
        show_cut_text_as_tooltips(self.table)
        self.table.setSortingEnabled(True)

        self.summary_label = QLabel(self)
        self.error_label = QLabel(self)
        self.error_label.setObjectName(f"{noun}ErrorLabel")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: palette(bright-text); background: #b3261e; padding: 4px;")
        self.error_label.hide()

        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName(splitter_name)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self._build_detail())
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)

        self.filter_bar = QHBoxLayout()
        self.filter_bar.addWidget(self.search_edit, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(self.filter_bar)
        layout.addWidget(self.error_label)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.summary_label)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.reload)
        self.search_edit.textChanged.connect(self._search_timer.start)
        self.search_edit.returnPressed.connect(self.reload)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_row_changed)
        self._show_no_selection()

    # Subclass hooks.
    def _build_detail(self) -> QWidget:
        raise NotImplementedError

    def _start_load(self, search: str) -> Task:
        raise NotImplementedError

    def _show_row(self, row: RowT) -> None:
        raise NotImplementedError

    def _show_no_selection(self) -> None:
        raise NotImplementedError

    def _summary(self, shown: int, total: int, search: str) -> str:
        raise NotImplementedError

    # Behaviour shared by all pages.
    def focus_search(self) -> None:
        focus_filter_box(self.search_edit)

    def focus_filter(self) -> None:
        self.focus_search()

    def search_text(self) -> str:
        return self.search_edit.text().strip()

    def reload(self) -> None:
        self._search_timer.stop()
        self.cancel_load()
        self._load_task = self._start_load(self.search_text())

    def stop(self) -> None:
        """No more loads: the window is closing (a pending search must not start one on a stopped runner)."""
        self._search_timer.stop()
        self.cancel_load()

    def cancel_load(self) -> None:
        if self._load_task is not None and self._load_task.is_active:
            self._load_task.cancel()
        self._load_task = None

    def is_loading(self) -> bool:
        return self._load_task is not None and self._load_task.is_active

    def current_row(self) -> RowT | None:
        current = self.table.currentIndex()
        if not current.isValid():
            return None
        return self.model.row_at(self.proxy.mapToSource(current))

    def _rows_loaded(self, rows: tuple[RowT, ...], total: int) -> None:
        previous = self.current_row()
        self.model.set_rows(rows)
        self.total_count = total
        self.error_label.hide()
        self.summary_label.setText(self._summary(len(rows), total, self.search_text()))
        if previous is None or not self._select_row_id(previous.id):
            self._show_no_selection()
        self.loaded.emit()

    def _load_error(self, exc: Exception, traceback_text: str) -> None:
        log.error("loading %s failed:\n%s", self._noun, traceback_text)
        message = f"Could not load {self._noun}: {exc}"
        self.error_label.setText(message)
        self.error_label.setToolTip(traceback_text)
        self.error_label.show()
        self.load_failed.emit(message)

    def _select_row_id(self, row_id: int) -> bool:
        for row_number, row in enumerate(self.model.rows):
            if row.id == row_id:
                proxy_index = self.proxy.mapFromSource(self.model.index(row_number, 0))
                self.table.selectRow(proxy_index.row())
                return True
        return False

    def _on_current_row_changed(self, _current: QModelIndex, _previous: QModelIndex) -> None:
        row = self.current_row()
        if row is None:
            self._show_no_selection()
        else:
            self._show_row(row)
