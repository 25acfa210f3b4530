"""Bulk import: what :meth:`Registry.record_many <sounding.collection.metrics.Registry>` does.

A bulk import is many snapshots of few series, so the work is arranged by column and by
series, not by snapshot: types, values and interval starts are checked and computed with C
iterators (``map``, ``set``, ``zip``), snapshots are grouped per series and interval with
dicts, and each distinct name and tag set is validated and privacy-checked once. Anything
unusual (a subclass of ``MetricSnapshot``, a value that is not a float or an int, a tag value
that is not a ``str``, a negative counter value, ...) sends the whole call through the careful
loop, which checks snapshot by snapshot in order, so the first invalid snapshot is the one
that raises, and nothing is recorded before every snapshot has passed.

The intervals go into the registry series by series, each in time order: the runtime writes
them in chunks, and a chunk that holds whole series touches each of their hourly and daily
rows once, where a chunk of a time-ordered import touches every series' rows in every chunk.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from itertools import count, repeat
from operator import add, attrgetter, is_, itemgetter, methodcaller, mul, truediv
from typing import TYPE_CHECKING, Any, Final, Protocol

from sounding.core._gc import paused
from sounding.core.exceptions import InvalidTypeError, InvalidValueError
from sounding.core.sketch import QuantileSketch, single_value_sketch
from sounding.core.types import IntervalAggregate, MetricType, TagKey

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

__all__ = ["OneValueInterval", "record_many"]


class _Instrument(Protocol):
    """What an import needs of an instrument (:class:`~sounding.collection.metrics.Instrument`)."""

    name: str
    unit: str
    description: str
    metric_type: MetricType

    def _canonical(self, tags: Mapping[str, object]) -> TagKey: ...


class _Registry(Protocol):
    """What an import needs of the registry (:class:`~sounding.collection.metrics.Registry`:
    it calls in with itself and its checks, so this module never imports it)."""

    _lock: threading.Lock
    _history: dict[tuple[str, TagKey], Intervals]

    def get(self, kind: MetricType, name: str) -> Any: ...


#: ``validate_name(name, what)`` and ``_number(value)`` of the metrics module.
_Checks = tuple["Callable[[object, str], str]", "Callable[[object], float | None]"]

_NAME: Final = attrgetter("name")
_KIND: Final = attrgetter("metric_type")
_VALUE: Final = attrgetter("value")
_EPOCH: Final = attrgetter("epoch")
_TIMESTAMP: Final = attrgetter("timestamp")
#: ``MetricSnapshot.epoch`` of a snapshot whose ``timestamp`` this is.
_STAMP_EPOCH: Final = methodcaller("timestamp")
_TAGS: Final = attrgetter("tags")
_ITEMS: Final = methodcaller("items")
_FIRST: Final = itemgetter(0)
_SECOND: Final = itemgetter(1)
#: Enum members hash with a Python-level ``__hash__``: the columns key on their ids instead.
_KIND_BY_ID: Final = {id(kind): kind for kind in MetricType}
_NUMBER_TYPES: Final = frozenset((float, int))
_DISTRIBUTIONS: Final = (MetricType.HISTOGRAM, MetricType.SUMMARY)
#: Distinct raw tag sets remembered by the careful loop (beyond it they are checked each time).
_CANON_LIMIT: Final = 65536

#: One series of an import: name, type, canonical tags and its instrument, by the key its
#: snapshots were grouped on.
_Series = dict[Any, tuple[str, MetricType, TagKey, _Instrument]]
#: (series key, interval start) -> the values, in input order (a bare float when every group
#: of the call has one value).
_Groups = dict[tuple[Any, float], Any]
#: series key -> its interval starts and their values (or groups of values), in input order.
_BySeries = dict[Any, tuple[list[float], list[Any]]]


#: The base class's storage of the fields a :class:`OneValueInterval` implies while it is
#: ``lazy`` (its properties read and write them once it is not).
_COUNT: Final[Any] = IntervalAggregate.__dict__["count"]
_SUM: Final[Any] = IntervalAggregate.__dict__["sum"]
_MIN: Final[Any] = IntervalAggregate.__dict__["min"]
_MAX: Final[Any] = IntervalAggregate.__dict__["max"]
_LAST: Final[Any] = IntervalAggregate.__dict__["last"]
_SKETCH: Final[Any] = IntervalAggregate.__dict__["sketch"]


class OneValueInterval(IntervalAggregate):
    """An interval of a histogram or summary that saw one observation, ``value``.

    A sparse import makes one per observation, so it is made with the fewest stores: while
    ``lazy`` (as made: nothing changed, nothing built) its count is 1, its sum, min and max
    are ``value``, its last is None and its sketch is not built; a writer that knows the
    class (the SQLite store) takes a run of lazy ones as their values alone. Reading the
    sketch, or changing any of those fields, stores them all as usual first (the sketch
    the same as ``QuantileSketch().add(value)`` would have made) and ends ``lazy``: from
    then on it is a plain :class:`IntervalAggregate`.
    """

    __slots__ = ("lazy", "value")

    def __init__(
        self,
        name: str,
        metric_type: MetricType,
        tags: TagKey,
        start: float,
        end: float,
        value: float,
        unit: str = "",
        description: str = "",
    ) -> None:
        # The fields one by one, not the base class's __init__: count, sum, min, max, last
        # and sketch are implied by ``value`` until something reads the sketch or changes
        # one of them (a sparse import makes one of these per observation).
        self.name = name
        self.metric_type = metric_type
        self.tags = tags
        self.start = start
        self.end = end
        self.value = value
        self.lazy = True
        self.unit = unit
        self.description = description

    def _settle(self) -> None:
        """Store the fields ``value`` implies, build the sketch, and end ``lazy``."""
        v = self.value
        _COUNT.__set__(self, 1)
        _SUM.__set__(self, 0.0 + v)
        _MIN.__set__(self, v)
        _MAX.__set__(self, v)
        _LAST.__set__(self, None)
        _SKETCH.__set__(self, single_value_sketch(v))
        self.lazy = False

    @property  # type: ignore[override, unused-ignore]
    def count(self) -> int:
        """As :attr:`IntervalAggregate.count` (1 while ``lazy``)."""
        return 1 if self.lazy else _COUNT.__get__(self)

    @count.setter
    def count(self, value: int) -> None:
        if self.lazy:
            self._settle()
        _COUNT.__set__(self, value)

    @property  # type: ignore[override, unused-ignore]
    def sum(self) -> float:
        """As :attr:`IntervalAggregate.sum` (``0.0 + value`` while ``lazy``)."""
        return 0.0 + self.value if self.lazy else _SUM.__get__(self)

    @sum.setter
    def sum(self, value: float) -> None:
        if self.lazy:
            self._settle()
        _SUM.__set__(self, value)

    @property  # type: ignore[override, unused-ignore]
    def min(self) -> float | None:
        """As :attr:`IntervalAggregate.min` (``value`` while ``lazy``)."""
        return self.value if self.lazy else _MIN.__get__(self)

    @min.setter
    def min(self, value: float | None) -> None:
        if self.lazy:
            self._settle()
        _MIN.__set__(self, value)

    @property  # type: ignore[override, unused-ignore]
    def max(self) -> float | None:
        """As :attr:`IntervalAggregate.max` (``value`` while ``lazy``)."""
        return self.value if self.lazy else _MAX.__get__(self)

    @max.setter
    def max(self, value: float | None) -> None:
        if self.lazy:
            self._settle()
        _MAX.__set__(self, value)

    @property  # type: ignore[override, unused-ignore]
    def last(self) -> float | None:
        """As :attr:`IntervalAggregate.last` (None while ``lazy``)."""
        return None if self.lazy else _LAST.__get__(self)

    @last.setter
    def last(self, value: float | None) -> None:
        if self.lazy:
            self._settle()
        _LAST.__set__(self, value)

    @property  # type: ignore[override, unused-ignore]
    def sketch(self) -> QuantileSketch | None:
        """The interval's sketch (built now if it was not yet)."""
        if self.lazy:
            self._settle()
        return _SKETCH.__get__(self)  # type: ignore[no-any-return]

    @sketch.setter
    def sketch(self, value: QuantileSketch | None) -> None:
        if self.lazy:
            self._settle()
        _SKETCH.__set__(self, value)


class ImportedRun:
    """A new series' one-value intervals from one import, in order of their (distinct)
    starts: what the registry keeps of it until it is collected (``values()``, as a dict's)
    or looked up by start (``as_dict()``, which the registry then keeps instead). A sparse
    import skips a dict entry per observation (hashing its start, about 45 ns)."""

    __slots__ = ("intervals", "starts")

    def __init__(self, starts: list[float], intervals: list[IntervalAggregate]) -> None:
        self.starts = starts
        self.intervals = intervals

    def values(self) -> list[IntervalAggregate]:
        """The intervals, in order (as ``dict.values()`` of :meth:`as_dict`)."""
        return self.intervals

    def as_dict(self) -> dict[float, IntervalAggregate]:
        """The intervals by start."""
        return dict(zip(self.starts, self.intervals, strict=True))


#: A series' intervals in the registry: by start, or a run of an import (ImportedRun).
Intervals = dict[float, IntervalAggregate] | ImportedRun


class _Unusual(Exception):
    """The column checks met something they do not decide: the careful loop does."""


def record_many(
    registry: _Registry, snapshots: Iterable[Any], step: float, checks: _Checks
) -> int:
    """Ingest ``snapshots`` into ``registry`` at intervals of ``step`` seconds; how many.

    ``checks`` are the metrics module's ``validate_name`` and ``_number``.
    """
    snaps = snapshots if type(snapshots) is list else list(snapshots)
    if not snaps:
        return 0
    with paused():
        try:
            series, by_series, single = _by_columns(registry, snaps, step, checks)
        except Exception:
            # Whatever stopped the column checks, the careful loop raises for the first
            # invalid snapshot (or, if every snapshot is valid after all, records them).
            series, groups = _careful(registry, snaps, step, checks)
            by_series, single = _by_series(groups), False
        _add(registry, series, by_series, single, step)
    return len(snaps)


def _tag_ids(tag_maps: list[dict[Any, Any]]) -> tuple[list[Any], tuple[str, ...] | None]:
    """A hashable identity of each snapshot's tags, and the tag keys when every snapshot has
    the same ones (the identity is then the values in that order, else the items)."""
    first = tag_maps[0]
    keys = tuple(first)
    if set(map(len, tag_maps)) == {len(keys)} and all(type(k) is str for k in keys):
        if not keys:
            return [()] * len(tag_maps), keys
        try:
            return list(map(itemgetter(*keys), tag_maps)), keys
        except KeyError:
            pass
    return list(map(tuple, map(_ITEMS, tag_maps))), None


def _starts(snaps: list[Any], step: float) -> tuple[list[float], int]:
    """Each snapshot's interval start, ``float(floor(epoch / step) * step)``, and at most how
    many distinct starts there are."""
    stamps = list(map(_TIMESTAMP, snaps))
    # Many series share each timestamp (one row of an export): compute each once.
    distinct = dict.fromkeys(stamps)
    if len(distinct) * 2 > len(stamps):
        epochs = map(_EPOCH, snaps)
        return list(map(float, map(mul, map(math.floor, map(truediv, epochs, repeat(step))),
                                   repeat(step)))), len(stamps)  # fmt: skip
    keys = list(distinct)
    epochs = map(_STAMP_EPOCH, keys)
    firsts = map(float, map(mul, map(math.floor, map(truediv, epochs, repeat(step))),
                            repeat(step)))  # fmt: skip
    distinct = dict(zip(keys, firsts, strict=True))
    return list(map(distinct.__getitem__, stamps)), len(set(distinct.values()))


def _by_columns(
    registry: _Registry, snaps: list[Any], step: float, checks: _Checks
) -> tuple[_Series, _BySeries, bool]:
    """Series and their groups of a call whose snapshots are all plain and valid (``True``:
    one value per series and interval); raises otherwise (:class:`_Unusual` or what a
    check raised)."""
    from sounding.core.snapshot import MetricSnapshot

    validate_name = checks[0]
    if set(map(type, snaps)) != {MetricSnapshot}:
        raise _Unusual
    values = list(map(_VALUE, snaps))
    value_types = set(map(type, values))
    if value_types != {float}:
        if not value_types <= _NUMBER_TYPES:
            raise _Unusual  # bools, Decimals, numpy scalars: converted one by one
        values = list(map(float, values))  # an int beyond float range raises
    if not all(map(math.isfinite, values)):
        raise _Unusual
    tag_maps = list(map(_TAGS, snaps))
    if set(map(type, tag_maps)) != {dict}:
        raise _Unusual
    tag_ids, tag_keys = _tag_ids(tag_maps)
    name0, kind0 = snaps[0].name, snaps[0].metric_type
    if type(kind0) is not MetricType:
        raise _Unusual
    # Usually one metric: then the tags alone tell the series apart.
    one_metric = all(map(is_, map(_KIND, snaps), repeat(kind0))) and set(map(_NAME, snaps)) == {
        name0
    }
    keys: list[Any] = tag_ids
    if not one_metric:
        names = map(_NAME, snaps)
        keys = list(zip(names, map(id, map(_KIND, snaps)), tag_ids, strict=True))
    if kind0 is MetricType.COUNTER or not one_metric:
        counter = MetricType.COUNTER
        for kind, value in zip(map(_KIND, snaps), values, strict=True):
            if value < 0 and kind is counter:
                raise _Unusual
    # A small int per series: the groups below hash (int, float) pairs, not tag tuples.
    index: dict[Any, int] = {}
    sids = list(map(index.setdefault, keys, count()))
    series: _Series = {}
    insts: dict[tuple[str, int], _Instrument] = {}
    for key, sid in index.items():
        if one_metric:
            name, kind, tid = name0, kind0, key
        else:
            name, kind_id, tid = key
            kind = _KIND_BY_ID[kind_id]
        if tag_keys is None:
            raw = dict(tid)
        elif len(tag_keys) == 1:
            raw = {tag_keys[0]: tid}
        else:
            raw = dict(zip(tag_keys, tid, strict=True))
        if set(map(type, raw.values())) - {str} or set(map(type, raw)) - {str}:
            # 1 == 1.0 == True: grouping on such values could mix their series.
            raise _Unusual
        inst = insts.get((name, id(kind)))
        if inst is None:
            validate_name(name, "snapshot.name")
            inst = insts[(name, id(kind))] = registry.get(kind, name)
        # Default tags are added at collection, as for live observations.
        series[sid] = (name, kind, inst._canonical(raw), inst)
    starts, intervals = _starts(snaps, step)
    if len(series) * intervals >= len(starts):  # else a series has two values in an interval
        # Maybe one value per series and interval (sparse): split by series, in C
        # (list.append returns None, so any() runs to the end), then check each series'
        # starts are distinct.
        firsts: defaultdict[Any, list[float]] = defaultdict(list)
        vals: defaultdict[Any, list[float]] = defaultdict(list)
        any(map(list.append, map(firsts.__getitem__, sids), starts))
        any(map(list.append, map(vals.__getitem__, sids), values))
        if all(len(set(st)) == len(st) for st in firsts.values()):
            return series, {sid: (st, vals[sid]) for sid, st in firsts.items()}, True
    lists: defaultdict[tuple[Any, float], list[float]] = defaultdict(list)
    # lists[(sid, start)].append(value) for each snapshot, in C.
    any(map(list.append, map(lists.__getitem__, zip(sids, starts, strict=True)), values))
    return series, _by_series(lists), False


def _careful(
    registry: _Registry, snaps: list[Any], step: float, checks: _Checks
) -> tuple[_Series, _Groups]:
    """Series and groups, checking snapshot by snapshot as :meth:`Registry.record` does;
    raises for the first invalid one."""
    from sounding.core.snapshot import MetricSnapshot

    validate_name, _number = checks
    floor = math.floor
    isfinite = math.isfinite
    insts: dict[tuple[Any, Any], _Instrument] = {}
    canon: dict[tuple[Any, ...], TagKey] = {}
    series: _Series = {}
    groups: _Groups = {}
    for snapshot in snaps:
        if not isinstance(snapshot, MetricSnapshot):
            raise InvalidTypeError("snapshot", snapshot, "a sounding.MetricSnapshot")
        name = snapshot.name
        kind = snapshot.metric_type
        try:
            inst = insts[(name, kind)]
        except (KeyError, TypeError):
            validate_name(name, "snapshot.name")
            inst = insts[(name, kind)] = registry.get(kind, name)
        value = snapshot.value
        if type(value) is not float or not isfinite(value):
            # As record() checks it: ints within float range and float subclasses (numpy)
            # become floats; bools, NaN, infinities and anything else are refused.
            raw = value
            number = isinstance(raw, (int, float)) and not isinstance(raw, bool)
            checked = _number(raw) if number else None
            if checked is None:
                raise InvalidValueError("snapshot.value", raw, "a finite number")
            value = checked
        if kind is MetricType.COUNTER and value < 0:
            raise InvalidValueError("snapshot.value", value, "a number >= 0 for a counter")
        raw_tags = snapshot.tags
        try:
            tags = canon[(inst, tuple(raw_tags.items()))]
        except (KeyError, TypeError, AttributeError):
            if not isinstance(raw_tags, Mapping):
                raise InvalidTypeError("snapshot.tags", raw_tags, "a dict of str to str") from None
            tags = inst._canonical(raw_tags)
            items = tuple(raw_tags.items())
            # Only str values are remembered: 1, 1.0 and True are equal keys but not tags.
            if len(canon) < _CANON_LIMIT and all(type(v) is str for _, v in items):
                try:
                    canon[(inst, items)] = tags
                except TypeError:  # unhashable values: checked every time
                    pass
        start = float(floor(snapshot.epoch / step) * step)
        skey = (inst.name, tags)
        if skey not in series:
            series[skey] = (inst.name, inst.metric_type, tags, inst)
        values = groups.get((skey, start))
        if values is None:
            groups[(skey, start)] = [value]
        else:
            values.append(value)
    return series, groups


def _by_series(groups: _Groups) -> _BySeries:
    """The starts and values of ``groups``, per series (in order of first appearance), each
    series' in its order (usually time)."""
    starts: defaultdict[Any, list[float]] = defaultdict(list)
    values: defaultdict[Any, list[Any]] = defaultdict(list)
    keys = list(groups)
    sids = list(map(_FIRST, keys))
    # starts[sid].append(start) and values[sid].append(group), in C (see _by_columns).
    any(map(list.append, map(starts.__getitem__, sids), map(_SECOND, keys)))
    any(map(list.append, map(values.__getitem__, sids), groups.values()))
    return {sid: (first, values[sid]) for sid, first in starts.items()}


def _add(
    registry: _Registry, series: _Series, by_series: _BySeries, single: bool, step: float
) -> None:
    """Fold each series' groups into the registry's intervals, series by series."""
    history = registry._history
    with registry._lock:
        for sid, (starts, values) in by_series.items():
            name, kind, tags, inst = series[sid]
            unit, description = inst.unit, inst.description
            held = history.get((name, tags))
            ends = map(add, starts, repeat(step))
            if single and not held and kind in _DISTRIBUTIONS:
                # A new series of one-observation intervals: built in C, sketches later, and
                # kept as a run (distinct starts, in order), not keyed by start.
                history[(name, tags)] = ImportedRun(
                    starts,
                    list(map(OneValueInterval, repeat(name), repeat(kind), repeat(tags),
                             starts, ends, values, repeat(unit), repeat(description))),
                )  # fmt: skip
                continue
            if held is None:
                intervals = history[(name, tags)] = {}
            elif isinstance(held, dict):
                intervals = held
            else:
                intervals = history[(name, tags)] = held.as_dict()
            gauge = kind is MetricType.GAUGE
            dist = kind in _DISTRIBUTIONS
            for start, end, vals in zip(starts, ends, values, strict=True):
                agg = intervals.get(start)
                if agg is not None:
                    _fold(agg, [vals] if single else vals)
                elif single:
                    v = vals
                    intervals[start] = (
                        OneValueInterval(name, kind, tags, start, end, v, unit, description)
                        if dist
                        else IntervalAggregate(name, kind, tags, start, end, 1, 0.0 + v, v, v,
                                               v if gauge else None, None, unit, description)
                    )  # fmt: skip
                else:
                    agg = intervals[start] = IntervalAggregate(
                        name, kind, tags, start, end, unit=unit, description=description,
                        sketch=QuantileSketch() if dist else None,
                    )  # fmt: skip
                    _fold(agg, vals)


def _fold(agg: IntervalAggregate, values: list[float]) -> None:
    """Add ``values`` (one series and interval, in input order) to ``agg``."""
    sk = agg.sketch
    if sk is not None and agg.count == 0 and sk.count == 0 and len(values) > 1:
        # A new interval: the sketch's count, sum, min and max are the interval's (the
        # same fsum), so the values are walked once, not twice.
        sk.add_many(values)
        agg.count, agg.sum, agg.min, agg.max = sk.count, sk.sum, sk.min, sk.max
        return
    lo = min(values)
    hi = max(values)
    agg.count += len(values)
    agg.sum += math.fsum(values) if len(values) > 1 else values[0]
    agg.min = lo if agg.min is None else min(agg.min, lo)
    agg.max = hi if agg.max is None else max(agg.max, hi)
    if agg.metric_type is MetricType.GAUGE:
        agg.last = values[-1]
    if agg.sketch is not None:
        if len(values) == 1:
            agg.sketch.add(values[0])
        else:
            agg.sketch.add_many(values)
