"""``runbook-desk review ...``: the Review page's decisions, headless (scripts, evaluation replays).

::

    review list [--decision to-decide|link|review|draft|approved|rejected|decided] [--limit N]
    review approve TICKET [--runbook ID|TITLE]          default: the ticket's best suggestion
    review reject TICKET [--runbook ID|TITLE] [--reason TEXT]
    review link TICKET --runbook ID|TITLE               another runbook than the suggestions
    review outcome TICKET resolved|partly|failed [--runbook ID|TITLE] [--note TEXT]
    review undo [--step AUDIT_ID]                       default: your last decision that can be undone
    review history TICKET

Each decision is one transaction with its audit rows, in the name of the OS user
(:func:`core.store.repository.current_actor`) and through the same functions the app calls, so the trail
cannot tell a scripted decision from a clicked one. ``undo`` reads your decisions back from the audit trail
(:mod:`core.workflow.history`): it undoes what you decided in the app as well, after a restart too.

TICKET is the ticket's number in its source system (``INC0010001``, ``OPS-104``) or its id here. A runbook is
named by id or by title: the exact title (any case), else a part of exactly one title; an ambiguous name is
refused with the candidates, never guessed.

The store and the review rules are imported inside the functions: ``runbook-desk tickets list`` should
not pay for this module.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.store.models import Runbook, Ticket
    from core.store.tenancy import TenantSession
    from core.store.workspace import Workspace
    from core.workflow.history import HistoryEntry, UndoStep
    from core.workflow.review import DecisionRecord, QueueFilters, ReviewQueueRow

LIST_CHOICES = ("to-decide", "link", "review", "draft", "approved", "rejected", "decided")
OUTCOME_CHOICES = ("resolved", "partly", "failed")
CANDIDATES_SHOWN = 8


def add_review_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    review = commands.add_parser("review", help="the review queue and its decisions, headless")
    actions = review.add_subparsers(dest="action", metavar="ACTION", required=True)
    lister = actions.add_parser("list", parents=[common], help="tickets to decide, or decided ones")
    lister.add_argument(
        "--decision",
        choices=LIST_CHOICES,
        default="to-decide",
        help="to-decide (default: the queue), link (auto-linked, to spot-check), review, draft "
        "(needs a runbook), approved, rejected, decided",
    )
    lister.add_argument("--limit", type=int, default=50, help="at most this many (default: %(default)s)")

    runbook_help = "runbook id or title (default: the ticket's best suggestion)"
    approve = actions.add_parser("approve", parents=[common], help="link the ticket to a runbook it matches")
    approve.add_argument("ticket", metavar="TICKET", help="number (INC0010001) or id")
    approve.add_argument("--runbook", metavar="ID|TITLE", help=runbook_help)
    reject = actions.add_parser("reject", parents=[common], help="mark a suggested runbook wrong")
    reject.add_argument("ticket", metavar="TICKET", help="number (INC0010001) or id")
    reject.add_argument("--runbook", metavar="ID|TITLE", help=runbook_help)
    reject.add_argument("--reason", help="why it is wrong (kept with the decision)")
    link = actions.add_parser("link", parents=[common], help="link another runbook than the suggestions")
    link.add_argument("ticket", metavar="TICKET", help="number (INC0010001) or id")
    link.add_argument("--runbook", metavar="ID|TITLE", required=True, help="runbook id or title")
    outcome = actions.add_parser("outcome", parents=[common], help="did the linked runbook fix the ticket")
    outcome.add_argument("ticket", metavar="TICKET", help="number (INC0010001) or id")
    outcome.add_argument("outcome", choices=OUTCOME_CHOICES)
    outcome.add_argument("--runbook", metavar="ID|TITLE", help="default: the ticket's linked runbook")
    outcome.add_argument("--note", help="a note kept with the outcome")
    undo = actions.add_parser("undo", parents=[common], help="undo your last decision (audited)")
    undo.add_argument(
        "--step",
        type=int,
        metavar="AUDIT_ID",
        help="undo this decision instead (an id `review history` shows)",
    )
    history = actions.add_parser("history", parents=[common], help="who decided what about a ticket")
    history.add_argument("ticket", metavar="TICKET", help="number (INC0010001) or id")


def run_review_command(args: argparse.Namespace, workspace: Workspace) -> int:
    from core.store.repository import current_actor
    from desktop.cli.common import EXIT_OK

    sessions = workspace.session_factory(args.tenant)
    actor = current_actor()
    if args.action == "list":
        with sessions() as session:
            rows = _list(session, args.decision, args.limit)
        _print(args, [_row_json(row) for row in rows], "\n".join(_row_text(r) for r in rows) or "no tickets")
        return EXIT_OK
    if args.action == "history":
        with sessions() as session:
            ticket = find_ticket(session, args.ticket)
            external_id = ticket.external_id
            entries = _history(session, ticket.id)
        text = "\n".join(_entry_text(entry) for entry in entries) or f"{external_id}: no decision yet"
        _print(args, [_entry_json(entry) for entry in entries], text)
        return EXIT_OK
    if args.action == "undo":
        with sessions.begin() as session:
            step, record = _undo(session, args.step, actor)
            payload = {"undone": _step_json(step), "undo": _record_json(session, record)}
        text = f"undid: {_step_text(step)}"
        _print(args, payload, text)
        return EXIT_OK
    if args.action == "outcome":
        with sessions.begin() as session:
            payload = _outcome(session, args, actor)
        _print(args, payload, f"recorded: {payload['external_id']} → “{payload['runbook']}”: {args.outcome}")
        return EXIT_OK
    with sessions.begin() as session:
        record = _decide(session, args, actor)
        decided: dict[str, Any] = {**_record_json(session, record), "step": _step_of(session, actor)}
    _print(args, decided, _decision_text(decided))
    return EXIT_OK


def _step_of(session: TenantSession, actor: str) -> int | None:
    """The undo step the decision just made became: what ``review undo --step`` takes, so a script that
    decided can take exactly that decision back later, whatever was decided in between."""
    from core.workflow.history import undo_history

    session.flush()  # the decision's audit rows get their ids
    newest = undo_history(session, actor, limit=1)
    return newest[0].step_id if newest else None


# --- finding what the command line names ----------------------------------------------------------------


def find_ticket(session: TenantSession, reference: str) -> Ticket:
    """The ticket with this number in its source system, else with this id; refused when ambiguous."""
    from sqlalchemy import func, select

    from core.errors import RunbookDeskError
    from core.store.models import Ticket

    reference = reference.strip()
    matches = list(session.scalars(select(Ticket).where(Ticket.external_id == reference)))
    if not matches:
        lowered = select(Ticket).where(func.lower(Ticket.external_id) == reference.lower())
        matches = list(session.scalars(lowered))
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        candidates = ", ".join(
            f"id {t.id} ({t.source_system} {t.source_instance or 'unknown instance'})" for t in matches
        )
        raise RunbookDeskError(f"ticket {reference} is ambiguous: {candidates}; name it by id")
    if reference.isdigit():
        ticket = session.get(Ticket, int(reference))
        if ticket is not None and ticket.tenant_id == session.tenant_id:
            return ticket
    raise RunbookDeskError(f"no ticket {reference} in tenant {session.tenant_slug}")


def find_runbook(session: TenantSession, reference: str) -> Runbook:
    """The runbook with this id, else this exact title (any case), else the one title containing it."""
    from sqlalchemy import func, select

    from core.errors import RunbookDeskError
    from core.store.models import Runbook

    reference = reference.strip()
    if reference.isdigit():
        runbook = session.get(Runbook, int(reference))
        if runbook is not None and runbook.tenant_id == session.tenant_id:
            return runbook
    exact = list(session.scalars(select(Runbook).where(func.lower(Runbook.title) == reference.lower())))
    candidates = exact or list(
        session.scalars(
            select(Runbook).where(Runbook.title.icontains(reference, autoescape=True)).order_by(Runbook.title)
        )
    )
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise RunbookDeskError(f"no runbook {reference!r} in tenant {session.tenant_slug} (by id or title)")
    shown = ", ".join(f"{r.id} “{r.title}” ({r.status.value})" for r in candidates[:CANDIDATES_SHOWN])
    more = f" and {len(candidates) - CANDIDATES_SHOWN} more" if len(candidates) > CANDIDATES_SHOWN else ""
    raise RunbookDeskError(f"runbook {reference!r} is ambiguous: {shown}{more}; name it by id")


def _best_suggestion(session: TenantSession, ticket: Ticket) -> tuple[int, float] | None:
    """The latest analysis' best runbook and its confidence: what the Review page selects first."""
    from sqlalchemy import select

    from core.queries import latest_analysis
    from core.store.models import Analysis

    latest = latest_analysis([ticket.id])
    row = session.execute(
        select(Analysis.best_runbook_id, Analysis.confidence).join(
            latest, latest.c.analysis_id == Analysis.id
        )
    ).first()
    if row is None or row[0] is None:
        return None
    return int(row[0]), float(row[1])


# --- the actions ------------------------------------------------------------------------------------------


def _filters(choice: str) -> QueueFilters:
    from core.store.models import AnalysisDecision
    from core.workflow.review import QueueFilters, ReviewStatus

    decisions = {
        "link": AnalysisDecision.LINK_RUNBOOK,
        "review": AnalysisDecision.FLAG_REVIEW,
        "draft": AnalysisDecision.GENERATE_RUNBOOK,
    }
    if choice in decisions:
        return QueueFilters(decisions=frozenset({decisions[choice]}))
    if choice == "to-decide":
        return QueueFilters()
    return QueueFilters(status=ReviewStatus(choice))


def _list(session: TenantSession, choice: str, limit: int) -> list[ReviewQueueRow]:
    from core.errors import RunbookDeskError
    from core.workflow.review import load_review_queue

    if limit < 1:
        raise RunbookDeskError(f"--limit {limit}: must be at least 1")
    return load_review_queue(session, _filters(choice), limit=limit)


def _decide(session: TenantSession, args: argparse.Namespace, actor: str) -> DecisionRecord:
    from core.errors import RunbookDeskError
    from core.workflow.review import approve, link_other, reject

    ticket = find_ticket(session, args.ticket)
    best = _best_suggestion(session, ticket)
    if args.runbook is not None:
        runbook_id = find_runbook(session, args.runbook).id
    elif best is not None:
        runbook_id = best[0]
    else:
        raise RunbookDeskError(f"{ticket.external_id} has no suggested runbook: name one with --runbook")
    if args.action == "approve":
        # The machine's confidence goes with its own suggestion; another runbook keeps its link's score.
        confidence = best[1] if best is not None and best[0] == runbook_id else None
        return approve(session, ticket.id, runbook_id, confidence, actor)
    if args.action == "reject":
        return reject(session, ticket.id, runbook_id, args.reason, actor)
    return link_other(session, ticket.id, runbook_id, actor)


def _outcome(session: TenantSession, args: argparse.Namespace, actor: str) -> dict[str, Any]:
    from core.store.models import OutcomeKind, Runbook
    from core.workflow.outcomes import record_outcome

    ticket = find_ticket(session, args.ticket)
    runbook_id = find_runbook(session, args.runbook).id if args.runbook is not None else None
    outcome = record_outcome(
        session, ticket.id, OutcomeKind(args.outcome), actor, runbook_id=runbook_id, note=args.note
    )
    runbook = session.get(Runbook, outcome.runbook_id)
    return {
        "ticket_id": ticket.id,
        "external_id": ticket.external_id,
        "runbook_id": outcome.runbook_id,
        "runbook": runbook.title if runbook is not None else None,
        "outcome": outcome.outcome.value,
        "note": args.note,
        "recorded_by": outcome.recorded_by,
        "recorded_at": outcome.recorded_at.isoformat(),
    }


def _undo(session: TenantSession, step_id: int | None, actor: str) -> tuple[UndoStep, DecisionRecord]:
    from core.workflow.history import undo_last, undo_step

    return undo_last(session, actor) if step_id is None else undo_step(session, step_id, actor)


def _history(session: TenantSession, ticket_id: int) -> list[HistoryEntry]:
    from core.workflow.history import decision_history

    return decision_history(session, ticket_id)


# --- output -----------------------------------------------------------------------------------------------


def _print(args: argparse.Namespace, payload: Any, text: str) -> None:
    from desktop.cli.common import print_result

    print_result(args, payload, text)


def _row_json(row: ReviewQueueRow) -> dict[str, Any]:
    reviewed = row.reviewed
    return {
        "ticket_id": row.ticket_id,
        "external_id": row.external_id,
        "title": row.title,
        "source_system": row.source_system,
        "severity": row.severity,
        "analysis_decision": row.decision.value,
        "confidence": row.confidence,
        "best_runbook_id": row.best_runbook_id,
        "best_runbook": row.best_runbook_title,
        "decision": None if reviewed is None else ("approved" if reviewed.approved else "rejected"),
        "runbook_id": None if reviewed is None else reviewed.runbook_id,
        "runbook": None if reviewed is None else reviewed.runbook_title,
        "reviewed_by": None if reviewed is None else reviewed.reviewed_by,
        "reviewed_at": None
        if reviewed is None or reviewed.reviewed_at is None
        else reviewed.reviewed_at.isoformat(),
        "reason": None if reviewed is None else reviewed.reason,
    }


_ANALYSIS_WORDS = {"link_runbook": "spot-check", "flag_review": "review", "generate_runbook": "needs runbook"}


def _row_text(row: ReviewQueueRow) -> str:
    reviewed = row.reviewed
    if reviewed is None:
        what = _ANALYSIS_WORDS.get(row.decision.value, row.decision.value)
        runbook = f"“{row.best_runbook_title}”" if row.best_runbook_title else "-"
        return f"{row.external_id:<14} {what:<13} {round(row.confidence * 100):>3} %  {runbook}  {row.title}"
    what = "approved" if reviewed.approved else "rejected"
    by = f"by {reviewed.reviewed_by or '?'}"
    return f"{row.external_id:<14} {what:<9} {by:<20} “{reviewed.runbook_title}”  {row.title}"


def _record_json(session: TenantSession, record: DecisionRecord) -> dict[str, Any]:
    from sqlalchemy import select

    from core.store.models import Runbook, Ticket

    ticket_ids = {change.ticket_id for change in record.changes}
    runbook_ids = {change.runbook_id for change in record.changes}
    labels = dict(
        session.execute(select(Ticket.id, Ticket.external_id).where(Ticket.id.in_(ticket_ids))).all()
    )
    titles = dict(session.execute(select(Runbook.id, Runbook.title).where(Runbook.id.in_(runbook_ids))).all())
    return {
        "action": record.action,
        "actor": record.actor,
        "decided_at": record.decided_at.isoformat(),
        "changes": [
            {
                "ticket_id": change.ticket_id,
                "external_id": labels.get(change.ticket_id),
                "runbook_id": change.runbook_id,
                "runbook": titles.get(change.runbook_id),
                "before": change.before.decision.value if change.before is not None else None,
                "after": change.after.decision.value if change.after is not None else None,
            }
            for change in record.changes
        ],
    }


_DONE = {
    "review.approve": "approved",
    "review.reject": "rejected",
    "review.link_other": "linked",
}


def _decision_text(payload: dict[str, Any]) -> str:
    first = payload["changes"][0]
    verb = _DONE.get(payload["action"], payload["action"])
    text = f"{verb}: {first['external_id']} → “{first['runbook']}” (by {payload['actor']}"
    text += f", step {payload['step']})" if payload.get("step") is not None else ")"
    set_aside = [c for c in payload["changes"][1:] if c["after"] == "rejected"]
    if set_aside:
        text += "; automatic link set aside: " + ", ".join(f"“{c['runbook']}”" for c in set_aside)
    return text


def _step_json(step: UndoStep) -> dict[str, Any]:
    return {
        "step": step.step_id,
        "action": step.action,
        "actor": step.actor,
        "decided_at": step.decided_at.isoformat(),
        "tickets": list(step.ticket_labels),
        "runbook": step.runbook_title,
    }


def _step_text(step: UndoStep) -> str:
    when = f"{step.decided_at:%Y-%m-%d %H:%M} UTC"
    return f"{step.action} {step.subject} (step {step.step_id}, by {step.actor}, {when})"


def _entry_json(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "audit_id": entry.audit_id,
        "kind": entry.kind.value,
        "actor": entry.actor,
        "at": entry.at.isoformat(),
        "runbook_id": entry.runbook_id,
        "runbook": entry.runbook_title,
        "reason": entry.reason,
        "confidence": entry.confidence,
        "outcome": entry.outcome,
        "undoes": entry.undoes,
        "undone": entry.undone,
        "text": entry.describe(),
    }


def _entry_text(entry: HistoryEntry) -> str:
    return f"{entry.at:%Y-%m-%d %H:%M} UTC  #{entry.audit_id:<7} {entry.actor:<20} {entry.describe()}"
