"""The ``sounding query`` and ``sounding export`` commands, on real store files."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import sounding
from sounding.core.clock import set_clock
from sounding.core.sketch import QuantileSketch
from sounding.core.types import IntervalAggregate, MetricType
from sounding.presentation.cli import main
from sounding.presentation.output import csv_safe, emit
from sounding.storage import SQLiteSink
from sounding.testing import ManualClock

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data dir holding two days of a histogram (two versions), a counter and events."""
    set_clock(ManualClock(T0 + 2 * 86400))
    d = tmp_path / "data"
    sink = SQLiteSink(d)
    aggs = []
    for i in range(48):
        for version in ("1.0", "2.0"):
            sk = QuantileSketch()
            values = [float(v) * (2 if version == "2.0" else 1) for v in range(1, 101)]
            sk.add_many(values)
            aggs.append(
                IntervalAggregate(
                    "export.duration", MetricType.HISTOGRAM, (("version", version),),
                    T0 + 3600 * i, T0 + 3600 * i + 60, count=100, sum=sum(values),
                    min=min(values), max=max(values), sketch=sk,
                )
            )  # fmt: skip
        aggs.append(
            IntervalAggregate(
                "exports", MetricType.COUNTER, (("format", "=cmd|' /C calc'!A0"),),
                T0 + 3600 * i, T0 + 3600 * i + 60, count=1, sum=2.0,
            )
        )  # fmt: skip
    events = [
        {"timestamp": T0 + 5, "level": "error", "category": "error", "event": "boom",
         "logger": "app", "session_id": "s1", "detail": "@SUM(A1)"},
    ]  # fmt: skip
    sink.write(aggs, events)
    sink.close()
    return d


def run(data_dir: Path, *args: str) -> click.testing.Result:
    return CliRunner().invoke(main, ["--data-dir", str(data_dir), *args])


@pytest.mark.parametrize("command", [[], ["query"], ["export"]])
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    """--help works for the group and each command and shows an example."""
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output
    assert "sounding " in result.output


def test_query_json_percentile_per_group(data_dir: Path) -> None:
    """query --stat p95 --group-by gives one value per group, from merged sketches."""
    result = run(
        data_dir, "query", "export.duration", "--stat", "p95", "--since", "2026-01-01",
        "--until", "2026-01-02", "--group-by", "version", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["group"] for r in rows] == ["1.0", "2.0"]
    assert rows[0]["value"] == pytest.approx(95, rel=0.01)
    assert rows[1]["value"] == pytest.approx(190, rel=0.01)
    assert rows[0]["start"] == "2026-01-01T00:00:00Z"
    assert rows[0]["count"] == 2400


def test_query_interval_tag_and_table(data_dir: Path) -> None:
    """--interval and --tag filter; the default table format prints one row per interval."""
    result = run(
        data_dir, "query", "export.duration", "--stat", "max", "--since", "2d",
        "--interval", "1d", "--tag", "version=2.0",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.count("200") == 2
    assert "2026-01-02T00:00:00Z" in result.stdout


def test_query_csv_defuses_formulas(data_dir: Path) -> None:
    """CSV output prefixes cells that a spreadsheet would run as formulas."""
    result = run(
        data_dir, "query", "exports", "--stat", "sum", "--since", "2d", "--group-by", "format",
        "--format", "csv",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [header, row] = list(csv.reader(io.StringIO(result.stdout)))
    assert header == ["start", "end", "group", "sum", "count"]
    assert row[2] == "'=cmd|' /C calc'!A0"
    assert row[3] == "96"


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["query", "export.duration", "--since", "yesterday"], 2, "--since="),
        (["query", "export.duration", "--stat", "p200"], 2, "stat="),
        (["query", "export.duration", "--interval", "0"], 2, "--interval="),
        (["query", "export.duration", "--tag", "novalue"], 2, "KEY=VALUE"),
        (["query", "exports", "--stat", "p95"], 2, "counter"),
        (["query", "no.such.metric"], 1, "no metric named 'no.such.metric'"),
        (["export", "--format", "xml"], 2, "xml"),
    ],
)
def test_errors_are_one_clear_line(data_dir: Path, args: list[str], code: int, needle: str) -> None:
    """Bad input: a one-line message on stderr, exit 2 for usage (1 otherwise), no traceback."""
    result = run(data_dir, *args)
    assert result.exit_code == code
    assert needle in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_missing_store_says_where_it_looked(tmp_path: Path) -> None:
    """A data dir without a store: exit 1 and a message naming the path."""
    result = run(tmp_path / "empty", "query", "x")
    assert result.exit_code == 1
    assert str(tmp_path / "empty" / "telemetry.db") in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "empty").exists()  # reading never creates a store


def test_data_dir_from_environment(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SOUNDING_DATA_DIR chooses the store when --data-dir is not given."""
    monkeypatch.setenv("SOUNDING_DATA_DIR", str(data_dir))
    result = CliRunner().invoke(main, ["query", "exports", "--stat", "count", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["value"] == 48


def test_corrupt_store_is_reported_not_moved(tmp_path: Path) -> None:
    """A corrupt store: reading says so and exits 1; only a writer ever moves it aside."""
    garbage = b"garbage" * 1000
    (tmp_path / "telemetry.db").write_bytes(garbage)
    result = run(tmp_path, "export")
    assert result.exit_code == 1
    assert "damaged" in result.stderr
    assert "sounding doctor" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["telemetry.db"]
    assert (tmp_path / "telemetry.db").read_bytes() == garbage


def test_read_commands_work_on_a_read_only_copy(data_dir: Path, tmp_path: Path) -> None:
    """query, export, events and status read a store in a read-only directory, changing
    nothing in it."""
    ro = tmp_path / "ro"
    ro.mkdir()
    for p in data_dir.iterdir():
        (ro / p.name).write_bytes(p.read_bytes())
    for p in ro.iterdir():
        p.chmod(0o400)
    ro.chmod(0o500)
    before = {p.name: p.read_bytes() for p in ro.iterdir()}
    try:
        for args in (
            ["query", "export.duration", "--stat", "p95"],
            ["export", "--metric", "exports"],
            ["events", "--since", "2026-01-01"],
            ["status"],
        ):
            result = run(ro, *args)
            assert result.exit_code == 0, (args, result.output)
        after = {p.name: p.read_bytes() for p in ro.iterdir()}
    finally:
        ro.chmod(0o700)
    # SQLite readers may add the WAL index files; the store itself is untouched.
    assert after["telemetry.db"] == before["telemetry.db"]
    assert set(after) - set(before) <= {"telemetry.db-shm", "telemetry.db-wal"}
    assert not after.get("telemetry.db-wal")


RECORD_KEYS = ["name", "type", "tags", "start", "end", "count", "sum", "min", "max", "last",
               "p50", "p95", "p99"]  # fmt: skip


def test_export_json_records(data_dir: Path) -> None:
    """export --format json: every record has the documented keys, ISO times, nulls."""
    result = run(data_dir, "export", "--metric", "export.duration", "--since", "2026-01-01T23:00Z")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert len(records) == 2 * 25
    first = records[0]
    assert list(first) == RECORD_KEYS
    assert first["start"] == "2026-01-01T23:00:00Z"
    assert first["end"] == "2026-01-01T23:01:00Z"
    assert first["p50"] == pytest.approx(50, rel=0.01)
    assert first["last"] is None


def test_export_ndjson_and_csv_to_private_file(data_dir: Path, tmp_path: Path) -> None:
    """export -o writes a private file; NDJSON one record a line; CSV defused."""
    out = tmp_path / "out.csv"
    result = run(data_dir, "export", "--format", "csv", "--metric", "exports", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 48
    assert rows[0]["p95"] == ""
    assert rows[0]["sum"] == "2"
    assert rows[0]["tags"].startswith("{")
    result = run(data_dir, "export", "--format", "ndjson")
    lines = result.stdout.splitlines()
    assert len(lines) == 48 * 3
    assert all(list(json.loads(line)) == RECORD_KEYS for line in lines)


def test_export_events(data_dir: Path) -> None:
    """export --events exports events with their fields; CSV cells are defused."""
    result = run(data_dir, "export", "--events", "--format", "csv")
    assert result.exit_code == 0, result.output
    [row] = list(csv.DictReader(io.StringIO(result.stdout)))
    assert row["event"] == "boom"
    assert row["timestamp"] == "2026-01-01T00:00:05Z"
    assert json.loads(row["fields"]) == {"detail": "@SUM(A1)"}
    result = run(data_dir, "export", "--events", "--format", "ndjson")
    assert json.loads(result.stdout) == {
        "timestamp": T0 + 5, "level": "error", "category": "error", "event": "boom",
        "logger": "app", "session_id": "s1", "detail": "@SUM(A1)",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"), ("\tx", "'\tx"),
     ("\rx", "'\rx"), ("ok", "ok"), ("", "")],
)  # fmt: skip
def test_csv_safe(cell: str, expected: str) -> None:
    """Cells starting with = + - @ tab or CR get a leading quote."""
    assert csv_safe(cell) == expected


def test_table_shows_control_characters_escaped() -> None:
    """A table never sends stored control characters (terminal escapes) to the terminal."""
    buf = io.StringIO()
    emit([{"v": "\x1b[2Jgone[bold]"}], ["v"], "table", out=buf)
    assert "\x1b" not in buf.getvalue()
    assert "\\x1b[2Jgone[bold]" in buf.getvalue()


def test_python_dash_m_runs_the_cli(data_dir: Path) -> None:
    """python -m sounding is the same CLI."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(sounding.__file__).resolve().parents[1])
    out = subprocess.run(
        [sys.executable, "-m", "sounding", "--data-dir", str(data_dir), "query", "--help"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert "Example" in out.stdout
