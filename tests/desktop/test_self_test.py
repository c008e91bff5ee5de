"""``runbook-desk --self-test`` from source: every check passes here, and a failure is one clear line.

The frozen build runs the same code (``make package-test``); these tests keep it honest between builds.
"""

from __future__ import annotations

import io

import pytest

import desktop.self_test as self_test
from core.matching.embedding import Embedder, EmbeddingModelError, SentenceTransformerEmbedder
from desktop.launcher import main

pytestmark = pytest.mark.slow

CHECKS = ["resources", "workspace", "embedding", "search", "connectors", "keychain", "qt"]


def test_every_check_passes(embedder: SentenceTransformerEmbedder) -> None:
    out = io.StringIO()
    assert self_test.run_self_test(out, embedder_factory=lambda: embedder) == 0
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines[:-1]] == CHECKS
    assert all(line.startswith("ok ") for line in lines[:-1]), lines
    assert lines[-1].startswith("self-test passed in ")
    search = next(line for line in lines if line.split()[1] == "search")
    assert "best 'VPN client cannot connect'" in search


def test_a_failing_check_is_one_line_and_the_exit_code(embedder: SentenceTransformerEmbedder) -> None:
    def missing_model() -> Embedder:
        raise EmbeddingModelError("no exported ONNX model in /nowhere/onnx-model\nsecond line never shown")

    out = io.StringIO()
    assert self_test.run_self_test(out, embedder_factory=missing_model) == 1
    lines = out.getvalue().splitlines()
    failed = {line.split()[1]: line for line in lines if line.startswith("FAIL")}
    assert set(failed) == {"embedding", "search"}
    assert "EmbeddingModelError: no exported ONNX model in /nowhere/onnx-model (" in failed["embedding"]
    assert "second line" not in out.getvalue()
    assert lines[-1].startswith("self-test FAILED in ") and lines[-1].endswith(": embedding, search")


def test_cli_flag_runs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []

    def fake_run_self_test() -> int:
        calls.append(True)
        return 1

    monkeypatch.setattr(self_test, "run_self_test", fake_run_self_test)
    assert main(["--self-test"]) == 1
    assert calls == [True]
