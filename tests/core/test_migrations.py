"""Workspaces made by older versions upgrade in place and keep every row."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from core.store.db import create_sqlite_engine
from core.store.migrations import current_revision, is_managed_by_hand, upgrade_to
from core.store.models import Base
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
