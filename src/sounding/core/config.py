"""Configuration: :class:`MetricsConfig` (the seed's fields and defaults) and :class:`Settings`.

Settings come from, in order of precedence: arguments to :func:`configure`, environment
variables, a TOML file (``config_file=`` or ``SOUNDING_CONFIG``), then defaults. The remote
telemetry level is the exception: the user's environment can only lower what the application
asks for, and ``DO_NOT_TRACK=1`` or ``SOUNDING_TELEMETRY=off`` force it off.

Environment variables:

============================== =======================================================
``SOUNDING_APP_NAME``          application name (names the data directory)
``SOUNDING_APP_VERSION``       application version (a default tag on every series)
``SOUNDING_DATA_DIR``          where the store, logs and salt live
``SOUNDING_TELEMETRY``         ``off|crash|error|all``; can only lower the app's level
``DO_NOT_TRACK``               ``1`` (or any value but ``0``/empty) forces remote off
``SOUNDING_CONFIG``            path of a TOML file with the same settings
``SOUNDING_LOCAL``             ``0`` turns local recording off
``SOUNDING_LOG_LEVEL``         minimum level of events recorded (``debug`` ... ``critical``)
``SOUNDING_AGGREGATION_INTERVAL`` / ``SOUNDING_RETENTION_DAYS``  MetricsConfig overrides
``SOUNDING_DEBUG``             ``1`` prints sounding's own health messages on stderr
``SOUNDING_TELEMETRY_ECHO``    ``1`` prints what would be sent instead of sending it
============================== =======================================================

Library mode: sounding follows the stdlib ``logging`` convention, libraries instrument and
only the application configures. Until the application calls :func:`configure` (or
``SOUNDING_DATA_DIR``, ``SOUNDING_APP_NAME`` or ``SOUNDING_CONFIG`` says where), nothing is
written to disk: data waits in bounded memory and lands under the application's name and
version once it configures (:func:`is_configured` tells which mode is on).
"""

from __future__ import annotations

import os
import stat
import sys
import threading
from collections.abc import Callable, Mapping

from sounding.core._config_base import (
    CONSENT_FILE,
    LOG_LEVELS,
    METRICS_FIELDS,
    check_metrics,
    is_number,
)
from sounding.core._config_base import check as _check
from sounding.core.exceptions import ConfigurationError
from sounding.core.types import TelemetryLevel

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

    from sounding.core.settings import MetricsConfig as MetricsConfig
    from sounding.core.settings import Settings as Settings

__all__ = [
    "LOG_LEVELS",
    "UNSET",
    "MetricValues",
    "MetricsConfig",
    "Resolved",
    "Settings",
    "before_configure",
    "configure",
    "current",
    "get_settings",
    "is_configured",
    "load_toml",
    "on_configure",
    "on_resolve",
    "refresh",
    "request_telemetry_level",
    "reset",
]


class _Unset:
    """Marks an argument that was not passed (distinct from ``None``)."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = _Unset()

_APP_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_APP_NAME_CHARS = _APP_NAME_START | {".", "_", "-"}


def _is_app_name(name: str) -> bool:
    """``[A-Za-z0-9][A-Za-z0-9._-]{0,63}``, whole (without `re`: a short process skips it)."""
    return len(name) <= 64 and name[:1] in _APP_NAME_START and _APP_NAME_CHARS.issuperset(name)


class _Record:
    """Value semantics for the read-only ``__slots__`` records below: equal when of the same
    class with equal ``_fields``, unhashable, and printed with their fields."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, type(self)):
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({inner})"


class MetricValues(_Record):
    """The checked values of a :class:`MetricsConfig`, as the library reads them.

    The public :class:`MetricsConfig` is a dataclass (the seed's); importing
    :mod:`dataclasses` costs a short process several milliseconds (it pulls in ``inspect``,
    ``ast``, ``dis``), so what sounding itself reads on the counter and exit paths is this
    plain ``__slots__`` object with the same fields, defaults and checks.
    """

    __slots__ = METRICS_FIELDS
    _fields = METRICS_FIELDS

    aggregation_interval: int
    retention_days: int
    baseline_window_days: int
    deviation_threshold_percent: float
    refresh_interval: int
    max_data_points: int
    enable_alerts: bool
    alert_thresholds: Mapping[str, float]

    def __init__(
        self,
        aggregation_interval: int = 60,
        retention_days: int = 30,
        baseline_window_days: int = 7,
        deviation_threshold_percent: float = 20.0,
        refresh_interval: int = 5,
        max_data_points: int = 1000,
        enable_alerts: bool = False,
        alert_thresholds: Mapping[str, float] | None = None,
    ) -> None:
        self.aggregation_interval = aggregation_interval
        self.retention_days = retention_days
        self.baseline_window_days = baseline_window_days
        self.deviation_threshold_percent = deviation_threshold_percent
        self.refresh_interval = refresh_interval
        self.max_data_points = max_data_points
        self.enable_alerts = enable_alerts
        self.alert_thresholds = {} if alert_thresholds is None else alert_thresholds
        check_metrics(self)
        # A private copy, so later changes to the caller's dict do not leak in.
        self.alert_thresholds = dict(self.alert_thresholds)

    @classmethod
    def of(cls, config: Any) -> MetricValues:
        """The values of a :class:`MetricsConfig` (already checked by its constructor)."""
        return cls(**{name: getattr(config, name) for name in METRICS_FIELDS})

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "mapping") -> MetricValues:
        """Build from a mapping (TOML table); unknown keys raise naming the allowed ones."""
        unknown = sorted(set(data) - set(METRICS_FIELDS))
        if unknown:
            raise ConfigurationError(
                f"{source}: metrics.{unknown[0]}",
                data[unknown[0]],
                "one of the keys " + ", ".join(sorted(METRICS_FIELDS)),
            )
        return cls(**dict(data))

    def replace(self, **changes: Any) -> MetricValues:
        """A copy with ``changes`` applied (and checked)."""
        values = {name: getattr(self, name) for name in METRICS_FIELDS}
        values.update(changes)
        return MetricValues(**values)



#: The app name when nothing names the application (``python -c``, an interactive shell).
FALLBACK_APP_NAME: Final = "python-app"


def _implicit_app_name() -> str | None:
    """The application's name from how Python was started, or ``None`` when it has none.

    ``python -m pkg`` (and ``python -m pkg.cli``) gives ``pkg``, ``python tool.py`` and a
    console script ``tool`` give ``tool``; ``python -c`` and an interactive session give none.
    (A module run with ``-m`` has a ``__spec__``; a script run by path has ``None``.)
    """
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 in ("", "-c", "-"):
        return None
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    module = getattr(spec, "name", None)
    name = os.path.basename(argv0.rstrip(os.sep + (os.altsep or "")))
    stem = os.path.splitext(name)[0]
    if isinstance(module, str) and module and module != "__main__":
        # `python -m pkg` (argv[0] is pkg/__main__.py) or `python -m pkg.cli`: the package.
        stem = module.split(".")[0]
    elif stem == "__main__":
        # `python path/to/pkg` (a directory with __main__.py): the directory.
        stem = os.path.basename(os.path.dirname(argv0)) if argv0 != "-m" else ""
    stem = "".join([c if c in _APP_NAME_CHARS else "-" for c in stem]).strip("-._")[:64]
    return stem if stem and _is_app_name(stem) else None


def _default_app_name() -> str:
    return _implicit_app_name() or FALLBACK_APP_NAME


def _under_test_runner(env: Mapping[str, str]) -> bool:
    """Whether a test runner (pytest) drives this process: then an implicit data dir is a
    private temporary one, never the developer's real data dir."""
    return "PYTEST_CURRENT_TEST" in env or "_pytest" in sys.modules


_test_data_root: str | None = None


def _default_data_dir(app_name: str, env: Mapping[str, str]) -> str:
    global _test_data_root
    if _under_test_runner(env):
        if _test_data_root is None:
            import tempfile

            # mkdtemp: a fresh directory only this user can enter (0700), one per process.
            _test_data_root = tempfile.mkdtemp(prefix="sounding-test-")
        return os.path.join(_test_data_root, app_name)
    base = _xdg_data_home()
    if base is None:
        import platformdirs

        base = platformdirs.user_data_dir("sounding", appauthor=False)
    else:
        base = os.path.join(base, "sounding")
    return os.path.join(base, app_name)


def _xdg_data_home() -> str | None:
    """``$XDG_DATA_HOME`` (or ``~/.local/share``) on Linux, where every platformdirs version
    agrees on it, without importing platformdirs (3-4 ms of a short process's start: it pulls
    in tempfile, shutil and random); ``None`` elsewhere and in the edge cases it handles
    (Android, a relative or missing ``HOME``)."""
    if sys.platform != "linux" or os.environ.get("ANDROID_DATA"):
        return None
    xdg = os.environ.get("XDG_DATA_HOME", "")
    if os.path.isabs(xdg):
        return xdg
    if xdg.strip():
        return None  # a relative value: platformdirs versions disagree, let it decide
    home = os.environ.get("HOME", "")
    return os.path.join(home, ".local", "share") if os.path.isabs(home) else None


#: The fields of :class:`Settings`, in its order.
SETTINGS_FIELDS: Final = (
    "app_name",
    "app_version",
    "data_dir",
    "requested_telemetry_level",
    "telemetry_level",
    "telemetry_reason",
    "telemetry_level_set",
    "telemetry_echo",
    "local_recording",
    "metrics",
    "default_tags",
    "cardinality_limit",
    "log_level",
    "log_file_max_bytes",
    "log_file_backups",
    "event_buffer_size",
    "shutdown_timeout",
    "forward_to_logging",
    "config_file",
    "debug",
    "configured",
    "exporters",
)


class Resolved(_Record):
    """The effective settings as sounding reads them internally (:func:`current`).

    The same fields as the public :class:`Settings` dataclass, but a plain ``__slots__``
    object built without :mod:`dataclasses` or :mod:`pathlib` (paths are strings, the
    metric settings a :class:`MetricValues`), so a process that only counts imports neither.
    :meth:`public` gives the :class:`Settings` that :func:`get_settings` and
    :func:`configure` return (built once, on first use).
    """

    __slots__ = (*SETTINGS_FIELDS, "_metrics_config", "_public")
    _fields = SETTINGS_FIELDS

    app_name: str
    app_version: str
    data_dir: str
    requested_telemetry_level: TelemetryLevel
    telemetry_level: TelemetryLevel
    telemetry_reason: str
    telemetry_level_set: bool
    telemetry_echo: bool
    local_recording: bool
    metrics: MetricValues
    default_tags: dict[str, str]
    cardinality_limit: int
    log_level: str
    log_file_max_bytes: int
    log_file_backups: int
    event_buffer_size: int
    shutdown_timeout: float
    forward_to_logging: bool
    config_file: str | None
    debug: bool
    configured: bool
    exporters: tuple[Any, ...]
    _metrics_config: MetricsConfig | None
    _public: Settings | None

    def __init__(self, metrics_config: MetricsConfig | None = None, **values: Any) -> None:
        for name in SETTINGS_FIELDS:
            object.__setattr__(self, name, values[name])
        object.__setattr__(self, "_metrics_config", metrics_config)
        object.__setattr__(self, "_public", None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Resolved settings are read-only ({name})")

    @property
    def store_path(self) -> str:
        """The SQLite store: ``telemetry.db`` in the data directory."""
        return os.path.join(self.data_dir, "telemetry.db")

    @property
    def log_path(self) -> str:
        """The JSON-lines event log in the data directory."""
        return os.path.join(self.data_dir, "events.jsonl")

    @property
    def log_level_no(self) -> int:
        """The minimum level as a stdlib logging number."""
        return LOG_LEVELS[self.log_level]

    def public(self) -> Settings:
        """These settings as the public :class:`Settings` dataclass."""
        out = self._public
        if out is None:
            from pathlib import Path

            from sounding.core.settings import MetricsConfig, Settings

            values: dict[str, Any] = {name: getattr(self, name) for name in SETTINGS_FIELDS}
            values["data_dir"] = Path(self.data_dir)
            if self.config_file is not None:
                values["config_file"] = Path(self.config_file)
            values["metrics"] = self._metrics_config or MetricsConfig(
                **{name: getattr(self.metrics, name) for name in METRICS_FIELDS}
            )
            out = Settings(**values)
            object.__setattr__(self, "_public", out)
        return out



#: A settings file is a few hundred bytes; anything this big is not one.
MAX_CONFIG_BYTES = 1024 * 1024


def load_toml(path: str | os.PathLike[str], *, setting: str = "config_file") -> dict[str, Any]:
    """Read sounding settings from a TOML file.

    The settings may sit at the top level, under ``[sounding]`` or under ``[tool.sounding]``
    (so ``pyproject.toml`` works). Only a regular file of at most :data:`MAX_CONFIG_BYTES`
    of UTF-8 text is read (a FIFO cannot hang the host, ``/dev/zero`` cannot fill memory);
    every problem raises :class:`ConfigurationError` naming ``setting`` (``config_file``, or
    ``SOUNDING_CONFIG`` when the path came from the environment) and the file.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

    p = os.fspath(path)
    allowed = f"a regular UTF-8 TOML file of at most {MAX_CONFIG_BYTES} bytes"
    try:
        # Non-blocking: opening a FIFO must not wait for a writer.
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ConfigurationError(setting, str(p), "an existing TOML file") from None
    except OSError as exc:
        raise ConfigurationError(setting, str(p), allowed, detail=str(exc)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigurationError(setting, str(p), allowed, detail="not a regular file")
        if st.st_size > MAX_CONFIG_BYTES:
            raise ConfigurationError(setting, str(p), allowed, detail=f"{st.st_size} bytes")
        raw = os.read(fd, MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(setting, str(p), allowed, detail=str(exc)) from None
    finally:
        os.close(fd)
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigurationError(setting, str(p), allowed, detail="file too large")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigurationError(setting, str(p), allowed, detail=f"not UTF-8: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(setting, str(p), "a valid TOML file", detail=str(exc)) from None
    except RecursionError:
        raise ConfigurationError(
            setting, str(p), "a valid TOML file", detail="nested too deeply"
        ) from None
    table: Any = data
    if isinstance(data.get("tool"), dict) and isinstance(data["tool"].get("sounding"), dict):
        table = data["tool"]["sounding"]
    elif isinstance(data.get("sounding"), dict):
        table = data["sounding"]
    return dict(table)


_FIELDS = {
    "app_name",
    "app_version",
    "data_dir",
    "telemetry_level",
    "local_recording",
    "metrics",
    "default_tags",
    "cardinality_limit",
    "log_level",
    "log_file_max_bytes",
    "log_file_backups",
    "event_buffer_size",
    "shutdown_timeout",
    "forward_to_logging",
    "debug",
    "telemetry_echo",
    "exporters",
}

#: Environment variables that name where data goes: any of them ends library mode.
_WHERE_ENV: Final = ("SOUNDING_DATA_DIR", "SOUNDING_APP_NAME", "SOUNDING_CONFIG")


def _truthy_env(value: str) -> bool:
    return value.strip().lower() not in ("", "0", "false", "no", "off")


def _parse_level(value: Any, source: str) -> TelemetryLevel:
    if isinstance(value, TelemetryLevel):
        return value
    if isinstance(value, str):
        try:
            return TelemetryLevel(value.strip().lower())
        except ValueError:
            pass
    raise ConfigurationError(source, value, "one of off, crash, error, all")


def _env_int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(name, raw, "an integer") from None


def _build(
    overrides: Mapping[str, Any],
    env: Mapping[str, str],
    config_file: Any,
    explicit: bool = True,
) -> Resolved:
    unknown = sorted(set(overrides) - _FIELDS)
    if unknown:
        raise ConfigurationError(
            unknown[0], overrides[unknown[0]], "a known setting: " + ", ".join(sorted(_FIELDS))
        )
    file_path: str | None = None
    file_setting = "config_file"
    if config_file is not UNSET and config_file is not None:
        if not isinstance(config_file, (str, os.PathLike)):
            raise ConfigurationError("config_file", config_file, "a path to a TOML file")
        file_path = os.fspath(config_file)
    elif env.get("SOUNDING_CONFIG"):
        file_path = env["SOUNDING_CONFIG"]
        file_setting = "SOUNDING_CONFIG"
    from_file: dict[str, Any] = (
        load_toml(file_path, setting=file_setting) if file_path is not None else {}
    )
    unknown = sorted(set(from_file) - _FIELDS)
    if unknown:
        raise ConfigurationError(
            f"{file_path}: {unknown[0]}",
            from_file[unknown[0]],
            "a known setting: " + ", ".join(sorted(_FIELDS)),
        )

    # Where each value came from, so an error names what the user must fix: the argument,
    # the environment variable or the file's key.
    sources: dict[str, str] = {}

    def pick(name: str, env_name: str | None = None) -> Any:
        if name in overrides:
            return overrides[name]
        if env_name and env.get(env_name):
            sources[name] = env_name
            return env[env_name]
        if name in from_file:
            sources[name] = f"{file_path}: {name}"
            return from_file[name]
        return UNSET

    def src(name: str) -> str:
        return sources.get(name, name)

    app_name = pick("app_name", "SOUNDING_APP_NAME")
    app_name = _default_app_name() if app_name is UNSET else app_name
    _check(
        isinstance(app_name, str) and _is_app_name(app_name),
        src("app_name"),
        app_name,
        "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
    )
    app_version = pick("app_version", "SOUNDING_APP_VERSION")
    app_version = "unknown" if app_version is UNSET else app_version
    _check(
        isinstance(app_version, str) and 0 < len(app_version) <= 64,
        src("app_version"),
        app_version,
        "a non-empty string of at most 64 characters",
    )
    data_dir = pick("data_dir", "SOUNDING_DATA_DIR")
    if data_dir is UNSET or data_dir is None:
        data_dir = _default_data_dir(app_name, env)
    _check(isinstance(data_dir, (str, os.PathLike)), src("data_dir"), data_dir, "a path")
    try:
        encodable = b"\0" not in os.fsencode(data_dir)
    except (UnicodeEncodeError, TypeError, ValueError):
        encodable = False
    _check(encodable, src("data_dir"), data_dir, "a path the file system can encode (no NUL)")
    data_dir = os.fspath(data_dir)
    _check(isinstance(data_dir, str), src("data_dir"), data_dir, "a path")
    data_dir = os.path.expanduser(data_dir)

    # Telemetry level: the app asks, the user's environment may only lower it.
    requested = pick("telemetry_level")
    level_set = requested is not UNSET
    requested = (
        TelemetryLevel.OFF if requested is UNSET else _parse_level(requested, "telemetry_level")
    )
    level, reason = requested, f"requested by the application ({requested.value})"
    if requested is TelemetryLevel.OFF:
        reason = "default: nothing leaves the machine unless the app opts in"
    env_level = env.get("SOUNDING_TELEMETRY")
    if env_level:
        user = _parse_level(env_level, "SOUNDING_TELEMETRY")
        if user.rank < level.rank:
            level, reason = user, f"lowered by SOUNDING_TELEMETRY={user.value}"
    # The user's choice stored by the consent helper (``sounding telemetry ...``) also only
    # lowers; while the first-run notice is on screen nothing is sent at all.
    choice = _stored_choice(data_dir)
    if choice is not None and choice.level.rank < level.rank:
        level, reason = choice.level, f"lowered by the user's choice ({choice.level.value})"
    if _notice_shown_this_run() and level is not TelemetryLevel.OFF:
        level, reason = TelemetryLevel.OFF, "first run: nothing is sent while the notice shows"
    dnt = env.get("DO_NOT_TRACK")
    if dnt is not None and _truthy_env(dnt):
        level, reason = TelemetryLevel.OFF, f"forced off by DO_NOT_TRACK={dnt}"
    echo = pick("telemetry_echo")
    if env.get("SOUNDING_TELEMETRY_ECHO") and "telemetry_echo" not in overrides:
        echo = _truthy_env(env["SOUNDING_TELEMETRY_ECHO"])
    echo = (choice is not None and choice.echo) if echo is UNSET else echo
    _check(isinstance(echo, bool), "telemetry_echo", echo, "True or False")

    local = pick("local_recording")
    if env.get("SOUNDING_LOCAL") is not None and "local_recording" not in overrides:
        local = _truthy_env(env["SOUNDING_LOCAL"])
    local = True if local is UNSET else local
    _check(isinstance(local, bool), "local_recording", local, "True or False")

    metrics = pick("metrics")
    # The application's own MetricsConfig is kept for the public Settings; sounding reads its
    # values (a MetricValues, which needs no dataclasses import when none was given).
    metrics_config: MetricsConfig | None = None
    if metrics is UNSET:
        values = MetricValues()
    elif isinstance(metrics, Mapping):
        values = MetricValues.from_mapping(metrics, source=str(file_path or "metrics"))
    else:
        from sounding.core.settings import MetricsConfig

        _check(isinstance(metrics, MetricsConfig), "metrics", metrics, "a MetricsConfig")
        metrics_config = metrics
        values = MetricValues.of(metrics)
    env_changes: dict[str, int] = {}
    for key, env_name in (
        ("aggregation_interval", "SOUNDING_AGGREGATION_INTERVAL"),
        ("retention_days", "SOUNDING_RETENTION_DAYS"),
    ):
        v = _env_int(env, env_name)
        if v is not None and "metrics" not in overrides:
            env_changes[key] = v
    if env_changes:
        values = values.replace(**env_changes)
        metrics_config = None

    default_tags = pick("default_tags")
    if default_tags is UNSET or default_tags is None:
        default_tags = {"app_version": app_version, "platform": sys.platform}
    _check(
        isinstance(default_tags, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in default_tags.items()),
        "default_tags",
        default_tags,
        "a mapping of str to str (pass {} for none)",
    )

    def number(name: str, default: Any, cond: Callable[[Any], bool], allowed: str) -> Any:
        v = pick(name)
        v = default if v is UNSET else v
        _check(is_number(v) and cond(v), src(name), v, allowed)
        return v

    cardinality = number(
        "cardinality_limit", 2000, lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"
    )
    max_bytes = number(
        "log_file_max_bytes",
        5 * 1024 * 1024,
        lambda v: isinstance(v, int) and v >= 1024,
        "an integer >= 1024 (bytes)",
    )
    backups = number(
        "log_file_backups", 3, lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"
    )
    buffer_size = number(
        "event_buffer_size",
        10_000,
        lambda v: isinstance(v, int) and v >= 1,
        "an integer >= 1",
    )
    shutdown = number(
        "shutdown_timeout", 2.0, lambda v: 0 <= v <= 60, "a number of seconds from 0 to 60"
    )
    log_level = pick("log_level", "SOUNDING_LOG_LEVEL")
    log_level = "info" if log_level is UNSET else log_level
    _check(
        isinstance(log_level, str) and log_level.lower() in LOG_LEVELS,
        src("log_level"),
        log_level,
        "one of " + ", ".join(LOG_LEVELS),
    )
    forward = pick("forward_to_logging")
    forward = False if forward is UNSET else forward
    _check(isinstance(forward, bool), "forward_to_logging", forward, "True or False")
    debug = pick("debug")
    if env.get("SOUNDING_DEBUG") and "debug" not in overrides:
        debug = _truthy_env(env["SOUNDING_DEBUG"])
    debug = False if debug is UNSET else debug
    _check(isinstance(debug, bool), "debug", debug, "True or False")
    configured = (
        explicit or file_path is not None or any(env.get(name) for name in _WHERE_ENV)
    )

    exporters = pick("exporters")
    exporters = () if exporters is UNSET or exporters is None else exporters
    _check(
        isinstance(exporters, (list, tuple))
        and all(isinstance(e, Mapping) or hasattr(type(e), "destination") for e in exporters),
        "exporters",
        exporters,
        "a list of sounding.exporters exporters (or TOML tables with type and url)",
    )

    return Resolved(
        metrics_config,
        app_name=app_name,
        app_version=app_version,
        data_dir=data_dir,
        requested_telemetry_level=requested,
        telemetry_level=level,
        telemetry_reason=reason,
        telemetry_level_set=level_set,
        telemetry_echo=echo,
        local_recording=local,
        metrics=values,
        default_tags=dict(default_tags),
        cardinality_limit=cardinality,
        log_level=log_level.lower(),
        log_file_max_bytes=max_bytes,
        log_file_backups=backups,
        event_buffer_size=buffer_size,
        shutdown_timeout=float(shutdown),
        forward_to_logging=forward,
        config_file=file_path,
        debug=debug,
        configured=configured,
        exporters=tuple(exporters),
    )


def _stored_choice(data_dir: str) -> Any:
    """The user's stored choice in ``data_dir`` (a ``ConsentChoice``), or ``None``.

    :mod:`sounding.core.consent_choice` (``json``, a dataclass) is imported only when the
    file is there, or cannot be looked at (the reader then counts the failure and reads the
    strictest choice): most processes have no stored choice.
    """
    try:
        os.stat(os.path.join(data_dir, CONSENT_FILE))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        pass
    from sounding.core import consent_choice

    return consent_choice.read_choice(data_dir)


def _notice_shown_this_run() -> bool:
    # Only the consent helper shows the notice, and it imports consent_choice to say so.
    module = sys.modules.get("sounding.core.consent_choice")
    return module is not None and bool(module.notice_shown_this_run())


def __getattr__(name: str) -> Any:
    # PEP 562: the public dataclasses (and the `dataclasses` import they cost) on first use.
    if name in ("MetricsConfig", "Settings"):
        from sounding.core import settings

        return getattr(settings, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_lock = threading.RLock()
_settings: Resolved | None = None
_overrides: dict[str, Any] = {}
_config_file: Any = UNSET
_explicit = False
_resolve_listeners: list[Callable[[Resolved], None]] = []
_listeners: list[Callable[[Settings], None]] = []
_before: list[Callable[[], None]] = []


def configure(
    *,
    app_name: Any = UNSET,
    app_version: Any = UNSET,
    data_dir: Any = UNSET,
    telemetry_level: Any = UNSET,
    metrics: Any = UNSET,
    config_file: Any = UNSET,
    environ: Mapping[str, str] | None = None,
    **more: Any,
) -> Settings:
    """Configure sounding (the application's call); returns the effective :class:`Settings`.

    Arguments not passed keep their previous value (from an earlier call, the environment, the
    TOML file or the default). Calling it again with the same settings is cheap and changes
    nothing. ``debug=True`` prints sounding's own health messages on stderr. Raises
    :class:`~sounding.exceptions.ConfigurationError` naming the field, the value and what is
    allowed.

    >>> import sounding
    >>> s = sounding.configure(app_name="recorder", app_version="1.4.2",
    ...                        data_dir="/tmp/sounding-doc", telemetry_level="off")
    >>> s.app_version, s.default_tags["app_version"]
    ('1.4.2', '1.4.2')
    >>> sounding.reset()
    """
    given = {
        k: v
        for k, v in {
            "app_name": app_name,
            "app_version": app_version,
            "data_dir": data_dir,
            "telemetry_level": telemetry_level,
            "metrics": metrics,
            **more,
        }.items()
        if v is not UNSET
    }
    return _apply(given, config_file, environ, explicit=True).public()


def _apply(
    given: Mapping[str, Any],
    config_file: Any,
    environ: Mapping[str, str] | None,
    *,
    explicit: bool,
) -> Resolved:
    global _settings, _config_file, _explicit
    with _lock:
        merged = {**_overrides, **given}
        cfg_file = config_file if config_file is not UNSET else _config_file
        explicit = explicit or _explicit
        new = _build(merged, os.environ if environ is None else environ, cfg_file, explicit)
        if new == _settings:
            # Nothing changed (a CLI that configures in every command): no flush, no close.
            _overrides.clear()
            _overrides.update(merged)
            _config_file = cfg_file
            _explicit = explicit
            return _settings
        if _settings is not None:
            for hook in list(_before):
                hook()
        _overrides.clear()
        _overrides.update(merged)
        _config_file = cfg_file
        _explicit = explicit
        _settings = new
        resolve_listeners = list(_resolve_listeners)
        listeners = list(_listeners)
    for resolve_listener in resolve_listeners:
        resolve_listener(new)
    if listeners:
        public = new.public()
        for listener in listeners:
            listener(public)
    return new


def refresh() -> Settings:
    """Rebuild the settings from what was given so far (the user's stored consent changed).

    Unlike :func:`configure` this does not end library mode.
    """
    return _apply({}, UNSET, None, explicit=False).public()


def request_telemetry_level(level: TelemetryLevel | str) -> Settings:
    """Ask for ``level`` on the application's behalf when it configured none (what
    ``initialize_telemetry(enabled=True)`` means); the user's environment can still lower
    it. Does not end library mode."""
    return _apply(
        {"telemetry_level": _parse_level(level, "level")}, UNSET, None, explicit=False
    ).public()


def get_settings() -> Settings:
    """The effective settings (built from the environment on first use).

    Reading the settings does not configure sounding: a library that records before its
    host application configured leaves sounding in library mode (:func:`is_configured`).
    """
    return current().public()


def current() -> Resolved:
    """The effective settings as sounding reads them (:class:`Resolved`: what
    :func:`get_settings` returns, without building the public dataclass)."""
    s = _settings
    if s is None:
        with _lock:
            if _settings is None:
                return _apply({}, UNSET, None, explicit=False)
            return _settings
    return s


def is_configured() -> bool:
    """Whether the application configured sounding, so that it records to disk.

    ``True`` after :func:`configure` or when ``SOUNDING_DATA_DIR``, ``SOUNDING_APP_NAME`` or
    ``SOUNDING_CONFIG`` is set. Until then sounding is in library mode: calls are kept in
    bounded memory and nothing is written.

    >>> import sounding
    >>> _ = sounding.configure(data_dir="/tmp/sounding-doc")
    >>> sounding.is_configured()
    True
    >>> sounding.reset()
    """
    return current().configured


def on_configure(listener: Callable[[Settings], None]) -> None:
    """Call ``listener(settings)`` after every :func:`configure` (sessions, logging)."""
    with _lock:
        if listener not in _listeners:
            _listeners.append(listener)


def on_resolve(listener: Callable[[Resolved], None]) -> None:
    """Like :func:`on_configure`, with the :class:`Resolved` settings (the runtime: a short
    process that only counts never builds the public dataclass)."""
    with _lock:
        if listener not in _resolve_listeners:
            _resolve_listeners.append(listener)


def before_configure(hook: Callable[[], None]) -> None:
    """Call ``hook()`` before new settings replace existing ones (the runtime flushes)."""
    with _lock:
        if hook not in _before:
            _before.append(hook)


def reset() -> None:
    """Forget every setting (tests). The next :func:`get_settings` reads the environment."""
    global _settings, _config_file, _explicit
    with _lock:
        _settings = None
        _overrides.clear()
        _config_file = UNSET
        _explicit = False
