"""Files a hostile (or careless) world hands the importers: issue 18, bad input.

Each refusal names the file and the place, and one refused file, row or record never stops the rest.
``core.importing.limits`` is imported inside the tests that need it, so each test stands on its own.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from core.importing import import_runbooks, import_tickets, readers
from core.importing.readers import RecordError, SourceRecord, TextSource, iter_csv, read_csv_header
from core.store.models import AuditEvent, Runbook, Ticket
from tests.conftest import DEMO_DIR

if TYPE_CHECKING:
    from sqlalchemy.orm import sessionmaker

    from core.store.tenancy import TenantSession

    Sessions = sessionmaker[TenantSession]

HEADER = "number,short_description,description,priority"


def runbook_refs(sessions) -> list[str]:
    with sessions() as s:
        return sorted(r.external_ref or "" for r in s.scalars(select(Runbook)))


def ticket_ids(sessions) -> list[str]:
    with sessions() as s:
        return sorted(s.scalars(select(Ticket.external_id)))


def md(n: int) -> str:
    return f"# Runbook {n}\n\n1. Step {n}.\n"


def rejected(summary) -> dict[str, tuple[str, str]]:
    return {r.file: (r.location, r.reason) for r in summary.rejected}


def symlink(link: Path, target: Path) -> None:
    try:
        link.symlink_to(target, target_is_directory=target.is_dir())
    except OSError as exc:  # Windows without the privilege
        pytest.skip(f"cannot create links here: {exc}")


# --- Item 2: links out of the folder ------------------------------------------------------------------


def test_links_out_of_the_folder_are_not_followed_and_each_is_named(sessions, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    (outside / "notes.md").write_text("# Private notes\n\nnot for the runbook list\n", encoding="utf-8")
    root = tmp_path / "rb"
    (root / "net").mkdir(parents=True)
    (root / "good.md").write_text(md(1), encoding="utf-8")
    (root / "net" / "dns.md").write_text(md(2), encoding="utf-8")
    symlink(root / "passwd.md", outside / "passwd")
    symlink(root / "private", outside)  # a linked folder leading out
    symlink(root / "net" / "up.md", root / "good.md")  # a link that stays inside: followed
    symlink(root / "gone.md", tmp_path / "nowhere.md")
    summary = import_runbooks(sessions, root)
    assert runbook_refs(sessions) == ["good.md", "net/dns.md", "net/up.md"]
    with sessions() as s:
        assert not [b for b in s.scalars(select(Runbook.body)) if "root:x" in b or "Private" in b]
    skipped = rejected(summary)
    assert set(skipped) == {"passwd.md", "private", "gone.md"}
    assert skipped["passwd.md"][0] == "file"
    assert "outside the folder: not followed" in skipped["passwd.md"][1]
    assert str(outside / "passwd") in skipped["passwd.md"][1]
    assert skipped["private"] == ("folder", f"a link to {outside}, outside the folder: not entered")
    assert "broken link" in skipped["gone.md"][1]
    assert (summary.inserted, summary.rejected_count) == (3, 3)


def test_a_folder_of_only_outside_links_imports_nothing_and_says_why(sessions, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password=hunter2\n", encoding="utf-8")
    root = tmp_path / "rb"
    root.mkdir()
    symlink(root / "a.md", secret)
    summary = import_runbooks(sessions, root)
    assert (summary.inserted, summary.rejected_count) == (0, 1)
    assert runbook_refs(sessions) == []


# --- Item 14: file names that are not UTF-8 --------------------------------------------------------------


def test_a_file_name_that_is_not_utf8_is_reported_and_the_rest_are_imported(sessions, tmp_path: Path) -> None:
    root = tmp_path / "rb"
    root.mkdir()
    for n in range(10):
        name = os.fsencode(root) + (b"/r%d\xff.md" % n if n == 3 else b"/r%d.md" % n)
        try:
            descriptor = os.open(name, os.O_WRONLY | os.O_CREAT, 0o644)
        except (OSError, ValueError) as exc:  # macOS and Windows refuse such names
            pytest.skip(f"this file system refuses a non-UTF-8 name: {exc}")
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(md(n))
    summary = import_runbooks(sessions, root)
    assert summary.inserted == 9
    assert [(r.file, r.location) for r in summary.rejected] == [("r3\\xff.md", "file")]
    assert "not valid UTF-8" in summary.rejected[0].reason
    json.dumps(summary.as_dict(), ensure_ascii=False).encode("utf-8")  # printable and storable as it is
    assert "r9.md" in runbook_refs(sessions)


# --- Item 11: YAML front matter -------------------------------------------------------------------------

BOMB = """---
title: Laughs
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
tags: [*d, *d, *d, *d, *d, *d, *d, *d, *d]
---
# Laughs

body
"""


def test_a_yaml_alias_bomb_is_refused_at_its_first_alias(sessions, tmp_path: Path) -> None:
    root = tmp_path / "rb"
    root.mkdir()
    (root / "bomb.md").write_text(BOMB, encoding="utf-8")
    (root / "fine.md").write_text(md(1), encoding="utf-8")
    (root / "anchor.md").write_text("---\ntitle: &t Anchored\n---\nbody\n", encoding="utf-8")
    summary = import_runbooks(sessions, root)
    assert runbook_refs(sessions) == ["fine.md"]
    reasons = rejected(summary)
    assert reasons["bomb.md"][0] == "line 3"
    assert "anchors (&a) are not allowed in front matter" in reasons["bomb.md"][1]
    assert "anchors (&t) are not allowed" in reasons["anchor.md"][1]


def test_an_alias_without_an_anchor_is_refused_too(sessions, tmp_path: Path) -> None:
    root = tmp_path / "rb"
    root.mkdir()
    (root / "alias.md").write_text("---\ntitle: x\ntags: [*nothing]\n---\nbody\n", encoding="utf-8")
    summary = import_runbooks(sessions, root)
    assert summary.inserted == 0
    assert "alias" in summary.rejected[0].reason


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        ("notes: '" + "x" * 20_000 + "'", "the front matter is 20,009 bytes; the limit is 16,384"),
        ("tags: " + "[" * 5000 + "]" * 5000, "nested more than 16 levels deep"),
        ("tags: [" + ", ".join(f"t{i}" for i in range(60)) + "]", "60 tags; the limit is 50"),
        ("tags: [" + "y" * 200 + "]", "a tag of 200 characters"),
        ("title: " + "T" * 600, "the title is 600 characters; the limit is 500"),
        ("service: " + "S" * 300, "the service is 300 characters; the limit is 200"),
    ],
    ids=["front-matter-size", "nesting", "tag-count", "tag-length", "title", "service"],
)
def test_front_matter_beyond_a_limit_is_refused_naming_it(
    sessions, tmp_path: Path, front: str, expected: str
) -> None:
    root = tmp_path / "rb"
    root.mkdir()
    (root / "big.md").write_text(f"---\n{front}\n---\n# Title\n\nbody\n", encoding="utf-8")
    (root / "ok.md").write_text(md(1), encoding="utf-8")
    summary = import_runbooks(sessions, root)
    assert runbook_refs(sessions) == ["ok.md"]
    assert [r.file for r in summary.rejected] == ["big.md"]
    assert expected in summary.rejected[0].reason


def test_tags_of_a_csv_runbook_are_bounded_too(sessions, tmp_path: Path) -> None:
    path = tmp_path / "kb.csv"
    many = ";".join(f"t{i}" for i in range(60))
    path.write_text(
        f"id,title,body,tags\nKB1,Printer,restart it,{many}\nKB2,Disk,df -h,disk\n", encoding="utf-8"
    )
    summary = import_runbooks(sessions, path)
    assert runbook_refs(sessions) == ["KB2"]
    assert [(r.file, r.location) for r in summary.rejected] == [("kb.csv", "line 2")]
    assert "60 tags" in summary.rejected[0].reason


# --- Item 12: one huge runbook ----------------------------------------------------------------------------


def test_a_runbook_file_over_the_size_limit_is_refused_naming_it(sessions, tmp_path: Path) -> None:
    root = tmp_path / "rb"
    root.mkdir()
    paragraph = "Check the service and restart it when it hangs. " * 20 + "\n\n"
    (root / "huge.md").write_text("# Huge\n\n" + paragraph * 1100, encoding="utf-8")
    (root / "ok.md").write_text(md(1), encoding="utf-8")
    size = (root / "huge.md").stat().st_size
    assert size > 1024 * 1024
    summary = import_runbooks(sessions, root)
    assert runbook_refs(sessions) == ["ok.md"]
    assert [(r.file, r.location) for r in summary.rejected] == [("huge.md", "file")]
    assert f"the file is {size:,} bytes; the limit for one runbook is 1,048,576" in summary.rejected[0].reason


def test_a_runbook_with_too_many_sections_is_refused(sessions, tmp_path: Path) -> None:
    root = tmp_path / "rb"
    root.mkdir()
    (root / "many.md").write_text(
        "# Many\n\n" + "".join(f"## Step {i}\n\nDo thing {i}.\n\n" for i in range(600)), encoding="utf-8"
    )
    (root / "ok.md").write_text(md(1), encoding="utf-8")
    summary = import_runbooks(sessions, root)
    assert runbook_refs(sessions) == ["ok.md"]
    assert "601 sections to index; the limit is 500" in rejected(summary)["many.md"][1]


def test_a_json_runbook_with_a_huge_body_is_refused_and_the_next_imported(sessions, tmp_path: Path) -> None:
    path = tmp_path / "kb.json"
    rows = [{"id": "big", "title": "Big", "body": "x" * 1_200_000}, {"id": "ok", "title": "Ok", "body": "df"}]
    path.write_text(json.dumps(rows), encoding="utf-8")
    summary = import_runbooks(sessions, path)
    assert runbook_refs(sessions) == ["ok"]
    assert [(r.file, r.location) for r in summary.rejected] == [("kb.json", "record 1")]
    assert "the body is 1,200,000 bytes" in summary.rejected[0].reason


def test_the_limits_are_a_tenant_setting(sessions, tmp_path: Path) -> None:
    from core.importing.limits import ImportLimits
    from core.settings import load_settings, save_settings

    with sessions.begin() as s:
        save_settings(s, ImportLimits(runbook_max_sections=3), actor="admin")
    with sessions() as s:
        assert load_settings(s, ImportLimits).runbook_max_sections == 3
    root = tmp_path / "rb"
    root.mkdir()
    (root / "four.md").write_text("# Four\n\n## A\na\n\n## B\nb\n\n## C\nc\n", encoding="utf-8")
    (root / "two.md").write_text("# Two\n\n## A\na\n", encoding="utf-8")
    summary = import_runbooks(sessions, root)
    assert runbook_refs(sessions) == ["two.md"]
    assert (
        "4 sections to index; the limit is 3 (import_limits.runbook_max_sections)"
        in (rejected(summary)["four.md"][1])
    )
    with pytest.raises(ValueError, match="at least 1"):
        ImportLimits(max_tags=0)


def test_the_demo_runbooks_fit_the_default_limits_with_room() -> None:
    from core.importing.limits import ImportLimits
    from core.matching.text import split_runbook_sections

    limits = ImportLimits()
    for path in sorted((DEMO_DIR / "runbooks").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        assert len(text.encode("utf-8")) * 10 < limits.runbook_max_bytes, path.name
        assert len(split_runbook_sections(text, path.stem)) * 10 < limits.runbook_max_sections, path.name


# --- Item 13: deep nesting in JSON --------------------------------------------------------------------------


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def ticket(number: int, **extra: object) -> dict[str, object]:
    return {"number": f"INC{number}", "short_description": f"ticket {number}", **extra}


def nested_dicts(levels: int) -> dict[str, object]:
    value: dict[str, object] = {"leaf": 1}
    for _ in range(levels - 2):  # the ticket itself is level 1
        value = {"x": value}
    return value


def test_a_deeply_nested_jsonl_line_is_rejected_and_the_others_kept(sessions, tmp_path: Path) -> None:
    path = tmp_path / "tickets.jsonl"
    bad = json.dumps(ticket(2))[:-1] + ', "x": ' + deep(10_000) + "}"
    path.write_text("\n".join([json.dumps(ticket(1)), bad, json.dumps(ticket(3))]) + "\n", encoding="utf-8")
    summary = import_tickets(sessions, path)
    assert ticket_ids(sessions) == ["INC1", "INC3"]
    assert [(r.file, r.location) for r in summary.rejected] == [("tickets.jsonl", "line 2")]
    assert "nested more than 64 levels deep" in summary.rejected[0].reason
    with sessions() as s:
        assert s.scalars(select(AuditEvent.action).where(AuditEvent.action == "import.tickets")).all()


def test_a_deeply_nested_record_of_a_json_array_is_rejected_and_the_next_read(
    sessions, tmp_path: Path
) -> None:
    path = tmp_path / "tickets.json"
    text = "[" + json.dumps(ticket(1)) + ', {"number": "INC2", "x": ' + deep(10_000) + "}, "
    path.write_text(text + json.dumps(ticket(3)) + "]", encoding="utf-8")
    summary = import_tickets(sessions, path)
    assert ticket_ids(sessions) == ["INC1", "INC3"]
    assert [(r.file, r.location) for r in summary.rejected] == [("tickets.json", "record 2")]
    assert "nested more than 64 levels deep" in summary.rejected[0].reason


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_nesting_is_allowed_up_to_the_limit_exactly(sessions, tmp_path: Path, suffix: str) -> None:
    records = [ticket(1, x=nested_dicts(64)), ticket(2, x=nested_dicts(65))]
    path = tmp_path / f"tickets{suffix}"
    text = json.dumps(records) if suffix == ".json" else "\n".join(json.dumps(r) for r in records)
    path.write_text(text, encoding="utf-8")
    summary = import_tickets(sessions, path)
    assert ticket_ids(sessions) == ["INC1"]
    assert summary.rejected[0].location == ("record 2" if suffix == ".json" else "line 2")


def test_brackets_inside_strings_do_not_count_as_nesting(sessions, tmp_path: Path) -> None:
    path = tmp_path / "tickets.jsonl"
    path.write_text(json.dumps(ticket(1, description="[" * 500 + "{" * 500)) + "\n", encoding="utf-8")
    assert import_tickets(sessions, path).inserted == 1


def test_a_deeply_nested_runbook_record_is_rejected(sessions, tmp_path: Path) -> None:
    path = tmp_path / "kb.jsonl"
    good = json.dumps({"id": "ok", "title": "Ok", "body": "df -h"})
    path.write_text(
        '{"id": "bad", "title": "Bad", "body": ' + deep(5000) + "}\n" + good + "\n", encoding="utf-8"
    )
    summary = import_runbooks(sessions, path)
    assert runbook_refs(sessions) == ["ok"]
    assert summary.rejected[0].location == "line 1"


# --- Item 15: a CSV quote left open ----------------------------------------------------------------------


def csv_row(n: int) -> str:
    return f"INC{n},title {n},description {n},3 - Moderate"


def test_an_unterminated_quote_rejects_only_its_line_and_the_rows_after_it_are_kept(
    sessions: Sessions, tmp_path: Path
) -> None:
    rows = [csv_row(n) for n in range(2, 30)]
    rows[12 - 2] = 'INC12,"broken title,description 12,3 - Moderate'
    rows[20 - 2] = 'INC20,"Outlook, not syncing",description 20,2 - High'  # its quote stops the one above
    path = tmp_path / "incidents.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    summary = import_tickets(sessions, path)
    assert (summary.inserted, summary.rejected_count) == (len(rows) - 1, 1)
    assert [str(r) for r in summary.rejected] == [
        "incidents.csv, line 12: unterminated quote: the CSV parser stopped at line 20 "
        "(',' expected after '\"'); line 13 on is read again"
    ]
    assert ticket_ids(sessions) == sorted(f"INC{n}" for n in range(2, 30) if n != 12)
    with sessions() as s:
        assert s.scalar(select(Ticket.title).where(Ticket.external_id == "INC20")) == "Outlook, not syncing"


def test_a_quote_left_open_to_the_end_of_the_file_says_so(sessions: Sessions, tmp_path: Path) -> None:
    rows = [csv_row(2), 'INC3,"never closed,d,1', csv_row(4), csv_row(5)]
    path = tmp_path / "incidents.csv"
    path.write_text("\n".join([HEADER, *rows]), encoding="utf-8")  # no newline at the end either
    summary = import_tickets(sessions, path)
    assert (summary.inserted, summary.rejected_count) == (3, 1)
    assert summary.rejected[0].location == "line 3"
    assert summary.rejected[0].reason.startswith("unterminated quote: it runs to the end of the file")
    assert ticket_ids(sessions) == ["INC2", "INC4", "INC5"]


def test_a_stray_closing_quote_cannot_make_the_swallowed_rows_one_ticket(
    sessions: Sessions, tmp_path: Path
) -> None:
    rows = [csv_row(2), 'INC3,"broken,d,1', csv_row(4), 'INC5,t,desc 5"', csv_row(6)]
    path = tmp_path / "incidents.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    summary = import_tickets(sessions, path)
    assert ticket_ids(sessions) == ["INC2", "INC4", "INC5", "INC6"]
    assert [r.location for r in summary.rejected] == ["line 3"]
    assert "lines 3-5 read as one row of 2 fields, but the header has 4" in summary.rejected[0].reason


def test_a_multi_line_field_that_closes_stays_one_row(sessions: Sessions, tmp_path: Path) -> None:
    path = tmp_path / "incidents.csv"
    text = f'{HEADER}\nINC2,"VPN\r\ndrops",AnyConnect,2\nINC4,t,"line one\n\nline three",1\n{csv_row(7)}\n'
    path.write_text(text, encoding="utf-8", newline="")
    with TextSource(path) as source:
        records = list(iter_csv(source, read_csv_header(source)))
    assert [(type(r).__name__, r.location) for r in records] == [
        ("SourceRecord", "lines 2-3"),
        ("SourceRecord", "lines 4-6"),
        ("SourceRecord", "line 7"),
    ]
    assert (
        isinstance(records[1], SourceRecord) and records[1].fields["description"] == "line one\n\nline three"
    )
    summary = import_tickets(sessions, path)
    assert (summary.inserted, summary.rejected_count) == (3, 0)


def broken_export(path: Path, count: int, seed: int) -> tuple[set[int], list[int]]:
    """``count`` rows, 1 % of them with a quote left open, one real multi-line row; CRLF here and there.

    Returns the broken row numbers and the file line each row starts on.
    """
    rng = random.Random(seed)
    broken = set(rng.sample(range(10, count), count // 100))
    rows = [
        (f'INC{n},"broken {n},d,1' if n in broken else csv_row(n)) + ("\r\n" if n % 7 == 0 else "\n")
        for n in range(count)
    ]
    rows[5] = 'INC5,"multi\nline, legit",desc,2\n'
    path.write_text(HEADER + "\n" + "".join(rows), encoding="utf-8", newline="")
    return broken, [n + 2 + (n > 5) for n in range(count)]  # the multi-line row takes two lines


def test_one_percent_broken_rows_cost_one_percent(sessions: Sessions, tmp_path: Path) -> None:
    path = tmp_path / "incidents.csv"
    broken, line_of_row = broken_export(path, 2000, seed=18)
    summary = import_tickets(sessions, path)
    assert (summary.inserted, summary.rejected_count) == (1980, 20)
    assert [r.location for r in summary.rejected] == [f"line {line_of_row[n]}" for n in sorted(broken)]
    assert all(r.reason.startswith("unterminated quote: ") for r in summary.rejected)
    assert ticket_ids(sessions) == sorted(f"INC{n}" for n in range(2000) if n not in broken)
    with sessions() as s:
        assert s.scalar(select(Ticket.title).where(Ticket.external_id == "INC5")) == "multi\nline, legit"


def test_a_100k_row_file_with_one_percent_broken_rows_keeps_99_percent(tmp_path: Path) -> None:
    path = tmp_path / "incidents.csv"
    broken, line_of_row = broken_export(path, 100_000, seed=15)
    with TextSource(path) as source:
        records = list(iter_csv(source, read_csv_header(source)))
    errors = [r.location for r in records if isinstance(r, RecordError)]
    assert len(records) == 100_000
    assert errors == [f"line {line_of_row[n]}" for n in sorted(broken)]  # 1,000 lines, nothing else


def test_an_open_quote_stops_at_the_record_size_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Only the open record's lines are held for re-reading, and never more than the limit of them."""
    monkeypatch.setattr(readers, "MAX_RECORD_CHARS", 200)
    path = tmp_path / "incidents.csv"
    lines = [HEADER, 'INC2,"short\nbut real",d,1', 'INC4,"open,d,1', *(csv_row(n) for n in range(5, 40))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with TextSource(path) as source:
        records = list(iter_csv(source, read_csv_header(source)))
    assert [r.location for r in records] == ["lines 2-3", "line 4", *(f"line {n}" for n in range(5, 40))]
    assert isinstance(records[1], RecordError)
    assert records[1].reason.startswith("unterminated quote: its quoted field ran past")


def test_a_badly_closed_quote_on_one_line_is_still_read_leniently(sessions: Sessions, tmp_path: Path) -> None:
    path = tmp_path / "incidents.csv"
    path.write_text(HEADER + '\nINC1,"VPN" drops,d,1\n' + csv_row(2) + "\n", encoding="utf-8")
    summary = import_tickets(sessions, path)
    assert (summary.inserted, summary.rejected_count) == (2, 0)
    with sessions() as s:
        assert s.scalar(select(Ticket.title).where(Ticket.external_id == "INC1")) == "VPN drops"


# --- Item 16: UTF-16 without a byte order mark ----------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_read_as_utf16(sessions, tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "incidents.csv"
    path.write_bytes((HEADER + "\r\n" + csv_row(1) + "\r\nINC2,Café déjà vu,d,1\r\n").encode(encoding))
    summary = import_tickets(sessions, path)
    assert (summary.inserted, summary.encoding) == (2, encoding)
    with sessions() as s:
        assert s.scalar(select(Ticket.title).where(Ticket.external_id == "INC2")) == "Café déjà vu"


def test_a_bomless_utf16_json_file_and_markdown_runbook(sessions, tmp_path: Path) -> None:
    path = tmp_path / "tickets.json"
    path.write_bytes(json.dumps([ticket(1)]).encode("utf-16-le"))
    assert import_tickets(sessions, path).inserted == 1
    root = tmp_path / "rb"
    root.mkdir()
    (root / "vpn.md").write_bytes("# VPN drops\n\nReinstall the client.\n".encode("utf-16-le"))
    assert import_runbooks(sessions, root).inserted == 1
    with sessions() as s:
        assert s.scalar(select(Runbook.title)) == "VPN drops"


def test_broken_bomless_utf16_is_refused_with_the_offset(sessions, tmp_path: Path) -> None:
    from core.errors import ImportFailedError

    path = tmp_path / "incidents.csv"
    path.write_bytes((HEADER + "\r\n" + csv_row(1)).encode("utf-16-le") + b"\x00\xdc" + b"x\x00")
    with pytest.raises(
        ImportFailedError, match=r"incidents.csv: looks like UTF-16-LE without a byte order mark"
    ):
        import_tickets(sessions, path)


@pytest.mark.parametrize("encoding", ["cp1252", "utf-16"])
def test_a_json_export_in_windows_1252_or_utf16_is_read(sessions, tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "tickets.json"
    path.write_bytes(json.dumps([ticket(1, description="café")], ensure_ascii=False).encode(encoding))
    summary = import_tickets(sessions, path)
    assert (summary.inserted, summary.encoding) == (1, encoding)
