"""The shared HTTP client: what it retries, how long it waits, and what its errors say."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from connectors.errors import (
    AuthenticationError,
    BadResponseError,
    ConfigurationError,
    ConnectionFailedError,
    ConnectorTimeoutError,
    GoneError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RequestRejectedError,
    ServerError,
)
from connectors.http import HttpClient, RetryPolicy, create_client, retry_after_seconds
from connectors.testing.standard_suite import SleepRecorder

Handler = Callable[[httpx.Request], httpx.Response]


def scripted(*answers: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A transport handler that answers in order (an exception is raised as the transport failing)."""
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handle, seen


def client(handler: Handler, sleeps: SleepRecorder, **kwargs: object) -> HttpClient:
    return create_client(
        "Acme SN",
        "https://acme.example.com",
        transport=httpx.MockTransport(handler),
        sleep=sleeps,
        **kwargs,  # type: ignore[arg-type]
    )


def get(http: HttpClient, path: str = "/api/items", **kwargs: object) -> object:
    async def go() -> object:
        try:
            return await http.get_json(path, **kwargs)  # type: ignore[arg-type]
        finally:
            await http.aclose()

    return asyncio.run(go())


def ok() -> httpx.Response:
    return httpx.Response(200, json={"items": []})


def test_5xx_is_retried_with_exponential_backoff_and_jitter() -> None:
    sleeps = SleepRecorder()
    handler, seen = scripted(*(httpx.Response(503) for _ in range(4)), ok())
    http = client(handler, sleeps)
    assert get(http) == {"items": []}
    assert http.requests_sent == len(seen) == 5
    for wait, base in zip(sleeps.waits, (1, 2, 4, 8), strict=True):
        assert base <= wait <= base + 0.5


def test_retries_stop_and_the_error_says_who_what_and_why() -> None:
    sleeps = SleepRecorder()
    body = {"error": {"message": "Transaction cancelled: maximum execution time exceeded"}}
    handler, _ = scripted(*(httpx.Response(500, json=body) for _ in range(5)))
    http = client(handler, sleeps, error_text=lambda r: r.json()["error"]["message"])
    with pytest.raises(ServerError) as raised:
        get(http, "/api/now/table/incident", params={"sysparm_query": "secret-ish^filter"})
    assert str(raised.value) == (
        "Acme SN: HTTP 500 on GET /api/now/table/incident: "
        "Transaction cancelled: maximum execution time exceeded"
    )
    assert "sysparm" not in str(raised.value)  # never the query string
    assert http.requests_sent == 5 and len(sleeps.waits) == 4


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (410, GoneError),
        (400, RequestRejectedError),
    ],
)
def test_client_errors_are_not_retried(status: int, error: type[Exception]) -> None:
    sleeps = SleepRecorder()
    handler, seen = scripted(httpx.Response(status, json={"message": "nope"}))
    with pytest.raises(error, match=f"HTTP {status} on GET /api/items: nope"):
        get(client(handler, sleeps))
    assert len(seen) == 1 and sleeps.waits == []


def test_retry_after_in_seconds_and_as_an_http_date() -> None:
    sleeps = SleepRecorder()
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    handler, _ = scripted(
        httpx.Response(429, headers={"Retry-After": "12"}),
        httpx.Response(429, headers={"Retry-After": when}),
        ok(),
    )
    get(client(handler, sleeps))
    assert 12 <= sleeps.waits[0] <= 12.5
    assert 117 <= sleeps.waits[1] <= 120.5


def test_x_ratelimit_reset_epoch_seconds_and_the_cap() -> None:
    sleeps = SleepRecorder()
    handler, _ = scripted(
        httpx.Response(429, headers={"X-RateLimit-Reset": str(int(time.time()) + 40)}),
        httpx.Response(429, headers={"Retry-After": "86400"}),  # a day: capped
        ok(),
    )
    get(client(handler, sleeps, retry=RetryPolicy(max_server_delay=300)))
    assert 38 <= sleeps.waits[0] <= 40.5
    assert 300 <= sleeps.waits[1] <= 300.5


def test_a_rate_limit_that_never_lifts_names_the_wait() -> None:
    sleeps = SleepRecorder()
    handler, _ = scripted(*(httpx.Response(429, headers={"Retry-After": "3"}) for _ in range(2)))
    with pytest.raises(RateLimitedError) as raised:
        get(client(handler, sleeps, retry=RetryPolicy(attempts=2)))
    assert raised.value.retry_after == 3.0


def test_retry_after_parsing_edge_cases() -> None:
    assert retry_after_seconds(httpx.Response(429)) is None
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    assert retry_after_seconds(httpx.Response(429, headers={"X-RateLimit-Reset": "5"})) == 5.0
    assert (
        retry_after_seconds(httpx.Response(429, headers={"X-RateLimit-Reset": "1000000100"}), now=1e9) == 100
    )


def test_a_dropped_connection_is_retried_then_reported() -> None:
    sleeps = SleepRecorder()
    drop = httpx.RemoteProtocolError("peer closed connection without sending complete message body")
    handler, _ = scripted(drop, ok())
    assert get(client(handler, sleeps)) == {"items": []}

    handler, _ = scripted(*(drop for _ in range(5)))
    with pytest.raises(
        ConnectionFailedError, match=r"Acme SN: the connection dropped: .* \(GET /api/items\)"
    ):
        get(client(handler, sleeps))


def test_timeouts_are_retried_then_reported() -> None:
    sleeps = SleepRecorder()
    handler, seen = scripted(*(httpx.ReadTimeout("slow") for _ in range(5)))
    with pytest.raises(
        ConnectorTimeoutError,
        match=r"no answer: timed out \(ReadTimeout\), 5 tries in .* s \(GET /api/items\)",
    ):
        get(client(handler, sleeps))
    assert len(seen) == 5


def test_a_refused_connection_is_not_retried() -> None:
    sleeps = SleepRecorder()
    handler, seen = scripted(httpx.ConnectError("[Errno 111] Connection refused"))
    with pytest.raises(ConnectionFailedError, match="the connection was refused"):
        get(client(handler, sleeps))
    assert len(seen) == 1


def test_not_json_is_a_bad_response_naming_the_path() -> None:
    handler, _ = scripted(
        httpx.Response(200, text="<html>Login</html>", headers={"Content-Type": "text/html"})
    )
    with pytest.raises(
        BadResponseError, match="Acme SN: GET /api/items returned text/html that is not valid JSON"
    ):
        get(client(handler, SleepRecorder()))


def test_redirects_are_reported_not_followed_and_the_user_agent_is_ours() -> None:
    handler, seen = scripted(httpx.Response(302, headers={"Location": "https://sso.example.com/login"}))
    with pytest.raises(RequestRejectedError, match="HTTP 302"):
        get(client(handler, SleepRecorder()))
    assert seen[0].headers["User-Agent"].startswith("RunbookDesk/")


def test_authorization_values_never_reach_an_error_message() -> None:
    body = {"message": "bad header Authorization: Basic YWRtaW46aHVudGVyMg=="}
    handler, _ = scripted(httpx.Response(401, json=body))
    with pytest.raises(AuthenticationError) as raised:
        get(client(handler, SleepRecorder()))
    assert "YWRtaW46aHVudGVyMg" not in str(raised.value)
    assert "Authorization: ***" in str(raised.value)


def test_an_unreadable_ca_bundle_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read the CA bundle"):
        create_client("Acme SN", "https://acme.example.com", ca_bundle=str(tmp_path / "missing.pem"))
