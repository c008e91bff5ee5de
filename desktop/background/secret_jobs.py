"""The rotate action's worker job: test the new secret and, if it works, replace the old one (issue 17).

Rotation writes the store and the keychain, so by the app's rule for async work (:mod:`.sync_jobs`) it runs
as a worker job with its own event loop (:func:`~desktop.background.sync_jobs.run_coroutine`), like a sync,
not on the GUI loop like the wizard's network-only test: the connection test's wait and a keychain that
blocks on an unlock prompt never freeze the window, and Cancel interrupts the test.
"""

from __future__ import annotations

from sqlalchemy.orm import sessionmaker

from connectors.configs import get_config, settings_for
from connectors.rotation import RotationResult, rotate_secret
from core.store.tenancy import TenantSession
from desktop.background.sync_jobs import run_coroutine, transport_for
from desktop.background.tasks import TaskContext
from desktop.context import TransportFactory


def rotate_secret_job(
    task: TaskContext,
    sessions: sessionmaker[TenantSession],
    config_id: int,
    field: str,
    new_value: str,
    transport_factory: TransportFactory | None,
    actor: str,
) -> RotationResult:
    """:func:`connectors.rotation.rotate_secret` on this worker's own loop; the result goes to the dialog."""
    transport = None
    if transport_factory is not None:  # tests: the connector's HTTP goes to a fake system
        with sessions() as session:
            row = get_config(session, config_id)
        transport = transport_for(transport_factory, settings_for(row))
    task.report(0, None, "testing the new secret")
    return run_coroutine(
        task,
        lambda: rotate_secret(sessions, config_id, field, new_value, transport=transport, actor=actor),
    )
