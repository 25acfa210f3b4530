"""OTLP/HTTP metrics: ``ExportMetricsServiceRequest`` (protobuf) with delta temporality.

The store holds per-interval deltas, which is what OTLP's delta temporality carries, so no
running totals are needed: counters become monotonic delta ``Sum`` points, gauges ``Gauge``
points, histograms and summaries delta ``ExponentialHistogram`` points (base-2 buckets at
scale 6, about 0.54 % relative width, re-bucketed from the sketch's representative values,
so a percentile stays within about 1.5 % of the sketch's). Each point spans its interval
(``start_time_unix_nano`` .. ``time_unix_nano``); the resource carries ``service.name``,
``service.version`` and ``service.instance.id`` (the pseudonymous install id).

Needs the ``otlp`` extra (``pip install 'sounding[otlp]'``) for the official
``opentelemetry-proto`` messages.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sounding.core.config import get_settings
from sounding.core.exceptions import ConfigurationError
from sounding.core.sketch import QuantileSketch
from sounding.core.types import MetricType
from sounding.exporters._common import AUTO, check_common, group_intervals, policy
from sounding.exporters._convert import LabelPolicy, base_unit, metric_name
from sounding.exporters.base import Payload, Transport
from sounding.storage.outbox import Interval, RunningTotal

__all__ = ["SCALE", "OTLPExporter", "exponential_buckets"]

#: The exponential histogram scale: base ``2 ** (2 ** -6)``.
SCALE = 6
_EXTRA = "pip install 'sounding[otlp]'"


def _proto() -> tuple[Any, Any, Any, Any]:
    try:
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
        from opentelemetry.proto.common.v1 import common_pb2
        from opentelemetry.proto.metrics.v1 import metrics_pb2
        from opentelemetry.proto.resource.v1 import resource_pb2
    except ImportError as exc:
        raise ConfigurationError(
            "OTLPExporter", "opentelemetry-proto", f"installed: {_EXTRA}"
        ) from exc
    return metrics_service_pb2, common_pb2, metrics_pb2, resource_pb2


def exponential_buckets(
    sketch: QuantileSketch, factor: float, scale: int = SCALE
) -> tuple[int, list[int], int, list[int], int]:
    """``(pos_offset, pos_counts, neg_offset, neg_counts, zero_count)`` of ``sketch`` at
    ``scale``; each sketch bucket lands where its representative value (times ``factor``)
    falls (bucket ``i`` holds ``(base**i, base**(i+1)]``)."""
    k = 2.0**scale / math.log(2.0)

    def dense(store: Mapping[int, int], sign: float) -> tuple[int, list[int]]:
        counts: dict[int, int] = {}
        for j, c in store.items():
            v = 2.0 * sketch.gamma**j / (sketch.gamma + 1.0) * factor
            idx = math.ceil(math.log(v) * k) - 1
            counts[idx] = counts.get(idx, 0) + c
        if not counts:
            return 0, []
        lo, hi = min(counts), max(counts)
        return lo, [counts.get(i, 0) for i in range(lo, hi + 1)]

    po, pc = dense(sketch.positive, 1.0)
    no, nc = dense(sketch.negative, -1.0)
    return po, pc, no, nc, sketch.zero_count


class OTLPExporter:
    """Pushes the store's closed intervals to an OTLP/HTTP metrics endpoint
    (``.../v1/metrics``), for example an OpenTelemetry Collector.

    ``instance`` and ``tags`` work as in :class:`RemoteWriteExporter`; the instance goes
    to the resource as ``service.instance.id``.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        instance: Any = AUTO,
        tags: Collection[str] | None = None,
        timeout: float = 10.0,
        include_internal: bool = False,
        transport: Transport | None = None,
    ) -> None:
        self.url, self.headers, self.timeout, self.transport = check_common(
            url, headers, timeout, transport
        )
        policy(instance if instance is not AUTO else None, tags, None)
        self._instance = instance
        self._tags = tags
        self._policy: LabelPolicy | None = None
        self._policy_for: tuple[object, ...] = ()
        self.include_internal = bool(include_internal)

    @property
    def policy(self) -> LabelPolicy:
        """Attributes policy (no ``instance``/``job`` attributes: those go to the resource)."""
        settings = get_settings()
        key = (settings.data_dir,)
        if self._policy is None or self._policy_for != key:
            self._policy = policy(self._instance, self._tags, None)
            self._policy_for = key
        return self._policy

    @property
    def destination(self) -> str:
        """``otlp URL instance=ID``: the cursor key."""
        return f"otlp {self.url} instance={self.policy.instance or '-'}"

    def __repr__(self) -> str:
        return f"OTLPExporter({self.url!r})"

    def encode(
        self, intervals: Sequence[Interval], totals: Mapping[str, RunningTotal]
    ) -> tuple[Payload, dict[str, RunningTotal]]:
        """One ``ExportMetricsServiceRequest``; OTLP deltas need no running totals."""
        svc, common, mpb, _ = _proto()
        pol = self.policy
        settings = get_settings()
        no_instance = LabelPolicy(allow=pol.allow, instance=None, job=None)
        req = svc.ExportMetricsServiceRequest()
        rm = req.resource_metrics.add()
        attrs = {"service.name": settings.app_name, "service.version": settings.app_version}
        if pol.instance is not None:
            attrs["service.instance.id"] = pol.instance
        for k, v in attrs.items():
            rm.resource.attributes.add(key=k, value=common.AnyValue(string_value=v))
        sm = rm.scope_metrics.add()
        sm.scope.name = "sounding"
        metrics: dict[str, Any] = {}
        lines: list[str] = []
        points = 0
        for (name, mtype_s, labels), end, parts in group_intervals(
            intervals, no_instance.labels, self.include_internal
        ):
            mtype = MetricType(mtype_s)
            unit = parts[0].unit
            suffix, factor = base_unit(unit)
            prom = metric_name(name, mtype, unit)
            otel_name = prom[: -len("_total")] if prom.endswith("_total") else prom
            m = metrics.get(otel_name)
            if m is None:
                m = sm.metrics.add(
                    name=otel_name, unit={"seconds": "s", "bytes": "By"}.get(suffix, unit)
                )
                metrics[otel_name] = m
            start_ns = int(min(p.start for p in parts) * 1e9)
            end_ns = int(end * 1e9)
            count = sum(p.count for p in parts)
            total = sum(p.sum for p in parts)
            if mtype is MetricType.COUNTER:
                m.sum.aggregation_temporality = mpb.AGGREGATION_TEMPORALITY_DELTA
                m.sum.is_monotonic = True
                dp = m.sum.data_points.add(
                    start_time_unix_nano=start_ns, time_unix_nano=end_ns, as_double=total * factor
                )
                value = f"+{total * factor:g}"
            elif mtype is MetricType.GAUGE:
                last = next((p.last for p in reversed(parts) if p.last is not None), None)
                if last is None:
                    last = total / count if count else 0.0
                dp = m.gauge.data_points.add(time_unix_nano=end_ns, as_double=float(last) * factor)
                value = f"{float(last) * factor:g}"
            else:
                sk = QuantileSketch()
                for p in parts:
                    if p.sketch is not None:
                        sk.merge(QuantileSketch.from_bytes(p.sketch))
                m.exponential_histogram.aggregation_temporality = mpb.AGGREGATION_TEMPORALITY_DELTA
                po, pc, no, nc, zero = exponential_buckets(sk, factor)
                dp = m.exponential_histogram.data_points.add(
                    start_time_unix_nano=start_ns,
                    time_unix_nano=end_ns,
                    count=count,
                    sum=total * factor,
                    scale=SCALE,
                    zero_count=zero,
                )
                dp.positive.offset = po
                dp.positive.bucket_counts.extend(pc)
                dp.negative.offset = no
                dp.negative.bucket_counts.extend(nc)
                mins = [p.min for p in parts if p.min is not None]
                maxs = [p.max for p in parts if p.max is not None]
                if mins:
                    dp.min = min(mins) * factor
                if maxs:
                    dp.max = max(maxs) * factor
                value = f"count={count} sum={total * factor:g}"
            for k, v in labels:
                dp.attributes.add(key=k, value=common.AnyValue(string_value=v))
            points += 1
            if len(lines) < 200:
                tags = ",".join(f"{k}={v}" for k, v in labels)
                lines.append(f"{otel_name}{{{tags}}} {value} @{end:.0f}")
        body = req.SerializeToString()
        payload = Payload(
            body=body,
            headers={"Content-Type": "application/x-protobuf", **self.headers},
            samples=points,
            text="\n".join(lines),
        )
        return payload, {}
