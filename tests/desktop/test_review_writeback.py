"""The Review page shows where an approved runbook stands in the ticket's own system (issue 13, write-back).

Approving a runbook for a ticket synced by a connector with "Post approved runbooks to the ticket" on queues a
work note; the line under the ticket says it is being posted, and a ticket imported from a file shows none.
Headless (offscreen), the real model, SQLite and FAISS; the decision is made with the page's own key.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from sqlalchemy import update
from sqlalchemy.orm import sessionmaker

from connectors.configs import create_config
from connectors.registry import ConnectorRegistry, use_registry
from core.store.models import AnalysisDecision, Ticket
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from core.workflow.review import QueueFilters, ReviewStatus, load_review_queue
from desktop.background.tasks import TaskRunner
from desktop.context import AppContext
from desktop.pages.review.page import ReviewPage
from tests.connectors.test_writes import FakeWritableTiny, WritableTiny
from tests.connectors.tiny_connector import GOOD_TOKEN

WAIT_MS = 20_000


@pytest.fixture
def sessions(analysed_demo: Workspace) -> Iterator[sessionmaker[TenantSession]]:
    with use_registry(ConnectorRegistry((), find_plugins=None, classes=(WritableTiny,))):
        yield analysed_demo.session_factory("default")


@pytest.fixture
def runner() -> Iterator[TaskRunner]:
    task_runner = TaskRunner()
    yield task_runner
    task_runner.wait_for_done(WAIT_MS)
    task_runner.shutdown()


def test_approving_a_synced_ticket_shows_its_work_note_being_posted(
    qtbot: QtBot,
    analysed_demo: Workspace,
    sessions: sessionmaker[TenantSession],
    embedder,  # type: ignore[no-untyped-def]
    runner: TaskRunner,
) -> None:
    config = create_config(
        sessions,
        connector_type="tiny-writable",
        name="Tiny prod",
        base_url=FakeWritableTiny().base_url,
        options={"write_back": True},
        secrets={"token": GOOD_TOKEN},
        actor="test",
    )
    with sessions() as session:
        flagged = load_review_queue(
            session, QueueFilters(decisions=frozenset({AnalysisDecision.FLAG_REVIEW}))
        )
    synced = flagged[0]  # the queue's first row: the page selects it on load
    with sessions.begin() as session:
        session.execute(
            update(Ticket).where(Ticket.id == synced.ticket_id).values(connector_config_id=config.id)
        )

    context = AppContext(
        analysed_demo, "default", runner, embedder_factory=lambda: embedder, reviewer_name="ana"
    )
    page = ReviewPage(context)
    qtbot.addWidget(page)
    page.resize(1500, 850)
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS):
        page.decision_combo.setCurrentIndex(page.decision_combo.findData(AnalysisDecision.FLAG_REVIEW.value))
        page.show()
    qtbot.waitExposed(page)
    page.activateWindow()
    qtbot.waitUntil(page.isActiveWindow)
    page.queue_table.setFocus()
    row = page.current_row()
    assert row is not None and row.ticket_id == synced.ticket_id
    qtbot.waitUntil(
        lambda: page._review is not None and page._review.ticket.id == row.ticket_id, timeout=WAIT_MS
    )
    assert not page.writeback_status.isVisibleTo(page)  # nothing approved yet: nothing to say

    with qtbot.waitSignal(page.decision_made, timeout=WAIT_MS):
        qtbot.keyClick(page.queue_table, Qt.Key.Key_A)
    # The queue moves on; the approved ticket is under "Approved", its work note queued with the decision.
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS):
        page.decision_combo.setCurrentIndex(page.decision_combo.findData(ReviewStatus.APPROVED.value))
    approved = page.current_row()
    assert approved is not None and approved.ticket_id == synced.ticket_id
    qtbot.waitUntil(lambda: bool(page.writeback_status.rows), timeout=WAIT_MS)
    [line] = page.writeback_status.labels
    assert line.text().endswith("posting to Tiny prod…"), line.text()
    assert page.writeback_status.isVisibleTo(page)
