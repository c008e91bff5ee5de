"""Adopting an article and "source changed" on the Runbooks page (desktop/pages/runbooks.py,
desktop/dialogs/source_change.py; issue 14). Real SQLite, the app's task runner, offscreen Qt."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from sqlalchemy import select

from core.knowledge.records import ArticleState, ArticleValues
from core.knowledge.store import upsert_articles
from core.store.models import AuditEvent, Runbook, RunbookSource, RunbookStatus
from core.store.workspace import Workspace
from desktop.background.tasks import TaskRunner
from desktop.context import AppContext
from desktop.pages.gaps import cluster_html
from desktop.pages.runbooks import RunbooksPage
from tests.core.test_knowledge_enrichment import cluster

WAIT_MS = 20_000
URL = "https://acme.service-now.com/kb_view.do?sysparm_article=KB0012345"
ARTICLE = ArticleValues(
    external_id="a1",
    source_system="servicenow-kb",
    title="Outlook crashes on start",
    body="## Steps\n\n1. Open Outlook in safe mode.\n2. Disable the add-in.",
    state=ArticleState.PUBLISHED,
    updated_at=datetime(2026, 11, 2, tzinfo=UTC),
    number="KB0012345",
    url=URL,
    category="Email",
)


def store(workspace: Workspace, values: ArticleValues) -> None:
    sessions = workspace.session_factory("default")
    with sessions.begin() as session:
        upsert_articles(session, [values], instance="https://acme.service-now.com", connector_config_id=None)


def shown(page: RunbooksPage) -> tuple[int, int] | None:
    """The selected runbook's id and revision."""
    row = page.current_row()
    return (row.id, row.current_revision) if row is not None else None


@pytest.fixture
def runner(qapp: QApplication) -> Iterator[TaskRunner]:
    task_runner = TaskRunner()
    yield task_runner
    task_runner.shutdown()
    task_runner.deleteLater()


@pytest.fixture
def page(qtbot: QtBot, workspace: Workspace, runner: TaskRunner) -> Iterator[RunbooksPage]:
    store(workspace, ARTICLE)
    runbooks = RunbooksPage(AppContext(workspace, "default", runner, reviewer_name="alice"))
    qtbot.addWidget(runbooks)
    runbooks.show()
    with qtbot.waitSignal(runbooks.loaded, timeout=WAIT_MS):
        runbooks.reload()
    yield runbooks
    runbooks.stop()


def test_adopt_from_the_runbooks_page_then_see_and_take_the_source_change(
    qtbot: QtBot, page: RunbooksPage, workspace: Workspace
) -> None:
    page.ask_article = lambda _parent: "kb0012345"
    with qtbot.waitSignal(page.notice, timeout=WAIT_MS) as notice:
        page.adopt_action.trigger()
    assert notice.args == ["KB0012345 adopted as draft runbook 1"]
    qtbot.waitUntil(lambda: shown(page) == (1, 1), timeout=WAIT_MS)
    row = page.current_row()
    assert row is not None and (row.source, row.status, row.external_ref) == ("kb", "draft", URL)
    qtbot.waitUntil(lambda: not page.source_action.isEnabled() and page.source_changes == {}, timeout=WAIT_MS)
    assert "Source changed" not in page.detail_header.text()

    store(
        workspace, replace(ARTICLE, body="## Steps\n\n1. Open Outlook in safe mode.\n2. Remove the add-in.")
    )
    page.reload()
    qtbot.waitUntil(lambda: 1 in page.source_changes and page.source_action.isEnabled(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "Source changed" in page.detail_header.text(), timeout=WAIT_MS)
    assert "KB0012345 changed since it was adopted" in page.detail_header.text()

    dialog = page.show_source_change()
    assert dialog is not None
    assert dialog.diff_view.toPlainText().splitlines()[-2:] == [
        "-2. Disable the add-in.",
        "+2. Remove the add-in.",
    ]
    assert URL in dialog.header.text()
    with qtbot.waitSignal(dialog.acknowledged, timeout=WAIT_MS) as acknowledged:
        dialog.take_button.click()
    assert acknowledged.args == [1]
    qtbot.waitUntil(lambda: page.source_changes == {} and not page.source_action.isEnabled(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: shown(page) == (1, 2), timeout=WAIT_MS)

    sessions = workspace.session_factory("default")
    with sessions() as session:
        runbook = session.scalars(select(Runbook)).one()
        assert runbook.source == RunbookSource.KB and runbook.status == RunbookStatus.DRAFT
        assert "2. Remove the add-in." in runbook.body
        actors = session.execute(
            select(AuditEvent.action, AuditEvent.actor)
            .where(AuditEvent.action.like("knowledge.%"))
            .order_by(AuditEvent.id)
        ).all()
        assert actors == [("knowledge.adopted", "alice"), ("knowledge.source_acknowledged", "alice")]


def test_adopting_an_unknown_number_shows_the_error_and_an_id_adopts(
    qtbot: QtBot, page: RunbooksPage
) -> None:
    task = page.adopt_article("KB404")
    assert task is not None
    qtbot.waitUntil(lambda: page.error_label.isVisible(), timeout=WAIT_MS)
    assert page.error_label.text() == "there is no knowledge article KB404 in this tenant"
    with qtbot.waitSignal(page.notice, timeout=WAIT_MS) as notice:  # by store id: the review page's way
        page.adopt_article(1)
    assert notice.args == ["KB0012345 adopted as draft runbook 1"]
    page.ask_article = lambda _parent: None  # the analyst cancelled the question
    assert page.adopt_article() is None


def test_the_gaps_page_says_a_gap_is_covered_by_an_article() -> None:
    html = cluster_html(cluster("g1", 60, covered=True))
    assert "<b>covered by KB0020001: adopt it</b> (confidence 70%; the cheaper fix)" in html
    assert "covered by" not in cluster_html(cluster("g2", 60, covered=False))
