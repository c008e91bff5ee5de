"""ServiceDesk Plus solutions specifics; the common contract is the standard suite (on-premises and Cloud)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from connectors.base import CheckProblem, ConnectorKind, Cursor, NewIncident
from connectors.configs import create_config
from connectors.errors import ConfigurationError, PermissionDeniedError
from connectors.knowledge.servicedesk_plus_solutions import (
    ServiceDeskPlusSolutionsConnector,
    keyword_list,
    normalise_solution,
    solution_state,
    solution_url,
)
from connectors.registry import connector_class
from connectors.sync import SyncReport, run_sync
from connectors.testing.fake_system import InjectedFailure
from connectors.testing.standard_suite import SleepRecorder, StandardConnectorSuite
from core.knowledge.records import ArticleState
from core.store.models import KnowledgeArticle
from core.store.tenancy import TenantSession
from tests.connectors.fake_servicedesk_plus import time_object
from tests.connectors.fake_servicedesk_plus_solutions import FakeServiceDeskPlusSolutions, solution_html


class TestServiceDeskPlusSolutionsStandard(StandardConnectorSuite):
    fake_cls = FakeServiceDeskPlusSolutions


class TestServiceDeskPlusSolutionsCloudStandard(StandardConnectorSuite):
    fake_cls = FakeServiceDeskPlusSolutions

    @pytest.fixture
    def fake_factory(self) -> Callable[[], FakeServiceDeskPlusSolutions]:
        return lambda: FakeServiceDeskPlusSolutions("cloud")


# --- helpers ---------------------------------------------------------------------------------------------

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BASE = FakeServiceDeskPlusSolutions.base_url


def sync(sessions: sessionmaker[TenantSession], fake: FakeServiceDeskPlusSolutions) -> SyncReport:
    settings = fake.settings()
    config = create_config(
        sessions,
        connector_type=fake.connector_type,
        name=settings.name,
        base_url=settings.base_url,
        auth_mode=settings.auth_mode,
        options=dict(settings.options),
        secrets=dict(settings.secrets),
        actor="test",
    )
    return asyncio.run(run_sync(sessions, config.id, transport=fake.transport(), sleep=SleepRecorder()))


def stored(sessions: sessionmaker[TenantSession]) -> dict[str, KnowledgeArticle]:
    with sessions() as session:
        rows = list(session.scalars(select(KnowledgeArticle)))
        session.expunge_all()
    return {row.external_id: row for row in rows}


def record(**fields: Any) -> dict[str, Any]:
    """A solution as the list answers it, with the fields a test does not care about filled in."""
    return {
        "id": "60624000040987658",
        "title": "Reset a locked AD account",
        "description": "<p>Unlock it in <b>ADUC</b>.</p>",
        "topic": {"name": "Accounts", "id": "7"},
        "keywords": "ad, lockout",
        "approval_status": {"name": "Approved", "id": "2"},
        "created_by": {"name": "Dana Reyes", "id": "4"},
        "created_time": time_object(START),
        "last_updated_time": time_object(START + timedelta(hours=1)),
        "expiry_date": None,
        **fields,
    }


@pytest.fixture
def fake() -> Iterator[FakeServiceDeskPlusSolutions]:
    system = FakeServiceDeskPlusSolutions()
    yield system
    assert system.unexpected == []


# --- pure helpers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("approval_status", "expected"),
    [
        ("Approved", ArticleState.PUBLISHED),
        ("Approval Pending", ArticleState.REVIEW),
        ("Approval_Pending", ArticleState.REVIEW),  # the filter's spelling
        ("UnApproved", ArticleState.DRAFT),  # where a new solution starts
        ("Rejected", ArticleState.DRAFT),
        ("Expired", ArticleState.RETIRED),
        ("Legal hold", ArticleState.DRAFT),  # renamed or custom: stored, never matched
        (None, ArticleState.DRAFT),
    ],
)
def test_approval_statuses_map_to_article_states(approval_status: str | None, expected: ArticleState) -> None:
    assert solution_state(approval_status, now=NOW) is expected


def test_an_approved_solution_past_its_expiry_date_is_retired() -> None:
    assert solution_state("Approved", expiry=NOW - timedelta(seconds=1), now=NOW) is ArticleState.RETIRED
    assert solution_state("Approved", expiry=NOW + timedelta(days=1), now=NOW) is ArticleState.PUBLISHED
    assert solution_state("Approved", elapsed=True, now=NOW) is ArticleState.RETIRED  # the server says so
    # A draft stays a draft whatever its expiry: retiring is for what was published.
    assert solution_state("UnApproved", expiry=NOW - timedelta(days=1), now=NOW) is ArticleState.DRAFT


def test_keywords_comma_separated_or_the_old_list() -> None:
    assert keyword_list({"keywords": " vpn,AnyConnect , , VPN,tunnel "}) == ("vpn", "AnyConnect", "tunnel")
    assert keyword_list({"key_words": ["outlook", " OST "]}) == ("outlook", "OST")
    assert keyword_list({"keywords": None}) == ()


def test_solution_urls_on_premises_and_cloud() -> None:
    assert solution_url("https://sdp.example.com/", "42", cloud_portal=None) == (
        "https://sdp.example.com/AddSolution.do?submitaction=viewsolution&solutionID=42"
    )
    assert solution_url(
        "https://sdpondemand.manageengine.eu", "60624000040987658", cloud_portal="itdesk"
    ) == ("https://sdpondemand.manageengine.eu/app/itdesk/ui/solutions/60624000040987658/details")


def test_a_solution_becomes_an_article_with_markdown_topic_keywords_and_author() -> None:
    article = normalise_solution(record(), base=BASE, cloud_portal=None, now=NOW)
    assert article.external_id == article.number == "60624000040987658"
    assert article.source_system == "servicedesk_plus_solutions"
    assert article.title == "Reset a locked AD account"
    assert article.body == "Unlock it in **ADUC**.\n\nKeywords: ad, lockout"
    assert article.state is ArticleState.PUBLISHED
    assert article.space == "Accounts"
    assert article.author == "Dana Reyes"
    assert article.updated_at == START + timedelta(hours=1)
    assert article.raw_payload["description"] == "<p>Unlock it in <b>ADUC</b>.</p>"  # the HTML is kept


def test_the_html_description_becomes_clean_markdown() -> None:
    article = normalise_solution(
        record(description=solution_html(7), keywords=""), base=BASE, cloud_portal=None, now=NOW
    )
    assert article.body == (
        "Users on floor 7 cannot reach the VPN & get error 412.\n\n"
        "## Resolution\n\n"
        "1. Open **AnyConnect** > Preferences.\n"
        '2. Untick "Block connections to untrusted servers".\n\n'
        "| Client | Version |\n"
        "| --- | --- |\n"
        "| AnyConnect | 4.10 |"
    )
    assert "<" not in article.body and "style" not in article.body


def test_a_solution_never_updated_is_stamped_with_its_creation_time() -> None:
    article = normalise_solution(record(last_updated_time=None), base=BASE, cloud_portal=None, now=NOW)
    assert article.updated_at == START


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"id": None}, "not a number"),
        ({"id": "SOL-1"}, "not a number"),
        ({"title": "  "}, "no title"),
        ({"last_updated_time": {"value": "yesterday"}}, "not epoch milliseconds"),
    ],
)
def test_a_solution_that_cannot_be_an_article_says_why(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalise_solution(record(**fields), base=BASE, cloud_portal=None, now=NOW)


# --- through the sync ------------------------------------------------------------------------------------


def test_the_spec_is_a_knowledge_connector_in_the_registry() -> None:
    cls = connector_class("servicedesk_plus_solutions")
    assert cls is ServiceDeskPlusSolutionsConnector
    assert cls.spec.kind is ConnectorKind.KNOWLEDGE
    assert not cls.can_write
    assert {mode.key for mode in cls.spec.auth_modes} == {"authtoken", "zoho_oauth"}
    assert "SDPOnDemand.solutions.READ" in cls.spec.auth_modes[1].help


def test_every_state_topic_and_url_is_stored(
    fake: FakeServiceDeskPlusSolutions, sessions: sessionmaker[TenantSession]
) -> None:
    statuses = ["Approved", "Approval Pending", "UnApproved", "Rejected", "Expired", "Approved"]
    for number, status in enumerate(statuses, start=1):
        solution = fake.new_ticket(number, START + timedelta(minutes=number))
        solution.status = status
        fake.add_ticket(solution)
    fake.tickets["100006"].extra["expiry_date"] = datetime(2020, 1, 1, tzinfo=UTC)  # long past
    report = sync(sessions, fake)
    assert report.ok, report.error
    assert report.new == 6
    rows = stored(sessions)
    assert {key: row.status for key, row in rows.items()} == {
        "100001": "published",
        "100002": "review",
        "100003": "draft",
        "100004": "draft",
        "100005": "retired",
        "100006": "retired",
    }
    row = rows["100001"]
    assert row.url == f"{BASE}/AddSolution.do?submitaction=viewsolution&solutionID=100001"
    assert row.space == "Email"  # TOPICS[1 % 3]
    assert row.body.endswith("Keywords: vpn, anyconnect")
    assert row.source_system == "servicedesk_plus_solutions"
    assert "<h2>Resolution</h2>" in json.dumps(row.raw_payload)


def test_cloud_urls_carry_the_portal(sessions: sessionmaker[TenantSession]) -> None:
    fake = FakeServiceDeskPlusSolutions("cloud", portal="helpdesk")
    fake.add_ticket(fake.new_ticket(1, START))
    assert sync(sessions, fake).ok
    (row,) = stored(sessions).values()
    assert row.url == "https://sdpondemand.manageengine.com/app/helpdesk/ui/solutions/100001/details"
    assert all(
        r.url.path.startswith("/app/helpdesk/api/v3/") for r in fake.requests if "oauth" not in r.url.path
    )


def test_the_listing_asks_for_solution_fields_by_update_time(
    fake: FakeServiceDeskPlusSolutions, sessions: sessionmaker[TenantSession]
) -> None:
    fake.add_ticket(fake.new_ticket(1, START))
    assert sync(sessions, fake).ok
    (listing,) = [r for r in fake.requests if fake.is_ticket_query(r)]
    list_info = json.loads(listing.url.params["input_data"])["list_info"]
    assert list_info["sort_field"] == "last_updated_time" and list_info["sort_order"] == "asc"
    assert {"title", "description", "topic", "keywords", "approval_status"} <= set(
        list_info["fields_required"]
    )
    assert listing.headers["Accept"] == "application/vnd.manageengine.sdp.v3+json"
    assert listing.headers["authtoken"]


def test_numeric_ids_tie_break_by_number_not_text(fake: FakeServiceDeskPlusSolutions) -> None:
    """ "999" sorts after "1000" as text: the cursor must skip only the very record that set it."""
    connector = ServiceDeskPlusSolutionsConnector.create(fake.settings(), transport=fake.transport())
    article = normalise_solution(record(id="999"), base=BASE, cloud_portal=None, now=NOW)
    assert article.updated_at is not None
    cursor = Cursor(article.updated_at, "1000")
    assert not connector.already_stored(article, cursor)  # type: ignore[arg-type]  # articles share the contract
    assert connector.already_stored(article, Cursor(article.updated_at, "999"))  # type: ignore[arg-type]
    asyncio.run(connector.close())


def test_a_failure_inside_http_200_is_a_refusal(fake: FakeServiceDeskPlusSolutions) -> None:
    """SDP reports some failures inside a 200: the envelope decides, not the status."""
    fake.add_ticket(fake.new_ticket(1, START))
    connector = ServiceDeskPlusSolutionsConnector.create(fake.settings(), transport=fake.transport())
    original = fake._list

    def refused(request: httpx.Request) -> httpx.Response:
        body = {
            "response_status": [
                {
                    "status_code": 4000,
                    "status": "failed",
                    "messages": [{"status_code": 4002, "type": "failed", "message": "Unauthorised"}],
                }
            ]
        }
        return httpx.Response(200, json=body)

    fake._list = refused  # type: ignore[method-assign]
    try:
        with pytest.raises(PermissionDeniedError, match="Unauthorised"):
            asyncio.run(connector.probe())
    finally:
        fake._list = original  # type: ignore[method-assign]
        asyncio.run(connector.close())


def test_check_reports_a_wrong_key_as_authentication(fake: FakeServiceDeskPlusSolutions) -> None:
    async def go() -> CheckProblem:
        connector = ServiceDeskPlusSolutionsConnector.create(
            fake.settings(good_credentials=False), transport=fake.transport()
        )
        try:
            return (await connector.check()).problem
        finally:
            await connector.close()

    assert asyncio.run(go()) is CheckProblem.AUTHENTICATION


def test_a_failed_sync_names_the_solutions_path(
    fake: FakeServiceDeskPlusSolutions, sessions: sessionmaker[TenantSession]
) -> None:
    fake.add_ticket(fake.new_ticket(1, START))
    fake.fail_next(InjectedFailure(status=403, message="No permission to view solutions"))
    report = sync(sessions, fake)
    assert not report.ok
    assert report.error is not None
    assert "/api/v3/solutions" in report.error and "No permission to view solutions" in report.error


def test_it_never_writes(fake: FakeServiceDeskPlusSolutions) -> None:
    connector = ServiceDeskPlusSolutionsConnector.create(fake.settings(), transport=fake.transport())
    incident = NewIncident(correlation_id="c1", title="x", description="y", severity="high")
    with pytest.raises(ConfigurationError, match="cannot create incidents"):
        asyncio.run(connector.create_incident(incident))
    asyncio.run(connector.close())
    assert fake.requests == []
