"""What a connector needs to offer "Sign in with browser (OAuth)": the auth mode, its fields, its auth.

The fields have their own keys (``consent_client_id``, ``consent_client_secret``, ``oauth_tokens``,
``redirect_port``), so a connector adds the mode without touching the fields of its other modes. The token
set is a secret field like a password: the wizard fills it by signing in (never typed), saving puts it in the
keychain, :func:`connectors.configs.settings_for` loads it. At run time the tokens are read and written
through the config's keychain entry (the settings carry its key), so a refresh outlives the run; a draft not
saved yet keeps them in memory.

A connector class offering the mode defines ``consent_provider(settings) -> Provider``; removal revokes
through it (:func:`revoke_stored_tokens`).
"""

from __future__ import annotations

import time
from typing import Protocol

import httpx

from connectors.base import AuthMode, ConfigField, ConnectorSettings, FieldType
from connectors.errors import ConfigurationError
from connectors.oauth_consent.flow import ClientCredentials, ConsentAuth, TokenManager, revoke
from connectors.oauth_consent.providers import DEFAULT_REDIRECT_PORT, Provider
from connectors.oauth_consent.tokens import (
    TOKENS_FIELD,
    Clock,
    KeychainTokenStore,
    MemoryTokenStore,
    OAuthTokens,
    TokenStore,
)

CONSENT_AUTH_MODE = "oauth_consent"
CLIENT_ID_FIELD = "consent_client_id"
CLIENT_SECRET_FIELD = "consent_client_secret"
REDIRECT_PORT_FIELD = "redirect_port"


def consent_mode(help_text: str) -> AuthMode:
    return AuthMode(CONSENT_AUTH_MODE, "Sign in with browser (OAuth)", help_text)


def consent_fields(*, secret_required: bool, secret_help: str = "") -> tuple[ConfigField, ...]:
    """Client id, client secret (required or optional per provider), redirect port, and the token set."""
    mode = (CONSENT_AUTH_MODE,)
    return (
        ConfigField(CLIENT_ID_FIELD, "OAuth client ID", auth_modes=mode, page="auth"),
        ConfigField(
            CLIENT_SECRET_FIELD,
            "OAuth client secret",
            FieldType.SECRET,
            required=secret_required,
            help=secret_help,
            auth_modes=mode,
            page="auth",
        ),
        ConfigField(
            REDIRECT_PORT_FIELD,
            "Redirect port on this computer",
            FieldType.INTEGER,
            required=False,
            default=DEFAULT_REDIRECT_PORT,
            help="Register http://127.0.0.1:<port>/callback with the provider as the redirect URL; "
            "0 picks a free port each time, for a provider that accepts any loopback port.",
            auth_modes=mode,
            page="auth",
        ),
        ConfigField(
            TOKENS_FIELD,
            "Browser sign-in",
            FieldType.SECRET,
            help="Filled by Sign in…; kept in the OS keychain.",
            auth_modes=mode,
            page="auth",
        ),
    )


class ConsentCapable(Protocol):
    """A connector class that offers the browser sign-in."""

    @classmethod
    def consent_provider(cls, settings: ConnectorSettings) -> Provider: ...


def client_of(settings: ConnectorSettings) -> ClientCredentials:
    client_id = str(settings.option(CLIENT_ID_FIELD, "")).strip()
    if not client_id:
        raise ConfigurationError(settings.name, "the OAuth client ID is not set")
    return ClientCredentials(client_id, settings.secrets.get(CLIENT_SECRET_FIELD) or None)


def redirect_port_of(settings: ConnectorSettings) -> int:
    try:
        port = int(settings.option(REDIRECT_PORT_FIELD, DEFAULT_REDIRECT_PORT))
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(settings.name, "the redirect port must be a whole number") from exc
    if not 0 <= port <= 65_535:
        raise ConfigurationError(settings.name, "the redirect port must be 0 to 65535")
    return port


def token_store_for(settings: ConnectorSettings) -> TokenStore:
    """The config's keychain entry; for a draft (no keychain key yet) the tokens the wizard holds."""
    if settings.keychain_key:
        return KeychainTokenStore(settings.name, settings.keychain_key)
    text = settings.secrets.get(TOKENS_FIELD)
    return MemoryTokenStore(OAuthTokens.from_json(text) if text else None)


def stored_tokens(settings: ConnectorSettings) -> OAuthTokens:
    """The token set as the settings were loaded (for values that never change, such as Atlassian's cloud
    id); a stale access token here is harmless, requests go through :class:`ConsentAuth`."""
    text = settings.secrets.get(TOKENS_FIELD)
    if not text:
        raise ConfigurationError(settings.name, "not signed in yet: use Sign in… in the connector's settings")
    try:
        return OAuthTokens.from_json(text)
    except ValueError as exc:
        raise ConfigurationError(settings.name, "the stored sign-in is unreadable; sign in again") from exc


def consent_auth(
    settings: ConnectorSettings, provider: Provider, *, scheme: str = "Bearer", clock: Clock = time.time
) -> ConsentAuth:
    manager = TokenManager(
        settings.name, provider, client_of(settings), token_store_for(settings), clock=clock
    )
    return ConsentAuth(manager, scheme)


def revoke_stored_tokens(
    capable: ConsentCapable, settings: ConnectorSettings, *, transport: httpx.BaseTransport | None = None
) -> str | None:
    """Revoke the stored refresh token where the provider can; None when done or nothing to revoke, else
    the problem (the removal goes on: the tokens are deleted from the keychain either way)."""
    text = settings.secrets.get(TOKENS_FIELD)
    if not text:
        return None
    try:
        tokens = OAuthTokens.from_json(text)
        provider = capable.consent_provider(settings)
        client = client_of(settings)
    except (ValueError, ConfigurationError) as exc:
        return f"not revoked: {exc}"
    return revoke(
        settings.name, provider, client, tokens, transport=transport, verify=settings.ca_bundle or True
    )
