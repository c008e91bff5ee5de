"""Past decisions as evidence (issue 12, item 2): real SQLite, model and FAISS, a few demo runbooks.

The tickets are written so that INC1 and INC2 are the same problem in other words (their cosine is well
above the vote's minimum similarity) and INC4 is unrelated; decisions go through the review workflow's own
functions (audited), outcomes through ``core.workflow.outcomes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.importing import import_runbooks, import_tickets
from core.matching.embedding import SentenceTransformerEmbedder
from core.matching.engine import MatchingEngine, RunbookMatch, open_engine
from core.matching.explain import explain_match
from core.matching.text import ticket_text
from core.matching.votes import (
    DecidedTickets,
    EvidenceKind,
    PastDecision,
    VoteSettings,
    vote_scores,
)
from core.settings import save_settings
from core.store.models import (
    LinkDecision,
    OutcomeKind,
    Runbook,
    RunbookStatus,
    Ticket,
    TicketRunbookLink,
)
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from core.workflow.outcomes import record_outcome
from core.workflow.review import approve, reject
from tests.conftest import DEMO_DIR

RUNBOOKS = (
    "outlook-profile-corrupt-repair.md",
    "printer-offline-print-spooler.md",
    "linux-server-disk-full.md",
    "vpn-anyconnect-cannot-connect.md",
)
TICKETS = (
    "number,short_description,description\n"
    "INC1,Outlook will not open,Outlook hangs on 'Loading profile' every morning and never opens\n"
    "INC2,outlook stuck loading profile,Outlook does not start: stuck at loading profile since today\n"
    "INC3,printer offline,jobs stuck in the print queue on the 3rd floor printer\n"
    "INC4,disk full on lnx-app-07,/var is 99% full on lnx-app-07 and the app stopped\n"
)
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@dataclass
class Desk:
    sessions: sessionmaker[TenantSession]
    engine: MatchingEngine
    ticket: dict[str, int]
    runbook: dict[str, int]

    def match(self, number: str, runbook_slug: str, *, exclude_self: bool = True) -> RunbookMatch:
        """The pair's match as a search of the ticket's text returns it (every runbook kept)."""
        with self.sessions() as session:
            text = ticket_text(session.get_one(Ticket, self.ticket[number]))
        vector = self.engine.ticket_index.vectors([self.ticket[number]])
        exclude = [self.ticket[number]] if exclude_self else None
        matches = self.engine.search_many([text], vector, 10, exclude_ticket_ids=exclude)[0]
        return next(m for m in matches if m.runbook_id == self.runbook[runbook_slug])


@pytest.fixture
def desk(workspace: Workspace, embedder: SentenceTransformerEmbedder, tmp_path: Path) -> Desk:
    sessions = workspace.session_factory()
    folder = tmp_path / "runbooks"
    folder.mkdir()
    for name in RUNBOOKS:
        (folder / name).write_text(
            (DEMO_DIR / "runbooks" / name).read_text(encoding="utf-8"), encoding="utf-8"
        )
    import_runbooks(sessions, folder)
    (tmp_path / "tickets.csv").write_text(TICKETS, encoding="utf-8")
    import_tickets(sessions, tmp_path / "tickets.csv")
    engine = open_engine(workspace, "default", embedder)
    engine.refresh()
    engine.clock = lambda: NOW
    with sessions() as session:
        tickets = dict(session.execute(select(Ticket.external_id, Ticket.id)).all())
        runbooks = {
            ref.removesuffix(".md"): rid
            for rid, ref in session.execute(select(Runbook.id, Runbook.external_ref))
            if ref is not None
        }
    return Desk(sessions, engine, tickets, runbooks)


def approve_as_analyst(desk: Desk, number: str, slug: str) -> None:
    with desk.sessions.begin() as session:
        approve(session, desk.ticket[number], desk.runbook[slug], None, "ana")


def test_an_analysts_approval_votes_for_its_runbook_and_is_named(desk: Desk) -> None:
    before = desk.match("INC2", "outlook-profile-corrupt-repair")
    assert (before.vote_score, before.evidence_for) == (0.0, ())
    approve_as_analyst(desk, "INC1", "outlook-profile-corrupt-repair")

    after = desk.match("INC2", "outlook-profile-corrupt-repair")
    assert 0.2 < after.vote_score <= 0.5  # one similar ticket against a prior worth one duplicate
    assert after.evidence_for == ("INC1",)
    assert after.evidence[0].kind is EvidenceKind.APPROVED
    assert after.confidence > before.confidence
    assert (after.dense_score, after.coverage_score) == (before.dense_score, before.coverage_score)
    # The unrelated disk ticket's runbook gets no vote from it.
    assert desk.match("INC2", "linux-server-disk-full").vote_score == 0.0
    assert any(s == "An analyst linked 1 similar ticket to this runbook: INC1." for s in explain_match(after))


def test_a_ticket_never_votes_for_itself(desk: Desk) -> None:
    approve_as_analyst(desk, "INC1", "outlook-profile-corrupt-repair")
    assert desk.match("INC1", "outlook-profile-corrupt-repair").vote_score == 0.0
    # Without saying which ticket the text is, its own approval counts: what exclude_ticket_ids prevents.
    assert desk.match("INC1", "outlook-profile-corrupt-repair", exclude_self=False).vote_score > 0.3
    scored = desk.engine.score_pair(desk.ticket["INC1"], desk.runbook["outlook-profile-corrupt-repair"])
    assert scored is not None and scored.vote_score == 0.0


def test_a_rejection_votes_against(desk: Desk) -> None:
    with desk.sessions.begin() as session:
        reject(session, desk.ticket["INC1"], desk.runbook["outlook-profile-corrupt-repair"], "wrong", "ana")
    match = desk.match("INC2", "outlook-profile-corrupt-repair")
    assert match.vote_score < -0.2
    assert match.evidence_against == ("INC1",)
    assert any(s == "An analyst rejected it for 1 similar ticket: INC1." for s in explain_match(match))


def test_outcomes_scale_the_vote(desk: Desk) -> None:
    approve_as_analyst(desk, "INC1", "outlook-profile-corrupt-repair")
    approved = desk.match("INC2", "outlook-profile-corrupt-repair").vote_score
    votes = {}
    for outcome in (OutcomeKind.RESOLVED, OutcomeKind.PARTLY, OutcomeKind.FAILED):
        with desk.sessions.begin() as session:
            record_outcome(session, desk.ticket["INC1"], outcome, "ana")
        votes[outcome] = desk.match("INC2", "outlook-profile-corrupt-repair")
    assert votes[OutcomeKind.RESOLVED].vote_score == pytest.approx(approved)
    assert votes[OutcomeKind.PARTLY].vote_score == pytest.approx(approved / 2)
    assert votes[OutcomeKind.FAILED].vote_score == pytest.approx(-approved / 2)
    assert votes[OutcomeKind.FAILED].evidence_against == ("INC1",)
    assert "1 similar ticket was resolved with this runbook: INC1." in explain_match(
        votes[OutcomeKind.RESOLVED]
    )
    assert "It did not help 1 similar ticket: INC1." in explain_match(votes[OutcomeKind.FAILED])


def test_an_automatic_link_votes_once_it_stood_past_its_spot_check(desk: Desk) -> None:
    with desk.sessions.begin() as session:
        session.add(
            TicketRunbookLink(
                tenant_id=session.tenant_id,
                ticket_id=desk.ticket["INC1"],
                runbook_id=desk.runbook["outlook-profile-corrupt-repair"],
                confidence_score=0.8,
                linked_automatically=True,
                decision=LinkDecision.LINKED,
                linked_at=NOW - timedelta(days=3),
            )
        )
    assert desk.match("INC2", "outlook-profile-corrupt-repair").vote_score == 0.0  # still to spot-check
    desk.engine.clock = lambda: NOW + timedelta(days=5)  # 8 days after the link
    standing = desk.match("INC2", "outlook-profile-corrupt-repair")
    assert standing.vote_score > 0
    assert standing.evidence[0].kind is EvidenceKind.STANDING
    # It counts half an analyst's approval (the default standing_weight).
    approve_as_analyst(desk, "INC1", "outlook-profile-corrupt-repair")
    with desk.sessions.begin() as session:  # approved as old as the link was, so only the kind differs
        session.scalars(select(TicketRunbookLink)).one().reviewed_at = NOW - timedelta(days=3)
    assert desk.match("INC2", "outlook-profile-corrupt-repair").vote_score == pytest.approx(
        2 * standing.vote_score
    )


def test_old_decisions_weigh_less(desk: Desk) -> None:
    approve_as_analyst(desk, "INC1", "outlook-profile-corrupt-repair")
    with desk.sessions.begin() as session:
        session.scalars(select(TicketRunbookLink)).one().reviewed_at = NOW
    fresh = desk.match("INC2", "outlook-profile-corrupt-repair").vote_score
    desk.engine.clock = lambda: NOW + timedelta(days=VoteSettings().half_life_days)
    assert desk.match("INC2", "outlook-profile-corrupt-repair").vote_score == pytest.approx(fresh / 2)
    with desk.sessions.begin() as session:
        save_settings(session, VoteSettings(half_life_days=2 * VoteSettings().half_life_days))
    assert desk.match("INC2", "outlook-profile-corrupt-repair").vote_score == pytest.approx(fresh / 2**0.5)


def test_a_decided_ticket_below_the_minimum_similarity_does_not_vote(desk: Desk) -> None:
    approve_as_analyst(
        desk, "INC4", "outlook-profile-corrupt-repair"
    )  # an odd decision on an unrelated ticket
    assert desk.match("INC2", "outlook-profile-corrupt-repair").vote_score == 0.0


def test_a_voted_runbook_is_a_candidate_even_when_the_text_does_not_find_it(desk: Desk) -> None:
    # INC3 (printer) is decided "VPN" by an analyst; INC3's near twin then sees the VPN runbook with a vote.
    approve_as_analyst(desk, "INC3", "vpn-anyconnect-cannot-connect")
    vector = desk.engine.embedder.encode(["printer offline, print jobs stuck in the queue on the 3rd floor"])
    matches = desk.engine.search_many(["printer offline, print jobs stuck in the queue"], vector, 10)[0]
    vpn = next(m for m in matches if m.runbook_id == desk.runbook["vpn-anyconnect-cannot-connect"])
    assert vpn.vote_score > 0 and vpn.evidence_for == ("INC3",)


def test_score_pair_scores_any_approved_runbook_and_refuses_the_rest(desk: Desk, tmp_path: Path) -> None:
    pair = desk.engine.score_pair(desk.ticket["INC3"], desk.runbook["linux-server-disk-full"])
    assert pair is not None and pair.runbook_id == desk.runbook["linux-server-disk-full"]
    assert 0.0 <= pair.confidence <= 1.0 and pair.best_section is not None
    same = desk.match("INC3", "linux-server-disk-full")
    assert (pair.dense_score, pair.coverage_score, pair.confidence) == pytest.approx(
        (same.dense_score, same.coverage_score, same.confidence)
    )
    assert np.allclose(
        desk.engine.features_of([pair]), [[pair.dense_score, pair.coverage_score, pair.title_coverage, 0.0]]
    )
    with desk.sessions.begin() as session:
        session.get_one(Runbook, desk.runbook["vpn-anyconnect-cannot-connect"]).status = RunbookStatus.DRAFT
    assert desk.engine.score_pair(desk.ticket["INC3"], desk.runbook["vpn-anyconnect-cannot-connect"]) is None
    (tmp_path / "late.csv").write_text("number,short_description\nINC9,printer jammed\n", encoding="utf-8")
    import_tickets(desk.sessions, tmp_path / "late.csv")  # stored, not indexed yet
    with desk.sessions() as session:
        late = session.scalars(select(Ticket.id).where(Ticket.external_id == "INC9")).one()
    assert desk.engine.score_pair(late, desk.runbook["printer-offline-print-spooler"]) is None


# --- vote_scores alone, on hand-made vectors --------------------------------------------------------------


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def decision(ticket_id: int, runbook_id: int, kind: EvidenceKind = EvidenceKind.APPROVED) -> PastDecision:
    return PastDecision(ticket_id, f"T{ticket_id}", runbook_id, kind, None, NOW)


def test_votes_are_a_share_of_the_similar_decided_tickets_bounded_by_the_prior() -> None:
    vectors = {1: unit(1, 0, 0), 2: unit(1, 0, 0), 3: unit(1, 0, 0), 4: unit(0, 1, 0)}
    decided = DecidedTickets.with_vectors(
        [decision(1, 10), decision(2, 10), decision(3, 20), decision(4, 10, EvidenceKind.REJECTED)], vectors
    )
    votes = vote_scores(unit(1, 0, 0), decided, VoteSettings(), NOW)[0]
    assert votes[10].score == pytest.approx(2 / 4)  # two duplicates of three, plus the prior of one
    assert votes[20].score == pytest.approx(1 / 4)
    assert set(votes[10].evidence_for) == {"T1", "T2"} and votes[10].evidence_against == ()  # T4 is far
    many = DecidedTickets.with_vectors([decision(i, 10) for i in range(1, 4)] * 1, vectors)
    assert vote_scores(unit(1, 0, 0), many, VoteSettings(prior=1e-9), NOW)[0][10].score == pytest.approx(1.0)
    # A batch of queries gets exactly what each query gets alone.
    batch = vote_scores(np.vstack([unit(0, 1, 0), unit(1, 0, 0)]), decided, VoteSettings(), NOW, [None, 1])
    assert batch[1][10].score == pytest.approx(1 / 3)  # T1 excluded: T2 for 10, T3 for 20, prior
    assert vote_scores(unit(0, 1, 0), decided, VoteSettings(), NOW)[0] == batch[0]


def test_vote_settings_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="half-life"):
        VoteSettings(half_life_days=0)
    with pytest.raises(ValueError, match="minimum similarity"):
        VoteSettings(min_similarity=1.0)
