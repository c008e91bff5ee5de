"""Save screenshots of each connector wizard page and of the Connectors page to docs/.

Run: ``xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots_connectors.py``, a few
seconds. Everything is local: the wizard talks to the fake ServiceNow of the connector tests (through
``transport_factory``), secrets go to an in-memory keychain, the workspace is a temporary folder. A second
connector with a wrong password fails three syncs in a row so the Connectors page shows its alert.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the fake systems live in tests/connectors
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import keyring  # noqa: E402
import qasync  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication, QWizard  # noqa: E402
from screenshots_kit import save, settle, wait_until  # noqa: E402

from connectors.configs import create_config  # noqa: E402
from connectors.secrets import install_secret_redaction  # noqa: E402
from core.store.workspace import Workspace  # noqa: E402
from desktop.dialogs.connector_wizard import ConnectorWizard  # noqa: E402
from desktop.main_window import CONNECTORS_PAGE, MainWindow  # noqa: E402
from tests.connectors.fake_servicenow import FakeServiceNow  # noqa: E402
from tests.helpers.memory_keyring import MemoryKeyring  # noqa: E402

DOCS = REPO / "docs"
TICKET_TITLES = (
    "VPN drops every 10 minutes on the Cisco AnyConnect client",
    "Outlook cannot send: error 0x800CCC0E",
    "Printer on floor 3 jams in tray 2",
    "Teams meeting audio cuts out for remote staff",
    "Password reset link expired before use",
    "SharePoint site returns access denied after migration",
    "Laptop does not wake from sleep after the BIOS update",
    "Shared mailbox not visible in Outlook on the web",
    "Wi-Fi in building B keeps asking for credentials",
    "Jira Service Desk email channel stopped creating requests",
    "MFA prompt loops on the Authenticator app",
    "Disk space alert on file server FS02",
)


def fake_servicenow() -> FakeServiceNow:
    fake = FakeServiceNow()
    now = datetime.now(UTC).replace(microsecond=0)
    for number, title in enumerate(TICKET_TITLES, start=1):
        ticket = fake.new_ticket(number, now - timedelta(days=len(TICKET_TITLES) - number, hours=number))
        ticket.title = title
        ticket.description = f"{title}. Reported by a user in the London office; started this morning."
        fake.add_ticket(ticket)
    return fake


def next_page(app: QApplication, wizard: QWizard) -> None:
    button = wizard.button(QWizard.WizardButton.NextButton)
    wait_until(app, button.isEnabled, "the Next button")
    button.click()
    settle(app)


def shoot_wizard(app: QApplication, window: MainWindow, fake: FakeServiceNow) -> None:
    page = window.connectors_page
    wizard = page.open_add_wizard()
    assert isinstance(wizard, ConnectorWizard)
    wizard.resize(860, 660)
    wizard.system_page.select("servicenow")
    settle(app)
    save(wizard, "wizard-1-system.png")

    next_page(app, wizard)
    wizard.where_page.url_edit.setText(
        "fake.service-now.com/now/nav/ui/classic/params/target/incident_list.do"
    )
    wizard.where_page.validatePage()  # shows what the tidying changed
    settle(app)
    save(wizard, "wizard-2-where.png")

    next_page(app, wizard)
    assert wizard.auth_page.form is not None
    wizard.auth_page.form.editors["username"].set_value(fake.username)
    wizard.auth_page.form.editors["password"].set_value("not-the-password")
    settle(app)
    save(wizard, "wizard-3-auth.png")

    next_page(app, wizard)
    wait_until(app, lambda: wizard.test_page.result is not None, "the failed connection test")
    settle(app)
    save(wizard, "wizard-4-test-401.png")

    wizard.back()
    wizard.auth_page.form.editors["password"].set_value(fake.password)
    next_page(app, wizard)
    wait_until(app, lambda: wizard.test_page.result is not None, "the connection test")
    settle(app)
    save(wizard, "wizard-4-test.png")

    next_page(app, wizard)
    wait_until(app, lambda: wizard.scope_page.preview_ok, "the preview")
    settle(app)
    save(wizard, "wizard-5-scope.png")

    next_page(app, wizard)
    wizard.when_page.name_edit.setText("ServiceNow production")
    wizard.when_page.initializePage()  # refresh the summary with the name
    settle(app)
    save(wizard, "wizard-6-when.png")

    wizard.button(QWizard.WizardButton.FinishButton).click()
    wait_until(app, lambda: page.wizard is None, "the wizard to save")


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    # The wizard's connection test and preview are tasks on the running asyncio loop, as in the app
    # (desktop/app.py); this script turns Qt's events by hand, so it sets qasync's loop as the running one,
    # as tests/desktop/conftest.py's gui_loop does.
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    asyncio.events._set_running_loop(loop)
    keyring.set_keyring(MemoryKeyring())  # never the real keychain
    install_secret_redaction()
    DOCS.mkdir(exist_ok=True)
    fake = fake_servicenow()
    with tempfile.TemporaryDirectory(prefix="rd-connector-shots-") as tmp:
        workspace = Workspace.open(Path(tmp) / "workspace")
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(workspace, "default", settings=settings)
        window.resize(1500, 900)
        window.show()
        page = window.connectors_page
        window.context.transport_factory = lambda _settings: fake.transport()
        window.show_page(CONNECTORS_PAGE)
        wait_until(app, lambda: page.loaded_once and not page.is_loading(), "the Connectors page")

        shoot_wizard(app, window, fake)
        wait_until(app, lambda: not window.runner.active_tasks(), "the first sync")

        wrong = fake.settings(good_credentials=False)
        failing = create_config(
            window.context.sessions,
            connector_type="servicenow",
            name="ServiceNow test instance",
            base_url=fake.base_url,
            options=wrong.options,
            secrets=wrong.secrets,
            sync_frequency_minutes=15,
        )
        page.reload()
        wait_until(app, lambda: len(page.model.rows) == 2 and not page.is_loading(), "the second connector")
        for _ in range(3):
            task = page.scheduler.sync_now(failing.id, failing.name)
            wait_until(app, lambda task=task: not task.is_active, "a failing sync")  # type: ignore[misc]
            wait_until(app, lambda: not window.runner.active_tasks(), "the reload")
        page.select_config(failing.id)
        wait_until(app, lambda: page.history_model.rowCount() == 3, "the sync history")
        window.notifications.clear()
        settle(app, 0.6)
        save(window, "connectors.png")
        window.close()
        workspace.close()
    asyncio.events._set_running_loop(None)
    loop.close()  # joins its executor's threads, which Qt would otherwise destroy running at exit
    return 0


if __name__ == "__main__":
    sys.exit(main())
