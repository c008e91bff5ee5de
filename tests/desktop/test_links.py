"""The link allow-list: one rule, and every pane that renders external or authored text follows it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, QUrl
from PySide6.QtWidgets import QTextBrowser

from core.store.workspace import Workspace
from desktop import main_window
from desktop.dialogs.runbook_editor import RunbookEditor
from desktop.widgets import links

ALLOWED = ("https://sn.example/INC1", "http://wiki.example/vpn", "mailto:desk@example.com")
REFUSED = ("file:///etc/passwd", "javascript:alert(1)", "smb://share/x", "vscode://open", "runbooks/local.md")


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What reached the system's URL handler (replaced: a test must never open a browser)."""
    urls: list[str] = []

    class FakeDesktopServices:
        @staticmethod
        def openUrl(url: QUrl) -> bool:
            urls.append(url.toString())
            return True

    monkeypatch.setattr(links, "QDesktopServices", FakeDesktopServices)
    return urls


@pytest.fixture
def window(qtbot, workspace: Workspace, tmp_path: Path) -> Iterator[main_window.MainWindow]:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    shown = main_window.MainWindow(workspace, "default", settings=settings)
    qtbot.addWidget(shown)
    yield shown
    shown.close()


def test_safe_link_keeps_web_and_mail_links_only() -> None:
    for url in ALLOWED:
        assert links.safe_link(url) == url
    for url in (*REFUSED, "", None):
        assert links.safe_link(url) is None


def test_open_link_opens_allowed_links_and_logs_the_rest(
    qapp: object, opened: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger=links.__name__)
    for url in (*ALLOWED, *REFUSED):
        links.open_link(QUrl(url))
    assert opened == [QUrl(url).toString() for url in ALLOWED]
    assert "file:///etc/passwd" in caplog.text


def test_every_rich_text_pane_follows_the_allow_list(
    qtbot, window: main_window.MainWindow, opened: list[str]
) -> None:
    editor = RunbookEditor(window.context, parent=window)
    qtbot.addWidget(editor)
    review = window.review_page
    panes: list[QTextBrowser] = [
        window.tickets_page.detail,
        window.runbooks_page.detail,
        review.ticket_view,
        review.similar_view,
        review.match_view,
        window.gaps_page.detail,
        editor.preview,
    ]
    for pane in panes:
        assert not pane.openLinks(), pane.objectName()  # else Qt would follow relative links itself
        opened.clear()
        for url in (*REFUSED, ALLOWED[0]):
            pane.anchorClicked.emit(QUrl(url))
        assert opened == [ALLOWED[0]], pane.objectName()
    editor.close()
