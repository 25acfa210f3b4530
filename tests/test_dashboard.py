"""The dashboard: its model built from a real store, its rendering, sparklines and live mode."""

from __future__ import annotations

import io
import math
import random
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

import sounding
from sounding import MetricSnapshot, MetricType
from sounding.analysis.overview import Windows
from sounding.core.config import MetricsConfig
from sounding.exceptions import InvalidValueError
from sounding.presentation.dashboard import (
    DashboardModel,
    build_model,
    format_value,
    live,
    render_text,
)
from sounding.presentation.sparkline import BLOCKS, resample, sparkline
from sounding.storage import Store, open_store

NOW = 1_769_904_000.0  # 2026-02-01T00:00Z
HOUR = 3600.0
MARKUP_ERROR = "[bold]Markup[/bold]Error"


def _fill(data_dir: Path) -> None:
    """Eight days of a service: latency +50 % on the last day, steady traffic, some errors."""
    sounding.configure(app_name="dash-test", data_dir=str(data_dir), default_tags={})
    sounding.histogram("app.op.duration", unit="ms", description="one operation")
    sounding.counter("app.requests")
    sounding.counter("app.failures")
    sounding.gauge("app.queue")
    rng = random.Random(5)
    for h in range(8 * 24):
        t0 = NOW - 8 * 86400 + h * HOUR
        slow = t0 >= NOW - 86400
        for k in range(6):
            ts = t0 + k * 600 + 30
            center = 150.0 if slow else 100.0
            value = center * rng.uniform(0.95, 1.05)
            sounding.record(MetricSnapshot(MetricType.HISTOGRAM, "app.op.duration", value, ts))
            sounding.record(MetricSnapshot(MetricType.COUNTER, "app.requests", 1.0, ts))
        sounding.record(MetricSnapshot(MetricType.GAUGE, "app.queue", 4.0, t0 + 5))
    for i in range(5):
        sounding.record(
            MetricSnapshot(MetricType.COUNTER, "app.failures", 1.0, NOW - 3 * HOUR - i * 60,
                           {"exc_type": "TimeoutError"})
        )
    for i in range(2):
        sounding.record(
            MetricSnapshot(MetricType.COUNTER, "app.failures", 1.0, NOW - 2 * HOUR - i * 60,
                           {"exc_type": MARKUP_ERROR})
        )
    sounding.record(
        MetricSnapshot(MetricType.COUNTER, "sounding.internal.storage_write", 3.0, NOW - HOUR)
    )
    assert sounding.flush()


@pytest.fixture
def store(data_dir: Path) -> Store:
    _fill(data_dir)
    s = open_store(data_dir)
    return s


@pytest.fixture
def model(store: Store) -> DashboardModel:
    with store:
        return build_model(store, now=NOW)


def test_distribution_row_compares_now_with_baseline(model: DashboardModel) -> None:
    """p95 now and in the baseline come from merged sketches; +50 % is flagged."""
    row = model.row("app.op.duration")
    assert row is not None
    assert row.count == 6 * 24
    assert row.p95 == pytest.approx(157.5 * 0.98, rel=0.02)
    assert row.baseline == pytest.approx(105.0 * 0.99, rel=0.02)
    assert row.change == pytest.approx(0.5, abs=0.05)
    assert row.flagged
    assert row.headline == "p95"
    assert row.unit == "ms"


def test_counter_row_reports_a_rate_and_is_never_a_regression(model: DashboardModel) -> None:
    """A steady counter shows its rate per hour, unchanged against the baseline, unflagged."""
    row = model.row("app.requests")
    assert row is not None
    assert row.total == 6 * 24
    assert row.rate_per_hour == pytest.approx(6.0)
    assert row.change == pytest.approx(0.0, abs=1e-9)
    assert not row.flagged
    assert all(v == pytest.approx(6.0) for v in row.trend if v is not None)


def test_gauge_row_shows_the_mean(model: DashboardModel) -> None:
    """A gauge's headline is its mean, compared with the baseline mean."""
    row = model.row("app.queue")
    assert row is not None
    assert row.headline == "avg"
    assert row.current == pytest.approx(4.0)
    assert row.baseline == pytest.approx(4.0)


def test_errors_internal_counts_and_change_points(model: DashboardModel) -> None:
    """Error types come from exc_type tags, most frequent first; internal counters go apart;
    the latency step is found as a change point near where it happened."""
    assert [(e.exc_type, e.count) for e in model.errors] == [("TimeoutError", 5), (MARKUP_ERROR, 2)]
    assert model.internal == {"storage_write": 3.0}
    assert all(not r.name.startswith("sounding.internal.") for r in model.rows)
    points = [cp for row, cp in model.recent_changes() if row.name == "app.op.duration"]
    assert points, model.recent_changes()
    step = model.rows[0].trend_step
    assert abs(points[0].timestamp - (NOW - 86400)) <= 2 * step
    assert points[0].after > points[0].before


def test_names_filter_and_max_data_points(store: Store) -> None:
    """``names`` limits the rows; sparklines never exceed ``max_data_points``."""
    with store:
        m = build_model(
            store, now=NOW, names=["app.requests"], config=MetricsConfig(max_data_points=10)
        )
    assert [r.name for r in m.rows] == ["app.requests"]
    assert 0 < len(m.rows[0].trend) <= 10


@pytest.mark.parametrize("since", ["garbage", "2030-01-01", "0d"])
def test_bad_window_raises(store: Store, since: object) -> None:
    """A window that cannot be parsed, or starts after now, raises naming ``since``."""
    with store, pytest.raises((InvalidValueError, ValueError), match="since"):
        build_model(store, now=NOW, since=since)  # type: ignore[arg-type]


def test_empty_store_renders_a_hint(data_dir: Path) -> None:
    """A store with nothing in the window gives an empty model and a helpful message."""
    with open_store(data_dir, create=True) as store:
        m = build_model(store, now=NOW)
    assert m.rows == ()
    assert m.errors == ()
    text = render_text(m, width=100)
    assert "No metrics recorded in this window" in text
    assert "sounding demo" in text


def test_wide_rendering_shows_every_column_and_the_flag(model: DashboardModel) -> None:
    """At 160 columns the table has p50/p95/p99, the regression line, and sparklines."""
    text = render_text(model, width=160)
    for header in ("Metric", "Stat", "Now", "p50", "p99", "Baseline", "Change", "Trend"):
        assert header in text
    assert "1 regression(s) past ±20 %: app.op.duration p95 +" in text
    assert any(ch in text for ch in BLOCKS)
    assert "storage_write 3" in text
    assert text.splitlines()[0] == f"sounding dashboard  {model.data_dir}"


def test_narrow_rendering_keeps_the_headline(model: DashboardModel) -> None:
    """At 80 columns the per-percentile columns go; name, statistic, now, baseline and
    change stay, alerts and errors are visible, and no line is wider than 80."""
    text = render_text(model, width=80)
    assert "p99" not in text.split("Metrics")[1].splitlines()[1]
    assert "app.op.duration" in text
    assert any(f"+{pct} %" in text for pct in (49, 50, 51))
    assert "Top error types" in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80


def test_stored_text_is_never_markup(model: DashboardModel) -> None:
    """An error type that looks like rich markup prints verbatim, not as styling."""
    assert MARKUP_ERROR in render_text(model, width=160)


def test_coloured_output_marks_the_regression_red(model: DashboardModel) -> None:
    """With colours, the flagged change is drawn in (bold) red."""
    text = render_text(model, width=160, color=True)
    assert re.search(r"\x1b\[1;31m\s*\+(49|50|51) %", text), text


def test_live_redraws_in_place_until_told_to_stop(model: DashboardModel) -> None:
    """``live`` reloads the model each interval and redraws; a failing load keeps the picture."""
    loads = []

    def load() -> DashboardModel:
        loads.append(1)
        if len(loads) == 4:
            raise RuntimeError("store went away")
        return model

    console = Console(file=io.StringIO(), width=120, record=True)
    sleeps: list[float] = []
    drawn = live(load, refresh_interval=5, console=console, iterations=3, sleep=sleeps.append)
    assert drawn == 3
    assert len(loads) == 4
    assert sleeps == [5, 5, 5]
    out = console.export_text()
    assert "refresh failed: store went away" in out
    assert "app.op.duration" in out


def test_live_stops_on_ctrl_c(model: DashboardModel) -> None:
    """Ctrl-C (KeyboardInterrupt while waiting) ends live mode cleanly."""

    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    console = Console(file=io.StringIO(), width=120)
    assert live(lambda: model, refresh_interval=1, console=console, sleep=interrupt) == 0


# -- sparklines and numbers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2, 3, 4, 5, 6, 7, 8], "▁▂▃▄▅▆▇█"),
        ([5, 5, 5], "▄▄▄"),
        ([None, 1.0, None, 2.0], " ▁ █"),
        ([], ""),
        ([math.nan, 1.0], " ▄"),
    ],
)
def test_sparkline_draws_levels_and_gaps(values: list[float | None], expected: str) -> None:
    """Lowest value lowest block, highest highest, gaps as spaces, flat at mid height."""
    assert sparkline(values) == expected


def test_resample_averages_runs() -> None:
    """Shrinking averages consecutive values; never stretches."""
    assert resample([1.0, 3.0, 5.0, 7.0], 2) == [2.0, 6.0]
    assert resample([1.0, None], 5) == [1.0, None]


@given(
    st.lists(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)), max_size=300),
    st.integers(min_value=1, max_value=80),
)
def test_sparkline_never_raises_and_fits(values: list[float | None], width: int) -> None:
    """Any input draws without error in at most ``width`` characters from the block set."""
    line = sparkline(values, width)
    assert len(line) == min(len(values), width)
    assert set(line) <= set(BLOCKS) | {" "}


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (1520.0, "ms", "1.52 s"),
        (0.25, "ms", "250 µs"),
        (95.0, "s", "1.58 min"),
        (7200.0, "s", "2 h"),
        (0.0005, "s", "500 µs"),
        (12345.0, "", "12.3k"),
        (2_500_000.0, "", "2.5M"),
        (3.0, "", "3"),
        (0.125, "", "0.125"),
        (217.0, "MB", "217 MB"),
        (None, "ms", "-"),
        (math.inf, "", "-"),
    ],
)
def test_format_value(value: float | None, unit: str, text: str) -> None:
    """Durations read in ms/s/min/h, large numbers with k/M, missing values as '-'."""
    assert format_value(value, unit) == text


def test_control_characters_never_reach_the_terminal() -> None:
    """ESC sequences or bells in stored names, units and messages are shown escaped."""
    from sounding.presentation.dashboard import ErrorRow, MetricRow

    evil = "x\x1b[2J\x07[red]y"
    row = MetricRow(
        name=evil, metric_type=MetricType.HISTOGRAM, unit=evil, description=evil, series=1,
        count=60, total=1.0, rate_per_hour=1.0, p50=1.0, p95=2.0, p99=3.0, stat="p95",
        current=2.0, baseline=1.0, baseline_count=60, change=1.0, flagged=True,
        trend=(1.0, 2.0),
    )  # fmt: skip
    model = DashboardModel(
        data_dir=evil,
        windows=Windows(
            start=0.0, end=7200.0, current_start=3600.0, baseline_start=0.0, baseline_end=3600.0
        ),
        threshold_percent=20.0, rows=(row,), errors=(ErrorRow(evil, 2, 1.0, evil),),
    )  # fmt: skip
    for width in (80, 160):
        text = render_text(model, width=width)
        assert "\x1b" not in text
        assert "\x07" not in text
        assert "[red]y" in text


HOSTILE_NAMES = [
    "a'; DROP TABLE series; --",
    "<script>x</script>",
    "bell\x07\x1b[2J",
    "名前.時間",
    "",
]


def test_hostile_series_in_the_store_render_safely(tmp_path: Path) -> None:
    """Names and tags that no instrument would accept (SQL, HTML, control characters) but a
    store may hold are read, shown escaped, and break nothing."""
    from sounding.core.sketch import QuantileSketch
    from sounding.core.types import IntervalAggregate
    from sounding.presentation.report import render_report
    from sounding.storage import SQLiteSink

    sink = SQLiteSink(tmp_path / "telemetry.db")
    batch = []
    for i, name in enumerate(HOSTILE_NAMES):
        for h in range(48):
            t = NOW - 48 * HOUR + h * HOUR
            sk = QuantileSketch()
            sk.add_many([10.0 + i, 12.0 + i])
            batch.append(
                IntervalAggregate(name, MetricType.HISTOGRAM, (("exc_type", name),), t, t + 60,
                                  count=2, sum=sk.sum, min=sk.min, max=sk.max, sketch=sk)
            )  # fmt: skip
            batch.append(
                IntervalAggregate(f"{name}.failures", MetricType.COUNTER, (("exc_type", name),),
                                  t, t + 60, count=1, sum=1.0)
            )  # fmt: skip
    sink.write(batch, [])
    sink.close()
    with open_store(tmp_path) as store:
        model = build_model(store, now=NOW)
    assert len(model.rows) == 2 * len(HOSTILE_NAMES)
    text = render_text(model, width=160)
    assert "\x1b" not in text
    assert "a'; DROP TABLE series; --" in text
    page = render_report(model)
    assert "<script>x" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page


def test_rules_never_evaluated_are_compared_with_now(data_dir: Path, store: Store) -> None:
    """Rules from alerts.toml and alert_thresholds without persisted state are run through
    the rule evaluator now, and looking adds no table to the store."""
    (data_dir / "alerts.toml").write_text(
        '[[alerts]]\nname = "slow ops"\nmetric = "app.op.duration"\nstat = "p95"\n'
        'op = ">"\nthreshold = 140.0\n\n'
        '[[alerts]]\nname = "fast ops"\nmetric = "app.op.duration"\nstat = "p50"\n'
        'op = "<"\nthreshold = 10.0\n'
    )
    with store:
        model = build_model(
            store, now=NOW, config=MetricsConfig(alert_thresholds={"app.queue:avg": 100.0})
        )
        tables = {r[0] for r in store.connection.execute("SELECT name FROM sqlite_master")}
    assert "alert_state" not in tables
    status = {a.name: (a.status, a.evaluated) for a in model.alerts}
    assert status == {
        "slow ops": ("firing", False),
        "fast ops": ("inactive", False),
        "app.queue:avg > 100.0": ("inactive", False),
    }
    assert model.alerts[0].name == "slow ops"  # firing first
    text = render_text(model, width=160)
    assert "Alerts (1 firing)" in text
    assert "p95 > 140 ms" in text


def test_narrow_error_table_shows_class_names() -> None:
    """At 80 columns an error type is its class name; wide output keeps the module path."""
    from sounding.presentation.dashboard import ErrorRow

    model = DashboardModel(
        data_dir="/d",
        windows=Windows(
            start=0.0, end=7200.0, current_start=3600.0, baseline_start=0.0, baseline_end=3600.0
        ),
        threshold_percent=20.0, errors=(ErrorRow("myapp.storage.DiskFullError", 3),),
    )  # fmt: skip
    assert "myapp.storage.DiskFullError" in render_text(model, width=160)
    narrow = render_text(model, width=80)
    assert "DiskFullError" in narrow
    assert "myapp.storage" not in narrow


def test_live_view_fits_80x24_with_a_status_line(model: DashboardModel) -> None:
    """At 80x24 the live picture, status line included, fits the terminal; regressions and
    the alert/error summaries come first."""
    from sounding.presentation.dashboard import render, status_line

    console = Console(file=io.StringIO(), width=80, height=24, record=True)
    console.print(render(model, width=80, height=24, status=status_line(5.0, NOW)))
    lines = console.export_text().rstrip("\n").splitlines()
    assert len(lines) <= 23  # one line left for the cursor
    assert lines[-1].startswith("live: refresh every 5 s · updated 00:00:00 UTC · Ctrl-C")
    assert any(ln.startswith("app.op.duration") for ln in lines)
    assert any(ln.startswith("Top errors: TimeoutError 5") for ln in lines)
    assert max(len(ln.rstrip()) for ln in lines) <= 80


def test_live_shows_refresh_failures_in_the_status_line(model: DashboardModel) -> None:
    """A failing refresh keeps the picture and names the error in the status line."""
    calls = []

    def load() -> DashboardModel:
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("store went away")
        return model

    console = Console(file=io.StringIO(), width=100, height=40, record=True)
    live(load, refresh_interval=2, console=console, iterations=1, sleep=lambda s: None)
    text = console.export_text()
    assert "refresh failed: store went away" in text
    assert "Ctrl-C to quit" in text


@pytest.mark.parametrize(
    ("name", "width", "lines"),
    [
        ("recorder.device.open.duration", 22, ["recorder.device.open.", "duration"]),
        ("short.name", 22, ["short.name"]),
        ("averyveryverylongsinglewordname", 10, ["averyveryverylongsinglewordname"]),
    ],
)
def test_long_names_break_after_dots_never_mid_word(
    name: str, width: int, lines: list[str]
) -> None:
    """A metric name too long for its column is split after dots, never inside a part."""
    from sounding.presentation.dashboard import _split_name

    assert _split_name(name, width).split("\n") == lines


def test_by_tag_adds_one_line_per_value(store: Store) -> None:
    """--by KEY lists each tag value under the metric with the same statistic."""
    with store:
        m = build_model(store, now=NOW, names=["app.failures"], by="exc_type")
    text = render_text(m, width=100)
    assert "exc_type=TimeoutError" in text
    assert "exc_type=[bold]Markup[/bold]Error" in text


def test_narrow_terminal_breaks_long_names_after_a_dot() -> None:
    """At 60 columns a long metric name takes two lines, broken after a dot, none cut."""
    from sounding.presentation.dashboard import MetricRow

    row = MetricRow(
        name="recorder.device.open.duration", metric_type=MetricType.HISTOGRAM, unit="ms",
        description="", series=1, count=60, total=1.0, rate_per_hour=1.0, p50=1.0, p95=2.0,
        p99=3.0, stat="p95", current=2.0, baseline=1.0, baseline_count=60, change=1.0,
        flagged=True, trend=(1.0, 2.0),
    )  # fmt: skip
    model = DashboardModel(
        data_dir="/d",
        windows=Windows(
            start=0.0, end=7200.0, current_start=3600.0, baseline_start=0.0, baseline_end=3600.0
        ),
        threshold_percent=20.0, rows=(row,),
    )  # fmt: skip
    lines = render_text(model, width=60).splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith("recorder.device."))
    assert lines[first + 1].startswith("open.duration")
    assert "…" not in "\n".join(lines[first : first + 2])
    assert max(len(ln.rstrip()) for ln in lines) <= 60
