"""The sketch's dense runs: counting in place after a read, quantiles found by a scan,
and formats 4 and 5 as the writer chooses them."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sounding.core.sketch import QuantileSketch

_QS = (0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999)

_weighted = st.lists(
    st.tuples(
        st.one_of(
            st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False),
            st.floats(min_value=1e-3, max_value=1e3),
            st.just(0.0),
        ),
        st.sampled_from([1, 1, 1, 7, 255, 256, 300, 65_536, 70_000, 2**33]),
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=80, deadline=None)
@given(_weighted, st.integers(0, 3))
def test_the_first_quantile_after_a_change_equals_a_repeated_one(
    obs: list[tuple[float, int]], read_every: int
) -> None:
    """A quantile asked first after a change (a scan of the runs) is the one the running
    totals give when asked again, whatever the count widths and signs."""
    sk = QuantileSketch()
    reference = QuantileSketch()
    for i, (value, weight) in enumerate(obs):
        sk.add(value, weight)
        reference.add(value, weight)
        if read_every and i % read_every == 0:
            sk.to_bytes()  # later adds count in the runs this read leaves behind
    for q in _QS:
        copy = sk.copy()
        first = copy.quantile(q)
        assert copy.quantile(q) == first  # the second ask bisects the running totals
        assert copy.quantile(q) == first
        assert reference.quantile(q) == first
    assert sk == reference
    assert QuantileSketch.from_bytes(sk.to_bytes()) == reference


def test_adds_after_a_read_widen_the_counts_as_they_grow() -> None:
    """Counts added after a read grow past one, two and four bytes, and past 64 bits, and
    stay exact in the bytes, the buckets and the quantiles."""
    rng = random.Random(3)
    values = [rng.lognormvariate(0, 1) for _ in range(2_000)]
    sk, reference = QuantileSketch(), QuantileSketch()
    sk.add_many(values)
    reference.add_many(values)
    for weight in (200, 70_000, 5 * 2**32, 2**63):
        assert sk.quantile(0.5) is not None  # a read: the next add counts in place
        sk.add(1.5, weight)
        reference.add(1.5, weight)
        sk.add(-2.5, weight)
        reference.add(-2.5, weight)
        assert sk == reference
        assert sk.quantiles(_QS) == reference.quantiles(_QS)
        if sk.count < 2**63:
            assert QuantileSketch.from_bytes(sk.to_bytes()) == reference
    assert max(sk.negative.values()) == 200 + 70_000 + 5 * 2**32 + 2**63


def test_counts_of_255_are_summed_exactly_by_the_scan() -> None:
    """Runs of one-byte counts at their largest (255 each, summed 256 at a time) give the
    quantiles the running totals give."""
    sk = QuantileSketch()
    values = [1.03**i for i in range(700)]
    sk.add_many(values)
    sk.to_bytes()
    for v in values:
        sk.add(v, 254)  # in place: every bucket now holds 255 (or more where two share)
    firsts = [sk.copy().quantile(q) for q in _QS]
    assert firsts == sk.quantiles(_QS)
    assert sk.quantiles(_QS) == sk.quantiles(_QS)


def test_wide_counts_in_dense_runs_are_written_in_format_5() -> None:
    """Counts past a byte in a run with few empty buckets use format 5, smaller than the
    raw counts, and read back and merge from bytes exactly."""
    rng = random.Random(5)
    sk = QuantileSketch()
    sk.add_many([rng.lognormvariate(0, 1) for _ in range(100_000)])
    sk.add_many([-rng.lognormvariate(0, 1) for _ in range(20_000)])
    data = sk.to_bytes()
    assert data[0] == 5
    assert len(data) < 1.5 * (len(sk.positive) + len(sk.negative)) + 100
    back = QuantileSketch.from_bytes(data)
    assert back == sk
    assert back.quantiles(_QS) == sk.quantiles(_QS)
    merged = QuantileSketch()
    merged.merge_bytes(data)
    merged.merge_bytes(data)
    doubled = sk.copy()
    doubled.merge(sk)
    assert merged == doubled


def test_sparse_runs_are_still_deflated() -> None:
    """A run with many empty buckets (a sparse interval) is deflated in format 4: the
    stored size of sparse data does not grow."""
    rng = random.Random(9)
    sk = QuantileSketch()
    sk.add_many([rng.lognormvariate(0, 1.5) for _ in range(100)])
    data = sk.to_bytes()
    assert data[0] == 4
    head = 9 + 40 + 18
    assert data[head - 1] == 1  # deflated
    assert len(data) - head < 0.6 * (max(sk.positive) - min(sk.positive) + 1)
    assert QuantileSketch.from_bytes(data) == sk


def _v5() -> bytes:
    sk = QuantileSketch()
    sk.add_many([1.0 + i / 50 for i in range(300)])
    sk.add(2.0, weight=1000)
    data = sk.to_bytes()
    assert data[0] == 5
    return data


_HEAD = 9 + 40  # version and accuracy, then the statistics


@pytest.mark.parametrize(
    "bad",
    [
        _v5()[:-1],  # the deflated planes cut short
        _v5()[: _HEAD + 18 + 20],  # the plain planes cut short
        _v5()[: _HEAD + 16] + b"\x13" + _v5()[_HEAD + 17 :],  # 3 bytes per count
        _v5()[: _HEAD + 17] + b"\x00" + _v5()[_HEAD + 18 :],  # deflated, read as plain
    ],
)
def test_malformed_format_5_raises_value_error(bad: bytes) -> None:
    """Format-5 bytes that do not match their sizes raise ValueError when read or merged."""
    with pytest.raises(ValueError, match="sketch"):
        QuantileSketch.from_bytes(bad)
    with pytest.raises(ValueError, match="sketch"):
        QuantileSketch().merge_bytes(bad)


def test_a_merged_sketch_is_deflated_whenever_that_pays() -> None:
    """A rollup (sketches merged, written once and kept) is deflated even when its run has
    few empty buckets; the same counts added directly are written as they are."""
    rng = random.Random(11)
    values = [rng.lognormvariate(-3, 0.7) for _ in range(6_000)]
    added = QuantileSketch()
    added.add_many(values)
    rollup = QuantileSketch()
    for i in range(0, len(values), 100):
        part = QuantileSketch()
        part.add_many(values[i : i + 100])
        rollup.merge_bytes(part.to_bytes())
    assert rollup == added
    head = 9 + 40 + 18
    plain, packed = added.to_bytes(), rollup.to_bytes()
    assert (plain[0], plain[head - 1], packed[0], packed[head - 1]) == (4, 0, 4, 1)
    assert len(packed) < len(plain)
    assert QuantileSketch.from_bytes(packed) == added


def test_a_merged_sketch_counted_again_is_written_as_a_live_one() -> None:
    """A merged sketch that is read and then added to (a live sketch again) is written as
    one counted by add: not deflated when its run has few empty buckets."""
    rng = random.Random(12)
    merged = QuantileSketch()
    part = QuantileSketch()
    part.add_many([rng.lognormvariate(-3, 0.7) for _ in range(6_000)])
    merged.merge(part)
    head = 9 + 40 + 18
    assert merged.to_bytes()[head - 1] == 1
    merged.add(0.05)
    assert merged.to_bytes()[head - 1] == 0
    merged.add_many([0.05, 0.06])
    assert merged.to_bytes()[head - 1] == 0
    assert QuantileSketch.from_bytes(merged.to_bytes()) == merged
