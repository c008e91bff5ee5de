"""Remedy / Helix specifics: AR-JWT login, re-login, logout, AR error lists, qualifications, keyset paging."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest

from connectors.base import CheckProblem, CheckResult, Cursor, Page
from connectors.errors import BadResponseError
from connectors.testing.fake_system import FakeTicket, InjectedFailure
from connectors.testing.standard_suite import StandardConnectorSuite
from connectors.ticketing.remedy import SPEC, RemedyConnector, parse_remedy_date, remedy_error_text
from core.store.models import TicketKind
from tests.connectors.fake_remedy import PASSWORD, FakeRemedy, Qualification

T = TypeVar("T")
T0 = datetime(2022, 6, 21, 11, 8, 5, tzinfo=UTC)


async def _no_sleep(_seconds: float) -> None:
    return None


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def connector_for(fake: FakeRemedy, *, good_credentials: bool = True, **options: Any) -> RemedyConnector:
    settings = fake.settings(good_credentials=good_credentials, **options)
    return RemedyConnector.create(settings, transport=fake.transport(), sleep=_no_sleep)


def incident(number: int, updated: datetime, **extra: Any) -> FakeTicket:
    return FakeTicket(
        external_id=f"INC{number:012d}",
        title=f"Email down for site {number}",
        description=f"Users at site {number} cannot send mail.\nExchange queue stuck.",
        updated_at=updated,
        created_at=updated - timedelta(days=1),
        status="Assigned",
        severity="2",
        extra=extra,
    )


async def _collect(pages: AsyncIterator[Page]) -> list[Page]:
    return [page async for page in pages]


def sync(connector: RemedyConnector, since: Cursor | None = None, page_size: int | None = None) -> list[Page]:
    async def go() -> list[Page]:
        try:
            return await _collect(connector.fetch(since, page_size=page_size))
        finally:
            await connector.close()

    return run(go())


def check(connector: RemedyConnector) -> CheckResult:
    async def go() -> CheckResult:
        try:
            return await connector.check()
        finally:
            await connector.close()

    return run(go())


def ids(pages: list[Page]) -> list[str]:
    return [t.external_id for page in pages for t in page.tickets]


# --- spec and shapes --------------------------------------------------------------------------------------


def test_spec() -> None:
    assert SPEC.type == "remedy"
    assert SPEC.secret_keys() == ("password",)
    assert SPEC.field("form").default == "HPD:Help Desk"
    assert SPEC.timestamp_precision == timedelta(seconds=1)


def test_remedy_dates_become_utc() -> None:
    assert parse_remedy_date("2022-06-21T11:08:05.000+0000") == T0
    assert parse_remedy_date("2022-06-21T13:08:05.000+0200") == T0
    assert parse_remedy_date(None) is None
    with pytest.raises(ValueError, match="unrecognised date"):
        parse_remedy_date("next Tuesday")


def test_error_text_reads_the_ar_message_list() -> None:
    body = [
        {
            "messageType": "ERROR",
            "messageText": "Authentication failed",
            "messageAppendedText": "Demo",
            "messageNumber": 623,
        },
        {"messageType": "WARNING", "messageText": "Second", "messageAppendedText": None, "messageNumber": 72},
    ]
    text = remedy_error_text(httpx.Response(401, json=body))
    assert text == "ARERR 623 Authentication failed: Demo; ARERR 72 Second"
    assert remedy_error_text(httpx.Response(500, text="Internal error")) == "Internal error"


def test_normalises_help_desk_entries() -> None:
    fake = FakeRemedy()
    fake.add_ticket(
        incident(
            1,
            T0,
            assignee="Allen Allbrook",
            tier2="Email",
            ci="Exchange",
            service_type="User Service Request",
            priority="Critical",
            resolved_at=T0,
            entry_id="000000000000101",
        )
    )
    fake.tickets["INC000000000001"].resolution_notes = "Cleared the queue"
    template = "https://midtier.example.com/arsys/forms/ar/HPD:Help Desk/?eid={entry_id}&n={id}"
    [page] = sync(connector_for(fake, record_url_template=template))
    [values] = page.tickets
    assert values.external_id == "INC000000000001"
    assert values.source_system == "remedy"
    assert values.title == "Email down for site 1"
    assert values.description == "Users at site 1 cannot send mail.\nExchange queue stuck."
    assert (values.status, values.severity, values.assignee) == ("Assigned", "critical", "Allen Allbrook")
    assert values.kind is TicketKind.REQUEST
    assert values.category == "Network / Email"
    assert values.configuration_item == "Exchange"
    assert values.resolution_notes == "Cleared the queue"
    assert values.resolved_at == T0
    assert values.updated_at == T0 and values.updated_at.tzinfo is UTC
    assert values.created_at == T0 - timedelta(days=1)
    assert values.source_url == (
        "https://midtier.example.com/arsys/forms/ar/HPD:Help Desk/?eid=000000000000101&n=INC000000000001"
    )
    assert values.raw_payload["values"]["Last Modified Date"] == "2022-06-21T11:08:05.000+0000"
    assert page.cursor == Cursor(T0, "INC000000000001")
    read = fake.requests[1]
    assert read.url.raw_path.startswith(b"/api/arsys/v1/entry/HPD:Help%20Desk?")
    assert read.headers["Authorization"] == "AR-JWT jwt-token-1"
    assert read.url.params["sort"] == "Last Modified Date.asc,Incident Number.asc"
    assert "Detailed Decription" in read.url.params["fields"]
    assert "q" not in read.url.params  # a full sync without a filter reads everything


def test_without_a_link_template_there_is_no_source_url_and_the_group_stands_in_for_no_assignee() -> None:
    fake = FakeRemedy()
    fake.add_ticket(incident(1, T0, group="Messaging"))
    [page] = sync(connector_for(fake))
    assert page.tickets[0].source_url is None
    assert page.tickets[0].assignee == "Messaging"
    assert page.tickets[0].kind is TicketKind.INCIDENT


def test_unreadable_date_is_a_record_failure() -> None:
    fake = FakeRemedy()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/jwt/login":
            return httpx.Response(200, text="token")
        if request.url.path == "/api/jwt/logout":
            return httpx.Response(204)
        values = {"Incident Number": "INC1", "Description": "x", "Last Modified Date": "someday"}
        return httpx.Response(200, json={"entries": [{"values": values}], "_links": {}})

    connector = RemedyConnector.create(fake.settings(), transport=httpx.MockTransport(handler))
    with pytest.raises(BadResponseError, match="no record on the page"):
        sync(connector, page_size=1)
    [page] = sync(
        RemedyConnector.create(fake.settings(), transport=httpx.MockTransport(handler)), page_size=5
    )
    assert page.tickets == ()
    assert page.failures[0].external_id == "INC1"
    assert "Last Modified Date" in page.failures[0].reason


# --- incremental and paging -------------------------------------------------------------------------------


def test_incremental_sync_starts_one_second_before_the_cursor_with_the_user_filter() -> None:
    fake = FakeRemedy()
    for number in range(1, 6):
        fake.add_ticket(incident(number, T0 + timedelta(minutes=number)))
    fake.tickets["INC000000000004"].status = "Closed"
    since = Cursor(T0 + timedelta(minutes=2), "INC000000000002")
    pages = sync(connector_for(fake, qualification="'Status' = \"Assigned\""), since)
    assert ids(pages) == ["INC000000000002", "INC000000000003", "INC000000000005"]
    assert fake.ticket_queries() == [T0 + timedelta(minutes=2) - timedelta(seconds=1)]
    q = fake.requests[1].url.params["q"]
    assert q == "'Last Modified Date' >= 1655809804 AND ('Status' = \"Assigned\")"


def test_keyset_pages_read_ties_in_one_second_exactly_once() -> None:
    fake = FakeRemedy()
    for number in range(1, 8):
        fake.add_ticket(incident(number, T0))
    fake.add_ticket(incident(8, T0 + timedelta(seconds=1)))
    pages = sync(connector_for(fake), page_size=3)
    assert ids(pages) == [f"INC{n:012d}" for n in range(1, 9)]
    second = fake.requests[2].url.params["q"]
    assert second == (
        "('Last Modified Date' > 1655809685 OR ('Last Modified Date' = 1655809685 "
        "AND 'Incident Number' > \"INC000000000003\"))"
    )
    assert all("offset" not in r.url.params for r in fake.requests)


def test_empty_form_is_one_empty_read() -> None:
    fake = FakeRemedy()
    assert sync(connector_for(fake)) == []
    assert len([r for r in fake.requests if fake.is_ticket_query(r)]) == 1


# --- the fake itself answers like AR ----------------------------------------------------------------------


def test_fake_links_the_next_offset_page_as_a_list_of_hrefs() -> None:
    fake = FakeRemedy()
    for number in range(1, 4):
        fake.add_ticket(incident(number, T0 + timedelta(seconds=number)))
    fake.tokens.add("t")
    request = httpx.Request(
        "GET",
        f"{fake.base_url}/api/arsys/v1/entry/HPD:Help%20Desk",
        params={"offset": "0", "limit": "2", "sort": "Incident Number.desc"},
        headers={"Authorization": "AR-JWT t"},
    )
    body = fake.handle(request).json()
    assert [e["values"]["Incident Number"] for e in body["entries"]] == ["INC000000000003", "INC000000000002"]
    assert body["entries"][0]["_links"]["self"][0]["href"].endswith("/HPD:Help%20Desk/INC000000000003")
    next_url = httpx.URL(body["_links"]["next"][0]["href"])
    assert next_url.params["offset"] == "2"
    assert Qualification("NOT ('Status' = \"Closed\") AND 'Priority' != \"Low\"").predicate(
        {"Status": "Assigned", "Priority": "High"}
    )


# --- sessions and errors ----------------------------------------------------------------------------------


def test_probe_logs_in_reads_one_record_and_logs_out() -> None:
    fake = FakeRemedy()
    fake.add_ticket(incident(1, T0))
    assert check(connector_for(fake)).ok
    login, read, logout = fake.requests
    assert login.content.decode() == f"username=Demo&password={PASSWORD}"
    assert read.url.params["limit"] == "1"
    assert (logout.method, logout.url.path) == ("POST", "/api/jwt/logout")
    assert fake.logouts == ["jwt-token-1"] and not fake.tokens


def test_wrong_password_is_arerr_623_without_retries_or_secrets() -> None:
    fake = FakeRemedy()
    result = check(connector_for(fake, good_credentials=False))
    assert result.problem is CheckProblem.AUTHENTICATION
    assert "ARERR 623 Authentication failed" in result.message
    assert result.hint == "Remedy refused the user name or password"
    assert "wrong-password" not in result.message and PASSWORD not in result.message
    assert len(fake.requests) == 1  # no login storm, and no logout of a session we never had


def test_expired_token_logs_in_again_once_and_goes_on() -> None:
    fake = FakeRemedy()
    for number in range(1, 5):
        fake.add_ticket(incident(number, T0 + timedelta(seconds=number)))
    connector = connector_for(fake)

    async def go() -> list[str]:
        seen: list[str] = []
        async for page in connector.fetch(None, page_size=2):
            seen.extend(t.external_id for t in page.tickets)
            fake.expire_tokens()
        await connector.close()
        return seen

    assert run(go()) == [f"INC{n:012d}" for n in range(1, 5)]
    assert fake.logins == 3


def test_a_401_right_after_login_is_raised_not_looped() -> None:
    fake = FakeRemedy()
    original = fake.route

    def reject_reads(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/api/arsys/"):
            return fake.error_response(401, "Authentication failed", number=623)
        return original(request)

    fake.route = reject_reads  # type: ignore[method-assign]
    result = check(connector_for(fake))
    assert result.problem is CheckProblem.AUTHENTICATION
    assert [r.url.path for r in fake.requests] == [
        "/api/jwt/login",
        "/api/arsys/v1/entry/HPD:Help Desk",
        "/api/jwt/login",
        "/api/arsys/v1/entry/HPD:Help Desk",
        "/api/jwt/logout",
    ]


def test_failed_logout_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeRemedy()
    connector = connector_for(fake)

    async def go() -> None:
        await connector.probe()
        fake.expire_tokens()
        await connector.close()

    with caplog.at_level(logging.INFO, logger="connectors.ticketing.remedy"):
        run(go())
    assert "logout failed" in caplog.text
    assert "ARERR 623" in caplog.text


def test_a_token_echoed_by_the_server_is_masked() -> None:
    fake = FakeRemedy()
    original = fake.route

    def echo(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/api/arsys/"):
            token = request.headers["Authorization"]
            return fake.error_response(400, f"Bad request from {token}", number=8939)
        return original(request)

    fake.route = echo  # type: ignore[method-assign]
    result = check(connector_for(fake))
    assert result.problem is CheckProblem.OTHER
    assert "ARERR 8939" in result.message
    assert "jwt-token-1" not in result.message


def test_unknown_form_is_not_found() -> None:
    fake = FakeRemedy()
    result = check(connector_for(fake, form="HPD:NoSuchForm"))
    assert result.problem is CheckProblem.NOT_FOUND
    assert "ARERR 303 Form does not exist on server : HPD:NoSuchForm" in result.message


def test_a_login_page_instead_of_a_token_is_a_bad_response() -> None:
    fake = FakeRemedy()

    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>Mid Tier login</html>", headers={"Content-Type": "text/html"})

    result = check(RemedyConnector.create(fake.settings(), transport=httpx.MockTransport(html)))
    assert result.problem is CheckProblem.BAD_RESPONSE
    assert "REST port" in result.message


def test_a_login_answer_echoing_the_form_is_not_taken_as_a_token() -> None:
    """A 200 whose text is the login form it was sent: as a token it would carry the password into every
    later request's header and any message quoting it."""
    fake = FakeRemedy()

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=f"You sent: {request.content.decode()}")

    result = check(RemedyConnector.create(fake.settings(), transport=httpx.MockTransport(echo)))
    assert result.problem is CheckProblem.BAD_RESPONSE
    assert "did not answer a token" in result.message
    assert "password" not in result.message


def test_server_error_then_success() -> None:
    fake = FakeRemedy()
    fake.add_ticket(incident(1, T0))
    fake.fail_next(InjectedFailure(status=500, message="ARERR 8760 server busy"))
    assert ids(sync(connector_for(fake))) == ["INC000000000001"]


# --- the standard suite -----------------------------------------------------------------------------------


class TestRemedyStandard(StandardConnectorSuite):
    fake_cls = FakeRemedy
