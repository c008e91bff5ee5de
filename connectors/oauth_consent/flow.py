"""The authorization-code flow with PKCE through the system browser, refresh with rotation, and revocation.

:func:`sign_in` is the consent: a random ``state`` and PKCE pair, a loopback listener (:mod:`.loopback`), the
authorize URL opened with the injected ``open_browser`` (:func:`webbrowser.open` by default: the system
browser, where the analyst's SSO session and password manager live, never an embedded view), the redirect
awaited, and the code exchanged at the token endpoint with the verifier and the same ``redirect_uri``. The
tokens come back to the caller (the wizard keeps them with the draft; saving puts them in the keychain).

:class:`TokenManager` keeps a connector's tokens alive: the access token is renewed ``margin`` seconds before
it expires, or once when a request is answered 401. A rotated refresh token is written to the store *before*
the new access token is used: if the keychain refuses, the request fails rather than continuing with tokens
that a restart would lose (Atlassian invalidates the refresh token it was sent). :class:`ConsentAuth` is the
``httpx.Auth`` that applies it: the refresh request is yielded from the auth flow, so it goes through the
connector's own client (its transport, CA bundle and proxy) and tests need no second transport.

Errors: the browser part raises :class:`ConsentError` subclasses (denied, state mismatch, timeout,
cancelled); a token endpoint's refusal is an :class:`~connectors.errors.AuthenticationError` naming the
provider's ``error`` / ``error_description`` and saying to sign in again. No token, code or verifier is ever
logged, put in a message or in a URL (the refresh and the exchange are form bodies).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import webbrowser
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from connectors.errors import (
    AuthenticationError,
    BadResponseError,
    ConfigurationError,
    ConnectionFailedError,
    ConnectorError,
    ConnectorTimeoutError,
)
from connectors.oauth_consent.loopback import DEFAULT_PATH, LoopbackClosedError, LoopbackReceiver
from connectors.oauth_consent.pkce import new_pkce
from connectors.oauth_consent.providers import (
    ATLASSIAN_API,
    Provider,
    RevokeStyle,
    revoke_url_for,
    token_url_for,
)
from connectors.oauth_consent.tokens import EXPIRY_MARGIN, Clock, OAuthTokens, TokenStore, expiry
from connectors.secrets import redact_text, register_secret

log = logging.getLogger(__name__)

DEFAULT_CONSENT_TIMEOUT = 300.0  # five minutes to log in (SSO, MFA) and consent
TOKEN_REQUEST_TIMEOUT = 30.0
SIGN_IN_AGAIN = "sign in with the browser again (Edit the connector, Sign in…)"

BrowserOpener = Callable[[str], object]


class ConsentError(ConnectorError):
    """The browser part of the sign-in did not give a code."""


class ConsentDeniedError(ConsentError):
    """The provider redirected back with an ``error`` (the user pressed Deny, or the request was invalid)."""

    def __init__(self, connector: str, error: str, description: str | None) -> None:
        self.error = error
        self.description = description
        said = f"{error}: {description}" if description else error
        hint = "the consent was refused" if error == "access_denied" else "the provider refused the request"
        super().__init__(connector, f"{hint} ({said})")


class StateMismatchError(ConsentError):
    pass


class ConsentTimeoutError(ConsentError):
    pass


class ConsentCancelledError(ConsentError):
    pass


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """The OAuth client registered with the provider; the secret is None for a public client."""

    client_id: str
    client_secret: str | None = None

    def __repr__(self) -> str:
        secret = "set" if self.client_secret else "none"
        return f"ClientCredentials(client_id={self.client_id!r}, client_secret=<{secret}>)"

    def form(self, provider: Provider, connector: str) -> dict[str, str]:
        if not self.client_id:
            raise ConfigurationError(connector, "the OAuth client ID is not set")
        if provider.requires_client_secret and not self.client_secret:
            raise ConfigurationError(
                connector, f"{provider.display_name} requires the OAuth client secret for this sign-in"
            )
        form = {"client_id": self.client_id}
        if self.client_secret:
            register_secret(self.client_secret)
            form["client_secret"] = self.client_secret
        return form


def authorize_url(
    provider: Provider, client_id: str, redirect_uri: str, state: str, code_challenge: str | None
) -> str:
    """The URL the browser opens; it carries the challenge and the state, never a secret."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        **provider.extra_authorize_params,
    }
    if provider.scopes:
        params["scope"] = provider.scope_separator.join(provider.scopes)
    if provider.sends_pkce and code_challenge:
        params["code_challenge"] = code_challenge
        params["code_challenge_method"] = "S256"
    separator = "&" if urlsplit(provider.authorize_url).query else "?"
    return f"{provider.authorize_url}{separator}{urlencode(params)}"


async def sign_in(
    connector: str,
    provider: Provider,
    client: ClientCredentials,
    *,
    port: int = 0,
    path: str = DEFAULT_PATH,
    open_browser: BrowserOpener = webbrowser.open,
    timeout: float = DEFAULT_CONSENT_TIMEOUT,
    transport: httpx.AsyncBaseTransport | None = None,
    verify: bool | str = True,
    clock: Clock = time.time,
    site_url: str | None = None,
) -> OAuthTokens:
    """The whole consent: browser, loopback redirect, code exchange (and, for Atlassian, the site's cloud id).

    Cancelling the awaiting task closes the listener; nothing is stored here.
    """
    client.form(provider, connector)  # a missing id or secret fails before a browser opens
    state = secrets.token_urlsafe(32)
    pkce = new_pkce()
    try:
        receiver = LoopbackReceiver(state, port=port, path=path)
    except OSError as exc:
        raise ConfigurationError(
            connector, f"{exc.strerror}; close the program using it or choose another redirect port"
        ) from exc
    with receiver:
        url = authorize_url(provider, client.client_id, receiver.redirect_uri, state, pkce.challenge)
        opened = open_browser(url)
        if opened is False:
            log.warning("%s: no browser could be opened; open this address by hand: %s", connector, url)
        try:
            redirect = await receiver.wait(timeout)
        except TimeoutError as exc:
            raise ConsentTimeoutError(
                connector, f"no answer from the browser within {timeout:.0f} seconds; try again"
            ) from exc
        except LoopbackClosedError as exc:
            raise ConsentCancelledError(connector, "the sign-in was cancelled") from exc
        redirect_uri = receiver.redirect_uri
    if not redirect.state_ok:
        raise StateMismatchError(
            connector, "the browser came back from a sign-in this window did not start (state mismatch)"
        )
    if redirect.error:
        raise ConsentDeniedError(connector, redirect.error, redirect.error_description)
    if not redirect.code:
        raise ConsentError(connector, "the provider redirected back without an authorization code")
    register_secret(redirect.code)
    accounts_server = redirect.params.get("accounts-server")
    token_url = token_url_for(provider, accounts_server)
    form = {
        "grant_type": "authorization_code",
        "code": redirect.code,
        "redirect_uri": redirect_uri,
        **client.form(provider, connector),
    }
    if provider.sends_pkce:
        form["code_verifier"] = pkce.verifier
    async with httpx.AsyncClient(
        transport=transport, verify=verify, timeout=TOKEN_REQUEST_TIMEOUT, follow_redirects=False
    ) as http:
        response = await _post(http, connector, token_url, form)
        tokens = parse_token_response(connector, provider, response, clock=clock)
        extra = dict(tokens.extra)
        if accounts_server and token_url != provider.token_url:
            extra["accounts_server"] = token_url.rsplit("/oauth/", 1)[0]
        if provider.key == "atlassian":
            extra |= await atlassian_site(http, connector, tokens.access_token, site_url)
    tokens = OAuthTokens(tokens.access_token, tokens.refresh_token, tokens.expires_at, tokens.scope, extra)
    if provider.key == "atlassian" and not tokens.refresh_token:
        raise BadResponseError(
            connector, "Atlassian sent no refresh token: the app needs the offline_access scope"
        )
    return tokens


async def _post(http: httpx.AsyncClient, connector: str, url: str, form: Mapping[str, str]) -> httpx.Response:
    path = urlsplit(url).path
    try:
        return await http.post(url, data=dict(form), headers={"Accept": "application/json"})
    except httpx.TimeoutException as exc:
        raise ConnectorTimeoutError(
            connector, "the token endpoint did not answer", method="POST", path=path
        ) from exc
    except httpx.TransportError as exc:
        raise ConnectionFailedError(
            connector, f"cannot reach the token endpoint ({type(exc).__name__})", method="POST", path=path
        ) from exc


def parse_token_response(
    connector: str,
    provider: Provider,
    response: httpx.Response,
    *,
    previous: OAuthTokens | None = None,
    clock: Clock = time.time,
) -> OAuthTokens:
    """A token endpoint's answer as tokens, or the refusal as an AuthenticationError.

    Zoho answers some refusals with HTTP 200 and ``{"error": "invalid_code"}``: the body decides.
    """
    path = urlsplit(str(response.request.url)).path if response.request else ""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        if response.is_success:
            raise BadResponseError(connector, f"POST {path} did not answer a JSON object")
        body = {}
    access = body.get("access_token")
    if response.is_success and isinstance(access, str) and access and not body.get("error"):
        register_secret(access)
        refresh = body.get("refresh_token")
        refresh = refresh if isinstance(refresh, str) and refresh else None
        if refresh:
            register_secret(refresh)
        expires_at = expiry(body.get("expires_in"), clock)
        scope = str(body.get("scope") or "")
        if previous is not None:
            return previous.renewed(access, refresh, expires_at, scope)
        extra = {"api_domain": str(body["api_domain"])} if body.get("api_domain") else {}
        return OAuthTokens(access, refresh, expires_at, scope, extra)
    error = str(body.get("error") or f"HTTP {response.status_code}")
    description = body.get("error_description")
    said = f"{error}: {description}" if description else error
    raise AuthenticationError(
        connector,
        method="POST",
        path=path,
        status=response.status_code,
        server_message=redact_text(said),
        hint=f"{provider.display_name} refused the token request; {SIGN_IN_AGAIN}",
    )


async def atlassian_site(
    http: httpx.AsyncClient,
    connector: str,
    access_token: str,
    site_url: str | None,
    api_base: str = ATLASSIAN_API,
) -> dict[str, str]:
    """The cloud id of the Jira site the consent covers (``GET /oauth/token/accessible-resources``).

    Jira Cloud's API is then ``https://api.atlassian.com/ex/jira/{cloud id}``. With several sites, the one
    whose ``url`` is the connector's site URL is chosen; none matching is an error naming what was granted.
    """
    url = f"{api_base.rstrip('/')}/oauth/token/accessible-resources"
    response = await http.get(
        url, headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
    )
    if response.status_code != 200:
        raise AuthenticationError(
            connector,
            method="GET",
            path="/oauth/token/accessible-resources",
            status=response.status_code,
            server_message=redact_text(response.text[:300]),
            hint="the new token could not list the Atlassian sites it covers",
        )
    sites = response.json()
    if not isinstance(sites, list):
        raise BadResponseError(connector, "accessible-resources did not answer a list")
    wanted = (site_url or "").rstrip("/").lower()
    for site in sites:
        if isinstance(site, dict) and (not wanted or str(site.get("url", "")).rstrip("/").lower() == wanted):
            return {"cloud_id": str(site.get("id", "")), "site_url": str(site.get("url", ""))}
    granted = ", ".join(str(s.get("url")) for s in sites if isinstance(s, dict)) or "none"
    raise ConfigurationError(
        connector,
        f"the consent does not cover {site_url} (granted: {granted}); choose that site when consenting",
    )


class TokenManager:
    """One connector's tokens: loaded from the store once, renewed near expiry or after a 401, saved first."""

    def __init__(
        self,
        connector: str,
        provider: Provider,
        client: ClientCredentials,
        store: TokenStore,
        *,
        clock: Clock = time.time,
        margin: float = EXPIRY_MARGIN,
    ) -> None:
        self.connector = connector
        self.provider = provider
        self.client = client
        self.store = store
        self.clock = clock
        self.margin = margin
        self.refreshes = 0
        self._tokens: OAuthTokens | None = None
        self._invalid = False

    def current(self) -> OAuthTokens:
        if self._tokens is None:
            self._tokens = self.store.load()
            if self._tokens is None:
                raise ConfigurationError(
                    self.connector, f"not signed in to {self.provider.display_name}; {SIGN_IN_AGAIN}"
                )
        return self._tokens

    def needs_refresh(self) -> bool:
        return self._invalid or self.current().expired(self.clock(), self.margin)

    def invalidate(self) -> None:
        """The server refused the access token: renew it before the next request."""
        self._invalid = True

    def refresh_request(self) -> httpx.Request:
        tokens = self.current()
        if not tokens.refresh_token:
            raise AuthenticationError(
                self.connector,
                method="POST",
                path=urlsplit(self.provider.token_url).path,
                status=401,
                server_message="the access token expired and there is no refresh token",
                hint=SIGN_IN_AGAIN,
            )
        form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
        form |= self.client.form(self.provider, self.connector)
        url = token_url_for(self.provider, tokens.extra.get("accounts_server"))
        return httpx.Request("POST", url, data=form, headers={"Accept": "application/json"})

    def accept_refresh(self, response: httpx.Response) -> OAuthTokens:
        """Parse the refresh answer and store the new set before anyone uses it."""
        renewed = parse_token_response(
            self.connector, self.provider, response, previous=self.current(), clock=self.clock
        )
        self.store.save(renewed)  # a rotated refresh token must survive a crash right after this line
        self._tokens = renewed
        self._invalid = False
        self.refreshes += 1
        return renewed

    async def refresh(self, http: httpx.AsyncClient) -> OAuthTokens:
        """An explicit refresh through ``http`` (the wizard's re-test, tests)."""
        request = self.refresh_request()
        try:
            response = await http.send(request)
        except httpx.TransportError as exc:
            raise ConnectionFailedError(
                self.connector,
                f"cannot reach the token endpoint ({type(exc).__name__})",
                method="POST",
                path=request.url.path,
            ) from exc
        return self.accept_refresh(response)


class ConsentAuth(httpx.Auth):
    """Bearer (or Zoho's ``Zoho-oauthtoken``) from a :class:`TokenManager`, renewed inside the auth flow.

    One lock serialises renewals: two requests finding the token expired at once must not both spend the
    same rotating refresh token (the second would be refused and the connector signed out).
    """

    def __init__(self, manager: TokenManager, scheme: str = "Bearer") -> None:
        self.manager = manager
        self.scheme = scheme
        self._lock = asyncio.Lock()

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("ConsentAuth renews tokens on the async client only")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self.manager.needs_refresh():
            async with self._lock:
                if self.manager.needs_refresh():
                    refreshed = yield self.manager.refresh_request()
                    await refreshed.aread()
                    self.manager.accept_refresh(refreshed)
        used = self.manager.current().access_token
        request.headers["Authorization"] = f"{self.scheme} {used}"
        response = yield request
        if response.status_code != 401 or not self.manager.current().refresh_token:
            return
        async with self._lock:
            if self.manager.current().access_token == used:  # nobody renewed it meanwhile
                self.manager.invalidate()
                refreshed = yield self.manager.refresh_request()
                await refreshed.aread()
                self.manager.accept_refresh(refreshed)
        request.headers["Authorization"] = f"{self.scheme} {self.manager.current().access_token}"
        yield request


def revoke_request(
    provider: Provider, client: ClientCredentials, tokens: OAuthTokens
) -> httpx.Request | None:
    """The revocation of the refresh token (which ends its access tokens too), or None where there is none."""
    url = revoke_url_for(provider, tokens.extra.get("accounts_server"))
    token = tokens.refresh_token or tokens.access_token
    if url is None or provider.revoke_style is RevokeStyle.NONE:
        return None
    if provider.revoke_style is RevokeStyle.QUERY:
        # Zoho documents the token only as a query parameter; the request is POST over TLS and never logged
        # (httpx's own log line is masked by the redactor, which knows the token).
        return httpx.Request("POST", url, params={"token": token})
    form = {"token": token, "client_id": client.client_id}
    if client.client_secret:
        form["client_secret"] = client.client_secret
    return httpx.Request("POST", url, data=form)


def revoke(
    connector: str,
    provider: Provider,
    client: ClientCredentials,
    tokens: OAuthTokens,
    *,
    transport: httpx.BaseTransport | None = None,
    verify: bool | str = True,
) -> str | None:
    """Revoke at the provider (blocking: it runs where a connector is removed, a worker or the CLI).

    Returns None when done (or when the provider has no revocation), else what went wrong, for the caller to
    report: a removal must not fail because the provider is unreachable.
    """
    request = revoke_request(provider, client, tokens)
    if request is None:
        return None
    try:
        with httpx.Client(transport=transport, verify=verify, timeout=TOKEN_REQUEST_TIMEOUT) as http:
            response = http.send(request)
    except httpx.HTTPError as exc:
        name = provider.display_name
        return f"could not revoke the {name} token ({type(exc).__name__}); revoke the app's access in {name}"
    if response.is_success:
        return None
    return redact_text(
        f"{provider.display_name} did not revoke the token "
        f"(HTTP {response.status_code}: {response.text[:200]})"
    )
