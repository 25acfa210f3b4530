"""Exceptions raised by sounding.

Misuse at definition time (a bad metric name, an invalid configuration value, a wrong
argument type) raises immediately. At run time telemetry never raises into the host
application, except in strict test mode (:func:`sounding.testing.strict`).

The tree is shallow::

    SoundingError                      base of everything sounding raises itself
    ├── ConfigurationError(ValueError) an invalid setting (field, value, what is allowed)
    ├── InvalidNameError(ValueError)   a metric, tag or event name that is not allowed
    ├── InvalidValueError(ValueError)  an argument value that is not allowed
    ├── InvalidTypeError(TypeError)    an argument of the wrong type
    ├── MetricTypeConflictError(ValueError)  the same name registered as another type
    ├── StoreError                     the store cannot be opened or read (CLI, queries)
    ├── UnsafePathError(PermissionError)  a planted symlink, a foreign or world-writable dir
    └── InternalError                  a run-time failure, raised only in strict mode
"""

from __future__ import annotations

import reprlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "ConfigurationError",
    "InternalError",
    "InvalidNameError",
    "InvalidTypeError",
    "InvalidValueError",
    "MetricTypeConflictError",
    "SoundingError",
    "StoreError",
    "UnsafePathError",
    "describe",
]


_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 80
_repr.maxlong = 40


def describe(value: Any, limit: int = 80) -> str:
    """A short, safe description of ``value`` for messages.

    Never raises and never costs more than a small repr: containers show their first few
    items (:mod:`reprlib`), and a ``__repr__`` that raises or returns a non-str is not
    trusted. Error messages use it, so rejecting a 5-million-item list stays cheap.

    >>> describe(list(range(10**6)))
    '[0, 1, 2, 3, 4, 5, ...]'
    """
    try:
        shown = _repr.repr(value)
        if type(shown) is not str:
            return f"<{type(value).__name__}>"
    except Exception:
        return f"<{type(value).__name__} with a failing repr>"
    if len(shown) > limit:
        shown = shown[: limit - 3] + "..."
    return shown


class SoundingError(Exception):
    """Base class of every exception sounding raises itself."""


class _Described(SoundingError):
    """An error that names what was wrong (``field``, ``value``) and what is ``allowed``."""

    def __init__(self, field: str, value: Any, allowed: str, *, detail: str = "") -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        shown = describe(value)
        message = f"{field}={shown} is not allowed: {allowed}"
        if detail:
            message += f" ({detail})"
        super().__init__(message)


class ConfigurationError(_Described, ValueError):
    """An invalid configuration value; names the field, the value and what is allowed."""


class InvalidNameError(_Described, ValueError):
    """A metric, tag or event name that does not follow the naming rules."""


class InvalidValueError(_Described, ValueError):
    """An argument value that is not allowed."""


class InvalidTypeError(_Described, TypeError):
    """An argument of the wrong type."""


class MetricTypeConflictError(_Described, ValueError):
    """A metric name already registered with another type or unit."""


class StoreError(SoundingError):
    """The store cannot be opened, migrated or read."""


class UnsafePathError(SoundingError, PermissionError):
    """A file or directory sounding refuses to use: a symlink where a private file belongs,
    something other than a regular file, or a directory another user can write to."""


class InternalError(SoundingError):
    """A run-time telemetry failure. Raised only in strict (test) mode; counted otherwise."""

    def __init__(self, kind: str, cause: BaseException | None = None) -> None:
        self.kind = kind
        self.cause = cause
        super().__init__(f"internal telemetry failure '{kind}': {cause!r}")
