"""Which connector types exist: the one list the wizard, the CLI, the sync engine and ``build.spec`` read.

Two sources (roadmap: Phase 2.5, Connector Framework, "plugin-based system for easy addition"):

- the built-ins, :data:`BUILTIN_CONNECTORS`, written as entry-point references (``module:Class``);
  ``build.spec`` bundles their modules as hidden imports, because a frozen build carries no package
  metadata to discover anything by;
- plugins: any installed distribution that declares a :class:`~connectors.base.Connector` subclass under
  the entry-point group :data:`ENTRY_POINT_GROUP`, found through :mod:`importlib.metadata` the way pytest
  and napari find theirs::

      [project.entry-points."runbook_desk.connectors"]
      acme_itsm = "acme_rd_connector:AcmeConnector"

  The entry point's name only labels problems; the class's ``spec.type`` is what configs store.

Nothing is imported until the registry is first read, and then once. A plugin that fails (its import
raises, it names something that is not a connector class, its type is taken) is skipped and kept as a
:class:`PluginProblem`, logged once and listed by ``runbook-desk connectors types``: a broken plugin never
stops the app, the CLI or the other connectors. A built-in that fails is a broken build, and raises.

Tests swap the registry with :func:`use_registry` (a plugin's own tests can, too), never by editing it.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points

from connectors.base import Connector, ConnectorSpec
from connectors.errors import ConfigurationError
from connectors.secrets import install_secret_redaction

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "runbook_desk.connectors"
BUILTIN_CONNECTORS: tuple[str, ...] = (
    "connectors.ticketing.servicenow:ServiceNowConnector",
    "connectors.ticketing.jira:JiraConnector",
    "connectors.ticketing.servicedesk_plus:ServiceDeskPlusConnector",
    "connectors.ticketing.remedy:RemedyConnector",
    "connectors.monitoring.datadog:DatadogConnector",
    "connectors.monitoring.zabbix:ZabbixConnector",
    "connectors.monitoring.solarwinds:SolarWindsConnector",
    "connectors.knowledge.servicenow_kb:ServiceNowKnowledgeConnector",
    "connectors.knowledge.confluence:ConfluenceConnector",
    "connectors.knowledge.servicedesk_plus_solutions:ServiceDeskPlusSolutionsConnector",
)
# What build.spec bundles: the built-ins' modules.
BUILTIN_CONNECTOR_MODULES: tuple[str, ...] = tuple(ref.partition(":")[0] for ref in BUILTIN_CONNECTORS)

PluginFinder = Callable[[], Iterable[EntryPoint]]


def declared_plugins() -> tuple[EntryPoint, ...]:
    """Every entry point of :data:`ENTRY_POINT_GROUP` in the installed distributions."""
    return tuple(entry_points(group=ENTRY_POINT_GROUP))


@dataclass(frozen=True, slots=True)
class PluginProblem:
    """A plugin that was skipped, and why: what the CLI lists and the log says once."""

    plugin: str  # the entry point, "name = module:attr"
    distribution: str  # "name version" of the package declaring it, or "" when unknown
    error: str

    def __str__(self) -> str:
        source = f" (from {self.distribution})" if self.distribution else ""
        return f"connector plugin {self.plugin!r}{source} not loaded: {self.error}"


class ConnectorRegistry:
    """The connector classes of one process, loaded once on first use (from any thread)."""

    def __init__(
        self,
        builtins: Iterable[str] = BUILTIN_CONNECTORS,
        *,
        find_plugins: PluginFinder | None = declared_plugins,
        classes: Iterable[type[Connector]] = (),
    ) -> None:
        """``builtins`` are ``module:Class`` references; ``classes`` are added as they are (tests);
        ``find_plugins`` lists the plugins' entry points (None: no plugins)."""
        self._builtins = tuple(builtins)
        self._find_plugins = find_plugins
        self._extra = tuple(classes)
        self._lock = threading.Lock()
        self._classes: dict[str, type[Connector]] | None = None
        self._problems: tuple[PluginProblem, ...] = ()

    def load(self) -> None:
        """Import every connector now (the app does, so connector loggers exist before redaction is set)."""
        self._loaded()

    def specs(self) -> list[ConnectorSpec]:
        """Every type's spec, grouped by kind then sorted by display name (the wizard's order)."""
        specs = (connector.spec for connector in self._loaded().values())
        return sorted(specs, key=lambda spec: (spec.kind, spec.display_name))

    def connector_class(self, connector_type: str) -> type[Connector]:
        classes = self._loaded()
        try:
            return classes[connector_type]
        except KeyError:
            known = ", ".join(sorted(classes))
            broken = (
                f"; {len(self._problems)} connector plugins failed to load (runbook-desk connectors types)"
                if self._problems
                else ""
            )
            raise ConfigurationError(
                connector_type, f"unknown connector type (known: {known}){broken}"
            ) from None

    @property
    def problems(self) -> tuple[PluginProblem, ...]:
        self._loaded()
        return self._problems

    def _loaded(self) -> dict[str, type[Connector]]:
        with self._lock:
            if self._classes is None:
                self._classes = self._load()
            return self._classes

    def _load(self) -> dict[str, type[Connector]]:
        classes: dict[str, type[Connector]] = {}
        for reference in self._builtins:
            module_name, _, attribute = reference.partition(":")
            connector = getattr(import_module(module_name), attribute)
            _add(classes, connector, reference)
        for connector in self._extra:
            _add(classes, connector, f"{connector.__module__}:{connector.__qualname__}")
        problems: list[PluginProblem] = []
        for entry_point in self._find_plugins() if self._find_plugins is not None else ():
            error = _load_plugin(classes, entry_point)
            if error is not None:
                problem = PluginProblem(_label(entry_point), _distribution(entry_point), error)
                log.warning("%s", problem)
                problems.append(problem)
        self._problems = tuple(problems)
        return classes


def _add(classes: dict[str, type[Connector]], connector: type[Connector], reference: str) -> None:
    """A built-in (or a test's class) that does not fit is a bug in this build: raise, do not skip."""
    error = _unfit(classes, connector)
    if error is not None:
        raise RuntimeError(f"connector {reference}: {error}")
    classes[connector.spec.type] = connector


def _load_plugin(classes: dict[str, type[Connector]], entry_point: EntryPoint) -> str | None:
    """Add the plugin's class; the reason it was skipped, or None."""
    try:
        loaded: object = entry_point.load()
    # A plugin's import runs third-party code that may raise anything; isolating it is the point (pytest's
    # PluginManager does the same). The problem is kept and logged, with its traceback in the debug log.
    except Exception as exc:
        log.debug("connector plugin %r failed to import", _label(entry_point), exc_info=exc)
        return f"{type(exc).__name__}: {exc}"
    if not (isinstance(loaded, type) and issubclass(loaded, Connector)):
        return f"{entry_point.value} is a {type(loaded).__name__}, not a Connector subclass"
    spec = getattr(loaded, "spec", None)
    if isinstance(spec, ConnectorSpec) and classes.get(spec.type) is loaded:
        return None  # one distribution seen twice on the path (a --target copy and the venv's)
    error = _unfit(classes, loaded)
    if error is None:
        classes[loaded.spec.type] = loaded
        # A plugin handles secrets too: its package's loggers get the redaction the built-ins' have.
        install_secret_redaction((loaded.__module__.partition(".")[0],))
    return error


def _unfit(classes: dict[str, type[Connector]], connector: type[Connector]) -> str | None:
    spec = getattr(connector, "spec", None)
    if not isinstance(spec, ConnectorSpec):
        return f"{connector.__qualname__} declares no ConnectorSpec as its spec"
    if inspect.isabstract(connector):
        missing = ", ".join(sorted(getattr(connector, "__abstractmethods__", ())))
        return f"{connector.__qualname__} does not implement {missing}"
    taken = classes.get(spec.type)
    if taken is not None and taken is not connector:
        return f"its type {spec.type!r} is taken by {taken.__module__}.{taken.__qualname__}"
    return None


def _label(entry_point: EntryPoint) -> str:
    return f"{entry_point.name} = {entry_point.value}"


def _distribution(entry_point: EntryPoint) -> str:
    dist = entry_point.dist
    return f"{dist.name} {dist.version}" if dist is not None else ""


# --- the process's registry ---------------------------------------------------------------------------

_active = ConnectorRegistry()


def active_registry() -> ConnectorRegistry:
    return _active


@contextmanager
def use_registry(registry: ConnectorRegistry) -> Iterator[ConnectorRegistry]:
    """Make ``registry`` the one every reader sees until the block ends (tests)."""
    global _active
    previous, _active = _active, registry
    try:
        yield registry
    finally:
        _active = previous


def load_all() -> None:
    _active.load()


def connector_types() -> list[ConnectorSpec]:
    return _active.specs()


def connector_class(connector_type: str) -> type[Connector]:
    return _active.connector_class(connector_type)


def plugin_problems() -> tuple[PluginProblem, ...]:
    return _active.problems
