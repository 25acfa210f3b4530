"""Local alert rules as a Prometheus rule file (``promtool check rules`` accepts it).

Threshold rules become PromQL over the series the exporters send (same names, base units:
a threshold in milliseconds becomes seconds): percentiles use ``histogram_quantile`` over
the buckets summed across the fleet, counts and sums ``increase``, rates ``rate``, gauges
their ``*_over_time``. Rules that need sounding's own baselines (``kind`` other than
``threshold``) have no PromQL equivalent and are listed as skipped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sounding.core.types import MetricType
from sounding.exporters._convert import base_unit, label_name, metric_name

__all__ = ["prometheus_rules", "promql_for"]


def _dur(seconds: float) -> str:
    return f"{max(round(seconds), 1)}s"


def _matchers(tags: Mapping[str, str] | None, extra: str = "") -> str:
    parts = [f"{label_name(k)}={json.dumps(v)}" for k, v in sorted((tags or {}).items())]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def promql_for(rule: Any, metric_type: MetricType, unit: str) -> str | None:
    """The PromQL value a threshold rule compares, or ``None`` when it has no equivalent."""
    name = metric_name(rule.metric, metric_type, unit)
    _, factor = base_unit(unit)
    w = _dur(rule.window)
    m = _matchers(rule.tags)
    stat = rule.stat
    if metric_type is MetricType.COUNTER:
        if stat in ("sum", "count"):
            return f"sum(increase({name}{m}[{w}]))"
        if stat == "rate":
            return f"sum(rate({name}{m}[{w}]))"
        return None
    if metric_type is MetricType.GAUGE:
        fn = {"last": "last", "avg": "avg", "min": "min", "max": "max"}.get(stat)
        if fn is None:
            return None
        agg = {"last": "max", "avg": "avg", "min": "min", "max": "max"}[fn]
        return f"{agg}({fn}_over_time({name}{m}[{w}]))"
    if stat.startswith("p"):
        q = float(stat[1:]) / 100.0
        return f"histogram_quantile({q:g}, sum by (le) (rate({name}_bucket{m}[{w}])))"
    if stat == "count":
        return f"sum(increase({name}_count{m}[{w}]))"
    if stat == "sum":
        return f"sum(increase({name}_sum{m}[{w}]))"
    if stat == "avg":
        return f"sum(rate({name}_sum{m}[{w}])) / sum(rate({name}_count{m}[{w}]))"
    if stat == "rate":
        return f"sum(rate({name}_count{m}[{w}]))"
    del factor
    return None


def prometheus_rules(
    rules: Sequence[Any], types: Mapping[str, tuple[MetricType, str]], group: str = "sounding"
) -> tuple[str, list[tuple[str, str]]]:
    """``(yaml_text, skipped)``: the rule file, and ``(rule name, why)`` for rules left out.

    ``types`` maps a metric name to its type and unit (from the store).
    """
    lines = ["groups:", f"  - name: {json.dumps(group)}", "    rules:"]
    skipped: list[tuple[str, str]] = []
    count = 0
    for rule in rules:
        if rule.kind != "threshold":
            skipped.append((rule.name, f"kind {rule.kind!r} needs sounding's baselines"))
            continue
        known = types.get(rule.metric)
        if known is None:
            skipped.append((rule.name, f"metric {rule.metric!r} is not in the store"))
            continue
        mtype, unit = known
        expr = promql_for(rule, mtype, unit)
        if expr is None:
            skipped.append((rule.name, f"stat {rule.stat!r} has no PromQL form for a {mtype}"))
            continue
        counters = mtype is MetricType.COUNTER or rule.stat in ("count", "rate")
        factor = 1.0 if counters else base_unit(unit)[1]
        threshold = float(rule.threshold) * factor
        alert = "".join(c if c.isalnum() or c == "_" else "_" for c in rule.name)
        lines.append(f"      - alert: {json.dumps(alert)}")
        lines.append(f"        expr: {json.dumps(f'{expr} {rule.op} {threshold:.10g}')}")
        if rule.for_:
            lines.append(f"        for: {_dur(rule.for_)}")
        if rule.keep_firing_for:
            lines.append(f"        keep_firing_for: {_dur(rule.keep_firing_for)}")
        lines.append("        labels:")
        lines.append('          source: "sounding"')
        lines.append("        annotations:")
        summary = rule.description or f"{rule.metric} {rule.stat} {rule.op} {rule.threshold:g}"
        lines.append(f"          summary: {json.dumps(summary)}")
        count += 1
    if count == 0:
        lines[-1] = "    rules: []"
    return "\n".join(lines) + "\n", skipped
