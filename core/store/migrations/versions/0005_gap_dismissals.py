"""Gap dismissals: the analyst's "not a gap" on a gap cluster, remembered so later runs leave it out.

A new table only; nothing existing is recreated.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 09:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "gap_dismissals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=500), nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("model_id", sa.String(length=200), nullable=False),
        sa.Column("centroid", sa.LargeBinary(), nullable=False),
        sa.Column("member_ticket_ids", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("dismissed_by", sa.String(length=200), nullable=False),
        sa.Column("dismissed_at", sa.DateTime(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_gap_dismissals_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gap_dismissals")),
    )
    with op.batch_alter_table("gap_dismissals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gap_dismissals_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("gap_dismissals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gap_dismissals_tenant_id"))
    op.drop_table("gap_dismissals")
