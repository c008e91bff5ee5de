"""Team mode's migration (0014) on a SQLite workspace with rows: nothing lost, the old audit trail chained.

The PostgreSQL twin of this test is in tests/team/test_row_security.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from core.store.db import create_sqlite_engine
from core.store.migrations import current_revision, newest_revision, upgrade_to
from core.store.workspace import DB_FILENAME, Workspace
from tests.helpers.old_store import (
    AUDIT_ROWS_PER_TENANT,
    BEFORE_TEAM_MODE,
    OldRows,
    assert_chained,
    audit_chains,
    migration_0014,
    populate_at_0013,
)


@pytest.fixture
def old_workspace(tmp_path: Path) -> tuple[Path, OldRows]:
    folder = tmp_path / "old"
    folder.mkdir()
    engine = create_sqlite_engine(folder / DB_FILENAME)
    upgrade_to(engine, BEFORE_TEAM_MODE)
    rows = populate_at_0013(engine)
    engine.dispose()
    return folder, rows


def test_0014_keeps_rows_and_chains_the_audit_rows_that_exist(old_workspace: tuple[Path, OldRows]) -> None:
    folder, old = old_workspace
    with Workspace.open(folder) as workspace, workspace.engine.connect() as connection:
        assert current_revision(workspace.engine) == newest_revision()
        for slug, tenant_id in old.tenant_ids.items():
            tickets = connection.execute(
                sa.text("SELECT id FROM tickets WHERE tenant_id = :t ORDER BY id"), {"t": tenant_id}
            ).scalars()
            assert list(tickets) == old.ticket_ids[slug]
            runbooks = connection.execute(
                sa.text("SELECT id, version, updated_by FROM runbooks WHERE tenant_id = :t ORDER BY id"),
                {"t": tenant_id},
            ).all()
            assert runbooks == [(runbook_id, 1, "") for runbook_id in old.runbook_ids[slug]]
        chains = audit_chains(connection)
        digest = migration_0014().audit_digest
        for slug, tenant_id in old.tenant_ids.items():
            chain = chains[tenant_id]
            # Chained in the order they were written (id order), each tenant's chain starting at 1.
            assert [row["id"] for row in chain] == old.audit_ids[slug]
            assert len(chain) == AUDIT_ROWS_PER_TENANT
            assert_chained(chain, digest)
            assert {row["db_login"] for row in chain} == {""}
        # The tenants' chains are independent: the same seq in two tenants, distinct hashes.
        first_hashes = {chains[t][0]["row_hash"] for t in old.tenant_ids.values()}
        assert len(first_hashes) == len(old.tenant_ids)


def test_0014_leaves_the_audit_trail_append_only(old_workspace: tuple[Path, OldRows]) -> None:
    """0014 drops 0009's no-update trigger to chain the old rows: it must be back afterwards."""
    folder, _old = old_workspace
    with (
        Workspace.open(folder) as workspace,
        workspace.engine.begin() as connection,
        pytest.raises(IntegrityError, match="append-only"),
    ):
        connection.execute(sa.text("UPDATE audit_events SET actor = 'mallory'"))


def test_0014_refuses_a_second_row_with_the_same_seq(old_workspace: tuple[Path, OldRows]) -> None:
    folder, old = old_workspace
    tenant_id = old.tenant_ids["acme"]
    with Workspace.open(folder) as workspace:
        raw = sqlite3.connect(workspace.root / DB_FILENAME)
        try:
            with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
                raw.execute(
                    "INSERT INTO audit_events (tenant_id, tenant_slug, actor, action, entity_type, "
                    "occurred_at, created_at, updated_at, seq) VALUES (?, 'acme', 'x', 'y', 'z', 0, 0, 0, 1)",
                    (tenant_id,),
                )
        finally:
            raw.close()
