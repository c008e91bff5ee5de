"""Issue 17, credential rotation in team mode: ``connector_secrets`` is admin-write on PostgreSQL.

The administrator's desktop (or the headless scheduler) stores, uses and rotates secrets; an analyst's use of
a secret (a connection test) leaves its ``secret.used`` audit row but not ``last_used_at``, which the
database would refuse (:mod:`core.store.connector_secrets` checks the role first, so the analyst's
transaction is not aborted); an analyst's rotation is refused before anything is sent or written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import keyring
import pytest
from psycopg import errors
from sqlalchemy import make_url, select
from sqlalchemy.orm import sessionmaker

from connectors.configs import ConfigRow, create_config
from connectors.rotation import rotate_secret
from connectors.sync import run_sync
from connectors.testing.standard_suite import SleepRecorder
from core.errors import PermissionDeniedError
from core.store.connector_secrets import record_secrets_used
from core.store.db import POSTGRES_KEYRING_SERVICE, postgres_keyring_account
from core.store.models import AuditEvent, ConnectorSecret, TeamMember, TeamRole, utcnow
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from tests.connectors.fake_servicenow import FakeServiceNow
from tests.helpers.postgres import PgServer

pytestmark = pytest.mark.team

ANALYST = "c2rot_analyst"  # logins are the server's: a prefix of this file's own
NEW_PASSWORD = "sn-team-rotated-7Kq!"


@pytest.fixture
def fake() -> FakeServiceNow:
    system = FakeServiceNow()
    system.add_ticket(system.new_ticket(1, utcnow() - timedelta(days=1)))
    return system


@pytest.fixture
def config(team_workspace: Workspace, fake: FakeServiceNow) -> ConfigRow:
    settings = fake.settings()
    return create_config(
        team_workspace.session_factory(),
        connector_type="servicenow",
        name="prod",
        base_url=fake.base_url,
        options=settings.options,
        secrets=settings.secrets,
        actor="admin",
    )


@pytest.fixture
def analyst(
    team_workspace: Workspace, pg_server: PgServer, tmp_path: Path
) -> Iterator[tuple[sessionmaker[TenantSession], str]]:
    """The analyst's own desktop: a workspace on the same database, opened as the analyst's login."""
    password = pg_server.create_login(ANALYST)
    with team_workspace.session_factory().begin() as session:
        session.add(TeamMember(login=ANALYST, role=TeamRole.ANALYST, added_by="test"))
    url = pg_server.url(team_workspace.engine.url.database or "", ANALYST)
    keyring.set_password(POSTGRES_KEYRING_SERVICE, postgres_keyring_account(make_url(url)), password)
    workspace = Workspace.open(tmp_path / "analyst", database_url=url)
    yield workspace.session_factory(), password
    workspace.close()


def secret_row(sessions: sessionmaker[TenantSession]) -> ConnectorSecret:
    with sessions() as session:
        row = session.scalar(select(ConnectorSecret))
        assert row is not None
        session.expunge(row)
        return row


def test_the_admins_sync_and_rotation_are_recorded(
    team_workspace: Workspace, config: ConfigRow, fake: FakeServiceNow
) -> None:
    sessions = team_workspace.session_factory()
    report = asyncio.run(
        run_sync(sessions, config.id, transport=fake.transport(), sleep=SleepRecorder(), actor="admin")
    )
    assert report.ok
    assert secret_row(sessions).last_used_at is not None
    fake.password = NEW_PASSWORD
    result = asyncio.run(
        rotate_secret(
            sessions, config.id, "password", NEW_PASSWORD, transport=fake.transport(), actor="admin"
        )
    )
    assert result.rotated and secret_row(sessions).rotated_at == result.rotated_at
    with sessions() as session:
        actions = list(
            session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.action.startswith("secret."))
                .order_by(AuditEvent.id)
            )
        )
        logins = set(
            session.scalars(select(AuditEvent.db_login).where(AuditEvent.action.startswith("secret.")))
        )
    assert actions == ["secret.stored", "secret.used", "secret.rotated"]
    assert logins == {"rd_admin"}


def test_an_analysts_use_is_audited_without_touching_the_admin_table(
    team_workspace: Workspace,
    config: ConfigRow,
    analyst: tuple[sessionmaker[TenantSession], str],
    pg_server: PgServer,
) -> None:
    sessions, password = analyst
    with sessions.begin() as session:
        written = record_secrets_used(
            session,
            config_id=config.id,
            connector_name=config.name,
            fields=["password"],
            via="check",
            actor="ann",
            now=utcnow(),
        )
    assert written is False
    assert secret_row(team_workspace.session_factory()).last_used_at is None
    with team_workspace.session_factory()() as session:
        used = session.scalar(select(AuditEvent).where(AuditEvent.action == "secret.used"))
        assert used is not None and (used.db_login, used.actor) == (ANALYST, "ann")

    # What the role check spares the analyst: the database refuses the write itself.
    database = team_workspace.engine.url.database or ""
    with (
        pg_server.connect(database, ANALYST, password) as connection,
        pytest.raises(errors.InsufficientPrivilege, match="needs the admin role"),
    ):
        connection.execute("UPDATE connector_secrets SET last_used_at = now()")


def test_an_analysts_rotation_is_refused_before_anything_is_sent(
    config: ConfigRow, analyst: tuple[sessionmaker[TenantSession], str], fake: FakeServiceNow
) -> None:
    sessions, _password = analyst
    with pytest.raises(PermissionDeniedError, match="rotating a secret of prod needs the admin role"):
        asyncio.run(rotate_secret(sessions, config.id, "password", NEW_PASSWORD, transport=fake.transport()))
    assert fake.requests == []
