"""Library mode: nothing on disk until the application configures; then it all lands."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

import sounding
from sounding import _runtime
from sounding.collection import events as _events
from sounding.collection.log import get_logger
from sounding.core import config, health
from sounding.testing import isolated_data_dir

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def library_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SOUNDING_DATA_DIR: the process has not said where data goes."""
    monkeypatch.delenv("SOUNDING_DATA_DIR", raising=False)
    sounding.reset()


def _clean_env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SOUNDING_") and k not in ("PYTEST_CURRENT_TEST", "DO_NOT_TRACK")
    }
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), PYTHONPATH=str(ROOT / "src"))
    return env


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _run(code: str, home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args, "-c", textwrap.dedent(code)] if not args else
        [sys.executable, *args],
        env={**_clean_env(home), **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=home,
    )


LIBRARY = """
import sounding
log = sounding.get_logger("lib")
sounding.counter("lib.calls").inc()
with sounding.histogram("lib.work", unit="ms").time():
    pass
log.info("lib.ready", items=3)
sounding.hash_identifier("someone")
sounding.flush()
"""


def test_a_library_that_records_writes_no_file_for_a_host_that_never_configured(
    tmp_path: Path,
) -> None:
    """A script using an instrumented library, never configuring, leaves no file anywhere."""
    home = tmp_path / "home"
    home.mkdir()
    proc = _run(LIBRARY, home)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert _files(home) == []


def test_a_rejected_value_in_library_mode_leaves_no_side_file(tmp_path: Path) -> None:
    """Counts of rejected values in library mode are not spilled to disk at exit either."""
    home = tmp_path / "home"
    home.mkdir()
    proc = _run(LIBRARY + "\nsounding.gauge('lib.temp').set(10**400)\n", home)
    assert proc.returncode == 0, proc.stderr
    assert _files(home) == []


def test_a_sounding_data_dir_setting_ends_library_mode(tmp_path: Path) -> None:
    """SOUNDING_DATA_DIR names where data goes: then the same script records to disk."""
    home = tmp_path / "home"
    home.mkdir()
    proc = _run(LIBRARY, home, SOUNDING_DATA_DIR=str(tmp_path / "where"))
    assert proc.returncode == 0, proc.stderr
    assert "telemetry.db" in _files(tmp_path / "where")


def test_data_recorded_before_configure_lands_under_the_apps_version(
    library_mode: None, tmp_path: Path
) -> None:
    """Counts and the session recorded in library mode land under the version configured."""
    sounding.counter("lib.calls").inc(2)
    get_logger("lib").info("lib.ready")
    assert not sounding.is_configured()
    assert sounding.flush() is False  # nothing written: nowhere to write yet
    assert _files(tmp_path) == []
    sounding.configure(app_name="host", app_version="2.0", data_dir=tmp_path / "data")
    assert sounding.is_configured()
    sounding.counter("lib.calls").inc()
    assert sounding.flush()
    store = sounding.open_store(tmp_path / "data" / "telemetry.db")
    try:
        [series] = store.series("lib.calls")
        assert series.tags["app_version"] == "2.0"
        assert [p.value for p in store.query("lib.calls", stat="sum")] == [3.0]
        assert [s.app_version for s in store.sessions(since=0)] == ["2.0"]
        assert not any(s.tags.get("app_version") == "unknown" for s in store.series())
    finally:
        store.close()


def test_library_mode_keeps_events_in_bounded_memory_and_counts_drops(
    library_mode: None,
) -> None:
    """Events beyond the buffer in library mode drop the oldest, counted, never unbounded."""
    config._apply({"event_buffer_size": 5}, config.UNSET, None, explicit=False)
    log = get_logger("lib")
    for i in range(20):
        log.info("lib.step", i=i)
    sounding.flush()
    assert len(_events.buffer) == 5
    assert health.counts()["events.dropped"] >= 15


def test_configure_with_unchanged_settings_keeps_the_store_open(tmp_path: Path) -> None:
    """A second identical configure() neither flushes nor closes the store."""
    sounding.configure(app_name="cli", data_dir=tmp_path / "d")
    sounding.counter("cli.runs").inc()
    assert sounding.flush()
    rt = _runtime.get_runtime()
    sink = rt._sink
    assert sink is not None
    sounding.counter("cli.runs").inc()
    again = sounding.configure(app_name="cli", data_dir=tmp_path / "d")
    assert again is sounding.get_settings()
    assert rt._sink is sink
    # The pending increment was not flushed by the idempotent call.
    counter = sounding.counter("cli.runs")
    assert counter._default.n == 1


@pytest.mark.parametrize(
    ("argv0", "main_spec", "expected"),
    [
        ("/usr/bin/recorder", None, "recorder"),
        ("/home/x/proj/tool.py", None, "tool"),
        ("/home/x/proj/pkg/__main__.py", "pkg.__main__", "pkg"),
        ("/home/x/proj/pkg/cli/__main__.py", "pkg.cli.__main__", "pkg"),
        ("/home/x/proj/pkg/cli.py", "pkg.cli", "pkg"),
        ("/home/x/proj/pkg/__main__.py", None, "pkg"),
        ("-c", None, None),
        ("", None, None),
    ],
)
def test_the_implicit_app_name_follows_how_python_was_started(
    monkeypatch: pytest.MonkeyPatch, argv0: str, main_spec: str | None, expected: str | None
) -> None:
    """python -m pkg gives pkg, a script its stem, python -c and a REPL no name at all."""
    import importlib.machinery
    import types

    main = types.ModuleType("__main__")
    main.__spec__ = (
        importlib.machinery.ModuleSpec(main_spec, None) if main_spec is not None else None
    )
    monkeypatch.setattr(sys, "argv", [argv0])
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert config._implicit_app_name() == expected


def test_python_dash_m_names_the_package(tmp_path: Path) -> None:
    """A real `python -m recorder` run configures under the app name `recorder`."""
    pkg = tmp_path / "recorder"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(
        "import sounding\nprint(sounding.configure(data_dir='d').app_name)\n"
    )
    env = {**_clean_env(tmp_path), "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{tmp_path}"}
    proc = subprocess.run(
        [sys.executable, "-m", "recorder"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "recorder"


def test_python_dash_c_gets_the_fallback_name(tmp_path: Path) -> None:
    """`python -c` has no implicit name: the fallback `python-app`, not `c`."""
    proc = _run("import sounding; print(sounding.configure(data_dir='d').app_name)", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == config.FALLBACK_APP_NAME


def test_under_pytest_an_implicit_data_dir_is_a_private_temporary_one(
    library_mode: None,
) -> None:
    """A host's test suite configuring without a data dir never gets the real data dir."""
    import platformdirs

    settings = sounding.configure(app_name="host")
    real = Path(platformdirs.user_data_dir("sounding", appauthor=False))
    assert real not in settings.data_dir.parents
    assert Path(tempfile.gettempdir()) in settings.data_dir.parents
    assert (settings.data_dir.parent.stat().st_mode & 0o777) == 0o700


def test_isolated_data_dir_pins_the_data_dir_and_resets(tmp_path: Path) -> None:
    """isolated_data_dir() makes the app's configure() write under the given directory."""
    with isolated_data_dir(tmp_path / "iso") as where:
        settings = sounding.configure(app_name="host", app_version="1.0")
        assert settings.data_dir == where
        sounding.counter("host.runs").inc()
    assert (tmp_path / "iso" / "telemetry.db").exists()
    assert os.environ["SOUNDING_DATA_DIR"] != str(tmp_path / "iso")


def test_the_sounding_logger_has_a_null_handler() -> None:
    """The `sounding` logger carries a NullHandler (the library convention)."""
    health.failure("test.kind", RuntimeError("boom"))
    handlers = logging.getLogger("sounding").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)
    assert health.counts()["test.kind"] == 1


HEALTH = """
import sounding
sounding.configure(data_dir="/proc/forbidden/sounding"{extra})
sounding.counter("x.y").inc()
print(sounding.flush())
"""


def test_health_messages_stay_off_stderr_unless_asked(tmp_path: Path) -> None:
    """A storage failure is silent on stderr by default, printed with debug=True or the env."""
    quiet = _run(HEALTH.format(extra=""), tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.strip() == "False"
    assert quiet.stderr == ""
    loud = _run(HEALTH.format(extra=", debug=True"), tmp_path)
    assert "failed (StoreError" in loud.stderr
    env = _run(HEALTH.format(extra=""), tmp_path, SOUNDING_DEBUG="1")
    assert "failed (StoreError" in env.stderr


def test_debug_is_a_validated_setting() -> None:
    """debug must be a bool; SOUNDING_DEBUG=1 turns it on."""
    from sounding.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="debug"):
        sounding.configure(debug="yes")
    assert sounding.configure(environ={"SOUNDING_DEBUG": "1", "SOUNDING_DATA_DIR": "/tmp/x"}).debug


@pytest.mark.parametrize(
    ("env", "configured"),
    [
        ({}, False),
        ({"SOUNDING_DATA_DIR": "/tmp/where"}, True),
        ({"SOUNDING_APP_NAME": "host"}, True),
        ({"SOUNDING_LOG_LEVEL": "debug"}, False),  # says nothing about where
    ],
)
def test_which_environment_settings_end_library_mode(
    library_mode: None, env: dict[str, str], configured: bool
) -> None:
    """Only settings that name where data goes end library mode; reading settings does not."""
    s = config._apply({}, config.UNSET, env, explicit=False)
    assert s.configured is configured
    assert sounding.configure(environ=env).configured is True


def test_a_config_file_ends_library_mode(library_mode: None, tmp_path: Path) -> None:
    """SOUNDING_CONFIG naming a TOML file counts as the application having configured."""
    toml = tmp_path / "s.toml"
    toml.write_text('app_name = "host"\n')
    s = config._apply({}, config.UNSET, {"SOUNDING_CONFIG": str(toml)}, explicit=False)
    assert s.configured
    assert s.app_name == "host"
