"""A Pareto chart of the gaps: each gap's impact as a bar, highest first, and the cumulative share as a line.

Drawn with ``QPainter``: QtCharts is not in PySide6-Essentials and would grow the installer for one chart.
"""

from __future__ import annotations

import itertools

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QWidget

from core.analytics.gaps import GapCluster

BAR_COLOUR = QColor("#3b6ea8")
SELECTED_BAR_COLOUR = QColor("#f0a030")
LINE_COLOUR = QColor("#c0392b")


class ParetoChart(QWidget):
    """Bars: each gap's impact, highest first; line: cumulative share (right axis). Click a bar to select."""

    bar_clicked = Signal(int)  # row in the ranked list

    MAX_BARS = 15

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._clusters: tuple[GapCluster, ...] = ()
        self._selected: int | None = None
        self.setMinimumHeight(170)
        self.setToolTip("Impact per gap (bars) and cumulative share of the total impact (line)")

    def sizeHint(self) -> QSize:
        return QSize(600, 200)

    def set_clusters(self, clusters: tuple[GapCluster, ...]) -> None:
        self._clusters = clusters[: self.MAX_BARS]
        self._selected = None
        self.update()

    def set_selected(self, row: int | None) -> None:
        self._selected = row
        self.update()

    def _plot_rect(self) -> QRectF:
        return QRectF(44, 10, max(self.width() - 88, 10), max(self.height() - 34, 10))

    def bar_rects(self) -> list[QRectF]:
        plot = self._plot_rect()
        if not self._clusters:
            return []
        peak = max(c.impact for c in self._clusters) or 1.0
        slot = plot.width() / len(self._clusters)
        rects = []
        for number, cluster in enumerate(self._clusters):
            height = plot.height() * cluster.impact / peak
            rects.append(
                QRectF(plot.left() + slot * number + slot * 0.15, plot.bottom() - height, slot * 0.7, height)
            )
        return rects

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))
        text_colour = palette.color(QPalette.ColorRole.Text)
        plot = self._plot_rect()
        font = QFont(self.font())
        font.setPointSizeF(max(font.pointSizeF() - 1, 6))
        painter.setFont(font)
        if not self._clusters:
            painter.setPen(text_colour)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No gaps to chart")
            painter.end()
            return
        painter.setPen(QPen(text_colour, 1))
        painter.drawLine(plot.bottomLeft(), plot.bottomRight())
        painter.drawLine(plot.topLeft(), plot.bottomLeft())
        painter.drawLine(plot.topRight(), plot.bottomRight())
        peak = max(c.impact for c in self._clusters)
        metrics = painter.fontMetrics()
        for fraction in (0.0, 0.5, 1.0):
            y = plot.bottom() - plot.height() * fraction
            painter.drawText(
                QRectF(0, y - 8, plot.left() - 4, 16),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                f"{peak * fraction:,.0f}",
            )
        painter.setPen(LINE_COLOUR)
        for percent in (0, 50, 80, 100):
            y = plot.bottom() - plot.height() * percent / 100
            painter.drawText(QPointF(plot.right() + 4, y + metrics.ascent() / 2), f"{percent}%")
        dashed = QPen(LINE_COLOUR, 1, Qt.PenStyle.DashLine)
        painter.setPen(dashed)
        y80 = plot.bottom() - plot.height() * 0.8
        painter.drawLine(QPointF(plot.left(), y80), QPointF(plot.right(), y80))
        painter.setPen(Qt.PenStyle.NoPen)
        points = []
        for number, (cluster, rect) in enumerate(zip(self._clusters, self.bar_rects(), strict=True)):
            painter.setBrush(SELECTED_BAR_COLOUR if number == self._selected else BAR_COLOUR)
            painter.drawRect(rect)
            points.append(
                QPointF(rect.center().x(), plot.bottom() - plot.height() * cluster.cumulative_share)
            )
        painter.setPen(text_colour)
        for cluster, rect in zip(self._clusters, self.bar_rects(), strict=True):
            painter.drawText(
                QRectF(rect.left() - 6, plot.bottom() + 2, rect.width() + 12, 16),
                Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                f"#{cluster.rank}",
            )
        painter.setPen(QPen(LINE_COLOUR, 2))
        for start, end in itertools.pairwise(points):
            painter.drawLine(start, end)
        painter.setBrush(LINE_COLOUR)
        for point in points:
            painter.drawEllipse(point, 3, 3)
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        position = event.position()
        for number, rect in enumerate(self.bar_rects()):
            column = QRectF(rect.left(), self._plot_rect().top(), rect.width(), self._plot_rect().height())
            if column.contains(position):
                self.bar_clicked.emit(number)
                return
        super().mousePressEvent(event)
