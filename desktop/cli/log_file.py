"""The CLI's log file (:mod:`core.logs`): where a command's bug is written down, secrets masked.

A command's own errors (:class:`~core.errors.RunbookDeskError`) are one line on stderr, as before. A bug is
one line too, naming the log file, and its traceback goes to the file only: the person at the terminal
gets something to quote, the file gets what a developer needs.
"""

from __future__ import annotations

import argparse
import logging
import sys

from connectors.secrets import REDACTOR, install_secret_redaction, redact_text
from core.logs import (
    FILE_ONLY,
    INTERNAL_ERROR,
    InstalledLog,
    install_log_file,
    platform_log_folder,
    workspace_log_folder,
)
from core.store.workspace import resolve_workspace_dir

log = logging.getLogger(__name__)

SUMMARY_LIMIT = 200  # characters of the error's first line shown on stderr


def install_cli_log(args: argparse.Namespace) -> InstalledLog:
    """The log file in the command's workspace (the platform's log folder for the self-test, whose
    workspace is a temporary one). Warnings still reach stderr when nothing else shows them."""
    install_secret_redaction()
    folder = (
        platform_log_folder()
        if getattr(args, "self_test", False)
        else workspace_log_folder(resolve_workspace_dir(getattr(args, "workspace", None)))
    )
    return install_log_file(folder, redactor=REDACTOR, console=True)


def report_internal_error(exc: Exception, installed: InstalledLog, command: str | None) -> None:
    """Write the traceback to the log file and one line naming it to stderr."""
    log.error("%s in `%s`", INTERNAL_ERROR, command or "runbook-desk", exc_info=exc, extra={FILE_ONLY: True})
    first_line = next(iter(str(exc).splitlines()), "")[:SUMMARY_LIMIT]
    summary = redact_text(f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__)
    print(f"runbook-desk: {INTERNAL_ERROR} ({summary}); details in {installed.path}", file=sys.stderr)
