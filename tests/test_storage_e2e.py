"""End to end through the public API: instruments -> runtime -> SQLiteSink -> open_store."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

import sounding
from sounding.core import health
from sounding.storage import open_store

SRC = str(Path(sounding.__file__).resolve().parents[1])


def exact_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def test_instruments_flush_into_the_store(tmp_path: Path) -> None:
    """Counters, gauges and histograms recorded through sounding land exactly in the store."""
    sounding.configure(app_name="e2e", app_version="3.1", data_dir=tmp_path)
    rng = random.Random(3)
    values = [rng.lognormvariate(-3, 0.7) for _ in range(5000)]
    hist = sounding.histogram("e2e.export.duration", unit="s")
    for v in values:
        hist.observe(v, tags={"format": "wav"})
    exports = sounding.counter("e2e.exports")
    for i in range(300):
        exports.inc(tags={"format": "wav" if i % 3 else "flac"})
    sounding.gauge("e2e.memory").set(42.0)
    assert sounding.flush() is True
    with open_store(tmp_path) as store:
        [p95] = store.query("e2e.export.duration", start="1h", stat="p95")
        [count] = store.query("e2e.export.duration", start="1h", stat="count")
        by_format = store.query("e2e.exports", start="1h", stat="sum", group_by="format")
        [mem] = store.query("e2e.memory", start="1h", stat="last")
        [info] = store.series("e2e.export.duration")
    assert p95.value == pytest.approx(exact_quantile(values, 0.95), rel=0.01)
    assert count.value == 5000
    assert {p.group: p.value for p in by_format} == {"flac": 100.0, "wav": 200.0}
    assert mem.value == 42.0
    assert info.unit == "s"
    assert info.tags["app_version"] == "3.1"  # default tags reach the store


def test_recorded_history_is_queryable(tmp_path: Path) -> None:
    """sounding.record() of past snapshots lands in the right intervals, hourly and daily."""
    sounding.configure(app_name="e2e", data_dir=tmp_path)
    day = datetime(2026, 3, 1, tzinfo=timezone.utc).timestamp()
    rng = random.Random(5)
    values = []
    for i in range(2000):
        v = rng.uniform(10, 500)
        values.append(v)
        sounding.record(
            sounding.MetricSnapshot(
                sounding.MetricType.HISTOGRAM, "e2e.latency", v, day + i * 30, {"region": "eu"}
            )
        )
    assert sounding.flush() is True
    with open_store(tmp_path) as store:
        [p50] = store.query("e2e.latency", start=day, end=day + 86400, stat="p50")
        hours = store.query("e2e.latency", start=day, end=day + 86400, interval="1h", stat="count")
        [mx] = store.query("e2e.latency", start=day, end=day + 86400, stat="max")
    assert p50.value == pytest.approx(exact_quantile(values, 0.5), rel=0.01)
    assert [h.value for h in hours] == [120.0] * 16 + [80.0]
    assert mx.value == max(values)


def test_health_counts_reach_status(tmp_path: Path) -> None:
    """Internal health counts are persisted with a flush and shown by status()."""
    sounding.configure(app_name="e2e", data_dir=tmp_path)
    health.count("events.dropped", 7)
    sounding.counter("e2e.c").inc()
    assert sounding.flush() is True
    with open_store(tmp_path) as store:
        assert store.status().internal_counts["events.dropped"] == 7


def test_unwritable_data_dir_never_raises_into_the_host(tmp_path: Path) -> None:
    """A data dir that cannot be created: recording and flush() never raise; it is counted."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    sounding.configure(app_name="e2e", data_dir=blocker / "data")
    sounding.counter("e2e.c").inc()
    assert sounding.flush() is False
    assert health.counts().get("storage.write", 0) + health.counts().get("storage.open", 0) >= 1


WORKER = textwrap.dedent(
    """
    import sys
    import sounding

    sounding.configure(app_name="conc", data_dir=sys.argv[1])
    c = sounding.counter("e2e.concurrent")
    h = sounding.histogram("e2e.concurrent.size")
    for i in range(int(sys.argv[2])):
        c.inc(tags={"kind": str(i % 2)})
        h.observe(float(i % 100 + 1))
        if i % 500 == 0:
            assert sounding.flush()
    assert sounding.flush()
    print("ok")
    """
)


def test_four_processes_through_the_public_api(tmp_path: Path) -> None:
    """Four applications recording into one data dir: every increment is in the store."""
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    n = 5000
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path), str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out.strip() == "ok"
    with open_store(tmp_path) as store:
        [total] = store.query("e2e.concurrent", start="1h", end=time.time() + 120, stat="sum")
        [size] = store.query("e2e.concurrent.size", start="1h", end=time.time() + 120, stat="count")
        export = [r.to_dict() for r in store.records("e2e.concurrent")]
    assert total.value == 4 * n
    assert size.value == 4 * n
    assert sum(r["sum"] for r in export) == 4 * n
    json.dumps(export)  # export records are JSON-ready


def test_corrupt_store_is_replaced_without_the_host_noticing(tmp_path: Path) -> None:
    """A garbage telemetry.db: recording and flush() succeed into a fresh store; the old
    file is kept aside and the event is counted."""
    (tmp_path / "telemetry.db").write_bytes(b"definitely not sqlite" * 200)
    sounding.configure(app_name="e2e", data_dir=tmp_path)
    sounding.counter("e2e.after_corruption").inc(5)
    assert sounding.flush() is True
    assert health.counts()["storage.corrupt"] == 1
    with open_store(tmp_path) as store:
        [p] = store.query("e2e.after_corruption", start="1h", end=time.time() + 120, stat="sum")
        assert p.value == 5
        assert len(store.status().corrupt_files) == 1


KILLED_APP = textwrap.dedent(
    """
    import sys
    import sounding

    sounding.configure(app_name="killed", data_dir=sys.argv[1])
    c = sounding.counter("e2e.killed")
    i = 0
    while True:
        c.inc()
        i += 1
        if i % 50 == 0:
            assert sounding.flush()
            print(i, flush=True)
    """
)


def test_sigkill_through_the_public_api(tmp_path: Path) -> None:
    """An application killed mid-recording: the file is intact and every increment that a
    completed flush() reported is in the store."""
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_APP, str(tmp_path)], stdout=subprocess.PIPE, text=True,
        env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    acked = 0
    try:
        for line in proc.stdout:
            acked = int(line)
            if acked >= 2000:
                break
    finally:
        proc.kill()
        proc.wait(timeout=30)
    # Acknowledgements already in the pipe when the kill landed count too.
    for line in proc.stdout.read().split():
        acked = int(line)
    with open_store(tmp_path) as store:
        assert store.connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        [p] = store.query("e2e.killed", start="1h", end=time.time() + 120, stat="sum")
    assert acked <= p.value <= acked + 50
