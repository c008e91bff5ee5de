"""The right of the review page: the ranked runbooks for the ticket, the selected one's section and scores,
the knowledge articles that match the ticket (:mod:`.knowledge_pane`), and the decision buttons."""

from __future__ import annotations

import html

from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core.workflow.review import MatchView
from desktop.pages.review.knowledge_pane import KnowledgePane
from desktop.pages.review.models import ConfidenceBarDelegate, MatchTableModel
from desktop.pages.review.rendering import match_html, signals_text
from desktop.pages.review.tables import review_table
from desktop.widgets.flow_layout import flow_row
from desktop.widgets.links import link_safe_browser
from desktop.widgets.table_layout import fit_columns_by_header

NEEDS_ANALYST = "needs the analyst role"  # the tooltip of a decision a viewer may not make (team mode)
MATCH_TITLE_MIN_WIDTH = 150  # with two lines, about 45 characters of a runbook title


class MatchPane(QWidget):
    """``match_table`` over ``match_model`` (the ranked matches); the page wires the buttons' clicks."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.match_model = MatchTableModel(self)
        self.match_table = review_table(self, "reviewMatches")
        self.match_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.match_table.setModel(self.match_model)
        # Runbook titles are long and differ at the end ("Microsoft Teams cannot sign in" / "… audio or
        # camera"), so they wrap onto a second line rather than elide: a handful of ranked rows has the
        # height to spare. The score columns fit their contents and the title takes the rest.
        self.match_table.setWordWrap(True)
        self.match_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.match_fitter = fit_columns_by_header(
            self.match_table, "Runbook", min_stretch=MATCH_TITLE_MIN_WIDTH, fixed={"Confidence": 72}
        )
        self._bar_delegate = ConfidenceBarDelegate(self)
        self.match_table.setItemDelegateForColumn(
            self.match_model.column_index("Confidence"), self._bar_delegate
        )

        self.confidence_bar = QProgressBar(self)
        self.confidence_bar.setObjectName("reviewConfidence")
        self.confidence_bar.setRange(0, 100)
        self.confidence_bar.setFormat("Confidence %p %")
        self.signals_label = QLabel(self)
        self.signals_label.setObjectName("reviewSignals")
        self.signals_label.setWordWrap(True)
        self.match_view = link_safe_browser(self, "reviewMatchText")

        self.approve_button = QPushButton("&Approve (A)", self)
        self.reject_button = QPushButton("&Reject (R)", self)
        self.link_button = QPushButton("&Link other (L)", self)
        self.draft_button = QPushButton("&Draft (D)", self)
        self.undo_button = QPushButton("Undo (Ctrl+Z)", self)
        decision_buttons = [
            self.approve_button,
            self.reject_button,
            self.link_button,
            self.draft_button,
            self.undo_button,
        ]
        for button in decision_buttons:
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the queue
        # A row that wraps in a narrow pane, so the buttons never set the pane's (and the page's) minimum.
        buttons = flow_row(self, decision_buttons)

        detail = QWidget(self)
        detail_layout = QVBoxLayout(detail)
        detail_layout.setContentsMargins(0, 0, 0, 0)
        detail_layout.addWidget(self.confidence_bar)
        detail_layout.addWidget(self.signals_label)
        detail_layout.addWidget(self.match_view, 1)

        self.match_splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.match_splitter.setObjectName("reviewMatchSplitter")
        self.match_splitter.setChildrenCollapsible(False)
        self.match_splitter.addWidget(self.match_table)
        self.match_splitter.addWidget(detail)
        self.knowledge_pane = KnowledgePane(self)
        self.match_splitter.addWidget(self.knowledge_pane)
        self.match_splitter.setStretchFactor(0, 1)
        self.match_splitter.setStretchFactor(1, 3)
        self.match_splitter.setStretchFactor(2, 2)

        pane_layout = QVBoxLayout(self)
        pane_layout.setContentsMargins(0, 0, 0, 0)
        pane_layout.addWidget(self.match_splitter, 1)
        pane_layout.addWidget(buttons)

    def set_matches(self, matches: tuple[MatchView, ...]) -> None:
        self.match_model.set_rows(matches)

    def current_match(self) -> MatchView | None:
        current = self.match_table.currentIndex()
        if not current.isValid():
            return None
        return self.match_model.row_at(current)

    def select_match(self, row: int) -> None:
        if 0 <= row < self.match_model.rowCount():
            self.match_table.selectionModel().setCurrentIndex(
                self.match_model.index(row, 0),
                QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
            )

    def next_match(self) -> None:
        self.select_match(self.match_table.currentIndex().row() + 1)

    def previous_match(self) -> None:
        self.select_match(max(0, self.match_table.currentIndex().row() - 1))

    def show_match(self, view: MatchView) -> None:
        self.match_view.setHtml(match_html(view))
        self.confidence_bar.setValue(round(view.match.confidence * 100))
        self.confidence_bar.setEnabled(True)
        self.signals_label.setText(signals_text(view))

    def show_no_match(self, message: str) -> None:
        self.match_view.setHtml(f"<p><i>{html.escape(message)}</i></p>" if message else "")
        self.confidence_bar.setValue(0)
        self.confidence_bar.setEnabled(False)
        self.signals_label.clear()

    def enable_buttons(self, *, has_ticket: bool, can_undo: bool, can_decide: bool = True) -> None:
        """``can_decide`` False (a viewer in team mode): every decision button off, and its tooltip says why
        rather than leaving a grey button to guess at."""
        for button in (self.approve_button, self.reject_button, self.link_button, self.draft_button):
            button.setEnabled(has_ticket and can_decide)
            button.setToolTip("" if can_decide else NEEDS_ANALYST)
        self.undo_button.setEnabled(can_undo and can_decide)
        self.undo_button.setToolTip("" if can_decide else NEEDS_ANALYST)
