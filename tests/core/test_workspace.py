"""Workspace location, single-instance lock, tenants."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import TenantError, WorkspaceError, WorkspaceLockedError
from core.store.workspace import DB_FILENAME, WORKSPACE_ENV, Workspace, resolve_workspace_dir


def test_explicit_path_wins_over_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WORKSPACE_ENV, str(tmp_path / "from-env"))
    assert resolve_workspace_dir(tmp_path / "explicit") == (tmp_path / "explicit").resolve()
    assert resolve_workspace_dir(None) == (tmp_path / "from-env").resolve()


def test_default_location_is_the_user_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(WORKSPACE_ENV)
    assert str(resolve_workspace_dir(None)).startswith(str(tmp_path / "xdg-data"))


def test_open_creates_database_and_default_tenant(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws") as ws:
        assert (tmp_path / "ws" / DB_FILENAME).is_file()
        assert [t.slug for t in ws.tenants()] == ["default"]


def test_second_open_of_a_locked_workspace_says_so(workspace: Workspace) -> None:
    with pytest.raises(WorkspaceLockedError, match="open in another Runbook Desk"):
        Workspace.open(workspace.root)


def test_lock_is_released_on_close(tmp_path: Path) -> None:
    Workspace.open(tmp_path / "ws").close()
    Workspace.open(tmp_path / "ws").close()


def test_unwritable_location_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    with pytest.raises(WorkspaceError, match="cannot create workspace folder"):
        Workspace.open(blocker / "ws")


def test_unknown_tenant_names_the_known_ones(workspace: Workspace) -> None:
    with pytest.raises(TenantError, match="known: default"):
        workspace.session_factory("nope")
