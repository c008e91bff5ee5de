"""Storing monitoring events: deduplication into alerts, repeats, recoveries, then correlation."""

from __future__ import annotations

from sqlalchemy import func, select

from core.monitoring.events import Severity
from core.monitoring.queries import compression
from core.store.models import AlertStatus, MonitoringAlert, MonitoringEvent, MonitoringIncident
from tests.core.monitoring_events import event, ingest, minutes


def test_repeats_are_one_alert_with_a_count_and_last_seen(sessions) -> None:
    result = ingest(
        sessions,
        [
            event("1", 0, title="CPU at 93% on db01", monitor_id="cpu"),
            # numbers are out of the fingerprint: the same alert
            event("2", 5, title="CPU at 97% on db01", monitor_id="cpu", severity=Severity.CRITICAL),
            event("3", 6, title="CPU at 91% on db02", monitor_id="cpu", host="db02"),
        ],
    )
    assert (result.new, result.alerts_created) == (3, 2)
    with sessions() as session:
        db01 = session.scalars(select(MonitoringAlert).where(MonitoringAlert.host == "db01")).one()
        assert db01.occurrence_count == 2
        assert (db01.first_seen, db01.last_seen) == (minutes(0), minutes(5))
        assert db01.title == "CPU at 97% on db01"  # the newest firing's text
        assert db01.severity == "critical"
        assert compression(session).events == 3
        assert compression(session).alerts == 2
        assert compression(session).ratio == 1.5


def test_re_reading_an_event_changes_nothing(sessions) -> None:
    ingest(sessions, [event("1", 0)])
    again = ingest(sessions, [event("1", 0)])
    assert (again.new, again.updated, again.unchanged) == (0, 0, 1)
    assert again.incident_ids == set()
    with sessions() as session:
        assert session.scalars(select(MonitoringAlert)).one().occurrence_count == 1


def test_a_separate_recovery_record_resolves_the_alert_it_names_and_makes_no_alert_of_its_own(
    sessions,
) -> None:
    ingest(sessions, [event("100", 0, title="[Triggered] Disk full on /var", source_system="datadog")])
    result = ingest(
        sessions,
        [
            event(
                "101",
                8,
                title="[Recovered] Disk full on /var",  # another title, so another fingerprint
                status=AlertStatus.RESOLVED,
                resolved_minute=8,
                recovers="100",
                source_system="datadog",
            )
        ],
    )
    assert result.alerts_created == 0
    with sessions() as session:
        alert = session.scalars(select(MonitoringAlert)).one()
        assert alert.status is AlertStatus.RESOLVED
        assert alert.resolved_at == minutes(8)
        assert alert.occurrence_count == 1
        assert session.scalar(select(func.count()).select_from(MonitoringEvent)) == 2
        incident = session.scalars(select(MonitoringIncident)).one()
        assert result.incident_ids == {incident.id}
        assert incident.resolved_at == minutes(8)


def test_a_problem_that_recovered_comes_back_resolved(sessions) -> None:
    ingest(sessions, [event("1", 0)])
    changed = ingest(sessions, [event("1", 0, status=AlertStatus.RESOLVED, resolved_minute=4)])
    assert changed.updated == 1
    with sessions() as session:
        alert = session.scalars(select(MonitoringAlert)).one()
        assert (alert.status, alert.resolved_at, alert.occurrence_count) == (
            AlertStatus.RESOLVED,
            minutes(4),
            1,
        )


def test_a_repeat_after_the_recovery_triggers_the_alert_again(sessions) -> None:
    ingest(sessions, [event("1", 0), event("1r", 3, status=AlertStatus.RESOLVED, resolved_minute=3)])
    ingest(sessions, [event("2", 20)])
    with sessions() as session:
        alert = session.scalars(select(MonitoringAlert)).one()
        assert (alert.status, alert.resolved_at, alert.occurrence_count) == (AlertStatus.TRIGGERED, None, 2)


def test_every_page_is_correlated(sessions) -> None:
    first = ingest(sessions, [event("1", 0, title="A")])
    second = ingest(sessions, [event("2", 2, title="B")])
    assert first.incident_ids == second.incident_ids  # the second alert joined the first's incident
    assert len(first.incident_ids) == 1
