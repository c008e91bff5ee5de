"""Jira Cloud and Jira Data Center / Server: issues become tickets, synced incrementally by update time.

One connector serves both deployments because the issue model is the same and only the edges differ:

==============  ==================================================  =========================================
                Cloud                                               Data Center / Server
==============  ==================================================  =========================================
search          ``POST /rest/api/3/search/jql``, paged by an        ``POST /rest/api/2/search``, paged by
                opaque ``nextPageToken`` until ``isLast`` (no        ``startAt`` / ``maxResults`` / ``total``
                ``total``); the old ``/rest/api/3/search`` and
                ``/rest/api/2/search`` answer 410 Gone
auth            Basic, account email + API token                    ``Authorization: Bearer <personal token>``
description     Atlassian Document Format (JSON)                    wiki markup
==============  ==================================================  =========================================

Incremental sync. JQL compares ``updated`` at *minute* precision and reads the literal in the time zone of the
account running the query (``timeZone`` of ``/myself``), while the results carry millisecond timestamps with
an offset (``2022-06-09T16:29:31.871-0700``). So each sync asks for ``updated >= "<the cursor's minute, in the
account's zone>"`` and drops, locally, what the cursor says is stored already: records updated before the
cursor's exact time, and records at exactly that time whose key is in ``Cursor.extra["keys_at_cursor"]``.
That set (rather than a "key <= last key" rule) makes the tie-break independent of how Jira orders keys of
equal timestamps (``OPS-10`` sorts after ``OPS-9`` in Jira but before it as text). Cloud rejects a JQL with
no restriction ("Unbounded JQL queries are not allowed here"), so a full sync asks for ``updated >=
"1970-01-01 00:00"``: one query shape for full and incremental syncs.

Offset paging (Data Center's ``startAt``; Cloud's ``nextPageToken`` too, wherever Jira resolves it as an
offset) shifts when an issue already read is edited mid-sync: it moves to the end of the ``ORDER BY updated``
list and the next page skips one unread issue for good (the next sync starts after it). So each query restarts
at the last record's minute (keyset paging) on both deployments. On Data Center the offset then re-reads a
quarter of the records already seen in that minute (never a whole page, so every page brings a new record
for the framework's no-progress guard); on Cloud the restart re-reads all of them, fewer than a page, and the
token is followed only through a burst of a page or more of issues updated within one minute. The re-read
records are behind the cursor and dropped locally.

Resolution notes: Jira has no standard field. ``resolution_source`` picks a custom field (cheap: one more
field in the same search) or the last comment of a resolved issue (asks the search for ``comment``, which
makes every page heavier but costs no per-issue request), or nothing (the default). Jira's own "Resolution"
is a verdict ("Fixed", "Duplicate"), not notes, and stays in the raw payload, as in the CSV import.

Normalisation matches the Jira CSV / jira-rest import presets (``source_system`` "jira", ``external_id`` the
issue key, the same severity and kind words), so an issue imported from an export and then synced is one
ticket, not two.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, ClassVar

import httpx

from connectors.atlassian import (
    AUTH_API_TOKEN,
    AUTH_CONSENT,
    AUTH_FIELDS,
    AUTH_PAT,
    CLOUD,
    DATA_CENTER,
    MinuteProgress,
    atlassian_auth,
    consent_api_base,
    minute_literal,
    stored_at_cursor,
    zone_named,
)
from connectors.atlassian import deployment_of as atlassian_deployment_of
from connectors.base import (
    AlreadyRead,
    AuthMode,
    CheckProblem,
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
    TokenT,
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
    GoneError,
    HttpStatusError,
    NotFoundError,
    PermissionDeniedError,
    RequestRejectedError,
    ServerError,
)
from connectors.http import HttpClient, default_error_text
from connectors.oauth_consent import providers as consent_providers
from connectors.oauth_consent.connector import consent_fields, consent_mode
from core.importing.mapping import parse_datetime, parse_kind, parse_severity
from core.matching.text import adf_to_text, jira_wiki_to_text
from core.store.tickets import MAX_TITLE, RESOLVED_STATES, TicketValues

SOURCE_SYSTEM = "jira"  # the Jira CSV and jira-rest import presets use the same, so tickets merge


RESOLUTION_NONE = "none"
RESOLUTION_FIELD = "custom_field"
RESOLUTION_LAST_COMMENT = "last_comment"

DEFAULT_PAGE_SIZE = 50  # Cloud returns at most 100 issues a page when fields are asked for; DC's default
DC_REREAD = 10  # issues re-read before each Data Center offset (at most a quarter page): mid-sync edits
FULL_SYNC_BOUND = "1970-01-01 00:00"
ORDER_BY = "ORDER BY updated ASC, key ASC"
# The widest UTC offset west of Greenwich: a bound this far back is at or before the cursor in any zone.

BASE_FIELDS: tuple[str, ...] = (
    "summary",
    "description",
    "status",
    "priority",
    "assignee",
    "issuetype",
    "created",
    "updated",
    "resolutiondate",
    "components",
    "labels",
)

_PROJECT_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_CUSTOM_FIELD = re.compile(r"^customfield_\d+$")
_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)
_SYSTEM_PREFIX = re.compile(r"^\s*\[system\]\s*", re.IGNORECASE)

# Writing (issue 13): the project permissions that creating an issue and commenting need.
WRITE_PERMISSIONS = ("CREATE_ISSUES", "ADD_COMMENTS")
DEFAULT_ISSUE_TYPE = "Task"
WRITE_HINT = (
    "the account needs the 'Create issues' and 'Add comments' permissions in the project "
    "(Jira project settings > Permissions)"
)
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")

BROWSE_HINT = (
    "the account needs the 'Browse projects' permission on the projects in scope "
    "(Jira project settings > Permissions)"
)

SPEC = ConnectorSpec(
    type="jira",
    display_name="Jira",
    kind=ConnectorKind.TICKETING,
    auth_modes=(
        AuthMode(AUTH_API_TOKEN, "Email + API token (Jira Cloud)", "Create a token at id.atlassian.com."),
        AuthMode(
            AUTH_PAT,
            "Personal access token (Data Center / Server)",
            "Profile > Personal Access Tokens; Jira 8.14 or later.",
        ),
        consent_mode(
            "Jira Cloud, signed in in the browser: an OAuth 2.0 (3LO) app from developer.atlassian.com with "
            "the Jira API scopes read:jira-work, write:jira-work, read:jira-user and the callback URL below."
        ),
    ),
    fields=(
        ConfigField(
            "deployment",
            "Deployment",
            FieldType.CHOICE,
            default=CLOUD,
            choices=((CLOUD, "Jira Cloud (…atlassian.net)"), (DATA_CENTER, "Jira Data Center / Server")),
            help="Cloud and Data Center speak different API versions and take different credentials.",
            page="where",
        ),
        *AUTH_FIELDS,
        *consent_fields(secret_required=True, secret_help="Atlassian requires it for every token request."),
        ConfigField(
            "projects",
            "Project keys",
            required=False,
            placeholder="OPS, ITSUP",
            help="Comma-separated project keys to sync; empty means every project the account can browse.",
        ),
        ConfigField(
            "jql",
            "Extra JQL filter",
            FieldType.MULTILINE,
            required=False,
            placeholder='issuetype in (Incident, "Service Request")',
            help="ANDed with the projects; leave out ORDER BY (the sync orders by update time).",
        ),
        ConfigField(
            "resolution_source",
            "Resolution notes from",
            FieldType.CHOICE,
            required=False,
            default=RESOLUTION_NONE,
            choices=(
                (RESOLUTION_NONE, "Nothing"),
                (RESOLUTION_FIELD, "A custom field"),
                (RESOLUTION_LAST_COMMENT, "The last comment of a resolved issue (larger downloads)"),
            ),
            help="Jira has no standard resolution-notes field.",
        ),
        ConfigField(
            "resolution_field",
            "Resolution notes field",
            required=False,
            placeholder="customfield_10050",
            help="The field id (see Jira admin > Custom fields), used when notes come from a custom field.",
        ),
        ConfigField(
            "ci_field",
            "Configuration item field",
            required=False,
            placeholder="customfield_10060",
            help="Optional: a custom field naming the affected service or host.",
        ),
        ConfigField(
            "write_back",
            "Post approved runbooks to the ticket",
            FieldType.BOOLEAN,
            required=False,
            default=False,
            help="When an analyst approves a runbook for a synced issue, add it as a comment (title, link, "
            "confidence, who approved). Needs the 'Add comments' permission.",
        ),
        ConfigField(
            "create_project",
            "Project for new issues",
            required=False,
            placeholder="OPS",
            help="Where 'Create incident' from the Alerts page creates the issue; empty: the first of the "
            "project keys above.",
        ),
        ConfigField(
            "create_issue_type",
            "Issue type for new issues",
            required=False,
            default=DEFAULT_ISSUE_TYPE,
            help="E.g. Incident in a Jira Service Management project; Task exists in most projects.",
        ),
    ),
    timestamp_precision=timedelta(minutes=1),
    description="Jira Software / Jira Service Management issues, Cloud or Data Center.",
    docs_url="https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/",
    icon="jira.svg",
)


def jira_error_text(response: httpx.Response) -> str:
    """Jira's own error text: ``{"errorMessages": [...], "errors": {field: message}}`` joined.

    A 400 for bad JQL carries the parser's sentence here, which is exactly what the analyst must read. Data
    Center adds ``X-Authentication-Denied-Reason`` (e.g. a CAPTCHA after failed logins), which no body says.
    """
    parts: list[str] = []
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        messages = body.get("errorMessages")
        if isinstance(messages, list):
            parts.extend(str(message) for message in messages if message)
        errors = body.get("errors")
        if isinstance(errors, Mapping):
            parts.extend(f"{name}: {message}" for name, message in errors.items() if message)
    text = "; ".join(parts) if parts else default_error_text(response)
    denied = response.headers.get("X-Authentication-Denied-Reason")
    if denied:
        text = f"{text} (Jira denied authentication: {denied})" if text else f"Jira denied: {denied}"
    return _shorten(text)


def _shorten(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def deployment_of(settings: ConnectorSettings) -> str:
    """The deployment, checked against the auth mode (:func:`connectors.atlassian.deployment_of`)."""
    return atlassian_deployment_of(settings, "Jira")


def jql_minute(moment: datetime, zone: tzinfo | None) -> str:
    """The JQL literal ``yyyy-MM-dd HH:mm`` that Jira reads as a time at or before ``moment``
    (:func:`connectors.atlassian.minute_literal`)."""
    return minute_literal(moment, zone, "%Y-%m-%d %H:%M")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _name(value: Any, key: str = "name") -> str | None:
    if not isinstance(value, Mapping) or value.get(key) is None:
        return None
    return str(value[key]).strip() or None


def _rich_text(value: Any) -> str:
    """Description or comment body: ADF JSON on Cloud's v3 API, wiki markup on Data Center's v2."""
    if value is None:
        return ""
    if isinstance(value, Mapping):
        return adf_to_text(value) if value.get("type") == "doc" else ""
    return jira_wiki_to_text(str(value))


def _field_text(value: Any) -> str | None:
    """A custom field's value as text: rich text, an option (``value``), a user, a list of either."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        if value.get("type") == "doc":
            return adf_to_text(value) or None
        for key in ("value", "displayName", "name"):
            if value.get(key):
                return str(value[key]).strip() or None
        return None
    if isinstance(value, list):
        parts = [text for text in (_field_text(item) for item in value) if text]
        return ", ".join(parts) or None
    return jira_wiki_to_text(str(value)) or None


def _time(fields: Mapping[str, Any], name: str) -> datetime | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    try:
        return parse_datetime(str(value))
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


class JiraConnector(Connector):
    spec: ClassVar[ConnectorSpec] = SPEC

    def __init__(self, settings: ConnectorSettings, http: HttpClient) -> None:
        super().__init__(settings, http)
        self.deployment = deployment_of(settings)
        self.api = "/rest/api/3" if self.cloud else "/rest/api/2"
        self.search_path = f"{self.api}/search/jql" if self.cloud else f"{self.api}/search"
        self._account_name: str | None = None
        self._probe_found_issues = True

    @classmethod
    def client_options(cls, settings: ConnectorSettings) -> ClientOptions:
        """Basic email:API token for Cloud, a bearer personal access token for Data Center; a browser sign-in
        (3LO) goes through Atlassian's API gateway for the site's cloud id."""
        deployment = deployment_of(settings)
        return ClientOptions(
            auth=atlassian_auth(settings, deployment),
            error_text=jira_error_text,
            base_url=consent_api_base(settings) if settings.auth_mode == AUTH_CONSENT else None,
        )

    @classmethod
    def consent_provider(cls, settings: ConnectorSettings) -> consent_providers.Provider:
        return consent_providers.atlassian()

    def already_stored(self, ticket: TicketValues, cursor: Cursor) -> bool:
        """At the cursor's exact time, stored means "one of the keys the cursor lists", not "key <= last key":
        as text ``OPS-10`` sorts before ``OPS-9``, so the default rule would drop a new ``OPS-10``."""
        return stored_at_cursor(ticket, cursor)

    @property
    def cloud(self) -> bool:
        return self.deployment == CLOUD

    # --- check ------------------------------------------------------------------------------------------

    async def probe(self) -> None:
        """``/myself`` proves the credentials (a bad Cloud token would otherwise read as anonymous), then a
        one-issue search of the configured scope proves read permission and valid JQL."""
        myself = await self._myself()
        self._account_name = _name(myself, "displayName")
        payload = await self._search(self._jql(FULL_SYNC_BOUND), ("updated",), page_size=1, start_at=0)
        self._probe_found_issues = bool(_issues_of(payload, self.name))

    async def check(self) -> CheckResult:
        result = await super().check()
        if not result.ok:
            return result
        who = f" as {self._account_name}" if self._account_name else ""
        if not self._probe_found_issues:
            return CheckResult(
                CheckProblem.OK,
                f"{self.name}: connected{who}, but the search found no issues",
                f"If these projects do hold issues, {BROWSE_HINT}.",
                write=result.write,
            )
        return CheckResult(
            CheckProblem.OK, f"{self.name}: connected{who} and allowed to read issues", write=result.write
        )

    # --- writes -------------------------------------------------------------------------------------------

    can_write = True

    def _create_project(self, *, required: bool) -> str | None:
        project = str(self.settings.option("create_project", "")).strip().upper()
        if not project:
            keys = [
                p.strip().upper() for p in str(self.settings.option("projects", "")).split(",") if p.strip()
            ]
            project = keys[0] if keys else ""
        if not project:
            if required:
                raise ConfigurationError(
                    self.name,
                    "set the project for new issues (or a project key in the scope) to create issues",
                )
            return None
        if not _PROJECT_KEY.match(project):
            raise ConfigurationError(self.name, f"{project!r} is not a Jira project key (like OPS)")
        return project

    async def write_check(self) -> WriteCheck:
        """``GET /mypermissions`` for the project new issues go to: "Create issues" and "Add comments".

        Without a project, Jira answers whether the account has them in *any* project, so the answer is
        only "allowed somewhere"; the message says so."""
        try:
            project = self._create_project(required=False)
            params = {"permissions": ",".join(WRITE_PERMISSIONS)}
            if project:
                params["projectKey"] = project
            body = await self.http.get_json(f"{self.api}/mypermissions", params=params)
        except ConnectorError as exc:
            return WriteCheck(WriteAccess.UNKNOWN, f"could not read the account's permissions: {exc}")
        granted = body.get("permissions") if isinstance(body, Mapping) else None
        if not isinstance(granted, Mapping):
            return WriteCheck(WriteAccess.UNKNOWN, f"GET {self.api}/mypermissions answered no permissions")
        missing = [
            key
            for key in WRITE_PERMISSIONS
            if not (isinstance(granted.get(key), Mapping) and granted[key].get("havePermission") is True)
        ]
        where = f"in {project}" if project else "in some project (no project for new issues is set)"
        if missing:
            return WriteCheck(WriteAccess.DENIED, f"lacks {', '.join(missing)} {where}; {WRITE_HINT}")
        return WriteCheck(WriteAccess.ALLOWED, f"may create issues and add comments {where}")

    def _document(self, text: str) -> Any:
        """A description or comment body: Atlassian Document Format for /rest/api/3 (Cloud), where plain
        text is refused, and plain text (wiki markup) for /rest/api/2 (Data Center)."""
        if not self.cloud:
            return text
        paragraphs: list[dict[str, Any]] = []
        for line in text.split("\n"):
            if not line.strip():
                continue
            node: dict[str, Any] = {"type": "text", "text": line}
            if re.fullmatch(r"https?://\S+", line.strip()):
                node["marks"] = [{"type": "link", "attrs": {"href": line.strip()}}]
            paragraphs.append({"type": "paragraph", "content": [node]})
        return {"type": "doc", "version": 1, "content": paragraphs}

    def _created(self, key: str, *, existed: bool) -> CreatedTicket:
        return CreatedTicket(key, key, f"{self.settings.base_url.rstrip('/')}/browse/{key}", existed=existed)

    async def _find_created(self, label: str) -> CreatedTicket | None:
        """The issue an earlier create labelled with ``label``. Jira's search index can lag a create by a
        moment, so a create retried within a second of the first could miss it; the create is never
        retried by the client itself (it is not idempotent), which leaves only a caller's quick retry."""
        payload = await self._search(
            f"labels = {_quote(label)}", ("summary", "labels"), page_size=1, start_at=0
        )
        issues = _issues_of(payload, self.name)
        if not issues:
            return None
        key = str(issues[0].get("key") or "")
        if not key:
            raise BadResponseError(self.name, f"POST {self.search_path} answered an issue without a key")
        return self._created(key, existed=True)

    async def create_incident(self, incident: NewIncident) -> CreatedTicket:
        """Search for the label derived from the correlation id, create the issue only if none has it."""
        project = self._create_project(required=True)
        label = correlation_label(incident.correlation_id)
        found = await self._find_created(label)
        if found is not None:
            return found
        issue_type = str(self.settings.option("create_issue_type", DEFAULT_ISSUE_TYPE)).strip()
        fields: dict[str, Any] = {
            "project": {"key": project},
            "issuetype": {"name": issue_type or DEFAULT_ISSUE_TYPE},
            "summary": " ".join(incident.title.split())[:255],  # one line, at most 255 characters
            "description": self._document(incident.description),
            "labels": [label],
        }
        path = f"{self.api}/issue"
        try:
            response = await self.http.request("POST", path, json_body={"fields": fields}, idempotent=False)
        except PermissionDeniedError as exc:
            raise self._write_explained(exc) from exc
        except (ConnectorTimeoutError, ConnectionFailedError, ServerError):
            found = await self._find_created(label)
            if found is not None:
                return self._created(found.number, existed=False)
            raise
        body = self.http.json_of(response, "POST", path)
        key = body.get("key") if isinstance(body, Mapping) else None
        if not isinstance(key, str) or not key:
            raise BadResponseError(self.name, f"POST {path} answered without the new issue's key")
        return self._created(key, existed=False)

    async def add_work_note(self, note: WorkNote) -> str | None:
        """A comment on the issue; Jira answers the comment with its id."""
        path = f"{self.api}/issue/{note.ticket_external_id}/comment"
        try:
            response = await self.http.request(
                "POST", path, json_body={"body": self._document(note.text())}, idempotent=False
            )
        except PermissionDeniedError as exc:
            raise self._write_explained(exc) from exc
        body = self.http.json_of(response, "POST", path)
        comment_id = body.get("id") if isinstance(body, Mapping) else None
        return str(comment_id) if comment_id else None

    def _write_explained(self, exc: HttpStatusError) -> HttpStatusError:
        return type(exc)(
            exc.connector,
            method=exc.method,
            path=exc.path,
            status=exc.status,
            server_message=exc.server_message,
            hint=WRITE_HINT,
        )

    # --- fetch ------------------------------------------------------------------------------------------

    def streams(self, since: Cursor | None, page_size: int | None) -> list[HttpStream[Any]]:
        size = max(1, page_size or DEFAULT_PAGE_SIZE)
        fields = self._fields()  # settings mistakes surface before any request
        self._scope()
        search: _Search[Any] = (
            _CloudSearch(self, since, fields, size)
            if self.cloud
            else _DataCenterSearch(self, since, fields, size)
        )
        return [search]

    def _jql(self, bound: str) -> str:
        """The scope ANDed with the update bound; one shape for full and incremental syncs (Cloud refuses
        an unbounded JQL)."""
        scope = self._scope()
        restriction = f"updated >= {_quote(bound)}"
        where = f"({scope}) AND {restriction}" if scope else restriction
        return f"{where} {ORDER_BY}"

    def _scope(self) -> str:
        clauses: list[str] = []
        projects = [p.strip() for p in str(self.settings.option("projects", "")).split(",") if p.strip()]
        for project in projects:
            if not _PROJECT_KEY.match(project):
                raise ConfigurationError(self.name, f"{project!r} is not a Jira project key (like OPS)")
        if projects:
            clauses.append(f"project in ({', '.join(_quote(p.upper()) for p in projects)})")
        user_jql = str(self.settings.option("jql", "")).strip()
        if user_jql:
            if _ORDER_BY.search(user_jql):
                raise ConfigurationError(
                    self.name, "remove ORDER BY from the JQL filter: the sync orders by update time itself"
                )
            clauses.append(f"({user_jql})" if projects else user_jql)
        return " AND ".join(clauses)

    def _fields(self) -> tuple[str, ...]:
        extra: list[str] = []
        source = self.settings.option("resolution_source", RESOLUTION_NONE)
        if source == RESOLUTION_FIELD:
            extra.append(self._custom_field("resolution_field", required=True) or "")
        elif source == RESOLUTION_LAST_COMMENT:
            extra.append("comment")
        elif source != RESOLUTION_NONE:
            raise ConfigurationError(self.name, f"unknown resolution notes source {source!r}")
        ci_field = self._custom_field("ci_field", required=False)
        if ci_field:
            extra.append(ci_field)
        return BASE_FIELDS + tuple(dict.fromkeys(extra))

    def _custom_field(self, option: str, *, required: bool) -> str | None:
        value = str(self.settings.option(option, "")).strip()
        if not value:
            if required:
                raise ConfigurationError(
                    self.name, f"{option} must name a custom field such as customfield_10050"
                )
            return None
        if not _CUSTOM_FIELD.match(value):
            raise ConfigurationError(
                self.name, f"{option} {value!r} is not a field id like customfield_10050"
            )
        return value

    # --- normalising --------------------------------------------------------------------------------------

    def normalise(self, issue: Mapping[str, Any]) -> TicketValues:
        """One issue as a ticket, named and parsed as the Jira CSV import does; ValueError says why not."""
        key = str(issue.get("key") or "").strip()
        fields = issue.get("fields")
        if not key or not isinstance(fields, Mapping):
            raise ValueError("the issue has no key or no fields")
        title = str(fields.get("summary") or "").strip()
        if not title:
            raise ValueError("summary is empty")
        status = _name(fields.get("status"))
        created_at = _time(fields, "created")
        updated_at = _time(fields, "updated") or created_at
        resolved_at = _time(fields, "resolutiondate")
        if resolved_at is None and status and status.lower() in RESOLVED_STATES:
            resolved_at = updated_at  # as the CSV import does for exports without a resolution time
        issue_type = _name(fields.get("issuetype"))
        return TicketValues(
            external_id=key,
            source_system=SOURCE_SYSTEM,
            title=title[:MAX_TITLE],
            description=_rich_text(fields.get("description")),
            status=status,
            severity=parse_severity(_name(fields.get("priority"))),
            assignee=_name(fields.get("assignee"), "displayName"),
            kind=parse_kind(_SYSTEM_PREFIX.sub("", issue_type) if issue_type else None),
            category=_category(fields),
            configuration_item=self._configuration_item(fields),
            resolution_notes=self._resolution_notes(fields, resolved=resolved_at is not None),
            resolved_at=resolved_at,
            created_at=created_at,
            updated_at=updated_at,
            source_url=f"{self.settings.base_url.rstrip('/')}/browse/{key}",
            raw_payload=dict(issue),
        )

    def _configuration_item(self, fields: Mapping[str, Any]) -> str | None:
        ci_field = str(self.settings.option("ci_field", "")).strip()
        return _field_text(fields.get(ci_field)) if ci_field else None

    def _resolution_notes(self, fields: Mapping[str, Any], *, resolved: bool) -> str | None:
        source = self.settings.option("resolution_source", RESOLUTION_NONE)
        if source == RESOLUTION_FIELD:
            return _field_text(fields.get(str(self.settings.option("resolution_field", ""))))
        if source == RESOLUTION_LAST_COMMENT and resolved:
            # On an open issue the last comment is a progress note, not how it was resolved.
            comment = fields.get("comment")
            comments = comment.get("comments") if isinstance(comment, Mapping) else None
            if isinstance(comments, list) and comments and isinstance(comments[-1], Mapping):
                return _rich_text(comments[-1].get("body")) or None
        return None

    # --- requests -----------------------------------------------------------------------------------------

    async def _myself(self) -> Mapping[str, Any]:
        path = f"{self.api}/myself"
        try:
            body = await self.http.get_json(path)
        except HttpStatusError as exc:
            raise self._explained(exc) from exc
        if not isinstance(body, Mapping):
            raise BadResponseError(self.name, f"GET {path} did not return a user object")
        return body

    def _search_request(
        self,
        jql: str,
        fields: Sequence[str],
        *,
        page_size: int,
        token: str | None = None,
        start_at: int | None = None,
    ) -> PageRequest:
        body: dict[str, Any] = {"jql": jql, "fields": list(fields), "maxResults": page_size}
        if self.cloud:
            if token:
                body["nextPageToken"] = token
        else:
            body["startAt"] = start_at or 0
        return PageRequest("POST", self.search_path, json_body=body)

    async def _send_search(self, request: PageRequest) -> httpx.Response:
        try:
            return await self.http.request(request.method, request.path, json_body=request.json_body)
        except HttpStatusError as exc:
            raise self._explained(exc) from exc

    def _search_result(self, response: httpx.Response) -> Mapping[str, Any]:
        # The path as sent (with a Data Center context path such as /jira), so the message matches the logs.
        sent_path = response.request.url.path
        payload = self.http.json_of(response, "POST", sent_path)
        if not isinstance(payload, Mapping):
            raise BadResponseError(self.name, f"POST {sent_path} did not return a search result object")
        return payload

    async def _search(
        self, jql: str, fields: Sequence[str], *, page_size: int, start_at: int | None = None
    ) -> Mapping[str, Any]:
        request = self._search_request(jql, fields, page_size=page_size, start_at=start_at)
        return self._search_result(await self._send_search(request))

    def _explained(self, exc: HttpStatusError) -> HttpStatusError:
        """The same error with what to do about it, which depends on the deployment chosen."""
        hint = self._hint(exc)
        if not hint or exc.hint:
            return exc
        return type(exc)(
            exc.connector,
            method=exc.method,
            path=exc.path,
            status=exc.status,
            server_message=exc.server_message,
            hint=hint,
        )

    def _hint(self, exc: HttpStatusError) -> str:
        searching = exc.path == self.search_path
        if isinstance(exc, GoneError):
            if not self.cloud:
                return "Jira Cloud removed this API: for an …atlassian.net site choose the Cloud deployment"
            return "Atlassian removed this API; update Runbook Desk"
        if isinstance(exc, NotFoundError):
            if self.cloud:
                return (
                    "check the site URL; Jira Data Center / Server has no /rest/api/3, so for a self-hosted "
                    "Jira choose the Data Center deployment"
                )
            return "check the URL, including any context path such as /jira"
        if isinstance(exc, AuthenticationError | PermissionDeniedError) and "Connect" in exc.server_message:
            return "Jira Cloud does not take personal access tokens: choose Cloud and use email + API token"
        if isinstance(exc, AuthenticationError):
            if self.cloud:
                return "use the account's email and an API token from id.atlassian.com, not the password"
            return "the personal access token was refused: it may have expired or been revoked"
        if isinstance(exc, PermissionDeniedError):
            return BROWSE_HINT
        if isinstance(exc, RequestRejectedError) and searching:
            return "check the project keys and the JQL filter in the connector's scope"
        return ""


def correlation_label(correlation_id: str) -> str:
    """The label that marks an issue as created for ``correlation_id``: Jira labels take no spaces, so
    anything but letters, digits, ``_ . -`` becomes ``-`` ("runbook-desk:1:42" -> "runbook-desk-1-42")."""
    return _LABEL_UNSAFE.sub("-", correlation_id).strip("-")[:255]


def _issue_time(issue: Any) -> datetime | None:
    fields = issue.get("fields") if isinstance(issue, Mapping) else None
    if not isinstance(fields, Mapping):
        return None
    try:
        return _time(fields, "updated")
    except ValueError:
        return None


def _issues_of(payload: Mapping[str, Any], connector_name: str) -> list[Mapping[str, Any]]:
    issues = payload.get("issues")
    if issues is None:
        return []
    if not isinstance(issues, list):
        raise BadResponseError(connector_name, "the search result's issues is not a list")
    return issues


def _category(fields: Mapping[str, Any]) -> str | None:
    """The first component (the CSV export's first Component/s column), else the first label."""
    components = fields.get("components")
    if isinstance(components, list):
        for component in components:
            name = _name(component)
            if name:
                return name
    labels = fields.get("labels")
    if isinstance(labels, list):
        for label in labels:
            if isinstance(label, str) and label.strip():
                return label.strip()
    return None


class _Search(HttpStream[TokenT]):
    """The issue search of one sync: the JQL bound from the cursor in the account's zone, the local drop
    of what the cursor says is stored, and the cursor (with every key at its exact time) after each page."""

    def __init__(
        self, connector: JiraConnector, since: Cursor | None, fields: Sequence[str], size: int
    ) -> None:
        super().__init__(connector, since)
        self.jira = connector
        self.fields = fields
        self.size = size
        self.progress = MinuteProgress.from_cursor(since)
        self.undated: set[str] = set()  # failures without a time cannot move the cursor: report each once
        self.zone: tzinfo | None = None
        self.bound = FULL_SYNC_BOUND
        self.seen: dict[str, datetime] = {}  # key -> update time of every record read since the query's bound

    async def prepare(self) -> None:
        """The account's zone turns a cursor into a JQL literal, and the keyset paging's minutes into
        instants (full syncs too)."""
        self.zone = zone_named((await self.jira._myself()).get("timeZone"))
        if self.since is not None and self.since.updated_at is not None:
            self.bound = jql_minute(self.since.updated_at, self.zone)

    async def send(self, request: PageRequest) -> httpx.Response:
        return await self.jira._send_search(request)

    def decode(self, response: httpx.Response, request: PageRequest) -> Mapping[str, Any]:
        return self.jira._search_result(response)

    def records(self, body: Mapping[str, Any], request: PageRequest) -> list[Mapping[str, Any]]:
        return _issues_of(body, self.jira.name)

    async def normalise(self, issue: Any) -> Reading:
        """A ticket; AlreadyRead when the cursor says it is stored already; a failure once per key."""
        key = issue.get("key") if isinstance(issue, Mapping) else None
        fields = issue.get("fields") if isinstance(issue, Mapping) else None
        if not isinstance(key, str) or not key or not isinstance(fields, Mapping):
            raise ValueError("no key or no fields")
        try:
            updated_at = _time(fields, "updated")
        except ValueError as exc:
            reason = str(exc)
        else:
            reason = "" if updated_at is not None else "updated is empty"
        if updated_at is None or reason:
            if key in self.undated:
                return None
            self.undated.add(key)
            raise ValueError(reason)
        if self.progress.already_stored(updated_at, key):
            return AlreadyRead(key, updated_at)
        try:
            return self.jira.normalise(issue)
        finally:
            self.progress.advance(updated_at, key)  # a record that fails is passed too

    def record_id(self, issue: Any) -> str | None:
        key = issue.get("key") if isinstance(issue, Mapping) else None
        return key if isinstance(key, str) else None

    def cursor_after(self, previous: Cursor, tickets: Sequence[SyncRecord]) -> Cursor:
        return self.progress.cursor()

    def moved_bound(self, records: Sequence[Any], bound: str) -> tuple[str, int] | None:
        """The minute the next query can restart at after ``records``, and how many records already read it
        returns first; None while the newest record is still in ``bound``'s minute, or when no zone maps a
        minute to instants (the query then pages on, by its offset or token)."""
        for issue in records:
            stamp = _issue_time(issue)
            if stamp is not None:
                self.seen[str(issue.get("key"))] = stamp
        newest = max(self.seen.values(), default=None)
        if newest is None or self.zone is None:
            return None
        next_bound = jql_minute(newest, self.zone)
        if next_bound == bound:
            return None
        moment = self._instant(next_bound)
        return next_bound, sum(1 for stamp in self.seen.values() if stamp >= moment)

    def restart_at(self, bound: str) -> None:
        """Forget the records before ``bound``: the query restarting there does not return them."""
        moment = self._instant(bound)
        self.seen = {key: stamp for key, stamp in self.seen.items() if stamp >= moment}

    def _instant(self, bound: str) -> datetime:
        return datetime.strptime(bound, "%Y-%m-%d %H:%M").replace(tzinfo=self.zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class _CloudPage:
    """A Cloud page's token: the query's minute bound, and the server's ``nextPageToken`` within it (None:
    the query's first page)."""

    bound: str
    page_token: str | None


class _CloudSearch(_Search[_CloudPage]):
    """Cloud: keyset paging by minute, as on Data Center, without relying on what ``nextPageToken`` means.

    Where Jira resolves the token as an offset into the result, an issue already read that is edited
    mid-sync moves to the end of the ``ORDER BY updated`` list and the next page skips one unread issue
    until its next update. So each page restarts the JQL at the minute of the newest record read, re-reading
    the few records already read in that minute (dropped locally as already read). Only a burst of a page or
    more of issues updated within one minute is paged through by the token, as the restart there would
    return nothing new; with no known zone, the token is followed throughout.
    """

    def request(self, token: _CloudPage | None) -> PageRequest:
        page = token or _CloudPage(self.bound, None)
        return self.jira._search_request(
            self.jira._jql(page.bound), self.fields, page_size=self.size, token=page.page_token
        )

    def next_page_token(self, page: StreamPage[_CloudPage]) -> _CloudPage | None:
        current = page.token or _CloudPage(self.bound, None)
        next_token = page.body.get("nextPageToken")
        if page.body.get("isLast") is True or not next_token:
            return None
        if not isinstance(next_token, str):
            raise BadResponseError(
                self.jira.name, f"POST {self.jira.search_path} returned a page token that is not text"
            )
        moved = self.moved_bound(page.records, current.bound)
        if moved is not None and moved[1] < self.size:  # the restart brings at least one record not read
            self.restart_at(moved[0])
            return _CloudPage(moved[0], None)
        return _CloudPage(current.bound, next_token)


@dataclass(frozen=True, slots=True)
class _Window:
    """A Data Center page's token: the query's minute bound and the offset in its result."""

    bound: str
    start: int


class _DataCenterSearch(_Search[_Window]):
    """Data Center: ``startAt`` paging, restarted from the last record's minute after every page.

    A plain offset over the whole sync loses an issue for good whenever an issue already read is edited
    mid-sync (it moves to the end and the offset skips the next unread one). Restarting each query at the
    last record's minute confines that to edits within that minute, and the offset then re-reads a quarter
    of the records already seen in that minute to absorb those. With no known zone the minute cannot be
    mapped to records, so the offset runs over the one query.
    """

    def request(self, token: _Window | None) -> PageRequest:
        window = token or _Window(self.bound, 0)
        return self.jira._search_request(
            self.jira._jql(window.bound), self.fields, page_size=self.size, start_at=window.start
        )

    def next_page_token(self, page: StreamPage[_Window]) -> _Window | None:
        window = page.token or _Window(self.bound, 0)
        total = page.body.get("total")
        if not page.records or (isinstance(total, int) and window.start + len(page.records) >= total):
            return None
        moved = self.moved_bound(page.records, window.bound)
        if moved is None:
            return _Window(window.bound, window.start + len(page.records))
        next_bound, already_read = moved
        self.restart_at(next_bound)
        # Re-read at most a page less one, so that every page brings at least one record not read yet.
        reread = min(DC_REREAD, already_read // 4, self.size - 1)
        return _Window(next_bound, already_read - reread)
