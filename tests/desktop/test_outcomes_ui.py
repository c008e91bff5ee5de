"""Execution tracking in the app: the review page's ``O`` then ``1``/``2``/``3`` records the analyst's outcome
(on a worker, audited), never while a text field has focus; the Metrics page lists the runbooks flagged for
revision; the runbook library flags them and shows their figures.

The review page runs on the analysed demo (the real model, SQLite and FAISS); the other two on a small store
built here through the core's own functions. Keys go to the focused widget, as a user's key press arrives.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QAbstractItemModelTester
from pytestqt.qtbot import QtBot
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.matching.embedding import SentenceTransformerEmbedder
from core.store.models import (
    AnalysisDecision,
    AuditEvent,
    LinkDecision,
    OutcomeKind,
    OutcomeSource,
    RunbookOutcome,
    RunbookStatus,
    Ticket,
    TicketKind,
    TicketRunbookLink,
)
from core.store.tenancy import TenantSession
from core.store.tickets import TicketValues, upsert_tickets
from core.store.workspace import Workspace
from core.workflow.outcomes import record_outcome
from core.workflow.review import ReviewQueueRow, load_review_queue
from core.workflow.runbooks import create_runbook
from desktop.background.tasks import TaskRunner
from desktop.context import AppContext
from desktop.pages.metrics import MetricsPage
from desktop.pages.review.outcome_dialog import OutcomeDialog
from desktop.pages.review.page import ReviewPage
from desktop.pages.runbooks import RunbooksPage
from desktop.widgets.runbook_outcomes import NEEDS_REVISION

WAIT_MS = 20_000
REVIEWER = "ana.analyst"
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


# --- the review page -------------------------------------------------------------------------------------


@pytest.fixture
def demo_sessions(analysed_demo: Workspace) -> sessionmaker[TenantSession]:
    return analysed_demo.session_factory("default")


@pytest.fixture
def review_page(
    qtbot: QtBot, analysed_demo: Workspace, embedder: SentenceTransformerEmbedder
) -> Iterator[ReviewPage]:
    runner = TaskRunner()
    context = AppContext(
        analysed_demo, "default", runner, embedder_factory=lambda: embedder, reviewer_name=REVIEWER
    )
    page = ReviewPage(context)
    qtbot.addWidget(page)
    page.resize(1500, 850)
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS):
        page.show()
    qtbot.waitExposed(page)
    page.activateWindow()
    qtbot.waitUntil(page.isActiveWindow)
    yield page
    page.stop()
    runner.wait_for_done(WAIT_MS)
    runner.shutdown()


def queue_row(sessions: sessionmaker[TenantSession], decision: AnalysisDecision) -> ReviewQueueRow:
    with sessions() as session:
        return next(row for row in load_review_queue(session) if row.decision is decision)


def show_ticket(qtbot: QtBot, page: ReviewPage, ticket_id: int) -> None:
    assert page.select_ticket(ticket_id)
    qtbot.waitUntil(lambda: page._review is not None and page._review.ticket.id == ticket_id, timeout=WAIT_MS)
    page.queue_table.setFocus()
    qtbot.waitUntil(page.queue_table.hasFocus)


def analyst_outcomes(sessions: sessionmaker[TenantSession]) -> list[tuple[int, int, str, str]]:
    with sessions() as session:
        query = select(
            RunbookOutcome.ticket_id,
            RunbookOutcome.runbook_id,
            RunbookOutcome.outcome,
            RunbookOutcome.recorded_by,
        ).where(RunbookOutcome.source == OutcomeSource.ANALYST)
        return [(t, r, OutcomeKind(o).value, who) for t, r, o, who in session.execute(query)]


def test_o_then_a_number_records_the_outcome_of_the_linked_runbook(
    qtbot: QtBot, review_page: ReviewPage, demo_sessions: sessionmaker[TenantSession]
) -> None:
    auto = queue_row(demo_sessions, AnalysisDecision.LINK_RUNBOOK)
    assert auto.best_runbook_id is not None
    show_ticket(qtbot, review_page, auto.ticket_id)

    qtbot.keyClick(review_page.queue_table, Qt.Key.Key_O)
    dialog = review_page.active_dialog
    assert isinstance(dialog, OutcomeDialog)
    assert auto.external_id in dialog.label.text()
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)  # Esc asks nothing
    qtbot.waitUntil(lambda: review_page.active_dialog is None)
    assert analyst_outcomes(demo_sessions) == []

    qtbot.keyClick(review_page.queue_table, Qt.Key.Key_O)
    dialog = review_page.active_dialog
    assert isinstance(dialog, OutcomeDialog)
    with qtbot.waitSignal(review_page.decisions.outcome_recorded, timeout=WAIT_MS) as recorded:
        qtbot.keyClick(dialog, Qt.Key.Key_3)  # did not help
    assert recorded.args[0].outcome is OutcomeKind.FAILED
    assert analyst_outcomes(demo_sessions) == [(auto.ticket_id, auto.best_runbook_id, "failed", REVIEWER)]
    with demo_sessions() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "outcome.record")).one()
        assert event.actor == REVIEWER
    assert "did not help" in review_page.status_label.text()
    current = review_page.current_row()  # an outcome is no decision: the ticket stays in the queue
    assert current is not None
    assert current.ticket_id == auto.ticket_id
    with demo_sessions() as session:  # and the link is as it was
        link = session.scalars(
            select(TicketRunbookLink).where(
                TicketRunbookLink.ticket_id == auto.ticket_id,
                TicketRunbookLink.runbook_id == auto.best_runbook_id,
            )
        ).one()
        assert link.decision is LinkDecision.LINKED
        assert link.reviewed_at is None

    # Asked again, the analyst's new answer replaces the old one. (The offscreen platform does not give the
    # window back its activation when a dialog closes, as a window manager does: the test does.)
    review_page.activateWindow()
    qtbot.waitUntil(review_page.isActiveWindow)
    qtbot.keyClick(review_page.queue_table, Qt.Key.Key_O)
    dialog = review_page.active_dialog
    assert isinstance(dialog, OutcomeDialog)
    with qtbot.waitSignal(review_page.decisions.outcome_recorded, timeout=WAIT_MS):
        qtbot.keyClick(dialog, Qt.Key.Key_1)
    assert analyst_outcomes(demo_sessions) == [(auto.ticket_id, auto.best_runbook_id, "resolved", REVIEWER)]


def test_o_on_a_ticket_without_a_linked_runbook_says_so(
    qtbot: QtBot, review_page: ReviewPage, demo_sessions: sessionmaker[TenantSession]
) -> None:
    flagged = queue_row(demo_sessions, AnalysisDecision.FLAG_REVIEW)
    show_ticket(qtbot, review_page, flagged.ticket_id)

    qtbot.keyClick(review_page.queue_table, Qt.Key.Key_O)

    assert review_page.active_dialog is None
    assert "has no linked runbook" in review_page.status_label.text()
    assert analyst_outcomes(demo_sessions) == []


def test_typing_an_o_in_the_filter_box_records_nothing(
    qtbot: QtBot, review_page: ReviewPage, demo_sessions: sessionmaker[TenantSession]
) -> None:
    auto = queue_row(demo_sessions, AnalysisDecision.LINK_RUNBOOK)
    show_ticket(qtbot, review_page, auto.ticket_id)
    review_page.search_edit.setFocus()
    qtbot.waitUntil(review_page.search_edit.hasFocus)

    with qtbot.waitSignal(review_page.queue_loaded, timeout=WAIT_MS):
        qtbot.keyClicks(review_page.search_edit, "o3 o1")  # O then a number, typed

    assert review_page.search_edit.text() == "o3 o1"
    assert review_page.active_dialog is None
    assert analyst_outcomes(demo_sessions) == []


# --- a small store with outcomes -------------------------------------------------------------------------


def seed_outcomes(
    sessions: sessionmaker[TenantSession], title: str, kinds: list[OutcomeKind], prefix: str
) -> int:
    """A runbook, one linked ticket per outcome (resolved 2 h after opening), each outcome the analyst's."""
    with sessions.begin() as session:
        runbook_id = create_runbook(
            session,
            title=title,
            body="1. Do it.",
            tags="",
            service=None,
            actor=REVIEWER,
            status=RunbookStatus.APPROVED,
        )
    for number, kind in enumerate(kinds):
        values = TicketValues(
            external_id=f"{prefix}{number}",
            source_system="servicenow",
            title=f"{title} problem {number}",
            description="",
            status="Resolved",
            severity="3",
            assignee=None,
            kind=TicketKind.INCIDENT,
            category="Email",
            configuration_item=None,
            resolution_notes=None,
            resolved_at=T0 + timedelta(days=number, hours=2),
            created_at=T0 + timedelta(days=number),
            updated_at=T0 + timedelta(days=number, hours=2),
            source_url=None,
            raw_payload={},
        )
        with sessions.begin() as session:
            upsert_tickets(session, [values], instance="acme.service-now.com")
            ticket_id = session.scalars(
                select(Ticket.id).where(Ticket.external_id == values.external_id)
            ).one()
            session.add(
                TicketRunbookLink(
                    tenant_id=session.tenant_id,
                    ticket_id=ticket_id,
                    runbook_id=runbook_id,
                    decision=LinkDecision.LINKED,
                    linked_at=T0,
                )
            )
            session.flush()
            record_outcome(session, ticket_id, kind, REVIEWER, note=f"{prefix}{number}: {kind.value}")
    return runbook_id


@pytest.fixture
def outcome_store(workspace: Workspace) -> tuple[int, int]:
    sessions = workspace.session_factory("default")
    weak = seed_outcomes(sessions, "Weak runbook", [OutcomeKind.FAILED] * 4 + [OutcomeKind.PARTLY], "W")
    good = seed_outcomes(sessions, "Good runbook", [OutcomeKind.RESOLVED] * 5, "G")
    return weak, good


@pytest.fixture
def context(workspace: Workspace) -> Iterator[AppContext]:
    runner = TaskRunner()
    yield AppContext(workspace, "default", runner, reviewer_name=REVIEWER)
    runner.wait_for_done(WAIT_MS)
    runner.shutdown()


def test_the_metrics_page_lists_the_runbooks_flagged_for_revision(
    qtbot: QtBot, context: AppContext, outcome_store: tuple[int, int]
) -> None:
    weak, _good = outcome_store
    page = MetricsPage(context)
    qtbot.addWidget(page)
    page.resize(1500, 900)
    with qtbot.waitSignal(page.outcomes_section.loaded, timeout=WAIT_MS):
        page.show()
    section = page.outcomes_section
    QAbstractItemModelTester(section.model, QAbstractItemModelTester.FailureReportingMode.Fatal)

    assert [stats.runbook_id for stats in section.model.rows] == [weak]
    cells = [section.model.index(0, column).data() for column in range(section.model.columnCount())]
    assert cells[:5] == ["Weak runbook", "10%", "5", "2.0 h", "-"]
    assert cells[5].startswith("W3 (analyst: did not help")
    assert section.table.isVisibleTo(page) and not section.empty_label.isVisibleTo(page)
    assert "below 60%" in section.rule_label.text()
    page.stop()


def test_the_library_flags_a_runbook_and_shows_its_figures(
    qtbot: QtBot, context: AppContext, outcome_store: tuple[int, int]
) -> None:
    weak, good = outcome_store
    page = RunbooksPage(context)
    qtbot.addWidget(page)
    page.show()
    with qtbot.waitSignal(page.loaded, timeout=WAIT_MS):
        page.reload()
    qtbot.waitUntil(lambda: weak in page.outcome_stats, timeout=WAIT_MS)

    column = page.model.column_index("Outcomes")
    cells = {row.id: page.model.index(number, column).data() for number, row in enumerate(page.model.rows)}
    assert cells[weak] == f"{NEEDS_REVISION} · 10% of 5"
    assert cells[good] == "100% of 5"

    assert page._select_row_id(weak)
    header = page.detail_header.text()
    assert NEEDS_REVISION in header
    assert "success rate 10% (below 60%)" in header
    assert "Last failures: W3" in header
    assert page._select_row_id(good)
    assert NEEDS_REVISION not in page.detail_header.text()
    page.stop()
