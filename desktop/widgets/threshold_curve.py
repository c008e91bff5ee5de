"""The threshold advisor's chart: auto-link precision and coverage against the link threshold, with the
target precision, the current threshold and the suggested one marked.

Drawn with QPainter for the reasons :mod:`desktop.widgets.line_chart` gives (no QtCharts in the bundle); that
chart's x axis is time, this one's is a threshold in [0, 1], so it is its own small widget. It holds the
core's :class:`~core.analytics.thresholds.ThresholdAdvice` (plain frozen data) and never reads the store.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from core.analytics.thresholds import CurvePoint, ThresholdAdvice
from desktop.widgets.line_chart import SERIES_COLORS

PRECISION_COLOR = SERIES_COLORS[0]
COVERAGE_COLOR = SERIES_COLORS[1]
TARGET_COLOR = "#b3261e"
SUGGESTED_COLOR = SERIES_COLORS[2]


class ThresholdCurve(QWidget):
    LEFT, RIGHT, TOP, BOTTOM = 44, 14, 40, 28

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._advice: ThresholdAdvice | None = None
        self.setMouseTracking(True)
        self.setMinimumSize(320, 190)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(460, 230)

    @property
    def advice(self) -> ThresholdAdvice | None:
        return self._advice

    def set_advice(self, advice: ThresholdAdvice) -> None:
        self._advice = advice
        self.setAccessibleName("Auto-link precision and coverage by threshold")
        self.setAccessibleDescription(self.summary())
        self.update()

    def summary(self) -> str:
        """The chart in words (accessibility; tests read it)."""
        advice = self._advice
        if advice is None:
            return ""
        current = advice.at_current
        parts = [
            f"target precision {advice.target:.0%}",
            f"current threshold {current.threshold:.2f}: {self._precision_text(current)} precision, "
            f"{current.coverage:.0%} coverage",
        ]
        if advice.suggested is not None:
            suggested = advice.suggested
            parts.append(
                f"suggested {suggested.threshold:.2f}: {self._precision_text(suggested)} precision, "
                f"{suggested.coverage:.0%} coverage"
            )
        return "; ".join(parts)

    @staticmethod
    def _precision_text(point: CurvePoint) -> str:
        return "no reviewed tickets" if point.precision is None else f"{point.precision:.0%}"

    # --- geometry ---------------------------------------------------------------------------------------

    def plot_rect(self) -> QRectF:
        return QRectF(
            self.LEFT,
            self.TOP,
            max(1.0, self.width() - self.LEFT - self.RIGHT),
            max(1.0, self.height() - self.TOP - self.BOTTOM),
        )

    def x_at(self, threshold: float) -> float:
        rect = self.plot_rect()
        return rect.left() + rect.width() * threshold

    def y_at(self, share: float) -> float:
        rect = self.plot_rect()
        return rect.bottom() - rect.height() * max(0.0, min(1.0, share))

    def point_at(self, x: float) -> CurvePoint | None:
        advice = self._advice
        if advice is None or not advice.points:
            return None
        threshold = (x - self.plot_rect().left()) / self.plot_rect().width()
        return min(advice.points, key=lambda point: abs(point.threshold - threshold))

    # --- painting ---------------------------------------------------------------------------------------

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
        rect = self.plot_rect()
        self._paint_legend(painter, text_color)
        for tick in range(5):
            share = tick / 4
            y = self.y_at(share)
            painter.setPen(QPen(grid_color, 1))
            painter.drawLine(QPointF(rect.left(), y), QPointF(rect.right(), y))
            painter.setPen(text_color)
            painter.drawText(
                QRectF(0, y - 8, self.LEFT - 6, 16),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                f"{share:.0%}",
            )
        for tick in range(0, 11, 2):
            threshold = tick / 10
            x = self.x_at(threshold)
            painter.drawText(
                QRectF(x - 20, rect.bottom() + 4, 40, 16), Qt.AlignmentFlag.AlignHCenter, f"{threshold:.1f}"
            )
        advice = self._advice
        if advice is None:
            return
        target_y = self.y_at(advice.target)
        painter.setPen(QPen(QColor(TARGET_COLOR), 1, Qt.PenStyle.DashLine))
        painter.drawLine(QPointF(rect.left(), target_y), QPointF(rect.right(), target_y))
        self._paint_marker(painter, advice.current.existing, text_color, "now")
        if advice.suggested is not None:
            self._paint_marker(painter, advice.suggested.threshold, QColor(SUGGESTED_COLOR), "suggested")
        self._paint_line(painter, [(p.threshold, p.coverage) for p in advice.points], COVERAGE_COLOR)
        supported = [
            (p.threshold, p.precision if p.reviewed >= advice.min_reviewed else None) for p in advice.points
        ]
        self._paint_line(painter, supported, PRECISION_COLOR)

    def _paint_marker(self, painter: QPainter, threshold: float, color: QColor, label: str) -> None:
        rect = self.plot_rect()
        x = self.x_at(threshold)
        painter.setPen(QPen(color, 1, Qt.PenStyle.DotLine))
        painter.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))
        painter.drawText(QRectF(x + 3, rect.top(), 80, 14), Qt.AlignmentFlag.AlignLeft, label)

    def _paint_line(self, painter: QPainter, values: list[tuple[float, float | None]], color: str) -> None:
        """Precision is drawn only where enough reviewed tickets back it: elsewhere the line breaks."""
        path = QPainterPath()
        drawing = False
        for threshold, share in values:
            if share is None:
                drawing = False
                continue
            point = QPointF(self.x_at(threshold), self.y_at(share))
            if drawing:
                path.lineTo(point)
            else:
                path.moveTo(point)
                drawing = True
        painter.setPen(QPen(QColor(color), 2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(path)

    def _paint_legend(self, painter: QPainter, text_color: QColor) -> None:
        x = 8.0
        for label, color in (
            ("Precision (reviewed tickets approved)", PRECISION_COLOR),
            ("Coverage (tickets linked)", COVERAGE_COLOR),
            ("Target", TARGET_COLOR),
        ):
            painter.fillRect(QRectF(x, 10, 10, 10), QColor(color))
            painter.setPen(text_color)
            width = painter.fontMetrics().horizontalAdvance(label) + 24
            painter.drawText(QRectF(x + 14, 6, width, 16), Qt.AlignmentFlag.AlignLeft, label)
            x += width

    # --- hover readout ----------------------------------------------------------------------------------

    def readout(self, point: CurvePoint) -> str:
        return (
            f"Link at {point.threshold:.2f} or above\n"
            f"Precision: {self._precision_text(point)} ({point.approved:,} of {point.reviewed:,} reviewed)\n"
            f"Coverage: {point.coverage:.0%} ({point.tickets:,} tickets)"
        )

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        point = self.point_at(event.position().x())
        if point is None or not self.plot_rect().adjusted(-8, -8, 8, 8).contains(event.position()):
            QToolTip.hideText()
            return
        QToolTip.showText(event.globalPosition().toPoint(), self.readout(point), self)
