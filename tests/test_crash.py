"""Uncaught exceptions are recorded locally (scrubbed) and the previous hooks still run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import sounding
from sounding.collection.crash import install_crash_handler, uninstall_crash_handler

SRC = str(Path(sounding.__file__).parents[1])


def _run(code: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC, "SOUNDING_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def _events(data_dir: Path) -> list[dict[str, object]]:
    lines = (data_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_uncaught_exception_is_recorded_scrubbed_and_still_printed(tmp_path: Path) -> None:
    """A crash of the main thread lands in the store, scrubbed; the traceback and exit status
    are unchanged."""
    proc = _run(
        """
        import sounding
        sounding.install_crash_handler()
        raise PermissionError("cannot write /home/alice/Music/take.wav for alice@example.com")
        """,
        tmp_path,
    )
    assert proc.returncode == 1
    assert "PermissionError" in proc.stderr  # the default hook still printed it
    crashes = [e for e in _events(tmp_path) if e["event"] == "error.crash"]
    assert len(crashes) == 1
    crash = crashes[0]
    assert crash["exc_type"] == "PermissionError"
    assert crash["handled"] is False
    assert crash["severity"] == "critical"
    raw = (tmp_path / "events.jsonl").read_bytes() + (tmp_path / "telemetry.db").read_bytes()
    assert b"alice@example.com" not in raw
    assert b"/home/alice" not in raw
    store = sounding.open_store(tmp_path)
    (point,) = store.query("errors.crashes", stat="sum", tags={"exc_type": "PermissionError"})
    assert point.value == 1


def test_thread_crash_is_recorded_and_the_process_goes_on(tmp_path: Path) -> None:
    """An uncaught exception in a thread is recorded; the program continues."""
    proc = _run(
        """
        import threading, sounding
        sounding.install_crash_handler()
        t = threading.Thread(target=lambda: 1 / 0, name="worker")
        t.start(); t.join()
        print("still running")
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "still running" in proc.stdout
    assert "ZeroDivisionError" in proc.stderr
    (crash,) = [e for e in _events(tmp_path) if e["event"] == "error.crash"]
    assert crash["thread"] == "worker"


def test_exit_and_interrupt_are_not_crashes(tmp_path: Path) -> None:
    """sys.exit() ends the program without a crash record."""
    proc = _run(
        """
        import sys, sounding
        sounding.install_crash_handler()
        sounding.get_logger("app").info("app.quitting")
        sys.exit(3)
        """,
        tmp_path,
    )
    assert proc.returncode == 3
    names = [e["event"] for e in _events(tmp_path)]
    assert "app.quitting" in names
    assert "error.crash" not in names


def test_install_is_idempotent_and_uninstall_restores() -> None:
    """Installing twice chains once; uninstalling puts the original hooks back."""
    before_sys, before_thread = sys.excepthook, threading.excepthook
    install_crash_handler()
    install_crash_handler()
    assert sys.excepthook is not before_sys
    uninstall_crash_handler()
    assert sys.excepthook is before_sys
    assert threading.excepthook is before_thread


CLICK_APP = """
import click, sounding
sounding.install_crash_handler()
log = sounding.get_logger("tool")

@click.group()
@click.pass_context
def cli(ctx):
    if {scoped!r}:
        ctx.with_resource(sounding.session_scope(command=ctx.invoked_subcommand))
    else:
        ctx.call_on_close(sounding.end_session)

@cli.command()
def boom():
    log.info("boom.begin")
    raise RuntimeError("a bug")

@cli.command()
def fine():
    log.info("fine.begin")

cli()
"""


@pytest.mark.parametrize("scoped", [False, True], ids=["end_session", "session_scope"])
def test_a_crashing_click_command_records_its_crash_in_its_own_session(
    tmp_path: Path, scoped: bool
) -> None:
    """click ends the session before sys.excepthook: the crash still lands in that session."""
    code = CLICK_APP.format(scoped=scoped)
    proc = subprocess.run(
        [sys.executable, "-c", code, "boom"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": SRC, "SOUNDING_DATA_DIR": str(tmp_path)},
    )
    assert proc.returncode == 1
    assert "RuntimeError: a bug" in proc.stderr
    events = _events(tmp_path)
    sessions = {e["session_id"] for e in events}
    assert len(sessions) == 1, events
    [crash] = [e for e in events if e["event"] == "error.crash"]
    [begin] = [e for e in events if e["event"] == "boom.begin"]
    assert crash["session_id"] == begin["session_id"]
    store = sounding.open_store(tmp_path)
    try:
        assert len(store.sessions()) == 1
    finally:
        store.close()


def test_the_session_an_exception_ended_is_remembered_for_that_exception_only() -> None:
    """A scope left by an exception is that exception's session; other exceptions get none."""
    from sounding.collection.session import get_session_manager

    manager = get_session_manager()
    with pytest.raises(RuntimeError) as info, manager.session_scope(command="boom") as scope:
        raise RuntimeError("bug")
    assert manager.session_for_exception(info.value) is scope
    assert manager.session_for_exception(RuntimeError("other")) is None
