"""Shared helpers for the benchmarks: timing loops and a side-by-side table with ratios.

Every benchmark script measures sounding and its peers in the same process run and reports
ns per operation and the ratio ``sounding / peer`` (below 1.0 means sounding is faster).
Timings are the best of several repeats of a tight loop (the least disturbed run), which is
what ``timeit`` recommends for comparing implementations.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

__all__ = ["Row", "best_ns_per_op", "print_table", "save_json"]


def best_ns_per_op(fn: Callable[[], object], number: int = 100_000, repeat: int = 5) -> float:
    """Best-of-``repeat`` nanoseconds per call of ``fn`` over ``number`` calls."""
    best = float("inf")
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            t0 = time.perf_counter_ns()
            for _ in range(number):
                fn()
            best = min(best, (time.perf_counter_ns() - t0) / number)
    finally:
        if gc_was:
            gc.enable()
    return best


@dataclass
class Row:
    """One comparison: sounding's cost against each peer's for the same operation."""

    operation: str
    ours_ns: float
    peers: dict[str, float] = field(default_factory=dict)
    target: str = ""  # e.g. "<= 0.5 x prometheus_client"
    note: str = ""

    def ratio(self, peer: str) -> float:
        return self.ours_ns / self.peers[peer] if self.peers.get(peer) else float("nan")


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def print_table(title: str, rows: list[Row], unit: str = "ns/op") -> None:
    """Print rows as a plain-text table: ours, each peer, and ratio ours/peer."""
    print(f"\n## {title}  ({unit}; ratio = sounding / peer, lower is better)")
    print(f"python {sys.version.split()[0]} on {os.cpu_count()} cores")
    for r in rows:
        peers = "  ".join(
            f"{name}={_fmt(ns)} (ratio {r.ratio(name):.2f})" for name, ns in r.peers.items()
        )
        tgt = f"  target {r.target}" if r.target else ""
        note = f"  [{r.note}]" if r.note else ""
        print(f"- {r.operation:<38} sounding={_fmt(r.ours_ns)}  {peers}{tgt}{note}")


def save_json(path: str, title: str, rows: list[Row]) -> None:
    """Append the rows to a JSON file (bench/results/ is git-ignored)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    data = {"title": title, "rows": [asdict(r) for r in rows], "time": time.time()}
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(data) + "\n")
