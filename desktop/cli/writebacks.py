"""``runbook-desk writebacks ...``: approved runbook links posted to source tickets, headless.

::

    writebacks list [--status pending|written|failed] [--limit N]
    writebacks retry ID          put a failed write-back back in the queue (a fresh count of attempts)
    writebacks drain [--limit N] post the due write-backs now, through each ticket's connector

A write-back is queued when an analyst approves a runbook for a ticket that a ticketing connector with the
option ``write_back`` synced (:mod:`core.workflow.writeback`); the app posts them after decisions and on the
sync tick, and ``drain`` does the same from a script or a scheduler. Retries and drains are audited in the
name of the OS user (:func:`core.store.repository.current_actor`).

Connectors and the write path are imported inside the functions: ``runbook-desk tickets list`` should not
pay for them.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.store.workspace import Workspace
    from core.workflow.writeback import WritebackRow

STATUS_CHOICES = ("pending", "written", "failed")


def add_writebacks_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    writebacks = commands.add_parser("writebacks", help="approved runbooks posted to source tickets")
    actions = writebacks.add_subparsers(dest="action", metavar="ACTION", required=True)
    lister = actions.add_parser("list", parents=[common], help="write-backs, the latest approval first")
    lister.add_argument("--status", choices=STATUS_CHOICES, help="only write-backs in this state")
    lister.add_argument("--limit", type=int, default=50, help="at most this many (default: %(default)s)")
    retry = actions.add_parser("retry", parents=[common], help="queue a failed write-back again")
    retry.add_argument("id", type=int, metavar="ID", help="the write-back's id (`writebacks list`)")
    drain = actions.add_parser("drain", parents=[common], help="post the due write-backs now")
    drain.add_argument("--limit", type=int, default=50, help="at most this many (default: %(default)s)")


def run_writebacks_command(args: argparse.Namespace, workspace: Workspace) -> int:
    from core.store.models import WritebackStatus
    from core.store.repository import current_actor
    from core.workflow.writeback import list_writebacks, retry_writeback
    from desktop.cli.common import EXIT_OK, print_result

    sessions = workspace.session_factory(args.tenant)
    if args.action == "list":
        status = WritebackStatus(args.status) if args.status else None
        with sessions() as session:
            rows = list_writebacks(session, status=status, limit=args.limit)
        text = "\n".join(row_text(row) for row in rows) or "no write-backs"
        print_result(args, [row_json(row) for row in rows], text)
        return EXIT_OK
    if args.action == "retry":
        with sessions.begin() as session:
            row = retry_writeback(session, args.id, current_actor())
        print_result(args, row_json(row), f"queued again: {row_text(row)}")
        return EXIT_OK
    return _drain(args, workspace)


def _drain(args: argparse.Namespace, workspace: Workspace) -> int:
    import asyncio

    from connectors.secrets import install_secret_redaction
    from connectors.writes import drain_writebacks
    from core.store.repository import current_actor
    from desktop.cli.common import EXIT_ERROR, EXIT_OK, print_result, progress_for

    install_secret_redaction()
    sessions = workspace.session_factory(args.tenant)
    with progress_for(args) as progress:
        report = asyncio.run(
            drain_writebacks(sessions, limit=args.limit, actor=current_actor(), progress=progress)
        )
    payload = {"written": report.written, "failed": report.failed, "pending": report.pending}
    print_result(args, payload, report.headline())
    return EXIT_ERROR if report.failed else EXIT_OK


def row_text(row: WritebackRow) -> str:
    """One line: id, state, where, what; a failure's error follows on its own indented line."""
    state = row.status.value
    if row.attempts:
        state += f" ×{row.attempts}"
    line = f"{row.id:>5} {state:<12} {row.connector_name} {row.ticket_external_id} ← “{row.runbook_title}”"
    line += f" (approved by {row.approved_by})"
    if row.remote_id:
        line += f" note {row.remote_id}"
    if row.last_error and row.status.value != "written":
        line += f"\n      {row.last_error}"
    return line


def row_json(row: WritebackRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "ticket_id": row.ticket_id,
        "ticket": row.ticket_external_id,
        "runbook_id": row.runbook_id,
        "runbook": row.runbook_title,
        "connector": row.connector_name,
        "status": row.status.value,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "written_at": row.written_at.isoformat() if row.written_at else None,
        "remote_id": row.remote_id,
        "approved_by": row.approved_by,
        "approved_at": row.approved_at.isoformat(),
        "confidence": row.confidence,
    }
