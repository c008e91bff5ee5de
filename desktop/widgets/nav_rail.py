"""The window's navigation rail: one row per page with its icon, its title and, as mail clients show unread
counts, a badge with the count of what waits there.

The badge is data on the item (:data:`BADGE_ROLE`), drawn by :class:`NavRailDelegate` right-aligned in the
row; the item's text stays the page title, so code and assistive tools that read the title are unaffected
(the accessible text says the count in words). A zero count shows no badge.

The rail's width is fixed by its content: wide enough for each row's icon, title and the widest badge that
row expects (its *badge reserve*: "999+" for the review queue, "99+" for a handful of alerts), whatever the
counts are now, so a count arriving never reflows the window and a page that asks for more room than the
window has can never squeeze the rail (issue 16: Metrics shrank it to 70 px with "Connectors" cut off). It
does not scroll sideways. A count wider than its row's reserve still shows; the title gives way (elided,
the tooltip says it all).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QModelIndex, QPersistentModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QIcon, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QListWidget,
    QListWidgetItem,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

AnyIndex = QModelIndex | QPersistentModelIndex

BADGE_ROLE = Qt.ItemDataRole.UserRole + 20
RESERVE_ROLE = Qt.ItemDataRole.UserRole + 21  # the row's badge reserve: the widest badge text it expects
BADGE_CAP = 999  # above this the badge reads "999+": the exact number is on the page
ICON_SIZE = 20
ROW_PADDING = 6  # above and below the text
BADGE_GAP = 6  # between the title and the badge, and after the badge
BADGE_FONT_SCALE = 0.9
ALERT_COLOUR = QColor("#b3261e")  # the app's error red (notifications, the connector alert)


class BadgeTone(enum.Enum):
    COUNT = "count"  # work waiting: a quiet grey pill
    ALERT = "alert"  # something is wrong: a red pill


@dataclass(frozen=True, slots=True)
class Badge:
    count: int
    tone: BadgeTone
    description: str  # the count in words, for the tooltip and assistive tools

    @property
    def text(self) -> str:
        return f"{BADGE_CAP}+" if self.count > BADGE_CAP else str(self.count)


def _badge_width(metrics: QFontMetrics, text: str) -> int:
    return max(metrics.height() + 2, metrics.horizontalAdvance(text) + 10)


class NavRailDelegate(QStyledItemDelegate):
    """Draws a row as the style does (selection, icon, focus), then its title elided before the badge's
    space, then the badge."""

    @staticmethod
    def badge_font(option: QStyleOptionViewItem) -> QFont:
        font = QFont(option.font)
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * BADGE_FONT_SCALE)
        return font

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        base = super().sizeHint(option, index)
        height = max(base.height(), option.fontMetrics.height() + 2 * ROW_PADDING)
        reserve_text = index.data(RESERVE_ROLE)
        if not reserve_text:
            return QSize(base.width() + BADGE_GAP, height)
        reserve = _badge_width(QFontMetrics(self.badge_font(option)), str(reserve_text)) + 2 * BADGE_GAP
        return QSize(base.width() + reserve, height)

    def layout(self, option: QStyleOptionViewItem, index: AnyIndex) -> tuple[QRect, QRect]:
        """Where the row's title and badge go: ``(title_rect, badge_rect)``; the badge rect is null when
        the row shows none, and the title ends before the badge."""
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        text_rect = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, opt, widget)
        badge = index.data(BADGE_ROLE)
        if not (isinstance(badge, Badge) and badge.count > 0):
            return text_rect, QRect()
        badge_metrics = QFontMetrics(self.badge_font(opt))
        width = _badge_width(badge_metrics, badge.text)
        height = badge_metrics.height() + 2
        badge_rect = QRect(
            opt.rect.right() - BADGE_GAP - width + 1, opt.rect.center().y() - height // 2 + 1, width, height
        )
        text_rect.setRight(min(text_rect.right(), badge_rect.left() - BADGE_GAP))
        return text_rect, badge_rect

    def title_fits(self, option: QStyleOptionViewItem, index: AnyIndex) -> bool:
        """Whether the row's title is drawn whole (not elided) beside its badge."""
        title_rect, _badge_rect = self.layout(option, index)
        title = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
        return option.fontMetrics.horizontalAdvance(title) <= title_rect.width()

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        title_rect, badge_rect = self.layout(option, index)
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        title = opt.text
        opt.text = ""  # the style draws selection, icon and focus; the title is drawn below, before the badge
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        group = (
            QPalette.ColorGroup.Normal
            if opt.state & QStyle.StateFlag.State_Enabled
            else QPalette.ColorGroup.Disabled
        )
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        metrics = opt.fontMetrics
        shown = (  # elidedText cuts a text that fits exactly
            title
            if metrics.horizontalAdvance(title) <= title_rect.width()
            else metrics.elidedText(title, Qt.TextElideMode.ElideRight, title_rect.width())
        )
        painter.save()
        try:
            painter.setFont(opt.font)
            painter.setPen(opt.palette.color(group, role))
            painter.drawText(
                title_rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), shown
            )
            badge = index.data(BADGE_ROLE)
            if isinstance(badge, Badge) and not badge_rect.isNull():
                self._paint_badge(painter, badge, QRectF(badge_rect), opt, selected)
        finally:
            painter.restore()

    def _paint_badge(
        self, painter: QPainter, badge: Badge, rect: QRectF, opt: QStyleOptionViewItem, selected: bool
    ) -> None:
        if badge.tone is BadgeTone.ALERT:
            fill, text_colour = ALERT_COLOUR, QColor("white")
        else:
            text_colour = opt.palette.color(
                QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
            )
            fill = QColor(text_colour)
            fill.setAlpha(45)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(fill)
        radius = rect.height() / 2
        painter.drawRoundedRect(rect, radius, radius)
        painter.setFont(self.badge_font(opt))
        painter.setPen(text_colour)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, badge.text)


class NavRail(QListWidget):
    """The page list. ``set_badge`` puts a count on a page's row; the current row is the current page."""

    def __init__(
        self,
        titles: Sequence[str],
        icons: Sequence[QIcon],
        badge_reserves: Sequence[str],
        parent: QWidget | None = None,
    ) -> None:
        """One row per title; ``badge_reserves`` holds each row's widest expected badge text ("" for a row
        that never shows one)."""
        super().__init__(parent)
        self.setObjectName("navigation")
        self.setIconSize(QSize(ICON_SIZE, ICON_SIZE))
        self.setUniformItemSizes(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setItemDelegate(NavRailDelegate(self))
        for title, icon, reserve in zip(titles, icons, badge_reserves, strict=True):
            item = QListWidgetItem(icon, title, self)
            item.setData(Qt.ItemDataRole.AccessibleTextRole, title)
            item.setData(RESERVE_ROLE, reserve)
        self._fit_width()

    # --- badges -----------------------------------------------------------------------------------------

    def set_badge(self, row: int, count: int, tone: BadgeTone, description: str) -> None:
        """Show ``count`` on the page's row (none when 0); ``description`` says it in words (tooltip)."""
        item = self.item(row)
        badge = Badge(count, tone, description)
        item.setData(BADGE_ROLE, badge if count > 0 else None)
        item.setToolTip(description)
        title = item.text()
        item.setData(Qt.ItemDataRole.AccessibleTextRole, f"{title}: {description}" if description else title)

    def badge(self, row: int) -> Badge | None:
        """The page's badge, None when it shows none."""
        badge = self.item(row).data(BADGE_ROLE)
        return badge if isinstance(badge, Badge) else None

    def row_is_whole(self, row: int) -> bool:
        """Whether the row is fully in view with its title drawn unelided beside its badge (what issue 16
        found broken: "Connectors" cut off in a 70 px rail)."""
        index = self.indexFromItem(self.item(row))
        rect = self.visualRect(index)
        if not self.viewport().rect().contains(rect):
            return False
        option = QStyleOptionViewItem()
        self.initViewItemOption(option)
        option.rect = rect
        delegate = self.itemDelegate()
        return isinstance(delegate, NavRailDelegate) and delegate.title_fits(option, index)

    # --- width ------------------------------------------------------------------------------------------

    def content_width(self) -> int:
        """The width every row needs unclipped, badge space included, plus the frame."""
        option = QStyleOptionViewItem()
        self.initViewItemOption(option)
        option.decorationSize = self.iconSize()
        option.features |= QStyleOptionViewItem.ViewItemFeature.HasDecoration
        delegate = self.itemDelegate()
        widest = max(
            (
                delegate.sizeHint(option, self.indexFromItem(self.item(row))).width()
                for row in range(self.count())
            ),
            default=0,
        )
        return widest + 2 * self.frameWidth()

    def _fit_width(self) -> None:
        width = self.content_width()
        self.setMinimumWidth(width)
        self.setMaximumWidth(width)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._fit_width()

    def sizeHint(self) -> QSize:
        rows_height = sum(self.sizeHintForRow(row) for row in range(self.count()))
        return QSize(self.content_width(), rows_height + 2 * self.frameWidth())
