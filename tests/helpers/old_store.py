"""A store as revision 0013 left it, with rows in it: what team mode's migration (0014) must carry over.

Raw SQL that both engines run, because the models describe head, not 0013. Two tenants, each with
tickets, runbooks and audit rows written the way the app wrote them before the hash chain existed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType
from typing import Any

import sqlalchemy as sa

BEFORE_TEAM_MODE = "0013"
TENANT_SLUGS = ("acme", "globex")
TICKETS_PER_TENANT = 3
RUNBOOKS_PER_TENANT = 2
AUDIT_ROWS_PER_TENANT = 4


@dataclass
class OldRows:
    """The ids written, per tenant slug, to find them again after the upgrade."""

    tenant_ids: dict[str, int] = field(default_factory=dict)
    ticket_ids: dict[str, list[int]] = field(default_factory=dict)
    runbook_ids: dict[str, list[int]] = field(default_factory=dict)
    audit_ids: dict[str, list[int]] = field(default_factory=dict)


def _insert(connection: sa.Connection, sql: str, json_columns: tuple[str, ...], **values: object) -> int:
    statement = sa.text(sql + " RETURNING id").bindparams(
        *(sa.bindparam(name, type_=sa.JSON) for name in json_columns)
    )
    return int(connection.execute(statement, values).scalar_one())


def populate_at_0013(engine: sa.Engine) -> OldRows:
    """Fill a database that is at 0013 (``upgrade_to(engine, "0013")``); returns what was written."""
    rows = OldRows()
    stamp = datetime(2026, 1, 2, 3, 4, 5, 678901)
    with engine.begin() as connection:
        for slug in TENANT_SLUGS:
            tenant = _insert(
                connection,
                "INSERT INTO tenants (slug, name, settings, created_at, updated_at) "
                "VALUES (:slug, :name, :settings, :t, :t)",
                ("settings",),
                slug=slug,
                name=slug.title(),
                settings={},
                t=stamp,
            )
            rows.tenant_ids[slug] = tenant
            rows.ticket_ids[slug] = [
                _insert(
                    connection,
                    "INSERT INTO tickets (tenant_id, external_id, source_system, title, description, kind, "
                    "content_hash, raw_payload, ingested_at, row_updated_at) VALUES (:tenant, :ext, "
                    "'servicenow', :title, 'printer jams on tray two', 'incident', :hash, :raw, :t, :t)",
                    ("raw",),
                    tenant=tenant,
                    ext=f"INC{n}",
                    title=f"{slug} ticket {n}",
                    hash=f"h{n}",
                    raw={"number": f"INC{n}"},
                    t=stamp,
                )
                for n in range(TICKETS_PER_TENANT)
            ]
            rows.runbook_ids[slug] = [
                _insert(
                    connection,
                    "INSERT INTO runbooks (tenant_id, title, body, tags, status, source, content_hash, "
                    "current_revision, created_at, updated_at) VALUES (:tenant, :title, "
                    "'restart the spooler', :tags, 'approved', 'authored', :hash, 1, :t, :t)",
                    ("tags",),
                    tenant=tenant,
                    title=f"{slug} runbook {n}",
                    tags=["printing"],
                    hash=f"r{n}",
                    t=stamp,
                )
                for n in range(RUNBOOKS_PER_TENANT)
            ]
            rows.audit_ids[slug] = [
                _insert(
                    connection,
                    "INSERT INTO audit_events (tenant_id, tenant_slug, actor, action, entity_type, "
                    'entity_id, "before", "after", occurred_at, created_at, updated_at) VALUES (:tenant, '
                    ":slug, :actor, 'runbook.approved', 'runbook', :entity, :before, :after, :t, :t, :t)",
                    ("before", "after"),
                    tenant=tenant,
                    slug=slug,
                    actor=f"analyst{n}",
                    entity=n,
                    before={"status": "draft"} if n % 2 else None,
                    after={"status": "approved", "note": "ünïcode ✓"},
                    t=stamp.replace(minute=n),
                )
                for n in range(AUDIT_ROWS_PER_TENANT)
            ]
    return rows


def migration_0014() -> ModuleType:
    """The 0014 migration module, for its frozen ``audit_digest`` (the chain as the migration built it)."""
    from core.store.migrations import VERSIONS_DIR

    path = next(VERSIONS_DIR.glob("0014_*.py"))
    spec = importlib.util.spec_from_file_location("migration_0014", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def audit_chains(connection: sa.Connection) -> dict[int, list[dict[str, Any]]]:
    """Every audit row per tenant id, in chain order."""
    result = connection.execute(
        sa.text(
            "SELECT id, tenant_id, tenant_slug, seq, prev_hash, row_hash, occurred_at, actor, db_login, "
            'action, entity_type, entity_id, "before", "after" FROM audit_events ORDER BY tenant_id, seq'
        ).columns(occurred_at=sa.DateTime(), before=sa.JSON(), after=sa.JSON())
    ).mappings()
    chains: dict[int, list[dict[str, Any]]] = {}
    for row in result:
        chains.setdefault(row["tenant_id"], []).append(dict(row))
    return chains


def assert_chained(chain: list[dict[str, Any]], audit_digest: Callable[[dict[str, Any], str], str]) -> None:
    """seq counts 1..n, each row names the previous row's hash, and each hash is its content's."""
    assert [row["seq"] for row in chain] == list(range(1, len(chain) + 1))
    previous = ""
    for row in chain:
        assert row["prev_hash"] == previous
        assert len(row["row_hash"]) == 64
        assert row["row_hash"] == audit_digest(row, previous)
        previous = row["row_hash"]
