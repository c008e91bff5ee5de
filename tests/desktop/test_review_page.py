"""The review page on the analysed demo workspace: queue, side by side, keys, decisions in the store, undo.

Headless (offscreen), the real model, SQLite and FAISS. Keys are sent with ``qtbot.keyClick`` to the focused
widget of an active window, the way a user's key press arrives; every decision is checked in the database.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtTest import QAbstractItemModelTester
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.store.models import (
    AnalysisDecision,
    AuditEvent,
    LinkDecision,
    Runbook,
    RunbookStatus,
    TicketRunbookLink,
)
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from core.workflow import review as review_module
from core.workflow.drafts import RunbookDraft
from core.workflow.review import (
    QueueFilters,
    ReviewQueueRow,
    load_review_queue,
    queue_counts,
    runbook_choices,
)
from desktop.background import review_jobs
from desktop.background.tasks import TaskRunner
from desktop.context import AppContext
from desktop.pages.review.dialogs import LinkRunbookDialog, RejectDialog, UndoConfirmDialog
from desktop.pages.review.models import (
    DECISION_LABELS,
    MatchTableModel,
    ReviewQueueModel,
    RunbookChoiceModel,
)
from desktop.pages.review.page import ReviewPage
from desktop.widgets.table_models import SORT_ROLE
from desktop.widgets.ticket_detail import HIGHLIGHT_STYLE

WAIT_MS = 20_000
REVIEWER = "ana.analyst"


@pytest.fixture
def demo_sessions(analysed_demo: Workspace) -> sessionmaker[TenantSession]:
    return analysed_demo.session_factory("default")


@pytest.fixture
def context(analysed_demo: Workspace, embedder) -> Iterator[AppContext]:
    runner = TaskRunner()
    yield AppContext(
        analysed_demo, "default", runner, embedder_factory=lambda: embedder, reviewer_name=REVIEWER
    )
    runner.shutdown()


@pytest.fixture
def page(qtbot, context: AppContext) -> Iterator[ReviewPage]:
    review_page = ReviewPage(context)
    qtbot.addWidget(review_page)
    review_page.resize(1500, 850)
    with qtbot.waitSignal(review_page.queue_loaded, timeout=WAIT_MS):
        review_page.show()  # the first show loads the queue
    qtbot.waitExposed(review_page)
    wait_for_review(qtbot, review_page)
    review_page.activateWindow()
    qtbot.waitUntil(review_page.isActiveWindow)
    review_page.queue_table.setFocus()
    yield review_page
    review_page.stop()
    context.runner.wait_for_done(WAIT_MS)


def wait_for_review(qtbot, page: ReviewPage) -> None:
    """Until the side-by-side view shows the current ticket's matches."""
    row = page.current_row()
    assert row is not None
    qtbot.waitUntil(
        lambda: page._review is not None and page._review.ticket.id == row.ticket_id,
        timeout=WAIT_MS,
    )


def expected_queue(sessions: sessionmaker[TenantSession], filters: QueueFilters | None = None) -> list[int]:
    with sessions() as session:
        return [row.ticket_id for row in load_review_queue(session, filters)]


def view_ticket_ids(page: ReviewPage) -> list[int]:
    proxy = page.queue_proxy
    return [
        page.queue_model.row_at(proxy.mapToSource(proxy.index(r, 0))).ticket_id
        for r in range(proxy.rowCount())
    ]


def link(sessions: sessionmaker[TenantSession], ticket_id: int, runbook_id: int) -> TicketRunbookLink | None:
    with sessions() as session:
        return session.scalars(
            select(TicketRunbookLink).where(
                TicketRunbookLink.ticket_id == ticket_id, TicketRunbookLink.runbook_id == runbook_id
            )
        ).one_or_none()


def review_actions(sessions: sessionmaker[TenantSession]) -> list[tuple[str, str]]:
    with sessions() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("review.%")).order_by(AuditEvent.id)
        )
        return [(event.action, event.actor) for event in events]


def press(
    qtbot, page: ReviewPage, key: Qt.Key, modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier
):
    focus = page.focusWidget() or page.queue_table
    qtbot.keyClick(focus, key, modifier)


# --- models -----------------------------------------------------------------------------------------------


def test_every_review_model_passes_the_model_tester(
    qtbot, demo_sessions: sessionmaker[TenantSession]
) -> None:
    with demo_sessions() as session:
        rows = load_review_queue(session)
        choices = runbook_choices(session)
    queue_model = ReviewQueueModel()
    testers = [QAbstractItemModelTester(queue_model, QAbstractItemModelTester.FailureReportingMode.Warning)]
    queue_model.set_rows(rows[:40])
    # Removal in several blocks, first, middle and last rows included.
    removed = {rows[0].ticket_id, rows[5].ticket_id, rows[6].ticket_id, rows[39].ticket_id}
    assert queue_model.remove_ticket_ids(removed) == 4
    assert [r.ticket_id for r in queue_model.rows] == [
        r.ticket_id for r in rows[:40] if r.ticket_id not in removed
    ]
    assert queue_model.remove_ticket_ids({-1}) == 0
    confidence = queue_model.column_index("Confidence")
    first = queue_model.rows[0]
    assert queue_model.index(0, confidence).data() == f"{round(first.confidence * 100)} %"
    assert queue_model.index(0, confidence).data(SORT_ROLE) == first.confidence
    assert (
        queue_model.index(0, queue_model.column_index("Decision")).data() == DECISION_LABELS[first.decision]
    )

    choice_model = RunbookChoiceModel()
    testers.append(
        QAbstractItemModelTester(choice_model, QAbstractItemModelTester.FailureReportingMode.Warning)
    )
    choice_model.set_rows(choices)
    assert choice_model.index(0, 1).data() == "Approved"

    match_model = MatchTableModel()
    testers.append(
        QAbstractItemModelTester(match_model, QAbstractItemModelTester.FailureReportingMode.Warning)
    )
    match_model.set_rows([])
    queue_model.set_rows([])
    assert queue_model.rowCount() == 0
    del testers


def test_match_model_and_proxies_pass_the_model_tester_on_the_page(qtbot, page: ReviewPage) -> None:
    testers = [
        QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Warning)
        for model in (page.match_model, page.queue_proxy, page.queue_model)
    ]
    assert page.match_model.rowCount() > 1
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS):
        page.decision_combo.setCurrentIndex(page.decision_combo.findData("generate_runbook"))
    page.queue_table.sortByColumn(page.queue_model.column_index("Confidence"), Qt.SortOrder.DescendingOrder)
    wait_for_review(qtbot, page)
    match = page.match_model.rows[0]
    confidence = page.match_model.column_index("Confidence")
    assert page.match_model.index(0, confidence).data() == f"{round(match.match.confidence * 100)} %"
    del testers


# --- queue and side by side -------------------------------------------------------------------------------


def test_queue_shows_the_expected_tickets_order_and_counts(
    page: ReviewPage, demo_sessions: sessionmaker[TenantSession]
) -> None:
    assert view_ticket_ids(page) == expected_queue(demo_sessions)
    assert page.queue_proxy.rowCount() == 348
    with demo_sessions() as session:
        counts = queue_counts(session)
    assert page.counts == counts
    for decision in (AnalysisDecision.FLAG_REVIEW, AnalysisDecision.GENERATE_RUNBOOK):
        assert f"{DECISION_LABELS[decision]}: {counts[decision]:,}" in page.counts_label.text()
    assert page.counts_label.text().endswith("In queue: 348")
    assert page.decision_combo.itemText(1) == f"Needs review ({counts[AnalysisDecision.FLAG_REVIEW]})"
    first = page.current_row()
    assert first is not None
    assert first.decision is AnalysisDecision.FLAG_REVIEW
    assert first.ticket_id == view_ticket_ids(page)[0]
    assert [s.objectName() for s in page.splitters()] == [
        "reviewSplitter",
        "reviewTicketSplitter",
        "reviewMatchSplitter",
    ]


def test_side_by_side_shows_ticket_similar_tickets_and_highlighted_matches(page: ReviewPage) -> None:
    row = page.current_row()
    assert row is not None
    review = page._review
    assert review is not None
    assert row.title in page.ticket_view.toPlainText()
    assert row.external_id in page.ticket_view.toPlainText()
    assert "Similar past tickets" in page.similar_view.toPlainText()
    assert review.similar[0].external_id in page.similar_view.toPlainText()

    assert 1 < page.match_model.rowCount() <= 5
    match = page.current_match()
    assert match is not None
    assert match.rank == 1
    assert match.runbook.id == row.best_runbook_id
    assert page.confidence_bar.value() == round(match.match.confidence * 100)
    assert "Semantic" in page.signals_label.text()
    assert "Lexical" in page.signals_label.text()
    assert match.match.shared_terms
    # The shared terms are highlighted in both texts.
    highlight = HIGHLIGHT_STYLE.split(";")[0].split(":")[1].strip()  # the highlight colour
    assert highlight in page.ticket_view.toHtml()
    assert highlight in page.match_view.toHtml()
    assert match.runbook.title in page.match_view.toPlainText()


def test_match_keys_switch_matches(qtbot, page: ReviewPage) -> None:
    rows = page.match_model.rowCount()
    assert rows >= 3
    press(qtbot, page, Qt.Key.Key_3)
    assert page.match_table.currentIndex().row() == 2
    first_text = page.match_view.toPlainText()
    press(qtbot, page, Qt.Key.Key_BracketLeft)
    assert page.match_table.currentIndex().row() == 1
    press(qtbot, page, Qt.Key.Key_BracketRight)
    assert page.match_table.currentIndex().row() == 2
    assert page.match_view.toPlainText() == first_text
    press(qtbot, page, Qt.Key.Key_Up)
    assert page.match_table.currentIndex().row() == 1
    press(qtbot, page, Qt.Key.Key_Down)
    assert page.match_table.currentIndex().row() == 2
    press(qtbot, page, Qt.Key.Key_1)
    assert page.match_table.currentIndex().row() == 0


def test_j_and_k_move_through_the_queue(qtbot, page: ReviewPage) -> None:
    ids = view_ticket_ids(page)
    press(qtbot, page, Qt.Key.Key_J)
    press(qtbot, page, Qt.Key.Key_J)
    current = page.current_row()
    assert current is not None
    assert current.ticket_id == ids[2]
    press(qtbot, page, Qt.Key.Key_K)
    current = page.current_row()
    assert current is not None
    assert current.ticket_id == ids[1]
    wait_for_review(qtbot, page)
    assert current.title in page.ticket_view.toPlainText()


# --- decisions --------------------------------------------------------------------------------------------


def test_approve_with_a_then_undo_with_ctrl_z(
    qtbot, page: ReviewPage, demo_sessions: sessionmaker[TenantSession]
) -> None:
    ids = view_ticket_ids(page)
    row = page.current_row()
    assert row is not None
    assert row.best_runbook_id is not None
    before = link(demo_sessions, row.ticket_id, row.best_runbook_id)
    assert before is not None
    assert before.decision is LinkDecision.SUGGESTED

    with qtbot.waitSignal(page.decision_made, timeout=WAIT_MS) as decided:
        press(qtbot, page, Qt.Key.Key_A)
    record = decided.args[0]
    assert record.action == "review.approve"
    after = link(demo_sessions, row.ticket_id, row.best_runbook_id)
    assert after is not None
    assert after.decision is LinkDecision.LINKED
    assert after.reviewed_by == REVIEWER
    assert after.reviewed_at is not None
    assert review_actions(demo_sessions) == [("review.approve", REVIEWER)]
    # The ticket left the queue and the next one is selected.
    assert view_ticket_ids(page) == ids[1:]
    current = page.current_row()
    assert current is not None
    assert current.ticket_id == ids[1]
    qtbot.waitUntil(lambda: page.counts.get(AnalysisDecision.FLAG_REVIEW) == 41, timeout=WAIT_MS)

    press(qtbot, page, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # names the step first
    assert isinstance(page.active_dialog, UndoConfirmDialog)
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS), qtbot.waitSignal(page.decision_made):
        qtbot.keyClick(page.active_dialog, Qt.Key.Key_Return)  # Undo is the default button
    restored = link(demo_sessions, row.ticket_id, row.best_runbook_id)
    assert restored is not None
    assert restored.decision is LinkDecision.SUGGESTED
    assert restored.reviewed_by is None
    assert restored.reviewed_at is None
    assert review_actions(demo_sessions) == [("review.approve", REVIEWER), ("review.undo", REVIEWER)]
    assert view_ticket_ids(page) == ids
    current = page.current_row()
    assert current is not None
    assert current.ticket_id == row.ticket_id
    assert page.undo_stack == []


def test_enter_approves_the_selected_match(
    qtbot, page: ReviewPage, demo_sessions: sessionmaker[TenantSession]
) -> None:
    row = page.current_row()
    assert row is not None
    press(qtbot, page, Qt.Key.Key_2)
    second = page.current_match()
    assert second is not None
    assert second.rank == 2
    with qtbot.waitSignal(page.decision_made, timeout=WAIT_MS):
        press(qtbot, page, Qt.Key.Key_Return)
    approved = link(demo_sessions, row.ticket_id, second.runbook.id)
    assert approved is not None
    assert approved.decision is LinkDecision.LINKED
    assert approved.confidence_score == pytest.approx(second.match.confidence)
    assert row.best_runbook_id is not None
    best = link(demo_sessions, row.ticket_id, row.best_runbook_id)
    assert best is not None
    assert best.decision is LinkDecision.SUGGESTED  # only the chosen match was decided


def test_reject_with_a_reason(qtbot, page: ReviewPage, demo_sessions: sessionmaker[TenantSession]) -> None:
    row = page.current_row()
    assert row is not None
    assert row.best_runbook_id is not None
    press(qtbot, page, Qt.Key.Key_R)
    dialog = page.active_dialog
    assert isinstance(dialog, RejectDialog)
    qtbot.waitUntil(dialog.reason_edit.hasFocus)
    assert row.best_runbook_title is not None
    assert row.best_runbook_title in dialog.label.text()
    qtbot.keyClicks(dialog.reason_edit, "different product")
    with qtbot.waitSignal(page.decision_made, timeout=WAIT_MS):
        qtbot.keyClick(dialog.reason_edit, Qt.Key.Key_Return)
    rejected = link(demo_sessions, row.ticket_id, row.best_runbook_id)
    assert rejected is not None
    assert rejected.decision is LinkDecision.REJECTED
    assert rejected.reason == "different product"
    assert rejected.reviewed_by == REVIEWER
    assert row.ticket_id not in view_ticket_ids(page)
    assert review_actions(demo_sessions) == [("review.reject", REVIEWER)]


def test_cancelling_the_reject_dialog_decides_nothing(
    qtbot, page: ReviewPage, demo_sessions: sessionmaker[TenantSession]
) -> None:
    press(qtbot, page, Qt.Key.Key_R)
    dialog = page.active_dialog
    assert isinstance(dialog, RejectDialog)
    qtbot.waitUntil(dialog.reason_edit.hasFocus)
    qtbot.keyClick(dialog.reason_edit, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: page.active_dialog is None)
    assert review_actions(demo_sessions) == []
    assert page.queue_proxy.rowCount() == 348


def test_link_to_another_runbook(qtbot, page: ReviewPage, demo_sessions: sessionmaker[TenantSession]) -> None:
    row = page.current_row()
    assert row is not None
    with demo_sessions() as session:
        target = next(
            r
            for r in session.scalars(select(Runbook).where(Runbook.status == RunbookStatus.APPROVED))
            if r.id != row.best_runbook_id and "logrotate" in r.title
        )
    press(qtbot, page, Qt.Key.Key_L)
    dialog = page.active_dialog
    assert isinstance(dialog, LinkRunbookDialog)
    qtbot.waitUntil(lambda: dialog.model.rowCount() == 47, timeout=WAIT_MS)
    qtbot.waitUntil(dialog.search_edit.hasFocus)
    first = dialog.chosen()
    assert first is not None
    assert first.status == "approved"  # approved first
    qtbot.keyClicks(dialog.search_edit, "logrotate")
    assert dialog.proxy.rowCount() == 1
    chosen = dialog.chosen()
    assert chosen is not None
    assert chosen.id == target.id
    with qtbot.waitSignal(page.decision_made, timeout=WAIT_MS) as decided:
        qtbot.keyClick(dialog.search_edit, Qt.Key.Key_Return)
    assert decided.args[0].action == "review.link_other"
    linked = link(demo_sessions, row.ticket_id, target.id)
    assert linked is not None
    assert linked.decision is LinkDecision.LINKED
    assert linked.reviewed_by == REVIEWER
    assert row.ticket_id not in view_ticket_ids(page)


def test_draft_then_record_the_saved_draft(
    qtbot, page: ReviewPage, demo_sessions: sessionmaker[TenantSession]
) -> None:
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS):
        page.decision_combo.setCurrentIndex(page.decision_combo.findData("generate_runbook"))
    wait_for_review(qtbot, page)
    page.queue_table.setFocus()
    row = page.current_row()
    assert row is not None
    assert row.decision is AnalysisDecision.GENERATE_RUNBOOK
    with qtbot.waitSignal(page.draft_requested, timeout=WAIT_MS) as requested:
        press(qtbot, page, Qt.Key.Key_D)
    draft, ticket_id = requested.args
    assert isinstance(draft, RunbookDraft)
    assert ticket_id == row.ticket_id
    assert draft.source_ticket_ids == (row.ticket_id,)
    assert draft.title.lower() in row.title.lower() or row.title.lower() in draft.title.lower()

    # What the runbook editor does on save (another page's job): create the draft runbook.
    with demo_sessions.begin() as session:
        runbook = Runbook(title=draft.title, body=draft.to_markdown(), status=RunbookStatus.DRAFT)
        session.add(runbook)
        session.flush()
        draft_id = runbook.id
    with qtbot.waitSignal(page.decision_made, timeout=WAIT_MS) as decided:
        page.record_draft(ticket_id, draft_id)
    assert decided.args[0].action == "review.draft"
    with demo_sessions() as session:
        stored = session.get(Runbook, draft_id)
        assert stored is not None
        assert stored.status is RunbookStatus.DRAFT
        assert draft.symptoms.split("\n")[0] in stored.body
    drafted = link(demo_sessions, ticket_id, draft_id)
    assert drafted is not None
    assert drafted.decision is LinkDecision.LINKED
    assert row.ticket_id not in view_ticket_ids(page)


def test_bulk_approve_and_reject_a_selection(
    qtbot, page: ReviewPage, demo_sessions: sessionmaker[TenantSession]
) -> None:
    page.ask_reject_reason = False
    rows: list[ReviewQueueRow] = [
        page.queue_model.row_at(page.queue_proxy.mapToSource(page.queue_proxy.index(r, 0))) for r in range(6)
    ]
    selection = page.queue_table.selectionModel()
    flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    for r in range(3):
        selection.select(page.queue_proxy.index(r, 0), flags)
    assert len(page.selected_rows()) == 3
    with qtbot.waitSignal(page.decision_made, timeout=WAIT_MS) as decided:
        press(qtbot, page, Qt.Key.Key_A)
    assert decided.args[0].ticket_ids == tuple(r.ticket_id for r in rows[:3])
    for row in rows[:3]:
        assert row.best_runbook_id is not None
        stored = link(demo_sessions, row.ticket_id, row.best_runbook_id)
        assert stored is not None
        assert stored.decision is LinkDecision.LINKED
    assert view_ticket_ids(page)[:3] == [r.ticket_id for r in rows[3:6]]

    for r in range(2):
        selection.select(page.queue_proxy.index(r, 0), flags)
    with qtbot.waitSignal(page.decision_made, timeout=WAIT_MS):
        press(qtbot, page, Qt.Key.Key_R)
    for row in rows[3:5]:
        assert row.best_runbook_id is not None
        stored = link(demo_sessions, row.ticket_id, row.best_runbook_id)
        assert stored is not None
        assert stored.decision is LinkDecision.REJECTED
    assert [a for a, _ in review_actions(demo_sessions)] == ["review.approve"] * 3 + ["review.reject"] * 2


# --- filters and typing ------------------------------------------------------------------------------------


def test_typing_a_filter_never_fires_shortcuts(
    qtbot, page: ReviewPage, demo_sessions: sessionmaker[TenantSession]
) -> None:
    page.search_edit.setFocus()
    qtbot.waitUntil(page.search_edit.hasFocus)
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS):
        qtbot.keyClicks(page.search_edit, "outlook")  # o-u-t-l-o-o-k: L and K are shortcuts elsewhere
        qtbot.keyClick(page.search_edit, Qt.Key.Key_Return)  # Enter reloads, it does not approve
    assert page.search_edit.text() == "outlook"
    assert page.active_dialog is None
    assert review_actions(demo_sessions) == []
    assert view_ticket_ids(page) == expected_queue(demo_sessions, QueueFilters(text="outlook"))
    assert 0 < page.queue_proxy.rowCount() < 348

    page.queue_table.setFocus()
    qtbot.waitUntil(page.queue_table.hasFocus)
    press(qtbot, page, Qt.Key.Key_J)  # back on the queue, keys work again
    current = page.current_row()
    assert current is not None
    assert current.ticket_id == view_ticket_ids(page)[1]


def test_filters_reload_the_queue_in_sql(
    qtbot, page: ReviewPage, demo_sessions: sessionmaker[TenantSession]
) -> None:
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS):
        page.decision_combo.setCurrentIndex(page.decision_combo.findData("link_runbook"))
    expected = expected_queue(
        demo_sessions, QueueFilters(decisions=frozenset({AnalysisDecision.LINK_RUNBOOK}))
    )
    assert view_ticket_ids(page) == expected
    assert page.counts_label.text().endswith("In queue: 348")  # counts ignore the decision filter

    assert page.severity_combo.findData("high") > 0
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS):
        page.severity_combo.setCurrentIndex(page.severity_combo.findData("high"))
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS):
        page.confidence_min.setValue(90)
    filters = QueueFilters(
        decisions=frozenset({AnalysisDecision.LINK_RUNBOOK}),
        severities=frozenset({"high"}),
        confidence_min=0.9,
    )
    assert page.filters() == filters
    assert view_ticket_ids(page) == expected_queue(demo_sessions, filters)
    assert all(row.confidence >= 0.9 and row.severity == "high" for row in page.queue_model.rows)

    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS):
        page.decision_combo.setCurrentIndex(0)
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS):
        page.severity_combo.setCurrentIndex(0)
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS):
        page.confidence_min.setValue(0)
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS):
        page.date_field_combo.setCurrentIndex(page.date_field_combo.findData("created"))
    assert page.date_from.isEnabled()
    with demo_sessions() as session:
        created = sorted(row.created_at for row in load_review_queue(session) if row.created_at is not None)
    middle = created[len(created) // 2].astimezone()
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS):
        page.date_from.setDate(middle.date())
        page.date_to.setDate(middle.date())
    filters = page.filters()
    assert filters.date_from is not None
    assert filters.date_to is not None
    shown = page.queue_model.rows
    assert shown
    assert all(
        row.created_at is not None and filters.date_from <= row.created_at < filters.date_to for row in shown
    )
    assert view_ticket_ids(page) == expected_queue(demo_sessions, filters)


def test_a_worker_error_is_shown_on_the_page(
    qtbot, page: ReviewPage, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object, **_kwargs: object) -> list[ReviewQueueRow]:
        raise RuntimeError("queue is on holiday")

    monkeypatch.setattr(review_jobs, "load_review_queue", broken)
    with qtbot.waitSignal(page.error_occurred, timeout=WAIT_MS) as failed:
        page.reload()
    assert failed.args == ["Could not load the review queue: queue is on holiday"]
    assert page.error_label.isVisible()
    assert "queue is on holiday" in caplog.text


def test_a_failed_decision_is_reported_and_changes_nothing(
    qtbot,
    page: ReviewPage,
    monkeypatch: pytest.MonkeyPatch,
    demo_sessions: sessionmaker[TenantSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken_audit(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("audit disk full")

    monkeypatch.setattr(review_module, "record_audit", broken_audit)
    row = page.current_row()
    assert row is not None
    assert row.best_runbook_id is not None
    with qtbot.waitSignal(page.error_occurred, timeout=WAIT_MS) as failed:
        press(qtbot, page, Qt.Key.Key_A)
    assert "audit disk full" in failed.args[0]
    assert "audit disk full" in caplog.text  # the traceback is in the log too
    stored = link(demo_sessions, row.ticket_id, row.best_runbook_id)
    assert stored is not None
    assert stored.decision is LinkDecision.SUGGESTED  # the link change rolled back with the audit row
    assert row.ticket_id in view_ticket_ids(page)
