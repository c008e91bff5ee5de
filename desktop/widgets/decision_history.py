"""A ticket's decision history as rich text, for the two pages that show it (Review and Tickets).

A widget module rather than part of either page: pages never import each other. Every value is escaped
(runbook titles and reasons are typed by people, actors come from settings).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from core.workflow.history import HistoryEntry
from desktop.widgets.table_models import format_local_datetime

MACHINE_NAME = "Runbook Desk (automatic)"
UNDONE_STYLE = "color: palette(mid); text-decoration: line-through;"


def actor_text(entry: HistoryEntry) -> str:
    return MACHINE_NAME if entry.by_machine else entry.actor


def history_html(entries: Sequence[HistoryEntry], *, heading: str = "Decision history") -> str:
    """A heading and one line per entry, newest first: when, who, what (undone decisions struck through)."""
    if not entries:
        return f"<h3>{html.escape(heading)}</h3><p><i>No decision yet.</i></p>"
    rows = []
    for entry in entries:
        style = f' style="{UNDONE_STYLE}"' if entry.undone else ""
        rows.append(
            "<tr>"
            f"<td>{html.escape(format_local_datetime(entry.at))}</td>"
            f"<td>{html.escape(actor_text(entry))}</td>"
            f"<td{style}>{html.escape(entry.describe())}</td>"
            "</tr>"
        )
    return (
        f"<h3>{html.escape(heading)}</h3>"
        '<table cellspacing="0" cellpadding="2">'
        '<tr><th align="left">When</th><th align="left">Who</th><th align="left">What</th></tr>'
        f"{''.join(rows)}</table>"
    )
