"""Hostile files: planted symlinks, loose modes, world-writable dirs, hostile config files."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import sounding
from sounding.collection.jsonl import JsonlWriter
from sounding.core import health
from sounding.core.config import load_toml
from sounding.core.exceptions import ConfigurationError, UnsafePathError
from sounding.core.private import open_private, private_dir, write_private
from sounding.storage import SQLiteSink

SRC = str(Path(sounding.__file__).resolve().parents[1])
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX modes and symlinks")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@posix_only
def test_events_jsonl_symlink_is_not_followed(tmp_path: Path) -> None:
    """A symlink planted as events.jsonl is refused: the victim is not appended nor chmodded."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    victim.chmod(0o644)
    data = private_dir(tmp_path / "data")
    (data / "events.jsonl").symlink_to(victim)
    writer = JsonlWriter(data / "events.jsonl")
    writer.write([{"event": "x"}])
    writer.close()
    assert victim.read_text() == "precious\n"
    assert _mode(victim) == 0o644
    assert health.counts().get("log.file") == 1


@posix_only
def test_store_symlink_is_refused(tmp_path: Path) -> None:
    """A symlink planted as telemetry.db makes the write fail (counted by the runtime)."""
    victim = tmp_path / "victim.db"
    victim.write_bytes(b"")
    victim.chmod(0o644)
    data = private_dir(tmp_path / "data")
    (data / "telemetry.db").symlink_to(victim)
    sink = SQLiteSink(data / "telemetry.db")
    with pytest.raises(sounding.exceptions.StoreError, match="symbolic link"):
        sink.write([], [{"timestamp": 1.0, "event": "e"}])
    sink.close()
    assert victim.read_bytes() == b""
    assert _mode(victim) == 0o644


@posix_only
def test_world_writable_data_dir_is_refused(tmp_path: Path) -> None:
    """A world-writable data dir (no sticky bit) is refused with a message saying the fix."""
    loose = tmp_path / "loose"
    loose.mkdir()
    loose.chmod(0o777)
    with pytest.raises(UnsafePathError, match="world-writable"):
        private_dir(loose)


@posix_only
def test_parents_are_created_0700_under_umask_000(tmp_path: Path) -> None:
    """Every missing parent of the data dir is 0700 even when the umask allows everything."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import os, sounding
                os.umask(0)
                sounding.configure(data_dir={str(tmp_path / "a" / "b" / "c")!r})
                sounding.get_logger("t").info("hello")
                print(sounding.flush())
                """
            ),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
        timeout=60,
    )
    assert proc.stdout.strip() == "True", proc.stderr
    for d in ("a", "a/b", "a/b/c"):
        assert _mode(tmp_path / d) == 0o700, d
    for f in ("telemetry.db", "events.jsonl"):
        assert _mode(tmp_path / "a" / "b" / "c" / f) == 0o600, f


@posix_only
def test_open_private_tightens_a_loose_file_and_refuses_a_fifo(tmp_path: Path) -> None:
    """An existing 0644 file is made 0600; a FIFO is refused at once instead of blocking."""
    loose = tmp_path / "loose"
    loose.write_text("x")
    loose.chmod(0o644)
    os.close(open_private(loose, os.O_WRONLY | os.O_APPEND))
    assert _mode(loose) == 0o600
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UnsafePathError, match="not a regular file"):
        open_private(fifo, os.O_RDONLY)


@posix_only
def test_write_private_replaces_an_existing_0644_file(tmp_path: Path) -> None:
    """write_private (used by `report -o`) leaves a 0600 file even over an existing 0644 one."""
    out = tmp_path / "report.html"
    out.write_text("old")
    out.chmod(0o644)
    write_private(out, b"<html></html>")
    assert out.read_bytes() == b"<html></html>"
    assert _mode(out) == 0o600


def test_lone_surrogate_does_not_drop_the_jsonl_batch(tmp_path: Path) -> None:
    """An event holding a lone surrogate is written escaped; its batch neighbours survive."""
    path = tmp_path / "events.jsonl"
    writer = JsonlWriter(path)
    writer.write([{"event": "a"}, {"event": "bad\ud800"}, {"event": "c"}])
    writer.close()
    lines = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert [e["event"] for e in lines] == ["a", "bad\ud800", "c"]
    assert health.counts().get("log.text_replaced") == 1


@posix_only
def test_two_writers_follow_a_rotation_instead_of_appending_to_the_old_file(
    tmp_path: Path,
) -> None:
    """After one writer rotates, the other writes to the new events.jsonl, not to .1."""
    path = tmp_path / "events.jsonl"
    a = JsonlWriter(path, max_bytes=1024, backups=2)
    b = JsonlWriter(path, max_bytes=1024, backups=2)
    a.write([{"event": "a0", "pad": "x" * 600}])
    b.write([{"event": "b0", "pad": "x" * 100}])
    a.write([{"event": "a1", "pad": "x" * 600}])  # rotates: a0 and b0 go to .1
    b.write([{"event": "b1"}])
    a.close()
    b.close()
    current = [json.loads(x)["event"] for x in path.read_text().splitlines()]
    old = [json.loads(x)["event"] for x in (tmp_path / "events.jsonl.1").read_text().splitlines()]
    assert current == ["a1", "b1"]
    assert old == ["a0", "b0"]


@pytest.mark.parametrize("kind", ["fifo", "dir", "utf8", "deep", "devzero", "big"])
def test_hostile_config_files_raise_configuration_error(tmp_path: Path, kind: str) -> None:
    """A FIFO, a dir, bad UTF-8, deep nesting, /dev/zero or a huge file: ConfigurationError."""
    path = tmp_path / "sounding.toml"
    if kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        os.mkfifo(path)
    elif kind == "dir":
        path.mkdir()
    elif kind == "utf8":
        path.write_bytes(b"app_name = '\xff\xfe'\n")
    elif kind == "deep":
        path.write_text("a = " + "[" * 500 + "]" * 500 + "\n")
    elif kind == "devzero":
        if not os.path.exists("/dev/zero"):
            pytest.skip("no /dev/zero here")
        path = Path("/dev/zero")
    else:
        path.write_text("# " + "x" * (2 * 1024 * 1024) + "\n")
    with pytest.raises(ConfigurationError) as info:
        load_toml(path, setting="SOUNDING_CONFIG")
    assert info.value.field == "SOUNDING_CONFIG"
    assert str(path) in str(info.value)


def test_hostile_config_from_the_environment_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SOUNDING_CONFIG pointing at a directory fails the first call naming the variable."""
    monkeypatch.setenv("SOUNDING_CONFIG", str(tmp_path))
    with pytest.raises(ConfigurationError, match="SOUNDING_CONFIG"):
        sounding.get_settings()


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("SOUNDING_LOG_LEVEL", "loud"),
        ("SOUNDING_APP_NAME", "no spaces allowed"),
        ("SOUNDING_APP_VERSION", "v" * 100),
    ],
)
def test_bad_environment_values_name_their_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    """An invalid value from the environment raises naming the variable, not the field."""
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigurationError) as info:
        sounding.get_settings()
    assert info.value.field == var


@posix_only
@pytest.mark.parametrize("form", ["absolute", "relative", "trailing slash"])
def test_private_dir_creates_each_missing_parent_0700(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    """Every missing directory is created 0700 (whatever the umask), absolute or relative."""
    monkeypatch.chdir(tmp_path)
    target = {"absolute": str(tmp_path / "a" / "b"), "relative": "a/b", "trailing slash": "a/b/"}
    old = os.umask(0)
    try:
        made = private_dir(target[form])
    finally:
        os.umask(old)
    assert made == Path(target[form])
    assert _mode(tmp_path / "a") == 0o700
    assert _mode(tmp_path / "a" / "b") == 0o700


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("dir-that-exists", "dir-that-exists/telemetry.db"),
        ("new-dir", "new-dir/telemetry.db"),
        ("store.db", "store.db"),
        ("store.SQLITE3", "store.SQLITE3"),
        ("new-dir/.db", "new-dir/.db/telemetry.db"),
        ("name.", "name./telemetry.db"),
    ],
)
def test_store_path_of_a_file_or_a_directory(tmp_path: Path, given: str, expected: str) -> None:
    """A directory, or a name without a database suffix, means <dir>/telemetry.db."""
    from sounding.storage import _db

    (tmp_path / "dir-that-exists").mkdir()
    assert _db.resolve(tmp_path / given) == str(tmp_path / expected)
    assert _db.resolve_path(str(tmp_path / given)) == tmp_path / expected
