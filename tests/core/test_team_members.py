"""Team membership on a SQLite workspace: one analyst, who is the admin; the rules are the same as a team's.

The PostgreSQL side (real logins, the database's own refusals) is tests/team/test_members.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.errors import MembershipError
from core.store.models import AuditEvent, TeamRole
from core.store.team import (
    add_member,
    change_role,
    current_role,
    list_members,
    remove_member,
    team_status,
    validate_login,
)
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace


def _audit(sessions: sessionmaker[TenantSession]) -> list[tuple[str, Any, Any]]:
    with sessions() as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("team.%")).order_by(AuditEvent.id)
        )
        return [(row.action, row.before, row.after) for row in rows]


def test_the_single_user_is_the_admin(sessions: sessionmaker[TenantSession]) -> None:
    with sessions() as session:
        assert current_role(session) == TeamRole.ADMIN
        assert list_members(session) == []


def test_adding_changing_and_removing_a_member_is_audited(sessions: sessionmaker[TenantSession]) -> None:
    with sessions.begin() as session:
        added = add_member(session, "alice", TeamRole.ANALYST, actor="root")
    assert (added.login, added.role, added.added_by) == ("alice", TeamRole.ANALYST, "root")
    with sessions.begin() as session:
        add_member(session, "bob", TeamRole.ADMIN, actor="root")
        change_role(session, "alice", TeamRole.VIEWER, actor="root")
    with sessions() as session:
        assert [(m.login, m.role) for m in list_members(session)] == [
            ("alice", TeamRole.VIEWER),
            ("bob", TeamRole.ADMIN),
        ]
    with sessions.begin() as session:
        change_role(session, "alice", TeamRole.VIEWER, actor="root")  # no change: no audit row
        remove_member(session, "alice", actor="root")
    with sessions() as session:
        assert [m.login for m in list_members(session)] == ["bob"]
    assert _audit(sessions) == [
        ("team.member_added", None, {"login": "alice", "role": "analyst"}),
        ("team.member_added", None, {"login": "bob", "role": "admin"}),
        ("team.role_changed", {"login": "alice", "role": "analyst"}, {"login": "alice", "role": "viewer"}),
        ("team.member_removed", {"login": "alice", "role": "viewer"}, None),
    ]


def test_the_last_admin_cannot_be_demoted_or_removed(sessions: sessionmaker[TenantSession]) -> None:
    with sessions.begin() as session:
        add_member(session, "bob", TeamRole.ADMIN, actor="root")
    for attempt in (
        lambda s: change_role(s, "bob", TeamRole.ANALYST, actor="root"),
        lambda s: remove_member(s, "bob", actor="root"),
    ):
        with (
            sessions.begin() as session,
            pytest.raises(MembershipError, match="last admin of tenant default"),
        ):
            attempt(session)
    with sessions.begin() as session:  # with a second admin, the first may step down
        add_member(session, "carol", TeamRole.ADMIN, actor="root")
        change_role(session, "bob", TeamRole.ANALYST, actor="root")
        with pytest.raises(MembershipError, match="cannot remove carol"):
            remove_member(session, "carol", actor="root")
    with sessions() as session:
        assert {m.login: m.role for m in list_members(session)} == {
            "bob": TeamRole.ANALYST,
            "carol": TeamRole.ADMIN,
        }


def test_a_member_is_added_once_and_unknown_members_are_named(sessions: sessionmaker[TenantSession]) -> None:
    with sessions.begin() as session:
        add_member(session, "alice", TeamRole.ANALYST, actor="root")
        with pytest.raises(MembershipError, match="alice is a member of tenant default already"):
            add_member(session, "alice", TeamRole.ADMIN, actor="root")
        with pytest.raises(MembershipError, match="dave is no member of tenant default"):
            change_role(session, "dave", TeamRole.ADMIN, actor="root")
        with pytest.raises(MembershipError, match="dave is no member"):
            remove_member(session, "dave", actor="root")


@pytest.mark.parametrize(
    "login",
    [
        "",
        "Alice",
        "1alice",
        "al ice",
        "alice;drop role x",
        'al"ice',
        "a" * 64,
        "pg_monitor",
        "runbook_desk_owner",
    ],
)
def test_a_login_that_is_no_plain_postgresql_name_is_refused(
    sessions: sessionmaker[TenantSession], login: str
) -> None:
    with pytest.raises(MembershipError):
        validate_login(login)
    with sessions.begin() as session, pytest.raises(MembershipError):
        add_member(session, login, TeamRole.VIEWER, actor="root")
    assert _audit(sessions) == []


@pytest.mark.parametrize("login", ["alice", "_svc", "a" * 63, "ops$1", "x_2"])
def test_plain_postgresql_names_are_accepted(login: str) -> None:
    assert validate_login(login) == login


def test_status_of_a_single_user_workspace(workspace: Workspace) -> None:
    workspace.ensure_tenant("acme")
    status = team_status(workspace)
    assert (status.mode, status.login, status.server, status.role) == ("single", "", "", TeamRole.ADMIN)
    assert status.database == str(workspace.db_path)
    assert [(t.slug, t.role) for t in status.tenants] == [
        ("default", TeamRole.ADMIN),
        ("acme", TeamRole.ADMIN),
    ]
