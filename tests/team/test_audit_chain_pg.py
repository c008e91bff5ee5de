"""Issue 17 on PostgreSQL: the audit hash chain with many writers, and tampering only a superuser can do.

Each analyst writes through their own login (``db_login`` is the server's ``session_user``). Two desktops
appending to one tenant at the same moment still make one chain (the per-tenant advisory lock). The table's
owner cannot change a row (a trigger binds it too), but a superuser can disable triggers: ``verify`` still
names the row they changed or removed.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import make_url, select
from sqlalchemy.orm import sessionmaker

from core.store.audit_chain import verify
from core.store.db import POSTGRES_KEYRING_SERVICE, postgres_keyring_account
from core.store.models import AuditEvent, TeamMember, TeamRole
from core.store.repository import record_audit
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace, set_workspace_database_url
from core.workflow.runbooks import create_runbook
from desktop.cli.common import EXIT_ERROR, EXIT_OK
from desktop.cli.main import main
from tests.helpers.memory_keyring import MemoryKeyring
from tests.helpers.postgres import ADMIN_LOGIN, PgServer

pytestmark = pytest.mark.team

# Logins are the server's, not one database's: a prefix keeps these apart from other tests' logins.
ANALYST_A, ANALYST_B = "chain_analyst_a", "chain_analyst_b"
ROWS_PER_WRITER = 30


@dataclass
class Desk:
    """One analyst's desktop: a workspace folder of their own on the team database, as their login."""

    login: str
    workspace: Workspace

    @property
    def sessions(self) -> sessionmaker[TenantSession]:
        return self.workspace.session_factory("default")


@pytest.fixture
def desks(
    team_workspace: Workspace, pg_server: PgServer, tmp_path: Path, memory_keyring: MemoryKeyring
) -> Iterator[list[Desk]]:
    database = team_workspace.engine.url.database or ""
    with team_workspace.session_factory("default").begin() as session:
        for login in (ANALYST_A, ANALYST_B):
            session.add(TeamMember(login=login, role=TeamRole.ANALYST, added_by=ADMIN_LOGIN))
    opened: list[Desk] = []
    for login in (ANALYST_A, ANALYST_B):
        password = pg_server.create_login(login)
        url = pg_server.url(database, login)
        memory_keyring.set_password(
            POSTGRES_KEYRING_SERVICE, postgres_keyring_account(make_url(url)), password
        )
        opened.append(Desk(login, Workspace.open(tmp_path / login, database_url=url)))
    yield opened
    for desk in opened:
        desk.workspace.close()


def chain_of(workspace: Workspace) -> list[AuditEvent]:
    with workspace.session_factory("default")() as session:
        return list(
            session.scalars(select(AuditEvent).where(AuditEvent.seq.is_not(None)).order_by(AuditEvent.seq))
        )


def test_rows_of_several_logins_make_one_chain_naming_each_login(
    team_workspace: Workspace, desks: list[Desk]
) -> None:
    with team_workspace.session_factory("default").begin() as session:
        record_audit(session, actor="admin", action="test.first", entity_type="t", entity_id=None)
    for desk in desks:
        with desk.sessions.begin() as session:
            create_runbook(
                session,
                title=f"Runbook of {desk.login}",
                body="Steps.",
                tags="t",
                service=None,
                actor=desk.login,
            )
    rows = chain_of(team_workspace)
    assert [(row.seq, row.db_login, row.action) for row in rows] == [
        (1, ADMIN_LOGIN, "test.first"),
        (2, ANALYST_A, "runbook.create"),
        (3, ANALYST_B, "runbook.create"),
    ]
    tenant_id = team_workspace.tenant("default").id
    with desks[0].sessions() as session:  # an analyst verifies their tenant's chain through RLS
        report = verify(session, tenant_id)
    assert report.ok and report.rows == 3 and report.last_hash == rows[-1].row_hash


def test_two_desktops_appending_at_once_make_one_unbroken_chain(
    team_workspace: Workspace, desks: list[Desk]
) -> None:
    """Each desktop has its own engine and login; without the advisory lock both read the same chain end
    and the second insert fails on the unique (tenant_id, seq) index."""
    start = threading.Barrier(len(desks))

    def append(desk: Desk) -> None:
        start.wait()
        for n in range(ROWS_PER_WRITER):
            with desk.sessions.begin() as session:
                record_audit(
                    session, actor=desk.login, action="test.concurrent", entity_type="t", entity_id=n
                )

    with ThreadPoolExecutor(len(desks)) as pool:
        for done in [pool.submit(append, desk) for desk in desks]:
            done.result()  # a writer's exception fails the test here
    rows = chain_of(team_workspace)
    assert len(rows) == ROWS_PER_WRITER * len(desks)
    assert {row.db_login for row in rows} == {desk.login for desk in desks}
    logins = [row.db_login for row in rows]
    assert any(a != b for a, b in itertools.pairwise(logins)), "the writers never interleaved"
    report = verify(team_workspace.engine, team_workspace.tenant("default").id)
    assert report.ok, report.first_break
    assert report.rows == ROWS_PER_WRITER * len(desks)


def test_a_superusers_tampering_is_detected(
    team_workspace: Workspace, desks: list[Desk], pg_server: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    for n, desk in enumerate(desks * 3):
        with desk.sessions.begin() as session:
            record_audit(session, actor=desk.login, action="review.approve", entity_type="t", entity_id=n)
    rows = chain_of(team_workspace)
    tenant_id = team_workspace.tenant("default").id
    database = team_workspace.engine.url.database or ""
    assert verify(team_workspace.engine, tenant_id).ok
    workspace_args = ["--workspace", str(team_workspace.root)]
    team_workspace.close()  # the CLI opens the folder itself, on the database its team.json names
    set_workspace_database_url(team_workspace.root, pg_server.url(database))
    assert main(["audit", "verify", *workspace_args]) == EXIT_OK
    assert f"default: chain intact: {len(rows)} rows" in capsys.readouterr().out

    edited, removed = rows[2], rows[4]
    with pg_server.superuser(database) as superuser:
        superuser.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        superuser.execute("UPDATE audit_events SET actor = 'someone else' WHERE id = %s", (edited.id,))
        superuser.execute("DELETE FROM audit_events WHERE id = %s", (removed.id,))
        superuser.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")

    with desks[0].sessions() as session:
        report = verify(session, tenant_id)
    assert report.first_break is not None
    assert (report.first_break.row_id, report.first_break.seq, report.first_break.problem) == (
        edited.id,
        edited.seq,
        "row_hash",
    )
    assert main(["audit", "verify", *workspace_args]) == EXIT_ERROR
    assert f"chain broken at row id {edited.id} (seq {edited.seq})" in capsys.readouterr().out

    # The edit put back as it was: the removal is what breaks the chain now, at the row after it.
    with pg_server.superuser(database) as superuser:
        superuser.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        superuser.execute("UPDATE audit_events SET actor = %s WHERE id = %s", (edited.actor, edited.id))
        superuser.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
    with desks[1].sessions() as session:
        broken = verify(session, tenant_id).first_break
    assert broken is not None
    assert (broken.row_id, broken.seq, broken.problem) == (rows[5].id, rows[5].seq, "seq")


def test_a_deleted_tenants_row_is_counted_and_its_chain_kept(team_workspace: Workspace) -> None:
    acme = team_workspace.ensure_tenant("acme")
    with team_workspace.session_factory("acme").begin() as session:
        record_audit(session, actor="admin", action="test", entity_type="t", entity_id=1)
    with team_workspace.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM tenants WHERE slug = 'acme'")
    report = verify(team_workspace.engine, acme.id)
    assert report.ok and (report.rows, report.unsequenced, report.tenant_slug) == (1, 1, "acme")
