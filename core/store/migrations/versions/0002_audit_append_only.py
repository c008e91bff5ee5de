"""Make audit_events append-only in the database itself.

An audit trail the application could rewrite is not an audit trail; triggers make SQLite refuse UPDATE and
DELETE on it, whatever code (ours or a future bug) tries.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL: 0014 revokes UPDATE and DELETE and adds its own trigger
    op.execute(
        """
        CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END
        """
    )
    op.execute(
        """
        CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
        WHEN (SELECT COUNT(*) FROM tenants WHERE id = OLD.tenant_id) > 0
        BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER audit_events_no_delete")
    op.execute("DROP TRIGGER audit_events_no_update")
