"""Retrieval quality on a real "find the earlier ticket" set (gitbugs-hadoop), through the app's own code.

Run: ``.venv/bin/python bench/retrieval.py [DIR] [--raw-body] [--no-sweep] [--cold] [--store S]``; DIR
defaults to ``../shared/bench/gitbugs-hadoop`` beside the repository. Embedding the corpus's ~9,600
sections is most of the cost (about 7 minutes on the idle 2-core VM); the vectors are kept in ``--cache`` (a
SQLite file under the temp dir, keyed by model id and text hash) and seeded into the fresh workspace's
embedding cache on the next run, which then takes about 3 minutes (mostly the sweeps). ``--cold`` ignores the
cache; scores do not depend on it.

What is measured, and how:

* The corpus issues are imported as runbooks with the app's importer (``import_runbooks`` from a JSON list
  of ``{id, title, body}``), and ``MatchingEngine.refresh()`` splits them into sections and builds the FAISS
  section index exactly as for real runbooks; the lexical side is the store's FTS5 table, filled by its
  triggers. The importer stores the body as given (it does not clean Jira markup), so the bench passes
  ``core.matching.text.jira_wiki_to_text(body)``, which is what a Jira importer is meant to do first (see
  ``prepare_ticket_text``); ``--raw-body`` imports the raw wiki markup instead. The importer rejects an empty
  body, so the 143 issues without a description get their title as body (they stay findable).
* Queries are ``prepare_ticket_text(title, body, markup="jira_wiki")``, embedded once by the engine's cached
  embedder. The query issue itself (``exclude_ids``) is dropped from every ranking; ``meta`` (Resolution,
  Status...) is never read.
* lexical = ``MatchingEngine._lexical_runbooks`` (FTS5 BM25, title weighted); dense =
  ``MatchingEngine._dense_runbooks`` over the engine's section search (a runbook scores its best section);
  hybrid = ``MatchingEngine.search_many`` ordered by ``fused_score`` (the engine's reciprocal rank fusion).
  ``search_many`` itself returns matches re-sorted by calibrated confidence; that "as displayed" order is
  reported separately, with no calibrator and with ``resources/calibration.json``.
* Metrics: MRR (first relevant document, over the top ``CANDIDATES``), R@1 and R@10 (share of a query's
  relevant documents in the top 1 / 10, averaged over queries).
* Fusion choice: a weighted sum ``alpha * dense cosine + (1 - alpha) * BM25 / best BM25 of the query`` over
  the same candidates, for several alpha, against RRF.
* Sweeps (``--no-sweep`` skips): the engine's module constants ``RRF_K``, ``CANDIDATES``, ``TITLE_WEIGHT``
  and ``core.matching.lexical.MAX_QUERY_TERMS``, monkeypatched one at a time; no query-specific tuning.

Team mode (issue 17): ``--store postgresql`` runs the same on a PostgreSQL database (the lexical side is
:mod:`core.matching.pg_search`, which must rank as FTS5 does), ``--store both`` runs SQLite then PostgreSQL
and prints both MRRs, their differences and how many queries got the very same lexical ranking. The
database is ``--database URL`` (an empty one this login may migrate; the password from the keychain or
~/.pgpass), else a throwaway one on ``$RUNBOOK_DESK_TEST_PG`` (the team tests' server,
``scripts/pg-cluster.sh``), dropped after.
The reports and sweeps run on the first store only.

The last three lines are ``lexical|dense|hybrid MRR=... R@1=... R@10=... n=...`` for the engine as shipped (on
the last store run).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import secrets
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
from sqlalchemy import Table, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

import core.matching.engine as matching
import core.matching.lexical
from core.importing import import_runbooks
from core.matching.embedding import Embedder, SentenceTransformerEmbedder
from core.matching.embedding_onnx import OnnxEmbedder, default_onnx_model_dir
from core.matching.engine import MatchingEngine, load_default_calibrator
from core.matching.text import jira_wiki_to_text, prepare_ticket_text
from core.resources import default_calibration_path
from core.store.models import EmbeddingCacheEntry, Runbook
from core.store.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DIR = REPO.parent / "shared" / "bench" / "gitbugs-hadoop"
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "runbook-desk-bench" / "embeddings.sqlite3"
ALPHAS = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9)
LEXICAL_WEIGHTS = (1.0, 1.25, 1.5, 2.0)
SPLIT_SEED = 126
SWEEPS: dict[str, tuple[Any, str, tuple[Any, ...]]] = {
    # name: (module, attribute, values)
    "RRF_K": (matching, "RRF_K", (5, 10, 20, 30, 60, 100)),
    "CANDIDATES": (matching, "CANDIDATES", (20, 50, 100, 200)),
    "TITLE_WEIGHT": (matching, "TITLE_WEIGHT", (1.0, 2.0, 3.0, 5.0)),
    "MAX_QUERY_TERMS": (core.matching.lexical, "MAX_QUERY_TERMS", (16, 32, 64, 128)),
}

Ranking = list[str]  # corpus document ids, best first


@dataclass(frozen=True)
class Query:
    qid: str
    text: str
    relevant: frozenset[str]
    exclude: frozenset[str]


@dataclass(frozen=True)
class Scores:
    mrr: float
    r1: float
    r10: float
    n: int

    def line(self, name: str) -> str:
        return f"{name} MRR={self.mrr:.3f} R@1={self.r1:.3f} R@10={self.r10:.3f} n={self.n}"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def evaluate(queries: Sequence[Query], rankings: Sequence[Ranking]) -> Scores:
    reciprocal, recall1, recall10 = [], [], []
    for query, ranking in zip(queries, rankings, strict=True):
        ranked = [doc for doc in ranking if doc not in query.exclude]
        first = next((rank for rank, doc in enumerate(ranked, start=1) if doc in query.relevant), None)
        reciprocal.append(1 / first if first else 0.0)
        recall1.append(len(query.relevant & set(ranked[:1])) / len(query.relevant))
        recall10.append(len(query.relevant & set(ranked[:10])) / len(query.relevant))
    return Scores(float(np.mean(reciprocal)), float(np.mean(recall1)), float(np.mean(recall10)), len(queries))


def per_query_rr(queries: Sequence[Query], rankings: Sequence[Ranking]) -> np.ndarray:
    out = []
    for query, ranking in zip(queries, rankings, strict=True):
        ranked = [doc for doc in ranking if doc not in query.exclude]
        first = next((rank for rank, doc in enumerate(ranked, start=1) if doc in query.relevant), None)
        out.append(1 / first if first else 0.0)
    return np.asarray(out)


def cross_validated_choice(queries: Sequence[Query], options: dict[Any, list[Ranking]]) -> list[Ranking]:
    """Pick the option with the best MRR on one half of the queries, use it on the other half, and swap."""
    order = list(range(len(queries)))
    random.Random(SPLIT_SEED).shuffle(order)
    halves = (sorted(order[::2]), sorted(order[1::2]))
    picked: dict[int, Ranking] = {}
    for train, test in (halves, halves[::-1]):
        best = max(
            options, key=lambda o: evaluate([queries[i] for i in train], [options[o][i] for i in train]).mrr
        )
        picked.update({i: options[best][i] for i in test})
    return [picked[i] for i in range(len(queries))]


@contextmanager
def patched(module: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, original)


class Bench:
    """One indexed workspace and the queries' vectors; each method returns one ranking per query."""

    def __init__(self, engine: MatchingEngine, sessions: Any, queries: list[Query], doc_of: dict[int, str]):
        self.engine = engine
        self.sessions = sessions
        self.queries = queries
        self.doc_of = doc_of
        self.texts = [q.text for q in queries]
        self.vectors = engine.embedder.encode(self.texts)

    def _docs(self, runbook_ids: Sequence[int]) -> Ranking:
        return [self.doc_of[rid] for rid in runbook_ids]

    def lexical_scores(self) -> list[dict[int, float]]:
        with self.sessions() as session:
            return [MatchingEngine._lexical_runbooks(session, text) for text in self.texts]

    def dense_scores(self) -> list[dict[int, tuple[float, str]]]:
        hits = self.engine.runbook_index.search(self.vectors, matching.CANDIDATES * 3)
        return [self.engine._dense_runbooks(row) for row in hits]

    def lexical(self) -> list[Ranking]:
        return [self._docs(sorted(s, key=lambda r: -s[r])) for s in self.lexical_scores()]

    def dense(self) -> list[Ranking]:
        return [self._docs(sorted(s, key=lambda r: -s[r][0])) for s in self.dense_scores()]

    def hybrid(self, displayed: bool = False) -> list[Ranking]:
        """RRF order (``fused_score``), or the order ``search_many`` returns (by calibrated confidence)."""
        results = self.engine.search_many(self.texts, self.vectors, k=matching.CANDIDATES)
        if displayed:
            return [self._docs([m.runbook_id for m in matches]) for matches in results]
        return [
            self._docs([m.runbook_id for m in sorted(matches, key=lambda m: -m.fused_score)])
            for matches in results
        ]

    def weighted_rrf(self, lexical_weight: float) -> list[Ranking]:
        """The engine's RRF (same k, same candidates) with the lexical side's terms multiplied by a weight.

        Ties are broken by runbook id; at weight 1.0 this can differ from the engine in the third decimal
        because the engine breaks ties by set order.
        """
        out = []
        for dense, lexical in zip(self.dense_scores(), self.lexical_scores(), strict=True):
            dense_rank = {r: i for i, r in enumerate(sorted(dense, key=lambda r: (-dense[r][0], r)), start=1)}
            lexical_rank = {
                r: i for i, r in enumerate(sorted(lexical, key=lambda r: (-lexical[r], r)), start=1)
            }
            fused = {
                r: (1 / (matching.RRF_K + dense_rank[r]) if r in dense_rank else 0.0)
                + (lexical_weight / (matching.RRF_K + lexical_rank[r]) if r in lexical_rank else 0.0)
                for r in dense_rank.keys() | lexical_rank.keys()
            }
            out.append(self._docs(sorted(fused, key=lambda r: (-fused[r], r))))
        return out

    def exact_dense(self) -> list[dict[int, float]]:
        """Every runbook's best-section cosine (a full scan), so a weighted sum never lacks a dense score."""
        total = len(self.engine.runbook_index)
        out = []
        for row in self.engine.runbook_index.search(self.vectors, total):
            best: dict[int, float] = {}
            for section_id, score in row:
                runbook_id = self.engine._section_owner[section_id][0]
                if score > best.get(runbook_id, -2.0):
                    best[runbook_id] = score
            out.append(best)
        return out

    def weighted(self, alphas: Sequence[float]) -> dict[float, list[Ranking]]:
        """alpha * cosine + (1 - alpha) * BM25 / best BM25, over the union of both sides' candidates.

        The query issue is removed before normalising BM25: it is always its own best lexical hit, and
        dividing by it would shrink every other score.
        """
        exact = self.exact_dense()
        dense = self.dense_scores()
        lexical = self.lexical_scores()
        out: dict[float, list[Ranking]] = {alpha: [] for alpha in alphas}
        for query, cosines, dense_top, bm25 in zip(self.queries, exact, dense, lexical, strict=True):
            excluded = {rid for rid in bm25.keys() | dense_top.keys() if self.doc_of[rid] in query.exclude}
            bm25 = {rid: score for rid, score in bm25.items() if rid not in excluded}
            top = max(bm25.values(), default=0.0)
            candidates = (dense_top.keys() | bm25.keys()) - excluded
            for alpha in alphas:
                score = {
                    rid: alpha * cosines.get(rid, 0.0)
                    + (1 - alpha) * (bm25.get(rid, 0.0) / top if top else 0)
                    for rid in candidates
                }
                out[alpha].append(self._docs(sorted(score, key=lambda r: -score[r])))
        return out


def load_cache(cache: Path, sessions: Any) -> int:
    """Seed the workspace's own embedding cache (the table ``CachedEmbedder`` reads) from a previous run.

    Only the model is skipped: sections, indexes, lexical search and fusion run exactly as on a cold start,
    and a vector is reused only for the same model id and the same text hash.
    """
    if not cache.is_file():
        return 0
    with sqlite3.connect(cache) as source:
        rows = source.execute("SELECT model_id, text_hash, vector FROM embeddings").fetchall()
    with sessions.begin() as session:
        tenant = session.tenant_id
        table = cast(Table, EmbeddingCacheEntry.__table__)
        postgres = session.get_bind().dialect.name == "postgresql"
        statement = (
            pg_insert(table).on_conflict_do_nothing() if postgres else insert(table).prefix_with("OR IGNORE")
        )
        for start in range(0, len(rows), 5000):
            session.execute(
                statement,
                [
                    {"tenant_id": tenant, "model_id": model, "text_hash": digest, "vector": blob}
                    for model, digest, blob in rows[start : start + 5000]
                ],
            )
    return len(rows)


def save_cache(cache: Path, sessions: Any) -> None:
    with sessions() as session:
        rows = session.execute(
            select(EmbeddingCacheEntry.model_id, EmbeddingCacheEntry.text_hash, EmbeddingCacheEntry.vector)
        ).all()
    cache.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(cache) as target:
        target.execute(
            "CREATE TABLE IF NOT EXISTS embeddings (model_id TEXT, text_hash TEXT, vector BLOB, "
            "PRIMARY KEY (model_id, text_hash))"
        )
        target.executemany("INSERT OR IGNORE INTO embeddings VALUES (?, ?, ?)", [tuple(r) for r in rows])


def build_workspace(
    root: Path,
    corpus: list[dict[str, Any]],
    raw_body: bool,
    embedder: Embedder,
    database_url: str | None = None,
) -> tuple[Workspace, Any, MatchingEngine, dict[int, str]]:
    runbook_rows = []
    for doc in corpus:
        body = (doc.get("body") or "") if raw_body else jira_wiki_to_text(doc.get("body") or "")
        runbook_rows.append({"id": doc["id"], "title": doc["title"], "body": body.strip() or doc["title"]})
    runbooks_file = root / "corpus-runbooks.json"
    runbooks_file.write_text(json.dumps(runbook_rows), encoding="utf-8")
    workspace = Workspace.open(root / "workspace", database_url=database_url)
    sessions = workspace.session_factory("default")
    summary = import_runbooks(sessions, runbooks_file)
    if summary.inserted != len(corpus):
        raise SystemExit(f"imported {summary.inserted} of {len(corpus)} documents: {summary.as_dict()}")
    engine = MatchingEngine(sessions, embedder, workspace.root / "indexes" / "default")
    with sessions() as session:
        doc_of = dict(session.execute(select(Runbook.id, Runbook.external_ref)).all())
    return workspace, sessions, engine, doc_of


def timed(label: str, func: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = func()
    print(f"  [{label}: {time.perf_counter() - started:.1f} s]", file=sys.stderr, flush=True)
    return result


def report_display_order(bench: Bench) -> None:
    print("\n== Order returned by search_many (sorted by confidence, not by fused score)")
    saved = bench.engine.calibrator
    bench.engine.calibrator = None
    print("  " + evaluate(bench.queries, bench.hybrid(displayed=True)).line("no calibrator (dense cosine)"))
    calibrator = load_default_calibrator(default_calibration_path())
    if calibrator is None:
        print("  (resources/calibration.json not found: run scripts/fit_calibration.py)")
    else:
        bench.engine.calibrator = calibrator
        print("  " + evaluate(bench.queries, bench.hybrid(displayed=True)).line("resources/calibration.json"))
    bench.engine.calibrator = saved


def report_fusion(bench: Bench, rrf: Scores) -> None:
    queries = bench.queries
    print("\n== Fusion: RRF vs weighted sum alpha*cosine + (1-alpha)*bm25/max (same candidates)")
    print("  " + rrf.line(f"RRF k={matching.RRF_K} (engine)"))
    rankings = bench.weighted(ALPHAS)
    weighted = {alpha: evaluate(queries, ranked) for alpha, ranked in rankings.items()}
    for alpha, scores in weighted.items():
        print("  " + scores.line(f"weighted alpha={alpha}"))
    best = max(weighted, key=lambda a: weighted[a].mrr)
    cross_validated_rankings = cross_validated_choice(queries, rankings)
    cross_validated = evaluate(queries, cross_validated_rankings)
    print(
        f"  best alpha on the whole set: {best} MRR={weighted[best].mrr:.3f} (optimistic: tuned on the test)"
    )
    print("  " + cross_validated.line("weighted, alpha chosen by 2-fold CV over queries"))
    print("  RRF with the lexical side weighted, w/(k+rank_lexical) + 1/(k+rank_dense), same candidates:")
    for weight in LEXICAL_WEIGHTS:
        print("  " + evaluate(queries, bench.weighted_rrf(weight)).line(f"RRF lexical weight {weight}"))
    print(
        "  (weight 1.0 differs from the engine only in tie-breaking, by runbook id here, by set order there: "
        "that is the noise floor)"
    )
    reciprocal = per_query_rr(queries, bench.hybrid())
    paired = per_query_rr(queries, cross_validated_rankings) - reciprocal
    standard_error = paired.std(ddof=1) / np.sqrt(len(paired))
    significant = abs(paired.mean()) > 2 * standard_error
    print(
        f"  MRR standard error {reciprocal.std(ddof=1) / np.sqrt(len(reciprocal)):.3f}; "
        f"cross-validated weighted minus RRF = {paired.mean():+.3f} +- {standard_error:.3f} (paired SE), "
        f"{'' if significant else 'not '}significant at 2 SE"
    )
    if significant and paired.mean() > 0:
        verdict = "weighted sum wins"
    elif significant:
        verdict = "RRF wins"
    else:
        verdict = "no significant difference: keep RRF, which has no alpha to tune per model or catalogue"
    print(f"  verdict: {verdict}")


def report_sweeps(bench: Bench) -> None:
    print("\n== Engine constants, one at a time (monkeypatched; hybrid = RRF order)")
    for label, (module, attribute, values) in SWEEPS.items():
        for value in values:
            with patched(module, attribute, value):
                hybrid = evaluate(bench.queries, bench.hybrid())
                lexical = evaluate(bench.queries, bench.lexical())
            mark = " (shipped)" if value == getattr(module, attribute) else ""
            print(
                f"  {label}={value!s:<6} {hybrid.line('hybrid')}  "
                f"| lexical MRR={lexical.mrr:.3f} R@10={lexical.r10:.3f}{mark}"
            )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument(
        "--raw-body", action="store_true", help="import raw Jira wiki markup, not cleaned text"
    )
    parser.add_argument("--no-sweep", action="store_true", help="skip the engine-constant sweeps")
    parser.add_argument(
        "--cache", type=Path, default=DEFAULT_CACHE, help="vectors kept between runs (default: %(default)s)"
    )
    parser.add_argument(
        "--cold", action="store_true", help="neither read nor write --cache: embed everything"
    )
    parser.add_argument(
        "--onnx-model",
        type=Path,
        metavar="DIR",
        help="embed with this exported ONNX model (core.matching.embedding_onnx) instead of "
        "sentence-transformers; "
        "'default' = the app's export. Its vectors share the sentence-transformers model id, so the default "
        "--cache becomes a file per ONNX model: the comparison never reads the other backend's vectors",
    )
    parser.add_argument(
        "--store",
        choices=("sqlite", "postgresql", "both"),
        default="sqlite",
        help="the workspace's store: its SQLite file (default), a PostgreSQL database (team mode), or both "
        "one after the other, with the MRR differences",
    )
    parser.add_argument(
        "--database",
        metavar="URL",
        help="--store postgresql/both: an empty database to use (postgresql://login@host/db, no password); "
        "default: a throwaway one on $RUNBOOK_DESK_TEST_PG",
    )
    args = parser.parse_args(argv)
    embedder: Embedder = SentenceTransformerEmbedder()
    if args.onnx_model is not None:
        model_dir = default_onnx_model_dir() if str(args.onnx_model) == "default" else args.onnx_model
        if model_dir is None:
            raise SystemExit(
                "no exported ONNX model: run `make` or python -m core.matching.embedding_onnx export"
            )
        onnx = OnnxEmbedder(model_dir)
        embedder = onnx
        if args.cache == DEFAULT_CACHE:
            args.cache = DEFAULT_CACHE.with_name(f"embeddings-onnx-{onnx.manifest.onnx_sha256[:12]}.sqlite3")
        print(f"embedder: {onnx.backend}, {onnx.model_id}, {model_dir}", file=sys.stderr)

    corpus = read_jsonl(args.dir / "corpus.jsonl")
    queries = [
        Query(
            q["qid"],
            prepare_ticket_text(q["title"], q.get("body") or "", markup="jira_wiki"),
            frozenset(q["relevant_ids"]),
            frozenset(q.get("exclude_ids", ())),
        )
        for q in read_jsonl(args.dir / "queries.jsonl")
    ]
    started = time.perf_counter()
    stores = ("sqlite", "postgresql") if args.store == "both" else (args.store,)
    shipped: dict[str, dict[str, Scores]] = {}
    lexical: dict[str, list[Ranking]] = {}
    for store in stores:
        print(f"\n######## store: {store}", flush=True)
        with team_database(args.database) if store == "postgresql" else nullcontext(None) as url:
            shipped[store], lexical[store] = run(
                args, corpus, queries, embedder, url, report=store == stores[0]
            )

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nwall {time.perf_counter() - started:.0f} s, peak RSS {peak_mb:.0f} MB")
    if len(stores) == 2:
        print("\n== PostgreSQL minus SQLite (issue 17: |delta MRR| <= 0.01)")
        for name in shipped["sqlite"]:
            lite, team = shipped["sqlite"][name], shipped["postgresql"][name]
            delta = team.mrr - lite.mrr
            print(f"  {name:<8} MRR sqlite={lite.mrr:.4f} postgresql={team.mrr:.4f} delta={delta:+.4f}")
        same = sum(a == b for a, b in zip(lexical["sqlite"], lexical["postgresql"], strict=True))
        print(f"  lexical rankings identical for {same} of {len(queries)} queries")
        for name, scores in shipped["postgresql"].items():
            print(scores.line(f"postgresql {name}"))
    for name, scores in shipped[stores[-1]].items():
        print(scores.line(name))


def team_database(url: str | None) -> AbstractContextManager[str]:
    """``--database URL`` as given, else a throwaway database on the team tests' server."""
    if url is not None:
        return nullcontext(url)
    sys.path.insert(0, str(REPO))  # the test server's helpers live under tests/
    from tests.helpers.postgres import SKIP_REASON, PgServer, server_url

    server_address = server_url()
    if server_address is None:
        raise SystemExit(f"--store postgresql needs --database URL or a test server: {SKIP_REASON}")
    # A login and template of its own: the team tests' `rd_admin` and template may be in use beside it.
    tag = f"{os.getpid()}_{secrets.token_hex(3)}"
    return _throwaway_database(
        PgServer(server_address, admin_login=f"rd_bench_{tag}", template=f"rd_bench_template_{tag}")
    )


@contextmanager
def _throwaway_database(server: Any) -> Iterator[str]:
    import keyring
    from psycopg.errors import DependentObjectsStillExist
    from sqlalchemy import make_url

    from core.store.db import POSTGRES_KEYRING_SERVICE, postgres_keyring_account
    from tests.helpers.memory_keyring import MemoryKeyring

    server.set_up()
    name = server.new_database()
    url = server.url(name)
    keyring.set_keyring(MemoryKeyring())  # the throwaway admin password, never in the real keychain
    keyring.set_password(
        POSTGRES_KEYRING_SERVICE, postgres_keyring_account(make_url(url)), server.admin_password
    )
    try:
        yield url
    finally:
        server.drop_database(name)
        server.drop_database(server.template)
        with server.superuser() as conn, suppress(DependentObjectsStillExist):  # kept: the throwaway server's
            conn.execute(f"DROP ROLE IF EXISTS {server.admin_login}")


def run(
    args: argparse.Namespace,
    corpus: list[dict[str, Any]],
    queries: list[Query],
    embedder: Embedder,
    database_url: str | None,
    *,
    report: bool,
) -> tuple[dict[str, Scores], list[Ranking]]:
    """One store: import, index, measure; the reports and sweeps when ``report``."""
    with tempfile.TemporaryDirectory(prefix="rd-retrieval-") as temp:
        workspace, sessions, engine, doc_of = timed(
            "import", lambda: build_workspace(Path(temp), corpus, args.raw_body, embedder, database_url)
        )
        with workspace:
            seeded = 0 if args.cold else load_cache(args.cache, sessions)
            refresh = timed("refresh (sections + embeddings)", engine.refresh)
            bench = timed("embed queries", lambda: Bench(engine, sessions, queries, doc_of))
            if not args.cold:
                save_cache(args.cache, sessions)
            body_kind = "raw Jira wiki markup" if args.raw_body else "jira_wiki_to_text(body)"
            print(
                f"corpus {len(corpus)} documents as runbooks (body = {body_kind}), "
                f"{refresh.runbook_index['added']} sections; {len(queries)} queries; CANDIDATES="
                f"{matching.CANDIDATES} RRF_K={matching.RRF_K} TITLE_WEIGHT={matching.TITLE_WEIGHT}"
            )
            print(
                f"model embedded {engine.embedder.embedded_count} texts; "
                + (f"{seeded} vectors were seeded from {args.cache}" if seeded else "cold embedding cache")
            )

            lexical = timed("lexical", bench.lexical)
            shipped = {
                "lexical": evaluate(queries, lexical),
                "dense": evaluate(queries, bench.dense()),
                "hybrid": evaluate(queries, bench.hybrid()),
            }
            print("\n== Methods (engine as shipped)")
            for name, scores in shipped.items():
                print("  " + scores.line(f"{name:<8}"))

            if report:
                report_display_order(bench)
                report_fusion(bench, shipped["hybrid"])
                if not args.no_sweep:
                    report_sweeps(bench)
    return shipped, lexical


if __name__ == "__main__":
    main()
