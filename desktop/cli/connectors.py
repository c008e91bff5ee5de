"""``runbook-desk connectors types|add|list|check|sync|run|rotate|remove``: connectors for headless, scripted
use.

Secrets are never command-line arguments (they would sit in the shell history and in ``ps``): each secret
field is read from ``RUNBOOK_DESK_SECRET_<FIELD>`` (upper case) or, in a terminal, from a hidden prompt.
``sync`` prints the run's counts and exits 1 with the connector's error when the run failed, so a cron job
or CI step notices; ``check`` exits 1 with the diagnosis when the connector cannot connect. ``run`` is the
headless scheduler (a server, a systemd unit): every active connector on its own schedule until stopped.
``rotate`` replaces one stored secret only after the connector's connection test passed with the new
value (exit 1 and the old value kept otherwise); ``list`` shows each stored secret's age and whether the
tenant's rotation period has passed.

A connector that would send credentials over plain ``http://`` is refused by ``add``, ``check``, ``sync``
and ``run`` unless ``--allow-insecure-http`` says the analyst accepts that (the wizard warns instead, where
someone reads the warning). Every check and sync is on the audit trail; every error text printed, in
``--json`` too, is redacted of the connector's secrets in all their encodings.

The parser is built here with no connector code imported: every command builds the whole parser, and
importing httpx and the connector framework cost ~0.1 s of each ``tickets list`` (issue 16). The commands
run in :mod:`desktop.cli.connectors_commands`, imported when one of them is asked for.
"""

from __future__ import annotations

import argparse

ALLOW_HTTP_HELP = (
    "accept plain http:// although the credentials then cross the network in clear text (a test instance)"
)


def add_connectors_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    group = commands.add_parser("connectors", help="configure and sync ticketing systems")
    sub = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("types", parents=[common], help="the connector types this build knows, plugins included")
    add = sub.add_parser(
        "add",
        parents=[common],
        help="configure a connector (secrets from RUNBOOK_DESK_SECRET_<FIELD> or a hidden prompt)",
    )
    add.add_argument("type", help="a type from `connectors types`, e.g. servicenow")
    add.add_argument("--name", required=True, help="your name for it; errors and the UI use it")
    add.add_argument("--url", required=True, help="the instance's base URL, https://...")
    add.add_argument("--auth", metavar="MODE", help="auth mode (default: the type's first)")
    add.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a non-secret setting (repeatable), e.g. --option tables=incident",
    )
    add.add_argument("--ca-bundle", metavar="PEM", help="CA bundle that signed the server's certificate")
    add.add_argument("--every", type=int, default=5, metavar="MINUTES", help="sync frequency (default: 5)")
    add.add_argument("--allow-insecure-http", action="store_true", help=ALLOW_HTTP_HELP)
    sub.add_parser("list", parents=[common], help="configured connectors and their last sync")
    check = sub.add_parser("check", parents=[common], help="test reachability, TLS, auth and read access")
    check.add_argument("name")
    check.add_argument("--allow-insecure-http", action="store_true", help=ALLOW_HTTP_HELP)
    sync = sub.add_parser("sync", parents=[common], help="sync one connector now and print the counts")
    sync.add_argument("name")
    sync.add_argument("--full", action="store_true", help="re-read everything, not only what changed")
    sync.add_argument("--allow-insecure-http", action="store_true", help=ALLOW_HTTP_HELP)
    run = sub.add_parser(
        "run",
        parents=[common],
        help="keep syncing every active connector on its schedule until stopped (Ctrl+C, SIGTERM)",
    )
    run.add_argument(
        "--once", action="store_true", help="start the syncs that are due, wait for them, then exit (cron)"
    )
    run.add_argument(
        "--poll-seconds",
        type=float,
        metavar="S",
        help="how often to look for due connectors (default: the scheduler's, 30 s)",
    )
    run.add_argument("--allow-insecure-http", action="store_true", help=ALLOW_HTTP_HELP)
    rotate = sub.add_parser(
        "rotate",
        parents=[common],
        help="replace a stored secret after a connection test with the new value passed (value from "
        "RUNBOOK_DESK_SECRET_<FIELD>, a hidden prompt or standard input; never an argument)",
    )
    rotate.add_argument("name")
    rotate.add_argument(
        "--field", metavar="F", help="the secret to rotate, e.g. password (default: the only one stored)"
    )
    rotate.add_argument("--allow-insecure-http", action="store_true", help=ALLOW_HTTP_HELP)
    remove = sub.add_parser("remove", parents=[common], help="remove a connector and its keychain entries")
    remove.add_argument("name")
    remove.add_argument("--purge-tickets", action="store_true", help="also delete the tickets it brought")


def run_connectors_command(args: argparse.Namespace) -> int:
    from desktop.cli.connectors_commands import run_connectors_command as run

    return run(args)
