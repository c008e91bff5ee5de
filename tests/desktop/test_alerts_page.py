"""The Alerts page, its window wiring and the wizard's monitoring side, on real workspaces.

The incidents come the way a sync brings them: monitoring events through ``store_events`` (deduplication and
correlation), then the real engine's analysis over the demo runbooks, so each incident's suggested runbook,
confidence and decision are the matcher's own. Ticket creation goes through the real ServiceNow connector to
its fake (the app's ``transport_factory`` seam).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QAbstractItemModelTester
from pytestqt.qtbot import QtBot
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from connectors.base import CheckProblem, CheckResult, WriteAccess, WriteCheck
from connectors.configs import ConfigRow, create_config, record_check
from core.matching.analysis import analyze_pending
from core.matching.embedding import SentenceTransformerEmbedder
from core.matching.engine import open_engine
from core.monitoring.events import AlertEvent, Severity
from core.monitoring.queries import incident
from core.store.models import (
    AlertStatus,
    AnalysisDecision,
    AuditEvent,
    ConnectorConfig,
    MonitoringIncident,
    SyncRun,
    SyncStatus,
)
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from desktop.background.tasks import TaskRunner
from desktop.context import AppContext
from desktop.dialogs.connector_wizard import ConnectorWizard
from desktop.main_window import ALERTS_PAGE, REVIEW_PAGE, MainWindow
from desktop.pages.alerts import EMPTY_NO_CONNECTOR, AlertsPage, CreateTicketDialog
from desktop.widgets.nav_rail import BadgeTone
from desktop.widgets.notifications import Level
from tests.connectors.fake_servicenow import FakeServiceNow
from tests.helpers.alert_events import (
    DISK_EXPRESSION,
    DISK_MESSAGE_AGAIN,
    K8S_EXPRESSION,
    event,
    events,
    ingest,
)
from tests.helpers.connector_ui import WAIT_MS, click_next, drive_to_test, servicenow_auth


def analyse(workspace: Workspace, embedder: SentenceTransformerEmbedder) -> None:
    engine = open_engine(workspace, "default", embedder)
    engine.refresh()
    analyze_pending(engine, workspace.session_factory("default"))


@pytest.fixture
def runner(qtbot: QtBot) -> Iterator[TaskRunner]:
    task_runner = TaskRunner()
    yield task_runner
    task_runner.shutdown()


@pytest.fixture
def monitored(analysed_demo: Workspace, embedder: SentenceTransformerEmbedder) -> Workspace:
    """The analysed demo with the three incidents of :func:`events`, analysed like any ticket."""
    ingest(analysed_demo.session_factory("default"))
    analyse(analysed_demo, embedder)
    return analysed_demo


def make_page(qtbot: QtBot, context: AppContext) -> AlertsPage:
    page = AlertsPage(context)
    qtbot.addWidget(page)
    page.resize(1400, 800)
    with qtbot.waitSignal(page.loaded, timeout=WAIT_MS):
        page.show()
        page.reload()
    return page


def cell(page: AlertsPage, row: int, header: str) -> str:
    proxy = page.incident_proxy
    return str(proxy.index(row, page.incident_model.column_index(header)).data())


def alert_cell(page: AlertsPage, row: int, header: str) -> str:
    proxy = page.alert_proxy
    return str(proxy.index(row, page.alert_model.column_index(header)).data())


def incident_ids(sessions: sessionmaker[TenantSession]) -> dict[str, int]:
    """Incident id by its first host."""
    with sessions() as session:
        return {found.hosts[0]: found.id for found in session.scalars(select(MonitoringIncident))}


# --- the list -----------------------------------------------------------------------------------------------


def test_the_page_lists_open_incidents_worst_first_with_their_runbook(
    qtbot: QtBot, monitored: Workspace, runner: TaskRunner
) -> None:
    page = make_page(qtbot, AppContext(monitored, "default", runner))
    QAbstractItemModelTester(page.incident_model, QAbstractItemModelTester.FailureReportingMode.Warning)
    load = page.load
    assert load is not None
    # Four events, three alerts (db01's disk fired twice: one alert), three incidents.
    assert (load.compression.events, load.compression.alerts, load.compression.incidents) == (4, 3, 3)
    assert page.incident_proxy.rowCount() == 3
    assert [cell(page, row, "Severity") for row in range(3)] == ["critical", "high", "warning"]
    assert [cell(page, row, "Hosts / services") for row in range(3)] == [
        "db01",
        "k8s-prod · payments",
        "web01",
    ]
    assert [cell(page, row, "Alerts") for row in range(3)] == ["1", "1", "1"]
    assert [cell(page, row, "Opened") for row in range(3)] == ["2 h ago", "40 min ago", "3 h ago"]
    assert [cell(page, row, "Last alert") for row in range(3)] == ["2 h ago", "40 min ago", "3 h ago"]
    # The matcher's suggestion over the demo runbooks, with its calibrated confidence as a percentage.
    disk = load.incidents[0]
    assert disk.runbook_title == "Linux server disk full (No space left on device)"
    assert disk.decision is AnalysisDecision.LINK_RUNBOOK and disk.confidence is not None
    assert cell(page, 0, "Runbook") == disk.runbook_title
    assert cell(page, 0, "Confidence") == f"{round(disk.confidence * 100)}%"
    assert cell(page, 0, "Decision") == "Confident"
    assert load.incidents[1].runbook_title == "Kubernetes pod in CrashLoopBackOff"
    # No monitoring connector has synced: nothing to compare with, no "changed" column text.
    assert [cell(page, row, "Changed") for row in range(3)] == ["", "", ""]
    assert page.empty_label.isHidden()
    assert "4 events → 3 alerts (1.3 events per alert) → 3 incidents" in page.summary_label.text()

    # Filters: the source narrows to Datadog's incident; the text to web01's.
    page.source_combo.setCurrentIndex(page.source_combo.findData("datadog"))
    assert [row.hosts for row in page.shown_incidents()] == [("k8s-prod",)]
    page.source_combo.setCurrentIndex(0)
    page.filter_edit.setText("WEB01")
    assert [row.hosts for row in page.shown_incidents()] == [("web01",)]
    assert page.current_incident() is not None and page.current_incident().hosts == ("web01",)  # type: ignore[union-attr]


def test_selecting_an_incident_shows_its_alerts_raw(
    qtbot: QtBot, monitored: Workspace, runner: TaskRunner
) -> None:
    page = make_page(qtbot, AppContext(monitored, "default", runner))
    QAbstractItemModelTester(page.alert_model, QAbstractItemModelTester.FailureReportingMode.Warning)
    row = page.current_incident()
    assert row is not None and row.hosts == ("db01",)  # the first row is selected on load
    # One alert that fired twice: the latest firing's text, both counted, first and last seen apart.
    assert page.alert_proxy.rowCount() == 1
    assert [alert_cell(page, 0, h) for h in ("Severity", "Title", "Source", "Host", "Status")] == [
        "critical",
        "Free disk space is less than 3% on volume /var",
        "zabbix",
        "db01",
        "Triggered",
    ]
    assert [alert_cell(page, 0, h) for h in ("Occurrences", "First seen", "Last seen")] == [
        "2",
        "2 h ago",
        "2 h ago",
    ]
    assert alert_cell(page, 0, "Tags") == "scope:capacity"
    # The selected alert's message and rule expression exactly as the monitoring system sent them (the
    # matcher's cleaned text drops "<5" and the brackets; the analyst sees them).
    text = page.alert_view.toPlainText()
    assert DISK_MESSAGE_AGAIN in text and DISK_EXPRESSION in text
    assert "Linux server disk full (No space left on device)" in page.incident_view.toPlainText()

    qtbot.keyClick(page.incident_table, Qt.Key.Key_J)  # the next incident, by key
    row = page.current_incident()
    assert row is not None and row.hosts == ("k8s-prod",)
    assert [alert_cell(page, 0, h) for h in ("Source", "Host")] == ["datadog", "k8s-prod"]
    assert K8S_EXPRESSION in page.alert_view.toPlainText()
    qtbot.keyClick(page.incident_table, Qt.Key.Key_K)
    assert page.current_incident() is not None and page.current_incident().hosts == ("db01",)  # type: ignore[union-attr]


def test_the_empty_page_says_to_add_a_monitoring_connector(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    page = make_page(qtbot, AppContext(workspace, "default", runner))
    assert page.incident_proxy.rowCount() == 0
    assert page.empty_label.isVisible() and page.empty_label.text() == EMPTY_NO_CONNECTOR
    assert not page.review_button.isEnabled() and not page.create_button.isEnabled()


def test_changes_since_the_last_monitoring_sync(
    qtbot: QtBot, monitored: Workspace, runner: TaskRunner
) -> None:
    """An incident whose ticket arrived after the last monitoring sync started is "new"; one before is not."""
    sessions = monitored.session_factory("default")
    with sessions.begin() as session:
        config = ConnectorConfig(connector_type="zabbix", name="zbx", config_json={"base_url": "https://zbx"})
        session.add(config)
        session.flush()
        session.add(
            SyncRun(
                connector_config_id=config.id,
                connector_name="zbx",
                started_at=datetime.now(UTC),  # after the fixture's incidents were stored
                finished_at=datetime.now(UTC),
                status=SyncStatus.SUCCEEDED,
            )
        )
    later = event(datetime.now(UTC), "zbx-9", 1, "Service nginx is down on edge01", "edge01", Severity.HIGH)
    ingest(sessions, (later,))
    page = make_page(qtbot, AppContext(monitored, "default", runner))
    changed = {row.hosts[0]: cell(page, n, "Changed") for n, row in enumerate(page.shown_incidents())}
    assert changed == {"db01": "", "k8s-prod": "", "edge01": "new", "web01": ""}


# --- creating the ticket ---------------------------------------------------------------------------------


def add_servicenow(sessions: sessionmaker[TenantSession], fake: FakeServiceNow, name: str) -> ConfigRow:
    settings = fake.settings()
    return create_config(
        sessions,
        connector_type="servicenow",
        name=name,
        base_url=fake.base_url,
        options=settings.options,
        secrets=settings.secrets,
    )


def test_create_ticket_confirms_what_is_sent_creates_once_and_shows_the_number(
    qtbot: QtBot, monitored: Workspace, runner: TaskRunner
) -> None:
    sessions = monitored.session_factory("default")
    fake = FakeServiceNow()
    add_servicenow(sessions, fake, "prod-sn")
    read_only = add_servicenow(sessions, FakeServiceNow(), "read-only-sn")
    record_check(  # its last connection test found it read-only: never offered
        sessions,
        connector_type="servicenow",
        name=read_only.name,
        base_url=read_only.base_url,
        result=CheckResult(
            CheckProblem.OK, "connected", write=WriteCheck(WriteAccess.DENIED, "no itil role")
        ),
        config_id=read_only.id,
    )
    context = AppContext(monitored, "default", runner)
    context.transport_factory = lambda _settings: fake.transport()
    page = make_page(qtbot, context)
    disk = page.current_incident()
    assert disk is not None and disk.hosts == ("db01",)
    assert page.create_button.isEnabled() and page.create_button.text() == "Create ticket in…"

    qtbot.keyClick(page.incident_table, Qt.Key.Key_C)
    qtbot.waitUntil(lambda: page.active_dialog is not None, timeout=WAIT_MS)
    dialog = page.active_dialog
    assert isinstance(dialog, CreateTicketDialog)
    offered = [dialog.target_combo.itemText(n) for n in range(dialog.target_combo.count())]
    assert offered == ["prod-sn (ServiceNow: not tested yet)"]
    preview = dialog.preview.toPlainText()
    assert f"Title: {disk.title}" in preview and "Severity: critical" in preview
    assert "Configuration item: db01" in preview and DISK_MESSAGE_AGAIN in preview
    assert f"Suggested runbook: {disk.runbook_title}" in preview
    assert fake.inserts == []  # nothing is sent before the analyst confirms

    with qtbot.waitSignal(page.loaded, timeout=WAIT_MS):
        dialog.accept()
    assert len(fake.inserts) == 1
    assert fake.inserts[0]["short_description"] == disk.title
    with sessions() as session:
        stored = session.get(MonitoringIncident, disk.id)
        assert stored is not None
        number = stored.created_number
        audits = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "incident.ticket_created")
        )
    assert number == "INC0090001" and audits == 1  # the fake numbers its inserts from 90001
    row = page.current_incident()
    assert row is not None and row.id == disk.id and row.created_number == number
    assert not page.create_button.isEnabled() and page.create_button.text() == f"Created: {number}"
    assert cell(page, 0, "Ticket") == number
    page.create_ticket_for_selected()  # disabled: no dialog, no second ticket
    qtbot.wait(200)
    assert page.active_dialog is None and len(fake.inserts) == 1


def test_no_ticketing_connector_says_how_to_add_one(
    qtbot: QtBot, monitored: Workspace, runner: TaskRunner
) -> None:
    page = make_page(qtbot, AppContext(monitored, "default", runner))
    with qtbot.waitSignal(page.notify, timeout=WAIT_MS) as told:
        page.create_ticket_for_selected()
    level, text, _details = told.args  # type: ignore[misc]
    assert level is Level.INFO and "No ticketing connector can create incidents" in text
    assert page.active_dialog is None


# --- the window: notification, badge, Open in Review -----------------------------------------------------


@pytest.fixture
def stored(analysed_demo: Workspace) -> tuple[AlertEvent, ...]:
    """The incidents' events stored but not analysed yet, as right after a sync."""
    batch = events(datetime.now(UTC))
    ingest(analysed_demo.session_factory("default"), batch)
    return batch


@pytest.fixture
def window(
    qtbot: QtBot,
    analysed_demo: Workspace,
    stored: tuple[AlertEvent, ...],
    embedder: SentenceTransformerEmbedder,
    tmp_path: Path,
) -> Iterator[MainWindow]:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    main_window = MainWindow(analysed_demo, "default", settings=settings, embedder_factory=lambda: embedder)
    qtbot.addWidget(main_window)
    main_window.resize(1280, 800)
    main_window.show()
    qtbot.waitExposed(main_window)
    yield main_window
    main_window.close()


def critical_notifications(window: MainWindow) -> list[str]:
    found = [n for n in window.notifications.notifications() if n.text.startswith("Critical ")]
    assert all(n.level is Level.ALERT for n in found)  # an alert to act on, not Runbook Desk failing
    return [n.text for n in found]


def test_analysis_announces_the_critical_incident_once_and_the_rail_counts_incidents(
    qtbot: QtBot, window: MainWindow, stored: tuple[AlertEvent, ...]
) -> None:
    rail = window.nav_list
    qtbot.waitUntil(lambda: rail.badge(ALERTS_PAGE) is not None, timeout=WAIT_MS)
    badge = rail.badge(ALERTS_PAGE)
    assert badge is not None and badge.count == 3 and badge.tone is BadgeTone.ALERT
    assert badge.description == "3 open incidents, 1 critical"
    assert critical_notifications(window) == []  # not analysed yet: no runbook to announce

    task = window.start_analysis()
    assert task is not None
    qtbot.waitUntil(lambda: len(critical_notifications(window)) == 1, timeout=WAIT_MS)
    (text,) = critical_notifications(window)
    ids = incident_ids(window.context.sessions)
    with window.context.sessions() as session:
        disk = incident(session, ids["db01"])
    assert disk is not None and disk.confidence is not None
    assert disk.decision is AnalysisDecision.LINK_RUNBOOK
    assert text == (
        f"Critical incident MON-{ids['db01']}: db01: Free disk space is less than 3% on volume "
        f"/var. Suggested runbook: “Linux server disk full (No space left on device)” "
        f"({round(disk.confidence * 100)}%). See the Alerts page."
    )
    with window.context.sessions() as session:
        notified = [found.id for found in session.scalars(select(MonitoringIncident)) if found.notified_at]
    assert notified == [ids["db01"]]

    # A second analysis (nothing new) announces nothing again.
    second = window.start_analysis()
    assert second is not None
    qtbot.waitUntil(lambda: not second.is_active, timeout=WAIT_MS)
    qtbot.wait(300)
    assert len(critical_notifications(window)) == 1

    # Resolving db01's alerts closes its incident: the badge counts two, none critical.
    now = datetime.now(UTC)
    resolved = tuple(
        replace(one, status=AlertStatus.RESOLVED, resolved_at=now, updated_at=now)
        for one in stored
        if one.host == "db01"
    )
    ingest(window.context.sessions, resolved)
    window.alerts_page.reload()
    qtbot.waitUntil(lambda: (b := rail.badge(ALERTS_PAGE)) is not None and b.count == 2, timeout=WAIT_MS)
    badge = rail.badge(ALERTS_PAGE)
    assert badge is not None and badge.tone is BadgeTone.COUNT and badge.description == "2 open incidents"


def test_open_in_review_selects_the_incident_ticket(qtbot: QtBot, window: MainWindow) -> None:
    task = window.start_analysis()
    assert task is not None
    qtbot.waitUntil(lambda: not task.is_active, timeout=WAIT_MS)
    page = window.alerts_page
    window.show_page(ALERTS_PAGE)
    qtbot.waitUntil(lambda: page.current_incident() is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: page.current_incident().decision is not None, timeout=WAIT_MS)  # type: ignore[union-attr]
    row = page.current_incident()
    assert row is not None and row.ticket_id is not None
    page.incident_table.setFocus()
    qtbot.keyClick(page.incident_table, Qt.Key.Key_Return)
    assert window.stack.currentIndex() == REVIEW_PAGE
    review = window.review_page
    qtbot.waitUntil(
        lambda: review.current_row() is not None and review.current_row().ticket_id == row.ticket_id,  # type: ignore[union-attr]
        timeout=WAIT_MS,
    )
    assert review.search_edit.text() == f"MON-{row.id}"


# --- the wizard ---------------------------------------------------------------------------------------------


def test_the_wizard_groups_monitoring_systems_with_their_own_fields(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner
) -> None:
    wizard = ConnectorWizard(AppContext(workspace, "default", runner))
    qtbot.addWidget(wizard)
    wizard.show()
    page = wizard.system_page
    assert page.headings() == ["Ticketing", "Monitoring", "Knowledge"]
    assert page.systems_under("Monitoring") == ["datadog", "solarwinds", "zabbix"]
    assert set(page.systems_under("Knowledge")) == {
        "confluence",
        "servicedesk_plus_solutions",
        "servicenow_kb",
    }
    assert {"servicenow", "jira", "servicedesk_plus", "remedy"} <= set(page.systems_under("Ticketing"))
    heading = page.system_list.item(0)
    assert not heading.flags() & Qt.ItemFlag.ItemIsSelectable  # a heading cannot be chosen

    page.select("datadog")
    click_next(qtbot, wizard)
    form = wizard.where_page.form
    assert form is not None and "site" in form.editors  # the site decides the API host
    wizard.back()
    page.select("solarwinds")
    click_next(qtbot, wizard)
    form = wizard.where_page.form
    assert form is not None and "port" in form.editors
    wizard.reject()


@pytest.mark.parametrize(
    ("roles", "readable", "expected"),
    [
        (["itil", "snc_internal"], True, "Can create incidents and post notes."),
        (["snc_internal"], True, "Read only: none of the account's roles (snc_internal) creates incidents"),
        (["itil"], False, "Write access: not known until the first write"),
    ],
)
def test_the_connection_test_says_whether_the_account_can_write(
    qtbot: QtBot, workspace: Workspace, runner: TaskRunner, roles: list[str], readable: bool, expected: str
) -> None:
    fake = FakeServiceNow()
    fake.roles = roles
    fake.roles_readable = readable
    context = AppContext(workspace, "default", runner)
    context.transport_factory = lambda _settings: fake.transport()
    wizard = ConnectorWizard(context)
    qtbot.addWidget(wizard)
    wizard.show()
    drive_to_test(qtbot, wizard, "servicenow", fake.base_url, auth=servicenow_auth(fake))
    assert wizard.test_page.result is not None and wizard.test_page.result.ok
    assert wizard.test_page.write_label.text().startswith(expected)
    wizard.reject()


def test_a_sync_during_an_analysis_gets_one_more_analysis_after_it(qtbot: QtBot, window: MainWindow) -> None:
    """The running analysis may have read the store before the sync's alerts arrived: one more follows."""
    started: list[str] = []
    window.runner.task_started.connect(lambda task: started.append(task.title))
    first = window.start_analysis()
    assert first is not None and first.is_active
    window.connectors_page.analysis_requested.emit()  # a sync brought alerts meanwhile
    window.connectors_page.analysis_requested.emit()  # and another: still one more, not two
    assert started.count("Analysing tickets") == 1
    qtbot.waitUntil(lambda: started.count("Analysing tickets") == 2, timeout=WAIT_MS)
    second = window._jobs["analysis"]
    qtbot.waitUntil(lambda: not second.is_active, timeout=WAIT_MS)
    qtbot.wait(300)
    assert started.count("Analysing tickets") == 2
