"""``runbook-desk team ...``: team mode (issue 17), the shared PostgreSQL store, headless.

::

    team init --database URL     the database administrator, once: create the schema and its roles,
                                 the tenant, make this login its admin, point this workspace at it
    team migrate                 upgrade the team database's schema (the administrator, after an update)
    team use URL | --sqlite      point this workspace at a team database, or back at its own SQLite file
    team password                store this login's database password in the OS keychain
    team status                  server, database, login, and this login's role in each tenant
    team members list
    team members add LOGIN --role ROLE [--create-login]
    team members role LOGIN ROLE
    team members remove LOGIN

URL is ``postgresql://login@host:5432/database``, without a password: every command refuses one in a URL.
A password is never an argument either (shell history, ``ps``): ``team password`` and ``--create-login``
read it from a hidden prompt, or from stdin's first line when stdin is not a terminal (a script).
``--database URL`` works on every command (it overrides the workspace's ``team.json`` for that run).
Membership changes need the admin role and are audited in the name of the OS user, as the app's
Members page does (:mod:`core.store.team`).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.store.team import MemberRow, TeamStatus
    from core.store.workspace import Workspace

ROLE_CHOICES = ("viewer", "analyst", "admin")


def add_team_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    team = commands.add_parser("team", help="team mode: a shared PostgreSQL store, members and roles")
    actions = team.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser(
        "init",
        parents=[common],
        help="(database administrator) create the team schema and tenant on --database URL, become its admin",
    )
    actions.add_parser("migrate", parents=[common], help="(database administrator) upgrade the schema")
    use = actions.add_parser("use", parents=[common], help="point this workspace at a team database or back")
    target = use.add_mutually_exclusive_group(required=True)
    target.add_argument("url", nargs="?", metavar="URL", help="postgresql://login@host:5432/database")
    target.add_argument("--sqlite", action="store_true", help="back to the workspace's own SQLite file")
    use.add_argument("--no-check", action="store_true", help="do not connect first (the server is offline)")
    password = actions.add_parser(
        "password", parents=[common], help="store this login's database password in the OS keychain"
    )
    password.add_argument(
        "--no-check", action="store_true", help="store it without trying it (the server is offline)"
    )
    actions.add_parser("status", parents=[common], help="server, database, login and roles")
    members = actions.add_parser("members", help="who is a member of the tenant, in which role (admins)")
    member_actions = members.add_subparsers(dest="member_action", metavar="ACTION", required=True)
    member_actions.add_parser("list", parents=[common], help="the tenant's members")
    add = member_actions.add_parser("add", parents=[common], help="make a database login a member")
    add.add_argument("login", metavar="LOGIN")
    add.add_argument("--role", required=True, choices=ROLE_CHOICES)
    add.add_argument(
        "--create-login",
        action="store_true",
        help="also create the database login (asks for its password; needs CREATEROLE)",
    )
    role = member_actions.add_parser("role", parents=[common], help="change a member's role")
    role.add_argument("login", metavar="LOGIN")
    role.add_argument("role", choices=ROLE_CHOICES)
    remove = member_actions.add_parser("remove", parents=[common], help="end a login's membership")
    remove.add_argument("login", metavar="LOGIN")


def run_team_command(args: argparse.Namespace) -> int:
    if args.action == "init":
        return _init(args)
    if args.action == "migrate":
        return _migrate(args)
    if args.action == "use":
        return _use(args)
    if args.action == "password":
        return _password(args)
    if args.action == "status":
        return _status(args)
    return _members(args)


def _init(args: argparse.Namespace) -> int:
    """Run by the team's database administrator: ``Workspace.open`` migrates (creating the roles on a new
    server) and makes the default tenant; this adds the administrator's login as the tenant's admin member
    and then writes ``team.json``, so a failure leaves the workspace where it was."""
    from sqlalchemy import select

    from core.errors import RunbookDeskError
    from core.store.models import TeamMember, TeamRole
    from core.store.repository import current_actor
    from core.store.team import add_member, current_login
    from core.store.workspace import Workspace, set_workspace_database_url
    from desktop.cli.common import EXIT_OK, print_result

    if not args.database:
        raise RunbookDeskError("team init needs --database postgresql://login@host:5432/database")
    with Workspace.open(args.workspace, database_url=args.database) as workspace:
        tenant = workspace.ensure_tenant(args.tenant)
        with workspace.session_factory(tenant.slug).begin() as session:
            login = current_login(session)
            if session.scalar(select(TeamMember.id).where(TeamMember.login == login)) is None:
                add_member(session, login, TeamRole.ADMIN, actor=current_actor())
        set_workspace_database_url(workspace.root, args.database)
        shown = _shown_url(workspace)
        revision = _revision(workspace)
        payload = {
            "database": shown,
            "revision": revision,
            "tenant": tenant.slug,
            "admin": login,
            "workspace": str(workspace.root),
        }
        print_result(
            args,
            payload,
            f"team database {shown} ready (schema {revision}); {login} is admin of tenant {tenant.slug}; "
            f"workspace {workspace.root} now uses it",
        )
    return EXIT_OK


def _migrate(args: argparse.Namespace) -> int:
    from core.store.migrations import current_revision, newest_revision
    from core.store.workspace import Workspace, resolve_workspace_dir, workspace_database_url
    from desktop.cli.common import EXIT_OK, print_result

    url = args.database or workspace_database_url(resolve_workspace_dir(args.workspace))
    before = _revision_before_opening(url) if url else None
    with Workspace.open(args.workspace, database_url=args.database) as workspace:
        after = current_revision(workspace.engine)
        shown = _shown_url(workspace)
    payload = {"database": shown, "before": before, "after": after, "head": newest_revision()}
    text = (
        f"{shown}: schema already at {after}"
        if before == after
        else f"{shown}: schema upgraded from {before or 'empty'} to {after}"
    )
    print_result(args, payload, text)
    return EXIT_OK


def _revision_before_opening(url: str) -> str | None:
    """The team database's revision before ``Workspace.open`` upgrades it; None when it cannot be read
    (an empty database, or one the open then explains it cannot reach)."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from core.store.db import create_postgres_engine
    from core.store.migrations import current_revision

    engine = create_postgres_engine(url)
    try:
        return current_revision(engine)
    except (OperationalError, ProgrammingError):
        return None
    finally:
        engine.dispose()


def _use(args: argparse.Namespace) -> int:
    from core.store.db import parse_database_url
    from core.store.workspace import Workspace, resolve_workspace_dir, set_workspace_database_url
    from desktop.cli.common import EXIT_OK, print_result

    root = resolve_workspace_dir(args.workspace)
    if args.sqlite:
        set_workspace_database_url(root, None)
        print_result(
            args, {"workspace": str(root), "database": None}, f"workspace {root} uses its own SQLite file"
        )
        return EXIT_OK
    shown = parse_database_url(args.url).set(drivername="postgresql").render_as_string(hide_password=True)
    if not args.no_check:  # connect and check membership first: a wrong URL is not written down
        Workspace.open(root, database_url=args.url).close()
    set_workspace_database_url(root, args.url)
    print_result(args, {"workspace": str(root), "database": shown}, f"workspace {root} uses {shown}")
    return EXIT_OK


def _password(args: argparse.Namespace) -> int:
    """Store the password under the keychain entry ``create_postgres_engine`` reads, after the server has
    accepted it (a wrong password in the keychain fails later, somewhere less clear)."""
    import keyring
    from sqlalchemy.exc import OperationalError

    from core.errors import RunbookDeskError
    from core.store.db import (
        POSTGRES_KEYRING_SERVICE,
        create_postgres_engine,
        parse_database_url,
        postgres_keyring_account,
    )
    from core.store.workspace import resolve_workspace_dir, workspace_database_url
    from desktop.cli.common import EXIT_OK, print_result

    url = args.database or workspace_database_url(resolve_workspace_dir(args.workspace))
    if not url:
        raise RunbookDeskError(
            "this workspace uses its SQLite file, which has no password: pass --database URL "
            "or run `runbook-desk team use URL` first"
        )
    account = postgres_keyring_account(parse_database_url(url))
    password = read_secret(f"database password for {account}: ", confirm=False)
    if not args.no_check:
        engine = create_postgres_engine(url, password=password)
        try:
            with engine.connect():
                pass
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
            raise RunbookDeskError(f"not stored: {account} refused the connection: {reason}") from None
        finally:
            engine.dispose()
    keyring.set_password(POSTGRES_KEYRING_SERVICE, account, password)
    print_result(
        args,
        {"keychain_service": POSTGRES_KEYRING_SERVICE, "account": account, "checked": not args.no_check},
        f"password for {account} stored in the keychain ({POSTGRES_KEYRING_SERVICE})",
    )
    return EXIT_OK


def read_secret(prompt: str, *, confirm: bool) -> str:
    """A secret from a hidden prompt on a terminal, else stdin's first line; never an argument."""
    from core.errors import RunbookDeskError

    if sys.stdin.isatty():
        secret = getpass.getpass(prompt)
        if confirm and getpass.getpass("again: ") != secret:
            raise RunbookDeskError("the two passwords differ: nothing changed")
    else:
        secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        raise RunbookDeskError("no password given: nothing changed")
    return secret


def _status(args: argparse.Namespace) -> int:
    from core.store.team import team_status
    from core.store.workspace import Workspace
    from desktop.cli.common import EXIT_OK, print_result

    with Workspace.open(args.workspace, database_url=args.database) as workspace:
        status = team_status(workspace, args.tenant)
        shown = _shown_url(workspace)
    print_result(args, _status_json(status, shown), _status_text(status, shown))
    return EXIT_OK


def _status_json(status: TeamStatus, shown: str) -> dict[str, Any]:
    return {
        "mode": status.mode,
        "database_url": shown if status.mode == "team" else None,
        "login": status.login,
        "server": status.server,
        "database": status.database,
        "tenant": status.tenant,
        "role": status.role.value if status.role is not None else None,
        "tenants": {t.slug: t.role.value if t.role is not None else None for t in status.tenants},
    }


def _status_text(status: TeamStatus, shown: str) -> str:
    roles = ", ".join(f"{t.slug} ({t.role.value if t.role else 'no member'})" for t in status.tenants)
    if status.mode != "team":
        return f"single-user workspace: {status.database}\nrole: admin\ntenants: {roles}"
    role = status.role.value if status.role is not None else "no member"
    return "\n".join(
        (
            f"team database: {shown}",
            f"server: {status.server}",
            f"database: {status.database}",
            f"login: {status.login}",
            f"role in {status.tenant}: {role}",
            f"tenants: {roles}",
        )
    )


def _members(args: argparse.Namespace) -> int:
    from core.errors import RunbookDeskError
    from core.store.models import TeamRole
    from core.store.repository import current_actor
    from core.store.team import (
        add_member,
        change_role,
        create_login,
        list_members,
        remove_member,
        require_role,
        validate_login,
    )
    from core.store.workspace import Workspace
    from desktop.cli.common import EXIT_OK, print_result

    with Workspace.open(args.workspace, database_url=args.database) as workspace:
        sessions = workspace.session_factory(args.tenant)
        actor = current_actor()
        if args.member_action == "list":
            with sessions() as session:
                rows = list_members(session)
            print_result(
                args,
                [_member_json(row) for row in rows],
                "\n".join(f"{row.login:<24} {row.role.value:<8} added by {row.added_by}" for row in rows)
                or f"no members in tenant {args.tenant}",
            )
            return EXIT_OK
        login = validate_login(args.login)
        with sessions.begin() as session:
            if args.member_action == "add":
                role = TeamRole(args.role)
                if args.create_login:
                    if not workspace.is_team:
                        raise RunbookDeskError(
                            "--create-login makes a PostgreSQL login: this workspace uses its SQLite file"
                        )
                    require_role(session, TeamRole.ADMIN, "adding a member")
                    create_login(
                        workspace.engine,
                        login,
                        read_secret(f"password for the new login {login}: ", confirm=True),
                    )
                row = add_member(session, login, role, actor=actor)
                text = f"{login} added to tenant {args.tenant} as {row.role.value}"
            elif args.member_action == "role":
                row = change_role(session, login, TeamRole(args.role), actor=actor)
                text = f"{login} is {row.role.value} in tenant {args.tenant}"
            else:
                remove_member(session, login, actor=actor)
                row = None
                text = f"{login} removed from tenant {args.tenant}"
    payload = _member_json(row) if row is not None else {"login": login, "removed": True}
    print_result(args, payload, text)
    return EXIT_OK


def _member_json(row: MemberRow) -> dict[str, Any]:
    return {
        "login": row.login,
        "role": row.role.value,
        "added_by": row.added_by,
        "added_at": row.added_at.isoformat() if row.added_at else None,
    }


def _shown_url(workspace: Workspace) -> str:
    """The database's URL for people: the team database without the driver's name, or the SQLite file."""
    if not workspace.is_team:
        return str(workspace.db_path)
    return str(workspace.engine.url.set(drivername="postgresql").render_as_string(hide_password=True))


def _revision(workspace: Workspace) -> str | None:
    from core.store.migrations import current_revision

    return current_revision(workspace.engine)
