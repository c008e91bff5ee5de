"""The learning loop (issue 12): re-match requests, runbook outcomes and a tenant's own calibrations.

* ``rematch_requests``: a runbook whose change may change old tickets' matches, drained by the next analysis.
* ``runbook_outcomes``: did a linked runbook fix its ticket (the analyst's word or the source's history).
* ``calibration_versions``: calibrators refitted from a tenant's reviewed decisions, with their figures.
* ``audit_events`` gets two indexes: a ticket's decision history and an analyst's undo history are read from
  the trail by entity and by action (``core.workflow.history``).

New tables and indexes only; no existing row changes.

Revision ID: 0010
Revises: 0009
Create Date: 2027-01-20 09:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants"), ondelete="CASCADE"
    )


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "rematch_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("runbook_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=50), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        _tenant_fk("rematch_requests"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rematch_requests")),
    )
    with op.batch_alter_table("rematch_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rematch_requests_runbook_id"), ["runbook_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rematch_requests_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "runbook_outcomes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("runbook_id", sa.Integer(), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum("resolved", "partly", "failed", name="outcomekind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column(
            "source",
            sa.Enum(
                "analyst",
                "source_resolved",
                "source_reopened",
                "recurrence",
                name="outcomesource",
                native_enum=False,
                length=30,
            ),
            nullable=False,
        ),
        sa.Column("time_to_resolve_s", sa.Float(), nullable=True),
        sa.Column("evidence_ticket_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["runbook_id"],
            ["runbooks.id"],
            name=op.f("fk_runbook_outcomes_runbook_id_runbooks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_runbook_outcomes_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        _tenant_fk("runbook_outcomes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runbook_outcomes")),
        sa.UniqueConstraint(
            "ticket_id", "runbook_id", "source", name=op.f("uq_runbook_outcomes_ticket_id_runbook_id_source")
        ),
    )
    with op.batch_alter_table("runbook_outcomes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_runbook_outcomes_runbook_id"), ["runbook_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_runbook_outcomes_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_runbook_outcomes_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "calibration_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("calibrator", sa.JSON(), nullable=False),
        sa.Column("n_decisions", sa.Integer(), nullable=False),
        sa.Column("n_tickets", sa.Integer(), nullable=False),
        sa.Column("logloss_before", sa.Float(), nullable=True),
        sa.Column("logloss_after", sa.Float(), nullable=True),
        sa.Column("ece_before", sa.Float(), nullable=True),
        sa.Column("ece_after", sa.Float(), nullable=True),
        sa.Column("adopted", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("fitted_by", sa.String(length=200), nullable=False),
        sa.Column("fitted_at", sa.DateTime(), nullable=False),
        sa.Column("reverted_at", sa.DateTime(), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        _tenant_fk("calibration_versions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calibration_versions")),
    )
    with op.batch_alter_table("calibration_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calibration_versions_tenant_id"), ["tenant_id"], unique=False)

    with op.batch_alter_table("audit_events", schema=None, recreate="never") as batch_op:
        batch_op.create_index("ix_audit_events_entity", ["entity_type", "entity_id"], unique=False)
        batch_op.create_index("ix_audit_events_action", ["action"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("audit_events", schema=None, recreate="never") as batch_op:
        batch_op.drop_index("ix_audit_events_action")
        batch_op.drop_index("ix_audit_events_entity")
    for table in ("calibration_versions", "runbook_outcomes", "rematch_requests"):
        op.drop_table(table)
