"""Benchmark: the quantile sketch against ddsketch (the reference DDSketch implementation).

Run: ``python bench/bench_sketch.py`` (needs ``ddsketch``, in the bench extra).

Both sketches hold the same 10,000 log-normal values at 1 % relative accuracy. Measured in
turns in one run: ``quantile(0.95)``, merging another such sketch, serialising (ours:
``to_bytes``; ddsketch: its protobuf message, ``SerializeToString``) and reading back.
Budgets: no slower than ddsketch; the serialised size is shown (ours: format 4, one
narrow count per bucket of the run, deflated when that pays).

A sketch keeps its serialised bytes and its running totals until it changes, so asking
again is nearly free; the rows "... just after a change" show what the work itself costs:
both sides add one value first (the next of the data's values, in turn), so nothing is
reused. The same rows for 100,000 values show counts past one byte (format 5). Budgets:
no slower than ddsketch. The fold rows show what a histogram pays per observation when
it folds its buffer: 256 of the log-normal values (wide: indexed value by value) and 256
durations of one operation (narrow: counted by bisections at the bucket edges).
"""

from __future__ import annotations

import itertools
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _harness import Row, interleaved, print_table


def main() -> list[Row]:
    """Measure and print the sketch rows."""
    from ddsketch import DDSketch
    from ddsketch.pb.proto import DDSketchProto

    from sounding.core.sketch import QuantileSketch

    rng = random.Random(1)
    values = [rng.lognormvariate(0, 1) for _ in range(10_000)]
    others = [rng.lognormvariate(0, 1) for _ in range(10_000)]
    ours, ours_other = QuantileSketch(), QuantileSketch()
    ours.add_many(values)
    ours_other.add_many(others)
    dd, dd_other = DDSketch(0.01), DDSketch(0.01)
    for v in values:
        dd.add(v)
    for v in others:
        dd_other.add(v)
    ours_bytes = ours.to_bytes()
    dd_bytes = DDSketchProto.to_proto(dd).SerializeToString()
    from ddsketch.pb.ddsketch_pb2 import DDSketch as DDSketchMessage

    def dd_read() -> object:
        msg = DDSketchMessage()
        msg.ParseFromString(dd_bytes)
        return DDSketchProto.from_proto(msg)

    # Built like ``ours`` (one batch of values), then changed by each timed call: one more
    # of the data's values, the same on both sides.
    changing, dd_changing = QuantileSketch(), DDSketch(0.01)
    changing.add_many(values)
    for v in values:
        dd_changing.add(v)
    more = itertools.cycle(values).__next__
    big_values = [rng.lognormvariate(0, 1) for _ in range(100_000)]
    big, dd_big = QuantileSketch(), DDSketch(0.01)
    big.add_many(big_values)
    for v in big_values:
        dd_big.add(v)
    more_big = itertools.cycle(big_values).__next__
    big_bytes = big.to_bytes()
    # A histogram folds its buffer into the sketch 256 values at a time.
    batch = values[:256]
    folding, dd_folding = QuantileSketch(), DDSketch(0.01)
    # The durations of one operation (a spread of about +-20 %, in ms): a narrow batch,
    # counted by bisections at the bucket edges.
    durations = [0.12 * rng.lognormvariate(0, 0.2) for _ in range(256)]
    timing, dd_timing = QuantileSketch(), DDSketch(0.01)
    n = 200
    t = interleaved(
        {
            "q": lambda: ours.quantile(0.95),
            "dq": lambda: dd.get_quantile_value(0.95),
            "mq": lambda: merge_two(QuantileSketch(), ours, ours_other).quantile(0.95),
            "dmq": lambda: merge_two(DDSketch(0.01), dd, dd_other).get_quantile_value(0.95),
            "m": lambda: merge_two(QuantileSketch(), ours, ours_other),
            "dm": lambda: merge_two(DDSketch(0.01), dd, dd_other),
            "s": ours.to_bytes,
            "ds": lambda: DDSketchProto.to_proto(dd).SerializeToString(),
            "r": lambda: QuantileSketch.from_bytes(ours_bytes),
            "dr": dd_read,
            "sc": lambda: (changing.add(more()), changing.to_bytes()),
            "dsc": lambda: (
                dd_changing.add(more()),
                DDSketchProto.to_proto(dd_changing).SerializeToString(),
            ),
            "f": lambda: folding.add_many(batch),
            "df": lambda: [dd_folding.add(v) for v in batch],
            "fd": lambda: timing.add_many(durations),
            "dfd": lambda: [dd_timing.add(v) for v in durations],
            "qc": lambda: (changing.add(more()), changing.quantile(0.95)),
            "dqc": lambda: (dd_changing.add(more()), dd_changing.get_quantile_value(0.95)),
            "bsc": lambda: (big.add(more_big()), big.to_bytes()),
            "dbsc": lambda: (
                dd_big.add(more_big()),
                DDSketchProto.to_proto(dd_big).SerializeToString(),
            ),
            "bqc": lambda: (big.add(more_big()), big.quantile(0.95)),
            "dbqc": lambda: (dd_big.add(more_big()), dd_big.get_quantile_value(0.95)),
        },
        number=n,
    )

    rows = [
        Row(
            "quantile(0.95), asked again",
            t["q"],
            {"ddsketch": t["dq"]},
            budget=1.0,
            note="running totals kept until the next change (a report asks p50, p95, p99)",
        ),
        Row("merge two, then quantile(0.95)", t["mq"], {"ddsketch": t["dmq"]}, budget=1.0),
        Row("new sketch, merge two into it", t["m"], {"ddsketch": t["dm"]}, budget=1.0),
        Row(
            "serialise",
            t["s"],
            {"ddsketch protobuf": t["ds"]},
            budget=1.0,
            note=f"{len(ours_bytes):,} bytes vs {len(dd_bytes):,}; {ours.bucket_count} buckets",
        ),
        Row("read back", t["r"], {"ddsketch protobuf": t["dr"]}, budget=1.0),
        Row(
            "fold 256 values (add_many), per value",
            t["f"] / len(batch),
            {"ddsketch add()": t["df"] / len(batch)},
            note="what a histogram pays per observation when its buffer is folded",
        ),
        Row(
            "fold 256 durations of one operation",
            t["fd"] / len(durations),
            {"ddsketch add()": t["dfd"] / len(durations)},
            note="per value; +-20 % around 0.12 ms: counted at the bucket edges",
        ),
        Row(
            "serialise, just changed",
            t["sc"],
            {"ddsketch protobuf": t["dsc"]},
            budget=1.0,
            note="one value added first on both sides: nothing kept, the runs are written",
        ),
        Row(
            "quantile(0.95), just changed",
            t["qc"],
            {"ddsketch": t["dqc"]},
            budget=1.0,
            note="one value added first: nothing kept, the run is scanned",
        ),
        Row(
            "serialise, just changed, 100k values",
            t["bsc"],
            {"ddsketch protobuf": t["dbsc"]},
            budget=1.0,
            note=f"counts past one byte: {len(big_bytes):,} bytes (format {big_bytes[0]}) vs "
            f"{len(DDSketchProto.to_proto(dd_big).SerializeToString()):,}",
        ),
        Row(
            "quantile(0.95), just changed, 100k",
            t["bqc"],
            {"ddsketch": t["dbqc"]},
            budget=1.0,
        ),
    ]
    print_table("Quantile sketch vs ddsketch (10k values, 1 %)", rows)
    return rows


def merge_two(into: Any, a: Any, b: Any) -> Any:
    """A fresh sketch with ``a`` and ``b`` merged in (what a query over two intervals does)."""
    into.merge(a)
    into.merge(b)
    return into


if __name__ == "__main__":
    main()
