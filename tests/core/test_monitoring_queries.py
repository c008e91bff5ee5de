"""The rows the Alerts page and the notifier read: order, alerts, suggestion, what changed, notification."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.monitoring.events import Severity
from core.monitoring.queries import (
    Compression,
    MonitoringSettings,
    compression,
    incident,
    incidents_to_notify,
    list_incidents,
    mark_notified,
    monitoring_settings,
    save_monitoring_settings,
)
from core.store.models import (
    AlertStatus,
    Analysis,
    AnalysisDecision,
    MonitoringIncident,
    Runbook,
    RunbookStatus,
    Ticket,
    utcnow,
)
from core.store.tenancy import TenantSession
from tests.core.monitoring_events import T0, event, ingest, minutes


def three_incidents(sessions: sessionmaker[TenantSession]) -> dict[str, int]:
    """db01 (warning, open, newest), web01 (critical, open), app01 (critical, resolved); ids by host."""
    ingest(
        sessions,
        [
            event("1", 0, title="HTTP 502 from upstream", host="web01", severity=Severity.CRITICAL),
            event("2", 1, title="Queue depth high", host="app01", severity=Severity.CRITICAL),
            event("3", 30, title="Disk full on /var", host="db01", severity=Severity.WARNING),
            event("4", 31, title="Load average high", host="db01", severity=Severity.INFO),
            event(
                "2r",
                5,
                title="Queue depth high",
                host="app01",
                status=AlertStatus.RESOLVED,
                resolved_minute=5,
            ),
        ],
    )
    with sessions() as session:
        return {found.hosts[0]: found.id for found in session.scalars(select(MonitoringIncident))}


def test_open_first_then_worst_severity_then_newest(sessions) -> None:
    ids = three_incidents(sessions)
    with sessions() as session:
        assert [row.id for row in list_incidents(session)] == [ids["web01"], ids["db01"]]
        assert [row.id for row in list_incidents(session, include_resolved=True)] == [
            ids["web01"],
            ids["db01"],
            ids["app01"],
        ]
        assert [row.id for row in list_incidents(session, include_resolved=True, limit=1)] == [ids["web01"]]


def test_an_incident_row_carries_its_alerts_in_firing_order(sessions) -> None:
    ids = three_incidents(sessions)
    with sessions() as session:
        row = incident(session, ids["db01"])
        assert incident(session, 999_999) is None
    assert row is not None
    assert (row.title, row.severity, row.status) == (
        "[warning] db01: Disk full on /var (+1 alert)",
        "warning",
        "open",
    )
    assert row.hosts == ("db01",)
    assert (row.opened_at, row.last_alert_at, row.resolved_at) == (minutes(30), minutes(31), None)
    assert [(a.title, a.severity, a.status, a.occurrence_count) for a in row.alerts] == [
        ("Disk full on /var", "warning", "triggered", 1),
        ("Load average high", "info", "triggered", 1),
    ]
    assert (row.runbook_id, row.confidence, row.decision, row.created_number) == (None, None, None, None)
    assert row.changes == ()


def test_changes_since_a_time(sessions) -> None:
    # ``since`` is the last monitoring sync's start: our clock. "new" reads the ticket row's arrival, "+N
    # alerts" the alerts' first events' arrival, "resolved" the incident row's last change: never a source's
    # event times, which may lag our clock (the alerts here fire after ``since`` all the same).
    before = utcnow()
    now = (before - T0).total_seconds() / 60  # "now" on the event helper's minute scale
    ingest(sessions, [event("1", now, title="Disk full on /var", severity=Severity.WARNING)])
    with sessions() as session:
        assert list_incidents(session, since=before)[0].changes == ("new",)
    since = utcnow()
    later = (since - T0).total_seconds() / 60
    ingest(
        sessions,
        [
            event("2", later + 1, title="Replication broken", severity=Severity.CRITICAL),
            event("3", later + 2, title="Load average high", severity=Severity.INFO),
        ],
    )
    with sessions() as session:
        [row] = list_incidents(session, since=since)
        assert row.changes == ("+2 alerts", "escalated to critical")
        assert list_incidents(session, since=minutes(later + 3))[0].changes == ()
    ingest(
        sessions,
        [
            event(f"{n}r", later + 5, title=title, status=AlertStatus.RESOLVED, resolved_minute=later + 5)
            for n, title in (
                ("1", "Disk full on /var"),
                ("2", "Replication broken"),
                ("3", "Load average high"),
            )
        ],
    )
    with sessions() as session:
        [row] = list_incidents(session, include_resolved=True, since=since)
        assert row.changes == ("+2 alerts", "escalated to critical", "resolved")


def test_an_alert_that_fired_before_the_sync_began_but_arrived_with_it_is_a_change(sessions) -> None:
    """Sources report late (an agent's buffer, a lagging poll): an event stamped before the sync started
    still reached us with it, and the analyst has not seen it."""
    ingest(sessions, [event("1", 0, title="Disk full on /var")])
    since = utcnow()
    ingest(sessions, [event("2", 3, title="Replication broken")])  # fired at T0 + 3 min: before ``since``
    with sessions() as session:
        [row] = list_incidents(session, since=since)
    assert row.changes == ("+1 alert",)
    assert since > row.alerts[-1].first_seen


def test_a_critical_incident_with_a_confident_runbook_is_notified_once(sessions) -> None:
    ids = three_incidents(sessions)
    with sessions.begin() as session:
        runbook = Runbook(
            title="Nginx 502", body="x", status=RunbookStatus.APPROVED, external_ref="n", content_hash="n"
        )
        session.add(runbook)
        session.flush()
        for host, decision in (
            ("web01", AnalysisDecision.LINK_RUNBOOK),
            ("db01", AnalysisDecision.LINK_RUNBOOK),
        ):
            found = session.get(MonitoringIncident, ids[host])
            assert found is not None and found.ticket_id is not None
            ticket = session.get(Ticket, found.ticket_id)
            assert ticket is not None
            session.add(
                Analysis(
                    ticket_id=found.ticket_id,
                    decision=decision,
                    confidence=0.83,
                    best_runbook_id=runbook.id,
                    model_id="m",
                    threshold_existing=0.7,
                    threshold_partial=0.5,
                    ticket_content_hash=ticket.content_hash,
                )
            )
    with sessions() as session:
        notify = incidents_to_notify(session)
    # db01 is only a warning; app01 is resolved; web01 is critical, open and confidently matched.
    assert [(row.id, row.runbook_title, row.confidence, row.decision) for row in notify] == [
        (ids["web01"], "Nginx 502", 0.83, AnalysisDecision.LINK_RUNBOOK)
    ]
    with sessions.begin() as session:
        mark_notified(session, [ids["web01"]])
    with sessions() as session:
        assert incidents_to_notify(session) == []


def test_a_flagged_suggestion_is_not_notified(sessions) -> None:
    ids = three_incidents(sessions)
    with sessions.begin() as session:
        found = session.get(MonitoringIncident, ids["web01"])
        assert found is not None and found.ticket_id is not None
        session.add(
            Analysis(
                ticket_id=found.ticket_id,
                decision=AnalysisDecision.FLAG_REVIEW,
                confidence=0.6,
                best_runbook_id=None,
                model_id="m",
                threshold_existing=0.7,
                threshold_partial=0.5,
                ticket_content_hash="h",
            )
        )
    with sessions() as session:
        assert incidents_to_notify(session) == []


def test_compression_counts_events_alerts_and_incidents(sessions) -> None:
    with sessions() as session:
        assert compression(session) == Compression(0, 0, 0, 0.0)
    ingest(
        sessions,
        [event(str(n), n, title="Disk full on /var") for n in range(6)] + [event("x", 40, title="B")],
    )
    with sessions() as session:
        assert compression(session) == Compression(events=7, alerts=2, incidents=2, ratio=3.5)


def test_monitoring_settings_default_and_saved(sessions) -> None:
    with sessions() as session:
        assert monitoring_settings(session) == MonitoringSettings(correlation_window_minutes=10)
    with sessions.begin() as session:
        save_monitoring_settings(session, MonitoringSettings(correlation_window_minutes=20), "ana")
    with sessions() as session:
        assert monitoring_settings(session).correlation_window_minutes == 20


def test_the_demo_alerts_load_into_incidents(sessions) -> None:
    from core.importing.demo import DEMO_ALERTS, demo_data_dir, load_demo_alerts

    result = load_demo_alerts(sessions, demo_data_dir() / DEMO_ALERTS)
    assert result.new == 37
    with sessions() as session:
        figures = compression(session)
        rows = {row.hosts[0]: row for row in list_incidents(session, include_resolved=True)}
    assert (figures.events, figures.alerts, figures.incidents) == (37, 22, 15)
    # The checkout 502s on web-07 and web-08 and the checkout DB pool on k8s-node-12 (same service, within
    # 4 minutes) are one incident; the two 502 alerts recovered, the pool did not: still open.
    checkout = rows["web-07"]
    assert checkout.hosts == ("web-07", "web-08", "k8s-node-12")
    assert [(alert.host, alert.status) for alert in checkout.alerts] == [
        ("web-07", "resolved"),
        ("web-08", "resolved"),
        ("k8s-node-12", "triggered"),
    ]
    assert checkout.status == "open"
    assert rows["ORA-FIN-02"].status == "resolved"  # the SolarWinds reset ended the listener alert


def test_resolved_incidents_stay_out_of_the_mttr(sessions) -> None:
    from core.analytics.metrics import Bucket, MetricRange, mttr

    ingest(sessions, [event("1", 0), event("1r", 30, status=AlertStatus.RESOLVED, resolved_minute=30)])
    with sessions.begin() as session:
        [ticket] = session.scalars(select(Ticket))
        assert ticket.resolved_at == minutes(30)  # resolved as a ticket, for the review queue and the page
        session.add(
            Ticket(
                external_id="INC1",
                source_system="servicenow",
                title="Disk full on db01",
                description="",
                status="resolved",
                created_at=minutes(0),
                resolved_at=minutes(120),
                content_hash="h",
            )
        )
    window = MetricRange(minutes(-60), minutes(24 * 60), Bucket.DAY)
    with sessions() as session:
        series = {s.group: s for s in mttr(session, window)}
    assert series["unlinked"].overall == pytest.approx(2.0)  # the ticket's 2 h, not averaged with 0.5 h
