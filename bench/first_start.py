"""Where a first start of the demo spends its time, phase by phase (issue 16, item 3).

Run: ``.venv/bin/python bench/first_start.py [--torch]``. About 10 s (more with ``--torch``).

Each phase runs in this fresh process exactly as the window's first-start job runs it
(``desktop.background.jobs``): seed the demo into a new workspace, open the engine, load the model (its
first encode), index every runbook section and ticket, analyse. The window showed "loading the matching model"
for ~15 s on a first start; this bench showed the model loads in well under a second (ONNX) and the time
goes to indexing the demo's tickets, a phase whose message the progress throttle dropped. ``--torch`` times
the sentence-transformers backend instead (the app's fallback when no ONNX export exists).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def timed(label: str, step: Callable[[], T]) -> T:
    started = time.perf_counter()
    result = step()
    print(f"{label:<42} {time.perf_counter() - started:6.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch", action="store_true", help="time the sentence-transformers backend")
    args = parser.parse_args()
    if args.torch:
        os.environ["RUNBOOK_DESK_EMBEDDER"] = "sentence-transformers"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    def imports() -> None:
        import core.importing.demo
        import core.matching.analysis
        import core.matching.embedding_onnx
        import core.store.workspace  # noqa: F401

    timed("imports (store, importers, engine)", imports)
    from core.importing.demo import seed_demo
    from core.matching.analysis import analyze_pending
    from core.matching.embedding_onnx import default_embedder
    from core.matching.engine import open_engine
    from core.store.models import Ticket
    from core.store.workspace import DEFAULT_TENANT, Workspace

    with tempfile.TemporaryDirectory() as folder, Workspace.open(folder) as workspace:
        timed("seed the demo workspace", lambda: seed_demo(workspace))
        embedder = default_embedder()
        engine = timed("open the engine", lambda: open_engine(workspace, DEFAULT_TENANT, embedder))
        timed(f"load the model ({type(embedder).__name__})", lambda: embedder.encode(["warm up"]))
        sessions = workspace.session_factory(DEFAULT_TENANT)
        with sessions() as session:
            tickets = session.query(Ticket).count()
        timed(f"index sections + {tickets:,} tickets", engine.refresh)
        timed("analyse every ticket", lambda: analyze_pending(engine, sessions))


if __name__ == "__main__":
    main()
