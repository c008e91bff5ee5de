"""Row-level security and roles hold against hand-written SQL (issue 17).

Every check connects as an analyst's own login with plain psycopg, as someone with ``psql`` and their
password would, not through the app: the app's tenant filter is not what is being tested, the server is.

The fixture gives two tenants, acme and globex, one row in *every* tenant-scoped table of the models for
each (built from the models' columns, so a new table is covered the day it is added), and three logins:
an analyst of acme, an analyst of globex and a viewer of acme.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import errors

from core.store.db import create_postgres_engine
from core.store.migrations import newest_revision, upgrade_to, upgrade_to_head
from core.store.models import Base, TeamMember, TeamRole
from core.store.team_schema import OWNER_ROLE, write_role
from core.store.workspace import Workspace
from tests.helpers.old_store import (
    BEFORE_TEAM_MODE,
    assert_chained,
    audit_chains,
    migration_0014,
    populate_at_0013,
)
from tests.helpers.postgres import ADMIN_LOGIN, PgServer

pytestmark = pytest.mark.team

FTS_TABLES = ("runbook_fts", "ticket_fts", "article_fts")
TENANT_TABLES = tuple(table.name for table in Base.metadata.sorted_tables if "tenant_id" in table.c)
# Logins are the server's, not one database's: a prefix keeps these apart from other tests' logins.
ANALYST_A, ANALYST_B, VIEWER_A = "rls_analyst_a", "rls_analyst_b", "rls_viewer_a"


@dataclass
class Team:
    database: str
    tenant_a: int
    tenant_b: int
    passwords: dict[str, str]
    admin: sa.Engine  # rd_admin, a member of the owner role: sees every row (its "all rows" policy)

    def connect(self, pg_server: PgServer, login: str) -> psycopg.Connection:
        return pg_server.connect(self.database, login, self.passwords[login])

    def counts(self, table: str) -> dict[int, int]:
        """Rows per tenant as the administrator sees them (the truth the analysts' views are held to)."""
        column = "id" if table == "tenants" else "tenant_id"
        with self.admin.connect() as connection:
            rows = connection.execute(
                sa.text(f"SELECT {column}, count(*) FROM {table} GROUP BY {column}")
            ).all()
            return {int(tenant): int(count) for tenant, count in rows}


def _value(column: sa.Column[Any], table: str, slug: str, parents: dict[str, int]) -> Any:
    """A value that satisfies ``column`` for one made-up row (FKs point at this tenant's parent rows)."""
    for foreign_key in column.foreign_keys:
        return parents[foreign_key.column.table.name]
    kind = column.type
    if isinstance(kind, sa.TypeDecorator):  # e.g. the models' UTC datetime
        kind = kind.impl_instance
    if isinstance(kind, sa.Enum):
        return kind.enums[0]
    if isinstance(kind, sa.JSON):
        return {}
    if isinstance(kind, sa.LargeBinary):
        return b"\x00\x01"
    if isinstance(kind, sa.DateTime):
        return datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.Float):
        return 0.5
    if isinstance(kind, sa.Integer):
        return 1
    text = f"{table}.{column.name}.{slug}"
    length = getattr(kind, "length", None)
    return text[-length:] if length else text


def _seed_every_table(admin: sa.Engine, tenant_id: int, slug: str) -> None:
    """One row in each tenant-scoped table for ``tenant_id``, parents first."""
    parents: dict[str, int] = {"tenants": tenant_id}
    with admin.begin() as connection:
        for table in Base.metadata.sorted_tables:
            if "tenant_id" not in table.c:
                continue
            values: dict[str, Any] = {"tenant_id": tenant_id}
            for column in table.c:
                if column.primary_key or column.name in values:
                    continue
                if column.foreign_keys or not (column.nullable or column.default or column.server_default):
                    values[column.name] = _value(column, table.name, slug, parents)
            if table.name == "audit_events":
                values["db_login"] = ADMIN_LOGIN  # the server checks it against session_user
                values["seq"] = None
            parents[table.name] = connection.execute(
                sa.insert(table).values(values).returning(table.c.id)
            ).scalar_one()


@pytest.fixture
def team(team_workspace: Workspace, pg_server: PgServer) -> Team:
    acme = team_workspace.ensure_tenant("acme", "Acme")
    globex = team_workspace.ensure_tenant("globex", "Globex")
    passwords = {login: pg_server.create_login(login) for login in (ANALYST_A, ANALYST_B, VIEWER_A)}
    for tenant, login, role in (
        (acme, ANALYST_A, TeamRole.ANALYST),
        (globex, ANALYST_B, TeamRole.ANALYST),
        (acme, VIEWER_A, TeamRole.VIEWER),
    ):
        with team_workspace.session_factory(tenant.slug).begin() as session:
            session.add(TeamMember(login=login, role=role, added_by="test"))
    for tenant in (acme, globex):
        _seed_every_table(team_workspace.engine, tenant.id, tenant.slug)
    database = team_workspace.engine.url.database or ""
    return Team(database, acme.id, globex.id, passwords, team_workspace.engine)


def test_every_tenant_scoped_table_has_forced_row_security_and_the_member_policies(
    team_workspace: Workspace,
) -> None:
    """Guards future migrations: a table added to the models with a tenant_id and no policies fails here."""
    with team_workspace.engine.connect() as connection:
        flags: dict[str, bool] = dict(
            connection.execute(
                sa.text(
                    "SELECT relname, relrowsecurity AND relforcerowsecurity FROM pg_class "
                    "WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
                )
            ).all()
        )
        policies: dict[str, set[str]] = {}
        for table, policy in connection.execute(
            sa.text("SELECT tablename, policyname FROM pg_policies WHERE schemaname = 'public'")
        ):
            policies.setdefault(table, set()).add(policy)
        guarded = set(
            connection.execute(
                sa.text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE '%_role_guard'")
            ).scalars()
        )
        owners: dict[str, str] = dict(
            connection.execute(
                sa.text("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'")
            ).all()
        )
    assert len(TENANT_TABLES) >= 20  # the models were read, not an empty list
    for table in (*TENANT_TABLES, *FTS_TABLES, "tenants"):
        assert flags.get(table) is True, f"{table}: row-level security is not enabled and forced"
        assert {"owner_all", "member_read"} <= policies.get(table, set()), table
        assert owners[table] == OWNER_ROLE, table
    for table in (*TENANT_TABLES, *FTS_TABLES):
        if table == "audit_events":
            assert policies[table] == {"owner_all", "member_read", "member_insert"}
            continue
        assert {"member_insert", "member_update", "member_delete"} <= policies[table], table
        assert f"{table}_role_guard" in guarded, f"{table}: no trigger enforces its write role"


def test_an_analyst_sees_none_of_another_tenants_rows_in_any_table(team: Team, pg_server: PgServer) -> None:
    with team.connect(pg_server, ANALYST_A) as analyst:
        for table in (*TENANT_TABLES, *FTS_TABLES):
            truth = team.counts(table)
            assert truth.get(team.tenant_b, 0) >= 1, f"{table}: the fixture wrote no row of tenant B"
            seen: dict[int, int] = dict(
                analyst.execute(f"SELECT tenant_id, count(*) FROM {table} GROUP BY tenant_id").fetchall()
            )
            assert seen == {team.tenant_a: truth[team.tenant_a]}, table
        tenants = analyst.execute("SELECT slug FROM tenants").fetchall()
        assert tenants == [("acme",)]


def test_an_update_without_where_changes_only_the_analysts_own_tenant(
    team: Team, pg_server: PgServer
) -> None:
    def titles() -> dict[int, set[str]]:
        with team.admin.connect() as connection:
            rows = connection.execute(sa.text("SELECT tenant_id, title FROM tickets")).all()
        return {tenant: {title for t, title in rows if t == tenant} for tenant, _ in rows}

    before = titles()
    with team.connect(pg_server, ANALYST_A) as analyst:
        changed = analyst.execute("UPDATE tickets SET title = 'x'").rowcount
        # Moving a row into tenant B is as refused as writing there.
        with pytest.raises(errors.InsufficientPrivilege):
            analyst.execute("UPDATE tickets SET tenant_id = %s", (team.tenant_b,))
    after = titles()
    assert changed == team.counts("tickets")[team.tenant_a] >= 1
    assert after[team.tenant_a] == {"x"}
    assert after[team.tenant_b] == before[team.tenant_b] != {"x"}


def test_a_delete_across_tenants_deletes_nothing_of_the_other_tenant(team: Team, pg_server: PgServer) -> None:
    """``DELETE FROM t`` (no WHERE) on every table the analyst may write: tenant B keeps every row."""
    before = {table: team.counts(table)[team.tenant_b] for table in (*TENANT_TABLES, *FTS_TABLES)}
    deleted: list[str] = []
    with team.connect(pg_server, ANALYST_A) as analyst:
        for table in reversed((*TENANT_TABLES, *FTS_TABLES)):
            if table == "audit_events" or write_role(table) == "admin":
                continue
            analyst.execute(f"DELETE FROM {table}")
            deleted.append(table)
    assert "tickets" in deleted and "runbooks" in deleted
    for table in deleted:
        assert team.counts(table).get(team.tenant_a, 0) == 0, f"{table}: the analyst's own rows stayed"
    assert {table: team.counts(table)[team.tenant_b] for table in before} == before


def test_a_viewers_change_to_a_connector_is_refused_by_the_database(team: Team, pg_server: PgServer) -> None:
    with team.connect(pg_server, VIEWER_A) as viewer:
        assert viewer.execute("SELECT count(*) FROM connector_configs").fetchone() == (1,)
        with pytest.raises(errors.InsufficientPrivilege, match="connector_configs needs the admin role"):
            viewer.execute("UPDATE connector_configs SET name = 'hijacked'")
        with pytest.raises(errors.InsufficientPrivilege, match="needs the analyst role"):
            viewer.execute("UPDATE tickets SET title = 'x'")
    with team.connect(pg_server, ANALYST_A) as analyst:  # an analyst is no admin either
        with pytest.raises(errors.InsufficientPrivilege, match="needs the admin role"):
            analyst.execute("DELETE FROM connector_configs")
        with pytest.raises(errors.InsufficientPrivilege, match="team_members needs the admin role"):
            analyst.execute("UPDATE team_members SET role = 'admin'")
    with team.admin.connect() as connection:
        names = connection.execute(sa.text("SELECT name FROM connector_configs")).scalars().all()
    assert "hijacked" not in names and len(names) == 2


def test_an_analyst_cannot_insert_into_another_tenant(team: Team, pg_server: PgServer) -> None:
    before = team.counts("tickets")
    insert = (
        "INSERT INTO tickets (tenant_id, external_id, source_system, source_instance, title, description, "
        "kind, content_hash, raw_payload, ingested_at, row_updated_at) VALUES "
        "(%s, %s, 'servicenow', '', 'planted', 'd', 'incident', 'h', '{}', now(), now())"
    )
    with team.connect(pg_server, ANALYST_A) as analyst:
        with pytest.raises(errors.InsufficientPrivilege):
            analyst.execute(insert, (team.tenant_b, "INC-PLANTED"))
        analyst.execute(insert, (team.tenant_a, "INC-OWN"))  # its own tenant: allowed
    after = team.counts("tickets")
    assert after[team.tenant_b] == before[team.tenant_b]
    assert after[team.tenant_a] == before[team.tenant_a] + 1


def test_row_security_alone_refuses_a_row_for_another_tenant(team: Team, pg_server: PgServer) -> None:
    """Without the role-guard trigger (disabled for this test), the policies' WITH CHECK still refuses."""
    with team.admin.begin() as connection:
        connection.execute(sa.text(f"SET LOCAL ROLE {OWNER_ROLE}"))
        connection.execute(sa.text("ALTER TABLE runbooks DISABLE TRIGGER runbooks_role_guard"))
    with (
        team.connect(pg_server, ANALYST_A) as analyst,
        pytest.raises(errors.InsufficientPrivilege, match="violates row-level security policy"),
    ):
        analyst.execute(
            "INSERT INTO runbooks (tenant_id, title, body, tags, status, source, content_hash, "
            "current_revision, created_at, updated_at) "
            "VALUES (%s, 'planted', 'b', '[]', 'draft', 'authored', 'h', 1, now(), now())",
            (team.tenant_b,),
        )


def test_the_audit_trail_is_append_only_for_analysts_and_for_the_owner(
    team: Team, pg_server: PgServer
) -> None:
    before = team.counts("audit_events")
    with team.connect(pg_server, ANALYST_A) as analyst:
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied for table audit_events"):
            analyst.execute("UPDATE audit_events SET actor = 'someone else'")
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied for table audit_events"):
            analyst.execute("DELETE FROM audit_events")
    with pg_server.connect(team.database, ADMIN_LOGIN, pg_server.admin_password) as owner:
        assert owner.execute("SELECT pg_has_role(session_user, %s, 'MEMBER')", (OWNER_ROLE,)).fetchone() == (
            True,
        )
        for statement in (
            "UPDATE audit_events SET actor = 'x'",
            "DELETE FROM audit_events",
            "TRUNCATE audit_events",
        ):
            with pytest.raises(errors.InsufficientPrivilege, match="append-only"):
                owner.execute(statement)
        owner.execute(f"SET ROLE {OWNER_ROLE}")  # as the tables' owner itself: still refused
        with pytest.raises(errors.InsufficientPrivilege, match="append-only"):
            owner.execute("DELETE FROM audit_events")
    assert team.counts("audit_events") == before


def test_an_audit_row_with_a_forged_login_is_refused(team: Team, pg_server: PgServer) -> None:
    insert = (
        "INSERT INTO audit_events (tenant_id, tenant_slug, actor, action, entity_type, occurred_at, "
        "created_at, updated_at, db_login) VALUES "
        "(%s, 'acme', 'ana', 'connector.changed', 'connector', now(), now(), now(), %s)"
    )
    with team.connect(pg_server, ANALYST_A) as analyst:
        with pytest.raises(errors.CheckViolation, match="must be the session user"):
            analyst.execute(insert, (team.tenant_a, ADMIN_LOGIN))
        analyst.execute(insert, (team.tenant_a, ANALYST_A))  # its own name: appended
        with pytest.raises(errors.InsufficientPrivilege):  # its own name, another tenant's trail
            analyst.execute(insert.replace("'acme'", "'globex'"), (team.tenant_b, ANALYST_A))


def test_an_analyst_cannot_become_the_owner(team: Team, pg_server: PgServer) -> None:
    with team.connect(pg_server, ANALYST_A) as analyst:
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied to set role"):
            analyst.execute(f"SET ROLE {OWNER_ROLE}")
        assert analyst.execute("SELECT pg_has_role(session_user, %s, 'USAGE')", (OWNER_ROLE,)).fetchone() == (
            False,
        )
        with pytest.raises(errors.InsufficientPrivilege):
            analyst.execute("ALTER TABLE tickets DISABLE ROW LEVEL SECURITY")


def test_upgrading_a_populated_database_keeps_rows_and_chains_the_audit_trail(pg_server: PgServer) -> None:
    name = pg_server.new_database(migrated=False)
    engine = create_postgres_engine(pg_server.url(name), password=pg_server.admin_password)
    try:
        upgrade_to(engine, BEFORE_TEAM_MODE)
        old = populate_at_0013(engine)
        upgrade_to_head(engine)
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == (
                newest_revision()
            )
            chains = audit_chains(connection)
            digest = migration_0014().audit_digest
            for slug, tenant_id in old.tenant_ids.items():
                assert [row["id"] for row in chains[tenant_id]] == old.audit_ids[slug]
                assert_chained(chains[tenant_id], digest)
                for table, source, ids in (
                    ("ticket_fts", "tickets", old.ticket_ids[slug]),
                    ("runbook_fts", "runbooks", old.runbook_ids[slug]),
                ):
                    kept = connection.execute(
                        sa.text(f"SELECT id FROM {source} WHERE tenant_id = :t ORDER BY id"), {"t": tenant_id}
                    ).scalars()
                    assert list(kept) == ids
                    search_rows = connection.execute(
                        sa.text(f"SELECT rowid, stale FROM {table} WHERE tenant_id = :t ORDER BY rowid"),
                        {"t": tenant_id},
                    ).all()
                    assert search_rows == [(row_id, True) for row_id in ids]
    finally:
        engine.dispose()
        pg_server.drop_database(name)
