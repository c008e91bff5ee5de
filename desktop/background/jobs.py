"""The window's long jobs as plain functions for :class:`~desktop.background.tasks.TaskRunner`
(``progress=True``).

Each runs on a pool thread and opens its own sessions. Its ``TaskContext`` is a
:class:`core.progress.Progress`, handed to the core as is: the core reports through it and stops with
:class:`~core.errors.OperationCancelledError` when the user cancels, which the runner records as a cancel.
They return plain summaries the window shows; they never touch a widget. Tests call them directly or through
a runner.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.importing import ImportSummary, import_runbooks, import_tickets
from core.importing.demo import DemoSeed, seed_demo
from core.matching.analysis import BatchReport, analyze_pending
from core.matching.engine import RefreshReport
from desktop.background.tasks import TaskContext
from desktop.context import AppContext

TICKET_SUFFIXES = frozenset({".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson"})
RUNBOOK_SUFFIXES = frozenset({".md", ".markdown"})


def import_kind(path: Path) -> str | None:
    """What a dropped or chosen path holds: "runbooks" (a folder or a Markdown file), "tickets", or None."""
    if path.is_dir() or path.suffix.lower() in RUNBOOK_SUFFIXES:
        return "runbooks"
    if path.suffix.lower() in TICKET_SUFFIXES:
        return "tickets"
    return None


def import_path(task: TaskContext, app: AppContext, path: Path) -> ImportSummary:
    """Import tickets (a CSV/JSON/JSONL export) or runbooks (a folder of Markdown) into the current tenant."""
    kind = import_kind(path)
    if kind is None:
        raise ValueError(f"{path.name}: not a ticket export (.csv, .json, .jsonl) or a runbook folder")
    if kind == "runbooks":
        return import_runbooks(app.sessions, path, actor=app.reviewer(), progress=task)
    return import_tickets(app.sessions, path, actor=app.reviewer(), progress=task)


def seed_demo_workspace(task: TaskContext, app: AppContext) -> DemoSeed | None:
    """First start of the demo: import the bundled runbooks and tickets (about 2 s), off the GUI thread."""
    task.report(0, None, "importing the demo runbooks and tickets")
    return seed_demo(app.workspace, progress=task)


@dataclass(frozen=True, slots=True)
class AnalysisOutcome:
    refresh: RefreshReport
    batch: BatchReport


def analyse_new_tickets(
    task: TaskContext, app: AppContext, *, reanalyse_all: bool = False
) -> AnalysisOutcome:
    """Bring the indexes in line with the store (new or edited runbooks), then analyse stale tickets.

    The first call in a process opens the engine (the ONNX model loads on first use, ~0.5 s); a first start
    then indexes every ticket, reported per batch ("indexed 384 of 1,146 tickets").
    """
    task.report(0, None, "loading the matching model")
    engine = app.engine()
    task.raise_if_cancelled()
    task.report(0, None, "updating the runbook and ticket indexes")
    # New or edited runbooks since the engine was opened; on a first start, every ticket (counted).
    refreshed = engine.refresh(progress=task)
    task.raise_if_cancelled()
    task.report(0, None, "analysing tickets")
    batch = analyze_pending(engine, app.sessions, reanalyse_all=reanalyse_all, progress=task)
    return AnalysisOutcome(refreshed, batch)


def rebuild_indexes(task: TaskContext, app: AppContext) -> RefreshReport:
    """Forget both FAISS indexes and rebuild them from the store; vectors come from the embedding cache."""
    task.report(0, None, "loading the matching model")
    engine = app.engine()
    task.raise_if_cancelled()
    engine.reset_indexes()
    task.report(0, None, "rebuilding the indexes")
    return engine.refresh(progress=task)
