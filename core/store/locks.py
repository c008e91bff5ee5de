"""Never two syncs of one connector at once", across processes and machines (team mode, issue 17).

A sync reads a connector's cursor, pages, and writes the new cursor; two at once would race on it and each
would close the other's run as interrupted. One desktop already never starts two (its scheduler's rule);
with a team database, the admin's desktop and a headless ``runbook-desk connectors run`` on a server could.

* PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a connection held for the whole
  sync. It is the server's, so it holds across machines, and it dies with its connection: a scheduler that
  is killed mid-sync frees the connector at once, with no lease to expire. The holder is named from
  ``pg_locks`` and ``pg_stat_activity`` (login, client address, since when).
* SQLite: one process holds the workspace (its file lock, :mod:`core.store.workspace`), so a lock in this
  process is the whole truth.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC

from sqlalchemy import Connection, Engine, text

from core.errors import RunbookDeskError

# The advisory lock's first key: "Runbook Desk connector sync" in every database; the second is the id.
SYNC_LOCK_NAMESPACE = 0x5244_5359  # "RDSY"

_local_guard = threading.Lock()
_local_held: set[tuple[str, int]] = set()


class SyncBusyError(RunbookDeskError):
    """Another scheduler or desktop is syncing this connector now; this run did not start."""


@contextmanager
def connector_sync_lock(engine: Engine, config_id: int, name: str) -> Iterator[None]:
    """Hold the connector's sync lock for the ``with`` block, or raise :class:`SyncBusyError` at once
    (never wait: the other sync will be done by the next poll)."""
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, config_id, name):
            yield
        return
    key = (str(engine.url), config_id)
    with _local_guard:
        if key in _local_held:
            raise SyncBusyError(f"connector {name} is being synced already")
        _local_held.add(key)
    try:
        yield
    finally:
        with _local_guard:
            _local_held.discard(key)


@contextmanager
def _advisory_lock(engine: Engine, config_id: int, name: str) -> Iterator[None]:
    keys = {"space": SYNC_LOCK_NAMESPACE, "id": config_id}
    with engine.connect() as connection:
        taken = connection.execute(text("SELECT pg_try_advisory_lock(:space, :id)"), keys).scalar_one()
        connection.commit()  # the lock is the session's, not the transaction's: end the read transaction
        if not taken:
            raise SyncBusyError(f"connector {name} is being synced by {_holder(connection, config_id)}")
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:space, :id)"), keys)
            connection.commit()


def _holder(connection: Connection, config_id: int) -> str:
    """Who holds the lock: "login alice (client 10.0.0.5, runbook-desk) since 11:32 UTC", as far as the
    server lets this login see (other logins' client details need pg_read_all_stats)."""
    row = connection.execute(
        text(
            "SELECT a.usename, a.client_addr, a.application_name, a.backend_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.classid = :space AND l.objid = :id AND l.objsubid = 2"
        ),
        {"space": SYNC_LOCK_NAMESPACE, "id": config_id},
    ).first()
    connection.commit()
    if row is None:
        return "another session"
    login, address, application, started = row
    where = ", ".join(str(part) for part in (address, application) if part)
    since = f" since {started.astimezone(UTC):%H:%M} UTC" if started is not None else ""
    return f"login {login}" + (f" ({where})" if where else "") + since
