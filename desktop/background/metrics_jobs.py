"""What the Metrics page runs on worker threads: the metrics and active alerts for a range, an alert
evaluation, and saving the alert thresholds. Plain functions with their own session; frozen rows out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import sessionmaker

from core.analytics.health_alerts import AlertChanges, AlertRow, active_alerts, evaluate_alerts
from core.analytics.metrics import MetricRange, MetricsReport, compute_metrics
from core.settings import Thresholds, load_settings
from core.store.tenancy import TenantSession


@dataclass(frozen=True, slots=True)
class MetricsLoad:
    report: MetricsReport
    alerts: tuple[AlertRow, ...]
    review_threshold: float


def load_metrics(sessions: sessionmaker[TenantSession], metric_range: MetricRange) -> MetricsLoad:
    with sessions() as session:
        return MetricsLoad(
            compute_metrics(session, metric_range),
            active_alerts(session),
            load_settings(session, Thresholds).partial,
        )


def run_alert_evaluation(sessions: sessionmaker[TenantSession], now: datetime) -> AlertChanges:
    with sessions.begin() as session:
        return evaluate_alerts(session, now)
