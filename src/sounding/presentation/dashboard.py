"""The dashboard: the overview of an application, drawn for a terminal.

It renders :class:`sounding.analysis.overview.Overview` and decides nothing itself: which
statistic a metric is judged by, the "now" and baseline windows, what a regression and an
alert state are all come from :mod:`sounding.analysis.overview`, so the dashboard, the HTML
report and the ``baseline``, ``changes`` and ``alerts`` commands show the same numbers.

:func:`render` turns an overview into rich renderables (narrow terminals get fewer
columns, never names cut mid-word); :func:`render_text` into plain text; :func:`live`
redraws it in place every ``MetricsConfig.refresh_interval`` seconds until Ctrl-C, with a
status line, within the terminal's height.

>>> from sounding.presentation.dashboard import DashboardModel, render_text
>>> print(render_text(DashboardModel.empty(data_dir="/tmp/none", start=0.0, end=86400.0),
...                   width=60).splitlines()[0])  # doctest: +ELLIPSIS
sounding dashboard ...
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from sounding.analysis.changepoints import ChangePoint
from sounding.analysis.overview import (
    INTERNAL_PREFIX,
    AlertRow,
    ErrorRow,
    MetricRow,
    Overview,
    SessionSummary,
    build_overview,
)
from sounding.core.config import MetricsConfig
from sounding.presentation._format import (
    format_change,
    format_stat,
    format_value,
    stored_text,
    when,
)
from sounding.presentation.sparkline import sparkline

if TYPE_CHECKING:
    from rich.console import RenderableType

    from sounding.storage import Store
    from sounding.storage.times import TimeLike

__all__ = [
    "INTERNAL_PREFIX",
    "WIDE",
    "AlertRow",
    "ChangePoint",
    "DashboardModel",
    "ErrorRow",
    "MetricRow",
    "SessionSummary",
    "build_model",
    "format_value",
    "live",
    "render",
    "render_text",
    "stored_text",
]

#: The dashboard's model is the overview (the older name).
DashboardModel = Overview
#: Terminal width from which the metrics table shows every column.
WIDE: Final = 130


def build_model(
    store: Store,
    *,
    since: TimeLike = "7d",
    now: float | None = None,
    config: MetricsConfig | None = None,
    names: Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
    by: str | None = None,
) -> Overview:
    """The overview the dashboard shows (:func:`~sounding.analysis.overview.build_overview`)."""
    return build_overview(store, since=since, now=now, config=config, names=names, tags=tags, by=by)


def _relative(cp: ChangePoint) -> float | None:
    """A change point's relative change (``0.5`` is +50 %)."""
    return None if cp.percent is None else cp.percent / 100.0


def _cells(*cells: Any) -> list[Any]:
    """Table cells: plain strings become ``Text`` (never markup, control characters
    escaped), renderables pass through."""
    return [stored_text(c) if isinstance(c, str) else c for c in cells]


def _change_style(row: MetricRow) -> str:
    """Colour of a change: red is worse past the threshold, green better, yellow a notable
    move of something that is not judged (usage, gauges)."""
    return {
        "worse": "bold red" if row.flagged else "red",
        "better": "green",
        "changed": "yellow",
        "steady": "default",
    }.get(row.verdict or "", "dim")


def _split_name(name: str, width: int) -> str:
    """``name`` in lines of at most ``width`` characters, broken after dots (a part longer
    than a line is left whole, never cut mid-word)."""
    if len(name) <= width:
        return name
    lines: list[str] = []
    line = ""
    for part in name.replace(".", ".\0").split("\0"):
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        line += part
    if line:
        lines.append(line)
    return "\n".join(lines)


def _name_text(name: str, width: int, style: str) -> Any:
    """A name as rich ``Text`` in lines of at most ``width`` (see :func:`_split_name`); each
    line is stored text (escaped), the line breaks are ours."""
    from rich.text import Text

    return Text("\n").join(
        stored_text(line, style) for line in _split_name(name, width).split("\n")
    )


def _header(model: Overview, width: int | None) -> Any:
    from rich.text import Text

    w = model.windows
    head = Text()
    head.append("sounding dashboard", style="bold")
    head.append_text(stored_text(f"  {model.data_dir}", style="dim"))
    head.append("\n")
    head.append(f"window   {when(w.start)} → {when(w.end)}\n")
    head.append(f"now      {when(w.current_start)} → {when(w.end)}\n")
    since = model.rates_since()
    if since is not None:
        # A brand-new app: rates count their hours from its first data, not from "now".
        head.append(f"rates    since the first data, {when(since)}\n")
    head.append(
        f"baseline {when(w.baseline_start)} → {when(w.baseline_end)}; "
        f"flagged when worse by {model.threshold_percent:g} %"
    )
    return head


def _trend_caption(model: Overview, chars: int) -> str:
    """What the trend column draws: the statistic, and the time one character covers."""
    w = model.windows
    per = w.trend_step * max(1.0, w.trend_points / max(chars, 1))
    approx = "=" if w.trend_points <= chars else "≈"
    return f"Trend: Stat over the window, 1 character {approx} " + (format_value(per, "s"))


def _metrics_table(model: Overview, width: int | None, limit: int | None) -> Any:
    from rich.table import Table
    from rich.text import Text

    wide = width is None or width >= WIDE
    # Below 80 columns the trend gives way first, so names keep 16 characters.
    spark_w = 24 if wide else max(4, min(11, (width or 80) - 16 - 29 - 10 - 1))
    fixed = {"Stat": 4, "Now": 9, "Baseline": 9, "Change": 7, "Trend": spark_w}
    n_cols = 9 if wide else 6
    used = sum(fixed.values()) + 2 * (n_cols - 1)
    name_w = max(16, (width or 200) - used - 1) if not wide else 48
    rows = list(model.rows)
    if limit is not None:
        # ``limit`` is in lines (a long name takes two): regressions first when rows must go.
        ranked = sorted(rows, key=lambda r: (not r.flagged, r.verdict != "worse", r.name))
        kept: list[MetricRow] = []
        lines = 0
        for r in ranked:
            need = _split_name(r.name, name_w).count("\n") + 1 + len(r.groups)
            if lines + need > limit and kept:
                break
            kept.append(r)
            lines += need
        rows = [r for r in model.rows if r in kept] if len(kept) == len(rows) else kept
    title = Text("\nMetrics: statistic now vs baseline", style="bold")
    table = Table(
        title=title, title_justify="left", box=None, pad_edge=False, header_style="bold underline",
        padding=(0, 1), expand=False,
        caption=_trend_caption(model, spark_w),
        caption_justify="left",
    )  # fmt: skip
    cols = ["Metric", "Stat", "Now", "Baseline", "Change", "Trend"]
    if wide:
        cols = ["Metric", "Stat", "Now", "Baseline", "Change", "Count", "p50", "p99", "Trend"]
    labels = [r.name for r in rows] + [
        f"  {model.by}={'(none)' if g.value is None else g.value}" for r in rows for g in r.groups
    ]
    longest = max((len(t) for t in labels), default=8)
    for col in cols:
        if col == "Metric":
            table.add_column(col, no_wrap=True, width=min(name_w, max(longest, 6)))
        elif col in fixed:
            just = "left" if col in ("Trend", "Stat") else "right"
            table.add_column(col, justify=just, no_wrap=True, width=fixed[col])  # type: ignore[arg-type]
        else:
            table.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        name = _name_text(r.name, name_w, "bold" if r.flagged else "")
        cells: dict[str, Any] = {
            "Metric": name,
            "Stat": r.stat,
            "Now": format_stat(r.current, r.stat, r.unit),
            "Baseline": format_stat(r.baseline, r.stat, r.unit),
            "Change": Text(format_change(r.change), style=_change_style(r)),
            "Count": format_value(
                r.total if r.total is not None and r.stat == "rate" else float(r.count)
            ),
            "p50": format_value(r.p50, r.unit),
            "p99": format_value(r.p99, r.unit),
            "Trend": Text(sparkline(r.trend, spark_w), style="red" if r.flagged else "cyan"),
        }
        table.add_row(*_cells(*(cells[c] for c in cols)))
        for g in r.groups:
            label = "(none)" if g.value is None else g.value
            gcells: dict[str, Any] = {
                "Metric": _name_text(f"  {model.by}={label}", name_w, "dim"),
                "Stat": "",
                "Now": format_stat(g.current, r.stat, r.unit),
                "Baseline": format_stat(g.baseline, r.stat, r.unit),
                "Change": format_change(g.change),
                "Count": str(g.count),
                "p50": "",
                "p99": "",
                "Trend": "",
            }
            table.add_row(*_cells(*(gcells[c] for c in cols)))
    return table, len(model.rows) - len(rows)


def _errors_table(model: Overview, width: int | None, limit: int) -> Any:
    from rich.table import Table
    from rich.text import Text

    wide = width is None or width >= WIDE
    t = Table(
        title=Text("\nTop error types (metrics and events)", style="bold"),
        title_justify="left",
        box=None, pad_edge=False, header_style="bold underline", padding=(0, 1),
    )  # fmt: skip
    shown = model.errors[:limit]
    names = [e.exc_type if wide else e.exc_type.rsplit(".", 1)[-1] for e in shown]
    type_w = min(max(map(len, names), default=4), 30)
    example_w = max(18, (width or 200) - type_w - 5 - 20 - 3 * 2 - 1)
    t.add_column("Type", no_wrap=True, min_width=type_w)
    t.add_column("Count", justify="right", no_wrap=True, min_width=5)
    t.add_column("Last seen", no_wrap=True, min_width=20)
    t.add_column("Example (scrubbed)", overflow="ellipsis", no_wrap=not wide, max_width=example_w)
    for e in shown:
        t.add_row(
            *_cells(
                # Narrow terminals: the class name; the module path is in --format json.
                stored_text(e.exc_type if wide else e.exc_type.rsplit(".", 1)[-1], "red"),
                str(e.count),
                when(e.last_seen),
                stored_text(e.example or ""),
            )
        )
    return t


def _alerts_table(model: Overview) -> Any:
    from rich.table import Table
    from rich.text import Text

    firing = sum(1 for a in model.alerts if a.firing)
    t = Table(
        title=Text("\n" + f"Alerts ({firing} firing)", style="bold red" if firing else "bold"),
        title_justify="left", box=None, pad_edge=False, header_style="bold underline",
        padding=(0, 1),
    )  # fmt: skip
    for c in ("Rule", "Condition", "Value", "State", "Since"):
        t.add_column(c, justify="right" if c == "Value" else "left")
    for a in model.alerts:
        style = "bold red" if a.firing else "yellow" if a.status == "pending" else "green"
        t.add_row(
            *_cells(
                stored_text(a.name),
                stored_text(
                    f"{a.metric} {a.stat} {a.op} {format_value(a.threshold, a.unit)}"
                ),
                format_value(a.value, a.unit),
                Text(a.status.upper() if a.firing else a.status, style=style),
                when(a.since) if a.evaluated else "not evaluated",
            )
        )
    return t


def _changes_table(model: Overview, limit: int) -> Any:
    from rich.table import Table
    from rich.text import Text

    t = Table(
        title=Text("\nRecent change points", style="bold"), title_justify="left",
        box=None, pad_edge=False, header_style="bold underline", padding=(0, 1),
    )  # fmt: skip
    for c in ("When", "Metric", "Stat", "Before", "After", "Change"):
        t.add_column(c, justify="right" if c in ("Before", "After", "Change") else "left")
    for row, cp in model.recent_changes()[:limit]:
        t.add_row(
            *_cells(
                when(cp.timestamp),
                stored_text(row.name),
                row.stat,
                format_stat(cp.before, row.stat, row.unit),
                format_stat(cp.after, row.stat, row.unit),
                format_change(_relative(cp)),
            )
        )
    return t


def _footer(model: Overview) -> Any:
    from rich.text import Text

    s = model.sessions
    foot = Text()
    if s.count:
        foot.append(f"Sessions: {s.count}")
        if s.median_duration is not None:
            foot.append(f", median {format_value(s.median_duration, 's')}")
        if s.by_version:
            versions = ", ".join(f"{v}: {n}" for v, n in s.by_version.items())
            foot.append_text(stored_text("; by version " + versions))
        foot.append(f"; last started {when(s.last_started)}")
    if model.internal:
        if foot.plain:
            foot.append("\n")
        foot.append_text(
            stored_text(
                "sounding itself: "
                + ", ".join(f"{k} {format_value(v)}" for k, v in sorted(model.internal.items()))
                + " (see `sounding status`)",
                "yellow",
            )
        )
    return foot


def render(
    model: Overview,
    *,
    width: int | None = None,
    height: int | None = None,
    status: str | None = None,
) -> RenderableType:
    """The dashboard as one rich renderable (print it, or hand it to ``rich.live.Live``).

    Below :data:`WIDE` columns of ``width`` the metrics table keeps the statistic, now, the
    baseline, the change and a shorter trend. With ``height`` (a live terminal) the content
    is cut to fit: regressions, firing alerts and the top errors first. ``status`` is a last
    line (the live view's refresh status).
    """
    from rich.console import Group
    from rich.text import Text

    parts: list[RenderableType] = [_header(model, width)]
    compact = height is not None
    if not model.rows:
        parts.append(
            Text(
                "\nNo metrics recorded in this window. Record some with "
                "sounding.counter(...)/histogram(...), widen it with --since, "
                "or try `sounding demo`.",
                style="yellow",
            )
        )
    else:
        if not model.history:
            parts.append(
                Text(
                    'Not enough history yet: nothing older than "now" to compare with.',
                    style="yellow",
                )
            )
        flagged = model.flagged
        if flagged:
            line = Text("⚠ ", style="bold red")
            line.append(
                f"{len(flagged)} regression(s) past ±{model.threshold_percent:g} %: ",
                style="bold red",
            )
            names = ", ".join(f"{r.name} {r.stat} {format_change(r.change)}" for r in flagged)
            line.append_text(stored_text(names, "red"))
            parts.append(line)
        firing = [a for a in model.alerts if a.firing]
        if compact:
            # One line each for alerts and errors; the rest of the height for metrics.
            if model.alerts:
                parts.append(
                    stored_text(
                        f"Alerts: {len(firing)} firing"
                        + (": " + ", ".join(a.name for a in firing) if firing else ""),
                        "bold red" if firing else "green",
                    )
                )
            if model.errors:
                top = ", ".join(
                    f"{e.exc_type.rsplit('.', 1)[-1]} {e.count}" for e in model.errors[:3]
                )
                parts.append(stored_text(f"Top errors: {top}", "red"))
            # The header's 4 lines, one per line above, the table's title (2), column
            # names and caption, the "more" line, the status line, and the cursor's line.
            used = 4 + (len(parts) - 1) + 4 + 1 + (1 if status else 0) + 1
            limit = max(1, (height or 24) - used)
            table, hidden = _metrics_table(model, width, limit)
            parts.append(table)
            if hidden:
                parts.append(
                    Text(
                        f"… {hidden} more metric(s): widen the terminal or use --metric",
                        style="dim",
                    )
                )
        else:
            table, _ = _metrics_table(model, width, None)
            parts.append(table)
    if not compact:
        if model.alerts:
            parts.append(_alerts_table(model))
        if model.errors:
            parts.append(_errors_table(model, width, 10))
        if model.recent_changes():
            parts.append(_changes_table(model, 8))
        foot = _footer(model)
        if foot.plain:
            parts.append(foot)
    if status:
        parts.append(Text(status, style="reverse"))
    return Group(*parts)


def render_text(
    model: Overview, *, width: int = 120, height: int | None = None, color: bool = False
) -> str:
    """The dashboard as plain text (or with ANSI colours), ``width`` columns wide."""
    import io

    from rich.console import Console

    console = Console(
        file=io.StringIO(),
        width=width,
        record=True,
        color_system="standard" if color else None,
        force_terminal=color,
    )
    console.print(render(model, width=width, height=height))
    return console.export_text(styles=color)


def status_line(
    refresh_interval: float,
    updated: float | None,
    error: str | None = None,
    width: int | None = None,
) -> str:
    """The live view's last line: refresh interval, last update (UTC) and how to quit.

    >>> status_line(5.0, 0.0)
    'live: refresh every 5 s · updated 00:00:00 UTC · Ctrl-C to quit'
    """
    from datetime import datetime, timezone

    stamp = (
        "-"
        if updated is None
        else datetime.fromtimestamp(updated, tz=timezone.utc).strftime("%H:%M:%S UTC")
    )
    text = f"live: refresh every {refresh_interval:g} s · updated {stamp} · Ctrl-C to quit"
    if width is not None and len(text) > width:
        text = f"live {refresh_interval:g} s · {stamp} · Ctrl-C quits"
    if error:
        text += f" · refresh failed: {error}"
    return text


def live(
    load: Callable[[], Overview],
    *,
    refresh_interval: float,
    console: Any = None,
    iterations: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> int:
    """Show ``load()``'s overview and redraw it in place every ``refresh_interval`` seconds.

    The picture fits the terminal (its width and height) and ends with a status line.
    Runs until Ctrl-C (or ``iterations`` redraws, for tests); returns the number of redraws.
    A failing ``load`` keeps the last picture and says so in the status line.
    """
    from rich.console import Console
    from rich.live import Live

    con = console if console is not None else Console()

    def draw(model: Overview, updated: float, error: str | None = None) -> RenderableType:
        return render(
            model,
            width=con.width,
            height=con.height,
            status=status_line(refresh_interval, updated, error, width=con.width),
        )

    model = load()
    updated = clock()
    drawn = 0
    with Live(
        draw(model, updated), console=con, auto_refresh=False, transient=False,
        vertical_overflow="crop", screen=False,
    ) as view:  # fmt: skip
        try:
            while iterations is None or drawn < iterations:
                sleep(refresh_interval)
                try:
                    model = load()
                    updated = clock()
                    view.update(draw(model, updated), refresh=True)
                except Exception as exc:
                    view.update(draw(model, updated, str(exc)), refresh=True)
                drawn += 1
        except KeyboardInterrupt:
            pass
    return drawn
