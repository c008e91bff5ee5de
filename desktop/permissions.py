"""What this analyst may do in the window's tenant, and the locks that show it (team mode, issue 17).

The database decides: PostgreSQL's policies and triggers refuse a viewer's write whatever the UI does
(:mod:`core.store.team_schema`). The window reflects the role so nobody clicks into a refusal: it reads the
role once when it opens (a tenant switch opens a new window, so it is read again), and actions above the role
are disabled with a tooltip naming the role they need. On SQLite the one analyst is the admin and nothing is
locked.

Why a lock instead of an ``if`` in each page: every page already enables its actions from its own state (a
row selected, a job idle), and would enable a locked one again on the next selection. An action in a
disabled :class:`QActionGroup` stays disabled whatever ``setEnabled(True)`` it is given later (and its
shortcut and ``trigger()`` do nothing), so a page's own logic keeps working untouched. A plain widget (a push
button) has no such group; :class:`RoleLock` holds it disabled with an event filter, and answers its tooltip
with the role it needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QAction, QActionGroup, QHelpEvent
from PySide6.QtWidgets import QToolTip, QWidget
from sqlalchemy.orm import sessionmaker

from core.store.models import TeamRole
from core.store.team import current_login, current_role, is_team_session
from core.store.tenancy import TenantSession

_RANK = {TeamRole.VIEWER: 1, TeamRole.ANALYST: 2, TeamRole.ADMIN: 3}


@dataclass(frozen=True, slots=True)
class Permissions:
    """This login's role in one tenant: ``role`` None is a login that is no member (it sees nothing)."""

    role: TeamRole | None
    login: str = ""
    team: bool = False  # a team's PostgreSQL database; False: the workspace's own SQLite file

    def allows(self, least: TeamRole) -> bool:
        return self.role is not None and _RANK[self.role] >= _RANK[least]

    def needs(self, least: TeamRole) -> str:
        """The tooltip of a locked action: the role it needs, and the one held."""
        held = f"you are {self.role.value}" if self.role is not None else "you are no member"
        return f"Needs the {least.value} role ({held} in this tenant)"


# The single-user workspace: one analyst, who may do everything.
LOCAL_ADMIN = Permissions(TeamRole.ADMIN)


def read_permissions(sessions: sessionmaker[TenantSession]) -> Permissions:
    """The role of this login in the sessions' tenant (no query on SQLite; two small ones on PostgreSQL)."""
    with sessions() as session:
        if not is_team_session(session):
            return LOCAL_ADMIN
        return Permissions(current_role(session), current_login(session), team=True)


class RoleLock(QObject):
    """Keeps actions and widgets disabled when ``permissions`` fall short of ``least``; nothing otherwise.

    ``lock`` may be called again with more actions or widgets; an action can be in one group only, so one
    that already belongs to a group is refused (none of the window's do).
    """

    def __init__(self, permissions: Permissions, least: TeamRole, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.permissions = permissions
        self.least = least
        self.active = not permissions.allows(least)
        self.reason = permissions.needs(least)
        self._group = QActionGroup(self)
        self._group.setExclusionPolicy(QActionGroup.ExclusionPolicy.None_)
        self._group.setEnabled(False)
        self._widgets: list[QWidget] = []

    def lock(self, *items: QAction | QWidget) -> None:
        if not self.active:
            return
        for item in items:
            if isinstance(item, QAction):
                if item.actionGroup() is not None and item.actionGroup() is not self._group:
                    raise ValueError(f"action {item.text()!r} is in a group already; it cannot be locked")
                self._group.addAction(item)
                item.setToolTip(self.reason)
                item.setStatusTip(self.reason)
            else:
                item.setEnabled(False)
                item.setToolTip(self.reason)
                item.installEventFilter(self)
                self._widgets.append(item)

    def is_locked(self, item: QAction | QWidget) -> bool:
        if isinstance(item, QAction):
            return item.actionGroup() is self._group
        return item in self._widgets

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if isinstance(watched, QWidget) and watched in self._widgets:
            if event.type() == QEvent.Type.EnabledChange and watched.isEnabled():
                watched.setEnabled(False)  # the page enabled it from its own state: the role still says no
            elif event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
                # The page may have replaced the tooltip since (a button whose text follows the row).
                QToolTip.showText(event.globalPos(), self.reason, watched)
                return True
        return super().eventFilter(watched, event)
