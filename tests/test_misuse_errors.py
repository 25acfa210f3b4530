"""Misuse raises sounding's own ValueError/TypeError subclasses naming the argument."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import sounding
from sounding import MetricSnapshot, MetricType
from sounding.analysis import detect_deviations, rules_from_config
from sounding.core.exceptions import SoundingError, describe


@pytest.fixture
def store(data_dir: Path) -> Any:
    sounding.counter("misuse.c").inc()
    assert sounding.flush()
    st = sounding.open_store(data_dir)
    yield st
    st.close()


CASES: list[tuple[str, str, Callable[[Any], object]]] = [
    ("query start 10**400", "start", lambda st: st.query("misuse.c", start=10**400)),
    ("sessions limit 2**63", "limit", lambda st: st.sessions(limit=2**63)),
    ("events limit 2**63", "limit", lambda st: st.events(limit=2**63)),
    (
        "MetricSnapshot timestamp 1e20",
        "timestamp",
        lambda st: MetricSnapshot(MetricType.GAUGE, "a.b", 1.0, 1e20),  # type: ignore[arg-type]
    ),
    ("detect_deviations 10**400", "values[0]", lambda st: detect_deviations([10**400] * 30)),
    (
        "track_execution_time threshold 10**400",
        "threshold_ms",
        lambda st: sounding.track_execution_time(threshold_ms=10**400),
    ),
    ("rules_from_config('x')", "metrics", lambda st: rules_from_config("x")),  # type: ignore[arg-type]
    ("record value 10**400", "snapshot.value", lambda st: sounding.record(
        MetricSnapshot(MetricType.GAUGE, "a.b", 10**400, 0.0)  # type: ignore[arg-type]
    )),
]


@pytest.mark.parametrize(("label", "field", "call"), CASES, ids=[c[0] for c in CASES])
def test_misuse_raises_soundings_own_error_naming_the_argument(
    store: Any, label: str, field: str, call: Callable[[Any], object]
) -> None:
    """Out-of-range and wrong-type arguments raise a SoundingError (ValueError/TypeError)."""
    with pytest.raises((ValueError, TypeError)) as info:
        call(store)
    assert isinstance(info.value, SoundingError), type(info.value)
    assert getattr(info.value, "field", None) == field


class _Raising:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_error_messages_describe_values_cheaply_and_safely() -> None:
    """An error about a raising-repr or 5-million-item value is built without calling it whole."""
    assert describe(_Raising()).startswith("<_Raising")
    shown = describe(list(range(5_000_000)))
    assert shown.startswith("[0, 1, 2")
    assert len(shown) <= 80
    assert len(describe(10**4000)) <= 80


BAD_ARGS: list[Any] = [5, None, b"x", 10**400, float("nan"), "", "x" * 5000, "\ud800", object()]
DEFINITIONS: dict[str, Callable[[Any], object]] = {
    "counter": sounding.counter,
    "gauge": sounding.gauge,
    "histogram": sounding.histogram,
    "get_logger": sounding.get_logger,
    "track_execution_time": lambda v: sounding.track_execution_time(v),
    "PerformanceTimer": sounding.PerformanceTimer,
    "operation_boundary": lambda v: sounding.operation_boundary(v),
    "SentryContext": sounding.SentryContext,
    "hash_identifier": sounding.hash_identifier,
    "counter unit": lambda v: sounding.counter("u.x", unit=v),
    "counter description": lambda v: sounding.counter("u.y", description=v),
    "configure app_name": lambda v: sounding.configure(app_name=v),
    "configure shutdown_timeout": lambda v: sounding.configure(shutdown_timeout=v),
    "configure data_dir": lambda v: sounding.configure(data_dir=v),
    "bind": lambda v: sounding.counter("b.c").bind(k=v),
    "open_store": sounding.open_store,
}


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_definition_time_misuse_raises_only_soundings_errors(name: str) -> None:
    """Odd arguments to definition-time APIs are accepted or raise a SoundingError, no other."""
    for value in BAD_ARGS:
        try:
            DEFINITIONS[name](value)
        except SoundingError:
            pass
        finally:
            sounding.reset()
