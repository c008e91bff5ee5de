"""Monitoring (issue 13): monitoring events, alerts and incidents; write-backs; the health alerts renamed.

* ``alerts`` held the app's own health alerts (sync failures, unlinked volume); it becomes ``health_alerts``
  (rows copied, then the old table dropped) so nobody confuses it with a monitoring system's alerts.
* ``monitoring_events``: each record a monitoring connector read, unique by its source id.
* ``monitoring_alerts``: the events deduplicated by fingerprint, with counts and first/last seen.
* ``monitoring_incidents``: alerts correlated by host/CI or service within a window, matched via a ticket row.
* ``ticket_writebacks``: approved runbook links to post to the source ticket, once per link.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 09:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HEALTH_ALERT_COLUMNS = (
    "id, rule, subject, message, value, threshold, raised_at, checked_at, cleared_at, tenant_id"
)


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "health_alerts",
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
            ["tenant_id"], ["tenants.id"], name=op.f("fk_health_alerts_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_alerts")),
    )
    with op.batch_alter_table("health_alerts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_health_alerts_active_rule_subject",
            ["tenant_id", "rule", "subject"],
            unique=True,
            sqlite_where=sa.text("cleared_at IS NULL"),
            postgresql_where=sa.text("cleared_at IS NULL"),
        )
        batch_op.create_index(batch_op.f("ix_health_alerts_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "monitoring_incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=1000), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column(
            "status",
            sa.Enum("open", "resolved", name="incidentstatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("hosts", sa.JSON(), nullable=False),
        sa.Column("services", sa.JSON(), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("last_alert_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("notified_at", sa.DateTime(), nullable=True),
        sa.Column("created_config_id", sa.Integer(), nullable=True),
        sa.Column("created_number", sa.String(length=200), nullable=True),
        sa.Column("created_url", sa.String(length=2000), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.Column("row_updated_at", sa.DateTime(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_config_id"],
            ["connector_configs.id"],
            name=op.f("fk_monitoring_incidents_created_config_id_connector_configs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_monitoring_incidents_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_monitoring_incidents_ticket_id_tickets"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_incidents")),
    )
    with op.batch_alter_table("monitoring_incidents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_monitoring_incidents_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(
            "ix_monitoring_incidents_open_recent", ["tenant_id", "status", "last_alert_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_monitoring_incidents_ticket_id"), ["ticket_id"], unique=True)

    op.create_table(
        "ticket_writebacks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("runbook_id", sa.Integer(), nullable=False),
        sa.Column("connector_config_id", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            sa.Enum("pending", "written", "failed", name="writebackstatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("approved_by", sa.String(length=200), nullable=False),
        sa.Column("approved_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("written_at", sa.DateTime(), nullable=True),
        sa.Column("remote_id", sa.String(length=200), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connector_config_id"],
            ["connector_configs.id"],
            name=op.f("fk_ticket_writebacks_connector_config_id_connector_configs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["runbook_id"],
            ["runbooks.id"],
            name=op.f("fk_ticket_writebacks_runbook_id_runbooks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_ticket_writebacks_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_writebacks_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_writebacks")),
        sa.UniqueConstraint(
            "ticket_id", "runbook_id", name=op.f("uq_ticket_writebacks_ticket_id_runbook_id")
        ),
    )
    with op.batch_alter_table("ticket_writebacks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_writebacks_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ticket_writebacks_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "monitoring_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connector_config_id", sa.Integer(), nullable=True),
        sa.Column("source_system", sa.String(length=100), nullable=False),
        sa.Column("source_instance", sa.String(length=300), server_default="", nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("monitor_id", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=1000), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("expression", sa.Text(), nullable=True),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "triggered", "acknowledged", "resolved", name="alertstatus", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("host", sa.String(length=300), nullable=True),
        sa.Column("service", sa.String(length=300), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("occurrence_count", sa.Integer(), nullable=False),
        sa.Column("source_url", sa.String(length=2000), nullable=True),
        sa.Column("raw_payload", sa.JSON(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("row_updated_at", sa.DateTime(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connector_config_id"],
            ["connector_configs.id"],
            name=op.f("fk_monitoring_alerts_connector_config_id_connector_configs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["monitoring_incidents.id"],
            name=op.f("fk_monitoring_alerts_incident_id_monitoring_incidents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_monitoring_alerts_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_alerts")),
        sa.UniqueConstraint(
            "tenant_id", "fingerprint", name=op.f("uq_monitoring_alerts_tenant_id_fingerprint")
        ),
    )
    with op.batch_alter_table("monitoring_alerts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_monitoring_alerts_connector_config_id"), ["connector_config_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_monitoring_alerts_incident_id"), ["incident_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_monitoring_alerts_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "monitoring_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connector_config_id", sa.Integer(), nullable=True),
        sa.Column("source_system", sa.String(length=100), nullable=False),
        sa.Column("source_instance", sa.String(length=300), server_default="", nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=1000), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "triggered", "acknowledged", "resolved", name="alertstatus", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("source_updated_at", sa.DateTime(), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("ingested_at", sa.DateTime(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["monitoring_alerts.id"],
            name=op.f("fk_monitoring_events_alert_id_monitoring_alerts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["connector_config_id"],
            ["connector_configs.id"],
            name=op.f("fk_monitoring_events_connector_config_id_connector_configs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_monitoring_events_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_events")),
        sa.UniqueConstraint(
            "tenant_id",
            "source_system",
            "source_instance",
            "external_id",
            name=op.f("uq_monitoring_events_tenant_id_source_system_source_instance_external_id"),
        ),
    )
    with op.batch_alter_table("monitoring_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_monitoring_events_alert_id"), ["alert_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_monitoring_events_connector_config_id"), ["connector_config_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_monitoring_events_fingerprint"), ["fingerprint"], unique=False)
        batch_op.create_index(batch_op.f("ix_monitoring_events_tenant_id"), ["tenant_id"], unique=False)

    op.execute(
        f"INSERT INTO health_alerts ({_HEALTH_ALERT_COLUMNS}) SELECT {_HEALTH_ALERT_COLUMNS} FROM alerts"
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_active_rule_subject", sqlite_where=sa.text("cleared_at IS NULL"))
        batch_op.drop_index(batch_op.f("ix_alerts_tenant_id"))

    op.drop_table("alerts")


def downgrade() -> None:
    """Downgrade schema."""
    op.create_table(
        "alerts",
        sa.Column("id", sa.INTEGER(), nullable=False),
        sa.Column("rule", sa.VARCHAR(length=50), nullable=False),
        sa.Column("subject", sa.VARCHAR(length=200), nullable=False),
        sa.Column("message", sa.TEXT(), nullable=False),
        sa.Column("value", sa.FLOAT(), nullable=True),
        sa.Column("threshold", sa.FLOAT(), nullable=True),
        sa.Column("raised_at", sa.DateTime(), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.Column("cleared_at", sa.DateTime(), nullable=True),
        sa.Column("tenant_id", sa.INTEGER(), nullable=False),
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

    with op.batch_alter_table("monitoring_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monitoring_events_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_monitoring_events_fingerprint"))
        batch_op.drop_index(batch_op.f("ix_monitoring_events_connector_config_id"))
        batch_op.drop_index(batch_op.f("ix_monitoring_events_alert_id"))

    op.drop_table("monitoring_events")
    with op.batch_alter_table("monitoring_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monitoring_alerts_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_monitoring_alerts_incident_id"))
        batch_op.drop_index(batch_op.f("ix_monitoring_alerts_connector_config_id"))

    op.drop_table("monitoring_alerts")
    with op.batch_alter_table("ticket_writebacks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_writebacks_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_ticket_writebacks_tenant_id"))

    op.drop_table("ticket_writebacks")
    with op.batch_alter_table("monitoring_incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monitoring_incidents_ticket_id"))
        batch_op.drop_index("ix_monitoring_incidents_open_recent")
        batch_op.drop_index(batch_op.f("ix_monitoring_incidents_tenant_id"))

    op.drop_table("monitoring_incidents")
    with op.batch_alter_table("health_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_health_alerts_tenant_id"))
        batch_op.drop_index(
            "ix_health_alerts_active_rule_subject", sqlite_where=sa.text("cleared_at IS NULL")
        )

    op.execute(
        f"INSERT INTO alerts ({_HEALTH_ALERT_COLUMNS}) SELECT {_HEALTH_ALERT_COLUMNS} FROM health_alerts"
    )
    op.drop_table("health_alerts")
