"""Metric instruments and their in-memory aggregation: the hot path.

``counter``, ``gauge``, ``histogram`` and ``summary`` return the same instrument for the same
name. Observations are aggregated per series (name + canonical tags) until the runtime calls
:meth:`Registry.collect`, which hands back one :class:`IntervalAggregate` per series that saw
data and resets it. Counters sum; gauges keep last/min/max; histograms and summaries keep
count/sum/min/max and a :class:`~sounding.core.sketch.QuantileSketch` (<= 1 % relative error).

The hot path does no I/O, no regex and no allocation beyond amortised list growth: a lock per
instrument, one dict lookup for tagged calls, and (for histograms) an append to a small buffer
that is folded into the sketch in batches. Memory is bounded: a per-metric cardinality limit
sends new series to one overflow series (tags ``{"overflow": "true"}``), counted under
``metrics.cardinality_overflow``. Bad values at run time (NaN, negative counter increments,
wrong types) are dropped and counted, never raised (except in strict test mode).

>>> import sounding
>>> exports = sounding.counter("recorder.exports", description="files exported")
>>> exports.inc(tags={"format": "wav"})
>>> wav = exports.bind(format="wav")
>>> wav.inc()
"""

from __future__ import annotations

import math
import sys
import threading
from _weakrefset import WeakSet  # what weakref.WeakSet is (threading, imported already, loads it)
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping

from sounding.collection import _wrap
from sounding.core import health
from sounding.core._typing import Generic, ParamSpec, TypeVar, cast
from sounding.core.clock import get_clock, on_clock_change
from sounding.core.config import current
from sounding.core.exceptions import (
    InvalidNameError,
    InvalidTypeError,
    InvalidValueError,
    MetricTypeConflictError,
)
from sounding.core.types import IntervalAggregate, MetricType, TagKey

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

    from sounding.collection._bulk import Intervals
    from sounding.core.snapshot import MetricSnapshot

__all__ = [
    "OVERFLOW_TAGS",
    "Counter",
    "Gauge",
    "Histogram",
    "Instrument",
    "Registry",
    "Summary",
    "counter",
    "gauge",
    "get_registry",
    "histogram",
    "record",
    "record_many",
    "summary",
    "validate_name",
]

P = ParamSpec("P")
R = TypeVar("R")

_WORD_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_LETTERS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_KEY_START: Final = _LETTERS | {"_"}
_KEY_CHARS: Final = _WORD_CHARS | {"."}


def _is_name(name: str) -> bool:
    r"""``[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*``, whole (checked without `re`, which a
    process that only counts does not load)."""
    return (
        name[:1] in _LETTERS
        and all(part and _WORD_CHARS.issuperset(part) for part in name.split("."))
    )


def _is_tag_key(key: str) -> bool:
    """``[A-Za-z_][A-Za-z0-9_.]{0,63}``, whole."""
    return len(key) <= 64 and key[:1] in _KEY_START and _KEY_CHARS.issuperset(key)
MAX_NAME_LENGTH: Final = 200
MAX_TAG_VALUE_LENGTH: Final = 200
_MAX_LEN: Final = MAX_TAG_VALUE_LENGTH
OVERFLOW_TAGS: Final[TagKey] = (("overflow", "true"),)
_count_overflow = health.tally("metrics.cardinality_overflow")
#: Observations buffered per histogram series before they are folded into the sketch.
_BATCH: Final = 256
#: Calls with other tags after which an instrument's remembered tags (``_last``) move on.
_LAST_STRIKES: Final = 8
_INF: Final = math.inf
#: The largest finite float: plain ints and floats are range-checked against it exactly
#: (``10**400 <= _MAX`` is False), so nothing that overflows a float reaches a cell.
_MAX: Final = sys.float_info.max

#: Under the GIL of CPython >= 3.11 the interpreter only switches threads at calls and
#: backward jumps, so a straight-line sequence of attribute updates with no call in it cannot
#: be interleaved with another thread's. The hot paths rely on that to skip the lock (which
#: costs more than the rest of an increment); collection swaps state with equally straight-line
#: code. Elsewhere (3.10, free-threaded builds) every update takes the instrument's lock.
LOCK_FREE: Final = sys.version_info >= (3, 11) and bool(
    getattr(sys, "_is_gil_enabled", lambda: True)()
)


#: The monotonic clock in use, followed through set_clock (one global load on the hot path
#: instead of three lookups through the clock module).
_mono: Callable[[], float] = get_clock().monotonic


def _follow_clock() -> None:
    global _mono
    _mono = get_clock().monotonic


on_clock_change(_follow_clock)


def validate_name(name: object, what: str = "name") -> str:
    """Check a metric name; raise :class:`InvalidNameError` saying what is allowed."""
    if not isinstance(name, str):
        raise InvalidTypeError(what, name, "a str")
    if not name or len(name) > MAX_NAME_LENGTH or not _is_name(name):
        raise InvalidNameError(
            what,
            name,
            f"1-{MAX_NAME_LENGTH} characters: letters, digits and '_', in dot-separated parts, "
            "starting with a letter (e.g. 'recorder.export.duration')",
        )
    from sounding.collection.scrub import identity_in_name

    found = identity_in_name(name)
    if found is not None:
        # Names are stored and sent as they are: they must not identify the machine.
        raise InvalidNameError(
            what, name, f"a name without the OS {found} name in it (it identifies the machine)"
        )
    return name


def _validate_tag_key(key: object) -> str:
    if not isinstance(key, str) or not _is_tag_key(key):
        raise InvalidNameError(
            "tag key",
            key,
            "1-64 letters, digits, '_' or '.', starting with a letter or '_'",
        )
    return key


def _guard_value(value: object) -> str:
    """Make a tag value safe to store: a short str that does not look personal."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_TAG_VALUE_LENGTH:
        health.count("tags.truncated")
        text = text[:MAX_TAG_VALUE_LENGTH]
    from sounding.collection.scrub import guard_tag_value

    return guard_tag_value(text)


def _number(value: object) -> float | None:
    """``value`` as a finite float, or ``None``: the slow path for what is not a plain float.

    Accepts bools, ints within float range and number-like scalars (``Decimal``, ``Fraction``,
    numpy scalars); refuses containers (a numpy array), strings and anything whose
    ``__float__`` fails. Never raises an ``Exception`` (user code may run in ``__float__``).
    """
    try:
        t = type(value)
        if (t is not float and t is not int and t is not bool) and (
            not hasattr(t, "__float__") or hasattr(t, "__len__")
        ):
            return None
        f = float(value)  # type: ignore[arg-type]
    except Exception:
        return None
    return f if f - f == 0 else None


class _CounterCell:
    __slots__ = ("n", "total")

    def __init__(self) -> None:
        self.total = 0.0
        self.n = 0


class _GaugeCell:
    __slots__ = ("hi", "last", "lo", "n", "total")

    def __init__(self) -> None:
        self.last = 0.0
        self.lo = _INF
        self.hi = -_INF
        self.n = 0
        self.total = 0.0


class _SketchCell:
    __slots__ = ("buf", "sketch")

    def __init__(self) -> None:
        # Imported here (struct, zlib, array): a process that only counts needs no sketch.
        from sounding.core.sketch import QuantileSketch

        self.buf: list[float] = []
        self.sketch = QuantileSketch()

    def fold(self) -> None:
        # Swap in one straight line (see LOCK_FREE), then fold the detached batch (handed
        # over: sorted in place).
        buf, self.buf = self.buf, []
        if buf:
            try:
                self.sketch._add_batch(buf)
            except Exception as exc:  # values are checked at the edge; count, never lose quietly
                health.count("metrics.dropped", len(buf))
                health.failure("metrics.fold", exc)


Cell = TypeVar("Cell", _CounterCell, _GaugeCell, _SketchCell)


class Instrument(ABC, Generic[Cell]):
    """Common machinery: series lookup, tag canonicalisation, cardinality limit, collection."""

    metric_type: MetricType
    _cell_type: type[Cell]

    def __init__(self, registry: Registry, name: str, unit: str, description: str) -> None:
        self.name = name
        self.unit = unit
        self.description = description
        self._registry = registry
        self._lock = threading.Lock()
        # Raw tag items (in the caller's order) -> cell. Cells live as long as the instrument,
        # so a series is canonicalised and privacy-checked once, not on every call.
        self._by_raw: dict[Any, Cell] = {}
        # The same for tags with a value that is not a str, keyed with the values' types.
        self._by_typed: dict[Any, Cell] = {}
        # Canonical tags -> cell, at most `cardinality_limit` entries plus the overflow.
        self._cells: dict[TagKey, Cell] = {}
        self._tag_keys: set[tuple[Any, ...]] = set()
        self._overflow_cell: Cell | None = None
        self._default: Cell = self._series(())
        # The tags of a series used lately (a private copy, str values only) and its cell: a
        # call with equal tags costs one dict comparison in C instead of building and hashing
        # the tuple of items. Replaced after _LAST_STRIKES calls that found another series in
        # _by_raw, so a series used most of the time keeps it. ``{}`` is the untagged series.
        self._last: tuple[dict[str, object], Cell] = ({}, self._default)
        self._strikes = 0
        #: Past the limit (no series can be made any more): for each tag key of one-tag
        #: series, the cells by the values they are known by (canonical, and as written when
        #: cached). A one-tag call with such a key and a short str value is found there or is
        #: an overflow, with no tuple of items built. None below the limit.
        self._spill: dict[str, dict[str, Cell]] | None = None

    # -- series ---------------------------------------------------------------------------
    def _series(self, canonical: TagKey) -> Cell:
        cell = self._cells.get(canonical)
        if cell is None:
            # The untagged series always exists and does not count against the limit.
            if len(self._cells) > self._registry.cardinality_limit and canonical != ():
                health.count("metrics.cardinality_overflow")
                canonical = OVERFLOW_TAGS
                cell = self._cells.get(canonical)
                if cell is not None:
                    return cell
            cell = self._cell_type()
            self._cells[canonical] = cell
        return cell

    def _canonical(self, tags: Mapping[str, object]) -> TagKey:
        pairs = {_validate_tag_key(k): _guard_value(v) for k, v in tags.items()}
        if len(self._tag_keys) < 64:  # key sets seen valid, for the overflow path
            self._tag_keys.add(tuple(tags))
        return tuple(sorted(pairs.items()))

    def _cell_for(
        self, tags: Mapping[str, object], raw: tuple[Any, ...] | None = None
    ) -> Cell | None:
        """The cell for ``tags``, or ``None`` (counted) when the tags are unusable. ``raw``
        is ``tuple(tags.items())`` when the caller has it (and found no cell for it)."""
        typed: tuple[Any, ...] | None = None
        try:
            if raw is None:
                raw = tuple(tags.items())
                cell = self._by_raw.get(raw)
                if cell is not None:
                    return cell
            if len(self._cells) > self._registry.cardinality_limit:
                cell = self._overflowed(tags, raw)  # str values only
                if cell is not None:
                    return cell
            for _, v in raw:
                if type(v) is not str:
                    # 1, True and 1.0 are equal keys but different tag values ("1", "True",
                    # "1.0"): tags with a value that is not a str are cached with its type.
                    typed = (raw, *map(type, tags.values()))
                    cell = self._by_typed.get(typed)
                    if cell is not None:
                        return cell
                    break
            canonical = self._canonical(tags)
        except Exception as exc:
            health.failure(f"metrics.invalid_tags.{self.name}", exc)
            return None
        with self._lock:
            cell = self._series(canonical)
            # Bound the raw-key cache too: odd orderings of many tags must not grow it.
            if typed is not None:
                if len(self._by_typed) < 4 * self._registry.cardinality_limit:
                    self._by_typed[typed] = cell
            else:
                if len(self._by_raw) < 4 * self._registry.cardinality_limit:
                    self._by_raw[raw] = cell
                if cell is not self._cells.get(OVERFLOW_TAGS):  # a series of its own
                    self._last = (dict(raw), cell)
        return cell

    def _tagged_cell(self, tags: Mapping[str, object]) -> Cell | None:
        """The cell for ``tags`` on the hot path, or ``None`` (counted) when unusable.

        The cache hits of :meth:`_cell_for` first, in the fewest bytecodes: the series used
        lately (one dict comparison), past the limit a one-tag series by value (no tuple of
        items built), then the raw-tags cache. ``get()``, not ``[]``, so a miss (the
        cardinality-overflow path) raises nothing.
        """
        raw = None
        cell: Cell | None = None
        try:
            last = self._last
            if tags == last[0]:
                return last[1]
            spill = self._spill
            if spill is not None and len(tags) == 1:  # past the limit
                key = next(iter(tags))
                v = tags[key]
                values = spill.get(key)
                if values is not None and type(v) is str and len(v) <= _MAX_LEN:
                    cell = values.get(v)
                    if cell is None:  # a new series as written: overflow
                        _count_overflow()
                        cell = self._overflow_cell
            if cell is None:
                raw = tuple(tags.items())
                cell = self._by_raw.get(raw)
            if cell is not None and cell is not self._overflow_cell:
                # Another series than _last's: after _LAST_STRIKES, remember it (copied
                # from what found it: the caller's dict may change).
                strikes = self._strikes + 1
                if strikes < _LAST_STRIKES:
                    self._strikes = strikes
                else:
                    self._strikes = 0
                    self._last = (dict(raw) if raw is not None else {key: v}, cell)
        except Exception:  # not a mapping: _cell_for counts it
            raw = None
            cell = None
        if cell is None:
            cell = self._cell_for(tags, raw)
        return cell

    def _overflowed(self, tags: Mapping[str, object], raw: tuple[Any, ...]) -> Cell | None:
        """Past the limit: the series for ``raw`` without the privacy check, or ``None``.

        A new series cannot be created any more, so a value that is not an existing series
        as written goes to the overflow series without being scrubbed (it is not stored: the
        overflow series has fixed tags). Only tag keys already validated on this instrument
        and short str values take this path; anything else is canonicalised as usual.
        """
        if tuple(tags) not in self._tag_keys:
            return None
        for _, v in raw:
            if type(v) is not str or len(v) > MAX_TAG_VALUE_LENGTH:
                return None
        # Every value is a str now: ``raw`` sorted is the canonical key it would have.
        cell = self._cells.get(tuple(sorted(raw)) if len(raw) > 1 else raw)
        if cell is not None:
            return cell
        _count_overflow()  # no lock on this path
        cell = self._overflow_cell
        if cell is not None:
            if self._spill is None:  # the limit changed since: index the series again
                self._arm_spill()
            return cell
        cell = self._cells.get(OVERFLOW_TAGS)
        if cell is None:
            with self._lock:
                cell = self._cells.get(OVERFLOW_TAGS)
                if cell is None:
                    cell = self._cells[OVERFLOW_TAGS] = self._cell_type()
        self._overflow_cell = cell
        self._arm_spill()
        return cell

    def _arm_spill(self) -> None:
        """Index the one-tag series by value for the overflow path (see ``_spill``)."""
        spill: dict[str, dict[str, Cell]] = {
            keys[0]: {} for keys in self._tag_keys if len(keys) == 1
        }
        with self._lock:
            for known in (list(self._cells.items()), list(self._by_raw.items())):
                for tags, cell in known:
                    if len(tags) == 1 and tags != OVERFLOW_TAGS:
                        key, value = tags[0]
                        values = spill.get(key)
                        if values is not None and type(value) is str:
                            values.setdefault(value, cell)
        self._spill = spill

    def _bound_cell(self, tags: Mapping[str, object]) -> Cell:
        """Like :meth:`_cell_for` but raises: ``bind()`` is definition time."""
        canonical = self._canonical(tags)
        with self._lock:
            return self._series(canonical)

    def _reject(self, value: object) -> None:
        # InvalidValueError describes the value cheaply (type and a bounded repr).
        health.failure(
            f"metrics.invalid_value.{self.name}",
            InvalidValueError(f"{self.name} value", value, self._allowed),
        )

    _allowed = "a finite number"

    # -- collection -----------------------------------------------------------------------
    def _collect(self, start: float, end: float, out: list[IntervalAggregate]) -> None:
        # Default tags (app version, platform) are added by Registry.collect, not here: an
        # interval closed before the application configured lands under its name and version.
        with self._lock:
            for tags, cell in list(self._cells.items()):
                try:
                    agg = self._take(cell)
                except Exception as exc:
                    # One poisoned series must not take the others down: reset it, count it.
                    health.count("metrics.dropped")
                    health.failure(f"metrics.collect.{self.name}", exc)
                    self._reset_cell(cell)
                    continue
                if agg is not None:
                    # Appended at once: an interrupt after this line loses nothing.
                    out.append(agg)
                    agg.tags = tags
                    agg.start = start
                    agg.end = end

    def _reset_cell(self, cell: Cell) -> None:
        fresh = self._cell_type()
        for slot in type(cell).__slots__:
            setattr(cell, slot, getattr(fresh, slot))

    @abstractmethod
    def _take(self, cell: Cell) -> IntervalAggregate | None:
        """Read and reset ``cell``: the interval's aggregate, or ``None`` when it saw nothing."""

    def _new(self, **values: Any) -> IntervalAggregate:
        return IntervalAggregate(
            name=self.name,
            metric_type=self.metric_type,
            tags=(),
            start=0.0,
            end=0.0,
            unit=self.unit,
            description=self.description,
            **values,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, unit={self.unit!r})"


class Counter(Instrument[_CounterCell]):
    """A sum that only goes up. ``inc(value=1, tags=None)``."""

    metric_type = MetricType.COUNTER
    _cell_type = _CounterCell
    _allowed = "a finite number >= 0"

    def inc(self, value: float = 1, tags: Mapping[str, object] | None = None) -> None:
        """Add ``value`` (>= 0) to the series for ``tags``. Never raises at run time."""
        if LOCK_FREE:
            # The common calls, kept to the fewest bytecodes (see LOCK_FREE).
            if tags is None:
                cell = self._default
            else:
                found = self._tagged_cell(tags)
                if found is None:
                    return
                cell = found
            # The range test refuses NaN, infinities and ints beyond float range (compared
            # exactly); the add either raises before storing or stores a number, so a value
            # is applied whole or not at all. Other number types go through _inc_slow.
            try:
                if 0 <= value <= _MAX:
                    cell.total += value
                    cell.n += 1
                    return
            except Exception:
                pass
            self._inc_slow(cell, value)
            return
        locked = self._default if tags is None else self._cell_for(tags)
        if locked is not None:
            self._inc_slow(locked, value)

    def _inc_slow(self, cell: _CounterCell, value: object) -> None:
        v = _number(value)
        if v is None or v < 0:
            self._reject(value)
            return
        with self._lock:
            total = cell.total
            if type(total) is not float:  # an odd __radd__ slipped through the fast path
                total = _number(total) or 0.0
            cell.total = total + v
            cell.n += 1

    def bind(self, **tags: object) -> BoundCounter:
        """A counter bound to fixed tags, for hot loops: ``c.bind(format="wav").inc()``."""
        return BoundCounter(self, self._bound_cell(tags))

    def _take(self, cell: _CounterCell) -> IntervalAggregate | None:
        # Read and reset in one straight line (no calls): atomic against lock-free writers.
        n, total = cell.n, cell.total
        cell.n, cell.total = 0, 0.0
        if n == 0:
            return None
        try:
            if type(total) is not float:
                total = _number(total) or 0.0
            return self._new(count=n, sum=total)
        except BaseException:
            # A Ctrl-C landed before the aggregate existed: give the values back.
            cell.n += n
            cell.total += total
            raise


class BoundCounter:
    """A :class:`Counter` with its tags resolved once."""

    __slots__ = ("_cell", "_counter")

    def __init__(self, counter: Counter, cell: _CounterCell) -> None:
        self._counter = counter
        self._cell = cell

    def inc(self, value: float = 1) -> None:
        """Add ``value`` (>= 0). Never raises at run time."""
        if LOCK_FREE:
            try:
                if 0 <= value <= _MAX:  # see Counter.inc
                    cell = self._cell
                    cell.total += value
                    cell.n += 1
                    return
            except Exception:
                pass
        self._counter._inc_slow(self._cell, value)


class Gauge(Instrument[_GaugeCell]):
    """A value that goes up and down: ``set(value)``, ``inc``/``dec``. Keeps last/min/max."""

    metric_type = MetricType.GAUGE
    _cell_type = _GaugeCell

    def set(self, value: float, tags: Mapping[str, object] | None = None) -> None:
        """Set the series for ``tags`` to ``value``. Never raises at run time."""
        cell = self._default if tags is None else self._cell_for(tags)
        if cell is None:
            return
        t = type(value)
        if not ((t is float or t is int) and -_MAX <= value <= _MAX):
            v = _number(value)
            if v is None:
                self._reject(value)
                return
            value = v
        if LOCK_FREE:
            cell.last = value
            if value < cell.lo:
                cell.lo = value
            if value > cell.hi:
                cell.hi = value
            cell.n += 1
            cell.total += value
        else:
            with self._lock:
                self._apply(cell, value)

    @staticmethod
    def _apply(cell: _GaugeCell, value: float) -> None:
        cell.last = value
        if value < cell.lo:
            cell.lo = value
        if value > cell.hi:
            cell.hi = value
        cell.n += 1
        cell.total += value

    def inc(self, value: float = 1, tags: Mapping[str, object] | None = None) -> None:
        """Add ``value`` to the current value of the series (which starts at 0)."""
        self._add(_number(value), value, tags)

    def dec(self, value: float = 1, tags: Mapping[str, object] | None = None) -> None:
        """Subtract ``value`` from the current value of the series."""
        v = _number(value)
        self._add(None if v is None else -v, value, tags)

    def _add(self, delta: float | None, value: object, tags: Mapping[str, object] | None) -> None:
        if delta is None:
            self._reject(value)
            return
        cell = self._default if tags is None else self._cell_for(tags)
        if cell is None:
            return
        with self._lock:
            new = cell.last + delta
            if new - new == 0:  # the sum may overflow to infinity: refuse it whole
                self._apply(cell, new)
                return
        self._reject(value)

    def bind(self, **tags: object) -> BoundGauge:
        """A gauge bound to fixed tags."""
        return BoundGauge(self, self._bound_cell(tags))

    def _take(self, cell: _GaugeCell) -> IntervalAggregate | None:
        # Straight-line read and reset (see LOCK_FREE). The value persists (a gauge is a
        # state), but the interval's statistics restart.
        n, total, lo, hi, last = cell.n, cell.total, cell.lo, cell.hi, cell.last
        cell.n, cell.total, cell.lo, cell.hi = 0, 0.0, _INF, -_INF
        if n == 0:
            return None
        try:
            return self._new(count=n, sum=total, min=lo, max=hi, last=last)
        except BaseException:
            # A Ctrl-C landed before the aggregate existed: give the statistics back.
            cell.n += n
            cell.total += total
            cell.lo = min(cell.lo, lo)
            cell.hi = max(cell.hi, hi)
            raise


class BoundGauge:
    """A :class:`Gauge` with its tags resolved once."""

    __slots__ = ("_cell", "_gauge")

    def __init__(self, gauge: Gauge, cell: _GaugeCell) -> None:
        self._gauge = gauge
        self._cell = cell

    def set(self, value: float) -> None:
        """Set the bound series to ``value``."""
        v = _number(value)
        if v is None:
            self._gauge._reject(value)
            return
        with self._gauge._lock:
            Gauge._apply(self._cell, v)


class _Timer:
    """Times a block or a function into a histogram (monotonic, clamped, async-aware).

    Made by :meth:`Histogram.time` on every ``with h.time():``, so it has no ``__init__`` (a
    class without one is created by C code) and its ``__exit__`` appends an untagged duration
    to the series buffer itself instead of calling :meth:`Histogram.observe`.
    """

    __slots__ = ("_hist", "_start", "_tags", "elapsed")

    _hist: Histogram
    _tags: Mapping[str, object] | None
    _start: float
    elapsed: float

    def __enter__(self) -> _Timer:
        self._start = _mono()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        hist = self._hist
        # Time can go backwards on some clocks; never record a negative duration.
        elapsed = (_mono() - self._start) * hist._time_scale
        self.elapsed = elapsed = elapsed if elapsed > 0.0 else 0.0
        if self._tags is None and elapsed <= _MAX and LOCK_FREE:
            # Histogram.observe inlined for the untagged series (a finite float from the
            # clock needs no other check): one append, and a fold every _BATCH values.
            cell = hist._default
            buf = cell.buf
            buf.append(elapsed)
            if len(buf) >= _BATCH:
                hist._fold(cell)
        else:
            hist.observe(elapsed, self._tags)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        _wrap.reject_generator(
            fn, "not a generator: time the code that consumes it (with `with h.time():`)"
        )
        hist, tags, scale = self._hist, self._tags, self._hist._time_scale
        observe = hist.observe

        def ok(seconds: float) -> None:
            value = seconds * scale
            if tags is None and value <= _MAX and LOCK_FREE:  # as in __exit__
                cell = hist._default
                buf = cell.buf
                buf.append(value)
                if len(buf) >= _BATCH:
                    hist._fold(cell)
            else:
                observe(value, tags)

        def failed(seconds: float, exc: BaseException) -> None:
            # A failed call took its time too (as prometheus_client's time() records it).
            observe(seconds * scale, tags)

        return _wrap.timed(fn, ok, failed)


_TIME_SCALES: Final = {"ms": 1e3, "us": 1e6, "µs": 1e6, "ns": 1e9, "min": 1 / 60}


class Histogram(Instrument[_SketchCell]):
    """A distribution: ``observe(value)``; percentiles within 1 % relative error.

    ``time()`` is a decorator and a context manager; durations are recorded in the
    histogram's unit when it is ``"ms"``, ``"us"``, ``"ns"`` or ``"min"``, else in seconds.
    """

    metric_type = MetricType.HISTOGRAM
    _cell_type = _SketchCell

    def __init__(self, registry: Registry, name: str, unit: str, description: str) -> None:
        super().__init__(registry, name, unit, description)
        self._time_scale = _TIME_SCALES.get(unit, 1.0)

    def observe(self, value: float, tags: Mapping[str, object] | None = None) -> None:
        """Record one observation. Never raises at run time."""
        if tags is None:
            cell: _SketchCell | None = self._default
        else:
            cell = self._tagged_cell(tags)
        if cell is None:
            return
        t = type(value)
        if not ((t is float or t is int) and -_MAX <= value <= _MAX):
            v = _number(value)
            if v is None:
                self._reject(value)
                return
            value = v
        if LOCK_FREE:
            cell.buf.append(value)
            if len(cell.buf) >= _BATCH:
                self._fold(cell)
        else:
            with self._lock:
                cell.buf.append(value)
                if len(cell.buf) >= _BATCH:
                    cell.fold()

    def _fold(self, cell: _SketchCell) -> None:
        with self._lock:
            cell.fold()

    def time(self, tags: Mapping[str, object] | None = None) -> _Timer:
        """Time a block (``with h.time():``) or a function (``@h.time()``)."""
        timer = _Timer()
        timer._hist = self
        timer._tags = tags
        timer.elapsed = 0.0
        return timer

    def bind(self, **tags: object) -> BoundHistogram:
        """A histogram bound to fixed tags."""
        return BoundHistogram(self, self._bound_cell(tags))

    def _take(self, cell: _SketchCell) -> IntervalAggregate | None:
        cell.fold()
        sk = cell.sketch
        if sk.count == 0:
            return None
        from sounding.core.sketch import QuantileSketch

        cell.sketch = QuantileSketch()
        try:
            return self._new(count=sk.count, sum=sk.sum, min=sk.min, max=sk.max, sketch=sk)
        except BaseException:
            # A Ctrl-C landed before the aggregate existed: put the sketch back.
            sk.merge(cell.sketch)
            cell.sketch = sk
            raise


class Summary(Histogram):
    """Like :class:`Histogram`, but reported as percentiles (p50, p95, p99)."""

    metric_type = MetricType.SUMMARY


class BoundHistogram:
    """A :class:`Histogram` with its tags resolved once."""

    __slots__ = ("_cell", "_hist")

    def __init__(self, hist: Histogram, cell: _SketchCell) -> None:
        self._hist = hist
        self._cell = cell

    def observe(self, value: float) -> None:
        """Record one observation in the bound series."""
        t = type(value)
        if not ((t is float or t is int) and -_MAX <= value <= _MAX):
            v = _number(value)
            if v is None:
                self._hist._reject(value)
                return
            value = v
        cell = self._cell
        if LOCK_FREE:
            cell.buf.append(value)
            if len(cell.buf) >= _BATCH:
                self._hist._fold(cell)
        else:
            with self._hist._lock:
                cell.buf.append(value)
                if len(cell.buf) >= _BATCH:
                    cell.fold()


_KINDS: Final[dict[MetricType, type[Instrument[Any]]]] = {
    MetricType.COUNTER: Counter,
    MetricType.GAUGE: Gauge,
    MetricType.HISTOGRAM: Histogram,
    MetricType.SUMMARY: Summary,
}


#: Closed intervals a registry holds before the runtime collects them (library mode keeps
#: them until the application configures; sketches make one up to a few KB); beyond it the
#: oldest go, counted (`metrics.dropped`).
MAX_CLOSED: Final = 20_000


def _hold_signals() -> set[int] | None:
    """Block SIGINT and SIGTERM in the main thread; the previous mask, or None if not held."""
    if threading.current_thread() is not threading.main_thread():
        return None  # Python runs signal handlers in the main thread only.
    from sounding.core import _sigmask as signal

    if not hasattr(signal, "pthread_sigmask"):
        return None
    try:
        return signal.pthread_sigmask(signal.SIG_BLOCK, (signal.SIGINT, signal.SIGTERM))
    except (OSError, ValueError):
        return None


def _release_signals(previous: set[int]) -> None:
    from sounding.core import _sigmask as signal

    signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class Registry:
    """All instruments of a process, plus values recorded at their own timestamps.

    Intervals: the registry caches the aligned interval ``[start, end)`` that the clock was
    in when the interval opened; every observation until the next :meth:`roll` belongs to it.
    Reading the clock per observation would cost as much as the increment itself, so the
    hot path reads nothing: the interval is rolled over by whoever notices time has moved on
    (the writer thread waking at each boundary, a clock being installed or moved
    (:class:`sounding.testing.ManualClock`), and every :meth:`collect`). Stamps are therefore
    always aligned intervals of the clock in use (never "since the last flush"), and an
    observation is attributed at most one wake-up late to the previous interval.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._instruments: dict[str, Instrument[Any]] = {}
        #: Intervals of :meth:`record` and :meth:`record_many`: by name and tags, then start
        #: (a new series of a sparse import: an ImportedRun, made a dict when looked up).
        self._history: dict[tuple[str, TagKey], Intervals] = {}
        self._unreturned: list[IntervalAggregate] = []
        self._closed: list[IntervalAggregate] = []
        self._roll_lock = threading.Lock()
        self._defaults: TagKey = ()
        self._defaults_dict: dict[str, str] = {}
        self.cardinality_limit = 2000
        self._step = 60
        self.apply_settings()
        self._interval_start, self._interval_end = self._interval_of(get_clock().time())

    def apply_settings(self) -> None:
        """Read default tags and limits from the current settings."""
        s = current()
        self._defaults_dict = dict(s.default_tags)
        self._defaults = tuple(sorted(self._defaults_dict.items()))
        if s.cardinality_limit != self.cardinality_limit:
            for inst in list(self._instruments.values()):
                inst._spill = None  # series may be made again (or fewer): full checks
        self.cardinality_limit = s.cardinality_limit
        step = s.metrics.aggregation_interval
        if step != self._step and hasattr(self, "_interval_start"):
            # A new interval length: what was observed so far keeps the old bounds, later
            # observations go to an interval of the new length.
            self.roll_to(get_clock().time(), step)
        self._step = step

    def _interval_of(self, now: float) -> tuple[float, float]:
        step = self._step
        start = float(math.floor(now / step) * step)
        return start, start + step

    @property
    def interval(self) -> tuple[float, float]:
        """The ``(start, end)`` epoch seconds of the interval observations go to now."""
        return self._interval_start, self._interval_end

    def roll_to(self, now: float, step: int) -> None:
        """Close the current interval now and open the one of ``now`` with length ``step``."""
        with self._roll_lock:
            start, end = self._interval_start, self._interval_end
            self._step = step
            self._interval_start, self._interval_end = self._interval_of(now)
            self._close(start, end)

    def roll(self, now: float | None = None) -> bool:
        """Close the current interval if ``now`` (default: the clock) lies outside it.

        The closed interval's aggregates wait in memory for :meth:`collect`. Returns whether
        an interval was closed. Cheap when time is still inside the interval.
        """
        t = get_clock().time() if now is None else now
        if self._interval_start <= t < self._interval_end:
            return False
        with self._roll_lock:
            start, end = self._interval_start, self._interval_end
            if start <= t < end:
                return False
            # Time can go backwards (a clock set back): the new interval is the earlier one.
            self._interval_start, self._interval_end = self._interval_of(t)
            self._close(start, end)
        return True

    def _close(self, start: float, end: float) -> None:
        """Take every series of the interval ``start .. end`` into the closed list (the roll
        lock is held)."""
        out: list[IntervalAggregate] = []
        try:
            for inst in self.instruments():
                inst._collect(start, end, out)
        finally:
            # An interrupt (Ctrl-C) mid-roll keeps what was already taken.
            self._keep_closed(out)

    def _keep_closed(self, out: list[IntervalAggregate]) -> None:
        closed = self._closed
        closed.extend(out)
        over = len(closed) - MAX_CLOSED
        if over > 0:
            del closed[:over]
            health.count("metrics.dropped", over)

    def with_defaults(self, tags: TagKey) -> TagKey:
        """Canonical tags with the default tags added (the call's tags win)."""
        if not self._defaults:
            return tags
        merged = dict(self._defaults_dict)
        merged.update(tags)
        return tuple(sorted(merged.items()))

    def get(
        self, kind: MetricType, name: str, unit: str = "", description: str = ""
    ) -> Instrument[Any]:
        """The instrument called ``name``, created on first use; raises on a type conflict."""
        inst = self._instruments.get(name)
        if inst is None:
            validate_name(name)
            if not isinstance(unit, str) or len(unit) > 32:
                raise InvalidValueError("unit", unit, "a str of at most 32 characters")
            if not isinstance(description, str):
                raise InvalidTypeError("description", description, "a str")
            with self._lock:
                inst = self._instruments.get(name)
                if inst is None:
                    inst = _KINDS[kind](self, name, unit, description)
                    self._instruments[name] = inst
        if inst.metric_type is not kind:
            raise MetricTypeConflictError(
                "name",
                name,
                f"a name not already used by a {inst.metric_type.value} (asked for a {kind.value})",
            )
        return inst

    def instruments(self) -> list[Instrument[Any]]:
        """Every instrument registered so far."""
        with self._lock:
            return list(self._instruments.values())

    def record(self, snapshot: MetricSnapshot, interval: int | None = None) -> None:
        """Ingest ``snapshot`` at its own timestamp, aggregated into its interval."""
        from sounding.core.sketch import QuantileSketch
        from sounding.core.snapshot import MetricSnapshot  # a dataclass: not for counting

        if not isinstance(snapshot, MetricSnapshot):
            raise InvalidTypeError("snapshot", snapshot, "a sounding.MetricSnapshot")
        validate_name(snapshot.name, "snapshot.name")
        raw = snapshot.value
        value = (
            _number(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) else None
        )
        if value is None:
            raise InvalidValueError("snapshot.value", raw, "a finite number")
        kind = snapshot.metric_type
        if kind is MetricType.COUNTER and value < 0:
            raise InvalidValueError("snapshot.value", value, "a number >= 0 for a counter")
        if not isinstance(snapshot.tags, Mapping):
            raise InvalidTypeError("snapshot.tags", snapshot.tags, "a dict of str to str")
        inst = self.get(kind, snapshot.name)
        tags = inst._canonical(snapshot.tags)
        step = interval or current().metrics.aggregation_interval
        ts = snapshot.epoch
        start = math.floor(ts / step) * step
        with self._lock:
            # A name has one type per registry: name and tags identify the series.
            series = self._history.get((snapshot.name, tags))
            if series is None:
                series = self._history[(snapshot.name, tags)] = {}
            elif not isinstance(series, dict):
                series = self._history[(snapshot.name, tags)] = series.as_dict()
            agg = series.get(float(start))
            if agg is None:
                agg = IntervalAggregate(
                    name=snapshot.name,
                    metric_type=kind,
                    tags=tags,
                    start=float(start),
                    end=float(start + step),
                    unit=inst.unit,
                    description=inst.description,
                )
                if kind in (MetricType.HISTOGRAM, MetricType.SUMMARY):
                    agg.sketch = QuantileSketch()
                series[float(start)] = agg
            # Read before the fields change: an imported interval of one value
            # (OneValueInterval) builds its sketch from its ``min`` when first read.
            sketch = agg.sketch
            agg.count += 1
            agg.sum += value
            agg.min = value if agg.min is None else min(agg.min, value)
            agg.max = value if agg.max is None else max(agg.max, value)
            if kind is MetricType.GAUGE:
                agg.last = value
            if sketch is not None:
                sketch.add(value)

    def record_many(self, snapshots: Iterable[MetricSnapshot], interval: int | None = None) -> int:
        """Ingest many snapshots like :meth:`record`, all or nothing; returns how many.

        Every snapshot is checked as :meth:`record` checks it, but each distinct name and tag
        set is validated and privacy-checked once per call (the verdict is reused), and the
        values of one series and interval are folded together at the end (a histogram's in
        one ``add_many``). The first invalid snapshot raises before anything is recorded.
        See :mod:`sounding.collection._bulk`.
        """
        from sounding.collection import _bulk

        step = interval or current().metrics.aggregation_interval
        return _bulk.record_many(self, snapshots, step, (validate_name, _number))

    def collect(self, now: float | None = None) -> list[IntervalAggregate]:
        """Everything aggregated since the last collect; resets series.

        Each aggregate is stamped with the aligned interval its observations belong to. The
        interval still open at ``now`` is handed over as far as it got (the store merges the
        rest into the same bucket later). Default tags are added here.
        """
        out: list[IntervalAggregate] = []
        try:
            self.collect_into(out, now)
        except BaseException:
            # What an interrupted collect had already taken comes back next time.
            self._unreturned = out + self._unreturned
            raise
        return out

    def collect_into(self, out: list[IntervalAggregate], now: float | None = None) -> None:
        """:meth:`collect`, appending to the caller's list ``out``.

        The runtime passes a list it already holds as "in flight", so an interrupt after this
        returns (a Ctrl-C, a SIGTERM handler calling ``sys.exit``) cannot lose a series. In the
        main thread SIGINT and SIGTERM are held while series are taken (a handler running
        between taking a series and keeping it would lose that series); they are delivered as
        soon as it is done.
        """
        held = _hold_signals()
        try:
            self.roll(now)
            start = len(out)
            out.extend(self._unreturned)
            self._unreturned = []
            with self._roll_lock:
                out.extend(self._closed)
                self._closed = []
                for inst in self.instruments():
                    try:
                        inst._collect(self._interval_start, self._interval_end, out)
                    except Exception as exc:  # never lose the other instruments' data
                        health.failure(f"metrics.collect.{inst.name}", exc)
            with self._lock:
                for series in self._history.values():
                    out.extend(series.values())
                self._history.clear()
            if self._defaults:
                # Once per tag set: a bulk import hands over many intervals of few series.
                merged: dict[TagKey, TagKey] = {}
                with_defaults = self.with_defaults
                last: object = None
                full: TagKey = ()
                for agg in out[start:]:
                    tags = agg.tags
                    if tags is not last:  # (runs of one series share their tags object)
                        last = tags
                        try:
                            full = merged[tags]
                        except KeyError:
                            full = merged[tags] = with_defaults(tags)
                        except TypeError:  # not hashable (a sink's own aggregates)
                            full = with_defaults(tags)
                    agg.tags = full
        finally:
            if held is not None:
                _release_signals(held)

    def mark_start(self, when: float | None = None) -> None:
        """Roll over to the interval of ``when`` (default: now) if time has left the current
        one (the runtime calls this when it starts)."""
        self.roll(when)

    def discard_pending(self) -> None:
        """Drop aggregated values but keep instruments (a forked child must not re-send the
        parent's data, and the application still holds its instrument objects)."""
        self._lock = threading.Lock()
        for inst in list(self._instruments.values()):
            inst._lock = threading.Lock()
            for cell in inst._cells.values():
                inst._take(cell)
        self._history.clear()
        self._unreturned = []
        self._roll_lock = threading.Lock()
        self._closed = []
        self._interval_start, self._interval_end = self._interval_of(get_clock().time())

    def series_count(self) -> int:
        """Number of series currently held in memory (all instruments)."""
        return sum(len(i._cells) for i in self.instruments())

    def clear(self) -> None:
        """Forget every instrument and pending value (tests, forked child)."""
        with self._lock:
            self._instruments.clear()
            self._history.clear()
            self._unreturned = []
            self._closed = []
        self.apply_settings()
        self._interval_start, self._interval_end = self._interval_of(get_clock().time())


_registry: Registry | None = None
_registry_lock = threading.Lock()
_on_first_instrument: list[Callable[[], None]] = []
#: what keeps a series of the current registry for its hot path in ``_fast`` (weakly)
_fast_holders: WeakSet[Any] = WeakSet()


def get_registry() -> Registry:
    """The process-wide registry."""
    global _registry
    reg = _registry
    if reg is None:
        with _registry_lock:
            if _registry is None:
                _registry = Registry()
            reg = _registry
        for hook in list(_on_first_instrument):
            hook()
    return reg


def on_first_use(hook: Callable[[], None]) -> None:
    """Run ``hook`` when the registry is first created (the runtime starts lazily from here)."""
    _on_first_instrument.append(hook)


def _on_clock_change() -> None:
    # A clock installed or moved (tests, simulations): observations made so far belong to
    # the interval they were made in, later ones to the interval of the new time.
    reg = _registry
    if reg is not None:
        try:
            reg.roll()
        except Exception as exc:
            health.failure("metrics.roll", exc)


on_clock_change(_on_clock_change)


def reset_registry() -> None:
    """Drop the process-wide registry (tests, forked child)."""
    global _registry
    with _registry_lock:
        _registry = None
    for holder in list(_fast_holders):
        holder._fast = None


def hold_fast(holder: Any) -> None:
    """Set ``holder._fast`` to None when the registry is dropped: a timer or a boundary
    keeps there what its hot path updates directly (a series of the current registry), and
    must not update it once that registry is gone."""
    _fast_holders.add(holder)


def counter(name: str, unit: str = "", description: str = "") -> Counter:
    """The counter called ``name`` (created on first use).

    >>> import sounding
    >>> sounding.counter("recorder.recordings").inc()
    """
    return cast(Counter, get_registry().get(MetricType.COUNTER, name, unit, description))


def gauge(name: str, unit: str = "", description: str = "") -> Gauge:
    """The gauge called ``name`` (created on first use)."""
    return cast(Gauge, get_registry().get(MetricType.GAUGE, name, unit, description))


def histogram(name: str, unit: str = "", description: str = "") -> Histogram:
    """The histogram called ``name`` (created on first use).

    >>> import sounding
    >>> h = sounding.histogram("recorder.export.duration", unit="ms")
    >>> h.observe(12.5, tags={"format": "wav"})
    >>> with h.time():
    ...     pass
    """
    return cast(Histogram, get_registry().get(MetricType.HISTOGRAM, name, unit, description))


def summary(name: str, unit: str = "", description: str = "") -> Summary:
    """The summary called ``name`` (created on first use)."""
    return cast(Summary, get_registry().get(MetricType.SUMMARY, name, unit, description))


def record(snapshot: MetricSnapshot) -> None:
    """Ingest a :class:`MetricSnapshot` at its own timestamp (imports, history in tests).

    Unlike instrument calls this validates strictly and raises on bad input, because it is
    an explicit import API.
    """
    get_registry().record(snapshot)


def record_many(snapshots: Iterable[MetricSnapshot]) -> int:
    """Ingest many :class:`MetricSnapshot` at once (bulk imports); returns how many.

    Checked as strictly as :func:`record`, all or nothing: the first invalid snapshot raises
    before any is recorded. Each distinct name and tag set is validated and privacy-checked
    once per call, so an import runs at about a microsecond per observation.

    >>> import sounding
    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> sounding.record_many(
    ...     sounding.MetricSnapshot("histogram", "import.latency", v, t) for v in (1.0, 2.5)
    ... )
    2
    """
    return get_registry().record_many(snapshots)
