"""Configuration: MetricsConfig validation, configure(), environment, TOML, telemetry level."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import sounding
from sounding import MetricsConfig, TelemetryLevel
from sounding.core.config import get_settings, load_toml
from sounding.exceptions import ConfigurationError


def test_metrics_config_has_the_seed_fields_and_defaults() -> None:
    """The seed's MetricsConfig fields and defaults are part of the API."""
    c = MetricsConfig()
    assert (
        c.aggregation_interval,
        c.retention_days,
        c.baseline_window_days,
        c.deviation_threshold_percent,
        c.refresh_interval,
        c.max_data_points,
        c.enable_alerts,
        c.alert_thresholds,
    ) == (60, 30, 7, 20.0, 5, 1000, False, {})


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("aggregation_interval", 0, "integer >= 1"),
        ("aggregation_interval", 1.5, "integer >= 1"),
        ("aggregation_interval", 10**6, "at most 86400"),
        ("retention_days", -1, "integer >= 1"),
        ("baseline_window_days", "7", "integer >= 1"),
        ("deviation_threshold_percent", float("nan"), "finite number > 0"),
        ("deviation_threshold_percent", 0, "finite number > 0"),
        ("refresh_interval", True, "integer >= 1"),
        ("max_data_points", 1, "integer >= 2"),
        ("enable_alerts", "yes", "True or False"),
        ("alert_thresholds", [1], "mapping"),
    ],
)
def test_invalid_metrics_config_names_field_value_and_allowed(
    field: str, value: Any, allowed: str
) -> None:
    """A bad value raises at once, naming the field, the value and what is allowed."""
    with pytest.raises(ConfigurationError) as info:
        MetricsConfig(**{field: value})
    msg = str(info.value)
    assert field in msg
    assert repr(value)[:20] in msg
    assert allowed in msg
    assert isinstance(info.value, ValueError)


def test_alert_threshold_values_are_checked() -> None:
    """Each alert threshold must be a finite number."""
    with pytest.raises(ConfigurationError, match=r"alert_thresholds\['x'\]"):
        MetricsConfig(alert_thresholds={"x": float("inf")})


def test_configure_sets_app_identity_and_default_tags(tmp_path: Path) -> None:
    """configure() returns effective settings; the app version becomes a default tag."""
    s = sounding.configure(app_name="recorder", app_version="1.4.2", data_dir=tmp_path)
    assert s.app_name == "recorder"
    assert s.data_dir == tmp_path
    assert s.store_path == tmp_path / "telemetry.db"
    assert s.default_tags["app_version"] == "1.4.2"
    assert "platform" in s.default_tags
    assert get_settings() is s


def test_configure_keeps_earlier_arguments(tmp_path: Path) -> None:
    """A later configure() call changes only what it passes."""
    sounding.configure(app_name="recorder", data_dir=tmp_path)
    s = sounding.configure(app_version="2.0")
    assert (s.app_name, s.app_version) == ("recorder", "2.0")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"app_name": "no spaces allowed"}, "app_name"),
        ({"app_version": ""}, "app_version"),
        ({"telemetry_level": "verbose"}, "telemetry_level"),
        ({"metrics": 3}, "metrics"),
        ({"cardinality_limit": 0}, "cardinality_limit"),
        ({"shutdown_timeout": -1}, "shutdown_timeout"),
        ({"log_level": "loud"}, "log_level"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_configure_rejects_bad_values(kwargs: dict[str, Any], field: str) -> None:
    """Bad settings raise ConfigurationError naming the setting."""
    with pytest.raises(ConfigurationError, match=field):
        sounding.configure(**kwargs)


def test_environment_supplies_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """SOUNDING_* variables configure the same settings."""
    monkeypatch.setenv("SOUNDING_APP_NAME", "envapp")
    monkeypatch.setenv("SOUNDING_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("SOUNDING_AGGREGATION_INTERVAL", "10")
    s = sounding.configure()
    assert s.app_name == "envapp"
    assert s.data_dir == tmp_path / "d"
    assert s.metrics.aggregation_interval == 10


def test_bad_environment_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed environment variable is named in the error."""
    monkeypatch.setenv("SOUNDING_RETENTION_DAYS", "a month")
    with pytest.raises(ConfigurationError, match="SOUNDING_RETENTION_DAYS"):
        sounding.configure()


def test_arguments_beat_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Explicit configure() arguments win over the environment."""
    monkeypatch.setenv("SOUNDING_APP_VERSION", "9.9")
    assert sounding.configure(app_version="1.0").app_version == "1.0"


@pytest.mark.parametrize(
    ("app_level", "env", "expected", "reason"),
    [
        ("all", {}, TelemetryLevel.ALL, "requested by the application"),
        ("all", {"DO_NOT_TRACK": "1"}, TelemetryLevel.OFF, "DO_NOT_TRACK"),
        ("all", {"DO_NOT_TRACK": "0"}, TelemetryLevel.ALL, "requested"),
        ("all", {"SOUNDING_TELEMETRY": "off"}, TelemetryLevel.OFF, "SOUNDING_TELEMETRY"),
        ("all", {"SOUNDING_TELEMETRY": "crash"}, TelemetryLevel.CRASH, "SOUNDING_TELEMETRY"),
        ("error", {"SOUNDING_TELEMETRY": "all"}, TelemetryLevel.ERROR, "requested"),
        ("off", {}, TelemetryLevel.OFF, "default"),
    ],
)
def test_user_environment_can_only_lower_the_telemetry_level(
    app_level: str, env: dict[str, str], expected: TelemetryLevel, reason: str
) -> None:
    """DO_NOT_TRACK and SOUNDING_TELEMETRY lower the app's level, never raise it."""
    s = sounding.configure(telemetry_level=app_level, environ=env)
    assert s.telemetry_level is expected
    assert reason in s.telemetry_reason


def test_remote_telemetry_is_off_by_default() -> None:
    """Nothing leaves the machine unless the app opts in."""
    assert get_settings().telemetry_level is TelemetryLevel.OFF
    assert get_settings().local_recording is True


def test_toml_file(tmp_path: Path) -> None:
    """Settings load from a TOML file, under [sounding] or [tool.sounding]."""
    cfg = tmp_path / "sounding.toml"
    cfg.write_text(
        '[tool.sounding]\napp_name = "tomlapp"\ntelemetry_level = "error"\n'
        "[tool.sounding.metrics]\nretention_days = 9\n"
        '[tool.sounding.metrics.alert_thresholds]\n"op.duration" = 250\n'
    )
    s = sounding.configure(config_file=cfg)
    assert s.app_name == "tomlapp"
    assert s.telemetry_level is TelemetryLevel.ERROR
    assert s.metrics.retention_days == 9
    assert s.metrics.alert_thresholds == {"op.duration": 250}


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("app_name = [", "valid TOML"),
        ("colour = 1", "colour"),
        ("[metrics]\nretention = 3", "metrics.retention"),
    ],
)
def test_bad_toml_is_reported_with_the_file(tmp_path: Path, content: str, match: str) -> None:
    """A broken or unknown TOML setting raises naming the file and the key."""
    cfg = tmp_path / "bad.toml"
    cfg.write_text(content)
    with pytest.raises(ConfigurationError, match=match):
        sounding.configure(config_file=cfg)


def test_missing_toml_file() -> None:
    """A config file that does not exist is a clear error."""
    with pytest.raises(ConfigurationError, match="an existing TOML file"):
        load_toml("/nonexistent/sounding.toml")


def test_reset_forgets_configuration(tmp_path: Path) -> None:
    """reset() returns to environment and defaults."""
    sounding.configure(app_name="temp", data_dir=tmp_path)
    sounding.reset()
    assert get_settings().app_name != "temp"


@pytest.mark.parametrize(
    ("xdg", "home"),
    [(None, "/home/alice"), ("/srv/xdg", "/home/alice"), ("", "/root"), ("   ", "/home/bob")],
)
def test_default_data_dir_without_platformdirs_matches_it(
    monkeypatch: pytest.MonkeyPatch, xdg: str | None, home: str
) -> None:
    """The Linux fast path for the data directory gives platformdirs' own answer."""
    import sys

    import platformdirs

    from sounding.core import config

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("ANDROID_DATA", raising=False)
    monkeypatch.setenv("HOME", home)
    if xdg is None:
        monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_DATA_HOME", xdg)
    fast = config._xdg_data_home()
    assert fast is not None
    assert Path(fast) / "sounding" == Path(
        platformdirs.user_data_dir("sounding", appauthor=False, ensure_exists=False)
    )


def test_default_data_dir_leaves_odd_environments_to_platformdirs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A relative XDG_DATA_HOME or HOME, or another platform, is not guessed."""
    import sys

    from sounding.core import config

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("ANDROID_DATA", raising=False)
    monkeypatch.setenv("HOME", "/home/alice")
    monkeypatch.setenv("XDG_DATA_HOME", "relative/dir")
    assert config._xdg_data_home() is None
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", "relative")
    assert config._xdg_data_home() is None
    monkeypatch.setenv("HOME", "/home/alice")
    monkeypatch.setattr(sys, "platform", "darwin")
    assert config._xdg_data_home() is None


def test_internal_metric_values_match_the_public_dataclass() -> None:
    """MetricValues (what sounding reads) has MetricsConfig's fields, defaults and checks."""
    import dataclasses

    from sounding.core.config import METRICS_FIELDS, MetricValues

    assert tuple(f.name for f in dataclasses.fields(MetricsConfig)) == METRICS_FIELDS
    assert MetricValues() == MetricValues.of(MetricsConfig())
    with pytest.raises(ConfigurationError, match=r"MetricsConfig\.retention_days"):
        MetricValues(retention_days=0)
    with pytest.raises(ConfigurationError, match=r"metrics\.nope"):
        MetricValues.from_mapping({"nope": 1})


def test_public_settings_are_dataclasses_built_from_the_resolved_view(tmp_path: Path) -> None:
    """get_settings()/configure() return the Settings dataclass (Path fields, the app's own
    MetricsConfig), equal to the internal Resolved view sounding reads."""
    import dataclasses

    from sounding.core import config

    cfg = MetricsConfig(aggregation_interval=10)
    s = sounding.configure(data_dir=tmp_path / "d", metrics=cfg)
    assert dataclasses.is_dataclass(s)
    assert isinstance(s, sounding.Settings)
    assert s.metrics is cfg
    assert s.data_dir == tmp_path / "d"
    assert s.store_path == tmp_path / "d" / "telemetry.db"
    assert dataclasses.replace(s, app_name="other").app_name == "other"
    r = config.current()
    assert r.data_dir == str(tmp_path / "d")
    assert r.store_path == str(s.store_path)
    assert r.metrics.aggregation_interval == 10
    assert {f.name for f in dataclasses.fields(s)} == set(config.SETTINGS_FIELDS)
    assert all(
        getattr(r, n) == getattr(s, n)
        for n in config.SETTINGS_FIELDS
        if n not in ("data_dir", "metrics", "config_file")
    )
    assert get_settings() is s  # built once per settings
    with pytest.raises(AttributeError):
        r.app_name = "x"


def test_environment_override_of_metrics_reaches_public_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """SOUNDING_AGGREGATION_INTERVAL changes the values sounding reads and the public ones."""
    from sounding.core import config

    monkeypatch.setenv("SOUNDING_AGGREGATION_INTERVAL", "15")
    s = sounding.configure(data_dir=tmp_path)
    assert s.metrics == MetricsConfig(aggregation_interval=15)
    assert config.current().metrics.aggregation_interval == 15
