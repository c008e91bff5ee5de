"""The wizard's URL tidying and typo checks, and the first sync's start date (no Qt, no network)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import sessionmaker

from connectors.base import Cursor
from connectors.configs import create_config
from connectors.onboarding import (
    check_base_url,
    cleartext_credentials,
    default_first_sync_start,
    set_first_sync_start,
)
from connectors.sync import stored_cursor
from core.store.tenancy import TenantSession
from tests.connectors.fake_servicenow import FakeServiceNow


@pytest.mark.parametrize(
    ("pasted", "connector_type", "expected"),
    [
        (
            "acme.service-now.com/now/nav/ui/classic/params/target/incident_list.do",
            "servicenow",
            "https://acme.service-now.com",
        ),
        ("htps://acme.service-now.com/", "servicenow", "https://acme.service-now.com"),
        ("https//jira.example.com/jira/browse/OPS-1", "jira", "https://jira.example.com/jira"),
        ("jira.example.com:8443/secure/Dashboard.jspa?x=1#y", "jira", "https://jira.example.com:8443"),
        ("https://acme.atlassian.net/jira/software/projects/OPS", "jira", "https://acme.atlassian.net"),
        ("HTTPS://Remedy.Example.com/arsys/forms/x", "remedy", "https://remedy.example.com"),
    ],
)
def test_pasted_addresses_become_base_urls(pasted: str, connector_type: str, expected: str) -> None:
    check = check_base_url(pasted, connector_type)
    assert check.ok, check.problem
    assert check.url == expected


@pytest.mark.parametrize(
    ("typed", "connector_type", "suggestion"),
    [
        ("acme.servicenow.com", "servicenow", "https://acme.service-now.com"),
        ("https://acme.atlassian.com", "jira", "https://acme.atlassian.net"),
        ("https://jira.example.con", "jira", "https://jira.example.com"),
        ("acme", "servicenow", "https://acme.service-now.com"),
        ("https://service-now.com", "servicenow", None),
        ("https://ac me.example.com", "jira", None),
        ("https://user:pw@jira.example.com", "jira", None),
        ("https://jira_host.example.com", "jira", None),
        ("", "jira", None),
    ],
)
def test_typos_are_refused_with_a_suggestion(typed: str, connector_type: str, suggestion: str | None) -> None:
    check = check_base_url(typed, connector_type)
    assert not check.ok
    assert check.suggestion == suggestion
    if "pw@" in typed:
        assert "pw" not in (check.problem or "").replace("password", "")


def test_plain_http_and_a_context_path_are_kept_with_a_note() -> None:
    check = check_base_url("http://jira.intranet.example/jira", "jira")
    assert check.ok and check.url == "http://jira.intranet.example/jira"
    assert any("unencrypted" in w for w in check.warnings)
    assert any("context path" in w for w in check.warnings)


def test_first_sync_start_is_written_once_and_read_by_the_sync(sessions: sessionmaker[TenantSession]) -> None:
    fake = FakeServiceNow()
    settings = fake.settings()
    row = create_config(
        sessions,
        connector_type="servicenow",
        name="prod",
        base_url=fake.base_url,
        options=settings.options,
        secrets=settings.secrets,
    )
    start = default_first_sync_start(datetime(2025, 6, 1, tzinfo=UTC))
    assert start == datetime(2025, 6, 1, tzinfo=UTC) - timedelta(days=90)
    assert set_first_sync_start(sessions, row.id, start)
    assert not set_first_sync_start(sessions, row.id, start + timedelta(days=1))  # never moved
    with sessions() as session:
        assert stored_cursor(session, row.id) == Cursor(start)


@pytest.mark.parametrize(
    ("url", "sends_credentials", "refused"),
    [
        ("http://jira.example.com", True, True),
        ("HTTP://Jira.Example.com:8080/jira", True, True),
        ("http://10.0.0.5", True, True),  # a private network is still a network
        ("http://127.0.0.1.nip.io:8080", True, True),  # resolves to the loopback, but a name is a claim
        ("http://localhost.example.com", True, True),
        ("https://jira.example.com", True, False),
        ("http://jira.example.com", False, False),  # nothing secret to expose
        ("http://127.0.0.1:8080", True, False),  # a local test server or a TLS tunnel's near end
        ("http://127.8.9.10", True, False),
        ("http://[::1]:8080", True, False),
        ("http://localhost:8080", True, False),
    ],
)
def test_credentials_over_plain_http_are_named_loopback_excepted(
    url: str, sends_credentials: bool, refused: bool
) -> None:
    problem = cleartext_credentials(url, sends_credentials=sends_credentials)
    assert (problem is not None) == refused
    if problem is not None:
        assert problem.startswith(f"{url} is plain http://: the credentials would cross the network")
