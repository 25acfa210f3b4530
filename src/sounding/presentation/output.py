"""Shared plumbing for ``sounding`` commands: ``--format`` output and opening the store.

Every command that prints records uses :func:`format_option` and :func:`emit`, so
``--format table|json|csv`` behaves the same everywhere: a rich table for people, JSON or CSV
for programs. CSV cells are defused against spreadsheet formula injection.

>>> import io
>>> buf = io.StringIO()
>>> emit([{"name": "=cmd()", "value": 1.5}], ["name", "value"], "csv", out=buf)
>>> buf.getvalue().splitlines()
['name,value', "'=cmd(),1.5"]
"""

from __future__ import annotations

import csv
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
from sounding.storage import Store, open_store
from sounding.storage.times import iso

__all__ = [
    "FORMATS",
    "CliState",
    "cell_text",
    "csv_safe",
    "emit",
    "format_option",
    "json_default",
    "open_output",
    "parse_tags",
    "require_metric",
    "store_from_context",
    "with_progress",
]

#: The output formats every listing command offers.
FORMATS = ("table", "json", "csv")

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass
class CliState:
    """What the ``sounding`` group passes to its commands (``ctx.obj``)."""

    data_dir: Path | None = None
    app: str | None = None

    def resolved_data_dir(self) -> Path:
        """``--data-dir`` / ``SOUNDING_DATA_DIR``, else the data dir of ``--app`` /
        ``SOUNDING_APP_NAME``, else the configured default."""
        if self.data_dir is not None:
            return self.data_dir
        if self.app is not None:
            from sounding.core.config import configure

            return configure(app_name=self.app).data_dir
        return get_settings().data_dir


def store_from_context(ctx: click.Context) -> Store:
    """Open the store of the data dir chosen on the command line (not creating one).

    A missing store raises :class:`~sounding.exceptions.StoreError` with a message naming
    the path; a corrupt one is moved aside and a warning line printed on stderr.
    """
    state = ctx.find_object(CliState) or CliState()
    store = open_store(state.resolved_data_dir())
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

    >>> csv_safe("=HYPERLINK(1)"), csv_safe("-3 dB"), csv_safe("ok")
    ("'=HYPERLINK(1)", "'-3 dB", 'ok')
    """
    return "'" + text if text.startswith(_FORMULA_PREFIXES) else text


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


def _printable(text: str) -> str:
    # Control characters in stored values must not drive the terminal (ESC sequences).
    return _CONTROL_RE.sub(lambda m: repr(m.group())[1:-1], text)


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
) -> None:
    """Print ``rows`` (mappings) as a rich table, a JSON array or CSV with ``columns``."""
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
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([csv_safe(cell_text(row.get(c))) for c in columns])
    elif fmt == "table":
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        # Text(...) so stored values that look like rich markup ("[bold]") print verbatim.
        table = Table(title=None if title is None else Text(title), show_lines=False)
        for c in columns:
            table.add_column(Text(c), overflow="fold")
        for row in rows:
            table.add_row(*(Text(_printable(cell_text(row.get(c)))) for c in columns))
        console = Console(file=stream, width=None if stream.isatty() else 160)
        console.print(table)
    else:
        raise click.BadParameter(f"unknown format {fmt!r}", param_hint="--format")
