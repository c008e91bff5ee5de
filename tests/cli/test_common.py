"""The CLI's shared parts: dates from the command line and the stderr progress reporter."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from core.errors import RunbookDeskError
from core.progress import Progress
from desktop.cli.common import PROGRESS_INTERVAL_S, StderrProgress, parse_date


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_dates_without_an_offset_are_utc_and_bad_ones_name_the_option() -> None:
    assert parse_date("--since", "2026-06-01") == datetime(2026, 6, 1, tzinfo=UTC)
    assert parse_date("--since", "2026-06-01T10:00+02:00").utcoffset() is not None
    with pytest.raises(RunbookDeskError, match="--until 1st of June: not an ISO 8601 date"):
        parse_date("--until", "1st of June")


def test_on_a_terminal_one_line_is_rewritten_at_most_five_times_a_second() -> None:
    stream, clock = FakeTerminal(), FakeClock()
    progress = StderrProgress(stream, clock=clock)
    assert isinstance(progress, Progress) and not progress.cancelled
    progress.report(10, 100, "Reading tickets")
    progress.report(20, 100, "dropped: too soon after the last line")
    clock.now += PROGRESS_INTERVAL_S
    progress.report(40, 100, "Clustering")
    progress.report(100, 100, "done")  # the last report is always shown
    progress.report(100, 100, "done")  # once
    progress.finish()
    assert stream.getvalue() == "\r 10% Reading tickets\r 40% Clustering     \r100% done      \n"


def test_unknown_totals_show_the_message_and_a_log_gets_whole_lines() -> None:
    stream, clock = io.StringIO(), FakeClock()
    progress = StderrProgress(stream, clock=clock)
    progress.report(3, None, "3 runbooks")
    clock.now += PROGRESS_INTERVAL_S  # a log is written to less often than a terminal
    progress.report(4, None, "4 runbooks")
    clock.now += 60
    progress.report(5)
    progress.finish()
    assert stream.getvalue() == "3 runbooks\n5\n"


def test_finish_without_any_report_writes_nothing() -> None:
    stream = FakeTerminal()
    StderrProgress(stream).finish()
    assert stream.getvalue() == ""
