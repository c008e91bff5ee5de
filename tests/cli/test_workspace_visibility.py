"""Issue 16, item 4, from the command line: a command on an empty workspace that is not the app's says so, and
``workspace info`` names the path, the counts and who holds the lock, even while the app holds it."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from core.errors import WorkspaceLockedError
from core.store.workspace import (
    LOCK_HOLDER_FILENAME,
    WORKSPACE_ENV,
    Workspace,
    read_lock_holder,
    remember_app_workspace,
)
from desktop.cli.common import EXIT_ERROR, EXIT_OK
from desktop.cli.main import main

CSV = (
    "number,short_description,description,priority,state,sys_created_on\n"
    "INC1,Outlook keeps asking for password,x,3 - Moderate,New,2026-09-01 08:00:00\n"
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def export(tmp_path: Path) -> Path:
    path = tmp_path / "incidents.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


@pytest.fixture
def app_workspace(tmp_path: Path) -> Path:
    """A workspace the desktop app opened (as the launcher records it)."""
    root = tmp_path / "app-ws"
    with Workspace.open(root):
        pass
    remember_app_workspace(root)
    return root.resolve()


def env_workspace() -> Path:
    return Path(os.environ[WORKSPACE_ENV]).resolve()


def test_an_import_into_an_empty_workspace_the_app_did_not_open_names_both(
    capsys: pytest.CaptureFixture[str], app_workspace: Path, export: Path
) -> None:
    code, _out, err = run(capsys, "import", "tickets", str(export))
    assert code == EXIT_OK  # a warning, not a refusal
    warnings = [line for line in err.splitlines() if line.startswith("runbook-desk: warning:")]
    assert len(warnings) == 1
    assert f"workspace {env_workspace()} has no tickets and no runbooks" in warnings[0]
    assert f"--workspace {app_workspace}" in warnings[0]
    # Now it holds a ticket: the next command is on a workspace the user has clearly been using.
    code, out, err = run(capsys, "tickets", "list")
    assert (code, err) == (EXIT_OK, "")
    assert "INC1" in out


def test_no_warning_on_the_apps_workspace_or_before_the_app_ever_ran(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _out, err = run(capsys, "tickets", "list")  # the app never started: nothing to compare with
    assert (code, err) == (EXIT_OK, "")
    remember_app_workspace(env_workspace())
    code, _out, err = run(capsys, "runbooks", "list")
    assert (code, err) == (EXIT_OK, "")


def test_json_output_stays_clean_when_warning(
    capsys: pytest.CaptureFixture[str], app_workspace: Path
) -> None:
    code, out, err = run(capsys, "tickets", "list", "--json")
    assert code == EXIT_OK
    assert json.loads(out) == []
    assert str(app_workspace) in err


def test_info_names_path_counts_and_the_lock_holder_while_another_process_holds_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, export: Path
) -> None:
    root = tmp_path / "held"
    assert run(capsys, "import", "tickets", str(export), "--workspace", str(root))[0] == EXIT_OK
    with Workspace.open(root):  # the app, holding it
        code, out, err = run(capsys, "workspace", "info", "--workspace", str(root), "--json")
        assert (code, err) == (EXIT_OK, "")
        info = json.loads(out)
        assert info["workspace"] == str(root.resolve())
        assert (info["tickets"], info["runbooks"]) == (1, 0)
        assert info["lock_holder"]["pid"] == os.getpid()
        assert info["lock_holder"]["host"] == socket.gethostname()
        assert info["lock_holder"]["command"]
        code, out, _err = run(capsys, "workspace", "info", "--workspace", str(root))
        assert f"lock holder: pid {os.getpid()} on {socket.gethostname()}" in out
    code, out, _err = run(capsys, "workspace", "info", "--workspace", str(root))
    assert "lock holder: none (not open elsewhere)" in out
    assert not (root / LOCK_HOLDER_FILENAME).exists()


def test_a_stale_holder_record_is_not_reported_as_the_holder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = tmp_path / "crashed"
    with Workspace.open(root):
        record = (root / LOCK_HOLDER_FILENAME).read_text(encoding="utf-8")
    (root / LOCK_HOLDER_FILENAME).write_text(record, encoding="utf-8")  # as a crash leaves it
    code, out, _err = run(capsys, "workspace", "info", "--workspace", str(root), "--json")
    assert code == EXIT_OK
    assert json.loads(out)["lock_holder"] is None


def test_a_locked_out_command_names_who_holds_the_workspace(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = tmp_path / "held"
    with Workspace.open(root):
        holder = read_lock_holder(root)
        assert holder is not None and holder.pid == os.getpid()
        code, _out, err = run(capsys, "tickets", "list", "--workspace", str(root))
        with pytest.raises(WorkspaceLockedError, match=f"held by pid {os.getpid()} on "):
            Workspace.open(root)
    assert code == EXIT_ERROR
    assert f"held by pid {os.getpid()} on {socket.gethostname()}" in err
    assert len(err.strip().splitlines()) == 1


def test_the_holder_record_names_the_command_but_never_an_option_value(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    argv = ["/opt/bin/runbook-desk", "connectors", "add", "jira", "--url", "https://bob:s3cret@jira.example"]
    monkeypatch.setattr("sys.argv", argv)
    root = tmp_path / "ws"
    with Workspace.open(root):
        record = (root / LOCK_HOLDER_FILENAME).read_text(encoding="utf-8")
        holder = read_lock_holder(root)
    assert holder is not None and holder.command == "runbook-desk connectors add jira"
    assert "s3cret" not in record
