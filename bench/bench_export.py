"""Exporter benchmarks: 14-day demo back-fill with remote-write, CPU per export cycle.

Run: ``python bench/bench_export.py``. Uses a real VictoriaMetrics on loopback when
``victoria-metrics`` is on PATH (Debian's package), else a no-network fake transport (the
figure then excludes the server's share).

- Back-fill: the demo's 14 days (``sounding demo`` data: ~10 k five-minute intervals of 43
  series) pushed in one ``deliver`` run, as ``sounding push remote-write`` does; target < 5 s.
- Export cycle: what the background exporter costs per aggregation interval once caught up:
  read the newly closed intervals after the cursor, encode, send, advance the cursor. CPU
  time of this process (``time.process_time``), median of 20 cycles.
"""

from __future__ import annotations

import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import sounding
from sounding.core.sketch import QuantileSketch
from sounding.core.types import IntervalAggregate, MetricType
from sounding.exporters import RemoteWriteExporter
from sounding.exporters._deliver import deliver
from sounding.exporters._fake import FakeTransport
from sounding.presentation.demo import run_demo
from sounding.storage import SQLiteSink


def start_vm(tmp: Path) -> tuple[subprocess.Popen[bytes] | None, str | None]:
    """A VictoriaMetrics on a free loopback port, or (None, None) when not installed."""
    binary = shutil.which("victoria-metrics")
    if binary is None:
        return None, None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, f"-httpListenAddr=127.0.0.1:{port}", f"-storageDataPath={tmp / 'vm'}",
         "-retentionPeriod=100y"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            with urllib.request.urlopen(base + "/health", timeout=1):
                return proc, base + "/api/v1/write"
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    return None, None


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="sounding-bench-export-"))
    proc, url = start_vm(tmp)
    target = "VictoriaMetrics 1.79 on loopback" if url else "fake transport (no server)"
    try:
        data = tmp / "demo"
        run_demo(days=14, seed=7, data_dir=data)
        sounding.configure(data_dir=data)
        conn = sqlite3.connect(data / "telemetry.db", isolation_level=None)
        (n_intervals,) = conn.execute(
            "SELECT count(*) FROM points WHERE resolution NOT IN (3600, 86400)"
        ).fetchone()
        exp = RemoteWriteExporter(
            url or "http://127.0.0.1:9/api/v1/write",
            instance="bench",
            transport=None if url else FakeTransport(),
        )
        t0, c0 = time.perf_counter(), time.process_time()
        report = deliver(exp, conn, since=0.0)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"\n## export  (to {target})")
        print(
            f"- back-fill 14 demo days: {n_intervals:,} intervals -> {report.samples:,} samples "
            f"in {report.requests} requests: {wall:.2f} s wall, {cpu:.2f} s CPU "
            f"({report.samples / wall / 1e6:.2f} M samples/s)  target < 5 s"
        )
        vm_note = ""
        if url:
            # The command a user runs: a fresh interpreter, the CLI's imports, the push.
            t0 = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "sounding", "--data-dir", str(data), "push",
                 "remote-write", url, "--since", "30d", "--instance", "bench-cli"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            ok = "ok" if done.returncode == 0 else f"FAILED {done.stderr.strip()[-200:]}"
            print(
                f"- `sounding push remote-write --since 30d` (new process): "
                f"{time.perf_counter() - t0:.2f} s wall, {ok}  target < 5 s"
            )
            vexp = RemoteWriteExporter(url, instance="bench-vmrange", histogram_format="vmrange")
            t0 = time.perf_counter()
            vrep = deliver(vexp, conn, since=0.0)
            vm_note = (
                f"- same back-fill with vmrange buckets: {vrep.samples:,} samples, "
                f"{time.perf_counter() - t0:.2f} s wall"
            )
            print(vm_note)
        # Export cycles: one new closed interval of every series per cycle.
        series = conn.execute("SELECT name, type, unit, tags FROM series").fetchall()
        (step,) = conn.execute(
            "SELECT min(resolution) FROM points WHERE resolution NOT IN (3600, 86400)"
        ).fetchone()
        end = report.position or time.time()
        end = (end // step + 1) * step
        cpu_ms: list[float] = []
        samples: list[int] = []
        sink = SQLiteSink(data / "telemetry.db")
        for i in range(20):
            t = end + i * step
            aggs = []
            for name, mtype, unit, _tags in series:
                kind = MetricType(mtype)
                sk = QuantileSketch()
                sk.add_many([5.0, 50.0, 500.0])
                aggs.append(
                    IntervalAggregate(
                        name, kind, (("app_version", "1.5.0"),), t, t + step, count=3, sum=555.0,
                        min=5.0, max=500.0, last=50.0,
                        sketch=sk if kind in (MetricType.HISTOGRAM, MetricType.SUMMARY) else None,
                        unit=unit,
                    )
                )  # fmt: skip
            sink.write(aggs, [])
            c0 = time.process_time()
            r = deliver(exp, conn, since=0.0, until=t + step)
            cpu_ms.append((time.process_time() - c0) * 1000)
            samples.append(r.samples)
        sink.close()
        conn.close()
        print(
            f"- export cycle ({len(series)} series, one interval each): "
            f"{statistics.median(cpu_ms):.1f} ms CPU median "
            f"(min {min(cpu_ms):.1f}, max {max(cpu_ms):.1f}), "
            f"{statistics.median(samples):.0f} samples per cycle"
        )
        print("- hot path: none (the exporter reads the store in its own thread)")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
