"""The middle of the review page: the ticket under review and its decision history, above its similar past
tickets. The history (who decided what, when, about which runbook; undone decisions struck through) is what
lets an analyst reviewing a decided ticket see how it got there. Under the ticket, where its approved runbook
stands in the ticket's own system (:class:`~desktop.widgets.writeback_status.WritebackStatusWidget`:
posted, posting, or failed with Retry), for a ticket whose connector writes back."""

from __future__ import annotations

import html
from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

from core.workflow.review import TicketReview
from desktop.pages.review.rendering import similar_html, ticket_html
from desktop.widgets.decision_history import history_html
from desktop.widgets.links import link_safe_browser


class TicketPane(QSplitter):
    def __init__(self, parent: QWidget | None = None, *, footer: QWidget | None = None) -> None:
        """``footer``: shown under the ticket (the write-back status), hidden while it has nothing to say."""
        super().__init__(Qt.Orientation.Vertical, parent)
        self.setObjectName("reviewTicketSplitter")
        self.setChildrenCollapsible(False)
        self.ticket_view = link_safe_browser(self, "reviewTicket")
        self.similar_view = link_safe_browser(self, "reviewSimilar")
        top = QWidget(self)
        layout = QVBoxLayout(top)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.ticket_view, 1)
        if footer is not None:
            layout.addWidget(footer)
        self.addWidget(top)
        self.addWidget(self.similar_view)
        self.setStretchFactor(0, 3)
        self.setStretchFactor(1, 2)

    def show_loading(self, title: str) -> None:
        """A ticket was selected; its matches are still being found (the model may be loading)."""
        self.ticket_view.setHtml(f"<h2>{html.escape(title)}</h2><p><i>Finding the matching runbooks…</i></p>")
        self.similar_view.clear()

    def show_review(self, review: TicketReview, terms: Sequence[str]) -> None:
        """The ticket with ``terms`` (the selected match's shared terms) highlighted, then its history."""
        self.ticket_view.setHtml(ticket_html(review, terms) + history_html(review.history))

    def show_similar(self, review: TicketReview) -> None:
        self.similar_view.setHtml(similar_html(review))

    def show_message(self, message: str) -> None:
        self.ticket_view.setHtml(f"<p><i>{html.escape(message)}</i></p>")
        self.similar_view.clear()
