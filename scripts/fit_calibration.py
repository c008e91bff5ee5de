"""Fit the default calibration shipped in ``resources/calibration.json`` from the demo's answer key.

Run: ``.venv/bin/python scripts/fit_calibration.py [--output PATH]``. Deterministic: same data, same model,
same file.

How: a temporary workspace gets the demo runbooks and tickets through the app's importers; the engine
(without a calibrator) is refreshed and every labelled ticket's top 5 matches
(``core.matching.analysis.TOP_K``) become
calibration pairs. A pair is positive when its runbook is the ticket's intended one *and* the label says
``full``: a ``partial`` runbook helps but is not "the right one", and auto-linking must mean right. Features
are ``core.matching.engine.FEATURES`` (dense cosine, normalised BM25, fused score) in that order. A Platt
curve over
all three is written; isotonic maps of the fused and of the dense score are fitted for comparison only.

ECE figures here are in-sample (fitted and measured on the same pairs); ``bench/decisions.py`` reports the
cross-validated ones.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import select

from core.importing import import_runbooks, import_tickets
from core.matching.analysis import TOP_K
from core.matching.calibration import (
    DENSE_COSINE,
    FUSED_SCORE,
    Calibrator,
    IsotonicCalibrator,
    PlattCalibrator,
    expected_calibration_error,
)
from core.matching.embedding import Embedder, SentenceTransformerEmbedder
from core.matching.engine import FEATURES, MatchingEngine, RunbookMatch, features, ticket_text
from core.resources import default_calibration_path, resources_dir
from core.store.models import Runbook, Ticket
from core.store.workspace import Workspace

DEMO = resources_dir() / "demo"
SPLIT_SEED = 20261127


@dataclass(frozen=True)
class Label:
    number: str
    runbook: str | None  # slug: the Markdown file name without ".md"
    match: str  # full / partial / none
    gap: str | None


@dataclass(frozen=True)
class TicketMatches:
    """One labelled ticket, its prepared text and vector, and the engine's top matches (slugs attached)."""

    label: Label
    text: str
    vector: np.ndarray
    matches: tuple[RunbookMatch, ...]
    slugs: tuple[str, ...]

    def targets(self) -> list[int]:
        """1 where the match is the intended runbook and the label is ``full``, else 0."""
        right = self.label.runbook if self.label.match == "full" else None
        return [int(right is not None and slug == right) for slug in self.slugs]


def read_labels(path: Path) -> list[Label]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [
            Label(row["number"], row["runbook"] or None, row["match"], row["gap"] or None)
            for row in csv.DictReader(handle)
        ]


def slug_of(external_ref: str) -> str:
    return external_ref.removesuffix(".md")


class DemoMatcher:
    """The demo imported into a temporary workspace and an engine over it; use as a context manager."""

    def __init__(self, embedder: Embedder | None = None) -> None:
        self._temp = tempfile.TemporaryDirectory(prefix="rd-demo-")
        self.workspace = Workspace.open(Path(self._temp.name) / "workspace")
        self.sessions = self.workspace.session_factory("default")
        import_runbooks(self.sessions, DEMO / "runbooks", actor="fit-calibration")
        import_tickets(self.sessions, DEMO / "tickets.csv", actor="fit-calibration")
        self.engine = MatchingEngine(
            self.sessions,
            embedder or SentenceTransformerEmbedder(),
            self.workspace.root / "indexes" / "default",
        )
        self.engine.refresh()
        with self.sessions() as session:
            self.slug = {
                rid: slug_of(ref) for rid, ref in session.execute(select(Runbook.id, Runbook.external_ref))
            }

    def __enter__(self) -> DemoMatcher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.workspace.close()
        self._temp.cleanup()

    def labelled(self, labels: Sequence[Label]) -> list[TicketMatches]:
        """Top ``TOP_K`` matches of every labelled ticket with the engine's current calibrator."""
        with self.sessions() as session:
            by_number = {t.external_id: ticket_text(t) for t in session.scalars(select(Ticket))}
        missing = [label.number for label in labels if label.number not in by_number]
        if missing:
            raise SystemExit(f"labelled tickets not in tickets.csv: {missing[:5]}")
        texts = [by_number[label.number] for label in labels]
        vectors = self.engine.embedder.encode(texts)
        return self.rematch(
            [
                TicketMatches(label, text, vector, (), ())
                for label, text, vector in zip(labels, texts, vectors, strict=True)
            ]
        )

    def rematch(self, tickets: Sequence[TicketMatches]) -> list[TicketMatches]:
        """The same tickets searched again (after ``engine.calibrator`` changed), vectors reused."""
        results = self.engine.search_many(
            [t.text for t in tickets], np.vstack([t.vector for t in tickets]), TOP_K
        )
        return [
            TicketMatches(t.label, t.text, t.vector, tuple(m), tuple(self.slug[x.runbook_id] for x in m))
            for t, m in zip(tickets, results, strict=True)
        ]


def pairs(tickets: Sequence[TicketMatches]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features in FEATURES order, 0/1 targets, the engine's confidences) over every (ticket, match) pair."""
    rows = [features(t.matches) for t in tickets if t.matches]
    targets = [y for t in tickets for y in t.targets()]
    confidences = [m.confidence for t in tickets for m in t.matches]
    return np.vstack(rows), np.asarray(targets, dtype=np.int64), np.asarray(confidences)


def fit_platt(tickets: Sequence[TicketMatches]) -> PlattCalibrator:
    x, y, _ = pairs(tickets)
    return PlattCalibrator(FEATURES).fit(x, y)


def stratified_halves(
    tickets: Sequence[TicketMatches], seed: int = SPLIT_SEED
) -> tuple[list[int], list[int]]:
    """Two halves of ticket positions, stratified by label so each has its share of gaps and partials.

    Whole tickets go to one half: its five pairs share a query, and splitting them would leak.
    """
    rng = random.Random(seed)
    halves: tuple[list[int], list[int]] = ([], [])
    for match in ("full", "partial", "none"):
        positions = sorted(
            (i for i, t in enumerate(tickets) if t.label.match == match),
            key=lambda i: tickets[i].label.number,
        )
        rng.shuffle(positions)
        for order, position in enumerate(positions):
            halves[order % 2].append(position)
    return sorted(halves[0]), sorted(halves[1])


def cross_validated_ece(
    tickets: Sequence[TicketMatches], make: Callable[[], Calibrator], columns: list[int]
) -> float:
    """ECE of predictions each made by a calibrator fitted on the other half of the tickets."""
    probs: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    first, second = stratified_halves(tickets)
    for train, test in ((first, second), (second, first)):
        x_train, y_train, _ = pairs([tickets[i] for i in train])
        x_test, y_test, _ = pairs([tickets[i] for i in test])
        probs.append(make().fit(x_train[:, columns], y_train).predict(x_test[:, columns]))
        targets.append(y_test)
    return expected_calibration_error(np.concatenate(probs), np.concatenate(targets))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=default_calibration_path())
    args = parser.parse_args(argv)

    labels = read_labels(DEMO / "labels.csv")
    with DemoMatcher() as demo:
        demo.engine.calibrator = None  # fit on raw scores, whatever calibration.json says today
        tickets = demo.labelled(labels)
    x, y, uncalibrated = pairs(tickets)
    all_columns = list(range(len(FEATURES)))
    fused, dense = [FEATURES.index(FUSED_SCORE)], [FEATURES.index(DENSE_COSINE)]
    methods: list[tuple[str, Callable[[], Calibrator], list[int]]] = [
        (f"Platt over {', '.join(FEATURES)} (written)", lambda: PlattCalibrator(FEATURES), all_columns),
        ("isotonic over fused_score", lambda: IsotonicCalibrator(FUSED_SCORE), fused),
        ("isotonic over dense_cosine", lambda: IsotonicCalibrator(DENSE_COSINE), dense),
    ]
    print(
        f"{len(tickets)} labelled tickets x top-{TOP_K} = {len(y)} pairs, {int(y.sum())} positive "
        f"(intended runbook, match=full); features {FEATURES}"
    )
    print(
        "ECE before (no calibrator: confidence = clipped dense cosine): "
        f"{expected_calibration_error(uncalibrated, y):.4f}"
    )
    print(f"ECE after{'':<58} in-sample  2-fold CV (split by ticket)")
    platt: PlattCalibrator | None = None
    for name, make, columns in methods:
        calibrator = make().fit(x[:, columns], y)
        if isinstance(calibrator, PlattCalibrator) and platt is None:
            platt = calibrator
        in_sample = expected_calibration_error(calibrator.predict(x[:, columns]), y)
        print(f"  {name:<65} {in_sample:.4f}     {cross_validated_ece(tickets, make, columns):.4f}")
    assert platt is not None
    weights = ", ".join(f"{n}={w:.4f}" for n, w in zip(FEATURES, platt.weights, strict=True))
    print(f"Platt weights: {weights}, intercept={platt.intercept:.4f}")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(platt.to_dict(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
