"""An error as the analyst reads it: a database refusal in one line, not a driver's traceback.

In team mode the database refuses what a role may not do (:mod:`core.store.team_schema`): the app's own check
raises :class:`~core.errors.PermissionDeniedError`, and PostgreSQL raises SQLSTATE 42501
(``insufficient_privilege``: a row-level-security check, a write guard, a missing grant), which SQLAlchemy
wraps in a ``ProgrammingError`` whose text carries the SQL statement, its parameters and a link. The first is
shown as it is; the second as "The database refused: " and the server's own sentence, nothing else (the
parameters may hold what the analyst typed; the statement helps nobody at the desk). Every other error keeps
its own text.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

from core.errors import PermissionDeniedError

INSUFFICIENT_PRIVILEGE = "42501"


def database_refusal(exc: BaseException) -> str | None:
    """The server's message when ``exc`` is PostgreSQL refusing a privilege (42501); else None."""
    if not isinstance(exc, DBAPIError) or exc.orig is None:
        return None
    driver_error = exc.orig
    # psycopg 3 names it ``sqlstate``; psycopg2 ``pgcode``.
    code = getattr(driver_error, "sqlstate", None) or getattr(driver_error, "pgcode", None)
    if code != INSUFFICIENT_PRIVILEGE:
        return None
    diag = getattr(driver_error, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if not primary:
        lines = str(driver_error).strip().splitlines()
        primary = lines[0] if lines else "permission denied"
    return str(primary)


def is_refusal(exc: BaseException) -> bool:
    """A refusal by role (the app's check or the database's): the message says all, no traceback needed."""
    return isinstance(exc, PermissionDeniedError) or database_refusal(exc) is not None


def describe_error(exc: BaseException) -> str:
    """What a notification or an inline error label shows for ``exc``."""
    refusal = database_refusal(exc)
    if refusal is not None:
        return f"The database refused: {refusal}"
    if isinstance(exc, PermissionDeniedError):
        return f"Not allowed: {exc}"
    return str(exc)
