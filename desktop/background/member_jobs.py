"""What the Members page runs on worker threads: plain functions, member rows out.

The rules (who may change membership, the last admin who may not be removed or demoted, the audit row of
each change) are :mod:`core.store.team`'s and the database's; these functions open a session on the worker,
make the one change, commit, and return the list as it now is, so the page shows what the store holds.
"""

from __future__ import annotations

from sqlalchemy.orm import sessionmaker

from core.store.models import TeamRole
from core.store.team import MemberRow, add_member, change_role, list_members, remove_member
from core.store.tenancy import TenantSession


def load_members(sessions: sessionmaker[TenantSession]) -> tuple[MemberRow, ...]:
    with sessions() as session:
        return tuple(list_members(session))


def add_member_job(
    sessions: sessionmaker[TenantSession], login: str, role: TeamRole, actor: str
) -> tuple[MemberRow, ...]:
    with sessions() as session:
        add_member(session, login, role, actor)
        session.commit()
    return load_members(sessions)


def change_role_job(
    sessions: sessionmaker[TenantSession], login: str, role: TeamRole, actor: str
) -> tuple[MemberRow, ...]:
    with sessions() as session:
        change_role(session, login, role, actor)
        session.commit()
    return load_members(sessions)


def remove_member_job(sessions: sessionmaker[TenantSession], login: str, actor: str) -> tuple[MemberRow, ...]:
    with sessions() as session:
        remove_member(session, login, actor)
        session.commit()
    return load_members(sessions)
