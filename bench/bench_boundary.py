"""Benchmark: ``operation_boundary`` and ``SentryContext`` on calls that succeed.

Peers, measured in the same run: ``tenacity.retry`` and ``stamina.retry`` around the same
function (each configured to retry, as the boundary is), and the bare call for reference.
Target (DESIGN.md): the boundary costs at most a tenth of ``tenacity.retry``.

Run: ``python bench/bench_boundary.py``
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _harness import Row, best_ns_per_op, print_table, save_json


def _setup(data_dir: str) -> None:
    import sounding
    from sounding import _runtime
    from sounding.testing import MemorySink

    # Keep the benchmark off the user's data directory and measure the call, not the store.
    sounding.configure(data_dir=data_dir)
    _runtime.get_runtime().set_manual(True)
    _runtime.get_runtime().set_sink(MemorySink())


def main() -> None:
    """Print ns per successful call for sounding and its peers, with ratios."""
    import stamina
    import tenacity

    import sounding
    from sounding.collection.boundary import operation_boundary
    from sounding.collection.errors import SentryContext

    tmp = tempfile.TemporaryDirectory(prefix="sounding-bench-")
    _setup(tmp.name)
    stamina.set_testing(False)

    def work(x: int) -> int:
        return x + 1

    bounded = operation_boundary("bench.work")(work)
    bounded_retry = operation_boundary(
        "bench.work_retry", retry_on_failure=True, max_retries=3, retry_delay=0.1
    )(work)
    bounded_fallback = operation_boundary("bench.work_fallback", fallback_value=0, reraise=False)(
        work
    )
    ten = tenacity.retry(
        stop=tenacity.stop_after_attempt(4),
        wait=tenacity.wait_random_exponential(multiplier=0.1, max=30),
        retry=tenacity.retry_if_exception_type(Exception),
        reraise=True,
    )(work)
    sta = stamina.retry(on=Exception, attempts=4, wait_initial=0.1)(work)

    def with_context() -> int:
        with SentryContext(operation="bench.ctx", component="bench") as ctx:
            ctx.add_breadcrumb("step")
            return work(1)

    number = 50_000
    bare = best_ns_per_op(lambda: work(1), number)
    ns_ten = best_ns_per_op(lambda: ten(1), number // 5)
    ns_sta = best_ns_per_op(lambda: sta(1), number // 5)
    peers = {"tenacity.retry": ns_ten, "stamina.retry": ns_sta}
    rows = [
        Row(
            "operation_boundary, success",
            best_ns_per_op(lambda: bounded(1), number),
            dict(peers),
            "<= 0.1 x tenacity",
        ),
        Row(
            "operation_boundary(retry), success",
            best_ns_per_op(lambda: bounded_retry(1), number),
            dict(peers),
            "<= 0.1 x tenacity",
        ),
        Row(
            "operation_boundary(fallback), success",
            best_ns_per_op(lambda: bounded_fallback(1), number),
            dict(peers),
            "<= 0.1 x tenacity",
        ),
        Row(
            "SentryContext + breadcrumb, success",
            best_ns_per_op(with_context, number),
            dict(peers),
            "<= 0.1 x tenacity",
        ),
    ]

    async def awork(x: int) -> int:
        return x + 1

    abounded = operation_boundary("bench.awork", retry_on_failure=True)(awork)
    aten = tenacity.retry(stop=tenacity.stop_after_attempt(4), reraise=True)(awork)

    async def loop(fn: object, n: int) -> None:
        for _ in range(n):
            await fn(1)  # type: ignore[operator]

    def best_async(fn: object, n: int, repeat: int = 5) -> float:
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter_ns()
            asyncio.run(loop(fn, n))
            best = min(best, (time.perf_counter_ns() - t0) / n)
        return best

    rows.append(
        Row(
            "async operation_boundary(retry), success",
            best_async(abounded, number // 5),
            {"tenacity.retry (async)": best_async(aten, number // 5)},
            "<= 0.1 x tenacity",
        )
    )
    print_table("operation_boundary on a call that succeeds", rows)
    print(f"(bare call: {bare:,.0f} ns/op; every figure includes it)")
    out = Path(__file__).resolve().parent / "results" / "boundary.jsonl"
    save_json(str(out), "boundary", rows)
    sounding.reset()
    tmp.cleanup()


if __name__ == "__main__":
    main()
