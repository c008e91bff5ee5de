"""The log file: where "internal error (see the log)" points, for the CLI and the desktop app alike.

A rotating file (:data:`LOG_MAX_BYTES` x :data:`LOG_FILES`) in ``<workspace>/logs/``, or the platform's log
folder when there is no workspace or its folder cannot be written. The file is created at the first record,
so a command that logs nothing leaves nothing behind. While it is installed, our own packages log at INFO
(sync started/finished, imports) so the file tells what led up to an error; third-party loggers keep their
level.

A secret must never reach the file, so :func:`install_log_file` takes the redacting filter as a required
argument (``connectors.secrets.REDACTOR``: this layer cannot import it) and puts it on the handler itself,
where it sees every record whatever logger it came from.

Logging is process-global, so "the" log file is whichever :func:`install_log_file` put on the root logger
last; :func:`active_log_file` finds it there rather than in a module variable.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from io import TextIOWrapper
from logging.handlers import RotatingFileHandler
from pathlib import Path

import platformdirs

APP_NAME = "RunbookDesk"
LOG_FOLDER = "logs"  # <workspace>/logs/
LOG_FILE_NAME = "runbook-desk.log"
LOG_MAX_BYTES = 1_000_000
LOG_FILES = 5  # the current file and four rotated ones: about 5 MB in all
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"
APP_LOGGERS = ("core", "connectors", "desktop")
# ``extra={FILE_ONLY: True}``: a record (a traceback) for the file, not for the console line.
FILE_ONLY = "log_file_only"
INTERNAL_ERROR = "internal error"


def workspace_log_folder(workspace_root: Path) -> Path:
    return workspace_root / LOG_FOLDER


def platform_log_folder() -> Path:
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


class LogFileHandler(RotatingFileHandler):
    """A rotating file that creates its folder when the first record comes, and moves to ``fallback`` when
    that folder cannot be written (a read-only workspace must not turn every log call into an error)."""

    def __init__(self, folder: Path, fallback: Path | None) -> None:
        super().__init__(
            folder / LOG_FILE_NAME,
            maxBytes=LOG_MAX_BYTES,
            backupCount=LOG_FILES - 1,
            encoding="utf-8",
            delay=True,
        )
        self._fallback = fallback

    @property
    def path(self) -> Path:
        return Path(self.baseFilename)

    def _open(self) -> TextIOWrapper:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return super()._open()
        except OSError:
            if self._fallback is None or self._fallback == self.path.parent:
                raise
            self.baseFilename = str(self._fallback / LOG_FILE_NAME)
            self._fallback = None
            return self._open()


class _ConsoleFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, FILE_ONLY, False)


class _OneLineFormatter(logging.Formatter):
    """The message alone: a traceback is for the file, the terminal gets the line that names the problem."""

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


@dataclass
class InstalledLog:
    """What :func:`install_log_file` changed, so :meth:`uninstall` puts it back (tests, and an app that
    switches workspace, install and uninstall in turn)."""

    handler: LogFileHandler
    console: logging.Handler | None
    displaced: list[logging.Handler] = field(default_factory=list)
    levels: dict[str, int] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        """Where the log is (or will be, at its first record)."""
        return self.handler.path

    def uninstall(self) -> None:
        root = logging.getLogger()
        for handler in (self.handler, self.console):
            if handler is not None:
                root.removeHandler(handler)
                handler.close()
        for handler in self.displaced:
            root.addHandler(handler)
        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)


def install_log_file(
    folder: Path,
    *,
    redactor: logging.Filter,
    fallback: Path | None = None,
    console: bool = False,
) -> InstalledLog:
    """Log to ``folder/runbook-desk.log`` (rotating; ``fallback`` when ``folder`` cannot be written).

    It replaces a log file installed before (until :meth:`InstalledLog.uninstall`). With ``console``, and
    only when nothing else handles the root logger (no test harness, no host application), warnings also go
    to stderr, one line each and never a traceback: what Python printed before this file existed.
    """
    root = logging.getLogger()
    displaced: list[logging.Handler] = [h for h in root.handlers if isinstance(h, LogFileHandler)]
    had_handlers = bool(root.handlers)
    for handler in displaced:
        root.removeHandler(handler)
    handler = LogFileHandler(folder, platform_log_folder() if fallback is None else fallback)
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(redactor)
    root.addHandler(handler)
    console_handler: logging.Handler | None = None
    if console and not had_handlers:
        console_handler = logging.StreamHandler(sys.stderr)
        console_handler.setLevel(logging.WARNING)
        console_handler.setFormatter(_OneLineFormatter())
        console_handler.addFilter(redactor)
        console_handler.addFilter(_ConsoleFilter())
        root.addHandler(console_handler)
    levels: dict[str, int] = {}
    for name in APP_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            levels[name] = logger.level
            logger.setLevel(logging.INFO)
    return InstalledLog(handler, console_handler, displaced, levels)


def active_log_file() -> Path | None:
    """The log file records go to now, or None when none is installed (a library caller, a test)."""
    for handler in reversed(logging.getLogger().handlers):
        if isinstance(handler, LogFileHandler):
            return handler.path
    return None


def internal_error_text() -> str:
    """What a user is told about a bug: where its traceback is."""
    path = active_log_file()
    return f"{INTERNAL_ERROR} (see the log)" if path is None else f"{INTERNAL_ERROR} (see the log: {path})"
