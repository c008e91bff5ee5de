"""The auth page's "Sign in…" for the browser sign-in (issue 17): the consent runs as a task on the GUI loop.

Like the connection test (:mod:`.probes`), the sign-in only talks to the network (and a loopback listener
in its own thread), so it is a task on the running qasync loop: the window stays responsive while the
analyst is in the browser, the button turns into "Cancel sign-in" (``task.cancel()`` closes the listener),
and the result is shown on the GUI thread where it is awaited. The tokens go into the form's hidden
``oauth_tokens`` secret, so Finish stores them in the keychain with the other secrets and nothing is stored
before.
"""

from __future__ import annotations

import asyncio
import webbrowser
from datetime import datetime
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget

from connectors.base import ConnectorSettings
from connectors.errors import ConfigurationError, ConnectorError
from connectors.oauth_consent.connector import CONSENT_AUTH_MODE, client_of, redirect_port_of
from connectors.oauth_consent.flow import BrowserOpener, sign_in
from connectors.oauth_consent.loopback import DEFAULT_PATH, LOOPBACK_HOST
from connectors.oauth_consent.tokens import TOKENS_FIELD
from connectors.registry import connector_class
from connectors.secrets import redact_text
from desktop.background.connector_jobs import ConnectorDraft, draft_settings
from desktop.dialogs.connector_wizard.probes import GuiTask, start_on_gui_loop
from desktop.widgets.config_form import FieldEditor

if TYPE_CHECKING:
    from desktop.dialogs.connector_wizard.form_pages import AuthPage

SIGN_IN_TEXT = "Sign in…"
CANCEL_TEXT = "Cancel sign-in"


class ConsentPanel(QWidget):
    """The button, the redirect URL to register, and what happened."""

    def __init__(self, page: AuthPage) -> None:
        super().__init__(page)
        self._page = page
        self.open_browser: BrowserOpener = webbrowser.open  # tests put a fake browser here
        self.timeout = 300.0
        self.task: GuiTask | None = None
        self._watched_form: QWidget | None = None
        self.button = QPushButton(SIGN_IN_TEXT, self)
        self.button.setObjectName("consentSignIn")
        self.status = QLabel(self)
        self.status.setObjectName("consentStatus")
        self.status.setWordWrap(True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.button)
        layout.addWidget(self.status, 1)
        self.button.clicked.connect(self._clicked)
        self.hide()

    def apply_auth_mode(self, auth_mode: str) -> None:
        shown = auth_mode == CONSENT_AUTH_MODE
        self.setVisible(shown)
        editor = self._tokens_editor()
        if editor is not None and isinstance(editor.input, QLineEdit):
            editor.input.setReadOnly(True)  # filled by signing in, never typed
        form = self._page.form
        if form is not None and form is not self._watched_form:
            self._watched_form = form
            form.changed.connect(self._refresh_note)
        self.status.setText(self._redirect_note() if shown else "")

    def _refresh_note(self) -> None:
        """The redirect URL to register follows the port field until a sign-in says more."""
        if (
            self.isVisibleTo(self._page)
            and not self.is_running()
            and self.status.text().startswith("Register")
        ):
            self.status.setText(self._redirect_note())

    def cancel(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def is_running(self) -> bool:
        return self.task is not None and not self.task.done()

    def _tokens_editor(self) -> FieldEditor | None:
        form = self._page.form
        return None if form is None else form.editors.get(TOKENS_FIELD)

    def _redirect_note(self) -> str:
        form = self._page.form
        editor = form.editors.get("redirect_port") if form is not None else None
        port = editor.value() if editor is not None else None
        where = f"http://{LOOPBACK_HOST}:{port}{DEFAULT_PATH}" if port else "a random 127.0.0.1 port"
        return f"Register {where} as the redirect URL with the provider, then sign in."

    def _clicked(self) -> None:
        if self.is_running():
            self.cancel()
            return
        try:
            draft = self._page.wizard_draft()
        except ConnectorError as exc:
            self.status.setText(redact_text(str(exc)))
            return
        self.button.setText(CANCEL_TEXT)
        self.status.setText("Waiting for the browser… (log in and allow access there)")
        self.task = start_on_gui_loop(self._run(draft), "Signing in", self._failed)

    async def _run(self, draft: ConnectorDraft) -> None:
        try:
            settings: ConnectorSettings = await asyncio.get_running_loop().run_in_executor(
                None, draft_settings, draft
            )
            connector = connector_class(draft.connector_type)
            if not isinstance(connector, type) or not hasattr(connector, "consent_provider"):
                raise ConfigurationError(settings.name, "this connector has no browser sign-in")
            provider = connector.consent_provider(settings)
            tokens = await sign_in(
                settings.name,
                provider,
                client_of(settings),
                port=redirect_port_of(settings),
                open_browser=self.open_browser,
                timeout=self.timeout,
                verify=settings.ca_bundle or True,
                site_url=settings.base_url,
            )
        except ConnectorError as exc:
            self.status.setText(f"Not signed in: {redact_text(str(exc))}")
            return
        except asyncio.CancelledError:
            self.status.setText("Sign-in cancelled.")
            raise
        finally:
            self.button.setText(SIGN_IN_TEXT)
        editor = self._tokens_editor()
        if editor is not None:
            editor.set_value(tokens.to_json())
        until = datetime.fromtimestamp(tokens.expires_at).strftime("%H:%M")
        renew = (
            "renewed automatically" if tokens.refresh_token else "no refresh token: sign in again after that"
        )
        self.status.setText(
            f"Signed in (access until {until}, {renew}). Finish stores it in the OS keychain."
        )
        self._page.completeChanged.emit()

    def _failed(self, _task: GuiTask, exc: BaseException) -> None:
        self.button.setText(SIGN_IN_TEXT)
        self.status.setText(f"Sign-in failed: {redact_text(str(exc))}")
