"""``sounding push``, ``sounding serve-metrics`` and the Prometheus export of alert rules.

Thin commands over :mod:`sounding.exporters`: they parse, call the library and print. ``push``
is an explicit request by the person at the keyboard, so it sends without the application's
telemetry level, except that the user's own veto holds: with ``DO_NOT_TRACK=1``,
``SOUNDING_TELEMETRY`` below ``all`` or a stored choice below ``all`` (``sounding telemetry``)
it refuses and opens no socket.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import click

from sounding.core.config import get_settings
from sounding.core.exceptions import InvalidValueError
from sounding.presentation.output import CliState
from sounding.storage.times import iso, parse_time

__all__ = ["export_rules", "push", "register", "serve_metrics"]


def _user_veto(data_dir: Path) -> str | None:
    from sounding.core import consent

    choice = consent.read_choice(data_dir)
    if choice is not None and choice.level.value != "all":
        return f"the user chose telemetry level {choice.level.value} (sounding telemetry)"
    dnt = os.environ.get("DO_NOT_TRACK", "").strip().lower()
    if dnt not in ("", "0", "false", "no", "off"):
        return f"DO_NOT_TRACK={os.environ['DO_NOT_TRACK']}"
    level = os.environ.get("SOUNDING_TELEMETRY", "").strip().lower()
    if level and level != "all":
        return f"SOUNDING_TELEMETRY={level}"
    return None


def _headers(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidValueError("--header", item, "KEY=VALUE")
        out[key.strip()] = value
    return out


def _data_dir(ctx: click.Context) -> Path:
    state = ctx.find_object(CliState) or CliState()
    return state.resolved_data_dir()


def _run_push(ctx: click.Context, exporter: Any, since: str, dry_run: bool, restart: bool) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from sounding.exporters._deliver import DeliveryReport, deliver
    from sounding.storage import open_store
    from sounding.storage.outbox import ExportCursors, ExportLock

    data_dir = _data_dir(ctx)
    veto = _user_veto(data_dir)
    if veto is not None and not dry_run:
        raise click.ClickException(f"not sending: {veto} (the user opted out); nothing was sent")
    start = parse_time(since, "--since")
    with open_store(data_dir):
        pass  # a missing or corrupt store fails here with a clean message
    lock = ExportLock(data_dir)
    if not lock.acquire():
        raise click.ClickException(
            f"another process is exporting from {data_dir} right now; try again in a minute"
        )
    conn = sqlite3.connect(data_dir / "telemetry.db", timeout=5.0, isolation_level=None)
    try:
        cursors = ExportCursors(conn)
        if restart and not dry_run:
            cursors.forget(exporter.destination)
        state = cursors.get(exporter.destination, start=start, with_totals=False)
        begin = state.position
        until = time.time()
        until -= until % 60  # only intervals closed by the last minute boundary
        err = Console(stderr=True)
        printed: list[str] = []

        def show(payload: Any) -> None:
            printed.append(payload.text)
            click.echo(payload.text)

        with Progress(
            TextColumn("[bold]pushing"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%  {task.fields[samples]:,} samples"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=not sys.stderr.isatty(),
        ) as progress:
            task = progress.add_task("push", total=max(until - begin, 1.0), samples=0)

            def tick(report: DeliveryReport, pos: float) -> None:
                progress.update(task, completed=pos - begin, samples=report.samples)

            report = deliver(
                exporter,
                conn,
                since=start,
                until=until,
                progress=tick,
                batch_size=5000,
                dry_run=show if dry_run else None,
            )
    finally:
        conn.close()
        lock.release()
    if report.intervals == 0 and not report.backlog_dropped:
        click.echo(
            f"nothing new to send\n  to {exporter.destination}\n"
            f"  (no closed interval after {_when(begin)} up to {_when(until)})",
            err=dry_run,
        )
        return
    verb = "would send" if dry_run else "sent"
    requests = report.batches if dry_run else report.requests
    click.echo(
        f"{verb} {report.samples:,} samples from {report.intervals:,} intervals "
        f"in {requests} request(s)\n"
        f"  to {exporter.destination}\n"
        f"  refused {report.refused_samples:,} samples; "
        f"delivered until {_when(report.position)}",
        err=dry_run,
    )
    for e in report.errors:
        click.echo(f"  refused: {e}", err=True)
    if report.backlog_dropped:
        click.echo(f"  skipped {report.backlog_dropped} intervals (backlog limit)", err=True)
    if report.stopped == "failed":
        raise click.ClickException(
            f"stopped: {report.last_error}; run again to continue from {iso(report.position or 0)}"
        )


def _when(position: float | None) -> str:
    return iso(position) if position is not None and position > 0 else "-"


_SINCE = click.option(
    "--since",
    default="30d",
    show_default=True,
    help="Where a first push starts (7d, 24h, ISO 8601); later pushes continue from the cursor.",
)
_DRY = click.option(
    "--dry-run", "--echo", "dry_run", is_flag=True, help="Print the payload; send nothing."
)
_RESTART = click.option(
    "--restart", is_flag=True, help="Forget this destination's cursor and start from --since."
)
_INSTANCE = click.option(
    "--instance",
    default=None,
    metavar="ID",
    help="Series identity label (default: this install's random id; 'none' for no label).",
)
_HEADER = click.option(
    "--header", "headers", multiple=True, metavar="K=V", help="Extra HTTP header (repeatable)."
)


def _instance(ctx: click.Context, value: str | None) -> str | None:
    # The install id of the data dir being pushed, not of whatever the defaults point at.
    from sounding.exporters._convert import install_id

    if value is None:
        return install_id(_data_dir(ctx))
    return None if value.lower() == "none" else value


@click.group("push")
def push() -> None:
    """Send the local store's aggregates to a metrics engine (one-off or backfill).

    \b
    Example:
      sounding push remote-write http://127.0.0.1:8428/api/v1/write --since 14d
      sounding push otlp http://127.0.0.1:4318/v1/metrics --dry-run
    """


@push.command("remote-write")
@click.argument("url")
@_SINCE
@_INSTANCE
@_HEADER
@click.option("--tag", "tags", multiple=True, metavar="KEY", help="Allowlist a tag (repeatable).")
@click.option(
    "--histograms",
    type=click.Choice(["le", "vmrange", "native"]),
    default="le",
    show_default=True,
    help="Classic le buckets (any engine), VictoriaMetrics vmrange buckets, or Prometheus "
    "native histograms (live data only on Prometheus 2.42).",
)
@_DRY
@_RESTART
@click.pass_context
def push_remote_write(
    ctx: click.Context,
    url: str,
    since: str,
    instance: str | None,
    headers: tuple[str, ...],
    tags: tuple[str, ...],
    histograms: str,
    dry_run: bool,
    restart: bool,
) -> None:
    """Push history with Prometheus remote-write (Prometheus, VictoriaMetrics, Mimir).

    A destination remembers how far it got: running the command again sends only what is
    new, so nothing reaches the engine twice.

    \b
    Example:
      sounding push remote-write http://127.0.0.1:8428/api/v1/write --since 14d
      sounding push remote-write https://mimir.example/api/v1/push --header X-Scope-OrgID=app
    """
    from sounding.exporters import RemoteWriteExporter

    exp = RemoteWriteExporter(
        url,
        headers=_headers(headers),
        instance=_instance(ctx, instance),
        tags=tags or None,
        histogram_format=histograms,
    )
    _run_push(ctx, exp, since, dry_run, restart)


@push.command("otlp")
@click.argument("url")
@_SINCE
@_INSTANCE
@_HEADER
@_DRY
@_RESTART
@click.pass_context
def push_otlp(
    ctx: click.Context,
    url: str,
    since: str,
    instance: str | None,
    headers: tuple[str, ...],
    dry_run: bool,
    restart: bool,
) -> None:
    """Push history as OTLP/HTTP metrics (delta temporality) to an OpenTelemetry Collector.

    \b
    Example:
      sounding push otlp http://127.0.0.1:4318/v1/metrics --since 7d
    """
    from sounding.exporters import OTLPExporter

    exp = OTLPExporter(url, headers=_headers(headers), instance=_instance(ctx, instance))
    _run_push(ctx, exp, since, dry_run, restart)


@click.command("serve-metrics")
@click.option("--port", default=9464, show_default=True, type=click.IntRange(0, 65535))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.pass_context
def serve_metrics(ctx: click.Context, port: int, host: str) -> None:
    """Serve the store's aggregates for Prometheus to scrape (OpenMetrics or text format).

    \b
    Example:
      sounding serve-metrics --port 9464        # then scrape http://127.0.0.1:9464/metrics
    """
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client import make_wsgi_app

    from sounding.exporters.prometheus import PrometheusCollector, make_registry

    registry = make_registry(PrometheusCollector(_data_dir(ctx)))

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = make_server(host, port, make_wsgi_app(registry), handler_class=Quiet)
    click.echo(f"serving metrics on http://{host}:{server.server_port}/metrics", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def export_rules(ctx: click.Context, rules: list[Any], output: str | None) -> None:
    """Write ``rules`` as a Prometheus rule file to ``output`` (or stdout)."""
    from sounding.exporters.rules import prometheus_rules
    from sounding.storage import open_store

    types: dict[str, tuple[Any, str]] = {}
    with open_store(_data_dir(ctx)) as store:
        for s in store.series():
            types.setdefault(s.name, (s.metric_type, s.unit))
    text, skipped = prometheus_rules(rules, types, group=get_settings().app_name)
    if output is None:
        click.echo(text, nl=False)
    else:
        tmp = Path(output + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, output)
        click.echo(f"wrote {len(rules) - len(skipped)} rule(s) to {output}", err=True)
    for name, why in skipped:
        click.echo(f"skipped {name}: {why}", err=True)


def register(group: click.Group) -> None:
    """Add ``push`` and ``serve-metrics`` to the ``sounding`` group."""
    group.add_command(push)
    group.add_command(serve_metrics)
