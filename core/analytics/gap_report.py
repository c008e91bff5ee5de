"""The gap report as one self-contained HTML file (inline SVG charts, inline CSS) and as CSV.

The HTML carries no script, font, image or stylesheet from anywhere: it opens offline, can be mailed as an
attachment, and prints (A4/Letter, one gap per block, no block split across pages). Every value that came
from a ticket or a runbook is escaped: ticket text is external input and may contain markup.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import sessionmaker

from core.analytics.gaps import GapCluster, GapReport, trend_words
from core.csv_safety import csv_writer
from core.store.repository import record_audit
from core.store.tenancy import TenantSession

__all__ = [
    "CSV_COLUMNS",
    "EXPORT_KINDS",
    "export_report",
    "pareto_svg",
    "render_csv",
    "render_html",
    "trend_svg",
    "write_csv",
    "write_html",
]

PARETO_MAX_BARS = 15
BAR_COLOUR = "#3b6ea8"
LINE_COLOUR = "#c0392b"
SEVERITY_COLOURS = {
    "critical": "#7b1fa2",
    "high": "#c62828",
    "medium": "#ef6c00",
    "low": "#2e7d32",
    "planning": "#607d8b",
}
OTHER_SEVERITY_COLOUR = "#9e9e9e"

CSV_COLUMNS = (
    "rank",
    "status",
    "key",
    "label",
    "terms",
    "tickets",
    "share_of_uncovered",
    "trend",
    "tickets_per_period",
    "trend_detail",
    "platform",
    "severity_mix",
    "mttr_hours",
    "impact",
    "impact_share",
    "cumulative_impact_share",
    "nearest_runbook",
    "nearest_runbook_confidence",
    "why_not_covered",
    "example_tickets",
    "resolution_notes",
    "candidate_steps",
    "covered_by_article",
)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else "—"


def _last_day(report: GapReport) -> datetime | None:
    """The range's last included day: a query's ``until`` is exclusive (the next midnight)."""
    if report.range_end is not None and report.query.until is not None:
        return report.range_end - timedelta(microseconds=1)
    return report.range_end


def _hours(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 24:.1f} d" if value >= 48 else f"{value:.1f} h"


def pareto_svg(clusters: Sequence[GapCluster], width: int = 760, height: int = 330) -> str:
    """Bars: each gap's impact, highest first; line: cumulative share of the total impact (right axis)."""
    shown = list(clusters[:PARETO_MAX_BARS])
    left, right, top, bottom = 90, 44, 16, 100  # room for the rotated labels under the bars
    plot_w, plot_h = width - left - right, height - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="pareto" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Pareto chart of gap impact">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    if not shown:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-size="13">No gaps</text>'
        )
        parts.append("</svg>")
        return "".join(parts)
    peak = max(c.impact for c in shown) or 1.0
    slot = plot_w / len(shown)
    bar_w = slot * 0.7
    axis = 'stroke="#555" stroke-width="1"'
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" {axis}/>')
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" {axis}/>')
    parts.append(f'<line x1="{left + plot_w}" y1="{top}" x2="{left + plot_w}" y2="{top + plot_h}" {axis}/>')
    for fraction in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - fraction)
        parts.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10">'
            f"{peak * fraction:,.0f}</text>"
        )
    for percent in (0, 50, 80, 100):
        y = top + plot_h * (1 - percent / 100)
        parts.append(
            f'<text x="{left + plot_w + 4}" y="{y + 4:.1f}" font-size="10" fill="{LINE_COLOUR}">'
            f"{percent}%</text>"
        )
    y80 = top + plot_h * 0.2
    parts.append(
        f'<line x1="{left}" y1="{y80:.1f}" x2="{left + plot_w}" y2="{y80:.1f}" stroke="{LINE_COLOUR}" '
        'stroke-width="0.8" stroke-dasharray="4 3" opacity="0.6"/>'
    )
    points = []
    for number, cluster in enumerate(shown):
        x = left + slot * number + (slot - bar_w) / 2
        bar_h = plot_h * cluster.impact / peak
        parts.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - bar_h:.1f}" width="{bar_w:.1f}" height="{bar_h:.1f}" '
            f'fill="{BAR_COLOUR}"><title>#{cluster.rank} {_e(cluster.label)}: impact {cluster.impact:,.0f}'
            "</title></rect>"
        )
        centre = left + slot * number + slot / 2
        label = cluster.label if len(cluster.label) <= 18 else cluster.label[:17] + "…"
        parts.append(
            f'<text x="{centre:.1f}" y="{top + plot_h + 10}" font-size="9" text-anchor="end" '
            f'transform="rotate(-35 {centre:.1f} {top + plot_h + 10})">#{cluster.rank} {_e(label)}</text>'
        )
        points.append(f"{centre:.1f},{top + plot_h * (1 - cluster.cumulative_share):.1f}")
    parts.append(
        f'<polyline points="{" ".join(points)}" fill="none" stroke="{LINE_COLOUR}" stroke-width="2"/>'
    )
    for point in points:
        cx, cy = point.split(",")
        parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{LINE_COLOUR}"/>')
    parts.append(
        f'<text x="{left}" y="{height - 4}" font-size="10" fill="#555">bars: impact (weighted ticket-hours); '
        "line: cumulative share of total impact</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def trend_svg(counts: Sequence[int], width: int = 120, height: int = 28) -> str:
    """A small bar sparkline of tickets per period."""
    peak = max(counts, default=0) or 1
    slot = width / max(len(counts), 1)
    bars = "".join(
        f'<rect x="{n * slot + 1:.1f}" y="{height - height * c / peak:.1f}" width="{slot - 2:.1f}" '
        f'height="{height * c / peak:.1f}" fill="{BAR_COLOUR}"/>'
        for n, c in enumerate(counts)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="tickets per period">{bars}</svg>'
    )


def _severity_svg(mix: Sequence[tuple[str, int]], width: int = 160, height: int = 12) -> str:
    total = sum(n for _, n in mix) or 1
    x = 0.0
    parts = []
    for severity, count in mix:
        w = width * count / total
        colour = SEVERITY_COLOURS.get(severity, OTHER_SEVERITY_COLOUR)
        parts.append(
            f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{height}" fill="{colour}">'
            f"<title>{_e(severity)}: {count}</title></rect>"
        )
        x += w
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="severity mix">{"".join(parts)}</svg>'
    )


CSS = """
body { font-family: "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; color: #1d1d1d; margin: 24px;
       max-width: 1000px; line-height: 1.4; font-size: 14px; }
h1 { font-size: 22px; margin-bottom: 2px; } h2 { font-size: 17px; margin-top: 28px; }
h3 { font-size: 15px; margin: 0 0 6px 0; }
.meta { color: #555; font-size: 12px; }
.figures { display: flex; flex-wrap: wrap; gap: 10px; margin: 14px 0; }
.figure { border: 1px solid #ccc; border-radius: 4px; padding: 6px 10px; min-width: 110px; }
.figure b { display: block; font-size: 18px; }
table { border-collapse: collapse; width: 100%; font-size: 12px; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } td.num { text-align: right; white-space: nowrap; }
.gap { border: 1px solid #ccc; border-radius: 4px; padding: 10px 12px; margin: 12px 0;
       page-break-inside: avoid; break-inside: avoid; }
.terms span { display: inline-block; background: #e8eef6; border-radius: 3px; padding: 0 5px; margin: 1px; }
.why { background: #fff6e5; border-left: 3px solid #ef6c00; padding: 4px 8px; }
.trend-growing { color: #c62828; font-weight: bold; } .trend-fading { color: #2e7d32; }
.legend span { display: inline-block; width: 10px; height: 10px; margin: 0 3px 0 10px; }
ol, ul { margin: 4px 0; padding-left: 22px; }
@media print { body { margin: 0; max-width: none; font-size: 11px; } .gap { border-color: #999; }
               h2 { page-break-after: avoid; } a { color: inherit; text-decoration: none; } }
@page { margin: 14mm; }
"""


def _gap_section(cluster: GapCluster, status: str = "") -> str:
    runbook = cluster.nearest_runbook
    runbook_html = (
        f"<p><b>Nearest runbook:</b> {_e(runbook.title)} (confidence {runbook.confidence:.0%}, "
        f"first choice for {runbook.share:.0%} of these tickets)</p>"
        f'<p class="why">Why it does not cover them: {_e(runbook.reason)}</p>'
        if runbook
        else "<p><b>Nearest runbook:</b> none ranked.</p>"
    )
    article = cluster.covering_article
    if article is not None:  # issue 14: the procedure exists as a knowledge article
        link = f"<a href='{_e(article.url)}'>{_e(article.number or article.title)}</a>" if article.url else ""
        words = article.words[:1].upper() + article.words[1:]
        runbook_html = (
            f"<p><b>{_e(words)}</b> {link} (confidence {article.confidence:.0%} for "
            f"{article.share:.0%} of the central tickets; ranked as the cheaper fix)</p>" + runbook_html
        )
    tickets = "".join(
        f"<li>{_e(t.external_id)} — {_e(t.title)} <span class='meta'>({_e(t.severity or 'no severity')}, "
        f"{_date(t.created_at)}, similarity {t.similarity:.2f})</span></li>"
        for t in cluster.central_tickets
    )
    notes = "".join(
        f"<li>{_e(n.text)} <span class='meta'>({_e(n.source_ticket)}"
        + (f", {n.count} tickets" if n.count > 1 else "")
        + ")</span></li>"
        for n in cluster.resolution_notes
    )
    steps = "".join(
        f"<li>{_e(n.text)} <span class='meta'>({_e(n.source_ticket)})</span></li>" for n in cluster.steps
    )
    severity = ", ".join(f"{_e(s)} {n}" for s, n in cluster.severity_mix)
    heading = f"#{cluster.rank} " if cluster.rank else ""
    return (
        f'<section class="gap" id="{_e(cluster.key)}"><h3>{heading}{_e(cluster.label)}{status}</h3>'
        f'<p class="terms">{"".join(f"<span>{_e(t)}</span>" for t in cluster.terms)}</p>'
        f"<table><tr><th>Tickets</th><th>Share</th><th>Trend</th><th>Severity</th><th>MTTR</th><th>Impact</th>"
        f"</tr><tr><td class='num'>{cluster.size}</td><td class='num'>{cluster.share:.0%}</td>"
        f"<td><span class='trend-{cluster.trend.value}'>{cluster.trend.value}</span><br>"
        f"{trend_svg(cluster.trend_counts)}</td><td>{_severity_svg(cluster.severity_mix)}<br>{severity}</td>"
        f"<td class='num'>{_hours(cluster.mttr_hours)}"
        f"{'' if cluster.mttr_hours is not None else ' (none resolved)'}</td>"
        f"<td class='num'>{cluster.impact:,.0f}<br>"
        f"<span class='meta'>{cluster.impact_share:.0%} of total</span>"
        f"</td></tr></table>"
        f"<p class='meta'>Trend: {_e(trend_words(cluster))}"
        + (f" · Platform: {_e(cluster.platform.value)}" if cluster.platform else "")
        + "</p>"
        f"<p><b>Most typical tickets</b></p><ol>{tickets}</ol>"
        + (
            f"<p><b>How they were resolved</b></p><ul>{notes}</ul>"
            if notes
            else "<p><i>No resolution notes.</i></p>"
        )
        + (f"<p><b>Candidate steps for a runbook</b></p><ol>{steps}</ol>" if steps else "")
        + runbook_html
        + "</section>"
    )


def render_html(report: GapReport) -> str:
    query = report.query
    filters = [
        f"from {_date(report.range_start)} to {_date(_last_day(report))}",
        *(["sources: " + ", ".join(sorted(query.source_systems))] if query.source_systems else []),
        *(["kinds: " + ", ".join(sorted(query.kinds))] if query.kinds else []),
        *(["categories: " + ", ".join(sorted(query.categories))] if query.categories else []),
    ]
    weights = ", ".join(f"{k} {v:g}" for k, v in report.settings.severity_weights.items())
    figures = [
        ("Tickets in range", f"{report.in_range:,}"),
        ("Covered", f"{report.covered:,}"),
        ("Uncovered", f"{report.uncovered:,}"),
        ("Gaps", f"{len(report.clusters):,}"),
        ("In no gap (noise)", f"{report.noise:,}"),
        ("Not analysed", f"{report.not_analysed:,}"),
    ]
    figure_html = "".join(f"<div class=figure>{_e(n)}<b>{v}</b></div>" for n, v in figures)
    rows = "".join(
        f"<tr><td class='num'>{c.rank}</td><td><a href='#{_e(c.key)}'>{_e(c.label)}</a></td>"
        f"<td class='num'>{c.size}</td><td>{c.trend.value}</td><td class='num'>{_hours(c.mttr_hours)}</td>"
        f"<td class='num'>{c.impact:,.0f}</td><td class='num'>{c.cumulative_share:.0%}</td>"
        f"<td>{_e(c.nearest_runbook.title) if c.nearest_runbook else '—'}</td></tr>"
        for c in report.clusters
    )
    legend = "".join(
        f'<span style="background:{colour}"></span>{_e(name)}' for name, colour in SEVERITY_COLOURS.items()
    )
    dismissed = "".join(
        _gap_section(
            d.cluster,
            f" <span class='meta'>— dismissed as not a gap by {_e(d.dismissed_by)} on {_date(d.dismissed_at)}"
            + (f": {_e(d.reason)}" if d.reason else "")
            + "</span>",
        )
        for d in report.dismissed
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>Runbook gaps {_date(report.range_start)} – {_date(_last_day(report))}</title>"
        f"<style>{CSS}</style></head><body>"
        f"<h1>Runbook coverage gaps</h1><p class='meta'>{_e('; '.join(filters))}. Generated "
        f"{report.generated_at:%Y-%m-%d %H:%M} UTC by Runbook Desk, offline.</p>"
        f"<div class='figures'>{figure_html}</div>"
        "<p>A ticket is <i>uncovered</i> when no runbook is linked to it (by an analyst or automatically) "
        "and "
        f"its best runbook confidence is below the review threshold ({report.review_threshold:.0%}). "
        f"Uncovered tickets are grouped by meaning: {_e(report.method)}. Impact = tickets × mean severity "
        f"weight ({_e(weights)}) × mean hours to resolve (the average over all uncovered tickets when a gap "
        "has none resolved).</p>"
        f"<h2>Top gaps (Pareto)</h2>{pareto_svg(report.clusters)}"
        f"<h2>Ranked gaps</h2><table><tr><th>#</th><th>Gap</th><th>Tickets</th><th>Trend</th><th>MTTR</th>"
        f"<th>Impact</th><th>Cumulative</th><th>Nearest runbook</th></tr>{rows}</table>"
        f"<p class='legend meta'>Severity colours:{legend}</p>"
        f"<h2>Gap details</h2>{''.join(_gap_section(c) for c in report.clusters) or '<p>No gaps found.</p>'}"
        + (f"<h2>Dismissed (not a gap)</h2>{dismissed}" if dismissed else "")
        + "</body></html>\n"
    )


def _csv_row(cluster: GapCluster, status: str) -> list[object]:
    runbook = cluster.nearest_runbook
    return [
        cluster.rank or "",
        status,
        cluster.key,
        cluster.label,
        "; ".join(cluster.terms),
        cluster.size,
        f"{cluster.share:.4f}",
        cluster.trend.value,
        " ".join(str(c) for c in cluster.trend_counts),
        trend_words(cluster),
        cluster.platform.value if cluster.platform else "",
        "; ".join(f"{s}={n}" for s, n in cluster.severity_mix),
        f"{cluster.mttr_hours:.2f}" if cluster.mttr_hours is not None else "",
        f"{cluster.impact:.2f}",
        f"{cluster.impact_share:.4f}",
        f"{cluster.cumulative_share:.4f}",
        runbook.title if runbook else "",
        f"{runbook.confidence:.4f}" if runbook else "",
        runbook.reason if runbook else "",
        "; ".join(t.external_id for t in cluster.central_tickets),
        " | ".join(f"{n.text} ({n.source_ticket})" for n in cluster.resolution_notes),
        " | ".join(f"{n.text} ({n.source_ticket})" for n in cluster.steps),
        cluster.covering_article.words if cluster.covering_article else "",
    ]


def render_csv(report: GapReport) -> str:
    """One row per gap, ranked ones first, then dismissed ones; UTF-8 text with a header row. Ticket text
    cannot hold a live formula (:mod:`core.csv_safety`)."""
    buffer = io.StringIO()
    writer = csv_writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for cluster in report.clusters:
        writer.writerow(_csv_row(cluster, "gap"))
    for dismissed in report.dismissed:
        writer.writerow(_csv_row(dismissed.cluster, "dismissed"))
    return buffer.getvalue()


EXPORT_KINDS = ("csv", "html")


def export_report(
    sessions: sessionmaker[TenantSession], report: GapReport, path: Path, kind: str, *, actor: str
) -> Path:
    """Write the report as ``kind`` ("html" or "csv") and audit the export: a file of ticket text left the
    app, and the trail says who wrote which range where. Nothing is audited when the write fails."""
    if kind not in EXPORT_KINDS:
        raise ValueError(f"gap report kind {kind!r}: expected one of {', '.join(EXPORT_KINDS)}")
    (write_html if kind == "html" else write_csv)(report, path)
    query = report.query
    with sessions.begin() as session:
        record_audit(
            session,
            actor=actor,
            action=f"export.gaps_{kind}",
            entity_type="report",
            entity_id=None,
            after={
                "path": str(Path(path).absolute()),
                "gaps": len(report.clusters),
                "dismissed": len(report.dismissed),
                "tickets": report.in_range,
                "since": query.since.isoformat() if query.since else None,
                "until": query.until.isoformat() if query.until else None,
                "filters": {
                    "source_systems": sorted(query.source_systems),
                    "kinds": sorted(k.value for k in query.kinds),
                    "categories": sorted(query.categories),
                },
            },
        )
    return path


def write_html(report: GapReport, path: Path) -> None:
    path.write_text(render_html(report), encoding="utf-8")


def write_csv(report: GapReport, path: Path) -> None:
    # BOM: Excel opens a BOM-less UTF-8 CSV as the local code page and garbles non-ASCII ticket text.
    path.write_text(render_csv(report), encoding="utf-8-sig", newline="")
