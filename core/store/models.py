"""The store's tables, as SQLAlchemy 2 typed ORM classes.

Every table except ``tenants`` carries ``tenant_id`` through :class:`TenantScoped`; the session layer in
:mod:`core.store.tenancy` adds the tenant filter to every query on those classes, so no caller can forget it.

Times are stored as UTC and handed back timezone-aware (:class:`UtcDateTime`): SQLite has no timestamp type
and a naive datetime in one place and an aware one in another is the classic source of off-by-hours bugs.

``tickets.created_at`` / ``updated_at`` are the *source system's* times (the columns of the roadmap's "Data
Models: Tickets Table", used for incremental sync and MTTR); the row's own times are ``ingested_at`` /
``row_updated_at``.

Record identity (tickets and knowledge articles): one record is (tenant, ``source_system``,
``source_instance``, ``external_id``). ``source_system`` is the product ("servicenow", "jira");
``source_instance`` is which installation of it: the lower-case host of its address with any non-default
port (``core.store.tickets.instance_of``: "acme.service-now.com"), or "" when unknown.

- A connector sync stamps its config's instance (the host of its base URL), so INC0010001 of acme and
  INC0010001 of globex stay two tickets.
- The host, not the connector config, because the instance is what the records belong to: two configs
  reading one instance (one per table, or one removed and added again) hold the same tickets, and an export
  of that instance imported from a file must land on the rows the API wrote. A config id would split both.
- A file import takes the instance the analyst names (``import tickets --instance``), else the system's only
  known instance (its configured connectors' and its stored tickets'), else unknown. With two or more known
  and none named, the file is refused before anything is written: guessing would merge two instances again.
- A row of unknown instance (history imported before any connector was set up) belongs to its system's only
  known instance: a sync or import of that instance takes it over instead of adding a twin. Once a system
  has two instances, such rows stay as they are.
- A connector whose base URL changes (a new custom domain, a proxy) takes its tickets along to the new host
  (``connectors.configs.update_config``): the address moved, the instance did not.

This replaces the roadmap's key UNIQUE(external_id, source_system, tenant_id), under which two instances of
one system overwrote each other; migration 0007 moved the rows (synced rows got their config's instance).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


UNKNOWN_INSTANCE = ""  # source_instance of a record whose source did not say (see the identity rule above)
BASE_URL_KEY = "base_url"  # connector_configs.config_json's key for the instance address


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as naive UTC; returns them aware (UTC). Naive input is taken as UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime,
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TenantScoped:
    """Marker + column for rows that belong to one tenant (see :mod:`core.store.tenancy`)."""

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)


class RunbookStatus(enum.StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    RETIRED = "retired"


class RunbookSource(enum.StrEnum):
    AUTHORED = "authored"
    IMPORTED = "imported"
    KB = "kb"


class TicketKind(enum.StrEnum):
    INCIDENT = "incident"
    CHANGE = "change"
    REQUEST = "request"
    PROBLEM = "problem"
    ALERT = "alert"


class LinkDecision(enum.StrEnum):
    SUGGESTED = "suggested"
    LINKED = "linked"
    REJECTED = "rejected"


class AnalysisDecision(enum.StrEnum):
    LINK_RUNBOOK = "link_runbook"
    FLAG_REVIEW = "flag_review"
    GENERATE_RUNBOOK = "generate_runbook"


class OutcomeKind(enum.StrEnum):
    """Did the linked runbook fix the ticket (roadmap: Execution Tracking)."""

    RESOLVED = "resolved"
    PARTLY = "partly"
    FAILED = "failed"


class OutcomeSource(enum.StrEnum):
    """Who said so: the analyst, or the source system's later history of the ticket."""

    ANALYST = "analyst"
    SOURCE_RESOLVED = "source_resolved"  # resolved after the link
    SOURCE_REOPENED = "source_reopened"  # reopened after it was resolved
    RECURRENCE = "recurrence"  # the same configuration item raised a similar ticket soon after


class SyncStatus(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


def _enum(kind: type[enum.StrEnum], length: int = 20) -> Any:
    # Stored as the plain value string (not the member name) so the database reads naturally.
    from sqlalchemy import Enum

    return Enum(
        kind,
        values_callable=lambda members: [m.value for m in members],
        native_enum=False,
        length=length,
        validate_strings=True,
    )


class Tenant(Timestamps, Base):
    __tablename__ = "tenants"
    # AUTOINCREMENT: a deleted tenant's id is never reused, so no new tenant reads its audit rows (0009).
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Runbook(TenantScoped, Timestamps, Base):
    __tablename__ = "runbooks"
    __table_args__ = (UniqueConstraint("tenant_id", "external_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(default=list)
    service: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[RunbookStatus] = mapped_column(_enum(RunbookStatus), default=RunbookStatus.DRAFT)
    source: Mapped[RunbookSource] = mapped_column(_enum(RunbookSource), default=RunbookSource.AUTHORED)
    # Where an imported runbook came from (file name, KB number): the re-import key.
    external_ref: Mapped[str | None] = mapped_column(String(500))
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    current_revision: Mapped[int] = mapped_column(Integer, default=0)
    # A runbook adopted from a knowledge article (issue 14): the article, and its content hash when adopted;
    # a later sync that changes the article makes the two differ ("source changed"). A plain column, no
    # foreign key: adding one would rebuild the runbooks table under its search triggers (0003), and a
    # purged article only leaves the runbook without a source to compare with.
    source_article_id: Mapped[int | None] = mapped_column(Integer, index=True)
    source_article_hash: Mapped[str | None] = mapped_column(String(64))
    # Optimistic concurrency (team mode, issue 17): every UPDATE says which version it read, so a second
    # analyst's stale save changes nothing and is told who changed it (``updated_by``) and when.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    updated_by: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # SQLAlchemy then writes ``UPDATE ... WHERE id = :id AND version = :read`` and bumps it; no row matched
    # means someone else wrote first (StaleDataError, turned into ConcurrentChangeError by the workflow).
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (typed on SQLAlchemy's base)

    revisions: Mapped[list[RunbookRevision]] = relationship(
        back_populates="runbook", cascade="all, delete-orphan", order_by="RunbookRevision.revision"
    )


class RunbookRevision(TenantScoped, Timestamps, Base):
    __tablename__ = "runbook_revisions"
    __table_args__ = (UniqueConstraint("runbook_id", "revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    runbook_id: Mapped[int] = mapped_column(ForeignKey("runbooks.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(default=list)
    service: Mapped[str | None] = mapped_column(String(200))
    author: Mapped[str] = mapped_column(String(200))

    runbook: Mapped[Runbook] = relationship(back_populates="revisions")


class Ticket(TenantScoped, Base):
    __tablename__ = "tickets"
    __table_args__ = (
        # The identity rule (module docstring); its column order serves the upsert's and known_instances'
        # lookups, which are by tenant, system and instance.
        UniqueConstraint("tenant_id", "source_system", "source_instance", "external_id"),
        Index("ix_tickets_tenant_updated", "tenant_id", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200))
    source_system: Mapped[str] = mapped_column(String(100))
    source_instance: Mapped[str] = mapped_column(String(300), default=UNKNOWN_INSTANCE, server_default="")
    title: Mapped[str] = mapped_column(String(1000))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str | None] = mapped_column(String(100))
    severity: Mapped[str | None] = mapped_column(String(50))
    assignee: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[TicketKind] = mapped_column(_enum(TicketKind), default=TicketKind.INCIDENT)
    category: Mapped[str | None] = mapped_column(String(200))
    configuration_item: Mapped[str | None] = mapped_column(String(200))
    resolution_notes: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column()
    source_url: Mapped[str | None] = mapped_column(String(2000))
    content_hash: Mapped[str] = mapped_column(String(64))
    raw_payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The connector config that last stored this ticket (NULL for file imports): "remove and purge" uses it.
    connector_config_id: Mapped[int | None] = mapped_column(
        ForeignKey("connector_configs.id", ondelete="SET NULL"), index=True
    )
    # Source system's own times (roadmap: Data Models, Tickets Table).
    created_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime | None] = mapped_column()
    # This row's times.
    ingested_at: Mapped[datetime] = mapped_column(default=utcnow)
    row_updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TicketRunbookLink(TenantScoped, Timestamps, Base):
    __tablename__ = "ticket_runbook_links"
    __table_args__ = (UniqueConstraint("ticket_id", "runbook_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    runbook_id: Mapped[int] = mapped_column(ForeignKey("runbooks.id", ondelete="CASCADE"), index=True)
    confidence_score: Mapped[float | None] = mapped_column(Float)
    linked_automatically: Mapped[bool] = mapped_column(Boolean, default=False)
    linked_at: Mapped[datetime | None] = mapped_column()
    reviewed_by: Mapped[str | None] = mapped_column(String(200))
    reviewed_at: Mapped[datetime | None] = mapped_column()
    decision: Mapped[LinkDecision] = mapped_column(_enum(LinkDecision), default=LinkDecision.SUGGESTED)
    reason: Mapped[str | None] = mapped_column(Text)
    # Optimistic concurrency, as on :class:`Runbook`.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    updated_by: Mapped[str] = mapped_column(String(200), default="", server_default="")
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (typed on SQLAlchemy's base)


class ConnectorConfig(TenantScoped, Timestamps, Base):
    """A configured connector. ``config_json`` holds non-secrets only; secrets live in the OS keychain."""

    __tablename__ = "connector_configs"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connector_type: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    config_json: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_sync_at: Mapped[datetime | None] = mapped_column()
    last_successful_sync_at: Mapped[datetime | None] = mapped_column()
    sync_frequency_minutes: Mapped[int] = mapped_column(Integer, default=5)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)

    @property
    def base_url(self) -> str:
        """The instance's address: the source of its records' ``source_instance`` (the identity rule)."""
        return str((self.config_json or {}).get(BASE_URL_KEY) or "")


class SyncRun(TenantScoped, Timestamps, Base):
    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    # A run outlives its connector (0008): removing the config nulls the id; the name it ran under stays.
    connector_config_id: Mapped[int | None] = mapped_column(
        ForeignKey("connector_configs.id", ondelete="SET NULL"), index=True
    )
    connector_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[SyncStatus] = mapped_column(_enum(SyncStatus), default=SyncStatus.RUNNING)
    items_new: Mapped[int] = mapped_column(Integer, default=0)
    items_updated: Mapped[int] = mapped_column(Integer, default=0)
    items_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    items_failed: Mapped[int] = mapped_column(Integer, default=0)
    error_text: Mapped[str | None] = mapped_column(Text)
    # The lowest remaining/limit of the source's rate-limit headers during the run (None: it sent none);
    # the "API rate limit approaching" alert reads it (core.analytics.health_alerts).
    rate_limit_remaining: Mapped[int | None] = mapped_column(Integer)
    rate_limit_limit: Mapped[int | None] = mapped_column(Integer)


class SyncCursor(TenantScoped, Timestamps, Base):
    __tablename__ = "sync_cursors"
    __table_args__ = (UniqueConstraint("connector_config_id", "stream"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connector_config_id: Mapped[int] = mapped_column(ForeignKey("connector_configs.id", ondelete="CASCADE"))
    stream: Mapped[str] = mapped_column(String(100))
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)


class KnowledgeArticle(TenantScoped, Timestamps, Base):
    """A knowledge article (issue 14) from ServiceNow Knowledge, Confluence or ServiceDesk Plus solutions.

    Identity as tickets (the module docstring's rule). ``body`` is clean Markdown converted from the source's
    HTML/XHTML (:mod:`core.knowledge.markdown`), which stays in ``raw_payload``. ``status`` is the article's
    state, normalised: ``published``, ``draft``, ``retired`` (only published ones are matched by default).
    ``space``: the Confluence space, ServiceNow knowledge base or SDP topic; ``number``: what people quote
    (KB0012345, a page id). ``attachment_text``: the text of its PDF/DOCX/TXT attachments when the
    connector's option says to index them.
    """

    __tablename__ = "knowledge_articles"
    __table_args__ = (UniqueConstraint("tenant_id", "source_system", "source_instance", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connector_config_id: Mapped[int | None] = mapped_column(
        ForeignKey("connector_configs.id", ondelete="SET NULL")
    )
    external_id: Mapped[str] = mapped_column(String(200))
    source_system: Mapped[str] = mapped_column(String(100))
    source_instance: Mapped[str] = mapped_column(String(300), default=UNKNOWN_INSTANCE, server_default="")
    number: Mapped[str | None] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(1000))
    body: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str | None] = mapped_column(String(2000))
    status: Mapped[str | None] = mapped_column(String(100))
    space: Mapped[str | None] = mapped_column(String(300))
    category: Mapped[str | None] = mapped_column(String(300))
    author: Mapped[str | None] = mapped_column(String(200))
    attachments: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    attachment_text: Mapped[str | None] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    raw_payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    source_updated_at: Mapped[datetime | None] = mapped_column()


class Analysis(TenantScoped, Timestamps, Base):
    __tablename__ = "analyses"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    decision: Mapped[AnalysisDecision] = mapped_column(_enum(AnalysisDecision))
    confidence: Mapped[float] = mapped_column(Float)
    best_runbook_id: Mapped[int | None] = mapped_column(ForeignKey("runbooks.id", ondelete="SET NULL"))
    model_id: Mapped[str] = mapped_column(String(200))
    threshold_existing: Mapped[float] = mapped_column(Float)
    threshold_partial: Mapped[float] = mapped_column(Float)
    # The ticket text the analysis saw: unchanged hash means the analysis is still current.
    ticket_content_hash: Mapped[str] = mapped_column(String(64))
    analysed_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(TenantScoped, Timestamps, Base):
    """Append-only: the database refuses UPDATE, DELETE and an INSERT over an existing id (migration 0009).

    The trail outlives its tenant: ``tenant_id`` is a plain column (no foreign key, so deleting a tenant
    cascades into everything but this) and ``tenant_slug`` says whose rows they were once the tenant is gone.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        # One ticket's decision history and an analyst's undo history (core.workflow.history) read the
        # trail by entity and by action; without these, a long trail is scanned whole (1.6 s at 1M rows).
        Index("ix_audit_events_entity", "entity_type", "entity_id"),
        Index("ix_audit_events_action", "action"),
        # Two writers that read the same chain end cannot both append: the second insert fails. An index,
        # not a constraint: SQLite adds an index in place, a constraint would rebuild the table.
        Index("uq_audit_events_tenant_id_seq", "tenant_id", "seq", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(Integer, index=True)
    tenant_slug: Mapped[str] = mapped_column(String(64), default="", server_default="")
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    entity_type: Mapped[str] = mapped_column(String(100))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # The hash chain (issue 17, migration 0014): per tenant, ``seq`` counts 1, 2, 3... and each row's
    # ``row_hash`` covers its content and the previous row's hash, so an edited, removed or inserted row
    # breaks every link after it. NULL ``seq``: a row the database wrote itself (a tenant's deletion).
    seq: Mapped[int | None] = mapped_column(Integer)
    prev_hash: Mapped[str] = mapped_column(String(64), default="", server_default="")
    row_hash: Mapped[str] = mapped_column(String(64), default="", server_default="")
    # PostgreSQL: the database login that wrote the row, checked by a trigger against session_user
    # (``actor`` is what the app says; this is what the server knows). "" on SQLite.
    db_login: Mapped[str] = mapped_column(String(63), default="", server_default="")


class RunbookSection(TenantScoped, Timestamps, Base):
    """A runbook cut into the parts the model embeds (title, symptoms, steps...); ids index the runbook FAISS.

    Derived data: rebuilt from the runbook body whenever its content hash changes.
    """

    __tablename__ = "runbook_sections"
    __table_args__ = (UniqueConstraint("runbook_id", "ordinal"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    runbook_id: Mapped[int] = mapped_column(ForeignKey("runbooks.id", ondelete="CASCADE"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(64))
    runbook_content_hash: Mapped[str] = mapped_column(String(64))


class EmbeddingCacheEntry(TenantScoped, Base):
    """One vector per (model, prepared text): unchanged text is never embedded twice, across runs."""

    __tablename__ = "embedding_cache"
    __table_args__ = (UniqueConstraint("tenant_id", "model_id", "text_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[str] = mapped_column(String(200))
    text_hash: Mapped[str] = mapped_column(String(64))
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GapDismissal(TenantScoped, Base):
    """An analyst's "not a gap" on a gap cluster (core.analytics.gaps): later clusters that match it are left
    out.

    A later run's clusters are different objects, so the match is by content: the cosine of the centroids
    (``centroid``: float32 bytes of the model ``model_id``) or the overlap with ``member_ticket_ids``.
    """

    __tablename__ = "gap_dismissals"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(500))
    terms: Mapped[list[str]] = mapped_column(default=list)
    model_id: Mapped[str] = mapped_column(String(200))
    centroid: Mapped[bytes] = mapped_column(LargeBinary)
    member_ticket_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    reason: Mapped[str | None] = mapped_column(Text)
    dismissed_by: Mapped[str] = mapped_column(String(200))
    dismissed_at: Mapped[datetime] = mapped_column(default=utcnow)


class HealthAlert(TenantScoped, Base):
    """One of the app's own health alerts (:mod:`core.analytics.health_alerts`: sync failures, unlinked
    volume...): one row per occurrence, raised when its condition starts and cleared when it ends;
    ``subject`` says what it is about ("tenant", "connector:3"). Not a monitoring system's alert: those are
    :class:`MonitoringAlert`."""

    __tablename__ = "health_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(50))
    subject: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)  # the last evaluation that found it true
    cleared_at: Mapped[datetime | None] = mapped_column()


# At most one *active* alert per rule and subject, whatever two evaluations racing each other do.
Index(
    "ix_health_alerts_active_rule_subject",
    HealthAlert.tenant_id,
    HealthAlert.rule,
    HealthAlert.subject,
    unique=True,
    sqlite_where=HealthAlert.cleared_at.is_(None),
    postgresql_where=HealthAlert.cleared_at.is_(None),
)


class RematchRequest(TenantScoped, Base):
    """A runbook whose change (approved, edited, imported, retired) may change old tickets' matches.

    Written in the transaction that changes the runbook; the next analysis (``core.matching.rematch``)
    re-matches the tickets near it and deletes the request. ``runbook_id`` is a plain column: a deleted
    runbook's request still says which tickets to look at again (those it was linked to).
    """

    __tablename__ = "rematch_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    runbook_id: Mapped[int] = mapped_column(Integer, index=True)
    reason: Mapped[str] = mapped_column(String(50))
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)


class RunbookOutcome(TenantScoped, Base):
    """The outcome of one linked runbook for one ticket, per source of the knowledge (one row each).

    The analyst's row (``OutcomeSource.ANALYST``) wins over inferred ones; a re-sync updates its inferred
    row instead of adding a second (the unique key).
    """

    __tablename__ = "runbook_outcomes"
    __table_args__ = (UniqueConstraint("ticket_id", "runbook_id", "source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    runbook_id: Mapped[int] = mapped_column(ForeignKey("runbooks.id", ondelete="CASCADE"), index=True)
    outcome: Mapped[OutcomeKind] = mapped_column(_enum(OutcomeKind))
    source: Mapped[OutcomeSource] = mapped_column(_enum(OutcomeSource, length=30))
    # Seconds from the ticket's creation to its resolution (success inferred from the source), for MTTR.
    time_to_resolve_s: Mapped[float | None] = mapped_column(Float)
    # The ticket that showed the failure (a recurrence), when there is one.
    evidence_ticket_id: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class CalibrationVersion(TenantScoped, Base):
    """A calibrator fitted on a tenant's own reviewed decisions, with the figures that decided its fate.

    At most one row per tenant is ``active``; none active means the shipped default. A version that did
    not beat the one in use is kept too (``adopted`` false, ``note`` says why), so Settings can show it.
    """

    __tablename__ = "calibration_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    calibrator: Mapped[dict[str, Any]] = mapped_column(JSON)
    n_decisions: Mapped[int] = mapped_column(Integer)
    n_tickets: Mapped[int] = mapped_column(Integer)
    # Held-out (cross-validated by ticket) figures of the calibrator in use before, and of this one.
    logloss_before: Mapped[float | None] = mapped_column(Float)
    logloss_after: Mapped[float | None] = mapped_column(Float)
    ece_before: Mapped[float | None] = mapped_column(Float)
    ece_after: Mapped[float | None] = mapped_column(Float)
    adopted: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)
    fitted_by: Mapped[str] = mapped_column(String(200))
    fitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    reverted_at: Mapped[datetime | None] = mapped_column()


# ----------------------------------------------------------------------------------------------------------
# Monitoring (issue 13): what monitoring systems report, deduplicated into alerts, correlated into incidents
# ----------------------------------------------------------------------------------------------------------


class AlertStatus(enum.StrEnum):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class IncidentStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class MonitoringEvent(TenantScoped, Base):
    """One record a monitoring connector read (a Zabbix problem, a Datadog event or monitor state, a SWIS
    active alert): the sync's unit, unique by its source id like a ticket, so a re-read never counts twice.

    Many events share one :class:`MonitoringAlert` (their ``fingerprint``): the deduplication. Events in /
    alerts kept is the compression ratio.
    """

    __tablename__ = "monitoring_events"
    __table_args__ = (UniqueConstraint("tenant_id", "source_system", "source_instance", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connector_config_id: Mapped[int | None] = mapped_column(
        ForeignKey("connector_configs.id", ondelete="SET NULL"), index=True
    )
    source_system: Mapped[str] = mapped_column(String(100))
    source_instance: Mapped[str] = mapped_column(String(300), default=UNKNOWN_INSTANCE, server_default="")
    external_id: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("monitoring_alerts.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(1000))
    status: Mapped[AlertStatus] = mapped_column(_enum(AlertStatus))
    occurred_at: Mapped[datetime] = mapped_column()  # when the source says it fired
    source_updated_at: Mapped[datetime | None] = mapped_column()
    content_hash: Mapped[str] = mapped_column(String(64))
    ingested_at: Mapped[datetime] = mapped_column(default=utcnow)

    alert: Mapped[MonitoringAlert] = relationship()


class MonitoringAlert(TenantScoped, Base):
    """One deduplicated alert: every event of one fingerprint (source + monitor/trigger id + host + normalised
    title, :func:`core.monitoring.events.fingerprint`). A repeat raises ``occurrence_count`` and
    ``last_seen``; a recovery resolves it; a repeat after the recovery triggers it again."""

    __tablename__ = "monitoring_alerts"
    __table_args__ = (UniqueConstraint("tenant_id", "fingerprint"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connector_config_id: Mapped[int | None] = mapped_column(
        ForeignKey("connector_configs.id", ondelete="SET NULL"), index=True
    )
    source_system: Mapped[str] = mapped_column(String(100))
    source_instance: Mapped[str] = mapped_column(String(300), default=UNKNOWN_INSTANCE, server_default="")
    external_id: Mapped[str] = mapped_column(String(200))  # the latest event's
    monitor_id: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(1000))
    message: Mapped[str] = mapped_column(Text, default="")
    expression: Mapped[str | None] = mapped_column(Text)  # the raw rule (PromQL, trigger expression, SWQL)
    severity: Mapped[str] = mapped_column(String(20))  # core.monitoring.events.Severity
    status: Mapped[AlertStatus] = mapped_column(_enum(AlertStatus))
    host: Mapped[str | None] = mapped_column(String(300))
    service: Mapped[str | None] = mapped_column(String(300))
    tags: Mapped[list[str]] = mapped_column(default=list)
    first_seen: Mapped[datetime] = mapped_column()
    last_seen: Mapped[datetime] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    occurrence_count: Mapped[int] = mapped_column(Integer, default=1)
    source_url: Mapped[str | None] = mapped_column(String(2000))
    raw_payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("monitoring_incidents.id", ondelete="SET NULL"), index=True
    )
    row_updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MonitoringIncident(TenantScoped, Base):
    """Alerts on one host/CI or service within the correlation window, grouped (core.monitoring.correlation).

    It is matched to runbooks through ``ticket_id``: a ticket row of kind ``alert`` and source system
    ``monitoring`` whose text is the incident's alerts, so the engine, the calibrated confidence and the
    review queue treat it exactly like a ticket. ``created_*`` record the ticket an analyst had created in a
    ticketing system for it (at most one: the create path checks ``created_number`` first).
    """

    __tablename__ = "monitoring_incidents"
    # Correlation reads the open incidents near a page's alerts (core.monitoring.correlation) per page.
    __table_args__ = (Index("ix_monitoring_incidents_open_recent", "tenant_id", "status", "last_alert_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), index=True, unique=True
    )
    title: Mapped[str] = mapped_column(String(1000))
    severity: Mapped[str] = mapped_column(String(20))
    status: Mapped[IncidentStatus] = mapped_column(_enum(IncidentStatus), default=IncidentStatus.OPEN)
    hosts: Mapped[list[str]] = mapped_column(default=list)
    services: Mapped[list[str]] = mapped_column(default=list)
    opened_at: Mapped[datetime] = mapped_column()
    last_alert_at: Mapped[datetime] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    notified_at: Mapped[datetime | None] = mapped_column()  # the desktop notification, sent once
    created_config_id: Mapped[int | None] = mapped_column(
        ForeignKey("connector_configs.id", ondelete="SET NULL")
    )
    created_number: Mapped[str | None] = mapped_column(String(200))
    created_url: Mapped[str | None] = mapped_column(String(2000))
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime | None] = mapped_column()
    row_updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WritebackStatus(enum.StrEnum):
    PENDING = "pending"
    WRITTEN = "written"
    FAILED = "failed"


class TicketWriteback(TenantScoped, Base):
    """An approved runbook link to post to the source ticket (opt-in per ticketing connector): once per link
    (the unique key), retried until written; a failure is shown on the ticket and never blocks the
    decision."""

    __tablename__ = "ticket_writebacks"
    __table_args__ = (UniqueConstraint("ticket_id", "runbook_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    runbook_id: Mapped[int] = mapped_column(ForeignKey("runbooks.id", ondelete="CASCADE"))
    connector_config_id: Mapped[int | None] = mapped_column(
        ForeignKey("connector_configs.id", ondelete="SET NULL")
    )
    status: Mapped[WritebackStatus] = mapped_column(_enum(WritebackStatus), default=WritebackStatus.PENDING)
    confidence: Mapped[float | None] = mapped_column(Float)
    approved_by: Mapped[str] = mapped_column(String(200))
    approved_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_attempt_at: Mapped[datetime | None] = mapped_column()
    written_at: Mapped[datetime | None] = mapped_column()
    remote_id: Mapped[str | None] = mapped_column(String(200))  # the note / comment id the system returned


class ArticleSection(TenantScoped, Timestamps, Base):
    """A knowledge article cut into embeddable parts like a runbook (:class:`RunbookSection`); ids index the
    article FAISS (issue 14). Derived data: rebuilt whenever the article's content hash changes."""

    __tablename__ = "article_sections"
    __table_args__ = (UniqueConstraint("article_id", "ordinal"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("knowledge_articles.id", ondelete="CASCADE"), index=True
    )
    ordinal: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(64))
    article_content_hash: Mapped[str] = mapped_column(String(64))


class TeamRole(enum.StrEnum):
    """What a team member may do (issue 17); each role includes the ones before it."""

    VIEWER = "viewer"  # read
    ANALYST = "analyst"  # decide, draft, record outcomes
    ADMIN = "admin"  # connectors, secrets, thresholds, calibration, members


class TeamMember(TenantScoped, Timestamps, Base):
    """A database login's role in a tenant (team mode). PostgreSQL's row-level security reads this table:
    a login sees and changes only the rows of its tenants, and what it may change depends on the role. On
    SQLite (one analyst, one file) the table stays empty and the analyst is the admin."""

    __tablename__ = "team_members"
    __table_args__ = (UniqueConstraint("tenant_id", "login"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(63))  # PostgreSQL's NAMEDATALEN - 1
    role: Mapped[TeamRole] = mapped_column(_enum(TeamRole), default=TeamRole.VIEWER)
    added_by: Mapped[str] = mapped_column(String(200), default="")


class ConnectorSecret(TenantScoped, Base):
    """When a connector secret was stored, rotated and last used: never its value (that is in the OS
    keychain). The age drives the rotation reminder (tenant setting, 90 days by default)."""

    __tablename__ = "connector_secrets"
    __table_args__ = (UniqueConstraint("connector_config_id", "field"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connector_config_id: Mapped[int] = mapped_column(
        ForeignKey("connector_configs.id", ondelete="CASCADE"), index=True
    )
    field: Mapped[str] = mapped_column(String(100))
    stored_at: Mapped[datetime] = mapped_column(default=utcnow)
    stored_by: Mapped[str] = mapped_column(String(200), default="")
    rotated_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()
