"""The background exporter: started only at level ``all``, fed by the store, bounded."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import sounding
from sounding.exporters import RemoteWriteExporter, Response, _worker
from sounding.exporters._fake import FakeRequest, FakeTransport
from sounding.exporters.remote_write import decode_write_request, snappy_decompress
from sounding.presentation.cli import main


@pytest.fixture(autouse=True)
def _no_background_cycles(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker thread's own cycles wait an hour: tests drive run_once themselves."""
    monkeypatch.setattr(_worker, "FIRST_CYCLE_DELAY", 3600.0)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback TCP socket that would see any connection attempt."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    s.setblocking(False)
    yield s
    s.close()


def url_of(s: socket.socket) -> str:
    """The remote-write URL on the listener."""
    return f"http://127.0.0.1:{s.getsockname()[1]}/api/v1/write"


def record_and_flush() -> None:
    """Record a little through the public API and persist it."""
    c = sounding.counter("jobs.done")
    for _ in range(3):
        c.inc()
    sounding.histogram("jobs.duration", unit="ms").observe(12.5)
    assert sounding.flush()


def test_level_all_sends_aggregates_from_the_store(data_dir: Path) -> None:
    """At level all, the worker reads the store and sends running totals (no events)."""
    t = FakeTransport()
    exp = RemoteWriteExporter("http://127.0.0.1:9/api/v1/write", instance="w1", transport=t)
    sounding.configure(telemetry_level="all", exporters=[exp])
    worker = _worker.current()
    assert worker is not None
    record_and_flush()
    sounding.get_logger("app").info("user clicked", path="/home/alice/x")
    sounding.flush()
    [report] = worker.run_once(until=time.time() + 3600)
    assert report.samples > 0
    req = decode_write_request(snappy_decompress(t.requests[0].body))
    names = {dict(k)["__name__"] for k in req}
    assert "jobs_done_total" in names
    assert "jobs_duration_seconds_count" in names
    assert all("user" not in n for n in names)
    assert b"alice" not in snappy_decompress(t.requests[0].body)
    [total] = [s for k, s in req.items() if dict(k)["__name__"] == "jobs_done_total"]
    assert total[-1][1] == 3.0


@pytest.mark.parametrize(
    ("level", "env"),
    [("error", {}), ("crash", {}), ("off", {}), ("all", {"DO_NOT_TRACK": "1"}),
     ("all", {"SOUNDING_TELEMETRY": "error"})],
)
def test_below_all_or_opted_out_opens_no_socket(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch, level: str, env: dict[str, str]
) -> None:
    """Below level all, with DO_NOT_TRACK or a lower user level, no worker runs and no
    connection is attempted."""
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    sounding.configure(telemetry_level=level, exporters=[RemoteWriteExporter(url_of(listener))])
    record_and_flush()
    assert _worker.current() is None
    sounding.shutdown(0.5)
    with pytest.raises(BlockingIOError):
        listener.accept()


def test_toml_exporters(tmp_path: Path, data_dir: Path) -> None:
    """[[exporters]] tables in the config file build exporters."""
    cfg = tmp_path / "sounding.toml"
    cfg.write_text(
        'telemetry_level = "all"\n[[exporters]]\ntype = "remote-write"\n'
        'url = "http://127.0.0.1:9/api/v1/write"\ninstance = "laptop-7"\ntags = ["route"]\n'
        'headers = {Authorization = "Bearer t"}\n'
    )
    sounding.configure(config_file=cfg)
    worker = _worker.current()
    assert worker is not None
    [exp] = worker.exporters
    assert isinstance(exp, RemoteWriteExporter)
    assert exp.policy.instance == "laptop-7"
    assert exp.policy.allow == frozenset({"route"})
    assert exp.headers == {"Authorization": "Bearer t"}
    _worker.stop()


def test_bad_toml_type_raises_at_definition(tmp_path: Path) -> None:
    """An unknown exporter type names the key and the allowed values."""
    with pytest.raises(ValueError, match=r"exporters\.type"):
        _worker.from_spec({"type": "graphite", "url": "http://x"})


def test_shutdown_returns_while_a_request_hangs(data_dir: Path) -> None:
    """shutdown() stays within its budget even when the server never answers."""
    release = threading.Event()

    def hang(req: FakeRequest) -> Response:
        release.wait(30)
        return Response(204)

    t = FakeTransport(handler=hang)
    exp = RemoteWriteExporter("http://127.0.0.1:9/api/v1/write", instance="h", transport=t)
    sounding.configure(telemetry_level="all", exporters=[exp])
    record_and_flush()
    worker = _worker.current()
    assert worker is not None
    runner = threading.Thread(target=worker.run_once, kwargs={"until": time.time() + 3600})
    runner.start()
    while not t.requests:
        time.sleep(0.01)
    assert sounding.shutdown(0.3) in (True, False)
    assert worker.stop_event.is_set()
    assert runner.is_alive()
    release.set()
    runner.join(5)


def test_status_shows_destinations_and_counts(data_dir: Path) -> None:
    """`sounding status` says what is sent where and how much was refused."""
    t = FakeTransport([Response(400, "bad")])
    exp = RemoteWriteExporter("http://127.0.0.1:9/api/v1/write", instance="s1", transport=t)
    sounding.configure(telemetry_level="all", exporters=[exp])
    record_and_flush()
    worker = _worker.current()
    assert worker is not None
    worker.run_once(until=time.time() + 3600)
    _worker.stop()
    result = CliRunner().invoke(main, ["--data-dir", str(data_dir), "status", "--format", "json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)["exporters"]
    assert info["sending"] is True
    assert info["configured"] == [exp.destination]
    [dest] = info["destinations"]
    assert dest["samples_refused"] > 0
    assert "HTTP 400" in dest["last_error"]
    text = CliRunner().invoke(main, ["--data-dir", str(data_dir), "status"]).output
    assert "refused" in text
    assert "pseudonymous install id" in text


def test_push_refuses_with_do_not_track(
    data_dir: Path, listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sounding push` honours DO_NOT_TRACK: an error, and no connection attempted."""
    record_and_flush()
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    result = CliRunner().invoke(
        main, ["--data-dir", str(data_dir), "push", "remote-write", url_of(listener)]
    )
    assert result.exit_code == 1
    assert "DO_NOT_TRACK" in result.output
    with pytest.raises(BlockingIOError):
        listener.accept()


def test_push_dry_run_prints_payload(data_dir: Path, listener: socket.socket) -> None:
    """`sounding push --dry-run` prints the series it would send and connects to nothing."""
    from sounding.testing import ManualClock, simulated_time

    with simulated_time(ManualClock(time.time() // 60 * 60 - 300)) as clock:
        sounding.counter("jobs.done").inc(4)
        clock.advance(60)
        sounding.flush()
    result = CliRunner().invoke(
        main,
        ["--data-dir", str(data_dir), "push", "remote-write", url_of(listener), "--dry-run",
         "--since", "1h"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "would send" in result.output
    assert "jobs_done_total{" in result.output
    with pytest.raises(BlockingIOError):
        listener.accept()


def test_push_labels_with_the_pushed_dirs_install_id(tmp_path: Path) -> None:
    """`sounding push --data-dir D` uses D's install id as instance, created in D."""
    from sounding.exporters._convert import install_id

    other = tmp_path / "other"
    sounding.configure(data_dir=other)
    record_and_flush()
    result = CliRunner().invoke(
        main,
        ["--data-dir", str(other), "push", "remote-write", "http://127.0.0.1:9/api/v1/write",
         "--dry-run", "--since", "1h"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (other / "install-id").exists()
    assert f"instance={install_id(other)}" in result.output


def test_shutdown_delivers_what_closed_since_the_last_cycle(data_dir: Path) -> None:
    """A short-lived program sends at exit (within the budget) the intervals already closed."""
    from sounding.testing import ManualClock, simulated_time

    t = FakeTransport()
    exp = RemoteWriteExporter("http://127.0.0.1:9/api/v1/write", instance="cli", transport=t)
    sounding.configure(telemetry_level="all", exporters=[exp])
    with simulated_time(ManualClock(time.time() // 60 * 60 - 600)) as clock:
        for _ in range(5):
            sounding.counter("runs").inc()
            clock.advance(60)
            sounding.flush()
    assert not t.requests
    assert sounding.shutdown(2.0)
    req = decode_write_request(snappy_decompress(t.requests[0].body))
    [total] = [s for k, s in req.items() if dict(k)["__name__"] == "runs_total"]
    assert [v for _, v in total] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_first_cycle_runs_soon_after_start(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thread delivers the backlog shortly after it starts, without waiting an interval."""
    from sounding.testing import ManualClock, simulated_time

    monkeypatch.setattr(_worker, "FIRST_CYCLE_DELAY", 0.01)
    with simulated_time(ManualClock(time.time() // 60 * 60 - 300)) as clock:
        sounding.counter("backlog").inc()
        clock.advance(60)
        sounding.flush()
    t = FakeTransport()
    exp = RemoteWriteExporter("http://127.0.0.1:9/api/v1/write", instance="b", transport=t)
    sounding.configure(telemetry_level="all", exporters=[exp])
    for _ in range(500):
        if t.requests:
            break
        time.sleep(0.01)
    assert t.requests
    _worker.stop()
