"""Operation names: the one place that checks them and derives them from a function (and
the keyword options the timers and boundaries named after them take).

An operation name is the stem of metric names (``<operation>.duration``, ``.failures``...),
so it is a metric name with room left for the longest suffix that its instrument adds.

>>> def handler(): pass
>>> operation_name_for(handler)
'sounding.collection.naming.handler'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final

from sounding.collection import metrics as _metrics
from sounding.core.exceptions import InvalidNameError, InvalidTypeError

__all__ = ["check_operation_name", "check_options", "operation_name_for"]

_PART_BAD: Final = re.compile(r"[^A-Za-z0-9_]+")


def operation_name_for(fn: Callable[..., Any], suffix: str = ".duration") -> str:
    """The default operation name of ``fn``: ``module.qualname`` made a valid metric name.

    ``__main__`` becomes ``main`` and ``<locals>`` ``locals``; a name too long to leave room
    for ``suffix`` keeps its end (the function is more telling than the package).
    """
    module = getattr(fn, "__module__", None) or ""
    qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if not isinstance(qualname, str):
        qualname = type(fn).__name__
    parts = []
    for raw in f"{module}.{qualname}".split("."):
        part = _PART_BAD.sub("_", raw).strip("_")
        if part:
            parts.append(part)
    if not parts:
        parts = ["operation"]
    if not parts[0][0].isalpha():
        parts[0] = "op_" + parts[0]
    name = ".".join(parts)
    limit = _metrics.MAX_NAME_LENGTH - len(suffix)
    if len(name) > limit:
        name = name[-limit:].lstrip("._") or "operation"
        if not name[0].isalpha():
            name = ("op_" + name)[-limit:]
            if not name[0].isalpha():
                name = "op" + name[3:]
    return name


def check_operation_name(name: object, suffix: str = ".duration") -> str:
    """``name`` if it is a valid operation name with room for ``suffix``; raises otherwise."""
    if not isinstance(name, str):
        raise InvalidTypeError("operation_name", name, "a str such as 'recorder.export'")
    limit = _metrics.MAX_NAME_LENGTH - len(suffix)
    if len(name) > limit:
        raise InvalidNameError("operation_name", name, f"at most {limit} characters")
    return _metrics.validate_name(name, "operation_name")


def check_options(options: Mapping[str, object], allowed: Collection[str], where: str) -> None:
    """Raise :class:`InvalidTypeError` naming the first of ``options`` that ``where`` (a
    callable's name) does not take, and the ones it does (``allowed``, in order)."""
    for key in options:
        if key not in allowed:
            raise InvalidTypeError(
                key, options[key], f"one of the keyword arguments of {where}: " + ", ".join(allowed)
            )
