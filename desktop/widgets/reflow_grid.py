"""A grid whose number of columns follows its width: small multiples (charts, score cards) that wrap onto
more rows in a narrow window instead of demanding the width of one long row.

A ``QGridLayout`` with a fixed column count asks for the sum of its columns' minimum widths, and that sum
becomes the minimum width of the page and so of the whole window (issue 16: Metrics forced 1289 px). This
grid asks for one column's width only. Its layout (:class:`ReflowLayout`) places the widgets, in the order
they were added, in as many equal columns as fit, at most ``max_columns``, balanced so that the last row is
not left with one widget (four cards in three columns become two rows of two), and it answers
``heightForWidth`` for the arrangement a width *would* get, so a ``QScrollArea`` sizes it right the first
time instead of squeezing rows laid out for the previous width.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtWidgets import QLayout, QLayoutItem, QSizePolicy, QWidget


def balanced_columns(count: int, fitting: int) -> int:
    """At most ``fitting`` columns, as few as give the same number of rows: 4 items, 3 fit -> 2 columns."""
    if count <= 0:
        return max(1, fitting)
    fitting = max(1, min(fitting, count))
    rows = math.ceil(count / fitting)
    return math.ceil(count / rows)


class ReflowLayout(QLayout):
    def __init__(self, min_column_width: int, max_columns: int, spacing: int = 8) -> None:
        super().__init__()
        if min_column_width <= 0 or max_columns <= 0:
            raise ValueError("a reflowing grid needs a positive column width and column count")
        self.min_column_width = min_column_width
        self.max_columns = max_columns
        self._spacing = spacing
        self._items: list[QLayoutItem] = []
        self.columns = 0  # as last placed
        self.setContentsMargins(0, 0, 0, 0)

    # --- QLayout ----------------------------------------------------------------------------------------

    def addItem(self, item: QLayoutItem) -> None:
        self._items.append(item)
        self.invalidate()

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:
        if not 0 <= index < len(self._items):
            return None
        item = self._items.pop(index)
        self.invalidate()
        return item

    def expandingDirections(self) -> Qt.Orientation:
        return Qt.Orientation.Horizontal

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        heights = self._row_heights(width)
        return sum(heights) + self._spacing * max(0, len(heights) - 1)

    def minimumSize(self) -> QSize:
        """One column's width: a narrower window gets one column, never a wider window."""
        height = max((item.minimumSize().height() for item in self._items), default=0)
        return QSize(self.min_column_width, height)

    def sizeHint(self) -> QSize:
        width = self.max_columns * self.min_column_width + (self.max_columns - 1) * self._spacing
        return QSize(width, self.heightForWidth(width))

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        columns = self.columns_for(rect.width())
        column_width = self._column_width(rect.width(), columns)
        y = rect.y()
        for row_start, height in zip(
            range(0, len(self._items), columns), self._row_heights(rect.width()), strict=True
        ):
            for offset, item in enumerate(self._items[row_start : row_start + columns]):
                x = rect.x() + offset * (column_width + self._spacing)
                item.setGeometry(QRect(x, y, column_width, height))
            y += height + self._spacing
        self.columns = columns

    # --- arrangement ------------------------------------------------------------------------------------

    def columns_for(self, width: int) -> int:
        """How many columns ``width`` gets (at least one)."""
        fitting = (width + self._spacing) // (self.min_column_width + self._spacing)
        return balanced_columns(len(self._items), max(1, min(self.max_columns, fitting)))

    def _column_width(self, width: int, columns: int) -> int:
        return max(1, (width - self._spacing * (columns - 1)) // columns)

    def _row_heights(self, width: int) -> list[int]:
        columns = self.columns_for(width)
        column_width = self._column_width(width, columns)
        heights = []
        for row_start in range(0, len(self._items), columns):
            row = self._items[row_start : row_start + columns]
            heights.append(
                max(
                    max(
                        item.heightForWidth(column_width)
                        if item.hasHeightForWidth()
                        else item.sizeHint().height(),
                        item.minimumSize().height(),
                    )
                    for item in row
                )
            )
        return heights


class ReflowGrid(QWidget):
    """A widget holding a :class:`ReflowLayout`; ``add_widget`` appends."""

    def __init__(
        self, min_column_width: int, max_columns: int, parent: QWidget | None = None, spacing: int = 8
    ) -> None:
        super().__init__(parent)
        self._layout = ReflowLayout(min_column_width, max_columns, spacing)
        self.setLayout(self._layout)
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)

    def add_widget(self, widget: QWidget) -> None:
        self._layout.addWidget(widget)

    @property
    def columns(self) -> int:
        """The columns the widgets are in now."""
        return self._layout.columns

    def columns_for(self, width: int) -> int:
        return self._layout.columns_for(width)
