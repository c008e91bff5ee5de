"""What recording and showing runbook outcomes runs on worker threads: the analyst's outcome (one
transaction, audited by :func:`core.workflow.outcomes.record_outcome`) and the per-runbook figures the Metrics
page and the runbook library show. Plain functions with their own session; frozen rows out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.orm import sessionmaker

from core.analytics.outcome_stats import RunbookOutcomeStats, revision_order, runbook_outcome_stats
from core.settings import OutcomeSettings, load_settings
from core.store.models import OutcomeKind
from core.store.tenancy import TenantSession
from core.workflow.outcomes import OutcomeRecord, record_outcome


def save_outcome(
    sessions: sessionmaker[TenantSession],
    ticket_id: int,
    outcome: OutcomeKind,
    actor: str,
    runbook_id: int | None,
) -> OutcomeRecord:
    """The analyst's outcome for the ticket's linked runbook (or ``runbook_id``), in one transaction."""
    with sessions.begin() as session:
        return record_outcome(session, ticket_id, outcome, actor, runbook_id=runbook_id)


@dataclass(frozen=True, slots=True)
class OutcomeStatsLoad:
    """Every runbook's figures (those with an outcome), and the settings that drew the flag's line."""

    by_runbook: Mapping[int, RunbookOutcomeStats]
    settings: OutcomeSettings

    @property
    def flagged(self) -> tuple[RunbookOutcomeStats, ...]:
        """The runbooks needing revision, the lowest success rate first."""
        return tuple(sorted((s for s in self.by_runbook.values() if s.needs_revision), key=revision_order))


def load_outcome_stats(sessions: sessionmaker[TenantSession]) -> OutcomeStatsLoad:
    with sessions() as session:
        settings = load_settings(session, OutcomeSettings)
        return OutcomeStatsLoad(runbook_outcome_stats(session, settings=settings), settings)
