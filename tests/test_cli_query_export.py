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
from hypothesis import given
from hypothesis import strategies as st

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
    [("=1+1", "'=1+1"), ("+1+1", "'+1+1"), ("-1+cmd", "'-1+cmd"), ("@x", "'@x"),
     ("\tx", "'\tx"), ("\rx", "'\rx"), ("ok", "ok"), ("", ""), ("-1", "-1"),
     ("-0.164735", "-0.164735"), ("+3", "+3"), ("-1e-05", "-1e-05"), ("-1\r=2", "'-1\r=2")],
)  # fmt: skip
def test_csv_safe(cell: str, expected: str) -> None:
    """Cells starting with = + - @ tab or CR get a leading quote, unless a plain number."""
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


def test_csv_quotes_carriage_returns_so_no_formula_cell_appears() -> None:
    """A cell with \r or \n is quoted: a spreadsheet import keeps it one cell, no =1+1 cell."""
    buf = io.StringIO()
    emit([{"a": "x\r=1+1", "b": "y\n@SUM(1)"}], ["a", "b"], "csv", out=buf)
    text = buf.getvalue()
    assert text == 'a,b\n"x\r=1+1","y\n@SUM(1)"\n'
    for newline in ("", None):
        rows = list(csv.reader(io.StringIO(text, newline=newline)))
        assert rows == [["a", "b"], ["x\r=1+1", "y\n@SUM(1)"]] or rows[1][0].startswith("x")
        assert not any(cell.startswith(("=", "@")) for row in rows for cell in row)


def test_query_csv_with_a_cr_in_a_tag_value_stays_one_row(tmp_path: Path) -> None:
    """query --format csv of a series whose tag holds \r=1+1 gives one record per row."""
    set_clock(ManualClock(T0 + 3600))
    sink = SQLiteSink(tmp_path)
    sink.write(
        [IntervalAggregate("c", MetricType.COUNTER, (("k", "v\r=1+1"),), T0, T0 + 60,
                           count=1, sum=1.0)],
        [],
    )  # fmt: skip
    sink.close()
    result = run(tmp_path, "query", "c", "--group-by", "k", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout, newline="")))
    assert rows[0] == ["start", "end", "group", "sum", "count"]
    assert rows[1][2] == "v\r=1+1"
    assert len(rows) == 2


def test_query_stat_count_is_one_column(data_dir: Path) -> None:
    """--stat count prints one column named count, in CSV and in the table."""
    result = run(data_dir, "query", "export.duration", "--stat", "count", "--format", "csv")
    assert result.exit_code == 0, result.output
    [header, row] = list(csv.reader(io.StringIO(result.stdout)))
    assert header == ["start", "end", "count"]
    assert row[2] == str(48 * 200)


def test_query_counter_defaults_to_sum_and_rate_names_its_unit(data_dir: Path) -> None:
    """A counter query without --stat gives the sum; --stat rate says it is per second."""
    result = run(data_dir, "query", "exports", "--format", "json")
    [point] = json.loads(result.stdout)
    assert (point["stat"], point["value"]) == ("sum", 96.0)
    result = run(data_dir, "query", "exports", "--stat", "rate", "--interval", "day",
                 "--format", "csv")  # fmt: skip
    assert result.stdout.splitlines()[0] == "start,end,rate_per_s,count"
    table = run(data_dir, "query", "exports", "--stat", "rate", "--interval", "day")
    assert "/h" in table.stdout


def test_table_shows_units_and_right_aligns_numbers() -> None:
    """Tables show values with units, numbers right-aligned, times to the second, no
    all-empty column; JSON keeps the raw values."""
    rows = [
        {"when": 1767225600.25, "p95": 1530.0, "n": 5, "blank": None},
        {"when": 1767229200.0, "p95": 14.294, "n": 12345, "blank": None},
    ]
    buf = io.StringIO()
    emit(rows, ["when", "p95", "n", "blank"], "table", out=buf,
         units={"when": "time", "p95": "ms", "n": "count"})  # fmt: skip
    text = buf.getvalue()
    assert "blank" not in text
    assert "2026-01-01T00:00:00Z" in text
    assert "1.53 s" in text
    assert "14.3 ms" in text
    [first] = [ln for ln in text.splitlines() if "1.53 s" in ln]
    [second] = [ln for ln in text.splitlines() if "14.3 ms" in ln]
    # Right-aligned: the values end in the same column.
    assert first.index("1.53 s") + len("1.53 s") == second.index("14.3 ms") + len("14.3 ms")
    buf = io.StringIO()
    emit(rows, ["p95"], "json", out=buf)
    assert json.loads(buf.getvalue())[0]["p95"] == 1530.0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["query", "export.duration", "--tag", "versoin=1.0"], "tag keys: version"),
        (["query", "export.duration", "--tag", "version=9.9"], "version values: 1.0, 2.0"),
        (["query", "export.duration", "--group-by", "nosuch"], "tag keys: version"),
        (["export", "--metric", "nosuch"], "no metric named 'nosuch'"),
        (["export", "--metric", "exports", "--tag", "format=wav"], "format values"),
        (["events", "--name", "nosuch"], "recorded: boom"),
        (["events", "--category", "nosuch"], "recorded: error"),
    ],
)
def test_typos_fail_loudly_listing_what_exists(
    data_dir: Path, args: list[str], needle: str
) -> None:
    """An unknown metric, tag key, tag value or event name exits non-zero, listing what exists."""
    result = run(data_dir, *args)
    assert result.exit_code != 0
    assert needle in result.stderr


def test_errors_name_the_option_not_the_parameter(data_dir: Path) -> None:
    """A range error names --until, never the library's end=."""
    result = run(data_dir, "query", "export.duration", "--since", "2026-01-02", "--until",
                 "2026-01-01")  # fmt: skip
    assert result.exit_code == 2
    assert "--until=" in result.stderr
    assert "end=" not in result.stderr


def test_interval_names_and_too_fine_interval(data_dir: Path) -> None:
    """--interval day works; 10s (finer than the stored 1 min) and 90s are refused by name."""
    day = run(data_dir, "query", "exports", "--interval", "day", "--format", "json")
    assert [p["value"] for p in json.loads(day.stdout)] == [48.0, 48.0]
    for bad in ("10s", "90s"):
        result = run(data_dir, "query", "exports", "--interval", bad)
        assert result.exit_code == 2
        assert "--interval=" in result.stderr
        assert "1 min" in result.stderr


def test_app_and_local_accepted_after_the_subcommand(data_dir: Path) -> None:
    """--app and --local work after the subcommand name, like --data-dir."""
    result = CliRunner().invoke(
        main, ["query", "exports", "--data-dir", str(data_dir), "--app", "x", "--local"]
    )
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["status", "--app", "someapp", "--format", "json"])
    assert json.loads(result.stdout)["app_name"] == "someapp"


def test_export_metric_repeatable_and_tag_filter(data_dir: Path) -> None:
    """export --metric A --metric B exports both; --tag keeps the matching series."""
    result = run(data_dir, "export", "--metric", "exports", "--metric", "export.duration",
                 "--format", "ndjson")  # fmt: skip
    names = {json.loads(line)["name"] for line in result.stdout.splitlines()}
    assert names == {"exports", "export.duration"}
    result = run(data_dir, "export", "--metric", "export.duration", "--tag", "version=2.0",
                 "--format", "ndjson")  # fmt: skip
    tags = [json.loads(line)["tags"] for line in result.stdout.splitlines()]
    assert tags
    assert all(t == {"version": "2.0"} for t in tags)


def test_events_viewer_filters_and_shapes(data_dir: Path) -> None:
    """events shows one line per event; --level filters; ndjson is export --events' shape."""
    result = run(data_dir, "events", "--since", "2026-01-01")
    assert result.exit_code == 0, result.output
    assert "2026-01-01T00:00:05Z" in result.stdout
    assert "ERROR" in result.stdout
    assert "detail=@SUM(A1)" in result.stdout
    none = run(data_dir, "events", "--since", "2026-01-01", "--level", "critical")
    assert "boom" not in none.stdout
    ours = run(data_dir, "events", "--since", "2026-01-01", "--format", "ndjson")
    exported = run(data_dir, "export", "--events", "--format", "ndjson")
    assert ours.stdout == exported.stdout


@given(st.lists(st.text(alphabet=st.sampled_from('ab=+-@,"\r\n\t '), max_size=8), min_size=1,
                max_size=5))  # fmt: skip
def test_csv_line_round_trips_as_one_row_with_no_formula_cell(cells: list[str]) -> None:
    """Any cells (quotes, commas, CR, LF, formula prefixes) read back as exactly one row of
    the defused cells, none starting with a formula character."""
    from sounding.presentation.output import csv_line

    rows = list(csv.reader(io.StringIO(csv_line(cells), newline="")))
    assert rows == [[csv_safe(c) for c in cells]]
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in rows[0])


def test_events_follow_prints_new_events_until_ctrl_c(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--follow prints what is there, then each new event once, and stops cleanly on Ctrl-C."""
    import time

    calls = []

    def fake_sleep(seconds: float) -> None:
        calls.append(seconds)
        if len(calls) == 1:
            sink = SQLiteSink(data_dir)
            sink.write([], [{"timestamp": T0 + 99, "level": "warning", "category": "system",
                             "event": "later", "logger": "app", "session_id": "s1"}])  # fmt: skip
            sink.close()
        if len(calls) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", fake_sleep)
    result = run(data_dir, "events", "--since", "2026-01-01", "--follow")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [ln.split()[3] for ln in lines] == ["boom", "later"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["query", "exports", "--since", "2030-01-01"], "--since='2030-01-01'"),
     (["query", "exports", "--interval", "10s"], "--interval='10s'"),
     (["dashboard", "--since", "2030-01-01"], "--since='2030-01-01'")],
)  # fmt: skip
def test_library_errors_name_the_typed_option(data_dir: Path, args: list[str], needle: str) -> None:
    """Errors raised deep in the library name the option typed, never start=/end=/since=."""
    result = run(data_dir, *args)
    assert result.exit_code == 2
    assert needle in result.stderr
    assert not any(f" {p}=" in result.stderr or result.stderr.startswith(f"Error: {p}=")
                   for p in ("start", "end", "since", "interval"))  # fmt: skip


def test_interval_finer_than_rolled_up_rows_is_refused(tmp_path: Path) -> None:
    """Where retention rolled the 1 min rows up to hours, --interval 5m is refused naming the
    hourly rows and the cutoff; --interval 1h, or a range in the kept part, works."""
    from sounding.core.config import MetricsConfig
    from sounding.storage import open_store

    clock = ManualClock(T0)
    set_clock(clock)
    metrics = MetricsConfig(retention_days=30)
    sink = SQLiteSink(tmp_path, metrics)
    sink.write([IntervalAggregate("c", MetricType.COUNTER, (), T0 + i * 900, T0 + i * 900 + 60,
                                  count=1, sum=1.0) for i in range(4 * 24 * 40)], [])  # fmt: skip
    sink.close()
    clock.set(T0 + 40 * 86400)
    with open_store(tmp_path, metrics=metrics) as store:
        store.maintain()
    refused = run(tmp_path, "query", "c", "--interval", "5m", "--format", "json")
    assert refused.exit_code == 2
    assert "1 h rows for data before 2026-01-11T00:00:00Z" in refused.stderr
    hourly = run(tmp_path, "query", "c", "--interval", "1h", "--format", "json")
    assert hourly.exit_code == 0, hourly.output
    recent = run(tmp_path, "query", "c", "--interval", "5m", "--since", "2026-01-20",
                 "--format", "json")  # fmt: skip
    assert recent.exit_code == 0, recent.output


@pytest.mark.parametrize("io_encoding", ["utf-8", "utf-8:surrogateescape"])
def test_events_with_a_lone_surrogate_print_escaped(tmp_path: Path, io_encoding: str) -> None:
    """`sounding events` shows a stored lone surrogate as its escape, not an encoding error
    (stdout strict, or surrogateescape as Python sets it under a C.UTF-8 locale)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(sounding.__file__).resolve().parents[1])
    env["PYTHONIOENCODING"] = io_encoding
    data = tmp_path / "data"
    write = (
        "import sounding\n"
        f"sounding.configure(data_dir={str(data)!r}, app_name='s')\n"
        "from sounding.collection.log import get_logger\n"
        "get_logger('s').info('take.saved', title='caf\\u00e9 \\ud800 end')\n"
        "sounding.flush()\n"
    )
    subprocess.run([sys.executable, "-c", write], env=env, check=True, timeout=60)
    out = subprocess.run(
        [sys.executable, "-m", "sounding", "--data-dir", str(data), "events", "--since", "1d"],
        capture_output=True, env=env, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode("utf-8")
    assert "take.saved" in text
    assert "caf\u00e9 \\ud800 end" in text
