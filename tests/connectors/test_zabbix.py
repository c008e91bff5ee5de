"""Zabbix specifics: version-dependent auth, errors inside HTTP 200, sessions, OK events, severities."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest

from connectors.base import CheckProblem, CheckResult, ConnectorKind, Cursor, Page
from connectors.errors import AuthenticationError, RequestRejectedError
from connectors.monitoring.zabbix import SPEC, ZabbixConnector, ZabbixVersion, zabbix_severity
from connectors.registry import connector_class
from connectors.testing.fake_system import FakeTicket
from connectors.testing.standard_suite import StandardMonitoringSuite
from core.monitoring.events import AlertEvent, Severity
from core.store.models import AlertStatus, TicketKind
from core.store.tickets import TicketValues
from tests.connectors.fake_zabbix import API_TOKEN, PASSWORD, FakeZabbix, event_id

T = TypeVar("T")


class TestZabbix60PasswordStandard(StandardMonitoringSuite):
    """Zabbix 6.0 LTS with a user.login session sent in the body's ``auth``."""

    fake_cls = FakeZabbix

    @pytest.fixture
    def fake_factory(self) -> Callable[[], FakeZabbix]:
        return lambda: FakeZabbix("6.0.25", "password")


class TestZabbix72TokenStandard(StandardMonitoringSuite):
    """Zabbix 7.2 with an API token, which only an ``Authorization: Bearer`` header carries."""

    fake_cls = FakeZabbix

    @pytest.fixture
    def fake_factory(self) -> Callable[[], FakeZabbix]:
        return lambda: FakeZabbix("7.2.3", "api_token")


# --- helpers --------------------------------------------------------------------------------------------


async def _no_sleep(_seconds: float) -> None:
    return None


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def connector_for(fake: FakeZabbix, *, good_credentials: bool = True, **kwargs: Any) -> ZabbixConnector:
    settings = fake.settings(good_credentials=good_credentials, **kwargs)
    return ZabbixConnector.create(settings, transport=fake.transport(), sleep=_no_sleep)


def read_all(connector: ZabbixConnector, since: Cursor | None = None, page_size: int = 5) -> list[Page]:
    async def go() -> list[Page]:
        try:
            return [page async for page in connector.fetch(since, page_size=page_size)]
        finally:
            await connector.close()

    return run(go())


def check(connector: ZabbixConnector) -> CheckResult:
    async def go() -> CheckResult:
        try:
            return await connector.check()
        finally:
            await connector.close()

    return run(go())


def events_of(pages: list[Page]) -> list[AlertEvent]:
    return [event for page in pages for event in page.events]


def problem(fake: FakeZabbix, number: int, at: datetime) -> FakeTicket:
    record = fake.new_ticket(number, at)
    fake.add_ticket(record)
    return record


def rpc_calls(fake: FakeZabbix) -> list[tuple[str, dict[str, Any], str | None]]:
    """(method, body, Authorization header) of every JSON-RPC request the fake received."""
    calls = []
    for request in fake.requests:
        body = json.loads(request.content)
        calls.append((body["method"], body, request.headers.get("Authorization")))
    return calls


T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


# --- auth by version --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "name_field", "bearer"),
    [
        ("5.0.40", "user", False),
        ("6.0.25", "username", False),
        ("6.4.12", "username", True),
        ("7.2.3", "username", True),
    ],
)
def test_the_version_decides_the_login_field_and_where_the_session_goes(
    version: str, name_field: str, bearer: bool
) -> None:
    fake = FakeZabbix(version, "password")
    problem(fake, 1, T0)
    pages = read_all(connector_for(fake))
    assert [e.external_id for e in events_of(pages)] == ["97"]
    assert fake.login_params == [{name_field: "Admin", "password": PASSWORD}]
    calls = rpc_calls(fake)
    assert [method for method, _, _ in calls] == [
        "apiinfo.version",
        "user.login",
        "event.get",
        "trigger.get",
        "user.logout",
    ]
    session = "00015d4c3b2a1f0e9d8c7b6a5f4e3d2c1b"
    for method, body, header in calls[:2]:  # never any auth on the version or the login
        assert "auth" not in body and header is None, method
    for method, body, header in calls[2:]:
        if bearer:
            assert header == f"Bearer {session}" and "auth" not in body, method
        else:
            assert body["auth"] == session and header is None, method
    assert all(call[1]["jsonrpc"] == "2.0" for call in calls)
    assert all(r.headers["Content-Type"] == "application/json-rpc" for r in fake.requests)


def test_an_api_token_goes_in_the_bearer_header_and_is_never_logged_out() -> None:
    fake = FakeZabbix("7.2.3", "api_token")
    problem(fake, 1, T0)
    read_all(connector_for(fake))
    calls = rpc_calls(fake)
    assert [method for method, _, _ in calls] == ["apiinfo.version", "event.get", "trigger.get"]
    for _, body, header in calls[1:]:
        assert header == f"Bearer {API_TOKEN}" and "auth" not in body
    assert fake.logouts == []


def test_an_api_token_before_6_4_goes_in_the_body() -> None:
    fake = FakeZabbix("6.0.25", "api_token")
    problem(fake, 1, T0)
    read_all(connector_for(fake))
    method, body, header = rpc_calls(fake)[1]
    assert (method, body["auth"], header) == ("event.get", API_TOKEN, None)


def test_an_api_token_on_a_server_older_than_5_4_is_a_configuration_error() -> None:
    fake = FakeZabbix("5.0.40", "api_token")
    result = check(connector_for(fake))
    assert result.problem is CheckProblem.CONFIGURATION
    assert "Zabbix 5.0.40" in result.message and "5.4" in result.message
    assert API_TOKEN not in result.message
    assert [method for method, _, _ in rpc_calls(fake)] == ["apiinfo.version"]


def test_the_check_names_the_version_found() -> None:
    fake = FakeZabbix("7.0.5", "password")
    result = check(connector_for(fake))
    assert result.ok and "Zabbix 7.0.5" in result.message
    assert fake.logouts == ["00015d4c3b2a1f0e9d8c7b6a5f4e3d2c1b"] and fake.sessions == set()


def test_a_frontend_below_a_path_is_reached_there() -> None:
    fake = FakeZabbix("7.0.5", "password")
    fake.base_url = "https://monitoring.fake.example.com/zabbix"
    problem(fake, 1, T0)
    assert len(events_of(read_all(connector_for(fake)))) == 1
    assert {r.url.path for r in fake.requests} == {"/zabbix/api_jsonrpc.php"}


# --- errors inside HTTP 200 --------------------------------------------------------------------------------


def test_a_wrong_password_is_an_authentication_error_naming_the_login() -> None:
    fake = FakeZabbix("7.0.5", "password")
    result = check(connector_for(fake, good_credentials=False))
    assert result.problem is CheckProblem.AUTHENTICATION
    assert "user.login" in result.message and "Incorrect user name or password" in result.message
    assert "wrong-password" not in result.message
    assert len(fake.requests) == 2  # the version, the login: no retry


def test_an_error_in_a_200_names_the_method_and_the_server_text_and_is_not_retried() -> None:
    fake = FakeZabbix("7.0.5", "api_token")
    problem(fake, 1, T0)
    data = 'Invalid parameter "/sortfield/1": value must be one of "eventid", "objectid", "clock".'
    fake.answer_error("event.get", -32602, "Invalid params.", data)
    with pytest.raises(RequestRejectedError) as caught:
        read_all(connector_for(fake))
    message = str(caught.value)
    assert message.startswith(
        "Zabbix 7.0.5: HTTP 200 on POST /api_jsonrpc.php: event.get: Invalid params. (-32602)"
    )
    assert data in message
    assert [method for method, _, _ in rpc_calls(fake)] == ["apiinfo.version", "event.get"]


def test_no_permission_is_a_permission_problem() -> None:
    fake = FakeZabbix("6.0.25", "api_token")
    fake.answer_error("event.get", -32500, "Application error.", 'No permissions to call "event.get".')
    result = check(connector_for(fake))
    assert result.problem is CheckProblem.PERMISSION and "event.get" in result.message


def test_a_terminated_session_logs_in_again_once_and_the_sync_goes_on() -> None:
    fake = FakeZabbix("6.0.25", "password")
    for number in range(1, 8):
        problem(fake, number, T0 + timedelta(minutes=number))
    connector = connector_for(fake)

    async def go() -> list[str]:
        read: list[str] = []
        try:
            async for page in connector.fetch(None, page_size=5):
                if not read:
                    fake.expire_sessions()  # the session times out between the first two pages
                read += [e.external_id for e in page.events]
        finally:
            await connector.close()
        return read

    assert run(go()) == [event_id(n) for n in range(1, 8)]
    assert fake.logins == 2
    assert fake.logouts == ["00025d4c3b2a1f0e9d8c7b6a5f4e3d2c1b"]


def test_a_session_ended_at_once_again_is_an_authentication_error() -> None:
    fake = FakeZabbix("7.0.5", "password")
    problem(fake, 1, T0)
    fake.answer_error("event.get", -32602, "Invalid params.", "Session terminated, re-login, please.")
    with pytest.raises(AuthenticationError) as caught:
        read_all(connector_for(fake))
    assert "Session terminated" in str(caught.value)
    assert fake.logins == 2  # one new login, then the error stands


def test_a_malformed_version_answer_is_a_bad_response() -> None:
    fake = FakeZabbix("not-a-version", "password")
    result = check(connector_for(fake))
    assert result.problem is CheckProblem.BAD_RESPONSE and "apiinfo.version" in result.message


# --- events -----------------------------------------------------------------------------------------------


def test_string_values_are_parsed_into_an_alert_event() -> None:
    fake = FakeZabbix("7.0.5", "api_token")
    record = problem(fake, 3, T0)  # severity "3": average
    (event,) = events_of(read_all(connector_for(fake)))
    assert event.external_id == "111" and event.monitor_id == "20003"
    assert event.occurred_at == event.updated_at == T0
    assert event.title == "Interface eth0: Link down on srv-03" == record.title
    assert (event.severity, event.status, event.resolved_at) == (
        Severity.WARNING,
        AlertStatus.TRIGGERED,
        None,
    )
    assert (event.host, event.service) == ("srv-03", "network")
    assert event.tags == ("service:network", "scope:availability")
    assert event.message == (
        "PROBLEM: Interface eth0: Link down on srv-03\nSeverity: average\nHost: Server SRV-03 (srv-03)\n"
        "Tags: service:network, scope:availability"
    )
    assert event.source_url == "https://zabbix.fake.example.com/tr_events.php?triggerid=20003&eventid=111"
    assert event.raw_payload["clock"] == str(int(T0.timestamp()))


@pytest.mark.parametrize(
    ("zabbix", "ours"),
    [
        ("0", Severity.INFO),
        ("1", Severity.INFO),
        ("2", Severity.WARNING),
        ("3", Severity.WARNING),
        ("4", Severity.HIGH),
        ("5", Severity.CRITICAL),
        (5, Severity.CRITICAL),
    ],
)
def test_severity_mapping(zabbix: Any, ours: Severity) -> None:
    assert zabbix_severity(zabbix) is ours


@pytest.mark.parametrize("bad", ["6", "-1", "high", None])
def test_a_severity_outside_zabbix_s_scale_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="severity"):
        zabbix_severity(bad)


def test_an_unreadable_event_is_one_failure_and_the_rest_are_read() -> None:
    fake = FakeZabbix("7.0.5", "api_token")
    problem(fake, 1, T0)
    broken = problem(fake, 2, T0 + timedelta(minutes=1))
    broken.extra["severity"] = "urgent"
    problem(fake, 3, T0 + timedelta(minutes=2))
    pages = read_all(connector_for(fake))
    assert [e.external_id for e in events_of(pages)] == ["97", "111"]
    (failure,) = [f for page in pages for f in page.failures]
    assert failure.external_id == "104" and "severity" in failure.reason


def test_an_ok_event_resolves_its_problem_with_the_same_fingerprint() -> None:
    fake = FakeZabbix("7.0.5", "api_token")
    fired = problem(fake, 1, T0)
    fake.recover(fired, T0 + timedelta(minutes=7))
    first, ok = events_of(read_all(connector_for(fake)))
    assert (ok.status, ok.resolved_at, ok.severity) == (
        AlertStatus.RESOLVED,
        T0 + timedelta(minutes=7),
        Severity.INFO,
    )
    assert ok.fingerprint == first.fingerprint and ok.monitor_id == first.monitor_id == "20001"
    assert ok.message.startswith("OK: ")
    # The problem read after its recovery says so through r_eventid: resolved at the OK event's time.
    assert (first.status, first.resolved_at) == (AlertStatus.RESOLVED, T0 + timedelta(minutes=7))


def test_a_recovery_on_a_later_page_is_looked_up_once_per_page() -> None:
    fake = FakeZabbix("7.0.5", "api_token")
    fired = [problem(fake, n, T0 + timedelta(minutes=n)) for n in range(1, 6)]
    fake.recover(fired[0], T0 + timedelta(hours=1))
    fake.recover(fired[2], T0 + timedelta(hours=2))
    events = events_of(read_all(connector_for(fake), page_size=3))
    by_id = {e.external_id: e for e in events}
    assert by_id[fired[0].external_id].resolved_at == T0 + timedelta(hours=1)
    assert by_id[fired[2].external_id].resolved_at == T0 + timedelta(hours=2)
    assert by_id[fired[1].external_id].status is AlertStatus.TRIGGERED
    lookups = [
        body for method, body, _ in rpc_calls(fake) if method == "event.get" and "eventids" in body["params"]
    ]
    assert [body["params"]["eventids"] for body in lookups] == [
        [fired[0].extra["r_eventid"], fired[2].extra["r_eventid"]]
    ]


def test_an_acknowledged_problem_is_acknowledged() -> None:
    fake = FakeZabbix("7.0.5", "api_token")
    problem(fake, 1, T0).extra["acknowledged"] = "1"
    (event,) = events_of(read_all(connector_for(fake)))
    assert event.status is AlertStatus.ACKNOWLEDGED


# --- keyset paging on numeric ids -------------------------------------------------------------------------


def test_pages_start_after_the_last_id_numerically_and_a_resume_at_the_cursor_id() -> None:
    fake = FakeZabbix("7.0.5", "api_token")
    for number in range(1, 13):  # ids 97 .. 174: two digits, then three
        problem(fake, number, T0 + timedelta(minutes=number))
    pages = read_all(connector_for(fake), page_size=2)
    starts = [
        body["params"].get("eventid_from") for method, body, _ in rpc_calls(fake) if method == "event.get"
    ]
    assert starts == [None, "105", "119", "133", "147", "161", "175"]
    assert pages[-1].cursor == Cursor(T0 + timedelta(minutes=12), "174")
    assert pages[0].cursor == Cursor(T0 + timedelta(minutes=2), "104")

    fake.requests.clear()
    again = read_all(connector_for(fake), since=Cursor(T0 + timedelta(minutes=3), "111"), page_size=100)
    (first_listing,) = [body for method, body, _ in rpc_calls(fake) if method == "event.get"]
    assert first_listing["params"]["eventid_from"] == "111"
    assert [e.external_id for e in events_of(again)][:2] == ["111", "118"]


def test_only_the_event_that_set_the_cursor_counts_as_stored() -> None:
    def record(external_id: str) -> TicketValues:
        empty: dict[str, Any] = dict.fromkeys(
            ("status", "severity", "assignee", "category", "configuration_item", "resolution_notes"), None
        )
        return TicketValues(
            external_id=external_id,
            source_system="zabbix",
            title="x",
            description="",
            kind=TicketKind.ALERT,
            resolved_at=None,
            created_at=T0,
            updated_at=T0,
            source_url=None,
            raw_payload={},
            **empty,
        )

    connector = connector_for(FakeZabbix())
    cursor = Cursor(T0, "97")
    assert connector.already_stored(record("97"), cursor)
    assert not connector.already_stored(record("100"), cursor)  # "100" < "97" as strings, not as numbers
    run(connector.close())


def test_the_version_string_parses() -> None:
    assert ZabbixVersion.parse("7.0.5").at_least((6, 4))
    assert not ZabbixVersion.parse("6.0.0rc1").at_least((6, 4))
    assert str(ZabbixVersion.parse("5.4.12")) == "5.4.12"
    with pytest.raises(ValueError, match="not a Zabbix version"):
        ZabbixVersion.parse("<html>")


def test_the_spec_is_registered_and_says_monitoring() -> None:
    assert connector_class("zabbix") is ZabbixConnector
    assert SPEC.kind is ConnectorKind.MONITORING
    assert SPEC.secret_keys("api_token") == ("api_token",) and SPEC.secret_keys("password") == ("password",)


# --- trigger expressions ------------------------------------------------------------------------------------


def test_trigger_expressions_are_read_once_per_trigger_per_sync() -> None:
    fake = FakeZabbix("7.0.5", "api_token")
    first = problem(fake, 1, T0)
    first.extra["expression"] = "min(/db-01/pgsql.connections,5m)>=max_connections*0.9"
    first.extra["recovery_expression"] = "max(/db-01/pgsql.connections,5m)<max_connections*0.8"
    for number in range(2, 5):
        problem(fake, number, T0 + timedelta(minutes=number))
    fake.repeat(first, 5, T0 + timedelta(minutes=10))  # page 3: its trigger was read on page 1
    events = events_of(read_all(connector_for(fake), page_size=2))
    assert events[0].expression == (
        "min(/db-01/pgsql.connections,5m)>=max_connections*0.9\n"
        "Recovery: max(/db-01/pgsql.connections,5m)<max_connections*0.8"
    )
    assert events[1].expression == "last(/srv-02/system.cpu.util)>90"
    assert events[-1].expression == events[0].expression
    asked = [b["params"]["triggerids"] for m, b, _ in rpc_calls(fake) if m == "trigger.get"]
    assert asked == [["20001", "20002"], ["20003", "20004"]]  # none for page 3
    assert all(b["params"]["expandExpression"] is True for m, b, _ in rpc_calls(fake) if m == "trigger.get")


def test_a_deleted_trigger_leaves_its_events_without_an_expression() -> None:
    fake = FakeZabbix("7.0.5", "api_token")
    problem(fake, 1, T0)
    fake.deleted_triggers.add("20001")
    (event,) = events_of(read_all(connector_for(fake)))
    assert event.expression is None and event.title


def test_expressions_can_be_turned_off() -> None:
    fake = FakeZabbix("7.0.5", "api_token")
    problem(fake, 1, T0)
    (event,) = events_of(read_all(connector_for(fake, fetch_expressions=False)))
    assert event.expression is None
    assert [m for m, _, _ in rpc_calls(fake)] == ["apiinfo.version", "event.get"]


# --- the fake is as strict as the servers, so the auth tests above can fail ---------------------------------


@pytest.mark.parametrize(
    ("version", "body_auth", "header", "expected"),
    [
        ("7.2.3", True, False, 'unexpected parameter "auth"'),  # 7.2 removed the body field
        ("6.0.25", False, True, "Not authorized."),  # before 6.4 the header means nothing
        ("5.0.40", False, True, "Not authorised."),
        ("7.0.5", True, True, None),  # 6.4 to 7.0 take either
    ],
)
def test_the_fake_refuses_auth_where_that_version_does(
    version: str, body_auth: bool, header: bool, expected: str | None
) -> None:
    fake = FakeZabbix(version, "api_token")
    fake.sessions.add("s1")
    body: dict[str, Any] = {
        "jsonrpc": "2.0",
        "method": "event.get",
        "params": {"limit": 1, "sortfield": ["eventid"], "sortorder": "ASC"},
        "id": 1,
    }
    if body_auth:
        body["auth"] = "s1"
    headers = {"Content-Type": "application/json-rpc", **({"Authorization": "Bearer s1"} if header else {})}
    response = fake.handle(
        httpx.Request("POST", f"{fake.base_url}/api_jsonrpc.php", json=body, headers=headers)
    )
    assert response.status_code == 200
    answer = response.json()
    if expected is None:
        assert answer["result"] == []
    else:
        assert expected in answer["error"]["data"]


def test_the_fake_refuses_auth_on_the_version_call() -> None:
    fake = FakeZabbix("7.0.5", "api_token")
    body = {"jsonrpc": "2.0", "method": "apiinfo.version", "params": [], "id": 1}
    headers = {"Content-Type": "application/json-rpc", "Authorization": f"Bearer {API_TOKEN}"}
    answer = fake.handle(
        httpx.Request("POST", f"{fake.base_url}/api_jsonrpc.php", json=body, headers=headers)
    ).json()
    assert (
        answer["error"]["data"] == 'The "apiinfo.version" method must be called without the "auth" parameter.'
    )
