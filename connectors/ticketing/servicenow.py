"""ServiceNow Table API connector: incidents, changes, requested items and problems.

API facts this module relies on (checked against public captures of real instances, see the tests):

- ``GET /api/now/table/<table>`` with ``sysparm_query`` (an encoded query: terms joined by ``^``, ``^OR``
  binding to the term before it, ``ORDERBY<field>``), ``sysparm_fields``, ``sysparm_limit``,
  ``sysparm_offset``, ``sysparm_display_value=all`` (every field becomes ``{"display_value", "value"}``,
  reference fields add ``"link"`` unless ``sysparm_exclude_reference_link=true``; all values are strings).
  A parameter the server does not know (``query=`` instead of ``sysparm_query=``) is **silently ignored**,
  and so is a query term on a field that does not exist: both return every record. So every parameter name
  here is a constant, and the analyst's encoded query is checked for the mistakes we can see (:func:`
  validate_encoded_query`).
- Date-times: the ``value`` is the stored UTC time (``2024-05-01 09:30:00``, no zone marker); the
  ``display_value`` is in the API account's time zone *and date format*. We read ``value``. A date literal
  in a query is given as ``javascript:gs.dateGenerate('<date>','<time>')``, which the instance reads in the
  account's time zone (the list filter builds exactly this) -- hence the "time zone" option, which must be
  the account's zone (its profile's, else the instance's system zone). The probe compares the two
  representations of one record and says so when the option is wrong.
- Paging: ``Link: <url>;rel="first",<url>;rel="prev",<url>;rel="next",<url>;rel="last"`` (no spaces; the URLs
  keep unencoded commas from ``sysparm_fields``; the first page advertises ``prev`` at a *negative* offset;
  the last page has no ``next``) and ``X-Total-Count``. Rows hidden by read ACLs are removed *after* the page
  is cut, so a page can be short -- or empty -- while a ``next`` still exists: the length of a page never
  says "done", only the absence of ``next`` does.
- Errors: ``{"error": {"message", "detail"}, "status": "failure"}``; an unknown table answers **400**
  ``Invalid table x``; OAuth token errors are ``{"error": "server_error", "error_description":
  "access_denied"}`` with 401; rate limits answer 429 with ``Retry-After`` and ``X-RateLimit-Reset``
  (epoch seconds), which the shared client honours.
- OAuth: ``POST /oauth_token.do`` (form) with ``grant_type=password`` + client id/secret + user/password,
  or ``grant_type=refresh_token``; the answer carries ``access_token``, ``refresh_token`` and
  ``expires_in`` (30 minutes by default).

Paging strategy: keyset, not offset. Each page re-queries ``sys_updated_on >= T`` and ``(sys_updated_on > T
or sys_id > last_id)`` ordered by ``sys_updated_on, sys_id``, where ``(T, last_id)`` is the last record
read. Following ``sysparm_offset`` while the sync runs skips rows: a record updated between two requests
moves from the front of the ordering to its end, every later row shifts one place towards the start, and
the row that slides across the page boundary is never returned. With a moving lower bound nothing shifts
under us (an updated record is simply seen again later, which the upsert treats as an update), the id
tie-break keeps a burst of thousands of records stamped with the same second from looping, the count the
server computes shrinks as we go, and a killed sync resumes from the stored ``(T, last_id)`` with no loss
or duplicate. The offset is only used to step over a page whose rows were all hidden by ACLs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from connectors.base import (
    AlreadyRead,
    AuthMode,
    CheckResult,
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
    ConnectionFailedError,
    ConnectorError,
    ConnectorTimeoutError,
    HttpStatusError,
    NotFoundError,
    PermissionDeniedError,
    RequestRejectedError,
    ServerError,
)
from connectors.http import HttpClient, default_error_text
from connectors.oauth import IssuedToken, TokenCache
from connectors.oauth_consent import providers as consent_providers
from connectors.oauth_consent.connector import CONSENT_AUTH_MODE, consent_auth, consent_fields, consent_mode
from core.importing.mapping import parse_kind, parse_severity, text_value
from core.matching.text import html_to_text, looks_like_html, strip_servicenow_journal
from core.store.tickets import MAX_TITLE, RESOLVED_STATES, TicketValues

TABLE_PATH = "/api/now/table/{table}"
TOKEN_PATH = "/oauth_token.do"
DEFAULT_TABLES = ("incident",)
DEFAULT_PAGE_SIZE = 200
MAX_PAGE_SIZE = 10_000  # the Table API's default glide.json.return_limit
SERVICENOW_DATETIME = "%Y-%m-%d %H:%M:%S"
# Renew an OAuth access token this long before the server would expire it, so a page never races expiry.
TOKEN_EXPIRY_MARGIN = 30.0

# The fields we read; one list for every table (a field a table lacks is simply absent from its records).
FIELDS = (
    "sys_id",
    "number",
    "short_description",
    "description",
    "state",
    "priority",
    "impact",
    "assigned_to",
    "assignment_group",
    "category",
    "cmdb_ci",
    "close_notes",
    "close_code",
    "resolved_at",
    "closed_at",
    "opened_at",
    "sys_created_on",
    "sys_updated_on",
    "sys_class_name",
    "active",
)

# Writing (issue 13): roles that may create incidents and add work notes out of the box.
WRITE_ROLES = frozenset({"itil", "sn_incident_write", "admin"})
DEFAULT_CREATE_TABLE = "incident"
WRITE_PERMISSION_HINT = (
    "the account needs the itil (or sn_incident_write) role to create incidents and add work notes"
)
# (impact, urgency) per alert severity: the default priority matrix makes these P1, P2, P3 and P5.
IMPACT_URGENCY = {"critical": ("1", "1"), "high": ("1", "2"), "warning": ("2", "2"), "info": ("3", "3")}

PERMISSION_HINT = (
    "give the account the itil role, or a role with a read ACL on the {table} table "
    "(add snc_read_only to keep the integration account read-only)"
)

SPEC = ConnectorSpec(
    type="servicenow",
    display_name="ServiceNow",
    kind=ConnectorKind.TICKETING,
    auth_modes=(
        AuthMode("basic", "User name and password", "A local ServiceNow account (not single sign-on)."),
        AuthMode(
            "oauth",
            "OAuth 2.0 (password grant)",
            "An OAuth application registered under System OAuth > Application Registry.",
        ),
        consent_mode(
            "Each analyst signs in in the browser (SSO works). Register an OAuth API endpoint under System "
            "OAuth > Application Registry with the redirect URL shown below; a public client needs no secret."
        ),
    ),
    fields=(
        ConfigField(
            "base_url",
            "Instance URL",
            FieldType.URL,
            placeholder="https://yourcompany.service-now.com",
            page="where",
        ),
        ConfigField(
            "username",
            "User name",
            help="A local account with read access.",
            auth_modes=("basic", "oauth"),
            page="auth",
        ),
        ConfigField("password", "Password", FieldType.SECRET, auth_modes=("basic", "oauth"), page="auth"),
        *consent_fields(
            secret_required=False, secret_help="Leave empty for a public client (PKCE without a secret)."
        ),
        ConfigField("client_id", "OAuth client ID", auth_modes=("oauth",), page="auth"),
        ConfigField(
            "client_secret", "OAuth client secret", FieldType.SECRET, auth_modes=("oauth",), page="auth"
        ),
        ConfigField(
            "tables",
            "Tables",
            default="incident",
            help="Comma-separated: incident, change_request, sc_req_item, problem.",
        ),
        ConfigField(
            "query",
            "Encoded query",
            required=False,
            placeholder="active=true^priority<=2",
            help="Copy it from a list filter (right-click the breadcrumb, Copy query). "
            "Leave out ORDERBY and sys_updated_on: the sync adds its own.",
        ),
        ConfigField(
            "time_zone",
            "Account time zone",
            default="UTC",
            help="The API account's time zone (its user profile, else the instance's system time zone), "
            "e.g. Europe/Berlin. The sync's date bound is read in this zone.",
        ),
        ConfigField("page_size", "Records per request", FieldType.INTEGER, required=False, default=200),
        ConfigField(
            "write_back",
            "Post approved runbooks to the ticket",
            FieldType.BOOLEAN,
            required=False,
            default=False,
            help="When an analyst approves a runbook for a synced ticket, add it as a work note (title, "
            "link, confidence, who approved). Needs the itil role.",
        ),
        ConfigField(
            "create_table",
            "Table for new incidents",
            required=False,
            default=DEFAULT_CREATE_TABLE,
            help="Where 'Create incident' from the Alerts page creates the record; normally incident.",
        ),
    ),
    timestamp_precision=timedelta(seconds=1),
    description="Incidents, changes, requested items and problems through the Table API.",
    docs_url="https://www.servicenow.com/docs/r/api-reference/rest-apis/c_TableAPI.html",
    icon="servicenow.svg",
)

# ----------------------------------------------------------------------------------------------------------
# Pure helpers (no I/O), tested on their own
# ----------------------------------------------------------------------------------------------------------


def error_text(response: httpx.Response) -> str:
    """The server's own words from a Table API error, an OAuth token error, or an HTML page."""
    try:
        body = response.json()
    except ValueError:
        if "hibernat" in response.text.lower():
            return "the instance is hibernating (wake it in the developer portal)"
        return default_error_text(response)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = str(error.get("message") or "").strip()
            detail = str(error.get("detail") or "").strip()
            if detail and detail != message:
                return f"{message}: {detail}" if message else detail
            if message:
                return message
        elif isinstance(error, str):  # /oauth_token.do
            description = body.get("error_description")
            return f"{description} ({error})" if description else error
    return default_error_text(response)


_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?([A-Za-z]+)"?')


def parse_link_header(value: str | None) -> dict[str, str]:
    """``rel -> URL`` from a ServiceNow ``Link`` header.

    Not split on commas: ServiceNow echoes ``sysparm_fields=a,b,c`` unencoded inside the ``<...>``.
    """
    return {rel.lower(): url for url, rel in _LINK.findall(value or "")}


def link_offset(url: str | None) -> int | None:
    """The ``sysparm_offset`` of a Link URL; may be negative (the first page's ``prev`` is)."""
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("sysparm_offset")
    try:
        return int(values[0]) if values else None
    except ValueError:
        return None


# Encoded-query operators, longest first so "!=" is not read as "=" and "NOT IN" not as "IN".
_OPERATORS = (
    "NOT LIKE",
    "NOT IN",
    "ISNOTEMPTY",
    "ISEMPTY",
    "EMPTYSTRING",
    "ANYTHING",
    "STARTSWITH",
    "ENDSWITH",
    "NOTLIKE",
    "LIKE",
    "NSAMEAS",
    "SAMEAS",
    "BETWEEN",
    "DATEPART",
    "RELATIVEGT",
    "RELATIVEGE",
    "RELATIVELT",
    "RELATIVELE",
    "RELATIVEEE",
    "NOTON",
    "ON",
    "MORETHAN",
    "LESSTHAN",
    "GT_OR_EQUALS_FIELD",
    "LT_OR_EQUALS_FIELD",
    "GT_FIELD",
    "LT_FIELD",
    "DYNAMIC",
    "VALCHANGES",
    "CHANGESFROM",
    "CHANGESTO",
    "IN",
    "!=",
    ">=",
    "<=",
    "=",
    ">",
    "<",
)
_TERM = re.compile(
    r"(?P<field>[A-Za-z0-9_.]+?)(?P<op>" + "|".join(re.escape(op) for op in _OPERATORS) + r")(?P<value>.*)",
    re.DOTALL,
)
_FIELD_NAME = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)*")


def validate_encoded_query(query: str) -> str:
    """The analyst's encoded query, stripped, or ValueError naming the first mistake we can see.

    ServiceNow answers a malformed query with *every* record rather than an error, so what we can catch
    here is the difference between syncing the intended scope and syncing the whole table.
    """
    text = query.strip()
    if not text:
        return ""
    if text.lower().startswith("sysparm_query=") or "&" in text:
        raise ValueError(
            "paste only the encoded query itself, not URL parameters (no 'sysparm_query=', no '&')"
        )
    if re.search(r"%[0-9A-Fa-f]{2}", text):
        raise ValueError(
            "the query is URL-encoded (it contains %xx); paste it decoded, e.g. active=true^priority=1"
        )
    if re.search(r"\s(?:AND|OR|and|or)\s", text):
        raise ValueError("join conditions with ^ (and) or ^OR (or), not with the words AND / OR")
    for index, raw_term in enumerate(text.split("^")):
        term = raw_term.strip()
        if not term:
            raise ValueError("an empty condition (a doubled, leading or trailing ^)")
        if term == "EQ":
            continue
        if term.startswith("NQ"):
            raise ValueError(
                "^NQ (a second, OR'ed query) is not supported: the sync's date bound would not apply to it"
            )
        if term.startswith(("ORDERBY", "GROUPBY")):
            raise ValueError(f"remove {term!r}: the sync orders by sys_updated_on and sys_id itself")
        if term.startswith("OR"):
            if index == 0:
                raise ValueError("the query cannot start with OR: there is no condition before it")
            term = term[2:]
        match = _TERM.fullmatch(term)
        if match is None:
            raise ValueError(f"{raw_term!r} has no operator; conditions look like field=value or fieldINa,b")
        field = match.group("field")
        if not _FIELD_NAME.fullmatch(field):
            raise ValueError(f"field names are lower case (field {field!r} in {raw_term!r})")
        if field == "sys_updated_on":
            raise ValueError("leave sys_updated_on out: the sync adds its own bound on it")
        if match.group("op") in ("=", "!=") and match.group("value").startswith(("=", " ")):
            raise ValueError(f"{raw_term!r}: a single = and no spaces, e.g. priority=1")
    return text


def parse_tables(value: Any) -> tuple[str, ...]:
    """Table names from the option (a comma-separated string or a list), in order, without repeats."""
    items = value.split(",") if isinstance(value, str) else list(value or ())
    tables: list[str] = []
    for item in items:
        name = str(item).strip()
        if not name:
            continue
        if not re.fullmatch(r"[a-z0-9_]+", name):
            raise ValueError(
                f"{name!r} is not a table name (lower-case letters, digits and _, e.g. incident)"
            )
        if name not in tables:
            tables.append(name)
    if not tables:
        raise ValueError("no table is selected")
    return tuple(tables)


def instance_url(base_url: str) -> str:
    """``https://host`` from what the analyst typed; ValueError with the fix when it is not one."""
    text = base_url.strip().rstrip("/")
    if not text:
        raise ValueError("the instance URL is empty")
    if "://" not in text:
        raise ValueError(f"{text!r} needs the scheme, e.g. https://{text.split('/')[0]}")
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError(f"{text!r} is not an http(s) URL")
    if parts.path not in ("", "/") or parts.query:
        raise ValueError(f"use only the instance address, e.g. {parts.scheme}://{parts.netloc}")
    return f"{parts.scheme}://{parts.netloc}"


def parse_servicenow_datetime(text: str, zone: tzinfo) -> datetime:
    """``2024-05-01 09:30:00`` in ``zone`` as an aware UTC datetime (ValueError when it is not that shape).

    ``fromisoformat`` rather than ``strptime``: it is C code, and strptime was a third of a 20,000-record
    sync's time.
    """
    text = text.strip()
    if len(text) != 19 or text[10] != " ":
        raise ValueError(f"not a ServiceNow date-time (yyyy-MM-dd HH:mm:ss): {text!r}")
    moment = datetime.fromisoformat(text).replace(tzinfo=zone)
    return moment if zone is UTC else moment.astimezone(UTC)


def record_datetime(field: Any, zone: tzinfo) -> datetime | None:
    """A date-time field of a record as UTC.

    ``{"value": ...}`` and a bare string are the stored UTC value; a display value alone (the Table API
    sends both with ``display_value=all``) is in the account's zone, and is never mistaken for UTC.
    """
    if isinstance(field, dict):
        value = field.get("value")
        if value:
            return parse_servicenow_datetime(str(value), UTC)
        display = field.get("display_value")
        return parse_servicenow_datetime(str(display), zone) if display else None
    if isinstance(field, str) and field:
        return parse_servicenow_datetime(field, UTC)
    return None


def plain_value(field: Any) -> str | None:
    """The stored value of a field (``value`` of a display-value object), as text."""
    if isinstance(field, dict):
        field = field.get("value")
    if field is None:
        return None
    text = str(field).strip()
    return text or None


def date_generate(moment: datetime, zone: tzinfo) -> tuple[str, bool]:
    """A ``gs.dateGenerate`` literal for ``moment`` in the account zone, and whether it is exact.

    In the hour a daylight-saving change repeats or skips, the wall time does not name one instant and the
    instance may read it an hour late; the literal then steps back until it is unambiguous (re-reading a
    little, never skipping) and is reported inexact so the caller drops the id tie-break.
    """
    candidate = moment
    for _ in range(4):
        wall = candidate.astimezone(zone).replace(tzinfo=None)
        readings = {wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)}
        if readings == {candidate}:
            literal = f"javascript:gs.dateGenerate('{wall:%Y-%m-%d}','{wall:%H:%M:%S}')"
            return literal, candidate == moment
        candidate -= timedelta(hours=1)
    raise ValueError(f"cannot express {moment.isoformat()} in {zone} unambiguously")


def clean_description(text: str | None) -> str | None:
    """The description without HTML markup and journal headers ("2024-05-01 10:00:00 - Ann (Work notes)")."""
    if not text:
        return text
    if looks_like_html(text):
        text = html_to_text(text)
    return strip_servicenow_journal(text)


def source_url(base: str, table: str, sys_id: str) -> str:
    return f"{base}/nav_to.do?uri={table}.do?sys_id={sys_id}"


def normalise_record(record: Mapping[str, Any], table: str, base: str, zone: tzinfo) -> TicketValues:
    """One Table API record (``display_value=all``) as our ticket; ValueError with the reason otherwise.

    Choice and reference fields keep what a person reads (``display_value``: "In Progress", "1 - Critical",
    the assignee's name); dates keep the stored UTC ``value``. The words, the key (external_id = number,
    source_system = "servicenow") and the rules are those the CSV import applies to a ServiceNow list
    export, so a ticket imported from a file and then synced is updated, not doubled.
    """

    def raw(name: str) -> Any:
        field = record.get(name)
        if isinstance(field, dict):
            shown_value = field.get("display_value")
            return shown_value if shown_value is not None else field.get("value")
        return field

    def shown(name: str) -> str | None:
        return text_value(raw(name))

    def when(name: str) -> datetime | None:
        try:
            return record_datetime(record.get(name), zone)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None

    number = shown("number")
    if not number:
        raise ValueError("number is empty")
    title = shown("short_description")
    if not title:
        raise ValueError("short_description is empty")
    status = shown("state")
    created_at = when("sys_created_on")
    updated_at = when("sys_updated_on") or created_at
    # Changes and requested items have no resolved_at; their closed_at is the same moment.
    resolved_at = when("resolved_at") or when("closed_at")
    if resolved_at is None and status and status.lower() in RESOLVED_STATES:
        resolved_at = updated_at  # as the CSV import does for an export without a resolution time
    description = raw("description")
    sys_id = plain_value(record.get("sys_id"))
    return TicketValues(
        external_id=number,
        source_system="servicenow",
        title=title[:MAX_TITLE],
        description=text_value(clean_description(None if description is None else str(description))) or "",
        status=status,
        severity=parse_severity(shown("priority") or shown("impact")),
        assignee=shown("assigned_to"),
        kind=parse_kind(table),
        category=shown("category"),
        configuration_item=shown("cmdb_ci"),
        resolution_notes=shown("close_notes"),
        resolved_at=resolved_at,
        created_at=created_at,
        updated_at=updated_at,
        source_url=source_url(base, table, sys_id) if sys_id else None,
        raw_payload=dict(record),
    )


# A position in one table: the last record read, (sys_updated_on as UTC, sys_id).
Position = tuple[datetime, str | None]


def positions_from_cursor(since: Cursor | None, tables: Sequence[str]) -> dict[str, Position | None]:
    """Where each table stands: the per-table positions we store in ``Cursor.extra``.

    A cursor without them (written by hand, or by an older version) applies its time to every table and
    its id to none, so records at that second are read again rather than skipped.
    """
    if since is None or since.updated_at is None:
        return dict.fromkeys(tables)
    stored = since.extra.get("tables") if isinstance(since.extra, Mapping) else None
    if isinstance(stored, Mapping):
        positions: dict[str, Position | None] = {}
        for table in tables:
            entry = stored.get(table)
            if isinstance(entry, Mapping) and entry.get("updated_at"):
                positions[table] = (
                    _as_utc(datetime.fromisoformat(entry["updated_at"])),
                    entry.get("last_id"),
                )
            else:
                positions[table] = None  # a table added since the last sync: read all of it
        return positions
    last_id = since.last_id if len(tables) == 1 else None
    return dict.fromkeys(tables, (_as_utc(since.updated_at), last_id))


def cursor_for(positions: Mapping[str, Position | None]) -> Cursor:
    """The cursor after a page: every table's position in ``extra``; the most advanced one on top.

    The per-table positions are the truth. The top-level (updated_at, last_id) is the latest of them
    because the engine keeps a cursor only if it does not move back, and with several tables the earliest
    position can fall while another table is read from its start.
    """
    tables = {
        table: None if position is None else {"updated_at": position[0].isoformat(), "last_id": position[1]}
        for table, position in positions.items()
    }
    known = [position for position in positions.values() if position is not None]
    if not known:
        return Cursor(None, None, {"tables": tables})
    latest = max(known, key=_key)
    return Cursor(latest[0], latest[1], {"tables": tables})


def _key(position: Position) -> tuple[datetime, str]:
    return position[0], position[1] or ""


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _with_hint(
    exc: HttpStatusError, hint: str, error_type: type[HttpStatusError] | None = None
) -> HttpStatusError:
    """The same error with a ServiceNow-specific hint (or as a more precise type)."""
    return (error_type or type(exc))(
        exc.connector,
        method=exc.method,
        path=exc.path,
        status=exc.status,
        server_message=exc.server_message,
        hint=hint,
    )


# ----------------------------------------------------------------------------------------------------------
# The connector
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceNowConfig:
    """The connector's settings, checked; the knowledge connector (connectors.knowledge) reuses it."""

    base: str
    tables: tuple[str, ...]
    query: str
    zone: tzinfo
    page_size: int

    @classmethod
    def from_settings(cls, settings: ConnectorSettings) -> ServiceNowConfig:
        try:
            base = instance_url(settings.base_url)
            tables = parse_tables(settings.option("tables", ",".join(DEFAULT_TABLES)))
            query = validate_encoded_query(str(settings.option("query", "")))
        except ValueError as exc:
            raise ConfigurationError(settings.name, str(exc)) from exc
        zone_name = str(settings.option("time_zone", "UTC")).strip()
        try:
            zone: tzinfo = UTC if zone_name.upper() in ("UTC", "GMT", "Z") else ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigurationError(
                settings.name,
                f"unknown time zone {zone_name!r}; use a name like Europe/Berlin "
                "(on Windows the tzdata package provides them)",
            ) from exc
        try:
            page_size = int(settings.option("page_size", DEFAULT_PAGE_SIZE))
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(settings.name, "records per request must be a whole number") from exc
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ConfigurationError(settings.name, f"records per request must be 1 to {MAX_PAGE_SIZE}")
        return cls(base, tables, query, zone, page_size)


class _OAuthGrants:
    """The grants of ``/oauth_token.do`` for the shared :class:`~connectors.oauth.TokenCache`.

    The refresh grant when the last answer carried a refresh token, else (or when that one is refused) the
    password grant. The refresh token stays in memory: with the password grant we can always get a new
    one, and a refresh token in the keychain would be one more secret to leak for no gain.
    """

    def __init__(self, connector: ServiceNowConnector) -> None:
        self._connector = connector
        self.cache = TokenCache(self.grant, margin=TOKEN_EXPIRY_MARGIN)
        self.used: list[str] = []  # the grant types used, in order (tests read it)

    async def grant(self, refresh_token: str | None) -> IssuedToken:
        settings = self._connector.settings
        client = {
            "client_id": str(settings.option("client_id", "")),
            "client_secret": settings.secret("client_secret"),
        }
        if not client["client_id"]:
            raise ConfigurationError(settings.name, "the OAuth client ID is not set")
        if refresh_token:
            try:
                return await self._ask(
                    {"grant_type": "refresh_token", "refresh_token": refresh_token, **client}
                )
            except (AuthenticationError, RequestRejectedError):
                self.cache.forget_refresh_token()  # revoked or expired: fall back to the password grant once
        return await self._ask(
            {
                "grant_type": "password",
                "username": self._connector.username(),
                "password": settings.secret("password"),
                **client,
            }
        )

    async def _ask(self, form: dict[str, str]) -> IssuedToken:
        http = self._connector.http
        self.used.append(form["grant_type"])
        try:
            response = await http.request("POST", TOKEN_PATH, data=form)
        except (AuthenticationError, RequestRejectedError) as exc:
            raise _with_hint(
                exc,
                "check the OAuth client ID and secret, the user name and password, and that the OAuth "
                "application is active",
                AuthenticationError,
            ) from exc
        body = http.json_of(response, "POST", TOKEN_PATH)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise BadResponseError(self._connector.name, f"POST {TOKEN_PATH} returned no access_token")
        try:
            lifetime = float(body.get("expires_in") or 1800)
        except (TypeError, ValueError):
            lifetime = 1800.0
        refresh = body.get("refresh_token")
        return IssuedToken(token, lifetime, refresh if isinstance(refresh, str) and refresh else None)


class ServiceNowConnector(Connector):
    spec = SPEC
    fields: ClassVar[tuple[str, ...]] = FIELDS  # what a page asks for (sysparm_fields)

    def __init__(self, settings: ConnectorSettings, http: HttpClient) -> None:
        super().__init__(settings, http)
        self._oauth = _OAuthGrants(self) if settings.auth_mode == "oauth" else None
        # Browser sign-in (issue 17): a bearer token renewed inside the auth flow, rotated tokens re-stored.
        self._consent = (
            consent_auth(settings, self.consent_provider(settings))
            if settings.auth_mode == CONSENT_AUTH_MODE
            else None
        )
        self._config: ServiceNowConfig | None = None
        self._basic_auth: httpx.BasicAuth | None = None
        # X-Total-Count of the first page of the last probe or fetch, per table (progress, check message).
        self.total_counts: dict[str, int] = {}

    @classmethod
    def client_options(cls, settings: ConnectorSettings) -> ClientOptions:
        """ServiceNow's error-body reader. Credentials are added per request (basic auth, or a bearer
        token that is renewed), so a missing secret surfaces in check() as a diagnosis, not in create()."""
        return ClientOptions(error_text=error_text)

    @classmethod
    def consent_provider(cls, settings: ConnectorSettings) -> consent_providers.Provider:
        """The instance is its own authorization server."""
        return consent_providers.servicenow(settings.base_url)

    @property
    def oauth_grants(self) -> list[str]:
        return self._oauth.used if self._oauth else []

    @property
    def oauth_tokens(self) -> TokenCache | None:
        """The access-token cache (OAuth only); tests move its clock."""
        return self._oauth.cache if self._oauth else None

    def config(self) -> ServiceNowConfig:
        if self._config is None:
            if self.settings.auth_mode not in ("basic", "oauth", CONSENT_AUTH_MODE):
                raise ConfigurationError(
                    self.name,
                    f"unknown auth mode {self.settings.auth_mode!r} (basic, oauth or {CONSENT_AUTH_MODE})",
                )
            self._config = ServiceNowConfig.from_settings(self.settings)
        return self._config

    def username(self) -> str:
        username = str(self.settings.option("username", "")).strip()
        if not username:
            raise ConfigurationError(self.name, "the user name is not set")
        return username

    # --- requests -------------------------------------------------------------------------------------

    async def _get(self, table: str, params: Mapping[str, str]) -> httpx.Response:
        """One Table API GET; with OAuth, a 401 renews the token once and retries, then fails."""
        path = TABLE_PATH.format(table=table)
        if self._consent is not None:
            return await self.http.request("GET", path, params=params, auth=self._consent)
        if self._oauth is None:
            if self._basic_auth is None:
                self._basic_auth = httpx.BasicAuth(self.username(), self.settings.secret("password"))
            return await self.http.request("GET", path, params=params, auth=self._basic_auth)
        for attempt in (1, 2):
            token = await self._oauth.cache.token()
            try:
                return await self.http.request(
                    "GET", path, params=params, headers={"Authorization": f"Bearer {token}"}
                )
            except AuthenticationError as exc:
                if attempt == 2:
                    raise _with_hint(exc, "a freshly issued OAuth token was refused too") from exc
                self._oauth.cache.invalidate()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _get_explained(self, table: str, params: Mapping[str, str]) -> httpx.Response:
        """:meth:`_get` with ServiceNow's meaning of each refusal put into the error's hint."""
        try:
            return await self._get(table, params)
        except AuthenticationError as exc:
            if exc.hint:
                raise
            raise _with_hint(
                exc, "check the user name and password; the account must be active, not locked out and local"
            ) from exc
        except PermissionDeniedError as exc:
            raise _with_hint(exc, PERMISSION_HINT.format(table=table)) from exc
        except NotFoundError as exc:
            raise _with_hint(exc, "check the instance URL, e.g. https://yourcompany.service-now.com") from exc
        except RequestRejectedError as exc:
            if exc.status == 400 and "invalid table" in exc.server_message.lower():
                raise _with_hint(
                    exc, f"this instance has no table named {table!r}; check the Tables option", NotFoundError
                ) from exc
            raise

    def _result(self, response: httpx.Response, table: str) -> list[dict[str, Any]]:
        path = TABLE_PATH.format(table=table)
        return _result_of(self.http.json_of(response, "GET", path), self.name, path)

    # --- check ----------------------------------------------------------------------------------------

    async def probe(self) -> None:
        """Read one record of every table: proves the URL, TLS, credentials, the role and the time zone."""
        config = self.config()
        for table in config.tables:
            params = {
                "sysparm_limit": "1",
                "sysparm_fields": "sys_id,sys_updated_on",
                "sysparm_display_value": "all",
                "sysparm_exclude_reference_link": "true",
            }
            if config.query:
                params["sysparm_query"] = config.query
            response = await self._get_explained(table, params)
            records = self._result(response, table)
            self.total_counts[table] = _int_header(response, "X-Total-Count", len(records))
            if records:
                self._check_time_zone(records[0], config.zone)

    def _check_time_zone(self, record: Mapping[str, Any], zone: tzinfo) -> None:
        """Compare a record's UTC value with its display value: they differ by the account's zone offset."""
        field = record.get("sys_updated_on")
        if not isinstance(field, dict):
            return
        try:
            stored = parse_servicenow_datetime(str(field.get("value") or ""), UTC)
            shown = parse_servicenow_datetime(str(field.get("display_value") or ""), UTC).replace(tzinfo=None)
        except ValueError:
            return  # a custom date format: nothing to compare reliably
        account_offset = shown - stored.replace(tzinfo=None)
        configured_offset = stored.astimezone(zone).utcoffset() or timedelta(0)
        if account_offset != configured_offset:
            raise ConfigurationError(
                self.name,
                f"the API account shows times at UTC{_offset_text(account_offset)} but the time zone option "
                f"({zone}) is UTC{_offset_text(configured_offset)} then; set the option to the account's "
                "time zone, or the sync's date bound will be off by the difference",
            )

    async def check(self) -> CheckResult:
        result = await super().check()
        if not result.ok:
            return result
        counts = ", ".join(f"{table}: {count:,}" for table, count in self.total_counts.items())
        empty = [table for table, count in self.total_counts.items() if count == 0]
        hint = (
            f"No record is visible in {', '.join(empty)}: if that is unexpected, the account lacks read "
            "access to the rows or the encoded query matches nothing."
            if empty
            else ""
        )
        return CheckResult(result.problem, f"{result.message} ({counts} records)", hint, write=result.write)

    # --- writes ---------------------------------------------------------------------------------------

    can_write = True

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        """One Table API request with the configured auth (:meth:`_get`'s rules, for any method): with OAuth
        a 401 renews the token once, which is safe for a write too, since a 401 means nothing was done."""
        if self._consent is not None:
            return await self.http.request(
                method, path, params=params, json_body=json_body, auth=self._consent, idempotent=idempotent
            )
        if self._oauth is None:
            if self._basic_auth is None:
                self._basic_auth = httpx.BasicAuth(self.username(), self.settings.secret("password"))
            return await self.http.request(
                method, path, params=params, json_body=json_body, auth=self._basic_auth, idempotent=idempotent
            )
        for attempt in (1, 2):
            token = await self._oauth.cache.token()
            try:
                return await self.http.request(
                    method,
                    path,
                    params=params,
                    json_body=json_body,
                    headers={"Authorization": f"Bearer {token}"},
                    idempotent=idempotent,
                )
            except AuthenticationError as exc:
                if attempt == 2:
                    raise _with_hint(exc, "a freshly issued OAuth token was refused too") from exc
                self._oauth.cache.invalidate()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _records(self, table: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        path = TABLE_PATH.format(table=table)
        response = await self._send("GET", path, params=params)
        return _result_of(self.http.json_of(response, "GET", path), self.name, path)

    async def write_check(self) -> WriteCheck:
        """The account's roles (``sys_user_has_role``): itil, sn_incident_write or admin may create
        incidents and add work notes. Reading roles needs no write, but many instances hide the table from
        non-admins: then the answer is "unknown", and the first write says."""
        if self._consent is not None:
            return WriteCheck(
                WriteAccess.UNKNOWN, "signed in through the browser as the analyst; the first write will tell"
            )
        try:
            rows = await self._records(
                "sys_user_has_role",
                {
                    "sysparm_query": f"user.user_name={_query_value(self.username())}",
                    "sysparm_fields": "role.name",
                    "sysparm_limit": "500",
                },
            )
        except PermissionDeniedError:
            return WriteCheck(
                WriteAccess.UNKNOWN,
                "the account may not read its roles (sys_user_has_role); the first write will tell",
            )
        except ConnectorError as exc:
            return WriteCheck(WriteAccess.UNKNOWN, f"could not read the account's roles: {exc}")
        roles = sorted({str(row.get("role.name") or "").strip() for row in rows} - {""})
        if not roles:
            return WriteCheck(
                WriteAccess.UNKNOWN,
                "no role of the account is visible to it; the first write will tell",
            )
        allowing = [role for role in roles if role in WRITE_ROLES]
        if allowing:
            return WriteCheck(
                WriteAccess.ALLOWED, f"may create incidents and add work notes (role {allowing[0]})"
            )
        return WriteCheck(
            WriteAccess.DENIED,
            f"none of the account's roles ({', '.join(roles)}) creates incidents or adds work notes; "
            f"{WRITE_PERMISSION_HINT}",
        )

    def _create_table(self) -> str:
        table = str(self.settings.option("create_table", DEFAULT_CREATE_TABLE)).strip()
        try:
            return parse_tables(table)[0]
        except ValueError as exc:
            raise ConfigurationError(self.name, f"table for new incidents: {exc}") from exc

    async def _find_created(self, table: str, correlation_id: str) -> CreatedTicket | None:
        """The record an earlier create made for ``correlation_id`` (ServiceNow's field for an external
        system's id), if any."""
        rows = await self._records(
            table,
            {
                "sysparm_query": f"correlation_id={_query_value(correlation_id)}",
                "sysparm_fields": "sys_id,number",
                "sysparm_limit": "1",
            },
        )
        if not rows:
            return None
        return self._created(table, rows[0], existed=True)

    def _created(self, table: str, record: Mapping[str, Any], *, existed: bool) -> CreatedTicket:
        number = plain_value(record.get("number"))
        sys_id = plain_value(record.get("sys_id"))
        if not number or not sys_id:
            raise BadResponseError(
                self.name, f"{TABLE_PATH.format(table=table)} answered a record without number or sys_id"
            )
        base = self.config().base
        return CreatedTicket(number, number, source_url(base, table, sys_id), existed=existed)

    async def _ci_sys_id(self, name: str) -> str | None:
        """The sys_id of the one CI named ``name``; None when there is none, several, or we may not look
        (a reference set to an unknown name would store a broken reference, so only a sure match is set)."""
        try:
            rows = await self._records(
                "cmdb_ci",
                {
                    "sysparm_query": f"name={_query_value(name)}",
                    "sysparm_fields": "sys_id",
                    "sysparm_limit": "2",
                },
            )
        except (PermissionDeniedError, NotFoundError, RequestRejectedError):
            return None
        return plain_value(rows[0].get("sys_id")) if len(rows) == 1 else None

    async def create_incident(self, incident: NewIncident) -> CreatedTicket:
        """Look for the incident by ``correlation_id`` first, create it only if absent.

        The POST is never retried on its own (a timeout may come after the insert): when it fails without
        an answer, or with a 5xx, the lookup runs once more and returns what the insert made, if it did.
        """
        table = self._create_table()
        found = await self._find_created(table, incident.correlation_id)
        if found is not None:
            return found
        impact, urgency = IMPACT_URGENCY.get(incident.severity, ("2", "2"))
        body: dict[str, str] = {
            "short_description": incident.title[:160],
            "description": incident.description,
            "impact": impact,
            "urgency": urgency,
            "correlation_id": incident.correlation_id,
            "correlation_display": "Runbook Desk",
        }
        if incident.configuration_item:
            ci = await self._ci_sys_id(incident.configuration_item)
            if ci:
                body["cmdb_ci"] = ci
        path = TABLE_PATH.format(table=table)
        try:
            response = await self._send(
                "POST",
                path,
                params={"sysparm_fields": "sys_id,number", "sysparm_exclude_reference_link": "true"},
                json_body=body,
                idempotent=False,
            )
        except PermissionDeniedError as exc:
            raise _with_hint(exc, WRITE_PERMISSION_HINT) from exc
        except (ConnectorTimeoutError, ConnectionFailedError, ServerError):
            found = await self._find_created(table, incident.correlation_id)
            if found is not None:
                return CreatedTicket(found.number, found.external_id, found.url, existed=False)
            raise
        payload = self.http.json_of(response, "POST", path)
        record = payload.get("result") if isinstance(payload, dict) else None
        if not isinstance(record, dict):
            raise BadResponseError(self.name, f"POST {path} answered without a result record")
        return self._created(table, record, existed=False)

    async def add_work_note(self, note: WorkNote) -> str | None:
        """``work_notes`` on the ticket's own table (``sys_class_name``) by its ``sys_id``; ServiceNow
        journals it and returns the record, not a note id, so there is none to return."""
        payload = note.ticket_payload
        table = plain_value(payload.get("sys_class_name")) or DEFAULT_CREATE_TABLE
        sys_id = plain_value(payload.get("sys_id"))
        if not sys_id:  # imported from a file, never synced: find it by number
            rows = await self._records(
                table,
                {
                    "sysparm_query": f"number={_query_value(note.ticket_external_id)}",
                    "sysparm_fields": "sys_id",
                    "sysparm_limit": "1",
                },
            )
            sys_id = plain_value(rows[0].get("sys_id")) if rows else None
            if not sys_id:
                raise NotFoundError(
                    self.name,
                    method="GET",
                    path=TABLE_PATH.format(table=table),
                    status=404,
                    server_message=f"no {table} record numbered {note.ticket_external_id}",
                )
        path = f"{TABLE_PATH.format(table=table)}/{sys_id}"
        try:
            await self._send(
                "PATCH",
                path,
                params={"sysparm_fields": "sys_id"},
                json_body={"work_notes": note.text()},
                idempotent=False,
            )
        except PermissionDeniedError as exc:
            raise _with_hint(exc, WRITE_PERMISSION_HINT) from exc
        return None

    # --- fetch ----------------------------------------------------------------------------------------

    def streams(self, since: Cursor | None, page_size: int | None) -> list[HttpStream[Any]]:
        """Each table in turn, keyset-paged from its stored position (see the module docstring); the
        tables share one cursor holding every table's position."""
        config = self.config()
        limit = max(1, min(page_size or config.page_size, MAX_PAGE_SIZE))
        positions = positions_from_cursor(since, config.tables)
        return [TableStream(self, since, table, positions, limit) for table in config.tables]

    def already_stored(self, ticket: TicketValues, cursor: Cursor) -> bool:
        """At the cursor's time with a sys_id at or before its table's last one: stored by an earlier page.

        The base class compares ``external_id`` (INC0010001) with ``last_id``, but ours is a sys_id (the
        source's own order), and each table has its own position in ``cursor.extra``.
        """
        sys_id = plain_value(ticket.raw_payload.get("sys_id"))
        if ticket.updated_at is None or not sys_id:
            return False
        tables = self.config().tables
        positions = positions_from_cursor(cursor, tables)
        table = plain_value(ticket.raw_payload.get("sys_class_name"))
        if table not in positions:
            if len(tables) != 1:
                return False  # cannot tell which table's position applies: let the upsert decide
            table = tables[0]
        position = positions[table]
        return (
            position is not None
            and position[1] is not None
            and ticket.updated_at == position[0]
            and sys_id <= position[1]
        )

    def page_params(self, position: Position | None, limit: int, offset: int) -> dict[str, str]:
        """The query parameters of one page (every name ``sysparm_``: others are silently ignored)."""
        return self._page_query(position, limit, offset)[0]

    def _page_query(self, position: Position | None, limit: int, offset: int) -> tuple[dict[str, str], bool]:
        """:meth:`page_params`, and whether its date bound is exact (not stepped back over a DST change)."""
        config = self.config()
        terms: list[str] = []
        exact = True
        if position is not None:
            moment, last_id = position
            literal, exact = date_generate(moment, config.zone)
            terms.append(f"sys_updated_on>={literal}")
            if last_id and exact:
                # (updated > T) or (updated = T and sys_id > last): ^OR binds to the term before it.
                terms.append(f"sys_updated_on>{literal}^ORsys_id>{last_id}")
        if config.query:
            terms.append(config.query)
        terms.append("ORDERBYsys_updated_on^ORDERBYsys_id")
        params = {
            "sysparm_query": "^".join(terms),
            "sysparm_fields": ",".join(self.fields),
            "sysparm_display_value": "all",
            "sysparm_exclude_reference_link": "true",
            "sysparm_limit": str(limit),
            "sysparm_offset": str(offset),
        }
        return params, exact


@dataclass(frozen=True, slots=True)
class _TablePage:
    """A table page's token: the keyset position the query starts after, and the offset within it."""

    position: Position | None
    offset: int


class TableStream(HttpStream[_TablePage]):
    """One table, keyset-paged: each page asks for records after the last one read; the offset only steps
    over a page with nothing past the position (rows hidden by read ACLs)."""

    # ACLs remove rows after a page is cut, so a run of empty pages with a ``next`` is what an account
    # that may read a sliver of a large table sees; allow a long run before calling the server stuck.
    max_empty_pages = 100

    def __init__(
        self,
        connector: ServiceNowConnector,
        since: Cursor | None,
        table: str,
        positions: dict[str, Position | None],
        limit: int,
    ) -> None:
        super().__init__(connector, since)
        self.servicenow = connector
        self.table = table
        self.path = TABLE_PATH.format(table=table)
        self.positions = positions  # shared by the tables of one fetch: the cursor holds them all
        self.limit = limit
        stored = positions[table]
        # Where the first query starts: the lookback before the stored position.
        self.start: Position | None = None if stored is None else (stored[0] - SPEC.timestamp_precision, None)
        self.config = connector.config()
        self._position: Position | None = self.start  # the last record read
        self._floor = _floor_of(self.start)  # records at or before it were read already
        self._exact = True

    def request(self, token: _TablePage | None) -> PageRequest:
        position = token.position if token is not None else self.start
        params, self._exact = self.servicenow._page_query(position, self.limit, token.offset if token else 0)
        self._position = position
        self._floor = _floor_of(position)
        return PageRequest("GET", self.path, params)

    async def send(self, request: PageRequest) -> httpx.Response:
        assert request.params is not None
        return await self.servicenow._get_explained(self.table, request.params)

    def records(self, body: Any, request: PageRequest) -> list[dict[str, Any]]:
        return _result_of(body, self.servicenow.name, self.path)

    async def normalise(self, record: dict[str, Any]) -> Reading:
        sys_id = plain_value(record.get("sys_id"))
        try:
            updated = record_datetime(record.get("sys_updated_on"), self.config.zone)
        except ValueError:
            updated = None
        if not sys_id or updated is None:
            # Without both we cannot tell where we are; going on could skip or loop.
            raise BadResponseError(
                self.servicenow.name,
                f"GET {self.path} returned a record without its sys_id or sys_updated_on",
            )
        key = (updated, sys_id)
        if key <= self._floor:
            if not self._exact:
                return None  # re-read on purpose: the date bound stepped back over a DST change
            # The query asked for what comes after this: the server ignored it. The guard judges.
            return AlreadyRead(plain_value(record.get("number")) or sys_id, updated)
        position = self._position
        if position is not None and position[1] is not None and key < (position[0], position[1]):
            raise BadResponseError(self.servicenow.name, f"GET {self.path} returned records out of order")
        self._position = key
        try:
            return self.convert(record)
        except ValueError as exc:
            raise ValueError(f"{self.table} {self.record_id(record)}: {exc}") from None

    def convert(self, record: dict[str, Any]) -> Reading:
        """One record, its position checked, as what the sync stores: a ticket here; a subclass over another
        table (the knowledge connector's ``kb_knowledge``) returns its own record type."""
        return normalise_record(record, self.table, self.config.base, self.config.zone)

    def record_id(self, record: dict[str, Any]) -> str | None:
        return text_value(record.get("number")) or plain_value(record.get("sys_id"))

    def cursor_after(self, previous: Cursor, tickets: Sequence[SyncRecord]) -> Cursor:
        """Every table's position; this table's moves to the last record read, never back (a page of
        lookback records ends before the stored position)."""
        position, current = self._position, self.positions[self.table]
        if (
            position is not None
            and position[1] is not None
            and (current is None or _key(position) > _key(current))
        ):
            self.positions[self.table] = position
        return cursor_for(self.positions)

    def next_page_token(self, page: StreamPage[_TablePage]) -> _TablePage | None:
        if page.token is None:  # the first page's count is the table's (progress, the check message)
            self.servicenow.total_counts[self.table] = _int_header(
                page.response, "X-Total-Count", len(page.records)
            )
        links = parse_link_header(page.response.headers.get("Link"))
        # The length of a page never says "done" (ACLs shorten pages): only a missing ``next`` does.
        if not ("next" in links if links else len(page.records) >= self.limit):
            return None
        asked = page.token.position if page.token is not None else self.start
        if self._position != asked:
            return _TablePage(self._position, 0)
        # Nothing past our position on this page (rows hidden by ACLs): step over it by offset, which is safe
        # because nothing of ours is on it.
        offset = page.token.offset if page.token is not None else 0
        next_offset = link_offset(links.get("next"))
        if next_offset is None or next_offset <= offset:
            next_offset = offset + max(len(page.records), self.limit)
        return _TablePage(asked, next_offset)


def _floor_of(position: Position | None) -> tuple[datetime, str]:
    """The (time, sys_id) at or before which a record was read already; "" sorts before every sys_id, so a
    position without an id re-reads its whole second."""
    if position is None:
        return datetime.min.replace(tzinfo=UTC), ""
    return position[0], position[1] or ""


def _query_value(value: str) -> str:
    """A value for an encoded-query term: ``^`` separates terms, so a literal one is written ``^^``."""
    return value.replace("^", "^^")


def _result_of(body: Any, connector_name: str, path: str) -> list[dict[str, Any]]:
    result = body.get("result") if isinstance(body, dict) else None
    if not isinstance(result, list) or not all(isinstance(record, dict) for record in result):
        raise BadResponseError(connector_name, f"GET {path} returned JSON without a 'result' list of records")
    return result


def _int_header(response: httpx.Response, name: str, default: int) -> int:
    try:
        return int(response.headers.get(name, default))
    except ValueError:
        return default


def _offset_text(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
