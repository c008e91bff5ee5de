"""Two analysts on one store (issue 17), on SQLite: the second decision is refused, names who and when, and
writes nothing; the change token tells a desktop what others did.

Two sessions of one workspace stand for two desktops; each decision is its own transaction, as the review
page runs it. Races inside one decision (between its read and its write) are made to happen at that exact
point by letting the other analyst commit from the hook the decision calls just before it writes.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.errors import ConcurrentChangeError
from core.store.models import AuditEvent, LinkDecision, Runbook, RunbookStatus, TicketRunbookLink
from core.store.tenancy import TenantSession
from core.workflow import review as review_module
from core.workflow.changes import change_token, changes_since
from core.workflow.review import (
    LinkVersions,
    ReviewConflictError,
    approve,
    link_other,
    load_review_queue,
    reject,
    undo,
)
from core.workflow.runbooks import StaleRevisionError, get_runbook_row, save_runbook, set_status
from tests.helpers.review_seed import SeededTicket, seed_review_ticket

WHEN = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"


@pytest.fixture
def ticket(sessions: sessionmaker[TenantSession]) -> SeededTicket:
    return seed_review_ticket(sessions)


def seen_by(sessions: sessionmaker[TenantSession], ticket_id: int) -> LinkVersions:
    """What a desktop's queue shows of the ticket (the row a decision is made from)."""
    with sessions() as session:
        row = next(row for row in load_review_queue(session) if row.ticket_id == ticket_id)
    assert row.seen is not None
    return row.seen


def links(
    sessions: sessionmaker[TenantSession], ticket_id: int
) -> dict[int, tuple[str, int, str, str | None]]:
    with sessions() as session:
        return {
            link.runbook_id: (
                LinkDecision(link.decision).value,
                link.version,
                link.updated_by,
                link.reviewed_by,
            )
            for link in session.scalars(
                select(TicketRunbookLink).where(TicketRunbookLink.ticket_id == ticket_id)
            )
        }


def review_audit(sessions: sessionmaker[TenantSession]) -> list[tuple[str, str]]:
    with sessions() as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("review.%")).order_by(AuditEvent.id)
        )
        return [(row.action, row.actor) for row in rows]


def test_the_queue_row_carries_the_versions_it_showed(
    sessions: sessionmaker[TenantSession], ticket: SeededTicket
) -> None:
    seen = seen_by(sessions, ticket.ticket_id)
    with sessions() as session:
        link_ids = sorted(session.scalars(select(TicketRunbookLink.id)).all())
    assert seen == LinkVersions(ticket.ticket_id, tuple((link_id, 1) for link_id in link_ids))


def test_the_second_decision_on_a_ticket_is_refused_naming_the_first_and_changes_nothing(
    sessions: sessionmaker[TenantSession], ticket: SeededTicket
) -> None:
    runbook_a, _runbook_b = ticket.runbook_ids
    alice_saw = seen_by(sessions, ticket.ticket_id)
    bob_saw = seen_by(sessions, ticket.ticket_id)
    with sessions.begin() as bob:
        approve(bob, ticket.ticket_id, runbook_a, 0.6, "bob", bob_saw)
    after_bob = links(sessions, ticket.ticket_id)

    with (
        pytest.raises(
            ConcurrentChangeError, match=rf"^INC0017001 was changed by bob at {WHEN}; your decision"
        ),
        sessions.begin() as alice,
    ):
        reject(alice, ticket.ticket_id, runbook_a, "wrong runbook", "alice", alice_saw)

    assert links(sessions, ticket.ticket_id) == after_bob
    assert after_bob[runbook_a] == ("linked", 2, "bob", "bob")
    assert review_audit(sessions) == [("review.approve", "bob")]


def test_a_decision_on_another_runbook_of_the_ticket_is_refused_too(
    sessions: sessionmaker[TenantSession], ticket: SeededTicket
) -> None:
    """Bob approved runbook A; Alice, still looking at the undecided ticket, links runbook B: the ticket is
    not what she saw, although her write touches no row Bob wrote."""
    runbook_a, runbook_b = ticket.runbook_ids
    alice_saw = seen_by(sessions, ticket.ticket_id)
    with sessions.begin() as bob:
        approve(bob, ticket.ticket_id, runbook_a, 0.6, "bob", seen_by(sessions, ticket.ticket_id))

    with pytest.raises(ConcurrentChangeError, match="changed by bob at"), sessions.begin() as alice:
        approve(alice, ticket.ticket_id, runbook_b, 0.55, "alice", alice_saw)
    assert links(sessions, ticket.ticket_id)[runbook_b] == ("suggested", 1, "runbook-desk", None)


def test_after_reloading_the_decision_goes_through_and_records_who(
    sessions: sessionmaker[TenantSession], ticket: SeededTicket
) -> None:
    runbook_a, _runbook_b = ticket.runbook_ids
    with sessions.begin() as bob:
        approve(bob, ticket.ticket_id, runbook_a, 0.6, "bob")
    with sessions() as session:  # decided tickets leave the queue; the review view reads the links afresh
        fresh = review_module.link_versions(session, [ticket.ticket_id])[ticket.ticket_id]
    with sessions.begin() as alice:
        reject(alice, ticket.ticket_id, runbook_a, "no", "alice", fresh)
    assert links(sessions, ticket.ticket_id)[runbook_a] == ("rejected", 3, "alice", "alice")


def test_a_write_that_loses_the_race_after_its_check_is_refused_by_the_version(
    sessions: sessionmaker[TenantSession], ticket: SeededTicket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both read version 1 and passed the check; Bob commits between Alice's read and her UPDATE. The
    UPDATE ... WHERE version = 1 matches nothing: refused, naming Bob."""
    runbook_a, _runbook_b = ticket.runbook_ids
    real_editor = review_module.editor

    def bob_commits_first(session: TenantSession, actor: str) -> str:
        if actor == "alice":
            with sessions.begin() as bob:
                approve(bob, ticket.ticket_id, runbook_a, 0.6, "bob")
        return real_editor(session, actor)

    monkeypatch.setattr(review_module, "editor", bob_commits_first)
    with (
        pytest.raises(
            ConcurrentChangeError, match=rf"INC0017001 was changed by bob at {WHEN}; nothing was saved"
        ),
        sessions.begin() as alice,
    ):
        reject(alice, ticket.ticket_id, runbook_a, None, "alice")  # no seen: only the version guards
    assert links(sessions, ticket.ticket_id)[runbook_a][:3] == ("linked", 2, "bob")
    assert review_audit(sessions) == [("review.approve", "bob")]


def test_two_inserts_of_the_same_new_link_the_second_is_a_conflict(
    sessions: sessionmaker[TenantSession], ticket: SeededTicket, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sessions.begin() as session:
        third = Runbook(title="Reinstall the VPN client", status=RunbookStatus.APPROVED, content_hash="c")
        session.add(third)
        session.flush()
        third_id = third.id
    real_editor = review_module.editor

    def bob_links_first(session: TenantSession, actor: str) -> str:
        if actor == "alice":
            with sessions.begin() as bob:
                link_other(bob, ticket.ticket_id, third_id, "bob")
        return real_editor(session, actor)

    monkeypatch.setattr(review_module, "editor", bob_links_first)
    with (
        pytest.raises(ConcurrentChangeError, match="INC0017001 was changed by bob at"),
        sessions.begin() as alice,
    ):
        link_other(alice, ticket.ticket_id, third_id, "alice")
    assert links(sessions, ticket.ticket_id)[third_id][:3] == ("linked", 1, "bob")
    assert [actor for _action, actor in review_audit(sessions)] == ["bob"]


def test_an_undo_after_another_analysts_change_names_them(
    sessions: sessionmaker[TenantSession], ticket: SeededTicket
) -> None:
    runbook_a, _runbook_b = ticket.runbook_ids
    with sessions.begin() as alice:
        record = approve(alice, ticket.ticket_id, runbook_a, 0.6, "alice")
    with sessions() as session:
        fresh = review_module.link_versions(session, [ticket.ticket_id])[ticket.ticket_id]
    with sessions.begin() as bob:
        reject(bob, ticket.ticket_id, runbook_a, "not it", "bob", fresh)
    with (
        pytest.raises(ReviewConflictError, match=r"changed by bob at .* UTC\); not undoing") as caught,
        sessions.begin() as alice,
    ):
        undo(alice, record, "alice")
    assert isinstance(caught.value, ConcurrentChangeError)
    assert links(sessions, ticket.ticket_id)[runbook_a][:3] == ("rejected", 3, "bob")


def test_single_user_decisions_work_as_before(
    sessions: sessionmaker[TenantSession], ticket: SeededTicket
) -> None:
    """No seen versions (the CLI, scripts): nothing to compare, the decision is made and undone as ever."""
    runbook_a, _runbook_b = ticket.runbook_ids
    with sessions.begin() as session:
        record = approve(session, ticket.ticket_id, runbook_a, 0.6, "ana")
    with sessions.begin() as session:
        undo(session, record, "ana")
    assert links(sessions, ticket.ticket_id)[runbook_a] == ("suggested", 3, "ana", None)


def test_a_stale_runbook_status_change_or_save_names_who_saved_first(
    sessions: sessionmaker[TenantSession], ticket: SeededTicket
) -> None:
    runbook_a, _runbook_b = ticket.runbook_ids
    with sessions() as session:
        shown = get_runbook_row(session, runbook_a)
    with sessions.begin() as bob:
        save_runbook(
            bob,
            runbook_a,
            title="VPN drops every hour",
            body="# VPN\n\nNew steps.",
            tags="",
            service=None,
            actor="bob",
            expected_revision=shown.current_revision,
        )
    with (
        pytest.raises(ConcurrentChangeError, match=rf"“VPN drops every hour” was changed by bob at {WHEN}"),
        sessions.begin() as alice,
    ):
        set_status(alice, runbook_a, RunbookStatus.DRAFT, "alice", expected_version=shown.version)
    with (
        pytest.raises(StaleRevisionError, match=rf"changed by bob at {WHEN}") as caught,
        sessions.begin() as alice,
    ):
        save_runbook(
            alice,
            runbook_a,
            title="VPN",
            body="mine",
            tags="",
            service=None,
            actor="alice",
            expected_revision=shown.current_revision,
        )
    assert isinstance(caught.value, ConcurrentChangeError)
    with sessions() as session:
        now = get_runbook_row(session, runbook_a)
    assert (now.status, now.body, now.updated_by, now.version) == (
        "approved",
        "# VPN\n\nNew steps.",
        "bob",
        2,
    )


def test_the_change_token_reports_others_decisions_not_ours(
    sessions: sessionmaker[TenantSession], ticket: SeededTicket
) -> None:
    runbook_a, runbook_b = ticket.runbook_ids
    with sessions() as session:
        start = change_token(session)
    with sessions.begin() as session:
        approve(session, ticket.ticket_id, runbook_a, 0.6, "alice")
    with sessions() as session:
        ours_only = changes_since(session, start, our_login="", our_actor="alice")
    assert ours_only.token != start and not ours_only.queue_changed and ours_only.summary() == ""
    with sessions.begin() as session:
        reject(session, ticket.ticket_id, runbook_b, None, "bob")
    with sessions() as session:
        others = changes_since(session, ours_only.token, our_login="", our_actor="alice")
        unchanged = changes_since(session, others.token, our_login="", our_actor="alice")
    assert others.decisions_by == {"bob": 1} and others.queue_changed
    assert others.summary() == "Queue updated: 1 decision by bob"
    assert unchanged.token == others.token and not unchanged.queue_changed
