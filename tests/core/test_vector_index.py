"""The FAISS index wrapper with real faiss: ids, replacement, HNSW switch, persistence, repair."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import faiss
import numpy as np
import pytest

from core.errors import RunbookDeskError
from core.matching.vector_index import (
    HNSW_THRESHOLD,
    IndexCorruptError,
    IndexKind,
    IndexNotFoundError,
    ModelMismatchError,
    SyncReport,
    VectorIndex,
    manifest_path,
    set_faiss_threads,
)

MODEL_ID = "test-model@1+st"
DIMENSION = 16


def unit_vectors(count: int, seed: int = 0, dimension: int = DIMENSION) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def exact_neighbours(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    order = np.argsort(-(vectors @ query), kind="stable")[:k]
    return [int(ids[position]) for position in order]


@pytest.fixture
def index() -> VectorIndex:
    built = VectorIndex(MODEL_ID, DIMENSION)
    built.add([10, 20, 30, 40], unit_vectors(4))
    return built


def test_add_search_returns_ids_and_cosine_scores(index: VectorIndex) -> None:
    vectors = unit_vectors(4)
    results = index.search(vectors[1], k=2)
    assert len(results) == 1
    (best_id, best_score), _ = results[0]
    assert best_id == 20
    assert best_score == pytest.approx(1.0, abs=1e-5)
    assert len(index) == 4
    assert index.ids() == {10, 20, 30, 40}
    assert 30 in index
    assert index.kind is IndexKind.FLAT


def test_search_batch_and_k_larger_than_index(index: VectorIndex) -> None:
    results = index.search(unit_vectors(3, seed=5), k=10)
    assert [len(row) for row in results] == [4, 4, 4]
    for row in results:
        scores = [score for _, score in row]
        assert scores == sorted(scores, reverse=True)
        assert {key for key, _ in row} == {10, 20, 30, 40}


def test_empty_index_search() -> None:
    empty = VectorIndex(MODEL_ID, DIMENSION)
    assert empty.search(unit_vectors(2), k=5) == [[], []]
    assert len(empty) == 0


def test_add_replaces_existing_ids(index: VectorIndex) -> None:
    replacement = unit_vectors(1, seed=99)
    index.add([20], replacement)
    assert len(index) == 4
    np.testing.assert_allclose(index.vectors([20]), replacement, atol=1e-6)
    assert index.search(replacement, k=1)[0][0][0] == 20


def test_remove(index: VectorIndex) -> None:
    assert index.remove([20, 999]) == 1
    assert index.ids() == {10, 30, 40}
    assert all(key != 20 for key, _ in index.search(unit_vectors(4)[1], k=4)[0])
    assert index.remove([]) == 0


@pytest.mark.parametrize(
    ("ids", "vectors", "message"),
    [
        ([1, 2], unit_vectors(3), "shape"),
        ([1, 1], unit_vectors(2), "duplicates"),
        ([-1], unit_vectors(1), "non-negative"),
        ([1], unit_vectors(1) * 2, "normalised"),
        ([1], unit_vectors(1, dimension=8), "shape"),
        ([1], np.full((1, DIMENSION), np.nan, dtype=np.float32), "NaN"),
    ],
)
def test_add_refuses_bad_input(ids: list[int], vectors: np.ndarray, message: str) -> None:
    fresh = VectorIndex(MODEL_ID, DIMENSION)
    with pytest.raises(ValueError, match=message):
        fresh.add(ids, vectors)
    assert len(fresh) == 0


def test_search_refuses_bad_k(index: VectorIndex) -> None:
    with pytest.raises(ValueError, match="k must be positive"):
        index.search(unit_vectors(1), k=0)


def test_switches_to_hnsw_above_threshold_and_back_after_removal() -> None:
    """Above the threshold the index is HNSW; removal (unsupported by faiss HNSW) rebuilds, exactly."""
    vectors = unit_vectors(300, seed=1)
    ids = np.arange(1000, 1300, dtype=np.int64)
    hnsw = VectorIndex(MODEL_ID, DIMENSION, hnsw_threshold=200)
    hnsw.add(ids[:150], vectors[:150])
    assert hnsw.kind is IndexKind.FLAT
    hnsw.add(ids[150:], vectors[150:])
    assert hnsw.kind is IndexKind.HNSW

    queries = unit_vectors(20, seed=2)
    hits = sum(
        len({key for key, _ in row} & set(exact_neighbours(vectors, ids, query, 10)))
        for row, query in zip(hnsw.search(queries, k=10), queries, strict=True)
    )
    assert hits / (20 * 10) >= 0.95

    # Replacing in HNSW mode: the vector is exactly the new one and no id is lost.
    replacement = unit_vectors(1, seed=3)
    hnsw.add([1005], replacement)
    assert len(hnsw) == 300
    np.testing.assert_allclose(hnsw.vectors([1005]), replacement, atol=1e-6)
    assert hnsw.search(replacement, k=1)[0][0][0] == 1005

    removed = ids[:50].tolist()
    assert hnsw.remove(removed) == 50
    assert hnsw.kind is IndexKind.HNSW
    assert hnsw.ids() == set(ids[50:].tolist())
    np.testing.assert_allclose(hnsw.vectors([1200]), vectors[200:201], atol=1e-6)
    assert not {key for row in hnsw.search(queries, k=20) for key, _ in row} & set(removed)

    assert hnsw.remove(ids[50:200].tolist()) == 150
    assert hnsw.kind is IndexKind.FLAT
    assert hnsw.ids() == set(ids[200:].tolist())


@pytest.mark.parametrize("threshold", [HNSW_THRESHOLD, 100])
def test_searches_during_replacements_never_miss_the_replaced_id(threshold: int) -> None:
    """A background sync replaces vectors (HNSW: full rebuilds) while the GUI searches."""
    vectors = unit_vectors(300, seed=11)
    shared = VectorIndex(MODEL_ID, DIMENSION, hnsw_threshold=threshold)
    shared.add(range(300), vectors)
    stop = threading.Event()
    failures: list[str] = []

    def replace_repeatedly() -> None:
        for _ in range(30):
            shared.add([7, 8], vectors[7:9])
        stop.set()

    writer = threading.Thread(target=replace_repeatedly)
    writer.start()
    searches = 0
    while not stop.is_set() or searches == 0:
        best = shared.search(vectors[7:9], k=1)
        if [row[0][0] for row in best] != [7, 8]:
            failures.append(repr(best))
        searches += 1
    writer.join(timeout=60)
    assert failures == []
    assert len(shared) == 300


def test_default_threshold_is_the_measured_one() -> None:
    assert VectorIndex(MODEL_ID, DIMENSION).hnsw_threshold == HNSW_THRESHOLD == 20_000


@pytest.mark.parametrize("threshold", [HNSW_THRESHOLD, 50])
def test_save_load_roundtrip(tmp_path: Path, threshold: int) -> None:
    vectors = unit_vectors(120, seed=4)
    ids = np.arange(5, 125, dtype=np.int64) * 7
    original = VectorIndex(MODEL_ID, DIMENSION, hnsw_threshold=threshold)
    original.add(ids, vectors)
    path = tmp_path / "tickets.faiss"
    original.save(path)

    manifest = json.loads(manifest_path(path).read_text(encoding="utf-8"))
    assert manifest["model_id"] == MODEL_ID
    assert manifest["dimension"] == DIMENSION
    assert manifest["count"] == 120
    assert manifest["kind"] == original.kind.value
    assert len(manifest["ids_sha256"]) == 64
    assert [entry.name for entry in tmp_path.iterdir() if entry.name.endswith(".tmp")] == []

    loaded = VectorIndex.load(path, MODEL_ID, hnsw_threshold=threshold)
    assert loaded.kind is original.kind
    assert loaded.ids() == original.ids()
    queries = unit_vectors(5, seed=6)
    assert loaded.search(queries, k=5) == original.search(queries, k=5)
    loaded.add([1], unit_vectors(1, seed=7))  # still mutable after loading
    assert 1 in loaded


def test_save_replaces_previous_file(tmp_path: Path, index: VectorIndex) -> None:
    path = tmp_path / "runbooks.faiss"
    index.save(path)
    index.remove([10])
    index.save(path)
    assert VectorIndex.load(path, MODEL_ID).ids() == {20, 30, 40}


def test_load_missing(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError):
        VectorIndex.load(tmp_path / "absent.faiss", MODEL_ID)


def test_load_refuses_other_model(tmp_path: Path, index: VectorIndex) -> None:
    path = tmp_path / "tickets.faiss"
    index.save(path)
    with pytest.raises(ModelMismatchError, match="other-model@2\\+onnx"):
        VectorIndex.load(path, "other-model@2+onnx")


@pytest.mark.parametrize(
    "damage",
    ["manifest-not-json", "manifest-missing-key", "manifest-wrong-count", "index-bytes", "index-truncated"],
)
def test_load_detects_corruption(tmp_path: Path, index: VectorIndex, damage: str) -> None:
    path = tmp_path / "tickets.faiss"
    index.save(path)
    manifest_file = manifest_path(path)
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    if damage == "manifest-not-json":
        manifest_file.write_text('{"model_id": "test-model@1+st", ', encoding="utf-8")
    elif damage == "manifest-missing-key":
        del manifest["ids_sha256"]
        manifest_file.write_text(json.dumps(manifest), encoding="utf-8")
    elif damage == "manifest-wrong-count":
        manifest["count"] = 5
        manifest_file.write_text(json.dumps(manifest), encoding="utf-8")
    elif damage == "index-bytes":
        payload = bytearray(path.read_bytes())
        payload[-10] ^= 0xFF
        path.write_bytes(bytes(payload))
    else:
        path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(IndexCorruptError) as caught:
        VectorIndex.load(path, MODEL_ID)
    assert isinstance(caught.value, RunbookDeskError)
    assert str(path.name) in str(caught.value)


def test_load_detects_index_without_manifest(tmp_path: Path, index: VectorIndex) -> None:
    path = tmp_path / "tickets.faiss"
    index.save(path)
    manifest_path(path).unlink()
    with pytest.raises(IndexCorruptError, match="manifest"):
        VectorIndex.load(path, MODEL_ID)


@pytest.mark.parametrize("threshold", [HNSW_THRESHOLD, 30])
def test_sync_with_repairs_exactly_the_difference(threshold: int) -> None:
    all_vectors = unit_vectors(100, seed=8)

    def vector_of(key: int) -> np.ndarray:
        return all_vectors[key]

    drifted = VectorIndex(MODEL_ID, DIMENSION, hnsw_threshold=threshold)
    drifted.add(list(range(0, 60)), all_vectors[0:60])  # 0..59 indexed
    expected = {key: f"hash-{key}" for key in range(10, 80)}  # store holds 10..79
    fetched: list[list[int]] = []

    def fetch_vectors(keys: list[int]) -> np.ndarray:
        fetched.append(keys)
        return np.vstack([vector_of(key) for key in keys])

    report = drifted.sync_with(expected, fetch_vectors, batch_size=8)
    assert report == SyncReport(added=20, removed=10)
    assert sorted(key for batch in fetched for key in batch) == list(range(60, 80))
    assert all(len(batch) <= 8 for batch in fetched)
    assert drifted.ids() == set(expected)
    np.testing.assert_allclose(drifted.vectors([75]), all_vectors[75:76], atol=1e-6)

    fetched.clear()
    assert drifted.sync_with(set(expected), fetch_vectors) == SyncReport(added=0, removed=0)
    assert fetched == []


def test_sync_with_rejects_wrong_vector_count(index: VectorIndex) -> None:
    with pytest.raises(ValueError, match="shape"):
        index.sync_with({10, 20, 30, 40, 50}, lambda keys: unit_vectors(len(keys) + 1))


def test_vectors_of_unknown_id(index: VectorIndex) -> None:
    with pytest.raises(KeyError):
        index.vectors([12345])


def test_set_faiss_threads() -> None:
    before = faiss.omp_get_max_threads()
    try:
        set_faiss_threads(1)
        assert faiss.omp_get_max_threads() == 1
        with pytest.raises(ValueError, match="positive"):
            set_faiss_threads(0)
    finally:
        set_faiss_threads(before)
