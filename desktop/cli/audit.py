"""``runbook-desk audit ...``: check the audit trail's hash chain, and hand the trail to a SIEM.

::

    audit verify [--tenant SLUG | --all]                 exit 0: every chain intact; 1: the first broken link
    audit export --output FILE|- [--since DATE] [--tenant SLUG | --all]      JSON lines, oldest first

Both only read, so they also work on a SQLite workspace the desktop app holds open (read-only, like
``workspace info``). A deleted tenant's trail stays (the trail outlives its tenant): ``--tenant`` finds it by
the slug its rows carry, ``--all`` includes it. On a team database a login sees its own tenants' trails.
An export that could be audited (a writable workspace, a tenant that still exists) is: who took a copy of
the trail, and how much, is itself worth knowing.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from core.errors import RunbookDeskError, TenantError, WorkspaceLockedError

if TYPE_CHECKING:
    from core.store.workspace import Workspace

EXPORT_ACTION = "export.audit_jsonl"


def add_audit_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    audit = commands.add_parser("audit", help="the tamper-evident audit trail: verify, export")
    actions = audit.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = actions.add_parser(
        "verify", parents=[common], help="check the hash chain; name the first broken link"
    )
    verify.add_argument("--all", action="store_true", help="every tenant's chain (deleted tenants' too)")
    export = actions.add_parser("export", parents=[common], help="write the trail as JSON lines (for a SIEM)")
    export.add_argument("--output", required=True, metavar="FILE", help="the file to write, or - for stdout")
    export.add_argument("--since", metavar="DATE", help="only rows that occurred at or after DATE (ISO 8601)")
    export.add_argument("--all", action="store_true", help="every tenant's rows (deleted tenants' too)")


def run_audit_command(args: argparse.Namespace) -> int:
    workspace, writable = _open_for_reading(args.workspace)
    with workspace:
        if args.action == "verify":
            return _verify(args, workspace)
        return _export(args, workspace, writable)


def _open_for_reading(workspace_arg: str | None) -> tuple[Workspace, bool]:
    """The workspace and True, or, when the app holds its SQLite file, a read-only view of it and False."""
    from core.store.workspace import Workspace, resolve_workspace_dir, workspace_database_url

    root = resolve_workspace_dir(workspace_arg)
    try:
        return Workspace.open(root), True
    except WorkspaceLockedError:
        if workspace_database_url(root) is not None:
            raise  # a team database has no read-only file view; the lock's message says who holds it
        return Workspace.open_read_only(root), False


def _tenants(args: argparse.Namespace, workspace: Workspace) -> list[tuple[int, str]]:
    """The chains to read: all of them, or the one ``--tenant`` names (alive, or by its rows' slug)."""
    from core.store.audit_chain import chain_tenants

    with workspace.admin_session() as session:
        chains = chain_tenants(session)
    if args.all:
        return chains
    alive = {row.slug: row.id for row in workspace.tenants()}
    if args.tenant in alive:
        return [(alive[args.tenant], args.tenant)]
    found = [(tenant_id, slug) for tenant_id, slug in chains if slug == args.tenant]
    if not found:
        raise TenantError(f"no tenant and no audit trail named {args.tenant!r} in workspace {workspace.root}")
    return found


def _verify(args: argparse.Namespace, workspace: Workspace) -> int:
    from core.store.audit_chain import verify
    from desktop.cli.common import EXIT_ERROR, EXIT_OK, print_result

    with workspace.admin_session() as session:
        reports = [verify(session, tenant_id) for tenant_id, _slug in _tenants(args, workspace)]
    print_result(
        args,
        [report.as_dict() for report in reports],
        "\n".join(report.headline() for report in reports) or "no audit trail yet",
    )
    return EXIT_OK if all(report.ok for report in reports) else EXIT_ERROR


def _export(args: argparse.Namespace, workspace: Workspace, writable: bool) -> int:
    from core.store.audit_chain import export_jsonl
    from desktop.cli.common import EXIT_OK, parse_date

    since = parse_date("--since", args.since) if args.since else None
    tenants = _tenants(args, workspace)
    written: dict[str, int] = {}
    with ExitStack() as stack:
        stream: TextIO = sys.stdout if args.output == "-" else stack.enter_context(_open_output(args.output))
        with workspace.admin_session() as session:
            for tenant_id, slug in tenants:
                written[slug] = export_jsonl(session, stream, since=since, tenant_id=tenant_id)
    if writable:  # a read-only view (the app holds the file) may write nothing beside the app
        _audit_export(args, workspace, written)
    where = "stdout" if args.output == "-" else args.output
    # With --output - the rows are stdout: the summary goes to stderr, so a pipe gets only JSON lines.
    print(
        f"exported {sum(written.values())} audit rows of {', '.join(written) or 'no tenant'} to {where}",
        file=sys.stderr if args.output == "-" else sys.stdout,
    )
    return EXIT_OK


def _open_output(path: str) -> TextIO:
    try:
        return Path(path).open("w", encoding="utf-8", newline="\n")
    except OSError as exc:
        raise RunbookDeskError(f"--output {path}: cannot write it: {exc.strerror}") from exc


def _audit_export(args: argparse.Namespace, workspace: Workspace, written: dict[str, int]) -> None:
    """One row per exported tenant that still exists, after the export (it is not part of the file)."""
    from core.store.repository import current_actor, record_audit

    alive = {row.slug for row in workspace.tenants()}
    for slug, rows in written.items():
        if slug not in alive:
            continue
        with workspace.session_factory(slug).begin() as session:
            record_audit(
                session,
                actor=current_actor(),
                action=EXPORT_ACTION,
                entity_type="audit_trail",
                entity_id=None,
                after={
                    "rows": rows,
                    "since": args.since,
                    "output": "stdout" if args.output == "-" else "file",
                },
            )
