"""PKCE (RFC 7636): a one-time secret that binds the code the browser brings back to this very sign-in.

The verifier is 43 to 128 characters of the unreserved set (``A-Z a-z 0-9 - . _ ~``, section 4.1); the
challenge sent in the authorize URL is ``BASE64URL(SHA256(verifier))`` without padding (``S256``, section
4.2). An app that intercepts the redirect (another program on the loopback port, a browser extension) holds
the code but not the verifier, so the token endpoint refuses it. "plain" is never offered: S256 is what every
provider here accepts and the RFC says a client capable of it must use it.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
from dataclasses import dataclass

UNRESERVED = string.ascii_letters + string.digits + "-._~"
MIN_VERIFIER = 43
MAX_VERIFIER = 128
DEFAULT_VERIFIER_LENGTH = 64
METHOD = "S256"


@dataclass(frozen=True, slots=True)
class Pkce:
    """One sign-in's verifier (kept in memory until the code exchange) and the challenge sent ahead."""

    verifier: str
    challenge: str
    method: str = METHOD

    def __repr__(self) -> str:  # the verifier is a secret until the exchange is over
        return f"Pkce(challenge={self.challenge!r}, method={self.method!r})"


def new_verifier(length: int = DEFAULT_VERIFIER_LENGTH) -> str:
    """``length`` characters drawn uniformly from the unreserved set by the OS's CSPRNG."""
    if not MIN_VERIFIER <= length <= MAX_VERIFIER:
        raise ValueError(f"a PKCE verifier has {MIN_VERIFIER} to {MAX_VERIFIER} characters, not {length}")
    return "".join(secrets.choice(UNRESERVED) for _ in range(length))


def s256_challenge(verifier: str) -> str:
    """``BASE64URL-ENCODE(SHA256(ASCII(verifier)))`` without ``=`` padding (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_pkce(length: int = DEFAULT_VERIFIER_LENGTH) -> Pkce:
    verifier = new_verifier(length)
    return Pkce(verifier, s256_challenge(verifier))
