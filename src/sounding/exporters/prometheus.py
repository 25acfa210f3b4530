"""Pull: a ``prometheus_client`` collector over the store, a textfile, an HTTP endpoint.

:class:`PrometheusCollector` exposes the store's aggregates as they stand: counters as
``_total`` (the sum of every stored interval), gauges (last value), histograms as classic
``le`` buckets on the fixed grid the remote-write exporter uses, summaries as ``_count``,
``_sum`` and ``quantile`` samples; names with Prometheus conventions and base units
(milliseconds exported as seconds). Needs the ``prometheus`` extra.

>>> from prometheus_client import CollectorRegistry, generate_latest  # doctest: +SKIP
>>> registry = CollectorRegistry()                                    # doctest: +SKIP
>>> registry.register(PrometheusCollector())                          # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from sounding.core import health
from sounding.core.config import get_settings
from sounding.core.exceptions import ConfigurationError
from sounding.core.types import MetricType
from sounding.exporters._common import AUTO, policy
from sounding.exporters._convert import BucketGrid, base_unit, metric_name

__all__ = ["PrometheusCollector", "write_textfile"]

_EXTRA = "pip install 'sounding[prometheus]'"


def _client() -> Any:
    try:
        import prometheus_client
        import prometheus_client.core
    except ImportError as exc:
        raise ConfigurationError(
            "PrometheusCollector", "prometheus_client", f"installed: {_EXTRA}"
        ) from exc
    return prometheus_client


class PrometheusCollector:
    """A ``prometheus_client`` Collector reading the sounding store on every scrape.

    ``data_dir`` defaults to the configured one; ``instance`` (default none: the scraper
    sets ``instance``), ``tags`` (allowlist), ``bucket_range``/``bucket_step`` as in
    :class:`~sounding.exporters.RemoteWriteExporter`. A store that cannot be read yields
    no samples (counted as ``export.collect``), never an exception into the scrape.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        instance: Any = None,
        tags: Collection[str] | None = None,
        bucket_range: tuple[float, float] = (0.01, 60_000.0),
        bucket_step: int = 2,
    ) -> None:
        _client()
        self.data_dir = None if data_dir is None else Path(data_dir)
        self.grid = BucketGrid(float(bucket_range[0]), float(bucket_range[1]), bucket_step)
        self._policy_args = (instance, tags)
        policy(None if instance is AUTO else instance, tags, None)

    def describe(self) -> list[Any]:
        """Nothing up front: the series come from the store at scrape time."""
        return []

    def collect(self) -> Iterator[Any]:
        """One metric family per sounding metric, from the store's whole history."""
        client = _client()
        core = client.core
        from sounding.storage import open_store

        settings = get_settings()
        pol = policy(self._policy_args[0], self._policy_args[1], None)
        path = self.data_dir or settings.data_dir
        try:
            store = open_store(path)
        except Exception as exc:
            health.failure("export.collect", exc)
            return
        try:
            families: dict[str, Any] = {}
            for info in store.series():
                if info.name.startswith("sounding.internal."):
                    continue
                dist = store.distribution(info.name, tags=info.tags)
                labels = dict(pol.labels(tuple(sorted(info.tags.items()))))
                names, values = list(labels), list(labels.values())
                _, factor = base_unit(info.unit)
                name = metric_name(info.name, info.metric_type, info.unit)
                doc = info.description or info.name
                fam = families.get(name)
                if info.metric_type is MetricType.COUNTER:
                    base = name[: -len("_total")]
                    if fam is None:
                        fam = families[name] = core.CounterMetricFamily(base, doc, labels=names)
                    fam.add_metric(values, dist.sum * factor)
                elif info.metric_type is MetricType.GAUGE:
                    last = store.query(info.name, tags=info.tags, stat="last", start=0.0)
                    value = next((p.value for p in reversed(last) if p.value is not None), None)
                    if value is None:
                        continue
                    if fam is None:
                        fam = families[name] = core.GaugeMetricFamily(name, doc, labels=names)
                    fam.add_metric(values, float(value) * factor)
                elif info.metric_type is MetricType.HISTOGRAM:
                    if fam is None:
                        fam = families[name] = core.HistogramMetricFamily(name, doc, labels=names)
                    first, cum = self.grid.cumulative(dist.sketch)
                    les = self.grid.le_labels(factor)
                    buckets = [(le, float(c)) for le, c in zip(les[first:], cum, strict=True)]
                    if not buckets:
                        buckets = [("+Inf", 0.0)]
                    fam.add_metric(values, buckets, dist.sum * factor)
                else:
                    if fam is None:
                        fam = families[name] = core.SummaryMetricFamily(
                            name, doc, labels=[*names, "quantile"][:-1]
                        )
                    fam.add_metric(values, dist.count, dist.sum * factor)
                    for q in (0.5, 0.9, 0.95, 0.99):
                        v = dist.sketch.quantile(q)
                        if v is not None:
                            fam.add_sample(
                                name,
                                {**labels, "quantile": f"{q:g}"},
                                v * factor,
                            )
            yield from families.values()
        except Exception as exc:
            health.failure("export.collect", exc)
        finally:
            store.close()


def write_textfile(
    path: str | os.PathLike[str], collector: PrometheusCollector | None = None
) -> None:
    """Write the store's aggregates to ``path`` for node-exporter's textfile collector.

    Atomic: written to a temporary file in the same directory and renamed over ``path``,
    so the collector never reads half a file.
    """
    client = _client()
    registry = client.CollectorRegistry(auto_describe=False)
    registry.register(collector or PrometheusCollector())
    client.write_to_textfile(str(path), registry)


def make_registry(collector: PrometheusCollector | None = None) -> Any:
    """A registry holding only the sounding collector (for ``sounding serve-metrics``)."""
    client = _client()
    registry = client.CollectorRegistry(auto_describe=False)
    registry.register(collector or PrometheusCollector())
    return registry
