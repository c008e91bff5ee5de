"""The wizard's "Sign in…" (issue 17): the browser sign-in runs on the GUI loop, fills the draft's token
secret, and can be cancelled; against the fake ServiceNow authorization server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from pytestqt.qtbot import QtBot

from connectors.oauth_consent.connector import CLIENT_ID_FIELD, CONSENT_AUTH_MODE, REDIRECT_PORT_FIELD
from connectors.oauth_consent.loopback import port_is_free
from connectors.oauth_consent.tokens import TOKENS_FIELD
from connectors.registry import connector_class
from core.store.workspace import Workspace
from desktop.background.tasks import TaskRunner
from desktop.context import AppContext
from desktop.dialogs.connector_wizard import ConnectorWizard
from desktop.dialogs.connector_wizard.consent import SIGN_IN_TEXT
from tests.connectors.fake_oauth_server import FakeAuthorizationServer, FakeBrowser
from tests.helpers.connector_ui import WAIT_MS, fill


@pytest.fixture
def runner(qtbot: QtBot) -> Iterator[TaskRunner]:
    task_runner = TaskRunner()
    yield task_runner
    task_runner.shutdown()


def _wizard(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner, instance: str, port: int
) -> ConnectorWizard:
    wizard = ConnectorWizard(AppContext(workspace, "default", runner))
    qtbot.addWidget(wizard)
    wizard.show()
    wizard.system_page.select("servicenow")
    wizard.set_spec(connector_class("servicenow").spec)
    wizard.where_page.url_edit.setText(instance)
    wizard.auth_page.set_auth_mode(CONSENT_AUTH_MODE)
    fill(wizard.auth_page.form, {CLIENT_ID_FIELD: "rd-client-7f3a", REDIRECT_PORT_FIELD: port})
    return wizard


def test_sign_in_fills_the_draft_and_the_page_stays_responsive(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    oauth = FakeAuthorizationServer("servicenow", client_secret=None)
    port = _free_port()
    with oauth.serving() as instance:
        wizard = _wizard(qtbot, workspace, runner, instance, port)
        panel = wizard.auth_page.consent_panel
        assert not panel.isHidden() and f"http://127.0.0.1:{port}/callback" in panel.status.text()
        browser = FakeBrowser()
        panel.open_browser = browser
        panel.button.click()
        qtbot.waitUntil(lambda: "Signed in" in panel.status.text(), timeout=WAIT_MS)
        browser.join()
    secrets = wizard.draft().secrets
    tokens = json.loads(secrets[TOKENS_FIELD])
    assert oauth.access_valid(tokens["access_token"]) and tokens["refresh_token"]
    assert panel.button.text() == SIGN_IN_TEXT
    assert wizard.auth_page.form is not None and not wizard.auth_page.form.missing(CONSENT_AUTH_MODE)
    assert oauth.pkce_verified == 1 and port_is_free(port)


def test_cancel_stops_waiting_and_frees_the_port(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    port = _free_port()
    wizard = _wizard(qtbot, workspace, runner, "https://acme.service-now.com", port)
    panel = wizard.auth_page.consent_panel
    panel.open_browser = FakeBrowser(act=False)
    panel.button.click()
    qtbot.waitUntil(lambda: not port_is_free(port), timeout=WAIT_MS)
    panel.button.click()  # now "Cancel sign-in"
    qtbot.waitUntil(lambda: "cancelled" in panel.status.text(), timeout=WAIT_MS)
    assert port_is_free(port) and panel.button.text() == SIGN_IN_TEXT
    assert TOKENS_FIELD not in wizard.draft().secrets


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
