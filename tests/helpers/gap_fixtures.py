"""Gaps planted in a workspace for the generation queue's tests: their own tickets, not the demo's.

* ``SCANNER``: eight tickets about handheld barcode scanners that beep but type nothing, all fixed the same
  way (the same note, worded a little differently) - one coherent procedure, so its draft is generated
  automatically;
* ``TABLET``: seven tickets about warehouse tablets that stopped syncing their picking lists; five were fixed
  the same way, two other ways - a likely procedure the analyst is asked to approve.

Both are imported as a ServiceNow CSV, indexed and analysed like any ticket, in the demo's date range (the
analysed demo has no runbook for either, so they stay uncovered).
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from core.importing import import_tickets
from core.matching.analysis import analyze_pending
from core.matching.embedding import Embedder
from core.matching.engine import MatchingEngine, open_engine
from core.store.workspace import Workspace

HEADER = (
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
)

SCANNER_FIX = (
    "Scanned the USB HID keyboard programming barcode from the scanner quick reference guide and "
    "re-paired the scanner with its charging cradle."
)
SCANNER = [
    (
        "Handheld scanner beeps but nothing is typed",
        "The barcode scanner at packing desk {n} beeps when I "
        "scan a parcel label but no digits appear in the shipping screen.",
        SCANNER_FIX,
    ),
    (
        "Barcode scanner reads but does not type",
        "Our handheld barcode scanner beeps on every scan, yet "
        "nothing shows up in the order entry field at desk {n}.",
        SCANNER_FIX,
    ),
    (
        "scanner beeps, no input in the shipping app",
        "barcode scanner at goods-in station {n} beeps but the "
        "scanned number never arrives in the shipping application.",
        SCANNER_FIX.lower(),
    ),
    (
        "Barcode scanner not entering data",
        "Since this morning the handheld barcode scanner on desk {n} beeps "
        "when scanning but types nothing into the label field.",
        SCANNER_FIX,
    ),
    (
        "Scanner beeps but types nothing",
        "Handheld barcode scanner {n} in dispatch beeps on scan but no "
        "barcode digits appear in any application.",
        SCANNER_FIX + " Confirmed with user.",
    ),
    (
        "barcode scanner stopped typing",
        "The barcode scanner at returns desk {n} beeps and flashes green but "
        "the scanned code is not typed into the returns screen.",
        SCANNER_FIX,
    ),
    (
        "Handheld barcode scanner gives no input",
        "Barcode scanner on packing line {n}: beep on every scan, nothing typed in the shipping screen.",
        SCANNER_FIX,
    ),
    (
        "Scanner scans but no text appears",
        "When I scan a parcel barcode with the handheld scanner at desk "
        "{n} it beeps but no text appears in the shipping screen.",
        SCANNER_FIX,
    ),
]

TABLET_FIX = (
    "Cleared the storage of the warehouse picking app on the tablet and re-enrolled the tablet in the "
    "mobile device management console."
)
TABLET_OTHER = "Replaced the tablet battery under warranty and restored the tablet from the spare pool."
TABLET_WIFI = "Reinstalled the warehouse Wi-Fi certificate on the tablet; it had expired overnight."
TABLET = [
    (
        "Warehouse tablet not syncing picking list",
        "The rugged tablet on forklift {n} stopped syncing the "
        "picking list from the warehouse system; pickers see yesterday's orders.",
        TABLET_FIX,
    ),
    (
        "Picking list on tablet out of date",
        "Warehouse tablet {n} shows an old picking list, it does not "
        "sync the new orders from the warehouse system.",
        TABLET_FIX,
    ),
    (
        "tablet picking app stuck on old orders",
        "forklift tablet {n}: picking app stuck on old orders, no "
        "sync with the warehouse system since the night shift.",
        TABLET_FIX,
    ),
    (
        "Warehouse tablet stopped syncing",
        "The picking tablet in aisle {n} no longer syncs its picking list from the warehouse system.",
        TABLET_FIX,
    ),
    (
        "Picking tablet does not sync orders",
        "Rugged warehouse tablet {n} does not sync picking orders, the list is from last week.",
        TABLET_FIX + " User confirmed.",
    ),
    (
        "Tablet picking list not updating",
        "The warehouse tablet on forklift {n} is not updating the picking list from the warehouse system.",
        TABLET_OTHER,
    ),
    (
        "Picking orders missing on warehouse tablet",
        "New picking orders do not reach warehouse tablet {n}, the list stays on the morning's orders.",
        TABLET_WIFI,
    ),
]


def _rows(prefix: str, tickets: list[tuple[str, str, str]], first_day: int) -> list[dict[str, str]]:
    rows = []
    for number, (title, description, note) in enumerate(tickets, start=1):
        day = first_day + 2 * number
        month, day_of_month = (10, day) if day <= 31 else (11, day - 31)
        created = f"2026-{month:02d}-{day_of_month:02d} 09:{number:02d}:00"
        rows.append(
            {
                "number": f"{prefix}{number:04d}",
                "short_description": title,
                "description": description.format(n=number + 2),
                "priority": "3 - Moderate",
                "state": "Closed",
                "assigned_to": "Sam Field",
                "sys_created_on": created,
                "sys_updated_on": created.replace(" 09:", " 15:"),
                "close_notes": note,
                "category": "Hardware",
                "cmdb_ci": "",
            }
        )
    return rows


def write_planted_csv(path: Path) -> Path:
    """The planted tickets as a ServiceNow export."""
    rows = _rows("SCN", SCANNER, 1) + _rows("TAB", TABLET, 4)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER)
        writer.writeheader()
        writer.writerows(rows)
    return path


def plant_gaps(workspace: Workspace, engine: MatchingEngine, folder: Path) -> None:
    """Import, index and analyse the planted tickets into ``workspace``'s default tenant."""
    sessions = workspace.session_factory()
    import_tickets(sessions, write_planted_csv(folder / "planted.csv"), actor="test-setup")
    engine.refresh()
    analyze_pending(engine, sessions)
    engine.save()


def planted_workspace(template: Path, root: Path, embedder: Embedder) -> Path:
    """A copy of the analysed demo workspace ``template`` at ``root`` with the gaps planted (for a module-
    scoped template that each test copies again)."""
    shutil.copytree(template, root, ignore=shutil.ignore_patterns("*.lock"))
    workspace = Workspace.open(root)
    try:
        plant_gaps(workspace, open_engine(workspace, "default", embedder), root.parent)
    finally:
        workspace.close()
    return root
