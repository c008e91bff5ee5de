"""What every ``runbook-desk`` command shares: exit codes, output, dates, progress on stderr.

Output rule: the result goes to stdout (text, or JSON with ``--json``); everything for the person watching
(progress, warnings, errors) goes to stderr, so ``--json`` output and pipes stay clean. Progress is shown
when stderr is a terminal or ``--progress`` asks for it, and never with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from core.errors import RunbookDeskError
from core.progress import NO_PROGRESS, Progress
from core.store.models import Runbook
from core.store.repository import count_tickets
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace, last_app_workspace

EXIT_OK = 0
EXIT_ERROR = 1  # one line on stderr says why
EXIT_USAGE = 2  # argparse's own code for a bad command line
EXIT_REJECTED_ROWS = 4  # an import finished but refused some rows
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT

PROGRESS_INTERVAL_S = 0.2  # a terminal line rewritten five times a second reads as smooth, costs nothing
LOG_PROGRESS_INTERVAL_S = 5.0  # not a terminal (a CI log): one line every few seconds


def print_result(args: argparse.Namespace, payload: Any, text: str) -> None:
    """The command's result on stdout: ``payload`` as JSON with ``--json``, else ``text``."""
    if args.json:
        print(json.dumps(payload, indent=2, default=str, ensure_ascii=False))
    else:
        print(text)


def parse_date(option: str, value: str) -> datetime:
    """An ISO 8601 date or time from the command line; without an offset it is UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise RunbookDeskError(f"{option} {value}: not an ISO 8601 date") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class StderrProgress:
    """A :class:`core.progress.Progress` that prints how far long work is on stderr.

    On a terminal it rewrites one line in place; elsewhere (a log file) it prints a line now and then.
    Reports are throttled here, so work may report per item. It never asks to cancel: Ctrl-C stops a
    command (``KeyboardInterrupt``).
    """

    def __init__(self, stream: TextIO, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._in_place = stream.isatty()
        self._interval_s = PROGRESS_INTERVAL_S if self._in_place else LOG_PROGRESS_INTERVAL_S
        self._last_shown: float | None = None
        self._last_line = ""
        self._width = 0

    def report(self, done: int, total: int | None = None, message: str = "") -> None:
        now = self._clock()
        finished = total is not None and done >= total
        if not finished and self._last_shown is not None and now - self._last_shown < self._interval_s:
            return
        if total:
            line = f"{min(done, total) * 100 // total:3d}% {message}".rstrip()
        else:
            line = message or f"{done:,}"
        if line == self._last_line:
            return
        self._last_shown, self._last_line = now, line
        if self._in_place:
            # Pad over the end of a longer previous line.
            self._stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    @property
    def cancelled(self) -> bool:
        return False

    def finish(self) -> None:
        """End the line being rewritten, so what follows starts on its own line."""
        if self._in_place and self._last_shown is not None:
            self._stream.write("\n")
            self._stream.flush()


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show progress on stderr even when it is not a terminal (never with --json)",
    )


@contextmanager
def progress_for(args: argparse.Namespace) -> Iterator[Progress]:
    """The progress reporter this command line asks for: stderr, or none."""
    if args.json or not (args.progress or sys.stderr.isatty()):
        yield NO_PROGRESS
        return
    reporter = StderrProgress(sys.stderr)
    try:
        yield reporter
    finally:
        reporter.finish()


def warn_if_not_app_workspace(workspace: Workspace, sessions: sessionmaker[TenantSession]) -> None:
    """One line on stderr when this command works on an empty workspace the desktop app did not open.

    The usual cause is a command run without ``--workspace`` after ``--demo`` (or the Settings choice) opened
    another folder in the app: without this line an import lands in a workspace the app never shows.
    """
    app_root = last_app_workspace()
    if app_root is None or app_root == workspace.root.resolve():
        return
    with sessions() as session:
        if count_tickets(session) or session.scalar(select(func.count()).select_from(Runbook)):
            return
    print(
        f"runbook-desk: warning: workspace {workspace.root} has no tickets and no runbooks; the desktop app "
        f"opened {app_root} (pass --workspace {app_root} to work on that one)",
        file=sys.stderr,
    )
