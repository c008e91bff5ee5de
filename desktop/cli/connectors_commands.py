"""The ``runbook-desk connectors`` commands (the parser and the why: :mod:`desktop.cli.connectors`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from sqlalchemy.orm import sessionmaker

from connectors.base import ConnectorSpec
from connectors.configs import (
    ConfigRow,
    check_config,
    create_config,
    get_config,
    list_configs,
    remove_config,
    required_secrets,
    resolve_auth_mode,
    validate_options,
)
from connectors.errors import ConfigurationError
from connectors.onboarding import cleartext_credentials
from connectors.registry import connector_class, connector_types, plugin_problems
from connectors.rotation import rotate_secret
from connectors.scheduler import DEFAULT_POLL_SECONDS, SyncScheduler
from connectors.secrets import install_secret_redaction, redact_text
from connectors.sync import SyncReport, run_sync
from core.errors import RunbookDeskError
from core.store.connector_secrets import SecretAge, secret_ages
from core.store.models import utcnow
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from desktop.cli.common import EXIT_ERROR, EXIT_OK, print_result, progress_for

SECRET_ENV_PREFIX = "RUNBOOK_DESK_SECRET_"


def run_connectors_command(args: argparse.Namespace) -> int:
    install_secret_redaction()
    if args.action == "types":
        return _types(args)
    with Workspace.open(args.workspace, database_url=args.database) as workspace:
        sessions = workspace.session_factory(args.tenant)
        if args.action == "add":
            spec = connector_class(args.type).spec
            options = parse_options(args.option)
            # The options and the URL are checked before anyone is asked for a password.
            mode = resolve_auth_mode(spec, args.name, args.auth)
            validate_options(spec, args.name, mode, options)
            refuse_cleartext(args, args.name, args.url, sends_credentials=bool(spec.secret_keys(mode)))
            row = create_config(
                sessions,
                connector_type=args.type,
                name=args.name,
                base_url=args.url,
                auth_mode=args.auth,
                options=options,
                secrets=read_secrets(spec, args.name, args.auth),
                ca_bundle=args.ca_bundle,
                sync_frequency_minutes=args.every,
            )
            print_result(args, row.public_dict(), f"added {row.name} ({row.connector_type}, {row.base_url})")
            return EXIT_OK
        if args.action == "list":
            with sessions() as session:
                rows = list_configs(session)
                ages = secret_ages(session, utcnow())
            print_result(
                args,
                [
                    r.public_dict() | {"secrets": [a.as_dict() for a in ages if a.config_id == r.id]}
                    for r in rows
                ],
                "\n".join(_list_line(r, ages) for r in rows) or "no connectors",
            )
            return EXIT_OK
        if args.action == "run":
            return asyncio.run(_run_scheduler(args, sessions))
        with sessions() as session:
            row = get_config(session, args.name)
        if args.action in ("check", "sync", "rotate"):
            refuse_cleartext(args, row.name, row.base_url, sends_credentials=bool(row.secret_fields))
        if args.action == "check":
            result = asyncio.run(check_config(sessions, row))
            message, hint = redact_text(result.message), redact_text(result.hint)
            payload = {"name": row.name, "ok": result.ok, "problem": result.problem.value}
            payload |= {"message": message, "hint": hint}
            text = f"{row.name}: {message}" if result.ok else message
            if not result.ok and hint:
                text += f"\nhint: {hint}"
            if result.ok or args.json:
                print_result(args, payload, text)
            else:
                print(f"runbook-desk: error: {text}", file=sys.stderr)
            return EXIT_OK if result.ok else EXIT_ERROR
        if args.action == "sync":
            with progress_for(args) as progress:  # pages stored, and a slow server's wait
                report = asyncio.run(run_sync(sessions, row.id, full=args.full, progress=progress))
            if report.ok or args.json:
                print_result(args, report.as_dict(), report.headline())
            else:
                print(f"runbook-desk: error: {report.headline()}", file=sys.stderr)
            return EXIT_OK if report.ok else EXIT_ERROR
        if args.action == "rotate":
            return _rotate(args, sessions, row)
        if args.action == "remove":
            removed = remove_config(sessions, row.id, purge_tickets=args.purge_tickets)
            text = (
                f"removed {row.name}: {removed.tickets_purged} tickets deleted, {removed.tickets_kept} kept"
            )
            print_result(
                args,
                {
                    "name": row.name,
                    "tickets_purged": removed.tickets_purged,
                    "tickets_kept": removed.tickets_kept,
                    "sync_runs_kept": removed.sync_runs_kept,
                }
                | {"keychain_problem": removed.keychain_problem},
                text,
            )
            if removed.keychain_problem:
                print(f"runbook-desk: warning: {removed.keychain_problem}", file=sys.stderr)
            return EXIT_OK
    raise RunbookDeskError(f"unknown connectors action {args.action}")


async def _run_scheduler(args: argparse.Namespace, sessions: sessionmaker[TenantSession]) -> int:
    """The headless scheduler: the same :class:`~connectors.scheduler.SyncScheduler` rule the desktop follows,
    one line per finished sync. Exits 1 if any sync failed (with ``--once``) or on a bug in a sync."""
    failures: list[str] = []

    def on_report(report: SyncReport) -> None:
        if not report.ok:
            failures.append(report.config_name)
        print_result(args, report.as_dict(), report.headline())
        sys.stdout.flush()

    def on_error(config_id: int, error: BaseException) -> None:
        failures.append(str(config_id))
        print(f"runbook-desk: error: connector {config_id}: {redact_text(repr(error))}", file=sys.stderr)

    def on_busy(_config_id: int, message: str) -> None:
        print(f"skipped: {message}")
        sys.stdout.flush()

    if not args.allow_insecure_http:
        with sessions() as session:
            active = list_configs(session, active_only=True)
        refusals = [
            f"{row.name}: {problem}"
            for row in active
            if (problem := cleartext_credentials(row.base_url, sends_credentials=bool(row.secret_fields)))
        ]
        if refusals:
            raise RunbookDeskError("; ".join(refusals))
    scheduler = SyncScheduler(
        sessions,
        poll_seconds=args.poll_seconds or DEFAULT_POLL_SECONDS,
        on_report=on_report,
        on_error=on_error,
        on_busy=on_busy,
    )
    if args.once:
        started = scheduler.tick()
        await scheduler.wait_for_running()
        if not started and not args.json:
            print("no connector is due")
        return EXIT_ERROR if failures else EXIT_OK
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl+C arrives as KeyboardInterrupt
            loop.add_signal_handler(signal_number, stop.set)
    scheduler.start()
    try:
        await stop.wait()
    finally:
        await scheduler.stop()  # running syncs are recorded as cancelled; the next run resumes them
    return EXIT_OK


def refuse_cleartext(args: argparse.Namespace, name: str, base_url: str, *, sends_credentials: bool) -> None:
    """Raise unless the credentials stay encrypted on the way, or the analyst accepted that they do not."""
    if args.allow_insecure_http:
        return
    problem = cleartext_credentials(base_url, sends_credentials=sends_credentials)
    if problem is not None:
        raise ConfigurationError(name, problem)


def parse_options(pairs: Sequence[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise RunbookDeskError(f"--option {pair}: expected KEY=VALUE")
        options[key.strip()] = value.strip()
    return options


def read_secrets(
    spec: ConnectorSpec, name: str, auth_mode: str | None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Each secret of the auth mode from its environment variable, else a hidden prompt in a terminal."""
    environ = os.environ if environ is None else environ
    mode = resolve_auth_mode(spec, name, auth_mode)
    needed = set(required_secrets(spec, mode))
    secrets: dict[str, str] = {}
    for config_field in spec.fields:
        if not config_field.secret or not config_field.applies_to(mode):
            continue
        variable = SECRET_ENV_PREFIX + config_field.key.upper()
        value = environ.get(variable, "")
        if not value and sys.stdin.isatty():
            optional = "" if config_field.key in needed else " (optional, Enter to skip)"
            value = getpass.getpass(f"{config_field.label}{optional}: ")
        if not value and config_field.key in needed:
            raise ConfigurationError(
                name, f"{config_field.label} is required: set {variable} or run the command in a terminal"
            )
        if value:
            secrets[config_field.key] = value
    return secrets


def _types(args: argparse.Namespace) -> int:
    specs = connector_types()
    payload = [
        {
            "type": s.type,
            "name": s.display_name,
            "kind": s.kind.value,
            "auth_modes": [m.key for m in s.auth_modes],
            "options": [f.key for f in s.fields if not f.secret],
            "secrets": [f.key for f in s.fields if f.secret],
        }
        for s in specs
    ]
    lines = [
        f"{s.type:<18} {s.kind.value:<11} {s.display_name}  (auth: {', '.join(m.key for m in s.auth_modes)})"
        for s in specs
    ]
    # A plugin that failed is listed (and logged once, on stderr): the analyst sees why its type is missing.
    lines += [str(problem) for problem in plugin_problems()]
    print_result(args, payload, "\n".join(lines) or "no connector types")
    return EXIT_OK


def _list_line(row: ConfigRow, ages: Sequence[SecretAge] = ()) -> str:
    state = "active" if row.is_active else "paused"
    last = row.last_sync_at.strftime("%Y-%m-%d %H:%M UTC") if row.last_sync_at else "never synced"
    failing = f", {row.consecutive_failures} failures in a row" if row.consecutive_failures else ""
    every = f"every {row.sync_frequency_minutes} min"
    secrets = "; ".join(age.label() for age in ages if age.config_id == row.id)
    secrets = f"; {secrets}" if secrets else ""
    return f"{row.name:<24} {row.connector_type:<16} {state:<7} {every}, {last}{failing}{secrets}"


def _rotate(args: argparse.Namespace, sessions: sessionmaker[TenantSession], row: ConfigRow) -> int:
    """Exit 0 when the new value passed the connection test and replaced the old one, 1 when it was refused
    (the old value stays; the test's diagnosis is printed)."""
    field = args.field or _only_secret(row)
    if field not in row.secret_fields:
        stored = ", ".join(row.secret_fields) or "none"
        raise ConfigurationError(row.name, f"no stored secret {field!r} to rotate (stored: {stored})")
    new_value = read_new_secret(row.name, field)
    result = asyncio.run(rotate_secret(sessions, row.id, field, new_value))
    payload = {
        "name": row.name,
        "field": field,
        "rotated": result.rotated,
        "problem": result.check.problem.value,
    }
    payload |= {"message": redact_text(result.check.message), "hint": redact_text(result.check.hint)}
    if result.rotated:
        print_result(args, payload, result.headline())
        return EXIT_OK
    if args.json:
        print_result(args, payload, "")
    else:
        hint = f"\nhint: {redact_text(result.check.hint)}" if result.check.hint else ""
        print(f"runbook-desk: error: {result.headline()}{hint}", file=sys.stderr)
    return EXIT_ERROR


def _only_secret(row: ConfigRow) -> str:
    if len(row.secret_fields) == 1:
        return row.secret_fields[0]
    stored = ", ".join(row.secret_fields) or "none"
    raise ConfigurationError(row.name, f"say which secret to rotate with --field (stored: {stored})")


def read_new_secret(
    name: str, field: str, environ: Mapping[str, str] | None = None, stdin: TextIO | None = None
) -> str:
    """The new value from ``RUNBOOK_DESK_SECRET_<FIELD>``, a hidden prompt in a terminal, or the first line of
    standard input (``pass show x | runbook-desk connectors rotate ...``); never from the command line."""
    environ = os.environ if environ is None else environ
    stdin = sys.stdin if stdin is None else stdin
    variable = SECRET_ENV_PREFIX + field.upper()
    value = environ.get(variable, "")
    if not value:
        if stdin.isatty():
            value = getpass.getpass(f"New {field} for {name}: ")
        else:
            value = stdin.readline().rstrip("\r\n")
    if not value:
        raise ConfigurationError(
            name,
            f"no new {field}: set {variable}, pipe it on standard input or run the command in a terminal",
        )
    return value
