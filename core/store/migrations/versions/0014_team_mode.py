"""Team mode (issue 17): members and roles, the audit hash chain, row versions, secrets' ages; PostgreSQL's
search tables, append-only audit and row-level security.

Both engines:

* ``team_members`` (login, tenant, role) and ``connector_secrets`` (when each secret was stored, rotated,
  used; never its value).
* ``audit_events`` gains the hash chain (``seq``, ``prev_hash``, ``row_hash``; the rows that exist are
  chained here, in id order per tenant) and ``db_login``; ``(tenant_id, seq)`` is unique.
* ``runbooks`` and ``ticket_runbook_links`` gain ``version`` and ``updated_by`` (optimistic concurrency).

PostgreSQL only (SQLite keeps its FTS5 tables and triggers of 0002/0003/0009/0013):

* ``runbook_fts``, ``ticket_fts``, ``article_fts``: plain tables (``lexemes`` tsvector with a GIN index,
  ``tf`` jsonb term counts per column, ``n_tokens``) that :mod:`core.matching.pg_search` fills with the
  same tokeniser as SQLite's. Triggers on the source tables mark a row ``stale`` (a Python tokeniser cannot
  run inside the server); search refreshes stale rows before it reads. A foreign key cascades deletes.
* audit rows: no UPDATE or DELETE (privileges and a trigger that also binds the owner), ``db_login`` checked
  against ``session_user``, a ``tenant.deleted`` row written when a tenant goes (as 0009 does on SQLite).
* row-level security, enabled and forced on every tenant-scoped table, plus a trigger that refuses a write
  the login's role does not allow, naming the role (:mod:`core.store.team_schema`).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 11:23:43.757135

"""

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from core.store.team_schema import MEMBER_ROLE, OWNER_ROLE, ROLE_RANK, write_role

# revision identifiers, used by Alembic.
revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tenant-scoped tables at this revision (row-level security is added to each).
TENANT_TABLES = (
    "runbooks",
    "runbook_revisions",
    "tickets",
    "ticket_runbook_links",
    "connector_configs",
    "sync_runs",
    "sync_cursors",
    "knowledge_articles",
    "analyses",
    "runbook_sections",
    "embedding_cache",
    "gap_dismissals",
    "health_alerts",
    "rematch_requests",
    "runbook_outcomes",
    "calibration_versions",
    "monitoring_events",
    "monitoring_alerts",
    "monitoring_incidents",
    "ticket_writebacks",
    "article_sections",
    "team_members",
    "connector_secrets",
)
# Search tables: (table, source table, the source's text columns in order, stale-marking trigger columns).
FTS_TABLES = (
    ("runbook_fts", "runbooks", ("title", "body")),
    ("ticket_fts", "tickets", ("title", "description")),
    ("article_fts", "knowledge_articles", ("title", "body", "attachment_text")),
)


def audit_digest(row: dict[str, Any], prev_hash: str) -> str:
    """A frozen copy of core.store.audit_chain.row_digest as it is at this revision."""
    occurred = row["occurred_at"]
    if isinstance(occurred, str):
        occurred = datetime.fromisoformat(occurred)
    if occurred.tzinfo is not None:
        occurred = occurred.astimezone(UTC).replace(tzinfo=None)
    payload = [
        prev_hash,
        row["tenant_id"],
        row["tenant_slug"],
        row["seq"],
        occurred.strftime("%Y-%m-%d %H:%M:%S.%f"),
        row["actor"],
        row["db_login"],
        row["action"],
        row["entity_type"],
        row["entity_id"],
        _json_value(row["before"]),
        _json_value(row["after"]),
    ]
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _json_value(value: Any) -> Any:
    if isinstance(value, str):  # read back without a JSON type
        value = json.loads(value)
    return json.loads(json.dumps(value))


def _chain_existing_rows(connection: sa.Connection) -> None:
    rows = connection.execute(
        sa.text(
            "SELECT id, tenant_id, tenant_slug, occurred_at, actor, db_login, action, entity_type, "
            "entity_id, before, after FROM audit_events ORDER BY tenant_id, id"
        ).columns(occurred_at=sa.DateTime(), before=sa.JSON(), after=sa.JSON())
    ).mappings()
    last: dict[int, tuple[int, str]] = {}
    for row in rows:
        seq, prev = last.get(row["tenant_id"], (0, ""))
        values = {**row, "seq": seq + 1}
        digest = audit_digest(values, prev)
        connection.execute(
            sa.text("UPDATE audit_events SET seq = :seq, prev_hash = :prev, row_hash = :hash WHERE id = :id"),
            {"seq": seq + 1, "prev": prev, "hash": digest, "id": row["id"]},
        )
        last[row["tenant_id"]] = (seq + 1, digest)


# SQLite: 0009's append-only trigger, dropped while the rows that exist are chained.
SQLITE_NO_UPDATE = """CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"""


def upgrade() -> None:
    """Upgrade schema."""
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table(
        "team_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("login", sa.String(length=63), nullable=False),
        sa.Column(
            "role",
            sa.Enum("viewer", "analyst", "admin", name="teamrole", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("added_by", sa.String(length=200), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_team_members_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_members")),
        sa.UniqueConstraint("tenant_id", "login", name=op.f("uq_team_members_tenant_id_login")),
    )
    with op.batch_alter_table("team_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_team_members_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "connector_secrets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connector_config_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=False),
        sa.Column("stored_at", sa.DateTime(), nullable=False),
        sa.Column("stored_by", sa.String(length=200), nullable=False),
        sa.Column("rotated_at", sa.DateTime(), nullable=True),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connector_config_id"],
            ["connector_configs.id"],
            name=op.f("fk_connector_secrets_connector_config_id_connector_configs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_connector_secrets_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connector_secrets")),
        sa.UniqueConstraint(
            "connector_config_id", "field", name=op.f("uq_connector_secrets_connector_config_id_field")
        ),
    )
    with op.batch_alter_table("connector_secrets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_connector_secrets_connector_config_id"), ["connector_config_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_connector_secrets_tenant_id"), ["tenant_id"], unique=False)

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), server_default="", nullable=False))
        batch_op.add_column(sa.Column("row_hash", sa.String(length=64), server_default="", nullable=False))
        batch_op.add_column(sa.Column("db_login", sa.String(length=63), server_default="", nullable=False))

    with op.batch_alter_table("runbooks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("updated_by", sa.String(length=200), server_default="", nullable=False))

    with op.batch_alter_table("ticket_runbook_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("updated_by", sa.String(length=200), server_default="", nullable=False))

    # ### end Alembic commands ###
    op.create_index("uq_audit_events_tenant_id_seq", "audit_events", ["tenant_id", "seq"], unique=True)
    connection = op.get_bind()
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        op.execute("DROP TRIGGER audit_events_no_update")
    _chain_existing_rows(connection)
    if sqlite:
        op.execute(SQLITE_NO_UPDATE)
    else:
        _postgresql_upgrade()


def downgrade() -> None:
    """Downgrade schema. Columns are dropped in place (SQLite 3.35+), so no table is rebuilt: a rebuild
    would drop the search and append-only triggers of 0003 and 0009 with the old table."""
    if op.get_bind().dialect.name != "sqlite":
        _postgresql_downgrade()
    op.drop_index("uq_audit_events_tenant_id_seq", "audit_events")
    for table, columns in (
        ("ticket_runbook_links", ("updated_by", "version")),
        ("runbooks", ("updated_by", "version")),
        ("audit_events", ("db_login", "row_hash", "prev_hash", "seq")),
    ):
        for column in columns:
            op.drop_column(table, column)
    op.drop_index("ix_connector_secrets_tenant_id", "connector_secrets")
    op.drop_index("ix_connector_secrets_connector_config_id", "connector_secrets")
    op.drop_table("connector_secrets")
    op.drop_index("ix_team_members_tenant_id", "team_members")
    op.drop_table("team_members")


def _rank_sql(column: str) -> str:
    cases = " ".join(f"WHEN '{role}' THEN {rank}" for role, rank in ROLE_RANK.items())
    return f"CASE {column} {cases} ELSE 0 END"


PG_FUNCTIONS = [
    # The tenants where this login has at least ``least``: a SECURITY DEFINER function (it runs as the
    # owner, whose policy sees all of team_members), called once per statement from the policies.
    f"""CREATE FUNCTION rd_my_tenants(min_role text) RETURNS integer[]
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT coalesce(array_agg(m.tenant_id), '{{}}') FROM team_members m
        WHERE m.login = session_user AND {_rank_sql("m.role")} >= {_rank_sql("min_role")} $$""",
    f"""CREATE FUNCTION rd_has_role(tenant integer, min_role text) RETURNS boolean
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT pg_has_role(session_user, '{OWNER_ROLE}', 'MEMBER') OR EXISTS (
            SELECT 1 FROM team_members m WHERE m.tenant_id = tenant AND m.login = session_user
            AND {_rank_sql("m.role")} >= {_rank_sql("min_role")}) $$""",
    # Refuses a write the login's role does not allow, with a message that names the role. RLS alone
    # would filter an UPDATE or DELETE down to no rows without a word.
    """CREATE FUNCTION rd_guard_write() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            needed text := TG_ARGV[0];
            tenant integer;
        BEGIN
            IF TG_OP = 'DELETE' THEN tenant := OLD.tenant_id; ELSE tenant := NEW.tenant_id; END IF;
            IF NOT rd_has_role(tenant, needed)
               OR (TG_OP = 'UPDATE' AND NOT rd_has_role(OLD.tenant_id, needed)) THEN
                RAISE EXCEPTION 'permission denied: % on % needs the % role in tenant %',
                    lower(TG_OP), TG_TABLE_NAME, needed, tenant
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
            RETURN NEW;
        END $$""",
    """CREATE FUNCTION rd_guard_tenant_write() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NOT rd_has_role(OLD.id, 'admin') THEN
                RAISE EXCEPTION 'permission denied: % on tenants needs the admin role in tenant %',
                    lower(TG_OP), OLD.id USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
            RETURN NEW;
        END $$""",
    """CREATE FUNCTION rd_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'insufficient_privilege';
        END $$""",
    """CREATE FUNCTION rd_audit_login() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.db_login IS DISTINCT FROM session_user::text THEN
                RAISE EXCEPTION 'audit_events.db_login must be the session user (%), not %',
                    session_user, NEW.db_login USING ERRCODE = 'check_violation';
            END IF;
            RETURN NEW;
        END $$""",
    """CREATE FUNCTION rd_tenant_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO audit_events (tenant_id, tenant_slug, actor, action, entity_type, entity_id, before,
                after, occurred_at, created_at, updated_at, prev_hash, row_hash, db_login)
            VALUES (OLD.id, OLD.slug, 'database', 'tenant.deleted', 'tenant', OLD.id,
                json_build_object('slug', OLD.slug, 'name', OLD.name), NULL,
                timezone('UTC', now()), timezone('UTC', now()), timezone('UTC', now()), '', '', session_user);
            RETURN OLD;
        END $$""",
    """CREATE FUNCTION rd_mark_fts_stale() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            EXECUTE format('INSERT INTO %I (rowid, tenant_id, stale) VALUES ($1, $2, true) '
                'ON CONFLICT (rowid) DO UPDATE SET stale = true, tenant_id = EXCLUDED.tenant_id', TG_ARGV[0])
                USING NEW.id, NEW.tenant_id;
            RETURN NULL;
        END $$""",
]


def _fts_sql(table: str, source: str, columns: Sequence[str]) -> list[str]:
    watched = ", ".join(columns)
    return [
        f"""CREATE TABLE {table} (
            rowid integer PRIMARY KEY REFERENCES {source}(id) ON DELETE CASCADE,
            tenant_id integer NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            lexemes tsvector NOT NULL DEFAULT ''::tsvector,
            tf jsonb NOT NULL DEFAULT '{{}}'::jsonb,
            n_tokens integer NOT NULL DEFAULT 0,
            stale boolean NOT NULL DEFAULT true)""",
        f"CREATE INDEX ix_{table}_lexemes ON {table} USING gin (lexemes)",
        f"CREATE INDEX ix_{table}_tenant_id ON {table} (tenant_id)",
        f"CREATE INDEX ix_{table}_stale ON {table} (tenant_id) WHERE stale",
        f"""CREATE TRIGGER {source}_fts_stale AFTER INSERT OR UPDATE OF {watched} ON {source}
            FOR EACH ROW EXECUTE FUNCTION rd_mark_fts_stale('{table}')""",
        f"INSERT INTO {table} (rowid, tenant_id) SELECT id, tenant_id FROM {source}",
    ]


def _row_security_sql(table: str, tenant_column: str = "tenant_id") -> list[str]:
    mine = f"{tenant_column} = ANY ((SELECT rd_my_tenants('viewer'))::integer[])"
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY owner_all ON {table} TO {OWNER_ROLE} USING (true) WITH CHECK (true)",
        f"CREATE POLICY member_read ON {table} FOR SELECT TO {MEMBER_ROLE} USING ({mine})",
    ]


def _tenant_table_sql(table: str) -> list[str]:
    mine = "tenant_id = ANY ((SELECT rd_my_tenants('viewer'))::integer[])"
    return [
        *_row_security_sql(table),
        f"CREATE POLICY member_insert ON {table} FOR INSERT TO {MEMBER_ROLE} WITH CHECK ({mine})",
        f"CREATE POLICY member_update ON {table} FOR UPDATE TO {MEMBER_ROLE} "
        f"USING ({mine}) WITH CHECK ({mine})",
        f"CREATE POLICY member_delete ON {table} FOR DELETE TO {MEMBER_ROLE} USING ({mine})",
        f"""CREATE TRIGGER {table}_role_guard BEFORE INSERT OR UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION rd_guard_write('{write_role(table)}')""",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {MEMBER_ROLE}",
    ]


def _postgresql_upgrade() -> None:
    statements = list(PG_FUNCTIONS)
    for table, source, columns in FTS_TABLES:
        statements += _fts_sql(table, source, columns)
    for table in (*TENANT_TABLES, *(fts[0] for fts in FTS_TABLES)):
        statements += _tenant_table_sql(table)
    mine = "id = ANY ((SELECT rd_my_tenants('viewer'))::integer[])"
    statements += [
        *_row_security_sql("tenants", "id"),
        f"CREATE POLICY member_update ON tenants FOR UPDATE TO {MEMBER_ROLE} "
        f"USING ({mine}) WITH CHECK ({mine})",
        """CREATE TRIGGER tenants_role_guard BEFORE UPDATE OR DELETE ON tenants
            FOR EACH ROW EXECUTE FUNCTION rd_guard_tenant_write()""",
        "CREATE TRIGGER tenants_deletion_audited AFTER DELETE ON tenants "
        "FOR EACH ROW EXECUTE FUNCTION rd_tenant_deleted()",
        f"GRANT SELECT, UPDATE ON tenants TO {MEMBER_ROLE}",
        # The audit trail: read by the tenant's members, appended to by them, changed by nobody.
        *_row_security_sql("audit_events"),
        "CREATE POLICY member_insert ON audit_events FOR INSERT TO "
        f"{MEMBER_ROLE} WITH CHECK (tenant_id = ANY ((SELECT rd_my_tenants('viewer'))::integer[]))",
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION rd_audit_append_only()",
        "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION rd_audit_append_only()",
        "CREATE TRIGGER audit_events_login BEFORE INSERT ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION rd_audit_login()",
        f"GRANT SELECT, INSERT ON audit_events TO {MEMBER_ROLE}",
        f"GRANT SELECT ON alembic_version TO {MEMBER_ROLE}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {MEMBER_ROLE}",
        f"GRANT EXECUTE ON FUNCTION rd_my_tenants(text), rd_has_role(integer, text) TO {MEMBER_ROLE}",
    ]
    for statement in statements:
        op.execute(statement)


def _postgresql_downgrade() -> None:
    for table in (*TENANT_TABLES, "tenants", "audit_events"):
        for policy in ("owner_all", "member_read", "member_insert", "member_update", "member_delete"):
            op.execute(f"DROP POLICY IF EXISTS {policy} ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_role_guard ON {table}")
    for trigger, table in (
        ("tenants_deletion_audited", "tenants"),
        ("audit_events_append_only", "audit_events"),
        ("audit_events_no_truncate", "audit_events"),
        ("audit_events_login", "audit_events"),
    ):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
    for table, source, _columns in FTS_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {source}_fts_stale ON {source}")
        op.execute(f"DROP TABLE IF EXISTS {table}")
    for function in (
        "rd_my_tenants(text)",
        "rd_has_role(integer, text)",
        "rd_guard_write()",
        "rd_guard_tenant_write()",
        "rd_audit_append_only()",
        "rd_audit_login()",
        "rd_tenant_deleted()",
        "rd_mark_fts_stale()",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
