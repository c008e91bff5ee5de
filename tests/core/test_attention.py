"""The navigation rail's counts (core.analytics.attention): the review queue per decision, open alerts and
failing connectors, each by the rule its page applies, one tenant only. Real SQLite."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.analytics.attention import attention_counts
from core.analytics.health_alerts import RULE_TITLES, AlertRule, evaluate_alerts
from core.store.models import (
    Analysis,
    AnalysisDecision,
    ConnectorConfig,
    LinkDecision,
    Runbook,
    RunbookStatus,
    Ticket,
    TicketRunbookLink,
)
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from core.workflow.review import queue_counts

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


def add_analysed_tickets(
    session: TenantSession, decision: AnalysisDecision, count: int, prefix: str
) -> list[Ticket]:
    tickets = [
        Ticket(
            external_id=f"{prefix}{n}",
            source_system="servicenow",
            title=f"{prefix} ticket {n}",
            content_hash=f"{prefix}{n}",
            ingested_at=NOW,
        )
        for n in range(count)
    ]
    session.add_all(tickets)
    session.flush()
    session.add_all(
        Analysis(
            ticket_id=ticket.id,
            decision=decision,
            confidence=0.6,
            model_id="m",
            threshold_existing=0.7,
            threshold_partial=0.5,
            ticket_content_hash=ticket.content_hash,
        )
        for ticket in tickets
    )
    session.flush()
    return tickets


def test_an_empty_store_needs_nothing(sessions: sessionmaker[TenantSession]) -> None:
    with sessions() as session:
        counts = attention_counts(session)
    assert (counts.needs_review, counts.awaiting_decision, counts.open_alerts, counts.failing_connectors) == (
        0,
        0,
        0,
        0,
    )


def test_counts_follow_the_queue_the_alerts_and_the_connectors(
    sessions: sessionmaker[TenantSession], workspace: Workspace
) -> None:
    with sessions.begin() as session:
        flagged = add_analysed_tickets(session, AnalysisDecision.FLAG_REVIEW, 4, "R")
        add_analysed_tickets(session, AnalysisDecision.GENERATE_RUNBOOK, 2, "G")
        add_analysed_tickets(session, AnalysisDecision.LINK_RUNBOOK, 3, "L")
        # An analyst decided one flagged ticket (a reviewed link): it leaves the queue and the count.
        runbook_id = _runbook(session)
        session.add(
            TicketRunbookLink(
                ticket_id=flagged[0].id,
                runbook_id=runbook_id,
                decision=LinkDecision.LINKED,
                reviewed_by="ana",
                reviewed_at=NOW,
            )
        )
        # Connectors: one whose last sync failed, one failing three times (paused: still failing), one well.
        session.add_all(
            [
                ConnectorConfig(connector_type="servicenow", name="zeta", consecutive_failures=1),
                ConnectorConfig(connector_type="jira", name="alpha", consecutive_failures=3, is_active=False),
                ConnectorConfig(connector_type="jira", name="fine", consecutive_failures=0),
            ]
        )
    with sessions.begin() as session:
        evaluate_alerts(session, NOW)  # the three-in-a-row connector raises the sync-failure alert
    # Another tenant's failures and alerts are not this tenant's.
    workspace.ensure_tenant("other")
    other = workspace.session_factory("other")
    with other.begin() as session:
        session.add(ConnectorConfig(connector_type="servicenow", name="theirs", consecutive_failures=5))
    with other.begin() as session:
        evaluate_alerts(session, NOW)

    with sessions() as session:
        counts = attention_counts(session)
        queue = queue_counts(session)
    assert (counts.needs_review, counts.needs_runbook, counts.spot_check) == (3, 2, 3)
    assert counts.needs_review == queue[AnalysisDecision.FLAG_REVIEW]  # the rail and the page agree
    assert counts.awaiting_decision == 8
    assert counts.failing_connector_names == ("alpha", "zeta")
    assert counts.open_alert_titles == (RULE_TITLES[AlertRule.SYNC_FAILURES],)

    # A successful sync resets the count; the next evaluation clears the alert.
    with sessions.begin() as session:
        for config in session.scalars(select(ConnectorConfig)):
            config.consecutive_failures = 0
    with sessions.begin() as session:
        evaluate_alerts(session, NOW)
    with sessions() as session:
        counts = attention_counts(session)
    assert counts.failing_connectors == 0 and counts.open_alerts == 0


def _runbook(session: TenantSession) -> int:
    runbook = Runbook(title="A runbook", status=RunbookStatus.APPROVED, content_hash="h", external_ref="a.md")
    session.add(runbook)
    session.flush()
    return runbook.id
