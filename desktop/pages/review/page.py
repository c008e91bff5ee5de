"""The review page: the queue on the left, the ticket and its ranked runbooks side by side, decisions by key.

Keys (page-wide, off while a text field has focus so typing a filter never approves anything):
``A``/Enter approve the selected match (or, with several queue rows selected, each one's best match),
``R`` reject (a dialog asks for an optional reason), ``L`` link another runbook, ``D`` draft a new runbook,
``J``/``K`` next/previous ticket, ``Up``/``Down`` (on the queue), ``1``-``5``, ``[``/``]`` switch matches,
``O`` then ``1``/``2``/``3`` record whether the linked runbook resolved the ticket, partly, or did not help,
``Ctrl+Z`` undo the last decision (a dialog names it first; Enter or Ctrl+Z again confirms, Esc keeps it).

The status line's "Ctrl+Z undoes it" hint is only true for a moment: it expires after
:data:`HINT_TIMEOUT_MS`, when the analyst leaves the page and when the queue reloads (an import or analysis
landed), so it never invites an undo of something the analyst no longer has in mind.

The page is put together from its parts, each in its own module of this package: the filter bar
(:mod:`.filter_bar`), the queue (:mod:`.tables`), the ticket (:mod:`.ticket_pane`), the ranked matches and
the decision buttons (:mod:`.match_pane`), the decisions and their undo stack (:mod:`.decisions`) and the two
dialogs (:mod:`.dialogs`). This module owns what ties them together: loading, selection, keys.

Every database read and write runs through the context's :class:`~desktop.background.tasks.TaskRunner` with
its own session (:mod:`desktop.background.review_jobs`); the matcher (``context.engine()``, which loads the
model on first use) is only touched in workers. A decided ticket is dropped from the model at once and the
next one selected, so the analyst never waits for a reload between decisions; the counts are refreshed
behind. Errors show on the page and go out through :attr:`ReviewPage.error_occurred`.

Team mode (issue 17). Other analysts decide on the same queue: the page polls a change token every five
seconds while shown (:mod:`.polling`; polling, not LISTEN/NOTIFY, see :mod:`core.workflow.changes`) and
reloads the queue when others changed it, keeping the selected ticket, with "Queue updated: 2 decisions by
alice" on the status line. A decision carries the ticket's links as the page showed them; if another
analyst got there first it is refused with "INC… was changed by alice at …", shown on the page (not as a
failure), and the queue and the ticket reload. A viewer (:func:`core.store.team.current_role`) gets the
page with every decision action and its key turned off, each button saying "needs the analyst role".

For the window: :attr:`ReviewPage.decision_made` (a :class:`~core.workflow.review.DecisionRecord`, also for
undo) so other pages can refresh, and :attr:`ReviewPage.draft_requested` ``(RunbookDraft, ticket_id)`` for
the runbook editor; once the editor saved the draft, call :meth:`ReviewPage.record_draft` with its id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QEvent, QModelIndex, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent, QKeyEvent, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDialog,
    QFrame,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QScrollArea,
    QSplitter,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from core.store.models import AnalysisDecision, LinkDecision
from core.workflow.changes import QueueChanges
from core.workflow.outcomes import OutcomeRecord
from core.workflow.review import (
    DECISION_ORDER,
    DecisionRecord,
    LinkVersions,
    MatchView,
    QueueFilters,
    ReviewQueueRow,
    TicketReview,
)
from desktop.background.review_jobs import (
    MATCHES_SHOWN,
    QUEUE_LOAD_LIMIT,
    QueueLoad,
    load_counts,
    load_review,
    load_status_counts,
)
from desktop.background.tasks import ErrorCallback, Task
from desktop.context import AppContext
from desktop.pages.review.decisions import ReviewDecisions, Target, action_text, subject_text, tickets_text
from desktop.pages.review.dialogs import ERROR_STYLE, LinkRunbookDialog, RejectDialog, UndoConfirmDialog
from desktop.pages.review.filter_bar import QueueFilterBar
from desktop.pages.review.match_pane import MatchPane
from desktop.pages.review.models import DECISION_LABELS
from desktop.pages.review.outcome_dialog import OUTCOME_WORDS, OutcomeDialog
from desktop.pages.review.polling import POLL_INTERVAL_MS, QueuePoller, QueueSnapshot, load_queue_snapshot
from desktop.pages.review.tables import QueueTable
from desktop.pages.review.ticket_pane import TicketPane
from desktop.widgets.browse import focus_filter_box
from desktop.widgets.writeback_status import WritebackStatusWidget

log = logging.getLogger(__name__)

SEARCH_DELAY_MS = 250
# Holding J down must not start a model search per ticket passed; the one the analyst stops on is loaded.
DETAIL_DELAY_MS = 120
# Long enough to read "Approved 1 ticket. Ctrl+Z undoes it." and act on it; short enough not to outlive it.
HINT_TIMEOUT_MS = 8000
# The keys that decide (or undo a decision): off for a viewer. Moving through tickets and matches stays on.
DECIDING_KEYS = frozenset({"A", "Return", "Enter", "R", "L", "D", "O", "Ctrl+Z"})


def _is_text_input(widget: QWidget | None) -> bool:
    """A widget where letters and Enter are typing: the page's letter shortcuts stand aside for it."""
    while widget is not None:
        if isinstance(widget, QLineEdit | QAbstractSpinBox | QTextEdit | QPlainTextEdit):
            return True
        if isinstance(widget, QComboBox) and widget.isEditable():
            return True
        widget = widget.parentWidget()
    return False


class ReviewPage(QWidget):
    """Queue | ticket and similar tickets | ranked runbooks; see the module docstring for keys and signals."""

    decision_made = Signal(object)  # DecisionRecord (an undo too)
    draft_requested = Signal(object, int)  # RunbookDraft, ticket id
    error_occurred = Signal(str)
    queue_loaded = Signal()

    def __init__(
        self,
        context: AppContext,
        parent: QWidget | None = None,
        hint_timeout_ms: int = HINT_TIMEOUT_MS,
        poll_interval_ms: int = POLL_INTERVAL_MS,
    ) -> None:
        super().__init__(parent)
        self.context = context
        self._runner = context.runner
        self._sessions = context.sessions
        self._queue_task: Task | None = None
        self._review_task: Task | None = None
        self._review: TicketReview | None = None
        self._select_after_load: int | None = None
        self._loaded_once = False
        self.counts: dict[AnalysisDecision, int] = {}
        self.active_dialog: QDialog | None = None
        self.ask_reject_reason = True
        self._outcome_subject = ""  # "INC0010042 → “VPN …”" of the outcome being saved, for its message
        self.can_decide = True  # False for a viewer (team mode): set by every queue load
        self._status_after_load = ""  # "Queue updated: …" or a conflict's message, shown once the load lands
        self._keep_position = False  # a reload others caused: a vanished ticket gives way to its neighbour
        self._error_after_load = ""  # a refused decision's message: the reload it asks for must not hide it
        self.setObjectName("reviewPage")

        self.filter_bar = QueueFilterBar(self)
        self.queue_table = QueueTable(self)
        # Where the approved runbook stands in the ticket's own system (an opt-in write-back).
        self.writeback_status = WritebackStatusWidget(context.runner, context.sessions, context.reviewer)
        self.ticket_pane = TicketPane(self, footer=self.writeback_status)
        self.match_pane = MatchPane(self)
        self.decisions = ReviewDecisions(context, self._error_handler, self)
        # The parts' widgets, by the names the page has always offered (tests and the window use them).
        self.search_edit = self.filter_bar.search_edit
        self.decision_combo = self.filter_bar.decision_combo
        self.source_combo = self.filter_bar.source_combo
        self.severity_combo = self.filter_bar.severity_combo
        self.confidence_min = self.filter_bar.confidence_min
        self.confidence_max = self.filter_bar.confidence_max
        self.date_field_combo = self.filter_bar.date_field_combo
        self.date_from = self.filter_bar.date_from
        self.date_to = self.filter_bar.date_to
        self.queue_model = self.queue_table.queue_model
        self.queue_proxy = self.queue_table.queue_proxy
        self.ticket_splitter = self.ticket_pane
        self.ticket_view = self.ticket_pane.ticket_view
        self.similar_view = self.ticket_pane.similar_view
        self.match_model = self.match_pane.match_model
        self.match_table = self.match_pane.match_table
        self.match_view = self.match_pane.match_view
        self.match_splitter = self.match_pane.match_splitter
        self.confidence_bar = self.match_pane.confidence_bar
        self.signals_label = self.match_pane.signals_label
        self.approve_button = self.match_pane.approve_button
        self.reject_button = self.match_pane.reject_button
        self.link_button = self.match_pane.link_button
        self.draft_button = self.match_pane.draft_button
        self.undo_button = self.match_pane.undo_button
        self.knowledge_pane = self.match_pane.knowledge_pane
        self.undo_stack = self.decisions.undo_stack

        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("reviewSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.queue_table)
        self.splitter.addWidget(self.ticket_pane)
        self.splitter.addWidget(self.match_pane)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setStretchFactor(2, 3)

        self.counts_label = QLabel(self)
        self.counts_label.setObjectName("reviewCounts")
        self.status_label = QLabel(self)
        self.status_label.setObjectName("reviewStatus")
        self.status_label.setWordWrap(True)
        self.error_label = QLabel(self)
        self.error_label.setObjectName("reviewError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(ERROR_STYLE)
        self.error_label.hide()

        # Three panes, a filter bar and the decision buttons need about 950 px; in a narrower window the page
        # scrolls rather than forcing the whole window (every page shares one stack) to that width.
        content = QWidget(self)
        content_layout = QVBoxLayout(content)
        content_layout.setContentsMargins(0, 0, 0, 0)
        content_layout.addWidget(self.filter_bar)
        content_layout.addWidget(self.counts_label)
        content_layout.addWidget(self.error_label)
        content_layout.addWidget(self.splitter, 1)
        content_layout.addWidget(self.status_label)
        self.scroll_area = QScrollArea(self)
        self.scroll_area.setObjectName("reviewScroll")
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # a frame, not a pane: Tab passes it by
        for view in (self.ticket_view, self.similar_view, self.match_view):
            view.setTabChangesFocus(True)  # Tab leaves for the next pane instead of walking the links
        self.scroll_area.setWidget(content)
        layout = QVBoxLayout(self)
        layout.addWidget(self.scroll_area)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.reload)
        self._detail_timer = QTimer(self)
        self._detail_timer.setSingleShot(True)
        self._detail_timer.setInterval(DETAIL_DELAY_MS)
        self._detail_timer.timeout.connect(self._load_current_review)
        self._hint_timer = QTimer(self)
        self._hint_timer.setSingleShot(True)
        self._hint_timer.setInterval(hint_timeout_ms)
        self._hint_timer.timeout.connect(self._expire_hint)
        self._hint_text = ""
        self.poller = QueuePoller(
            context.runner, context.sessions, context.reviewer, self.is_loading, poll_interval_ms, self
        )
        self._connect_parts()
        self._build_shortcuts()
        self._show_no_ticket()

    # --- construction ----------------------------------------------------------------------------------

    def _connect_parts(self) -> None:
        self.filter_bar.edited.connect(self._search_timer.start)
        self.filter_bar.changed.connect(self.reload)
        self.queue_table.selectionModel().currentRowChanged.connect(self._on_current_ticket_changed)
        self.queue_table.installEventFilter(self)
        self.match_table.selectionModel().currentRowChanged.connect(self._on_current_match_changed)
        for button, slot in (
            (self.approve_button, self.approve_selected),
            (self.reject_button, self.reject_selected),
            (self.link_button, self.link_other_runbook),
            (self.draft_button, self.draft_runbook),
            (self.undo_button, self.undo_last),
        ):
            button.clicked.connect(slot)
        self.decisions.message.connect(self.status_label.setText)
        self.decisions.decided.connect(self._decision_done)
        self.decisions.undone.connect(self._undo_done)
        self.decisions.history_changed.connect(self._update_buttons)
        self.decisions.draft_ready.connect(self.draft_requested)
        self.decisions.outcome_recorded.connect(self._outcome_recorded)
        self.decisions.conflicted.connect(self._decision_conflicted)
        self.poller.changed.connect(self._others_changed)
        self.poller.failed.connect(self.status_label.setText)

    def _build_shortcuts(self) -> None:
        bindings: list[tuple[str, Callable[[], None]]] = [
            ("A", self.approve_selected),
            ("Return", self.approve_selected),
            ("Enter", self.approve_selected),
            ("R", self.reject_selected),
            ("L", self.link_other_runbook),
            ("D", self.draft_runbook),
            ("O", self.record_outcome),
            ("J", self.next_ticket),
            ("K", self.previous_ticket),
            ("]", self.next_match),
            ("[", self.previous_match),
            ("Ctrl+Z", self.undo_last),
        ]
        bindings += [
            (str(number), self._match_selector(number - 1)) for number in range(1, MATCHES_SHOWN + 1)
        ]
        self.shortcuts: dict[str, QShortcut] = {}
        for key, slot in bindings:
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)
            self.shortcuts[key] = shortcut
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.focusChanged.connect(self._on_focus_changed)

    def _match_selector(self, row: int) -> Callable[[], None]:
        def select() -> None:
            self.select_match(row)

        return select

    def showEvent(self, event: QShowEvent) -> None:
        """The queue loads when the page is first shown, so a window opened on another page pays nothing."""
        super().showEvent(event)
        focus = QApplication.focusWidget()
        if focus is None or not self.isAncestorOf(focus):
            # Keyboard first: arriving on the page puts the keys on the queue, not in the first text box.
            self.queue_table.setFocus(Qt.FocusReason.OtherFocusReason)
        if not self._loaded_once and not (self._queue_task is not None and self._queue_task.is_active):
            self.reload()
        elif self.current_row() is not None and self._review is None:
            self._detail_timer.start()
        self.poller.start()

    def hideEvent(self, event: QHideEvent) -> None:
        """Hidden (another page, or the window closing): no load may start behind the analyst's back."""
        self._search_timer.stop()
        self._detail_timer.stop()
        self.poller.stop()  # nobody is looking; the first load or poll after showing catches up
        self._expire_hint()  # back on the page later, "Ctrl+Z undoes it" would no longer be about now
        super().hideEvent(event)

    def focus_filter(self) -> None:
        """Edit > Find (Ctrl+F): the filter box, where the letter shortcuts stand aside."""
        focus_filter_box(self.search_edit)

    def splitters(self) -> tuple[QSplitter, ...]:
        """For the window to save and restore; object names are stable settings keys."""
        return (self.splitter, self.ticket_splitter, self.match_splitter)

    # --- filters and loading ------------------------------------------------------------------------------

    def filters(self) -> QueueFilters:
        return self.filter_bar.filters()

    def mark_stale(self) -> None:
        """New analyses or imports happened while hidden: load afresh when next shown."""
        self._loaded_once = False

    def reload(self) -> None:
        """Load the queue with the current filters; a newer load cancels an older one."""
        self._search_timer.stop()
        if self._queue_task is not None and self._queue_task.is_active:
            self._queue_task.cancel()
        self._queue_task = self._runner.run(
            load_queue_snapshot,
            self._sessions,
            self.filters(),
            title="Loading the review queue",
            on_done=self._snapshot_loaded,
            on_error=self._error_handler("load the review queue"),
        )
        self.decisions.refresh_history()  # the undo stack as the store has it (it outlives the window)

    def is_loading(self) -> bool:
        return any(
            task is not None and task.is_active
            for task in (self._queue_task, self._review_task, *self.decisions.tasks())
        )

    def stop(self) -> None:
        """The window is closing: no new loads, and pending ones are dropped."""
        self._search_timer.stop()
        self._detail_timer.stop()
        self.poller.stop()
        for task in (self._queue_task, self._review_task):
            if task is not None and task.is_active:
                task.cancel()
        self.decisions.stop()
        if self.active_dialog is not None:
            self.active_dialog.reject()

    def _snapshot_loaded(self, snapshot: QueueSnapshot) -> None:
        self.poller.token = snapshot.token
        if snapshot.can_decide != self.can_decide:
            self.can_decide = snapshot.can_decide
            self._refresh_shortcuts(QApplication.focusWidget())
        self._queue_loaded(snapshot.load)

    def _queue_loaded(self, result: QueueLoad) -> None:
        self._loaded_once = True
        self._expire_hint()  # the queue changed under the hint (an import, an analysis, new filters)
        previous = self.current_row()
        previous_position = self.queue_table.currentIndex().row()
        keep_position, self._keep_position = self._keep_position, False
        self.filter_bar.set_facets(result.facets)
        self.queue_model.set_rows(result.rows)
        self._show_counts(result.counts)
        self.filter_bar.show_status_counts(result.status_counts)
        self.error_label.hide()
        wanted, self._select_after_load = self._select_after_load, None
        selected = wanted is not None and self.select_ticket(wanted)
        if not selected and (previous is None or not self.select_ticket(previous.ticket_id)):
            # Others decided the ticket on screen: the analyst stays where they were in the queue.
            row_count = self.queue_proxy.rowCount()
            self._select_proxy_row(min(max(previous_position, 0), row_count - 1) if keep_position else 0)
        self._reload_review_if_changed()
        status, self._status_after_load = self._status_after_load, ""
        if status:
            self.status_label.setText(status)
        refused, self._error_after_load = self._error_after_load, ""
        if refused:
            self.error_label.setText(refused)
            self.error_label.show()
        self._update_buttons()
        self.queue_loaded.emit()

    def _reload_review_if_changed(self) -> None:
        """The selected ticket stayed, but its links are not what its side-by-side view was loaded with
        (another analyst's undo, a re-analysis): load the view again, so a decision is made on what is."""
        row = self.current_row()
        review = self._review
        if row is None or review is None or review.ticket.id != row.ticket_id:
            return
        if row.seen is not None and review.seen is not None and row.seen != review.seen:
            self._review = None
            self._detail_timer.start()

    def _others_changed(self, changes: QueueChanges) -> None:
        """Another analyst decided (or a sync analysed tickets): reload, keeping the analyst's place."""
        self._status_after_load = changes.summary()
        self._keep_position = True
        self.reload()

    def _show_counts(self, counts: dict[AnalysisDecision, int]) -> None:
        self.counts = dict(counts)
        shown = self.queue_model.rowCount()
        capped = f" (showing the first {shown:,}; filter to see others)" if shown >= QUEUE_LOAD_LIMIT else ""
        self.counts_label.setText(
            " · ".join(f"{DECISION_LABELS[d]}: {counts.get(d, 0):,}" for d in DECISION_ORDER)
            + f" · In queue: {sum(counts.values()):,}{capped}"
        )
        self.filter_bar.show_counts(counts)

    def _refresh_counts(self) -> None:
        self._runner.run(
            load_counts,
            self._sessions,
            self.filters(),
            title="Counting the review queue",
            on_done=self._show_counts,
            on_error=self._error_handler("count the review queue"),
        )
        self._runner.run(
            load_status_counts,
            self._sessions,
            self.filters(),
            title="Counting decided tickets",
            on_done=self.filter_bar.show_status_counts,
            on_error=self._error_handler("count the decided tickets"),
        )

    # --- selection ----------------------------------------------------------------------------------------

    def current_row(self) -> ReviewQueueRow | None:
        return self.queue_table.current_row()

    def selected_rows(self) -> list[ReviewQueueRow]:
        """The selected queue rows in view order; the current row alone when nothing else is selected."""
        return self.queue_table.selected_rows()

    def select_ticket(self, ticket_id: int) -> bool:
        proxy_row = self.queue_table.proxy_row_of(ticket_id)
        if proxy_row is None:
            return False
        self._select_proxy_row(proxy_row)
        return True

    def _select_proxy_row(self, row: int) -> None:
        if not self.queue_table.select_proxy_row(row):
            self._show_no_ticket()

    def next_ticket(self) -> None:
        self._step_ticket(1)

    def previous_ticket(self) -> None:
        self._step_ticket(-1)

    def _step_ticket(self, step: int) -> None:
        row = self.queue_table.stepped_row(step)
        if row is not None:
            self._select_proxy_row(row)

    def _on_current_ticket_changed(self, _current: QModelIndex, _previous: QModelIndex) -> None:
        row = self.current_row()
        if row is None:
            self._show_no_ticket()
            return
        if self._review is not None and self._review.ticket.id == row.ticket_id:
            return
        self._review = None
        self.match_pane.set_matches(())
        self.ticket_pane.show_loading(row.title)
        self.writeback_status.show_ticket(row.ticket_id)
        self.match_pane.show_no_match("Loading matches…")
        self.knowledge_pane.show_message("Finding knowledge articles…")
        self._detail_timer.start()
        self._update_buttons()

    def _load_current_review(self) -> None:
        row = self.current_row()
        if row is None:
            return
        if self._review_task is not None and self._review_task.is_active:
            self._review_task.cancel()
        self._review_task = self._runner.run(
            load_review,
            self.context,
            row.ticket_id,
            title=f"Matching {row.external_id}",
            on_done=self._review_ready,
            on_error=self._error_handler(f"match {row.external_id}"),
        )

    def _review_ready(self, review: TicketReview) -> None:
        row = self.current_row()
        if row is None or row.ticket_id != review.ticket.id:
            return  # the analyst moved on while it loaded
        self._review = review
        self.ticket_pane.show_similar(review)
        self.match_pane.set_matches(review.matches)
        self.knowledge_pane.show_articles(review.articles)
        if review.matches:
            self.select_match(0)
        else:
            self.ticket_pane.show_review(review, ())
            self.match_pane.show_no_match("No approved runbook matches this ticket. Press D to draft one.")
        self._update_buttons()

    def current_match(self) -> MatchView | None:
        if self._review is None:
            return None
        return self.match_pane.current_match()

    def select_match(self, row: int) -> None:
        self.match_pane.select_match(row)

    def next_match(self) -> None:
        self.match_pane.next_match()

    def previous_match(self) -> None:
        self.match_pane.previous_match()

    def _on_current_match_changed(self, _current: QModelIndex, _previous: QModelIndex) -> None:
        view = self.current_match()
        if view is None or self._review is None:
            return
        self.ticket_pane.show_review(self._review, view.match.shared_terms)
        self.match_pane.show_match(view)

    def _show_no_ticket(self) -> None:
        self._review = None
        self.writeback_status.show_ticket(None)
        self.match_pane.set_matches(())
        message = "The queue is empty." if self.queue_model.rowCount() == 0 else "Select a ticket to review."
        self.ticket_pane.show_message(message)
        self.match_pane.show_no_match("")
        self.knowledge_pane.show_message("")
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.match_pane.enable_buttons(
            has_ticket=self.current_row() is not None,
            can_undo=bool(self.decisions.undo_stack),
            can_decide=self.can_decide,
        )

    # --- keys ---------------------------------------------------------------------------------------------

    def _on_focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        self._refresh_shortcuts(new)

    def _refresh_shortcuts(self, focus: QWidget | None) -> None:
        """Letter and Enter shortcuts stand aside while a text field has focus, so typing stays typing, and
        all of them while a dialog of the page is open: its keys are the dialog's until it closes."""
        typing = _is_text_input(focus)
        dialog_open = self.active_dialog is not None
        for key, shortcut in self.shortcuts.items():
            allowed = self.can_decide or key not in DECIDING_KEYS  # a viewer's keys only move around
            # A text field handles Ctrl+Z itself (it takes the shortcut override), so undo stays on there.
            shortcut.setEnabled(allowed and not dialog_open and (key == "Ctrl+Z" or not typing))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Up/Down on the queue switch matches (J/K move through tickets; Shift+arrows still select)."""
        if watched is self.queue_table and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            # Arrow keys carry the keypad modifier on some platforms (macOS); it is not a real modifier here.
            if event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier == Qt.KeyboardModifier.NoModifier:
                if event.key() == Qt.Key.Key_Down:
                    self.next_match()
                    return True
                if event.key() == Qt.Key.Key_Up:
                    self.previous_match()
                    return True
        return super().eventFilter(watched, event)

    # --- decisions ----------------------------------------------------------------------------------------

    def approve_selected(self) -> None:
        rows = self.selected_rows()
        if not rows or not self.can_decide or self.decisions.busy():
            return
        self.decisions.approve(rows, self._target(rows[0]) if len(rows) == 1 else None, self._seen(rows))

    def _seen(self, rows: list[ReviewQueueRow]) -> dict[int, LinkVersions]:
        """Each ticket's links as the page shows them: the side-by-side view's when it is on screen (it shows
        the links' decisions), else the queue row's."""
        seen = {row.ticket_id: row.seen for row in rows if row.seen is not None}
        if self._review is not None and self._review.seen is not None and self._review.ticket.id in seen:
            seen[self._review.ticket.id] = self._review.seen
        return seen

    def _target(self, row: ReviewQueueRow) -> Target | None:
        """The match a decision on ``row`` is about: the selected one once loaded, else the analysis' best."""
        view = self.current_match()
        if view is not None and self._review is not None and self._review.ticket.id == row.ticket_id:
            return view.runbook.id, view.match.confidence, view.runbook.title
        if row.best_runbook_id is None:
            return None
        return row.best_runbook_id, row.confidence, row.best_runbook_title

    def reject_selected(self) -> None:
        rows = self.selected_rows()
        if not rows or not self.can_decide or self.decisions.busy():
            return
        target = self._target(rows[0]) if len(rows) == 1 else None
        if len(rows) == 1 and target is None:
            self.status_label.setText(f"{rows[0].external_id} has no match to reject.")
            return
        seen = self._seen(rows)
        if not self.ask_reject_reason:
            self.decisions.reject(rows, target, None, seen)
            return
        dialog = RejectDialog(len(rows), target[2] if target else None, self)
        dialog.accepted.connect(lambda: self.decisions.reject(rows, target, dialog.reason(), seen))
        self._open_dialog(dialog)

    def link_other_runbook(self) -> None:
        row = self.current_row()
        if row is None or not self.can_decide or self.decisions.busy():
            return
        dialog = LinkRunbookDialog(self._runner, self._sessions, self)
        seen = self._seen([row]).get(row.ticket_id)

        def chosen() -> None:
            choice = dialog.chosen()
            if choice is not None:
                self.decisions.link(row, choice.id, choice.title, seen)

        dialog.accepted.connect(chosen)
        self._open_dialog(dialog)
        dialog.search_edit.setFocus(Qt.FocusReason.OtherFocusReason)

    def draft_runbook(self) -> None:
        row = self.current_row()
        if row is not None and self.can_decide:
            self.decisions.draft(row)

    def record_draft(self, ticket_id: int, runbook_id: int) -> None:
        """Call once the editor saved the draft opened for ``ticket_id``: links it as an undoable decision."""
        row_number = self.queue_model.row_number_of(ticket_id)
        external_id = None
        seen = None
        if row_number is not None:  # so the undo dialog can name the ticket as the queue shows it
            row = self.queue_model.row_at(self.queue_model.index(row_number, 0))
            external_id = row.external_id
            seen = self._seen([row]).get(ticket_id)
        self.decisions.record_draft(ticket_id, runbook_id, external_id, seen)

    def record_outcome(self) -> None:
        """``O``: ask whether the linked runbook fixed the ticket (1/2/3 answer, Esc asks nothing)."""
        row = self.current_row()
        if row is None or not self.can_decide or self.decisions.busy() or self.active_dialog is not None:
            return
        target = self._linked_target(row)
        if target is None:
            self.status_label.setText(
                f"{row.external_id} has no linked runbook: approve (A) or link (L) one, then its outcome (O)."
            )
            return
        runbook_id, title = target
        dialog = OutcomeDialog(row.external_id, title, self)

        def chosen() -> None:
            outcome = dialog.chosen()
            if outcome is not None:
                self._outcome_subject = subject_text(row.external_id, title)
                self.decisions.record_outcome(row, runbook_id, title, outcome)

        dialog.accepted.connect(chosen)
        self._open_dialog(dialog)

    def _linked_target(self, row: ReviewQueueRow) -> tuple[int | None, str | None] | None:
        """The runbook an outcome is about: the selected match if it is linked, else the linked one among the
        matches; None when none is. Before the matches load, an automatic link is the analysis' best match,
        and otherwise the store picks the linked runbook (and refuses when there is none)."""
        if self._review is None or self._review.ticket.id != row.ticket_id:
            if row.decision is AnalysisDecision.LINK_RUNBOOK and row.best_runbook_id is not None:
                return row.best_runbook_id, row.best_runbook_title
            return None, None
        selected = self.current_match()
        linked = [view for view in self._review.matches if view.link_decision == LinkDecision.LINKED.value]
        if selected is not None and any(view.runbook.id == selected.runbook.id for view in linked):
            return selected.runbook.id, selected.runbook.title
        return (linked[0].runbook.id, linked[0].runbook.title) if linked else None

    def _outcome_recorded(self, record: OutcomeRecord) -> None:
        words = OUTCOME_WORDS[record.outcome]
        self.status_label.setText(f"Outcome recorded: {self._outcome_subject}, {words}.")
        self.error_label.hide()

    def undo_last(self) -> None:
        """Ctrl+Z: name the step first; it is undone only once the analyst confirms that it is the one."""
        description = self.decisions.describe_last()
        if (
            not self.can_decide
            or description is None
            or self.decisions.busy()
            or self.active_dialog is not None
        ):
            return
        self._expire_hint()
        dialog = UndoConfirmDialog(description, self)
        dialog.accepted.connect(self.decisions.undo_last)
        self._open_dialog(dialog)

    def _open_dialog(self, dialog: QDialog) -> None:
        self.active_dialog = dialog
        self._refresh_shortcuts(QApplication.focusWidget())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(self._dialog_closed)
        dialog.open()

    def _dialog_closed(self) -> None:
        self.active_dialog = None
        self.queue_table.setFocus(Qt.FocusReason.OtherFocusReason)
        self._refresh_shortcuts(QApplication.focusWidget())

    def _decision_done(self, record: DecisionRecord) -> None:
        decided = set(record.ticket_ids)
        self._drop_tickets(decided)
        message = f"{action_text(record.action)} {tickets_text(len(decided))}."
        if record.skipped_ticket_ids:
            skipped = len(record.skipped_ticket_ids)
            message += f" {skipped} had no match and {'stays' if skipped == 1 else 'stay'} in the queue."
        if record.changes:
            self._show_hint(message + " Ctrl+Z undoes it.")
        else:
            self.status_label.setText(message)
        self.error_label.hide()
        self._update_buttons()
        self._refresh_counts()
        self.decision_made.emit(record)

    def _show_hint(self, text: str) -> None:
        self._hint_text = text
        self.status_label.setText(text)
        self._hint_timer.start()

    def _expire_hint(self) -> None:
        """Clear the hint if it is still what the status line shows (a newer message stays)."""
        self._hint_timer.stop()
        if self._hint_text and self.status_label.text() == self._hint_text:
            self.status_label.clear()
        self._hint_text = ""

    def _drop_tickets(self, ticket_ids: set[int]) -> None:
        """Remove decided tickets and select the one after the current (or the last one left)."""
        if not ticket_ids:
            return
        next_id = self.queue_table.remove_ticket_ids(ticket_ids)
        if next_id is None or not self.select_ticket(next_id):
            self._select_proxy_row(-1)

    def _undo_done(self, undone: DecisionRecord, record: DecisionRecord) -> None:
        self.status_label.setText(f"Undid: {action_text(undone.action).lower()}.")
        self._update_buttons()
        # The undone tickets are back in the queue: reload it and put the analyst on the first of them.
        self._select_after_load = undone.ticket_ids[0] if undone.ticket_ids else None
        self.reload()
        self.decision_made.emit(record)

    def _decision_conflicted(self, message: str, ticket_ids: tuple[int, ...]) -> None:
        """Another analyst changed the ticket first; nothing was written. Say so on the page (it is not a
        failure of the app), drop a refused undo from the stack, and reload the queue and the ticket, so the
        analyst decides again on what is there now."""
        log.info("decision refused, a concurrent change: %s", message)
        self._expire_hint()
        text = f"{message}. Reloaded: check it and decide again."
        self.error_label.setText(text)
        self.error_label.setToolTip("")
        self.error_label.show()
        self.decisions.forget(ticket_ids)
        row = self.current_row()
        if row is not None and row.ticket_id in ticket_ids:
            self._review = None  # the view was loaded before the other change: load it afresh
            self._select_after_load = row.ticket_id
        self._keep_position = True
        self._error_after_load = text
        self.reload()

    # --- errors ------------------------------------------------------------------------------------------

    def _error_handler(self, what: str) -> ErrorCallback:
        def show(exc: Exception, traceback_text: str) -> None:
            log.error("could not %s:\n%s", what, traceback_text)
            message = f"Could not {what}: {exc}"
            self.error_label.setText(message)
            self.error_label.setToolTip(traceback_text)
            self.error_label.show()
            self.error_occurred.emit(message)

        return show
