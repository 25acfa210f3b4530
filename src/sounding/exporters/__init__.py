"""Exporters: send the store's aggregates to the engines a fleet already runs.

- Pull, for services: :class:`PrometheusCollector` (``prometheus_client`` Collector),
  :func:`write_textfile` (node-exporter textfile), ``sounding serve-metrics``.
- Push, for fleets: :class:`RemoteWriteExporter` (Prometheus remote-write 1.0, to
  Prometheus, VictoriaMetrics, Mimir, Thanos, Cortex) and :class:`OTLPExporter`
  (OTLP/HTTP to an OpenTelemetry Collector), configured with
  ``sounding.configure(exporters=[...])`` and sent by a background thread that reads closed
  intervals from the store (nothing on the hot path), or ``sounding push`` once.

Only aggregates leave, only at telemetry level ``all``. Every push exporter implements
:class:`~sounding.exporters.base.Exporter`; tests use
:class:`~sounding.exporters._fake.FakeTransport`. See ``docs/fleet.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sounding.exporters._common import AUTO
from sounding.exporters.base import Exporter, Payload, Response, Transport

if TYPE_CHECKING:
    from sounding.exporters.otlp import OTLPExporter
    from sounding.exporters.prometheus import PrometheusCollector, write_textfile
    from sounding.exporters.remote_write import RemoteWriteExporter

__all__ = [
    "AUTO",
    "Exporter",
    "OTLPExporter",
    "Payload",
    "PrometheusCollector",
    "RemoteWriteExporter",
    "Response",
    "Transport",
    "write_textfile",
]

_LAZY = {
    "OTLPExporter": "sounding.exporters.otlp",
    "PrometheusCollector": "sounding.exporters.prometheus",
    "write_textfile": "sounding.exporters.prometheus",
    "RemoteWriteExporter": "sounding.exporters.remote_write",
}


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'sounding.exporters' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(mod), name)
