"""Write-backs queued by review decisions (core.workflow.writeback): once per link, opt-in per connector,
cancelled by an undo before they are written, audited; retried by an analyst after a failure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.store.models import (
    AuditEvent,
    ConnectorConfig,
    LinkDecision,
    Runbook,
    RunbookStatus,
    Ticket,
    TicketRunbookLink,
    TicketWriteback,
    WritebackStatus,
)
from core.store.tenancy import TenantSession
from core.workflow.review import approve, bulk_approve, link_other, reject, undo
from core.workflow.writeback import (
    MAX_ATTEMPTS,
    WritebackError,
    list_writebacks,
    retry_writeback,
    writebacks_of,
)


@dataclass(frozen=True)
class World:
    on_ticket: int  # synced by a connector with write_back on
    off_ticket: int  # synced by a connector with write_back off
    file_ticket: int  # imported from a file: no connector
    runbook: int
    other_runbook: int


def _config(name: str, write_back: bool | None) -> ConnectorConfig:
    options = {} if write_back is None else {"write_back": write_back}
    return ConnectorConfig(
        connector_type="servicenow",
        name=name,
        config_json={"base_url": f"https://{name}.example.com", "auth_mode": "basic", "options": options},
    )


@pytest.fixture
def world(sessions: sessionmaker[TenantSession]) -> World:
    with sessions.begin() as session:
        on, off = _config("sn-on", True), _config("sn-off", False)
        session.add_all([on, off])
        session.flush()
        tickets = [
            Ticket(external_id="INC1", source_system="servicenow", title="VPN down", content_hash="a"),
            Ticket(external_id="INC2", source_system="servicenow", title="Disk full", content_hash="b"),
            Ticket(external_id="CSV3", source_system="csv", title="Printer jam", content_hash="c"),
        ]
        tickets[0].connector_config_id = on.id
        tickets[1].connector_config_id = off.id
        runbooks = [
            Runbook(title="Restart the VPN gateway", status=RunbookStatus.APPROVED, content_hash="r1"),
            Runbook(title="Free disk space", status=RunbookStatus.APPROVED, content_hash="r2"),
        ]
        session.add_all([*tickets, *runbooks])
        session.flush()
        return World(tickets[0].id, tickets[1].id, tickets[2].id, runbooks[0].id, runbooks[1].id)


def rows(sessions: sessionmaker[TenantSession]) -> list[TicketWriteback]:
    with sessions() as session:
        return list(session.scalars(select(TicketWriteback).order_by(TicketWriteback.id)))


def actions(sessions: sessionmaker[TenantSession], prefix: str = "writeback.") -> list[str]:
    with sessions() as session:
        return [
            e.action
            for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
            if e.action.startswith(prefix)
        ]


def test_an_approval_queues_one_writeback_with_who_and_confidence(
    sessions: sessionmaker[TenantSession], world: World
) -> None:
    with sessions.begin() as session:
        approve(session, world.on_ticket, world.runbook, 0.82, "alice")
    [row] = rows(sessions)
    assert (row.ticket_id, row.runbook_id, row.status, row.attempts) == (
        world.on_ticket,
        world.runbook,
        WritebackStatus.PENDING,
        0,
    )
    assert (row.approved_by, row.confidence) == ("alice", 0.82)
    assert actions(sessions) == ["writeback.queued"]
    with sessions() as session:
        [shown] = writebacks_of(session, world.on_ticket)
    assert (shown.runbook_title, shown.connector_name, shown.ticket_external_id) == (
        "Restart the VPN gateway",
        "sn-on",
        "INC1",
    )


def test_approving_the_same_link_again_queues_nothing_more(
    sessions: sessionmaker[TenantSession], world: World
) -> None:
    with sessions.begin() as session:
        approve(session, world.on_ticket, world.runbook, 0.82, "alice")
    with sessions.begin() as session:
        approve(session, world.on_ticket, world.runbook, 0.82, "bob")
        bulk_approve(session, [world.on_ticket], "carol")  # no analysis: skipped, nothing queued either
    assert len(rows(sessions)) == 1
    assert actions(sessions) == ["writeback.queued"]


def test_nothing_is_queued_when_the_option_is_off_or_the_ticket_came_from_a_file(
    sessions: sessionmaker[TenantSession], world: World
) -> None:
    with sessions.begin() as session:
        approve(session, world.off_ticket, world.runbook, 0.9, "alice")
        approve(session, world.file_ticket, world.runbook, 0.9, "alice")
        # A config without the option at all (a connector predating it) is off too.
        unset = _config("sn-unset", None)
        session.add(unset)
        session.flush()
        ticket = session.get(Ticket, world.off_ticket)
        assert ticket is not None
        ticket.connector_config_id = unset.id
        approve(session, world.off_ticket, world.other_runbook, 0.9, "alice")
    assert rows(sessions) == []
    assert actions(sessions) == []


def test_a_rejection_or_an_automatic_link_is_not_posted(
    sessions: sessionmaker[TenantSession], world: World
) -> None:
    with sessions.begin() as session:
        reject(session, world.on_ticket, world.runbook, "wrong", "alice")
        session.add(
            TicketRunbookLink(
                ticket_id=world.on_ticket,
                runbook_id=world.other_runbook,
                decision=LinkDecision.LINKED,
                linked_automatically=True,
                confidence_score=0.95,
            )
        )
    assert rows(sessions) == []


def test_undo_before_writing_cancels_and_reapproval_queues_afresh(
    sessions: sessionmaker[TenantSession], world: World
) -> None:
    with sessions.begin() as session:
        record = approve(session, world.on_ticket, world.runbook, 0.7, "alice")
    with sessions.begin() as session:
        undo(session, record, "alice")
    assert rows(sessions) == []
    with sessions.begin() as session:
        approve(session, world.on_ticket, world.runbook, 0.7, "alice")
    assert [r.status for r in rows(sessions)] == [WritebackStatus.PENDING]
    assert actions(sessions) == ["writeback.queued", "writeback.cancelled", "writeback.queued"]


def test_a_written_writeback_is_never_posted_twice(
    sessions: sessionmaker[TenantSession], world: World
) -> None:
    with sessions.begin() as session:
        record = approve(session, world.on_ticket, world.runbook, 0.7, "alice")
    with sessions.begin() as session:  # what connectors.writes does after a successful post
        [row] = session.scalars(select(TicketWriteback)).all()
        row.status, row.attempts, row.remote_id = WritebackStatus.WRITTEN, 1, "note-1"
        row.written_at = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    with sessions.begin() as session:
        undo(session, record, "alice")  # the note is in the other system: the row stays written
    with sessions.begin() as session:
        approve(session, world.on_ticket, world.runbook, 0.7, "alice")
    [row] = rows(sessions)
    assert (row.status, row.remote_id, row.attempts) == (WritebackStatus.WRITTEN, "note-1", 1)
    assert actions(sessions) == ["writeback.queued"]


def test_linking_another_runbook_queues_it_and_cancels_the_first(
    sessions: sessionmaker[TenantSession], world: World
) -> None:
    with sessions.begin() as session:
        approve(session, world.on_ticket, world.runbook, 0.6, "alice")
    with sessions.begin() as session:
        reject(session, world.on_ticket, world.runbook, "not this one", "bob")
        link_other(session, world.on_ticket, world.other_runbook, "bob")
    [row] = rows(sessions)
    assert (row.runbook_id, row.approved_by, row.confidence) == (world.other_runbook, "bob", None)
    assert actions(sessions) == ["writeback.queued", "writeback.cancelled", "writeback.queued"]


def test_retry_puts_a_failed_writeback_back_with_a_fresh_count(
    sessions: sessionmaker[TenantSession], world: World
) -> None:
    with sessions.begin() as session:
        approve(session, world.on_ticket, world.runbook, 0.7, "alice")
    [queued] = rows(sessions)
    with sessions.begin() as session:
        with pytest.raises(WritebackError, match="only a failed one"):
            retry_writeback(session, queued.id, "alice")
        row = session.get(TicketWriteback, queued.id)
        assert row is not None
        row.status, row.attempts, row.last_error = WritebackStatus.FAILED, MAX_ATTEMPTS, "403 Forbidden"
        row.last_attempt_at = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    with sessions() as session:
        [failed] = list_writebacks(session, status=WritebackStatus.FAILED)
    assert failed.gave_up and failed.last_error == "403 Forbidden"
    with sessions.begin() as session:
        retried = retry_writeback(session, queued.id, "bob")
    assert (retried.status, retried.attempts, retried.last_attempt_at) == (WritebackStatus.PENDING, 0, None)
    assert actions(sessions) == ["writeback.queued", "writeback.retry"]
    with sessions.begin() as session, pytest.raises(WritebackError, match="does not exist"):
        retry_writeback(session, 999, "bob")
