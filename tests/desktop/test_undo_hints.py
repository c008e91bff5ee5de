"""The "Ctrl+Z undoes it" hint expires, and Ctrl+Z names the step it would undo before undoing it (issue 16).

A stale hint once invited an undo of a decision the analyst no longer had in mind; these tests pin the hint's
three expiries (timeout, leaving the page, a queue reload) and the confirmation in front of every undo. The
hint timeout is injected (a few ms) so nothing sleeps for the real 8 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QStackedWidget, QWidget
from pytestqt.qtbot import QtBot
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.matching.embedding import SentenceTransformerEmbedder
from core.store.models import AuditEvent, LinkDecision, TicketRunbookLink
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from desktop.background.tasks import TaskRunner
from desktop.context import AppContext
from desktop.pages.review.decisions import age_text
from desktop.pages.review.dialogs import UndoConfirmDialog
from desktop.pages.review.page import ReviewPage

WAIT_MS = 20_000
HINT_MS = 30
REVIEWER = "ana.analyst"


@pytest.fixture
def sessions(analysed_demo: Workspace) -> sessionmaker[TenantSession]:
    return analysed_demo.session_factory("default")


@pytest.fixture
def stack(
    qtbot: QtBot, analysed_demo: Workspace, embedder: SentenceTransformerEmbedder
) -> Iterator[QStackedWidget]:
    """The review page in a stack with another page, as the main window holds its pages."""
    runner = TaskRunner()
    context = AppContext(
        analysed_demo, "default", runner, embedder_factory=lambda: embedder, reviewer_name=REVIEWER
    )
    pages = QStackedWidget()
    qtbot.addWidget(pages)
    review_page = ReviewPage(context, hint_timeout_ms=HINT_MS)
    pages.addWidget(review_page)
    pages.addWidget(QWidget())
    pages.resize(1500, 850)
    with qtbot.waitSignal(review_page.queue_loaded, timeout=WAIT_MS):
        pages.show()
    qtbot.waitExposed(pages)
    row = review_page.current_row()
    assert row is not None
    qtbot.waitUntil(lambda: review_page.current_match() is not None, timeout=WAIT_MS)
    pages.activateWindow()
    qtbot.waitUntil(pages.isActiveWindow)
    review_page.queue_table.setFocus()
    yield pages
    review_page.stop()
    runner.wait_for_done(WAIT_MS)
    runner.shutdown()


def review_page_of(stack: QStackedWidget) -> ReviewPage:
    page = stack.widget(0)
    assert isinstance(page, ReviewPage)
    return page


def approve_current(qtbot: QtBot, page: ReviewPage) -> tuple[int, int, str, str]:
    """Approve with A; the ticket id, runbook id, external id and runbook title decided on."""
    row = page.current_row()
    view = page.current_match()
    assert row is not None and view is not None
    with qtbot.waitSignal(page.decision_made, timeout=WAIT_MS):
        QTest.keyClick(page.queue_table, Qt.Key.Key_A)
    return row.ticket_id, view.runbook.id, row.external_id, view.runbook.title


def link_decision(sessions: sessionmaker[TenantSession], ticket_id: int, runbook_id: int) -> LinkDecision:
    with sessions() as session:
        link = session.scalars(
            select(TicketRunbookLink).where(
                TicketRunbookLink.ticket_id == ticket_id, TicketRunbookLink.runbook_id == runbook_id
            )
        ).one()
        return link.decision


def undo_count(sessions: sessionmaker[TenantSession]) -> int:
    with sessions() as session:
        return len(session.scalars(select(AuditEvent).where(AuditEvent.action == "review.undo")).all())


def test_the_hint_is_singular_for_one_ticket_and_expires_after_its_timeout(
    qtbot: QtBot, stack: QStackedWidget
) -> None:
    page = review_page_of(stack)
    approve_current(qtbot, page)
    assert page.status_label.text() == "Approved 1 ticket. Ctrl+Z undoes it."
    qtbot.waitUntil(lambda: page.status_label.text() == "", timeout=2_000)


def test_the_hint_is_gone_after_a_page_change_and_stays_gone_on_return(
    qtbot: QtBot, stack: QStackedWidget
) -> None:
    page = review_page_of(stack)
    page._hint_timer.setInterval(60_000)  # only the page change may clear it here
    approve_current(qtbot, page)
    assert "Ctrl+Z undoes it" in page.status_label.text()
    stack.setCurrentIndex(1)
    stack.setCurrentIndex(0)
    assert page.status_label.text() == ""


def test_the_hint_is_gone_when_the_queue_reloads_after_an_import(qtbot: QtBot, stack: QStackedWidget) -> None:
    page = review_page_of(stack)
    page._hint_timer.setInterval(60_000)
    approve_current(qtbot, page)
    assert "Ctrl+Z undoes it" in page.status_label.text()
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS):
        page.reload()  # what the window does once an import or analysis finished
    assert page.status_label.text() == ""


def test_ctrl_z_names_the_step_and_cancel_keeps_the_decision(
    qtbot: QtBot, stack: QStackedWidget, sessions: sessionmaker[TenantSession]
) -> None:
    page = review_page_of(stack)
    ticket_id, runbook_id, external_id, title = approve_current(qtbot, page)
    assert link_decision(sessions, ticket_id, runbook_id) is LinkDecision.LINKED

    QTest.keyClick(page.queue_table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    dialog = page.active_dialog
    assert isinstance(dialog, UndoConfirmDialog)
    assert dialog.label.text() == f"Undo: approve {external_id} → “{title}” (by you, just now)?"
    assert dialog.undo_button.isDefault()
    QTest.keyClick(dialog, Qt.Key.Key_Escape)

    assert page.active_dialog is None
    assert link_decision(sessions, ticket_id, runbook_id) is LinkDecision.LINKED
    assert undo_count(sessions) == 0
    assert len(page.undo_stack) == 1


def test_confirming_the_named_step_undoes_it(
    qtbot: QtBot, stack: QStackedWidget, sessions: sessionmaker[TenantSession]
) -> None:
    page = review_page_of(stack)
    ticket_id, runbook_id, _external_id, _title = approve_current(qtbot, page)

    QTest.keyClick(page.queue_table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    dialog = page.active_dialog
    assert isinstance(dialog, UndoConfirmDialog)
    qtbot.waitUntil(dialog.isActiveWindow)  # a shortcut fires in the active window, as for a real key press
    with qtbot.waitSignal(page.decision_made, timeout=WAIT_MS) as undone:
        QTest.keyClick(dialog, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # a second Ctrl+Z confirms

    assert undone.args[0].action == "review.undo"
    assert link_decision(sessions, ticket_id, runbook_id) is LinkDecision.SUGGESTED
    assert undo_count(sessions) == 1
    assert page.undo_stack == []


@pytest.mark.parametrize(
    ("elapsed", "text"),
    [
        (timedelta(seconds=20), "just now"),
        (timedelta(minutes=2, seconds=5), "2 min ago"),
        (timedelta(hours=3), "3 h ago"),
    ],
)
def test_the_age_in_the_undo_question_is_coarse(elapsed: timedelta, text: str) -> None:
    decided_at = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
    assert age_text(decided_at, decided_at + elapsed) == text
