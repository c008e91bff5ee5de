"""``runbook-desk writebacks list|retry|drain`` end to end, in-process through ``main``, against a workspace
folder nobody else holds open; the connector is the writable tiny one, its fake serving its URL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors.configs import create_config
from connectors.registry import ConnectorRegistry, use_registry
from connectors.testing.fake_system import InjectedFailure
from core.store.models import AuditEvent, Runbook, RunbookStatus, Ticket
from core.store.workspace import Workspace
from core.workflow.review import approve
from desktop.cli.common import EXIT_ERROR, EXIT_OK
from desktop.cli.main import main
from tests.connectors.test_writes import FakeWritableTiny, WritableTiny
from tests.connectors.tiny_connector import GOOD_TOKEN, FakeTiny

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def fake() -> Iterator[FakeWritableTiny]:
    system = FakeWritableTiny()
    with use_registry(ConnectorRegistry((), find_plugins=None, classes=(WritableTiny,))):
        FakeTiny.serving[system.base_url] = system  # the CLI cannot pass a transport
        try:
            yield system
        finally:
            FakeTiny.serving.pop(system.base_url, None)
    assert system.unexpected == []


@pytest.fixture
def ws(tmp_path: Path, fake: FakeWritableTiny) -> Path:
    """A workspace with one synced ticket whose runbook alice approved (so one write-back is pending)."""
    root = tmp_path / "ws"
    with Workspace.open(root) as workspace:
        sessions = workspace.session_factory("default")
        config = create_config(
            sessions,
            connector_type="tiny-writable",
            name="Tiny prod",
            base_url=fake.base_url,
            options={"write_back": True},
            secrets={"token": GOOD_TOKEN},
            actor="test",
        )
        with sessions.begin() as session:
            ticket = Ticket(
                external_id="T00042",
                source_system="tiny",
                title="Mail queue stuck",
                content_hash="h",
                raw_payload={"id": "T00042"},
            )
            ticket.connector_config_id = config.id
            runbook = Runbook(title="Flush the mail queue", status=RunbookStatus.APPROVED, content_hash="r")
            session.add_all([ticket, runbook])
            session.flush()
            approve(session, ticket.id, runbook.id, 0.91, "alice")
    return root


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, ws: Path) -> Run:
    def run_as(actor: str, *argv: str) -> tuple[int, str, str]:
        monkeypatch.setenv("LOGNAME", actor)
        code = main(["writebacks", *argv, "--workspace", str(ws)])
        out, err = capsys.readouterr()
        return code, out, err

    return run_as


def audit_actors(ws: Path, action: str) -> list[str]:
    with Workspace.open(ws) as workspace, workspace.session_factory("default")() as session:
        return [e.actor for e in session.scalars(select(AuditEvent).where(AuditEvent.action == action))]


def test_list_drain_fail_retry_and_drain_again(run: Run, fake: FakeWritableTiny, ws: Path) -> None:
    code, out, _ = run("bo", "list")
    assert code == EXIT_OK
    assert out.strip() == "1 pending      Tiny prod T00042 ← “Flush the mail queue” (approved by alice)"

    fake.fail_next(InjectedFailure(403, message="account may not add work notes"))
    code, out, _ = run("bo", "drain")
    assert code == EXIT_ERROR  # a script notices a failed post
    assert out.strip() == "write-backs: 0 written, 1 failed, 1 waiting"

    code, out, _ = run("bo", "list", "--status", "failed", "--json")
    [row] = json.loads(out)
    assert (row["status"], row["attempts"], row["ticket"]) == ("failed", 1, "T00042")
    assert "account may not add work notes" in row["last_error"]
    assert fake.notes == {}

    code, out, _ = run("bo", "retry", str(row["id"]))
    assert (code, out.startswith("queued again:")) == (EXIT_OK, True)
    code, out, _ = run("bo", "drain", "--json")
    assert (code, json.loads(out)) == (EXIT_OK, {"written": 1, "failed": 0, "pending": 0})
    assert fake.notes == {
        "T00042": ["Runbook linked by alice in Runbook Desk: Flush the mail queue (confidence 91%)"]
    }
    assert audit_actors(ws, "writeback.retry") == ["bo"]
    assert audit_actors(ws, "writeback.written") == ["bo"]

    code, out, _ = run("bo", "list", "--status", "written")
    assert "note N1" in out

    code, _, err = run("bo", "retry", str(row["id"]))
    assert code == EXIT_ERROR
    assert "is written; only a failed one is retried" in err
