"""A :class:`core.progress.Progress` for tests: records every report and can ask for a stop after some."""

from __future__ import annotations


class RecordingProgress:
    """Records ``report`` calls; ``cancelled`` turns true once ``cancel_after`` reports were made.

    ``cancel_after=0`` cancels before any work; ``None`` never cancels.
    """

    def __init__(self, cancel_after: int | None = None) -> None:
        self.reports: list[tuple[int, int | None, str]] = []
        self._cancel_after = cancel_after

    def report(self, done: int, total: int | None = None, message: str = "") -> None:
        self.reports.append((done, total, message))

    @property
    def cancelled(self) -> bool:
        return self._cancel_after is not None and len(self.reports) >= self._cancel_after
