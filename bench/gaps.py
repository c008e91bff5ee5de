"""Gap analysis time and peak memory on 10k and 100k synthetic tickets (generated vectors, real store).

Run: ``.venv/bin/python bench/gaps.py [--sizes 10000 100000] [--uncovered 0.4]``. Each size runs in its own
child process, so one size's memory does not count for the next.

Per size, a temporary workspace gets N tickets (bulk insert, FTS triggers included) spread over 180 days,
each with an analysis; ``--uncovered`` of them are uncovered (best confidence below 0.50, no link). Tickets
belong to 60 generated topics (their titles use topic words, so labels have something to find) plus 15 %
scattered noise. Vectors are 384-d unit vectors, a topic centre plus noise, generated from the ticket id
when ``analyse_gaps`` asks for them (so the bench holds no more vectors than the analysis does).

Printed: wall time of ``analyse_gaps`` (reading, vectors, clustering, describing), the process's RSS before
it and its peak during it (``VmHWM`` after resetting it through ``/proc/self/clear_refs``), how many
clusters and noise, and the adjusted Rand index of the clusters against the generated topics.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

DIMENSION = 384
TOPICS = 60
NOISE_SHARE = 0.15
DAYS = 180
MODEL_ID = "bench/generated-384"
SEVERITIES = ("critical", "high", "medium", "medium", "low", "low", "low", "planning")


def topic_of(ticket_numbers: np.ndarray) -> np.ndarray:
    """Topic per ticket (-1: noise), fixed by the ticket number."""
    rng = np.random.default_rng(ticket_numbers * 7919 + 17)
    return np.where(rng.random(len(ticket_numbers)) < NOISE_SHARE, -1, ticket_numbers % TOPICS)


def topic_centres() -> np.ndarray:
    return np.random.default_rng(42).normal(size=(TOPICS, DIMENSION))


def vectors_for(ids: list[int], centres: np.ndarray) -> np.ndarray:
    numbers = np.asarray(ids, dtype=np.int64)
    topics = topic_of(numbers)
    out = np.empty((len(ids), DIMENSION), dtype=np.float32)
    for row, (number, topic) in enumerate(zip(numbers.tolist(), topics.tolist(), strict=True)):
        noise = np.random.default_rng(number).normal(size=DIMENSION)
        out[row] = noise if topic < 0 else centres[topic] + 0.9 * noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def populate(root: Path, count: int, uncovered_share: float) -> None:
    from sqlalchemy import insert

    from core.store.models import Analysis, AnalysisDecision, Ticket
    from core.store.workspace import Workspace

    rng = np.random.default_rng(7)
    words = [[f"w{t}x{k}" for k in range(6)] for t in range(TOPICS)]
    start = datetime(2026, 5, 1, tzinfo=UTC)
    with Workspace.open(root) as workspace:
        tenant_id = workspace.tenant("default").id
        numbers = np.arange(1, count + 1)
        topics = topic_of(numbers)
        for begin in range(0, count, 5000):
            ticket_rows, analysis_rows = [], []
            for number in range(begin + 1, min(begin + 5000, count) + 1):
                topic = int(topics[number - 1])
                vocabulary = words[topic] if topic >= 0 else [f"n{number}a", f"n{number}b", "misc"]
                created = start + timedelta(minutes=int(rng.integers(0, DAYS * 24 * 60)))
                resolved = (
                    created + timedelta(hours=float(rng.gamma(2.0, 12.0))) if rng.random() < 0.6 else None
                )
                picked = rng.choice(vocabulary, size=3, replace=False)
                ticket_rows.append(
                    {
                        "id": number,
                        "tenant_id": tenant_id,
                        "external_id": f"INC{number:08d}",
                        "source_system": "bench",
                        "title": " ".join(picked),
                        "description": f"{' '.join(rng.choice(vocabulary, size=4))} please help",
                        "severity": SEVERITIES[int(rng.integers(0, len(SEVERITIES)))],
                        "kind": "incident",
                        "resolution_notes": f"fixed {picked[0]} by restarting {picked[1]}"
                        if resolved
                        else None,
                        "resolved_at": resolved,
                        "created_at": created,
                        "updated_at": resolved or created,
                        "content_hash": f"h{number}",
                        "raw_payload": {},
                    }
                )
                confidence = float(
                    rng.uniform(0.0, 0.49) if rng.random() < uncovered_share else rng.uniform(0.5, 1)
                )
                analysis_rows.append(
                    {
                        "tenant_id": tenant_id,
                        "ticket_id": number,
                        "decision": AnalysisDecision.GENERATE_RUNBOOK
                        if confidence < 0.5
                        else AnalysisDecision.FLAG_REVIEW,
                        "confidence": confidence,
                        "model_id": MODEL_ID,
                        "threshold_existing": 0.7,
                        "threshold_partial": 0.5,
                        "ticket_content_hash": f"h{number}",
                    }
                )
            with workspace.engine.begin() as connection:
                connection.execute(insert(Ticket), ticket_rows)
                connection.execute(insert(Analysis), analysis_rows)


def run_one(count: int, uncovered_share: float) -> dict[str, object]:
    from sklearn.metrics import adjusted_rand_score

    from core.analytics.gaps import analyse_gaps
    from core.store.workspace import Workspace

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "workspace"
        started = time.perf_counter()
        populate(root, count, uncovered_share)
        populate_s = time.perf_counter() - started
        centres = topic_centres()
        with Workspace.open(root) as workspace:
            sessions = workspace.session_factory()
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM: the peak below is the analysis's
            before = rss_kib("VmRSS")
            started = time.perf_counter()
            report = analyse_gaps(sessions, lambda ids: vectors_for(list(ids), centres), MODEL_ID)
            elapsed = time.perf_counter() - started
            peak = rss_kib("VmHWM")
    labels = {i: c.rank for c in report.clusters for i in c.member_ticket_ids}
    uncovered_ids = sorted(labels)  # clustered ones; noise below
    topics = topic_of(np.asarray(uncovered_ids, dtype=np.int64)) if uncovered_ids else np.zeros(0)
    ari = adjusted_rand_score(
        [t if t >= 0 else -i - 1 for i, t in zip(uncovered_ids, topics.tolist(), strict=True)],
        [labels[i] for i in uncovered_ids],
    )
    return {
        "tickets": count,
        "uncovered": report.uncovered,
        "populate_s": round(populate_s, 1),
        "analysis_s": round(elapsed, 2),
        "rss_before_mib": round(before / 1024),
        "peak_rss_mib": round(peak / 1024),
        "vectors_mib": round(report.uncovered * DIMENSION * 4 / 2**20),
        "clusters": len(report.clusters),
        "noise": report.noise,
        "ari_clustered_vs_topics": round(float(ari), 3),
        "method": report.method,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--uncovered", type=float, default=0.4, help="share of tickets that are uncovered")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.uncovered)))
        return
    print(
        f"{'tickets':>8} {'uncovered':>9} {'analysis':>9} {'RSS before':>10} {'peak RSS':>9} "
        f"{'vectors':>8} {'clusters':>8} {'noise':>7} {'ARI':>6}"
    )
    for size in args.sizes:
        output = subprocess.run(
            [sys.executable, __file__, "--child", str(size), "--uncovered", str(args.uncovered)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result = json.loads(output.strip().splitlines()[-1])
        print(
            f"{result['tickets']:>8,} {result['uncovered']:>9,} {result['analysis_s']:>8.1f}s "
            f"{result['rss_before_mib']:>7} MiB {result['peak_rss_mib']:>5} MiB "
            f"{result['vectors_mib']:>4} MiB "
            f"{result['clusters']:>8} {result['noise']:>7,} {result['ari_clustered_vs_topics']:>6.3f}"
            f"   (store filled in {result['populate_s']} s; {result['method']})"
        )


if __name__ == "__main__":
    main()
