"""Clocks. Wall time for timestamps, a monotonic clock for durations; both injectable."""

from __future__ import annotations

import time as _time
from collections.abc import Callable

from sounding.core._typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "clock_changed", "get_clock", "on_clock_change", "set_clock"]

_listeners: list[Callable[[], None]] = []


@runtime_checkable
class Clock(Protocol):
    """Where sounding reads time. Tests inject :class:`sounding.testing.ManualClock`."""

    def time(self) -> float:
        """Wall-clock seconds since the epoch (UTC)."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never goes backwards."""


class SystemClock:
    """The real clocks: :func:`time.time` and :func:`time.perf_counter`."""

    time = staticmethod(_time.time)
    monotonic = staticmethod(_time.perf_counter)


_clock: Clock = SystemClock()


def get_clock() -> Clock:
    """The clock in use."""
    return _clock


def set_clock(clock: Clock | None) -> Clock:
    """Install ``clock`` (``None`` restores the system clock); returns the previous one."""
    global _clock
    previous = _clock
    _clock = clock if clock is not None else SystemClock()
    clock_changed()
    return previous


def on_clock_change(listener: Callable[[], None]) -> None:
    """Call ``listener()`` when a clock is installed or a manual clock is moved (the metric
    registry rolls its interval over then)."""
    if listener not in _listeners:
        _listeners.append(listener)


def clock_changed() -> None:
    """Tell the listeners that time jumped (:class:`sounding.testing.ManualClock` calls this
    from ``advance`` and ``set``). Listeners must not raise."""
    for listener in list(_listeners):
        listener()
