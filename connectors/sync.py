"""The sync engine: one connector config's tickets into the store, page by page, resumable anywhere.

Per page, ONE transaction holds the page's upserts, the cursor after it and the run's running counts, so a
sync killed at any point (an error after page k, the task cancelled, the process killed) leaves pages 1..k
stored and the cursor at page k; the next run resumes from there with nothing lost or duplicated (tickets are
unique by (system, instance, external id) within a tenant and upserted by content hash; the instance is the
host of the config's base URL, see the identity rule in :mod:`core.store.models`).

Incremental by the source's update time with the record id as tie-break (:class:`~connectors.base.Cursor`).
The lookback overlap is the connector's job: the engine hands ``fetch`` the stored cursor unchanged and the
connector subtracts ``spec.timestamp_precision`` when it builds its query, because only it knows how its query
language rounds (Jira's JQL has minute precision). Of what the overlap re-reads, records at exactly the cursor
with an id at or before its id are skipped (:meth:`Connector.already_stored`: the page that set the cursor
stored them); the rest go through the upsert and count as unchanged unless they really changed.

New and changed tickets need no queue: ``core.matching.analysis.analyze_pending`` picks every ticket whose
content hash
has no current analysis, which is exactly what an insert or a content change produces.

Every run leaves a ``sync_runs`` row (running, then succeeded / failed / cancelled, with counts and the
connector error's message, redacted and cut to :data:`~connectors.secrets.MAX_STORED_TEXT`), updates
``last_sync_at`` / ``last_successful_sync_at`` and counts consecutive failures; at
:data:`ALERT_AFTER_FAILURES` the report carries an alert and an audit row records it once. The audit trail
has two rows per run: ``connector.sync.start`` in the transaction that opens the run (so a run killed
part-way is on the trail too) and ``connector.sync`` with its outcome when it ends, or when the next run
finds it cut off. Each record a page hands the engine counts exactly once: new, updated, unchanged, failed
or skipped (a ticket another config of the instance brought, re-read unchanged, is unchanged).

Progress is reported and cancellation asked for through one :class:`core.progress.Progress`: after each
stored page the run reports its counts, and a cancelled run is recorded as cancelled (its stored pages kept)
and raises :class:`SyncCancelledError`, the :class:`~core.errors.OperationCancelledError` every caller treats
as a clean stop. Cancelling the asyncio task works too (recorded the same, ``CancelledError`` propagates).

The store is written on the event loop thread (short transactions, one per page); the HTTP waits are async.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec

import httpx
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import sessionmaker

from connectors.base import Connector, Cursor, Page
from connectors.configs import ConfigRow, config_row, settings_for
from connectors.errors import ConfigurationError, ConnectorError
from connectors.http import RetryPolicy, Sleep
from connectors.registry import connector_class
from connectors.secrets import redacted_excerpt
from core.errors import OperationCancelledError
from core.knowledge.store import upsert_articles
from core.logs import internal_error_text
from core.monitoring.ingest import store_events
from core.progress import NO_PROGRESS, Progress
from core.store.connector_secrets import record_secrets_used
from core.store.locks import connector_sync_lock
from core.store.models import ConnectorConfig, SyncCursor, SyncRun, SyncStatus
from core.store.repository import current_actor, record_audit
from core.store.tenancy import TenantSession
from core.store.tickets import TicketChanges, instance_of, upsert_tickets
from core.workflow.outcome_inference import infer_from_changes

log = logging.getLogger(__name__)
P = ParamSpec("P")

TICKETS_STREAM = "tickets"
# roadmap: Monitoring & Observability, Alerts ("connector sync failure > 3 attempts"): raised at the third.
ALERT_AFTER_FAILURES = 3
INTERRUPTED = "interrupted: Runbook Desk stopped during this sync; the next sync resumes from its last page"

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class SyncReport:
    config_id: int
    config_name: str
    run_id: int
    status: SyncStatus = SyncStatus.RUNNING
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    skipped: int = 0  # re-read at exactly the cursor and stored already: not counted anywhere else
    pages: int = 0
    error: str | None = None
    consecutive_failures: int = 0
    alert: bool = False
    requests_sent: int = 0
    elapsed_s: float = 0.0
    full: bool = False

    @property
    def ok(self) -> bool:
        return self.status is SyncStatus.SUCCEEDED

    def headline(self) -> str:
        counts = (
            f"{self.new} new, {self.updated} updated, {self.unchanged} unchanged, {self.failed} failed "
            f"({self.pages} pages, {self.elapsed_s:.1f} s)"
        )
        if self.ok:
            return f"{self.config_name}: synced: {counts}"
        text = f"{self.config_name}: sync {self.status.value}: {counts}"
        if self.error:
            text += f"; {self.error}"
        if self.alert:
            text += f"; {self.consecutive_failures} failures in a row"
        return text

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"status": self.status.value}


class SyncCancelledError(OperationCancelledError):
    """The caller cancelled the sync between two pages; ``report`` holds what was stored until then."""

    def __init__(self, report: SyncReport) -> None:
        super().__init__(f"sync of {report.config_name} cancelled")
        self.report = report


def _holding_sync_lock(
    run: Callable[Concatenate[sessionmaker[TenantSession], int, P], Coroutine[Any, Any, SyncReport]],
) -> Callable[Concatenate[sessionmaker[TenantSession], int, P], Coroutine[Any, Any, SyncReport]]:
    """Run a sync under its connector's sync lock (:mod:`core.store.locks`): on a team database a second
    scheduler or desktop gets :class:`~core.store.locks.SyncBusyError` at once, naming who syncs, and
    records nothing (it would otherwise close the running sync's run as interrupted)."""

    @functools.wraps(run)
    async def locked(
        sessions: sessionmaker[TenantSession], config_id: int, /, *args: P.args, **kwargs: P.kwargs
    ) -> SyncReport:
        with sessions() as session:
            config = session.get(ConnectorConfig, config_id)
            name = config.name if config is not None else f"#{config_id}"
            engine = session.get_bind()
        assert isinstance(engine, Engine)
        with connector_sync_lock(engine, config_id, name):
            return await run(sessions, config_id, *args, **kwargs)

    return locked


@_holding_sync_lock
async def run_sync(
    sessions: sessionmaker[TenantSession],
    config_id: int,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    full: bool = False,
    progress: Progress = NO_PROGRESS,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = utcnow,
    retry: RetryPolicy | None = None,
    page_size: int | None = None,
    actor: str | None = None,
) -> SyncReport:
    """Sync one config's tickets; returns the report, also when the connector failed (``report.ok``).

    ``full`` ignores the stored cursor (a re-read of everything; unchanged tickets count as unchanged).
    ``progress`` hears the counts after each stored page and is asked then whether to stop: a cancelled run
    is recorded and raises :class:`SyncCancelledError`. Connector errors are recorded and reported, not
    raised; anything else is a bug: the run is recorded as failed and the exception propagates. ``clock``
    stamps the run and the config's last sync times (the scheduler passes its own).
    """
    started = time.perf_counter()
    who = actor or current_actor()
    with sessions.begin() as session:
        config = session.get(ConnectorConfig, config_id)
        if config is None:
            raise ConfigurationError(f"connector #{config_id}", "no such connector config")
        row = config_row(config)
        _close_interrupted_runs(session, row, clock(), who)
        run = SyncRun(
            tenant_id=session.tenant_id,
            connector_config_id=config_id,
            connector_name=row.name,
            status=SyncStatus.RUNNING,
            started_at=clock(),
        )
        session.add(run)
        session.flush()
        report = SyncReport(config_id, row.name, run.id, full=full)
        record_audit(
            session,
            actor=who,
            action="connector.sync.start",
            entity_type="connector_config",
            entity_id=config_id,
            after={"name": row.name, "run_id": run.id, "full": full},
        )
        stored_state = session.scalar(
            select(SyncCursor.state).where(
                SyncCursor.connector_config_id == config_id, SyncCursor.stream == TICKETS_STREAM
            )
        )
    since = None if full else Cursor.from_state(stored_state)
    log.info(
        "sync %s started (run %s, from %s)", row.name, report.run_id, since.to_state() if since else "start"
    )
    connector: Connector | None = None
    finished = False

    def finish(status: SyncStatus, error: str | None) -> None:
        nonlocal finished
        _finish(sessions, row, report, status, error, connector, started, who, clock)
        finished = True

    try:
        try:
            instance = _instance(row)
            settings = settings_for(row)
            _note_secrets_used(sessions, row, tuple(settings.secrets), report.run_id, who, clock())
            connector = connector_class(row.connector_type).create(
                settings, transport=transport, sleep=sleep, retry=retry
            )
            # A request waiting on a slow or hung server says so every second (connectors.http limits).
            connector.http.on_wait = lambda text: progress.report(report.pages, None, f"{row.name}: {text}")
            await _pull(sessions, connector, row, instance, since, report, progress, page_size)
        except ConnectorError as exc:
            finish(SyncStatus.FAILED, str(exc))
        except (asyncio.CancelledError, SyncCancelledError):
            finish(SyncStatus.CANCELLED, "cancelled")
            raise
        else:
            finish(SyncStatus.SUCCEEDED, None)
    finally:
        if not finished:  # a bug, not a connector error: record it, let it propagate
            finish(SyncStatus.FAILED, internal_error_text())  # names the log file when there is one
            log.error("sync %s: internal error", row.name, exc_info=True)  # the exception on its way out
        if connector is not None:
            await _close(connector)
    return report


def _note_secrets_used(
    sessions: sessionmaker[TenantSession],
    row: ConfigRow,
    fields: tuple[str, ...],
    run_id: int,
    actor: str,
    now: datetime,
) -> None:
    """Once per run, not per request: ``last_used_at`` and a ``secret.used`` audit row (names only)."""
    if not fields:
        return
    with sessions.begin() as session:
        record_secrets_used(
            session,
            config_id=row.id,
            connector_name=row.name,
            fields=fields,
            via="sync",
            actor=actor,
            now=now,
            run_id=run_id,
        )


def _instance(row: ConfigRow) -> str:
    """The instance this config's records belong to (the identity rule in core.store.models)."""
    try:
        return instance_of(row.base_url)
    except ValueError as exc:
        raise ConfigurationError(row.name, f"the base URL names no instance: {exc}") from None


async def _pull(
    sessions: sessionmaker[TenantSession],
    connector: Connector,
    row: ConfigRow,
    instance: str,
    since: Cursor | None,
    report: SyncReport,
    progress: Progress,
    page_size: int | None,
) -> None:
    current = since
    # A server that stops advancing is stopped by the one guard the page loop owns (connectors.base).
    async for page in connector.fetch(since, page_size=page_size):
        current = _store_page(sessions, connector, row.id, instance, report, page, current)
        report.requests_sent = connector.http.requests_sent
        progress.report(
            report.pages, None, f"{report.new:,} new, {report.updated:,} updated ({report.pages:,} pages)"
        )
        if progress.cancelled:
            raise SyncCancelledError(report)
        # Yield to the loop between pages even when the transport never waits (a local fake, a cache): the
        # GUI stays responsive and a cancellation lands here, between two committed pages.
        await asyncio.sleep(0)


def _store_page(
    sessions: sessionmaker[TenantSession],
    connector: Connector,
    config_id: int,
    instance: str,
    report: SyncReport,
    page: Page,
    current: Cursor | None,
) -> Cursor | None:
    """Upserts, the cursor and the run's counts in one transaction; returns the cursor now stored."""
    tickets = [t for t in page.tickets if current is None or not connector.already_stored(t, current)]
    skipped = len(page.tickets) - len(tickets)
    for failure in page.failures:
        log.info("sync %s: record %s not stored: %s", connector.name, failure.external_id, failure.reason)
    cursor = _later(current, page.cursor)
    changes = TicketChanges()
    with sessions.begin() as session:
        new, updated, unchanged = (
            upsert_tickets(
                session, tickets, instance=instance, connector_config_id=config_id, changes=changes
            )
            if tickets
            else (0, 0, 0)
        )
        # What the source's new history says of linked runbooks (resolved, reopened, recurred), with the page.
        infer_from_changes(session, changes)
        if page.events:  # a monitoring connector's page: events deduplicated into alerts (core.monitoring)
            ingested = store_events(session, page.events, instance=instance, connector_config_id=config_id)
            new += ingested.new
            updated += ingested.updated
            unchanged += ingested.unchanged
        if page.articles:  # a knowledge connector's page: articles upserted like tickets (core.knowledge)
            stored = upsert_articles(session, page.articles, instance=instance, connector_config_id=config_id)
            new += stored.new
            updated += stored.updated
            unchanged += stored.unchanged
        if cursor is not None and cursor != current:
            _save_cursor(session, config_id, cursor)
        session.execute(
            update(SyncRun)
            .where(SyncRun.id == report.run_id)
            .values(
                items_new=SyncRun.items_new + new,
                items_updated=SyncRun.items_updated + updated,
                items_unchanged=SyncRun.items_unchanged + unchanged,
                items_failed=SyncRun.items_failed + len(page.failures),
            )
        )
    report.pages += 1
    report.new += new
    report.updated += updated
    report.unchanged += unchanged
    report.failed += len(page.failures)
    report.skipped += skipped
    return cursor


def _later(current: Cursor | None, candidate: Cursor) -> Cursor | None:
    """The cursor to keep: never move back (a first page made only of the lookback overlap ends earlier)."""
    if candidate.updated_at is None:
        return current
    if current is None or current.updated_at is None:
        return candidate
    if (candidate.updated_at, candidate.last_id or "") >= (current.updated_at, current.last_id or ""):
        return candidate
    return current


def _save_cursor(session: TenantSession, config_id: int, cursor: Cursor) -> None:
    stored = session.scalar(
        select(SyncCursor).where(
            SyncCursor.connector_config_id == config_id, SyncCursor.stream == TICKETS_STREAM
        )
    )
    if stored is None:
        session.add(
            SyncCursor(
                tenant_id=session.tenant_id,
                connector_config_id=config_id,
                stream=TICKETS_STREAM,
                state=cursor.to_state(),
            )
        )
    else:
        stored.state = cursor.to_state()


def stored_cursor(session: TenantSession, config_id: int) -> Cursor | None:
    """The cursor the next incremental sync of this config starts from."""
    state = session.scalar(
        select(SyncCursor.state).where(
            SyncCursor.connector_config_id == config_id, SyncCursor.stream == TICKETS_STREAM
        )
    )
    return Cursor.from_state(state)


def _close_interrupted_runs(session: TenantSession, row: ConfigRow, now: datetime, actor: str) -> None:
    """A run still "running" when a new one starts was cut off by a crash or a kill; say so, and audit its
    end (the run's start is on the trail already)."""
    running = SyncRun.connector_config_id == row.id, SyncRun.status == SyncStatus.RUNNING
    cut_off = list(session.scalars(select(SyncRun.id).where(*running)))
    if not cut_off:
        return
    session.execute(
        update(SyncRun)
        .where(*running)
        .values(status=SyncStatus.FAILED, error_text=INTERRUPTED, finished_at=now)
    )
    for run_id in cut_off:
        _audit_outcome(session, row, actor, run_id, SyncStatus.FAILED, {"error": INTERRUPTED})


def _audit_outcome(
    session: TenantSession,
    row: ConfigRow,
    actor: str,
    run_id: int,
    status: SyncStatus,
    details: dict[str, Any],
) -> None:
    """The one "connector.sync" outcome row, whether the run ended here or a later sync found it cut off."""
    record_audit(
        session,
        actor=actor,
        action="connector.sync",
        entity_type="connector_config",
        entity_id=row.id,
        after={"name": row.name, "run_id": run_id, "status": status.value, **details},
    )


def _finish(
    sessions: sessionmaker[TenantSession],
    row: ConfigRow,
    report: SyncReport,
    status: SyncStatus,
    error: str | None,
    connector: Connector | None,
    started: float,
    actor: str,
    clock: Clock,
) -> None:
    now = clock()
    # The HTTP layer masks secrets already; a connector's own message may not, and a server's may be huge.
    error = redacted_excerpt(error) if error else error
    report.status = status
    report.error = error
    report.elapsed_s = time.perf_counter() - started
    if connector is not None:
        report.requests_sent = connector.http.requests_sent
    with sessions.begin() as session:
        run = session.get(SyncRun, report.run_id)
        if run is not None:
            run.status = status
            run.finished_at = now
            run.error_text = error
            lowest = connector.http.lowest_rate_limit if connector is not None else None
            if lowest is not None:  # the "rate limit approaching" health alert reads it
                run.rate_limit_remaining, run.rate_limit_limit = lowest.remaining, lowest.limit
        counts = {
            "full": report.full,
            # Every record the pages handed over, each counted once in exactly one of the five below.
            "fetched": report.new + report.updated + report.unchanged + report.failed + report.skipped,
            "new": report.new,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "failed": report.failed,
            "skipped": report.skipped,
            "pages": report.pages,
            "requests": report.requests_sent,
            "error": error,
        }
        _audit_outcome(session, row, actor, report.run_id, status, counts)
        config = session.get(ConnectorConfig, row.id)
        if config is None:  # removed while it synced: its run and audit rows stay, nothing else to update
            return
        config.last_sync_at = now
        if status is SyncStatus.SUCCEEDED:
            config.last_successful_sync_at = now
            config.consecutive_failures = 0
        elif status is SyncStatus.FAILED:
            config.consecutive_failures += 1
        report.consecutive_failures = config.consecutive_failures
        report.alert = status is SyncStatus.FAILED and config.consecutive_failures >= ALERT_AFTER_FAILURES
        if status is SyncStatus.FAILED and config.consecutive_failures == ALERT_AFTER_FAILURES:
            record_audit(
                session,
                actor=actor,
                action="connector.sync_alert",
                entity_type="connector_config",
                entity_id=row.id,
                after={"consecutive_failures": config.consecutive_failures, "last_error": error},
            )
    log.info("%s", report.headline())


async def _close(connector: Connector) -> None:
    try:
        await connector.close()
    except ConnectorError as exc:  # a failed logout must not turn a stored sync into a failure
        log.info("%s: closing the session failed: %s", connector.name, exc)
