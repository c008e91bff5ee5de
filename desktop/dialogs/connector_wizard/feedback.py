"""How the wizard's pages show a problem and a wait: a title per diagnosed problem, error text, a spinner."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QProgressBar, QWidget

from connectors.base import CheckProblem, CheckResult
from connectors.secrets import redact_text

PROBLEM_TITLES: dict[CheckProblem, str] = {
    CheckProblem.OK: "Connected",
    CheckProblem.CONFIGURATION: "A setting is wrong",
    CheckProblem.CONNECTION: "Cannot reach the server",
    CheckProblem.TLS: "The server's TLS certificate is not trusted",
    CheckProblem.TIMEOUT: "The server did not answer in time",
    CheckProblem.AUTHENTICATION: "Wrong credentials (HTTP 401)",
    CheckProblem.PERMISSION: "Signed in, but not allowed to read (HTTP 403)",
    CheckProblem.NOT_FOUND: "Wrong URL or API version (HTTP 404)",
    CheckProblem.GONE: "This API was removed (HTTP 410)",
    CheckProblem.RATE_LIMITED: "Rate limited (HTTP 429)",
    CheckProblem.SERVER: "The server failed (HTTP 5xx)",
    CheckProblem.BAD_RESPONSE: "The server's answer is not this API's",
    CheckProblem.OTHER: "The server refused the request",
}


def describe_result(result: CheckResult) -> tuple[str, str, str]:
    """Title, message and hint of a check result, with any secret masked."""
    return PROBLEM_TITLES[result.problem], redact_text(result.message), redact_text(result.hint)


def error_label(parent: QWidget, object_name: str) -> QLabel:
    label = QLabel(parent)
    label.setObjectName(object_name)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setStyleSheet("color: #b3261e;")
    label.hide()
    return label


def busy_bar(parent: QWidget) -> QProgressBar:
    bar = QProgressBar(parent)
    bar.setRange(0, 0)  # a spinner: we cannot know how long a server takes
    bar.setTextVisible(False)
    bar.setMaximumHeight(10)
    bar.hide()
    return bar
