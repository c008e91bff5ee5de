"""The connector contract: what a connector declares, what it returns, and the page loop every one shares.

A connector is one module that declares a :class:`ConnectorSpec` (type, display name, kind, auth modes and a
config schema in which secret fields are marked) and a :class:`Connector` subclass with two jobs:

- :meth:`Connector.probe` makes the cheapest request that proves reachability, TLS, authentication and read
  permission; :meth:`Connector.check` turns whatever it raised into a precise :class:`CheckResult`.
- :meth:`Connector.streams` names the paged listings to read (a table, a search), each an
  :class:`HttpStream` that supplies only the request and the parsing. :meth:`Connector.fetch` reads them
  with :meth:`HttpStream.read_pages`, which owns the page loop (as airbyte-cdk's ``HttpStream._read_pages``
  does): send, normalise, collect record failures, the :class:`Cursor` *after* each page, and one no-progress
  guard that stops a server answering the same records for ever. The sync engine stores each page's records
  and its cursor in one transaction, so a sync killed anywhere resumes from the last stored cursor.

Like airbyte's HTTP streams, a connector holds no state between syncs beyond what the cursor carries. The
registry (:mod:`connectors.registry`) reads specs without creating connectors: for the wizard (forms from the
schema), the scheduler, the CLI and ``build.spec``.
"""

from __future__ import annotations

import asyncio
import enum
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar, final

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
    PagingStalledError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    TlsError,
)
from connectors.http import (
    ErrorText,
    HttpClient,
    HttpLimits,
    RetryPolicy,
    Sleep,
    create_client,
    default_error_text,
)
from core.knowledge.records import ArticleValues
from core.monitoring.events import AlertEvent
from core.store.tickets import TicketValues


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
    # The config's keychain key (empty for a draft not saved yet): where a browser sign-in's tokens are
    # re-stored when a refresh rotates them (connectors.oauth_consent).
    keychain_key: str = ""

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


class SyncRecord(Protocol):
    """What the page loop and the cursor need of a record: a ticket (ticketing, knowledge) or an alert event
    (monitoring) both have these."""

    @property
    def external_id(self) -> str: ...

    @property
    def updated_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class Page:
    """One stored unit of a sync: a ticketing connector's page holds tickets, a monitoring one's events, a
    knowledge one's articles."""

    tickets: tuple[TicketValues, ...]
    cursor: Cursor
    failures: tuple[RecordFailure, ...] = ()
    events: tuple[AlertEvent, ...] = ()
    articles: tuple[ArticleValues, ...] = ()


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


class WriteAccess(enum.StrEnum):
    """May the account write (create incidents, add work notes)? What ``check()`` found out."""

    ALLOWED = "allowed"
    DENIED = "denied"
    UNKNOWN = "unknown"  # the API cannot tell without writing: the first write says
    NOT_SUPPORTED = "not_supported"  # this connector never writes (monitoring, knowledge)


@dataclass(frozen=True, slots=True)
class WriteCheck:
    access: WriteAccess
    message: str = ""


@dataclass(frozen=True, slots=True)
class CheckResult:
    problem: CheckProblem
    message: str
    hint: str = ""
    write: WriteCheck | None = None  # filled by a connector that can write, when the read check passed

    @property
    def ok(self) -> bool:
        return self.problem is CheckProblem.OK


@dataclass(frozen=True, slots=True)
class NewIncident:
    """An incident (or issue, or request) to create in a ticketing system, as the analyst approved it.

    ``correlation_id`` is stable per monitoring incident ("runbook-desk:<tenant>:<incident id>"): a connector
    whose API can search by it (ServiceNow ``correlation_id``, a Jira label) looks first and returns the
    ticket it finds instead of creating a second.
    """

    correlation_id: str
    title: str
    description: str
    severity: str  # core.monitoring.events.Severity value
    configuration_item: str | None = None
    runbook_title: str | None = None
    runbook_url: str | None = None


@dataclass(frozen=True, slots=True)
class CreatedTicket:
    number: str  # what the analyst sees: INC0010001, OPS-12, 4512
    external_id: str  # what a sync of that system stores as the ticket's external id
    url: str | None = None
    existed: bool = False  # found by its correlation id rather than created now


@dataclass(frozen=True, slots=True)
class WorkNote:
    """An approved runbook link, to post on the source ticket (a work note, comment, note or work-info)."""

    ticket_external_id: str
    ticket_payload: Mapping[str, Any]  # the ticket's stored raw payload (a sys_id, an issue id)
    runbook_title: str
    runbook_url: str | None
    confidence: float | None
    approved_by: str

    def text(self) -> str:
        confidence = f" (confidence {self.confidence:.0%})" if self.confidence is not None else ""
        link = f"\n{self.runbook_url}" if self.runbook_url else ""
        return f"Runbook linked by {self.approved_by} in Runbook Desk: {self.runbook_title}{confidence}{link}"


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
    """What a connector adds to the shared HTTP client: its auth, extra headers and error-body reader, its
    own response-size and time limits where the setting's (:func:`connectors.http.use_limits`) do not fit
    its API (None: the setting's), and the API's address where it is not the config's base URL (a port
    field, a data centre's API domain; None: the base URL)."""

    auth: httpx.Auth | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    error_text: ErrorText = default_error_text
    limits: HttpLimits | None = None
    base_url: str | None = None


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
            options.base_url or settings.base_url,
            auth=options.auth,
            headers=options.headers,
            ca_bundle=settings.ca_bundle,
            transport=transport,
            error_text=options.error_text,
            retry=retry,
            sleep=sleep,
            limits=options.limits,
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
        write = await self.write_check() if self.can_write else None
        return CheckResult(CheckProblem.OK, f"{self.name}: connected and allowed to read", write=write)

    # --- writes (ticketing connectors): create an incident, post a work note ------------------------------

    can_write: ClassVar[bool] = False  # a connector implementing the three methods below says True

    async def write_check(self) -> WriteCheck:
        """Whether the account may create tickets and add notes, without writing anything."""
        return WriteCheck(WriteAccess.NOT_SUPPORTED, f"{self.spec.display_name} connectors do not write")

    async def create_incident(self, incident: NewIncident) -> CreatedTicket:
        """Create the incident (or find the one created for ``incident.correlation_id``); raise on failure."""
        raise ConfigurationError(self.name, f"{self.spec.display_name} connectors cannot create incidents")

    async def add_work_note(self, note: WorkNote) -> str | None:
        """Post ``note`` on its ticket; the note's id when the system returns one; raise on failure."""
        raise ConfigurationError(self.name, f"{self.spec.display_name} connectors cannot add work notes")

    @abstractmethod
    def streams(self, since: Cursor | None, page_size: int | None) -> Sequence[HttpStream[Any]]:
        """The listings one sync reads, in order, each starting from ``since``; settings mistakes raise
        :class:`~connectors.errors.ConfigurationError` here, before any request."""

    @final
    async def fetch(self, since: Cursor | None, *, page_size: int | None = None) -> AsyncIterator[Page]:
        """Pages of records updated at or after ``since`` (minus the spec's precision), oldest first.

        The engine passes the stored cursor as it is; a stream subtracts ``spec.timestamp_precision`` when it
        builds the source's query (only it knows how its query language rounds), so the overlap is re-read.
        The cursor of each page is the (updated_at, id) of its last record; records at exactly the cursor
        with an id <= last_id were stored already: the engine skips them (:meth:`already_stored`), and other
        re-reads of the overlap are counted as unchanged. ``None`` means from the beginning.

        Final: a connector supplies :meth:`streams`, so every connector, a plugin's too, runs under the one
        page loop and its no-progress guard.
        """
        for stream in self.streams(since, page_size):
            async for page in stream.read_pages():
                yield page

    async def preview(self, limit: int = 10) -> list[TicketValues | AlertEvent | ArticleValues]:
        """The first few normalised records (tickets, a monitoring connector's alert events, a knowledge
        connector's articles), for the wizard's preview of the mapping."""
        async for page in self.fetch(None, page_size=limit):
            records: list[TicketValues | AlertEvent | ArticleValues] = [
                *page.tickets,
                *page.events,
                *page.articles,
            ]
            return records[:limit]
        return []

    async def aclose(self) -> None:  # noqa: B027 -- most connectors hold no server-side session
        """Log out or release server-side sessions (Remedy's JWT); the HTTP client is closed by its owner."""


# ----------------------------------------------------------------------------------------------------------
# The page loop: a stream supplies the request and the parsing, read_pages does the rest
# ----------------------------------------------------------------------------------------------------------

TokenT = TypeVar("TokenT")


@dataclass(frozen=True, slots=True)
class PageRequest:
    """One page's request as :meth:`HttpStream.send` sends it; ``path`` also names it in errors."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json_body: Any = None


@dataclass(frozen=True, slots=True)
class AlreadyRead:
    """What :meth:`HttpStream.normalise` returns for a record the sync has already: one behind the cursor
    it started from (the lookback overlap) or one this run read before (an overlapping re-read). It is not
    handed to the engine, but the no-progress guard counts it: a page of nothing but records read earlier
    in the run means the server ignored where the request asked to start."""

    external_id: str
    updated_at: datetime | None


# How the guard knows a record: (id, update time); an edited record comes back with a new time.
RecordIdentity = tuple[str, datetime | None]

# What normalising one record gives: a ticket (or, for a monitoring connector, an alert event), a record read
# already, or None for one to pass over silently (reported once already, or re-read on purpose); a ValueError
# makes it a RecordFailure.
Reading = TicketValues | AlertEvent | ArticleValues | AlreadyRead | None


@dataclass(frozen=True, slots=True)
class StreamPage(Generic[TokenT]):
    """One answer of a stream, read: what :meth:`HttpStream.next_page_token` decides the next request from."""

    token: TokenT | None  # the token this page was asked for with; None for the first page
    request: PageRequest
    response: httpx.Response
    body: Any
    records: Sequence[Any]
    tickets: tuple[TicketValues, ...]
    failures: tuple[RecordFailure, ...]
    cursor: Cursor  # after this page
    events: tuple[AlertEvent, ...] = ()
    articles: tuple[ArticleValues, ...] = ()


class HttpStream(ABC, Generic[TokenT]):
    """One paged listing of a connector (a table, a search) for one fetch: the request and the parsing.

    Like airbyte-cdk's ``HttpStream``: :meth:`request` builds the request for a page token (None for the
    first page), :meth:`records` finds the records in the decoded answer, :meth:`normalise` turns one into a
    ticket, and :meth:`next_page_token` returns the next page's token or None to stop. A stream may keep
    state between its pages (a keyset position); what must outlive the sync goes into the cursor, built by
    :meth:`cursor_after`. :meth:`read_pages` owns the loop, so the guard cannot be forgotten or got wrong
    per connector.
    """

    # Pages in a row without a single record the guard tolerates while :meth:`next_page_token` still asks
    # for more (rows hidden by read permissions are cut from a page after it is counted, so a page can be
    # empty with more behind it); a server answering empty pages for ever stops here.
    max_empty_pages: ClassVar[int] = 10

    def __init__(self, connector: Connector, since: Cursor | None) -> None:
        self.connector = connector
        self.since = since

    async def prepare(self) -> None:
        """Requests needed before the first page (Jira asks for the account's time zone); none by default."""

    @abstractmethod
    def request(self, token: TokenT | None) -> PageRequest:
        """The request for the page ``token`` names; None: the first page."""

    async def send(self, request: PageRequest) -> httpx.Response:
        """Send one page's request; a connector overrides it to add per-request auth or explain refusals."""
        return await self.connector.http.request(
            request.method, request.path, params=request.params, json_body=request.json_body
        )

    def decode(self, response: httpx.Response, request: PageRequest) -> Any:
        """The answer's body (JSON by default); a vendor that reports failures inside a 2xx checks here."""
        return self.connector.http.json_of(response, request.method, request.path)

    @abstractmethod
    def records(self, body: Any, request: PageRequest) -> Sequence[Any]:
        """The page's records; :class:`~connectors.errors.BadResponseError` when the body holds none."""

    @abstractmethod
    async def normalise(self, record: Any) -> Reading:
        """One record as a ticket; ValueError (with the reason) when it cannot be one.

        Async because a source may need a request per record (ServiceDesk Plus resolutions).
        """

    def record_id(self, record: Any) -> str | None:
        """The source's id of a record that could not be normalised, for its :class:`RecordFailure`."""
        return None

    def cursor_after(self, previous: Cursor, tickets: Sequence[SyncRecord]) -> Cursor:
        """The cursor after a page: its last record with an update time, else where the stream stood."""
        for ticket in reversed(tickets):
            if ticket.updated_at is not None:
                return Cursor(ticket.updated_at, ticket.external_id)
        return previous

    @abstractmethod
    def next_page_token(self, page: StreamPage[TokenT]) -> TokenT | None:
        """The token of the page after ``page``; None when there is none."""

    @final
    async def read_pages(self) -> AsyncIterator[Page]:
        """The page loop: request, decode, normalise (collecting failures), cursor, guard, next token.

        A page goes to the engine when it holds a ticket or a failure. The guard looks at a page only when
        another is to follow (the last page cannot loop), and stops the sync before the page is stored.
        """
        await self.prepare()
        name = self.connector.name
        guard = NoProgressGuard(name, self.max_empty_pages)
        cursor = self.since or Cursor()
        token: TokenT | None = None
        while True:
            request = self.request(token)
            response = await self.send(request)
            body = self.decode(response, request)
            records = self.records(body, request)
            tickets: list[TicketValues] = []
            events: list[AlertEvent] = []
            articles: list[ArticleValues] = []
            failures: list[RecordFailure] = []
            seen: list[RecordIdentity] = []
            for record in records:
                try:
                    reading = await self.normalise(record)
                except ValueError as exc:
                    failures.append(RecordFailure(self.record_id(record), str(exc)))
                    continue
                if isinstance(reading, TicketValues):
                    tickets.append(reading)
                    seen.append((reading.external_id, reading.updated_at))
                elif isinstance(reading, AlertEvent):
                    events.append(reading)
                    seen.append((reading.external_id, reading.updated_at))
                elif isinstance(reading, ArticleValues):
                    articles.append(reading)
                    seen.append((reading.external_id, reading.updated_at))
                elif reading is not None:
                    seen.append((reading.external_id, reading.updated_at))
            cursor = self.cursor_after(cursor, [*tickets, *events, *articles])
            page = StreamPage(
                token,
                request,
                response,
                body,
                records,
                tuple(tickets),
                tuple(failures),
                cursor,
                tuple(events),
                tuple(articles),
            )
            token = self.next_page_token(page)
            guard.observe(seen, method=request.method, path=response.request.url.path, more=token is not None)
            if tickets or events or articles or failures:
                yield Page(page.tickets, cursor, page.failures, page.events, page.articles)
            if token is None:
                return


class NoProgressGuard:
    """Stops a stream whose server no longer advances, whatever the connector's paging looks like.

    Every page must bring at least one record this run has not read yet, known by (id, update time): a
    record updated mid-sync comes back with a new time and counts as new. A page of records read already
    stops the sync at once (the server ignored the filter, offset or token it was sent and would answer the
    same again); pages without any record stop it after ``max_empty_pages`` in a row. Records read on the
    last ``WINDOW`` pages are remembered, so memory stays bounded on a million-record first sync.
    """

    WINDOW = 64

    def __init__(self, connector_name: str, max_empty_pages: int) -> None:
        self.connector_name = connector_name
        self.max_empty_pages = max_empty_pages
        self.requests = 0
        self._empty_in_a_row = 0
        self._last_page_of: dict[RecordIdentity, int] = {}
        self._recent: deque[Sequence[RecordIdentity]] = deque()

    def observe(self, identities: Sequence[RecordIdentity], *, method: str, path: str, more: bool) -> None:
        """Remember one page's records; raise PagingStalledError when another page is due and this one
        brought nothing new."""
        self.requests += 1
        number = self.requests
        fresh = False
        for identity in identities:
            if identity not in self._last_page_of:
                fresh = True
            self._last_page_of[identity] = number
        self._recent.append(identities)
        if len(self._recent) > self.WINDOW:
            oldest = number - self.WINDOW
            for identity in self._recent.popleft():
                if self._last_page_of.get(identity) == oldest:
                    del self._last_page_of[identity]
        if not more:
            return
        if identities:
            self._empty_in_a_row = 0
            if not fresh:
                raise PagingStalledError(
                    self.connector_name,
                    method=method,
                    path=path,
                    reason=f"page {number} holds only records this sync has read already",
                    requests=number,
                )
            return
        self._empty_in_a_row += 1
        if self._empty_in_a_row >= self.max_empty_pages:
            raise PagingStalledError(
                self.connector_name,
                method=method,
                path=path,
                reason=f"{self._empty_in_a_row} pages in a row held no record, yet the server offers more",
                requests=number,
            )
