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
from sounding.presentation.formatting import format_bytes, format_time
from sounding.presentation.output import (
    CliState,
    app_chosen,
    emit,
    format_option,
    known_apps,
    local_times,
    no_app_hint,
)

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
    TelemetryLevel.ALL: "errors and crashes as above; usage aggregates (counts and "
    "percentiles, never raw values or personal data) only to an exporter the application "
    "configures",
}


def _data_dir(ctx: click.Context) -> Path:
    state = ctx.find_object(CliState)
    return state.resolved_data_dir() if state is not None else get_settings().data_dir


def _require_store(data_dir: Path, hint: str = "") -> Path:
    """The store path in ``data_dir``, or a one-line error saying what to do."""
    path = data_dir / _STORE_FILE
    if not data_dir.exists():
        raise click.ClickException(
            f"no data directory at {data_dir}: nothing recorded yet. Run your instrumented "
            "app, pass --data-dir or --app, or try `sounding demo`." + hint
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
    _require_store(data_dir, no_app_hint(ctx))
    # Reading never writes: a read-only or copied store can be inspected, a corrupt one is
    # reported (only the application's writer moves it aside).
    store = open_store(data_dir, read_only=True)
    ctx.call_on_close(store.close)
    return store


def _human_bytes(n: float) -> str:
    return format_bytes(n)


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
    from sounding.presentation.demo import (
        DEMO_APP_NAME,
        REGRESSED_METRIC,
        default_demo_dir,
        prepare_demo_dir,
        run_demo,
    )
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
    where = (
        f"--app {DEMO_APP_NAME}"
        if Path(result.data_dir) == default_demo_dir()
        else f"--data-dir {_quote(str(result.data_dir))}"
    )
    cmd = f"{_command_name()} {where}"
    out.print(
        "\nExplore it:\n"
        f"  {cmd} dashboard --since {days}d\n"
        f"  {cmd} report --since {days}d -o sounding-demo.html\n"
        f"  {cmd} query {REGRESSED_METRIC} --stat p95 --interval day --group-by app_version\n"
        f"  {cmd} events --since {days}d --level error",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _command_name() -> str:
    """How to run this same ``sounding`` again from the user's shell: ``sounding`` when
    that is what PATH finds, else the path it was started as (``.venv/bin/sounding`` after
    ``make demo``), so the printed hints work as printed."""
    import sys

    argv0 = sys.argv[0] if sys.argv else ""
    if not argv0 or Path(argv0).name not in ("sounding", "sounding.exe"):
        return "sounding"
    found = shutil.which("sounding")
    try:
        if found is not None and Path(found).resolve() == Path(argv0).resolve():
            return "sounding"
        path = Path(argv0).resolve()
        try:
            return _quote(str(path.relative_to(Path.cwd())))
        except ValueError:
            return _quote(str(path))
    except OSError:
        return "sounding"


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
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only series with this tag (repeatable).",
)
@click.option("--width", type=click.IntRange(60, 400), default=None, help="Columns to use.")
@format_option()
@click.pass_context
def dashboard(
    ctx: click.Context,
    since: str,
    by: str | None,
    live_mode: bool,
    metrics: tuple[str, ...],
    tags: tuple[str, ...],
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
    tag_filter = _view_filters(store, metrics, tags)

    def load() -> Any:
        return build_model(store, since=since, names=names, tags=tag_filter, by=by)

    model = load()
    if fmt == "json":
        click.echo(json.dumps(model.as_dict(), indent=2, default=str))
        return
    if fmt == "csv":
        # One row per metric, with the model's scalar fields (JSON has everything).
        rows = _model_json(model)["rows"]
        first = rows[0] if rows else {}
        columns = [k for k, v in first.items() if not isinstance(v, (list, tuple, dict))]
        emit(rows, columns or ["name"], "csv")
        return
    console = Console(width=width)
    if live_mode:
        live(load, refresh_interval=store.metrics.refresh_interval, console=console)
        return
    console.print(render(model, width=console.width))


def _view_filters(
    store: Store, metrics: tuple[str, ...], tags: tuple[str, ...]
) -> dict[str, str] | None:
    """Check ``--metric`` and ``--tag`` against the store (typos fail, listing what exists);
    the tag filter the view applies (``None`` without ``--tag``)."""
    from sounding.presentation.output import parse_tags, require_metric, require_tags

    for name in metrics:
        require_metric(store, name)
    tag_filter = parse_tags(tags)
    if not tag_filter:
        return None
    names = list(metrics) or sorted({s.name for s in store.series()})
    require_tags(store, names, tag_filter)
    return tag_filter


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
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only series with this tag (repeatable).",
)
@click.pass_context
def report(
    ctx: click.Context, output: Path, since: str, metrics: tuple[str, ...], tags: tuple[str, ...]
) -> None:
    """Write one self-contained HTML report: a chart per metric, baselines, errors.

    The file needs no network to open: charts are inline SVG, styles inline, no scripts.

    \b
    Examples:
      sounding report -o report.html
      sounding report --since 30d -o month.html
    """
    from sounding.core.private import write_private
    from sounding.presentation.report import build_report

    store = _open(ctx)
    tag_filter = _view_filters(store, metrics, tags)
    html_text = build_report(store, since=since, names=list(metrics) or None, tags=tag_filter)
    if str(output) == "-":
        click.echo(html_text, nl=False)
        return
    write_private(output, html_text.encode("utf-8"))  # 0600 even over an existing 0644 file
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
    """The files sounding keeps in ``data_dir``: the store (with its WAL, its alert state
    and any corrupt copies moved aside), the outbox of unsent error reports, the event log
    and its backups, the counts an exit could not store (``unsaved.*.json``), the identifier
    salt, the exporters' files (``install-id``, ``export.lock``; their cursors live in the
    store), the demo's marker and the ``alerts.toml`` the demo wrote. Other files (an
    ``alerts.toml`` you wrote included) are never listed, never purged."""
    if not data_dir.is_dir():
        return []
    demo_dir = (data_dir / "SOUNDING_DEMO").is_file()
    names = []
    for p in sorted(data_dir.iterdir()):
        n = p.name
        if (
            n.startswith((_STORE_FILE, "outbox.db", "events.jsonl.", ".install-id."))
            or n in ("events.jsonl", "salt", "SOUNDING_DEMO", "consent.json")
            or n in ("install-id", "export.lock")
            or (n.startswith(("unsaved.", ".claimed.")) and n.endswith(".json"))
            or (demo_dir and n == "alerts.toml")
        ) and (p.is_file() or p.is_symlink()):
            names.append(p)
    return names


def _user_choice(data_dir: Path, local: bool) -> dict[str, Any] | None:
    """The user's stored telemetry choice (``consent.json``), which caps the app's level."""
    from sounding.core.consent import read_choice

    choice = read_choice(data_dir)
    if choice is None:
        return None
    return {
        "level": choice.level.value,
        "source": choice.source,
        "decided": format_time(choice.decided, local=local) if choice.decided else None,
        "echo": choice.echo,
    }


def _outbox_count(data_dir: Path) -> int | None:
    """Unsent error reports waiting in ``outbox.db`` (``None`` when there is none)."""
    path = data_dir / "outbox.db"
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
        try:
            (n,) = conn.execute("SELECT count(*) FROM outbox").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return int(n)


@click.command()
@format_option()
@click.pass_context
def status(ctx: click.Context, fmt: str) -> None:
    """Where the data is, how big it is, what is collected and what is sent.

    Without --app (or --data-dir, SOUNDING_DATA_DIR) and no data in the default place, it
    lists the applications that have recorded data.

    \b
    Examples:
      sounding status --app recorder
      DO_NOT_TRACK=1 sounding status --format json
    """
    settings = get_settings()
    data_dir = _data_dir(ctx)
    if not app_chosen(ctx) and not (data_dir / _STORE_FILE).exists():
        apps = known_apps()
        if fmt == "json":
            click.echo(json.dumps({"apps": apps}, indent=2))
        elif fmt == "csv":
            emit([{"app": a} for a in apps], ["app"], "csv")
        elif apps:
            click.echo("apps with recorded data (pick one with --app NAME):")
            for a in apps:
                click.echo(f"  {a}")
        else:
            click.echo("no application has recorded data yet" + no_app_hint(ctx))
        return
    files = sounding_files(data_dir)
    local = local_times() and fmt == "table"
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
        "app_telemetry_level": None,
        "app_telemetry_level_set": None,
        "sends_now": WOULD_SEND[settings.telemetry_level],
        "would_send_if_enabled": {lv.value: WOULD_SEND[lv] for lv in TelemetryLevel},
        "always_scrubbed": "e-mail and IP addresses, user names in home paths, the OS user "
        "and host names (also in file names), credentials in URLs, card numbers, phone "
        "numbers, MAC addresses, IBANs, SSNs, secret tokens and keys, values under sensitive "
        "and personal keys",
        "outbox": _outbox_count(data_dir),
        "user_choice": _user_choice(data_dir, local),
        "metrics": [],
        "events": 0,
        "sessions": 0,
        "oldest": None,
        "newest": None,
        "dropped": {},
    }
    if info["exists"]:
        from sounding.storage import open_store

        with open_store(data_dir, read_only=True) as store:
            st = store.status()
            names: dict[str, str] = {}
            for s in store.series():
                if not s.name.startswith("sounding.internal."):
                    names.setdefault(s.name, s.metric_type.value)
            meta = store.app_meta()
            info.update(
                metrics=[{"name": n, "type": t} for n, t in sorted(names.items())],
                events=st.event_count,
                sessions=st.session_count,
                oldest=None if st.oldest is None else format_time(st.oldest, local=local),
                newest=None if st.newest is None else format_time(st.newest, local=local),
                dropped={k: v for k, v in sorted(st.internal_counts.items()) if v},
                corrupt_files=[str(p) for p in st.corrupt_files],
            )
            if meta.get("app.name") and not (ctx.find_object(CliState) or CliState()).app:
                info["app_name"] = meta["app.name"]
            level = meta.get("app.telemetry_level")
            if level:
                info["app_telemetry_level"] = level
                set_at = meta.get("app.telemetry_level_set")
                info["app_telemetry_level_set"] = (
                    None if set_at is None else format_time(float(set_at), local=local)
                )
                # What the application runs with is what it sends, not this shell's settings.
                info["sends_now"] = WOULD_SEND.get(
                    TelemetryLevel(level), info["sends_now"]
                )
    from sounding.exporters.status import exporter_status

    info["exporters"] = exporter_status(settings, data_dir)
    if fmt == "json":
        click.echo(json.dumps(info, indent=2))
        return
    if fmt == "csv":
        flat = [
            {"key": k, "value": v if not isinstance(v, (dict, list)) else json.dumps(v)}
            for k, v in info.items()
        ]
        emit(flat, ["key", "value"], "csv")
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
            f"{info['sessions']} sessions")
        row("Time span", f"{info['oldest'] or '-'} to {info['newest'] or '-'}")
    else:
        row("Store", "none yet (nothing recorded in this directory)", "yellow")
    row("Local recording", "on" if info["local_recording"] else "off")
    if info["app_telemetry_level"]:
        row(
            "Remote telemetry",
            f"{info['app_telemetry_level']} (set by the application, "
            f"{info['app_telemetry_level_set'] or 'time unknown'})",
        )
    else:
        row("Remote telemetry", f"{info['telemetry_level']} ({info['telemetry_reason']})")
    row("Sent now", info["sends_now"])
    if (info["app_telemetry_level"] or info["telemetry_level"]) == "off":
        row(
            "If enabled",
            f"at 'error': {WOULD_SEND[TelemetryLevel.ERROR]}; at 'all': usage aggregates "
            "too, to an exporter the application configures",
        )
    choice = info["user_choice"]
    if choice is not None:
        row(
            "User's choice",
            f"at most {choice['level']} ({choice['source']}, {choice['decided'] or 'time unknown'})"
            + ("; echo: prints what would be sent" if choice["echo"] else ""),
        )
    if info["outbox"] is not None:
        row("Outbox", f"{info['outbox']} unsent error report(s)",
            "yellow" if info["outbox"] else "")
    row("Always scrubbed", info["always_scrubbed"])
    dropped = info["dropped"]
    row(
        "Dropped / failed",
        ", ".join(f"{k}: {v:g}" for k, v in dropped.items()) if dropped else "nothing",
        "yellow" if dropped else "green",
    )
    from sounding.exporters.status import status_lines

    for key, value in status_lines(info["exporters"]):
        row(key, value)
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
            Check(
                "data directory",
                "warn",
                f"{data_dir} is read-only for this user: every sounding command can read it "
                "(the store is opened read-only), but the application cannot record there",
                f"if the application should record there: chmod u+rwx {data_dir} (as its "
                "owner); to inspect a copy, nothing to do",
            )
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
    from sounding.core.exceptions import StoreError
    from sounding.storage import open_store

    try:
        # Read-only, as every reader: works in a read-only directory, changes nothing.
        with open_store(path, read_only=True) as ro:
            result = [r[0] for r in ro.connection.execute("PRAGMA integrity_check").fetchall()]
    except (sqlite3.Error, StoreError) as exc:
        return [
            *out,
            Check("store integrity", "fail", f"cannot read {path}: {exc}",
                  "move it aside (mv telemetry.db telemetry.db.bad); a fresh store is created "
                  "on the next run"),
        ]
    if result != ["ok"]:
        # One finding per line: SQLite reports each damaged page or index on its own.
        shown = result[:20]
        more = len(result) - len(shown)
        findings = [Check("store integrity", "fail", line) for line in shown]
        if more:
            findings.append(Check("store integrity", "fail", f"... and {more} more"))
        findings[-1] = Check(
            findings[-1].name,
            "fail",
            findings[-1].detail,
            f"move it aside (mv {path} {path}.bad); the application starts a fresh store "
            "on its next run",
        )
        return [*out, *findings]
    out.append(Check("store integrity", "ok", "PRAGMA integrity_check: ok"))
    with open_store(path, read_only=True) as store:
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
@format_option()
@click.pass_context
def doctor(ctx: click.Context, fmt: str) -> None:
    """Check configuration, permissions and the store's integrity; say how to fix problems.

    One finding per line, each with its fix. Exits with status 1 when a check fails.

    \b
    Examples:
      sounding doctor
      sounding doctor --data-dir ./data --format json
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
    if fmt != "table":
        emit([asdict(c) for c in checks], ["name", "level", "detail", "fix"], fmt)
        if any(c.level == "fail" for c in checks):
            ctx.exit(1)
        return
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

