"""ManageEngine ServiceDesk Plus (on-premises and Cloud) through the v3 REST API.

The API in brief (verified against ManageEngine's own Ansible collection
``ManageEngine/manageengine.sdp_cloud`` and the v3 API pages, see the report of issue 5):

- ``GET {prefix}/api/v3/requests?input_data={"list_info": {...}}``: ``input_data`` is a JSON *string* in the
  query; the ``Accept: application/vnd.manageengine.sdp.v3+json`` header selects v3. ``row_count`` is at most
  100; we page while ``list_info.has_more_rows`` is true.
- On-premises authenticates with an ``authtoken: <technician key>`` header. Cloud uses Zoho OAuth: a refresh
  token is exchanged at the data centre's accounts server (``{accounts}/oauth/v2/token``,
  ``grant_type=refresh_token``) for an access token valid about an hour, sent as
  ``Authorization: Zoho-oauthtoken <access>``. Zoho allows only ~10 access tokens per refresh token per ten
  minutes, so the token is cached for the connector's life and refreshed only near its expiry or once on a
  401. Cloud paths carry the portal: ``/app/<portal>/api/v3/...``.
- ``response_status`` is an *object* on single-record answers but a *list* on list answers; failures say
  ``status_code: 4000`` with ``messages`` (each with its own ``status_code`` such as 4001/4002/4012 and a
  ``message``). The v3 API also reports some failures inside an HTTP 200, so the envelope is always checked.
- Times are ``{"display_value": "...", "value": "<epoch milliseconds as a string>"}``.

Incremental sync: ``search_criteria`` ``last_updated_time`` "greater or equal" the cursor (epoch ms), sorted
by ``last_updated_time`` ascending (a sortable field per ManageEngine's own list of request sort fields).
Pages are *keyset* pages: each page restarts from the last seen update time and skips only the records at
exactly that millisecond already emitted in this run, so a record that is updated mid-sync (and so moves to
the end of the order) cannot shift an unread record below the offset and lose it, as plain ``start_index``
paging would. The one residual race (a record at exactly the floor millisecond updated mid-run) is documented
at :class:`RequestsStream`.

Writing (issue 13): ``POST {prefix}/api/v3/requests`` creates a request and ``POST .../requests/{id}/notes``
adds a note, each with a form field ``input_data`` holding ``{"request": {...}}`` / ``{"request_note":
{...}}`` (the key is ``request_note``, as the v3 pages and clients show, not ``note``); the answer echoes the
record with its ``id``. There is no API to ask what a technician may do without doing it, so
:meth:`ServiceDeskPlusConnector.write_check` answers "unknown". Nor is there a field for an external id we
could search before creating: a create whose answer is lost is not sent again by the client (it is not
idempotent) and raises, so the analyst sees the failure and can look before trying again; a second attempt
may then create a second request.

The resolution text lives at ``/api/v3/requests/{id}/resolutions``: one extra call per ticket, so it is an
option, off by default (a 5,000-ticket first sync costs 5,000 more requests, against SDP Cloud's API quota).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx

from connectors.base import (
    AuthMode,
    ClientOptions,
    ConfigField,
    Connector,
    ConnectorKind,
    ConnectorSettings,
    ConnectorSpec,
    CreatedTicket,
    Cursor,
    FieldType,
    HttpStream,
    NewIncident,
    PageRequest,
    Reading,
    StreamPage,
    SyncRecord,
    WorkNote,
    WriteAccess,
    WriteCheck,
)
from connectors.errors import (
    AuthenticationError,
    BadResponseError,
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RedirectRefusedError,
    RequestRejectedError,
)
from connectors.http import HttpClient, default_error_text
from connectors.oauth import IssuedToken, TokenCache
from connectors.oauth_consent import providers as consent_providers
from connectors.oauth_consent.connector import CONSENT_AUTH_MODE, consent_auth, consent_fields, consent_mode
from core.importing.mapping import parse_kind, parse_severity, text_value
from core.matching.text import html_to_text, looks_like_html
from core.store.tickets import TicketValues

SOURCE_SYSTEM = "servicedesk_plus"
V3_ACCEPT = "application/vnd.manageengine.sdp.v3+json"
MAX_ROW_COUNT = 100  # the v3 API's ceiling for list_info.row_count
TOKEN_MARGIN_SECONDS = 120.0  # refresh a little before Zoho says the access token expires

# Data centre -> (Zoho accounts server, ServiceDesk Plus Cloud API domain). From ManageEngine's "Data
# Centres" page for the SDP Cloud v3 API and Zoho's multi-DC OAuth pages. Canada's accounts server is
# accounts.zohocloud.ca in Zoho's own tables (ManageEngine's Ansible collection says accounts.zoho.ca).
DATA_CENTRES: dict[str, tuple[str, str]] = {
    "US": ("https://accounts.zoho.com", "https://sdpondemand.manageengine.com"),
    "EU": ("https://accounts.zoho.eu", "https://sdpondemand.manageengine.eu"),
    "IN": ("https://accounts.zoho.in", "https://sdpondemand.manageengine.in"),
    "CN": ("https://accounts.zoho.com.cn", "https://servicedeskplus.cn"),
    "AU": ("https://accounts.zoho.com.au", "https://servicedeskplus.net.au"),
    "JP": ("https://accounts.zoho.jp", "https://servicedeskplus.jp"),
    "CA": ("https://accounts.zohocloud.ca", "https://servicedeskplus.ca"),
    "UK": ("https://accounts.zoho.uk", "https://servicedeskplus.uk"),
    "SA": ("https://accounts.zoho.sa", "https://servicedeskplus.sa"),
}
_DC_LABELS = {
    "US": "United States (.com)",
    "EU": "Europe (.eu)",
    "IN": "India (.in)",
    "CN": "China (.com.cn)",
    "AU": "Australia (.com.au)",
    "JP": "Japan (.jp)",
    "CA": "Canada (zohocloud.ca)",
    "UK": "United Kingdom (.uk)",
    "SA": "Saudi Arabia (.sa)",
}

# The fields a list call returns are a default subset; ask for what we normalise.
FIELDS_REQUIRED = (
    "id",
    "display_id",
    "subject",
    "description",
    "short_description",
    "status",
    "priority",
    "technician",
    "group",
    "category",
    "subcategory",
    "item",
    "request_type",
    "site",
    "created_time",
    "last_updated_time",
    "resolved_time",
    "completed_time",
)

AUTH_ONPREM = "authtoken"
AUTH_CLOUD = "zoho_oauth"
AUTH_CLOUD_CONSENT = CONSENT_AUTH_MODE  # Cloud, signed in through the browser (issue 17)
CLOUD_MODES = (AUTH_CLOUD, AUTH_CLOUD_CONSENT)
WRITE_HINT = (
    "the technician needs the role to add requests and notes (on Cloud, an OAuth scope with "
    "SDPOnDemand.requests.CREATE and .UPDATE, or .ALL)"
)

SPEC = ConnectorSpec(
    type=SOURCE_SYSTEM,
    display_name="ManageEngine ServiceDesk Plus",
    kind=ConnectorKind.TICKETING,
    auth_modes=(
        AuthMode(AUTH_ONPREM, "On-premises: technician API key", "Sent as the authtoken header."),
        AuthMode(
            AUTH_CLOUD,
            "Cloud: Zoho OAuth (refresh token)",
            "A Self Client in the Zoho API console with the scope SDPOnDemand.requests.READ.",
        ),
        consent_mode(
            "Cloud: sign in in the browser. Register a 'Mobile / Desktop' client in the Zoho API console "
            "with the redirect URL below; it asks for SDPOnDemand.requests.ALL."
        ),
    ),
    fields=(
        ConfigField(
            "portal",
            "Portal name",
            required=False,
            help="Cloud: the name after /app/ in your ServiceDesk Plus address. On-premises: only for "
            "multi-portal (MSP) installs; leave empty otherwise.",
            placeholder="itdesk",
            page="where",
        ),
        ConfigField(
            "data_centre",
            "Zoho data centre",
            FieldType.CHOICE,
            default="US",
            choices=tuple(_DC_LABELS.items()),
            help="Where your Cloud account lives; it picks the accounts server and the default API address.",
            auth_modes=CLOUD_MODES,
            page="auth",
        ),
        ConfigField(
            "api_key",
            "Technician API key",
            FieldType.SECRET,
            help="Generated under the technician's profile (Generate API Key).",
            auth_modes=(AUTH_ONPREM,),
            page="auth",
        ),
        ConfigField("client_id", "Client ID", auth_modes=(AUTH_CLOUD,), page="auth"),
        ConfigField(
            "client_secret", "Client secret", FieldType.SECRET, auth_modes=(AUTH_CLOUD,), page="auth"
        ),
        ConfigField(
            "refresh_token",
            "Refresh token",
            FieldType.SECRET,
            help="From the Self Client's grant code exchanged with access_type=offline.",
            auth_modes=(AUTH_CLOUD,),
            page="auth",
        ),
        *consent_fields(secret_required=True, secret_help="Zoho asks for it even with PKCE."),
        ConfigField(
            "fetch_resolutions",
            "Fetch resolutions",
            FieldType.BOOLEAN,
            required=False,
            default=False,
            help="One extra request per ticket (GET /requests/{id}/resolutions): a first sync of 5,000 "
            "tickets makes 5,000 more calls against your API quota. Resolutions are what matching learns "
            "from, so turn it on if the quota allows.",
        ),
        ConfigField(
            "write_back",
            "Post approved runbooks to the ticket",
            FieldType.BOOLEAN,
            required=False,
            default=False,
            help="When an analyst approves a runbook for a synced request, add it as a note hidden from "
            "the requester (title, link, confidence, who approved). On Cloud the OAuth scope must allow "
            "updates.",
        ),
        ConfigField(
            "create_template",
            "Template for new requests",
            required=False,
            placeholder="Default Request",
            help="The request template 'Create incident' from the Alerts page uses; empty: the default.",
        ),
    ),
    timestamp_precision=timedelta(milliseconds=1),
    description="Requests from ServiceDesk Plus on-premises or Cloud (v3 API), incrementally by last update.",
    docs_url="https://www.manageengine.com/products/service-desk/sdpod-v3-api/requests/request.html",
)


# --------------------------------------------------------------------------------------------------------
# Response shapes
# --------------------------------------------------------------------------------------------------------


def _status_entries(body: Any) -> list[Mapping[str, Any]]:
    """``response_status`` as a list: an object on single-record answers, a list on list answers."""
    if not isinstance(body, Mapping):
        return []
    status = body.get("response_status")
    if isinstance(status, Mapping):
        return [status]
    if isinstance(status, list):
        return [entry for entry in status if isinstance(entry, Mapping)]
    return []


def _message_texts(entry: Mapping[str, Any]) -> list[str]:
    texts: list[str] = []
    for message in entry.get("messages") or ():
        if not isinstance(message, Mapping):
            continue
        text = str(message.get("message") or "").strip()
        fields = message.get("fields") or ([message["field"]] if message.get("field") else [])
        code = message.get("status_code")
        if fields and isinstance(fields, list):
            field_names = ", ".join(str(f) for f in fields)
            text = f"{field_names}: {text}" if text else f"fields {field_names}"
        if code is not None:
            text = f"{text} ({code})" if text else f"status {code}"
        if text:
            texts.append(text)
    return texts


def _failed(entry: Mapping[str, Any]) -> bool:
    code = entry.get("status_code")
    try:
        return int(code) >= 4000 if code is not None else entry.get("status") == "failed"
    except (TypeError, ValueError):
        return entry.get("status") == "failed"


def sdp_error_text(response: httpx.Response) -> str:
    """The server's own message from a v3 failure envelope, whatever the shape of ``response_status``."""
    try:
        body = response.json()
    except ValueError:
        return default_error_text(response)
    texts = [text for entry in _status_entries(body) for text in _message_texts(entry)]
    if texts:
        return "; ".join(texts)
    if isinstance(body, Mapping) and isinstance(body.get("error"), str):  # Zoho accounts server
        return str(body["error"])
    return default_error_text(response)


def epoch_ms_value(value: Any) -> datetime | None:
    """An SDP time object (``{"display_value", "value": "<epoch ms>"}``) or bare epoch ms as aware UTC."""
    if isinstance(value, Mapping):
        value = value.get("value")
    if value in (None, ""):
        return None
    try:
        millis = int(str(value).strip())
    except ValueError:
        raise ValueError(f"not epoch milliseconds: {value!r}") from None
    return datetime.fromtimestamp(millis / 1000, UTC)


def to_epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def sdp_severity(priority_name: str | None) -> str | None:
    """Our severity from an SDP priority name: the words matter ("3 - High" is high, not the third level)."""
    if not priority_name:
        return None
    words = priority_name.strip()
    if words[:1].isdigit() and "-" in words:
        words = words.split("-", 1)[1].strip()
    if words.casefold() == "normal":
        return "medium"
    return parse_severity(words)


def _name(value: Any) -> str | None:
    return text_value(value)


# --------------------------------------------------------------------------------------------------------
# The connector
# --------------------------------------------------------------------------------------------------------


class ServiceDeskPlusConnector(Connector):
    spec = SPEC

    def __init__(self, settings: ConnectorSettings, http: HttpClient) -> None:
        super().__init__(settings, http)
        if settings.auth_mode not in (AUTH_ONPREM, *CLOUD_MODES):
            raise ConfigurationError(settings.name, f"unknown auth mode {settings.auth_mode!r}")
        portal = str(settings.option("portal", "")).strip().strip("/")
        if settings.auth_mode in CLOUD_MODES and not portal:
            raise ConfigurationError(
                settings.name, "the Cloud portal name is required (the name after /app/)"
            )
        self._prefix = f"/app/{portal}" if portal else ""
        self._portal = portal
        # Zoho allows ~10 access tokens per refresh token per ten minutes: keep one for the connector's life.
        self.oauth_tokens = TokenCache(self._refresh_access_token, margin=TOKEN_MARGIN_SECONDS)
        self._consent = (
            consent_auth(settings, self.consent_provider(settings), scheme="Zoho-oauthtoken")
            if settings.auth_mode == AUTH_CLOUD_CONSENT
            else None
        )

    # --- construction ----------------------------------------------------------------------------------

    @classmethod
    def client_options(cls, settings: ConnectorSettings) -> ClientOptions:
        """The v3 media type and SDP's error reader (auth is per request: the OAuth token changes), and the
        address: on Cloud an empty URL means the data centre's API domain."""
        return ClientOptions(
            headers={"Accept": V3_ACCEPT}, error_text=sdp_error_text, base_url=api_base_url(settings)
        )

    def already_stored(self, ticket: TicketValues, cursor: Cursor) -> bool:
        """Only the very record that set the cursor: SDP ids are numbers (so "10" < "9" as strings) and its
        order among records updated in the same millisecond is the server's, not by id."""
        return (
            cursor.updated_at is not None
            and ticket.updated_at == cursor.updated_at
            and ticket.external_id == cursor.last_id
        )

    # --- auth ------------------------------------------------------------------------------------------

    def _accounts_url(self) -> str:
        return _accounts_url(self.settings)

    @classmethod
    def consent_provider(cls, settings: ConnectorSettings) -> consent_providers.Provider:
        """Zoho Accounts of the configured data centre (the redirect may name the user's own)."""
        return consent_providers.zoho(_accounts_url(settings))

    async def _refresh_access_token(self, _last_refresh_token: str | None) -> IssuedToken:
        """Exchange the configured refresh token (form body, never the URL) for an access token; Zoho answers
        some refusals with HTTP 200 and ``{"error": "invalid_code"}``, so the body decides, not the status."""
        url = f"{self._accounts_url()}/oauth/v2/token"
        form = {
            "grant_type": "refresh_token",
            "client_id": str(self.settings.option("client_id", "")),
            "client_secret": self.settings.secret("client_secret"),
            "refresh_token": self.settings.secret("refresh_token"),
        }
        if not form["client_id"]:
            raise ConfigurationError(self.name, "the Zoho client ID is not set")
        try:
            response = await self.http.request("POST", url, data=form, headers={"Accept": "application/json"})
        except RedirectRefusedError:
            raise  # says where it pointed; not a verdict on the credentials
        except RequestRejectedError as exc:
            if "too many requests" in exc.server_message.lower():
                raise RateLimitedError(
                    self.name,
                    method="POST",
                    path=url,
                    status=exc.status,
                    server_message=exc.server_message,
                    hint="Zoho limits access tokens per refresh token; wait ten minutes",
                ) from exc
            raise AuthenticationError(
                self.name,
                method="POST",
                path=url,
                status=exc.status,
                server_message=exc.server_message,
                hint="authentication failed: Zoho refused the OAuth client or refresh token",
            ) from exc
        body = self.http.json_of(response, "POST", url)
        token = body.get("access_token") if isinstance(body, Mapping) else None
        if not isinstance(token, str) or not token:
            error = (
                str(body.get("error") or "no access_token") if isinstance(body, Mapping) else "not an object"
            )
            raise AuthenticationError(
                self.name,
                method="POST",
                path=url,
                status=response.status_code,
                server_message=error,
                hint="authentication failed: check the client, the data centre, or make a new refresh token",
            )
        try:
            lifetime = float(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        return IssuedToken(token, lifetime)

    async def _auth_headers(self) -> dict[str, str]:
        if self.settings.auth_mode == AUTH_ONPREM:
            return {"authtoken": self.settings.secret("api_key")}
        if self._consent is not None:
            return {}  # the auth flow adds Zoho-oauthtoken and renews it
        return {"Authorization": f"Zoho-oauthtoken {await self.oauth_tokens.token()}"}

    async def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET with auth, the body read and its failure envelope checked."""
        response = await self._send_get(path, params)
        return self._body(response, path)

    def _body(self, response: httpx.Response, path: str) -> Any:
        body = self.http.json_of(response, "GET", path)
        self._raise_for_envelope(body, response.status_code, path)
        return body

    async def _send_get(self, path: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        """GET with auth; on Cloud a 401 refreshes the access token once (it may have been revoked early)."""
        headers = await self._auth_headers()  # a refused refresh token is final: not inside the retry
        try:
            return await self.http.request("GET", path, params=params, headers=headers, auth=self._consent)
        except AuthenticationError as exc:
            if self._consent is not None:
                raise  # the auth flow renewed once already
            if self.settings.auth_mode == AUTH_ONPREM:
                raise AuthenticationError(
                    self.name,
                    method=exc.method,
                    path=exc.path,
                    status=exc.status,
                    server_message=exc.server_message,
                    hint="the technician API key was refused or has expired; generate a new one",
                ) from exc
            self.oauth_tokens.invalidate()
            return await self.http.request("GET", path, params=params, headers=await self._auth_headers())

    def _raise_for_envelope(self, body: Any, status: int, path: str, method: str = "GET") -> None:
        """A success status whose ``response_status`` says failed is a refusal, not data."""
        failed = [entry for entry in _status_entries(body) if _failed(entry)]
        if not failed:
            return
        message = "; ".join(text for entry in failed for text in _message_texts(entry)) or "status failed"
        codes = {
            m.get("status_code") for e in failed for m in e.get("messages") or () if isinstance(m, Mapping)
        }
        error_type = PermissionDeniedError if 4002 in codes else RequestRejectedError
        raise error_type(self.name, method=method, path=path, status=status, server_message=message)

    # --- writes ----------------------------------------------------------------------------------------

    can_write = True

    async def write_check(self) -> WriteCheck:
        """ServiceDesk Plus cannot tell what a technician may do without doing it."""
        return WriteCheck(
            WriteAccess.UNKNOWN,
            f"ServiceDesk Plus cannot say without writing; the first write will tell ({WRITE_HINT})",
        )

    async def _post(self, path: str, input_data: Mapping[str, Any]) -> Mapping[str, Any]:
        """A v3 write: ``input_data`` as a form field, never retried on an answer that may come after the
        write happened; the failure envelope checked like a read's. A Cloud 401 renews the token once (a
        401 means nothing was written)."""
        form = {"input_data": json.dumps(input_data, separators=(",", ":"))}
        try:
            response = await self.http.request(
                "POST",
                path,
                data=form,
                headers=await self._auth_headers(),
                auth=self._consent,
                idempotent=False,
            )
        except AuthenticationError:
            if self.settings.auth_mode == AUTH_ONPREM or self._consent is not None:
                raise
            self.oauth_tokens.invalidate()
            response = await self.http.request(
                "POST", path, data=form, headers=await self._auth_headers(), idempotent=False
            )
        except PermissionDeniedError as exc:
            raise PermissionDeniedError(
                self.name,
                method=exc.method,
                path=exc.path,
                status=exc.status,
                server_message=exc.server_message,
                hint=WRITE_HINT,
            ) from exc
        body = self.http.json_of(response, "POST", path)
        self._raise_for_envelope(body, response.status_code, path, method="POST")
        if not isinstance(body, Mapping):
            raise BadResponseError(self.name, f"POST {path} answered no object")
        return body

    async def create_incident(self, incident: NewIncident) -> CreatedTicket:
        """A new request from the incident; see the module docstring for why it cannot look first."""
        request: dict[str, Any] = {
            "subject": " ".join(incident.title.split())[:250],
            "description": _html(incident.description),
        }
        template = str(self.settings.option("create_template", "")).strip()
        if template:
            request["template"] = {"name": template}
        path = self._requests_path()
        body = await self._post(path, {"request": request})
        record = body.get("request")
        request_id = _name(record.get("id")) if isinstance(record, Mapping) else None
        if not isinstance(record, Mapping) or not request_id:
            raise BadResponseError(self.name, f"POST {path} answered without the new request's id")
        number = _name(record.get("display_id")) or request_id
        return CreatedTicket(number, request_id, self._source_url(request_id), existed=False)

    async def add_work_note(self, note: WorkNote) -> str | None:
        """A note for technicians only (``show_to_requester`` false, nobody notified); its id."""
        if not note.ticket_external_id.isdigit():
            raise ConfigurationError(self.name, f"{note.ticket_external_id!r} is not a request id")
        path = f"{self._requests_path()}/{note.ticket_external_id}/notes"
        request_note = {
            "description": _html(note.text()),
            "show_to_requester": False,
            "notify_technician": False,
            "mark_first_response": False,
            "add_to_linked_requests": False,
        }
        body = await self._post(path, {"request_note": request_note})
        created = body.get("request_note")
        return _name(created.get("id")) if isinstance(created, Mapping) else None

    # --- the contract ----------------------------------------------------------------------------------

    async def probe(self) -> None:
        """Auth (the OAuth refresh on Cloud) and a one-row read of requests."""
        body = await self._get(self._requests_path(), self._list_params(row_count=1, start_index=1))
        self._requests_of(body)

    def streams(self, since: Cursor | None, page_size: int | None) -> list[HttpStream[Any]]:
        return [RequestsStream(self, since, max(1, min(page_size or MAX_ROW_COUNT, MAX_ROW_COUNT)))]

    # --- helpers ---------------------------------------------------------------------------------------

    def _requests_path(self) -> str:
        return f"{self._prefix}/api/v3/requests"

    def _list_params(
        self,
        *,
        row_count: int,
        start_index: int,
        floor_ms: int | None = None,
        fields_required: Sequence[str] = FIELDS_REQUIRED,
    ) -> dict[str, str]:
        list_info: dict[str, Any] = {
            "row_count": row_count,
            "start_index": start_index,
            "sort_field": "last_updated_time",
            "sort_order": "asc",
            "get_total_count": False,
            "fields_required": list(fields_required),
        }
        if floor_ms is not None:
            list_info["search_criteria"] = {
                "field": "last_updated_time",
                "condition": "greater or equal",
                "value": str(floor_ms),
            }
        return {"input_data": json.dumps({"list_info": list_info}, separators=(",", ":"))}

    def _requests_of(self, body: Any) -> list[Mapping[str, Any]]:
        records = body.get("requests") if isinstance(body, Mapping) else None
        if not isinstance(records, list) or not all(isinstance(r, Mapping) for r in records):
            raise BadResponseError(
                self.name, f"GET {self._requests_path()} answered without a list of requests"
            )
        return records

    async def _resolution(self, request_id: str) -> str | None:
        path = f"{self._requests_path()}/{request_id}/resolutions"
        try:
            body = await self._get(path)
        except NotFoundError:
            return None  # no resolution written yet
        resolution = body.get("resolution") if isinstance(body, Mapping) else None
        content = resolution.get("content") if isinstance(resolution, Mapping) else None
        return _clean(content) if isinstance(content, str) else None

    def _source_url(self, request_id: str) -> str:
        base = str(self.http.base_url).rstrip("/")
        if self.settings.auth_mode in CLOUD_MODES:
            return f"{base}/app/{self._portal}/ui/requests/{request_id}/details"
        return f"{base}/WorkOrder.do?woMode=viewWO&woID={request_id}"

    async def _normalise(self, record: Mapping[str, Any]) -> TicketValues:
        """Raises ValueError with the reason when the record cannot become a ticket."""
        request_id = _name(record.get("id"))
        if not request_id:
            raise ValueError("the request has no id")
        subject = _name(record.get("subject")) or f"Request {request_id}"
        full, short = record.get("description"), record.get("short_description")
        description = full if isinstance(full, str) else short if isinstance(short, str) else ""
        updated_at = epoch_ms_value(record.get("last_updated_time"))
        created_at = epoch_ms_value(record.get("created_time"))
        resolved_at = epoch_ms_value(record.get("resolved_time")) or epoch_ms_value(
            record.get("completed_time")
        )
        category_parts = [_name(record.get(key)) for key in ("category", "subcategory", "item")]
        category = " / ".join(part for part in category_parts if part) or None
        resolution_notes = None
        if self.settings.option("fetch_resolutions", False) in (True, "true", "1", 1):
            resolution_notes = await self._resolution(request_id)
        technician = _name(record.get("technician"))
        return TicketValues(
            external_id=request_id,
            source_system=SOURCE_SYSTEM,
            title=subject,
            description=_clean(description),
            status=_name(record.get("status")),
            severity=sdp_severity(_name(record.get("priority"))),
            assignee=technician or _name(record.get("group")),
            kind=parse_kind(_name(record.get("request_type"))),
            category=category,
            configuration_item=None,
            resolution_notes=resolution_notes,
            resolved_at=resolved_at,
            created_at=created_at,
            updated_at=updated_at or created_at,
            source_url=self._source_url(request_id),
            raw_payload=dict(record),
        )


@dataclass(frozen=True, slots=True)
class Keyset:
    """Where the next page starts: ``last_updated_time >= floor_ms``, past the ids already read at it."""

    floor_ms: int | None
    tie_ids: tuple[str, ...]  # ids emitted in this run whose update time is exactly floor_ms


class RequestsStream(HttpStream[Keyset]):
    """Keyset pages, oldest first: ``last_updated_time >= floor`` sorted ascending, with ``start_index``
    skipping only the records at exactly ``floor`` already emitted in this run.

    Residual race, accepted and rare: if a record already emitted at exactly the floor millisecond is updated
    between two page requests, the unread records tied with it shift down by one and one of them is skipped
    until its next update. That needs ties spanning a page boundary *and* an update of one of them mid-run;
    plain ``start_index`` paging loses a record whenever *any* already-read record changes.

    Public for the other v3 listings sorted by ``last_updated_time`` (the solutions of
    :mod:`connectors.knowledge.servicedesk_plus_solutions`): a subclass supplies :meth:`request`,
    :meth:`records` and :meth:`normalise`, and names its records in :attr:`noun`.
    """

    noun: ClassVar[str] = "requests"

    def __init__(self, connector: ServiceDeskPlusConnector, since: Cursor | None, row_count: int) -> None:
        super().__init__(connector, since)
        self.sdp = connector
        self.row_count = row_count
        floor_ms = None
        if since is not None and since.updated_at is not None:
            floor_ms = to_epoch_ms(since.updated_at - SPEC.timestamp_precision)
        self.start = Keyset(floor_ms, ())

    def request(self, token: Keyset | None) -> PageRequest:
        keyset = token or self.start
        params = self.sdp._list_params(
            row_count=self.row_count, start_index=1 + len(keyset.tie_ids), floor_ms=keyset.floor_ms
        )
        return PageRequest("GET", self.sdp._requests_path(), params)

    async def send(self, request: PageRequest) -> httpx.Response:
        return await self.sdp._send_get(request.path, request.params)

    def decode(self, response: httpx.Response, request: PageRequest) -> Any:
        return self.sdp._body(response, request.path)

    def records(self, body: Any, request: PageRequest) -> Sequence[Mapping[str, Any]]:
        return self.sdp._requests_of(body)

    async def normalise(self, record: Mapping[str, Any]) -> Reading:
        return await self.sdp._normalise(record)

    def record_id(self, record: Mapping[str, Any]) -> str | None:
        return _name(record.get("id"))

    def next_page_token(self, page: StreamPage[Keyset]) -> Keyset | None:
        list_info = page.body.get("list_info") if isinstance(page.body, Mapping) else None
        if not (isinstance(list_info, Mapping) and list_info.get("has_more_rows")):
            return None
        if not page.records:
            raise BadResponseError(
                self.sdp.name, f"GET {page.request.path} said has_more_rows but returned no {self.noun}"
            )
        keyset = page.token or self.start
        read: list[SyncRecord] = [*page.tickets, *page.articles]
        stamped = [t for t in read if t.updated_at is not None]
        if not stamped:
            # Nothing on this page could be read: step past it so the sync cannot loop on it.
            return Keyset(keyset.floor_ms, (*keyset.tie_ids, *(str(r.get("id")) for r in page.records)))
        newest_ms = _ms_of(stamped[-1])
        ties_here = tuple(t.external_id for t in stamped if _ms_of(t) == newest_ms)
        if newest_ms == keyset.floor_ms:
            return Keyset(newest_ms, (*keyset.tie_ids, *ties_here))
        return Keyset(newest_ms, ties_here)


def _ms_of(record: SyncRecord) -> int | None:
    return to_epoch_ms(record.updated_at) if record.updated_at is not None else None


def _html(text: str) -> str:
    """Plain text for an SDP HTML field: escaped, line breaks kept, a URL line a link."""
    lines = []
    for line in text.split("\n"):
        shown = html.escape(line)
        if line.startswith(("https://", "http://")) and " " not in line.strip():
            shown = f'<a href="{html.escape(line.strip(), quote=True)}">{shown}</a>'
        lines.append(shown)
    return "<br>".join(lines)


def _clean(text: str) -> str:
    return html_to_text(text) if looks_like_html(text) else text.strip()


def api_base_url(settings: ConnectorSettings) -> str:
    """The instance address; on Cloud an empty address means the data centre's default API domain."""
    base = settings.base_url.strip().rstrip("/")
    if base:
        return base
    if settings.auth_mode in CLOUD_MODES:
        centre = str(settings.option("data_centre", "US")).upper()
        if centre in DATA_CENTRES:
            return DATA_CENTRES[centre][1]
    raise ConfigurationError(settings.name, "the ServiceDesk Plus address is not set")


def _accounts_url(settings: ConnectorSettings) -> str:
    centre = str(settings.option("data_centre", "US")).upper()
    if centre not in DATA_CENTRES:
        raise ConfigurationError(settings.name, f"unknown Zoho data centre {centre!r}")
    return DATA_CENTRES[centre][0]
