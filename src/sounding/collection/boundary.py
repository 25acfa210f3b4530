"""Operation boundaries: make a risky operation measurable and resilient (seed Day 3).

:func:`operation_boundary` wraps a function (sync or async) or a block. It records every
attempt, retry, failure (by exception *type*, never by message), fallback and the duration
of each call in metrics, records a scrubbed error event when a call finally fails, and can
retry with exponential backoff and full jitter:

>>> from sounding.collection.boundary import operation_boundary
>>> @operation_boundary("recorder.load_config", fallback_value={}, reraise=False)
... def load_config(path):
...     raise OSError("disk gone")
>>> load_config("settings.toml")
{}

Metrics (``<op>`` is the operation name):

=========================  ==========  ===================================================
``<op>.attempts``          counter     every call of the wrapped function, retries included
``<op>.retries``           counter     attempts that failed and were retried
``<op>.failures``          counter     calls that failed in the end, tag ``exc_type``
``<op>.fallbacks``         counter     calls that returned ``fallback_value``
``<op>.duration``          histogram   ms per call (retries included), tag ``status``:
                                       ``ok``, ``error``, ``fallback`` or ``cancelled``
=========================  ==========  ===================================================

Events: ``operation.retry`` (warning) for each retry with the attempt number, the delay and
the exception type (never the arguments), and ``operation.failed`` (at the level of the
error's :class:`~sounding.core.types.ErrorSeverity`) with type, scrubbed message and stack
(see :mod:`sounding.collection.errors`).

The success path does only what it must: two clock reads, one counter increment and one
histogram observation on instruments resolved when the boundary was defined.

The seams for tests: the module attributes :data:`sleep`, :data:`async_sleep` and
:data:`random` are looked up at retry time, so ``monkeypatch.setattr(boundary, "sleep", ...)``
makes retries take no real time.
"""

from __future__ import annotations

import asyncio
import functools
import math
import random as _random_module
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from operator import is_
from types import TracebackType
from typing import Any, Final, TypeVar, cast, overload

from sounding.collection import _wrap
from sounding.collection import errors as _errors
from sounding.collection import metrics as _metrics
from sounding.collection.naming import check_operation_name, check_options, operation_name_for
from sounding.collection.severity import (
    DEFAULT_SEVERITIES,
    check_classify,
    check_ok_exceptions,
    classify_exception,
    coerce_severity,
    exception_outcome,
    reset_severities,
    set_severity,
    set_severity_classifier,
)
from sounding.core import health
from sounding.core.clock import get_clock, on_clock_change
from sounding.core.config import UNSET
from sounding.core.exceptions import InvalidTypeError, InvalidValueError
from sounding.core.types import ErrorSeverity

__all__ = [
    "DEFAULT_SEVERITIES",
    "MAX_OPERATION_LENGTH",
    "OperationBoundary",
    "async_sleep",
    "backoff_delay",
    "classify_exception",
    "exception_outcome",
    "operation_boundary",
    "random",
    "reset_severities",
    "set_severity",
    "set_severity_classifier",
    "sleep",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Seam: how a sync retry waits (``time.sleep``). Tests replace it.
sleep: Callable[[float], object] = time.sleep
#: Seam: how an async retry waits (``asyncio.sleep``). Tests replace it.
async_sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
#: Seam: the jitter source, a function returning a float in ``[0, 1)``.
random: Callable[[], float] = _random_module.random

#: The monotonic clock in use, followed through set_clock (one global load per block).
_mono: Callable[[], float] = get_clock().monotonic


def _follow_clock() -> None:
    global _mono
    _mono = get_clock().monotonic


on_clock_change(_follow_clock)
_MAX_FLOAT: Final = _metrics._MAX
_BATCH: Final = _metrics._BATCH
_LOCK_FREE: Final = _metrics.LOCK_FREE

# ---------------------------------------------------------------------------------------
# Backoff
# ---------------------------------------------------------------------------------------


def backoff_delay(
    retry: int,
    *,
    retry_delay: float,
    retry_backoff: float,
    max_delay: float,
    jitter: bool = True,
    draw: Callable[[], float] | None = None,
) -> float:
    """Seconds to wait before retry number ``retry`` (1 for the first retry).

    The cap is ``min(max_delay, retry_delay * retry_backoff ** (retry - 1))``; with ``jitter``
    the delay is drawn uniformly from ``[0, cap)`` ("full jitter", which spreads clients that
    failed together far better than a fixed schedule).

    >>> backoff_delay(3, retry_delay=1.0, retry_backoff=2.0, max_delay=30.0, jitter=False)
    4.0
    >>> backoff_delay(9, retry_delay=1.0, retry_backoff=2.0, max_delay=30.0, jitter=False)
    30.0
    """
    try:
        cap = min(max_delay, retry_delay * retry_backoff ** (retry - 1))
    except OverflowError:
        cap = max_delay
    if not jitter:
        return cap
    u = (draw or random)()
    # A broken random source must not produce a negative or endless sleep.
    if not 0.0 <= u < 1.0:
        u = 0.5
    return cap * u


# ---------------------------------------------------------------------------------------
# The boundary
# ---------------------------------------------------------------------------------------

#: Longest operation name: leaves room for the longest metric suffix (``.user_errors``).
MAX_OPERATION_LENGTH: Final = _metrics.MAX_NAME_LENGTH - len(".user_errors")


def _name_for(fn: Callable[..., Any]) -> str:
    """A metric-safe default operation name: ``module.qualname`` with odd characters as ``_``."""
    return operation_name_for(fn, ".user_errors")


def _check_operation_name(name: object) -> str:
    return check_operation_name(name, ".user_errors")


def _number(value: object, field: str, minimum: float, allowed: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < minimum
    ):
        raise InvalidValueError(field, value, allowed)
    return float(value)


def _exception_types(value: object) -> tuple[type[Exception], ...]:
    types = value if isinstance(value, tuple) else (value,)
    allowed = "an Exception subclass or a non-empty tuple of them, e.g. (OSError, TimeoutError)"
    if not types:
        raise InvalidValueError("retry_exceptions", value, allowed)
    for t in types:
        if not (isinstance(t, type) and issubclass(t, Exception)):
            raise InvalidTypeError("retry_exceptions", value, allowed)
    return cast(tuple[type[Exception], ...], types)


class _Instruments:
    """The boundary's metric instruments, resolved once per registry."""

    __slots__ = (
        "attempts",
        "attempts_cell",
        "duration",
        "duration_ok",
        "duration_ok_cell",
        "failures",
        "fallbacks",
        "fast",
        "op",
        "registry",
        "retries",
        "user_errors",
    )

    def __init__(self, op: str) -> None:
        self.op = op
        self.registry = _metrics.get_registry()
        attempts = _metrics.counter(f"{op}.attempts", description=f"attempts of {op}")
        self.attempts = attempts.bind()
        self.retries = _metrics.counter(f"{op}.retries", description=f"retried attempts of {op}")
        self.failures = _metrics.counter(
            f"{op}.failures", description=f"calls of {op} that failed, by exception type"
        )
        self.fallbacks = _metrics.counter(
            f"{op}.fallbacks", description=f"calls of {op} that returned the fallback value"
        )
        self.duration = _metrics.histogram(
            f"{op}.duration", unit="ms", description=f"duration of {op} (retries included)"
        )
        self.duration_ok = self.duration.bind(status="ok")
        # What the success path of a `with` block updates directly (see __exit__).
        self.attempts_cell = self.attempts._cell
        self.duration_ok_cell = self.duration_ok._cell
        self.fast = _metrics.LOCK_FREE
        # Created on the first user error: most operations never have one.
        self.user_errors: _metrics.Counter | None = None

    def user_error(self) -> _metrics.Counter:
        counter = self.user_errors
        if counter is None:
            counter = self.user_errors = _metrics.counter(
                f"{self.op}.user_errors",
                description=f"calls of {self.op} ended by the user's mistake, by exception type",
            )
        return counter


def _predicate(value: object, field: str, takes: str) -> Callable[[Any], bool] | None:
    if value is not None and not callable(value):
        raise InvalidTypeError(field, value, f"None or a callable({takes}) -> bool")
    return cast("Callable[[Any], bool] | None", value)


class OperationBoundary:
    """What :func:`operation_boundary` returns: a decorator and a context manager.

    The settings are checked and the metric instruments resolved when it is created; calling
    it on a function returns the wrapped function.
    """

    def __init__(
        self,
        operation_name: str | None,
        *,
        retry_on_failure: bool,
        max_retries: int,
        retry_delay: float,
        retry_backoff: float,
        max_delay: float,
        jitter: bool,
        retry_exceptions: type[Exception] | tuple[type[Exception], ...],
        fallback_value: Any,
        reraise: Any,
        severity: ErrorSeverity | str | None,
        retry_if: Callable[[Exception], bool] | None = None,
        retry_if_result: Callable[[Any], bool] | None = None,
        deadline: float | None = None,
        ok_exceptions: type[BaseException] | tuple[type[BaseException], ...] = (),
        classify: Callable[[BaseException], str | None] | None = None,
    ) -> None:
        if operation_name is not None:
            _check_operation_name(operation_name)
        if not isinstance(retry_on_failure, bool):
            raise InvalidTypeError("retry_on_failure", retry_on_failure, "True or False")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int):
            raise InvalidTypeError("max_retries", max_retries, "an int from 0 to 100")
        if not 0 <= max_retries <= 100:
            raise InvalidValueError("max_retries", max_retries, "an int from 0 to 100")
        self.retry_delay = _number(retry_delay, "retry_delay", 0, "a finite number >= 0 (s)")
        self.retry_backoff = _number(retry_backoff, "retry_backoff", 1, "a finite number >= 1")
        self.max_delay = _number(max_delay, "max_delay", 0, "a finite number >= 0 (seconds)")
        if not isinstance(jitter, bool):
            raise InvalidTypeError("jitter", jitter, "True or False")
        self.retry_exceptions = _exception_types(retry_exceptions)
        self.retry_if = _predicate(retry_if, "retry_if", "exc")
        self.retry_if_result = _predicate(retry_if_result, "retry_if_result", "result")
        self.deadline = (
            None
            if deadline is None
            else _number(deadline, "deadline", 0, "None or a finite number of seconds >= 0")
        )
        for field, given in (
            ("retry_if", retry_if),
            ("retry_if_result", retry_if_result),
            ("deadline", deadline),
        ):
            if given is not None and not retry_on_failure:
                raise InvalidValueError(
                    field, given, "None unless retry_on_failure=True (it only steers retries)"
                )
        self.ok_exceptions = check_ok_exceptions(ok_exceptions)
        self.classify = check_classify(classify)
        if reraise is UNSET:
            # Passing a fallback value is asking for it to be used.
            reraise = fallback_value is UNSET
        if not isinstance(reraise, bool):
            raise InvalidTypeError("reraise", reraise, "True or False")
        if reraise and fallback_value is not UNSET:
            raise InvalidValueError(
                "reraise",
                reraise,
                "False when a fallback_value is given (with reraise=True it is never used)",
            )
        self.severity = None if severity is None else coerce_severity(severity, "severity")
        self.operation_name = operation_name
        self.retry_on_failure = retry_on_failure
        self.max_retries = max_retries if retry_on_failure else 0
        self.jitter = jitter
        self.fallback_value = None if fallback_value is UNSET else fallback_value
        self.reraise = reraise
        self._instruments: _Instruments | None = None
        #: ``_instruments`` while the success path updates their cells directly (lock-free,
        #: resolved in the current registry), else None: one test per call. Every boundary
        #: forgets it when the registry is reset (metrics.hold_fast).
        self._fast: _Instruments | None = None
        self._started: ContextVar[tuple[float, ...]] = ContextVar("sounding_boundary", default=())
        #: The start of the one `with` block using the fast slot (see __enter__), or None.
        self._slot: float | None = None
        #: starts pushed on a context's stack and not popped yet, in every context: while
        #: none is, an exit is the slot's (under LOCK_FREE; see __exit__)
        self._pushed = 0
        #: whether `with` may use it: a name and no retry (checked once, tested per block)
        self._block_ok = operation_name is not None and not retry_on_failure
        if operation_name is not None:
            self._resolved(_Instruments(operation_name))

    def _settings(self) -> dict[str, Any]:
        """The keyword arguments that make an equal boundary (for a default-named copy)."""
        return {
            "retry_on_failure": self.retry_on_failure,
            "max_retries": self.max_retries,
            "retry_delay": self.retry_delay,
            "retry_backoff": self.retry_backoff,
            "max_delay": self.max_delay,
            "jitter": self.jitter,
            "retry_exceptions": self.retry_exceptions,
            "fallback_value": self.fallback_value if not self.reraise else UNSET,
            "reraise": self.reraise,
            "severity": self.severity,
            "retry_if": self.retry_if,
            "retry_if_result": self.retry_if_result,
            "deadline": self.deadline,
            "ok_exceptions": self.ok_exceptions,
            "classify": self.classify,
        }

    # -- shared -------------------------------------------------------------------------
    def _inst(self) -> _Instruments:
        inst = self._instruments
        # The registry is replaced by sounding.reset() (tests) and in a forked child.
        if inst is None or inst.registry is not _metrics._registry:
            assert self.operation_name is not None
            inst = self._resolved(_Instruments(self.operation_name))
        return inst

    def _resolved(self, inst: _Instruments) -> _Instruments:
        self._instruments = inst
        self._fast = inst if inst.fast else None
        _metrics.hold_fast(self)
        return inst

    def _delay(self, retry: int) -> float:
        return backoff_delay(
            retry,
            retry_delay=self.retry_delay,
            retry_backoff=self.retry_backoff,
            max_delay=self.max_delay,
            jitter=self.jitter,
        )

    def _outcome(self, exc: BaseException) -> str:
        try:
            return exception_outcome(exc, self.ok_exceptions, self.classify)
        except Exception as failure:
            health.failure("boundary.outcome", failure)
            return "error"

    def _retry_delay(self, attempt: int, start: float, reason: str, exc_type: str) -> float | None:
        """The delay before retry number ``attempt`` (and its ``operation.retry`` event), or
        ``None`` when no retry is left or the deadline would pass before it starts."""
        if attempt > self.max_retries:
            return None
        delay = self._delay(attempt)
        deadline = self.deadline
        if deadline is not None:
            elapsed = max(get_clock().monotonic() - start, 0.0)
            if elapsed + delay > deadline:
                return None
        self._inst().retries.inc()
        _errors.emit_event(
            ErrorSeverity.MEDIUM.logging_level,
            "operation.retry",
            {
                "operation": self.operation_name,
                "attempt": attempt,
                "max_retries": self.max_retries,
                "delay_s": round(delay, 6),
                "reason": reason,
                "exc_type": exc_type,
            },
        )
        return delay

    def _wants_retry(self, exc: Exception) -> bool:
        if not isinstance(exc, self.retry_exceptions):
            return False
        retry_if = self.retry_if
        if retry_if is None:
            return True
        try:
            return bool(retry_if(exc))
        except Exception as failure:
            # A broken predicate must not turn one failure into endless retries.
            health.failure("boundary.retry_if", failure)
            return False

    def _retry_or_fail(self, exc: Exception, attempt: int, start: float) -> float | None:
        """After failed attempt number ``attempt``: the delay before retrying, or ``None``
        when the call has ended (metrics and the error event are then recorded). An exception
        that is not a failure (``ok_exceptions``, an exit with code 0) is recorded as ``ok``."""
        try:
            outcome = self._outcome(exc)
            if outcome == "ok":
                self._succeeded(start)
                return None
            self._inst().attempts.inc()
            if outcome == "error" and self._wants_retry(exc):
                delay = self._retry_delay(
                    attempt, start, "exception", _errors.exception_type_name(exc)
                )
                if delay is not None:
                    return delay
            self._failed(exc, attempt, start, self._inst(), outcome == "user_error")
        except Exception as failure:
            health.failure("boundary.record", failure)
        return None

    def _passes(self, exc: BaseException) -> bool:
        """Whether ``exc`` ends the call without being a failure (re-raised as it is)."""
        return self._outcome(exc) == "ok"

    def _failed(
        self,
        exc: Exception,
        attempts: int,
        start: float,
        inst: _Instruments,
        user_error: bool = False,
    ) -> None:
        exc_type = _errors.exception_type_name(exc)
        status = "error" if self.reraise else "fallback"
        if user_error:
            inst.user_error().inc(tags={"exc_type": exc_type})
        else:
            inst.failures.inc(tags={"exc_type": exc_type})
        if not self.reraise:
            inst.fallbacks.inc()
        elapsed = max(get_clock().monotonic() - start, 0.0) * 1e3
        inst.duration.observe(elapsed, {"status": "user_error" if user_error else status})
        severity = self.severity
        if user_error and severity is None:
            severity = classify_exception(exc)
        _errors.record_error(
            exc,
            operation=self.operation_name,
            severity=severity,
            handled=True,
            event="operation.failed",
            fields={
                "attempts": attempts,
                "outcome": "user_error" if user_error else status,
                "user_error": user_error,
                "duration_ms": round(elapsed, 3),
            },
        )

    def _rejected(self, attempts: int, start: float) -> None:
        """The result was still rejected by ``retry_if_result`` when the retries ran out."""
        try:
            inst = self._inst()
            inst.failures.inc(tags={"exc_type": "rejected_result"})
            elapsed = max(get_clock().monotonic() - start, 0.0) * 1e3
            inst.duration.observe(elapsed, {"status": "rejected"})
            _errors.emit_event(
                ErrorSeverity.MEDIUM.logging_level,
                "operation.rejected",
                {
                    "operation": self.operation_name,
                    "attempts": attempts,
                    "duration_ms": round(elapsed, 3),
                },
            )
        except Exception as failure:
            health.failure("boundary.record", failure)

    def _cancelled(self, start: float, exc: BaseException | None = None) -> None:
        try:
            if exc is not None and isinstance(exc, SystemExit) and self._passes(exc):
                self._succeeded(start)
                return
            inst = self._inst()
            inst.attempts.inc()
            elapsed = max(get_clock().monotonic() - start, 0.0) * 1e3
            inst.duration.observe(elapsed, {"status": "cancelled"})
        except Exception as failure:
            health.failure("boundary.record", failure)

    def _reject_result(self, result: Any) -> bool:
        predicate = self.retry_if_result
        if predicate is None:
            return False
        try:
            return bool(predicate(result))
        except Exception as failure:
            health.failure("boundary.retry_if_result", failure)
            return False

    # -- decorator ----------------------------------------------------------------------
    def __call__(self, fn: F) -> F:
        _wrap.reject_generator(
            fn,
            "not a generator (the boundary would only cover creating it); decorate the "
            "function that consumes it",
        )
        if self.operation_name is None:
            # Each decorated function gets its own boundary (and metric names).
            return OperationBoundary(_name_for(fn), **self._settings())(fn)
        if self.retry_if_result is not None:
            if _wrap.is_async(fn):
                return cast(F, self._wrap_async_results(fn))
            return cast(F, self._wrap_sync_results(fn))
        return cast(
            F, _wrap.guarded(fn, self._ok, self._recover_sync, self._recover_async, self._cancelled)
        )

    def _ok(self, seconds: float) -> None:
        # The success path: one increment and one observation, nothing else (inlined into
        # the cells as in __exit__; ``seconds`` is >= 0 from the clock).
        inst = self._fast
        elapsed = seconds * 1e3
        if inst is not None and elapsed <= _MAX_FLOAT:
            counted = inst.attempts_cell
            counted.total += 1.0
            counted.n += 1
            cell = inst.duration_ok_cell
            buf = cell.buf
            buf.append(elapsed)
            if len(buf) >= _BATCH:
                inst.duration._fold(cell)
        else:
            inst = self._inst()
            inst.attempts.inc()
            inst.duration_ok.observe(elapsed)

    def _recover_sync(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        exc: Exception,
        start: float,
    ) -> Any:
        attempt = 1
        while True:
            delay = self._retry_or_fail(exc, attempt, start)
            if delay is None:
                if self.reraise or self._passes(exc):
                    raise exc
                return self.fallback_value
            try:
                sleep(delay)
            except Exception as failure:
                health.failure("boundary.sleep", failure)
            attempt += 1
            try:
                result = fn(*args, **kwargs)
            except Exception as e:
                exc = e
            except BaseException as e:
                self._cancelled(start, e)
                raise
            else:
                self._succeeded(start)
                return result

    def _wrap_sync_results(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """The wrapper when results may be retried (``retry_if_result``)."""
        boundary = self

        @functools.wraps(fn)
        def bounded(*args: Any, **kwargs: Any) -> Any:
            start = get_clock().monotonic()
            attempt = 1
            while True:
                try:
                    result = fn(*args, **kwargs)
                except Exception as exc:
                    return boundary._recover_sync(fn, args, kwargs, exc, start)
                except BaseException as e:
                    boundary._cancelled(start, e)
                    raise
                if not boundary._reject_result(result):
                    boundary._succeeded(start)
                    return result
                boundary._inst().attempts.inc()
                delay = boundary._retry_delay(attempt, start, "result", "rejected_result")
                if delay is None:
                    boundary._rejected(attempt, start)
                    return result
                try:
                    sleep(delay)
                except Exception as failure:
                    health.failure("boundary.sleep", failure)
                attempt += 1

        return bounded

    def _succeeded(self, start: float) -> None:
        inst = self._inst()
        inst.attempts.inc()
        inst.duration_ok.observe(max(get_clock().monotonic() - start, 0.0) * 1e3)

    async def _recover_async(
        self,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        exc: Exception,
        start: float,
    ) -> Any:
        attempt = 1
        while True:
            delay = self._retry_or_fail(exc, attempt, start)
            if delay is None:
                if self.reraise or self._passes(exc):
                    raise exc
                return self.fallback_value
            try:
                await async_sleep(delay)
            except Exception as failure:
                health.failure("boundary.sleep", failure)
            attempt += 1
            try:
                result = await fn(*args, **kwargs)
            except Exception as e:
                exc = e
            except BaseException as e:
                self._cancelled(start, e)
                raise
            else:
                self._succeeded(start)
                return result

    def _wrap_async_results(
        self, fn: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        """The async wrapper when results may be retried (``retry_if_result``)."""
        boundary = self

        @functools.wraps(fn)
        async def bounded(*args: Any, **kwargs: Any) -> Any:
            start = get_clock().monotonic()
            attempt = 1
            while True:
                try:
                    result = await fn(*args, **kwargs)
                except Exception as exc:
                    return await boundary._recover_async(fn, args, kwargs, exc, start)
                except BaseException as e:
                    boundary._cancelled(start, e)
                    raise
                if not boundary._reject_result(result):
                    boundary._succeeded(start)
                    return result
                boundary._inst().attempts.inc()
                delay = boundary._retry_delay(attempt, start, "result", "rejected_result")
                if delay is None:
                    boundary._rejected(attempt, start)
                    return result
                try:
                    await async_sleep(delay)
                except Exception as failure:
                    health.failure("boundary.sleep", failure)
                attempt += 1

        return bounded

    # -- context manager ----------------------------------------------------------------
    def __enter__(self) -> OperationBoundary:
        if not self._block_ok:
            self._refuse_block()
        # One block at a time keeps its start in a slot (no context variable to set); a block
        # entered while the slot is taken (nested, or another thread/task) pushes its start on
        # a stack per context, so one boundary object can be entered from many threads/tasks.
        # __exit__ pops its own context's stack first, so each exit finds its own start. Under
        # the GIL (LOCK_FREE) the test and the store of the slot cannot be interleaved.
        # A context that already has a stack (nested, or inherited by a task created inside
        # a block) keeps using it, so its exits stay paired with its enters.
        start = _mono()
        started = self._started
        stack = started.get()
        if self._slot is None and not stack and _LOCK_FREE:
            self._slot = start
        else:
            self._pushed += 1  # before the push: an exit never misses an outstanding one
            started.set((*stack, start))
        return self

    def _refuse_block(self) -> None:
        if self.operation_name is None:
            raise InvalidValueError(
                "operation_name", None, "a name when operation_boundary is used with `with`"
            )
        raise InvalidValueError(
            "retry_on_failure",
            True,
            "False when operation_boundary is used with `with` (a block cannot be re-run); "
            "decorate a function to retry it",
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        stop = _mono()
        # A block that pushed its start has not exited, so its push is still counted: with
        # none counted this exit is the slot's, and its context's stack need not be read.
        # (A block that took the slot found its context's stack empty, and blocks nested
        # in it pop theirs before it exits.)
        stack: tuple[float, ...] = ()
        if self._pushed or not _LOCK_FREE:
            started = self._started
            stack = started.get()
        if stack:
            start = stack[-1]
            started.set(stack[:-1])
            self._pushed -= 1
        else:
            slot = self._slot
            self._slot = None
            start = stop if slot is None else slot
        if exc is None:
            # The success path, as in the decorator: one increment and one observation, with
            # BoundCounter.inc and BoundHistogram.observe inlined (1 and a finite float from
            # the clock need no check) when the instruments are lock-free.
            inst = self._fast
            elapsed = (stop - start) * 1e3
            if not elapsed > 0.0:
                elapsed = 0.0
            if inst is not None and elapsed <= _MAX_FLOAT:
                counted = inst.attempts_cell
                counted.total += 1.0
                counted.n += 1
                cell = inst.duration_ok_cell
                buf = cell.buf
                buf.append(elapsed)
                if len(buf) >= _BATCH:
                    inst.duration._fold(cell)
            else:
                inst = self._inst()
                inst.attempts.inc()
                inst.duration_ok.observe(elapsed)
            return False
        if not isinstance(exc, Exception):
            self._cancelled(start, exc)
            return False
        self._retry_or_fail(exc, 1, start)
        # reraise=False suppresses a failure (there is no value to return from a block); an
        # exception that is not a failure (an exit with code 0) always passes on.
        return not self.reraise and not self._passes(exc)

    async def __aenter__(self) -> OperationBoundary:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        return self.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        return (
            f"operation_boundary({self.operation_name!r}, retry_on_failure="
            f"{self.retry_on_failure}, max_retries={self.max_retries}, reraise={self.reraise})"
        )


@overload
def operation_boundary(operation_name: F, /) -> F: ...


@overload
def operation_boundary(
    operation_name: str | None = None,
    *,
    retry_on_failure: bool = False,
    max_retries: int = 3,
    retry_delay: float = 1.0,
    retry_backoff: float = 2.0,
    max_delay: float = 30.0,
    jitter: bool = True,
    retry_exceptions: type[Exception] | tuple[type[Exception], ...] = (Exception,),
    retry_if: Callable[[Exception], bool] | None = None,
    retry_if_result: Callable[[Any], bool] | None = None,
    deadline: float | None = None,
    fallback_value: Any = UNSET,
    reraise: bool = ...,
    severity: ErrorSeverity | str | None = None,
    ok_exceptions: type[BaseException] | tuple[type[BaseException], ...] = (),
    classify: Callable[[BaseException], str | None] | None = None,
) -> OperationBoundary: ...


def operation_boundary(operation_name: Any = None, **options: Any) -> Any:
    """Wrap a risky operation: metrics, a scrubbed error event, optional retry and fallback.

    Use it as ``@operation_boundary``, ``@operation_boundary("name", ...)`` on a function or
    coroutine function, or as ``with operation_boundary("name"):`` around a block (no retry
    there). Without a name, a function's boundary is named ``module.qualname``. The name may
    be passed by keyword too: ``@operation_boundary(operation_name="disk.write", ...)``.

    - ``retry_on_failure``/``max_retries``: retry up to ``max_retries`` times after the first
      call, only for exceptions that are instances of ``retry_exceptions``.
    - ``retry_if(exc) -> bool``: retry only the exceptions it accepts (with
      ``retry_exceptions``); ``retry_if_result(result) -> bool``: retry a call whose result it
      rejects (the last result is returned when the retries run out, counted in ``failures``
      as ``exc_type=rejected_result``); ``deadline``: seconds from the first call after which
      no retry is started (a retry whose delay would end past it is not started either).
    - ``retry_delay``/``retry_backoff``/``max_delay``/``jitter``: retry ``n`` waits a random
      time in ``[0, min(max_delay, retry_delay * retry_backoff ** (n - 1)))`` seconds (or
      exactly that cap with ``jitter=False``).
    - ``fallback_value``/``reraise``: by default the last exception is re-raised as it is;
      with ``reraise=False`` (implied by passing ``fallback_value``) the call returns
      ``fallback_value`` (``None`` if not given) and a block's exception is suppressed.
    - ``severity``: the :class:`ErrorSeverity` of failures; by default each exception is
      classified by :func:`classify_exception`.
    - ``ok_exceptions``/``classify``: exceptions that end a call without being a failure
      (``ok_exceptions=(click.exceptions.Exit,)``), or ``classify(exc)`` returning ``"ok"``,
      ``"user_error"``, ``"error"`` or ``None`` (the default). An exit with code 0
      (``SystemExit(0)``, ``click.exceptions.Exit(0)``) is never a failure; a
      ``click.ClickException`` is a user error. An ``ok`` exception is recorded as a success
      and re-raised unchanged, never retried nor replaced by the fallback. A user error is
      not retried, is counted in ``<op>.user_errors`` (not ``failures``), with duration
      ``status=user_error`` and an ``operation.failed`` event with ``user_error: true``.

    Only :class:`Exception` subclasses are handled; ``KeyboardInterrupt``, ``SystemExit`` and
    task cancellation pass straight through (their duration is recorded as ``cancelled``).
    Invalid settings raise at once (:class:`~sounding.exceptions.InvalidValueError`,
    :class:`~sounding.exceptions.InvalidTypeError`, :class:`~sounding.exceptions.InvalidNameError`).

    >>> import sounding
    >>> calls = []
    >>> @operation_boundary("doc.flaky", retry_on_failure=True, max_retries=2, retry_delay=0)
    ... def flaky():
    ...     calls.append(1)
    ...     if len(calls) < 3:
    ...         raise ConnectionError("try again")
    ...     return "ok"
    >>> flaky(), len(calls)
    ('ok', 3)
    """
    # The call written per block, ``with operation_boundary("op"):``, is one dict lookup:
    # the keyword arguments arrive as ``options`` (empty when none is given), so no default
    # has to be compared. The typed signature is in the overloads above.
    if not options:
        try:
            return _PLAIN_BOUNDARIES[operation_name]
        except (KeyError, TypeError):  # not made yet (or unhashable): checked below
            pass
    check_options(options, _OPTION_DEFAULTS, "operation_boundary")
    kwargs: dict[str, Any] = {**_OPTION_DEFAULTS, **options}
    if callable(operation_name) and not isinstance(operation_name, str):
        # Bare ``@operation_boundary``.
        return OperationBoundary(None, **kwargs)(operation_name)
    boundary = _boundary_for(operation_name, kwargs)
    if not options and type(operation_name) is str and len(_PLAIN_BOUNDARIES) < _MAX_BOUNDARIES:
        _PLAIN_BOUNDARIES[operation_name] = boundary
    return boundary


#: Every keyword argument of :func:`operation_boundary` and its default, in the order of the
#: overload's signature (the cache below compares argument values in this order).
_OPTION_DEFAULTS: Final[dict[str, Any]] = {
    "retry_on_failure": False,
    "max_retries": 3,
    "retry_delay": 1.0,
    "retry_backoff": 2.0,
    "max_delay": 30.0,
    "jitter": True,
    "retry_exceptions": (Exception,),
    "fallback_value": UNSET,
    "reraise": UNSET,
    "severity": None,
    "retry_if": None,
    "retry_if_result": None,
    "deadline": None,
    "ok_exceptions": (),
    "classify": None,
}
#: ``operation_boundary(name)`` with no keyword argument: name -> its boundary.
_PLAIN_BOUNDARIES: dict[str, OperationBoundary] = {}

#: Operation name -> (the arguments it was created with, the boundary), so that
#: ``with operation_boundary("op"):`` written per call skips the checks and the instrument
#: lookups (a boundary holds no per-call state outside its context variable). A hit needs
#: every argument to be the very same object as last time (the defaults are), which also
#: keeps ``True`` from standing in for ``1``; the cached arguments stay alive, so their ids
#: cannot be reused.
_BOUNDARIES: dict[str, tuple[tuple[Any, ...], OperationBoundary]] = {}
_MAX_BOUNDARIES: Final = 1024


def _boundary_for(operation_name: Any, kwargs: dict[str, Any]) -> OperationBoundary:
    if type(operation_name) is not str:
        return OperationBoundary(operation_name, **kwargs)
    values = tuple(kwargs.values())
    cached = _BOUNDARIES.get(operation_name)
    if cached is not None and len(cached[0]) == len(values) and all(map(is_, values, cached[0])):
        return cached[1]
    boundary = OperationBoundary(operation_name, **kwargs)
    if cached is not None or len(_BOUNDARIES) < _MAX_BOUNDARIES:
        _BOUNDARIES[operation_name] = (values, boundary)
    return boundary
