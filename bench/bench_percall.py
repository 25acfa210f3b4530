"""Benchmark: the objects the docs create per call, and the cardinality-overflow path.

Run: ``python bench/bench_percall.py`` (from the repository, with the bench extra).

Measured as a user pays it, each against its peer in the same run (interleaved):

- ``with PerformanceTimer("op"):`` and ``with operation_boundary("op"):`` *created on every
  call*, as docs/timing.md and docs/errors.md show them, against prometheus_client's
  ``with Histogram.time():`` (budget 0.5x) and a ``tenacity.retry``-decorated call (0.1x).
- ``with h.time():`` against prometheus_client's ``with h.time():`` (0.5x).
- A counter call with a new tag value once the cardinality limit is reached: at most 1 µs
  and at most 3x a call with known tags written the same way (a dict literal per call).
"""

from __future__ import annotations

import itertools
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _harness import Row, interleaved, print_table


def main() -> list[Row]:
    """Measure and print the per-call rows."""
    import prometheus_client
    import tenacity

    import sounding
    from sounding import _runtime
    from sounding.collection.boundary import operation_boundary
    from sounding.collection.timing import PerformanceTimer
    from sounding.testing import MemorySink

    tmp = tempfile.TemporaryDirectory(prefix="sounding-bench-")
    sounding.configure(data_dir=tmp.name)
    rt = _runtime.get_runtime()
    rt.set_manual(True)
    rt.set_sink(MemorySink())

    registry = prometheus_client.CollectorRegistry()
    prom_hist = prometheus_client.Histogram("bench_block_seconds", "block", registry=registry)
    ours_hist = sounding.histogram("bench.block.duration", unit="ms")

    def work(x: int) -> int:
        return x + 1

    ten = tenacity.retry(
        stop=tenacity.stop_after_attempt(4),
        wait=tenacity.wait_random_exponential(multiplier=0.1, max=30),
        retry=tenacity.retry_if_exception_type(Exception),
        reraise=True,
    )(work)

    def timer_per_call() -> None:
        with PerformanceTimer("bench.op"):
            pass

    def boundary_per_call() -> None:
        with operation_boundary("bench.boundary"):
            pass

    def ours_time() -> None:
        with ours_hist.time():
            pass

    def prom_time() -> None:
        with prom_hist.time():
            pass

    def tenacity_call() -> None:
        ten(1)

    n = 20_000
    t = interleaved(
        {
            "timer": timer_per_call,
            "boundary": boundary_per_call,
            "ours_time": ours_time,
            "prom_time": prom_time,
            "tenacity": tenacity_call,
        },
        number=n,
    )
    peers = {"prom with h.time()": t["prom_time"], "tenacity.retry call": t["tenacity"]}
    rows = [
        Row(
            "PerformanceTimer(op) made per call",
            t["timer"],
            dict(peers),
            budgets={"prom with h.time()": 0.5, "tenacity.retry call": 0.1},
        ),
        Row(
            "operation_boundary(op) made per call",
            t["boundary"],
            dict(peers),
            budgets={"prom with h.time()": 0.5, "tenacity.retry call": 0.1},
        ),
        Row(
            "with h.time()",
            t["ours_time"],
            {"prom with h.time()": t["prom_time"]},
            budget=0.5,
        ),
    ]

    # Cardinality overflow: fill the series to the limit, then every call brings a new value.
    # Both calls are written alike, ``c.inc(1, {"user_tier": next(values)})``: the new values
    # are made before the timing (formatting them is the benchmark's work, not sounding's),
    # and the known value comes from an iterator too.
    limit = sounding.get_settings().cardinality_limit
    c = sounding.counter("bench.cardinality")
    for i in range(limit + 10):
        c.inc(1, {"user_tier": f"t{i}"})
    repeat = 7
    fresh = iter([f"n{i}" for i in range(n * repeat + 1)])
    same = itertools.repeat("t5")
    known = {"user_tier": "t5"}

    def overflow() -> None:
        c.inc(1, {"user_tier": next(fresh)})

    def known_tags() -> None:
        c.inc(1, {"user_tier": next(same)})

    def known_one_dict() -> None:
        c.inc(1, known)

    o = interleaved(
        {"over": overflow, "known": known_tags, "one": known_one_dict}, number=n, repeat=repeat
    )
    rows.append(
        Row(
            "new tag value past the limit",
            o["over"],
            {"known tags": o["known"]},
            budget=3.0,
            limit=1000.0,
            note=f"known tags in one dict made once: {o['one']:,.0f} ns",
        )
    )
    print_table("Created per call, as the docs show them; cardinality overflow", rows)
    sounding.reset()
    tmp.cleanup()
    return rows


if __name__ == "__main__":
    main()
