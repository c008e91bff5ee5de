"""The navigation rail (issue 16, item 10): page icons, and counts as a mail client shows unread mail: tickets
needing review, open alerts, failing connectors. Counted off the GUI thread, refreshed when the store changes.
Real window over the analysed demo, real SQLite, headless Qt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, QSize, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from core.analytics.health_alerts import RULE_TITLES, AlertRule
from core.matching.embedding import SentenceTransformerEmbedder
from core.store.models import AnalysisDecision, ConnectorConfig, HealthAlert
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from core.workflow.review import queue_counts
from desktop.main_window import (
    CONNECTORS_PAGE,
    METRICS_PAGE,
    PAGE_BADGE_RESERVES,
    PAGE_ICONS,
    PAGE_TITLES,
    REVIEW_PAGE,
    TICKETS_PAGE,
    MainWindow,
)
from desktop.widgets.nav_icons import nav_icon
from desktop.widgets.nav_rail import BadgeTone, NavRail

WAIT_MS = 30_000


@pytest.fixture
def window(
    qtbot: QtBot, analysed_demo: Workspace, embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> Iterator[MainWindow]:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    main_window = MainWindow(analysed_demo, "default", settings=settings, embedder_factory=lambda: embedder)
    qtbot.addWidget(main_window)
    main_window.resize(1280, 800)
    main_window.show()
    qtbot.waitExposed(main_window)
    qtbot.waitUntil(lambda: main_window.attention is not None, timeout=WAIT_MS)
    yield main_window
    main_window.close()


def needs_review(sessions: sessionmaker[TenantSession]) -> int:
    with sessions() as session:
        return queue_counts(session)[AnalysisDecision.FLAG_REVIEW]


def badge_count(rail: NavRail, row: int) -> int:
    badge = rail.badge(row)
    return 0 if badge is None else badge.count


def icon_image(rail: NavRail, row: int) -> QImage:
    return rail.item(row).icon().pixmap(QSize(20, 20)).toImage()


def test_every_page_has_its_title_and_an_icon_of_its_own(window: MainWindow) -> None:
    rail = window.nav_list
    assert [rail.item(row).text() for row in range(rail.count())] == list(PAGE_TITLES)
    assert all(not rail.item(row).icon().isNull() for row in range(rail.count()))
    images = [icon_image(rail, row) for row in range(rail.count())]
    assert all(a != b for n, a in enumerate(images) for b in images[n + 1 :])  # six different glyphs
    assert all(rail.row_is_whole(row) for row in range(rail.count()))


def test_the_review_badge_counts_tickets_needing_review_and_follows_decisions(
    qtbot: QtBot, window: MainWindow, analysed_demo: Workspace
) -> None:
    sessions = window.context.sessions
    rail = window.nav_list
    expected = needs_review(sessions)
    assert expected > 0  # the demo has tickets flagged for review
    qtbot.waitUntil(lambda: badge_count(rail, REVIEW_PAGE) == expected, timeout=WAIT_MS)
    badge = rail.badge(REVIEW_PAGE)
    assert badge is not None and badge.tone is BadgeTone.COUNT
    assert f"{expected} need review" in badge.description
    assert rail.item(REVIEW_PAGE).toolTip() == badge.description
    assert rail.badge(TICKETS_PAGE) is None  # pages without counts show none

    # Approving the first ticket of the queue (a flagged one: review comes first) takes one off the count.
    page = window.review_page
    window.show_page(REVIEW_PAGE)
    qtbot.waitUntil(lambda: page.current_row() is not None, timeout=WAIT_MS)
    row = page.current_row()
    assert row is not None and row.decision is AnalysisDecision.FLAG_REVIEW
    qtbot.waitUntil(
        lambda: page._review is not None and page._review.ticket.id == row.ticket_id, timeout=WAIT_MS
    )
    with qtbot.waitSignal(page.decision_made, timeout=WAIT_MS):
        page.approve_button.click()
    assert needs_review(sessions) == expected - 1
    qtbot.waitUntil(lambda: badge_count(rail, REVIEW_PAGE) == expected - 1, timeout=WAIT_MS)


def test_open_alerts_and_failing_connectors_show_as_red_badges(qtbot: QtBot, window: MainWindow) -> None:
    rail = window.nav_list
    sessions = window.context.sessions
    with sessions.begin() as session:
        session.add(ConnectorConfig(connector_type="servicenow", name="prod-sn", consecutive_failures=3))
    with qtbot.waitSignal(window.metrics_page.alerts_evaluated, timeout=WAIT_MS):
        window.metrics_page.evaluate_alerts()  # the three failures raise the sync alert
    with sessions() as session:
        open_alerts = session.scalar(
            select(func.count()).select_from(HealthAlert).where(HealthAlert.cleared_at.is_(None))
        )
    assert open_alerts  # at least the sync failure
    qtbot.waitUntil(lambda: badge_count(rail, METRICS_PAGE) == open_alerts, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: badge_count(rail, CONNECTORS_PAGE) == 1, timeout=WAIT_MS)
    alerts_badge, connectors_badge = rail.badge(METRICS_PAGE), rail.badge(CONNECTORS_PAGE)
    assert alerts_badge is not None and alerts_badge.tone is BadgeTone.ALERT
    assert RULE_TITLES[AlertRule.SYNC_FAILURES] in alerts_badge.description
    assert connectors_badge is not None and connectors_badge.tone is BadgeTone.ALERT
    assert "prod-sn" in connectors_badge.description

    # Mended (a successful sync resets the count): both badges go at the next evaluation.
    with sessions.begin() as session:
        config = session.scalars(select(ConnectorConfig)).one()
        config.consecutive_failures = 0
    with qtbot.waitSignal(window.metrics_page.alerts_evaluated, timeout=WAIT_MS):
        window.metrics_page.evaluate_alerts()
    qtbot.waitUntil(lambda: rail.badge(CONNECTORS_PAGE) is None, timeout=WAIT_MS)
    with sessions() as session:
        still_open = session.scalar(
            select(func.count()).select_from(HealthAlert).where(HealthAlert.cleared_at.is_(None))
        )
    qtbot.waitUntil(lambda: badge_count(rail, METRICS_PAGE) == still_open, timeout=WAIT_MS)


def test_counts_never_change_the_rail_width_or_clip_a_title(qtbot: QtBot) -> None:
    host = QWidget()
    rail = NavRail(
        PAGE_TITLES, [nav_icon(name, host.palette()) for name in PAGE_ICONS], PAGE_BADGE_RESERVES, host
    )
    qtbot.addWidget(host)
    host.resize(400, 400)
    host.show()
    qtbot.waitExposed(host)
    width = rail.width()
    assert rail.minimumWidth() == rail.maximumWidth() == width  # as wide as its rows need, never more
    rail.set_badge(REVIEW_PAGE, 123_456, BadgeTone.COUNT, "many")  # shows "999+", the widest it reserves
    rail.set_badge(CONNECTORS_PAGE, 42, BadgeTone.ALERT, "forty-two failing")
    rail.set_badge(METRICS_PAGE, 17, BadgeTone.ALERT, "seventeen alerts")
    qtbot.wait(20)
    badge = rail.badge(REVIEW_PAGE)
    assert badge is not None and badge.text == "999+"
    assert rail.width() == width
    assert all(rail.row_is_whole(row) for row in range(rail.count()))
    assert (
        rail.item(CONNECTORS_PAGE).data(Qt.ItemDataRole.AccessibleTextRole) == "Connectors: forty-two failing"
    )
    rail.set_badge(REVIEW_PAGE, 0, BadgeTone.COUNT, "")
    assert rail.badge(REVIEW_PAGE) is None  # zero shows nothing, as a mail client does
