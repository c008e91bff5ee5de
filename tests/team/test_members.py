"""Team membership on PostgreSQL: real logins made by the team admin, roles the database then enforces."""

from __future__ import annotations

from pathlib import Path

import keyring
import psycopg
import pytest
from sqlalchemy import make_url, select

from core.errors import MembershipError, PermissionDeniedError, WorkspaceError
from core.store.db import POSTGRES_KEYRING_SERVICE, create_postgres_engine, postgres_keyring_account
from core.store.models import AuditEvent, TeamRole
from core.store.team import (
    add_member,
    change_role,
    create_login,
    current_role,
    list_members,
    remove_member,
    team_status,
)
from core.store.team_schema import MEMBER_ROLE
from core.store.workspace import Workspace
from tests.helpers.postgres import ADMIN_LOGIN, PgServer

pytestmark = pytest.mark.team


def _drop_login(pg_server: PgServer, login: str) -> None:
    with pg_server.superuser() as conn:
        conn.execute(f"DROP ROLE IF EXISTS {login}")


def _open_as(tmp_path: Path, pg_server: PgServer, database: str, login: str, password: str) -> Workspace:
    url = pg_server.url(database, login)
    keyring.set_password(POSTGRES_KEYRING_SERVICE, postgres_keyring_account(make_url(url)), password)
    return Workspace.open(tmp_path / login, database_url=url)


def test_the_admin_creates_a_login_that_holds_only_a_scram_verifier(
    team_workspace: Workspace, pg_server: PgServer
) -> None:
    login, password = "mem_new_analyst", "correct horse 'battery' \\ staple"
    _drop_login(pg_server, login)
    try:
        create_login(team_workspace.engine, login, password)
        database = team_workspace.engine.url.database or ""
        with pg_server.connect(database, login, password) as analyst:
            assert analyst.execute("SELECT session_user").fetchone() == (login,)
        with pg_server.superuser() as conn:
            stored = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (login,)).fetchone()
            granted = conn.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", (login, MEMBER_ROLE)).fetchone()
        assert stored is not None and stored[0].startswith("SCRAM-SHA-256$")
        assert password not in stored[0]
        assert granted == (True,)
        with pytest.raises(MembershipError, match="exists already"):
            create_login(team_workspace.engine, login, password)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            pg_server.connect(database, login, "wrong")
    finally:
        _drop_login(pg_server, login)


def test_a_login_without_createrole_cannot_create_logins(pg_server: PgServer, pg_database: str) -> None:
    password = pg_server.create_login("mem_plain")
    engine = create_postgres_engine(pg_server.url(pg_database, "mem_plain"), password=password)
    try:
        with pytest.raises(PermissionDeniedError, match=r"needs CREATEROLE.*'mem_plain'"):
            create_login(engine, "mem_never", "secret-value")
    finally:
        engine.dispose()
    with pg_server.superuser() as conn:
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'mem_never'").fetchone() is None


def test_a_member_added_by_the_admin_works_in_that_role_and_the_trail_says_who(
    team_workspace: Workspace, pg_server: PgServer, tmp_path: Path
) -> None:
    password = pg_server.create_login("mem_ana")
    sessions = team_workspace.session_factory()
    with sessions.begin() as session:
        with pytest.raises(MembershipError, match="no database login 'mem_ghost'"):
            add_member(session, "mem_ghost", TeamRole.ANALYST, actor="root")
        add_member(session, ADMIN_LOGIN, TeamRole.ADMIN, actor="root")
        add_member(session, "mem_ana", TeamRole.VIEWER, actor="root")
        change_role(session, "mem_ana", TeamRole.ANALYST, actor="root")
    database = team_workspace.engine.url.database or ""
    with _open_as(tmp_path, pg_server, database, "mem_ana", password) as analyst_ws:
        with analyst_ws.session_factory()() as session:
            assert current_role(session) == TeamRole.ANALYST
            # The app refuses first, naming the role; the database would refuse as well.
            with pytest.raises(
                PermissionDeniedError, match="adding a member needs the admin role; mem_ana is"
            ):
                add_member(session, "mem_other", TeamRole.ADMIN, actor="mem_ana")
            with pytest.raises(PermissionDeniedError, match="listing the members"):
                list_members(session)
        status = team_status(analyst_ws)
        assert (status.mode, status.login, status.database, status.role) == (
            "team",
            "mem_ana",
            database,
            TeamRole.ANALYST,
        )
        assert status.server == f"{pg_server.url(database).split('@')[1].split('/')[0]}"
        assert [(t.slug, t.role) for t in status.tenants] == [("default", TeamRole.ANALYST)]
    with sessions.begin() as session:
        with pytest.raises(MembershipError, match="last admin"):
            remove_member(session, ADMIN_LOGIN, actor="root")
        remove_member(session, "mem_ana", actor="root")
        assert [m.login for m in list_members(session)] == [ADMIN_LOGIN]
    with sessions() as session:
        trail = session.execute(
            select(AuditEvent.action, AuditEvent.db_login, AuditEvent.before, AuditEvent.after)
            .where(AuditEvent.action.like("team.%"))
            .order_by(AuditEvent.seq)
        ).all()
    assert [(action, login) for action, login, _b, _a in trail] == [
        ("team.member_added", ADMIN_LOGIN),
        ("team.member_added", ADMIN_LOGIN),
        ("team.role_changed", ADMIN_LOGIN),
        ("team.member_removed", ADMIN_LOGIN),
    ]
    assert trail[2][2:] == ({"login": "mem_ana", "role": "viewer"}, {"login": "mem_ana", "role": "analyst"})
    with pytest.raises(WorkspaceError, match="'mem_ana' is a member of no tenant"):
        _open_as(tmp_path, pg_server, database, "mem_ana", password)
