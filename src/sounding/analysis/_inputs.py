"""Turn what users pass to the detectors into plain floats (pure Python, numpy optional).

Values: lists, tuples, numpy arrays or pandas Series of numbers, with ``None``, NaN or
``pd.NA`` for gaps (returned as NaN). Timestamps: epoch seconds (int/float), ``datetime``
(naive ones are taken as UTC, aware ones converted), pandas ``Timestamp``, numpy
``datetime64`` (scalars or arrays); returned as float epoch seconds, non-decreasing. A pandas
Series with a ``DatetimeIndex`` supplies its index as timestamps when none are given.

Misuse raises :class:`~sounding.core.exceptions.InvalidTypeError` or
:class:`~sounding.core.exceptions.InvalidValueError` naming the argument: a 2-D array,
strings, a non-sequence, unsorted timestamps or a length that does not match the values.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timezone
from typing import Any

from sounding.core.exceptions import InvalidTypeError, InvalidValueError

__all__ = ["as_timestamps", "as_values"]

_NAN = math.nan


def _shape_check(name: str, obj: object) -> None:
    if isinstance(obj, (str, bytes, bytearray, dict)):
        raise InvalidTypeError(name, obj, "a 1-D sequence (list, tuple, numpy array, Series)")
    ndim = getattr(obj, "ndim", 1)
    if isinstance(ndim, int) and ndim != 1:
        raise InvalidValueError(
            name, f"<{ndim}-D array>", "a 1-D sequence (pass one column at a time)"
        )
    if not hasattr(obj, "__len__") or not hasattr(obj, "__iter__"):
        raise InvalidTypeError(name, obj, "a 1-D sequence (list, tuple, numpy array, Series)")


def _is_na(v: object) -> bool:
    """``pd.NA``, ``pd.NaT`` and numpy ``NaT`` without importing pandas or numpy."""
    name = type(v).__name__
    return name in ("NAType", "NaTType") or (name in ("datetime64", "timedelta64") and v != v)


def as_values(values: Any, name: str = "values") -> list[float]:
    """``values`` as a list of floats, gaps (``None``, NaN, ``pd.NA``) as NaN."""
    if values is None:
        raise InvalidTypeError(name, values, "a 1-D sequence of numbers")
    _shape_check(name, values)
    raw: Any = values
    dtype = getattr(values, "dtype", None)
    kind = getattr(dtype, "kind", None)
    if kind in ("U", "S"):
        raise InvalidTypeError(name, values, "numbers (got an array of strings)")
    if kind in ("f", "i", "u", "b") and hasattr(values, "tolist"):
        raw = values.tolist()  # numpy arrays and plain Series: C-speed conversion
    out: list[float] = []
    append = out.append
    try:
        _convert(raw, append, name)
    except OverflowError:
        i = len(out)
        raise InvalidValueError(
            f"{name}[{i}]", list(raw)[i], "numbers within float range, NaN or None"
        ) from None
    return out


def _convert(raw: Any, append: Any, name: str) -> None:
    """Append each of ``raw`` as a float (gaps as NaN); ``OverflowError`` propagates."""
    for v in raw:
        t = type(v)
        if t is float or t is int:
            append(float(v))
        elif v is None:
            append(_NAN)
        elif isinstance(v, (str, bytes, list, tuple, dict)):
            raise InvalidTypeError(name, v, "numbers, None or NaN (one value per point)")
        elif _is_na(v):
            append(_NAN)
        else:
            try:
                f = float(v)
            except (TypeError, ValueError):
                raise InvalidTypeError(
                    name, v, "numbers, None or NaN (one value per point)"
                ) from None
            append(f)


def _epoch(v: Any, name: str) -> float:
    t = type(v)
    if t is float or t is int:
        try:
            return float(v)
        except OverflowError:
            raise InvalidValueError(name, v, "epoch seconds within float range") from None
    if isinstance(v, datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=timezone.utc)
        return float(v.timestamp())
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day, tzinfo=timezone.utc).timestamp()
    if type(v).__name__ == "datetime64":
        if v != v:  # NaT
            raise InvalidValueError(name, v, "a timestamp for every value (got NaT)")
        return float(v.astype("datetime64[ns]").astype("int64")) / 1e9
    if isinstance(v, (str, bytes, bool)) or v is None:
        raise InvalidTypeError(
            name, v, "epoch seconds, datetime, pandas Timestamp or numpy datetime64"
        )
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise InvalidTypeError(
            name, v, "epoch seconds, datetime, pandas Timestamp or numpy datetime64"
        ) from None
    return f


def as_timestamps(timestamps: Any, n: int, name: str = "timestamps") -> list[float]:
    """``timestamps`` as non-decreasing float epoch seconds, one per value (``n``)."""
    _shape_check(name, timestamps)
    size = len(timestamps)
    if size != n:
        raise InvalidValueError(name, f"<{size} items>", f"one timestamp per value ({n})")
    dtype = getattr(timestamps, "dtype", None)
    kind = getattr(dtype, "kind", None)
    out: list[float]
    if kind == "M" and hasattr(timestamps, "astype"):
        ns = timestamps.astype("datetime64[ns]")
        if bool((ns != ns).any()):
            raise InvalidValueError(name, "<NaT>", "a timestamp for every value (got NaT)")
        out = [v / 1e9 for v in ns.astype("int64").tolist()]
    elif hasattr(timestamps, "asi8"):  # pandas DatetimeIndex (naive = UTC, aware = UTC ns)
        out = [v / 1e9 for v in timestamps.asi8.tolist()]
    else:
        if kind in ("f", "i", "u") and hasattr(timestamps, "tolist"):
            timestamps = timestamps.tolist()
        out = [_epoch(v, name) for v in timestamps]
    prev = -math.inf
    for i, t in enumerate(out):
        if not math.isfinite(t):
            raise InvalidValueError(name, t, "finite epoch seconds for every value")
        if t < prev:
            raise InvalidValueError(
                name, f"<{out[i - 1]!r} then {t!r} at index {i}>", "sorted in increasing order"
            )
        prev = t
    return out


def prepare(values: object, timestamps: object | None) -> tuple[list[float], list[float] | None]:
    """Both inputs converted; a Series with a ``DatetimeIndex`` gives its own timestamps."""
    xs = as_values(values)
    if timestamps is None:
        index = getattr(values, "index", None)
        if index is not None and type(index).__name__ == "DatetimeIndex":
            timestamps = index
    ts = None if timestamps is None else as_timestamps(timestamps, len(xs))
    return xs, ts
