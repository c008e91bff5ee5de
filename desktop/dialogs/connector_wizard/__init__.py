"""The connector setup wizard: from nothing to a tested, previewed, scheduled connector without a terminal.

Pages (ids in order), one module each: choose the system (:mod:`.system_page`, the registry), where
(instance URL, deployment or data centre, optional CA bundle) and how (auth mode and credentials) in
:mod:`.form_pages`, test (:mod:`.check_page`, the connector's own ``check``), what (:mod:`.scope_page`: scope
in the system's own terms and a live preview of the first 10 normalised records), when (:mod:`.when_page`:
poll interval, first-sync start, name). :mod:`.wizard` puts them together and saves. Every form is generated
from the chosen connector's declared schema (:mod:`desktop.widgets.config_form`): a ``ConfigField``'s
``page`` says where it goes ("where", "auth", "scope", and "mapping" for optional field-mapping overrides,
shown only when a connector declares any).

The test and the preview only talk to the server, so they are awaited on the GUI loop (qasync) as
cancellable tasks (:mod:`.probes`); saving writes the store, so Finish runs on a worker. Tests inject fake
systems through the context's ``transport_factory``.
"""

from desktop.dialogs.connector_wizard.scope_page import PREVIEW_COLUMNS
from desktop.dialogs.connector_wizard.wizard import (
    AUTH_PAGE,
    SCOPE_PAGE,
    SYSTEM_PAGE,
    TEST_PAGE,
    WHEN_PAGE,
    WHERE_PAGE,
    ConnectorWizard,
)

__all__ = [
    "AUTH_PAGE",
    "PREVIEW_COLUMNS",
    "SCOPE_PAGE",
    "SYSTEM_PAGE",
    "TEST_PAGE",
    "WHEN_PAGE",
    "WHERE_PAGE",
    "ConnectorWizard",
]
