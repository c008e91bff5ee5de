"""Where an approved runbook link stands in the ticket's own system: posted, posting, or failed with Retry.

Shown under a synced ticket's detail (hidden when the ticket has no write-back: a file import, or a
connector without the option). One line per write-back, in the analyst's words:

- "Posted to ServiceNow prod as a work note" (with the note's id when the system gave one);
- "Posting to ServiceNow prod…" (queued, or tried and failed with automatic attempts left);
- "Failed to post to ServiceNow prod: <error>" and a Retry button (out of automatic attempts, or a failure
  the analyst wants tried now).

The rows are loaded and the retry is stored on worker threads (:mod:`desktop.background.write_jobs`); the
widget only renders plain :class:`~core.workflow.writeback.WritebackRow` data, as plain text (the error is a
server's words and is never rendered as markup). ``retried`` asks the window's drainer to post at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget
from sqlalchemy.orm import sessionmaker

from core.store.models import WritebackStatus
from core.store.tenancy import TenantSession
from core.workflow.writeback import WritebackRow
from desktop.background.tasks import Task, TaskRunner
from desktop.background.write_jobs import load_writebacks, retry_job

MAX_ERROR_CHARS = 300


def status_text(row: WritebackRow) -> str:
    """The one line the analyst reads for ``row``."""
    where = row.connector_name
    title = f"“{row.runbook_title}”"
    if row.status is WritebackStatus.WRITTEN:
        note = f" ({row.remote_id})" if row.remote_id else ""
        return f"{title}: posted to {where} as a work note{note}"
    if row.status is WritebackStatus.FAILED:
        error = (row.last_error or "unknown error").strip()
        if len(error) > MAX_ERROR_CHARS:
            error = error[: MAX_ERROR_CHARS - 1] + "…"
        return f"{title}: failed to post to {where}: {error}"
    return f"{title}: posting to {where}…"


class WritebackStatusWidget(QWidget):
    """The write-back lines of one ticket; call :meth:`show_ticket` when the shown ticket changes.

    Signals: ``retried(WritebackRow)`` once a retry is stored (connect it to the drainer's ``drain_soon``);
    ``loaded(tuple)`` after each load (tests wait on it).
    """

    retried = Signal(object)
    loaded = Signal(object)

    def __init__(
        self,
        runner: TaskRunner,
        sessions: sessionmaker[TenantSession],
        actor: Callable[[], str],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._runner = runner
        self._sessions = sessions
        self._actor = actor
        self._ticket_id: int | None = None
        self._load_task: Task | None = None
        self._rows: tuple[WritebackRow, ...] = ()
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self.retry_buttons: dict[int, QPushButton] = {}
        self.labels: list[QLabel] = []
        self.setVisible(False)

    @property
    def rows(self) -> tuple[WritebackRow, ...]:
        return self._rows

    def show_ticket(self, ticket_id: int | None) -> None:
        """Load and show ``ticket_id``'s write-backs (None: show nothing)."""
        self._ticket_id = ticket_id
        if self._load_task is not None:
            self._load_task.cancel()
        if ticket_id is None:
            self.show_rows(())
            return
        self._load_task = self._runner.run(
            load_writebacks,
            self._sessions,
            ticket_id,
            title="Loading the ticket's write-backs",
            on_done=partial(self._on_loaded, ticket_id),
        )

    def reload(self, *_ignored: object) -> None:
        """Load the shown ticket's write-backs again (after a drain); takes a signal's arguments."""
        if self._ticket_id is not None:
            self.show_ticket(self._ticket_id)

    def _on_loaded(self, ticket_id: int, rows: tuple[WritebackRow, ...]) -> None:
        if ticket_id != self._ticket_id:
            return  # the analyst moved on meanwhile
        self.show_rows(rows)
        self.loaded.emit(rows)

    def show_rows(self, rows: Sequence[WritebackRow]) -> None:
        self._rows = tuple(rows)
        while self._layout.count():
            item = self._layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.retry_buttons = {}
        self.labels = []
        for row in self._rows:
            line = QWidget(self)
            line_layout = QHBoxLayout(line)
            line_layout.setContentsMargins(0, 0, 0, 0)
            label = QLabel(status_text(row), line)
            label.setTextFormat(Qt.TextFormat.PlainText)
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            if row.status is WritebackStatus.FAILED:
                label.setStyleSheet("color: #b3261e;")
            line_layout.addWidget(label, 1)
            self.labels.append(label)
            if row.status is WritebackStatus.FAILED:
                button = QPushButton("Retry", line)
                button.setToolTip("Post this runbook link to the ticket again")
                button.clicked.connect(lambda _checked=False, wid=row.id: self.retry(wid))
                line_layout.addWidget(button)
                self.retry_buttons[row.id] = button
            self._layout.addWidget(line)
        self.setVisible(bool(self._rows))

    def retry(self, writeback_id: int) -> Task:
        button = self.retry_buttons.get(writeback_id)
        if button is not None:
            button.setEnabled(False)
        return self._runner.run(
            retry_job,
            self._sessions,
            writeback_id,
            self._actor(),
            title="Retrying a write-back",
            on_done=self._on_retried,
        )

    def _on_retried(self, row: WritebackRow) -> None:
        self.retried.emit(row)
        if row.ticket_id == self._ticket_id:
            self.show_rows([row if r.id == row.id else r for r in self._rows])
