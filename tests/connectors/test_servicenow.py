"""ServiceNow-specific behaviour; the common contract is :class:`TestServiceNowStandard` (the standard suite).

Header and body shapes below are copied from public captures of real instances (a curl trace of
``dev86373.service-now.com`` with ``Link`` and ``X-Total-Count``; error bodies quoted in client libraries).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from connectors.base import CheckProblem, CheckResult, ConnectorSettings, Cursor, Page
from connectors.errors import AuthenticationError, ConfigurationError, PagingStalledError
from connectors.registry import connector_class
from connectors.testing.fake_system import InjectedFailure, Misbehaviour
from connectors.testing.standard_suite import SleepRecorder, StandardConnectorSuite
from connectors.ticketing.servicenow import (
    FIELDS,
    ServiceNowConnector,
    date_generate,
    error_text,
    link_offset,
    normalise_record,
    parse_link_header,
    record_datetime,
    validate_encoded_query,
)
from core.importing.mapping import resolve_mapping
from core.importing.tickets import to_ticket_values
from core.store.models import TicketKind
from tests.connectors.fake_servicenow import FakeServiceNow

BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

# Captured from a real instance (curl -v .../api/now/table/incident?sysparm_limit=1), 73 records.
REAL_LINK = (
    '<https://dev86373.service-now.com/api/now/table/incident?sysparm_limit=1&sysparm_offset=0>;rel="first",'
    '<https://dev86373.service-now.com/api/now/table/incident?sysparm_limit=1&sysparm_offset=-1>;rel="prev",'
    '<https://dev86373.service-now.com/api/now/table/incident?sysparm_limit=1&sysparm_offset=1>;rel="next",'
    '<https://dev86373.service-now.com/api/now/table/incident?sysparm_limit=1&sysparm_offset=72>;rel="last"'
)


# --- the standard suite ----------------------------------------------------------------------------------


class TestServiceNowStandard(StandardConnectorSuite):
    fake_cls = FakeServiceNow


class TestServiceNowOAuthStandard(StandardConnectorSuite):
    fake_cls = FakeServiceNow

    @pytest.fixture
    def fake_factory(self) -> Callable[[], FakeServiceNow]:
        return lambda: FakeServiceNow(auth_mode="oauth")


# --- helpers ---------------------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeServiceNow]:
    system = FakeServiceNow()
    yield system
    assert system.unexpected == []
    assert system.ignored_query_terms == []


def connect(fake: FakeServiceNow, sleep: SleepRecorder | None = None, **options: Any) -> ServiceNowConnector:
    settings = fake.settings()
    if options:
        settings = ConnectorSettings(
            name=settings.name,
            base_url=settings.base_url,
            auth_mode=settings.auth_mode,
            options={**settings.options, **options},
            secrets=settings.secrets,
        )
    connector = ServiceNowConnector.create(
        settings, transport=fake.transport(), sleep=sleep or SleepRecorder()
    )
    assert isinstance(connector, ServiceNowConnector)
    return connector


def pages(
    connector: ServiceNowConnector, since: Cursor | None = None, page_size: int | None = None
) -> list[Page]:
    async def go() -> list[Page]:
        try:
            return [page async for page in connector.fetch(since, page_size=page_size)]
        finally:
            await connector.close()

    return asyncio.run(go())


def check(connector: ServiceNowConnector) -> CheckResult:
    async def go() -> CheckResult:
        try:
            return await connector.check()
        finally:
            await connector.close()

    return asyncio.run(go())


def numbers(found: list[Page]) -> list[str]:
    return [ticket.external_id for page in found for ticket in page.tickets]


def add(fake: FakeServiceNow, count: int, *, per_second: int = 1, start: datetime = START) -> list[str]:
    return [t.external_id for t in fake.generate(count, start=start, per_second=per_second)]


# --- normalisation ---------------------------------------------------------------------------------------


def api_record(**overrides: Any) -> dict[str, Any]:
    """An incident as the Table API returns it with sysparm_display_value=all, for an account in Berlin."""
    record: dict[str, Any] = {
        "sys_id": {
            "display_value": "9d385017c611228701d22104cc95c371",
            "value": "9d385017c611228701d22104cc95c371",
        },
        "number": {"display_value": "INC0010001", "value": "INC0010001"},
        "short_description": {"display_value": "Email down for sales", "value": "Email down for sales"},
        "description": {
            "display_value": "<p>Outlook shows <b>0x800CCC0E</b> on lnx-mail-02.</p>",
            "value": "<p>Outlook shows <b>0x800CCC0E</b> on lnx-mail-02.</p>",
        },
        "state": {"display_value": "Resolved", "value": "6"},
        "priority": {"display_value": "1 - Critical", "value": "1"},
        "assigned_to": {
            "display_value": "Beth Anglin",
            "link": "https://dev.service-now.com/api/now/table/sys_user/46d44a23a9fe19810012d100cca80666",
            "value": "46d44a23a9fe19810012d100cca80666",
        },
        "category": {"display_value": "Network", "value": "network"},
        "cmdb_ci": {"display_value": "EXCH-SD-05", "value": "281190e3c0a8000b003f593aa3f20ca6"},
        "close_notes": {
            "display_value": "Restarted the transport service.",
            "value": "Restarted the transport service.",
        },
        "resolved_at": {"display_value": "2026-07-01 12:30:00", "value": "2026-07-01 10:30:00"},
        "sys_created_on": {"display_value": "2026-07-01 10:00:00", "value": "2026-07-01 08:00:00"},
        "sys_updated_on": {"display_value": "2026-07-01 12:31:05", "value": "2026-07-01 10:31:05"},
        "sys_class_name": {"display_value": "Incident", "value": "incident"},
    }
    record.update(overrides)
    return record


def test_a_display_value_all_record_becomes_our_ticket() -> None:
    record = api_record()
    ticket = normalise_record(record, "incident", "https://dev.service-now.com", BERLIN)
    assert ticket.external_id == "INC0010001"
    assert ticket.source_system == "servicenow"
    assert ticket.title == "Email down for sales"
    assert ticket.description == "Outlook shows 0x800CCC0E on lnx-mail-02."
    assert (ticket.status, ticket.severity, ticket.assignee) == ("Resolved", "critical", "Beth Anglin")
    assert (ticket.kind, ticket.category, ticket.configuration_item) == (
        TicketKind.INCIDENT,
        "Network",
        "EXCH-SD-05",
    )
    assert ticket.resolution_notes == "Restarted the transport service."
    # The stored values are UTC; the display values (two hours later, CEST) are not read.
    assert ticket.created_at == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
    assert ticket.updated_at == datetime(2026, 7, 1, 10, 31, 5, tzinfo=UTC)
    assert ticket.resolved_at == datetime(2026, 7, 1, 10, 30, tzinfo=UTC)
    assert ticket.source_url == (
        "https://dev.service-now.com/nav_to.do?uri=incident.do?sys_id=9d385017c611228701d22104cc95c371"
    )
    assert ticket.raw_payload == record


def test_journal_headers_leave_the_description() -> None:
    text = "2026-07-01 10:15:02 - Beth Anglin (Work notes)\nRebooted lnx-app-07, ORA-12541 gone."
    record = api_record(description={"display_value": text, "value": text})
    ticket = normalise_record(record, "incident", "https://x.service-now.com", UTC)
    assert ticket.description == "Rebooted lnx-app-07, ORA-12541 gone."


@pytest.mark.parametrize(
    ("table", "kind"),
    [
        ("incident", TicketKind.INCIDENT),
        ("change_request", TicketKind.CHANGE),
        ("sc_req_item", TicketKind.REQUEST),
        ("problem", TicketKind.PROBLEM),
    ],
)
def test_the_table_decides_the_kind_and_closed_at_stands_in_for_resolved_at(
    table: str, kind: TicketKind
) -> None:
    record = api_record(
        resolved_at={"display_value": "", "value": ""},
        closed_at={"display_value": "2026-07-02 09:00:00", "value": "2026-07-02 07:00:00"},
    )
    ticket = normalise_record(record, table, "https://x.service-now.com", BERLIN)
    assert ticket.kind is kind
    assert ticket.resolved_at == datetime(2026, 7, 2, 7, 0, tzinfo=UTC)


def test_a_csv_export_and_the_api_give_the_same_key_and_values() -> None:
    """A list export (display values, the exporting user's zone) and the API normalise alike: no twins."""
    header = [
        "number",
        "short_description",
        "description",
        "state",
        "priority",
        "assigned_to",
        "category",
        "cmdb_ci",
        "close_notes",
        "sys_created_on",
        "sys_updated_on",
        "resolved_at",
    ]
    row = [
        "INC0010001",
        "Email down for sales",
        "Outlook shows 0x800CCC0E on lnx-mail-02.",
        "Resolved",
        "1 - Critical",
        "Beth Anglin",
        "Network",
        "EXCH-SD-05",
        "Restarted the transport service.",
        "2026-07-01 10:00:00",
        "2026-07-01 12:31:05",
        "2026-07-01 12:30:00",
    ]
    mapping = resolve_mapping(header, file_label="export.csv")
    from_csv = to_ticket_values(dict(zip(header, row, strict=True)), mapping, BERLIN)
    from_api = normalise_record(api_record(), "incident", "https://dev.service-now.com", BERLIN)
    assert mapping.preset == "servicenow"
    for name in (
        "external_id",
        "source_system",
        "title",
        "description",
        "status",
        "severity",
        "assignee",
        "kind",
        "category",
        "configuration_item",
        "resolution_notes",
        "created_at",
        "updated_at",
        "resolved_at",
    ):
        assert getattr(from_csv, name) == getattr(from_api, name), name


def test_dates_use_the_stored_utc_value_and_display_only_dates_the_account_zone() -> None:
    assert record_datetime({"display_value": "01.07.2026 12:31", "value": "2026-07-01 10:31:05"}, BERLIN) == (
        datetime(2026, 7, 1, 10, 31, 5, tzinfo=UTC)
    )
    assert record_datetime("2026-07-01 10:31:05", BERLIN) == datetime(2026, 7, 1, 10, 31, 5, tzinfo=UTC)
    assert record_datetime({"display_value": "2026-01-15 09:00:00"}, BERLIN) == datetime(
        2026, 1, 15, 8, 0, tzinfo=UTC
    )
    assert record_datetime({"display_value": "", "value": ""}, BERLIN) is None
    with pytest.raises(ValueError, match="yyyy-MM-dd"):
        record_datetime({"value": "07/01/2026 10:31"}, UTC)


def test_a_record_that_cannot_be_a_ticket_is_a_failure_and_the_cursor_moves_on(fake: FakeServiceNow) -> None:
    add(fake, 3)
    fake.tickets["INC0010002"].title = ""
    found = pages(connect(fake))
    assert numbers(found) == ["INC0010001", "INC0010003"]
    assert [f.external_id for page in found for f in page.failures] == ["INC0010002"]
    assert "short_description is empty" in found[0].failures[0].reason
    assert found[-1].cursor.updated_at == START + timedelta(seconds=2)


# --- time zones ------------------------------------------------------------------------------------------


def test_the_date_bound_is_written_in_the_account_zone() -> None:
    literal, exact = date_generate(datetime(2026, 7, 1, 10, 31, 5, tzinfo=UTC), BERLIN)
    assert (literal, exact) == ("javascript:gs.dateGenerate('2026-07-01','12:31:05')", True)
    literal, exact = date_generate(datetime(2026, 7, 1, 10, 31, 5, tzinfo=UTC), UTC)
    assert literal == "javascript:gs.dateGenerate('2026-07-01','10:31:05')"


def test_an_ambiguous_wall_time_steps_back_instead_of_skipping() -> None:
    # 00:30 UTC on 27 Oct 2026 is 02:30 CEST; 02:30 happens twice in Berlin that night.
    moment = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    literal, exact = date_generate(moment, BERLIN)
    assert not exact
    assert literal == "javascript:gs.dateGenerate('2026-10-25','01:30:00')"  # 23:30 UTC, an hour early


def test_a_sync_with_the_account_in_berlin_reads_only_what_changed() -> None:
    fake = FakeServiceNow(account_time_zone="Europe/Berlin")
    add(fake, 6)
    first = pages(connect(fake))
    assert len(numbers(first)) == 6
    fake.update_ticket("INC0010003", at=START + timedelta(hours=3), title="Now urgent")
    again = pages(connect(fake), since=first[-1].cursor)
    # The one-second lookback (INC5 at T-1s, INC6 at T), then the change; the engine skips or counts the
    # re-read ones as unchanged.
    assert numbers(again) == ["INC0010005", "INC0010006", "INC0010003"]
    assert fake.unexpected == []


def test_check_says_when_the_time_zone_option_is_not_the_accounts() -> None:
    fake = FakeServiceNow(account_time_zone="Europe/Berlin")
    add(fake, 1)
    result = check(connect(fake, time_zone="UTC"))
    assert result.problem is CheckProblem.CONFIGURATION
    assert "UTC+01:00" in result.message and "UTC+00:00" in result.message


# --- paging ----------------------------------------------------------------------------------------------


def test_the_real_link_header_parses_and_the_first_pages_prev_is_negative() -> None:
    links = parse_link_header(REAL_LINK)
    assert sorted(links) == ["first", "last", "next", "prev"]
    assert [link_offset(links[rel]) for rel in ("first", "prev", "next", "last")] == [0, -1, 1, 72]
    with_fields = (
        '<https://x/api/now/table/incident?sysparm_fields=number,sys_id&sysparm_offset=5>;rel="next"'
    )
    assert link_offset(parse_link_header(with_fields)["next"]) == 5
    assert parse_link_header(None) == {}


def test_the_fake_writes_link_and_total_count_as_servicenow_does(fake: FakeServiceNow) -> None:
    add(fake, 73)

    async def get(offset: int) -> httpx.Response:
        async with httpx.AsyncClient(transport=fake.transport(), base_url=fake.base_url) as client:
            return await client.get(
                "/api/now/table/incident",
                params={"sysparm_limit": "1", "sysparm_offset": str(offset)},
                auth=(fake.username, fake.password),
            )

    first = asyncio.run(get(0))
    assert first.headers["X-Total-Count"] == "73"
    assert first.headers["Link"] == REAL_LINK.replace("dev86373", "fake")
    last = parse_link_header(asyncio.run(get(72)).headers["Link"])
    assert "next" not in last and link_offset(last["prev"]) == 71


def test_a_burst_of_records_in_one_second_larger_than_a_page(fake: FakeServiceNow) -> None:
    expected = add(fake, 25, per_second=25)
    found = pages(connect(fake), page_size=10)
    assert numbers(found) == sorted(expected, key=lambda n: fake.sys_id(fake.tickets[n]))
    assert len(found) == 3
    assert len(set(numbers(found))) == 25


def test_records_updated_during_a_sync_are_not_skipped(fake: FakeServiceNow) -> None:
    """Offset paging loses a row when one moves to the end mid-sync; keyset paging does not."""
    expected = set(add(fake, 30))

    async def by_offset() -> set[str]:
        seen: set[str] = set()
        async with httpx.AsyncClient(transport=fake.transport(), base_url=fake.base_url) as client:
            url: str | None = (
                "/api/now/table/incident?sysparm_limit=10&sysparm_query=ORDERBYsys_updated_on^ORDERBYsys_id"
            )
            while url:
                response = await client.get(url, auth=(fake.username, fake.password))
                seen |= {r["number"] for r in response.json()["result"]}
                if len(seen) == 10:
                    fake.update_ticket("INC0010002", at=START + timedelta(hours=1))
                url = parse_link_header(response.headers.get("Link")).get("next")
        return seen

    missed = expected - asyncio.run(by_offset())
    assert len(missed) == 1  # INC0010011 slid onto page one after it was read
    fake.update_ticket("INC0010002", at=START + timedelta(seconds=1))

    connector = connect(fake)
    seen: list[str] = []

    async def keyset() -> None:
        async for page in connector.fetch(None, page_size=10):
            seen.extend(t.external_id for t in page.tickets)
            if len(seen) == 10:
                fake.update_ticket("INC0010002", at=START + timedelta(hours=1))
        await connector.close()

    asyncio.run(keyset())
    assert set(seen) == expected
    assert seen[-1] == "INC0010002"  # read again after its update, as an update


def test_a_page_hidden_by_read_acls_is_stepped_over(fake: FakeServiceNow) -> None:
    add(fake, 10)
    fake.hidden = {"INC0010001", "INC0010002", "INC0010003"}
    found = pages(connect(fake), page_size=3)
    assert numbers(found) == [f"INC00100{n:02d}" for n in range(4, 11)]
    offsets = [r.url.params["sysparm_offset"] for r in fake.requests]
    assert offsets[:2] == ["0", "3"]


def test_a_server_ignoring_the_offset_past_a_hidden_page_is_stopped_within_bounds(
    fake: FakeServiceNow,
) -> None:
    """The offset is only sent to step over a page of rows hidden by ACLs; a server ignoring it answers that
    empty page again and again. The empty-page allowance (rows a narrow read role hides) bounds it."""
    add(fake, 10)
    fake.hidden = {"INC0010001", "INC0010002", "INC0010003"}
    fake.misbehaviour = Misbehaviour.IGNORES_PAGE_TOKEN

    async def go() -> None:
        connector = connect(fake)
        try:
            async for _ in connector.fetch(None, page_size=3):
                pass
        finally:
            await connector.close()

    with pytest.raises(PagingStalledError, match="100 pages in a row held no record") as stopped:
        asyncio.run(go())
    assert stopped.value.path == "/api/now/table/incident"
    assert len(fake.requests) == stopped.value.requests == 100


def test_the_same_records_behind_an_advancing_next_link_stop_the_sync(fake: FakeServiceNow) -> None:
    """Issue 15's miss: the loop stepped over "nothing new" pages by the ``next`` link for ever."""
    add(fake, 12)
    fake.misbehaviour = Misbehaviour.SAME_PAGE_FOREVER
    found: list[Page] = []

    async def go() -> None:
        connector = connect(fake)
        try:
            async for page in connector.fetch(None, page_size=5):
                found.append(page)
        finally:
            await connector.close()

    with pytest.raises(PagingStalledError) as stopped:
        asyncio.run(go())
    assert str(stopped.value).startswith(
        "ServiceNow (fake): GET /api/now/table/incident: the paging does not"
    )
    assert fake.table_requests == 2
    assert numbers(found) == [f"INC00100{n:02d}" for n in range(1, 6)]  # only the first page was stored


def test_a_cursor_resumes_with_the_id_tie_break(fake: FakeServiceNow) -> None:
    add(fake, 8, per_second=4)
    first = pages(connect(fake), page_size=3)
    cursor = first[0].cursor
    assert cursor.last_id == fake.sys_id(fake.tickets[numbers(first)[2]])
    rest = pages(connect(fake), since=cursor, page_size=3)
    connector = connect(fake)
    stored = [t for t in numbers(rest) if connector.already_stored(_ticket(rest, t), cursor)]
    assert sorted(set(numbers(rest)) - set(stored)) == sorted(numbers(first)[3:])
    assert len(stored) == 3  # the lookback second re-read, recognised as stored by sys_id


def _ticket(found: list[Page], number: str) -> Any:
    return next(t for page in found for t in page.tickets if t.external_id == number)


def test_every_parameter_is_a_sysparm_and_a_misspelt_one_is_caught(fake: FakeServiceNow) -> None:
    add(fake, 3)
    pages(connect(fake))
    assert all(key.startswith("sysparm_") for r in fake.requests for key in r.url.params)
    assert fake.requests[0].url.params["sysparm_fields"] == ",".join(FIELDS)

    async def misspelt() -> int:
        async with httpx.AsyncClient(transport=fake.transport(), base_url=fake.base_url) as client:
            response = await client.get(
                "/api/now/table/incident",
                params={"query": "active=true"},
                auth=(fake.username, fake.password),
            )
            return len(response.json()["result"])

    assert asyncio.run(misspelt()) == 3  # the server ignores it and returns everything...
    assert fake.unexpected == ["GET /api/now/table/incident: ignored parameter query=active=true"]
    fake.unexpected.clear()  # ...and the fake records it, so a connector that does this fails its tests


def test_several_tables_keep_their_own_positions(fake: FakeServiceNow) -> None:
    fake.generate(3, table="incident", start=START, per_second=1)
    fake.generate(2, table="change_request", start=START - timedelta(days=30), per_second=1)
    found = pages(connect(fake, tables="incident,change_request"))
    assert numbers(found) == ["INC0010001", "INC0010002", "INC0010003", "CHG0010001", "CHG0010002"]
    cursor = found[-1].cursor
    assert cursor.updated_at == START + timedelta(seconds=2)  # the latest position: it never moves back
    assert set(cursor.extra["tables"]) == {"incident", "change_request"}
    fake.update_ticket("CHG0010001", at=START - timedelta(days=1), title="Patch window moved")
    again = pages(connect(fake, tables="incident,change_request"), since=cursor)
    connector = connect(fake, tables="incident,change_request")
    fresh = [t.external_id for page in again for t in page.tickets if not connector.already_stored(t, cursor)]
    assert fresh == ["INC0010002", "CHG0010001"]  # the lookback second (upserted as unchanged), the change
    assert [t.kind for page in found for t in page.tickets][-1] is TicketKind.CHANGE


def test_a_cursor_without_table_positions_rereads_its_second(fake: FakeServiceNow) -> None:
    add(fake, 4, per_second=2)
    legacy = Cursor(START, "ffffffffffffffffffffffffffffffff")
    found = pages(connect(fake, tables="incident,problem"), since=legacy)
    assert sorted(numbers(found)) == ["INC0010001", "INC0010002", "INC0010003", "INC0010004"]


# --- OAuth -----------------------------------------------------------------------------------------------


def test_oauth_password_grant_then_refresh_after_the_server_expired_the_token() -> None:
    fake = FakeServiceNow(auth_mode="oauth")
    add(fake, 4)
    connector = connect(fake)

    async def go() -> tuple[list[str], list[str]]:
        first = [t.external_id async for page in connector.fetch(None) for t in page.tickets]
        fake.advance(3600)  # the server expired it; our clock has not noticed
        second = [t.external_id async for page in connector.fetch(None) for t in page.tickets]
        await connector.close()
        return first, second

    first, second = asyncio.run(go())
    assert first == second == ["INC0010001", "INC0010002", "INC0010003", "INC0010004"]
    assert fake.token_requests == ["password", "refresh_token"]
    assert connector.oauth_grants == ["password", "refresh_token"]
    statuses = [r.headers["Authorization"].split()[0] for r in fake.requests if r.method == "GET"]
    assert set(statuses) == {"Bearer"}


def test_oauth_token_renewed_before_it_expires() -> None:
    fake = FakeServiceNow(auth_mode="oauth", token_lifetime=600)
    add(fake, 2)
    connector = connect(fake)
    assert connector.oauth_tokens is not None
    connector.oauth_tokens.clock = fake.now

    async def go() -> None:
        async for _ in connector.fetch(None):
            pass
        fake.advance(590)  # inside the 30 s margin: renew first rather than collect a 401
        async for _ in connector.fetch(None):
            pass
        await connector.close()

    asyncio.run(go())
    assert fake.token_requests == ["password", "refresh_token"]
    assert fake.table_requests == 2  # no request was refused


def test_a_revoked_refresh_token_falls_back_to_the_password_grant() -> None:
    fake = FakeServiceNow(auth_mode="oauth")
    add(fake, 1)
    connector = connect(fake)

    async def go() -> list[str]:
        async for _ in connector.fetch(None):
            pass
        fake.revoke_tokens()
        found = [t.external_id async for page in connector.fetch(None) for t in page.tickets]
        await connector.close()
        return found

    assert asyncio.run(go()) == ["INC0010001"]
    assert fake.token_requests == ["password", "refresh_token", "password"]


def test_a_token_refused_right_after_it_was_issued_fails_without_a_loop() -> None:
    fake = FakeServiceNow(auth_mode="oauth", token_lifetime=0)  # every token is dead on arrival
    add(fake, 1)
    with pytest.raises(AuthenticationError, match="freshly issued") as raised:
        pages(connect(fake))
    assert fake.token_requests == ["password", "refresh_token"]
    assert fake.table_requests == 2
    assert fake.client_secret not in str(raised.value) and fake.password not in str(raised.value)


def test_bad_oauth_client_secret_is_an_authentication_problem_naming_the_client() -> None:
    fake = FakeServiceNow(auth_mode="oauth")
    connector = connect(fake)
    fake.client_secret = "rotated-by-the-admin"
    result = check(connector)
    assert result.problem is CheckProblem.AUTHENTICATION
    assert "access_denied (server_error)" in result.message
    assert "client ID and secret" in result.message
    assert "sn-client-secret" not in result.message


# --- check() and configuration ---------------------------------------------------------------------------


def test_check_counts_what_the_account_can_see(fake: FakeServiceNow) -> None:
    add(fake, 4)
    result = check(connect(fake, tables="incident,problem"))
    assert result.ok
    assert "incident: 4" in result.message and "problem: 0" in result.message
    assert "problem" in result.hint and "read access" in result.hint


def test_403_names_the_role_to_grant(fake: FakeServiceNow) -> None:
    fake.readable_tables.discard("change_request")
    result = check(connect(fake, tables="incident,change_request"))
    assert result.problem is CheckProblem.PERMISSION
    assert "403" in result.message and "ACL Exception Read Failed" in result.message
    assert "itil" in result.hint and "change_request" in result.hint


def test_an_unknown_table_is_not_found_and_named(fake: FakeServiceNow) -> None:
    result = check(connect(fake, tables="incidnet"))
    assert result.problem is CheckProblem.NOT_FOUND
    assert "Invalid table incidnet" in result.message
    assert "no table named 'incidnet'" in result.hint


def test_404_points_at_the_instance_url(fake: FakeServiceNow) -> None:
    fake.fail_next(InjectedFailure(404, message="Requested URI does not represent any resource"))
    result = check(connect(fake))
    assert result.problem is CheckProblem.NOT_FOUND
    assert "instance URL" in result.hint


def test_wrong_password_is_refused_once(fake: FakeServiceNow) -> None:
    connector = ServiceNowConnector.create(fake.settings(good_credentials=False), transport=fake.transport())
    result = check(connector)
    assert result.problem is CheckProblem.AUTHENTICATION
    assert "User Not Authenticated: Required to provide Auth information" in result.message
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"time_zone": "Mars/Olympus"}, "unknown time zone"),
        ({"tables": "Incident"}, "not a table name"),
        ({"tables": " , "}, "no table"),
        ({"page_size": 20000}, "1 to 10000"),
        ({"query": "active=true^ORDERBYnumber"}, "orders by"),
    ],
)
def test_configuration_mistakes_are_diagnosed_before_any_request(
    fake: FakeServiceNow, options: dict[str, Any], fragment: str
) -> None:
    result = check(connect(fake, **options))
    assert result.problem is CheckProblem.CONFIGURATION
    assert fragment in result.message
    assert fake.requests == []


@pytest.mark.parametrize(
    ("base_url", "fragment"),
    [
        ("dev12345.service-now.com", "needs the scheme"),
        ("https://dev12345.service-now.com/api/now/table/incident", "only the instance address"),
    ],
)
def test_instance_url_mistakes(fake: FakeServiceNow, base_url: str, fragment: str) -> None:
    settings = ConnectorSettings("sn", base_url, "basic", {"username": "u"}, {"password": "p"})
    with pytest.raises(ConfigurationError, match=fragment):
        ServiceNowConnector(settings, connect(fake).http).config()


# --- encoded query ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "active=true",
        "active=true^priority<=2",
        "priority=1^ORpriority=2^assignment_group.name=Network",
        "stateIN1,2,3^short_descriptionLIKEvpn",
        "opened_at>=javascript:gs.beginningOfLast3Months()^EQ",
        "u_custom_field!=x",
    ],
)
def test_good_encoded_queries_pass(query: str) -> None:
    assert validate_encoded_query(f"  {query} ") == query


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("sysparm_query=active=true", "not URL parameters"),
        ("active=true&sysparm_limit=5", "not URL parameters"),
        ("active%3Dtrue", "URL-encoded"),
        ("active=true AND priority=1", "not with the words"),
        ("active=true^^priority=1", "empty condition"),
        ("active=true^", "empty condition"),
        ("priority", "has no operator"),
        ("Priority=1", "lower case"),
        ("priority==1", "a single ="),
        ("active=true^NQpriority=1", "NQ"),
        ("active=true^ORDERBYDESCnumber", "orders by"),
        ("sys_updated_on>=2024-01-01", "leave sys_updated_on out"),
        ("ORactive=true", "cannot start with OR"),
    ],
)
def test_encoded_query_mistakes_are_named(query: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        validate_encoded_query(query)


def test_the_analysts_query_is_applied(fake: FakeServiceNow) -> None:
    add(fake, 10)
    found = pages(connect(fake, query="priority=1"))
    assert numbers(found) == ["INC0010001", "INC0010006"]
    query = fake.requests[0].url.params["sysparm_query"]
    assert query == "priority=1^ORDERBYsys_updated_on^ORDERBYsys_id"


# --- errors and rate limits ------------------------------------------------------------------------------


def test_error_text_reads_servicenow_oauth_and_hibernation_bodies() -> None:
    table_error = httpx.Response(
        400, json={"error": {"message": "Invalid table x", "detail": None}, "status": "failure"}
    )
    assert error_text(table_error) == "Invalid table x"
    detailed = httpx.Response(
        401,
        json={
            "error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"},
            "status": "failure",
        },
    )
    assert error_text(detailed) == "User Not Authenticated: Required to provide Auth information"
    oauth = httpx.Response(401, json={"error_description": "access_denied", "error": "server_error"})
    assert error_text(oauth) == "access_denied (server_error)"
    asleep = httpx.Response(200, text="<html><body>Your instance is hibernating.</body></html>")
    assert "hibernating" in error_text(asleep)


def test_429_waits_for_retry_after(fake: FakeServiceNow) -> None:
    add(fake, 2)
    fake.rate_limit_next(retry_after=4)
    sleeps = SleepRecorder()
    assert numbers(pages(connect(fake, sleep=sleeps))) == ["INC0010001", "INC0010002"]
    assert len(sleeps.waits) == 1 and 4 <= sleeps.waits[0] <= 4.5


def test_the_registry_knows_servicenow() -> None:
    assert connector_class("servicenow") is ServiceNowConnector
    spec = ServiceNowConnector.spec
    assert spec.secret_keys("basic") == ("password",)
    assert spec.secret_keys("oauth") == ("password", "client_secret")
    assert {f.page for f in spec.fields} == {"where", "auth", "scope"}
