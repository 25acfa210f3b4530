"""A labelled benchmark of synthetic metric histories for change-point and deviation detection.

Every series is generated from a seeded ``random.Random``: the same seed gives the same data
set on every machine, so nothing large is committed. Categories (``CATEGORIES``):

=================  ==========================================================================
``none_gauss``     no change: Gaussian noise, coefficient of variation 1 %, 3 % or 10 %
``none_heavy``     no change: log-normal (latency-like, right-skewed) noise
``none_outliers``  no change in regime, isolated spikes (deviations, not change points)
``none_seasonal``  no change: a sinusoidal cycle about as large as the noise
``none_sparse``    no change: sparse Poisson counts (mean 0.05, 0.3 or 2 per interval)
``none_autocorr``  no change: AR(1) noise (coefficient 0.5, 0.8 or 0.9) that wanders
``step_large``     1-3 steps up or down of 5-10 noise standard deviations
``step_small``     1-3 steps up or down of 2-3 noise standard deviations
``step_outliers``  1-2 steps of 4-8 standard deviations, plus spikes
``variance``       the noise level triples or drops to a third (a change point)
``drift``          a slow linear ramp between two flat stretches (both ends are change points)
=================  ==========================================================================

Labels: ``change_points`` (first index of each new regime) and ``deviations`` (spikes, and
the onset of steps that are at least 25 % and 6 standard deviations large). ``ignore`` holds
indices where a deviation is neither required nor wrong (onsets of smaller steps, variance
changes, ramps): a detector may or may not flag those.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field

__all__ = ["CATEGORIES", "LabelledSeries", "generate", "match_one_to_one", "match_tolerant"]

CATEGORIES: tuple[str, ...] = (
    "none_gauss",
    "none_heavy",
    "none_outliers",
    "none_seasonal",
    "none_sparse",
    "none_autocorr",
    "step_large",
    "step_small",
    "step_outliers",
    "variance",
    "drift",
)


@dataclass
class LabelledSeries:
    """One synthetic series and its ground truth."""

    name: str
    category: str
    values: list[float]
    change_points: list[int]
    deviations: list[int]
    ignore: set[int] = field(default_factory=set)


def _positions(rng: random.Random, n: int, k: int, gap: int) -> list[int]:
    """``k`` sorted positions in ``[gap, n - gap)``, at least ``gap`` apart."""
    while True:
        pos = sorted(rng.sample(range(gap, n - gap), k))
        if all(b - a >= gap for a, b in itertools.pairwise(pos)):
            return pos


def _one(rng: random.Random, category: str, idx: int, n: int) -> LabelledSeries:
    base = rng.choice([5.0, 20.0, 100.0, 1000.0])
    cv = rng.choice([0.01, 0.03, 0.1])
    sigma = base * cv
    level = [base] * n
    scale = [sigma] * n
    cps: list[int] = []
    devs: list[int] = []
    ignore: set[int] = set()
    spikes: list[int] = []

    def add_steps(k: int, lo: float, hi: float) -> None:
        for p in _positions(rng, n, k, 40):
            size = rng.uniform(lo, hi) * sigma * rng.choice([-1.0, 1.0])
            current = level[p]
            if current + size <= base * 0.2:
                size = -size
            for i in range(p, n):
                level[i] += size
            cps.append(p)
            rel = abs(size) / abs(current)
            if rel >= 0.25 and abs(size) >= 6 * sigma:
                devs.append(p)
            else:
                ignore.update(range(p, p + 10))

    if category in ("step_large", "step_small", "step_outliers"):
        lo, hi = {"step_large": (5, 10), "step_small": (2, 3), "step_outliers": (4, 8)}[category]
        add_steps(rng.randint(1, 3 if category != "step_outliers" else 2), lo, hi)
    if category == "variance":
        p = rng.randint(n // 4, 3 * n // 4)
        factor = rng.choice([3.0, 1.0 / 3.0])
        for i in range(p, n):
            scale[i] = sigma * factor
        cps.append(p)
        ignore.update(range(p, n))
    if category == "drift":
        a = rng.randint(n // 5, 2 * n // 5)
        b = a + rng.randint(n // 5, 2 * n // 5)
        total = rng.uniform(5, 10) * sigma * rng.choice([-1.0, 1.0])
        for i in range(a, n):
            level[i] += total * min(1.0, (i - a) / (b - a))
        cps.extend([a, b])
        ignore.update(range(a, b + 10))
    if category in ("none_outliers", "step_outliers"):
        spikes = _positions(rng, n, rng.randint(2, 5), 25)

    if category == "none_sparse":
        lam = rng.choice([0.05, 0.3, 2.0])
        counts = []
        for _ in range(n):
            # Knuth's Poisson sampler: fine for small means.
            k, p, limit = 0, rng.random(), math.exp(-lam)
            while p > limit:
                k += 1
                p *= rng.random()
            counts.append(float(k))
        return LabelledSeries(f"{category}-{idx}", category, counts, [], [])

    if category == "none_autocorr":
        rho = rng.choice([0.5, 0.8, 0.9])
        state = 0.0
        wandering = []
        for _ in range(n):
            state = rho * state + rng.gauss(0.0, sigma * math.sqrt(1 - rho * rho))
            wandering.append(base + state)
        return LabelledSeries(f"{category}-{idx}", category, wandering, [], [])

    heavy = category == "none_heavy"
    seasonal_amp = sigma * rng.uniform(0.8, 1.5) if category == "none_seasonal" else 0.0
    period = rng.choice([24, 60, 144])
    values: list[float] = []
    for i in range(n):
        if heavy:
            # Log-normal around the level; shape chosen so the spread matches sigma roughly.
            s = math.log1p(cv)
            v = level[i] * math.exp(rng.gauss(0.0, s) - s * s / 2)
        else:
            v = level[i] + rng.gauss(0.0, scale[i])
        v += seasonal_amp * math.sin(2 * math.pi * i / period)
        values.append(v)
    for p in spikes:
        if p in cps or any(abs(p - c) <= 8 for c in cps):
            continue
        up = rng.random() < 0.8
        mag = max(rng.uniform(0.5, 3.0) * abs(level[p]), 10 * sigma)
        values[p] = (
            level[p] + mag
            if up
            else max(level[p] - max(0.5 * abs(level[p]), 8 * sigma), level[p] * 0.1)
        )
        devs.append(p)
    return LabelledSeries(
        name=f"{category}-{idx}",
        category=category,
        values=values,
        change_points=sorted(cps),
        deviations=sorted(devs),
        ignore=ignore,
    )


def generate(seed: int, per_category: int = 20, length: int = 500) -> list[LabelledSeries]:
    """The whole labelled data set for ``seed`` (``per_category`` series per category)."""
    rng = random.Random(seed)
    out: list[LabelledSeries] = []
    for category in CATEGORIES:
        for k in range(per_category):
            out.append(_one(rng, category, k, length))
    return out


def match_one_to_one(detected: list[int], truth: list[int], margin: int) -> tuple[int, int, int]:
    """(tp, fp, fn): each true point is matched by at most one detection within ``margin``."""
    used: set[int] = set()
    tp = 0
    for d in detected:
        best = None
        for t in truth:
            if (
                t not in used
                and abs(d - t) <= margin
                and (best is None or abs(d - t) < abs(d - best))
            ):
                best = t
        if best is not None:
            used.add(best)
            tp += 1
    return tp, len(detected) - tp, len(truth) - tp


def match_tolerant(
    detected: list[int], truth: list[int], ignore: set[int], margin: int
) -> tuple[int, int, int]:
    """(tp, fp, fn) for point detections: a detection within ``margin`` of a labelled point
    is correct (several may hit one label), one in ``ignore`` is not counted; a label is
    found when any detection is within ``margin``."""
    tp = fp = 0
    for d in detected:
        if any(abs(d - t) <= margin for t in truth):
            tp += 1
        elif d not in ignore:
            fp += 1
    fn = sum(1 for t in truth if not any(abs(d - t) <= margin for d in detected))
    return tp, fp, fn
