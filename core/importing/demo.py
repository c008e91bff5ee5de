"""The built-in demo workspace: synthetic runbooks, tickets, monitoring alerts and knowledge articles,
imported on first start.

The alerts (``monitoring_alerts.json``) go through the same ingestion as a monitoring connector's pages
(:func:`core.monitoring.ingest.store_events`, instance ``demo``): deduplicated, correlated into incidents,
and matched by the analysis that follows the seeding, so the Alerts page has something to show. The
articles (``knowledge_articles.json``, already in :class:`~core.knowledge.records.ArticleValues` fields)
are stored as a knowledge connector's page would be (:func:`core.knowledge.store.upsert_articles`, instance
``demo``) and indexed by the refresh of that analysis, so the Review page's knowledge panel has something
to show, including topics no bundled runbook covers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import sessionmaker

from core.importing import ImportSummary, import_runbooks, import_tickets
from core.knowledge.records import ArticleState, ArticleValues
from core.knowledge.store import ArticleChanges, upsert_articles
from core.monitoring.events import AlertEvent, Severity
from core.monitoring.ingest import IngestResult, store_events
from core.progress import NO_PROGRESS, Progress
from core.resources import resources_dir
from core.store.models import AlertStatus
from core.store.repository import count_tickets
from core.store.tenancy import TenantSession
from core.store.workspace import DEFAULT_TENANT, Workspace


def demo_data_dir() -> Path:
    return resources_dir() / "demo"


@dataclass(frozen=True)
class DemoSeed:
    runbooks: ImportSummary
    tickets: ImportSummary
    alerts: IngestResult | None = None
    articles: ArticleChanges | None = None


def seed_demo(workspace: Workspace, progress: Progress = NO_PROGRESS) -> DemoSeed | None:
    """Import the demo data into the default tenant if it has no tickets yet; None when already seeded."""
    sessions = workspace.session_factory(DEFAULT_TENANT)
    with sessions() as session:
        if count_tickets(session) > 0:
            return None
    data = demo_data_dir()
    runbooks = import_runbooks(sessions, data / "runbooks", actor="demo-setup")
    tickets = import_tickets(sessions, data / "tickets.csv", actor="demo-setup", progress=progress)
    alerts = load_demo_alerts(sessions, data / DEMO_ALERTS)
    articles = load_demo_articles(sessions, data / DEMO_ARTICLES)
    return DemoSeed(runbooks, tickets, alerts, articles)


DEMO_ALERTS = "monitoring_alerts.json"
DEMO_ALERTS_INSTANCE = "demo"
DEMO_ARTICLES = "knowledge_articles.json"
DEMO_ARTICLES_INSTANCE = "demo"


def load_demo_alerts(sessions: sessionmaker[TenantSession], path: Path) -> IngestResult:
    """Store the bundled monitoring events as a connector's page would be (one transaction)."""
    records = json.loads(path.read_text(encoding="utf-8"))["events"]
    events = sorted((_demo_event(record) for record in records), key=lambda e: (e.occurred_at, e.external_id))
    with sessions.begin() as session:
        return store_events(session, events, instance=DEMO_ALERTS_INSTANCE, connector_config_id=None)


def _demo_event(record: dict[str, Any]) -> AlertEvent:
    occurred = datetime.fromisoformat(record["occurred_at"])
    resolved = datetime.fromisoformat(record["resolved_at"]) if "resolved_at" in record else None
    return AlertEvent(
        external_id=record["external_id"],
        source_system=record["source_system"],
        monitor_id=record["monitor_id"],
        title=record["title"],
        message=record.get("message", ""),
        severity=Severity(record["severity"]),
        status=AlertStatus(record["status"]),
        occurred_at=occurred,
        updated_at=resolved or occurred,
        host=record.get("host"),
        service=record.get("service"),
        expression=record.get("expression"),
        tags=tuple(record.get("tags", ())),
        resolved_at=resolved,
        recovers=record.get("recovers"),
        source_url=record.get("source_url"),
        raw_payload=record,
    )


def load_demo_articles(sessions: sessionmaker[TenantSession], path: Path) -> ArticleChanges:
    """Store the bundled knowledge articles as a knowledge connector's page would be (one transaction)."""
    articles = demo_articles(path)
    with sessions.begin() as session:
        return upsert_articles(session, articles, instance=DEMO_ARTICLES_INSTANCE, connector_config_id=None)


def demo_articles(path: Path) -> list[ArticleValues]:
    """The bundled articles as a knowledge connector's ``normalise()`` would hand them over."""
    return [_demo_article(record) for record in json.loads(path.read_text(encoding="utf-8"))["articles"]]


def _demo_article(record: dict[str, Any]) -> ArticleValues:
    return ArticleValues(
        external_id=record["external_id"],
        source_system=record["source_system"],
        title=record["title"],
        body=record["body"],
        state=ArticleState(record["state"]),
        updated_at=datetime.fromisoformat(record["updated_at"]),
        number=record.get("number"),
        url=record.get("url"),
        space=record.get("space"),
        category=record.get("category"),
        author=record.get("author"),
        attachments=tuple(record.get("attachments", ())),
        raw_payload=record.get("raw_payload", {}),
    )
