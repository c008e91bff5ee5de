"""``runbook-desk metrics [--since DATE] [--until DATE] [--bucket day] [--csv FILE]``: the scorecard, the
metrics per bucket and the active alerts, headless (the same queries as the Metrics page).

``--since`` is inclusive and ``--until`` exclusive (ISO 8601; a date without a time is midnight UTC); by
default the last 30 days up to the end of today (UTC). ``--csv`` writes every series, one row per bucket;
``--json`` prints everything as JSON. Reading only: alerts are listed, not evaluated.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from core.analytics.health_alerts import AlertRow, active_alerts
from core.analytics.metrics import (
    METRICS,
    Bucket,
    MetricKind,
    MetricRange,
    MetricSeries,
    MetricsReport,
    compute_metrics,
    export_csv,
    format_change,
    format_value,
)
from core.errors import RunbookDeskError
from core.store.repository import current_actor
from core.store.workspace import Workspace
from desktop.cli.common import EXIT_OK, parse_date

DEFAULT_DAYS = 30


def add_metrics_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    metrics = commands.add_parser(
        "metrics", parents=[common], help="the success-criteria scorecard, metrics per bucket, active alerts"
    )
    metrics.add_argument(
        "--since", metavar="DATE", help="first day (ISO 8601, inclusive; default: 30 days ago)"
    )
    metrics.add_argument("--until", metavar="DATE", help="end (ISO 8601, exclusive; default: end of today)")
    metrics.add_argument(
        "--bucket", choices=[b.value for b in Bucket], default=Bucket.DAY.value, help="default: %(default)s"
    )
    metrics.add_argument(
        "--csv", type=Path, metavar="FILE", help="write every series here, one row per bucket"
    )


def metric_range_from(args: argparse.Namespace, now: datetime | None = None) -> MetricRange:
    now = now or datetime.now(UTC)
    until = (
        parse_date("--until", args.until)
        if args.until
        else datetime.combine(now.date() + timedelta(days=1), time(), tzinfo=UTC)
    )
    since = parse_date("--since", args.since) if args.since else until - timedelta(days=DEFAULT_DAYS)
    try:
        return MetricRange(since, until, Bucket(args.bucket))
    except ValueError as exc:
        raise RunbookDeskError(str(exc)) from exc


def run_metrics_command(args: argparse.Namespace, workspace: Workspace) -> int:
    metric_range = metric_range_from(args)
    sessions = workspace.session_factory(args.tenant)
    with sessions() as session:
        report = compute_metrics(session, metric_range)
        alerts = active_alerts(session)
    if args.csv:
        rows = export_csv(sessions, report, args.csv, actor=current_actor())
    if args.json:
        print(json.dumps(report_json(report, alerts), indent=2, default=str, ensure_ascii=False))
    else:
        print(report_text(report, alerts, args.tenant))
        if args.csv:
            print(f"\nwrote {rows:,} rows to {args.csv}")
    return EXIT_OK


# --- output ---------------------------------------------------------------------------------------------


def _series_json(series: MetricSeries) -> dict[str, Any]:
    return {
        "metric": series.key,
        "title": series.title,
        "group": series.group,
        "kind": series.kind.value,
        "unit": series.unit,
        "overall": series.overall,
        "numerator": series.total_numerator,
        "denominator": series.total_denominator,
        "points": [
            {
                "bucket": point.bucket.isoformat(),
                "value": point.value,
                "numerator": point.numerator,
                "denominator": point.denominator,
            }
            for point in series.points
        ],
    }


def report_json(report: MetricsReport, alerts: tuple[AlertRow, ...]) -> dict[str, Any]:
    metric_range = report.metric_range
    return {
        "range": {
            "since": metric_range.since.isoformat(),
            "until": metric_range.until.isoformat(),
            "bucket": metric_range.bucket.value,
        },
        "scorecard": [asdict(item) | {"status": item.status.value} for item in report.scorecard.items],
        "series": [_series_json(series) for series in report.series],
        "alerts": [asdict(alert) | {"rule": alert.rule.value, "title": alert.title} for alert in alerts],
    }


def _score_value(key: str, value: float | None) -> str:
    if key in ("coverage", "false_positive_rate"):
        return format_value(MetricKind.RATIO, value)
    return format_change(value)


def _summed(series: tuple[MetricSeries, ...], index: int, kind: MetricKind) -> float | None:
    """One column of the per-bucket table: a count summed over its groups (sources, connectors)."""
    if not series:
        return None
    if kind is MetricKind.COUNT:
        return sum(s.points[index].numerator for s in series)
    return series[0].points[index].value


TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (header, metric, group): "*" sums every group of a count
    ("ingested", "tickets_ingested", "*"),
    ("auto-link", "auto_link_rate", ""),
    ("success", "auto_link_success", ""),
    ("false+", "false_positive_rate", ""),
    ("coverage", "coverage", ""),
    ("conf", "average_confidence", ""),
    ("manual", "manual_intervention", ""),
    ("sync fail", "sync_failures", "*"),
    ("MTTR lnk h", "mttr", "linked"),
    ("MTTR unl h", "mttr", "unlinked"),
)


def _cell(report: MetricsReport, metric_key: str, group: str, index: int) -> str:
    definition = next(m for m in METRICS if m.key == metric_key)
    series = report.of(metric_key)
    if group != "*":
        series = tuple(s for s in series if s.group == group)
    value = _summed(series, index, definition.kind)
    if value is None:
        return "-"
    if definition.kind is MetricKind.RATIO:
        return f"{value:.0%}"
    if definition.unit == "confidence":
        return f"{value:.2f}"
    if definition.kind is MetricKind.MEAN:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def report_text(report: MetricsReport, alerts: tuple[AlertRow, ...], tenant: str) -> str:
    metric_range = report.metric_range
    last = metric_range.until - timedelta(microseconds=1)
    lines = [
        f"Metrics of tenant {tenant}: {metric_range.since:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC, "
        f"by {metric_range.bucket.value} (tickets by opened time; ingestion and syncs by their own)",
        "",
        "Scorecard",
    ]
    for item in report.scorecard.items:
        value = _score_value(item.key, item.value)
        lines.append(f"  {item.title:<26} {value:>7}  {item.status.value:<8} {item.detail}")
        lines.append(f"    {item.sentence}")
    lines += ["", "Whole range"]
    for series in report.series:
        value = format_value(series.kind, series.overall, series.unit)
        if series.kind is MetricKind.RATIO:
            value += f" ({series.total_numerator:,.0f} of {series.total_denominator or 0:,})"
        elif series.kind is MetricKind.COUNT:
            value += f" {series.unit}"
        else:
            value += f" (n={series.total_denominator or 0:,})"
        lines.append(f"  {series.label:<44} {value}")
    widths = [max(10, len(header)) for header, _key, _group in TABLE_COLUMNS]
    header = f"  {'bucket':<16}" + "".join(
        f" {h:>{w}}" for (h, _k, _g), w in zip(TABLE_COLUMNS, widths, strict=True)
    )
    lines += ["", "Per " + metric_range.bucket.value, header]
    time_format = "%Y-%m-%d %H:00" if metric_range.bucket is Bucket.HOUR else "%Y-%m-%d"
    for index, start in enumerate(metric_range.bucket_starts()):
        cells = "".join(
            f" {_cell(report, key, group, index):>{width}}"
            for (_h, key, group), width in zip(TABLE_COLUMNS, widths, strict=True)
        )
        lines.append(f"  {start.strftime(time_format):<16}{cells}")
    lines += ["", f"Active alerts ({len(alerts)})" if alerts else "Active alerts: none"]
    for alert in alerts:
        lines.append(f"  {alert.raised_at:%Y-%m-%d %H:%M} UTC  {alert.title}: {alert.message}")
    return "\n".join(lines)
