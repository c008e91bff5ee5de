"""The Gaps page on the analysed demo workspace: analysis in a worker, ranked list, Pareto, detail, actions.

Headless (offscreen), the real model's saved ticket index, SQLite and FAISS.
"""

from __future__ import annotations

import csv
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QDate, QSettings, Qt
from PySide6.QtTest import QAbstractItemModelTester
from sqlalchemy import select

from core.analytics.gaps import GapReport
from core.analytics.generation_queue import Bucket, GenerationQueue
from core.progress import Progress, raise_if_cancelled
from core.store.models import AuditEvent, GapDismissal, RunbookStatus
from core.store.repository import SYSTEM_ACTOR
from core.store.workspace import Workspace
from core.workflow.drafts import RunbookDraft
from desktop.background import gap_jobs
from desktop.background.tasks import TaskRunner
from desktop.context import AppContext
from desktop.main_window import GAPS_PAGE, MainWindow
from desktop.pages.gaps import GapsPage, GapTableModel, QueueTableModel
from desktop.widgets.pareto_chart import ParetoChart
from tests.helpers.gap_fixtures import planted_workspace

pytestmark = pytest.mark.slow
WAIT_MS = 30_000
REVIEWER = "ana.analyst"


@pytest.fixture
def context(analysed_demo: Workspace, embedder) -> Iterator[AppContext]:
    runner = TaskRunner()
    yield AppContext(
        analysed_demo, "default", runner, embedder_factory=lambda: embedder, reviewer_name=REVIEWER
    )
    runner.shutdown()


@pytest.fixture
def page(qtbot, context: AppContext) -> Iterator[GapsPage]:
    gaps_page = GapsPage(context)
    qtbot.addWidget(gaps_page)
    gaps_page.resize(1400, 800)
    gaps_page.show()
    qtbot.waitExposed(gaps_page)
    gaps_page.set_range(QDate(2026, 6, 1), QDate(2026, 11, 30))
    yield gaps_page
    gaps_page.stop()
    context.runner.wait_for_done(WAIT_MS)


def analyse(qtbot, page: GapsPage) -> GapReport:
    with qtbot.waitSignal(page.analysed, timeout=WAIT_MS) as blocker:
        page.analyse_button.click()
    report = blocker.args[0]
    assert isinstance(report, GapReport)
    qtbot.waitUntil(lambda: page.analyse_button.isEnabled(), timeout=WAIT_MS)
    return report


def test_analysis_fills_the_ranked_list_chart_and_detail(qtbot, page: GapsPage) -> None:
    report = analyse(qtbot, page)
    assert len(report.clusters) >= 6
    assert page.model.rows == report.clusters
    assert page.model.data(page.model.index(0, page.model.column_index("Gap"))) == report.clusters[0].label
    assert page.current_cluster() == report.clusters[0]
    detail = page.detail.toPlainText()
    assert report.clusters[0].label in detail
    assert "Why it does not cover them" in detail
    assert report.clusters[0].central_tickets[0].external_id in detail
    assert f"{len(report.clusters)} gaps" in page.summary_label.text()
    assert not page.progress_bar.isVisible() and not page.cancel_button.isEnabled()
    assert len(page.chart.bar_rects()) == len(report.clusters)
    rect = page.chart.bar_rects()[2]
    qtbot.mouseClick(page.chart, Qt.MouseButton.LeftButton, pos=rect.center().toPoint())
    assert page.current_cluster() == report.clusters[2]
    image = page.chart.grab().toImage()
    assert not image.isNull()
    colours = {image.pixelColor(x, image.height() // 2).name() for x in range(0, image.width(), 3)}
    assert len(colours) > 2  # something was drawn


def test_date_range_is_passed_to_the_analysis(qtbot, page: GapsPage) -> None:
    page.set_range(QDate(2026, 9, 1), QDate(2026, 9, 30))
    query = page.query()
    assert (query.since.isoformat(), query.until.isoformat()) == (
        "2026-09-01T00:00:00+00:00",
        "2026-10-01T00:00:00+00:00",
    )
    report = analyse(qtbot, page)
    assert report.query == query
    full = page.model.rowCount()
    page.set_range(QDate(2026, 6, 1), QDate(2026, 11, 30))
    assert analyse(qtbot, page).in_range > report.in_range
    assert page.model.rowCount() >= full


def test_draft_button_emits_a_draft_citing_the_gaps_tickets(qtbot, page: GapsPage) -> None:
    report = analyse(qtbot, page)
    with qtbot.waitSignal(page.draft_requested, timeout=WAIT_MS) as blocker:
        page.draft_button.click()
    draft = blocker.args[0]
    assert isinstance(draft, RunbookDraft)
    cluster = report.clusters[0]
    assert draft.source_ticket_ids == tuple(t.ticket_id for t in cluster.central_tickets)
    assert draft.title == cluster.title
    assert draft.steps and draft.steps[0].source_ticket == cluster.steps[0].source_ticket


def test_not_a_gap_removes_it_reranks_and_is_audited(qtbot, page: GapsPage, context: AppContext) -> None:
    report = analyse(qtbot, page)
    page.select_row(1)
    target = report.clusters[1]
    with qtbot.waitSignal(page.dismissed, timeout=WAIT_MS) as blocker:
        page.dismiss_current("handled by the vendor")
    assert blocker.args == [target.key]
    assert [c.key for c in page.model.rows] == [c.key for c in report.clusters if c.key != target.key]
    assert [c.rank for c in page.model.rows] == list(range(1, len(report.clusters)))
    assert page.model.rows[-1].cumulative_share == pytest.approx(1.0)
    with context.sessions() as session:
        dismissal = session.scalars(select(GapDismissal)).one()
        assert (dismissal.dismissed_by, dismissal.reason) == (REVIEWER, "handled by the vendor")
        audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "gap.dismissed")).one()
        assert audit.actor == REVIEWER and audit.entity_id == dismissal.id
    again = analyse(qtbot, page)
    assert target.key not in {c.key for c in again.clusters}
    assert "1 dismissed" in page.summary_label.text()


def test_cancel_stops_the_analysis(qtbot, page: GapsPage, monkeypatch: pytest.MonkeyPatch) -> None:
    def wait_for_cancel(*_args: object, progress: Progress, **_kwargs: object) -> GapReport:
        while not progress.cancelled:  # on the worker thread: wait for the page's cancel
            threading.Event().wait(0.005)
        raise_if_cancelled(progress, "gap analysis")
        raise AssertionError("raise_if_cancelled returned after a cancel")

    monkeypatch.setattr(gap_jobs, "analyse_gaps", wait_for_cancel)
    task = page.start_analysis()
    assert task is not None and page.cancel_button.isEnabled() and not page.analyse_button.isEnabled()
    assert page.start_analysis() is None  # one at a time
    page.cancel_button.click()
    qtbot.waitUntil(lambda: page.analyse_button.isEnabled(), timeout=WAIT_MS)
    assert page.summary_label.text() == "Cancelled."
    assert page.report is None and page.model.rowCount() == 0


def test_errors_reach_the_page(
    qtbot, page: GapsPage, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object, **_kwargs: object) -> GapReport:
        raise RuntimeError("index unreadable")

    monkeypatch.setattr(gap_jobs, "analyse_gaps", broken)
    with qtbot.waitSignal(page.error_occurred, timeout=WAIT_MS) as blocker:
        page.start_analysis()
    assert "index unreadable" in blocker.args[0]
    assert "index unreadable" in caplog.text  # the traceback is in the log too
    assert page.error_label.isVisibleTo(page)
    qtbot.waitUntil(lambda: page.analyse_button.isEnabled(), timeout=WAIT_MS)


def test_exports_write_html_and_csv(qtbot, page: GapsPage, context: AppContext, tmp_path: Path) -> None:
    report = analyse(qtbot, page)
    for kind in ("html", "csv"):
        task = page.export_to(tmp_path / f"gaps.{kind}", kind)
        assert task is not None
        qtbot.waitUntil(lambda task=task: not task.is_active, timeout=WAIT_MS)
    text = (tmp_path / "gaps.html").read_text(encoding="utf-8")
    assert all(c.label in text for c in report.clusters)
    with (tmp_path / "gaps.csv").open(encoding="utf-8-sig") as handle:
        assert [row["label"] for row in csv.DictReader(handle)] == [c.label for c in report.clusters]


def test_gap_table_model_passes_the_model_tester(qtbot, page: GapsPage) -> None:
    report = analyse(qtbot, page)
    model = GapTableModel()
    tester = QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    model.set_rows(report.clusters)
    model.set_rows(report.clusters[:2])
    model.set_rows(())
    assert tester is not None and model.rowCount() == 0


def test_pareto_chart_draws_nothing_gracefully(qtbot) -> None:
    chart = ParetoChart()
    qtbot.addWidget(chart)
    chart.resize(400, 200)
    chart.set_clusters(())
    image = chart.grab().toImage()
    assert not image.isNull() and chart.bar_rects() == []
    assert np.isfinite(chart.sizeHint().width())


def test_the_window_shows_the_gaps_page_and_opens_drafts(
    qtbot, analysed_demo: Workspace, embedder, tmp_path: Path
) -> None:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(analysed_demo, "default", settings=settings, embedder_factory=lambda: embedder)
    qtbot.addWidget(window)
    try:
        assert window.stack.widget(GAPS_PAGE) is window.gaps_page
        window.gaps_page.set_range(QDate(2026, 6, 1), QDate(2026, 11, 30))
        report = analyse(qtbot, window.gaps_page)
        assert window.runbooks_page.open_editors() == ()
        window.gaps_page.draft_button.click()
        [editor] = window.runbooks_page.open_editors()
        assert report.clusters[0].central_tickets[0].external_id in editor.body_edit.toPlainText()
    finally:
        for open_editor in window.runbooks_page.open_editors():
            open_editor.confirm_discard = lambda _editor: True  # a test: no dialog about the unsaved draft
        window.runbooks_page.close_editors()
        window.close()


# --- The generation queue (gaps of their own planted in the demo: tests.helpers.gap_fixtures) -------------


@pytest.fixture(scope="module")
def planted_template(
    analysed_demo_template: Path, tmp_path_factory: pytest.TempPathFactory, embedder
) -> Path:
    return planted_workspace(analysed_demo_template, tmp_path_factory.mktemp("planted") / "ws", embedder)


@pytest.fixture
def planted_page(qtbot, planted_template: Path, tmp_path: Path, embedder) -> Iterator[GapsPage]:
    root = tmp_path / "planted"
    shutil.copytree(planted_template, root, ignore=shutil.ignore_patterns("*.lock"))
    workspace = Workspace.open(root)
    runner = TaskRunner()
    context = AppContext(
        workspace, "default", runner, embedder_factory=lambda: embedder, reviewer_name=REVIEWER
    )
    gaps_page = GapsPage(context)
    qtbot.addWidget(gaps_page)
    gaps_page.resize(1400, 800)
    gaps_page.show()
    qtbot.waitExposed(gaps_page)
    gaps_page.set_range(QDate(2026, 6, 1), QDate(2026, 11, 30))
    yield gaps_page
    gaps_page.stop()
    runner.wait_for_done(WAIT_MS)
    runner.shutdown()
    workspace.close()


def analyse_and_queue(qtbot, page: GapsPage) -> GenerationQueue:
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS) as blocker:
        page.analyse_button.click()
    queue = blocker.args[0]
    assert isinstance(queue, GenerationQueue)
    return queue


def test_every_analysis_drafts_the_coherent_gaps_in_the_background_and_counts_the_queue(
    qtbot, planted_page: GapsPage
) -> None:
    page = planted_page
    with qtbot.waitSignal(page.drafts_generated, timeout=WAIT_MS) as generated:
        queue = analyse_and_queue(qtbot, page)
    automatic = queue.in_bucket(Bucket.AUTOMATIC)
    assert automatic and generated.args[0] == queue.generated == tuple(e.draft.runbook_id for e in automatic)
    assert all(e.draft is not None and e.draft.status is RunbookStatus.IN_REVIEW for e in automatic)
    counts = queue.counts()
    assert counts[Bucket.PROMPT] >= 1 and counts[Bucket.MANUAL] >= 1
    text = page.queue_counts_label.text()
    for bucket in Bucket:
        assert f": {counts[bucket]}" in text
    assert page.tabs.tabText(1) == f"Generation queue ({len(queue.entries)})"
    assert page.queue_model.rows == queue.entries
    assert page.report is not None and [e.key for e in queue.entries] == [c.key for c in page.report.clusters]
    assert "awaiting approval" in page.summary_label.text()
    # One button per gap without a draft; the drafted ones say so instead.
    assert set(page.queue_buttons) == {e.key for e in queue.entries if e.draft is None}
    draft_column = page.queue_model.column_index("Draft")
    row = queue.entries.index(automatic[0])
    assert page.queue_model.data(page.queue_model.index(row, draft_column)).endswith("in review")
    # Selecting a queue row shows its gap, with the confidence explained.
    page.queue_table.selectRow(row)
    detail = page.detail.toPlainText()
    assert automatic[0].cluster.label in detail and "procedure confidence" in detail
    assert "first half of the range" in detail  # the trend in words
    with page._context.sessions() as session:
        actors = session.scalars(
            select(AuditEvent.actor).where(AuditEvent.action == "gap.draft_generated")
        ).all()
    assert actors == [SYSTEM_ACTOR] * len(automatic)
    # A second analysis finds the drafts and writes nothing new.
    again = analyse_and_queue(qtbot, page)
    assert again.generated == () and again.in_bucket(Bucket.AUTOMATIC)[0].draft == automatic[0].draft


def test_approve_generation_drafts_a_likely_gap_in_the_analysts_name(qtbot, planted_page: GapsPage) -> None:
    page = planted_page
    queue = analyse_and_queue(qtbot, page)
    prompt = queue.in_bucket(Bucket.PROMPT)[0]
    button = page.queue_buttons[prompt.key]
    assert button.text() == "Approve generation"
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS) as blocker:
        button.click()
    after = blocker.args[0].entry(prompt.key)
    assert after.draft is not None and after.draft.status is RunbookStatus.IN_REVIEW
    assert prompt.key not in page.queue_buttons
    with page._context.sessions() as session:
        event = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "gap.draft_generated", AuditEvent.entity_id == after.draft.runbook_id
            )
        ).one()
    assert event.actor == REVIEWER and event.after is not None and event.after["bucket"] == "prompt"


def test_a_manual_gap_opens_the_editor_pre_filled(qtbot, planted_page: GapsPage) -> None:
    page = planted_page
    queue = analyse_and_queue(qtbot, page)
    manual = queue.in_bucket(Bucket.MANUAL)[0]
    button = page.queue_buttons[manual.key]
    assert button.text() == "Write it…"
    with qtbot.waitSignal(page.draft_requested, timeout=WAIT_MS) as blocker:
        button.click()
    draft = blocker.args[0]
    assert isinstance(draft, RunbookDraft) and draft.title == manual.cluster.title


def test_queue_table_model_passes_the_model_tester(qtbot, planted_page: GapsPage) -> None:
    queue = analyse_and_queue(qtbot, planted_page)
    model = QueueTableModel()
    tester = QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    model.set_rows(queue.entries)
    model.set_rows(queue.entries[:1])
    model.set_rows(())
    assert tester is not None and model.rowCount() == 0
