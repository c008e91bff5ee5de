"""The one OAuth token cache: renewed a margin before expiry on an injected clock, refresh tokens kept."""

from __future__ import annotations

import asyncio

from connectors.oauth import IssuedToken, TokenCache
from connectors.secrets import redact_text


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Server:
    """Issues numbered tokens; records the refresh token each grant was given."""

    def __init__(self, lifetime: float = 600.0, refresh_tokens: bool = True) -> None:
        self.lifetime = lifetime
        self.refresh_tokens = refresh_tokens
        self.grants: list[str | None] = []

    async def grant(self, refresh_token: str | None) -> IssuedToken:
        self.grants.append(refresh_token)
        number = len(self.grants)
        refresh = f"refresh-token-{number:04d}" if self.refresh_tokens else None
        return IssuedToken(f"access-token-{number:04d}", self.lifetime, refresh)


def test_a_token_is_reused_until_the_margin_before_it_expires() -> None:
    clock, server = Clock(), Server(lifetime=600)
    cache = TokenCache(server.grant, margin=30, clock=clock)

    async def go() -> list[str]:
        tokens = [await cache.token()]
        clock.now += 569  # 31 s left: still good
        tokens.append(await cache.token())
        clock.now += 1  # 30 s left: inside the margin, renewed before a request can race the expiry
        tokens.append(await cache.token())
        return tokens

    assert asyncio.run(go()) == ["access-token-0001", "access-token-0001", "access-token-0002"]
    assert server.grants == [None, "refresh-token-0001"]  # the renewal is handed the last refresh token


def test_invalidate_renews_at_once_and_a_refresh_token_is_kept_until_forgotten() -> None:
    clock, server = Clock(), Server(refresh_tokens=False)
    cache = TokenCache(server.grant, margin=30, clock=clock)

    async def go() -> None:
        await cache.token()
        cache.invalidate()  # the server refused it: a 401
        await cache.token()

    asyncio.run(go())
    assert server.grants == [None, None]

    rotating = Server()
    cache = TokenCache(rotating.grant, margin=30, clock=clock)

    async def forget() -> None:
        await cache.token()
        cache.invalidate()
        cache.forget_refresh_token()  # refused too: start again from the credentials
        await cache.token()

    asyncio.run(forget())
    assert rotating.grants == [None, None]


def test_a_lifetime_shorter_than_the_margin_renews_on_every_use() -> None:
    clock, server = Clock(), Server(lifetime=10)
    cache = TokenCache(server.grant, margin=30, clock=clock)

    async def go() -> None:
        await cache.token()
        await cache.token()

    asyncio.run(go())
    assert len(server.grants) == 2


def test_issued_tokens_are_masked_in_error_text() -> None:
    cache = TokenCache(Server().grant, margin=30, clock=Clock())
    token = asyncio.run(cache.token())
    assert (
        redact_text(f"server said: bad token {token}, refresh-token-0001")
        == "server said: bad token ***, ***"
    )
