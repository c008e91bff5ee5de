"""No input crashes the importers with anything but a reported error."""

from __future__ import annotations

import io
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core.errors import ImportFailedError
from core.importing import import_runbooks, import_tickets
from core.importing.readers import RecordError, TextSource, iter_csv, read_csv_header
from core.importing.runbooks import most_sections
from core.matching.text import split_runbook_sections
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
    message: str | None = None
    try:
        summary = (import_runbooks if runbooks else import_tickets)(sessions, path)
    except ImportFailedError as exc:
        message = str(exc)
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


NO_TEXT = str.maketrans("", "", ' ,"\t\r\n')
quote_cell = st.text(alphabet=st.sampled_from('ab ,"\n'), min_size=0, max_size=8)


@FUZZ
@given(
    rows=st.lists(st.tuples(st.integers(0, 999), quote_cell, quote_cell), min_size=1, max_size=25),
    blank_after=st.sets(st.integers(0, 24), max_size=3),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_csv_records_account_for_every_line_once(
    tmp_path: Path, rows: list[tuple[int, str, str]], blank_after: set[int], newline: str
) -> None:
    """Stray, unclosed and multi-line quotes anywhere: every line of the file belongs to exactly one row or
    rejection, in order (issue 18: nothing is lost silently, so inserted + rejected is the rows of the file).
    A rejection is the one line where a quote opened, so the lines after it are rows again; a row of several
    lines has the header's fields; a line without a quote that no such row took is read as it stands."""
    header = ["number", "short_description", "description"]
    text = (
        newline.join(
            [",".join(header)]
            + [
                f"INC{number},{title},{description}" + (newline if n in blank_after else "")
                for n, (number, title, description) in enumerate(rows)
            ]
        )
        + newline
    )
    path = tmp_path / "fuzz.csv"
    path.write_text(text, encoding="utf-8", newline="")
    lines = [line.rstrip("\r\n") for line in io.StringIO(text, newline="")]  # as the reader numbers them
    with TextSource(path) as source:
        records = list(iter_csv(source, read_csv_header(source)))

    def empty(line: str) -> bool:  # holds no cell text, so it may be skipped: blank lines, ",,", '""'
        return not line.translate(NO_TEXT)

    next_line = 2
    for record in records:
        first, _, last = record.location.removeprefix("lines ").removeprefix("line ").partition("-")
        span = range(int(first), int(last or first) + 1)
        assert all(empty(lines[n - 1]) for n in range(next_line, span.start)), "only empty rows are skipped"
        next_line = span.stop
        line = lines[span.start - 1]
        assert line.strip(), "no row or rejection starts on a blank line"
        if isinstance(record, RecordError):
            assert len(span) == 1, "a rejection is one line"
            assert '"' in line or "fields but the header has" in record.reason
        elif len(span) > 1:
            assert len(record.fields) == len(header)
        elif '"' not in line:
            assert record.fields == dict(zip(header, line.split(","), strict=False))
    assert all(empty(line) for line in lines[next_line - 1 :]), "every line after the last record is empty"


WORDS = ["a", "ab12", "é", "!", "!" * 120, "9" * 250, "x" * 300, "<i>", "`c d`", "[a](b)", "|", "*", "12.5"]
LINES = ["\n", "\r", "\r\n", "\n# h\n", "\nh\n===\n", "\n---\n", "\n```\n", "\n    # in code\n", "\n## \n"]
markdown_piece = st.sampled_from([*WORDS, *LINES])


@FUZZ
@given(pieces=st.lists(st.tuples(markdown_piece, st.sampled_from(["", " ", "\n"])), max_size=400))
def test_the_section_bound_is_never_below_the_real_count(pieces: list[tuple[str, str]]) -> None:
    """The import skips splitting a runbook whose bound is within the limit: the bound must hold."""
    body = "".join(piece + gap for piece, gap in pieces)
    assert most_sections(body) >= len(split_runbook_sections(body, "Title"))
