"""``runbook-desk connectors ...`` end to end through main(), against the tiny fake."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.testing.fake_system import InjectedFailure
from desktop.cli.main import EXIT_ERROR, EXIT_OK, main
from tests.connectors.tiny_connector import GOOD_TOKEN, FakeTiny
from tests.helpers.memory_keyring import MemoryKeyring

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def ws(tmp_path: Path) -> str:
    return str(tmp_path / "ws")


@pytest.fixture
def added(
    tiny: FakeTiny, capsys: pytest.CaptureFixture[str], ws: str, monkeypatch: pytest.MonkeyPatch
) -> str:
    monkeypatch.setenv("RUNBOOK_DESK_SECRET_TOKEN", GOOD_TOKEN)
    code, out, err = run(
        capsys, "connectors", "add", "tiny", "--name", "Tiny prod", "--url", tiny.base_url,
        "--option", "queue=ops", "--option", "verbose=yes", "--workspace", ws,
    )  # fmt: skip
    assert (code, err) == (EXIT_OK, ""), err
    assert out.strip() == f"added Tiny prod (tiny, {tiny.base_url})"
    return ws


def test_types_lists_the_registry(tiny: FakeTiny, capsys: pytest.CaptureFixture[str], ws: str) -> None:
    code, out, _ = run(capsys, "connectors", "types", "--json")
    assert code == EXIT_OK
    assert json.loads(out) == [
        {
            "type": "tiny",
            "name": "Tiny Tracker",
            "kind": "ticketing",
            "auth_modes": ["token"],
            "options": ["queue", "verbose"],
            "secrets": ["token"],
        }
    ]


def test_add_list_check_sync_remove(
    tiny: FakeTiny, capsys: pytest.CaptureFixture[str], added: str, memory_keyring: MemoryKeyring
) -> None:
    ws = added
    assert list(memory_keyring.entries.values()) == [GOOD_TOKEN]
    code, out, _ = run(capsys, "connectors", "list", "--workspace", ws, "--json")
    (listed,) = json.loads(out)
    assert listed["options"] == {"queue": "ops", "verbose": True}
    assert GOOD_TOKEN not in out

    code, out, _ = run(capsys, "connectors", "check", "Tiny prod", "--workspace", ws)
    assert (code, out.strip()) == (EXIT_OK, "Tiny prod: Tiny prod: connected and allowed to read")

    for number in range(1, 8):
        tiny.add_ticket(tiny.new_ticket(number, datetime(2026, 2, 1, tzinfo=UTC) + timedelta(minutes=number)))
    code, out, _ = run(capsys, "connectors", "sync", "Tiny prod", "--workspace", ws, "--json")
    report = json.loads(out)
    assert (code, report["status"], report["new"], report["pages"]) == (EXIT_OK, "succeeded", 7, 2)
    code, out, _ = run(capsys, "connectors", "sync", "Tiny prod", "--full", "--workspace", ws)
    assert code == EXIT_OK and out.startswith("Tiny prod: synced: 0 new, 0 updated, 7 unchanged, 0 failed")

    code, out, _ = run(capsys, "connectors", "remove", "Tiny prod", "--purge-tickets", "--workspace", ws)
    assert (code, out.strip()) == (EXIT_OK, "removed Tiny prod: 7 tickets deleted, 0 kept")
    assert memory_keyring.entries == {}
    code, out, _ = run(capsys, "tickets", "list", "--workspace", ws, "--json")
    assert json.loads(out) == []


def test_a_failed_sync_exits_1_with_the_error(
    tiny: FakeTiny, capsys: pytest.CaptureFixture[str], added: str
) -> None:
    tiny.fail_next(InjectedFailure(403, message="role itil missing"))
    code, out, err = run(capsys, "connectors", "sync", "Tiny prod", "--workspace", added)
    assert (code, out) == (EXIT_ERROR, "")
    assert err.startswith("runbook-desk: error: Tiny prod: sync failed: 0 new")
    assert err.rstrip().endswith("HTTP 403 on GET /api/tickets: role itil missing")


def test_check_with_a_wrong_token_exits_1_with_a_hint(
    tiny: FakeTiny, capsys: pytest.CaptureFixture[str], ws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNBOOK_DESK_SECRET_TOKEN", "wrong-token-123")
    run(capsys, "connectors", "add", "tiny", "--name", "t", "--url", tiny.base_url, "--workspace", ws)
    code, _, err = run(capsys, "connectors", "check", "t", "--workspace", ws)
    assert code == EXIT_ERROR
    assert "HTTP 401 on GET /api/me: invalid token" in err
    assert "hint: The credentials were refused" in err
    assert "wrong-token-123" not in err


def test_secrets_never_come_from_arguments_and_a_missing_one_is_explained(
    tiny: FakeTiny, capsys: pytest.CaptureFixture[str], ws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNBOOK_DESK_SECRET_TOKEN", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, _, err = run(
        capsys, "connectors", "add", "tiny", "--name", "t", "--url", tiny.base_url, "--workspace", ws
    )
    assert code == EXIT_ERROR
    assert "set RUNBOOK_DESK_SECRET_TOKEN or run the command in a terminal" in err
    code, _, err = run(
        capsys, "connectors", "add", "tiny", "--name", "t", "--url", tiny.base_url,
        "--option", f"token={GOOD_TOKEN}", "--workspace", ws,
    )  # fmt: skip
    assert code == EXIT_ERROR and "'token' is a secret" in err


def test_the_secret_is_read_from_a_hidden_prompt_in_a_terminal(
    tiny: FakeTiny,
    capsys: pytest.CaptureFixture[str],
    ws: str,
    monkeypatch: pytest.MonkeyPatch,
    memory_keyring: MemoryKeyring,
) -> None:
    monkeypatch.delenv("RUNBOOK_DESK_SECRET_TOKEN", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    prompts: list[str] = []
    monkeypatch.setattr("getpass.getpass", lambda prompt: prompts.append(prompt) or GOOD_TOKEN)
    code, _, _ = run(
        capsys, "connectors", "add", "tiny", "--name", "t", "--url", tiny.base_url, "--workspace", ws
    )
    assert code == EXIT_OK
    assert prompts == ["API token: "]
    assert list(memory_keyring.entries.values()) == [GOOD_TOKEN]


def test_unknown_names_and_options_are_one_line_errors(
    tiny: FakeTiny, capsys: pytest.CaptureFixture[str], added: str
) -> None:
    code, _, err = run(capsys, "connectors", "sync", "nope", "--workspace", added)
    assert (code, err.count("\n")) == (EXIT_ERROR, 1)
    assert "nope: no such connector" in err
    code, _, err = run(
        capsys, "connectors", "add", "tiny", "--name", "x", "--url", "https://x", "--option", "colour=red",
        "--workspace", added,
    )  # fmt: skip
    assert "unknown option 'colour' for tiny (known: queue, verbose)" in err
    code, _, err = run(
        capsys, "connectors", "add", "nosuch", "--name", "x", "--url", "https://x", "--workspace", added
    )
    assert code == EXIT_ERROR and "unknown connector type (known: tiny)" in err


def test_an_installed_plugin_is_a_type_and_a_broken_one_is_listed_not_fatal(tmp_path: Path) -> None:
    """The plugin packages pip-installed (no network, no build isolation) into a folder on PYTHONPATH: what
    an analyst's ``pip install acme-runbook-desk-connector`` does, without touching this venv."""
    sources = tmp_path / "src"
    for package in ("example_plugin", "broken_plugin"):  # a copy: building writes egg-info beside the source
        shutil.copytree(PLUGINS / package, sources / package)
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(sources / "example_plugin"), str(sources / "broken_plugin")],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": str(target)}
    cli = Path(sys.executable).with_name("runbook-desk")

    listed = subprocess.run(
        [str(cli), "connectors", "types"], capture_output=True, text=True, env=environment, timeout=120
    )
    assert listed.returncode == EXIT_OK, listed.stderr
    types = [
        line.split()[0] for line in listed.stdout.splitlines() if not line.startswith("connector plugin")
    ]
    assert sorted(types) == [
        "confluence",
        "datadog",
        "example_itsm",
        "jira",
        "remedy",
        "servicedesk_plus",
        "servicedesk_plus_solutions",
        "servicenow",
        "servicenow_kb",
        "solarwinds",
        "zabbix",
    ]
    skipped = [line for line in listed.stdout.splitlines() if line.startswith("connector plugin")]
    assert [line.split("'")[1].split(" =")[0] for line in skipped] == [
        "not_a_connector",
        "raises_on_import",
        "servicenow_again",
    ]
    assert all("(from rd-broken-plugin 0.1.0) not loaded: " in line for line in skipped)
    assert listed.stderr.count("not loaded") == 3  # logged once each

    as_json = subprocess.run(
        [str(cli), "connectors", "types", "--json"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert as_json.returncode == EXIT_OK
    example = next(entry for entry in json.loads(as_json.stdout) if entry["type"] == "example_itsm")
    assert example == {
        "type": "example_itsm",
        "name": "Example ITSM",
        "kind": "ticketing",
        "auth_modes": ["token"],
        "options": [],
        "secrets": ["token"],
    }


def test_run_once_syncs_what_is_due_and_then_nothing(
    tiny: FakeTiny, capsys: pytest.CaptureFixture[str], added: str
) -> None:
    """The headless scheduler (``connectors run``) follows the desktop's rule: a never-synced connector is
    due at once; right after its sync it is not due again until its interval has passed."""
    for number in range(1, 4):
        tiny.add_ticket(tiny.new_ticket(number, datetime(2026, 2, 1, tzinfo=UTC) + timedelta(minutes=number)))
    code, out, err = run(capsys, "connectors", "run", "--once", "--workspace", added, "--json")
    assert (code, err) == (EXIT_OK, "")
    report = json.loads(out)
    assert (report["config_name"], report["status"], report["new"]) == ("Tiny prod", "succeeded", 3)

    code, out, _ = run(capsys, "connectors", "run", "--once", "--workspace", added)
    assert (code, out.strip()) == (EXIT_OK, "no connector is due")


def test_run_once_exits_1_when_a_sync_fails(
    tiny: FakeTiny, capsys: pytest.CaptureFixture[str], added: str
) -> None:
    tiny.fail_next(InjectedFailure(403, message="role itil missing"))
    code, out, _ = run(capsys, "connectors", "run", "--once", "--workspace", added)
    assert code == EXIT_ERROR
    assert out.startswith("Tiny prod: sync failed")


INSECURE_URL = "http://tiny.example.com"


@pytest.fixture
def insecure_tiny(tiny: FakeTiny, monkeypatch: pytest.MonkeyPatch) -> FakeTiny:
    """The tiny fake answering a plain-http address too."""
    monkeypatch.setitem(FakeTiny.serving, INSECURE_URL, tiny)
    monkeypatch.setenv("RUNBOOK_DESK_SECRET_TOKEN", GOOD_TOKEN)
    return tiny


def test_plain_http_with_credentials_is_refused_before_any_prompt(
    insecure_tiny: FakeTiny,
    capsys: pytest.CaptureFixture[str],
    ws: str,
    monkeypatch: pytest.MonkeyPatch,
    memory_keyring: MemoryKeyring,
) -> None:
    """Issue 18, item 5: basic credentials or a token over http:// cross the network in clear text."""
    monkeypatch.delenv("RUNBOOK_DESK_SECRET_TOKEN")
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt: pytest.fail(f"asked {prompt!r} before refusing"))
    code, out, err = run(
        capsys, "connectors", "add", "tiny", "--name", "t", "--url", INSECURE_URL, "--workspace", ws
    )
    assert (code, out, err.count("\n")) == (EXIT_ERROR, "", 1)
    assert err.startswith(f"runbook-desk: error: t: {INSECURE_URL} is plain http://")
    assert "credentials would cross the network in clear text" in err
    assert "--allow-insecure-http" in err
    assert memory_keyring.entries == {}
    code, out, _ = run(capsys, "connectors", "list", "--workspace", ws, "--json")
    assert json.loads(out) == []


def test_plain_http_works_only_where_the_flag_accepts_it(
    insecure_tiny: FakeTiny, capsys: pytest.CaptureFixture[str], ws: str
) -> None:
    flag = "--allow-insecure-http"
    code, _, err = run(
        capsys, "connectors", "add", "tiny", "--name", "t", "--url", INSECURE_URL, flag, "--workspace", ws
    )
    assert (code, err) == (EXIT_OK, "")
    insecure_tiny.add_ticket(insecure_tiny.new_ticket(1, datetime(2026, 2, 1, tzinfo=UTC)))
    for command in (("check", "t"), ("sync", "t"), ("run", "--once")):
        code, out, err = run(capsys, "connectors", *command, "--workspace", ws)
        assert (code, out) == (EXIT_ERROR, ""), command
        assert "is plain http://" in err and flag in err, command
    assert insecure_tiny.requests == []  # nothing was sent, credentials or not
    code, out, _ = run(capsys, "connectors", "check", "t", flag, "--workspace", ws)
    assert (code, out.strip()) == (EXIT_OK, "t: t: connected and allowed to read")
    code, out, _ = run(capsys, "connectors", "sync", "t", flag, "--workspace", ws, "--json")
    assert (code, json.loads(out)["new"]) == (EXIT_OK, 1)
    code, out, _ = run(capsys, "connectors", "run", "--once", flag, "--workspace", ws)
    assert (code, out.strip()) == (EXIT_OK, "no connector is due")
