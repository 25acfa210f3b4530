"""Metric hot path against prometheus_client and the OpenTelemetry SDK, in one run.

Run: ``python bench/bench_metrics.py`` (from the repository root, after ``make test`` or
``pip install -e '.[dev]'``). Prints ns per operation and ratios; the budgets are in
DESIGN.md ("Performance budgets").
"""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _harness import Row, interleaved, print_table, save_json

N = 200_000


def import_time_ms(module: str, runs: int = 15) -> float:
    """Best wall time of ``python -c 'import module'`` minus an empty interpreter start."""

    # Bytecode caches warm on both sides: without .pyc files sounding's modules would be
    # compiled at every start while the installed peers load theirs.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src")

    def best(code: str) -> float:
        subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
        times = []
        for _ in range(runs):
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import time; t=time.perf_counter(); " + code + "; "
                    "print(time.perf_counter()-t)",
                ],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            )
            times.append(float(out.stdout.strip()))
        return min(times) * 1000

    return best(f"import {module}")


def hot_path_rows() -> list[Row]:
    import prometheus_client as pc
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    import sounding
    from sounding.testing import capture

    reg = pc.CollectorRegistry()
    p_counter = pc.Counter("c", "c", registry=reg)
    p_labelled = pc.Counter("cl", "c", ["format", "device"], registry=reg)
    p_bound = p_labelled.labels(format="wav", device="mic")
    p_hist = pc.Histogram("h", "h", registry=reg)

    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    meter = provider.get_meter("bench")
    o_counter = meter.create_counter("c")
    o_hist = meter.create_histogram("h")
    attrs = {"format": "wav", "device": "mic"}

    rows: list[Row] = []
    with capture():
        s_counter = sounding.counter("bench.c")
        s_bound = s_counter.bind(format="wav", device="mic")
        s_hist = sounding.histogram("bench.h")

        def s_tagged() -> None:
            s_counter.inc(1, {"format": "wav", "device": "mic"})

        def p_tagged() -> None:
            p_labelled.labels(format="wav", device="mic").inc()

        def o_tagged() -> None:
            o_counter.add(1, {"format": "wav", "device": "mic"})

        def measure(ours: Any, **peers: Any) -> tuple[float, dict[str, float]]:
            # In turns, so the machine's load changes affect both sides alike.
            t = interleaved({"ours": ours, **peers}, number=N // 4)
            return t.pop("ours"), {k.replace("_", "-"): v for k, v in t.items()}

        ours, peers = measure(
            s_counter.inc, prometheus_client=p_counter.inc,
            opentelemetry_sdk=lambda: o_counter.add(1),
        )  # fmt: skip
        rows.append(Row("counter inc, no tags", ours, peers, "<= 0.5 x prometheus-client"))
        ours, peers = measure(s_tagged, prometheus_client=p_tagged, opentelemetry_sdk=o_tagged)
        rows.append(Row("counter inc, 2 tags", ours, peers, "<= 0.25 x prometheus-client"))
        ours, peers = measure(
            s_bound.inc, prometheus_client=p_bound.inc,
            opentelemetry_sdk=lambda: o_counter.add(1, attrs),
        )  # fmt: skip
        rows.append(Row("counter inc, bound tags", ours, peers))
        values = [random.Random(1).lognormvariate(0, 1) for _ in range(1024)]
        it = iter(range(10**9))

        def s_obs() -> None:
            s_hist.observe(values[next(it) & 1023])

        def p_obs() -> None:
            p_hist.observe(values[next(it) & 1023])

        def o_obs() -> None:
            o_hist.record(values[next(it) & 1023])

        ours, peers = measure(s_obs, prometheus_client=p_obs, opentelemetry_sdk=o_obs)
        rows.append(Row("histogram observe", ours, peers, "<= 0.5 x prometheus-client"))

        s_timed = s_hist.time()(lambda: None)
        p_timed = p_hist.time()(lambda: None)
        ours, peers = measure(s_timed, prometheus_client=p_timed)
        rows.append(Row("histogram.time() decorator", ours, peers, "<= 0.5 x prometheus-client"))
        sounding.flush()
    return rows


def import_rows() -> list[Row]:
    ours = import_time_ms("sounding")
    # The public names load on first access; show that cost too, for honesty.
    first_use = import_time_ms("sounding; sounding.counter('x').inc()")
    return [
        Row(
            "import + first counter (ms)",
            first_use,
            {"prometheus_client": import_time_ms("prometheus_client")},
            note="what an app pays before its first metric",
        ),
        Row(
            "import (ms)",
            ours,
            {
                "prometheus_client": import_time_ms("prometheus_client"),
                "opentelemetry.sdk.metrics": import_time_ms("opentelemetry.sdk.metrics"),
            },
            "< 0.33 x prometheus_client",
        ),
    ]


def prometheus_bucket_quantile(values: list[float], q: float) -> float:
    """What Prometheus' histogram_quantile() gives from the default buckets."""
    import prometheus_client as pc

    bounds = [*pc.Histogram.DEFAULT_BUCKETS[:-1], math.inf]
    counts = [0] * len(bounds)
    for v in values:
        for i, b in enumerate(bounds):
            if v <= b:
                counts[i] += 1
                break
    rank = q * len(values)
    cum = 0
    lower = 0.0
    for i, b in enumerate(bounds):
        if cum + counts[i] >= rank:
            if math.isinf(b):
                return bounds[i - 1]
            return lower + (b - lower) * (rank - cum) / max(counts[i], 1)
        cum += counts[i]
        lower = b
    return bounds[-2]


def accuracy_rows() -> list[Row]:
    import numpy as np

    from sounding.core.sketch import QuantileSketch

    rng = np.random.default_rng(42)
    datasets = {
        # Latencies in seconds, as prometheus_client's default buckets expect.
        "lognormal": rng.lognormal(mean=-2.5, sigma=1.0, size=200_000),
        "bimodal": np.concatenate(
            [rng.normal(0.05, 0.005, 150_000), rng.normal(0.8, 0.08, 50_000)]
        ).clip(1e-4),
    }
    rows = []
    for name, data in datasets.items():
        sk = QuantileSketch()
        sk.add_many(data.tolist())
        lst = data.tolist()
        for q in (0.5, 0.95, 0.99, 0.999):
            exact = float(np.quantile(data, q, method="lower"))
            ours = sk.quantile(q) or 0.0
            prom = prometheus_bucket_quantile(lst, q)
            rows.append(
                Row(
                    f"{name} p{q * 100:g} rel. error %",
                    abs(ours - exact) / exact * 100,
                    {"prometheus_client default buckets": abs(prom - exact) / exact * 100},
                    "<= 1 %",
                )
            )
    return rows


def main() -> None:
    imp = import_rows()
    print_table("Import time", imp, unit="ms")
    hot = hot_path_rows()
    print_table("Metric hot path", hot)
    acc = accuracy_rows()
    print_table("Quantile accuracy vs exact (numpy)", acc, unit="% relative error")
    out = Path(__file__).resolve().parent / "results" / "metrics.jsonl"
    save_json(str(out), "metrics", imp + hot + acc)


if __name__ == "__main__":
    main()
