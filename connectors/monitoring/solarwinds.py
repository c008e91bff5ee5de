"""SolarWinds Orion alerts through the SolarWinds Information Service (SWIS) REST API.

The API in brief (checked against SolarWinds' own ``OrionSDK`` docs and samples and ``orionsdk-python``):

- One endpoint: ``POST https://HOST:17774/SolarWinds/InformationService/v3/Json/Query`` with
  ``{"query": "<SWQL>", "parameters": {...}}`` and HTTP basic auth; the answer is ``{"results": [...]}``.
  Port 17774 since Orion 2023.1; 17778 before (deprecated). Values go in ``parameters`` and are referred to
  as ``@name`` in the SWQL, never formatted into the query text.
- No server cursor: paging is a keyset in SWQL, ``TOP n ... WHERE TimeStamp > @since OR (TimeStamp = @since
  AND AlertHistoryID > @after_id) ORDER BY TimeStamp, AlertHistoryID``.
- Errors are JSON ``{"Message", "ExceptionType", "FullException"}`` (400 for a bad SWQL query). A wrong user
  name or password is answered 403 *without* a SWIS message (the Windows HTTP stack refuses it before SWIS
  reads anything: ``orionsdk-python`` reports only "403 Forbidden" then); a 403 *with* a message is SWIS
  refusing an authenticated account. The two become an authentication and a permission error.
- Dates carry 7 fractional digits (.NET ticks), some end in ``Z`` and some do not; all are UTC.
- The certificate is usually self-signed: the config's CA bundle verifies it (never "verify off").

What a record is: a row of ``Orion.AlertHistory`` (an event stream whose rows never change), joined through
its navigation properties to ``Orion.AlertObjects`` (the object that triggered: ``EntityCaption``,
``RelatedNodeCaption``, ``Context``) and ``Orion.AlertConfigurations`` (``Name``, ``Severity``,
``Description``). ``EventType`` (OrionSDK ``docs/alerts.md``): 0 triggered, 1 reset, 2 acknowledged, 3 note,
4 added to incident, 5 action failed, 6 action succeeded, 7 unacknowledged, 8 cleared. Only 0, 1, 2 and 8
change an alert's state; the query asks for those alone (action rows outnumber them on a busy server).
Triggered is TRIGGERED, reset and cleared are RESOLVED, acknowledged is ACKNOWLEDGED; every row of one alert
on one object shares its fingerprint (monitor id ``AlertID:AlertObjectID``, the node as host, the alert's
name as title), so a reset resolves the alert its trigger opened. Unacknowledge (7) is left out: it would
count as one more firing in the deduplication, and the next reset or trigger says the state anyway.

Severity (``Orion.AlertConfigurations.Severity``): 0 Information -> info, 1 Warning -> warning, 2 Critical ->
critical, 3 Serious -> high, 4 Notice -> info; a missing or unknown value -> warning (neither hidden nor
escalated). The alert's ``Description`` is kept as its expression (the trigger condition as the
administrator described it); the condition tree itself (``Trigger``, an XML document of several KB per
alert) is not fetched: it would multiply every page's size for text nobody reads in a list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from connectors.base import (
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
    StreamPage,
)
from connectors.errors import (
    AuthenticationError,
    BadResponseError,
    ConfigurationError,
    PermissionDeniedError,
)
from connectors.http import default_error_text
from core.monitoring.events import AlertEvent, Severity
from core.store.models import AlertStatus
from core.store.tickets import TicketValues

SOURCE_SYSTEM = "solarwinds"
DEFAULT_PORT = 17774  # Orion 2023.1 and later; 17778 before
QUERY_PATH = "/SolarWinds/InformationService/v3/Json/Query"
_API_ROOT = "/SolarWinds/InformationService/v3/Json"
DEFAULT_PAGE_SIZE = 200
MAX_PAGE_SIZE = 1000
AUTH_BASIC = "basic"

# EventType values of Orion.AlertHistory that change an alert's state, and what they become.
EVENT_STATUS: dict[int, AlertStatus] = {
    0: AlertStatus.TRIGGERED,
    1: AlertStatus.RESOLVED,  # reset
    2: AlertStatus.ACKNOWLEDGED,
    8: AlertStatus.RESOLVED,  # cleared by hand
}
_EVENT_NAMES = {0: "triggered", 1: "reset", 2: "acknowledged", 8: "cleared"}

# Orion.AlertConfigurations.Severity -> the app's scale (see the module docstring).
SEVERITIES: dict[int, Severity] = {
    0: Severity.INFO,  # Information
    1: Severity.WARNING,  # Warning
    2: Severity.CRITICAL,  # Critical
    3: Severity.HIGH,  # Serious
    4: Severity.INFO,  # Notice
}

# (SWQL expression, the name it is answered under). Navigation properties, as the OrionSDK docs recommend.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("ah.AlertHistoryID", "AlertHistoryID"),
    ("ah.EventType", "EventType"),
    ("ah.Message", "Message"),
    ("ah.TimeStamp", "TimeStamp"),
    ("ah.AccountID", "AccountID"),
    ("ah.AlertObjectID", "AlertObjectID"),
    ("ah.AlertObjects.AlertID", "AlertID"),
    ("ah.AlertObjects.EntityType", "EntityType"),
    ("ah.AlertObjects.EntityCaption", "EntityCaption"),
    ("ah.AlertObjects.RelatedNodeCaption", "RelatedNodeCaption"),
    ("ah.AlertObjects.Context", "Context"),
    ("ah.AlertObjects.AlertConfigurations.Name", "AlertName"),
    ("ah.AlertObjects.AlertConfigurations.Severity", "Severity"),
    ("ah.AlertObjects.AlertConfigurations.Description", "AlertDescription"),
)
_SELECTED = ", ".join(f"{expression} AS {name}" for expression, name in COLUMNS)
_EVENT_FILTER = f"ah.EventType IN ({', '.join(str(t) for t in sorted(EVENT_STATUS))})"
KEYSET = "(ah.TimeStamp > @since OR (ah.TimeStamp = @since AND ah.AlertHistoryID > @after_id))"
ORDER = "ORDER BY ah.TimeStamp, ah.AlertHistoryID"
PROBE_QUERY = "SELECT TOP 1 AlertHistoryID FROM Orion.AlertHistory"


def history_query(top: int, *, keyset: bool) -> str:
    """The listing's SWQL. Only ``top`` (an int of ours) is in the text; keyset values are parameters."""
    where = f"{_EVENT_FILTER} AND {KEYSET}" if keyset else _EVENT_FILTER
    return f"SELECT TOP {int(top)} {_SELECTED} FROM Orion.AlertHistory ah WHERE {where} {ORDER}"


SPEC = ConnectorSpec(
    type=SOURCE_SYSTEM,
    display_name="SolarWinds Orion",
    kind=ConnectorKind.MONITORING,
    auth_modes=(
        AuthMode(
            AUTH_BASIC,
            "Orion user name and password",
            "An Orion web console account (Orion or Windows); it reads the alert history through SWIS.",
        ),
    ),
    fields=(
        ConfigField(
            "base_url",
            "Orion server",
            FieldType.URL,
            placeholder="https://orion.example.com:17774",
            help="The Orion main polling engine. Add the port when it is not the default.",
            page="where",
        ),
        ConfigField(
            "port",
            "SWIS port",
            FieldType.INTEGER,
            required=False,
            default=DEFAULT_PORT,
            help="17774 on Orion 2023.1 and later, 17778 before; a port in the server address wins.",
            page="where",
        ),
        ConfigField(
            "web_url",
            "Web console address",
            FieldType.URL,
            required=False,
            placeholder="https://orion.example.com",
            help="For links to an alert's page; empty: the server's address on the HTTPS port.",
            page="where",
        ),
        ConfigField("username", "User name", page="auth", help="DOMAIN\\user for a Windows account."),
        ConfigField("password", "Password", FieldType.SECRET, page="auth"),
    ),
    # SWIS dates are exact to 100 ns; the cursor keeps microseconds. The second of lookback also re-reads
    # rows a second polling engine committed just after a later row was read.
    timestamp_precision=timedelta(seconds=1),
    description="Alerts of SolarWinds Orion (NPM, SAM...) from the alert history: triggered, "
    "acknowledged and reset.",
    docs_url="https://github.com/solarwinds/OrionSDK/wiki/REST",
    icon="solarwinds.svg",
)


# --- values -------------------------------------------------------------------------------------------------

_SWIS_TIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,7})\d*)?(Z|[+-]\d{2}:?\d{2})?$", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class SwisTime:
    """A SWIS date: ``moment`` (aware UTC, to the microsecond, for the app) and ``text`` (UTC, all seven
    fractional digits, no zone), which is what the keyset sends back so that ``TimeStamp = @since`` holds for
    the very row it came from."""

    moment: datetime
    text: str


def parse_swis_time(value: Any) -> SwisTime | None:
    """A SWIS date, with or without ``Z`` (both are UTC), 0 to 7 fractional digits; None when empty.

    ``datetime.fromisoformat`` refuses 7 digits before Python 3.11 and drops the seventh since, so the
    fraction is split by hand. Raises ValueError for a value that is not a date at all.
    """
    if value is None or value == "":
        return None
    match = _SWIS_TIME.match(str(value).strip())
    if match is None:
        raise ValueError(f"{value!r} is not a SWIS date")
    day, clock, fraction, zone = match.groups()
    digits = (fraction or "").ljust(7, "0")
    moment = datetime.fromisoformat(f"{day}T{clock}").replace(microsecond=int(digits[:6]), tzinfo=UTC)
    if zone and zone.upper() != "Z":
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[-2:])
        moment -= sign * timedelta(hours=hours, minutes=minutes)
    return SwisTime(moment, f"{moment:%Y-%m-%dT%H:%M:%S.%f}{digits[6]}")


def swis_time_text(moment: datetime) -> str:
    """A datetime as a SWIS date parameter: UTC, seven fractional digits, no zone (as SWIS stores it)."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment
    return f"{utc:%Y-%m-%dT%H:%M:%S.%f}0"


def swis_context(value: Any) -> Any:
    """``Orion.AlertObjects.Context``: JSON text, or the literal string "null" (then None); kept raw when it
    is neither."""
    if value is None:
        return None
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text in ("", "null"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return value


def solarwinds_severity(value: Any) -> Severity:
    """``Orion.AlertConfigurations.Severity`` on the app's scale; unknown or missing -> warning."""
    try:
        return SEVERITIES.get(int(value), Severity.WARNING)
    except (TypeError, ValueError):
        return Severity.WARNING


def solarwinds_error_text(response: httpx.Response) -> str:
    """SWIS's ``Message`` with the exception's short type; never ``FullException`` (a server stack trace).

    Empty when the answer carries no SWIS message (a refusal before SWIS, such as a wrong password)."""
    try:
        body = response.json()
    except ValueError:
        return "" if not response.text.strip() else default_error_text(response)
    if not isinstance(body, Mapping):
        return default_error_text(response)
    message = body.get("Message")
    if not isinstance(message, str) or not message:
        return default_error_text(response)
    exception = body.get("ExceptionType")
    if isinstance(exception, str) and exception:
        return f"{message} ({exception.rsplit('.', 1)[-1]})"
    return message


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def api_base_url(settings: ConnectorSettings) -> str:
    """``https://HOST:PORT`` from what the analyst typed: a bare host, a URL with or without its port, or
    the whole ``.../InformationService/v3/Json`` address copied from a script."""
    text = settings.base_url.strip()
    if not text:
        raise ConfigurationError(settings.name, "the Orion server address is not set")
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    if not parts.hostname:
        raise ConfigurationError(settings.name, f"{settings.base_url!r} names no Orion server")
    try:
        port = parts.port or int(settings.option("port", DEFAULT_PORT))
    except ValueError as exc:
        raise ConfigurationError(settings.name, f"the SWIS port is not a number: {exc}") from exc
    path = parts.path.rstrip("/")
    cut = path.lower().find(_API_ROOT.lower())
    if cut >= 0:
        path = path[:cut]
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return urlunsplit((parts.scheme, f"{host}:{port}", path, "", ""))


# --- the connector ------------------------------------------------------------------------------------------


class SolarWindsConnector(Connector):
    """Reads ``Orion.AlertHistory`` as alert events; see the module docstring."""

    spec = SPEC

    @classmethod
    def client_options(cls, settings: ConnectorSettings) -> ClientOptions:
        username = str(settings.option("username", ""))
        if not username:
            raise ConfigurationError(settings.name, "the Orion user name is not set")
        return ClientOptions(
            auth=httpx.BasicAuth(username, settings.secret("password")),
            error_text=solarwinds_error_text,
            base_url=api_base_url(settings),  # the SWIS port comes from the URL or the port field
        )

    def already_stored(self, ticket: TicketValues, cursor: Cursor) -> bool:
        """History ids are numbers ("10" < "9" as strings) and order the rows of one instant; the engine
        asks this of tickets only, so it matters for an event stream only if that changes."""
        if cursor.updated_at is None or ticket.updated_at != cursor.updated_at:
            return False
        mine, last = _integer(ticket.external_id), _integer(cursor.last_id)
        if mine is None or last is None:
            return ticket.external_id == cursor.last_id
        return mine <= last

    async def query(self, swql: str, parameters: Mapping[str, Any]) -> Any:
        """Send one SWQL query; a 403 without a SWIS message is the credentials, with one a missing right."""
        try:
            response = await self.http.request(
                "POST", QUERY_PATH, json_body={"query": swql, "parameters": dict(parameters)}
            )
        except PermissionDeniedError as exc:
            raise self._explain_403(exc) from exc
        return self.http.json_of(response, "POST", QUERY_PATH)

    def _explain_403(self, exc: PermissionDeniedError) -> AuthenticationError | PermissionDeniedError:
        if not exc.server_message:
            return AuthenticationError(
                self.name,
                method=exc.method,
                path=exc.path,
                status=exc.status,
                server_message="",
                hint="authentication failed: SWIS refused the user name or password; check both, and "
                "for a Windows account write DOMAIN\\user",
            )
        return PermissionDeniedError(
            self.name,
            method=exc.method,
            path=exc.path,
            status=exc.status,
            server_message=exc.server_message,
            hint="the Orion account may log in but not read alerts; give it alert viewing rights",
        )

    def results_of(self, body: Any) -> list[Mapping[str, Any]]:
        results = body.get("results") if isinstance(body, Mapping) else None
        if not isinstance(results, list) or not all(isinstance(row, Mapping) for row in results):
            raise BadResponseError(self.name, f"POST {QUERY_PATH} answered without a list of results")
        return results

    async def probe(self) -> None:
        """One history row: proves the address, TLS, the credentials and the right to read alerts."""
        self.results_of(await self.query(PROBE_QUERY, {}))

    def streams(self, since: Cursor | None, page_size: int | None) -> list[HttpStream[Any]]:
        top = max(1, min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE))
        return [_HistoryStream(self, since, top)]

    # --- normalising ----------------------------------------------------------------------------------

    def web_url(self) -> str:
        configured = _text(self.settings.option("web_url"))
        if configured:
            return configured.rstrip("/")
        parts = urlsplit(str(self.http.base_url))
        return f"https://{parts.hostname}"

    def normalise(self, row: Mapping[str, Any]) -> AlertEvent:
        """One history row as an alert event; ValueError with the reason when it cannot be one."""
        history_id = _integer(row.get("AlertHistoryID"))
        if history_id is None:
            raise ValueError("the history row has no AlertHistoryID")
        event_type = _integer(row.get("EventType"))
        if event_type not in EVENT_STATUS:
            raise ValueError(f"event type {row.get('EventType')!r} does not change an alert's state")
        stamp = parse_swis_time(row.get("TimeStamp"))
        if stamp is None:
            raise ValueError("the history row has no TimeStamp")
        object_id = _integer(row.get("AlertObjectID"))
        alert_id = _integer(row.get("AlertID"))
        if object_id is None:
            raise ValueError("the history row names no alert object")
        name = _text(row.get("AlertName")) or f"Orion alert {alert_id if alert_id is not None else '?'}"
        node = _text(row.get("RelatedNodeCaption"))
        entity = _text(row.get("EntityCaption"))
        status = EVENT_STATUS[event_type]
        entity_type = _text(row.get("EntityType"))
        account = _text(row.get("AccountID"))
        message = _text(row.get("Message")) or name
        if status is AlertStatus.ACKNOWLEDGED and account:
            message = f"Acknowledged by {account}: {message}"
        payload = dict(row)
        payload["Context"] = swis_context(row.get("Context"))
        return AlertEvent(
            external_id=str(history_id),
            source_system=SOURCE_SYSTEM,
            monitor_id=f"{alert_id if alert_id is not None else ''}:{object_id}",
            title=name,
            message=message,
            severity=solarwinds_severity(row.get("Severity")),
            status=status,
            occurred_at=stamp.moment,
            updated_at=stamp.moment,
            host=node or entity,
            service=entity if node and entity and entity != node else None,
            expression=_text(row.get("AlertDescription")),
            tags=tuple(
                tag
                for tag in (
                    f"entity:{entity_type}" if entity_type else None,
                    f"event:{_EVENT_NAMES[event_type]}",
                )
                if tag
            ),
            resolved_at=stamp.moment if status is AlertStatus.RESOLVED else None,
            firing=event_type == 0,  # reset, acknowledged and cleared rows change the state of one firing
            source_url=f"{self.web_url()}/Orion/NetPerfMon/ActiveAlertDetails.aspx?NetObject=AAT:{object_id}",
            raw_payload=payload,
        )


@dataclass(frozen=True, slots=True)
class _Keyset:
    """Where the next page starts: after the row at (``since``, ``after_id``); ``since`` is SWIS text."""

    since: str
    after_id: int


class _HistoryStream(HttpStream[_Keyset]):
    """Keyset pages of the alert history, oldest first. An incremental sync starts ``timestamp_precision``
    before its cursor, at any id (``after_id`` -1): the overlap is re-read and counted unchanged. A page
    shorter than ``TOP n`` is the last; SWIS says nothing else about what is left."""

    def __init__(self, connector: SolarWindsConnector, since: Cursor | None, top: int) -> None:
        super().__init__(connector, since)
        self.swis = connector
        self.top = top
        self.start: _Keyset | None = None
        if since is not None and since.updated_at is not None:
            self.start = _Keyset(swis_time_text(since.updated_at - SPEC.timestamp_precision), -1)

    def request(self, token: _Keyset | None) -> PageRequest:
        keyset = token or self.start
        if keyset is None:
            body: dict[str, Any] = {"query": history_query(self.top, keyset=False), "parameters": {}}
        else:
            body = {
                "query": history_query(self.top, keyset=True),
                "parameters": {"since": keyset.since, "after_id": keyset.after_id},
            }
        return PageRequest("POST", QUERY_PATH, json_body=body)

    async def send(self, request: PageRequest) -> httpx.Response:
        try:
            return await self.swis.http.request(request.method, request.path, json_body=request.json_body)
        except PermissionDeniedError as exc:
            raise self.swis._explain_403(exc) from exc

    def records(self, body: Any, request: PageRequest) -> Sequence[Mapping[str, Any]]:
        return self.swis.results_of(body)

    async def normalise(self, record: Mapping[str, Any]) -> AlertEvent:
        return self.swis.normalise(record)

    def record_id(self, record: Mapping[str, Any]) -> str | None:
        return _text(record.get("AlertHistoryID"))

    def next_page_token(self, page: StreamPage[_Keyset]) -> _Keyset | None:
        if len(page.records) < self.top:
            return None
        last = page.records[-1]
        history_id = _integer(last.get("AlertHistoryID"))
        try:
            stamp = parse_swis_time(last.get("TimeStamp"))
        except ValueError:
            stamp = None
        if history_id is None or stamp is None:
            raise BadResponseError(
                self.swis.name,
                f"POST {QUERY_PATH}: the page's last row has no AlertHistoryID or TimeStamp to go on from",
            )
        return _Keyset(stamp.text, history_id)
