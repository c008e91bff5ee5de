"""A ticket as rich text, for every pane that shows one (the Tickets page, the review page).

Every value comes from an external system and may contain markup, so everything is escaped; the shared
terms of a match are marked on the escaped text, never by splicing the raw text into markup. The source link
is shown only when the link allow-list (:mod:`desktop.widgets.links`) lets it through.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from core.store.repository import TicketRow
from core.workflow.review import term_spans
from desktop.widgets.links import safe_link
from desktop.widgets.table_models import format_local_datetime, humanize

HIGHLIGHT_STYLE = "background-color: #ffd54f; color: #000000;"

Fact = tuple[str, str | None]


def highlight_html(text: str, terms: Sequence[str]) -> str:
    """``text`` escaped, with the shared terms marked; external text never becomes markup."""
    out: list[str] = []
    position = 0
    for start, end in term_spans(text, terms):
        out.append(html.escape(text[position:start]))
        out.append(f'<span style="{HIGHLIGHT_STYLE}">{html.escape(text[start:end])}</span>')
        position = end
    out.append(html.escape(text[position:]))
    return "".join(out)


def pre_html(inner_html: str) -> str:
    """A paragraph that keeps the text's own line breaks (descriptions and notes are written that way)."""
    return f'<p style="white-space: pre-wrap;">{inner_html}</p>'


def text_block_html(text: str | None, empty: str, terms: Sequence[str] = ()) -> str:
    if not text or not text.strip():
        return f"<p><i>{html.escape(empty)}</i></p>"
    return pre_html(highlight_html(text.strip(), terms))


def ticket_facts(ticket: TicketRow) -> list[Fact]:
    return [
        ("Number", ticket.external_id),
        ("Source", ticket.source_system),
        ("Kind", humanize(ticket.kind)),
        ("Status", ticket.status),
        ("Severity", ticket.severity),
        ("Category", ticket.category),
        ("Configuration item", ticket.configuration_item),
        ("Assignee", ticket.assignee),
        ("Created", format_local_datetime(ticket.created_at) if ticket.created_at else None),
        ("Updated", format_local_datetime(ticket.updated_at) if ticket.updated_at else None),
        ("Resolved", format_local_datetime(ticket.resolved_at) if ticket.resolved_at else None),
    ]


def ticket_detail_html(
    ticket: TicketRow,
    *,
    terms: Sequence[str] = (),
    extra_facts: Sequence[Fact] = (),
    resolution_notes: bool = True,
) -> str:
    """The ticket's title, facts, source link and description (and, unless left out, resolution notes).

    ``terms`` are highlighted in the title and the description; ``extra_facts`` follow the ticket's own
    (the review page adds the analysis' verdict). Empty facts are left out.
    """
    facts = [*ticket_facts(ticket), *extra_facts]
    table_rows = "".join(
        f'<tr><th align="left">{html.escape(label)}</th><td>{html.escape(value)}</td></tr>'
        for label, value in facts
        if value
    )
    link = safe_link(ticket.source_url)
    if link:
        escaped = html.escape(link, quote=True)
        table_rows += f'<tr><th align="left">Link</th><td><a href="{escaped}">{escaped}</a></td></tr>'
    parts = [
        f"<h2>{highlight_html(ticket.title, terms)}</h2>",
        f'<table cellspacing="0" cellpadding="2">{table_rows}</table>',
        f"<h3>Description</h3>{text_block_html(ticket.description, 'No description.', terms)}",
    ]
    if resolution_notes:
        parts.append(
            f"<h3>Resolution notes</h3>{text_block_html(ticket.resolution_notes, 'No resolution notes.')}"
        )
    return "".join(parts)
