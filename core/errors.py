"""Errors the core raises, one small tree so callers (CLI, desktop) can catch by meaning.

    RunbookDeskError
    ├── WorkspaceError
    │   └── WorkspaceLockedError     another running instance holds the workspace
    ├── TenantError                  unknown tenant, or a row of another tenant touched
    ├── ImportFailedError            the whole import was refused before writing (bad file, missing column)
    ├── SearchTooLongError           a search text longer than the store accepts
    └── OperationCancelledError      long work stopped because its caller asked (core.progress); not a failure

A rejected *row* is not an exception: the importer reports it in its summary and goes on.
"""

from __future__ import annotations


class RunbookDeskError(Exception):
    """Base of every error the core raises on purpose."""


class WorkspaceError(RunbookDeskError):
    pass


class WorkspaceLockedError(WorkspaceError):
    pass


class TenantError(RunbookDeskError):
    pass


class ImportFailedError(RunbookDeskError):
    pass


class SearchTooLongError(RunbookDeskError):
    pass


class OperationCancelledError(RunbookDeskError):
    """The caller asked long work to stop (see :mod:`core.progress`); what was committed before stays."""


class PermissionDeniedError(RunbookDeskError):
    """Team mode: this login's role in the tenant does not allow the action (the database refuses it too)."""


class ConcurrentChangeError(RunbookDeskError):
    """Team mode: another analyst changed the row since it was read; nothing was overwritten. The message
    says who and when ("changed by alice at 2026-12-06 10:04 UTC")."""


class MembershipError(RunbookDeskError):
    """Team mode: a membership change that cannot be made as asked (an invalid or unknown login, a member
    that exists already, the tenant's last admin removed or demoted)."""
