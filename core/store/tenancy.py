"""Tenant isolation enforced by the session, not by each query's author.

A :class:`TenantSession` is bound to one tenant. Every ORM SELECT, UPDATE and DELETE it runs gets
``tenant_id = <its tenant>`` added for every tenant-scoped class (SQLAlchemy's documented
``with_loader_criteria`` recipe), and a flush refuses to write a row that belongs to another tenant.
So tenant A's session cannot read or change tenant B's rows, whatever the caller writes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction, with_loader_criteria

from core.errors import TenantError
from core.store import audit_chain  # noqa: F401  (registers the audit hash chain on every ORM flush)
from core.store.models import Tenant, TenantScoped


class TenantSession(Session):
    def __init__(self, *args: Any, tenant_id: int, tenant_slug: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.info["tenant_id"] = tenant_id
        if tenant_slug is not None:
            self.info["tenant_slug"] = tenant_slug

    @property
    def tenant_id(self) -> int:
        return int(self.info["tenant_id"])

    @property
    def tenant_slug(self) -> str:
        """The tenant's slug (audit rows keep it: they outlive the tenant); looked up once when not given."""
        slug = self.info.get("tenant_slug")
        if slug is None:
            slug = self.scalar(select(Tenant.slug).where(Tenant.id == self.tenant_id)) or ""
            self.info["tenant_slug"] = slug
        return str(slug)


@event.listens_for(TenantSession, "do_orm_execute")
def _scope_statement(state: ORMExecuteState) -> None:
    if state.is_column_load or state.is_relationship_load:
        return  # already scoped by the parent row's load
    tenant_id = state.session.info["tenant_id"]
    state.statement = state.statement.options(
        with_loader_criteria(TenantScoped, lambda cls: cls.tenant_id == tenant_id, include_aliases=True)
    )


@event.listens_for(TenantSession, "before_flush")
def _guard_writes(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    tenant_id = session.info["tenant_id"]
    for obj in (*session.new, *session.dirty, *session.deleted):
        if not isinstance(obj, TenantScoped):
            continue
        if obj.tenant_id is None and obj in session.new:
            obj.tenant_id = tenant_id
        elif obj.tenant_id != tenant_id:
            raise TenantError(
                f"{type(obj).__name__} belongs to tenant {obj.tenant_id}; this session is tenant {tenant_id}"
            )
