"""Save a screenshot of the Metrics page on the analysed demo workspace to docs/metrics.png.

Run: ``xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots_metrics.py``, about a
minute: the demo is imported and analysed in a temporary workspace by the window's own jobs, as on a first
``make run``. Then, so the review metrics have something to show, an analyst's spot-check is simulated with
the demo's answer key (``resources/demo/labels.csv``): every other automatic link is confirmed when it is
the runbook the ticket was written for and rejected when not, and every third ticket flagged for review is
approved when its best match is right or linked to the right runbook when one exists. Nothing is invented:
every decision follows the labels, and the figures are what the metrics compute from them.
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from screenshots_kit import save, settle, wait_until
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.analytics.metrics import Bucket
from core.store.models import AnalysisDecision, Runbook, Ticket, TicketRunbookLink
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from core.workflow import review
from desktop.main_window import METRICS_PAGE, MainWindow

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
LABELS = ROOT / "resources" / "demo" / "labels.csv"
REVIEWER = "demo.analyst"


def spot_check(sessions: sessionmaker[TenantSession]) -> dict[str, int]:
    """Review decisions that follow the answer key (see the module docstring); returns what was done."""
    with LABELS.open(encoding="utf-8", newline="") as stream:
        intended = {row["number"]: row["runbook"] or None for row in csv.DictReader(stream)}
    done = {"confirmed": 0, "reverted": 0, "approved": 0, "linked_other": 0}
    with sessions.begin() as session:
        runbook_by_slug = {
            (ref or "").removesuffix(".md"): runbook_id
            for runbook_id, ref in session.execute(select(Runbook.id, Runbook.external_ref))
        }
        number_of = {
            ticket_id: number for ticket_id, number in session.execute(select(Ticket.id, Ticket.external_id))
        }
        automatic = session.execute(
            select(TicketRunbookLink.ticket_id, TicketRunbookLink.runbook_id)
            .where(TicketRunbookLink.linked_automatically.is_(True), TicketRunbookLink.reviewed_at.is_(None))
            .order_by(TicketRunbookLink.ticket_id)
        ).all()
        for position, (ticket_id, runbook_id) in enumerate(automatic):
            if position % 2:
                continue
            right = runbook_by_slug.get(intended.get(number_of[ticket_id]) or "")
            if right == runbook_id:
                review.approve(session, ticket_id, runbook_id, None, REVIEWER)
                done["confirmed"] += 1
            elif right is not None:
                review.link_other(session, ticket_id, right, REVIEWER)
                done["reverted"] += 1
            else:
                review.reject(session, ticket_id, runbook_id, "no runbook covers this yet", REVIEWER)
                done["reverted"] += 1
        flagged = [
            row for row in review.load_review_queue(session) if row.decision is AnalysisDecision.FLAG_REVIEW
        ]
        for row in flagged[::3]:
            right = runbook_by_slug.get(intended.get(row.external_id) or "")
            if right is not None and right == row.best_runbook_id:
                review.approve(session, row.ticket_id, right, row.confidence, REVIEWER)
                done["approved"] += 1
            elif right is not None:
                review.link_other(session, row.ticket_id, right, REVIEWER)
                done["linked_other"] += 1
    return done


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rd-metrics-") as tmp:
        workspace = Workspace.open(Path(tmp) / "demo")
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(workspace, "default", settings=settings)
        window.resize(1500, 900)
        window.show()
        window.start_startup_jobs(seed_demo=True)
        wait_until(app, lambda: not window.runner.active_tasks(), "the demo import and analysis")
        print("review decisions (from the answer key):", spot_check(window.context.sessions))
        window.notifications.clear()

        page = window.metrics_page
        page.evaluate_alerts()
        wait_until(app, lambda: not page.is_evaluating(), "the alert check")
        window.show_page(METRICS_PAGE)
        page.set_range(date(2026, 6, 1), datetime.now(UTC).date(), Bucket.WEEK)
        wait_until(app, lambda: page.current is not None and not page.is_loading(), "the metrics")
        settle(app, 1.0)
        for item in page.current.report.scorecard.items if page.current else ():
            print(f"{item.title}: {item.value} ({item.status.value}; {item.detail})")
        save(window, "metrics.png")
        window.close()
        workspace.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
