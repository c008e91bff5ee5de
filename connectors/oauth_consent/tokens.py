"""The tokens of one consent, and where they live: one keychain entry per connector, written whole.

Access token, refresh token, expiry and the provider's extras (Atlassian's cloud id, Zoho's accounts server)
are one JSON value in one keychain entry (field :data:`TOKENS_FIELD` of the config's keychain key, the
convention of :mod:`connectors.secrets`). One entry is written atomically by every keychain backend, so a
rotated refresh token and its access token can never be half stored: after a crash the entry holds either the
old pair or the new one. Every token read or written is registered with the log redactor first.

The expiry is wall-clock epoch seconds: it must survive a restart of the app, which a monotonic clock does
not; a margin before it (:data:`EXPIRY_MARGIN`) absorbs small clock differences.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from connectors.secrets import SERVICE_NAME, delete_secrets, load_secrets, register_secret, store_secrets

TOKENS_FIELD = "oauth_tokens"
EXPIRY_MARGIN = 60.0  # seconds before the stated expiry that a token counts as expired

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class OAuthTokens:
    access_token: str
    refresh_token: str | None
    expires_at: float  # epoch seconds
    scope: str = ""
    extra: dict[str, str] = field(default_factory=dict)  # cloud_id, site_url, accounts_server, api_domain

    def __repr__(self) -> str:
        return (
            f"OAuthTokens(access_token=<hidden>, refresh_token={'<hidden>' if self.refresh_token else None}, "
            f"expires_at={self.expires_at!r}, scope={self.scope!r}, extra={self.extra!r})"
        )

    def expired(self, now: float, margin: float = EXPIRY_MARGIN) -> bool:
        return now >= self.expires_at - margin

    def to_json(self) -> str:
        return json.dumps(
            {
                "access_token": self.access_token,
                "refresh_token": self.refresh_token,
                "expires_at": self.expires_at,
                "scope": self.scope,
                "extra": self.extra,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> OAuthTokens:
        """Raises ValueError on anything but what :meth:`to_json` wrote."""
        data: Any = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
            raise ValueError("not a stored OAuth token set")
        refresh = data.get("refresh_token")
        extra = data.get("extra") or {}
        tokens = cls(
            access_token=data["access_token"],
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
            expires_at=float(data.get("expires_at") or 0),
            scope=str(data.get("scope") or ""),
            extra={str(k): str(v) for k, v in extra.items()} if isinstance(extra, dict) else {},
        )
        tokens.register()
        return tokens

    def register(self) -> None:
        """Mask both tokens (and the whole JSON value) in every log line and error text from now on."""
        register_secret(self.access_token)
        if self.refresh_token:
            register_secret(self.refresh_token)

    def renewed(
        self, access_token: str, refresh_token: str | None, expires_at: float, scope: str
    ) -> OAuthTokens:
        """The set after a refresh: a provider that does not rotate sends no refresh token, so keep ours."""
        return replace(
            self,
            access_token=access_token,
            refresh_token=refresh_token or self.refresh_token,
            expires_at=expires_at,
            scope=scope or self.scope,
        )


class TokenStore(Protocol):
    """Where a connector's tokens are kept between requests and between runs."""

    def load(self) -> OAuthTokens | None: ...

    def save(self, tokens: OAuthTokens) -> None: ...

    def delete(self) -> None: ...


class KeychainTokenStore:
    """The config's keychain entry ``<keychain key>/oauth_tokens`` (:mod:`connectors.secrets`)."""

    def __init__(self, connector: str, keychain_key: str, *, service: str = SERVICE_NAME) -> None:
        self.connector = connector
        self.keychain_key = keychain_key
        self.service = service

    def load(self) -> OAuthTokens | None:
        found = load_secrets(self.connector, self.keychain_key, [TOKENS_FIELD], service=self.service)
        text = found.get(TOKENS_FIELD)
        return OAuthTokens.from_json(text) if text else None

    def save(self, tokens: OAuthTokens) -> None:
        tokens.register()
        store_secrets(
            self.connector, self.keychain_key, {TOKENS_FIELD: tokens.to_json()}, service=self.service
        )

    def delete(self) -> None:
        delete_secrets(self.connector, self.keychain_key, [TOKENS_FIELD], service=self.service)


class MemoryTokenStore:
    """Tokens held by the caller (the wizard's draft before it is saved; tests)."""

    def __init__(self, tokens: OAuthTokens | None = None) -> None:
        self.tokens = tokens
        self.saves = 0

    def load(self) -> OAuthTokens | None:
        return self.tokens

    def save(self, tokens: OAuthTokens) -> None:
        tokens.register()
        self.tokens = tokens
        self.saves += 1

    def delete(self) -> None:
        self.tokens = None


def expiry(expires_in: Any, clock: Clock = time.time, default: float = 3600.0) -> float:
    try:
        seconds = float(expires_in)
    except (TypeError, ValueError):
        seconds = default
    return clock() + max(0.0, seconds)
