"""Zabbix trigger events through the JSON-RPC API (``POST /api_jsonrpc.php``), Zabbix 5.0 to 7.x.

The API in brief (checked against Zabbix's own client, ``zabbix/python-zabbix-utils`` ``zabbix_utils/api.py``,
and the ``event.get`` / event object reference pages; see the report of issue 13):

- Every call is ``{"jsonrpc": "2.0", "method": ..., "params": ..., "id": n}`` sent with
  ``Content-Type: application/json-rpc``; every value in an answer is a *string* (``"clock": "1709366400"``,
  ``"severity": "4"``). Failures come with HTTP **200** as ``{"error": {"code", "message", "data"}}``: the
  body, not the status, decides. An expired or unknown session is such an error ("Not authorised." up to
  6.x, "Not authorized." later, "Session terminated, re-login, please."): it is an authentication error.
- ``apiinfo.version`` needs no auth and must be sent without it (the server refuses an ``auth`` on it). The
  version decides the rest, as zabbix-utils does: ``user.login`` takes ``username`` from 5.4 on and ``user``
  before; API tokens exist from 5.4; the session id or token goes in an ``Authorization: Bearer`` header
  from 6.4 on and in the body's ``auth`` field before (7.2 removed the body field altogether).
- A login session is released with ``user.logout`` in :meth:`ZabbixConnector.aclose`; an API token is not
  a session and is never logged out.

What a sync reads: ``event.get`` of trigger events (``source`` 0, ``object`` 0), problems and OK events
(``value`` [0, 1]), oldest first by ``eventid``. ``event.get`` has no paging of its own: it is keyset paging
on ``eventid_from`` (inclusive) with ``limit``. A page is full (``limit`` records) when more may follow.

- A problem event (value 1) fires its trigger; an OK event (value 0) resolves it: it gets the same
  fingerprint (monitor id = the trigger id ``objectid``, the host, the event name as title) and the status
  RESOLVED, which is how the deduplication (:mod:`core.monitoring.ingest`) resolves the alert. A problem
  whose ``r_eventid`` is set has recovered since: it is RESOLVED with the recovery's time, read from the
  same page or from one ``event.get`` by ``eventids`` of the page's missing recoveries. An OK event carries
  severity 0 in Zabbix: an alert first seen through its OK event is "info" (resolved at once).
- Severity: 5 disaster -> critical, 4 high -> high, 3 average and 2 warning -> warning, 1 information and
  0 not classified -> info (the mapping PagerDuty's and Grafana OnCall's Zabbix integrations use).
- The expression is the trigger's (``trigger.get`` by ``triggerids`` with ``expandExpression``, at most one
  call per page for the triggers not seen yet in the sync; an option, on by default).
- The host is the first of ``hosts`` (its technical ``host`` name, what a CMDB calls it); the service is
  the ``service`` tag, else the ``Application`` tag that 5.4's upgrade made of applications.

The cursor is (event ``clock``, ``eventid``). Event ids are numbers, so they are never compared as strings:
a sync starts at ``eventid_from`` = the cursor's id (re-reading that one event, which
:meth:`ZabbixConnector.already_stored` recognises) and each next page at the last id + 1.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors.base import (
    AuthMode,
    CheckResult,
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
    ConnectorError,
    HttpStatusError,
    PermissionDeniedError,
    RequestRejectedError,
)
from connectors.http import HttpClient, default_error_text
from connectors.secrets import register_secret
from core.monitoring.events import AlertEvent, Severity
from core.store.models import AlertStatus
from core.store.tickets import TicketValues

logger = logging.getLogger(__name__)

SOURCE_SYSTEM = "zabbix"
API_PATH = "/api_jsonrpc.php"
JSON_RPC = "application/json-rpc"
DEFAULT_LIMIT = 500
MAX_LIMIT = 10_000
MAX_CACHED_EXPRESSIONS = 50_000  # trigger expressions kept for one sync; past that the cache starts over

AUTH_TOKEN = "api_token"
AUTH_PASSWORD = "password"

# The versions where the API changed what this connector sends (as zabbix-utils decides it).
USERNAME_FIELD_SINCE = (5, 4)  # user.login {"username"}; before: {"user"}
TOKENS_SINCE = (5, 4)
BEARER_SINCE = (6, 4)  # Authorization: Bearer; before: the body's "auth"

# Zabbix trigger severity -> ours (see the module docstring).
SEVERITIES: dict[int, Severity] = {
    5: Severity.CRITICAL,  # disaster
    4: Severity.HIGH,  # high
    3: Severity.WARNING,  # average
    2: Severity.WARNING,  # warning
    1: Severity.INFO,  # information
    0: Severity.INFO,  # not classified
}
SEVERITY_NAMES = {0: "not classified", 1: "information", 2: "warning", 3: "average", 4: "high", 5: "disaster"}

EVENT_FIELDS = (
    "eventid",
    "source",
    "object",
    "objectid",
    "clock",
    "ns",
    "value",
    "acknowledged",
    "name",
    "severity",
    "r_eventid",
)

# What the server says in error.data when the session or token is not (or no longer) valid, and on a
# refused login: lower-cased fragments.
_AUTH_FAILURES = (
    "not authorised",
    "not authorized",
    "session terminated",
    "incorrect user name or password",
    "login name or password is incorrect",
    "api token expired",
)
_PERMISSION_FAILURES = ("no permissions", "you do not have permission")

SPEC = ConnectorSpec(
    type=SOURCE_SYSTEM,
    display_name="Zabbix",
    kind=ConnectorKind.MONITORING,
    auth_modes=(
        AuthMode(
            AUTH_TOKEN,
            "API token (Zabbix 5.4 or later)",
            "Created under User settings > API tokens; read access to the hosts' events is enough.",
        ),
        AuthMode(
            AUTH_PASSWORD,
            "User name and password",
            "Logs in with user.login; the session is logged out after each sync.",
        ),
    ),
    fields=(
        ConfigField("api_token", "API token", FieldType.SECRET, auth_modes=(AUTH_TOKEN,), page="auth"),
        ConfigField(
            "username",
            "User name",
            auth_modes=(AUTH_PASSWORD,),
            page="auth",
            help="A user whose role may read the monitored hosts (a Zabbix User role is enough).",
        ),
        ConfigField("password", "Password", FieldType.SECRET, auth_modes=(AUTH_PASSWORD,), page="auth"),
        ConfigField(
            "fetch_expressions",
            "Read trigger expressions",
            FieldType.BOOLEAN,
            required=False,
            default=True,
            help="One trigger.get per page of events for the triggers not seen yet in the sync: the "
            "expression (last(/host/key)>90) is kept searchable for matching and shown as it is.",
        ),
    ),
    timestamp_precision=timedelta(seconds=1),
    description="Problem and recovery events of Zabbix triggers (Zabbix 5.0 or later; the version is "
    "detected when the connection is tested: the address is the frontend's, e.g. "
    "https://zabbix.example.com/zabbix).",
    docs_url="https://www.zabbix.com/documentation/current/en/manual/api/reference/event/get",
)


# --------------------------------------------------------------------------------------------------------
# JSON-RPC shapes
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class ZabbixVersion:
    major: int
    minor: int
    patch: int = 0
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> ZabbixVersion:
        """``"7.0.5"`` (or ``"6.0.0rc1"``); ValueError when it is not a version."""
        parts = text.strip().split(".")
        if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
            raise ValueError(f"not a Zabbix version: {text!r}")
        patch_digits = "".join(c for c in (parts[2] if len(parts) > 2 else "0") if c.isdigit()) or "0"
        return cls(int(parts[0]), int(parts[1]), int(patch_digits), text.strip())

    def at_least(self, release: tuple[int, int]) -> bool:
        return (self.major, self.minor) >= release

    def __str__(self) -> str:
        return self.text or f"{self.major}.{self.minor}.{self.patch}"


def rpc_error_message(method: str, error: Any) -> str:
    """One line from a JSON-RPC error object: ``event.get: Invalid params. (-32602): No permissions...``."""
    if not isinstance(error, Mapping):
        return f"{method}: {error!r}"
    message = str(error.get("message") or "").strip()
    data = str(error.get("data") or "").strip()
    code = error.get("code")
    text = message + (f" ({code})" if code is not None else "")
    if data:
        text = f"{text}: {data}" if text else data
    return f"{method}: {text or 'an error without a message'}"


def zabbix_error_text(response: httpx.Response) -> str:
    """The JSON-RPC error of a non-2xx answer (a proxy's 5xx may still carry one), else the default."""
    try:
        body = response.json()
    except ValueError:
        return default_error_text(response)
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        error = body["error"]
        return " ".join(str(error.get(key) or "") for key in ("message", "data")).strip()
    return default_error_text(response)


def as_int(value: Any, field: str) -> int:
    """A Zabbix number (sent as a string); ValueError naming the field when it is not one."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise ValueError(f"{field} is not a number: {value!r}") from None


def epoch(value: Any, field: str = "clock") -> datetime:
    return datetime.fromtimestamp(as_int(value, field), UTC)


def zabbix_severity(value: Any) -> Severity:
    """Our severity for a Zabbix severity 0..5 (string or number); ValueError outside that range."""
    number = as_int(value, "severity")
    if number not in SEVERITIES:
        raise ValueError(f"severity {number} is not a Zabbix severity (0-5)")
    return SEVERITIES[number]


def _tag_pairs(tags: Any) -> list[tuple[str, str]]:
    if not isinstance(tags, list):
        return []
    return [
        (str(tag.get("tag") or ""), str(tag.get("value") or ""))
        for tag in tags
        if isinstance(tag, Mapping) and tag.get("tag")
    ]


# --------------------------------------------------------------------------------------------------------
# The connector
# --------------------------------------------------------------------------------------------------------


class ZabbixConnector(Connector):
    spec = SPEC

    def __init__(self, settings: ConnectorSettings, http: HttpClient) -> None:
        super().__init__(settings, http)
        if settings.auth_mode not in (AUTH_TOKEN, AUTH_PASSWORD):
            raise ConfigurationError(settings.name, f"unknown auth mode {settings.auth_mode!r}")
        self.version: ZabbixVersion | None = None
        self._session: str | None = None  # a user.login session id (None with a token)
        self._request_id = 0
        self.fetch_expressions = settings.option("fetch_expressions", True) in (True, "true", "1", 1)

    @classmethod
    def client_options(cls, settings: ConnectorSettings) -> ClientOptions:
        """JSON-RPC's media type and the error reader; auth is per call (header or body, by version)."""
        return ClientOptions(
            headers={"Content-Type": JSON_RPC, "Accept": "application/json"}, error_text=zabbix_error_text
        )

    def already_stored(self, ticket: TicketValues, cursor: Cursor) -> bool:
        """Only the event that set the cursor: event ids are numbers ("10" < "9" as strings)."""
        return (
            cursor.updated_at is not None
            and ticket.updated_at == cursor.updated_at
            and ticket.external_id == cursor.last_id
        )

    # --- JSON-RPC -------------------------------------------------------------------------------------

    async def call(self, method: str, params: Any, *, auth: bool = True) -> Any:
        """One JSON-RPC call; its ``result`` (see :meth:`exchange`)."""
        _response, result = await self.exchange(method, params, auth=auth)
        return result

    async def exchange(self, method: str, params: Any, *, auth: bool = True) -> tuple[httpx.Response, Any]:
        """One JSON-RPC call: the answer and its ``result``. An ``error`` in the answer (HTTP 200) raises,
        named by the method. With a login session, an answer saying the session ended logs in again once
        and repeats the call."""
        try:
            return await self._exchange_once(method, params, auth=auth)
        except AuthenticationError:
            if not (auth and self.settings.auth_mode == AUTH_PASSWORD and self._session is not None):
                raise
            logger.info("%s: the Zabbix session ended; logging in again", self.name)
            self._session = None
            return await self._exchange_once(method, params, auth=auth)

    async def _exchange_once(self, method: str, params: Any, *, auth: bool) -> tuple[httpx.Response, Any]:
        response = await self.post(method, params, auth=auth)
        return response, self.result_of(method, self.http.json_of(response, "POST", API_PATH))

    async def _call_once(self, method: str, params: Any, *, auth: bool) -> Any:
        _response, result = await self._exchange_once(method, params, auth=auth)
        return result

    async def post(self, method: str, params: Any, *, auth: bool) -> httpx.Response:
        """Send one call; the answer unread. ``auth``: with the token or session, as the version wants it."""
        self._request_id += 1
        body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params, "id": self._request_id}
        headers: dict[str, str] = {}
        if auth:
            secret = await self._credential()
            version = await self.server_version()
            if version.at_least(BEARER_SINCE):
                headers["Authorization"] = f"Bearer {secret}"
            else:
                body["auth"] = secret
        return await self.http.request("POST", API_PATH, json_body=body, headers=headers)

    def result_of(self, method: str, body: Any) -> Any:
        """The ``result`` of a decoded answer; its ``error`` as the matching connector error."""
        if not isinstance(body, Mapping):
            raise BadResponseError(self.name, f"POST {API_PATH} ({method}) answered something not JSON-RPC")
        if "error" in body:
            raise self._rpc_error(method, body["error"])
        if "result" not in body:
            raise BadResponseError(
                self.name, f"POST {API_PATH} ({method}) answered neither a result nor an error"
            )
        return body["result"]

    def _rpc_error(self, method: str, error: Any) -> HttpStatusError:
        message = rpc_error_message(method, error)
        lowered = message.casefold()
        error_type: type[HttpStatusError] = RequestRejectedError
        hint = ""
        if any(fragment in lowered for fragment in _AUTH_FAILURES):
            error_type = AuthenticationError
            hint = (
                "authentication failed: the API token was refused or has expired"
                if self.settings.auth_mode == AUTH_TOKEN
                else "authentication failed: Zabbix refused the user name or password, or ended the session"
            )
        elif any(fragment in lowered for fragment in _PERMISSION_FAILURES):
            error_type = PermissionDeniedError
        return error_type(
            self.name, method="POST", path=API_PATH, status=200, server_message=message, hint=hint
        )

    # --- version and auth ---------------------------------------------------------------------------

    async def server_version(self) -> ZabbixVersion:
        """``apiinfo.version``, asked once, always without auth (the server refuses auth on it)."""
        if self.version is None:
            text = await self._call_once("apiinfo.version", [], auth=False)
            try:
                self.version = ZabbixVersion.parse(str(text))
            except ValueError as exc:
                raise BadResponseError(
                    self.name, f"POST {API_PATH} (apiinfo.version) answered {str(text)[:40]!r}: {exc}"
                ) from None
        return self.version

    async def _credential(self) -> str:
        if self.settings.auth_mode == AUTH_TOKEN:
            version = await self.server_version()
            if not version.at_least(TOKENS_SINCE):
                raise ConfigurationError(
                    self.name,
                    f"this server runs Zabbix {version}, which has no API tokens (5.4 or later has): "
                    "use a user name and password",
                )
            return self.settings.secret("api_token")
        if self._session is None:
            self._session = await self._login()
        return self._session

    async def _login(self) -> str:
        username = str(self.settings.option("username", "")).strip()
        if not username:
            raise ConfigurationError(self.name, "the Zabbix user name is not set")
        version = await self.server_version()
        name_field = "username" if version.at_least(USERNAME_FIELD_SINCE) else "user"
        params = {name_field: username, "password": self.settings.secret("password")}
        session = await self._call_once("user.login", params, auth=False)
        if not isinstance(session, str) or not session.strip():
            raise BadResponseError(self.name, f"POST {API_PATH} (user.login) did not answer a session id")
        register_secret(session)  # masked if a server or a traceback ever echoes it
        return session

    async def aclose(self) -> None:
        """Log out a user.login session (a token is not one); a failed logout is logged, it times out."""
        if self._session is None:
            return
        try:
            await self._call_once("user.logout", [], auth=True)
        except ConnectorError as exc:
            logger.info("%s: logout failed, the Zabbix session will time out on its own: %s", self.name, exc)
        finally:
            self._session = None

    # --- the contract ---------------------------------------------------------------------------------

    async def probe(self) -> None:
        """The version (no auth), the login, and one event read: reachability, auth and read permission."""
        await self.server_version()
        events = await self.call("event.get", self.event_params(limit=1, output=["eventid"]))
        if not isinstance(events, list):
            raise BadResponseError(self.name, f"POST {API_PATH} (event.get) answered no list of events")

    async def check(self) -> CheckResult:
        """As every connector's, with the version found: the wizard shows it."""
        result = await super().check()
        if result.ok and self.version is not None:
            return replace(
                result, message=f"{self.name}: connected to Zabbix {self.version}, allowed to read"
            )
        return result

    def streams(self, since: Cursor | None, page_size: int | None) -> list[HttpStream[Any]]:
        return [_EventsStream(self, since, max(1, min(page_size or DEFAULT_LIMIT, MAX_LIMIT)))]

    # --- helpers --------------------------------------------------------------------------------------

    def event_params(
        self,
        *,
        limit: int,
        eventid_from: str | None = None,
        time_from: int | None = None,
        output: Sequence[str] = EVENT_FIELDS,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "output": list(output),
            "source": 0,
            "object": 0,
            "value": [0, 1],
            "sortfield": ["eventid"],
            "sortorder": "ASC",
            "limit": limit,
        }
        if output == EVENT_FIELDS:
            params["selectTags"] = "extend"
            params["selectHosts"] = ["host", "name"]
        if eventid_from is not None:
            params["eventid_from"] = eventid_from
        if time_from is not None:
            params["time_from"] = time_from
        return params

    def source_url(self, event: Mapping[str, Any]) -> str:
        base = str(self.http.base_url).rstrip("/")
        return f"{base}/tr_events.php?triggerid={event.get('objectid')}&eventid={event.get('eventid')}"

    def normalise(
        self, event: Mapping[str, Any], recovered_at: datetime | None, expression: str | None = None
    ) -> AlertEvent:
        """One trigger event as an alert event; ValueError with the reason when it cannot be one.

        ``recovered_at``: when a problem with ``r_eventid`` recovered (None: not known, or not recovered);
        ``expression``: its trigger's, when read.
        """
        event_id = str(event.get("eventid") or "").strip()
        if not event_id.isdigit():
            raise ValueError(f"the event id is not a number: {event.get('eventid')!r}")
        trigger_id = str(event.get("objectid") or "").strip()
        if not trigger_id:
            raise ValueError("the event names no trigger (objectid)")
        clock = epoch(event.get("clock"))
        value = as_int(event.get("value"), "value")
        if value not in (0, 1):
            raise ValueError(f"value {value} is neither OK (0) nor problem (1)")
        severity_number = as_int(event.get("severity", "0"), "severity")
        title = str(event.get("name") or "").strip() or f"Trigger {trigger_id}"
        hosts = [h for h in event.get("hosts") or () if isinstance(h, Mapping)]
        first_host = hosts[0] if hosts else {}
        host = str(first_host.get("host") or first_host.get("name") or "").strip() or None
        tag_pairs = _tag_pairs(event.get("tags"))
        tag_values = {tag.casefold(): value for tag, value in tag_pairs}
        service = tag_values.get("service") or tag_values.get("application") or None
        if value == 0:  # an OK event: the recovery itself
            status, resolved_at = AlertStatus.RESOLVED, clock
        elif _recovery_id(event) is not None and recovered_at is not None:
            status, resolved_at = AlertStatus.RESOLVED, recovered_at
        elif as_int(event.get("acknowledged", "0"), "acknowledged") == 1:
            status, resolved_at = AlertStatus.ACKNOWLEDGED, None
        else:
            status, resolved_at = AlertStatus.TRIGGERED, None
        state = "OK" if value == 0 else "PROBLEM"
        visible = str(first_host.get("name") or "").strip()
        lines = [f"{state}: {title}", f"Severity: {SEVERITY_NAMES.get(severity_number, severity_number)}"]
        if host:
            lines.append(f"Host: {visible or host}" + (f" ({host})" if visible and visible != host else ""))
        if tag_pairs:
            lines.append("Tags: " + ", ".join(f"{t}:{v}" if v else t for t, v in tag_pairs))
        return AlertEvent(
            external_id=event_id,
            source_system=SOURCE_SYSTEM,
            monitor_id=trigger_id,
            title=title,
            message="\n".join(lines),
            severity=zabbix_severity(severity_number),
            status=status,
            occurred_at=clock,
            updated_at=clock,
            host=host,
            service=service,
            expression=expression,
            tags=tuple(f"{t}:{v}" if v else t for t, v in tag_pairs),
            resolved_at=resolved_at,
            firing=value == 1,  # an OK event is the recovery, not one more firing
            source_url=self.source_url(event),
            raw_payload=dict(event),
        )

    async def recovery_times(self, event_ids: Sequence[str]) -> dict[str, datetime]:
        """The clocks of the given (recovery) events: one ``event.get`` by ``eventids``."""
        params = {"output": ["eventid", "clock"], "eventids": list(event_ids), "limit": len(event_ids)}
        times: dict[str, datetime] = {}
        for event in self._list_of(await self.call("event.get", params), "event.get"):
            try:
                times[str(event.get("eventid"))] = epoch(event.get("clock"))
            except ValueError:
                continue  # the problem then stays as it was read; its OK event resolves it
        return times

    async def trigger_expressions(self, trigger_ids: Sequence[str]) -> dict[str, str]:
        """The expressions of the given triggers (macros and functions expanded, as the frontend shows
        them), with the recovery expression when there is one: one ``trigger.get`` by ``triggerids``.
        A trigger deleted since (or hidden from this user) is simply absent."""
        params = {
            "output": ["triggerid", "expression", "recovery_expression"],
            "triggerids": list(trigger_ids),
            "expandExpression": True,
            "limit": len(trigger_ids),
        }
        expressions: dict[str, str] = {}
        for trigger in self._list_of(await self.call("trigger.get", params), "trigger.get"):
            expression = str(trigger.get("expression") or "").strip()
            recovery = str(trigger.get("recovery_expression") or "").strip()
            if recovery:
                expression = f"{expression}\nRecovery: {recovery}"
            if expression:
                expressions[str(trigger.get("triggerid"))] = expression
        return expressions

    def _list_of(self, result: Any, method: str) -> list[Mapping[str, Any]]:
        if not isinstance(result, list):
            raise BadResponseError(self.name, f"POST {API_PATH} ({method}) answered no list")
        return [item for item in result if isinstance(item, Mapping)]


def _recovery_id(event: Mapping[str, Any]) -> str | None:
    """The id of the OK event that ended this problem; None while it is open (``"0"``)."""
    recovery_id = str(event.get("r_eventid") or "0").strip()
    return recovery_id if recovery_id.isdigit() and recovery_id != "0" else None


class _EventsStream(HttpStream[str]):
    """Trigger events by ``eventid``, keyset-paged: each page from the last id read + 1 (the token)."""

    def __init__(self, connector: ZabbixConnector, since: Cursor | None, limit: int) -> None:
        super().__init__(connector, since)
        self.zabbix = connector
        self.limit = limit
        self.page_events: dict[str, Mapping[str, Any]] = {}
        self.recovered: dict[str, datetime] = {}  # recovery event id -> its time, for this page
        self.expressions: dict[str, str | None] = {}  # trigger id -> its expression (None: not readable)
        self._page_prepared = False
        self._result: Any = None

    def request(self, token: str | None) -> PageRequest:
        since = self.since
        if token is not None:
            params = self.zabbix.event_params(limit=self.limit, eventid_from=token)
        elif since is not None and since.last_id and since.last_id.isdigit():
            params = self.zabbix.event_params(limit=self.limit, eventid_from=since.last_id)
        elif since is not None and since.updated_at is not None:
            start = since.updated_at - SPEC.timestamp_precision
            params = self.zabbix.event_params(limit=self.limit, time_from=int(start.timestamp()))
        else:
            params = self.zabbix.event_params(limit=self.limit)
        return PageRequest("POST", API_PATH, json_body={"method": "event.get", "params": params})

    async def send(self, request: PageRequest) -> httpx.Response:
        """The call with auth; its checked result kept for :meth:`decode` (the error check reads the body)."""
        response, self._result = await self.zabbix.exchange("event.get", request.json_body["params"])
        return response

    def decode(self, response: httpx.Response, request: PageRequest) -> Any:
        return self._result

    def records(self, body: Any, request: PageRequest) -> Sequence[Mapping[str, Any]]:
        if not isinstance(body, list) or not all(isinstance(event, Mapping) for event in body):
            raise BadResponseError(
                self.zabbix.name, f"POST {API_PATH} (event.get) answered no list of events"
            )
        self.page_events = {str(event.get("eventid")): event for event in body}
        self.recovered = {}  # a problem is read once: its recovery matters on its own page only
        self._page_prepared = False
        return body

    async def normalise(self, record: Mapping[str, Any]) -> AlertEvent:
        if not self._page_prepared:
            await self._prepare_page()
        recovery_id = _recovery_id(record)
        recovered_at = self.recovered.get(recovery_id) if recovery_id else None
        expression = self.expressions.get(str(record.get("objectid") or ""))
        return self.zabbix.normalise(record, recovered_at, expression)

    async def _prepare_page(self) -> None:
        """What the page's events need besides themselves, at most one request each: the times of the
        recoveries the page does not hold, and the expressions of triggers not seen yet in this sync."""
        self._page_prepared = True
        missing: set[str] = set()
        for event in self.page_events.values():
            recovery_id = _recovery_id(event)
            if recovery_id is None or recovery_id in self.recovered:
                continue
            in_page = self.page_events.get(recovery_id)
            if in_page is None:
                missing.add(recovery_id)
                continue
            try:
                self.recovered[recovery_id] = epoch(in_page.get("clock"))
            except ValueError:
                continue  # that OK event is reported as a failure itself; the problem's OK event is unknown
        if missing:
            self.recovered.update(await self.zabbix.recovery_times(sorted(missing, key=int)))
        if self.zabbix.fetch_expressions:
            unseen = {
                trigger_id
                for event in self.page_events.values()
                if (trigger_id := str(event.get("objectid") or "")).isdigit()
                and trigger_id not in self.expressions
            }
            if unseen:
                if len(self.expressions) > MAX_CACHED_EXPRESSIONS:
                    self.expressions.clear()
                found = await self.zabbix.trigger_expressions(sorted(unseen, key=int))
                self.expressions.update({trigger_id: found.get(trigger_id) for trigger_id in unseen})

    def record_id(self, record: Mapping[str, Any]) -> str | None:
        event_id = record.get("eventid")
        return str(event_id) if event_id is not None else None

    def next_page_token(self, page: StreamPage[str]) -> str | None:
        """Full page: more may follow, from the last id + 1 (numerically); a short page is the last."""
        if len(page.records) < self.limit:
            return None
        last = str(page.records[-1].get("eventid") or "")
        if not last.isdigit():
            raise BadResponseError(
                self.zabbix.name, f"POST {API_PATH} (event.get) ended a page with the event id {last!r}"
            )
        return str(int(last) + 1)
