"""The review page's questions: why a match is rejected, which other runbook a ticket belongs to, and whether
the step Ctrl+Z names is the one to undo."""

from __future__ import annotations

import logging

from PySide6.QtCore import QEvent, QObject, QSize, QSortFilterProxyModel, Qt
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QStyle,
    QStyleOptionFrame,
    QVBoxLayout,
    QWidget,
)
from sqlalchemy.orm import sessionmaker

from core.store.tenancy import TenantSession
from core.workflow.review import RunbookChoice
from desktop.background.review_jobs import load_choices
from desktop.background.tasks import TaskRunner
from desktop.pages.review.models import RunbookChoiceModel
from desktop.pages.review.tables import review_table

log = logging.getLogger(__name__)

ERROR_STYLE = "color: palette(bright-text); background: #b3261e; padding: 4px;"
LINE_EDIT_INNER_MARGIN = 2  # QLineEdit's horizontalMargin (qlineedit_p.h), each side


class UndoConfirmDialog(QDialog):
    """Names the step Ctrl+Z would undo, so a stale hint or a lost count never undoes the wrong decision.

    Keyboard first: Enter (Undo is the default button) or a second Ctrl+Z confirms, Esc cancels.
    """

    def __init__(self, description: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("undoConfirmDialog")
        self.setWindowTitle("Undo decision")
        self.label = QLabel(f"Undo: {description}?", self)
        self.label.setObjectName("undoDescription")
        self.label.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.undo_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.undo_button.setText("Undo")
        self.undo_button.setDefault(True)
        self.cancel_button = buttons.button(QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        again = QShortcut(QKeySequence("Ctrl+Z"), self)
        again.activated.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addWidget(buttons)
        self.undo_button.setFocus(Qt.FocusReason.OtherFocusReason)


def fit_placeholder(edit: QLineEdit) -> None:
    """Make ``edit`` at least wide enough to show its whole placeholder (the example is the point of it)."""
    option = QStyleOptionFrame()
    edit.initStyleOption(option)
    metrics = edit.fontMetrics()
    margins = edit.textMargins()
    text_width = metrics.horizontalAdvance(edit.placeholderText()) + margins.left() + margins.right()
    # QLineEdit's own sizeHint adds its 2 px inner margins on each side, then the style's frame.
    contents = QSize(text_width + 2 * LINE_EDIT_INNER_MARGIN, metrics.height())
    size = edit.style().sizeFromContents(QStyle.ContentsType.CT_LineEdit, option, contents, edit)
    edit.setMinimumWidth(size.width())


class RejectDialog(QDialog):
    """Asks why (optional): the reason is stored on the link and in the audit trail."""

    def __init__(self, count: int, runbook_title: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("rejectDialog")
        self.setWindowTitle("Reject match")
        what = (
            f"Reject “{runbook_title}” for this ticket?"
            if count == 1 and runbook_title
            else f"Reject the best match of {count} tickets?"
        )
        self.label = QLabel(what, self)
        self.label.setWordWrap(True)
        self.reason_edit = QLineEdit(self)
        self.reason_edit.setObjectName("rejectReason")
        self.reason_edit.setPlaceholderText("Reason (optional), e.g. “different product”")
        fit_placeholder(self.reason_edit)  # the dialog's own width cut the example off (issue 16)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Reject")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addWidget(self.reason_edit)
        layout.addWidget(buttons)

    def reason(self) -> str | None:
        return self.reason_edit.text().strip() or None


class LinkRunbookDialog(QDialog):
    """A search box over every runbook (approved first); Enter links the highlighted one."""

    def __init__(
        self, runner: TaskRunner, sessions: sessionmaker[TenantSession], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("linkRunbookDialog")
        self.setWindowTitle("Link to another runbook")
        self.resize(640, 420)
        self.search_edit = QLineEdit(self)
        self.search_edit.setObjectName("linkRunbookSearch")
        self.search_edit.setPlaceholderText("Search runbooks by title, service or status")
        self.search_edit.setClearButtonEnabled(True)
        self.model = RunbookChoiceModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterKeyColumn(-1)
        self.table = review_table(self, "linkRunbookTable")
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setModel(self.proxy)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.doubleClicked.connect(self.accept)
        self.error_label = QLabel(self)
        self.error_label.setStyleSheet(ERROR_STYLE)
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Link")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.search_edit)
        layout.addWidget(self.error_label)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.buttons)
        self.search_edit.textChanged.connect(self._filter)
        self.search_edit.installEventFilter(self)
        self._task = runner.run(
            load_choices, sessions, title="Loading runbooks", on_done=self._loaded, on_error=self._failed
        )

    def _loaded(self, choices: tuple[RunbookChoice, ...]) -> None:
        self.model.set_rows(choices)
        self._select_first()

    def _failed(self, exc: Exception, traceback_text: str) -> None:
        log.error("loading runbooks to link failed:\n%s", traceback_text)
        self.error_label.setText(f"Could not load runbooks: {exc}")
        self.error_label.show()

    def _filter(self, text: str) -> None:
        self.proxy.setFilterFixedString(text.strip())
        self._select_first()

    def _select_first(self) -> None:
        if self.proxy.rowCount() and not self.table.currentIndex().isValid():
            self.table.selectRow(0)
        elif self.proxy.rowCount():
            self.table.selectRow(min(self.table.currentIndex().row(), self.proxy.rowCount() - 1))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Up/Down in the search box walk the list, so the hands never leave the keyboard."""
        if watched is self.search_edit and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            step = {Qt.Key.Key_Down: 1, Qt.Key.Key_Up: -1}.get(Qt.Key(event.key()))
            if step is not None and self.proxy.rowCount():
                row = self.table.currentIndex().row() + step
                self.table.selectRow(max(0, min(self.proxy.rowCount() - 1, row)))
                return True
        return super().eventFilter(watched, event)

    def chosen(self) -> RunbookChoice | None:
        current = self.table.currentIndex()
        if not current.isValid():
            return None
        return self.model.row_at(self.proxy.mapToSource(current))

    def accept(self) -> None:
        if self.chosen() is not None:
            super().accept()

    def done(self, result: int) -> None:
        if self._task.is_active:
            self._task.cancel()
        super().done(result)
