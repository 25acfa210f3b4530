"""The commands demo, dashboard, report, status, purge and doctor, run through the real group:
help with examples, missing or empty data, bad input, and what each one does."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import sounding
from sounding import MetricSnapshot, MetricType
from sounding.presentation.cli import accept_data_dir_everywhere, main
from sounding.presentation.cli_main import COMMANDS, register
from sounding.testing import reset

# As cli.py does once the commands are registered there (idempotent).
register(main)
accept_data_dir_everywhere(main)

NAMES = [c.name for c in COMMANDS]


def run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, input=stdin, catch_exceptions=False)


def one_line_error(result: Result) -> str:
    """The error a failed command printed: exactly one line on stderr, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def _fill(data_dir: Path) -> None:
    """A few hours of data ending now, plus an internal failure count."""
    sounding.configure(app_name="cli-test", data_dir=str(data_dir))
    sounding.histogram("app.op.duration", unit="ms")
    now = time.time()
    for i in range(120):
        ts = now - 6 * 3600 + i * 180
        sounding.record(MetricSnapshot(MetricType.HISTOGRAM, "app.op.duration", 50.0 + i % 7, ts))
        sounding.record(MetricSnapshot(MetricType.COUNTER, "app.requests", 1.0, ts))
    sounding.record(
        MetricSnapshot(MetricType.COUNTER, "sounding.internal.events_dropped", 4.0, now - 60)
    )
    assert sounding.flush()
    # The commands run as a fresh process would: settings from the environment.
    reset()


@pytest.fixture
def filled(data_dir: Path) -> Path:
    _fill(data_dir)
    return data_dir


@pytest.mark.parametrize("name", NAMES)
def test_every_command_has_help_with_an_example(name: str) -> None:
    """``--help`` works for each command and shows at least one example."""
    result = run(name, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output
    assert f"sounding {name}" in result.output or f"dir {name}" in result.output


@pytest.mark.parametrize("name", ["dashboard", "report"])
@pytest.mark.parametrize("state", ["missing", "empty", "file"])
def test_reading_commands_explain_a_missing_store(
    tmp_path: Path, name: str, state: str
) -> None:
    """Without a store, dashboard and report fail with one helpful line and status 1."""
    target = tmp_path / "data"
    if state == "empty":
        target.mkdir()
    elif state == "file":
        target.write_text("not a directory")
    result = run("--data-dir", str(target), name)
    assert result.exit_code != 0
    if state == "file":
        # The group's --data-dir option rejects it (click's usage error names the path).
        assert result.exit_code == 2
        assert f"'{target}' is a file" in result.stderr
        return
    line = one_line_error(result)
    assert str(target) in line
    assert "sounding demo" in line


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("status", "none yet"),
        ("purge", "nothing to purge"),
        ("doctor", "does not exist"),
    ],
)
def test_housekeeping_commands_accept_a_missing_directory(
    tmp_path: Path, name: str, expect: str
) -> None:
    """status, purge and doctor say there is nothing yet, and succeed."""
    result = run("--data-dir", str(tmp_path / "nothing"), name)
    assert result.exit_code == 0, result.output
    assert expect in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["dashboard", "--since", "yesterday-ish"],
        ["dashboard", "--since", "2999-01-01"],
        ["report", "--since", "forever"],
    ],
)
def test_bad_windows_are_one_line_errors(filled: Path, args: list[str]) -> None:
    """An unreadable or future ``--since`` is a one-line usage error naming ``since``."""
    result = run("--data-dir", str(filled), *args)
    assert result.exit_code == 2
    assert "since" in one_line_error(result)


@pytest.mark.parametrize(
    "args",
    [
        ["demo", "--days", "1"],
        ["demo", "--days", "many"],
        ["demo", "--seed", "x"],
        ["dashboard", "--width", "10"],
        ["dashboard", "--format", "xml"],
        ["status", "--format", "yaml"],
    ],
)
def test_bad_options_are_usage_errors(args: list[str]) -> None:
    """Invalid option values are rejected by click with status 2 and no traceback."""
    result = run(*args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_dashboard_shows_metrics_and_internal_counts(filled: Path) -> None:
    """The dashboard lists the recorded metrics and what sounding itself dropped."""
    result = run("--data-dir", str(filled), "dashboard", "--width", "160")
    assert result.exit_code == 0, result.output
    assert "app.op.duration" in result.output
    assert "app.requests" in result.output
    assert "events_dropped 4" in result.output


def test_dashboard_json_is_machine_readable(filled: Path) -> None:
    """``--format json`` prints the model: rows with their numbers."""
    result = run("--data-dir", str(filled), "dashboard", "--format", "json")
    data = json.loads(result.output)
    names = {r["name"] for r in data["rows"]}
    assert names == {"app.op.duration", "app.requests"}
    assert data["internal"] == {"events_dropped": 4.0}


def test_report_writes_a_private_html_file(filled: Path, tmp_path: Path) -> None:
    """``report -o`` writes one HTML file readable only by its owner."""
    out = tmp_path / "r.html"
    result = run("--data-dir", str(filled), "report", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_status_reports_location_level_reason_and_drops(filled: Path) -> None:
    """status says where the data is, what is collected, the level and why, and the drops."""
    result = run(
        "--data-dir", str(filled), "status", "--format", "json", env={"DO_NOT_TRACK": "1"}
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["data_dir"] == str(filled)
    # The name the application configured (kept in the store), not the directory's.
    assert info["app_name"] == "cli-test"
    assert info["app_telemetry_level"] == "off"
    assert info["app_telemetry_level_set"].endswith("Z")
    assert info["exists"] is True
    assert info["size_bytes"] > 0
    assert {m["name"] for m in info["metrics"]} == {"app.op.duration", "app.requests"}
    assert info["telemetry_level"] == "off"
    assert "DO_NOT_TRACK" in info["telemetry_reason"]
    assert info["dropped"] == {"events_dropped": 4.0}
    assert "scrubbed" in info["would_send_if_enabled"]["error"]


def test_status_table_for_people(filled: Path) -> None:
    """The default output is a readable summary with the collected metrics."""
    result = run("--data-dir", str(filled), "status")
    assert result.exit_code == 0
    for text in ("Data directory", "Remote telemetry", "Dropped / failed", "events_dropped: 4",
                 "app.op.duration"):
        assert text in result.output


def test_purge_asks_and_keeps_data_on_no(filled: Path) -> None:
    """Without --yes purge asks; answering no deletes nothing and exits non-zero."""
    result = run("--data-dir", str(filled), "purge", stdin="n\n")
    assert result.exit_code == 1
    assert (filled / "telemetry.db").exists()


def test_purge_deletes_only_sounding_files(filled: Path) -> None:
    """purge --yes removes the store and its companions, never other files."""
    (filled / "notes.txt").write_text("mine")
    (filled / "events.jsonl").write_text("{}\n")
    result = run("--data-dir", str(filled), "purge", "--yes")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in filled.iterdir()) == ["notes.txt"]


def test_purge_confirmed_removes_the_directory(filled: Path) -> None:
    """Answering yes deletes everything and the then-empty directory."""
    result = run("--data-dir", str(filled), "purge", stdin="y\n")
    assert result.exit_code == 0, result.output
    assert not filled.exists()


def test_doctor_passes_a_healthy_store(filled: Path) -> None:
    """A fresh store passes the integrity check; the recorded drops are pointed out."""
    os.chmod(filled, 0o700)
    result = run("--data-dir", str(filled), "doctor")
    assert result.exit_code == 0, result.output
    assert "store integrity: PRAGMA integrity_check: ok" in result.output
    assert "events_dropped: 4" in result.output


def test_doctor_fails_a_corrupt_store_with_a_fix(tmp_path: Path) -> None:
    """A store that is not SQLite fails the check, exits 1 and says how to fix it."""
    d = tmp_path / "data"
    d.mkdir(mode=0o700)
    (d / "telemetry.db").write_bytes(b"this is not a database" * 100)
    result = run("--data-dir", str(d), "doctor")
    assert result.exit_code == 1
    assert "store integrity" in result.output
    assert "fix: move it aside" in result.output


def test_doctor_warns_about_open_permissions(filled: Path) -> None:
    """A data directory others can read is a warning with the chmod that fixes it."""
    os.chmod(filled, 0o755)
    result = run("--data-dir", str(filled), "doctor")
    assert result.exit_code == 0
    assert f"fix: chmod 700 {filled}" in result.output


def test_demo_fills_a_store_and_flags_the_regression(tmp_path: Path) -> None:
    """The demo command simulates, prints where the data is and shows the flagged export."""
    target = tmp_path / "demo"
    result = run("demo", "--days", "2", "--data-dir", str(target))
    assert result.exit_code == 0, result.output
    assert str(target) in result.stderr
    assert "regression(s) past" in result.output
    assert "recorder.export.duration" in result.output
    assert "FIRING" in result.output
    assert f"--data-dir {target} dashboard" in result.output
    assert (target / "telemetry.db").exists()


def test_demo_uses_the_global_data_dir_when_typed(tmp_path: Path) -> None:
    """``sounding --data-dir D demo`` puts the demo in D (the environment variable does not)."""
    target = tmp_path / "typed"
    result = run("--data-dir", str(target), "demo", "--days", "2", "--no-dashboard")
    assert result.exit_code == 0, result.output
    assert (target / "telemetry.db").exists()


def test_demo_refuses_a_directory_with_other_data(tmp_path: Path) -> None:
    """The demo will not overwrite a directory it did not create: one line, status 2."""
    (tmp_path / "precious.txt").write_text("keep")
    result = run("demo", "--days", "2", "--data-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "will not overwrite" in one_line_error(result)
    assert (tmp_path / "precious.txt").read_text() == "keep"


def test_doctor_reports_a_broken_configuration(tmp_path: Path) -> None:
    """A configuration that does not load is a failed check with its fix, not a crash."""
    result = run("doctor", env={"SOUNDING_CONFIG": str(tmp_path / "missing.toml")})
    assert result.exit_code == 1
    assert "configuration: SOUNDING_CONFIG=" in result.output  # names the env variable
    assert "fix: correct the setting named above" in result.output


def test_status_with_a_broken_configuration_is_one_line(tmp_path: Path) -> None:
    """status names the bad setting in one line and exits 2."""
    result = run("status", env={"SOUNDING_TELEMETRY": "loud"})
    assert result.exit_code == 2
    assert "SOUNDING_TELEMETRY" in one_line_error(result)


@pytest.mark.parametrize("name", ["dashboard", "status", "doctor"])
def test_data_dir_also_after_the_command(filled: Path, name: str) -> None:
    """``sounding CMD --data-dir D`` reads D like ``sounding --data-dir D CMD``."""
    os.chmod(filled, 0o700)
    result = run(name, "--data-dir", str(filled))
    assert result.exit_code == 0, result.output
    assert str(filled) in result.output or "app.op.duration" in result.output


def test_demo_data_dir_after_the_command_is_the_demos(tmp_path: Path) -> None:
    """``sounding demo --data-dir D`` puts the demo in D."""
    target = tmp_path / "after"
    result = run("demo", "--days", "2", "--no-dashboard", "--data-dir", str(target))
    assert result.exit_code == 0, result.output
    assert (target / "telemetry.db").exists()


def test_status_without_app_lists_the_apps_found(tmp_path: Path) -> None:
    """Without --app or --data-dir, status lists the apps that have data instead of
    looking in .../sounding/sounding."""
    root = tmp_path / "xdg" / "sounding"
    for app in ("alpha", "beta"):
        (root / app).mkdir(parents=True)
        (root / app / "telemetry.db").write_bytes(b"")
    (root / "empty").mkdir()
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg"), "SOUNDING_DATA_DIR": None,
           "SOUNDING_APP_NAME": None, "SOUNDING_CONFIG": None}  # fmt: skip
    result = CliRunner().invoke(main, ["status", "--format", "json"], env=env)  # type: ignore[arg-type]
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"apps": ["alpha", "beta"]}
    result = CliRunner().invoke(main, ["query", "x"], env=env)  # type: ignore[arg-type]
    assert result.exit_code == 1
    assert "alpha, beta" in result.stderr


@pytest.mark.parametrize("command", ["status", "doctor"])
def test_status_and_doctor_speak_csv_and_json(filled: Path, command: str) -> None:
    """status and doctor take --format json and csv like every data command."""
    os.chmod(filled, 0o700)
    as_json = run("--data-dir", str(filled), command, "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)
    as_csv = run("--data-dir", str(filled), command, "--format", "csv")
    assert as_csv.exit_code == 0
    header = as_csv.stdout.splitlines()[0]
    assert header == ("key,value" if command == "status" else "name,level,detail,fix")


def test_purge_lists_and_removes_outbox_and_demo_rules_then_demo_works(tmp_path: Path) -> None:
    """purge deletes the outbox and the alerts.toml the demo wrote, listing them; demo then
    runs again in the same directory."""
    target = tmp_path / "demo"
    first = run("demo", "--days", "2", "--data-dir", str(target), "--no-dashboard")
    assert first.exit_code == 0, first.output
    (target / "outbox.db").write_bytes(b"")
    (target / "unsaved.123.json").write_text("{}")
    result = run("--data-dir", str(target), "purge", "--yes")
    assert result.exit_code == 0, result.output
    for name in ("telemetry.db", "outbox.db", "alerts.toml", "SOUNDING_DEMO", "unsaved.123.json"):
        assert f"  {name}" in result.output
    assert not target.exists()
    again = run("demo", "--days", "2", "--data-dir", str(target), "--no-dashboard")
    assert again.exit_code == 0, again.output


def test_purge_keeps_an_alerts_file_the_user_wrote(filled: Path) -> None:
    """An alerts.toml outside a demo directory is the user's: purge leaves it."""
    (filled / "alerts.toml").write_text("[[alerts]]\n")
    result = run("--data-dir", str(filled), "purge", "--yes")
    assert result.exit_code == 0
    assert sorted(p.name for p in filled.iterdir()) == ["alerts.toml"]


def test_events_jsonl_and_export_events_have_one_shape(data_dir: Path) -> None:
    """Each events.jsonl line and the matching `export --events` NDJSON line hold the same
    object; `events --format ndjson` gives that shape too."""
    sounding.configure(app_name="cli-test", data_dir=str(data_dir))
    log = sounding.get_logger("app")
    log.warning("export.slow", format="wav", seconds=3.5)
    log.info("take.recorded", input="usb")
    assert sounding.flush()
    reset()
    lines = [json.loads(x) for x in (data_dir / "events.jsonl").read_text().splitlines()]
    exported = run("--data-dir", str(data_dir), "export", "--events", "--format", "ndjson")
    viewed = run("--data-dir", str(data_dir), "events", "--format", "ndjson")

    def as_set(text: str) -> list[str]:
        return sorted(json.dumps(json.loads(x), sort_keys=True) for x in text.splitlines())

    assert sorted(json.dumps(x, sort_keys=True) for x in lines) == as_set(exported.stdout)
    assert as_set(viewed.stdout) == as_set(exported.stdout)
    assert {x["event"] for x in lines} >= {"export.slow", "take.recorded"}


def test_demo_closing_hints_run_as_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command the demo suggests at the end runs (exit 0) as printed."""
    import shlex

    monkeypatch.chdir(tmp_path)  # the report hint writes a file here

    target = tmp_path / "demo"
    result = run("demo", "--days", "3", "--data-dir", str(target))
    assert result.exit_code == 0, result.output
    hints = result.stdout.split("Explore it:", 1)[1].strip().splitlines()
    assert len(hints) >= 3
    for line in hints:
        words = shlex.split(line)
        assert words[0].endswith("sounding")
        hinted = CliRunner().invoke(main, words[1:], catch_exceptions=False)
        assert hinted.exit_code == 0, (line, hinted.output)


def test_status_shows_and_purge_removes_the_users_choice(filled: Path) -> None:
    """The user's stored telemetry choice (consent.json) is shown by status and purged."""
    from sounding.core.consent import ConsentChoice, write_choice
    from sounding.core.types import TelemetryLevel

    write_choice(filled, ConsentChoice(TelemetryLevel.CRASH, decided=1767225600.0))
    info = json.loads(run("--data-dir", str(filled), "status", "--format", "json").stdout)
    assert info["user_choice"] == {
        "level": "crash", "source": "user", "decided": "2026-01-01T00:00:00Z", "echo": False,
    }  # fmt: skip
    table = run("--data-dir", str(filled), "status").stdout
    assert "at most crash (user, 2026-01-01T00:00:00Z)" in table
    result = run("--data-dir", str(filled), "purge", "--yes")
    assert "  consent.json" in result.output
    assert not (filled / "consent.json").exists()


def test_purge_lists_and_removes_the_exporter_files(filled: Path) -> None:
    """The exporters' install-id and export.lock are listed by purge and deleted with the rest."""
    from sounding.exporters._convert import install_id
    from sounding.storage.outbox import ExportLock

    pseudonym = install_id(filled)
    lock = ExportLock(filled)
    assert lock.acquire()
    lock.release()
    (filled / f".install-id.{os.getpid()}").write_text("left by a crash\n")
    result = run("--data-dir", str(filled), "purge", "--yes")
    assert result.exit_code == 0, result.output
    for name in ("install-id", "export.lock", f".install-id.{os.getpid()}"):
        assert f"  {name}\n" in result.output
    assert not filled.exists()
    assert install_id(filled) != pseudonym  # a purged install gets a new pseudonym


def test_dashboard_tag_with_an_unknown_key_fails(filled: Path) -> None:
    """dashboard --tag with a tag key no series has exits 2 naming it."""
    ok = run("--data-dir", str(filled), "dashboard", "--tag", "nosuch=1")
    assert ok.exit_code == 2
    assert "no tag key 'nosuch'" in ok.stderr
