"""The connector contract: what a connector declares, what it returns, and the registry that lists them.

A connector is one module that declares a :class:`ConnectorSpec` (type, display name, kind, auth modes and a
config schema in which secret fields are marked) and a :class:`Connector` subclass with two jobs:

- :meth:`Connector.probe` makes the cheapest request that proves reachability, TLS, authentication and read
  permission; :meth:`Connector.check` turns whatever it raised into a precise :class:`CheckResult`.
- :meth:`Connector.fetch` is an async generator of :class:`Page` objects: normalised records (with their raw
  payload) and the :class:`Cursor` *after* that page. The sync engine stores each page's records and its
  cursor in one transaction, so a sync killed anywhere resumes from the last stored cursor.

Like airbyte's HTTP streams, a connector holds no state between pages beyond what the cursor carries. The
registry is read without creating connectors: by the wizard (forms from the schema), the scheduler, the CLI
and ``build.spec`` (hidden imports from :data:`CONNECTOR_MODULES`).
"""

from __future__ import annotations

import asyncio
import enum
import importlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Self

import httpx

from connectors.errors import (
    AuthenticationError,
    BadResponseError,
    ConfigurationError,
    ConnectionFailedError,
    ConnectorError,
    ConnectorTimeoutError,
    GoneError,
    HttpStatusError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    TlsError,
)
from connectors.http import ErrorText, HttpClient, RetryPolicy, Sleep, create_client, default_error_text
from core.importing.tickets import TicketValues

# Every connector module, imported by load_all(): the one list build.spec and the registry share.
CONNECTOR_MODULES: tuple[str, ...] = (
    "connectors.ticketing.servicenow",
    "connectors.ticketing.jira",
    "connectors.ticketing.servicedesk_plus",
    "connectors.ticketing.remedy",
)


class ConnectorKind(enum.StrEnum):
    TICKETING = "ticketing"
    MONITORING = "monitoring"
    KNOWLEDGE = "knowledge"


class FieldType(enum.StrEnum):
    TEXT = "text"
    MULTILINE = "multiline"
    URL = "url"
    SECRET = "secret"  # stored in the OS keychain, never in config_json, never logged
    CHOICE = "choice"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    PATH = "path"  # a local file, e.g. a CA bundle


@dataclass(frozen=True, slots=True)
class ConfigField:
    key: str
    label: str
    type: FieldType = FieldType.TEXT
    required: bool = True
    default: Any = None
    choices: tuple[tuple[str, str], ...] = ()  # (value, label)
    help: str = ""
    placeholder: str = ""
    auth_modes: tuple[str, ...] = ()  # shown only for these auth modes; empty = always
    page: str = "scope"  # the wizard page it belongs on: "where", "auth" or "scope"

    @property
    def secret(self) -> bool:
        return self.type is FieldType.SECRET

    def applies_to(self, auth_mode: str) -> bool:
        return not self.auth_modes or auth_mode in self.auth_modes


@dataclass(frozen=True, slots=True)
class AuthMode:
    key: str
    label: str
    help: str = ""


@dataclass(frozen=True, slots=True)
class ConnectorSpec:
    type: str  # stable identifier stored in connector_configs.connector_type, e.g. "servicenow"
    display_name: str
    kind: ConnectorKind
    auth_modes: tuple[AuthMode, ...]
    fields: tuple[ConfigField, ...]
    # How coarse the source's "updated" timestamps are; the sync re-reads this much before its cursor.
    timestamp_precision: timedelta = timedelta(seconds=1)
    description: str = ""
    docs_url: str = ""
    icon: str = ""  # a file name under resources/icons/connectors

    def field(self, key: str) -> ConfigField:
        for config_field in self.fields:
            if config_field.key == key:
                return config_field
        raise KeyError(f"{self.type} has no config field {key!r}")

    def secret_keys(self, auth_mode: str | None = None) -> tuple[str, ...]:
        return tuple(
            f.key for f in self.fields if f.secret and (auth_mode is None or f.applies_to(auth_mode))
        )


@dataclass(frozen=True, slots=True)
class ConnectorSettings:
    """What a connector instance needs: ``options`` are non-secret, ``secrets`` come from the keychain."""

    name: str  # the analyst's name for this config; appears in every error message
    base_url: str
    auth_mode: str
    options: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    ca_bundle: str | None = None

    def option(self, key: str, default: Any = None) -> Any:
        value = self.options.get(key)
        return default if value in (None, "") else value

    def secret(self, key: str) -> str:
        value = self.secrets.get(key)
        if not value:
            raise ConfigurationError(
                self.name, f"the secret {key!r} is not set; enter it again in the settings"
            )
        return value

    def __repr__(self) -> str:  # secrets must never reach a log or a traceback through repr()
        return (
            f"ConnectorSettings(name={self.name!r}, base_url={self.base_url!r}, "
            f"auth_mode={self.auth_mode!r}, "
            f"options={dict(self.options)!r}, secrets=<{len(self.secrets)} hidden>)"
        )


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where an incremental sync stands: the last record's source update time and id (the tie-break)."""

    updated_at: datetime | None = None
    last_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # connector-specific (e.g. a page token)

    def to_state(self) -> dict[str, Any]:
        return {
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "last_id": self.last_id,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None) -> Cursor | None:
        if not state or not state.get("updated_at"):
            return None
        return cls(
            datetime.fromisoformat(state["updated_at"]), state.get("last_id"), dict(state.get("extra") or {})
        )


@dataclass(frozen=True, slots=True)
class RecordFailure:
    """A record the source returned that could not be normalised; counted as failed, the sync goes on."""

    external_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Page:
    tickets: tuple[TicketValues, ...]
    cursor: Cursor
    failures: tuple[RecordFailure, ...] = ()


class CheckProblem(enum.StrEnum):
    OK = "ok"
    CONFIGURATION = "configuration"
    CONNECTION = "connection"  # DNS, refused, proxy
    TLS = "tls"
    TIMEOUT = "timeout"
    AUTHENTICATION = "authentication"
    PERMISSION = "permission"
    NOT_FOUND = "not_found"
    GONE = "gone"
    RATE_LIMITED = "rate_limited"
    SERVER = "server"
    BAD_RESPONSE = "bad_response"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class CheckResult:
    problem: CheckProblem
    message: str
    hint: str = ""

    @property
    def ok(self) -> bool:
        return self.problem is CheckProblem.OK


_PROBLEMS: tuple[tuple[type[ConnectorError], CheckProblem, str], ...] = (
    (ConfigurationError, CheckProblem.CONFIGURATION, "Check the connector's settings."),
    (TlsError, CheckProblem.TLS, "Choose the CA bundle (PEM file) that signed the server's certificate."),
    (
        ConnectorTimeoutError,
        CheckProblem.TIMEOUT,
        "The server did not answer in time; check the URL or proxy.",
    ),
    (ConnectionFailedError, CheckProblem.CONNECTION, "Check the host name, the port and any proxy settings."),
    (AuthenticationError, CheckProblem.AUTHENTICATION, "The credentials were refused; enter them again."),
    (PermissionDeniedError, CheckProblem.PERMISSION, "The account lacks a read role or scope."),
    (GoneError, CheckProblem.GONE, "This API was removed by the vendor; update Runbook Desk."),
    (NotFoundError, CheckProblem.NOT_FOUND, "Check the instance URL and the API version or table name."),
    (RateLimitedError, CheckProblem.RATE_LIMITED, "The server is rate limiting us; try again shortly."),
    (ServerError, CheckProblem.SERVER, "The server failed; try again later or ask its administrator."),
    (BadResponseError, CheckProblem.BAD_RESPONSE, "The server's answer was not what this API returns."),
    (HttpStatusError, CheckProblem.OTHER, ""),
)


def diagnose(exc: ConnectorError) -> CheckResult:
    """The check result for an error: the most specific problem, the error's own text, and what to do."""
    for error_type, problem, hint in _PROBLEMS:
        if isinstance(exc, error_type):
            specific_hint = exc.hint if isinstance(exc, HttpStatusError) and exc.hint else hint
            return CheckResult(problem, str(exc), specific_hint)
    return CheckResult(CheckProblem.OTHER, str(exc))


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """What a connector adds to the shared HTTP client: its auth, extra headers and error-body reader."""

    auth: httpx.Auth | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    error_text: ErrorText = default_error_text


class Connector(ABC):
    """One configured source. Build it with :meth:`create`: the engine, the CLI and the wizard all do.

    A connector module customises the shared client by overriding :meth:`client_options` (auth, headers,
    the vendor's error-body reader); one whose set-up is more than that (a login request, an OAuth token
    exchange) overrides :meth:`create` and still builds its client with :func:`connectors.http.create_client`
    so tests keep injecting ``transport`` and ``sleep``. Whoever calls :meth:`create` calls :meth:`close`.
    """

    spec: ClassVar[ConnectorSpec]

    def __init__(self, settings: ConnectorSettings, http: HttpClient) -> None:
        self.settings = settings
        self.http = http

    @classmethod
    def client_options(cls, settings: ConnectorSettings) -> ClientOptions:
        """Auth, headers and error reader for this settings' auth mode; the default is no auth at all."""
        return ClientOptions()

    @classmethod
    def create(
        cls,
        settings: ConnectorSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        retry: RetryPolicy | None = None,
    ) -> Self:
        """A connector with its own HTTP client; ``transport`` (a fake system) and ``sleep`` are for tests."""
        options = cls.client_options(settings)
        http = create_client(
            settings.name,
            settings.base_url,
            auth=options.auth,
            headers=options.headers,
            ca_bundle=settings.ca_bundle,
            transport=transport,
            error_text=options.error_text,
            retry=retry,
            sleep=sleep,
        )
        return cls(settings, http)

    async def close(self) -> None:
        """Release the server-side session (:meth:`aclose`), then the HTTP client even if that failed."""
        try:
            await self.aclose()
        finally:
            await self.http.aclose()

    def already_stored(self, ticket: TicketValues, cursor: Cursor) -> bool:
        """True for a record at exactly the cursor's time whose id sorts at or before the cursor's id.

        The engine skips such records: the page that set the cursor stored them. Ids compare as strings;
        a connector whose source orders ids otherwise (numerically, say) overrides this.
        """
        return (
            cursor.updated_at is not None
            and ticket.updated_at == cursor.updated_at
            and cursor.last_id is not None
            and ticket.external_id <= cursor.last_id
        )

    @property
    def name(self) -> str:
        return self.settings.name

    @abstractmethod
    async def probe(self) -> None:
        """The cheapest request(s) proving reachability, TLS, auth and read permission; raise on failure."""

    async def check(self) -> CheckResult:
        try:
            await self.probe()
        except ConnectorError as exc:
            return diagnose(exc)
        return CheckResult(CheckProblem.OK, f"{self.name}: connected and allowed to read")

    @abstractmethod
    def fetch(self, since: Cursor | None, *, page_size: int | None = None) -> AsyncIterator[Page]:
        """Pages of records updated at or after ``since`` (minus the spec's precision), oldest first.

        The engine passes the stored cursor as it is; the connector subtracts ``spec.timestamp_precision``
        when it builds the source's query (only it knows how its query language rounds), so the overlap is
        re-read. The cursor of each page is the (updated_at, id) of its last record; records at exactly the
        cursor with an id <= last_id were stored already: the engine skips them (:meth:`already_stored`),
        and other re-reads of the overlap are counted as unchanged. ``None`` means from the beginning.
        """

    async def preview(self, limit: int = 10) -> list[TicketValues]:
        """The first few normalised records, for the wizard's preview of the mapping."""
        async for page in self.fetch(None, page_size=limit):
            return list(page.tickets[:limit])
        return []

    async def aclose(self) -> None:  # noqa: B027 -- most connectors hold no server-side session
        """Log out or release server-side sessions (Remedy's JWT); the HTTP client is closed by its owner."""


_REGISTRY: dict[str, type[Connector]] = {}


def register(connector_class: type[Connector]) -> type[Connector]:
    """Class decorator: make a connector known by its ``spec.type``."""
    connector_type = connector_class.spec.type
    existing = _REGISTRY.get(connector_type)
    if existing is not None and existing is not connector_class:
        raise RuntimeError(f"two connectors claim the type {connector_type!r}")
    _REGISTRY[connector_type] = connector_class
    return connector_class


def load_all() -> None:
    for module_name in CONNECTOR_MODULES:
        importlib.import_module(module_name)


def connector_types() -> list[ConnectorSpec]:
    load_all()
    return sorted((c.spec for c in _REGISTRY.values()), key=lambda spec: (spec.kind, spec.display_name))


def connector_class(connector_type: str) -> type[Connector]:
    load_all()
    try:
        return _REGISTRY[connector_type]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ConfigurationError(connector_type, f"unknown connector type (known: {known})") from None
