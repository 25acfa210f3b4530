"""Deviation and change-point detection over plain sequences."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sounding.analysis import (
    CHANGE_POINT_METHODS,
    Deviation,
    Episode,
    detect_change_points,
    detect_deviations,
)
from sounding.core.exceptions import InvalidTypeError, InvalidValueError


def _cps(values: list[float | None] | list[float], **kwargs: object) -> list[int]:
    return [c.index for c in detect_change_points(values, **kwargs)]  # type: ignore[arg-type]


def _noise(n: int, seed: int, level: float = 100.0, sd: float = 3.0) -> list[float]:
    rng = random.Random(seed)
    return [level + rng.gauss(0, sd) for _ in range(n)]


def test_spike_is_found_with_baseline_score_and_direction() -> None:
    """A single spike is reported once, with its trailing median, score and direction."""
    values = _noise(200, 1)
    values[120] = 200.0
    found = detect_deviations(values)
    assert [d.index for d in found] == [120]
    d = found[0]
    assert d.direction == "up"
    assert d.value == 200.0
    assert abs(d.baseline - 100.0) < 3
    assert d.score > 6
    assert d.relative_change == pytest.approx((200.0 - d.baseline) / d.baseline)


def test_downward_spike_direction() -> None:
    """A drop is a deviation with direction ``down`` and a negative score."""
    values = _noise(200, 2)
    values[150] = 10.0
    (d,) = detect_deviations(values)
    assert (d.index, d.direction) == (150, "down")
    assert d.score < 0


@pytest.mark.parametrize("seed", range(5))
def test_noise_alone_gives_no_deviation(seed: int) -> None:
    """Gaussian noise without anomalies raises nothing with the defaults."""
    assert detect_deviations(_noise(1000, seed)) == []


def test_causal_prefix_invariance() -> None:
    """Point i is judged only on points before it: a prefix gives the same episode starts
    (an episode cut by the end of the prefix is reported open)."""
    values = _noise(300, 3)
    values[100] = 170.0
    values[250] = 20.0
    full = detect_deviations(values)

    def starts(eps: list[Episode]) -> list[tuple[int, float, float, float, str]]:
        return [(e.index, e.value, e.baseline, e.score, e.direction) for e in eps]

    for cut in (101, 180, 251):
        prefix = detect_deviations(values[:cut])
        assert starts(prefix) == starts([d for d in full if d.index < cut])
        assert [e.closed for e in prefix[:-1]] == [True] * (len(prefix) - 1)
    assert not detect_deviations(values[:101])[-1].closed


def test_recurring_spikes_become_normal_and_a_bigger_one_is_still_found() -> None:
    """A spike that recurs is learned (not alerted for ever); a larger new one is news."""
    values = _noise(300, 4)
    for i in (60, 66, 72, 78):
        values[i] = 400.0
    values[200] = 900.0
    idx = [d.index for d in detect_deviations(values)]
    assert 60 in idx
    assert 78 not in idx  # the fourth identical spike is what this series does
    assert 200 in idx


def test_step_is_one_episode_accepted_by_the_baseline() -> None:
    """A level shift is reported once, and the episode closes when the level is accepted."""
    values = _noise(200, 5) + _noise(200, 6, level=160.0)
    found = detect_deviations(values)
    assert len(found) == 1
    (e,) = found
    assert 200 <= e.index < 205
    assert e.closed
    assert e.accepted
    assert e.direction == "up"


def test_burst_is_one_episode_with_its_extent_and_peak() -> None:
    """Three consecutive outliers are one episode: start, end and peak are reported."""
    values = _noise(200, 30)
    values[150:153] = [200.0, 260.0, 190.0]
    (e,) = detect_deviations(values)
    assert (e.index, e.end, e.peak, e.points) == (150, 152, 151, 3)
    assert e.peak_value == 260.0
    assert e.closed
    assert not e.accepted


def test_episode_still_open_at_the_end_is_reported_open() -> None:
    """An anomaly that lasts until the newest point is an open episode (the alert is live)."""
    values = _noise(200, 31) + [200.0] * 5
    (e,) = detect_deviations(values)
    assert e.index == 200
    assert not e.closed
    assert e.end == 204


def test_series_that_never_goes_quiet_still_rearms() -> None:
    """Hourly cron spikes are normal after a few hours; a genuinely new spike is found."""
    rng = random.Random(32)
    values = [(500.0 if i % 12 == 0 else 100.0) + rng.gauss(0, 2) for i in range(600)]
    values[450] = 2000.0
    idx = [e.index for e in detect_deviations(values)]
    assert 450 in idx
    assert len([i for i in idx if i > 100]) == 1


def test_min_relative_change_silences_quiet_series() -> None:
    """On a very quiet series a tiny absolute change is not a deviation."""
    values = [1000.0 + 0.01 * (i % 3) for i in range(100)] + [1005.0]
    assert detect_deviations(values) == []
    assert [d.index for d in detect_deviations(values, min_relative_change=0.0)] == [100]


def test_constant_history_gives_a_large_finite_score() -> None:
    """With a constant history a change is found with a finite score (JSON-safe)."""
    (d,) = detect_deviations([0.0] * 30 + [1.0])
    assert d.index == 30
    assert math.isfinite(d.score)
    assert d.score > 100
    assert d.relative_change is None  # baseline 0
    json.dumps(d.as_dict(), allow_nan=False)


def test_missing_values_are_skipped_and_timestamps_carried() -> None:
    """None and NaN are neither judged nor part of the history; timestamps are attached."""
    values: list[float | None] = [10.0] * 30 + [None, math.nan, 50.0]
    ts = [1000.0 + 60 * i for i in range(len(values))]
    (d,) = detect_deviations(values, timestamps=ts, warmup_period=0)
    assert d.index == 32
    assert d.timestamp == ts[32]


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"window": 1}, InvalidValueError),
        ({"window": 2.5}, InvalidTypeError),
        ({"threshold": -1.0}, InvalidValueError),
        ({"threshold": "high"}, InvalidTypeError),
        ({"min_relative_change": math.nan}, InvalidValueError),
        ({"regime_points": 0}, InvalidValueError),
        ({"transform": "cube"}, InvalidValueError),
        ({"period": 0.0}, InvalidValueError),
        ({"timestamps": [1.0]}, InvalidValueError),
    ],
)
def test_deviation_arguments_are_checked(kwargs: dict[str, object], exc: type[Exception]) -> None:
    """Bad arguments raise at once, naming the argument."""
    with pytest.raises(exc):
        detect_deviations([1.0, 2.0, 3.0], **kwargs)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)), max_size=80))
def test_detectors_never_raise_on_odd_input(values: list[float | None]) -> None:
    """Any mix of numbers, None, NaN and infinities is handled without an exception."""
    for d in detect_deviations(values):
        assert isinstance(d, Episode)
        assert Deviation is Episode
        json.dumps(d.as_dict(), allow_nan=False)
    for method in CHANGE_POINT_METHODS:
        found = detect_change_points(values, method=method, permutations=9)
        cps = [c.index for c in found]
        assert cps == sorted(cps)
        assert all(0 < i < len(values) for i in cps)
        for c in found:
            json.dumps(c.as_dict(), allow_nan=False)


@pytest.mark.parametrize("method", CHANGE_POINT_METHODS)
def test_single_step_located_within_margin(method: str) -> None:
    """Each method finds one clear step close to where it happened."""
    values = _noise(300, 7) + _noise(300, 8, level=115.0)
    (cp,) = _cps(values, method=method)
    assert abs(cp - 300) <= 5


@pytest.mark.parametrize("method", CHANGE_POINT_METHODS)
@pytest.mark.parametrize("seed", range(3))
def test_no_change_series_gives_no_change_point(method: str, seed: int) -> None:
    """Noise without any change yields no change point (firing on noise is worse than none)."""
    assert detect_change_points(_noise(500, 100 + seed), method=method) == []


@pytest.mark.parametrize("method", ["binseg", "pelt"])
def test_outliers_are_not_change_points(method: str) -> None:
    """Isolated spikes are clipped before segmentation, so they are not regimes."""
    values = _noise(400, 9)
    for i in (50, 151, 260, 333):
        values[i] = 900.0
    assert detect_change_points(values, method=method) == []


def test_several_steps_up_and_down() -> None:
    """Steps up and down are all found by the default method."""
    values = _noise(150, 10) + _noise(150, 11, 130) + _noise(150, 12, 90) + _noise(150, 13)
    found = _cps(values)
    assert len(found) == 3
    for got, want in zip(found, (150, 300, 450), strict=True):
        assert abs(got - want) <= 5


def test_variance_change_is_found() -> None:
    """A change of the noise level alone is a new regime for the mean-and-variance cost."""
    values = _noise(300, 14, sd=1.0) + _noise(300, 15, sd=6.0)
    (cp,) = _cps(values)
    assert abs(cp - 300) <= 10


def test_indices_refer_to_the_input_with_gaps() -> None:
    """Indices count the None entries that were skipped."""
    values: list[float | None] = [*_noise(100, 16), None, None, *_noise(100, 17, level=140)]
    (cp,) = _cps(values)
    assert abs(cp - 102) <= 3


def test_edivisive_is_deterministic_and_seeded() -> None:
    """The permutation test uses a seeded RNG: the same call gives the same answer."""
    values = _noise(200, 18) + _noise(200, 19, level=106)
    first = detect_change_points(values, method="edivisive")
    assert first == detect_change_points(values, method="edivisive")


def test_short_series_gives_nothing() -> None:
    """Fewer than two minimum segments cannot contain a change."""
    assert detect_change_points([1.0, 5.0, 9.0]) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "magic"},
        {"cost": "l1"},
        {"min_size": 1},
        {"penalty_factor": 0},
        {"sig_level": 1.5},
        {"permutations": 0},
        {"transform": "cube"},
    ],
)
def test_change_point_arguments_are_checked(kwargs: dict[str, object]) -> None:
    """Bad arguments raise InvalidValueError naming the argument."""
    with pytest.raises(InvalidValueError) as info:
        detect_change_points([1.0] * 20, **kwargs)  # type: ignore[arg-type]
    assert next(iter(kwargs)) in str(info.value)


def test_sparse_counts_flag_only_new_values() -> None:
    """On a mostly-zero count series only a value never seen before is a deviation."""
    values = [0.0] * 40 + [1.0] + [0.0] * 30 + [1.0] + [0.0] * 20 + [1.0, 0.0, 4.0]
    assert [d.index for d in detect_deviations(values)] == [40, 94]


def test_slow_drift_reads_as_start_and_end_not_a_staircase() -> None:
    """A ramp between two flat stretches gives at most its two ends, not many small steps."""
    rng = random.Random(21)
    values = [100 + rng.gauss(0, 1) + min(max(i - 200, 0), 200) * 0.05 for i in range(600)]
    found = _cps(values)
    assert 1 <= len(found) <= 2
    assert all(190 <= i <= 420 for i in found)


@pytest.mark.parametrize("seed", range(3))
def test_autocorrelated_noise_is_not_a_change(seed: int) -> None:
    """Wandering AR(1) noise (coefficient 0.8) is not cut into regimes."""
    rng = random.Random(seed)
    state, values = 0.0, []
    for _ in range(600):
        state = 0.8 * state + rng.gauss(0, 0.6)
        values.append(100 + state)
    assert detect_change_points(values) == []
    assert detect_deviations(values) == []


@pytest.mark.parametrize("method", CHANGE_POINT_METHODS)
def test_values_near_the_float_limits_give_finite_json_safe_results(method: str) -> None:
    """Huge and subnormal values neither overflow nor leak inf/NaN into the results."""
    values: list[float | None] = [0.0] * 5 + [-1.0, 0.0, 1.0, 1.4e155, 0.0, 5e-324, 0.0, 3.0]
    values += [1.7e308, -1e300, 5e-324] * 10
    for c in detect_change_points(values, method=method, permutations=9):
        json.dumps(c.as_dict(), allow_nan=False)
    for e in detect_deviations(values):
        json.dumps(e.as_dict(), allow_nan=False)


def test_deviation_rule_fires_for_the_episode_and_resolves_after_it() -> None:
    """A deviation alert rule keeps its value while the episode goes on, 0 once it ended."""
    from sounding.analysis import AlertRule, rule_value

    rule = AlertRule("dev", "app.latency", kind="deviation")
    base = [100.0 + (i % 7) - 3 for i in range(60)]
    first = rule_value(rule, [*base, 200.0])
    assert first is not None
    assert first > 90
    assert rule_value(rule, [*base, 200.0, 210.0]) == pytest.approx(first)  # same episode
    assert rule_value(rule, [*base, 200.0, 210.0, 100.0, 101.0, 99.0, 100.0]) == 0.0


def test_moderate_single_point_needs_the_next_to_confirm_it() -> None:
    """A point between one and two thresholds out is noise unless the next one agrees; a
    strong single point alerts at once."""
    base = _noise(300, 40)
    lone = list(base)
    lone[200] = 130.0
    assert detect_deviations(lone) == []
    pair = list(base)
    pair[200:202] = [130.0, 130.0]
    assert [(e.index, e.points) for e in detect_deviations(pair)] == [(200, 2)]
    strong = list(base)
    strong[200] = 170.0
    assert [e.index for e in detect_deviations(strong)] == [200]
