"""ServiceNow Knowledge connector: the articles of ``kb_knowledge`` as clean Markdown.

It is the incident connector (:mod:`connectors.ticketing.servicenow`) pointed at another table, not a copy
of it: the same settings checks, basic auth or OAuth with token renewal, error reader, time-zone handling
and keyset paging by ``(sys_updated_on, sys_id)`` (read that module's docstring for why), through
:class:`~connectors.ticketing.servicenow.TableStream`, whose :meth:`convert` hook turns a record into an
:class:`~core.knowledge.records.ArticleValues` here instead of a ticket.

API facts this module relies on (Table API on ``kb_knowledge``, ``sysparm_display_value=all``):

- ``number`` (KB0010001) names the article across its versions; ``short_description`` is the title and
  often carries ``\\n\\t\\t`` from the form editor, so its whitespace is collapsed.
- ``article_type`` is ``text`` (the body is ``text``: HTML with entities, inline styles and ``<span>``
  nests, converted by :func:`core.knowledge.markdown.html_to_markdown`) or ``wiki`` (the body is ``wiki``,
  plain wiki markup kept as it is; ``wiki`` is null on text articles).
- ``workflow_state`` values: ``draft``, ``review``, ``scheduled_publish``, ``published``,
  ``pending_retirement`` (still published until its retirement date), ``retired``, and with article
  versioning ``outdated`` (a superseded version whose newer version carries the same number: skipped, or it
  would overwrite the current version's row). An unknown (custom) state is stored as a draft: never matched.
- ``kb_knowledge_base``, ``kb_category`` and ``author`` are reference fields: ``{"display_value", "value"}``
  (plus ``link`` unless ``sysparm_exclude_reference_link=true``); we keep the name a person reads.
- The article's page is ``<instance>/kb_view.do?sysparm_article=<number>``, which opens the current
  published version (the form Now Support's own links use).

The "knowledge bases" option limits the sync to chosen bases, by title or sys_id, as one encoded-query
term: ``kb_knowledge_baseIN<ids>^ORkb_knowledge_base.titleIN<titles>``.

Attachments, when the analyst opts in ("index attachments"), come from the Attachment API: ``GET
/api/now/attachment?sysparm_query=table_name=kb_knowledge^table_sys_id=<sys_id>`` lists them (metadata
with ``file_name``, ``content_type`` and ``size_bytes``, all strings), ``GET /api/now/attachment/<sys_id>/
file`` answers the bytes. Every name is kept; PDF, DOCX and TXT files up to 10 MB are read by
:func:`core.knowledge.attachments.extract_attachment_text`, and a file that cannot be (too large, gone,
broken) leaves a line saying why in the article's attachment text instead of failing the sync. It costs
one request per article and one per file, which is why it is off by default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx

from connectors.base import (
    ConfigField,
    ConnectorKind,
    ConnectorSpec,
    CreatedTicket,
    Cursor,
    FieldType,
    HttpStream,
    NewIncident,
    Reading,
    WorkNote,
)
from connectors.errors import (
    BadResponseError,
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    ResponseTooLargeError,
)
from connectors.ticketing import servicenow
from connectors.ticketing.servicenow import (
    MAX_PAGE_SIZE,
    Position,
    ServiceNowConfig,
    ServiceNowConnector,
    TableStream,
    plain_value,
    positions_from_cursor,
)
from core.knowledge.attachments import SUPPORTED_SUFFIXES, extract_attachment_text
from core.knowledge.markdown import html_to_markdown
from core.knowledge.records import ArticleState, ArticleValues

TABLE = "kb_knowledge"
SOURCE_SYSTEM = "servicenow_kb"
ARTICLE_PATH = "/kb_view.do?sysparm_article={number}"
FIELDS = (
    "sys_id",
    "number",
    "short_description",
    "text",
    "wiki",
    "article_type",
    "workflow_state",
    "kb_knowledge_base",
    "kb_category",
    "author",
    "valid_to",
    "sys_created_on",
    "sys_updated_on",
)
STATES: Mapping[str, ArticleState] = {
    "published": ArticleState.PUBLISHED,
    "pending_retirement": ArticleState.PUBLISHED,
    "draft": ArticleState.DRAFT,
    "scheduled_publish": ArticleState.DRAFT,
    "review": ArticleState.REVIEW,
    "retired": ArticleState.RETIRED,
}
SUPERSEDED_STATE = "outdated"
PERMISSION_HINT = (
    "give the account the knowledge role (or snc_read_only with a read ACL on kb_knowledge); articles of a "
    "knowledge base whose 'Can read' user criteria exclude the account stay invisible without an error"
)
INCIDENT_SPEC = servicenow.SPEC
ATTACHMENTS_PATH = "/api/now/attachment"
ATTACHMENT_FILE_PATH = "/api/now/attachment/{sys_id}/file"
MAX_ATTACHMENT_BYTES = 10_000_000
MAX_ATTACHMENTS = 100  # per article: one listing request, no paging
_SYS_ID = re.compile(r"[0-9a-f]{32}")
_WHITESPACE = re.compile(r"\s+")

SPEC = ConnectorSpec(
    type="servicenow_kb",
    display_name="ServiceNow Knowledge",
    kind=ConnectorKind.KNOWLEDGE,
    auth_modes=INCIDENT_SPEC.auth_modes,
    fields=(
        INCIDENT_SPEC.field("base_url"),
        ConfigField(
            "username", "User name", help="A local account that may read the knowledge bases.", page="auth"
        ),
        INCIDENT_SPEC.field("password"),
        INCIDENT_SPEC.field("client_id"),
        INCIDENT_SPEC.field("client_secret"),
        ConfigField(
            "knowledge_bases",
            "Knowledge bases",
            required=False,
            placeholder="IT, Network Operations",
            help="Comma-separated titles or sys_ids of the knowledge bases to read; empty: every one the "
            "account can read.",
        ),
        ConfigField(
            "query",
            "Encoded query",
            required=False,
            placeholder="kb_category.label=Network",
            help="Copy it from the Knowledge list filter (right-click the breadcrumb, Copy query). "
            "Leave out ORDERBY and sys_updated_on: the sync adds its own.",
        ),
        INCIDENT_SPEC.field("time_zone"),
        INCIDENT_SPEC.field("page_size"),
        ConfigField(
            "index_attachments",
            "Index attachments",
            FieldType.BOOLEAN,
            required=False,
            default=False,
            help="Read the text of PDF, DOCX and TXT attachments so matching finds it (a request per "
            "article and one per file; files over 10 MB are skipped with a note).",
        ),
    ),
    timestamp_precision=timedelta(seconds=1),
    description="Knowledge articles (kb_knowledge) through the Table API, as Markdown.",
    docs_url="https://www.servicenow.com/docs/r/api-reference/rest-apis/c_TableAPI.html",
    icon="servicenow.svg",
)


# ----------------------------------------------------------------------------------------------------------
# Pure helpers (no I/O), tested on their own
# ----------------------------------------------------------------------------------------------------------


def knowledge_base_term(value: Any) -> str:
    """The encoded-query term limiting a sync to the knowledge bases named (titles or sys_ids); "" for all.

    ValueError for a name the encoded query cannot carry (an ``IN`` list is comma-separated, so the option
    itself is; a title with ``^`` is written ``^^``).
    """
    items = value.split(",") if isinstance(value, str) else list(value or ())
    sys_ids: list[str] = []
    titles: list[str] = []
    for item in items:
        name = _WHITESPACE.sub(" ", str(item)).strip()
        if not name:
            continue
        if "=" in name:
            raise ValueError(f"{name!r}: give knowledge base titles or sys_ids, not a query")
        target = sys_ids if _SYS_ID.fullmatch(name) else titles
        if name not in target:
            target.append(name.replace("^", "^^"))
    terms = []
    if sys_ids:
        terms.append(f"kb_knowledge_baseIN{','.join(sys_ids)}")
    if titles:
        terms.append(f"kb_knowledge_base.titleIN{','.join(titles)}")
    return "^OR".join(terms)


def clean_title(text: str | None) -> str:
    """``short_description`` with its runs of whitespace (the editor's ``\\n\\t\\t``) as single spaces."""
    return _WHITESPACE.sub(" ", text or "").strip()


def article_state(workflow_state: str | None) -> ArticleState | None:
    """The normalised state; None for a superseded version (``outdated``), which is not stored."""
    key = (workflow_state or "").strip().lower()
    if key == SUPERSEDED_STATE:
        return None
    return STATES.get(key, ArticleState.DRAFT)


def article_url(base: str, number: str) -> str:
    return base + ARTICLE_PATH.format(number=number)


def shown_value(field: Any) -> str | None:
    """What a person reads of a field: the ``display_value`` of a display-value object, else the value."""
    if isinstance(field, dict):
        shown = field.get("display_value")
        field = shown if shown not in (None, "") else field.get("value")
    if field is None:
        return None
    text = str(field).strip()
    return text or None


def _raw_text(field: Any) -> str:
    """A long text field's stored value, untrimmed (``value`` of a display-value object; null is "")."""
    if isinstance(field, dict):
        field = field.get("value")
    return "" if field is None else str(field)


def normalise_article(record: Mapping[str, Any], base: str) -> ArticleValues | None:
    """One ``kb_knowledge`` record as an article; None for a superseded version; ValueError otherwise.

    The update time is set by the caller (the stream checks it for the keyset before this runs).
    """
    number = plain_value(record.get("number"))
    if not number:
        raise ValueError("number is empty")
    state = article_state(plain_value(record.get("workflow_state")))
    if state is None:
        return None
    title = clean_title(shown_value(record.get("short_description")))
    if not title:
        raise ValueError("short_description is empty")
    article_type = (plain_value(record.get("article_type")) or "text").lower()
    html = _raw_text(record.get("text"))
    wiki = _raw_text(record.get("wiki")).replace("\r\n", "\n").strip()
    body = wiki if article_type == "wiki" and wiki else html_to_markdown(html)
    return ArticleValues(
        external_id=number,
        source_system=SOURCE_SYSTEM,
        title=title,
        body=body,
        state=state,
        updated_at=None,
        number=number,
        url=article_url(base, number),
        space=shown_value(record.get("kb_knowledge_base")),
        category=shown_value(record.get("kb_category")),
        author=shown_value(record.get("author")),
        raw_payload=dict(record),
    )


# ----------------------------------------------------------------------------------------------------------
# The connector
# ----------------------------------------------------------------------------------------------------------


class _KnowledgeStream(TableStream):
    """``kb_knowledge``, keyset-paged by the incident connector's stream; records become articles."""

    def __init__(
        self,
        connector: ServiceNowKnowledgeConnector,
        since: Cursor | None,
        positions: dict[str, Position | None],
        limit: int,
    ) -> None:
        super().__init__(connector, since, TABLE, positions, limit)
        self.knowledge = connector

    async def normalise(self, record: dict[str, Any]) -> Reading:
        reading = await super().normalise(record)
        if isinstance(reading, ArticleValues) and self.knowledge.index_attachments:
            sys_id = plain_value(record.get("sys_id"))
            if sys_id:
                reading = await self.knowledge.with_attachments(reading, sys_id)
        return reading

    def convert(self, record: dict[str, Any]) -> Reading:
        article = normalise_article(record, self.config.base)
        if article is None:
            return None
        position = self._position  # set by normalise() to this record's (sys_updated_on, sys_id)
        return replace(article, updated_at=position[0] if position is not None else None)


class ServiceNowKnowledgeConnector(ServiceNowConnector):
    """The incident connector's client, auth and paging over ``kb_knowledge``; it never writes."""

    spec = SPEC
    fields = FIELDS
    can_write = False

    def config(self) -> ServiceNowConfig:
        if self._config is None:
            base = super().config()  # URL, auth mode, query, zone and page size checked as for incidents
            self._config = None  # not kept until the knowledge-base scope is checked too
            try:
                scope = knowledge_base_term(self.settings.option("knowledge_bases", ""))
            except ValueError as exc:
                raise ConfigurationError(self.name, f"knowledge bases: {exc}") from exc
            query = "^".join(term for term in (scope, base.query) if term)
            self._config = replace(base, tables=(TABLE,), query=query)
        return self._config

    def streams(self, since: Cursor | None, page_size: int | None) -> list[HttpStream[Any]]:
        config = self.config()
        limit = max(1, min(page_size or config.page_size, MAX_PAGE_SIZE))
        positions = positions_from_cursor(since, config.tables)
        return [_KnowledgeStream(self, since, positions, limit)]

    # --- attachments (opt-in) -------------------------------------------------------------------------

    @property
    def index_attachments(self) -> bool:
        value = self.settings.option("index_attachments", False)
        return value is True or str(value).strip().lower() in ("true", "1", "yes")

    async def with_attachments(self, article: ArticleValues, sys_id: str) -> ArticleValues:
        """The article with its attachments' names and the text of those we can read (PDF, DOCX, TXT).

        A file that cannot be read (too large, gone, hidden from the account, broken) becomes a line saying
        so in ``attachment_text``; the article is stored all the same. Other failures (auth, a timeout,
        a server error) end the sync as a failed page would.
        """
        rows = await self._attachment_rows(sys_id)
        names: list[str] = []
        texts: list[str] = []
        for row in rows:
            name = plain_value(row.get("file_name")) or ""
            file_id = plain_value(row.get("sys_id"))
            if not name or not file_id:
                continue
            names.append(name)
            if not name.lower().endswith(SUPPORTED_SUFFIXES):
                continue
            size = str(row.get("size_bytes") or "").strip()
            if size.isdigit() and int(size) > MAX_ATTACHMENT_BYTES:
                texts.append(f"[{name}: not read, {int(size):,} bytes is over the 10 MB limit]")
                continue
            path = ATTACHMENT_FILE_PATH.format(sys_id=file_id)
            try:
                response = await self._send("GET", path)
            except (NotFoundError, PermissionDeniedError, ResponseTooLargeError) as exc:
                texts.append(f"[{name}: not read, {exc}]")
                continue
            extracted = extract_attachment_text(name, response.content, max_bytes=MAX_ATTACHMENT_BYTES)
            if extracted.text:
                texts.append(f"## {name}\n\n{extracted.text.strip()}")
            elif extracted.error:
                texts.append(f"[{extracted.error}]")  # it names the file
        return replace(article, attachments=tuple(names), attachment_text="\n\n".join(texts) or None)

    async def _attachment_rows(self, sys_id: str) -> list[dict[str, Any]]:
        params = {
            "sysparm_query": f"table_name={TABLE}^table_sys_id={sys_id}^ORDERBYfile_name",
            "sysparm_limit": str(MAX_ATTACHMENTS),
        }
        response = await self._send("GET", ATTACHMENTS_PATH, params=params)
        body = self.http.json_of(response, "GET", ATTACHMENTS_PATH)
        result = body.get("result") if isinstance(body, dict) else None
        if not isinstance(result, list) or not all(isinstance(row, dict) for row in result):
            raise BadResponseError(self.name, f"GET {ATTACHMENTS_PATH} returned JSON without a 'result' list")
        return result

    async def _get_explained(self, table: str, params: Mapping[str, str]) -> httpx.Response:
        """The incident connector's explained GET, with what a 403 means for knowledge articles."""
        try:
            return await super()._get_explained(table, params)
        except PermissionDeniedError as exc:
            raise PermissionDeniedError(
                exc.connector,
                method=exc.method,
                path=exc.path,
                status=exc.status,
                server_message=exc.server_message,
                hint=PERMISSION_HINT,
            ) from exc

    async def create_incident(self, incident: NewIncident) -> CreatedTicket:
        raise ConfigurationError(self.name, f"{SPEC.display_name} connectors cannot create incidents")

    async def add_work_note(self, note: WorkNote) -> str | None:
        raise ConfigurationError(self.name, f"{SPEC.display_name} connectors cannot add work notes")
