"""``runbook-desk gaps``: the gap report and the runbook generation queue, headless.

``gaps --since DATE [--until DATE] [--report gaps.html] [--csv gaps.csv]``: the ranked gaps (a scheduled job
can mail the HTML every Monday). It only reads: it never generates a draft.

``gaps queue [--since DATE] [--until DATE] [--generate] [--approve KEY ...] [--json]``: every gap with its
procedure confidence and place in the generation queue (:mod:`core.analytics.generation_queue`): generated
automatically and awaiting approval (> 70 %), waiting for an analyst to approve generation (50-70 %), or for
manual authoring (< 50 %). ``--generate`` generates the drafts of the first group that have none yet (the
headless twin of what the app does after each gap analysis); ``--approve KEY`` is an analyst approving
the generation of one gap (its key is in the listing). Without ``--since`` the queue looks at every ticket.

Vectors come from the tenant's saved ticket index, so the model is loaded only for tickets missing from it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import RunbookDeskError
from core.store.models import TicketKind
from core.store.repository import current_actor
from core.store.workspace import Workspace
from desktop.cli.common import EXIT_OK, parse_date, progress_for

if TYPE_CHECKING:  # numpy and the model stack load only when a gaps command runs
    from core.analytics.gaps import GapQuery, GapReport
    from core.analytics.generation_queue import GenerationQueue


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", metavar="DATE", help="first day (ISO 8601, inclusive)")
    parser.add_argument("--until", metavar="DATE", help="end (ISO 8601, exclusive; default: now)")
    parser.add_argument("--source", action="append", default=[], help="only this source system (repeatable)")
    parser.add_argument(
        "--kind", action="append", default=[], choices=[k.value for k in TicketKind], help="repeatable"
    )
    parser.add_argument("--category", action="append", default=[], help="only this category (repeatable)")


def add_gaps_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    gaps = commands.add_parser(
        "gaps",
        parents=[common],
        help="find recurring tickets no runbook covers; HTML/CSV report; the runbook generation queue",
    )
    _add_filters(gaps)  # --since is required without an action
    gaps.add_argument("--report", type=Path, metavar="FILE", help="write the self-contained HTML report here")
    gaps.add_argument("--csv", type=Path, metavar="FILE", help="write one row per gap here")
    gaps.set_defaults(gaps_parser=gaps)
    actions = gaps.add_subparsers(dest="gaps_action", metavar="ACTION")
    queue = actions.add_parser(
        "queue",
        parents=[common],
        help="which gaps become draft runbooks: automatically, on approval, or by hand",
    )
    _add_filters(queue)
    queue.add_argument(
        "--generate",
        action="store_true",
        help="generate the drafts of the gaps above 70 %% procedure confidence that have none yet",
    )
    queue.add_argument(
        "--approve",
        action="append",
        default=[],
        metavar="KEY",
        help="approve generating the draft of this gap (its key from the listing; repeatable)",
    )


def _query(args: argparse.Namespace) -> GapQuery:
    from core.analytics.gaps import GapQuery

    query = GapQuery(
        since=parse_date("--since", args.since) if args.since else None,
        until=parse_date("--until", args.until) if args.until else None,
        source_systems=frozenset(args.source),
        kinds=frozenset(TicketKind(k) for k in args.kind),
        categories=frozenset(args.category),
    )
    if query.until is not None and query.since is not None and query.until <= query.since:
        raise RunbookDeskError("--until must be after --since")
    return query


def _analyse(args: argparse.Namespace, workspace: Workspace) -> GapReport:
    # Imported here: the matcher pulls numpy, faiss and the model stack.
    from core.analytics.gaps import analyse_gaps, engine_ticket_vectors
    from core.matching.embedding_onnx import default_embedder  # the app's embedder: its index, its model id
    from core.matching.engine import open_engine

    query = _query(args)
    sessions = workspace.session_factory(args.tenant)
    engine = open_engine(workspace, args.tenant, default_embedder())
    with progress_for(args) as progress:
        return analyse_gaps(
            sessions,
            engine_ticket_vectors(engine, sessions),
            engine.embedder.model_id,
            query,
            progress=progress,
            article_search=engine,
        )


def run_gaps_command(args: argparse.Namespace, workspace: Workspace) -> int:
    if getattr(args, "gaps_action", None) == "queue":
        return _run_queue(args, workspace)
    if not args.since:
        args.gaps_parser.error("the following arguments are required: --since")
    from core.analytics.gap_report import export_report

    report = _analyse(args, workspace)
    sessions = workspace.session_factory(args.tenant)
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
                    "tickets_per_period": list(c.trend_counts),
                    "mttr_hours": c.mttr_hours,
                    "impact": c.impact,
                    "cumulative_share": c.cumulative_share,
                    "nearest_runbook": c.nearest_runbook.title if c.nearest_runbook else None,
                    "covered_by_article": c.covering_article.words if c.covering_article else None,
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
            + (f"  {cluster.covering_article.words}" if cluster.covering_article else "")
        )
    for path in (args.report, args.csv):
        if path:
            print(f"wrote {path}")


# --- The generation queue ----------------------------------------------------------------------------------


def _run_queue(args: argparse.Namespace, workspace: Workspace) -> int:
    from core.analytics.generation_queue import build_queue, generate_automatic, generate_draft

    report = _analyse(args, workspace)
    sessions = workspace.session_factory(args.tenant)
    keys = {cluster.key for cluster in report.clusters}
    unknown = [key for key in args.approve if key not in keys]
    if unknown:
        raise RunbookDeskError(f"--approve {unknown[0]}: no such gap in this range (see `gaps queue`)")
    approved: list[int] = []
    for key in args.approve:
        with sessions.begin() as session:
            draft, created = generate_draft(
                session, report.cluster(key), actor=current_actor(), reason="approved by an analyst"
            )
        if created:
            approved.append(draft.runbook_id)
    if args.generate:
        with progress_for(args) as progress:
            queue = generate_automatic(sessions, report.clusters, actor=current_actor(), progress=progress)
    else:
        with sessions() as session:
            queue = build_queue(session, report.clusters)
    _print_queue(args, queue, [*approved, *queue.generated])
    return EXIT_OK


def _queue_json(queue: GenerationQueue, generated: list[int]) -> dict[str, Any]:
    return {
        "counts": {bucket.value: count for bucket, count in queue.counts().items()},
        "generated": generated,
        "gaps": [
            {
                "key": entry.key,
                "label": entry.cluster.label,
                "tickets": entry.cluster.size,
                "bucket": entry.bucket.value,
                "confidence": round(entry.confidence.value, 4),
                "majority": round(entry.confidence.majority, 4),
                "cohesion": round(entry.confidence.cohesion, 4),
                "documented": entry.confidence.documented,
                "agreeing": entry.confidence.agreeing,
                "why": entry.confidence.explain(),
                "draft": (
                    {
                        "runbook_id": entry.draft.runbook_id,
                        "title": entry.draft.title,
                        "status": entry.draft.status.value,
                    }
                    if entry.draft
                    else None
                ),
            }
            for entry in queue.entries
        ],
    }


def _print_queue(args: argparse.Namespace, queue: GenerationQueue, generated: list[int]) -> None:
    from core.analytics.generation_queue import Bucket

    if args.json:
        print(json.dumps(_queue_json(queue, generated), indent=2, ensure_ascii=False))
        return
    counts = queue.counts()
    print(
        f"Generation queue: {counts[Bucket.AUTOMATIC]} generated automatically (awaiting approval), "
        f"{counts[Bucket.PROMPT]} to approve, {counts[Bucket.MANUAL]} for manual authoring"
        + (f"; {len(generated)} drafts generated now" if generated else "")
    )
    headings = {
        Bucket.AUTOMATIC: "Generated automatically, awaiting approval (procedure confidence above 70 %)",
        Bucket.PROMPT: "Approve generation (50-70 %): gaps queue --approve KEY",
        Bucket.MANUAL: "Manual authoring (below 50 %)",
    }
    for bucket in Bucket:
        entries = queue.in_bucket(bucket)
        if not entries:
            continue
        print(f"\n{headings[bucket]}:")
        for entry in entries:
            draft = entry.draft
            state = (
                f"draft #{draft.runbook_id} “{draft.title}” ({draft.status.value.replace('_', ' ')})"
                if draft
                else "no draft yet"
            )
            print(
                f"  {entry.key}  {entry.cluster.label:<40} {entry.cluster.size:>5} tickets  "
                f"{entry.confidence.value:>4.0%}  {state}"
            )
            print(f"      {entry.confidence.explain()}")
