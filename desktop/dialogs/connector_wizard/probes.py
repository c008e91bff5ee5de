"""The wizard's network-only work: the connection test and the preview, awaited on the GUI thread's loop.

The app's one rule for async work (:mod:`desktop.background.sync_jobs`): network-only coroutines run on the
GUI loop (qasync); work that writes the store runs on a worker. The test and the preview only talk to the
server, so they are tasks on the running loop: the window stays responsive while they await the network,
Cancel is ``task.cancel()`` (the connector's client is closed on the way out), and their results are used on
the GUI thread where they are awaited, with no thread and no signal in between. The one blocking step, the
keychain read in edit mode (a keychain may wait on an unlock prompt), is awaited through the loop's executor,
which hands its result back with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from connectors.base import CheckResult, ConnectorSettings, diagnose
from connectors.errors import ConnectorError
from connectors.registry import connector_class
from core.knowledge.records import ArticleValues
from core.monitoring.events import AlertEvent
from core.store.tickets import TicketValues
from desktop.background.connector_jobs import ConnectorDraft, draft_settings
from desktop.background.sync_jobs import transport_for
from desktop.context import TransportFactory

log = logging.getLogger(__name__)

PREVIEW_LIMIT = 10


@dataclass(frozen=True, slots=True)
class PreviewResult:
    # A monitoring connector's records are alert events, a knowledge connector's articles.
    tickets: tuple[TicketValues | AlertEvent | ArticleValues, ...]
    problem: CheckResult | None = None  # why there is no preview


async def _settings(draft: ConnectorDraft) -> ConnectorSettings:
    return await asyncio.get_running_loop().run_in_executor(None, draft_settings, draft)


async def check_draft(draft: ConnectorDraft, transport_factory: TransportFactory | None) -> CheckResult:
    """Reachability, TLS, authentication and read permission, as the connector's ``check`` diagnoses them."""
    try:
        settings = await _settings(draft)
        connector = connector_class(draft.connector_type).create(
            settings, transport=transport_for(transport_factory, settings)
        )
    except ConnectorError as exc:  # an unreadable CA bundle, a locked keychain
        return diagnose(exc)
    try:
        return await connector.check()
    finally:
        await connector.close()


async def preview_draft(
    draft: ConnectorDraft, transport_factory: TransportFactory | None, limit: int = PREVIEW_LIMIT
) -> PreviewResult:
    """The first ``limit`` records as the sync would store them, so the analyst sees the mapping works."""
    try:
        settings = await _settings(draft)
        connector = connector_class(draft.connector_type).create(
            settings, transport=transport_for(transport_factory, settings)
        )
    except ConnectorError as exc:
        return PreviewResult((), diagnose(exc))
    try:
        return PreviewResult(tuple(await connector.preview(limit)))
    except ConnectorError as exc:
        return PreviewResult((), diagnose(exc))
    finally:
        await connector.close()


GuiTask = asyncio.Task[None]


def start_on_gui_loop(
    work: Coroutine[Any, Any, None], title: str, on_error: Callable[[GuiTask, BaseException], None]
) -> GuiTask:
    """``work`` as a task on the running (qasync) loop; a bug in it is logged and handed to ``on_error``.

    ``work`` shows its own result: it runs on the GUI thread, so a cancel can only land while it awaits,
    never between its result and showing it. ``on_error`` gets the task too, so a page can ignore the
    failure of a task it has already replaced. Raises ``RuntimeError`` when no loop runs (the app installs
    qasync's in :func:`desktop.app.run_app`; the desktop tests, the ``gui_loop`` fixture).
    """
    task = asyncio.get_running_loop().create_task(work, name=title)

    def report_failure(done: GuiTask) -> None:
        if done.cancelled():
            return
        exc = done.exception()
        if exc is not None:
            log.error("%s failed", title, exc_info=exc)
            on_error(done, exc)

    task.add_done_callback(report_failure)
    return task
