"""A real HTTP server on 127.0.0.1 that answers as a connector's fake does, or fails as a hostile world does.

Test support shipped with the standard suite (:mod:`connectors.testing.standard_suite`), which runs every
connector against it. A :class:`FaultyServer` listens on an ephemeral port of 127.0.0.1 in a thread of the
test process and hands each request it receives, over a real socket, to a
:class:`~connectors.testing.fake_system.FakeSystem` for the normal answer, unless its :class:`Fault` applies:

- answers the client must refuse to hold in memory: a body announced at 2 GiB, an endless chunked stream;
- answers that never end in time: one byte at a time (each byte restarts a read timeout), or no answer at all;
- hostile answers: an error whose body echoes the request it received (headers, credentials and form body
  included), a redirect to another address or to itself, a sign-in page with status 200.

The fake's own misbehaviours (:class:`~connectors.testing.fake_system.Misbehaviour`: the same records for
ever, a filter ignored) come through the server unchanged. :meth:`FaultyServer.transport` gives the client a
transport that sends every request to the server whatever host it names, so the connector keeps its real
configuration (https and all) and nothing a test does can leave the machine.

Every loop is bounded: streams stop at ``max_stream_bytes``, drips and silences at ``max_hold_s``, and all of
them as soon as the client hangs up or :meth:`FaultyServer.stop` is called.
"""

from __future__ import annotations

import enum
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import unquote

import httpx

from connectors.testing.fake_system import FakeSystem

HOST = "127.0.0.1"
HUGE_BODY_BYTES = 2 * 1024**3  # what the huge-body fault announces
# Headers every request carries; the echo puts the others (Authorization, authtoken, cookies) first, as the
# start of a server's error text is what a client quotes.
_USUAL_HEADERS = frozenset(
    {"host", "accept", "accept-encoding", "connection", "user-agent", "content-length", "content-type"}
)
# Hop-by-hop and body-framing headers: the server frames what it writes itself.
_FRAMING = frozenset({"content-length", "transfer-encoding", "content-encoding", "connection", "keep-alive"})

LOGIN_PAGE = (
    b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>"
    b'<form method="post" action="/login.do"><h1>Sign in to continue</h1>'
    b'<input name="user_name"><input name="user_password" type="password">'
    b"<button>Log in</button></form></body></html>"
)


class Fault(enum.Enum):
    HUGE_BODY = "huge_body"  # 200 announcing a 2 GiB body, then sending it
    ENDLESS_STREAM = "endless_stream"  # 200, chunked, never ends
    BYTE_DRIP = "byte_drip"  # 200, then one byte every ``drip_interval_s``
    SILENT = "silent"  # reads the request, never answers
    ECHO = "echo"  # ``echo_status`` whose body is the request as received, credentials first
    REDIRECT_AWAY = "redirect_away"  # 302 to the same path on another server (``elsewhere``)
    REDIRECT_LOOP = "redirect_loop"  # 302 to the very URL asked for
    HTML_LOGIN = "html_login"  # 200 text/html: a sign-in page instead of the API's JSON


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """A request as the server received it off the socket."""

    method: str
    target: str  # path and query
    headers: tuple[tuple[str, str], ...]
    body: bytes = field(repr=False)
    listing: bool = False  # a ticket-listing request, by the fake's FakeSystem.is_ticket_query

    @property
    def path(self) -> str:
        """The path as a connector names it in messages: without the query, percent-escapes decoded."""
        return unquote(self.target.split("?", 1)[0])

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)


class FaultyServer:
    """An HTTP/1.1 server on 127.0.0.1:<ephemeral>; start and stop it with ``with``.

    ``fault`` applies to the ticket-listing requests (:meth:`FakeSystem.is_ticket_query`) after the first
    ``fault_after`` of them were answered normally (so the pages before stay stored), or to every request
    when ``fault_every_request`` (a login too). Without a fake every request is faulty, or answers 404.
    """

    def __init__(
        self,
        fake: FakeSystem | None = None,
        *,
        drip_interval_s: float = 0.05,
        max_stream_bytes: int = 256 * 1024 * 1024,
        max_hold_s: float = 30.0,
    ) -> None:
        self.fake = fake
        self.fault: Fault | None = None
        self.fault_after = 0
        self.fault_every_request = False
        self.echo_status = 400
        self.elsewhere: FaultyServer | None = None  # where REDIRECT_AWAY points
        self.drip_interval_s = drip_interval_s
        self.max_stream_bytes = max_stream_bytes
        self.max_hold_s = max_hold_s
        self.requests: list[SeenRequest] = []
        self.faults_served = 0
        self._listings = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- life ---------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the faulty server is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> Self:
        server = _Server((HOST, 0), _Handler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="faulty-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end every held answer and close every connection; returns within a second."""
        self._stopping.set()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        server.join_handlers(timeout=1.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def transport(self) -> httpx.AsyncBaseTransport:
        """A client transport that sends every request here, whatever its URL's host: the connector keeps
        its configured address (https included) and no request can reach another machine."""
        return _PinnedTransport(self.port)

    # --- answering (in the server's handler threads) -----------------------------------------------------

    def listing_paths(self) -> list[str]:
        """The paths of the ticket-listing requests received, faulty answers included, in order."""
        with self._lock:
            return [seen.path for seen in self.requests if seen.listing]

    def _fault_for(self, listing: bool) -> Fault | None:
        if self.fault is None:
            return None
        if self.fault_every_request or self.fake is None:
            return self.fault
        if not listing:
            return None
        with self._lock:
            self._listings += 1
            return self.fault if self._listings > self.fault_after else None

    def _answer(self, handler: _Handler, seen: SeenRequest) -> None:
        request = httpx.Request(
            seen.method,
            f"{_origin(self.fake, seen.header('Host'))}{seen.target}",
            headers=[(k, v) for k, v in seen.headers if k.lower() != "host"],
            content=seen.body,
        )
        listing = self.fake is not None and self.fake.is_ticket_query(request)
        with self._lock:
            self.requests.append(replace(seen, listing=listing))
        fault = self._fault_for(listing)
        if fault is None:
            self._answer_normally(handler, request)
            return
        with self._lock:
            self.faults_served += 1
        writer = _FAULT_WRITERS[fault]
        writer(self, handler, seen)

    def _answer_normally(self, handler: _Handler, request: httpx.Request) -> None:
        if self.fake is None:
            handler.write_answer(404, [("Content-Type", "text/plain")], b"no such thing here")
            return
        try:
            response = self.fake.handle(request)
        except httpx.TransportError:  # a fake's injected dropped connection
            handler.close_connection = True
            return
        except AssertionError:  # not understood: the fake recorded it and the suite fails the test
            handler.write_answer(500, [("Content-Type", "text/plain")], b"the fake did not understand")
            return
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _FRAMING]
        handler.write_answer(response.status_code, headers, response.read())

    def _held(self) -> Iterator[float]:
        """Ticks of a held answer until the server stops or ``max_hold_s`` passes."""
        ends = time.monotonic() + self.max_hold_s
        while not self._stopping.is_set() and time.monotonic() < ends:
            yield time.monotonic()

    def _huge_body(self, handler: _Handler, seen: SeenRequest) -> None:
        handler.write_head(
            200, [("Content-Type", "application/json"), ("Content-Length", str(HUGE_BODY_BYTES))]
        )
        self._pour(handler, b'{"result": [' + b" " * 65_536, chunked=False)

    def _endless_stream(self, handler: _Handler, seen: SeenRequest) -> None:
        handler.write_head(200, [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")])
        self._pour(handler, b'{"result": [' + b" " * 65_536, chunked=True)

    def _pour(self, handler: _Handler, chunk: bytes, *, chunked: bool) -> None:
        sent = 0
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk
        for _ in self._held():
            if sent >= self.max_stream_bytes or not handler.send_raw(frame):
                break
            sent += len(chunk)
        handler.close_connection = True

    def _byte_drip(self, handler: _Handler, seen: SeenRequest) -> None:
        body = b'{"result": []}' + b" " * 4096
        handler.write_head(200, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        for index, _ in enumerate(self._held()):
            if index >= len(body) or not handler.send_raw(body[index : index + 1]):
                break
            self._stopping.wait(self.drip_interval_s)
        handler.close_connection = True

    def _silent(self, handler: _Handler, seen: SeenRequest) -> None:
        for _ in self._held():
            if handler.peer_gone(timeout=min(0.05, self.max_hold_s)):
                break
        handler.close_connection = True

    def _echo(self, handler: _Handler, seen: SeenRequest) -> None:
        """What a careless or hostile server does: hands back everything it was sent, credentials first."""
        usual = [(key, value) for key, value in seen.headers if key.lower() in _USUAL_HEADERS]
        unusual = [(key, value) for key, value in seen.headers if key.lower() not in _USUAL_HEADERS]
        lines = [f"body: {seen.body.decode('utf-8', 'replace')}"] if seen.body else []
        lines += [f"{key}: {value}" for key, value in [*unusual, *usual]]
        lines.append(f"request: {seen.method} {seen.target}")
        text = "You sent:\n" + "\n".join(lines)
        content_type = "text/plain; charset=utf-8"
        if self.echo_status < 300:  # a 200 that is not the API's JSON: the client quotes its start
            text = text.replace("\n", " | ")
        handler.write_answer(self.echo_status, [("Content-Type", content_type)], text.encode())

    def _redirect_away(self, handler: _Handler, seen: SeenRequest) -> None:
        if self.elsewhere is None:
            raise RuntimeError("REDIRECT_AWAY needs the other server: set FaultyServer.elsewhere")
        location = f"{self.elsewhere.url}{seen.target}"
        handler.write_answer(302, [("Location", location), ("Content-Type", "text/html")], b"<a>moved</a>")

    def _redirect_loop(self, handler: _Handler, seen: SeenRequest) -> None:
        handler.write_answer(302, [("Location", seen.target), ("Content-Type", "text/html")], b"<a>moved</a>")

    def _html_login(self, handler: _Handler, seen: SeenRequest) -> None:
        handler.write_answer(200, [("Content-Type", "text/html; charset=utf-8")], LOGIN_PAGE)


_FAULT_WRITERS = {
    Fault.HUGE_BODY: FaultyServer._huge_body,
    Fault.ENDLESS_STREAM: FaultyServer._endless_stream,
    Fault.BYTE_DRIP: FaultyServer._byte_drip,
    Fault.SILENT: FaultyServer._silent,
    Fault.ECHO: FaultyServer._echo,
    Fault.REDIRECT_AWAY: FaultyServer._redirect_away,
    Fault.REDIRECT_LOOP: FaultyServer._redirect_loop,
    Fault.HTML_LOGIN: FaultyServer._html_login,
}


def _origin(fake: FakeSystem | None, host: str | None) -> str:
    """The scheme and host the client addressed (its Host header; the pinned transport keeps it), which a
    fake may check (a token exchange goes to another host than the API)."""
    scheme = httpx.URL(fake.base_url).scheme if fake is not None else "http"
    return f"{scheme}://{host or HOST}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: FaultyServer

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._handlers: set[threading.Thread] = set()
        self._tracking = threading.Lock()

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        thread = threading.Thread(
            target=self._serve_connection, args=(request, client_address), name="faulty-handler", daemon=True
        )
        with self._tracking:
            self._connections.add(request)
            self._handlers.add(thread)
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: object) -> None:
        try:
            self.finish_request(request, client_address)
        except OSError:
            pass  # the client hung up mid-answer: what the faults provoke
        finally:
            self.shutdown_request(request)
            with self._tracking:
                self._connections.discard(request)
                self._handlers.discard(threading.current_thread())

    def close_connections(self) -> None:
        with self._tracking:
            connections = list(self._connections)
        for connection in connections:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def join_handlers(self, timeout: float) -> None:
        ends = time.monotonic() + timeout
        with self._tracking:
            handlers = list(self._handlers)
        for thread in handlers:
            thread.join(timeout=max(0.0, ends - time.monotonic()))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # an idle kept-alive connection is closed after this; stop() closes the rest at once
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a test's output is for its own failures."""

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = SeenRequest(self.command, self.path, tuple(self.headers.items()), body)
        self.server.owner._answer(self, seen)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    # --- writing, for the fault writers ---------------------------------------------------------------

    def write_head(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        self.wfile.flush()

    def write_answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.write_head(status, [*headers, ("Content-Length", str(len(body)))])
        self.send_raw(body)

    def send_raw(self, data: bytes) -> bool:
        """Write and flush; False once the client has hung up."""
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            return False
        return True

    def peer_gone(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the client to hang up; True when it has."""
        connection = self.connection
        connection.settimeout(timeout)
        try:
            peeked: bytes = connection.recv(1, socket.MSG_PEEK)
            return peeked == b""
        except TimeoutError:
            return False
        except OSError:
            return True
        finally:
            connection.settimeout(self.timeout)


class _PinnedTransport(httpx.AsyncBaseTransport):
    """Every request to 127.0.0.1:``port`` in plain HTTP; its Host header still names the configured host."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pinned = httpx.Request(
            request.method,
            request.url.copy_with(scheme="http", host=HOST, port=self._port),
            headers=request.headers,
            stream=request.stream,
            extensions=request.extensions,
        )
        return await self._inner.handle_async_request(pinned)

    async def aclose(self) -> None:
        await self._inner.aclose()
