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


# Bytes written by format 3 (the encoder before format 4), kept verbatim: stores written
# then must stay readable. Each is paired with the values it was built from.
_V3_WIDE = bytes.fromhex(
    "037b14ae47e17a843f07000000000100006020a1070000c54200000000000014c00000000080842e41"
    "01000000000000000400000002000000bbffffffdeffffff4851007c008400f8017300010000000000"
    "000002000000000000000000000000010000010000000000000001000000000000000100000000000000"
)
_V3_PACKED = bytes.fromhex(
    "037b14ae47e17a843fcb00000000000000000000000048a04000000000000000c06666666666663440"
    "00000000000000007400000001000000deffffff230000004242011819c58fdb0d00200803637944f7"
    "5f588ee00c9652f8bc9e9d19116e6e2599464b5a0c9ee0f9a547d140c535e620b06be1ef1615f4a195"
    "63b70baeba0185"
)


# The same two sketches as format 4 wrote them (pinned too: a later format must read them).
_V4_WIDE = bytes.fromhex(
    "047b14ae47e17a843f07000000000100006020a1070000c54200000000000014c00000000080842e41"
    "0100000000000000bbfffffff9020000deffffff740000001801edceb10d00211003c139fa2ffa1b20"
    "4508fd4eb8893dee59f7a65bf66f232222222222e271f3f8ffee8b8888d89b7d3e59e703"
)
_V4_PACKED = bytes.fromhex(
    "047b14ae47e17a843fcb00000000000000000000000048a04000000000000000c06666666666663440"
    "0000000000000000deffffffba00000023000000010000001101558881120030044247feff9b57e16e"
    "23af1267263eef66fe60d3a36d690f3e9f752424df92d593226165e448a6411f18001f8aa1b452e102"
)


# Format 5 (counts wider than a byte in a run with few empty buckets: the lowest byte plane
# as it is, the higher ones deflated), as written when it was introduced.
_V5_WIDE = bytes.fromhex(
    "057b14ae47e17a843f17050000000000000000000000eea84000000000000008c0ec51b81e85eb1b40"
    "0100000000000000000000006300000037000000010000001201010101010101010101010201010102"
    "0101020102010201020102020102020201020202ea0202020302020203020203030203020303030303"
    "0303030304030304030404030404040405040405040504050505050506050605060606060607060707"
    "06020263200c9819280300"
)


def _v5_wide_source() -> QuantileSketch:
    sk = QuantileSketch()
    sk.add_many([1.0 + i / 50 for i in range(300)])
    sk.add_many([-3.0, -3.0, 0.0])
    sk.add(2.0, weight=1000)
    return sk


def _v3_wide_source() -> QuantileSketch:
    sk = QuantileSketch()
    sk.add_many([-5.0, -0.5, 0.0, 0.25, 3.0, 3.0, 1e6])
    sk.add(42.0, weight=2**40)
    return sk


def _v3_packed_source() -> QuantileSketch:
    sk = QuantileSketch()
    sk.add_many([0.5 + i / 10 for i in range(200)])
    sk.add_many([-2.0] * 3)
    return sk


@pytest.mark.parametrize(
    ("data", "source", "version"),
    [
        (_V3_WIDE, _v3_wide_source, 3),
        (_V3_PACKED, _v3_packed_source, 3),
        (_V4_WIDE, _v3_wide_source, 4),
        (_V4_PACKED, _v3_packed_source, 4),
        (_V5_WIDE, _v5_wide_source, 5),
    ],
)
def test_stored_format_bytes_still_decode(data: bytes, source: object, version: int) -> None:
    """Bytes of formats 3, 4 and 5 as written (64-bit counts and negatives; deflated) read
    back, and merge from bytes, to the sketch they were written from."""
    assert callable(source)
    expected = source()
    assert data[0] == version
    back = QuantileSketch.from_bytes(data)
    assert back == expected
    assert (back.count, back.min, back.max) == (expected.count, expected.min, expected.max)
    assert back.sum == pytest.approx(expected.sum, rel=1e-12)  # as summed when written
    qs = (0.01, 0.25, 0.5, 0.9, 0.99)
    assert back.quantiles(qs) == expected.quantiles(qs)
    merged = QuantileSketch()
    merged.merge_bytes(data)
    assert merged == expected
    assert merged.quantiles(qs) == expected.quantiles(qs)


def test_format_4_round_trips_signs_zeros_and_wide_counts() -> None:
    """Format 4 keeps negatives, zeros, tiny values and counts past 32 bits exactly."""
    sk = QuantileSketch()
    sk.add_many([-5.0, -0.5, 0.0, 1e-12, 0.25, 3.0, 3.0, 1e6])
    sk.add(42.0, weight=2**40)
    sk.add(-7.0, weight=70_000)
    data = sk.to_bytes()
    assert data[0] == 4
    back = QuantileSketch.from_bytes(data)
    assert back == sk
    assert (back.count, back.sum, back.min, back.max, back.zero_count) == (
        sk.count, sk.sum, sk.min, sk.max, sk.zero_count,
    )  # fmt: skip
    qs = (0.0, 0.001, 0.1, 0.5, 0.999, 1.0)
    assert back.quantiles(qs) == sk.quantiles(qs)
    via_bytes = QuantileSketch()
    via_bytes.merge_bytes(data)
    assert via_bytes == sk


_mixed = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(_mixed, max_size=60), min_size=1, max_size=5), st.integers(0, 2))
def test_merging_by_any_route_equals_adding_everything(
    parts: list[list[float]], route: int
) -> None:
    """Merged sketches (as objects, from bytes, read back) hold the buckets, statistics and
    quantiles of one sketch of all the data, negatives and zeros included."""
    whole = QuantileSketch()
    merged = QuantileSketch()
    for values in parts:
        whole.add_many(values)
        part = QuantileSketch()
        part.add_many(values)
        if route == 0:
            merged.merge(part)
        elif route == 1:
            merged.merge_bytes(part.to_bytes())
        else:
            merged.merge(QuantileSketch.from_bytes(part.to_bytes()))
    merged.add(2.5)  # adding after merging counts on top of the merged buckets
    whole.add(2.5)
    assert merged == whole
    assert (merged.count, merged.zero_count) == (whole.count, whole.zero_count)
    assert (merged.min, merged.max) == (whole.min, whole.max)
    qs = (0.05, 0.3, 0.5, 0.7, 0.95)
    assert merged.quantiles(qs) == whole.quantiles(qs)
    assert QuantileSketch.from_bytes(merged.to_bytes()) == whole


def test_serialised_bytes_follow_every_change() -> None:
    """to_bytes is kept until the sketch changes: adding, merging and merging bytes all
    give new bytes that decode to the new counts."""
    sk = QuantileSketch()
    sk.add_many([1.0, 2.0, 3.0])
    first = sk.to_bytes()
    assert sk.to_bytes() is first
    other = QuantileSketch()
    other.add_many([10.0] * 5)
    for change in (
        lambda: sk.add(50.0),
        lambda: sk.add_many([0.5, 0.5]),
        lambda: sk.merge(other),
        lambda: sk.merge_bytes(other.to_bytes()),
    ):
        before = QuantileSketch.from_bytes(sk.to_bytes())
        change()
        after = QuantileSketch.from_bytes(sk.to_bytes())
        assert after.count > before.count
        assert after == sk
    again = QuantileSketch.from_bytes(first)
    assert again.to_bytes() == first
    again.add(4.0)
    assert again.to_bytes() != first
    assert QuantileSketch.from_bytes(again.to_bytes()).count == 4


def test_a_sketch_spanning_many_decades_is_stored_in_format_3() -> None:
    """Buckets too far apart for one run (1e-8 and 1e300) use format 3 and still merge."""
    sk = QuantileSketch()
    sk.add_many([1e-8, 1e-8, 5.0, 1e300])
    data = sk.to_bytes()
    assert data[0] == 3
    assert QuantileSketch.from_bytes(data) == sk
    merged = QuantileSketch()
    merged.merge(sk)
    merged.merge_bytes(data)
    assert merged.count == 8
    assert merged.quantile(0.6) == pytest.approx(5.0, rel=0.01)
    assert merged.quantile(0.1) == pytest.approx(1e-8, rel=0.01)


def test_merged_runs_beyond_the_bucket_limit_collapse() -> None:
    """Merging sketches whose buckets together pass MAX_BUCKETS collapses the lowest."""
    low, high = QuantileSketch(), QuantileSketch()
    low.add_many([1.021**i for i in range(3000)])
    high.add_many([1.021**i for i in range(3000, 6000)])
    low.merge(high)
    assert len(low.positive) <= MAX_BUCKETS
    assert low.count == 6000
    assert low.quantile(0.99) == pytest.approx(1.021**5939, rel=0.01)


def test_counts_that_could_carry_between_lanes_stay_exact() -> None:
    """Merging past 2**63 observations counts in the Counters: no bucket spills over."""
    a, b = QuantileSketch(), QuantileSketch()
    a.add(2.0, weight=2**62)
    a.add(3.0)
    b.add(2.0, weight=2**62)
    a.merge(b)
    assert a.count == 2**63 + 1
    assert sum(a.positive.values()) == 2**63 + 1
    assert a.quantile(0.5) == pytest.approx(2.0, rel=0.01)


def _v4(sk: QuantileSketch) -> bytes:
    data = sk.to_bytes()
    assert data[0] == 4
    return data


_SMALL = QuantileSketch()
_SMALL.add_many([1.0, 2.0, 3.0])
_HEAD = 9 + 40  # version and accuracy, then the statistics


@pytest.mark.parametrize(
    "bad",
    [
        _v4(_SMALL)[:-1],  # a count missing
        _v4(_SMALL) + b"\x00",  # a byte too many
        _v4(_SMALL)[: _HEAD + 16] + b"\x03" + _v4(_SMALL)[_HEAD + 17 :],  # 3 bytes per count
        _v4(_SMALL)[:_HEAD] + b"\x00\x00\x00\x00\xff\xff\x00\x00" + _v4(_SMALL)[_HEAD + 8 :],
        _v4(_SMALL)[: _HEAD + 17] + b"\x01" + _v4(_SMALL)[_HEAD + 18 :],  # not deflated
    ],
)
def test_malformed_format_4_raises_value_error(bad: bytes) -> None:
    """Format-4 bytes that do not match their sizes raise ValueError when read or merged."""
    with pytest.raises(ValueError, match="sketch"):
        QuantileSketch.from_bytes(bad)
    with pytest.raises(ValueError, match="sketch"):
        QuantileSketch().merge_bytes(bad)


def test_reading_a_merged_sketch_never_changes_it() -> None:
    """positive/negative of a merged sketch are read without touching its state, and the
    buckets it reports follow later changes."""
    a, b = QuantileSketch(), QuantileSketch()
    a.add_many([-2.0, 1.0, 2.0, 2.0])
    b.add_many([2.0, 8.0])
    merged = QuantileSketch()
    merged.merge(a)
    merged.merge(b)
    data = merged.to_bytes()
    seen = dict(merged.positive)
    assert sum(seen.values()) == 5
    assert sum(merged.negative.values()) == 1
    assert merged.to_bytes() is data
    merged.add(8.0)
    assert sum(merged.positive.values()) == 6
    merged.merge(merged)
    assert sum(merged.positive.values()) == 12
    assert merged.count == 14


def test_wrong_index_bounds_never_drop_a_bucket() -> None:
    """Bounds noted for the indices are checked before use: a bucket outside them is kept."""
    sk = QuantileSketch()
    sk.add_many([1.0, 2.0, 4.0])
    sk._pos_keys = (sk._pos_keys[0] + 1, sk._pos_keys[1])  # type: ignore[index]
    assert QuantileSketch.from_bytes(sk.to_bytes()) == sk


def test_assigning_the_counters_replaces_the_buckets() -> None:
    """Assigning positive/negative (what a fast constructor does, even on an instance made
    without __init__) replaces those buckets and forgets bytes and quantiles kept before."""
    from collections import Counter

    merged = QuantileSketch()
    for values in ([1.0, 2.0], [-3.0, 4.0]):
        part = QuantileSketch()
        part.add_many(values)
        merged.merge(part)
    before = merged.to_bytes()
    merged.positive = Counter({35: 4})
    assert dict(merged.positive) == {35: 4}
    assert sum(merged.negative.values()) == 1  # the merged negative bucket is kept
    assert merged.to_bytes() != before
    assert QuantileSketch.from_bytes(merged.to_bytes()).positive == Counter({35: 4})

    expected = QuantileSketch()
    expected.add(2.0, 3)
    bare: QuantileSketch = object.__new__(QuantileSketch)
    bare.relative_accuracy = expected.relative_accuracy
    bare.gamma, bare._log_gamma, bare._inv_log_gamma = (
        expected.gamma, expected._log_gamma, expected._inv_log_gamma,
    )  # fmt: skip
    bare.positive = Counter(expected.positive)
    bare.negative = Counter()
    bare.zero_count, bare.count, bare.sum, bare.min, bare.max = 0, 3, 6.0, 2.0, 2.0
    assert bare.to_bytes() == expected.to_bytes()
    assert bare.quantile(0.5) == expected.quantile(0.5)
    bare.merge(expected)
    assert bare.count == 6
    assert sum(bare.positive.values()) == 6


def test_counts_past_64_bits_still_merge() -> None:
    """A bucket count that does not fit a 64-bit lane is merged through the Counters."""
    big = QuantileSketch()
    big.add(2.0, weight=2**70)
    into = QuantileSketch()
    into.add(3.0)
    into.merge(big)
    assert into.count == 2**70 + 1
    assert sorted(into.positive.values()) == [1, 2**70]
    assert into.quantile(0.5) == pytest.approx(2.0, rel=0.01)


_values = st.lists(
    st.one_of(
        st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False),
        st.floats(min_value=1e-3, max_value=1e3),
        st.sampled_from([0.0, 1e300, 1e-8]),
    ),
    max_size=30,
)
_ops = st.lists(
    st.tuples(st.sampled_from(["add", "add_many", "merge", "bytes", "read", "ask"]), _values),
    max_size=12,
)


@settings(max_examples=80, deadline=None)
@given(_ops)
def test_any_sequence_of_operations_matches_one_sketch_of_the_values(
    ops: list[tuple[str, list[float]]],
) -> None:
    """Whatever mix of adding, merging (objects and bytes), reading back and asking in
    between, the sketch holds the buckets and quantiles of all its values added directly."""
    sk = QuantileSketch()
    reference = QuantileSketch()
    for op, values in ops:
        part = QuantileSketch()
        part.add_many(values)
        if op == "add":
            for v in values:
                sk.add(v)
        elif op == "add_many":
            sk.add_many(values)
        elif op == "merge":
            sk.merge(part)
        elif op == "bytes":
            sk.merge_bytes(part.to_bytes())
        elif op == "read":
            sk.add_many(values)
            sk = QuantileSketch.from_bytes(sk.to_bytes())
        else:  # ask: quantiles and buckets read in between must not change what follows
            sk.add_many(values)
            sk.quantiles((0.1, 0.9))
            assert sum(sk.positive.values()) + sum(sk.negative.values()) + sk.zero_count == (
                sk.count
            )
        reference.add_many(values)
    assert sk == reference
    assert sk.count == reference.count
    qs = (0.01, 0.2, 0.5, 0.8, 0.99)
    assert sk.quantiles(qs) == reference.quantiles(qs)
    assert QuantileSketch.from_bytes(sk.to_bytes()) == reference
