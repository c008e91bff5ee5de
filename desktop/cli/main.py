"""``runbook-desk``: no arguments opens the desktop app; subcommands work headless.

Exit codes (:mod:`desktop.cli.common`): 0 success, 1 error (one line on stderr), 2 usage error, 4 import
finished but some rows were rejected (the rows are listed on stderr, or in the JSON output), 130 interrupted.
Long work (imports, analysis, gaps) shows its progress on stderr when that is a terminal, or with
``--progress``; never with ``--json``.

Qt is imported only when the window is opened, so the headless commands start fast and run with no display.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import RunbookDeskError, WorkspaceLockedError
from core.store.models import RunbookStatus
from core.store.repository import count_tickets, list_runbooks, list_tickets
from core.store.workspace import (
    DEFAULT_TENANT,
    Workspace,
    is_locked,
    last_app_workspace,
    read_lock_holder,
    resolve_workspace_dir,
)
from desktop.cli.alerts import add_alerts_parser, run_alerts_command
from desktop.cli.audit import add_audit_parser, run_audit_command
from desktop.cli.common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REJECTED_ROWS,
    add_progress_option,
    parse_date,
    print_result,
    progress_for,
    warn_if_not_app_workspace,
)
from desktop.cli.connectors import add_connectors_parser, run_connectors_command
from desktop.cli.gaps import add_gaps_parser, run_gaps_command
from desktop.cli.knowledge import add_knowledge_parser, run_knowledge_command
from desktop.cli.learning import add_learning_parsers, run_learning_command
from desktop.cli.log_file import install_cli_log, report_internal_error
from desktop.cli.metrics import add_metrics_parser, run_metrics_command
from desktop.cli.review import add_review_parser, run_review_command
from desktop.cli.team import add_team_parser, run_team_command
from desktop.cli.writebacks import add_writebacks_parser, run_writebacks_command

if TYPE_CHECKING:  # the importers pull the readers, YAML and Markdown: imported by `import` alone
    from core.importing import ImportSummary


def build_parser() -> argparse.ArgumentParser:
    # SUPPRESS: an option given before the command must not be reset by the subcommand's default.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--workspace",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="workspace folder (default: $RUNBOOK_DESK_WORKSPACE or the user data folder)",
    )
    common.add_argument(
        "--tenant", default=argparse.SUPPRESS, help=f"tenant slug (default: {DEFAULT_TENANT})"
    )
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )
    common.add_argument(
        "--database",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="team mode: the team's PostgreSQL database, postgresql://login@host:5432/db, for this run "
        "(default: the workspace's team.json, else its SQLite file); never a password in it",
    )
    add_progress_option(common)

    parser = argparse.ArgumentParser(
        prog="runbook-desk",
        description="Match IT tickets to runbooks offline. With no command, opens the desktop app.",
        parents=[common],
    )
    parser.add_argument("--demo", action="store_true", help="open the built-in demo workspace")
    parser.add_argument(
        "--self-test", action="store_true", help="check this installation in a temporary workspace and exit"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    importing = commands.add_parser("import", help="import tickets or runbooks from files")
    what = importing.add_subparsers(dest="what", metavar="WHAT", required=True)
    tickets = what.add_parser("tickets", parents=[common], help="tickets from CSV, JSON or JSONL")
    tickets.add_argument("file", type=Path)
    tickets.add_argument("--format", choices=("csv", "json", "jsonl"), help="default: from the extension")
    tickets.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="take FIELD from COLUMN (repeatable), e.g. --map title=Subject",
    )
    tickets.add_argument("--source-system", help="source system name when the file has none")
    tickets.add_argument(
        "--instance",
        metavar="HOST",
        help="the instance the file was exported from (host or URL); needed when a system has several",
    )
    tickets.add_argument("--timezone", default="UTC", help="time zone of times without an offset (IANA name)")
    runbooks = what.add_parser(
        "runbooks", parents=[common], help="runbooks from a Markdown folder or CSV/JSON"
    )
    runbooks.add_argument("path", type=Path)
    runbooks.add_argument(
        "--status",
        choices=[s.value for s in RunbookStatus],
        default="approved",
        help="status of runbooks that do not state one (default: %(default)s)",
    )

    for name, help_text in (("tickets", "list tickets"), ("runbooks", "list runbooks")):
        group = commands.add_parser(name, help=help_text)
        sub = group.add_subparsers(dest="action", metavar="ACTION", required=True)
        lister = sub.add_parser("list", parents=[common], help=help_text)
        lister.add_argument("--search", help="text in the title or body")
        lister.add_argument("--limit", type=int, default=50)
        if name == "runbooks":
            lister.add_argument("--status", choices=[s.value for s in RunbookStatus])

    analyze = commands.add_parser("analyze", parents=[common], help="match tickets to runbooks and decide")
    scope = analyze.add_mutually_exclusive_group()
    scope.add_argument("--all", action="store_true", help="re-analyse every ticket, not only new or changed")
    scope.add_argument("--since", metavar="DATE", help="only tickets updated since DATE (ISO 8601)")
    search = commands.add_parser("search", parents=[common], help="rank runbooks for a text")
    search.add_argument("text")
    search.add_argument("-k", type=int, default=5, help="how many runbooks (default: %(default)s)")
    index = commands.add_parser("index", help="the search indexes")
    index_sub = index.add_subparsers(dest="action", metavar="ACTION", required=True)
    index_sub.add_parser("rebuild", parents=[common], help="rebuild the indexes from the store")
    index_sub.add_parser("check", parents=[common], help="compare the indexes with the store")

    ws = commands.add_parser("workspace", help="create or describe a workspace")
    ws_sub = ws.add_subparsers(dest="action", metavar="ACTION", required=True)
    ws_sub.add_parser("init", parents=[common], help="create the workspace (and the tenant) if missing")
    ws_sub.add_parser("info", parents=[common], help="where the workspace is and what it holds")
    add_alerts_parser(commands, common)
    add_audit_parser(commands, common)
    add_connectors_parser(commands, common)
    add_gaps_parser(commands, common)
    add_knowledge_parser(commands, common)
    add_metrics_parser(commands, common)
    add_review_parser(commands, common)
    add_team_parser(commands, common)
    add_writebacks_parser(commands, common)
    add_learning_parsers(commands, common)
    return parser


def _parse_mapping(pairs: Sequence[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise RunbookDeskError(f"--map {pair}: expected FIELD=COLUMN")
        mapping[field.strip()] = column.strip()
    return mapping


def _report_import(args: argparse.Namespace, summary: ImportSummary) -> int:
    print_result(args, summary.as_dict(), summary.headline())
    if not args.json:
        for row in summary.rejected:
            print(f"rejected: {row}", file=sys.stderr)
        if summary.rejected_count > len(summary.rejected):
            print(f"... and {summary.rejected_count - len(summary.rejected)} more", file=sys.stderr)
    return EXIT_REJECTED_ROWS if summary.rejected_count else EXIT_OK


def run_command(args: argparse.Namespace) -> int:
    if args.command == "connectors":
        return run_connectors_command(args)
    if args.command == "team":
        return run_team_command(args)
    if args.command == "audit":  # opens the workspace itself: read-only when the app holds it
        return run_audit_command(args)
    if args.command == "workspace" and args.action == "init":
        with Workspace.open(args.workspace, database_url=args.database) as workspace:
            tenant = workspace.ensure_tenant(args.tenant)
            print_result(
                args,
                {"workspace": str(workspace.root), "tenant": tenant.slug},
                f"workspace {workspace.root} ready (tenant {tenant.slug})",
            )
        return EXIT_OK
    if args.command == "workspace" and args.action == "info":
        return _workspace_info(args)
    with Workspace.open(args.workspace, database_url=args.database) as workspace:
        sessions = workspace.session_factory(args.tenant)
        warn_if_not_app_workspace(workspace, sessions)
        if args.command == "import":
            from core.importing import import_runbooks, import_tickets

            if args.what == "tickets":
                try:
                    tz = ZoneInfo(args.timezone)
                except (ZoneInfoNotFoundError, ValueError) as exc:
                    raise RunbookDeskError(f"--timezone {args.timezone}: unknown time zone") from exc
                with progress_for(args) as progress:
                    summary = import_tickets(
                        sessions,
                        args.file,
                        fmt=args.format,
                        mapping=_parse_mapping(args.map),
                        source_system=args.source_system,
                        source_tz=tz,
                        instance=args.instance,
                        progress=progress,
                    )
            else:
                with progress_for(args) as progress:
                    summary = import_runbooks(
                        sessions, args.path, default_status=RunbookStatus(args.status), progress=progress
                    )
            return _report_import(args, summary)
        if args.command == "tickets":
            with sessions() as session:
                rows = list_tickets(session, search=args.search, limit=args.limit)
            print_result(
                args,
                [_row_dict(r) for r in rows],
                "\n".join(
                    f"{r.external_id:<14} {r.severity or '-':<9} {r.status or '-':<12} {r.title}"
                    for r in rows
                )
                or "no tickets",
            )
            return EXIT_OK
        if args.command == "runbooks":
            status = RunbookStatus(args.status) if args.status else None
            with sessions() as session:
                runbook_rows = list_runbooks(session, status=status, search=args.search)[: args.limit]
            print_result(
                args,
                [_row_dict(r) for r in runbook_rows],
                "\n".join(f"{r.id:>5} {r.status:<10} {r.title}" for r in runbook_rows) or "no runbooks",
            )
            return EXIT_OK
        if args.command == "gaps":
            return run_gaps_command(args, workspace)
        if args.command == "knowledge":
            return run_knowledge_command(args, workspace)
        if args.command == "metrics":
            return run_metrics_command(args, workspace)
        if args.command == "review":
            return run_review_command(args, workspace)
        if args.command == "writebacks":
            return run_writebacks_command(args, workspace)
        if args.command == "alerts":
            return run_alerts_command(args, workspace)
        if args.command in ("calibration", "thresholds"):
            return run_learning_command(args, workspace)
        if args.command in ("analyze", "search", "index"):
            return run_matching_command(args, workspace)
    raise RunbookDeskError(f"unknown command {args.command}")


def _workspace_info(args: argparse.Namespace) -> int:
    """Where the workspace is, what it holds and who has it open; readable while the app holds it."""
    root = resolve_workspace_dir(args.workspace)
    try:
        workspace = Workspace.open(root, database_url=args.database)
        holder = None  # this command took the lock, so nobody else holds it
    except WorkspaceLockedError:
        workspace = Workspace.open_read_only(root)
        holder = read_lock_holder(root) if is_locked(root) else None
    with workspace:
        sessions = workspace.session_factory(args.tenant)
        warn_if_not_app_workspace(workspace, sessions)
        with sessions() as session:
            tickets = count_tickets(session)
            runbooks = len(list_runbooks(session))
        tenants = [t.slug for t in workspace.tenants()]
    app_root = last_app_workspace()
    info = {
        "workspace": str(workspace.root),
        "database": (
            workspace.engine.url.render_as_string(hide_password=True)
            if workspace.is_team
            else str(workspace.db_path)
        ),
        "tenants": tenants,
        "tenant": args.tenant,
        "tickets": tickets,
        "runbooks": runbooks,
        "lock_holder": dataclasses.asdict(holder) if holder is not None else None,
        "app_workspace": str(app_root) if app_root is not None else None,
    }
    text = {
        **info,
        "lock_holder": holder.describe() if holder is not None else "none (not open elsewhere)",
        "app_workspace": info["app_workspace"] or "none (the desktop app has not been started)",
    }
    print_result(args, info, "\n".join(f"{k.replace('_', ' ')}: {v}" for k, v in text.items()))
    return EXIT_OK


def run_matching_command(args: argparse.Namespace, workspace: Workspace) -> int:
    # Imported here: the matcher pulls numpy and faiss, which listing tickets does not need.
    from core.matching.analysis import analyze_pending
    from core.matching.embedding_onnx import default_embedder
    from core.matching.engine import open_engine

    engine = open_engine(workspace, args.tenant, default_embedder())
    if args.command == "index" and args.action == "check":
        expected = engine.expected_ids()
        index_report = {
            name: {
                "indexed": len(index),
                "missing": len(expected[name] - index.ids()),
                "extra": len(index.ids() - expected[name]),
            }
            for name, index in (
                ("runbook_sections", engine.runbook_index),
                ("tickets", engine.ticket_index),
                ("article_sections", engine.articles.index),
            )
        }
        ok = all(r["missing"] == 0 and r["extra"] == 0 for r in index_report.values())
        print_result(
            args,
            index_report | {"ok": ok},
            "\n".join(
                f"{name}: {r['indexed']} indexed, {r['missing']} missing, {r['extra']} extra"
                for name, r in index_report.items()
            ),
        )
        return EXIT_OK if ok else EXIT_ERROR
    if args.command == "index":
        engine.reset_indexes()
    # A first refresh embeds every runbook section and ticket: minutes on a large store, so it shows progress.
    with progress_for(args) as progress:
        refresh = engine.refresh(progress)
    if args.command == "index":
        print_result(
            args,
            {
                "runbook_sections": refresh.runbook_index,
                "tickets": refresh.ticket_index,
                "article_sections": refresh.article_index,
            },
            f"rebuilt: runbook sections {refresh.runbook_index}, tickets {refresh.ticket_index}, "
            f"article sections {refresh.article_index}",
        )
        return EXIT_OK
    if args.command == "search":
        matches = engine.search(args.text, args.k)
        print_result(
            args,
            [_row_dict(m) for m in matches],
            "\n".join(f"{m.confidence:5.2f}  {m.title}  [{', '.join(m.shared_terms[:6])}]" for m in matches)
            or "no approved runbooks match",
        )
        return EXIT_OK
    since = parse_date("--since", args.since) if args.since else None
    with progress_for(args) as progress:
        report = analyze_pending(
            engine,
            workspace.session_factory(args.tenant),
            since=since,
            reanalyse_all=args.all,
            progress=progress,
        )
    summary = (
        f"analysed {report.analysed} tickets ({report.skipped_current} already current): "
        f"{report.linked} linked, {report.flagged} to review, {report.drafts} need a runbook "
        f"in {report.elapsed_s:.1f} s"
    )
    if report.rematch is not None:  # runbooks approved, edited, imported or retired since the last run
        summary += f"\n{report.rematch.headline()}"
    print_result(args, dataclasses.asdict(report), summary)
    return EXIT_OK


def _row_dict(row: Any) -> dict[str, Any]:
    return dataclasses.asdict(row)


class OpenWindow(Protocol):
    """Opens the desktop window (``desktop.launcher`` hands it in; this package never imports Qt)."""

    def __call__(
        self, workspace_arg: str | None, tenant: str, *, demo: bool, database_url: str | None = None
    ) -> int: ...


def main(
    argv: Sequence[str] | None = None,
    *,
    open_window: OpenWindow | None = None,
    self_test: Callable[[], int] | None = None,
) -> int:
    """Run one headless command. ``desktop.launcher`` hands in what needs Qt: the window and the self-test
    (which checks the Qt plugins too); without them those two report that this build has none."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # Not parser.set_defaults: parent-parser actions are shared, so that would reset them in subcommands too.
    for name, default in (
        ("workspace", None),
        ("database", None),
        ("tenant", DEFAULT_TENANT),
        ("json", False),
        ("progress", False),
    ):
        if not hasattr(args, name):
            setattr(args, name, default)
    log_file = install_cli_log(args)
    try:
        if args.self_test:
            if self_test is None:
                raise RunbookDeskError("this build has no self-test: run it through `runbook-desk`")
            return self_test()
        if args.command is None:
            if open_window is None:
                raise RunbookDeskError("this build has no desktop window: name a command (see --help)")
            return open_window(args.workspace, args.tenant, demo=args.demo, database_url=args.database)
        return run_command(args)
    except RunbookDeskError as exc:
        print(f"runbook-desk: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("runbook-desk: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `runbook-desk tickets list | head`: the reader left; not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    # The boundary where a bug becomes one line on stderr and a traceback in the log file it names.
    except Exception as exc:  # noqa: BLE001
        report_internal_error(exc, log_file, args.command)
        return EXIT_ERROR
    finally:
        log_file.uninstall()


if __name__ == "__main__":
    sys.exit(main())
