"""The store: pragmas, tenant isolation, append-only audit, revisions."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError

from core.errors import TenantError
from core.store.models import AuditEvent, Runbook, RunbookStatus, Ticket
from core.store.repository import add_revision, list_runbooks, list_tickets, record_audit
from core.store.workspace import Workspace


def make_ticket(external_id: str, title: str = "VPN down") -> Ticket:
    return Ticket(external_id=external_id, source_system="servicenow", title=title, content_hash="h")


def test_sqlite_runs_in_wal_with_foreign_keys(workspace: Workspace) -> None:
    with workspace.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000


@pytest.fixture
def two_tenants(workspace: Workspace):
    workspace.ensure_tenant("acme")
    workspace.ensure_tenant("globex")
    acme, globex = workspace.session_factory("acme"), workspace.session_factory("globex")
    with acme.begin() as s:
        s.add_all([make_ticket("INC1", "acme vpn"), Runbook(title="Acme VPN", body="x")])
    with globex.begin() as s:
        s.add_all([make_ticket("INC1", "globex printer"), Runbook(title="Globex printer", body="y")])
    return acme, globex


def test_tenant_reads_only_its_own_rows(two_tenants) -> None:
    acme, globex = two_tenants
    with acme() as s:
        assert [t.title for t in list_tickets(s)] == ["acme vpn"]
        assert [r.title for r in list_runbooks(s)] == ["Acme VPN"]
        # Even a hand-written query without a tenant filter is scoped.
        assert s.scalar(select(func.count()).select_from(Ticket)) == 1
        assert s.scalars(select(Ticket.title)).all() == ["acme vpn"]
    with globex() as s:
        assert [t.title for t in list_tickets(s)] == ["globex printer"]


def test_tenant_cannot_update_or_delete_another_tenants_rows(two_tenants) -> None:
    acme, globex = two_tenants
    with acme.begin() as s:
        s.execute(update(Ticket).values(title="hijacked"))
        s.execute(delete(Runbook))
    with globex() as s:
        assert s.scalars(select(Ticket.title)).all() == ["globex printer"]
        assert s.scalars(select(Runbook.title)).all() == ["Globex printer"]


def test_tenant_cannot_load_by_primary_key_across_tenants(two_tenants) -> None:
    acme, globex = two_tenants
    with globex() as s:
        globex_ticket_id = s.scalars(select(Ticket.id)).one()
    with acme() as s:
        assert s.get(Ticket, globex_ticket_id) is None


def test_writing_a_row_of_another_tenant_is_refused(two_tenants, workspace: Workspace) -> None:
    acme, _globex = two_tenants
    globex_id = workspace.tenant("globex").id
    with pytest.raises(TenantError, match="belongs to tenant"), acme.begin() as s:
        s.add(Ticket(tenant_id=globex_id, external_id="X", source_system="s", title="t", content_hash="h"))


def test_ticket_key_is_unique_per_tenant_and_source(sessions) -> None:
    with pytest.raises(IntegrityError), sessions.begin() as s:
        s.add_all([make_ticket("INC9"), make_ticket("INC9")])


def test_audit_events_are_append_only(sessions) -> None:
    with sessions.begin() as s:
        record_audit(s, actor="ana", action="test", entity_type="ticket", entity_id=1, after={"a": 1})
    with pytest.raises(Exception, match="append-only"), sessions.begin() as s:
        s.execute(update(AuditEvent).values(actor="mallory"))
    with pytest.raises(Exception, match="append-only"), sessions.begin() as s:
        s.execute(delete(AuditEvent))
    with sessions() as s:
        assert s.scalars(select(AuditEvent.actor)).all() == ["ana"]


def test_revisions_keep_every_version(sessions) -> None:
    with sessions.begin() as s:
        runbook = Runbook(title="Disk full", body="v1", status=RunbookStatus.APPROVED)
        s.add(runbook)
        add_revision(s, runbook, "ana")
        runbook.body = "v2"
        add_revision(s, runbook, "bob")
    with sessions() as s:
        runbook = s.scalars(select(Runbook)).one()
        assert runbook.current_revision == 2
        assert [(r.revision, r.body, r.author) for r in runbook.revisions] == [
            (1, "v1", "ana"),
            (2, "v2", "bob"),
        ]


def test_times_come_back_timezone_aware(sessions) -> None:
    with sessions.begin() as s:
        s.add(make_ticket("INC5"))
    with sessions() as s:
        ticket = s.scalars(select(Ticket)).one()
        assert ticket.ingested_at.tzinfo is not None
