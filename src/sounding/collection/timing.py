"""Timing: :func:`track_execution_time` (a decorator) and :class:`PerformanceTimer` (a context
manager, sync and async, that is also a decorator) - seed Day 1.

>>> from sounding.collection.timing import PerformanceTimer, track_execution_time
>>> @track_execution_time(threshold_ms=500)
... def export(path):
...     return path.upper()
>>> export("take-1.wav")
'TAKE-1.WAV'
>>> with PerformanceTimer("audio.process", tags={"format": "wav"}) as timer:
...     timer.add_metric("samples", 44100)
>>> timer.elapsed_ms >= 0, timer.metrics
(True, {'samples': 44100})

Every run is observed, in milliseconds, in the histogram ``<operation>.duration`` (unit
``"ms"``) with the tag ``status=ok`` or ``status=error``; a run that raised also carries
``exc_type=<the exception's type name>`` (never its message). The exception itself passes
through untouched: the same object, re-raised with a bare ``raise``.

A run longer than ``threshold_ms`` records a warning event ``<operation>.slow`` (category
``performance``, fields ``duration_ms`` and ``threshold_ms``) and increments the counter
``<operation>.slow``. With ``log_result=True`` every run also records an info event
``<operation>.completed`` with ``duration_ms`` and ``status``; never argument values and
never anything from the result.

Durations come from the injectable clock's ``monotonic()`` and are clamped at zero. For a
coroutine function the wrapper is itself a coroutine function and times the ``await`` of
the call, not the creation of the coroutine (the bug of prometheus_client issue 535).
Generator functions are rejected at decoration time: only creating the generator would be
timed.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Final, ParamSpec, TypeVar, cast, overload

from sounding.collection import _wrap
from sounding.collection import metrics as _metrics
from sounding.collection.naming import check_operation_name, check_options, operation_name_for
from sounding.collection.severity import check_classify, check_ok_exceptions, exception_outcome
from sounding.core import health
from sounding.core.clock import get_clock, on_clock_change
from sounding.core.exceptions import (
    InvalidTypeError,
    InvalidValueError,
    MetricTypeConflictError,
)
from sounding.core.types import EventCategory

__all__ = ["PerformanceTimer", "operation_name_for", "track_execution_time"]

P = ParamSpec("P")
R = TypeVar("R")

_LOGGER_NAME: Final = "sounding.timing"


#: The monotonic clock in use, followed through set_clock (one global load on the hot path
#: instead of three lookups through the clock module).
_mono: Callable[[], float] = get_clock().monotonic


def _follow_clock() -> None:
    global _mono
    _mono = get_clock().monotonic


on_clock_change(_follow_clock)


def _check_operation(name: object) -> str:
    return check_operation_name(name, ".duration")


def _check_threshold(threshold_ms: object) -> float | None:
    if threshold_ms is None:
        return None
    if isinstance(threshold_ms, bool) or not isinstance(threshold_ms, (int, float)):
        raise InvalidTypeError("threshold_ms", threshold_ms, "a number of milliseconds or None")
    if not 0 <= threshold_ms <= sys.float_info.max:  # exact: NaN, inf, 10**400 all fail
        raise InvalidValueError(
            "threshold_ms", threshold_ms, "a finite number of milliseconds >= 0, or None"
        )
    return float(threshold_ms)


def _check_tags(tags: object) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidTypeError("tags", tags, "a mapping of tag name to value, or None")
    for reserved in ("status", "exc_type"):
        if reserved in tags:
            raise InvalidValueError(
                "tags", dict(tags), f"no '{reserved}' key (the timer sets it itself)"
            )
    return {str(k): v for k, v in tags.items()}


class _Operation:
    """One timed operation's settings and its instruments.

    Instruments are resolved from the current registry and re-resolved when the registry is
    replaced (tests reset it), so a decorator applied at import time keeps working.
    """

    __slots__ = (
        "__weakref__",
        "_error_tags",
        "_fast",
        "_hist",
        "_ok",
        "_ok_cell",
        "_registry",
        "_slow",
        "_slow_tags",
        "classify",
        "log_result",
        "name",
        "ok_exceptions",
        "plain",
        "tags",
        "threshold_ms",
    )

    def __init__(
        self,
        name: str,
        threshold_ms: float | None,
        tags: dict[str, str],
        log_result: bool,
        ok_exceptions: tuple[type[BaseException], ...] = (),
        classify: Callable[[BaseException], str | None] | None = None,
    ) -> None:
        self.name = name
        self.ok_exceptions = ok_exceptions
        self.classify = classify
        self.threshold_ms = threshold_ms
        self.tags = tags
        self.log_result = log_result
        #: no threshold and no result logging: a successful run is one observation
        self.plain = threshold_ms is None and not log_result
        self._registry: Any = None
        #: ``_ok_cell`` while a successful run is one append to its buffer (a plain operation,
        #: lock-free instruments, resolved in the current registry), else None: one test on
        #: the hot path. Every operation forgets it when the registry is reset (metrics.hold_fast).
        self._fast: Any = None
        self._hist: _metrics.Histogram | None = None
        self._ok: _metrics.BoundHistogram | None = None
        self._ok_cell: Any = None
        self._slow: _metrics.Counter | None = None
        self._error_tags: dict[str, dict[str, str]] = {}
        self._slow_tags = {**tags, "status": "ok"}
        # Definition time: the instruments and tags must be valid now, not at the first call.
        self._resolve()

    def _resolve(self) -> _metrics.BoundHistogram:
        registry = _metrics.get_registry()
        hist = _metrics.histogram(
            f"{self.name}.duration", unit="ms", description=f"duration of {self.name}"
        )
        ok = hist.bind(**self.tags, status="ok")
        self._hist = hist
        self._ok = ok
        self._ok_cell = ok._cell
        self._slow = None
        self._registry = registry
        self._fast = ok._cell if self.plain and _metrics.LOCK_FREE else None
        _metrics.hold_fast(self)
        return ok

    def observe_ok(self, elapsed_ms: float) -> None:
        """Record a successful run (the hot path)."""
        ok = self._ok
        if self._registry is not _metrics._registry or ok is None:
            ok = self._resolve()
        ok.observe(elapsed_ms)
        if self.threshold_ms is not None and elapsed_ms > self.threshold_ms:
            self._slow_run(elapsed_ms, "ok", None)
        if self.log_result:
            self._completed(elapsed_ms, "ok", None)

    def observe_error(self, elapsed_ms: float, exc: BaseException) -> None:
        """Record a run that raised ``exc``: tagged with its type name, never its message.

        An exception that is not a failure (an exit with code 0, ``ok_exceptions``, or as the
        classifier says) is a successful run; a user error has ``status=user_error``.
        """
        try:
            outcome = exception_outcome(exc, self.ok_exceptions, self.classify)
        except Exception as failure:
            health.failure("timing.outcome", failure)
            outcome = "error"
        if outcome == "ok":
            self.observe_ok(elapsed_ms)
            return
        if self._registry is not _metrics._registry or self._hist is None:
            self._resolve()
        hist = cast(_metrics.Histogram, self._hist)
        exc_type = type(exc).__name__
        status = "error" if outcome == "error" else "user_error"
        key = exc_type if status == "error" else f"{exc_type}:user"
        tags = self._error_tags.get(key)
        if tags is None:
            tags = {**self.tags, "status": status, "exc_type": exc_type}
            if len(self._error_tags) < 64:
                self._error_tags[key] = tags
        hist.observe(elapsed_ms, tags)
        if self.threshold_ms is not None and elapsed_ms > self.threshold_ms:
            self._slow_run(elapsed_ms, status, exc_type)
        if self.log_result:
            self._completed(elapsed_ms, status, exc_type)

    def _slow_run(self, elapsed_ms: float, status: str, exc_type: str | None) -> None:
        slow = self._slow
        if slow is None:
            slow = _metrics.counter(
                f"{self.name}.slow", description=f"runs of {self.name} over their threshold"
            )
            self._slow = slow
        slow.inc(1, self.tags or None)
        fields: dict[str, Any] = {
            "duration_ms": elapsed_ms,
            "threshold_ms": self.threshold_ms,
            "status": status,
        }
        if exc_type is not None:
            fields["exc_type"] = exc_type
        _logger().warning(f"{self.name}.slow", category=EventCategory.PERFORMANCE, **fields)

    def _completed(self, elapsed_ms: float, status: str, exc_type: str | None) -> None:
        fields: dict[str, Any] = {"duration_ms": elapsed_ms, "status": status}
        if exc_type is not None:
            fields["exc_type"] = exc_type
        fields.update(self.tags)
        _logger().info(f"{self.name}.completed", category=EventCategory.PERFORMANCE, **fields)

    def record(self, elapsed_ms: float, exc: BaseException | None) -> None:
        """Record one run; never raises (failures go to :func:`health.failure`)."""
        try:
            if exc is None:
                self.observe_ok(elapsed_ms)
            else:
                self.observe_error(elapsed_ms, exc)
        except Exception as failure:
            health.failure("timing.record", failure)

    def wrap(self, fn: Callable[P, R]) -> Callable[P, R]:
        """``fn`` timed as this operation (sync or async, see :mod:`._wrap`)."""
        _wrap.reject_generator(
            fn,
            "not a generator: a generator's time is spent while it is iterated, so time the "
            "code that consumes it (with PerformanceTimer)",
        )
        op = self

        def ok(seconds: float) -> None:
            try:
                # Inlined observe_ok and BoundHistogram.observe for the common case (see
                # PerformanceTimer.__exit__; ``seconds`` is >= 0 from the clock).
                elapsed_ms = seconds * 1000.0
                cell = op._fast
                if cell is not None and elapsed_ms <= _MAX_FLOAT:
                    buf = cell.buf
                    buf.append(elapsed_ms)
                    if len(buf) >= _BATCH:
                        cast(_metrics.Histogram, op._hist)._fold(cell)
                else:
                    op.observe_ok(elapsed_ms)
            except Exception as failure:
                health.failure("timing.record", failure)

        def failed(seconds: float, exc: BaseException) -> None:
            op.record(seconds * 1000.0, exc)

        return _wrap.timed(fn, ok, failed)


def _logger() -> Any:
    # Imported here: the logging module is heavier and timing works without any event.
    from sounding.collection.log import get_logger

    return get_logger(_LOGGER_NAME, category=EventCategory.PERFORMANCE)


@overload
def track_execution_time(operation_name: Callable[P, R]) -> Callable[P, R]: ...


@overload
def track_execution_time(
    operation_name: str | None = None,
    threshold_ms: float | None = None,
    log_result: bool = False,
    *,
    ok_exceptions: type[BaseException] | tuple[type[BaseException], ...] = (),
    classify: Callable[[BaseException], str | None] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def track_execution_time(
    operation_name: str | Callable[..., Any] | None = None,
    threshold_ms: float | None = None,
    log_result: bool = False,
    *,
    ok_exceptions: type[BaseException] | tuple[type[BaseException], ...] = (),
    classify: Callable[[BaseException], str | None] | None = None,
) -> Any:
    """Time every call of a function or coroutine function (seed Day 1).

    Usable with or without parentheses::

        @track_execution_time
        def load(): ...

        @track_execution_time("recorder.export", threshold_ms=250, log_result=True)
        async def export(path): ...

        @track_execution_time(operation_name="cli.run", ok_exceptions=(click.exceptions.Exit,))
        def run(): ...

    ``operation_name`` defaults to the function's ``module.qualname`` made a valid metric
    name. A bad name, a negative or non-numeric ``threshold_ms`` or a generator function
    raise at decoration time (:class:`~sounding.exceptions.InvalidNameError`,
    :class:`~sounding.exceptions.InvalidValueError`,
    :class:`~sounding.exceptions.InvalidTypeError`). See the module docs for what is recorded.

    ``ok_exceptions`` and ``classify`` say which exceptions are not failures, as for
    :func:`~sounding.collection.boundary.operation_boundary`: such a run is ``status=ok``; a user
    error (``classify`` answering ``"user_error"``, a ``click.ClickException``) is
    ``status=user_error``. An exit with code 0 is never an error.
    """
    oks = check_ok_exceptions(ok_exceptions)
    classifier = check_classify(classify)
    if callable(operation_name) and not isinstance(operation_name, str):
        # Used bare: @track_execution_time
        fn = operation_name
        return _Operation(operation_name_for(fn), None, {}, False).wrap(fn)
    name = None if operation_name is None else _check_operation(operation_name)
    threshold = _check_threshold(threshold_ms)
    if not isinstance(log_result, bool):
        raise InvalidTypeError("log_result", log_result, "True or False")

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        if not callable(fn):
            raise InvalidTypeError("function", fn, "a function or coroutine function")
        op_name = name if name is not None else operation_name_for(fn)
        return _Operation(op_name, threshold, {}, log_result, oks, classifier).wrap(fn)

    return decorate


def _metric_histogram(timer: str, metric: object) -> _metrics.Histogram:
    """The histogram ``<timer>.<metric>`` of :meth:`PerformanceTimer.add_metric`."""
    if not isinstance(metric, str) or not metric:
        raise InvalidTypeError("metric name", metric, "a non-empty str such as 'rows'")
    name = _metrics.validate_name(f"{timer}.{metric}", "metric name")
    try:
        return _metrics.histogram(name)
    except MetricTypeConflictError:
        kinds = [
            i.metric_type.value for i in _metrics.get_registry().instruments() if i.name == name
        ]
        kind = kinds[0] if kinds else "another kind"
        raise MetricTypeConflictError(
            "metric name",
            metric,
            f"a name whose metric {name!r} is not already a {kind} (timer metrics are "
            "histograms); rename the metric or the other instrument",
        ) from None


#: Checked settings -> their _Operation, so that a timer created per call skips the checks
#: and the instrument lookups. Keys carry the value types (``True == 1`` must not let an
#: invalid ``log_result=1`` through); tags are cached only when every key and value is a str.
_OPERATIONS: dict[tuple[Any, ...], _Operation] = {}
_MAX_OPERATIONS: Final = 1024
#: ``PerformanceTimer(name)`` with every other argument left out: name -> its _Operation.
_PLAIN: dict[str, _Operation] = {}
#: The keyword-only arguments of PerformanceTimer (see its overloads).
_TIMER_OPTIONS: Final = ("log_result", "metrics", "ok_exceptions", "classify")
_MAX_FLOAT: Final = sys.float_info.max
_BATCH: Final = _metrics._BATCH


def _operation_key(
    name: object, threshold_ms: object, tags: object, log_result: object
) -> tuple[Any, ...] | None:
    if type(name) is not str or (log_result is not False and log_result is not True):
        return None
    if threshold_ms is not None and type(threshold_ms) not in (float, int):
        return None
    if tags is None:
        if threshold_ms is None:  # the common call: the key PerformanceTimer looks up inline
            return (name, log_result)
        return (name, threshold_ms, type(threshold_ms), log_result)
    if type(tags) is not dict:
        return None
    for k, v in tags.items():
        if type(k) is not str or type(v) is not str:
            return None
    return (name, threshold_ms, type(threshold_ms), log_result, *tags.items())


def _cached_operation(
    name: object, threshold_ms: object, tags: object, log_result: object
) -> _Operation | None:
    key = _operation_key(name, threshold_ms, tags, log_result)
    return None if key is None else _OPERATIONS.get(key)


def _remember_operation(
    name: object, threshold_ms: object, tags: object, log_result: object, op: _Operation
) -> None:
    key = _operation_key(name, threshold_ms, tags, log_result)
    if key is not None and len(_OPERATIONS) < _MAX_OPERATIONS:
        _OPERATIONS[key] = op
        if key == (name, False) and type(name) is str:
            _PLAIN[name] = op


class PerformanceTimer:
    """Time a block: a sync and async context manager, and a decorator (seed Day 1).

    >>> import asyncio
    >>> async def main():
    ...     async with PerformanceTimer("audio.upload", threshold_ms=2000) as t:
    ...         await asyncio.sleep(0)
    ...     return t.elapsed_ms >= 0
    >>> asyncio.run(main())
    True

    ``elapsed_ms`` is live while the block runs and final after it. ``add_metric(name,
    value)`` attaches a number to this run: it is kept in ``metrics`` and, when the block
    ends, observed in the histogram ``<timer name>.<metric name>`` with the timer's tags.
    One instance times one block at a time; as a decorator it times every call separately.
    ``name``, ``threshold_ms`` and ``tags`` are checked here and raise when invalid, and so
    are the names of ``metrics=("rows",)`` declared up front: ``<timer name>.rows`` must be a
    valid name not already used by a metric of another kind (a counter ``import.rows``
    against the histogram this timer would make), else
    :class:`~sounding.exceptions.MetricTypeConflictError` is raised at once.
    ``ok_exceptions`` and ``classify`` work as for :func:`track_execution_time`.
    """

    __slots__ = ("_metrics", "_op", "_start", "_stop")

    # Unset until the first run (see __init__).
    #: the start of the current or last run
    _start: float
    #: the end of the last run, None while one runs (set with ``_start``, read only after it)
    _stop: float | None
    #: the numbers of add_metric for this run, None when there are none
    _metrics: dict[str, float] | None

    @overload
    def __init__(
        self,
        name: str,
        threshold_ms: float | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self,
        name: str,
        threshold_ms: float | None = None,
        tags: Mapping[str, Any] | None = None,
        *,
        log_result: bool = False,
        metrics: tuple[str, ...] | list[str] = (),
        ok_exceptions: type[BaseException] | tuple[type[BaseException], ...] = (),
        classify: Callable[[BaseException], str | None] | None = None,
    ) -> None: ...

    def __init__(
        self,
        name: str,
        threshold_ms: float | None = None,
        tags: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        # Created per call, as the docs show it: the checked settings and resolved instruments
        # are shared by every timer with the same settings (an _Operation holds no run state).
        # ``PerformanceTimer("op")`` is one dict lookup (the keyword-only options arrive as
        # ``options``, empty when none is given: no default to fill in or compare); other
        # plain forms a lookup on a key of the arguments; outcome options the full checks.
        # ``_start``, ``_stop`` and ``_metrics`` stay unset until the first run (what may read
        # them before it uses ``getattr`` with a default): two stores fewer per timer.
        if not options and threshold_ms is None and tags is None:
            try:
                self._op = _PLAIN[name]
                return
            except (KeyError, TypeError):  # not made yet (or unhashable): checked below
                pass
        check_options(options, _TIMER_OPTIONS, "PerformanceTimer")
        log_result = options.get("log_result", False)
        metrics = options.get("metrics", ())
        ok_exceptions = options.get("ok_exceptions", ())
        classify = options.get("classify")
        plain = type(ok_exceptions) is tuple and not ok_exceptions and classify is None
        op = _cached_operation(name, threshold_ms, tags, log_result) if plain else None
        if op is None or op.log_result is not log_result:
            if not isinstance(log_result, bool):
                raise InvalidTypeError("log_result", log_result, "True or False")
            op = _Operation(
                _check_operation(name),
                _check_threshold(threshold_ms),
                _check_tags(tags),
                log_result,
                check_ok_exceptions(ok_exceptions),
                check_classify(classify),
            )
            if plain:
                _remember_operation(name, threshold_ms, tags, log_result, op)
        self._op = op
        if type(metrics) is not tuple or metrics:
            declared: object = metrics
            if isinstance(declared, str) or not isinstance(declared, (tuple, list)):
                raise InvalidTypeError(
                    "metrics", metrics, "a tuple of metric names such as ('rows',)"
                )
            for metric in metrics:
                # Declared metrics are checked now: a clash fails here, not when a block ends.
                _metric_histogram(self._op.name, metric)

    @property
    def metrics(self) -> dict[str, float]:
        """Numbers attached with :meth:`add_metric` during the current (or last) run."""
        found: dict[str, float] | None = getattr(self, "_metrics", None)
        if found is None:
            found = self._metrics = {}
        return found

    @metrics.setter
    def metrics(self, value: dict[str, float]) -> None:
        self._metrics = value

    @property
    def name(self) -> str:
        """The operation name."""
        return self._op.name

    @property
    def threshold_ms(self) -> float | None:
        """The threshold above which a run counts as slow, or ``None``."""
        return self._op.threshold_ms

    @property
    def elapsed_ms(self) -> float:
        """Milliseconds since the start (running), of the last run (ended), 0 before."""
        start: float | None = getattr(self, "_start", None)
        if start is None:
            return 0.0
        stop = self._stop if self._stop is not None else get_clock().monotonic()
        return max(stop - start, 0.0) * 1000.0

    def add_metric(self, name: str, value: float) -> None:
        """Attach a number to this run (see the class docs). Never raises: a bad name or
        value is counted through :func:`sounding.core.health.failure` and skipped."""
        try:
            if not isinstance(name, str) or not name:
                raise InvalidTypeError("metric name", name, "a non-empty str")
            _metric_histogram(self._op.name, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidTypeError(f"metric {name!r}", value, "an int or float")
            if not math.isfinite(value):
                raise InvalidValueError(f"metric {name!r}", value, "a finite number")
            self.metrics[name] = value
        except Exception as exc:
            health.failure("timing.add_metric", exc)

    def _begin(self) -> None:
        self._metrics = None  # a new run starts with no metrics
        self._stop = None
        self._start = _mono()

    def _end(self, exc: BaseException | None) -> None:
        stop = _mono()
        start: float | None = getattr(self, "_start", None)
        if start is None:  # ended without a start
            start = stop
        self._stop = stop
        # Time can go backwards on an injected clock; a duration never does.
        elapsed_ms = (stop - start) * 1000.0
        if elapsed_ms < 0.0:
            elapsed_ms = 0.0
        op = self._op
        ok = op._ok
        if exc is None and op.plain and ok is not None and op._registry is _metrics._registry:
            try:
                ok.observe(elapsed_ms)
            except Exception as failure:
                health.failure("timing.record", failure)
        else:
            op.record(elapsed_ms, exc)
        attached: dict[str, float] | None = getattr(self, "_metrics", None)
        if attached:
            for metric, value in attached.items():
                try:
                    _metric_histogram(op.name, metric).observe(value, op.tags or None)
                except Exception as failure:
                    health.failure("timing.add_metric", failure)

    def __enter__(self) -> PerformanceTimer:
        # _begin inlined: a timer created per call pays for every call made here.
        self._metrics = None
        self._stop = None
        self._start = _mono()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stop = _mono()
        if exc is None:
            # The common run: _end's fast path with BoundHistogram.observe inlined (a finite
            # float from the clock needs no other check), one append to the series buffer.
            cell: _metrics._SketchCell | None = self._op._fast
            try:
                start = self._start
                attached = self._metrics
            except AttributeError:  # never entered: _end records it
                attached = cell = None
            if cell is not None and attached is None:
                self._stop = stop
                elapsed_ms = (stop - start) * 1000.0
                if elapsed_ms > 0.0:
                    if elapsed_ms > _MAX_FLOAT:  # past the largest float: _end records it
                        self._end(exc)
                        return
                else:
                    elapsed_ms = 0.0  # time went backwards on an injected clock (or NaN)
                buf = cell.buf
                buf.append(elapsed_ms)
                if len(buf) >= _BATCH:
                    cast(_metrics.Histogram, self._op._hist)._fold(cell)
                return
        self._end(exc)

    async def __aenter__(self) -> PerformanceTimer:
        self._begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._end(exc)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Use the timer as a decorator: every call is timed as this operation."""
        if not callable(fn):
            raise InvalidTypeError("function", fn, "a function or coroutine function")
        return self._op.wrap(fn)

    def __repr__(self) -> str:
        return f"<PerformanceTimer {self._op.name!r} elapsed_ms={self.elapsed_ms:.3f}>"
