"""Who is working, in which role (team mode, issue 17).

On SQLite there is one analyst and one file: the login is "" and the role is admin. On a team's PostgreSQL
database the login is the database's ``session_user`` and the role is the login's row in ``team_members``
for the session's tenant; the database enforces the same roles (:mod:`core.store.team_schema`), this module
lets the app say so before it tries, and name the role an action needs.

Membership (the Members page, ``runbook-desk team members``) is changed here only: each change needs the
admin role, is audited (``team.member_added``, ``team.role_changed``, ``team.member_removed``, with the role
before and after), and never leaves a tenant without an admin. A new analyst's own database login is made
by :func:`create_login`; its password reaches the server only as a SCRAM verifier computed on this desktop,
so the clear text is in no statement, server log or error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine, select, text

from core.errors import MembershipError, PermissionDeniedError
from core.store.models import TeamMember, TeamRole
from core.store.repository import record_audit
from core.store.tenancy import TenantSession

if TYPE_CHECKING:
    from core.store.workspace import Workspace

_RANK = {TeamRole.VIEWER: 1, TeamRole.ANALYST: 2, TeamRole.ADMIN: 3}


def is_team_session(session: TenantSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def current_login(session: TenantSession) -> str:
    """The database login of this session ("" on SQLite), read once per session."""
    login = session.info.get("db_login")
    if login is None:
        login = str(session.scalar(text("SELECT session_user"))) if is_team_session(session) else ""
        session.info["db_login"] = login
    return str(login)


def current_role(session: TenantSession) -> TeamRole | None:
    """This login's role in the session's tenant: admin on SQLite, None for a login that is no member."""
    if not is_team_session(session):
        return TeamRole.ADMIN
    role = session.scalar(select(TeamMember.role).where(TeamMember.login == current_login(session)))
    if role is None and _is_owner(session):
        return TeamRole.ADMIN  # the database administrator's own login (the owner role's member)
    return role


def has_role(session: TenantSession, least: TeamRole) -> bool:
    role = current_role(session)
    return role is not None and _RANK[role] >= _RANK[least]


def require_role(session: TenantSession, least: TeamRole, action: str) -> None:
    """Raise :class:`PermissionDeniedError` naming the role ``action`` needs when this login lacks it."""
    if not has_role(session, least):
        role = current_role(session)
        held = f"is {role.value}" if role is not None else "is no member"
        raise PermissionDeniedError(
            f"{action} needs the {least.value} role; {current_login(session) or 'this login'} {held} "
            f"in tenant {session.tenant_slug}"
        )


def _is_owner(session: TenantSession) -> bool:
    from core.store.team_schema import OWNER_ROLE

    return bool(
        session.scalar(text("SELECT pg_has_role(session_user, :owner, 'MEMBER')"), {"owner": OWNER_ROLE})
    )


# --- Membership ------------------------------------------------------------------------------------------

# PostgreSQL's rule for an identifier that needs no quoting (a letter or "_", then letters, digits, "_" or
# "$"), lower case only: an unquoted name is folded to lower case, so "Alice" would log in as "alice" and
# never match its membership row. 63 bytes is NAMEDATALEN - 1 (the server truncates longer names).
LOGIN_PATTERN = re.compile(r"[a-z_][a-z0-9_$]{0,62}")
LOGIN_RULE = "1 to 63 lower-case letters, digits, '_' or '$', starting with a letter or '_'"
# Names the server keeps for itself (pg_*) and the app's own roles: making one of those a member would be a
# mistake, never a request.
_RESERVED_LOGIN_PREFIX = "pg_"


@dataclass(frozen=True)
class MemberRow:
    """One member of the session's tenant, as the Members page and the CLI show it."""

    login: str
    role: TeamRole
    added_by: str
    added_at: datetime


def validate_login(login: str) -> str:
    """``login`` when it is a plain PostgreSQL login name (:data:`LOGIN_PATTERN`); else
    :class:`MembershipError` saying the rule. Checked before any statement is built with it."""
    from core.store.team_schema import MEMBER_ROLE, OWNER_ROLE

    if not isinstance(login, str) or LOGIN_PATTERN.fullmatch(login) is None:
        raise MembershipError(f"{login!r} is not a valid database login: use {LOGIN_RULE}")
    if login.startswith(_RESERVED_LOGIN_PREFIX) or login in (OWNER_ROLE, MEMBER_ROLE, "public"):
        raise MembershipError(f"{login!r} is a name PostgreSQL or Runbook Desk keeps for itself")
    return login


def list_members(session: TenantSession) -> list[MemberRow]:
    """The tenant's members by login. Admins only: the list says who may do what."""
    require_role(session, TeamRole.ADMIN, "listing the members")
    return [
        MemberRow(m.login, m.role, m.added_by, m.created_at)
        for m in session.scalars(select(TeamMember).order_by(TeamMember.login))
    ]


def add_member(session: TenantSession, login: str, role: TeamRole, actor: str) -> MemberRow:
    """Make ``login`` a member of the session's tenant in ``role``. On PostgreSQL the login must exist
    (:func:`create_login`): a membership for a login nobody can use is a typo waiting to be found later."""
    require_role(session, TeamRole.ADMIN, "adding a member")
    validate_login(login)
    role = TeamRole(role)
    if _member(session, login) is not None:
        raise MembershipError(
            f"{login} is a member of tenant {session.tenant_slug} already: change its role instead"
        )
    if is_team_session(session) and not _login_exists(session, login):
        raise MembershipError(
            f"there is no database login {login!r} on this server: create it first "
            "(`runbook-desk team members add LOGIN --role ROLE --create-login`, or CREATE ROLE … LOGIN)"
        )
    member = TeamMember(login=login, role=role, added_by=actor)
    session.add(member)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="team.member_added",
        entity_type="team_member",
        entity_id=member.id,
        before=None,
        after={"login": login, "role": role.value},
    )
    return MemberRow(member.login, member.role, member.added_by, member.created_at)


def change_role(session: TenantSession, login: str, role: TeamRole, actor: str) -> MemberRow:
    """Give a member another role; the tenant's last admin cannot be demoted (nobody could undo it)."""
    require_role(session, TeamRole.ADMIN, "changing a member's role")
    member = _existing_member(session, login)
    role = TeamRole(role)
    before = member.role
    if before == role:
        return MemberRow(member.login, member.role, member.added_by, member.created_at)
    if before == TeamRole.ADMIN:
        _refuse_last_admin(session, login, "demote")
    member.role = role
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="team.role_changed",
        entity_type="team_member",
        entity_id=member.id,
        before={"login": login, "role": before.value},
        after={"login": login, "role": role.value},
    )
    return MemberRow(member.login, member.role, member.added_by, member.created_at)


def remove_member(session: TenantSession, login: str, actor: str) -> None:
    """End a login's membership of the tenant (its database login stays: it may be a member elsewhere)."""
    require_role(session, TeamRole.ADMIN, "removing a member")
    member = _existing_member(session, login)
    if member.role == TeamRole.ADMIN:
        _refuse_last_admin(session, login, "remove")
    before = {"login": login, "role": member.role.value}
    member_id = member.id
    session.delete(member)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="team.member_removed",
        entity_type="team_member",
        entity_id=member_id,
        before=before,
        after=None,
    )


def _member(session: TenantSession, login: str) -> TeamMember | None:
    return session.scalar(select(TeamMember).where(TeamMember.login == login))


def _existing_member(session: TenantSession, login: str) -> TeamMember:
    validate_login(login)
    member = _member(session, login)
    if member is None:
        raise MembershipError(f"{login} is no member of tenant {session.tenant_slug}")
    return member


def _refuse_last_admin(session: TenantSession, login: str, verb: str) -> None:
    # FOR UPDATE: two admins demoting each other at once must not both see "there is another admin".
    admins = session.scalars(
        select(TeamMember.id).where(TeamMember.role == TeamRole.ADMIN).with_for_update()
    ).all()
    if len(admins) <= 1:
        raise MembershipError(
            f"cannot {verb} {login}: it is the last admin of tenant {session.tenant_slug} "
            "(make another member admin first)"
        )


def _login_exists(session: TenantSession, login: str) -> bool:
    return (
        session.scalar(
            text("SELECT 1 FROM pg_roles WHERE rolname = :login AND rolcanlogin"), {"login": login}
        )
        is not None
    )


# --- Logins (PostgreSQL) ---------------------------------------------------------------------------------


def create_login(engine: Engine, login: str, password: str) -> None:
    """Create an analyst's own database login and grant it the member role (what a member's rows and
    privileges hang on). Needs a login with CREATEROLE: the team's database administrator.

    The password is turned into a SCRAM-SHA-256 verifier here (libpq's ``PQencryptPasswordConn``, what
    ``psql``'s ``\\password`` does), so the statement the server receives, and may log, holds the verifier,
    never the password. The statement is sent by the driver directly, past SQLAlchemy's statement logging.
    """
    import psycopg
    from psycopg import sql

    from core.store.team_schema import MEMBER_ROLE

    validate_login(login)
    if not password:
        raise MembershipError(f"no password given for the new login {login}")
    with engine.begin() as connection:
        may_create = connection.execute(
            text("SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = session_user")
        ).scalar_one()
        if not may_create:
            user = connection.execute(text("SELECT session_user")).scalar_one()
            raise PermissionDeniedError(
                f"creating a database login needs CREATEROLE, which login {user!r} does not have: "
                "ask the team's database administrator"
            )
        exists = connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :l"), {"l": login}).first()
        if exists is not None:
            raise MembershipError(f"database login {login!r} exists already: make it a member instead")
        driver = connection.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)  # create_postgres_engine's driver: psycopg 3
        verifier = driver.pgconn.encrypt_password(
            password.encode("utf-8"), login.encode("utf-8"), b"scram-sha-256"
        ).decode("ascii")
        statement = sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(login), sql.Literal(verifier)
        )
        with driver.cursor() as cursor:
            cursor.execute(statement)
            cursor.execute(
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(MEMBER_ROLE), sql.Identifier(login))
            )


# --- Status ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantMembership:
    slug: str
    role: TeamRole | None


@dataclass(frozen=True)
class TeamStatus:
    """Where this workspace's rows live and who this desktop is there (the status bar, ``team status``)."""

    mode: str  # "team" (PostgreSQL) or "single" (the workspace's SQLite file)
    login: str  # "" on SQLite
    server: str  # host:port; "" on SQLite
    database: str  # the database name, or the SQLite file's path
    role: TeamRole | None  # in ``tenant``
    tenant: str
    tenants: list[TenantMembership]


def team_status(workspace: Workspace, tenant: str = "default") -> TeamStatus:
    """This login's place in the workspace's store: which server and database, and its role per tenant."""
    memberships: list[TenantMembership] = []
    login = ""
    for row in workspace.tenants():
        with workspace.session_factory(row.slug)() as session:
            login = current_login(session)
            memberships.append(TenantMembership(row.slug, current_role(session)))
    role = next((m.role for m in memberships if m.slug == tenant), None)
    url = workspace.engine.url
    if workspace.is_team:
        return TeamStatus(
            "team",
            login,
            f"{url.host or 'localhost'}:{url.port or 5432}",
            url.database or "",
            role,
            tenant,
            memberships,
        )
    return TeamStatus("single", "", "", str(workspace.db_path), role, tenant, memberships)
