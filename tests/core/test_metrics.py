"""Each metric on a small hand-built store, against values worked out by hand (the table below).

Tickets of the default tenant (D = opened time; "auto" = linked_automatically):

====  ================  ==========  =================  ==============================  ==================
id    opened (created)  source      ingested           latest analysis / links          resolved
====  ================  ==========  =================  ==============================  ==================
T1    Mon 06-01 09:00   servicenow  06-01 10:00        link 0.80; auto R1 confirmed     +4 h
T2    Mon 06-01 11:00   servicenow  06-01 12:00        link 0.90; auto R1 reverted,     +24 h
                                                       R2 linked by the analyst
T3    Tue 06-02 08:00   jira        06-02 09:00        review 0.60; R1 suggested        +20 h
T4    Tue 06-02 15:00   jira        06-09 09:00        draft 0.30; no link              before created (bad)
T9    Tue 06-02 12:00   servicenow  06-02 12:30        link 0.85; auto R2 confirmed     -
T5    Tue 06-09 10:00   servicenow  06-09 11:00        0.40 then link 0.75; auto R1     +2 h
                                                       unreviewed
T6    (none) 06-07 23:59:59 Sun  csv  same             not analysed                    -
T7    Sun 05-31 23:00   servicenow  06-01 00:30        link 0.95; auto R1               +6 h (previous period)
====  ================  ==========  =================  ==============================  ==================

Another tenant holds a ticket, analysis, link and failed sync run that must never be counted.
Range: [2026-06-01, 2026-06-15), days (14 buckets) or weeks (06-01, 06-08).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.analytics.metrics import (
    Bucket,
    GoalStatus,
    MetricRange,
    MetricSeries,
    auto_link_rate,
    auto_link_success,
    average_confidence,
    bucket_start,
    compute_metrics,
    coverage,
    export_csv,
    false_positive_rate,
    format_change,
    format_value,
    manual_intervention,
    mttr,
    sync_failures,
    tickets_ingested,
    write_csv,
)
from core.store.models import (
    Analysis,
    AnalysisDecision,
    ConnectorConfig,
    LinkDecision,
    Runbook,
    RunbookStatus,
    SyncRun,
    SyncStatus,
    Ticket,
    TicketRunbookLink,
)
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace

JUNE = datetime(2026, 6, 1, tzinfo=UTC)
DAYS = MetricRange(JUNE, JUNE + timedelta(days=14), Bucket.DAY)
WEEKS = MetricRange(JUNE, JUNE + timedelta(days=14), Bucket.WEEK)


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0, month: int = 6) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


def ticket(
    external_id: str,
    source: str,
    created: datetime | None,
    ingested: datetime,
    resolved: datetime | None = None,
) -> Ticket:
    return Ticket(
        external_id=external_id,
        source_system=source,
        title=external_id,
        content_hash=external_id,
        created_at=created,
        updated_at=created,
        ingested_at=ingested,
        resolved_at=resolved,
    )


def _add(session: TenantSession, rows: list[object]) -> None:
    session.add_all(rows)
    session.flush()


@pytest.fixture
def store(workspace: Workspace) -> sessionmaker[TenantSession]:
    return build_metrics_store(workspace)


def build_metrics_store(workspace: Workspace) -> sessionmaker[TenantSession]:
    """The store of the module docstring (the Metrics page's tests use it too)."""
    sessions = workspace.session_factory("default")
    with sessions.begin() as session:
        r1 = Runbook(title="R1", status=RunbookStatus.APPROVED)
        r2 = Runbook(title="R2", status=RunbookStatus.APPROVED)
        t1 = ticket("T1", "servicenow", at(1, 9), at(1, 10), at(1, 13))
        t2 = ticket("T2", "servicenow", at(1, 11), at(1, 12), at(2, 11))
        t3 = ticket("T3", "jira", at(2, 8), at(2, 9), at(3, 4))
        t4 = ticket("T4", "jira", at(2, 15), at(9, 9), at(2, 14))
        t9 = ticket("T9", "servicenow", at(2, 12), at(2, 12, 30))
        t5 = ticket("T5", "servicenow", at(9, 10), at(9, 11), at(9, 12))
        t6 = ticket("T6", "csv", None, at(7, 23, 59, 59))
        t7 = ticket("T7", "servicenow", at(31, 23, month=5), at(1, 0, 30), at(1, 5))
        _add(session, [r1, r2, t1, t2, t3, t4, t9, t5, t6, t7])
        _add(
            session,
            [
                _analysis(t1, AnalysisDecision.LINK_RUNBOOK, 0.80),
                _analysis(t2, AnalysisDecision.LINK_RUNBOOK, 0.90),
                _analysis(t3, AnalysisDecision.FLAG_REVIEW, 0.60),
                _analysis(t4, AnalysisDecision.GENERATE_RUNBOOK, 0.30),
                _analysis(t9, AnalysisDecision.LINK_RUNBOOK, 0.85),
                _analysis(t5, AnalysisDecision.GENERATE_RUNBOOK, 0.40),
                _analysis(t7, AnalysisDecision.LINK_RUNBOOK, 0.95),
            ],
        )
        _add(session, [_analysis(t5, AnalysisDecision.LINK_RUNBOOK, 0.75)])  # T5's latest
        _add(
            session,
            [
                _link(t1, r1, LinkDecision.LINKED, auto=True, reviewed=at(3)),
                _link(t2, r1, LinkDecision.REJECTED, auto=True, reviewed=at(3)),
                _link(t2, r2, LinkDecision.LINKED, reviewed=at(3)),
                _link(t3, r1, LinkDecision.SUGGESTED),
                _link(t9, r2, LinkDecision.LINKED, auto=True, reviewed=at(4)),
                _link(t5, r1, LinkDecision.LINKED, auto=True),
                _link(t7, r1, LinkDecision.LINKED, auto=True),
            ],
        )
        prod = ConnectorConfig(connector_type="servicenow", name="prod-sn")
        jira = ConnectorConfig(connector_type="jira", name="jira-cloud")
        _add(session, [prod, jira])
        _add(
            session,
            [
                _run(prod, at(1, 10), SyncStatus.FAILED),
                _run(prod, at(1, 11), SyncStatus.FAILED),
                _run(prod, at(2, 10), SyncStatus.SUCCEEDED),
                _run(prod, at(9, 10), SyncStatus.FAILED),
                _run(prod, at(30, 10, month=5), SyncStatus.FAILED),  # before the range
                _run(jira, at(2, 10), SyncStatus.SUCCEEDED),
            ],
        )
    workspace.ensure_tenant("other")
    with workspace.session_factory("other").begin() as session:
        r9 = Runbook(title="other runbook", status=RunbookStatus.APPROVED)
        t8 = ticket("T8", "servicenow", at(1, 9), at(1, 9), at(1, 10))
        other_config = ConnectorConfig(connector_type="servicenow", name="prod-sn")
        _add(session, [r9, t8, other_config])
        _add(
            session,
            [
                _analysis(t8, AnalysisDecision.LINK_RUNBOOK, 0.10),
                _link(t8, r9, LinkDecision.REJECTED, auto=True, reviewed=at(2)),
                _run(other_config, at(1, 9), SyncStatus.FAILED),
            ],
        )
    return sessions


def _analysis(t: Ticket, decision: AnalysisDecision, confidence: float) -> Analysis:
    return Analysis(
        ticket_id=t.id,
        decision=decision,
        confidence=confidence,
        model_id="m",
        threshold_existing=0.7,
        threshold_partial=0.5,
        ticket_content_hash=t.content_hash,
    )


def _link(
    t: Ticket, r: Runbook, decision: LinkDecision, *, auto: bool = False, reviewed: datetime | None = None
) -> TicketRunbookLink:
    return TicketRunbookLink(
        ticket_id=t.id,
        runbook_id=r.id,
        decision=decision,
        linked_automatically=auto,
        reviewed_at=reviewed,
        reviewed_by="ana" if reviewed else None,
    )


def _run(config: ConnectorConfig, started: datetime, status: SyncStatus) -> SyncRun:
    return SyncRun(connector_config_id=config.id, started_at=started, finished_at=started, status=status)


def values(series: MetricSeries) -> dict[str, float | None]:
    """Non-empty buckets only, as {"06-01": value}: the hand-computed tables read best that way."""
    return {
        point.bucket.strftime("%m-%d"): (None if point.value is None else round(point.value, 4))
        for point in series.points
        if point.denominator or point.numerator
    }


def only(series: tuple[MetricSeries, ...]) -> MetricSeries:
    assert len(series) == 1
    return series[0]


def by_group(series: tuple[MetricSeries, ...]) -> dict[str, MetricSeries]:
    return {s.group: s for s in series}


# --- buckets and ranges -----------------------------------------------------------------------------------


def test_buckets_cover_the_range_and_weeks_start_on_monday() -> None:
    assert len(DAYS.bucket_starts()) == 14
    assert WEEKS.bucket_starts() == (at(1), at(8))
    assert bucket_start(at(7, 23, 59, 59), Bucket.WEEK) == at(1)  # a Sunday belongs to the week before
    assert bucket_start(at(8), Bucket.WEEK) == at(8)
    assert bucket_start(at(3, 17, 42), Bucket.HOUR) == at(3, 17)
    mid_week = MetricRange(at(3, 12), at(10), Bucket.WEEK)
    assert mid_week.bucket_starts() == (at(1), at(8))  # the first bucket starts before the range
    assert DAYS.previous() == MetricRange(at(18, month=5), JUNE, Bucket.DAY)


def test_a_range_must_be_forward_and_chartable() -> None:
    with pytest.raises(ValueError, match="end after it starts"):
        MetricRange(JUNE, JUNE, Bucket.DAY)
    with pytest.raises(ValueError, match="too many"):
        MetricRange(JUNE, JUNE + timedelta(days=3650), Bucket.HOUR)
    naive = MetricRange(datetime(2026, 6, 1), datetime(2026, 6, 2))  # naive is UTC
    assert naive.since == JUNE


# --- each metric, one query each ------------------------------------------------------------------------


def test_tickets_ingested_per_source(store: sessionmaker[TenantSession]) -> None:
    with store() as session:
        daily = by_group(tickets_ingested(session, DAYS))
        weekly = by_group(tickets_ingested(session, WEEKS))
        hourly = by_group(tickets_ingested(session, MetricRange(JUNE, at(2), Bucket.HOUR)))
    assert sorted(daily) == ["csv", "jira", "servicenow"]
    # T7 was opened in May but ingested on 06-01 00:30: ingestion counts it.
    assert values(daily["servicenow"]) == {"06-01": 3, "06-02": 1, "06-09": 1}
    assert values(daily["jira"]) == {"06-02": 1, "06-09": 1}
    assert values(daily["csv"]) == {"06-07": 1}
    assert [p.value for p in weekly["servicenow"].points] == [4, 1]
    assert [p.value for p in weekly["jira"].points] == [1, 1]
    assert [p.value for p in weekly["csv"].points] == [1, 0]  # Sunday 23:59:59 is still week one
    assert sum(s.total_numerator for s in daily.values()) == 8
    assert len(hourly["servicenow"].points) == 24
    assert values(hourly["servicenow"]) == {"06-01": 1}  # three hours of that day, one ticket each
    assert [p.bucket.hour for p in hourly["servicenow"].points if p.value] == [0, 10, 12]
    assert daily["servicenow"].points[2].value == 0  # an empty bucket of a count is 0, not "no data"


def test_auto_link_rate(store: sessionmaker[TenantSession]) -> None:
    with store() as session:
        daily = only(auto_link_rate(session, DAYS))
        weekly = only(auto_link_rate(session, WEEKS))
    # Analysed tickets with an automatic link (T2's, reverted, still was one) / analysed tickets; T6 is not
    # analysed, T7 is outside the range.
    assert values(daily) == {"06-01": 1.0, "06-02": 0.3333, "06-09": 1.0}
    assert daily.points[3].value is None  # no analysed ticket opened on 06-04: no data, not 0 %
    assert [p.value for p in weekly.points] == [0.6, 1.0]
    assert (daily.total_numerator, daily.total_denominator) == (4, 6)
    assert daily.overall == pytest.approx(4 / 6)


def test_auto_link_success_and_false_positive_rate(store: sessionmaker[TenantSession]) -> None:
    with store() as session:
        success = only(auto_link_success(session, DAYS))
        false_positive = only(false_positive_rate(session, DAYS))
        weekly_fp = only(false_positive_rate(session, WEEKS))
    # Reviewed automatic links: T1 confirmed, T2 reverted (06-01), T9 confirmed (06-02); T5's is unreviewed.
    assert values(success) == {"06-01": 0.5, "06-02": 1.0}
    assert values(false_positive) == {"06-01": 0.5, "06-02": 0.0}
    assert success.overall == pytest.approx(2 / 3)
    assert false_positive.overall == pytest.approx(1 / 3)
    assert (false_positive.total_numerator, false_positive.total_denominator) == (1, 3)
    assert [p.value for p in weekly_fp.points] == [pytest.approx(1 / 3), None]


def test_coverage(store: sessionmaker[TenantSession]) -> None:
    with store() as session:
        daily = only(coverage(session, DAYS))
        weekly = only(coverage(session, WEEKS))
    # Linked: T1, T2 (by the analyst), T9, T5 (automatic, unreviewed). Not: T3 (suggested), T4, T6.
    assert values(daily) == {"06-01": 1.0, "06-02": 0.3333, "06-07": 0.0, "06-09": 1.0}
    assert [p.value for p in weekly.points] == [0.5, 1.0]
    assert (daily.total_numerator, daily.total_denominator) == (4, 7)


def test_average_confidence_uses_each_tickets_latest_analysis(store: sessionmaker[TenantSession]) -> None:
    with store() as session:
        daily = only(average_confidence(session, DAYS))
    # 06-02: (0.60 + 0.30 + 0.85) / 3; 06-09: T5's latest 0.75, not its first 0.40.
    assert values(daily) == {"06-01": 0.85, "06-02": 0.5833, "06-09": 0.75}
    assert daily.overall == pytest.approx(4.2 / 6)


def test_manual_intervention_rate(store: sessionmaker[TenantSession]) -> None:
    with store() as session:
        daily = only(manual_intervention(session, DAYS))
    # Analysed, no standing automatic link: T2 (reverted), T3 (review), T4 (draft). Not: T1, T9, T5.
    assert values(daily) == {"06-01": 0.5, "06-02": 0.6667, "06-09": 0.0}
    assert (daily.total_numerator, daily.total_denominator) == (3, 6)


def test_sync_failures_per_connector(store: sessionmaker[TenantSession]) -> None:
    with store() as session:
        daily = by_group(sync_failures(session, DAYS))
        weekly = by_group(sync_failures(session, WEEKS))
    assert sorted(daily) == ["jira-cloud", "prod-sn"]
    assert values(daily["prod-sn"]) == {"06-01": 2, "06-02": 0, "06-09": 1}
    assert [(p.numerator, p.denominator) for p in daily["prod-sn"].points[:3]] == [(2, 2), (0, 1), (0, 0)]
    assert daily["jira-cloud"].total_numerator == 0
    assert [p.value for p in weekly["prod-sn"].points] == [2, 1]


def test_a_removed_connectors_failures_stay_in_the_history_under_its_name(
    store: sessionmaker[TenantSession],
) -> None:
    """Removing a connector keeps its sync runs (issue 18): the metric still counts them, by their name."""
    with store.begin() as session:
        config = session.scalars(select(ConnectorConfig).where(ConnectorConfig.name == "prod-sn")).one()
        for run in session.scalars(select(SyncRun).where(SyncRun.connector_config_id == config.id)):
            run.connector_name = config.name
            run.connector_config_id = None
        session.delete(config)
    with store() as session:
        daily = by_group(sync_failures(session, DAYS))
    assert values(daily["prod-sn"]) == {"06-01": 2, "06-02": 0, "06-09": 1}


def test_mttr_of_linked_and_unlinked_tickets(store: sessionmaker[TenantSession]) -> None:
    with store() as session:
        daily = by_group(mttr(session, DAYS))
        weekly = by_group(mttr(session, WEEKS))
        previous = by_group(mttr(session, DAYS.previous()))
    # Linked: T1 4 h, T2 24 h (06-01), T5 2 h (06-09). Unlinked: T3 20 h. T4 resolved before it was created:
    # left out. T6 has no created time.
    assert values(daily["linked"]) == {"06-01": 14.0, "06-09": 2.0}
    assert values(daily["unlinked"]) == {"06-02": 20.0}
    assert daily["linked"].overall == pytest.approx(10.0)
    assert daily["unlinked"].overall == pytest.approx(20.0)
    assert [p.value for p in weekly["linked"].points] == [pytest.approx(14.0), pytest.approx(2.0)]
    assert previous["linked"].overall == pytest.approx(6.0)  # T7, opened in May
    assert previous["unlinked"].overall is None


def test_the_other_tenant_is_never_counted(store: sessionmaker[TenantSession], workspace: Workspace) -> None:
    with workspace.session_factory("other")() as session:
        report = compute_metrics(session, DAYS)
    assert only(report.of("coverage")).total_denominator == 1
    assert only(report.of("false_positive_rate")).overall == 1.0
    assert by_group(report.of("sync_failures"))["prod-sn"].total_numerator == 1


# --- scorecard, report, CSV -----------------------------------------------------------------------------


def test_scorecard(store: sessionmaker[TenantSession]) -> None:
    with store() as session:
        card = compute_metrics(session, DAYS).scorecard
    cover = card.item("coverage")
    assert (cover.value, cover.status) == (pytest.approx(4 / 7), GoalStatus.MISSED)
    assert cover.detail == "4 of 7 tickets linked"
    assert (cover.goal, cover.sentence) == ("at least 70 %", "Coverage 57.1 % — below the 70 % goal.")
    fp = card.item("false_positive_rate")
    assert (fp.value, fp.status) == (pytest.approx(1 / 3), GoalStatus.MISSED)
    assert fp.detail == "1 of 3 reviewed auto-links reverted"
    assert fp.sentence == "False-positive rate 33.3 % — over the 10 % limit; goal: under 10 %."
    by_link = card.item("mttr_linked_vs_unlinked")
    assert (by_link.value, by_link.status) == (pytest.approx(-0.5), GoalStatus.MET)  # (10 - 20) / 20
    assert by_link.detail == "linked 10.0 h (n=3) vs unlinked 20.0 h (n=1)"
    assert by_link.sentence == (
        "Tickets with a runbook are resolved 50 % faster than those without; goal: faster."
    )
    over_time = card.item("mttr_vs_previous")
    # All resolved this period: (4 + 24 + 20 + 2) / 4 = 12.5 h; the 14 days before: T7, 6 h.
    assert over_time.value == pytest.approx((12.5 - 6) / 6)
    assert over_time.status is GoalStatus.MISSED
    assert over_time.detail == "12.5 h (n=4) vs 6.0 h (n=1) in the period before"
    assert over_time.sentence == (
        "Tickets are resolved 108 % slower than in the period before, of the same length; goal: faster."
    )


def test_an_empty_store_has_no_data_not_zero(workspace: Workspace) -> None:
    with workspace.session_factory()() as session:
        report = compute_metrics(session, WEEKS)
    assert {item.status for item in report.scorecard.items} == {GoalStatus.NO_DATA}
    assert [item.sentence for item in report.scorecard.items] == [
        "No tickets in this range yet, so coverage cannot be measured.",
        "No automatic link has been reviewed yet, so the false-positive rate is not known.",
        "Not enough resolved tickets yet to compare those with a runbook and those without.",
        "No ticket was resolved in this range yet, so there is nothing to compare.",
    ]
    assert only(report.of("coverage")).points[0].value is None
    assert only(report.of("tickets_ingested")).points[0].value == 0
    assert {s.group for s in report.of("mttr")} == {"linked", "unlinked"}


def test_csv_export_holds_every_series_and_bucket(store: sessionmaker[TenantSession], tmp_path: Path) -> None:
    with store() as session:
        report = compute_metrics(session, WEEKS)
    path = tmp_path / "metrics.csv"
    written = export_csv(store, report, path, actor="ana")
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert written == len(rows) == sum(len(s.points) for s in report.series)
    assert {row["metric"] for row in rows} == {
        "tickets_ingested",
        "auto_link_rate",
        "auto_link_success",
        "false_positive_rate",
        "coverage",
        "average_confidence",
        "manual_intervention",
        "sync_failures",
        "mttr",
    }
    coverage_rows = [row for row in rows if row["metric"] == "coverage"]
    assert coverage_rows == [
        {
            "metric": "coverage",
            "group": "",
            "bucket_start_utc": "2026-06-01T00:00:00Z",
            "value": "0.5",
            "numerator": "3.0",
            "denominator": "6",
            "unit": "share",
        },
        {
            "metric": "coverage",
            "group": "",
            "bucket_start_utc": "2026-06-08T00:00:00Z",
            "value": "1.0",
            "numerator": "1.0",
            "denominator": "1",
            "unit": "share",
        },
    ]
    mttr_row = next(r for r in rows if r["metric"] == "mttr" and r["group"] == "linked")
    assert (mttr_row["value"], mttr_row["unit"]) == ("14.0", "hours")
    buffer = io.StringIO()
    write_csv(report, buffer)
    assert buffer.getvalue() == path.read_text(encoding="utf-8")


def test_value_formatting() -> None:
    from core.analytics.metrics import MetricKind

    assert format_value(MetricKind.RATIO, 0.5714) == "57.1%"
    assert format_value(MetricKind.COUNT, 1234.0) == "1,234"
    assert format_value(MetricKind.MEAN, 12.345, "hours") == "12.3 hours"
    assert format_value(MetricKind.MEAN, 0.7, "confidence") == "0.70"
    assert format_value(MetricKind.RATIO, None) == "-"
    assert format_change(-0.5) == "-50%"
    assert format_change(None) == "-"


# --- the command line -----------------------------------------------------------------------------------


@pytest.fixture
def closed_store(tmp_path: Path) -> Path:
    """The store of the module docstring in a workspace folder nobody holds open (the CLI opens it)."""
    root = tmp_path / "cli-workspace"
    with Workspace.open(root) as workspace:
        build_metrics_store(workspace)
    return root


def test_cli_prints_the_scorecard_metrics_and_alerts(
    closed_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from desktop.cli.main import main

    target = tmp_path / "out.csv"
    argv = ["metrics", "--workspace", str(closed_store), "--since", "2026-06-01", "--until", "2026-06-15"]
    assert main([*argv, "--bucket", "week", "--csv", str(target)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        "Metrics of tenant default: 2026-06-01 00:00 to 2026-06-14 23:59 UTC, by week "
        "(tickets by opened time; ingestion and syncs by their own)"
    )
    assert "  Coverage                     57.1%  missed   4 of 7 tickets linked\n" in out
    assert "\n    Coverage 57.1 % — below the 70 % goal.\n" in out
    assert "  MTTR, linked vs unlinked      -50%  met      linked 10.0 h (n=3)" in out
    assert "\n    Tickets with a runbook are resolved 50 % faster than those without; goal: faster.\n" in out
    assert "goal <" not in out and "goal ≥" not in out
    assert "  MTTR vs previous period      +108%" in out
    assert "  Coverage                                     57.1% (4 of 7)" in out
    assert "  Mean time to resolve (linked)                10.0 hours (n=3)" in out
    # Week one: 6 ingested (4 servicenow, 1 jira, 1 csv), mean confidence 3.45 / 5, 2 failed syncs.
    week_one = next(line for line in out.splitlines() if line.startswith("  2026-06-01"))
    assert week_one.split() == [
        "2026-06-01",
        "6",
        "60%",
        "67%",
        "33%",
        "50%",
        "0.69",
        "60%",
        "2",
        "14.0",
        "20.0",
    ]
    assert "Active alerts: none" in out
    assert f"wrote {len(target.read_text(encoding='utf-8').splitlines()) - 1} rows to {target}" in out


def test_cli_json_and_bad_dates(closed_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from desktop.cli.main import main

    argv = ["metrics", "--workspace", str(closed_store), "--since", "2026-06-01", "--until", "2026-06-15"]
    assert main([*argv, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["range"] == {
        "since": "2026-06-01T00:00:00+00:00",
        "until": "2026-06-15T00:00:00+00:00",
        "bucket": "day",
    }
    scores = {item["key"]: item for item in payload["scorecard"]}
    assert scores["coverage"]["status"] == "missed"
    coverage_series = next(s for s in payload["series"] if s["metric"] == "coverage")
    assert (coverage_series["numerator"], coverage_series["denominator"]) == (4.0, 7)
    assert payload["alerts"] == []
    assert main(["metrics", "--workspace", str(closed_store), "--since", "June"]) == 1
    assert "--since June: not an ISO 8601 date" in capsys.readouterr().err
    assert main([*argv[:3], "--since", "2026-06-15", "--until", "2026-06-01"]) == 1
