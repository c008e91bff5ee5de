"""Save a screenshot of the Alerts page on the demo workspace to docs/alerts-page.png.

Run: ``xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots_alerts.py``, about a
minute: the demo (runbooks, tickets and its synthetic Zabbix, Datadog and SolarWinds events,
``resources/demo/monitoring_alerts.json``) is imported into a temporary workspace by the window's own jobs,
as on a first ``make run``; the events go through deduplication and correlation like a monitoring
connector's pages, and the analysis suggests each incident's runbook. The notification a critical incident
with a confident runbook raised stays on the screenshot; the import and analysis summaries are dismissed.
The incident selected is the one with the most alerts, so the alert list shows deduplication at work.
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
from desktop.main_window import ALERTS_PAGE, MainWindow

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rd-alerts-") as tmp:
        workspace = Workspace.open(Path(tmp) / "demo")
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(workspace, "default", settings=settings)
        window.resize(1500, 900)
        window.show()
        window.start_startup_jobs(seed_demo=True)
        wait_until(app, lambda: not window.runner.active_tasks(), "the demo import and analysis")
        for notification in window.notifications.notifications():
            if not notification.text.startswith("Critical "):
                window.notifications.dismiss(notification)

        page = window.alerts_page
        window.show_page(ALERTS_PAGE)
        page.reload()
        wait_until(app, lambda: page.load is not None and not page.is_loading(), "the incidents")
        load = page.load
        assert load is not None
        busiest = max(load.incidents, key=lambda row: (len(row.alerts), row.id))
        page.select_incident(busiest.id)
        page.incident_table.setFocus()
        settle(app, 1.0)
        ratio = load.compression
        print(
            f"{ratio.events} events -> {ratio.alerts} alerts -> {ratio.incidents} incidents "
            f"(compression {ratio.ratio:.2f})"
        )
        for row in load.incidents:
            confidence = f"{row.confidence:.0%}" if row.confidence is not None else "-"
            decision = row.decision.value if row.decision is not None else "-"
            print(
                f"MON-{row.id} {row.severity:8} {row.title[:60]:60} {row.runbook_title} {confidence} "
                f"{decision}"
            )
        print("notifications:", [n.text for n in window.notifications.notifications()])
        save(window, "alerts-page.png")
        window.close()
        workspace.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
