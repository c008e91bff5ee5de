"""Issue 18, item 4: a tenant slug never becomes a path outside the workspace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from core.errors import TenantError
from core.matching.embedding import Embedder
from core.matching.engine import open_engine
from core.store.workspace import TENANT_SLUG_RULE, Workspace, validate_tenant_slug

HOSTILE_SLUGS = (
    "../../escaped/x",
    "zz/../b",
    "..",
    ".",
    "/etc",
    "a/b",
    "a\\b",
    "C:evil",
    "Acme",  # case-insensitive file systems would share "acme"'s folder
    "",
    " acme",
    "-acme",
    "_acme",
    "acme\x00",
    "a" * 64,
    "ac me",
    "acmé",
)


class _NoModel(Embedder):
    """The engine opens its indexes without embedding anything; these tests never search."""

    @property
    def model_id(self) -> str:
        return "no-model"

    @property
    def dimension(self) -> int:
        return 4

    def encode(self, texts: object, batch_size: int = 64) -> np.ndarray:
        raise AssertionError("nothing is embedded here")


@pytest.mark.parametrize("slug", HOSTILE_SLUGS)
def test_a_hostile_slug_is_refused_at_creation_with_the_rule(workspace: Workspace, slug: str) -> None:
    with pytest.raises(TenantError, match="not a valid tenant slug") as caught:
        workspace.ensure_tenant(slug)
    assert TENANT_SLUG_RULE in str(caught.value)
    assert [t.slug for t in workspace.tenants()] == ["default"]


@pytest.mark.parametrize("slug", ["default", "acme", "acme-2", "a_b", "0", "9lives", "a" * 63])
def test_ordinary_slugs_are_accepted(workspace: Workspace, slug: str) -> None:
    assert validate_tenant_slug(slug) == slug
    assert workspace.ensure_tenant(slug).slug == slug


def test_lookup_refuses_a_hostile_slug_before_the_database(workspace: Workspace) -> None:
    with pytest.raises(TenantError, match="not a valid tenant slug"):
        workspace.session_factory("../default")


def test_a_slug_stored_before_the_rule_builds_no_path(workspace: Workspace, tmp_path: Path) -> None:
    """A row written around the rule (an old build, raw SQL) still cannot steer the index folder."""
    with workspace.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tenants (slug, name, settings, created_at, updated_at) "
                "VALUES ('zz/../b', 'x', '{}', '2026-01-01', '2026-01-01')"
            )
        )
    with pytest.raises(TenantError, match="not a valid tenant slug"):
        open_engine(workspace, "zz/../b", _NoModel())
    assert not (workspace.root / "indexes").exists()


def test_index_folder_is_inside_the_workspace(workspace: Workspace) -> None:
    workspace.ensure_tenant("acme")
    folder = workspace.tenant_folder("indexes", "acme")
    assert folder == workspace.root.resolve() / "indexes" / "acme"
    engine = open_engine(workspace, "acme", _NoModel())
    engine.save()
    assert {p.parent for p in (workspace.root / "indexes").rglob("*.faiss")} <= {folder}


def test_a_tenant_folder_linked_out_of_the_workspace_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (workspace.root / "indexes").mkdir()
    (workspace.root / "indexes" / "acme").symlink_to(outside, target_is_directory=True)
    workspace.ensure_tenant("acme")
    with pytest.raises(TenantError, match="outside the workspace"):
        workspace.tenant_folder("indexes", "acme")


@pytest.mark.parametrize("kind", ["../x", "", "a/b", ".."])
def test_the_folder_kind_is_one_plain_name(workspace: Workspace, kind: str) -> None:
    with pytest.raises(ValueError, match="folder"):
        workspace.tenant_folder(kind, "default")


def test_a_kind_folder_linked_out_of_the_workspace_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (workspace.root / "indexes").symlink_to(outside, target_is_directory=True)
    with pytest.raises(TenantError, match="outside the workspace"):
        workspace.tenant_folder("indexes", "default")
