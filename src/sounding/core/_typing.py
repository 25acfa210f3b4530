"""The few `typing` names sounding needs at run time, without importing `typing`.

A short process that only counts would otherwise import `typing` (about 1.5 ms) for a
handful of class bases and decorators. Type checkers see the real names (the
``TYPE_CHECKING`` branch); at run time these stand-ins do what sounding relies on:

- ``Protocol`` / ``runtime_checkable``: ``isinstance(x, P)`` on a runtime-checkable
  protocol is true when ``x`` has every member the protocol declares (methods and annotated
  attributes, as `typing` checks them); a class that names the protocol as a base inherits
  its methods and is checked by ordinary inheritance; an ``isinstance`` check on a protocol
  that is not runtime-checkable raises ``TypeError``, as with `typing`.
- ``Generic``: ``Base[T]`` in a class header (and anywhere else) gives ``Base`` back.
- ``TypeVar`` / ``ParamSpec``: a name, for headers such as ``Generic[T]``.
- ``cast``: returns its value; ``overload``: returns the function (the last, undecorated
  definition replaces it, as with `typing`).

Annotations are strings (``from __future__ import annotations``) and never need these.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Generic as Generic
    from typing import ParamSpec as ParamSpec
    from typing import Protocol as Protocol
    from typing import TypeVar as TypeVar
    from typing import cast as cast
    from typing import overload as overload
    from typing import runtime_checkable as runtime_checkable
else:
    from abc import ABCMeta

    # What `typing` leaves out of a protocol's members.
    _NOT_MEMBERS = frozenset(
        {
            "__abstractmethods__",
            "__annotations__",
            "__dict__",
            "__doc__",
            "__init__",
            "__module__",
            "__new__",
            "__slots__",
            "__subclasshook__",
            "__weakref__",
            "__class_getitem__",
            "__qualname__",
            "__init_subclass__",
            "_is_protocol",
            "_is_runtime_protocol",
            "_members",
        }
    )

    class _ProtocolMeta(ABCMeta):
        def __instancecheck__(cls, instance: object) -> bool:
            if not cls.__dict__.get("_is_protocol", False):
                return super().__instancecheck__(instance)
            if not cls.__dict__.get("_is_runtime_protocol", False):
                raise TypeError(
                    "Instance and class checks can only be used with @runtime_checkable protocols"
                )
            if super().__instancecheck__(instance):
                return True
            for name in cls._members:
                if not hasattr(instance, name):
                    return False
                if callable(getattr(cls, name, None)) and getattr(instance, name) is None:
                    return False  # a method set to None opts out, as with `typing`
            return True

    class Protocol(metaclass=_ProtocolMeta):
        """Run-time stand-in for :class:`typing.Protocol` (see the module docstring)."""

        __slots__ = ()
        _is_protocol = True

        def __init_subclass__(cls, **kwargs: object) -> None:
            super().__init_subclass__(**kwargs)
            cls._is_protocol = Protocol in cls.__bases__
            members: set[str] = set()
            for base in cls.__mro__[:-1]:
                if base is Protocol or not base.__dict__.get("_is_protocol", False):
                    continue
                names = [*base.__dict__, *base.__dict__.get("__annotations__", {})]  # noqa: RUF063
                members.update(
                    n for n in names if n not in _NOT_MEMBERS and not n.startswith("_abc_")
                )
            cls._members = frozenset(members)

    def runtime_checkable(cls: type) -> type:
        """Mark a protocol for ``isinstance`` checks."""
        if not cls.__dict__.get("_is_protocol", False):
            raise TypeError(
                f"@runtime_checkable can be only applied to protocol classes, got {cls!r}"
            )
        cls._is_runtime_protocol = True
        return cls

    class Generic:
        """Run-time stand-in for :class:`typing.Generic`: ``Base[T]`` is ``Base``."""

        __slots__ = ()

        def __class_getitem__(cls, params: object) -> type:
            return cls

    def TypeVar(name: str, *constraints: object, **options: object) -> str:
        """Run-time stand-in for :class:`typing.TypeVar`: the name."""
        return name

    def ParamSpec(name: str, **options: object) -> str:
        """Run-time stand-in for :class:`typing.ParamSpec`: the name."""
        return name

    def cast(typ: object, val: object) -> object:
        """Run-time stand-in for :func:`typing.cast`: the value."""
        return val

    def overload(func: object) -> object:
        """Run-time stand-in for :func:`typing.overload`: the function."""
        return func


__all__ = [
    "Generic",
    "ParamSpec",
    "Protocol",
    "TypeVar",
    "cast",
    "overload",
    "runtime_checkable",
]
