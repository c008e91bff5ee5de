"""Issue 17: the audit trail is a hash chain per tenant (SQLite here; tests/team for PostgreSQL).

Rows written by real app actions are chained as they are flushed; ``verify`` names the first broken link
after an attacker with the file in hand edits, removes or adds a row behind the app's back (the append-only
triggers dropped first, as such an attacker would); ``audit verify`` and ``audit export`` are the CLI.
"""

from __future__ import annotations

import io
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import sessionmaker

from core.errors import TenantError
from core.importing import import_tickets
from core.store.audit_chain import chain_tenants, export_jsonl, row_digest, verify
from core.store.models import AuditEvent
from core.store.repository import record_audit
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from core.workflow.runbooks import create_runbook, save_runbook
from desktop.cli.common import EXIT_ERROR, EXIT_OK
from desktop.cli.main import main
from tests.helpers.old_store import migration_0014

TRIGGERS = ("audit_events_no_update", "audit_events_no_delete", "audit_events_no_replace")


SAMPLE_ROWS: list[dict[str, Any]] = [
    {
        "tenant_id": 1,
        "tenant_slug": "default",
        "seq": 1,
        "occurred_at": datetime(2026, 5, 4, 9, 0, 0, 123456, tzinfo=UTC),
        "actor": "ana",
        "db_login": "",
        "action": "runbook.create",
        "entity_type": "runbook",
        "entity_id": 7,
        "before": None,
        "after": {"title": "Disk full", "tags": ["disk", "linux"]},
    },
    {  # unicode everywhere, a naive time (taken as UTC), nested JSON with a tuple and int keys
        "tenant_id": 2,
        "tenant_slug": "zürich-ops",
        "seq": 42,
        "occurred_at": datetime(2026, 12, 31, 23, 59, 59, 999999),
        "actor": "Zoë Ünal 👩‍💻",
        "db_login": "zoe_analyst",
        "action": "connector.update",
        "entity_type": "connector_config",
        "entity_id": None,
        "before": {"options": {"queue": "Störungen", "nested": {"deep": [1, 2.5, None, True, {"x": "ß"}]}}},
        "after": {"ids": (1, 2, 3), 3: "int key", "quote": 'a "quoted" \\ back'},
    },
    {  # another zone, and before/after as the JSON text a raw read hands back
        "tenant_id": 3,
        "tenant_slug": "acme",
        "seq": 3,
        "occurred_at": datetime(2026, 5, 4, 11, 0, tzinfo=UTC) + timedelta(hours=0),
        "actor": "bob",
        "db_login": "bob",
        "action": "tenant.deleted",
        "entity_type": "tenant",
        "entity_id": 3,
        "before": '{"slug": "acme", "name": "Acme Corp"}',
        "after": "null",
    },
    {  # the time as ISO text
        "tenant_id": 1,
        "tenant_slug": "",
        "seq": 2,
        "occurred_at": "2026-05-04T09:00:01.000001+02:00",
        "actor": "",
        "db_login": "",
        "action": "x",
        "entity_type": "y",
        "entity_id": 0,
        "before": {},
        "after": {"empty": [], "none": None},
    },
]


@pytest.mark.parametrize("prev_hash", ["", "0" * 64, "a3f" * 21 + "b"])
def test_the_digest_equals_the_migrations_frozen_copy(prev_hash: str) -> None:
    frozen = migration_0014().audit_digest
    digests = {row_digest(row, prev_hash) for row in SAMPLE_ROWS}
    assert len(digests) == len(SAMPLE_ROWS)  # the sample rows differ, so must their digests
    for row in SAMPLE_ROWS:
        assert row_digest(row, prev_hash) == frozen(row, prev_hash)
    # Each field counts: change any one of them and the digest changes.
    base = SAMPLE_ROWS[0]
    for key, other in [
        ("tenant_id", 9),
        ("tenant_slug", "x"),
        ("seq", 2),
        ("occurred_at", base["occurred_at"] + timedelta(microseconds=1)),
        ("actor", "mallory"),
        ("db_login", "mallory"),
        ("action", "runbook.delete"),
        ("entity_type", "ticket"),
        ("entity_id", 8),
        ("before", {}),
        ("after", {"title": "Disk full", "tags": ["linux", "disk"]}),
    ]:
        assert row_digest({**base, key: other}, prev_hash) != row_digest(base, prev_hash), key
    assert row_digest(base, prev_hash + "0") != row_digest(base, prev_hash)


# --- real app actions ---------------------------------------------------------------------------------------


def do_app_actions(sessions: sessionmaker[TenantSession], tmp_path: Path, actor: str = "ana") -> None:
    """An import (its started and finished rows), a runbook created and edited, two rows in one flush."""
    csv = tmp_path / f"tickets-{actor}.csv"
    csv.write_text("id,title,description\nINC1,Disk full,/var at 95%\nINC2,VPN down,no tunnel\n", "utf-8")
    import_tickets(sessions, csv, source_system="csv", actor=actor)
    with sessions.begin() as session:
        runbook_id = create_runbook(
            session, title="Disk full", body="Clean /var/log.", tags="disk", service=None, actor=actor
        )
    with sessions.begin() as session:
        save_runbook(
            session,
            runbook_id,
            title="Disk full",
            body="Clean /var/log, then rotate — ünïcode.",
            tags="disk",
            service=None,
            actor=actor,
            expected_revision=1,
        )
    with sessions.begin() as session:
        for n in range(3):  # flushed together: chained in the order they were added
            record_audit(session, actor=actor, action=f"test.batch{n}", entity_type="t", entity_id=n)


def chain(sessions: sessionmaker[TenantSession]) -> list[AuditEvent]:
    with sessions() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def test_rows_written_by_the_app_are_chained(
    workspace: Workspace, sessions: sessionmaker[TenantSession], tmp_path: Path
) -> None:
    do_app_actions(sessions, tmp_path)
    rows = chain(sessions)
    actions = [row.action for row in rows]
    assert actions[:2] == ["import.tickets.started", "import.tickets"]
    assert {"runbook.create", "runbook.edit"} <= set(actions)
    assert actions[-3:] == ["test.batch0", "test.batch1", "test.batch2"]
    assert [row.seq for row in rows] == list(range(1, len(rows) + 1))
    assert [row.id for row in rows] == sorted(row.id for row in rows)  # seq order is insertion order
    previous = ""
    for row in rows:
        assert row.prev_hash == previous and len(row.row_hash) == 64 and row.db_login == ""
        previous = row.row_hash
    with sessions() as session:
        report = verify(session, session.tenant_id)
    assert report.ok, report.first_break
    assert (report.rows, report.unsequenced, report.last_seq, report.last_hash) == (
        len(rows),
        0,
        len(rows),
        rows[-1].row_hash,
    )


def test_each_tenant_has_its_own_chain(workspace: Workspace, tmp_path: Path) -> None:
    workspace.ensure_tenant("acme")
    default, acme = workspace.session_factory("default"), workspace.session_factory("acme")
    for n in range(3):
        for sessions in (default, acme):
            with sessions.begin() as session:
                record_audit(session, actor="ana", action="t", entity_type="t", entity_id=n)
    for sessions in (default, acme):
        assert [row.seq for row in chain(sessions)] == [1, 2, 3]
        assert chain(sessions)[0].prev_hash == ""
    reports = [verify(workspace.engine, tenant_id) for tenant_id, _slug in chain_tenants(workspace.engine)]
    assert [(r.tenant_slug, r.rows, r.ok) for r in reports] == [("default", 3, True), ("acme", 3, True)]


def test_a_row_that_claims_its_own_seq_and_hash_is_chained_anyway(
    sessions: sessionmaker[TenantSession],
) -> None:
    """Values set by the caller are overwritten: only the flush decides a row's place in the chain."""
    with sessions.begin() as session:
        record_audit(session, actor="ana", action="first", entity_type="t", entity_id=1)
    with sessions.begin() as session:
        forged = record_audit(session, actor="ana", action="second", entity_type="t", entity_id=2)
        forged.seq, forged.prev_hash, forged.row_hash, forged.db_login = 99, "f" * 64, "e" * 64, "root"
    rows = chain(sessions)
    assert [(r.seq, r.db_login) for r in rows] == [(1, ""), (2, "")]
    assert rows[1].prev_hash == rows[0].row_hash != "f" * 64


def test_concurrent_writers_on_one_tenant_make_one_unbroken_chain(workspace: Workspace) -> None:
    """Two threads, each with its own sessions, append 40 rows each: the write lock taken before the chain's
    end is read makes every flush see the other's last row (no repeated seq, no unique-index error)."""
    start = threading.Barrier(2)

    def writer(name: str) -> None:
        sessions = workspace.session_factory("default")
        start.wait()
        for n in range(40):
            with sessions.begin() as session:
                session.scalar(select(AuditEvent.id).limit(1))  # a read first, as real actions do
                record_audit(session, actor=name, action="t", entity_type="t", entity_id=n)

    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(writer, name) for name in ("ana", "bob")]:
            done.result()  # a writer's exception fails the test here
    report = verify(workspace.engine, workspace.tenant("default").id)
    assert report.ok and report.rows == 80, report


# --- an attacker with the file ------------------------------------------------------------------------------


@pytest.fixture
def trail(workspace: Workspace, sessions: sessionmaker[TenantSession], tmp_path: Path) -> list[AuditEvent]:
    do_app_actions(sessions, tmp_path)
    return chain(sessions)


@pytest.fixture
def attacker(workspace: Workspace) -> Iterator[Callable[[str, dict[str, Any]], None]]:
    """Runs SQL on the workspace file with the append-only triggers dropped, then puts them back."""
    connection = sqlite3.connect(workspace.db_path)
    saved = dict(
        connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_events'"
        ).fetchall()
    )
    assert set(TRIGGERS) <= set(saved)

    def run(statement: str, params: dict[str, Any]) -> None:
        for name in TRIGGERS:
            connection.execute(f"DROP TRIGGER {name}")
        connection.execute(statement, params)
        for name in TRIGGERS:
            connection.execute(saved[name])
        connection.commit()

    yield run
    connection.close()


def report_of(workspace: Workspace) -> Any:
    return verify(workspace.engine, workspace.tenant("default").id)


def test_an_edited_row_is_named(
    workspace: Workspace, trail: list[AuditEvent], attacker: Callable[[str, dict[str, Any]], None]
) -> None:
    edited = trail[3]
    attacker("UPDATE audit_events SET actor = 'mallory' WHERE id = :id", {"id": edited.id})
    broken = report_of(workspace).first_break
    assert broken is not None
    assert (broken.row_id, broken.seq, broken.problem) == (edited.id, edited.seq, "row_hash")
    assert "a column was changed after it was written" in broken.detail


def test_an_edited_row_with_its_hash_recomputed_breaks_the_next_link(
    workspace: Workspace, trail: list[AuditEvent], attacker: Callable[[str, dict[str, Any]], None]
) -> None:
    """The editor recomputes the edited row's own hash: the next row's prev_hash no longer matches it."""
    edited, following = trail[2], trail[3]
    with workspace.engine.connect() as conn:
        values = dict(
            conn.execute(select(AuditEvent.__table__).where(AuditEvent.id == edited.id)).one()._mapping
        )
    values["after"] = {"rewritten": True}
    attacker(
        "UPDATE audit_events SET after = :after, row_hash = :hash WHERE id = :id",
        {"after": json.dumps(values["after"]), "hash": row_digest(values, edited.prev_hash), "id": edited.id},
    )
    broken = report_of(workspace).first_break
    assert broken is not None
    assert (broken.row_id, broken.seq, broken.problem) == (following.id, following.seq, "prev_hash")
    assert f"row id {edited.id}" in broken.detail


def test_a_removed_row_leaves_a_gap(
    workspace: Workspace, trail: list[AuditEvent], attacker: Callable[[str, dict[str, Any]], None]
) -> None:
    removed, following = trail[4], trail[5]
    attacker("DELETE FROM audit_events WHERE id = :id", {"id": removed.id})
    report = report_of(workspace)
    broken = report.first_break
    assert broken is not None and report.rows == len(trail) - 1
    assert (broken.row_id, broken.seq, broken.problem) == (following.id, following.seq, "seq")
    assert f"expected seq {removed.seq}" in broken.detail


def test_a_forged_row_is_named(
    workspace: Workspace, trail: list[AuditEvent], attacker: Callable[[str, dict[str, Any]], None]
) -> None:
    """A row appended at the chain's end with a made-up hash, and one slipped in with no seq at all."""
    last = trail[-1]
    assert last.seq is not None
    forged = {
        "tenant_id": last.tenant_id,
        "tenant_slug": "default",
        "seq": last.seq + 1,
        "occurred_at": "2026-05-04 09:00:00.000000",
        "actor": "ana",
        "db_login": "",
        "action": "review.approve",
        "entity_type": "ticket_runbook_link",
        "entity_id": 1,
        "before": None,
        "after": None,
    }
    columns = ", ".join(forged)
    values = ", ".join(f":{key}" for key in forged)
    insert = (
        f"INSERT INTO audit_events ({columns}, prev_hash, row_hash, created_at, updated_at) "
        f"VALUES ({values}, :prev, :hash, :occurred_at, :occurred_at)"
    )
    attacker(insert, forged | {"prev": last.row_hash, "hash": "0" * 64})
    broken = report_of(workspace).first_break
    assert broken is not None
    assert (broken.seq, broken.problem) == (last.seq + 1, "row_hash")

    attacker(insert.replace("0" * 64, ""), forged | {"seq": None, "prev": "", "hash": ""})
    attacker("DELETE FROM audit_events WHERE seq = :seq", {"seq": forged["seq"]})  # the first forgery
    report = report_of(workspace)
    assert report.first_break is not None and report.first_break.problem == "unchained"
    assert (
        report.first_break.seq is None and "'review.approve' by 'ana' has no seq" in report.first_break.detail
    )


def test_a_deleted_tenants_row_is_counted_not_an_error(workspace: Workspace, tmp_path: Path) -> None:
    workspace.ensure_tenant("acme")
    acme = workspace.session_factory("acme")
    do_app_actions(acme, tmp_path)
    acme_id = workspace.tenant("acme").id
    with workspace.engine.begin() as conn:
        conn.execute(text("DELETE FROM tenants WHERE slug = 'acme'"))
    report = verify(workspace.engine, acme_id)
    assert report.ok and report.unsequenced == 1 and report.rows > 0
    assert report.tenant_slug == "acme"
    assert "(+1 written by the database)" in report.headline()


def test_a_tenant_session_reads_only_its_own_chain(workspace: Workspace) -> None:
    acme_id = workspace.ensure_tenant("acme").id
    with workspace.session_factory("default")() as session, pytest.raises(TenantError, match="cannot read"):
        verify(session, acme_id)


# --- export -------------------------------------------------------------------------------------------------


def test_export_writes_every_column_of_every_row_as_json_lines(
    workspace: Workspace, trail: list[AuditEvent], tmp_path: Path
) -> None:
    target = tmp_path / "trail.jsonl"
    with workspace.admin_session() as session:
        assert export_jsonl(session, target) == len(trail)
    lines = target.read_text("utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert set(records[0]) == {column.name for column in AuditEvent.__table__.columns}
    assert [r["row_hash"] for r in records] == [row.row_hash for row in trail]
    assert [r["prev_hash"] for r in records[1:]] == [r["row_hash"] for r in records[:-1]]
    assert [(r["id"], r["seq"], r["actor"], r["before"], r["after"]) for r in records] == [
        (row.id, row.seq, row.actor, row.before, row.after) for row in trail
    ]
    assert records[0]["occurred_at"] == trail[0].occurred_at.isoformat()
    # Anyone holding the export can recompute every hash without the database.
    for record in records:
        assert row_digest(record, record["prev_hash"]) == record["row_hash"]

    cut = trail[3].occurred_at
    stream = io.StringIO()
    with workspace.admin_session() as session:
        written = export_jsonl(session, stream, since=cut)
    assert written == sum(1 for row in trail if row.occurred_at >= cut) < len(trail)
    assert len(stream.getvalue().splitlines()) == written


# --- the CLI ------------------------------------------------------------------------------------------------


def test_cli_verify_and_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "ws"
    with Workspace.open(root) as workspace:
        do_app_actions(workspace.session_factory(), tmp_path)
        rows = chain(workspace.session_factory())
    ws = ["--workspace", str(root)]

    assert main(["audit", "verify", *ws]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.strip() == f"default: chain intact: {len(rows)} rows, last hash {rows[-1].row_hash}"

    target = tmp_path / "out.jsonl"
    assert main(["audit", "export", "--output", str(target), *ws]) == EXIT_OK
    assert capsys.readouterr().out.strip() == f"exported {len(rows)} audit rows of default to {target}"
    assert len(target.read_text("utf-8").splitlines()) == len(rows)

    # To stdout: only JSON lines there (the export itself was audited, so one row more now).
    assert main(["audit", "export", "--output", "-", "--since", "2000-01-01", *ws]) == EXIT_OK
    captured = capsys.readouterr()
    exported = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["action"] for r in exported][-1] == "export.audit_jsonl"
    assert exported[-1]["after"] == {"rows": len(rows), "since": None, "output": "file"}
    assert captured.err.strip() == f"exported {len(rows) + 1} audit rows of default to stdout"

    connection = sqlite3.connect(root / "runbook-desk.sqlite3")
    connection.execute("DROP TRIGGER audit_events_no_update")
    connection.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
    connection.commit()
    connection.close()
    assert main(["audit", "verify", "--json", *ws]) == EXIT_ERROR
    [report] = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert (report["first_break"]["seq"], report["first_break"]["problem"]) == (2, "row_hash")
    assert main(["audit", "verify", *ws]) == EXIT_ERROR
    assert "default: chain broken at row id" in capsys.readouterr().out


def test_cli_reads_a_workspace_the_app_holds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "ws"
    with Workspace.open(root) as workspace:  # the app has it open
        with workspace.session_factory().begin() as session:
            record_audit(session, actor="ana", action="t", entity_type="t", entity_id=1)
        assert main(["audit", "verify", "--all", "--workspace", str(root)]) == EXIT_OK
        assert "default: chain intact: 1 rows" in capsys.readouterr().out
        assert main(["audit", "export", "--output", "-", "--workspace", str(root)]) == EXIT_OK
        assert len(capsys.readouterr().out.splitlines()) == 1  # read-only: the export is not audited
