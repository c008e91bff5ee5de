"""First-start splitter proportions, applied when the splitter is first shown at its real size.

``QSplitter.setSizes`` takes pixels. Called while a window is being built, before any page has its size,
the numbers are pixels of a splitter that is not laid out yet, and what the panes get once it is depends on
the stretch factors, not on the numbers (the review queue ended up 125 px wide). So the proportions wait
for the splitter's first show, when its size is the one the user sees, and are scaled to it then.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QSplitter


class SplitterProportions(QObject):
    """Sets ``splitter``'s sizes to ``proportions`` (relative weights) at its first show."""

    def __init__(self, splitter: QSplitter, proportions: Sequence[int]) -> None:
        super().__init__(splitter)
        if len(proportions) != splitter.count() or sum(proportions) <= 0:
            raise ValueError(f"{len(proportions)} proportions for {splitter.count()} panes")
        self._splitter = splitter
        self._proportions = tuple(proportions)
        self.pending = True
        if splitter.isVisible() and self._total() > 0:
            self.apply()
        else:
            splitter.installEventFilter(self)

    def _total(self) -> int:
        splitter = self._splitter
        length = (
            splitter.width() if splitter.orientation() == Qt.Orientation.Horizontal else splitter.height()
        )
        return length - splitter.handleWidth() * (splitter.count() - 1)

    def apply(self) -> None:
        total = self._total()
        weight = sum(self._proportions)
        sizes = [total * part // weight for part in self._proportions]
        sizes[-1] += total - sum(sizes)
        self._splitter.setSizes(sizes)
        self.pending = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            self.pending
            and watched is self._splitter
            and event.type() in (QEvent.Type.Show, QEvent.Type.Resize)
            and self._splitter.isVisible()
            and self._total() > 0
        ):
            self._splitter.removeEventFilter(self)
            self.apply()
        return False
