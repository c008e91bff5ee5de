"""The ``runbook-desk`` entry point: the headless CLI, handed the one thing it cannot import, the window.

``desktop.cli`` is Qt-free (an import contract checks it), so it cannot import ``desktop.app``. When no
subcommand is given it calls the ``open_window`` it was handed; this module is the only place that joins the
two.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from core.store.workspace import Workspace
from desktop.cli.main import main as cli_main


def open_window(workspace_arg: str | None, tenant: str, *, demo: bool) -> int:
    # Qt is imported here, never for headless commands.
    from core.store.workspace import demo_workspace_dir
    from desktop.app import preferred_workspace_dir, run_app

    path: Path = (
        demo_workspace_dir() if demo and not workspace_arg else preferred_workspace_dir(workspace_arg)
    )
    workspace = Workspace.open(path)
    # The demo's first import runs in the window's background jobs, so the window shows at once.
    return run_app(workspace, tenant, sys.argv[:1], seed_demo=demo)


def self_test() -> int:
    from desktop.self_test import run_self_test

    return run_self_test()


def main(argv: Sequence[str] | None = None) -> int:
    return cli_main(argv, open_window=open_window, self_test=self_test)
