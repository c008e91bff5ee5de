"""Sync runs outlive their connector: removing a config keeps its run history, under the name it had.

Before, ``sync_runs.connector_config_id`` was NOT NULL with ON DELETE CASCADE, so removing a connector
deleted every record of what it had synced (issue 18, item 6: the history an audit needs). Now the id is
nullable with ON DELETE SET NULL, and each run carries ``connector_name``, the config's name when it ran,
filled in here for the runs that exist.

SQLite cannot change a column's foreign key in place, so batch mode rebuilds ``sync_runs`` (create, copy,
drop, rename; foreign keys are off meanwhile, see env.py). Nothing references ``sync_runs``, so the rebuild
loses nothing; ids are kept.

Revision ID: 0008
Revises: 0007
Create Date: 2027-01-10 09:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _recreate() -> str:
    return "always" if op.get_bind().dialect.name == "sqlite" else "auto"  # PostgreSQL ALTERs in place


CONFIG_FK = "fk_sync_runs_connector_config_id_connector_configs"


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("sync_runs", schema=None, recreate=_recreate()) as batch_op:
        batch_op.add_column(sa.Column("connector_name", sa.String(200), nullable=False, server_default=""))
        batch_op.alter_column("connector_config_id", existing_type=sa.Integer(), nullable=True)
        batch_op.drop_constraint(CONFIG_FK, type_="foreignkey")
        batch_op.create_foreign_key(
            CONFIG_FK, "connector_configs", ["connector_config_id"], ["id"], ondelete="SET NULL"
        )
    op.execute(
        "UPDATE sync_runs SET connector_name = (SELECT name FROM connector_configs "
        "WHERE connector_configs.id = sync_runs.connector_config_id) "
        "WHERE connector_config_id IS NOT NULL"
    )


def downgrade() -> None:
    """Downgrade schema: the runs of removed connectors cannot be kept by the old schema and are deleted."""
    op.execute("DELETE FROM sync_runs WHERE connector_config_id IS NULL")
    with op.batch_alter_table("sync_runs", schema=None, recreate=_recreate()) as batch_op:
        batch_op.drop_constraint(CONFIG_FK, type_="foreignkey")
        batch_op.create_foreign_key(
            CONFIG_FK, "connector_configs", ["connector_config_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.alter_column("connector_config_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("connector_name")
