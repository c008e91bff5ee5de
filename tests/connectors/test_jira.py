"""Jira-specific behaviour the standard suite cannot know about: both deployments, ADF and wiki markup, the
minute-precision JQL lookback in the account's time zone, Cloud's removed search API, bad JQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import pytest

from connectors.base import CheckProblem, ConnectorSettings, Cursor, Page
from connectors.errors import (
    ConfigurationError,
    GoneError,
    PagingStalledError,
    PermissionDeniedError,
    RequestRejectedError,
)
from connectors.http import RetryPolicy
from connectors.testing.fake_system import FakeTicket, InjectedFailure, Misbehaviour
from connectors.testing.standard_suite import StandardConnectorSuite
from connectors.ticketing.jira import SPEC, JiraConnector, jql_minute
from core.importing.mapping import resolve_mapping
from core.importing.tickets import to_ticket_values
from core.store.models import TicketKind
from tests.connectors.fake_jira import API_TOKEN, GONE_MESSAGE, PAT, FakeJira, adf, rate_limit_headers

T = TypeVar("T")
T0 = datetime(2024, 6, 10, 17, 0, 10, 250000, tzinfo=UTC)  # 10:00:10.250 in Los Angeles (PDT)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def ticket(key: str, updated: datetime, **extra: Any) -> FakeTicket:
    fields = {
        name: extra.pop(name)
        for name in ("title", "description", "status", "severity", "resolution_notes")
        if name in extra
    }
    return FakeTicket(
        external_id=key,
        title=fields.pop("title", f"Issue {key}"),
        description=fields.pop("description", f"Details of {key}"),
        updated_at=updated,
        created_at=updated - timedelta(hours=1),
        extra=extra,
        **fields,
    )


def connector(fake: FakeJira, sleeps: Sleeps | None = None, **options: Any) -> JiraConnector:
    return connector_for(fake, fake.settings(**options), sleeps)


def connector_for(fake: FakeJira, settings: ConnectorSettings, sleeps: Sleeps | None = None) -> JiraConnector:
    return JiraConnector.create(
        settings, transport=fake.transport(), sleep=sleeps or Sleeps(), retry=RetryPolicy(attempts=3)
    )


async def pages_of(
    jira: JiraConnector, since: Cursor | None = None, page_size: int | None = None
) -> list[Page]:
    try:
        return [page async for page in jira.fetch(since, page_size=page_size)]
    finally:
        await jira.close()


def keys(pages: list[Page]) -> list[str]:
    return [t.external_id for page in pages for t in page.tickets]


@pytest.fixture(params=[True, False], ids=["cloud", "datacenter"])
def fake(request: pytest.FixtureRequest) -> FakeJira:
    return FakeJira(cloud=request.param)


class TestJiraCloudStandard(StandardConnectorSuite):
    fake_cls = FakeJira


class TestJiraDataCenterStandard(StandardConnectorSuite):
    fake_cls = FakeJira

    @pytest.fixture
    def fake_factory(self) -> Callable[[], FakeJira]:
        return lambda: FakeJira(cloud=False, time_zone="Europe/Berlin")


# --- configuration ----------------------------------------------------------------------------------------


def test_spec_marks_secrets_and_the_minute_precision() -> None:
    assert SPEC.type == "jira"
    assert set(SPEC.secret_keys()) == {
        "api_token",
        "personal_access_token",
        "consent_client_secret",  # the browser sign-in (issue 17)
        "oauth_tokens",
    }
    assert set(SPEC.secret_keys("oauth_consent")) == {"consent_client_secret", "oauth_tokens"}
    assert SPEC.secret_keys("pat") == ("personal_access_token",)
    assert SPEC.field("deployment").page == "where"
    assert SPEC.timestamp_precision == timedelta(minutes=1)


@pytest.mark.parametrize(
    ("deployment", "auth_mode", "words"),
    [("cloud", "pat", "API token"), ("datacenter", "api_token", "personal access token")],
)
def test_each_deployment_takes_only_its_own_credentials(deployment: str, auth_mode: str, words: str) -> None:
    settings = ConnectorSettings(
        "Jira", "https://x.example.com", auth_mode, {"deployment": deployment}, {"api_token": API_TOKEN}
    )
    with pytest.raises(ConfigurationError, match=words):
        JiraConnector.create(settings)


def test_order_by_in_the_users_jql_is_refused_before_any_request(fake: FakeJira) -> None:
    with pytest.raises(ConfigurationError, match="ORDER BY"):
        run(pages_of(connector(fake, jql="project = OPS ORDER BY created DESC")))
    assert fake.requests == []


# --- full sync and normalisation ----------------------------------------------------------------------------


def test_full_sync_normalises_like_the_csv_import(fake: FakeJira) -> None:
    if fake.cloud:
        description: Any = {
            "type": "doc",
            "version": 1,
            "content": [
                {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Symptoms"}]},
                {
                    "type": "paragraph",
                    "content": [
                        {"type": "text", "text": "VPN", "marks": [{"type": "strong"}]},
                        {"type": "text", "text": " drops every "},
                        {"type": "text", "text": "30s", "marks": [{"type": "code"}]},
                    ],
                },
                {"type": "codeBlock", "content": [{"type": "text", "text": "ORA-12541: TNS:no listener"}]},
            ],
        }
    else:
        description = "h2. Symptoms\n*VPN* drops every {{30s}}\n{code}ORA-12541: TNS:no listener{code}"
    fake.add_ticket(
        ticket(
            "OPS-7",
            T0,
            title="VPN drops",
            description_raw=description,
            status="Done",
            severity="Highest",
            assignee="Dana Ops",
            issuetype="[System] Service request",
            components=["Network"],
            labels=["vpn"],
            resolution_notes="Restarted the listener",
            ci="vpn-gw-01",
        )
    )
    fake.add_ticket(ticket("OPS-8", T0 + timedelta(minutes=1), labels=["db"]))
    pages = run(pages_of(connector(fake, ci_field="customfield_10060")))

    first, second = (t for page in pages for t in page.tickets)
    assert first.external_id == "OPS-7" and first.source_system == "jira"
    assert first.title == "VPN drops"
    assert "Symptoms" in first.description and "VPN drops every 30s" in first.description
    assert "ORA-12541: TNS:no listener" in first.description
    assert "*" not in first.description and "{code}" not in first.description
    assert first.status == "Done" and first.severity == "critical" and first.assignee == "Dana Ops"
    assert first.kind is TicketKind.REQUEST
    assert first.category == "Network" and second.category == "db"
    assert first.configuration_item == "vpn-gw-01"
    assert first.resolution_notes == "Restarted the listener"
    assert first.updated_at == T0 and first.updated_at.tzinfo == UTC
    assert first.resolved_at == T0 and first.created_at == T0 - timedelta(hours=1)
    assert first.source_url == f"{fake.base_url}/browse/OPS-7"
    assert first.raw_payload["key"] == "OPS-7"
    assert second.kind is TicketKind.INCIDENT and second.resolved_at is None and second.severity == "medium"
    assert fake.unexpected == []


def test_cloud_descriptions_are_atlassian_document_format() -> None:
    fake = FakeJira(cloud=True)
    doc = adf("Disk full on lnx-app-07")
    doc["content"].append({"type": "bulletList", "content": [_item("df -h"), _item("rotate logs")]})
    fake.add_ticket(ticket("OPS-1", T0, description_raw=doc))
    (page,) = run(pages_of(connector(fake)))
    assert page.tickets[0].description == "Disk full on lnx-app-07\n\ndf -h\n\nrotate logs"


def _item(text: str) -> dict[str, Any]:
    return {
        "type": "listItem",
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


def test_an_issue_from_a_jira_export_and_from_the_api_is_one_ticket() -> None:
    fake = FakeJira(cloud=True)
    fake.add_ticket(
        ticket("OPS-7", T0, title="VPN drops", status="In Progress", severity="High", issuetype="Incident")
    )
    (page,) = run(pages_of(connector(fake)))
    from_api = page.tickets[0]
    header = ["Issue key", "Summary", "Status", "Priority", "Issue Type", "Updated"]
    values = ["OPS-7", "VPN drops", "In Progress", "High", "Incident", "10/Jun/24 10:00 AM"]
    row = dict(zip(header, values, strict=True))
    from_csv = to_ticket_values(row, resolve_mapping(header, file_label="export.csv"), ZoneInfo("UTC"))
    for name in ("external_id", "source_system", "title", "status", "severity", "kind"):
        assert getattr(from_api, name) == getattr(from_csv, name), name


def test_paging_reads_every_issue_once_in_update_order(fake: FakeJira) -> None:
    for number in range(1, 8):
        fake.add_ticket(ticket(f"OPS-{number}", T0 + timedelta(seconds=number)))
    pages = run(pages_of(connector(fake), page_size=3))
    assert keys(pages) == [f"OPS-{n}" for n in range(1, 8)]
    assert [p.cursor.last_id for p in pages] == ["OPS-3", "OPS-6", "OPS-7"]
    if fake.cloud:
        assert all("startAt" not in s for s in fake.searches)
        assert [bool(s.get("nextPageToken")) for s in fake.searches] == [False, True, True]
    else:
        assert [s["startAt"] for s in fake.searches] == [0, 3, 6]
    assert fake.unexpected == []


def test_data_center_paging_survives_an_issue_updated_mid_sync() -> None:
    fake = FakeJira(cloud=False)
    for number in range(1, 13):
        fake.add_ticket(ticket(f"OPS-{number}", T0 + timedelta(seconds=number)))

    async def sync_with_an_edit() -> list[str]:
        jira = connector(fake)
        seen: list[str] = []
        try:
            async for page in jira.fetch(None, page_size=8):
                seen.extend(t.external_id for t in page.tickets)
                if len(seen) == 8:  # someone edits OPS-1 while we read: it moves to the end of the order
                    fake.tickets["OPS-1"].updated_at = T0 + timedelta(minutes=5)
        finally:
            await jira.close()
        return seen

    seen = run(sync_with_an_edit())
    assert seen == [f"OPS-{n}" for n in range(1, 13)] + ["OPS-1"]  # offset 8 alone would skip OPS-9
    assert [s["startAt"] for s in fake.searches] == [0, 6]


@pytest.mark.parametrize("cloud", [True, False], ids=["cloud", "datacenter"])
def test_a_server_ignoring_the_page_token_in_a_one_minute_burst_is_stopped(cloud: bool) -> None:
    """Twelve issues updated within one minute: the keyset cannot move, so the query pages on by token or
    offset; a server ignoring it answers the same issues and the guard stops the sync at once."""
    fake = FakeJira(cloud=cloud)
    for number in range(1, 13):
        fake.add_ticket(ticket(f"OPS-{number}", T0 + timedelta(seconds=number)))
    fake.misbehaviour = Misbehaviour.IGNORES_PAGE_TOKEN
    found: list[Page] = []

    async def go() -> None:
        jira = connector(fake)
        try:
            async for page in jira.fetch(None, page_size=5):
                found.append(page)
        finally:
            await jira.close()

    with pytest.raises(PagingStalledError, match="the paging does not advance") as stopped:
        run(go())
    assert len(fake.searches) == stopped.value.requests <= 3
    assert keys(found) == [f"OPS-{n}" for n in range(1, 6)]


def test_cloud_paging_survives_an_issue_updated_mid_sync_without_trusting_the_page_token() -> None:
    """The fake resolves ``nextPageToken`` as an offset, as Jira may: following it after the edit would skip
    OPS-9. The second query restarts at OPS-8's minute instead (10:08 in the account's zone) and re-reads
    only OPS-8."""
    fake = FakeJira(cloud=True)
    for number in range(1, 13):
        fake.add_ticket(ticket(f"OPS-{number}", T0 + timedelta(minutes=number)))

    async def sync_with_an_edit() -> list[str]:
        jira = connector(fake)
        seen: list[str] = []
        try:
            async for page in jira.fetch(None, page_size=8):
                seen.extend(t.external_id for t in page.tickets)
                if len(seen) == 8:
                    fake.tickets["OPS-1"].updated_at = T0 + timedelta(hours=1)
        finally:
            await jira.close()
        return seen

    assert run(sync_with_an_edit()) == [f"OPS-{n}" for n in range(1, 13)] + ["OPS-1"]
    assert [bool(s.get("nextPageToken")) for s in fake.searches] == [False, False]
    assert 'updated >= "2024-06-10 10:08"' in fake.searches[1]["jql"]
    assert fake.unexpected == []


def test_a_malformed_issue_fails_alone_and_the_cursor_moves_past_it(fake: FakeJira) -> None:
    fake.add_ticket(ticket("OPS-1", T0, title=""))
    fake.add_ticket(ticket("OPS-2", T0 + timedelta(seconds=1)))
    (page,) = run(pages_of(connector(fake)))
    assert keys([page]) == ["OPS-2"]
    assert [(f.external_id, f.reason) for f in page.failures] == [("OPS-1", "summary is empty")]
    assert page.cursor.last_id == "OPS-2"


# --- incremental sync: the minute-precision lookback --------------------------------------------------------


def test_an_issue_updated_later_in_the_cursors_minute_is_not_missed_nor_stored_ones_recounted(
    fake: FakeJira,
) -> None:
    fake.add_ticket(ticket("OPS-1", T0))
    fake.add_ticket(ticket("OPS-2", T0 + timedelta(seconds=20)))
    (first,) = run(pages_of(connector(fake)))
    assert fake.query_since(fake.requests[-1]) is None  # a full sync is bounded only by 1970
    fake.add_ticket(ticket("OPS-3", T0 + timedelta(seconds=35)))  # same minute, after the sync

    (second,) = run(pages_of(connector(fake), first.cursor))
    assert keys([second]) == ["OPS-3"]
    jql = fake.searches[-1]["jql"]
    bound = '"2024-06-10 10:00"' if fake.time_zone else '"2024-06-10 05:00"'
    assert f"updated >= {bound}" in jql and jql.endswith("ORDER BY updated ASC, key ASC")
    assert fake.query_since(fake.requests[-1]) == datetime(2024, 6, 10, 17, 0, tzinfo=UTC)

    assert run(pages_of(connector(fake), second.cursor)) == []  # nothing new: no page at all


def test_issues_sharing_the_cursors_millisecond_resume_without_loss_or_repeat(fake: FakeJira) -> None:
    for key in ("OPS-9", "OPS-10", "OPS-11"):  # as text OPS-10 < OPS-9: a "key <= last" rule loses it
        fake.add_ticket(ticket(key, T0))

    async def first_page_only() -> Page:
        jira = connector(fake)
        try:
            async for page in jira.fetch(None, page_size=1):
                return page  # the sync is killed after its first page
        finally:
            await jira.close()
        raise AssertionError("no page")

    first = run(first_page_only())
    cursor = Cursor.from_state(first.cursor.to_state())  # as the engine stores and reloads it
    assert cursor is not None
    rest = run(pages_of(connector(fake), cursor))
    assert sorted(keys([first, *rest])) == ["OPS-10", "OPS-11", "OPS-9"]
    assert len(keys([first, *rest])) == 3
    stored_rule = connector(fake)
    assert stored_rule.already_stored(first.tickets[0], cursor)
    assert not any(stored_rule.already_stored(t, cursor) for p in rest for t in p.tickets)
    run(stored_rule.close())


def test_jql_bound_is_the_minute_in_the_accounts_zone() -> None:
    moment = datetime(2024, 1, 15, 9, 59, 59, 999000, tzinfo=UTC)
    assert jql_minute(moment, ZoneInfo("Asia/Kolkata")) == "2024-01-15 15:29"
    assert jql_minute(moment, ZoneInfo("America/Los_Angeles")) == "2024-01-15 01:59"
    assert jql_minute(moment, None) == "2024-01-14 21:59"  # unknown zone: early enough for any zone


def test_jql_bound_in_the_repeated_dst_hour_is_never_after_the_cursor() -> None:
    new_york = ZoneInfo("America/New_York")
    for moment in (datetime(2024, 11, 3, 5, 30, tzinfo=UTC), datetime(2024, 11, 3, 6, 30, tzinfo=UTC)):
        literal = jql_minute(moment, new_york)
        earliest = datetime.strptime(literal, "%Y-%m-%d %H:%M").replace(tzinfo=new_york, fold=0)
        latest = earliest.replace(fold=1)
        assert max(earliest, latest) <= moment, literal


def test_the_account_zone_decides_the_bound_not_the_machines() -> None:
    fake = FakeJira(cloud=False, time_zone="Asia/Kolkata")
    fake.add_ticket(ticket("OPS-1", T0))
    (first,) = run(pages_of(connector(fake)))
    fake.add_ticket(ticket("OPS-2", T0 + timedelta(seconds=5)))
    (second,) = run(pages_of(connector(fake), first.cursor))
    assert keys([second]) == ["OPS-2"]
    assert 'updated >= "2024-06-10 22:30"' in fake.searches[-1]["jql"]
    assert second.tickets[0].updated_at == T0 + timedelta(seconds=5)  # "+0530" in the payload, UTC here
    assert second.tickets[0].raw_payload["fields"]["updated"].endswith("+0530")


@pytest.mark.parametrize("cloud", [True, False], ids=["cloud", "datacenter"])
def test_a_hidden_time_zone_widens_the_lookback_without_recounting(cloud: bool) -> None:
    fake = FakeJira(cloud=cloud, time_zone=None)
    fake.add_ticket(ticket("OPS-1", T0 - timedelta(hours=3)))
    fake.add_ticket(ticket("OPS-2", T0))
    (first,) = run(pages_of(connector(fake)))
    fake.add_ticket(ticket("OPS-3", T0 + timedelta(seconds=1)))
    (second,) = run(pages_of(connector(fake), first.cursor))
    assert keys([second]) == ["OPS-3"]
    assert 'updated >= "2024-06-10 05:00"' in fake.searches[-1]["jql"]


# --- scope, errors and check ------------------------------------------------------------------------------


def test_projects_and_the_users_jql_are_anded_in_parentheses(fake: FakeJira) -> None:
    fake.add_ticket(ticket("OPS-1", T0, status="Open"))
    fake.add_ticket(ticket("OPS-2", T0, status="Done"))
    fake.add_ticket(ticket("HR-1", T0, status="Open"))
    pages = run(pages_of(connector(fake, projects="ops, it", jql="status != Done")))
    assert keys(pages) == ["OPS-1"]
    assert fake.searches[-1]["jql"].startswith(
        '(project in ("OPS", "IT") AND (status != Done)) AND updated >='
    )


def test_bad_jql_shows_the_servers_message(fake: FakeJira) -> None:
    jira = connector(fake, jql="status = (Done")
    with pytest.raises(RequestRejectedError) as caught:
        run(pages_of(jira))
    message = str(caught.value)
    assert "HTTP 400" in message and "Expecting ')' before the end of the query." in message
    assert "JQL filter" in message
    result = run(connector(fake, jql="priorty = High").check())
    assert not result.ok and "Field 'priorty' does not exist" in result.message


def test_cloud_removed_search_api_gives_a_clear_message(fake: FakeJira) -> None:
    fake.fail_next(InjectedFailure(status=410, message=GONE_MESSAGE))
    with pytest.raises(GoneError) as caught:
        run(pages_of(connector(fake)))
    message = str(caught.value)
    assert "HTTP 410" in message and "The requested API has been removed" in message
    assert ("update Runbook Desk" if fake.cloud else "choose the Cloud deployment") in message

    fake.fail_next(InjectedFailure(status=410, message=GONE_MESSAGE))
    result = run(connector(fake).check())
    assert result.problem is CheckProblem.GONE and "/rest/api/3/search/jql" in result.message


def test_the_old_cloud_search_paths_answer_gone() -> None:
    fake = FakeJira(cloud=True)
    for path in ("/rest/api/3/search", "/rest/api/2/search"):
        response = fake.handle(httpx.Request("GET", f"{fake.base_url}{path}?jql=project%3DOPS"))
        assert response.status_code == 410 and response.json()["errorMessages"] == [GONE_MESSAGE]


def test_a_data_center_connector_pointed_at_cloud_is_told_to_choose_cloud() -> None:
    fake = FakeJira(cloud=True)
    settings = ConnectorSettings(
        "Jira", fake.base_url, "pat", {"deployment": "datacenter"}, {"personal_access_token": PAT}
    )
    result = run(connector_for(fake, settings).check())
    assert result.problem is CheckProblem.PERMISSION
    assert "Failed to parse Connect Session Auth Token" in result.message
    assert "does not take personal access tokens" in result.message
    assert PAT not in result.message


def test_check_names_the_account_and_proves_read_access(fake: FakeJira) -> None:
    fake.add_ticket(ticket("OPS-1", T0))
    result = run(connector(fake).check())
    assert result.ok and "Fake Analyst" in result.message and result.hint == ""
    search = "/rest/api/3/search/jql" if fake.cloud else "/jira/rest/api/2/search"
    # the read probe, then the write check (issue 13) asks for the account's project permissions
    assert [r.url.path for r in fake.requests] == [f"{fake.api}/myself", search, f"{fake.api}/mypermissions"]
    assert fake.searches[-1]["maxResults"] == 1


def test_check_with_wrong_credentials_is_clear_and_does_not_retry(fake: FakeJira) -> None:
    jira = connector_for(fake, fake.settings(good_credentials=False))
    result = run(jira.check())
    assert result.problem is CheckProblem.AUTHENTICATION
    assert "HTTP 401" in result.message and "/myself" in result.message
    assert ("API token" if fake.cloud else "personal access token") in result.message
    assert jira.http.requests_sent == 1
    assert "wrong" not in result.message and API_TOKEN not in result.message and PAT not in result.message


def test_check_explains_browse_projects_when_nothing_is_visible(fake: FakeJira) -> None:
    fake.add_ticket(ticket("OPS-1", T0))
    fake.browse_permission = False
    result = run(connector(fake).check())
    assert result.ok and "found no issues" in result.message and "Browse projects" in result.hint

    fake.fail_next(InjectedFailure(status=403, message="You do not have permission"), times=1)
    with pytest.raises(PermissionDeniedError, match="Browse projects"):
        run(pages_of(connector(fake)))


def test_rate_limit_waits_as_jira_says_then_succeeds(fake: FakeJira) -> None:
    fake.add_ticket(ticket("OPS-1", T0))
    fake.fail_next(InjectedFailure(status=429, message="Rate limit exceeded", headers=rate_limit_headers(7)))
    sleeps = Sleeps()
    pages = run(pages_of(connector(fake, sleeps)))
    assert keys(pages) == ["OPS-1"]
    assert len(sleeps.waits) == 1 and 7 <= sleeps.waits[0] <= 7.5


def test_resolution_notes_from_the_last_comment_only_when_configured(fake: FakeJira) -> None:
    notes = "Rebooted the gateway"
    fake.add_ticket(ticket("OPS-1", T0, status="Done", comments=["Looking"], resolution_notes=notes))
    fake.add_ticket(ticket("OPS-2", T0 + timedelta(seconds=1), comments=["Still looking"]))
    pages = run(pages_of(connector(fake, resolution_source="last_comment")))
    found = {t.external_id: t.resolution_notes for p in pages for t in p.tickets}
    assert found == {"OPS-1": notes, "OPS-2": None}  # an open issue's last comment is no resolution
    assert "comment" in fake.searches[-1]["fields"]

    run(pages_of(connector(fake, resolution_source="none")))
    assert "comment" not in fake.searches[-1]["fields"]
    assert "customfield_10050" not in fake.searches[-1]["fields"]
