"""A local ServiceNow instance: the Table API and the OAuth token endpoint, in the real shapes.

What it answers like the real thing (see ``connectors/servicenow.py`` for the sources):

- ``GET /api/now/table/<table>`` (also ``/api/now/v2/table/...``) with basic auth or an OAuth bearer token;
  ``sysparm_query`` with ``field>=``/``>``/``<``/``<=``/``=``/``!=``/``IN``/``LIKE`` terms, ``^OR``,
  ``ORDERBY``/``ORDERBYDESC``, dates as ``javascript:gs.dateGenerate('d','t')`` (read in the account's
  time zone) or as a plain ``yyyy-MM-dd HH:mm:ss`` (UTC); ``sysparm_limit`` (capped at ``page_size``),
  ``sysparm_offset``, ``sysparm_fields``, ``sysparm_display_value`` (false/true/all),
  ``sysparm_exclude_reference_link``; ``Link`` with first/prev/next/last exactly as ServiceNow writes it
  (no spaces, unencoded commas, the first page's ``prev`` at a negative offset, no ``next`` on the last
  page) and ``X-Total-Count``.
- ``POST /oauth_token.do`` with the password and refresh_token grants; access tokens expire on the fake's
  clock (:meth:`FakeServiceNow.advance`).
- Errors in ServiceNow's body shape; an unknown table is a 400 ``Invalid table``; a table the account
  may not read is a 403; 429 carries ``Retry-After`` and ``X-RateLimit-*``.
- Writes (issue 13): ``POST /api/now/table/<table>`` inserts a record (201, ``{"result": {...}}``, a new
  ``INC`` number, ``correlation_id`` kept and queryable), ``PATCH /api/now/table/<table>/<sys_id>`` with
  ``work_notes`` journals a note (kept in ``work_notes``); ``sys_user_has_role`` answers the account's
  ``roles`` (or 403 when ``roles_readable`` is off); ``cmdb_ci`` finds CIs by ``name``. ``write_denied``
  makes every write a 403 "ACL Exception Insert/Update Failed", as an account without itil gets;
  ``lose_next_write_answer`` carries out the next write and then drops the connection.

Like the real server it silently ignores a parameter without the ``sysparm_`` prefix, an unknown
``sysparm_`` parameter and a query term on an unknown field -- but it records each in ``unexpected`` (or
``ignored_query_terms``), so a test fails where production would quietly sync the wrong records.

For the 20,000-ticket benchmark the table is kept sorted by (sys_updated_on, sys_id) and a page is found
by bisection; the index is rebuilt only when a ticket's update time changed or tickets were added.
"""

from __future__ import annotations

import base64
import bisect
import functools
import hashlib
import json
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo

import httpx

from connectors.base import ConnectorSettings
from connectors.testing.fake_system import FakeSystem, FakeTicket, InjectedFailure, Misbehaviour

KNOWN_SYSPARMS = frozenset(
    {
        "sysparm_query",
        "sysparm_fields",
        "sysparm_limit",
        "sysparm_offset",
        "sysparm_display_value",
        "sysparm_exclude_reference_link",
        "sysparm_suppress_pagination_header",
        "sysparm_view",
        "sysparm_query_category",
        "sysparm_query_no_domain",
        "sysparm_no_count",
    }
)
TABLES = ("incident", "change_request", "sc_req_item", "problem")
PREFIXES = {"INC": "incident", "CHG": "change_request", "RITM": "sc_req_item", "PRB": "problem"}
PRIORITY_LABELS = {
    "1": "1 - Critical",
    "2": "2 - High",
    "3": "3 - Moderate",
    "4": "4 - Low",
    "5": "5 - Planning",
}
STATE_CODES = {
    "New": "1",
    "In Progress": "2",
    "On Hold": "3",
    "Resolved": "6",
    "Closed": "7",
    "Canceled": "8",
}
IMPACT_LABELS = {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"}
INACTIVE_STATES = {"Resolved", "Closed", "Canceled"}
SN_FORMAT = "%Y-%m-%d %H:%M:%S"
_DATE_GENERATE = re.compile(r"javascript:gs\.dateGenerate\('(\d{4}-\d{2}-\d{2})',\s*'(\d{2}:\d{2}:\d{2})'\)")
_TERM = re.compile(
    r"(?P<field>[a-z0-9_.]+?)(?P<op>>=|<=|!=|=|>|<|STARTSWITH|LIKE|IN)(?P<value>.*)", re.DOTALL
)
# Fields the fake's tables have; a query term on any other field is ignored, like the real server does.
QUERYABLE = frozenset(
    {
        "sys_id",
        "number",
        "short_description",
        "description",
        "state",
        "priority",
        "impact",
        "active",
        "category",
        "assigned_to",
        "cmdb_ci",
        "sys_updated_on",
        "sys_created_on",
        "correlation_id",
    }
)

Sortable = tuple[int, str]  # (sys_updated_on as epoch seconds, sys_id)


@functools.lru_cache(maxsize=65_536)
def sys_id_for(table: str, external_id: str) -> str:
    """A stable 32-hex-digit sys_id, like ServiceNow's."""
    return hashlib.md5(f"{table}:{external_id}".encode(), usedforsecurity=False).hexdigest()


def table_of(ticket: FakeTicket) -> str:
    table = ticket.extra.get("table")
    if table:
        return str(table)
    for prefix, name in PREFIXES.items():
        if ticket.external_id.startswith(prefix):
            return name
    return "incident"


@dataclass
class _Condition:
    field: str
    op: str
    value: str


class FakeServiceNow(FakeSystem):
    connector_type: ClassVar[str] = "servicenow"
    base_url: str = "https://fake.service-now.com"
    queryable: ClassVar[frozenset[str]] = QUERYABLE  # a subclass serving another table widens it

    def __init__(
        self,
        *,
        auth_mode: str = "basic",
        account_time_zone: str = "UTC",
        tables: Iterable[str] = ("incident",),
        token_lifetime: int = 1800,
    ) -> None:
        super().__init__()
        self.auth_mode = auth_mode
        self.account_time_zone = account_time_zone
        self.account_zone = UTC if account_time_zone == "UTC" else ZoneInfo(account_time_zone)
        self.tables = tuple(tables)  # what settings() selects
        self.existing_tables = set(TABLES)
        self.readable_tables = set(TABLES)
        self.token_lifetime = token_lifetime
        self.username = "svc.runbookdesk"
        self.password = "sn-pass-Wx7!q"
        self.client_id = "3f1c0aa5e2b34e8c9d7a6b5c4d3e2f10"
        self.client_secret = "sn-client-secret-Zq9$"
        self.ignored_query_terms: list[str] = []
        # Tickets the account's read ACLs hide: removed from a page after it is cut, as the real server
        # does, so a page comes back short (or empty) while X-Total-Count and Link still count them.
        self.hidden: set[str] = set()
        self.token_requests: list[str] = []  # grant types, in order
        self.table_requests = 0
        self._clock_offset = 0.0
        self._access_tokens: dict[str, float] = {}  # token -> expiry on the fake's clock
        self._refresh_tokens: set[str] = set()
        self._index: dict[str, list[tuple[Sortable, FakeTicket]]] = {}
        self._index_signature: list[datetime] | None = None
        self._sys_ids: dict[int, str] = {}
        # Writes: what the account may do and what was written.
        self.roles: list[str] = ["itil", "snc_internal"]
        self.roles_readable = True
        self.write_denied = False
        self.lose_next_write_answer = False
        self.configuration_items: dict[str, list[str]] = {}  # CI name -> sys_ids (two: ambiguous)
        self.inserts: list[dict[str, Any]] = []  # request bodies of the records inserted, in order
        self.work_notes: dict[str, list[str]] = {}  # number -> work notes, in order
        self._next_number = 90001

    # --- what tests call ------------------------------------------------------------------------------

    def settings(self, *, good_credentials: bool = True) -> ConnectorSettings:
        secrets_ = {"password": self.password if good_credentials else "wrong-password"}
        options: dict[str, Any] = {
            "username": self.username,
            "tables": ",".join(self.tables),
            "time_zone": self.account_time_zone,
        }
        if self.auth_mode == "oauth":
            options["client_id"] = self.client_id
            secrets_["client_secret"] = self.client_secret
        return ConnectorSettings(
            name="ServiceNow (fake)",
            base_url=self.base_url,
            auth_mode=self.auth_mode,
            options=options,
            secrets=secrets_,
        )

    def new_ticket(self, number: int, updated_at: datetime) -> FakeTicket:
        return FakeTicket(
            external_id=f"INC{number:07d}",
            title=f"VPN drops every 10 minutes for user {number}",
            description=f"User {number}: the AnyConnect client reconnects with error 0x{number:04x}.",
            updated_at=updated_at,
            created_at=updated_at - timedelta(hours=1),
            status="In Progress",
            severity=str(1 + number % 5),
            extra={"assigned_to": "Beth Anglin", "category": "Network"},
        )

    def is_ticket_query(self, request: httpx.Request) -> bool:
        return (
            request.method == "GET"
            and re.fullmatch(r"/api/now/(?:v[12]/)?table/[^/]+", request.url.path) is not None
        )

    def query_since(self, request: httpx.Request) -> datetime | None:
        """The ``sys_updated_on>=`` bound of the request's encoded query (UTC), None without one."""
        query = request.url.params.get("sysparm_query", "")
        for term in query.split("^"):
            if term.startswith("sys_updated_on>="):
                return datetime.fromtimestamp(self._date_operand(term[len("sys_updated_on>=") :]), UTC)
        return None

    def now(self) -> float:
        return time.time() + self._clock_offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock: tokens issued before may expire."""
        self._clock_offset += seconds

    def revoke_tokens(self) -> None:
        """Every access and refresh token stops working (an administrator revoked them)."""
        self._access_tokens.clear()
        self._refresh_tokens.clear()

    def generate(
        self,
        count: int,
        *,
        start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
        per_second: int = 4,
        table: str = "incident",
        first_number: int = 10001,
    ) -> list[FakeTicket]:
        """Add ``count`` tickets quickly (the benchmark's 20,000); ``per_second`` share each update second."""
        prefix = next((p for p, name in PREFIXES.items() if name == table), "INC")
        tickets = []
        priorities = ("1", "2", "3", "4", "5")
        states = ("New", "In Progress", "On Hold", "Resolved", "Closed")
        for index in range(count):
            moment = start + timedelta(seconds=index // per_second)
            ticket = FakeTicket(
                external_id=f"{prefix}{first_number + index:07d}",
                title=f"Disk usage above 90% on lnx-app-{index % 97:02d}",
                description=f"Monitoring reported /var at 9{index % 10}% on lnx-app-{index % 97:02d}.",
                updated_at=moment,
                created_at=moment - timedelta(hours=1),
                status=states[index % len(states)],
                severity=priorities[index % len(priorities)],
                extra={"table": table, "category": "Hardware", "assigned_to": "Beth Anglin"},
            )
            self.tickets[ticket.external_id] = ticket
            tickets.append(ticket)
        return tickets

    def update_ticket(self, external_id: str, *, at: datetime | None = None, **changes: Any) -> FakeTicket:
        """Change a ticket the way an agent would: new values and a new update time (now by default)."""
        ticket = self.tickets[external_id]
        for name, value in changes.items():
            setattr(ticket, name, value)
        ticket.updated_at = at or datetime.fromtimestamp(int(self.now()), UTC)
        return ticket

    def rate_limit_next(self, retry_after: int = 2, times: int = 1) -> None:
        reset = int(self.now()) + retry_after
        headers = {
            "Retry-After": str(retry_after),
            "X-RateLimit-Limit": "1000",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(reset),
        }
        self.fail_next(InjectedFailure(status=429, headers=headers, message="Rate limit exceeded"), times)

    def sys_id(self, ticket: FakeTicket) -> str:
        explicit = ticket.extra.get("sys_id")
        if explicit:
            return str(explicit)
        key = id(ticket)
        found = self._sys_ids.get(key)
        if found is None:
            found = self._sys_ids[key] = sys_id_for(table_of(ticket), ticket.external_id)
        return found

    # --- FakeSystem -----------------------------------------------------------------------------------

    def error_response(
        self, status: int, message: str, headers: Mapping[str, str] | None = None, detail: str | None = None
    ) -> httpx.Response:
        all_headers = {"Content-Type": "application/json;charset=UTF-8", **(headers or {})}
        if status == 429:  # the wait itself (Retry-After, X-RateLimit-Reset) is the test's to choose
            all_headers.setdefault("X-RateLimit-Limit", "1000")
            all_headers.setdefault("X-RateLimit-Remaining", "0")
        body = {"error": {"message": message, "detail": detail}, "status": "failure"}
        return httpx.Response(status, content=json.dumps(body).encode(), headers=all_headers)

    def route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/oauth_token.do" and request.method == "POST":
            return self._token(request)
        match = re.fullmatch(r"/api/now/(?:v[12]/)?table/([^/]+)", path)
        if match and request.method == "GET" and match.group(1) in ("sys_user_has_role", "cmdb_ci"):
            return self._lookup(request, match.group(1))
        if match and request.method == "GET":
            return self._table(request, match.group(1))
        if match and request.method == "POST":
            return self._insert(request, match.group(1))
        record = re.fullmatch(r"/api/now/(?:v[12]/)?table/([^/]+)/([0-9a-f]{32})", path)
        if record and request.method in ("PATCH", "PUT"):
            return self._update(request, record.group(1), record.group(2))
        return self.not_understood(request)

    # --- writes ---------------------------------------------------------------------------------------

    def _lookup(self, request: httpx.Request, table: str) -> httpx.Response:
        """``sys_user_has_role`` by ``user.user_name=`` (rows with the dot-walked ``role.name``), and
        ``cmdb_ci`` by ``name=``: the two small reads the write side makes."""
        if not self._authenticated(request):
            return self.error_response(
                401, "User Not Authenticated", detail="Required to provide Auth information"
            )
        query = request.url.params.get("sysparm_query", "")
        field, _, value = query.partition("=")
        if table == "sys_user_has_role":
            if field != "user.user_name" or request.url.params.get("sysparm_fields") != "role.name":
                return self.not_understood(request)
            if not self.roles_readable:
                return self.error_response(
                    403, "User Not Authorized", detail="ACL Exception Read Failed due to security constraints"
                )
            rows = [{"role.name": role} for role in self.roles] if value == self.username else []
        else:
            if field != "name":
                return self.not_understood(request)
            rows = [{"sys_id": sys_id} for sys_id in self.configuration_items.get(value, [])]
        return httpx.Response(200, json={"result": rows}, headers={"X-Total-Count": str(len(rows))})

    def _write_refused(self, request: httpx.Request, action: str) -> httpx.Response | None:
        if not self._authenticated(request):
            return self.error_response(
                401, "User Not Authenticated", detail="Required to provide Auth information"
            )
        if self.write_denied:
            return self.error_response(
                403, "Operation Failed", detail=f"ACL Exception {action} Failed due to security constraints"
            )
        return None

    def _answer_write(self, response: httpx.Response) -> httpx.Response:
        if self.lose_next_write_answer:
            self.lose_next_write_answer = False
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")
        return response

    def _insert(self, request: httpx.Request, table: str) -> httpx.Response:
        refused = self._write_refused(request, "Insert")
        if refused is not None:
            return refused
        if table not in self.existing_tables:
            return self.error_response(400, f"Invalid table {table}")
        body = json.loads(request.content or b"{}")
        if not isinstance(body, dict) or not body.get("short_description"):
            return self.not_understood(request)
        self.inserts.append(body)
        number = f"INC{self._next_number:07d}"
        self._next_number += 1
        moment = datetime.fromtimestamp(int(self.now()), UTC)
        ticket = FakeTicket(
            external_id=number,
            title=str(body["short_description"]),
            description=str(body.get("description", "")),
            updated_at=moment,
            created_at=moment,
            status="New",
            severity="3",
            extra={
                "table": table,
                "impact": body.get("impact", "2"),
                "correlation_id": body.get("correlation_id", ""),
            },
        )
        self.tickets[number] = ticket
        record = {"sys_id": self.sys_id(ticket), "number": number}
        return self._answer_write(httpx.Response(201, json={"result": record}))

    def _update(self, request: httpx.Request, table: str, sys_id: str) -> httpx.Response:
        refused = self._write_refused(request, "Update")
        if refused is not None:
            return refused
        ticket = next(
            (t for t in self.tickets.values() if self.sys_id(t) == sys_id and table_of(t) == table), None
        )
        if ticket is None:
            return self.error_response(
                404, "No Record found", detail="Record doesn't exist or ACL restricts the record retrieval"
            )
        body = json.loads(request.content or b"{}")
        note = body.get("work_notes") if isinstance(body, dict) else None
        if not isinstance(note, str) or not note:
            return self.not_understood(request)
        self.work_notes.setdefault(ticket.external_id, []).append(note)
        ticket.updated_at = datetime.fromtimestamp(int(self.now()), UTC)
        return self._answer_write(httpx.Response(200, json={"result": {"sys_id": sys_id}}))

    # --- OAuth ----------------------------------------------------------------------------------------

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {key: values[-1] for key, values in parse_qs(request.content.decode()).items()}
        grant = form.get("grant_type", "")
        self.token_requests.append(grant)
        denied = httpx.Response(401, json={"error_description": "access_denied", "error": "server_error"})
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return denied
        if grant == "password":
            if form.get("username") != self.username or form.get("password") != self.password:
                return denied
            refresh = secrets.token_urlsafe(32)
            self._refresh_tokens.add(refresh)
        elif grant == "refresh_token":
            refresh = form.get("refresh_token", "")
            if refresh not in self._refresh_tokens:
                return denied
        else:
            return self.not_understood(request)
        access = secrets.token_urlsafe(48)
        self._access_tokens[access] = self.now() + self.token_lifetime
        body = {
            "access_token": access,
            "refresh_token": refresh,
            "scope": "useraccount",
            "token_type": "Bearer",
            "expires_in": self.token_lifetime - 1,
        }
        return httpx.Response(200, json=body)

    def _authenticated(self, request: httpx.Request) -> bool:
        header = str(request.headers.get("Authorization", ""))
        scheme, _, credentials = header.partition(" ")
        if scheme == "Basic":
            expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return credentials == expected
        if scheme == "Bearer":
            expiry = self._access_tokens.get(credentials)
            return expiry is not None and self.now() < expiry
        return False

    # --- Table API ------------------------------------------------------------------------------------

    def _table(self, request: httpx.Request, table: str) -> httpx.Response:
        self.table_requests += 1
        if not self._authenticated(request):
            return self.error_response(
                401, "User Not Authenticated", detail="Required to provide Auth information"
            )
        params: dict[str, str] = {}
        for key, value in request.url.params.multi_items():
            if not key.startswith("sysparm_") or key not in KNOWN_SYSPARMS:
                # The real server ignores it without a word; a connector that sends it has a bug.
                self.unexpected.append(
                    f"{request.method} {request.url.path}: ignored parameter {key}={value}"
                )
                continue
            if key in params:
                self.unexpected.append(f"{request.method} {request.url.path}: {key} given twice")
            params[key] = value
        if table not in self.existing_tables:
            return self.error_response(400, f"Invalid table {table}")
        if table not in self.readable_tables:
            return self.error_response(
                403,
                "User Not Authorized",
                detail=f"ACL Exception Read Failed due to security constraints: {table}",
            )
        try:
            conditions, ordering = self._parse_query(params.get("sysparm_query", ""))
        except ValueError as exc:
            self.unexpected.append(f"GET {request.url.path}: {exc}")
            return self.not_understood(request)
        try:
            limit = min(int(params.get("sysparm_limit", self.page_size)), self.page_size)
            offset = int(params.get("sysparm_offset", "0"))
        except ValueError:
            return self.not_understood(request)
        if offset < 0:
            self.unexpected.append(f"GET {request.url.path}: negative sysparm_offset {offset}")
            offset = 0
        if self.misbehaviour is not None and self.misbehaviour.ignores_filter:
            conditions = []  # the query's conditions are dropped, ORDERBY still applies
        if self.misbehaviour is Misbehaviour.SAME_PAGE_FOREVER:
            rows, _ = self._select(table, conditions, ordering, 0, limit)
            total = offset + limit + 1  # always another page, by a Link that advances
        elif self.misbehaviour is Misbehaviour.IGNORES_PAGE_TOKEN:
            offset = 0  # the links say so too
            rows, total = self._select(table, conditions, ordering, 0, limit)
        else:
            rows, total = self._select(table, conditions, ordering, offset, limit)
        display = params.get("sysparm_display_value", "false").lower()
        exclude_link = params.get("sysparm_exclude_reference_link", "false").lower() == "true"
        wanted = (
            [name.strip() for name in params["sysparm_fields"].split(",")]
            if "sysparm_fields" in params
            else None
        )
        result = [
            self._render(ticket, table, wanted, display, exclude_link)
            for ticket in rows
            if ticket.external_id not in self.hidden
        ]
        headers = {"Content-Type": "application/json;charset=UTF-8", "X-Total-Count": str(total)}
        if "sysparm_limit" in params and (total > limit or offset > 0):
            headers["Link"] = self._link_header(request, params, offset, limit, total)
        return httpx.Response(200, content=json.dumps({"result": result}).encode(), headers=headers)

    def _link_header(
        self, request: httpx.Request, params: Mapping[str, str], offset: int, limit: int, total: int
    ) -> str:
        """first, prev, next, last as ServiceNow writes them: ``<url>;rel="x"`` joined by bare commas."""
        kept = [
            (key, value) for key, value in params.items() if key not in ("sysparm_limit", "sysparm_offset")
        ]

        def url(at: int) -> str:
            # ServiceNow leaves , and : unencoded in the echoed query (sysparm_fields=a,b,c).
            query = urlencode(
                [*kept, ("sysparm_limit", str(limit)), ("sysparm_offset", str(at))], safe=",:'()"
            )
            return f"{self.base_url}{request.url.path}?{query}"

        last = max(0, (total - 1) // limit * limit)
        links = [f'<{url(0)}>;rel="first"', f'<{url(offset - limit)}>;rel="prev"']  # negative on page one
        if offset + limit < total:
            links.append(f'<{url(offset + limit)}>;rel="next"')
        links.append(f'<{url(last)}>;rel="last"')
        return ",".join(links)

    # --- query ----------------------------------------------------------------------------------------

    def _parse_query(self, query: str) -> tuple[list[list[_Condition]], list[tuple[str, bool]]]:
        """AND-ed clauses (each a list of OR-ed conditions) and the ORDERBY fields (name, descending)."""
        clauses: list[list[_Condition]] = []
        ordering: list[tuple[str, bool]] = []
        if not query:
            return clauses, ordering
        for term in query.split("^"):
            if not term or term == "EQ":
                continue
            if term.startswith("ORDERBYDESC"):
                ordering.append((term[len("ORDERBYDESC") :], True))
                continue
            if term.startswith("ORDERBY"):
                ordering.append((term[len("ORDERBY") :], False))
                continue
            if term.startswith("NQ"):
                raise ValueError("the fake does not implement ^NQ")
            is_or = term.startswith("OR")
            body = term[2:] if is_or else term
            match = _TERM.fullmatch(body)
            if match is None:
                raise ValueError(f"the fake cannot read the query term {term!r}")
            condition = _Condition(match.group("field"), match.group("op"), match.group("value"))
            if condition.field not in self.queryable:
                self.ignored_query_terms.append(term)  # the real server drops it and returns more rows
                continue
            if is_or:
                if not clauses:
                    raise ValueError(f"{term!r} has nothing to OR with")
                clauses[-1].append(condition)
            else:
                clauses.append([condition])
        return clauses, ordering

    def _date_operand(self, text: str) -> int:
        generated = _DATE_GENERATE.fullmatch(text)
        if generated:  # read in the account's time zone, as the instance does
            wall = datetime.strptime(f"{generated.group(1)} {generated.group(2)}", SN_FORMAT)
            return int(wall.replace(tzinfo=self.account_zone).timestamp())
        return int(datetime.strptime(text, SN_FORMAT).replace(tzinfo=UTC).timestamp())

    def _matches(self, ticket: FakeTicket, table: str, clauses: list[list[_Condition]]) -> bool:
        return all(any(self._holds(ticket, table, condition) for condition in clause) for clause in clauses)

    def _holds(self, ticket: FakeTicket, table: str, condition: _Condition) -> bool:
        field, op, operand = condition.field, condition.op, condition.value
        if field in ("sys_updated_on", "sys_created_on"):
            moment = ticket.updated_at if field == "sys_updated_on" else ticket.created_at
            actual: Any = int(moment.timestamp())
            expected: Any = self._date_operand(operand)
        else:
            actual = self._internal(ticket, table).get(field, "")
            expected = operand
        if op == "=":
            return bool(actual == expected)
        if op == "!=":
            return bool(actual != expected)
        if op == ">":
            return bool(actual > expected)
        if op == ">=":
            return bool(actual >= expected)
        if op == "<":
            return bool(actual < expected)
        if op == "<=":
            return bool(actual <= expected)
        if op == "IN":
            return str(actual) in operand.split(",")
        if op == "LIKE":
            return operand.lower() in str(actual).lower()
        return str(actual).startswith(operand)  # STARTSWITH

    def _table_index(self, table: str) -> list[tuple[Sortable, FakeTicket]]:
        """Tickets of a table sorted by (sys_updated_on second, sys_id); rebuilt when an update time moved."""
        signature = [ticket.updated_at for ticket in self.tickets.values()]
        if signature != self._index_signature:
            self._index = {}
            for ticket in self.tickets.values():
                entry = ((int(ticket.updated_at.timestamp()), self.sys_id(ticket)), ticket)
                self._index.setdefault(table_of(ticket), []).append(entry)
            for entries in self._index.values():
                entries.sort(key=lambda entry: entry[0])
            self._index_signature = signature
        return self._index.get(table, [])

    def _select(
        self,
        table: str,
        clauses: list[list[_Condition]],
        ordering: list[tuple[str, bool]],
        offset: int,
        limit: int,
    ) -> tuple[list[FakeTicket], int]:
        """The page and the total count. The sync's own query shape takes the fast path."""
        entries = self._table_index(table)
        keyset = ordering[:2] == [("sys_updated_on", False), ("sys_id", False)] and len(ordering) == 2
        if keyset:
            start = 0
            rest = list(clauses)
            bound: int | None = None
            if rest and len(rest[0]) == 1 and rest[0][0].field == "sys_updated_on" and rest[0][0].op == ">=":
                bound = self._date_operand(rest[0][0].value)
                start = bisect.bisect_left(entries, (bound, ""), key=lambda entry: entry[0])
                rest = rest[1:]
            tie_break = self._tie_break(rest[0]) if rest else None
            if tie_break is not None and tie_break[0] == bound:
                # sys_updated_on >= T and (sys_updated_on > T or sys_id > X) is (time, sys_id) > (T, X).
                rest = rest[1:]
                start = bisect.bisect_right(entries, tie_break, lo=start, key=lambda entry: entry[0])
            candidates = entries[start:]
            if not rest:  # nothing else to evaluate: count without scanning
                return [ticket for _, ticket in candidates[offset : offset + limit]], len(candidates)
            matching = [ticket for _, ticket in candidates if self._matches(ticket, table, rest)]
            return matching[offset : offset + limit], len(matching)
        matching = [ticket for _, ticket in entries if self._matches(ticket, table, clauses)]
        if not ordering:  # ServiceNow's order without ORDERBY is unspecified: insertion order here
            inserted = {external_id: index for index, external_id in enumerate(self.tickets)}
            matching.sort(key=lambda ticket: inserted[ticket.external_id])
        for field, descending in reversed(ordering):

            def sort_value(ticket: FakeTicket, field: str = field) -> Any:
                return self._sort_value(ticket, table, field)

            matching.sort(key=sort_value, reverse=descending)
        return matching[offset : offset + limit], len(matching)

    def _tie_break(self, clause: list[_Condition]) -> tuple[int, str] | None:
        """``sys_updated_on>T^ORsys_id>X`` after ``sys_updated_on>=T``: the keyset continuation."""
        if len(clause) != 2:
            return None
        first, second = clause
        if (first.field, first.op, second.field, second.op) != ("sys_updated_on", ">", "sys_id", ">"):
            return None
        return self._date_operand(first.value), second.value

    def _sort_value(self, ticket: FakeTicket, table: str, field: str) -> Any:
        if field == "sys_updated_on":
            return int(ticket.updated_at.timestamp())
        if field == "sys_created_on":
            return int(ticket.created_at.timestamp())
        return self._internal(ticket, table).get(field, "")

    # --- records --------------------------------------------------------------------------------------

    def _internal(self, ticket: FakeTicket, table: str) -> dict[str, str]:
        """The stored values of a ticket's fields (what ``sysparm_display_value=false`` returns)."""
        extra = ticket.extra
        return {
            "sys_id": self.sys_id(ticket),
            "number": ticket.external_id,
            "short_description": ticket.title,
            "description": ticket.description,
            "state": STATE_CODES.get(ticket.status, "1"),
            "priority": ticket.severity,
            "impact": str(extra.get("impact", "2")),
            "active": "false" if ticket.status in INACTIVE_STATES else "true",
            "category": str(extra.get("category", "")).lower(),
            "assigned_to": str(extra.get("assigned_to", "")),
            "cmdb_ci": str(extra.get("cmdb_ci", "")),
            "close_notes": ticket.resolution_notes,
            "correlation_id": str(extra.get("correlation_id", "")),
        }

    def _render(
        self, ticket: FakeTicket, table: str, wanted: list[str] | None, display: str, exclude_link: bool
    ) -> dict[str, Any]:
        extra = ticket.extra
        active = "false" if ticket.status in INACTIVE_STATES else "true"
        impact = str(extra.get("impact", "2"))
        category = str(extra.get("category", ""))
        sys_id = self.sys_id(ticket)
        fields: dict[str, tuple[str, str]] = {
            "sys_id": (sys_id, sys_id),
            "number": (ticket.external_id, ticket.external_id),
            "short_description": (ticket.title, ticket.title),
            "description": (ticket.description, ticket.description),
            "state": (STATE_CODES.get(ticket.status, "1"), ticket.status),
            "priority": (ticket.severity, PRIORITY_LABELS.get(ticket.severity, ticket.severity)),
            "impact": (impact, IMPACT_LABELS.get(impact, impact)),
            "active": (active, active),
            "category": (category.lower(), category),
            "close_notes": (ticket.resolution_notes, ticket.resolution_notes),
            "close_code": (str(extra.get("close_code", "")), str(extra.get("close_code", ""))),
            "sys_class_name": (table, table.replace("_", " ").title()),
        }
        dates = {
            "sys_updated_on": ticket.updated_at,
            "sys_created_on": ticket.created_at,
            "opened_at": ticket.created_at,
            "resolved_at": extra.get("resolved_at") if table in ("incident", "problem") else None,
            "closed_at": extra.get("closed_at"),
        }
        for name, moment in dates.items():
            if table not in ("incident", "problem") and name == "resolved_at":
                continue  # changes and requested items have no resolved_at field
            if moment is None:
                fields[name] = ("", "")
            else:
                stored = moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "seconds")
                shown = moment.astimezone(self.account_zone).replace(tzinfo=None).isoformat(" ", "seconds")
                fields[name] = (stored, shown)
        references = {
            "assigned_to": ("sys_user", extra.get("assigned_to")),
            "assignment_group": ("sys_user_group", extra.get("assignment_group")),
            "cmdb_ci": ("cmdb_ci", extra.get("cmdb_ci")),
        }
        return self.render_fields(fields, references, wanted, display, exclude_link)

    def render_fields(
        self,
        fields: dict[str, tuple[str, str]],
        references: dict[str, tuple[str, Any]],
        wanted: list[str] | None,
        display: str,
        exclude_link: bool,
    ) -> dict[str, Any]:
        """``fields`` (stored, shown) and ``references`` (target table, shown name) as the record the Table
        API returns for the asked fields, display mode and reference links."""
        record: dict[str, Any] = {}
        for name in wanted if wanted is not None else [*fields, *references]:
            if name in references:
                target, shown_name = references[name]
                value = sys_id_for(target, str(shown_name)) if shown_name else ""
                record[name] = self._reference(target, value, str(shown_name or ""), display, exclude_link)
            elif name in fields:
                stored, shown = fields[name]
                record[name] = (
                    {"display_value": shown, "value": stored}
                    if display == "all"
                    else (shown if display == "true" else stored)
                )
            # an unknown field in sysparm_fields is left out, like the real server does
        return record

    def _reference(self, target: str, value: str, shown: str, display: str, exclude_link: bool) -> Any:
        if display == "true":
            return shown
        if display == "false" and exclude_link:
            return value
        link = f"{self.base_url}/api/now/table/{target}/{value}"
        if display == "all":
            return (
                {"display_value": shown, "value": value}
                if exclude_link or not value
                else {
                    "display_value": shown,
                    "link": link,
                    "value": value,
                }
            )
        return {"link": link, "value": value} if value else ""
