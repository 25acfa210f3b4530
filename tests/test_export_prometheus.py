"""Pull exposition (collector, textfile, serve-metrics scraped by a real Prometheus) and
alert rules exported for promtool."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from engines import HOW, free_port, start_prometheus
from sounding.core.sketch import QuantileSketch
from sounding.core.types import IntervalAggregate, MetricType
from sounding.presentation.cli import main
from sounding.storage import SQLiteSink

pytestmark = pytest.mark.needs_extras


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data dir with a counter (7), a gauge (3 MB) and a latency histogram (1..100 ms)."""
    d = tmp_path / "data"
    d.mkdir()
    t = (time.time() // 60) * 60 - 600
    sk = QuantileSketch()
    sk.add_many(float(v) for v in range(1, 101))
    tags = (("app_version", "1.0"),)
    sink = SQLiteSink(d / "telemetry.db")
    sink.write(
        [
            IntervalAggregate("exports", MetricType.COUNTER, tags, t, t + 60, count=7, sum=7.0),
            IntervalAggregate("memory", MetricType.GAUGE, tags, t, t + 60, count=1, last=3.0,
                              unit="MB"),
            IntervalAggregate("export.duration", MetricType.HISTOGRAM, tags, t, t + 60,
                              count=100, sum=5050.0, min=1.0, max=100.0, sketch=sk, unit="ms"),
        ],
        [],
    )  # fmt: skip
    sink.close()
    return d


def exposition(d: Path, openmetrics: bool = False) -> str:
    """The collector's output through a prometheus_client registry."""
    import prometheus_client
    from prometheus_client.openmetrics.exposition import generate_latest as om_latest

    from sounding.exporters import PrometheusCollector

    reg = prometheus_client.CollectorRegistry(auto_describe=False)
    reg.register(PrometheusCollector(d))
    gen = om_latest if openmetrics else prometheus_client.generate_latest
    return str(gen(reg).decode())


def test_collector_names_units_and_types(data: Path) -> None:
    """Counters end in _total, ms histograms are in seconds, MB gauges in bytes."""
    text = exposition(data)
    assert '# TYPE exports_total counter' in text
    assert 'exports_total{app_version="1.0"} 7.0' in text
    assert 'memory_bytes{app_version="1.0"} 3e+06' in text
    assert "# TYPE export_duration_seconds histogram" in text
    assert 'export_duration_seconds_count{app_version="1.0"} 100.0' in text
    assert 'export_duration_seconds_sum{app_version="1.0"} 5.05' in text
    assert 'le="+Inf"} 100.0' in text


def test_collector_openmetrics(data: Path) -> None:
    """The OpenMetrics form parses with prometheus_client's own parser."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    fams = {f.name: f for f in text_string_to_metric_families(exposition(data, True))}
    assert fams["exports"].type == "counter"
    assert fams["export_duration_seconds"].type == "histogram"


def test_write_textfile_is_atomic_and_complete(data: Path, tmp_path: Path) -> None:
    """write_textfile leaves the whole exposition at the path and no temporary file."""
    from sounding.exporters import PrometheusCollector, write_textfile

    out = tmp_path / "tf" / "sounding.prom"
    out.parent.mkdir()
    write_textfile(out, PrometheusCollector(data))
    assert "exports_total" in out.read_text()
    assert [p.name for p in out.parent.iterdir()] == ["sounding.prom"]


def test_real_prometheus_scrapes_serve_metrics(data: Path, tmp_path: Path) -> None:
    """`sounding serve-metrics` on loopback is scraped by a real Prometheus."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sounding", "--data-dir", str(data), "serve-metrics",
         "--port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        eng = start_prometheus(tmp_path, scrape=f"127.0.0.1:{port}")
        try:
            deadline = time.monotonic() + 20
            res: list[dict[str, object]] = []
            while time.monotonic() < deadline and not res:
                res = eng.query('exports_total{job="sounding"}')
                time.sleep(0.3)
            assert res
            assert float(res[0]["value"][1]) == 7.0
            q = eng.scalar(
                "histogram_quantile(0.5, sum by (le) (export_duration_seconds_bucket))"
            )
            assert q == pytest.approx(0.050, rel=0.015)
        finally:
            eng.proc.terminate()
            eng.proc.wait(10)
    finally:
        proc.terminate()
        proc.wait(10)


def test_alert_rules_pass_promtool(data: Path, tmp_path: Path) -> None:
    """`sounding alerts --export prometheus` writes a rule file promtool accepts."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip(HOW.format(name="promtool"))
    rules = tmp_path / "alerts.toml"
    rules.write_text(
        '[[alerts]]\nname = "slow export"\nmetric = "export.duration"\nstat = "p95"\n'
        'op = ">"\nthreshold = 500\nfor = "5m"\nkeep_firing_for = "10m"\n'
        '[[alerts]]\nname = "few exports"\nmetric = "exports"\nstat = "count"\nop = "<"\n'
        'threshold = 1\n'
        '[[alerts]]\nname = "memory"\nmetric = "memory"\nstat = "max"\nop = ">"\n'
        'threshold = 500\n'
        '[[alerts]]\nname = "odd"\nmetric = "export.duration"\nkind = "deviation"\nop = ">"\n'
    )
    out = tmp_path / "sounding.rules.yml"
    result = CliRunner().invoke(
        main,
        ["--data-dir", str(data), "alerts", "--rules", str(rules), "--export", "prometheus",
         "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "histogram_quantile(0.95" in text
    assert "> 0.5" in text
    assert "memory_bytes" in text
    assert "> 500000000" in text
    assert "skipped odd" in result.output
    check = subprocess.run([promtool, "check", "rules", str(out)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 3 rules found" in check.stdout
