"""The audit trail's hash chain (issue 17): every new audit row is chained as it is flushed; ``verify`` finds
the first broken link; ``export_jsonl`` hands the trail to a SIEM.

Per tenant, rows are numbered ``seq`` 1, 2, 3... and each row's ``row_hash`` is :func:`row_digest` of its
content and the previous row's hash (``prev_hash``). So changing a row changes its hash (or, if the editor
recomputed it, breaks the next row's ``prev_hash``), removing one leaves a gap in ``seq``, and adding one
needs a hash nobody without the chain's end can forge into the middle. What a chain alone cannot show is a
trail cut at its end, or rewritten whole from some row on by someone with write access to the file or the
server: ``verify`` prints the last hash and ``export_jsonl`` ships the rows elsewhere, so a copy kept outside
the database is the anchor that catches those.

Who writes rows: the app, through the ORM (:func:`core.store.repository.record_audit`), and the database
itself when a tenant is deleted (``tenant.deleted``, ``seq`` NULL: a trigger cannot take the chain's lock
nor compute our digest). :func:`_chain_new_rows` runs before every flush of every ORM session (a
:class:`~core.store.tenancy.TenantSession` and an admin ``Session`` alike) and fills in ``seq``,
``prev_hash``, ``db_login`` and ``row_hash`` of the new rows, whatever the caller put there.

Two writers appending to one tenant at once must not both read the same chain end:

* PostgreSQL: ``pg_advisory_xact_lock`` on (:data:`CHAIN_LOCK_NAMESPACE`, tenant id), held until the
  transaction ends; read committed then shows each writer the other's committed rows. The unique
  ``(tenant_id, seq)`` index is the backstop.
* SQLite: the flush first takes the database's write lock with a statement that changes nothing; a writer
  holding it is the only one, and the next waits (``busy_timeout``) and then reads the new end. Without it,
  two connections could read the same end before either wrote, and the second insert would fail on the
  unique index (nothing forked, but an error for the user).

The cost: a transaction that writes an audit row holds its tenant's chain until it commits, so audit rows
belong in short transactions (they are: one per decision, page or config change).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Connection, Engine, Row, event, func, select, text
from sqlalchemy import inspect as orm_state
from sqlalchemy.orm import Session, UOWTransaction

from core.errors import TenantError
from core.store.models import AuditEvent, Tenant, utcnow

# The first key of the two-key advisory lock ("RDAU" in ASCII); the second is the tenant id. Another lock
# of the app takes another namespace, so the two never collide.
CHAIN_LOCK_NAMESPACE = 0x52444155
# The one row the database writes itself, unchained (seq NULL): anything else without a seq is forged.
DATABASE_ACTOR = "database"
UNCHAINED_ACTIONS = frozenset({"tenant.deleted"})
EXPORT_BATCH = 500  # rows fetched at a time by export and verify: memory stays flat on a long trail

_AUDIT = AuditEvent.__table__
_TENANTS = Tenant.__table__


# --- the digest -------------------------------------------------------------------------------------------


def row_digest(row_values: Mapping[str, Any], prev_hash: str) -> str:
    """SHA-256 (hex) of one row's content and the previous row's hash.

    Byte-identical to ``audit_digest`` in migration 0014, which keeps a frozen copy to chain the rows that
    existed before it (a test holds the two together). The content is a JSON array in a fixed order, with
    the time as naive UTC with microseconds (what both engines store and read back) and ``before`` /
    ``after`` normalised through JSON (tuples become lists, keys strings, as the JSON column stores them).
    """
    occurred = row_values["occurred_at"]
    if isinstance(occurred, str):
        occurred = datetime.fromisoformat(occurred)
    if occurred.tzinfo is not None:
        occurred = occurred.astimezone(UTC).replace(tzinfo=None)
    payload = [
        prev_hash,
        row_values["tenant_id"],
        row_values["tenant_slug"],
        row_values["seq"],
        occurred.strftime("%Y-%m-%d %H:%M:%S.%f"),
        row_values["actor"],
        row_values["db_login"],
        row_values["action"],
        row_values["entity_type"],
        row_values["entity_id"],
        _json_value(row_values["before"]),
        _json_value(row_values["after"]),
    ]
    content = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def _json_value(value: Any) -> Any:
    if isinstance(value, str):  # read back without a JSON type
        value = json.loads(value)
    return json.loads(json.dumps(value))


def _event_values(audit_event: AuditEvent) -> dict[str, Any]:
    return {
        "tenant_id": audit_event.tenant_id,
        "tenant_slug": audit_event.tenant_slug,
        "seq": audit_event.seq,
        "occurred_at": audit_event.occurred_at,
        "actor": audit_event.actor,
        "db_login": audit_event.db_login,
        "action": audit_event.action,
        "entity_type": audit_event.entity_type,
        "entity_id": audit_event.entity_id,
        "before": audit_event.before,
        "after": audit_event.after,
    }


# --- chaining new rows ------------------------------------------------------------------------------------


@event.listens_for(Session, "before_flush")
def _chain_new_rows(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    """Number and hash the audit rows this flush inserts, per tenant, in the order they were added."""
    new_events = sorted(
        (obj for obj in session.new if isinstance(obj, AuditEvent)),
        key=lambda obj: orm_state(obj).insert_order or 0,
    )
    if not new_events:
        return
    connection = session.connection()
    login = _db_login(session, connection)
    by_tenant: dict[int, list[AuditEvent]] = {}
    for audit_event in new_events:
        if audit_event.tenant_id is None:  # a TenantSession's own listener may not have filled it in yet
            audit_event.tenant_id = session.info.get("tenant_id")
        if audit_event.tenant_id is None:
            raise TenantError(f"audit row {audit_event.action!r} names no tenant: it cannot be chained")
        by_tenant.setdefault(audit_event.tenant_id, []).append(audit_event)
    if connection.dialect.name == "sqlite":
        _take_sqlite_write_lock(connection)
    for tenant_id in sorted(by_tenant):  # one lock order: two flushes never wait on each other in a circle
        seq, prev_hash = _lock_chain_end(connection, tenant_id)
        for audit_event in by_tenant[tenant_id]:
            # The values hashed must be the values inserted: fill in the column defaults now.
            if audit_event.tenant_slug is None:
                audit_event.tenant_slug = ""
            if audit_event.occurred_at is None:
                audit_event.occurred_at = utcnow()
            seq += 1
            audit_event.seq = seq
            audit_event.db_login = login
            audit_event.prev_hash = prev_hash
            audit_event.row_hash = row_digest(_event_values(audit_event), prev_hash)
            prev_hash = audit_event.row_hash


def _db_login(session: Session, connection: Connection) -> str:
    """``session_user`` on PostgreSQL (its trigger refuses any other), "" on SQLite; read once per session
    (the same cache :func:`core.store.team.current_login` uses)."""
    login = session.info.get("db_login")
    if login is None:
        login = (
            str(connection.scalar(text("SELECT session_user")))
            if connection.dialect.name == "postgresql"
            else ""
        )
        session.info["db_login"] = login
    return str(login)


def _take_sqlite_write_lock(connection: Connection) -> None:
    """Begin the write transaction now, before the chain's end is read (see the module docstring): the
    driver opens a transaction before any data-changing statement, and SQLite takes its write lock for it
    even when no row matches (so the append-only trigger, a row trigger, does not fire)."""
    connection.exec_driver_sql("UPDATE audit_events SET seq = seq WHERE 0")


def _lock_chain_end(connection: Connection, tenant_id: int) -> tuple[int, str]:
    """The tenant's last (seq, row_hash), (0, "") for an empty chain, read under the chain's lock."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, :tenant)"),
            {"namespace": CHAIN_LOCK_NAMESPACE, "tenant": tenant_id},
        )
    last = connection.execute(
        select(_AUDIT.c.seq, _AUDIT.c.row_hash)
        .where(_AUDIT.c.tenant_id == tenant_id, _AUDIT.c.seq.is_not(None))
        .order_by(_AUDIT.c.seq.desc())
        .limit(1)
    ).first()
    return (0, "") if last is None else (int(last.seq), str(last.row_hash))


# --- verifying ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first link that does not hold: which row, and what differs from what the chain expects."""

    row_id: int
    seq: int | None
    problem: str  # "seq" (a gap or a repeat), "prev_hash", "row_hash" (content changed), "unchained"
    detail: str

    def describe(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "no seq"
        return f"row id {self.row_id} ({where}): {self.detail}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    tenant_id: int
    tenant_slug: str
    rows: int  # chained rows (with a seq)
    unsequenced: int  # rows the database wrote itself (a tenant's deletion): counted, not chained
    last_seq: int
    last_hash: str
    first_break: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.first_break is None

    def headline(self) -> str:
        extra = f" (+{self.unsequenced} written by the database)" if self.unsequenced else ""
        if self.first_break is None:
            last = self.last_hash or "none (empty)"
            return f"{self.tenant_slug}: chain intact: {self.rows} rows{extra}, last hash {last}"
        return f"{self.tenant_slug}: chain broken at {self.first_break.describe()}"

    def as_dict(self) -> dict[str, Any]:
        broken = self.first_break
        return {
            "tenant_id": self.tenant_id,
            "tenant": self.tenant_slug,
            "ok": self.ok,
            "rows": self.rows,
            "unsequenced": self.unsequenced,
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
            "first_break": None
            if broken is None
            else {
                "row_id": broken.row_id,
                "seq": broken.seq,
                "problem": broken.problem,
                "detail": broken.detail,
            },
        }


Source = Session | Connection | Engine


@contextmanager
def _connection(source: Source) -> Iterator[Connection]:
    if isinstance(source, Session):
        yield source.connection()
    elif isinstance(source, Engine):
        with source.connect() as connection:
            yield connection
    else:
        yield source


def _scoped_tenant(source: Source, tenant_id: int | None) -> int | None:
    """A TenantSession reads its own tenant's trail only (reads here bypass its ORM criteria)."""
    own = source.info.get("tenant_id") if isinstance(source, Session) else None
    if own is None:
        return tenant_id
    if tenant_id is not None and tenant_id != own:
        raise TenantError(f"this session is tenant {own}; it cannot read tenant {tenant_id}'s audit trail")
    return int(own)


def chain_tenants(source: Source) -> list[tuple[int, str]]:
    """(tenant id, slug) of every chain in the trail, deleted tenants' included (the trail outlives them);
    on PostgreSQL, only the tenants this login may read."""
    only = _scoped_tenant(source, None)
    query = (
        select(_AUDIT.c.tenant_id, func.max(_AUDIT.c.tenant_slug))
        .group_by(_AUDIT.c.tenant_id)
        .order_by(_AUDIT.c.tenant_id)
    )
    if only is not None:
        query = query.where(_AUDIT.c.tenant_id == only)
    with _connection(source) as connection:
        return [(int(tenant_id), str(slug or "")) for tenant_id, slug in connection.execute(query)]


def verify(source: Source, tenant_id: int) -> ChainReport:
    """Walk one tenant's chain by ``seq`` and report the first broken link (rows are streamed)."""
    scoped = _scoped_tenant(source, tenant_id)
    tenant_id = tenant_id if scoped is None else scoped
    rows = unsequenced = last_seq = 0
    last_hash = slug = ""
    first_break: ChainBreak | None = None
    previous_id: int | None = None
    with _connection(source) as connection:
        chained = connection.execution_options(yield_per=EXPORT_BATCH).execute(
            select(_AUDIT)
            .where(_AUDIT.c.tenant_id == tenant_id, _AUDIT.c.seq.is_not(None))
            .order_by(_AUDIT.c.seq)
        )
        for row in chained:
            rows += 1
            slug = row.tenant_slug or slug
            if first_break is None:
                first_break = _check_link(row, last_seq, last_hash, previous_id)
            last_seq, last_hash, previous_id = row.seq, row.row_hash, row.id
        for row in connection.execute(
            select(_AUDIT)
            .where(_AUDIT.c.tenant_id == tenant_id, _AUDIT.c.seq.is_(None))
            .order_by(_AUDIT.c.id)
        ):
            slug = slug or row.tenant_slug
            if row.actor == DATABASE_ACTOR and row.action in UNCHAINED_ACTIONS:
                unsequenced += 1
            elif first_break is None:
                first_break = ChainBreak(
                    row.id,
                    None,
                    "unchained",
                    f"{row.action!r} by {row.actor!r} has no seq: only the database's own "
                    f"{', '.join(sorted(UNCHAINED_ACTIONS))} rows are written outside the chain",
                )
        if not slug:  # no rows yet: the tenant's own slug
            slug = connection.scalar(select(_TENANTS.c.slug).where(_TENANTS.c.id == tenant_id)) or ""
    return ChainReport(tenant_id, slug, rows, unsequenced, last_seq, last_hash, first_break)


def _check_link(row: Row[Any], last_seq: int, last_hash: str, previous_id: int | None) -> ChainBreak | None:
    after = f"row id {previous_id}" if previous_id is not None else "the start of the chain"
    if row.seq != last_seq + 1:
        what = "missing" if row.seq > last_seq + 1 else "repeated"
        return ChainBreak(
            row.id,
            row.seq,
            "seq",
            f"expected seq {last_seq + 1} after {after}, found {row.seq} (rows {what})",
        )
    if row.prev_hash != last_hash:
        return ChainBreak(
            row.id,
            row.seq,
            "prev_hash",
            f"prev_hash {row.prev_hash or '(empty)'} is not the row_hash of {after} "
            f"({last_hash or '(empty)'}): that row, or this link, was changed",
        )
    recomputed = row_digest(dict(row._mapping), row.prev_hash)
    if recomputed != row.row_hash:
        return ChainBreak(
            row.id,
            row.seq,
            "row_hash",
            f"its content hashes to {recomputed}, not its row_hash {row.row_hash}: "
            "a column was changed after it was written",
        )
    return None


# --- export -------------------------------------------------------------------------------------------------


def export_jsonl(
    source: Source,
    output: Path | TextIO,
    *,
    since: datetime | None = None,
    tenant_id: int | None = None,
) -> int:
    """Write the trail as JSON lines (one object per row, every column, hashes included), oldest first;
    returns the number of rows. ``since``: rows that occurred at or after it. Rows are streamed, so a long
    trail never sits in memory. A TenantSession exports its own tenant; otherwise ``tenant_id`` or all."""
    only = _scoped_tenant(source, tenant_id)
    query = select(_AUDIT).order_by(_AUDIT.c.id)
    if only is not None:
        query = query.where(_AUDIT.c.tenant_id == only)
    if since is not None:
        query = query.where(_AUDIT.c.occurred_at >= since)
    if isinstance(output, Path):
        with output.open("w", encoding="utf-8", newline="\n") as stream:
            return _write_rows(source, query, stream)
    return _write_rows(source, query, output)


def _write_rows(source: Source, query: Any, stream: TextIO) -> int:
    written = 0
    with _connection(source) as connection:
        for row in connection.execution_options(yield_per=EXPORT_BATCH).execute(query):
            record = {key: _plain(value) for key, value in row._mapping.items()}
            stream.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
            written += 1
    return written


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
