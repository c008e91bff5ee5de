"""Datadog-specific behaviour; the common contract is :class:`TestDatadogStandard` (the standard suite).

Shapes follow Datadog's API reference and the generated ``datadog-api-client`` models (``EventAttributes``,
``MonitorType``): see :mod:`tests.connectors.fake_datadog`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from connectors.base import CheckProblem, CheckResult, ConnectorSettings, Cursor, Page
from connectors.configs import create_config
from connectors.errors import ConfigurationError
from connectors.monitoring.datadog import SITES, DatadogConnector, clean_title, site_of
from connectors.sync import SyncReport, run_sync
from connectors.testing.fake_system import FakeTicket, InjectedFailure
from connectors.testing.standard_suite import SleepRecorder, StandardMonitoringSuite
from core.monitoring.events import Severity
from core.store.models import AlertStatus, MonitoringAlert
from core.store.tenancy import TenantSession
from tests.connectors.fake_datadog import (
    APPLICATION_KEY,
    EVT_ID_BASE,
    FakeDatadog,
    data_id,
    rate_limit_headers,
)

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


class TestDatadogStandard(StandardMonitoringSuite):
    fake_cls = FakeDatadog


# --- helpers ---------------------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeDatadog]:
    system = FakeDatadog()
    yield system
    assert system.unexpected == []


def with_options(settings: ConnectorSettings, **changes: Any) -> ConnectorSettings:
    base_url = changes.pop("base_url", settings.base_url)
    secrets = dict(settings.secrets) | changes.pop("secrets", {})
    return ConnectorSettings(
        settings.name, base_url, settings.auth_mode, dict(settings.options) | changes, secrets
    )


def connect(
    fake: FakeDatadog, settings: ConnectorSettings | None = None, sleep: SleepRecorder | None = None
) -> DatadogConnector:
    return DatadogConnector.create(
        settings or fake.settings(), transport=fake.transport(), sleep=sleep or SleepRecorder()
    )


def pages(connector: DatadogConnector, since: Cursor | None = None, page_size: int = 50) -> list[Page]:
    async def go() -> list[Page]:
        try:
            return [page async for page in connector.fetch(since, page_size=page_size)]
        finally:
            await connector.close()

    return asyncio.run(go())


def check(connector: DatadogConnector) -> CheckResult:
    async def go() -> CheckResult:
        try:
            return await connector.check()
        finally:
            await connector.close()

    return asyncio.run(go())


def add(fake: FakeDatadog, number: int, at: datetime, **extra: Any) -> FakeTicket:
    ticket = fake.new_ticket(number, at)
    ticket.extra.update(extra)
    fake.add_ticket(ticket)
    return ticket


def sync(sessions: sessionmaker[TenantSession], fake: FakeDatadog, sleeps: SleepRecorder) -> SyncReport:
    settings = fake.settings()
    config = create_config(
        sessions,
        connector_type="datadog",
        name=f"{settings.name} {len(fake.requests)}",
        base_url=settings.base_url,
        options=dict(settings.options),
        secrets=dict(settings.secrets),
    )
    return asyncio.run(run_sync(sessions, config.id, transport=fake.transport(), sleep=sleeps))


def alerts(sessions: sessionmaker[TenantSession]) -> list[MonitoringAlert]:
    with sessions() as session:
        rows = list(session.scalars(select(MonitoringAlert).order_by(MonitoringAlert.id)))
        session.expunge_all()
        return rows


# --- the site decides the host ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("site", "api_url", "app_host"),
    [
        ("datadoghq.com", "https://api.datadoghq.com", "app.datadoghq.com"),
        ("us3.datadoghq.com", "https://api.us3.datadoghq.com", "us3.datadoghq.com"),
        ("us5.datadoghq.com", "https://api.us5.datadoghq.com", "us5.datadoghq.com"),
        ("datadoghq.eu", "https://api.datadoghq.eu", "app.datadoghq.eu"),
        ("ap1.datadoghq.com", "https://api.ap1.datadoghq.com", "ap1.datadoghq.com"),
        ("ddog-gov.com", "https://api.ddog-gov.com", "app.ddog-gov.com"),
    ],
)
def test_the_site_decides_the_api_host_and_the_links(site: str, api_url: str, app_host: str) -> None:
    fake = FakeDatadog(site=site, api_host=api_url.removeprefix("https://"))
    add(fake, 1, T0)
    (page,) = pages(connect(fake))
    assert {str(r.url.copy_with(path="/", query=None)) for r in fake.requests} == {api_url + "/"}
    (event,) = page.events
    assert event.source_url == f"https://{app_host}/monitors/1001"
    assert site_of(fake.settings()) is SITES[site]


def test_an_address_of_another_site_is_refused_before_any_request(fake: FakeDatadog) -> None:
    settings = with_options(fake.settings(), site="datadoghq.eu")  # the address is still US1's
    with pytest.raises(ConfigurationError) as refused:
        connect(fake, settings)
    assert "the EU1 site's API is at https://api.datadoghq.eu" in str(refused.value)
    assert fake.requests == []


def test_a_relay_of_ones_own_stands_in_for_the_site() -> None:
    fake = FakeDatadog(site="datadoghq.eu", api_host="datadog-relay.corp.example")
    add(fake, 1, T0)
    (page,) = pages(connect(fake))
    assert page.events[0].source_url == "https://app.datadoghq.eu/monitors/1001"


def test_the_wizard_asks_for_the_site_as_a_choice_where_the_address_is() -> None:
    spec = DatadogConnector.spec
    site = spec.field("site")
    assert site.type.value == "choice" and site.page == "where" and site.default == "datadoghq.com"
    assert ("datadoghq.eu", "EU1 (app.datadoghq.eu)") in site.choices
    assert spec.field("base_url").default == "https://api.datadoghq.com"
    assert spec.secret_keys() == ("api_key", "application_key")


# --- titles, ids, severities -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("[Triggered] CPU high on web-01", ("CPU high on web-01", "triggered", None)),
        ("[Recovered] CPU high on web-01", ("CPU high on web-01", "recovered", None)),
        ("[P2] [Triggered on {host:web-01}] CPU high", ("CPU high", "triggered", 2)),
        (
            "[P1] [Warn Recovered on {host:db-1,env:prod}] Disk 91% full",
            ("Disk 91% full", "warn recovered", 1),
        ),
        ("[No Data] Heartbeat missing", ("Heartbeat missing", "no data", None)),
        ("[prod] [Triggered] queue backlog", ("[prod] [Triggered] queue backlog", None, None)),
        ("Deployment finished", ("Deployment finished", None, None)),
    ],
)
def test_state_prefixes_are_stripped_from_titles(
    title: str, expected: tuple[str, str | None, int | None]
) -> None:
    assert clean_title(title) == expected


def test_a_recovery_has_the_fingerprint_of_its_trigger_and_resolves(fake: FakeDatadog) -> None:
    trigger = add(fake, 1, T0)
    fake.recover(trigger, T0 + timedelta(minutes=7))
    (page,) = pages(connect(fake))
    fired, recovered = page.events
    assert fired.title == recovered.title == "CPU load high on web-01"
    assert fired.fingerprint == recovered.fingerprint
    assert (fired.status, recovered.status) == (AlertStatus.TRIGGERED, AlertStatus.RESOLVED)
    assert recovered.resolved_at == T0 + timedelta(minutes=7)


def test_ids_beyond_two_to_the_53_stay_exact(fake: FakeDatadog) -> None:
    huge_monitor = 2**53 + 1  # a float would make it ...992
    add(fake, 1, T0, monitor_id=huge_monitor)
    (page,) = pages(connect(fake))
    (event,) = page.events
    assert event.monitor_id == "9007199254740993"
    assert event.external_id == data_id(1)
    assert event.raw_payload["attributes"]["attributes"]["evt"]["id"] == str(EVT_ID_BASE + 1)
    assert event.source_url == "https://app.datadoghq.com/monitors/9007199254740993"


def test_priority_status_host_service_and_tags_are_mapped(fake: FakeDatadog) -> None:
    add(fake, 1, T0, priority=1)  # checkout, P1
    add(fake, 2, T0 + timedelta(seconds=1), priority=2)  # search, P2
    add(fake, 3, T0 + timedelta(seconds=2), priority=4)
    warn = add(fake, 4, T0 + timedelta(seconds=3), priority=None)
    warn.status = "warning"
    (page,) = pages(connect(fake))
    got = [(e.severity, e.host, e.service) for e in page.events]
    assert got == [
        (Severity.CRITICAL, "web-01", "checkout"),
        (Severity.HIGH, "web-02", "search"),
        (Severity.INFO, "web-03", "checkout"),
        (Severity.WARNING, "web-04", "search"),
    ]
    first = page.events[0]
    assert first.tags[:2] == ("host:web-01", "service:checkout") and "team:ops" in first.tags
    assert first.message.startswith("%%%\nLoad average over 4")


# --- monitors: the query becomes the alert's expression --------------------------------------------------


def test_the_monitor_query_becomes_the_expression_of_the_stored_alert(
    fake: FakeDatadog, sessions: sessionmaker[TenantSession]
) -> None:
    add(fake, 1, T0)
    add(fake, 2, T0 + timedelta(minutes=1))
    report = sync(sessions, fake, SleepRecorder())
    assert report.ok, report.error
    stored = {a.monitor_id: a.expression for a in alerts(sessions)}
    assert stored == {
        "1001": "avg(last_5m):avg:system.load.1{service:checkout} by {host} > 4",
        "1002": "avg(last_5m):avg:system.load.1{service:search} by {host} > 4",
    }
    monitor_reads = [r for r in fake.requests if r.url.path == "/api/v1/monitor"]
    assert len(monitor_reads) == 1  # once per sync, a short page ends the listing
    assert dict(monitor_reads[0].url.params) == {"page": "0", "page_size": "1000"}


def test_a_query_carried_by_the_event_wins_and_an_unknown_monitor_has_none(fake: FakeDatadog) -> None:
    add(fake, 1, T0)
    add(fake, 2, T0 + timedelta(seconds=1))
    fake.monitors[1001]["query"] = "from the monitor list"
    del fake.monitors[1002]  # deleted since it fired: not in the list any more
    fake.embedded_queries[1001] = "avg(last_1m):avg:x{*} > 1"
    connector = connect(fake)
    (page,) = pages(connector)
    assert [e.expression for e in page.events] == ["avg(last_1m):avg:x{*} > 1", None]


def test_a_recovery_resolves_the_stored_alert(
    fake: FakeDatadog, sessions: sessionmaker[TenantSession]
) -> None:
    trigger = add(fake, 1, T0)
    fake.recover(trigger, T0 + timedelta(minutes=3))
    assert sync(sessions, fake, SleepRecorder()).ok
    (alert,) = alerts(sessions)
    assert alert.status is AlertStatus.RESOLVED
    assert alert.resolved_at == T0 + timedelta(minutes=3)
    assert alert.occurrence_count == 1 and alert.severity == "high"  # P2: the trigger's severity stays


# --- the cursor and the time filter ----------------------------------------------------------------------


def test_an_incremental_sync_asks_from_a_minute_before_the_cursor(fake: FakeDatadog) -> None:
    add(fake, 1, T0)
    add(fake, 2, T0 + timedelta(seconds=30))
    (first,) = pages(connect(fake))
    assert first.cursor.updated_at == T0 + timedelta(seconds=30)
    late = add(fake, 3, T0 + timedelta(seconds=10))  # indexed late, inside the lookback minute
    newer = add(fake, 4, T0 + timedelta(minutes=5))
    (second,) = pages(connect(fake), Cursor.from_state(first.cursor.to_state()))
    # The first event's time is in the lookback minute: read again (the store counts it unchanged); the
    # event at the cursor's exact time was stored by the page that set the cursor: dropped here.
    assert [e.external_id for e in second.events] == [data_id(1), late.external_id, newer.external_id]
    query = fake.event_queries[-1]
    assert query["filter[from]"] == str(int((T0 - timedelta(seconds=30)).timestamp() * 1000))
    assert (query["filter[query]"], query["filter[to]"], query["sort"]) == (
        "source:alert",
        "now",
        "timestamp",
    )


def test_a_first_sync_reads_history_days_back_and_the_extra_filter_is_anded(fake: FakeDatadog) -> None:
    fake.now = datetime.now(UTC)
    add(fake, 1, fake.now - timedelta(days=3))
    add(fake, 2, fake.now - timedelta(days=1))
    settings = with_options(fake.settings(), history_days=2, query="service:search")
    (page,) = pages(connect(fake, settings))
    assert [e.external_id for e in page.events] == [data_id(2)]
    since = fake.query_since(fake.requests[-1])
    assert since is not None and abs(since - (fake.now - timedelta(days=2))) < timedelta(minutes=1)
    assert fake.event_queries[-1]["filter[query]"] == "source:alert (service:search)"


def test_paging_follows_meta_page_after_until_an_empty_page(fake: FakeDatadog) -> None:
    for number in range(1, 6):
        add(fake, number, T0 + timedelta(seconds=number))
    found = pages(connect(fake), page_size=2)
    assert [len(p.events) for p in found] == [2, 2, 1]
    cursors = [q.get("page[cursor]") for q in fake.event_queries]
    assert cursors[0] is None and all(cursors[1:]) and len(cursors) == 4  # the 4th answers {"data": []}
    assert all(q["page[limit]"] == "2" for q in fake.event_queries)


# --- errors, rate limits and the check -------------------------------------------------------------------


def test_a_429_with_an_empty_body_waits_the_reset_seconds(fake: FakeDatadog) -> None:
    add(fake, 1, T0)
    fake.fail_next(InjectedFailure(429, headers=rate_limit_headers(reset_seconds=9)))
    assert fake.error_response(429, "ignored").content == b""
    sleeps = SleepRecorder()
    (page,) = pages(connect(fake, sleep=sleeps))
    assert len(page.events) == 1
    assert len(sleeps.waits) == 1 and 9 <= sleeps.waits[0] <= 9.5


def test_the_server_error_text_is_shown(fake: FakeDatadog) -> None:
    fake.fail_next(InjectedFailure(400, message="Invalid query: unbalanced parenthesis"))
    result = check(connect(fake))
    assert result.problem is CheckProblem.OTHER  # a 400: the server refused the request
    assert "HTTP 400 on GET /api/v1/validate" in result.message
    assert "Invalid query: unbalanced parenthesis" in result.message


def test_check_proves_both_keys_and_the_event_read(fake: FakeDatadog) -> None:
    result = check(connect(fake))
    assert result.ok, result
    assert [r.url.path for r in fake.requests] == ["/api/v1/validate", "/api/v1/monitor", "/api/v2/events"]


def test_a_wrong_api_key_says_authentication_and_names_the_api_key(fake: FakeDatadog) -> None:
    connector = connect(fake, fake.settings(good_credentials=False))
    result = check(connector)
    assert result.problem is CheckProblem.AUTHENTICATION
    assert "HTTP 403" in result.message and "the API key was refused by the US1 site" in result.message
    assert len(fake.requests) == 1


def test_a_wrong_application_key_says_authentication_and_names_it(fake: FakeDatadog) -> None:
    settings = with_options(fake.settings(), secrets={"application_key": "dd-wrong-app-key-1"})
    result = check(connect(fake, settings))
    assert result.problem is CheckProblem.AUTHENTICATION
    assert "the application key was refused" in result.message and "monitors_read" in result.message
    assert APPLICATION_KEY not in result.message and "dd-wrong-app-key-1" not in result.message
