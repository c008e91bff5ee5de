"""A local OAuth 2.0 authorization server in the shapes of ServiceNow, Atlassian (3LO) and Zoho Accounts.

One request handler (:meth:`FakeAuthorizationServer.handle`) serves both ways a test reaches it: as an
``httpx.MockTransport`` (for fixed hosts such as ``auth.atlassian.com``) and as a real HTTP server on
127.0.0.1 (:meth:`FakeAuthorizationServer.serving`), which a ServiceNow "instance" URL can point at.

What it checks, like the real servers (see ``connectors/oauth_consent/providers.py`` for the sources):

- authorize: the client id, ``response_type=code``, the redirect URI (exactly one registered, or any
  127.0.0.1 port when ``registered_redirect`` is None, as RFC 8252 asks), Atlassian's ``audience`` and
  ``prompt=consent``, Zoho's ``access_type=offline``; then redirects (302) to the loopback with ``code`` and
  the ``state`` (Zoho adds ``location`` and ``accounts-server``), or with ``error=access_denied`` when the
  simulated user denies;
- token: client authentication (the secret when the client has one, required for Atlassian and Zoho), the
  code (one use, two minutes, bound to its redirect URI and client), the PKCE verifier against the challenge
  (S256), refresh with rotation (Atlassian: the refresh token sent is dead afterwards), errors in each
  provider's body (Atlassian 403 ``invalid_grant``; ServiceNow 401 ``server_error``/``access_denied``; Zoho
  HTTP 200 ``{"error": "invalid_code"}``);
- revoke (ServiceNow form ``token``, Zoho query ``token``): the refresh token and its access tokens die;
- Atlassian's ``/oauth/token/accessible-resources`` and a bearer check (:meth:`access_valid`) for fakes of
  the resource servers.

A request it does not know is recorded in ``unexpected`` and answered 404: the tests assert it stays empty.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

Shape = Literal["servicenow", "atlassian", "zoho"]

PATHS: dict[Shape, dict[str, str]] = {
    "servicenow": {
        "authorize": "/oauth_auth.do",
        "token": "/oauth_token.do",
        "revoke": "/oauth_revoke_token.do",
    },
    "atlassian": {
        "authorize": "/authorize",
        "token": "/oauth/token",
        "resources": "/oauth/token/accessible-resources",
    },
    "zoho": {"authorize": "/oauth/v2/auth", "token": "/oauth/v2/token", "revoke": "/oauth/v2/token/revoke"},
}


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str | None
    method: str | None
    issued_at: float
    used: bool = False


class FakeAuthorizationServer:
    def __init__(
        self,
        shape: Shape,
        *,
        client_id: str = "rd-client-7f3a",
        client_secret: str | None = "rd-secret-Qx9!v2",
        registered_redirect: str | None = None,
        token_lifetime: int = 3600,
        rotate_refresh_tokens: bool | None = None,
        cloud_id: str = "11223344-aaaa-bbbb-cccc-556677889900",
        site_url: str = "https://acme.atlassian.net",
    ) -> None:
        self.shape: Shape = shape
        self.client_id = client_id
        self.client_secret = client_secret
        self.registered_redirect = registered_redirect
        self.token_lifetime = token_lifetime
        self.rotate = shape == "atlassian" if rotate_refresh_tokens is None else rotate_refresh_tokens
        self.cloud_id = cloud_id
        self.site_url = site_url
        self.base_url = ""  # set while serving
        self.user_decision: Literal["allow", "deny"] = "allow"
        self.forge_state = False  # redirect with a state the client did not send
        self.unexpected: list[str] = []
        self.token_requests: list[str] = []  # grant types, in order
        self.pkce_verified = 0
        self.revoked: list[str] = []
        self.authorize_params: list[dict[str, str]] = []
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, float] = {}  # token -> expiry on the fake's clock
        self._refresh: dict[str, set[str]] = {}  # refresh token -> its access tokens
        self._offset = 0.0
        self._lock = threading.Lock()

    # --- what tests call ---------------------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds

    def access_valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._access.get(token)
        return expiry is not None and self.now() < expiry

    def refresh_valid(self, token: str) -> bool:
        with self._lock:
            return token in self._refresh

    def kill_access_tokens(self) -> None:
        """Access tokens stop working early (the server restarted, an admin revoked sessions)."""
        with self._lock:
            self._access.clear()

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    @contextmanager
    def serving(self) -> Iterator[str]:
        """Serve on a real socket at 127.0.0.1 (a free port); yields the base URL."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _bridge(self))
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self.base_url = f"http://127.0.0.1:{server.server_port}"
        try:
            yield self.base_url
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=2)

    # --- the handler -------------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        paths = PATHS[self.shape]
        path = request.url.path
        if request.method == "GET" and path == paths["authorize"]:
            return self._authorize(request)
        if request.method == "POST" and path == paths["token"]:
            return self._token(request)
        if request.method == "POST" and path == paths.get("revoke"):
            return self._revoke(request)
        if request.method == "GET" and path == paths.get("resources"):
            return self._resources(request)
        self.unexpected.append(f"{request.method} {path}")
        return httpx.Response(404, json={"error": "not_found"})

    def _authorize(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        self.authorize_params.append(params)
        redirect_uri = params.get("redirect_uri", "")
        if params.get("client_id") != self.client_id:
            return httpx.Response(400, text="invalid client_id")  # shown to the user, no redirect
        if not self._redirect_allowed(redirect_uri):
            return httpx.Response(400, text="redirect_uri does not match the registered callback URL")
        problem = self._authorize_problem(params)
        if problem:
            return _redirect(
                redirect_uri,
                {"error": "invalid_request", "error_description": problem, "state": params.get("state", "")},
            )
        state = "forged-" + secrets.token_urlsafe(8) if self.forge_state else params.get("state", "")
        if self.user_decision == "deny":
            return _redirect(
                redirect_uri,
                {"error": "access_denied", "error_description": "The user denied access", "state": state},
            )
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Code(
                self.client_id,
                redirect_uri,
                params.get("code_challenge"),
                params.get("code_challenge_method"),
                self.now(),
            )
        answer = {"code": code, "state": state}
        if self.shape == "zoho":
            answer |= {"location": "us", "accounts-server": self.base_url or "https://accounts.zoho.com"}
        return _redirect(redirect_uri, answer)

    def _redirect_allowed(self, redirect_uri: str) -> bool:
        if self.registered_redirect is not None:
            return redirect_uri == self.registered_redirect
        parts = urlsplit(redirect_uri)
        return parts.scheme == "http" and parts.hostname == "127.0.0.1" and parts.path == "/callback"

    def _authorize_problem(self, params: dict[str, str]) -> str | None:
        if params.get("response_type") != "code":
            return "response_type must be code"
        if self.shape == "atlassian":
            if params.get("audience") != "api.atlassian.com" or params.get("prompt") != "consent":
                return "audience=api.atlassian.com and prompt=consent are required"
            if "offline_access" not in params.get("scope", "").split():
                return "no offline_access"
        if self.shape == "zoho":
            if params.get("access_type") != "offline":
                return "access_type=offline expected"
            if not params.get("code_challenge"):
                return "code_challenge is required for a mobile/desktop client"
        if params.get("code_challenge") and params.get("code_challenge_method") != "S256":
            return "only S256"
        return None

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {key: values[-1] for key, values in parse_qs(request.content.decode()).items()}
        if request.url.params:  # secrets in the URL: a client mistake this fake refuses to reward
            self.unexpected.append("token request with query parameters")
        grant = form.get("grant_type", "")
        self.token_requests.append(grant)
        if not self._client_ok(form):
            return self._error(401, "invalid_client", "Client authentication failed")
        if grant == "authorization_code":
            return self._exchange(form)
        if grant == "refresh_token":
            return self._refreshed(form)
        return self._error(400, "unsupported_grant_type", grant)

    def _client_ok(self, form: dict[str, str]) -> bool:
        if form.get("client_id") != self.client_id:
            return False
        if self.client_secret is None:
            return "client_secret" not in form
        return form.get("client_secret") == self.client_secret

    def _exchange(self, form: dict[str, str]) -> httpx.Response:
        with self._lock:
            code = self._codes.get(form.get("code", ""))
            if code is None or code.used or self.now() - code.issued_at > 120:
                return self._error(400, "invalid_grant", "Invalid authorization code")
            code.used = True
        if form.get("redirect_uri") != code.redirect_uri:
            return self._error(400, "invalid_grant", "redirect_uri mismatch")
        if code.challenge is not None:
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != code.challenge:
                return self._error(400, "invalid_grant", "PKCE verification failed")
            self.pkce_verified += 1
        return self._issue(refresh=secrets.token_urlsafe(32))

    def _refreshed(self, form: dict[str, str]) -> httpx.Response:
        refresh = form.get("refresh_token", "")
        with self._lock:
            if refresh not in self._refresh:
                return self._error(403, "invalid_grant", "Unknown or invalid refresh token.")
            if self.rotate:
                for access in self._refresh.pop(refresh):
                    self._access.pop(access, None)
        return self._issue(
            refresh=secrets.token_urlsafe(32) if self.rotate else refresh,
            send_refresh=self.rotate or self.shape == "servicenow",
        )

    def _issue(self, *, refresh: str, send_refresh: bool = True) -> httpx.Response:
        access = secrets.token_urlsafe(40)
        with self._lock:
            self._access[access] = self.now() + self.token_lifetime
            self._refresh.setdefault(refresh, set()).add(access)
        body: dict[str, object] = {
            "access_token": access,
            "expires_in": self.token_lifetime,
            "token_type": "Bearer",
        }
        if send_refresh:
            body["refresh_token"] = refresh
        if self.shape == "atlassian":
            body["scope"] = "read:jira-work write:jira-work read:jira-user offline_access"
        if self.shape == "zoho":
            body["api_domain"] = "https://www.zohoapis.com"
            body["scope"] = "SDPOnDemand.requests.ALL"
        if self.shape == "servicenow":
            body["scope"] = "useraccount"
        return httpx.Response(200, json=body)

    def _revoke(self, request: httpx.Request) -> httpx.Response:
        if self.shape == "zoho":
            token = request.url.params.get("token", "")
        else:
            form = {key: values[-1] for key, values in parse_qs(request.content.decode()).items()}
            token = form.get("token", "")
        with self._lock:
            accesses = self._refresh.pop(token, None)
            if accesses is None and token not in self._access:
                return (
                    httpx.Response(400, json={"error": "invalid_token"})
                    if self.shape == "zoho"
                    else httpx.Response(200)
                )
            for access in accesses or {token}:
                self._access.pop(access, None)
        self.revoked.append(token)
        return (
            httpx.Response(200, json={"status": "success"}) if self.shape == "zoho" else httpx.Response(200)
        )

    def _resources(self, request: httpx.Request) -> httpx.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not self.access_valid(token):
            return httpx.Response(401, json={"code": 401, "message": "Unauthorized"})
        site = {
            "id": self.cloud_id,
            "url": self.site_url,
            "name": "acme",
            "scopes": ["read:jira-work"],
            "avatarUrl": "",
        }
        return httpx.Response(200, json=[site])

    def _error(self, status: int, error: str, description: str) -> httpx.Response:
        if self.shape == "servicenow":
            return httpx.Response(401, json={"error": "server_error", "error_description": "access_denied"})
        if self.shape == "zoho":
            return httpx.Response(200, json={"error": "invalid_code" if error == "invalid_grant" else error})
        return httpx.Response(status, json={"error": error, "error_description": description})


def _redirect(redirect_uri: str, params: dict[str, str]) -> httpx.Response:
    separator = "&" if "?" in redirect_uri else "?"
    return httpx.Response(302, headers={"Location": f"{redirect_uri}{separator}{urlencode(params)}"})


def _bridge(fake: FakeAuthorizationServer) -> type[BaseHTTPRequestHandler]:
    """A request handler class that hands each request to ``fake.handle`` as an httpx.Request."""

    class Bridge(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            url = f"http://{self.headers.get('Host', '127.0.0.1')}{self.path}"
            request = httpx.Request(self.command, url, headers=dict(self.headers), content=body)
            response = fake.handle(request)
            self.send_response(response.status_code)
            for name, value in response.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.content)))
            self.end_headers()
            self.wfile.write(response.content)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    return Bridge


class FakeBrowser:
    """The system browser, for tests: follows the authorize URL's redirects to the loopback, in a thread.

    Provider hosts go through ``provider_transport`` (the fake's handler) unless the URL is the fake served on
    127.0.0.1; the final hop to the loopback listener is a real HTTP request. ``pages`` keeps what the
    loopback answered (status, text).
    """

    def __init__(self, provider_transport: httpx.BaseTransport | None = None, *, act: bool = True) -> None:
        self.provider_transport = provider_transport
        self.act = act
        self.opened: list[str] = []
        self.pages: list[tuple[int, str]] = []
        self.threads: list[threading.Thread] = []

    def __call__(self, url: str) -> bool:
        self.opened.append(url)
        if self.act:
            thread = threading.Thread(target=self._follow, args=(url,), daemon=True)
            thread.start()
            self.threads.append(thread)
        return True

    def _follow(self, url: str) -> None:
        for _ in range(5):
            host = urlsplit(url).hostname
            if host == "127.0.0.1" or self.provider_transport is None:
                with httpx.Client(timeout=5) as http:
                    response = http.get(url)
            else:
                with httpx.Client(transport=self.provider_transport, timeout=5) as http:
                    response = http.get(url)
            if response.status_code in (301, 302, 303, 307) and "Location" in response.headers:
                url = response.headers["Location"]
                continue
            self.pages.append((response.status_code, response.text))
            return

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=5)
