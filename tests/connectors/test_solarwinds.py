"""SolarWinds Orion specifics: SWIS dates, "null" contexts, SWQL parameters, resets, acks, 403s."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from connectors.base import CheckProblem, ConnectorSettings, Cursor, Page
from connectors.errors import AuthenticationError, ConfigurationError
from connectors.monitoring.solarwinds import (
    SPEC,
    SolarWindsConnector,
    api_base_url,
    history_query,
    parse_swis_time,
    solarwinds_severity,
    swis_context,
    swis_time_text,
)
from connectors.testing.fake_system import InjectedFailure
from connectors.testing.standard_suite import START, SleepRecorder, StandardMonitoringSuite
from core.monitoring.events import AlertEvent, Severity
from core.store.models import AlertStatus, MonitoringAlert, MonitoringEvent, TicketKind
from core.store.tenancy import TenantSession
from core.store.tickets import TicketValues
from tests.connectors.fake_solarwinds import FakeSolarWinds

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


async def _no_sleep(_seconds: float) -> None:
    return None


def connector_for(fake: FakeSolarWinds, **options: Any) -> SolarWindsConnector:
    return SolarWindsConnector.create(fake.settings(**options), transport=fake.transport(), sleep=_no_sleep)


async def _pages(connector: SolarWindsConnector, since: Cursor | None, page_size: int) -> list[Page]:
    try:
        return [page async for page in connector.fetch(since, page_size=page_size)]
    finally:
        await connector.close()


def events_of(fake: FakeSolarWinds, since: Cursor | None = None, page_size: int = 5) -> list[AlertEvent]:
    pages = run(_pages(connector_for(fake), since, page_size))
    return [event for page in pages for event in page.events]


# --- values ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "moment", "seven"),
    [
        ("2026-03-02T08:15:30.1234567Z", datetime(2026, 3, 2, 8, 15, 30, 123456, tzinfo=UTC), "1234567"),
        ("2026-03-02T08:15:30.1234567", datetime(2026, 3, 2, 8, 15, 30, 123456, tzinfo=UTC), "1234567"),
        ("2026-03-02T08:15:30.5", datetime(2026, 3, 2, 8, 15, 30, 500000, tzinfo=UTC), "5000000"),
        ("2026-03-02T08:15:30", datetime(2026, 3, 2, 8, 15, 30, tzinfo=UTC), "0000000"),
        ("2026-03-02 08:15:30.0000001Z", datetime(2026, 3, 2, 8, 15, 30, tzinfo=UTC), "0000001"),
        ("2026-03-02T10:15:30.25+02:00", datetime(2026, 3, 2, 8, 15, 30, 250000, tzinfo=UTC), "2500000"),
    ],
)
def test_swis_dates_with_and_without_z_and_seven_digits(text: str, moment: datetime, seven: str) -> None:
    parsed = parse_swis_time(text)
    assert parsed is not None
    assert parsed.moment == moment
    assert parsed.text == f"{moment:%Y-%m-%dT%H:%M:%S}.{seven}"  # UTC, all seven digits, no zone


def test_a_date_that_is_not_one_is_a_value_error_and_empty_is_none() -> None:
    assert parse_swis_time(None) is None and parse_swis_time("") is None
    with pytest.raises(ValueError, match="not a SWIS date"):
        parse_swis_time("yesterday")


def test_a_cursor_time_as_a_swis_parameter() -> None:
    assert swis_time_text(datetime(2026, 3, 2, 8, 0, 0, 5, tzinfo=UTC)) == "2026-03-02T08:00:00.0000050"


def test_context_null_string_json_and_other() -> None:
    assert swis_context("null") is None
    assert swis_context(None) is None
    assert swis_context(' {"NodeID": 7} ') == {"NodeID": 7}
    assert swis_context("not json") == "not json"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, Severity.INFO),
        (1, Severity.WARNING),
        (2, Severity.CRITICAL),
        (3, Severity.HIGH),
        (4, Severity.INFO),
        ("2", Severity.CRITICAL),
        (None, Severity.WARNING),
        (17, Severity.WARNING),
    ],
)
def test_severity_mapping(value: Any, expected: Severity) -> None:
    assert solarwinds_severity(value) is expected


@pytest.mark.parametrize(
    ("base_url", "options", "expected"),
    [
        ("orion.example.com", {}, "https://orion.example.com:17774"),
        ("https://orion.example.com", {"port": 17778}, "https://orion.example.com:17778"),
        ("https://orion.example.com:443/", {"port": 17778}, "https://orion.example.com:443"),
        (
            "https://orion.example.com:17774/SolarWinds/InformationService/v3/Json/Query",
            {},
            "https://orion.example.com:17774",
        ),
    ],
)
def test_the_address_gets_the_swis_port(base_url: str, options: dict[str, Any], expected: str) -> None:
    assert api_base_url(ConnectorSettings("Orion", base_url, "basic", options)) == expected


def test_an_empty_address_or_user_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="address is not set"):
        api_base_url(ConnectorSettings("Orion", " ", "basic"))
    with pytest.raises(ConfigurationError, match="user name is not set"):
        SolarWindsConnector.client_options(
            ConnectorSettings("Orion", "orion", "basic", {}, {"password": "x"})
        )


def test_the_wizard_offers_the_port_with_its_history() -> None:
    port = SPEC.field("port")
    assert port.default == 17774 and port.page == "where"
    assert "17778" in port.help and "2023.1" in port.help
    assert SPEC.field("password").secret


# --- records --------------------------------------------------------------------------------------------


def test_a_trigger_row_becomes_an_alert_event_with_its_fields() -> None:
    fake = FakeSolarWinds()
    fake.add_ticket(fake.new_ticket(12, START))
    [event] = events_of(fake)
    assert event.external_id == "12"
    assert event.source_system == "solarwinds"
    assert event.monitor_id == "52:912"  # AlertID:AlertObjectID
    assert event.title == "High CPU load on srv-12"
    assert event.message == "CPU load on srv-12 is 92 % for 5 minutes"
    assert event.severity is Severity.CRITICAL  # 12 % 5 == 2: Critical
    assert event.status is AlertStatus.TRIGGERED
    assert event.host == "srv-12" and event.service is None
    assert event.expression == "Fires when the CPU load stays above 90 % for 5 minutes"
    assert event.tags == ("entity:Orion.Nodes", "event:triggered")
    assert event.occurred_at == event.updated_at == START
    assert event.resolved_at is None
    assert event.source_url == (
        "https://orion.fake.example.com/Orion/NetPerfMon/ActiveAlertDetails.aspx?NetObject=AAT:912"
    )
    assert event.raw_payload["Context"] == {"NodeID": 12}
    assert event.raw_payload["TimeStamp"] == "2026-03-02T08:00:00.0000002"  # even id: no Z


def test_a_null_context_and_a_z_date_are_read() -> None:
    fake = FakeSolarWinds()
    fake.add_ticket(fake.new_ticket(7, START + timedelta(microseconds=31)))
    [event] = events_of(fake)
    assert event.raw_payload["TimeStamp"] == "2026-03-02T08:00:00.0000317Z"
    assert event.raw_payload["Context"] is None
    assert event.occurred_at == START + timedelta(microseconds=31)


def test_an_interface_alert_names_the_node_as_host_and_the_interface_as_service() -> None:
    fake = FakeSolarWinds()
    row = fake.new_ticket(3, START)
    row.extra.update(entity="Ethernet0/1 · uplink", entity_type="Orion.NPM.Interfaces", node="core-sw-01")
    fake.add_ticket(row)
    [event] = events_of(fake)
    assert (event.host, event.service) == ("core-sw-01", "Ethernet0/1 · uplink")
    assert event.tags[0] == "entity:Orion.NPM.Interfaces"


def test_reset_and_acknowledgement_rows_share_the_trigger_fingerprint() -> None:
    fake = FakeSolarWinds()
    trigger = fake.new_ticket(1, START)
    fake.add_ticket(trigger)
    fake.acknowledge(trigger, START + timedelta(minutes=3), account="alice")
    fake.recover(trigger, START + timedelta(minutes=9))
    triggered, acknowledged, reset = events_of(fake)
    assert [e.status for e in (triggered, acknowledged, reset)] == [
        AlertStatus.TRIGGERED,
        AlertStatus.ACKNOWLEDGED,
        AlertStatus.RESOLVED,
    ]
    assert triggered.fingerprint == acknowledged.fingerprint == reset.fingerprint
    assert acknowledged.message == "Acknowledged by alice: Looking into it"
    assert reset.resolved_at == START + timedelta(minutes=9)


def test_only_state_changes_are_asked_for() -> None:
    """Notes and action results (EventType 3..7) are filtered by the server, not read and dropped."""
    fake = FakeSolarWinds()
    trigger = fake.new_ticket(1, START)
    fake.add_ticket(trigger)
    fake.add_row(trigger, 6, START + timedelta(minutes=1), message="Email sent")
    fake.add_row(trigger, 3, START + timedelta(minutes=2), message="a note")
    assert [e.external_id for e in events_of(fake)] == ["1"]
    assert "ah.EventType IN (0, 1, 2, 8)" in fake.queries[-1]["query"]


# --- SWQL -----------------------------------------------------------------------------------------------


def test_values_travel_as_parameters_never_in_the_swql_text() -> None:
    """Every listing sends the one fixed query text; the cursor's time and id are typed parameters."""
    fake = FakeSolarWinds()
    for number in range(1, 12):
        fake.add_ticket(fake.new_ticket(number, START + timedelta(minutes=number)))
    since = Cursor(START + timedelta(minutes=2), "2) OR 1=1 --")
    events = events_of(fake, since, page_size=4)
    assert [e.external_id for e in events] == [str(n) for n in range(2, 12)]  # 1 s lookback: from 2 on
    listings = [q for q in fake.queries if "FROM Orion.AlertHistory ah" in q["query"]]
    assert len(listings) == 3  # 4 + 4 + 2
    assert {q["query"] for q in listings} == {history_query(4, keyset=True)}
    assert listings[0]["parameters"] == {"since": "2026-03-02T08:01:59.0000000", "after_id": -1}
    assert listings[1]["parameters"] == {"since": "2026-03-02T08:05:00.0000005", "after_id": 5}
    for body in listings:
        assert "'" not in body["query"] and "2026" not in body["query"] and "OR 1=1" not in body["query"]


def test_a_full_sync_starts_without_a_keyset_and_pages_by_time_then_id() -> None:
    fake = FakeSolarWinds()
    for number in range(1, 11):  # ids 1..10, all at one instant: the id alone orders them (10 after 9)
        row = fake.new_ticket(number, START)
        row.extra["tick"] = 0
        fake.add_ticket(row)
    events = events_of(fake, None, page_size=3)
    assert [e.external_id for e in events] == [str(n) for n in range(1, 11)]
    assert fake.queries[0]["parameters"] == {}
    assert fake.queries[1]["parameters"] == {"since": "2026-03-02T08:00:00.0000000", "after_id": 3}


def test_rows_apart_by_the_seventh_digit_alone_are_neither_lost_nor_repeated() -> None:
    """Ticks the microsecond cannot hold: the keyset sends back the server's own 7-digit text."""
    fake = FakeSolarWinds()
    for number, tick in ((1, 3), (2, 9), (3, 1)):  # 3 sorts before 1 by its seventh digit
        row = fake.new_ticket(number, START)
        row.extra["tick"] = tick
        fake.add_ticket(row)
    events = events_of(fake, None, page_size=1)
    assert [e.external_id for e in events] == ["3", "1", "2"]
    assert fake.queries[2]["parameters"] == {"since": "2026-03-02T08:00:00.0000003", "after_id": 1}


def test_numeric_ids_at_the_cursor_instant_compare_as_numbers() -> None:
    connector = connector_for(FakeSolarWinds())
    cursor = Cursor(START, "10")

    def at(external_id: str) -> TicketValues:
        return TicketValues(
            external_id=external_id,
            source_system="solarwinds",
            title="t",
            description="",
            status=None,
            severity=None,
            assignee=None,
            kind=TicketKind.ALERT,
            category=None,
            configuration_item=None,
            resolution_notes=None,
            resolved_at=None,
            created_at=START,
            updated_at=START,
            source_url=None,
            raw_payload={},
        )

    assert connector.already_stored(at("9"), cursor)  # "9" > "10" as strings
    assert connector.already_stored(at("10"), cursor)
    assert not connector.already_stored(at("11"), cursor)
    run(connector.close())


# --- errors and TLS -------------------------------------------------------------------------------------


def test_a_wrong_password_403_without_a_message_is_authentication() -> None:
    fake = FakeSolarWinds()
    connector = SolarWindsConnector.create(
        fake.settings(good_credentials=False), transport=fake.transport(), sleep=_no_sleep
    )
    with pytest.raises(AuthenticationError, match="authentication failed: SWIS refused the user name"):
        run(connector.probe())
    run(connector.close())


def test_a_403_with_a_swis_message_is_a_permission_problem_and_says_it() -> None:
    fake = FakeSolarWinds()
    fake.denied_message = "Access to Orion.AlertHistory denied for CORP\\svc-runbook"
    connector = connector_for(fake)
    result = run(connector.check())
    run(connector.close())
    assert result.problem is CheckProblem.PERMISSION
    assert (
        "Access to Orion.AlertHistory denied for CORP\\svc-runbook (InfoServiceFaultContract)"
        in result.message
    )
    assert "at SolarWinds" not in result.message  # never the server's stack trace
    assert "alert viewing rights" in result.hint


def test_a_bad_query_400_surfaces_the_swis_message() -> None:
    fake = FakeSolarWinds()
    fake.fail_next(InjectedFailure(400, message="Cannot resolve property Bogus on Orion.AlertHistory"))
    connector = connector_for(fake)
    result = run(connector.check())
    run(connector.close())
    assert result.problem is CheckProblem.OTHER
    assert "HTTP 400 on POST /SolarWinds/InformationService/v3/Json/Query" in result.message
    assert "Cannot resolve property Bogus on Orion.AlertHistory" in result.message


def test_the_ca_bundle_verifies_a_self_signed_server(tmp_path: Path) -> None:
    """The config's CA bundle reaches the client's TLS context; verification is never turned off."""
    bundle = tmp_path / "orion-ca.pem"
    bundle.write_bytes(self_signed_ca_pem("Orion Self-Signed CA"))
    fake = FakeSolarWinds()
    settings = fake.settings()
    with_bundle = ConnectorSettings(
        settings.name, settings.base_url, settings.auth_mode, settings.options, settings.secrets, str(bundle)
    )
    captured: list[Any] = []
    original = httpx.AsyncClient.__init__

    def spy(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
        captured.append(kwargs.get("verify"))
        original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpx.AsyncClient, "__init__", spy)
        connector = SolarWindsConnector.create(with_bundle, transport=fake.transport(), sleep=_no_sleep)
    run(connector.close())
    [verify] = captured
    assert isinstance(verify, ssl.SSLContext)
    assert verify.verify_mode is ssl.CERT_REQUIRED
    subjects = [cert["subject"] for cert in verify.get_ca_certs()]
    assert subjects == [((("commonName", "Orion Self-Signed CA"),),)]


def self_signed_ca_pem(common_name: str) -> bytes:
    """A self-signed CA certificate (as Orion's installer makes one), PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


# --- through the store ----------------------------------------------------------------------------------


class TestSolarWindsStandard(StandardMonitoringSuite):
    """The standard suite, plus the dedupe path of SolarWinds' own rows (cleared by hand, acknowledged)."""

    fake_cls = FakeSolarWinds

    def test_a_cleared_alert_is_resolved(
        self, fake: FakeSolarWinds, sessions: sessionmaker[TenantSession], sleeps: SleepRecorder
    ) -> None:
        trigger = fake.new_ticket(1, START)
        fake.add_ticket(trigger)
        config = self.make_config(sessions, fake)
        assert self.sync(sessions, fake, config, sleeps).ok
        fake.add_row(trigger, 8, START + timedelta(minutes=20), message="Cleared by bob")
        report = self.sync(sessions, fake, config, sleeps)
        assert report.ok and report.new == 1
        alert = self.alert_of(sessions, "1")
        assert alert.status is AlertStatus.RESOLVED
        assert alert.resolved_at == START + timedelta(minutes=20)
        assert alert.occurrence_count == 1

    def test_an_acknowledgement_marks_the_alert_acknowledged(
        self, fake: FakeSolarWinds, sessions: sessionmaker[TenantSession], sleeps: SleepRecorder
    ) -> None:
        trigger = fake.new_ticket(1, START)
        fake.add_ticket(trigger)
        config = self.make_config(sessions, fake)
        assert self.sync(sessions, fake, config, sleeps).ok
        fake.acknowledge(trigger, START + timedelta(minutes=5))
        assert self.sync(sessions, fake, config, sleeps).ok
        alert = self.alert_of(sessions, "1")
        assert alert.status is AlertStatus.ACKNOWLEDGED
        with sessions() as session:
            assert session.scalar(
                select(MonitoringEvent.status).where(MonitoringEvent.external_id == "2")
            ) is (AlertStatus.ACKNOWLEDGED)
            assert len(list(session.scalars(select(MonitoringAlert)))) == 1
        assert json.dumps(alert.raw_payload)  # stored payload stays JSON

    def test_an_acknowledgement_is_not_one_more_firing(
        self, fake: FakeSolarWinds, sessions: sessionmaker[TenantSession], sleeps: SleepRecorder
    ) -> None:
        trigger = fake.new_ticket(1, START)
        fake.add_ticket(trigger)
        config = self.make_config(sessions, fake)
        fake.acknowledge(trigger, START + timedelta(minutes=5))
        assert self.sync(sessions, fake, config, sleeps).ok
        alert = self.alert_of(sessions, "1")
        assert (alert.status, alert.occurrence_count) == (AlertStatus.ACKNOWLEDGED, 1)
