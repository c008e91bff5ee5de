"""Issue 18, item 6 (store side): the audit trail cannot be rewritten, survives deletes, and every automatic
link, export and import leaves its rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import sessionmaker

from core.analytics.gap_report import export_report
from core.analytics.gaps import GapQuery, GapReport
from core.analytics.metrics import Bucket, MetricRange, compute_metrics, export_csv
from core.errors import ImportFailedError
from core.importing import import_tickets
from core.matching.analysis import AnalysisResult, record_result
from core.matching.engine import RunbookMatch
from core.settings import GapSettings, Thresholds
from core.store.models import (
    AnalysisDecision,
    AuditEvent,
    LinkDecision,
    Runbook,
    RunbookStatus,
    Ticket,
    TicketRunbookLink,
)
from core.store.repository import LINK_ENTITY, SYSTEM_ACTOR, record_audit
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace

NOW = "2026-01-01 00:00:00.000000"
RAW_COLUMNS = "(id, tenant_id, actor, action, entity_type, occurred_at, created_at, updated_at)"


def audit_rows(sessions: sessionmaker[TenantSession]) -> list[AuditEvent]:
    with sessions() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


@pytest.fixture
def one_row(sessions: sessionmaker[TenantSession]) -> int:
    with sessions.begin() as session:
        event = record_audit(session, actor="ana", action="test", entity_type="ticket", entity_id=1)
        session.flush()
        return event.id


# --- the rows cannot be rewritten -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        f"INSERT OR REPLACE INTO audit_events {RAW_COLUMNS} VALUES (:id, 1, 'mallory', 'x', 'x', :t, :t, :t)",
        f"REPLACE INTO audit_events {RAW_COLUMNS} VALUES (:id, 1, 'mallory', 'x', 'x', :t, :t, :t)",
        f"INSERT INTO audit_events {RAW_COLUMNS} VALUES (:id, 1, 'mallory', 'x', 'x', :t, :t, :t) "
        "ON CONFLICT(id) DO UPDATE SET actor = 'mallory'",
        f"INSERT OR IGNORE INTO audit_events {RAW_COLUMNS} VALUES (:id, 1, 'mallory', 'x', 'x', :t, :t, :t)",
    ],
    ids=["insert-or-replace", "replace", "upsert", "insert-or-ignore"],
)
def test_raw_sql_cannot_replace_an_audit_row(
    workspace: Workspace, sessions: sessionmaker[TenantSession], one_row: int, statement: str
) -> None:
    with pytest.raises(DatabaseError, match="append-only"), workspace.engine.begin() as conn:
        conn.execute(text(statement), {"id": one_row, "t": NOW})
    assert [(r.id, r.actor) for r in audit_rows(sessions)] == [(one_row, "ana")]


def test_raw_sql_cannot_update_or_delete_an_audit_row(
    workspace: Workspace, sessions: sessionmaker[TenantSession], one_row: int
) -> None:
    for statement in ("UPDATE audit_events SET actor = 'mallory'", "DELETE FROM audit_events"):
        with pytest.raises(DatabaseError, match="append-only"), workspace.engine.begin() as conn:
            conn.execute(text(statement))
    assert [r.actor for r in audit_rows(sessions)] == ["ana"]


def test_a_new_row_still_goes_in(
    workspace: Workspace, sessions: sessionmaker[TenantSession], one_row: int
) -> None:
    with workspace.engine.begin() as conn:
        conn.execute(
            text(f"INSERT INTO audit_events {RAW_COLUMNS} VALUES (NULL, 1, 'bob', 'y', 'y', :t, :t, :t)"),
            {"t": NOW},
        )
    assert [r.actor for r in audit_rows(sessions)] == ["ana", "bob"]


# --- deleting a tenant ------------------------------------------------------------------------------------


def test_deleting_a_tenant_keeps_its_audit_rows_and_records_the_deletion(workspace: Workspace) -> None:
    acme_id = workspace.ensure_tenant("acme", "Acme Corp").id
    acme = workspace.session_factory("acme")
    with acme.begin() as session:
        session.add(Ticket(external_id="INC1", source_system="csv", title="t", content_hash="h"))
        record_audit(session, actor="ana", action="runbook.edit", entity_type="runbook", entity_id=3)
    with workspace.engine.begin() as conn:  # foreign keys on: everything else of acme cascades away
        conn.execute(text("DELETE FROM tenants WHERE slug = 'acme'"))
        assert (
            conn.execute(text("SELECT COUNT(*) FROM tickets WHERE tenant_id = :t"), {"t": acme_id}).scalar()
            == 0
        )
        kept = conn.execute(
            text("SELECT tenant_id, tenant_slug, actor, action FROM audit_events ORDER BY id")
        ).all()
    assert [tuple(row) for row in kept] == [
        (acme_id, "acme", "ana", "runbook.edit"),
        (acme_id, "acme", "database", "tenant.deleted"),
    ]
    # The id is never handed out again, so a new tenant does not inherit the old one's trail.
    globex = workspace.ensure_tenant("globex")
    assert globex.id > acme_id
    assert audit_rows(workspace.session_factory("globex")) == []
    with pytest.raises(DatabaseError, match="append-only"), workspace.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE tenant_id = :t"), {"t": acme_id})


def test_audit_rows_name_their_tenant(workspace: Workspace) -> None:
    workspace.ensure_tenant("acme")
    acme = workspace.session_factory("acme")
    with acme.begin() as session:
        record_audit(session, actor="ana", action="x", entity_type="y", entity_id=None)
    assert [r.tenant_slug for r in audit_rows(acme)] == ["acme"]


# --- automatic links --------------------------------------------------------------------------------------


def _ticket_and_runbook(sessions: sessionmaker[TenantSession]) -> tuple[int, int]:
    with sessions.begin() as session:
        ticket = Ticket(external_id="INC1", source_system="csv", title="VPN drops", content_hash="h")
        runbook = Runbook(title="VPN", body="x", status=RunbookStatus.APPROVED)
        session.add_all([ticket, runbook])
        session.flush()
        return ticket.id, runbook.id


def _analyse(
    sessions: sessionmaker[TenantSession], ticket_id: int, runbook_id: int, confidence: float
) -> None:
    thresholds = Thresholds()
    match = RunbookMatch(runbook_id, "VPN", confidence, 0.8, 1.0, 1.0, "steps")
    result = AnalysisResult(ticket_id, thresholds.decide(confidence), confidence, (match,))
    with sessions.begin() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        record_result(session, ticket, result, thresholds, "test-model")


def test_an_automatic_link_and_its_undoing_are_audited(sessions: sessionmaker[TenantSession]) -> None:
    ticket_id, runbook_id = _ticket_and_runbook(sessions)
    _analyse(sessions, ticket_id, runbook_id, 0.9)
    _analyse(sessions, ticket_id, runbook_id, 0.91)  # still linked: nothing new to audit
    _analyse(sessions, ticket_id, runbook_id, 0.6)  # now only a suggestion: the machine unlinked it
    with sessions() as session:
        link = session.scalars(select(TicketRunbookLink)).one()
    rows = audit_rows(sessions)
    assert [(r.action, r.actor, r.entity_type, r.entity_id) for r in rows] == [
        ("analysis.auto_link", SYSTEM_ACTOR, LINK_ENTITY, link.id),
        ("analysis.auto_unlink", SYSTEM_ACTOR, LINK_ENTITY, link.id),
    ]
    linked, unlinked = rows
    assert linked.before is None
    assert linked.after == {
        "ticket_id": ticket_id,
        "runbook_id": runbook_id,
        "decision": AnalysisDecision.LINK_RUNBOOK.value,
        "link": {"decision": LinkDecision.LINKED.value, "linked_automatically": True},
        "confidence": 0.9,
        "model_id": "test-model",
        "thresholds": {"existing": Thresholds().existing, "partial": Thresholds().partial},
    }
    assert unlinked.before == {"decision": LinkDecision.LINKED.value, "linked_automatically": True}
    assert unlinked.after is not None and unlinked.after["link"] == {
        "decision": LinkDecision.SUGGESTED.value,
        "linked_automatically": False,
    }


def test_analyze_writes_one_audit_row_per_automatic_link(analysed_demo: Workspace) -> None:
    with analysed_demo.session_factory()() as session:
        auto_links = session.scalar(
            select(func.count())
            .select_from(TicketRunbookLink)
            .where(TicketRunbookLink.linked_automatically, TicketRunbookLink.decision == LinkDecision.LINKED)
        )
        audited = session.scalars(
            select(AuditEvent.entity_id).where(AuditEvent.action == "analysis.auto_link")
        ).all()
    assert auto_links and len(audited) == len(set(audited)) == auto_links


# --- exports ----------------------------------------------------------------------------------------------


def _empty_gap_report() -> GapReport:
    return GapReport(
        query=GapQuery(since=datetime(2026, 6, 1, tzinfo=UTC)),
        settings=GapSettings(),
        model_id="m",
        generated_at=datetime(2026, 6, 30, tzinfo=UTC),
        range_start=datetime(2026, 6, 1, tzinfo=UTC),
        range_end=datetime(2026, 6, 30, tzinfo=UTC),
        review_threshold=0.5,
        in_range=0,
        not_analysed=0,
        covered=0,
        uncovered=0,
        noise=0,
        clusters=(),
        dismissed=(),
        method="test",
    )


@pytest.mark.parametrize("kind", ["csv", "html"])
def test_a_gap_export_is_audited(sessions: sessionmaker[TenantSession], tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"gaps.{kind}"
    assert export_report(sessions, _empty_gap_report(), path, kind, actor="ana") == path
    assert path.is_file()
    (row,) = audit_rows(sessions)
    assert (row.action, row.actor, row.entity_type) == (f"export.gaps_{kind}", "ana", "report")
    assert row.after is not None
    assert (row.after["path"], row.after["gaps"], row.after["since"]) == (
        str(path),
        0,
        "2026-06-01T00:00:00+00:00",
    )


def test_a_gap_export_that_fails_is_not_audited_as_written(
    sessions: sessionmaker[TenantSession], tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError):
        export_report(sessions, _empty_gap_report(), tmp_path / "missing" / "gaps.csv", "csv", actor="ana")
    assert audit_rows(sessions) == []


def test_a_metrics_export_is_audited(sessions: sessionmaker[TenantSession], tmp_path: Path) -> None:
    june = datetime(2026, 6, 1, tzinfo=UTC)
    with sessions() as session:
        report = compute_metrics(session, MetricRange(june, june + timedelta(days=7), Bucket.DAY))
    path = tmp_path / "metrics.csv"
    rows = export_csv(sessions, report, path, actor="ana")
    (row,) = audit_rows(sessions)
    assert (row.action, row.actor, row.entity_type) == ("export.metrics_csv", "ana", "report")
    assert row.after is not None and (row.after["path"], row.after["rows"]) == (str(path), rows)


# --- imports ----------------------------------------------------------------------------------------------

CSV = "number,short_description\nINC1,one\nINC2,two\nINC3,three\n"


class _InterruptAfter:
    """Ctrl-C in the middle of an import: the first progress report after a committed batch raises."""

    def __init__(self) -> None:
        self.reports = 0

    def report(self, done: int, total: int | None = None, message: str = "") -> None:
        self.reports += 1
        raise KeyboardInterrupt

    @property
    def cancelled(self) -> bool:
        return False


@pytest.fixture
def export_file(tmp_path: Path) -> Path:
    path = tmp_path / "incidents.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def _import_rows(sessions: sessionmaker[TenantSession]) -> list[tuple[str, dict[str, Any] | None]]:
    return [(r.action, r.after) for r in audit_rows(sessions) if r.action.startswith("import.")]


def test_an_import_interrupted_part_way_leaves_its_rows(
    sessions: sessionmaker[TenantSession], export_file: Path
) -> None:
    with pytest.raises(KeyboardInterrupt):
        import_tickets(sessions, export_file, batch_size=1, progress=_InterruptAfter(), actor="ana")
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1  # the committed batch stays
    (started, started_after), (closed, closed_after) = _import_rows(sessions)
    assert (started, closed) == ("import.tickets.started", "import.tickets")
    assert started_after is not None and started_after["path"] == str(export_file)
    assert closed_after is not None
    assert (closed_after["status"], closed_after["error"]) == ("interrupted", "KeyboardInterrupt")
    assert closed_after["started_id"] == audit_rows(sessions)[0].id


def test_a_refused_import_is_audited_as_failed(sessions: sessionmaker[TenantSession], tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("nothing,useful\n1,2\n", encoding="utf-8")
    with pytest.raises(ImportFailedError):
        import_tickets(sessions, path, actor="ana")
    (_, _), (closed, after) = _import_rows(sessions)
    assert closed == "import.tickets"
    assert after is not None and after["status"] == "failed" and "ImportFailedError" in after["error"]


def test_a_finished_import_is_closed_by_its_summary_row(
    sessions: sessionmaker[TenantSession], export_file: Path
) -> None:
    import_tickets(sessions, export_file, actor="ana")
    rows = _import_rows(sessions)
    assert [action for action, _ in rows] == ["import.tickets.started", "import.tickets"]
    summary = rows[1][1]
    assert (
        summary is not None
        and summary["inserted"] == 3
        and summary["started_id"] == audit_rows(sessions)[0].id
    )
