"""``runbook-desk alerts ...`` end to end on a copy of the analysed demo with three monitoring incidents.

The incidents come the way a sync brings them (``store_events``: deduplication and correlation) and are
analysed by the real engine over the demo runbooks. ``create-ticket`` goes through the real ServiceNow
connector to its fake: the command line cannot hand a transport down, so the test registers the connector
with one difference, the fake serving its URL stands in for the network (as
``tests.connectors.tiny_connector`` does for the connectors CLI).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from sqlalchemy import func, select

from connectors.base import Connector, ConnectorSettings
from connectors.configs import create_config
from connectors.http import Sleep
from connectors.registry import ConnectorRegistry, use_registry
from connectors.ticketing.servicenow import ServiceNowConnector
from core.matching.analysis import analyze_pending
from core.matching.embedding import SentenceTransformerEmbedder
from core.matching.engine import open_engine
from core.store.models import AlertStatus, AuditEvent, MonitoringIncident
from core.store.workspace import Workspace
from desktop.cli.common import EXIT_ERROR, EXIT_OK
from desktop.cli.main import main
from tests.connectors.fake_servicenow import FakeServiceNow
from tests.helpers.alert_events import DISK_EXPRESSION, DISK_MESSAGE_AGAIN, events, ingest

Run = Callable[..., tuple[int, str, str]]


class ServedServiceNow(ServiceNowConnector):
    """The ServiceNow connector, its HTTP answered by the fake serving its URL in this process."""

    serving: ClassVar[dict[str, FakeServiceNow]] = {}

    @classmethod
    def create(
        cls,
        settings: ConnectorSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep | None = None,
        **kwargs: object,
    ) -> Connector:
        if transport is None and settings.base_url in cls.serving:
            transport = cls.serving[settings.base_url].transport()
        return super().create(settings, transport=transport, sleep=sleep, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def ws(analysed_demo_template: Path, tmp_path: Path, embedder: SentenceTransformerEmbedder) -> Path:
    """A private copy of the analysed demo with the incidents stored and analysed, closed again."""
    root = tmp_path / "demo-ws"
    shutil.copytree(analysed_demo_template, root, ignore=shutil.ignore_patterns("*.lock"))
    with Workspace.open(root) as workspace:
        sessions = workspace.session_factory("default")
        from datetime import UTC, datetime

        ingest(sessions, events(datetime.now(UTC)))
        engine = open_engine(workspace, "default", embedder)
        engine.refresh()
        analyze_pending(engine, sessions)
    return root


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], ws: Path) -> Run:
    def run_alerts(*argv: str) -> tuple[int, str, str]:
        code = main(["alerts", *argv, "--workspace", str(ws)])
        out, err = capsys.readouterr()
        return code, out, err

    return run_alerts


@pytest.fixture
def servicenow(ws: Path) -> Iterator[FakeServiceNow]:
    fake = FakeServiceNow()
    registry = ConnectorRegistry(builtins=(), find_plugins=None, classes=(ServedServiceNow,))
    with use_registry(registry):
        ServedServiceNow.serving[fake.base_url] = fake
        settings = fake.settings()
        with Workspace.open(ws) as workspace:
            create_config(
                workspace.session_factory("default"),
                connector_type="servicenow",
                name="prod-sn",
                base_url=fake.base_url,
                options=settings.options,
                secrets=settings.secrets,
            )
        try:
            yield fake
        finally:
            ServedServiceNow.serving.pop(fake.base_url, None)


def incident_ids(ws: Path) -> dict[str, int]:
    with Workspace.open(ws) as workspace, workspace.session_factory("default")() as session:
        return {found.hosts[0]: found.id for found in session.scalars(select(MonitoringIncident))}


def test_list_shows_open_incidents_worst_first_with_their_runbook(run: Run, ws: Path) -> None:
    ids = incident_ids(ws)
    code, out, err = run("list")
    assert (code, err) == (EXIT_OK, "")
    lines = out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [f"MON-{ids[h]}" for h in ("db01", "k8s-prod", "web01")]
    assert lines[0].split("\t")[1:3] == ["critical", "open"]
    assert "Linux server disk full (No space left on device)" in lines[0]
    assert "Kubernetes pod in CrashLoopBackOff" in lines[1]

    code, out, _ = run("list", "--json")
    listed = json.loads(out)
    assert [row["number"] for row in listed] == [f"MON-{ids[h]}" for h in ("db01", "k8s-prod", "web01")]
    assert [row["alert_count"] for row in listed] == [1, 1, 1]
    assert listed[0]["decision"] == "link_runbook" and 0 < listed[0]["confidence"] <= 1
    assert listed[1]["services"] == ["payments"] and listed[0]["ticket"] is None


def test_list_all_includes_resolved_incidents(run: Run, ws: Path) -> None:
    from dataclasses import replace
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    with Workspace.open(ws) as workspace:
        disk = [one for one in events(now) if one.host == "db01"]
        ingest(
            workspace.session_factory("default"),
            tuple(replace(one, status=AlertStatus.RESOLVED, resolved_at=now, updated_at=now) for one in disk),
        )
    _, out, _ = run("list", "--json")
    assert [row["hosts"] for row in json.loads(out)] == [["k8s-prod"], ["web01"]]
    _, out, _ = run("list", "--all", "--json")
    assert [(row["hosts"], row["status"]) for row in json.loads(out)] == [
        (["k8s-prod"], "open"),
        (["web01"], "open"),
        (["db01"], "resolved"),
    ]


def test_show_prints_the_alerts_raw(run: Run, ws: Path) -> None:
    number = f"MON-{incident_ids(ws)['db01']}"
    code, out, _ = run("show", number)
    assert code == EXIT_OK
    assert out.startswith(f"{number}: [critical] db01: Free disk space is less than 3% on volume /var\n")
    assert DISK_MESSAGE_AGAIN in out and f"rule: {DISK_EXPRESSION}" in out
    assert "zabbix, db01, triggered, x2" in out
    code, out, _ = run("show", number.removeprefix("MON-"), "--json")
    shown = json.loads(out)
    (alert,) = shown["alerts"]
    assert (alert["expression"], alert["occurrences"], alert["message"]) == (
        DISK_EXPRESSION,
        2,
        DISK_MESSAGE_AGAIN,
    )
    code, _, err = run("show", "MON-999")
    assert code == EXIT_ERROR and "no monitoring incident MON-999" in err


def test_stats_prints_the_compression_ratio(run: Run) -> None:
    code, out, _ = run("stats")
    assert (code, out.strip()) == (
        EXIT_OK,
        "4 events -> 3 alerts -> 3 incidents (compression 1.33: events per alert kept)",
    )
    _, out, _ = run("stats", "--json")
    assert json.loads(out) == {"events": 4, "alerts": 3, "incidents": 3, "ratio": pytest.approx(4 / 3)}


def test_settings_are_shown_changed_audited_and_refused_out_of_bounds(run: Run, ws: Path) -> None:
    code, out, _ = run("settings")
    assert (code, out.strip()) == (
        EXIT_OK,
        "alerts on one host or service within 10 min are one incident; "
        "an incident takes no new alert after 24 h",
    )
    code, out, _ = run("settings", "--window", "15", "--json")
    assert code == EXIT_OK
    assert json.loads(out) == {"correlation_window_minutes": 15, "max_incident_hours": 24}
    code, _, err = run("settings", "--max-hours", "0")
    assert code != EXIT_OK and "between 1 and 168 hours" in err
    with Workspace.open(ws) as workspace, workspace.session_factory("default")() as session:
        [audit] = session.scalars(select(AuditEvent).where(AuditEvent.action == "settings.monitoring"))
    assert audit.after == {"correlation_window_minutes": 15, "max_incident_hours": 24}


def ticket_audits(ws: Path) -> int:
    with Workspace.open(ws) as workspace, workspace.session_factory("default")() as session:
        query = (
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "incident.ticket_created")
        )
        return session.scalar(query) or 0


def test_create_ticket_asks_first_then_creates_once(
    run: Run, ws: Path, servicenow: FakeServiceNow, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = f"MON-{incident_ids(ws)['db01']}"
    # Not a terminal and no --yes: the request is shown, nothing is sent.
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, out, err = run("create-ticket", number, "--connector", "prod-sn")
    assert code == EXIT_ERROR and out == ""
    assert "Will create in prod-sn (ServiceNow):" in err and DISK_MESSAGE_AGAIN in err
    assert "pass --yes" in err
    assert servicenow.inserts == [] and ticket_audits(ws) == 0

    # A terminal where the analyst answers no: still nothing.
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda _prompt: "n")
    code, _, err = run("create-ticket", number, "--connector", "prod-sn")
    assert code == EXIT_ERROR and "nothing sent" in err and servicenow.inserts == []

    code, out, _ = run("create-ticket", number, "--connector", "prod-sn", "--yes")
    assert (code, out.strip()) == (EXIT_OK, f"{number} created as INC0090001")
    assert len(servicenow.inserts) == 1
    assert servicenow.inserts[0]["short_description"] == (
        "[critical] db01: Free disk space is less than 3% on volume /var"
    )
    # Again: the stored number, nothing sent, no second audit.
    code, out, _ = run("create-ticket", number, "--connector", "prod-sn", "--yes", "--json")
    assert code == EXIT_OK
    assert json.loads(out) == {
        "incident": number,
        "connector": "prod-sn",
        "number": "INC0090001",
        "url": json.loads(out)["url"],
        "existed": True,
    }
    assert len(servicenow.inserts) == 1 and ticket_audits(ws) == 1
    _, out, _ = run("list", "--json")
    assert json.loads(out)[0]["ticket"] == "INC0090001"
