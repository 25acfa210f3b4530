"""The user's stored consent choice (``consent.json`` in the data dir) and the notice flag.

The settings read this (a stored choice only lowers the telemetry level) and so does the
consent helper in :mod:`sounding.core.consent`, which also writes it and then refreshes the
settings; keeping the stored choice apart from the helper keeps ``config`` free of a cycle.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sounding.core import health
from sounding.core._config_base import CONSENT_FILE
from sounding.core.exceptions import ConfigurationError
from sounding.core.types import TelemetryLevel

__all__ = [
    "CONSENT_FILE",
    "ConsentChoice",
    "mark_notice_shown",
    "notice_shown_this_run",
    "parse_level",
    "read_choice",
    "write_choice",
]


@dataclass(frozen=True)
class ConsentChoice:
    """The user's stored choice."""

    #: the most the user lets the application send
    level: TelemetryLevel
    #: print what would be sent instead of sending it
    echo: bool = False
    #: when the choice was made, epoch seconds
    decided: float = 0.0
    #: ``"user"`` (the user chose), ``"notice"`` (the default shown in the first-run notice)
    #: or ``"environment"`` (``DO_NOT_TRACK``/``SOUNDING_TELEMETRY=off``; not stored)
    source: str = "user"

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "level": self.level.value,
            "echo": self.echo,
            "decided": self.decided,
            "source": self.source,
        }


_shown_this_run = False


def notice_shown_this_run() -> bool:
    """Whether this process showed the first-run notice (it then sends nothing)."""
    return _shown_this_run


def mark_notice_shown(shown: bool = True) -> None:
    """Record that this process showed the first-run notice (``False``: forget it, tests)."""
    global _shown_this_run
    _shown_this_run = shown


def parse_level(value: Any, name: str) -> TelemetryLevel:
    if isinstance(value, TelemetryLevel):
        return value
    if isinstance(value, str):
        try:
            return TelemetryLevel(value.strip().lower())
        except ValueError:
            pass
    raise ConfigurationError(name, value, "one of off, crash, error, all")


def read_choice(data_dir: str | os.PathLike[str]) -> ConsentChoice | None:
    """The stored choice in ``data_dir``, or ``None`` when there is none. Never raises: an
    unreadable or damaged file counts (``consent.read``) and reads as the strictest choice,
    ``off``, so a broken file can never send more than the user allowed."""
    path = Path(data_dir) / CONSENT_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        health.failure("consent.read", exc)
        return ConsentChoice(TelemetryLevel.OFF, source="unreadable")
    try:
        data = json.loads(raw)
        echo = data.get("echo", False)
        decided = data.get("decided", 0.0)
        source = data.get("source", "user")
        if not isinstance(echo, bool) or not isinstance(source, str):
            raise ValueError("echo must be a bool and source a str")
        return ConsentChoice(
            level=parse_level(data["level"], "level"),
            echo=echo,
            decided=float(decided),
            source=source,
        )
    except (ValueError, TypeError, KeyError, AttributeError, ConfigurationError) as exc:
        health.failure("consent.read", exc)
        return ConsentChoice(TelemetryLevel.OFF, source="damaged")


def write_choice(data_dir: str | os.PathLike[str], choice: ConsentChoice) -> Path:
    """Store ``choice`` in ``data_dir`` (a file only the user can read; replaced atomically).

    Raises :class:`OSError` when the data dir cannot be written.
    """
    path = Path(data_dir) / CONSENT_FILE
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{CONSENT_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(choice.to_json(), fh)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    return path
