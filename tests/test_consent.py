"""Consent: enabled=True semantics, the first-run notice, the stored choice, echo mode."""

from __future__ import annotations

import io
import json
import stat
import sys
import warnings
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import sounding
from sounding import consent
from sounding.core import config, health
from sounding.core import consent as _consent
from sounding.core.types import TelemetryLevel
from sounding.exceptions import ConfigurationError
from sounding.integrations import sentry as integration
from sounding.integrations.sentry import initialize_telemetry, shutdown_telemetry
from sounding.presentation.cli import main
from sounding.presentation.cli_telemetry import telemetry

DSN = "https://public@sentry.example.com/1"


@pytest.fixture(autouse=True)
def _clean() -> object:
    yield None
    shutdown_telemetry(0.0)
    integration._state.warned_missing = False
    integration._state.warned_not_started.clear()


@pytest.fixture
def no_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """sentry-sdk is not importable."""
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)


def _init_quietly(dsn: str | None = DSN) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return initialize_telemetry(dsn, enabled=True)


# -- initialize_telemetry(dsn, enabled=True) ------------------------------------------------


def test_enabled_true_without_a_configured_level_means_error(no_sdk: None) -> None:
    """The application's consent with no level configured asks for `error`."""
    _init_quietly()
    s = sounding.get_settings()
    assert s.telemetry_level is TelemetryLevel.ERROR
    assert s.requested_telemetry_level is TelemetryLevel.ERROR


@pytest.mark.parametrize("level", ["off", "crash", "all"])
def test_a_level_the_application_configured_wins(no_sdk: None, level: str) -> None:
    """configure(telemetry_level=...) is kept whatever enabled=True would default to."""
    sounding.configure(telemetry_level=level)
    _init_quietly()
    assert sounding.get_settings().telemetry_level.value == level


def test_a_level_from_the_toml_file_wins(no_sdk: None, tmp_path: Path) -> None:
    """A telemetry_level in the config file is explicit: enabled=True does not raise it."""
    toml = tmp_path / "sounding.toml"
    toml.write_text('telemetry_level = "off"\n')
    sounding.configure(config_file=toml)
    with pytest.warns(RuntimeWarning, match="telemetry level is off"):
        assert initialize_telemetry(DSN, enabled=True) is False
    assert sounding.get_settings().telemetry_level is TelemetryLevel.OFF


@pytest.mark.parametrize(
    ("env", "expected", "reason"),
    [
        ({"DO_NOT_TRACK": "1"}, TelemetryLevel.OFF, "DO_NOT_TRACK=1"),
        ({"SOUNDING_TELEMETRY": "crash"}, TelemetryLevel.CRASH, "SOUNDING_TELEMETRY=crash"),
        ({"SOUNDING_TELEMETRY": "all"}, TelemetryLevel.ERROR, "requested by the application"),
    ],
)
def test_the_users_environment_can_only_lower_it(
    no_sdk: None,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    expected: TelemetryLevel,
    reason: str,
) -> None:
    """DO_NOT_TRACK and SOUNDING_TELEMETRY lower the consented `error`, never raise it."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    sounding.reset()
    _init_quietly()
    s = sounding.get_settings()
    assert s.telemetry_level is expected
    assert reason in s.telemetry_reason


def test_not_starting_says_why_in_one_runtime_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Forced off: a RuntimeWarning names the reason, once however often it is called."""
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    sounding.reset()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            assert initialize_telemetry(DSN, enabled=True) is False
    messages = [str(w.message) for w in caught if w.category is RuntimeWarning]
    assert len(messages) == 1
    assert "DO_NOT_TRACK=1" in messages[0]


def test_enabled_false_is_silent() -> None:
    """The application saying no needs no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert initialize_telemetry(DSN, enabled=False) is False


@pytest.mark.parametrize(
    "dsn",
    ["not a dsn", "ftp://key@host/1", "https://host/1", "https://key@host/project",
     "https://key@host:99999/1", "https://key@/1"],
)
@pytest.mark.parametrize("level", ["off", "error"])
def test_a_malformed_dsn_raises_without_sentry_sdk(no_sdk: None, dsn: str, level: str) -> None:
    """A malformed DSN is a ConfigurationError even without sentry-sdk, at any level."""
    sounding.configure(telemetry_level=level)
    with pytest.raises(ConfigurationError, match="dsn"):
        initialize_telemetry(dsn, enabled=True)


def test_the_seeds_disabled_call_with_a_placeholder_dsn_still_works(no_sdk: None) -> None:
    """The seed's `initialize_telemetry(dsn='...', enabled=False)` returns False, no error."""
    assert initialize_telemetry(dsn="...", enabled=False) is False


def test_a_malformed_sentry_dsn_variable_raises(
    no_sdk: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SENTRY_DSN is checked like the argument when it is the DSN used."""
    monkeypatch.setenv("SENTRY_DSN", "https://no-key-here/1")
    with pytest.raises(ConfigurationError, match="SENTRY_DSN"):
        initialize_telemetry(None, enabled=True)


@pytest.mark.needs_sentry
def test_echo_mode_prints_what_would_be_sent_and_sends_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With telemetry_echo the scrubbed event goes to stderr, through no network transport."""
    sounding.configure(telemetry_echo=True)
    assert initialize_telemetry(DSN, enabled=True) is True
    with pytest.raises(ValueError, match="failed"), sounding.SentryContext(operation="echo.op"):
        raise ValueError("failed for alice@example.com")
    import sentry_sdk

    sentry_sdk.flush(1.0)
    err = capsys.readouterr().err
    assert "sounding echo: would send to sentry.example.com" in err
    assert "ValueError" in err
    assert "alice@example.com" not in err
    assert integration._state.outbox is None  # no outbox, so nothing queued to send


# -- the stored choice and the first-run notice ---------------------------------------------


def test_first_run_shows_the_notice_once_and_sends_nothing_that_run(data_dir: Path) -> None:
    """The first run prints the notice, stores the default and sends nothing in that run."""
    sounding.configure(app_name="recorder", telemetry_level="all")
    out = io.StringIO()
    choice = consent.first_run_notice(default="error", stream=out, command="recorder telemetry")
    text = out.getvalue()
    assert "recorder can send anonymous reports" in text
    assert "recorder telemetry off" in text
    assert "Nothing has been sent" in text
    assert all(len(line) <= 80 for line in text.splitlines())
    assert (choice.level, choice.source) == (TelemetryLevel.ERROR, "notice")
    s = sounding.get_settings()
    assert s.telemetry_level is TelemetryLevel.OFF
    assert "first run" in s.telemetry_reason
    again = io.StringIO()
    assert consent.first_run_notice(stream=again).level is TelemetryLevel.ERROR
    assert again.getvalue() == ""
    # The next run: the stored choice (error) caps what the app asks for (all).
    _consent._reset()
    config.refresh()
    assert sounding.get_settings().telemetry_level is TelemetryLevel.ERROR
    assert "user's choice" in sounding.get_settings().telemetry_reason


def test_the_choice_is_a_private_file_in_the_data_dir(data_dir: Path) -> None:
    """consent.json is in the data dir, readable by the user only."""
    consent.set_choice("crash")
    path = data_dir / "consent.json"
    assert json.loads(path.read_text())["level"] == "crash"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_users_choice_lowers_but_never_raises_the_apps_level(data_dir: Path) -> None:
    """set_choice(crash) lowers `error`; set_choice(all) stays at the app's `error`."""
    sounding.configure(telemetry_level="error")
    consent.set_choice("crash")
    assert sounding.get_settings().telemetry_level is TelemetryLevel.CRASH
    consent.set_choice("all")
    assert sounding.get_settings().telemetry_level is TelemetryLevel.ERROR
    consent.clear_choice()
    assert consent.get_choice() is None


def test_a_damaged_choice_file_reads_as_off_and_is_counted(data_dir: Path) -> None:
    """A consent.json that is not valid JSON never sends more: it reads as off, counted."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "consent.json").write_text("{not json")
    sounding.configure(telemetry_level="all")
    assert sounding.get_settings().telemetry_level is TelemetryLevel.OFF
    assert health.counts()["consent.read"] >= 1


def test_an_unknown_level_is_refused_naming_it() -> None:
    """set_choice('loud') raises a ConfigurationError naming the value and the levels."""
    with pytest.raises(ConfigurationError, match=r"'loud'.*off, crash, error, all"):
        consent.set_choice("loud")


# -- the command ----------------------------------------------------------------------------


def test_sounding_telemetry_sets_and_shows_the_choice(tmp_path: Path) -> None:
    """`sounding telemetry off` stores off; `--echo` turns echo on; status reports both."""
    runner = CliRunner()
    where = tmp_path / "app"
    result = runner.invoke(main, ["--data-dir", str(where), "telemetry", "off"])
    assert result.exit_code == 0, result.output
    assert "Telemetry set to off" in result.output
    assert _consent.read_choice(where) is not None
    assert _consent.read_choice(where).level is TelemetryLevel.OFF  # type: ignore[union-attr]
    result = runner.invoke(main, ["--data-dir", str(where), "telemetry", "error", "--echo"])
    assert "echo mode: on" in result.output
    result = runner.invoke(main, ["--data-dir", str(where), "telemetry", "status",
                                  "--format", "json"])
    info = json.loads(result.output)
    assert (info["choice"], info["echo"], info["choice_source"]) == ("error", True, "user")
    s = sounding.configure(data_dir=where, telemetry_level="all")
    assert (s.telemetry_level, s.telemetry_echo) == (TelemetryLevel.ERROR, True)


def test_the_command_embedded_in_an_apps_cli_acts_on_its_data_dir(data_dir: Path) -> None:
    """An app adding `telemetry` to its own click group changes its own configured choice."""

    @click.group()
    def recorder() -> None:
        sounding.configure(app_name="recorder", telemetry_level="error")

    recorder.add_command(telemetry)
    runner = CliRunner()
    result = runner.invoke(recorder, ["telemetry", "crash"])
    assert result.exit_code == 0, result.output
    assert _consent.read_choice(data_dir) is not None
    result = runner.invoke(recorder, ["telemetry", "status"])
    assert "in effect now: crash" in result.output
    assert all(len(line) <= 80 for line in result.output.splitlines() if "/" not in line)


def test_no_warning_when_the_user_decided(no_sdk: None, data_dir: Path) -> None:
    """A stored `off` or this run's first-run notice stops reporting without a warning."""
    sounding.configure(telemetry_level="error")
    consent.first_run_notice(stream=io.StringIO())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert initialize_telemetry(DSN, enabled=True) is False
        _consent._reset()
        consent.set_choice("off")
        assert initialize_telemetry(DSN, enabled=True) is False


def test_sounding_telemetry_asks_which_application(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --app or --data-dir, `sounding telemetry off` names what is missing, exit 2."""
    monkeypatch.delenv("SOUNDING_DATA_DIR", raising=False)
    result = CliRunner().invoke(main, ["telemetry", "off"])
    assert result.exit_code == 2
    assert "sounding --app NAME telemetry" in result.output


@pytest.mark.needs_sentry
def test_the_user_choosing_off_stops_running_reporting_at_once(data_dir: Path) -> None:
    """set_choice('off') while Sentry runs shuts it down (nothing more can be sent)."""
    sounding.configure(telemetry_echo=True)
    assert initialize_telemetry(DSN, enabled=True) is True
    assert integration.is_enabled()
    consent.set_choice("off")
    assert not integration.is_enabled()
    assert sounding.get_settings().telemetry_level is TelemetryLevel.OFF


@pytest.mark.parametrize("env", [{"DO_NOT_TRACK": "1"}, {"SOUNDING_TELEMETRY": "off"}])
def test_no_notice_when_the_environment_already_says_no(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path, env: dict[str, str]
) -> None:
    """DO_NOT_TRACK=1 or SOUNDING_TELEMETRY=off: no notice printed and nothing stored."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    sounding.reset()
    out = io.StringIO()
    choice = consent.first_run_notice(stream=out)
    assert (choice.level, choice.source) == (TelemetryLevel.OFF, "environment")
    assert out.getvalue() == ""
    assert not (data_dir / "consent.json").exists()
