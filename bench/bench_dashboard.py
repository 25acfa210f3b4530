"""Dashboard and demo cost: building and rendering the dashboard for 100 series over 7 days
(target: well under a second), writing the HTML report, and the demo's wall time.

    python bench/bench_dashboard.py

The store is filled directly through the writer (5-minute intervals, a sketch per histogram
interval), as seven days of a busy application would leave it. There is no peer tool doing
the same job in-process, so the table shows milliseconds against the budget.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _harness import Row, print_table
from sounding.core.config import MetricsConfig
from sounding.core.sketch import QuantileSketch
from sounding.core.types import IntervalAggregate, MetricType

SERIES = 100
DAYS = 7
STEP = 300
NOW = 1_769_904_000.0  # 2026-02-01T00:00Z


def fill(path: Path, days: int = DAYS) -> None:
    """100 series (60 histograms, 30 counters, 10 gauges) at 5-minute intervals for ``days``."""
    from sounding.storage import SQLiteSink

    rng = random.Random(1)
    sink = SQLiteSink(path, MetricsConfig(aggregation_interval=STEP))
    kinds = [MetricType.HISTOGRAM] * 60 + [MetricType.COUNTER] * 30 + [MetricType.GAUGE] * 10
    start = NOW - days * 86400
    for block in range(days * 24):
        batch: list[IntervalAggregate] = []
        for k in range(3600 // STEP):
            t = start + block * 3600 + k * STEP
            for i, kind in enumerate(kinds):
                name = f"app.area{i // 10}.metric{i}"
                if kind is MetricType.HISTOGRAM:
                    sk = QuantileSketch()
                    sk.add_many(rng.lognormvariate(3.0, 0.4) for _ in range(8))
                    batch.append(
                        IntervalAggregate(name, kind, (), t, t + STEP, count=sk.count,
                                          sum=sk.sum, min=sk.min, max=sk.max, sketch=sk, unit="ms")
                    )  # fmt: skip
                elif kind is MetricType.COUNTER:
                    n = rng.randint(0, 20)
                    batch.append(IntervalAggregate(name, kind, (), t, t + STEP, count=n, sum=n))
                else:
                    v = rng.uniform(100, 200)
                    batch.append(
                        IntervalAggregate(name, kind, (), t, t + STEP, count=1, sum=v, min=v,
                                          max=v, last=v)
                    )  # fmt: skip
        sink.write(batch, [])
    sink.close()


def best_ms(fn: object, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def main() -> None:
    from sounding.presentation.dashboard import build_model, render_text
    from sounding.presentation.demo import run_demo
    from sounding.presentation.report import build_report, render_report
    from sounding.storage import open_store

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "telemetry.db"
        t0 = time.perf_counter()
        fill(path)
        fill_s = time.perf_counter() - t0
        with open_store(path) as store:
            model = build_model(store, now=NOW)
            assert len(model.rows) == SERIES, len(model.rows)
            build = best_ms(lambda: build_model(store, now=NOW))
            render = best_ms(lambda: render_text(model, width=160))
            report_render = best_ms(lambda: render_report(model), repeat=3)
        path30 = Path(tmp) / "telemetry-30d.db"
        fill(path30, days=30)
        with open_store(path30) as store:
            report_model = best_ms(
                lambda: build_report(store, since="30d", now=NOW), repeat=3
            )
        t0 = time.perf_counter()
        run_demo(days=14, seed=1, data_dir=Path(tmp) / "demo")
        demo_s = time.perf_counter() - t0
    rows = [
        Row("dashboard: build model (100 series, 7 d)", build),
        Row("dashboard: render text (160 columns)", render),
        Row("dashboard: build + render", build + render, limit=300.0),
        Row("report: build + render HTML, 30 d", report_model, limit=1000.0),
        Row("report: render HTML only (7 d model)", report_render),
        Row("demo: 14 days, seed 1 (wall)", demo_s * 1000, target="< 15000 ms"),
    ]
    print(f"(filled the 100-series store in {fill_s:.1f} s)")
    print_table("dashboard, report and demo", rows, unit="ms")


if __name__ == "__main__":
    main()
