"""The review page's knowledge panel: the published articles (ServiceNow Knowledge, Confluence, ServiceDesk
Plus solutions) that match the ticket, beside its runbooks (issue 14).

Each article shows its title, number, source system and space, its calibrated confidence, the best section
with the terms it shares with the ticket highlighted, and a link that opens it in the browser. The articles
come with the ticket's review (:attr:`core.workflow.review.TicketReview.articles`, found in the review
worker), so showing them never blocks the window; links go through :func:`desktop.widgets.links.open_link`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from core.matching.articles import ArticleMatch
from desktop.pages.review.rendering import articles_html
from desktop.widgets.links import link_safe_browser


class KnowledgePane(QWidget):
    """``articles_view`` (link-safe rich text) under a "Knowledge" heading, with "Adopt as runbook": a menu
    of the shown articles; choosing one emits ``adopt_requested(article_id)`` (the window hands it to the
    Runbooks page, which adopts it as a draft through the normal approval)."""

    adopt_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reviewKnowledgePane")
        self.heading = QLabel("<b>Knowledge</b>", self)
        self.heading.setObjectName("reviewKnowledgeHeading")
        # The heading gives way (clipped) before the button does: the match pane must stay narrow enough for
        # its decision buttons to wrap (desktop/pages/review/match_pane.py).
        self.heading.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.adopt_button = QPushButton("Adopt as runbook", self)
        self.adopt_button.setObjectName("reviewAdoptArticle")
        self.adopt_button.setToolTip(
            "Turn one of these articles into a draft runbook, keeping its source link"
        )
        self.adopt_menu = QMenu(self.adopt_button)
        self.adopt_button.setMenu(self.adopt_menu)
        self.adopt_button.setEnabled(False)
        self.articles_view = link_safe_browser(self, "reviewKnowledge")
        self.articles: tuple[ArticleMatch, ...] = ()
        top = QHBoxLayout()
        top.addWidget(self.heading, 1)
        top.addWidget(self.adopt_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.articles_view, 1)

    def show_articles(self, articles: Sequence[ArticleMatch]) -> None:
        self.articles = tuple(articles)
        count = f" ({len(self.articles)})" if self.articles else ""
        self.heading.setText(f"<b>Knowledge</b>{count}")
        self.articles_view.setHtml(articles_html(self.articles))
        self._fill_adopt_menu()

    def show_message(self, message: str) -> None:
        self.articles = ()
        self.heading.setText("<b>Knowledge</b>")
        self.articles_view.setHtml(f"<p><i>{html.escape(message)}</i></p>" if message else "")
        self._fill_adopt_menu()

    def _fill_adopt_menu(self) -> None:
        self.adopt_menu.clear()
        for article in self.articles:
            label = f"{article.number or 'Article'}: {article.title}"
            action = self.adopt_menu.addAction(label if len(label) <= 90 else label[:89] + "…")
            action.triggered.connect(
                lambda _checked=False, a=article.article_id: self.adopt_requested.emit(a)
            )
        self.adopt_button.setEnabled(bool(self.articles))
