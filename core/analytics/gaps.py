"""Gap analysis: recurring tickets that no runbook covers, grouped, explained and ranked by impact.

**Uncovered.** A ticket in the range is *uncovered* when

* it is not covered (:func:`core.queries.is_covered`): no ``ticket_runbook_links`` row with decision
  ``linked``. That counts analyst approvals *and* automatic links an analyst has not overruled: an
  automatic link is made only at the link threshold (``Thresholds.existing``) or above, and an analyst who
  disagrees rejects it (decision ``rejected``), which makes the ticket count as uncovered again; and
* its latest analysis's best runbook confidence is below the tenant's *review* threshold
  (``Thresholds.partial``, 0.50 by default): below it the matcher itself says "no runbook fits".

Tickets never analysed have no confidence yet; they are counted (``not_analysed``) and left out.

**Clustering** (chosen by ``bench/gap_methods.py``; the figures are in ``bench/README.md``): average-linkage
(UPGMA) agglomerative clustering on cosine similarity, cut where the mean pairwise cosine between two groups
falls below ``1 - distance_cut``; groups smaller than ``min_cluster_size`` are noise, never forced into a
cluster. Average linkage needs only each group's *sum vector* and size (for unit vectors the mean pairwise
cosine of groups A and B is ``sum_A . sum_B / (|A| |B|)``), so up to ``MICRO_LIMIT`` tickets it starts from
single tickets (exact); above that FAISS spherical k-means (seeded) first cuts the tickets into
``MICRO_LIMIT`` tight micro-clusters and the linkage starts from those. Memory stays at the vectors plus a
``MICRO_LIMIT``-square float64 matrix (8 MB), and the result is deterministic for a seed.

**Per cluster**: a label naming its product or entity and its distinctive phrases, weighed against the
whole range's tickets (:mod:`core.analytics.gap_labels`), size and share, trend (its own tickets in the
second half of the range against the first, with a significance test: :func:`_trend`; :func:`trend_words`
puts it in words that agree with the per-period numbers), severity mix, mean time to resolve where
``resolved_at`` exists, the tickets nearest its centroid, the resolution notes its tickets share, the
candidate steps among them (actions only, for the platform the tickets share:
:mod:`core.workflow.draft_steps`) with how many procedures they amount to, and the nearest existing runbook
(the one most of its tickets' analyses ranked first) with why it does not cover them.

**Impact** = volume x mean severity weight x time to resolve (hours), i.e. weighted ticket-hours. Weights
and the fallback time (clusters with no resolved ticket take the mean over all uncovered resolved tickets,
else ``default_resolve_hours``) live in the tenant's settings (:class:`core.settings.GapSettings`).

**Covered by a knowledge article** (issue 14; when the caller passes an ``article_search``, the engine). The
``CENTRAL_TICKETS`` most central members are searched against the published articles; an article that is
the best match at or above the review threshold for at least ``COVERED_SHARE`` of them *covers* the gap:
"covered by KB0012345: adopt it" (:class:`CoveringArticle`; it names the runbook already adopted from it,
if any, awaiting approval). No runbook says so (that is what makes the tickets uncovered), but the procedure
exists: adopting and approving it costs a review, not a writing. **Ranking**: gaps are ranked by *priority*
= impact / fix effort, where writing a runbook costs 1 and adopting an article ``ADOPT_EFFORT`` (0.25): a
covered gap ranks as if its impact were four times larger. Impact itself, its share and the Pareto line are
unchanged (the cumulative share follows the ranked order). The articles found for the central members also
give the draft its article steps, each citing its article (:mod:`core.knowledge.enrichment`).

**"Not a gap"** (:func:`dismiss_gap`) stores the cluster's centroid and members (``gap_dismissals``) with an
audit row; a later cluster matches a dismissal when its centroid cosine is at least
``dismissal_similarity`` or at least ``dismissal_overlap`` of its tickets were in the dismissed cluster, and
is then listed as dismissed instead of ranked.

A cancel through the caller's :class:`~core.progress.Progress` raises
:class:`~core.errors.OperationCancelledError`.
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.analytics.gap_labels import ClusterLabel, LabelDocument, Vocabulary, label_clusters, stem
from core.knowledge.adopt import adopted_runbook_id
from core.knowledge.enrichment import ARTICLES_FOR_DRAFT, ArticleHit, ArticleSearch, steps_from_articles
from core.matching.text import lexical_terms, prepare_ticket_text, ticket_lexical_text, ticket_text
from core.monitoring.alert_text import prepare_alert_text
from core.progress import NO_PROGRESS, Progress, raise_if_cancelled
from core.queries import is_covered, latest_analysis, ticket_opened_at
from core.settings import GapSettings, Thresholds, load_settings
from core.store.models import Analysis, GapDismissal, Runbook, Ticket, TicketKind
from core.store.repository import record_audit
from core.store.tenancy import TenantSession
from core.workflow.draft_steps import (  # the same rules for notes as a review draft
    NEAR_DUPLICATE,
    Platform,
    clean_note,
    dominant_platform,
    fits_platform,
    says_only_closed,
    step_overlap,
    step_terms,
    step_text,
)
from core.workflow.drafts import CandidateStep, RunbookDraft

if TYPE_CHECKING:  # the engine pulls FAISS and the model stack; gap analysis only reads its index
    from core.matching.engine import MatchingEngine

__all__ = [
    "MICRO_LIMIT",
    "CoveringArticle",
    "DismissedGap",
    "ExampleTicket",
    "GapCluster",
    "GapQuery",
    "GapReport",
    "NearestRunbook",
    "ResolutionNote",
    "Trend",
    "analyse_gaps",
    "cluster_vectors",
    "dismiss_gap",
    "draft_from_gap",
    "engine_ticket_vectors",
    "rerank",
    "restore_gap",
    "trend_words",
]

# Up to this many tickets the linkage starts from single tickets (exact); above it from this many k-means
# micro-clusters. 1024^2 float64 similarities = 8 MB. Measured on 100k generated 384-d vectors:
# 2048 micro-clusters trained on 64 points each for 20 iterations took 95 s; 1024 x 32 x 10 takes 7.5 s with
# the same clusters (ARI against the generated topics 0.93, vs 0.92 for 2048 x 16 x 10).
MICRO_LIMIT = 1024
KMEANS_ITERATIONS = 10
KMEANS_POINTS_PER_CENTROID = 32  # k-means trains on a seeded sample of 32 tickets per micro-cluster
UNKNOWN_SEVERITY = "unknown"
CENTRAL_TICKETS = 5
NOTES_FROM_MEMBERS = 200  # resolution notes are read from the most central members only
NOTES_SHOWN = 6
DRAFT_STEPS = 6
LABEL_SAMPLE = 200  # the most central members read for the label and the platform
BACKGROUND_SAMPLE = 2000  # tickets of the whole range the labels are weighed against
TAG_COUNT = 3
TREND_BUCKETS = 6
COVERED_SHARE = 0.5  # of the searched central members an article must be the confident best match for
ADOPT_EFFORT = 0.25  # the cost of adopting an article against writing a runbook (1): module docstring
TREND_FACTOR = 1.5  # second half at least 1.5x the first: growing; at most 1/1.5 of it: fading
TREND_SIGNIFICANCE = 0.1  # ... and a steady rate would give so lopsided a split less often than this
TREND_MIN_TICKETS = 4
SAME_PROCEDURE = 0.5  # two steps whose term sets overlap this much (Jaccard) describe the same procedure
ROW_CHUNK = 2000
VECTOR_CHUNK = 4096


TicketVectors = Callable[[Sequence[int]], np.ndarray]


# --- Results ---------------------------------------------------------------------------------------------


class Trend(enum.StrEnum):
    GROWING = "growing"
    STABLE = "stable"
    FADING = "fading"
    UNCLEAR = "unclear"  # the counts moved, but too few tickets to tell a direction from chance


@dataclass(frozen=True, slots=True)
class GapQuery:
    """Which tickets to look at. ``since`` inclusive, ``until`` exclusive, on the source's ``created_at``
    (the import time when the source gave none); empty sets mean "any"."""

    since: datetime | None = None
    until: datetime | None = None
    source_systems: frozenset[str] = frozenset()
    kinds: frozenset[TicketKind] = frozenset()
    categories: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ExampleTicket:
    ticket_id: int
    external_id: str
    title: str
    severity: str | None
    created_at: datetime | None
    similarity: float  # cosine to the cluster's centroid


@dataclass(frozen=True, slots=True)
class ResolutionNote:
    text: str
    count: int  # how many of the central members closed with this note
    source_ticket: str  # external id of the most central ticket with it
    source_ticket_id: int


@dataclass(frozen=True, slots=True)
class NearestRunbook:
    runbook_id: int
    title: str
    confidence: float  # mean best confidence of the members whose analysis ranked it first
    share: float  # of the cluster's tickets ranked it first
    missing_terms: tuple[str, ...]  # the cluster's top terms the runbook does not mention
    reason: str


@dataclass(frozen=True, slots=True)
class CoveringArticle:
    """A published article that already holds the gap's procedure (module docstring)."""

    article_id: int
    number: str | None
    title: str
    url: str | None
    confidence: float  # mean confidence of the central members it is the confident best match for
    share: float  # of the searched central members
    adopted_runbook_id: int | None = None  # the runbook already adopted from it (not approved yet)

    @property
    def words(self) -> str:
        name = self.number or f"“{self.title}”"
        if self.adopted_runbook_id is not None:
            return f"covered by {name}: adopted as runbook #{self.adopted_runbook_id}, approve it"
        return f"covered by {name}: adopt it"


@dataclass(frozen=True, slots=True)
class GapCluster:
    key: str  # stable for the same members: "g" + 10 hex digits
    rank: int
    label: str
    terms: tuple[str, ...]
    size: int
    share: float  # of the uncovered tickets
    trend: Trend
    trend_counts: tuple[int, ...]  # tickets per equal slice of the range
    severity_mix: tuple[tuple[str, int], ...]  # most frequent first
    mttr_hours: float | None  # mean created -> resolved, None when none resolved
    resolved_count: int
    mean_severity_weight: float
    impact: float  # size x mean severity weight x hours to resolve (MTTR or the fallback)
    impact_hours: float  # the hours used in the impact
    impact_share: float
    cumulative_share: float  # Pareto: share of the total impact of this and every higher-ranked gap
    cohesion: float  # mean cosine of the members to the centroid
    central_tickets: tuple[ExampleTicket, ...]
    resolution_notes: tuple[ResolutionNote, ...]
    nearest_runbook: NearestRunbook | None
    member_ticket_ids: tuple[int, ...]
    centroid: bytes  # float32, unit length
    # The range's tickets (covered or not) per slice, as trend_counts: the context of the trend's words.
    total_counts: tuple[int, ...] = ()
    title: str = ""  # the label as a draft runbook's title
    entities: tuple[str, ...] = ()  # product/entity names among the terms ("Salesforce")
    platform: Platform | None = None  # the platform the tickets are about, when they clearly share one
    # Candidate steps: the central members' resolution notes that are actions (status and hand-over clauses
    # dropped, other platforms' steps left out), most common first; ``count`` members reduce to each.
    steps: tuple[ResolutionNote, ...] = ()
    notes_read: int = 0  # central members whose notes were read for the steps
    documented: int = 0  # of them, members whose note holds an action step
    # Members per procedure: documented members grouped by step (term overlap >= SAME_PROCEDURE), largest
    # first. (5, 1) means five were fixed one way and one another.
    procedure_groups: tuple[int, ...] = ()
    # Issue 14: the published article that covers it, the steps of the articles its tickets match (each
    # citing its article), and what fixing it costs (1 = write a runbook; ADOPT_EFFORT = adopt the article).
    covering_article: CoveringArticle | None = None
    article_steps: tuple[CandidateStep, ...] = ()
    fix_effort: float = 1.0

    @property
    def priority(self) -> float:
        """What the ranking sorts by: impact per unit of fixing effort (module docstring)."""
        return self.impact / self.fix_effort


@dataclass(frozen=True, slots=True)
class DismissedGap:
    cluster: GapCluster
    dismissal_id: int
    dismissed_by: str
    dismissed_at: datetime
    reason: str | None


@dataclass(frozen=True, slots=True)
class GapReport:
    query: GapQuery
    settings: GapSettings
    model_id: str
    generated_at: datetime
    range_start: datetime | None
    range_end: datetime | None
    review_threshold: float
    in_range: int  # tickets matching the query
    not_analysed: int
    covered: int
    uncovered: int
    noise: int  # uncovered tickets in no cluster
    clusters: tuple[GapCluster, ...]  # ranked by impact, dismissed ones left out
    dismissed: tuple[DismissedGap, ...]
    method: str

    @property
    def clustered(self) -> int:
        return sum(c.size for c in self.clusters) + sum(d.cluster.size for d in self.dismissed)

    def cluster(self, key: str) -> GapCluster:
        for candidate in self.clusters:
            if candidate.key == key:
                return candidate
        raise KeyError(key)


# --- Clustering ------------------------------------------------------------------------------------------


def _micro_clusters(vectors: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Assign each row to one of ``count`` spherical k-means centroids (seeded, so repeatable)."""
    import faiss  # not at the top: only analyses above MICRO_LIMIT tickets need it

    kmeans = faiss.Kmeans(
        vectors.shape[1],
        count,
        niter=KMEANS_ITERATIONS,
        seed=seed,
        spherical=True,
        max_points_per_centroid=KMEANS_POINTS_PER_CENTROID,
        min_points_per_centroid=1,
        verbose=False,
    )
    kmeans.train(vectors)
    assignment = np.empty(len(vectors), dtype=np.int64)
    for start in range(0, len(vectors), VECTOR_CHUNK):
        _, nearest = kmeans.index.search(vectors[start : start + VECTOR_CHUNK], 1)
        assignment[start : start + VECTOR_CHUNK] = nearest[:, 0]
    return assignment


def _average_linkage(sums: np.ndarray, sizes: np.ndarray, min_similarity: float) -> np.ndarray:
    """UPGMA on groups given by sum vectors and sizes; returns each group's final cluster number.

    Merges the two groups with the highest mean pairwise cosine while it is at least ``min_similarity``;
    the merged row is the size-weighted mean of the two (Lance-Williams), so starting from single vectors
    this is exactly average-linkage clustering. Ties go to the lowest index, so the result is repeatable.
    """
    count = len(sizes)
    if count == 1:
        return np.zeros(1, dtype=np.int64)
    weights = sizes.astype(np.float64)
    similarity = sums @ sums.T  # divided in place: no second m x m temporary
    similarity /= weights[:, None]
    similarity /= weights[None, :]
    np.fill_diagonal(similarity, -np.inf)
    active = np.ones(count, dtype=bool)
    parent = np.arange(count)
    row_best = similarity.max(axis=1)
    row_arg = similarity.argmax(axis=1)
    while True:
        first = int(np.argmax(row_best))
        if not row_best[first] >= min_similarity:
            break
        second = int(row_arg[first])
        keep, drop = min(first, second), max(first, second)
        merged = (weights[keep] * similarity[keep] + weights[drop] * similarity[drop]) / (
            weights[keep] + weights[drop]
        )
        weights[keep] += weights[drop]
        active[drop] = False
        parent[parent == drop] = keep
        merged[~active] = -np.inf
        merged[keep] = -np.inf
        similarity[keep, :] = merged
        similarity[:, keep] = merged
        similarity[drop, :] = -np.inf
        similarity[:, drop] = -np.inf
        row_best[drop] = -np.inf
        row_best[keep] = merged.max()
        row_arg[keep] = int(merged.argmax())
        # Rows whose best partner was one of the pair: their best may have dropped, look again.
        stale = np.flatnonzero(active & ((row_arg == keep) | (row_arg == drop)))
        stale = stale[stale != keep]
        if len(stale):
            row_best[stale] = similarity[stale].max(axis=1)
            row_arg[stale] = similarity[stale].argmax(axis=1)
        # Every other row may now prefer the merged group.
        better = active & (merged > row_best)
        row_best[better] = merged[better]
        row_arg[better] = keep
    _, labels = np.unique(parent, return_inverse=True)
    return labels.astype(np.int64)


def cluster_vectors(
    vectors: np.ndarray,
    *,
    distance_cut: float,
    min_cluster_size: int,
    seed: int,
    micro_limit: int = MICRO_LIMIT,
) -> np.ndarray:
    """A cluster number per row (0, 1, ... by first appearance), ``-1`` for noise. Rows: unit vectors."""
    count = len(vectors)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    groups = np.arange(count) if count <= micro_limit else _micro_clusters(vectors, micro_limit, seed)
    used, groups = np.unique(groups, return_inverse=True)
    sums = np.zeros((len(used), vectors.shape[1]), dtype=np.float64)
    # In chunks: a float64 copy of all the vectors at once would double the analysis's memory.
    for start in range(0, count, VECTOR_CHUNK):
        chunk = slice(start, start + VECTOR_CHUNK)
        np.add.at(sums, groups[chunk], vectors[chunk].astype(np.float64))
    sizes = np.bincount(groups, minlength=len(used))
    # A micro-cluster is k-means' doing, not the linkage's: one whose own mean pairwise cosine is below the
    # cut would never have been formed by average linkage (typically scattered noise k-means lumped
    # together), so its tickets are noise rather than a cluster's seed.
    norms_squared = (sums * sums).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cohesion = (norms_squared - sizes) / (sizes * (sizes - 1.0))
    loose = (sizes > 1) & (cohesion < 1.0 - distance_cut)
    tight = np.flatnonzero(~loose)
    group_labels = np.full(len(used), -1, dtype=np.int64)
    if len(tight):
        group_labels[tight] = _average_linkage(sums[tight], sizes[tight], 1.0 - distance_cut)
    final = group_labels[groups]
    member_counts = np.bincount(final[final >= 0], minlength=int(final.max()) + 1 if len(final) else 0)
    labels = np.where((final >= 0) & (member_counts[np.maximum(final, 0)] >= min_cluster_size), final, -1)
    # Renumber by first appearance so the numbering does not depend on the merge order.
    out = np.full(count, -1, dtype=np.int64)
    mapping: dict[int, int] = {}
    for row, label in enumerate(labels.tolist()):
        if label >= 0:
            out[row] = mapping.setdefault(label, len(mapping))
    return out


# --- Reading the store -----------------------------------------------------------------------------------


@dataclass
class _Population:
    """Uncovered tickets as parallel arrays (no ORM objects: 100k rows stay a few MB)."""

    ids: np.ndarray
    created: np.ndarray  # epoch seconds
    severities: list[str | None]
    resolve_hours: np.ndarray  # NaN when not resolved
    confidence: np.ndarray
    best_runbook: np.ndarray  # -1 when none
    in_range_times: np.ndarray  # created time of every ticket in the range (trend denominators)
    in_range_ids: np.ndarray  # every ticket in the range (the labels' background)
    in_range: int
    not_analysed: int
    covered: int


def _query_filters(query: GapQuery) -> list[Any]:
    conditions: list[Any] = []
    if query.since is not None:
        conditions.append(ticket_opened_at() >= _as_utc(query.since))
    if query.until is not None:
        conditions.append(ticket_opened_at() < _as_utc(query.until))
    if query.source_systems:
        conditions.append(Ticket.source_system.in_(sorted(query.source_systems)))
    if query.kinds:
        conditions.append(Ticket.kind.in_(sorted(query.kinds)))
    if query.categories:
        conditions.append(Ticket.category.in_(sorted(query.categories)))
    return conditions


def _as_utc(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    # coalesce() loses the column type: SQLite hands back the stored text
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _read_population(session: TenantSession, query: GapQuery, threshold: float) -> _Population:
    latest = latest_analysis()
    statement = (
        select(
            Ticket.id,
            ticket_opened_at().label("opened"),
            Ticket.created_at,
            Ticket.severity,
            Ticket.resolved_at,
            Analysis.confidence,
            Analysis.best_runbook_id,
            is_covered().label("approved"),
        )
        .outerjoin(latest, latest.c.ticket_id == Ticket.id)
        .outerjoin(Analysis, Analysis.id == latest.c.analysis_id)
        .where(*_query_filters(query))
        .order_by(Ticket.id)
        .execution_options(yield_per=ROW_CHUNK)
    )
    ids: list[int] = []
    created: list[float] = []
    severities: list[str | None] = []
    hours: list[float] = []
    confidence: list[float] = []
    best: list[int] = []
    times: list[float] = []
    in_range_ids: list[int] = []
    not_analysed = covered = 0
    for row in session.execute(statement):
        opened = _as_utc(row.opened)
        stamp = opened.timestamp() if opened else math.nan
        times.append(stamp)
        in_range_ids.append(row.id)
        if row.confidence is None:
            not_analysed += 1
            continue
        if row.approved or row.confidence >= threshold:
            covered += 1
            continue
        ids.append(row.id)
        created.append(stamp)
        severities.append(row.severity.lower() if row.severity else None)
        source_created = _as_utc(row.created_at)
        resolved = _as_utc(row.resolved_at)
        if source_created is not None and resolved is not None and resolved >= source_created:
            hours.append((resolved - source_created).total_seconds() / 3600)
        else:
            hours.append(math.nan)
        confidence.append(float(row.confidence))
        best.append(row.best_runbook_id if row.best_runbook_id is not None else -1)
    return _Population(
        ids=np.asarray(ids, dtype=np.int64),
        created=np.asarray(created, dtype=np.float64),
        severities=severities,
        resolve_hours=np.asarray(hours, dtype=np.float64),
        confidence=np.asarray(confidence, dtype=np.float64),
        best_runbook=np.asarray(best, dtype=np.int64),
        in_range_times=np.asarray(times, dtype=np.float64),
        in_range_ids=np.asarray(in_range_ids, dtype=np.int64),
        in_range=len(times),
        not_analysed=not_analysed,
        covered=covered,
    )


def engine_ticket_vectors(engine: MatchingEngine, sessions: sessionmaker[TenantSession]) -> TicketVectors:
    """Vectors of tickets from the engine's ticket index (read back, no model); tickets missing from the
    index go through the engine's cached embedder (the SQLite cache first)."""

    def fetch(ids: Sequence[int]) -> np.ndarray:
        indexed = engine.ticket_index.ids()
        present = [i for i in ids if i in indexed]
        missing = [i for i in ids if i not in indexed]
        out = np.empty((len(ids), engine.ticket_index.dimension), dtype=np.float32)
        position = {ticket_id: row for row, ticket_id in enumerate(ids)}
        if present:
            out[[position[i] for i in present]] = engine.ticket_index.vectors(present)
        if missing:
            with sessions() as session:
                tickets = {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_(missing)))}
            out[[position[i] for i in missing]] = engine.embedder.encode(
                [ticket_text(tickets[i]) for i in missing]
            )
        return out

    return fetch


def _load_vectors(
    ids: np.ndarray,
    fetch: TicketVectors,
    progress: Progress,
) -> np.ndarray:
    matrix: np.ndarray | None = None
    for start in range(0, len(ids), VECTOR_CHUNK):
        raise_if_cancelled(progress, "gap analysis")
        chunk = np.asarray(fetch(ids[start : start + VECTOR_CHUNK].tolist()), dtype=np.float32)
        if matrix is None:
            matrix = np.empty((len(ids), chunk.shape[1]), dtype=np.float32)
        # Normalised per chunk: a norm over the whole matrix would build a full-size temporary.
        norms = np.linalg.norm(chunk, axis=1, keepdims=True)
        matrix[start : start + len(chunk)] = chunk / np.where(norms > 0, norms, 1.0)
        done = min(start + VECTOR_CHUNK, len(ids))
        progress.report(10 + int(30 * done / max(len(ids), 1)), 100, f"Reading vectors {done:,}/{len(ids):,}")
    if matrix is None:
        return np.zeros((0, 1), dtype=np.float32)
    return matrix


# --- Describing clusters ---------------------------------------------------------------------------------


def _chunks(values: Sequence[int], size: int = 900) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _ticket_texts(session: TenantSession, ids: Sequence[int]) -> dict[int, str]:
    """Title and description as the matcher cleans them (mail noise gone, case kept for the labels); an
    alert incident's as its embedded text is, so a label reads "disk space" rather than ``vfs.fs.size``."""
    out: dict[int, str] = {}
    for chunk in _chunks(list(dict.fromkeys(ids))):
        for ticket_id, title, description, kind in session.execute(
            select(Ticket.id, Ticket.title, Ticket.description, Ticket.kind).where(Ticket.id.in_(chunk))
        ):
            out[ticket_id] = (
                prepare_alert_text(title, description, None, None)
                if kind is TicketKind.ALERT
                else prepare_ticket_text(title, description)
            )
    return out


def _binomial_tail(successes: int, trials: int) -> float:
    """P(X >= successes) for X ~ Binomial(trials, 1/2), summed in log space (no overflow at any size)."""
    log_half = trials * math.log(0.5)
    total = 0.0
    for k in range(successes, trials + 1):
        total += math.exp(
            math.lgamma(trials + 1) - math.lgamma(k + 1) - math.lgamma(trials - k + 1) + log_half
        )
    return min(total, 1.0)


def _trend(counts: np.ndarray) -> Trend:
    """The direction of the cluster's own ticket counts, the numbers the report shows beside the word.

    First half of the range against the second (equal lengths of time): growing when the second holds at
    least :data:`TREND_FACTOR` times the first *and* a steady rate would split the tickets that unevenly less
    often than :data:`TREND_SIGNIFICANCE` (a one-sided binomial test with p = 1/2); fading the other way
    round; a split that lopsided but not that improbable (or under :data:`TREND_MIN_TICKETS` tickets) is
    unclear; anything else stable. The cluster's *share* of all
    tickets is not the criterion: when the whole range's volume rises (a connector's first sync, a bulk
    import) a growing cluster's share can fall, and "fading" beside "0 0 1 0 2 11" misleads;
    :func:`trend_words` says how the share moved when it moved the other way.
    """
    half = len(counts) // 2
    first, second = int(counts[:half].sum()), int(counts[half:].sum())
    total = first + second
    if total < TREND_MIN_TICKETS:
        return Trend.UNCLEAR
    if second >= TREND_FACTOR * first:
        return Trend.GROWING if _binomial_tail(second, total) < TREND_SIGNIFICANCE else Trend.UNCLEAR
    if first >= TREND_FACTOR * second:
        return Trend.FADING if _binomial_tail(first, total) < TREND_SIGNIFICANCE else Trend.UNCLEAR
    return Trend.STABLE


def trend_words(cluster: GapCluster) -> str:
    """The trend as a sentence whose words agree with its numbers, e.g. "growing: 1 ticket in the first
    half of the range, 13 in the second (per period: 0 0 1 0 2 11); all tickets went from 40 to 900, so its
    share of them fell from 2.5% to 1.4%" (the share is said only when it moved against the counts)."""
    counts = cluster.trend_counts
    half = len(counts) // 2
    first, second = sum(counts[:half]), sum(counts[half:])
    per_period = " ".join(str(n) for n in counts)
    text = (
        f"{cluster.trend.value}: {first} ticket{'s' if first != 1 else ''} in the first half of the range, "
        f"{second} in the second (per period: {per_period})"
    )
    if cluster.trend is Trend.UNCLEAR:
        text += "; too few tickets to tell a direction from chance"
    totals = cluster.total_counts
    if len(totals) == len(counts):
        all_first, all_second = sum(totals[:half]), sum(totals[half:])
        if all_first and all_second:
            share_first, share_second = first / all_first, second / all_second
            rising = share_second >= TREND_FACTOR * share_first
            falling = share_first >= TREND_FACTOR * share_second
            against = (rising and cluster.trend is not Trend.GROWING) or (
                falling and cluster.trend is not Trend.FADING
            )
            if against:
                text += (
                    f"; all tickets went from {all_first} to {all_second}, so its share of them "
                    f"{'rose' if rising else 'fell'} from {share_first:.1%} to {share_second:.1%}"
                )
    return text


def _bucket_counts(times: np.ndarray, start: float, end: float) -> np.ndarray:
    finite = times[np.isfinite(times)]
    if end <= start:
        return np.asarray([len(finite)] + [0] * (TREND_BUCKETS - 1))
    edges = np.linspace(start, end, TREND_BUCKETS + 1)
    edges[-1] = np.nextafter(edges[-1], np.inf)
    counts, _ = np.histogram(finite, bins=edges)
    return counts


def _member_notes(session: TenantSession, ordered_ids: Sequence[int]) -> list[tuple[int, str, str]]:
    """``(ticket id, external id, cleaned note)`` of the members with a resolution note, in the given order
    (most central first)."""
    rows = {
        ticket_id: (external_id, notes)
        for chunk in _chunks(list(ordered_ids))
        for ticket_id, external_id, notes in session.execute(
            select(Ticket.id, Ticket.external_id, Ticket.resolution_notes).where(Ticket.id.in_(chunk))
        )
    }
    out = []
    for ticket_id in ordered_ids:
        external_id, raw = rows.get(ticket_id, ("", None))
        text = clean_note(raw) if raw else ""
        if text:
            out.append((ticket_id, external_id, text))
    return out


def _resolution_notes(notes: Sequence[tuple[int, str, str]]) -> tuple[ResolutionNote, ...]:
    """The notes the members closed with (hand-overs included: who took them over is worth knowing), most
    common first; notes that only say the ticket was closed are left out."""
    found: dict[str, list[Any]] = {}
    for ticket_id, external_id, text in notes:  # most central first: the first is the citation
        if says_only_closed(text):
            continue
        entry = found.setdefault(text.casefold(), [text, 0, external_id, ticket_id])
        entry[1] += 1
    ordered = sorted(found.values(), key=lambda e: -e[1])  # stable: ties stay in centrality order
    return tuple(ResolutionNote(*entry) for entry in ordered[:NOTES_SHOWN])


def _common_steps(steps: Sequence[tuple[str, str, int]]) -> tuple[ResolutionNote, ...]:
    """Distinct ``(step, external id, ticket id)`` steps, most common first, each citing its first ticket;
    near-duplicates (:data:`~core.workflow.draft_steps.NEAR_DUPLICATE`) count as one."""
    found: list[tuple[frozenset[str], list[Any]]] = []
    for text, external_id, ticket_id in steps:
        terms = step_terms(text)
        for known, entry in found:
            if step_overlap(terms, known) >= NEAR_DUPLICATE:
                entry[1] += 1
                break
        else:
            found.append((terms, [text, 1, external_id, ticket_id]))
    ordered = sorted((entry for _, entry in found), key=lambda e: -e[1])  # stable: centrality breaks ties
    return tuple(ResolutionNote(*entry) for entry in ordered[:DRAFT_STEPS])


def _procedure_groups(steps: Sequence[str]) -> tuple[int, ...]:
    """How many documented members used each procedure, largest first. A step joins the first group whose
    first step shares at least :data:`SAME_PROCEDURE` of their terms (Jaccard), else starts a group;
    comparing with the group's first step, not any member, keeps a chain of small changes from merging
    different fixes."""
    groups: list[tuple[frozenset[str], int]] = []
    for text in steps:
        terms = step_terms(text)
        for index, (first, size) in enumerate(groups):
            if step_overlap(terms, first) >= SAME_PROCEDURE:
                groups[index] = (first, size + 1)
                break
        else:
            groups.append((terms, 1))
    return tuple(sorted((size for _, size in groups), reverse=True))


def _nearest_runbook(
    session: TenantSession,
    best: np.ndarray,
    confidence: np.ndarray,
    terms: Sequence[str],
    threshold: float,
) -> NearestRunbook | None:
    known = best[best >= 0]
    if not len(known):
        return None
    values, counts = np.unique(known, return_counts=True)
    runbook_id = int(values[np.argmax(counts)])  # ties: the lowest id (np.unique sorts)
    runbook = session.get(Runbook, runbook_id)
    if runbook is None:
        return None
    chosen = best == runbook_id
    mean_confidence = float(confidence[chosen].mean())
    runbook_terms = {stem(t) for t in lexical_terms(f"{runbook.title}\n{runbook.body}")}
    missing = tuple(term for term in terms if stem(term) not in runbook_terms)
    reason = (
        f"its best confidence for these tickets averages {mean_confidence:.0%}, below the review threshold "
        f"{threshold:.0%}"
    )
    if missing:
        reason += f"; it never mentions {', '.join(missing[:5])}"
    return NearestRunbook(
        runbook_id=runbook_id,
        title=runbook.title,
        confidence=mean_confidence,
        share=float(chosen.sum() / len(best)),
        missing_terms=missing,
        reason=reason,
    )


def _cluster_key(member_ids: np.ndarray) -> str:
    digest = hashlib.sha256(np.sort(member_ids).astype("<i8").tobytes()).hexdigest()
    return "g" + digest[:10]


@dataclass
class _Draft:
    """A cluster being described (mutable while the analysis runs; frozen into a GapCluster at the end)."""

    rows: np.ndarray  # positions in the population
    centroid: np.ndarray
    similarities: np.ndarray  # of rows, to the centroid
    key: str
    values: dict[str, Any] = field(default_factory=dict)


# --- Dismissals ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Dismissal:
    id: int
    centroid: np.ndarray
    members: frozenset[int]
    dismissed_by: str
    dismissed_at: datetime
    reason: str | None


def _load_dismissals(session: TenantSession, model_id: str, dimension: int) -> list[_Dismissal]:
    out = []
    for row in session.scalars(select(GapDismissal).order_by(GapDismissal.id)):
        centroid = np.frombuffer(row.centroid, dtype=np.float32)
        usable = row.model_id == model_id and len(centroid) == dimension
        out.append(
            _Dismissal(
                id=row.id,
                # Another model's centroid is not comparable: such a dismissal matches by members only.
                centroid=centroid if usable else np.zeros(0, dtype=np.float32),
                members=frozenset(int(i) for i in row.member_ticket_ids),
                dismissed_by=row.dismissed_by,
                dismissed_at=row.dismissed_at,
                reason=row.reason,
            )
        )
    return out


def _matching_dismissal(
    centroid: np.ndarray, members: Sequence[int], dismissals: Sequence[_Dismissal], settings: GapSettings
) -> _Dismissal | None:
    member_set = set(members)
    for dismissal in dismissals:
        if len(dismissal.centroid) and float(centroid @ dismissal.centroid) >= settings.dismissal_similarity:
            return dismissal
        if member_set and len(member_set & dismissal.members) / len(member_set) >= settings.dismissal_overlap:
            return dismissal
    return None


def dismiss_gap(
    session: TenantSession, cluster: GapCluster, model_id: str, *, actor: str, reason: str | None = None
) -> int:
    """Remember "not a gap" for this cluster (and clusters like it later), audited; returns the dismissal
    id. The caller commits."""
    dismissal = GapDismissal(
        tenant_id=session.tenant_id,
        label=cluster.label[:500],
        terms=list(cluster.terms),
        model_id=model_id,
        centroid=cluster.centroid,
        member_ticket_ids=list(cluster.member_ticket_ids),
        reason=reason or None,
        dismissed_by=actor,
    )
    session.add(dismissal)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="gap.dismissed",
        entity_type="gap_dismissal",
        entity_id=dismissal.id,
        after={
            "label": cluster.label,
            "key": cluster.key,
            "size": cluster.size,
            "reason": reason or None,
            "tickets": list(cluster.member_ticket_ids[:50]),
        },
    )
    return dismissal.id


def restore_gap(session: TenantSession, dismissal_id: int, *, actor: str) -> None:
    """Undo a "not a gap": the cluster is ranked again on the next analysis. Audited; the caller commits."""
    dismissal = session.get(GapDismissal, dismissal_id)
    if dismissal is None:
        raise LookupError(f"no gap dismissal {dismissal_id}")
    record_audit(
        session,
        actor=actor,
        action="gap.restored",
        entity_type="gap_dismissal",
        entity_id=dismissal_id,
        before={"label": dismissal.label, "reason": dismissal.reason, "dismissed_by": dismissal.dismissed_by},
    )
    session.delete(dismissal)


# --- The analysis ----------------------------------------------------------------------------------------


def analyse_gaps(
    sessions: sessionmaker[TenantSession],
    ticket_vectors: TicketVectors,
    model_id: str,
    query: GapQuery = GapQuery(),
    *,
    settings: GapSettings | None = None,
    progress: Progress = NO_PROGRESS,
    micro_limit: int = MICRO_LIMIT,
    now: datetime | None = None,
    article_search: ArticleSearch | None = None,
) -> GapReport:
    """Find, describe and rank the gaps in ``query``'s tickets; ``ticket_vectors(ids)`` gives their vectors
    (see :func:`engine_ticket_vectors`), ``model_id`` names the model they come from; ``article_search``
    (the engine) finds the knowledge articles that cover a gap (module docstring), None: no article look-up.

    ``progress`` hears of each step in percent (``total`` is 100) and is asked between steps and chunks
    whether to stop: a cancel raises :class:`~core.errors.OperationCancelledError`.
    """

    def report(done: int, message: str) -> None:
        progress.report(done, 100, message)

    report(0, "Reading tickets")
    with sessions() as session:
        settings = settings or load_settings(session, GapSettings)
        threshold = load_settings(session, Thresholds).partial
        population = _read_population(session, query, threshold)
    raise_if_cancelled(progress, "gap analysis")
    report(10, f"{len(population.ids):,} uncovered tickets")
    vectors = _load_vectors(population.ids, ticket_vectors, progress)
    raise_if_cancelled(progress, "gap analysis")
    report(40, "Clustering")
    labels = cluster_vectors(
        vectors,
        distance_cut=settings.distance_cut,
        min_cluster_size=settings.min_cluster_size,
        seed=settings.seed,
        micro_limit=micro_limit,
    )
    raise_if_cancelled(progress, "gap analysis")
    report(70, "Describing clusters")

    finite_times = population.in_range_times[np.isfinite(population.in_range_times)]
    since, until = _as_utc(query.since), _as_utc(query.until)
    first_seen = float(finite_times.min()) if len(finite_times) else 0.0
    last_seen = float(finite_times.max()) if len(finite_times) else 0.0
    range_start = since.timestamp() if since else first_seen
    range_end = until.timestamp() if until else last_seen
    totals = _bucket_counts(population.in_range_times, range_start, range_end)
    resolved_hours = population.resolve_hours[np.isfinite(population.resolve_hours)]
    fallback_hours = float(resolved_hours.mean()) if len(resolved_hours) else settings.default_resolve_hours
    uncovered = len(population.ids)

    drafts: list[_Draft] = []
    for label in range(int(labels.max()) + 1 if len(labels) else 0):
        rows = np.flatnonzero(labels == label)
        centroid = vectors[rows].sum(axis=0)
        centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
        similarities = vectors[rows] @ centroid
        order = np.lexsort((population.ids[rows], -similarities))  # most central first, ties by id
        drafts.append(
            _Draft(
                rows=rows[order],
                centroid=centroid.astype(np.float32),
                similarities=similarities[order],
                key=_cluster_key(population.ids[rows]),
            )
        )
    noise_rows = np.flatnonzero(labels < 0)
    del vectors

    with sessions() as session:
        # Labels and platforms: the central members of each cluster, weighed against a sample of the whole
        # range (covered tickets too: see core.analytics.gap_labels).
        stride = max(1, len(population.in_range_ids) // BACKGROUND_SAMPLE)
        background_ids = [int(i) for i in population.in_range_ids[::stride][:BACKGROUND_SAMPLE]]
        central = [[int(population.ids[r]) for r in d.rows[:LABEL_SAMPLE]] for d in drafts]
        texts = _ticket_texts(session, [i for ids in central for i in ids] + background_ids)
        vocabulary = Vocabulary()
        documents = {ticket_id: LabelDocument.read(text, vocabulary) for ticket_id, text in texts.items()}
        empty = LabelDocument(frozenset(), frozenset())
        labels_of = label_clusters(
            [[(i, documents.get(i, empty)) for i in ids] for ids in central],
            [(i, documents.get(i, empty)) for i in background_ids],
            vocabulary,
        )
        platforms = [dominant_platform(texts.get(i, "") for i in ids) for ids in central]
        del documents, texts
        dismissals = _load_dismissals(session, model_id, len(drafts[0].centroid) if drafts else 0)
        for number, draft in enumerate(drafts):
            raise_if_cancelled(progress, "gap analysis")
            report(70 + int(25 * number / max(len(drafts), 1)), f"Describing cluster {number + 1}")
            _describe(
                session,
                draft,
                population,
                labels_of[number],
                platforms[number],
                settings,
                threshold,
                fallback_hours,
            )
            if article_search is not None:
                _cover(session, draft, population, article_search, threshold)
            counts = _bucket_counts(population.created[draft.rows], range_start, range_end)
            draft.values["trend_counts"] = tuple(int(c) for c in counts)
            draft.values["total_counts"] = tuple(int(c) for c in totals)
            draft.values["trend"] = _trend(counts)
            draft.values["share"] = len(draft.rows) / uncovered if uncovered else 0.0
        ranked_drafts: list[_Draft] = []
        dismissed_drafts: list[tuple[_Draft, _Dismissal]] = []
        for draft in drafts:
            members = population.ids[draft.rows].tolist()
            match = _matching_dismissal(draft.centroid, members, dismissals, settings)
            if match is None:
                ranked_drafts.append(draft)
            else:
                dismissed_drafts.append((draft, match))

    ranked_drafts.sort(key=lambda d: (-d.values["impact"] / d.values["fix_effort"], -len(d.rows), d.key))
    total_impact = sum(d.values["impact"] for d in ranked_drafts)
    clusters: list[GapCluster] = []
    running = 0.0
    for rank, draft in enumerate(ranked_drafts, start=1):
        running += draft.values["impact"]
        clusters.append(
            _freeze(
                draft,
                population,
                rank=rank,
                impact_share=draft.values["impact"] / total_impact if total_impact else 0.0,
                cumulative_share=running / total_impact if total_impact else 0.0,
            )
        )
    dismissed = tuple(
        DismissedGap(
            cluster=_freeze(draft, population, rank=0, impact_share=0.0, cumulative_share=0.0),
            dismissal_id=match.id,
            dismissed_by=match.dismissed_by,
            dismissed_at=match.dismissed_at,
            reason=match.reason,
        )
        for draft, match in dismissed_drafts
    )
    report(100, f"{len(clusters)} gaps")
    return GapReport(
        query=query,
        settings=settings,
        model_id=model_id,
        generated_at=now or datetime.now(UTC),
        range_start=datetime.fromtimestamp(range_start, UTC) if population.in_range or since else None,
        range_end=datetime.fromtimestamp(range_end, UTC) if population.in_range or until else None,
        review_threshold=threshold,
        in_range=population.in_range,
        not_analysed=population.not_analysed,
        covered=population.covered,
        uncovered=uncovered,
        noise=len(noise_rows),
        clusters=tuple(clusters),
        dismissed=dismissed,
        method=(
            f"average-linkage clustering on cosine similarity, cut at mean cosine "
            f"{1 - settings.distance_cut:.2f}, clusters of at least {settings.min_cluster_size} tickets"
            + (f" (from {micro_limit:,} k-means micro-clusters)" if uncovered > micro_limit else "")
        ),
    )


def _describe(
    session: TenantSession,
    draft: _Draft,
    population: _Population,
    naming: ClusterLabel,
    platform: Platform | None,
    settings: GapSettings,
    threshold: float,
    fallback_hours: float,
) -> None:
    rows = draft.rows
    terms = naming.terms
    severities = [population.severities[r] for r in rows]
    mix = Counter(s or UNKNOWN_SEVERITY for s in severities)
    hours = population.resolve_hours[rows]
    resolved = hours[np.isfinite(hours)]
    mttr = float(resolved.mean()) if len(resolved) else None
    mean_weight = float(np.mean([settings.weight(s) for s in severities]))
    impact_hours = mttr if mttr is not None else fallback_hours
    central_ids = [int(population.ids[r]) for r in rows[:CENTRAL_TICKETS]]
    tickets = {t.id: t for t in session.execute(select(Ticket).where(Ticket.id.in_(central_ids))).scalars()}
    notes = _member_notes(session, [int(population.ids[r]) for r in rows[:NOTES_FROM_MEMBERS]])
    steps = [(step_text(text), external_id, ticket_id) for ticket_id, external_id, text in notes]
    documented = [(text, source, ticket_id) for text, source, ticket_id in steps if text is not None]
    draft.values.update(
        covering_article=None,
        article_steps=(),
        fix_effort=1.0,
        label=naming.label or f"cluster {draft.key}",
        title=naming.title or naming.label or f"Gap {draft.key}",
        entities=naming.entities,
        platform=platform,
        terms=terms,
        severity_mix=tuple(sorted(mix.items(), key=lambda item: (-item[1], item[0]))),
        mttr_hours=mttr,
        resolved_count=len(resolved),
        mean_severity_weight=mean_weight,
        impact=len(rows) * mean_weight * impact_hours,
        impact_hours=impact_hours,
        cohesion=float(draft.similarities.mean()),
        central_tickets=tuple(
            ExampleTicket(
                ticket_id=ticket_id,
                external_id=tickets[ticket_id].external_id,
                title=tickets[ticket_id].title,
                severity=tickets[ticket_id].severity,
                created_at=tickets[ticket_id].created_at,
                similarity=float(draft.similarities[position]),
            )
            for position, ticket_id in enumerate(central_ids)
            if ticket_id in tickets
        ),
        resolution_notes=_resolution_notes(notes),
        steps=_common_steps([step for step in documented if fits_platform(step[0], platform)]),
        notes_read=len(notes),
        documented=len(documented),
        procedure_groups=_procedure_groups([text for text, _, _ in documented]),
        nearest_runbook=_nearest_runbook(
            session, population.best_runbook[rows], population.confidence[rows], terms, threshold
        ),
    )


def _cover(
    session: TenantSession,
    draft: _Draft,
    population: _Population,
    article_search: ArticleSearch,
    threshold: float,
) -> None:
    """The article covering the gap, and the article steps for its draft (module docstring)."""
    central_ids = [int(population.ids[r]) for r in draft.rows[:CENTRAL_TICKETS]]
    tickets = session.scalars(select(Ticket).where(Ticket.id.in_(central_ids))).all()
    best_hits: dict[int, ArticleHit] = {}  # each article's best hit over the members, for the steps
    confident: dict[int, list[float]] = {}  # article -> confidences where it is a member's confident best
    for ticket in tickets:
        hits = article_search.search_articles(
            ticket_text(ticket), ARTICLES_FOR_DRAFT, lexical_text=ticket_lexical_text(ticket)
        )
        for hit in hits:
            if hit.article_id not in best_hits or hit.confidence > best_hits[hit.article_id].confidence:
                best_hits[hit.article_id] = hit
        top = max(hits, key=lambda hit: hit.confidence, default=None)
        if top is not None and top.confidence >= threshold:
            confident.setdefault(top.article_id, []).append(top.confidence)
    searched = len(tickets)
    covering = None
    if confident and searched:
        # The article most members trust; ties: the higher mean confidence, then the lower id.
        article_id, scores = min(
            confident.items(), key=lambda item: (-len(item[1]), -np.mean(item[1]), item[0])
        )
        if len(scores) / searched >= COVERED_SHARE:
            hit = best_hits[article_id]
            covering = CoveringArticle(
                article_id=article_id,
                number=hit.number,
                title=hit.title,
                url=hit.url,
                confidence=float(np.mean(scores)),
                share=len(scores) / searched,
                adopted_runbook_id=adopted_runbook_id(session, article_id),
            )
    known = tuple(
        CandidateStep(text=step.text, source_ticket=step.source_ticket) for step in draft.values["steps"]
    )
    draft.values.update(
        covering_article=covering,
        fix_effort=ADOPT_EFFORT if covering is not None else 1.0,
        article_steps=steps_from_articles(
            session, best_hits.values(), threshold=threshold, platform=draft.values["platform"], known=known
        ),
    )


def _freeze(
    draft: _Draft, population: _Population, *, rank: int, impact_share: float, cumulative_share: float
) -> GapCluster:
    values = draft.values
    return GapCluster(
        key=draft.key,
        rank=rank,
        label=values["label"],
        terms=values["terms"],
        size=len(draft.rows),
        share=values["share"],
        trend=values["trend"],
        trend_counts=values["trend_counts"],
        severity_mix=values["severity_mix"],
        mttr_hours=values["mttr_hours"],
        resolved_count=values["resolved_count"],
        mean_severity_weight=values["mean_severity_weight"],
        impact=values["impact"],
        impact_hours=values["impact_hours"],
        impact_share=impact_share,
        cumulative_share=cumulative_share,
        cohesion=values["cohesion"],
        central_tickets=values["central_tickets"],
        resolution_notes=values["resolution_notes"],
        nearest_runbook=values["nearest_runbook"],
        member_ticket_ids=tuple(int(i) for i in population.ids[draft.rows]),
        centroid=draft.centroid.astype(np.float32).tobytes(),
        total_counts=values["total_counts"],
        title=values["title"],
        entities=values["entities"],
        platform=values["platform"],
        steps=values["steps"],
        notes_read=values["notes_read"],
        documented=values["documented"],
        procedure_groups=values["procedure_groups"],
        covering_article=values["covering_article"],
        article_steps=values["article_steps"],
        fix_effort=values["fix_effort"],
    )


def rerank(clusters: Sequence[GapCluster]) -> tuple[GapCluster, ...]:
    """The clusters ranked again by priority with fresh Pareto shares (after one was dismissed)."""
    ordered = sorted(clusters, key=lambda c: (-c.priority, -c.size, c.key))
    total = sum(c.impact for c in ordered)
    out = []
    running = 0.0
    for rank, cluster in enumerate(ordered, start=1):
        running += cluster.impact
        out.append(
            replace(
                cluster,
                rank=rank,
                impact_share=cluster.impact / total if total else 0.0,
                cumulative_share=running / total if total else 0.0,
            )
        )
    return tuple(out)


# --- Drafting a runbook ----------------------------------------------------------------------------------


def draft_from_gap(cluster: GapCluster) -> RunbookDraft:
    """A new runbook pre-filled from a gap: title from its label (no word twice), symptoms from its most
    central tickets, steps from its members' resolution notes that are actions for the cluster's platform
    (:mod:`core.workflow.draft_steps`), each citing the ticket it came from."""
    symptoms = "\n".join(
        f"- {ticket.title.strip()} ({ticket.external_id})" for ticket in cluster.central_tickets
    )
    steps = tuple(CandidateStep(text=step.text, source_ticket=step.source_ticket) for step in cluster.steps)
    tags = tuple(dict.fromkeys(term.lower() for term in (*cluster.entities, *cluster.terms)))[:TAG_COUNT]
    return RunbookDraft(
        title=cluster.title or cluster.label,
        symptoms=f"{cluster.size} tickets without a runbook, for example:\n\n{symptoms}" if symptoms else "",
        steps=steps,
        tags=tags,
        source_ticket_ids=tuple(ticket.ticket_id for ticket in cluster.central_tickets),
        article_steps=cluster.article_steps,
    )
