"""The store: the SQLite (later PostgreSQL) schema, tenant-scoped sessions, migrations, the workspace
folder, and the ticket every source produces with the one way it is written (:mod:`core.store.tickets`)."""
