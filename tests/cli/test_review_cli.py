"""``runbook-desk review ...`` end to end on a copy of the analysed demo workspace.

Each command runs in-process through ``main`` (the console script's entry point), against a workspace folder
nobody else holds open, as a script would; the store is read back after each one. The actor is the OS user
name (``LOGNAME`` is set per test, as the login would).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from core.store.models import AnalysisDecision, AuditEvent, LinkDecision, RunbookOutcome, TicketRunbookLink
from core.store.workspace import Workspace
from core.workflow.review import QueueFilters, ReviewQueueRow, approve, load_review_queue, runbook_choices
from desktop.cli.common import EXIT_ERROR, EXIT_OK, EXIT_USAGE
from desktop.cli.main import main

ANA = "ana.analyst"
BO = "bo.lead"

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def ws(analysed_demo_template: Path, tmp_path: Path) -> Path:
    """A private copy of the analysed demo, closed: the command opens (and locks) it itself."""
    root = tmp_path / "demo-ws"
    shutil.copytree(analysed_demo_template, root, ignore=shutil.ignore_patterns("*.lock"))
    return root


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, ws: Path) -> Run:
    def run_as(actor: str, *argv: str) -> tuple[int, str, str]:
        monkeypatch.setenv("LOGNAME", actor)
        code = main(["review", *argv, "--workspace", str(ws)])
        out, err = capsys.readouterr()
        return code, out, err

    return run_as


def queue_rows(ws: Path, filters: QueueFilters | None = None) -> list[ReviewQueueRow]:
    with Workspace.open(ws) as workspace, workspace.session_factory("default")() as session:
        return load_review_queue(session, filters)


def first_flagged(ws: Path, skip: int = 0) -> ReviewQueueRow:
    return [row for row in queue_rows(ws) if row.decision is AnalysisDecision.FLAG_REVIEW][skip]


def link_state(ws: Path, ticket_id: int, runbook_id: int) -> tuple[LinkDecision, str | None] | None:
    with Workspace.open(ws) as workspace, workspace.session_factory("default")() as session:
        link = session.scalars(
            select(TicketRunbookLink).where(
                TicketRunbookLink.ticket_id == ticket_id, TicketRunbookLink.runbook_id == runbook_id
            )
        ).one_or_none()
        return None if link is None else (link.decision, link.reviewed_by)


def review_audit(ws: Path) -> list[tuple[str, str]]:
    with Workspace.open(ws) as workspace, workspace.session_factory("default")() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("review.%")).order_by(AuditEvent.id)
        )
        return [(event.action, event.actor) for event in events]


def review_audit_ids(ws: Path) -> list[int]:
    with Workspace.open(ws) as workspace, workspace.session_factory("default")() as session:
        return list(
            session.scalars(
                select(AuditEvent.id).where(AuditEvent.action.like("review.%")).order_by(AuditEvent.id)
            )
        )


def test_list_shows_the_queue_and_each_decision_filter(run: Run, ws: Path) -> None:
    code, out, err = run(ANA, "list", "--limit", "5", "--json")
    assert (code, err) == (EXIT_OK, "")
    listed = json.loads(out)
    assert [row["ticket_id"] for row in listed] == [row.ticket_id for row in queue_rows(ws)[:5]]
    assert all(row["decision"] is None for row in listed)

    code, out, _ = run(ANA, "list", "--decision", "draft", "--limit", "1000", "--json")
    drafts = json.loads(out)
    assert code == EXIT_OK
    assert drafts
    assert {row["analysis_decision"] for row in drafts} == {"generate_runbook"}
    expected = queue_rows(ws, QueueFilters(decisions=frozenset({AnalysisDecision.GENERATE_RUNBOOK})))
    assert [row["external_id"] for row in drafts] == [row.external_id for row in expected]

    code, out, _ = run(ANA, "list", "--decision", "decided")
    assert (code, out.strip()) == (EXIT_OK, "no tickets")
    code, out, _ = run(ANA, "list", "--limit", "3")
    assert code == EXIT_OK
    assert len(out.strip().splitlines()) == 3
    assert out.startswith(queue_rows(ws)[0].external_id)


def test_approve_the_best_suggestion_then_history_and_undo(run: Run, ws: Path) -> None:
    row = first_flagged(ws)
    assert row.best_runbook_id is not None
    code, out, err = run(ANA, "approve", row.external_id, "--json")
    assert (code, err) == (EXIT_OK, "")
    decided = json.loads(out)
    assert decided["action"] == "review.approve"
    assert decided["actor"] == ANA
    assert decided["changes"] == [
        {
            "ticket_id": row.ticket_id,
            "external_id": row.external_id,
            "runbook_id": row.best_runbook_id,
            "runbook": row.best_runbook_title,
            "before": "suggested",
            "after": "linked",
        }
    ]
    assert link_state(ws, row.ticket_id, row.best_runbook_id) == (LinkDecision.LINKED, ANA)
    assert review_audit(ws) == [("review.approve", ANA)]
    # The step the decision became, for `review undo --step` (its first audit row).
    assert decided["step"] == review_audit_ids(ws)[0]

    code, out, _ = run(ANA, "list", "--decision", "approved", "--json")
    (approved,) = json.loads(out)
    assert (approved["external_id"], approved["decision"], approved["reviewed_by"]) == (
        row.external_id,
        "approved",
        ANA,
    )
    assert approved["runbook"] == row.best_runbook_title

    code, out, _ = run(ANA, "history", row.external_id, "--json")
    history = json.loads(out)
    assert code == EXIT_OK
    assert [(e["kind"], e["actor"]) for e in history] == [("approved", ANA)]  # a flagged ticket: no auto-link
    assert history[0]["text"] == f"approved “{row.best_runbook_title}”"

    code, out, _ = run(ANA, "undo")
    assert code == EXIT_OK
    assert out.startswith(f"undid: review.approve {row.external_id} → “{row.best_runbook_title}”")
    assert link_state(ws, row.ticket_id, row.best_runbook_id) == (LinkDecision.SUGGESTED, None)
    assert review_audit(ws) == [("review.approve", ANA), ("review.undo", ANA)]
    code, out, _ = run(ANA, "history", str(row.ticket_id))  # by id, in text
    assert code == EXIT_OK
    lines = out.strip().splitlines()
    assert "undid the approval of" in lines[0]
    assert lines[1].endswith("(undone)")

    code, out, err = run(ANA, "undo")
    assert (code, out) == (EXIT_ERROR, "")
    assert err == f"runbook-desk: error: {ANA} has no decision left to undo\n"


def test_undo_takes_a_decision_made_in_the_app_before_a_restart(run: Run, ws: Path) -> None:
    row = first_flagged(ws)
    with Workspace.open(ws) as workspace:  # the app's decision, then the app closes
        sessions = workspace.session_factory("default")
        with sessions.begin() as session:
            approve(session, row.ticket_id, row.best_runbook_id or 0, row.confidence, ANA)
    code, out, _ = run(ANA, "undo", "--json")
    assert code == EXIT_OK
    undone = json.loads(out)["undone"]
    assert (undone["action"], undone["actor"], undone["tickets"]) == (
        "review.approve",
        ANA,
        [row.external_id],
    )
    assert link_state(ws, row.ticket_id, row.best_runbook_id or 0) == (LinkDecision.SUGGESTED, None)


def test_reject_by_title_with_a_reason_and_link_by_id(run: Run, ws: Path) -> None:
    row = first_flagged(ws)
    assert row.best_runbook_title is not None
    code, out, _ = run(
        BO, "reject", row.external_id, "--runbook", row.best_runbook_title.upper(), "--reason", "no"
    )
    assert code == EXIT_OK
    step = review_audit_ids(ws)[-1]
    assert out.strip() == f"rejected: {row.external_id} → “{row.best_runbook_title}” (by {BO}, step {step})"
    assert link_state(ws, row.ticket_id, row.best_runbook_id or 0) == (LinkDecision.REJECTED, BO)

    auto = next(r for r in queue_rows(ws) if r.decision is AnalysisDecision.LINK_RUNBOOK)
    with Workspace.open(ws) as workspace, workspace.session_factory("default")() as session:
        other = next(
            c for c in runbook_choices(session) if c.status == "approved" and c.id != auto.best_runbook_id
        )
    code, out, _ = run(BO, "link", auto.external_id, "--runbook", str(other.id), "--json")
    assert code == EXIT_OK
    changes = json.loads(out)["changes"]
    assert [(c["runbook_id"], c["after"]) for c in changes] == [
        (other.id, "linked"),
        (auto.best_runbook_id, "rejected"),  # the machine's automatic link, set aside
    ]
    code, out, _ = run(BO, "list", "--decision", "rejected", "--json")
    assert [r["external_id"] for r in json.loads(out)] == [row.external_id]
    assert json.loads(out)[0]["reason"] == "no"


def test_ambiguous_or_unknown_names_are_refused_with_the_candidates(run: Run, ws: Path) -> None:
    with Workspace.open(ws) as workspace, workspace.session_factory("default")() as session:
        titles = [choice.title for choice in runbook_choices(session)]
    word = next(
        w
        for title in titles
        for w in title.lower().split()
        if len(w) > 3 and sum(w in t.lower() for t in titles) >= 2 and all(w != t.lower() for t in titles)
    )
    sharing = [t for t in titles if word in t.lower()]
    row = first_flagged(ws)
    code, out, err = run(ANA, "approve", row.external_id, "--runbook", word)
    assert (code, out) == (EXIT_ERROR, "")
    assert err.count("\n") == 1
    assert f"runbook '{word}' is ambiguous" in err
    assert all(f"“{title}”" in err for title in sharing[:8])
    assert review_audit(ws) == []

    code, _out, err = run(ANA, "approve", "INC-NOPE")
    assert code == EXIT_ERROR
    assert err == "runbook-desk: error: no ticket INC-NOPE in tenant default\n"
    code, _out, err = run(ANA, "link", row.external_id, "--runbook", "no such runbook title at all")
    assert code == EXIT_ERROR
    assert "no runbook 'no such runbook title at all'" in err

    with pytest.raises(SystemExit) as usage:
        run(ANA, "list", "--decision", "maybe")
    assert usage.value.code == EXIT_USAGE
    with pytest.raises(SystemExit) as usage:
        run(ANA, "link", row.external_id)  # --runbook is required
    assert usage.value.code == EXIT_USAGE


def test_outcome_of_the_linked_runbook_is_recorded_and_in_the_history(run: Run, ws: Path) -> None:
    row = first_flagged(ws)
    code, _out, err = run(ANA, "outcome", row.external_id, "resolved")
    assert code == EXIT_ERROR
    assert "no linked runbook" in err

    assert run(ANA, "approve", row.external_id)[0] == EXIT_OK
    code, out, _ = run(ANA, "outcome", row.external_id, "partly", "--note", "step 3 was enough", "--json")
    assert code == EXIT_OK
    recorded = json.loads(out)
    assert (recorded["runbook_id"], recorded["outcome"], recorded["recorded_by"]) == (
        row.best_runbook_id,
        "partly",
        ANA,
    )
    with Workspace.open(ws) as workspace, workspace.session_factory("default")() as session:
        outcome = session.scalars(
            select(RunbookOutcome).where(RunbookOutcome.ticket_id == row.ticket_id)
        ).one()
        assert (outcome.outcome.value, outcome.note, outcome.recorded_by) == (
            "partly",
            "step 3 was enough",
            ANA,
        )
    code, out, _ = run(ANA, "history", row.external_id, "--json")
    latest = json.loads(out)[0]
    assert (latest["kind"], latest["outcome"]) == ("outcome", "partly")


def test_undo_is_refused_when_someone_decided_since(run: Run, ws: Path) -> None:
    older, newer = first_flagged(ws), first_flagged(ws, skip=1)
    assert run(ANA, "approve", older.external_id)[0] == EXIT_OK
    assert run(ANA, "approve", newer.external_id)[0] == EXIT_OK
    assert run(BO, "reject", newer.external_id, "--reason", "wrong")[0] == EXIT_OK
    code, out, _ = run(ANA, "history", newer.external_id, "--json")
    ana_step = next(e["audit_id"] for e in json.loads(out) if e["actor"] == ANA)

    code, out, err = run(ANA, "undo", "--step", str(ana_step))
    assert (code, out) == (EXIT_ERROR, "")
    assert "changed after it" in err
    assert link_state(ws, newer.ticket_id, newer.best_runbook_id or 0) == (LinkDecision.REJECTED, BO)

    code, out, _ = run(ANA, "undo", "--json")  # passes the step it cannot undo; undoes the older one
    assert code == EXIT_OK
    assert json.loads(out)["undone"]["tickets"] == [older.external_id]
    code, _out, err = run(ANA, "undo")
    assert code == EXIT_ERROR
    assert "no decision left to undo (1 changed since by a later decision)" in err
