"""The three authorization servers, as their own documentation describes them (checked for issue 17).

ServiceNow (each instance is its own server; System OAuth > Application Registry):
  authorize ``{instance}/oauth_auth.do``, token ``{instance}/oauth_token.do``. PKCE (S256) is supported; a
  "public client" uses it instead of a secret, a private one sends its secret too. The redirect URI is matched
  against the registry's Redirect URL list. Refresh tokens are not rotated (lifespan 100 days by default).
  Revoke: ``/oauth_revoke_token.do`` with ``token=``, no authentication.
Atlassian (Jira Cloud 3LO; developer console):
  authorize ``auth.atlassian.com/authorize`` with ``audience=api.atlassian.com`` and ``prompt=consent``; token
  ``auth.atlassian.com/oauth/token``. PKCE is not documented (we send it anyway; the secret is what binds the
  exchange): the client secret is required for the exchange and every refresh. The redirect URI must equal
  the registered callback URL. Refresh tokens (scope ``offline_access``) rotate on every use. No revocation
  endpoint for 3LO tokens: the user removes the app under their account's Connected apps.
Zoho (ServiceDesk Plus Cloud; API console, client type "Mobile / Desktop"):
  authorize ``{accounts}/oauth/v2/auth`` with ``access_type=offline`` and ``prompt=consent``; the redirect
  adds ``location`` and ``accounts-server`` (the user's data centre), where the token request goes
  (``/oauth/v2/token``). PKCE is required for that client type *and* the secret is still sent. Refresh tokens
  neither rotate nor expire (20 per user and client; the 21st deletes the oldest). Revoke:
  ``POST {accounts}/oauth/v2/token/revoke?token=``.

Because none of the three documents accepting *any* loopback port (RFC 8252 section 7.3 asks servers to),
the redirect uses a fixed port by default (:data:`DEFAULT_REDIRECT_PORT`), which the analyst registers once
as ``http://127.0.0.1:<port>/callback``; port 0 (random) is there for a server that does follow the RFC.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_REDIRECT_PORT = 53_682
ATLASSIAN_AUTH = "https://auth.atlassian.com"
ATLASSIAN_API = "https://api.atlassian.com"


class RevokeStyle(enum.StrEnum):
    NONE = "none"  # the provider has no revocation endpoint for these tokens
    FORM = "form"  # POST token=<t> as a form body (ServiceNow reads its parameters from either place)
    QUERY = "query"  # POST ?token=<t> (Zoho documents only this shape)


@dataclass(frozen=True, slots=True)
class Provider:
    """Where and how one authorization server takes a consent, a code and a refresh token."""

    key: str  # "servicenow", "atlassian", "zoho"
    display_name: str
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...] = ()
    extra_authorize_params: dict[str, str] = field(default_factory=dict)
    requires_client_secret: bool = True
    sends_pkce: bool = True
    rotates_refresh_token: bool = False
    revoke_url: str | None = None
    revoke_style: RevokeStyle = RevokeStyle.NONE
    scope_separator: str = " "
    # Zoho answers with the accounts server of the user's data centre; the exchange must go there. Only
    # these origins are believed (the client secret is sent to it).
    trusted_token_origins: tuple[str, ...] = ()


def servicenow(instance_url: str) -> Provider:
    """A ServiceNow instance is its own authorization server (System OAuth > Application Registry)."""
    base = instance_url.rstrip("/")
    return Provider(
        key="servicenow",
        display_name="ServiceNow",
        authorize_url=f"{base}/oauth_auth.do",
        token_url=f"{base}/oauth_token.do",
        scopes=("useraccount",),
        requires_client_secret=False,
        revoke_url=f"{base}/oauth_revoke_token.do",
        revoke_style=RevokeStyle.FORM,
    )


ATLASSIAN_SCOPES = ("read:jira-work", "write:jira-work", "read:jira-user", "offline_access")


def atlassian(auth_base: str = ATLASSIAN_AUTH) -> Provider:
    """Atlassian's 3LO for Jira Cloud; ``offline_access`` is what brings a (rotating) refresh token."""
    base = auth_base.rstrip("/")
    return Provider(
        key="atlassian",
        display_name="Atlassian",
        authorize_url=f"{base}/authorize",
        token_url=f"{base}/oauth/token",
        scopes=ATLASSIAN_SCOPES,
        extra_authorize_params={"audience": "api.atlassian.com", "prompt": "consent"},
        requires_client_secret=True,
        rotates_refresh_token=True,
    )


ZOHO_SDP_SCOPES = ("SDPOnDemand.requests.ALL",)
# Zoho's accounts servers per data centre (its multi-DC page); the redirect's ``accounts-server`` must be one.
ZOHO_ACCOUNTS = (
    "https://accounts.zoho.com",
    "https://accounts.zoho.eu",
    "https://accounts.zoho.in",
    "https://accounts.zoho.com.au",
    "https://accounts.zoho.jp",
    "https://accounts.zoho.com.cn",
    "https://accounts.zohocloud.ca",
    "https://accounts.zoho.uk",
    "https://accounts.zoho.sa",
)


def zoho(accounts_url: str, scopes: tuple[str, ...] = ZOHO_SDP_SCOPES) -> Provider:
    """Zoho Accounts of one data centre, for a "Mobile / Desktop" client (PKCE plus the client secret)."""
    base = accounts_url.rstrip("/")
    return Provider(
        key="zoho",
        display_name="Zoho",
        authorize_url=f"{base}/oauth/v2/auth",
        token_url=f"{base}/oauth/v2/token",
        scopes=scopes,
        extra_authorize_params={"access_type": "offline", "prompt": "consent"},
        requires_client_secret=True,
        revoke_url=f"{base}/oauth/v2/token/revoke",
        revoke_style=RevokeStyle.QUERY,
        scope_separator=",",
        trusted_token_origins=(*ZOHO_ACCOUNTS, _origin(base)),
    )


def token_url_for(provider: Provider, accounts_server: str | None) -> str:
    """The token endpoint to use: Zoho's redirect names the user's accounts server; any other is ignored
    unless it is one of the provider's trusted origins (the secret must not go to a forged address)."""
    if accounts_server and provider.trusted_token_origins:
        origin = _origin(accounts_server)
        if origin in provider.trusted_token_origins:
            return f"{origin}{urlsplit(provider.token_url).path}"
    return provider.token_url


def revoke_url_for(provider: Provider, accounts_server: str | None) -> str | None:
    if provider.revoke_url is None:
        return None
    if accounts_server and provider.trusted_token_origins:
        origin = _origin(accounts_server)
        if origin in provider.trusted_token_origins:
            return f"{origin}{urlsplit(provider.revoke_url).path}"
    return provider.revoke_url


def _origin(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}".lower()
