"""Hostile values through every run-time call: nothing escapes, and the data around it lands.

Each example calls one public run-time API with one hostile value (huge ints, NaN, inf,
Decimal, numpy arrays, complex, bytes, lone surrogates, objects whose ``__repr__``,
``__str__``, ``__eq__``, ``__hash__``, comparisons or ``__float__`` raise, deep and
self-referential containers), increments a sentinel counter beside it and flushes to the real
SQLite store. The property: the call does not raise, the flush succeeds, and every sentinel
increment is in the store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sounding
from sounding import _runtime
from sounding.collection.context import bind_context, clear_context


class Raising:
    """Every dunder sounding might call raises."""

    def __repr__(self) -> str:
        raise RuntimeError("repr")

    def __str__(self) -> str:
        raise RuntimeError("str")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq")

    def __hash__(self) -> int:
        raise RuntimeError("hash")

    def __lt__(self, other: object) -> bool:
        raise RuntimeError("lt")

    __le__ = __gt__ = __ge__ = __lt__

    def __float__(self) -> float:
        raise RuntimeError("float")


class BadRepr:
    """``__repr__`` and ``__str__`` return something that is not a str."""

    def __repr__(self) -> Any:
        return 5

    __str__ = __repr__


class Comparable:
    """Compares like a number, adds like nothing (an odd ``__radd__``)."""

    def __le__(self, other: object) -> bool:
        return True

    __ge__ = __lt__ = __gt__ = __le__

    def __radd__(self, other: object) -> str:
        return "junk"


def _deep(n: int) -> list[Any]:
    out: list[Any] = []
    for _ in range(n):
        out = [out]
    return out


def _loop_list() -> list[Any]:
    a: list[Any] = []
    a.append(a)
    return a


def _loop_dict() -> dict[str, Any]:
    d: dict[str, Any] = {}
    d["self"] = d
    return d


def _numpy_values() -> list[Any]:
    try:
        import numpy as np
    except ImportError:
        return []
    return [np.array([1, 2]), np.array(3.0), np.float64("nan"), np.int64(7), np.float32(1e38)]


HOSTILE = st.one_of(
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([10**400, -(10**400), 2**63, 1e308, -1e308, 5e-324, -0.0]),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from([Decimal("sNaN"), Decimal("1e400"), Fraction(1, 3), 1j, True]),
    st.complex_numbers(),
    st.binary(max_size=20),
    st.text(max_size=20),
    st.sampled_from(["\ud800", "x\udfff", "a@example.com", "10.0.0.7", "\x00", "\r\n=1+1"]),
    st.builds(Raising),
    st.builds(BadRepr),
    st.builds(Comparable),
    st.builds(object),
    st.sampled_from([_deep(600), _loop_list(), _loop_dict(), list(range(100_000)), None]),
    st.sampled_from(_numpy_values() or [None]),
    st.lists(st.integers(), max_size=5),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
)


def _calls() -> dict[str, Callable[[Any], object]]:
    c = sounding.counter("fuzz.counter")
    g = sounding.gauge("fuzz.gauge")
    h = sounding.histogram("fuzz.histogram", unit="ms")
    s = sounding.summary("fuzz.summary")
    log = sounding.get_logger("fuzz")
    sentry = sounding.SentryContext("fuzz.operation")

    def timed(v: Any) -> None:
        with h.time(tags={"k": v}):
            pass

    def context(v: Any) -> None:
        bind_context(fuzz_key=v, session_id=v)
        log.info("fuzz.context")
        clear_context()

    return {
        "counter.inc": c.inc,
        "counter.inc tags": lambda v: c.inc(1, tags={"k": v}),
        "counter.inc tags mapping": lambda v: c.inc(1, tags=v),
        "bound counter.inc": c.bind(k="a").inc,
        "gauge.set": g.set,
        "gauge.inc": g.inc,
        "gauge.dec": g.dec,
        "gauge.set tags": lambda v: g.set(1.0, tags={"k": v}),
        "bound gauge.set": g.bind(k="a").set,
        "histogram.observe": h.observe,
        "histogram.observe tags": lambda v: h.observe(1.0, tags={"k": v}),
        "bound histogram.observe": h.bind(k="a").observe,
        "summary.observe": s.observe,
        "histogram.time tags": timed,
        "logger.info field": lambda v: log.info("fuzz.event", field=v),
        "logger.bind field": lambda v: log.bind(field=v).warning("fuzz.bound"),
        "logger.error exc_info": lambda v: log.error("fuzz.error", detail=v, exc_info=True),
        "bind_context": context,
        "SentryContext.set_metric": lambda v: sentry.set_metric("fuzz.metric", v),
        "SentryContext.set_tag": lambda v: sentry.set_tag("fuzz_tag", v),
        "scrub": sounding.scrub,
    }




NAMES = [
    "counter.inc",
    "counter.inc tags",
    "counter.inc tags mapping",
    "bound counter.inc",
    "gauge.set",
    "gauge.inc",
    "gauge.dec",
    "gauge.set tags",
    "bound gauge.set",
    "histogram.observe",
    "histogram.observe tags",
    "bound histogram.observe",
    "summary.observe",
    "histogram.time tags",
    "logger.info field",
    "logger.bind field",
    "logger.error exc_info",
    "bind_context",
    "SentryContext.set_metric",
    "SentryContext.set_tag",
    "scrub",
]


def _stored(data_dir: Path, name: str) -> float:
    db = sqlite3.connect(data_dir / "telemetry.db")
    try:
        (total,) = db.execute(
            "SELECT coalesce(sum(p.sum), 0) FROM points p JOIN series s ON s.id = p.series_id "
            "WHERE s.name = ? AND p.resolution = 86400",
            (name,),
        ).fetchone()
        return float(total)
    finally:
        db.close()


@pytest.mark.parametrize("name", NAMES)
def test_hostile_values_never_escape_and_the_sentinel_lands(name: str, data_dir: Path) -> None:
    """A hostile value in any run-time call raises nothing and loses nothing beside it."""
    rt = _runtime.get_runtime()
    rt.set_manual(True)
    call = _calls()[name]
    sentinel = sounding.counter("fuzz.sentinel")
    sent = 0

    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(value=HOSTILE)
    def check(value: Any) -> None:
        nonlocal sent
        call(value)
        sentinel.inc()
        sent += 1
        assert sounding.flush() is True

    check()
    assert sorted(_calls()) == sorted(NAMES)
    assert _stored(data_dir, "fuzz.sentinel") == sent
