"""``runbook-desk team ...`` and the global ``--database`` (desktop/cli/team.py; issue 17).

The SQLite parts run everywhere; the PostgreSQL parts (marked ``team``) run on the test server.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url, select

from core.store.db import POSTGRES_KEYRING_SERVICE, create_postgres_engine, postgres_keyring_account
from core.store.migrations import newest_revision, upgrade_to
from core.store.models import AuditEvent, TeamMember, TeamRole
from core.store.workspace import TEAM_SETTINGS_FILENAME, Workspace, workspace_database_url
from desktop.cli.common import EXIT_ERROR, EXIT_OK, EXIT_USAGE
from desktop.cli.main import main
from tests.helpers.memory_keyring import MemoryKeyring
from tests.helpers.postgres import ADMIN_LOGIN, PgServer

Run = Callable[..., tuple[int, str, str]]
SECRET = "Tr0ub4dor&3-never-shown"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "ws"


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, root: Path) -> Run:
    """``runbook-desk --workspace ROOT ARGV...``; ``stdin`` is what a script pipes in (not a terminal)."""

    def run_as(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setenv("LOGNAME", "kim")
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(["--workspace", str(root), *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run_as


def _log_text(root: Path) -> str:
    return "".join(path.read_text(encoding="utf-8") for path in root.rglob("*.log"))


# --- SQLite: one analyst, who is the admin ----------------------------------------------------------------


def test_status_of_a_single_user_workspace(run: Run, root: Path) -> None:
    code, out, _ = run("team", "status")
    assert code == EXIT_OK
    assert out.splitlines() == [
        f"single-user workspace: {root / 'runbook-desk.sqlite3'}",
        "role: admin",
        "tenants: default (admin)",
    ]
    code, out, _ = run("team", "status", "--json")
    status = json.loads(out)
    assert (status["mode"], status["role"], status["login"], status["tenants"]) == (
        "single",
        "admin",
        "",
        {"default": "admin"},
    )


def test_members_are_added_changed_and_removed_with_an_audit_trail(run: Run, root: Path) -> None:
    assert run("team", "members", "add", "alice", "--role", "analyst")[:2] == (
        EXIT_OK,
        "alice added to tenant default as analyst\n",
    )
    assert run("team", "members", "add", "bob", "--role", "admin")[0] == EXIT_OK
    assert run("team", "members", "role", "alice", "viewer")[1] == "alice is viewer in tenant default\n"
    code, out, _ = run("team", "members", "list", "--json")
    assert [(m["login"], m["role"], m["added_by"]) for m in json.loads(out)] == [
        ("alice", "viewer", "kim"),
        ("bob", "admin", "kim"),
    ]
    code, _, err = run("team", "members", "remove", "bob")
    assert code == EXIT_ERROR and "cannot remove bob: it is the last admin of tenant default" in err
    assert run("team", "members", "remove", "alice")[:2] == (EXIT_OK, "alice removed from tenant default\n")
    code, out, _ = run("team", "members", "list")
    assert out.split() == ["bob", "admin", "added", "by", "kim"]
    with Workspace.open(root) as workspace, workspace.session_factory()() as session:
        trail = session.execute(
            select(AuditEvent.action, AuditEvent.actor).where(AuditEvent.action.like("team.%"))
        ).all()
    assert trail == [
        ("team.member_added", "kim"),
        ("team.member_added", "kim"),
        ("team.role_changed", "kim"),
        ("team.member_removed", "kim"),
    ]


def test_bad_logins_and_sqlite_only_limits_are_one_line_errors(run: Run) -> None:
    code, _, err = run("team", "members", "add", "Alice", "--role", "analyst")
    assert code == EXIT_ERROR and "'Alice' is not a valid database login" in err
    code, _, err = run("team", "members", "add", "bob", "--role", "analyst", "--create-login", stdin="pw\n")
    assert code == EXIT_ERROR and "this workspace uses its SQLite file" in err
    code, _, err = run("team", "members", "role", "nobody", "admin")
    assert code == EXIT_ERROR and "nobody is no member of tenant default" in err
    code, _, err = run("team", "init")
    assert code == EXIT_ERROR and "team init needs --database" in err


def test_use_writes_the_team_setting_and_back_and_refuses_a_password_in_the_url(run: Run, root: Path) -> None:
    code, _, err = run("team", "use", f"postgresql://alice:{SECRET}@db.example/rd", "--no-check")
    assert code == EXIT_ERROR and "carries a password" in err and SECRET not in err
    assert not (root / TEAM_SETTINGS_FILENAME).exists()
    code, out, _ = run("team", "use", "postgresql://alice@db.example:5433/rd", "--no-check")
    assert code == EXIT_OK and out.strip().endswith("uses postgresql://alice@db.example:5433/rd")
    assert workspace_database_url(root) == "postgresql://alice@db.example:5433/rd"
    code, out, _ = run("team", "use", "--sqlite")
    assert code == EXIT_OK and workspace_database_url(root) is None
    assert run("team", "status")[0] == EXIT_OK  # the SQLite file again
    with pytest.raises(SystemExit) as usage:  # one of URL or --sqlite
        run("team", "use")
    assert usage.value.code == EXIT_USAGE


def test_a_password_in_a_database_option_is_refused_for_any_command(run: Run, root: Path) -> None:
    code, _, err = run("tickets", "list", "--database", f"postgresql://alice:{SECRET}@db/rd")
    assert code == EXIT_ERROR and "carries a password" in err and SECRET not in err
    assert SECRET not in _log_text(root)


def test_password_comes_from_stdin_never_an_argument(
    run: Run, root: Path, memory_keyring: MemoryKeyring
) -> None:
    url = "postgresql://alice@db.example:5433/rd"
    with pytest.raises(SystemExit) as usage:
        run("team", "password", SECRET, "--database", url)
    assert usage.value.code == EXIT_USAGE
    code, _, err = run("team", "password")
    assert code == EXIT_ERROR and "uses its SQLite file, which has no password" in err
    code, _, err = run("team", "password", "--database", url, "--no-check", stdin="\n")
    assert code == EXIT_ERROR and "no password given" in err
    code, out, err = run("team", "password", "--database", url, "--no-check", "--json", stdin=SECRET + "\n")
    assert code == EXIT_OK
    account = "alice@db.example:5433/rd"
    assert json.loads(out) == {
        "keychain_service": POSTGRES_KEYRING_SERVICE,
        "account": account,
        "checked": False,
    }
    assert memory_keyring.get_password(POSTGRES_KEYRING_SERVICE, account) == SECRET
    assert SECRET not in out + err + _log_text(root)


# --- PostgreSQL ---------------------------------------------------------------------------------------------


@pytest.fixture
def empty_database(pg_server: PgServer) -> Iterator[str]:
    name = pg_server.new_database(migrated=False)
    yield name
    pg_server.drop_database(name)


def _store_password(keychain: MemoryKeyring, url: str, password: str) -> None:
    keychain.set_password(POSTGRES_KEYRING_SERVICE, postgres_keyring_account(make_url(url)), password)


@pytest.mark.team
def test_init_then_members_with_a_new_login_on_a_new_database(
    run: Run, root: Path, pg_server: PgServer, empty_database: str, memory_keyring: MemoryKeyring
) -> None:
    url = pg_server.url(empty_database)
    _store_password(memory_keyring, url, pg_server.admin_password)
    code, out, err = run("team", "init", "--database", url, "--json")
    assert code == EXIT_OK, err
    assert json.loads(out) | {"workspace": ""} == {
        "database": url,
        "revision": newest_revision(),
        "tenant": "default",
        "admin": ADMIN_LOGIN,
        "workspace": "",
    }
    assert workspace_database_url(root) == url
    assert run("team", "init", "--database", url)[0] == EXIT_OK  # again: nothing new, no second member

    code, out, _ = run("team", "status")  # from team.json now
    assert out.splitlines()[3:5] == [f"login: {ADMIN_LOGIN}", "role in default: admin"]

    login = "cli_new_analyst"
    with pg_server.superuser() as conn:
        conn.execute(f"DROP ROLE IF EXISTS {login}")
    try:
        code, out, err = run(
            "team", "members", "add", login, "--role", "analyst", "--create-login", stdin=SECRET + "\n"
        )
        assert (code, out) == (EXIT_OK, f"{login} added to tenant default as analyst\n"), err
        with pg_server.connect(empty_database, login, SECRET) as analyst:
            assert analyst.execute("SELECT count(*) FROM tenants").fetchone() == (1,)
        assert run("team", "members", "role", login, "viewer")[0] == EXIT_OK
        code, out, _ = run("team", "members", "list", "--json")
        assert {(m["login"], m["role"]) for m in json.loads(out)} == {
            (ADMIN_LOGIN, "admin"),
            (login, "viewer"),
        }
        code, _, err = run("team", "members", "role", ADMIN_LOGIN, "analyst")
        assert code == EXIT_ERROR and f"cannot demote {ADMIN_LOGIN}: it is the last admin" in err
        assert run("team", "members", "remove", login)[0] == EXIT_OK
        assert SECRET not in _log_text(root)
        with pg_server.superuser(empty_database) as conn:
            logged = conn.execute("SELECT query FROM pg_stat_activity").fetchall()
        assert all(SECRET not in str(row) for row in logged)
    finally:
        with pg_server.superuser() as conn:
            conn.execute(f"DROP ROLE IF EXISTS {login}")
    with Workspace.open(root) as workspace, workspace.session_factory()() as session:
        assert session.scalars(select(TeamMember.login)).all() == [ADMIN_LOGIN]
        assert session.scalar(select(TeamMember.role)) == TeamRole.ADMIN


@pytest.mark.team
def test_migrate_upgrades_a_team_database_and_says_from_what(
    run: Run, pg_server: PgServer, empty_database: str, memory_keyring: MemoryKeyring
) -> None:
    url = pg_server.url(empty_database)
    engine = create_postgres_engine(url, password=pg_server.admin_password)
    try:
        upgrade_to(engine, "0013")
    finally:
        engine.dispose()
    _store_password(memory_keyring, url, pg_server.admin_password)
    code, out, err = run("team", "migrate", "--database", url)
    assert (code, out) == (EXIT_OK, f"{url}: schema upgraded from 0013 to {newest_revision()}\n"), err
    code, out, _ = run("team", "migrate", "--database", url)
    assert out == f"{url}: schema already at {newest_revision()}\n"


@pytest.mark.team
def test_password_is_stored_only_once_the_server_accepts_it(
    run: Run, root: Path, pg_server: PgServer, pg_database: str, memory_keyring: MemoryKeyring
) -> None:
    url = pg_server.url(pg_database)
    account = postgres_keyring_account(make_url(url))
    code, _, err = run("team", "password", "--database", url, stdin=SECRET + "\n")
    assert code == EXIT_ERROR and "not stored" in err and "password authentication failed" in err
    assert SECRET not in err + _log_text(root)
    assert memory_keyring.get_password(POSTGRES_KEYRING_SERVICE, account) is None
    code, out, err = run("team", "password", "--database", url, stdin=pg_server.admin_password + "\n")
    assert code == EXIT_OK, err
    assert memory_keyring.get_password(POSTGRES_KEYRING_SERVICE, account) == pg_server.admin_password
    # The global option reaches every command: the tickets of the team database, as this login.
    code, out, err = run("tickets", "list", "--database", url)
    assert (code, out) == (EXIT_OK, "no tickets\n"), err


@pytest.mark.team
def test_use_checks_the_login_before_writing_the_setting(
    run: Run, root: Path, pg_server: PgServer, pg_database: str, memory_keyring: MemoryKeyring
) -> None:
    password = pg_server.create_login("cli_outsider")
    url = pg_server.url(pg_database, "cli_outsider")
    _store_password(memory_keyring, url, password)
    code, _, err = run("team", "use", url)
    assert code == EXIT_ERROR and "'cli_outsider' is a member of no tenant" in err
    assert workspace_database_url(root) is None


def test_the_app_is_handed_the_database_option_but_the_demo_refuses_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from desktop.launcher import main as launcher_main

    opened: list[tuple[str | None, str | None]] = []

    def fake_window(
        workspace_arg: str | None, tenant: str, *, demo: bool, database_url: str | None = None
    ) -> int:
        opened.append((workspace_arg, database_url))
        return EXIT_OK

    url = "postgresql://alice@db.example/rd"
    assert main(["--workspace", "w", "--database", url], open_window=fake_window) == EXIT_OK
    assert opened == [("w", url)]
    assert launcher_main(["--demo", "--database", url]) == EXIT_ERROR
    assert "--demo opens the built-in demo workspace on its own SQLite file" in capsys.readouterr().err
