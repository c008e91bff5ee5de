"""How long work reports progress and learns it should stop: one protocol for core, connectors and the UI.

Importing a file, analysing tickets, clustering gaps and syncing a connector all take a ``Progress``. The
desktop's task context, the CLI's stderr reporter and :data:`NO_PROGRESS` (tests, scripts) implement it.
Cancellation is reported one way: the work raises :class:`OperationCancelledError` (via
:func:`raise_if_cancelled`); callers that started the work treat it as a clean stop, not a failure.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from core.errors import OperationCancelledError

__all__ = ["NO_PROGRESS", "OperationCancelledError", "Progress", "raise_if_cancelled"]


@runtime_checkable
class Progress(Protocol):
    """Where long work reports how far it is, and asks whether it should stop.

    ``total`` is None when the amount of work is unknown (a busy indicator). Implementations throttle
    ``report`` themselves, so work may call it per item.
    """

    def report(self, done: int, total: int | None = None, message: str = "") -> None: ...

    @property
    def cancelled(self) -> bool: ...


class _NoProgress:
    """Reports nowhere and never cancels: for tests, scripts and callers with nothing to show."""

    def report(self, done: int, total: int | None = None, message: str = "") -> None:
        return None

    @property
    def cancelled(self) -> bool:
        return False


NO_PROGRESS: Progress = _NoProgress()


def raise_if_cancelled(progress: Progress, what: str) -> None:
    """Stop ``what`` (e.g. "gap analysis") here if the caller asked to."""
    if progress.cancelled:
        raise OperationCancelledError(f"{what} cancelled")
