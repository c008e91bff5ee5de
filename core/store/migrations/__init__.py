"""Alembic migrations, applied automatically when a workspace opens (batch mode for SQLite's ALTER limits).

Alembic is imported only when a migration has to run: importing it costs about 0.1 s, which every CLI
command paid although a workspace is nearly always at head already. :func:`upgrade_to_head` first compares
the database's ``alembic_version`` with the newest revision file (revision ids are their files' numeric
prefixes, a test holds them to it) and returns when they agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent
VERSIONS_DIR = MIGRATIONS_DIR / "versions"


HAND_MANAGED_PREFIXES = ("runbook_fts", "ticket_fts", "article_fts")


def is_managed_by_hand(name: str | None, type_: str, _parent_names: object) -> bool:
    """False for the FTS5 virtual tables and their shadow tables: written as SQL in 0003, not models.

    (Alembic's ``include_name`` hook: True means "compare this object with the models".)
    """
    return not (type_ == "table" and name is not None and name.startswith(HAND_MANAGED_PREFIXES))


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def newest_revision() -> str:
    """The head revision, read from the file names (``0010_learning_loop.py`` is revision ``0010``)."""
    return max(path.name.split("_", 1)[0] for path in VERSIONS_DIR.glob("[0-9]*_*.py"))


def is_at_head(engine: Engine) -> bool:
    """True when the database's recorded revision is the newest one (a new database is not)."""
    try:
        with engine.connect() as connection:
            recorded = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except (OperationalError, ProgrammingError):  # no alembic_version table: a new database (SQLite, PG)
        return False
    return recorded == [newest_revision()]


def upgrade_to_head(engine: Engine) -> None:
    if is_at_head(engine):
        return
    from alembic import command

    command.upgrade(alembic_config(engine), "head")


def upgrade_to(engine: Engine, revision: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
