"""Decided tickets stay findable (issue 16, item 2): the Review page's decided filters, the decision history
beside a ticket on both pages, and an undo stack read back from the store, so it survives a restart.

Headless (offscreen), the real model, SQLite and FAISS; keys are sent to the focused widget of an active
window, and every decision is checked in the database.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QAbstractItemModelTester
from pytestqt.qtbot import QtBot
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.store.models import AnalysisDecision, LinkDecision, TicketRunbookLink
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from core.workflow.review import (
    QueueFilters,
    ReviewQueueRow,
    ReviewStatus,
    approve,
    load_review_queue,
    reject,
)
from desktop.background.tasks import TaskRunner
from desktop.context import AppContext
from desktop.pages.review.dialogs import UndoConfirmDialog
from desktop.pages.review.page import ReviewPage
from desktop.pages.tickets import TicketsPage

WAIT_MS = 20_000
REVIEWER = "ana.analyst"


@pytest.fixture
def sessions(analysed_demo: Workspace) -> sessionmaker[TenantSession]:
    return analysed_demo.session_factory("default")


@pytest.fixture
def runner() -> Iterator[TaskRunner]:
    task_runner = TaskRunner()
    yield task_runner
    task_runner.wait_for_done(WAIT_MS)
    task_runner.shutdown()


@pytest.fixture
def context(analysed_demo: Workspace, embedder, runner: TaskRunner) -> AppContext:
    return AppContext(
        analysed_demo, "default", runner, embedder_factory=lambda: embedder, reviewer_name=REVIEWER
    )


def open_review_page(qtbot: QtBot, context: AppContext) -> ReviewPage:
    page = ReviewPage(context)
    qtbot.addWidget(page)
    page.resize(1500, 850)
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS):
        page.show()
    qtbot.waitExposed(page)
    page.activateWindow()
    qtbot.waitUntil(page.isActiveWindow)
    page.queue_table.setFocus()
    return page


def wait_for_review(qtbot: QtBot, page: ReviewPage) -> None:
    row = page.current_row()
    assert row is not None
    qtbot.waitUntil(
        lambda: page._review is not None and page._review.ticket.id == row.ticket_id, timeout=WAIT_MS
    )


def link_decision(sessions: sessionmaker[TenantSession], ticket_id: int, runbook_id: int) -> LinkDecision:
    with sessions() as session:
        return session.scalars(
            select(TicketRunbookLink.decision).where(
                TicketRunbookLink.ticket_id == ticket_id, TicketRunbookLink.runbook_id == runbook_id
            )
        ).one()


def flagged(sessions: sessionmaker[TenantSession], count: int) -> list[ReviewQueueRow]:
    with sessions() as session:
        rows = load_review_queue(session, QueueFilters(decisions=frozenset({AnalysisDecision.FLAG_REVIEW})))
    return rows[:count]


def choose(qtbot: QtBot, page: ReviewPage, status: ReviewStatus) -> None:
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS):
        page.decision_combo.setCurrentIndex(page.decision_combo.findData(status.value))


def test_decided_filters_show_approved_and_rejected_tickets_with_their_history(
    qtbot: QtBot, context: AppContext, sessions: sessionmaker[TenantSession]
) -> None:
    page = open_review_page(qtbot, context)
    page.ask_reject_reason = False
    wait_for_review(qtbot, page)
    first = page.current_row()
    view = page.current_match()
    assert first is not None and view is not None
    with qtbot.waitSignal(page.decision_made, timeout=WAIT_MS):
        qtbot.keyClick(page.queue_table, Qt.Key.Key_A)
    wait_for_review(qtbot, page)
    second = page.current_row()
    assert second is not None and second.best_runbook_id is not None
    with qtbot.waitSignal(page.decision_made, timeout=WAIT_MS):
        qtbot.keyClick(page.queue_table, Qt.Key.Key_R)
    assert link_decision(sessions, second.ticket_id, page.decisions.undo_stack[-1].changes[0].runbook_id) is (
        LinkDecision.REJECTED
    )
    # The combo's counts follow the decisions (refreshed behind them).
    position = page.decision_combo.findData(ReviewStatus.APPROVED.value)
    qtbot.waitUntil(lambda: page.decision_combo.itemText(position) == "Approved (1)", timeout=WAIT_MS)
    rejected_at = page.decision_combo.findData(ReviewStatus.REJECTED.value)
    decided_at = page.decision_combo.findData(ReviewStatus.DECIDED.value)
    qtbot.waitUntil(lambda: page.decision_combo.itemText(decided_at) == "All decided (2)", timeout=WAIT_MS)
    assert page.decision_combo.itemText(rejected_at) == "Rejected (1)"

    choose(qtbot, page, ReviewStatus.APPROVED)
    assert page.filters().status is ReviewStatus.APPROVED
    assert [row.ticket_id for row in page.queue_model.rows] == [first.ticket_id]
    decision_column = page.queue_model.column_index("Decision")
    runbook_column = page.queue_model.column_index("Best runbook")
    assert page.queue_model.index(0, decision_column).data() == "Approved"
    assert page.queue_model.index(0, runbook_column).data() == view.runbook.title
    tooltip = page.queue_model.index(0, decision_column).data(Qt.ItemDataRole.ToolTipRole)
    assert tooltip.startswith(f"Approved “{view.runbook.title}” by {REVIEWER} on ")
    wait_for_review(qtbot, page)
    text = page.ticket_view.toPlainText()
    assert "Decision history" in text
    assert f"approved “{view.runbook.title}”" in text
    assert REVIEWER in text

    choose(qtbot, page, ReviewStatus.REJECTED)
    assert [row.ticket_id for row in page.queue_model.rows] == [second.ticket_id]
    assert page.queue_model.index(0, decision_column).data() == "Rejected"
    wait_for_review(qtbot, page)
    assert f"rejected “{second.best_runbook_title}”" in page.ticket_view.toPlainText()

    choose(qtbot, page, ReviewStatus.DECIDED)
    assert [row.ticket_id for row in page.queue_model.rows] == [second.ticket_id, first.ticket_id]
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS):
        page.decision_combo.setCurrentIndex(0)  # back to the tickets to decide
    shown = {row.ticket_id for row in page.queue_model.rows}
    assert first.ticket_id not in shown and second.ticket_id not in shown
    page.stop()


def test_the_undo_stack_survives_a_restart_and_ctrl_z_names_the_step(
    qtbot: QtBot, context: AppContext, sessions: sessionmaker[TenantSession]
) -> None:
    older, newer = flagged(sessions, 2)
    with sessions.begin() as session:  # decided in an earlier run of the app
        approve(session, older.ticket_id, older.best_runbook_id or 0, older.confidence, REVIEWER)
    with sessions.begin() as session:
        reject(session, newer.ticket_id, newer.best_runbook_id or 0, "not this one", REVIEWER)
    with sessions.begin() as session:  # someone else's decision is not on this reviewer's stack
        approve(
            session,
            flagged(sessions, 1)[0].ticket_id,
            flagged(sessions, 1)[0].best_runbook_id or 0,
            None,
            "bo",
        )

    page = open_review_page(qtbot, context)
    qtbot.waitUntil(lambda: len(page.undo_stack) == 2, timeout=WAIT_MS)
    assert page.undo_button.isEnabled()
    qtbot.keyClick(page.queue_table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    dialog = page.active_dialog
    assert isinstance(dialog, UndoConfirmDialog)
    assert dialog.label.text() == (
        f"Undo: reject {newer.external_id} → “{newer.best_runbook_title}” (by you, just now)?"
    )
    with qtbot.waitSignal(page.decision_made, timeout=WAIT_MS) as undone:
        qtbot.keyClick(dialog, Qt.Key.Key_Return)
    assert undone.args[0].action == "review.undo"
    assert link_decision(sessions, newer.ticket_id, newer.best_runbook_id or 0) is LinkDecision.SUGGESTED
    assert link_decision(sessions, older.ticket_id, older.best_runbook_id or 0) is LinkDecision.LINKED
    qtbot.waitUntil(lambda: len(page.undo_stack) == 1, timeout=WAIT_MS)
    assert page.decisions.describe_last() is not None
    assert page.decisions.describe_last().startswith(f"approve {older.external_id} → ")  # type: ignore[union-attr]
    page.stop()


def test_the_tickets_page_shows_each_decision_and_the_history(
    qtbot: QtBot, runner: TaskRunner, sessions: sessionmaker[TenantSession]
) -> None:
    approved_row, rejected_row = flagged(sessions, 2)
    with sessions.begin() as session:
        approve(session, approved_row.ticket_id, approved_row.best_runbook_id or 0, None, REVIEWER)
    with sessions.begin() as session:
        reject(session, rejected_row.ticket_id, rejected_row.best_runbook_id or 0, "wrong service", REVIEWER)

    page = TicketsPage(runner, sessions)
    qtbot.addWidget(page)
    page.resize(1400, 800)
    tester = QAbstractItemModelTester(page.model, QAbstractItemModelTester.FailureReportingMode.Warning)
    page.show()  # nothing loaded yet: showing it loads nothing (the window asks for the first load)
    with qtbot.waitSignal(page.loaded, timeout=WAIT_MS):
        page.reload()
    rows = {row.id: row for row in page.model.rows}
    decision_column = page.model.column_index("Decision")
    runbook_column = page.model.column_index("Runbook")

    def cell(ticket_id: int, column: int) -> object:
        row_number = next(n for n, row in enumerate(page.model.rows) if row.id == ticket_id)
        return page.model.index(row_number, column).data()

    assert cell(approved_row.ticket_id, decision_column) == "Approved"
    assert cell(approved_row.ticket_id, runbook_column) == approved_row.best_runbook_title
    assert cell(rejected_row.ticket_id, decision_column) == "Rejected"
    labels = {page.model.index(n, decision_column).data() for n in range(page.model.rowCount())}
    assert {"Auto-linked", "Needs review", "Needs a runbook"} <= labels
    assert rows[approved_row.ticket_id].decision.decided_by == REVIEWER

    assert page._select_row_id(rejected_row.ticket_id)
    qtbot.waitUntil(lambda: "wrong service" in page.detail.toPlainText(), timeout=WAIT_MS)
    text = page.detail.toPlainText()
    assert "Decision history" in text
    assert f"rejected “{rejected_row.best_runbook_title}”: wrong service" in text
    assert f"Rejected by {REVIEWER}" in text

    # A decision made elsewhere shows once the page is shown again.
    with sessions.begin() as session:
        approve(session, rejected_row.ticket_id, rejected_row.best_runbook_id or 0, None, "bo")
    page.hide()
    with qtbot.waitSignal(page.loaded, timeout=WAIT_MS):
        page.show()
    assert cell(rejected_row.ticket_id, decision_column) == "Approved"
    qtbot.waitUntil(lambda: "approved “" in page.detail.toPlainText(), timeout=WAIT_MS)
    page.stop()
    del tester
