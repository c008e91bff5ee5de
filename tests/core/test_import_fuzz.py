"""No input crashes the importers with anything but a reported error."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core.errors import ImportFailedError
from core.importing import import_runbooks, import_tickets
from core.store.models import Ticket
from core.store.workspace import Workspace

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
HEADERS = ["number", "short_description", "description", "priority", "sys_created_on", "Issue key", "Summary"]
cell = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", '"', '""', "\n", "\r\n", ";", ",", "1 - Critical", "2026-13-45 99:99:99", "\x00"]),
)


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    header = draw(st.lists(st.sampled_from(HEADERS), min_size=1, max_size=6, unique=True))
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    rows = draw(st.lists(st.lists(cell, min_size=0, max_size=len(header) + 2), max_size=8))
    lines = [delimiter.join(header)] + [delimiter.join(row) for row in rows]
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.booleans()):  # damage it
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + draw(st.binary(max_size=8)) + data[cut:]
    return data


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from([*HEADERS, "x"]), inner, max_size=5)
    ),
    max_leaves=20,
)


def attempt(workspace: Workspace, path: Path, *, runbooks: bool = False) -> None:
    sessions = workspace.session_factory()
    with sessions() as s:
        before = s.scalar(select(func.count()).select_from(Ticket))
    try:
        summary = (import_runbooks if runbooks else import_tickets)(sessions, path)
    except ImportFailedError as exc:
        message = str(exc)
    else:
        message = None
    if message is not None:  # refused: the message names the file and nothing was written
        assert path.name in message
        with sessions() as s:
            assert s.scalar(select(func.count()).select_from(Ticket)) == before
        return
    assert summary.total >= summary.inserted + summary.updated + summary.unchanged
    assert all(row.reason for row in summary.rejected)


@FUZZ
@given(data=csv_files())
def test_csv_ticket_import_never_crashes(workspace: Workspace, tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    attempt(workspace, path)


@FUZZ
@given(value=json_values, as_lines=st.booleans(), cut=st.integers(0, 200))
def test_json_ticket_import_never_crashes(
    workspace: Workspace, tmp_path: Path, value: object, as_lines: bool, cut: int
) -> None:
    text = json.dumps(value)
    if as_lines:
        path = tmp_path / "fuzz.jsonl"
        path.write_text("\n".join([text, text[:cut]]), encoding="utf-8")
    else:
        path = tmp_path / "fuzz.json"
        path.write_text(text[: max(cut, 1)] if cut < len(text) else text, encoding="utf-8")
    attempt(workspace, path)


@FUZZ
@given(front=st.text(max_size=60), body=st.text(max_size=60))
def test_markdown_runbook_import_never_crashes(
    workspace: Workspace, tmp_path: Path, front: str, body: str
) -> None:
    root = tmp_path / "md"
    root.mkdir(exist_ok=True)
    (root / "r.md").write_text(f"---\n{front}\n---\n{body}", encoding="utf-8")
    attempt(workspace, root, runbooks=True)
