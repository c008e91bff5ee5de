"""Confluence Cloud and Data Center / Server: pages become knowledge articles, synced by modification time.

One connector serves both deployments (as :mod:`connectors.ticketing.jira` does): the content model and CQL
are the same, only the edges differ.

==============  ==============================================  ===========================================
                Cloud                                           Data Center / Server
==============  ==============================================  ===========================================
API prefix      ``/wiki/rest/api`` (the site's root URL given)  ``/rest/api`` (below any context path)
auth            Basic, account email + API token                ``Authorization: Bearer <personal token>``
search paging   ``cursor`` in the relative ``_links.next``      ``start`` / ``limit`` (in ``_links.next`` too)
errors          v1 ``{"statusCode", "message", "reason"}``; v2  v1 ``{"statusCode", "message", "reason"}``
                ``{"errors": [{"status", "code", "title",
                "detail"}]}``
==============  ==============================================  ===========================================

One listing for full and incremental syncs, on both deployments: the v1 content search,
``GET <api>/content/search?cql=type = page AND space IN (…) AND lastmodified >= "yyyy/MM/dd HH:mm" ORDER BY
lastmodified asc&expand=body.storage,version,space,history,metadata.labels``. Why not Cloud's v2
``/wiki/api/v2/pages?space-id=…&sort=modified-date``: v2 has no "modified since" filter, so it could serve
only a first full sync, and a sync killed half-way must resume from its cursor anyway, which only CQL can
express; one query shape means one parser and one paging design, which the standard suite exercises whole.

CQL compares ``lastmodified`` at *minute* precision and reads the literal in the querying user's time zone
(the "Time zone" option; else the ``timeZone`` of ``/user/current`` where the server says it; else the
literal is moved 12 hours back, the widest western offset, so any reading is early enough). The spec's
``timestamp_precision`` of one minute is that lookback; records the cursor says are stored (older than its
exact time, or at it with an id in ``Cursor.extra["keys_at_cursor"]``) are dropped locally.

Paging is keyset by minute, as Jira's: an offset or a search cursor shifts when a page already read is edited
mid-sync (it moves to the end of ``ORDER BY lastmodified``, and one unread page slides back past the
boundary for good). So after each page the query restarts at the minute of the newest page read, re-reading
the few read already in that minute (dropped as already read); the server's ``cursor`` (Cloud) or ``start``
(Data Center) is followed only through a burst of a page or more of pages edited within one minute. A server
that ignores the bound or the cursor answers records read already, and the shared no-progress guard stops it.

Each page becomes an :class:`~core.knowledge.records.ArticleValues`: ``external_id`` the page id (stable
across renames and moves), the title, the storage-format body as Markdown
(:func:`core.knowledge.markdown.confluence_storage_to_markdown`; the XHTML stays in the raw payload), the
space's name, the first label as category, the creator as author, the URL from ``_links.base`` +
``_links.webui`` (links in v1 objects are relative to the answer's base), and the state: ``current`` ->
published, ``draft`` -> draft, ``archived`` / ``trashed`` -> retired.

With "index attachments" on, each page's attachments (``GET <api>/content/{id}/child/attachment``) are
listed; PDF, DOCX and TXT files under the size cap are downloaded and their text extracted
(:mod:`core.knowledge.attachments`); a file that cannot be read is a note in the text, never a failed sync.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx

from connectors.atlassian import (
    AUTH_API_TOKEN,
    AUTH_FIELDS,
    AUTH_PAT,
    CLOUD,
    DATA_CENTER,
    MinuteProgress,
    atlassian_auth,
    minute_literal,
    stored_at_cursor,
    zone_named,
)
from connectors.atlassian import deployment_of as atlassian_deployment_of
from connectors.base import (
    AlreadyRead,
    AuthMode,
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
    Reading,
    StreamPage,
    SyncRecord,
)
from connectors.errors import (
    AuthenticationError,
    BadResponseError,
    ConfigurationError,
    ConnectorError,
    HttpStatusError,
    NotFoundError,
    PermissionDeniedError,
    RequestRejectedError,
    SyncDeadlineError,
)
from connectors.http import HttpClient, default_error_text
from connectors.secrets import redact_text
from core.importing.mapping import parse_datetime
from core.knowledge.attachments import SUPPORTED_SUFFIXES, extract_attachment_text
from core.knowledge.markdown import confluence_storage_to_markdown
from core.knowledge.records import ArticleState, ArticleValues

SOURCE_SYSTEM = "confluence"


DEFAULT_PAGE_SIZE = 25  # a server may answer fewer per page when bodies are expanded: paging follows it
MAX_PAGE_SIZE = 100
MAX_ATTACHMENT_BYTES = 10_000_000
EXPAND = "body.storage,version,space,history,metadata.labels"
CQL_MINUTE = "%Y/%m/%d %H:%M"
ORDER_BY = "ORDER BY lastmodified asc"
_SPACE_KEY = re.compile(r"^[A-Za-z0-9~_]+$")
_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)

STATES: Mapping[str, ArticleState] = {
    "current": ArticleState.PUBLISHED,
    "draft": ArticleState.DRAFT,
    "archived": ArticleState.RETIRED,
    "trashed": ArticleState.RETIRED,
    "deleted": ArticleState.RETIRED,
}

PERMISSION_HINT = (
    "Confluence also answers 404 when the account may not view the space or page: check the space keys "
    "and the account's 'View' space permission"
)

SPEC = ConnectorSpec(
    type="confluence",
    display_name="Confluence",
    kind=ConnectorKind.KNOWLEDGE,
    auth_modes=(
        AuthMode(
            AUTH_API_TOKEN, "Email + API token (Confluence Cloud)", "Create a token at id.atlassian.com."
        ),
        AuthMode(
            AUTH_PAT,
            "Personal access token (Data Center / Server)",
            "Profile > Settings > Personal Access Tokens; Confluence 7.9 or later.",
        ),
    ),
    fields=(
        ConfigField(
            "deployment",
            "Deployment",
            FieldType.CHOICE,
            default=CLOUD,
            choices=(
                (CLOUD, "Confluence Cloud (…atlassian.net)"),
                (DATA_CENTER, "Confluence Data Center / Server"),
            ),
            help="Cloud and Data Center take different credentials and page differently.",
            page="where",
        ),
        ConfigField(
            "base_url",
            "Site URL",
            FieldType.URL,
            placeholder="https://example.atlassian.net",
            help="Cloud: the site's address (with or without /wiki). Data Center: the address including "
            "any context path, e.g. https://wiki.example.com/confluence.",
            page="where",
        ),
        *AUTH_FIELDS,
        ConfigField(
            "spaces",
            "Space keys",
            required=False,
            placeholder="OPS, ITKB",
            help="Comma-separated space keys to sync; empty: every space the account can view.",
        ),
        ConfigField(
            "cql",
            "Extra CQL filter",
            FieldType.MULTILINE,
            required=False,
            placeholder='label = "runbook"',
            help="ANDed with the spaces; leave out ORDER BY and lastmodified (the sync adds its own).",
        ),
        ConfigField(
            "time_zone",
            "Time zone of the account",
            required=False,
            placeholder="Europe/Berlin",
            help="The zone set in the account's Confluence profile: CQL reads dates in it. Empty: the "
            "server's answer, else a 12-hour lookback.",
        ),
        ConfigField(
            "index_attachments",
            "Index attachments",
            FieldType.BOOLEAN,
            required=False,
            default=False,
            help="Also read the text of PDF, DOCX and TXT attachments (up to 10 MB each): one more request "
            "per page and one per file.",
        ),
        ConfigField(
            "page_size", "Pages per request", FieldType.INTEGER, required=False, default=DEFAULT_PAGE_SIZE
        ),
    ),
    timestamp_precision=timedelta(minutes=1),
    description="Confluence pages (Cloud or Data Center) through CQL search, as Markdown.",
    docs_url="https://developer.atlassian.com/cloud/confluence/rest/v1/api-group-content/",
    icon="confluence.svg",
)


# ----------------------------------------------------------------------------------------------------------
# Pure helpers
# ----------------------------------------------------------------------------------------------------------


def confluence_error_text(response: httpx.Response) -> str:
    """Confluence's own words: v2 ``errors[].title/detail``, v1 ``message`` (``reason`` when empty)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    parts: list[str] = []
    if isinstance(body, Mapping):
        errors = body.get("errors")
        if isinstance(errors, list):
            for error in errors:
                if isinstance(error, Mapping):
                    words = [str(error.get(key)) for key in ("title", "detail") if error.get(key)]
                    if words:
                        parts.append(": ".join(words))
        message = body.get("message")
        if isinstance(message, str) and message.strip():
            parts.append(message.strip())
        elif not parts and isinstance(body.get("reason"), str):
            parts.append(str(body["reason"]))
    if not parts:
        return default_error_text(response)
    text = redact_text(" ".join("; ".join(parts).split()))
    return text if len(text) <= 400 else text[:399] + "…"


def deployment_of(settings: ConnectorSettings) -> str:
    """The deployment, checked against the auth mode (:func:`connectors.atlassian.deployment_of`)."""
    return atlassian_deployment_of(settings, "Confluence")


def space_keys(value: Any) -> tuple[str, ...]:
    """The space keys of the option, deduplicated; ValueError for one that is not a key."""
    items = value.split(",") if isinstance(value, str) else list(value or ())
    keys: list[str] = []
    for item in items:
        key = str(item).strip()
        if not key:
            continue
        if not _SPACE_KEY.match(key):
            raise ValueError(f"{key!r} is not a space key (letters and digits, as in the space's URL)")
        if key not in keys:
            keys.append(key)
    return tuple(keys)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def cql_minute(moment: datetime, zone: tzinfo | None) -> str:
    """The CQL literal ``yyyy/MM/dd HH:mm`` that Confluence reads as a time at or before ``moment``
    (:func:`connectors.atlassian.minute_literal`)."""
    return minute_literal(moment, zone, CQL_MINUTE)


def article_state(status: Any) -> ArticleState | None:
    """The normalised state; None for a historical version (never the page itself)."""
    key = str(status or "").strip().lower()
    if key == "historical":
        return None
    return STATES.get(key, ArticleState.DRAFT)


def _name(value: Any, *keys: str) -> str | None:
    for key in keys:
        if isinstance(value, Mapping) and value.get(key):
            return str(value[key]).strip() or None
    return None


def page_time(page: Any) -> datetime | None:
    """``version.when`` (the last edit), else ``history.lastUpdated.when``; ValueError when unreadable."""
    if not isinstance(page, Mapping):
        return None
    version = page.get("version")
    history = page.get("history")
    last = history.get("lastUpdated") if isinstance(history, Mapping) else None
    for holder in (version, last):
        if isinstance(holder, Mapping) and holder.get("when"):
            return parse_datetime(str(holder["when"]))
    return None


def page_url(page: Mapping[str, Any], base: str) -> str | None:
    links = page.get("_links")
    webui = links.get("webui") if isinstance(links, Mapping) else None
    if not isinstance(webui, str) or not webui:
        return None
    if webui.startswith(("http://", "https://")):
        return webui
    return base.rstrip("/") + "/" + webui.lstrip("/")


def normalise_page(page: Mapping[str, Any], base: str) -> ArticleValues | None:
    """One v1 content object as an article (None for a historical version); ValueError when it is none."""
    page_id = page.get("id")
    if not page_id:
        raise ValueError("the page has no id")
    title = " ".join(str(page.get("title") or "").split())
    if not title:
        raise ValueError("the page has no title")
    state = article_state(page.get("status"))
    if state is None:
        return None
    body = page.get("body")
    storage = body.get("storage") if isinstance(body, Mapping) else None
    xhtml = storage.get("value") if isinstance(storage, Mapping) else None
    space = page.get("space")
    history = page.get("history")
    version = page.get("version")
    author = _name(
        history.get("createdBy") if isinstance(history, Mapping) else None, "displayName", "publicName"
    )
    if author is None and isinstance(version, Mapping):
        author = _name(version.get("by"), "displayName", "publicName")
    metadata = page.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
    label_rows = labels.get("results") if isinstance(labels, Mapping) else None
    category = None
    if isinstance(label_rows, list):
        names = [_name(label, "name") for label in label_rows]
        category = next((name for name in names if name), None)
    return ArticleValues(
        external_id=str(page_id),
        source_system=SOURCE_SYSTEM,
        title=title,
        body=confluence_storage_to_markdown(xhtml if isinstance(xhtml, str) else ""),
        state=state,
        updated_at=page_time(page),
        number=str(page_id),
        url=page_url(page, base),
        space=_name(space, "name", "key"),
        category=category,
        author=author,
        raw_payload=dict(page),
    )


# ----------------------------------------------------------------------------------------------------------
# The connector
# ----------------------------------------------------------------------------------------------------------


class ConfluenceConnector(Connector):
    spec: ClassVar[ConnectorSpec] = SPEC

    def __init__(self, settings: ConnectorSettings, http: HttpClient) -> None:
        super().__init__(settings, http)
        self.deployment = deployment_of(settings)
        base_path = urlsplit(settings.base_url).path.rstrip("/")
        wiki = "/wiki" if self.cloud and not base_path.endswith("/wiki") else ""
        self.api = f"{wiki}/rest/api"
        self.search_path = f"{self.api}/content/search"
        self.site = (
            settings.base_url.rstrip("/") + wiki
        )  # what links are relative to, if _links.base is absent

    @classmethod
    def client_options(cls, settings: ConnectorSettings) -> ClientOptions:
        return ClientOptions(
            auth=atlassian_auth(settings, deployment_of(settings)), error_text=confluence_error_text
        )

    @property
    def cloud(self) -> bool:
        return self.deployment == CLOUD

    def already_stored(self, ticket: SyncRecord, cursor: Cursor) -> bool:
        return stored_at_cursor(ticket, cursor)

    # --- settings ---------------------------------------------------------------------------------------

    def page_size(self, requested: int | None) -> int:
        try:
            configured = int(self.settings.option("page_size", DEFAULT_PAGE_SIZE))
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(self.name, "pages per request must be a whole number") from exc
        if not 1 <= configured <= MAX_PAGE_SIZE:
            raise ConfigurationError(self.name, f"pages per request must be 1 to {MAX_PAGE_SIZE}")
        return max(1, min(requested or configured, MAX_PAGE_SIZE))

    def cql(self, bound: str | None) -> str:
        """``type = page``, the spaces, the extra filter and the update bound, ordered by modification."""
        try:
            keys = space_keys(self.settings.option("spaces", ""))
        except ValueError as exc:
            raise ConfigurationError(self.name, f"space keys: {exc}") from exc
        extra = str(self.settings.option("cql", "")).strip()
        if _ORDER_BY.search(extra):
            raise ConfigurationError(
                self.name, "leave ORDER BY out of the extra CQL filter: the sync orders by lastmodified"
            )
        terms = ["type = page"]
        if keys:
            terms.append(f"space IN ({', '.join(_quote(key) for key in keys)})")
        if extra:
            terms.append(f"({extra})")
        if bound is not None:
            terms.append(f"lastmodified >= {_quote(bound)}")
        return f"{' AND '.join(terms)} {ORDER_BY}"

    # --- requests ---------------------------------------------------------------------------------------

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        try:
            return await self.http.request("GET", path, params=params)
        except HttpStatusError as exc:
            raise self._explained(exc) from exc

    def _explained(self, exc: HttpStatusError) -> HttpStatusError:
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
        if isinstance(exc, NotFoundError):
            where = (
                "check the site URL (…atlassian.net)"
                if self.cloud
                else "check the URL, including any context path such as /confluence"
            )
            return f"{where}; {PERMISSION_HINT}"
        if isinstance(exc, AuthenticationError):
            if self.cloud:
                return "use the account's email and an API token from id.atlassian.com, not the password"
            return "the personal access token was refused: it may have expired or been revoked"
        if isinstance(exc, PermissionDeniedError):
            return "the account lacks the 'View' permission on the space, or the site restricts the REST API"
        if isinstance(exc, RequestRejectedError) and exc.path.endswith("/content/search"):
            return "check the space keys and the extra CQL filter"
        return ""

    def search_request(
        self, cql: str, size: int, *, cursor: str | None = None, start: int = 0
    ) -> PageRequest:
        params: dict[str, Any] = {"cql": cql, "expand": EXPAND, "limit": size}
        if cursor:
            params["cursor"] = cursor
        elif start:
            params["start"] = start
        return PageRequest("GET", self.search_path, params=params)

    def json_object(self, response: httpx.Response, path: str) -> Mapping[str, Any]:
        body = self.http.json_of(response, "GET", response.request.url.path)
        if not isinstance(body, Mapping):
            raise BadResponseError(self.name, f"GET {path} did not return a JSON object")
        return body

    async def current_user(self) -> Mapping[str, Any]:
        path = f"{self.api}/user/current"
        return self.json_object(await self.get(path), path)

    # --- check ------------------------------------------------------------------------------------------

    async def probe(self) -> None:
        """``/user/current`` proves the credentials (Confluence serves anonymous users too, so a search alone
        might not), then a one-page search of the scope proves read permission and valid CQL."""
        user = await self.current_user()
        if str(user.get("type") or "").lower() == "anonymous":
            raise AuthenticationError(
                self.name,
                method="GET",
                path=f"{self.api}/user/current",
                status=401,
                server_message="the server answered as the anonymous user",
                hint=self._hint(
                    AuthenticationError(self.name, method="", path="", status=401, server_message="")
                ),
            )
        request = self.search_request(self.cql(None), 1)
        body = self.json_object(await self.get(request.path, request.params), request.path)
        _results_of(body, self.name, request.path)

    # --- fetch ------------------------------------------------------------------------------------------

    def streams(self, since: Cursor | None, page_size: int | None) -> list[HttpStream[Any]]:
        size = self.page_size(page_size)
        self.cql(None)  # settings mistakes surface before any request
        return [_Search(self, since, size)]

    def zone_option(self) -> tzinfo | None:
        name = str(self.settings.option("time_zone", "")).strip()
        if not name:
            return None
        zone = zone_named(name)
        if zone is None:
            raise ConfigurationError(self.name, f"unknown time zone {name!r} (e.g. Europe/Berlin)")
        return zone

    # --- attachments ------------------------------------------------------------------------------------

    @property
    def index_attachments(self) -> bool:
        value = self.settings.option("index_attachments", False)
        return value is True or str(value).lower() in ("true", "1", "yes", "on")

    async def attachments(self, page_id: str, base: str) -> tuple[tuple[str, ...], str | None]:
        """The names of a page's attachments and the text of the readable ones (a note for each that is
        not); errors listing or downloading become notes too, never a failed sync."""
        path = f"{self.api}/content/{page_id}/child/attachment"
        try:
            body = self.json_object(await self.get(path, {"limit": 50}), path)
            rows = _results_of(body, self.name, path)
        except SyncDeadlineError:
            raise
        except ConnectorError as exc:
            return (), f"[attachments not read: {exc}]"
        names: list[str] = []
        texts: list[str] = []
        for row in rows:
            name = _name(row, "title")
            if name is None:
                continue
            names.append(name)
            if not name.lower().endswith(SUPPORTED_SUFFIXES):
                continue
            extensions = row.get("extensions") if isinstance(row, Mapping) else None
            size = extensions.get("fileSize") if isinstance(extensions, Mapping) else None
            if isinstance(size, int) and size > MAX_ATTACHMENT_BYTES:
                texts.append(
                    f"[{name}: not read, {size:,} bytes is over the {MAX_ATTACHMENT_BYTES:,}-byte cap]"
                )
                continue
            links = row.get("_links") if isinstance(row, Mapping) else None
            download = links.get("download") if isinstance(links, Mapping) else None
            if not isinstance(download, str) or not download:
                texts.append(f"[{name}: not read, the server gave no download link]")
                continue
            try:
                data = await self.download(download, base)
            except SyncDeadlineError:
                raise  # the run's time is up: stop the sync, not just this file
            except ConnectorError as exc:
                texts.append(f"[{name}: not read: {exc}]")
                continue
            extracted = extract_attachment_text(name, data, max_bytes=MAX_ATTACHMENT_BYTES)
            if extracted.text is not None:
                texts.append(f"--- {name} ---\n{extracted.text}")
            else:
                texts.append(f"[{extracted.error}]")
        return tuple(names), ("\n\n".join(texts) or None)

    async def download(self, link: str, base: str) -> bytes:
        """An attachment's bytes; ``link`` is relative to the answer's base (which carries /wiki on Cloud).
        Only a link on this site is followed: the credentials go nowhere else."""
        split = urlsplit(link)
        if split.scheme or split.netloc:
            raise BadResponseError(self.name, "an attachment's download link points off the site")
        base_path = urlsplit(base).path.rstrip("/")
        client_path = self.http.base_url.path.rstrip("/")
        path = (base_path + "/" + split.path.lstrip("/")).removeprefix(client_path)
        params = {key: values[-1] for key, values in parse_qs(split.query).items()}
        response = await self.get(path, params)
        return response.content


def _results_of(body: Mapping[str, Any], connector_name: str, path: str) -> list[Mapping[str, Any]]:
    results = body.get("results")
    if not isinstance(results, list):
        raise BadResponseError(connector_name, f"GET {path} returned no results list")
    return [row for row in results if isinstance(row, Mapping)]


@dataclass(frozen=True, slots=True)
class _Token:
    """A page's token: the query's minute bound (None: unbounded), and the server's position within it."""

    bound: str | None
    cursor: str | None = None
    start: int = 0


class _Search(HttpStream[_Token]):
    """The CQL search of one sync: the bound from the cursor, restarted at the newest minute read after each
    page (keyset paging, see the module docstring), the local drop of what the cursor says is stored."""

    def __init__(self, connector: ConfluenceConnector, since: Cursor | None, size: int) -> None:
        super().__init__(connector, since)
        self.confluence = connector
        self.size = size
        self.progress = MinuteProgress.from_cursor(since)
        self.zone: tzinfo | None = None
        self.bound: str | None = None
        self.base = connector.site
        self.seen: dict[str, datetime] = {}  # page id -> update time of every page read since the bound
        self.undated: set[str] = set()

    async def prepare(self) -> None:
        self.zone = self.confluence.zone_option()
        if self.zone is None:
            self.zone = zone_named((await self.confluence.current_user()).get("timeZone"))
        if self.since is not None and self.since.updated_at is not None:
            self.bound = cql_minute(self.since.updated_at, self.zone)

    def request(self, token: _Token | None) -> PageRequest:
        token = token or _Token(self.bound)
        return self.confluence.search_request(
            self.confluence.cql(token.bound), self.size, cursor=token.cursor, start=token.start
        )

    async def send(self, request: PageRequest) -> httpx.Response:
        return await self.confluence.get(request.path, request.params)

    def decode(self, response: httpx.Response, request: PageRequest) -> Mapping[str, Any]:
        body = self.confluence.json_object(response, request.path)
        links = body.get("_links")
        base = links.get("base") if isinstance(links, Mapping) else None
        if isinstance(base, str) and base.startswith(("http://", "https://")):
            self.base = base
        return body

    def records(self, body: Mapping[str, Any], request: PageRequest) -> list[Mapping[str, Any]]:
        return _results_of(body, self.confluence.name, request.path)

    async def normalise(self, record: Any) -> Reading:
        page_id = str(record.get("id") or "")
        if not page_id:
            raise ValueError("the page has no id")
        try:
            updated_at = page_time(record)
        except ValueError as exc:
            reason = f"version.when: {exc}"
        else:
            reason = "" if updated_at is not None else "the page has no version time"
        if updated_at is None or reason:
            if page_id in self.undated:
                return None
            self.undated.add(page_id)
            raise ValueError(reason)
        if self.progress.already_stored(updated_at, page_id):
            return AlreadyRead(page_id, updated_at)
        try:
            article = normalise_page(record, self.base)
            if article is not None and self.confluence.index_attachments:
                names, text = await self.confluence.attachments(page_id, self.base)
                article = replace(article, attachments=names, attachment_text=text)
            return article
        finally:
            self.progress.advance(updated_at, page_id)

    def record_id(self, record: Any) -> str | None:
        page_id = record.get("id") if isinstance(record, Mapping) else None
        return str(page_id) if page_id else None

    def cursor_after(self, previous: Cursor, tickets: Sequence[SyncRecord]) -> Cursor:
        return self.progress.cursor() if self.progress.updated_at is not None else previous

    def next_page_token(self, page: StreamPage[_Token]) -> _Token | None:
        current = page.token or _Token(self.bound)
        links = page.body.get("_links")
        next_link = links.get("next") if isinstance(links, Mapping) else None
        if not page.records or not isinstance(next_link, str) or not next_link:
            return None
        for record in page.records:
            try:
                stamp = page_time(record)
            except ValueError:
                continue
            if stamp is not None:
                self.seen[str(record.get("id"))] = stamp
        newest = max(self.seen.values(), default=None)
        if newest is not None and self.zone is not None:
            next_bound = cql_minute(newest, self.zone)
            if next_bound != current.bound:
                moment = self._instant(next_bound)
                already_read = sum(1 for stamp in self.seen.values() if stamp >= moment)
                # A restart answers pages of this page's size (the server may cap below the limit
                # asked): it must bring at least one page not read yet.
                if already_read < len(page.records):
                    self.seen = {key: stamp for key, stamp in self.seen.items() if stamp >= moment}
                    return _Token(next_bound)
        query = parse_qs(urlsplit(next_link).query)
        cursor = (query.get("cursor") or [""])[-1]
        if self.confluence.cloud and cursor:
            return _Token(current.bound, cursor=cursor)
        start_text = (query.get("start") or [""])[-1]
        if start_text.isdigit():
            return _Token(current.bound, start=int(start_text))
        return _Token(current.bound, start=current.start + len(page.records))

    def _instant(self, bound: str) -> datetime:
        return datetime.strptime(bound, CQL_MINUTE).replace(tzinfo=self.zone).astimezone(UTC)
