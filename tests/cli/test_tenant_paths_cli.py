"""Issue 18, item 4, from the command line: `--tenant ../../escaped/x` is refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop.cli.common import EXIT_ERROR
from desktop.cli.main import main


def test_cli_refuses_an_escaping_tenant_and_writes_nothing_outside(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ws = tmp_path / "deep" / "ws"
    code = main(["workspace", "init", "--workspace", str(ws), "--tenant", "../../escaped/x"])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR
    assert err.startswith("runbook-desk: error: '../../escaped/x' is not a valid tenant slug")
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "escaped").exists()
    assert not (tmp_path / "deep" / "escaped").exists()


@pytest.mark.parametrize("command", [["tickets", "list"], ["index", "rebuild"], ["workspace", "info"]])
def test_every_command_refuses_a_hostile_tenant_before_touching_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]
) -> None:
    ws = tmp_path / "ws"
    code = main([*command, "--workspace", str(ws), "--tenant", "zz/../default"])
    assert code == EXIT_ERROR
    assert "'zz/../default' is not a valid tenant slug" in capsys.readouterr().err
    assert not (ws / "indexes").exists()
