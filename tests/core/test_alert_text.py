"""Alert text for matching: real-looking rule texts, hand-written expectations (what stays, what goes)."""

from __future__ import annotations

import pytest

from core.matching.lexical import fts_query
from core.matching.text import ticket_lexical_text, ticket_text
from core.monitoring.alert_text import (
    alert_lexical_text,
    expression_words,
    prepare_alert_text,
    strip_machine_text,
)
from core.store.models import Ticket, TicketKind


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        # Zabbix 6+ trigger expression: host, item key split, the mode params that say nothing dropped.
        ("last(/db01/system.cpu.load[all,avg1])>5", ["db01", "system", "cpu", "load"]),
        # Zabbix before 5.4
        ("{db01:system.cpu.load[all,avg1].last()}>5", ["db01", "system", "cpu", "load"]),
        ("max(/db01/vfs.fs.size[/var,pused],5m)>95", ["db01", "vfs", "fs", "size", "var", "used"]),
        ("nodata(/web01/agent.ping,3m)=1", ["web01", "agent", "ping"]),
        # PromQL: metric names split on "_", label values kept, functions and range selectors gone.
        (
            '100 * (1 - node_filesystem_avail_bytes{mountpoint="/var"} / node_filesystem_size_bytes) > 90',
            ["node", "filesystem", "avail", "bytes", "mountpoint", "var", "size"],
        ),
        (
            'sum by (namespace) (rate(kube_pod_container_status_restarts_total{namespace="shop"}[15m])) > 0',
            ["namespace", "kube", "pod", "container", "status", "restarts", "total", "shop"],
        ),
        ('avg_over_time(up{job="nginx"}[10m]) < 0.5', ["up", "job", "nginx"]),
        # Datadog monitor query: the evaluation window and aggregators go, tag values stay.
        (
            "avg(last_5m):avg:system.disk.in_use{host:db01,device:/dev/sda1} by {host} > 0.9",
            ["system", "disk", "use", "host", "db01", "device", "dev", "sda1"],
        ),
        # SolarWinds SWQL: SQL keywords and the Orion namespace go, CamelCase is split.
        ("Nodes.CPULoad > 90", ["nodes", "cpu", "load"]),
        (
            "SELECT Volumes.VolumePercentUsed FROM Orion.Volumes WHERE Volumes.VolumePercentUsed >= 95",
            ["volumes", "volume", "percent", "used"],
        ),
    ],
)
def test_an_expression_keeps_only_its_meaningful_identifiers(expression: str, words: list[str]) -> None:
    assert expression_words(expression) == words


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Pod {{ $labels.pod }} in {{ $labels.namespace }} is crash looping", "Pod in is crash looping"),
        ("CPU load is too high on {HOST.NAME} (load > 5.2)", "CPU load is too high on (load)"),
        ("Disk usage at 97.3% on ${N=SwisEntity;M=Caption}", "Disk usage at on"),
        ("Free disk space is less than 5% on volume /var", "Free disk space is less than on volume /var"),
        ("Response time 1500ms above {$LATENCY.MAX}", "Response time above"),
        # What identifies a problem stays: error codes, host names with digits, IP addresses, versions.
        (
            "ORA-12541 on db01 (10.20.30.40) after upgrade to 19.3.0",
            "ORA-12541 on db01 (10.20.30.40) after upgrade to 19.3.0",
        ),
    ],
)
def test_human_alert_text_loses_templates_numbers_and_operators(raw: str, clean: str) -> None:
    assert strip_machine_text(raw) == clean


DESCRIPTION = (
    "[critical] Free disk space is less than 5% on volume /var (zabbix, host db01, service postgres)\n"
    "Message: Disk usage at 97% on {HOST.NAME}\n"
    "Expression: last(/db01/vfs.fs.size[/var,pused])>95\n"
    "Tags: service:postgres, scope:capacity\n"
    "\n"
    "[warning] Load average too high (zabbix, host db01)\n"
    "Expression: avg(/db01/system.cpu.load[all,avg1],5m)>5"
)
TITLE = "[critical] db01: Free disk space is less than 5% on volume /var (+1 alert)"


def test_the_embedded_text_of_an_incident() -> None:
    assert prepare_alert_text(TITLE, DESCRIPTION, "postgres", "db01") == (
        "db01: Free disk space is less than on volume /var\n"
        "Service: postgres\n"
        "Host: db01\n"
        "Disk usage at on\n"
        "postgres capacity\n"
        "Load average too high\n"
        "db01 vfs fs size var used\n"
        "db01 system cpu load"
    )


def test_the_lexical_text_keeps_the_raw_expressions_searchable() -> None:
    lexical = alert_lexical_text(TITLE, DESCRIPTION, "postgres", "db01")
    assert lexical.startswith(prepare_alert_text(TITLE, DESCRIPTION, "postgres", "db01"))
    query = fts_query(lexical)
    assert query is not None
    assert '"vfs.fs.size"' in query  # whole, as a runbook quoting the item key has it
    assert '"system.cpu.load"' in query
    assert "vfs.fs.size" not in prepare_alert_text(TITLE, DESCRIPTION, "postgres", "db01")


def ticket(kind: TicketKind) -> Ticket:
    return Ticket(
        title=TITLE,
        description=DESCRIPTION,
        kind=kind,
        category="postgres",
        configuration_item="db01",
    )


def test_only_alert_tickets_get_the_alert_preparation() -> None:
    alert = ticket(TicketKind.ALERT)
    assert ticket_text(alert) == prepare_alert_text(TITLE, DESCRIPTION, "postgres", "db01")
    assert ticket_lexical_text(alert) == alert_lexical_text(TITLE, DESCRIPTION, "postgres", "db01")
    incident = ticket(TicketKind.INCIDENT)
    assert "Expression: last(/db01/vfs.fs.size[/var,pused])>95" in ticket_text(incident)  # as it always was
    assert ticket_lexical_text(incident) == ticket_text(incident)
