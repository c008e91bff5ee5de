"""Engine set-up: the workspace's SQLite file, or a team's PostgreSQL database (team mode).

WAL lets the GUI read while a background job writes; ``foreign_keys`` is off by default in SQLite and our
cascades depend on it; the busy timeout turns a momentary writer collision into a short wait instead of an
immediate "database is locked".
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError

from core.errors import WorkspaceError
from core.store.sql import json_for_postgres, register_nul_free_text

BUSY_TIMEOUT_MS = 10_000


def _fts_terms(text: str | None) -> str:
    """The FTS triggers' tokeniser, imported on first use: its vocabulary and patterns cost ~40 ms to load,
    which a command that writes no ticket (``tickets list``) should not pay."""
    from core.matching.lexical import fts_terms

    return fts_terms(text)


def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # The FTS triggers (migration 0003) call this; every connection must have it before touching tickets.
    dbapi_connection.create_function("rd_fts_terms", 1, _fts_terms, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_sqlite_engine(db_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{db_path}", connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _on_connect)
    return engine


# --- Team mode: PostgreSQL ---------------------------------------------------------------------------------

POSTGRES_KEYRING_SERVICE = "runbook-desk/postgresql"


def postgres_keyring_account(url: URL) -> str:
    """The keychain entry of a database password: login, server and database (never the password)."""
    return f"{url.username or ''}@{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def parse_database_url(url: str) -> URL:
    """A PostgreSQL URL for team mode, with SQLAlchemy's psycopg 3 driver; refused with a reason when it is
    not PostgreSQL or carries a password (passwords live in the keychain, ``~/.pgpass`` or a libpq service
    file, never in a setting). The message shows the URL with its password masked."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise WorkspaceError(
            f"{url!r} is not a database URL (postgresql://login@host:5432/database)"
        ) from exc
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() != "postgresql":
        raise WorkspaceError(f"team mode needs a PostgreSQL URL (postgresql://…), not {shown}")
    if parsed.password is not None:
        raise WorkspaceError(
            f"the database URL {shown} carries a password: remove it and store the password with "
            "`runbook-desk team password` (the OS keychain) or in ~/.pgpass"
        )
    if not parsed.database:
        raise WorkspaceError(f"the database URL {shown} names no database (…/database at its end)")
    return parsed.set(drivername="postgresql+psycopg")


def create_postgres_engine(url: str, password: str | None = None, *, read_only: bool = False) -> Engine:
    """An engine on a team's PostgreSQL database, as this analyst's own login (``read_only``: every
    transaction read-only, for a command that only looks).

    The password is the keychain's (:data:`POSTGRES_KEYRING_SERVICE`) unless given; without either, libpq
    looks in ``~/.pgpass`` (``$PGPASSFILE``) and the service file itself, as every PostgreSQL client does.
    It is handed to the driver at connect time only: it is in no URL, log line or error.
    """
    parsed = parse_database_url(url)
    if password is None:
        import keyring
        from keyring.errors import NoKeyringError

        try:
            password = keyring.get_password(POSTGRES_KEYRING_SERVICE, postgres_keyring_account(parsed))
        except NoKeyringError:
            password = None  # a headless server (`connectors run`) has no keychain: ~/.pgpass then
    connect_args: dict[str, Any] = {"application_name": "runbook-desk", "connect_timeout": 10}
    if read_only:
        connect_args["options"] = "-c default_transaction_read_only=on"
    engine = create_engine(
        parsed, connect_args=connect_args, pool_pre_ping=True, json_serializer=json_for_postgres
    )
    event.listen(engine, "connect", _on_postgres_connect)
    if password:

        @event.listens_for(engine, "do_connect")
        def _with_password(_dialect: Any, _record: Any, _args: Any, kwargs: dict[str, Any]) -> None:
            kwargs["password"] = password

    return engine


def _on_postgres_connect(dbapi_connection: Any, _record: Any) -> None:
    register_nul_free_text(dbapi_connection)  # text SQLite took and PostgreSQL refuses (core.store.sql)
