"""Workspaces made by older versions upgrade in place and keep every row."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from core.store.db import create_sqlite_engine
from core.store.migrations import alembic_config, current_revision, is_managed_by_hand, upgrade_to
from core.store.models import Base, TicketKind
from core.store.tickets import TicketValues, upsert_tickets
from core.store.workspace import DB_FILENAME, Workspace

FIRST_REVISION = "0001"


def test_upgrade_from_first_revision_keeps_every_row(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    folder.mkdir()
    engine = create_sqlite_engine(folder / DB_FILENAME)
    upgrade_to(engine, FIRST_REVISION)
    assert current_revision(engine) == FIRST_REVISION
    now = "2026-01-01 00:00:00"
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO tenants VALUES (1, 'default', 'Default', '{{}}', '{now}', '{now}')"))
        conn.execute(
            text(
                "INSERT INTO tickets (id, tenant_id, external_id, source_system, title, description, kind, "
                "content_hash, raw_payload, ingested_at, row_updated_at) VALUES "
                f"(7, 1, 'INC7', 'servicenow', 'old ticket', 'd', 'incident', 'h', '{{}}', '{now}', '{now}')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO audit_events (tenant_id, actor, action, entity_type, occurred_at, created_at, "
                f"updated_at) VALUES (1, 'ana', 'old', 'ticket', '{now}', '{now}', '{now}')"
            )
        )
    engine.dispose()

    with Workspace.open(folder) as ws:
        with ws.engine.connect() as conn:
            assert conn.execute(text("SELECT title FROM tickets WHERE id = 7")).scalar() == "old ticket"
            assert conn.execute(text("SELECT actor FROM audit_events")).scalar() == "ana"
        assert current_revision(ws.engine) != FIRST_REVISION
        assert [t.slug for t in ws.tenants()] == ["default"]


def test_head_schema_matches_the_models(workspace: Workspace) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with workspace.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": is_managed_by_hand})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_0007_keys_rows_by_instance_and_keeps_analyses_links_and_search(tmp_path: Path) -> None:
    """A workspace with data at 0006: synced rows get their config's instance, imported rows their system's
    only instance (or stay unknown), and nothing that points at a ticket is lost by the table's rebuild."""
    folder = tmp_path / "old"
    folder.mkdir()
    engine = create_sqlite_engine(folder / DB_FILENAME)
    upgrade_to(engine, "0006")
    now = "2026-01-01 00:00:00"
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO tenants VALUES (1, 'default', 'Default', '{{}}', '{now}', '{now}')"))
        for config_id, connector_type, url in (
            (3, "servicenow", "https://Acme.service-now.com/"),
            (4, "jira", "https://corp.atlassian.net"),
            (5, "remedy", "https://a.onbmc.com"),
            (6, "remedy", "https://b.onbmc.com:8443"),
        ):
            conn.execute(
                text(
                    "INSERT INTO connector_configs (id, tenant_id, connector_type, name, config_json, "
                    "is_active, sync_frequency_minutes, consecutive_failures, created_at, updated_at) VALUES "
                    f"({config_id}, 1, '{connector_type}', 'c{config_id}', :json, 1, 5, 0, '{now}', '{now}')"
                ),
                {"json": json.dumps({"base_url": url})},
            )
        for ticket_id, external_id, system, config_id in (
            (1, "INC1", "servicenow", 3),  # synced by Acme
            (2, "INC2", "servicenow", None),  # imported; ServiceNow has one instance
            (3, "OPS-1", "jira", None),  # imported; Jira's one instance is configured, never synced
            (4, "HD-1", "remedy", 5),  # synced by a.onbmc.com
            (5, "HD-2", "remedy", None),  # imported; Remedy has two instances: unknown
            (6, "X-1", "legacy", None),  # imported from a system no connector reads
        ):
            conn.execute(
                text(
                    "INSERT INTO tickets (id, tenant_id, external_id, source_system, title, description, "
                    "kind, content_hash, raw_payload, ingested_at, row_updated_at, connector_config_id) "
                    f"VALUES ({ticket_id}, 1, '{external_id}', '{system}', 'vpn tunnel {ticket_id}', 'd', "
                    f"'incident', 'h', '{{}}', '{now}', '{now}', :config)"
                ),
                {"config": config_id},
            )
        conn.execute(
            text(
                "INSERT INTO runbooks (id, tenant_id, title, body, tags, status, source, content_hash, "
                f"current_revision, created_at, updated_at) VALUES (1, 1, 'VPN', 'b', '[]', 'approved', "
                f"'authored', 'h', 0, '{now}', '{now}')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO analyses (ticket_id, tenant_id, decision, confidence, model_id, "
                "threshold_existing, threshold_partial, ticket_content_hash, analysed_at, created_at, "
                "updated_at) VALUES "
                f"(1, 1, 'link_runbook', 0.9, 'm', 0.8, 0.5, 'h', '{now}', '{now}', '{now}')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO ticket_runbook_links (ticket_id, runbook_id, tenant_id, linked_automatically, "
                f"decision, created_at, updated_at) VALUES (2, 1, 1, 0, 'linked', '{now}', '{now}')"
            )
        )
    engine.dispose()

    with Workspace.open(folder) as ws:
        at_head = current_revision(ws.engine)  # 0007 or a later revision
        with ws.engine.connect() as conn:
            placed = dict(conn.execute(text("SELECT id, source_instance FROM tickets ORDER BY id")).all())
            assert placed == {
                1: "acme.service-now.com",
                2: "acme.service-now.com",
                3: "corp.atlassian.net",
                4: "a.onbmc.com",
                5: "",
                6: "",
            }
            assert conn.execute(text("SELECT ticket_id FROM analyses")).scalar() == 1
            assert conn.execute(text("SELECT ticket_id FROM ticket_runbook_links")).scalar() == 2
            found = conn.execute(text("SELECT rowid FROM ticket_fts WHERE ticket_fts MATCH 'tunnel'")).all()
            assert sorted(rowid for (rowid,) in found) == [1, 2, 3, 4, 5, 6]
        sessions = ws.session_factory()
        globex_twin = replace(ticket_values("INC1"), title="printer jam")
        with sessions.begin() as session:  # the same number from another instance is a new ticket now
            assert upsert_tickets(session, [globex_twin], instance="globex.service-now.com") == (1, 0, 0)
        with pytest.raises(RuntimeError, match="cannot downgrade: 1 tickets ids exist in more than one"):
            command.downgrade(alembic_config(ws.engine), "0006")  # the old key cannot hold both INC1
        assert current_revision(ws.engine) == at_head
        with ws.engine.begin() as conn:  # the rebuilt table kept its triggers and foreign keys
            assert conn.execute(
                text("SELECT COUNT(*) FROM ticket_fts WHERE ticket_fts MATCH 'printer'")
            ).scalar()
            conn.execute(text("DELETE FROM connector_configs WHERE id = 3"))
            assert conn.execute(text("SELECT connector_config_id FROM tickets WHERE id = 1")).scalar() is None
            conn.execute(text("DELETE FROM tickets WHERE id = 1"))
            assert conn.execute(text("SELECT COUNT(*) FROM analyses")).scalar() == 0


def ticket_values(external_id: str) -> TicketValues:
    return TicketValues(
        external_id=external_id,
        source_system="servicenow",
        title="t",
        description="",
        status=None,
        severity=None,
        assignee=None,
        kind=TicketKind.INCIDENT,
        category=None,
        configuration_item=None,
        resolution_notes=None,
        resolved_at=None,
        created_at=None,
        updated_at=None,
        source_url=None,
        raw_payload={},
    )


def test_0009_keeps_the_audit_trail_names_its_tenants_and_renames_unsafe_slugs(tmp_path: Path) -> None:
    """A workspace with audit rows at 0008: every row and id stays, each gains its tenant's slug, and a slug
    that would escape the workspace as a folder name is renamed (and the rename audited)."""
    folder = tmp_path / "old"
    folder.mkdir()
    engine = create_sqlite_engine(folder / DB_FILENAME)
    upgrade_to(engine, "0008")
    now = "2026-01-01 00:00:00.000000"
    with engine.begin() as conn:
        for tenant_id, slug in ((1, "default"), (2, "zz/../b"), (3, "Acme Corp"), (4, "acme-corp")):
            conn.execute(
                text(f"INSERT INTO tenants VALUES ({tenant_id}, :slug, :slug, '{{}}', '{now}', '{now}')"),
                {"slug": slug},
            )
        for audit_id, tenant_id in ((5, 1), (9, 2), (12, 3)):
            conn.execute(
                text(
                    "INSERT INTO audit_events (id, tenant_id, actor, action, entity_type, occurred_at, "
                    f"created_at, updated_at) VALUES ({audit_id}, {tenant_id}, 'ana', 'old', 'x', '{now}', "
                    f"'{now}', '{now}')"
                )
            )
    engine.dispose()

    with Workspace.open(folder) as ws:
        assert [t.slug for t in ws.tenants()] == ["default", "zz-b", "acme-corp-2", "acme-corp"]
        with ws.engine.connect() as conn:
            kept = conn.execute(
                text(
                    "SELECT id, tenant_id, tenant_slug, action FROM audit_events "
                    "WHERE action = 'old' ORDER BY id"
                )
            ).all()
            renames = conn.execute(
                text(
                    "SELECT tenant_id, actor, json_extract(before, '$.slug'), json_extract(after, '$.slug') "
                    "FROM audit_events WHERE action = 'tenant.slug_renamed' ORDER BY id"
                )
            ).all()
        # The slug the tenant had when the rows were written, not the one it was renamed to.
        assert [tuple(row) for row in kept] == [
            (5, 1, "default", "old"),
            (9, 2, "zz/../b", "old"),
            (12, 3, "Acme Corp", "old"),
        ]
        assert [tuple(row) for row in renames] == [
            (2, "runbook-desk", "zz/../b", "zz-b"),
            (3, "runbook-desk", "Acme Corp", "acme-corp-2"),
        ]
        with pytest.raises(Exception, match="append-only"), ws.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT OR REPLACE INTO audit_events (id, tenant_id, actor, action, entity_type, "
                    f"occurred_at, created_at, updated_at) VALUES (5, 1, 'mallory', 'x', 'x', '{now}', "
                    f"'{now}', '{now}')"
                )
            )
        command.downgrade(alembic_config(ws.engine), "0008")  # no tenant was deleted: nothing to lose
        with ws.engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM audit_events WHERE action = 'old'")).scalar() == 3
        command.upgrade(alembic_config(ws.engine), "head")


def test_0009_refuses_to_downgrade_while_a_deleted_tenant_has_audit_rows(workspace: Workspace) -> None:
    acme_id = workspace.ensure_tenant("acme").id
    with workspace.engine.begin() as conn:
        conn.execute(text("DELETE FROM tenants WHERE id = :id"), {"id": acme_id})
    at_head = current_revision(workspace.engine)
    with pytest.raises(RuntimeError, match="cannot downgrade: 1 audit rows belong to deleted tenants"):
        command.downgrade(alembic_config(workspace.engine), "0008")
    assert current_revision(workspace.engine) == at_head


def test_newest_revision_from_file_names_is_alembics_head() -> None:
    """The fast "already at head?" check of every workspace open reads the file names; alembic's script
    directory is the truth it must agree with (revision ids are the files' numeric prefixes)."""
    from alembic.script import ScriptDirectory

    from core.store.migrations import MIGRATIONS_DIR, VERSIONS_DIR, newest_revision

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    assert newest_revision() == script.get_current_head()
    for revision in script.walk_revisions():
        assert list(VERSIONS_DIR.glob(f"{revision.revision}_*.py")), revision.revision


def test_workspace_behind_head_is_upgraded_on_open(tmp_path: Path) -> None:
    folder = tmp_path / "behind"
    folder.mkdir()
    engine = create_sqlite_engine(folder / DB_FILENAME)
    upgrade_to(engine, "0009")
    engine.dispose()
    with Workspace.open(folder) as workspace:
        from core.store.migrations import newest_revision

        assert current_revision(workspace.engine) == newest_revision()
