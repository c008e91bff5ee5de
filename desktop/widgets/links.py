"""The one link allow-list: which links from rendered text the app follows, and the browsers that apply it.

Ticket descriptions, runbook bodies and match sections come from external systems and from anyone who can
write a runbook. A ``file:`` link, a custom URL handler or a relative link resolved against a local folder in
such text would let it open or run local things with one click. So every rich-text view opens only web and
mail links, and only through :func:`open_link`; a link that does not pass is logged, never followed. Keep the
rule here: a second copy is a second place to forget when it changes.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QTextBrowser, QWidget

log = logging.getLogger(__name__)

LINK_SCHEMES = frozenset({"http", "https", "mailto"})


def is_allowed_link(url: QUrl) -> bool:
    return url.scheme().lower() in LINK_SCHEMES


def safe_link(url: str | None) -> str | None:
    """``url`` when rendered text may show it as a link; None for anything outside the allow-list."""
    if url and is_allowed_link(QUrl(url)):
        return url
    return None


def open_link(url: QUrl) -> None:
    """Open a clicked link in the system's browser or mail program, if the allow-list lets it."""
    if is_allowed_link(url):
        QDesktopServices.openUrl(url)
    else:
        log.info("not opening link %s: only %s links open", url.toString(), ", ".join(sorted(LINK_SCHEMES)))


def link_safe_browser(parent: QWidget, object_name: str) -> QTextBrowser:
    """A read-only rich-text view whose links go through :func:`open_link`."""
    browser = QTextBrowser(parent)
    browser.setObjectName(object_name)
    restrict_links(browser)
    return browser


def restrict_links(browser: QTextBrowser) -> None:
    """Route ``browser``'s link clicks through :func:`open_link` (it would otherwise load relative links as
    documents itself)."""
    browser.setOpenLinks(False)
    browser.anchorClicked.connect(open_link)
