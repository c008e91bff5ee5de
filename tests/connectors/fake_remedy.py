"""A local fake BMC Remedy / Helix AR System REST API answering in the real shapes.

``POST /api/jwt/login`` (form ``username``/``password``) answers the token as text; ``AR-JWT`` tokens can be
expired by the test (the next request gets 401 with ARERR 623) and are released by ``POST /api/jwt/logout``
(204). Entry lists parse the ``q`` qualification (comparisons of quoted field names with numbers, which AR
reads as epoch seconds for dates, or with "strings"; AND, OR, NOT, parentheses), ``sort``, ``offset``,
``limit`` and ``fields=values(...)``, and link the next page in ``_links.next`` as a list of ``{"href"}``.

Writes (issue 13): ``POST /api/arsys/v1/entry/HPD:IncidentInterface_Create`` with ``{"values": {...,
"z1D_Action": "CREATE"}}`` makes an incident (201, ``Location`` naming the interface entry; with
``fields=values(Incident Number)`` the body carries the number unless ``values_on_create`` is off, as on
older servers, and then ``GET`` of that entry answers it); ``POST .../entry/HPD:WorkLog`` adds a work-info
entry (201, ``Location`` with its id). ``write_denied`` answers 403 with an AR message list;
``lose_next_write_answer`` carries out the next write and drops the connection.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs, quote, unquote

import httpx

from connectors.base import ConnectorSettings
from connectors.testing.fake_system import FakeSystem, FakeTicket, Misbehaviour

USERNAME = "Demo"
PASSWORD = "remedy-pass-4321"
FORM = "HPD:Help Desk"
CREATE_FORM = "HPD:IncidentInterface_Create"
WORK_LOG = "HPD:WorkLog"
MODIFIED = "Last Modified Date"

_PRIORITY = {"1": "Critical", "2": "High", "3": "Medium", "4": "Low", "5": "Low"}
_TOKEN = re.compile(
    r"\s*(?:(?P<field>'[^']*')|(?P<string>\"(?:[^\"]|\"\")*\")|(?P<number>-?\d+)"
    r"|(?P<op>>=|<=|!=|=|<|>)|(?P<paren>[()])|(?P<word>AND|OR|NOT)\b)",
    re.IGNORECASE,
)


def ar_date(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class QualificationError(ValueError):
    pass


Predicate = Callable[[Mapping[str, Any]], bool]
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _either(first: Predicate, second: Predicate) -> Predicate:
    return lambda row: first(row) or second(row)


def _both(first: Predicate, second: Predicate) -> Predicate:
    return lambda row: first(row) and second(row)


class Qualification:
    """A tiny recursive-descent reader of AR qualifications, enough for what connectors send."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        position = 0
        text = text.strip()
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                raise QualificationError(f"cannot parse the qualification at {text[position:]!r}")
            kind = match.lastgroup
            assert kind is not None
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
            while position < len(text) and text[position].isspace():
                position += 1
        self.index = 0
        self.predicate = self._or()
        if self.index != len(self.tokens):
            raise QualificationError("unexpected text at the end of the qualification")

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise QualificationError("the qualification ends too early")
        self.index += 1
        return token

    def _word(self, word: str) -> bool:
        token = self._peek()
        if token and token[0] == "word" and token[1].upper() == word:
            self.index += 1
            return True
        return False

    def _or(self) -> Predicate:
        left = self._and()
        while self._word("OR"):
            left = _either(left, self._and())
        return left

    def _and(self) -> Predicate:
        left = self._not()
        while self._word("AND"):
            left = _both(left, self._not())
        return left

    def _not(self) -> Predicate:
        if self._word("NOT"):
            inner = self._not()
            return lambda row: not inner(row)
        token = self._peek()
        if token and token == ("paren", "("):
            self.index += 1
            inner = self._or()
            if self._take() != ("paren", ")"):
                raise QualificationError("missing )")
            return inner
        return self._comparison()

    def _comparison(self) -> Predicate:
        kind, field = self._take()
        if kind != "field":
            raise QualificationError(f"expected a 'field', got {field!r}")
        op_kind, op = self._take()
        if op_kind != "op":
            raise QualificationError(f"expected an operator, got {op!r}")
        value_kind, raw = self._take()
        if value_kind == "number":
            value: Any = int(raw)
        elif value_kind == "string":
            value = raw[1:-1].replace('""', '"')
        else:
            raise QualificationError(f"expected a value, got {raw!r}")
        name = field[1:-1]
        compare = _COMPARISONS[op]

        def predicate(row: Mapping[str, Any]) -> bool:
            if name not in row:
                raise QualificationError(f"field not found: {name}")
            actual = row[name]
            if actual is None:
                return False
            if isinstance(actual, datetime):
                if not isinstance(value, int):
                    return False
                actual = int(actual.timestamp())  # AR compares dates with numbers as epoch seconds
            if isinstance(value, str) != isinstance(actual, str):
                return False
            return bool(compare(actual, value))

        return predicate


class FakeRemedy(FakeSystem):
    connector_type: ClassVar[str] = "remedy"
    base_url: str = "https://remedy.fake.example.com"

    def __init__(self) -> None:
        super().__init__()
        self.page_size = 2000
        self.tokens: set[str] = set()
        self.logins = 0
        self.logouts: list[str] = []
        self.write_denied = False
        self.lose_next_write_answer = False
        self.values_on_create = True
        self.created: list[dict[str, Any]] = []  # the values submitted to the interface form
        self.work_log: dict[str, list[dict[str, Any]]] = {}  # Incident Number -> work-info values
        self._interface_entries: dict[str, str] = {}  # interface entry id -> Incident Number

    # --- what tests call ---------------------------------------------------------------------------------

    def settings(self, *, good_credentials: bool = True, **options: Any) -> ConnectorSettings:
        password = PASSWORD if good_credentials else "wrong-password"
        return ConnectorSettings(
            "Fake Remedy", self.base_url, "ar_jwt", {"username": USERNAME, **options}, {"password": password}
        )

    def new_ticket(self, number: int, updated_at: datetime) -> FakeTicket:
        """Incident Numbers look like INC000000000042; AR dates have whole seconds."""
        ticket = super().new_ticket(number, updated_at.replace(microsecond=0))
        ticket.external_id = f"INC{number:012d}"
        return ticket

    def expire_tokens(self) -> None:
        """AR-JWTs time out after an hour whatever the client does."""
        self.tokens.clear()

    def is_ticket_query(self, request: httpx.Request) -> bool:
        return request.method == "GET" and unquote(request.url.path).startswith("/api/arsys/v1/entry/")

    def query_since(self, request: httpx.Request) -> datetime | None:
        """The lowest 'Last Modified Date' bound in ``q`` (>=, > or =, epoch seconds); None without one."""
        q = request.url.params.get("q", "")
        bounds = re.findall(rf"'{MODIFIED}'\s*(?:>=|>|=)\s*(\d+)", q)
        return datetime.fromtimestamp(min(int(b) for b in bounds), UTC) if bounds else None

    # --- the API -----------------------------------------------------------------------------------------

    def error_response(
        self, status: int, message: str, headers: Mapping[str, str] | None = None, *, number: int = 9999
    ) -> httpx.Response:
        body = [
            {
                "messageType": "ERROR",
                "messageText": message,
                "messageAppendedText": "fake AR server",
                "messageNumber": number,
            }
        ]
        return httpx.Response(status, json=body, headers=dict(headers or {}))

    def route(self, request: httpx.Request) -> httpx.Response:
        path = unquote(request.url.path)
        if request.method == "POST" and path == "/api/jwt/login":
            return self._login(request)
        token = request.headers.get("Authorization", "").removeprefix("AR-JWT ")
        if token not in self.tokens:
            return self.error_response(401, "Authentication failed", number=623)
        if request.method == "POST" and path == "/api/jwt/logout":
            self.tokens.discard(token)
            self.logouts.append(token)
            return httpx.Response(204)
        if path.startswith(f"/api/arsys/v1/entry/{CREATE_FORM}") or path == f"/api/arsys/v1/entry/{WORK_LOG}":
            return self._write(request, path)
        if request.method == "GET" and path.startswith("/api/arsys/v1/entry/"):
            form = path.removeprefix("/api/arsys/v1/entry/")
            if form != FORM:
                return self.error_response(404, f"Form does not exist on server : {form}", number=303)
            return self._entries(request)
        return self.not_understood(request)

    def _write(self, request: httpx.Request, path: str) -> httpx.Response:
        entry = re.fullmatch(rf"/api/arsys/v1/entry/{CREATE_FORM}/(\w+)", path)
        if request.method == "GET" and entry:  # read back the Incident Number of an interface entry
            number = self._interface_entries.get(entry.group(1))
            if number is None:
                return self.error_response(404, "Entry does not exist in database", number=302)
            return httpx.Response(200, json={"values": {"Incident Number": number}})
        if request.method != "POST":
            return self.not_understood(request)
        body = json.loads(request.content or b"{}")
        values = body.get("values") if isinstance(body, dict) else None
        if not isinstance(values, dict):
            return self.not_understood(request)
        if self.write_denied:
            return self.error_response(403, "No write access to the form", number=333)
        if path.endswith(CREATE_FORM):
            if values.get("z1D_Action") != "CREATE" or not values.get("Description"):
                return self.error_response(400, "Required field cannot be blank : Description", number=326)
            self.created.append(values)
            number = f"INC{900_000 + len(self.created):012d}"
            entry_id = f"{len(self.created):015d}"
            self._interface_entries[entry_id] = number
            moment = datetime.now(UTC).replace(microsecond=0)
            self.tickets[number] = FakeTicket(
                number, values["Description"], str(values.get("Detailed_Decription", "")), moment, moment
            )
            location = f"{self.base_url}/api/arsys/v1/entry/{quote(CREATE_FORM)}/{entry_id}"
            wanted = request.url.params.get("fields", "")
            answer = (
                httpx.Response(
                    201, json={"values": {"Incident Number": number}}, headers={"Location": location}
                )
                if self.values_on_create and "Incident Number" in wanted
                else httpx.Response(201, headers={"Location": location})
            )
        else:
            number = str(values.get("Incident Number", ""))
            if number not in self.tickets:
                return self.error_response(400, f"The Incident Number {number} is not valid", number=1291053)
            if not values.get("Detailed Description") or not values.get("Work Log Type"):
                return self.not_understood(request)
            self.work_log.setdefault(number, []).append(values)
            entry_id = f"WLG{sum(len(v) for v in self.work_log.values()):012d}"
            location = f"{self.base_url}/api/arsys/v1/entry/{quote(WORK_LOG)}/{entry_id}"
            answer = httpx.Response(201, headers={"Location": location})
        if self.lose_next_write_answer:
            self.lose_next_write_answer = False
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")
        return answer

    def _login(self, request: httpx.Request) -> httpx.Response:
        form = {key: values[0] for key, values in parse_qs(request.content.decode()).items()}
        if form.get("username") != USERNAME or form.get("password") != PASSWORD:
            return self.error_response(401, "Authentication failed", number=623)
        self.logins += 1
        token = f"jwt-token-{self.logins}"
        self.tokens.add(token)
        return httpx.Response(200, text=token, headers={"Content-Type": "text/plain"})

    def row(self, ticket: FakeTicket) -> dict[str, Any]:
        """The form's values with dates still as datetimes (the qualification compares them)."""
        extra = ticket.extra
        return {
            "Incident Number": ticket.external_id,
            "Entry ID": extra.get("entry_id", ticket.external_id),
            "Description": ticket.title,
            "Detailed Decription": ticket.description,
            "Status": ticket.status,
            "Priority": extra.get("priority", _PRIORITY.get(ticket.severity, ticket.severity)),
            "Service Type": extra.get("service_type", "User Service Restoration"),
            "Assigned Group": extra.get("group", "Service Desk"),
            "Assignee": extra.get("assignee"),
            "Categorization Tier 1": extra.get("tier1", "Network"),
            "Categorization Tier 2": extra.get("tier2"),
            "Categorization Tier 3": None,
            "ServiceCI": extra.get("ci"),
            "Resolution": ticket.resolution_notes or None,
            "Submit Date": ticket.created_at,
            "Last Modified Date": ticket.updated_at.replace(microsecond=0),
            "Last Resolved Date": extra.get("resolved_at"),
        }

    def _entries(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        rows = [self.row(t) for t in self.tickets.values()]
        try:
            if params.get("q") and not (self.misbehaviour and self.misbehaviour.ignores_filter):
                predicate = Qualification(params["q"]).predicate
                rows = [row for row in rows if predicate(row)]
        except QualificationError as exc:
            return self.error_response(500, str(exc), number=1587)
        for key in reversed([k for k in params.get("sort", "").split(",") if k]):
            name, _, direction = key.rpartition(".")
            if name not in self.row(FakeTicket("x", "", "", datetime.now(UTC), datetime.now(UTC))):
                return self.error_response(500, f"Field not found: {name}", number=314)

            def sort_key(row: Mapping[str, Any], name: str = name) -> tuple[bool, Any]:
                return row[name] is None, row[name]

            rows.sort(key=sort_key, reverse=direction.lower() == "desc")
        stuck = self.misbehaviour is Misbehaviour.SAME_PAGE_FOREVER
        no_position = self.misbehaviour is not None and self.misbehaviour.ignores_page_token
        offset = 0 if no_position else int(params.get("offset", 0))
        limit = min(int(params.get("limit", self.page_size)), self.page_size)
        window = rows[offset : offset + limit]
        fields = params.get("fields", "")
        wanted = re.fullmatch(r"values\((.*)\)", fields)
        names = [n.strip() for n in wanted.group(1).split(",")] if wanted else None
        form_url = f"{self.base_url}/api/arsys/v1/entry/{quote(FORM, safe=':')}"
        entries = []
        for row in window:
            values = {k: (ar_date(v) if isinstance(v, datetime) else v) for k, v in row.items()}
            if names is not None:
                values = {k: v for k, v in values.items() if k in names}
            entries.append(
                {"values": values, "_links": {"self": [{"href": f"{form_url}/{row['Entry ID']}"}]}}
            )
        links: dict[str, Any] = {"self": [{"href": str(request.url)}]}
        if stuck or offset + limit < len(rows):
            next_params = dict(params) | {"offset": str(offset + limit), "limit": str(limit)}
            links["next"] = [{"href": str(request.url.copy_with(params=next_params))}]
        return httpx.Response(200, json={"entries": entries, "_links": links})
