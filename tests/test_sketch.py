"""The quantile sketch: relative error bound, merging, serialisation."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sounding.core.sketch import MAX_BUCKETS, QuantileSketch


def exact_quantile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[math.floor(q * (len(s) - 1))]


def within(estimate: float | None, values: list[float], q: float, rel: float = 0.01) -> bool:
    """The estimate is within rel of a value whose rank is q (lower/upper neighbours)."""
    assert estimate is not None
    s = sorted(values)
    rank = q * (len(s) - 1)
    lo, hi = s[math.floor(rank)], s[math.ceil(rank)]
    tol = rel * max(abs(lo), abs(hi)) + 1e-12
    return lo - tol <= estimate <= hi + tol


@pytest.mark.parametrize("q", [0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999])
def test_lognormal_quantiles_within_one_percent(q: float) -> None:
    """On lognormal data every quantile is within 1 % of a value of the right rank."""
    rng = random.Random(7)
    values = [rng.lognormvariate(3, 1.2) for _ in range(20_000)]
    sk = QuantileSketch()
    sk.add_many(values)
    assert within(sk.quantile(q), values, q)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=300,
    ),
    st.floats(min_value=0, max_value=1),
)
def test_any_data_any_quantile_within_bound(values: list[float], q: float) -> None:
    """For arbitrary finite data (negative, zero, tiny) the bound holds for every q."""
    sk = QuantileSketch()
    for v in values:
        sk.add(v)
    est = sk.quantile(q)
    assert est is not None
    s = sorted(values)
    rank = q * (len(s) - 1)
    lo, hi = s[math.floor(rank)], s[math.ceil(rank)]
    # Values within 1e-9 of zero are counted as zero.
    tol = 0.01 * max(abs(lo), abs(hi)) + 1e-9
    assert lo - tol <= est <= hi + tol


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(min_value=1e-3, max_value=1e6), max_size=200),
    st.lists(st.floats(min_value=1e-3, max_value=1e6), max_size=200),
)
def test_merge_equals_adding_everything(a: list[float], b: list[float]) -> None:
    """Merging two sketches gives the same buckets as one sketch of all the data."""
    sa, sb, sall = QuantileSketch(), QuantileSketch(), QuantileSketch()
    sa.add_many(a)
    sb.add_many(b)
    sall.add_many(a + b)
    sa.merge(sb)
    assert sa == sall
    assert sa.count == len(a) + len(b)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), max_size=200))
def test_bytes_round_trip(values: list[float]) -> None:
    """to_bytes/from_bytes preserves buckets, count, sum, min and max."""
    sk = QuantileSketch()
    sk.add_many(values)
    back = QuantileSketch.from_bytes(sk.to_bytes())
    assert back == sk
    assert back.sum == sk.sum
    if values:
        assert (back.min, back.max) == (sk.min, sk.max)
        assert back.quantile(0.5) == sk.quantile(0.5)


def test_empty_sketch_has_no_quantile() -> None:
    """An empty sketch answers None, not an invented number."""
    assert QuantileSketch().quantile(0.5) is None
    assert QuantileSketch().mean is None


def test_extremes_are_exact() -> None:
    """p0 and p100 are the exact minimum and maximum."""
    sk = QuantileSketch()
    sk.add_many([3.3, 1.1, 2.2])
    assert sk.quantile(0) == 1.1
    assert sk.quantile(1) == 3.3


def test_bucket_count_is_bounded() -> None:
    """A huge dynamic range collapses the lowest buckets instead of growing without bound."""
    sk = QuantileSketch()
    sk.add_many([10.0**e for e in range(-9, 300, 1)] * 3)
    sk.add_many([1.0001**i for i in range(0, 200_000, 7)])
    assert len(sk.positive) <= MAX_BUCKETS
    assert within(sk.quantile(0.99), [10.0**e for e in range(-9, 300)] * 3
                  + [1.0001**i for i in range(0, 200_000, 7)], 0.99)


def _truncated() -> bytes:
    sk = QuantileSketch()
    sk.add_many([1.0, 2.0, 3.0])
    return sk.to_bytes()[:-3]


_TRUNCATED = _truncated()


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\x09" + b"\x00" * 60,
        b"\x01\x00",
        _TRUNCATED,
    ],
)
def test_malformed_bytes_raise_value_error(bad: bytes) -> None:
    """Corrupt sketch bytes raise ValueError (callers count it), never IndexError."""
    with pytest.raises(ValueError, match="sketch"):
        QuantileSketch.from_bytes(bad)


def test_merge_of_different_accuracy_is_refused() -> None:
    """Merging sketches with different accuracies would break the bound, so it raises."""
    with pytest.raises(ValueError, match="accuracies must match"):
        QuantileSketch(0.01).merge(QuantileSketch(0.02))


def _format1(sk: QuantileSketch) -> bytes:
    """The first on-disk format (ZigZag varints), as stores written by 0.1.0.dev0 hold."""
    import struct

    from sounding.core.sketch import _encode_varint

    out = bytearray(struct.pack("<Bd", 1, sk.relative_accuracy))
    out += struct.pack("<qdddq", sk.count, sk.sum, sk.min, sk.max, sk.zero_count)
    for store in (sk.positive, sk.negative):
        keys = sorted(store)
        _encode_varint(len(keys), out)
        prev = 0
        for k in keys:
            _encode_varint(k - prev, out)
            _encode_varint(store[k], out)
            prev = k
    return bytes(out)


def test_format_1_still_decodes() -> None:
    """Sketches stored in the earlier varint format still read back identically."""
    sk = QuantileSketch()
    sk.add_many([-5.0, 0.0, 0.5, 3.0, 3.0, 1e6])
    assert QuantileSketch.from_bytes(_format1(sk)) == sk


def test_counts_beyond_32_bits_round_trip() -> None:
    """A bucket with more than 2**32 observations (a merged daily rollup) survives encoding."""
    sk = QuantileSketch()
    sk.add(2.0, weight=5 * 2**32)
    back = QuantileSketch.from_bytes(sk.to_bytes())
    assert back == sk
    assert back.count == 5 * 2**32
