"""A local fake Zabbix frontend API (``POST /api_jsonrpc.php``, JSON-RPC 2.0) answering in the real shapes.

Per version, as the real servers differ (zabbix-utils' ``api.py`` and the API reference):

- ``apiinfo.version`` and ``user.login`` take no auth; either sent with a body ``auth`` or a Bearer header is
  refused ("must be called without the "auth" parameter").
- ``user.login`` takes ``username`` from 5.4 and ``user`` before; the other spelling is an unexpected
  parameter. API tokens exist from 5.4.
- Before 6.4 only the body ``auth`` authenticates (a Bearer header is ignored); 6.4 to 7.0 take either;
  from 7.2 only the header, and a body ``auth`` is an invalid request.
- Every failure is HTTP 200 with ``{"error": {"code", "message", "data"}}``; every value is a string.

``event.get`` honours ``source``/``object``/``value``, ``eventid_from``, ``time_from``, ``eventids``,
``sortfield: eventid`` ascending, ``limit``, ``output``, ``selectHosts`` and ``selectTags``; there is no
"more" flag (a full page means more may follow). Events are the suite's tickets: ``external_id`` is the
event id (numbers crossing 99 -> 100, so a string compare of ids would go wrong), ``updated_at`` its clock,
``extra`` the trigger id, host, severity, value, ``r_eventid`` and tags.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from connectors.base import ConnectorSettings
from connectors.testing.fake_system import FakeMonitoringSystem, FakeTicket

USERNAME = "Admin"
PASSWORD = "zabbix-pass-2468"
API_TOKEN = "f3a1c5e7b9d2f4a6c8e0b1d3f5a7c9e2b4d6f8a0c2e4b6d8f0a1c3e5b7d9f2a4"
PATH = "/api_jsonrpc.php"

TRIGGER_NAMES = (
    "High CPU utilization (over 90% for 5m)",
    "Filesystem /var: Space is critically low (used > 95%)",
    "MySQL: Service is down",
    "Interface eth0: Link down",
    "Zabbix agent is not available (for 3m)",
    "Nginx: Failed to fetch stub status page",
    "Memory: High memory utilization (>90% for 5m)",
)
SERVICES = ("web", "database", "storage", "network")


def event_id(number: int) -> str:
    """Event ids of the suite's numbered events: 97, 104, ..., crossing from two digits to three."""
    return str(90 + 7 * number)


def _version_tuple(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


class FakeZabbix(FakeMonitoringSystem):
    connector_type: ClassVar[str] = "zabbix"
    base_url: str = "https://zabbix.fake.example.com"
    records_are_immutable: ClassVar[bool] = True

    def __init__(self, version: str = "7.0.5", auth_mode: str = "password") -> None:
        super().__init__()
        self.page_size = 10_000
        self.version = version
        self.auth_mode = auth_mode
        self.sessions: set[str] = set()
        self.terminated: set[str] = set()
        self.logins = 0
        self.login_params: list[dict[str, Any]] = []
        self.logouts: list[str] = []
        self.calls: list[dict[str, Any]] = []  # every decoded JSON-RPC request, in order
        self.error_in: dict[str, tuple[int, str, str]] = {}  # method -> the error it answers
        self.deleted_triggers: set[str] = set()  # their events stay, trigger.get no longer finds them

    @property
    def api_path(self) -> str:
        """Where the API answers: below the frontend's own path (``/zabbix/api_jsonrpc.php``)."""
        return httpx.URL(self.base_url).path.rstrip("/") + PATH

    @property
    def release(self) -> tuple[int, int]:
        return _version_tuple(self.version)

    # --- what tests call ---------------------------------------------------------------------------------

    def settings(
        self, *, good_credentials: bool = True, auth_mode: str | None = None, **options: Any
    ) -> ConnectorSettings:
        mode = auth_mode or self.auth_mode
        if mode == "api_token":
            token = API_TOKEN if good_credentials else "0" * 64
            return ConnectorSettings(
                f"Zabbix {self.version}", self.base_url, mode, options, {"api_token": token}
            )
        password = PASSWORD if good_credentials else "wrong-password"
        return ConnectorSettings(
            f"Zabbix {self.version}",
            self.base_url,
            mode,
            {"username": USERNAME, **options},
            {"password": password},
        )

    def new_ticket(self, number: int, updated_at: datetime) -> FakeTicket:
        """A problem event of its own trigger (a distinct alert), on one of five hosts."""
        host = f"srv-{number % 5:02d}"
        return FakeTicket(
            external_id=event_id(number),
            title=f"{TRIGGER_NAMES[number % len(TRIGGER_NAMES)]} on {host}",
            description="",
            updated_at=updated_at.replace(microsecond=0),
            created_at=updated_at.replace(microsecond=0),
            extra={
                "objectid": str(20_000 + number),
                "host": host,
                "host_name": f"Server {host.upper()}",
                "hostid": str(10_080 + number % 5),
                "severity": str(number % 6),
                "value": "1",
                "r_eventid": "0",
                "acknowledged": "0",
                "tags": [
                    {"tag": "service", "value": SERVICES[number % len(SERVICES)]},
                    {"tag": "scope", "value": "availability"},
                ],
            },
        )

    def event(self, external_id: str, at: datetime, like: FakeTicket, **changes: Any) -> FakeTicket:
        """A new event of ``like``'s trigger and host, stored."""
        extra = {**like.extra, "r_eventid": "0", "acknowledged": "0", **changes}
        record = FakeTicket(
            external_id, like.title, "", at.replace(microsecond=0), at.replace(microsecond=0), extra=extra
        )
        self.add_ticket(record)
        return record

    def repeat(self, ticket: FakeTicket, number: int, at: datetime) -> FakeTicket:
        return self.event(event_id(number), at, ticket, value="1")

    def recover(self, ticket: FakeTicket, at: datetime) -> None:
        """As Zabbix does: an OK event (value 0, severity 0) of the trigger, and the problem's
        ``r_eventid`` pointing at it."""
        ok = self.event(self.next_id(), at, ticket, value="0", severity="0")
        ticket.extra["r_eventid"] = ok.external_id

    def next_id(self) -> str:
        return str(max((int(i) for i in self.tickets), default=0) + 1)

    def expire_sessions(self) -> None:
        """Sessions time out on the server whatever the client does."""
        self.terminated |= self.sessions
        self.sessions.clear()

    def answer_error(self, method: str, code: int, message: str, data: str) -> None:
        """Every later call of ``method`` answers this error (HTTP 200)."""
        self.error_in[method] = (code, message, data)

    # --- what the suite asks -------------------------------------------------------------------------

    @staticmethod
    def rpc_of(request: httpx.Request) -> dict[str, Any] | None:
        try:
            body = json.loads(request.content or b"null")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def is_ticket_query(self, request: httpx.Request) -> bool:
        """An event listing (not the version, a login, or a look-up of recovery events by id)."""
        body = self.rpc_of(request)
        if request.method != "POST" or not request.url.path.endswith(PATH) or body is None:
            return False
        params = body.get("params")
        return body.get("method") == "event.get" and isinstance(params, dict) and "eventids" not in params

    def query_since(self, request: httpx.Request) -> datetime | None:
        """The time of the event the listing starts from (``eventid_from``, or ``time_from``).

        For an id that no event has: the first event after it, else the last before it (the request asks
        for nothing older than that)."""
        body = self.rpc_of(request) or {}
        params = body.get("params") or {}
        if "time_from" in params:
            return datetime.fromtimestamp(int(params["time_from"]), UTC)
        if "eventid_from" not in params:
            return None
        start = int(params["eventid_from"])
        ordered = sorted(self.tickets.values(), key=lambda t: int(t.external_id))
        after = [t for t in ordered if int(t.external_id) >= start]
        if after:
            return after[0].updated_at
        before = [t for t in ordered if int(t.external_id) < start]
        return before[-1].updated_at if before else None

    # --- the API -------------------------------------------------------------------------------------

    def error_response(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """A non-200 (a proxy's 429 or 5xx in front of the frontend), in JSON-RPC's error shape."""
        body = {
            "jsonrpc": "2.0",
            "error": {"code": -32500, "message": "Application error.", "data": message},
            "id": None,
        }
        return httpx.Response(status, json=body, headers=dict(headers or {}))

    def rpc_error(self, request_id: Any, code: int, message: str, data: str) -> httpx.Response:
        body = {"jsonrpc": "2.0", "error": {"code": code, "message": message, "data": data}, "id": request_id}
        return httpx.Response(200, json=body)

    def route(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST" or request.url.path != self.api_path:
            return self.not_understood(request)
        if "json" not in request.headers.get("Content-Type", ""):
            return self.rpc_error(
                None,
                -32700,
                "Parse error.",
                "Invalid JSON. An error occurred on the server while parsing the JSON text.",
            )
        body = self.rpc_of(request)
        if body is None or body.get("jsonrpc") != "2.0" or "method" not in body or "id" not in body:
            return self.not_understood(request)
        self.calls.append(body)
        method, request_id = str(body["method"]), body["id"]
        if method in self.error_in:
            return self.rpc_error(request_id, *self.error_in[method])
        bearer = request.headers.get("Authorization", "")
        header_credential = bearer.removeprefix("Bearer ") if bearer.startswith("Bearer ") else None
        body_credential = body.get("auth")
        if "auth" in body and self.release >= (7, 2):
            return self.rpc_error(
                request_id, -32600, "Invalid request.", 'Invalid parameter "/": unexpected parameter "auth".'
            )
        params = body.get("params")
        if method in ("apiinfo.version", "user.login"):
            if body_credential is not None or header_credential is not None:
                return self.rpc_error(
                    request_id,
                    -32602,
                    "Invalid params.",
                    f'The "{method}" method must be called without the "auth" parameter.',
                )
            if method == "apiinfo.version":
                return self.result(request_id, self.version)
            return self._login(request_id, params)
        credential = self._credential(header_credential, body_credential)
        if credential in self.terminated:
            return self.rpc_error(
                request_id, -32602, "Invalid params.", "Session terminated, re-login, please."
            )
        if credential is None or not self._valid(credential):
            data = "Not authorised." if self.release < (6, 0) else "Not authorized."
            return self.rpc_error(request_id, -32602, "Invalid params.", data)
        if method == "user.logout":
            self.sessions.discard(credential)
            self.logouts.append(credential)
            return self.result(request_id, True)
        if method == "event.get" and isinstance(params, dict):
            return self._events(request_id, params)
        if method == "trigger.get" and isinstance(params, dict):
            return self._triggers(request_id, params)
        return self.not_understood(request)

    def result(self, request_id: Any, value: Any) -> httpx.Response:
        return httpx.Response(200, json={"jsonrpc": "2.0", "result": value, "id": request_id})

    def _credential(self, header: str | None, body: Any) -> str | None:
        if self.release < (6, 4):
            return body if isinstance(body, str) else None  # the header means nothing yet
        if header is not None:
            return header
        return body if isinstance(body, str) else None

    def _valid(self, credential: str) -> bool:
        if credential in self.sessions:
            return True
        return credential == API_TOKEN and self.release >= (5, 4)

    def _login(self, request_id: Any, params: Any) -> httpx.Response:
        name_field, other = ("username", "user") if self.release >= (5, 4) else ("user", "username")
        if not isinstance(params, dict) or other in params:
            return self.rpc_error(
                request_id,
                -32602,
                "Invalid params.",
                f'Invalid parameter "/": unexpected parameter "{other}".',
            )
        self.login_params.append(dict(params))
        if params.get(name_field) != USERNAME or params.get("password") != PASSWORD:
            return self.rpc_error(
                request_id,
                -32602,
                "Invalid params.",
                "Incorrect user name or password or account is temporarily blocked.",
            )
        self.logins += 1
        session = f"{self.logins:04d}5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b"
        self.sessions.add(session)
        return self.result(request_id, session)

    def _events(self, request_id: Any, params: dict[str, Any]) -> httpx.Response:
        if params.get("source", 0) != 0 or params.get("object", 0) != 0:
            return self.rpc_error(
                request_id, -32602, "Invalid params.", "the fake serves trigger events only"
            )
        ordered = sorted(self.tickets.values(), key=lambda t: int(t.external_id))
        if "eventids" in params:
            wanted = {str(i) for i in params["eventids"]}
            selected = [t for t in ordered if t.external_id in wanted]
        else:
            if params.get("sortfield") not in (["eventid"], "eventid") or params.get("sortorder") != "ASC":
                return self.rpc_error(
                    request_id, -32602, "Invalid params.", "the fake sorts by eventid ascending only"
                )
            values = {str(v) for v in params.get("value", [0, 1])}
            selected = [t for t in ordered if t.extra["value"] in values]
            if self.misbehaviour is None or not self.misbehaviour.ignores_filter:
                if "eventid_from" in params:
                    selected = [t for t in selected if int(t.external_id) >= int(params["eventid_from"])]
                if "time_from" in params:
                    selected = [t for t in selected if t.updated_at.timestamp() >= int(params["time_from"])]
        limit = int(params.get("limit", len(selected)))
        rows = [self.render(t, params) for t in selected[: min(limit, self.page_size)]]
        return self.result(request_id, rows)

    def _triggers(self, request_id: Any, params: dict[str, Any]) -> httpx.Response:
        """The triggers of the stored events, by ``triggerids``; ``expandExpression`` shows host/key
        references instead of the function ids ({13095}) the database stores."""
        wanted = {str(i) for i in params.get("triggerids", [])}
        triggers: dict[str, dict[str, str]] = {}
        for record in self.tickets.values():
            trigger_id = record.extra["objectid"]
            if trigger_id in wanted and trigger_id not in self.deleted_triggers:
                expression = record.extra.get(
                    "expression", f"last(/{record.extra['host']}/system.cpu.util)>90"
                )
                if not params.get("expandExpression"):
                    expression = "{13095}>90"
                triggers[trigger_id] = {
                    "triggerid": trigger_id,
                    "expression": expression,
                    "recovery_expression": record.extra.get("recovery_expression", ""),
                    "description": record.title,
                }
        output = params.get("output", "extend")
        rows = [t if output == "extend" else {k: t[k] for k in output if k in t} for t in triggers.values()]
        return self.result(request_id, rows)

    def render(self, record: FakeTicket, params: Mapping[str, Any]) -> dict[str, Any]:
        """One event as event.get answers it: every value a string."""
        extra = record.extra
        full = {
            "eventid": record.external_id,
            "source": "0",
            "object": "0",
            "objectid": extra["objectid"],
            "clock": str(int(record.updated_at.timestamp())),
            "ns": "250000000",
            "r_eventid": extra["r_eventid"],
            "r_ns": "0",
            "c_eventid": "0",
            "correlationid": "0",
            "userid": "0",
            "name": record.title,
            "acknowledged": extra["acknowledged"],
            "severity": extra["severity"],
            "value": extra["value"],
            "suppressed": "0",
            "opdata": "",
        }
        output = params.get("output", "extend")
        row = dict(full) if output == "extend" else {k: full[k] for k in output if k in full}
        if "selectHosts" in params:
            host = {"hostid": extra["hostid"], "host": extra["host"], "name": extra["host_name"]}
            fields = params["selectHosts"]
            row["hosts"] = [
                host if fields == "extend" else {"hostid": host["hostid"], **{k: host[k] for k in fields}}
            ]
        if "selectTags" in params:
            row["tags"] = [dict(tag) for tag in extra.get("tags", [])]
        return row
