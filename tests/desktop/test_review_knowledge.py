"""The review page's knowledge panel (issue 14) on the analysed demo workspace with stored articles.

Headless (offscreen), the real model, SQLite and FAISS: the articles are stored as a knowledge sync stores
them (:func:`core.knowledge.store.upsert_articles`) and indexed by the engine's refresh; the panel fills
from the review worker. The system's URL handler is replaced (a test never opens a browser).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from PySide6.QtCore import QUrl
from pytestqt.qtbot import QtBot
from sqlalchemy.orm import sessionmaker

from core.knowledge.records import ArticleState, ArticleValues
from core.knowledge.store import upsert_articles
from core.matching.articles import ArticleMatch
from core.matching.embedding import SentenceTransformerEmbedder
from core.matching.engine import open_engine
from core.store.models import Ticket
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from core.workflow.review import load_review_queue, term_spans
from desktop.background.tasks import TaskRunner
from desktop.context import AppContext
from desktop.pages.review.page import ReviewPage
from desktop.pages.review.rendering import article_html
from desktop.widgets import links
from desktop.widgets.ticket_detail import HIGHLIGHT_STYLE

WAIT_MS = 20_000
BASE = "https://acme.atlassian.net/wiki/spaces/ITOPS/pages"


def kb_article(external_id: str, title: str, body: str, state: ArticleState) -> ArticleValues:
    return ArticleValues(
        external_id=external_id,
        source_system="confluence",
        title=title,
        body=body,
        state=state,
        updated_at=datetime(2026, 12, 1, tzinfo=UTC),
        number=f"PAGE-{external_id}",
        url=f"{BASE}/{external_id}",
        space="IT Operations",
    )


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    urls: list[str] = []

    class FakeDesktopServices:
        @staticmethod
        def openUrl(url: QUrl) -> bool:
            urls.append(url.toString())
            return True

    monkeypatch.setattr(links, "QDesktopServices", FakeDesktopServices)
    return urls


@pytest.fixture
def ticket(analysed_demo: Workspace, embedder: SentenceTransformerEmbedder) -> Ticket:
    """The queue's first ticket, after three articles were synced and indexed: one written for it, one
    unrelated, and a draft of the first (never offered)."""
    sessions: sessionmaker[TenantSession] = analysed_demo.session_factory("default")
    with sessions() as session:
        first = load_review_queue(session)[0]
        row = session.get(Ticket, first.ticket_id)
        assert row is not None
        session.expunge(row)
    body = (
        f"## Symptoms\n\n{row.description}\n\n"
        "## Resolution\n\n1. Check the service on the affected host.\n"
        "2. Restart it and confirm with the user.\n"
    )
    with sessions.begin() as session:
        upsert_articles(
            session,
            [
                kb_article("1001", row.title, body, ArticleState.PUBLISHED),
                kb_article(
                    "1002",
                    "Order a replacement laptop charger",
                    "## Steps\n\n1. Raise a request.\n",
                    ArticleState.PUBLISHED,
                ),
                kb_article("1003", f"{row.title} (draft)", body, ArticleState.DRAFT),
            ],
            instance="acme.atlassian.net",
            connector_config_id=None,
        )
    open_engine(analysed_demo, "default", embedder).refresh()
    return row


@pytest.fixture
def page(
    qtbot: QtBot, analysed_demo: Workspace, embedder: SentenceTransformerEmbedder, ticket: Ticket
) -> Iterator[ReviewPage]:
    runner = TaskRunner()
    context = AppContext(analysed_demo, "default", runner, embedder_factory=lambda: embedder)
    review_page = ReviewPage(context)
    qtbot.addWidget(review_page)
    review_page.resize(1500, 850)
    with qtbot.waitSignal(review_page.queue_loaded, timeout=WAIT_MS):
        review_page.show()
    assert review_page.select_ticket(ticket.id)
    qtbot.waitUntil(
        lambda: review_page._review is not None and review_page._review.ticket.id == ticket.id,
        timeout=WAIT_MS,
    )
    yield review_page
    review_page.stop()
    runner.wait_for_done(WAIT_MS)
    runner.shutdown()


def test_the_knowledge_panel_lists_the_published_articles_for_the_ticket(
    qtbot: QtBot, page: ReviewPage, ticket: Ticket, opened: list[str]
) -> None:
    pane = page.knowledge_pane
    assert pane.isVisibleTo(page)
    # Published only: the draft written for the same ticket is not offered.
    assert [a.number for a in pane.articles] == ["PAGE-1001", "PAGE-1002"]
    best = pane.articles[0]
    assert 0.0 <= best.confidence <= 1.0
    assert best.confidence > pane.articles[1].confidence
    assert best.shared_terms
    assert pane.heading.text() == "<b>Knowledge</b> (2)"

    shown = pane.articles_view.toPlainText()
    assert ticket.title in shown
    assert f"PAGE-1001 · confluence · IT Operations · Confidence {round(best.confidence * 100)} %" in shown
    assert "Open PAGE-1001 in the browser" in shown
    assert "(draft)" not in shown
    # The shared terms are highlighted in the article's best section, as in a runbook match.
    marked = len(term_spans(best.title, best.shared_terms)) + len(
        term_spans(best.section_text, best.shared_terms)
    )
    assert marked > 0
    assert article_html(best).count(f'<span style="{HIGHLIGHT_STYLE}">') == marked
    assert "#ffd54f" in pane.articles_view.toHtml()

    # The link opens the article's page in the browser (the browser's click signal, as a click sends it).
    pane.articles_view.anchorClicked.emit(QUrl(f"{BASE}/1001"))
    assert opened == [f"{BASE}/1001"]


def test_adopt_as_runbook_offers_the_shown_articles_and_names_the_chosen_one(
    qtbot: QtBot, page: ReviewPage
) -> None:
    pane = page.knowledge_pane
    assert pane.adopt_button.isEnabled()
    actions = pane.adopt_menu.actions()
    assert [action.text().split(":")[0] for action in actions] == ["PAGE-1001", "PAGE-1002"]
    with qtbot.waitSignal(pane.adopt_requested, timeout=WAIT_MS) as chosen:
        actions[1].trigger()
    assert chosen.args == [pane.articles[1].article_id]
    pane.show_message("")
    assert not pane.adopt_button.isEnabled() and pane.adopt_menu.actions() == []


def test_an_unsafe_article_link_is_not_rendered() -> None:
    match = ArticleMatch(
        article_id=1,
        number="KB1",
        title="<b>Wiki</b>",
        url="file:///etc/passwd",
        source_system="servicenow_kb",
        space=None,
        state="published",
        confidence=0.5,
        dense_score=0.5,
        shared_terms=(),
        section_name="Steps",
        section_text="<script>x</script>",
    )
    rendered = article_html(match)
    assert "<a " not in rendered
    assert "&lt;b&gt;Wiki&lt;/b&gt;" in rendered
    assert "&lt;script&gt;" in rendered
