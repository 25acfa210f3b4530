"""Faults in real processes: every value the host recorded is stored or counted in `status`.

Each scenario runs a child Python process against a data directory, then reads the store the
way ``sounding status`` does: the values stored plus the values counted as dropped or unsaved
must equal the values recorded.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import sounding
from sounding.storage import open_store

SRC = str(Path(sounding.__file__).resolve().parents[1])


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOUNDING_")}
    env["PYTHONPATH"] = SRC
    env["SOUNDING_DATA_DIR"] = str(data_dir)
    return env


def _run(code: str, data_dir: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(data_dir),
    )


def _stored(data_dir: Path, name: str) -> float:
    """Sum of ``name`` over all its series, from the daily rows."""
    db = sqlite3.connect(data_dir / "telemetry.db")
    try:
        (total,) = db.execute(
            "SELECT coalesce(sum(p.sum), 0) FROM points p JOIN series s ON s.id = p.series_id "
            "WHERE s.name = ? AND p.resolution = 86400",
            (name,),
        ).fetchone()
        return float(total)
    finally:
        db.close()


def _events(data_dir: Path, name: str) -> int:
    db = sqlite3.connect(data_dir / "telemetry.db")
    try:
        (n,) = db.execute("SELECT count(*) FROM events WHERE event = ?", (name,)).fetchone()
        return int(n)
    finally:
        db.close()


def _counted(data_dir: Path) -> dict[str, float]:
    store = open_store(data_dir)
    try:
        return store.status().internal_counts
    finally:
        store.close()


def test_deleted_store_is_reopened_and_nothing_is_written_into_the_void(tmp_path: Path) -> None:
    """Deleting telemetry.db mid-run makes the next flush open a new file holding the data."""
    proc = _run(
        """
        import os, sounding
        c = sounding.counter("del.c")
        c.inc()
        assert sounding.flush()
        db = sounding.get_settings().store_path
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(str(db) + suffix):
                os.unlink(str(db) + suffix)
        for _ in range(1000):
            c.inc(2)
        print(sounding.flush())
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "True"
    assert _stored(tmp_path, "del.c") == 2000
    assert _counted(tmp_path).get("storage.reopened") == 1


def test_exclusive_lock_at_exit_counts_what_it_cannot_store(tmp_path: Path) -> None:
    """With another process holding the lock, exit gives up in budget and counts every value."""
    first = _run(
        "import sounding; sounding.counter('lock.first').inc(); sounding.flush()", tmp_path
    )
    assert first.returncode == 0, first.stderr
    holder = sqlite3.connect(tmp_path / "telemetry.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        proc = _run(
            """
            import sounding
            sounding.configure(shutdown_timeout=1.0)
            c = sounding.counter("lock.c")
            for i in range(20000):
                c.inc(tags={"k": str(i % 100)})
            """,
            tmp_path,
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert proc.returncode == 0, proc.stderr
    counted = _counted(tmp_path)
    assert _stored(tmp_path, "lock.c") + counted.get("shutdown.values_unsaved", 0) == 20000
    assert counted.get("shutdown.timeout", 0) + counted.get("storage.write", 0) >= 1
    # The next run takes the side file's counts into the store itself.
    again = _run("import sounding; sounding.counter('lock.next').inc(); sounding.flush()", tmp_path)
    assert again.returncode == 0, again.stderr
    assert not list(tmp_path.glob("unsaved.*.json"))
    assert _counted(tmp_path).get("shutdown.values_unsaved", 0) == counted.get(
        "shutdown.values_unsaved", 0
    )


def test_big_backlog_at_exit_lands_in_chunks_and_the_rest_is_counted(tmp_path: Path) -> None:
    """A backlog too big for the budget is stored in part, never lost whole; the rest counted."""
    proc = _run(
        """
        import sounding
        sounding.configure(shutdown_timeout=1.0, cardinality_limit=50000)
        log = sounding.get_logger("backlog")
        c = sounding.counter("backlog.c")
        for i in range(20000):
            c.inc(tags={"k": str(i)})
        for i in range(4000):
            log.info("backlog.event", i=i)
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    counted = _counted(tmp_path)
    assert _stored(tmp_path, "backlog.c") + counted.get("shutdown.values_unsaved", 0) == 20000
    stored_events = _events(tmp_path, "backlog.event")
    dropped = counted.get("shutdown.events_unsaved", 0) + counted.get("events.dropped", 0)
    # The side file counts events of every kind: the session's own start/end are among them.
    assert 4000 <= stored_events + dropped <= 4003
    assert _stored(tmp_path, "backlog.c") > 0


def test_values_recorded_in_the_apps_own_atexit_hook_land(tmp_path: Path) -> None:
    """An atexit hook registered before sounding's first use still gets its values stored."""
    proc = _run(
        """
        import atexit, sounding
        atexit.register(lambda: sounding.counter("app.at_exit").inc(7))
        sounding.counter("app.run").inc()
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert _stored(tmp_path, "app.run") == 1
    assert _stored(tmp_path, "app.at_exit") == 7


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX only")
def test_children_forked_during_a_flush_store_their_values(tmp_path: Path) -> None:
    """Children forked while another thread flushes open their own connection and store."""
    proc = _run(
        """
        import os, threading, sounding
        sounding.configure(cardinality_limit=50000)
        c = sounding.counter("fork.parent")
        stop = threading.Event()
        def busy():
            i = 0
            while not stop.is_set():
                for _ in range(2000):
                    i += 1
                    c.inc(tags={"k": str(i % 20000)})
                sounding.flush()
        t = threading.Thread(target=busy)
        t.start()
        pids = []
        for _ in range(8):
            pid = os.fork()
            if pid == 0:
                sounding.counter("fork.child").inc()
                ok = sounding.flush()
                os._exit(0 if ok else 1)
            pids.append(pid)
        codes = [os.waitpid(p, 0)[1] for p in pids]
        stop.set()
        t.join()
        print(codes)
        """,
        tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str([0] * 8)
    assert _stored(tmp_path, "fork.child") == 8


SIGNAL_CHILD = """
    import signal, sys, sounding
    {handler}
    sounding.configure(cardinality_limit=50000)
    c = sounding.counter("sig.c")
    h = sounding.histogram("sig.h")
    done = 0
    try:
        print("ready", flush=True)
        while True:
            for i in range(500):
                c.inc(tags={{"k": str(i)}})
                h.observe(float(i), tags={{"k": str(i % 50)}})
                done += 1
            sounding.flush()
    finally:
        print("done", done, flush=True)
"""


@pytest.mark.parametrize(
    ("sig", "handler", "code"),
    [
        (signal.SIGTERM, "signal.signal(signal.SIGTERM, lambda *a: sys.exit(3))", 3),
        (signal.SIGINT, "", -signal.SIGINT),
    ],
    ids=["sigterm-sys-exit", "ctrl-c"],
)
def test_signal_during_flush_ends_the_process_and_keeps_the_batch(
    tmp_path: Path, sig: int, handler: str, code: int
) -> None:
    """sys.exit from a SIGTERM handler or Ctrl-C during flushes stops the host, data kept."""
    for run in range(3):
        data_dir = tmp_path / str(run)
        proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(SIGNAL_CHILD.format(handler=handler))],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(data_dir),
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.5)  # let a few flushes run: the signal lands inside one of them
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == code, err
        assert "user-defined function raised exception" not in err
        done = int(out.split()[-1])
        counted = _counted(data_dir)
        assert counted.get("storage.write", 0) == 0
        total = _stored(data_dir, "sig.c") + counted.get("shutdown.values_unsaved", 0)
        # The signal may land between an increment and the script's own `done += 1`.
        assert done <= total <= done + 1
