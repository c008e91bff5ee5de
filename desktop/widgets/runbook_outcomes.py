"""Runbook outcomes as the analyst sees them (roadmap: Execution Tracking -> success metrics): the Metrics
page's section of runbooks flagged for revision, and the library's outcome column and detail lines.

The figures come from :mod:`core.analytics.outcome_stats` (success rate since the current revision, MTTR with
vs without the runbook, last failures), loaded on a worker (:mod:`desktop.background.outcome_jobs`). A widget
module rather than a page's, because both the Metrics page and the runbook library show them and pages do not
import each other.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QTableView, QVBoxLayout, QWidget
from sqlalchemy.orm import sessionmaker

from core.analytics.outcome_stats import OutcomeFailure, RunbookOutcomeStats
from core.settings import OutcomeSettings
from core.store.models import OutcomeSource
from core.store.repository import RunbookRow
from core.store.tenancy import TenantSession
from desktop.background.outcome_jobs import OutcomeStatsLoad, load_outcome_stats
from desktop.background.tasks import Task, TaskRunner
from desktop.widgets.table_models import Column, RowTableModel, format_local_datetime

log = logging.getLogger(__name__)

NEEDS_REVISION = "Needs revision"
FAILURE_WORDS = {
    OutcomeSource.ANALYST: "analyst: did not help",
    OutcomeSource.SOURCE_REOPENED: "reopened",
    OutcomeSource.RECURRENCE: "came back",
}


# --- text -------------------------------------------------------------------------------------------------


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def hours(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} h" if value < 48 else f"{value / 24:.1f} days"


def success_text(stats: RunbookOutcomeStats | None) -> str:
    """The library's outcome cell: "Needs revision · 30 % of 5", "80 % of 6", or nothing without outcomes."""
    if stats is None or not stats.outcomes:
        return ""
    text = f"{percent(stats.success_rate)} of {stats.outcomes}"
    return f"{NEEDS_REVISION} · {text}" if stats.needs_revision else text


def failure_text(failure: OutcomeFailure) -> str:
    when = format_local_datetime(failure.recorded_at).split(" ")[0]
    return f"{failure.external_id} ({FAILURE_WORDS.get(failure.source, 'failed')}, {when})"


def mttr_text(stats: RunbookOutcomeStats) -> str:
    with_part = f"{hours(stats.mttr_with_hours)} with it (n={stats.with_count})"
    without_part = f"{hours(stats.mttr_without_hours)} without (n={stats.without_count})"
    return f"{with_part} vs {without_part}"


def outcome_summary_html(stats: RunbookOutcomeStats | None, settings: OutcomeSettings | None = None) -> str:
    """The library's detail lines under the runbook's header: the flag, the figures, the last failures."""
    if stats is None:
        return "<p><i>No outcome recorded for this runbook yet.</i></p>"
    paragraphs = []
    if stats.needs_revision:
        limit = f" (below {percent(settings.revision_success_rate)})" if settings is not None else ""
        reason = html.escape(f": success rate {percent(stats.success_rate)}{limit}.")
        paragraphs.append(f"<b>{NEEDS_REVISION}</b>{reason}")
    lines = [
        f"Outcomes since revision {stats.revision}: {stats.outcomes} (resolved {stats.resolved}, partly "
        f"{stats.partly}, did not help {stats.failed}), success rate {percent(stats.success_rate)}; in all: "
        f"{stats.lifetime_outcomes}, {percent(stats.lifetime_success_rate)}.",
        f"Time to resolve: {mttr_text(stats)}.",
    ]
    if stats.last_failures:
        lines.append("Last failures: " + ", ".join(failure_text(f) for f in stats.last_failures) + ".")
    paragraphs += [html.escape(line) for line in lines]
    return "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)


def outcome_column(stats_by_runbook: Mapping[int, RunbookOutcomeStats]) -> Column[RunbookRow]:
    """The library's "Outcomes" column over a mapping the page fills in place when the figures load."""

    def tooltip(runbook: RunbookRow) -> str | None:
        stats = stats_by_runbook.get(runbook.id)
        return None if stats is None else f"{stats.title}: {mttr_text(stats)}"

    return Column(
        "Outcomes", lambda runbook: success_text(stats_by_runbook.get(runbook.id)) or None, tooltip=tooltip
    )


# --- the Metrics page's section ---------------------------------------------------------------------------

FLAGGED_COLUMNS: tuple[Column[RunbookOutcomeStats], ...] = (
    Column("Runbook", lambda stats: stats.title, tooltip=lambda stats: stats.title),
    Column("Success rate", lambda stats: percent(stats.success_rate)),
    Column("Outcomes", lambda stats: stats.outcomes),
    Column("MTTR with", lambda stats: hours(stats.mttr_with_hours)),
    Column("MTTR without", lambda stats: hours(stats.mttr_without_hours)),
    Column(
        "Last failures",
        lambda stats: ", ".join(failure_text(f) for f in stats.last_failures),
        tooltip=lambda stats: "\n".join(f.note or failure_text(f) for f in stats.last_failures),
    ),
)


class RunbookOutcomesSection(QWidget):
    """The runbooks flagged for revision, with their success rate, MTTR with and without and last failures.

    :meth:`reload` loads on a worker (a newer load replaces an older one); ``loaded`` fires with the
    :class:`OutcomeStatsLoad` once shown.
    """

    loaded = Signal(object)

    def __init__(
        self, runner: TaskRunner, sessions: sessionmaker[TenantSession], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("runbookOutcomes")
        self._runner = runner
        self._sessions = sessions
        self._task: Task | None = None
        self._stopped = False
        self.title_label = QLabel("<b>Runbooks needing revision</b>", self)
        self.rule_label = QLabel(self)
        self.rule_label.setObjectName("runbookOutcomesRule")
        self.rule_label.setWordWrap(True)
        self.model: RowTableModel[RunbookOutcomeStats] = RowTableModel(FLAGGED_COLUMNS, self)
        self.table = QTableView(self)
        self.table.setObjectName("flaggedRunbooks")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMaximumHeight(180)
        self.empty_label = QLabel("No runbook needs revision.", self)
        self.empty_label.setObjectName("runbookOutcomesEmpty")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title_label)
        layout.addWidget(self.rule_label)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.table)
        self.table.hide()

    def reload(self) -> None:
        if self._stopped:
            return
        if self._task is not None and self._task.is_active:
            self._task.cancel()
        self._task = self._runner.run(
            load_outcome_stats,
            self._sessions,
            title="Loading runbook outcomes",
            on_done=self._loaded,
            on_error=self._failed,
        )

    def is_loading(self) -> bool:
        return self._task is not None and self._task.is_active

    def stop(self) -> None:
        self._stopped = True
        if self._task is not None and self._task.is_active:
            self._task.cancel()

    def _loaded(self, result: OutcomeStatsLoad) -> None:
        flagged = result.flagged
        settings = result.settings
        counted = sum(1 for stats in result.by_runbook.values() if stats.outcomes)
        self.rule_label.setText(
            f"A runbook is flagged when its success rate (resolved 100 %, partly 50 %, did not help 0 %) is "
            f"below {percent(settings.revision_success_rate)} over at least {settings.revision_min_outcomes} "
            f"outcomes since its last revision. {counted} runbook(s) have outcomes; {len(flagged)} flagged."
        )
        self.model.set_rows(flagged)
        self.table.setVisible(bool(flagged))
        self.empty_label.setVisible(not flagged)
        self.loaded.emit(result)

    def _failed(self, exc: Exception, traceback_text: str) -> None:
        log.error("loading runbook outcomes failed:\n%s", traceback_text)
        self.rule_label.setText(f"Could not load the runbook outcomes: {exc}")
