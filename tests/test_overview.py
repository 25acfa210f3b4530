"""The overview is the one model: the dashboard, the report and the analysis commands
show its numbers, for the demo's export regression and for every kind of metric."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from sounding.analysis import ChangePoint
from sounding.analysis.overview import (
    Overview,
    Windows,
    build_overview,
    default_stat,
    polarity,
)
from sounding.core.clock import set_clock
from sounding.core.types import MetricType
from sounding.exceptions import InvalidValueError
from sounding.presentation._format import format_stat
from sounding.presentation.cli import main
from sounding.presentation.demo import REGRESSED_METRIC, DemoResult, run_demo
from sounding.presentation.report import build_report, nice_ticks, time_ticks
from sounding.storage import open_store
from sounding.testing import ManualClock, reset

NOW = 1_769_904_000.0  # 2026-02-01T00:00Z
DAY = 86400.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    """Eight days of the demo, ending at NOW."""
    reset()
    result = run_demo(days=8, seed=1, data_dir=tmp_path_factory.mktemp("demo") / "d", now=NOW)
    reset()
    return result


@pytest.fixture
def at_now() -> Iterator[None]:
    """The commands see NOW as the current time."""
    previous = set_clock(ManualClock(NOW))
    yield
    set_clock(previous)


def _cli(demo: DemoResult, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--data-dir", str(demo.data_dir), *args])
    return result.exit_code, result.output


def _json(demo: DemoResult, *args: str) -> object:
    code, out = _cli(demo, *args)
    assert code == 0, out
    return json.loads(out)


def test_dashboard_report_and_commands_agree_on_the_regression(
    demo: DemoResult, at_now: None
) -> None:
    """For the export regression, the dashboard's JSON, `baseline`, `changes` and the report
    give the same statistic, baseline, now and change point."""
    board = _json(demo, "dashboard", "--format", "json")
    assert isinstance(board, dict)
    row = next(r for r in board["rows"] if r["name"] == REGRESSED_METRIC)
    assert row["stat"] == "p95"
    assert row["flagged"]
    assert board["windows"]["baseline_end"] == board["windows"]["current_start"]

    base = _json(demo, "baseline", REGRESSED_METRIC, "--format", "json")
    assert isinstance(base, list)
    assert len(base) == 1
    assert base[0]["stat"] == row["stat"]
    assert base[0]["baseline"] == pytest.approx(row["baseline"], rel=1e-12)
    assert base[0]["now"] == pytest.approx(row["current"], rel=1e-12)
    # The sketch baseline over the same window gives the same p95.
    assert base[0]["p95"] == pytest.approx(row["baseline"], rel=1e-9)

    found = _json(demo, "changes", REGRESSED_METRIC, "--format", "json")
    assert isinstance(found, list)
    assert found, "the regression is a change point"
    assert len(found) == len(row["change_points"])
    for cmd, model in zip(found, sorted(row["change_points"], key=lambda c: c["timestamp"]),
                          strict=True):  # fmt: skip
        assert cmd["stat"] == model["stat"] == row["stat"] == "p95"
        assert cmd["before"] == pytest.approx(model["before"], rel=1e-12)
        assert cmd["after"] == pytest.approx(model["after"], rel=1e-12)
        assert cmd["change_percent"] == pytest.approx(model["percent"], rel=1e-12)

    with open_store(demo.data_dir) as store:
        page = build_report(store, now=NOW)
    unit = "ms"
    for value in (row["baseline"], row["current"]):
        assert format_stat(value, "p95", unit) in page
    last = row["change_points"][0]
    assert format_stat(last["before"], "p95", unit) in page
    assert format_stat(last["after"], "p95", unit) in page


def test_dashboard_text_shows_the_same_numbers(demo: DemoResult, at_now: None) -> None:
    """The text dashboard prints the model's now and baseline of the regressed metric."""
    code, text = _cli(demo, "dashboard", "--width", "80")
    assert code == 0, text
    with open_store(demo.data_dir) as store:
        model = build_overview(store, now=NOW)
    row = model.row(REGRESSED_METRIC)
    assert row is not None
    line = next(ln for ln in text.splitlines() if ln.startswith(REGRESSED_METRIC))
    assert format_stat(row.current, "p95", "ms") in line
    assert format_stat(row.baseline, "p95", "ms") in line
    assert max(len(ln.rstrip()) for ln in text.splitlines()) <= 80
    assert "Alerts (" in text
    assert "Top error types" in text


@pytest.mark.parametrize(
    ("metric", "stat"),
    [("recorder.exports", "rate"), ("recorder.memory", "avg"), ("recorder.memory", "last")],
)
def test_baseline_and_changes_work_for_counters_and_gauges(
    demo: DemoResult, at_now: None, metric: str, stat: str
) -> None:
    """Counters default to their rate per hour, gauges to their mean; --stat picks another;
    the numbers are the dashboard's for the same statistic."""
    with open_store(demo.data_dir) as store:
        model = build_overview(store, now=NOW, names=[metric], stat=stat)
    row = model.row(metric)
    assert row is not None
    assert row.stat == stat
    args = ["baseline", metric, "--format", "json"]
    if stat != default_stat(row.metric_type):
        args += ["--stat", stat]
    got = _json(demo, *args)
    assert isinstance(got, list)
    assert got[0]["stat"] == stat
    assert got[0]["baseline"] == pytest.approx(row.baseline, rel=1e-12)
    assert got[0]["now"] == pytest.approx(row.current, rel=1e-12)
    code, out = _cli(demo, "changes", metric, "--stat", stat, "--format", "json")
    assert code == 0, out
    assert [c["before"] for c in json.loads(out)] == [cp.before for cp in row.change_points]


def test_counter_rate_is_per_hour(demo: DemoResult) -> None:
    """A counter's rate is what was added per hour of "now"."""
    with open_store(demo.data_dir) as store:
        model = build_overview(store, now=NOW, names=["recorder.exports"])
        total = store.query("recorder.exports", model.current_start, NOW, stat="sum")[0].value
    row = model.row("recorder.exports")
    assert row is not None
    assert row.stat_unit == "/h"
    hours = (NOW - model.current_start) / 3600.0
    assert row.current == pytest.approx(total / hours)


def test_windows_are_stated_and_consistent() -> None:
    """ "Now" is the last day; the baseline the configured days before it; the grid never
    has more intervals than asked for."""
    w = Windows.for_range(NOW - 7 * DAY, NOW, baseline_days=7, points=96)
    assert w.current_start == NOW - DAY
    assert (w.baseline_start, w.baseline_end) == (NOW - 8 * DAY, NOW - DAY)
    assert w.trend_points <= 96
    assert w.trend_origin <= w.start < w.trend_origin + w.trend_step
    forced = Windows.for_range(NOW - 7 * DAY, NOW, points=10, step=60.0)
    assert forced.trend_points <= 10
    fine = Windows.for_range(NOW - DAY, NOW, points=96, step=1.0, min_step=60.0)
    assert fine.trend_step % 60 == 0
    assert set(w.as_dict()) == {"window", "now", "baseline", "trend_step_seconds"}


def test_one_change_point_type(demo: DemoResult) -> None:
    """The overview's change points are the analysis package's one ChangePoint type, and
    every view lists them with their metric's row (name, statistic, unit)."""
    with open_store(demo.data_dir) as store:
        model = build_overview(store, now=NOW)
    changes = model.recent_changes()
    assert changes
    assert all(isinstance(cp, ChangePoint) for _, cp in changes)
    assert [cp.timestamp for _, cp in changes] == sorted(
        (cp.timestamp for _, cp in changes), reverse=True
    )
    row, cp = next((r, c) for r, c in changes if r.name == REGRESSED_METRIC)
    assert row.stat == "p95"
    assert cp.percent == pytest.approx((cp.after - cp.before) / cp.before * 100)
    top = model.as_dict()["change_points"]
    assert {"metric", "stat", "before", "after", "percent"} <= set(top[0])


def test_polarity_judges_failures_and_fallbacks_not_usage() -> None:
    """Durations and failure-like counters are worse up; usage counts and gauges are not judged."""
    assert polarity("x.duration", MetricType.HISTOGRAM, "p95") == "up"
    assert polarity("x.save.fallbacks", MetricType.COUNTER, "rate") == "up"
    assert polarity("x.exports", MetricType.COUNTER, "rate") == "none"
    assert polarity("x.memory", MetricType.GAUGE, "avg") == "none"


def test_fallbacks_going_down_is_better(demo: DemoResult) -> None:
    """A failure-like counter that fell is "better" (green), never a regression."""
    with open_store(demo.data_dir) as store:
        model = build_overview(store, now=NOW)
    for row in model.rows:
        if row.polarity == "up" and row.change is not None and row.change < 0:
            assert row.verdict in ("better", "steady")
            assert not row.flagged


def test_errors_include_failures_recorded_on_timers(tmp_path: Path) -> None:
    """A timer that raised (`<op>.duration{exc_type=...}`) counts in the top errors, and a
    failure both counted and timed in one operation is counted once."""
    import sounding
    from sounding import MetricSnapshot

    reset()
    sounding.configure(app_name="ov", data_dir=str(tmp_path), default_tags={})
    sounding.histogram("job.duration", unit="ms")
    sounding.counter("job.failures")
    sounding.histogram("load.duration", unit="ms")
    for i in range(3):
        ts = NOW - 3600 + i
        tags = {"status": "error", "exc_type": "KeyError"}
        sounding.record(MetricSnapshot(MetricType.HISTOGRAM, "job.duration", 5.0, ts, tags))
        sounding.record(
            MetricSnapshot(MetricType.COUNTER, "job.failures", 1.0, ts, {"exc_type": "KeyError"})
        )
    sounding.record(
        MetricSnapshot(MetricType.HISTOGRAM, "load.duration", 9.0, NOW - 60,
                       {"status": "error", "exc_type": "OSError"})
    )  # fmt: skip
    assert sounding.flush()
    reset()
    with open_store(tmp_path) as store:
        model = build_overview(store, now=NOW)
    counts = {e.exc_type: e.count for e in model.errors}
    assert counts == {"KeyError": 3, "OSError": 1}
    assert "load.duration" in next(e for e in model.errors if e.exc_type == "OSError").sources


def test_by_tag_breaks_a_metric_down(demo: DemoResult) -> None:
    """--by gives one group per tag value with the same statistic; an unknown key fails
    naming the keys that exist."""
    with open_store(demo.data_dir) as store:
        model = build_overview(store, now=NOW, names=[REGRESSED_METRIC], by="app_version")
        with pytest.raises(InvalidValueError, match="app_version"):
            build_overview(store, now=NOW, by="nosuchkey")
    row = model.row(REGRESSED_METRIC)
    assert row is not None
    assert {g.value for g in row.groups} == {"1.4.2", "1.5.0"}
    new = next(g for g in row.groups if g.value == "1.5.0")
    assert new.current is not None
    assert new.current > (row.baseline or math.inf) * 0.9


def test_brand_new_app_has_no_history(tmp_path: Path) -> None:
    """Data only in the last hours: the overview says there is no history, and the report
    says "not enough history yet" instead of charts."""
    import sounding
    from sounding import MetricSnapshot

    reset()
    sounding.configure(app_name="new", data_dir=str(tmp_path), default_tags={})
    sounding.histogram("first.duration", unit="ms")
    for i in range(20):
        sounding.record(
            MetricSnapshot(MetricType.HISTOGRAM, "first.duration", 10.0 + i, NOW - 1800 + i)
        )
    assert sounding.flush()
    reset()
    with open_store(tmp_path) as store:
        model = build_overview(store, now=NOW)
        page = build_report(store, now=NOW)
    assert not model.history
    assert "Not enough history yet" in page
    assert 'role="img"' not in page


def test_overview_json_is_complete(demo: DemoResult) -> None:
    """as_dict names the statistic, its unit and the windows for every row."""
    with open_store(demo.data_dir) as store:
        data = build_overview(store, now=NOW).as_dict()
    assert {"window", "now", "baseline"} <= set(data["windows"])
    assert all({"stat", "stat_unit", "metric_type"} <= set(r) for r in data["rows"])
    json.dumps(data)


def test_empty_overview() -> None:
    """An empty overview has windows, no rows and no history."""
    m = Overview.empty(data_dir="/x", start=0.0, end=DAY)
    assert m.rows == ()
    assert not m.history
    assert m.windows.baseline_end == m.current_start


def test_alerts_evaluate_exits_1_while_firing(demo: DemoResult, at_now: None) -> None:
    """The demo's export alert fires after the release: --evaluate exits 1 (for cron/CI)."""
    code, out = _cli(demo, "alerts", "--evaluate", "--format", "json")
    assert code == 1, out
    assert any(r["status"] == "firing" for r in json.loads(out))


def test_round_ticks() -> None:
    """Y ticks are round; x ticks fall inside the window at a readable spacing."""
    assert nice_ticks(0.0, 1.9) == [0.0, 0.5, 1.0, 1.5, 2.0]
    ticks = time_ticks(NOW - 7 * DAY, NOW)
    assert all(NOW - 7 * DAY <= t <= NOW for t, _ in ticks)
    assert 3 <= len(ticks) <= 8


def test_tag_filter_in_the_overview_and_report(demo: DemoResult) -> None:
    """A tag filter keeps the matching series (the same numbers as that tag's group); the
    report takes it too; a tag value the store lacks fails, listing the values it has."""
    with open_store(demo.data_dir) as store:
        model = build_overview(store, now=NOW, tags={"app_version": "1.5.0"})
        row = model.row(REGRESSED_METRIC)
        new = build_overview(store, now=NOW, names=[REGRESSED_METRIC], by="app_version")
    split = new.row(REGRESSED_METRIC)
    assert row is not None
    assert split is not None
    group = next(g for g in split.groups if g.value == "1.5.0")
    assert row.current == pytest.approx(group.current)
    with open_store(demo.data_dir) as store:
        page = build_report(store, now=NOW, tags={"app_version": "1.5.0"})
        with pytest.raises(InvalidValueError, match=r"1\.4\.2, 1\.5\.0"):
            build_overview(store, now=NOW, tags={"app_version": "9.9"})
    assert format_stat(row.current, "p95", "ms") in page


def test_usage_counters_are_not_segmented_unless_asked(demo: DemoResult) -> None:
    """A usage counter's day/night cycle gives no change points; asking for its statistic
    explicitly draws the same trend."""
    with open_store(demo.data_dir) as store:
        default = build_overview(store, now=NOW, names=["recorder.recordings"])
        asked = build_overview(store, now=NOW, names=["recorder.recordings"], stat="rate")
    row = default.row("recorder.recordings")
    assert row is not None
    assert row.polarity == "none"
    assert row.change_points == ()
    explicit = asked.row("recorder.recordings")
    assert explicit is not None
    assert explicit.trend == row.trend
