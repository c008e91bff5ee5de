"""Decision quality on the demo's answer key: what auto-linking, review and drafting do to its tickets.

Run: ``.venv/bin/python bench/decisions.py``. Under a minute: the demo runbooks and tickets are embedded once.

The demo (``resources/demo``) is imported into a temporary workspace and matched by the real engine, like
``scripts/fit_calibration.py`` does (same candidates, same pair features, same cross-fitted votes). A
ticket's decision is the app's: ``core.settings.Thresholds`` applied to its best calibrated confidence
(``analyze_pending`` is run once with the shipped calibration to check that this bench counts exactly what
the app decides).

* **2-fold cross-validation** (the honest figures): tickets are split in two halves, stratified by label
  (full / partial / none) with a fixed seed; a Platt calibration is fitted on one half (votes cross-fitted
  as in ``fit_calibration.py``) and the other half is decided with it, then the halves swap. Every ticket
  is decided by a calibration that never saw it. Two rows:

  - **no history**: the decided tickets get no vote (a tenant on its first day; the row to compare with the
    figures before issue 12, 0.869 precision at 0.440 coverage);
  - **with history**: each decided ticket gets the votes of every *other* labelled ticket's simulated
    analyst decision (approve the labelled runbook, reject a wrong first suggestion), never its own.

* **Legacy features**: the same 2-fold protocol with the calibration features used before issue 12 (dense
  cosine, BM25 / the query's best BM25, fused rank score), over the same candidates; no history.
* **In-sample** with ``resources/calibration.json`` and no history: what the demo shows on first start (the
  shipped calibration was fitted on these tickets, so these figures are optimistic).

Metrics: precision of auto-links (the linked runbook is the labelled one *and* the label is ``full``; the
"lenient" figure also accepts the labelled runbook of a ``partial`` ticket); coverage (auto-linked share of
all tickets); review and draft shares; gap recall (share of ``none`` tickets, the gaps, that end in
``generate_runbook``); ECE over the top-5 pairs and over the decided (top-1) matches. Then precision and
coverage against ``threshold_existing`` from 0.40 to 0.95 on the cross-validated confidences.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.matching.analysis import TOP_K, analyze_pending
from core.matching.calibration import (
    BM25_NORMALISED,
    DENSE_COSINE,
    FUSED_SCORE,
    Calibrator,
    PlattCalibrator,
    expected_calibration_error,
)
from core.matching.engine import feature_matrix, load_default_calibrator
from core.resources import default_calibration_path
from core.settings import Thresholds
from core.store.models import AnalysisDecision, utcnow

REPO = Path(__file__).resolve().parent.parent
THRESHOLD_GRID = [round(0.40 + 0.05 * step, 2) for step in range(12)]  # 0.40 .. 0.95
LEGACY_FEATURES = (DENSE_COSINE, BM25_NORMALISED, FUSED_SCORE)


def _load_fit_calibration():
    """``scripts/`` is not a package; its demo helpers are loaded by path rather than copied."""
    spec = importlib.util.spec_from_file_location("fit_calibration", REPO / "scripts" / "fit_calibration.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


fit_calibration = _load_fit_calibration()
TicketMatches = fit_calibration.TicketMatches


@dataclass(frozen=True)
class Outcome:
    """One decided ticket: the best match and the label it is judged against."""

    ticket: TicketMatches
    decision: AnalysisDecision
    confidence: float

    @property
    def top_slug(self) -> str | None:
        return self.ticket.slugs[0] if self.ticket.slugs else None

    @property
    def correct(self) -> bool:
        """The top runbook is the labelled one and the label says it fully solves the ticket."""
        label = self.ticket.label
        return label.match == "full" and self.top_slug == label.runbook

    @property
    def lenient(self) -> bool:
        return self.ticket.label.runbook is not None and self.top_slug == self.ticket.label.runbook


@dataclass(frozen=True)
class Quality:
    precision: float
    precision_lenient: float
    links: int
    coverage: float
    review: float
    draft: float
    gap_recall: float
    ece_pairs: float
    ece_top1: float
    n: int

    def row(self, name: str) -> str:
        return (
            f"{name:<40} {self.precision:>9.3f} {self.precision_lenient:>8.3f} {self.links:>5} "
            f"{self.coverage:>8.3f} {self.review:>6.3f} {self.draft:>6.3f} {self.gap_recall:>8.3f} "
            f"{self.ece_pairs:>9.3f} {self.ece_top1:>8.3f}"
        )

    def line(self, name: str) -> str:
        return (
            f"{name} precision={self.precision:.3f} coverage={self.coverage:.3f} review={self.review:.3f} "
            f"draft={self.draft:.3f} gap_recall={self.gap_recall:.3f} ece={self.ece_pairs:.3f} n={self.n}"
        )


HEADER = (
    f"{'':<40} {'precision':>9} {'lenient':>8} {'links':>5} {'coverage':>8} {'review':>6} {'draft':>6} "
    f"{'gap rec.':>8} {'ECE pairs':>9} {'ECE top1':>8}"
)


def decide(tickets: Sequence[TicketMatches], thresholds: Thresholds) -> list[Outcome]:
    outcomes = []
    for ticket in tickets:
        confidence = ticket.matches[0].confidence if ticket.matches else 0.0
        outcomes.append(Outcome(ticket, thresholds.decide(confidence), confidence))
    return outcomes


def quality(outcomes: Sequence[Outcome]) -> Quality:
    links = [o for o in outcomes if o.decision is AnalysisDecision.LINK_RUNBOOK]
    gaps = [o for o in outcomes if o.ticket.label.match == "none"]
    shown = [o.ticket.top(TOP_K) for o in outcomes]
    pair_probs = [m.confidence for t in shown for m in t.matches]
    pair_labels = [y for t in shown for y in t.targets()]
    n = len(outcomes)
    return Quality(
        precision=sum(o.correct for o in links) / len(links) if links else float("nan"),
        precision_lenient=sum(o.lenient for o in links) / len(links) if links else float("nan"),
        links=len(links),
        coverage=len(links) / n,
        review=sum(o.decision is AnalysisDecision.FLAG_REVIEW for o in outcomes) / n,
        draft=sum(o.decision is AnalysisDecision.GENERATE_RUNBOOK for o in outcomes) / n,
        gap_recall=sum(o.decision is AnalysisDecision.GENERATE_RUNBOOK for o in gaps) / len(gaps),
        ece_pairs=expected_calibration_error(np.clip(pair_probs, 0, 1), pair_labels),
        ece_top1=expected_calibration_error(
            np.clip([o.confidence for o in outcomes], 0, 1), [int(o.correct) for o in outcomes]
        ),
        n=n,
    )


class _LegacyPlatt(PlattCalibrator):
    """The pre-issue-12 feature set, fitted like ``fit_calibration.fit_platt`` (for the comparison row)."""

    def __init__(self) -> None:
        super().__init__(LEGACY_FEATURES)


def fit_legacy(tickets: Sequence[TicketMatches]) -> Calibrator:
    def rows(ts: Sequence[TicketMatches]) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.vstack([feature_matrix(LEGACY_FEATURES, t.matches) for t in ts]),
            np.asarray([y for t in ts for y in t.targets()]),
        )

    first = _LegacyPlatt().fit(*rows(tickets))
    return _LegacyPlatt().fit(*rows([fit_calibration.reranked(t, first).top() for t in tickets]))


def out_of_fold(
    trained: Sequence[TicketMatches],
    decided: Sequence[TicketMatches],
    halves: tuple[list[int], list[int]],
    fit=None,
) -> tuple[list[TicketMatches], list[Calibrator]]:
    """``decided`` re-ranked by calibrations fitted on the other half of ``trained`` (same positions)."""
    fit = fit or fit_calibration.fit_platt
    out: dict[int, TicketMatches] = {}
    fitted = []
    first, second = halves
    for train, test in ((first, second), (second, first)):
        calibrator = fit([trained[i] for i in train])
        fitted.append(calibrator)
        out.update({i: fit_calibration.reranked(decided[i], calibrator) for i in test})
    return [out[i] for i in range(len(decided))], fitted


def wrong_links(outcomes: Sequence[Outcome]) -> str:
    wrong = [o for o in outcomes if o.decision is AnalysisDecision.LINK_RUNBOOK and not o.correct]
    partial = sum(o.ticket.label.match == "partial" and o.lenient for o in wrong)
    gaps = sum(o.ticket.label.match == "none" for o in wrong)
    return (
        f"{len(wrong)} wrong auto-links: {partial} the labelled runbook of a 'partial' ticket, {gaps} on gap "
        f"tickets, {len(wrong) - partial - gaps} another runbook than the labelled one"
    )


def sweep(name: str, tickets: Sequence[TicketMatches]) -> None:
    print(f"\nthreshold_existing sweep, {name} (threshold_partial = min(0.50, existing))")
    print(f"{'existing':>8} {'links':>5} {'coverage':>8} {'precision':>9} {'lenient':>8} {'wrong':>5}")
    for threshold in THRESHOLD_GRID:
        outcomes = decide(tickets, Thresholds(existing=threshold, partial=min(0.50, threshold)))
        q = quality(outcomes)
        wrong = sum(not o.correct for o in outcomes if o.decision is AnalysisDecision.LINK_RUNBOOK)
        print(
            f"{threshold:>8.2f} {q.links:>5} {q.coverage:>8.3f} {q.precision:>9.3f} "
            f"{q.precision_lenient:>8.3f} {wrong:>5}"
        )


def main() -> None:
    started = time.perf_counter()
    labels = fit_calibration.read_labels(fit_calibration.DEMO / "labels.csv")
    thresholds = Thresholds()
    with fit_calibration.DemoMatcher() as demo:
        demo.engine.calibrator = None
        now = utcnow()
        raw = demo.candidates(labels)  # no vote: the store holds no decision
        decisions = fit_calibration.simulated_decisions(demo, raw, now)
        trained = demo.with_votes(raw, fit_calibration.cross_fitted_history(decisions), now)
        with_history = demo.with_votes(raw, fit_calibration.leave_one_out_history(decisions), now)

        halves = fit_calibration.stratified_halves(raw)
        cv_fresh, fold_platt = out_of_fold(trained, raw, halves)
        cv_history, _ = out_of_fold(trained, with_history, halves)
        cv_legacy, _ = out_of_fold(raw, raw, halves, fit=fit_legacy)

        shipped = load_default_calibrator(default_calibration_path())
        in_sample = demo.ranked(raw, shipped) if shipped is not None else None
        uncalibrated = demo.ranked(raw, None)

        app_check = ""
        if shipped is not None and in_sample is not None:
            demo.engine.calibrator = shipped
            report = analyze_pending(demo.engine, demo.sessions)
            mine = decide(in_sample, thresholds)
            labelled_only = report.analysed != len(mine)
            counts = (
                sum(o.decision is AnalysisDecision.LINK_RUNBOOK for o in mine),
                sum(o.decision is AnalysisDecision.FLAG_REVIEW for o in mine),
                sum(o.decision is AnalysisDecision.GENERATE_RUNBOOK for o in mine),
            )
            same = (report.linked, report.flagged, report.drafts) == counts
            app_check = (
                f"analyze_pending with the shipped calibration: {report.analysed} tickets, "
                f"linked/flagged/drafts = {report.linked}/{report.flagged}/{report.drafts}; "
                f"this bench: {'/'.join(map(str, counts))} "
                + (
                    "(same)"
                    if same
                    else "(DIFFERENT" + (": not only labelled tickets)" if labelled_only else ")")
                )
            )

    n_full = sum(t.label.match == "full" for t in raw)
    print(
        f"{len(raw)} labelled demo tickets: {n_full} full, {sum(t.label.match == 'partial' for t in raw)} "
        f"partial, {sum(t.label.match == 'none' for t in raw)} none (gaps); thresholds existing="
        f"{thresholds.existing} partial={thresholds.partial}"
    )
    print(
        f"ceiling: a perfect matcher auto-links at most {n_full}/{len(raw)} = {n_full / len(raw):.3f} of "
        "tickets at precision 1.0 (only 'full' links count as right)"
    )
    for index, platt in enumerate(fold_platt, start=1):
        weights = ", ".join(f"{w:.2f}" for w in platt.weights)
        print(f"fold {index} Platt weights ({weights}) intercept {platt.intercept:.2f}")
    if app_check:
        print(app_check)

    results = {
        "cv": quality(decide(cv_fresh, thresholds)),
        "cv_history": quality(decide(cv_history, thresholds)),
        "cv_legacy": quality(decide(cv_legacy, thresholds)),
    }
    if in_sample is not None:
        results["in_sample"] = quality(decide(in_sample, thresholds))
    results["uncalibrated"] = quality(decide(uncalibrated, thresholds))
    names = {
        "cv": "2-fold CV, no history",
        "cv_history": "2-fold CV, other tickets' decisions",
        "cv_legacy": "2-fold CV, legacy features, no history",
        "in_sample": "IN-SAMPLE: shipped calibration.json",
        "uncalibrated": "no calibrator (confidence = cosine)",
    }
    print("\n" + HEADER)
    for key, result in results.items():
        print(result.row(names[key]))
    if in_sample is None:
        print("(resources/calibration.json not found: run scripts/fit_calibration.py for the in-sample row)")

    wrong = wrong_links(decide(cv_fresh, thresholds))
    print(f"\n2-fold CV, no history, at existing={thresholds.existing}: {wrong}")
    print(
        f"2-fold CV, with history, at existing={thresholds.existing}: "
        f"{wrong_links(decide(cv_history, thresholds))}"
    )
    sweep("2-fold CV, no history", cv_fresh)
    sweep("2-fold CV, other tickets' decisions", cv_history)

    print(f"\nwall {time.perf_counter() - started:.0f} s")
    for key, result in results.items():
        print(result.line(key))


if __name__ == "__main__":
    main()
