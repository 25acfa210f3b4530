"""Rates from the first data, a grid aligned to UTC, alerts listed read-only, counter changes."""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from sounding.analysis.overview import Windows, build_overview
from sounding.core.clock import get_clock, set_clock
from sounding.core.types import MetricType
from sounding.presentation.cli import main
from sounding.presentation.dashboard import build_model, render_text
from sounding.presentation.demo import REGRESSED_METRIC, DemoResult, run_demo
from sounding.presentation.report import build_report
from sounding.storage import open_store
from sounding.testing import ManualClock, reset

NOW = 1_769_904_000.0  # 2026-02-01T00:00Z, a Sunday
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


def _record(data_dir: Path, points: list[tuple[str, MetricType, float, float]]) -> None:
    """Record ``(name, type, value, timestamp)`` points into a store in ``data_dir``."""
    import sounding
    from sounding import MetricSnapshot

    previous = get_clock()  # reset() restores the system clock: put this one back after
    reset()
    set_clock(ManualClock(NOW))  # written as the application would at NOW
    try:
        sounding.configure(app_name="rates", data_dir=str(data_dir), default_tags={})
        for name, mtype, value, ts in points:
            sounding.record(MetricSnapshot(mtype, name, value, ts, {}))
        assert sounding.flush()
        reset()
    finally:
        set_clock(previous)


def _cli(data_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--data-dir", str(data_dir), *args])
    return result.exit_code, result.output


# -- 1. rates of a brand-new app ---------------------------------------------------------------


def test_new_app_rate_counts_from_the_first_data(tmp_path: Path, at_now: None) -> None:
    """One run 30 minutes ago is 2/h everywhere (model, baseline, query), and the views say
    the rate counts from the first data."""
    _record(tmp_path, [("app.runs", MetricType.COUNTER, 1.0, NOW - 1800)])
    with open_store(tmp_path) as store:
        model = build_overview(store, now=NOW)
        row = model.row("app.runs")
        assert row is not None
        assert row.stat == "rate"
        assert row.current == pytest.approx(2.0)
        assert row.rate_per_hour == pytest.approx(2.0)
        assert model.rates_since() == NOW - 1800
        assert model.as_dict()["rates_since"] == "2026-01-31T23:30:00Z"
        # The store's rate (per second) over a whole --since agrees.
        (point,) = store.query("app.runs", NOW - 30 * DAY, NOW, stat="rate")
        assert point.value == pytest.approx(1 / 1800)
        assert point.timestamp.timestamp() == NOW - 1800  # the row says where it counts from
        page = build_report(store, now=NOW)
        text = render_text(build_model(store, now=NOW), width=80)
    assert "rates since the first data" in page
    assert "rates    since the first data, 2026-01-31T23:30:00Z" in text
    code, out = _cli(tmp_path, "baseline", "app.runs", "--format", "json")
    assert code == 0, out
    (data,) = json.loads(out)
    assert data["now"] == pytest.approx(2.0)
    assert data["rate_start"] == "2026-01-31T23:30:00Z"
    code, out = _cli(tmp_path, "baseline", "app.runs")
    assert code == 0, out
    assert "rates since the first data" in out
    code, out = _cli(tmp_path, "query", "app.runs", "--stat", "rate", "--since", "30d")
    assert code == 0, out
    assert "2/h" in out.replace(" ", "") or "2.00/h" in out, out


def test_old_app_rate_still_counts_the_whole_window(demo: DemoResult) -> None:
    """An app with data before "now" keeps whole-window rates and no first-data note."""
    with open_store(demo.data_dir) as store:
        model = build_overview(store, now=NOW, names=["recorder.recordings"])
        row = model.row("recorder.recordings")
        assert row is not None
        assert row.total is not None
        assert row.rate_per_hour == pytest.approx(row.total / 24.0)
    assert model.rates_since() is None


# -- 2. the grid is aligned to UTC --------------------------------------------------------------


def test_change_points_do_not_move_with_now(demo: DemoResult) -> None:
    """The same question asked a minute apart gives the same grid and change points; only
    when the minute crosses into a new interval does the grid advance, by one interval, and
    the change points keep their times."""

    def ask(now: float) -> tuple[float, float, list[tuple[float | None, float, float]]]:
        m = build_overview(store, now=now, names=[REGRESSED_METRIC], include=())
        row = m.row(REGRESSED_METRIC)
        assert row is not None
        assert row.change_points, "the demo's regression is found"
        assert m.windows.trend_origin % m.windows.trend_step == 0  # a UTC multiple
        cps = [(c.timestamp, c.before, c.after) for c in row.change_points]
        return m.windows.trend_origin, m.windows.trend_step, cps

    with open_store(demo.data_dir) as store:
        # 20:59:43 and 21:00:43: inside one 2 h interval of the 7 d grid.
        assert ask(NOW - 3 * 3600 - 17.0) == ask(NOW - 3 * 3600 + 43.0)
        # 21:59:59 and 22:00:59: the grid moves on by exactly one interval.
        origin, step, before = ask(NOW - 2 * 3600 - 1.0)
        origin2, step2, after = ask(NOW - 2 * 3600 + 59.0)
    assert (step2, origin2) == (step, origin + step)
    assert [c[0] for c in before] == [c[0] for c in after]


def test_changes_header_names_the_aligned_grid(demo: DemoResult) -> None:
    """`changes` states the grid's first interval (a UTC multiple of the step) and reports
    the same change point a minute later."""
    outputs = []
    for now in (NOW - 3 * 3600 - 17.0, NOW - 3 * 3600 + 43.0):
        previous = set_clock(ManualClock(now))
        try:
            code, out = _cli(demo.data_dir, "changes", REGRESSED_METRIC, "--format", "json")
            assert code == 0, out
            outputs.append(json.loads(out))
            code, text = _cli(demo.data_dir, "changes", REGRESSED_METRIC)
            assert code == 0, text
            assert ":00:00Z →" in text, text
        finally:
            set_clock(previous)
    first, later = outputs
    assert [(r["time"], r["before"], r["after"]) for r in first] == [
        (r["time"], r["before"], r["after"]) for r in later
    ]
    assert first[0]["grid_start"] == later[0]["grid_start"]


def test_weekly_grid_starts_on_monday() -> None:
    """A weekly trend step begins on Monday 00:00 UTC (ISO weeks), as the store's weeks do."""
    w = Windows.for_range(NOW - 90 * DAY, NOW, step=7 * DAY, points=96)
    from datetime import datetime, timezone

    origin = datetime.fromtimestamp(w.trend_origin, timezone.utc)
    assert (origin.weekday(), origin.hour, origin.minute) == (0, 0, 0)
    assert w.trend_origin <= NOW - 90 * DAY < w.trend_origin + w.trend_step


# -- 3. listing alerts never writes -------------------------------------------------------------


def _digest(directory: Path) -> dict[str, tuple[str, int]]:
    """Every file of ``directory`` with its content hash and mode (SQLite's ``-shm`` index,
    which any reader of a WAL database updates, only by its presence)."""
    return {
        p.name: (
            "" if p.name.endswith("-shm") else hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mode,
        )
        for p in sorted(directory.iterdir())
    }


@pytest.mark.parametrize("evaluated", [True, False])
def test_alerts_listing_does_not_write(
    demo: DemoResult, tmp_path: Path, at_now: None, evaluated: bool
) -> None:
    """`sounding alerts` on a copied, read-only store (with or without alert state) lists
    the rules and leaves every file as it was: no table, journal or file created."""
    copy = tmp_path / "copy"
    shutil.copytree(demo.data_dir, copy)
    if evaluated:
        _cli(copy, "alerts", "--evaluate")
    else:
        with sqlite3.connect(next(copy.glob("*.db"))) as conn:
            conn.execute("DROP TABLE IF EXISTS alert_state")
        conn.close()
    for p in copy.iterdir():
        p.chmod(0o400)
    copy.chmod(0o500)
    before = _digest(copy)
    try:
        code, out = _cli(copy, "alerts", "--format", "json")
        assert code == 0, out
        rows = json.loads(out)
        assert rows
        assert all("status" in r for r in rows)
        assert any(r.get("evaluated") for r in rows) == evaluated
        after = _digest(copy)
        # A reader of a WAL database may create an empty -wal and the -shm index (SQLite's
        # doing, as for every read command); anything written would be in them or the file.
        for name in set(after) - set(before):
            assert name.endswith(("-wal", "-shm")), name
            assert name.endswith("-shm") or (copy / name).stat().st_size == 0, name
        assert {k: v for k, v in after.items() if k in before} == before
        with sqlite3.connect(f"file:{next(copy.glob('*.db'))}?mode=ro", uri=True) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        conn.close()
        assert ("alert_state" in tables) == evaluated
    finally:
        copy.chmod(0o700)


# -- 4. counters' change points -----------------------------------------------------------------


def _poisson(rng: random.Random, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p < limit:
            return k
        k += 1


def _usage(rng: random.Random, days: int, per_hour: float, shift_at: float | None) -> list[float]:
    """Event times of a counter busy by day (07-22 UTC), quiet by night, x3 after
    ``shift_at``."""
    times = []
    t = NOW - days * DAY
    while t < NOW:
        hour = (t % DAY) / 3600
        lam = per_hour * (1.0 if 7 <= hour < 22 else 0.1) / 6
        if shift_at is not None and t >= shift_at:
            lam *= 3
        times += [t + i for i in range(_poisson(rng, lam))]
        t += 600
    return times


@pytest.mark.parametrize("per_hour", [0.6, 40.0])
def test_counter_changes_find_level_shifts_not_day_night(
    tmp_path: Path, at_now: None, per_hour: float
) -> None:
    """Segmented on its rate (counts, Poisson model), a usage counter's day/night cycle gives
    no change point; the same cycle tripled from day 5 gives one near it, per hour."""
    rng = random.Random(7)
    shift = NOW - 2 * DAY
    found = {}
    for label, at in (("steady", None), ("shifted", shift)):
        d = tmp_path / label
        _record(d, [("app.uses", MetricType.COUNTER, 1.0, t) for t in _usage(rng, 7, per_hour, at)])
        with open_store(d) as store:
            row = build_overview(store, now=NOW, include=(), stat="rate").row("app.uses")
        assert row is not None
        assert row.polarity == "none"
        found[label] = row.change_points
    assert found["steady"] == ()
    assert found["shifted"], "the tripled usage should be a change point"
    cp = max(found["shifted"], key=lambda c: abs(c.after - c.before))
    # The shift starts at midnight; it shows once the day's traffic begins (07:00).
    assert cp.timestamp is not None
    assert shift - 4 * 3600 <= cp.timestamp <= shift + 10 * 3600
    assert cp.after > 2 * cp.before
    # Levels are per hour: between the night's and three times the day's rate.
    assert 0.0 <= cp.before <= per_hour * 1.5
    assert cp.after <= 3 * per_hour * 1.5


def test_detector_count_model_on_request() -> None:
    """`transform="counts"` segments busy counts (median well above 1) with the Poisson
    model and finds a tripled level near where it starts; non-integers fall back to auto."""
    from sounding.analysis import detect_change_points

    rng = random.Random(0)
    step = 7200.0
    times = [NOW - 7 * DAY + i * step for i in range(84)]
    counts = []
    for i, t in enumerate(times):
        day = 7 <= (t % DAY) / 3600 < 22
        counts.append(float(_poisson(rng, (8.0 if day else 0.8) * (3 if i >= 60 else 1))))
    found = detect_change_points(counts, timestamps=times, transform="counts")
    assert [c.index for c in found if abs(c.index - 60) <= 4], found
    halves = [c / 2 + 0.25 for c in counts]
    assert detect_change_points(halves, timestamps=times, transform="counts") == (
        detect_change_points(halves, timestamps=times)
    )
