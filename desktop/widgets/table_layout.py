"""Column widths and cut-off text in the app's tables: the title column gets the room, the short columns fit
their contents, and a cell whose text does not fit says it in a tooltip.

Issue 16 found titles cut to ~100 px beside half-empty columns ("Revision" 100 px wide for "1"), a queue
whose Title needed a horizontal scroll to read, and no way to read a cut-off cell but to widen its column.
Qt's ``QHeaderView.Stretch`` does not cure the first two: it gives the title only what the other columns
leave, which in a narrow pane is nothing, and it stops the user from resizing the title. :class:`ColumnFitter`
instead fits the other columns to what they hold (capped) whenever the rows are replaced, and gives the
title the rest of the view's width, but never less than a readable minimum. When the rest is less than the
titles need (their widest, up to :data:`TITLE_WANTED_CAP`), the *shrinkable* columns (free text such as a
service or tags, whose cells then elide and get tooltips) give up width first, down to a floor; only when
the title is at its minimum and nothing more can shrink do the columns after it scroll. Every column stays
resizable by hand; a width the user sets is kept until the rows are next replaced.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from PySide6.QtCore import QEvent, QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QToolTip,
    QWidget,
)

AnyIndex = QModelIndex | QPersistentModelIndex

DEFAULT_CAP = 220  # a fitted column never takes more than this; its cells elide and get tooltips
DEFAULT_MIN_STRETCH = 240  # ~35 characters of a title
SHRINK_FLOOR = 72  # a shrinkable column gives up width down to this (~10 characters)
TITLE_WANTED_CAP = 360  # shrinkable columns give up width until the title has this (~55 characters), at most
# Rows measured per column, from the top in view order. Measured by their display text with the font's
# metrics, not with Qt's sizeHintForColumn: that asks the model for eight roles of each cell through the
# delegate and took ~70 ms for a 348-row page, a stall on every reload.
SAMPLE_ROWS = 60
CELL_PADDING = 12  # the style's text margins on both sides, and the grid line


def text_is_cut(option: QStyleOptionViewItem, index: AnyIndex, delegate: QStyledItemDelegate) -> bool:
    """Whether the cell's display text does not fit its cell (elided on one line, or wrapped past its
    height)."""
    opt = QStyleOptionViewItem(option)
    delegate.initStyleOption(opt, index)
    if not opt.text:
        return False
    widget = opt.widget
    style = widget.style() if widget is not None else QApplication.style()
    text_rect = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, opt, widget)
    margin = style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, widget) + 1
    available = text_rect.adjusted(margin, 0, -margin, 0)
    metrics = opt.fontMetrics
    if opt.features & QStyleOptionViewItem.ViewItemFeature.WrapText:
        needed = metrics.boundingRect(
            available, int(Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignLeft), opt.text
        )
        return needed.height() > available.height() or needed.width() > available.width()
    return metrics.horizontalAdvance(opt.text) > available.width()


def cell_text_is_cut(view: QAbstractItemView, index: AnyIndex) -> bool:
    """Whether ``index``'s text is cut where ``view`` shows it now (what a user sees; tests ask)."""
    delegate = view.itemDelegateForIndex(index)
    if not isinstance(delegate, QStyledItemDelegate):
        return False
    option = QStyleOptionViewItem()
    view.initViewItemOption(option)
    option.rect = view.visualRect(index)
    return text_is_cut(option, index, delegate)


class ElidedTextDelegate(QStyledItemDelegate):
    """The default look; a cell whose text is cut shows its whole text as a tooltip (the model's own
    tooltip when it has one, which says at least as much)."""

    def helpEvent(
        self,
        event: QHelpEvent,
        view: QAbstractItemView,
        option: QStyleOptionViewItem,
        index: AnyIndex,
    ) -> bool:
        if event is not None and event.type() == QEvent.Type.ToolTip and index.isValid():
            own = index.data(Qt.ItemDataRole.ToolTipRole)
            if not own and text_is_cut(option, index, self):
                text = index.data(Qt.ItemDataRole.DisplayRole)
                QToolTip.showText(event.globalPos(), str(text), view, view.visualRect(index))
                return True
        return super().helpEvent(event, view, option, index)


class ColumnFitter(QObject):
    """Keeps ``table``'s ``stretch`` column readable (see the module docstring).

    ``caps`` sets a different maximum for a column; ``fixed`` gives a column a width of its own (a drawn
    bar), widened only to show its header;
    ``shrinkable`` columns give up width before the stretch column drops below ``min_stretch``. Columns are
    refitted when the model's rows are replaced (``modelReset``), and the widths shared out again whenever
    the view or a column changes width.
    """

    def __init__(
        self,
        table: QTableView,
        stretch: int,
        *,
        min_stretch: int = DEFAULT_MIN_STRETCH,
        cap: int = DEFAULT_CAP,
        caps: Mapping[int, int] | None = None,
        fixed: Mapping[int, int] | None = None,
        shrinkable: Collection[int] = (),
    ) -> None:
        super().__init__(table)
        self._table = table
        self.stretch = stretch
        self.min_stretch = min_stretch
        self._cap = cap
        self._caps = dict(caps or {})
        self._fixed = dict(fixed or {})
        self._shrinkable = frozenset(shrinkable)
        self._natural: dict[int, int] = {}  # each column's fitted (or user-set) width, before any shrinking
        self._title_wanted = min_stretch  # the stretch column's widest text, capped
        self._adjusting = False
        header = table.horizontalHeader()
        header.setStretchLastSection(False)
        # A column the user narrowed must not spring back wider than this (Qt's default is 30 px).
        header.setMinimumSectionSize(max(24, header.minimumSectionSize()))
        # Deferred by one event-loop turn: a model reset's rows are laid out (and measurable) by then.
        self._fit_timer = QTimer(self)
        self._fit_timer.setSingleShot(True)
        self._fit_timer.setInterval(0)
        self._fit_timer.timeout.connect(self.fit)
        table.viewport().installEventFilter(self)
        header.sectionResized.connect(self._on_section_resized)
        model = table.model()
        model.modelReset.connect(self._fit_timer.start)
        model.layoutChanged.connect(self._fit_timer.start)
        model.rowsInserted.connect(self._fit_timer.start)
        self.fit()

    def fit(self) -> None:
        """Size every column but the stretch one to its header and the rows in view (capped), then
        share the view's width out."""
        table = self._table
        header = table.horizontalHeader()
        smallest = header.minimumSectionSize()  # the header enforces it; the sums must know
        self._natural = {}
        for column in range(header.count()):
            if column == self.stretch:
                continue
            header_width = header.sectionSizeFromContents(column).width()
            if column in self._fixed:  # a drawn cell (a bar): its own width, but the header stays readable
                self._natural[column] = max(smallest, header_width, self._fixed[column])
                continue
            wanted = max(header_width, self.content_width(column))
            self._natural[column] = max(smallest, min(wanted, self._caps.get(column, self._cap)))
        self._title_wanted = max(self.min_stretch, min(TITLE_WANTED_CAP, self.content_width(self.stretch)))
        self.stretch_to_fit()

    def content_width(self, column: int) -> int:
        """The widest display text of the column's first :data:`SAMPLE_ROWS` rows, padded as a cell."""
        table = self._table
        model = table.model()
        metrics = table.fontMetrics()
        widest = 0
        for row in range(min(model.rowCount(), SAMPLE_ROWS)):
            text = model.index(row, column).data(Qt.ItemDataRole.DisplayRole)
            if text:
                widest = max(widest, metrics.horizontalAdvance(str(text)))
        return widest + CELL_PADDING if widest else 0

    def widths(self) -> dict[int, int]:
        """The width of every shown column for the view's current width (see the module docstring)."""
        header = self._table.horizontalHeader()
        shown = [column for column in range(header.count()) if not header.isSectionHidden(column)]
        widths = {
            column: self._natural.get(column, header.sectionSize(column))
            for column in shown
            if column != self.stretch
        }
        if self.stretch not in shown:
            return widths
        available = self._table.viewport().width()
        deficit = self._title_wanted - (available - sum(widths.values()))
        if deficit > 0:  # the title is short of room: shrinkable columns give up width, by their excess
            floor = max(SHRINK_FLOOR, header.minimumSectionSize())
            excess = {c: widths[c] - floor for c in widths if c in self._shrinkable}
            excess = {c: e for c, e in excess.items() if e > 0}
            total_excess = sum(excess.values())
            if total_excess:
                given = min(deficit, total_excess)
                for column, column_excess in excess.items():
                    widths[column] -= given * column_excess // total_excess
        widths[self.stretch] = max(self.min_stretch, available - sum(widths.values()))
        return widths

    def stretch_to_fit(self) -> None:
        header = self._table.horizontalHeader()
        self._adjusting = True
        try:
            for column, width in self.widths().items():
                if header.sectionSize(column) != width:
                    header.resizeSection(column, width)
        finally:
            self._adjusting = False

    def _on_section_resized(self, column: int, _old: int, new: int) -> None:
        if self._adjusting or column == self.stretch:
            return
        # The user set this column's width: keep it, and let the stretch column give way (to its minimum).
        self._natural[column] = new
        self.stretch_to_fit()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize and watched is self._table.viewport():
            self.stretch_to_fit()
        return False


def fit_columns_by_header(
    table: QTableView,
    stretch_header: str,
    *,
    min_stretch: int = DEFAULT_MIN_STRETCH,
    cap: int = DEFAULT_CAP,
    caps: Mapping[str, int] | None = None,
    fixed: Mapping[str, int] | None = None,
    shrinkable: Collection[str] = (),
) -> ColumnFitter:
    """:class:`ColumnFitter` with columns named by their header text (the models' column sets)."""
    model = table.model()
    names = {
        str(model.headerData(column, Qt.Orientation.Horizontal)): column
        for column in range(model.columnCount())
    }
    return ColumnFitter(
        table,
        names[stretch_header],
        min_stretch=min_stretch,
        cap=cap,
        caps={names[name]: width for name, width in (caps or {}).items()},
        fixed={names[name]: width for name, width in (fixed or {}).items()},
        shrinkable=[names[name] for name in shrinkable],
    )


def show_cut_text_as_tooltips(view: QAbstractItemView, parent: QWidget | None = None) -> ElidedTextDelegate:
    """Give ``view`` the :class:`ElidedTextDelegate` (per-column delegates set on it still win)."""
    delegate = ElidedTextDelegate(parent if parent is not None else view)
    view.setItemDelegate(delegate)
    return delegate
