"""Save screenshots of the Gaps page (``docs/gaps.png``) and of the HTML gap report (``docs/gap-report.png``).

Run: ``xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots_gaps.py``, about a
minute: the demo is imported and analysed by the window's own background jobs, as on a first ``make run``,
then the Gaps page finds the gaps over the demo's whole range.

The report shot: QtWebEngine (a browser engine) is not in PySide6-Essentials, and ``QTextDocument`` does
not draw SVG. So the report's own HTML is laid out by ``QTextDocument`` (which understands its tables and
text, not its flexbox or print CSS) and each inline SVG chart is rendered by ``QSvgRenderer`` (QtSvg, part
of Essentials) into an image resource the document shows in its place. A browser shows the same content
with the full CSS; the charts are pixel-for-pixel the report's SVG.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from PySide6.QtCore import QByteArray, QDate, QRectF, QSettings, QSizeF, Qt, QUrl
from PySide6.QtGui import QColor, QImage, QPainter, QTextDocument
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication
from screenshots_kit import settle, wait_until

from core.analytics.gap_report import render_html
from core.analytics.gaps import GapReport
from core.store.workspace import Workspace
from desktop.main_window import GAPS_PAGE, MainWindow

DOCS = Path(__file__).resolve().parent.parent / "docs"
REPORT_WIDTH = 1000
REPORT_HEIGHT = 1400


def svg_image(svg: str) -> QImage:
    renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
    if not renderer.isValid():
        raise ValueError("the report contains an SVG that QtSvg cannot read")
    size = renderer.defaultSize()
    image = QImage(size.width() * 2, size.height() * 2, QImage.Format.Format_ARGB32)
    image.setDevicePixelRatio(2.0)
    image.fill(QColor("white"))
    painter = QPainter(image)
    renderer.render(painter, QRectF(0, 0, size.width(), size.height()))
    painter.end()
    return image


def report_image(report: GapReport) -> QImage:
    """The report's first page: its HTML laid out by QTextDocument, its SVG charts drawn by QtSvg."""
    page = render_html(report)
    document = QTextDocument()
    images: list[QImage] = []

    def to_image(match: re.Match[str]) -> str:
        images.append(svg_image(match.group(0)))
        name = f"svg-{len(images)}"
        document.addResource(QTextDocument.ResourceType.ImageResource, QUrl(name), images[-1])
        width, height = match.group(1), match.group(2)
        return f'<img src="{name}" width="{width}" height="{height}">'

    page = re.sub(r'<svg [^>]*?width="(\d+)" height="(\d+)".*?</svg>', to_image, page, flags=re.DOTALL)
    document.setDefaultStyleSheet(re.search(r"<style>(.*?)</style>", page, re.DOTALL).group(1))  # type: ignore[union-attr]
    document.setHtml(page)
    document.setPageSize(QSizeF(REPORT_WIDTH - 40, 10_000))
    image = QImage(REPORT_WIDTH, REPORT_HEIGHT, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.translate(20, 10)
    document.drawContents(painter, QRectF(0, 0, REPORT_WIDTH - 40, REPORT_HEIGHT - 20))
    painter.end()
    return image


def save_image(image: QImage, name: str) -> None:
    path = DOCS / name
    if not image.save(str(path)):
        raise OSError(f"could not write {path}")
    print(f"wrote {path}")


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rd-gap-shots-") as tmp:
        workspace = Workspace.open(Path(tmp) / "demo")
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(workspace, "default", settings=settings)
        window.resize(1500, 900)
        window.show()
        window.start_startup_jobs(seed_demo=True)
        wait_until(app, lambda: not window.runner.active_tasks(), "the demo import and analysis")
        window.notifications.clear()

        window.show_page(GAPS_PAGE)
        page = window.gaps_page
        page.set_range(QDate(2026, 6, 1), QDate(2026, 11, 30))
        page.start_analysis()
        wait_until(app, lambda: page.report is not None and not page.is_running(), "the gap analysis")
        report = page.report
        assert report is not None
        zoom = next((n for n, c in enumerate(report.clusters) if "zoom" in c.label), 0)
        page.select_row(zoom)
        page.table.setFocus(Qt.FocusReason.OtherFocusReason)
        settle(app)
        path = DOCS / "gaps.png"
        if not window.grab().save(str(path)):
            raise OSError(f"could not write {path}")
        print(f"wrote {path}")
        save_image(report_image(report), "gap-report.png")
        window.close()
        workspace.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
