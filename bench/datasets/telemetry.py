"""A seeded generator of realistic telemetry, labelled by detectability.

Every series is 14 days at 5-minute steps (4032 points, epoch timestamps from a Monday
00:00 UTC), generated from ``numpy.random.default_rng(seed)``: the same seed gives the same
data on every machine, so nothing large is committed. Families (``FAMILIES``):

==============  ==============================================================================
``latency``     lognormal body (sigma 0.15-0.4) around 20-1200 ms following a daily load
                curve, a slow mode x3-x10 in 0.5-5 % of intervals, rounded to 0.1 ms
``throughput``  negative-binomial counts around base x daily x weekly profile, base 0.5-500
                per interval, weekends x0.4-0.8
``errors``      sparse Poisson counts at 0.01-0.3 per interval
``cpu``         CPU % at 0.5-10 % with AR(1) noise, rounded to 1, 0.5 or 0.1
``queue``       an integer queue depth (Poisson around a daily profile, 1-30)
``cron``        a base level plus normal, never-labelled spikes: hourly x3-x8 (one point)
                and a nightly job x2-x5 for 30-60 min
``launches``    a constant until a launch (day 2-5), then noisy counts; the launch is a change
                point and an alert
``seasonal``    AR(1) noise with rho 0.9-0.98 plus a daily sine of 1-4 noise sd
==============  ==============================================================================

Events, 2-4 per series after a 2-day warm-up and at least 12 h apart: release steps at weekday
working hours (x0.5-x0.8 or x1.25-x3, permanent), 1-3 day drifts (to x1.3-x2.5) then a reset,
bursts of 1-6 points at x5-x50 or an outage to 0 (1-6 points), a variance change (the slow
mode 5x more frequent for latency, the noise x3 elsewhere; 6-24 h). Missing data: 1-3 %
scattered points and 0-2 gaps of 30 min to 6 h (``None``).

Labels, by detectability, so that nothing impossible is demanded:

* an **alert window** (``windows``) is required when, within some hour of the event, the
  summed change of the mean it causes is at least 3 standard deviations of an hour's sum of
  the noise and at least 20 % of that hour's expected sum; otherwise the window is in
  ``ignore_windows`` (a detection there is neither a hit nor a false alarm). A window runs
  from the event's start to 2 h after its end (a step's end is its start).
* a **change point** (``change_points``) is a step, a drift's reset or a launch whose change
  of the mean, summed over a day, is at least 3 standard deviations of a day's sum of the
  noise; other event boundaries (bursts, outages, variance changes, drift starts, and steps
  too small) are in ``cp_ignore``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["FAMILIES", "STEP", "TelemetrySeries", "generate"]

FAMILIES: tuple[str, ...] = (
    "latency",
    "throughput",
    "errors",
    "cpu",
    "queue",
    "cron",
    "launches",
    "seasonal",
)
STEP = 300.0
DAY_POINTS = 288
HOUR = 12
DAYS = 14
N = DAYS * DAY_POINTS
START = 1793577600.0  # Monday 2026-11-02 00:00 UTC


@dataclass
class TelemetrySeries:
    """One series and its labels (indices into ``values``)."""

    name: str
    family: str
    timestamps: list[float]
    values: list[float | None]
    windows: list[tuple[int, int]] = field(default_factory=list)
    ignore_windows: list[tuple[int, int]] = field(default_factory=list)
    change_points: list[int] = field(default_factory=list)
    cp_ignore: list[int] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    @property
    def days(self) -> float:
        """Days covered."""
        return len(self.values) / DAY_POINTS


def _daily(rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """A smooth daily load curve (peak in working hours), mean about 1."""
    t = np.arange(N) % DAY_POINTS / DAY_POINTS
    peak = rng.uniform(0.45, 0.65)
    curve = 1.0 + amplitude * np.cos(2 * np.pi * (t - peak))
    return np.asarray(curve / curve.mean())


def _weekly(rng: np.random.Generator) -> np.ndarray:
    weekend = rng.uniform(0.4, 0.8)
    day = np.arange(N) // DAY_POINTS
    return np.where(day % 7 >= 5, weekend, 1.0)


def _working(i: int) -> bool:
    day, slot = divmod(i, DAY_POINTS)
    return day % 7 < 5 and 9 * HOUR <= slot < 17 * HOUR


def _event_times(rng: np.random.Generator, kinds: list[str], lo: int) -> list[int]:
    """Start times at least 12 h apart after ``lo``; steps at weekday working hours."""
    first = max(lo, 2 * DAY_POINTS)
    for _ in range(5000):
        pos = []
        for kind in kinds:
            i = int(rng.integers(first, N - DAY_POINTS))
            if kind == "step":
                while not _working(i):
                    i = int(rng.integers(first, N - DAY_POINTS))
            pos.append(i)
        order = sorted(pos)
        if all(b - a >= 12 * HOUR for a, b in itertools.pairwise(order)):
            return pos
    return [first + k * DAY_POINTS for k in range(len(kinds))]


def _hour_var(sd: np.ndarray, rho: float, s: int, e: int) -> float:
    """Variance of the sum of the noise over ``[s, e)`` (AR(1) correlation ``rho``)."""
    v = sd[s:e] ** 2
    m = e - s
    if rho <= 0:
        return float(v.sum())
    factor = m + 2 * sum((m - k) * rho**k for k in range(1, m))
    return float(v.mean() * factor)


class _Family:
    """Mean path and noise of one series; events multiply the mean."""

    rho = 0.0

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.mu = np.ones(N)
        self.var_factor = np.ones(N)  # noise (or slow-mode frequency) multiplier

    def sd(self, mu: np.ndarray, var_factor: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def sample(self, mu: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def mean_of(self, mu: np.ndarray, var_factor: np.ndarray) -> np.ndarray:
        """The expected value given the mean path (latency: the slow mode shifts it)."""
        return mu


class _Latency(_Family):
    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__(rng)
        self.sigma = rng.uniform(0.15, 0.4)
        self.p = rng.uniform(0.005, 0.05)
        self.m = rng.uniform(3, 10)
        base = math.exp(rng.uniform(math.log(20), math.log(1200)))
        self.mu = base * _daily(rng, rng.uniform(0.1, 0.5))

    def mean_of(self, mu: np.ndarray, vf: np.ndarray) -> np.ndarray:
        # Labels judge the body: the slow mode is normal for this series, and a robust
        # detector sees a shift of the body, not of the mixture's mean.
        return np.asarray(mu * math.exp(self.sigma**2 / 2))

    def sd(self, mu: np.ndarray, vf: np.ndarray) -> np.ndarray:
        s2 = self.sigma**2
        return np.asarray(mu * math.sqrt((math.exp(s2) - 1) * math.exp(s2)))

    def sample(self, mu: np.ndarray) -> np.ndarray:
        body = mu * np.exp(self.rng.normal(0, self.sigma, N))
        p = np.minimum(self.p * self.var_factor, 0.5)
        slow = self.rng.random(N) < p
        return np.asarray(np.round(np.where(slow, body * self.m, body), 1))


class _Throughput(_Family):
    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__(rng)
        base = math.exp(rng.uniform(math.log(0.5), math.log(500)))
        self.k = rng.uniform(5, 50)
        self.mu = base * _daily(rng, rng.uniform(0.3, 0.8)) * _weekly(rng)

    def sd(self, mu: np.ndarray, vf: np.ndarray) -> np.ndarray:
        return np.asarray(np.sqrt(mu + vf * mu**2 / self.k))

    def sample(self, mu: np.ndarray) -> np.ndarray:
        k = self.k / self.var_factor
        lam = self.rng.gamma(k, np.maximum(mu, 1e-12) / k)
        return np.asarray(self.rng.poisson(lam).astype(float))


class _Errors(_Family):
    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__(rng)
        self.mu = np.full(N, rng.uniform(0.01, 0.3))

    def sd(self, mu: np.ndarray, vf: np.ndarray) -> np.ndarray:
        return np.asarray(np.sqrt(mu + mu**2 * vf / 20))

    def sample(self, mu: np.ndarray) -> np.ndarray:
        a = 20 / self.var_factor  # gamma-Poisson: variance mu + mu^2 vf / 20
        return np.asarray(self.rng.poisson(mu * self.rng.gamma(a, 1 / a)).astype(float))


class _Cpu(_Family):
    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__(rng)
        self.rho = rng.uniform(0.3, 0.8)
        level = rng.uniform(0.5, 10)
        self.q = float(rng.choice([1.0, 0.5, 0.1]))
        self.noise = level * rng.uniform(0.05, 0.2)
        self.mu = level * _daily(rng, rng.uniform(0.0, 0.3))

    def sd(self, mu: np.ndarray, vf: np.ndarray) -> np.ndarray:
        s = self.noise * np.sqrt(vf)
        return np.asarray(np.sqrt(s**2 + self.q**2 / 12))

    def sample(self, mu: np.ndarray) -> np.ndarray:
        e = np.zeros(N)
        innov = self.rng.normal(0, 1, N) * self.noise * math.sqrt(1 - self.rho**2)
        innov *= np.sqrt(self.var_factor)
        acc = 0.0
        for i in range(N):
            acc = self.rho * acc + innov[i]
            e[i] = acc
        return np.asarray(np.maximum(np.round((mu + e) / self.q) * self.q, 0.0))


class _Queue(_Family):
    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__(rng)
        self.mu = rng.uniform(1, 30) * _daily(rng, rng.uniform(0.2, 0.6))

    def sd(self, mu: np.ndarray, vf: np.ndarray) -> np.ndarray:
        return np.asarray(np.sqrt(mu + mu**2 * vf / 20))

    def sample(self, mu: np.ndarray) -> np.ndarray:
        a = 20 / self.var_factor
        return np.asarray(self.rng.poisson(mu * self.rng.gamma(a, 1 / a)).astype(float))


class _Cron(_Family):
    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__(rng)
        level = math.exp(rng.uniform(math.log(5), math.log(200)))
        self.cv = rng.uniform(0.03, 0.15)
        pattern = np.ones(N)
        minute = int(rng.integers(0, HOUR))
        pattern[np.arange(N) % HOUR == minute] *= rng.uniform(3, 8)
        start = int(rng.integers(0, 6 * HOUR))
        length = int(rng.integers(6, 13))
        slot = np.arange(N) % DAY_POINTS
        pattern[(slot >= start) & (slot < start + length)] *= rng.uniform(2, 5)
        self.mu = level * pattern

    def sd(self, mu: np.ndarray, vf: np.ndarray) -> np.ndarray:
        # The noise is relative to the base level, not to the spikes.
        return np.asarray(np.full(N, self.cv * float(np.median(mu))) * np.sqrt(vf))

    def sample(self, mu: np.ndarray) -> np.ndarray:
        noise = self.rng.normal(0, 1, N) * self.cv * float(np.median(self.mu))
        return np.asarray(np.round(np.maximum(mu + noise * np.sqrt(self.var_factor), 0), 2))


class _Launch(_Family):
    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__(rng)
        self.launch = int(rng.integers(2 * DAY_POINTS, 5 * DAY_POINTS))
        self.constant = float(rng.choice([0.0, 1.0]))
        base = math.exp(rng.uniform(math.log(2), math.log(200)))
        self.mu = base * _daily(rng, rng.uniform(0.2, 0.6))
        self.mu[: self.launch] = self.constant

    def sd(self, mu: np.ndarray, vf: np.ndarray) -> np.ndarray:
        out = np.sqrt(mu + mu**2 * vf / 20)
        out[: self.launch] = 0.5
        return np.asarray(out)

    def sample(self, mu: np.ndarray) -> np.ndarray:
        lam = mu * self.rng.gamma(20 / self.var_factor, self.var_factor / 20)
        out = self.rng.poisson(lam).astype(float)
        out[: self.launch] = self.constant
        return np.asarray(out)


class _Seasonal(_Family):
    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__(rng)
        self.rho = rng.uniform(0.9, 0.98)
        self.noise = rng.uniform(0.5, 5)
        level = rng.uniform(20, 200)
        amp = rng.uniform(1, 4) * self.noise
        t = np.arange(N) / DAY_POINTS
        self.mu = level + amp * np.sin(2 * np.pi * (t - rng.random()))

    def sd(self, mu: np.ndarray, vf: np.ndarray) -> np.ndarray:
        return np.asarray(np.full(N, self.noise) * np.sqrt(vf))

    def sample(self, mu: np.ndarray) -> np.ndarray:
        innov = self.rng.normal(0, 1, N) * self.noise * math.sqrt(1 - self.rho**2)
        innov *= np.sqrt(self.var_factor)
        e = np.zeros(N)
        acc = float(self.rng.normal(0, self.noise))
        for i in range(N):
            acc = self.rho * acc + innov[i]
            e[i] = acc
        # Events multiply the level, not the noise: mu is already multiplied.
        return np.asarray(np.round(mu + e, 3))


_CLASSES: dict[str, Any] = {
    "latency": _Latency,
    "throughput": _Throughput,
    "errors": _Errors,
    "cpu": _Cpu,
    "queue": _Queue,
    "cron": _Cron,
    "launches": _Launch,
    "seasonal": _Seasonal,
}


def _factor(rng: np.random.Generator) -> float:
    return float(rng.uniform(0.5, 0.8) if rng.random() < 0.4 else rng.uniform(1.25, 3.0))


def _one(
    rng: np.random.Generator, family: str, idx: int, classes: dict[str, Any] | None = None
) -> TelemetrySeries:
    fam: _Family = (_CLASSES if classes is None else classes)[family](rng)
    ts = [START + i * STEP for i in range(N)]
    out = TelemetrySeries(f"{family}-{idx}", family, ts, [])
    mult = np.ones(N)
    events: list[tuple[str, int, int, np.ndarray, np.ndarray]] = []
    if family == "launches":
        launch = fam.launch  # type: ignore[attr-defined]
        out.change_points.append(launch)
        out.windows.append((launch, launch + 2 * HOUR))
        out.events.append(f"launch@{launch}")
    k = int(rng.integers(2, 5))
    lo = fam.launch + DAY_POINTS if family == "launches" else 0  # type: ignore[attr-defined]
    if family == "launches":
        k = min(k, 3)
    kinds = [
        str(rng.choice(["step", "drift", "burst", "variance"], p=[0.35, 0.2, 0.3, 0.15]))
        for _ in range(k)
    ]
    times = _event_times(rng, kinds, lo)
    for kind, s in sorted(zip(kinds, times, strict=True), key=lambda e: e[1]):
        before_m, before_v = mult.copy(), fam.var_factor.copy()
        if kind == "step":
            f = _factor(rng)
            mult[s:] *= f
            end = s
            desc = f"step x{f:.2f}@{s}"
        elif kind == "drift":
            length = int(rng.integers(DAY_POINTS, 3 * DAY_POINTS))
            end = min(s + length, N - 12 * HOUR)
            up = rng.random() < 0.7
            f = float(rng.uniform(1.3, 2.5) if up else rng.uniform(0.4, 0.7))
            ramp = np.linspace(1.0, f, end - s)
            mult[s:end] *= ramp
            desc = f"drift x{f:.2f}@{s}-{end}"
        elif kind == "burst":
            length = int(rng.integers(1, 7))
            end = min(s + length, N) - 1
            if rng.random() < 0.3:
                mult[s : end + 1] *= 0.0
                desc = f"outage@{s}+{length}"
            else:
                f = float(rng.uniform(5, 50))
                mult[s : end + 1] *= f
                desc = f"burst x{f:.1f}@{s}+{length}"
        else:
            length = int(rng.integers(6 * HOUR, 24 * HOUR))
            end = min(s + length, N - 1)
            factor = 5.0 if family == "latency" else 9.0  # noise sd x3
            fam.var_factor[s:end] *= factor
            desc = f"variance@{s}-{end}"
        events.append((kind, s, end, before_m, before_v))
        out.events.append(desc)
    base_mu = fam.mu
    final_mu = base_mu * mult
    values = fam.sample(final_mu)
    # Labels: compare the mean path with and without each event.
    for kind, s, end, before_m, before_v in events:
        after_m = before_m.copy()
        after_v = before_v.copy()
        if kind == "step":
            f = float(mult[s] / before_m[s]) if before_m[s] else 1.0
            after_m[s:] *= f
        else:
            seg = slice(s, end + 1)
            ratio = np.divide(
                mult[seg], before_m[seg], out=np.zeros(end + 1 - s), where=before_m[seg] != 0
            )
            after_m[seg] *= ratio
            after_v = fam.var_factor.copy()
        mean_before = fam.mean_of(base_mu * before_m, before_v)
        mean_after = fam.mean_of(base_mu * after_m, after_v)
        sd = fam.sd(base_mu * before_m, before_v)
        d = mean_after - mean_before
        w_end = min(end + 2 * HOUR, N - 1)
        visible = False
        for a in range(s, min(end + 1, N - HOUR) + 1, 3):
            excess = abs(float(d[a : a + HOUR].sum()))
            expect = float(mean_before[a : a + HOUR].sum())
            noise = math.sqrt(_hour_var(sd, fam.rho, a, a + HOUR))
            if excess >= 3 * noise and excess >= 0.2 * max(expect, 1e-9):
                visible = True
                break
        (out.windows if visible else out.ignore_windows).append((s, w_end))
        if kind in ("step", "drift"):
            at = s if kind == "step" else end
            span = slice(at, min(at + DAY_POINTS, N))
            if kind == "step":
                day_excess = abs(float(d[span].sum()))
            else:
                level = float(mean_after[at - 1] - mean_before[at - 1])
                day_excess = abs(level) * (span.stop - span.start)
            day_noise = math.sqrt(_hour_var(sd, fam.rho, span.start, span.stop))
            if day_excess >= 3 * day_noise:
                out.change_points.append(at)
            else:
                out.cp_ignore.append(at)
            if kind == "drift":
                out.cp_ignore.append(s)
        else:
            out.cp_ignore.extend([s, end + 1])
    # Missing data: scattered points and gaps.
    vals: list[float | None] = [float(v) for v in values]
    for i in rng.choice(N, int(N * rng.uniform(0.01, 0.03)), replace=False):
        vals[int(i)] = None
    for _ in range(int(rng.integers(0, 3))):
        g = int(rng.integers(6, 6 * HOUR + 1))
        s = int(rng.integers(0, N - g))
        for i in range(s, s + g):
            vals[i] = None
    out.values = vals
    out.windows.sort()
    out.ignore_windows.sort()
    out.change_points.sort()
    out.cp_ignore.sort()
    return out


def generate(seed: int, per_family: int = 10) -> list[TelemetrySeries]:
    """``per_family`` series of each family, deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    return [_one(rng, fam, i) for fam in FAMILIES for i in range(per_family)]
