"""A real PostgreSQL server for the team-mode tests (``make test-team`` and CI start a throwaway one).

``RUNBOOK_DESK_TEST_PG`` is a superuser URL without a password (``scripts/pg-cluster.sh`` writes the
password to ``$PGPASSFILE``, which libpq reads). Tests never run as that superuser: a superuser bypasses
row-level security. The :class:`PgServer` creates

* ``rd_admin``: the team's database administrator (CREATEROLE, not superuser). Migrations run as it and it
  becomes a member of the owner role, like a real ``runbook-desk team init``;
* a template database migrated to head once per test session; each test gets a fresh copy of it
  (``CREATE DATABASE … TEMPLATE``, about 0.1 s) and logins of its own.

Without ``RUNBOOK_DESK_TEST_PG`` the fixtures skip with the reason and the command that runs them.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass, field

import psycopg
from sqlalchemy import make_url

from core.store.db import create_postgres_engine
from core.store.migrations import upgrade_to_head
from core.store.team_schema import MEMBER_ROLE, OWNER_ROLE

SERVER_ENV = "RUNBOOK_DESK_TEST_PG"
SKIP_REASON = (
    "team-mode tests need a PostgreSQL server: run `make test-team` (it starts a throwaway one); "
    f"${SERVER_ENV} is not set"
)
ADMIN_LOGIN = "rd_admin"
TEMPLATE = "rd_template"


def server_url() -> str | None:
    return os.environ.get(SERVER_ENV) or None


def _shared_admin_password() -> str:
    """The admin login's password, the same for every pytest session on one server (derived from the
    superuser's password file, which only this machine's runs read), so concurrent sessions that each set
    it up agree; random when there is no such file."""
    path = os.environ.get("PGPASSFILE")
    if path and os.path.isfile(path):
        with open(path, "rb") as handle:
            return hashlib.sha256(b"rd_admin:" + handle.read()).hexdigest()[:32]
    return secrets.token_hex(16)


@dataclass
class PgServer:
    """The test server: superuser access for set-up only, the admin login, a migrated template."""

    superuser_url: str
    admin_password: str = field(default_factory=lambda: _shared_admin_password())
    # Another login and template for a second, concurrent session on the same server (``--store=postgresql``):
    # ``set_up`` resets the admin's password and recreates the template, which would break a run beside it.
    admin_login: str = ADMIN_LOGIN
    template: str = field(default_factory=lambda: f"{TEMPLATE}_{os.getpid()}")  # one per pytest session
    _counter: int = 0

    def superuser(self, database: str = "postgres") -> psycopg.Connection:
        url = make_url(self.superuser_url).set(database=database)
        return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)

    def url(self, database: str, login: str | None = None) -> str:
        """A URL for ``login`` (the admin's by default) on ``database``, without a password (the caller
        passes it separately)."""
        base = make_url(self.superuser_url).set(
            username=login or self.admin_login, database=database, drivername="postgresql"
        )
        return base.render_as_string(hide_password=False)

    def connect(self, database: str, login: str, password: str) -> psycopg.Connection:
        """Plain psycopg as ``login``: what a hand-written query by that analyst would use."""
        return psycopg.connect(self.url(database, login), password=password, autocommit=True)

    def set_up(self) -> None:
        """Once per session: the admin login and the migrated template database."""
        with self.superuser() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {self.template}")
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.admin_login,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(
                f"{verb} ROLE {self.admin_login} LOGIN CREATEROLE CREATEDB PASSWORD '{self.admin_password}'"
            )
            conn.execute(f"CREATE DATABASE {self.template} OWNER {self.admin_login}")
            # A server that ran these tests before has the roles already: the admin is their member.
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (OWNER_ROLE,)).fetchone():
                conn.execute(f"GRANT {OWNER_ROLE} TO {self.admin_login}")
        with self.superuser(self.template) as conn:
            # PostgreSQL 15: only the database owner may create in schema public; the admin is that.
            conn.execute(f"ALTER SCHEMA public OWNER TO {self.admin_login}")
        engine = create_postgres_engine(self.url(self.template), password=self.admin_password)
        try:
            upgrade_to_head(engine)
        finally:
            engine.dispose()

    def tear_down(self) -> None:
        """End of session: the template goes (each test's database is dropped after its test)."""
        self.drop_database(self.template)

    def new_database(self, migrated: bool = True) -> str:
        """A fresh database: a copy of the migrated template, or an empty one owned by the admin."""
        self._counter += 1
        name = f"rd_test_{os.getpid()}_{self._counter}_{secrets.token_hex(3)}"
        with self.superuser() as conn:
            if migrated:
                conn.execute(f"CREATE DATABASE {name} TEMPLATE {self.template} OWNER {self.admin_login}")
            else:
                conn.execute(f"CREATE DATABASE {name} OWNER {self.admin_login}")
        if not migrated:
            with self.superuser(name) as conn:
                conn.execute(f"ALTER SCHEMA public OWNER TO {self.admin_login}")
        return name

    def drop_database(self, name: str) -> None:
        with self.superuser() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def create_login(self, login: str) -> str:
        """An analyst's own login (a member of the member role); returns its password."""
        password = secrets.token_hex(16)
        with self.superuser() as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(f"{verb} ROLE {login} LOGIN PASSWORD '{password}'")
            conn.execute(f"GRANT {MEMBER_ROLE} TO {login}")
        return password
