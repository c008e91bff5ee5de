"""What needs the analyst's attention, as the counts the navigation rail shows beside its pages (issue 16).

A mail client shows unread counts so nobody has to open every folder to find new work; the rail does the
same with three counts, each one cheap query that reuses the rule its page already applies:

* tickets awaiting a decision, per analysis decision (:func:`core.workflow.review.queue_counts`, the review
  queue's own grouped count with no filter): the rail shows *needs review*, the tooltip the other groups;
* open health alerts: ``cleared_at IS NULL``, as :func:`core.analytics.health_alerts.active_alerts` lists;
* failing connectors: ``consecutive_failures > 0``, i.e. the connector's last finished sync failed (a
  successful sync resets the count in :mod:`connectors.sync`, a cancelled one leaves it alone). A paused
  connector still counts: pausing does not mend it, and the Connectors page still shows it failing.

The desktop runs :func:`attention_counts` on a worker whenever the store may have changed; it never runs on
the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from core.analytics.health_alerts import RULE_TITLES, AlertRule
from core.store.models import AnalysisDecision, ConnectorConfig, HealthAlert
from core.store.tenancy import TenantSession
from core.workflow.review import queue_counts

__all__ = ["AttentionCounts", "attention_counts"]


@dataclass(frozen=True, slots=True)
class AttentionCounts:
    needs_review: int  # analysis flagged it for review; no analyst decision yet
    needs_runbook: int  # no runbook matched well enough; no decision yet
    spot_check: int  # linked automatically; not yet confirmed by an analyst
    open_alert_titles: tuple[str, ...]  # one per open alert, newest first (two connectors failing: twice)
    failing_connector_names: tuple[str, ...]  # by name

    @property
    def awaiting_decision(self) -> int:
        """Every ticket in the review queue."""
        return self.needs_review + self.needs_runbook + self.spot_check

    @property
    def open_alerts(self) -> int:
        return len(self.open_alert_titles)

    @property
    def failing_connectors(self) -> int:
        return len(self.failing_connector_names)


def attention_counts(session: TenantSession) -> AttentionCounts:
    """The counts of one tenant (the session's), in three queries.

    Alerts and failing connectors come back as their titles and names rather than bare counts: there are
    only ever a handful (one active alert per rule and subject), and the rail's tooltip names them.
    """
    queue = queue_counts(session)
    alert_rules = session.scalars(
        select(HealthAlert.rule)
        .where(HealthAlert.cleared_at.is_(None))
        .order_by(HealthAlert.raised_at.desc(), HealthAlert.id.desc())
    )
    failing_names = session.scalars(
        select(ConnectorConfig.name)
        .where(ConnectorConfig.consecutive_failures > 0)
        .order_by(ConnectorConfig.name)
    )
    return AttentionCounts(
        needs_review=queue[AnalysisDecision.FLAG_REVIEW],
        needs_runbook=queue[AnalysisDecision.GENERATE_RUNBOOK],
        spot_check=queue[AnalysisDecision.LINK_RUNBOOK],
        open_alert_titles=tuple(RULE_TITLES[AlertRule(rule)] for rule in alert_rules),
        failing_connector_names=tuple(failing_names),
    )
