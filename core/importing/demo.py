"""The built-in demo workspace: bundled synthetic runbooks and tickets, imported on first start."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.importing import ImportSummary, import_runbooks, import_tickets
from core.progress import NO_PROGRESS, Progress
from core.resources import resources_dir
from core.store.repository import count_tickets
from core.store.workspace import DEFAULT_TENANT, Workspace


def demo_data_dir() -> Path:
    return resources_dir() / "demo"


@dataclass(frozen=True)
class DemoSeed:
    runbooks: ImportSummary
    tickets: ImportSummary


def seed_demo(workspace: Workspace, progress: Progress = NO_PROGRESS) -> DemoSeed | None:
    """Import the demo data into the default tenant if it has no tickets yet; None when already seeded."""
    sessions = workspace.session_factory(DEFAULT_TENANT)
    with sessions() as session:
        if count_tickets(session) > 0:
            return None
    data = demo_data_dir()
    runbooks = import_runbooks(sessions, data / "runbooks", actor="demo-setup")
    tickets = import_tickets(sessions, data / "tickets.csv", actor="demo-setup", progress=progress)
    return DemoSeed(runbooks, tickets)
