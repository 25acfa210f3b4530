"""The demo runs for real into a temporary store: series, regression, privacy, determinism."""

from __future__ import annotations

from pathlib import Path

import pytest

from sounding.exceptions import InvalidValueError
from sounding.presentation.dashboard import build_model
from sounding.presentation.demo import (
    DEMO_MARKER,
    EXPORT_ALERT_MS,
    NEW_VERSION,
    OLD_VERSION,
    PLANTED_EMAILS,
    PLANTED_PATHS,
    PLANTED_USERS,
    REGRESSED_METRIC,
    DemoResult,
    prepare_demo_dir,
    run_demo,
)
from sounding.storage import open_store
from sounding.testing import reset

#: A fixed end of the simulation, so runs are comparable (2026-02-01T00:00Z).
NOW = 1_769_904_000.0

EXPECTED = {
    "recorder.sessions",
    "recorder.session.length",
    "recorder.recordings",
    "recorder.recording.length",
    "recorder.device.open.duration",
    "recorder.processing.duration",
    "recorder.export.duration",
    "recorder.exports",
    "recorder.save.duration",
    "recorder.save.attempts",
    "recorder.export.failures",
    "recorder.memory",
    "recorder.ui.frame_time",
}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    """One 4-day demo, shared by the read-only tests of this module."""
    reset()
    calls: list[tuple[int, int]] = []
    result = run_demo(
        days=4,
        seed=1,
        data_dir=tmp_path_factory.mktemp("demo") / "data",
        now=NOW,
        progress=lambda done, total: calls.append((done, total)),
    )
    reset()
    assert calls
    assert calls[-1][0] == calls[-1][1] == result.sessions
    return result


def test_store_has_the_expected_series(demo_run: DemoResult) -> None:
    """Every instrument of the recorder ends up in the store, under both app versions."""
    with open_store(demo_run.data_dir) as store:
        series = store.series()
    names = {s.name for s in series}
    assert names >= EXPECTED
    versions = {s.tags.get("app_version") for s in series if s.name == REGRESSED_METRIC}
    assert versions == {OLD_VERSION, NEW_VERSION}
    assert demo_run.sessions > 50
    assert demo_run.operations > 1000


def test_regression_is_flagged_and_nothing_else(demo_run: DemoResult) -> None:
    """The dashboard flags the export slowdown of 1.5.0, and only that."""
    with open_store(demo_run.data_dir) as store:
        model = build_model(store, now=demo_run.end)
    assert [r.name for r in model.flagged] == [REGRESSED_METRIC]
    row = model.row(REGRESSED_METRIC)
    assert row is not None
    assert row.change is not None
    assert row.change > 0.25


def test_release_splits_the_versions_at_the_last_day(demo_run: DemoResult) -> None:
    """Exports before the release are 1.4.2, after it 1.5.0, and 1.5.0 is slower at p95."""
    with open_store(demo_run.data_dir) as store:
        old = store.distribution(REGRESSED_METRIC, tags={"app_version": OLD_VERSION})
        new = store.distribution(REGRESSED_METRIC, tags={"app_version": NEW_VERSION})
        late_old = store.distribution(
            REGRESSED_METRIC, demo_run.release_time, demo_run.end, {"app_version": OLD_VERSION}
        )
    assert old.count > 0
    assert new.count > 0
    assert late_old.count == 0
    assert (new.quantile(0.95) or 0) > 1.2 * (old.quantile(0.95) or 0)


def test_no_planted_personal_data_in_any_file(demo_run: DemoResult) -> None:
    """The e-mails, user names and home paths in the app's error messages are nowhere on disk."""
    files = [p for p in demo_run.data_dir.iterdir() if p.is_file()]
    assert {"telemetry.db", "events.jsonl"} <= {p.name for p in files}
    planted = [s.encode() for s in (*PLANTED_EMAILS, *PLANTED_PATHS, *PLANTED_USERS)]
    for path in files:
        raw = path.read_bytes()
        for secret in planted:
            assert secret not in raw, f"{secret!r} found in {path.name}"


def test_same_seed_same_data(tmp_path: Path, demo_run: DemoResult) -> None:
    """A seed fixes the data: the same seed and end give the same percentiles and counts."""
    again = run_demo(days=4, seed=1, data_dir=tmp_path / "again", now=NOW)
    other = run_demo(days=4, seed=2, data_dir=tmp_path / "other", now=NOW)
    assert (again.sessions, again.operations) == (demo_run.sessions, demo_run.operations)

    def fingerprint(data_dir: Path) -> list[tuple[str, float]]:
        with open_store(data_dir) as store:
            return [
                (p.timestamp.isoformat(), round(p.value, 6))
                for p in store.query(REGRESSED_METRIC, interval="1d", stat="p95")
            ]

    assert fingerprint(again.data_dir) == fingerprint(demo_run.data_dir)
    assert fingerprint(other.data_dir) != fingerprint(demo_run.data_dir)


def test_rerun_replaces_the_previous_demo(tmp_path: Path) -> None:
    """Running again in the same directory starts from scratch instead of adding up."""
    first = run_demo(days=2, seed=3, data_dir=tmp_path, now=NOW)
    second = run_demo(days=2, seed=3, data_dir=tmp_path, now=NOW)
    with open_store(tmp_path) as store:
        [total] = store.query("recorder.sessions", stat="sum")
    assert total.value == second.sessions == first.sessions
    assert (tmp_path / DEMO_MARKER).exists()


def test_refuses_a_directory_with_other_data(tmp_path: Path) -> None:
    """The demo never overwrites a directory it did not create (real data may live there)."""
    (tmp_path / "telemetry.db").write_bytes(b"real data")
    with pytest.raises(InvalidValueError, match="will not overwrite"):
        prepare_demo_dir(tmp_path)
    assert (tmp_path / "telemetry.db").read_bytes() == b"real data"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"days": 1}, "days"),
        ({"days": 91}, "days"),
        ({"days": "3"}, "days"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_arguments_raise_naming_the_field(
    tmp_path: Path, kwargs: dict[str, object], field: str
) -> None:
    """Out-of-range days or a non-integer seed raise at once, naming the argument."""
    with pytest.raises(InvalidValueError, match=field):
        run_demo(data_dir=tmp_path, **kwargs)  # type: ignore[arg-type]


def test_errors_are_recorded_scrubbed_and_sessions_kept(demo_run: DemoResult) -> None:
    """The failures do reach the store as events, with the personal parts replaced, and
    every simulated session is in the sessions table with its app version."""
    with open_store(demo_run.data_dir) as store:
        errors = [e for e in store.events(level="warning", limit=None) if e.get("exc_type")]
        sessions = store.sessions(limit=None)
    messages = " ".join(str(e.get("message", "")) for e in errors)
    assert "Permission denied: '~/Music/" in messages
    assert "cloud sync failed for <email>" in messages
    assert len(sessions) == demo_run.sessions
    assert {s.app_version for s in sessions} == {OLD_VERSION, NEW_VERSION}


def test_alert_rule_fired_after_the_release(demo_run: DemoResult) -> None:
    """The demo's alerts.toml rule, evaluated every simulated hour, is firing at the end,
    and it started firing only after 1.5.0 shipped (no false alarm before)."""
    assert (demo_run.data_dir / "alerts.toml").is_file()
    with open_store(demo_run.data_dir) as store:
        model = build_model(store, now=demo_run.end)
    [alert] = model.alerts
    assert alert.name == "slow exports"
    assert alert.evaluated
    assert alert.firing
    assert alert.since is not None
    assert alert.since > demo_run.release_time
    # Hysteresis: once firing it stays so until p95 drops under the recovery threshold.
    assert alert.value is not None
    assert alert.value > EXPORT_ALERT_MS - 100
