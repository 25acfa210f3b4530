"""The ``sounding`` commands people start with: ``demo``, ``dashboard``, ``report``,
``status``, ``purge`` and ``doctor``.

Each is a thin click command: parse, call the library, print. They are registered on the
``sounding`` group (:data:`sounding.presentation.cli.main`) by :func:`register`. The data
directory comes from the group's ``--data-dir`` (or ``SOUNDING_DATA_DIR``, or the configured
default); a missing or empty one gives a one-line hint, never a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click

from sounding.core.config import get_settings
from sounding.core.exceptions import ConfigurationError
from sounding.core.types import TelemetryLevel
from sounding.presentation.output import CliState

if TYPE_CHECKING:
    from sounding.storage import Store

__all__ = [
    "COMMANDS",
    "Check",
    "dashboard",
    "demo",
    "doctor",
    "purge",
    "register",
    "report",
    "run_checks",
    "sounding_files",
    "status",
]

_STORE_FILE: Final = "telemetry.db"

#: What each remote telemetry level would send (shown by ``status``).
WOULD_SEND: Final[dict[TelemetryLevel, str]] = {
    TelemetryLevel.OFF: "nothing: no socket is opened and no remote SDK is initialised",
    TelemetryLevel.CRASH: "unhandled exceptions only: type, scrubbed message and stack, "
    "app version and platform",
    TelemetryLevel.ERROR: "errors and crashes: type, scrubbed message and stack, breadcrumbs, "
    "app version and platform",
    TelemetryLevel.ALL: "errors and crashes as above, plus usage aggregates (counts and "
    "percentiles of metrics, never raw values or personal data)",
}


def _data_dir(ctx: click.Context) -> Path:
    state = ctx.find_object(CliState)
    return state.resolved_data_dir() if state is not None else get_settings().data_dir


def _require_store(data_dir: Path) -> Path:
    """The store path in ``data_dir``, or a one-line error saying what to do."""
    path = data_dir / _STORE_FILE
    if not data_dir.exists():
        raise click.ClickException(
            f"no data directory at {data_dir}: nothing recorded yet. Run your instrumented "
            "app, pass --data-dir, or try `sounding demo`."
        )
    if not data_dir.is_dir():
        raise click.ClickException(f"{data_dir} is not a directory; pass --data-dir DIR")
    if not path.exists():
        raise click.ClickException(
            f"no store in {data_dir} (no {_STORE_FILE}): nothing recorded yet. Run your "
            "instrumented app, pass --data-dir, or try `sounding demo`."
        )
    return path


def _open(ctx: click.Context) -> Store:
    from sounding.storage import open_store

    data_dir = _data_dir(ctx)
    _require_store(data_dir)
    store = open_store(data_dir)
    if store.recovered_from is not None:
        click.echo(
            f"warning: the store was corrupt; moved it to {store.recovered_from} and "
            "started a fresh one",
            err=True,
        )
    ctx.call_on_close(store.close)
    return store


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover - the loop returns


# -- demo ------------------------------------------------------------------------------------


@click.command()
@click.option(
    "--days",
    type=click.IntRange(2, 90),
    default=14,
    show_default=True,
    help="Days of use to simulate (version 1.5.0 ships on the last one).",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed.")
@click.option(
    "--data-dir",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to put the demo's store (default: its own directory, never a real app's).",
)
@click.option(
    "--no-dashboard", is_flag=True, help="Only fill the store; do not show the dashboard."
)
@click.pass_context
def demo(
    ctx: click.Context, days: int, seed: int, data_dir: Path | None, no_dashboard: bool
) -> None:
    """Simulate days of an instrumented audio recorder, then show its dashboard.

    The simulated app records sessions, takes, processing, exports and saves through
    sounding's public API; its errors carry e-mail addresses and home paths (stored
    scrubbed); version 1.5.0 makes exports ~45 % slower on the last day, and the dashboard
    flags it. The same seed gives the same data.

    \b
    Examples:
      sounding demo
      sounding demo --days 30 --seed 7 --data-dir /tmp/sounding-demo
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from sounding.presentation.dashboard import build_model, render
    from sounding.presentation.demo import default_demo_dir, prepare_demo_dir, run_demo
    from sounding.storage import open_store

    target = data_dir
    if target is None:
        # The group's --data-dir counts only when typed: SOUNDING_DATA_DIR names real data.
        parent = ctx.parent
        state = ctx.find_object(CliState)
        if (
            parent is not None
            and state is not None
            and state.data_dir is not None
            and parent.get_parameter_source("data_dir") is click.core.ParameterSource.COMMANDLINE
        ):
            target = state.data_dir
        else:
            target = default_demo_dir()
    # Refuse a directory holding other data before drawing anything.
    prepare_demo_dir(target)
    err = Console(stderr=True)
    with Progress(
        TextColumn("[bold]simulating[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as bar:
        task = bar.add_task(f"{days} days of use", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=f"{days} days: sessions")

        result = run_demo(days=days, seed=seed, data_dir=target, progress=progress)
    err.print(
        f"{result.sessions} sessions, {result.operations} operations, {result.errors} errors "
        f"simulated in {result.wall_seconds:.1f} s; data in [bold]{result.data_dir}[/]"
    )
    if no_dashboard:
        return
    with open_store(result.data_dir) as store:
        model = build_model(store, since="7d", now=result.end)
    out = Console()
    out.print(render(model, width=out.width))
    q = _quote(str(result.data_dir))
    out.print(
        "\nExplore it:\n"
        f"  sounding --data-dir {q} dashboard --since 14d\n"
        f"  sounding --data-dir {q} report -o sounding-demo.html\n"
        f"  sounding --data-dir {q} query recorder.export.duration --stat p95 "
        "--interval 1d --group-by app_version",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


# -- dashboard -------------------------------------------------------------------------------


@click.command()
@click.option("--since", default="7d", show_default=True, help="Window start: 7d, 24h, ISO 8601.")
@click.option("--by", default=None, metavar="KEY", help="Break each metric down by tag KEY.")
@click.option(
    "--live",
    "live_mode",
    is_flag=True,
    help="Redraw every MetricsConfig.refresh_interval seconds until Ctrl-C.",
)
@click.option("--metric", "metrics", multiple=True, help="Only this metric (repeatable).")
@click.option("--width", type=click.IntRange(60, 400), default=None, help="Columns to use.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"], case_sensitive=False),
    default="table",
    show_default=True,
    help="table for people, json for programs.",
)
@click.pass_context
def dashboard(
    ctx: click.Context,
    since: str,
    by: str | None,
    live_mode: bool,
    metrics: tuple[str, ...],
    width: int | None,
    fmt: str,
) -> None:
    """Each metric now against its baseline, with trends, errors and change points.

    "Now" is the last 24 hours; the baseline the MetricsConfig.baseline_window_days before.
    Regressions past MetricsConfig.deviation_threshold_percent are flagged in red.

    \b
    Examples:
      sounding dashboard
      sounding dashboard --since 14d --metric recorder.export.duration
      sounding dashboard --metric recorder.export.duration --by app_version
      sounding --data-dir ./data dashboard --live
    """
    from rich.console import Console

    from sounding.presentation.dashboard import build_model, live, render

    store = _open(ctx)
    names = list(metrics) or None

    def load() -> Any:
        return build_model(store, since=since, names=names, by=by)

    model = load()
    if fmt == "json":
        click.echo(json.dumps(model.as_dict(), indent=2, default=str))
        return
    console = Console(width=width)
    if live_mode:
        live(load, refresh_interval=store.metrics.refresh_interval, console=console)
        return
    console.print(render(model, width=console.width))


def _model_json(model: Any) -> dict[str, Any]:
    data = asdict(model)
    for row in data["rows"]:
        row["metric_type"] = str(row["metric_type"])
    return data


# -- report ----------------------------------------------------------------------------------


@click.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=Path("sounding-report.html"),
    show_default=True,
    help="The HTML file to write ('-' for stdout).",
)
@click.option("--since", default="7d", show_default=True, help="Window start: 7d, 24h, ISO 8601.")
@click.option("--metric", "metrics", multiple=True, help="Only this metric (repeatable).")
@click.pass_context
def report(ctx: click.Context, output: Path, since: str, metrics: tuple[str, ...]) -> None:
    """Write one self-contained HTML report: a chart per metric, baselines, errors.

    The file needs no network to open: charts are inline SVG, styles inline, no scripts.

    \b
    Examples:
      sounding report -o report.html
      sounding report --since 30d -o month.html
    """
    from sounding.presentation.report import build_report

    store = _open(ctx)
    html_text = build_report(store, since=since, names=list(metrics) or None)
    if str(output) == "-":
        click.echo(html_text, nl=False)
        return
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(html_text)
    click.echo(f"wrote {output} ({_human_bytes(len(html_text.encode()))})")


# -- status ----------------------------------------------------------------------------------


def _app_name(ctx: click.Context, data_dir: Path) -> str:
    """The application whose data this is: ``--app`` / ``SOUNDING_APP_NAME`` when given,
    else the data directory's name (the default data dir is named after the app), never the
    name of the ``sounding`` command itself."""
    state = ctx.find_object(CliState)
    if state is not None and state.app:
        return state.app
    return os.environ.get("SOUNDING_APP_NAME") or data_dir.name


def sounding_files(data_dir: Path) -> list[Path]:
    """The files sounding keeps in ``data_dir``: the store (with its WAL and any corrupt
    copies moved aside), the event log and its backups, the identifier salt, the demo's
    marker. Other files are never listed (and never purged)."""
    if not data_dir.is_dir():
        return []
    names = []
    for p in sorted(data_dir.iterdir()):
        n = p.name
        if (
            n.startswith((_STORE_FILE, "events.jsonl."))
            or n in ("events.jsonl", "salt", "SOUNDING_DEMO")
        ) and (p.is_file() or p.is_symlink()):
            names.append(p)
    return names


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"], case_sensitive=False),
    default="table",
    show_default=True,
    help="table for people, json for programs.",
)
@click.pass_context
def status(ctx: click.Context, fmt: str) -> None:
    """Where the data is, how big it is, what is collected and what would be sent.

    \b
    Examples:
      sounding status
      DO_NOT_TRACK=1 sounding status --format json
    """
    settings = get_settings()
    data_dir = _data_dir(ctx)
    files = sounding_files(data_dir)
    info: dict[str, Any] = {
        "app_name": _app_name(ctx, data_dir),
        "data_dir": str(data_dir),
        "store": str(data_dir / _STORE_FILE),
        "exists": (data_dir / _STORE_FILE).exists(),
        "size_bytes": sum(p.stat().st_size for p in files if p.exists()),
        "files": [p.name for p in files],
        "local_recording": settings.local_recording,
        "telemetry_level": settings.telemetry_level.value,
        "telemetry_reason": settings.telemetry_reason,
        "requested_telemetry_level": settings.requested_telemetry_level.value,
        "sends_now": WOULD_SEND[settings.telemetry_level],
        "would_send_if_enabled": {lv.value: WOULD_SEND[lv] for lv in TelemetryLevel},
        "always_scrubbed": "e-mail and IP addresses, user names in home paths, the OS user "
        "and host names, credentials in URLs, card numbers, secret tokens and keys, values "
        "under sensitive keys",
        "metrics": [],
        "events": 0,
        "sessions": 0,
        "oldest": None,
        "newest": None,
        "dropped": {},
    }
    if info["exists"]:
        from sounding.storage import open_store

        with open_store(data_dir) as store:
            st = store.status()
            names: dict[str, str] = {}
            for s in store.series():
                if not s.name.startswith("sounding.internal."):
                    names.setdefault(s.name, s.metric_type.value)
            info.update(
                metrics=[{"name": n, "type": t} for n, t in sorted(names.items())],
                events=st.event_count,
                sessions=st.session_count,
                oldest=None if st.oldest is None else st.oldest.isoformat(),
                newest=None if st.newest is None else st.newest.isoformat(),
                dropped={k: v for k, v in sorted(st.internal_counts.items()) if v},
                corrupt_files=[str(p) for p in st.corrupt_files],
            )
    if fmt == "json":
        click.echo(json.dumps(info, indent=2))
        return
    _print_status(info)


def _print_status(info: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from sounding.presentation.dashboard import stored_text

    con = Console()
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold", no_wrap=True)
    t.add_column(overflow="fold")

    def row(key: str, value: str, style: str = "") -> None:
        t.add_row(key, stored_text(value, style))

    row("App", info["app_name"])
    row("Data directory", info["data_dir"])
    if info["exists"]:
        row("Store", f"{info['store']} ({_human_bytes(info['size_bytes'])} in "
            f"{len(info['files'])} file(s))")
        row("Recorded", f"{len(info['metrics'])} metrics, {info['events']} events, "
            f"{info['sessions']} sessions, {info['oldest'] or '-'} → {info['newest'] or '-'}")
    else:
        row("Store", "none yet (nothing recorded in this directory)", "yellow")
    row("Local recording", "on" if info["local_recording"] else "off")
    row("Remote telemetry", f"{info['telemetry_level']} ({info['telemetry_reason']})")
    row("Sent now", info["sends_now"])
    if info["telemetry_level"] == "off":
        row(
            "If enabled",
            f"at 'error': {WOULD_SEND[TelemetryLevel.ERROR]}; at 'all': usage aggregates too",
        )
    row("Always scrubbed", info["always_scrubbed"])
    dropped = info["dropped"]
    row(
        "Dropped / failed",
        ", ".join(f"{k}: {v:g}" for k, v in dropped.items()) if dropped else "nothing",
        "yellow" if dropped else "green",
    )
    con.print(t)
    if info["metrics"]:
        m = Table(title=Text("Collected metrics"), title_justify="left")
        m.add_column("Name")
        m.add_column("Type")
        for item in info["metrics"]:
            m.add_row(stored_text(item["name"]), item["type"])
        con.print(m)


# -- purge -----------------------------------------------------------------------------------


@click.command()
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def purge(ctx: click.Context, yes: bool) -> None:
    """Delete the locally recorded data (store, event log, salt) after confirmation.

    Only sounding's own files in the data directory are removed; the directory goes too
    when nothing else is left in it.

    \b
    Examples:
      sounding purge
      sounding --data-dir ./data purge --yes
    """
    data_dir = _data_dir(ctx)
    files = sounding_files(data_dir)
    if not files:
        click.echo(f"nothing to purge: no sounding data in {data_dir}")
        return
    size = sum(p.stat().st_size for p in files if p.exists())
    click.echo(f"{data_dir}:")
    for p in files:
        click.echo(f"  {p.name}")
    if not yes and not click.confirm(
        f"Delete these {len(files)} file(s) ({_human_bytes(size)})?", default=False
    ):
        raise click.ClickException("nothing deleted")
    for p in files:
        p.unlink(missing_ok=True)
    try:
        data_dir.rmdir()
    except OSError:
        pass  # other files live there; they are not ours to delete
    click.echo(f"deleted {len(files)} file(s), {_human_bytes(size)}")


# -- doctor ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One finding of ``sounding doctor``: ``level`` is ok, warn or fail; ``fix`` says how."""

    name: str
    level: str
    detail: str
    fix: str = ""


_CONFIG_FIX: Final = (
    "correct the setting named above (its environment variable, the configure() call or "
    "the SOUNDING_CONFIG file)"
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def run_checks(data_dir: Path) -> list[Check]:
    """Check configuration, the data directory, permissions and the store's integrity."""
    checks: list[Check] = []
    try:
        settings = get_settings()
        source = f" from {settings.config_file}" if settings.config_file else ""
        checks.append(Check("configuration", "ok", f"valid{source}"))
    except Exception as exc:
        checks.append(Check("configuration", "fail", str(exc), _CONFIG_FIX))
        return checks
    if settings.telemetry_level is not TelemetryLevel.OFF:
        try:
            import sentry_sdk  # noqa: F401
        except ImportError:
            checks.append(
                Check(
                    "remote reporting",
                    "warn",
                    f"telemetry level {settings.telemetry_level} but sentry-sdk is not installed",
                    "pip install 'sounding[sentry]', or set SOUNDING_TELEMETRY=off",
                )
            )
    if not settings.local_recording:
        checks.append(
            Check("local recording", "warn", "off (SOUNDING_LOCAL=0 or configure)",
                  "unset SOUNDING_LOCAL to record locally again")
        )
    if not data_dir.exists():
        checks.append(
            Check(
                "data directory",
                "warn",
                f"{data_dir} does not exist (nothing recorded yet)",
                "run the instrumented app once, or pass --data-dir",
            )
        )
        return checks
    if not data_dir.is_dir():
        checks.append(
            Check("data directory", "fail", f"{data_dir} is not a directory",
                  f"move the file away: mv {data_dir} {data_dir}.bak")
        )
        return checks
    mode = _mode(data_dir)
    if not os.access(data_dir, os.W_OK | os.X_OK):
        checks.append(
            Check("data directory", "fail", f"{data_dir} is not writable by this user",
                  f"chmod u+rwx {data_dir}")
        )
    elif mode & 0o077:
        checks.append(
            Check("data directory", "warn", f"{data_dir} is readable by others ({mode:o})",
                  f"chmod 700 {data_dir}")
        )
    else:
        checks.append(Check("data directory", "ok", f"{data_dir} ({mode:o})"))
    free = shutil.disk_usage(data_dir).free
    if free < 50 * 1024 * 1024:
        checks.append(
            Check("disk space", "warn", f"only {_human_bytes(free)} free",
                  "free some space; writes fail (counted, not raised) when the disk is full")
        )
    store_path = data_dir / _STORE_FILE
    if not store_path.exists():
        checks.append(Check("store", "warn", "no telemetry.db yet",
                            "run the instrumented app once"))
    else:
        checks.extend(_store_checks(store_path))
    corrupt = sorted(data_dir.glob(_STORE_FILE + ".corrupt*"))
    if corrupt:
        checks.append(
            Check(
                "damaged copies",
                "warn",
                f"{len(corrupt)} corrupt store file(s) were moved aside: "
                + ", ".join(p.name for p in corrupt),
                "inspect or delete them (sounding purge removes them with the rest)",
            )
        )
    return checks


def _store_checks(path: Path) -> list[Check]:
    out: list[Check] = []
    mode = _mode(path)
    if mode & 0o077:
        out.append(Check("store permissions", "warn", f"{path.name} is {mode:o}",
                         f"chmod 600 {path}"))
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
        try:
            result = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return [
            *out,
            Check("store integrity", "fail", f"cannot read {path}: {exc}",
                  "move it aside (mv telemetry.db telemetry.db.bad); a fresh store is created "
                  "on the next run"),
        ]
    if result != ["ok"]:
        return [
            *out,
            Check("store integrity", "fail", "; ".join(result[:3]),
                  "move it aside (mv telemetry.db telemetry.db.bad); a fresh store is created "
                  "on the next run"),
        ]
    out.append(Check("store integrity", "ok", "PRAGMA integrity_check: ok"))
    from sounding.storage import open_store

    with open_store(path) as store:
        st = store.status()
    failures = {k: v for k, v in st.internal_counts.items() if v}
    if failures:
        out.append(
            Check(
                "run-time failures",
                "warn",
                ", ".join(f"{k}: {v:g}" for k, v in sorted(failures.items())),
                "see the 'sounding' logger's first report of each kind; `sounding status` "
                "shows the counts",
            )
        )
    else:
        out.append(Check("run-time failures", "ok", "none recorded"))
    return out


@click.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check configuration, permissions and the store's integrity; say how to fix problems.

    Exits with status 1 when a check fails.

    \b
    Examples:
      sounding doctor
      sounding --data-dir ./data doctor
    """
    from rich.console import Console
    from rich.text import Text

    from sounding.presentation.dashboard import stored_text

    try:
        data_dir = _data_dir(ctx)
    except ConfigurationError as exc:
        # A broken configuration is what doctor is for: report it, do not fail on it.
        checks = [Check("configuration", "fail", str(exc), _CONFIG_FIX)]
    else:
        checks = run_checks(data_dir)
    con = Console()
    marks = {"ok": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "bold red")}
    for c in checks:
        mark, style = marks[c.level]
        line = Text(f"{mark} ", style=style)
        line.append(f"{c.name}: ", style="bold")
        line.append_text(stored_text(c.detail))
        # Soft wrap: paths and commands stay whole, for copying and for grep.
        con.print(line, soft_wrap=True)
        if c.fix:
            con.print(stored_text(f"    fix: {c.fix}", "dim"), soft_wrap=True)
    if any(c.level == "fail" for c in checks):
        ctx.exit(1)


#: Every command this module defines, for :func:`register`.
COMMANDS: Final[tuple[click.Command, ...]] = (demo, dashboard, report, status, purge, doctor)


def register(group: click.Group) -> click.Group:
    """Add every command of this module to ``group`` (idempotent); returns ``group``."""
    for command in COMMANDS:
        group.add_command(command)
    return group

