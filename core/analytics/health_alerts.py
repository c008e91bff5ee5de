"""The app's own health alerts (roadmap: Monitoring & Observability, Alerts): raised once when their condition
starts, cleared when it ends, recorded.

Rules (thresholds in the tenant's settings, :class:`core.settings.AlertSettings`; defaults in brackets):

* ``sync_failures`` (per connector): ``consecutive_failures`` has reached ``sync_failures`` [3], the
  same count at which :mod:`connectors.sync` reports its own alert. A successful sync resets the count and
  clears the alert.
* ``unlinked_volume`` (tenant): more than ``unlinked_count`` [50] analysed tickets without a linked
  runbook (not covered, :func:`core.queries.is_covered`) arrived in the last ``unlinked_window_hours`` [24].
  Unanalysed tickets are not counted: right after an import they are only waiting for the analysis.
  "Arrived" means new work reaching the service desk, not rows reaching this store, so a backfill never
  counts (an imported demo raised "191 tickets arrived in the last 24 h" on its first start: issue 16):

  - a connector's ticket (``tickets.connector_config_id``) counts when it was ingested (``ingested_at``)
    in the window *after* that connector's first successful sync finished (``sync_runs``): the first
    sync, and any failed or cancelled attempts before it, load the system's history; the syncs after it
    bring only what is new;
  - a file-imported ticket (no connector) counts when it was ingested in the window *and* the source
    system created it (``tickets.created_at``) in the window: an export of past tickets (the demo, a
    migration) is history however many rows it holds, while a daily export of today's tickets is still
    new work. A file without creation times says nothing about arrival and is not counted.

  Both times are the store's own: ``ingested_at`` and ``sync_runs.finished_at`` come from the clock of
  the process that wrote them, ``created_at`` from the source system.
* ``low_confidence`` (tenant): the mean confidence of the latest ``confidence_samples`` [50] analyses
  (fewer if fewer exist, but at least :data:`MIN_CONFIDENCE_SAMPLES`) is below the tenant's review threshold
  (``Thresholds.partial``): matching is getting worse, or the tickets have moved away from the runbooks.
* ``rate_limit`` (per connector): the connector's latest finished sync saw a rate-limit reading
  (``X-RateLimit-Remaining`` / ``-Limit``, captured by :class:`connectors.http.HttpClient`, stored on the
  run) with at most ``rate_limit_ratio`` [10 %] of its requests left. A later sync that stays above it,
  or that saw no headers at all, clears it.
* ``secret_age`` (per connector secret): a connector's stored secret is ``secret_rotation_days`` [90] days
  old or older (a tenant setting of its own, :class:`core.store.connector_secrets.SecretSettings`);
  rotating it (or storing a new value) clears it. The subject names the connector and the field.

:func:`evaluate_alerts` compares the conditions true now with the active alerts (``cleared_at IS NULL``):
a new condition inserts an alert and audits ``alert.raised``; a condition still true refreshes the active
alert's message, value and ``checked_at`` (no new row, no notification); an active alert whose condition is
gone gets ``cleared_at`` and an ``alert.cleared`` audit row. Everything runs in the caller's transaction. A
partial unique index (migration 0006) keeps one active alert per rule and subject even if two evaluations
race; the desktop also runs one evaluation at a time.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select

from core.queries import is_analysed, is_covered
from core.settings import MIN_CONFIDENCE_SAMPLES, AlertSettings, Thresholds, load_settings
from core.store.connector_secrets import secret_ages
from core.store.models import (
    Analysis,
    ConnectorConfig,
    HealthAlert,
    SyncRun,
    SyncStatus,
    Ticket,
)
from core.store.repository import SYSTEM_ACTOR, record_audit
from core.store.tenancy import TenantSession

ALERT_ENTITY = "alert"
TENANT_SUBJECT = "tenant"


class AlertRule(enum.StrEnum):
    SYNC_FAILURES = "sync_failures"
    UNLINKED_VOLUME = "unlinked_volume"
    LOW_CONFIDENCE = "low_confidence"
    RATE_LIMIT = "rate_limit"
    SECRET_AGE = "secret_age"


RULE_TITLES = {
    AlertRule.SYNC_FAILURES: "Connector sync failing",
    AlertRule.UNLINKED_VOLUME: "Many unlinked tickets",
    AlertRule.LOW_CONFIDENCE: "Confidence dropping",
    AlertRule.RATE_LIMIT: "API rate limit approaching",
    AlertRule.SECRET_AGE: "Connector secret due for rotation",
}


# --------------------------------------------------------------------------------------------------------
# Conditions: what is true now, one query per rule
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Condition:
    rule: AlertRule
    subject: str  # what it is about: "tenant", "connector:3"
    message: str
    value: float
    threshold: float


def _connector_subject(config_id: int) -> str:
    return f"connector:{config_id}"


def sync_failure_conditions(session: TenantSession, settings: AlertSettings) -> list[Condition]:
    query = (
        select(ConnectorConfig.id, ConnectorConfig.name, ConnectorConfig.consecutive_failures)
        .where(ConnectorConfig.consecutive_failures >= settings.sync_failures)
        .order_by(ConnectorConfig.id)
    )
    return [
        Condition(
            AlertRule.SYNC_FAILURES,
            _connector_subject(config_id),
            f"Connector “{name}” failed {failures} syncs in a row (alert at {settings.sync_failures}).",
            float(failures),
            float(settings.sync_failures),
        )
        for config_id, name, failures in session.execute(query).all()
    ]


def unlinked_volume_conditions(
    session: TenantSession, settings: AlertSettings, now: datetime
) -> list[Condition]:
    since = now - timedelta(hours=settings.unlinked_window_hours)
    backfill_done = (
        select(
            SyncRun.connector_config_id.label("config_id"),
            func.min(SyncRun.finished_at).label("finished_at"),
        )
        .where(SyncRun.status == SyncStatus.SUCCEEDED, SyncRun.finished_at.is_not(None))
        .group_by(SyncRun.connector_config_id)
        .subquery("backfill_done")
    )
    arrived_by_sync = and_(
        Ticket.connector_config_id.is_not(None), Ticket.ingested_at > backfill_done.c.finished_at
    )
    arrived_by_file = and_(
        Ticket.connector_config_id.is_(None), Ticket.created_at >= since, Ticket.created_at <= now
    )
    count = (
        session.scalar(
            select(func.count())
            .select_from(Ticket)
            .outerjoin(backfill_done, backfill_done.c.config_id == Ticket.connector_config_id)
            .where(
                Ticket.ingested_at >= since,
                Ticket.ingested_at <= now,
                or_(arrived_by_sync, arrived_by_file),
                is_analysed(),
                ~is_covered(),
            )
        )
        or 0
    )
    if count <= settings.unlinked_count:
        return []
    hours = f"{settings.unlinked_window_hours:g}"
    return [
        Condition(
            AlertRule.UNLINKED_VOLUME,
            TENANT_SUBJECT,
            f"{count:,} tickets arrived in the last {hours} h without a runbook link "
            f"(alert above {settings.unlinked_count:,}).",
            float(count),
            float(settings.unlinked_count),
        )
    ]


def low_confidence_conditions(session: TenantSession, settings: AlertSettings) -> list[Condition]:
    recent = (
        select(Analysis.confidence.label("confidence"))
        .order_by(Analysis.id.desc())
        .limit(settings.confidence_samples)
        .subquery("recent_analyses")
    )
    mean, samples = session.execute(
        select(func.avg(recent.c.confidence), func.count()).select_from(recent)
    ).one()
    threshold = load_settings(session, Thresholds).partial
    if samples < MIN_CONFIDENCE_SAMPLES or mean is None or mean >= threshold:
        return []
    return [
        Condition(
            AlertRule.LOW_CONFIDENCE,
            TENANT_SUBJECT,
            f"The average confidence of the last {samples} analyses is {mean:.2f}, below the review "
            f"threshold {threshold:.2f}.",
            float(mean),
            threshold,
        )
    ]


def rate_limit_conditions(session: TenantSession, settings: AlertSettings) -> list[Condition]:
    latest = (
        select(SyncRun.connector_config_id.label("config_id"), func.max(SyncRun.id).label("run_id"))
        .where(SyncRun.finished_at.is_not(None))
        .group_by(SyncRun.connector_config_id)
        .subquery("latest_run")
    )
    ratio = SyncRun.rate_limit_remaining * 1.0 / SyncRun.rate_limit_limit
    query = (
        select(
            ConnectorConfig.id, ConnectorConfig.name, SyncRun.rate_limit_remaining, SyncRun.rate_limit_limit
        )
        .select_from(ConnectorConfig)
        .join(latest, latest.c.config_id == ConnectorConfig.id)
        .join(SyncRun, SyncRun.id == latest.c.run_id)
        .where(SyncRun.rate_limit_limit > 0, ratio <= settings.rate_limit_ratio)
        .order_by(ConnectorConfig.id)
    )
    return [
        Condition(
            AlertRule.RATE_LIMIT,
            _connector_subject(config_id),
            f"Connector “{name}” had {remaining:,} of {limit:,} API requests left in its last sync "
            f"({remaining / limit:.0%}; alert at {settings.rate_limit_ratio:.0%} or less).",
            remaining / limit,
            settings.rate_limit_ratio,
        )
        for config_id, name, remaining, limit in session.execute(query).all()
        if remaining is not None and limit  # the query's filter already; this tells the type checker
    ]


def secret_age_conditions(session: TenantSession, now: datetime) -> list[Condition]:
    """One per stored secret at or past the tenant's rotation period; its rotation ends the condition."""
    return [
        Condition(
            AlertRule.SECRET_AGE,
            f"{_connector_subject(age.config_id)}:secret:{age.field}",
            f"The {age.field} of connector “{age.connector_name}” is {age.age_days:,} days old "
            f"(rotate every {age.rotation_days:,} days).",
            float(age.age_days),
            float(age.rotation_days),
        )
        for age in secret_ages(session, now)
        if age.due
    ]


def current_conditions(
    session: TenantSession, now: datetime, settings: AlertSettings | None = None
) -> list[Condition]:
    settings = settings or load_settings(session, AlertSettings)
    return [
        *sync_failure_conditions(session, settings),
        *unlinked_volume_conditions(session, settings, now),
        *low_confidence_conditions(session, settings),
        *rate_limit_conditions(session, settings),
        *secret_age_conditions(session, now),
    ]


# --------------------------------------------------------------------------------------------------------
# Raise, refresh, clear
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertRow:
    """An alert as plain data, safe to hand to the GUI thread."""

    id: int
    rule: AlertRule
    subject: str
    message: str
    value: float | None
    threshold: float | None
    raised_at: datetime
    checked_at: datetime
    cleared_at: datetime | None

    @property
    def title(self) -> str:
        return RULE_TITLES[self.rule]

    @property
    def is_active(self) -> bool:
        return self.cleared_at is None


def alert_row(alert: HealthAlert) -> AlertRow:
    return AlertRow(
        id=alert.id,
        rule=AlertRule(alert.rule),
        subject=alert.subject,
        message=alert.message,
        value=alert.value,
        threshold=alert.threshold,
        raised_at=alert.raised_at,
        checked_at=alert.checked_at,
        cleared_at=alert.cleared_at,
    )


@dataclass(frozen=True, slots=True)
class AlertChanges:
    raised: tuple[AlertRow, ...]
    cleared: tuple[AlertRow, ...]
    active: tuple[AlertRow, ...]  # every active alert after the evaluation, newest first


def _audit_json(alert: HealthAlert) -> dict[str, Any]:
    return {
        "rule": alert.rule,
        "subject": alert.subject,
        "message": alert.message,
        "value": alert.value,
        "threshold": alert.threshold,
    }


def evaluate_alerts(
    session: TenantSession,
    now: datetime,
    *,
    settings: AlertSettings | None = None,
    actor: str = SYSTEM_ACTOR,
) -> AlertChanges:
    """Raise alerts whose condition started, refresh those still true, clear those that ended.

    Writes in the caller's transaction (``with sessions.begin() as session``).
    """
    conditions = {(c.rule.value, c.subject): c for c in current_conditions(session, now, settings)}
    active = {
        (alert.rule, alert.subject): alert
        for alert in session.scalars(
            select(HealthAlert).where(HealthAlert.cleared_at.is_(None)).order_by(HealthAlert.id)
        )
    }
    raised: list[HealthAlert] = []
    cleared: list[HealthAlert] = []
    for key, condition in conditions.items():
        alert = active.get(key)
        if alert is None:
            alert = HealthAlert(
                tenant_id=session.tenant_id,
                rule=condition.rule.value,
                subject=condition.subject,
                message=condition.message,
                value=condition.value,
                threshold=condition.threshold,
                raised_at=now,
                checked_at=now,
            )
            session.add(alert)
            raised.append(alert)
        else:
            alert.message = condition.message
            alert.value, alert.threshold = condition.value, condition.threshold
            alert.checked_at = now
    for key, alert in active.items():
        if key not in conditions:
            alert.cleared_at = now
            cleared.append(alert)
    session.flush()  # ids for the audit rows
    for alert in raised:
        record_audit(
            session,
            actor=actor,
            action="alert.raised",
            entity_type=ALERT_ENTITY,
            entity_id=alert.id,
            after=_audit_json(alert),
        )
    for alert in cleared:
        record_audit(
            session,
            actor=actor,
            action="alert.cleared",
            entity_type=ALERT_ENTITY,
            entity_id=alert.id,
            before=_audit_json(alert),
            after={"cleared_at": now.isoformat()},
        )
    return AlertChanges(
        raised=tuple(alert_row(a) for a in raised),
        cleared=tuple(alert_row(a) for a in cleared),
        active=active_alerts(session),
    )


def active_alerts(session: TenantSession) -> tuple[AlertRow, ...]:
    query = (
        select(HealthAlert)
        .where(HealthAlert.cleared_at.is_(None))
        .order_by(HealthAlert.raised_at.desc(), HealthAlert.id.desc())
    )
    return tuple(alert_row(alert) for alert in session.scalars(query))


def alert_history(session: TenantSession, *, limit: int = 200) -> tuple[AlertRow, ...]:
    """Recent alerts, active and cleared, newest first."""
    query = select(HealthAlert).order_by(HealthAlert.raised_at.desc(), HealthAlert.id.desc()).limit(limit)
    return tuple(alert_row(alert) for alert in session.scalars(query))


__all__ = [
    "RULE_TITLES",
    "SYSTEM_ACTOR",
    "AlertChanges",
    "AlertRow",
    "AlertRule",
    "Condition",
    "active_alerts",
    "alert_history",
    "current_conditions",
    "evaluate_alerts",
]
