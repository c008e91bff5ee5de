"""Vectors cached in the store by (model id, sha256 of the prepared text).

Unchanged text is never embedded twice, across runs and re-analyses: embedding is the only expensive step of
matching (~4 ms per text on 2 cores), everything else is lookups.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import cast

import numpy as np
from sqlalchemy import Table, select
from sqlalchemy.orm import sessionmaker

from core.matching.embedding import Embedder
from core.store.models import EmbeddingCacheEntry
from core.store.sql import insert_ignoring_duplicates
from core.store.tenancy import TenantSession

LOOKUP_CHUNK = 500


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CachedEmbedder:
    """Wraps an :class:`Embedder`; ``encode`` returns cached vectors and embeds only what is new."""

    def __init__(self, embedder: Embedder, sessions: sessionmaker[TenantSession]) -> None:
        self.embedder = embedder
        self._sessions = sessions
        self.embedded_count = 0  # texts actually sent to the model by this instance (tests, benchmarks)

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    @property
    def dimension(self) -> int:
        return self.embedder.dimension

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        hashes = [text_hash(t) for t in texts]
        found = self._lookup(set(hashes))
        missing = {h: t for h, t in zip(hashes, texts, strict=True) if h not in found}
        if missing:
            fresh = self.embedder.encode(list(missing.values()), batch_size=batch_size)
            self.embedded_count += len(missing)
            rows = []
            for digest, vector in zip(missing, fresh, strict=True):
                found[digest] = vector
                rows.append({"model_id": self.model_id, "text_hash": digest, "vector": vector.tobytes()})
            with self._sessions.begin() as session:
                tenant = session.tenant_id
                session.execute(
                    # The table, not the ORM entity: a plain executemany, no ORM bulk-insert bookkeeping.
                    insert_ignoring_duplicates(cast(Table, EmbeddingCacheEntry.__table__)),
                    [row | {"tenant_id": tenant} for row in rows],
                )
        return np.vstack([found[h] for h in hashes]).astype(np.float32)

    def _lookup(self, hashes: set[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        ordered = sorted(hashes)
        with self._sessions() as session:
            for start in range(0, len(ordered), LOOKUP_CHUNK):
                chunk = ordered[start : start + LOOKUP_CHUNK]
                query = select(EmbeddingCacheEntry.text_hash, EmbeddingCacheEntry.vector).where(
                    EmbeddingCacheEntry.model_id == self.model_id, EmbeddingCacheEntry.text_hash.in_(chunk)
                )
                for digest, blob in session.execute(query):
                    found[digest] = np.frombuffer(blob, dtype=np.float32)
        return found
