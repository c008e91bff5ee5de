"""Datadog: monitor alert events in, one :class:`~core.monitoring.events.AlertEvent` per event, by event time.

API facts this module relies on (Datadog's API reference and the generated ``datadog-api-client`` models):

- The **site** decides the host: US1 ``api.datadoghq.com``, US3 ``api.us3.datadoghq.com``, US5
  ``api.us5.datadoghq.com``, EU1 ``api.datadoghq.eu``, AP1 ``api.ap1.datadoghq.com``, AP2
  ``api.ap2.datadoghq.com``, UK1 ``api.uk1.datadoghq.com``, US1-FED ``api.ddog-gov.com``, US2-FED
  ``api.us2.ddog-gov.com``. An organisation lives on exactly one site: keys of one are refused by another. The
  config's base URL is the site's API address, so its records are kept per site (the store's instance); a
  relay or proxy of one's own may stand in for it.
- Auth: two headers on every request, ``DD-API-KEY`` (the organisation) and ``DD-APPLICATION-KEY`` (the user
  or service account, and its permissions). ``GET /api/v1/validate`` proves the API key alone. Datadog answers
  a wrong key with **403** ``{"errors": ["Forbidden"]}`` rather than 401, and the same for an application key
  without the permission, so a refusal is told apart by validating the API key (:meth:`DatadogConnector.
  explained`).
- Events: ``GET /api/v2/events`` (JSON:API) with ``filter[query]`` (monitor alerts are ``source:alert``),
  ``filter[from]`` / ``filter[to]`` (milliseconds; without ``filter[from]`` Datadog reads only the last 15
  minutes), ``sort=timestamp`` (oldest first), ``page[limit]``; the next page's cursor is ``meta.page.after``,
  sent back as ``page[cursor]``; the page after the last one is ``{"data": []}``. A record is ``{"id",
  "type": "event", "attributes": {"message", "tags", "timestamp", "attributes": {...}}}``; the inner
  attributes hold ``monitor_id``, ``monitor`` (name, query, tags), ``status`` (``error``, ``warning``,
  ``success``...), ``title`` (``[P1] [Triggered on {host:web-01}] CPU high``, ``[Recovered] ...``),
  ``hostname``, ``service``, ``tags``, ``timestamp`` (ms) and ``evt.id``. Event ids are strings (the numeric
  ``evt.id`` exceeds 2**53, which a JSON number would round in JavaScript): kept as the strings they are.
- Monitors: ``GET /api/v1/monitor`` with ``page`` (from 0) and ``page_size``, a bare JSON array; a page
  shorter than asked is the last. ``query`` is the rule expression, ``priority`` 1..5 or null,
  ``overall_state`` Alert/Warn/No Data/OK.
- Errors: ``{"errors": ["text", ...]}``. A 429 has an **empty body** and ``X-RateLimit-Limit``, ``-Period``,
  ``-Remaining``, ``-Reset`` (seconds until the window resets) and ``-Name``; the shared client waits the
  reset (:func:`connectors.http.retry_after_seconds` reads a small ``X-RateLimit-Reset`` as seconds).

Records: every monitor alert event is one record (an event stream: a record never changes). Its title loses
the state prefixes, so "[Triggered] CPU high" and "[Recovered] CPU high" of one monitor and host have one
fingerprint, and the recovery resolves the alert it ends. The monitors are read once per sync, before the
first page, for the monitor's name, rule expression and priority when an event does not carry them.

Cursor: the last event's time and the ids read at exactly that time (``extra["ids_at_cursor"]``, so ids need
no order). Datadog indexes an event shortly after its timestamp, so each sync asks from a minute before the
cursor (``spec.timestamp_precision``): late arrivals in that minute are read, the ones stored already count
as unchanged, and the ones at the cursor's exact time are dropped here.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from connectors.base import (
    AlreadyRead,
    AuthMode,
    ClientOptions,
    ConfigField,
    Connector,
    ConnectorKind,
    ConnectorSettings,
    ConnectorSpec,
    Cursor,
    FieldType,
    HttpStream,
    PageRequest,
    Reading,
    StreamPage,
    SyncRecord,
)
from connectors.errors import (
    AuthenticationError,
    BadResponseError,
    ConfigurationError,
    HttpStatusError,
    PermissionDeniedError,
)
from connectors.http import HttpClient, default_error_text
from core.monitoring.events import AlertEvent, Severity
from core.store.models import AlertStatus

SOURCE_SYSTEM = "datadog"
AUTH_KEYS = "api_keys"

VALIDATE_PATH = "/api/v1/validate"
MONITORS_PATH = "/api/v1/monitor"
EVENTS_PATH = "/api/v2/events"

ALERT_QUERY = "source:alert"  # the monitor alert events of the Events Explorer
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000  # page[limit]'s maximum
MONITOR_PAGE_SIZE = 1000
MAX_MONITOR_PAGES = 20  # 20,000 monitors: more than any organisation keeps; the read stays bounded
DEFAULT_HISTORY_DAYS = 15  # a first sync reads this far back (Datadog's standard event retention)
LOOKBACK = timedelta(minutes=1)  # events are searchable shortly after their timestamp, not at once


@dataclass(frozen=True, slots=True)
class Site:
    """One Datadog site: the label analysts know it by, its API host and the host of its web app."""

    label: str
    api_host: str
    app_host: str

    @property
    def api_url(self) -> str:
        return f"https://{self.api_host}"


# Keyed by the site's own name, the value of Datadog's ``DD_SITE`` setting.
SITES: dict[str, Site] = {
    "datadoghq.com": Site("US1", "api.datadoghq.com", "app.datadoghq.com"),
    "us3.datadoghq.com": Site("US3", "api.us3.datadoghq.com", "us3.datadoghq.com"),
    "us5.datadoghq.com": Site("US5", "api.us5.datadoghq.com", "us5.datadoghq.com"),
    "datadoghq.eu": Site("EU1", "api.datadoghq.eu", "app.datadoghq.eu"),
    "ap1.datadoghq.com": Site("AP1", "api.ap1.datadoghq.com", "ap1.datadoghq.com"),
    "ap2.datadoghq.com": Site("AP2", "api.ap2.datadoghq.com", "ap2.datadoghq.com"),
    "uk1.datadoghq.com": Site("UK1", "api.uk1.datadoghq.com", "uk1.datadoghq.com"),
    "ddog-gov.com": Site("US1-FED", "api.ddog-gov.com", "app.ddog-gov.com"),
    "us2.ddog-gov.com": Site("US2-FED", "api.us2.ddog-gov.com", "us2.ddog-gov.com"),
}
DEFAULT_SITE = "datadoghq.com"
_DATADOG_DOMAINS = ("datadoghq.com", "datadoghq.eu", "ddog-gov.com")

# Title prefixes Datadog puts in front of a monitor notification's title: the priority and the transition
# ("[P2] [Triggered on {host:web-01}] ..."); the rest of the title is what the alert is about.
_STATE_WORDS = (
    "Triggered",
    "Re-Triggered",
    "Recovered",
    "Warn",
    "Re-Warn",
    "Warn Recovered",
    "No Data",
    "Re-No Data",
    "No Data Recovered",
    "Muted",
)
_RECOVERED_WORDS = frozenset({"recovered", "warn recovered", "no data recovered"})
_PRIORITY_SEVERITY = {
    1: Severity.CRITICAL,
    2: Severity.HIGH,
    3: Severity.WARNING,
    4: Severity.INFO,
    5: Severity.INFO,
}

SPEC = ConnectorSpec(
    type=SOURCE_SYSTEM,
    display_name="Datadog",
    kind=ConnectorKind.MONITORING,
    auth_modes=(
        AuthMode(
            AUTH_KEYS,
            "API key + application key",
            "Organization settings > API keys and > Application keys; the application key's account needs "
            "the events_read and monitors_read permissions.",
        ),
    ),
    fields=(
        ConfigField(
            "base_url",
            "API address",
            FieldType.URL,
            default=SITES[DEFAULT_SITE].api_url,
            placeholder=SITES[DEFAULT_SITE].api_url,
            help="The site's API address: "
            + ", ".join(f"{site.label} {site.api_url}" for site in SITES.values())
            + ". It must match the site below (or be your own relay to it).",
            page="where",
        ),
        ConfigField(
            "site",
            "Datadog site",
            FieldType.CHOICE,
            default=DEFAULT_SITE,
            choices=tuple((name, f"{site.label} ({site.app_host})") for name, site in SITES.items()),
            help="Where your organisation lives: the address you sign in at. Keys work on their own site "
            "only.",
            page="where",
        ),
        ConfigField(
            "api_key",
            "API key",
            FieldType.SECRET,
            help="Organization settings > API keys: identifies the organisation.",
            page="auth",
        ),
        ConfigField(
            "application_key",
            "Application key",
            FieldType.SECRET,
            help="Organization settings > Application keys: acts as its user, with that user's permissions "
            "(events_read, monitors_read).",
            page="auth",
        ),
        ConfigField(
            "query",
            "Extra event filter",
            required=False,
            placeholder="env:prod service:checkout",
            help="Events Explorer search terms ANDed with source:alert, e.g. tags or a team.",
        ),
        ConfigField(
            "history_days",
            "First sync reads back (days)",
            FieldType.INTEGER,
            required=False,
            default=DEFAULT_HISTORY_DAYS,
            help="How far back the first sync starts; Datadog keeps events 15 days unless your plan says "
            "otherwise.",
        ),
    ),
    timestamp_precision=LOOKBACK,
    description="Monitor alerts from Datadog's event stream (v2 events API), with each monitor's query.",
    docs_url="https://docs.datadoghq.com/api/latest/events/#get-a-list-of-events",
    icon="datadog.svg",
)


def datadog_error_text(response: httpx.Response) -> str:
    """Datadog's ``{"errors": ["...", ...]}`` joined; an empty body (a 429's) says nothing."""
    try:
        body = response.json()
    except ValueError:
        return default_error_text(response)
    errors = body.get("errors") if isinstance(body, Mapping) else None
    if isinstance(errors, list):
        texts = [error if isinstance(error, str) else str(error.get("detail") or error) for error in errors]
        return "; ".join(text for text in texts if text)
    return default_error_text(response)


class _KeyHeaders(httpx.Auth):
    """The two key headers as an auth flow rather than default headers, so no client repr shows them."""

    def __init__(self, api_key: str, application_key: str) -> None:
        self._api_key = api_key
        self._application_key = application_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["DD-API-KEY"] = self._api_key
        request.headers["DD-APPLICATION-KEY"] = self._application_key
        yield request


def site_of(settings: ConnectorSettings) -> Site:
    """The chosen site, checked against the base URL: a Datadog host must be that site's API host, because
    the base URL names the instance the records are kept under (a relay of one's own may stand in)."""
    name = str(settings.option("site", DEFAULT_SITE)).strip().lower()
    site = SITES.get(name)
    if site is None:
        raise ConfigurationError(settings.name, f"unknown Datadog site {name!r} (known: {', '.join(SITES)})")
    host = (urlsplit(settings.base_url).hostname or "").lower().rstrip(".")
    is_datadog = any(host == domain or host.endswith("." + domain) for domain in _DATADOG_DOMAINS)
    if is_datadog and host != site.api_host:
        raise ConfigurationError(
            settings.name,
            f"the {site.label} site's API is at {site.api_url}, but the address is {settings.base_url}: "
            f"set the address to {site.api_url} (or choose the site that address belongs to)",
        )
    return site


def clean_title(title: str) -> tuple[str, str | None, int | None]:
    """The title without Datadog's leading ``[P1]`` / ``[Triggered on {...}]`` groups, the transition word
    found (lower case: "triggered", "recovered"...) and the priority (1..5) when the title carries one."""
    rest = title.strip()
    transition: str | None = None
    priority: int | None = None
    while rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            break
        inner = rest[1:end].strip()
        if len(inner) == 2 and inner[0] in "Pp" and inner[1] in "12345":
            priority = int(inner[1])
        else:
            word = next(
                (w for w in sorted(_STATE_WORDS, key=len, reverse=True) if _starts_word(inner, w)), None
            )
            if word is None:
                break  # a bracket that belongs to the title itself ("[prod] disk full")
            transition = word.lower()
        rest = rest[end + 1 :].lstrip()
    return rest, transition, priority


def _starts_word(text: str, word: str) -> bool:
    return text.lower() == word.lower() or text.lower().startswith(word.lower() + " on ")


@dataclass(frozen=True, slots=True)
class MonitorInfo:
    """What an event may lack of its monitor: its name, rule expression and priority."""

    name: str | None
    query: str | None
    priority: int | None
    tags: tuple[str, ...] = ()


def _priority(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 1 <= value <= 5:
        return value
    if isinstance(value, str) and value.strip().lstrip("Pp").isdigit():
        number = int(value.strip().lstrip("Pp"))
        return number if 1 <= number <= 5 else None
    return None


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _id_text(value: Any) -> str | None:
    """An id as text, exactly: a string as it is, an integer in full (never through a float)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return _text(value)


def _tag_value(tags: Sequence[str], key: str) -> str | None:
    prefix = key + ":"
    values = (tag[len(prefix) :] for tag in tags if tag.startswith(prefix))
    return next((value for value in values if value), None)


def _event_time(outer: Mapping[str, Any], inner: Mapping[str, Any]) -> datetime:
    """The event's time: the inner ``timestamp`` (ms), else the outer ISO one; ValueError without either."""
    millis = inner.get("timestamp")
    if isinstance(millis, int) and not isinstance(millis, bool):
        return datetime.fromtimestamp(millis / 1000, UTC)
    stamp = outer.get("timestamp")
    if isinstance(stamp, str) and stamp:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    raise ValueError("the event has no timestamp")


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class DatadogConnector(Connector):
    spec: ClassVar[ConnectorSpec] = SPEC

    def __init__(self, settings: ConnectorSettings, http: HttpClient) -> None:
        super().__init__(settings, http)
        self.site = site_of(settings)
        self.monitors: dict[str, MonitorInfo] = {}

    @classmethod
    def client_options(cls, settings: ConnectorSettings) -> ClientOptions:
        site_of(settings)  # a mismatched site and address fail before any request
        return ClientOptions(
            auth=_KeyHeaders(settings.secret("api_key"), settings.secret("application_key")),
            headers={"Accept": "application/json"},
            error_text=datadog_error_text,
        )

    # --- check ---------------------------------------------------------------------------------------------

    async def probe(self) -> None:
        """The API key (``/validate``), then the application key with each read the sync makes: one monitor,
        one event of the last hour."""
        await self.request_json(VALIDATE_PATH, validating=True)
        await self.request_json(MONITORS_PATH, {"page": 0, "page_size": 1})
        since = datetime.now(UTC) - timedelta(hours=1)
        await self.request_json(EVENTS_PATH, self.events_params(since, 1, None))

    # --- requests ------------------------------------------------------------------------------------------

    async def request_json(
        self, path: str, params: Mapping[str, Any] | None = None, *, validating: bool = False
    ) -> Any:
        try:
            response = await self.http.request("GET", path, params=params)
        except HttpStatusError as exc:
            raise await self.explained(exc, validating=validating) from exc
        return self.http.json_of(response, "GET", path)

    async def explained(self, exc: HttpStatusError, *, validating: bool = False) -> HttpStatusError:
        """A refusal (401/403) said as what it is: Datadog answers a wrong key with 403, so validate the API
        key to tell a wrong API key from an application key that is wrong or lacks the permission."""
        if not isinstance(exc, AuthenticationError | PermissionDeniedError) or exc.hint:
            return exc
        api_key_refused = validating
        if not validating:
            try:
                await self.http.request("GET", VALIDATE_PATH)
            except (AuthenticationError, PermissionDeniedError):
                api_key_refused = True
        if api_key_refused:
            hint = (
                f"authentication failed: the API key was refused by the {self.site.label} site (wrong or "
                "revoked key, or a key of another site); Organization settings > API keys"
            )
        else:
            needed = "monitors_read" if exc.path == MONITORS_PATH else "events_read"
            hint = (
                "authentication failed: the application key was refused, or its account lacks the "
                f"{needed} permission; Organization settings > Application keys"
            )
        return AuthenticationError(
            exc.connector,
            method=exc.method,
            path=exc.path,
            status=exc.status,
            server_message=exc.server_message,
            hint=hint,
        )

    def events_params(self, since: datetime, limit: int, cursor: str | None) -> dict[str, Any]:
        extra = str(self.settings.option("query", "")).strip()
        params: dict[str, Any] = {
            "filter[query]": f"{ALERT_QUERY} ({extra})" if extra else ALERT_QUERY,
            "filter[from]": str(millis(since)),
            "filter[to]": "now",
            "sort": "timestamp",
            "page[limit]": limit,
        }
        if cursor:
            params["page[cursor]"] = cursor
        return params

    async def load_monitors(self) -> None:
        """Every monitor's name, query and priority, a bounded number of pages (a short page is the last)."""
        monitors: dict[str, MonitorInfo] = {}
        for page in range(MAX_MONITOR_PAGES):
            body = await self.request_json(MONITORS_PATH, {"page": page, "page_size": MONITOR_PAGE_SIZE})
            if not isinstance(body, list):
                raise BadResponseError(self.name, f"GET {MONITORS_PATH} did not return a list of monitors")
            for monitor in body:
                monitor_id = _id_text(monitor.get("id")) if isinstance(monitor, Mapping) else None
                if monitor_id is None:
                    continue
                tags = monitor.get("tags")
                monitors[monitor_id] = MonitorInfo(
                    _text(monitor.get("name")),
                    _text(monitor.get("query")),
                    _priority(monitor.get("priority")),
                    tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
                )
            if len(body) < MONITOR_PAGE_SIZE:
                break
        self.monitors = monitors

    # --- records -------------------------------------------------------------------------------------------

    def normalise(self, record: Any) -> AlertEvent:
        """One v2 event as an alert event; ValueError (the reason) when it is not one."""
        event_id = record.get("id") if isinstance(record, Mapping) else None
        outer = record.get("attributes") if isinstance(record, Mapping) else None
        inner = outer.get("attributes") if isinstance(outer, Mapping) else None
        if not isinstance(event_id, str) or not event_id or not isinstance(inner, Mapping):
            raise ValueError("not a JSON:API event (no id or no attributes)")
        assert isinstance(outer, Mapping)
        occurred_at = _event_time(outer, inner)
        monitor = inner.get("monitor")
        embedded: Mapping[str, Any] = monitor if isinstance(monitor, Mapping) else {}
        monitor_id = _id_text(inner.get("monitor_id")) or _id_text(embedded.get("id"))
        known = self.monitors.get(monitor_id or "")
        raw_title = _text(inner.get("title")) or _text(inner.get("event_object")) or ""
        title, transition, title_priority = clean_title(raw_title)
        title = title or _text(embedded.get("name")) or (known.name if known else None) or ""
        if not title:
            raise ValueError("the event has no title")
        tags = _merged_tags(outer.get("tags"), inner.get("tags"))
        status_word = str(inner.get("status") or "").lower()
        recovered = transition in _RECOVERED_WORDS or status_word == "success"
        priority = title_priority or (known.priority if known else None)
        if recovered:
            status, severity = AlertStatus.RESOLVED, Severity.INFO
        else:
            status, severity = AlertStatus.TRIGGERED, _severity(status_word, priority)
        message = _text(outer.get("message")) or _text(embedded.get("message")) or ""
        return AlertEvent(
            external_id=event_id,
            source_system=SOURCE_SYSTEM,
            # Not a monitor's (a filter that lets other events through): the aggregation key groups them.
            monitor_id=monitor_id or _text(inner.get("aggregation_key")) or "",
            title=title,
            message=message,
            severity=severity,
            status=status,
            occurred_at=occurred_at,
            updated_at=occurred_at,
            host=_text(inner.get("hostname")) or _tag_value(tags, "host"),
            service=_text(inner.get("service")) or _tag_value(tags, "service"),
            expression=_text(embedded.get("query")) or (known.query if known else None),
            tags=tags,
            resolved_at=occurred_at if recovered else None,
            firing=not recovered,
            source_url=self.source_url(event_id, monitor_id),
            raw_payload=dict(record),
        )

    def source_url(self, event_id: str, monitor_id: str | None) -> str:
        """The monitor's page on the site's web app (what an analyst opens), else the event's."""
        app = f"https://{self.site.app_host}"
        if monitor_id:
            return f"{app}/monitors/{monitor_id}"
        return str(httpx.URL(f"{app}/event/explorer", params={"event": event_id}))

    # --- the stream ----------------------------------------------------------------------------------------

    def streams(self, since: Cursor | None, page_size: int | None) -> list[HttpStream[Any]]:
        days = self.settings.option("history_days", DEFAULT_HISTORY_DAYS)
        if not isinstance(days, int) or days < 1:
            raise ConfigurationError(self.name, "history_days must be a whole number of days, 1 or more")
        limit = max(1, min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE))
        return [_EventStream(self, since, limit, timedelta(days=days))]


def _merged_tags(*lists: Any) -> tuple[str, ...]:
    merged: dict[str, None] = {}
    for tags in lists:
        if isinstance(tags, list):
            merged.update((tag, None) for tag in tags if isinstance(tag, str) and tag)
    return tuple(merged)


def _severity(status_word: str, priority: int | None) -> Severity:
    """An alert's severity: the monitor's priority when it has one, else the event's status."""
    if status_word in ("error", "failure"):
        return _PRIORITY_SEVERITY.get(priority or 1, Severity.CRITICAL)
    if status_word == "warning":
        return Severity.WARNING if priority is None or priority <= 3 else Severity.INFO
    return Severity.INFO


@dataclass
class _Progress:
    """The newest event time this sync has passed and every id read at exactly that time."""

    updated_at: datetime | None = None
    ids_at_cursor: set[str] = field(default_factory=set)
    last_id: str | None = None

    @classmethod
    def from_cursor(cls, cursor: Cursor | None) -> _Progress:
        if cursor is None or cursor.updated_at is None:
            return cls()
        ids = {str(i) for i in cursor.extra.get("ids_at_cursor") or ()}
        if cursor.last_id:
            ids.add(cursor.last_id)
        moment = cursor.updated_at
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        return cls(moment, ids, cursor.last_id)

    def stored(self, moment: datetime, event_id: str) -> bool:
        return moment == self.updated_at and event_id in self.ids_at_cursor

    def advance(self, moment: datetime, event_id: str) -> None:
        if self.updated_at is None or moment > self.updated_at:
            self.updated_at, self.ids_at_cursor, self.last_id = moment, {event_id}, event_id
        elif moment == self.updated_at:
            self.ids_at_cursor.add(event_id)
            self.last_id = event_id

    def cursor(self) -> Cursor:
        return Cursor(self.updated_at, self.last_id, {"ids_at_cursor": sorted(self.ids_at_cursor)})


class _EventStream(HttpStream[str]):
    """The monitor alert events from a minute before the cursor (or ``history`` back), oldest first, paged
    by Datadog's cursor; the token is ``meta.page.after``."""

    def __init__(
        self, connector: DatadogConnector, since: Cursor | None, limit: int, history: timedelta
    ) -> None:
        super().__init__(connector, since)
        self.datadog = connector
        self.limit = limit
        self.progress = _Progress.from_cursor(since)
        start = self.progress.updated_at
        self.bound = start - connector.spec.timestamp_precision if start else datetime.now(UTC) - history

    async def prepare(self) -> None:
        await self.datadog.load_monitors()

    def request(self, token: str | None) -> PageRequest:
        params = self.datadog.events_params(self.bound, self.limit, token)
        return PageRequest("GET", EVENTS_PATH, params=params)

    async def send(self, request: PageRequest) -> httpx.Response:
        try:
            return await self.connector.http.request(request.method, request.path, params=request.params)
        except HttpStatusError as exc:
            raise await self.datadog.explained(exc) from exc

    def records(self, body: Any, request: PageRequest) -> Sequence[Any]:
        data = body.get("data") if isinstance(body, Mapping) else None
        if not isinstance(data, list):
            raise BadResponseError(self.connector.name, f"GET {EVENTS_PATH} did not return a data list")
        return data

    async def normalise(self, record: Any) -> Reading:
        event = self.datadog.normalise(record)
        assert event.updated_at is not None
        if event.updated_at < self.bound or self.progress.stored(event.updated_at, event.external_id):
            return AlreadyRead(event.external_id, event.updated_at)  # before the asked start, or stored
        self.progress.advance(event.updated_at, event.external_id)
        return event

    def record_id(self, record: Any) -> str | None:
        event_id = record.get("id") if isinstance(record, Mapping) else None
        return event_id if isinstance(event_id, str) else None

    def cursor_after(self, previous: Cursor, tickets: Sequence[SyncRecord]) -> Cursor:
        return self.progress.cursor() if self.progress.updated_at is not None else previous

    def next_page_token(self, page: StreamPage[str]) -> str | None:
        if not page.records:
            return None  # the page after the last: {"data": []}
        meta = page.body.get("meta")
        paging = meta.get("page") if isinstance(meta, Mapping) else None
        after = paging.get("after") if isinstance(paging, Mapping) else None
        if after is None or after == "":
            return None
        if not isinstance(after, str):
            raise BadResponseError(
                self.connector.name, f"GET {EVENTS_PATH} returned a page cursor that is not text"
            )
        return after
