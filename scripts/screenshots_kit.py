"""What every ``scripts/screenshots*.py`` does between its own steps: wait for the app, let it paint, save.

Imported by the screenshot scripts as a sibling module (``python scripts/screenshots_x.py`` puts ``scripts/``
first on ``sys.path``); run them under Xvfb, e.g.
``xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots_alerts.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QApplication, QWidget

DOCS = Path(__file__).resolve().parent.parent / "docs"


def wait_until(app: QApplication, condition: Callable[[], bool], what: str, timeout_s: float = 600.0) -> None:
    """Process events until ``condition()`` holds; TimeoutError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        app.processEvents()
        time.sleep(0.01)


def settle(app: QApplication, seconds: float = 0.5) -> None:
    """Process events for ``seconds``: layouts, repaints and queued signals land before a grab."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def save(widget: QWidget, name: str) -> None:
    """Grab ``widget`` into ``docs/<name>``."""
    path = DOCS / name
    if not widget.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    print(f"wrote {path}")
