"""Store wrappers: baselines, change points and alert values read from a real SQLite store."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from sounding.analysis import (
    AlertRule,
    AlertStatus,
    SQLiteAlertStateStore,
    baseline,
    changes,
    evaluate,
    metric_history,
    store_value_source,
)
from sounding.core.clock import set_clock
from sounding.core.config import MetricsConfig
from sounding.core.exceptions import InvalidValueError
from sounding.core.sketch import QuantileSketch
from sounding.core.types import IntervalAggregate, MetricType, TagKey
from sounding.storage import SQLiteSink, Store, open_store
from sounding.testing import ManualClock

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
HOUR = 3600.0
DAY = 86400.0
NOW = T0 + 8 * DAY


def _hist(name: str, start: float, values: list[float], tags: TagKey = ()) -> IntervalAggregate:
    sk = QuantileSketch()
    sk.add_many(values)
    return IntervalAggregate(
        name, MetricType.HISTOGRAM, tags, start, start + 60, count=len(values),
        sum=sum(values), min=min(values), max=max(values), sketch=sk,
    )  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """Eight days of hourly latency intervals for versions 1.0 (~100 ms) and 2.0 (~130 ms
    after day 5), plus one flat gauge."""
    set_clock(ManualClock(NOW))
    rng = random.Random(3)
    aggs = []
    for h in range(8 * 24):
        start = T0 + h * HOUR
        new = h >= 5 * 24
        level = 130.0 if new else 100.0
        version = "2.0" if new else "1.0"
        values = [rng.gauss(level, 5.0) for _ in range(40)]
        aggs.append(_hist("app.latency", start, values, (("app_version", version),)))
    path = tmp_path / "telemetry.db"
    sink = SQLiteSink(path, MetricsConfig())
    try:
        sink.write(aggs, [])
    finally:
        sink.close()
    s = open_store(path)
    yield s
    s.close()


def test_baseline_from_the_store(store: Store) -> None:
    """The 7-day baseline merges sketches of every interval in the window."""
    b = baseline(store, "app.latency")
    assert b.count == 7 * 24 * 40
    assert b.window == (NOW - 7 * DAY, NOW)
    assert b.p50 is not None
    assert 100 < b.p50 < 130
    assert b.p95 is not None
    assert b.p95 > b.p50
    assert b.intervals > 100
    assert b.spread > 0


def test_baseline_by_version(store: Store) -> None:
    """by='app_version' gives one baseline per version, each from its own sketches."""
    per = baseline(store, "app.latency", by="app_version", window_days=8)
    assert list(per) == ["1.0", "2.0"]
    assert per["1.0"].p50 == pytest.approx(100, rel=0.03)
    assert per["2.0"].p50 == pytest.approx(130, rel=0.03)
    assert per["1.0"].label == "1.0"
    assert per["1.0"].count == 5 * 24 * 40


def test_baseline_with_tag_filter_and_unknown_metric(store: Store) -> None:
    """Tags filter the series; an unknown metric gives an empty baseline."""
    b = baseline(store, "app.latency", tags={"app_version": "2.0"})
    assert b.p50 == pytest.approx(130, rel=0.03)
    empty = baseline(store, "no.such.metric")
    assert (empty.count, empty.p50) == (0, None)


def test_baseline_bad_window(store: Store) -> None:
    """window_days must be positive."""
    with pytest.raises(InvalidValueError):
        baseline(store, "app.latency", window_days=0)


def test_history_and_change_point(store: Store) -> None:
    """The p50 history shows the release step, found as one change of about +30 %."""
    ts, values = metric_history(store, "app.latency", stat="p50", window_days=8, interval="1h")
    assert len(ts) == len(values) == 8 * 24
    found = changes(store, "app.latency", stat="p50", window_days=8, interval="1h")
    assert len(found) == 1
    cp = found[0]
    assert abs(cp.timestamp - (T0 + 5 * DAY)) <= 5 * HOUR
    assert cp.percent == pytest.approx(30, abs=3)
    assert cp.as_dict()["index"] == cp.index


def test_evaluate_against_the_store(store: Store, tmp_path: Path) -> None:
    """A threshold rule reads its statistic over its window from the store; the state is
    persisted in the store's own file."""
    rule = AlertRule("slow", "app.latency", stat="p95", threshold=120, window="1h")
    source = store_value_source(store)
    value = source(rule, NOW)
    assert value == pytest.approx(130 + 1.645 * 5, rel=0.05)
    states = SQLiteAlertStateStore(store.path)
    got: list[object] = []
    (ev,) = evaluate(
        [rule], source, now=NOW, state_store=states, sinks=[got.append], enable_alerts=True
    )
    assert ev.status is AlertStatus.FIRING
    assert len(got) == 1
    # Before the release the same rule does not breach.
    (ev,) = evaluate(
        [rule], source, now=T0 + 2 * DAY, state_store=states, sinks=[], enable_alerts=True
    )
    assert ev.status is AlertStatus.RESOLVED
    states.close()


def test_change_rule_against_the_store(store: Store) -> None:
    """A change rule gets the recent history per window and fires after the release."""
    rule = AlertRule("shift", "app.latency", stat="p50", kind="change", window="1h", recent=20)
    source = store_value_source(store)
    (ev,) = evaluate([rule], source, now=T0 + 5 * DAY + 10 * HOUR, sinks=[], enable_alerts=True)
    assert ev.value == pytest.approx(30, abs=4)
    assert ev.status is AlertStatus.FIRING


def test_no_data_from_the_store(store: Store) -> None:
    """A window without data is no data, not zero."""
    rule = AlertRule("slow", "app.latency", threshold=1, window="1h")
    assert store_value_source(store)(rule, T0 - DAY) is None
