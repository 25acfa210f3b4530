"""Round-trips of the hand-built remote-write encoding and the snappy block codec."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from sounding.core.sketch import QuantileSketch
from sounding.core.types import MetricType
from sounding.exporters._convert import BucketGrid, metric_name
from sounding.exporters.remote_write import (
    _snappy_literal,
    decode_write_request,
    encode_write_request,
    snappy_decompress,
)

label = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
labels = st.lists(st.tuples(label, label), min_size=1, max_size=6, unique_by=lambda p: p[0]).map(
    lambda ls: tuple(sorted(ls))
)
samples = st.lists(
    st.tuples(st.integers(-(2**62), 2**62), st.floats(allow_nan=False)), min_size=1, max_size=8
)


@given(st.dictionaries(labels, samples, max_size=8))
def test_write_request_round_trip(
    series: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]],
) -> None:
    """decode(encode(series)) gives back every label and sample, negative timestamps too."""
    assert decode_write_request(encode_write_request(series)) == series


@given(st.binary(max_size=200_000))
def test_literal_snappy_round_trip(data: bytes) -> None:
    """The literal-only snappy block decodes to the input."""
    assert snappy_decompress(_snappy_literal(data)) == data


@given(st.lists(st.floats(min_value=1e-6, max_value=1e7), min_size=1, max_size=300))
def test_grid_cumulative_counts_are_exact(values: list[float]) -> None:
    """Each le count is exactly the number of sketch values in buckets at or below it."""
    sk = QuantileSketch()
    sk.add_many(values)
    grid = BucketGrid(0.01, 60_000.0, 2)
    first, cum = grid.cumulative(sk)
    assert cum[-1] == len(values)
    assert cum == sorted(cum)
    for k, c in zip(range(first, len(grid)), cum, strict=False):
        idx = grid.indices[k]
        assert c == sum(n for j, n in sk.positive.items() if j <= idx)
    assert sum(grid.slots(sk)) == len(values)
    assert all(math.isfinite(b) for b in grid.bounds)


def test_names_follow_prometheus_conventions() -> None:
    """Dots become underscores, ms histograms gain _seconds, counters _total, once."""
    assert metric_name("a.b-c", MetricType.GAUGE, "") == "a_b_c"
    assert metric_name("9lives", MetricType.GAUGE, "") == "_9lives"
    assert metric_name("req.total", MetricType.COUNTER, "") == "req_total"
    assert metric_name("wait.seconds", MetricType.HISTOGRAM, "s") == "wait_seconds"
    assert metric_name("size", MetricType.HISTOGRAM, "bytes") == "size_bytes"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=1e-3, max_value=1e6), min_size=1, max_size=200))
def test_native_histogram_spans_and_deltas_decode_to_the_buckets(values: list[float]) -> None:
    """Spans and zigzag deltas of a native histogram give back every bucket count."""
    from sounding.exporters.remote_write import NATIVE_SCHEMA, _fields, native_histogram
    from sounding.storage.outbox import RunningTotal

    sk = QuantileSketch()
    sk.add_many(values)
    body = native_histogram(sk, RunningTotal(len(values), sum(values)), 1.0, 1234)
    fields = _fields(body)
    assert dict(fields)[1] == len(values)
    assert dict(fields)[15] == 1234
    unzig = lambda n: (n >> 1) ^ -(n & 1)  # noqa: E731
    spans = [dict(_fields(v)) for f, v in fields if f == 11]
    packed = b"".join(v for f, v in fields if f == 12)
    deltas, pos = [], 0
    while pos < len(packed):
        n, shift = 0, 0
        while True:
            b = packed[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        deltas.append(unzig(n))
    got: dict[int, int] = {}
    idx, count, d = 0, 0, iter(deltas)
    for sp in spans:
        idx += unzig(sp.get(1, 0))
        for _ in range(sp.get(2, 0)):
            count += next(d)
            got[idx] = count
            idx += 1
    want: dict[int, int] = {}
    for j, c in sk.positive.items():
        v = 2.0 * sk.gamma**j / (sk.gamma + 1.0)
        i = math.ceil(math.log2(v) * 2**NATIVE_SCHEMA)
        want[i] = want.get(i, 0) + c
    assert got == want
