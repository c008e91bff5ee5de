"""Alembic migrations, applied automatically when a workspace opens (batch mode for SQLite's ALTER limits)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent


HAND_MANAGED_PREFIXES = ("runbook_fts", "ticket_fts")


def is_managed_by_hand(name: str | None, type_: str, _parent_names: object) -> bool:
    """False for the FTS5 virtual tables and their shadow tables: written as SQL in 0003, not models.

    (Alembic's ``include_name`` hook: True means "compare this object with the models".)
    """
    return not (type_ == "table" and name is not None and name.startswith(HAND_MANAGED_PREFIXES))


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade_to_head(engine: Engine) -> None:
    command.upgrade(alembic_config(engine), "head")


def upgrade_to(engine: Engine, revision: str) -> None:
    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
