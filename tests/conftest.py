"""Shared fixtures: every test starts from a pristine sounding with its own data dir."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

import sounding
from sounding.testing import ManualClock, MemorySink, capture, reset, strict

# CI (`.ci/run`) runs the property tests with a fixed seed so that a landing is decided by the
# code, not by which examples a run happened to draw; run without HYPOTHESIS_PROFILE (the
# default profile) to explore new examples. No deadline either way: the machines are shared.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("default", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def _pristine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Isolate each test: fresh settings, registry, buffers and a private data dir."""
    for var in (
        "SOUNDING_APP_NAME",
        "SOUNDING_APP_VERSION",
        "SOUNDING_TELEMETRY",
        "SOUNDING_CONFIG",
        "SOUNDING_LOCAL",
        "SOUNDING_LOG_LEVEL",
        "SOUNDING_AGGREGATION_INTERVAL",
        "SOUNDING_RETENTION_DAYS",
        "DO_NOT_TRACK",
        "SOUNDING_DEBUG",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SOUNDING_DATA_DIR", str(tmp_path / "sounding-data"))
    reset()
    yield
    reset()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The data dir the autouse fixture configured through ``SOUNDING_DATA_DIR``."""
    return tmp_path / "sounding-data"


@pytest.fixture
def strict_mode() -> Iterator[None]:
    """Run-time telemetry failures raise InternalError instead of being counted."""
    with strict():
        yield


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock (2026-01-01T00:00:00Z), installed only where a test passes it on."""
    return ManualClock()


@pytest.fixture
def sink(clock: ManualClock) -> Iterator[MemorySink]:
    """Everything goes to a MemorySink on ``clock``, with no background thread."""
    with capture(clock) as s:
        yield s


__all__ = ["sounding"]
