"""What :mod:`sounding.core.config` and the public settings dataclasses share: the stdlib
logging levels, the checks of the metric settings and the consent file's name.

Its own module so that :mod:`sounding.core.settings` (the dataclasses, loaded on first use)
and :mod:`sounding.core.consent_choice` need not import :mod:`sounding.core.config`, which
imports them lazily.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from sounding.core.exceptions import ConfigurationError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

__all__ = ["CONSENT_FILE", "LOG_LEVELS", "METRICS_FIELDS", "check", "check_metrics", "is_number"]

# The stdlib logging levels, spelled out so importing config does not import logging.
LOG_LEVELS: Final[dict[str, int]] = {
    "debug": 10,
    "info": 20,
    "warning": 30,
    "error": 40,
    "critical": 50,
}

#: The file in the data dir that keeps the user's consent choice (``consent_choice``).
CONSENT_FILE: Final = "consent.json"


def check(ok: bool, field_name: str, value: Any, allowed: str) -> None:
    """Raise :class:`ConfigurationError` naming ``field_name``, ``value`` and what is
    ``allowed`` unless ``ok``."""
    if not ok:
        raise ConfigurationError(field_name, value, allowed)


def is_number(v: Any) -> bool:
    """Whether ``v`` is a finite int or float (not a bool)."""
    # Exact comparisons: NaN, infinities and ints beyond float range (10**400) fail, and
    # nothing is converted, so nothing can overflow.
    return (
        isinstance(v, (int, float))
        and not isinstance(v, bool)
        and -sys.float_info.max <= v <= sys.float_info.max
    )


def check_metrics(m: Any) -> None:
    """Check the values of a :class:`MetricsConfig` (or :class:`MetricValues`) ``m``; raises
    :class:`ConfigurationError` naming the first field that is wrong."""

    def pos_int(name: str, minimum: int, unit: str) -> None:
        v = getattr(m, name)
        check(
            isinstance(v, int) and not isinstance(v, bool) and v >= minimum,
            f"MetricsConfig.{name}",
            v,
            f"an integer >= {minimum} ({unit})",
        )

    pos_int("aggregation_interval", 1, "seconds")
    check(
        m.aggregation_interval <= 86400,
        "MetricsConfig.aggregation_interval",
        m.aggregation_interval,
        "at most 86400 seconds (one day)",
    )
    pos_int("retention_days", 1, "days")
    pos_int("baseline_window_days", 1, "days")
    pos_int("refresh_interval", 1, "seconds")
    pos_int("max_data_points", 2, "points")
    v = m.deviation_threshold_percent
    check(
        is_number(v) and v > 0,
        "MetricsConfig.deviation_threshold_percent",
        v,
        "a finite number > 0 (percent)",
    )
    check(
        isinstance(m.enable_alerts, bool),
        "MetricsConfig.enable_alerts",
        m.enable_alerts,
        "True or False",
    )
    check(
        isinstance(m.alert_thresholds, Mapping),
        "MetricsConfig.alert_thresholds",
        m.alert_thresholds,
        "a mapping of metric name to a finite number",
    )
    for k, t in m.alert_thresholds.items():
        check(
            isinstance(k, str) and bool(k),
            "MetricsConfig.alert_thresholds key",
            k,
            "a non-empty metric name",
        )
        check(
            is_number(t),
            f"MetricsConfig.alert_thresholds[{k!r}]",
            t,
            "a finite number",
        )


#: The fields of :class:`MetricsConfig`, in the seed's order.
METRICS_FIELDS: Final = (
    "aggregation_interval",
    "retention_days",
    "baseline_window_days",
    "deviation_threshold_percent",
    "refresh_interval",
    "max_data_points",
    "enable_alerts",
    "alert_thresholds",
)
