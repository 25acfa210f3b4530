"""QuantileSketch.add_many: a batch counted by bisections at the bucket edges (narrow) or
value by value (wide) gives exactly the sketch repeated ``add`` calls give."""

from __future__ import annotations

import math
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sounding.core import sketch as sketch_module
from sounding.core.sketch import QuantileSketch

_QS = (0.001, 0.01, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999)


def _one_by_one(values: list[float], accuracy: float = 0.01) -> QuantileSketch:
    sk = QuantileSketch(accuracy)
    for v in values:
        sk.add(v)
    return sk


def _assert_same(sk: QuantileSketch, reference: QuantileSketch, scale: float = 1.0) -> None:
    assert sk == reference
    assert (sk.count, sk.zero_count, sk.min, sk.max) == (
        reference.count,
        reference.zero_count,
        reference.min,
        reference.max,
    )
    # The sums differ by rounding only (summed in another order): relative to the magnitudes.
    assert math.isclose(sk.sum, reference.sum, rel_tol=1e-9, abs_tol=1e-12 * scale)
    assert sk.quantiles(_QS) == reference.quantiles(_QS)


_magnitude = st.floats(min_value=1e-8, max_value=1e8)
#: batches around one value (a timer's durations): few buckets for many values
_narrow = st.tuples(
    _magnitude,
    st.lists(st.floats(min_value=0.9, max_value=1.2), min_size=1, max_size=600),
).map(lambda t: [t[0] * f for f in t[1]])
_wide = st.lists(
    st.one_of(
        st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False),
        st.just(0.0),
        st.floats(min_value=-1e-9, max_value=1e-9),
    ),
    min_size=1,
    max_size=300,
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(_narrow, _wide, _narrow.map(lambda b: [-v for v in b])), max_size=5),
    st.sampled_from([0.01, 0.01, 0.02, 0.001]),
    st.integers(0, 2),
)
def test_batches_count_as_repeated_adds(
    batches: list[list[float]], accuracy: float, read_every: int
) -> None:
    """Batches narrow and wide, of either sign and with zeros, folded one after another
    (with reads in between, which leave dense runs behind) equal the same values added one
    at a time: buckets, count, zeros, min, max, sum and every quantile, read back too."""
    sk = QuantileSketch(accuracy)
    values: list[float] = []
    for i, batch in enumerate(batches):
        sk.add_many(batch)
        values.extend(batch)
        if read_every and i % read_every == 0:
            sk.to_bytes()
    reference = _one_by_one(values, accuracy)
    _assert_same(sk, reference, sum(map(abs, values)))
    assert QuantileSketch.from_bytes(sk.to_bytes()) == reference


def test_a_narrow_batch_is_counted_in_the_dense_run() -> None:
    """A batch spanning few buckets goes straight into the positive dense run (no Counter
    holds it), and later batches below, above and inside it extend or add to the run."""
    rng = random.Random(7)
    sk = QuantileSketch()
    values: list[float] = []
    for centre in (1e-4, 1e-4, 3e-5, 2e-4, 1e-4):
        batch = [centre * rng.uniform(0.9, 1.1) for _ in range(256)]
        sk.add_many(batch)
        values.extend(batch)
        assert sk._dense is not None
        assert len(sk._dense[1]) > 0
        assert not sk._pos
    _assert_same(sk, _one_by_one(values))


def test_a_wide_batch_is_indexed_value_by_value() -> None:
    """A batch spanning more buckets than half its size is counted in the Counters, as
    before, with the same result."""
    rng = random.Random(8)
    values = [math.exp(rng.uniform(-20, 20)) for _ in range(256)]
    sk = QuantileSketch()
    sk.add_many(values)
    assert sk._pos
    _assert_same(sk, _one_by_one(values))


def test_counts_past_a_byte_widen_the_run() -> None:
    """Folding the same value hundreds of times, then tens of thousands, widens the run's
    count type and keeps every count exact."""
    sk = QuantileSketch()
    for size in (200, 200, 70_000):
        sk.add_many([5.0] * size)
    assert sk._dense is not None
    assert sk._dense[1].itemsize >= 4
    reference = QuantileSketch()
    reference.add(5.0, 70_400)
    _assert_same(sk, reference)
    assert QuantileSketch.from_bytes(sk.to_bytes()) == reference


def test_a_fold_past_the_count_width_widens_the_run_in_place() -> None:
    """A fold into a dense run whose count no longer fits the run's type (four bytes here)
    makes the run wider and stays exact."""
    sk = QuantileSketch()
    sk.add(5.0, 2**32 - 2)
    sk.add(6.0)
    assert sk.quantile(0.5) is not None  # a read: the next change starts from 4-byte runs
    sk.add_many([5.0] * 10)
    assert sk._dense is not None
    assert sk._dense[1].itemsize == 8
    assert not sk._pos
    reference = QuantileSketch()
    reference.add(5.0, 2**32 + 8)
    reference.add(6.0)
    _assert_same(sk, reference)
    assert QuantileSketch.from_bytes(sk.to_bytes()) == reference


def _float(bits: int) -> float:
    return float(struct.unpack("<d", struct.pack("<q", bits))[0])


def _bits(value: float) -> int:
    return int(struct.unpack("<q", struct.pack("<d", value))[0])


def test_each_edge_is_the_first_float_of_its_bucket() -> None:
    """The edge of bucket i has index i as add computes it, and the float just below it has
    a lower index, for buckets across the whole range of magnitudes and accuracies."""
    rng = random.Random(9)
    for accuracy in (0.01, 0.05, 0.001):
        k = 1.0 / math.log((1 + accuracy) / (1 - accuracy))
        lg = 1.0 / k
        low = math.ceil(math.log(2e-9) * k)
        high = math.ceil(math.log(1e300) * k)
        for i in [low, high, *rng.sample(range(low, high), 200)]:
            edge = sketch_module._edge(i, k, lg)
            assert edge is not None
            assert math.ceil(math.log(edge) * k) >= i
            assert math.ceil(math.log(_float(_bits(edge) - 1)) * k) < i


def test_a_full_table_of_edges_falls_back_to_indexing(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the kept edges reach their limit, a narrow batch is indexed value by value and
    still counted exactly (the table never grows past the limit)."""
    monkeypatch.setattr(sketch_module, "_MAX_EDGES", len(sketch_module._EDGES.get(0.01, {})))
    batch = [7.0e5 * (1 + i / 2000) for i in range(256)]  # buckets no test used yet
    sk = QuantileSketch()
    sk.add_many(batch)
    assert len(sketch_module._EDGES.get(0.01, {})) <= sketch_module._MAX_EDGES
    _assert_same(sk, _one_by_one(batch))


#: a timer's batch: durations on a few clock ticks, with outliers far above and below
_ticked = st.tuples(
    st.floats(min_value=1e-6, max_value=1e3),
    st.lists(st.integers(6, 12), min_size=8, max_size=400),
    st.lists(st.floats(min_value=1e-3, max_value=1e4), max_size=12),
).map(lambda t: [t[0] * tick for tick in t[1]] + [t[0] * f for f in t[2]])


@settings(max_examples=150, deadline=None)
@given(st.lists(_ticked, min_size=1, max_size=4), st.sampled_from([0.01, 0.02, 0.001]))
def test_batches_on_few_ticks_with_outliers_count_as_repeated_adds(
    batches: list[list[float]], accuracy: float
) -> None:
    """Batches whose values sit on a few clock ticks, buckets apart, with outliers decades
    away (walked bucket by occupied bucket, narrow or wide only by their tails) equal the
    same values added one at a time."""
    sk = QuantileSketch(accuracy)
    values: list[float] = []
    for batch in batches:
        random.Random(len(batch)).shuffle(batch)
        sk.add_many(batch)
        values.extend(batch)
    reference = _one_by_one(values, accuracy)
    _assert_same(sk, reference, sum(values))
    assert QuantileSketch.from_bytes(sk.to_bytes()) == reference


def test_a_batch_wide_only_by_its_outliers_is_walked_exactly() -> None:
    """A batch of durations on six ticks plus two outliers four decades away spans far more
    buckets than half its size, yet is counted exactly (in the Counters, as a wide batch)."""
    batch = [1e-4 * (6 + i % 6) for i in range(254)] + [1.0, 3.0]
    sk = QuantileSketch()
    sk.add_many(batch)
    assert sk._pos
    _assert_same(sk, _one_by_one(batch))


def test_a_densely_occupied_batch_is_finished_by_bisections() -> None:
    """A narrow batch that occupies every bucket of its span (the walk stops after a few
    steps and bisects at the remaining edges) lands in the dense run, exactly."""
    batch = [1.0 + i / 640 for i in range(256)]  # 1.0 to 1.4: every bucket occupied
    sk = QuantileSketch()
    sk.add_many(batch)
    assert sk._dense is not None
    assert not sk._pos
    _assert_same(sk, _one_by_one(batch))


def test_a_table_filling_up_during_a_walk_falls_back_to_indexing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the kept edges run out in the middle of a walk, the values not yet counted are
    indexed one by one and the sketch is still exact."""
    monkeypatch.setattr(sketch_module, "_MAX_EDGES", len(sketch_module._EDGES.get(0.01, {})) + 2)
    batch = [3.3e7 * (1 + (i % 8) / 10) for i in range(256)]  # buckets no test used yet
    sk = QuantileSketch()
    sk.add_many(batch)
    assert len(sketch_module._EDGES.get(0.01, {})) <= sketch_module._MAX_EDGES
    _assert_same(sk, _one_by_one(batch))


def test_a_batch_within_the_dense_run_is_counted_into_it_in_place() -> None:
    """A second batch on the same ticks lands in the existing dense run (the same array,
    no Counter), and a count that outgrows the run's width mid-walk widens it exactly."""
    ticks = [1e-4 * (6 + i % 6) for i in range(256)]
    sk = QuantileSketch()
    sk.add_many(ticks)
    assert sk._dense is not None
    run = sk._dense[1]
    assert run.itemsize == 1
    sk.add_many(list(reversed(ticks)))
    assert sk._dense[1] is run  # added in place: counts of 86 per bucket still fit a byte
    values = ticks * 2
    for _ in range(5):  # 43 more per bucket each time: past 255 on the fifth
        sk.add_many(ticks)
        values.extend(ticks)
    assert sk._dense[1].itemsize > 1
    assert not sk._pos
    _assert_same(sk, _one_by_one(values))


def test_after_a_dense_walk_the_next_batches_are_bisected_without_one() -> None:
    """A narrow batch whose buckets are all occupied stops its walk early; the sketch then
    bisects its next eight narrow batches at every edge without walking (a sketch made by
    single_value_sketch walks too), and every count stays exact either way."""
    rng = random.Random(11)
    sk = QuantileSketch()
    values: list[float] = []

    def fold(batch: list[float]) -> None:
        sk.add_many(batch)
        values.extend(batch)

    fold([1e-3 * rng.uniform(1.0, 1.4) for _ in range(256)])  # dense: the walk stops early
    assert sk._walk_skip == sketch_module._SKIP_WALKS
    ticks = [1e-4 * (6 + i % 6) for i in range(256)]
    for left in range(sketch_module._SKIP_WALKS - 1, -1, -1):
        fold(ticks)
        assert sk._walk_skip == left
    fold(ticks)  # walked again: sparse buckets, the walk runs to the end
    assert sk._walk_skip == 0
    _assert_same(sk, _one_by_one(values))
    single = sketch_module.single_value_sketch(2.5)
    single.add_many([2.5 * rng.uniform(1.0, 1.4) for _ in range(256)])
    assert single._walk_skip == sketch_module._SKIP_WALKS
