"""The headless CLI: exit codes, one-line errors, JSON output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.cli.common import EXIT_ERROR, EXIT_OK, EXIT_REJECTED_ROWS
from desktop.cli.main import main

CSV = (
    "number,short_description,description,priority,state,assigned_to,sys_created_on,sys_updated_on,"
    "close_notes,category,cmdb_ci\n"
    "INC1,Outlook keeps asking for password,x,3 - Moderate,New,,2026-09-01 08:00:00,,,Software,\n"
    "INC2,VPN drops,y,2 - High,New,,2026-09-01 09:00:00,,,Network,\n"
)


@pytest.fixture
def export(tmp_path: Path) -> Path:
    path = tmp_path / "incidents.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_import_twice_reports_unchanged(capsys, tmp_path: Path, export: Path) -> None:
    ws = str(tmp_path / "ws")
    code, out, _ = run(capsys, "import", "tickets", str(export), "--workspace", ws, "--json")
    assert code == EXIT_OK
    assert json.loads(out)["inserted"] == 2
    code, out, _ = run(capsys, "--workspace", ws, "--json", "import", "tickets", str(export))
    assert (code, json.loads(out)["unchanged"], json.loads(out)["inserted"]) == (EXIT_OK, 2, 0)


def test_list_and_info(capsys, tmp_path: Path, export: Path) -> None:
    ws = str(tmp_path / "ws")
    run(capsys, "import", "tickets", str(export), "--workspace", ws)
    code, out, _ = run(capsys, "tickets", "list", "--workspace", ws, "--json")
    assert code == EXIT_OK
    assert sorted(t["external_id"] for t in json.loads(out)) == ["INC1", "INC2"]
    code, out, _ = run(capsys, "tickets", "list", "--workspace", ws, "--search", "vpn")
    assert "VPN drops" in out
    assert "Outlook" not in out
    code, out, _ = run(capsys, "workspace", "info", "--workspace", ws, "--json")
    assert json.loads(out)["tickets"] == 2


def test_rejected_rows_give_exit_code_4_and_name_the_line(capsys, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(CSV + "INC3,,no title,3,New,,,,,,\n", encoding="utf-8")
    code, _out, err = run(capsys, "import", "tickets", str(path), "--workspace", str(tmp_path / "ws"))
    assert code == EXIT_REJECTED_ROWS
    assert "rejected: bad.csv, line 4: short_description is empty" in err


def test_errors_are_one_line_on_stderr(capsys, tmp_path: Path) -> None:
    code, out, err = run(
        capsys, "import", "tickets", str(tmp_path / "missing.csv"), "--workspace", str(tmp_path)
    )
    assert code == EXIT_ERROR
    assert out == ""
    assert err.strip().count("\n") == 0
    assert err.startswith("runbook-desk: error: ") and "missing.csv: no such file" in err


def test_unknown_tenant_before_or_after_the_command(capsys, tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    for argv in (
        ("--tenant", "acme", "tickets", "list", "--workspace", ws),
        ("tickets", "list", "--tenant", "acme", "--workspace", ws),
    ):
        code, _, err = run(capsys, *argv)
        assert code == EXIT_ERROR
        assert "no tenant 'acme'" in err
    code, _, _ = run(capsys, "workspace", "init", "--tenant", "acme", "--workspace", ws)
    assert code == EXIT_OK
    assert run(capsys, "tickets", "list", "--tenant", "acme", "--workspace", ws)[0] == EXIT_OK


def test_progress_goes_to_stderr_when_asked_and_never_with_json(capsys, tmp_path: Path, export: Path) -> None:
    ws = str(tmp_path / "ws")
    code, out, err = run(capsys, "import", "tickets", str(export), "--workspace", ws)
    assert (code, err) == (EXIT_OK, "")  # stderr is no terminal here: quiet unless asked
    assert "2 inserted" in out
    code, out, err = run(capsys, "import", "tickets", str(export), "--workspace", ws, "--progress")
    assert code == EXIT_OK and "2 unchanged" in out
    assert err.splitlines() == ["100% 2 tickets read"]  # not a terminal: whole lines, the last one always
    code, out, err = run(capsys, "--progress", "--json", "import", "tickets", str(export), "--workspace", ws)
    assert (code, err) == (EXIT_OK, "")
    assert json.loads(out)["unchanged"] == 2


def test_runbook_import_and_list(capsys, tmp_path: Path) -> None:
    folder = tmp_path / "rb"
    folder.mkdir()
    (folder / "disk.md").write_text("# Disk full on Linux\n\n1. `df -h`\n", encoding="utf-8")
    ws = str(tmp_path / "ws")
    assert run(capsys, "import", "runbooks", str(folder), "--workspace", ws)[0] == EXIT_OK
    _code, out, _ = run(capsys, "runbooks", "list", "--workspace", ws, "--status", "approved")
    assert "Disk full on Linux" in out


def test_console_script_runs_headless_without_qt(tmp_path: Path, export: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "desktop.cli.main",
            "import",
            "tickets",
            str(export),
            "--workspace",
            str(tmp_path / "w"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == EXIT_OK, result.stderr
    assert "2 inserted" in result.stdout
