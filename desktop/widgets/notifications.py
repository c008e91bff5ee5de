"""A non-modal notification strip: job results and failures are announced without stealing the keyboard.

A failed background job shows its message and a "Details" button with the full traceback (for a bug report);
a finished import or analysis shows its summary. Notifications stack, newest on top, each can be
dismissed; nothing is ever silent and nothing blocks the analyst mid-review with a modal box.
"""

from __future__ import annotations

import enum

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QMessageBox, QToolButton, QVBoxLayout, QWidget

MAX_VISIBLE = 4


class Level(enum.Enum):
    INFO = "info"
    ERROR = "error"


class Notification(QFrame):
    dismissed = Signal(object)

    def __init__(self, level: Level, text: str, details: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.level = level
        self.text = text
        self.details = details
        self.setObjectName(f"notification-{level.value}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        palette = self.palette()
        role = QPalette.ColorRole.ToolTipBase if level is Level.INFO else QPalette.ColorRole.Highlight
        palette.setColor(QPalette.ColorRole.Window, palette.color(role))
        if level is Level.ERROR:
            palette.setColor(QPalette.ColorRole.WindowText, palette.color(QPalette.ColorRole.HighlightedText))
        self.setPalette(palette)

        self.label = QLabel(text, self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        if details:
            self.details_button = QToolButton(self)
            self.details_button.setText("Details…")
            self.details_button.clicked.connect(self.show_details)
            layout.addWidget(self.details_button)
        close = QToolButton(self)
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.setAutoRaise(True)
        close.clicked.connect(lambda: self.dismissed.emit(self))
        layout.addWidget(close)

    def show_details(self) -> None:
        box = QMessageBox(
            QMessageBox.Icon.Critical if self.level is Level.ERROR else QMessageBox.Icon.Information,
            "Runbook Desk",
            self.text,
            QMessageBox.StandardButton.Close,
            self,
        )
        box.setDetailedText(self.details)
        box.open()  # window-modal at most, never an app-wide nested event loop


class NotificationArea(QWidget):
    """Holds the visible notifications above the pages."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(2)
        self.setVisible(False)

    def notifications(self) -> list[Notification]:
        items = (self._layout.itemAt(i) for i in range(self._layout.count()))
        widgets = (item.widget() for item in items if item is not None)
        return [widget for widget in widgets if isinstance(widget, Notification)]

    def notify(self, level: Level, text: str, details: str = "") -> Notification:
        notification = Notification(level, text, details, self)
        notification.dismissed.connect(self.dismiss)
        self._layout.insertWidget(0, notification)
        for old in self.notifications()[MAX_VISIBLE:]:
            self.dismiss(old)
        self.setVisible(True)
        return notification

    def dismiss(self, notification: Notification) -> None:
        self._layout.removeWidget(notification)
        notification.deleteLater()
        self.setVisible(bool(self.notifications()))

    def clear(self) -> None:
        for notification in self.notifications():
            self.dismiss(notification)
