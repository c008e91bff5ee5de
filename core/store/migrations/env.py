"""Alembic environment: runs against the engine the workspace hands in (no alembic.ini, no URL in a file).

Foreign keys are off while migrations run, then checked: SQLite's documented way to rebuild a table
(create the new one, copy, drop the old, rename; "Making Other Kinds Of Table Schema Changes"). With them
on, dropping the old ``tickets`` would cascade-delete every analysis and link. ``PRAGMA foreign_keys`` is a
no-op inside a transaction, so it is set before the migrations' transaction begins.
"""

from __future__ import annotations

from alembic import context

from core.store.migrations import is_managed_by_hand
from core.store.models import Base

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()  # ends SQLAlchemy's autobegun transaction; the pragma ran outside any
    try:
        with connection.begin():
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                render_as_batch=True,  # SQLite cannot ALTER most things: batch mode copies the table
                compare_type=True,
                include_name=is_managed_by_hand,
            )
            context.run_migrations()
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:  # raising here rolls every migration of this run back
                raise RuntimeError(f"the migrated schema breaks {len(broken)} foreign keys, e.g. {broken[0]}")
    finally:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()
