"""Real Prometheus and VictoriaMetrics on loopback for the exporter tests.

Each server is started on 127.0.0.1 with a free port and a temporary data directory, and
stopped afterwards. Debian's packages provide them (``apt-get install -y
--no-install-recommends prometheus victoria-metrics``; ``make system-deps`` does it as root).
When a binary is missing the tests that need it are skipped with that instruction.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HOW = (
    "needs {name} on PATH: run `make system-deps` as root (or apt-get install -y "
    "--no-install-recommends prometheus victoria-metrics); `make test` and .ci/run do it"
)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return int(r.status), r.read()
    except urllib.error.HTTPError as e:
        return int(e.code), e.read()
    except OSError:
        return 0, b""


@dataclass
class Engine:
    """A running server: its base URL, remote-write URL and PromQL query helper."""

    kind: str
    base: str
    write_url: str
    proc: subprocess.Popen[bytes]
    data_dir: Path

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query; the result vector."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        url = self.base + "/api/v1/query?" + urllib.parse.urlencode(params)
        status, body = _get(url)
        for _ in range(5):
            # Prometheus answers 422 "cannot populate chunk ... not found" now and then while
            # its head memory-maps chunks of samples just written (a race on the server, not
            # in what was written); the same query a moment later succeeds.
            if status != 422 or b"cannot populate chunk" not in body:
                break
            time.sleep(0.2)
            status, body = _get(url)
        data = json.loads(body or b"{}")
        if status != 200 or data.get("status") != "success":
            raise AssertionError(f"{self.kind} query {promql!r} failed: {status} {body[:300]!r}")
        return list(data["data"]["result"])

    def scalar(self, promql: str, at: float | None = None) -> float:
        """The single value of an instant query."""
        res = self.query(promql, at)
        assert len(res) == 1, (promql, res)
        return float(res[0]["value"][1])

    def flush(self) -> None:
        """Make freshly written samples queryable (VictoriaMetrics)."""
        if self.kind == "victoria-metrics":
            _get(self.base + "/internal/force_flush")


def _wait_ready(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        if _get(url, timeout=1.0)[0] == 200:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after 30 s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def start_prometheus(tmp: Path, scrape: str | None = None, native: bool = False) -> Engine:
    """Prometheus with the remote-write receiver and a 30-day out-of-order window (and
    native histograms with ``native``)."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip(HOW.format(name="prometheus"))
    port = free_port()
    cfg = tmp / "prometheus.yml"
    text = "global:\n  scrape_interval: 1s\nstorage:\n  tsdb:\n    out_of_order_time_window: 30d\n"
    if scrape:
        text += (
            "scrape_configs:\n  - job_name: sounding\n    scrape_interval: 1s\n"
            f"    static_configs:\n      - targets: ['{scrape}']\n"
        )
    cfg.write_text(text)
    data = tmp / "prom-data"
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={cfg}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-remote-write-receiver",
            *(["--enable-feature=native-histograms"] if native else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base + "/-/ready", proc, "prometheus")
    except BaseException:
        _stop(proc)
        raise
    return Engine("prometheus", base, base + "/api/v1/write", proc, data)


def start_victoria(tmp: Path) -> Engine:
    """VictoriaMetrics with unlimited retention, no query cache, no latency offset."""
    binary = shutil.which("victoria-metrics")
    if binary is None:
        pytest.skip(HOW.format(name="victoria-metrics"))
    port = free_port()
    data = tmp / "vm-data"
    proc = subprocess.Popen(
        [
            binary,
            f"-httpListenAddr=127.0.0.1:{port}",
            f"-storageDataPath={data}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-search.disableCache",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base + "/health", proc, "victoria-metrics")
    except BaseException:
        _stop(proc)
        raise
    return Engine("victoria-metrics", base, base + "/api/v1/write", proc, data)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Engine]:
    """A fresh Prometheus on loopback."""
    eng = start_prometheus(tmp_path)
    try:
        yield eng
    finally:
        _stop(eng.proc)


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[Engine]:
    """A fresh VictoriaMetrics on loopback."""
    eng = start_victoria(tmp_path)
    try:
        yield eng
    finally:
        _stop(eng.proc)


@pytest.fixture(params=["prometheus", "victoria-metrics"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """Each engine in turn."""
    eng = start_prometheus(tmp_path) if request.param == "prometheus" else start_victoria(tmp_path)
    try:
        yield eng
    finally:
        _stop(eng.proc)
