"""Two desktops on one team database: the second builds its own FAISS index from the shared embedding
cache, without sending one text to the model, and finds the same runbooks."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest
from sqlalchemy import make_url

from core.importing import import_runbooks, import_tickets
from core.matching.embedding import SentenceTransformerEmbedder
from core.matching.engine import open_engine
from core.store.db import POSTGRES_KEYRING_SERVICE, postgres_keyring_account
from core.store.workspace import Workspace
from tests.conftest import DEMO_DIR
from tests.helpers.postgres import PgServer

pytestmark = [pytest.mark.team, pytest.mark.slow]


def test_a_second_desktop_never_re_embeds_what_the_first_did(
    team_workspace: Workspace, pg_server: PgServer, tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    sessions = team_workspace.session_factory()
    import_runbooks(sessions, DEMO_DIR / "runbooks", actor="alice")
    import_tickets(sessions, DEMO_DIR / "tickets.csv", actor="alice")
    first = open_engine(team_workspace, "default", embedder)
    first.refresh()
    assert first.embedder.embedded_count > 0
    first.save()

    # Bob's desktop: his own workspace folder (no index yet), the same database.
    url = pg_server.url(str(team_workspace.engine.url.database))
    keyring.set_password(
        POSTGRES_KEYRING_SERVICE, postgres_keyring_account(make_url(url)), pg_server.admin_password
    )
    with Workspace.open(tmp_path / "bob", database_url=url) as bobs:
        second = open_engine(bobs, "default", embedder)
        assert len(second.runbook_index) == 0  # nothing local: the index is this desktop's own
        second.refresh()
        assert second.embedder.embedded_count == 0  # every vector came from the shared cache
        assert len(second.runbook_index) == len(first.runbook_index) > 0
        query = "printer queue stuck, jobs not printing"
        assert [m.runbook_id for m in second.search(query)[:3]] == [
            m.runbook_id for m in first.search(query)[:3]
        ]
