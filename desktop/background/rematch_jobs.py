"""Jobs that bring old tickets up to date with the runbooks, for :class:`~desktop.background.tasks.TaskRunner`
(``progress=True``).

Approving, editing, importing or retiring a runbook writes a re-match request in its own transaction
(:mod:`core.matching.rematch`); :func:`rematch_changed_runbooks` is what the library page then runs: the
index refresh it always ran, and the tickets the change could affect re-matched with the vectors the ticket
index holds (nothing embedded but the changed runbook's sections). A cancel leaves the requests for the
next run or analysis. :func:`reanalyse_all_tickets` is the Analysis menu's "Re-analyse all tickets".
"""

from __future__ import annotations

from dataclasses import dataclass

from core.matching.engine import RefreshReport
from core.matching.rematch import RematchReport, rematch_pending
from desktop.background.jobs import AnalysisOutcome, analyse_new_tickets
from desktop.background.tasks import TaskContext
from desktop.context import AppContext


@dataclass(frozen=True, slots=True)
class RematchOutcome:
    refresh: RefreshReport
    rematch: RematchReport


def rematch_changed_runbooks(task: TaskContext, app: AppContext) -> RematchOutcome:
    """Refresh the indexes for the changed runbooks, then re-match the tickets they could affect."""
    task.report(0, None, "loading the matching model")
    engine = app.engine()
    task.raise_if_cancelled()
    task.report(0, None, "updating the matching index")
    refresh = engine.refresh(progress=task)
    task.raise_if_cancelled()
    task.report(0, None, "re-matching the tickets near the changed runbooks")
    return RematchOutcome(refresh, rematch_pending(engine, app.sessions, task))


def reanalyse_all_tickets(task: TaskContext, app: AppContext) -> AnalysisOutcome:
    """Every ticket analysed again (``analyze --all``): what a changed model or a doubt about the store calls
    for; it answers the pending re-match requests too."""
    return analyse_new_tickets(task, app, reanalyse_all=True)
