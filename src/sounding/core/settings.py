"""The public configuration records: :class:`MetricsConfig` (the seed's fields and defaults)
and :class:`Settings`, frozen dataclasses.

:mod:`sounding.core.config` builds and checks the settings and re-exports these classes on
first access: what sounding reads itself is the equivalent :class:`~sounding.core.config.
Resolved` object, so a process that only counts never imports :mod:`dataclasses` (it pulls
in ``inspect``, ``ast`` and ``dis``) nor :mod:`pathlib`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sounding.core._config_base import LOG_LEVELS, check_metrics
from sounding.core.exceptions import ConfigurationError
from sounding.core.types import TelemetryLevel

__all__ = ["MetricsConfig", "Settings"]


@dataclass(frozen=True)
class MetricsConfig:
    """Metric aggregation, baseline, dashboard and alert settings (seed Day 4).

    >>> MetricsConfig(aggregation_interval=10).aggregation_interval
    10
    >>> MetricsConfig(retention_days=0)
    Traceback (most recent call last):
    ...
    sounding.core.exceptions.ConfigurationError: MetricsConfig.retention_days=0 is not allowed: \
an integer >= 1 (days)
    """

    # Aggregation settings
    aggregation_interval: int = 60  # seconds
    retention_days: int = 30

    # Baseline settings
    baseline_window_days: int = 7
    deviation_threshold_percent: float = 20.0

    # Dashboard settings
    refresh_interval: int = 5  # seconds
    max_data_points: int = 1000

    # Alerting settings
    enable_alerts: bool = False
    alert_thresholds: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_metrics(self)
        # Frozen, but hold a private copy so later changes to the caller's dict do not leak in.
        object.__setattr__(self, "alert_thresholds", dict(self.alert_thresholds))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "mapping") -> MetricsConfig:
        """Build from a mapping (TOML table); unknown keys raise naming the allowed ones."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigurationError(
                f"{source}: metrics.{unknown[0]}",
                data[unknown[0]],
                "one of the keys " + ", ".join(sorted(names)),
            )
        return cls(**dict(data))


@dataclass(frozen=True)
class Settings:
    """The effective configuration. Build it with :func:`configure`, read it with
    :func:`get_settings`."""

    app_name: str = "python-app"
    app_version: str = "unknown"
    data_dir: Path = Path()
    #: the level the application asked for, before the user's environment
    requested_telemetry_level: TelemetryLevel = TelemetryLevel.OFF
    #: the effective remote telemetry level
    telemetry_level: TelemetryLevel = TelemetryLevel.OFF
    #: why the effective level is what it is (shown by ``sounding status``)
    telemetry_reason: str = "default: nothing leaves the machine unless the app opts in"
    #: whether a level was given (argument, TOML, configure), rather than the default
    telemetry_level_set: bool = False
    #: print what would be sent instead of sending it (``SOUNDING_TELEMETRY_ECHO=1``, or the
    #: user's choice stored by ``sounding telemetry ... --echo``)
    telemetry_echo: bool = False
    local_recording: bool = True
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    #: tags added to every series; by default the app version and the platform
    default_tags: Mapping[str, str] = field(default_factory=dict)
    cardinality_limit: int = 2000
    log_level: str = "info"
    log_file_max_bytes: int = 5 * 1024 * 1024
    log_file_backups: int = 3
    event_buffer_size: int = 10_000
    shutdown_timeout: float = 2.0
    #: also hand sounding's events to the stdlib logger ``sounding.events``
    forward_to_logging: bool = False
    config_file: Path | None = None
    #: print sounding's own health messages on stderr (``SOUNDING_DEBUG=1``)
    debug: bool = False
    #: whether the application configured sounding (``configure()``, or a setting naming
    #: where); until then nothing is written (library mode)
    configured: bool = False
    #: push exporters (``sounding.exporters``) or their TOML tables (``type = "remote-write"``)
    exporters: tuple[Any, ...] = ()

    @property
    def store_path(self) -> Path:
        """The SQLite store: ``telemetry.db`` in the data directory."""
        return self.data_dir / "telemetry.db"

    @property
    def log_path(self) -> Path:
        """The JSON-lines event log in the data directory."""
        return self.data_dir / "events.jsonl"

    @property
    def log_level_no(self) -> int:
        """The minimum level as a stdlib logging number."""
        return LOG_LEVELS[self.log_level]
