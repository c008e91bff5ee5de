"""Nearest-neighbour search over embedding vectors, keyed by database primary keys.

The index is a cache of vectors that live (or can be recomputed) elsewhere: the SQLite store is the source
of truth, and ``VectorIndex.sync_with`` repairs the index from it after a crash, a failed save or a change
of model. Scores are inner products of L2-normalised vectors, i.e. cosine similarities.

Layout: a faiss ``IndexIDMap2`` maps our int64 ids onto the internal index, which is

* ``IndexFlatIP`` (exact, brute force) up to ``HNSW_THRESHOLD`` vectors, and
* ``IndexHNSWFlat`` (approximate graph search, inner product) above it, where exact search gets too slow
  for type-ahead matching.

faiss's HNSW cannot delete vectors (``remove_ids`` raises). A removal or replacement in HNSW mode therefore
rebuilds the graph from the vectors the index already holds (``IndexHNSWFlat`` stores them uncompressed, so
they are read back exactly) minus the removed ids. That costs a full build, so callers should remove and
replace in batches (``sync_with`` does); adding new ids to HNSW is incremental and cheap.

Errors::

    RunbookDeskError
    └── VectorIndexError
        ├── IndexNotFoundError     no saved index at that path (first start): build one
        ├── IndexCorruptError      unreadable, truncated, checksum or id mismatch: rebuild it
        └── ModelMismatchError     saved by another model/backend or dimension: re-embed and rebuild

A save writes the index file and then its JSON manifest, each atomically (temp file + ``os.replace``); a crash
between the two leaves a manifest whose checksum does not match, which loads as ``IndexCorruptError``.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from core.errors import RunbookDeskError

__all__ = [
    "HNSW_EF_CONSTRUCTION",
    "HNSW_EF_SEARCH",
    "HNSW_M",
    "HNSW_THRESHOLD",
    "IndexCorruptError",
    "IndexKind",
    "IndexNotFoundError",
    "ModelMismatchError",
    "SyncReport",
    "VectorIndex",
    "VectorIndexError",
    "manifest_path",
    "set_faiss_threads",
]

# Above this many vectors the index switches from exact to HNSW search. Measured on the 2-core dev VM (AMD
# EPYC, faiss-cpu 1.15.1, 384-d float32 unit vectors, one query at a time, k=20, 500 queries): exact
# IndexFlatIP p95 latency was 16k: 4.2 ms, 20k: 4.2 ms, 24k: 4.7 ms, 28k: 5.8 ms, 32k: 7.4 ms with one
# OpenMP thread, and 16k: 4.9 ms, 20k: 7.8 ms with faiss's default two (a single query gains nothing from the
# second thread here and suffers from scheduling noise). 20,000 keeps exact search near 5 ms p95 either way.
HNSW_THRESHOLD = 20_000
HNSW_M = 32
# Measured on 29,500 real all-MiniLM-L6-v2 vectors of synthetic tickets (queries: held-out vectors plus
# noise), M=32, recall@10 against exact search, one thread:
#   efConstruction 40 (build 10.9 s): efSearch 32: 0.973, 64: 0.991, 96: 0.994, 128: 0.997, 256: 0.999
#   efConstruction 80 (build 13.9 s): efSearch 64: 0.992, 96: 0.998, 128: 0.998
# p50 latency at efSearch 128 was 0.6 ms (p95 ~4.7 ms is the VM's scheduler tick, present at any setting
# above 64). efConstruction stays at faiss's default 40 because removals rebuild the graph, and efSearch 128
# leaves headroom over the 0.99 target for catalogues less clustered than the test set. (Random unit vectors,
# the worst case for HNSW, reach only 0.51 at 128: real embeddings are far from uniform.)
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 128

FORMAT_VERSION = 1
_NORM_TOLERANCE = 1e-3


class VectorIndexError(RunbookDeskError):
    """Base of the vector index errors; the message names the file."""


class IndexNotFoundError(VectorIndexError):
    pass


class IndexCorruptError(VectorIndexError):
    pass


class ModelMismatchError(VectorIndexError):
    pass


class IndexKind(enum.StrEnum):
    FLAT = "flat"
    HNSW = "hnsw"


@dataclass(frozen=True, slots=True)
class SyncReport:
    """How many ids ``sync_with`` had to add and remove; both 0 means the index was already in sync."""

    added: int
    removed: int


def set_faiss_threads(count: int) -> None:
    """Set the OpenMP threads faiss uses for every index in the process.

    The application decides: on 2 cores one thread per search leaves the other for the GUI and measured no
    slower for single queries (see ``HNSW_THRESHOLD``); bulk builds gain from more.
    """
    if count < 1:
        raise ValueError(f"thread count must be positive, got {count}")
    faiss.omp_set_num_threads(count)


def manifest_path(index_path: Path) -> Path:
    """The JSON manifest saved beside an index file: ``tickets.faiss`` -> ``tickets.faiss.json``."""
    return index_path.with_name(index_path.name + ".json")


def _ids_checksum(ids: np.ndarray) -> str:
    return hashlib.sha256(np.sort(ids).astype("<i8").tobytes()).hexdigest()


def _as_ids(ids: Iterable[int] | np.ndarray) -> np.ndarray:
    array = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"ids must be a 1-d sequence of integers, got dtype {array.dtype} shape {array.shape}"
        )
    if (array < 0).any():
        # faiss reports "no result" as -1; negative keys would be indistinguishable from it.
        raise ValueError("ids must be non-negative")
    return array.astype(np.int64)


def _write_atomically(path: Path, payload: bytes | memoryview) -> None:
    """Write to a temp file in the same directory, fsync, then ``os.replace`` over ``path``.

    Same directory because ``os.replace`` is only atomic within one file system; fsync before the rename so
    a power cut cannot leave a renamed but empty file.
    """
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temp_path = Path(temp_name)
    replaced = False
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_path, path)
        replaced = True
    finally:
        if not replaced:
            temp_path.unlink(missing_ok=True)
    if os.name == "posix":
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


class VectorIndex:
    """Cosine-similarity search over unit vectors keyed by int64 ids.

    Thread-safe, with two locks. Mutations (``add``, ``remove``, ``sync_with``) are serialised by a writer
    lock. Searches and reads take a short lock that in-place faiss changes (flat add/remove, HNSW add) also
    take, because faiss is not safe for a search concurrent with an add. An HNSW rebuild, which takes
    seconds, is built on the side from a snapshot and swapped in under the short lock, so the GUI keeps
    searching the old index meanwhile; the cost is holding both indexes in memory during the rebuild.
    """

    def __init__(
        self,
        model_id: str,
        dimension: int,
        *,
        hnsw_threshold: int = HNSW_THRESHOLD,
        ef_search: int = HNSW_EF_SEARCH,
    ) -> None:
        """``hnsw_threshold`` is a parameter so tests can cross it with a few vectors."""
        if dimension < 1:
            raise ValueError(f"dimension must be positive, got {dimension}")
        self._model_id = model_id
        self._dimension = dimension
        self._hnsw_threshold = hnsw_threshold
        self._ef_search = ef_search
        self._lock = threading.Lock()  # reads, in-place faiss changes, swaps
        self._write_lock = threading.RLock()  # one mutation at a time
        self._id_set: set[int] = set()
        self._kind = IndexKind.FLAT
        self._inner: faiss.Index
        self._index: faiss.IndexIDMap2
        self._inner, self._index = self._new_index(IndexKind.FLAT)

    # ----------------------------------------------------------------------------------------------------
    # Properties

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def kind(self) -> IndexKind:
        return self._kind

    @property
    def hnsw_threshold(self) -> int:
        return self._hnsw_threshold

    def __len__(self) -> int:
        with self._lock:
            return len(self._id_set)

    def __contains__(self, item: object) -> bool:
        with self._lock:
            return item in self._id_set

    def ids(self) -> set[int]:
        """A copy of the ids in the index."""
        with self._lock:
            return set(self._id_set)

    # ----------------------------------------------------------------------------------------------------
    # Mutation

    def add(self, ids: Iterable[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under ``ids``; ids already present are replaced (removed, then added again).

        A search never sees a replaced id missing: the removal and the addition are swapped in together.
        Vectors must be unit length (the embedder guarantees it); an unnormalised vector would score above
        1.0 and outrank everything, so it is refused instead of silently stored.
        """
        id_array = _as_ids(ids)
        matrix = self._check_vectors(vectors, len(id_array))
        if len(np.unique(id_array)) != len(id_array):
            raise ValueError("ids contain duplicates")
        if not len(id_array):
            return
        with self._write_lock:
            replaced = np.asarray([key for key in id_array.tolist() if key in self._id_set], dtype=np.int64)
            new_size = len(self._id_set) + len(id_array) - len(replaced)
            if self._kind is IndexKind.HNSW:
                # HNSW cannot delete: replacing means rebuilding; pure additions are incremental.
                needs_rebuild = bool(len(replaced))
            else:
                needs_rebuild = new_size > self._hnsw_threshold
            if needs_rebuild:
                self._rebuild(drop=replaced, extra_ids=id_array, extra_vectors=matrix)
            else:
                with self._lock:
                    if len(replaced):
                        self._remove_in_place(replaced)
                    self._index.add_with_ids(matrix, id_array)
                    self._id_set.update(id_array.tolist())

    def remove(self, ids: Iterable[int] | np.ndarray) -> int:
        """Remove ``ids`` (unknown ids are ignored); returns how many were removed.

        In HNSW mode this rebuilds the graph (see the module docstring): remove many ids in one call.
        """
        id_array = _as_ids(ids)
        with self._write_lock:
            present = np.unique(
                np.asarray([key for key in id_array.tolist() if key in self._id_set], dtype=np.int64)
            )
            if not len(present):
                return 0
            if self._kind is IndexKind.HNSW:
                self._rebuild(drop=present)
            else:
                with self._lock:
                    self._remove_in_place(present)
            return len(present)

    def sync_with(
        self,
        expected: Mapping[int, Any] | Iterable[int],
        fetch_vectors: Callable[[list[int]], np.ndarray],
        *,
        batch_size: int = 1024,
    ) -> SyncReport:
        """Make the index hold exactly the ``expected`` ids, touching only the difference.

        ``expected`` is a set of ids or a mapping whose keys are ids (e.g. ``{ticket_id: content_hash}``
        straight from the store; values are ignored). Extra ids are removed in one batch; missing ids are
        fetched with ``fetch_vectors(ids)`` (rows in the order asked) ``batch_size`` at a time and added, so
        a first build of 100k tickets does not hold all their vectors in memory at once. Searches keep
        working while a long fetch embeds; another mutation may interleave between batches, which is safe
        because ``add`` replaces.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        expected_keys = expected.keys() if isinstance(expected, Mapping) else expected
        wanted = {int(key) for key in _as_ids(list(expected_keys)).tolist()}
        with self._write_lock:
            extra = sorted(self._id_set - wanted)
            missing = sorted(wanted - self._id_set)
            if extra:
                self.remove(extra)
        for start in range(0, len(missing), batch_size):
            batch = missing[start : start + batch_size]
            vectors = fetch_vectors(batch)
            self.add(batch, vectors)
        return SyncReport(added=len(missing), removed=len(extra))

    # ----------------------------------------------------------------------------------------------------
    # Queries

    def search(self, vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """For each query row, up to ``k`` ``(id, cosine score)`` pairs, best first.

        A single 1-d vector is accepted as one query. Fewer than ``k`` results come back when the index is
        smaller than ``k`` (or, in HNSW mode, rarely when the graph search finds fewer).
        """
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        queries = np.atleast_2d(vectors)
        matrix = self._check_vectors(queries, len(queries))
        with self._lock:
            if not self._id_set or not len(matrix):
                return [[] for _ in range(len(matrix))]
            k = min(k, len(self._id_set))
            if isinstance(self._inner, faiss.IndexHNSWFlat):
                # The candidate list must be at least k long or the graph search returns fewer than k.
                self._inner.hnsw.efSearch = max(self._ef_search, k)
            scores, labels = self._index.search(matrix, k)
        return [
            [
                (int(label), float(score))
                for label, score in zip(row_labels, row_scores, strict=True)
                if label >= 0
            ]
            for row_labels, row_scores in zip(labels, scores, strict=True)
        ]

    def vectors(self, ids: Iterable[int] | np.ndarray) -> np.ndarray:
        """The stored vectors of ``ids``, in that order; ``KeyError`` for an unknown id."""
        id_array = _as_ids(ids)
        with self._lock:
            missing = [key for key in id_array.tolist() if key not in self._id_set]
            if missing:
                raise KeyError(f"ids not in the index: {missing[:10]}")
            rows = [self._index.reconstruct(int(key)) for key in id_array]
        return np.vstack(rows).astype(np.float32) if rows else np.zeros((0, self._dimension), np.float32)

    # ----------------------------------------------------------------------------------------------------
    # Persistence

    def save(self, path: Path) -> None:
        """Write the index to ``path`` and its manifest to ``manifest_path(path)``, each atomically.

        Serialising is a read, so it holds off mutations (writer lock) but not searches.
        """
        path = Path(path)
        with self._write_lock:
            payload = faiss.serialize_index(self._index)
            id_array = faiss.vector_to_array(self._index.id_map)
            manifest = {
                "format_version": FORMAT_VERSION,
                "model_id": self._model_id,
                "dimension": self._dimension,
                "count": len(self._id_set),
                "kind": self._kind.value,
                "ids_sha256": _ids_checksum(id_array),
                "index_sha256": hashlib.sha256(payload.data).hexdigest(),
                "hnsw": {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": self._ef_search},
            }
        _write_atomically(path, payload.data)
        _write_atomically(manifest_path(path), json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))

    @classmethod
    def load(
        cls,
        path: Path,
        expected_model_id: str,
        *,
        hnsw_threshold: int = HNSW_THRESHOLD,
        ef_search: int = HNSW_EF_SEARCH,
    ) -> VectorIndex:
        """Read an index saved by ``save``, refusing one made by another model or damaged on disk.

        The model is checked from the manifest before the (possibly large) index file is read.
        """
        path = Path(path)
        manifest_file = manifest_path(path)
        if not path.exists() and not manifest_file.exists():
            raise IndexNotFoundError(f"no vector index at {path}")
        manifest = _read_manifest(manifest_file)
        if manifest["model_id"] != expected_model_id:
            raise ModelMismatchError(
                f"vector index {path} was built with {manifest['model_id']!r}, "
                f"the current model is {expected_model_id!r}; it must be rebuilt"
            )
        try:
            payload = path.read_bytes()
        except FileNotFoundError as exc:
            raise IndexCorruptError(f"vector index {path} is missing but its manifest exists") from exc
        if hashlib.sha256(payload).hexdigest() != manifest["index_sha256"]:
            raise IndexCorruptError(f"vector index {path} does not match the checksum in {manifest_file}")
        try:
            loaded = faiss.deserialize_index(np.frombuffer(payload, dtype=np.uint8))
        except RuntimeError as exc:
            raise IndexCorruptError(f"faiss cannot read {path}: {exc}") from exc

        instance = cls(
            expected_model_id, int(manifest["dimension"]), hnsw_threshold=hnsw_threshold, ef_search=ef_search
        )
        instance._adopt(loaded, manifest, path)
        return instance

    # ----------------------------------------------------------------------------------------------------
    # Internals

    def _new_index(self, kind: IndexKind) -> tuple[faiss.Index, faiss.IndexIDMap2]:
        inner: faiss.Index
        if kind is IndexKind.HNSW:
            inner = faiss.IndexHNSWFlat(self._dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            inner.hnsw.efSearch = self._ef_search
        else:
            inner = faiss.IndexFlatIP(self._dimension)
        # The Python wrapper keeps ``inner`` alive as long as the IDMap; we keep a reference too, to set
        # efSearch on it.
        return inner, faiss.IndexIDMap2(inner)

    def _adopt(self, loaded: faiss.Index, manifest: Mapping[str, Any], path: Path) -> None:
        """Take over a deserialised index after checking it agrees with its manifest."""
        if not isinstance(loaded, faiss.IndexIDMap2):
            raise IndexCorruptError(f"{path} holds a {type(loaded).__name__}, not an IndexIDMap2")
        inner = faiss.downcast_index(loaded.index)
        kind = IndexKind(manifest["kind"])
        expected_type = faiss.IndexHNSWFlat if kind is IndexKind.HNSW else faiss.IndexFlatIP
        if not isinstance(inner, expected_type) or inner.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise IndexCorruptError(f"{path} holds a {type(inner).__name__}, manifest says {kind.value}")
        if loaded.d != self._dimension:
            raise ModelMismatchError(f"{path} holds {loaded.d}-d vectors, manifest says {self._dimension}")
        id_array = faiss.vector_to_array(loaded.id_map)
        if len(id_array) != manifest["count"] or loaded.ntotal != manifest["count"]:
            raise IndexCorruptError(
                f"{path} holds {len(id_array)} vectors, manifest says {manifest['count']}"
            )
        if _ids_checksum(id_array) != manifest["ids_sha256"] or len(np.unique(id_array)) != len(id_array):
            raise IndexCorruptError(f"the ids in {path} do not match its manifest")
        if isinstance(inner, faiss.IndexHNSWFlat):
            inner.hnsw.efSearch = self._ef_search
        self._inner, self._index, self._kind = inner, loaded, kind
        self._id_set = {int(key) for key in id_array.tolist()}

    def _check_vectors(self, vectors: np.ndarray, rows: int) -> np.ndarray:
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape != (rows, self._dimension):
            raise ValueError(f"expected vectors of shape ({rows}, {self._dimension}), got {matrix.shape}")
        if not np.isfinite(matrix).all():
            raise ValueError("vectors contain NaN or infinity")
        norms = np.linalg.norm(matrix, axis=1)
        if len(norms) and np.abs(norms - 1.0).max() > _NORM_TOLERANCE:
            raise ValueError("vectors must be L2-normalised (unit length)")
        return matrix

    def _remove_in_place(self, id_array: np.ndarray) -> None:
        """Flat mode only; the caller holds both locks."""
        removed = self._index.remove_ids(faiss.IDSelectorBatch(id_array))
        if removed != len(id_array):
            raise VectorIndexError(f"faiss removed {removed} of {len(id_array)} ids")
        self._id_set.difference_update(id_array.tolist())

    def _rebuild(
        self,
        drop: np.ndarray,
        extra_ids: np.ndarray | None = None,
        extra_vectors: np.ndarray | None = None,
    ) -> None:
        """Build a new index from the stored vectors minus ``drop`` plus ``extra_*`` and swap it in.

        The kind follows the new size: HNSW above the threshold, exact at or below it. The caller holds the
        writer lock, so nothing changes the current index while it is read; concurrent searches only read
        it too, which faiss allows.
        """
        all_ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        if len(all_ids):
            all_vectors = self._inner.reconstruct_n(0, self._inner.ntotal)
            keep = ~np.isin(all_ids, drop)
            all_ids, all_vectors = all_ids[keep], all_vectors[keep]
        else:
            all_vectors = np.zeros((0, self._dimension), dtype=np.float32)
        if extra_ids is not None and extra_vectors is not None:
            all_ids = np.concatenate([all_ids, extra_ids])
            all_vectors = np.vstack([all_vectors, extra_vectors])
        kind = IndexKind.HNSW if len(all_ids) > self._hnsw_threshold else IndexKind.FLAT
        inner, index = self._new_index(kind)
        if len(all_ids):
            index.add_with_ids(np.ascontiguousarray(all_vectors, dtype=np.float32), all_ids)
        id_set = set(all_ids.tolist())
        with self._lock:
            self._inner, self._index, self._kind, self._id_set = inner, index, kind, id_set


def _read_manifest(manifest_file: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexCorruptError(f"vector index manifest {manifest_file} is missing") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(f"cannot read vector index manifest {manifest_file}: {exc}") from exc
    required: dict[str, type | tuple[type, ...]] = {
        "format_version": int,
        "model_id": str,
        "dimension": int,
        "count": int,
        "kind": str,
        "ids_sha256": str,
        "index_sha256": str,
    }
    if not isinstance(manifest, dict):
        raise IndexCorruptError(f"vector index manifest {manifest_file} is not a JSON object")
    for key, expected_type in required.items():
        if not isinstance(manifest.get(key), expected_type):
            raise IndexCorruptError(f"vector index manifest {manifest_file} lacks a valid {key!r}")
    if manifest["format_version"] != FORMAT_VERSION:
        raise IndexCorruptError(
            f"vector index manifest {manifest_file} has format {manifest['format_version']}, "
            f"this version reads {FORMAT_VERSION}"
        )
    if manifest["kind"] not in {kind.value for kind in IndexKind}:
        raise IndexCorruptError(
            f"vector index manifest {manifest_file} has unknown kind {manifest['kind']!r}"
        )
    return manifest
