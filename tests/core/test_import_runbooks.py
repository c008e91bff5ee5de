"""Runbook import from Markdown folders and CSV/JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from core.errors import ImportFailedError, OperationCancelledError
from core.importing import import_runbooks
from core.store.models import AuditEvent, Runbook, RunbookSource, RunbookStatus
from tests.helpers.progress import RecordingProgress

VPN = """---
title: VPN client cannot connect
tags: [vpn, Network]
service: Remote Access
status: approved
---
## Symptoms
AnyConnect shows "Login failed".

## Resolution steps
1. Restart the client.
"""


def runbooks(sessions) -> list[Runbook]:
    with sessions() as s:
        return list(s.scalars(select(Runbook).order_by(Runbook.title)))


def folder(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "runbooks"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_markdown_folder_with_front_matter(sessions, tmp_path: Path) -> None:
    root = folder(tmp_path, {"vpn.md": VPN, "net/dns.md": "# DNS resolution fails\n\nFlush the cache.\n"})
    summary = import_runbooks(sessions, root)
    assert (summary.inserted, summary.rejected_count) == (2, 0)
    dns, vpn = runbooks(sessions)
    assert (vpn.title, vpn.tags, vpn.service, vpn.status) == (
        "VPN client cannot connect",
        ["vpn", "network"],
        "Remote Access",
        RunbookStatus.APPROVED,
    )
    assert vpn.body.startswith("## Symptoms")
    assert (vpn.source, vpn.external_ref, vpn.current_revision) == (RunbookSource.IMPORTED, "vpn.md", 1)
    assert (dns.title, dns.external_ref) == ("DNS resolution fails", "net/dns.md")


def test_reimport_is_free_and_an_edit_makes_a_revision(sessions, tmp_path: Path) -> None:
    root = folder(tmp_path, {"vpn.md": VPN})
    import_runbooks(sessions, root)
    again = import_runbooks(sessions, root)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 1)
    (root / "vpn.md").write_text(
        VPN.replace("Restart the client.", "Reinstall the client."), encoding="utf-8"
    )
    edited = import_runbooks(sessions, root)
    assert edited.updated == 1
    with sessions() as s:
        runbook = s.scalars(select(Runbook)).one()
        assert runbook.current_revision == 2
        assert "Reinstall" in runbook.revisions[-1].body
        assert "Restart" in runbook.revisions[0].body
        actions = s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["runbook.import", "runbook.reimport"]


def test_bad_markdown_files_are_rejected_by_name(sessions, tmp_path: Path) -> None:
    root = folder(
        tmp_path,
        {
            "good.md": VPN,
            "broken.md": "---\ntitle: [unclosed\n---\nbody\n",
            "empty.md": "",
            "status.md": "---\nstatus: shipped\n---\nbody\n",
        },
    )
    summary = import_runbooks(sessions, root)
    assert summary.inserted == 1
    reasons = {r.file: r.reason for r in summary.rejected}
    assert "invalid YAML front matter" in reasons["broken.md"]
    assert "empty" in reasons["empty.md"]
    assert "unknown status 'shipped'" in reasons["status.md"]


def test_folder_without_markdown_fails(sessions, tmp_path: Path) -> None:
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ImportFailedError, match="no Markdown"):
        import_runbooks(sessions, tmp_path / "nothing")


def test_csv_and_json_runbooks(sessions, tmp_path: Path) -> None:
    csv_path = tmp_path / "kb.csv"
    csv_path.write_text(
        'id,title,body,tags,category\nKB1,Printer offline,"1. Restart spooler",printing;hardware,Devices\n'
        "KB2,,no title,,\n",
        encoding="utf-8",
    )
    summary = import_runbooks(sessions, csv_path, default_status=RunbookStatus.DRAFT)
    assert (summary.inserted, summary.rejected_count) == (1, 1)
    assert summary.rejected[0].location == "line 3"
    json_path = tmp_path / "kb.json"
    json_path.write_text(
        json.dumps([{"slug": "disk", "title": "Disk full", "content": "df -h"}]), encoding="utf-8"
    )
    assert import_runbooks(sessions, json_path).inserted == 1
    disk, printer = runbooks(sessions)
    assert (printer.external_ref, printer.tags, printer.service, printer.status) == (
        "KB1",
        ["printing", "hardware"],
        "Devices",
        RunbookStatus.DRAFT,
    )
    assert (disk.external_ref, disk.body) == ("disk", "df -h")


def test_csv_without_body_column_fails_naming_it(sessions, tmp_path: Path) -> None:
    path = tmp_path / "kb.csv"
    path.write_text("title,notes\nx,y\n", encoding="utf-8")
    with pytest.raises(ImportFailedError, match="required field 'body'"):
        import_runbooks(sessions, path)


def test_progress_counts_runbooks_and_a_cancel_keeps_those_imported(sessions, tmp_path: Path) -> None:
    files = {f"rb{i}.md": f"# Runbook {i}\n\n1. Step {i}.\n" for i in range(5)}
    progress = RecordingProgress(cancel_after=2)
    with pytest.raises(OperationCancelledError, match="runbook import cancelled"):
        import_runbooks(sessions, folder(tmp_path, files), progress=progress)
    assert progress.reports == [(1, None, "1 runbooks"), (2, None, "2 runbooks")]  # no total: a busy bar
    assert len(runbooks(sessions)) == 2  # one transaction per runbook: both kept
