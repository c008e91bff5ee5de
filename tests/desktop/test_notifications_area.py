"""The first start (issue 16, item 3): the window opens on the Review queue, and notifications take one
banner's height, the newest shown and the rest behind a "+N more" count."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from core.store.workspace import Workspace
from desktop.main_window import REVIEW_PAGE, MainWindow
from desktop.widgets.notifications import Level, NotificationArea


@pytest.fixture
def area(qtbot: QtBot) -> Iterator[NotificationArea]:
    host = QWidget()  # the area shows and hides itself inside a shown window
    qtbot.addWidget(host)
    widget = NotificationArea(host)
    host.show()
    yield widget  # host stays referenced until the test ends
    host.close()


def shown_texts(area: NotificationArea) -> list[str]:
    return [n.text for n in area.shown_notifications()]


def test_three_notifications_show_the_newest_and_a_count(qtbot: QtBot, area: NotificationArea) -> None:
    assert area.isHidden()  # nothing to say: no empty strip above the page
    for text in ("Imported 348 tickets", "Analysed 348 tickets", "Alert: Many unlinked tickets"):
        area.notify(Level.INFO, text)
    assert shown_texts(area) == ["Alert: Many unlinked tickets"]
    assert area.more_button.isVisible() and area.more_button.text() == "+2 more"
    assert [n.text for n in area.notifications()] == [
        "Alert: Many unlinked tickets",
        "Analysed 348 tickets",
        "Imported 348 tickets",
    ]

    area.more_button.click()  # the count expands to the list
    assert area.expanded
    assert shown_texts(area) == [n.text for n in area.notifications()]
    area.more_button.click()
    assert shown_texts(area) == ["Alert: Many unlinked tickets"]
    assert area.more_button.text() == "+2 more"


def test_dismissing_one_brings_the_next_forward_and_dismiss_all_empties_the_area(
    qtbot: QtBot, area: NotificationArea
) -> None:
    first = area.notify(Level.INFO, "first")
    area.notify(Level.INFO, "second")
    newest = area.notify(Level.INFO, "third")
    newest.dismissed.emit(newest)  # its ✕ button
    assert shown_texts(area) == ["second"]
    assert area.more_button.text() == "+1 more"

    area.set_expanded(True)
    area.dismiss(first)  # nothing left behind the count: the area collapses and the controls go
    assert not area.expanded
    assert shown_texts(area) == ["second"]
    assert not area.more_button.isVisible() and not area.dismiss_all_button.isVisible()

    area.notify(Level.INFO, "fourth")
    area.notify(Level.INFO, "fifth")
    assert area.dismiss_all_button.isVisible()
    area.dismiss_all_button.click()
    assert area.notifications() == []
    assert area.isHidden()


def test_an_error_behind_the_count_is_named_and_keeps_its_details(
    qtbot: QtBot, area: NotificationArea
) -> None:
    error = area.notify(Level.ERROR, "Import failed: not-tickets.csv", "Traceback (most recent call last): …")
    area.notify(Level.INFO, "Analysed 2 tickets")
    assert area.more_button.text() == "+1 more · 1 error"
    area.notify(Level.ALERT, "Critical incident MON-3: db01: Disk full")
    area.notify(Level.INFO, "Analysed 3 tickets")
    assert area.more_button.text() == "+3 more · 1 error · 1 alert"  # an alert is not Runbook Desk failing
    assert error.isHidden()

    area.set_expanded(True)
    assert not error.isHidden()
    error.details_button.click()
    box = error.findChild(QMessageBox)
    assert box is not None and box.detailedText().startswith("Traceback")
    box.close()


def test_a_new_notification_while_expanded_keeps_the_list_open(area: NotificationArea) -> None:
    area.notify(Level.INFO, "one")
    area.notify(Level.INFO, "two")
    area.set_expanded(True)
    area.notify(Level.INFO, "three")
    assert shown_texts(area) == ["three", "two", "one"]


# --- in the window --------------------------------------------------------------------------------------


@pytest.fixture
def window(qtbot: QtBot, workspace: Workspace, tmp_path: Path) -> Iterator[MainWindow]:
    settings = QSettings(str(tmp_path / "first-start.ini"), QSettings.Format.IniFormat)  # never opened before
    main_window = MainWindow(workspace, "default", settings=settings)
    qtbot.addWidget(main_window)
    main_window.show()
    qtbot.waitExposed(main_window)
    yield main_window
    main_window.close()  # stops its workers before the workspace fixture disposes the engine


def test_the_first_start_opens_on_the_review_queue(window: MainWindow) -> None:
    assert window.current_page() is window.review_page
    assert window.nav_list.currentRow() == REVIEW_PAGE


def test_the_window_stacks_no_banners(window: MainWindow) -> None:
    window.notifications.notify(Level.INFO, "Demo workspace ready")
    window.notifications.notify(Level.INFO, "Analysed 348 tickets")
    window.notifications.notify(Level.ERROR, "Alert: Many unlinked tickets")
    assert shown_texts(window.notifications) == ["Alert: Many unlinked tickets"]
    assert window.notifications.more_button.text().startswith("+2")
