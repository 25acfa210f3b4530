"""Shared helpers for the benchmarks: timing loops and one table of figures and budgets.

Every benchmark script measures sounding and its peers in the same process run and reports
the cost per operation and the ratio ``sounding / peer`` (below 1.0 means sounding is
faster). Timings are the best of several repeats of a tight loop (the least disturbed run),
which is what ``timeit`` recommends for comparing implementations.

A :class:`Row` may carry a budget: ``budget``/``against`` (at most ``budget`` times the
peer ``against``) or ``limit`` (at most ``limit`` in the row's unit). ``target`` strings
such as ``"<= 0.5 x prometheus_client"`` or ``"< 1000 ms"`` are read into those fields.
:func:`print_table` prints a section and remembers its rows; ``bench/run.py`` prints every
remembered row in one table and, with ``--check``, exits non-zero when one is OVER.
"""

from __future__ import annotations

import gc
import json
import math
import os
import re
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

__all__ = [
    "COLLECTED",
    "Row",
    "best_ns_per_op",
    "fmt_value",
    "interleaved",
    "print_summary",
    "print_table",
    "save_json",
]

#: Every row passed to print_table, with its section title (run.py prints them together).
COLLECTED: list[tuple[str, Row]] = []
#: Set by run.py: sections are collected, not printed one by one.
QUIET = False


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


def interleaved(
    fns: dict[str, Callable[[], object]], number: int, repeat: int = 7
) -> dict[str, float]:
    """Best-of-``repeat`` ns per call of each function, measured in turns.

    On a shared machine the load changes from second to second; measuring the candidates
    round-robin (rather than one after the other) exposes them to the same conditions, so
    their ratio is steadier than their absolute figures.
    """
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            best[name] = min(best[name], best_ns_per_op(fn, number=number, repeat=1))
    return best


_RATIO_TARGET = re.compile(r"^\s*<=?\s*([0-9.]+)\s*x\s+(.+?)\s*$")
_ABS_TARGET = re.compile(r"^\s*<=?\s*([0-9.,]+)\s*(\S+)")


@dataclass
class Row:
    """One comparison: sounding's cost against each peer's for the same operation."""

    operation: str
    ours_ns: float  # in ``unit`` (the name is historical: most rows are nanoseconds)
    peers: dict[str, float] = field(default_factory=dict)
    target: str = ""  # e.g. "<= 0.5 x prometheus_client"
    note: str = ""
    budget: float | None = None  # at most this ratio to the peer ``against``
    against: str | None = None  # default: the first peer
    limit: float | None = None  # at most this value, in ``unit``
    unit: str = ""  # "" = the section's unit
    budgets: dict[str, float] = field(default_factory=dict)  # peer -> the largest ratio

    def __post_init__(self) -> None:
        if self.budget is None and self.limit is None and self.target:
            m = _RATIO_TARGET.match(self.target)
            if m:
                self.budget = float(m.group(1))
                self.against = m.group(2)
            else:
                m = _ABS_TARGET.match(self.target)
                if m:
                    self.limit = float(m.group(1).replace(",", ""))
        if self.budget is not None:
            against = self.against or next(iter(self.peers), "")
            if against not in self.peers:
                # A target written as "<= 0.1 x tenacity" names the peer "tenacity.retry".
                against = next((p for p in self.peers if p.startswith(against)), against)
            self.budgets.setdefault(against, self.budget)
        unknown = [p for p in self.budgets if p not in self.peers]
        if unknown:
            # A budget on a peer that was not measured would read as OVER (a NaN ratio).
            raise ValueError(f"row {self.operation!r}: budget on unmeasured peer(s) {unknown}")

    def ratio(self, peer: str) -> float:
        return self.ours_ns / self.peers[peer] if self.peers.get(peer) else float("nan")

    def peer_status(self, peer: str) -> str:
        if peer not in self.budgets:
            return ""
        return "OK" if self.ratio(peer) <= self.budgets[peer] else "OVER"

    def limit_status(self) -> str:
        if self.limit is None:
            return ""
        return "OK" if self.ours_ns <= self.limit else "OVER"

    def statuses(self) -> list[str]:
        """``OK``/``OVER`` for every budget of the row (the limit, then each peer's)."""
        out = [self.limit_status()] + [self.peer_status(p) for p in self.budgets]
        return [s for s in out if s]

    def status(self) -> str:
        """``OVER`` if any budget is exceeded, ``OK`` if all are met, ``""`` without one."""
        st = self.statuses()
        return "" if not st else ("OVER" if "OVER" in st else "OK")

    def budget_text(self) -> str:
        parts = [f"<={b:g}x {p}" for p, b in self.budgets.items()]
        if self.limit is not None:
            parts.insert(0, "<=" + fmt_value(self.limit, self.unit))
        return ", ".join(parts)


def fmt_value(x: float, unit: str) -> str:
    """A figure with its unit, scaled for reading (``1.43 µs``, ``180 kB``, ``37 ms``)."""
    if math.isnan(x):
        return "n/a"
    if unit in ("ns", "ns/op", "ns/obs"):
        for scale, name in ((1e9, "s"), (1e6, "ms"), (1e3, "µs")):
            if abs(x) >= scale:
                return f"{x / scale:.3g} {name}"
        return f"{x:.0f} ns"
    if unit == "ms":
        return f"{x / 1e3:.3g} s" if abs(x) >= 1e4 else f"{x:.3g} ms"
    if unit in ("bytes", "B"):
        for scale, name in ((1e6, "MB"), (1e3, "kB")):
            if abs(x) >= scale:
                return f"{x / scale:.3g} {name}"
        return f"{x:.0f} B"
    if unit.startswith("%"):
        return f"{x:.3g} %"
    if unit == "x":
        return f"x{x:.3g}"
    return f"{x:.3g} {unit}".strip()


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def print_table(title: str, rows: list[Row], unit: str = "ns/op") -> None:
    """Print rows as a plain-text section (unless run.py collects them) and remember them."""
    for r in rows:
        if not r.unit:
            r.unit = unit
        COLLECTED.append((title, r))
    if QUIET:
        return
    print(f"\n## {title}  ({unit}; ratio = sounding / peer, lower is better)")
    print(f"python {sys.version.split()[0]} on {os.cpu_count()} cores")
    for r in rows:
        peers = "  ".join(
            f"{name}={_fmt(ns)} (ratio {r.ratio(name):.2f})" for name, ns in r.peers.items()
        )
        tgt = f"  target {r.budget_text()} {r.status()}" if r.status() else ""
        note = f"  [{r.note}]" if r.note else ""
        print(f"- {r.operation:<38} sounding={_fmt(r.ours_ns)}  {peers}{tgt}{note}")


_W = 38  # label column; the whole line stays within 80 columns


def _line(label: str, ours: str, peer: str, ratio: str, budget: str, status: str) -> str:
    return f"{label[:_W]:<{_W}} {ours:>9} {peer:>9} {ratio:>5} {budget:>8} {status:>4}"


def print_summary(collected: list[tuple[str, Row]] | None = None) -> int:
    """Print every collected row in one table; return the number of budgets OVER."""
    items = COLLECTED if collected is None else collected
    print(f"\n# sounding benchmarks: python {sys.version.split()[0]}, {os.cpu_count()} cores")
    print("# ratio = sounding / peer, lower is better; budget: on the ratio or the figure")
    head = _line("what (and each peer, same run)", "sounding", "peer", "ratio", "budget", "")
    print(head)
    section = None
    for title, r in items:
        if title != section:
            section = title
            print(f"-- {title} " + "-" * max(0, len(head) - len(title) - 4))
        limit = "<=" + fmt_value(r.limit, r.unit) if r.limit is not None else ""
        print(_line(r.operation, fmt_value(r.ours_ns, r.unit), "", "", limit, r.limit_status()))
        for name, value in r.peers.items():
            budget = f"<={r.budgets[name]:g}x" if name in r.budgets else ""
            print(
                _line(
                    f"  vs {name}",
                    "",
                    fmt_value(value, r.unit),
                    f"{r.ratio(name):.2f}",
                    budget,
                    r.peer_status(name),
                )
            )
        if r.note:
            print(textwrap.fill(f"({r.note})", 78, initial_indent="  ", subsequent_indent="   "))
    statuses = [s for _, r in items for s in r.statuses()]
    over = statuses.count("OVER")
    print(f"# {len(statuses) - over} of {len(statuses)} budgets OK, {over} OVER")
    return over


def save_json(path: str, title: str, rows: list[Row]) -> None:
    """Append the rows to a JSON file (bench/results/ is git-ignored)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    data = {"title": title, "rows": [asdict(r) for r in rows], "time": time.time()}
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(data) + "\n")
