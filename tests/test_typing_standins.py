"""The run-time stand-ins of sounding.core._typing behave as the `typing` names they replace
for what sounding and its users do with them."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from sounding.collection.sink import Sink
from sounding.core import _typing
from sounding.core.clock import Clock, SystemClock
from sounding.core.types import Event, IntervalAggregate
from sounding.outputs import JsonlOutput, Output


class _Duck:
    def write(self, metrics: Sequence[IntervalAggregate], events: Sequence[Event]) -> None:
        pass

    def close(self) -> None:
        pass


def test_runtime_protocol_accepts_any_object_with_its_methods() -> None:
    """isinstance(x, Sink) is true for an unrelated class that has write and close."""
    assert isinstance(_Duck(), Sink)
    assert isinstance(SystemClock(), Clock)


def test_runtime_protocol_rejects_an_object_missing_a_member() -> None:
    """An object without one of the protocol's methods, or with it set to None, is not one."""

    class OnlyWrite:
        def write(self, metrics: object, events: object) -> None:
            pass

    class CloseIsNone(_Duck):
        close = None  # type: ignore[assignment]

    assert not isinstance(OnlyWrite(), Sink)
    assert not isinstance(CloseIsNone(), Sink)
    assert not isinstance(object(), Clock)


def test_annotated_attributes_are_protocol_members() -> None:
    """Output's annotated ``name`` counts: an object with write/close but no name is not one."""

    class Named(_Duck):
        name = "n"

        def write(self, metrics: object, events: object, deadline: object = None) -> bool:
            return True

    assert isinstance(Named(), Output)
    assert not isinstance(_Duck(), Output)
    assert isinstance(JsonlOutput(), Output)


def test_explicit_subclass_inherits_and_is_checked_by_inheritance() -> None:
    """A class naming the protocol as a base inherits its methods; isinstance of that class
    is ordinary inheritance, not structural."""

    class MySink(Sink):
        def write(self, metrics: Sequence[IntervalAggregate], events: Sequence[Event]) -> None:
            pass

    sink = MySink()
    assert isinstance(sink, Sink)
    assert sink.close() is None  # inherited from the protocol
    assert not isinstance(_Duck(), MySink)


def test_protocol_not_runtime_checkable_refuses_isinstance() -> None:
    """isinstance against a protocol without @runtime_checkable raises TypeError, as typing's."""

    class Plain(_typing.Protocol):
        def run(self) -> None: ...

    with pytest.raises(TypeError, match="runtime_checkable"):
        isinstance(object(), Plain)
    with pytest.raises(TypeError, match="protocol"):
        _typing.runtime_checkable(_Duck)


def test_generic_subscript_gives_the_class_and_helpers_pass_values_through() -> None:
    """Base[T] in a class header is Base; cast returns its value; overload its function."""
    t = _typing.TypeVar("T")

    class Box(_typing.Generic[t]):  # type: ignore[valid-type,misc]
        pass

    class IntBox(Box[int]):
        pass

    assert Box[int] is Box
    assert IntBox.__mro__[1] is Box
    value = object()
    assert _typing.cast(int, value) is value

    def f() -> int:
        return 1

    assert _typing.overload(f) is f
