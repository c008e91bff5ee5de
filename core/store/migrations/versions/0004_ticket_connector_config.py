"""Tickets remember the connector config that brought them (nullable; NULL for file imports).

Removing a connector can then purge exactly its tickets; ON DELETE SET NULL keeps them otherwise.

Batch mode with ``recreate="never"``: SQLite adds a nullable column with an inline REFERENCES clause and
drops it again in place. Recreating ``tickets`` (batch mode's copy-and-move) would be wrong twice over:
dropping the old table fires ON DELETE CASCADE on analyses and ticket-runbook links, and drops the FTS
triggers of 0003.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 09:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("tickets", schema=None, recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column(
                "connector_config_id",
                sa.Integer(),
                sa.ForeignKey(
                    "connector_configs.id",
                    name="fk_tickets_connector_config_id_connector_configs",
                    ondelete="SET NULL",
                ),
                nullable=True,
            ),
            inline_references=True,  # SQLite cannot ALTER TABLE ADD CONSTRAINT; REFERENCES in the column can
        )
        batch_op.create_index(
            batch_op.f("ix_tickets_connector_config_id"), ["connector_config_id"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("tickets", schema=None, recreate="never") as batch_op:
        batch_op.drop_index(batch_op.f("ix_tickets_connector_config_id"))
        batch_op.drop_column("connector_config_id")
