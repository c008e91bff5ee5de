"""``runbook-desk knowledge list|show|adopt|changed|acknowledge`` (desktop/cli/knowledge.py; issue 14)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from core.knowledge.records import ArticleState, ArticleValues
from core.knowledge.store import upsert_articles
from core.store.models import ArticleSection, AuditEvent, Runbook, RunbookSource
from core.store.workspace import Workspace
from desktop.cli.common import EXIT_ERROR, EXIT_OK
from desktop.cli.main import main

Run = Callable[..., tuple[int, str, str]]
URL = "https://acme.service-now.com/kb_view.do?sysparm_article=KB0012345"
OUTLOOK = ArticleValues(
    external_id="a1",
    source_system="servicenow-kb",
    title="Outlook crashes on start",
    body="## Steps\n\n1. Open Outlook in safe mode.\n2. Disable the add-in.",
    state=ArticleState.PUBLISHED,
    updated_at=datetime(2026, 11, 2, tzinfo=UTC),
    number="KB0012345",
    url=URL,
    space="IT",
    category="Email",
)
OLD_VPN = replace(
    OUTLOOK,
    external_id="a2",
    number="KB0000007",
    title="VPN client 3.x",
    body="Retired.",
    state=ArticleState.RETIRED,
    url=None,
)


def store(root: Path, *articles: ArticleValues) -> None:
    with Workspace.open(root) as workspace:
        sessions = workspace.session_factory("default")
        with sessions.begin() as session:
            upsert_articles(
                session, list(articles), instance="https://acme.service-now.com", connector_config_id=None
            )


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    store(root, OUTLOOK, OLD_VPN)
    return root


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, ws: Path) -> Run:
    def run_as(*argv: str) -> tuple[int, str, str]:
        monkeypatch.setenv("LOGNAME", "kim")
        code = main(["knowledge", *argv, "--workspace", str(ws)])
        out, err = capsys.readouterr()
        return code, out, err

    return run_as


def test_list_shows_published_articles_by_default_and_all_on_request(run: Run) -> None:
    code, out, _ = run("list")
    assert code == EXIT_OK
    assert out.splitlines() == [
        f"{'KB0012345':<14} {'published':<10} {'servicenow-kb':<16} Outlook crashes on start"
    ]
    code, out, _ = run("list", "--state", "all", "--json")
    assert [(row["number"], row["state"]) for row in json.loads(out)] == [
        ("KB0000007", "retired"),
        ("KB0012345", "published"),
    ]


def test_show_prints_the_fields_and_body_and_an_unknown_number_is_an_error(run: Run) -> None:
    code, out, _ = run("show", "kb0012345")  # case-insensitive, as people type it
    assert code == EXIT_OK
    assert out.splitlines()[:2] == ["number: KB0012345", "title: Outlook crashes on start"]
    assert out.rstrip().endswith("2. Disable the add-in.")
    code, _, err = run("show", "KB9999999")
    assert code == EXIT_ERROR and "there is no knowledge article KB9999999" in err
    code, _, err = run("adopt", "KB0000007")
    assert code == EXIT_ERROR and "KB0000007 is retired in servicenow-kb: not adopted" in err


def test_adopt_then_changed_then_acknowledge(run: Run, ws: Path) -> None:
    code, out, _ = run("adopt", "KB0012345")
    assert (code, out.strip()) == (EXIT_OK, "KB0012345 adopted as draft runbook 1")
    code, out, _ = run("adopt", "KB0012345", "--json")
    assert json.loads(out) == {"article": "KB0012345", "runbook_id": 1, "new": False}
    _, out, _ = run("list")
    assert out.rstrip().endswith("Outlook crashes on start  (runbook 1)")
    with Workspace.open(ws) as workspace, workspace.session_factory("default")() as session:
        runbook = session.scalars(select(Runbook)).one()
        assert (runbook.source, runbook.external_ref) == (RunbookSource.KB, URL)
        adopted_by = session.scalars(
            select(AuditEvent.actor).where(AuditEvent.action == "knowledge.adopted")
        ).one()
        assert adopted_by == "kim"

    _, out, _ = run("changed")
    assert out.strip() == "no adopted runbook's source changed"
    store(ws, replace(OUTLOOK, body="## Steps\n\n1. Open Outlook in safe mode.\n2. Remove the add-in."))
    code, out, _ = run("changed")
    assert code == EXIT_OK
    assert out.splitlines() == [
        f"runbook 1 “Outlook crashes on start”: KB0012345 <{URL}> changed",
        "--- KB0012345 as adopted",
        "+++ KB0012345 now",
        "@@ -4,4 +4,4 @@",
        " ## Steps",
        " ",
        " 1. Open Outlook in safe mode.",
        "-2. Disable the add-in.",
        "+2. Remove the add-in.",
    ]
    code, out, _ = run("acknowledge", "1")
    assert (code, out.strip()) == (
        EXIT_OK,
        "runbook 1 took the article's text as revision 2; the change is marked seen",
    )
    _, out, _ = run("changed", "--json")
    assert json.loads(out) == []


def test_index_check_counts_the_article_sections_too(capsys: pytest.CaptureFixture[str], ws: Path) -> None:
    """``index rebuild`` embeds the articles' sections; ``index check`` compares them with the store."""
    assert main(["index", "rebuild", "--workspace", str(ws)]) == EXIT_OK
    out, _ = capsys.readouterr()
    assert "article sections" in out
    assert main(["index", "check", "--workspace", str(ws), "--json"]) == EXIT_OK
    report = json.loads(capsys.readouterr()[0])
    with Workspace.open(ws) as workspace, workspace.session_factory("default")() as session:
        sections = len(list(session.scalars(select(ArticleSection.id))))
    assert sections > 0
    assert report["article_sections"] == {"indexed": sections, "missing": 0, "extra": 0}
    assert report["ok"] is True
