"""The tenant's monitoring settings: the ``"monitoring"`` section of the tenant settings (core.settings).

``correlation_window_minutes``: alerts on one host/CI or one service this close in time group into one
incident (:mod:`core.monitoring.correlation`); the issue's default is 10 minutes. Read with
``load_settings(session, MonitoringSettings)``; :func:`core.monitoring.queries.save_monitoring_settings`
writes it, audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

from core.settings import SettingsSection

MAX_WINDOW_MINUTES = 24 * 60  # a day: longer windows would glue unrelated problems of one host together


@dataclass(frozen=True, slots=True)
class MonitoringSettings(SettingsSection):
    """How monitoring alerts are correlated into incidents."""

    SECTION: ClassVar[str] = "monitoring"

    correlation_window_minutes: int = 10

    def __post_init__(self) -> None:
        if not 1 <= self.correlation_window_minutes <= MAX_WINDOW_MINUTES:
            raise ValueError(
                f"the correlation window must be between 1 and {MAX_WINDOW_MINUTES} minutes, "
                f"got {self.correlation_window_minutes}"
            )

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.correlation_window_minutes)
