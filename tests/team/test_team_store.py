"""Team mode's store: the same schema on PostgreSQL, opened as an analyst's own login."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import make_url, select

from core.errors import WorkspaceError
from core.store.db import POSTGRES_KEYRING_SERVICE, create_postgres_engine, postgres_keyring_account
from core.store.migrations import is_managed_by_hand, upgrade_to_head
from core.store.models import Base, Tenant
from core.store.workspace import Workspace
from tests.helpers.postgres import PgServer

pytestmark = pytest.mark.team


def test_migrations_build_the_models_schema_on_an_empty_database(pg_server: PgServer) -> None:
    name = pg_server.new_database(migrated=False)
    try:
        engine = create_postgres_engine(pg_server.url(name), password=pg_server.admin_password)
        upgrade_to_head(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_name": is_managed_by_hand}
            )
            assert compare_metadata(context, Base.metadata) == []
            owners = connection.exec_driver_sql(
                "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
            ).scalars()
            assert set(owners) == {"runbook_desk_owner"}
        engine.dispose()
    finally:
        pg_server.drop_database(name)


def test_a_team_workspace_opens_on_the_default_tenant(team_workspace: Workspace) -> None:
    assert team_workspace.is_team
    with team_workspace.session_factory()() as session:
        assert session.scalar(select(Tenant.slug)) == "default"


def test_a_login_of_no_tenant_is_told_so(
    team_workspace: Workspace, tmp_path: Path, pg_server: PgServer
) -> None:
    password = pg_server.create_login("nobody_yet")
    url = pg_server.url(team_workspace.engine.url.database or "", "nobody_yet")
    keyring.set_password(POSTGRES_KEYRING_SERVICE, postgres_keyring_account(make_url(url)), password)
    with pytest.raises(WorkspaceError, match="'nobody_yet' is a member of no tenant"):
        Workspace.open(tmp_path / "analyst", database_url=url)


def test_a_missing_password_is_one_clear_line_without_secrets(
    pg_server: PgServer, pg_database: str, tmp_path: Path
) -> None:
    pg_server.create_login("no_password_stored")
    url = pg_server.url(pg_database, "no_password_stored")
    with pytest.raises(
        WorkspaceError,
        match=r"cannot connect to the team database postgresql://no_password_stored@.*team password",
    ) as caught:
        Workspace.open(tmp_path / "ws", database_url=url)
    assert pg_server.admin_password not in str(caught.value)


def test_a_password_in_the_url_is_refused_and_masked(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match=r"postgresql://alice:\*\*\*@db/rd carries a password") as caught:
        Workspace.open(tmp_path / "ws", database_url="postgresql://alice:hunter2@db/rd")
    assert "hunter2" not in str(caught.value)
