"""The connection test: the connector's own ``check`` (reachability, TLS, sign-in, read permission) awaited on
the GUI loop (:mod:`.probes`), its problem named exactly, and the way out of the usual one (an organisation's
own CA)."""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWizardPage

from connectors.base import CheckProblem, CheckResult, WriteAccess, WriteCheck, diagnose
from connectors.configs import record_check
from connectors.errors import ConfigurationError
from connectors.secrets import redact_text
from desktop.background.connector_jobs import ConnectorDraft
from desktop.dialogs.connector_wizard.feedback import busy_bar, describe_result
from desktop.dialogs.connector_wizard.probes import GuiTask, check_draft, start_on_gui_loop

if TYPE_CHECKING:  # the pages and the wizard refer to each other; only the wizard module imports the pages
    from desktop.dialogs.connector_wizard.wizard import ConnectorWizard


def write_text(write: WriteCheck | None) -> tuple[str, str]:
    """What the test found about writing (a ticketing connector creates incidents and posts runbook notes),
    and its colour; nothing for a connector that never writes."""
    if write is None or write.access is WriteAccess.NOT_SUPPORTED:
        return "", ""
    if write.access is WriteAccess.ALLOWED:
        return "Can create incidents and post notes.", "#1a7f37"
    detail = f": {redact_text(write.message)}" if write.message else ""
    if write.access is WriteAccess.DENIED:
        return f"Read only{detail}", "#9a6700"
    return f"Write access: not known until the first write{detail}", ""


class ConnectionTestPage(QWizardPage):
    def __init__(self, wizard: ConnectorWizard) -> None:
        super().__init__(wizard)
        self._wizard = wizard
        self.setTitle("Test the connection")
        self.setSubTitle("Reachability, TLS, sign-in and read permission; a problem is named exactly.")
        self.result: CheckResult | None = None
        self._task: GuiTask | None = None
        self.status_label = QLabel(self)
        self.status_label.setObjectName("checkStatus")
        self.status_label.setWordWrap(True)
        self.spinner = busy_bar(self)
        self.cancel_button = QPushButton("Cancel test", self)
        self.cancel_button.setObjectName("cancelCheckButton")
        self.cancel_button.clicked.connect(self.cancel_check)
        self.retry_button = QPushButton("Test again", self)
        self.retry_button.setObjectName("retryCheckButton")
        self.retry_button.clicked.connect(self.start_check)
        self.result_title = QLabel(self)
        self.result_title.setObjectName("checkTitle")
        title_font = self.result_title.font()
        title_font.setBold(True)
        title_font.setPointSizeF(title_font.pointSizeF() * 1.15)
        self.result_title.setFont(title_font)
        self.result_message = QLabel(self)
        self.result_message.setObjectName("checkMessage")
        self.result_message.setWordWrap(True)
        self.result_message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.write_label = QLabel(self)
        self.write_label.setObjectName("checkWrite")
        self.write_label.setWordWrap(True)
        self.write_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hint_label = QLabel(self)
        self.hint_label.setObjectName("checkHint")
        self.hint_label.setWordWrap(True)
        self.ca_button = QPushButton("Choose the CA bundle…", self)
        self.ca_button.setObjectName("chooseCaButton")
        self.ca_button.setToolTip("Certificate checks stay on: trust your organisation's CA instead")
        self.ca_button.clicked.connect(self.choose_ca_bundle)
        self.ca_button.hide()
        buttons = QHBoxLayout()
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.retry_button)
        buttons.addWidget(self.ca_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status_label)
        layout.addWidget(self.spinner)
        layout.addSpacing(8)
        layout.addWidget(self.result_title)
        layout.addWidget(self.result_message)
        layout.addWidget(self.write_label)
        layout.addWidget(self.hint_label)
        layout.addLayout(buttons)
        layout.addStretch(1)

    def initializePage(self) -> None:
        self.start_check()

    def cleanupPage(self) -> None:  # Back: a running test is of settings about to change
        self.cancel_check()

    def is_running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start_check(self) -> None:
        self._stop_task()
        self._show(None)
        try:
            draft = self._wizard.draft()
        except ConfigurationError as exc:
            self._show(diagnose(exc))
            return
        self.status_label.setText(f"Connecting to {draft.base_url}…")
        self.spinner.show()
        self.cancel_button.setEnabled(True)
        self.retry_button.setEnabled(False)
        self._task = start_on_gui_loop(self._check(draft), f"Testing {draft.name}", self._check_failed)

    async def _check(self, draft: ConnectorDraft) -> None:
        try:
            result = await check_draft(draft, self._wizard.context.transport_factory)
        except asyncio.CancelledError:
            self._audit(draft, None)  # a cancelled test is on the trail too
            raise
        self._task = None
        self._show(result)
        await self._audit(draft, result)

    def _audit(self, draft: ConnectorDraft, result: CheckResult | None) -> asyncio.Future[None]:
        """Record the test as the CLI's ``connectors check`` does; a store write, so on a worker thread."""
        context = self._wizard.context
        record = functools.partial(
            record_check,
            context.sessions,
            connector_type=draft.connector_type,
            name=draft.name,
            base_url=draft.base_url,
            result=result,
            config_id=draft.existing_id,
            actor=context.reviewer(),
        )
        return asyncio.get_running_loop().run_in_executor(None, record)

    def cancel_check(self) -> None:
        if self.is_running():
            self._stop_task()
            self._show(None)
            self.status_label.setText("Test cancelled. Test again, or go back and change the settings.")

    def _stop_task(self) -> None:
        if self._task is not None:
            self._task.cancel()  # the connector's client is closed as the cancellation unwinds
        self._task = None

    def _check_failed(self, task: GuiTask, exc: BaseException) -> None:
        if task is not self._task:  # replaced by a newer test meanwhile
            return
        self._task = None
        self._show(CheckResult(CheckProblem.OTHER, f"the test itself failed: {redact_text(str(exc))}"))

    def _show(self, result: CheckResult | None) -> None:
        self.result = result
        self.spinner.hide()
        self.cancel_button.setEnabled(False)
        self.retry_button.setEnabled(True)
        self.ca_button.setVisible(result is not None and result.problem is CheckProblem.TLS)
        if result is None:
            self.status_label.clear()
            self.result_title.clear()
            self.result_message.clear()
            self.hint_label.clear()
            self.write_label.clear()
        else:
            title, message, hint = describe_result(result)
            self.status_label.setText("Connected." if result.ok else "The test found a problem:")
            self.result_title.setText(title)
            self.result_title.setStyleSheet("color: #1a7f37;" if result.ok else "color: #b3261e;")
            self.result_message.setText(message)
            self.hint_label.setText(f"What to do: {hint}" if hint and not result.ok else "")
            text, colour = write_text(result.write) if result.ok else ("", "")
            self.write_label.setText(text)
            self.write_label.setStyleSheet(f"color: {colour};" if colour else "")
        self.completeChanged.emit()

    def choose_ca_bundle(self) -> None:
        file_name, _ = QFileDialog.getOpenFileName(
            self, "CA bundle that signed the server's certificate", "", "PEM (*.pem *.crt *.cer);;All (*)"
        )
        if file_name:
            self.use_ca_bundle(file_name)

    def use_ca_bundle(self, path: str) -> None:
        """Trust this CA file for the connection (the "where" page's CA field) and test again."""
        self._wizard.where_page.set_ca_bundle(path)
        self.start_check()

    def isComplete(self) -> bool:
        return self.result is not None and self.result.ok
