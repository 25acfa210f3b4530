"""Shared fixtures: every test starts from a pristine sounding with its own data dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import sounding
from sounding.testing import reset


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


__all__ = ["sounding"]
