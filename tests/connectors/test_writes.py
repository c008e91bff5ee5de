"""Writes to ticketing systems (connectors.writes): approved links posted as work notes, incidents created
once. The subject is a writable variant of the tiny connector whose fake answers notes and incidents in a
small JSON shape of its own (and fails the test on any request it does not expect)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from connectors import writes
from connectors.base import (
    ConfigField,
    ConnectorSpec,
    CreatedTicket,
    FieldType,
    NewIncident,
    WorkNote,
)
from connectors.configs import ConfigRow, create_config, update_config
from connectors.errors import ServerError
from connectors.registry import ConnectorRegistry, use_registry
from connectors.testing.fake_system import InjectedFailure
from connectors.writes import (
    IncidentCreationInProgressError,
    create_incident_ticket,
    drain_writebacks,
)
from core.store.models import (
    AlertStatus,
    Analysis,
    AnalysisDecision,
    AuditEvent,
    LinkDecision,
    MonitoringAlert,
    MonitoringIncident,
    Runbook,
    RunbookStatus,
    Ticket,
    TicketKind,
    TicketRunbookLink,
    TicketWriteback,
    WritebackStatus,
)
from core.store.tenancy import TenantSession
from core.workflow.review import approve
from core.workflow.writeback import MAX_ATTEMPTS, retry_writeback, writebacks_of
from tests.connectors.tiny_connector import GOOD_TOKEN, FakeTiny, TinyConnector

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


class WritableTiny(TinyConnector):
    """The tiny connector with the write API: notes and incidents, looked up by correlation id first."""

    spec: ClassVar[ConnectorSpec] = ConnectorSpec(
        type="tiny-writable",
        display_name="Tiny Tracker (writable)",
        kind=TinyConnector.spec.kind,
        auth_modes=TinyConnector.spec.auth_modes,
        fields=(
            *TinyConnector.spec.fields,
            ConfigField(
                "write_back", "Post approved runbooks to the ticket", FieldType.BOOLEAN, required=False
            ),
        ),
        timestamp_precision=TinyConnector.spec.timestamp_precision,
    )
    can_write: ClassVar[bool] = True

    async def add_work_note(self, note: WorkNote) -> str | None:
        path = f"/api/tickets/{note.ticket_payload['id']}/notes"
        response = await self.http.request("POST", path, json_body={"text": note.text()})
        return str(self.http.json_of(response, "POST", path)["note"]["id"])

    async def create_incident(self, incident: NewIncident) -> CreatedTicket:
        found = await self.http.get_json("/api/incidents", params={"correlation_id": incident.correlation_id})
        if found["records"]:
            record = found["records"][0]
            return CreatedTicket(record["number"], record["id"], record["url"], existed=True)
        body = {
            "title": incident.title,
            "description": incident.description,
            "severity": incident.severity,
            "ci": incident.configuration_item,
            "correlation_id": incident.correlation_id,
        }
        response = await self.http.request("POST", "/api/incidents", json_body=body)
        record = self.http.json_of(response, "POST", "/api/incidents")["incident"]
        return CreatedTicket(record["number"], record["id"], record["url"])


class FakeWritableTiny(FakeTiny):
    connector_type = "tiny-writable"

    def __init__(self) -> None:
        super().__init__()
        self.notes: dict[str, list[str]] = {}
        self.incidents: list[dict[str, Any]] = []

    def route(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {GOOD_TOKEN}":
            return self.error_response(401, "invalid token")
        path = request.url.path
        if request.method == "POST" and path.startswith("/api/tickets/") and path.endswith("/notes"):
            ticket_id = path.split("/")[3]
            self.notes.setdefault(ticket_id, []).append(json.loads(request.content)["text"])
            return httpx.Response(201, json={"note": {"id": f"N{sum(map(len, self.notes.values()))}"}})
        if request.method == "GET" and path == "/api/incidents":
            wanted = request.url.params["correlation_id"]
            records = [i for i in self.incidents if i["correlation_id"] == wanted]
            return httpx.Response(200, json={"records": records})
        if request.method == "POST" and path == "/api/incidents":
            number = f"TINY-{len(self.incidents) + 1}"
            record = json.loads(request.content) | {
                "id": f"i{len(self.incidents) + 1}",
                "number": number,
                "url": f"{self.base_url}/incidents/{number}",
            }
            self.incidents.append(record)
            return httpx.Response(201, json={"incident": record})
        return super().route(request)

    def posts(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests if r.method == "POST"]


@pytest.fixture
def fake() -> Iterator[FakeWritableTiny]:
    system = FakeWritableTiny()
    with use_registry(ConnectorRegistry((), find_plugins=None, classes=(WritableTiny,))):
        yield system
    assert system.unexpected == []


async def no_sleep(_seconds: float) -> None:
    return None


def make_config(
    sessions: sessionmaker[TenantSession], fake: FakeWritableTiny, *, write_back: bool = True
) -> ConfigRow:
    return create_config(
        sessions,
        connector_type="tiny-writable",
        name="Tiny prod",
        base_url=fake.base_url,
        options={"write_back": write_back},
        secrets={"token": GOOD_TOKEN},
        actor="test",
    )


def synced_ticket_and_runbook(
    sessions: sessionmaker[TenantSession], config: ConfigRow, *, external_ref: str | None
) -> tuple[int, int]:
    with sessions.begin() as session:
        ticket = Ticket(
            external_id="T00001",
            source_system="tiny",
            title="VPN tunnel drops every hour",
            content_hash="h",
            raw_payload={"id": "T00001", "title": "VPN tunnel drops every hour"},
        )
        ticket.connector_config_id = config.id
        runbook = Runbook(
            title="Restart the VPN gateway",
            status=RunbookStatus.APPROVED,
            content_hash="r",
            external_ref=external_ref,
        )
        session.add_all([ticket, runbook])
        session.flush()
        return ticket.id, runbook.id


def drain(sessions: sessionmaker[TenantSession], fake: FakeWritableTiny) -> writes.WritebackReport:
    return asyncio.run(drain_writebacks(sessions, transport=fake.transport(), sleep=no_sleep, actor="desk"))


def audit(sessions: sessionmaker[TenantSession], prefix: str) -> list[AuditEvent]:
    with sessions() as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        return [e for e in events if e.action.startswith(prefix)]


def the_writeback(sessions: sessionmaker[TenantSession]) -> TicketWriteback:
    with sessions() as session:
        return session.scalars(select(TicketWriteback)).one()


# --- write-backs -----------------------------------------------------------------------------------------


def test_an_approved_link_is_posted_once_as_a_note(
    sessions: sessionmaker[TenantSession], fake: FakeWritableTiny
) -> None:
    config = make_config(sessions, fake)
    ticket_id, runbook_id = synced_ticket_and_runbook(
        sessions, config, external_ref="https://kb.example.com/kb/VPN-7"
    )
    with sessions.begin() as session:
        approve(session, ticket_id, runbook_id, 0.87, "alice")

    report = drain(sessions, fake)

    assert (report.written, report.failed, report.pending) == (1, 0, 0)
    assert fake.notes == {
        "T00001": [
            "Runbook linked by alice in Runbook Desk: Restart the VPN gateway (confidence 87%)\n"
            "https://kb.example.com/kb/VPN-7"
        ]
    }
    row = the_writeback(sessions)
    assert (row.status, row.attempts, row.remote_id, row.last_error) == (
        WritebackStatus.WRITTEN,
        1,
        "N1",
        None,
    )
    assert row.written_at is not None
    [written] = audit(sessions, "writeback.written")
    assert written.after is not None and written.after["remote_id"] == "N1"
    # Nothing is due any more: a second drain sends nothing.
    assert drain(sessions, fake) == writes.WritebackReport(0, 0, 0)
    assert fake.posts() == ["POST /api/tickets/T00001/notes"]


def test_a_runbook_whose_reference_is_a_file_name_is_posted_without_a_link(
    sessions: sessionmaker[TenantSession], fake: FakeWritableTiny
) -> None:
    config = make_config(sessions, fake)
    ticket_id, runbook_id = synced_ticket_and_runbook(sessions, config, external_ref="vpn-restart.md")
    with sessions.begin() as session:
        approve(session, ticket_id, runbook_id, None, "alice")
    drain(sessions, fake)
    assert fake.notes["T00001"] == ["Runbook linked by alice in Runbook Desk: Restart the VPN gateway"]


def test_a_failed_write_is_shown_redacted_retried_and_never_touches_the_decision(
    sessions: sessionmaker[TenantSession], fake: FakeWritableTiny, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writes, "CLAIM_LEASE", timedelta(0))  # each drain may try again at once
    config = make_config(sessions, fake)
    ticket_id, runbook_id = synced_ticket_and_runbook(sessions, config, external_ref=None)
    with sessions.begin() as session:
        approve(session, ticket_id, runbook_id, 0.6, "alice")
    # A server that echoes the credential in its refusal: the stored error must not keep it.
    fake.fail_next(
        InjectedFailure(403, message=f"token {GOOD_TOKEN} lacks the itil role"), times=MAX_ATTEMPTS
    )

    for attempt in range(1, MAX_ATTEMPTS + 1):
        report = drain(sessions, fake)
        assert (report.written, report.failed) == (0, 1)
        assert the_writeback(sessions).attempts == attempt
    # Out of automatic attempts: the next drain leaves it alone.
    assert drain(sessions, fake) == writes.WritebackReport(0, 0, 0)
    assert len(fake.posts()) == MAX_ATTEMPTS

    with sessions() as session:
        [shown] = writebacks_of(session, ticket_id)
        link = session.scalars(select(TicketRunbookLink)).one()
    assert shown.status is WritebackStatus.FAILED and shown.gave_up
    assert shown.last_error is not None and "lacks the itil role" in shown.last_error
    assert GOOD_TOKEN not in shown.last_error
    assert (link.decision, link.reviewed_by) == (LinkDecision.LINKED, "alice")  # the decision stands
    failures = audit(sessions, "writeback.failed")
    assert len(failures) == MAX_ATTEMPTS
    assert all(GOOD_TOKEN not in json.dumps(e.after) for e in failures)
    assert failures[-1].after is not None and failures[-1].after["gave_up"] is True

    with sessions.begin() as session:
        retry_writeback(session, shown.id, "bob")
    report = drain(sessions, fake)
    assert (report.written, report.failed) == (1, 0)
    assert the_writeback(sessions).status is WritebackStatus.WRITTEN
    assert len(fake.notes["T00001"]) == 1


def test_two_drains_at_once_post_each_note_once(
    sessions: sessionmaker[TenantSession], fake: FakeWritableTiny
) -> None:
    config = make_config(sessions, fake)
    ticket_id, runbook_id = synced_ticket_and_runbook(sessions, config, external_ref=None)
    with sessions.begin() as session:
        approve(session, ticket_id, runbook_id, 0.9, "alice")

    async def both() -> list[writes.WritebackReport]:
        transport = fake.transport()
        return list(
            await asyncio.gather(
                drain_writebacks(sessions, transport=transport, sleep=no_sleep),
                drain_writebacks(sessions, transport=transport, sleep=no_sleep),
            )
        )

    reports = asyncio.run(both())
    assert sorted(r.written for r in reports) == [0, 1]
    assert fake.posts() == ["POST /api/tickets/T00001/notes"]


def test_a_writeback_whose_connector_turned_the_option_off_fails_without_a_request(
    sessions: sessionmaker[TenantSession], fake: FakeWritableTiny
) -> None:
    config = make_config(sessions, fake)
    ticket_id, runbook_id = synced_ticket_and_runbook(sessions, config, external_ref=None)
    with sessions.begin() as session:
        approve(session, ticket_id, runbook_id, 0.9, "alice")
    update_config(sessions, config.id, options={"write_back": False}, actor="admin")
    report = drain(sessions, fake)
    assert (report.written, report.failed) == (0, 1)
    assert the_writeback(sessions).last_error == "write-back is turned off for the connector Tiny prod"
    assert fake.requests == []


# --- incident creation -----------------------------------------------------------------------------------


def monitoring_incident(sessions: sessionmaker[TenantSession]) -> int:
    """An incident of two alerts on db-01 whose ticket's latest analysis suggests a runbook at 0.87."""
    with sessions.begin() as session:
        runbook = Runbook(
            title="Postgres replication lag",
            status=RunbookStatus.APPROVED,
            content_hash="r",
            external_ref="https://kb.example.com/kb/PG-3",
        )
        session.add(runbook)
        session.flush()
        incident = MonitoringIncident(
            title="db-01: replication lag high",
            severity="critical",
            hosts=["db-01"],
            services=["postgres"],
            opened_at=NOW,
            last_alert_at=NOW + timedelta(minutes=3),
        )
        session.add(incident)
        session.flush()
        ticket = Ticket(
            external_id=f"MON-{incident.id}",
            source_system="monitoring",
            source_instance="",
            kind=TicketKind.ALERT,
            title=incident.title,
            content_hash="m",
        )
        session.add(ticket)
        session.flush()
        incident.ticket_id = ticket.id
        for minute, title, count in ((0, "Replication lag above 30s", 4), (3, "Disk IO wait high", 1)):
            session.add(
                MonitoringAlert(
                    source_system="zabbix",
                    external_id=f"E{minute}",
                    monitor_id=f"trigger-{minute}",
                    fingerprint=f"fp{minute}",
                    title=title,
                    message="",
                    severity="critical" if minute == 0 else "warning",
                    status=AlertStatus.TRIGGERED,
                    host="db-01",
                    service="postgres",
                    first_seen=NOW + timedelta(minutes=minute),
                    last_seen=NOW + timedelta(minutes=minute + 2),
                    occurrence_count=count,
                    incident_id=incident.id,
                )
            )
        for confidence in (0.4, 0.87):  # the later analysis is the current one
            session.add(
                Analysis(
                    ticket_id=ticket.id,
                    decision=AnalysisDecision.LINK_RUNBOOK,
                    confidence=confidence,
                    best_runbook_id=runbook.id,
                    model_id="m",
                    threshold_existing=0.8,
                    threshold_partial=0.5,
                    ticket_content_hash="m",
                )
            )
        return incident.id


def create(
    sessions: sessionmaker[TenantSession], fake: FakeWritableTiny, incident_id: int, config_id: int
) -> CreatedTicket:
    return asyncio.run(
        create_incident_ticket(
            sessions, incident_id, config_id, actor="alice", transport=fake.transport(), sleep=no_sleep
        )
    )


def stored_incident(sessions: sessionmaker[TenantSession], incident_id: int) -> MonitoringIncident:
    with sessions() as session:
        incident = session.get(MonitoringIncident, incident_id)
        assert incident is not None
        return incident


def test_an_incident_is_created_once_with_its_alerts_and_runbook(
    sessions: sessionmaker[TenantSession], fake: FakeWritableTiny
) -> None:
    config = make_config(sessions, fake)
    incident_id = monitoring_incident(sessions)

    created = create(sessions, fake, incident_id, config.id)

    assert created == CreatedTicket("TINY-1", "i1", f"{fake.base_url}/incidents/TINY-1", existed=False)
    [sent] = fake.incidents
    assert sent["correlation_id"] == f"runbook-desk:default:{incident_id}"
    assert (sent["title"], sent["severity"], sent["ci"]) == (
        "db-01: replication lag high",
        "critical",
        "db-01",
    )
    assert sent["description"] == (
        "Monitoring incident opened 2026-05-04 09:00 UTC by Runbook Desk.\n"
        "Hosts: db-01\n"
        "Services: postgres\n"
        "\nAlerts (2):\n"
        "- [critical] Replication lag above 30s (db-01, postgres): first seen 2026-05-04 09:00 UTC, "
        "4 occurrences, last 2026-05-04 09:02 UTC; triggered\n"
        "- [warning] Disk IO wait high (db-01, postgres): first seen 2026-05-04 09:03 UTC; triggered\n"
        "\nSuggested runbook: Postgres replication lag (confidence 87%)\n"
        "https://kb.example.com/kb/PG-3"
    )
    incident = stored_incident(sessions, incident_id)
    assert (
        incident.created_number,
        incident.created_url,
        incident.created_config_id,
        incident.created_by,
    ) == (
        "TINY-1",
        f"{fake.base_url}/incidents/TINY-1",
        config.id,
        "alice",
    )
    [event] = audit(sessions, "incident.ticket_created")
    assert event.entity_id == incident_id and event.after is not None
    assert (event.after["number"], event.after["found_existing"]) == ("TINY-1", False)

    again = create(sessions, fake, incident_id, config.id)
    assert again == CreatedTicket("TINY-1", "TINY-1", f"{fake.base_url}/incidents/TINY-1", existed=True)
    assert fake.posts() == ["POST /api/incidents"]
    assert len(audit(sessions, "incident.ticket_created")) == 1


def test_a_failed_create_raises_audits_nothing_and_can_be_tried_again(
    sessions: sessionmaker[TenantSession], fake: FakeWritableTiny
) -> None:
    config = make_config(sessions, fake)
    incident_id = monitoring_incident(sessions)

    # The lookup by correlation id answers; the POST (and any retry of it) fails.
    async def fail_post_only() -> None:
        original = fake.route

        def route(request: httpx.Request) -> httpx.Response:
            if request.method == "POST":
                return fake.error_response(500, "internal error")
            return original(request)

        fake.route = route  # type: ignore[method-assign]
        try:
            await create_incident_ticket(
                sessions, incident_id, config.id, actor="alice", transport=fake.transport(), sleep=no_sleep
            )
        finally:
            fake.route = original  # type: ignore[method-assign]

    with pytest.raises(ServerError):
        asyncio.run(fail_post_only())
    incident = stored_incident(sessions, incident_id)
    assert (incident.created_number, incident.created_config_id, incident.created_by) == (None, None, None)
    assert audit(sessions, "incident.ticket_created") == []

    created = create(sessions, fake, incident_id, config.id)
    assert created.number == "TINY-1"
    assert len(fake.incidents) == 1


def test_a_create_in_progress_is_refused_and_a_stale_one_finds_the_lost_ticket(
    sessions: sessionmaker[TenantSession], fake: FakeWritableTiny
) -> None:
    config = make_config(sessions, fake)
    incident_id = monitoring_incident(sessions)
    with sessions.begin() as session:  # another window claimed it a minute ago and is posting now
        incident = session.get(MonitoringIncident, incident_id)
        assert incident is not None
        incident.created_config_id, incident.created_by = config.id, "bob"
        incident.created_at = datetime.now(UTC) - timedelta(minutes=1)
    with pytest.raises(IncidentCreationInProgressError, match="bob is creating"):
        create(sessions, fake, incident_id, config.id)
    assert fake.requests == []

    # Bob's app died after the server created the ticket but before the number was stored.
    fake.incidents.append(
        {
            "id": "i1",
            "number": "TINY-1",
            "url": f"{fake.base_url}/incidents/TINY-1",
            "correlation_id": f"runbook-desk:default:{incident_id}",
        }
    )
    with sessions.begin() as session:
        incident = session.get(MonitoringIncident, incident_id)
        assert incident is not None
        incident.created_at = datetime.now(UTC) - timedelta(hours=1)
    created = create(sessions, fake, incident_id, config.id)
    assert (created.number, created.existed) == ("TINY-1", True)
    assert fake.posts() == []  # found by its correlation id, not created twice
    assert stored_incident(sessions, incident_id).created_number == "TINY-1"
    [event] = audit(sessions, "incident.ticket_created")
    assert event.after is not None and event.after["found_existing"] is True


# --- end to end through the real ServiceNow connector and its fake ---------------------------------------


def test_servicenow_end_to_end_sync_approve_post_and_create(sessions: sessionmaker[TenantSession]) -> None:
    from connectors.sync import run_sync
    from tests.connectors.fake_servicenow import FakeServiceNow

    fake_sn = FakeServiceNow()
    fake_sn.add_ticket(fake_sn.new_ticket(1, NOW))
    settings = fake_sn.settings()
    config = create_config(
        sessions,
        connector_type="servicenow",
        name="ServiceNow prod",
        base_url=fake_sn.base_url,
        auth_mode=settings.auth_mode,
        options={**settings.options, "write_back": True},
        secrets=dict(settings.secrets),
        actor="test",
    )
    report = asyncio.run(run_sync(sessions, config.id, transport=fake_sn.transport(), sleep=no_sleep))
    assert report.ok and report.new == 1
    with sessions.begin() as session:
        ticket = session.scalars(select(Ticket)).one()
        runbook = Runbook(
            title="Printer jam: clear tray 2",
            status=RunbookStatus.APPROVED,
            content_hash="r",
            external_ref="https://kb.example.com/kb/PRN-2",
        )
        session.add(runbook)
        session.flush()
        number = ticket.external_id
        approve(session, ticket.id, runbook.id, 0.74, "alice")

    drained = asyncio.run(drain_writebacks(sessions, transport=fake_sn.transport(), sleep=no_sleep))

    assert (drained.written, drained.failed) == (1, 0)
    assert fake_sn.work_notes == {
        number: [
            "Runbook linked by alice in Runbook Desk: Printer jam: clear tray 2 (confidence 74%)\n"
            "https://kb.example.com/kb/PRN-2"
        ]
    }
    assert the_writeback(sessions).status is WritebackStatus.WRITTEN

    incident_id = monitoring_incident(sessions)
    created = asyncio.run(
        create_incident_ticket(
            sessions, incident_id, config.id, actor="alice", transport=fake_sn.transport(), sleep=no_sleep
        )
    )
    [insert] = fake_sn.inserts
    assert insert["correlation_id"] == f"runbook-desk:default:{incident_id}"
    assert insert["short_description"] == "db-01: replication lag high"
    assert "Suggested runbook: Postgres replication lag (confidence 87%)" in insert["description"]
    assert stored_incident(sessions, incident_id).created_number == created.number
    again = asyncio.run(
        create_incident_ticket(
            sessions, incident_id, config.id, actor="alice", transport=fake_sn.transport(), sleep=no_sleep
        )
    )
    assert (again.number, again.existed) == (created.number, True)
    assert len(fake_sn.inserts) == 1
    assert fake_sn.unexpected == []
