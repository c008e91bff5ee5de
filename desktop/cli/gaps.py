"""``runbook-desk gaps --since DATE [--until DATE] [--report gaps.html] [--csv gaps.csv]``: the gap report,
headless (a scheduled job can mail the HTML every Monday).

Vectors come from the tenant's saved ticket index, so the model is loaded only for tickets missing from it.
Without ``--report``/``--csv`` the ranked gaps are printed (``--json``: the whole ranking).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.analytics.gap_report import export_report
from core.analytics.gaps import GapQuery, GapReport, analyse_gaps, engine_ticket_vectors
from core.errors import RunbookDeskError
from core.store.models import TicketKind
from core.store.repository import current_actor
from core.store.workspace import Workspace
from desktop.cli.common import EXIT_OK, parse_date, progress_for


def add_gaps_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    gaps = commands.add_parser(
        "gaps", parents=[common], help="find recurring tickets no runbook covers; HTML/CSV report"
    )
    gaps.add_argument("--since", required=True, metavar="DATE", help="first day (ISO 8601, inclusive)")
    gaps.add_argument("--until", metavar="DATE", help="end (ISO 8601, exclusive; default: now)")
    gaps.add_argument("--report", type=Path, metavar="FILE", help="write the self-contained HTML report here")
    gaps.add_argument("--csv", type=Path, metavar="FILE", help="write one row per gap here")
    gaps.add_argument("--source", action="append", default=[], help="only this source system (repeatable)")
    gaps.add_argument(
        "--kind", action="append", default=[], choices=[k.value for k in TicketKind], help="repeatable"
    )
    gaps.add_argument("--category", action="append", default=[], help="only this category (repeatable)")


def run_gaps_command(args: argparse.Namespace, workspace: Workspace) -> int:
    # Imported here: the matcher pulls numpy, faiss and the model stack.
    from core.matching.embedding_onnx import default_embedder  # the app's embedder: its index, its model id
    from core.matching.engine import open_engine

    query = GapQuery(
        since=parse_date("--since", args.since),
        until=parse_date("--until", args.until) if args.until else None,
        source_systems=frozenset(args.source),
        kinds=frozenset(TicketKind(k) for k in args.kind),
        categories=frozenset(args.category),
    )
    if query.until is not None and query.since is not None and query.until <= query.since:
        raise RunbookDeskError("--until must be after --since")
    sessions = workspace.session_factory(args.tenant)
    engine = open_engine(workspace, args.tenant, default_embedder())
    with progress_for(args) as progress:
        report = analyse_gaps(
            sessions,
            engine_ticket_vectors(engine, sessions),
            engine.embedder.model_id,
            query,
            progress=progress,
        )
    if args.report:
        export_report(sessions, report, args.report, "html", actor=current_actor())
    if args.csv:
        export_report(sessions, report, args.csv, "csv", actor=current_actor())
    _print_report(args, report)
    return EXIT_OK


def _print_report(args: argparse.Namespace, report: GapReport) -> None:
    if args.json:
        payload = {
            "in_range": report.in_range,
            "covered": report.covered,
            "uncovered": report.uncovered,
            "noise": report.noise,
            "not_analysed": report.not_analysed,
            "gaps": [
                {
                    "rank": c.rank,
                    "key": c.key,
                    "label": c.label,
                    "tickets": c.size,
                    "trend": c.trend.value,
                    "mttr_hours": c.mttr_hours,
                    "impact": c.impact,
                    "cumulative_share": c.cumulative_share,
                    "nearest_runbook": c.nearest_runbook.title if c.nearest_runbook else None,
                }
                for c in report.clusters
            ],
            "dismissed": [d.cluster.label for d in report.dismissed],
            "report": str(args.report) if args.report else None,
            "csv": str(args.csv) if args.csv else None,
        }
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    print(
        f"{report.in_range:,} tickets, {report.uncovered:,} uncovered: {len(report.clusters)} gaps, "
        f"{report.noise:,} in no gap, {len(report.dismissed)} dismissed"
    )
    for cluster in report.clusters:
        print(
            f"{cluster.rank:>3}. {cluster.label:<40} {cluster.size:>5} tickets  {cluster.trend.value:<8} "
            f"impact {cluster.impact:>10,.0f}  ({cluster.cumulative_share:.0%} cumulative)"
        )
    for path in (args.report, args.csv):
        if path:
            print(f"wrote {path}")
