"""Correlation of alerts into incidents: hand-computed groupings, the window setting, resolution, reopening,
and the incident's ticket row (what the matcher, the review queue and the metrics read)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.monitoring.correlation import correlate
from core.monitoring.events import Severity
from core.monitoring.queries import MonitoringSettings, save_monitoring_settings
from core.store.models import (
    AlertStatus,
    AuditEvent,
    IncidentStatus,
    MonitoringAlert,
    MonitoringIncident,
    Ticket,
    TicketKind,
)
from core.store.tenancy import TenantSession
from tests.core.monitoring_events import event, ingest, minutes


def incidents(sessions: sessionmaker[TenantSession]) -> list[MonitoringIncident]:
    with sessions() as session:
        found = list(session.scalars(select(MonitoringIncident).order_by(MonitoringIncident.id)))
        session.expunge_all()
        return found


def grouping(sessions: sessionmaker[TenantSession]) -> set[frozenset[str]]:
    """The incidents as sets of alert titles@host: comparable whatever ids the rows got."""
    with sessions() as session:
        groups: dict[int, set[str]] = {}
        for alert in session.scalars(select(MonitoringAlert)):
            assert alert.incident_id is not None
            groups.setdefault(alert.incident_id, set()).add(f"{alert.title}@{alert.host}")
        return {frozenset(group) for group in groups.values()}


def test_alerts_on_one_host_within_the_window_are_one_incident(sessions) -> None:
    result = ingest(
        sessions,
        [
            event("1", 0, title="Disk full on /var"),
            event("2", 4, title="MySQL replication lag", severity=Severity.CRITICAL),
            event("3", 9, title="Load average too high", severity=Severity.WARNING),
        ],
    )
    [found] = incidents(sessions)
    assert result.incident_ids == {found.id}
    assert found.status is IncidentStatus.OPEN
    assert found.severity == "critical"  # the worst of high, critical, warning
    assert found.hosts == ["db01"]
    assert found.opened_at == minutes(0)
    assert found.last_alert_at == minutes(9)
    assert found.title == "[critical] db01: MySQL replication lag (+2 alerts)"


def test_eleven_minutes_apart_are_two_incidents(sessions) -> None:
    ingest(
        sessions, [event("1", 0, title="Disk full on /var"), event("2", 11, title="Load average too high")]
    )
    first, second = incidents(sessions)
    assert (first.opened_at, first.last_alert_at) == (minutes(0), minutes(0))
    assert (second.opened_at, second.last_alert_at) == (minutes(11), minutes(11))
    assert first.title == "[high] db01: Disk full on /var"


def test_the_window_reaches_from_the_incidents_last_alert_not_its_first(sessions) -> None:
    # 0 -> 8 -> 16: each within 10 minutes of the incident's last alert, so one incident spanning 16.
    ingest(sessions, [event("1", 0, title="A"), event("2", 8, title="B"), event("3", 16, title="C")])
    [found] = incidents(sessions)
    assert found.last_alert_at == minutes(16)


def test_one_service_on_different_hosts_is_one_incident(sessions) -> None:
    ingest(
        sessions,
        [
            event("1", 0, title="HTTP 502 from upstream", host="web01", service="checkout"),
            event("2", 3, title="HTTP 502 from upstream", host="web02", service="checkout"),
            event(
                "3", 5, title="Disk full on /var", host="db07", service="billing"
            ),  # neither host nor service
        ],
    )
    assert grouping(sessions) == {
        frozenset({"HTTP 502 from upstream@web01", "HTTP 502 from upstream@web02"}),
        frozenset({"Disk full on /var@db07"}),
    }
    checkout = next(i for i in incidents(sessions) if i.services == ["checkout"])
    assert checkout.hosts == ["web01", "web02"]
    assert checkout.title == "[high] web01: HTTP 502 from upstream (+1 alert)"


def test_host_names_compare_case_insensitively_and_an_alert_without_host_or_service_stands_alone(
    sessions,
) -> None:
    ingest(
        sessions,
        [
            event("1", 0, title="A", host="DB01"),
            event("2", 1, title="B"),
            event("3", 2, title="C", host=None),
        ],
    )
    assert grouping(sessions) == {frozenset({"A@DB01", "B@db01"}), frozenset({"C@None"})}


def test_the_tenant_window_setting_is_honoured_and_its_change_audited(sessions) -> None:
    with sessions.begin() as session:
        save_monitoring_settings(session, MonitoringSettings(correlation_window_minutes=15), actor="ana")
    ingest(sessions, [event("1", 0, title="A"), event("2", 14, title="B")])
    assert len(incidents(sessions)) == 1
    with sessions() as session:
        [audit] = session.scalars(select(AuditEvent).where(AuditEvent.action == "settings.monitoring"))
        assert audit.actor == "ana"
        assert audit.before == {"correlation_window_minutes": 10, "max_incident_hours": 24}
        assert audit.after == {"correlation_window_minutes": 15, "max_incident_hours": 24}


def test_an_explicit_window_overrides_the_setting(sessions) -> None:
    result = ingest(sessions, [event("1", 0, title="A"), event("2", 3, title="B")])
    assert len(incidents(sessions)) == 1  # joined under the default 10 minutes
    with sessions.begin() as session:
        for alert in session.scalars(select(MonitoringAlert)):
            alert.incident_id = None
        for found in session.scalars(select(MonitoringIncident)):
            found.status = IncidentStatus.RESOLVED  # out of the way: only new incidents from here
        correlate(session, result.alert_ids, window=timedelta(minutes=2))
    assert len([i for i in incidents(sessions) if i.status is IncidentStatus.OPEN]) == 2


def test_a_window_outside_its_bounds_is_refused() -> None:
    with pytest.raises(ValueError, match="between 1 and 1440"):
        MonitoringSettings(correlation_window_minutes=0)
    with pytest.raises(ValueError, match="between 1 and 168 hours"):
        MonitoringSettings(max_incident_hours=169)


def test_an_incident_takes_no_alert_once_it_is_max_incident_hours_old(sessions) -> None:
    """A service alerting every 8 minutes without pause: each alert is within the window of the last, so
    without a cap one incident would grow for ever. At one hour, the alert at minute 64 opens the next."""
    with sessions.begin() as session:
        save_monitoring_settings(session, MonitoringSettings(max_incident_hours=1), actor="ana")
    ingest(sessions, [event(str(n), 8 * n, title=f"Check {n} failing") for n in range(10)])  # 0, 8, ..., 72
    first, second = incidents(sessions)
    assert (first.opened_at, first.last_alert_at) == (minutes(0), minutes(56))  # 56 - 0 <= 60
    assert (second.opened_at, second.last_alert_at) == (minutes(64), minutes(72))
    assert grouping(sessions) == {
        frozenset(f"Check {n} failing@db01" for n in range(8)),
        frozenset(f"Check {n} failing@db01" for n in (8, 9)),
    }


def test_the_incident_resolves_when_all_its_alerts_have(sessions) -> None:
    ingest(sessions, [event("1", 0, title="A"), event("2", 2, title="B")])
    ingest(sessions, [event("1r", 5, title="A", status=AlertStatus.RESOLVED, resolved_minute=5)])
    [found] = incidents(sessions)
    assert found.status is IncidentStatus.OPEN  # B still firing
    ingest(sessions, [event("2r", 7, title="B", status=AlertStatus.RESOLVED, resolved_minute=7)])
    [found] = incidents(sessions)
    assert found.status is IncidentStatus.RESOLVED
    assert found.resolved_at == minutes(7)  # the last resolution


def test_a_retrigger_within_the_window_reopens_later_opens_a_new_incident(sessions) -> None:
    ingest(sessions, [event("1", 0, title="A")])
    ingest(sessions, [event("1r", 2, title="A", status=AlertStatus.RESOLVED, resolved_minute=2)])
    [first] = incidents(sessions)
    assert first.status is IncidentStatus.RESOLVED
    ingest(sessions, [event("2", 9, title="A")])  # 7 minutes after the resolution: the same problem flapping
    [reopened] = incidents(sessions)
    assert reopened.id == first.id
    assert reopened.status is IncidentStatus.OPEN
    assert reopened.resolved_at is None
    ingest(sessions, [event("2r", 10, title="A", status=AlertStatus.RESOLVED, resolved_minute=10)])
    ingest(sessions, [event("3", 45, title="A")])  # 35 minutes after: a new incident
    old, new = incidents(sessions)
    assert old.id == first.id and old.status is IncidentStatus.RESOLVED
    assert new.status is IncidentStatus.OPEN
    assert new.opened_at == minutes(0)  # the alert row keeps its whole history (first seen at 0)
    with sessions() as session:
        [alert] = session.scalars(select(MonitoringAlert))
        assert alert.incident_id == new.id
        assert alert.occurrence_count == 3


def test_the_order_of_arrival_within_a_page_does_not_change_the_grouping(workspace) -> None:
    page = [
        event("1", 0, title="Disk full on /var", host="db01"),
        event("2", 3, title="Disk full on /data", host="db02", service="billing"),
        event("3", 6, title="Replication lag", host="db01", service="billing"),
        event("4", 12, title="Load average too high", host="db02"),
        event("5", 30, title="Disk full on /var", host="db01"),
        event("6", 31, title="HTTP 502", host="web01", service="checkout"),
        event("7", 35, title="HTTP 502", host="web02", service="checkout"),
    ]
    groupings = []
    for seed in range(4):
        workspace.ensure_tenant(f"order-{seed}")
        sessions = workspace.session_factory(f"order-{seed}")
        shuffled = list(page)
        random.Random(seed).shuffle(shuffled)
        ingest(sessions, shuffled)
        groupings.append(grouping(sessions))
    # By hand. Deduplication first: events 1 and 5 are one alert (db01 disk /var) seen from 0 to 30. Then the
    # alerts in time order: db01 disk (0..30) opens I1; db02 disk (3, billing) shares neither host nor service
    # with I1 (no service yet): opens I2; db01 replication (6, billing) matches both, joins the one opened
    # first, I1; db02 load (12) shares db02 with I2 (last alert 3, 9 minutes before): joins I2; the two HTTP
    # 502 of "checkout" (31, 35) open I3 together.
    expected = {
        frozenset({"Disk full on /var@db01", "Replication lag@db01"}),
        frozenset({"Disk full on /data@db02", "Load average too high@db02"}),
        frozenset({"HTTP 502@web01", "HTTP 502@web02"}),
    }
    assert all(found == expected for found in groupings), groupings


def test_the_incident_ticket_carries_the_raw_alert_text(sessions) -> None:
    ingest(
        sessions,
        [
            event(
                "1",
                0,
                title="Free disk space is less than 5% on volume /var",
                severity=Severity.CRITICAL,
                message="Disk usage at 97% on {HOST.NAME}",
                expression="last(/db01/vfs.fs.size[/var,pused])>95",
                tags=("service:postgres", "scope:capacity"),
                service="postgres",
            ),
            event("2", 1, title="Load average too high", severity=Severity.WARNING),
        ],
    )
    [found] = incidents(sessions)
    with sessions() as session:
        ticket = session.get(Ticket, found.ticket_id)
        assert ticket is not None
        assert ticket.source_system == "monitoring"
        assert ticket.source_instance == ""
        assert ticket.external_id == f"MON-{found.id}"
        assert ticket.kind is TicketKind.ALERT
        assert ticket.title == "[critical] db01: Free disk space is less than 5% on volume /var (+1 alert)"
        assert ticket.description == (
            "[critical] Free disk space is less than 5% on volume /var"
            " (zabbix, host db01, service postgres)\n"
            "Message: Disk usage at 97% on {HOST.NAME}\n"
            "Expression: last(/db01/vfs.fs.size[/var,pused])>95\n"
            "Tags: service:postgres, scope:capacity\n"
            "\n"
            "[warning] Load average too high (zabbix, host db01)"
        )
        assert (ticket.severity, ticket.status, ticket.resolved_at) == ("critical", "open", None)
        assert (ticket.configuration_item, ticket.category) == ("db01", "postgres")
        assert ticket.created_at == minutes(0)
        assert ticket.updated_at == minutes(1)


def test_a_repeat_leaves_the_ticket_unchanged_a_new_alert_or_resolution_changes_it(sessions) -> None:
    def ticket_state() -> tuple[str, str | None]:
        with sessions() as session:
            [ticket] = session.scalars(select(Ticket))
            return ticket.content_hash, ticket.status

    ingest(sessions, [event("1", 0, title="Disk full on /var")])
    first = ticket_state()
    ingest(sessions, [event("2", 3, title="Disk full on /var")])  # the same alert firing again
    assert ticket_state() == first
    ingest(sessions, [event("3", 4, title="Load average too high")])
    second = ticket_state()
    assert second[0] != first[0]
    ingest(
        sessions,
        [
            event("1r", 6, title="Disk full on /var", status=AlertStatus.RESOLVED, resolved_minute=6),
            event("3r", 6, title="Load average too high", status=AlertStatus.RESOLVED, resolved_minute=6),
        ],
    )
    third = ticket_state()
    assert third[0] != second[0] and third[1] == "resolved"
    with sessions() as session:
        [ticket] = session.scalars(select(Ticket))
        assert ticket.resolved_at == minutes(6)


def test_a_large_incident_describes_its_worst_fifty_alerts_and_counts_the_rest(sessions) -> None:
    page = [event(str(n), n * 0.1, title=f"Check {n:02d} failing", severity=Severity.HIGH) for n in range(50)]
    page[10] = event("10", 1.0, title="Check 10 failing", severity=Severity.INFO)
    page += [event("50", 5.0, title="Check 50 failing", severity=Severity.CRITICAL)]
    page += [event("51", 5.1, title="Check 51 failing", severity=Severity.WARNING)]
    ingest(sessions, page)
    with sessions() as session:
        [ticket] = session.scalars(select(Ticket))
    blocks = ticket.description.split("\n\n")
    assert len(blocks) == 51
    assert blocks[-1] == "(+2 more alerts)"
    shown = {block.split("] ", 1)[1].split(" (")[0] for block in blocks[:-1]}
    assert "Check 10 failing" not in shown and "Check 51 failing" not in shown  # the info and the warning
    assert "Check 50 failing" in shown
    assert blocks[0].startswith("[high] Check 00 failing")  # firing order kept
    assert ticket.title == "[critical] db01: Check 50 failing (+51 alerts)"


def test_an_incident_reopened_by_a_retrigger_takes_a_new_alert_of_the_same_page(sessions) -> None:
    ingest(
        sessions,
        [event("1", 0, title="A"), event("1r", 2, title="A", status=AlertStatus.RESOLVED, resolved_minute=2)],
    )
    ingest(sessions, [event("2", 8, title="A"), event("3", 9, title="B")])
    [found] = incidents(sessions)
    assert found.status is IncidentStatus.OPEN
    assert grouping(sessions) == {frozenset({"A@db01", "B@db01"})}
