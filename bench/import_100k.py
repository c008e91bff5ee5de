"""Bulk import benchmark: a generated 100k-row ServiceNow export, imported twice.

Run: ``.venv/bin/python bench/import_100k.py [--rows N]`` (or ``make bench``). Prints rows/s for the first
import and for the all-unchanged re-import, and resident memory at several points of the import: flat
memory means the figure at 100% is close to the one at 10%.
"""

from __future__ import annotations

import argparse
import csv
import random
import resource
import tempfile
import time
from pathlib import Path

from core.importing import import_tickets
from core.store.workspace import Workspace

HEADER = [
    "number",
    "short_description",
    "description",
    "priority",
    "state",
    "assigned_to",
    "sys_created_on",
    "sys_updated_on",
    "close_notes",
    "category",
    "cmdb_ci",
]
TOPICS = [
    "VPN drops",
    "Outlook not syncing",
    "disk full on {h}",
    "printer offline",
    "password reset",
    "CPU 100% on {h}",
    "Teams no audio",
    "cannot map drive",
    "MFA prompt loop",
    "pod CrashLoopBackOff",
]


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def generate(path: Path, rows: int) -> None:
    rng = random.Random(7)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(rows):
            host = f"srv-{rng.randint(1, 400):03d}"
            title = rng.choice(TOPICS).format(h=host)
            description = (
                f"{title}\nUser reports the issue since this morning. Error 0x{rng.randint(0, 2**32):08x}."
            )
            day = rng.randint(1, 28)
            writer.writerow(
                [
                    f"INC{i:08d}",
                    title,
                    description,
                    f"{rng.randint(1, 5)} - x",
                    rng.choice(["New", "Resolved"]),
                    "Ana Lima",
                    f"2026-09-{day:02d} 08:00:00",
                    f"2026-09-{day:02d} 12:00:00",
                    "fixed it",
                    "Network",
                    host,
                ]
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "incidents.csv"
        generate(export, args.rows)
        print(f"generated {args.rows} rows, {export.stat().st_size / 1e6:.1f} MB")
        with Workspace.open(Path(tmp) / "ws") as workspace:
            sessions = workspace.session_factory()
            checkpoints: dict[int, float] = {}

            class RssAtCheckpoints:
                """A core.progress.Progress that notes the memory in use at 10, 25, ... % of the file."""

                cancelled = False

                def report(self, done: int, total: int | None = None, message: str = "") -> None:
                    for mark in (10, 25, 50, 75, 100):
                        if mark not in checkpoints and total and done * 100 >= mark * total:
                            checkpoints[mark] = rss_mb()

            print(f"RSS before import: {rss_mb():.0f} MB")
            started = time.perf_counter()
            first = import_tickets(sessions, export, progress=RssAtCheckpoints())
            elapsed = time.perf_counter() - started
            print(f"first import:  {first.headline()}  {args.rows / elapsed:,.0f} rows/s ({elapsed:.1f} s)")
            print(
                "RSS during import: " + ", ".join(f"{m}%: {v:.0f} MB" for m, v in sorted(checkpoints.items()))
            )
            started = time.perf_counter()
            second = import_tickets(sessions, export)
            elapsed = time.perf_counter() - started
            print(f"re-import:     {second.headline()}  {args.rows / elapsed:,.0f} rows/s ({elapsed:.1f} s)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
