"""ServiceDesk Plus specifics: v3 shapes, epoch-ms times, on-prem key and Zoho OAuth, envelopes, paging."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest

from connectors.base import CheckProblem, Cursor, Page
from connectors.errors import (
    BadResponseError,
    PagingStalledError,
    PermissionDeniedError,
    RequestRejectedError,
)
from connectors.testing.fake_system import FakeTicket, InjectedFailure, Misbehaviour
from connectors.testing.standard_suite import StandardConnectorSuite
from connectors.ticketing.servicedesk_plus import (
    DATA_CENTRES,
    SPEC,
    ServiceDeskPlusConnector,
    api_base_url,
    epoch_ms_value,
    sdp_error_text,
    sdp_severity,
)
from core.store.models import TicketKind
from tests.connectors.fake_servicedesk_plus import (
    API_KEY,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    FakeServiceDeskPlus,
)

T = TypeVar("T")
T0 = datetime(2024, 3, 1, 9, 30, 0, 123000, tzinfo=UTC)


async def _no_sleep(_seconds: float) -> None:
    return None


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def connector_for(fake: FakeServiceDeskPlus, **options: Any) -> ServiceDeskPlusConnector:
    return ServiceDeskPlusConnector.create(
        fake.settings(**options), transport=fake.transport(), sleep=_no_sleep
    )


def ticket(number: int, updated: datetime, **extra: Any) -> FakeTicket:
    return FakeTicket(
        external_id=str(number),
        title=f"Request {number}",
        description=f"VPN <b>drops</b> &amp; reconnects #{number}",
        updated_at=updated,
        created_at=updated - timedelta(hours=1),
        status="Open",
        severity="2",
        extra=extra,
    )


async def collect(pages: AsyncIterator[Page]) -> list[Page]:
    return [page async for page in pages]


def sync(
    connector: ServiceDeskPlusConnector, since: Cursor | None = None, page_size: int | None = None
) -> list[Page]:
    async def go() -> list[Page]:
        try:
            return await collect(connector.fetch(since, page_size=page_size))
        finally:
            await connector.close()

    return run(go())


def ids(pages: list[Page]) -> list[str]:
    return [t.external_id for page in pages for t in page.tickets]


def check(connector: ServiceDeskPlusConnector) -> Any:
    async def go() -> Any:
        try:
            return await connector.check()
        finally:
            await connector.close()

    return run(go())


# --- spec -------------------------------------------------------------------------------------------------


def test_spec_marks_secrets_per_auth_mode() -> None:
    assert SPEC.type == "servicedesk_plus"
    assert SPEC.secret_keys("authtoken") == ("api_key",)
    assert SPEC.secret_keys("zoho_oauth") == ("client_secret", "refresh_token")
    assert set(dict(SPEC.field("data_centre").choices)) == {
        "US",
        "EU",
        "IN",
        "CN",
        "AU",
        "JP",
        "CA",
        "UK",
        "SA",
    }
    assert SPEC.field("fetch_resolutions").default is False
    assert SPEC.timestamp_precision == timedelta(milliseconds=1)


def test_cloud_address_defaults_to_the_data_centre() -> None:
    fake = FakeServiceDeskPlus("cloud")
    settings = fake.settings(data_centre="EU")
    settings = type(settings)(settings.name, "", settings.auth_mode, settings.options, settings.secrets)
    assert api_base_url(settings) == "https://sdpondemand.manageengine.eu"
    assert DATA_CENTRES["CA"][0] == "https://accounts.zohocloud.ca"


# --- shapes -----------------------------------------------------------------------------------------------


def test_epoch_ms_time_objects_become_utc() -> None:
    value = {"display_value": "Mar 1, 2024 09:30 AM", "value": "1709285400123"}
    assert epoch_ms_value(value) == T0
    assert epoch_ms_value(None) is None
    with pytest.raises(ValueError, match="epoch milliseconds"):
        epoch_ms_value({"value": "yesterday"})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("High", "high"),
        ("3 - High", "high"),
        ("4 - Critical", "critical"),
        ("Normal", "medium"),
        ("Low", "low"),
    ],
)
def test_priority_words_decide_the_severity(name: str, expected: str) -> None:
    assert sdp_severity(name) == expected


def test_error_text_reads_object_and_list_response_status() -> None:
    single = {
        "response_status": {
            "status_code": 4000,
            "messages": [{"status_code": 4001, "type": "failed", "message": "Invalid input"}],
            "status": "failed",
        }
    }
    listed = {
        "response_status": [
            {
                "status_code": 4000,
                "messages": [{"status_code": 4012, "type": "failed", "fields": ["subject", "requester"]}],
                "status": "failed",
            }
        ]
    }
    assert sdp_error_text(httpx.Response(400, json=single)) == "Invalid input (4001)"
    assert sdp_error_text(httpx.Response(400, json=listed)) == "fields subject, requester (4012)"
    assert sdp_error_text(httpx.Response(200, json={"error": "invalid_code"})) == "invalid_code"
    assert sdp_error_text(httpx.Response(502, text="<html>Bad gateway</html>")) == "<html>Bad gateway</html>"


def test_full_sync_normalises_requests() -> None:
    fake = FakeServiceDeskPlus()
    fake.add_ticket(
        ticket(
            7,
            T0,
            assignee="Heather Graham",
            subcategory="VPN",
            priority="3 - High",
            request_type="Service Request",
            resolved_at=T0,
        )
    )
    [page] = sync(connector_for(fake))
    [values] = page.tickets
    assert values.external_id == "7"
    assert values.source_system == "servicedesk_plus"
    assert values.title == "Request 7"
    assert values.description == "VPN drops & reconnects #7"
    assert (values.status, values.severity, values.assignee) == ("Open", "high", "Heather Graham")
    assert values.kind is TicketKind.REQUEST
    assert values.category == "Network / VPN"
    assert values.updated_at == T0
    assert values.created_at == T0 - timedelta(hours=1)
    assert values.resolved_at == T0
    assert values.resolution_notes is None
    assert values.source_url == f"{fake.base_url}/WorkOrder.do?woMode=viewWO&woID=7"
    assert values.raw_payload["last_updated_time"]["value"] == "1709285400123"
    assert page.cursor == Cursor(T0, "7")
    request = fake.requests[0]
    assert request.headers["Accept"] == "application/vnd.manageengine.sdp.v3+json"
    assert request.headers["authtoken"] == API_KEY
    list_info = json.loads(request.url.params["input_data"])["list_info"]
    assert list_info["sort_field"] == "last_updated_time"
    assert list_info["sort_order"] == "asc"
    assert "description" in list_info["fields_required"]
    assert "search_criteria" not in list_info  # a full sync reads everything


def test_unassigned_request_falls_back_to_the_group_and_a_bad_time_is_a_failure() -> None:
    fake = FakeServiceDeskPlus()
    fake.add_ticket(ticket(1, T0, group="Network Team"))
    [page] = sync(connector_for(fake))
    assert page.tickets[0].assignee == "Network Team"

    def broken(request: httpx.Request) -> httpx.Response:
        record = {"id": "9", "subject": "x", "last_updated_time": {"value": "soon"}}
        body = {
            "requests": [record],
            "list_info": {"has_more_rows": False},
            "response_status": [{"status_code": 2000}],
        }
        return httpx.Response(200, json=body)

    connector = ServiceDeskPlusConnector.create(fake.settings(), transport=httpx.MockTransport(broken))
    [page] = sync(connector)
    assert page.tickets == ()
    assert page.failures[0].external_id == "9"
    assert "epoch milliseconds" in page.failures[0].reason


# --- incremental and paging -------------------------------------------------------------------------------


def test_incremental_sync_asks_from_the_cursor_minus_one_millisecond() -> None:
    fake = FakeServiceDeskPlus()
    for number in range(1, 6):
        fake.add_ticket(ticket(number, T0 + timedelta(minutes=number)))
    since = Cursor(T0 + timedelta(minutes=3), "3")
    pages = sync(connector_for(fake), since)
    assert ids(pages) == ["3", "4", "5"]
    assert fake.ticket_queries() == [T0 + timedelta(minutes=3) - timedelta(milliseconds=1)]


def test_pages_follow_has_more_rows_and_cap_row_count_at_100() -> None:
    fake = FakeServiceDeskPlus()
    for number in range(1, 251):
        fake.add_ticket(ticket(number, T0 + timedelta(seconds=number)))
    pages = sync(connector_for(fake), page_size=500)
    assert [len(p.tickets) for p in pages] == [100, 100, 50]
    assert ids(pages) == [str(n) for n in range(1, 251)]
    assert pages[-1].cursor == Cursor(T0 + timedelta(seconds=250), "250")


def test_ties_in_one_millisecond_across_pages_are_read_once() -> None:
    fake = FakeServiceDeskPlus()
    for number in range(1, 8):
        fake.add_ticket(ticket(number, T0))
    fake.add_ticket(ticket(8, T0 + timedelta(seconds=1)))
    pages = sync(connector_for(fake), page_size=3)
    assert ids(pages) == [str(n) for n in range(1, 9)]
    starts = [json.loads(r.url.params["input_data"])["list_info"]["start_index"] for r in fake.requests]
    assert starts == [1, 4, 7]


def test_a_server_ignoring_search_criteria_is_stopped_instead_of_cycling() -> None:
    """Issue 15's miss: such a server cycled start_index (2, 2, 3, ...) for ever at full CPU."""
    fake = FakeServiceDeskPlus()
    for number in range(1, 13):  # pairs share a millisecond, as ties across page boundaries do
        fake.add_ticket(ticket(number, T0 + timedelta(minutes=10 * ((number - 1) // 2))))
    fake.misbehaviour = Misbehaviour.IGNORES_FILTER
    with pytest.raises(PagingStalledError, match="page 4 holds only records this sync has read already"):
        sync(connector_for(fake), page_size=5)
    starts = [json.loads(r.url.params["input_data"])["list_info"]["start_index"] for r in fake.requests]
    assert starts == [1, 2, 4, 3]


def test_a_server_ignoring_start_index_in_a_burst_of_ties_is_stopped() -> None:
    """Twelve requests updated in one millisecond: the floor cannot move, start_index steps over the ties
    already read; a server ignoring it answers the same requests, and the guard stops the sync at once."""
    fake = FakeServiceDeskPlus()
    for number in range(1, 13):
        fake.add_ticket(ticket(number, T0))
    fake.misbehaviour = Misbehaviour.IGNORES_PAGE_TOKEN
    with pytest.raises(PagingStalledError, match="page 2 holds only records this sync has read already"):
        sync(connector_for(fake), page_size=5)
    starts = [json.loads(r.url.params["input_data"])["list_info"]["start_index"] for r in fake.requests]
    assert starts == [1, 6]


def test_only_the_record_that_set_the_cursor_counts_as_stored() -> None:
    fake = FakeServiceDeskPlus()
    connector = connector_for(fake)
    fake.add_ticket(ticket(10, T0))
    [page] = sync(connector)
    [values] = page.tickets
    assert connector.already_stored(values, Cursor(T0, "10"))
    assert not connector.already_stored(values, Cursor(T0, "9"))  # "10" <= "9" as strings, not as numbers


def test_has_more_rows_without_requests_is_a_bad_response() -> None:
    fake = FakeServiceDeskPlus()

    def lying(request: httpx.Request) -> httpx.Response:
        body = {
            "requests": [],
            "list_info": {"has_more_rows": True},
            "response_status": [{"status_code": 2000}],
        }
        return httpx.Response(200, json=body)

    connector = ServiceDeskPlusConnector.create(fake.settings(), transport=httpx.MockTransport(lying))
    with pytest.raises(BadResponseError, match="has_more_rows"):
        sync(connector)


# --- resolutions ------------------------------------------------------------------------------------------


def test_resolutions_cost_one_call_per_ticket_only_when_asked() -> None:
    fake = FakeServiceDeskPlus()
    for number in (1, 2):
        fake.add_ticket(ticket(number, T0 + timedelta(seconds=number)))
    fake.tickets["1"].resolution_notes = "Restarted the <b>VPN</b> concentrator"
    assert [t.resolution_notes for t in sync(connector_for(fake))[0].tickets] == [None, None]
    assert fake.resolution_calls == 0
    pages = sync(connector_for(fake, fetch_resolutions=True))
    assert [t.resolution_notes for t in pages[0].tickets] == ["Restarted the VPN concentrator", None]
    assert fake.resolution_calls == 2


# --- auth and errors --------------------------------------------------------------------------------------


def _secrets_absent(text: str) -> bool:
    return all(secret not in text for secret in (API_KEY, CLIENT_SECRET, REFRESH_TOKEN, "wrong-key"))


def test_onprem_probe_and_a_refused_key() -> None:
    fake = FakeServiceDeskPlus()
    assert check(connector_for(fake)).ok
    assert json.loads(fake.requests[0].url.params["input_data"])["list_info"]["row_count"] == 1

    bad = FakeServiceDeskPlus()
    connector = ServiceDeskPlusConnector.create(
        bad.settings(good_credentials=False), transport=bad.transport(), sleep=_no_sleep
    )
    result = check(connector)
    assert result.problem is CheckProblem.AUTHENTICATION
    assert "Invalid API key (authtoken) (4001)" in result.message
    assert "API key was refused" in result.message
    assert _secrets_absent(result.message)
    assert len(bad.requests) == 1  # no retry storm on a wrong key


def test_cloud_exchanges_the_refresh_token_once_and_reuses_the_access_token() -> None:
    fake = FakeServiceDeskPlus("cloud")
    connector = connector_for(fake)

    async def go() -> None:
        assert (await connector.check()).ok
        assert (await connector.check()).ok
        await connector.close()

    run(go())
    assert fake.tokens_issued == 1
    token_request, first_read = fake.requests[0], fake.requests[1]
    assert str(token_request.url) == "https://accounts.zoho.com/oauth/v2/token"
    assert b"grant_type=refresh_token" in token_request.content
    assert first_read.url.path == "/app/itdesk/api/v3/requests"
    assert first_read.headers["Authorization"] == "Zoho-oauthtoken 1000.access-1"
    assert not fake.unexpected


def test_cloud_refreshes_once_on_401_and_goes_on() -> None:
    fake = FakeServiceDeskPlus("cloud")
    for number in range(1, 7):
        fake.add_ticket(ticket(number, T0 + timedelta(seconds=number)))
    connector = connector_for(fake)

    async def go() -> list[str]:
        seen: list[str] = []
        async for page in connector.fetch(None, page_size=2):
            seen.extend(t.external_id for t in page.tickets)
            fake.expire_access_tokens()
        await connector.close()
        return seen

    assert run(go()) == ["1", "2", "3", "4", "5", "6"]
    assert fake.tokens_issued == 3  # the first, then one per expiry


def test_cloud_source_url_points_at_the_portal_ui() -> None:
    fake = FakeServiceDeskPlus("cloud")
    fake.add_ticket(ticket(5, T0))
    [page] = sync(connector_for(fake))
    assert (
        page.tickets[0].source_url == "https://sdpondemand.manageengine.com/app/itdesk/ui/requests/5/details"
    )


def test_cloud_refused_refresh_token_is_an_authentication_problem() -> None:
    fake = FakeServiceDeskPlus("cloud")
    connector = ServiceDeskPlusConnector.create(
        fake.settings(good_credentials=False), transport=fake.transport(), sleep=_no_sleep
    )
    result = check(connector)
    assert result.problem is CheckProblem.AUTHENTICATION
    assert "invalid_code" in result.message
    assert _secrets_absent(result.message) and "1000.revoked" not in result.message
    assert len(fake.requests) == 1


def test_cloud_api_401_after_a_fresh_token_is_not_retried_forever() -> None:
    fake = FakeServiceDeskPlus("cloud")
    fake.add_ticket(ticket(1, T0))
    connector = connector_for(fake)
    original_route: Callable[[httpx.Request], httpx.Response] = fake.route

    def always_401(request: httpx.Request) -> httpx.Response:
        if request.url.host == "accounts.zoho.com":
            return original_route(request)
        return fake.error_response(401, "Invalid or expired OAuth token", code=4001)

    fake.route = always_401  # type: ignore[method-assign]
    result = check(connector)
    assert result.problem is CheckProblem.AUTHENTICATION
    assert [r.url.host for r in fake.requests] == [
        "accounts.zoho.com",
        "sdpondemand.manageengine.com",
        "accounts.zoho.com",
        "sdpondemand.manageengine.com",
    ]


def test_failure_envelope_inside_http_200_is_raised() -> None:
    fake = FakeServiceDeskPlus()

    def envelope(code: int) -> Callable[[httpx.Request], httpx.Response]:
        def handler(request: httpx.Request) -> httpx.Response:
            status = {
                "status_code": 4000,
                "status": "failed",
                "messages": [{"status_code": code, "message": "No"}],
            }
            return httpx.Response(200, json={"response_status": [status]})

        return handler

    rejected = ServiceDeskPlusConnector.create(fake.settings(), transport=httpx.MockTransport(envelope(4001)))
    with pytest.raises(RequestRejectedError, match=r"No \(4001\)"):
        sync(rejected)
    denied = ServiceDeskPlusConnector.create(fake.settings(), transport=httpx.MockTransport(envelope(4002)))
    with pytest.raises(PermissionDeniedError):
        sync(denied)


def test_server_error_then_success_and_malformed_json() -> None:
    fake = FakeServiceDeskPlus()
    fake.add_ticket(ticket(1, T0))
    fake.fail_next(InjectedFailure(status=503, message="Maintenance"))
    assert ids(sync(connector_for(fake))) == ["1"]

    fake.fail_next(InjectedFailure(malformed=True))
    result = check(connector_for(fake))
    assert result.problem is CheckProblem.BAD_RESPONSE
    assert "not valid JSON" in result.message


def test_unknown_portal_path_is_not_found() -> None:
    fake = FakeServiceDeskPlus("cloud")
    connector = ServiceDeskPlusConnector.create(
        fake.settings(portal="nosuchportal"), transport=fake.transport(), sleep=_no_sleep
    )
    result = check(connector)
    assert result.problem is CheckProblem.NOT_FOUND
    assert "Invalid URL (4007)" in result.message


# --- the standard suite -----------------------------------------------------------------------------------


class TestServiceDeskPlusOnPremStandard(StandardConnectorSuite):
    fake_cls = FakeServiceDeskPlus


class TestServiceDeskPlusCloudStandard(StandardConnectorSuite):
    fake_cls = FakeServiceDeskPlus

    @pytest.fixture
    def fake_factory(self) -> Callable[[], FakeServiceDeskPlus]:
        return lambda: FakeServiceDeskPlus("cloud")
