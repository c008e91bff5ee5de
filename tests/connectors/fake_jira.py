"""A local fake of Jira, Cloud or Data Center (``FakeJira(cloud=...)``), answering in the real shapes.

What it reproduces, because each one is a way a Jira connector breaks:

- Paths per flavour: Cloud serves ``/rest/api/3/myself`` and ``/rest/api/3/search/jql`` and answers the
  removed ``/rest/api/{2,3}/search`` with 410 Gone and Atlassian's migration message (CHANGE-2046); Data
  Center serves ``/rest/api/2/...`` under a context path (``/jira``) and has no ``/rest/api/3``.
- Auth per flavour: Basic email:API token on Cloud, ``Authorization: Bearer <PAT>`` on Data Center.
- JQL: the scope clauses a connector sends, ``updated >= "yyyy-MM-dd HH:mm"`` read at minute precision in the
  account's time zone (``/myself`` ``timeZone``), ``ORDER BY`` applied; a JQL it cannot read is a 400 in the
  parser's words; Cloud refuses an unbounded JQL.
- Paging: Cloud's opaque ``nextPageToken`` / ``isLast`` (no ``total``), Data Center's ``startAt`` /
  ``maxResults`` / ``total``; ``maxResults`` capped at the server's page size.
- Only the requested ``fields`` are rendered; timestamps as Jira writes them
  (``2022-06-09T16:29:31.871-0700``, in the account's zone); Cloud descriptions and comments as ADF, Data
  Center ones as wiki markup.
- Errors as ``{"errorMessages": [...], "errors": {}}``; 429 with ``Retry-After``, ``X-RateLimit-Limit``,
  ``X-RateLimit-Remaining``, ``X-RateLimit-Reset`` (ISO 8601, ``yyyy-MM-ddTHH:mmZ``) and ``RateLimit-Reason``.

- Writes (issue 13): ``GET /mypermissions?projectKey=&permissions=`` answers ``permissions`` as Jira does
  (``{"CREATE_ISSUES": {"id", "key", "name", "type", "description", "havePermission"}}``; Cloud requires
  ``permissions``; an unknown project is a 404); ``POST /issue`` with ``fields`` (ADF description on Cloud,
  a string on Data Center, which Cloud refuses) answers ``{"id", "key", "self"}`` with 201 and keeps the
  issue searchable by ``labels = "x"``; ``POST /issue/{key}/comment`` answers the comment with its ``id``.
  ``write_denied`` makes writes a 403 as for an account without the project permission;
  ``lose_next_write_answer`` carries out the next write and drops the connection.

Unknown paths, methods, parameters, body keys and field names fail the test
(:class:`~connectors.testing.fake_system.UnexpectedRequestError`) and are recorded in ``unexpected``.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from connectors.base import ConnectorSettings
from connectors.testing.fake_system import FakeSystem, FakeTicket, Misbehaviour
from connectors.ticketing.jira import BASE_FIELDS

EMAIL = "analyst@example.com"
API_TOKEN = "cloud-token-s3cret"
PAT = "dc-pat-s3cret"
RESOLUTION_FIELD = "customfield_10050"
CI_FIELD = "customfield_10060"

GONE_MESSAGE = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
UNBOUNDED_MESSAGE = (
    "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
)
UNAUTHENTICATED_MESSAGE = "Client must be authenticated to access this resource."

PRIORITY_NAMES = {"1": "Highest", "2": "High", "3": "Medium", "4": "Low", "5": "Lowest"}
DONE_STATUSES = {"done", "resolved", "closed"}
CLOUD_SEARCH_KEYS = {"jql", "nextPageToken", "maxResults", "fields", "expand", "properties", "fieldsByKeys"}
DC_SEARCH_KEYS = {"jql", "startAt", "maxResults", "fields", "expand", "validateQuery", "properties"}

_BOUND = re.compile(r'updated\s*>=\s*"(\d{4}-\d{2}-\d{2} \d{2}:\d{2})"', re.IGNORECASE)
_ORDER = re.compile(r"\s+ORDER\s+BY\s+(.+)$", re.IGNORECASE)
_PROJECT_IN = re.compile(r"^project\s+in\s*\(([^()]*)\)$", re.IGNORECASE)
_EQUALS = re.compile(r'^(\w+)\s*(=|!=)\s*("[^"]*"|[\w-]+)$')


class JqlError(ValueError):
    """What Jira's JQL parser would say, answered as a 400."""


def key_order(key: str) -> tuple[str, int]:
    project, _, number = key.rpartition("-")
    return (project, int(number)) if number.isdigit() else (key, 0)


def jira_time(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + local.strftime("%z")


def adf(text: str) -> dict[str, Any]:
    paragraphs = [
        {"type": "paragraph", "content": [{"type": "text", "text": line}]}
        for line in text.split("\n")
        if line
    ]
    return {"type": "doc", "version": 1, "content": paragraphs}


def rate_limit_headers(retry_after: int = 2, now: datetime | None = None) -> dict[str, str]:
    """Jira Cloud's 429 headers: the reset is an ISO time, Retry-After the seconds to wait."""
    reset = (now or datetime.now(UTC)) + timedelta(seconds=retry_after)
    return {
        "Retry-After": str(retry_after),
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%MZ"),
        "RateLimit-Reason": "jira-burst-based",
    }


class FakeJira(FakeSystem):
    connector_type = "jira"

    def __init__(self, *, cloud: bool = True, time_zone: str | None = "America/Los_Angeles") -> None:
        super().__init__()
        self.cloud = cloud
        self.base_url = "https://fake.atlassian.net" if cloud else "https://jira.example.com/jira"
        self.api = "/rest/api/3" if cloud else "/jira/rest/api/2"
        self.time_zone = time_zone  # None: the account hides its zone (Cloud privacy settings)
        self.zone = ZoneInfo(time_zone or "UTC")  # the zone JQL literals and rendered times are in
        self.browse_permission = True  # False: searches find nothing, as for an account without "Browse"
        self.page_tokens: dict[str, tuple[str, int]] = {}
        self.searches: list[dict[str, Any]] = []  # each search request's parameters, decoded
        # Writes
        self.projects = {"OPS"}
        self.permissions = {"CREATE_ISSUES": True, "ADD_COMMENTS": True}
        self.write_denied = False
        self.lose_next_write_answer = False
        self.created: list[dict[str, Any]] = []  # the ``fields`` of each issue created, in order
        self.comments: dict[str, list[Any]] = {}  # issue key -> comment bodies as sent (ADF or text)

    # --- what tests call ----------------------------------------------------------------------------

    def settings(self, *, good_credentials: bool = True, **options: Any) -> ConnectorSettings:
        base_options: dict[str, Any] = {
            "deployment": "cloud" if self.cloud else "datacenter",
            "resolution_source": "custom_field",
            "resolution_field": RESOLUTION_FIELD,
        }
        if self.cloud:
            base_options["email"] = EMAIL
            secrets = {"api_token": API_TOKEN if good_credentials else "wrong-token"}
        else:
            secrets = {"personal_access_token": PAT if good_credentials else "wrong-pat"}
        base_options.update(options)
        return ConnectorSettings(
            name="Fake Jira Cloud" if self.cloud else "Fake Jira DC",
            base_url=self.base_url,
            auth_mode="api_token" if self.cloud else "pat",
            options=base_options,
            secrets=secrets,
        )

    def new_ticket(self, number: int, updated_at: datetime) -> FakeTicket:
        return FakeTicket(
            external_id=f"OPS-{number}",
            title=f"Ticket {number}: printer on floor {number % 7} jams",
            description=f"Reported by user {number}. Paper jam in tray 2.",
            updated_at=updated_at,
            created_at=updated_at,
            severity=str(number % 5 + 1),
            extra={"components": ["Printing"], "assignee": f"Agent {number % 3}"},
        )

    def is_ticket_query(self, request: httpx.Request) -> bool:
        return request.url.path == self._search_path() and request.method in ("GET", "POST")

    def query_since(self, request: httpx.Request) -> datetime | None:
        """The JQL's ``updated >=`` bound as an instant; the connector's full-sync bound (1970) means none."""
        params = self._search_params(request)
        match = _BOUND.search(str(params.get("jql") or ""))
        if match is None:
            return None
        bound = self._instant(match.group(1))
        return None if bound.year <= 1970 else bound

    def error_response(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        all_headers = dict(headers or {})
        if status == 429 and not all_headers:
            all_headers = rate_limit_headers()
        return httpx.Response(status, json={"errorMessages": [message], "errors": {}}, headers=all_headers)

    # --- routing ------------------------------------------------------------------------------------

    def route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if self.cloud and path in ("/rest/api/3/search", "/rest/api/2/search"):
            return self.error_response(410, GONE_MESSAGE)
        if not self.cloud and path.startswith("/jira/rest/api/3/"):
            return self.error_response(404, "null for uri: " + str(request.url.copy_with(query=None)))
        if self.cloud and path == "/rest/api/2/myself":  # Cloud still serves most of v2
            path = f"{self.api}/myself"
        if not path.startswith(self.api + "/"):
            return self.not_understood(request)
        if self.cloud and request.headers.get("Authorization", "").startswith("Bearer "):
            # What the atlassian.net gateway answers a bearer that is not a Connect session token.
            return httpx.Response(403, json={"error": "Failed to parse Connect Session Auth Token"})
        if not self._authenticated(request):
            if self.cloud:
                return httpx.Response(
                    401, text=UNAUTHENTICATED_MESSAGE, headers={"Content-Type": "text/plain"}
                )
            return self.error_response(
                401, "You are not authenticated. Authentication required to perform this operation."
            )
        if path == f"{self.api}/myself" and request.method == "GET":
            return self._myself(request)
        if path == self._search_path() and request.method in ("GET", "POST"):
            return self._search(request)
        if path == f"{self.api}/mypermissions" and request.method == "GET":
            return self._mypermissions(request)
        if path == f"{self.api}/issue" and request.method == "POST":
            return self._create_issue(request)
        comment = re.fullmatch(re.escape(self.api) + r"/issue/([A-Z][A-Z0-9_]*-\d+)/comment", path)
        if comment and request.method == "POST":
            return self._add_comment(request, comment.group(1))
        return self.not_understood(request)

    # --- writes -------------------------------------------------------------------------------------

    def _mypermissions(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        if set(params) - {"projectKey", "permissions"}:
            return self.not_understood(request)
        if self.cloud and not params.get("permissions"):
            return self.error_response(400, "The permissions query parameter is required.")
        project = params.get("projectKey")
        if project is not None and project not in self.projects:
            return self.error_response(404, f"No project could be found with key '{project}'.")
        asked = (
            params.get("permissions", "").split(",") if params.get("permissions") else list(self.permissions)
        )
        names = {"CREATE_ISSUES": ("11", "Create Issues"), "ADD_COMMENTS": ("15", "Add Comments")}
        granted: dict[str, Any] = {}
        for key in asked:
            if key not in names:
                return self.error_response(400, f"Invalid permission key: {key}")
            number, name = names[key]
            granted[key] = {
                "id": number,
                "key": key,
                "name": name,
                "type": "PROJECT",
                "description": f"Ability to {name.lower()}.",
                "havePermission": self.permissions.get(key, False),
            }
        return httpx.Response(200, json={"permissions": granted})

    def _lose_answer(self, response: httpx.Response) -> httpx.Response:
        if self.lose_next_write_answer:
            self.lose_next_write_answer = False
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")
        return response

    def _text_of(self, value: Any) -> str | None:
        """The text of a description or comment body; None when it is not in this flavour's format."""
        if not self.cloud:
            return value if isinstance(value, str) else None
        if not isinstance(value, dict) or value.get("type") != "doc" or value.get("version") != 1:
            return None
        lines = [
            node.get("text", "")
            for paragraph in value.get("content", [])
            for node in paragraph.get("content", [])
            if node.get("type") == "text"
        ]
        return "\n".join(lines)

    def _create_issue(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, dict) or set(body) != {"fields"}:
            return self.not_understood(request)
        if set(fields) - {"project", "issuetype", "summary", "description", "labels"}:
            return self.not_understood(request)
        project = (fields.get("project") or {}).get("key")
        if project not in self.projects:
            return httpx.Response(
                400, json={"errorMessages": [], "errors": {"project": "valid project is required"}}
            )
        if self.write_denied or not self.permissions.get("CREATE_ISSUES"):
            return self.error_response(403, "You do not have permission to create issues in this project.")
        description = self._text_of(fields.get("description"))
        if description is None:
            return httpx.Response(
                400,
                json={
                    "errorMessages": [],
                    "errors": {
                        "description": "Operation value must be an Atlassian Document "
                        "(see the Atlassian Document Format)"
                    },
                },
            )
        issue_type = (fields.get("issuetype") or {}).get("name")
        if issue_type not in ("Task", "Incident"):
            return httpx.Response(
                400, json={"errorMessages": [], "errors": {"issuetype": "Specify a valid issue type"}}
            )
        self.created.append(fields)
        number = 1 + max((key_order(k)[1] for k in self.tickets if k.startswith(f"{project}-")), default=0)
        key = f"{project}-{number}"
        moment = datetime.now(UTC).replace(microsecond=0)
        self.tickets[key] = FakeTicket(
            external_id=key,
            title=str(fields.get("summary", "")),
            description=description,
            updated_at=moment,
            created_at=moment,
            extra={"labels": list(fields.get("labels") or []), "issuetype": issue_type},
        )
        issue_id = str(10000 + number)
        answer = {"id": issue_id, "key": key, "self": f"{self.base_url}{self.api}/issue/{issue_id}"}
        return self._lose_answer(httpx.Response(201, json=answer))

    def _add_comment(self, request: httpx.Request, key: str) -> httpx.Response:
        if key not in self.tickets:
            return self.error_response(404, "Issue does not exist or you do not have permission to see it.")
        if self.write_denied or not self.permissions.get("ADD_COMMENTS"):
            return self.error_response(403, "You do not have the permission to comment on this issue.")
        body = json.loads(request.content or b"{}")
        if not isinstance(body, dict) or set(body) != {"body"} or self._text_of(body["body"]) is None:
            return self.not_understood(request)
        notes = self.comments.setdefault(key, [])
        notes.append(body["body"])
        comment_id = str(10100 + sum(len(c) for c in self.comments.values()))
        answer = {
            "self": f"{self.base_url}{self.api}/issue/{key}/comment/{comment_id}",
            "id": comment_id,
            "body": body["body"],
            "created": jira_time(datetime.now(UTC), self.zone),
        }
        return self._lose_answer(httpx.Response(201, json=answer))

    def _search_path(self) -> str:
        return f"{self.api}/search/jql" if self.cloud else f"{self.api}/search"

    def _authenticated(self, request: httpx.Request) -> bool:
        header = str(request.headers.get("Authorization", ""))
        if self.cloud:
            expected = base64.b64encode(f"{EMAIL}:{API_TOKEN}".encode()).decode()
            return header == f"Basic {expected}"
        return header == f"Bearer {PAT}"

    def _myself(self, request: httpx.Request) -> httpx.Response:
        if request.url.params:
            return self.not_understood(request)
        user: dict[str, Any] = {
            "self": f"{self.base_url}{self.api}/user?accountId=5b10a2844c20165700ede21g",
            "displayName": "Fake Analyst",
            "emailAddress": EMAIL,
            "active": True,
            "timeZone": self.time_zone,
            "locale": "en_US",
        }
        if self.cloud:
            user |= {"accountId": "5b10a2844c20165700ede21g", "accountType": "atlassian"}
        else:
            user |= {"name": "analyst", "key": "JIRAUSER10100"}
        return httpx.Response(200, json=user)

    # --- search -------------------------------------------------------------------------------------

    def _search_params(self, request: httpx.Request) -> dict[str, Any]:
        if request.method == "POST":
            body = json.loads(request.content or b"{}")
            return dict(body) if isinstance(body, dict) else {}
        params: dict[str, Any] = {}
        for name, value in request.url.params.multi_items():
            params[name] = params[name] + "," + value if name == "fields" and name in params else value
        return params

    def _search(self, request: httpx.Request) -> httpx.Response:
        try:
            params = self._search_params(request)
        except ValueError:
            return self.error_response(400, "Unexpected character in the request body")
        allowed = CLOUD_SEARCH_KEYS if self.cloud else DC_SEARCH_KEYS
        unknown = set(params) - allowed
        if unknown:
            return self.not_understood(request)
        fields = params.get("fields") or []
        if isinstance(fields, str):
            fields = [f.strip() for f in fields.split(",") if f.strip()]
        known_fields = {*BASE_FIELDS, "comment", "key", "id", RESOLUTION_FIELD, CI_FIELD, "resolution"}
        if not isinstance(fields, list) or set(fields) - known_fields:
            return self.not_understood(request)
        self.searches.append(params)
        jql = str(params.get("jql") or "")
        try:
            max_results = int(params.get("maxResults", 50))
            matching = self._matching(jql)
        except JqlError as exc:
            return self.error_response(400, str(exc))
        except ValueError:
            return self.error_response(400, "maxResults must be a number")
        if max_results < 1 or max_results > 5000:
            return self.error_response(400, "The maxResults value must be between 1 and 5000.")
        size = min(max_results, self.page_size)
        stuck = self.misbehaviour is Misbehaviour.SAME_PAGE_FOREVER
        no_position = self.misbehaviour is not None and self.misbehaviour.ignores_page_token
        if self.cloud:
            start = 0
            token = params.get("nextPageToken")
            if token and not no_position:
                stored = self.page_tokens.get(str(token))
                if stored is None or stored[0] != jql:
                    return self.error_response(400, "The provided next page token is invalid or expired.")
                start = stored[1]
            chunk = matching[start : start + size]
            body: dict[str, Any] = {"issues": [self._issue(t, fields) for t in chunk]}
            if stuck or start + size < len(matching):
                next_token = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
                self.page_tokens[next_token] = (jql, start + size)
                body |= {"nextPageToken": next_token, "isLast": False}
            else:
                body["isLast"] = True
            return httpx.Response(200, json=body)
        start = int(params.get("startAt", 0))
        first = 0 if no_position else start
        chunk = matching[first : first + size]
        return httpx.Response(
            200,
            json={
                "expand": "schema,names",
                "startAt": start,
                "maxResults": size,
                "total": start + size + 1 if stuck else len(matching),
                "issues": [self._issue(t, fields) for t in chunk],
            },
        )

    def _instant(self, literal: str) -> datetime:
        """A JQL literal as Jira reads it: a wall time in the account's zone (the earlier one on a repeat)."""
        return datetime.strptime(literal, "%Y-%m-%d %H:%M").replace(tzinfo=self.zone, fold=0).astimezone(UTC)

    def _matching(self, jql: str) -> list[FakeTicket]:
        order_match = _ORDER.search(jql)
        where = jql[: order_match.start()] if order_match else jql
        order = order_match.group(1) if order_match else ""
        bound_match = _BOUND.search(where)
        if self.cloud and bound_match is None and not where.strip():
            raise JqlError(UNBOUNDED_MESSAGE)
        tickets = list(self.tickets.values()) if self.browse_permission else []
        if bound_match:
            bound = self._instant(bound_match.group(1))
            if self.misbehaviour is None or not self.misbehaviour.ignores_filter:
                tickets = [t for t in tickets if t.updated_at >= bound]
            where = where[: bound_match.start()] + "TRUE" + where[bound_match.end() :]
        for clause in _clauses(where):
            _check_clause(clause)  # Jira parses the whole query even when no issue is there to match
            tickets = [t for t in tickets if _matches(clause, t)]
        for name, direction in reversed(_order_terms(order)):
            tickets.sort(key=_SORT_KEYS[name], reverse=direction == "DESC")
        return tickets

    # --- rendering ----------------------------------------------------------------------------------

    def _issue(self, ticket: FakeTicket, fields: list[str]) -> dict[str, Any]:
        issue_id = str(10000 + key_order(ticket.external_id)[1])
        rendered = {name: value for name, value in self._fields(ticket).items() if name in fields}
        return {
            "expand": "operations,versionedRepresentations,editmeta,changelog,renderedFields",
            "id": issue_id,
            "self": f"{self.base_url}{self.api}/issue/{issue_id}",
            "key": ticket.external_id,
            "fields": rendered,
        }

    def _rich(self, text: str) -> Any:
        return adf(text) if self.cloud else text

    def _fields(self, ticket: FakeTicket) -> dict[str, Any]:
        extra = ticket.extra
        done = ticket.status.lower() in DONE_STATUSES
        resolved = extra.get("resolved_at") or (ticket.updated_at if done else None)
        description: Any = extra.get("description_raw")
        if description is None:
            description = self._rich(ticket.description) if ticket.description else None
        comments = [*extra.get("comments", [])]
        if ticket.resolution_notes:
            comments.append(ticket.resolution_notes)
        assignee = extra.get("assignee")
        return {
            "summary": ticket.title,
            "description": description,
            "status": {
                "name": ticket.status,
                "statusCategory": {"key": "done" if done else "indeterminate"},
            },
            "priority": {"name": PRIORITY_NAMES.get(ticket.severity, ticket.severity)},
            "assignee": {"displayName": assignee, "active": True} if assignee else None,
            "issuetype": {"name": extra.get("issuetype", "Incident"), "subtask": False},
            "created": jira_time(ticket.created_at, self.zone),
            "updated": jira_time(ticket.updated_at, self.zone),
            "resolutiondate": jira_time(resolved, self.zone) if resolved else None,
            "components": [{"name": name} for name in extra.get("components", [])],
            "labels": list(extra.get("labels", [])),
            "resolution": {"name": "Done"} if done else None,
            "comment": {
                "comments": [
                    {"body": self._rich(body), "created": jira_time(ticket.updated_at, self.zone)}
                    for body in comments
                ],
                "maxResults": len(comments),
                "total": len(comments),
                "startAt": 0,
            },
            RESOLUTION_FIELD: self._rich(ticket.resolution_notes) if ticket.resolution_notes else None,
            CI_FIELD: {"value": extra["ci"]} if extra.get("ci") else None,
        }


_SORT_KEYS = {
    "updated": lambda t: t.updated_at,
    "created": lambda t: t.created_at,
    "key": lambda t: key_order(t.external_id),
}


def _order_terms(order: str) -> list[tuple[str, str]]:
    terms: list[tuple[str, str]] = []
    for part in filter(None, (p.strip() for p in order.split(","))):
        words = part.split()
        name, direction = words[0].lower(), (words[1].upper() if len(words) > 1 else "ASC")
        if name not in _SORT_KEYS or direction not in ("ASC", "DESC") or len(words) > 2:
            raise JqlError(f"Error in the JQL Query: Not able to sort using field '{words[0]}'.")
        terms.append((name, direction))
    return terms


def _clauses(where: str) -> list[str]:
    """The AND-ed clauses, parentheses removed: enough JQL for what a connector's scope sends."""
    text = where.strip()
    if text.count("(") != text.count(")"):
        raise JqlError("Error in the JQL Query: Expecting ')' before the end of the query.")
    parts = re.split(r"\s+AND\s+", text, flags=re.IGNORECASE) if text else []
    clauses: list[str] = []
    for part in parts:
        clause = part.strip()
        while clause.startswith("(") and not _PROJECT_IN.match(clause):
            clause = clause[1:].strip()
        while clause.endswith(")") and clause.count(")") > clause.count("("):
            clause = clause[:-1].strip()
        if clause.upper() != "TRUE":
            clauses.append(clause)
    return clauses


def _unquote(value: str) -> str:
    return value[1:-1] if value.startswith('"') and value.endswith('"') else value


def _check_clause(clause: str) -> None:
    _matches(clause, FakeTicket("X-1", "", "", datetime.now(UTC), datetime.now(UTC)))


def _matches(clause: str, ticket: FakeTicket) -> bool:
    project = ticket.external_id.rpartition("-")[0]
    in_match = _PROJECT_IN.match(clause)
    if in_match:
        keys = {_unquote(v.strip()).upper() for v in in_match.group(1).split(",") if v.strip()}
        return project.upper() in keys
    equals = _EQUALS.match(clause)
    if equals is None:
        raise JqlError(
            f"Error in the JQL Query: Expecting either a value, list or function but got '{clause}'."
        )
    name, operator, raw = equals.group(1).lower(), equals.group(2), _unquote(equals.group(3))
    if equals.group(1).lower() == "labels":  # labels = "x": the issue carries that label
        has = raw in ticket.extra.get("labels", [])
        return has if operator == "=" else not has
    values = {
        "project": project,
        "status": ticket.status,
        "issuetype": str(ticket.extra.get("issuetype", "Incident")),
    }
    if name not in values:
        raise JqlError(f"Field '{equals.group(1)}' does not exist or you do not have permission to view it.")
    actual = values[name]
    same = actual.lower() == raw.lower()
    return same if operator == "=" else not same
