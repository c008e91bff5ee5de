"""The CLI facing hostile input (issue 18): one-line errors, printable output, progress on long work."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from desktop.cli.common import EXIT_ERROR, EXIT_OK, EXIT_REJECTED_ROWS
from desktop.cli.main import main

CSV = "number,short_description,description\nINC1,VPN drops,x\nINC2,Outlook asks for a password,y\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def ws(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> str:
    export = tmp_path / "incidents.csv"
    export.write_text(CSV, encoding="utf-8")
    workspace = str(tmp_path / "ws")
    assert run(capsys, "import", "tickets", str(export), "--workspace", workspace)[0] == EXIT_OK
    return workspace


def test_a_100_kb_search_is_one_line_error_not_a_traceback(capsys, ws: str) -> None:
    code, out, err = run(capsys, "tickets", "list", "--workspace", ws, "--search", "x" * 100_000)
    assert (code, out) == (EXIT_ERROR, "")
    assert err == "runbook-desk: error: the search text is 100,000 characters; the limit is 1,000\n"
    code, _, err = run(capsys, "runbooks", "list", "--workspace", ws, "--search", "y" * 2000)
    assert code == EXIT_ERROR and "the limit is 1,000" in err


@pytest.mark.parametrize("wildcard", ["%", "_", "%%", "V_N"])
def test_like_wildcards_do_not_match_every_ticket(capsys, ws: str, wildcard: str) -> None:
    code, out, _ = run(capsys, "tickets", "list", "--workspace", ws, "--search", wildcard)
    assert (code, out.strip()) == (EXIT_OK, "no tickets")


def test_a_folder_with_a_non_utf8_file_name_prints_clean_json(capsys, tmp_path: Path) -> None:
    folder = tmp_path / "rb"
    folder.mkdir()
    (folder / "ok.md").write_text("# Disk full\n\n1. df -h\n", encoding="utf-8")
    try:
        descriptor = os.open(os.fsencode(folder) + b"/caf\xe9.md", os.O_WRONLY | os.O_CREAT, 0o644)
    except (OSError, ValueError) as exc:
        pytest.skip(f"this file system refuses a non-UTF-8 name: {exc}")
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write("# Cafe\n\nbody\n")
    code, out, _ = run(
        capsys, "import", "runbooks", str(folder), "--workspace", str(tmp_path / "w"), "--json"
    )
    assert code == EXIT_REJECTED_ROWS
    result = json.loads(out)
    assert result["inserted"] == 1
    assert [(r["file"], r["location"]) for r in result["rejected_rows"]] == [("caf\\xe9.md", "file")]


def test_a_runbook_link_out_of_the_folder_is_named_on_stderr(capsys, tmp_path: Path) -> None:
    folder = tmp_path / "rb"
    folder.mkdir()
    (folder / "ok.md").write_text("# Disk full\n\n1. df -h\n", encoding="utf-8")
    outside = tmp_path / "passwd"
    outside.write_text("root:x:0:0\n", encoding="utf-8")
    try:
        (folder / "passwd.md").symlink_to(outside)
    except OSError as exc:
        pytest.skip(f"cannot create links here: {exc}")
    code, out, err = run(capsys, "import", "runbooks", str(folder), "--workspace", str(tmp_path / "w"))
    assert code == EXIT_REJECTED_ROWS
    assert "1 inserted" in out
    assert f"rejected: passwd.md, file: a link to {outside}, outside the folder: not followed" in err


@pytest.mark.slow
def test_analyze_shows_the_index_being_built(capsys, monkeypatch, tmp_path: Path, embedder) -> None:
    """The first analysis embeds every runbook section before any ticket: that wait shows progress too."""
    import core.matching.embedding_onnx

    monkeypatch.setattr(core.matching.embedding_onnx, "default_embedder", lambda: embedder)
    folder = tmp_path / "rb"
    folder.mkdir()
    for name, title in (("vpn", "VPN drops"), ("outlook", "Outlook password prompt")):
        (folder / f"{name}.md").write_text(f"# {title}\n\n## Fix\n\nRestart the client.\n", encoding="utf-8")
    export = tmp_path / "incidents.csv"
    export.write_text(CSV, encoding="utf-8")
    ws = str(tmp_path / "ws")
    assert run(capsys, "import", "runbooks", str(folder), "--workspace", ws)[0] == EXIT_OK
    assert run(capsys, "import", "tickets", str(export), "--workspace", ws)[0] == EXIT_OK
    code, out, err = run(capsys, "analyze", "--workspace", ws, "--progress")
    assert code == EXIT_OK and "analysed 2 tickets" in out
    assert err.splitlines() == [
        "100% indexed 4 of 4 runbook sections",
        "100% indexed 2 of 2 tickets",
        "100% analysed 2 of 2 tickets",
    ]
    code, _, err = run(capsys, "index", "rebuild", "--workspace", ws, "--progress")
    assert code == EXIT_OK and "100% indexed 4 of 4 runbook sections" in err
