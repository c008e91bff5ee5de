"""A compact time-series line chart drawn with QPainter: the Metrics page's small multiples.

Why not QtCharts or a plot library: QtCharts ships in PySide6-Addons, which would add hundreds of MB to the
installer for nine small charts; pyqtgraph is small but brings its own Qt shim, numpy plumbing and
interaction model (pan, zoom, context menus) that these read-only charts do not want, and one more
dependency to freeze. What the page needs is a few lines over at most a few hundred buckets, gaps where a
rate has no data, a goal line, a legend and a hover readout; that is this file, and it renders the same on
screen, offscreen and in a screenshot.

The goal line's label ("review threshold 0.50") sits in the legend row above the plot, beside a dashed
swatch, never on the line itself: drawn next to the line it was crossed by the data whenever the data ran
near the goal, which is exactly when it matters (issue 16).

The widget holds plain data (:class:`ChartData`) and never reads the store.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QMouseEvent, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
SERIES_COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
MARKER_LIMIT = 60  # above this many buckets the points are not marked, only joined

ValueFormat = Callable[[float], str]


@dataclass(frozen=True, slots=True)
class ChartLine:
    label: str
    values: tuple[float | None, ...]  # one per bucket; None: no data (the line breaks)


@dataclass(frozen=True, slots=True)
class ChartData:
    title: str
    buckets: tuple[datetime, ...]
    bucket_label: Callable[[datetime], str]
    lines: tuple[ChartLine, ...]
    value_format: ValueFormat
    fixed_max: float | None = None  # shares: 1.0, so 40 % always looks like 40 %
    goal: float | None = None
    goal_label: str = ""
    whole_numbers: bool = False  # counts: axis ticks at whole numbers (no "0.2 failed runs")


NICE_STEPS = (1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def nice_ceiling(value: float, steps: tuple[float, ...] = (1.0, 2.0, 2.5, 5.0, 10.0)) -> float:
    """The smallest step x 10^n at or above ``value`` (axis maxima and tick steps people read at a glance)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in steps:
        candidate = step * 10.0**exponent
        if candidate >= value - 1e-12:
            return candidate
    return 10.0 ** (exponent + 1)  # pragma: no cover - the loop always returns


GOAL_COLOR = "#b3261e"


class LineChart(QWidget):
    LEFT, RIGHT, TOP, BOTTOM = 52, 14, 32, 26
    LEGEND_HEIGHT = 18
    LEGEND_Y = 22.0
    SWATCH_WIDTH = 16  # the goal's dashed sample line in the legend
    Y_TICKS = 4

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._data: ChartData | None = None
        self.setMouseTracking(True)
        self.setMinimumSize(260, 190)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(380, 220)

    @property
    def data(self) -> ChartData | None:
        return self._data

    def set_data(self, data: ChartData) -> None:
        self._data = data
        self.setAccessibleName(data.title)
        self.setAccessibleDescription(self.summary())
        self.update()

    def summary(self) -> str:
        """The chart in words (accessibility, tooltips in tests): each line's latest value."""
        data = self._data
        if data is None:
            return ""
        parts = []
        for line in data.lines:
            known = [v for v in line.values if v is not None]
            latest = data.value_format(known[-1]) if known else "no data"
            parts.append(f"{line.label or data.title}: latest {latest}")
        return "; ".join(parts)

    # --- geometry -----------------------------------------------------------------------------------------

    def plot_rect(self) -> QRectF:
        return QRectF(
            self.LEFT,
            self.TOP + (self.LEGEND_HEIGHT if self.has_legend() else 0),
            max(1.0, self.width() - self.LEFT - self.RIGHT),
            max(
                1.0, self.height() - self.TOP - self.BOTTOM - (self.LEGEND_HEIGHT if self.has_legend() else 0)
            ),
        )

    def has_legend(self) -> bool:
        """A legend row when lines need telling apart (several, or one named after a group) or a goal
        line needs its label."""
        return self.names_lines() or bool(self._data is not None and self._data.goal_label)

    def names_lines(self) -> bool:
        data = self._data
        return data is not None and (len(data.lines) > 1 or bool(data.lines and data.lines[0].label))

    def goal_label_rect(self) -> QRectF | None:
        """Where the goal's label is drawn: right-aligned in the legend row, above the plot (None when the
        chart has no labelled goal)."""
        data = self._data
        if data is None or data.goal is None or not data.goal_label:
            return None
        width = QFontMetrics(self.font()).horizontalAdvance(data.goal_label) + 2
        right = self.width() - 8
        return QRectF(right - width, self.LEGEND_Y, width, 16)

    def y_max(self) -> float:
        data = self._data
        if data is None:
            return 1.0
        if data.fixed_max is not None:
            return data.fixed_max
        highest = max((v for line in data.lines for v in line.values if v is not None), default=0.0)
        if data.goal is not None:
            highest = max(highest, data.goal)
        # A round tick step, not a round maximum: 348 gets ticks of 100 up to 400, 190 ticks of 50.
        step = nice_ceiling(highest * 1.05 / self.Y_TICKS, NICE_STEPS) if highest > 0 else 1.0 / self.Y_TICKS
        if data.whole_numbers:
            step = max(1.0, math.ceil(step))
        return step * self.Y_TICKS

    def x_at(self, index: int) -> float:
        rect = self.plot_rect()
        count = len(self._data.buckets) if self._data else 0
        if count <= 1:
            return rect.center().x()
        return rect.left() + rect.width() * index / (count - 1)

    def y_at(self, value: float) -> float:
        rect = self.plot_rect()
        return rect.bottom() - rect.height() * min(value, self.y_max()) / self.y_max()

    def bucket_at(self, x: float) -> int | None:
        data = self._data
        if data is None or not data.buckets:
            return None
        count = len(data.buckets)
        if count == 1:
            return 0
        rect = self.plot_rect()
        position = (x - rect.left()) / rect.width() * (count - 1)
        return max(0, min(count - 1, round(position)))

    # --- painting -----------------------------------------------------------------------------------------

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            self._paint(painter)
        finally:
            painter.end()

    def _paint(self, painter: QPainter) -> None:
        palette = self.palette()
        text_color = palette.color(palette.ColorRole.WindowText)
        grid_color = QColor(text_color)
        grid_color.setAlpha(40)
        painter.fillRect(self.rect(), palette.color(palette.ColorRole.Base))
        data = self._data
        metrics = QFontMetrics(self.font())
        title_font = self.font()
        title_font.setBold(True)
        painter.setFont(title_font)
        painter.setPen(text_color)
        painter.drawText(
            QRectF(8, 4, self.width() - 16, 18), Qt.AlignmentFlag.AlignLeft, data.title if data else ""
        )
        painter.setFont(self.font())
        if data is None:
            return
        rect = self.plot_rect()
        self._paint_legend(painter, metrics, text_color)
        has_values = any(v is not None for line in data.lines for v in line.values)

        y_max = self.y_max()
        for tick in range(self.Y_TICKS + 1):
            value = y_max * tick / self.Y_TICKS
            y = self.y_at(value)
            painter.setPen(QPen(grid_color, 1))
            painter.drawLine(QPointF(rect.left(), y), QPointF(rect.right(), y))
            painter.setPen(text_color)
            painter.drawText(
                QRectF(0, y - 8, self.LEFT - 6, 16),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                data.value_format(value),
            )
        self._paint_x_labels(painter, metrics, text_color)

        if data.goal is not None:
            pen = QPen(QColor(GOAL_COLOR), 1, Qt.PenStyle.DashLine)
            painter.setPen(pen)
            y = self.y_at(data.goal)
            painter.drawLine(QPointF(rect.left(), y), QPointF(rect.right(), y))

        if not has_values:
            painter.setPen(text_color)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "No data in this range")
            return
        for number, line in enumerate(data.lines):
            self._paint_line(painter, line, QColor(SERIES_COLORS[number % len(SERIES_COLORS)]))

    def _paint_line(self, painter: QPainter, line: ChartLine, color: QColor) -> None:
        path = QPainterPath()
        drawing = False
        points: list[QPointF] = []
        for index, value in enumerate(line.values):
            if value is None:
                drawing = False
                continue
            point = QPointF(self.x_at(index), self.y_at(value))
            points.append(point)
            if drawing:
                path.lineTo(point)
            else:
                path.moveTo(point)
                drawing = True
        painter.setPen(QPen(color, 2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(path)
        if len(line.values) <= MARKER_LIMIT:
            painter.setBrush(color)
            for point in points:
                painter.drawEllipse(point, 2.5, 2.5)

    def _paint_legend(self, painter: QPainter, metrics: QFontMetrics, text_color: QColor) -> None:
        data = self._data
        if data is None or not self.has_legend():
            return
        x = 8.0
        y = self.LEGEND_Y
        right_edge = self.width() - 8.0
        goal_rect = self.goal_label_rect()
        if goal_rect is not None:
            swatch_left = goal_rect.left() - self.SWATCH_WIDTH - 4
            painter.setPen(QPen(QColor(GOAL_COLOR), 1, Qt.PenStyle.DashLine))
            painter.drawLine(QPointF(swatch_left, y + 9), QPointF(swatch_left + self.SWATCH_WIDTH, y + 9))
            painter.setPen(QColor(GOAL_COLOR))
            painter.drawText(goal_rect, Qt.AlignmentFlag.AlignLeft, data.goal_label)
            right_edge = swatch_left - 10
        if not self.names_lines():
            return
        for number, line in enumerate(data.lines):
            label = line.label or data.title
            width = metrics.horizontalAdvance(label) + 22
            if x + width > right_edge and (x > 8 or goal_rect is not None):
                break  # the hover readout names every line; the legend shows what fits
            painter.fillRect(QRectF(x, y + 4, 10, 10), QColor(SERIES_COLORS[number % len(SERIES_COLORS)]))
            painter.setPen(text_color)
            painter.drawText(QRectF(x + 14, y, width, 16), Qt.AlignmentFlag.AlignLeft, label)
            x += width

    def _paint_x_labels(self, painter: QPainter, metrics: QFontMetrics, text_color: QColor) -> None:
        data = self._data
        if data is None or not data.buckets:
            return
        rect = self.plot_rect()
        sample = data.bucket_label(data.buckets[0])
        slots = max(1, int(rect.width() // (metrics.horizontalAdvance(sample) + 16)))
        count = len(data.buckets)
        step = max(1, math.ceil(count / slots))
        painter.setPen(text_color)
        for index in range(0, count, step):
            label = data.bucket_label(data.buckets[index])
            width = metrics.horizontalAdvance(label) + 4
            x = min(max(self.x_at(index) - width / 2, 0), self.width() - width)
            painter.drawText(QRectF(x, rect.bottom() + 4, width, 16), Qt.AlignmentFlag.AlignHCenter, label)

    # --- hover readout ------------------------------------------------------------------------------------

    def readout(self, index: int) -> str:
        data = self._data
        if data is None or not 0 <= index < len(data.buckets):
            return ""
        lines = [data.bucket_label(data.buckets[index])]
        for line in data.lines:
            value = line.values[index]
            shown = "no data" if value is None else data.value_format(value)
            lines.append(f"{line.label or data.title}: {shown}")
        return "\n".join(lines)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        index = self.bucket_at(event.position().x())
        if index is None or not self.plot_rect().adjusted(-8, -8, 8, 8).contains(event.position()):
            QToolTip.hideText()
            return
        QToolTip.showText(event.globalPosition().toPoint(), self.readout(index), self)
