"""``sounding telemetry off|crash|error|all|status``: the user's say over what is sent.

The choice is stored in the application's data dir (``consent.json``, see
:mod:`sounding.core.consent`) and can only lower what the application asks for. An
application with its own click CLI can offer the same command under its own name::

    from sounding.presentation.cli_telemetry import telemetry
    cli.add_command(telemetry)      # `recorder telemetry off`

Embedded like that it acts on the data dir the application configured.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from sounding.core import consent
from sounding.core.types import TelemetryLevel
from sounding.presentation.output import CliState

__all__ = ["register", "telemetry"]


def _data_dir(ctx: click.Context) -> Path:
    state = ctx.find_object(CliState)
    if state is not None:
        # Under `sounding` itself: the choice belongs to an application, which must be named.
        if state.data_dir is None and state.app is None:
            raise click.UsageError(
                "which application? sounding --app NAME telemetry ... (or --data-dir)"
            )
        return state.resolved_data_dir()
    from sounding.core.config import get_settings

    return get_settings().data_dir


def _status(data_dir: Path) -> dict[str, Any]:
    from sounding.core.config import get_settings

    choice = consent.read_choice(data_dir)
    info: dict[str, Any] = {
        "data_dir": str(data_dir),
        "choice": choice.level.value if choice is not None else None,
        "choice_source": choice.source if choice is not None else None,
        "echo": choice.echo if choice is not None else False,
        "sends_at_most": consent.WHAT_IS_SENT[choice.level] if choice is not None else None,
        "do_not_track": os.environ.get("DO_NOT_TRACK") or None,
        "sounding_telemetry": os.environ.get("SOUNDING_TELEMETRY") or None,
    }
    settings = get_settings()
    if settings.data_dir == data_dir:
        # Run inside the application (embedded command): its effective level is known.
        info["effective"] = settings.telemetry_level.value
        info["reason"] = settings.telemetry_reason
    return info


def _print_status(info: dict[str, Any]) -> None:
    if info["choice"] is None:
        click.echo("Telemetry: no choice stored yet (the application has not asked)")
    else:
        how = "chosen by you" if info["choice_source"] == "user" else "after the first-run notice"
        click.echo(f"Telemetry: {info['choice']} ({how})")
        click.echo(f"  sends at most: {info['sends_at_most']}")
    if info["echo"]:
        click.echo("  echo mode: on (what would be sent is printed, not sent)")
    if "effective" in info:
        click.echo(f"  in effect now: {info['effective']} ({info['reason']})")
    if info["do_not_track"]:
        click.echo(f"  DO_NOT_TRACK={info['do_not_track']} is set: nothing is sent")
    if info["sounding_telemetry"]:
        click.echo(f"  SOUNDING_TELEMETRY={info['sounding_telemetry']} limits it further")
    click.echo(f"  stored in: {Path(info['data_dir']) / consent.CONSENT_FILE}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def telemetry() -> None:
    """See or change what this application may send (it can only lower what the app asks).

    \b
    Examples:
      sounding --app recorder telemetry status
      sounding --app recorder telemetry off
      sounding --app recorder telemetry error --echo   # print instead of sending
    """


def _level_command(level: TelemetryLevel) -> click.Command:
    @click.command(
        name=level.value,
        help=(
            f"Allow at most: {consent.WHAT_IS_SENT[level]}.\n\n"
            f"Example: sounding --app recorder telemetry {level.value}"
        ),
    )
    @click.option(
        "--echo/--no-echo",
        default=None,
        help="Print what would be sent instead of sending it (kept until changed).",
    )
    @click.pass_context
    def command(ctx: click.Context, echo: bool | None) -> None:
        data_dir = _data_dir(ctx)
        previous = consent.read_choice(data_dir)
        keep = previous.echo if previous is not None else False
        from sounding.core.clock import get_clock

        choice = consent.ConsentChoice(
            level=level,
            echo=keep if echo is None else echo,
            decided=get_clock().time(),
            source="user",
        )
        path = consent.write_choice(data_dir, choice)
        from sounding.core.config import refresh

        refresh()
        click.echo(f"Telemetry set to {level.value}")
        click.echo(f"  sends at most: {consent.WHAT_IS_SENT[level]}")
        if choice.echo:
            click.echo("  echo mode: on (what would be sent is printed, not sent)")
        click.echo(f"  stored in: {path}")

    return command


for _level in TelemetryLevel:
    telemetry.add_command(_level_command(_level))


@telemetry.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"], case_sensitive=False),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.pass_context
def status(ctx: click.Context, fmt: str) -> None:
    """Show the stored choice, echo mode and what overrides it.

    \b
    Example:
      sounding --app recorder telemetry status --format json
    """
    info = _status(_data_dir(ctx))
    if fmt == "json":
        click.echo(json.dumps(info, indent=2))
    else:
        _print_status(info)


def register(group: click.Group) -> None:
    """Add ``telemetry`` to the ``sounding`` group."""
    group.add_command(telemetry)
