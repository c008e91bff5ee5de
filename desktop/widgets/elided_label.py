"""A one-line label that elides its text to the width it is given instead of demanding the width of its text.

A plain QLabel's minimum width is its whole text, so a long value (a workspace path in the status bar) sets
the minimum width of the window (issue 16). This label asks for a few characters at least, shows as much
as fits with an ellipsis (in the middle by default: both ends of a path say something) and keeps the whole
text in :meth:`text` and in its tooltip.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

MIN_CHARACTERS = 12  # what the label shrinks to at most: enough for "Workspace: …"


class ElidedLabel(QLabel):
    def __init__(
        self,
        text: str = "",
        parent: QWidget | None = None,
        mode: Qt.TextElideMode = Qt.TextElideMode.ElideMiddle,
    ) -> None:
        super().__init__(parent)
        self._full_text = ""
        self._mode = mode
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def text(self) -> str:  # the whole text, not what fits
        return self._full_text

    def setText(self, text: str) -> None:
        if not self.toolTip() or self.toolTip() == self._full_text:  # a tooltip of its own stays
            self.setToolTip(text)
        self._full_text = text
        self._elide()
        self.updateGeometry()

    def displayed_text(self) -> str:
        """What is on screen now: the text, or its elided form."""
        return super().text()

    def sizeHint(self) -> QSize:
        metrics = self.fontMetrics()
        margins = self.contentsMargins()
        width = metrics.horizontalAdvance(self._full_text) + margins.left() + margins.right() + 2
        return QSize(width, super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:
        metrics = self.fontMetrics()
        width = min(self.sizeHint().width(), metrics.averageCharWidth() * MIN_CHARACTERS)
        return QSize(width, super().minimumSizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        margins = self.contentsMargins()
        available = self.width() - margins.left() - margins.right() - 2
        metrics = self.fontMetrics()
        shown = (
            self._full_text
            if metrics.horizontalAdvance(self._full_text) <= available  # elidedText cuts at exactly its width
            else metrics.elidedText(self._full_text, self._mode, max(available, 0))
        )
        if shown != super().text():
            super().setText(shown)
