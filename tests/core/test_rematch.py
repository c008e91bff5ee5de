"""Re-matching old tickets when a runbook changes (core/matching/rematch.py; issue 12, item 1).

Real SQLite, the real model and FAISS: the analysed demo workspace. The scenario of the issue is the first
test: a runbook drafted for the Jenkins gap and approved must become those tickets' best match and take them
out of the gap report, without a full re-analysis and without embedding a ticket.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

import core.matching.analysis as analysis_module
from core.analytics.gaps import GapReport, analyse_gaps, engine_ticket_vectors
from core.errors import OperationCancelledError
from core.importing import import_runbooks
from core.matching.analysis import analyze_pending
from core.matching.embedding import SentenceTransformerEmbedder
from core.matching.engine import MatchingEngine, open_engine
from core.matching.rematch import count_requests, find_candidates, rematch_pending
from core.matching.text import ticket_text
from core.queries import latest_analysis
from core.store.models import (
    Analysis,
    AuditEvent,
    LinkDecision,
    RematchRequest,
    RunbookStatus,
    Ticket,
    TicketRunbookLink,
)
from core.store.repository import SYSTEM_ACTOR
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from core.workflow.review import approve, draft_from_ticket, record_draft, reject
from core.workflow.runbooks import create_runbook, save_runbook, set_status
from desktop.cli.common import EXIT_OK
from desktop.cli.main import main as cli_main
from tests.conftest import DEMO_DIR

ACTOR = "ana.analyst"
JENKINS_GAP = "jenkins-agents"
DRAFTED_FROM = "INC0010300"  # the ticket the analyst pressed D on
JENKINS_RUNBOOK = """\
## Symptoms

Builds wait in the Jenkins queue ("Waiting for next available executor"); the monitoring alert "Jenkins
agent jenkins-agent-07 offline"; pipelines fail with hudson.remoting.ChannelClosedException.

## Resolution steps

1. Manage Jenkins > Nodes: find the offline agents and the reason given (disconnected, Java version mismatch).
2. On the agent host restart the service: `systemctl restart jenkins-agent`.
3. Upgrade the agent JDK to the controller's version (17) and reconnect the node.

## Verification

The node is online and the build queue drains.
"""


# --- helpers -----------------------------------------------------------------------------------------------


@pytest.fixture
def engine(analysed_demo: Workspace, embedder: SentenceTransformerEmbedder) -> MatchingEngine:
    return open_engine(analysed_demo, "default", embedder)


@pytest.fixture
def demo(analysed_demo: Workspace) -> sessionmaker[TenantSession]:
    return analysed_demo.session_factory()


def labelled_gap(gap: str) -> set[str]:
    with (DEMO_DIR / "labels.csv").open(encoding="utf-8") as handle:
        return {row["number"] for row in csv.DictReader(handle) if row["gap"] == gap}


def ids_of(sessions: sessionmaker[TenantSession], external_ids: set[str]) -> dict[str, int]:
    with sessions() as session:
        rows = session.execute(
            select(Ticket.external_id, Ticket.id).where(Ticket.external_id.in_(external_ids))
        )
        return dict(rows.all())


def latest(sessions: sessionmaker[TenantSession]) -> dict[int, tuple[int, int | None, float]]:
    """Per ticket: (latest analysis id, its best runbook, its confidence)."""
    with sessions() as session:
        newest = latest_analysis()
        rows = session.execute(
            select(Analysis.ticket_id, Analysis.id, Analysis.best_runbook_id, Analysis.confidence).join(
                newest, newest.c.analysis_id == Analysis.id
            )
        )
        return {
            ticket_id: (analysis_id, best, confidence) for ticket_id, analysis_id, best, confidence in rows
        }


def links_of(sessions: sessionmaker[TenantSession], ticket_id: int) -> dict[int, tuple[object, ...]]:
    with sessions() as session:
        return {
            link.runbook_id: (
                link.id,
                LinkDecision(link.decision),
                link.linked_automatically,
                link.reviewed_by,
                link.reviewed_at,
                link.reason,
            )
            for link in session.scalars(
                select(TicketRunbookLink).where(TicketRunbookLink.ticket_id == ticket_id)
            )
        }


def requests(sessions: sessionmaker[TenantSession]) -> int:
    with sessions() as session:
        return count_requests(session)


def approve_new_runbook(sessions: sessionmaker[TenantSession], title: str, body: str) -> int:
    """Written as a draft, submitted and approved, one transaction each: as the editor and library do."""
    with sessions.begin() as session:
        runbook_id = create_runbook(session, title=title, body=body, tags="", service=None, actor=ACTOR)
    with sessions.begin() as session:
        set_status(session, runbook_id, RunbookStatus.IN_REVIEW, ACTOR)
    with sessions.begin() as session:
        set_status(session, runbook_id, RunbookStatus.APPROVED, ACTOR)
    return runbook_id


def record_encodes(engine: MatchingEngine) -> list[str]:
    """Every text the engine asks its embedder for from now on (cache hits included)."""
    asked: list[str] = []
    encode = engine.embedder.encode

    def recording(texts, batch_size: int = 64) -> np.ndarray:
        asked.extend(texts)
        return encode(texts, batch_size)

    engine.embedder.encode = recording  # type: ignore[method-assign]
    return asked


def ticket_texts(sessions: sessionmaker[TenantSession]) -> set[str]:
    with sessions() as session:
        return {ticket_text(ticket) for ticket in session.scalars(select(Ticket))}


def gaps(workspace: Workspace, engine: MatchingEngine) -> GapReport:
    sessions = workspace.session_factory()
    return analyse_gaps(sessions, engine_ticket_vectors(engine, sessions), engine.embedder.model_id)


def uncovered_in_clusters(report: GapReport, ticket_ids: set[int]) -> int:
    return sum(len(ticket_ids & set(cluster.member_ticket_ids)) for cluster in report.clusters)


# --- the scenario ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_runbook_approved_for_a_gap_becomes_its_tickets_best_match_and_closes_the_gap(
    analysed_demo: Workspace, engine: MatchingEngine, demo: sessionmaker[TenantSession]
) -> None:
    jenkins = ids_of(demo, labelled_gap(JENKINS_GAP))
    drafted = jenkins.pop(DRAFTED_FROM)
    gap_tickets = set(jenkins.values())
    assert len(gap_tickets) >= 8
    before = gaps(analysed_demo, engine)
    assert uncovered_in_clusters(before, gap_tickets) >= 8  # the Gaps page lists them

    with demo.begin() as session:  # D on INC0010300: a draft from the ticket and its similar tickets
        draft = draft_from_ticket(session, engine, drafted)
        runbook_id = create_runbook(
            session,
            title=draft.title,
            body=draft.to_markdown(),
            tags=draft.tags,
            service=draft.service,
            actor=ACTOR,
        )
        record_draft(session, drafted, runbook_id, ACTOR)
    with demo.begin() as session:
        set_status(session, runbook_id, RunbookStatus.IN_REVIEW, ACTOR)
    assert requests(demo) == 0  # nothing matching sees has changed yet
    with demo.begin() as session:
        set_status(session, runbook_id, RunbookStatus.APPROVED, ACTOR)
    assert requests(demo) == 1
    stored_before = latest(demo)

    asked = record_encodes(engine)
    report = rematch_pending(engine, demo)

    assert not set(asked) & ticket_texts(demo), "a ticket was embedded again"
    assert asked, "the new runbook's sections are embedded (that is all)"
    stored_after = latest(demo)
    assert {t for t in gap_tickets if stored_after[t][1] == runbook_id} == gap_tickets
    assert stored_after[drafted] == stored_before[drafted]  # the analyst linked it: not re-analysed
    reanalysed = {t for t in stored_after if stored_after[t][0] != stored_before[t][0]}
    assert len(reanalysed) == report.reanalysed == report.candidates
    assert report.candidates < len(stored_after) / 2  # the tickets near the runbook, not the store
    assert report.left_gap > 0 and report.best_changed >= len(gap_tickets)
    assert requests(demo) == 0
    after = gaps(analysed_demo, engine)
    assert uncovered_in_clusters(after, gap_tickets) == 0
    # One left with the analyst's link to the draft, the others with the re-match.
    assert after.uncovered == before.uncovered - 1 - report.left_gap + report.entered_gap
    assert rematch_pending(engine, demo).requests == 0  # drained: nothing left to do


# --- decisions --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_an_analysts_reviewed_decisions_survive_every_rematch(
    engine: MatchingEngine, demo: sessionmaker[TenantSession]
) -> None:
    jenkins = ids_of(demo, labelled_gap(JENKINS_GAP))
    approved_ticket, rejected_ticket, *_ = sorted(jenkins.values())
    stored = latest(demo)
    with demo.begin() as session:  # an approval of one ticket's best match, a rejection of another's
        approve(session, approved_ticket, stored[approved_ticket][1], None, ACTOR)
        reject(session, rejected_ticket, stored[rejected_ticket][1], "not a printer", ACTOR)
    approved_links = links_of(demo, approved_ticket)
    rejected_before = links_of(demo, rejected_ticket)[stored[rejected_ticket][1]]

    runbook_id = approve_new_runbook(
        demo, "Jenkins agents offline, builds stuck in the queue", JENKINS_RUNBOOK
    )
    rematch_pending(engine, demo)

    after = latest(demo)
    assert after[approved_ticket] == stored[approved_ticket]  # linked by an analyst: never re-matched
    assert links_of(demo, approved_ticket) == approved_links
    assert after[rejected_ticket][1] == runbook_id  # re-matched: the new runbook fits it
    rejected_links = links_of(demo, rejected_ticket)
    assert rejected_links[stored[rejected_ticket][1]] == rejected_before  # the rejection stands
    assert rejected_links[runbook_id][3] is None  # the machine's link, unreviewed

    # The analyst rejects the new runbook for that ticket too; an edit of the runbook re-matches the
    # tickets again, and that rejection stands as well.
    with demo.begin() as session:
        reject(session, rejected_ticket, runbook_id, "agents were fine", ACTOR)
    rejection = links_of(demo, rejected_ticket)[runbook_id]
    machine_rows = machine_audit_rows(demo, rejection[0])
    analysed = latest(demo)[rejected_ticket][0]
    with demo.begin() as session:
        save_runbook(
            session,
            runbook_id,
            title="Jenkins agents offline, builds stuck in the queue",
            body=JENKINS_RUNBOOK + "\n4. Cancel stale queued builds once the agents are back.\n",
            tags="jenkins",
            service=None,
            actor=ACTOR,
            expected_revision=1,
        )
    assert requests(demo) == 1
    rematch_pending(engine, demo)
    assert latest(demo)[rejected_ticket][0] != analysed  # re-matched: its best match was edited
    assert links_of(demo, rejected_ticket)[runbook_id] == rejection
    assert machine_audit_rows(demo, rejection[0]) == machine_rows  # the machine did not touch it


def machine_audit_rows(sessions: sessionmaker[TenantSession], link_id: int) -> int:
    with sessions() as session:
        query = select(func.count()).where(AuditEvent.actor == SYSTEM_ACTOR, AuditEvent.entity_id == link_id)
        return session.scalar(query.select_from(AuditEvent)) or 0


def find_candidates_now(
    engine: MatchingEngine, sessions: sessionmaker[TenantSession], runbook_id: int
) -> list[int]:
    with sessions() as session:
        return find_candidates(engine, session, [runbook_id])


@pytest.mark.slow
def test_retiring_a_runbook_rematches_its_tickets_and_takes_its_automatic_links_back(
    engine: MatchingEngine, demo: sessionmaker[TenantSession]
) -> None:
    with demo() as session:
        runbook_id, linked = session.execute(
            select(TicketRunbookLink.runbook_id, func.count())
            .where(
                TicketRunbookLink.decision == LinkDecision.LINKED,
                TicketRunbookLink.linked_automatically.is_(True),
                TicketRunbookLink.reviewed_at.is_(None),
            )
            .group_by(TicketRunbookLink.runbook_id)
            .order_by(func.count().desc())
        ).first()
        link_ids = set(
            session.scalars(
                select(TicketRunbookLink.id).where(
                    TicketRunbookLink.runbook_id == runbook_id, TicketRunbookLink.reviewed_at.is_(None)
                )
            )
        )
    assert linked >= 3
    with demo.begin() as session:
        set_status(session, runbook_id, RunbookStatus.RETIRED, ACTOR)

    report = rematch_pending(engine, demo)

    assert report.unlinked >= 1 and report.reanalysed >= linked
    assert all(best != runbook_id for _, best, _ in latest(demo).values())
    with demo() as session:
        assert not session.scalars(select(TicketRunbookLink).where(TicketRunbookLink.id.in_(link_ids))).all()
        unlinked = session.scalars(
            select(AuditEvent.entity_id).where(
                AuditEvent.action == "analysis.auto_unlink", AuditEvent.entity_id.in_(link_ids)
            )
        ).all()
    assert len(unlinked) == linked  # each automatic link taken back says so in the audit trail


# --- interruptions ----------------------------------------------------------------------------------------


class StopAfterFirstBatch:
    """Asks to stop once a batch of re-matched tickets has been reported."""

    def __init__(self) -> None:
        self.batches = 0

    def report(self, done: int, total: int | None = None, message: str = "") -> None:
        if message.startswith("re-matched"):
            self.batches += 1

    @property
    def cancelled(self) -> bool:
        return self.batches >= 1


@pytest.mark.slow
def test_requests_survive_a_cancel_and_a_crash_and_are_retried(
    engine: MatchingEngine, demo: sessionmaker[TenantSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    runbook_id = approve_new_runbook(
        demo, "Jenkins agents offline, builds stuck in the queue", JENKINS_RUNBOOK
    )
    before = latest(demo)

    with pytest.raises(OperationCancelledError):
        rematch_pending(engine, demo, StopAfterFirstBatch(), batch_size=2)
    assert requests(demo) == 1
    first_batch = {t for t, state in latest(demo).items() if state[0] != before[t][0]}
    assert len(first_batch) == 2  # committed before the cancel

    reanalyse = analysis_module.reanalyse_indexed
    candidates = find_candidates_now(engine, demo, runbook_id)
    batches: list[list[int]] = []

    def killed_in_the_last_batch(engine, session, ticket_ids, thresholds):
        batches.append(list(ticket_ids))
        if candidates[-1] in ticket_ids:  # the transaction that would delete the requests
            raise RuntimeError("killed")
        return reanalyse(engine, session, ticket_ids, thresholds)

    monkeypatch.setattr(analysis_module, "reanalyse_indexed", killed_in_the_last_batch)
    with pytest.raises(RuntimeError, match="killed"):
        rematch_pending(engine, demo, batch_size=4)
    assert requests(demo) == 1
    assert [t for batch in batches for t in batch] == candidates  # every batch ran; the last one failed
    monkeypatch.setattr(analysis_module, "reanalyse_indexed", reanalyse)

    report = rematch_pending(engine, demo)
    assert requests(demo) == 0
    assert report.reanalysed == report.candidates == len(candidates) > len(first_batch)


# --- analyze, analyze --all and the CLI -------------------------------------------------------------------


@pytest.mark.slow
def test_analyze_all_answers_the_requests(engine: MatchingEngine, demo: sessionmaker[TenantSession]) -> None:
    approve_new_runbook(demo, "Jenkins agents offline, builds stuck in the queue", JENKINS_RUNBOOK)
    report = analyze_pending(engine, demo, reanalyse_all=True)
    assert report.rematch is None and report.analysed == len(latest(demo))
    assert requests(demo) == 0


@pytest.fixture
def closed_demo(analysed_demo_template: Path, tmp_path: Path) -> Path:
    """A copy of the analysed demo that no one holds open, for the CLI to open."""
    root = tmp_path / "cli-demo"
    shutil.copytree(analysed_demo_template, root, ignore=shutil.ignore_patterns("*.lock"))
    return root


@pytest.mark.slow
def test_cli_analyze_after_import_runbooks_rematches_exactly_the_tickets_near_them(
    closed_demo: Path,
    tmp_path: Path,
    embedder: SentenceTransformerEmbedder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "jenkins-agents.md").write_text(
        "---\ntitle: Jenkins agents offline, builds stuck in the queue\ntags: [jenkins]\n---\n"
        + JENKINS_RUNBOOK,
        encoding="utf-8",
    )
    assert cli_main(["import", "runbooks", str(folder), "--workspace", str(closed_demo)]) == EXIT_OK
    workspace = Workspace.open(closed_demo)
    try:
        sessions = workspace.session_factory()
        with sessions() as session:
            (runbook_id,) = session.scalars(select(RematchRequest.runbook_id)).all()
        engine = open_engine(workspace, "default", embedder)
        engine.refresh()
        expected = set(find_candidates_now(engine, sessions, runbook_id))
        before = latest(sessions)
    finally:
        workspace.close()
    capsys.readouterr()

    assert cli_main(["analyze", "--workspace", str(closed_demo), "--json"]) == EXIT_OK
    printed = json.loads(capsys.readouterr().out)
    assert printed["analysed"] == 0  # no ticket was stale
    assert printed["rematch"]["candidates"] == printed["rematch"]["reanalysed"] == len(expected) > 0

    workspace = Workspace.open(closed_demo)
    try:
        sessions = workspace.session_factory()
        after = latest(sessions)
        assert {t for t in after if after[t][0] != before[t][0]} == expected
        assert requests(sessions) == 0
    finally:
        workspace.close()
    assert cli_main(["analyze", "--workspace", str(closed_demo)]) == EXIT_OK
    assert "no runbook changed since the last analysis" in capsys.readouterr().out


# --- where requests come from -----------------------------------------------------------------------------


def request_reasons(sessions: sessionmaker[TenantSession]) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(RematchRequest.reason).order_by(RematchRequest.id)))


def test_approving_editing_and_retiring_write_a_request_in_the_same_transaction(
    sessions: sessionmaker[TenantSession],
) -> None:
    with sessions.begin() as session:
        runbook_id = create_runbook(
            session, title="Disk full", body="1. df -h", tags="", service=None, actor=ACTOR
        )
    with sessions.begin() as session:
        save_runbook(
            session, runbook_id, title="Disk full", body="1. df -h\n2. du", tags="", service=None,
            actor=ACTOR, expected_revision=1,
        )  # fmt: skip
        set_status(session, runbook_id, RunbookStatus.IN_REVIEW, ACTOR)
    assert request_reasons(sessions) == []  # drafts and reviews are not matched: nothing to re-match

    def approve_then_fail() -> None:
        with sessions.begin() as session:
            set_status(session, runbook_id, RunbookStatus.APPROVED, ACTOR)
            raise RuntimeError("the approval failed later in its transaction")

    with pytest.raises(RuntimeError):
        approve_then_fail()
    assert request_reasons(sessions) == []  # rolled back with the approval
    with sessions.begin() as session:
        set_status(session, runbook_id, RunbookStatus.APPROVED, ACTOR)
    with sessions.begin() as session:
        save_runbook(
            session, runbook_id, title="Disk full", body="1. df -h\n2. du -sh *", tags="", service=None,
            actor=ACTOR, expected_revision=2,
        )  # fmt: skip
    with sessions.begin() as session:  # the same text again: no revision, no request
        save_runbook(
            session, runbook_id, title="Disk full", body="1. df -h\n2. du -sh *", tags="", service=None,
            actor=ACTOR, expected_revision=3,
        )  # fmt: skip
    with sessions.begin() as session:
        set_status(session, runbook_id, RunbookStatus.RETIRED, ACTOR)
    with sessions.begin() as session:
        set_status(session, runbook_id, RunbookStatus.DRAFT, ACTOR)  # retired -> draft: never matched
    with sessions.begin() as session:
        create_runbook(
            session, title="VPN", body="1. reconnect", tags="", service=None, actor=ACTOR,
            status=RunbookStatus.APPROVED,
        )  # fmt: skip
    assert request_reasons(sessions) == ["approved", "edited", "retired", "created"]
    with sessions() as session:
        assert {r.requested_by for r in session.scalars(select(RematchRequest))} == {ACTOR}


def test_importing_a_new_or_changed_approved_runbook_writes_a_request(
    sessions: sessionmaker[TenantSession], tmp_path: Path
) -> None:
    folder = tmp_path / "rb"
    folder.mkdir()
    (folder / "disk.md").write_text("# Disk full\n\n1. df -h\n", encoding="utf-8")
    (folder / "vpn.md").write_text("---\nstatus: draft\n---\n# VPN\n\n1. reconnect\n", encoding="utf-8")
    import_runbooks(sessions, folder, actor=ACTOR)
    assert request_reasons(sessions) == ["imported"]  # the draft is not matched
    import_runbooks(sessions, folder, actor=ACTOR)
    assert request_reasons(sessions) == ["imported"]  # unchanged: nothing new
    (folder / "disk.md").write_text("# Disk full\n\n1. df -h\n2. du -sh *\n", encoding="utf-8")
    (folder / "vpn.md").write_text("---\nstatus: draft\n---\n# VPN\n\n1. reconnect twice\n", encoding="utf-8")
    import_runbooks(sessions, folder, actor=ACTOR)
    assert request_reasons(sessions) == ["imported", "imported"]
    (folder / "disk.md").write_text("---\nstatus: retired\n---\n# Disk full\n\n1. df -h\n", encoding="utf-8")
    import_runbooks(sessions, folder, actor=ACTOR)  # approved before: leaving matching is a change too
    assert request_reasons(sessions) == ["imported"] * 3


@pytest.mark.slow
def test_a_ticket_changed_since_its_analysis_is_analysed_afresh_not_rematched(
    engine: MatchingEngine, demo: sessionmaker[TenantSession]
) -> None:
    changed = min(ids_of(demo, labelled_gap(JENKINS_GAP)).values())
    with demo.begin() as session:  # a sync updated its text: its indexed vector is the old text's
        ticket = session.get(Ticket, changed)
        assert ticket is not None
        ticket.description += "\nUpdate: the agent reconnected, then dropped again."
        ticket.content_hash = "changed-by-the-source"
    runbook_id = approve_new_runbook(
        demo, "Jenkins agents offline, builds stuck in the queue", JENKINS_RUNBOOK
    )
    before = latest(demo)

    assert changed not in find_candidates_now(engine, demo, runbook_id)
    rematch_pending(engine, demo)
    assert latest(demo)[changed] == before[changed]  # left for the stale pass, which embeds its new text

    report = analyze_pending(engine, demo)
    assert report.analysed == 1 and latest(demo)[changed][1] == runbook_id
    assert report.rematch is not None and report.rematch.requests == 0  # drained by the first call
