"""Team mode's PostgreSQL roles and row-level security, as data the migrations and tests read.

Two database roles, neither able to log in:

* :data:`OWNER_ROLE` owns every table. Migrations run as it (``SET ROLE``), so only a login that was made a
  member of it (the team's database administrator, ``runbook-desk team init``) can change the schema.
* :data:`MEMBER_ROLE` is granted to each analyst's own login. It holds the table privileges; which rows it
  reaches is decided by the policies, which read ``team_members`` (login, tenant, role).

Row-level security is enabled and *forced* on every tenant-scoped table, so it binds the owner too; the
owner has its own "all rows" policy (the administrator's tools), analysts never have the owner role. A
superuser bypasses all of it, as PostgreSQL documents: the administrator's login should not be one.

Each tenant-scoped table names the least role that may write it (:data:`WRITE_ROLE`); reading needs
membership (viewer). Tables not listed are written by analysts. A test holds every tenant-scoped table of
the models to having its policies, so a new table cannot be forgotten.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from core.errors import WorkspaceError

OWNER_ROLE = "runbook_desk_owner"
MEMBER_ROLE = "runbook_desk_member"

VIEWER, ANALYST, ADMIN = "viewer", "analyst", "admin"
ROLE_RANK = {VIEWER: 1, ANALYST: 2, ADMIN: 3}

# The least role that may INSERT, UPDATE or DELETE a table's rows (SELECT: any member of the tenant).
WRITE_ROLE: dict[str, str] = {
    # Configuration: connectors, their secrets' metadata, calibration, membership (admin).
    "connector_configs": ADMIN,
    "connector_secrets": ADMIN,
    "calibration_versions": ADMIN,
    "team_members": ADMIN,
    "sync_cursors": ADMIN,
    "sync_runs": ADMIN,
    # Derived data any member's desktop may rebuild: search sections, the shared embedding cache, the
    # full-text tables, health checks. None of it is a decision.
    "embedding_cache": VIEWER,
    "runbook_sections": VIEWER,
    "article_sections": VIEWER,
    "runbook_fts": VIEWER,
    "ticket_fts": VIEWER,
    "article_fts": VIEWER,
    "health_alerts": VIEWER,
}
DEFAULT_WRITE_ROLE = ANALYST


def write_role(table: str) -> str:
    return WRITE_ROLE.get(table, DEFAULT_WRITE_ROLE)


def become_owner(connection: Connection) -> None:
    """Run the rest of this transaction as :data:`OWNER_ROLE` (migrations), creating both roles on a new
    server when this login may (``CREATEROLE`` or superuser). A login that may not is told who can."""
    login = connection.execute(text("SELECT session_user")).scalar_one()
    exists = connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": OWNER_ROLE}).first()
    if exists is None:
        may_create = connection.execute(
            text("SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = session_user")
        ).scalar_one()
        if not may_create:
            raise WorkspaceError(
                f"this database has no Runbook Desk schema yet and login {login!r} cannot create its roles: "
                "a database administrator runs `runbook-desk team init` first (see README, Team mode)"
            )
        connection.execute(text(f"CREATE ROLE {OWNER_ROLE} NOLOGIN"))
        connection.execute(text(f"CREATE ROLE {MEMBER_ROLE} NOLOGIN"))
        connection.execute(text(f"GRANT {OWNER_ROLE} TO {_quoted(connection, login)}"))
    # Per database (roles are the server's, schemas and grants each database's): the owner creates the
    # tables in ``public``; members may connect. Granted by the schema's owner (the database's, by default).
    may_create = connection.execute(
        text("SELECT has_schema_privilege(:r, 'public', 'CREATE')"), {"r": OWNER_ROLE}
    ).scalar_one()
    if not may_create:
        connection.execute(text(f"GRANT CREATE, USAGE ON SCHEMA public TO {OWNER_ROLE}"))
        database = _quoted(connection, connection.execute(text("SELECT current_database()")).scalar_one())
        connection.execute(text(f"GRANT CONNECT ON DATABASE {database} TO {MEMBER_ROLE}"))
    is_member = connection.execute(
        text("SELECT pg_has_role(session_user, :r, 'MEMBER')"), {"r": OWNER_ROLE}
    ).scalar_one()
    if not is_member:
        raise WorkspaceError(
            f"the database schema needs an upgrade and login {login!r} may not change it: "
            "the team's database administrator runs `runbook-desk team migrate`"
        )
    connection.execute(text(f"SET LOCAL ROLE {OWNER_ROLE}"))


def _quoted(connection: Connection, name: str) -> str:
    return str(connection.execute(text("SELECT quote_ident(:n)"), {"n": name}).scalar_one())
