"""Monitoring alerts, and the lowest rate-limit reading of each sync run.

``alerts`` is new. A partial unique index keeps at most one *active* alert (``cleared_at IS NULL``) per
tenant, rule and subject, so two evaluations racing each other cannot raise the same alert twice.

``sync_runs`` gains two nullable integer columns in place (``recreate="never"``: SQLite adds a plain nullable
column without copying the table, and the runs keep their rows).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 10:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=50), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("raised_at", sa.DateTime(), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.Column("cleared_at", sa.DateTime(), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_alerts_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(
            "ix_alerts_active_rule_subject",
            ["tenant_id", "rule", "subject"],
            unique=True,
            sqlite_where=sa.text("cleared_at IS NULL"),
            postgresql_where=sa.text("cleared_at IS NULL"),
        )
    with op.batch_alter_table("sync_runs", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("rate_limit_remaining", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("rate_limit_limit", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("sync_runs", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("rate_limit_limit")
        batch_op.drop_column("rate_limit_remaining")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_active_rule_subject")
        batch_op.drop_index(batch_op.f("ix_alerts_tenant_id"))
    op.drop_table("alerts")
