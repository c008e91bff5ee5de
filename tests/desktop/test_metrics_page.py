"""The Metrics page over the hand-built store of tests/test_metrics.py: scorecard, charts, alerts, export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtTest import QAbstractItemModelTester
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.analytics.health_alerts import AlertRow, AlertRule
from core.analytics.metrics import Bucket
from core.matching.analysis import BatchReport
from core.matching.engine import RefreshReport
from core.settings import AlertSettings, load_settings
from core.store.models import ConnectorConfig
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from desktop.background.jobs import AnalysisOutcome
from desktop.background.tasks import TaskRunner
from desktop.context import AppContext
from desktop.pages.metrics import RANGE_PRESETS, MetricsPage
from desktop.widgets.line_chart import ChartData, ChartLine, LineChart, nice_ceiling
from tests.core.test_metrics import build_metrics_store

WAIT_MS = 20_000
NOW = datetime(2026, 6, 14, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(workspace: Workspace) -> sessionmaker[TenantSession]:
    return build_metrics_store(workspace)


@pytest.fixture
def context(workspace: Workspace, store: sessionmaker[TenantSession]) -> Iterator[AppContext]:
    runner = TaskRunner()
    yield AppContext(workspace, "default", runner, reviewer_name="ana.analyst")
    runner.shutdown()


@pytest.fixture
def page(qtbot, context: AppContext) -> Iterator[MetricsPage]:
    metrics_page = MetricsPage(context)
    metrics_page.clock = lambda: NOW
    qtbot.addWidget(metrics_page)
    metrics_page.resize(1500, 900)
    with qtbot.waitSignal(metrics_page.loaded, timeout=WAIT_MS):
        metrics_page.show()  # the first show loads the default range
    with qtbot.waitSignal(metrics_page.loaded, timeout=WAIT_MS):
        metrics_page.set_range(date(2026, 6, 1), date(2026, 6, 14), Bucket.WEEK)
    yield metrics_page
    metrics_page.stop()
    context.runner.wait_for_done(WAIT_MS)


def set_failures(sessions: sessionmaker[TenantSession], name: str, failures: int) -> None:
    with sessions.begin() as session:
        config = session.scalars(select(ConnectorConfig).where(ConnectorConfig.name == name)).one()
        config.consecutive_failures = failures


def test_scorecard_and_charts_show_the_range(page: MetricsPage) -> None:
    cards = {card.item.key: card for card in page.score_cards if card.item is not None}
    assert cards["coverage"].value_label.text() == "57.1%"
    assert cards["coverage"].status_label.text() == "✗ goal missed"
    assert cards["coverage"].detail_label.text() == "4 of 7 tickets linked"
    assert cards["coverage"].sentence_label.text() == "Coverage 57.1 % — below the 70 % goal."
    assert cards["coverage"].title_label.text() == "<b>Coverage</b> · goal: at least 70 %"
    assert cards["false_positive_rate"].value_label.text() == "33.3%"
    by_link = cards["mttr_linked_vs_unlinked"]
    assert by_link.value_label.text() == "50 % faster"
    assert by_link.status_label.text() == "✓ goal met"
    assert by_link.sentence_label.text() == (
        "Tickets with a runbook are resolved 50 % faster than those without; goal: faster."
    )
    assert cards["mttr_vs_previous"].value_label.text() == "108 % slower"
    assert page.summary_label.text().startswith("Tickets opened 01 Jun 2026 – 14 Jun 2026 (UTC), by week")

    coverage = page.charts["coverage"].data
    assert coverage is not None
    assert coverage.lines == (ChartLine("", (0.5, 1.0)),)
    assert (coverage.goal, coverage.fixed_max, coverage.goal_label) == (0.70, 1.0, "goal: at least 70 %")
    ingested = page.charts["tickets_ingested"].data
    assert ingested is not None
    assert {line.label: line.values for line in ingested.lines} == {
        "csv": (1.0, 0.0),
        "jira": (1.0, 1.0),
        "servicenow": (4.0, 1.0),
    }
    mttr = page.charts["mttr"].data
    assert mttr is not None
    assert mttr.title == "Mean time to resolve (hours)"
    assert page.charts["mttr"].readout(0) == "01 Jun\nlinked: 14\nunlinked: 20"
    assert page.charts["average_confidence"].data.goal == 0.5  # type: ignore[union-attr]
    assert page.export_button.isEnabled()
    assert not page.grab().isNull()


def test_range_presets_and_bucket(qtbot, page: MetricsPage) -> None:
    with qtbot.waitSignal(page.loaded, timeout=WAIT_MS):
        page.range_combo.setCurrentIndex(0)  # last 7 days, by day
    metric_range = page.metric_range()
    assert (metric_range.since, metric_range.until) == (
        datetime(2026, 6, 8, tzinfo=UTC),
        datetime(2026, 6, 15, tzinfo=UTC),
    )
    assert metric_range.bucket is Bucket.DAY
    assert not page.from_edit.isEnabled()
    assert RANGE_PRESETS[0].label == page.range_combo.currentText()
    with qtbot.waitSignal(page.loaded, timeout=WAIT_MS):
        page.bucket_combo.setCurrentIndex(page.bucket_combo.findData("hour"))
    assert len(page.charts["coverage"].data.buckets) == 7 * 24  # type: ignore[union-attr]


def test_a_range_too_fine_to_chart_says_so(qtbot, page: MetricsPage) -> None:
    with qtbot.waitSignal(page.load_failed, timeout=WAIT_MS) as failed:
        page.set_range(date(2020, 1, 1), date(2026, 6, 14), Bucket.HOUR)
    assert "too many to chart" in failed.args[0]
    assert page.error_label.isVisibleTo(page)


def test_alerts_are_raised_once_listed_and_cleared(
    qtbot, page: MetricsPage, store: sessionmaker[TenantSession]
) -> None:
    raised: list[str] = []
    page.alert_raised.connect(raised.append)
    set_failures(store, "prod-sn", 3)
    with qtbot.waitSignal(page.alerts_evaluated, timeout=WAIT_MS):
        page.evaluate_alerts()
    assert raised == [
        "Alert: Connector sync failing. Connector “prod-sn” failed 3 syncs in a row (alert at 3)."
    ]
    assert [row.rule for row in page.alert_model.rows] == [AlertRule.SYNC_FAILURES]
    assert page.alerts_label.text() == "<b>Active alerts (1)</b>"
    assert not page.no_alerts_label.isVisibleTo(page)

    with qtbot.waitSignal(page.alerts_evaluated, timeout=WAIT_MS):
        page.evaluate_alerts()
        page.evaluate_alerts()  # while one runs: one more after it, not two at once
    qtbot.waitUntil(lambda: not page.is_evaluating(), timeout=WAIT_MS)
    assert len(raised) == 1  # still the same condition

    set_failures(store, "prod-sn", 0)
    with qtbot.waitSignal(page.alerts_evaluated, timeout=WAIT_MS) as evaluated:
        page.check_button.click()
    assert [a.rule for a in evaluated.args[0].cleared] == [AlertRule.SYNC_FAILURES]
    assert page.alert_model.rows == ()
    assert page.no_alerts_label.isVisibleTo(page)


def test_alert_model_passes_the_model_tester(page: MetricsPage) -> None:
    row = AlertRow(1, AlertRule.RATE_LIMIT, "connector:1", "8 of 100 left", 0.08, 0.1, NOW, NOW, None)
    page.alert_model.set_rows([row])
    QAbstractItemModelTester(page.alert_model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    text = page.alert_model.index(0, 0).data()
    assert text.startswith("API rate limit approaching · since ")
    assert text.endswith("\n8 of 100 left")
    assert page.alert_model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole) == "8 of 100 left"


def test_alert_thresholds_dialog_saves_the_tenants_settings(
    qtbot, page: MetricsPage, store: sessionmaker[TenantSession]
) -> None:
    dialog = page.open_alert_settings()
    qtbot.addWidget(dialog)
    assert dialog.sync_spin.value() == 3
    dialog.sync_spin.setValue(5)
    dialog.rate_spin.setValue(20)
    with qtbot.waitSignal(page.alerts_evaluated, timeout=WAIT_MS):  # saving re-checks the alerts
        dialog.buttons.button(dialog.buttons.StandardButton.Save).click()
    with store() as session:
        assert load_settings(session, AlertSettings) == AlertSettings(sync_failures=5, rate_limit_ratio=0.2)


def test_export_writes_every_series(qtbot, page: MetricsPage, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    with qtbot.waitSignal(page.exported, timeout=WAIT_MS):
        page.export_csv_to(target)
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert page.current is not None
    assert len(rows) == sum(len(s.points) for s in page.current.report.series)


def test_window_shows_the_page_and_notifies_new_alerts(
    qtbot, workspace: Workspace, store: sessionmaker[TenantSession], tmp_path: Path
) -> None:
    from desktop.main_window import METRICS_PAGE, MainWindow

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(workspace, "default", settings=settings)
    qtbot.addWidget(window)
    try:
        window.show()
        with qtbot.waitSignal(window.metrics_page.loaded, timeout=WAIT_MS):
            window.show_page(METRICS_PAGE)
        assert window.current_page() is window.metrics_page
        set_failures(store, "jira-cloud", 4)
        with qtbot.waitSignal(window.metrics_page.alerts_evaluated, timeout=WAIT_MS):
            # What the window does after every analysis job, here one that found nothing to analyse.
            window._analysed(AnalysisOutcome(RefreshReport(), BatchReport()))
        texts = [n.text for n in window.notifications.notifications()]
        assert any(text.startswith("Alert: Connector sync failing. Connector “jira-cloud”") for text in texts)
    finally:
        window.close()


# --- the chart widget on its own ------------------------------------------------------------------------


def test_line_chart_maps_values_and_breaks_at_missing_data(qtbot) -> None:
    chart = LineChart()
    qtbot.addWidget(chart)
    chart.resize(400, 240)
    buckets = (
        datetime(2026, 6, 1, tzinfo=UTC),
        datetime(2026, 6, 2, tzinfo=UTC),
        datetime(2026, 6, 3, tzinfo=UTC),
    )
    chart.set_data(
        ChartData(
            title="Coverage",
            buckets=buckets,
            bucket_label=lambda start: start.strftime("%d %b"),
            lines=(ChartLine("", (0.25, None, 0.75)),),
            value_format=lambda value: f"{value:.0%}",
            fixed_max=1.0,
            goal=0.7,
            goal_label="goal ≥ 70%",
        )
    )
    rect = chart.plot_rect()
    assert chart.x_at(0) == rect.left()
    assert chart.x_at(2) == rect.right()
    assert chart.y_at(0.0) == rect.bottom()
    assert chart.y_at(1.0) == rect.top()
    assert chart.bucket_at(rect.center().x()) == 1
    assert chart.readout(1) == "02 Jun\nCoverage: no data"
    assert chart.summary() == "Coverage: latest 75%"
    assert chart.accessibleName() == "Coverage"
    assert not chart.grab().isNull()
    qtbot.mouseMove(chart, QPoint(int(rect.center().x()), int(rect.center().y())))


def test_axis_maxima_give_round_ticks_and_whole_counts(qtbot) -> None:
    chart = LineChart()
    qtbot.addWidget(chart)
    buckets = (datetime(2026, 6, 1, tzinfo=UTC),)

    def top(values: tuple[float | None, ...], whole: bool) -> float:
        line = ChartLine("", values)
        chart.set_data(ChartData("c", buckets, str, (line,), str, whole_numbers=whole))
        return chart.y_max()

    assert top((348.0,), whole=True) == 400.0  # ticks of 100
    assert top((0.0,), whole=True) == 4.0  # no "0.25 failed runs"
    assert top((6.0,), whole=True) == 8.0
    assert top((187.0,), whole=False) == 200.0
    assert top((None,), whole=False) == 1.0


@pytest.mark.parametrize(
    ("value", "expected"), [(0.0, 1.0), (0.8, 1.0), (3.2, 5.0), (14.0, 20.0), (23.0, 25.0), (101.0, 200.0)]
)
def test_nice_axis_maxima(value: float, expected: float) -> None:
    assert nice_ceiling(value) == pytest.approx(expected)
