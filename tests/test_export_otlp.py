"""OTLP/HTTP against a loopback receiver that decodes with the official opentelemetry-proto."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import sounding
from sounding.core.sketch import QuantileSketch
from sounding.core.types import IntervalAggregate, MetricType
from sounding.exporters._deliver import deliver
from sounding.storage import SQLiteSink

pytestmark = pytest.mark.needs_extras

T0 = 0.0


class Receiver:
    """An OTLP/HTTP metrics receiver on 127.0.0.1 keeping the decoded requests."""

    def __init__(self, status: int = 200) -> None:
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as pb

        self.requests: list[object] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                req = pb.ExportMetricsServiceRequest()
                req.ParseFromString(body)
                receiver.requests.append(req)
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()
                self.wfile.write(pb.ExportMetricsServiceResponse().SerializeToString())

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/metrics"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver answering 200."""
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with three minutes of a counter, a gauge and a histogram (in ms)."""
    import time

    global T0
    T0 = (time.time() // 3600) * 3600 - 7200
    aggs = []
    for i in range(3):
        t = T0 + 60 * i
        sk = QuantileSketch()
        sk.add_many(float(v) for v in range(1, 101))
        tags = (("app_version", "2.0"), ("route", "save"))
        aggs += [
            IntervalAggregate("saves", MetricType.COUNTER, tags, t, t + 60, count=2, sum=2.0),
            IntervalAggregate("memory", MetricType.GAUGE, (), t, t + 60, count=1, last=5.0 + i,
                              unit="MB"),
            IntervalAggregate("save.duration", MetricType.HISTOGRAM, tags, t, t + 60, count=100,
                              sum=5050.0, min=1.0, max=100.0, sketch=sk, unit="ms"),
        ]  # fmt: skip
    sink = SQLiteSink(tmp_path / "telemetry.db")
    sink.write(aggs, [])
    sink.close()
    return tmp_path / "telemetry.db"


def run(url: str, path: Path) -> object:
    """Deliver the store with an OTLPExporter."""
    from sounding.exporters import OTLPExporter

    sounding.configure(app_name="recorder", app_version="2.0")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return deliver(OTLPExporter(url, instance="abc"), conn, since=T0 - 1)
    finally:
        conn.close()


def test_delta_points_resource_and_exponential_histogram(receiver: Receiver, store: Path) -> None:
    """Counters are delta sums, resource attributes name the service, histograms are
    scale-6 exponential histograms whose buckets give the sketch's median within 1.5 %."""
    from opentelemetry.proto.metrics.v1 import metrics_pb2

    report = run(receiver.url, store)
    assert report.stopped == "done"  # type: ignore[attr-defined]
    [req] = receiver.requests
    rm = req.resource_metrics[0]  # type: ignore[attr-defined]
    attrs = {a.key: a.value.string_value for a in rm.resource.attributes}
    assert attrs == {"service.name": "recorder", "service.version": "2.0",
                     "service.instance.id": "abc"}  # fmt: skip
    metrics = {m.name: m for m in rm.scope_metrics[0].metrics}
    saves = metrics["saves"].sum
    assert saves.aggregation_temporality == metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
    assert saves.is_monotonic
    assert [p.as_double for p in saves.data_points] == [2.0, 2.0, 2.0]
    p0 = saves.data_points[0]
    assert p0.time_unix_nano - p0.start_time_unix_nano == 60 * 10**9
    mem = metrics["memory_bytes"].gauge.data_points
    assert [p.as_double for p in mem] == [5e6, 6e6, 7e6]
    h = metrics["save_duration_seconds"].exponential_histogram
    assert h.aggregation_temporality == metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
    dp = h.data_points[0]
    assert dp.scale == 6
    assert dp.count == 100
    assert dp.sum == pytest.approx(5.05)
    assert sum(dp.positive.bucket_counts) == 100
    # The median from the OTLP buckets: upper bound of the bucket holding rank 50.
    base = 2 ** (2**-6)
    run_total = 0
    for i, c in enumerate(dp.positive.bucket_counts):
        run_total += c
        if run_total >= 50:
            median = base ** (dp.positive.offset + i + 1)
            break
    assert median == pytest.approx(0.050, rel=0.015)


def test_refused_otlp_is_counted(store: Path) -> None:
    """A 400 from the receiver is counted as refused (the SDK would report success)."""
    r = Receiver(status=400)
    try:
        report = run(r.url, store)
    finally:
        r.close()
    assert report.refused_samples == 9  # type: ignore[attr-defined]
