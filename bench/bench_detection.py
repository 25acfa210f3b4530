"""Accuracy and speed of sounding's change-point and deviation detectors.

Run: ``python bench/bench_detection.py`` (add ``--tune`` to sweep the defaults on the
training seed). Scores use a labelled synthetic benchmark (``bench/datasets/detection.py``)
generated from a fixed seed: defaults were chosen on ``TRAIN_SEED`` and are reported here
on ``TEST_SEED``, which the tuning never saw.

Change points are matched one-to-one with a margin of 5 points. Deviations are point
detections: one within 5 points of a labelled deviation is correct, one in a "don't care"
region (onsets of small steps, variance changes, ramps) is not counted. Series without any
change count: every detection on them is a false positive. The peer is a plain trailing
mean +- 3 standard deviations, the rule most home-grown alerting uses.
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from datasets.detection import (
    CATEGORIES,
    LabelledSeries,
    generate,
    match_one_to_one,
    match_tolerant,
)
from sounding.analysis import detect_change_points, detect_deviations

TRAIN_SEED = 20261128
TEST_SEED = 7
MARGIN = 5
CP_METHODS = ("binseg", "pelt", "edivisive")


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def _fmt(prf: tuple[float, float, float]) -> str:
    return "P R F1 = {:.3f} {:.3f} {:.3f}".format(*prf)


def naive_deviations(values: Sequence[float], window: int = 50) -> list[int]:
    """Peer: trailing mean +- 3 standard deviations (not robust)."""
    out = []
    for i in range(20, len(values)):
        hist = values[max(0, i - window) : i]
        m = sum(hist) / len(hist)
        sd = math.sqrt(sum((v - m) ** 2 for v in hist) / (len(hist) - 1))
        if sd > 0 and abs(values[i] - m) > 3 * sd:
            out.append(i)
    return out


def score(
    data: list[LabelledSeries],
    detector: Callable[[list[float]], list[int]],
    kind: str,
) -> dict[str, tuple[int, int, int]]:
    """Summed (tp, fp, fn) per category and ``"overall"``."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for s in data:
        found = detector(s.values)
        if kind == "cp":
            tp, fp, fn = match_one_to_one(found, s.change_points, MARGIN)
        else:
            tp, fp, fn = match_tolerant(found, s.deviations, s.ignore, MARGIN)
        for key in (s.category, "overall"):
            t = totals[key]
            t[0] += tp
            t[1] += fp
            t[2] += fn
    return {k: (v[0], v[1], v[2]) for k, v in totals.items()}


def print_scores(title: str, results: dict[str, dict[str, tuple[int, int, int]]]) -> None:
    names = list(results)
    print(f"\n{title}")
    header = f"{'category':<15}" + "".join(f" | {n:^22}" for n in names)
    print(header)
    print(f"{'':<15}" + "".join(f" | {'P':>6} {'R':>6} {'F1':>6} {'FP':>1}" for _ in names))
    print("-" * len(header))
    for cat in (*CATEGORIES, "overall"):
        row = f"{cat:<15}"
        for n in names:
            tp, fp, fn = results[n].get(cat, (0, 0, 0))
            p, r, f = _prf(tp, fp, fn)
            row += f" | {p:6.2f} {r:6.2f} {f:6.2f} {fp:>2}"
        print(row)


def _step_series(n: int, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    out, level = [], 100.0
    for i in range(n):
        if i and i % 1000 == 0:
            level += rng.choice([-15.0, 15.0])
        out.append(level + rng.gauss(0, 3))
    return out


def timings(sizes: Sequence[int] = (1_000, 10_000, 100_000), budget: float = 60.0) -> None:
    """Seconds per call at each size. A size is skipped when the previous one, scaled
    linearly by the size ratio, would already exceed ``budget`` seconds."""
    print("\nrun time (seconds per call; steps every 1000 points, Gaussian noise)")
    cols = [*CP_METHODS, "deviations", "naive deviations (peer)"]
    print(f"{'points':>8}" + "".join(f" | {c:>24}" for c in cols))
    last: dict[str, tuple[int, float]] = {}
    for n in sizes:
        x = _step_series(n)
        row = f"{n:>8}"
        for c in cols:
            prev = last.get(c)
            if prev is not None and prev[1] * n / prev[0] > budget:
                row += f" | {'skipped (> budget)':>24}"
                last[c] = (n, math.inf)
                continue
            t0 = time.perf_counter()
            if c in CP_METHODS:
                detect_change_points(x, method=c)
            elif c == "deviations":
                detect_deviations(x)
            else:
                naive_deviations(x)
            dt = time.perf_counter() - t0
            last[c] = (n, dt)
            row += f" | {dt:>24.3f}"
        print(row)


def tune() -> None:
    """Sweep the main knobs on the training seed (used to choose the defaults)."""
    data = generate(TRAIN_SEED)
    for method in ("binseg", "pelt"):
        for cost in ("meanvar", "mean"):
            for factor in (2.0, 3.0, 4.0, 6.0, 8.0):
                res = score(
                    data,
                    lambda v, m=method, c=cost, f=factor: detect_change_points(
                        v, method=m, cost=c, penalty_factor=f
                    ),
                    "cp",
                )
                tp, fp, fn = res["overall"]
                print(method, cost, factor, _fmt(_prf(tp, fp, fn)))
    for sig in (0.01, 0.05):
        res = score(
            data, lambda v, s=sig: detect_change_points(v, method="edivisive", sig_level=s), "cp"
        )
        print("edivisive", sig, _fmt(_prf(*res["overall"])))
    for thr in (3.5, 4.0, 5.0, 6.0, 8.0):
        for rel in (0.1, 0.2):
            res = score(
                data,
                lambda v, t=thr, r=rel: [
                    d.index for d in detect_deviations(v, threshold=t, min_relative_change=r)
                ],
                "dev",
            )
            print("deviations", thr, rel, _fmt(_prf(*res["overall"])))


def main() -> None:
    if "--tune" in sys.argv:
        tune()
        return
    data = generate(TEST_SEED)
    print(
        f"labelled benchmark: {len(data)} series of 500 points, seed {TEST_SEED}, margin {MARGIN}"
    )
    cp = {
        m: score(data, lambda v, m=m: detect_change_points(v, method=m), "cp") for m in CP_METHODS
    }
    print_scores("change points (one-to-one matching)", cp)
    dev = {
        "detect_deviations": score(data, lambda v: [d.index for d in detect_deviations(v)], "dev"),
        "mean+-3sd (peer)": score(data, naive_deviations, "dev"),
    }
    print_scores("deviations (tolerant matching)", dev)
    timings()


if __name__ == "__main__":
    main()
