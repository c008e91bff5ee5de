"""A non-modal notification area: job results and failures are announced without stealing the keyboard.

A failed background job shows its message and a "Details" button with the full traceback (for a bug report);
a finished import or analysis shows its summary. Nothing is ever silent and nothing blocks the analyst
mid-review with a modal box. The area takes one banner's height: the newest notification shows, the older
ones wait behind a "+N more" count that expands to the whole list (issue 16: three or four stacked banners
pushed the page down on the first start). Each can be dismissed, or all at once.
"""

from __future__ import annotations

import enum

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QMessageBox, QToolButton, QVBoxLayout, QWidget

MAX_KEPT = 30  # the oldest beyond this are dropped: the log file keeps everything


class Level(enum.Enum):
    INFO = "info"
    ALERT = "alert"  # something in the systems we watch needs attention (a critical incident, a health alert)
    ERROR = "error"  # something in Runbook Desk failed (an import, a task)


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
        if level is not Level.INFO:
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
            {Level.ERROR: QMessageBox.Icon.Critical, Level.ALERT: QMessageBox.Icon.Warning}.get(
                self.level, QMessageBox.Icon.Information
            ),
            "Runbook Desk",
            self.text,
            QMessageBox.StandardButton.Close,
            self,
        )
        box.setDetailedText(self.details)
        box.open()  # window-modal at most, never an app-wide nested event loop


class NotificationArea(QWidget):
    """The one place above the pages where notifications show: the newest, the rest behind a count."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._notifications: list[Notification] = []  # newest first, as laid out
        self._list_layout = QVBoxLayout()
        self._list_layout.setContentsMargins(0, 0, 0, 0)
        self._list_layout.setSpacing(2)

        self.more_button = QToolButton(self)
        self.more_button.setObjectName("notifications-more")
        self.more_button.setCheckable(True)
        self.more_button.toggled.connect(self._refresh)
        self.dismiss_all_button = QToolButton(self)
        self.dismiss_all_button.setObjectName("notifications-dismiss-all")
        self.dismiss_all_button.setText("Dismiss all")
        self.dismiss_all_button.setAutoRaise(True)
        self.dismiss_all_button.clicked.connect(self.clear)
        controls = QVBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        controls.setSpacing(2)
        controls.addWidget(self.more_button)
        controls.addWidget(self.dismiss_all_button)
        controls.addStretch(1)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(self._list_layout, 1)
        layout.addLayout(controls)
        self._refresh()

    def notifications(self) -> list[Notification]:
        """Every notification not yet dismissed, newest first, shown or behind the count."""
        return list(self._notifications)

    def shown_notifications(self) -> list[Notification]:
        return [n for n in self._notifications if not n.isHidden()]

    @property
    def expanded(self) -> bool:
        return self.more_button.isChecked()

    def set_expanded(self, expanded: bool) -> None:
        self.more_button.setChecked(expanded)  # toggled -> _refresh

    def notify(self, level: Level, text: str, details: str = "") -> Notification:
        notification = Notification(level, text, details, self)
        notification.dismissed.connect(self.dismiss)
        self._notifications.insert(0, notification)
        self._list_layout.insertWidget(0, notification)
        for old in self._notifications[MAX_KEPT:]:
            self._remove(old)
        self._refresh()
        return notification

    def dismiss(self, notification: Notification) -> None:
        self._remove(notification)
        self._refresh()

    def clear(self) -> None:
        for notification in list(self._notifications):
            self._remove(notification)
        self._refresh()

    def _remove(self, notification: Notification) -> None:
        if notification in self._notifications:
            self._notifications.remove(notification)
        self._list_layout.removeWidget(notification)
        notification.hide()
        notification.deleteLater()

    def _refresh(self) -> None:
        behind = self._notifications[1:]
        if not behind and self.more_button.isChecked():
            self.more_button.setChecked(False)  # re-enters _refresh collapsed
            return
        expanded = self.more_button.isChecked()
        for position, notification in enumerate(self._notifications):
            notification.setVisible(position == 0 or expanded)
        notes = [
            f"{count} {name}{'s' if count != 1 else ''}"
            for name, level in (("error", Level.ERROR), ("alert", Level.ALERT))
            if (count := sum(1 for n in behind if n.level is level))
        ]
        if expanded:
            self.more_button.setText("Newest only")
            self.more_button.setToolTip("Show only the newest notification")
        else:
            self.more_button.setText(f"+{len(behind)} more{''.join(f' · {note}' for note in notes)}")
            self.more_button.setToolTip(
                f"Show {len(behind)} earlier notification{'s' if len(behind) != 1 else ''}"
            )
        self.more_button.setVisible(bool(behind))
        self.dismiss_all_button.setVisible(bool(behind))
        self.setVisible(bool(self._notifications))
