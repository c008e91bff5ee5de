"""BMC Remedy / Helix ITSM incidents through the AR System REST API.

The API in brief (checked against BMC's "Operations on entry objects" pages and public clients, see the report
of issue 5):

- ``POST /api/jwt/login`` with the form fields ``username`` and ``password`` answers the token as plain text;
  requests send ``Authorization: AR-JWT <token>``. Tokens time out (an hour by default) whatever we do, so a
  401 triggers one new login and one retry. ``POST /api/jwt/logout`` (204) releases the server-side session
  in :meth:`RemedyConnector.aclose`: AR licenses are counted per session, an abandoned one holds a licence.
- ``GET /api/arsys/v1/entry/{form}?q=...&sort=...&limit=...&fields=values(...)`` answers
  ``{"entries": [{"values": {...}, "_links": {"self": [{"href"}]}}], "_links": {"next": [{"href"}]}}``;
  ``_links`` relations are lists of objects with ``href``.
- Field names are display labels with spaces. HPD:Help Desk spells its long text field
  ``Detailed Decription`` (sic); the summary field is called ``Description``.
- Dates look like ``2022-06-21T11:08:05.000+0000``; AR stores them as epoch *seconds*, so the cursor has
  1-second precision and the qualification compares with an epoch number
  (``'Last Modified Date' >= 1655809685``), which unlike a quoted date string does not depend on the server's
  locale or the user's time zone.
- Errors are a JSON *list* of ``{messageType, messageText, messageAppendedText, messageNumber}``; ARERR 623
  is "Authentication failed".

Writing (issue 13): an incident is created through the interface form ``HPD:IncidentInterface_Create``
(``z1D_Action: CREATE``; as an "Infrastructure Event" reported by "Systems Management", which needs no
customer), asking ``fields=values(Incident Number)`` so the 201 carries the number; a server that answers
only the ``Location`` of the interface entry is asked for the number there. A work-info entry is a record of
``HPD:WorkLog`` (``Incident Number``, ``Description``, ``Detailed Description``, ``Work Log Type``); its id is
the last part of the ``Location``. AR has no REST call saying what a user may write, and no external-id
field we could search before creating: a create whose answer is lost is not sent again (the client does not
repeat a non-idempotent request) and raises, so a second attempt may create a second incident.

Paging is keyset, not offset: each page asks for records strictly after the last (Last Modified Date,
Incident Number) seen, sorted by both. Offsets shift when a record is updated mid-sync (it jumps to the end of
the order), which silently skips the record that slides below the offset. ``_links.next`` only says whether
another page exists.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote, urlsplit

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
    StreamPage,
    WorkNote,
    WriteAccess,
    WriteCheck,
)
from connectors.errors import (
    AuthenticationError,
    BadResponseError,
    ConfigurationError,
    ConnectorError,
    PermissionDeniedError,
)
from connectors.http import HttpClient, default_error_text
from connectors.secrets import register_secret
from core.importing.mapping import parse_datetime, parse_severity, text_value
from core.matching.text import html_to_text, looks_like_html
from core.store.models import TicketKind
from core.store.tickets import TicketValues

logger = logging.getLogger(__name__)

SOURCE_SYSTEM = "remedy"
DEFAULT_FORM = "HPD:Help Desk"
DEFAULT_PAGE_SIZE = 100
AUTH_JWT = "ar_jwt"
ARERR_AUTHENTICATION_FAILED = 623
MAX_TOKEN_LENGTH = 16_384  # a JWT with generous claims is a few KB
_JWT_TEXT = re.compile(r"[A-Za-z0-9._~+/=-]+")  # base64(url) segments joined by dots

F_ID = "Incident Number"
F_MODIFIED = "Last Modified Date"
FIELDS = (
    F_ID,
    "Entry ID",
    "Description",
    "Detailed Decription",
    "Status",
    "Status_Reason",
    "Priority",
    "Impact",
    "Urgency",
    "Service Type",
    "Assigned Group",
    "Assignee",
    "Categorization Tier 1",
    "Categorization Tier 2",
    "Categorization Tier 3",
    "ServiceCI",
    "HPD_CI",
    "Resolution",
    "Submit Date",
    "Reported Date",
    F_MODIFIED,
    "Last Resolved Date",
)

DEFAULT_CREATE_FORM = "HPD:IncidentInterface_Create"
WORK_LOG_FORM = "HPD:WorkLog"
WRITE_HINT = (
    "the AR user needs the Incident User (or Incident Master) permission group and a support group "
    "membership to create incidents and work info"
)
# (Impact, Urgency) per alert severity, in the selection values of HPD:Help Desk.
IMPACT_URGENCY = {
    "critical": ("1-Extensive/Widespread", "1-Critical"),
    "high": ("2-Significant/Large", "2-High"),
    "warning": ("3-Moderate/Limited", "3-Medium"),
    "info": ("4-Minor/Localized", "4-Low"),
}

SPEC = ConnectorSpec(
    type=SOURCE_SYSTEM,
    display_name="BMC Remedy / Helix ITSM",
    kind=ConnectorKind.TICKETING,
    auth_modes=(AuthMode(AUTH_JWT, "AR user name and password", "Logs in to /api/jwt/login for an AR-JWT."),),
    fields=(
        ConfigField("username", "User name", page="auth", help="An AR user with read access to the form."),
        ConfigField("password", "Password", FieldType.SECRET, page="auth"),
        ConfigField(
            "form",
            "Form",
            default=DEFAULT_FORM,
            required=False,
            help="The incident form; the field names below are those of HPD:Help Desk.",
        ),
        ConfigField(
            "qualification",
            "Extra qualification",
            FieldType.MULTILINE,
            required=False,
            placeholder="'Assigned Support Company' = \"Calbro Services\"",
            help="An AR qualification ANDed with the time window, to limit what is imported.",
        ),
        ConfigField(
            "record_url_template",
            "Record link",
            required=False,
            placeholder="https://midtier.example.com/arsys/forms/arserver/HPD:Help Desk/?eid={entry_id}",
            help="The web address of one incident, with {id} (Incident Number) and {entry_id} placeholders. "
            "The REST address cannot tell the Mid Tier or Smart IT host, so without it tickets have no link.",
        ),
        ConfigField(
            "write_back",
            "Post approved runbooks to the ticket",
            FieldType.BOOLEAN,
            required=False,
            default=False,
            help="When an analyst approves a runbook for a synced incident, add it as a work-info entry "
            "(title, link, confidence, who approved). Needs the Incident User permission group.",
        ),
        ConfigField(
            "create_form",
            "Form for new incidents",
            required=False,
            default=DEFAULT_CREATE_FORM,
            help="The interface form 'Create incident' from the Alerts page submits to.",
        ),
    ),
    timestamp_precision=timedelta(seconds=1),
    description="Incidents from BMC Remedy / Helix ITSM through the AR System REST API.",
    docs_url="https://docs.bmc.com/docs/ars91/en/operations-on-entry-objects-609071437.html",
)


def remedy_error_text(response: httpx.Response) -> str:
    """The AR messages of an error body: ``ARERR 623 Authentication failed: detail`` for each one."""
    try:
        body = response.json()
    except ValueError:
        return default_error_text(response)
    if isinstance(body, Mapping):
        body = [body]
    if not isinstance(body, list):
        return default_error_text(response)
    texts = []
    for message in body:
        if not isinstance(message, Mapping):
            continue
        number = message.get("messageNumber")
        text = str(message.get("messageText") or "").strip()
        appended = str(message.get("messageAppendedText") or "").strip()
        parts = [f"ARERR {number}" if number is not None else "", text]
        line = " ".join(part for part in parts if part)
        if appended:
            line = f"{line}: {appended}" if line else appended
        if line:
            texts.append(line)
    return "; ".join(texts) or default_error_text(response)


def parse_remedy_date(value: Any) -> datetime | None:
    """``2022-06-21T11:08:05.000+0000`` (the REST API's format) as aware UTC; raises ValueError otherwise."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return parse_datetime(str(value))


def _epoch_seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def _quoted(text: str) -> str:
    """A string literal for an AR qualification."""
    return '"' + text.replace('"', '""') + '"'


def _kind(service_type: str | None) -> TicketKind:
    lowered = (service_type or "").casefold()
    if "request" in lowered:
        return TicketKind.REQUEST
    if "event" in lowered:
        return TicketKind.ALERT
    return TicketKind.INCIDENT


def _next_href(links: Any) -> str | None:
    """``_links.next`` is a list of ``{"href"}`` objects; tolerate a bare object too."""
    if not isinstance(links, Mapping):
        return None
    nxt = links.get("next")
    if isinstance(nxt, list) and nxt and isinstance(nxt[0], Mapping):
        href = nxt[0].get("href")
        return str(href) if href else None
    if isinstance(nxt, Mapping) and nxt.get("href"):
        return str(nxt["href"])
    return None


def _self_href(links: Any) -> str | None:
    if isinstance(links, Mapping):
        own = links.get("self")
        if isinstance(own, list) and own and isinstance(own[0], Mapping) and own[0].get("href"):
            return str(own[0]["href"])
    return None


class RemedyConnector(Connector):
    spec = SPEC

    def __init__(self, settings: ConnectorSettings, http: HttpClient) -> None:
        super().__init__(settings, http)
        self._token: str | None = None
        self.form = str(settings.option("form", DEFAULT_FORM)).strip()

    @classmethod
    def client_options(cls, settings: ConnectorSettings) -> ClientOptions:
        """AR's error lists; the AR-JWT is per request because a 401 replaces it mid-sync."""
        return ClientOptions(error_text=remedy_error_text)

    # --- session -------------------------------------------------------------------------------------

    async def _login(self) -> str:
        username = str(self.settings.option("username", "")).strip()
        if not username:
            raise ConfigurationError(self.name, "the AR user name is not set")
        form = {"username": username, "password": self.settings.secret("password")}
        try:
            response = await self.http.request(
                "POST", "/api/jwt/login", data=form, headers={"Accept": "text/plain, application/json"}
            )
        except AuthenticationError as exc:
            raise AuthenticationError(
                self.name,
                method=exc.method,
                path=exc.path,
                status=exc.status,
                server_message=exc.server_message,
                hint="Remedy refused the user name or password"
                if f"ARERR {ARERR_AUTHENTICATION_FAILED}" in exc.server_message
                else "",
            ) from exc
        token = response.text.strip()
        # A JWT is one line of base64url and dots; a page, a JSON body or an echo of the form is not one.
        if not token or len(token) > MAX_TOKEN_LENGTH or not _JWT_TEXT.fullmatch(token):
            raise BadResponseError(
                self.name, "POST /api/jwt/login did not answer a token (is the URL the AR REST port?)"
            )
        register_secret(token)  # masked if a server or a traceback ever echoes it
        self._token = token
        return token

    async def _get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.http.json_of(await self._get(path, params), "GET", path)

    async def _get(self, path: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        """GET with the AR-JWT; a 401 (token timed out or revoked) logs in again once and retries."""
        token = self._token or await self._login()
        try:
            return await self.http.request(
                "GET", path, params=params, headers={"Authorization": f"AR-JWT {token}"}
            )
        except AuthenticationError:
            self._token = None
            token = await self._login()
            return await self.http.request(
                "GET", path, params=params, headers={"Authorization": f"AR-JWT {token}"}
            )

    async def aclose(self) -> None:
        """Release the AR session; a failed logout is logged, the session then simply times out."""
        token, self._token = self._token, None
        if token is None:
            return
        try:
            await self.http.request("POST", "/api/jwt/logout", headers={"Authorization": f"AR-JWT {token}"})
        except ConnectorError as exc:
            logger.info("%s: logout failed, the AR session will time out on its own: %s", self.name, exc)

    # --- writes --------------------------------------------------------------------------------------

    can_write = True

    async def write_check(self) -> WriteCheck:
        """AR System has no REST call that says what a user may write without writing."""
        return WriteCheck(
            WriteAccess.UNKNOWN,
            f"Remedy cannot say without writing; the first write will tell ({WRITE_HINT})",
        )

    async def _send(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None, json_body: Any = None
    ) -> httpx.Response:
        """A request with the AR-JWT, never repeated by the client when it writes; a 401 (the token timed
        out: nothing was done) logs in again once and sends it again, as :meth:`_get` does."""
        idempotent = method == "GET"
        token = self._token or await self._login()
        try:
            try:
                return await self.http.request(
                    method,
                    path,
                    params=params,
                    json_body=json_body,
                    headers={"Authorization": f"AR-JWT {token}"},
                    idempotent=idempotent,
                )
            except AuthenticationError:
                self._token = None
                token = await self._login()
                return await self.http.request(
                    method,
                    path,
                    params=params,
                    json_body=json_body,
                    headers={"Authorization": f"AR-JWT {token}"},
                    idempotent=idempotent,
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

    async def create_incident(self, incident: NewIncident) -> CreatedTicket:
        """Submit to the interface form and read the Incident Number back (see the module docstring)."""
        form = str(self.settings.option("create_form", DEFAULT_CREATE_FORM)).strip()
        impact, urgency = IMPACT_URGENCY.get(incident.severity, ("3-Moderate/Limited", "3-Medium"))
        values = {
            "z1D_Action": "CREATE",
            "Description": " ".join(incident.title.split())[:100],  # the summary field holds 100 characters
            "Detailed_Decription": incident.description,  # (sic) the interface form's spelling
            "Impact": impact,
            "Urgency": urgency,
            "Status": "New",
            "Reported Source": "Systems Management",
            "Service_Type": "Infrastructure Event",
        }
        path = f"/api/arsys/v1/entry/{form}"
        response = await self._send(
            "POST", path, params={"fields": f"values({F_ID})"}, json_body={"values": values}
        )
        number = self._incident_number(response, "POST", path)
        if number is None:
            location = response.headers.get("Location", "")
            entry_path = unquote(urlsplit(location).path)
            if not entry_path.startswith("/api/arsys/v1/entry/"):
                raise BadResponseError(
                    self.name, f"POST {path} answered neither the Incident Number nor a Location"
                )
            read = await self._send("GET", entry_path, params={"fields": f"values({F_ID})"})
            number = self._incident_number(read, "GET", entry_path)
            if number is None:
                raise BadResponseError(self.name, f"GET {entry_path} answered no {F_ID}")
        return CreatedTicket(number, number, self._source_url(number, None), existed=False)

    def _incident_number(self, response: httpx.Response, method: str, path: str) -> str | None:
        if not response.content.strip():
            return None
        body = self.http.json_of(response, method, path)
        values = body.get("values") if isinstance(body, Mapping) else None
        return text_value(values.get(F_ID)) if isinstance(values, Mapping) else None

    async def add_work_note(self, note: WorkNote) -> str | None:
        """A work-info entry on the incident; its entry id from the ``Location`` of the 201."""
        values = {
            F_ID: note.ticket_external_id,
            "Description": f"Runbook: {note.runbook_title}"[:100],
            "Detailed Description": note.text(),
            "Work Log Type": "General Information",
            "View Access": "Internal",
            "Secure Work Log": "No",
        }
        response = await self._send(
            "POST", f"/api/arsys/v1/entry/{WORK_LOG_FORM}", json_body={"values": values}
        )
        location = urlsplit(response.headers.get("Location", "")).path.rstrip("/")
        entry_id = location.rsplit("/", 1)[-1]
        return entry_id or None

    # --- the contract --------------------------------------------------------------------------------

    async def probe(self) -> None:
        """Login, then a one-record read of the form (proves the form exists and is readable)."""
        body = await self._get_json(self._entries_path(), self._params(None, limit=1))
        self._entries_of(body)

    def streams(self, since: Cursor | None, page_size: int | None) -> list[HttpStream[Any]]:
        return [_EntriesStream(self, since, max(1, page_size or DEFAULT_PAGE_SIZE))]

    # --- helpers ---------------------------------------------------------------------------------------

    def _entries_path(self) -> str:
        # Unencoded on purpose: httpx encodes the space on the wire, and errors show the form's real name.
        return f"/api/arsys/v1/entry/{self.form}"

    def _params(
        self, start: datetime | None, *, limit: int, after: tuple[int, str] | None = None
    ) -> dict[str, str]:
        clauses: list[str] = []
        if after is not None:
            seconds, last_id = after
            same_second = f"'{F_MODIFIED}' = {seconds} AND '{F_ID}' > {_quoted(last_id)}"
            clauses.append(f"('{F_MODIFIED}' > {seconds} OR ({same_second}))")
        elif start is not None:
            clauses.append(f"'{F_MODIFIED}' >= {_epoch_seconds(start)}")
        user_filter = str(self.settings.option("qualification", "")).strip()
        if user_filter:
            clauses.append(f"({user_filter})")
        params = {
            "sort": f"{F_MODIFIED}.asc,{F_ID}.asc",
            "limit": str(limit),
            "fields": f"values({','.join(FIELDS)})",
        }
        if clauses:
            params["q"] = " AND ".join(clauses)
        return params

    def _entries_of(self, body: Any) -> Sequence[Mapping[str, Any]]:
        entries = body.get("entries") if isinstance(body, Mapping) else None
        if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
            raise BadResponseError(
                self.name, f"GET {self._entries_path()} answered without a list of entries"
            )
        return entries

    def _source_url(self, incident_id: str, entry_id: str | None) -> str | None:
        template = str(self.settings.option("record_url_template", "")).strip()
        if not template:
            return None
        return template.replace("{id}", quote(incident_id)).replace(
            "{entry_id}", quote(entry_id or incident_id)
        )

    def _normalise(self, entry: Mapping[str, Any]) -> TicketValues:
        """Raises ValueError with the reason when the entry cannot become a ticket."""
        values = entry.get("values")
        if not isinstance(values, Mapping):
            raise ValueError("the entry has no values")

        def get(field: str) -> str | None:
            return text_value(values.get(field))

        def date(field: str) -> datetime | None:
            try:
                return parse_remedy_date(values.get(field))
            except ValueError as exc:
                raise ValueError(f"{field}: {exc}") from None

        incident_id = get(F_ID)
        if not incident_id:
            raise ValueError(f"'{F_ID}' is empty")
        self_href = _self_href(entry.get("_links"))
        entry_id = get("Entry ID") or (self_href.rsplit("/", 1)[-1] if self_href else None)
        description = get("Detailed Decription") or ""
        tiers = [get(f"Categorization Tier {n}") for n in (1, 2, 3)]
        created_at = date("Submit Date") or date("Reported Date")
        assignee = get("Assignee")
        return TicketValues(
            external_id=incident_id,
            source_system=SOURCE_SYSTEM,
            title=get("Description") or incident_id,
            description=html_to_text(description) if looks_like_html(description) else description,
            status=get("Status"),
            severity=parse_severity(get("Priority")),
            assignee=assignee or get("Assigned Group"),
            kind=_kind(get("Service Type")),
            category=" / ".join(t for t in tiers if t) or None,
            configuration_item=get("ServiceCI") or get("HPD_CI"),
            resolution_notes=get("Resolution"),
            resolved_at=date("Last Resolved Date"),
            created_at=created_at,
            updated_at=date(F_MODIFIED) or created_at,
            source_url=self._source_url(incident_id, entry_id),
            raw_payload=dict(entry),
        )


# A keyset position: the last (Last Modified Date in epoch seconds, Incident Number) read.
_After = tuple[int, str]


class _EntriesStream(HttpStream[_After]):
    """The form's entries, keyset-paged: each page asks for records strictly after the last one read, in
    (Last Modified Date, Incident Number) order; ``_links.next`` only says whether another page exists."""

    def __init__(self, connector: RemedyConnector, since: Cursor | None, limit: int) -> None:
        super().__init__(connector, since)
        self.remedy = connector
        self.limit = limit
        self.start = since.updated_at - SPEC.timestamp_precision if since and since.updated_at else None

    def request(self, token: _After | None) -> PageRequest:
        params = self.remedy._params(self.start, limit=self.limit, after=token)
        return PageRequest("GET", self.remedy._entries_path(), params)

    async def send(self, request: PageRequest) -> httpx.Response:
        return await self.remedy._get(request.path, request.params)

    def records(self, body: Any, request: PageRequest) -> Sequence[Mapping[str, Any]]:
        return self.remedy._entries_of(body)

    async def normalise(self, record: Mapping[str, Any]) -> TicketValues:
        return self.remedy._normalise(record)

    def record_id(self, record: Mapping[str, Any]) -> str | None:
        values = record.get("values")
        return text_value(values.get(F_ID)) if isinstance(values, Mapping) else None

    def next_page_token(self, page: StreamPage[_After]) -> _After | None:
        links = page.body.get("_links") if isinstance(page.body, Mapping) else None
        if not page.records or (len(page.records) < self.limit and _next_href(links) is None):
            return None
        newest = next((t for t in reversed(page.tickets) if t.updated_at is not None), None)
        if newest is None or newest.updated_at is None:
            raise BadResponseError(
                self.remedy.name, f"GET {page.request.path}: no record on the page had a '{F_MODIFIED}'"
            )
        return _epoch_seconds(newest.updated_at), newest.external_id
