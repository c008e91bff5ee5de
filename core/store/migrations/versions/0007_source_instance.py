"""Tickets and knowledge articles are keyed by their source's instance too (the identity rule in models).

Before, (external_id, source_system, tenant) was the key, and INC0010001 of one ServiceNow instance
overwrote INC0010001 of another. Both tables gain ``source_instance`` (the instance's host, "" when
unknown) and their unique key becomes (tenant, system, instance, external id).

SQLite cannot drop a table's UNIQUE constraint, so each table is rebuilt the way SQLite documents (create,
copy, drop, rename; foreign keys are off meanwhile, see env.py): ids are kept, so analyses, links and the
full-text index still point at the right rows, and the FTS triggers of 0003 are created again on the new
``tickets``. The connector FK is declared at table level now, where SQLite reflects its ON DELETE SET NULL.

Rows move this way: a synced row (``connector_config_id`` set) gets its config's instance; then a row still
unknown gets its system's instance when the tenant knows exactly one (configs of that type, synced rows),
which is where an import would have put it. Everything else stays unknown.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-15 09:00:00.000000

"""

from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TICKET_COLUMNS = (
    "id",
    "external_id",
    "source_system",
    "title",
    "description",
    "status",
    "severity",
    "assignee",
    "kind",
    "category",
    "configuration_item",
    "resolution_notes",
    "resolved_at",
    "source_url",
    "content_hash",
    "raw_payload",
    "created_at",
    "updated_at",
    "ingested_at",
    "row_updated_at",
    "tenant_id",
    "connector_config_id",
)
ARTICLE_COLUMNS = (
    "id",
    "connector_config_id",
    "external_id",
    "source_system",
    "title",
    "body",
    "url",
    "status",
    "content_hash",
    "raw_payload",
    "source_updated_at",
    "tenant_id",
    "created_at",
    "updated_at",
)
# As 0003 wrote them: dropping the old table dropped them.
TICKET_FTS_TRIGGERS = (
    """CREATE TRIGGER tickets_fts_insert AFTER INSERT ON tickets BEGIN
        INSERT INTO ticket_fts(rowid, title, body, tenant_id)
        VALUES (new.id, rd_fts_terms(new.title), rd_fts_terms(new.description), new.tenant_id); END""",
    """CREATE TRIGGER tickets_fts_update AFTER UPDATE OF title, description ON tickets BEGIN
        DELETE FROM ticket_fts WHERE rowid = old.id;
        INSERT INTO ticket_fts(rowid, title, body, tenant_id)
        VALUES (new.id, rd_fts_terms(new.title), rd_fts_terms(new.description), new.tenant_id); END""",
    """CREATE TRIGGER tickets_fts_delete AFTER DELETE ON tickets BEGIN
        DELETE FROM ticket_fts WHERE rowid = old.id; END""",
)


def _ticket_table(name: str, keyed_by_instance: bool) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("source_system", sa.String(length=100), nullable=False),
        *([_instance_column()] if keyed_by_instance else []),
        sa.Column("title", sa.String(length=1000), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=100), nullable=True),
        sa.Column("severity", sa.String(length=50), nullable=True),
        sa.Column("assignee", sa.String(length=200), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "incident",
                "change",
                "request",
                "problem",
                "alert",
                name="ticketkind",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("category", sa.String(length=200), nullable=True),
        sa.Column("configuration_item", sa.String(length=200), nullable=True),
        sa.Column("resolution_notes", sa.Text(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("source_url", sa.String(length=2000), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("raw_payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.Column("ingested_at", sa.DateTime(), nullable=False),
        sa.Column("row_updated_at", sa.DateTime(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("connector_config_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_tickets_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["connector_config_id"],
            ["connector_configs.id"],
            name="fk_tickets_connector_config_id_connector_configs",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_tickets"),
        _key("tickets", keyed_by_instance),
    )


def _article_table(name: str, keyed_by_instance: bool) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connector_config_id", sa.Integer(), nullable=True),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("source_system", sa.String(length=100), nullable=False),
        *([_instance_column()] if keyed_by_instance else []),
        sa.Column("title", sa.String(length=1000), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("status", sa.String(length=100), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("raw_payload", sa.JSON(), nullable=False),
        sa.Column("source_updated_at", sa.DateTime(), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connector_config_id"],
            ["connector_configs.id"],
            name="fk_knowledge_articles_connector_config_id_connector_configs",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_knowledge_articles_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_knowledge_articles"),
        _key("knowledge_articles", keyed_by_instance),
    )


def _instance_column() -> sa.Column:
    return sa.Column("source_instance", sa.String(length=300), server_default="", nullable=False)


def _key(table: str, keyed_by_instance: bool) -> sa.UniqueConstraint:
    if keyed_by_instance:
        return sa.UniqueConstraint(
            "tenant_id",
            "source_system",
            "source_instance",
            "external_id",
            name=f"uq_{table}_tenant_id_source_system_source_instance_external_id",
        )
    return sa.UniqueConstraint(
        "external_id", "source_system", "tenant_id", name=f"uq_{table}_external_id_source_system_tenant_id"
    )


def _rebuild(
    table: str, create: Callable[[str, bool], None], columns: Sequence[str], keyed_by_instance: bool
) -> None:
    """Create the new shape beside the old, copy every row with its id, drop the old, take its name."""
    staging = f"_new_{table}"
    create(staging, keyed_by_instance)
    names = ", ".join(columns)
    op.execute(f"INSERT INTO {staging} ({names}) SELECT {names} FROM {table}")
    op.drop_table(table)  # its indexes and triggers go with it
    op.rename_table(staging, table)


def _indexes() -> None:
    op.create_index("ix_tickets_tenant_id", "tickets", ["tenant_id"])
    op.create_index("ix_tickets_tenant_updated", "tickets", ["tenant_id", "updated_at"])
    op.create_index("ix_tickets_connector_config_id", "tickets", ["connector_config_id"])
    op.create_index("ix_knowledge_articles_tenant_id", "knowledge_articles", ["tenant_id"])
    for trigger in TICKET_FTS_TRIGGERS:
        op.execute(trigger)


def instance_of(address: str) -> str:
    """A frozen copy of core.store.tickets.instance_of as it was at this revision."""
    text = address.strip()
    if not text:
        return ""
    parts = urlsplit(text if "://" in text else "//" + text)
    host = (parts.hostname or "").rstrip(".")
    try:
        port = parts.port
    except ValueError:
        port = None
    return host if port is None or port in (80, 443) else f"{host}:{port}"


def _place_rows(connection: sa.Connection, table: str) -> None:
    configs = connection.execute(
        sa.text("SELECT id, tenant_id, connector_type, config_json FROM connector_configs").columns(
            config_json=sa.JSON()
        )
    ).fetchall()
    known: dict[tuple[int, str], set[str]] = {}
    for config_id, tenant_id, connector_type, config_json in configs:
        data = config_json if isinstance(config_json, dict) else {}
        instance = instance_of(str(data.get("base_url") or ""))
        if not instance:
            continue
        known.setdefault((tenant_id, connector_type), set()).add(instance)
        connection.execute(
            sa.text(f"UPDATE {table} SET source_instance = :instance WHERE connector_config_id = :config"),
            {"instance": instance, "config": config_id},
        )
    synced = connection.execute(
        sa.text(
            f"SELECT DISTINCT tenant_id, source_system, source_instance FROM {table} "
            "WHERE source_instance != ''"
        )
    ).fetchall()
    for tenant_id, system, instance in synced:
        known.setdefault((tenant_id, system), set()).add(instance)
    for (tenant_id, system), instances in known.items():
        if len(instances) == 1:
            connection.execute(
                sa.text(
                    f"UPDATE {table} SET source_instance = :instance "
                    "WHERE tenant_id = :tenant AND source_system = :system AND source_instance = ''"
                ),
                {"instance": next(iter(instances)), "tenant": tenant_id, "system": system},
            )


def _rekey_in_place(keyed_by_instance: bool) -> None:
    """PostgreSQL alters a UNIQUE constraint in place (and other tables' foreign keys forbid the drop)."""
    for table in ("tickets", "knowledge_articles"):
        # op.f: a name longer than PostgreSQL's 63 characters is cut with a hash, as the models' are.
        op.drop_constraint(op.f(str(_key(table, not keyed_by_instance).name)), table, type_="unique")
        if keyed_by_instance:
            op.add_column(table, _instance_column())
        else:
            op.drop_column(table, "source_instance")
        columns = (
            ["tenant_id", "source_system", "source_instance", "external_id"]
            if keyed_by_instance
            else ["external_id", "source_system", "tenant_id"]
        )
        op.create_unique_constraint(op.f(str(_key(table, keyed_by_instance).name)), table, columns)


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name == "sqlite":
        _rebuild("tickets", _ticket_table, TICKET_COLUMNS, keyed_by_instance=True)
        _rebuild("knowledge_articles", _article_table, ARTICLE_COLUMNS, keyed_by_instance=True)
        _indexes()
    else:
        _rekey_in_place(keyed_by_instance=True)
    connection = op.get_bind()
    _place_rows(connection, "tickets")
    _place_rows(connection, "knowledge_articles")


def downgrade() -> None:
    """Downgrade schema: refused while two instances share an id (the old key cannot hold both)."""
    connection = op.get_bind()
    for table in ("tickets", "knowledge_articles"):
        shared = connection.execute(
            sa.text(
                f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} "
                "GROUP BY tenant_id, source_system, external_id HAVING COUNT(*) > 1) AS shared"
            )
        ).scalar()
        if shared:
            raise RuntimeError(f"cannot downgrade: {shared} {table} ids exist in more than one instance")
    if connection.dialect.name != "sqlite":
        _rekey_in_place(keyed_by_instance=False)
        return
    _rebuild("tickets", _ticket_table, TICKET_COLUMNS, keyed_by_instance=False)
    _rebuild("knowledge_articles", _article_table, ARTICLE_COLUMNS, keyed_by_instance=False)
    _indexes()
