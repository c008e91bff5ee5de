"""The one HTTP client every connector uses: timeouts, TLS always verified, retries, and errors that explain.

Retries (tenacity) cover what a retry can fix: 429, 5xx, timeouts and dropped connections, with exponential
backoff and jitter, honouring the server's ``Retry-After`` (seconds or an HTTP date) or ``X-RateLimit-Reset``
(epoch seconds) when it says how long to wait. A 401/403/404/410 or another 4xx is raised at once: retrying a
wrong password only locks the account.

Errors carry the connector's name, the method and path (never the query string, which can hold tokens) and the
server's own error text, extracted by the connector's ``error_text`` function because every vendor shapes its
error bodies differently. Authorization headers are never part of any message.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from connectors.errors import (
    AuthenticationError,
    BadResponseError,
    ConfigurationError,
    ConnectionFailedError,
    ConnectorTimeoutError,
    GoneError,
    HttpStatusError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RequestRejectedError,
    ServerError,
    TlsError,
)
from connectors.secrets import redact_text

ErrorText = Callable[[httpx.Response], str]
Sleep = Callable[[float], Awaitable[None]]

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def user_agent() -> str:
    try:
        return f"RunbookDesk/{version('runbook-desk')} (+httpx {httpx.__version__})"
    except PackageNotFoundError:
        return f"RunbookDesk/dev (+httpx {httpx.__version__})"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5  # total tries, the first included
    base_delay: float = 1.0  # seconds; doubles per attempt
    max_delay: float = 60.0  # cap for our own backoff
    max_server_delay: float = 300.0  # cap for what a server may ask us to wait
    jitter: float = 0.5  # up to this many seconds added at random


def default_error_text(response: httpx.Response) -> str:
    """The server's message when a connector has no better idea: a JSON "message"/"error" or the text."""
    try:
        body = response.json()
    except ValueError:
        return _short(response.text)
    if isinstance(body, dict):
        for key in ("message", "error", "errorMessage", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return _short(value)
    return _short(response.text)


def _short(text: str, limit: int = 300) -> str:
    """One line, at most ``limit`` long, with any known secret masked: servers do echo tokens back."""
    text = redact_text(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def retry_after_seconds(response: httpx.Response, now: float | None = None) -> float | None:
    """How long the server asked us to wait, from ``Retry-After`` or ``X-RateLimit-Reset``; None if unsaid."""
    now = time.time() if now is None else now
    retry_after = response.headers.get("Retry-After")
    if retry_after:
        retry_after = retry_after.strip()
        if retry_after.isdigit():
            return float(retry_after)
        try:
            when = email.utils.parsedate_to_datetime(retry_after)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(0.0, when.timestamp() - now)
    reset = response.headers.get("X-RateLimit-Reset")
    if reset:
        try:
            value = float(reset)
        except ValueError:
            return None
        # Epoch seconds (ServiceNow, GitHub style) or, from some servers, seconds from now.
        return max(0.0, value - now) if value > 1_000_000_000 else value
    return None


@dataclass(frozen=True, slots=True)
class RateLimitReading:
    """What a response's rate-limit headers said: requests left in the window, of the window's limit."""

    remaining: int
    limit: int

    @property
    def ratio(self) -> float:
        return self.remaining / self.limit


def _leading_int(value: str | None) -> int | None:
    # "100", or a policy list such as "100, 100;w=60" (the IETF RateLimit draft): the first number counts.
    if value is None:
        return None
    head = value.split(",", 1)[0].split(";", 1)[0].strip()
    return int(head) if head.isdigit() else None


def rate_limit_reading(response: httpx.Response) -> RateLimitReading | None:
    """``X-RateLimit-Remaining`` / ``-Limit`` (ServiceNow, Jira, GitHub) or the IETF draft's
    ``RateLimit-Remaining`` / ``-Limit``; None unless a pair is present and readable."""
    for prefix in ("X-RateLimit-", "RateLimit-"):
        remaining = _leading_int(response.headers.get(prefix + "Remaining"))
        limit = _leading_int(response.headers.get(prefix + "Limit"))
        if remaining is not None and limit:
            return RateLimitReading(min(remaining, limit), limit)
    return None


class HttpClient:
    """An ``httpx.AsyncClient`` wrapper for one connector config. Create with :func:`create_client`.

    ``rate_limit`` is the last rate-limit reading the server sent, ``lowest_rate_limit`` the lowest
    remaining/limit ratio seen since the client was made (one sync): the sync run stores it for the
    "rate limit approaching" alert.
    """

    def __init__(
        self,
        connector_name: str,
        client: httpx.AsyncClient,
        *,
        error_text: ErrorText = default_error_text,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.connector_name = connector_name
        self.client = client
        self.error_text = error_text
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self.requests_sent = 0  # tests and benchmarks read it (e.g. "no retry storm on 401")
        self.rate_limit: RateLimitReading | None = None
        self.lowest_rate_limit: RateLimitReading | None = None

    @property
    def base_url(self) -> httpx.URL:
        return self.client.base_url

    async def aclose(self) -> None:
        await self.client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
    ) -> httpx.Response:
        """Send with retries; return a 2xx response or raise the matching :mod:`connectors.errors` error."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retry.attempts),
            wait=self._wait,
            retry=retry_if_exception_type(
                (RateLimitedError, ServerError, ConnectorTimeoutError, _DroppedConnectionError)
            ),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._send_once(method, path, params, json_body, data, headers, auth)
        except _DroppedConnectionError as exc:
            raise ConnectionFailedError(
                self.connector_name, exc.detail_text, method=method, path=path
            ) from exc.__cause__
        raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover

    async def get_json(self, path: str, *, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        response = await self.request("GET", path, params=params, **kwargs)
        return self.json_of(response, "GET", path)

    def json_of(self, response: httpx.Response, method: str, path: str) -> Any:
        try:
            return response.json()
        except (ValueError, UnicodeDecodeError) as exc:
            content_type = response.headers.get("Content-Type", "no content type")
            raise BadResponseError(
                self.connector_name,
                f"{method} {path} returned {content_type} that is not valid JSON: "
                f"{_short(response.text, 120)!r}",
            ) from exc

    # ------------------------------------------------------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
            return min(exc.retry_after, self.retry.max_server_delay) + random.uniform(0, self.retry.jitter)
        backoff = self.retry.base_delay * 2.0 ** (state.attempt_number - 1)
        return min(backoff, self.retry.max_delay) + random.uniform(0, self.retry.jitter)

    async def _send_once(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json_body: Any,
        data: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        auth: httpx.Auth | None,
    ) -> httpx.Response:
        name = self.connector_name
        self.requests_sent += 1
        try:
            kwargs: dict[str, Any] = {"params": params, "json": json_body, "data": data, "headers": headers}
            if auth is not None:
                kwargs["auth"] = auth
            response = await self.client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ConnectorTimeoutError(
                name, f"timed out ({type(exc).__name__})", method=method, path=path
            ) from exc
        except httpx.ProxyError as exc:
            raise ConnectionFailedError(
                name, f"the proxy refused the connection: {exc}", method=method, path=path
            ) from exc
        except httpx.ConnectError as exc:
            raise _connect_error(name, exc, method, path) from exc
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            # The connection dropped mid-answer: worth a retry, the request was a read.
            raise _DroppedConnectionError(f"the connection dropped: {exc}") from exc
        except httpx.UnsupportedProtocol as exc:
            raise ConfigurationError(name, f"the URL is not http(s): {exc}") from exc
        reading = rate_limit_reading(response)  # a 429 says "0 left" too: read it before any raise
        if reading is not None:
            self.rate_limit = reading
            if self.lowest_rate_limit is None or reading.ratio < self.lowest_rate_limit.ratio:
                self.lowest_rate_limit = reading
        if response.is_success:
            return response
        await response.aread()
        raise self._status_error(response, method, path)

    def _status_error(self, response: httpx.Response, method: str, path: str) -> HttpStatusError:
        status = response.status_code
        try:
            message = redact_text(self.error_text(response))
        except (ValueError, KeyError, TypeError, json.JSONDecodeError):
            message = _short(response.text)
        name = self.connector_name
        if status == 429:
            return RateLimitedError(
                name,
                method=method,
                path=path,
                status=status,
                server_message=message,
                retry_after=retry_after_seconds(response),
            )
        error_type = _STATUS_ERRORS.get(status)
        if error_type is None:
            error_type = ServerError if status >= 500 else RequestRejectedError
        return error_type(name, method=method, path=path, status=status, server_message=message)


# The statuses with their own error type; other 5xx are ServerError, other 4xx RequestRejectedError.
_STATUS_ERRORS: dict[int, type[HttpStatusError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    410: GoneError,
}


class _DroppedConnectionError(Exception):
    """Internal: a retryable transport failure; surfaces as ConnectionFailedError when retries run out."""

    def __init__(self, detail_text: str) -> None:
        self.detail_text = detail_text
        super().__init__(detail_text)


def _connect_error(name: str, exc: httpx.ConnectError, method: str, path: str) -> Exception:
    cause = exc.__context__ or exc.__cause__
    text = str(exc)
    if isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
        return TlsError(
            name, f"the server's TLS certificate is not trusted ({text})", method=method, path=path
        )
    if isinstance(cause, ssl.SSLError) or "SSL" in text:
        return TlsError(name, f"the TLS handshake failed ({text})", method=method, path=path)
    lowered = text.lower()
    if (
        "name or service not known" in lowered
        or "nodename nor servname" in lowered
        or "getaddrinfo" in lowered
    ):
        return ConnectionFailedError(
            name, f"the host name was not found in DNS ({text})", method=method, path=path
        )
    if "connection refused" in lowered or "errno 111" in lowered:
        return ConnectionFailedError(name, f"the connection was refused ({text})", method=method, path=path)
    return ConnectionFailedError(name, f"could not connect ({text})", method=method, path=path)


def create_client(
    connector_name: str,
    base_url: str,
    *,
    auth: httpx.Auth | None = None,
    headers: Mapping[str, str] | None = None,
    ca_bundle: str | None = None,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    transport: httpx.AsyncBaseTransport | None = None,
    error_text: ErrorText = default_error_text,
    retry: RetryPolicy | None = None,
    sleep: Sleep = asyncio.sleep,
) -> HttpClient:
    """The shared client factory. TLS is always verified: against ``ca_bundle`` when given, else the system's
    defaults. There is deliberately no way to turn verification off. ``transport`` is for tests
    (``httpx.MockTransport``)."""
    verify: ssl.SSLContext | bool = True
    if ca_bundle:
        try:
            verify = ssl.create_default_context(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(connector_name, f"cannot read the CA bundle {ca_bundle}: {exc}") from exc
    all_headers = {"User-Agent": user_agent(), "Accept": "application/json"}
    all_headers.update(headers or {})
    client = httpx.AsyncClient(
        base_url=base_url,
        auth=auth,
        headers=all_headers,
        timeout=timeout,
        verify=verify,
        transport=transport,
        follow_redirects=False,  # a redirect to a login page is an auth problem to report, not to follow
    )
    return HttpClient(connector_name, client, error_text=error_text, retry=retry, sleep=sleep)
