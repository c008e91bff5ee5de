"""The connector registry: built-ins, plugins declared as entry points, and plugins that are broken.

These tests load the plugin packages under ``tests/plugins`` in this process (their folder on ``sys.path``,
their entry points built by hand); ``test_cli_connectors.py`` installs them with pip and runs the CLI.
"""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from connectors.base import Connector, ConnectorKind
from connectors.errors import ConfigurationError
from connectors.registry import (
    BUILTIN_CONNECTOR_MODULES,
    BUILTIN_CONNECTORS,
    ENTRY_POINT_GROUP,
    ConnectorRegistry,
    active_registry,
    connector_class,
    connector_types,
    use_registry,
)
from tests.connectors.tiny_connector import TinyConnector

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"
SERVICENOW = "connectors.ticketing.servicenow:ServiceNowConnector"
EXAMPLE = EntryPoint("example_itsm", "rd_example_plugin:ExampleConnector", ENTRY_POINT_GROUP)
BROKEN = (
    EntryPoint("raises_on_import", "rd_broken_plugin.raises:BrokenConnector", ENTRY_POINT_GROUP),
    EntryPoint("not_a_connector", "rd_broken_plugin:NOT_A_CONNECTOR", ENTRY_POINT_GROUP),
    EntryPoint("servicenow_again", "rd_broken_plugin:Impostor", ENTRY_POINT_GROUP),
)


@pytest.fixture
def plugin_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin packages importable as if installed (their entry points are passed in by each test)."""
    monkeypatch.syspath_prepend(str(PLUGINS / "example_plugin"))
    monkeypatch.syspath_prepend(str(PLUGINS / "broken_plugin"))


def test_the_builtins_are_the_ten_systems_of_three_kinds_and_what_build_spec_bundles() -> None:
    registry = ConnectorRegistry(find_plugins=None)
    kinds = {spec.type: spec.kind for spec in registry.specs()}
    assert kinds == {
        "jira": ConnectorKind.TICKETING,
        "remedy": ConnectorKind.TICKETING,
        "servicedesk_plus": ConnectorKind.TICKETING,
        "servicenow": ConnectorKind.TICKETING,
        "datadog": ConnectorKind.MONITORING,
        "solarwinds": ConnectorKind.MONITORING,
        "zabbix": ConnectorKind.MONITORING,
        "confluence": ConnectorKind.KNOWLEDGE,
        "servicedesk_plus_solutions": ConnectorKind.KNOWLEDGE,
        "servicenow_kb": ConnectorKind.KNOWLEDGE,
    }
    assert registry.problems == ()
    assert tuple(ref.split(":")[0] for ref in BUILTIN_CONNECTORS) == BUILTIN_CONNECTOR_MODULES
    for module in BUILTIN_CONNECTOR_MODULES:  # each kind in its own package, as build.spec bundles them
        kind = kinds[registry_type_of(registry, module)]
        assert module.startswith(f"connectors.{kind.value}."), module


def registry_type_of(registry: ConnectorRegistry, module: str) -> str:
    return next(
        spec.type for spec in registry.specs() if registry.connector_class(spec.type).__module__ == module
    )


@pytest.mark.usefixtures("plugin_sources")
def test_a_plugin_declared_as_an_entry_point_is_a_connector_type_like_the_builtins() -> None:
    registry = ConnectorRegistry((SERVICENOW,), find_plugins=lambda: (EXAMPLE,))
    assert [spec.type for spec in registry.specs()] == ["example_itsm", "servicenow"]
    example = registry.connector_class("example_itsm")
    assert example.spec.display_name == "Example ITSM" and example.__module__ == "rd_example_plugin"
    assert registry.problems == ()


@pytest.mark.usefixtures("plugin_sources")
def test_the_same_plugin_seen_twice_on_the_path_is_not_a_conflict() -> None:
    registry = ConnectorRegistry((), find_plugins=lambda: (EXAMPLE, EXAMPLE))
    assert [spec.type for spec in registry.specs()] == ["example_itsm"]
    assert registry.problems == ()


@pytest.mark.usefixtures("plugin_sources")
def test_broken_plugins_are_reported_once_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="connectors.registry")
    registry = ConnectorRegistry((SERVICENOW,), find_plugins=lambda: (*BROKEN, EXAMPLE))

    assert [spec.type for spec in registry.specs()] == ["example_itsm", "servicenow"]
    assert registry.connector_class("servicenow").__module__ == "connectors.ticketing.servicenow"
    errors = {problem.plugin.split(" =")[0]: problem.error for problem in registry.problems}
    assert errors == {
        "raises_on_import": "ModuleNotFoundError: No module named 'rd_dependency_that_is_not_installed'",
        "not_a_connector": "rd_broken_plugin:NOT_A_CONNECTOR is a str, not a Connector subclass",
        "servicenow_again": (
            "its type 'servicenow' is taken by connectors.ticketing.servicenow.ServiceNowConnector"
        ),
    }
    registry.specs()
    registry.connector_class("example_itsm")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [str(problem) for problem in registry.problems]  # once each, not once per read
    assert all("not loaded" in message for message in warnings)


@pytest.mark.usefixtures("plugin_sources")
def test_an_unknown_type_says_that_plugins_failed(caplog: pytest.LogCaptureFixture) -> None:
    registry = ConnectorRegistry((), find_plugins=lambda: BROKEN[:1])
    with pytest.raises(ConfigurationError, match="1 connector plugins failed to load"):
        registry.connector_class("raises_on_import")
    assert len(caplog.records) == 1


def test_a_builtin_that_is_not_a_whole_connector_breaks_the_build_loudly() -> None:
    class Unfinished(Connector):  # the contract's abstract methods left out
        spec = TinyConnector.spec

    with pytest.raises(RuntimeError, match="Unfinished does not implement probe"):
        ConnectorRegistry((), find_plugins=None, classes=(Unfinished,)).specs()


def test_use_registry_swaps_what_every_reader_sees_and_restores_it() -> None:
    before = active_registry()
    with use_registry(ConnectorRegistry((), find_plugins=None, classes=(TinyConnector,))):
        assert [spec.type for spec in connector_types()] == ["tiny"]
        assert connector_class("tiny") is TinyConnector
    assert active_registry() is before
