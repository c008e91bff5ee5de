"""The audit trail survives deletes and cannot be replaced; tenant slugs are safe folder names.

Issue 18, items 4 and 6:

* ``audit_events.tenant_id`` loses its foreign key: deleting a tenant cascaded into its audit rows (0002's
  delete trigger let the cascade through). The rows keep the id as a plain column and gain
  ``tenant_slug``, the slug at the time, filled in here for the rows that exist (ids are kept).
* ``tenants`` gets AUTOINCREMENT, so a deleted tenant's id is never handed to a new tenant, which would
  otherwise read the old tenant's trail. A trigger appends a ``tenant.deleted`` row when a tenant goes.
* Triggers: no UPDATE, no DELETE (now with no exception), and no INSERT of an id that exists:
  ``INSERT OR REPLACE`` deletes the old row without firing delete triggers (SQLite runs them for REPLACE
  only with ``recursive_triggers`` on), so only a check before the insert stops it.
* A tenant slug that breaks the rule of :mod:`core.store.workspace` (it names a folder) is renamed to the
  nearest safe slug, and the rename is audited; its old index folder is left alone and rebuilt under the
  new name.

Both tables are rebuilt the way SQLite documents (create, copy, drop, rename; foreign keys are off
meanwhile, see env.py); every other table's foreign key names ``tenants`` and finds the new one.

Revision ID: 0009
Revises: 0008
Create Date: 2027-01-12 09:00:00.000000

"""

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of core.store.workspace's rule and core.store.repository's actor as they are at this revision.
SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
SYSTEM_ACTOR = "runbook-desk"

AUDIT_COLUMNS = (
    "id",
    "actor",
    "action",
    "entity_type",
    "entity_id",
    "before",
    "after",
    "occurred_at",
    "tenant_id",
    "created_at",
    "updated_at",
)
TENANT_COLUMNS = ("id", "slug", "name", "settings", "created_at", "updated_at")

NO_UPDATE = """CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"""
NO_DELETE = """CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"""
NO_REPLACE = """CREATE TRIGGER audit_events_no_replace BEFORE INSERT ON audit_events
    WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM audit_events WHERE id = NEW.id)
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: that id exists'); END"""
# The time in the format SQLAlchemy's SQLite DateTime reads back (microseconds included).
_NOW_SQL = "strftime('%Y-%m-%d %H:%M:%S', 'now') || '.000000'"
TENANT_DELETED = f"""CREATE TRIGGER tenants_deletion_audited AFTER DELETE ON tenants
    BEGIN INSERT INTO audit_events
        (tenant_id, tenant_slug, actor, action, entity_type, entity_id, before, after,
         occurred_at, created_at, updated_at)
    VALUES (OLD.id, OLD.slug, 'database', 'tenant.deleted', 'tenant', OLD.id,
            json_object('slug', OLD.slug, 'name', OLD.name), NULL, {_NOW_SQL}, {_NOW_SQL}, {_NOW_SQL});
    END"""

# 0002's triggers, for the downgrade.
OLD_NO_UPDATE = NO_UPDATE
OLD_NO_DELETE = """CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    WHEN (SELECT COUNT(*) FROM tenants WHERE id = OLD.tenant_id) > 0
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"""


def _tenants_table(name: str, *, autoincrement: bool) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("slug", name="uq_tenants_slug"),
        sqlite_autoincrement=autoincrement,
    )


def _audit_table(name: str, *, survives_tenant: bool) -> None:
    tenant_link = (
        [sa.Column("tenant_slug", sa.String(length=64), server_default="", nullable=False)]
        if survives_tenant
        else [
            sa.ForeignKeyConstraint(
                ["tenant_id"], ["tenants.id"], name="fk_audit_events_tenant_id_tenants", ondelete="CASCADE"
            )
        ]
    )
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("entity_type", sa.String(length=100), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        *tenant_link,
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )


def _swap(table: str, staging: str, columns: Sequence[str], select_list: Sequence[str] | None = None) -> None:
    names = ", ".join(columns)
    selected = ", ".join(select_list or columns)
    op.execute(f"INSERT INTO {staging} ({names}) SELECT {selected} FROM {table}")
    op.drop_table(table)  # its indexes and triggers go with it
    op.rename_table(staging, table)


def _audit_indexes() -> None:
    op.create_index("ix_audit_events_occurred_at", "audit_events", ["occurred_at"])
    op.create_index("ix_audit_events_tenant_id", "audit_events", ["tenant_id"])


def safe_slug(slug: str, taken: set[str]) -> str:
    """The nearest slug that follows the rule and is not taken ("Acme Corp" -> "acme-corp")."""
    base = re.sub(r"[^a-z0-9_-]+", "-", slug.lower()).strip("-_")[:60] or "tenant"
    candidate, number = base, 1
    while candidate in taken:
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def _rename_unsafe_slugs(connection: sa.Connection) -> None:
    rows = connection.execute(sa.text("SELECT id, slug FROM tenants ORDER BY id")).all()
    taken = {slug for _, slug in rows}
    now = datetime.now(UTC).replace(tzinfo=None)
    for tenant_id, slug in rows:
        if SLUG.fullmatch(slug):
            continue
        new_slug = safe_slug(slug, taken)
        taken.add(new_slug)
        connection.execute(
            sa.text("UPDATE tenants SET slug = :new WHERE id = :id"), {"new": new_slug, "id": tenant_id}
        )
        connection.execute(
            sa.text(
                "INSERT INTO audit_events (tenant_id, tenant_slug, actor, action, entity_type, entity_id, "
                "before, after, occurred_at, created_at, updated_at) VALUES "
                "(:id, :new, :actor, 'tenant.slug_renamed', 'tenant', :id, :before, :after, :now, :now, :now)"
            ),
            {
                "id": tenant_id,
                "new": new_slug,
                "actor": SYSTEM_ACTOR,
                "before": json.dumps({"slug": slug}),
                "after": json.dumps({"slug": new_slug, "why": "a slug names a folder: unsafe characters"}),
                "now": now,
            },
        )


def _upgrade_in_place() -> None:
    """PostgreSQL: the audit rows lose their tenant foreign key and gain the slug, in place. Its sequences
    never hand an id out twice; 0014 gives it its own append-only rules and the deletion trigger."""
    op.drop_constraint("fk_audit_events_tenant_id_tenants", "audit_events", type_="foreignkey")
    op.add_column(
        "audit_events", sa.Column("tenant_slug", sa.String(length=64), server_default="", nullable=False)
    )
    op.execute(
        "UPDATE audit_events SET tenant_slug = "
        "COALESCE((SELECT slug FROM tenants WHERE tenants.id = audit_events.tenant_id), '')"
    )
    _rename_unsafe_slugs(op.get_bind())


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name != "sqlite":
        _upgrade_in_place()
        return
    op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
    op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")

    _tenants_table("_new_tenants", autoincrement=True)
    _swap("tenants", "_new_tenants", TENANT_COLUMNS)
    # Never hand out an id that any audit row names, even one of a tenant deleted long ago.
    op.execute(
        "UPDATE sqlite_sequence SET seq = MAX(seq, COALESCE((SELECT MAX(tenant_id) FROM audit_events), 0)) "
        "WHERE name = 'tenants'"
    )

    _audit_table("_new_audit_events", survives_tenant=True)
    slug_of_tenant = "COALESCE((SELECT slug FROM tenants WHERE tenants.id = audit_events.tenant_id), '')"
    _swap(
        "audit_events",
        "_new_audit_events",
        (*AUDIT_COLUMNS, "tenant_slug"),
        (*AUDIT_COLUMNS, slug_of_tenant),
    )
    _audit_indexes()
    _rename_unsafe_slugs(op.get_bind())

    for trigger in (NO_UPDATE, NO_DELETE, NO_REPLACE, TENANT_DELETED):
        op.execute(trigger)


def downgrade() -> None:
    """Downgrade schema: refused while audit rows of deleted tenants exist (the old key cannot hold them)."""
    orphans = (
        op.get_bind()
        .execute(sa.text("SELECT COUNT(*) FROM audit_events WHERE tenant_id NOT IN (SELECT id FROM tenants)"))
        .scalar()
    )
    if orphans:
        raise RuntimeError(f"cannot downgrade: {orphans} audit rows belong to deleted tenants")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_column("audit_events", "tenant_slug")
        op.create_foreign_key(
            "fk_audit_events_tenant_id_tenants",
            "audit_events",
            "tenants",
            ["tenant_id"],
            ["id"],
            ondelete="CASCADE",
        )
        return
    for trigger in ("audit_events_no_update", "audit_events_no_delete", "audit_events_no_replace"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TRIGGER IF EXISTS tenants_deletion_audited")
    _audit_table("_new_audit_events", survives_tenant=False)
    _swap("audit_events", "_new_audit_events", AUDIT_COLUMNS)
    _audit_indexes()
    _tenants_table("_new_tenants", autoincrement=False)
    _swap("tenants", "_new_tenants", TENANT_COLUMNS)
    op.execute(OLD_NO_UPDATE)
    op.execute(OLD_NO_DELETE)
