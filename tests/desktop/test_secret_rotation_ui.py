"""Issue 17, credential rotation in the desktop: the Connectors page shows each secret's age and when a
rotation is due, "Rotate secret…" tests the new value off the GUI thread and replaces the old one only if it
works, and Settings holds the tenant's rotation period. Real SQLite, the in-memory keychain, the local fake
ServiceNow, headless Qt."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from PySide6.QtCore import QSettings, Qt
from sqlalchemy import select, update

from connectors.base import ConnectorSettings
from connectors.configs import ConfigRow, create_config
from connectors.rotation import RotationResult
from connectors.secrets import SERVICE_NAME, entry_name
from core.settings import load_settings
from core.store.connector_secrets import SecretSettings
from core.store.models import AuditEvent, ConnectorSecret, utcnow
from core.store.workspace import Workspace
from desktop.background.sync_jobs import SyncDispatcher
from desktop.background.tasks import TaskRunner
from desktop.context import AppContext
from desktop.dialogs.settings import SettingsDialog
from desktop.pages.connectors import ConnectorsPage
from desktop.widgets.notifications import Level
from tests.connectors.fake_servicenow import FakeServiceNow
from tests.helpers.connector_ui import WAIT_MS, servicenow
from tests.helpers.memory_keyring import MemoryKeyring

NEW_PASSWORD = "sn-rotated-Qm4$x"


@pytest.fixture
def runner(qtbot) -> Iterator[TaskRunner]:  # type: ignore[no-untyped-def]
    task_runner = TaskRunner()
    yield task_runner
    task_runner.shutdown()


@pytest.fixture
def context(workspace: Workspace, runner: TaskRunner) -> AppContext:
    return AppContext(workspace, "default", runner, reviewer_name="dana")


@pytest.fixture
def fake() -> FakeServiceNow:
    return servicenow()


def add_config(context: AppContext, fake: FakeServiceNow) -> ConfigRow:
    settings = fake.settings()
    return create_config(
        context.sessions,
        connector_type="servicenow",
        name="prod",
        base_url=fake.base_url,
        options=settings.options,
        secrets=settings.secrets,
    )


def make_page(qtbot, context: AppContext, fake: FakeServiceNow, threads: list[str]) -> ConnectorsPage:  # type: ignore[no-untyped-def]
    """The page with every connector request going to the fake, noting the thread each was sent from."""

    def handler(request: httpx.Request) -> httpx.Response:
        threads.append(threading.current_thread().name)
        return fake.handle(request)

    def transport(_settings: ConnectorSettings) -> httpx.AsyncBaseTransport:
        return httpx.MockTransport(handler)

    context.transport_factory = transport
    page = ConnectorsPage(context, SyncDispatcher(context))
    qtbot.addWidget(page)
    page.show()
    qtbot.waitUntil(lambda: page.loaded_once and not page.is_loading(), timeout=WAIT_MS)
    return page


def secrets_cell(page: ConnectorsPage, role: int = Qt.ItemDataRole.DisplayRole) -> object:
    return page.model.index(0, page.model.column_index("Secrets")).data(role)


def test_the_page_shows_each_secrets_age_and_when_a_rotation_is_due(
    qtbot,  # type: ignore[no-untyped-def]
    context: AppContext,
    fake: FakeServiceNow,
) -> None:
    config = add_config(context, fake)
    page = make_page(qtbot, context, fake, [])
    assert secrets_cell(page) == "password · stored today"
    assert secrets_cell(page, Qt.ItemDataRole.ForegroundRole) is None
    assert page.rotate_action.isEnabled()

    with context.sessions.begin() as session:
        session.execute(
            update(ConnectorSecret)
            .where(ConnectorSecret.connector_config_id == config.id)
            .values(stored_at=utcnow() - timedelta(days=97, hours=1))
        )
    with qtbot.waitSignal(page.loaded, timeout=WAIT_MS):
        page.reload()
    assert secrets_cell(page) == "password · 97 days old, rotate due"
    assert secrets_cell(page, Qt.ItemDataRole.ForegroundRole) is not None  # shown in the alert colour
    tooltip = str(secrets_cell(page, Qt.ItemDataRole.ToolTipRole))
    assert "password: stored " in tooltip and "last used not yet" in tooltip and "every 90 days" in tooltip


def test_rotate_tests_off_the_gui_thread_keeps_the_old_value_on_failure_then_rotates(
    qtbot,  # type: ignore[no-untyped-def]
    context: AppContext,
    fake: FakeServiceNow,
    memory_keyring: MemoryKeyring,
) -> None:
    config = add_config(context, fake)
    entry = (SERVICE_NAME, entry_name(config.keychain_key, "password"))
    old_password = fake.password
    threads: list[str] = []
    page = make_page(qtbot, context, fake, threads)
    fake.password = NEW_PASSWORD  # changed in ServiceNow first, as the dialog asks

    dialog = page.open_rotate_dialog()
    assert dialog is not None and dialog.isVisible()
    assert dialog.field == "password" and dialog.field_combo.currentText() == "password · stored today"
    assert not dialog.rotate_button.isEnabled()  # nothing typed yet
    dialog.value_edit.setText("sn-rotated-typo")
    dialog.rotate_button.click()
    assert dialog.busy and not dialog.value_edit.isEnabled()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=WAIT_MS)
    assert dialog.isVisible()
    assert dialog.status_label.text() == (
        "Not rotated: Wrong credentials (HTTP 401). The stored password stays in use."
    )
    assert dialog.error.isVisibleTo(dialog) and "sn-rotated-typo" not in dialog.error.text()
    assert memory_keyring.entries[entry] == old_password
    assert threads and threading.main_thread().name not in threads  # the test ran on a worker

    notices: list[tuple[object, str]] = []
    page.notify.connect(lambda level, text, _details: notices.append((level, text)))
    dialog.value_edit.setText(NEW_PASSWORD)
    with (
        qtbot.waitSignal(page.loaded, timeout=WAIT_MS),
        qtbot.waitSignal(dialog.rotated, timeout=WAIT_MS) as rotated,
    ):
        dialog.rotate_button.click()
    result = rotated.args[0]
    assert isinstance(result, RotationResult) and result.rotated
    assert not dialog.isVisible() and dialog.value_edit.text() == ""
    assert notices == [(Level.INFO, "prod: the password was rotated; the connection test passed.")]
    assert memory_keyring.entries[entry] == NEW_PASSWORD
    assert secrets_cell(page) == "password · rotated today"
    with context.sessions() as session:
        actions = list(
            session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.action.startswith("secret."))
                .order_by(AuditEvent.id)
            )
        )
        actor = session.scalar(select(AuditEvent.actor).where(AuditEvent.action == "secret.rotated"))
    assert actions == ["secret.stored", "secret.rotate_failed", "secret.rotated"]
    assert actor == "dana"


def test_cancel_closes_the_dialog_and_keeps_the_stored_value(
    qtbot,  # type: ignore[no-untyped-def]
    context: AppContext,
    fake: FakeServiceNow,
    memory_keyring: MemoryKeyring,
) -> None:
    config = add_config(context, fake)
    page = make_page(qtbot, context, fake, [])
    dialog = page.open_rotate_dialog()
    assert dialog is not None
    dialog.value_edit.setText(NEW_PASSWORD)
    dialog.cancel()
    assert not dialog.isVisible() and dialog.value_edit.text() == ""
    assert (
        memory_keyring.entries[(SERVICE_NAME, entry_name(config.keychain_key, "password"))] == fake.password
    )


def test_settings_hold_the_tenants_rotation_period(
    qtbot,  # type: ignore[no-untyped-def]
    context: AppContext,
    tmp_path: Path,
) -> None:
    settings = QSettings(str(tmp_path / "settings" / "runbook-desk.ini"), QSettings.Format.IniFormat)
    dialog = SettingsDialog(context, settings)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.learning.loaded, timeout=WAIT_MS):  # its own load, before the dialog closes
        dialog.show()
    assert dialog.rotation_spin.value() == 90 and dialog.rotation_spin.isEnabled()
    dialog.rotation_spin.setValue(45)
    with qtbot.waitSignal(dialog.finished, timeout=WAIT_MS):
        dialog.buttons.button(dialog.buttons.StandardButton.Save).click()
    with context.sessions() as session:
        assert load_settings(session, SecretSettings) == SecretSettings(secret_rotation_days=45)
        audited = session.scalar(select(AuditEvent.after).where(AuditEvent.action == "settings.secrets"))
    assert audited == {"secret_rotation_days": 45}
