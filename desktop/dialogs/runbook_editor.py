"""The runbook editor: fields, Markdown source beside a live preview, save as a new revision.

Saving goes through :func:`core.workflow.runbooks.save_runbook` (``create_runbook`` for a new one) in a
worker task (:func:`desktop.background.runbook_jobs.save_runbook_values`): even a small transaction can wait
on a busy database, and the UI never blocks. The editor keeps the revision it loaded and hands it over as
``expected_revision``, so a save made on top of someone else's newer save is refused with a message instead
of silently overwriting their work; the text stays in the editor.

The preview is re-rendered a moment after typing stops (a single-shot timer restarted on every change):
rendering Markdown on every keystroke makes typing stutter on long runbooks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QFontDatabase, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core.store.models import RunbookSource, RunbookStatus
from core.store.repository import RunbookRow
from core.workflow.drafts import RunbookDraft
from core.workflow.runbooks import StaleRevisionError
from desktop.background.runbook_jobs import EditorValues, SaveResult, save_runbook_values
from desktop.background.tasks import Task
from desktop.context import AppContext
from desktop.widgets.links import link_safe_browser
from desktop.widgets.table_models import humanize

log = logging.getLogger(__name__)

PREVIEW_DELAY_MS = 300
EMPTY_PREVIEW = "*Nothing to preview yet.*"


def ask_discard_changes(parent: QWidget) -> bool:
    """The real prompt; tests replace :attr:`RunbookEditor.confirm_discard` rather than click a modal box."""
    answer = QMessageBox.question(
        parent,
        "Discard changes?",
        "This runbook has changes that are not saved. Close it and discard them?",
        QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
        QMessageBox.StandardButton.Cancel,
    )
    return answer == QMessageBox.StandardButton.Discard


class RunbookEditor(QDialog):
    """Edit one runbook, or write a new one (blank, or pre-filled from a :class:`RunbookDraft`).

    Signals: ``saved(int)`` with the runbook id after a save that wrote something (a new runbook or a new
    revision); ``save_failed(str)`` with the message shown to the user.
    """

    saved = Signal(int)
    save_failed = Signal(str)

    def __init__(
        self,
        context: AppContext,
        runbook: RunbookRow | None = None,
        *,
        draft: RunbookDraft | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        if runbook is not None and draft is not None:
            raise ValueError("open either a runbook or a draft, not both")
        self.setObjectName("runbookEditor")
        self._context = context
        self._save_task: Task | None = None
        self._runbook_id: int | None = runbook.id if runbook is not None else None
        self._revision = runbook.current_revision if runbook is not None else 0
        self._status = RunbookStatus(runbook.status) if runbook is not None else RunbookStatus.DRAFT
        self._source = RunbookSource(runbook.source) if runbook is not None else RunbookSource.AUTHORED
        self._external_ref = runbook.external_ref if runbook is not None else None
        # Replaced in tests; a callable attribute rather than a method so no subclass is needed.
        self.confirm_discard: Callable[[QWidget], bool] = ask_discard_changes

        self._build_widgets()
        if runbook is not None:
            initial = EditorValues(
                runbook.title, runbook.service or "", ", ".join(runbook.tags), runbook.body
            )
            self._baseline: EditorValues | None = initial
        elif draft is not None:
            initial = EditorValues(
                draft.title, draft.service or "", ", ".join(draft.tags), draft.to_markdown()
            )
            self._baseline = None  # never saved: the draft is unsaved work until the first save
        else:
            initial = EditorValues("", "", "", "")
            self._baseline = None
        self._fill(initial)
        self._connect()
        self._update_preview()
        self._refresh_state()
        self.resize(1100, 750)

    # --- construction ----------------------------------------------------------------------------------

    def _build_widgets(self) -> None:
        self.title_edit = QLineEdit(self)
        self.title_edit.setObjectName("runbookTitleEdit")
        self.title_edit.setPlaceholderText("What the runbook fixes, as a person would search for it")
        self.service_edit = QLineEdit(self)
        self.service_edit.setObjectName("runbookServiceEdit")
        self.service_edit.setPlaceholderText("e.g. Messaging / Exchange Online")
        self.tags_edit = QLineEdit(self)
        self.tags_edit.setObjectName("runbookTagsEdit")
        self.tags_edit.setPlaceholderText("comma separated, e.g. vpn, network")
        self.status_label = QLabel(self)
        self.status_label.setObjectName("runbookStatusLabel")

        form = QFormLayout()
        form.addRow("&Title", self.title_edit)
        form.addRow("Ser&vice", self.service_edit)
        form.addRow("T&ags", self.tags_edit)
        form.addRow("Status", self.status_label)

        self.body_edit = QPlainTextEdit(self)
        self.body_edit.setObjectName("runbookBodyEdit")
        self.body_edit.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.body_edit.setPlaceholderText("## Symptoms\n\n## Resolution steps\n\n1. …")
        self.body_edit.setTabChangesFocus(False)
        # The preview renders text anyone may have written: the link allow-list applies.
        self.preview = link_safe_browser(self, "runbookPreview")
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("runbookEditorSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.body_edit)
        self.splitter.addWidget(self.preview)
        self.splitter.setSizes([550, 550])

        self.message_label = QLabel(self)
        self.message_label.setObjectName("runbookEditorMessage")
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.save_action = QAction("&Save", self)
        self.save_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Save))
        self.save_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.save_action.triggered.connect(self.save)
        self.addAction(self.save_action)
        self.save_button = QPushButton("Save", self)
        self.save_button.setObjectName("runbookSaveButton")
        self.save_button.setToolTip(f"Save as a new revision ({self.save_action.shortcut().toString()})")
        self.save_button.clicked.connect(self.save)
        self.close_button = QPushButton("Close", self)
        self.close_button.setAutoDefault(False)
        self.save_button.setAutoDefault(False)  # Enter in a field must not save or close the dialog
        self.close_button.clicked.connect(self.reject)

        buttons = QHBoxLayout()
        buttons.addWidget(self.message_label, 1)
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.splitter, 1)
        layout.addLayout(buttons)

        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(PREVIEW_DELAY_MS)
        self._preview_timer.timeout.connect(self._update_preview)

    def _fill(self, values: EditorValues) -> None:
        self.title_edit.setText(values.title)
        self.service_edit.setText(values.service)
        self.tags_edit.setText(values.tags)
        self.body_edit.setPlainText(values.body)

    def _connect(self) -> None:
        for line_edit in (self.title_edit, self.service_edit, self.tags_edit):
            line_edit.textChanged.connect(self._refresh_state)
        self.body_edit.textChanged.connect(self._refresh_state)
        self.body_edit.textChanged.connect(self._preview_timer.start)

    # --- state -----------------------------------------------------------------------------------------

    @property
    def runbook_id(self) -> int | None:
        return self._runbook_id

    @property
    def revision(self) -> int:
        return self._revision

    @property
    def status(self) -> RunbookStatus:
        return self._status

    def values(self) -> EditorValues:
        return EditorValues(
            self.title_edit.text(),
            self.service_edit.text(),
            self.tags_edit.text(),
            self.body_edit.toPlainText(),
        )

    def is_dirty(self) -> bool:
        values = self.values()
        if self._baseline is None:  # never saved: anything written is unsaved work
            return any(part.strip() for part in (values.title, values.service, values.tags, values.body))
        return values != self._baseline

    def is_saving(self) -> bool:
        return self._save_task is not None and self._save_task.is_active

    def set_status(self, status: RunbookStatus, revision: int | None = None) -> None:
        """The library changed this runbook's status (or saw a newer revision) while the editor is open."""
        self._status = status
        if revision is not None and not self.is_dirty():
            self._revision = revision
        self._refresh_state()

    def _refresh_state(self) -> None:
        dirty = self.is_dirty()
        title = self.title_edit.text().strip() or "New runbook"
        self.setWindowTitle(f"{title}[*] — Runbook editor")
        self.setWindowModified(dirty)
        saving = self.is_saving()
        self.save_action.setEnabled(dirty and not saving)
        self.save_button.setEnabled(dirty and not saving)
        self.save_button.setText("Saving…" if saving else "Save")
        facts = [humanize(self._status.value) or self._status.value]
        facts.append(f"revision {self._revision}" if self._revision else "not saved yet")
        if self._source is RunbookSource.IMPORTED and self._external_ref:
            facts.append(
                f"imported from {self._external_ref}: re-importing that file replaces edits made here"
            )
        self.status_label.setText(" · ".join(facts))

    def _update_preview(self) -> None:
        self._preview_timer.stop()
        scroll_bar = self.preview.verticalScrollBar()
        position = scroll_bar.value()  # keep the reader's place while the text re-renders
        body = self.body_edit.toPlainText()
        self.preview.setMarkdown(body if body.strip() else EMPTY_PREVIEW)
        scroll_bar.setValue(position)

    def preview_pending(self) -> bool:
        return self._preview_timer.isActive()

    # --- saving ----------------------------------------------------------------------------------------

    def save(self) -> Task | None:
        """Start saving; returns the task, or None when there is nothing to save or a save is running."""
        if self.is_saving() or not self.is_dirty():
            return None
        values = self.values()
        if not values.title.strip():
            self._show_message("A runbook needs a title before it can be saved.", error=True)
            self.title_edit.setFocus(Qt.FocusReason.OtherFocusReason)
            return None
        self._show_message("Saving…")
        self._save_task = self._context.runner.run(
            save_runbook_values,
            self._context,
            self._runbook_id,
            values,
            self._context.reviewer(),
            self._revision,
            title=f"Saving “{values.title.strip()}”",
            on_done=lambda result: self._on_saved(values, result),
            on_error=self._on_save_error,
        )
        self._refresh_state()
        return self._save_task

    def _on_saved(self, values: EditorValues, result: SaveResult) -> None:
        self._save_task = None
        row = result.runbook
        self._runbook_id = row.id
        self._revision = row.current_revision
        self._status = RunbookStatus(row.status)
        self._baseline = values  # edits typed while the save ran stay dirty
        if result.created:
            self._show_message(f"Created as a draft (revision {row.current_revision}).")
        elif result.changed:
            self._show_message(f"Saved revision {row.current_revision}.")
        else:
            self._show_message("No changes to save: the text equals the stored revision.")
        self._refresh_state()
        if result.changed:
            self.saved.emit(row.id)

    def _on_save_error(self, exc: Exception, traceback_text: str) -> None:
        self._save_task = None
        if isinstance(exc, StaleRevisionError):
            message = f"Not saved: {exc}. Your text is still here; copy what you need before reopening."
        else:
            log.error("saving runbook %s failed:\n%s", self._runbook_id, traceback_text)
            message = f"Not saved: {exc}"
        self._show_message(message, error=True, details=traceback_text)
        self._refresh_state()
        self.save_failed.emit(message)

    def _show_message(self, text: str, *, error: bool = False, details: str = "") -> None:
        self.message_label.setText(text)
        self.message_label.setToolTip(details)
        self.message_label.setStyleSheet("color: #b3261e;" if error else "")

    # --- closing ---------------------------------------------------------------------------------------

    def reject(self) -> None:
        """Close (Esc, the Close button, the window's close box): never while saving, and never losing
        unsaved text without asking."""
        if self.is_saving():
            self._show_message("Still saving; close again in a moment.")
            return
        if self.is_dirty() and not self.confirm_discard(self):
            return
        self._preview_timer.stop()
        super().reject()
