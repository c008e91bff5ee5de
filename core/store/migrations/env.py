"""Alembic environment: runs against the engine the workspace hands in (no alembic.ini, no URL in a file)."""

from __future__ import annotations

from alembic import context

from core.store.migrations import is_managed_by_hand
from core.store.models import Base

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things: batch mode copies the table
        compare_type=True,
        include_name=is_managed_by_hand,
    )
    context.run_migrations()
