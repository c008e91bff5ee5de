"""``runbook-desk calibration status|refit|revert`` and ``runbook-desk thresholds suggest [--apply]``: the
learning loop's two tenant-level levers, headless (the same core calls as File > Settings > Learning).

* ``calibration status``: the calibration in use, the reviewed decisions counted toward a refit, every
  fitted version with its held-out figures and note, and how many analyses predate the calibration in use.
* ``calibration refit``: refit from the reviewed decisions; adopted only when it beats the calibration in
  use on held-out log-loss and calibration error (:mod:`core.matching.tenant_calibration`). A refit refused
  for too few decisions is an error (exit 1); a refit fitted but not adopted is a result (exit 0,
  ``"adopted": false``).
* ``calibration revert``: back to the previous adopted version, or the shipped calibration.
* ``thresholds suggest [--precision 0.9] [--min-reviewed N] [--apply]``: the precision/coverage curve and
  the lowest auto-link threshold keeping that precision (:mod:`core.analytics.thresholds`); ``--apply``
  stores it (audited), and is an error when the advisor refused to suggest.

After a refit that is adopted, or a revert, the tickets analysed with the old calibration are re-analysed at
once through the same engine (``--no-analyse`` leaves them to the next ``runbook-desk analyze``, which picks
them up as stale). After ``--apply`` every analysis records old thresholds; the next ``analyze`` re-decides
them (printed as a hint, to keep ``--apply`` free of the model).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING, Any

from core.store.repository import current_actor
from core.store.workspace import Workspace
from desktop.cli.common import EXIT_OK, print_result, progress_for

if TYPE_CHECKING:  # the engine pulls numpy, faiss and the model stack; imported when a command needs it
    from core.analytics.thresholds import ThresholdAdvice
    from core.matching.analysis import BatchReport
    from core.matching.engine import MatchingEngine
    from core.matching.tenant_calibration import CalibrationStatus, VersionRow

CURVE_STEP = 5  # the text curve shows every 5th grid threshold (0.05, 0.10, ...); --json has them all


def add_learning_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    calibration = commands.add_parser(
        "calibration", help="the tenant's own calibration, refitted from its reviewed decisions"
    )
    calibration_sub = calibration.add_subparsers(dest="action", metavar="ACTION", required=True)
    calibration_sub.add_parser(
        "status", parents=[common], help="the calibration in use, the decisions so far, every version"
    )
    for action, help_text in (
        ("refit", "refit from the reviewed decisions; adopted only when it is better on held-out decisions"),
        ("revert", "stop using the active version: back to the previous one, or the shipped calibration"),
    ):
        parser = calibration_sub.add_parser(action, parents=[common], help=help_text)
        parser.add_argument(
            "--no-analyse",
            action="store_true",
            help="do not re-analyse now (the next `runbook-desk analyze` picks the tickets up)",
        )

    thresholds = commands.add_parser("thresholds", help="the auto-link threshold advisor")
    thresholds_sub = thresholds.add_subparsers(dest="action", metavar="ACTION", required=True)
    suggest = thresholds_sub.add_parser(
        "suggest",
        parents=[common],
        help="precision/coverage of the auto-link threshold and the lowest one keeping the target precision",
    )
    suggest.add_argument(
        "--precision",
        type=_target_precision,
        metavar="P",
        help="target auto-link precision, 0-1 (default: the tenant's setting, 0.90)",
    )
    suggest.add_argument(
        "--min-reviewed",
        type=_positive_int,
        metavar="N",
        help="reviewed tickets a threshold needs at or above it (default: the tenant's setting, 30)",
    )
    suggest.add_argument("--apply", action="store_true", help="store the suggested threshold (audited)")


def _target_precision(value: str) -> float:
    """``--precision``: a share above 0 and at most 1 (a bad one is a usage error, exit 2)."""
    try:
        target = float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from exc
    if not 0.0 < target <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not above 0 and at most 1 (e.g. 0.9)")
    return target


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from exc
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return number


def run_learning_command(args: argparse.Namespace, workspace: Workspace) -> int:
    if args.command == "thresholds":
        return _suggest_thresholds(args, workspace)
    if args.action == "status":
        with workspace.session_factory(args.tenant)() as session:
            from core.matching.tenant_calibration import calibration_status

            status = calibration_status(session)
        print_result(args, status.as_dict(), status_text(status))
        return EXIT_OK
    if args.action == "refit":
        return _refit(args, workspace)
    return _revert(args, workspace)


# --- calibration -------------------------------------------------------------------------------------------


def _open_engine(workspace: Workspace, tenant: str) -> MatchingEngine:
    # Imported here: the matcher pulls numpy, faiss and the model stack, which `status` does not need.
    from core.matching.embedding_onnx import default_embedder
    from core.matching.engine import open_engine

    return open_engine(workspace, tenant, default_embedder())


def _reanalyse(args: argparse.Namespace, workspace: Workspace, engine: MatchingEngine) -> BatchReport:
    """Re-decide the tickets analysed with the old calibration (they are stale; nothing else is)."""
    from core.matching.analysis import analyze_pending

    with progress_for(args) as progress:
        return analyze_pending(engine, workspace.session_factory(args.tenant), progress=progress)


def _analysis_text(report: BatchReport | None) -> str:
    if report is None:
        return "Not re-analysed: the next `runbook-desk analyze` re-decides the tickets."
    return (
        f"Re-analysed {report.analysed:,} tickets with it: {report.linked:,} linked, {report.flagged:,} to "
        f"review, {report.drafts:,} need a runbook."
    )


def _refit(args: argparse.Namespace, workspace: Workspace) -> int:
    from core.matching.tenant_calibration import refit_calibration

    engine = _open_engine(workspace, args.tenant)
    sessions = workspace.session_factory(args.tenant)
    with progress_for(args) as progress:
        engine.refresh(progress)  # a decision on a ticket not indexed yet cannot be scored
        outcome = refit_calibration(engine, sessions, current_actor(), progress=progress)
    report = _reanalyse(args, workspace, engine) if outcome.adopted and not args.no_analyse else None
    lines = [f"Version {outcome.version.id}: {outcome.version.note}"]
    if outcome.skipped_pairs:
        lines.append(f"{outcome.skipped_pairs:,} decisions were left out: their ticket is not indexed yet.")
    if outcome.adopted:
        lines.append(_analysis_text(report))
    payload = {
        "version": outcome.version.as_dict(),
        "adopted": outcome.adopted,
        "skipped_decisions": outcome.skipped_pairs,
        "analysis": dataclasses.asdict(report) if report else None,
    }
    print_result(args, payload, "\n".join(lines))
    return EXIT_OK


def _revert(args: argparse.Namespace, workspace: Workspace) -> int:
    sessions = workspace.session_factory(args.tenant)
    from core.matching.tenant_calibration import revert_calibration

    outcome = revert_calibration(sessions, current_actor())
    report = None
    if not args.no_analyse:
        engine = _open_engine(workspace, args.tenant)  # opened after the revert: it loads what is in use now
        report = _reanalyse(args, workspace, engine)
    payload = {
        "reverted": outcome.reverted.as_dict(),
        "in_use": outcome.now_active.as_dict() if outcome.now_active else "shipped",
        "analysis": dataclasses.asdict(report) if report else None,
    }
    print_result(args, payload, f"{outcome.sentence}\n{_analysis_text(report)}")
    return EXIT_OK


def _figures(before: float | None, after: float | None) -> str:
    if before is None or after is None:
        return "-"
    return f"{before:.3f} -> {after:.3f}"


def _version_line(version: VersionRow) -> str:
    logloss = _figures(version.logloss_before, version.logloss_after)
    ece = _figures(version.ece_before, version.ece_after)
    return (
        f"  v{version.id:<4} {version.fitted_at:%Y-%m-%d %H:%M}  {version.fitted_by:<12} "
        f"{version.n_decisions:>6,} decisions  log-loss {logloss}  ECE {ece}  {version.status}"
    )


def status_text(status: CalibrationStatus) -> str:
    decisions = status.approvals + status.rejections
    lines = [
        status.in_use,
        f"Reviewed decisions: {decisions:,} ({status.approvals:,} approvals, "
        f"{status.rejections:,} rejections).",
        "A refit can run now (`runbook-desk calibration refit`)."
        if status.eligible
        else f"No refit yet: {status.not_eligible_because}.",
    ]
    if status.stale_analyses:
        lines.append(
            f"{status.stale_analyses:,} tickets were analysed before the calibration in use: "
            "`runbook-desk analyze` re-decides them."
        )
    if status.active is not None:
        lines += ["", status.active.note]
    lines += ["", f"Versions ({len(status.versions)})" if status.versions else "Versions: none fitted yet"]
    lines += [_version_line(version) for version in status.versions]
    return "\n".join(lines)


# --- thresholds --------------------------------------------------------------------------------------------


def _suggest_thresholds(args: argparse.Namespace, workspace: Workspace) -> int:
    sessions = workspace.session_factory(args.tenant)
    with sessions() as session:
        from core.analytics.thresholds import advise_threshold, apply_suggestion

        advice = advise_threshold(session, target=args.precision, min_reviewed=args.min_reviewed)
    payload: dict[str, Any] = advice.as_dict() | {"applied": None}
    text = advice_text(advice)
    if args.apply:
        with sessions.begin() as session:
            change = apply_suggestion(session, advice, current_actor())
        payload["applied"] = {"before": change.before.to_json(), "after": change.after.to_json()}
        text += f"\n\nApplied. {change.sentence}"
        if change.changed:
            text += " Every ticket is re-decided by the next `runbook-desk analyze`."
    print_result(args, payload, text)
    return EXIT_OK


def advice_text(advice: ThresholdAdvice) -> str:
    lines = [advice.message, "", "  threshold  precision  reviewed  coverage  tickets"]
    shown = [
        point
        for index, point in enumerate(advice.points)
        if index % CURVE_STEP == 0 or point == advice.suggested or point.threshold == advice.current.existing
    ]
    for point in shown:
        precision = "-" if point.precision is None else f"{point.precision:.0%}"
        marks = []
        if advice.suggested is not None and point.threshold == advice.suggested.threshold:
            marks.append("suggested")
        if point.threshold == advice.current.existing:
            marks.append("current")
        lines.append(
            f"  {point.threshold:>9.2f}  {precision:>9}  {point.reviewed:>8,}  {point.coverage:>8.0%}  "
            f"{point.tickets:>7,}  {', '.join(marks)}".rstrip()
        )
    return "\n".join(lines)
