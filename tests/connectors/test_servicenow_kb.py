"""ServiceNow Knowledge specifics; the common contract is the standard suite (two auth modes)."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from connectors.base import CheckProblem, CheckResult
from connectors.configs import create_config
from connectors.knowledge.servicenow_kb import (
    article_state,
    clean_title,
    knowledge_base_term,
    normalise_article,
)
from connectors.registry import connector_class
from connectors.sync import SyncReport, run_sync
from connectors.testing.standard_suite import SleepRecorder, StandardConnectorSuite
from core.knowledge.records import ArticleState
from core.store.models import KnowledgeArticle
from core.store.tenancy import TenantSession
from tests.connectors.fake_servicenow import sys_id_for
from tests.connectors.fake_servicenow_kb import FakeServiceNowKnowledge


class TestServiceNowKnowledgeStandard(StandardConnectorSuite):
    fake_cls = FakeServiceNowKnowledge


class TestServiceNowKnowledgeOAuthStandard(StandardConnectorSuite):
    fake_cls = FakeServiceNowKnowledge

    @pytest.fixture
    def fake_factory(self) -> Callable[[], FakeServiceNowKnowledge]:
        return lambda: FakeServiceNowKnowledge(auth_mode="oauth")


# --- helpers ---------------------------------------------------------------------------------------------

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
BASE = FakeServiceNowKnowledge.base_url


def sync(sessions: sessionmaker[TenantSession], fake: FakeServiceNowKnowledge) -> SyncReport:
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


def check(fake: FakeServiceNowKnowledge) -> CheckResult:
    async def go() -> CheckResult:
        connector = connector_class(fake.connector_type).create(
            fake.settings(), transport=fake.transport(), sleep=SleepRecorder()
        )
        try:
            return await connector.check()
        finally:
            await connector.close()

    return asyncio.run(go())


@pytest.fixture
def fake() -> Iterator[FakeServiceNowKnowledge]:
    system = FakeServiceNowKnowledge()
    yield system
    assert system.unexpected == []
    assert system.ignored_query_terms == []


# --- pure helpers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("workflow_state", "expected"),
    [
        ("published", ArticleState.PUBLISHED),
        ("pending_retirement", ArticleState.PUBLISHED),  # still shown until its retirement date
        ("draft", ArticleState.DRAFT),
        ("scheduled_publish", ArticleState.DRAFT),
        ("review", ArticleState.REVIEW),
        ("retired", ArticleState.RETIRED),
        ("Published", ArticleState.PUBLISHED),
        ("u_legal_hold", ArticleState.DRAFT),  # a custom state: stored, never matched
        ("outdated", None),  # a superseded version: not stored
        (None, ArticleState.DRAFT),
    ],
)
def test_workflow_states_map_to_article_states(workflow_state: str | None, expected: ArticleState) -> None:
    assert article_state(workflow_state) is expected


def test_the_title_loses_the_editors_tabs_and_newlines() -> None:
    assert clean_title("\n\t\tReset a locked AD account\n\t\t  (self-service)  ") == (
        "Reset a locked AD account (self-service)"
    )


@pytest.mark.parametrize(
    ("option", "term"),
    [
        ("", ""),
        ("IT", "kb_knowledge_base.titleINIT"),
        (" IT , Network Operations,IT", "kb_knowledge_base.titleINIT,Network Operations"),
        ("a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5", "kb_knowledge_baseINa0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"),
        (
            "HR, a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5",
            "kb_knowledge_baseINa0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5^ORkb_knowledge_base.titleINHR",
        ),
        ("R^D", "kb_knowledge_base.titleINR^^D"),
    ],
)
def test_the_knowledge_base_option_becomes_one_query_term(option: str, term: str) -> None:
    assert knowledge_base_term(option) == term


def test_a_query_in_the_knowledge_base_option_is_refused() -> None:
    with pytest.raises(ValueError, match="titles or sys_ids"):
        knowledge_base_term("kb_knowledge_base=abc")


def record(**fields: Any) -> dict[str, Any]:
    """A kb_knowledge record as ``sysparm_display_value=all`` returns it (reference links kept)."""
    base: dict[str, Any] = {
        "sys_id": {
            "display_value": "9d385017c611228701d22104cc95c371",
            "value": "9d385017c611228701d22104cc95c371",
        },
        "number": {"display_value": "KB0000011", "value": "KB0000011"},
        "short_description": {
            "display_value": "How to configure\n\t\tOutlook for Exchange",
            "value": "How to configure\n\t\tOutlook for Exchange",
        },
        "article_type": {"display_value": "HTML", "value": "text"},
        "workflow_state": {"display_value": "Published", "value": "published"},
        "wiki": {"display_value": None, "value": None},
        "text": {"display_value": "<p>x</p>", "value": "<p>x</p>"},
        "kb_knowledge_base": {
            "display_value": "IT",
            "link": f"{BASE}/api/now/table/kb_knowledge_base/a7e8a78bff0221009b20ffffffffff17",
            "value": "a7e8a78bff0221009b20ffffffffff17",
        },
        "kb_category": {
            "display_value": "Email",
            "link": f"{BASE}/api/now/table/kb_category/0a1e2f3c4d5e6f708192a3b4c5d6e7f8",
            "value": "0a1e2f3c4d5e6f708192a3b4c5d6e7f8",
        },
        "author": {"display_value": "", "value": ""},
        "valid_to": {"display_value": "2100-01-01", "value": "2100-01-01"},
    }
    base.update(fields)
    return base


def test_an_html_article_becomes_clean_markdown_and_keeps_its_html() -> None:
    html = (
        '<p style="font-family: Arial;"><span style="font-size: 10pt;">Outlook&nbsp;2016 &amp; later '
        "ask for the &quot;autodiscover&quot; record.</span></p>"
        '<h2 style="color: #1f3864;">Steps</h2>'
        '<ol><li><span style="font-size: 10pt;">Open <strong>Control Panel</strong> &gt; Mail.</span></li>'
        "<li>Add the profile.</li></ol>"
        '<table style="border: 1px solid #000;"><tbody><tr><th>Server</th><th>Port</th></tr>'
        '<tr><td><span style="color: red;">outlook.office365.com</span></td><td>443</td></tr></tbody></table>'
        "<pre>nslookup -type=srv _autodiscover._tcp.example.com</pre>"
    )
    article = normalise_article(record(text={"display_value": html, "value": html}), BASE)
    assert article is not None
    assert article.body == (
        'Outlook 2016 & later ask for the "autodiscover" record.\n'
        "\n"
        "## Steps\n"
        "\n"
        "1. Open **Control Panel** > Mail.\n"
        "2. Add the profile.\n"
        "\n"
        "| Server | Port |\n"
        "| --- | --- |\n"
        "| outlook.office365.com | 443 |\n"
        "\n"
        "```\n"
        "nslookup -type=srv _autodiscover._tcp.example.com\n"
        "```"
    )
    assert article.raw_payload["text"]["value"] == html  # the original stays
    assert article.title == "How to configure Outlook for Exchange"
    assert (article.space, article.category, article.author) == ("IT", "Email", None)
    assert article.url == f"{BASE}/kb_view.do?sysparm_article=KB0000011"
    assert (article.external_id, article.number, article.source_system) == (
        "KB0000011",
        "KB0000011",
        "servicenow_kb",
    )


def test_a_wiki_article_keeps_its_wiki_text() -> None:
    wiki = "== Reset the token ==\r\n# Open the portal\r\n# Click ''Reset''\r\n"
    article = normalise_article(
        record(
            article_type={"display_value": "Wiki", "value": "wiki"},
            wiki={"display_value": wiki, "value": wiki},
            text={"display_value": "", "value": ""},
        ),
        BASE,
    )
    assert article is not None
    assert article.body == "== Reset the token ==\n# Open the portal\n# Click ''Reset''"


def test_a_record_without_a_number_or_title_is_a_failure_not_an_article() -> None:
    with pytest.raises(ValueError, match="number"):
        normalise_article(record(number={"display_value": "", "value": ""}), BASE)
    with pytest.raises(ValueError, match="short_description"):
        normalise_article(record(short_description={"display_value": "\n\t\t", "value": "\n\t\t"}), BASE)


# --- through the real sync -------------------------------------------------------------------------------


def test_a_sync_stores_articles_with_their_fields(
    fake: FakeServiceNowKnowledge, sessions: sessionmaker[TenantSession]
) -> None:
    fake.add_ticket(fake.new_article(1, START, title="\n\t\tVPN drops\n\t\tevery 10 minutes"))
    fake.add_ticket(fake.new_article(2, START + timedelta(minutes=1), state="draft", author="Abel Tuter"))
    fake.add_ticket(
        fake.new_article(
            3, START + timedelta(minutes=2), article_type="wiki", wiki="== Steps ==\n# Reboot", html=""
        )
    )
    fake.add_ticket(fake.new_article(4, START + timedelta(minutes=3), state="outdated"))
    report = sync(sessions, fake)
    assert report.ok, report.error
    assert (report.new, report.failed) == (3, 0)
    rows = stored(sessions)
    assert sorted(rows) == ["KB0000001", "KB0000002", "KB0000003"]  # the outdated version is not stored
    first = rows["KB0000001"]
    assert first.title == "VPN drops every 10 minutes"
    assert first.status == "published" and rows["KB0000002"].status == "draft"
    assert (first.space, first.category, first.author) == ("IT", "Network", "Beth Anglin")
    assert rows["KB0000002"].author == "Abel Tuter"
    assert first.url == "https://fake.service-now.com/kb_view.do?sysparm_article=KB0000001"
    assert first.body == (
        "Users at site 1 lose the VPN tunnel every 10 minutes & must log in again.\n\n## Resolution\n\n"
        '1. Open **AnyConnect** > Preferences.\n2. Untick "Block connections to untrusted servers".'
    )
    assert first.raw_payload["text"]["value"] == fake.tickets["KB0000001"].description
    assert first.source_updated_at is not None
    assert first.source_updated_at.replace(tzinfo=UTC) == START
    assert rows["KB0000003"].body == "== Steps ==\n# Reboot"
    listing = next(r for r in fake.requests if fake.is_ticket_query(r))
    assert listing.url.path == "/api/now/table/kb_knowledge"
    assert listing.url.params["sysparm_display_value"] == "all"
    assert set(listing.url.params["sysparm_fields"].split(",")) >= {"text", "wiki", "workflow_state"}


@pytest.mark.parametrize("by", ["title", "sys_id"])
def test_the_knowledge_base_option_limits_the_sync(
    fake: FakeServiceNowKnowledge, sessions: sessionmaker[TenantSession], by: str
) -> None:
    fake.add_ticket(fake.new_article(1, START, knowledge_base="IT"))
    fake.add_ticket(fake.new_article(2, START, knowledge_base="HR"))
    fake.add_ticket(fake.new_article(3, START, knowledge_base="Network Operations"))
    names = ["IT", "Network Operations"]
    fake.knowledge_bases_option = ", ".join(
        names if by == "title" else [sys_id_for("kb_knowledge_base", name) for name in names]
    )
    report = sync(sessions, fake)
    assert report.ok, report.error
    assert sorted(stored(sessions)) == ["KB0000001", "KB0000003"]
    query = next(r for r in fake.requests if fake.is_ticket_query(r)).url.params["sysparm_query"]
    field = "kb_knowledge_base.title" if by == "title" else "kb_knowledge_base"
    assert f"^{field}IN" in query or query.startswith(f"{field}IN")


def test_the_check_counts_the_articles_and_offers_no_writes(fake: FakeServiceNowKnowledge) -> None:
    for number in (1, 2, 3):
        fake.add_ticket(fake.new_article(number, START))
    result = check(fake)
    assert result.ok, result
    assert "kb_knowledge: 3 records" in result.message
    assert result.write is None


def test_a_bad_knowledge_base_option_fails_the_check_as_configuration(fake: FakeServiceNowKnowledge) -> None:
    fake.knowledge_bases_option = "kb_knowledge_base=abc"
    result = check(fake)
    assert result.problem is CheckProblem.CONFIGURATION
    assert "knowledge bases" in result.message
    assert fake.requests == []


def test_an_account_that_may_not_read_articles_is_told_what_role_to_get(
    fake: FakeServiceNowKnowledge,
) -> None:
    fake.readable_tables = set()
    result = check(fake)
    assert result.problem is CheckProblem.PERMISSION
    assert "ACL Exception Read Failed" in result.message
    assert "knowledge role" in result.hint


# --- attachments (opt-in) --------------------------------------------------------------------------------


def docx_bytes(text: str) -> bytes:
    """A minimal Word document: the zip with ``word/document.xml`` holding one paragraph."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        archive.writestr(
            "word/document.xml",
            '<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/'
            f'2006/main"><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>',
        )
    return buffer.getvalue()


def test_attachments_are_listed_and_their_text_indexed_when_asked(
    fake: FakeServiceNowKnowledge, sessions: sessionmaker[TenantSession]
) -> None:
    article = fake.new_article(1, START)
    fake.add_ticket(article)
    fake.add_ticket(fake.new_article(2, START))  # no attachments
    fake.attach(article, "steps.txt", b"Restart the ASA tunnel-group.\n", "text/plain")
    fake.attach(article, "diagram.png", b"\x89PNG\r\n\x1a\n", "image/png")
    fake.attach(article, "notes.docx", docx_bytes("Check the MTU on the outside interface."), DOCX_TYPE)
    fake.attach(article, "broken.pdf", b"%PDF-1.7 this is not a PDF body", "application/pdf")
    fake.attach(article, "big.pdf", b"%PDF-1.7", "application/pdf", size_bytes=25_000_000)
    fake.index_attachments = True
    report = sync(sessions, fake)
    assert report.ok, report.error
    rows = stored(sessions)
    first = rows["KB0000001"]
    assert first.attachments == ["big.pdf", "broken.pdf", "diagram.png", "notes.docx", "steps.txt"]
    text = first.attachment_text or ""
    parts = text.split("\n\n")
    assert parts[0] == "[big.pdf: not read, 25,000,000 bytes is over the 10 MB limit]"
    assert parts[1].startswith("[broken.pdf: not read, ") and parts[1].endswith("]")
    assert parts[2:] == [
        "## notes.docx",
        "Check the MTU on the outside interface.",
        "## steps.txt",
        "Restart the ASA tunnel-group.",
    ]
    assert fake.file_downloads == ["broken.pdf", "notes.docx", "steps.txt"]  # no image, nothing too large
    assert (rows["KB0000002"].attachments, rows["KB0000002"].attachment_text) == ([], None)


def test_attachments_are_not_requested_unless_asked(
    fake: FakeServiceNowKnowledge, sessions: sessionmaker[TenantSession]
) -> None:
    article = fake.new_article(1, START)
    fake.add_ticket(article)
    fake.attach(article, "steps.txt", b"Restart the tunnel.", "text/plain")
    assert sync(sessions, fake).ok
    assert [r.url.path for r in fake.requests] == ["/api/now/table/kb_knowledge"]
    assert stored(sessions)["KB0000001"].attachments == []


def test_an_attachment_gone_between_listing_and_download_is_a_note_not_a_failure(
    fake: FakeServiceNowKnowledge, sessions: sessionmaker[TenantSession]
) -> None:
    article = fake.new_article(1, START)
    fake.add_ticket(article)
    fake.attach(article, "steps.txt", b"Restart the tunnel.", "text/plain")
    fake.index_attachments = True
    original = fake._attachment_list

    def list_then_delete(request: httpx.Request) -> httpx.Response:
        response = original(request)
        fake.attachments.clear()
        return response

    fake._attachment_list = list_then_delete  # type: ignore[method-assign]
    report = sync(sessions, fake)
    assert report.ok, report.error
    row = stored(sessions)["KB0000001"]
    assert row.attachments == ["steps.txt"]
    assert row.attachment_text is not None
    assert row.attachment_text.startswith("[steps.txt: not read, ")
    assert "No Record found" in row.attachment_text
