"""The review page's rich text: a ticket under review, its similar past tickets, one ranked match, and the
knowledge articles that match it.

Everything shown comes from external systems or runbook authors, so it is escaped; the shared terms of the
selected match are highlighted (:func:`desktop.widgets.ticket_detail.highlight_html`). A match's
explanation (why this confidence: meaning, words, what similar past tickets decided) is written by
:func:`core.matching.explain.explain_match`; this module only lays it out.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from core.matching.articles import ArticleMatch
from core.matching.explain import explain_match
from core.workflow.review import MatchView, TicketReview
from desktop.pages.review.models import DECISION_LABELS, percent
from desktop.widgets.links import safe_link
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
        f"{explanation_html(view)}"
        f"{pre_html(highlight_html(view.section_text, terms))}"
    )


def explanation_html(view: MatchView) -> str:
    """Why the match has its confidence, one sentence per line (escaped: they quote ticket numbers)."""
    items = "".join(f"<li>{html.escape(sentence)}</li>" for sentence in explain_match(view.match))
    return f"<p><b>Why {round(view.match.confidence * 100)} %</b></p><ul>{items}</ul>"


def _vote_text(vote: float) -> str:
    if vote > 0:
        return f"for (+{vote:.2f})"
    if vote < 0:
        return f"against ({vote:.2f})"
    return "none"


def signals_text(view: MatchView) -> str:
    """The numbers behind the confidence: the pair scores it is calibrated from, and the shared terms."""
    match = view.match
    shared = ", ".join(match.shared_terms) if match.shared_terms else "none"
    return (
        f"Semantic {match.dense_score:.2f} · Lexical {round(match.coverage_score * 100)} % of the ticket's "
        f"words · Title {round(match.title_coverage * 100)} % · Past decisions {_vote_text(match.vote_score)}"
        f" · Shared terms: {shared}"
    )


def article_html(article: ArticleMatch) -> str:
    """One knowledge article: title, number, where it lives, its confidence, the best section with the
    shared terms marked, and a link that opens it in the browser (web links only: see
    :mod:`desktop.widgets.links`)."""
    terms = article.shared_terms
    where = " · ".join(part for part in (article.source_system, article.space) if part)
    facts = [article.number or "", where, f"Confidence {round(article.confidence * 100)} %"]
    if article.state != "published":
        facts.append(article.state or "unknown state")
    section = article.section_name or "Opening (only words matched)"
    url = safe_link(article.url)
    link = (
        f'<p><a href="{html.escape(url, quote=True)}">Open {html.escape(article.number or "article")} '
        "in the browser</a></p>"
        if url
        else ""
    )
    return (
        f"<h4>{highlight_html(article.title, terms)}</h4>"
        f"<p>{html.escape(' · '.join(fact for fact in facts if fact))}</p>"
        f"<p><i>{html.escape(section)}</i></p>"
        f"{pre_html(highlight_html(article.section_text, terms))}"
        f"{link}"
    )


def articles_html(articles: Sequence[ArticleMatch]) -> str:
    """The knowledge panel: the best articles for the ticket, best first."""
    if not articles:
        return "<p><i>No published knowledge article matches this ticket.</i></p>"
    return "<hr/>".join(article_html(article) for article in articles)
