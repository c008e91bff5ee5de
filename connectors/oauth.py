"""One OAuth access-token cache for every connector that needs one (ServiceNow, ServiceDesk Plus Cloud).

An access token is kept until ``margin`` seconds before the server said it expires, then renewed, so a page
request never races the expiry; a 401 on a token we thought alive (revoked, or the server's clock runs ahead)
is answered by :meth:`TokenCache.invalidate` and one renewal. The clock is injectable (monotonic seconds by
default: a wall-clock change must not expire or prolong a token), so tests move time instead of sleeping.

How a token is obtained stays the connector's: a grant function receives the refresh token the last answer
carried (None at first) and returns an :class:`IssuedToken`. Tokens live in memory only and are registered
with the secret redactor, so one echoed by a server or shown in a traceback is masked.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from connectors.secrets import register_secret

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """What a token endpoint answered: the access token, its lifetime, and a refresh token if it sent one."""

    access_token: str
    expires_in: float  # seconds from now
    refresh_token: str | None = None


# Receives the refresh token of the last answer (None before the first) and asks the server for a token.
Grant = Callable[[str | None], Awaitable[IssuedToken]]


class TokenCache:
    """The current access token of one connector instance, renewed ``margin`` seconds before it expires."""

    def __init__(self, grant: Grant, *, margin: float, clock: Clock = time.monotonic) -> None:
        self._grant = grant
        self.margin = margin
        self.clock = clock  # tests replace it with the fake server's clock
        self._access_token: str | None = None
        self._refresh_token: str | None = None
        self._renew_at = 0.0

    async def token(self) -> str:
        """A live access token: the cached one, or a new one when it is missing or within the margin."""
        if self._access_token is None or self.clock() >= self._renew_at:
            issued = await self._grant(self._refresh_token)
            for secret in (issued.access_token, issued.refresh_token):
                if secret:
                    register_secret(secret)
            self._access_token = issued.access_token
            self._refresh_token = issued.refresh_token or self._refresh_token
            self._renew_at = self.clock() + max(0.0, issued.expires_in - self.margin)
        return self._access_token

    def invalidate(self) -> None:
        """Forget the access token (the server refused it); the next :meth:`token` asks for a new one."""
        self._access_token = None

    def forget_refresh_token(self) -> None:
        """The refresh token was refused: the next grant starts from the credentials again."""
        self._refresh_token = None
