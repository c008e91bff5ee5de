"""Engine set-up for the workspace's SQLite file.

WAL lets the GUI read while a background job writes; ``foreign_keys`` is off by default in SQLite and our
cascades depend on it; the busy timeout turns a momentary writer collision into a short wait instead of an
immediate "database is locked".
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event

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
