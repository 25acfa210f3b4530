"""Sub-daily periods detected from the data, and the shift channel's floor on small counts."""

from __future__ import annotations

import math
import random

from sounding.analysis import detect_deviations
from sounding.analysis.deviations import _History

_STEP = 300.0  # five minutes
_DAY_POINTS = 288
_T0 = 1_700_006_400.0  # a midnight (UTC)


def _cron(days: int, seed: int) -> list[float]:
    """A base of 40 with a x3 spike every 15 minutes and a 20-minute x2.5 batch every 6 h."""
    rng = random.Random(seed)
    out = []
    for i in range(days * _DAY_POINTS):
        mu = 40.0 * (3.0 if i % 3 == 0 else 1.0) * (2.5 if 30 <= i % 72 < 34 else 1.0)
        out.append(round(mu * math.exp(rng.gauss(0.0, 0.1)), 1))
    return out


def _times(n: int) -> list[float]:
    return [_T0 + _STEP * i for i in range(n)]


def _shift_history(pattern: list[float], days: int, seed: int) -> _History:
    rng = random.Random(seed)
    h = _History(7 * 86400.0, 4032, by_time=True)
    for i in range(days * _DAY_POINTS):
        h.add(_T0 + _STEP * i, pattern[i % len(pattern)] + rng.gauss(0.0, 0.05))
    return h


def test_six_hourly_pattern_is_detected_as_its_period() -> None:
    """A bump every 6 h folds the time-of-day bins by 6 hours."""
    h = _shift_history([0.5 if i < 12 else 0.0 for i in range(72)], 3, 1)
    h.update_fold(_T0 + 3 * 86400.0)
    assert h.fold == 6


def test_daily_pattern_keeps_a_day() -> None:
    """A once-a-day bump (a nightly job) is not folded: it is normal at night only."""
    h = _shift_history([0.5 if i < 12 else 0.0 for i in range(_DAY_POINTS)], 3, 2)
    h.update_fold(_T0 + 3 * 86400.0)
    assert h.fold == 24


def test_noise_keeps_a_day() -> None:
    """Residuals without a pattern detect no shorter period."""
    h = _shift_history([0.0], 3, 3)
    h.update_fold(_T0 + 3 * 86400.0)
    assert h.fold == 24


def test_six_hourly_batch_over_spikes_is_learned_within_a_day() -> None:
    """After the first day, a batch that recurs every 6 h raises no episode."""
    for seed in range(3):
        values = _cron(5, seed)
        found = detect_deviations(values, _times(len(values)))
        late = [e.index for e in found if e.index >= _DAY_POINTS + _DAY_POINTS // 2]
        assert late == []


def test_a_new_level_in_a_six_hourly_series_is_still_found() -> None:
    """Folding by 6 h does not hide a genuine step: a x3 level is one new episode."""
    values = _cron(5, 4)
    start = 4 * _DAY_POINTS + 100
    values[start:] = [3.0 * v for v in values[start:]]
    found = detect_deviations(values, _times(len(values)))
    assert any(start <= e.index < start + 12 and e.direction == "up" for e in found)


def _poisson(mu: float, rng: random.Random) -> float:
    k, p, u = 0, math.exp(-mu), rng.random()
    total = p
    while u > total:
        k += 1
        p *= mu / k
        total += p
    return float(k)


def test_small_counts_median_moving_one_step_is_not_an_alert() -> None:
    """Poisson counts around 1: the hour's median moving by one count is not news."""
    n = 7 * _DAY_POINTS
    found = 0
    for seed in range(3):
        rng = random.Random(seed)
        values = [
            _poisson(1.0 + 0.3 * math.sin(2 * math.pi * i / _DAY_POINTS), rng) for i in range(n)
        ]
        found += len(detect_deviations(values, _times(n)))
    assert found <= 2  # six with the former floor (a quarter step)


def test_small_counts_hour_median_one_count_down_is_not_an_alert() -> None:
    """Counts around 1.5: the hour's median dropping one count (a coarser step) is not news."""
    n = 7 * _DAY_POINTS
    down = 0
    for seed in range(4):
        rng = random.Random(seed)
        values = [
            _poisson(1.5 * (1 + 0.3 * math.sin(2 * math.pi * i / _DAY_POINTS)), rng)
            for i in range(n)
        ]
        down += sum(e.direction == "down" for e in detect_deviations(values, _times(n)))
    assert down <= 2  # five when the floor used the step above the level
