"""The "source changed" dialog: what changed in the knowledge article a runbook was adopted from (issue 14).

It shows the unified diff of the article as adopted against the article now
(:class:`core.knowledge.adopt.SourceChange`), a link to the article, and two ways to acknowledge it
(:func:`core.knowledge.adopt.acknowledge_source_change`): take the article's text as a new revision of the
runbook, or keep the runbook's text and only mark the change seen. The acknowledgement runs as a task on the
app's runner; ``acknowledged(int)`` (the runbook id) tells the page to reload. The worker functions here
(:func:`load_source_changes`, :func:`acknowledge`, :func:`adopt_by_reference`) are what the Runbooks page's
tasks run.
"""

from __future__ import annotations

import html
import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QInputDialog,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from sqlalchemy.orm import sessionmaker

from core.knowledge.adopt import (
    SourceChange,
    acknowledge_source_change,
    adopt_article,
    find_article,
    source_changes,
)
from core.store.models import KnowledgeArticle
from core.store.tenancy import TenantSession
from desktop.background.tasks import Task
from desktop.context import AppContext

log = logging.getLogger(__name__)


def load_source_changes(sessions: sessionmaker[TenantSession]) -> dict[int, SourceChange]:
    """Every adopted runbook whose article changed, by runbook id (a worker's job)."""
    with sessions() as session:
        return {change.runbook_id: change for change in source_changes(session)}


def acknowledge(
    sessions: sessionmaker[TenantSession], runbook_id: int, actor: str, take_article_text: bool
) -> int:
    """One transaction: the new revision (if any), the hash moved on and the audit row together."""
    with sessions.begin() as session:
        return acknowledge_source_change(session, runbook_id, actor, take_article_text=take_article_text)


def change_header_html(change: SourceChange) -> str:
    name = html.escape(change.number or "its article")
    link = f"<a href='{html.escape(change.url, quote=True)}'>{name}</a>" if change.url else name
    return (
        f"<p><b>{link}</b> changed since “{html.escape(change.runbook_title)}” was adopted from it. "
        "Take its new text as a new revision of the runbook (your edits stay in the history), or keep the "
        "runbook as it is and mark the change seen.</p>"
    )


class SourceChangeDialog(QDialog):
    acknowledged = Signal(int)  # runbook id

    def __init__(self, context: AppContext, change: SourceChange, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sourceChangeDialog")
        self.setWindowTitle(f"Source changed — {change.runbook_title}")
        self._context = context
        self.change = change
        self.task: Task | None = None
        self.header = QLabel(change_header_html(change), self)
        self.header.setObjectName("sourceChangeHeader")
        self.header.setWordWrap(True)
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.header.setOpenExternalLinks(True)
        self.diff_view = QPlainTextEdit(change.diff, self)
        self.diff_view.setObjectName("sourceChangeDiff")
        self.diff_view.setReadOnly(True)
        self.diff_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.diff_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.error_label = QLabel(self)
        self.error_label.setObjectName("sourceChangeError")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.take_button = QPushButton("&Take the article's text", self)
        self.take_button.setToolTip("Save the article's current text as a new revision of the runbook")
        self.keep_button = QPushButton("&Keep mine, mark seen", self)
        self.keep_button.setToolTip("Leave the runbook as it is; the next change is compared with this text")
        buttons.addButton(self.take_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.keep_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self.take_button.clicked.connect(lambda *_: self.acknowledge(take_article_text=True))
        self.keep_button.clicked.connect(lambda *_: self.acknowledge(take_article_text=False))
        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addWidget(self.diff_view, 1)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)
        self.resize(760, 520)

    def acknowledge(self, *, take_article_text: bool) -> Task | None:
        if self.task is not None and self.task.is_active:
            return None
        self.take_button.setEnabled(False)
        self.keep_button.setEnabled(False)
        self.task = self._context.runner.run(
            acknowledge,
            self._context.sessions,
            self.change.runbook_id,
            self._context.reviewer(),
            take_article_text,
            title=f"Acknowledging the source change of “{self.change.runbook_title}”",
            on_done=self._done,
            on_error=self._failed,
        )
        return self.task

    def _done(self, _revision: int) -> None:
        self.acknowledged.emit(self.change.runbook_id)
        self.accept()

    def _failed(self, exc: Exception, traceback_text: str) -> None:
        log.info("acknowledging a source change failed:\n%s", traceback_text)
        self.error_label.setText(str(exc))
        self.error_label.show()
        self.take_button.setEnabled(True)
        self.keep_button.setEnabled(True)


def adopt_by_reference(
    sessions: sessionmaker[TenantSession], reference: str | int, actor: str
) -> tuple[int, str]:
    """Adopt the article people quote as ``reference`` (KB0012345, a page id), or the article with this store
    id (an ``int``: the review page's knowledge panel); ``(runbook id, the article's label)``."""
    with sessions.begin() as session:
        if isinstance(reference, int):
            runbook_id = adopt_article(session, reference, actor)
            article = session.get(KnowledgeArticle, reference)
        else:
            article = find_article(session, reference)
            runbook_id = adopt_article(session, article.id, actor)
        label = (article.number or article.external_id) if article is not None else f"article {reference}"
        return runbook_id, label


def ask_article_number(parent: QWidget) -> str | None:
    text, ok = QInputDialog.getText(
        parent, "Adopt a knowledge article", "Article number (KB0012345, a page id):"
    )
    return text.strip() if ok and text.strip() else None
