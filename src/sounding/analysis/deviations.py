"""Causal deviation detection that reports *episodes*, not points.

A deviation is an :class:`Episode`: reported once when it starts (start index and time, value,
baseline, score, direction), kept open while it lasts (its peak is tracked), and closed when
the series is back at its baseline or when the baseline has accepted the new level (a step is
one episode, not a stream of alerts). A closed episode re-arms the detector, so a series that
never goes quiet can still report a genuinely new anomaly.

Each point is judged only against points before it, so the same call works offline over a
history and online one point at a time: a prefix of the input gives a prefix of the output
(an episode still open at the end of the prefix is reported with ``closed=False``).

How a point is judged (pure Python, about 12 microseconds a point; see ``docs/analysis.md``):

1. **Variance-stabilising transform**, chosen from the first ``warmup`` values
   (``transform="auto"``): non-negative integers (counts) get ``2 sqrt(x + 3/8)``
   (Anscombe) when small and ``log(x + 1)`` when their median is 20 or more (overdispersed
   counts); other non-negative data (durations, gauges) ``log(x + c)`` with ``c`` 1 % of their
   median; data with negative values is left as it is. Chosen again after a change from a
   constant history (a launch).
2. **Local level**: the median of the last ``level_window`` accepted (transformed) points;
   the point's *residual* is its distance from that level.
3. **What is normal for this series**: the residuals over the seasonal history (``period``
   seconds, a week by default, when timestamps are given, with no alert in the first
   ``warmup_period``; else the last ``window`` points). Recurring behaviour (hourly cron
   spikes, a nightly job, a slow mode, a second mode) leaves large residuals there, so it is
   not novel the next time.
4. **A robust scale with floors**: the interquartile range of the residual history / 1.349
   (the sample standard deviation when most residuals are tied, as for sparse counts), never
   below half the data's resolution (the smallest step between distinct values seen,
   through the transform), so quantized gauges and tiny levels cannot make a 23-sigma event
   out of a jitter.

Two channels open an episode. The *point channel*: a score of at least ``threshold`` and a
residual beyond the second most extreme of the history by ``margin`` times the larger of the
scale and the gap to the eighth (capped at four scales: a heavy tail widens its own margin).
The *shift channel*: the median of the last hour (12 points) against the median of the two
hours before, scored against its own history (``shift_threshold``) and novel against the same
time of day on earlier days (so a step too small for any single point is seen within the hour,
and a nightly job is normal at night but not at noon); its scale is at least the rounding sd
of a difference of two medians (a resolution step / sqrt(6)). A period shorter than a day
(1-12 hours: a 6-hourly batch) is detected from the shifts themselves (omega squared of their
phase, re-detected every 6 hours) and "the same time of day" becomes the same phase of it.
Both also need the change to be at least
``min_relative_change`` of ``max(|baseline|, resolution)`` in the original units (a change of
one count at zero is a change, a change of 0.001 on a level of 100 is not).

A point-channel episode starting below twice the threshold needs the next point to confirm
it (except on a mostly tied history: sparse counts, where single points are the events).
An episode stays open while its points stay at least ``threshold / 2`` scales out in the same
direction, and closes after ``quiet_points`` points back inside; its residuals join the
history only then, so the prior scale holds while it lasts and what recurs is learned. When it
has lasted ``regime_points`` anomalous points, the level accepts the new regime (the local
window is refilled from the episode's points, only its first two residuals join the history)
and the episode closes: one step, one alert. A new regime much noisier than the old scale, or
after a constant history, is learned afresh. After a gap of more than ``level_window`` missing
points (or of more than 12 sampling steps with timestamps), the local level is rebuilt
before points are judged again.

Scores are finite: the scale is never 0 (when no resolution is known yet it is floored at
0.1 % of the level, or 0.001 at level 0) and scores are capped at 1e12.

>>> values = [100.0 + (i % 5) for i in range(40)] + [180.0] + [100.0 + (i % 5) for i in range(9)]
>>> [(e.index, e.direction, e.closed) for e in detect_deviations(values)]
[(40, 'up', True)]
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from sounding.analysis._inputs import prepare
from sounding.analysis._robust import choose_transform
from sounding.core.exceptions import InvalidTypeError, InvalidValueError

__all__ = [
    "DEFAULT_DEVIATION_THRESHOLD",
    "DEFAULT_MIN_RELATIVE_CHANGE",
    "DEVIATION_TRANSFORMS",
    "Deviation",
    "Episode",
    "detect_deviations",
]

#: Default robust-score threshold (chosen on the training seed of ``bench/datasets``).
DEFAULT_DEVIATION_THRESHOLD = 5.0
#: Default minimum relative change (0.2 = 20 %, ``MetricsConfig.deviation_threshold_percent``).
DEFAULT_MIN_RELATIVE_CHANGE = 0.2
#: Default score threshold of the shift channel (the last hour's mean against the level).
DEFAULT_SHIFT_THRESHOLD = 4.0
#: Default novelty margin, in scales beyond the seasonal history's extreme residual.
DEFAULT_MARGIN = 1.0
#: The transforms ``detect_deviations`` accepts (case-insensitive).
DEVIATION_TRANSFORMS: tuple[str, ...] = ("auto", "none", "log", "sqrt")
_DAY = 86400.0
_MAX_HISTORY = 4032  # residuals kept at most (two weeks of 5-minute points)
_IQR_TO_SD = 1.349
_GAP_RANK = 8
_CONFIRM = 2.0  # single points scoring below this many thresholds need a second one
_SCORE_CAP = 1e12
_GAP_CAP = 4.0  # the tail gap widens the novelty margin up to this many scales
_RES_FLOOR = 0.5  # the scale is at least half a resolution step
_SHIFT_MARGIN = 0.5  # the shift channel's novelty margin, relative to ``margin``
_BINS = 24  # time-of-day bins (hours) for novelty with timestamps
_BIN_WIDTH = 86400.0 / _BINS
_RECENT = 24  # recent residuals always in the novelty comparison (two hours at 5 min)
_RANK = 2  # novelty: beyond the second most extreme residual of the history
_KEEP_ACCEPTED = 2  # residuals of an accepted step kept (a recurring level change is learned)
_NEW_NOISE = 3.0  # a new regime this many scales noisier resets the history
_SQRT6 = math.sqrt(6.0)
_SHIFT = 12  # points in the shift channel's mean (an hour at 5 minutes)
_WEEK = 7 * 86400.0
_FOLDS = (24, 12, 8, 6, 4, 3, 2, 1)  # candidate periods (hours), a day first (wins ties)
_FOLD_BIN = 1200.0  # phase bins of 20 minutes for the period detection
_FOLD_EVERY = 6 * 3600.0  # the period is re-detected at most this often (seconds)
_FOLD_DAYS = 3  # days of shifts the period is detected from
_FOLD_TOL = 0.95  # a shorter period explaining this share of the best one's is chosen
_FOLD_MIN = 0.2  # share of the variance a period must explain (adjusted) to be used


@dataclass(frozen=True)
class Episode:
    """One deviation episode: an anomaly reported once, with its extent.

    ``index``/``timestamp`` and ``value`` are those of the first anomalous point (the
    moment to alert), ``baseline`` what the series was expected to be there (original
    units), ``score`` the signed robust score of that first point (finite).
    ``end``/``end_timestamp`` is the last anomalous point, ``peak``/``peak_value``/
    ``peak_score`` the most extreme one, ``points`` how many anomalous points it had.
    ``closed`` is ``False`` while the episode is still open at the end of the input;
    ``accepted`` says it closed because the baseline accepted a new level (a step).
    Timestamps are float epoch seconds (UTC) when timestamps were given, else ``None``.
    """

    index: int
    value: float
    baseline: float
    score: float
    direction: Literal["up", "down"]
    timestamp: float | None = None
    end: int = -1
    end_timestamp: float | None = None
    peak: int = -1
    peak_value: float = math.nan
    peak_score: float = 0.0
    points: int = 1
    closed: bool = True
    accepted: bool = False

    @property
    def start(self) -> int:
        """The index of the first anomalous point (same as ``index``)."""
        return self.index

    @property
    def relative_change(self) -> float | None:
        """``(value - baseline) / |baseline|`` (``None`` when the baseline is 0)."""
        if self.baseline == 0:
            return None
        rel = (self.value - self.baseline) / abs(self.baseline)
        return rel if math.isfinite(rel) else None

    @property
    def peak_relative_change(self) -> float | None:
        """``(peak_value - baseline) / |baseline|`` (``None`` when the baseline is 0)."""
        if self.baseline == 0:
            return None
        rel = (self.peak_value - self.baseline) / abs(self.baseline)
        return rel if math.isfinite(rel) else None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (every number finite or ``None``)."""
        return {
            "index": self.index,
            "timestamp": self.timestamp,
            "value": self.value,
            "baseline": self.baseline,
            "score": self.score,
            "direction": self.direction,
            "relative_change": self.relative_change,
            "end": self.end,
            "end_timestamp": self.end_timestamp,
            "peak": self.peak,
            "peak_value": self.peak_value,
            "peak_score": self.peak_score,
            "points": self.points,
            "closed": self.closed,
            "accepted": self.accepted,
        }


#: The former name of a detection; ``detect_deviations`` returns episodes, which keep its
#: fields (``index``, ``value``, ``baseline``, ``score``, ``direction``, ``timestamp``).
Deviation = Episode


def _finite(score: float) -> float:
    """Scores are capped at +-1e12 (values near the float limits over a tiny scale)."""
    if score != score:
        return 0.0
    return max(min(score, _SCORE_CAP), -_SCORE_CAP)


def _check_int(name: str, value: object, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidTypeError(name, value, f"an integer >= {minimum}")
    if value < minimum:
        raise InvalidValueError(name, value, f"an integer >= {minimum}")
    return value


def _check_number(name: str, value: object, allowed: str, positive: bool = False) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise InvalidTypeError(name, value, allowed)
    f = float(value)
    if not math.isfinite(f) or f < 0 or (positive and f == 0):
        raise InvalidValueError(name, value, allowed)
    return f


class _Sorted:
    """Values kept sorted and in arrival order, evicted by key, forgettable (lazily)."""

    __slots__ = ("dead", "items", "sorted")

    def __init__(self) -> None:
        self.items: deque[tuple[float, float]] = deque()
        self.sorted: list[float] = []
        self.dead: set[float] = set()

    def pop(self) -> float | None:
        """Evict the oldest value; return it, or ``None`` if it was already forgotten."""
        key, r = self.items.popleft()
        if key in self.dead:
            self.dead.discard(key)
            return None
        del self.sorted[bisect.bisect_left(self.sorted, r)]
        return r

    def add(self, key: float, r: float) -> None:
        self.items.append((key, r))
        bisect.insort(self.sorted, r)

    def forget(self, key: float, r: float) -> bool:
        srt = self.sorted
        k = bisect.bisect_left(srt, r)
        if k < len(srt) and srt[k] == r:
            del srt[k]
            self.dead.add(key)
            return True
        return False


class _History:
    """Residuals over the seasonal history: sorted for quantiles, running sums for the
    standard deviation, evicted by key (time or index) and forgettable. With timestamps it
    also keeps them per hour of the day, so novelty is judged against the same time of day
    (a nightly job is normal at night, not at noon)."""

    __slots__ = ("all", "bins", "fold", "limit", "next_fold", "s1", "s2", "span")

    def __init__(self, span: float | None, limit: int, by_time: bool = False) -> None:
        self.span = span
        self.limit = limit
        self.all = _Sorted()
        self.bins = [_Sorted() for _ in range(_BINS)] if span is not None and by_time else []
        self.s1 = 0.0
        self.s2 = 0.0
        self.fold = _BINS  # the detected period in hours (a divisor of a day)
        self.next_fold = -math.inf

    def update_fold(self, key: float) -> None:
        """Detect the series' period among the divisors of a day (1, 2, 3, 4, 6, 8, 12 or
        24 hours) seen at least twice in the last three days of residuals: each is scored
        by the share of their variance its phase explains, adjusted for its number of
        phase bins (omega squared); the shortest within ``_FOLD_TOL`` of the best is used
        when the best explains at least ``_FOLD_MIN``, else a day. A 6-hourly batch is then
        normal at each of its four times of day after one day, not after four."""
        self.next_fold = key + _FOLD_EVERY
        items = self.all.items
        dead = self.all.dead
        since = key - _FOLD_DAYS * _DAY
        vals: list[tuple[float, float]] = []
        for j in range(len(items) - 1, -1, -1):
            k, v = items[j]
            if k < since:
                break
            if k not in dead:
                vals.append((k, v))
        n = len(vals)
        if n < 2 * _DAY / _FOLD_BIN:
            return
        mean = sum(v for _, v in vals) / n
        sst = sum((v - mean) * (v - mean) for _, v in vals)
        if sst <= 0:
            return
        # One pass into 20-minute bins of the day; a shorter period merges them.
        fine = int(_DAY // _FOLD_BIN)
        sums = [0.0] * fine
        counts = [0] * fine
        for k, v in vals:
            g = int(k % _DAY // _FOLD_BIN)
            sums[g] += v
            counts[g] += 1
        scores: list[tuple[int, float]] = []
        covered = key - vals[-1][0]
        for hours in _FOLDS:
            if covered < 2 * hours * 3600.0 - _FOLD_BIN:
                continue  # a period must have been seen twice (shifts are autocorrelated)
            width = int(hours * 3600.0 // _FOLD_BIN)
            gs = [0.0] * width
            gc = [0] * width
            for g in range(fine):
                gs[g % width] += sums[g]
                gc[g % width] += counts[g]
            ssb = sum(a * a / c for a, c in zip(gs, gc, strict=True) if c) - n * mean * mean
            m = sum(1 for c in gc if c)
            if m < 2 or n <= m:
                continue
            msw = max(sst - ssb, 0.0) / (n - m)
            scores.append((hours, (ssb - (m - 1) * msw) / (sst + msw)))
        top = max((w for _, w in scores), default=-math.inf)
        self.fold = _BINS
        if top >= _FOLD_MIN:
            # The shortest period that explains nearly as much as the best (parsimony: a
            # 6-hourly pattern explains as much folded by 24 h, by chance a little more).
            self.fold = min(h for h, w in scores if w >= _FOLD_TOL * top)

    @property
    def sorted(self) -> list[float]:
        return self.all.sorted

    @staticmethod
    def _bin(key: float) -> int:
        return int(key % _DAY // _BIN_WIDTH)

    def add(self, key: float, r: float) -> None:
        # The hot path of detect_deviations: kept free of method calls.
        a = self.all
        items = a.items
        srt = a.sorted
        dead = a.dead
        bins = self.bins
        limit = self.limit
        cutoff = key - self.span if self.span is not None else -math.inf
        while items and (items[0][0] <= cutoff or len(items) >= limit):
            k0, v0 = items.popleft()
            if dead and k0 in dead:
                dead.discard(k0)
            else:
                del srt[bisect.bisect_left(srt, v0)]
                self.s1 -= v0
                self.s2 -= v0 * v0
            if bins:
                bins[int(k0 % _DAY // _BIN_WIDTH)].pop()
        if bins:
            bins[int(key % _DAY // _BIN_WIDTH)].add(key, r)
        items.append((key, r))
        bisect.insort(srt, r)
        self.s1 += r
        self.s2 += r * r

    def forget(self, added: list[tuple[float, float]]) -> None:
        """Drop residuals measured against a level the series has left (a step)."""
        for key, r in added:
            if len(self.all.sorted) > 3 and self.all.forget(key, r):
                self.s1 -= r
                self.s2 -= r * r
                if self.bins:
                    self.bins[self._bin(key)].forget(key, r)

    def centre_scale(self) -> tuple[float, float]:
        """The median and the robust scale (IQR / 1.349, else the standard deviation)."""
        srt = self.all.sorted
        h = len(srt)
        scale = (srt[(3 * h) // 4] - srt[h // 4]) / _IQR_TO_SD
        if scale <= 0:
            var = (self.s2 - self.s1 * self.s1 / h) / max(h - 1, 1)
            scale = math.sqrt(var) if var > 0 else 0.0
        return srt[h // 2], scale

    def novelty(
        self, r: float, scale: float, margin: float, key: float, by_time: bool = True
    ) -> int:
        """+1 (-1) when ``r`` is beyond the second largest (smallest) residual by ``margin``
        times the larger of ``scale`` and the gap to the eighth one, else 0: what recurs is
        normal, a one-off is not, and a heavy tail (a slow mode) widens its own margin.
        With timestamps the residuals compared are those within an hour of this time of
        day on earlier days and those of the last two hours."""
        if by_time and self.bins and len(self.all.items) >= _BINS:
            b = self._bin(key)
            pool: list[float] = []
            fold = self.fold
            near = {(b + d + j * fold) % _BINS for j in range(_BINS // fold) for d in (-1, 0, 1)}
            for c in near:
                srt = self.bins[c].sorted
                pool.extend(srt[:_GAP_RANK])
                pool.extend(srt[-_GAP_RANK:])
            items = self.all.items
            for j in range(len(items) - 1, max(len(items) - 1 - _RECENT, -1), -1):
                k2, v = items[j]
                if k2 not in self.all.dead:
                    pool.append(v)
            srt = sorted(pool)
        else:
            srt = self.all.sorted
        h = len(srt)
        if h == 0:
            return 0
        k = _RANK if h >= _RANK else h
        k2 = _GAP_RANK if h >= _GAP_RANK else h
        top = srt[h - k]
        cap = _GAP_CAP * scale
        if r >= top + margin * max(scale, min(top - srt[h - k2], cap)):
            return 1
        bottom = srt[k - 1]
        if r <= bottom - margin * max(scale, min(srt[k2 - 1] - bottom, cap)):
            return -1
        return 0


def detect_deviations(
    values: object,
    timestamps: object | None = None,
    *,
    window: int = 288,
    period: float | None = None,
    level_window: int = 12,
    warmup: int = 20,
    warmup_period: float = _DAY,
    threshold: float = DEFAULT_DEVIATION_THRESHOLD,
    shift_threshold: float = DEFAULT_SHIFT_THRESHOLD,
    margin: float = DEFAULT_MARGIN,
    min_relative_change: float = DEFAULT_MIN_RELATIVE_CHANGE,
    regime_points: int = 24,
    quiet_points: int = 3,
    transform: str = "auto",
    regime_window: int | None = None,
) -> list[Episode]:
    """The deviation episodes of ``values`` (causal, robust, seasonal; see the module).

    ``values``: a 1-D sequence (list, tuple, numpy array, pandas Series) of numbers with
    ``None``/NaN/``pd.NA`` gaps, which are skipped. ``timestamps``: one per value, epoch
    seconds, ``datetime`` (naive = UTC), pandas ``Timestamp`` or numpy ``datetime64``,
    non-decreasing; with them the seasonal history is ``period`` seconds long (a day by
    default), without them it is the last ``window`` points (288: a day of 5-minute points).
    ``regime_window`` is accepted for compatibility and ignored.

    >>> [e.index for e in detect_deviations([10.0, 10.2, 9.9, 10.1] * 10 + [30.0])]
    [40]
    """
    del regime_window
    _check_int("window", window, 3)
    _check_int("level_window", level_window, 1)
    _check_int("warmup", warmup, 3)
    _check_int("regime_points", regime_points, 1)
    _check_int("quiet_points", quiet_points, 1)
    threshold = _check_number("threshold", threshold, "a finite number > 0", positive=True)
    shift_threshold = _check_number(
        "shift_threshold", shift_threshold, "a finite number > 0", positive=True
    )
    margin = _check_number("margin", margin, "a finite number >= 0")
    min_rel = _check_number("min_relative_change", min_relative_change, "a finite number >= 0")
    if period is not None:
        period = _check_number("period", period, "a finite number of seconds > 0", True)
    warmup_period = _check_number("warmup_period", warmup_period, "a finite number of seconds >= 0")
    if not isinstance(transform, str) or transform.lower() not in DEVIATION_TRANSFORMS:
        raise InvalidValueError("transform", transform, "one of " + ", ".join(DEVIATION_TRANSFORMS))
    xs, ts = prepare(values, timestamps)
    span = (_WEEK if period is None else period) if ts is not None else None
    keep = threshold / 2.0

    out: list[Episode] = []
    # Warm-up: the transform is chosen from the first ``warmup`` finite values.
    finite_idx = [i for i, v in enumerate(xs[: 50 * warmup]) if v == v and abs(v) != math.inf]
    sample = [xs[i] for i in finite_idx[:warmup]]
    fwd, inv = choose_transform(transform.lower(), sample)

    level: deque[float] = deque()
    level_sorted: list[float] = []
    limit = _MAX_HISTORY if span is not None else window
    points = _History(span, limit)  # residuals of single points from the local level
    shifts = _History(span, limit, by_time=True)  # shift of the last ``_SHIFT`` points' mean
    lag = 2 * level_window  # the shift channel's reference: the median of the points before
    last_q: deque[float] = deque()
    last_s: list[float] = []
    lag_q: deque[float] = deque()
    lag_s: list[float] = []

    def forget_recent() -> None:
        last_q.clear()
        last_s.clear()
        lag_q.clear()
        lag_s.clear()

    resolution = math.inf
    prev_raw = math.nan
    prev_t = math.nan
    step_t = math.nan  # the smallest sampling step seen
    missing_run = 0
    seen = 0
    first_t = math.nan
    warm_until = math.inf  # with timestamps: no alert before ``warmup_period`` of data
    judge_from = 0  # after a change to a noisier regime: learn before judging again
    ep_from_constant = False
    ep_tentative = False  # opened by a moderate single point: needs a second one

    # Open episode state.
    open_dir = 0
    ep_start = ep_last = ep_peak = 0
    ep_value = ep_base = ep_score = ep_peak_value = ep_peak_score = 0.0
    ep_points = ep_quiet = 0
    ep_tail: deque[float] = deque(maxlen=level_window)
    ep_raw: deque[float] = deque(maxlen=2 * level_window)  # raw values of the episode
    ep_keys: list[tuple[float, float]] = []  # point residuals the episode added
    ep_shift_keys: list[tuple[float, float]] = []

    def level_add(y: float) -> None:
        if len(level) == level_window:
            old = level.popleft()
            del level_sorted[bisect.bisect_left(level_sorted, old)]
        level.append(y)
        bisect.insort(level_sorted, y)

    def relearn(retransform: bool) -> None:
        """Forget the histories and learn the new regime afresh (after a change from a
        constant history, or to a much noisier regime); ``retransform`` re-chooses the
        transform from the new regime's values (a constant says nothing about it)."""
        nonlocal points, shifts, fwd, inv, judge_from
        if retransform:
            fwd, inv = choose_transform(transform.lower(), list(ep_raw))
        points = _History(span, limit)
        shifts = _History(span, limit, by_time=True)
        level.clear()
        level_sorted.clear()
        forget_recent()
        for v in list(ep_raw)[-level_window:]:
            level_add(fwd(v))
        judge_from = seen + _SHIFT + level_window

    def settle(keep_first: int | None) -> None:
        """Add a finished episode's residuals to the histories (all of them when it went
        back to the baseline: what recurs is learned; the first few when the baseline
        accepted a new level). They are held back while it is open, so the scale stays the
        prior one instead of being re-estimated from the anomaly."""
        for key0, r0 in ep_keys[:keep_first]:
            points.add(key0, r0)
        for key0, s0 in ep_shift_keys[:keep_first]:
            shifts.add(key0, s0)

    def emit(closed: bool, accepted: bool) -> None:
        if ep_tentative and ep_points == 1:
            return  # a moderate single point the next one did not confirm: noise
        out.append(
            Episode(
                index=ep_start,
                value=ep_value,
                baseline=ep_base,
                score=_finite(ep_score),
                direction="up" if open_dir > 0 else "down",
                timestamp=None if ts is None else ts[ep_start],
                end=ep_last,
                end_timestamp=None if ts is None else ts[ep_last],
                peak=ep_peak,
                peak_value=ep_peak_value,
                peak_score=_finite(ep_peak_score),
                points=ep_points,
                closed=closed,
                accepted=accepted,
            )
        )

    for i, x in enumerate(xs):
        if x != x or x == math.inf or x == -math.inf:
            missing_run += 1
            continue
        if ts is not None:
            t = ts[i]
            if first_t != first_t:
                first_t = t
                warm_until = t + warmup_period
            if prev_t == prev_t:
                dt = t - prev_t
                if dt > 0 and not dt >= step_t:
                    step_t = dt
            gap = prev_t == prev_t and step_t == step_t and t - prev_t > 12 * step_t
            prev_t = t
            key = t
        else:
            gap = missing_run >= level_window
            key = float(i)
        missing_run = 0
        res_prev = resolution  # judged with what earlier points showed (causal)
        if prev_raw == prev_raw and x != prev_raw:
            d = abs(x - prev_raw)
            if d < resolution:
                resolution = d
        prev_raw = x
        y = fwd(x)
        seen += 1
        if gap and len(level) >= 1:
            # The local level is stale after a long gap: rebuild it before judging again.
            level.clear()
            level_sorted.clear()
            forget_recent()
            if open_dir:
                settle(None)
                emit(True, False)
                open_dir = 0
        # The shift channel: the median of the last hour against the median of the two
        # hours before it, so a step too small for any single point is seen within the hour.
        # Both windows are kept sorted incrementally.
        last_q.append(y)
        bisect.insort(last_s, y)
        if len(last_q) > _SHIFT:
            old = last_q.popleft()
            del last_s[bisect.bisect_left(last_s, old)]
            lag_q.append(old)
            bisect.insort(lag_s, old)
            if len(lag_q) > lag:
                old = lag_q.popleft()
                del lag_s[bisect.bisect_left(lag_s, old)]
        sh = math.nan
        if len(lag_q) == lag:
            ref = 0.5 * (lag_s[(lag - 1) // 2] + lag_s[lag // 2])
            sh = 0.5 * (last_s[(_SHIFT - 1) // 2] + last_s[_SHIFT // 2]) - ref
        warming = seen <= warmup or seen < judge_from or (ts is not None and key < warm_until)
        if warming or len(level) < min(level_window, 3) or len(points.sorted) < 3:
            if len(level):
                points.add(key, y - level_sorted[len(level_sorted) // 2])
            if sh == sh:
                shifts.add(key, sh)
            level_add(y)
            continue
        m = len(level_sorted)
        b = level_sorted[m // 2]
        if not m % 2:
            b = 0.5 * (level_sorted[m // 2 - 1] + b)
        r = y - b
        med_r, scale = points.centre_scale()
        base_orig = inv(b + med_r)
        if abs(base_orig) < 1e-9 * (1.0 + abs(x)):
            base_orig = 0.0  # the inverse transform's rounding (sqrt(3/8) squared)
        if res_prev != math.inf:
            floor = _RES_FLOOR * abs(fwd(base_orig + res_prev) - fwd(base_orig))
            denom = max(abs(base_orig), res_prev)
        else:
            lvl = abs(base_orig)
            floor = abs(fwd(base_orig + (1e-3 * lvl if lvl else 1e-3)) - (b + med_r))
            denom = abs(base_orig)
        if scale < floor:
            scale = floor
        if scale <= 0:
            scale = 1e-12
        z = (r - med_r) / scale
        zs = 0.0
        shift_dir = 0
        srt_s = shifts.sorted
        hs = len(srt_s)
        # Mostly tied shifts (sparse counts: the median is 0 almost always) say nothing
        # the point channel does not; the channel needs a spread to calibrate against.
        if sh == sh and hs >= 3 and srt_s[(3 * hs) // 4] > srt_s[hs // 4]:
            med_s, scale_s = shifts.centre_scale()
            # Two medians of values rounded to a step each carry a rounding error of sd
            # step / sqrt(12): their difference has sd step / sqrt(6), the least its scale
            # can be (a one-step move of the hour's median on small counts is not news).
            # The step is the one in the direction of the move: through a square root or a
            # log, one count down from a small level is a larger step than one count up.
            q_sd = floor / _RES_FLOOR / _SQRT6
            if sh < med_s and res_prev != math.inf and base_orig - res_prev >= 0:
                down = abs(fwd(base_orig) - fwd(base_orig - res_prev)) / _SQRT6
                if down > q_sd:
                    q_sd = down
            if scale_s < q_sd:
                scale_s = q_sd
            zs = (sh - med_s) / scale_s
            if abs(zs) >= shift_threshold:
                if shifts.bins and key >= shifts.next_fold:
                    shifts.update_fold(key)
                shift_dir = shifts.novelty(sh, scale_s, margin * _SHIFT_MARGIN, key)
                if shift_dir and shift_dir * zs < 0:
                    shift_dir = 0
        if open_dir:
            if z * open_dir >= keep or zs * open_dir >= keep:
                ep_points += 1
                ep_last = i
                ep_quiet = 0
                ep_tail.append(y)
                ep_raw.append(x)
                ep_keys.append((key, r))
                if sh == sh:
                    ep_shift_keys.append((key, sh))
                if abs(z) > abs(ep_peak_score):
                    ep_peak, ep_peak_value, ep_peak_score = i, x, z
                if ep_points >= regime_points:
                    # The baseline accepts the new level: one step, one alert. The
                    # episode's residuals were measured against the old level: forgotten.
                    level.clear()
                    level_sorted.clear()
                    for v in ep_tail:
                        level_add(v)
                    settle(_KEEP_ACCEPTED)
                    emit(True, True)
                    open_dir = 0
                    q = sorted(ep_tail)
                    spread = (q[(3 * len(q)) // 4] - q[len(q) // 4]) / _IQR_TO_SD
                    if spread > _NEW_NOISE * scale or ep_from_constant:
                        # The new regime is noisier than anything before (a launch, a
                        # variance change): the old scale does not apply; learn afresh.
                        relearn(ep_from_constant)
                continue
            ep_quiet += 1
            if ep_quiet >= quiet_points:
                settle(None)
                emit(True, False)
                open_dir = 0
                if ep_from_constant:
                    # A history that never varied calibrates nothing: learn afresh.
                    relearn(True)
            if -open_dir * z < threshold:
                points.add(key, r)
                if sh == sh:
                    shifts.add(key, sh)
                level_add(y)
                continue
            if open_dir:
                settle(None)
                emit(True, False)
                open_dir = 0
        point_dir = (
            points.novelty(r, scale, margin, key, by_time=False) if abs(z) >= threshold else 0
        )
        if point_dir and point_dir * z < 0:
            point_dir = 0
        direction = point_dir or shift_dir
        if direction:
            # The relative test in the original units: of the point, or of the shifted mean.
            if point_dir:
                rel_ok = abs(x - base_orig) >= min_rel * denom and x != base_orig
            else:
                shifted = inv(b + med_r + sh)
                rel_ok = abs(shifted - base_orig) >= min_rel * denom
            if rel_ok:
                ep_from_constant = res_prev == math.inf
                open_dir = direction
                ep_start = ep_last = ep_peak = i
                ep_value = ep_peak_value = x
                ep_base = base_orig
                ep_score = ep_peak_score = z if point_dir else zs
                # A moderate single point must be confirmed by the next one, unless the
                # history is mostly tied (sparse counts: single points are the events).
                srt_p = points.sorted
                hp = len(srt_p)
                ep_tentative = (
                    not shift_dir
                    and abs(z) < _CONFIRM * threshold
                    and srt_p[(3 * hp) // 4] > srt_p[hp // 4]
                )
                ep_points = 1
                ep_quiet = 0
                ep_tail.clear()
                ep_tail.append(y)
                ep_raw.clear()
                ep_raw.append(x)
                ep_keys = [(key, r)]
                ep_shift_keys = [(key, sh)] if sh == sh else []
                continue
        points.add(key, r)
        if sh == sh:
            shifts.add(key, sh)
        level_add(y)
    if open_dir:
        emit(False, False)
    return out
