"""Alembic environment: runs against the engine the workspace hands in (no alembic.ini, no URL in a file).

SQLite: foreign keys are off while migrations run, then checked: SQLite's documented way to rebuild a table
(create the new one, copy, drop the old, rename; "Making Other Kinds Of Table Schema Changes"). With them
on, dropping the old ``tickets`` would cascade-delete every analysis and link. ``PRAGMA foreign_keys`` is a
no-op inside a transaction, so it is set before the migrations' transaction begins.

PostgreSQL (team mode): migrations alter tables in place (the migrations branch on the dialect where SQLite
needs a rebuild) and run as the owner role :data:`core.store.team_schema.OWNER_ROLE` when the login may
take it, so every table belongs to a role analysts are not members of (row-level security is forced on it).
DDL is transactional there too: a failed migration leaves nothing half done.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from core.store.migrations import is_managed_by_hand
from core.store.models import Base

engine = context.config.attributes["engine"]


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things: batch mode copies the table
        compare_type=True,
        include_name=is_managed_by_hand,
    )
    context.run_migrations()


with engine.connect() as connection:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()  # ends SQLAlchemy's autobegun transaction; the pragma ran outside any
        try:
            with connection.begin():
                _run(connection)
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:  # raising here rolls every migration of this run back
                    raise RuntimeError(
                        f"the migrated schema breaks {len(broken)} foreign keys, e.g. {broken[0]}"
                    )
        finally:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
    else:
        from core.store.team_schema import become_owner

        with connection.begin():
            become_owner(connection)
            _run(connection)
