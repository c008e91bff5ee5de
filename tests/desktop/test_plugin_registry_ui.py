"""The connector wizard offers a connector that an installed plugin declares, next to the built-ins."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from connectors.registry import ENTRY_POINT_GROUP, ConnectorRegistry, use_registry
from core.store.workspace import Workspace
from desktop.background.tasks import TaskRunner
from desktop.context import AppContext
from desktop.dialogs.connector_wizard import ConnectorWizard

EXAMPLE_PLUGIN = Path(__file__).resolve().parent.parent / "plugins" / "example_plugin"


@pytest.fixture
def runner(qtbot) -> Iterator[TaskRunner]:
    task_runner = TaskRunner()
    yield task_runner
    task_runner.shutdown()


def test_the_system_page_lists_a_plugin_connector(
    qtbot, workspace: Workspace, runner: TaskRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN))
    plugin = EntryPoint("example_itsm", "rd_example_plugin:ExampleConnector", ENTRY_POINT_GROUP)
    with use_registry(ConnectorRegistry(find_plugins=lambda: (plugin,))):
        wizard = ConnectorWizard(AppContext(workspace, "default", runner))
        qtbot.addWidget(wizard)
        systems = wizard.system_page.system_list
        offered = {
            systems.item(row).data(Qt.ItemDataRole.UserRole): systems.item(row).text()
            for row in range(systems.count())
        }
    assert offered["example_itsm"] == "Example ITSM\nTicketing"
    assert {"servicenow", "jira", "servicedesk_plus", "remedy"} <= set(offered)
