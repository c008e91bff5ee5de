"""Keyboard safety (issue 16, item 1): Ctrl+F, Tab, Ctrl+Tab and Ctrl+, on the real window over the analysed
demo, with key events sent to the focused widget as a user's key press arrives.

The review page acts on single letters (A approves, D opens a draft editor): whatever a key combination
does with the focus, the letters typed next must never decide anything behind the analyst's back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from core.matching.embedding import SentenceTransformerEmbedder
from core.store.models import AuditEvent, TicketRunbookLink
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from desktop.dialogs.settings import SettingsDialog
from desktop.main_window import (
    ALERTS_PAGE,
    CONNECTORS_PAGE,
    GAPS_PAGE,
    METRICS_PAGE,
    PAGE_TITLES,
    REVIEW_PAGE,
    RUNBOOKS_PAGE,
    TICKETS_PAGE,
    MainWindow,
)
from desktop.widgets.browse import HasFilterBox

WAIT_MS = 20_000
NO_MODIFIER = Qt.KeyboardModifier.NoModifier
CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def window(
    qtbot: QtBot, analysed_demo: Workspace, embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> Iterator[MainWindow]:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    main_window = MainWindow(analysed_demo, "default", settings=settings, embedder_factory=lambda: embedder)
    qtbot.addWidget(main_window)
    main_window.resize(1500, 900)
    page = main_window.review_page
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS):
        main_window.show()
        main_window.show_page(REVIEW_PAGE)
    qtbot.waitExposed(main_window)
    main_window.activateWindow()
    qtbot.waitUntil(main_window.isActiveWindow)
    row = page.current_row()
    assert row is not None
    qtbot.waitUntil(
        lambda: page._review is not None and page._review.ticket.id == row.ticket_id, timeout=WAIT_MS
    )
    page.queue_table.setFocus()
    qtbot.waitUntil(page.queue_table.hasFocus)
    yield main_window
    for dialog in main_window.findChildren(SettingsDialog):
        dialog.reject()
    main_window.close()


def focused() -> QWidget:
    widget = QApplication.focusWidget()
    assert widget is not None, "nothing has the keyboard"
    return widget


def press(key: Qt.Key, modifier: Qt.KeyboardModifier = NO_MODIFIER) -> None:
    QTest.keyClick(focused(), key, modifier)  # what qtbot.keyClick does; typed


def type_text(text: str) -> None:
    for character in text:
        QTest.keyClicks(focused(), character)


def decisions_in_store(sessions: sessionmaker[TenantSession]) -> tuple[int, int]:
    """(audited review actions, reviewed links): both stay 0 while nothing was decided."""
    with sessions() as session:
        audited = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action.like("review.%"))
        )
        reviewed = session.scalar(
            select(func.count())
            .select_from(TicketRunbookLink)
            .where(TicketRunbookLink.reviewed_at.is_not(None))
        )
    return audited or 0, reviewed or 0


def filter_box_of(window: MainWindow, page_number: int) -> QWidget:
    return {
        REVIEW_PAGE: window.review_page.search_edit,
        ALERTS_PAGE: window.alerts_page.filter_edit,
        TICKETS_PAGE: window.tickets_page.search_edit,
        RUNBOOKS_PAGE: window.runbooks_page.search_edit,
        GAPS_PAGE: window.gaps_page.filter_edit,
        CONNECTORS_PAGE: window.connectors_page.filter_edit,
        METRICS_PAGE: window.metrics_page.range_combo,
    }[page_number]


def test_ctrl_f_focuses_the_filter_box_on_every_page(qtbot: QtBot, window: MainWindow) -> None:
    for page_number in range(len(PAGE_TITLES)):
        window.show_page(page_number)
        page = window.current_page()
        assert isinstance(page, HasFilterBox), PAGE_TITLES[page_number]
        window.nav_list.setFocus()  # arriving from the navigation, as a mouse user does
        qtbot.waitUntil(window.nav_list.hasFocus)
        press(Qt.Key.Key_F, CTRL)
        box = filter_box_of(window, page_number)
        qtbot.waitUntil(box.hasFocus, timeout=2000)
        assert box.isVisible(), PAGE_TITLES[page_number]


def test_letters_typed_after_ctrl_f_filter_the_queue_and_decide_nothing(
    qtbot: QtBot, window: MainWindow, analysed_demo: Workspace
) -> None:
    sessions = analysed_demo.session_factory("default")
    page = window.review_page
    before = decisions_in_store(sessions)
    drafts: list[object] = []
    page.draft_requested.connect(lambda draft, _ticket: drafts.append(draft))
    press(Qt.Key.Key_F, CTRL)
    qtbot.waitUntil(page.search_edit.hasFocus, timeout=2000)
    with qtbot.waitSignal(page.queue_loaded, timeout=WAIT_MS):
        type_text("dara")  # D drafts, A approves, R rejects on the queue
    assert page.search_edit.text() == "dara"
    type_text(" ljk12[]")
    assert page.search_edit.text() == "dara ljk12[]"
    qtbot.wait(100)
    assert decisions_in_store(sessions) == before == (0, 0)
    assert drafts == []
    assert page.active_dialog is None
    assert window.runbooks_page.open_editors() == ()


def test_tab_moves_from_the_queue_to_the_next_pane_and_keeps_the_ticket(
    qtbot: QtBot, window: MainWindow
) -> None:
    page = window.review_page
    selected = page.current_row()
    assert selected is not None
    visited = []
    for _ in range(4):
        press(Qt.Key.Key_Tab)
        visited.append(focused())
        assert page.current_row() == selected
    assert visited[0] is not page.queue_table
    assert visited[:3] == [page.ticket_view, page.similar_view, page.match_table]
    assert page.queue_table.currentIndex().column() == 0  # Number and Title stay in view
    press(Qt.Key.Key_Backtab, Qt.KeyboardModifier.ShiftModifier)
    assert focused() is visited[2]


def on_screen(widget: QWidget) -> bool:
    """Visible and not wholly covered (a scroll area under its viewport shows no focus at all)."""
    return widget.isVisible() and not widget.visibleRegion().isEmpty()


def focusable_widgets(page: QWidget) -> list[QWidget]:
    return [
        widget
        for widget in page.findChildren(QWidget)
        if widget.focusPolicy() & Qt.FocusPolicy.TabFocus
        and widget.focusProxy() is None
        and on_screen(widget)
    ]


@pytest.mark.parametrize("page_number", range(len(PAGE_TITLES)), ids=PAGE_TITLES)
def test_tab_and_ctrl_tab_never_leave_the_focus_on_an_invisible_widget(
    qtbot: QtBot, window: MainWindow, page_number: int
) -> None:
    window.show_page(page_number)
    page = window.current_page()
    assert page is not None
    window.nav_list.setFocus()
    qtbot.waitUntil(window.nav_list.hasFocus)
    visited: set[int] = set()
    for step in range(200):  # once round the whole window: navigation, tool bar, the page's widgets
        press(Qt.Key.Key_Tab)
        assert on_screen(focused()), (step, type(focused()).__name__, focused().objectName())
        if focused() is window.nav_list:
            break
        visited.add(id(focused()))
    else:
        pytest.fail("Tab never came back round to the navigation")
    assert len(visited) >= 3

    next_page = (page_number + 1) % len(PAGE_TITLES)
    for start in focusable_widgets(page):
        window.show_page(page_number)
        start.setFocus()  # a spin box's line edit hands the focus to its spin box
        qtbot.waitUntil(lambda: page.isAncestorOf(focused()), timeout=2000)
        press(Qt.Key.Key_Tab, CTRL)  # the next page, as tabs elsewhere
        assert window.stack.currentIndex() == next_page, start.objectName()
        assert on_screen(focused()), (start.objectName(), type(focused()).__name__)
        shown = window.current_page()
        assert shown is not None and shown.isAncestorOf(focused()), start.objectName()
        press(Qt.Key.Key_Backtab, CTRL | Qt.KeyboardModifier.ShiftModifier)
        assert window.stack.currentIndex() == page_number
        assert on_screen(focused()) and page.isAncestorOf(focused()), start.objectName()


def test_ctrl_comma_opens_settings(qtbot: QtBot, window: MainWindow) -> None:
    assert window.findChildren(SettingsDialog) == []
    press(Qt.Key.Key_Comma, CTRL)
    qtbot.waitUntil(lambda: any(d.isVisible() for d in window.findChildren(SettingsDialog)), timeout=2000)
