"""Benchmark: a scrubbed structured log event and the timing decorator, against their peers.

Run: ``python bench/bench_log_timing.py`` (from the repository, with the bench extra).

(a) One structured event, ``log.info("recording.saved", category=..., format="wav",
    duration_ms=12.5)``, *including its persistence*: each sample logs a batch of events and
    calls ``sounding.flush()``, which writes them as JSON lines and into the SQLite store (the
    background writer's work, attributed to the events), and the cost is divided by the batch
    size. Peers in the same run: stdlib :mod:`logging` to a ``FileHandler`` with a
    ``Formatter`` (it writes and flushes every record), and structlog's ``JSONRenderer`` to a
    ``PrintLogger`` on a real file. Target: at most stdlib's cost. Below the level: a
    ``debug`` call with the level at info, against stdlib's (target: at most stdlib's).
(b) ``@track_execution_time`` on a trivial function against prometheus_client's
    ``Histogram.time()`` decorator and an OpenTelemetry SDK histogram ``record`` around the
    call; ``with PerformanceTimer(...)`` (one reused object) against ``with Histogram.time()``.
    Target: at most half of prometheus_client's.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _harness import Row, interleaved, print_table

BATCH = 2_000


def bench_log(tmp: Path) -> list[Row]:
    import structlog

    import sounding
    from sounding import _runtime
    from sounding.collection import events
    from sounding.collection.log import get_logger
    from sounding.core.types import EventCategory

    rows: list[Row] = []
    sounding.configure(data_dir=tmp / "data", app_version="1.4.2", log_level="info")
    rt = _runtime.get_runtime()
    rt.set_manual(True)  # no background thread: the flush below is the writer's work
    log = get_logger("recorder")
    storage = EventCategory.STORAGE
    log.info("warm.up")  # the first event starts the session
    sounding.flush()

    def ours() -> None:
        info = log.info
        for _ in range(BATCH):
            info("recording.saved", category=storage, format="wav", duration_ms=12.5)
        sounding.flush()  # JSON lines + SQLite, as the background writer does

    def ours_calls_only() -> None:
        info = log.info
        for _ in range(BATCH):
            info("recording.saved", category=storage, format="wav", duration_ms=12.5)
        events.buffer.clear()

    def ours_filtered() -> None:
        debug = log.debug
        for _ in range(BATCH):
            debug("recording.saved", category=storage, format="wav", duration_ms=12.5)

    # stdlib logging: a FileHandler writing formatted lines to a real file.
    std = logging.getLogger("bench.stdlib")
    std.propagate = False
    std.setLevel(logging.INFO)
    handler = logging.FileHandler(tmp / "stdlib.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    std.addHandler(handler)

    def stdlib() -> None:
        info = std.info
        for _ in range(BATCH):
            info("recording.saved format=%s duration_ms=%s", "wav", 12.5)

    def stdlib_filtered() -> None:
        debug = std.debug
        for _ in range(BATCH):
            debug("recording.saved format=%s duration_ms=%s", "wav", 12.5)

    # structlog: JSON lines to a real file, its documented fast configuration.
    sl_file = open(tmp / "structlog.jsonl", "w", encoding="utf-8")  # noqa: SIM115
    sl = structlog.wrap_logger(
        structlog.PrintLogger(file=sl_file),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=True,
    )

    def structlog_json() -> None:
        info = sl.info
        for _ in range(BATCH):
            info("recording.saved", category="storage", format="wav", duration_ms=12.5)
        sl_file.flush()

    def structlog_filtered() -> None:
        debug = sl.debug
        for _ in range(BATCH):
            debug("recording.saved", category="storage", format="wav", duration_ms=12.5)

    for fn in (ours, stdlib, structlog_json):  # warm caches, files and code paths
        fn()
    full = interleaved(
        {"ours": ours, "calls": ours_calls_only, "std": stdlib, "sl": structlog_json},
        number=1,
    )
    ns = {k: v / BATCH for k, v in full.items()}
    peers = {"stdlib_logging": ns["std"], "structlog": ns["sl"]}
    rows.append(
        Row(
            "log event, JSON lines + SQLite",
            ns["ours"],
            peers,
            target="<= 1.0 x stdlib_logging",
        )
    )
    rows.append(
        Row(
            "log event, call only (no flush)",
            ns["calls"],
            dict(peers),
            note="the host thread's share",
        )
    )
    dropped = interleaved(
        {"ours": ours_filtered, "std": stdlib_filtered, "sl": structlog_filtered}, number=1
    )
    rows.append(
        Row(
            "log event below the level (dropped)",
            dropped["ours"] / BATCH,
            {"stdlib_logging": dropped["std"] / BATCH, "structlog": dropped["sl"] / BATCH},
            budget=1.0,
            against="stdlib_logging",
        )
    )
    std.removeHandler(handler)
    handler.close()
    sl_file.close()
    rt.set_manual(False)
    sounding.reset()
    return rows


def bench_timing() -> list[Row]:
    import prometheus_client
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from sounding.collection.timing import PerformanceTimer, track_execution_time
    from sounding.testing import capture

    rows: list[Row] = []
    with capture():

        def work() -> int:
            return 1

        ours = track_execution_time("bench.work")(work)

        registry = prometheus_client.CollectorRegistry()
        prom_hist = prometheus_client.Histogram(
            "bench_work_seconds", "work duration", registry=registry
        )
        prom = prom_hist.time()(work)

        reader = InMemoryMetricReader()
        meter = MeterProvider(metric_readers=[reader]).get_meter("bench")
        otel_hist = meter.create_histogram("bench.work.duration", unit="ms")
        ok = {"status": "ok"}
        perf_counter = time.perf_counter

        def otel() -> int:
            start = perf_counter()
            result = work()
            otel_hist.record((perf_counter() - start) * 1000.0, ok)
            return result

        timer = PerformanceTimer("bench.block")

        def ours_block() -> None:
            with timer:
                pass

        prom_block_hist = prometheus_client.Histogram(
            "bench_block_seconds", "block duration", registry=registry
        )

        def prom_block() -> None:
            with prom_block_hist.time():
                pass

        n = 50_000
        dec = interleaved({"ours": ours, "prom": prom, "otel": otel, "bare": work}, number=n)
        rows.append(
            Row(
                "@track_execution_time (trivial fn)",
                dec["ours"],
                {"prometheus_client": dec["prom"], "opentelemetry_sdk": dec["otel"]},
                target="<= 0.5 x prometheus_client",
                note=f"bare call {dec['bare']:,.0f} ns",
            )
        )
        block = interleaved({"ours": ours_block, "prom": prom_block}, number=n)
        rows.append(
            Row(
                "PerformanceTimer, one object reused",
                block["ours"],
                {"prometheus_client": block["prom"]},
            )
        )
    return rows


def main() -> None:
    """Run both comparisons and print the tables."""
    with tempfile.TemporaryDirectory() as tmp:
        log_rows = bench_log(Path(tmp))
    print_table("Structured log event (scrubbed, persisted) and below the level", log_rows)
    print_table("Timing decorator and timer", bench_timing())
    if os.environ.get("SOUNDING_BENCH_JSON"):
        from _harness import save_json

        save_json(os.environ["SOUNDING_BENCH_JSON"], "log_timing", log_rows)


if __name__ == "__main__":
    main()
