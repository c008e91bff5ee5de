"""Issue 18, item 10: the log file "see the log" points to: rotating, in the workspace, never a secret."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.secrets import REDACTOR, register_secret
from core.logs import (
    FILE_ONLY,
    LOG_FILE_NAME,
    LOG_FILES,
    LOG_MAX_BYTES,
    InstalledLog,
    LogFileHandler,
    active_log_file,
    install_log_file,
    internal_error_text,
    workspace_log_folder,
)

SECRET = "Sup3r-s3cret-pw"
log = logging.getLogger("core.test_logging")


@pytest.fixture
def installed(tmp_path: Path) -> Iterator[InstalledLog]:
    handle = install_log_file(
        workspace_log_folder(tmp_path / "ws"), redactor=REDACTOR, fallback=tmp_path / "fb"
    )
    yield handle
    handle.uninstall()


def read_log(handle: InstalledLog) -> str:
    handle.handler.flush()
    return handle.path.read_text(encoding="utf-8")


def test_the_log_is_in_the_workspace_and_created_only_when_something_is_logged(
    installed: InstalledLog, tmp_path: Path
) -> None:
    assert installed.path == tmp_path / "ws" / "logs" / LOG_FILE_NAME
    assert active_log_file() == installed.path
    assert not installed.path.parent.exists()
    log.info("sync started")  # our packages log at INFO while the file is installed
    assert "INFO core.test_logging [MainThread] sync started" in read_log(installed)


def test_it_rotates_at_one_megabyte_keeping_five_files(installed: InstalledLog) -> None:
    assert (installed.handler.maxBytes, installed.handler.backupCount) == (LOG_MAX_BYTES, LOG_FILES - 1)
    line = "x" * 1000
    for _ in range(LOG_FILES * LOG_MAX_BYTES // 1000 + 2_000):
        log.info(line)
    files = sorted(installed.path.parent.iterdir())
    assert [f.name for f in files] == [LOG_FILE_NAME] + [f"{LOG_FILE_NAME}.{n}" for n in range(1, LOG_FILES)]
    assert all(f.stat().st_size <= LOG_MAX_BYTES for f in files)


def test_no_secret_reaches_the_file_not_even_in_a_traceback(
    installed: InstalledLog, caplog: pytest.LogCaptureFixture
) -> None:
    register_secret(SECRET)
    try:
        raise RuntimeError(f"server said: bad password {SECRET}")
    except RuntimeError:
        logging.getLogger("some.plugin").error("sync failed for %s", SECRET, exc_info=True)
    text = read_log(installed)
    assert "sync failed for ***" in text and "bad password ***" in text
    assert SECRET not in text
    assert [r.levelname for r in caplog.records] == ["ERROR"]


def test_an_unwritable_workspace_logs_to_the_fallback_folder(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "logs").write_text("a file where the folder should be", encoding="utf-8")
    handle = install_log_file(tmp_path / "ws" / "logs", redactor=REDACTOR, fallback=tmp_path / "fb")
    try:
        log.info("still written")
        assert handle.path == tmp_path / "fb" / LOG_FILE_NAME
        assert "still written" in read_log(handle)
        assert active_log_file() == handle.path
    finally:
        handle.uninstall()


def test_a_second_install_replaces_the_first_until_it_is_uninstalled(
    installed: InstalledLog, tmp_path: Path
) -> None:
    second = install_log_file(tmp_path / "other", redactor=REDACTOR)
    assert active_log_file() == second.path
    assert [h for h in logging.getLogger().handlers if isinstance(h, LogFileHandler)] == [second.handler]
    second.uninstall()
    assert active_log_file() == installed.path


def test_uninstall_leaves_logging_as_it_found_it(tmp_path: Path) -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), logging.getLogger("core").level
    install_log_file(tmp_path, redactor=REDACTOR).uninstall()
    assert (root.handlers, logging.getLogger("core").level) == (handlers, level)
    assert active_log_file() is None


def test_an_internal_error_names_the_log_file(installed: InstalledLog) -> None:
    assert internal_error_text() == f"internal error (see the log: {installed.path})"
    installed.uninstall()
    assert internal_error_text() == "internal error (see the log)"


def test_the_console_gets_one_line_per_warning_and_never_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As a CLI run sees it: nothing else handles the root logger, so warnings reach stderr through us."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    register_secret(SECRET)
    handle = install_log_file(tmp_path, redactor=REDACTOR, console=True)
    try:
        log.info("only in the file")
        try:
            raise ValueError("boom")
        except ValueError:
            log.error("sync failed with %s", SECRET, exc_info=True)
        log.error("a traceback for the file", extra={FILE_ONLY: True})
    finally:
        handle.uninstall()
    assert capsys.readouterr().err == "sync failed with ***\n"
    logged = (tmp_path / LOG_FILE_NAME).read_text(encoding="utf-8")
    assert (
        "only in the file" in logged and "ValueError: boom" in logged and "a traceback for the file" in logged
    )
