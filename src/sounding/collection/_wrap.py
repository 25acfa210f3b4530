"""The one home of the sync/async function wrapper (timers, boundaries, ``Histogram.time``).

Every decorator in sounding that does work around a call goes through here, so the three of
them agree on what they accept and on how an async function is timed:

- :func:`is_async` says whether calling ``fn`` gives an awaitable to time: a coroutine
  function, an object with an ``async def __call__``, or a ``functools.partial`` of either;
- :func:`reject_generator` refuses generator functions (their time is spent while they are
  iterated, not when they are called);
- :func:`timed` times each call to completion and hands the duration to a hook;
- :func:`guarded` does the same for a boundary, whose failure hook may retry the call or
  return a fallback value.

A coroutine function is timed to its completion: the ``await`` is inside the timed region
(prometheus_client issue 535 timed only the creation of the coroutine). The clock is looked up
per call (``set_clock()`` applies to functions decorated before it), and a duration is never
negative even when an injected clock goes backwards. Hooks must not raise: the callers catch
and count their own failures. These wrappers are the hot path the overhead budgets in
``bench/`` are measured on: no lookups beyond the clock, one hook call per call.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from sounding.core import clock as _clock
from sounding.core._typing import cast
from sounding.core.exceptions import InvalidTypeError

__all__ = ["guarded", "is_async", "reject_generator", "timed"]

#: The monotonic clock in use, followed through set_clock(); each call reads it once and
#: uses that clock for its start and end.
_mono: Callable[[], float] = _clock.get_clock().monotonic


def _follow_clock() -> None:
    global _mono
    _mono = _clock.get_clock().monotonic


_clock.on_clock_change(_follow_clock)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ParamSpec, TypeVar

    P = ParamSpec("P")
    R = TypeVar("R")

    #: ``recover(fn, args, kwargs, exc, start)``: retry, return a fallback value, or raise.
    Recover = Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any], Exception, float], Any]
    #: The async form of :data:`Recover` (it may sleep between attempts).
    AsyncRecover = Callable[
        [Callable[..., Awaitable[Any]], tuple[Any, ...], dict[str, Any], Exception, float],
        Awaitable[Any],
    ]


def is_async(fn: object) -> bool:
    """Whether calling ``fn`` returns a coroutine that has to be awaited to be timed."""
    import inspect  # at decoration time: a process that only counts does not pay for it

    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    if inspect.isfunction(fn) or inspect.ismethod(fn):
        return False
    # An object whose __call__ is a coroutine function (async callable objects).
    return inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004


def reject_generator(fn: object, advice: str) -> None:
    """Raise :class:`~sounding.exceptions.InvalidTypeError` unless ``fn`` is a plain callable.

    ``advice`` completes "a function or coroutine function, ..." with what to do instead.
    """
    if not callable(fn):
        raise InvalidTypeError("function", fn, "a function or coroutine function")
    import inspect

    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise InvalidTypeError("function", fn, f"a function or coroutine function, {advice}")


def timed(
    fn: Callable[P, R],
    ok: Callable[[float], object],
    failed: Callable[[float, BaseException], object],
) -> Callable[P, R]:
    """``fn`` (sync or async) with each call timed: ``ok(seconds)`` after a return,
    ``failed(seconds, exc)`` before an exception (any ``BaseException``) propagates."""
    if is_async(fn):
        afn = cast("Callable[P, Awaitable[Any]]", fn)

        @functools.wraps(fn)
        async def atimed(*args: P.args, **kwargs: P.kwargs) -> Any:
            mono = _mono
            start = mono()
            try:
                # The await is inside the timed region (prometheus_client issue 535).
                result = await afn(*args, **kwargs)
            except BaseException as exc:
                elapsed = mono() - start
                failed(elapsed if elapsed > 0.0 else 0.0, exc)
                raise
            elapsed = mono() - start
            ok(elapsed if elapsed > 0.0 else 0.0)
            return result

        return cast("Callable[P, R]", atimed)

    @functools.wraps(fn)
    def timed_call(*args: P.args, **kwargs: P.kwargs) -> R:
        mono = _mono
        start = mono()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            elapsed = mono() - start
            failed(elapsed if elapsed > 0.0 else 0.0, exc)
            raise
        elapsed = mono() - start
        ok(elapsed if elapsed > 0.0 else 0.0)
        return result

    return timed_call


def guarded(
    fn: Callable[..., Any],
    ok: Callable[[float], object],
    recover: Recover,
    arecover: AsyncRecover,
    cancelled: Callable[[float, BaseException], object],
) -> Callable[..., Any]:
    """``fn`` (sync or async) under a boundary: ``ok(seconds)`` after a return; on an
    ``Exception`` the wrapper returns ``recover(fn, args, kwargs, exc, start)`` (awaited for a
    coroutine function: it may retry, return a fallback or raise); on any other
    ``BaseException`` (cancellation, exit) ``cancelled(start, exc)`` and it propagates."""
    if is_async(fn):
        afn = cast("Callable[..., Awaitable[Any]]", fn)

        @functools.wraps(fn)
        async def abounded(*args: Any, **kwargs: Any) -> Any:
            mono = _mono
            start = mono()
            try:
                # Time the await, not the creation of the coroutine (prometheus_client #535).
                result = await afn(*args, **kwargs)
            except Exception as e:
                exc: Exception = e
            except BaseException as e:
                cancelled(start, e)
                raise
            else:
                elapsed = mono() - start
                ok(elapsed if elapsed > 0.0 else 0.0)
                return result
            # Outside the except block: a retried failure does not chain onto this one.
            return await arecover(afn, args, kwargs, exc, start)

        return abounded

    @functools.wraps(fn)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        mono = _mono
        start = mono()
        try:
            result = fn(*args, **kwargs)
        except Exception as e:
            exc: Exception = e
        except BaseException as e:
            cancelled(start, e)
            raise
        else:
            elapsed = mono() - start
            ok(elapsed if elapsed > 0.0 else 0.0)
            return result
        return recover(fn, args, kwargs, exc, start)

    return bounded
