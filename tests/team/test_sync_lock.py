"""Two schedulers never sync one connector at once: PostgreSQL's advisory lock, held by another process.

The holder is a real second process (a scheduler on another machine would hold it the same way); killing
it mid-sync must free the connector at once, with no lease to wait out.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from connectors.configs import create_config
from connectors.sync import run_sync
from core.store.locks import SyncBusyError, connector_sync_lock
from core.store.models import SyncRun
from core.store.workspace import Workspace
from tests.connectors.tiny_connector import FakeTiny, registered
from tests.helpers.postgres import PgServer

pytestmark = pytest.mark.team

# Takes the connector's lock as the team's admin login, says so, and holds it until killed.
HOLDER = textwrap.dedent(
    """
    import sys, time
    from core.store.db import create_postgres_engine
    from core.store.locks import connector_sync_lock
    url, config_id = sys.argv[1], int(sys.argv[2])
    password = sys.stdin.readline().strip()  # never on the command line
    engine = create_postgres_engine(url, password=password)
    with connector_sync_lock(engine, config_id, "Tiny prod"):
        print("locked", flush=True)
        time.sleep(600)
    """
)


@pytest.fixture
def tiny() -> Iterator[FakeTiny]:
    fake = FakeTiny()
    with registered():
        yield fake


def test_a_second_process_cannot_sync_a_locked_connector_and_a_killed_holder_frees_it(
    team_workspace: Workspace, pg_server: PgServer, tiny: FakeTiny
) -> None:
    sessions = team_workspace.session_factory()
    settings = tiny.settings()
    config = create_config(
        sessions,
        connector_type="tiny",
        name=settings.name,
        base_url=settings.base_url,
        secrets=dict(settings.secrets),
        actor="test",
    )
    tiny.add_ticket(tiny.new_ticket(1, datetime(2026, 5, 4, 9, 0, tzinfo=UTC)))
    url = pg_server.url(str(team_workspace.engine.url.database))
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, str(config.id)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdin is not None and holder.stdout is not None
            holder.stdin.write(pg_server.admin_password + "\n")
            holder.stdin.flush()
            assert holder.stdout.readline().strip() == "locked"

            with pytest.raises(SyncBusyError, match="Tiny prod is being synced by login rd_admin"):
                asyncio.run(run_sync(sessions, config.id, transport=tiny.transport()))
            with sessions() as session:
                assert session.scalar(select(func.count()).select_from(SyncRun)) == 0  # nothing recorded

            holder.kill()  # a scheduler dying mid-sync: its connection closes, the server frees the lock
            holder.wait(timeout=30)
            report = asyncio.run(run_sync(sessions, config.id, transport=tiny.transport()))
            assert report.ok and report.new == 1
        finally:
            holder.kill()  # never left holding the lock (or waited on) after a failed assertion


def test_the_lock_is_per_connector_and_released_after_the_sync(team_workspace: Workspace) -> None:
    engine = team_workspace.engine
    with connector_sync_lock(engine, 1, "one"):
        with connector_sync_lock(engine, 2, "two"):  # another connector: free
            pass
        with (
            pytest.raises(SyncBusyError, match="connector one is being synced"),
            connector_sync_lock(engine, 1, "one"),
        ):
            pass
    with connector_sync_lock(engine, 1, "one"):  # released
        pass
