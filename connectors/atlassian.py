"""What Atlassian's products (Jira, Confluence) share: two deployments, each with its own credentials.

Cloud (``…atlassian.net``) takes an account email with an API token (HTTP Basic); Data Center / Server takes a
personal access token (``Authorization: Bearer``). The Jira and Confluence connectors declare the same three
auth fields and check the deployment against the auth mode the same way, from here.
"""

from __future__ import annotations

from collections.abc import Generator

import httpx

from connectors.base import ConfigField, ConnectorSettings, FieldType
from connectors.errors import ConfigurationError

CLOUD = "cloud"
DATA_CENTER = "datacenter"
AUTH_API_TOKEN = "api_token"
AUTH_PAT = "pat"

AUTH_FIELDS: tuple[ConfigField, ...] = (
    ConfigField(
        "email",
        "Account email",
        placeholder="analyst@example.com",
        auth_modes=(AUTH_API_TOKEN,),
        page="auth",
    ),
    ConfigField(
        "api_token",
        "API token",
        FieldType.SECRET,
        help="Not the account password: an API token from id.atlassian.com > Security.",
        auth_modes=(AUTH_API_TOKEN,),
        page="auth",
    ),
    ConfigField(
        "personal_access_token",
        "Personal access token",
        FieldType.SECRET,
        auth_modes=(AUTH_PAT,),
        page="auth",
    ),
)


class BearerAuth(httpx.Auth):
    """A personal access token as an auth flow rather than a default header, so no client repr shows it."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


def deployment_of(settings: ConnectorSettings, product: str) -> str:
    """The deployment, checked against the auth mode: each flavour accepts only its own credentials."""
    deployment = str(settings.option("deployment", CLOUD)).lower()
    if deployment not in (CLOUD, DATA_CENTER):
        raise ConfigurationError(
            settings.name, f"unknown {product} deployment {deployment!r} (cloud or datacenter)"
        )
    if deployment == CLOUD and settings.auth_mode != AUTH_API_TOKEN:
        raise ConfigurationError(
            settings.name, f"{product} Cloud accepts only an account email with an API token as credentials"
        )
    if deployment == DATA_CENTER and settings.auth_mode != AUTH_PAT:
        raise ConfigurationError(
            settings.name, f"{product} Data Center / Server is connected with a personal access token"
        )
    return deployment


def atlassian_auth(settings: ConnectorSettings, deployment: str) -> httpx.Auth:
    """Basic email + API token on Cloud, the personal access token as a Bearer on Data Center."""
    if deployment == CLOUD:
        email = str(settings.option("email", "")).strip()
        if not email:
            raise ConfigurationError(settings.name, "the account email is not set")
        return httpx.BasicAuth(email, settings.secret("api_token"))
    return BearerAuth(settings.secret("personal_access_token"))
