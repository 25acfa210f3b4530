"""Alert rules: what to watch and when to fire, validated when they are defined.

A rule names a metric, a statistic of it over a trailing ``window`` and a condition::

    AlertRule("slow export", "recorder.export.duration", stat="p95", op=">", threshold=0.5,
              for_=300, keep_firing_for=600, recover_threshold=0.4)

fires when the p95 of the last ``window`` seconds has stayed above 0.5 for 5 minutes, and
resolves once it has been at or below 0.4 for 10 minutes. Three kinds:

``"threshold"`` (default)
    the value is the statistic itself.
``"deviation"``
    the value source returns the recent history of the statistic; while the latest
    :func:`~sounding.analysis.detect_deviations` episode is still going at the newest point,
    the value is the relative change in percent at the episode's start (1e6 from a zero
    baseline), else 0: one episode is one firing, resolved when it ends. ``threshold``
    defaults to 20 (``MetricsConfig.deviation_threshold_percent``), -20 for ``op="<"``.
``"change"``
    the value source returns the history; the value is the shift in percent of the median
    after the latest change point (:func:`~sounding.analysis.detect_change_points`) if that
    change started within the last ``recent`` points, else 0.

Rules also come from ``MetricsConfig.alert_thresholds`` (:func:`rules_from_config`) and from
a TOML file (:func:`load_rules`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sounding.core.config import MetricsConfig, load_toml
from sounding.core.exceptions import ConfigurationError, InvalidTypeError, InvalidValueError

__all__ = [
    "ALERT_KINDS",
    "ALERT_OPS",
    "ALERT_STATS",
    "NO_DATA_POLICIES",
    "AlertRule",
    "load_rules",
    "parse_duration",
    "rules_from_config",
]

ALERT_OPS: Final[tuple[str, ...]] = (">", ">=", "<", "<=")
#: Statistics a rule may watch (the store's, with ``mean`` as a synonym of ``avg``), and
#: any percentile ``p0`` ... ``p100`` such as ``p99.9``.
ALERT_STATS: Final[tuple[str, ...]] = (
    "p50", "p90", "p95", "p99", "avg", "mean", "min", "max", "count", "sum", "last", "rate",
)  # fmt: skip
_PCT_RE = re.compile(r"^p(\d{1,3}(?:\.\d+)?)$")


def _valid_stat(stat: object) -> bool:
    if not isinstance(stat, str):
        return False
    if stat in ALERT_STATS:
        return True
    m = _PCT_RE.match(stat)
    return m is not None and 0.0 <= float(m.group(1)) <= 100.0


ALERT_KINDS: Final[tuple[str, ...]] = ("threshold", "deviation", "change")
#: ``keep``: leave the state as it is; ``ok``: treat as recovered; ``alert``: as breaching.
NO_DATA_POLICIES: Final[tuple[str, ...]] = ("keep", "ok", "alert")

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*$")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object, field_name: str = "duration") -> float:
    """Seconds from a number of seconds or a string like ``"90s"``, ``"5m"``, ``"2h"``.

    >>> parse_duration("5m"), parse_duration(30)
    (300.0, 30.0)
    """
    if isinstance(value, bool):
        raise InvalidTypeError(field_name, value, "seconds (a number >= 0) or a string like '5m'")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise InvalidValueError(field_name, value, "a finite number of seconds >= 0")
        return float(value)
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
        raise InvalidValueError(field_name, value, "a duration like '30s', '5m', '2h' or '1d'")
    raise InvalidTypeError(field_name, value, "seconds (a number >= 0) or a string like '5m'")


def _compare(value: float, op: str, limit: float) -> bool:
    if op == ">":
        return value > limit
    if op == ">=":
        return value >= limit
    if op == "<":
        return value < limit
    return value <= limit


@dataclass(frozen=True)
class AlertRule:
    """One alert rule (see the module docstring). Invalid values raise at definition.

    ``for_`` is how long the condition must hold before the rule fires (pending until
    then); ``keep_firing_for`` how long the value must stay recovered before it resolves;
    ``recover_threshold`` (hysteresis) the level that counts as recovered, on the good side
    of ``threshold`` (default: ``threshold`` itself); ``no_data`` what a missing value does.
    ``window`` (seconds) is the trailing range the value source should aggregate over.

    >>> r = AlertRule("slow", "app.latency", threshold=1000, recover_threshold=950)
    >>> r.breaches(1010.0), r.recovered(990.0), r.recovered(950.0)
    (True, False, True)
    """

    name: str
    metric: str
    stat: str = "p95"
    op: str = ">"
    threshold: float | None = None
    for_: float = 0.0
    keep_firing_for: float = 0.0
    recover_threshold: float | None = None
    tags: Mapping[str, str] | None = None
    window: float = 300.0
    kind: str = "threshold"
    no_data: str = "keep"
    recent: int = 10
    description: str = ""
    _limit: float = field(init=False, repr=False, compare=False, default=0.0)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidValueError("AlertRule.name", self.name, "a non-empty string")
        if not isinstance(self.metric, str) or not _NAME_RE.match(self.metric):
            raise InvalidValueError(
                "AlertRule.metric",
                self.metric,
                "a metric name: letters, digits, '_' and '.', starting with a letter",
            )
        if not _valid_stat(self.stat):
            raise InvalidValueError(
                "AlertRule.stat",
                self.stat,
                "one of " + ", ".join(ALERT_STATS) + ", or a percentile p0-p100",
            )
        if self.op not in ALERT_OPS:
            raise InvalidValueError("AlertRule.op", self.op, "one of " + ", ".join(ALERT_OPS))
        if self.kind not in ALERT_KINDS:
            raise InvalidValueError("AlertRule.kind", self.kind, "one of " + ", ".join(ALERT_KINDS))
        if self.no_data not in NO_DATA_POLICIES:
            raise InvalidValueError(
                "AlertRule.no_data", self.no_data, "one of " + ", ".join(NO_DATA_POLICIES)
            )
        threshold = self.threshold
        if threshold is None:
            if self.kind == "threshold":
                raise InvalidValueError(
                    "AlertRule.threshold", None, "a finite number (required for kind 'threshold')"
                )
            default = MetricsConfig().deviation_threshold_percent
            threshold = -default if self.op in ("<", "<=") else default
        if not _is_number(threshold):
            raise InvalidValueError("AlertRule.threshold", threshold, "a finite number")
        object.__setattr__(self, "threshold", float(threshold))
        object.__setattr__(self, "for_", parse_duration(self.for_, "AlertRule.for_"))
        object.__setattr__(
            self,
            "keep_firing_for",
            parse_duration(self.keep_firing_for, "AlertRule.keep_firing_for"),
        )
        window = parse_duration(self.window, "AlertRule.window")
        if window <= 0:
            raise InvalidValueError("AlertRule.window", self.window, "a duration > 0")
        object.__setattr__(self, "window", window)
        if self.recover_threshold is not None:
            r = self.recover_threshold
            if not _is_number(r):
                raise InvalidValueError("AlertRule.recover_threshold", r, "a finite number or None")
            # Hysteresis only makes sense on the good side of the firing threshold.
            if self.op in (">", ">=") and r > threshold:
                raise InvalidValueError(
                    "AlertRule.recover_threshold",
                    r,
                    f"<= threshold ({threshold}) for op '{self.op}'",
                )
            if self.op in ("<", "<=") and r < threshold:
                raise InvalidValueError(
                    "AlertRule.recover_threshold",
                    r,
                    f">= threshold ({threshold}) for op '{self.op}'",
                )
            object.__setattr__(self, "recover_threshold", float(r))
        if self.tags is not None:
            if not isinstance(self.tags, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.tags.items()
            ):
                raise InvalidTypeError(
                    "AlertRule.tags", self.tags, "a mapping of str to str or None"
                )
            object.__setattr__(self, "tags", dict(sorted(self.tags.items())))
        if not isinstance(self.recent, int) or isinstance(self.recent, bool) or self.recent < 1:
            raise InvalidValueError("AlertRule.recent", self.recent, "an integer >= 1 (points)")
        if not isinstance(self.description, str):
            raise InvalidTypeError("AlertRule.description", self.description, "a string")
        object.__setattr__(
            self,
            "_limit",
            float(self.recover_threshold if self.recover_threshold is not None else threshold),
        )

    @property
    def series(self) -> str:
        """The series key of the rule's own tags: ``"k=v,k2=v2"`` sorted, ``""`` for none."""
        return ",".join(f"{k}={v}" for k, v in (self.tags or {}).items())

    def breaches(self, value: float) -> bool:
        """Whether ``value`` meets the firing condition ``value op threshold``."""
        assert self.threshold is not None  # set in __post_init__
        return _compare(value, self.op, self.threshold)

    def recovered(self, value: float) -> bool:
        """Whether ``value`` is back on the good side of ``recover_threshold`` (or of
        ``threshold`` without hysteresis)."""
        return not _compare(value, self.op, self._limit)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (the TOML keys, with ``for`` for ``for_``)."""
        return {
            "name": self.name,
            "metric": self.metric,
            "kind": self.kind,
            "stat": self.stat,
            "op": self.op,
            "threshold": self.threshold,
            "for": self.for_,
            "keep_firing_for": self.keep_firing_for,
            "recover_threshold": self.recover_threshold,
            "tags": dict(self.tags) if self.tags else None,
            "window": self.window,
            "no_data": self.no_data,
            "recent": self.recent,
            "description": self.description,
        }


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def rules_from_config(metrics: MetricsConfig | None = None) -> list[AlertRule]:
    """One rule per entry of ``MetricsConfig.alert_thresholds`` (default: the current
    settings'): ``{"app.latency": 0.5}`` fires when the p95 exceeds 0.5;
    ``{"app.latency:p99": 0.8}`` names the statistic after a colon.

    >>> [r.name for r in rules_from_config(MetricsConfig(alert_thresholds={"a.b:p99": 2.0}))]
    ['a.b:p99 > 2.0']
    """
    if metrics is None:
        from sounding.core.config import get_settings

        metrics = get_settings().metrics
    if not isinstance(metrics, MetricsConfig):
        raise InvalidTypeError("metrics", metrics, "a MetricsConfig or None")
    rules: list[AlertRule] = []
    for key, threshold in sorted(metrics.alert_thresholds.items()):
        metric, _, stat = key.partition(":")
        stat = stat or "p95"
        try:
            rules.append(
                AlertRule(
                    name=f"{key} > {float(threshold)}",
                    metric=metric,
                    stat=stat,
                    op=">",
                    threshold=threshold,
                )
            )
        except (InvalidValueError, InvalidTypeError) as exc:
            raise ConfigurationError(
                f"MetricsConfig.alert_thresholds[{key!r}]", threshold, exc.allowed
            ) from None
    return rules


_TOML_KEYS = {
    "name",
    "metric",
    "stat",
    "op",
    "threshold",
    "for",
    "for_",
    "keep_firing_for",
    "recover_threshold",
    "tags",
    "window",
    "kind",
    "no_data",
    "recent",
    "description",
}


def load_rules(path: str | os.PathLike[str]) -> list[AlertRule]:
    """Rules from the ``[[alerts]]`` tables of a TOML file (top level, under ``[sounding]``
    or ``[tool.sounding]``). Keys are the :class:`AlertRule` fields, with ``for`` for
    ``for_``; durations may be seconds or strings like ``"5m"``::

        [[alerts]]
        name = "slow export"
        metric = "recorder.export.duration"
        stat = "p95"
        op = ">"
        threshold = 0.5
        for = "5m"
        keep_firing_for = "10m"
        recover_threshold = 0.4

    Raises :class:`ConfigurationError` naming the file, the rule and the key.
    """
    data = load_toml(path)
    tables = data.get("alerts", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigurationError(f"{path}: alerts", tables, "an array of tables ([[alerts]])")
    rules: list[AlertRule] = []
    seen: set[str] = set()
    for i, table in enumerate(tables):
        where = f"{path}: alerts[{i}]"
        unknown = sorted(set(table) - _TOML_KEYS)
        if unknown:
            raise ConfigurationError(
                f"{where}.{unknown[0]}",
                table[unknown[0]],
                "one of " + ", ".join(sorted(_TOML_KEYS)),
            )
        kwargs = dict(table)
        if "for" in kwargs:
            kwargs["for_"] = kwargs.pop("for")
        for required in ("name", "metric"):
            if required not in kwargs:
                raise ConfigurationError(f"{where}.{required}", None, "a value (required)")
        try:
            rule = AlertRule(**kwargs)
        except (InvalidValueError, InvalidTypeError) as exc:
            raise ConfigurationError(f"{where} {exc.field}", exc.value, exc.allowed) from None
        if rule.name in seen:
            raise ConfigurationError(f"{where}.name", rule.name, "a name not used by another rule")
        seen.add(rule.name)
        rules.append(rule)
    return rules
