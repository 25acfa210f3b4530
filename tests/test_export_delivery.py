"""Delivery: cursor, retries, refusals, bounds, dry-run, privacy gating (fake transport)."""

from __future__ import annotations

import itertools
import socket
import sqlite3
import time
from pathlib import Path

import pytest

import sounding
from sounding.core import health
from sounding.core.sketch import QuantileSketch
from sounding.core.types import IntervalAggregate, MetricType
from sounding.exceptions import ConfigurationError
from sounding.exporters import RemoteWriteExporter, Response
from sounding.exporters._deliver import deliver, is_permanent
from sounding.exporters._fake import FakeTransport
from sounding.exporters.remote_write import decode_write_request, snappy_decompress
from sounding.storage import SQLiteSink
from sounding.storage.outbox import ExportCursors

STEP = 60.0
T0 = (time.time() // 3600) * 3600 - 86400.0  # yesterday, within retention


def write(path: Path, n: int, start: float = T0) -> None:
    """``n`` one-minute intervals of a counter (+1 each) and a histogram."""
    aggs = []
    for i in range(n):
        t = start + i * STEP
        sk = QuantileSketch()
        sk.add_many([10.0, 20.0, 30.0])
        aggs.append(IntervalAggregate("jobs", MetricType.COUNTER, (("kind", "a"),), t, t + STEP,
                                      count=1, sum=1.0))
        aggs.append(IntervalAggregate("job.duration", MetricType.HISTOGRAM, (("kind", "a"),), t,
                                      t + STEP, count=3, sum=60.0, min=10.0, max=30.0, sketch=sk,
                                      unit="ms"))
    sink = SQLiteSink(path)
    sink.write(aggs, [])
    sink.close()


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    """A store with 10 minutes of data."""
    path = tmp_path / "telemetry.db"
    write(path, 10)
    c = sqlite3.connect(path, isolation_level=None)
    yield c
    c.close()


def decoded(t: FakeTransport, i: int) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
    """The WriteRequest of the ``i``-th request."""
    return decode_write_request(snappy_decompress(t.requests[i].body))


def exporter(t: FakeTransport, **kw: object) -> RemoteWriteExporter:
    """A remote-write exporter on the fake transport."""
    return RemoteWriteExporter("http://127.0.0.1:1/api/v1/write", instance="x", transport=t, **kw)


def counter_samples(req: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]) -> list[float]:
    """The running totals of ``jobs_total`` in a request."""
    return [v for labels, s in req.items() if ("__name__", "jobs_total") in labels for _, v in s]


def test_headers_and_running_totals(conn: sqlite3.Connection) -> None:
    """Remote-write 1.0 headers; counters leave as running totals stamped at interval ends."""
    t = FakeTransport()
    deliver(exporter(t), conn, since=T0 - 1, until=T0 + 3600)
    h = t.requests[0].headers
    assert h["Content-Encoding"] == "snappy"
    assert h["Content-Type"] == "application/x-protobuf"
    assert h["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    req = decoded(t, 0)
    [(labels, samples)] = [(k, v) for k, v in req.items() if ("__name__", "jobs_total") in k]
    assert [v for _, v in samples] == [float(i) for i in range(1, 11)]
    assert samples[0][0] == int((T0 + STEP) * 1000)
    assert dict(labels)["instance"] == "x"
    assert dict(labels)["kind"] == "a"


def test_ms_histogram_in_seconds_on_fixed_grid(conn: sqlite3.Connection) -> None:
    """A millisecond histogram leaves as ``_seconds`` buckets, sum and count."""
    t = FakeTransport()
    deliver(exporter(t), conn, since=T0 - 1, until=T0 + 3600)
    req = decoded(t, 0)
    names = {dict(k)["__name__"] for k in req}
    assert {"job_duration_seconds_bucket", "job_duration_seconds_sum",
            "job_duration_seconds_count"} <= names
    sums = [s for k, s in req.items() if dict(k)["__name__"] == "job_duration_seconds_sum"]
    assert sums[0][-1][1] == pytest.approx(0.6)
    inf = [s for k, s in req.items() if dict(k).get("le") == "+Inf"]
    assert inf[0][-1][1] == 30.0


def test_resend_after_ack_sends_nothing(conn: sqlite3.Connection) -> None:
    """What the server acknowledged is never sent again; new data continues the totals."""
    t = FakeTransport()
    deliver(exporter(t), conn, since=T0 - 1, until=T0 + 5 * STEP)
    again = deliver(exporter(t), conn, since=T0 - 1, until=T0 + 5 * STEP)
    assert again.samples == 0
    assert len(t.requests) == 1
    deliver(exporter(t), conn, since=T0 - 1, until=T0 + 3600)
    assert counter_samples(decoded(t, 0)) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert counter_samples(decoded(t, 1)) == [6.0, 7.0, 8.0, 9.0, 10.0]


def test_failed_batch_is_resent_with_same_timestamps(conn: sqlite3.Connection) -> None:
    """At least once: a batch that got no answer is sent again, identical."""
    t = FakeTransport([503, 503])
    r = deliver(exporter(t), conn, since=T0 - 1, max_attempts=2, backoff=0.0)
    assert r.stopped == "failed"
    assert r.failures == 1
    deliver(exporter(t), conn, since=T0 - 1)
    assert t.requests[0].body == t.requests[2].body


def test_retries_with_backoff_then_succeeds(conn: sqlite3.Connection) -> None:
    """429 and 5xx are retried with growing delays; the third attempt lands."""
    slept: list[float] = []
    t = FakeTransport([429, 502])
    r = deliver(exporter(t), conn, since=T0 - 1, backoff=1.0, sleep=slept.append)
    assert r.stopped == "done"
    assert r.samples > 0
    assert len(t.requests) == 3
    assert len(slept) == 2
    assert slept[1] > slept[0] * 0.9


@pytest.mark.parametrize(
    ("status", "body"),
    [(400, "bad labels"), (413, "too large"), (500, "too old sample"), (500, "out of bounds")],
)
def test_permanent_refusal_is_counted_and_skipped(
    conn: sqlite3.Connection, status: int, body: str
) -> None:
    """A 4xx (not 429) or Prometheus' 500 "too old sample" is counted, not retried forever."""
    t = FakeTransport([Response(status, body)])
    before = health.counts().get("export.refused", 0)
    r = deliver(exporter(t, ), conn, since=T0 - 1, batch_size=4)
    assert r.refused_samples > 0
    assert r.stopped == "done"
    assert len(t.requests) > 1  # the next batches went on
    assert health.counts()["export.refused"] - before == r.refused_samples
    [state] = ExportCursors(conn).all()
    assert state.refused == r.refused_samples


def test_is_permanent_classification() -> None:
    """Plain 500s and 429 are transient; too-old 500s and other 4xx are permanent."""
    assert not is_permanent(Response(500, "internal"))
    assert not is_permanent(Response(429))
    assert not is_permanent(Response(0, "refused"))
    assert is_permanent(Response(500, "out of order sample"))
    assert is_permanent(Response(404))


def test_batches_are_bounded(conn: sqlite3.Connection) -> None:
    """No request holds more than the batch size (in whole instants)."""
    t = FakeTransport()
    r = deliver(exporter(t), conn, since=T0 - 1, batch_size=4)
    assert r.batches == 5
    assert len(t.requests) == 5


def test_backlog_limit_skips_and_counts(conn: sqlite3.Connection) -> None:
    """History further behind than max_backlog is skipped, and counted."""
    t = FakeTransport()
    r = deliver(exporter(t), conn, since=T0 - 1, until=T0 + 10 * STEP, max_backlog=4 * STEP)
    assert r.backlog_dropped == 14  # 7 instants x 2 series
    assert counter_samples(decoded(t, 0)) == [1.0, 2.0, 3.0]


def test_deadline_is_never_passed(conn: sqlite3.Connection) -> None:
    """A delivery whose deadline has passed sends nothing and says why."""
    t = FakeTransport()
    r = deliver(exporter(t), conn, since=T0 - 1, deadline=time.monotonic() - 1)
    assert r.stopped == "deadline"
    assert not t.requests


def test_dry_run_prints_and_records_nothing(conn: sqlite3.Connection) -> None:
    """Dry-run hands the readable payload over and moves no cursor."""
    t = FakeTransport()
    seen: list[str] = []
    deliver(exporter(t), conn, since=T0 - 1, dry_run=lambda p: seen.append(p.text))
    assert not t.requests
    assert "jobs_total" in seen[0]
    assert ExportCursors(conn).all() == []


def test_tag_allowlist_folds_series(tmp_path: Path) -> None:
    """Tags outside the allowlist never leave; their series are summed together."""
    path = tmp_path / "telemetry.db"
    aggs = [
        IntervalAggregate("jobs", MetricType.COUNTER, (("kind", k), ("user_group", g)), T0,
                          T0 + STEP, count=1, sum=v)
        for k, g, v in (("a", "x", 1.0), ("a", "y", 2.0), ("b", "x", 4.0))
    ]
    sink = SQLiteSink(path)
    sink.write(aggs, [])
    sink.close()
    c = sqlite3.connect(path, isolation_level=None)
    t = FakeTransport()
    deliver(exporter(t, tags=["kind"]), c, since=T0 - 1)
    c.close()
    req = decoded(t, 0)
    got = {dict(k)["kind"]: s[0][1] for k, s in req.items()}
    assert got == {"a": 3.0, "b": 4.0}
    assert all("user_group" not in dict(k) for k in req)


def test_default_instance_is_random_install_id(tmp_path: Path) -> None:
    """The default instance is a random id kept in the data dir, not the host name."""
    exp = RemoteWriteExporter("http://127.0.0.1:1/api/v1/write")
    inst = exp.policy.instance
    assert inst is not None
    assert len(inst) == 16
    assert inst != socket.gethostname()
    assert RemoteWriteExporter("http://127.0.0.1:1/api/v1/write").policy.instance == inst
    assert RemoteWriteExporter("http://127.0.0.1:1/x", instance=None).policy.instance is None


@pytest.mark.parametrize(
    ("kwargs", "arg"),
    [({"url": "ftp://x"}, "url"), ({"timeout": 0}, "timeout"), ({"headers": {"a": 1}}, "headers"),
     ({"bucket_step": 0}, "bucket_step"), ({"bucket_range": (5, 1)}, "bucket_range"),
     ({"instance": 3}, "instance")],
)
def test_misuse_raises_naming_the_argument(kwargs: dict[str, object], arg: str) -> None:
    """Bad exporter arguments raise sounding's errors naming the argument."""
    args = {"url": "http://127.0.0.1:1/api/v1/write", **kwargs}
    url = args.pop("url")
    with pytest.raises((ValueError, TypeError), match=arg):
        RemoteWriteExporter(url, **args)  # type: ignore[arg-type]


def test_configure_rejects_non_exporters() -> None:
    """configure(exporters=...) accepts only exporters or their TOML tables."""
    with pytest.raises(ConfigurationError, match="exporters"):
        sounding.configure(exporters=["http://x"])


@pytest.mark.needs_extras
@pytest.mark.parametrize("size", [0, 1, 59, 60, 255, 256, 70_000, 200_000])
def test_snappy_fallback_is_valid_snappy(size: int) -> None:
    """Without cramjam the body is a literal-only snappy block that real snappy decodes."""
    import cramjam

    from sounding.exporters.remote_write import _snappy_literal

    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    assert bytes(cramjam.snappy.decompress_raw(_snappy_literal(data))) == data
    assert snappy_decompress(bytes(cramjam.snappy.compress_raw(data))) == data


@pytest.mark.parametrize("limit", [1, 3, 7, 50])
def test_batches_cover_every_interval_once_without_splitting_instants(
    tmp_path: Path, limit: int
) -> None:
    """Reading batch after batch yields every closed interval exactly once, whole instants
    per batch, whatever the mix of dense and sparse series."""
    from sounding.storage.outbox import read_intervals

    path = tmp_path / "telemetry.db"
    aggs = []
    for s, every in enumerate((1, 2, 5, 11)):
        for i in range(0, 40, every):
            t = T0 + i * STEP
            aggs.append(IntervalAggregate(f"m{s}", MetricType.COUNTER, (), t, t + STEP,
                                          count=1, sum=1.0))  # fmt: skip
    sink = SQLiteSink(path)
    sink.write(aggs, [])
    sink.close()
    c = sqlite3.connect(path, isolation_level=None)
    seen: list[tuple[str, float]] = []
    batches: list[set[float]] = []
    pos = T0 - 1
    while True:
        rows, new = read_intervals(c, pos, T0 + 3600, limit)
        if new is None:
            break
        assert new > pos
        seen += [(r.name, r.start) for r in rows]
        batches.append({r.start for r in rows})
        pos = new
    c.close()
    assert sorted(seen) == sorted((a.name, a.start) for a in aggs)
    assert len(seen) == len(set(seen))
    for a, b in itertools.pairwise(batches):
        assert max(a) < min(b)
