"""What Atlassian's products (Jira, Confluence) share: two deployments, each with its own credentials.

Cloud (``…atlassian.net``) takes an account email with an API token (HTTP Basic); Data Center / Server takes a
personal access token (``Authorization: Bearer``). The Jira and Confluence connectors declare the same three
auth fields and check the deployment against the auth mode the same way, from here.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from connectors.base import ConfigField, ConnectorSettings, Cursor, FieldType, SyncRecord
from connectors.errors import ConfigurationError
from connectors.oauth_consent import providers as consent_providers
from connectors.oauth_consent.connector import CONSENT_AUTH_MODE, consent_auth, stored_tokens

CLOUD = "cloud"
DATA_CENTER = "datacenter"
AUTH_API_TOKEN = "api_token"
AUTH_PAT = "pat"
AUTH_CONSENT = CONSENT_AUTH_MODE  # Cloud, OAuth 2.0 (3LO) signed in through the browser (issue 17)

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
    if deployment == CLOUD and settings.auth_mode not in (AUTH_API_TOKEN, AUTH_CONSENT):
        raise ConfigurationError(
            settings.name,
            f"{product} Cloud accepts an account email with an API token, or the browser sign-in (OAuth)",
        )
    if deployment == DATA_CENTER and settings.auth_mode != AUTH_PAT:
        raise ConfigurationError(
            settings.name, f"{product} Data Center / Server is connected with a personal access token"
        )
    return deployment


def atlassian_auth(settings: ConnectorSettings, deployment: str) -> httpx.Auth:
    """Basic email + API token on Cloud, the personal access token as a Bearer on Data Center; with the
    browser sign-in, the 3LO bearer token, renewed (and its rotated refresh token re-stored) as it expires."""
    if deployment == CLOUD and settings.auth_mode == AUTH_CONSENT:
        return consent_auth(settings, consent_providers.atlassian())
    if deployment == CLOUD:
        email = str(settings.option("email", "")).strip()
        if not email:
            raise ConfigurationError(settings.name, "the account email is not set")
        return httpx.BasicAuth(email, settings.secret("api_token"))
    return BearerAuth(settings.secret("personal_access_token"))


# ----------------------------------------------------------------------------------------------------------
# Minute-precision queries: JQL and CQL read "updated >= <a minute>" in the account's time zone
# ----------------------------------------------------------------------------------------------------------

# Without the account's zone, go back by the widest western offset: any reading of the literal is early
# enough, and the records read twice are dropped locally as already stored.
MOST_WESTERN_OFFSET = timedelta(hours=12)


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def zone_named(name: Any) -> tzinfo | None:
    """The account's zone; None when the product hides it (privacy settings) or this machine lacks tz data."""
    if not isinstance(name, str) or not name.strip():
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None


def minute_literal(moment: datetime, zone: tzinfo | None, layout: str) -> str:
    """The query literal (``layout``: JQL's ``%Y-%m-%d %H:%M``, CQL's ``%Y/%m/%d %H:%M``) that the product
    reads as a time at or before ``moment``.

    It reads the literal in the account's zone; flooring to the minute gives the lookback. In the repeated
    hour of a DST change a wall time means two instants and it may pick the later one, so step back by the
    DST shift first. Without a known zone, go back by :data:`MOST_WESTERN_OFFSET`.
    """
    moment = as_utc(moment)
    if zone is None:
        return (moment - MOST_WESTERN_OFFSET).strftime(layout)
    local = moment.astimezone(zone)
    first, second = local.replace(fold=0).utcoffset(), local.replace(fold=1).utcoffset()
    if first is not None and second is not None and first != second:
        local = (moment - abs(first - second)).astimezone(zone)
    return local.strftime(layout)


@dataclass
class MinuteProgress:
    """What a sync has passed: the newest update time seen and every id (issue key, page id) seen at exactly
    that time, kept in ``Cursor.extra["keys_at_cursor"]``.

    A set, not "id <= last id": as text ``OPS-10`` sorts before ``OPS-9``, and records of one time come in
    no order the query language promises.
    """

    updated_at: datetime | None = None
    last_id: str | None = None
    keys_at_cursor: set[str] = field(default_factory=set)

    @classmethod
    def from_cursor(cls, cursor: Cursor | None) -> MinuteProgress:
        if cursor is None or cursor.updated_at is None:
            return cls()
        keys = {str(key) for key in cursor.extra.get("keys_at_cursor") or ()}
        if cursor.last_id:
            keys.add(cursor.last_id)
        return cls(as_utc(cursor.updated_at), cursor.last_id, keys)

    def already_stored(self, updated_at: datetime, key: str) -> bool:
        if self.updated_at is None:
            return False
        return updated_at < self.updated_at or (updated_at == self.updated_at and key in self.keys_at_cursor)

    def advance(self, updated_at: datetime, key: str) -> None:
        if self.updated_at is None or updated_at > self.updated_at:
            self.updated_at, self.last_id, self.keys_at_cursor = updated_at, key, {key}
        elif updated_at == self.updated_at:
            self.keys_at_cursor.add(key)
            self.last_id = key

    def cursor(self) -> Cursor:
        return Cursor(self.updated_at, self.last_id, {"keys_at_cursor": sorted(self.keys_at_cursor)})


def stored_at_cursor(record: SyncRecord, cursor: Cursor) -> bool:
    """A connector's ``already_stored``: at the cursor's exact time, one of the ids the cursor lists."""
    if cursor.updated_at is None or record.updated_at is None:
        return False
    if as_utc(record.updated_at) != as_utc(cursor.updated_at):
        return False
    return record.external_id in MinuteProgress.from_cursor(cursor).keys_at_cursor


def consent_api_base(settings: ConnectorSettings, product_path: str = "jira") -> str:
    """A 3LO token is not accepted on ``…atlassian.net``: calls go through the API gateway, to the site the
    consent covered (its cloud id, found at sign-in from ``accessible-resources``)."""
    cloud_id = stored_tokens(settings).extra.get("cloud_id")
    if not cloud_id:
        raise ConfigurationError(
            settings.name, "the sign-in did not record the Jira site (cloud id); sign in again"
        )
    return f"{consent_providers.ATLASSIAN_API}/ex/{product_path}/{cloud_id}"
