"""Save screenshots of the review screen and the runbook editor on the demo workspace to docs/.

Run: ``xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots.py`` (or ``make
screenshots``), about a minute: the demo is imported and analysed in a temporary workspace first, by the
window's own background jobs, exactly as on a first ``make run``. Under Xvfb the shots are of a real X11
window; with ``QT_QPA_PLATFORM=offscreen`` they still work (Qt renders the widgets itself).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from screenshots_kit import save, settle, wait_until

from core.store.workspace import Workspace
from desktop.main_window import REVIEW_PAGE, MainWindow

DOCS = Path(__file__).resolve().parent.parent / "docs"


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rd-shots-") as tmp:
        workspace = Workspace.open(Path(tmp) / "demo")
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(workspace, "default", settings=settings)
        window.resize(1500, 900)
        window.show()
        window.start_startup_jobs(seed_demo=True)
        wait_until(app, lambda: not window.runner.active_tasks(), "the demo import and analysis")
        window.notifications.clear()

        window.show_page(REVIEW_PAGE)
        page = window.review_page
        page.reload()
        wait_until(app, lambda: page.current_row() is not None, "the review queue")
        row = page.current_row()
        wait_until(
            app,
            lambda: page._review is not None and row is not None and page._review.ticket.id == row.ticket_id,
            "the side-by-side view",
        )
        settle(app)
        save(window, "review.png")

        window.show_page(2)
        runbooks = window.runbooks_page
        wait_until(app, lambda: bool(runbooks.model.rows) and not runbooks.is_loading(), "the runbook list")
        chosen = next((r for r in runbooks.model.rows if "Teams" in r.title), runbooks.model.rows[0])
        editor = runbooks.edit_runbook(chosen)
        if editor is None:
            raise RuntimeError("the runbook editor did not open")
        wait_until(app, editor.isVisible, "the runbook editor")
        editor.resize(1300, 800)
        settle(app, 1.0)  # the preview renders after its debounce
        save(editor, "runbook-editor.png")
        editor.close()
        window.close()
        workspace.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
