"""The window's shell: background jobs (demo seeding, import by drag and drop, analysis), notifications,
settings and the tenant switcher. Real SQLite, the real model, headless Qt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication
from sqlalchemy import func, select

from core.matching.embedding import SentenceTransformerEmbedder
from core.settings import Thresholds, load_settings
from core.store.models import Analysis, KnowledgeArticle, MonitoringIncident, Ticket
from core.store.workspace import Workspace
from desktop.background.tasks import Task
from desktop.dialogs.settings import REVIEWER_KEY
from desktop.main_window import MainWindow
from desktop.widgets.notifications import Level

WAIT_MS = 60_000


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings" / "runbook-desk.ini"), QSettings.Format.IniFormat)


def make_window(
    qtbot,
    workspace: Workspace,
    settings: QSettings,
    embedder: SentenceTransformerEmbedder,
    slug: str = "default",
) -> MainWindow:
    window = MainWindow(workspace, slug, settings=settings, embedder_factory=lambda: embedder)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def wait_idle(qtbot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: not window.runner.active_tasks(), timeout=WAIT_MS)


@pytest.fixture
def demo_window(
    qtbot, analysed_demo: Workspace, settings: QSettings, embedder: SentenceTransformerEmbedder
) -> Iterator[MainWindow]:
    window = make_window(qtbot, analysed_demo, settings, embedder)
    wait_idle(qtbot, window)
    yield window
    window.close()


def count(workspace: Workspace, model: type) -> int:
    with workspace.session_factory()() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def drop(window: MainWindow, path: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(event)


def test_first_demo_start_imports_in_the_background_then_analyses(
    qtbot, workspace: Workspace, settings: QSettings, embedder: SentenceTransformerEmbedder
) -> None:
    window = make_window(qtbot, workspace, settings, embedder)
    titles: list[str] = []

    def watch(task: Task) -> None:
        titles.append(task.title)
        if task.title == "Analysing tickets":
            task.cancel()  # set before the worker starts: this test is about the order, not the model

    window.runner.task_started.connect(watch)
    window.start_startup_jobs(seed_demo=True)
    assert window.isVisible()  # the window did not wait for the import
    wait_idle(qtbot, window)

    jobs = [title for title in titles if not title.startswith("Loading")]  # page loads come and go
    assert jobs == ["Preparing the demo", "Analysing tickets"]
    incidents = count(workspace, MonitoringIncident)  # the demo alerts' incidents, one ticket row each
    assert incidents > 0
    assert count(workspace, Ticket) == 348 + incidents
    [ready] = [n.text for n in window.notifications.notifications() if "Demo workspace ready" in n.text]
    assert ready.startswith(
        f"Demo workspace ready: 47 runbooks, 348 tickets, {incidents} monitoring incidents, "
        f"{count(workspace, KnowledgeArticle)} knowledge articles."
    )
    assert window.tickets_page.total_count == 348 + incidents
    window.close()


def test_a_dropped_export_is_imported_and_its_new_tickets_analysed(
    qtbot, demo_window: MainWindow, analysed_demo: Workspace, tmp_path: Path
) -> None:
    export = tmp_path / "new-tickets.csv"
    export.write_text(
        "number,short_description,description,priority,state,sys_updated_on\n"
        "INC9000001,Printer offline again,The floor 3 printer shows offline and jobs queue,3 - Moderate,New,"
        "2024-05-01 10:00:00\n"
        "INC9000002,VPN will not connect,AnyConnect says login failed after password change,2 - High,New,"
        "2024-05-01 11:00:00\n",
        encoding="utf-8",
    )
    analyses_before = count(analysed_demo, Analysis)

    drop(demo_window, export)
    wait_idle(qtbot, demo_window)

    assert count(analysed_demo, Ticket) == 350
    assert count(analysed_demo, Analysis) == analyses_before + 2
    texts = [n.text for n in demo_window.notifications.notifications()]
    assert any("2 inserted" in text for text in texts), texts
    assert any(text.startswith("Analysed 2 tickets") for text in texts), texts


def test_a_broken_file_fails_with_a_notification_naming_it_and_nothing_written(
    qtbot, demo_window: MainWindow, analysed_demo: Workspace, tmp_path: Path
) -> None:
    broken = tmp_path / "not-tickets.csv"
    broken.write_text("colour,size\nred,big\n", encoding="utf-8")

    drop(demo_window, broken)
    wait_idle(qtbot, demo_window)

    errors = [n for n in demo_window.notifications.notifications() if n.level is Level.ERROR]
    assert errors, "a failed import must be announced"
    assert "not-tickets.csv" in errors[0].text
    assert "Traceback" in errors[0].details
    assert count(analysed_demo, Ticket) == 348


def test_drag_enter_refuses_what_cannot_be_imported(demo_window: MainWindow, tmp_path: Path) -> None:
    def mime_for(*paths: Path) -> QMimeData:
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
        return mime

    (tmp_path / "runbooks").mkdir()
    assert not demo_window.can_import(mime_for(tmp_path / "screenshot.png"))
    assert not demo_window.can_import(mime_for(tmp_path / "tickets.csv", tmp_path / "screenshot.png"))
    assert demo_window.can_import(mime_for(tmp_path / "tickets.csv"))
    assert demo_window.can_import(mime_for(tmp_path / "runbooks"))


def test_settings_store_the_reviewer_and_the_tenant_thresholds(
    qtbot, demo_window: MainWindow, analysed_demo: Workspace, settings: QSettings
) -> None:
    dialog = demo_window.open_settings()
    dialog.reviewer_edit.setText("  Dana Analyst ")
    dialog.link_spin.setValue(0.8)
    dialog.review_spin.setValue(0.55)
    with qtbot.waitSignal(dialog.thresholds_saved, timeout=WAIT_MS):
        dialog.save()
    wait_idle(qtbot, demo_window)  # saving thresholds re-analyses with them

    assert settings.value(REVIEWER_KEY) == "Dana Analyst"
    assert demo_window.context.reviewer() == "Dana Analyst"
    with analysed_demo.session_factory()() as session:
        thresholds = load_settings(session, Thresholds)
    assert (thresholds.existing, thresholds.partial) == (0.8, 0.55)


def test_settings_refuse_a_review_threshold_above_the_link_threshold(
    qtbot, demo_window: MainWindow, analysed_demo: Workspace
) -> None:
    dialog = demo_window.open_settings()
    dialog.link_spin.setValue(0.5)
    dialog.review_spin.setValue(0.6)
    dialog.save()

    assert "partial" in dialog.thresholds_error.text()
    assert dialog.isVisible()
    with analysed_demo.session_factory()() as session:
        assert load_settings(session, Thresholds).existing == 0.7
    dialog.reject()


def test_switching_tenant_opens_that_tenant_in_a_new_window(
    qtbot, demo_window: MainWindow, analysed_demo: Workspace
) -> None:
    analysed_demo.ensure_tenant("acme", "Acme Corp")
    demo_window.tenant_combo.addItem("Acme Corp", "acme")  # the combo lists tenants known at start-up

    replacement = demo_window.switch_tenant("acme")
    qtbot.addWidget(replacement)
    wait_idle(qtbot, replacement)

    assert not demo_window.isVisible()
    assert replacement.isVisible()
    assert replacement.context.tenant_slug == "acme"
    assert replacement.tenant_combo.currentData() == "acme"
    assert replacement.tickets_page.total_count == 0  # acme has none of the default tenant's tickets
    replacement.close()
    QApplication.processEvents()


def test_drafting_from_the_review_queue_opens_the_editor_and_records_the_decision(
    qtbot, demo_window: MainWindow, analysed_demo: Workspace
) -> None:
    from core.store.models import LinkDecision, Runbook, RunbookStatus, TicketRunbookLink

    page = demo_window.review_page
    demo_window.show_page(0)
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS):
        page.decision_combo.setCurrentIndex(page.decision_combo.findData("generate_runbook"))
    row = page.current_row()
    assert row is not None
    qtbot.waitUntil(
        lambda: page._review is not None and page._review.ticket.id == row.ticket_id, timeout=WAIT_MS
    )
    page.queue_table.setFocus()

    editors_before = open_editors()
    qtbot.keyClick(page.queue_table, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: bool(open_editors() - editors_before), timeout=WAIT_MS)
    (editor,) = open_editors() - editors_before
    assert editor.title_edit.text()  # pre-filled from the ticket

    with qtbot.waitSignal(page.decision_made, timeout=WAIT_MS):
        editor.save()
    with analysed_demo.session_factory()() as session:
        link = session.scalars(
            select(TicketRunbookLink).where(
                TicketRunbookLink.ticket_id == row.ticket_id, TicketRunbookLink.reviewed_at.is_not(None)
            )
        ).one()
        drafted = session.get(Runbook, link.runbook_id)
        assert drafted is not None
        assert drafted.status is RunbookStatus.DRAFT
        assert link.decision is LinkDecision.LINKED
    editor.close()


def open_editors() -> set[object]:
    from desktop.dialogs.runbook_editor import RunbookEditor

    return {w for w in QApplication.topLevelWidgets() if isinstance(w, RunbookEditor) and w.isVisible()}
