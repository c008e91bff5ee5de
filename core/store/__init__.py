"""The store: the SQLite (later PostgreSQL) schema, tenant-scoped sessions, migrations, the workspace
folder."""
