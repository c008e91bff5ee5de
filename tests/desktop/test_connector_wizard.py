"""The connector wizard, driven like a user against the local fake ServiceNow and Jira: real SQLite, the
in-memory keychain, headless Qt."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import certifi
import httpx
import pytest
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtTest import QAbstractItemModelTester
from PySide6.QtWidgets import QLineEdit, QWizard
from sqlalchemy import select

from connectors.base import CheckProblem, ConnectorSettings
from connectors.secrets import SERVICE_NAME
from core.matching.embedding import SentenceTransformerEmbedder
from core.store.models import AuditEvent, ConnectorConfig
from core.store.workspace import Workspace
from core.workflow.review import load_review_queue
from desktop.background.tasks import TaskRunner
from desktop.context import AppContext
from desktop.dialogs.connector_wizard import (
    AUTH_PAGE,
    PREVIEW_COLUMNS,
    SCOPE_PAGE,
    WHEN_PAGE,
    WHERE_PAGE,
    ConnectorWizard,
)
from desktop.main_window import CONNECTORS_PAGE, MainWindow
from desktop.widgets.config_form import STORED_PLACEHOLDER
from desktop.widgets.table_models import RowTableModel
from tests.connectors.fake_jira import API_TOKEN, EMAIL
from tests.connectors.fake_servicenow import FakeServiceNow
from tests.helpers.connector_ui import (
    RECENT_TICKETS,
    WAIT_MS,
    click_finish,
    click_next,
    configs,
    database_bytes,
    drive_to_test,
    fill,
    jira,
    servicenow,
    servicenow_auth,
    tickets_of,
)
from tests.helpers.memory_keyring import MemoryKeyring


@pytest.fixture
def runner(qtbot) -> Iterator[TaskRunner]:
    task_runner = TaskRunner()
    yield task_runner
    task_runner.shutdown()


@pytest.fixture
def context(workspace: Workspace, runner: TaskRunner) -> AppContext:
    return AppContext(workspace, "default", runner)


def new_wizard(qtbot, context: AppContext, transport_factory) -> ConnectorWizard:  # type: ignore[no-untyped-def]
    context.transport_factory = transport_factory
    wizard = ConnectorWizard(context)
    qtbot.addWidget(wizard)
    wizard.show()
    return wizard


def nothing_saved(workspace: Workspace, ring: MemoryKeyring) -> None:
    assert configs(workspace) == []
    assert ring.entries == {}


# --- end to end -------------------------------------------------------------------------------------------


def test_servicenow_from_wizard_to_the_review_queue(
    qtbot,
    analysed_demo: Workspace,
    embedder: SentenceTransformerEmbedder,
    tmp_path: Path,
    memory_keyring: MemoryKeyring,
) -> None:
    fake = servicenow()
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(analysed_demo, "default", settings=settings, embedder_factory=lambda: embedder)
    qtbot.addWidget(window)
    window.show()
    page = window.connectors_page
    window.context.transport_factory = lambda _settings: fake.transport()
    window.show_page(CONNECTORS_PAGE)
    assert window.current_page() is page

    wizard = page.open_add_wizard()
    # A URL pasted from the browser: scheme missing, a UI path behind the host.
    drive_to_test(
        qtbot,
        wizard,
        "servicenow",
        "fake.service-now.com/now/nav/ui/classic/params/target/incident_list.do",
        auth=servicenow_auth(fake),
    )
    assert wizard.where_page.base_url() == "https://fake.service-now.com"
    assert wizard.test_page.result is not None and wizard.test_page.result.ok, wizard.test_page.result
    assert wizard.test_page.result_title.text() == "Connected"

    click_next(qtbot, wizard)
    assert wizard.currentId() == SCOPE_PAGE
    qtbot.waitUntil(lambda: wizard.scope_page.preview_ok, timeout=WAIT_MS)
    preview = wizard.scope_page.preview_model
    tester = QAbstractItemModelTester(preview, QAbstractItemModelTester.FailureReportingMode.Warning)
    assert preview.rowCount() == 10  # the first ten normalised records
    assert [c.header for c in preview.columns] == ["Number", "Title", "Description", "Severity", "Updated"]
    assert preview.index(0, 1).data().startswith("VPN drops every 10 minutes")
    assert preview.index(0, 3).data()  # the severity word the importer maps priorities to

    click_next(qtbot, wizard)
    assert wizard.currentId() == WHEN_PAGE
    assert wizard.when_page.name() == "ServiceNow (fake)"
    assert wizard.when_page.frequency_spin.value() == 5
    assert "password: entered" in wizard.when_page.summary.text()
    wizard.when_page.name_edit.setText("ServiceNow prod")
    click_finish(qtbot, wizard)

    qtbot.waitUntil(lambda: page.wizard is None, timeout=WAIT_MS)
    [row] = configs(analysed_demo)
    assert (row.name, row.connector_type, row.base_url) == ("ServiceNow prod", "servicenow", fake.base_url)
    assert row.sync_frequency_minutes == 5 and row.secret_fields == ("password",)
    assert memory_keyring.entries == {(SERVICE_NAME, f"{row.keychain_key}/password"): fake.password}

    # The first sync runs by itself; its new tickets are analysed and reach the review queue.
    synced_ids = {t.external_id for t in fake.tickets.values()}

    def in_queue() -> int:
        with analysed_demo.session_factory("default")() as session:
            return sum(1 for r in load_review_queue(session) if r.external_id in synced_ids)

    qtbot.waitUntil(lambda: in_queue() == RECENT_TICKETS, timeout=120_000)
    assert tickets_of(analysed_demo, "servicenow") == RECENT_TICKETS  # the 200-day-old one stayed out
    qtbot.waitUntil(lambda: not window.runner.active_tasks(), timeout=WAIT_MS)
    [status] = page.model.rows
    assert status.overview.items_synced == RECENT_TICKETS and status.status == "active"
    assert fake.unexpected == []

    with analysed_demo.session_factory("default")() as session:
        stored = session.scalar(select(ConnectorConfig))
        assert stored is not None
        assert fake.password not in json.dumps(stored.config_json)
        assert session.scalar(select(AuditEvent.actor).where(AuditEvent.action == "connector.create"))
    assert fake.password.encode() not in database_bytes(analysed_demo)
    del tester
    window.close()


def test_jira_cloud_is_saved_and_synced(
    qtbot, workspace: Workspace, context: AppContext, memory_keyring: MemoryKeyring
) -> None:
    from desktop.background.sync_jobs import SyncDispatcher
    from desktop.pages.connectors import ConnectorsPage

    fake = jira()
    context.transport_factory = lambda _settings: fake.transport()
    page = ConnectorsPage(context, SyncDispatcher(context))
    qtbot.addWidget(page)
    page.show()
    wizard = page.open_add_wizard()
    drive_to_test(
        qtbot,
        wizard,
        "jira",
        "https://fake.atlassian.net/jira/software/projects/OPS/boards/1",
        where={"deployment": "cloud"},
        auth_mode="api_token",
        auth={"email": EMAIL, "api_token": API_TOKEN},
    )
    assert wizard.where_page.base_url() == "https://fake.atlassian.net"
    assert wizard.test_page.result is not None and wizard.test_page.result.ok, wizard.test_page.result
    # Fields of the other auth mode are hidden, not submitted.
    pat_row = wizard.auth_page.form.editors["personal_access_token"].container  # type: ignore[union-attr]
    assert not pat_row.isVisibleTo(wizard)
    click_next(qtbot, wizard)
    fill(wizard.scope_page.form, {"projects": "OPS"})
    qtbot.waitUntil(lambda: wizard.scope_page.preview_ok, timeout=WAIT_MS)
    assert wizard.scope_page.preview_model.rowCount() == 10
    assert wizard.scope_page.preview_model.rows[0].external_id.startswith("OPS-")
    click_next(qtbot, wizard)
    wizard.when_page.frequency_spin.setValue(15)
    click_finish(qtbot, wizard)

    qtbot.waitUntil(lambda: tickets_of(workspace, "jira") == RECENT_TICKETS, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not page.scheduler.running and not page.is_loading(), timeout=WAIT_MS)
    [row] = configs(workspace)
    assert row.options["projects"] == "OPS" and row.options["email"] == EMAIL
    assert row.auth_mode == "api_token" and row.sync_frequency_minutes == 15
    assert set(memory_keyring.entries.values()) == {API_TOKEN}
    assert API_TOKEN.encode() not in database_bytes(workspace)
    assert page.model.rows[0].overview.items_synced == RECENT_TICKETS
    assert fake.unexpected == []
    page.stop()


# --- what goes wrong --------------------------------------------------------------------------------------


def test_wrong_password_shows_the_401_diagnosis_and_saves_nothing(
    qtbot, workspace: Workspace, context: AppContext, memory_keyring: MemoryKeyring
) -> None:
    fake = servicenow()
    wizard = new_wizard(qtbot, context, lambda _settings: fake.transport())
    drive_to_test(
        qtbot, wizard, "servicenow", fake.base_url, auth=servicenow_auth(fake, password="not-the-password")
    )
    result = wizard.test_page.result
    assert result is not None and result.problem is CheckProblem.AUTHENTICATION
    assert wizard.test_page.result_title.text() == "Wrong credentials (HTTP 401)"
    assert "401" in wizard.test_page.result_message.text()
    assert wizard.test_page.hint_label.text().startswith("What to do:")
    assert "not-the-password" not in wizard.test_page.result_message.text()
    assert not wizard.button(QWizard.WizardButton.NextButton).isEnabled()
    assert not wizard.test_page.ca_button.isVisible()
    # The test is on the audit trail like the CLI's `connectors check`: who, which draft, the outcome.
    qtbot.waitUntil(lambda: len(check_audits(workspace)) == 1, timeout=WAIT_MS)
    [audit] = check_audits(workspace)
    assert audit.entity_id is None  # a draft, not saved yet
    assert "authentication" in json.dumps(audit.after) and "not-the-password" not in json.dumps(audit.after)
    wizard.reject()
    nothing_saved(workspace, memory_keyring)


def check_audits(workspace: Workspace) -> list[AuditEvent]:
    with workspace.session_factory("default")() as session:
        query = select(AuditEvent).where(AuditEvent.action == "connector.check")
        return list(session.scalars(query))


class UntrustedCertificate(httpx.AsyncBaseTransport):
    """What a server signed by a private CA looks like to a client that does not trust that CA."""

    def __init__(self) -> None:
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        raise httpx.ConnectError(
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in "
            "certificate chain (_ssl.c:1006)",
            request=request,
        )


def test_tls_failure_offers_a_ca_bundle_and_never_to_skip_verification(
    qtbot, workspace: Workspace, context: AppContext, memory_keyring: MemoryKeyring
) -> None:
    fake = servicenow()
    untrusted = UntrustedCertificate()

    def transport(settings: ConnectorSettings) -> httpx.AsyncBaseTransport:
        # Trusted once the analyst picks the CA bundle.
        return fake.transport() if settings.ca_bundle else untrusted

    wizard = new_wizard(qtbot, context, transport)
    drive_to_test(qtbot, wizard, "servicenow", fake.base_url, auth=servicenow_auth(fake))
    result = wizard.test_page.result
    assert result is not None and result.problem is CheckProblem.TLS
    assert wizard.test_page.result_title.text() == "The server's TLS certificate is not trusted"
    assert "CA bundle" in wizard.test_page.hint_label.text()
    assert wizard.test_page.ca_button.isVisible()
    texts = " ".join(b.text().lower() for b in wizard.findChildren(type(wizard.test_page.ca_button)))
    assert "ignore" not in texts and "disable" not in texts and "skip" not in texts

    wizard.test_page.use_ca_bundle(certifi.where())
    qtbot.waitUntil(lambda: wizard.test_page.result is not None, timeout=WAIT_MS)
    assert wizard.test_page.result is not None and wizard.test_page.result.ok
    assert wizard.where_page.ca_bundle() == certifi.where()
    wizard.reject()
    nothing_saved(workspace, memory_keyring)


class Hanging(httpx.AsyncBaseTransport):
    """A server that accepts the connection and never answers; it records the requests that were cancelled."""

    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.started += 1
        try:
            await asyncio.Event().wait()  # nothing ever sets it
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        raise AssertionError("unreachable")


def go_to_test_page(qtbot, wizard: ConnectorWizard, fake: FakeServiceNow) -> None:  # type: ignore[no-untyped-def]
    """Choose ServiceNow, enter the address and credentials, and press Next into the connection test."""
    wizard.system_page.select("servicenow")
    click_next(qtbot, wizard)
    wizard.where_page.url_edit.setText(fake.base_url)
    click_next(qtbot, wizard)
    fill(wizard.auth_page.form, servicenow_auth(fake))
    click_next(qtbot, wizard)


def test_cancel_stops_a_hanging_test_and_saves_nothing(
    qtbot, workspace: Workspace, context: AppContext, memory_keyring: MemoryKeyring
) -> None:
    hanging = Hanging()
    wizard = new_wizard(qtbot, context, lambda _settings: hanging)
    go_to_test_page(qtbot, wizard, servicenow())
    qtbot.waitUntil(lambda: hanging.started == 1, timeout=WAIT_MS)
    running = wizard.test_page._task
    assert running is not None and wizard.test_page.is_running()
    assert wizard.test_page.spinner.isVisible() and wizard.test_page.cancel_button.isEnabled()
    wizard.test_page.cancel_button.click()
    assert "cancelled" in wizard.test_page.status_label.text()
    qtbot.waitUntil(running.done, timeout=WAIT_MS)
    assert running.cancelled() and hanging.cancelled == 1  # the request itself was interrupted
    assert wizard.test_page.result is None
    assert not wizard.button(QWizard.WizardButton.NextButton).isEnabled()

    wizard.test_page.start_check()  # test again, then cancel the whole wizard while it hangs
    qtbot.waitUntil(lambda: hanging.started == 2, timeout=WAIT_MS)
    running = wizard.test_page._task
    assert running is not None
    wizard.button(QWizard.WizardButton.CancelButton).click()
    qtbot.waitUntil(running.done, timeout=WAIT_MS)
    assert running.cancelled() and hanging.cancelled == 2
    assert wizard.result() == QWizard.DialogCode.Rejected
    assert context.runner.active_tasks() == ()  # the test never was a worker job
    nothing_saved(workspace, memory_keyring)


class Gated(httpx.AsyncBaseTransport):
    """A slow server: each request waits until the test opens the gate, then the fake answers it."""

    def __init__(self, fake: FakeServiceNow) -> None:
        self.answer = fake.transport()
        self.gate = asyncio.Event()
        self.waiting = 0
        self.threads: set[str] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.threads.add(threading.current_thread().name)
        self.waiting += 1
        await self.gate.wait()
        self.waiting -= 1
        return await self.answer.handle_async_request(request)


def test_the_window_stays_responsive_while_the_test_awaits_a_slow_server(
    qtbot, workspace: Workspace, context: AppContext, memory_keyring: MemoryKeyring
) -> None:
    fake = servicenow()
    slow = Gated(fake)
    wizard = new_wizard(qtbot, context, lambda _settings: slow)
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(10)
    go_to_test_page(qtbot, wizard, fake)
    qtbot.waitUntil(lambda: slow.waiting == 1, timeout=WAIT_MS)
    ticks.clear()
    qtbot.waitUntil(lambda: len(ticks) >= 20, timeout=WAIT_MS)  # Qt's timers fire while the check awaits
    assert wizard.test_page.is_running() and wizard.test_page.result is None
    # On the GUI thread's loop, not a worker: nothing writes the store while a test awaits the network.
    assert slow.threads == {threading.main_thread().name}
    assert context.runner.active_tasks() == ()

    slow.gate.set()
    qtbot.waitUntil(lambda: wizard.test_page.result is not None, timeout=WAIT_MS)
    timer.stop()
    assert wizard.test_page.result is not None and wizard.test_page.result.ok, wizard.test_page.result
    assert wizard.test_page.result_title.text() == "Connected"
    click_next(qtbot, wizard)  # the preview awaits the same open gate
    qtbot.waitUntil(lambda: wizard.scope_page.preview_ok, timeout=WAIT_MS)
    assert wizard.scope_page.preview_model.rowCount() == 10
    wizard.reject()
    nothing_saved(workspace, memory_keyring)


class Broken(httpx.AsyncBaseTransport):
    """Not a server problem but a bug: something in the request path raises what no connector diagnoses."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise RuntimeError("a bug below the connector")


def test_a_bug_in_the_test_is_shown_and_logged_not_swallowed(
    qtbot, workspace: Workspace, context: AppContext, memory_keyring: MemoryKeyring, caplog
) -> None:
    wizard = new_wizard(qtbot, context, lambda _settings: Broken())
    with caplog.at_level(logging.ERROR, logger="desktop.dialogs.connector_wizard.probes"):
        go_to_test_page(qtbot, wizard, servicenow())
        qtbot.waitUntil(lambda: wizard.test_page.result is not None, timeout=WAIT_MS)
    result = wizard.test_page.result
    assert result is not None and result.problem is CheckProblem.OTHER
    assert "the test itself failed: a bug below the connector" in wizard.test_page.result_message.text()
    assert not wizard.test_page.is_running()
    [record] = [r for r in caplog.records if r.name == "desktop.dialogs.connector_wizard.probes"]
    assert record.getMessage().startswith("Testing ") and record.exc_info is not None
    wizard.reject()
    nothing_saved(workspace, memory_keyring)


def test_url_typos_are_caught_before_any_request(
    qtbot, workspace: Workspace, context: AppContext, memory_keyring: MemoryKeyring
) -> None:
    fake = servicenow()
    wizard = new_wizard(qtbot, context, lambda _settings: fake.transport())
    wizard.system_page.select("servicenow")
    click_next(qtbot, wizard)
    wizard.where_page.url_edit.setText("htps://acme.servicenow.com")
    wizard.button(QWizard.WizardButton.NextButton).click()
    assert wizard.currentId() == WHERE_PAGE
    assert "typo" in wizard.where_page.error_label.text()
    assert wizard.where_page.suggestion_button.text() == "Use https://acme.service-now.com"
    wizard.where_page.suggestion_button.click()
    assert wizard.where_page.base_url() == "https://acme.service-now.com"
    click_next(qtbot, wizard)
    assert wizard.currentId() == AUTH_PAGE
    # The password is masked, and a required field left empty is named.
    password = wizard.auth_page.form.editors["password"].input  # type: ignore[union-attr]
    assert isinstance(password, QLineEdit) and password.echoMode() == QLineEdit.EchoMode.Password
    wizard.button(QWizard.WizardButton.NextButton).click()
    assert wizard.currentId() == AUTH_PAGE
    assert "User name" in wizard.auth_page.error_label.text()
    assert fake.requests == []
    wizard.reject()
    nothing_saved(workspace, memory_keyring)


def test_a_duplicate_name_is_refused_on_the_last_page(
    qtbot, workspace: Workspace, context: AppContext, memory_keyring: MemoryKeyring
) -> None:
    from connectors.configs import create_config

    fake = servicenow()
    settings = fake.settings()
    create_config(
        context.sessions,
        connector_type="servicenow",
        name="prod",
        base_url=fake.base_url,
        options=settings.options,
        secrets=settings.secrets,
    )
    entries_before = dict(memory_keyring.entries)
    wizard = new_wizard(qtbot, context, lambda _settings: fake.transport())
    drive_to_test(qtbot, wizard, "servicenow", fake.base_url, auth=servicenow_auth(fake))
    click_next(qtbot, wizard)
    qtbot.waitUntil(lambda: wizard.scope_page.preview_ok, timeout=WAIT_MS)
    click_next(qtbot, wizard)
    wizard.when_page.name_edit.setText("prod")
    click_finish(qtbot, wizard)
    qtbot.waitUntil(lambda: wizard.when_page.error_label.isVisibleTo(wizard), timeout=WAIT_MS)
    assert "exists already" in wizard.when_page.error_label.text()
    assert wizard.isVisible() and len(configs(workspace)) == 1
    assert memory_keyring.entries == entries_before
    wizard.reject()


def test_edit_mode_shows_secrets_as_stored_and_keeps_them_unless_typed(
    qtbot, workspace: Workspace, context: AppContext, memory_keyring: MemoryKeyring
) -> None:
    from connectors.configs import create_config

    fake = servicenow()
    settings = fake.settings()
    row = create_config(
        context.sessions,
        connector_type="servicenow",
        name="prod",
        base_url=fake.base_url,
        options=settings.options,
        secrets=settings.secrets,
    )
    context.transport_factory = lambda _s: fake.transport()
    wizard = ConnectorWizard(context, existing=row)
    qtbot.addWidget(wizard)
    wizard.show()
    assert wizard.currentId() == WHERE_PAGE
    assert wizard.where_page.base_url() == fake.base_url
    click_next(qtbot, wizard)
    password = wizard.auth_page.form.editors["password"].input  # type: ignore[union-attr]
    assert isinstance(password, QLineEdit)
    assert password.text() == "" and password.placeholderText() == STORED_PLACEHOLDER
    assert wizard.auth_page.form.editors["username"].value() == fake.username  # type: ignore[union-attr]
    click_next(qtbot, wizard)  # the stored password is read from the keychain for the test
    qtbot.waitUntil(lambda: wizard.test_page.result is not None, timeout=WAIT_MS)
    assert wizard.test_page.result is not None and wizard.test_page.result.ok
    click_next(qtbot, wizard)
    qtbot.waitUntil(lambda: wizard.scope_page.preview_ok, timeout=WAIT_MS)
    click_next(qtbot, wizard)
    assert not wizard.when_page.start_edit.isEnabled()
    assert "password: stored" in wizard.when_page.summary.text()
    wizard.when_page.frequency_spin.setValue(30)
    click_finish(qtbot, wizard)
    qtbot.waitUntil(lambda: wizard.result() == QWizard.DialogCode.Accepted, timeout=WAIT_MS)
    [after] = configs(workspace)
    assert after.sync_frequency_minutes == 30 and after.keychain_key == row.keychain_key
    assert memory_keyring.entries == {(SERVICE_NAME, f"{row.keychain_key}/password"): fake.password}


def test_preview_model_passes_the_model_tester(qtbot, gui_loop: asyncio.AbstractEventLoop) -> None:
    fake = servicenow()
    from connectors.registry import connector_class

    async def first_records() -> list:  # type: ignore[type-arg]
        connector = connector_class("servicenow").create(fake.settings(), transport=fake.transport())
        try:
            return await connector.preview(10)
        finally:
            await connector.close()

    reading = gui_loop.create_task(first_records())
    qtbot.waitUntil(reading.done, timeout=WAIT_MS)
    tickets = reading.result()
    model = RowTableModel(PREVIEW_COLUMNS)
    tester = QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Warning)
    model.set_rows(tickets)
    assert model.rowCount() == 10 and model.columnCount() == len(PREVIEW_COLUMNS)
    model.set_rows(())
    del tester
