"""Past decisions as evidence: what was decided for similar tickets votes for (or against) a runbook.

Issue 12, item 2. A ticket's nearest *decided* tickets (cosine of their embeddings, the vectors the ticket
index already holds) vote for the runbooks they were linked to and against the ones they were refused:

* an analyst's approval (a link with ``reviewed_at`` set, ``linked``) votes for its runbook;
* an automatic link nobody touched for ``spot_check_days`` (default 7) after it was made votes for it too,
  at ``standing_weight`` (default 0.5): it survived the spot-check, but nobody confirmed it, and counting the
  machine's own guesses fully would let it reinforce its mistakes;
* an analyst's rejection (``rejected`` with ``reviewed_at``) votes against its runbook;
* a recorded outcome (:func:`core.workflow.outcomes.effective_outcomes`) scales a link's vote: resolved 1,
  partly 0.5, failed -0.5 (a runbook that did not help a similar ticket is weak evidence against it).

Each decided ticket's vote is weighted by how similar it is, ``(cosine - min_similarity) / (1 -
min_similarity)`` (0 at ``min_similarity`` = 0.6, 1 for a duplicate), and each decision by its age
(halved every ``half_life_days``, default 180). Only the ``max_neighbours`` (10) most similar decided
tickets above ``min_similarity`` vote. Why 0.6: all-MiniLM-L6-v2 puts different problems of one area (two
Kubernetes failure modes, a Salesforce add-in in Outlook and Outlook itself) at 0.5-0.6, and a vote from
those is a vote for the area, not for the fix; with 0.5 the learning bench's wrong links were mostly such
votes (``bench/learning.py``: second-half precision 0.90 after the tenant refit, 0.95 with 0.6). The score
of runbook X is::

    vote(X) = sum of the signed, weighted votes for X / (sum of the voters' similarity weights + prior)

so it lies in [-1, 1]: the share of the similar past tickets that chose X, shrunk towards 0 by a prior
worth one perfect duplicate (a single duplicate approval gives 0.5, three give 0.75). The score is a
function of the ticket's text and the decisions alone: undecided tickets, whatever the batch or backlog
holds, never change it, because every decided ticket is compared with the query directly (an exact scan of
their vectors) instead of through a top-k search that undecided neighbours could crowd. A ticket never
votes for itself (``exclude``): its own approval must not raise its own confidence.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar

import numpy as np
from sqlalchemy import and_, or_, select

from core.settings import SettingsSection
from core.store.models import (
    LinkDecision,
    OutcomeKind,
    Runbook,
    RunbookStatus,
    Ticket,
    TicketRunbookLink,
)
from core.store.tenancy import TenantSession
from core.workflow.outcomes import effective_outcomes

__all__ = [
    "DecidedTickets",
    "Evidence",
    "EvidenceKind",
    "PastDecision",
    "RunbookVote",
    "VoteSettings",
    "load_past_decisions",
    "vote_scores",
]

OUTCOME_FACTORS: Mapping[OutcomeKind, float] = {
    OutcomeKind.RESOLVED: 1.0,
    OutcomeKind.PARTLY: 0.5,
    OutcomeKind.FAILED: -0.5,
}


@dataclass(frozen=True, slots=True)
class VoteSettings(SettingsSection):
    """How past decisions vote (module docstring); a tenant setting (section ``votes``)."""

    SECTION: ClassVar[str] = "votes"

    spot_check_days: float = 7.0
    half_life_days: float = 180.0
    min_similarity: float = 0.6
    max_neighbours: int = 10
    standing_weight: float = 0.5
    prior: float = 1.0

    def __post_init__(self) -> None:
        if self.spot_check_days < 0:
            raise ValueError("the spot-check window cannot be negative")
        if self.half_life_days <= 0:
            raise ValueError("the half-life of a decision must be longer than 0 days")
        if not 0.0 <= self.min_similarity < 1.0:
            raise ValueError("the minimum similarity must be at least 0 and below 1")
        if self.max_neighbours < 1:
            raise ValueError("at least one similar ticket must be allowed to vote")
        if not 0.0 <= self.standing_weight <= 1.0:
            raise ValueError("the weight of an unreviewed automatic link must be between 0 and 1")
        if self.prior <= 0:
            raise ValueError("the prior must be positive")


class EvidenceKind(enum.StrEnum):
    APPROVED = "approved"  # an analyst linked it (approved a suggestion, confirmed an auto-link, linked it)
    STANDING = "standing"  # an automatic link left standing past its spot-check window
    REJECTED = "rejected"  # an analyst refused it


@dataclass(frozen=True, slots=True)
class PastDecision:
    """One decided (ticket, runbook) link that can vote."""

    ticket_id: int
    external_id: str
    runbook_id: int
    kind: EvidenceKind
    outcome: OutcomeKind | None
    decided_at: datetime

    def factor(self, settings: VoteSettings) -> float:
        """The signed strength of the decision before similarity and age: + for the runbook, - against."""
        if self.kind is EvidenceKind.REJECTED:
            return -1.0
        if self.outcome is not None:  # what happened outranks who linked it
            return OUTCOME_FACTORS[self.outcome]
        return 1.0 if self.kind is EvidenceKind.APPROVED else settings.standing_weight

    def recency(self, settings: VoteSettings, now: datetime) -> float:
        age_days = max(0.0, (now - self.decided_at).total_seconds() / 86_400)
        return math.pow(0.5, age_days / settings.half_life_days)


@dataclass(frozen=True, slots=True)
class Evidence:
    """A past decision seen from one query: what was decided, how similar the ticket is, what it weighed."""

    ticket_id: int
    external_id: str
    kind: EvidenceKind
    outcome: OutcomeKind | None
    similarity: float
    weight: float  # signed contribution to the vote's numerator

    @property
    def supports(self) -> bool:
        return self.weight > 0


@dataclass(frozen=True, slots=True)
class RunbookVote:
    """The vote of similar past tickets for one runbook, and the decisions behind it (strongest first)."""

    score: float
    evidence: tuple[Evidence, ...] = ()

    @property
    def evidence_for(self) -> tuple[str, ...]:
        return tuple(e.external_id for e in self.evidence if e.weight > 0)

    @property
    def evidence_against(self) -> tuple[str, ...]:
        return tuple(e.external_id for e in self.evidence if e.weight < 0)


@dataclass(frozen=True)
class DecidedTickets:
    """The decisions that can vote and their tickets' vectors (one row per decided ticket)."""

    decisions: tuple[PastDecision, ...]
    ticket_ids: tuple[int, ...] = ()
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))

    @classmethod
    def with_vectors(
        cls, decisions: Sequence[PastDecision], vectors_by_ticket: Mapping[int, np.ndarray]
    ) -> DecidedTickets:
        """Keep the decisions whose ticket has a vector (a ticket not indexed yet cannot be compared)."""
        kept = tuple(d for d in decisions if d.ticket_id in vectors_by_ticket)
        ids = tuple(dict.fromkeys(d.ticket_id for d in kept))
        matrix = (
            np.vstack([vectors_by_ticket[i] for i in ids]).astype(np.float32)
            if ids
            else np.zeros((0, 0), dtype=np.float32)
        )
        return cls(kept, ids, matrix)

    def __len__(self) -> int:
        return len(self.decisions)


def load_past_decisions(session: TenantSession, settings: VoteSettings, now: datetime) -> list[PastDecision]:
    """Every link of the tenant that votes (module docstring), to an approved runbook, with its outcome."""
    standing_before = now - timedelta(days=settings.spot_check_days)
    rows = session.execute(
        select(
            TicketRunbookLink.ticket_id,
            Ticket.external_id,
            TicketRunbookLink.runbook_id,
            TicketRunbookLink.decision,
            TicketRunbookLink.linked_at,
            TicketRunbookLink.reviewed_at,
        )
        .join(Ticket, Ticket.id == TicketRunbookLink.ticket_id)
        .join(Runbook, Runbook.id == TicketRunbookLink.runbook_id)
        .where(
            Runbook.status == RunbookStatus.APPROVED,
            or_(
                and_(
                    TicketRunbookLink.decision == LinkDecision.LINKED,
                    or_(
                        TicketRunbookLink.reviewed_at.is_not(None),
                        and_(
                            TicketRunbookLink.linked_automatically.is_(True),
                            TicketRunbookLink.linked_at <= standing_before,
                        ),
                    ),
                ),
                and_(
                    TicketRunbookLink.decision == LinkDecision.REJECTED,
                    TicketRunbookLink.reviewed_at.is_not(None),
                ),
            ),
        )
        .order_by(TicketRunbookLink.ticket_id, TicketRunbookLink.runbook_id)
    ).all()
    if not rows:
        return []
    outcomes = effective_outcomes(session)
    decisions = []
    for ticket_id, external_id, runbook_id, decision, linked_at, reviewed_at in rows:
        if LinkDecision(decision) is LinkDecision.REJECTED:
            kind = EvidenceKind.REJECTED
        else:
            kind = EvidenceKind.APPROVED if reviewed_at is not None else EvidenceKind.STANDING
        decided_at = reviewed_at or linked_at or now
        outcome = outcomes.get((ticket_id, runbook_id)) if kind is not EvidenceKind.REJECTED else None
        decisions.append(PastDecision(ticket_id, external_id, runbook_id, kind, outcome, decided_at))
    return decisions


def vote_scores(
    query_vectors: np.ndarray,
    decided: DecidedTickets,
    settings: VoteSettings,
    now: datetime,
    exclude: Sequence[int | None] | None = None,
) -> list[dict[int, RunbookVote]]:
    """Per query row, the vote of similar decided tickets for each runbook they decided on.

    ``exclude[i]`` is the ticket query ``i`` is (it never votes for itself), or None for a free text.
    """
    queries = np.atleast_2d(np.asarray(query_vectors, dtype=np.float32))
    if exclude is not None and len(exclude) != len(queries):
        raise ValueError(f"exclude has {len(exclude)} entries for {len(queries)} queries")
    if not len(decided) or not len(queries):
        return [{} for _ in range(len(queries))]
    similarity = queries @ decided.vectors.T
    by_ticket: dict[int, list[PastDecision]] = {}
    for decision in decided.decisions:
        by_ticket.setdefault(decision.ticket_id, []).append(decision)
    span = 1.0 - settings.min_similarity
    results: list[dict[int, RunbookVote]] = []
    for row, scores in enumerate(similarity):
        own = exclude[row] if exclude is not None else None
        order = np.argsort(-scores, kind="stable")
        voters: list[tuple[int, float]] = []
        for column in order:
            score = float(scores[column])
            if score < settings.min_similarity or len(voters) >= settings.max_neighbours:
                break
            ticket_id = decided.ticket_ids[column]
            if ticket_id != own:
                voters.append((ticket_id, min(score, 1.0)))
        total = settings.prior
        numerators: dict[int, float] = {}
        evidence: dict[int, list[Evidence]] = {}
        for ticket_id, score in voters:
            weight = (score - settings.min_similarity) / span
            total += weight
            for decision in by_ticket[ticket_id]:
                signed = weight * decision.factor(settings) * decision.recency(settings, now)
                numerators[decision.runbook_id] = numerators.get(decision.runbook_id, 0.0) + signed
                evidence.setdefault(decision.runbook_id, []).append(
                    Evidence(ticket_id, decision.external_id, decision.kind, decision.outcome, score, signed)
                )
        results.append(
            {
                runbook_id: RunbookVote(
                    score=max(-1.0, min(1.0, numerator / total)),
                    evidence=tuple(sorted(evidence[runbook_id], key=lambda e: (-abs(e.weight), e.ticket_id))),
                )
                for runbook_id, numerator in numerators.items()
            }
        )
    return results
