"""``sounding baseline``, ``sounding changes`` and ``sounding alerts`` on a real store."""

from __future__ import annotations

import json
import random
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from sounding.core.clock import set_clock
from sounding.core.config import MetricsConfig
from sounding.core.sketch import QuantileSketch
from sounding.core.types import IntervalAggregate, MetricType
from sounding.presentation.cli_analysis import alerts, baseline, changes, register
from sounding.storage import SQLiteSink
from sounding.testing import ManualClock

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
HOUR = 3600.0
DAY = 86400.0
NOW = T0 + 8 * DAY


@pytest.fixture
def cli() -> click.Group:
    """The real ``sounding`` group with the analysis commands registered."""
    from sounding.presentation.cli import main

    register(main)
    return main


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """Eight days of hourly latencies: version 1.0 at ~100, 2.0 at ~130 from day 5."""
    set_clock(ManualClock(NOW))
    rng = random.Random(11)
    aggs = []
    for h in range(8 * 24):
        new = h >= 5 * 24
        values = [rng.gauss(130.0 if new else 100.0, 5.0) for _ in range(40)]
        sk = QuantileSketch()
        sk.add_many(values)
        aggs.append(
            IntervalAggregate(
                "app.latency", MetricType.HISTOGRAM, (("app_version", "2.0" if new else "1.0"),),
                T0 + h * HOUR, T0 + h * HOUR + 60, count=len(values), sum=sum(values),
                min=min(values), max=max(values), sketch=sk,
            )
        )  # fmt: skip
    d = tmp_path / "data"
    sink = SQLiteSink(d, MetricsConfig())
    sink.write(aggs, [])
    sink.close()
    return d


def run(cli: click.Group, store_dir: Path, *args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, ["--data-dir", str(store_dir), *args])


def test_baseline_json(cli: click.Group, store_dir: Path) -> None:
    """``baseline --format json`` gives the statistic, p50/p95/p99, count and spread of the
    7 days before "now" (the last day)."""
    res = run(cli, store_dir, "baseline", "app.latency", "--format", "json")
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.output)
    assert row["metric"] == "app.latency"
    assert row["stat"] == "p95"
    assert row["baseline_count"] == 7 * 24 * 40
    assert row["baseline"] == pytest.approx(row["p95"])
    assert row["p50"] < row["p95"] < row["p99"]
    assert row["spread"] > 0


def test_baseline_by_version_table(cli: click.Group, store_dir: Path) -> None:
    """``--by app_version`` prints one row per version."""
    res = run(cli, store_dir, "baseline", "app.latency", "--by", "app_version", "--days", "8")
    assert res.exit_code == 0, res.output
    assert "1.0" in res.output
    assert "2.0" in res.output
    assert "baseline of app.latency (p95) by app_version" in res.output


def test_changes_json(cli: click.Group, store_dir: Path) -> None:
    """``changes`` finds the release step of about +30 %."""
    res = run(
        cli,
        store_dir,
        "changes",
        "app.latency",
        "--stat",
        "p50",
        "--days",
        "8",
        "--interval",
        "1h",
        "--format",
        "json",
    )
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.output)
    assert row["change_percent"] == pytest.approx(30, abs=3)
    assert row["time"].startswith("2026-01-0")


def test_changes_none_found(cli: click.Group, store_dir: Path) -> None:
    """A window without a change says so on stderr and exits 0."""
    res = run(cli, store_dir, "changes", "app.latency", "--days", "2", "--interval", "1h")
    assert res.exit_code == 0
    assert "no change points" in res.output


def test_unknown_metric_is_a_clean_error(cli: click.Group, store_dir: Path) -> None:
    """An unknown metric is one line naming the known ones, exit status 1."""
    res = run(cli, store_dir, "baseline", "nope")
    assert res.exit_code == 1
    assert "no metric named 'nope'" in res.output
    assert "app.latency" in res.output
    assert "Traceback" not in res.output


def test_bad_tag_is_a_usage_error(cli: click.Group, store_dir: Path) -> None:
    """A malformed --tag exits 2 naming the option."""
    res = run(cli, store_dir, "baseline", "app.latency", "--tag", "oops")
    assert res.exit_code == 2
    assert "--tag" in res.output


def test_alerts_without_rules(cli: click.Group, store_dir: Path) -> None:
    """Without any rule, ``alerts`` explains where rules come from."""
    res = run(cli, store_dir, "alerts")
    assert res.exit_code == 0
    assert "no alert rules" in res.output


def test_alerts_evaluate_persists_state(cli: click.Group, store_dir: Path) -> None:
    """``alerts --evaluate`` moves the state, which ``alerts`` then lists; it exits 1 while
    a rule is firing."""
    (store_dir / "alerts.toml").write_text(
        '[[alerts]]\nname = "slow"\nmetric = "app.latency"\nstat = "p95"\n'
        'threshold = 120\nwindow = "1h"\n'
    )
    res = run(cli, store_dir, "alerts", "--evaluate", "--no-notify", "--format", "json")
    assert res.exit_code == 1, res.output
    (row,) = json.loads(res.output)
    assert (row["rule"], row["previous"], row["status"], row["notification"], row["sent"]) == (
        "slow",
        "inactive",
        "firing",
        "firing",
        False,
    )
    res = run(cli, store_dir, "alerts", "--format", "json")
    (row,) = json.loads(res.output)
    assert (row["rule"], row["status"]) == ("slow", "firing")
    res = run(cli, store_dir, "alerts")
    assert "firing" in res.output


def test_alerts_rules_file_errors_are_clean(
    cli: click.Group, store_dir: Path, tmp_path: Path
) -> None:
    """A bad rules file is one error line naming the key, exit status 2."""
    bad = tmp_path / "rules.toml"
    bad.write_text('[[alerts]]\nname = "x"\nmetric = "app.latency"\nthreshold = 1\nop = "!"\n')
    res = run(cli, store_dir, "alerts", "--rules", str(bad))
    assert res.exit_code == 2
    assert "op" in res.output
    assert "Traceback" not in res.output


@pytest.mark.parametrize("command", [baseline, changes, alerts])
def test_every_command_has_help_with_an_example(cli: click.Group, command: click.Command) -> None:
    """Each command's --help shows an example."""
    res = CliRunner().invoke(cli, [str(command.name), "--help"])
    assert res.exit_code == 0
    assert "Example" in res.output
    assert f"sounding {command.name}" in res.output


def test_alerts_evaluate_exits_0_when_nothing_fires(cli: click.Group, store_dir: Path) -> None:
    """A rule that does not breach: --evaluate exits 0."""
    (store_dir / "alerts.toml").write_text(
        '[[alerts]]\nname = "ok"\nmetric = "app.latency"\nthreshold = 10000\nwindow = "1h"\n'
    )
    res = run(cli, store_dir, "alerts", "--evaluate", "--no-notify")
    assert res.exit_code == 0, res.output
    assert "inactive" in res.output


def test_alerts_notify_through_a_webhook_from_alerts_toml(
    cli: click.Group, store_dir: Path
) -> None:
    """A [[notify]] webhook in alerts.toml receives the firing notification as JSON."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: list[dict[str, object]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        (store_dir / "alerts.toml").write_text(
            '[[alerts]]\nname = "slow"\nmetric = "app.latency"\nthreshold = 120\n'
            f'window = "1h"\n\n[[notify]]\ntype = "webhook"\nurl = "{url}"\nretries = 0\n'
        )
        res = run(cli, store_dir, "alerts", "--evaluate", "--notify", "--format", "json")
    finally:
        server.shutdown()
        server.server_close()
    assert res.exit_code == 1, res.output
    (row,) = json.loads(res.output)
    assert row["sent"] is True
    assert [(r["kind"], r["rule"]) for r in received] == [("firing", "slow")]


def test_bad_notify_table_names_the_key(cli: click.Group, store_dir: Path) -> None:
    """An unknown sink type in alerts.toml is a clean error naming notify[0].type."""
    (store_dir / "alerts.toml").write_text(
        '[[alerts]]\nname = "slow"\nmetric = "app.latency"\nthreshold = 120\n\n'
        '[[notify]]\ntype = "pager"\n'
    )
    res = run(cli, store_dir, "alerts", "--evaluate")
    assert res.exit_code == 2, res.output
    assert "notify[0].type" in res.output
    assert "Traceback" not in res.output
