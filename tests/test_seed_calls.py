"""Every call the original plan (shared/seed) shows, written as it is written there.

Where the plan elides a value (``dsn='...'``, ``operation_name="..."``) a concrete one is
filled in; everything else (argument names, keyword or positional form, defaults) is the
plan's own. These pin the public API that applications written from the plan rely on.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any

import pytest

import sounding
from sounding import (
    MetricsConfig,
    MetricSnapshot,
    MetricType,
    PerformanceTimer,
    SentryContext,
    filter_event,
    initialize_telemetry,
    operation_boundary,
    track_execution_time,
)
from sounding.collection import boundary
from sounding.collection.naming import operation_name_for
from sounding.testing import MemorySink


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retries wait on a fake sleep that records the delays."""
    waited: list[float] = []
    monkeypatch.setattr(boundary, "sleep", waited.append)
    return waited


def test_day2_initialize_telemetry_disabled() -> None:
    """initialize_telemetry(dsn=..., enabled=False) starts nothing and says so."""
    started = initialize_telemetry(dsn="https://public@sentry.example.com/1", enabled=False)
    assert started is False


def test_day2_filter_event(sink: MemorySink) -> None:
    """filter_event(event, hint) scrubs e-mails, IPs and paths and keeps only safe fields."""
    sounding.configure(telemetry_level="error")
    event = {
        "level": "error",
        "message": "failed for bob@example.com at 10.1.2.3 in /home/bob/app",
        "user": {"email": "bob@example.com"},
    }
    out = filter_event(event, {})
    assert out == {"level": "error", "message": "failed for <email> at <ip> in ~/app"}


def test_day1_track_execution_time_keywords(sink: MemorySink) -> None:
    """@track_execution_time(operation_name=..., threshold_ms=100, log_result=True)."""

    @track_execution_time(
        operation_name="custom_operation",
        threshold_ms=100,  # Configurable alert threshold
        log_result=True,  # Configurable logging
    )
    def custom() -> str:
        return "done"

    assert custom() == "done"
    assert sounding.flush()
    assert sink.count("custom_operation.duration") == 1
    assert sink.find_events("custom_operation.completed")


def test_day3_operation_boundary_keywords(sink: MemorySink, sleeps: list[float]) -> None:
    """@operation_boundary(operation_name=..., retry_on_failure=True, ...) retries IOError."""
    calls: list[int] = []

    @operation_boundary(
        operation_name="disk.write",
        retry_on_failure=True,  # Toggle retry
        max_retries=3,  # Configure attempts
        retry_delay=1.0,  # Configure timing
        retry_backoff=2.0,  # Configure scaling
        retry_exceptions=(IOError,),  # Filter exceptions
        fallback_value=None,  # Configure default
    )
    def write() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OSError("disk busy")
        return "written"

    assert write() == "written"
    assert len(calls) == 3
    assert len(sleeps) == 2
    assert sounding.flush()
    assert sink.total("disk.write.retries") == 2


def test_day3_operation_boundary_keywords_fall_back(sink: MemorySink, sleeps: list[float]) -> None:
    """The same boundary returns the fallback (None) once its retries are used up."""

    @operation_boundary(
        operation_name="disk.write",
        retry_on_failure=True,
        max_retries=3,
        retry_delay=1.0,
        retry_backoff=2.0,
        retry_exceptions=(IOError,),
        fallback_value=None,
    )
    def write() -> str:
        raise OSError("disk gone")

    assert write() is None
    assert len(sleeps) == 3
    assert sounding.flush()
    assert sink.total("disk.write.fallbacks") == 1


def test_day1_decorator_and_context_manager(sink: MemorySink) -> None:
    """@track_execution_time() and `with PerformanceTimer(...) as timer: timer.add_metric`."""

    # Decorator API (declarative)
    @track_execution_time()
    def process_audio() -> None:
        pass

    # Context manager API (imperative)
    with PerformanceTimer("process_audio") as timer:
        process_audio()
        timer.add_metric("samples", 44100)

    assert timer.metrics == {"samples": 44100}
    assert sounding.flush()
    assert sink.count("process_audio.duration") == 1
    assert sink.count("process_audio.samples") == 1
    # The decorated function is named after its module and qualname.
    default_name = operation_name_for(process_audio.__wrapped__)  # type: ignore[attr-defined]
    assert default_name.endswith("locals.process_audio")
    assert sink.count(f"{default_name}.duration") == 1


def test_day3_boundary_and_sentry_context(sink: MemorySink) -> None:
    """@operation_boundary(operation_name="recording") and SentryContext(operation=...)."""

    # Decorator API (comprehensive)
    @operation_boundary(operation_name="recording")
    def start_recording() -> None:
        pass

    # Context manager API (flexible)
    with SentryContext(operation="recording") as ctx:
        ctx.add_breadcrumb("Starting...")
        start_recording()
        ctx.set_metric("duration", 5.0)

    assert ctx.metrics == {"duration": 5.0}
    assert ctx.report is None
    assert sounding.flush()
    assert sink.total("recording.attempts") == 1


def test_day3_graceful_degradation(sink: MemorySink) -> None:
    """@operation_boundary(fallback_value=None, reraise=False) never breaks the app."""

    @operation_boundary(
        fallback_value=None,  # Return this on error
        reraise=False,  # Don't break the app
    )
    def risky_operation() -> str:
        raise RuntimeError("component failed")

    assert risky_operation() is None


def test_day4_metric_schema() -> None:
    """MetricType's values, MetricSnapshot's fields and MetricsConfig's defaults are the plan's."""
    assert [m.value for m in MetricType] == ["counter", "gauge", "histogram", "summary"]
    snapshot = MetricSnapshot(
        metric_type=MetricType.COUNTER,
        name="recording_start",
        value=1.0,
        timestamp=datetime(2025, 10, 17, tzinfo=timezone.utc),
        tags={"platform": "linux"},
    )
    assert [f.name for f in dataclasses.fields(snapshot)][:5] == [
        "metric_type", "name", "value", "timestamp", "tags",
    ]  # fmt: skip
    config: Any = MetricsConfig()
    assert (config.aggregation_interval, config.retention_days) == (60, 30)
    assert (config.baseline_window_days, config.deviation_threshold_percent) == (7, 20.0)
    assert (config.refresh_interval, config.max_data_points) == (5, 1000)
    assert (config.enable_alerts, config.alert_thresholds) == (False, {})
