"""The one HTTP client every connector uses: limits, TLS always verified, retries, and errors that explain.

Limits (:class:`HttpLimits`), so that a faulty or hostile server ends in a clear error, never in a sync that
hangs for ever or a ``MemoryError``:

- every answer is streamed and stops at ``max_response_bytes``; a body announced larger is refused before it
  is read (:class:`~connectors.errors.ResponseTooLargeError`), an endless chunked stream stops at the limit;
- one request, all its tries and their backoff included, has ``request_deadline_s`` of wall-clock time for
  connecting, sending, and receiving the whole answer. httpx's read timeout restarts with every byte, so a
  server dripping a byte every 10 s never trips it; this limit does (:class:`~connectors.errors.
  RequestDeadlineError`, saying how long it waited). A wait the server asked for (429 ``Retry-After``) is
  added to it: that is the server being busy, not hung;
- a client has ``run_deadline_s`` from its creation, and the sync engine makes one connector, so one client,
  per run: no try and no retry wait starts past it (:class:`~connectors.errors.SyncDeadlineError`).

The limits are a setting: :func:`use_limits` sets them for everything created inside it (the app from its
settings, tests make them small), else the defaults below; a connector may set its own in
:class:`connectors.base.ClientOptions`. A wait longer than ``report_waits_after_s`` is told every second to
``HttpClient.on_wait`` ("waiting for GET /path (12 s)…"), which the sync engine hands to its progress, so the
CLI shows it.

Retries (tenacity) cover what a retry can fix: 429, 5xx, timeouts and dropped connections, with exponential
backoff and jitter, honouring the server's ``Retry-After`` (seconds or an HTTP date) or ``X-RateLimit-Reset``
(epoch seconds) when it says how long to wait. A 401/403/404/410 or another 4xx is raised at once: retrying a
wrong password only locks the account. Redirects are reported, never followed: one to a login page is an
authentication problem, one to another host would carry the credentials there.

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
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, NoReturn
from urllib.parse import urljoin, urlsplit

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, retry_if_not_exception_type

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
    RedirectRefusedError,
    RequestDeadlineError,
    RequestRejectedError,
    ResponseTooLargeError,
    ServerError,
    SyncDeadlineError,
    TlsError,
)
from connectors.secrets import redact_text

ErrorText = Callable[[httpx.Response], str]
Sleep = Callable[[float], Awaitable[None]]

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)

MIB = 1024 * 1024
# Tens of MB: a page of a few hundred records is well under 1 MiB, ServiceNow's largest (10,000 records) a few
# MiB; and the decoded JSON of a 32 MiB answer already takes some 300 MB of memory.
DEFAULT_MAX_RESPONSE_BYTES = 32 * MIB
# A hung server ends in minutes, not never; a slow but live one has time for one large page and a few retries.
DEFAULT_REQUEST_DEADLINE_S = 180.0
# Long enough for a first sync of a few hundred thousand records; a run that stops here resumes next time.
DEFAULT_RUN_DEADLINE_S = 4 * 3600.0
ERROR_BODY_BYTES = (
    64 * 1024
)  # how much of an error answer is read: its message needs a few hundred characters
WAIT_REPORT_EVERY_S = 1.0


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """How much a server may send and how long it may take; see the module docstring."""

    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    request_deadline_s: float = DEFAULT_REQUEST_DEADLINE_S
    run_deadline_s: float = DEFAULT_RUN_DEADLINE_S
    report_waits_after_s: float = 2.0  # a shorter wait is an ordinary request, not worth a progress line

    def __post_init__(self) -> None:
        if self.max_response_bytes <= 0 or self.request_deadline_s <= 0 or self.run_deadline_s <= 0:
            raise ValueError(f"HTTP limits must be positive: {self}")


DEFAULT_LIMITS = HttpLimits()
_LIMITS: ContextVar[HttpLimits | None] = ContextVar("connector_http_limits", default=None)


def current_limits() -> HttpLimits:
    """The limits a client created now gets (unless its connector sets its own)."""
    return _LIMITS.get() or DEFAULT_LIMITS


@contextmanager
def use_limits(limits: HttpLimits) -> Iterator[HttpLimits]:
    """Clients created inside get ``limits``; a context variable, so ``asyncio.run`` inside sees them too."""
    token = _LIMITS.set(limits)
    try:
        yield limits
    finally:
        _LIMITS.reset(token)


def duration_text(seconds: float) -> str:
    """``0.25 s``, ``1.5 s``, ``12 s``, ``3 min``, ``2 min 5 s``, ``4 h``: how a person reads a wait."""
    if seconds < 10:
        digits = 2 if seconds < 1 else 1
        return f"{seconds:.{digits}f}".rstrip("0").rstrip(".") + " s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(whole, 3600)
    return f"{hours} h {rest // 60} min" if rest >= 60 else f"{hours} h"


def size_text(size: int) -> str:
    """``512 bytes``, ``64 KiB``, ``32 MiB``, ``2.0 GiB``."""
    for unit, scale in (("GiB", 1024 * MIB), ("MiB", MIB), ("KiB", 1024)):
        if size >= scale:
            value = size / scale
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


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
    "rate limit approaching" alert. ``on_wait`` hears, once a second, how long a request has been waiting
    and why it is tried again; the sync engine points it at its progress.
    """

    def __init__(
        self,
        connector_name: str,
        client: httpx.AsyncClient,
        *,
        error_text: ErrorText = default_error_text,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        limits: HttpLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connector_name = connector_name
        self.client = client
        self.error_text = error_text
        self.retry = retry or RetryPolicy()
        self.limits = limits or current_limits()
        self._sleep = sleep
        self._clock = clock
        self.run_deadline_at = clock() + self.limits.run_deadline_s
        self.on_wait: Callable[[str], None] | None = None
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
        idempotent: bool = True,
    ) -> httpx.Response:
        """Send with retries within the limits; return a 2xx response, read whole, or raise the matching
        :mod:`connectors.errors` error.

        ``idempotent=False`` marks a write that must not happen twice (creating a ticket, posting a note):
        only a 429 is tried again, the one answer saying the server did not act. A timeout, a dropped
        connection or a 5xx may come after the server carried the write out, so they are raised at once
        and the caller decides (look the write up, or report it). Reads sent as POST (a search, JSON-RPC)
        keep the default."""
        started = self._clock()
        budget = _Budget(deadline=started + self.limits.request_deadline_s)

        async def attempt() -> httpx.Response:
            budget.attempts += 1
            if self._clock() >= self.run_deadline_at:
                raise self._run_deadline_error(method, path, "before it could be sent")
            until = min(budget.deadline, self.run_deadline_at)
            try:
                return await self._send_once(
                    method, path, params, json_body, data, headers, auth, until=until, started=started
                )
            except _DeadlineReached as reached:  # not retried: the time is spent
                if until >= self.run_deadline_at:
                    raise self._run_deadline_error(method, path, "while it waited for the answer") from None
                raise self._request_deadline_error(method, path, started, budget.attempts, reached) from None
            except _DroppedConnectionError as dropped:
                if idempotent:
                    raise
                raise ConnectionFailedError(
                    self.connector_name,
                    f"{dropped.detail_text}; not sent again, the server may have carried it out",
                    method=method,
                    path=path,
                ) from dropped.__cause__

        def wait(state: RetryCallState) -> float:
            pause = self._backoff(_failure_of(state), state.attempt_number)
            if isinstance(_failure_of(state), RateLimitedError):
                budget.deadline += pause  # the server asked for this wait: it is busy, not hung
            budget.resume_at = self._clock() + pause
            return pause

        def stop(state: RetryCallState) -> bool:
            return (
                state.attempt_number >= self.retry.attempts
                or budget.resume_at >= budget.deadline
                or budget.resume_at >= self.run_deadline_at
            )

        def give_up(state: RetryCallState) -> NoReturn:
            """No try is left: say which limit ended it, with the last failure in full."""
            failure = _failure_of(state)
            out_of_time = budget.resume_at >= budget.deadline
            if state.attempt_number < self.retry.attempts and not out_of_time:  # the run's deadline, then
                raise self._run_deadline_error(
                    method,
                    path,
                    f"waiting {duration_text(state.upcoming_sleep)} to try again ({_reason(failure)}) "
                    "would pass it",
                ) from _cause(failure)
            final = self._retries_spent(failure, method, path, started, state.attempt_number, out_of_time)
            if final is failure:
                raise failure
            raise final from _cause(failure)

        def tell_the_wait(state: RetryCallState) -> None:
            if self.on_wait is not None:
                self.on_wait(
                    f"{method} {path}: {_reason(_failure_of(state))}; trying again in "
                    f"{duration_text(state.upcoming_sleep)} (try {state.attempt_number + 1} of "
                    f"{self.retry.attempts})"
                )

        retrying = AsyncRetrying(
            # A deadline error is a timeout too, but the time it names is spent: never tried again.
            retry=retry_if_exception_type(_RETRYABLE if idempotent else (RateLimitedError,))
            & retry_if_not_exception_type((RequestDeadlineError, SyncDeadlineError)),
            wait=wait,
            stop=stop,
            sleep=self._sleep,
            before_sleep=tell_the_wait,
            retry_error_callback=give_up,
        )
        response: httpx.Response = await retrying(attempt)
        return response

    async def get_json(self, path: str, *, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        response = await self.request("GET", path, params=params, **kwargs)
        return self.json_of(response, "GET", path)

    def json_of(self, response: httpx.Response, method: str, path: str) -> Any:
        try:
            return response.json()
        except (ValueError, UnicodeDecodeError) as exc:
            content_type = response.headers.get("Content-Type", "no content type")
            what = (
                ": an HTML page where the API answers JSON (a sign-in, proxy or maintenance page?)"
                if "html" in content_type.lower()
                else ""
            )
            raise BadResponseError(
                self.connector_name,
                f"{method} {path} returned {content_type} that is not valid JSON{what}: "
                f"{_short(response.text, 120)!r}",
            ) from exc

    # ------------------------------------------------------------------------------------------------

    def _backoff(self, exc: Exception, attempt: int) -> float:
        if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
            return min(exc.retry_after, self.retry.max_server_delay) + random.uniform(0, self.retry.jitter)
        backoff = self.retry.base_delay * 2.0 ** (attempt - 1)
        return min(backoff, self.retry.max_delay) + random.uniform(0, self.retry.jitter)

    def _retries_spent(
        self, exc: Exception, method: str, path: str, started: float, attempts: int, out_of_time: bool
    ) -> Exception:
        """The error to raise when no try is left (``out_of_time``: the next would start past the request's
        deadline): the last one, said in full."""
        name = self.connector_name
        if isinstance(exc, _DroppedConnectionError):
            return ConnectionFailedError(name, exc.detail_text, method=method, path=path)
        if isinstance(exc, ConnectorTimeoutError) and attempts > 1:
            waited = self._clock() - started
            tries = f"{exc.reason}, {attempts} tries in {duration_text(waited)}"
            if not out_of_time:
                return ConnectorTimeoutError(name, f"no answer: {tries}", method=method, path=path)
            limit = duration_text(self.limits.request_deadline_s)
            return RequestDeadlineError(
                name,
                f"no answer within the time limit of {limit}: {tries}",
                method=method,
                path=path,
                waited_s=waited,
            )
        return exc

    def _request_deadline_error(
        self, method: str, path: str, started: float, attempts: int, reached: _DeadlineReached
    ) -> RequestDeadlineError:
        waited = self._clock() - started
        limit = duration_text(self.limits.request_deadline_s)
        tries = f"{attempts} tries" if attempts > 1 else "1 try"
        if reached.transfer.answered:
            message = (
                f"the answer did not arrive whole within the time limit of {limit}: "
                f"{size_text(reached.transfer.received)} came in {duration_text(waited)} "
                "(the server sends too slowly or stalls)"
            )
        else:
            message = f"no answer within the time limit of {limit} (waited {duration_text(waited)}, {tries})"
        return RequestDeadlineError(self.connector_name, message, method=method, path=path, waited_s=waited)

    def _run_deadline_error(self, method: str, path: str, when: str) -> SyncDeadlineError:
        limit = duration_text(self.limits.run_deadline_s)
        return SyncDeadlineError(
            self.connector_name,
            f"stopped at the sync's time limit of {limit}, {when}; the pages stored so far stay and the "
            "next sync goes on from there",
            method=method,
            path=path,
        )

    async def _send_once(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json_body: Any,
        data: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        auth: httpx.Auth | None,
        *,
        until: float,
        started: float,
    ) -> httpx.Response:
        """One try, cut off at ``until`` (a ``time.monotonic`` instant) whatever the server is doing."""
        self.requests_sent += 1
        transfer = _Transfer()
        remaining = until - self._clock()
        if remaining <= 0:
            raise _DeadlineReached(transfer)
        reports = _WaitReports(
            self.on_wait, f"{method} {path}", started, self._clock, self.limits.report_waits_after_s
        )
        scope = asyncio.timeout(remaining)
        try:
            async with scope:
                return await self._exchange(method, path, params, json_body, data, headers, auth, transfer)
        except TimeoutError:
            if not scope.expired():
                raise
            raise _DeadlineReached(transfer) from None
        finally:
            reports.stop()

    async def _exchange(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json_body: Any,
        data: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        auth: httpx.Auth | None,
        transfer: _Transfer,
    ) -> httpx.Response:
        name = self.connector_name
        request = self.client.build_request(
            method, path, params=params, json=json_body, data=data, headers=headers
        )
        try:
            response = await self.client.send(
                request, auth=httpx.USE_CLIENT_DEFAULT if auth is None else auth, stream=True
            )
            transfer.answered = True
            try:
                reading = rate_limit_reading(response)  # a 429 says "0 left" too: read it before any raise
                if reading is not None:
                    self.rate_limit = reading
                    if self.lowest_rate_limit is None or reading.ratio < self.lowest_rate_limit.ratio:
                        self.lowest_rate_limit = reading
                if response.is_success:
                    content = await self._read_body(response, method, path, transfer)
                    return _with_content(response, content)
                if 300 <= response.status_code < 400:
                    raise self._redirect_error(response, method, path)
                content = await _read_start(response, ERROR_BODY_BYTES)
                raise self._status_error(_with_content(response, content), method, path)
            finally:
                await response.aclose()
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

    async def _read_body(
        self, response: httpx.Response, method: str, path: str, transfer: _Transfer
    ) -> bytes:
        """The whole (decoded) body, or ResponseTooLargeError as soon as it passes the limit."""
        limit = self.limits.max_response_bytes
        declared = _declared_length(response)
        if declared is not None and declared > limit:
            raise self._too_large(method, path, f"the server announced {size_text(declared)}")
        chunks: list[bytes] = []
        async for chunk in response.aiter_bytes():
            transfer.received += len(chunk)
            if transfer.received > limit:
                raise self._too_large(method, path, "it grew past that without ending")
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, method: str, path: str, why: str) -> ResponseTooLargeError:
        limit = self.limits.max_response_bytes
        return ResponseTooLargeError(
            self.connector_name,
            f"the answer to {method} {path} is larger than the response limit of {size_text(limit)}: "
            f"{why}; stopped reading (ask for fewer records per request, or raise the limit if pages "
            "this large are expected)",
            method=method,
            path=path,
            limit=limit,
        )

    def _redirect_error(self, response: httpx.Response, method: str, path: str) -> RedirectRefusedError:
        here = response.request.url
        location = response.headers.get("Location", "")
        target = httpx.URL(urljoin(str(here), location)) if location else None
        if target is None:
            message, hint = "redirected without saying where", "check the URL"
        else:
            shown = _without_query(target)
            if target.copy_with(query=None, fragment=None) == here.copy_with(query=None, fragment=None):
                message = f"redirected to itself ({shown}): a redirect loop"
                hint = "the server is misconfigured, or a proxy or sign-in page is in the way"
            elif (target.scheme, target.host, target.port) != (here.scheme, here.host, here.port):
                message = f"redirected to another address, {shown}"
                hint = (
                    "not followed: the credentials are only ever sent to the configured address; if that "
                    "address is the real one, configure it instead"
                )
            else:
                message = f"redirected to {shown}"
                hint = (
                    "not followed: a redirect to a sign-in page means single sign-on is in the way (use an "
                    "account that signs in directly); otherwise configure the address it points to"
                )
        return RedirectRefusedError(
            self.connector_name,
            method=method,
            path=path,
            status=response.status_code,
            server_message=message,
            hint=hint,
            location="" if target is None else _without_query(target),
        )

    def _status_error(self, response: httpx.Response, method: str, path: str) -> HttpStatusError:
        status = response.status_code
        try:
            message = _short(self.error_text(response))
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


class _Transfer:
    """How far one try got: whether the server answered (status and headers) and the bytes it sent."""

    __slots__ = ("answered", "received")

    def __init__(self) -> None:
        self.answered = False
        self.received = 0


class _DeadlineReached(Exception):
    """Internal: a try was cut off at its wall-clock limit; the caller says which limit was reached."""

    def __init__(self, transfer: _Transfer) -> None:
        self.transfer = transfer
        super().__init__("deadline reached")


class _WaitReports:
    """Tells ``on_wait`` how long a request has waited, every second once it waits noticeably; a timer on
    the loop rather than a task, so a quick request pays nothing but scheduling it."""

    def __init__(
        self,
        on_wait: Callable[[str], None] | None,
        what: str,
        started: float,
        clock: Callable[[], float],
        after_s: float,
    ) -> None:
        self._on_wait = on_wait
        self._what = what
        self._started = started
        self._clock = clock
        self._handle: asyncio.TimerHandle | None = None
        if on_wait is not None:
            first = max(0.0, after_s - (clock() - started))
            self._handle = asyncio.get_running_loop().call_later(first, self._tick)

    def _tick(self) -> None:
        assert self._on_wait is not None
        waited = self._clock() - self._started
        self._on_wait(f"waiting for {self._what} ({duration_text(waited)})…")
        self._handle = asyncio.get_running_loop().call_later(WAIT_REPORT_EVERY_S, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def _reason(exc: Exception) -> str:
    """A few words for a failed try, for the progress line."""
    if isinstance(exc, HttpStatusError):
        return f"HTTP {exc.status}"
    if isinstance(exc, ConnectorTimeoutError):
        return exc.reason
    if isinstance(exc, _DroppedConnectionError):
        return "the connection dropped"
    return type(exc).__name__


def _cause(exc: Exception) -> BaseException | None:
    """What to chain a final error to: the transport's own exception rather than our internal one."""
    return exc.__cause__ if isinstance(exc, _DroppedConnectionError) else exc


_DECODED_AWAY = frozenset({b"content-encoding", b"content-length", b"transfer-encoding"})


def _with_content(response: httpx.Response, content: bytes) -> httpx.Response:
    """The streamed response as one read in full: its status, headers and request, with the decoded body
    (so without the headers that described the encoded one)."""
    headers = [(key, value) for key, value in response.headers.raw if key.lower() not in _DECODED_AWAY]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=content,
        request=response.request,
        extensions=response.extensions,
    )


async def _read_start(response: httpx.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of the body: enough for an error message, whatever the server sends."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk[: limit - size])
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)


def _declared_length(response: httpx.Response) -> int | None:
    value = response.headers.get("Content-Length", "").strip()
    return int(value) if value.isdigit() else None


def _without_query(url: httpx.URL) -> str:
    """A URL fit for a message: no credentials, no query (tokens travel there), no fragment."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


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
    limits: HttpLimits | None = None,
) -> HttpClient:
    """The shared client factory. TLS is always verified: against ``ca_bundle`` when given, else the system's
    defaults. There is deliberately no way to turn verification off. ``transport`` is for tests
    (``httpx.MockTransport``); ``limits`` default to :func:`current_limits`."""
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
        follow_redirects=False,  # reported, never followed: see RedirectRefusedError
    )
    return HttpClient(connector_name, client, error_text=error_text, retry=retry, sleep=sleep, limits=limits)


# What a retry can fix; anything else (a 4xx, a refused redirect, a deadline) is raised at once.
_RETRYABLE = (RateLimitedError, ServerError, ConnectorTimeoutError, _DroppedConnectionError)


@dataclass
class _Budget:
    """One request's time: its deadline (which a server's ``Retry-After`` extends), when the next try would
    start, and the tries so far."""

    deadline: float
    resume_at: float = 0.0
    attempts: int = 0


def _failure_of(state: RetryCallState) -> Exception:
    outcome = state.outcome
    assert outcome is not None and outcome.failed, "tenacity asks for a wait only after a failed try"
    failure = outcome.exception()
    assert isinstance(failure, Exception)
    return failure
