"""Monitoring benchmark: synthetic alert events through deduplication, correlation and matching.

Run: ``.venv/bin/python bench/monitoring.py [--events 100000] [--page 500] [--seed 13]`` (a few minutes for
100k on a laptop; ``--events 5000`` checks the setup in seconds). It generates seeded alert events from
three monitoring systems (Zabbix, Datadog, SolarWinds) the way they arrive in practice: a problem on one
host fires its alert repeatedly (a geometric number of times, mean ~6, minutes apart) and usually ends with
a recovery; a problem sometimes drags a second one on the same host or service along within minutes (a
cascade); hosts are spread by a Zipf-like law (a few noisy hosts, a long tail). Events are stored oldest
first in pages of ``--page`` through :func:`core.monitoring.ingest.store_events` (dedupe + correlation, one
transaction per page, as the sync engine does), then the incident tickets are matched with the real engine
(the bundled demo runbooks, real model and FAISS) by :func:`core.matching.analysis.analyze_pending`.

Prints: events/s of ingestion (dedupe + correlation + incident ticket rows), incidents analysed/s, the
compression figures (events / alerts / incidents) and the peak RSS.

Then the same events served as Zabbix ``event.get`` answers by the local fake
(tests/connectors/fake_zabbix.py, with its listing indexed so the fake's own cost stays out of the
figures) and read by the real Zabbix connector twice: **fetch only** (the page loop, HTTP through
``httpx.MockTransport``, JSON decoding, normalisation, trigger expressions; nothing stored) and **sync**
(:func:`connectors.sync.run_sync`: the same plus the per-page transaction with dedupe, correlation and
incident ticket rows). The ratio of the two rates is what the monitoring work costs over reading alone.
``--no-fetch`` skips this part.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import heapq
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import keyring

from connectors.configs import create_config
from connectors.registry import connector_class
from connectors.sync import run_sync
from core.importing import import_runbooks
from core.importing.demo import demo_data_dir
from core.matching.analysis import analyze_pending
from core.matching.embedding import SentenceTransformerEmbedder
from core.matching.engine import open_engine
from core.monitoring.events import AlertEvent, Severity
from core.monitoring.ingest import store_events
from core.monitoring.queries import compression
from core.store.models import AlertStatus
from core.store.workspace import Workspace

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # the fake Zabbix and the memory keyring live under tests/
from connectors.testing.fake_system import FakeTicket  # noqa: E402
from tests.connectors.fake_zabbix import FakeZabbix  # noqa: E402
from tests.helpers.memory_keyring import MemoryKeyring  # noqa: E402

START = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Rule:
    system: str
    monitor_id: str
    title: str  # "{h}" host, "{v}" a value that changes between firings
    severity: Severity
    expression: str
    service: str | None = None


RULES = (
    Rule(
        "zabbix",
        "23141",
        "/data: Disk space is critically low (used > {v}%)",
        Severity.HIGH,
        "last(/{h}/vfs.fs.size[/data,pused])>90",
    ),
    Rule(
        "zabbix",
        "22817",
        "High CPU utilization (over 90% for 5m): {v}%",
        Severity.WARNING,
        "min(/{h}/system.cpu.util,5m)>90",
    ),
    Rule(
        "zabbix",
        "22830",
        "High memory utilization (>90% for 5m): {v}%",
        Severity.WARNING,
        "min(/{h}/vm.memory.utilization,5m)>90",
    ),
    Rule(
        "zabbix",
        "23150",
        "/var/log: Disk space is low (used > {v}%)",
        Severity.WARNING,
        "last(/{h}/vfs.fs.size[/var/log,pused])>80",
    ),
    Rule(
        "zabbix",
        "24410",
        "systemd: app-worker.service has failed",
        Severity.HIGH,
        'last(/{h}/systemd.unit.info["app-worker.service",ActiveState])<>"active"',
    ),
    Rule(
        "zabbix",
        "21990",
        "System time is out of sync (diff {v}s)",
        Severity.WARNING,
        "fuzzytime(/{h}/system.localtime,60)=0",
    ),
    Rule(
        "datadog",
        "91000123",
        "[Triggered] nginx 5xx rate {v}% on {s}",
        Severity.CRITICAL,
        "sum(last_5m):sum:nginx.net.request_per_s{{service:{s},status:5xx}}.as_count() > 50",
        "checkout",
    ),
    Rule(
        "datadog",
        "91000200",
        "[Triggered] DB connection pool saturation on {s}",
        Severity.HIGH,
        "avg(last_10m):avg:jvm.db.pool.active{{service:{s}}} / avg:jvm.db.pool.max{{service:{s}}} > 0.95",
        "orders",
    ),
    Rule(
        "datadog",
        "91000300",
        "[Triggered] Pod {s}-api is in CrashLoopBackOff",
        Severity.HIGH,
        "max(last_10m):sum:kubernetes.containers.restarts{{kube_deployment:{s}-api}} by {{pod_name}} > 5",
        "catalog",
    ),
    Rule(
        "datadog",
        "91000400",
        "[Triggered] JVM heap usage above {v}% on {s}",
        Severity.HIGH,
        "avg(last_15m):avg:jvm.heap_memory{{service:{s}}} / avg:jvm.heap_memory_max{{service:{s}}} > 0.95",
        "inventory",
    ),
    Rule(
        "solarwinds",
        "41",
        "Volume space is low on {h} - E:\\ Label:Data ({v} percent used)",
        Severity.HIGH,
        "Volumes.VolumePercentUsed >= 90",
    ),
    Rule(
        "solarwinds",
        "57",
        "SQL Server blocked sessions on {h}",
        Severity.HIGH,
        "SELECT ApplicationID FROM Orion.APM.Application WHERE BlockedSessions > 10",
        "erp",
    ),
    Rule(
        "solarwinds",
        "63",
        "Oracle listener down on {h}",
        Severity.CRITICAL,
        "SELECT ComponentID FROM Orion.APM.Component WHERE ComponentName = 'TNS Listener' "
        "AND Availability = 'Down'",
        "finance",
    ),
    Rule(
        "solarwinds",
        "71",
        "Veeam job '{h} nightly' finished with Failed",
        Severity.HIGH,
        "SELECT JobName FROM Orion.Veeam.BackupJob WHERE LastResult = 'Failed'",
        "backup",
    ),
)
SERVICES = ("checkout", "orders", "catalog", "inventory", "erp", "finance", "backup", "search", "billing")


def host_names(count: int) -> list[str]:
    kinds = ("lnx-app", "lnx-db", "web", "k8s-node", "WIN-FS", "SQL-PRD", "ORA-FIN", "VBR")
    return [f"{kinds[i % len(kinds)]}-{i:04d}" for i in range(count)]


def generate(total: int, seed: int, hosts: int = 2000) -> Iterator[AlertEvent]:
    """``total`` events, oldest first (see the module docstring for the shape)."""
    rng = random.Random(seed)
    names = host_names(hosts)
    weights = [1 / (rank + 1) ** 0.8 for rank in range(hosts)]  # a few noisy hosts, a long tail
    pending: list[tuple[datetime, int, AlertEvent]] = []  # a heap: events come out in time order
    made = 0
    serial = 0
    clock = START

    def problem(at: datetime, host: str, rule: Rule, service: str | None) -> None:
        nonlocal serial
        repeats = 1
        while rng.random() < 0.83 and repeats < 60:  # geometric, mean ~6
            repeats += 1
        when = at
        title_service = service or rule.service or "app"
        for _ in range(repeats):
            serial += 1
            value = rng.randint(90, 99)
            title = rule.title.format(h=host, v=value, s=title_service)
            heapq.heappush(pending, (when, serial, _event(rule, serial, when, host, service, title, None)))
            when += timedelta(minutes=rng.uniform(1, 6))
        if rng.random() < 0.7:  # most problems recover
            serial += 1
            title = rule.title.format(h=host, v=90, s=title_service)
            heapq.heappush(pending, (when, serial, _event(rule, serial, when, host, service, title, when)))

    while made < total:
        clock += timedelta(seconds=rng.expovariate(1 / 20))
        host = rng.choices(names, weights)[0]
        rule = rng.choice(RULES)
        service = rule.service and rng.choice(SERVICES[:4]) if rule.system == "datadog" else rule.service
        problem(clock, host, rule, service)
        if rng.random() < 0.3:  # a cascade: a second problem on the same host within minutes
            problem(clock + timedelta(minutes=rng.uniform(0.5, 8)), host, rng.choice(RULES), service)
        while pending and pending[0][0] <= clock and made < total:
            made += 1
            yield heapq.heappop(pending)[2]
    # what is still pending past the last arrival is left out: exactly ``total`` events


def _event(
    rule: Rule,
    serial: int,
    when: datetime,
    host: str,
    service: str | None,
    title: str,
    resolved: datetime | None,
) -> AlertEvent:
    return AlertEvent(
        external_id=f"{rule.system}-{serial}",
        source_system=rule.system,
        monitor_id=rule.monitor_id,
        title=title,
        message=f"{title} on {host}",
        severity=rule.severity,
        status=AlertStatus.RESOLVED if resolved else AlertStatus.TRIGGERED,
        occurred_at=when,
        updated_at=when,
        host=host,
        service=service,
        expression=rule.expression.format(h=host, s=service or "app"),
        tags=(f"service:{service}",) if service else (),
        resolved_at=resolved,
    )


class IndexedZabbix(FakeZabbix):
    """The fake Zabbix with its event listing kept sorted and searched by bisection: the real fake sorts
    every event on every request, which at 100k events would be most of what the benchmark measures."""

    def __init__(self, records: list[FakeTicket]) -> None:
        super().__init__()
        for record in records:
            self.add_ticket(record)
        self.ordered = sorted(self.tickets.values(), key=lambda t: int(t.external_id))
        self.ids = [int(t.external_id) for t in self.ordered]

    def _events(self, request_id: object, params: dict[str, object]) -> httpx.Response:
        if "eventids" in params:
            return super()._events(request_id, params)
        start = bisect.bisect_left(self.ids, int(str(params.get("eventid_from", 0))))
        limit = int(str(params.get("limit", 1000)))
        rows = [self.render(t, params) for t in self.ordered[start : start + limit]]
        return self.result(request_id, rows)


def zabbix_records(events: list[AlertEvent]) -> list[FakeTicket]:
    """The events as Zabbix would hold them: numeric ids in time order, one trigger per rule and host, OK
    events (value 0) for the recoveries."""
    triggers: dict[tuple[str, str | None], str] = {}
    severities = {Severity.CRITICAL: "5", Severity.HIGH: "4", Severity.WARNING: "2", Severity.INFO: "1"}
    records = []
    for number, event in enumerate(events, start=1):
        trigger = triggers.setdefault((event.monitor_id, event.host), str(100_000 + len(triggers)))
        recovered = event.status is AlertStatus.RESOLVED
        tags = [{"tag": "service", "value": event.service}] if event.service else []
        records.append(
            FakeTicket(
                external_id=str(number),
                title=event.title,
                description="",
                updated_at=event.occurred_at.replace(microsecond=0),
                created_at=event.occurred_at.replace(microsecond=0),
                extra={
                    "objectid": trigger,
                    "host": event.host or "",
                    "host_name": event.host or "",
                    "hostid": str(10_000 + hash(event.host) % 9_000),
                    "severity": "0" if recovered else severities[event.severity],
                    "value": "0" if recovered else "1",
                    "r_eventid": "0",
                    "acknowledged": "0",
                    "tags": tags,
                    "expression": event.expression or "",
                },
            )
        )
    return records


async def fetch_only(fake: FakeZabbix, page: int) -> tuple[int, float]:
    connector = connector_class("zabbix").create(fake.settings(), transport=fake.transport())
    started = time.perf_counter()
    count = 0
    try:
        async for stored in connector.fetch(None, page_size=page):
            count += len(stored.events)
    finally:
        await connector.close()
    return count, time.perf_counter() - started


def fetch_versus_sync(events: list[AlertEvent], page: int) -> None:
    keyring.set_keyring(MemoryKeyring())
    fake = IndexedZabbix(zabbix_records(events))
    count, fetch_s = asyncio.run(fetch_only(fake, page))
    with tempfile.TemporaryDirectory() as folder:
        workspace = Workspace.open(Path(folder) / "workspace")
        sessions = workspace.session_factory()
        settings = fake.settings()
        config = create_config(
            sessions,
            connector_type="zabbix",
            name=settings.name,
            base_url=settings.base_url,
            auth_mode=settings.auth_mode,
            options=dict(settings.options),
            secrets=dict(settings.secrets),
            actor="bench",
        )
        started = time.perf_counter()
        report = asyncio.run(run_sync(sessions, config.id, transport=fake.transport(), page_size=page))
        sync_s = time.perf_counter() - started
        with sessions() as session:
            figures = compression(session)
        workspace.close()
    assert report.ok, report.headline()
    fetch_rate, sync_rate = count / fetch_s, report.new / sync_s
    print(
        f"zabbix fetch only: {count:,} events in {fetch_s:.1f} s = {fetch_rate:,.0f} events/s "
        f"(pages of {page})"
    )
    print(
        f"zabbix sync (fetch + dedupe + correlation + incident tickets): {report.new:,} events in "
        f"{sync_s:.1f} s = {sync_rate:,.0f} events/s; {figures.alerts:,} alerts, "
        f"{figures.incidents:,} incidents"
    )
    print(
        f"sync rate / fetch-only rate: {sync_rate / fetch_rate:.2f} "
        f"(the sync takes {fetch_rate / sync_rate:.1f}x as long)"
    )


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--page", type=int, default=500)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--no-fetch", action="store_true", help="skip the Zabbix fetch-only vs sync part")
    args = parser.parse_args()

    events = list(generate(args.events, args.seed))
    with tempfile.TemporaryDirectory() as folder:
        workspace = Workspace.open(Path(folder) / "workspace")
        sessions = workspace.session_factory()
        started = time.perf_counter()
        for offset in range(0, len(events), args.page):
            with sessions.begin() as session:
                store_events(
                    session, events[offset : offset + args.page], instance="bench", connector_config_id=None
                )
        ingest_s = time.perf_counter() - started
        with sessions() as session:
            figures = compression(session)
        print(
            f"ingest: {len(events):,} events in {ingest_s:.1f} s = {len(events) / ingest_s:,.0f} events/s "
            f"(dedupe + correlation + incident tickets, pages of {args.page}); RSS {rss_mb():.0f} MB"
        )
        print(
            f"compression: {figures.events:,} events -> {figures.alerts:,} alerts -> {figures.incidents:,} "
            f"incidents; events/alerts {figures.ratio:.2f}, "
            f"events/incidents {figures.events / max(figures.incidents, 1):.2f}"
        )

        import_runbooks(sessions, demo_data_dir() / "runbooks", actor="bench")
        engine = open_engine(workspace, "default", SentenceTransformerEmbedder())
        engine.refresh()
        started = time.perf_counter()
        report = analyze_pending(engine, sessions)
        analyse_s = time.perf_counter() - started
        print(
            f"matching: {report.analysed:,} incidents analysed in {analyse_s:.1f} s = "
            f"{report.analysed / analyse_s:,.1f} incidents/s "
            f"(linked {report.linked:,}, flagged {report.flagged:,}, drafts {report.drafts:,})"
        )
        print(f"end to end: {len(events) / (ingest_s + analyse_s):,.0f} events/s")
        print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        workspace.close()
    if not args.no_fetch:
        fetch_versus_sync(events, args.page)


if __name__ == "__main__":
    main()
