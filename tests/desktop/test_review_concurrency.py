"""The review page beside another analyst (issue 17), on SQLite: a second session of the same workspace plays
the other desktop. Others' decisions reload the queue (polled), a decision the other analyst beat is shown on
the page and changes nothing, and a viewer's page has no decision to make.

The analysed demo workspace, the real model, headless Qt, as in ``test_review_page``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.store.models import AuditEvent, LinkDecision, TicketRunbookLink
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from core.workflow.review import approve
from desktop.background.tasks import TaskRunner
from desktop.context import AppContext
from desktop.pages.review import polling
from desktop.pages.review.match_pane import NEEDS_ANALYST
from desktop.pages.review.page import ReviewPage

WAIT_MS = 20_000
REVIEWER = "ana.analyst"
OTHER = "bob.analyst"
POLL_MS = 100  # the page's timer, made fast for the test (the app's is five seconds)


@pytest.fixture
def other_desktop(analysed_demo: Workspace) -> sessionmaker[TenantSession]:
    """Bob's sessions: another session factory on the same store."""
    return analysed_demo.session_factory("default")


@pytest.fixture
def context(analysed_demo: Workspace, embedder) -> Iterator[AppContext]:
    runner = TaskRunner()
    yield AppContext(
        analysed_demo, "default", runner, embedder_factory=lambda: embedder, reviewer_name=REVIEWER
    )
    runner.shutdown()


def open_page(qtbot, context: AppContext, poll_interval_ms: int) -> ReviewPage:
    page = ReviewPage(context, poll_interval_ms=poll_interval_ms)
    qtbot.addWidget(page)
    page.resize(1500, 850)
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS):
        page.show()
    qtbot.waitExposed(page)
    row = page.current_row()
    assert row is not None
    qtbot.waitUntil(
        lambda: page._review is not None and page._review.ticket.id == row.ticket_id, timeout=WAIT_MS
    )
    page.activateWindow()
    qtbot.waitUntil(page.isActiveWindow)
    page.queue_table.setFocus()
    return page


def close_page(page: ReviewPage, context: AppContext) -> None:
    page.stop()
    context.runner.wait_for_done(WAIT_MS)


def view_ticket_ids(page: ReviewPage) -> list[int]:
    proxy = page.queue_proxy
    return [
        page.queue_model.row_at(proxy.mapToSource(proxy.index(r, 0))).ticket_id
        for r in range(proxy.rowCount())
    ]


def review_actors(sessions: sessionmaker[TenantSession]) -> list[tuple[str, str]]:
    with sessions() as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("review.%")).order_by(AuditEvent.id)
        )
        return [(row.action, row.actor) for row in rows]


def test_others_decisions_reload_the_queue_and_keep_the_selection(
    qtbot, context: AppContext, other_desktop: sessionmaker[TenantSession]
) -> None:
    page = open_page(qtbot, context, POLL_MS)
    try:
        ids = view_ticket_ids(page)
        page.select_ticket(ids[2])
        by_id = {row.ticket_id: row for row in page.queue_model.rows}
        first, second = by_id[ids[0]], by_id[ids[1]]
        for row in (first, second):
            assert row.best_runbook_id is not None
            with other_desktop.begin() as session:
                approve(session, row.ticket_id, row.best_runbook_id, row.confidence, OTHER)

        qtbot.waitUntil(
            lambda: page.status_label.text() == f"Queue updated: 2 decisions by {OTHER}", timeout=WAIT_MS
        )
        assert view_ticket_ids(page) == [i for i in ids if i not in (first.ticket_id, second.ticket_id)]
        current = page.current_row()
        assert current is not None and current.ticket_id == ids[2]  # the analyst stays on their ticket
        assert not page.error_label.isVisible()
    finally:
        close_page(page, context)


def test_a_decision_another_analyst_beat_is_shown_on_the_page_and_writes_nothing(
    qtbot, context: AppContext, other_desktop: sessionmaker[TenantSession]
) -> None:
    page = open_page(qtbot, context, poll_interval_ms=3_600_000)  # no poll: the decision meets the change
    failures: list[str] = []
    page.error_occurred.connect(failures.append)
    failed_tasks: list[object] = []
    context.runner.task_failed.connect(lambda task, *_rest: failed_tasks.append(task))
    try:
        row = page.current_row()
        assert row is not None and row.best_runbook_id is not None
        with other_desktop.begin() as session:
            approve(session, row.ticket_id, row.best_runbook_id, row.confidence, OTHER)

        with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS):
            qtbot.keyClick(page.queue_table, Qt.Key.Key_A)  # Ana approves what her screen still shows

        assert page.error_label.isVisible()
        assert page.error_label.text().startswith(f"{row.external_id} was changed by {OTHER} at ")
        assert "your decision was not saved" in page.error_label.text()
        assert failures == [] and failed_tasks == []  # not a failure: no notification, no crash dialog
        assert review_actors(other_desktop) == [("review.approve", OTHER)]
        with other_desktop() as session:
            link = session.scalars(
                select(TicketRunbookLink).where(
                    TicketRunbookLink.ticket_id == row.ticket_id,
                    TicketRunbookLink.runbook_id == row.best_runbook_id,
                )
            ).one()
        assert (link.decision, link.reviewed_by, link.version) == (LinkDecision.LINKED, OTHER, 2)
        assert row.ticket_id not in view_ticket_ids(page)  # reloaded: Bob's decision took it off the queue
        assert page.undo_stack == []
    finally:
        close_page(page, context)


def test_a_viewer_sees_the_queue_but_every_decision_is_off(
    qtbot, context: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite has no viewers; the role the page reads is made a viewer's (PostgreSQL's own refusal is
    tested in tests/team)."""
    monkeypatch.setattr(polling, "has_role", lambda _session, _least: False)
    page = open_page(qtbot, context, poll_interval_ms=3_600_000)
    try:
        assert not page.can_decide
        for button in (page.approve_button, page.reject_button, page.link_button, page.draft_button):
            assert not button.isEnabled()
            assert button.toolTip() == NEEDS_ANALYST
        for key in ("A", "Return", "R", "L", "D", "O", "Ctrl+Z"):
            assert not page.shortcuts[key].isEnabled(), key
        assert page.shortcuts["J"].isEnabled()  # moving through the queue still works
        before = page.current_row()
        qtbot.keyClick(page.queue_table, Qt.Key.Key_A)
        page.approve_selected()  # and the action itself refuses, whatever calls it
        qtbot.wait(200)
        assert not page.decisions.busy()
        assert review_actors(context.sessions) == []
        assert page.current_row() == before
    finally:
        close_page(page, context)
