"""The tenant's monitoring settings: the ``"monitoring"`` section of the tenant settings (core.settings).

``correlation_window_minutes``: alerts on one host/CI or one service this close in time group into one
incident (:mod:`core.monitoring.correlation`); the issue's default is 10 minutes. ``max_incident_hours``: an
incident that old takes no new alert (a service alerting without pause opens one incident a day). Read with
``load_settings(session, MonitoringSettings)``; :func:`core.monitoring.queries.save_monitoring_settings`
writes it, audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

from core.settings import SettingsSection

MAX_WINDOW_MINUTES = 24 * 60  # a day: longer windows would glue unrelated problems of one host together
MAX_INCIDENT_HOURS = 7 * 24


@dataclass(frozen=True, slots=True)
class MonitoringSettings(SettingsSection):
    """How monitoring alerts are correlated into incidents."""

    SECTION: ClassVar[str] = "monitoring"

    correlation_window_minutes: int = 10
    max_incident_hours: int = 24

    def __post_init__(self) -> None:
        if not 1 <= self.correlation_window_minutes <= MAX_WINDOW_MINUTES:
            raise ValueError(
                f"the correlation window must be between 1 and {MAX_WINDOW_MINUTES} minutes, "
                f"got {self.correlation_window_minutes}"
            )
        if not 1 <= self.max_incident_hours <= MAX_INCIDENT_HOURS:
            raise ValueError(
                f"an incident's longest span must be between 1 and {MAX_INCIDENT_HOURS} hours, "
                f"got {self.max_incident_hours}"
            )

    @property
    def max_span(self) -> timedelta:
        return timedelta(hours=self.max_incident_hours)

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.correlation_window_minutes)
