"""core.store.sql: the SQL that differs between SQLite and PostgreSQL.

On SQLite each helper must render exactly the SQL the app ran before team mode (text and bound values); on
both engines it must compute the same answers, checked on real rows (PostgreSQL: the team-mode test server,
skipped with the reason without one).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import sessionmaker

from core.store.db import create_postgres_engine, create_sqlite_engine
from core.store.models import Ticket, TicketKind
from core.store.sql import (
    fit_row,
    fit_to_column,
    hours_between,
    insert_ignoring_duplicates,
    json_field_equals,
    json_for_postgres,
    time_bucket,
)
from core.store.tenancy import TenantSession
from core.store.tickets import TicketValues, upsert_tickets
from tests.helpers.postgres import PgServer

METADATA = MetaData()
EVENTS = Table(
    "rd_sql_events",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("key", String(20), unique=True),
    Column("after", JSON),
    Column("opened_at", DateTime),
    Column("closed_at", DateTime),
)


def sqlite_sql(statement: Any) -> tuple[str, list[Any]]:
    """The SQL text and the values bound to its placeholders, in order: what SQLite receives."""
    compiled = statement.compile(dialect=sqlite.dialect())
    return str(compiled), [compiled.params[name] for name in compiled.positiontup or ()]


def test_sqlite_sql_is_what_the_app_ran_before() -> None:
    old_insert = insert(EVENTS).prefix_with("OR IGNORE")
    assert sqlite_sql(insert_ignoring_duplicates(EVENTS)) == sqlite_sql(old_insert)

    old_json = select(EVENTS.c.id).where(func.json_extract(EVENTS.c.after, "$.ticket_id") == 7)
    new_json = select(EVENTS.c.id).where(json_field_equals(EVENTS.c.after, "ticket_id", 7))
    assert sqlite_sql(new_json) == sqlite_sql(old_json)

    old_hours = (func.julianday(EVENTS.c.closed_at) - func.julianday(EVENTS.c.opened_at)) * 24.0
    new_hours = hours_between(EVENTS.c.opened_at, EVENTS.c.closed_at)
    assert sqlite_sql(select(func.sum(new_hours)))[0] == sqlite_sql(select(func.sum(old_hours)))[0]
    assert sqlite_sql(select(func.sum(new_hours)))[1] == [24.0]

    old_buckets = {
        "hour": func.strftime("%Y-%m-%d %H:00:00", EVENTS.c.opened_at),
        "day": func.strftime("%Y-%m-%d 00:00:00", EVENTS.c.opened_at),
        "week": func.strftime("%Y-%m-%d 00:00:00", EVENTS.c.opened_at, "weekday 0", "-6 days"),
    }
    for unit, old in old_buckets.items():
        new = time_bucket(EVENTS.c.opened_at, unit)  # type: ignore[arg-type]
        assert sqlite_sql(select(new).group_by(new)) == sqlite_sql(select(old).group_by(old)), unit


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.team)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = create_sqlite_engine(tmp_path / "sql.sqlite3")
        METADATA.create_all(engine)
        yield engine
        engine.dispose()
        return
    pg_server: PgServer = request.getfixturevalue("pg_server")
    database = pg_server.new_database(migrated=False)
    engine = create_postgres_engine(pg_server.url(database), password=pg_server.admin_password)
    METADATA.create_all(engine)
    yield engine
    engine.dispose()
    pg_server.drop_database(database)


def row(key: str, opened: str, closed: str, after: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": key,
        "opened_at": datetime.fromisoformat(opened),
        "closed_at": datetime.fromisoformat(closed),
        "after": after,
    }


ROWS = [
    # Sunday 2026-06-07 and Monday 2026-06-08: one ISO week apart.
    row("a", "2026-06-07 09:15:00", "2026-06-07 10:45:00", {"ticket_id": 7, "who": "ann"}),
    row("b", "2026-06-07 09:40:00", "2026-06-08 09:40:00", {"ticket_id": 8, "who": "7"}),
    row("c", "2026-06-08 00:10:00", "2026-06-08 03:10:00", {"ticket_id": 7}),
]


def test_each_helper_answers_alike_on_both_engines(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert_ignoring_duplicates(EVENTS), ROWS)
        # Duplicates of "a" and "c" are skipped, the new "d" lands: no error, no overwrite.
        conn.execute(
            insert_ignoring_duplicates(EVENTS),
            [
                ROWS[0] | {"after": {"ticket_id": 99}},
                row("d", "2026-06-15 12:00:00", "2026-06-15 12:30:00", {}),
            ],
        )
        keys = dict(conn.execute(select(EVENTS.c.key, EVENTS.c.after)).all())
        assert sorted(keys) == ["a", "b", "c", "d"] and keys["a"]["ticket_id"] == 7

        def keys_where(condition: Any) -> list[str]:
            return sorted(conn.scalars(select(EVENTS.c.key).where(condition)))

        assert keys_where(json_field_equals(EVENTS.c.after, "ticket_id", 7)) == ["a", "c"]
        assert keys_where(json_field_equals(EVENTS.c.after, "who", "7")) == ["b"]
        assert keys_where(json_field_equals(EVENTS.c.after, "who", "bob")) == []

        hours: dict[str, float] = dict(
            conn.execute(select(EVENTS.c.key, hours_between(EVENTS.c.opened_at, EVENTS.c.closed_at))).all()
        )
        assert {key: round(value, 6) for key, value in hours.items()} == {
            "a": 1.5,
            "b": 24.0,
            "c": 3.0,
            "d": 0.5,
        }
        total = conn.scalar(select(func.sum(hours_between(EVENTS.c.opened_at, EVENTS.c.closed_at))))
        assert total is not None and round(total, 6) == 29.0

        # Hour, day and week in one connection: each unit compiles (and is cached) on its own.
        expected = {
            "hour": {"2026-06-07 09:00:00": 2, "2026-06-08 00:00:00": 1, "2026-06-15 12:00:00": 1},
            "day": {"2026-06-07 00:00:00": 2, "2026-06-08 00:00:00": 1, "2026-06-15 00:00:00": 1},
            "week": {"2026-06-01 00:00:00": 2, "2026-06-08 00:00:00": 1, "2026-06-15 00:00:00": 1},
        }
        for unit, counts in expected.items():
            bucket = time_bucket(EVENTS.c.opened_at, unit)  # type: ignore[arg-type]
            found = conn.execute(select(bucket, func.count()).group_by(bucket)).all()
            assert dict(found) == counts, unit


def test_fit_to_column_cuts_only_bounded_text() -> None:
    assert fit_to_column(EVENTS.c.key, "x" * 25) == "x" * 20
    assert fit_to_column(EVENTS.c.key, "short") == "short"
    assert fit_to_column(EVENTS.c.key, None) is None
    assert fit_to_column(EVENTS.c.after, "x" * 25) == "x" * 25  # not a String(n)
    row_values = {"key": "k" * 30, "after": {"a": 1}, "unknown": "u" * 30}
    assert fit_row(EVENTS, row_values) == {"key": "k" * 20, "after": {"a": 1}, "unknown": "u" * 30}
    assert fit_row(EVENTS, row_values, keep=frozenset({"key"}))["key"] == "k" * 30


def test_a_ticket_with_overlong_descriptive_text_is_stored_cut(sessions: sessionmaker[TenantSession]) -> None:
    """A source system's 300-character category or 3000-character URL: stored cut to the column on either
    engine (PostgreSQL refused the whole batch), with the content hash of the text as received."""
    values = TicketValues(
        external_id="INC1",
        source_system="servicenow",
        title="VPN drops",
        description="",
        status="s" * 150,
        severity=None,
        assignee="a" * 250,
        kind=TicketKind.INCIDENT,
        category="c" * 300,
        configuration_item=None,
        resolution_notes=None,
        resolved_at=None,
        created_at=None,
        updated_at=None,
        source_url="https://example.test/" + "u" * 3000,
        raw_payload={},
    )
    with sessions.begin() as session:
        assert upsert_tickets(session, [values], instance="example.test") == (1, 0, 0)
    with sessions.begin() as session:
        ticket = session.scalars(select(Ticket)).one()
        assert (len(ticket.status or ""), len(ticket.assignee or ""), len(ticket.category or "")) == (
            100,
            200,
            200,
        )
        assert ticket.source_url == values.source_url[:2000]  # type: ignore[index]
        assert ticket.content_hash == values.content_hash
        assert upsert_tickets(session, [values], instance="example.test") == (
            0,
            0,
            1,
        )  # unchanged, not updated


def test_non_finite_numbers_in_a_json_column_are_stored_on_both_engines(engine: Engine) -> None:
    """``json.loads`` reads NaN and Infinity from a file or an API; PostgreSQL's json type refused the row."""
    payload = {"Summary": float("inf"), "nested": [float("-inf"), {"x": float("nan")}], "ok": 1.5}
    with engine.begin() as conn:
        conn.execute(insert(EVENTS), [row("a", "2026-06-07 09:15:00", "2026-06-07 10:45:00", payload)])
        stored: dict[str, Any] = conn.execute(select(EVENTS.c.after)).scalar_one()
    if engine.dialect.name == "sqlite":
        assert stored["Summary"] == float("inf") and stored["ok"] == 1.5  # as before
    else:
        assert stored == {"Summary": "Infinity", "nested": ["-Infinity", {"x": "NaN"}], "ok": 1.5}
    assert json_for_postgres({"a": [1, "b", None]}) == '{"a": [1, "b", null]}'


def test_a_nul_character_in_text_is_dropped_on_postgresql_and_kept_on_sqlite(engine: Engine) -> None:
    """PostgreSQL's text cannot hold U+0000 (the whole batch failed); SQLite stores it as before."""
    rows = [row(f"k{i}\x00", "2026-06-07 09:15:00", "2026-06-07 10:45:00", {"t": "a\x00b"}) for i in range(2)]
    with engine.begin() as conn:
        conn.execute(insert(EVENTS), rows)  # an executemany, like an import batch
        stored = conn.execute(select(EVENTS.c.key, EVENTS.c.after).order_by(EVENTS.c.key)).all()
    expected_key = "k0\x00" if engine.dialect.name == "sqlite" else "k0"
    assert stored[0] == (expected_key, {"t": "a\x00b"})  # JSON carries it escaped on both
