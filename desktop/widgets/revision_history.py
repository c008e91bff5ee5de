"""A runbook's revision history: who saved what when, and what changed, as a coloured unified diff.

The revisions (full text included) are loaded once in a worker; diffs are then computed on the GUI thread
from those frozen rows with :func:`core.workflow.runbooks.diff_revisions`, which takes well under a
millisecond for a runbook-sized text, so clicking through revisions never waits for the database.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QItemSelection, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QPalette,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.workflow.runbooks import RevisionRow, diff_revisions
from desktop.background.runbook_jobs import load_revisions
from desktop.background.tasks import Task
from desktop.context import AppContext
from desktop.widgets.table_models import Column, RowTableModel

log = logging.getLogger(__name__)

REVISION_COLUMNS: tuple[Column[RevisionRow], ...] = (
    Column(
        "Revision",
        lambda row: row.revision,
        alignment=Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
    ),
    Column("Author", lambda row: row.author),
    Column("Saved", lambda row: row.saved_at),
    Column("Title", lambda row: row.title, tooltip=lambda row: row.title),
)


class DiffHighlighter(QSyntaxHighlighter):
    """Colours a unified diff: additions green, removals red, hunk headers muted, file headers bold.

    The colours follow the palette (lighter shades on a dark background) so the diff stays readable in
    both the light and the dark system theme.
    """

    def __init__(self, document: QTextDocument, palette: QPalette) -> None:
        super().__init__(document)
        dark = palette.color(QPalette.ColorRole.Base).lightness() < 128
        self.added = QTextCharFormat()
        self.added.setForeground(QColor("#7ee787" if dark else "#116329"))
        self.removed = QTextCharFormat()
        self.removed.setForeground(QColor("#ff7b72" if dark else "#a40e26"))
        self.hunk = QTextCharFormat()
        self.hunk.setForeground(palette.color(QPalette.ColorRole.PlaceholderText))
        self.header = QTextCharFormat()
        self.header.setFontWeight(QFont.Weight.Bold)

    def highlightBlock(self, text: str) -> None:
        if text.startswith(("+++ ", "--- ")):
            text_format = self.header
        elif text.startswith("+"):
            text_format = self.added
        elif text.startswith("-"):
            text_format = self.removed
        elif text.startswith("@@"):
            text_format = self.hunk
        else:
            return
        self.setFormat(0, len(text), text_format)


class RevisionHistoryDialog(QDialog):
    """Newest revision first. One selected revision is compared with its predecessor (revision 1 with
    nothing); select two (Ctrl+click) to compare any pair, older against newer."""

    loaded = Signal()
    load_failed = Signal(str)

    def __init__(
        self,
        context: AppContext,
        runbook_id: int,
        runbook_title: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("revisionHistoryDialog")
        self.setWindowTitle(f"History — {runbook_title}")
        self.runbook_id = runbook_id
        self._context = context
        self._load_task: Task | None = None
        self._by_number: dict[int, RevisionRow] = {}

        self.model: RowTableModel[RevisionRow] = RowTableModel(REVISION_COLUMNS, self)
        self.table = QTableView(self)
        self.table.setObjectName("revisionTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(
            self.model.column_index("Title"), QHeaderView.ResizeMode.Stretch
        )

        self.compare_label = QLabel(self)
        self.compare_label.setObjectName("revisionCompareLabel")
        self.diff_view = QPlainTextEdit(self)
        self.diff_view.setObjectName("revisionDiff")
        self.diff_view.setReadOnly(True)
        self.diff_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.diff_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.highlighter = DiffHighlighter(self.diff_view.document(), self.palette())

        self.error_label = QLabel(self)
        self.error_label.setObjectName("revisionErrorLabel")
        self.error_label.setWordWrap(True)
        self.error_label.hide()

        diff_pane = QWidget(self)
        diff_layout = QVBoxLayout(diff_pane)
        diff_layout.setContentsMargins(0, 0, 0, 0)
        diff_layout.addWidget(self.compare_label)
        diff_layout.addWidget(self.diff_view, 1)
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.setObjectName("revisionHistorySplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(diff_pane)
        self.splitter.setStretchFactor(1, 3)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.error_label)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(buttons)
        self.resize(900, 650)

        self.table.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.diff_view.setPlainText("Loading revisions…")

    # --- loading ---------------------------------------------------------------------------------------

    def reload(self) -> Task:
        if self._load_task is not None and self._load_task.is_active:
            self._load_task.cancel()
        self._load_task = self._context.runner.run(
            load_revisions,
            self._context,
            self.runbook_id,
            title="Loading revision history",
            on_done=self._on_loaded,
            on_error=self._on_load_error,
        )
        return self._load_task

    def is_loading(self) -> bool:
        return self._load_task is not None and self._load_task.is_active

    def _on_loaded(self, revision_rows: tuple[RevisionRow, ...]) -> None:
        self._by_number = {row.revision: row for row in revision_rows}
        self.model.set_rows(sorted(revision_rows, key=lambda row: row.revision, reverse=True))
        self.error_label.hide()
        if revision_rows:
            self.select_revisions(max(self._by_number))
        else:
            self.diff_view.setPlainText("This runbook has no revisions.")
        self.loaded.emit()

    def _on_load_error(self, exc: Exception, traceback_text: str) -> None:
        log.error("loading revisions of runbook %s failed:\n%s", self.runbook_id, traceback_text)
        message = f"Could not load the history: {exc}"
        self.error_label.setText(message)
        self.error_label.setToolTip(traceback_text)
        self.error_label.show()
        self.diff_view.clear()
        self.load_failed.emit(message)

    # --- comparing -------------------------------------------------------------------------------------

    def revisions(self) -> tuple[RevisionRow, ...]:
        return self.model.rows

    def select_revisions(self, *numbers: int) -> None:
        """Select these revisions (one: compare with its predecessor; two: compare them)."""
        selection = QItemSelection()
        for row_number, row in enumerate(self.model.rows):
            if row.revision in numbers:
                selection.select(
                    self.model.index(row_number, 0),
                    self.model.index(row_number, self.model.columnCount() - 1),
                )
        flags = self.table.selectionModel().SelectionFlag.ClearAndSelect
        self.table.selectionModel().select(selection, flags)

    def selected_numbers(self) -> list[int]:
        rows = {index.row() for index in self.table.selectionModel().selectedRows()}
        return sorted(self.model.rows[row].revision for row in rows)

    def diff_text(self) -> str:
        return self.diff_view.toPlainText()

    def _on_selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        numbers = self.selected_numbers()
        if not numbers:
            self.compare_label.setText("Select a revision to see what it changed.")
            self.diff_view.clear()
            return
        newer = self._by_number[numbers[-1]]
        if len(numbers) == 1:
            older_numbers = [n for n in self._by_number if n < newer.revision]
            older = self._by_number[max(older_numbers)] if older_numbers else None
        else:
            older = self._by_number[numbers[0]]
        if older is None:
            self.compare_label.setText(f"Revision {newer.revision}: the first version, by {newer.author}")
        else:
            self.compare_label.setText(
                f"Changes from revision {older.revision} to revision {newer.revision} ({newer.author})"
            )
        diff = diff_revisions(older, newer)
        self.diff_view.setPlainText(diff or "No differences in title, service, tags or text.")
