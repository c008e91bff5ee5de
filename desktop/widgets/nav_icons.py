"""The navigation rail's page icons, drawn with QPainter in the palette's text colours.

Why drawn, not files: Qt's standard pixmaps (``QStyle.StandardPixmap``) have no "review queue" or "metrics"
and differ in style from one platform theme to the next; SVG files would need Qt's SVG image plugin in the
frozen build. Seven glyphs of a few strokes each are less than either, render the same offscreen, on screen
and in a screenshot, and take the palette's colours, so they follow a dark theme and the selection.

Each glyph is drawn on a 24 x 24 grid (the painter is scaled to the requested size).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPalette, QPen, QPixmap

GRID = 24.0
PIXMAP_SIZES = (16, 20, 24, 32, 48)

Glyph = Callable[[QPainter], None]


def _review(painter: QPainter) -> None:
    """An in-tray with a tick: the queue of decisions to make."""
    painter.drawRoundedRect(QRectF(3, 5, 18, 15), 2, 2)
    tray = QPainterPath(QPointF(3, 14))
    tray.lineTo(8, 14)
    tray.lineTo(9.5, 16.5)
    tray.lineTo(14.5, 16.5)
    tray.lineTo(16, 14)
    tray.lineTo(21, 14)
    painter.drawPath(tray)
    tick = QPainterPath(QPointF(8.5, 9.5))
    tick.lineTo(11, 11.5)
    tick.lineTo(15.5, 7)
    painter.drawPath(tick)


def _tickets(painter: QPainter) -> None:
    """A ticket stub: notched on both sides, a dashed tear line."""
    stub = QPainterPath(QPointF(3, 6))
    stub.lineTo(21, 6)
    stub.lineTo(21, 10)
    stub.arcTo(QRectF(19, 10, 4, 4), 90, 180)
    stub.lineTo(21, 18)
    stub.lineTo(3, 18)
    stub.lineTo(3, 14)
    stub.arcTo(QRectF(1, 10, 4, 4), 270, 180)
    stub.closeSubpath()
    painter.drawPath(stub)
    pen = painter.pen()
    dashed = QPen(pen)
    dashed.setStyle(Qt.PenStyle.DotLine)
    painter.setPen(dashed)
    painter.drawLine(QPointF(15, 7.5), QPointF(15, 16.5))
    painter.setPen(pen)


def _runbooks(painter: QPainter) -> None:
    """A closed book with a spine and two lines of text."""
    painter.drawRoundedRect(QRectF(5, 3, 14, 18), 1.5, 1.5)
    painter.drawLine(QPointF(8, 3), QPointF(8, 21))
    painter.drawLine(QPointF(11, 8), QPointF(16, 8))
    painter.drawLine(QPointF(11, 11), QPointF(16, 11))


def _gaps(painter: QPainter) -> None:
    """An empty, dashed slot with a plus: a runbook nobody has written yet."""
    pen = painter.pen()
    dashed = QPen(pen)
    dashed.setStyle(Qt.PenStyle.DashLine)
    painter.setPen(dashed)
    painter.drawRoundedRect(QRectF(4, 4, 16, 16), 2, 2)
    painter.setPen(pen)
    painter.drawLine(QPointF(12, 8.5), QPointF(12, 15.5))
    painter.drawLine(QPointF(8.5, 12), QPointF(15.5, 12))


def _connectors(painter: QPainter) -> None:
    """A plug: two prongs, the body, the cable."""
    painter.drawLine(QPointF(9.5, 3), QPointF(9.5, 8))
    painter.drawLine(QPointF(14.5, 3), QPointF(14.5, 8))
    body = QPainterPath(QPointF(6, 8))
    body.lineTo(18, 8)
    body.lineTo(18, 12)
    body.arcTo(QRectF(12, 9, 6, 6), 0, -90)
    body.lineTo(9, 15)
    body.arcTo(QRectF(6, 9, 6, 6), 270, -90)
    body.closeSubpath()
    painter.drawPath(body)
    cable = QPainterPath(QPointF(12, 15))
    cable.cubicTo(QPointF(12, 19), QPointF(16, 18), QPointF(17, 21))
    painter.drawPath(cable)


def _metrics(painter: QPainter) -> None:
    """A bar chart on a base line."""
    painter.drawLine(QPointF(3, 20.5), QPointF(21, 20.5))
    for left, top in ((5, 13), (10.5, 6), (16, 10)):
        painter.drawRect(QRectF(left, top, 3, 20.5 - top))


def _alerts(painter: QPainter) -> None:
    """A bell with its clapper: what is firing now."""
    bell = QPainterPath(QPointF(5, 17))
    bell.lineTo(19, 17)
    bell.cubicTo(QPointF(17, 15), QPointF(17, 13), QPointF(17, 10))
    bell.cubicTo(QPointF(17, 6.5), QPointF(14.8, 4.5), QPointF(12, 4.5))
    bell.cubicTo(QPointF(9.2, 4.5), QPointF(7, 6.5), QPointF(7, 10))
    bell.cubicTo(QPointF(7, 13), QPointF(7, 15), QPointF(5, 17))
    painter.drawPath(bell)
    painter.drawLine(QPointF(12, 2.5), QPointF(12, 4.5))
    painter.drawArc(QRectF(10, 17.5, 4, 3.5), 180 * 16, 180 * 16)


def _members(painter: QPainter) -> None:
    """Two people, one behind the other: the team (team mode's Members page)."""
    painter.drawEllipse(QRectF(6, 4, 6, 6))
    painter.drawArc(QRectF(3, 12, 12, 10), 0, 180 * 16)
    painter.drawArc(QRectF(13, 5, 5, 5), 300 * 16, 250 * 16)
    painter.drawArc(QRectF(14, 12.5, 8, 8), 0, 110 * 16)


GLYPHS: dict[str, Glyph] = {
    "review": _review,
    "alerts": _alerts,
    "tickets": _tickets,
    "runbooks": _runbooks,
    "gaps": _gaps,
    "connectors": _connectors,
    "metrics": _metrics,
    "members": _members,
}


def _pixmap(glyph: Glyph, size: int, color: QColor, device_pixel_ratio: float) -> QPixmap:
    pixmap = QPixmap(round(size * device_pixel_ratio), round(size * device_pixel_ratio))
    pixmap.setDevicePixelRatio(device_pixel_ratio)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.scale(size / GRID, size / GRID)
        pen = QPen(color, 1.6)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        glyph(painter)
    finally:
        painter.end()
    return pixmap


def nav_icon(name: str, palette: QPalette, device_pixel_ratio: float = 1.0) -> QIcon:
    """The icon called ``name`` (a key of :data:`GLYPHS`): the palette's text colour, and its highlighted
    text colour for a selected item (list views ask for the icon's Selected mode)."""
    glyph = GLYPHS[name]
    icon = QIcon()
    modes = (
        (QIcon.Mode.Normal, palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Text)),
        (QIcon.Mode.Selected, palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.HighlightedText)),
        (QIcon.Mode.Disabled, palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)),
    )
    for mode, color in modes:
        for size in PIXMAP_SIZES:
            icon.addPixmap(_pixmap(glyph, size, color, device_pixel_ratio), mode)
    return icon
