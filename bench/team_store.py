"""Team mode's store: 100k tickets imported and analysed on SQLite and on PostgreSQL, same machine, same code.

Run (the PostgreSQL side needs a server; without one only SQLite is measured)::

    # the team-mode test server (`make test-team` starts one; its superuser URL, password in $PGPASSFILE):
    RUNBOOK_DESK_TEST_PG=postgresql://rd_super@127.0.0.1:PORT/postgres PGPASSFILE=... \\
        .venv/bin/python bench/team_store.py [--rows 100000] [--analyse-days 3]
    # or a team database of your own (its schema is migrated; password from the keychain or ~/.pgpass):
    .venv/bin/python bench/team_store.py --database postgresql://login@host:5432/runbook_desk

With ``RUNBOOK_DESK_TEST_PG`` the bench makes a login and a fresh database of its own (the way the tests do:
a CREATEROLE admin that is a member of the owner role, so row-level security is on) and drops the database
afterwards. With ``--database`` it writes into that database: point it at an empty scratch one.

Phases, each timed on both stores with the app's own code:

1. **import**: ``core.importing.import_tickets`` of a generated ServiceNow export (``bench/import_100k.py``'s
   generator: 100k rows by default), rows/s;
2. **re-import**: the same file again (every row unchanged: read, hash, compare), rows/s;
3. **index**: the demo runbooks imported, then the engine's first ``refresh``: every ticket's vector (through
   the store's embedding cache, written here) added to the ticket index, rows/s of tickets;
4. **analyse**: ``core.matching.analysis.analyze_pending`` with the real engine on the tickets of the last
   ``--analyse-days`` of the generated month (3 of 28 days: about 10.7k tickets of 100k; 28 analyses all),
   tickets/s.

The model's time is the same on both stores and would hide the store's, so every text is embedded once, in a
warm-up (import, index and analysis of the same tickets on a throwaway SQLite workspace: about 7 minutes for
100k on a 2-core machine, printed), and both measured runs take the vectors from memory
(:class:`MemoisedEmbedder`, the app's ``default_embedder`` behind it). Everything else in the measured runs
is the app's: the embedding cache in the store, FAISS, the lexical search, calibration, analyses and links.

The last lines give PostgreSQL's rows/s divided by SQLite's for each phase (below 1: PostgreSQL is slower).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import make_url

from core.importing import import_runbooks, import_tickets
from core.matching.analysis import analyze_pending
from core.matching.embedding import Embedder
from core.matching.embedding_onnx import default_embedder
from core.matching.engine import MatchingEngine, open_engine
from core.resources import resources_dir
from core.store.workspace import Workspace

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "bench"))  # bench/import_100k.py's generator
sys.path.insert(0, str(REPO_ROOT))  # tests/helpers/postgres.py: the test server's logins and databases
from import_100k import generate  # noqa: E402

TEST_SERVER_ENV = "RUNBOOK_DESK_TEST_PG"
GENERATED_MONTH = (2026, 9)  # bench/import_100k.py's tickets are updated on days 1-28 of this month


class MemoisedEmbedder(Embedder):
    """The real model, asked once per text in this process: both stores then get identical vectors at no
    model cost, so their analysis times differ only by what the store does."""

    def __init__(self, model: Embedder) -> None:
        self.model = model
        self.vectors: dict[str, np.ndarray] = {}
        self.model_seconds = 0.0

    @property
    def model_id(self) -> str:
        return self.model.model_id

    @property
    def dimension(self) -> int:
        return self.model.dimension

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        missing = sorted({t for t in texts if t not in self.vectors})
        if missing:
            started = time.perf_counter()
            fresh = self.model.encode(missing, batch_size=batch_size)
            self.model_seconds += time.perf_counter() - started
            self.vectors.update(zip(missing, fresh, strict=True))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.vstack([self.vectors[t] for t in texts]).astype(np.float32)


@dataclass
class StoreFigures:
    name: str
    rates: dict[str, float] = field(default_factory=dict)  # phase -> rows/s

    def timed(self, phase: str, rows: int, run: Callable[[], object]) -> object:
        started = time.perf_counter()
        result = run()
        elapsed = time.perf_counter() - started
        self.rates[phase] = rows / elapsed if elapsed > 0 else float("inf")
        print(
            f"  {self.name:<10} {phase:<10} {rows:>7,} rows {elapsed:8.1f} s "
            f"{self.rates[phase]:>9,.0f} rows/s"
        )
        return result


def subset_since(analyse_days: int) -> datetime:
    year, month = GENERATED_MONTH
    return datetime(year, month, 29 - analyse_days, tzinfo=UTC)


def count_updated_since(export: Path, since: datetime) -> int:
    """How many rows of ``export`` were updated at or after ``since`` (what the analyse phase analyses)."""
    with export.open(newline="", encoding="utf-8") as source:
        reader = csv.reader(source)
        updated = next(reader).index("sys_updated_on")
        return sum(datetime.fromisoformat(row[updated]).replace(tzinfo=UTC) >= since for row in reader)


def index(workspace: Workspace, embedder: Embedder) -> MatchingEngine:
    """The demo runbooks imported, then the engine's first refresh: every section and every ticket of the
    store embedded (through the store's embedding cache) and added to the FAISS indexes."""
    import_runbooks(workspace.session_factory(), resources_dir() / "demo" / "runbooks", actor="bench")
    engine = open_engine(workspace, "default", embedder)
    engine.refresh()
    return engine


def analyse(workspace: Workspace, engine: MatchingEngine, since: datetime) -> int:
    """The tickets updated since ``since`` analysed: matched, calibrated, analyses and links written."""
    return analyze_pending(engine, workspace.session_factory(), since=since).analysed


def measure(
    name: str,
    workspace: Workspace,
    export: Path,
    rows: int,
    embedder: Embedder,
    since: datetime,
    subset_rows: int,
) -> StoreFigures:
    figures = StoreFigures(name)
    sessions = workspace.session_factory()
    figures.timed("import", rows, lambda: import_tickets(sessions, export, actor="bench"))
    figures.timed("re-import", rows, lambda: import_tickets(sessions, export, actor="bench"))
    engine = figures.timed("index", rows, lambda: index(workspace, embedder))
    assert isinstance(engine, MatchingEngine)
    analysed = figures.timed("analyse", subset_rows, lambda: analyse(workspace, engine, since))
    if analysed != subset_rows:
        print(f"  note: {name} analysed {analysed} tickets, expected {subset_rows}")
    return figures


@contextmanager
def test_server_database(superuser_url: str, tmp: Path) -> Iterator[str]:
    """A fresh, migrated database and an admin login of this run on the team-mode test server."""
    from tests.helpers.postgres import PgServer

    server = PgServer(
        superuser_url, admin_login=f"rd_bench_{os.getpid()}", template=f"rd_bench_t_{os.getpid()}"
    )
    parsed = make_url(superuser_url)
    earlier = Path(os.environ["PGPASSFILE"]).read_text() if os.environ.get("PGPASSFILE") else ""
    pgpass = tmp / "pgpass"
    admin_line = f"{parsed.host}:{parsed.port or 5432}:*:{server.admin_login}:{server.admin_password}"
    pgpass.write_text(f"{earlier.rstrip()}\n{admin_line}\n")
    pgpass.chmod(0o600)
    os.environ["PGPASSFILE"] = str(pgpass)  # libpq reads it; the password is in no URL or argument
    server.set_up()
    database = server.new_database()
    try:
        yield server.url(database)
    finally:
        server.drop_database(database)
        server.drop_database(server.template)
        with server.superuser() as conn:
            conn.execute(f"DROP ROLE IF EXISTS {server.admin_login}")


@contextmanager
def given_or_test_database(url: str | None, server_url: str | None, tmp: Path) -> Iterator[str]:
    if url is not None:
        yield url
        return
    with test_server_database(server_url or "", tmp) as test_url:
        yield test_url


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--analyse-days", type=int, default=3, choices=range(1, 29), metavar="1-28")
    parser.add_argument(
        "--database", help="a PostgreSQL URL (no password in it); default: $" + TEST_SERVER_ENV
    )
    args = parser.parse_args()
    since = subset_since(args.analyse_days)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        export = tmp / "incidents.csv"
        generate(export, args.rows)
        subset_rows = count_updated_since(export, since)
        print(
            f"generated {args.rows:,} tickets; analysing the {subset_rows:,} updated since {since:%Y-%m-%d}"
        )

        embedder = MemoisedEmbedder(default_embedder())
        with Workspace.open(tmp / "warm-up") as warm_up:
            import_tickets(warm_up.session_factory(), export, actor="bench")
            started = time.perf_counter()
            analyse(warm_up, index(warm_up, embedder), since)
            elapsed = time.perf_counter() - started
        print(
            f"warm-up (first index + analysis, SQLite, the model embedding every text): {elapsed:.1f} s, "
            f"{embedder.model_seconds:.1f} s of it the model"
        )

        results: list[StoreFigures] = []
        with Workspace.open(tmp / "sqlite") as workspace:
            results.append(measure("sqlite", workspace, export, args.rows, embedder, since, subset_rows))

        url = args.database
        server_url = os.environ.get(TEST_SERVER_ENV)
        if url is None and server_url is None:
            print(f"no PostgreSQL: pass --database URL or set ${TEST_SERVER_ENV}")
            return
        with (
            given_or_test_database(url, server_url, tmp) as pg_url,
            Workspace.open(tmp / "postgresql", database_url=pg_url) as workspace,
        ):
            results.append(measure("postgresql", workspace, export, args.rows, embedder, since, subset_rows))

    sqlite_figures, pg_figures = results
    print("PostgreSQL / SQLite (rows/s):")
    for phase, sqlite_rate in sqlite_figures.rates.items():
        print(f"  {phase:<10} {pg_figures.rates[phase] / sqlite_rate:.2f}")


if __name__ == "__main__":
    main()
