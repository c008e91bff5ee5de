"""Two analysts, two logins, one team database (issue 17): the second decision on a ticket is refused with
"changed by <the first login> at …" and nothing it would have written is in the store.

Each analyst opens a workspace on the same PostgreSQL database as their own login (a member of the default
tenant with the analyst role), as two desktops do. The races run in two threads that meet at a barrier
placed just before each decision writes, so both have read the same state: that is the window optimistic
concurrency has to close, and the one a test without the barrier would never hit.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import make_url, select
from sqlalchemy.orm import sessionmaker

from core.errors import ConcurrentChangeError
from core.store.db import POSTGRES_KEYRING_SERVICE, postgres_keyring_account
from core.store.models import AuditEvent, Runbook, RunbookStatus, TeamMember, TeamRole, TicketRunbookLink
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from core.workflow import review as review_module
from core.workflow.changes import change_token, changes_since
from core.workflow.review import DecisionRecord, LinkVersions, approve, link_other, load_review_queue, reject
from tests.helpers.postgres import PgServer
from tests.helpers.review_seed import SeededTicket, seed_review_ticket

pytestmark = pytest.mark.team

# Logins are the server's, not one database's: a prefix keeps these apart from other tests' logins.
ALICE, BOB = "conc_alice", "conc_bob"
WHEN = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"
BARRIER_TIMEOUT_S = 20


@dataclass
class Desk:
    login: str
    sessions: sessionmaker[TenantSession]


@dataclass
class Team:
    admin: sessionmaker[TenantSession]
    alice: Desk
    bob: Desk
    ticket: SeededTicket


@pytest.fixture
def team(team_workspace: Workspace, pg_server: PgServer, tmp_path: Path, memory_keyring) -> Iterator[Team]:
    database = team_workspace.engine.url.database or ""
    admin = team_workspace.session_factory("default")
    with admin.begin() as session:
        session.add_all(
            TeamMember(login=login, role=TeamRole.ANALYST, added_by="test") for login in (ALICE, BOB)
        )
    ticket = seed_review_ticket(admin)
    workspaces = []
    for login in (ALICE, BOB):
        password = pg_server.create_login(login)
        url = pg_server.url(database, login)
        memory_keyring.set_password(
            POSTGRES_KEYRING_SERVICE, postgres_keyring_account(make_url(url)), password
        )
        workspaces.append(Workspace.open(tmp_path / login, database_url=url))
    alice, bob = (
        Desk(login, ws.session_factory("default")) for login, ws in zip((ALICE, BOB), workspaces, strict=True)
    )
    yield Team(admin, alice, bob, ticket)
    for ws in workspaces:
        ws.close()


def seen_in_queue(desk: Desk, ticket_id: int) -> LinkVersions:
    with desk.sessions() as session:
        row = next(row for row in load_review_queue(session) if row.ticket_id == ticket_id)
    assert row.seen is not None
    return row.seen


def links(team: Team) -> dict[int, tuple[str, int, str]]:
    with team.admin() as session:
        rows = session.scalars(
            select(TicketRunbookLink).where(TicketRunbookLink.ticket_id == team.ticket.ticket_id)
        )
        return {link.runbook_id: (link.decision.value, link.version, link.updated_by) for link in rows}


def decision_logins(team: Team) -> list[tuple[str, str]]:
    with team.admin() as session:
        rows = session.execute(
            select(AuditEvent.action, AuditEvent.db_login)
            .where(AuditEvent.action.like("review.%"))
            .order_by(AuditEvent.id)
        ).all()
        return [(action, login) for action, login in rows]


def test_the_second_analyst_is_told_who_decided_first_and_nothing_is_overwritten(team: Team) -> None:
    runbook_a, _runbook_b = team.ticket.runbook_ids
    alice_saw = seen_in_queue(team.alice, team.ticket.ticket_id)
    bob_saw = seen_in_queue(team.bob, team.ticket.ticket_id)
    assert alice_saw == bob_saw

    with team.alice.sessions.begin() as session:
        approve(session, team.ticket.ticket_id, runbook_a, 0.6, "Alice A.", alice_saw)
    with (
        pytest.raises(
            ConcurrentChangeError, match=rf"^INC0017001 was changed by {ALICE} at {WHEN}; your decision"
        ),
        team.bob.sessions.begin() as session,
    ):
        reject(session, team.ticket.ticket_id, runbook_a, "not this one", "Bob B.", bob_saw)

    assert links(team)[runbook_a] == ("linked", 2, ALICE)
    assert decision_logins(team) == [("review.approve", ALICE)]


def _race(
    team: Team, decide: Callable[[TenantSession, Desk], DecisionRecord], monkeypatch: pytest.MonkeyPatch
) -> dict[str, DecisionRecord | ConcurrentChangeError]:
    """Both analysts decide at once, meeting just before their first write (both have read the same)."""
    barrier = threading.Barrier(2, timeout=BARRIER_TIMEOUT_S)
    real_editor = review_module.editor
    met: set[int] = set()

    def meet_then_write(session: TenantSession, actor: str) -> str:
        if threading.get_ident() not in met:  # the first write of each decision only
            met.add(threading.get_ident())
            barrier.wait()
        return real_editor(session, actor)

    monkeypatch.setattr(review_module, "editor", meet_then_write)
    outcomes: dict[str, DecisionRecord | ConcurrentChangeError] = {}

    def run(desk: Desk) -> None:
        try:
            with desk.sessions.begin() as session:
                outcomes[desk.login] = decide(session, desk)
        except ConcurrentChangeError as exc:
            outcomes[desk.login] = exc

    threads = [threading.Thread(target=run, args=(desk,)) for desk in (team.alice, team.bob)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BARRIER_TIMEOUT_S * 2)
    assert set(outcomes) == {ALICE, BOB}, outcomes
    return outcomes


def _winner_and_loser(outcomes: dict[str, DecisionRecord | ConcurrentChangeError]) -> tuple[str, str, str]:
    errors = {login: str(o) for login, o in outcomes.items() if isinstance(o, ConcurrentChangeError)}
    assert len(errors) == 1, outcomes
    ((loser, message),) = errors.items()
    winner = ALICE if loser == BOB else BOB
    return winner, loser, message


def test_two_analysts_inserting_the_same_new_link_at_once_one_wins_the_other_is_told(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither link existed: both INSERT it; the unique (ticket, runbook) constraint refuses the second."""
    with team.admin.begin() as session:
        third = Runbook(title="Reinstall the VPN client", status=RunbookStatus.APPROVED, content_hash="c")
        session.add(third)
        session.flush()
        third_id = third.id
    seen = seen_in_queue(team.alice, team.ticket.ticket_id)

    outcomes = _race(
        team,
        lambda session, desk: link_other(session, team.ticket.ticket_id, third_id, desk.login, seen),
        monkeypatch,
    )

    winner, _loser, message = _winner_and_loser(outcomes)
    # The database refused the second INSERT (the unique constraint), and the app named who got there first.
    assert re.fullmatch(rf"INC0017001 was changed by {winner} at {WHEN}; nothing was saved", message), message
    assert links(team)[third_id] == ("linked", 1, winner)
    assert decision_logins(team) == [("review.link_other", winner)]


def test_two_analysts_deciding_different_runbooks_of_one_ticket_at_once_one_is_refused(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No row in common, so no version check fires: the recheck after the audit-chain lock does."""
    runbook_a, runbook_b = team.ticket.runbook_ids
    seen = seen_in_queue(team.alice, team.ticket.ticket_id)
    chosen = {ALICE: runbook_a, BOB: runbook_b}

    outcomes = _race(
        team,
        lambda session, desk: approve(
            session, team.ticket.ticket_id, chosen[desk.login], 0.6, desk.login, seen
        ),
        monkeypatch,
    )

    winner, loser, message = _winner_and_loser(outcomes)
    assert re.fullmatch(
        rf"INC0017001 was changed by {winner} at {WHEN}; your decision was not saved", message
    )
    now = links(team)
    assert now[chosen[winner]] == ("linked", 2, winner)
    assert now[chosen[loser]] == ("suggested", 1, "runbook-desk")
    assert decision_logins(team) == [("review.approve", winner)]


def test_the_change_token_names_the_other_login(team: Team) -> None:
    runbook_a, _runbook_b = team.ticket.runbook_ids
    with team.bob.sessions() as session:
        start = change_token(session)
    with team.alice.sessions.begin() as session:
        approve(session, team.ticket.ticket_id, runbook_a, 0.6, "Alice A.")
    with team.bob.sessions() as session:
        seen_by_bob = changes_since(session, start, our_login=BOB, our_actor="Bob B.")
    with team.alice.sessions() as session:
        seen_by_alice = changes_since(session, start, our_login=ALICE, our_actor="Alice A.")
    assert seen_by_bob.summary() == f"Queue updated: 1 decision by {ALICE}"
    assert not seen_by_alice.queue_changed  # her own decision
