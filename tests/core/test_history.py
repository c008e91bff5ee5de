"""Decision history and the persistent undo history (core/workflow/history.py), from real audit rows.

On the analysed demo workspace: decisions are made with the review functions the app and the CLI call, then
read back through fresh sessions; "a restart" is the workspace closed and opened again.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.matching.analysis import analyze_ticket
from core.matching.engine import MatchingEngine, open_engine
from core.settings import Thresholds, save_settings
from core.store.models import (
    AnalysisDecision,
    AuditEvent,
    LinkDecision,
    OutcomeKind,
    Runbook,
    RunbookStatus,
    Ticket,
    TicketRunbookLink,
)
from core.store.repository import SYSTEM_ACTOR
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from core.workflow.history import (
    HistoryEntry,
    HistoryKind,
    TicketState,
    decision_history,
    find_step,
    ticket_decisions,
    undo_history,
    undo_last,
    undo_step,
)
from core.workflow.outcomes import record_outcome
from core.workflow.review import (
    QueueFilters,
    ReviewConflictError,
    ReviewError,
    ReviewQueueRow,
    ReviewStatus,
    approve,
    bulk_approve,
    link_other,
    load_review_queue,
    queue_counts,
    record_draft,
    reject,
    runbook_choices,
    status_counts,
)

ANA = "ana.analyst"
BO = "bo.lead"


@pytest.fixture
def demo_sessions(analysed_demo: Workspace) -> sessionmaker[TenantSession]:
    return analysed_demo.session_factory("default")


def queue(sessions: sessionmaker[TenantSession], filters: QueueFilters | None = None) -> list[ReviewQueueRow]:
    with sessions() as session:
        return load_review_queue(session, filters)


def first_of(
    sessions: sessionmaker[TenantSession], decision: AnalysisDecision, skip: int = 0
) -> ReviewQueueRow:
    return [row for row in queue(sessions) if row.decision is decision][skip]


def history(sessions: sessionmaker[TenantSession], ticket_id: int) -> list[tuple[HistoryKind, str]]:
    with sessions() as session:
        return [(entry.kind, entry.actor) for entry in decision_history(session, ticket_id)]


def _entries(sessions: sessionmaker[TenantSession], ticket_id: int) -> list[HistoryEntry]:
    with sessions() as session:
        return decision_history(session, ticket_id)


def link_decision(
    sessions: sessionmaker[TenantSession], ticket_id: int, runbook_id: int
) -> LinkDecision | None:
    with sessions() as session:
        link = session.scalars(
            select(TicketRunbookLink).where(
                TicketRunbookLink.ticket_id == ticket_id, TicketRunbookLink.runbook_id == runbook_id
            )
        ).one_or_none()
        return None if link is None else link.decision


def another_approved_runbook(sessions: sessionmaker[TenantSession], ticket_id: int) -> tuple[int, str]:
    with sessions() as session:
        linked = set(
            session.scalars(
                select(TicketRunbookLink.runbook_id).where(TicketRunbookLink.ticket_id == ticket_id)
            )
        )
        choice = next(c for c in runbook_choices(session) if c.status == "approved" and c.id not in linked)
    return choice.id, choice.title


# --- decision history -------------------------------------------------------------------------------------


def test_history_of_an_auto_link_approved_rejected_undone_and_its_outcome(
    demo_sessions: sessionmaker[TenantSession],
) -> None:
    row = first_of(demo_sessions, AnalysisDecision.LINK_RUNBOOK)
    assert row.best_runbook_id is not None and row.best_runbook_title is not None
    (auto,) = (entry for entry in _entries(demo_sessions, row.ticket_id))
    assert auto.kind is HistoryKind.AUTO_LINKED
    assert auto.actor == SYSTEM_ACTOR and auto.by_machine
    assert auto.confidence == pytest.approx(row.confidence)
    assert auto.runbook_title == row.best_runbook_title
    assert auto.describe() == (
        f"linked automatically to “{row.best_runbook_title}” (confidence {round(row.confidence * 100)} %)"
    )

    with demo_sessions.begin() as session:
        approve(session, row.ticket_id, row.best_runbook_id, row.confidence, ANA)
    with demo_sessions.begin() as session:
        undo_last(session, ANA)
    with demo_sessions.begin() as session:
        reject(session, row.ticket_id, row.best_runbook_id, "  wrong product  ", BO)
    with demo_sessions.begin() as session:
        record_outcome(
            session, row.ticket_id, OutcomeKind.FAILED, BO, runbook_id=row.best_runbook_id, note="no"
        )

    entries = _entries(demo_sessions, row.ticket_id)
    assert [(e.kind, e.actor) for e in entries] == [
        (HistoryKind.OUTCOME, BO),
        (HistoryKind.REJECTED, BO),
        (HistoryKind.UNDONE, ANA),
        (HistoryKind.APPROVED, ANA),
        (HistoryKind.AUTO_LINKED, SYSTEM_ACTOR),
    ]
    outcome, rejected, undone, approved, _auto = entries
    assert [e.at for e in entries] == sorted((e.at for e in entries), reverse=True)
    assert outcome.outcome == "failed"
    assert outcome.describe() == f"outcome of “{row.best_runbook_title}”: did not help (no)"
    assert rejected.reason == "wrong product"
    assert rejected.describe() == f"rejected “{row.best_runbook_title}”: wrong product"
    assert not rejected.undone
    assert undone.undoes == "review.approve"
    assert undone.describe() == f"undid the approval of “{row.best_runbook_title}”"
    assert approved.undone
    assert approved.describe().endswith("(undone)")


def test_history_of_linking_another_runbook_and_of_a_draft(
    demo_sessions: sessionmaker[TenantSession],
) -> None:
    row = first_of(demo_sessions, AnalysisDecision.LINK_RUNBOOK)
    other_id, other_title = another_approved_runbook(demo_sessions, row.ticket_id)
    with demo_sessions.begin() as session:
        link_other(session, row.ticket_id, other_id, ANA)
    entries = _entries(demo_sessions, row.ticket_id)
    assert [e.kind for e in entries] == [HistoryKind.SUPERSEDED, HistoryKind.LINKED, HistoryKind.AUTO_LINKED]
    assert entries[1].runbook_title == other_title
    assert entries[0].runbook_id == row.best_runbook_id

    needs = first_of(demo_sessions, AnalysisDecision.GENERATE_RUNBOOK)
    with demo_sessions.begin() as session:
        draft = Runbook(title="Drafted for the test", body="## Steps\n1. x\n", status=RunbookStatus.DRAFT)
        session.add(draft)
        session.flush()
        draft_id = draft.id
    with demo_sessions.begin() as session:
        record_draft(session, needs.ticket_id, draft_id, ANA)
    (drafted,) = (e for e in _entries(demo_sessions, needs.ticket_id) if e.kind is HistoryKind.DRAFTED)
    assert drafted.describe() == "drafted “Drafted for the test” for this ticket and linked it"


def test_history_keeps_a_link_an_undo_deleted(demo_sessions: sessionmaker[TenantSession]) -> None:
    """Linking a runbook no analysis suggested creates the link; its undo deletes it: both stay in history."""
    row = first_of(demo_sessions, AnalysisDecision.FLAG_REVIEW)
    other_id, _title = another_approved_runbook(demo_sessions, row.ticket_id)
    with demo_sessions.begin() as session:
        link_other(session, row.ticket_id, other_id, ANA)
    with demo_sessions.begin() as session:
        undo_last(session, ANA)
    assert link_decision(demo_sessions, row.ticket_id, other_id) is None
    kinds = [(e.kind, e.runbook_id, e.undone) for e in _entries(demo_sessions, row.ticket_id)]
    assert kinds[:2] == [(HistoryKind.UNDONE, other_id, False), (HistoryKind.LINKED, other_id, True)]


def test_history_shows_the_machine_taking_its_link_back(
    analysed_demo: Workspace, demo_sessions: sessionmaker[TenantSession], embedder
) -> None:
    engine: MatchingEngine = open_engine(analysed_demo, "default", embedder)
    engine.refresh()
    row = first_of(demo_sessions, AnalysisDecision.LINK_RUNBOOK)
    with demo_sessions.begin() as session:
        save_settings(session, Thresholds(existing=1.0, partial=0.5))
    with demo_sessions.begin() as session:
        ticket = session.get(Ticket, row.ticket_id)
        assert ticket is not None
        analyze_ticket(engine, session, ticket)
    entries = _entries(demo_sessions, row.ticket_id)
    assert [e.kind for e in entries] == [HistoryKind.AUTO_UNLINKED, HistoryKind.AUTO_LINKED]
    assert entries[0].by_machine
    assert "took back the automatic link" in entries[0].describe()


# --- decided tickets: filters, counts, the Tickets page's decision ---------------------------------------


def test_decided_filters_show_approved_and_rejected_tickets_latest_first(
    demo_sessions: sessionmaker[TenantSession],
) -> None:
    flagged = [row for row in queue(demo_sessions) if row.decision is AnalysisDecision.FLAG_REVIEW][:3]
    with demo_sessions() as session:
        before = status_counts(session)
        assert before[ReviewStatus.TO_DECIDE] == sum(queue_counts(session).values())
        assert before[ReviewStatus.DECIDED] == 0
    first, second, third = flagged
    assert first.best_runbook_id and second.best_runbook_id and third.best_runbook_id
    with demo_sessions.begin() as session:
        approve(session, first.ticket_id, first.best_runbook_id, first.confidence, ANA)
    with demo_sessions.begin() as session:
        reject(session, second.ticket_id, second.best_runbook_id, "not it", ANA)
    with demo_sessions.begin() as session:
        approve(session, third.ticket_id, third.best_runbook_id, third.confidence, BO)

    approved = queue(demo_sessions, QueueFilters(status=ReviewStatus.APPROVED))
    assert [r.ticket_id for r in approved] == [third.ticket_id, first.ticket_id]
    assert approved[0].reviewed is not None
    assert approved[0].reviewed.approved
    assert approved[0].reviewed.reviewed_by == BO
    assert approved[0].reviewed.runbook_title == third.best_runbook_title
    rejected = queue(demo_sessions, QueueFilters(status=ReviewStatus.REJECTED))
    assert [r.ticket_id for r in rejected] == [second.ticket_id]
    assert rejected[0].reviewed is not None
    assert (rejected[0].reviewed.approved, rejected[0].reviewed.reason) == (False, "not it")
    decided = queue(demo_sessions, QueueFilters(status=ReviewStatus.DECIDED))
    assert [r.ticket_id for r in decided] == [third.ticket_id, second.ticket_id, first.ticket_id]
    assert all(r.ticket_id not in {d.ticket_id for d in decided} for r in queue(demo_sessions))
    # Other filters still apply to decided tickets.
    assert queue(demo_sessions, QueueFilters(status=ReviewStatus.DECIDED, text=second.external_id)) == [
        rejected[0]
    ]
    with demo_sessions() as session:
        after = status_counts(session)
    assert after == {
        ReviewStatus.TO_DECIDE: before[ReviewStatus.TO_DECIDE] - 3,
        ReviewStatus.APPROVED: 2,
        ReviewStatus.REJECTED: 1,
        ReviewStatus.DECIDED: 3,
    }


def test_linking_another_runbook_counts_as_approved_not_rejected(
    demo_sessions: sessionmaker[TenantSession],
) -> None:
    row = first_of(demo_sessions, AnalysisDecision.LINK_RUNBOOK)
    other_id, other_title = another_approved_runbook(demo_sessions, row.ticket_id)
    with demo_sessions.begin() as session:
        link_other(session, row.ticket_id, other_id, ANA)
    assert [r.ticket_id for r in queue(demo_sessions, QueueFilters(status=ReviewStatus.APPROVED))] == [
        row.ticket_id
    ]
    assert queue(demo_sessions, QueueFilters(status=ReviewStatus.REJECTED)) == []
    with demo_sessions() as session:
        decision = ticket_decisions(session, [row.ticket_id])[row.ticket_id]
    assert (decision.state, decision.runbook_title, decision.decided_by) == (
        TicketState.APPROVED,
        other_title,
        ANA,
    )


def test_ticket_decisions_name_the_machines_state_for_undecided_tickets(
    demo_sessions: sessionmaker[TenantSession],
) -> None:
    auto = first_of(demo_sessions, AnalysisDecision.LINK_RUNBOOK)
    flagged = first_of(demo_sessions, AnalysisDecision.FLAG_REVIEW)
    needs = first_of(demo_sessions, AnalysisDecision.GENERATE_RUNBOOK)
    with demo_sessions.begin() as session:
        session.add(Ticket(external_id="INC-NEW", source_system="servicenow", title="new", content_hash="x"))
        session.flush()
        new_id = session.scalars(select(Ticket.id).where(Ticket.external_id == "INC-NEW")).one()
    with demo_sessions() as session:
        decisions = ticket_decisions(session, [auto.ticket_id, flagged.ticket_id, needs.ticket_id, new_id])
    assert decisions[auto.ticket_id].state is TicketState.AUTO_LINKED
    assert decisions[auto.ticket_id].runbook_title == auto.best_runbook_title
    assert decisions[flagged.ticket_id].state is TicketState.NEEDS_REVIEW
    assert decisions[flagged.ticket_id].runbook_title == flagged.best_runbook_title
    assert (decisions[needs.ticket_id].state, decisions[needs.ticket_id].runbook_id) == (
        TicketState.NEEDS_RUNBOOK,
        None,
    )
    assert decisions[new_id].state is TicketState.NOT_ANALYSED


# --- the persistent undo history ---------------------------------------------------------------------------


def test_undo_history_survives_a_restart_and_undoes_newest_first(
    analysed_demo_template: Path, tmp_path
) -> None:
    import shutil

    root = tmp_path / "ws"
    shutil.copytree(analysed_demo_template, root, ignore=shutil.ignore_patterns("*.lock"))
    with Workspace.open(root) as workspace:
        sessions = workspace.session_factory("default")
        flagged = [row for row in queue(sessions) if row.decision is AnalysisDecision.FLAG_REVIEW][:4]
        with sessions.begin() as session:
            first = approve(session, flagged[0].ticket_id, flagged[0].best_runbook_id or 0, None, ANA)
        with sessions.begin() as session:
            bulk = bulk_approve(session, [r.ticket_id for r in flagged[1:3]], ANA)
        with sessions.begin() as session:
            reject(session, flagged[3].ticket_id, flagged[3].best_runbook_id or 0, None, BO)

    with Workspace.open(root) as workspace:  # "a restart": nothing but the store carries the history
        sessions = workspace.session_factory("default")
        with sessions() as session:
            steps = undo_history(session, ANA)
            everyone = undo_history(session)
        assert [step.action for step in steps] == ["review.approve", "review.approve"]
        assert steps[0].record.ticket_ids == bulk.ticket_ids
        assert steps[0].subject == "2 tickets"
        assert steps[1].record == first
        assert steps[1].subject == f"{flagged[0].external_id} → “{flagged[0].best_runbook_title}”"
        assert not any(step.changed_since for step in steps)
        assert [step.actor for step in everyone] == [BO, ANA, ANA]

        with sessions.begin() as session:
            undone, undo_record = undo_last(session, ANA)
        assert undone.record.ticket_ids == bulk.ticket_ids
        assert undo_record.action == "review.undo"
        with sessions() as session:
            assert [s.record for s in undo_history(session, ANA)] == [first]
        with sessions.begin() as session:
            undo_last(session, ANA)
        for row in flagged[:3]:
            assert link_decision(sessions, row.ticket_id, row.best_runbook_id or 0) is LinkDecision.SUGGESTED
        assert link_decision(sessions, flagged[3].ticket_id, flagged[3].best_runbook_id or 0) is (
            LinkDecision.REJECTED
        )
        with pytest.raises(ReviewError, match="no decision left to undo"), sessions.begin() as session:
            undo_last(session, ANA)
        with sessions() as session:
            undos = session.scalars(select(AuditEvent).where(AuditEvent.action == "review.undo")).all()
        assert [(u.actor, u.after["undoes"]) for u in undos] == [(ANA, "review.approve")] * 3


def test_undo_is_refused_when_the_link_changed_since(demo_sessions: sessionmaker[TenantSession]) -> None:
    rows = [row for row in queue(demo_sessions) if row.decision is AnalysisDecision.FLAG_REVIEW][:2]
    older, newer = rows
    with demo_sessions.begin() as session:
        approve(session, older.ticket_id, older.best_runbook_id or 0, older.confidence, ANA)
    with demo_sessions.begin() as session:
        approve(session, newer.ticket_id, newer.best_runbook_id or 0, newer.confidence, ANA)
    with demo_sessions.begin() as session:  # someone else decides again over ana's newer decision
        reject(session, newer.ticket_id, newer.best_runbook_id or 0, "no", BO)
    with demo_sessions() as session:
        newest, oldest = undo_history(session, ANA)
    assert (newest.changed_since, oldest.changed_since) == (True, False)

    with pytest.raises(ReviewConflictError, match="changed after"), demo_sessions.begin() as session:
        undo_step(session, newest.step_id, ANA)
    assert link_decision(demo_sessions, newer.ticket_id, newer.best_runbook_id or 0) is LinkDecision.REJECTED

    # undo_last passes the step it cannot undo and undoes the older one.
    with demo_sessions.begin() as session:
        step, _record = undo_last(session, ANA)
    assert step.step_id == oldest.step_id
    assert link_decision(demo_sessions, older.ticket_id, older.best_runbook_id or 0) is LinkDecision.SUGGESTED
    with pytest.raises(ReviewError, match="1 changed since"), demo_sessions.begin() as session:
        undo_last(session, ANA)
    with pytest.raises(ReviewError, match="undone already"), demo_sessions.begin() as session:
        undo_step(session, oldest.step_id, ANA)


def test_a_step_is_found_from_any_of_its_rows(demo_sessions: sessionmaker[TenantSession]) -> None:
    row = first_of(demo_sessions, AnalysisDecision.LINK_RUNBOOK)
    other_id, _title = another_approved_runbook(demo_sessions, row.ticket_id)
    with demo_sessions.begin() as session:
        record = link_other(session, row.ticket_id, other_id, ANA)
    with demo_sessions() as session:
        ids = session.scalars(
            select(AuditEvent.id).where(AuditEvent.action.like("review.%")).order_by(AuditEvent.id)
        ).all()
        assert len(ids) == 2
        assert find_step(session, ids[1]).step_id == ids[0]
        assert find_step(session, ids[0]).record == record
        auto_row = session.scalars(
            select(AuditEvent.id).where(AuditEvent.action == "analysis.auto_link").limit(1)
        ).one()
        with pytest.raises(ReviewError, match="not an analyst's decision"):
            find_step(session, auto_row)
    with demo_sessions.begin() as session:
        undo_step(session, ids[1], BO)  # anyone may undo a named step; the undo names its own actor
    assert [kind for kind, _actor in history(demo_sessions, row.ticket_id)][:2] == [
        HistoryKind.UNDONE,
        HistoryKind.UNDONE,
    ]
    with demo_sessions() as session:
        assert undo_history(session, ANA) == []
