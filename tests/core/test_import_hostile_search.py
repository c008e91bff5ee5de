"""Search text is text (issue 18, item 17): LIKE wildcards match only themselves, and length is capped."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.importing import import_runbooks, import_tickets
from core.store.repository import list_runbooks, list_tickets

CSV = (
    "number,short_description,description\n"
    "INC1,CPU at 100% on srv-1,load\n"
    "INC2,user_name locked out,ad\n"
    "INC3,disk full,df shows 100 percent\n"
    "INC4,Path C:\\temp\\a/b missing,share\n"
)


@pytest.fixture
def stored(sessions, tmp_path: Path):
    path = tmp_path / "incidents.csv"
    path.write_text(CSV, encoding="utf-8")
    import_tickets(sessions, path)
    folder = tmp_path / "rb"
    folder.mkdir()
    (folder / "cpu.md").write_text("# CPU at 100%\n\nFind the process.\n", encoding="utf-8")
    (folder / "disk.md").write_text("# Disk full\n\nClean up.\n", encoding="utf-8")
    import_runbooks(sessions, folder)
    return sessions


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("%", ["INC1"]),
        ("_", ["INC2"]),
        ("100%", ["INC1"]),
        ("100", ["INC1", "INC3"]),
        ("USER_NAME", ["INC2"]),
        ("\\temp\\a/b", ["INC4"]),
        ("/", ["INC4"]),
    ],
)
def test_wildcards_and_escape_characters_match_only_themselves(
    stored, search: str, expected: list[str]
) -> None:
    with stored() as s:
        assert sorted(t.external_id for t in list_tickets(s, search=search)) == expected


def test_runbook_search_escapes_wildcards_too(stored) -> None:
    with stored() as s:
        assert [r.title for r in list_runbooks(s, search="%")] == ["CPU at 100%"]
        assert [r.title for r in list_runbooks(s, search="_")] == []


def test_a_search_longer_than_the_limit_is_refused_with_a_message(stored) -> None:
    from core.errors import SearchTooLongError
    from core.store.repository import MAX_SEARCH_CHARS

    with stored() as s:
        assert list_tickets(s, search="x" * MAX_SEARCH_CHARS) == []  # at the limit: searched
        with pytest.raises(SearchTooLongError, match="102,400 characters; the limit is 1,000"):
            list_tickets(s, search="x" * 102_400)
        with pytest.raises(SearchTooLongError):
            list_runbooks(s, search="%" * 5000)
