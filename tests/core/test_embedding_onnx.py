"""The ONNX Runtime backend against the sentence-transformers one: same vectors, same rankings, same store.

The model is exported once per test session into a temporary folder (about 3 s once torch is imported, which
the session's ``embedder`` fixture has done), so the test proves the export of this checkout, not a stale
file. Agreement is what lets both backends share a model id (see ``core.matching.embedding_onnx``): a
workspace
analysed with one is searched with the other without re-embedding anything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from core.importing import import_runbooks
from core.matching.analysis import analyze_pending
from core.matching.embedding import Embedder, EmbeddingModelError, SentenceTransformerEmbedder
from core.matching.embedding_onnx import (
    EMBEDDER_ENV,
    MODEL_FILE,
    ONNX_MODEL_ENV,
    OnnxEmbedder,
    OnnxModelManifest,
    default_embedder,
    export_onnx,
)
from core.matching.engine import open_engine
from core.matching.text import ticket_text
from core.store.models import RunbookSection, Ticket
from core.store.workspace import Workspace
from tests.conftest import DEMO_DIR

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
MIN_COSINE = 0.999
TICKET_SAMPLE_STEP = 2  # every other demo ticket (~175): every category, severity and length
EDGE_CASES = [
    "",
    "VPN",
    "x" * 5000,  # far past 256 word pieces: both must truncate at the same place
    "Ошибка 0x80070005 при входе в систему",
    "打印机无法连接 printer offline",
    "Outlook 0x800CCC0E cannot send\n\n\tSMTP  timeout   ",
]


@pytest.fixture(scope="session")
def onnx_model_dir(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder) -> Path:
    embedder.load()  # torch is imported once for the session either way
    model_dir = tmp_path_factory.mktemp("onnx") / "model"
    export_onnx(model_dir)
    return model_dir


@pytest.fixture(scope="session")
def onnx_embedder(onnx_model_dir: Path) -> OnnxEmbedder:
    return OnnxEmbedder(onnx_model_dir)


@pytest.fixture(scope="session")
def sample_texts(analysed_demo_template: Path) -> list[str]:
    """Prepared ticket texts and runbook sections, as the matcher embeds them, plus edge cases."""
    workspace = Workspace.open(analysed_demo_template)
    try:
        with workspace.session_factory()() as session:
            tickets = session.scalars(select(Ticket).order_by(Ticket.id)).all()
            sections = session.scalars(select(RunbookSection.text).order_by(RunbookSection.id)).all()
            texts = [ticket_text(t) for t in tickets[::TICKET_SAMPLE_STEP]]
    finally:
        workspace.close()
    return [*texts, *sections, *EDGE_CASES]


def test_manifest_records_the_source_and_shares_the_model_id(
    onnx_embedder: OnnxEmbedder, onnx_model_dir: Path, embedder: SentenceTransformerEmbedder
) -> None:
    manifest = OnnxModelManifest.read(onnx_model_dir)
    assert manifest.model_id == embedder.model_id == onnx_embedder.model_id
    assert manifest.source_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert manifest.quantization == "none"
    assert len(manifest.source_sha256) == len(manifest.onnx_sha256) == 64
    assert (manifest.dimension, manifest.max_seq_length) == (384, 256)
    assert onnx_embedder.backend.startswith("onnxruntime ")
    assert isinstance(onnx_embedder, Embedder)
    assert not list(onnx_model_dir.parent.glob("*.partial")), "the export leaves no staging folder"


def test_backends_agree_per_text(
    onnx_embedder: OnnxEmbedder, embedder: SentenceTransformerEmbedder, sample_texts: list[str]
) -> None:
    assert len(sample_texts) > 300
    torch_vectors = embedder.encode(sample_texts)
    onnx_vectors = onnx_embedder.encode(sample_texts, batch_size=32)
    cosines = np.einsum("ij,ij->i", torch_vectors, onnx_vectors)
    worst = int(np.argmin(cosines))
    assert cosines[worst] >= MIN_COSINE, f"cosine {cosines[worst]:.5f} for {sample_texts[worst][:80]!r}"


def test_vectors_are_float32_unit_length_and_independent_of_batching(onnx_embedder: OnnxEmbedder) -> None:
    vectors = onnx_embedder.encode(EDGE_CASES, batch_size=64)
    one_by_one = onnx_embedder.encode(EDGE_CASES, batch_size=1)
    assert vectors.shape == (len(EDGE_CASES), 384)
    assert vectors.dtype == np.float32
    assert vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Padding to a batch's longest text must not change a text's vector.
    np.testing.assert_allclose(vectors, one_by_one, atol=1e-5)
    assert onnx_embedder.encode([]).shape == (0, 384)


def test_encode_rejects_what_sentence_transformers_rejects(onnx_embedder: OnnxEmbedder) -> None:
    with pytest.raises(TypeError, match="not a single string"):
        onnx_embedder.encode("VPN")
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        onnx_embedder.encode(["VPN", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="batch_size"):
        onnx_embedder.encode(["VPN"], batch_size=0)


def test_identical_top5_runbooks_on_the_demo(
    onnx_embedder: OnnxEmbedder,
    embedder: SentenceTransformerEmbedder,
    analysed_demo: Workspace,
    tmp_path: Path,
) -> None:
    """Demo runbooks indexed from scratch with ONNX rank as the torch-built demo does, query by query."""
    torch_engine = open_engine(analysed_demo, "default", embedder)
    with analysed_demo.session_factory()() as session:
        tickets = session.scalars(select(Ticket).order_by(Ticket.id)).all()
        queries = [ticket_text(t) for t in tickets]  # all of them
    fresh = Workspace.open(tmp_path / "onnx-demo")
    try:
        import_runbooks(fresh.session_factory(), DEMO_DIR / "runbooks", actor="test")
        onnx_engine = open_engine(fresh, "default", onnx_embedder)
        onnx_engine.refresh()  # every runbook section embedded by ONNX
        onnx_top = onnx_engine.search_many(queries, onnx_embedder.encode(queries), 5)
        # The template's cache holds torch's vectors of these texts: nothing is re-embedded here.
        torch_top = torch_engine.search_many(queries, torch_engine.embedder.encode(queries), 5)
    finally:
        fresh.close()
    differing = [
        (query[:60], [m.title for m in a], [m.title for m in b])
        for query, a, b in zip(queries, onnx_top, torch_top, strict=True)
        if [m.title for m in a] != [m.title for m in b]
    ]
    assert len(queries) > 300
    assert all(len(top) == 5 for top in onnx_top)
    assert not differing, f"{len(differing)} of {len(queries)} top-5 lists differ, e.g. {differing[:2]}"


def test_switching_backend_keeps_stored_vectors_and_analyses(
    onnx_embedder: OnnxEmbedder, analysed_demo: Workspace
) -> None:
    """The workspace analysed with torch opens with ONNX: saved indexes load, no analysis is stale."""
    engine = open_engine(analysed_demo, "default", onnx_embedder)
    assert len(engine.runbook_index) > 0, "the saved index was rejected"
    refresh = engine.refresh()
    assert refresh.runbook_index == {"added": 0, "removed": 0}
    assert refresh.ticket_index == {"added": 0, "removed": 0}
    report = analyze_pending(engine, analysed_demo.session_factory())
    assert report.analysed == 0
    assert engine.embedder.embedded_count == 0


def test_default_embedder_prefers_an_exported_model(
    onnx_model_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(EMBEDDER_ENV, raising=False)
    monkeypatch.setenv(ONNX_MODEL_ENV, str(onnx_model_dir))
    chosen = default_embedder()
    assert isinstance(chosen, OnnxEmbedder)
    assert not chosen.is_loaded, "choosing must not load the model"
    monkeypatch.setenv(EMBEDDER_ENV, "sentence-transformers")
    assert isinstance(default_embedder(), SentenceTransformerEmbedder)
    monkeypatch.setenv(EMBEDDER_ENV, "tensorflow")
    with pytest.raises(EmbeddingModelError, match="expected 'onnx' or 'sentence-transformers'"):
        default_embedder()
    monkeypatch.delenv(EMBEDDER_ENV)
    monkeypatch.setenv(ONNX_MODEL_ENV, str(tmp_path / "nothing-here"))
    with pytest.raises(EmbeddingModelError, match="manifest"):
        default_embedder()


def test_frozen_build_without_a_model_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(EMBEDDER_ENV, raising=False)
    monkeypatch.delenv(ONNX_MODEL_ENV, raising=False)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    with pytest.raises(EmbeddingModelError, match="no exported ONNX model"):
        default_embedder()


def test_a_broken_model_file_is_a_model_error(onnx_model_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in onnx_model_dir.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    (broken / MODEL_FILE).write_bytes(b"not a model")
    with pytest.raises(EmbeddingModelError, match="cannot load the ONNX model"):
        OnnxEmbedder(broken).encode(["VPN"])


def test_onnx_backend_never_imports_torch(onnx_model_dir: Path) -> None:
    """What lets the packaged build leave torch out: choosing, loading and encoding import none of it."""
    code = (
        "import json, os, sys\n"
        f"os.environ[{ONNX_MODEL_ENV!r}] = sys.argv[1]\n"
        "from core.matching.embedding_onnx import default_embedder\n"
        "embedder = default_embedder()\n"
        "chosen = {name for name in ('onnxruntime', 'tokenizers') if name in sys.modules}\n"
        "embedder.encode(['VPN will not connect'])\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules]\n"
        "print(json.dumps({'type': type(embedder).__name__, 'imported_when_chosen': sorted(chosen),\n"
        "                  'heavy': heavy}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(onnx_model_dir)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert json.loads(result.stdout) == {"type": "OnnxEmbedder", "imported_when_chosen": [], "heavy": []}
