"""A local fake ServiceDesk Plus (v3 API), on-premises or Cloud, answering in the real shapes.

On-premises checks the ``authtoken`` header; Cloud serves a Zoho accounts token endpoint (refresh-token grant
in the form body; refusals answered as HTTP 200 ``{"error": "invalid_code"}`` as Zoho does) and checks
``Authorization: Zoho-oauthtoken``, with paths under ``/app/<portal>``. Lists read ``input_data`` (a JSON
string), apply ``search_criteria`` on ``last_updated_time``, sort, page with ``start_index``/``row_count``
and answer ``response_status`` as a list; single records answer it as an object.

Writes (issue 13): ``POST /api/v3/requests`` and ``POST /api/v3/requests/{id}/notes`` read the form field
``input_data`` (``{"request": {...}}`` / ``{"request_note": {...}}``), answer 201 with the record and a
success ``response_status`` object, and keep what was written (``created``, ``notes``). ``write_denied``
answers 403 with the failure envelope (message code 4002); ``lose_next_write_answer`` carries out the next
write and drops the connection.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs

import httpx

from connectors.base import ConnectorSettings
from connectors.testing.fake_system import FakeSystem, FakeTicket, Misbehaviour

API_KEY = "sdp-technician-key-1234"
CLIENT_ID = "1000.CLIENTID"
CLIENT_SECRET = "zoho-client-secret-5678"
REFRESH_TOKEN = "1000.refresh-token-9abc"
ACCOUNTS_URL = "https://accounts.zoho.com"
CLOUD_URL = "https://sdpondemand.manageengine.com"
V3_ACCEPT = "application/vnd.manageengine.sdp.v3+json"

_SEVERITY_NAMES = {"1": "Urgent", "2": "High", "3": "Medium", "4": "Low", "5": "Low"}


def ms(moment: datetime) -> str:
    return str(round(moment.timestamp() * 1000))


def time_object(moment: datetime | None) -> dict[str, str] | None:
    if moment is None:
        return None
    return {"display_value": moment.strftime("%b %d, %Y %I:%M %p"), "value": ms(moment)}


class FakeServiceDeskPlus(FakeSystem):
    connector_type: ClassVar[str] = "servicedesk_plus"
    base_url: str = "https://sdp.fake.example.com"

    def __init__(self, flavour: str = "onprem", portal: str = "itdesk") -> None:
        super().__init__()
        assert flavour in ("onprem", "cloud")
        self.flavour = flavour
        self.portal = portal
        self.page_size = 100
        self.access_tokens: set[str] = set()
        self.tokens_issued = 0
        self.token_lifetime = 3600
        self.resolution_calls = 0
        self.write_denied = False
        self.lose_next_write_answer = False
        self.created: list[dict[str, Any]] = []  # the "request" objects posted, in order
        self.notes: dict[str, list[dict[str, Any]]] = {}  # request id -> "request_note" objects posted
        self._next_id = 200_001

    # --- what tests call ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return CLOUD_URL if self.flavour == "cloud" else self.base_url

    @property
    def prefix(self) -> str:
        return f"/app/{self.portal}" if self.flavour == "cloud" else ""

    def settings(self, *, good_credentials: bool = True, **options: Any) -> ConnectorSettings:
        if self.flavour == "cloud":
            secrets = {
                "client_secret": CLIENT_SECRET,
                "refresh_token": REFRESH_TOKEN if good_credentials else "1000.revoked",
            }
            all_options = {"portal": self.portal, "data_centre": "US", "client_id": CLIENT_ID, **options}
            return ConnectorSettings("Fake SDP Cloud", self.url, "zoho_oauth", all_options, secrets)
        secrets = {"api_key": API_KEY if good_credentials else "wrong-key"}
        return ConnectorSettings("Fake SDP", self.url, "authtoken", dict(options), secrets)

    def new_ticket(self, number: int, updated_at: datetime) -> FakeTicket:
        """Request ids are numbers in ServiceDesk Plus."""
        ticket = super().new_ticket(number, updated_at)
        ticket.external_id = str(100_000 + number)
        return ticket

    def expire_access_tokens(self) -> None:
        """Zoho revokes access tokens early sometimes; the next API call must refresh once."""
        self.access_tokens.clear()

    def is_ticket_query(self, request: httpx.Request) -> bool:
        return request.method == "GET" and request.url.path == f"{self.prefix}/api/v3/requests"

    def query_since(self, request: httpx.Request) -> datetime | None:
        list_info = self._list_info(request)
        for criterion in self._criteria(list_info.get("search_criteria")):
            if criterion.get("field") == "last_updated_time":
                return datetime.fromtimestamp(int(self._criterion_value(criterion)) / 1000, UTC)
        return None

    # --- the API -----------------------------------------------------------------------------------------

    def error_response(
        self, status: int, message: str, headers: Mapping[str, str] | None = None, *, code: int = 4000
    ) -> httpx.Response:
        body = {
            "response_status": {
                "status_code": 4000,
                "messages": [{"status_code": code, "type": "failed", "message": message}],
                "status": "failed",
            }
        }
        return httpx.Response(status, json=body, headers=dict(headers or {}))

    def route(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if self.flavour == "cloud" and f"{url.scheme}://{url.host}" == ACCOUNTS_URL:
            if request.method == "POST" and url.path == "/oauth/v2/token":
                return self._token(request)
            return self.not_understood(request)
        if f"{url.scheme}://{url.host}" != self.url:
            return self.not_understood(request)
        if request.headers.get("Accept") != V3_ACCEPT:
            return self.not_understood(request)
        path = url.path
        if not path.startswith(f"{self.prefix}/api/v3/"):
            return self.error_response(404, "Invalid URL", code=4007)
        denied = self._check_auth(request)
        if denied is not None:
            return denied
        if request.method == "GET" and path == f"{self.prefix}/api/v3/requests":
            return self._list(request)
        match = re.fullmatch(rf"{re.escape(self.prefix)}/api/v3/requests/(\d+)/resolutions", path)
        if request.method == "GET" and match:
            return self._resolution(match.group(1))
        if request.method == "POST" and path == f"{self.prefix}/api/v3/requests":
            return self._write(request, None)
        notes = re.fullmatch(rf"{re.escape(self.prefix)}/api/v3/requests/(\d+)/notes", path)
        if request.method == "POST" and notes:
            return self._write(request, notes.group(1))
        return self.not_understood(request)

    def _write(self, request: httpx.Request, request_id: str | None) -> httpx.Response:
        """Add a request (``request_id`` None) or a note to one, from the form field ``input_data``."""
        if not request.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return self.not_understood(request)
        form = parse_qs(request.content.decode())
        try:
            input_data = json.loads(form["input_data"][0])
        except (KeyError, ValueError):
            return self.error_response(400, "input_data is missing or not JSON", code=4001)
        if self.write_denied:
            return self.error_response(403, "Not allowed to perform this operation", code=4002)
        success = {"status_code": 2000, "status": "success"}
        if request_id is None:
            record = input_data.get("request") if isinstance(input_data, dict) else None
            if not isinstance(record, dict) or not record.get("subject"):
                return self.error_response(400, "subject: mandatory field is missing", code=4012)
            new_id = str(self._next_id)
            self._next_id += 1
            self.created.append(record)
            moment = datetime.now(UTC).replace(microsecond=0)
            self.tickets[new_id] = FakeTicket(
                new_id, record["subject"], record.get("description", ""), moment, moment
            )
            answer = {"request": self.render(self.tickets[new_id]), "response_status": success}
        else:
            note = input_data.get("request_note") if isinstance(input_data, dict) else None
            if not isinstance(note, dict) or not note.get("description"):
                return self.error_response(400, "description: mandatory field is missing", code=4012)
            if request_id not in self.tickets:
                return self.error_response(404, "Request not found", code=4007)
            self.notes.setdefault(request_id, []).append(note)
            note_id = str(300_000 + sum(len(n) for n in self.notes.values()))
            answer = {"request_note": {"id": note_id, **note}, "response_status": success}
        response = httpx.Response(201, json=answer)
        if self.lose_next_write_answer:
            self.lose_next_write_answer = False
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")
        return response

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {key: values[0] for key, values in parse_qs(request.content.decode()).items()}
        if "refresh_token" in request.url.params or "client_secret" in request.url.params:
            return self.not_understood(request)  # secrets belong in the body, never in a URL
        if form.get("grant_type") != "refresh_token":
            return httpx.Response(200, json={"error": "unsupported_grant_type"})
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return httpx.Response(200, json={"error": "invalid_client"})
        if form.get("refresh_token") != REFRESH_TOKEN:
            return httpx.Response(200, json={"error": "invalid_code"})
        self.tokens_issued += 1
        token = f"1000.access-{self.tokens_issued}"
        self.access_tokens.add(token)
        return httpx.Response(
            200,
            json={
                "access_token": token,
                "api_domain": "https://www.zohoapis.com",
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
            },
        )

    def _check_auth(self, request: httpx.Request) -> httpx.Response | None:
        if self.flavour == "onprem":
            if request.headers.get("authtoken") == API_KEY:
                return None
            return self.error_response(401, "Invalid API key (authtoken)", code=4001)
        header = request.headers.get("Authorization", "")
        if (
            header.startswith("Zoho-oauthtoken ")
            and header.removeprefix("Zoho-oauthtoken ") in self.access_tokens
        ):
            return None
        return self.error_response(401, "Invalid or expired OAuth token", code=4001)

    @staticmethod
    def _list_info(request: httpx.Request) -> dict[str, Any]:
        raw = request.url.params.get("input_data")
        if raw is None:
            return {}
        return dict(json.loads(raw).get("list_info") or {})

    @staticmethod
    def _criteria(search_criteria: Any) -> list[dict[str, Any]]:
        if search_criteria is None:
            return []
        criteria = search_criteria if isinstance(search_criteria, list) else [search_criteria]
        flat: list[dict[str, Any]] = []
        for criterion in criteria:
            flat.append(criterion)
            flat.extend(FakeServiceDeskPlus._criteria(criterion.get("children")))
        return flat

    @staticmethod
    def _criterion_value(criterion: Mapping[str, Any]) -> str:
        value = criterion["value"] if "value" in criterion else (criterion.get("values") or [None])[0]
        if isinstance(value, Mapping):
            value = value.get("value")
        return str(value)

    def _list(self, request: httpx.Request) -> httpx.Response:
        try:
            list_info = self._list_info(request)
        except (json.JSONDecodeError, AttributeError):
            return self.error_response(400, "Invalid input_data", code=4003)
        tickets = sorted(self.tickets.values(), key=lambda t: (len(t.external_id), t.external_id))
        ignores_filter = self.misbehaviour is not None and self.misbehaviour.ignores_filter
        criteria = [] if ignores_filter else self._criteria(list_info.get("search_criteria"))
        for criterion in criteria:
            if criterion.get("field") != "last_updated_time":
                return self.error_response(400, f"Invalid field {criterion.get('field')}", code=4001)
            bound = int(self._criterion_value(criterion))
            condition = criterion.get("condition")
            if condition in ("greater or equal", "gte"):
                tickets = [t for t in tickets if int(ms(t.updated_at)) >= bound]
            elif condition in ("greater than", "gt"):
                tickets = [t for t in tickets if int(ms(t.updated_at)) > bound]
            else:
                return self.error_response(400, f"Invalid condition {condition}", code=4001)
        sort_field = list_info.get("sort_field")
        if sort_field == "last_updated_time":  # stable: ties keep the id order, as the server's index does
            tickets.sort(key=lambda t: t.updated_at, reverse=list_info.get("sort_order") == "desc")
        elif sort_field is not None:
            return self.error_response(400, f"Cannot sort by {sort_field}", code=4001)
        row_count = min(int(list_info.get("row_count", 10)), self.page_size)  # the server caps, quietly
        start_index = int(list_info.get("start_index", 1))
        stuck = self.misbehaviour is Misbehaviour.SAME_PAGE_FOREVER
        first = (
            0 if self.misbehaviour is not None and self.misbehaviour.ignores_page_token else start_index - 1
        )
        window = tickets[first : first + row_count]
        body = {
            "requests": [self.render(ticket) for ticket in window],
            "list_info": {
                "has_more_rows": stuck or first + row_count < len(tickets),
                "start_index": start_index,
                "row_count": len(window),
                "sort_field": sort_field or "created_time",
                "sort_order": list_info.get("sort_order", "asc"),
            },
            "response_status": [{"status_code": 2000, "status": "success"}],
        }
        return httpx.Response(200, json=body)

    def _resolution(self, request_id: str) -> httpx.Response:
        self.resolution_calls += 1
        ticket = self.tickets.get(request_id)
        if ticket is None:
            return self.error_response(404, "Request not found", code=4007)
        body = {
            "resolution": {
                "content": f"<p>{ticket.resolution_notes}</p>" if ticket.resolution_notes else None,
                "submitted_by": {"name": "Technician"},
            },
            "response_status": {"status_code": 2000, "status": "success"},
        }
        return httpx.Response(200, json=body)

    def render(self, ticket: FakeTicket) -> dict[str, Any]:
        extra = ticket.extra
        return {
            "id": ticket.external_id,
            "display_id": ticket.external_id,
            "subject": ticket.title,
            "description": f"<div>{ticket.description}</div>",
            "status": {"name": ticket.status, "id": "1"},
            "priority": {
                "name": extra.get("priority", _SEVERITY_NAMES.get(ticket.severity, ticket.severity))
            },
            "technician": {"name": extra["assignee"], "email_id": "tech@example.com"}
            if "assignee" in extra
            else None,
            "group": {"name": extra.get("group", "Service Desk")},
            "category": {"name": extra.get("category", "Network")},
            "subcategory": {"name": extra["subcategory"]} if "subcategory" in extra else None,
            "request_type": {"name": extra.get("request_type", "Incident")},
            "created_time": time_object(ticket.created_at),
            "last_updated_time": time_object(ticket.updated_at),
            "resolved_time": time_object(extra.get("resolved_at")),
        }
