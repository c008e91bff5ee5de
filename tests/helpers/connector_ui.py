"""Helpers for the desktop connector tests: fake systems with tickets, and driving the wizard like a user."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from PySide6.QtWidgets import QWizard
from sqlalchemy import func, select

from connectors.configs import ConfigRow, list_configs
from connectors.testing.fake_system import FakeSystem
from core.store.models import Ticket
from core.store.workspace import Workspace
from desktop.dialogs.connector_wizard import TEST_PAGE, WHERE_PAGE, ConnectorWizard
from desktop.widgets.config_form import FieldForm
from tests.connectors.fake_jira import FakeJira
from tests.connectors.fake_servicenow import FakeServiceNow

WAIT_MS = 30_000
RECENT_TICKETS = 12


def with_tickets(fake: FakeSystem, count: int = RECENT_TICKETS, *, old: int = 1) -> FakeSystem:
    """``count`` tickets updated in the last weeks, plus ``old`` updated 200 days ago (before the default
    first-sync start, so a first sync must not import them)."""
    now = datetime.now(UTC).replace(microsecond=0)
    for number in range(1, count + 1):
        fake.add_ticket(fake.new_ticket(number, now - timedelta(days=count - number + 1)))
    for number in range(count + 1, count + 1 + old):
        fake.add_ticket(fake.new_ticket(number, now - timedelta(days=200)))
    return fake


def servicenow() -> FakeServiceNow:
    fake = FakeServiceNow()
    with_tickets(fake)
    return fake


def jira() -> FakeJira:
    fake = FakeJira()
    with_tickets(fake)
    return fake


def fill(form: FieldForm | None, values: Mapping[str, Any]) -> None:
    assert form is not None
    for key, value in values.items():
        form.editors[key].set_value(value)


def click_next(qtbot, wizard: QWizard) -> None:  # type: ignore[no-untyped-def]
    button = wizard.button(QWizard.WizardButton.NextButton)
    qtbot.waitUntil(button.isEnabled, timeout=WAIT_MS)
    button.click()


def click_finish(qtbot, wizard: QWizard) -> None:  # type: ignore[no-untyped-def]
    button = wizard.button(QWizard.WizardButton.FinishButton)
    qtbot.waitUntil(lambda: button.isVisible() and button.isEnabled(), timeout=WAIT_MS)
    button.click()


def drive_to_test(
    qtbot,  # type: ignore[no-untyped-def]
    wizard: ConnectorWizard,
    connector_type: str,
    url: str,
    *,
    where: Mapping[str, Any] | None = None,
    auth_mode: str | None = None,
    auth: Mapping[str, Any] | None = None,
) -> None:
    """Choose the system, enter the address and credentials, and wait for the connection test's result."""
    wizard.system_page.select(connector_type)
    click_next(qtbot, wizard)
    assert wizard.currentId() == WHERE_PAGE
    wizard.where_page.url_edit.setText(url)
    fill(wizard.where_page.form, where or {})
    click_next(qtbot, wizard)
    if auth_mode is not None:
        wizard.auth_page.set_auth_mode(auth_mode)
    fill(wizard.auth_page.form, auth or {})
    click_next(qtbot, wizard)
    assert wizard.currentId() == TEST_PAGE
    qtbot.waitUntil(lambda: wizard.test_page.result is not None, timeout=WAIT_MS)


def servicenow_auth(fake: FakeServiceNow, password: str | None = None) -> dict[str, str]:
    return {"username": fake.username, "password": fake.password if password is None else password}


def configs(workspace: Workspace) -> list[ConfigRow]:
    with workspace.session_factory("default")() as session:
        return list_configs(session)


def tickets_of(workspace: Workspace, source_system: str) -> int:
    """Tickets of this system that a connector brought (the demo's imported ones are ServiceNow's too)."""
    with workspace.session_factory("default")() as session:
        return (
            session.scalar(
                select(func.count()).where(
                    Ticket.source_system == source_system, Ticket.connector_config_id.is_not(None)
                )
            )
            or 0
        )


def database_bytes(workspace: Workspace) -> bytes:
    """The SQLite file and its WAL, as a backup or a support ticket attachment would carry them."""
    data = b""
    for path in workspace.root.glob("*.sqlite3*"):
        data += path.read_bytes()
    assert data
    return data
