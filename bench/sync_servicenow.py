"""Sync benchmark: 20,000 tickets from the local fake ServiceNow into a temporary workspace.

Run: ``.venv/bin/python bench/sync_servicenow.py [--tickets 20000] [--page-size 200] [--repeat 3]``.

Prints three rates, best of ``--repeat`` runs each:

- **fetch only**: the connector's ``fetch()`` against the fake (HTTP through ``httpx.MockTransport``, the fake
  rendering and filtering its pages, the connector normalising records), nothing stored: the ceiling.
- **sync**: :func:`connectors.sync.run_sync` of a fresh workspace: the same pages plus the per-page
  transaction (ticket upserts with the FTS5 triggers, the cursor, the run's counts).
- **re-sync, nothing changed**: the incremental sync right after, which asks only for the lookback overlap.

The ratio fetch/sync is our storage overhead per record. The secret goes to the in-memory keyring of the
tests (no OS keychain is touched).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # the fake ServiceNow and the memory keyring live under tests/

import keyring  # noqa: E402

from connectors.configs import create_config  # noqa: E402
from connectors.registry import connector_class  # noqa: E402
from connectors.sync import run_sync  # noqa: E402
from core.store.workspace import Workspace  # noqa: E402
from tests.connectors.fake_servicenow import FakeServiceNow  # noqa: E402
from tests.helpers.memory_keyring import MemoryKeyring  # noqa: E402


async def fetch_only(fake: FakeServiceNow, page_size: int) -> tuple[int, int, float]:
    settings = fake.settings()
    connector = connector_class("servicenow").create(settings, transport=fake.transport())
    started = time.perf_counter()
    records = pages = 0
    try:
        async for page in connector.fetch(None, page_size=page_size):
            records += len(page.tickets)
            pages += 1
    finally:
        await connector.close()
    return records, pages, time.perf_counter() - started


def sync_once(fake: FakeServiceNow, page_size: int, root: Path) -> tuple[float, float, str, str]:
    with Workspace.open(root) as workspace:
        sessions = workspace.session_factory()
        settings = fake.settings()
        config = create_config(
            sessions,
            connector_type="servicenow",
            name=settings.name,
            base_url=settings.base_url,
            auth_mode=settings.auth_mode,
            options=dict(settings.options) | {"page_size": page_size},
            secrets=dict(settings.secrets),
            actor="bench",
        )
        started = time.perf_counter()
        report = asyncio.run(run_sync(sessions, config.id, transport=fake.transport(), page_size=page_size))
        elapsed = time.perf_counter() - started
        if not report.ok:
            raise SystemExit(f"sync failed: {report.error}")
        started = time.perf_counter()
        again = asyncio.run(run_sync(sessions, config.id, transport=fake.transport(), page_size=page_size))
        again_elapsed = time.perf_counter() - started
        return elapsed, again_elapsed, report.headline(), again.headline()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=20_000)
    parser.add_argument("--page-size", type=int, default=200, help="records per request (connector default)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    keyring.set_keyring(MemoryKeyring())

    fake = FakeServiceNow()
    fake.page_size = max(fake.page_size, args.page_size)
    fake.generate(args.tickets)
    print(f"{args.tickets} tickets, pages of {args.page_size}, best of {args.repeat}")

    fetch_best = float("inf")
    records = pages = 0
    for _ in range(args.repeat):
        records, pages, elapsed = asyncio.run(fetch_only(fake, args.page_size))
        fetch_best = min(fetch_best, elapsed)
    assert records == args.tickets, records

    sync_best = again_best = float("inf")
    headline = again_headline = ""
    with tempfile.TemporaryDirectory(prefix="runbook-desk-sync-bench-") as tmp:
        for attempt in range(args.repeat):
            elapsed, again_elapsed, headline, again_headline = sync_once(
                fake, args.page_size, Path(tmp) / f"ws{attempt}"
            )
            sync_best = min(sync_best, elapsed)
            again_best = min(again_best, again_elapsed)

    fetch_rate = records / fetch_best
    sync_rate = records / sync_best
    print(f"fetch only (no store):   {fetch_best:7.2f} s  {fetch_rate:9.0f} records/s  ({pages} pages)")
    print(f"sync into the store:     {sync_best:7.2f} s  {sync_rate:9.0f} records/s")
    print(f"re-sync, nothing changed:{again_best:7.2f} s")
    print(f"  {headline}")
    print(f"  {again_headline}")
    print(f"overhead of storing: sync takes {fetch_rate / sync_rate:.2f}x the fetch-only time")
    print(f"sync_servicenow tickets={records} fetch_rps={fetch_rate:.0f} sync_rps={sync_rate:.0f}")


if __name__ == "__main__":
    main()
