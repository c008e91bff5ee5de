"""The loopback redirect of a native app (RFC 8252 section 7.3): a one-shot HTTP listener on 127.0.0.1.

The provider sends the browser back to ``http://127.0.0.1:<port><path>?code=…&state=…``. This listener:

- binds 127.0.0.1 only (never 0.0.0.0, so nothing on the network reaches it), on port 0 (the OS picks a free
  one, as RFC 8252 recommends) or on the fixed port a provider needs registered exactly;
- answers the *first* GET on the redirect path and then stops: that request decides the sign-in. Other paths
  (a browser's ``/favicon.ico``, a probe) get 404 and do not count; other methods get 405;
- checks ``state`` in constant time (:func:`hmac.compare_digest`): a redirect that this sign-in did not start
  (a cross-site request forgery, a stale tab) is refused, not exchanged;
- returns the ``code`` (and any other parameter, e.g. Zoho's ``accounts-server``) or the provider's
  ``error`` / ``error_description`` (the user pressed "Deny");
- caps what it reads (a request line of 8 KiB, the standard library's header limits) and gives each
  connection a few seconds, so a stray client cannot hold it;
- answers the browser with a small page ("you can close this tab") with ``Cache-Control: no-store`` and
  ``Referrer-Policy: no-referrer``, so the code in the address bar leaks nowhere.

The server runs in a daemon thread; :meth:`LoopbackReceiver.wait` awaits it from the asyncio (qasync) loop:
the thread hands the result over with ``loop.call_soon_threadsafe``, never by touching the loop's future
itself. Cancelling the awaiting task, :meth:`cancel` or the timeout all close the socket.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import os
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import parse_qs, urlsplit

LOOPBACK_HOST = "127.0.0.1"
DEFAULT_PATH = "/callback"
MAX_REQUEST_LINE = 8192
CONNECTION_TIMEOUT = 5.0  # seconds a connection may take to send its request


@dataclass(frozen=True, slots=True)
class Redirect:
    """What the provider sent back: the code, or its error; ``state_ok`` False when the state did not match.

    ``params`` holds every query parameter (one value each), e.g. Zoho's ``location`` and
    ``accounts-server``. The code is a one-use secret: it never goes into a repr or a log.
    """

    code: str | None
    error: str | None = None
    error_description: str | None = None
    state_ok: bool = True
    params: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"Redirect(code={'<hidden>' if self.code else None}, error={self.error!r}, "
            f"state_ok={self.state_ok!r})"
        )


class LoopbackClosedError(Exception):
    """The listener was cancelled or closed before the browser came back."""


class _Server(HTTPServer):
    """One listener; ``receiver`` is where the handler reports the redirect."""

    receiver: LoopbackReceiver

    def handle_error(self, request: object, client_address: object) -> None:
        """A broken browser connection is not the sign-in's failure; and the request line (the code) must
        not be printed, which the default does."""

    def server_bind(self) -> None:
        _exclusive_reuse(self.socket)
        self.socket.bind(self.server_address)
        host, port = self.socket.getsockname()[:2]
        self.server_name = host
        self.server_port = port


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = CONNECTION_TIMEOUT  # socket timeout per connection
    protocol_version = "HTTP/1.0"
    server_version = "RunbookDesk"
    sys_version = ""

    def parse_request(self) -> bool:
        if len(getattr(self, "raw_requestline", b"")) > MAX_REQUEST_LINE:
            self.command, self.requestline, self.request_version = "", "", "HTTP/1.0"
            self.send_error(414)
            return False
        return super().parse_request()

    def do_GET(self) -> None:
        receiver = self.server.receiver
        target = urlsplit(self.path)
        if target.path != receiver.path or receiver.done:
            self._page(404, "Not found", "This address only receives one sign-in.")
            return
        params = {key: values[0] for key, values in parse_qs(target.query, keep_blank_values=True).items()}
        redirect = receiver.accept(params)
        if not redirect.state_ok:
            self._page(
                400, "Sign-in refused", "This sign-in was not started by Runbook Desk (state mismatch)."
            )
        elif redirect.error:
            detail = redirect.error_description or redirect.error
            self._page(200, "Sign-in not completed", f"The provider said: {detail}. You can close this tab.")
        else:
            self._page(200, "Signed in", "Runbook Desk received the sign-in. You can close this tab.")

    def _refuse(self) -> None:
        self._page(405, "Method not allowed", "Only GET.")

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _refuse

    def _page(self, status: int, title: str, text: str) -> None:
        body = (
            "<!doctype html><meta charset=utf-8><title>Runbook Desk</title>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Silent: the request line carries the authorization code."""


class LoopbackReceiver:
    """A listener for one sign-in; use as a context manager so the port is always released.

    ``port`` 0 lets the OS choose (RFC 8252); a provider that matches redirect URIs exactly needs the fixed
    port registered with it.
    """

    def __init__(self, expected_state: str, *, port: int = 0, path: str = DEFAULT_PATH) -> None:
        if not path.startswith("/"):
            raise ValueError("the redirect path must start with /")
        self.path = path
        self._expected_state = expected_state
        self._lock = threading.Lock()
        self._result: Redirect | None = None
        self._closed = False
        self._listeners: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[Redirect]]] = []
        try:
            self._server = _Server((LOOPBACK_HOST, port), _Handler)
        except OSError as exc:
            raise OSError(
                exc.errno, f"cannot listen on {LOOPBACK_HOST}:{port} for the sign-in redirect: {exc.strerror}"
            ) from exc
        self._server.receiver = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="oauth-loopback",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    @property
    def redirect_uri(self) -> str:
        return f"http://{LOOPBACK_HOST}:{self.port}{self.path}"

    @property
    def done(self) -> bool:
        with self._lock:
            return self._result is not None or self._closed

    def accept(self, params: dict[str, str]) -> Redirect:
        """Called on the server thread for the first GET on the path: judge it and wake the waiter."""
        state = params.get("state", "")
        state_ok = bool(state) and hmac.compare_digest(state.encode(), self._expected_state.encode())
        error = params.get("error") or None
        redirect = Redirect(
            code=None if error or not state_ok else (params.get("code") or None),
            error=error,
            error_description=params.get("error_description") or None,
            state_ok=state_ok,
            params=params,
        )
        with self._lock:
            if self._result is not None:
                return redirect
            self._result = redirect
            listeners = list(self._listeners)
        for loop, future in listeners:
            loop.call_soon_threadsafe(_settle, future, redirect)
        return redirect

    async def wait(self, timeout: float) -> Redirect:
        """The redirect, awaited on the running loop; ``TimeoutError`` after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Redirect] = loop.create_future()
        with self._lock:
            if self._closed:
                raise LoopbackClosedError("the sign-in listener is closed")
            if self._result is not None:
                return self._result
            self._listeners.append((loop, future))
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            with self._lock:
                self._listeners = [(lp, fut) for lp, fut in self._listeners if fut is not future]

    def cancel(self) -> None:
        """Stop waiting (any thread): a waiter gets :class:`LoopbackClosedError`; the socket closes."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            listeners = list(self._listeners)
        for loop, future in listeners:
            loop.call_soon_threadsafe(_fail, future)
        self._shutdown()

    close = cancel

    def _shutdown(self) -> None:
        self._server.shutdown()  # waits for serve_forever to return (one poll interval)
        self._server.server_close()
        self._thread.join(timeout=2)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cancel()


def _settle(future: asyncio.Future[Redirect], redirect: Redirect) -> None:
    if not future.done():
        future.set_result(redirect)


def _fail(future: asyncio.Future[Redirect]) -> None:
    if not future.done():
        future.set_exception(LoopbackClosedError("the sign-in was cancelled"))


def _exclusive_reuse(sock: socket.socket) -> None:
    """Rebind a fixed port at once after the last sign-in (its closed connections linger in TIME_WAIT), yet
    never share it with another listener: on POSIX ``SO_REUSEADDR`` allows exactly that; on Windows it would
    let another program bind the same port too, so there ``SO_EXCLUSIVEADDRUSE`` instead."""
    exclusive = getattr(socket, "SO_EXCLUSIVEADDRUSE", None)
    if os.name == "nt" and exclusive is not None:
        sock.setsockopt(socket.SOL_SOCKET, exclusive, 1)
    else:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)


def port_is_free(port: int) -> bool:
    """Whether ``port`` on 127.0.0.1 can be listened on now (the wizard warns before opening a browser)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        _exclusive_reuse(probe)
        try:
            probe.bind((LOOPBACK_HOST, port))
        except OSError:
            return False
    return True
