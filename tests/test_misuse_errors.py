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
