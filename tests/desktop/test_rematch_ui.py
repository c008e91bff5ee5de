"""The app side of re-matching (issue 12, item 1): approving a runbook in the library re-matches the old
tickets near it in the background, then the review queue, the Gaps page and the metrics show the new matches;
Analysis > "Re-analyse all tickets" runs every ticket again with progress and cancel.

The real window on the analysed demo workspace, the real model, FAISS and SQLite.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import QDate, QSettings
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from core.analytics.gaps import GapReport
from core.matching.rematch import RematchReport, count_requests
from core.store.models import Analysis, RunbookStatus, Ticket
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from core.workflow.runbooks import create_runbook, set_status
from desktop.background.tasks import TaskState
from desktop.main_window import METRICS_PAGE, REVIEW_PAGE, MainWindow
from tests.conftest import DEMO_DIR

pytestmark = pytest.mark.slow

WAIT_MS = 120_000
TITLE = "Jenkins agents offline, builds stuck in the queue"
JENKINS_RUNBOOK = """\
## Symptoms

Builds wait in the Jenkins queue ("Waiting for next available executor"); the monitoring alert "Jenkins
agent jenkins-agent-07 offline"; pipelines fail with hudson.remoting.ChannelClosedException.

## Resolution steps

1. Manage Jenkins > Nodes: find the offline agents and the reason given (disconnected, Java version mismatch).
2. On the agent host restart the service: `systemctl restart jenkins-agent`.
3. Upgrade the agent JDK to the controller's version (17) and reconnect the node.
"""


def jenkins_ticket_ids(sessions: sessionmaker[TenantSession]) -> set[int]:
    with (DEMO_DIR / "labels.csv").open(encoding="utf-8") as handle:
        numbers = {row["number"] for row in csv.DictReader(handle) if row["gap"] == "jenkins-agents"}
    with sessions() as session:
        return set(session.scalars(select(Ticket.id).where(Ticket.external_id.in_(numbers))))


def in_gaps(report: GapReport, ticket_ids: set[int]) -> int:
    return sum(len(ticket_ids & set(cluster.member_ticket_ids)) for cluster in report.clusters)


@pytest.fixture
def window(qtbot, analysed_demo: Workspace, embedder, tmp_path: Path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    main_window = MainWindow(analysed_demo, "default", settings=settings, embedder_factory=lambda: embedder)
    qtbot.addWidget(main_window)
    main_window.show()
    yield main_window
    main_window.close()


def test_approving_a_runbook_rematches_old_tickets_and_refreshes_queue_gaps_and_metrics(
    qtbot, window: MainWindow, analysed_demo: Workspace
) -> None:
    sessions = analysed_demo.session_factory()
    with sessions.begin() as session:  # written for the Jenkins gap and submitted; approval is the analyst's
        runbook_id = create_runbook(
            session, title=TITLE, body=JENKINS_RUNBOOK, tags="", service=None, actor="ana"
        )
        set_status(session, runbook_id, RunbookStatus.IN_REVIEW, "ana")
    jenkins = jenkins_ticket_ids(sessions)
    review = window.review_page
    window.show_page(REVIEW_PAGE)
    qtbot.waitUntil(lambda: review.queue_model.rowCount() > 0 and not review.is_loading(), timeout=WAIT_MS)
    assert jenkins <= {row.ticket_id for row in review.queue_model.rows}  # waiting for a runbook
    assert not any(row.best_runbook_id == runbook_id for row in review.queue_model.rows)
    window.gaps_page.set_range(QDate(2026, 6, 1), QDate(2026, 11, 30))
    with qtbot.waitSignal(window.gaps_page.analysed, timeout=WAIT_MS) as first_gaps:
        window.gaps_page.start_analysis()
    assert in_gaps(first_gaps.args[0], jenkins) >= 8
    library = window.runbooks_page
    library.reload()  # the runbook was written after the window opened
    qtbot.waitUntil(lambda: any(row.id == runbook_id for row in library.model.rows), timeout=WAIT_MS)
    row = next(row for row in library.model.rows if row.id == runbook_id)
    window.metrics_page.reload()  # loaded once: it would not load again unless told its figures changed
    qtbot.waitUntil(lambda: not window.metrics_page.is_loading(), timeout=WAIT_MS)
    rematched: list[RematchReport] = []
    library.rematched.connect(rematched.append)
    gap_reports: list[GapReport] = []
    window.gaps_page.analysed.connect(gap_reports.append)

    approved_at = datetime.now(UTC)
    with qtbot.waitSignals(
        [library.rematched, review.queue_loaded, window.gaps_page.analysed], timeout=WAIT_MS
    ):
        task = library.change_status(RunbookStatus.APPROVED, row)
        assert task is not None  # the approval, and the re-match after it, run on workers: nothing waits here

    qtbot.waitUntil(lambda: not review.is_loading(), timeout=WAIT_MS)  # the reload the re-match asked for
    [report] = rematched
    assert report.reanalysed > 0 and report.left_gap > 0
    shown = {row.ticket_id: row for row in review.queue_model.rows}
    waiting = jenkins & shown.keys()
    assert waiting
    assert all(shown[t].analysed_at >= approved_at for t in waiting)  # every one re-matched
    now_best = {t for t in waiting if shown[t].best_runbook_id == runbook_id}
    assert len(now_best) >= 0.8 * len(waiting)  # (one mail-thread ticket is more about who reported it)
    assert all(shown[t].best_runbook_title == TITLE for t in now_best)
    assert in_gaps(gap_reports[-1], jenkins) == 0
    assert any(n.text.startswith("Re-matched") for n in window.notifications.notifications())
    with qtbot.waitSignal(window.metrics_page.loaded, timeout=WAIT_MS):
        window.show_page(METRICS_PAGE)  # the figures changed: shown again, the page loads them afresh
    with sessions() as session:
        assert count_requests(session) == 0


def test_reanalyse_all_is_a_background_job_with_progress_and_cancel(
    qtbot, window: MainWindow, analysed_demo: Workspace
) -> None:
    sessions = analysed_demo.session_factory()
    with sessions() as session:
        tickets = session.scalar(select(func.count()).select_from(Ticket)) or 0
        analyses = session.scalar(select(func.count()).select_from(Analysis)) or 0
    analysis_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Analysis")
    assert window.reanalyse_all_action in analysis_menu.actions()

    window.reanalyse_all_action.trigger()
    cancelled = window._jobs["analysis"]
    assert cancelled.is_active  # the window goes on; the status bar shows it with its Cancel button
    cancelled.cancel()
    qtbot.waitUntil(lambda: not cancelled.is_active, timeout=WAIT_MS)
    assert cancelled.state is TaskState.CANCELLED

    window.reanalyse_all_action.trigger()
    task = window._jobs["analysis"]
    assert task is not cancelled
    qtbot.waitUntil(lambda: task.state is TaskState.SUCCEEDED, timeout=WAIT_MS)
    assert task.progress is not None and (task.progress.done, task.progress.total) == (tickets, tickets)
    with sessions() as session:
        after = session.scalar(select(func.count()).select_from(Analysis)) or 0
    assert after - analyses >= tickets  # every ticket analysed again (plus what the cancelled run committed)
    assert any("analysed" in n.text.lower() for n in window.notifications.notifications())
