"""Browser sign-in (issue 17): PKCE, the loopback redirect, the code exchange, refresh with rotation, revoke.

The authorization server is :mod:`tests.connectors.fake_oauth_server` (ServiceNow, Atlassian and Zoho
shapes), reached on a real 127.0.0.1 socket or through its handler as a transport; the "browser" follows the
authorize URL's redirect to the real loopback listener. Nothing here sleeps for a token to expire: the token
manager's clock is moved instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from connectors.base import ConnectorSettings
from connectors.configs import create_config, remove_config, settings_for
from connectors.errors import AuthenticationError
from connectors.oauth_consent import flow, providers
from connectors.oauth_consent.connector import CLIENT_ID_FIELD, CLIENT_SECRET_FIELD
from connectors.oauth_consent.flow import (
    ClientCredentials,
    ConsentAuth,
    ConsentDeniedError,
    ConsentTimeoutError,
    StateMismatchError,
    TokenManager,
    sign_in,
)
from connectors.oauth_consent.loopback import LoopbackReceiver, port_is_free
from connectors.oauth_consent.pkce import UNRESERVED, Pkce, new_pkce, new_verifier, s256_challenge
from connectors.oauth_consent.tokens import TOKENS_FIELD, KeychainTokenStore, MemoryTokenStore, OAuthTokens
from connectors.secrets import SERVICE_NAME
from connectors.testing.memory_keyring import MemoryKeyring
from connectors.ticketing.servicenow import ServiceNowConnector
from core.store.models import AuditEvent
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from tests.connectors.fake_oauth_server import FakeAuthorizationServer, FakeBrowser
from tests.connectors.fake_servicenow import FakeServiceNow

SN = "ServiceNow (browser)"


# --- PKCE ------------------------------------------------------------------------------------------------


def test_the_s256_challenge_is_rfc_7636s_own_example() -> None:
    # RFC 7636 appendix B.
    assert s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == (
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_verifiers_are_43_to_128_unreserved_characters_and_never_repeat() -> None:
    for length in (43, 64, 128):
        verifier = new_verifier(length)
        assert len(verifier) == length and set(verifier) <= set(UNRESERVED)
    for bad in (42, 129):
        with pytest.raises(ValueError, match="43 to 128"):
            new_verifier(bad)
    assert len({new_verifier() for _ in range(200)}) == 200
    pkce = new_pkce()
    assert pkce.verifier not in repr(pkce) and s256_challenge(pkce.verifier) == pkce.challenge


# --- the loopback listener ---------------------------------------------------------------------------------


def test_the_listener_ignores_favicon_refuses_posts_and_long_lines_then_takes_one_redirect() -> None:
    async def go() -> tuple[Any, list[int]]:
        with LoopbackReceiver("s" * 20) as receiver:
            assert receiver.redirect_uri.startswith("http://127.0.0.1:")
            statuses: list[int] = []

            def poke() -> None:
                with httpx.Client(timeout=5) as http:
                    base = f"http://127.0.0.1:{receiver.port}"
                    statuses.append(http.get(f"{base}/favicon.ico").status_code)
                    statuses.append(http.post(f"{base}/callback", data={"code": "x"}).status_code)
                    statuses.append(http.get(f"{base}/callback?pad={'a' * 9000}").status_code)
                    page = http.get(f"{base}/callback?code=abc&state={'s' * 20}")
                    statuses.append(page.status_code)
                    assert page.headers["Cache-Control"] == "no-store"
                    assert page.headers["Referrer-Policy"] == "no-referrer"
                    statuses.append(http.get(f"{base}/callback?code=second&state={'s' * 20}").status_code)

            poker = asyncio.get_running_loop().run_in_executor(None, poke)
            redirect = await receiver.wait(5)
            await poker
            return redirect, statuses

    redirect, statuses = asyncio.run(go())
    assert statuses == [404, 405, 414, 200, 404]
    assert redirect.code == "abc" and redirect.state_ok
    assert "abc" not in repr(redirect)


# --- the whole flow, per provider ---------------------------------------------------------------------------


def test_servicenow_public_client_signs_in_with_pkce_and_no_secret() -> None:
    fake = FakeAuthorizationServer("servicenow", client_secret=None)
    with fake.serving() as instance:
        browser = FakeBrowser()
        tokens = asyncio.run(
            sign_in(
                SN,
                providers.servicenow(instance),
                ClientCredentials(fake.client_id),
                open_browser=browser,
                timeout=10,
            )
        )
        browser.join()
    assert fake.access_valid(tokens.access_token)
    assert tokens.refresh_token is not None and fake.refresh_valid(tokens.refresh_token)
    assert tokens.expires_at == pytest.approx(time.time() + 3600, abs=30)
    assert fake.pkce_verified == 1 and fake.token_requests == ["authorization_code"]
    sent = fake.authorize_params[0]
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
    assert "client_secret" not in browser.opened[0]
    assert browser.pages == [(200, browser.pages[0][1])] and "close this tab" in browser.pages[0][1]
    assert fake.unexpected == []


def test_atlassian_needs_the_secret_and_finds_the_sites_cloud_id() -> None:
    fake = FakeAuthorizationServer("atlassian")
    browser = FakeBrowser(fake.transport())
    tokens = asyncio.run(
        sign_in(
            "Jira (browser)",
            providers.atlassian(),
            ClientCredentials(fake.client_id, fake.client_secret),
            open_browser=browser,
            transport=fake.transport(),
            timeout=10,
            site_url="https://acme.atlassian.net/",
        )
    )
    browser.join()
    assert tokens.extra == {"cloud_id": fake.cloud_id, "site_url": fake.site_url}
    sent = fake.authorize_params[0]
    assert sent["audience"] == "api.atlassian.com" and sent["prompt"] == "consent"
    assert "offline_access" in sent["scope"].split()
    with pytest.raises(Exception, match="requires the OAuth client secret"):
        asyncio.run(sign_in("Jira", providers.atlassian(), ClientCredentials(fake.client_id), timeout=1))
    assert fake.unexpected == []


def test_zoho_exchanges_at_the_accounts_server_the_redirect_names() -> None:
    fake = FakeAuthorizationServer("zoho")
    browser = FakeBrowser(fake.transport())
    tokens = asyncio.run(
        sign_in(
            "SDP (browser)",
            providers.zoho("https://accounts.zoho.eu"),
            ClientCredentials(fake.client_id, fake.client_secret),
            open_browser=browser,
            transport=fake.transport(),
            timeout=10,
        )
    )
    browser.join()
    # The user's account lives in the US data centre although the connector was set to the EU one.
    assert tokens.extra["accounts_server"] == "https://accounts.zoho.com"
    assert tokens.extra["api_domain"] == "https://www.zohoapis.com"
    assert fake.authorize_params[0]["access_type"] == "offline"
    assert fake.authorize_params[0]["scope"] == "SDPOnDemand.requests.ALL"
    assert fake.pkce_verified == 1


def test_a_redirect_with_another_state_is_refused_and_never_exchanged() -> None:
    fake = FakeAuthorizationServer("servicenow", client_secret=None)
    fake.forge_state = True
    with fake.serving() as instance:
        browser = FakeBrowser()
        with pytest.raises(StateMismatchError, match="state mismatch"):
            asyncio.run(
                sign_in(
                    SN,
                    providers.servicenow(instance),
                    ClientCredentials(fake.client_id),
                    open_browser=browser,
                    timeout=10,
                )
            )
        browser.join()
    assert fake.token_requests == []
    assert browser.pages[0][0] == 400


def test_denying_consent_says_so() -> None:
    fake = FakeAuthorizationServer("atlassian")
    fake.user_decision = "deny"
    browser = FakeBrowser(fake.transport())
    with pytest.raises(
        ConsentDeniedError, match=r"consent was refused \(access_denied: The user denied access\)"
    ):
        asyncio.run(
            sign_in(
                "Jira",
                providers.atlassian(),
                ClientCredentials(fake.client_id, fake.client_secret),
                open_browser=browser,
                transport=fake.transport(),
                timeout=10,
            )
        )
    browser.join()
    assert fake.token_requests == []


def test_no_answer_times_out_and_frees_the_port() -> None:
    browser = FakeBrowser(act=False)
    port = _free_port()
    with pytest.raises(ConsentTimeoutError, match="no answer from the browser within 0 seconds"):
        asyncio.run(
            sign_in(
                SN,
                providers.servicenow("https://x.service-now.com"),
                ClientCredentials("id"),
                open_browser=browser,
                port=port,
                timeout=0.3,
            )
        )
    assert f"redirect_uri=http%3A%2F%2F127.0.0.1%3A{port}%2Fcallback" in browser.opened[0]
    assert port_is_free(port)


def test_cancelling_the_sign_in_closes_the_listener() -> None:
    browser = FakeBrowser(act=False)
    port = _free_port()

    async def go() -> None:
        task = asyncio.create_task(
            sign_in(
                SN,
                providers.servicenow("https://x.service-now.com"),
                ClientCredentials("id"),
                open_browser=browser,
                port=port,
                timeout=30,
            )
        )
        await asyncio.sleep(0.2)
        assert not port_is_free(port)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    assert port_is_free(port)


def test_a_cancel_from_another_thread_ends_the_wait() -> None:
    async def go() -> None:
        receiver = LoopbackReceiver("state-0123456789")
        asyncio.get_running_loop().call_later(0.1, receiver.cancel)
        with pytest.raises(Exception, match="cancelled"):
            await receiver.wait(10)

    asyncio.run(go())


def test_a_code_exchanged_with_the_wrong_verifier_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeAuthorizationServer("atlassian")
    honest = new_pkce()
    monkeypatch.setattr(flow, "new_pkce", lambda: Pkce("x" * 64, honest.challenge))
    browser = FakeBrowser(fake.transport())
    with pytest.raises(AuthenticationError, match="invalid_grant: PKCE verification failed"):
        asyncio.run(
            sign_in(
                "Jira",
                providers.atlassian(),
                ClientCredentials(fake.client_id, fake.client_secret),
                open_browser=browser,
                transport=fake.transport(),
                timeout=10,
            )
        )
    browser.join()


# --- refresh, rotation, 401 ---------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _issued(
    fake: FakeAuthorizationServer, provider: providers.Provider, client: ClientCredentials
) -> OAuthTokens:
    browser = FakeBrowser(fake.transport())
    tokens = asyncio.run(
        sign_in("Jira", provider, client, open_browser=browser, transport=fake.transport(), timeout=10)
    )
    browser.join()
    return tokens


def _api(fake: FakeAuthorizationServer) -> httpx.MockTransport:
    """The fake authorization server plus a resource server that accepts its live access tokens."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.example.com":
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            ok = scheme == "Bearer" and fake.access_valid(token)
            return httpx.Response(200 if ok else 401, json={"ok": ok})
        return fake.handle(request)

    return httpx.MockTransport(handle)


def test_an_expired_token_is_refreshed_and_the_rotated_one_stored_before_use() -> None:
    fake = FakeAuthorizationServer("atlassian", token_lifetime=3600)
    client = ClientCredentials(fake.client_id, fake.client_secret)
    first = _issued(fake, providers.atlassian(), client)
    store = MemoryTokenStore(first)
    clock = _Clock()
    manager = TokenManager("Jira", providers.atlassian(), client, store, clock=clock)

    async def call() -> int:
        async with httpx.AsyncClient(transport=_api(fake), auth=ConsentAuth(manager)) as http:
            return (await http.get("https://api.example.com/rest/api/3/myself")).status_code

    assert asyncio.run(call()) == 200 and manager.refreshes == 0
    clock.now += 3600  # past the expiry (and the margin)
    fake.advance(3600)
    assert asyncio.run(call()) == 200
    assert manager.refreshes == 1 and store.saves == 1
    renewed = store.tokens
    assert renewed is not None and renewed.refresh_token != first.refresh_token
    assert renewed.extra == first.extra  # the cloud id survives the refresh
    assert first.refresh_token is not None and not fake.refresh_valid(first.refresh_token)
    # The old refresh token is dead: a second client still holding it is refused with Atlassian's words.
    stale = TokenManager("Jira", providers.atlassian(), client, MemoryTokenStore(first), clock=clock)

    async def refresh_stale() -> None:
        async with httpx.AsyncClient(transport=fake.transport()) as http:
            await stale.refresh(http)

    with pytest.raises(
        AuthenticationError, match="invalid_grant: Unknown or invalid refresh token"
    ) as refused:
        asyncio.run(refresh_stale())
    assert "sign in with the browser again" in (refused.value.hint or "")


def test_a_401_renews_once_and_two_concurrent_requests_spend_the_refresh_token_once() -> None:
    fake = FakeAuthorizationServer("atlassian")
    client = ClientCredentials(fake.client_id, fake.client_secret)
    store = MemoryTokenStore(_issued(fake, providers.atlassian(), client))
    manager = TokenManager("Jira", providers.atlassian(), client, store)
    fake.kill_access_tokens()

    async def calls() -> list[int]:
        async with httpx.AsyncClient(transport=_api(fake), auth=ConsentAuth(manager)) as http:
            answers = await asyncio.gather(*(http.get("https://api.example.com/x") for _ in range(2)))
            return [answer.status_code for answer in answers]

    assert asyncio.run(calls()) == [200, 200]
    assert fake.token_requests.count("refresh_token") == 1


def test_a_keychain_that_refuses_the_rotated_token_stops_the_request(memory_keyring: MemoryKeyring) -> None:
    fake = FakeAuthorizationServer("atlassian")
    client = ClientCredentials(fake.client_id, fake.client_secret)
    store = KeychainTokenStore("Jira", "default/abc")
    store.save(_issued(fake, providers.atlassian(), client))
    clock = _Clock()
    clock.now += 7200
    manager = TokenManager("Jira", providers.atlassian(), client, store, clock=clock)

    def refuse(service: str, username: str, password: str) -> None:
        import keyring.errors

        raise keyring.errors.KeyringLocked("locked")

    memory_keyring.set_password = refuse  # type: ignore[method-assign]
    api_calls: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.example.com":
            api_calls.append(str(request.url))
            return httpx.Response(200)
        return fake.handle(request)

    async def call() -> None:
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(handle), auth=ConsentAuth(manager)
        ) as http:
            await http.get("https://api.example.com/x")

    with pytest.raises(Exception, match="keychain is locked"):
        asyncio.run(call())
    assert api_calls == []  # the new access token was never used


# --- connectors: ServiceNow end to end, revoke on delete, no token outside the keychain ---------------------


class _ServiceNowBehindConsent(FakeServiceNow):
    """The Table API of a ServiceNow instance whose OAuth server is ``oauth``."""

    def __init__(self, oauth: FakeAuthorizationServer) -> None:
        super().__init__()
        self.oauth = oauth

    def _authenticated(self, request: httpx.Request) -> bool:
        scheme, _, token = str(request.headers.get("Authorization", "")).partition(" ")
        return scheme == "Bearer" and self.oauth.access_valid(token)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/oauth_"):
            return self.oauth.handle(request)
        return super().handle(request)


def _consent_settings(
    fake_sn: FakeServiceNow, tokens: OAuthTokens, client_id: str, keychain_key: str = ""
) -> ConnectorSettings:
    return ConnectorSettings(
        name=SN,
        base_url=fake_sn.base_url,
        auth_mode="oauth_consent",
        options={"tables": "incident", "time_zone": "UTC", CLIENT_ID_FIELD: client_id},
        secrets={TOKENS_FIELD: tokens.to_json()},
        keychain_key=keychain_key,
    )


def test_servicenow_connector_syncs_with_the_browser_sign_in_and_refreshes_into_the_keychain(
    memory_keyring: MemoryKeyring,
) -> None:
    oauth = FakeAuthorizationServer("servicenow", client_secret=None, rotate_refresh_tokens=True)
    fake_sn = _ServiceNowBehindConsent(oauth)
    with oauth.serving() as instance:
        tokens = _sign_in_servicenow(oauth, instance)
    store = KeychainTokenStore(SN, "default/sn-1")
    store.save(tokens)
    settings = _consent_settings(fake_sn, tokens, oauth.client_id, keychain_key="default/sn-1")

    async def check(clock_shift: float) -> str:
        connector = ServiceNowConnector.create(settings, transport=fake_sn.transport())
        assert connector._consent is not None
        connector._consent.manager.clock = lambda: time.time() + clock_shift
        try:
            result = await connector.check()
            return result.problem.value
        finally:
            await connector.close()

    assert asyncio.run(check(0)) == "ok"
    assert oauth.token_requests == ["authorization_code"]
    oauth.advance(4000)
    assert asyncio.run(check(4000)) == "ok"
    assert oauth.token_requests == ["authorization_code", "refresh_token"]
    stored = store.load()
    assert stored is not None and stored.refresh_token != tokens.refresh_token
    assert oauth.access_valid(stored.access_token)
    assert fake_sn.unexpected == [] and oauth.unexpected == []


def test_removing_the_connector_revokes_the_refresh_token_and_no_token_is_in_the_database_or_log(
    workspace: Workspace,
    sessions: sessionmaker[TenantSession],
    memory_keyring: MemoryKeyring,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    oauth = FakeAuthorizationServer("servicenow", client_secret="sn-consent-secret-77")
    with oauth.serving() as instance:
        tokens = _sign_in_servicenow(oauth, instance, secret="sn-consent-secret-77")
        row = create_config(
            sessions,
            connector_type="servicenow",
            name=SN,
            base_url=instance,
            auth_mode="oauth_consent",
            options={CLIENT_ID_FIELD: oauth.client_id, "tables": "incident", "time_zone": "UTC"},
            secrets={TOKENS_FIELD: tokens.to_json(), CLIENT_SECRET_FIELD: "sn-consent-secret-77"},
        )
        loaded = settings_for(row)
        assert loaded.keychain_key == row.keychain_key
        assert OAuthTokens.from_json(loaded.secrets[TOKENS_FIELD]).refresh_token == tokens.refresh_token
        result = remove_config(sessions, row.id)
    assert result.revoke_problem is None and result.keychain_problem is None
    assert tokens.refresh_token is not None
    assert oauth.revoked == [tokens.refresh_token]
    assert not oauth.refresh_valid(tokens.refresh_token) and not oauth.access_valid(tokens.access_token)
    assert not [name for (service, name) in memory_keyring.entries if service == SERVICE_NAME]
    with sessions() as session:
        actions = [event.action for event in session.scalars(select(AuditEvent))]
    assert "connector.remove" in actions and "connector.remove.revoke_failed" not in actions
    workspace.close()
    database = workspace.db_path.read_bytes()
    for secret in (tokens.access_token, tokens.refresh_token, "sn-consent-secret-77"):
        assert secret.encode() not in database
        assert secret not in caplog.text


def test_an_unreachable_provider_does_not_stop_the_removal(
    sessions: sessionmaker[TenantSession], memory_keyring: MemoryKeyring
) -> None:
    oauth = FakeAuthorizationServer("servicenow", client_secret=None)
    with oauth.serving() as instance:
        tokens = _sign_in_servicenow(oauth, instance)
    # The instance is gone now: nothing listens on its port.
    row = create_config(
        sessions,
        connector_type="servicenow",
        name=SN,
        base_url=instance,
        auth_mode="oauth_consent",
        options={CLIENT_ID_FIELD: oauth.client_id, "tables": "incident", "time_zone": "UTC"},
        secrets={TOKENS_FIELD: tokens.to_json()},
    )
    result = remove_config(sessions, row.id)
    assert result.revoke_problem is not None and "could not revoke" in result.revoke_problem
    assert tokens.refresh_token is not None and tokens.refresh_token not in result.revoke_problem
    assert not [name for (service, name) in memory_keyring.entries if service == SERVICE_NAME]
    with sessions() as session:
        actions = [event.action for event in session.scalars(select(AuditEvent))]
    assert "connector.remove.revoke_failed" in actions


def _sign_in_servicenow(
    oauth: FakeAuthorizationServer, instance: str, secret: str | None = None
) -> OAuthTokens:
    browser = FakeBrowser()
    tokens = asyncio.run(
        sign_in(
            SN,
            providers.servicenow(instance),
            ClientCredentials(oauth.client_id, secret),
            open_browser=browser,
            timeout=10,
        )
    )
    browser.join()
    return tokens


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_fixed_port_is_never_shared_with_another_listener() -> None:
    port = _free_port()
    with (
        LoopbackReceiver("state-aaaaaaaaaaaa", port=port),
        pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"),
    ):
        LoopbackReceiver("state-bbbbbbbbbbbb", port=port)
    with LoopbackReceiver("state-cccccccccccc", port=port) as again:  # free again at once
        assert again.port == port


def test_jira_cloud_with_the_browser_sign_in_calls_the_api_gateway_for_the_sites_cloud_id() -> None:
    from connectors.ticketing.jira import JiraConnector

    tokens = OAuthTokens("acc-tok-123456", "ref-tok-123456", time.time() + 3600, extra={"cloud_id": "c-42"})
    settings = ConnectorSettings(
        name="Jira (browser)",
        base_url="https://acme.atlassian.net",
        auth_mode="oauth_consent",
        options={"deployment": "cloud", CLIENT_ID_FIELD: "id"},
        secrets={TOKENS_FIELD: tokens.to_json(), CLIENT_SECRET_FIELD: "jira-secret-1"},
    )
    seen: list[tuple[str, str]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("Authorization", "")))
        return httpx.Response(200, json={"displayName": "Ana", "timeZone": "UTC"})

    async def go() -> None:
        connector = JiraConnector.create(settings, transport=httpx.MockTransport(handle))
        try:
            await connector._myself()
        finally:
            await connector.close()

    asyncio.run(go())
    assert seen == [("https://api.atlassian.com/ex/jira/c-42/rest/api/3/myself", "Bearer acc-tok-123456")]
