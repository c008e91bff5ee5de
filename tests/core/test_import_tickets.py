"""Ticket import: the exports analysts really have, and the ways files go wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from core.errors import ImportFailedError, OperationCancelledError
from core.importing import import_tickets
from core.store.models import UNKNOWN_INSTANCE, AuditEvent, ConnectorConfig, Ticket
from core.store.tickets import instance_of
from tests.helpers.progress import RecordingProgress

SN_HEADER = (
    "number,short_description,description,priority,state,assigned_to,sys_created_on,sys_updated_on,"
    "close_notes,category,cmdb_ci"
)
SN_ROWS = [
    'INC0010001,VPN keeps dropping,"AnyConnect drops every 10 min\nerror 0x80070005",2 - High,Resolved,'
    "Ana Lima,2026-09-01 08:00:00,2026-09-01 12:30:00,Reinstalled the client,Network,vpn-gw-01",
    "INC0010002,printer offline 3rd floor,Jobs stuck in queue,4 - Low,New,,2026-09-02 09:00:00,"
    "2026-09-02 09:00:00,,Hardware,PRN-3F-EAST",
]


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def servicenow_csv(tmp_path: Path, rows: list[str] = SN_ROWS, *, newline: str = "\n") -> Path:
    return write(tmp_path / "incidents.csv", newline.join([SN_HEADER, *rows]) + newline)


def tickets(sessions) -> list[Ticket]:
    with sessions() as s:
        return list(s.scalars(select(Ticket).order_by(Ticket.external_id)))


def test_servicenow_export_maps_every_column(sessions, tmp_path: Path) -> None:
    summary = import_tickets(sessions, servicenow_csv(tmp_path))
    assert (summary.inserted, summary.rejected_count, summary.preset) == (2, 0, "servicenow")
    vpn = tickets(sessions)[0]
    assert vpn.external_id == "INC0010001"
    assert vpn.source_system == "servicenow"
    assert vpn.title == "VPN keeps dropping"
    assert vpn.description == "AnyConnect drops every 10 min\nerror 0x80070005"
    assert (vpn.severity, vpn.status, vpn.assignee) == ("high", "Resolved", "Ana Lima")
    assert (vpn.category, vpn.configuration_item) == ("Network", "vpn-gw-01")
    assert vpn.resolution_notes == "Reinstalled the client"
    assert vpn.created_at is not None
    assert vpn.created_at.isoformat() == "2026-09-01T08:00:00+00:00"
    assert vpn.resolved_at == vpn.updated_at  # no resolved column: last update of a resolved ticket
    assert vpn.raw_payload["cmdb_ci"] == "vpn-gw-01"


def test_reimport_changes_nothing_and_a_real_change_is_an_update(sessions, tmp_path: Path) -> None:
    path = servicenow_csv(tmp_path)
    import_tickets(sessions, path)
    again = import_tickets(sessions, path)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    changed = [SN_ROWS[0], SN_ROWS[1].replace("4 - Low", "2 - High")]
    third = import_tickets(sessions, servicenow_csv(tmp_path, changed))
    assert (third.inserted, third.updated, third.unchanged) == (0, 1, 1)
    assert len(tickets(sessions)) == 2
    assert tickets(sessions)[1].severity == "high"


def test_jira_csv_export(sessions, tmp_path: Path) -> None:
    path = write(
        tmp_path / "jira.csv",
        "Issue key,Summary,Description,Priority,Status,Assignee,Created,Updated,Resolution\n"
        "OPS-12,Pods in CrashLoopBackOff,kubectl shows restarts,Highest,Done,Bo Chen,"
        "13/Nov/26 9:15 AM,14/Nov/26 5:02 PM,Fixed\n",
    )
    summary = import_tickets(sessions, path)
    assert (summary.inserted, summary.preset) == (1, "jira")
    ticket = tickets(sessions)[0]
    assert (ticket.external_id, ticket.source_system, ticket.severity) == ("OPS-12", "jira", "critical")
    assert ticket.created_at is not None
    assert ticket.created_at.isoformat() == "2026-11-13T09:15:00+00:00"
    assert ticket.resolved_at == ticket.updated_at
    assert ticket.raw_payload["Resolution"] == "Fixed"


def test_bom_crlf_and_semicolons(sessions, tmp_path: Path) -> None:
    text = (
        "\ufeff"
        + SN_HEADER.replace(",", ";")
        + "\r\n"
        + 'INC1;"Outlook; ""not responding""";x;3;New;;;;;;\r\n'
    )
    summary = import_tickets(sessions, write(tmp_path / "semi.csv", text))
    assert (summary.inserted, summary.encoding) == (1, "utf-8-sig")
    assert tickets(sessions)[0].title == 'Outlook; "not responding"'


def test_cp1252_file_is_read_as_windows_1252(sessions, tmp_path: Path) -> None:
    text = SN_HEADER + "\nINC1,Caf\u00e9 Wi\u2011Fi \u2013 no signal,\u201cdropped\u201d,3,New,,,,,,\n"
    text = text.replace("\u2011", "-")
    summary = import_tickets(sessions, write(tmp_path / "excel.csv", text, "cp1252"))
    assert summary.encoding == "cp1252"
    assert tickets(sessions)[0].title == "Caf\u00e9 Wi-Fi \u2013 no signal"
    assert tickets(sessions)[0].description == "\u201cdropped\u201d"


def test_undecodable_file_fails_naming_the_offset(sessions, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(SN_HEADER.encode() + b"\nINC1,\x81\x8d broken,x,3,New,,,,,,\n")
    with pytest.raises(ImportFailedError, match=r"bad\.csv: not UTF-8 .* offset \d+"):
        import_tickets(sessions, path)
    assert tickets(sessions) == []


def test_empty_file_and_missing_column_fail_before_writing(sessions, tmp_path: Path) -> None:
    with pytest.raises(ImportFailedError, match=r"empty\.csv: the file is empty"):
        import_tickets(sessions, write(tmp_path / "empty.csv", ""))
    no_title = write(tmp_path / "no_title.csv", "number,description\nINC1,x\n")
    with pytest.raises(ImportFailedError, match=r"no column for required field 'title'.*--map title=COLUMN"):
        import_tickets(sessions, no_title)
    assert tickets(sessions) == []


def test_explicit_mapping_for_an_unknown_layout(sessions, tmp_path: Path) -> None:
    path = write(tmp_path / "custom.csv", "Ref,Headline,Text\nT-1,Teams no audio,headset not found\n")
    summary = import_tickets(
        sessions,
        path,
        mapping={"external_id": "Ref", "title": "Headline", "description": "Text"},
        source_system="legacy",
    )
    assert summary.inserted == 1
    assert (tickets(sessions)[0].source_system, tickets(sessions)[0].description) == (
        "legacy",
        "headset not found",
    )


def test_bad_rows_are_reported_with_line_and_reason_and_good_rows_kept(sessions, tmp_path: Path) -> None:
    rows = [
        SN_ROWS[0],  # lines 2-3 (quoted newline)
        "INC2,,x,3,New,,,,,,",  # line 4: empty title
        "INC3,disk full,x,3,New,,yesterday,,,,",  # line 5: bad date
        "INC4,too many,x,3,New,,,,,,,extra,fields",  # line 6
        SN_ROWS[1],  # line 7
    ]
    summary = import_tickets(sessions, servicenow_csv(tmp_path, rows))
    assert summary.inserted == 2
    assert [(r.file, r.location) for r in summary.rejected] == [
        ("incidents.csv", "line 4"),
        ("incidents.csv", "line 5"),
        ("incidents.csv", "line 6"),
    ]
    assert "short_description is empty" in summary.rejected[0].reason
    assert "sys_created_on: unrecognised date 'yesterday'" in summary.rejected[1].reason
    assert "header has 11" in summary.rejected[2].reason


def test_json_export_with_records_wrapper_and_display_values(sessions, tmp_path: Path) -> None:
    records = {
        "records": [
            {
                "number": "INC9",
                "short_description": "MFA prompt loop",
                "priority": {"display_value": "1 - Critical", "value": "1"},
                "sys_updated_on": "2026-10-01T10:00:00Z",
            },
            ["not", "an", "object"],
        ]
    }
    path = write(tmp_path / "export.json", json.dumps(records))
    summary = import_tickets(sessions, path)
    assert (summary.inserted, summary.rejected_count) == (1, 1)
    assert summary.rejected[0].location == "record 2"
    assert tickets(sessions)[0].severity == "critical"


def test_jira_rest_json_with_adf_description(sessions, tmp_path: Path) -> None:
    issue = {
        "key": "OPS-7",
        "fields": {
            "summary": "DNS fails for corp.example.com",
            "priority": {"name": "High"},
            "description": {
                "type": "doc",
                "version": 1,
                "content": [{"type": "paragraph", "content": [{"type": "text", "text": "NXDOMAIN on dc01"}]}],
            },
        },
    }
    summary = import_tickets(sessions, write(tmp_path / "jira.json", json.dumps({"issues": [issue]})))
    assert summary.inserted == 1
    ticket = tickets(sessions)[0]
    assert (ticket.external_id, ticket.title, ticket.severity) == (
        "OPS-7",
        "DNS fails for corp.example.com",
        "high",
    )
    assert "NXDOMAIN on dc01" in ticket.description


def test_jsonl_with_a_broken_line(sessions, tmp_path: Path) -> None:
    lines = [
        json.dumps({"external_id": "A1", "title": "disk full on lnx-app-07"}),
        "{not json",
        "",
        json.dumps({"external_id": "A2", "title": "CPU 99% on web-02"}),
    ]
    summary = import_tickets(
        sessions, write(tmp_path / "alerts.jsonl", "\n".join(lines)), source_system="zabbix"
    )
    assert summary.inserted == 2
    assert [r.location for r in summary.rejected] == ["line 2"]


def test_truncated_json_keeps_the_records_before_the_break(sessions, tmp_path: Path) -> None:
    text = json.dumps([{"number": f"INC{i}", "short_description": f"t{i}"} for i in range(5)])
    summary = import_tickets(sessions, write(tmp_path / "cut.json", text[: len(text) - 30]))
    assert summary.inserted == 4
    assert summary.rejected_count == 1
    assert "malformed JSON" in summary.rejected[0].reason


def test_progress_cancel_and_audit(sessions, tmp_path: Path) -> None:
    rows = [f"INC{i},ticket {i},d,3,New,,,,,," for i in range(50)]
    progress = RecordingProgress(cancel_after=2)
    with pytest.raises(OperationCancelledError, match="after 20 rows"):
        import_tickets(sessions, servicenow_csv(tmp_path, rows), batch_size=10, progress=progress)
    assert [message for _done, _total, message in progress.reports] == ["10 tickets read", "20 tickets read"]
    assert 0 < progress.reports[0][0] <= progress.reports[1][0] <= 1000
    assert {total for _done, total, _message in progress.reports} == {1000}  # thousandths of the file
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 20  # two batches, nothing half-written
        events = s.scalars(select(AuditEvent).where(AuditEvent.action == "import.tickets")).all()
    assert len(events) == 1  # a cancelled import is audited with what it committed
    assert events[0].after is not None
    assert events[0].after["inserted"] == 20 and events[0].after["cancelled"] is True


def test_same_ticket_twice_in_one_file_is_one_row(sessions, tmp_path: Path) -> None:
    rows = [SN_ROWS[1], SN_ROWS[1].replace("printer offline", "printer OFFLINE")]
    summary = import_tickets(sessions, servicenow_csv(tmp_path, rows))
    assert summary.inserted == 1
    assert len(tickets(sessions)) == 1
    assert tickets(sessions)[0].title == "printer OFFLINE 3rd floor"


# --- which instance an export belongs to (the identity rule in core.store.models) -------------------------


def add_connector(sessions, connector_type: str, base_url: str, name: str) -> None:
    """A configured connector as the store holds it (what connectors.configs writes)."""
    with sessions.begin() as session:
        session.add(
            ConnectorConfig(
                tenant_id=session.tenant_id,
                connector_type=connector_type,
                name=name,
                config_json={"base_url": base_url},
            )
        )


def instances(sessions) -> list[tuple[str, str]]:
    return sorted((t.source_instance, t.external_id) for t in tickets(sessions))


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("https://Acme.service-now.com/now/nav/ui/classic/params/target/incident.do", "acme.service-now.com"),
        ("acme.service-now.com", "acme.service-now.com"),
        ("acme.service-now.com.", "acme.service-now.com"),
        ("http://jira.corp.example:8080/jira", "jira.corp.example:8080"),
        ("https://jira.corp.example:443/", "jira.corp.example"),
        ("  ", UNKNOWN_INSTANCE),
    ],
)
def test_an_instance_is_its_host_with_any_unusual_port(address: str, key: str) -> None:
    assert instance_of(address) == key


def test_an_export_belongs_to_its_systems_only_known_instance(sessions, tmp_path: Path) -> None:
    add_connector(sessions, "servicenow", "https://acme.service-now.com", "Acme")
    add_connector(sessions, "jira", "https://corp.atlassian.net", "Jira")  # another system: no say
    import_tickets(sessions, servicenow_csv(tmp_path))
    assert instances(sessions) == [
        ("acme.service-now.com", "INC0010001"),
        ("acme.service-now.com", "INC0010002"),
    ]


def test_with_two_instances_known_an_export_must_say_which_it_came_from(sessions, tmp_path: Path) -> None:
    add_connector(sessions, "servicenow", "https://acme.service-now.com", "Acme")
    add_connector(sessions, "servicenow", "https://globex.service-now.com", "Globex")
    export = servicenow_csv(tmp_path)
    with pytest.raises(
        ImportFailedError,
        match=r"servicenow: 2 instances are known \(acme\S+, globex\S+\); say which .*--instance HOST",
    ):
        import_tickets(sessions, export)
    assert tickets(sessions) == []  # refused before the first row was written

    assert (
        import_tickets(sessions, export, instance="https://globex.service-now.com/now/nav/ui").inserted == 2
    )
    assert import_tickets(sessions, export, instance="acme.service-now.com").inserted == 2  # same numbers
    assert import_tickets(sessions, export, instance="acme.service-now.com").unchanged == 2
    assert [instance for instance, _ in instances(sessions)] == ["acme.service-now.com"] * 2 + [
        "globex.service-now.com"
    ] * 2
    with pytest.raises(ImportFailedError, match=r"--instance acme:x: .*port"):
        import_tickets(sessions, export, instance="acme:x")


def test_rows_of_unknown_instance_join_the_first_instance_and_stay_apart_once_there_are_two(
    sessions, tmp_path: Path
) -> None:
    export = servicenow_csv(tmp_path)
    import_tickets(sessions, export)  # nothing configured yet: the instance is unknown
    assert [instance for instance, _ in instances(sessions)] == [UNKNOWN_INSTANCE] * 2

    add_connector(sessions, "servicenow", "https://acme.service-now.com", "Acme")
    assert import_tickets(sessions, export).inserted == 0  # the only instance takes its rows over
    assert [instance for instance, _ in instances(sessions)] == ["acme.service-now.com"] * 2

    with sessions.begin() as session:
        session.execute(update(Ticket).values(source_instance=UNKNOWN_INSTANCE))  # as if imported early
    add_connector(sessions, "servicenow", "https://globex.service-now.com", "Globex")
    assert import_tickets(sessions, export, instance="globex.service-now.com").inserted == 2
    assert [instance for instance, _ in instances(sessions)] == [UNKNOWN_INSTANCE] * 2 + [
        "globex.service-now.com"
    ] * 2  # with two instances an unknown row could be either's: it is left alone
