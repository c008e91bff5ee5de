"""Analysis throughput and search latency.

Run: ``.venv/bin/python bench/speed.py [--tickets 5000] [--queries 200] [--big]``. About 7-8 minutes on the
2-core VM without ``--big``; ``--big`` adds the 1M-vector index (HNSW build ~3.5 minutes, peak RSS ~5.7 GB).

1. Throughput, on ``--tickets`` tickets generated from the demo tickets (sampled and perturbed with a fixed
   seed: typos, dropped sentences, swapped hosts and a unique reference line, so every prepared text is
   different and the embedding cache cannot merge any) and the demo runbooks:

   a. ``SentenceTransformerEmbedder.encode`` of the tickets' prepared texts
   (``core.matching.engine.ticket_text``,
      what analysis embeds), one call, model already loaded;
   b. ``analyze_pending`` on a fresh workspace: the runbooks are imported and refreshed first, then the
      tickets are imported, so the embedding cache holds the runbook sections but no ticket; includes
      embedding, ticket index, hybrid search, calibration and writing analyses and links;
   c. ``analyze_pending`` again: nothing is pending, the speed-up against (b) is the point.

2. Latency of one query against synthetic section indexes of 10k, 100k (and 1M with ``--big``) vectors:
   clustered random unit vectors added with ``VectorIndex.add`` (so exact search up to ``HNSW_THRESHOLD``,
   HNSW above it, as the app would choose), installed as the engine's runbook-section index, each vector
   owned by one of the demo runbooks. The lexical side is the demo runbooks' FTS5 table (47 runbooks), so
   these figures are dominated by the dense side's size. Three timings per query, p50/p95:

   * dense: ``VectorIndex.search`` alone (k = 3 * CANDIDATES, what the engine asks for);
   * search_many: ``MatchingEngine.search_many([text], vector, k=5)`` with a precomputed vector: dense
     search + lexical FTS5 + RRF fusion + runbook rows + shared terms + calibration;
   * search: ``MatchingEngine.search(text, k=5)`` for a text never seen before: the same plus the embedding
     cache miss, the model encode and the cache write.

Peak RSS is the process's maximum resident set (``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import resource
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import faiss
import numpy as np
from sqlalchemy import select

import core.matching.engine as matching
from core.importing import import_runbooks, import_tickets
from core.matching.analysis import BATCH_SIZE, analyze_pending
from core.matching.embedding import SentenceTransformerEmbedder
from core.matching.engine import MatchingEngine, load_default_calibrator, ticket_text
from core.matching.text import prepare_ticket_text
from core.matching.vector_index import VectorIndex
from core.resources import default_calibration_path, resources_dir
from core.store.models import Runbook, Ticket
from core.store.workspace import Workspace

DEMO = resources_dir() / "demo"
SEED = 5000
SIZES = (10_000, 100_000)
BIG = 1_000_000
CLUSTERS = 2_000
CLUSTER_NOISE = 0.6  # noise norm relative to the (unit) centre, before renormalising

T = TypeVar("T")
HOSTS = re.compile(r"\b([A-Za-z]+-[A-Za-z0-9]+-)(\d{1,3})\b")
FIRST_NAMES = ("Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Gosia", "Hugo", "Ines", "Jonas", "Kiri", "Lena")
PLACES = ("3rd floor", "Leeds office", "home office", "warehouse", "Berlin site", "meeting room 4", "lab B")


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def typo(word: str, rng: random.Random) -> str:
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def perturb(text: str, rng: random.Random, drop_sentences: bool) -> str:
    """Typos in a few words, hosts renumbered and, for descriptions, a sentence dropped now and then."""
    words = text.split(" ")
    for _ in range(rng.randint(0, 2)):
        if words:
            i = rng.randrange(len(words))
            words[i] = typo(words[i], rng)
    text = " ".join(words)
    text = HOSTS.sub(lambda m: f"{m.group(1)}{rng.randint(1, 99):02d}", text)
    if drop_sentences:
        sentences = re.split(r"(?<=[.!?])\s+", text)
        if len(sentences) > 2 and rng.random() < 0.5:
            del sentences[rng.randrange(len(sentences))]
        text = " ".join(sentences)
    return text


def generate_tickets(path: Path, count: int, seed: int = SEED, prefix: str = "SPD") -> None:
    """A ServiceNow export of ``count`` tickets derived from the demo's; ids ``{prefix}0000001``..."""
    with (DEMO / "tickets.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        base = list(reader)
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        for n in range(1, count + 1):
            row = dict(rng.choice(base))
            row["number"] = f"{prefix}{n:07d}"
            row["short_description"] = perturb(row["short_description"], rng, drop_sentences=False)
            reference = (
                f"Reported by {rng.choice(FIRST_NAMES)} ({rng.choice(PLACES)}), "
                f"asset WS-{rng.randint(1000, 9999)}-{n}."
            )
            row["description"] = reference + "\n" + perturb(row["description"], rng, drop_sentences=True)
            writer.writerow(row)


class Stopwatch:
    """Adds up the time spent in a wrapped callable, to split a run's wall time into its parts."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, func: Callable[..., T]) -> Callable[..., T]:
        def wrapper(*args: object, **kwargs: object) -> T:
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        return wrapper


def percentiles(samples_s: Sequence[float]) -> str:
    ms = np.asarray(samples_s) * 1000
    return f"p50={np.percentile(ms, 50):7.2f} ms p95={np.percentile(ms, 95):7.2f} ms"


def timed(func: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = func()
    return time.perf_counter() - started, result


def clustered_unit_vectors(count: int, dimension: int, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors around ``CLUSTERS`` random centres: closer to real embeddings than uniform noise."""
    centres = rng.standard_normal((CLUSTERS, dimension)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((count, dimension), dtype=np.float32)
    for start in range(0, count, 100_000):
        stop = min(start + 100_000, count)
        noise = rng.standard_normal((stop - start, dimension)).astype(np.float32)
        noise *= CLUSTER_NOISE / np.sqrt(dimension)
        block = centres[rng.integers(0, CLUSTERS, stop - start)] + noise
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def throughput(root: Path, embedder: SentenceTransformerEmbedder, count: int) -> str:
    workspace = Workspace.open(root / "throughput")
    sessions = workspace.session_factory("default")
    tickets_csv = root / "speed-tickets.csv"
    generate_tickets(tickets_csv, count)
    import_runbooks(sessions, DEMO / "runbooks", actor="bench")
    engine = MatchingEngine(
        sessions,
        embedder,
        workspace.root / "indexes" / "default",
        calibrator=load_default_calibrator(default_calibration_path()),
    )
    engine.refresh()  # runbook sections only: no ticket is in the store yet
    summary = import_tickets(sessions, tickets_csv, actor="bench")
    with sessions() as session:
        texts = [ticket_text(t) for t in session.scalars(select(Ticket).order_by(Ticket.id))]
    print(
        f"{summary.inserted} tickets imported ({len(set(texts))} distinct prepared texts), "
        f"{len(engine.runbook_index)} runbook sections; calibration: "
        f"{'resources/calibration.json' if engine.calibrator else 'none'}"
    )

    raw_s, _ = timed(lambda: embedder.encode(texts))
    print(
        f"(a) model.encode of {len(texts)} prepared texts:  {raw_s:7.1f} s  "
        f"({len(texts) / raw_s:6.0f} texts/s)"
    )
    sections_embedded = engine.embedder.embedded_count
    model_clock, cache_clock, search_clock = Stopwatch(), Stopwatch(), Stopwatch()
    # Instance attributes shadow the methods for this run only; analyze_pending calls them as usual.
    embedder.encode = model_clock.wrap(embedder.encode)  # type: ignore[method-assign]
    engine.embedder.encode = cache_clock.wrap(engine.embedder.encode)  # type: ignore[method-assign]
    engine.search_many = search_clock.wrap(engine.search_many)  # type: ignore[method-assign]
    first_s, first = timed(lambda: analyze_pending(engine, sessions))
    del embedder.encode, engine.embedder.encode, engine.search_many
    embedded = engine.embedder.embedded_count - sections_embedded
    print(
        f"(b) analyze_pending, fresh:                {first_s:7.1f} s  "
        f"({first.analysed / first_s:6.0f} tickets/s; "
        f"{embedded} texts embedded, linked/flagged/drafts {first.linked}/{first.flagged}/{first.drafts})"
    )
    print(f"    ratio b/a = {first_s / raw_s:.2f}  (target <= 1.15)")
    rest_s = first_s - cache_clock.seconds - search_clock.seconds
    per_ticket_ms = search_clock.seconds / len(texts) * 1000
    print(
        f"    where (b) went: model encode {model_clock.seconds:.1f} s (batches of {BATCH_SIZE}; (a) is one "
        f"call), embedding cache lookup/write {cache_clock.seconds - model_clock.seconds:.1f} s,\n"
        f"    search_many {search_clock.seconds:.1f} s ({per_ticket_ms:.1f} ms/ticket), "
        f"the rest {rest_s:.1f} s (reading tickets, ticket index, recording analyses and links, commits)"
    )
    second_s, second = timed(lambda: analyze_pending(engine, sessions))
    print(
        f"(c) analyze_pending, nothing pending:      {second_s:7.3f} s  (analysed {second.analysed}, "
        f"skipped {second.skipped_current})"
    )
    print(f"    speed-up b/c = {first_s / second_s:.0f}x  (target >= 20x)")
    print(f"    RSS now {rss_mb():.0f} MB, peak so far {peak_rss_mb():.0f} MB")

    workspace.close()
    return (
        f"throughput n={len(texts)} encode={raw_s:.1f}s analyze={first_s:.1f}s ratio={first_s / raw_s:.2f} "
        f"rerun={second_s:.3f}s speedup={first_s / second_s:.0f}x"
    )


def latency(
    root: Path, embedder: SentenceTransformerEmbedder, sizes: Sequence[int], queries: int
) -> list[str]:
    workspace = Workspace.open(root / "latency")
    sessions = workspace.session_factory("default")
    import_runbooks(sessions, DEMO / "runbooks", actor="bench")
    engine = MatchingEngine(
        sessions,
        embedder,
        workspace.root / "indexes" / "default",
        calibrator=load_default_calibrator(default_calibration_path()),
    )
    engine.refresh()
    with sessions() as session:
        runbook_ids = list(session.scalars(select(Runbook.id).order_by(Runbook.id)))
    query_csv = root / "latency-queries.csv"
    generate_tickets(query_csv, queries * (len(sizes) + 1), seed=SEED + 1, prefix="LAT")
    with query_csv.open(encoding="utf-8", newline="") as handle:
        query_texts = [
            prepare_ticket_text(row["short_description"], row["description"], row["category"], row["cmdb_ci"])
            for row in csv.DictReader(handle)
        ]
    warm, query_texts = query_texts[:queries], query_texts[queries:]
    vectors = embedder.encode(warm)
    rng = np.random.default_rng(SEED)
    summary = []
    print(
        f"faiss threads {faiss.omp_get_max_threads()}; {queries} queries per size; k=5; lexical side: "
        f"{len(runbook_ids)} demo runbooks in FTS5"
    )
    depth = matching.CANDIDATES * 3
    for number, size in enumerate(sizes):
        vectors_n = clustered_unit_vectors(size, embedder.dimension, rng)
        index = VectorIndex(embedder.model_id, embedder.dimension)
        clock = time.perf_counter()
        index.add(np.arange(size), vectors_n)
        build_s = time.perf_counter() - clock
        del vectors_n
        engine.runbook_index = index
        engine._section_owner = {i: (runbook_ids[i % len(runbook_ids)], "Synthetic") for i in range(size)}
        dense, many, full = [], [], []
        for i, text in enumerate(warm):
            clock = time.perf_counter()
            index.search(vectors[i : i + 1], depth)
            dense.append(time.perf_counter() - clock)
            clock = time.perf_counter()
            engine.search_many([text], vectors[i : i + 1], 5)
            many.append(time.perf_counter() - clock)
        for text in query_texts[number * queries : (number + 1) * queries]:
            clock = time.perf_counter()
            engine.search(text, 5)
            full.append(time.perf_counter() - clock)
        print(
            f"{size:>9,} vectors ({index.kind.value}, built in {build_s:6.1f} s, RSS {rss_mb():6.0f} MB):\n"
            f"    dense only   {percentiles(dense)}\n"
            f"    search_many  {percentiles(many)}   (dense + lexical + fusion, vector given)\n"
            f"    search       {percentiles(full)}   (the same + embedding a new text)"
        )
        summary.append(
            f"latency size={size} {index.kind.value} search_many {percentiles(many)} "
            f"search {percentiles(full)}"
        )
        engine.runbook_index = VectorIndex(embedder.model_id, embedder.dimension)
        engine._section_owner = {}
        del index
    workspace.close()
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--big", action="store_true", help=f"also a {BIG:,}-vector index (~4 min, ~6 GB)")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    embedder = SentenceTransformerEmbedder()
    load_s, _ = timed(embedder.load)
    embedder.encode(["warm up the model"] * 8)
    print(f"model loaded in {load_s:.1f} s (not counted below)")
    final: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rd-speed-") as temp:
        if not args.skip_throughput:
            print("\n== Throughput")
            final.append(throughput(Path(temp), embedder, args.tickets))
        print("\n== Latency of one query")
        final += latency(Path(temp), embedder, SIZES + ((BIG,) if args.big else ()), args.queries)
    print(f"\nwall {time.perf_counter() - started:.0f} s")
    print("\n".join(final))
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
