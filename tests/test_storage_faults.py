"""Faults done for real: a writer killed with SIGKILL, four processes writing at once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import sounding
from sounding.storage import open_store

SRC = str(Path(sounding.__file__).resolve().parents[1])

# A writer that acknowledges each committed flush on stdout, as the runtime would count it.
KILL_WRITER = textwrap.dedent(
    """
    import sys, time
    from sounding.core.sketch import QuantileSketch
    from sounding.core.types import IntervalAggregate, MetricType
    from sounding.storage import SQLiteSink

    sink = SQLiteSink(sys.argv[1])
    base = time.time() // 3600 * 3600
    i = 0
    while True:
        sk = QuantileSketch()
        sk.add_many([1.0, 2.0, 3.0])
        start = base + 60 * (i % 30)
        aggs = [
            IntervalAggregate("kill.c", MetricType.COUNTER, (("w", "1"),), start, start + 60,
                              count=1, sum=1.0),
            IntervalAggregate("kill.h", MetricType.HISTOGRAM, (), start, start + 60,
                              count=3, sum=6.0, min=1.0, max=3.0, sketch=sk),
        ]
        events = [{"timestamp": time.time(), "level": "info", "category": "test",
                   "event": "tick", "logger": "w", "session_id": "s", "i": i,
                   "pad": "x" * 500}]
        sink.write(aggs, events)
        print(i, flush=True)
        i += 1
    """
)

CONCURRENT_WRITER = textwrap.dedent(
    """
    import json, sys, time
    from sounding.core.sketch import QuantileSketch
    from sounding.core.types import IntervalAggregate, MetricType
    from sounding.storage import SQLiteSink

    path, worker, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    sink = SQLiteSink(path)
    base = time.time() // 3600 * 3600
    writes = observations = failures = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        values = [float(worker * 1000 + writes % 100 + k) for k in range(10)]
        sk = QuantileSketch()
        sk.add_many(values)
        start = base + 60 * (writes % 20)  # every worker hits the same buckets
        aggs = [
            IntervalAggregate("conc.c", MetricType.COUNTER, (("kind", str(writes % 3)),),
                              start, start + 60, count=1, sum=2.0),
            IntervalAggregate("conc.h", MetricType.HISTOGRAM, (), start, start + 60,
                              count=10, sum=sum(values), min=min(values), max=max(values),
                              sketch=sk),
        ]
        events = [{"timestamp": time.time(), "level": "info", "category": "test",
                   "event": "w", "logger": "w", "session_id": str(worker)}]
        try:
            sink.write(aggs, events)
        except Exception as exc:
            failures += 1
            print("failure", repr(exc), file=sys.stderr)
            continue
        writes += 1
        observations += 10
    sink.close()
    print(json.dumps({"writes": writes, "observations": observations, "failures": failures}))
    """
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_sigkill_mid_write_keeps_file_intact_and_acknowledged_data(tmp_path: Path) -> None:
    """SIGKILL during a loop of writes: integrity_check is ok and every acknowledged flush
    is there (at most the one in flight may also have landed)."""
    path = tmp_path / "telemetry.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    assert proc.stdout is not None
    acked = -1
    try:
        for line in proc.stdout:
            acked = int(line)
            if acked >= 150:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    # Acknowledgements written after the one that triggered the kill are still in the pipe.
    for line in proc.stdout:
        if line.endswith("\n"):
            acked = int(line)
    assert proc.returncode == -signal.SIGKILL
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        n_events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        (counter_sum,) = conn.execute(
            "SELECT sum(p.sum) FROM points p JOIN series s ON s.id = p.series_id "
            "WHERE s.name = 'kill.c' AND p.resolution = 86400"
        ).fetchone()
        (hist_count,) = conn.execute(
            "SELECT sum(p.count) FROM points p JOIN series s ON s.id = p.series_id "
            "WHERE s.name = 'kill.h' AND p.resolution = 3600"
        ).fetchone()
    finally:
        conn.close()
    flushed = acked + 1
    assert flushed <= n_events <= flushed + 1
    assert counter_sum == n_events  # metrics and events of a flush land together
    assert hist_count == 3 * n_events


def test_four_processes_writing_concurrently_lose_nothing(tmp_path: Path) -> None:
    """Four processes writing the same buckets of one file for seconds: no writer sees an
    error and every observation is accounted for at every resolution."""
    path = tmp_path / "telemetry.db"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_WRITER, str(path), str(k), "3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for k in range(4)
    ]
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        reports.append(json.loads(out))
    assert all(r["failures"] == 0 for r in reports)
    writes = sum(r["writes"] for r in reports)
    observations = sum(r["observations"] for r in reports)
    assert all(r["writes"] > 0 for r in reports)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        for res in (60, 3600, 86400):
            got = dict(
                conn.execute(
                    "SELECT s.name, sum(p.count) FROM points p "
                    "JOIN series s ON s.id = p.series_id WHERE p.resolution = ? "
                    "GROUP BY s.name",
                    (res,),
                ).fetchall()
            )
            assert got == {"conc.c": writes, "conc.h": observations}
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (writes,)
    finally:
        conn.close()
    # And the store answers with the same totals (sketches merged across processes).
    with open_store(path) as store:
        dist = store.distribution("conc.h", start="2d", end=time.time() + 86400)
        assert dist.count == observations
        assert dist.sketch.count == observations
