"""Quantiles of the sketch never leave what was observed, merged or not."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sounding.core.sketch import QuantileSketch

values = st.lists(
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=100,
)
qs = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=10)


@settings(max_examples=60, deadline=None)
@given(values, values, qs)
def test_quantiles_within_min_max_and_monotone(
    a: list[float], b: list[float], q: list[float]
) -> None:
    """Every quantile of a merged sketch lies in [min, max] and grows with q."""
    left, right = QuantileSketch(), QuantileSketch()
    left.add_many(a)
    right.add_many(b)
    left.merge(QuantileSketch.from_bytes(right.to_bytes()))
    got = [left.quantile(x) for x in sorted(q)]
    lo, hi = min(a + b), max(a + b)
    assert all(v is not None and lo <= v <= hi for v in got)
    assert got == sorted(got)  # type: ignore[type-var]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=1e-6, max_value=1e6), min_size=1, max_size=2), qs)
def test_one_or_two_observations_are_exact(obs: list[float], q: list[float]) -> None:
    """With one or two observations every quantile is one of them, exactly."""
    sk = QuantileSketch()
    for v in obs:
        sk.add(v)
    assert {sk.quantile(x) for x in q} <= set(obs)
