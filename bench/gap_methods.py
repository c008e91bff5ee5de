"""Which clustering finds the demo's planted gaps: the comparison behind ``core.analytics.gaps``'s choice.

Run: ``.venv/bin/python bench/gap_methods.py [WORKSPACE]``. About 40 s: the demo is imported, embedded and
analysed in a temporary workspace (or an already analysed demo workspace is read, if given), the uncovered
tickets are taken exactly as ``core.analytics.gaps`` takes them, and each method clusters their ticket-index
vectors.

Truth: ``resources/demo/labels.csv``'s ``gap`` column; an uncovered ticket of a covered topic (the matcher
missed it) has no gap, and counts as its own singleton, like every ticket a method calls noise.

Measures:

* **ARI**: adjusted Rand index of the method's clusters (noise as singletons) against the planted gaps.
* **sil**: mean silhouette (cosine) of the clustered tickets: how separated the clusters are, no labels used.
* **one**: planted gaps with a single cluster holding >= 70 % of its uncovered tickets at >= 70 % purity.
* **pure**: planted gaps with >= 70 % of their uncovered tickets in clusters that are >= 70 % that gap
  (a gap split into clean sub-topics still counts; the test suite asserts this one for the chosen method).
* noise: uncovered tickets left in no cluster.
"""

from __future__ import annotations

import csv
import json
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
from sklearn.cluster import HDBSCAN, AgglomerativeClustering
from sklearn.metrics import adjusted_rand_score, silhouette_score

from core.analytics.gaps import GapQuery, _read_population, cluster_vectors
from core.matching.vector_index import VectorIndex
from core.settings import GapSettings, Thresholds, load_settings
from core.store.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "resources" / "demo"
MIN_SIZE = GapSettings().min_cluster_size
SEED = GapSettings().seed


def build_demo(root: Path) -> None:
    from core.importing import import_runbooks, import_tickets
    from core.matching.analysis import analyze_pending
    from core.matching.embedding import SentenceTransformerEmbedder
    from core.matching.engine import open_engine

    with Workspace.open(root) as workspace:
        sessions = workspace.session_factory()
        import_runbooks(sessions, DEMO / "runbooks", actor="bench")
        import_tickets(sessions, DEMO / "tickets.csv", actor="bench")
        engine = open_engine(workspace, "default", SentenceTransformerEmbedder())
        engine.refresh()
        analyze_pending(engine, sessions)
        engine.save()


def load(root: Path) -> tuple[np.ndarray, list[str]]:
    labels = {
        row["number"]: row["gap"] for row in csv.DictReader((DEMO / "labels.csv").open(encoding="utf-8"))
    }
    with Workspace.open(root) as workspace:
        sessions = workspace.session_factory()
        with sessions() as session:
            population = _read_population(session, GapQuery(), load_settings(session, Thresholds).partial)
            from sqlalchemy import select

            from core.store.models import Ticket

            external = dict(session.execute(select(Ticket.id, Ticket.external_id)).all())
        index_file = root / "indexes" / "default" / "tickets.faiss"
        model_id = json.loads(index_file.with_name("tickets.faiss.json").read_text())["model_id"]
        index = VectorIndex.load(index_file, expected_model_id=model_id)
        vectors = index.vectors(population.ids.tolist())
    truth = [labels[external[int(i)]] or f"none-{n}" for n, i in enumerate(population.ids)]
    return vectors, truth


def prune(labels: np.ndarray) -> np.ndarray:
    labels = labels.copy()
    for label, size in Counter(labels[labels >= 0].tolist()).items():
        if size < MIN_SIZE:
            labels[labels == label] = -1
    return labels


def evaluate(name: str, labels: np.ndarray, vectors: np.ndarray, truth: list[str], seconds: float) -> None:
    predicted = [f"c{label}" if label >= 0 else f"noise-{n}" for n, label in enumerate(labels)]
    ari = adjusted_rand_score(truth, predicted)
    clustered = labels >= 0
    sil = (
        silhouette_score(vectors[clustered], labels[clustered], metric="cosine")
        if len(set(labels[clustered].tolist())) > 1
        else float("nan")
    )
    gaps = sorted({t for t in truth if not t.startswith("none-")})
    one = pure = 0
    for gap in gaps:
        members = np.array([t == gap for t in truth])
        counts = Counter(labels[members & clustered].tolist())
        if counts:
            label, overlap = counts.most_common(1)[0]
            one += overlap / members.sum() >= 0.7 and overlap / (labels == label).sum() >= 0.7
        in_pure = sum(n for label, n in counts.items() if n / (labels == label).sum() >= 0.7)
        pure += in_pure / members.sum() >= 0.7
    print(
        f"{name:<44} ARI {ari:5.3f}  sil {sil:5.3f}  one {one}/{len(gaps)}  pure {pure}/{len(gaps)}  "
        f"clusters {len(set(labels[clustered].tolist())):>2}  noise {int((~clustered).sum()):>3}  "
        f"{seconds * 1000:6.0f} ms"
    )


def timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    labels = fn()
    return labels, time.perf_counter() - started


def kmeans_silhouette(vectors: np.ndarray, tau: float) -> np.ndarray:
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for k in range(4, 31):
        kmeans = faiss.Kmeans(
            vectors.shape[1], k, niter=25, seed=SEED, spherical=True, min_points_per_centroid=1
        )
        kmeans.train(vectors)
        _, nearest = kmeans.index.search(vectors, 1)
        score = silhouette_score(vectors, nearest[:, 0], metric="cosine")
        if best is None or score > best[0]:
            best = (score, nearest[:, 0], kmeans.centroids)
    assert best is not None
    _, assignment, centroids = best
    cosine = (vectors * centroids[assignment]).sum(axis=1)
    return prune(np.where(cosine >= tau, assignment, -1))


def main() -> None:
    warnings.filterwarnings("ignore")
    if len(sys.argv) > 1:
        vectors, truth = load(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder) / "workspace"
            build_demo(root)
            vectors, truth = load(root)
    planted = Counter(t for t in truth if not t.startswith("none-"))
    print(
        f"{len(truth)} uncovered tickets, {sum(planted.values())} of them in planted gaps: {dict(planted)}\n"
    )
    for tau in (0.0, 0.55):
        labels, seconds = timed(lambda tau=tau: kmeans_silhouette(vectors, tau))
        evaluate(f"FAISS k-means, k by silhouette, tau {tau}", labels, vectors, truth, seconds)
    for cut in (0.45, 0.5, 0.55, 0.6):
        labels, seconds = timed(
            lambda cut=cut: prune(
                AgglomerativeClustering(
                    n_clusters=None, metric="cosine", linkage="average", distance_threshold=cut
                ).fit_predict(vectors)
            )
        )
        evaluate(f"sklearn agglomerative average, cut {cut}", labels, vectors, truth, seconds)
    for cut in (0.7,):
        labels, seconds = timed(
            lambda cut=cut: prune(
                AgglomerativeClustering(
                    n_clusters=None, metric="cosine", linkage="complete", distance_threshold=cut
                ).fit_predict(vectors)
            )
        )
        evaluate(f"sklearn agglomerative complete, cut {cut}", labels, vectors, truth, seconds)
    for size, samples in ((4, None), (5, None), (5, 3), (8, None)):
        labels, seconds = timed(
            lambda size=size, samples=samples: HDBSCAN(
                min_cluster_size=size, min_samples=samples
            ).fit_predict(vectors)
        )
        evaluate(f"HDBSCAN min_cluster_size {size} min_samples {samples}", labels, vectors, truth, seconds)
    for cut in (0.5, 0.55, 0.6):
        labels, seconds = timed(
            lambda cut=cut: cluster_vectors(vectors, distance_cut=cut, min_cluster_size=MIN_SIZE, seed=SEED)
        )
        evaluate(f"core.analytics.gaps (exact average linkage), cut {cut}", labels, vectors, truth, seconds)
    for micro in (40, 75):
        labels, seconds = timed(
            lambda micro=micro: cluster_vectors(
                vectors, distance_cut=0.55, min_cluster_size=MIN_SIZE, seed=SEED, micro_limit=micro
            )
        )
        evaluate(f"core.analytics.gaps from {micro} k-means micro-clusters", labels, vectors, truth, seconds)


if __name__ == "__main__":
    main()
