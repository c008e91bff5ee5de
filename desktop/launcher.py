"""The ``runbook-desk`` entry point: the headless CLI, handed the one thing it cannot import, the window.

``desktop.cli`` is Qt-free (an import contract checks it), so it cannot import ``desktop.app``. When no
subcommand is given it calls the ``open_window`` it was handed; this module is the only place that joins the
two.

``--demo`` opens the demo workspace even when ``$RUNBOOK_DESK_WORKSPACE`` is set: that variable names the
user's own workspace, and the demo pours its synthetic tickets and runbooks into whatever it opens empty.
Only an explicit ``--workspace`` moves the demo. Because the headless commands do follow the variable, the
window and this start-up line say where the demo lives, and a command on an empty workspace that is not the
app's says so (:func:`desktop.cli.common.warn_if_not_app_workspace`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from core.errors import RunbookDeskError
from core.store.workspace import WORKSPACE_ENV, Workspace, remember_app_workspace
from desktop.cli.main import main as cli_main

log = logging.getLogger(__name__)


def open_window(
    workspace_arg: str | None, tenant: str, *, demo: bool, database_url: str | None = None
) -> int:
    """``database_url`` (``--database``) opens the workspace on a team database for this run; the demo
    never does: it pours synthetic tickets into whatever store it opens."""
    if demo and database_url:
        raise RunbookDeskError(
            "--demo opens the built-in demo workspace on its own SQLite file: drop --database"
        )
    # Qt is imported here, never for headless commands.
    from core.store.workspace import demo_workspace_dir
    from desktop.app import preferred_workspace_dir, run_app

    path: Path = (
        demo_workspace_dir() if demo and not workspace_arg else preferred_workspace_dir(workspace_arg)
    )
    workspace = Workspace.open(path, database_url=database_url)
    remember_app_workspace(workspace.root)
    if demo:
        _say_where_the_demo_lives(workspace.root)
    # The demo's first import runs in the window's background jobs, so the window shows at once.
    return run_app(workspace, tenant, sys.argv[:1], seed_demo=demo)


def _say_where_the_demo_lives(root: Path) -> None:
    log.info("demo workspace: %s", root)
    print(f"runbook-desk: demo workspace: {root}", file=sys.stderr)
    from_env = os.environ.get(WORKSPACE_ENV)
    if from_env and Path(from_env).expanduser().resolve() != root.resolve():
        print(
            f"runbook-desk: {WORKSPACE_ENV}={from_env} is not used by --demo; commands without --workspace "
            f"still use it (pass --workspace {root} to work on the demo)",
            file=sys.stderr,
        )


def self_test() -> int:
    from desktop.self_test import run_self_test

    return run_self_test()


def main(argv: Sequence[str] | None = None) -> int:
    return cli_main(argv, open_window=open_window, self_test=self_test)
