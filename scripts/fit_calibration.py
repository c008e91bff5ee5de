"""Fit the default calibration shipped in ``resources/calibration.json`` from the demo's answer key.

Run: ``.venv/bin/python scripts/fit_calibration.py [--output PATH]``. Deterministic: same data, same model,
same file.

How: a temporary workspace gets the demo runbooks and tickets through the app's importers; the engine
(without a calibrator, without any decision in the store) is refreshed, and every labelled ticket's
candidates are scored with the pair features of ``core.matching.engine.FEATURES``: dense cosine of the best
section, the share of the ticket's words in the runbook, the share of the runbook title's words in the
ticket, and the vote of similar past decisions.

Votes are cross-fitted. Each labelled ticket gets an "analyst decision" from its label (approve the labelled
runbook, outcome *resolved* for ``full`` and *partly* for ``partial``; reject the engine's first suggestion
when it is not the labelled runbook, which is every suggestion on a ``none`` ticket; "first" by the fused
ranking, the order before any calibration). A ticket's vote is
computed from the decisions of a random share of the *other* labelled tickets, 0 %, 25 %, 50 % or 100 %
(seeded per ticket), with the engine's own vote code (:func:`core.matching.votes.vote_scores`): no ticket sees
its own label, and the curve learns what a vote is worth from a tenant with no history to one with a full
history, instead of leaning on votes a new tenant does not have.

A pair is positive when its runbook is the ticket's intended one *and* the label says ``full``: a ``partial``
runbook helps but is not "the right one", and auto-linking must mean right. Pairs: a first Platt fit on
every candidate orders each ticket's candidates; the written curve is fitted on each ticket's *best* match
by that order. The confidence is then "how likely is the match a decision is made on right", which is what
the thresholds are applied to and what a tenant's refit learns from (analysts decide on the best match).
Fitted on the top 5 instead, the curve averages the best match with the runners-up of similar scores,
which are almost always wrong: best matches came out under-confident (ECE of the decided matches 0.16
against 0.07, 2-fold CV), so the default 0.70 linked only 29 % of the demo. The price: a runner-up's
confidence reads as "if this were the best match", and can be high too.

A Platt curve over the four features is written; isotonic maps of the dense score and the coverage are
fitted for comparison only. ECE figures here are in-sample and 2-fold cross-validated by ticket;
``bench/decisions.py`` reports the decisions.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import select

from core.importing import import_runbooks, import_tickets
from core.matching.analysis import TOP_K
from core.matching.calibration import (
    DENSE_COSINE,
    LEXICAL_COVERAGE,
    Calibrator,
    IsotonicCalibrator,
    PlattCalibrator,
    expected_calibration_error,
)
from core.matching.embedding import Embedder
from core.matching.embedding_onnx import default_embedder
from core.matching.engine import (
    CANDIDATES,
    FEATURES,
    MatchingEngine,
    RunbookMatch,
    features,
    rank_by_confidence,
)
from core.matching.text import ticket_text
from core.matching.votes import (
    DecidedTickets,
    EvidenceKind,
    PastDecision,
    RunbookVote,
    VoteSettings,
    vote_scores,
)
from core.resources import default_calibration_path, resources_dir
from core.store.models import OutcomeKind, Runbook, Ticket, utcnow
from core.store.workspace import Workspace

DEMO = resources_dir() / "demo"
SPLIT_SEED = 20261127
HISTORY_SHARES = (0.0, 0.25, 0.5, 1.0)


@dataclass(frozen=True)
class Label:
    number: str
    runbook: str | None  # slug: the Markdown file name without ".md"
    match: str  # full / partial / none
    gap: str | None


@dataclass(frozen=True)
class TicketMatches:
    """One labelled ticket, its vector, and its scored candidates best first (slugs attached)."""

    label: Label
    ticket_id: int
    vector: np.ndarray
    matches: tuple[RunbookMatch, ...]
    slugs: tuple[str, ...]

    def targets(self) -> list[int]:
        """1 where the match is the intended runbook and the label is ``full``, else 0."""
        right = self.label.runbook if self.label.match == "full" else None
        return [int(right is not None and slug == right) for slug in self.slugs]

    def top(self, k: int = TOP_K) -> TicketMatches:
        return replace(self, matches=self.matches[:k], slugs=self.slugs[:k])


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
            embedder or default_embedder(),
            self.workspace.root / "indexes" / "default",
        )
        self.engine.refresh()
        with self.sessions() as session:
            self.slug = {
                rid: slug_of(ref)
                for rid, ref in session.execute(select(Runbook.id, Runbook.external_ref))
                if ref is not None
            }
            self.runbook_id = {slug: rid for rid, slug in self.slug.items()}
            self.ticket_id = dict(session.execute(select(Ticket.external_id, Ticket.id)).all())
            self.created = dict(session.execute(select(Ticket.external_id, Ticket.created_at)).all())

    def __enter__(self) -> DemoMatcher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.workspace.close()
        self._temp.cleanup()

    def candidates(self, labels: Sequence[Label]) -> list[TicketMatches]:
        """Every candidate of every labelled ticket, scored without votes, in the engine's raw order.

        The store holds no decision yet, so the votes are 0; :func:`with_votes` adds them.
        """
        missing = [label.number for label in labels if label.number not in self.ticket_id]
        if missing:
            raise SystemExit(f"labelled tickets not in tickets.csv: {missing[:5]}")
        ids = [self.ticket_id[label.number] for label in labels]
        vectors = self.engine.ticket_index.vectors(ids)
        with self.sessions() as session:
            texts = {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_(ids)))}
        results = self.engine.search_many(
            [ticket_text(texts[i]) for i in ids], vectors, 2 * CANDIDATES, exclude_ticket_ids=ids
        )
        return [
            self._attach(TicketMatches(label, tid, vector, tuple(matches), ()))
            for label, tid, vector, matches in zip(labels, ids, vectors, results, strict=True)
        ]

    def _attach(self, ticket: TicketMatches) -> TicketMatches:
        return replace(ticket, slugs=tuple(self.slug[m.runbook_id] for m in ticket.matches))

    def with_votes(
        self,
        tickets: Sequence[TicketMatches],
        history: Callable[[int], Sequence[PastDecision]],
        now: datetime,
        settings: VoteSettings | None = None,
    ) -> list[TicketMatches]:
        """The tickets' candidates with the votes of ``history(position)``, plus the runbooks only votes name.

        Nothing is written to the store: the votes come from the engine's own function over the given
        decisions, and a voted runbook the search did not return is scored with ``score_pairs``.
        """
        settings = settings or VoteSettings()
        vectors_by_ticket = {t.ticket_id: t.vector for t in tickets}
        out = []
        for position, ticket in enumerate(tickets):
            decided = DecidedTickets.with_vectors(history(position), vectors_by_ticket)
            votes = vote_scores(ticket.vector, decided, settings, now, [ticket.ticket_id])[0]
            found = {m.runbook_id for m in ticket.matches}
            extra = [rid for rid, vote in votes.items() if vote.score > 0 and rid not in found]
            scored = [
                m
                for m in self.engine.score_pairs([(ticket.ticket_id, rid) for rid in extra])
                if m is not None
            ]
            matches = [_voted(m, votes.get(m.runbook_id)) for m in (*ticket.matches, *scored)]
            out.append(self._attach(replace(ticket, matches=tuple(matches))))
        return out

    def ranked(self, tickets: Sequence[TicketMatches], calibrator: Calibrator | None) -> list[TicketMatches]:
        """The tickets' candidates calibrated and ordered as the engine orders them."""
        return [reranked(t, calibrator) for t in tickets]


def reranked(ticket: TicketMatches, calibrator: Calibrator | None) -> TicketMatches:
    """``ticket``'s candidates with ``calibrator``'s confidences, in the engine's order, slugs following."""
    slug = dict(zip((m.runbook_id for m in ticket.matches), ticket.slugs, strict=True))
    ranked = tuple(rank_by_confidence(calibrator, ticket.matches))
    return replace(ticket, matches=ranked, slugs=tuple(slug[m.runbook_id] for m in ranked))


def _voted(match: RunbookMatch, vote: RunbookVote | None) -> RunbookMatch:
    vote = vote or RunbookVote(0.0)
    return replace(
        match,
        vote_score=vote.score,
        evidence=vote.evidence,
        evidence_for=vote.evidence_for,
        evidence_against=vote.evidence_against,
    )


def simulated_decisions(
    demo: DemoMatcher, tickets: Sequence[TicketMatches], now: datetime
) -> list[list[PastDecision]]:
    """What an analyst following the labels decides for each ticket (module docstring), per ticket."""
    decisions = []
    for ticket in tickets:
        label = ticket.label
        number = label.number
        mine: list[PastDecision] = []
        if label.runbook is not None:
            outcome = OutcomeKind.RESOLVED if label.match == "full" else OutcomeKind.PARTLY
            mine.append(
                PastDecision(
                    ticket.ticket_id,
                    number,
                    demo.runbook_id[label.runbook],
                    EvidenceKind.APPROVED,
                    outcome,
                    now,
                )
            )
        if ticket.slugs and ticket.slugs[0] != label.runbook:
            mine.append(
                PastDecision(
                    ticket.ticket_id, number, ticket.matches[0].runbook_id, EvidenceKind.REJECTED, None, now
                )
            )
        decisions.append(mine)
    return decisions


def cross_fitted_history(
    decisions: Sequence[Sequence[PastDecision]], seed: int = SPLIT_SEED
) -> Callable[[int], list[PastDecision]]:
    """Per ticket position, the decisions of a seeded random share of the *other* tickets (never its own)."""
    rng = random.Random(seed)
    chosen: list[list[PastDecision]] = []
    for position in range(len(decisions)):
        share = rng.choice(HISTORY_SHARES)
        others = [i for i in range(len(decisions)) if i != position]
        picked = sorted(rng.sample(others, round(share * len(others))))
        chosen.append([d for i in picked for d in decisions[i]])
    return lambda position: chosen[position]


def leave_one_out_history(decisions: Sequence[Sequence[PastDecision]]) -> Callable[[int], list[PastDecision]]:
    """Per ticket position, every other ticket's decisions: a tenant with a full history."""
    return lambda position: [d for i, mine in enumerate(decisions) if i != position for d in mine]


def pairs(tickets: Sequence[TicketMatches]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features in FEATURES order, 0/1 targets, the confidences) over every (ticket, match) pair."""
    rows = [features(t.matches) for t in tickets if t.matches]
    targets = [y for t in tickets for y in t.targets()]
    confidences = [m.confidence for t in tickets for m in t.matches]
    return np.vstack(rows), np.asarray(targets, dtype=np.int64), np.asarray(confidences)


# Pairs of the second fit: each ticket's best match only (module docstring).
FIT_TOP = 1


def fit_platt(tickets: Sequence[TicketMatches]) -> PlattCalibrator:
    """Fit on all candidates, then again on each ticket's best match by that first fit's confidence."""
    x, y, _ = pairs(tickets)
    first = PlattCalibrator(FEATURES).fit(x, y)
    x, y, _ = pairs([reranked(t, first).top(FIT_TOP) for t in tickets])
    return PlattCalibrator(FEATURES).fit(x, y)


def stratified_halves(
    tickets: Sequence[TicketMatches], seed: int = SPLIT_SEED
) -> tuple[list[int], list[int]]:
    """Two halves of ticket positions, stratified by label so each has its share of gaps and partials.

    Whole tickets go to one half: their pairs share a query, and splitting them would leak.
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
    """ECE of the best matches' predictions, each made by a calibrator fitted on the other half."""
    probs: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    first, second = stratified_halves(tickets)
    for train, test in ((first, second), (second, first)):
        x_train, y_train, _ = pairs([tickets[i].top(FIT_TOP) for i in train])
        x_test, y_test, _ = pairs([tickets[i].top(FIT_TOP) for i in test])
        probs.append(make().fit(x_train[:, columns], y_train).predict(x_test[:, columns]))
        targets.append(y_test)
    return expected_calibration_error(np.concatenate(probs), np.concatenate(targets))


def demo_pairs(
    demo: DemoMatcher, labels: Sequence[Label]
) -> tuple[list[TicketMatches], list[list[PastDecision]]]:
    """Every labelled ticket with cross-fitted votes, and the simulated decisions they came from."""
    now = utcnow()
    raw = demo.candidates(labels)
    decisions = simulated_decisions(demo, raw, now)
    return demo.with_votes(raw, cross_fitted_history(decisions), now), decisions


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=default_calibration_path())
    args = parser.parse_args(argv)

    labels = read_labels(DEMO / "labels.csv")
    with DemoMatcher() as demo:
        demo.engine.calibrator = None  # fit on raw scores, whatever calibration.json says today
        tickets, _ = demo_pairs(demo, labels)
    platt = fit_platt(tickets)
    # The pairs the engine would show with that curve, for the comparison and the ECE figures.
    shown = [reranked(t, platt) for t in tickets]
    x, y, _ = pairs([t.top(FIT_TOP) for t in shown])
    all_columns = list(range(len(FEATURES)))
    dense, coverage = [FEATURES.index(DENSE_COSINE)], [FEATURES.index(LEXICAL_COVERAGE)]
    methods: list[tuple[str, Callable[[], Calibrator], list[int]]] = [
        (f"Platt over {', '.join(FEATURES)} (written)", lambda: PlattCalibrator(FEATURES), all_columns),
        ("isotonic over dense_cosine", lambda: IsotonicCalibrator(DENSE_COSINE), dense),
        ("isotonic over lexical_coverage", lambda: IsotonicCalibrator(LEXICAL_COVERAGE), coverage),
    ]
    with_votes = sum(any(m.vote_score != 0 for m in t.matches) for t in tickets)
    print(
        f"{len(tickets)} labelled tickets, best match each = {len(y)} pairs, {int(y.sum())} positive "
        f"(intended runbook, match=full); features {FEATURES}; {with_votes} tickets with a non-zero vote "
        f"(history shares {HISTORY_SHARES})"
    )
    print(
        "ECE before (no calibrator: confidence = clipped dense cosine): "
        f"{expected_calibration_error(np.clip(x[:, dense[0]], 0, 1), y):.4f}"
    )
    print(f"ECE after{'':<58} in-sample  2-fold CV (split by ticket)")
    for name, make, columns in methods:
        calibrator = make().fit(x[:, columns], y)
        in_sample = expected_calibration_error(calibrator.predict(x[:, columns]), y)
        print(f"  {name:<65} {in_sample:.4f}     {cross_validated_ece(shown, make, columns):.4f}")
    weights = ", ".join(f"{n}={w:.4f}" for n, w in zip(FEATURES, platt.weights, strict=True))
    print(f"Platt weights: {weights}, intercept={platt.intercept:.4f}")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(platt.to_dict(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
