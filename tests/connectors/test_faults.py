"""The shared client's limits against a real faulty server on 127.0.0.1 (issue 18, items 8, 9 and 19).

The standard suite runs every connector through the same faults (:mod:`connectors.testing.standard_suite`);
these tests pin down the client itself (how much it reads, how long it waits, what it says), the run deadline
on a real clock, and what the CLI shows while a server keeps it waiting.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from connectors.configs import create_config
from connectors.errors import (
    ConnectorTimeoutError,
    RedirectRefusedError,
    RequestDeadlineError,
    ResponseTooLargeError,
    SyncDeadlineError,
)
from connectors.http import HttpClient, HttpLimits, RetryPolicy, create_client, use_limits
from connectors.sync import run_sync
from connectors.testing.faulty_server import Fault, FaultyServer
from connectors.testing.standard_suite import AfterPage, SleepRecorder
from core.store.models import SyncRun, SyncStatus, Ticket
from core.store.workspace import Workspace
from desktop.cli.common import EXIT_ERROR, EXIT_OK
from desktop.cli.main import main
from tests.connectors.tiny_connector import GOOD_TOKEN, FakeTiny

KIB = 1024
MIB = 1024 * KIB
PATH = "/api/items"


@pytest.fixture
def server() -> Iterator[FaultyServer]:
    """A server with no fake behind it: every request gets the fault the test sets."""
    with FaultyServer(drip_interval_s=0.05) as started:
        yield started


def client(server: FaultyServer, limits: HttpLimits, **kwargs: object) -> HttpClient:
    return create_client(
        "Acme",
        "https://acme.example.com",
        auth=httpx.BasicAuth("svc", "s3cret-pw"),
        transport=server.transport(),
        sleep=SleepRecorder(),
        limits=limits,
        **kwargs,  # type: ignore[arg-type]
    )


def get(http: HttpClient) -> httpx.Response:
    async def go() -> httpx.Response:
        try:
            return await http.request("GET", PATH)
        finally:
            await http.aclose()

    return asyncio.run(go())


def timed(http: HttpClient, error: type[Exception]) -> tuple[Exception, float]:
    started = time.monotonic()
    with pytest.raises(error) as raised:
        get(http)
    return raised.value, time.monotonic() - started


# --- the response size limit (item 8) ---------------------------------------------------------------------


def test_a_body_announced_larger_than_the_limit_is_refused_before_it_is_read(server: FaultyServer) -> None:
    server.fault = Fault.HUGE_BODY
    error, elapsed = timed(client(server, HttpLimits(max_response_bytes=64 * KIB)), ResponseTooLargeError)
    assert str(error) == (
        "Acme: the answer to GET /api/items is larger than the response limit of 64 KiB: the server "
        "announced 2 GiB; stopped reading (ask for fewer records per request, or raise the limit if pages "
        "this large are expected)"
    )
    assert elapsed < 2 and server.faults_served == 1  # not retried


def test_an_endless_chunked_stream_stops_at_the_limit(server: FaultyServer) -> None:
    server.fault = Fault.ENDLESS_STREAM
    error, elapsed = timed(client(server, HttpLimits(max_response_bytes=256 * KIB)), ResponseTooLargeError)
    assert "larger than the response limit of 256 KiB: it grew past that without ending" in str(error)
    assert isinstance(error, ResponseTooLargeError) and error.limit == 256 * KIB
    assert elapsed < 2 and server.faults_served == 1


def test_a_compressed_body_is_limited_by_its_decoded_size() -> None:
    """A gzip bomb: 10 MiB of spaces is a 10 KiB download; the limit counts what it unpacks to."""
    body = gzip.compress(b" " * (10 * 1024 * KIB))
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, content=body, headers={"Content-Encoding": "gzip"})
    )
    http = create_client(
        "Acme", "https://acme.example.com", transport=transport, limits=HttpLimits(max_response_bytes=MIB)
    )
    with pytest.raises(ResponseTooLargeError, match="larger than the response limit of 1 MiB"):
        get(http)


def test_a_normal_answer_arrives_whole_with_its_headers() -> None:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, json={"items": [1, 2]}, headers={"Link": "<x>; rel=next"})
    )
    response = get(create_client("Acme", "https://acme.example.com", transport=transport))
    assert response.json() == {"items": [1, 2]}
    assert response.headers["Link"] == "<x>; rel=next"
    assert response.request.url.path == PATH


# --- the request and run deadlines (items 9 and 19) --------------------------------------------------------


def test_a_dripping_answer_ends_at_the_request_deadline_not_never(server: FaultyServer) -> None:
    """One byte every 50 ms: the read timeout (30 s) never fires, the wall-clock deadline does."""
    server.fault = Fault.BYTE_DRIP
    error, elapsed = timed(client(server, HttpLimits(request_deadline_s=0.3)), RequestDeadlineError)
    assert 0.3 <= elapsed < 2.5
    message = str(error)
    assert message.startswith("Acme: the answer did not arrive whole within the time limit of 0.3 s: ")
    assert re.search(
        r"\d+ bytes came in 0\.\d+ s \(the server sends too slowly or stalls\) \(GET /api/items\)$", message
    )
    assert server.faults_served == 1  # the deadline covers every try: none is left for a retry


def test_a_server_that_never_answers_fails_at_the_deadline_saying_how_long_it_waited(
    server: FaultyServer,
) -> None:
    server.fault = Fault.SILENT
    http = client(server, HttpLimits(request_deadline_s=0.4, report_waits_after_s=0.1))
    waits: list[str] = []
    http.on_wait = waits.append
    error, elapsed = timed(http, RequestDeadlineError)
    assert 0.4 <= elapsed < 2.5
    assert re.fullmatch(
        r"Acme: no answer within the time limit of 0\.4 s \(waited 0\.\d+ s, 1 try\) \(GET /api/items\)",
        str(error),
    )
    assert isinstance(error, RequestDeadlineError) and 0.4 <= error.waited_s < 2.5
    assert waits and waits[0] in (
        "waiting for GET /api/items (0.1 s)…",
        "waiting for GET /api/items (0.2 s)…",
    )


def test_read_timeouts_are_retried_only_within_the_request_deadline(server: FaultyServer) -> None:
    """The read timeout ends each silent try; the retries stop when the request's deadline is spent."""
    server.fault = Fault.SILENT
    http = client(
        server,
        HttpLimits(request_deadline_s=0.4),
        timeout=httpx.Timeout(0.1),
        retry=RetryPolicy(attempts=20, base_delay=0.0, jitter=0.0),
    )
    error, elapsed = timed(http, ConnectorTimeoutError)
    assert isinstance(error, RequestDeadlineError)
    assert elapsed < 2.5
    assert 2 <= server.faults_served <= 5
    assert "within the time limit of 0.4 s" in str(error) and "(GET /api/items)" in str(error)


def test_the_run_deadline_cuts_a_wait_short_on_a_real_clock(server: FaultyServer) -> None:
    server.fault = Fault.SILENT
    http = client(server, HttpLimits(request_deadline_s=30.0, run_deadline_s=0.3))
    error, elapsed = timed(http, SyncDeadlineError)
    assert elapsed < 2.5
    assert str(error) == (
        "Acme: stopped at the sync's time limit of 0.3 s, while it waited for the answer; the pages stored "
        "so far stay and the next sync goes on from there (GET /api/items)"
    )


def test_retries_never_wait_past_the_run_deadline() -> None:
    sleeps = SleepRecorder()
    transport = httpx.MockTransport(lambda request: httpx.Response(503))
    http = create_client(
        "Acme",
        "https://acme.example.com",
        transport=transport,
        sleep=sleeps,
        retry=RetryPolicy(base_delay=20.0, jitter=0.0),
        limits=HttpLimits(run_deadline_s=30.0),
    )
    with pytest.raises(SyncDeadlineError, match=r"waiting 40 s to try again \(HTTP 503\) would pass it"):
        get(http)
    assert sleeps.waits == [20.0]  # the first wait fitted; the second would have passed the deadline
    assert http.requests_sent == 2


def test_a_wait_the_server_asks_for_does_not_count_against_the_request_deadline() -> None:
    sleeps = SleepRecorder()
    answers = iter([httpx.Response(429, headers={"Retry-After": "120"}), httpx.Response(200, json={})])
    http = create_client(
        "Acme",
        "https://acme.example.com",
        transport=httpx.MockTransport(lambda request: next(answers)),
        sleep=sleeps,
        limits=HttpLimits(request_deadline_s=60.0),
    )
    assert get(http).json() == {}
    assert len(sleeps.waits) == 1 and sleeps.waits[0] >= 120


def test_limits_come_from_the_setting_unless_the_connector_sets_its_own() -> None:
    small = HttpLimits(max_response_bytes=KIB)
    with use_limits(small):
        assert create_client("Acme", "https://acme.example.com").limits is small
        own = HttpLimits(max_response_bytes=MIB)
        assert create_client("Acme", "https://acme.example.com", limits=own).limits is own
    assert create_client("Acme", "https://acme.example.com").limits == HttpLimits()
    with pytest.raises(ValueError, match="must be positive"):
        HttpLimits(request_deadline_s=0)


# --- redirects ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [Fault.REDIRECT_AWAY, Fault.REDIRECT_LOOP])
def test_a_redirect_is_not_followed_and_the_credentials_stay_here(server: FaultyServer, fault: Fault) -> None:
    with FaultyServer() as elsewhere:
        server.fault, server.elsewhere = fault, elsewhere
        http = client(server, HttpLimits())
        with pytest.raises(RedirectRefusedError) as raised:
            get(http)
        elsewhere_url = elsewhere.url
    assert elsewhere.requests == []
    assert server.faults_served == 1
    assert server.requests[0].header("Authorization") is not None  # sent to the configured server only
    message = str(raised.value)
    assert message.startswith("Acme: HTTP 302 on GET /api/items: redirected ")
    if fault is Fault.REDIRECT_AWAY:
        assert raised.value.location == f"{elsewhere_url}{PATH}"
        assert "the credentials are only ever sent to the configured address" in message
    else:
        assert "redirected to itself (https://acme.example.com/api/items): a redirect loop" in message


# --- a sync and the CLI -------------------------------------------------------------------------------------


def test_a_sync_stopped_by_its_deadline_is_recorded_failed_and_keeps_its_pages(
    tiny: FakeTiny, tmp_path: Path
) -> None:
    """On a real clock: the second page never comes, the run deadline ends the run."""
    for number in range(1, 13):
        tiny.add_ticket(tiny.new_ticket(number, datetime(2026, 3, 2, tzinfo=UTC) + timedelta(minutes=number)))
    with Workspace.open(tmp_path / "ws") as workspace, FaultyServer(tiny) as faulty:
        sessions = workspace.session_factory("default")
        settings = tiny.settings()
        config = create_config(
            sessions,
            connector_type="tiny",
            name=settings.name,
            base_url=settings.base_url,
            auth_mode=settings.auth_mode,
            secrets=dict(settings.secrets),
            actor="test",
        )
        faulty.fault, faulty.fault_after = Fault.SILENT, 1
        progress = AfterPage(0)
        # 2 s, not less: storing the first page (and inferring outcomes from it) must end before the limit
        # on a loaded CI machine, or the run stops before the second request is sent (another message).
        with use_limits(HttpLimits(request_deadline_s=30.0, run_deadline_s=2.0, report_waits_after_s=0.1)):
            report = asyncio.run(
                run_sync(sessions, config.id, transport=faulty.transport(), page_size=5, progress=progress)
            )
        assert report.status is SyncStatus.FAILED
        assert report.error == (
            "Tiny prod: stopped at the sync's time limit of 2 s, while it waited for the answer; the pages "
            "stored so far stay and the next sync goes on from there (GET /api/tickets)"
        )
        assert report.elapsed_s < 5.0
        assert any(m.startswith("Tiny prod: waiting for GET /api/tickets (0.") for m in progress.messages)
        with sessions() as session:
            run = session.query(SyncRun).one()
            stored = session.query(Ticket).count()
        assert (run.status, run.error_text, stored) == (SyncStatus.FAILED, report.error, 5)


def test_the_cli_shows_the_wait_and_ends_with_the_deadline(
    tiny: FakeTiny,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = str(tmp_path / "ws")
    monkeypatch.setenv("RUNBOOK_DESK_SECRET_TOKEN", GOOD_TOKEN)
    assert main(
        ["connectors", "add", "tiny", "--name", "Tiny prod", "--url", tiny.base_url, "--workspace", ws]
    ) == (EXIT_OK)
    tiny.add_ticket(tiny.new_ticket(1, datetime(2026, 3, 2, tzinfo=UTC)))
    capsys.readouterr()
    with (
        FaultyServer(tiny) as faulty,
        use_limits(HttpLimits(request_deadline_s=0.5, report_waits_after_s=0.1)),
    ):
        monkeypatch.setattr(tiny, "transport", faulty.transport)  # the CLI's client reaches the server
        faulty.fault = Fault.SILENT
        code = main(["connectors", "sync", "Tiny prod", "--workspace", ws, "--progress"])
    _, err = capsys.readouterr()
    assert code == EXIT_ERROR
    assert "Tiny prod: waiting for GET /api/tickets (" in err
    assert re.search(
        r"no answer within the time limit of 0\.5 s \(waited 0\.\d+ s, 1 try\) \(GET /api/tickets\)", err
    )
