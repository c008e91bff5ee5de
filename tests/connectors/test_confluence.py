"""Confluence specifics: Cloud and Data Center shapes, CQL bounds in the user's zone, paging, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from connectors.base import CheckProblem, CheckResult, ConnectorSettings, Cursor, Page
from connectors.errors import ConfigurationError, PagingStalledError, RequestRejectedError
from connectors.knowledge.confluence import (
    ConfluenceConnector,
    article_state,
    confluence_error_text,
    cql_minute,
)
from connectors.testing.fake_system import InjectedFailure, Misbehaviour
from connectors.testing.standard_suite import StandardConnectorSuite
from core.knowledge.records import ArticleState, ArticleValues
from tests.connectors.fake_confluence import FakeConfluence, minimal_docx, minimal_pdf


class TestConfluenceCloudStandard(StandardConnectorSuite):
    fake_cls = FakeConfluence


class TestConfluenceDataCenterStandard(StandardConnectorSuite):
    fake_cls = FakeConfluence

    @pytest.fixture
    def fake_factory(self) -> Callable[[], FakeConfluence]:
        return lambda: FakeConfluence(cloud=False)


# --- helpers ----------------------------------------------------------------------------------------------

T0 = datetime(2026, 3, 2, 8, 10, 30, tzinfo=UTC)


async def _no_sleep(_seconds: float) -> None:
    return None


def connector_for(fake: FakeConfluence, **options: Any) -> ConfluenceConnector:
    return ConfluenceConnector.create(fake.settings(**options), transport=fake.transport(), sleep=_no_sleep)


def fetch_all(fake: FakeConfluence, since: Cursor | None = None, size: int = 5, **options: Any) -> list[Page]:
    async def go() -> list[Page]:
        connector = connector_for(fake, **options)
        try:
            return [page async for page in connector.fetch(since, page_size=size)]
        finally:
            await connector.close()

    return asyncio.run(go())


def articles_of(pages: list[Page]) -> list[ArticleValues]:
    return [article for page in pages for article in page.articles]


def cql_queries(fake: FakeConfluence) -> list[str]:
    return [r.url.params["cql"] for r in fake.requests if fake.is_ticket_query(r)]


@pytest.fixture(params=[True, False], ids=["cloud", "datacenter"])
def fake(request: pytest.FixtureRequest) -> FakeConfluence:
    return FakeConfluence(cloud=request.param)


# --- what an article becomes ------------------------------------------------------------------------------


def test_a_page_becomes_a_markdown_article_with_its_link_space_label_and_author(fake: FakeConfluence) -> None:
    fake.add_ticket(fake.new_ticket(1, T0))
    [article] = articles_of(fetch_all(fake))
    assert (article.external_id, article.number, article.source_system) == ("98301", "98301", "confluence")
    assert article.title == "Restart service 1 after a 502"
    assert article.state is ArticleState.PUBLISHED
    assert (article.space, article.category, article.author) == ("Operations", "runbook", "Author 1")
    assert article.updated_at == T0.replace(microsecond=0)
    assert article.body == (
        "## Symptoms\n\nService 1 answers **502**.\n\n"
        "## Steps\n\n1. Log in to the host.\n2. Restart the service:\n\n"
        "   ```bash\n   sudo systemctl restart svc1\n   ```\n\n> **Warning**\n>\n> Drain the node first."
    )
    assert "ac:structured-macro" in article.raw_payload["body"]["storage"]["value"]
    if fake.cloud:
        assert (
            article.url
            == "https://acme.atlassian.net/wiki/spaces/OPS/pages/98301/Restart+service+1+after+a+502"
        )
    else:
        assert article.url == "https://wiki.example.com/confluence/display/OPS/Restart+service+1+after+a+502"
    assert article.attachments == () and article.attachment_text is None
    assert not any("/child/attachment" in r.url.path for r in fake.requests)  # off by default


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("current", ArticleState.PUBLISHED),
        ("draft", ArticleState.DRAFT),
        ("archived", ArticleState.RETIRED),
        ("trashed", ArticleState.RETIRED),
        ("something-new", ArticleState.DRAFT),
        ("historical", None),
    ],
)
def test_page_status_maps_to_the_article_state(status: str, state: ArticleState | None) -> None:
    assert article_state(status) is state


# --- the CQL a sync sends ---------------------------------------------------------------------------------


def test_a_full_sync_asks_for_the_spaces_pages_by_modification_without_a_bound(fake: FakeConfluence) -> None:
    fetch_all(fake)
    assert cql_queries(fake) == ['type = page AND space IN ("OPS") ORDER BY lastmodified asc']
    [search] = [r for r in fake.requests if fake.is_ticket_query(r)]
    assert search.url.params["expand"] == "body.storage,version,space,history,metadata.labels"
    prefix = "/wiki" if fake.cloud else "/confluence"
    assert search.url.path == f"{prefix}/rest/api/content/search"


def test_an_incremental_bound_is_the_cursors_minute_in_the_users_zone(fake: FakeConfluence) -> None:
    # Cloud: the profile's zone from /user/current (Sydney, UTC+11 in March); DC: the option (Berlin, UTC+1).
    fetch_all(fake, Cursor(T0, "98301"), spaces="OPS, KB", cql='label = "runbook"')
    expected = "2026/03/02 19:10" if fake.cloud else "2026/03/02 09:10"
    assert cql_queries(fake) == [
        f'type = page AND space IN ("OPS", "KB") AND (label = "runbook") AND lastmodified >= "{expected}" '
        "ORDER BY lastmodified asc"
    ]


def test_without_a_known_zone_the_bound_goes_back_twelve_hours() -> None:
    fake = FakeConfluence(cloud=False)
    fetch_all(fake, Cursor(T0, "98301"), time_zone="")
    assert cql_queries(fake) == [
        'type = page AND space IN ("OPS") AND lastmodified >= "2026/03/01 20:10" ORDER BY lastmodified asc'
    ]


def test_cql_minute_steps_back_over_a_repeated_dst_hour() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # 2026-10-25 00:30 UTC is 02:30 CEST, the first of two 02:30s: read as the later one, it would be late.
    assert cql_minute(datetime(2026, 10, 25, 0, 30, 59, tzinfo=UTC), berlin) == "2026/10/25 01:30"
    assert cql_minute(datetime(2026, 3, 2, 8, 10, 59, tzinfo=UTC), berlin) == "2026/03/02 09:10"


def test_a_cursor_drops_what_it_stored_and_keeps_what_came_at_the_same_time(fake: FakeConfluence) -> None:
    for number in (1, 2, 3):
        fake.add_ticket(fake.new_ticket(number, T0))
    fake.add_ticket(fake.new_ticket(4, T0 - timedelta(seconds=20)))  # same minute, before the cursor
    cursor = Cursor(T0, "98302", {"keys_at_cursor": ["98301", "98302"]})
    pages = fetch_all(fake, cursor)
    assert [a.external_id for a in articles_of(pages)] == ["98303"]
    assert pages[-1].cursor.extra["keys_at_cursor"] == ["98301", "98302", "98303"]


def test_a_burst_of_more_than_a_page_in_one_minute_is_paged_by_the_servers_position(
    fake: FakeConfluence,
) -> None:
    for number in range(1, 13):
        fake.add_ticket(fake.new_ticket(number, T0 + timedelta(seconds=number)))
    pages = fetch_all(fake)
    assert sorted(a.external_id for a in articles_of(pages)) == [str(98300 + n) for n in range(1, 13)]
    searches = [r for r in fake.requests if fake.is_ticket_query(r)]
    assert len(searches) == 3
    position = "cursor" if fake.cloud else "start"
    assert [position in r.url.params for r in searches] == [False, True, True]


def test_a_server_answering_smaller_pages_than_asked_is_paged_without_a_false_stall(
    fake: FakeConfluence,
) -> None:
    fake.page_size = 3  # the server's cap, below the 5 asked for
    for number in range(1, 8):
        fake.add_ticket(fake.new_ticket(number, T0))
    articles = articles_of(fetch_all(fake, size=5))
    assert sorted(a.external_id for a in articles) == [str(98300 + n) for n in range(1, 8)]
    assert len([r for r in fake.requests if fake.is_ticket_query(r)]) == 3


def test_pages_spread_over_minutes_restart_the_query_at_the_newest_minute(fake: FakeConfluence) -> None:
    for number in range(1, 8):
        fake.add_ticket(fake.new_ticket(number, T0 + timedelta(minutes=number)))
    articles = articles_of(fetch_all(fake, size=3))
    assert [a.external_id for a in articles] == [str(98300 + n) for n in range(1, 8)]
    bounds = [q.split("lastmodified >= ")[1][:18] if ">=" in q else None for q in cql_queries(fake)]
    zone = ZoneInfo("Australia/Sydney" if fake.cloud else "Europe/Berlin")
    minute = [cql_minute(T0 + timedelta(minutes=n), zone) for n in (3, 5)]
    assert bounds == [None, f'"{minute[0]}"', f'"{minute[1]}"']
    assert not any("cursor" in r.url.params or "start" in r.url.params for r in fake.requests)


# --- settings and errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "auth_mode", "words"),
    [
        ({"deployment": "cloud"}, "pat", "API token"),
        ({"deployment": "datacenter"}, "api_token", "personal access token"),
        ({"deployment": "server-2"}, "pat", "unknown Confluence deployment"),
    ],
)
def test_the_deployment_takes_only_its_own_credentials(
    options: dict[str, Any], auth_mode: str, words: str
) -> None:
    settings = ConnectorSettings(
        "Ops wiki",
        "https://wiki.example.com",
        auth_mode,
        options,
        {"api_token": "x", "personal_access_token": "y"},
    )
    with pytest.raises(ConfigurationError, match=words):
        ConfluenceConnector.create(settings, transport=FakeConfluence().transport())


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"spaces": "OPS, bad key"}, "not a space key"),
        ({"cql": "label = x order by created"}, "ORDER BY"),
        ({"time_zone": "Mars/Olympus"}, "unknown time zone"),
        ({"page_size": 500}, "1 to 100"),
    ],
)
def test_settings_mistakes_are_clear_before_any_request(options: dict[str, Any], words: str) -> None:
    fake = FakeConfluence(cloud=False)
    with pytest.raises(ConfigurationError, match=words):
        fetch_all(fake, **options)
    assert [r for r in fake.requests if fake.is_ticket_query(r)] == []


def test_a_cloud_site_url_given_with_wiki_is_not_doubled() -> None:
    fake = FakeConfluence()
    fake.add_ticket(fake.new_ticket(1, T0))
    fake.base_url = "https://acme.atlassian.net/wiki"
    assert len(articles_of(fetch_all(fake))) == 1
    assert all(r.url.path.startswith("/wiki/rest/api/") for r in fake.requests)


def test_a_404_says_it_may_mean_no_permission(fake: FakeConfluence) -> None:
    async def go() -> CheckResult:
        connector = connector_for(fake)
        try:
            return await connector.check()
        finally:
            await connector.close()

    fake.fail_next(InjectedFailure(404, message="No space with key : OPS"))
    result = asyncio.run(go())
    assert result.problem is CheckProblem.NOT_FOUND
    assert "No space with key : OPS" in result.message
    assert "may not view the space" in result.message


def test_error_bodies_of_both_api_generations_are_read() -> None:
    v2 = httpx.Response(
        404,
        json={
            "errors": [
                {"status": 404, "code": "NOT_FOUND", "title": "Not Found", "detail": "Page 12 not found"}
            ]
        },
    )
    v1 = httpx.Response(
        400, json={"statusCode": 400, "message": "Could not parse cql : type = pag", "reason": "Bad Request"}
    )
    reason_only = httpx.Response(403, json={"statusCode": 403, "message": "", "reason": "Forbidden"})
    assert confluence_error_text(v2) == "Not Found: Page 12 not found"
    assert confluence_error_text(v1) == "Could not parse cql : type = pag"
    assert confluence_error_text(reason_only) == "Forbidden"
    assert confluence_error_text(httpx.Response(502, text="Bad gateway")) == "Bad gateway"


def test_bad_cql_in_the_extra_filter_is_a_400_with_the_parsers_words_and_a_hint() -> None:
    fake = FakeConfluence()
    fake.add_ticket(fake.new_ticket(1, T0))
    with pytest.raises(RequestRejectedError) as caught:
        fetch_all(fake, cql="labelx ~ runbook")
    assert "Could not parse cql" in str(caught.value)
    assert "check the space keys and the extra CQL filter" in str(caught.value)


def test_an_anonymous_answer_to_the_credentials_check_is_an_authentication_problem() -> None:
    fake = FakeConfluence(cloud=False)
    fake._user = lambda: {"type": "anonymous", "displayName": "Anonymous"}  # type: ignore[method-assign]

    async def go() -> CheckResult:
        connector = connector_for(fake)
        try:
            return await connector.check()
        finally:
            await connector.close()

    result = asyncio.run(go())
    assert result.problem is CheckProblem.AUTHENTICATION
    assert "anonymous" in result.message


def test_a_server_ignoring_the_cursor_on_a_one_minute_burst_is_stopped(fake: FakeConfluence) -> None:
    for number in range(1, 13):
        fake.add_ticket(fake.new_ticket(number, T0))
    fake.misbehaviour = Misbehaviour.IGNORES_PAGE_TOKEN
    with pytest.raises(PagingStalledError, match="does not advance"):
        fetch_all(fake)
    assert len([r for r in fake.requests if fake.is_ticket_query(r)]) == 2


# --- attachments ------------------------------------------------------------------------------------------


def test_attachments_are_listed_and_their_text_indexed_when_asked(fake: FakeConfluence) -> None:
    fake.add_ticket(fake.new_ticket(1, T0))
    fake.attachments["98301"] = [
        ("restart.pdf", minimal_pdf("Restart the primary node", "Check the health endpoint")),
        ("checklist.docx", minimal_docx("Drain traffic", "Owner\tNOC")),
        ("notes.txt", b"Escalate to the DBA on call\n"),
        ("diagram.png", b"\x89PNG\r\n"),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf"),
    ]
    [article] = articles_of(fetch_all(fake, index_attachments=True))
    assert article.attachments == ("restart.pdf", "checklist.docx", "notes.txt", "diagram.png", "broken.pdf")
    assert article.attachment_text is not None
    sections = article.attachment_text.split("\n\n")
    assert len(sections) == 4  # the PNG is named, not read
    assert sections[:3] == [
        "--- restart.pdf ---\nRestart the primary node\nCheck the health endpoint",
        "--- checklist.docx ---\nDrain traffic\nOwner\tNOC",
        "--- notes.txt ---\nEscalate to the DBA on call",
    ]
    assert sections[3].startswith("[broken.pdf: not read, the PDF is damaged or not a PDF (")
    downloads = [r.url.path for r in fake.requests if "/download/" in r.url.path]
    prefix = "/wiki" if fake.cloud else "/confluence"
    assert downloads == [
        f"{prefix}/download/attachments/98301/{name}"
        for name in ("restart.pdf", "checklist.docx", "notes.txt", "broken.pdf")
    ]


def test_an_attachment_listing_that_fails_is_a_note_not_a_failed_sync() -> None:
    fake = FakeConfluence()
    fake.add_ticket(fake.new_ticket(1, T0))
    fake.add_ticket(fake.new_ticket(2, T0 + timedelta(minutes=1)))
    original = fake._attachment_list

    def flaky(page_id: str) -> httpx.Response:
        if page_id == "98301":
            return fake.error_response(403, "You are not permitted to view attachments")
        return original(page_id)

    fake._attachment_list = flaky  # type: ignore[method-assign]
    fake.attachments["98302"] = [("notes.txt", b"ok")]
    first, second = articles_of(fetch_all(fake, index_attachments=True))
    assert first.attachments == () and first.attachment_text is not None
    assert "attachments not read" in first.attachment_text and "not permitted" in first.attachment_text
    assert (second.attachments, second.attachment_text) == (("notes.txt",), "--- notes.txt ---\nok")


def test_an_attachment_over_the_cap_is_not_downloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("connectors.knowledge.confluence.MAX_ATTACHMENT_BYTES", 10)
    fake = FakeConfluence()
    fake.add_ticket(fake.new_ticket(1, T0))
    fake.attachments["98301"] = [("big.txt", b"x" * 11)]
    [article] = articles_of(fetch_all(fake, index_attachments=True))
    assert article.attachment_text == "[big.txt: not read, 11 bytes is over the 10-byte cap]"
    assert not any("/download/" in r.url.path for r in fake.requests)
