"""``runbook-desk calibration status|refit|revert`` and ``thresholds suggest [--apply]``: exit codes, JSON,
one-line errors, and audits, on a copy of the analysed demo with reviewed decisions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from core.matching.calibration import PlattCalibrator, calibrator_from_dict
from core.matching.engine import load_default_calibrator
from core.resources import default_calibration_path
from core.settings import Thresholds, load_settings
from core.store.models import AuditEvent, CalibrationVersion
from core.store.workspace import Workspace
from desktop.cli.common import EXIT_ERROR, EXIT_OK, EXIT_USAGE
from desktop.cli.main import main
from tests.helpers.labelled_review import review_like_the_labels


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def demo_root(analysed_demo_template: Path, tmp_path: Path) -> Path:
    """A closed copy of the analysed demo (the CLI takes the workspace lock itself)."""
    root = tmp_path / "demo"
    shutil.copytree(analysed_demo_template, root, ignore=shutil.ignore_patterns("*.lock"))
    return root


def review(root: Path, count: int) -> tuple[int, int]:
    with Workspace.open(root) as workspace:
        return review_like_the_labels(workspace.session_factory(), count)


def add_overconfident_version(root: Path) -> int:
    """An active tenant version far too sure of itself: any refit on real decisions beats it."""
    shipped = load_default_calibrator(default_calibration_path())
    assert isinstance(shipped, PlattCalibrator)
    state = shipped.to_dict()
    state["weights"] = [w * 3 for w in state["weights"]]
    state["intercept"] = state["intercept"] * 3 + 4
    assert isinstance(calibrator_from_dict(state), PlattCalibrator)
    with Workspace.open(root) as workspace, workspace.session_factory().begin() as session:
        version = CalibrationVersion(
            calibrator=state, n_decisions=60, n_tickets=60, adopted=True, active=True, fitted_by="earlier"
        )
        session.add(version)
        session.flush()
        return version.id


def audits(root: Path, action: str) -> list[AuditEvent]:
    with Workspace.open(root) as workspace, workspace.session_factory()() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_status_on_a_new_tenant_and_a_refit_refused_for_too_few_decisions(capsys, demo_root: Path) -> None:
    ws = str(demo_root)
    review(demo_root, 20)

    code, out, _ = run(capsys, "calibration", "status", "--workspace", ws, "--json")
    assert code == EXIT_OK
    status = json.loads(out)
    assert status["in_use"] == "shipped" and status["versions"] == []
    assert status["approvals"] + status["rejections"] == 20 and not status["eligible"]

    code, out, _ = run(capsys, "calibration", "status", "--workspace", ws)
    assert code == EXIT_OK and "In use: the shipped calibration" in out and "No refit yet" in out

    code, out, err = run(capsys, "calibration", "refit", "--workspace", ws)
    assert (code, out) == (EXIT_ERROR, "")
    assert err.startswith("runbook-desk: error: 20 reviewed decisions so far") and err.count("\n") == 1
    assert "a refit needs 50" in err

    code, _out, err = run(capsys, "calibration", "revert", "--workspace", ws, "--no-analyse")
    assert code == EXIT_ERROR and "no version to revert" in err


def test_refit_adopts_reanalyses_and_revert_goes_back(capsys, demo_root: Path) -> None:
    ws = str(demo_root)
    review(demo_root, 140)
    earlier = add_overconfident_version(demo_root)

    code, out, _ = run(capsys, "calibration", "refit", "--workspace", ws, "--json")

    assert code == EXIT_OK
    refit = json.loads(out)
    assert refit["adopted"] is True, refit["version"]["note"]
    assert refit["version"]["status"] == "in use"
    assert f"your calibration version {earlier}" in refit["version"]["note"]
    assert refit["analysis"]["analysed"] > 0  # the tickets analysed with the old calibration
    [audit] = audits(demo_root, "calibration.refit")
    assert audit.entity_id == refit["version"]["id"]

    code, out, _ = run(capsys, "calibration", "status", "--workspace", ws, "--json")
    status = json.loads(out)
    assert status["in_use"] == refit["version"]["id"] and status["stale_analyses"] == 0
    assert [v["status"] for v in status["versions"]] == ["in use", "replaced"]

    code, out, _ = run(capsys, "calibration", "revert", "--workspace", ws, "--no-analyse")
    assert code == EXIT_OK
    assert f"Reverted version {refit['version']['id']}; in use now: your calibration version {earlier}" in out
    assert "the next `runbook-desk analyze` re-decides" in out
    code, out, _ = run(capsys, "calibration", "status", "--workspace", ws)
    assert "tickets were analysed before the calibration in use" in out
    code, out, _ = run(capsys, "calibration", "revert", "--workspace", ws, "--json")
    reverted = json.loads(out)
    assert code == EXIT_OK and reverted["in_use"] == "shipped" and reverted["analysis"]["analysed"] > 0
    assert len(audits(demo_root, "calibration.revert")) == 2


def test_thresholds_suggest_and_apply(capsys, demo_root: Path) -> None:
    ws = str(demo_root)
    review(demo_root, 12)
    code, out, _ = run(capsys, "thresholds", "suggest", "--workspace", ws, "--json")
    assert code == EXIT_OK
    assert json.loads(out)["suggested"] is None
    code, out, err = run(capsys, "thresholds", "suggest", "--workspace", ws, "--apply")
    assert (code, out) == (EXIT_ERROR, "")
    assert "Too few reviewed decisions" in err and err.count("\n") == 1

    review(demo_root, 140)
    code, out, _ = run(capsys, "thresholds", "suggest", "--workspace", ws, "--precision", "0.9")
    assert code == EXIT_OK
    assert out.startswith("Suggested: link automatically at ")
    assert "threshold  precision  reviewed  coverage" in out and "suggested" in out and "current" in out

    code, out, _ = run(capsys, "thresholds", "suggest", "--workspace", ws, "--apply", "--json")
    assert code == EXIT_OK
    advice = json.loads(out)
    suggested = advice["suggested"]["threshold"]
    assert advice["applied"]["after"]["existing"] == suggested
    assert len(advice["curve"]) == 95
    with Workspace.open(demo_root) as workspace, workspace.session_factory()() as session:
        assert load_settings(session, Thresholds).existing == suggested
    [audit] = audits(demo_root, "settings.thresholds")
    assert audit.after is not None and audit.after["advisor"]["suggested"]["threshold"] == suggested


@pytest.mark.parametrize("value", ["1.5", "0", "ninety"])
def test_a_bad_target_precision_is_a_usage_error(capsys, tmp_path: Path, value: str) -> None:
    code, _out, err = run(
        capsys, "thresholds", "suggest", "--precision", value, "--workspace", str(tmp_path / "ws")
    )
    assert code == EXIT_USAGE
    assert "--precision" in err
