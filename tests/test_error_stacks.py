"""Stored stacks: no sounding wrapper frames, no machine-specific absolute paths."""

from __future__ import annotations

import json
import os
import sysconfig
from pathlib import Path

import pytest

import sounding
from sounding.collection import errors
from sounding.collection.errors import record_error, relative_path
from sounding.testing import MemorySink


def _boom() -> None:
    json.loads("{not json")


def test_boundary_and_timer_frames_are_left_out(sink: MemorySink) -> None:
    """A failure inside a timed boundary keeps the caller's and the stdlib's frames only."""

    @sounding.operation_boundary("stack.op")
    @sounding.track_execution_time("stack.timed")
    def work() -> None:
        _boom()

    with pytest.raises(json.JSONDecodeError):
        work()
    assert sounding.flush()
    (event,) = sink.find_events("operation.failed")
    files = [frame["file"] for frame in event["stack"]]
    functions = [frame["function"] for frame in event["stack"]]
    assert "work" in functions
    assert "_boom" in functions
    assert not any("sounding/collection" in f for f in files), files
    assert not any(f.startswith("/") for f in files), files
    assert files[-1].startswith("<stdlib>/json/")


def test_the_innermost_frame_stays_even_when_it_is_sounding_s() -> None:
    """An error raised inside sounding itself still shows where it was raised."""
    try:
        sounding.counter("bad name")
    except ValueError as exc:
        report = record_error(exc)
    assert report is not None
    assert report.stack[-1]["file"].endswith("collection/metrics.py")


def test_paths_relative_to_stdlib_site_packages_and_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Absolute paths become <stdlib>/..., <site-packages>/... or project-relative."""
    stdlib = sysconfig.get_paths()["stdlib"]
    purelib = sysconfig.get_paths()["purelib"]
    monkeypatch.chdir(tmp_path)
    assert relative_path(os.path.join(stdlib, "json", "decoder.py")) == "<stdlib>/json/decoder.py"
    assert (
        relative_path(os.path.join(purelib, "click", "core.py")) == "<site-packages>/click/core.py"
    )
    assert relative_path(str(tmp_path / "app" / "cli.py")) == "app/cli.py"
    assert relative_path("<frozen importlib._bootstrap>") == "<frozen importlib._bootstrap>"


def test_other_absolute_paths_are_scrubbed() -> None:
    """A path outside every known root keeps no home directory."""
    assert relative_path("/home/alice/scripts/run.py") == "~/scripts/run.py"


def test_roots_can_be_reset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """reset_path_roots forgets cached prefixes (a new __main__ in tests)."""
    errors.reset_path_roots()
    monkeypatch.chdir(tmp_path)
    assert relative_path(str(tmp_path / "x.py")) == "x.py"
    errors.reset_path_roots()


def test_logged_tracebacks_are_cleaned_too(sink: MemorySink) -> None:
    """logger.exception's traceback text has no wrapper frames and no absolute paths."""

    @sounding.operation_boundary("stack.logged")
    def work() -> None:
        _boom()

    try:
        work()
    except json.JSONDecodeError:
        sounding.get_logger("stack").exception("export.failed")
    assert sounding.flush()
    (event,) = sink.find_events("export.failed")
    text = event["exc_info"]
    assert 'File "<stdlib>/json/' in text
    assert "sounding/collection" not in text
    assert os.getcwd() not in text
    assert text.rstrip().endswith("(char 1)")


def test_chained_exceptions_are_cleaned(sink: MemorySink) -> None:
    """The cause of a logged exception loses its absolute paths as well."""
    try:
        try:
            _boom()
        except ValueError as exc:
            raise RuntimeError("wrapped") from exc
    except RuntimeError:
        sounding.get_logger("stack").exception("chained")
    assert sounding.flush()
    (event,) = sink.find_events("chained")
    assert "direct cause" in event["exc_info"]
    assert sysconfig.get_paths()["stdlib"] not in event["exc_info"]
