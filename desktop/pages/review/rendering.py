"""The review page's rich text: a ticket under review, its similar past tickets, one ranked match.

Everything shown comes from external systems or runbook authors, so it is escaped; the shared terms of the
selected match are highlighted (:func:`desktop.widgets.ticket_detail.highlight_html`).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from core.workflow.review import MatchView, TicketReview
from desktop.pages.review.models import DECISION_LABELS, percent
from desktop.widgets.ticket_detail import highlight_html, pre_html, ticket_detail_html


def ticket_html(review: TicketReview, terms: Sequence[str]) -> str:
    """The ticket with the analysis' verdict among its facts; the description is what the analyst compares
    with the runbook, so the resolution notes (usually empty while it waits for review) are left out."""
    analysis = (
        [("Analysis", f"{DECISION_LABELS[review.analysis_decision]} · {percent(review.analysis_confidence)}")]
        if review.analysis_decision is not None
        else []
    )
    return ticket_detail_html(review.ticket, terms=terms, extra_facts=analysis, resolution_notes=False)


def similar_html(review: TicketReview) -> str:
    if not review.similar:
        return "<p><i>No similar past tickets.</i></p>"
    parts = ["<h3>Similar past tickets</h3>"]
    for similar in review.similar:
        state = "resolved" if similar.resolved else (similar.status or "open")
        parts.append(
            f"<p><b>{html.escape(similar.external_id)}</b> {html.escape(similar.title)} "
            f"<i>({html.escape(state)}, similarity {similar.similarity:.2f})</i>"
        )
        notes = (similar.resolution_notes or "").strip()
        parts.append(pre_html(html.escape(notes)) if notes else "<p><i>No resolution notes.</i></p>")
    return "".join(parts)


def match_html(view: MatchView) -> str:
    terms = view.match.shared_terms
    section = view.match.best_section or "Opening (only words matched)"
    facts = [f"Section: {section}", f"Status: {view.runbook.status.replace('_', ' ')}"]
    if view.runbook.service:
        facts.append(f"Service: {view.runbook.service}")
    return (
        f"<h3>{highlight_html(view.runbook.title, terms)}</h3>"
        f"<p>{html.escape(' · '.join(facts))}</p>"
        f"{pre_html(highlight_html(view.section_text, terms))}"
    )


def signals_text(view: MatchView) -> str:
    match = view.match
    shared = ", ".join(match.shared_terms) if match.shared_terms else "none"
    return (
        f"Semantic {match.dense_score:.2f} · Lexical {match.lexical_score:.2f} · "
        f"Fused {match.fused_score:.2f} · Shared terms: {shared}"
    )
