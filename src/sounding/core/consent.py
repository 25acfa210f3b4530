"""The user's consent to remote telemetry: a first-run notice, the stored choice, echo mode.

sounding never sends anything unless the application asks for a telemetry level; this module
is how the application then asks its *user*, the way VS Code, .NET and Homebrew do:

- :func:`first_run_notice` prints a notice the first time the application runs (a CLI), stores
  the application's default level as the user's choice, and sends nothing during that run;
- :func:`set_choice` stores the answer of a consent dialog (a GUI) or of the command
  ``sounding telemetry off|crash|error|all`` the user runs;
- the stored choice (``consent.json`` in the data dir, private to the user) can only lower
  the level the application asks for, like ``SOUNDING_TELEMETRY`` and ``DO_NOT_TRACK``;
- echo mode (``--echo`` on the command, ``SOUNDING_TELEMETRY_ECHO=1`` or
  ``configure(telemetry_echo=True)``) prints what would be sent instead of sending it.

>>> import sounding
>>> from sounding.core import consent
>>> _ = sounding.configure(app_name="recorder", data_dir="/tmp/sounding-doc-consent",
...                        telemetry_level="error")
>>> _ = consent.set_choice("crash")
>>> sounding.get_settings().telemetry_level.value
'crash'
>>> consent.clear_choice()
>>> sounding.reset()
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Final, TextIO

from sounding.core import health
from sounding.core.consent_choice import (
    CONSENT_FILE,
    ConsentChoice,
    mark_notice_shown,
    notice_shown_this_run,
    read_choice,
    write_choice,
)
from sounding.core.consent_choice import parse_level as _level
from sounding.core.exceptions import ConfigurationError
from sounding.core.types import TelemetryLevel

__all__ = [
    "CONSENT_FILE",
    "WHAT_IS_SENT",
    "ConsentChoice",
    "clear_choice",
    "consent_path",
    "first_run_notice",
    "get_choice",
    "notice_shown_this_run",
    "read_choice",
    "set_choice",
    "write_choice",
]

#: What each level sends, in words a user reads in the notice and in ``telemetry status``.
WHAT_IS_SENT: Final[dict[TelemetryLevel, str]] = {
    TelemetryLevel.OFF: "nothing",
    TelemetryLevel.CRASH: "crash reports (scrubbed of personal data)",
    TelemetryLevel.ERROR: "crash and error reports (scrubbed of personal data)",
    TelemetryLevel.ALL: "crash and error reports and usage statistics (scrubbed)",
}

_DEFAULT_NOTICE: Final = """\
{app} can send anonymous reports to its developers to help improve it.
Nothing has been sent. From the next run on, it sends at most:
  {what}
Everything is scrubbed of personal data first; nothing else leaves this machine.
  Change it:  {command} off | crash | error | all
  See it:     {command} status
  Add --echo to print what would be sent instead. DO_NOT_TRACK=1 turns it off.
"""


def consent_path(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the choice is stored: ``consent.json`` in ``data_dir`` (default: the settings')."""
    if data_dir is None:
        from sounding.core.config import get_settings

        data_dir = get_settings().data_dir
    return Path(data_dir) / CONSENT_FILE


def get_choice() -> ConsentChoice | None:
    """The user's choice stored in the configured data dir (``None``: not asked yet).

    A GUI shows its consent dialog when this is ``None``, then calls :func:`set_choice`.
    """
    from sounding.core.config import get_settings

    return read_choice(get_settings().data_dir)


def set_choice(level: TelemetryLevel | str, *, echo: bool | None = None) -> ConsentChoice:
    """Store the user's choice (a consent dialog's answer) and apply it at once.

    ``echo=None`` keeps the stored echo setting. Raises
    :class:`~sounding.exceptions.ConfigurationError` for an unknown level and
    :class:`OSError` when the data dir cannot be written.
    """
    from sounding.core import config
    from sounding.core.clock import get_clock

    chosen = _level(level, "level")
    if echo is not None and not isinstance(echo, bool):
        raise ConfigurationError("echo", echo, "True, False or None")
    data_dir = config.get_settings().data_dir
    previous = read_choice(data_dir)
    keep_echo = previous.echo if previous is not None else False
    choice = ConsentChoice(
        level=chosen,
        echo=keep_echo if echo is None else echo,
        decided=get_clock().time(),
        source="user",
    )
    write_choice(data_dir, choice)
    config.refresh()
    return choice


def clear_choice() -> None:
    """Forget the stored choice (the next :func:`first_run_notice` shows the notice again)."""
    from sounding.core import config

    try:
        consent_path().unlink()
    except FileNotFoundError:
        pass
    config.refresh()


def first_run_notice(
    notice: str | None = None,
    *,
    default: TelemetryLevel | str = TelemetryLevel.ERROR,
    command: str | None = None,
    stream: TextIO | None = None,
) -> ConsentChoice:
    """Show the first-run notice once, before anything is sent; return the user's choice.

    Call it early in a command-line application, after :func:`sounding.configure`. On the
    first run it prints ``notice`` (default: a short text naming what ``default`` sends and
    how to change it) to ``stream`` (default: stderr), stores ``default`` as the user's
    choice and sends nothing during this run; later runs send up to the stored choice, which
    the user changes with ``command`` (default ``sounding --app <app> telemetry``; an
    application that embeds :data:`sounding.presentation.cli_telemetry.telemetry` in its own
    CLI passes ``"<app> telemetry"``). ``notice`` may use ``{app}``, ``{what}``,
    ``{command}`` and ``{level}``. With ``DO_NOT_TRACK=1`` or ``SOUNDING_TELEMETRY=off`` the
    user has already said no: no notice, nothing stored. Never raises at run time: if the
    choice cannot be stored, the failure is counted and nothing is sent this run.
    """
    from sounding.core import config
    from sounding.core.clock import get_clock

    level = _level(default, "default")
    settings = config.get_settings()
    stored = read_choice(settings.data_dir)
    if stored is not None:
        return stored
    dnt = os.environ.get("DO_NOT_TRACK")
    user_off = (dnt is not None and config._truthy_env(dnt)) or (
        os.environ.get("SOUNDING_TELEMETRY", "").strip().lower() == "off"
    )
    if user_off:
        # The user already said no in the environment: no notice, nothing stored (the notice
        # shows on the first run without it).
        return ConsentChoice(TelemetryLevel.OFF, decided=get_clock().time(), source="environment")
    app = settings.app_name
    text = (notice if notice is not None else _DEFAULT_NOTICE).format(
        app=app,
        what=WHAT_IS_SENT[level],
        command=command or f"sounding --app {app} telemetry",
        level=level.value,
    )
    mark_notice_shown()
    out = stream if stream is not None else sys.stderr
    try:
        out.write(text if text.endswith("\n") else text + "\n")
        out.flush()
    except Exception as exc:
        health.failure("consent.notice", exc)
    choice = ConsentChoice(level=level, decided=get_clock().time(), source="notice")
    try:
        write_choice(settings.data_dir, choice)
    except Exception as exc:
        # Not stored: the notice shows again next run, and nothing is sent in this one.
        health.failure("consent.write", exc)
    config.refresh()
    return choice


def _reset() -> None:
    """Forget that the notice was shown in this process (tests)."""
    mark_notice_shown(False)
