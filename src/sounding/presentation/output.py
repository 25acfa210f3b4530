r"""Shared plumbing for ``sounding`` commands: ``--format`` output and opening the store.

Every command that prints records uses :func:`format_option` and :func:`emit`, so
``--format table|json|csv`` behaves the same everywhere: a rich table for people, JSON or CSV
for programs. CSV cells are defused against spreadsheet formula injection: a cell starting
with a formula character is prefixed with ``'``, and a cell holding a line break (``\r`` or
``\n``) or a delimiter is quoted, so no row can split inside a cell. Tables show values
with their units (see :mod:`sounding.presentation.formatting`), numbers right-aligned,
times as ISO 8601 to the second (``--local`` for local time), and leave out columns that
are empty in every row.

>>> import io
>>> buf = io.StringIO()
>>> emit([{"name": "=cmd()", "value": 1.5}], ["name", "value"], "csv", out=buf)
>>> buf.getvalue().splitlines()
['name,value', "'=cmd(),1.5"]
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from sounding.core.config import get_settings
from sounding.core.exceptions import InvalidTypeError, InvalidValueError
from sounding.presentation.formatting import (
    format_percent,
    format_rate,
    format_time,
    format_value,
    rate_unit,
)
from sounding.storage import Store, open_store
from sounding.storage.times import iso, parse_time

__all__ = [
    "FORMATS",
    "OPTION_NAMES",
    "CliState",
    "app_chosen",
    "apps_root",
    "as_option_error",
    "cell_text",
    "csv_line",
    "csv_safe",
    "emit",
    "format_option",
    "json_default",
    "known_apps",
    "local_times",
    "no_app_hint",
    "open_output",
    "parse_tags",
    "printable",
    "require_metric",
    "require_tags",
    "store_from_context",
    "table_text",
    "with_progress",
]

#: The output formats every listing command offers.
FORMATS = ("table", "json", "csv")

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass
class CliState:
    """What the ``sounding`` group passes to its commands (``ctx.obj``)."""

    data_dir: Path | None = None
    app: str | None = None
    #: ``--local``: show times in local time instead of UTC
    local: bool = False

    def resolved_data_dir(self) -> Path:
        """``--data-dir`` / ``SOUNDING_DATA_DIR``, else the data dir of ``--app`` /
        ``SOUNDING_APP_NAME``, else the configured default."""
        if self.data_dir is not None:
            return self.data_dir
        if self.app is not None:
            from sounding.core.config import configure

            return configure(app_name=self.app).data_dir
        return get_settings().data_dir


def apps_root() -> Path:
    """The directory holding each application's default data dir (``.../sounding``)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("sounding", appauthor=False))


def known_apps(root: Path | None = None) -> list[str]:
    """Applications with a store under :func:`apps_root` (their default data dirs)."""
    base = apps_root() if root is None else root
    try:
        return sorted(p.name for p in base.iterdir() if (p / "telemetry.db").is_file())
    except OSError:
        return []


def app_chosen(ctx: click.Context) -> bool:
    """Whether the command line or the environment says which data to look at."""
    state = ctx.find_object(CliState)
    if state is not None and (state.data_dir is not None or state.app is not None):
        return True
    return any(
        os.environ.get(v) for v in ("SOUNDING_DATA_DIR", "SOUNDING_APP_NAME", "SOUNDING_CONFIG")
    )


def no_app_hint(ctx: click.Context) -> str:
    """When no app was chosen: the apps found, and how to pick one ("" otherwise)."""
    if app_chosen(ctx):
        return ""
    apps = known_apps()
    if not apps:
        return f" No application has recorded data under {apps_root()} yet."
    return " Apps with data: " + ", ".join(apps) + " (pick one with --app NAME)."


def store_from_context(ctx: click.Context, *, writable: bool = False) -> Store:
    """Open the store of the data dir chosen on the command line (not creating one).

    Read-only (SQLite ``mode=ro``) unless ``writable``: reading never writes, so a read-only
    directory or a copied store can be inspected, and a corrupt store is reported, never
    moved aside (only a writer does that, with a warning line on stderr). A missing store
    raises :class:`~sounding.exceptions.StoreError` with a message naming the path.
    """
    state = ctx.find_object(CliState) or CliState()
    data_dir = state.resolved_data_dir()
    if not app_chosen(ctx) and not (data_dir / "telemetry.db").exists():
        raise click.ClickException(f"no store at {data_dir}." + no_app_hint(ctx))
    store = open_store(data_dir, read_only=not writable)
    if store.recovered_from is not None:
        click.echo(
            f"warning: the store at {store.path} was corrupt; moved it to "
            f"{store.recovered_from} and started a fresh one",
            err=True,
        )
    ctx.call_on_close(store.close)
    return store


def parse_tags(values: Iterable[str]) -> dict[str, str]:
    """``--tag KEY=VALUE`` options (repeatable) as a dict; a bad one is a usage error.

    >>> parse_tags(["format=wav", "os=linux"])
    {'format': 'wav', 'os': 'linux'}
    """
    tags: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(
                f"{item!r} is not allowed: KEY=VALUE, e.g. --tag format=wav", param_hint="--tag"
            )
        tags[key] = value
    return tags


def require_metric(store: Store, name: str) -> None:
    """Fail with a clear message (listing known names) when ``name`` was never recorded."""
    if not store.series(name):
        known = sorted({s.name for s in store.series()})
        hint = ", ".join(known[:10]) + (" ..." if len(known) > 10 else "") if known else "none"
        raise click.ClickException(f"no metric named {name!r} in {store.path} (known: {hint})")


def require_tags(
    store: Store,
    names: Sequence[str],
    tags: Mapping[str, str],
    keys: Mapping[str, str | None] | None = None,
) -> None:
    """Fail loudly when a ``--tag`` key or value (or a ``--group-by``/``--by`` key given in
    ``keys``, option name to key) matches no series of ``names``, listing what exists.

    A typo must not look like "no data".
    """
    series = [s for n in names for s in store.series(n)]
    values: dict[str, set[str]] = {}
    for info in series:
        for k, v in info.tags.items():
            values.setdefault(k, set()).add(v)
    what = ", ".join(names) if len(names) <= 3 else f"any of the {len(names)} metrics"

    def known_keys() -> str:
        return ", ".join(sorted(values)) if values else "none (its series have no tags)"

    for option, key in (keys or {}).items():
        if key is not None and key not in values:
            raise click.BadParameter(
                f"no tag key {key!r} on {what} (tag keys: {known_keys()})", param_hint=option
            )
    for key, value in tags.items():
        if key not in values:
            raise click.BadParameter(
                f"no tag key {key!r} on {what} (tag keys: {known_keys()})", param_hint="--tag"
            )
        if value not in values[key]:
            shown = sorted(values[key])
            listed = ", ".join(shown[:20]) + (" ..." if len(shown) > 20 else "")
            raise click.BadParameter(
                f"no series of {what} has {key}={value!r} ({key} values: {listed})",
                param_hint="--tag",
            )


#: What the library calls an argument, and the option a user typed for it.
OPTION_NAMES: dict[str, str] = {
    "start": "--since",
    "since": "--since",
    "end": "--until",
    "until": "--until",
    "interval": "--interval",
    "stat": "--stat",
    "tags": "--tag",
    "group_by": "--group-by",
    "level": "--level",
    "limit": "--limit",
}


def as_option_error(
    exc: InvalidValueError | InvalidTypeError,
) -> InvalidValueError | InvalidTypeError:
    """A library argument error re-worded to name the user's option (``--until=...``, not
    ``end=...``); the CLI prints it on one line and exits 2."""
    option = OPTION_NAMES.get(exc.field, exc.field)
    return type(exc)(option, exc.value, exc.allowed)


def format_option(*choices: str, default: str = "table") -> Callable[[F], F]:
    """A ``--format`` option over ``choices`` (default :data:`FORMATS`), passed as ``fmt``."""
    allowed = choices or FORMATS
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(allowed, case_sensitive=False),
        default=default,
        show_default=True,
        help="Output format: " + ", ".join(allowed) + ".",
    )


def csv_safe(text: str) -> str:
    """Defuse a CSV cell a spreadsheet would run as a formula (prefix it with ``'``).

    A plain number (``-0.16``, ``+3``, ``1e-5``) is left alone: it reads as a number, not a
    formula, and negative values stay numbers in the spreadsheet.

    >>> csv_safe("=HYPERLINK(1)"), csv_safe("-3 dB"), csv_safe("-0.16"), csv_safe("ok")
    ("'=HYPERLINK(1)", "'-3 dB", '-0.16', 'ok')
    """
    if not text.startswith(_FORMULA_PREFIXES):
        return text
    if _NUMBER_RE.fullmatch(text):
        return text
    return "'" + text


def csv_line(cells: Iterable[str]) -> str:
    r"""One CSV record (ending in ``\n``): cells defused with :func:`csv_safe` and quoted
    when they hold a delimiter, a quote or a line break (``\r`` included, which the stdlib
    writer leaves bare with ``lineterminator="\n"``).

    >>> csv_line(["a,b", "x\r=1+1", "ok"])
    '"a,b","x\r=1+1",ok\n'
    """
    out = []
    for cell in cells:
        text = csv_safe(cell)
        if any(ch in text for ch in ',"\r\n'):
            text = '"' + text.replace('"', '""') + '"'
        out.append(text)
    if out == [""]:
        out = ['""']  # as the stdlib writer does: an empty line would read as no row
    return ",".join(out) + "\n"


def json_default(value: Any) -> Any:
    """``json.dumps`` fallback: datetimes as ISO 8601 UTC, paths as text, else ``repr``."""
    if isinstance(value, datetime):
        return iso(value.timestamp())
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def cell_text(value: Any) -> str:
    """How a value reads in a table or CSV cell."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return iso(value.timestamp())
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=json_default, ensure_ascii=False)
    return str(value)


def printable(text: str) -> str:
    r"""``text`` with control characters shown escaped: stored values must not drive the
    terminal (ESC sequences).

    >>> printable("ok\x1b[2J")
    'ok\\x1b[2J'
    """
    return _CONTROL_RE.sub(lambda m: repr(m.group())[1:-1], text)


_printable = printable


def with_progress(rows: Iterable[T], what: str = "records") -> Iterator[T]:
    """``rows`` unchanged, with a live count on stderr when it is a terminal (long exports)."""
    if not sys.stderr.isatty():
        yield from rows
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.completed:,} " + what), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(what, total=None)
        for row in rows:
            yield row
            progress.advance(task)


def open_output(path: str | None) -> IO[str]:
    """``path`` opened for writing (created private, 0600), or stdout for ``None``/``-``."""
    if path is None or path == "-":
        return sys.stdout
    from sounding.core.private import open_private

    # An existing file keeps no group/other access; a planted symlink is not followed.
    fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    return os.fdopen(fd, "w", encoding="utf-8", newline="")


def emit(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    fmt: str,
    *,
    out: IO[str] | None = None,
    title: str | None = None,
    units: Mapping[str, str] | None = None,
) -> None:
    """Print ``rows`` (mappings) as a rich table, a JSON array or CSV with ``columns``.

    ``units`` maps a column to how its numbers read in a table: a unit (``ms``, ``MB``,
    ``%``), ``rate`` (per second, shown as ``8.25/h``), ``ratio`` (``52 %``) or ``count``.
    JSON and CSV always carry the raw values.
    """
    stream = out if out is not None else sys.stdout
    fmt = fmt.lower()
    if fmt == "json":
        stream.write("[")
        first = True
        for row in rows:
            stream.write("\n  " if first else ",\n  ")
            stream.write(json.dumps({c: row.get(c) for c in columns}, default=json_default))
            first = False
        stream.write("\n]\n" if not first else "]\n")
    elif fmt == "ndjson":
        for row in rows:
            stream.write(json.dumps({c: row.get(c) for c in columns}, default=json_default))
            stream.write("\n")
    elif fmt == "csv":
        stream.write(csv_line(columns))
        for row in rows:
            stream.write(csv_line(cell_text(row.get(c)) for c in columns))
    elif fmt == "table":
        _table(list(rows), columns, stream, title, units or {})
    else:
        raise click.BadParameter(f"unknown format {fmt!r}", param_hint="--format")


def local_times() -> bool:
    """Whether the running command was given ``--local`` (tables then show local time)."""
    ctx = click.get_current_context(silent=True)
    state = None if ctx is None else ctx.find_object(CliState)
    return bool(state is not None and state.local)


def table_text(value: Any, unit: str = "", *, local: bool = False) -> str:
    """How a value reads in a table cell for people (units, rounding, one time style).

    >>> table_text(1530.0, "ms"), table_text(8.25 / 3600, "rate"), table_text(True)
    ('1.53 s', '8.25/h', 'yes')
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return format_time(value, local=local)
    if isinstance(value, (int, float)):
        if unit == "rate" or unit.startswith("rate/"):
            return format_rate(float(value), unit.partition("/")[2] or None)
        if unit == "ratio":
            return format_percent(float(value))
        if unit == "time":
            return format_time(float(value), local=local)
        if unit in ("", "count") and math.isfinite(value) and value == int(value):
            # Counts stay exact: people compare them digit by digit.
            return str(int(value)) if abs(value) < 1e15 else f"{value:.3g}"
        return format_value(float(value), "" if unit == "count" else unit)
    if isinstance(value, str) and unit == "time":
        try:
            return format_time(parse_time(value), local=local)
        except ValueError:
            return value
    return cell_text(value)


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _table(
    rows: list[Mapping[str, Any]],
    columns: Sequence[str],
    stream: IO[str],
    title: str | None,
    units: Mapping[str, str],
) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    local = local_times()
    units = dict(units)
    for c in columns:
        if c in ("start", "end", "timestamp", "time", "started", "ended") and c not in units:
            units[c] = "time"
    for c, u in list(units.items()):
        if u == "rate":
            # One unit for the whole column, so the rows compare at a glance.
            top = max((abs(float(r[c])) for r in rows if _numeric(r.get(c))), default=0.0)
            units[c] = "rate/" + rate_unit(top)
    # A column empty in every row says nothing: leave it out (JSON and CSV keep it).
    shown = [c for c in columns if any(r.get(c) not in (None, "", {}, []) for r in rows)]
    if not shown:
        shown = list(columns)
    # Text(...) so stored values that look like rich markup ("[bold]") print verbatim.
    table = Table(title=None if title is None else Text(title), show_lines=False)
    for c in shown:
        numeric = any(_numeric(r.get(c)) for r in rows) and all(
            r.get(c) is None or _numeric(r.get(c)) for r in rows
        )
        table.add_column(
            Text(c), overflow="fold", justify="right" if numeric else "left", no_wrap=numeric
        )
    for row in rows:
        cells = (table_text(row.get(c), units.get(c, ""), local=local) for c in shown)
        table.add_row(*(Text(_printable(text)) for text in cells))
    console = Console(file=stream, width=None if stream.isatty() else 160)
    console.print(table)
