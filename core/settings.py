"""A tenant's settings: typed sections in one JSON object, read and written one way.

Storage rule. ``tenants.settings`` is one JSON object with one section per concern, named by the section
class's ``SECTION``::

    {"thresholds":   {"existing": 0.7, "partial": 0.5},
     "gap_analysis": {"severity_weights": {"high": 4.0, ...}, "min_cluster_size": 5, ...},
     "alerts":       {"sync_failures": 3, "unlinked_count": 50, ...}}

Every section is a frozen dataclass that validates itself on construction; a field missing from the stored
section takes its default, so a section added later reads fine from an older workspace. Keys this version
does not know are kept on save, at the top level and inside a section: a newer app's settings survive an
older app's save. :func:`load_settings` and :func:`save_settings` are the only readers and writers.

Older workspaces stored the thresholds as top-level ``threshold_existing`` / ``threshold_partial`` and the
alert thresholds as top-level ``alert_<field>`` keys. While a section is absent those keys are read
(``LEGACY_KEYS``); the first save writes the section and drops them. No migration is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self, TypeVar

from core.store.models import AnalysisDecision, Tenant
from core.store.repository import record_audit
from core.store.tenancy import TenantSession

__all__ = [
    "DEFAULT_SEVERITY_WEIGHTS",
    "MIN_CONFIDENCE_SAMPLES",
    "AlertSettings",
    "GapSettings",
    "OutcomeSettings",
    "SettingsSection",
    "Thresholds",
    "load_settings",
    "save_settings",
]


@dataclass(frozen=True, slots=True)
class SettingsSection:
    """Base of the sections: how one is read from and written to its JSON object.

    Subclasses are frozen dataclasses whose fields all have defaults; a field's default decides how a stored
    value is read (``int``, ``float``). A section with other kinds of values overrides :meth:`from_json`.
    """

    SECTION: ClassVar[str]
    # Top-level key an older workspace stored -> field name; read only while the section is absent.
    LEGACY_KEYS: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> Self:
        return cls(**cls._read_numbers(values))

    @classmethod
    def _read_numbers(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        defaults = cls()
        chosen: dict[str, Any] = {}
        for spec in fields(cls):
            value = values.get(spec.name)
            if value is not None:
                chosen[spec.name] = _read_number(cls.SECTION, spec.name, value, getattr(defaults, spec.name))
        return chosen

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for spec in fields(self):
            value = getattr(self, spec.name)
            out[spec.name] = dict(value) if isinstance(value, Mapping) else value
        return out


def _read_number(section: str, name: str, value: Any, default: Any) -> Any:
    kind = int if isinstance(default, int) else float
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"tenant setting {section}.{name}: {value!r} is not a number") from exc


# --- The sections ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Thresholds(SettingsSection):
    """The decision thresholds of ticket analysis (:mod:`core.matching.analysis`).

    Defaults from the roadmap's "Auto-Analysis Workflow" (link at 70 % confidence or more, ask a person
    between 50 and 70 %).
    """

    SECTION: ClassVar[str] = "thresholds"
    LEGACY_KEYS: ClassVar[Mapping[str, str]] = {
        "threshold_existing": "existing",
        "threshold_partial": "partial",
    }

    existing: float = 0.70
    partial: float = 0.50

    def __post_init__(self) -> None:
        if not 0.0 <= self.partial <= self.existing <= 1.0:
            raise ValueError(
                f"thresholds must satisfy 0 <= partial ({self.partial}) <= existing ({self.existing}) <= 1"
            )

    def decide(self, confidence: float) -> AnalysisDecision:
        if confidence >= self.existing:
            return AnalysisDecision.LINK_RUNBOOK
        if confidence >= self.partial:
            return AnalysisDecision.FLAG_REVIEW
        return AnalysisDecision.GENERATE_RUNBOOK


DEFAULT_SEVERITY_WEIGHTS: Mapping[str, float] = {
    "critical": 8.0,
    "high": 4.0,
    "medium": 2.0,
    "low": 1.0,
    "planning": 0.5,
}


@dataclass(frozen=True, slots=True)
class GapSettings(SettingsSection):
    """How gap analysis clusters and ranks (:mod:`core.analytics.gaps`)."""

    SECTION: ClassVar[str] = "gap_analysis"

    severity_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SEVERITY_WEIGHTS))
    unknown_severity_weight: float = 1.0
    default_resolve_hours: float = 8.0
    distance_cut: float = 0.55  # join groups while their mean pairwise cosine is >= 0.45
    min_cluster_size: int = 5
    dismissal_similarity: float = 0.85
    dismissal_overlap: float = 0.5
    seed: int = 20261127

    def __post_init__(self) -> None:
        if not 0.0 < self.distance_cut < 2.0:
            raise ValueError(f"distance_cut must be in (0, 2), got {self.distance_cut}")
        if self.min_cluster_size < 2:
            raise ValueError(f"min_cluster_size must be at least 2, got {self.min_cluster_size}")
        if any(w < 0 for w in self.severity_weights.values()) or self.unknown_severity_weight < 0:
            raise ValueError("severity weights must not be negative")
        if self.default_resolve_hours <= 0:
            raise ValueError("default_resolve_hours must be positive")

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> Self:
        # Stored weights add to the defaults (a tenant that weights only "high" keeps the others), keyed in
        # lower case as ``weight`` looks them up.
        stored_weights = values.get("severity_weights") or {}
        if not isinstance(stored_weights, Mapping):
            raise ValueError(
                f"tenant setting {cls.SECTION}.severity_weights: {stored_weights!r} is not a map"
            )
        weights = {
            **DEFAULT_SEVERITY_WEIGHTS,
            **{
                str(severity).lower(): _read_number(cls.SECTION, f"severity_weights.{severity}", weight, 1.0)
                for severity, weight in stored_weights.items()
            },
        }
        numbers = cls._read_numbers({k: v for k, v in values.items() if k != "severity_weights"})
        return cls(**numbers, severity_weights=weights)

    def weight(self, severity: str | None) -> float:
        if severity is None:
            return self.unknown_severity_weight
        return float(self.severity_weights.get(severity.lower(), self.unknown_severity_weight))


MIN_CONFIDENCE_SAMPLES = 10


@dataclass(frozen=True, slots=True)
class AlertSettings(SettingsSection):
    """When monitoring alerts fire (:mod:`core.analytics.health_alerts`)."""

    SECTION: ClassVar[str] = "alerts"
    LEGACY_KEYS: ClassVar[Mapping[str, str]] = {
        f"alert_{name}": name
        for name in (
            "sync_failures",
            "unlinked_count",
            "unlinked_window_hours",
            "confidence_samples",
            "rate_limit_ratio",
        )
    }

    sync_failures: int = 3
    unlinked_count: int = 50
    unlinked_window_hours: float = 24.0
    confidence_samples: int = 50
    rate_limit_ratio: float = 0.10

    def __post_init__(self) -> None:
        if self.sync_failures < 1:
            raise ValueError("alert after at least 1 failed sync")
        if self.unlinked_count < 0:
            raise ValueError("the unlinked ticket count cannot be negative")
        if self.unlinked_window_hours <= 0:
            raise ValueError("the unlinked ticket window must be longer than 0 hours")
        if self.confidence_samples < MIN_CONFIDENCE_SAMPLES:
            raise ValueError(f"average at least {MIN_CONFIDENCE_SAMPLES} analyses")
        if not 0.0 < self.rate_limit_ratio < 1.0:
            raise ValueError("the rate-limit share must be between 0 and 100 % (exclusive)")


@dataclass(frozen=True, slots=True)
class OutcomeSettings(SettingsSection):
    """How runbook outcomes are inferred from the source (:mod:`core.workflow.outcome_inference`) and when a
    runbook is flagged for revision (:mod:`core.analytics.outcome_stats`).

    ``recurrence_days``: a similar ticket on the same configuration item opened this soon after the first one
    was resolved means the first fix did not hold (issue 12's default: 7 days). ``recurrence_title_overlap``:
    the share of the shorter title's terms the two titles must share to count as "similar".
    ``revision_success_rate`` / ``revision_min_outcomes``: a runbook whose success rate (resolved 1, partly
    0.5, failed 0) is below the rate over at least that many outcomes needs revising; fewer outcomes say
    too little to flag anything.
    """

    SECTION: ClassVar[str] = "outcomes"

    recurrence_days: float = 7.0
    recurrence_title_overlap: float = 0.5
    revision_success_rate: float = 0.6
    revision_min_outcomes: int = 5

    def __post_init__(self) -> None:
        if self.recurrence_days <= 0:
            raise ValueError("the recurrence window must be longer than 0 days")
        if not 0.0 < self.recurrence_title_overlap <= 1.0:
            raise ValueError("the recurrence title overlap must be above 0 and at most 100 %")
        if not 0.0 <= self.revision_success_rate <= 1.0:
            raise ValueError("the revision success rate must be between 0 and 100 %")
        if self.revision_min_outcomes < 1:
            raise ValueError("flag a runbook after at least 1 outcome")


# --- Load and save -----------------------------------------------------------------------------------------

S = TypeVar("S", bound=SettingsSection)


def _section_values(stored: Mapping[str, Any], kind: type[SettingsSection]) -> Mapping[str, Any]:
    section = stored.get(kind.SECTION)
    if isinstance(section, Mapping):
        return section
    return {name: stored[key] for key, name in kind.LEGACY_KEYS.items() if key in stored}


def load_settings(session: TenantSession, kind: type[S]) -> S:
    """The session tenant's ``kind`` section; defaults for what it never stored."""
    tenant = session.get(Tenant, session.tenant_id)
    return kind.from_json(_section_values(tenant.settings if tenant else {}, kind))


def save_settings(session: TenantSession, value: SettingsSection, *, actor: str | None = None) -> None:
    """Store ``value`` as the session tenant's section of its kind, in the caller's transaction.

    With ``actor`` the change is audited (``settings.<section>``, before and after).
    """
    tenant = session.get(Tenant, session.tenant_id)
    if tenant is None:
        raise LookupError(f"tenant {session.tenant_id} is gone")
    kind = type(value)
    stored = dict(tenant.settings or {})
    before = kind.from_json(_section_values(stored, kind))
    section = stored.get(kind.SECTION)
    unknown = dict(section) if isinstance(section, Mapping) else {}
    for legacy_key in kind.LEGACY_KEYS:
        stored.pop(legacy_key, None)
    stored[kind.SECTION] = {**unknown, **value.to_json()}
    tenant.settings = stored
    if actor is not None:
        record_audit(
            session,
            actor=actor,
            action=f"settings.{kind.SECTION}",
            entity_type="tenant",
            entity_id=session.tenant_id,
            before=before.to_json(),
            after=value.to_json(),
        )
