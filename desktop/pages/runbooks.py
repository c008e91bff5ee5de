"""The runbook library: search and filter the runbooks, write and edit them, move them through review,
read their history and import a folder of Markdown files.

Every database touch runs in a :class:`~desktop.background.tasks.TaskRunner` task with its own session
(:mod:`desktop.background.runbook_jobs`); the page only sees frozen :class:`~core.store.repository.RunbookRow`
objects. Changes go through :mod:`core.workflow.runbooks` so each one leaves a revision and an audit row.

Matching only indexes *approved* runbooks, and reads edits at its next index refresh. So after a change that
can alter what matching sees (an approved runbook saved, a runbook approved or taken out of approval, an
import that wrote anything) the page schedules a refresh task, which also re-matches the old tickets the
change could affect (:mod:`core.matching.rematch`; ``rematched`` says what it did, and the window refreshes
the queue, the gaps and the metrics). Drafts and reviews are skipped on purpose: the refresh would find
nothing to do, but its first run in a process loads the embedding model (seconds of CPU). Requests made while
a refresh runs are folded into one more run after it, never a queue of them.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QComboBox, QFileDialog, QLabel, QMessageBox, QToolBar, QVBoxLayout, QWidget

from core.analytics.outcome_stats import RunbookOutcomeStats
from core.importing import ImportSummary
from core.knowledge.adopt import SourceChange
from core.settings import OutcomeSettings
from core.store.models import RunbookStatus
from core.store.repository import RunbookRow
from core.workflow.drafts import RunbookDraft
from core.workflow.runbooks import allowed_transitions
from desktop.background import jobs
from desktop.background.outcome_jobs import OutcomeStatsLoad, load_outcome_stats
from desktop.background.rematch_jobs import RematchOutcome, rematch_changed_runbooks
from desktop.background.runbook_jobs import RunbookLoad, StatusChange, change_status, load_runbooks
from desktop.background.tasks import Task, TaskState
from desktop.context import AppContext
from desktop.dialogs.runbook_editor import RunbookEditor
from desktop.dialogs.source_change import (
    SourceChangeDialog,
    adopt_by_reference,
    ask_article_number,
    load_source_changes,
)
from desktop.widgets.browse import BrowsePage
from desktop.widgets.links import link_safe_browser
from desktop.widgets.revision_history import RevisionHistoryDialog
from desktop.widgets.runbook_outcomes import outcome_column, outcome_summary_html
from desktop.widgets.table_models import RUNBOOK_COLUMNS, format_local_datetime, humanize

log = logging.getLogger(__name__)

# (target status, action text, tool tip), in workflow order.
STATUS_ACTIONS: tuple[tuple[RunbookStatus, str, str], ...] = (
    (RunbookStatus.IN_REVIEW, "Submit for &review", "Ask a reviewer to approve this runbook"),
    (RunbookStatus.APPROVED, "&Approve", "Approved runbooks are the ones matching links tickets to"),
    (RunbookStatus.DRAFT, "Back to &draft", "Take the runbook back for rework (matching stops using it)"),
    (RunbookStatus.RETIRED, "Re&tire", "Keep the runbook and its history, but out of matching"),
)


# --- Rendering ---------------------------------------------------------------------------------------------


def runbook_header_html(runbook: RunbookRow) -> str:
    facts = [
        runbook.service and f"Service: {runbook.service}",
        f"Status: {humanize(runbook.status)}",
        f"Revision {runbook.current_revision}",
        f"Updated {format_local_datetime(runbook.updated_at)}",
        runbook.tags and "Tags: " + ", ".join(runbook.tags),
    ]
    fact_line = " · ".join(html.escape(fact) for fact in facts if fact)
    return f"<h2>{html.escape(runbook.title)}</h2><p>{fact_line}</p>"


def ask_for_folder(parent: QWidget) -> Path | None:
    folder = QFileDialog.getExistingDirectory(parent, "Import a folder of Markdown runbooks")
    return Path(folder) if folder else None


# --- The page ----------------------------------------------------------------------------------------------


class RunbooksPage(BrowsePage[RunbookRow]):
    """Signals: ``notice(str)`` (an action's outcome, for the window's status area), ``import_finished``
    (the :class:`ImportSummary`), ``status_changed(int, str)`` (runbook id, new status value),
    ``index_refreshed`` (the :class:`RefreshReport`), ``rematched`` (the
    :class:`~core.matching.rematch.RematchReport` of the tickets re-matched after it)."""

    notice = Signal(str)
    import_finished = Signal(object)
    status_changed = Signal(int, str)
    index_refreshed = Signal(object)
    rematched = Signal(object)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        # Each runbook's outcome figures (execution tracking), filled in place when they load after the list.
        outcome_stats: dict[int, RunbookOutcomeStats] = {}
        super().__init__(
            context.runner,
            (*RUNBOOK_COLUMNS, outcome_column(outcome_stats)),
            noun="runbooks",
            search_placeholder="Search runbooks by title or text",
            splitter_name="runbooksSplitter",
            parent=parent,
        )
        self._context = context
        self.outcome_stats = outcome_stats
        self.outcome_settings: OutcomeSettings | None = None
        self._outcome_task: Task | None = None
        self._editors: list[RunbookEditor] = []
        self._history_dialogs: list[RevisionHistoryDialog] = []
        self._status_task: Task | None = None
        self._import_task: Task | None = None
        self._refresh_task: Task | None = None
        self._refresh_pending = False
        self._select_after_load: int | None = None
        self.import_summary_box: QMessageBox | None = None
        # Replaced in tests so no native dialog opens.
        self.choose_folder: Callable[[QWidget], Path | None] = ask_for_folder
        # Issue 14: adopted runbooks whose knowledge article changed since (marked in the detail header).
        self.source_changes: dict[int, SourceChange] = {}
        self.source_dialog: SourceChangeDialog | None = None
        self.ask_article: Callable[[QWidget], str | None] = ask_article_number  # replaced in tests

        self.status_combo = QComboBox(self)
        self.status_combo.setObjectName("runbookStatusFilter")
        self.status_combo.addItem("All statuses", None)
        for status in RunbookStatus:
            self.status_combo.addItem(humanize(status.value) or status.value, status.value)
        self.status_combo.currentIndexChanged.connect(self.reload)
        self.filter_bar.addWidget(self.status_combo)
        self.table.sortByColumn(self.model.column_index("Title"), Qt.SortOrder.AscendingOrder)

        self._build_actions()
        self.table.doubleClicked.connect(self._on_double_clicked)
        self.table.selectionModel().currentRowChanged.connect(self._update_actions)
        self.loaded.connect(self._update_actions)
        context.runner.task_finished.connect(self._on_task_finished)
        self._update_actions()

    # --- construction ----------------------------------------------------------------------------------

    def _page_action(self, text: str, slot: Callable[[], object], shortcut: str | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
            # Only while this page has focus: other pages may use the same keys.
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        # Not connected directly: triggered(bool) would land in the slot's optional first parameter.
        action.triggered.connect(lambda *_checked: slot())
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        self.new_action = self._page_action("&New runbook", self.new_runbook, "Ctrl+N")
        self.edit_action = self._page_action("&Edit", self.edit_runbook)
        self.edit_action.setToolTip("Edit the selected runbook (Enter or double-click)")
        # Enter on the table edits; a table-scoped action so Enter in the search box still searches.
        self.table_edit_action = QAction("&Edit", self.table)
        self.table_edit_action.setShortcuts([QKeySequence(Qt.Key.Key_Return), QKeySequence(Qt.Key.Key_Enter)])
        self.table_edit_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.table_edit_action.triggered.connect(lambda *_checked: self.edit_runbook())
        self.table.addAction(self.table_edit_action)
        self.status_actions: dict[RunbookStatus, QAction] = {}
        for target, text, tip in STATUS_ACTIONS:
            action = self._page_action(text, self._status_setter(target))
            action.setToolTip(tip)
            self.status_actions[target] = action
        self.history_action = self._page_action("&History", self.show_history, "Ctrl+H")
        self.import_action = self._page_action("&Import folder…", self.import_folder)
        self.import_action.setToolTip("Import a folder of Markdown runbooks (YAML front matter optional)")
        self.source_action = self._page_action("Source &changes…", self.show_source_change)
        self.source_action.setToolTip("What changed in the knowledge article this runbook was adopted from")
        self.adopt_action = self._page_action("Adopt &article…", self.adopt_article)
        self.adopt_action.setToolTip("Make a knowledge article (KB0012345, a page id) a draft runbook")

        self.toolbar = QToolBar(self)
        self.toolbar.setObjectName("runbookActions")
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.toolbar.addAction(self.new_action)
        self.toolbar.addAction(self.edit_action)
        self.toolbar.addSeparator()
        for action in self.status_actions.values():
            self.toolbar.addAction(action)
        self.toolbar.addSeparator()
        self.toolbar.addAction(self.history_action)
        self.toolbar.addAction(self.import_action)
        self.toolbar.addAction(self.adopt_action)
        self.toolbar.addAction(self.source_action)
        layout = self.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.insertWidget(0, self.toolbar)

        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        for action in (*self.status_actions.values(), self.history_action):
            self.table.addAction(action)

    def _status_setter(self, target: RunbookStatus) -> Callable[[], None]:
        def set_target() -> None:
            self.change_status(target)

        return set_target

    # --- BrowsePage hooks ------------------------------------------------------------------------------

    def _build_detail(self) -> QWidget:
        pane = QWidget(self)
        self.detail_header = QLabel(pane)
        self.detail_header.setObjectName("runbookDetailHeader")
        self.detail_header.setTextFormat(Qt.TextFormat.RichText)
        self.detail_header.setWordWrap(True)
        self.detail_header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail = link_safe_browser(pane, "runbookDetail")
        layout = QVBoxLayout(pane)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.detail_header)
        layout.addWidget(self.detail, 1)
        return pane

    def status_filter(self) -> RunbookStatus | None:
        value = self.status_combo.currentData()
        return RunbookStatus(value) if value else None

    def _start_load(self, search: str) -> Task:
        return self._runner.run(
            load_runbooks,
            self._context,
            search,
            self.status_filter(),
            title="Loading runbooks",
            on_done=self._on_loaded,
            on_error=self._load_error,
        )

    def _on_loaded(self, result: RunbookLoad) -> None:
        self._rows_loaded(result.runbook_rows, result.total)
        if self._select_after_load is not None:
            self._select_row_id(self._select_after_load)
            self._select_after_load = None
        self._load_outcomes()
        self._runner.run(
            load_source_changes,
            self._context.sessions,
            title="Loading the adopted articles' source changes",
            on_done=self._source_changes_loaded,
            on_error=self._load_error,
        )

    def _source_changes_loaded(self, changes: dict[int, SourceChange]) -> None:
        self.source_changes = changes
        row = self.current_row()
        if row is not None:
            self._show_row(row)
        self._update_actions()

    def _load_outcomes(self) -> None:
        """The outcome figures of the runbooks (a flag for those needing revision), after the list loaded."""
        if self._outcome_task is not None and self._outcome_task.is_active:
            self._outcome_task.cancel()
        self._outcome_task = self._runner.run(
            load_outcome_stats,
            self._context.sessions,
            title="Loading runbook outcomes",
            on_done=self._outcomes_loaded,
            on_error=self._load_error,
        )

    def _outcomes_loaded(self, result: OutcomeStatsLoad) -> None:
        self.outcome_stats.clear()
        self.outcome_stats.update(result.by_runbook)
        self.outcome_settings = result.settings
        column = self.model.column_index("Outcomes")
        if self.model.rowCount():
            last = self.model.rowCount() - 1
            self.model.dataChanged.emit(self.model.index(0, column), self.model.index(last, column))
        row = self.current_row()
        if row is not None:
            self._show_row(row)

    def stop(self) -> None:
        super().stop()
        if self._outcome_task is not None and self._outcome_task.is_active:
            self._outcome_task.cancel()

    def _show_row(self, row: RunbookRow) -> None:
        outcomes = outcome_summary_html(self.outcome_stats.get(row.id), self.outcome_settings)
        change = self.source_changes.get(row.id)
        marker = (
            f"<p><b>Source changed:</b> {html.escape(change.number or 'its article')} changed since it was "
            "adopted (Source changes… shows the diff)</p>"
            if change is not None
            else ""
        )
        self.detail_header.setText(runbook_header_html(row) + marker + outcomes)
        self.detail.setMarkdown(row.body if row.body.strip() else "*This runbook has no steps yet.*")

    def _show_no_selection(self) -> None:
        self.detail_header.setText("")
        self.detail.setMarkdown("*Select a runbook to read it.*")

    def _summary(self, shown: int, total: int, search: str) -> str:
        if search or self.status_filter() is not None:
            return f"{shown:,} of {total:,} runbooks match"
        return f"{total:,} runbooks"

    def _update_actions(self) -> None:
        row = self.current_row()
        self.edit_action.setEnabled(row is not None)
        self.table_edit_action.setEnabled(row is not None)
        self.history_action.setEnabled(row is not None)
        self.source_action.setEnabled(row is not None and row.id in self.source_changes)
        busy = self._status_task is not None and self._status_task.is_active
        allowed = allowed_transitions(row.status) if row is not None else frozenset()
        for target, action in self.status_actions.items():
            action.setEnabled(not busy and target in allowed)
        self.import_action.setEnabled(not self.is_importing())

    # --- editors ---------------------------------------------------------------------------------------

    def open_editors(self) -> tuple[RunbookEditor, ...]:
        return tuple(self._editors)

    def new_runbook(self) -> RunbookEditor:
        return self._show_editor(RunbookEditor(self._context, parent=self))

    def open_draft(self, draft: RunbookDraft) -> RunbookEditor:
        """A new runbook pre-filled from a draft (the review screen's ``D``, gap analysis); saved as draft."""
        return self._show_editor(RunbookEditor(self._context, draft=draft, parent=self))

    def edit_runbook(self, row: RunbookRow | None = None) -> RunbookEditor | None:
        """Open the runbook (the selected one by default); an already open editor is brought forward, so
        nobody ends up with two editors on one runbook conflicting with each other."""
        row = row if row is not None else self.current_row()
        if row is None:
            return None
        for editor in self._editors:
            if editor.runbook_id == row.id:
                editor.raise_()
                editor.activateWindow()
                return editor
        return self._show_editor(RunbookEditor(self._context, row, parent=self))

    def _show_editor(self, editor: RunbookEditor) -> RunbookEditor:
        self._editors.append(editor)
        editor.saved.connect(lambda runbook_id: self._on_editor_saved(editor, runbook_id))
        editor.finished.connect(lambda _result: self._forget_editor(editor))
        editor.show()
        return editor

    def _forget_editor(self, editor: RunbookEditor) -> None:
        if editor in self._editors:
            self._editors.remove(editor)
        editor.deleteLater()

    def _on_double_clicked(self, _index: QModelIndex) -> None:
        self.edit_runbook()

    def _on_editor_saved(self, editor: RunbookEditor, runbook_id: int) -> None:
        self._select_after_load = runbook_id
        self.reload()
        self.notice.emit(f"Saved “{editor.values().title.strip()}” (revision {editor.revision})")
        if editor.status is RunbookStatus.APPROVED:
            self.schedule_index_refresh()

    def close_editors(self) -> bool:
        """Close every editor, each asking about unsaved changes; False as soon as the user keeps one open."""
        return all(editor.close() for editor in list(self._editors))

    # --- status ----------------------------------------------------------------------------------------

    def change_status(self, target: RunbookStatus, row: RunbookRow | None = None) -> Task | None:
        row = row if row is not None else self.current_row()
        if row is None or (self._status_task is not None and self._status_task.is_active):
            return None
        self._status_task = self._runner.run(
            change_status,
            self._context,
            row.id,
            target,
            self._context.reviewer(),
            title=f"Marking “{row.title}” {humanize(target.value)}",
            on_done=self._on_status_changed,
            on_error=self._on_action_error,
        )
        self._update_actions()
        return self._status_task

    def _on_status_changed(self, result: StatusChange) -> None:
        self._status_task = None
        row = result.runbook
        for editor in self._editors:
            if editor.runbook_id == row.id:
                editor.set_status(RunbookStatus(row.status), row.current_revision)
        self._select_after_load = row.id
        self.reload()
        self.notice.emit(f"“{row.title}” is now {(humanize(row.status) or row.status).lower()}")
        self.status_changed.emit(row.id, row.status)
        if RunbookStatus.APPROVED in (result.previous, RunbookStatus(row.status)):
            self.schedule_index_refresh()

    def _on_action_error(self, exc: Exception, traceback_text: str) -> None:
        self._status_task = None
        log.info("runbook action failed:\n%s", traceback_text)
        self._show_error(str(exc), traceback_text)
        self._update_actions()

    def _show_error(self, message: str, details: str) -> None:
        self.error_label.setText(message)
        self.error_label.setToolTip(details)
        self.error_label.show()

    # --- history ---------------------------------------------------------------------------------------

    def show_history(self, row: RunbookRow | None = None) -> RevisionHistoryDialog | None:
        row = row if row is not None else self.current_row()
        if row is None:
            return None
        dialog = RevisionHistoryDialog(self._context, row.id, row.title, self)
        self._history_dialogs.append(dialog)
        dialog.finished.connect(lambda _result: self._forget_history(dialog))
        dialog.show()
        dialog.reload()
        return dialog

    def _forget_history(self, dialog: RevisionHistoryDialog) -> None:
        if dialog in self._history_dialogs:
            self._history_dialogs.remove(dialog)
        dialog.deleteLater()

    # --- knowledge articles (issue 14) -----------------------------------------------------------------

    def show_source_change(self, row: RunbookRow | None = None) -> SourceChangeDialog | None:
        row = row if row is not None else self.current_row()
        change = self.source_changes.get(row.id) if row is not None else None
        if row is None or change is None:
            return None
        dialog = SourceChangeDialog(self._context, change, self)
        dialog.acknowledged.connect(lambda runbook_id: self._source_acknowledged(runbook_id, row.status))
        dialog.finished.connect(lambda _result: dialog.deleteLater())
        self.source_dialog = dialog
        dialog.show()
        return dialog

    def _source_acknowledged(self, runbook_id: int, status: str) -> None:
        self.source_changes.pop(runbook_id, None)
        self._select_after_load = runbook_id
        self.reload()
        self.notice.emit("Source change acknowledged")
        if status == RunbookStatus.APPROVED.value:  # a new approved revision: matching must read it
            self.schedule_index_refresh()

    def adopt_article(self, reference: str | int | None = None) -> Task | None:
        """Adopt an article (its number, or its store id) as a draft runbook, asked for when not given; then
        select the runbook."""
        if reference is None:
            reference = self.ask_article(self)
        if reference is None:
            return None
        return self._runner.run(
            adopt_by_reference,
            self._context.sessions,
            reference,
            self._context.reviewer(),
            title=f"Adopting {reference}",
            on_done=self._adopted,
            on_error=self._on_action_error,
        )

    def _adopted(self, result: tuple[int, str]) -> None:
        runbook_id, label = result
        self._select_after_load = runbook_id
        self.reload()
        self.notice.emit(f"{label} adopted as draft runbook {runbook_id}")

    # --- import ----------------------------------------------------------------------------------------

    def is_importing(self) -> bool:
        return self._import_task is not None and self._import_task.is_active

    def import_folder(self, folder: Path | None = None) -> Task | None:
        """Import a folder of Markdown runbooks with the foundation importer, with progress and cancel
        (the status bar's Cancel button); a summary box follows. One import at a time."""
        if self.is_importing():
            return None
        folder = folder if folder is not None else self.choose_folder(self)
        if folder is None:
            return None
        self._import_task = self._runner.run(
            jobs.import_path,
            self._context,
            folder,
            title=f"Importing runbooks from {folder.name}",
            progress=True,
            on_done=self._on_imported,
            on_error=self._on_import_error,
        )
        self._update_actions()
        return self._import_task

    def _on_imported(self, result: ImportSummary) -> None:
        self._import_task = None
        self._update_actions()
        self.reload()
        box = QMessageBox(
            QMessageBox.Icon.Warning if result.rejected_count else QMessageBox.Icon.Information,
            "Runbook import",
            result.headline(),
            QMessageBox.StandardButton.Ok,
            self,
        )
        box.setObjectName("runbookImportSummary")
        box.setInformativeText(
            "Changed runbooks got a new revision; unchanged ones were left alone."
            + (f" {result.rejected_count} file(s) were rejected: see the details." if result.rejected else "")
        )
        if result.rejected:
            box.setDetailedText("\n".join(str(rejected) for rejected in result.rejected))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(self._forget_summary_box)
        self.import_summary_box = box
        box.open()  # not exec(): the summary must not stop the event loop
        self.notice.emit(f"Imported {result.headline()}")
        self.import_finished.emit(result)
        if result.inserted or result.updated:
            self.schedule_index_refresh()

    def _forget_summary_box(self) -> None:
        self.import_summary_box = None

    def _on_import_error(self, exc: Exception, traceback_text: str) -> None:
        self._import_task = None
        self._update_actions()
        self._show_error(f"Import failed: {exc}", traceback_text)

    def _on_task_finished(self, task: Task) -> None:
        """A cancelled import delivers no summary (the runner drops it), yet it kept what it committed."""
        if task is self._import_task and task.state is TaskState.CANCELLED:
            self._import_task = None
            self._update_actions()
            self.reload()
            self.notice.emit("Import cancelled; the runbooks imported before the cancel are kept")
            self.schedule_index_refresh()

    # --- matching index --------------------------------------------------------------------------------

    def is_refreshing_index(self) -> bool:
        return self._refresh_task is not None and self._refresh_task.is_active

    def schedule_index_refresh(self) -> None:
        if self.is_refreshing_index():
            self._refresh_pending = True
            return
        self._refresh_pending = False
        self._refresh_task = self._runner.run(
            rematch_changed_runbooks,
            self._context,
            title="Matching tickets to the changed runbooks",
            progress=True,
            on_done=self._on_index_refreshed,
            on_error=self._on_refresh_error,
        )

    def _on_index_refreshed(self, result: RematchOutcome) -> None:
        self._refresh_task = None
        self.index_refreshed.emit(result.refresh)
        self.rematched.emit(result.rematch)
        if self._refresh_pending:
            self.schedule_index_refresh()

    def _on_refresh_error(self, exc: Exception, traceback_text: str) -> None:
        self._refresh_task = None
        self._show_error(f"Matching index not updated: {exc}", traceback_text)
        if self._refresh_pending:
            self.schedule_index_refresh()
