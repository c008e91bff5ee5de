"""``runbook-desk gaps`` and ``gaps queue``: the report reads only; the queue lists, generates, approves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

import core.matching.embedding_onnx
from core.analytics.generation_queue import GENERATED_ACTION, REF_PREFIX
from core.matching.embedding import SentenceTransformerEmbedder
from core.store.models import AuditEvent, Runbook, RunbookStatus
from core.store.repository import current_actor
from core.store.workspace import Workspace
from desktop.cli.common import EXIT_OK, EXIT_USAGE
from desktop.cli.main import main
from tests.helpers.gap_fixtures import planted_workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def planted_template(
    analysed_demo_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    embedder: SentenceTransformerEmbedder,
) -> Path:
    return planted_workspace(analysed_demo_template, tmp_path_factory.mktemp("planted") / "ws", embedder)


@pytest.fixture
def workspace_dir(
    planted_template: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    embedder: SentenceTransformerEmbedder,
) -> str:

    monkeypatch.setattr(core.matching.embedding_onnx, "default_embedder", lambda: embedder)
    root = tmp_path / "ws"
    shutil.copytree(planted_template, root, ignore=shutil.ignore_patterns("*.lock"))
    return str(root)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def generated_drafts(workspace_dir: str) -> list[tuple[str, RunbookStatus]]:
    with Workspace.open(Path(workspace_dir)) as workspace, workspace.session_factory()() as session:
        rows = session.scalars(select(Runbook).where(Runbook.external_ref.startswith(REF_PREFIX))).all()
        return [(r.external_ref or "", r.status) for r in rows]


def test_queue_lists_generates_once_and_approves(capsys, workspace_dir: str) -> None:
    code, out, _ = run(capsys, "gaps", "queue", "--workspace", workspace_dir, "--json")
    assert code == EXIT_OK
    listing = json.loads(out)
    assert sum(listing["counts"].values()) == len(listing["gaps"]) > 0
    by_bucket = {
        bucket: [g for g in listing["gaps"] if g["bucket"] == bucket] for bucket in listing["counts"]
    }
    assert {b: len(g) for b, g in by_bucket.items()} == listing["counts"]
    assert by_bucket["automatic"] and by_bucket["prompt"] and by_bucket["manual"]
    assert all(g["confidence"] > 0.7 for g in by_bucket["automatic"])
    assert all(0.5 <= g["confidence"] <= 0.7 for g in by_bucket["prompt"])
    assert all(g["draft"] is None for g in listing["gaps"]) and listing["generated"] == []
    assert generated_drafts(workspace_dir) == []  # listing writes nothing

    code, out, _ = run(capsys, "gaps", "queue", "--generate", "--workspace", workspace_dir, "--json")
    generated = json.loads(out)
    assert code == EXIT_OK and len(generated["generated"]) == len(by_bucket["automatic"])
    assert all(g["draft"]["status"] == "in_review" for g in generated["gaps"] if g["bucket"] == "automatic")
    code, out, _ = run(capsys, "gaps", "queue", "--generate", "--workspace", workspace_dir, "--json")
    assert json.loads(out)["generated"] == []  # never a second draft for the same gap

    prompt = by_bucket["prompt"][0]["key"]
    code, out, _ = run(capsys, "gaps", "queue", "--approve", prompt, "--workspace", workspace_dir)
    assert code == EXIT_OK
    assert "1 drafts generated now" in out and "Approve generation" in out
    drafts = generated_drafts(workspace_dir)
    assert (f"{REF_PREFIX}{prompt}", RunbookStatus.IN_REVIEW) in drafts
    assert len(drafts) == len(by_bucket["automatic"]) + 1
    with Workspace.open(Path(workspace_dir)) as workspace, workspace.session_factory()() as session:
        actors = {
            (e.after or {})["key"]: e.actor
            for e in session.scalars(select(AuditEvent).where(AuditEvent.action == GENERATED_ACTION))
        }
    assert actors[prompt] == current_actor()


def test_gaps_report_needs_since_and_never_generates(capsys, workspace_dir: str) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["gaps", "--workspace", workspace_dir])
    assert stopped.value.code == EXIT_USAGE
    assert "--since" in capsys.readouterr().err
    code, out, _ = run(capsys, "gaps", "--since", "2026-06-01", "--workspace", workspace_dir, "--json")
    assert code == EXIT_OK
    report = json.loads(out)
    assert report["gaps"] and all(len(g["tickets_per_period"]) == 6 for g in report["gaps"])
    assert generated_drafts(workspace_dir) == []
    code, _, err = run(capsys, "gaps", "queue", "--approve", "gnosuchgap", "--workspace", workspace_dir)
    assert code != EXIT_OK and "no such gap" in err
