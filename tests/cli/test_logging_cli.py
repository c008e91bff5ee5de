"""Issue 18, item 10, from the command line: a bug is one line on stderr naming the log file that holds its
traceback, with every secret masked."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from connectors.secrets import register_secret
from core.errors import RunbookDeskError
from core.logs import LOG_FILE_NAME, LogFileHandler, active_log_file
from desktop.cli import main as cli_main
from desktop.cli.common import EXIT_ERROR
from desktop.cli.main import main

SECRET = "Sup3r-s3cret-pw"


def test_a_bug_prints_one_line_naming_the_log_file_that_holds_the_traceback(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    register_secret(SECRET)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise KeyError(f"token {SECRET} not in cache")

    monkeypatch.setattr(cli_main, "list_tickets", broken)
    ws = tmp_path / "ws"
    code = main(["tickets", "list", "--workspace", str(ws)])
    err = capsys.readouterr().err
    log_path = ws / "logs" / LOG_FILE_NAME
    assert code == EXIT_ERROR
    assert err == (
        f"runbook-desk: internal error (KeyError: 'token *** not in cache'); details in {log_path}\n"
    )
    logged = log_path.read_text(encoding="utf-8")
    assert "ERROR desktop.cli.log_file" in logged and "internal error in `tickets`" in logged
    assert "Traceback (most recent call last)" in logged and ", in broken" in logged
    assert SECRET not in logged
    assert [r.levelname for r in caplog.records] == ["ERROR"]
    # Nothing stays installed after the command: the next one (or the test) starts clean.
    assert active_log_file() is None
    assert not [h for h in logging.getLogger().handlers if isinstance(h, LogFileHandler)]


def test_a_command_error_stays_one_line_and_writes_no_log(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*_args: object, **_kwargs: object) -> None:
        raise RunbookDeskError("--limit must be positive")

    monkeypatch.setattr(cli_main, "list_tickets", refused)
    ws = tmp_path / "ws"
    assert main(["tickets", "list", "--workspace", str(ws)]) == EXIT_ERROR
    assert capsys.readouterr().err == "runbook-desk: error: --limit must be positive\n"
    assert not (ws / "logs").exists()
