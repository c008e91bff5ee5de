"""The monitoring metrics (roadmap: Monitoring & Observability, Metrics to Track), each computed by ONE SQL
query over a time range cut into buckets.

Time axes. A metric about tickets counts each ticket once, in the bucket of its *opened* time: the source
system's ``created_at``, or ``ingested_at`` for a ticket the source gave no creation time. So "coverage in
the week of 2 June" means "of the tickets opened that week, the share that has a linked runbook now": a
cohort, whose value still moves while analysts review those tickets. Two metrics have their own axis:
tickets ingested (``ingested_at``, when the ticket reached this store) and sync failures (the run's
``started_at``). A range is ``[since, until)``; buckets are hours, days or ISO weeks (from Monday) in UTC.

Definitions (link and analysis state as :mod:`core.workflow.review` and :mod:`core.matching.analysis` leave
it):

* *analysed ticket*: has at least one ``analyses`` row; its *latest analysis* is the one with the highest id.
* *automatic link*: a ``ticket_runbook_links`` row with ``linked_automatically`` (analysis linked it at or
  above the link threshold; the flag stays when an analyst later confirms or rejects the link).
* *confirmed* automatic link: an analyst reviewed it (``reviewed_at`` set) and it is ``linked``;
  *reverted*: reviewed and ``rejected`` (rejected outright, or superseded by the analyst linking another
  runbook or a new draft). An undone decision puts the link back unreviewed: neither.
* *linked ticket* (covered): has a link whose decision is ``linked`` - confirmed by an analyst, or automatic
  and not reverted.

=====================  ===========================================================================
tickets_ingested       tickets stored per bucket of ``ingested_at``, one series per source system
auto_link_rate         analysed tickets with an automatic link / analysed tickets
auto_link_success      confirmed / (confirmed + reverted) automatic links (unreviewed ones are unknown)
false_positive_rate    reverted / (confirmed + reverted) automatic links: 1 - success; the roadmap's
                       "< 10 %" goal is stated on this side
coverage               linked tickets / all tickets
average_confidence     mean confidence of each analysed ticket's latest analysis
manual_intervention    analysed tickets with no standing automatic link (flagged for review, left for
                       a new runbook, or auto-linked and reverted) / analysed tickets
sync_failures          failed sync runs per bucket of ``started_at``, one series per connector
mttr                   mean ``resolved_at - created_at`` in hours of resolved tickets, linked and unlinked;
                       a ticket whose linked runbook did not help it (its outcome, :mod:`core.workflow.
                       outcomes`, is a failure) counts as unlinked: a runbook did not resolve it;
                       monitoring incidents (kind ``alert``) are left out: alerts recover by themselves
=====================  ===========================================================================

A rate or mean over an empty bucket is ``None`` (no data), never 0. Each point keeps its numerator and
denominator, so the whole-range figure is the exact ratio of the sums, not a mean of bucket means.

Scorecard (roadmap: Success Criteria): coverage >= 70 %; false-positive rate < 10 %; MTTR change, stated
two ways: linked vs unlinked tickets in the range ((linked - unlinked) / unlinked; below 0 means tickets with
a runbook resolve faster) and this range vs the one just before it, of the same length (all resolved
tickets; below 0 means faster).

Buckets and durations are :mod:`core.store.sql`'s, so the same queries run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import enum
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select
from sqlalchemy.orm import aliased, sessionmaker

from core.csv_safety import csv_writer
from core.queries import has_link, is_analysed, is_covered, latest_analysis, ticket_opened_at
from core.store.models import (
    Analysis,
    ConnectorConfig,
    LinkDecision,
    OutcomeKind,
    OutcomeSource,
    RunbookOutcome,
    SyncRun,
    SyncStatus,
    Ticket,
    TicketKind,
    TicketRunbookLink,
)
from core.store.repository import record_audit
from core.store.sql import hours_between, time_bucket
from core.store.tenancy import TenantSession

MAX_BUCKETS = 10_000  # an hourly chart over a year is 8,760 points; more is a mistake, not a chart
COVERAGE_GOAL = 0.70
FALSE_POSITIVE_GOAL = 0.10


class Bucket(enum.StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"


class MetricKind(enum.StrEnum):
    COUNT = "count"  # value = numerator
    RATIO = "ratio"  # value = numerator / denominator, a fraction 0..1
    MEAN = "mean"  # value = numerator (a sum) / denominator (how many)


@dataclass(frozen=True, slots=True)
class MetricDefinition:
    key: str
    title: str
    kind: MetricKind
    unit: str  # what the value counts or measures: "tickets", "confidence", "hours"; ratios are shares
    definition: str


METRICS: tuple[MetricDefinition, ...] = (
    MetricDefinition(
        "tickets_ingested",
        "Tickets ingested",
        MetricKind.COUNT,
        "tickets",
        "Tickets stored per bucket of their ingestion time, per source system.",
    ),
    MetricDefinition(
        "auto_link_rate",
        "Auto-link rate",
        MetricKind.RATIO,
        "of analysed tickets",
        "Analysed tickets the analysis linked to a runbook automatically.",
    ),
    MetricDefinition(
        "auto_link_success",
        "Auto-link success rate",
        MetricKind.RATIO,
        "of reviewed auto-links",
        "Automatic links an analyst confirmed, of those an analyst confirmed or reverted.",
    ),
    MetricDefinition(
        "false_positive_rate",
        "False-positive rate (auto-links)",
        MetricKind.RATIO,
        "of reviewed auto-links",
        "Automatic links an analyst reverted (rejected or replaced), of those confirmed or reverted.",
    ),
    MetricDefinition(
        "coverage",
        "Coverage",
        MetricKind.RATIO,
        "of tickets",
        "Tickets with a linked runbook (confirmed, or automatic and not reverted).",
    ),
    MetricDefinition(
        "average_confidence",
        "Average confidence",
        MetricKind.MEAN,
        "confidence",
        "Mean best-match confidence of each analysed ticket's latest analysis.",
    ),
    MetricDefinition(
        "manual_intervention",
        "Manual intervention rate",
        MetricKind.RATIO,
        "of analysed tickets",
        "Analysed tickets without a standing automatic link: an analyst had to act.",
    ),
    MetricDefinition(
        "sync_failures",
        "Connector sync failures",
        MetricKind.COUNT,
        "failed runs",
        "Failed sync runs per bucket of their start time, per connector.",
    ),
    MetricDefinition(
        "mttr",
        "Mean time to resolve",
        MetricKind.MEAN,
        "hours",
        "Mean hours from created to resolved, for tickets with and without a linked runbook (a ticket "
        "whose runbook did not help, by its recorded outcome, counts as without).",
    ),
)
METRIC_BY_KEY = {metric.key: metric for metric in METRICS}


# --------------------------------------------------------------------------------------------------------
# Range and buckets
# --------------------------------------------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def bucket_start(value: datetime, bucket: Bucket) -> datetime:
    """The start (UTC) of the bucket holding ``value``; weeks start on Monday."""
    value = _utc(value)
    if bucket is Bucket.HOUR:
        return value.replace(minute=0, second=0, microsecond=0)
    day = value.replace(hour=0, minute=0, second=0, microsecond=0)
    if bucket is Bucket.DAY:
        return day
    return day - timedelta(days=day.weekday())


def _step(bucket: Bucket) -> timedelta:
    return {Bucket.HOUR: timedelta(hours=1), Bucket.DAY: timedelta(days=1), Bucket.WEEK: timedelta(weeks=1)}[
        bucket
    ]


@dataclass(frozen=True, slots=True)
class MetricRange:
    """``[since, until)`` in UTC (naive times are taken as UTC), cut into buckets."""

    since: datetime
    until: datetime
    bucket: Bucket = Bucket.DAY

    def __post_init__(self) -> None:
        object.__setattr__(self, "since", _utc(self.since))
        object.__setattr__(self, "until", _utc(self.until))
        object.__setattr__(self, "bucket", Bucket(self.bucket))
        if self.since >= self.until:
            raise ValueError(f"the range must end after it starts ({self.since} .. {self.until})")
        count = (self.until - bucket_start(self.since, self.bucket)) / _step(self.bucket)
        if count > MAX_BUCKETS:
            raise ValueError(
                f"{int(count):,} {self.bucket.value} buckets is too many to chart; choose a longer bucket"
            )

    def bucket_starts(self) -> tuple[datetime, ...]:
        """Every bucket the range touches; the first may start before ``since`` (it is partly outside)."""
        step = _step(self.bucket)
        current = bucket_start(self.since, self.bucket)
        starts = []
        while current < self.until:
            starts.append(current)
            current += step
        return tuple(starts)

    def previous(self) -> MetricRange:
        """The range of the same length just before this one (period-over-period comparisons)."""
        length = self.until - self.since
        return MetricRange(self.since - length, self.since, self.bucket)


def _bucket_sql(column: Any, bucket: Bucket) -> ColumnElement[Any]:
    # Times are stored as naive UTC; the bucket is its start as text on both engines (core.store.sql).
    if bucket is Bucket.HOUR:
        return time_bucket(column, "hour")
    if bucket is Bucket.DAY:
        return time_bucket(column, "day")
    return time_bucket(column, "week")


def _parse_bucket(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --------------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------------


def _value(kind: MetricKind, numerator: float, denominator: int | None) -> float | None:
    if kind is MetricKind.COUNT:
        return numerator
    if not denominator:
        return None
    return numerator / denominator


@dataclass(frozen=True, slots=True)
class MetricPoint:
    bucket: datetime  # the bucket's start, UTC
    value: float | None  # None: nothing to measure in this bucket (a rate over no tickets)
    numerator: float  # the count, or the sum whose share or mean the value is
    denominator: int | None  # sample size of a rate or mean; None for a plain count


@dataclass(frozen=True, slots=True)
class MetricSeries:
    key: str
    title: str
    kind: MetricKind
    unit: str
    group: str  # "" for a metric's only series; else the source system, connector, "linked"/"unlinked"
    points: tuple[MetricPoint, ...]

    @property
    def total_numerator(self) -> float:
        return sum(point.numerator for point in self.points)

    @property
    def total_denominator(self) -> int | None:
        if self.kind is MetricKind.COUNT:
            return None
        return sum(point.denominator or 0 for point in self.points)

    @property
    def overall(self) -> float | None:
        """The whole range's figure: the ratio of the summed numerators and denominators."""
        return _value(self.kind, self.total_numerator, self.total_denominator)

    @property
    def label(self) -> str:
        return f"{self.title} ({self.group})" if self.group else self.title


# (bucket text, group, numerator, denominator) rows, as each metric's query returns them.
Row = tuple[str, str, float, int | None]


def _series(
    key: str, metric_range: MetricRange, rows: Iterable[Row], groups: Iterable[str] = ()
) -> tuple[MetricSeries, ...]:
    """Spread query rows over every bucket of the range (empty buckets: 0 counts, ``None`` rates)."""
    metric = METRIC_BY_KEY[key]
    by_group: dict[str, dict[datetime, tuple[float, int | None]]] = {group: {} for group in groups}
    for bucket_text, group, numerator, denominator in rows:
        by_group.setdefault(group, {})[_parse_bucket(bucket_text)] = (float(numerator or 0), denominator)
    if not by_group:
        by_group[""] = {}
    # A count with context (sync failures keep the number of runs) shows "0 of 0" in an empty bucket.
    has_context = any(d is not None for cells in by_group.values() for _n, d in cells.values())
    empty_denominator = None if metric.kind is MetricKind.COUNT and not has_context else 0
    result = []
    for group in sorted(by_group):
        cells = by_group[group]
        points = []
        for start in metric_range.bucket_starts():
            numerator, denominator = cells.get(start, (0.0, empty_denominator))
            if metric.kind is not MetricKind.COUNT:
                denominator = int(denominator or 0)
            points.append(
                MetricPoint(start, _value(metric.kind, numerator, denominator), numerator, denominator)
            )
        result.append(MetricSeries(key, metric.title, metric.kind, metric.unit, group, tuple(points)))
    return tuple(result)


# --------------------------------------------------------------------------------------------------------
# The queries, one per metric
# --------------------------------------------------------------------------------------------------------


def _in_range(column: Any, metric_range: MetricRange) -> ColumnElement[bool]:
    return and_(column >= metric_range.since, column < metric_range.until)


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def _ticket_ratio(
    session: TenantSession,
    metric_range: MetricRange,
    numerator: ColumnElement[bool],
    population: ColumnElement[bool] | None = None,
) -> list[Row]:
    """Tickets opened in the range, per bucket: how many meet ``numerator`` of how many are counted."""
    bucket = _bucket_sql(ticket_opened_at(), metric_range.bucket)
    query = select(bucket, _count_if(numerator), func.count()).where(
        _in_range(ticket_opened_at(), metric_range)
    )
    if population is not None:
        query = query.where(population)
    return [(text, "", n or 0, d) for text, n, d in session.execute(query.group_by(bucket)).all()]


def tickets_ingested(session: TenantSession, metric_range: MetricRange) -> tuple[MetricSeries, ...]:
    bucket = _bucket_sql(Ticket.ingested_at, metric_range.bucket)
    query = (
        select(bucket, Ticket.source_system, func.count())
        .where(_in_range(Ticket.ingested_at, metric_range))
        .group_by(bucket, Ticket.source_system)
    )
    rows = [(text, source, count, None) for text, source, count in session.execute(query).all()]
    return _series("tickets_ingested", metric_range, rows)


def auto_link_rate(session: TenantSession, metric_range: MetricRange) -> tuple[MetricSeries, ...]:
    automatic = has_link(TicketRunbookLink.linked_automatically.is_(True))
    rows = _ticket_ratio(session, metric_range, automatic, is_analysed())
    return _series("auto_link_rate", metric_range, rows)


def _auto_link_outcomes(session: TenantSession, metric_range: MetricRange) -> list[tuple[str, int, int]]:
    """Per bucket of the ticket's opened time: (bucket, confirmed, reverted) reviewed automatic links."""
    bucket = _bucket_sql(ticket_opened_at(), metric_range.bucket)
    query = (
        select(
            bucket,
            _count_if(TicketRunbookLink.decision == LinkDecision.LINKED),
            _count_if(TicketRunbookLink.decision == LinkDecision.REJECTED),
        )
        .select_from(TicketRunbookLink)
        .join(Ticket, Ticket.id == TicketRunbookLink.ticket_id)
        .where(
            TicketRunbookLink.linked_automatically.is_(True),
            TicketRunbookLink.reviewed_at.is_not(None),
            _in_range(ticket_opened_at(), metric_range),
        )
        .group_by(bucket)
    )
    return [
        (text, int(confirmed or 0), int(reverted or 0))
        for text, confirmed, reverted in session.execute(query)
    ]


def auto_link_success(session: TenantSession, metric_range: MetricRange) -> tuple[MetricSeries, ...]:
    outcomes = _auto_link_outcomes(session, metric_range)
    rows = [(text, "", confirmed, confirmed + reverted) for text, confirmed, reverted in outcomes]
    return _series("auto_link_success", metric_range, rows)


def false_positive_rate(session: TenantSession, metric_range: MetricRange) -> tuple[MetricSeries, ...]:
    outcomes = _auto_link_outcomes(session, metric_range)
    rows = [(text, "", reverted, confirmed + reverted) for text, confirmed, reverted in outcomes]
    return _series("false_positive_rate", metric_range, rows)


def coverage(session: TenantSession, metric_range: MetricRange) -> tuple[MetricSeries, ...]:
    return _series("coverage", metric_range, _ticket_ratio(session, metric_range, is_covered()))


def average_confidence(session: TenantSession, metric_range: MetricRange) -> tuple[MetricSeries, ...]:
    latest = latest_analysis()
    bucket = _bucket_sql(ticket_opened_at(), metric_range.bucket)
    query = (
        select(bucket, func.sum(Analysis.confidence), func.count())
        .select_from(Ticket)
        .join(latest, latest.c.ticket_id == Ticket.id)
        .join(Analysis, Analysis.id == latest.c.analysis_id)
        .where(_in_range(ticket_opened_at(), metric_range))
        .group_by(bucket)
    )
    rows = [(text, "", total or 0.0, count) for text, total, count in session.execute(query).all()]
    return _series("average_confidence", metric_range, rows)


def manual_intervention(session: TenantSession, metric_range: MetricRange) -> tuple[MetricSeries, ...]:
    standing_automatic = has_link(
        TicketRunbookLink.linked_automatically.is_(True), TicketRunbookLink.decision == LinkDecision.LINKED
    )
    rows = _ticket_ratio(session, metric_range, ~standing_automatic, is_analysed())
    return _series("manual_intervention", metric_range, rows)


def sync_failures(session: TenantSession, metric_range: MetricRange) -> tuple[MetricSeries, ...]:
    bucket = _bucket_sql(SyncRun.started_at, metric_range.bucket)
    # A removed connector's runs stay in the history under the name they ran as; a live one's under its
    # current name, so a rename does not split its series.
    name = func.coalesce(ConnectorConfig.name, SyncRun.connector_name)
    query = (
        select(bucket, name, _count_if(SyncRun.status == SyncStatus.FAILED), func.count())
        .select_from(SyncRun)
        .outerjoin(ConnectorConfig, ConnectorConfig.id == SyncRun.connector_config_id)
        .where(_in_range(SyncRun.started_at, metric_range))
        .group_by(bucket, name)
    )
    # A count with the number of runs kept as context (CSV, tooltips): 2 failures of 2 runs, or of 300.
    rows = [(text, name, failed or 0, runs) for text, name, failed, runs in session.execute(query).all()]
    return _series("sync_failures", metric_range, rows)


LINKED, UNLINKED = "linked", "unlinked"


def _runbook_failed() -> ColumnElement[bool]:
    """The link in the enclosing query (``TicketRunbookLink``) has an outcome that counts as a failure:
    the analyst said so, or (no word from the analyst) the source showed a reopen or a recurrence
    (:func:`core.workflow.outcomes.decide_outcome`, in SQL)."""
    analyst = aliased(RunbookOutcome)
    inferred = aliased(RunbookOutcome)
    of_link = (
        analyst.ticket_id == TicketRunbookLink.ticket_id,
        analyst.runbook_id == TicketRunbookLink.runbook_id,
        analyst.source == OutcomeSource.ANALYST,
    )
    analyst_failed = exists().where(*of_link, analyst.outcome == OutcomeKind.FAILED)
    inferred_failed = exists().where(
        inferred.ticket_id == TicketRunbookLink.ticket_id,
        inferred.runbook_id == TicketRunbookLink.runbook_id,
        inferred.source.in_([OutcomeSource.SOURCE_REOPENED, OutcomeSource.RECURRENCE]),
    )
    return or_(analyst_failed, and_(~exists().where(*of_link), inferred_failed))


def mttr(session: TenantSession, metric_range: MetricRange) -> tuple[MetricSeries, ...]:
    bucket = _bucket_sql(Ticket.created_at, metric_range.bucket)
    hours = hours_between(Ticket.created_at, Ticket.resolved_at)
    # Outcomes where they exist: linked to a runbook that was not recorded as failing the ticket.
    helped = has_link(TicketRunbookLink.decision == LinkDecision.LINKED, ~_runbook_failed())
    group = case((helped, LINKED), else_=UNLINKED)
    query = (
        select(bucket, group, func.sum(hours), func.count())
        .where(
            Ticket.created_at.is_not(None),
            Ticket.resolved_at.is_not(None),
            Ticket.resolved_at >= Ticket.created_at,
            # A monitoring incident resolves when its alerts recover, often by themselves in minutes: not a
            # time to resolve that a runbook shortened (core.monitoring.incidents).
            Ticket.kind != TicketKind.ALERT,
            _in_range(Ticket.created_at, metric_range),
        )
        .group_by(bucket, group)
    )
    rows = [(text, name, total or 0.0, count) for text, name, total, count in session.execute(query).all()]
    return _series("mttr", metric_range, rows, groups=(LINKED, UNLINKED))


METRIC_QUERIES: dict[str, Callable[[TenantSession, MetricRange], tuple[MetricSeries, ...]]] = {
    "tickets_ingested": tickets_ingested,
    "auto_link_rate": auto_link_rate,
    "auto_link_success": auto_link_success,
    "false_positive_rate": false_positive_rate,
    "coverage": coverage,
    "average_confidence": average_confidence,
    "manual_intervention": manual_intervention,
    "sync_failures": sync_failures,
    "mttr": mttr,
}


# --------------------------------------------------------------------------------------------------------
# Scorecard
# --------------------------------------------------------------------------------------------------------


class GoalStatus(enum.StrEnum):
    MET = "met"
    MISSED = "missed"
    NO_DATA = "no data"


@dataclass(frozen=True, slots=True)
class ScoreItem:
    key: str
    title: str
    value: float | None  # a fraction: a share, or a relative change (-0.25 = 25 % lower)
    goal: str  # the goal in words: "at least 70 %", "faster"
    status: GoalStatus
    detail: str  # what the value is made of, for a person: "210 of 348 tickets"
    sentence: str  # the value against its goal as one plain sentence, direction in words


@dataclass(frozen=True, slots=True)
class Scorecard:
    items: tuple[ScoreItem, ...]

    def item(self, key: str) -> ScoreItem:
        for item in self.items:
            if item.key == key:
                return item
        raise KeyError(key)


def _status(value: float | None, met: Callable[[float], bool]) -> GoalStatus:
    if value is None:
        return GoalStatus.NO_DATA
    return GoalStatus.MET if met(value) else GoalStatus.MISSED


def _one(series: tuple[MetricSeries, ...], group: str = "") -> MetricSeries | None:
    return next((s for s in series if s.group == group), None)


def _relative_change(new: float | None, old: float | None) -> float | None:
    if new is None or old is None or old == 0:
        return None
    return (new - old) / old


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} h"


def _percent(share: float, decimals: int = 1) -> str:
    """A share as people write it in a sentence ("48.6 %"), unlike the compact "48.6%" of the tables."""
    return f"{share * 100:.{decimals}f} %"


def _coverage_sentence(value: float | None) -> str:
    goal = _percent(COVERAGE_GOAL, 0)
    if value is None:
        return "No tickets in this range yet, so coverage cannot be measured."
    if value > COVERAGE_GOAL:
        side = "above"
    elif value < COVERAGE_GOAL:
        side = "below"
    else:
        side = "exactly at"
    return f"Coverage {_percent(value)} — {side} the {goal} goal."


def _false_positive_sentence(value: float | None) -> str:
    limit = _percent(FALSE_POSITIVE_GOAL, 0)
    if value is None:
        return "No automatic link has been reviewed yet, so the false-positive rate is not known."
    side = "under" if value < FALSE_POSITIVE_GOAL else "over" if value > FALSE_POSITIVE_GOAL else "at"
    return f"False-positive rate {_percent(value)} — {side} the {limit} limit; goal: under {limit}."


def _speed(change: float) -> str:
    """A relative change of resolution time as speed: -0.07 is "7 % faster" (less time is faster)."""
    rounded = round(abs(change) * 100)
    if rounded == 0:
        return "about as fast as"
    return f"{rounded} % {'faster' if change < 0 else 'slower'} than"


def _by_link_sentence(change: float | None, linked_count: int, unlinked_count: int) -> str:
    if change is None:
        if bool(linked_count) == bool(unlinked_count):
            return "Not enough resolved tickets yet to compare those with a runbook and those without."
        missing = "with a runbook" if not linked_count else "without a runbook"
        return f"No resolved ticket {missing} yet, so there is nothing to compare; goal: faster."
    return f"Tickets with a runbook are resolved {_speed(change)} those without; goal: faster."


def _over_time_sentence(change: float | None, now_count: int) -> str:
    if change is None:
        if not now_count:
            return "No ticket was resolved in this range yet, so there is nothing to compare."
        return "Not enough resolved tickets in the period before to compare with; goal: faster."
    return f"Tickets are resolved {_speed(change)} in the period before, of the same length; goal: faster."


def build_scorecard(
    coverage_series: tuple[MetricSeries, ...],
    false_positive_series: tuple[MetricSeries, ...],
    mttr_series: tuple[MetricSeries, ...],
    previous_mttr_series: tuple[MetricSeries, ...],
) -> Scorecard:
    covered = _one(coverage_series)
    fp = _one(false_positive_series)
    linked, unlinked = _one(mttr_series, LINKED), _one(mttr_series, UNLINKED)
    coverage_value = covered.overall if covered else None
    fp_value = fp.overall if fp else None
    linked_hours = linked.overall if linked else None
    unlinked_hours = unlinked.overall if unlinked else None
    linked_count = (linked.total_denominator or 0) if linked else 0
    unlinked_count = (unlinked.total_denominator or 0) if unlinked else 0

    def all_resolved(series: tuple[MetricSeries, ...]) -> tuple[float | None, int]:
        total = sum(s.total_numerator for s in series)
        count = sum(s.total_denominator or 0 for s in series)
        return (total / count if count else None), count

    now_hours, now_count = all_resolved(mttr_series)
    before_hours, before_count = all_resolved(previous_mttr_series)
    by_link = _relative_change(linked_hours, unlinked_hours)
    over_time = _relative_change(now_hours, before_hours)
    items = (
        ScoreItem(
            "coverage",
            "Coverage",
            coverage_value,
            f"at least {_percent(COVERAGE_GOAL, 0)}",
            _status(coverage_value, lambda v: v >= COVERAGE_GOAL),
            f"{covered.total_numerator:,.0f} of {covered.total_denominator or 0:,} tickets linked"
            if covered
            else "no tickets",
            _coverage_sentence(coverage_value),
        ),
        ScoreItem(
            "false_positive_rate",
            "False-positive rate",
            fp_value,
            f"under {_percent(FALSE_POSITIVE_GOAL, 0)}",
            _status(fp_value, lambda v: v < FALSE_POSITIVE_GOAL),
            f"{fp.total_numerator:,.0f} of {fp.total_denominator or 0:,} reviewed auto-links reverted"
            if fp
            else "no reviewed auto-links",
            _false_positive_sentence(fp_value),
        ),
        ScoreItem(
            "mttr_linked_vs_unlinked",
            "MTTR, linked vs unlinked",
            by_link,
            "faster with a runbook",
            _status(by_link, lambda v: v < 0),
            f"linked {_hours(linked_hours)} (n={linked_count}) vs unlinked "
            f"{_hours(unlinked_hours)} (n={unlinked_count})",
            _by_link_sentence(by_link, linked_count, unlinked_count),
        ),
        ScoreItem(
            "mttr_vs_previous",
            "MTTR vs previous period",
            over_time,
            "faster than before",
            _status(over_time, lambda v: v < 0),
            f"{_hours(now_hours)} (n={now_count}) vs {_hours(before_hours)} (n={before_count}) "
            "in the period before",
            _over_time_sentence(over_time, now_count),
        ),
    )
    return Scorecard(items)


# --------------------------------------------------------------------------------------------------------
# Everything at once, and CSV
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricsReport:
    metric_range: MetricRange
    series: tuple[MetricSeries, ...]
    scorecard: Scorecard

    def of(self, key: str) -> tuple[MetricSeries, ...]:
        return tuple(s for s in self.series if s.key == key)


def compute_metrics(session: TenantSession, metric_range: MetricRange) -> MetricsReport:
    """Every metric over the range, and the scorecard (one query per metric, one more for the MTTR of the
    period before)."""
    by_key = {key: query(session, metric_range) for key, query in METRIC_QUERIES.items()}
    scorecard = build_scorecard(
        by_key["coverage"],
        by_key["false_positive_rate"],
        by_key["mttr"],
        mttr(session, metric_range.previous()),
    )
    series = tuple(s for metric in METRICS for s in by_key[metric.key])
    return MetricsReport(metric_range, series, scorecard)


CSV_HEADER = ("metric", "group", "bucket_start_utc", "value", "numerator", "denominator", "unit")


def write_csv(report: MetricsReport, stream: TextIO) -> int:
    """Every series, one row per bucket (values unrounded; shares as fractions). Returns the rows written."""
    writer = csv_writer(stream, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    count = 0
    for series in report.series:
        for point in series.points:
            writer.writerow(
                (
                    series.key,
                    series.group,
                    point.bucket.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "" if point.value is None else repr(round(point.value, 6)),
                    repr(round(point.numerator, 6)),
                    "" if point.denominator is None else point.denominator,
                    "share" if series.kind is MetricKind.RATIO else series.unit,
                )
            )
            count += 1
    return count


def export_csv(
    sessions: sessionmaker[TenantSession], report: MetricsReport, path: Path, *, actor: str
) -> int:
    """Write every series to ``path`` and audit the export (who wrote which range where). Returns the rows
    written; nothing is audited when the write fails."""
    with path.open("w", encoding="utf-8", newline="") as stream:
        rows = write_csv(report, stream)
    metric_range = report.metric_range
    with sessions.begin() as session:
        record_audit(
            session,
            actor=actor,
            action="export.metrics_csv",
            entity_type="report",
            entity_id=None,
            after={
                "path": str(Path(path).absolute()),
                "rows": rows,
                "since": metric_range.since.isoformat(),
                "until": metric_range.until.isoformat(),
                "bucket": metric_range.bucket.value,
            },
        )
    return rows


def csv_text(report: MetricsReport) -> str:
    buffer = io.StringIO()
    write_csv(report, buffer)
    return buffer.getvalue()


def format_value(kind: MetricKind, value: float | None, unit: str = "") -> str:
    """A value as a person reads it: shares as percentages, hours and confidences with one or two decimals."""
    if value is None:
        return "-"
    if kind is MetricKind.RATIO:
        return f"{value:.1%}"
    if kind is MetricKind.COUNT:
        return f"{value:,.0f}"
    if unit == "confidence":
        return f"{value:.2f}"
    return f"{value:,.1f} {unit}".strip()


def format_change(value: float | None) -> str:
    return "-" if value is None else f"{value:+.0%}"


__all__ = [
    "METRICS",
    "METRIC_BY_KEY",
    "Bucket",
    "GoalStatus",
    "MetricDefinition",
    "MetricKind",
    "MetricPoint",
    "MetricRange",
    "MetricSeries",
    "MetricsReport",
    "ScoreItem",
    "Scorecard",
    "bucket_start",
    "compute_metrics",
    "csv_text",
    "export_csv",
    "format_change",
    "format_value",
    "write_csv",
]
