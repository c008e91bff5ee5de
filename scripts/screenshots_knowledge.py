"""Save screenshots of knowledge articles on the demo workspace: docs/review-knowledge.png and
docs/adopted-article.png.

Run: ``xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots_knowledge.py``, a
minute or two: the demo (runbooks, tickets, monitoring events and its synthetic ServiceNow Knowledge,
Confluence and ServiceDesk Plus articles, ``resources/demo/knowledge_articles.json``) is imported into a
temporary workspace by the window's own jobs, as on a first ``make run``, and indexed by the analysis that
follows.

1. **review-knowledge.png**: the Review page on INC0010095 ("CITRIX BACK SCREEN ??"), a demo gap no runbook
   covers, the queue filtered to "citrix": the runbooks found are weak, the *Knowledge* panel shows the
   Confluence page that holds the procedure.
2. **adopted-article.png**: that page adopted from the Runbooks page (*Adopt article…*, the window's own
   job), then changed at the source as a re-sync would store it (a step added, through
   :func:`core.knowledge.store.upsert_articles`, instance ``demo``): the draft runbook is selected and its
   header says *Source changed*.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from screenshots_kit import save, settle, wait_until
from sqlalchemy import select

from core.importing.demo import DEMO_ARTICLES, DEMO_ARTICLES_INSTANCE, demo_articles, demo_data_dir
from core.knowledge.store import upsert_articles
from core.store.models import Ticket
from core.store.workspace import Workspace
from desktop.main_window import RUNBOOKS_PAGE, MainWindow

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TICKET = "INC0010095"  # "CITRIX BACK SCREEN ??": the demo's citrix-workspace gap
ARTICLE = "393217"  # the Confluence page "Citrix Workspace: black screen when launching..."
ADDED_STEP = (
    "5. If the VDA keeps deregistering, collect a CDF trace with `CDFControl.exe` and attach it to the "
    "Citrix team's ticket.\n"
)


def change_article_at_source(workspace: Workspace) -> None:
    """Store the demo article again with one step more, as a re-sync of an edited page would."""
    article = next(a for a in demo_articles(demo_data_dir() / DEMO_ARTICLES) if a.number == ARTICLE)
    marker = "4. Ask the user to relaunch the resource from the Workspace app.\n"
    assert marker in article.body, "the demo article changed: update ADDED_STEP's anchor"
    edited = replace(article, body=article.body.replace(marker, marker + ADDED_STEP))
    with workspace.session_factory().begin() as session:
        changes = upsert_articles(
            session, [edited], instance=DEMO_ARTICLES_INSTANCE, connector_config_id=None
        )
    assert changes.updated == 1, changes


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rd-knowledge-") as tmp:
        workspace = Workspace.open(Path(tmp) / "demo")
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(workspace, "default", settings=settings)
        window.resize(1500, 900)
        window.show()
        window.start_startup_jobs(seed_demo=True)
        wait_until(app, lambda: not window.runner.active_tasks(), "the demo import and analysis")
        window.notifications.clear()

        # 1. The Review page with the knowledge panel.
        with workspace.session_factory()() as session:
            ticket_id = session.scalars(select(Ticket.id).where(Ticket.external_id == TICKET)).one()
        review = window.review_page
        window.open_in_review(ticket_id, "citrix")
        wait_until(
            app,
            lambda: review._review is not None and review._review.ticket.id == ticket_id,
            f"the review of {TICKET}",
        )
        loaded = review._review
        assert loaded is not None
        print(
            f"{TICKET}: runbooks",
            [(m.runbook.title, f"{m.match.confidence:.0%}") for m in loaded.matches[:3]],
        )
        print(
            f"{TICKET}: articles",
            [(a.number, a.title, f"{a.confidence:.0%}", a.section_name) for a in loaded.articles],
        )
        if not loaded.articles or loaded.articles[0].number != ARTICLE:
            raise RuntimeError(f"expected article {ARTICLE} first for {TICKET}")
        review.queue_table.setFocus()
        settle(app, 1.0)
        save(window, "review-knowledge.png")

        # 2. The adopted article on the Runbooks page, after its source changed.
        window.show_page(RUNBOOKS_PAGE)
        runbooks = window.runbooks_page
        wait_until(app, lambda: bool(runbooks.model.rows) and not runbooks.is_loading(), "the runbook list")
        task = runbooks.adopt_article(ARTICLE)
        if task is None:
            raise RuntimeError("adopting did not start")
        wait_until(app, lambda: not window.runner.active_tasks(), "the adoption")
        change_article_at_source(workspace)
        runbooks.reload()
        wait_until(app, lambda: not window.runner.active_tasks(), "the runbook list and source changes")
        row = runbooks.current_row()
        if row is None or row.id not in runbooks.source_changes:
            raise RuntimeError(f"the adopted runbook is not selected with a source change: {row}")
        print(f"adopted as runbook {row.id}: {row.title} ({row.status})")
        runbooks.table.setFocus()
        settle(app, 1.0)
        save(window, "adopted-article.png")
        window.close()
        workspace.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
