"""SQL that differs between the two stores: the workspace's SQLite file and a team's PostgreSQL database.

Why here, and why compiled per dialect: the app builds its queries once, without knowing which engine will
run them (a query may be built before a session exists, and SQLAlchemy caches the compiled form per dialect).
Each helper returns an expression that SQLAlchemy's compiler extension renders for the engine at hand:

* on SQLite, exactly the SQL the app ran before team mode (same text, same bound values), so single-user
  workspaces see no change;
* on PostgreSQL, the equivalent the server understands.

=============================  ===========================================  ===============================
helper                         SQLite                                       PostgreSQL
=============================  ===========================================  ===============================
insert_ignoring_duplicates     ``INSERT OR IGNORE INTO ...``                ``INSERT ... ON CONFLICT DO
                                                                            NOTHING``
json_field_equals              ``json_extract(col, '$.key') = value``       ``(col ->> 'key') = CAST(value
                                                                            AS TEXT)``
hours_between                  ``(julianday(end) - julianday(start))        ``EXTRACT(EPOCH FROM end -
                               * 24.0``                                     start) / 3600.0``
time_bucket                    ``strftime('%Y-%m-%d %H:00:00', col)`` ...   ``to_char(date_trunc('hour',
                                                                            col), ...)``
=============================  ===========================================  ===============================

Times are stored as naive UTC on both engines (:class:`core.store.models.UtcDateTime`): ``timestamp without
time zone`` on PostgreSQL, so ``date_trunc`` and subtraction need no time-zone conversion. A time bucket is
text of the form ``2026-06-02 09:00:00`` on both, so callers parse one format.

Other dialects (none today) get the SQLite forms.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from sqlalchemy import Float, SQLColumnExpression, String, Table, Text, cast, func, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

TimeUnit = Literal["hour", "day", "week"]


# --- INSERT, skipping rows that would break a unique key ----------------------------------------------------


class _InsertIgnoringDuplicates(Insert):
    inherit_cache = True


@compiles(_InsertIgnoringDuplicates, "postgresql")
def _insert_ignoring_duplicates_pg(
    element: _InsertIgnoringDuplicates, compiler: SQLCompiler, **kw: Any
) -> str:
    # The clause goes after VALUES and before a RETURNING that SQLAlchemy may add (an executemany fetches
    # the new ids through RETURNING on psycopg), where PostgreSQL's grammar wants it.
    sql = compiler.visit_insert(element, **kw)  # type: ignore[no-untyped-call]
    values_part, returning, rest = str(sql).partition(" RETURNING ")
    return f"{values_part} ON CONFLICT DO NOTHING{returning}{rest}"


def insert_ignoring_duplicates(table: Table) -> Insert:
    """An INSERT that skips a row whose unique key is taken (a cache another desktop filled meanwhile).

    SQLite's ``OR IGNORE`` also skips NOT NULL and CHECK failures; callers insert complete rows, so only the
    duplicate case matters and both engines behave alike for it. No RETURNING: skipped rows return nothing.
    """
    return _InsertIgnoringDuplicates(table).prefix_with("OR IGNORE", dialect="sqlite")


# --- A field of a JSON column -------------------------------------------------------------------------------


class _JsonFieldEquals(FunctionElement[bool]):
    """Clauses: the JSON column, the SQLite path (``$.key``), the key, the value."""

    # No Boolean type: SQLite would be given "... = 1" in a WHERE clause for a boolean-typed function.
    inherit_cache = True
    name = "rd_json_field_equals"


@compiles(_JsonFieldEquals)
def _json_field_equals_sqlite(element: _JsonFieldEquals, compiler: SQLCompiler, **kw: Any) -> str:
    column, path, _key, value = element.clauses
    return compiler.process(func.json_extract(column, path) == value, **kw)


@compiles(_JsonFieldEquals, "postgresql")
def _json_field_equals_pg(element: _JsonFieldEquals, compiler: SQLCompiler, **kw: Any) -> str:
    # ``json`` (not ``jsonb``) has no equality operator; ``->>`` gives the field as text, compared as text.
    column, _path, key, value = element.clauses
    field_text = compiler.process(column.op("->>")(key), **kw)
    return f"({field_text}) = {compiler.process(cast(value, Text), **kw)}"


def json_field_equals(column: SQLColumnExpression[Any], key: str, value: int | str) -> ColumnElement[bool]:
    """``column``'s top-level field ``key`` equals ``value`` (an int or a string, as the app writes them)."""
    return _JsonFieldEquals(column, literal(f"$.{key}"), literal(key), literal(value))


# --- Durations ----------------------------------------------------------------------------------------------


class _HoursBetween(FunctionElement[float]):
    inherit_cache = True
    type = Float()
    name = "rd_hours_between"


@compiles(_HoursBetween)
def _hours_between_sqlite(element: _HoursBetween, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = element.clauses
    return compiler.process((func.julianday(end) - func.julianday(start)) * 24.0, **kw)


@compiles(_HoursBetween, "postgresql")
def _hours_between_pg(element: _HoursBetween, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = element.clauses
    seconds = func.extract("epoch", end - start)
    return f"({compiler.process(seconds, **kw)} / 3600.0)"


def hours_between(start: SQLColumnExpression[Any], end: SQLColumnExpression[Any]) -> ColumnElement[float]:
    """``end - start`` in hours (a float), for sums and means in SQL. Use it inside an aggregate or a
    comparison: on SQLite it renders unparenthesised, as the app's queries always wrote it."""
    return _HoursBetween(start, end)


# --- Time buckets -------------------------------------------------------------------------------------------

_BUCKET_TEXT_PG = "YYYY-MM-DD HH24:MI:SS"


class _TimeBucket(FunctionElement[str]):
    inherit_cache = True
    type = String()
    name = "strftime"  # the column's label in a SELECT (strftime_1), as before on SQLite
    unit: TimeUnit
    sqlite_format: str
    sqlite_modifiers: tuple[str, ...] = ()


class _HourBucket(_TimeBucket):
    inherit_cache = True
    unit = "hour"
    sqlite_format = "%Y-%m-%d %H:00:00"


class _DayBucket(_TimeBucket):
    inherit_cache = True
    unit = "day"
    sqlite_format = "%Y-%m-%d 00:00:00"


class _WeekBucket(_TimeBucket):
    inherit_cache = True
    unit = "week"
    sqlite_format = "%Y-%m-%d 00:00:00"
    # "weekday 0" moves forward to the next Sunday (or stays on one); six days back is that week's Monday.
    sqlite_modifiers = ("weekday 0", "-6 days")


@compiles(_TimeBucket)
def _time_bucket_sqlite(element: _TimeBucket, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    return compiler.process(func.strftime(element.sqlite_format, column, *element.sqlite_modifiers), **kw)


@compiles(_TimeBucket, "postgresql")
def _time_bucket_pg(element: _TimeBucket, compiler: SQLCompiler, **kw: Any) -> str:
    # Literals, not bound values: PostgreSQL matches a GROUP BY expression to the SELECT's by its text, and
    # two placeholders ($1, $3) with equal values are not the same expression to it. ``date_trunc('week')``
    # starts weeks on Monday (ISO), as the SQLite form does.
    (column,) = element.clauses
    truncated = f"date_trunc('{element.unit}', {compiler.process(column, **kw)})"
    return f"to_char({truncated}, '{_BUCKET_TEXT_PG}')"


_BUCKETS: dict[TimeUnit, type[_TimeBucket]] = {"hour": _HourBucket, "day": _DayBucket, "week": _WeekBucket}


def time_bucket(column: SQLColumnExpression[Any], unit: TimeUnit) -> ColumnElement[str]:
    """The start of the UTC hour, day or ISO week (from Monday) holding ``column``'s time, as text
    ``YYYY-MM-DD HH:MM:SS`` on both engines (group by it, parse it with ``datetime.fromisoformat``)."""
    return _BUCKETS[unit](column)


# --- Text longer than its column ----------------------------------------------------------------------------


def column_length(column: Any) -> int | None:
    """The ``String(n)`` length of a table column or mapped attribute; None for unbounded text."""
    length = getattr(getattr(column, "type", None), "length", None)
    return length if isinstance(length, int) else None


def fit_to_column(column: Any, value: str | None) -> str | None:
    """``value`` cut to ``column``'s ``String(n)`` length.

    Why: PostgreSQL refuses a longer string ("value too long for type character varying(200)") and the whole
    batch with it, where SQLite stored it whole. Use it for descriptive text from outside (a category, an
    assignee, a URL): never for a key, where cutting would merge two records.
    """
    length = column_length(column)
    if value is None or length is None or len(value) <= length:
        return value
    return value[:length]


def fit_row(table: Table, values: dict[str, Any], keep: frozenset[str] = frozenset()) -> dict[str, Any]:
    """``values`` (a row for ``table``) with every string cut to its column's length, except ``keep``'s."""
    fitted = dict(values)
    for name, value in values.items():
        if isinstance(value, str) and name not in keep and name in table.columns:
            fitted[name] = fit_to_column(table.columns[name], value)
    return fitted


# --- JSON values PostgreSQL accepts -------------------------------------------------------------------------

_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return _NON_FINITE[repr(value)]
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def json_for_postgres(value: Any) -> str:
    """A JSON column's value as PostgreSQL's ``json`` type takes it (the team engine's serializer).

    Python writes NaN and Infinity as bare words (``json.dumps``), which are not JSON: SQLite stored them and
    PostgreSQL refuses the row, and with it a whole import or sync batch. A raw payload from a file or an API
    may hold them (``json.loads`` reads them), so on PostgreSQL they are stored as the strings "NaN",
    "Infinity", "-Infinity"; every other value is written as ``json.dumps`` writes it for SQLite.
    """
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(value), allow_nan=False)


# --- Text PostgreSQL accepts --------------------------------------------------------------------------------


def strip_nul(text: str) -> str:
    return text.replace("\x00", "") if "\x00" in text else text


def register_nul_free_text(dbapi_connection: Any) -> None:
    """Make a psycopg connection drop NUL characters from every string it sends.

    Why: PostgreSQL's text types cannot hold U+0000 ("PostgreSQL text fields cannot contain NUL (0x00)
    bytes") and the whole batch fails with one; SQLite stored it. A file or an API can carry one (a binary
    attachment's text, a broken export), and it never means anything in a ticket or a runbook. Done where
    psycopg turns a Python string into a parameter, so every column and statement is covered at the cost of
    one ``in`` test per string. A string in a JSON value reaches the server as the escape ``\\u0000``, which
    the ``json`` type keeps.
    """
    from psycopg.abc import Buffer
    from psycopg.types.string import StrBinaryDumper, StrDumperUnknown

    class NulFreeText(StrDumperUnknown):
        def dump(self, obj: str) -> Buffer | None:
            return super().dump(strip_nul(obj))

    class NulFreeBinaryText(StrBinaryDumper):
        def dump(self, obj: str) -> Buffer | None:
            return super().dump(strip_nul(obj))

    dbapi_connection.adapters.register_dumper(str, NulFreeText)
    dbapi_connection.adapters.register_dumper(str, NulFreeBinaryText)
