"""An analyst who follows the demo's answer key (``resources/demo/labels.csv``): tests of the learning loop
need reviewed decisions, made the way the app makes them (``core.workflow.review``, audited)."""

from __future__ import annotations

import csv

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.queries import latest_analysis
from core.store.models import Analysis, Runbook, Ticket
from core.store.tenancy import TenantSession
from core.workflow.review import approve, reject
from tests.conftest import DEMO_DIR


def demo_labels() -> dict[str, str]:
    """Ticket number -> the slug of the runbook it was written for ("" when none)."""
    with (DEMO_DIR / "labels.csv").open(encoding="utf-8") as handle:
        return {row["number"]: row["runbook"] for row in csv.DictReader(handle)}


def review_like_the_labels(
    sessions: sessionmaker[TenantSession], count: int, *, actor: str = "dana"
) -> tuple[int, int]:
    """Review the first ``count`` analysed tickets (by number) that have a best match: approve it when it
    is the labelled runbook, reject it otherwise. Returns (approvals, rejections)."""
    truth = demo_labels()
    approvals = rejections = 0
    with sessions.begin() as session:
        latest = latest_analysis()
        rows = session.execute(
            select(Ticket.id, Ticket.external_id, Analysis.best_runbook_id, Runbook.external_ref)
            .join(latest, latest.c.ticket_id == Ticket.id)
            .join(Analysis, Analysis.id == latest.c.analysis_id)
            .join(Runbook, Runbook.id == Analysis.best_runbook_id)
            .order_by(Ticket.external_id)
            .limit(count)
        ).all()
        for ticket_id, external_id, runbook_id, ref in rows:
            if f"{truth.get(external_id)}.md" == ref:
                approve(session, ticket_id, runbook_id, None, actor)
                approvals += 1
            else:
                reject(session, ticket_id, runbook_id, "not this one", actor)
                rejections += 1
    return approvals, rejections
