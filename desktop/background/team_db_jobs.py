"""Settings > Team database, off the GUI thread: test a PostgreSQL URL, store its password in the keychain.

Both may block for seconds (a server that does not answer waits for libpq's connect timeout; a keychain may
wait on an unlock prompt), so the dialog runs them on the task runner. The password is an argument and goes
to the driver and the keychain only: never into a URL, a file, a log line or an error message.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core.errors import WorkspaceError
from core.store.db import (
    POSTGRES_KEYRING_SERVICE,
    create_postgres_engine,
    parse_database_url,
    postgres_keyring_account,
)


@dataclass(frozen=True, slots=True)
class ConnectionProbe:
    """What a successful test found: who we are on which server, and whether the team schema is there."""

    login: str
    server_version: str
    schema_ready: bool  # Runbook Desk's tables exist (an administrator ran `runbook-desk team init`)
    member_of: int  # tenants this login is a member of (0 with no schema yet)

    def summary(self) -> str:
        head = f"Connected as {self.login} to PostgreSQL {self.server_version}."
        if not self.schema_ready:
            return (
                f"{head} The database has no Runbook Desk schema yet: its administrator opens it first "
                "(`runbook-desk team init`)."
            )
        if not self.member_of:
            return f"{head} {self.login} is a member of no tenant yet: an admin adds it on the Members page."
        tenants = f"{self.member_of} tenant{'s' if self.member_of != 1 else ''}"
        return f"{head} {self.login} is a member of {tenants}."


def probe_database(url: str, password: str | None) -> ConnectionProbe:
    """Connect once as the URL's login (``password`` typed, else the keychain's or libpq's); raise
    :class:`WorkspaceError` with one clear line, without the password, when it cannot."""
    engine = create_postgres_engine(url, password=password or None)
    shown = engine.url.set(drivername="postgresql").render_as_string(hide_password=True)
    try:
        with engine.connect() as connection:
            login, version, has_schema = connection.execute(
                text(
                    "SELECT session_user, current_setting('server_version'), "
                    "to_regclass('public.team_members') IS NOT NULL"
                )
            ).one()
            member_of = 0
            if has_schema:
                # Row-level security shows a login its own tenants' rows only; the owner sees every row.
                member_of = int(
                    connection.execute(
                        text("SELECT count(DISTINCT tenant_id) FROM team_members WHERE login = session_user")
                    ).scalar_one()
                )
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
        raise WorkspaceError(f"cannot connect to {shown}: {reason}") from None
    finally:
        engine.dispose()
    return ConnectionProbe(str(login), str(version), bool(has_schema), member_of)


def store_database_password(url: str, password: str) -> str:
    """Put the password of the URL's login in the OS keychain; returns the keychain entry's account name."""
    import keyring

    account = postgres_keyring_account(parse_database_url(url))
    keyring.set_password(POSTGRES_KEYRING_SERVICE, account, password)
    return account
