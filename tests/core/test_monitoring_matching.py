"""Incidents matched to runbooks through the real engine (real model, FAISS, FTS) like any ticket, and what
the review queue, its facets and the re-analysis rule make of their ticket rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.importing import import_runbooks
from core.matching.analysis import analyze_pending
from core.matching.embedding import SentenceTransformerEmbedder
from core.matching.engine import MatchingEngine, open_engine
from core.monitoring.events import AlertEvent, Severity
from core.monitoring.queries import list_incidents
from core.queries import ticket_facets
from core.store.models import MonitoringIncident, Runbook
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from core.workflow.review import QueueFilters, ReviewStatus, load_review_queue
from tests.conftest import DEMO_DIR
from tests.core.monitoring_events import event, ingest

pytestmark = pytest.mark.slow

RUNBOOKS = (
    "linux-server-disk-full.md",
    "windows-server-disk-full.md",
    "linux-var-log-full-logrotate.md",
    "server-high-cpu.md",
    "nginx-502-bad-gateway.md",
    "k8s-pod-crashloopbackoff.md",
    "db-connection-pool-exhausted.md",
    "printer-offline-print-spooler.md",
    "vpn-anyconnect-cannot-connect.md",
)


def engine_with_runbooks(
    workspace: Workspace,
    sessions: sessionmaker[TenantSession],
    embedder: SentenceTransformerEmbedder,
    tmp_path: Path,
) -> MatchingEngine:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    for name in RUNBOOKS:
        (folder / name).write_text(
            (DEMO_DIR / "runbooks" / name).read_text(encoding="utf-8"), encoding="utf-8"
        )
    assert import_runbooks(sessions, folder).rejected_count == 0
    engine = open_engine(workspace, "default", embedder)
    engine.refresh()
    return engine


def runbook_title(sessions: sessionmaker[TenantSession], slug: str) -> str:
    with sessions() as session:
        return session.scalars(select(Runbook.title).where(Runbook.external_ref.like(f"%{slug}%"))).one()


def disk_alert(external_id: str, minute: float) -> AlertEvent:
    """The trigger, expression and tags of Zabbix 6's "Linux by Zabbix agent" template, on lnx-db-03."""
    return event(
        external_id,
        minute,
        title="/data: Disk space is critically low (used > 90%)",
        monitor_id="23141",
        host="lnx-db-03",
        severity=Severity.HIGH,
        message="Space used on {HOST.NAME}:/data is {ITEM.LASTVALUE1}",
        expression="last(/lnx-db-03/vfs.fs.size[/data,pused])>90",
        tags=("class:os", "target:linux", "component:storage", "filesystem:/data", "scope:capacity"),
    )


def test_incidents_get_their_runbook_on_top_and_only_changed_ones_are_analysed_again(
    workspace: Workspace, sessions, embedder, tmp_path: Path
) -> None:
    engine = engine_with_runbooks(workspace, sessions, embedder, tmp_path)
    ingest(
        sessions,
        [
            disk_alert("31001", 0),
            event(
                "31002",
                1,
                title="Processor load is too high on lnx-app-11",
                host="lnx-app-11",
                severity=Severity.WARNING,
                message="Load average (1m avg) on {HOST.NAME} is {ITEM.LASTVALUE1}",
                expression="min(/lnx-app-11/system.cpu.load[all,avg1],5m)>8",
                tags=("class:os", "target:linux", "component:cpu", "scope:performance"),
            ),
            event(
                "31003",
                2,
                title="[Triggered] 5xx rate high on checkout",
                host="web-07",
                service="checkout",
                severity=Severity.CRITICAL,
                source_system="datadog",
                message="{{#is_alert}}nginx returns 502 Bad Gateway for {{value}}% of requests{{/is_alert}}",
                expression=(
                    "sum(last_5m):sum:nginx.net.request_per_s{service:checkout,status:5xx}.as_count() > 50"
                ),
                tags=("service:checkout", "env:prod"),
            ),
        ],
    )
    first = analyze_pending(engine, sessions)
    assert first.analysed == 3
    with sessions() as session:
        by_host = {row.hosts[0]: row for row in list_incidents(session)}
    assert by_host["lnx-db-03"].runbook_title == runbook_title(sessions, "linux-server-disk-full")
    assert by_host["lnx-app-11"].runbook_title == runbook_title(sessions, "server-high-cpu")
    assert by_host["web-07"].runbook_title == runbook_title(sessions, "nginx-502-bad-gateway")
    assert all(row.confidence is not None and row.decision is not None for row in by_host.values())

    assert analyze_pending(engine, sessions).analysed == 0  # nothing changed
    ingest(sessions, [disk_alert("31004", 6)])
    assert (
        analyze_pending(engine, sessions).analysed == 0
    )  # a repeat of a known alert: the ticket is unchanged
    ingest(
        sessions,
        [event("31005", 7, title="/data: Running out of free inodes (free < 10%)", host="lnx-db-03")],
    )
    assert analyze_pending(engine, sessions).analysed == 1  # an alert joined the disk incident

    with sessions() as session:
        assert "monitoring" in ticket_facets(session).source_systems
        queued = load_review_queue(
            session, QueueFilters(source_systems=frozenset({"monitoring"}), status=ReviewStatus.TO_DECIDE)
        )
        incident_tickets = set(session.scalars(select(MonitoringIncident.ticket_id)))
    # Auto-linked (confident) ones leave the queue like any ticket; what is left is monitoring's alone.
    assert {row.ticket_id for row in queued} <= incident_tickets
    assert all(row.source_system == "monitoring" for row in queued)
