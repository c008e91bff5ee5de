"""The first page: which system, from the connector registry (built-ins and installed plugins), grouped by
kind under a heading each (ticketing systems, monitoring systems...): a heading is not selectable."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWizardPage

from connectors.base import ConnectorKind, ConnectorSpec
from connectors.registry import connector_types
from core.resources import resources_dir

if TYPE_CHECKING:  # the pages and the wizard refer to each other; only the wizard module imports the pages
    from desktop.dialogs.connector_wizard.wizard import ConnectorWizard

_BADGE_COLOURS = ("#1f6feb", "#8250df", "#bf3989", "#1a7f37", "#9a6700", "#cf222e")
# The groups in the list, in this order (tickets first: what most analysts connect), and their headings.
KIND_HEADINGS: dict[ConnectorKind, str] = {
    ConnectorKind.TICKETING: "Ticketing",
    ConnectorKind.MONITORING: "Monitoring",
    ConnectorKind.KNOWLEDGE: "Knowledge",
}


def connector_icon(spec: ConnectorSpec, size: int = 32) -> QIcon:
    """The connector's icon file when it ships one, else a coloured badge with its initial."""
    if spec.icon:
        path = resources_dir() / "icons" / "connectors" / spec.icon
        if path.is_file():
            return QIcon(str(path))
    colour = _BADGE_COLOURS[int(hashlib.sha1(spec.type.encode()).hexdigest(), 16) % len(_BADGE_COLOURS)]
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(QColor(colour))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawRoundedRect(0, 0, size, size, size / 5, size / 5)
        font = QFont()
        font.setBold(True)
        font.setPixelSize(size // 2)
        painter.setFont(font)
        painter.setPen(QColor("white"))
        painter.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, spec.display_name[:1].upper())
    finally:
        painter.end()
    return QIcon(pixmap)


class SystemPage(QWizardPage):
    def __init__(self, wizard: ConnectorWizard) -> None:
        super().__init__(wizard)
        self._wizard = wizard
        self.setTitle("Which system?")
        self.setSubTitle(
            "Runbook Desk reads tickets, monitoring alerts and knowledge articles from these systems. The "
            "next pages ask what this one needs."
        )
        self.system_list = QListWidget(self)
        self.system_list.setObjectName("systemList")
        self.system_list.setIconSize(QSize(32, 32))
        self.system_list.setSpacing(4)
        self.specs: dict[str, ConnectorSpec] = {}
        specs = connector_types()
        for kind, heading in KIND_HEADINGS.items():
            of_kind = [spec for spec in specs if spec.kind is kind]
            if of_kind:
                self.system_list.addItem(self._heading(heading))
            for spec in of_kind:
                self.specs[spec.type] = spec
                item = QListWidgetItem(
                    connector_icon(spec), f"{spec.display_name}\n{spec.kind.value.capitalize()}"
                )
                item.setData(Qt.ItemDataRole.UserRole, spec.type)
                item.setToolTip(spec.description)
                self.system_list.addItem(item)
        self.description = QLabel(self)
        self.description.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.system_list, 1)
        layout.addWidget(self.description)
        self.system_list.currentItemChanged.connect(self._on_current_changed)
        self.system_list.itemDoubleClicked.connect(lambda _item: wizard.next())

    def _heading(self, text: str) -> QListWidgetItem:
        item = QListWidgetItem(text)
        item.setFlags(Qt.ItemFlag.NoItemFlags)  # neither selectable nor a stop for the arrow keys
        font = QFont(self.font())
        font.setBold(True)
        item.setFont(font)
        item.setForeground(self.palette().text())
        return item

    def headings(self) -> list[str]:
        return [
            self.system_list.item(row).text()
            for row in range(self.system_list.count())
            if self.system_list.item(row).data(Qt.ItemDataRole.UserRole) is None
        ]

    def systems_under(self, heading: str) -> list[str]:
        """The connector types listed under ``heading``, in order."""
        types: list[str] = []
        current = None
        for row in range(self.system_list.count()):
            item = self.system_list.item(row)
            connector_type = item.data(Qt.ItemDataRole.UserRole)
            if connector_type is None:
                current = item.text()
            elif current == heading:
                types.append(str(connector_type))
        return types

    def select(self, connector_type: str) -> None:
        for row in range(self.system_list.count()):
            item = self.system_list.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == connector_type:
                self.system_list.setCurrentItem(item)
                return
        raise KeyError(connector_type)

    def selected_spec(self) -> ConnectorSpec | None:
        item = self.system_list.currentItem()
        connector_type = None if item is None else item.data(Qt.ItemDataRole.UserRole)
        return None if connector_type is None else self.specs[connector_type]

    def _on_current_changed(self, *_args: object) -> None:
        spec = self.selected_spec()
        self.description.setText(spec.description if spec is not None else "")
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.selected_spec() is not None

    def validatePage(self) -> bool:
        spec = self.selected_spec()
        if spec is None:
            return False
        self._wizard.set_spec(spec)
        return True
