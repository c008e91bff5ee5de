"""Decision quality on the demo's answer key: what auto-linking, review and drafting do to its tickets.

Run: ``.venv/bin/python bench/decisions.py``. About a minute: the demo runbooks and tickets are embedded once.

The demo (``resources/demo``) is imported into a temporary workspace and matched by the real engine, like
``scripts/fit_calibration.py`` does. A ticket's decision is the app's: ``core.settings.Thresholds`` applied
to its best calibrated confidence (``analyze_pending`` is run once with the shipped calibration to check that
this bench counts exactly what the app decides).

* **2-fold cross-validation** (the honest figures): tickets are split in two halves, stratified by label
  (full / partial / none) with a fixed seed; a Platt calibration is fitted on one half's top-5 pairs and the
  other half is decided with it, then the halves swap. Every ticket is decided by a calibration that never
  saw it.
* **In-sample** with ``resources/calibration.json``: the shipped calibration was fitted on all these tickets,
  so these figures are optimistic; they are what the demo shows.

Metrics: precision of auto-links (the linked runbook is the labelled one *and* the label is ``full``; the
"lenient" figure also accepts the labelled runbook of a ``partial`` ticket); coverage (auto-linked share of
all tickets); review and draft shares; gap recall (share of ``none`` tickets, the gaps, that end in
``generate_runbook``); ECE over the top-5 pairs and over the decided (top-1) matches. Then precision and
coverage against ``threshold_existing`` from 0.40 to 0.95 on the cross-validated confidences.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.matching.analysis import analyze_pending
from core.matching.calibration import FUSED_SCORE, Calibrator, IsotonicCalibrator, expected_calibration_error
from core.matching.engine import FEATURES, features, load_default_calibrator
from core.resources import default_calibration_path
from core.settings import Thresholds
from core.store.models import AnalysisDecision

REPO = Path(__file__).resolve().parent.parent
THRESHOLD_GRID = [round(0.40 + 0.05 * step, 2) for step in range(12)]  # 0.40 .. 0.95


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
            f"{name:<38} {self.precision:>9.3f} {self.precision_lenient:>8.3f} {self.links:>5} "
            f"{self.coverage:>8.3f} {self.review:>6.3f} {self.draft:>6.3f} {self.gap_recall:>8.3f} "
            f"{self.ece_pairs:>9.3f} {self.ece_top1:>8.3f}"
        )

    def line(self, name: str) -> str:
        return (
            f"{name} precision={self.precision:.3f} coverage={self.coverage:.3f} review={self.review:.3f} "
            f"draft={self.draft:.3f} gap_recall={self.gap_recall:.3f} ece={self.ece_pairs:.3f} n={self.n}"
        )


HEADER = (
    f"{'':<38} {'precision':>9} {'lenient':>8} {'links':>5} {'coverage':>8} {'review':>6} {'draft':>6} "
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
    pair_probs = [m.confidence for o in outcomes for m in o.ticket.matches]
    pair_labels = [y for o in outcomes for y in o.ticket.targets()]
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


def calibrated(demo: Any, tickets: Sequence[TicketMatches], calibrator: Calibrator | None) -> list:
    """The tickets searched again with ``calibrator`` (``demo`` is a ``fit_calibration.DemoMatcher``)."""
    demo.engine.calibrator = calibrator
    return demo.rematch(tickets)


def reorder_offline(ticket: TicketMatches, calibrator: Calibrator, columns: list[int]) -> TicketMatches:
    """What ``MatchingEngine._calibrated`` would return for a calibrator over a subset of the features.

    Done here because the engine passes all of ``FEATURES`` to any calibrator, so a one-feature calibration
    raises (reported as a bug); ordering and tie-break are the engine's.
    """
    if not ticket.matches:
        return ticket
    probabilities = calibrator.predict(features(ticket.matches)[:, columns])
    scored = [
        (dataclasses.replace(match, confidence=float(p)), slug)
        for match, slug, p in zip(ticket.matches, ticket.slugs, probabilities, strict=True)
    ]
    scored.sort(key=lambda pair: (-pair[0].confidence, -pair[0].fused_score))
    return dataclasses.replace(
        ticket, matches=tuple(m for m, _ in scored), slugs=tuple(slug for _, slug in scored)
    )


def isotonic_fused_cross_validated(
    raw: Sequence[TicketMatches], first: list[int], second: list[int]
) -> list[TicketMatches]:
    column = [FEATURES.index(FUSED_SCORE)]
    out: dict[int, TicketMatches] = {}
    for train, test in ((first, second), (second, first)):
        x, y, _ = fit_calibration.pairs([raw[i] for i in train])
        isotonic = IsotonicCalibrator(FUSED_SCORE).fit(x[:, column], y)
        out.update({i: reorder_offline(raw[i], isotonic, column) for i in test})
    return [out[i] for i in range(len(raw))]


def wrong_links(outcomes: Sequence[Outcome]) -> str:
    wrong = [o for o in outcomes if o.decision is AnalysisDecision.LINK_RUNBOOK and not o.correct]
    partial = sum(o.ticket.label.match == "partial" and o.lenient for o in wrong)
    gaps = sum(o.ticket.label.match == "none" for o in wrong)
    return (
        f"{len(wrong)} wrong auto-links: {partial} the labelled runbook of a 'partial' ticket, {gaps} on gap "
        f"tickets, {len(wrong) - partial - gaps} another runbook than the labelled one"
    )


def main() -> None:
    started = time.perf_counter()
    labels = fit_calibration.read_labels(fit_calibration.DEMO / "labels.csv")
    thresholds = Thresholds()
    with fit_calibration.DemoMatcher() as demo:
        demo.engine.calibrator = None
        raw = demo.labelled(labels)  # features do not depend on the calibrator, only the order does

        oof: list[TicketMatches | None] = [None] * len(raw)
        fold_platt = []
        first, second = fit_calibration.stratified_halves(raw)
        for train, test in ((first, second), (second, first)):
            platt = fit_calibration.fit_platt([raw[i] for i in train])
            fold_platt.append(platt)
            for i, ticket in zip(test, calibrated(demo, [raw[i] for i in test], platt), strict=True):
                oof[i] = ticket
        cross_validated = [t for t in oof if t is not None]
        assert len(cross_validated) == len(raw)
        isotonic_cv = isotonic_fused_cross_validated(raw, first, second)

        shipped = load_default_calibrator(default_calibration_path())
        in_sample = calibrated(demo, raw, shipped) if shipped is not None else None
        uncalibrated = calibrated(demo, raw, None)

        app_check = ""
        if shipped is not None:
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

    results = {"cv": quality(decide(cross_validated, thresholds))}
    results["cv_isotonic"] = quality(decide(isotonic_cv, thresholds))
    if in_sample is not None:
        results["in_sample"] = quality(decide(in_sample, thresholds))
    results["uncalibrated"] = quality(decide(uncalibrated, thresholds))
    names = {
        "cv": "2-fold CV (out-of-fold Platt)",
        "cv_isotonic": "2-fold CV, isotonic(fused) [offline]",
        "in_sample": "IN-SAMPLE: shipped calibration.json",
        "uncalibrated": "no calibrator (confidence = cosine)",
    }
    print("\n" + HEADER)
    for key, result in results.items():
        print(result.row(names[key]))
    if in_sample is None:
        print("(resources/calibration.json not found: run scripts/fit_calibration.py for the in-sample row)")

    wrong = wrong_links(decide(cross_validated, thresholds))
    print(f"\n2-fold CV Platt at existing={thresholds.existing}: {wrong}")

    print("\nthreshold_existing sweep, 2-fold CV confidences (threshold_partial = min(0.50, existing))")
    print(f"{'existing':>8} {'links':>5} {'coverage':>8} {'precision':>9} {'lenient':>8} {'wrong':>5}")
    for threshold in THRESHOLD_GRID:
        outcomes = decide(cross_validated, Thresholds(existing=threshold, partial=min(0.50, threshold)))
        q = quality(outcomes)
        wrong = sum(not o.correct for o in outcomes if o.decision is AnalysisDecision.LINK_RUNBOOK)
        print(
            f"{threshold:>8.2f} {q.links:>5} {q.coverage:>8.3f} {q.precision:>9.3f} "
            f"{q.precision_lenient:>8.3f} {wrong:>5}"
        )

    print(f"\nwall {time.perf_counter() - started:.0f} s")
    for key, result in results.items():
        print(result.line(key))


if __name__ == "__main__":
    main()
