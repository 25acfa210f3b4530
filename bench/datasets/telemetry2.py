"""A second, differently built telemetry generator: the held-out check.

The detectors' defaults were chosen on ``telemetry.py``; this generator was written after
them, with other shapes and noise families, so that a score here says whether the models
generalise rather than whether the constants fit one generator. Same families, series
length, events and labelling rule (``telemetry._one``), so the tables line up:

==============  ==============================================================================
``latency``     gamma body (shape 4-16) with an *additive* daily bump and a Pareto tail
                (alpha 1.5-3, 1-4 % of points) instead of a slow mode; rounded to 1 ms
``throughput``  Poisson-lognormal counts (log-sd 0.1-0.4), two daily harmonics, a level per
                weekday (x0.85-1.15) and per weekend day (x0.3-0.9), base 1-2000
``errors``      Poisson counts at 0.02-0.5 per interval that follow a daily traffic curve
``cpu``         CPU % at 5-30 with a daily sine plus Student-t (4 df) noise, rounded to 1
``queue``       a small queue (0.3-4) with a daily profile, Poisson noise
``cron``        a base with 15-minute spikes x2-x4 (two points) and a 6-hourly batch x1.5-x3
``launches``    zero until a launch, then a lognormal gauge (memory, 50-5000) with a daily bump
``seasonal``    24 h and 12 h harmonics, AR(1) noise with rho 0.6-0.9, a weekend offset
==============  ==============================================================================
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from datasets.telemetry import (
    DAY_POINTS,
    FAMILIES,
    HOUR,
    N,
    TelemetrySeries,
    _Family,
    _one,
)

__all__ = ["FAMILIES", "generate"]

_T = np.arange(N) / DAY_POINTS  # days since the start (a Monday)


def _ar1(rng: np.random.Generator, rho: float, sd: float, scale: np.ndarray) -> np.ndarray:
    innov = rng.normal(0, 1, N) * sd * math.sqrt(1 - rho**2) * np.sqrt(scale)
    e = np.zeros(N)
    acc = float(rng.normal(0, sd))
    for i in range(N):
        acc = rho * acc + innov[i]
        e[i] = acc
    return e


class _Latency(_Family):
    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__(rng)
        self.shape = rng.uniform(4, 16)
        base = math.exp(rng.uniform(math.log(30), math.log(800)))
        bump = rng.uniform(0.1, 0.6) * base
        self.mu = base + bump * np.exp(-(((_T % 1) - rng.uniform(0.4, 0.7)) ** 2) / 0.02)
        self.alpha = rng.uniform(1.5, 3.0)
        self.p = rng.uniform(0.01, 0.04)

    def sd(self, mu: np.ndarray, vf: np.ndarray) -> np.ndarray:
        return np.asarray(mu / math.sqrt(self.shape) * np.sqrt(vf))

    def sample(self, mu: np.ndarray) -> np.ndarray:
        shape = self.shape / self.var_factor
        body = self.rng.gamma(shape, np.maximum(mu, 1e-9) / shape)
        tail = self.rng.random(N) < self.p
        body = np.where(tail, body * (1 + self.rng.pareto(self.alpha, N)) * 2, body)
        return np.asarray(np.round(body))


class _Throughput(_Family):
    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__(rng)
        base = math.exp(rng.uniform(math.log(1), math.log(2000)))
        self.s = rng.uniform(0.1, 0.4)
        phase = rng.random()
        daily = (
            1
            + rng.uniform(0.2, 0.6) * np.sin(2 * np.pi * (_T - phase))
            + rng.uniform(0.0, 0.2) * np.sin(4 * np.pi * (_T - phase))
        )
        level = np.concatenate([rng.uniform(0.85, 1.15, 5), rng.uniform(0.3, 0.9, 2)])
        weekday = level[(np.arange(N) // DAY_POINTS) % 7]
        self.mu = base * np.maximum(daily, 0.05) * weekday

    def sd(self, mu: np.ndarray, vf: np.ndarray) -> np.ndarray:
        s2 = self.s**2 * vf
        return np.asarray(np.sqrt(mu + mu**2 * (np.exp(s2) - 1)))

    def sample(self, mu: np.ndarray) -> np.ndarray:
        s = self.s * np.sqrt(self.var_factor)
        lam = mu * np.exp(self.rng.normal(0, 1, N) * s - s**2 / 2)
        return np.asarray(self.rng.poisson(lam).astype(float))


class _Errors(_Family):
    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__(rng)
        rate = rng.uniform(0.02, 0.5)
        self.mu = rate * np.maximum(1 + rng.uniform(0.3, 0.9) * np.sin(2 * np.pi * _T), 0.05)

    def sd(self, mu: np.ndarray, vf: np.ndarray) -> np.ndarray:
        return np.asarray(np.sqrt(mu * vf))

    def sample(self, mu: np.ndarray) -> np.ndarray:
        # A variance change clusters the errors (gamma mixing); otherwise plain Poisson.
        vf = self.var_factor
        mix = np.where(vf > 1, self.rng.gamma(1 / (vf - 1 + 1e-9), vf - 1 + 1e-9), 1.0)
        return np.asarray(self.rng.poisson(mu * mix).astype(float))


class _Cpu(_Family):
    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__(rng)
        level = rng.uniform(5, 30)  # x3 stays below the 100 % ceiling
        self.noise = level * rng.uniform(0.05, 0.15)
        self.mu = level * (1 + rng.uniform(0.05, 0.25) * np.sin(2 * np.pi * (_T - rng.random())))

    def sd(self, mu: np.ndarray, vf: np.ndarray) -> np.ndarray:
        return np.asarray(np.sqrt(2 * self.noise**2 * vf + 1 / 12))

    def sample(self, mu: np.ndarray) -> np.ndarray:
        t = self.rng.standard_t(4, N) * self.noise * np.sqrt(self.var_factor)
        return np.asarray(np.clip(np.round(mu + t), 0, 100))


class _Queue(_Family):
    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__(rng)
        self.mu = rng.uniform(0.3, 4) * (1 + rng.uniform(0.2, 0.7) * np.sin(2 * np.pi * _T))

    def sd(self, mu: np.ndarray, vf: np.ndarray) -> np.ndarray:
        return np.asarray(np.sqrt(mu * vf))

    def sample(self, mu: np.ndarray) -> np.ndarray:
        vf = self.var_factor
        mix = np.where(vf > 1, self.rng.gamma(1 / (vf - 1 + 1e-9), vf - 1 + 1e-9), 1.0)
        return np.asarray(self.rng.poisson(mu * mix).astype(float))


class _Cron(_Family):
    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__(rng)
        level = math.exp(rng.uniform(math.log(2), math.log(500)))
        self.cv = rng.uniform(0.05, 0.2)
        pattern = np.ones(N)
        i = np.arange(N)
        offset = int(rng.integers(0, 3))
        pattern[(i % 3 == offset)] *= rng.uniform(2, 4)  # every 15 minutes
        batch = int(rng.integers(0, 6 * HOUR))
        pattern[(i % (6 * HOUR) >= batch) & (i % (6 * HOUR) < batch + 4)] *= rng.uniform(1.5, 3)
        self.base = level
        self.mu = level * pattern

    def sd(self, mu: np.ndarray, vf: np.ndarray) -> np.ndarray:
        return np.asarray(self.cv * mu * np.sqrt(vf))

    def sample(self, mu: np.ndarray) -> np.ndarray:
        noise = np.exp(self.rng.normal(0, self.cv, N) * np.sqrt(self.var_factor))
        return np.asarray(np.round(mu * noise, 1))


class _Launch(_Family):
    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__(rng)
        self.launch = int(rng.integers(2 * DAY_POINTS, 5 * DAY_POINTS))
        base = math.exp(rng.uniform(math.log(50), math.log(5000)))
        self.s = rng.uniform(0.02, 0.15)
        self.mu = base * (1 + rng.uniform(0.05, 0.3) * np.sin(2 * np.pi * _T))
        self.mu[: self.launch] = 0.0

    def sd(self, mu: np.ndarray, vf: np.ndarray) -> np.ndarray:
        out = mu * self.s * np.sqrt(vf)
        out[: self.launch] = 0.5
        return np.asarray(out)

    def sample(self, mu: np.ndarray) -> np.ndarray:
        s = self.s * np.sqrt(self.var_factor)
        out = np.round(mu * np.exp(self.rng.normal(0, 1, N) * s), 1)
        out[: self.launch] = 0.0
        return np.asarray(out)


class _Seasonal(_Family):
    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__(rng)
        self.rho = rng.uniform(0.6, 0.9)
        self.noise = rng.uniform(0.5, 3)
        phase = rng.random()
        weekend = ((np.arange(N) // DAY_POINTS) % 7 >= 5) * rng.uniform(-2, 2) * self.noise
        self.mu = (
            rng.uniform(50, 300)
            + rng.uniform(1, 4) * self.noise * np.sin(2 * np.pi * (_T - phase))
            + rng.uniform(0.5, 2) * self.noise * np.sin(4 * np.pi * (_T - phase))
            + weekend
        )

    def sd(self, mu: np.ndarray, vf: np.ndarray) -> np.ndarray:
        return np.asarray(np.full(N, self.noise) * np.sqrt(vf))

    def sample(self, mu: np.ndarray) -> np.ndarray:
        return np.asarray(np.round(mu + _ar1(self.rng, self.rho, self.noise, self.var_factor), 2))


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


def generate(seed: int, per_family: int = 10) -> list[TelemetrySeries]:
    """``per_family`` series of each family, deterministic in ``seed``."""
    rng = np.random.default_rng(10_000 + seed)
    return [_one(rng, fam, i, _CLASSES) for fam in FAMILIES for i in range(per_family)]
