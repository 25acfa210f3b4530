"""The HTML report: one self-contained file with a chart per metric.

It renders :class:`sounding.analysis.overview.Overview` (the model the dashboard and the
analysis commands render too) and decides nothing itself. Charts are SVG generated here,
styles are inline, and there is no script at all: the file opens without a network, and a
Content-Security-Policy forbids scripts and remote loads anyway. Values show on hover
through SVG ``<title>`` elements. Every piece of stored data (metric names, tag values,
error types, messages) is escaped with :func:`html.escape`, so a metric called
``<script>`` is shown, never run.

Each chart draws the metric's statistic (named on the card: p95 for distributions, the rate
per hour for counters, the mean for gauges) per interval of the window, a band of ±
``deviation_threshold_percent`` around the baseline and the baseline itself, the "now"
window shaded, change points as dashed lines and alert thresholds as a red line; a legend
says which is which. Intervals without data are gaps in the line.

>>> from sounding.analysis.overview import Overview
>>> page = render_report(Overview.empty(data_dir="/tmp/x", start=0.0, end=86400.0))
>>> page.startswith("<!DOCTYPE html>") and "<script" not in page
True
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Final

from sounding.analysis.overview import MetricRow, Overview, build_overview
from sounding.core.types import MetricType
from sounding.presentation._format import format_change, format_stat, format_value, when
from sounding.storage import Store
from sounding.storage.times import TimeLike

__all__ = [
    "REPORT_POINTS",
    "VersionStats",
    "build_report",
    "chart_svg",
    "nice_ticks",
    "render_report",
    "time_ticks",
]

#: Points per chart: the overview's trend grid (the same for every view).
REPORT_POINTS: Final = 96

_W: Final = 640
_H: Final = 190
_PAD_L: Final = 70
_PAD_R: Final = 12
_PAD_T: Final = 12
_PAD_B: Final = 30
_LIMIT: Final = 1e300

_CSS: Final = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 72rem; padding: 0 1rem; color: #1d2330; background: #fafbfc; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .5rem; }
.meta { color: #5b6475; margin: 0 0 1rem; }
.flag { background: #fdecec; border: 1px solid #e5a3a3; padding: .6rem .9rem; border-radius: 6px; }
.ok { background: #eaf6ee; border: 1px solid #a6d5b4; padding: .6rem .9rem; border-radius: 6px; }
.new { background: #fff8e1; border: 1px solid #e6c96b; padding: .6rem .9rem; border-radius: 6px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(34rem, 1fr)); gap: 1rem; }
.card { background: #fff; border: 1px solid #dde1e8; border-radius: 8px; padding: .75rem 1rem; }
.card.flagged { border: 2px solid #d43c3c; }
.card h3 { font-size: 1rem; margin: 0; font-family: ui-monospace, monospace;
          overflow-wrap: anywhere; }
.card p { margin: .2rem 0 .4rem; color: #5b6475; font-size: .85rem; }
.stats { font-variant-numeric: tabular-nums; font-size: .85rem; }
.up { color: #c62828; font-weight: 600; } .down { color: #2e7d32; font-weight: 600; }
.neutral { color: #8a6d00; } .steady { color: #5b6475; }
.legend { display: flex; flex-wrap: wrap; gap: .4rem 1.2rem; font-size: .85rem;
          color: #5b6475; margin: .25rem 0 .75rem; align-items: center; }
.legend svg { width: 28px; height: 12px; display: inline-block; vertical-align: middle; }
svg { width: 100%; height: auto; display: block; }
table { border-collapse: collapse; background: #fff; font-size: .9rem; }
th, td { border: 1px solid #dde1e8; padding: .3rem .6rem; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
code { font-family: ui-monospace, monospace; }
footer { margin-top: 2rem; color: #5b6475; font-size: .8rem; }
"""


def _e(value: object) -> str:
    """Escape anything for HTML text and attribute values."""
    return html.escape(str(value), quote=True)


def _when(ts: float | None) -> str:
    return when(ts)


def _stat_text(value: float | None, row: MetricRow) -> str:
    return format_stat(value, row.stat, row.unit)


def _clamp(v: float) -> float:
    return max(min(v, _LIMIT), -_LIMIT)


def nice_ticks(lo: float, hi: float, most: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering ``lo .. hi``.

    >>> nice_ticks(0.0, 1234.0)
    [0.0, 500.0, 1000.0, 1500.0]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(most - 1, 1)
    if not raw >= 1e-300:
        # A span too small for round ticks (it underflows, e.g. 0 .. 5e-324): the two ends.
        return [lo, hi]
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    k = 0
    while True:
        t = first + k * step
        ticks.append(float(round(t, 12)))
        if t >= hi - 1e-12 * abs(hi):
            break
        k += 1
    return ticks


_SECONDS: Final = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0}


def _round_ticks(lo: float, hi: float, unit: str) -> list[float]:
    """:func:`nice_ticks` in the unit the labels are written in: a duration axis reaching
    past a minute gets whole minutes, past a second whole seconds."""
    if unit not in _SECONDS:
        return nice_ticks(lo, hi)
    per = _SECONDS[unit]
    top = max(abs(lo), abs(hi)) * per
    shown = 60.0 if top >= 60 else 1.0 if top >= 1 else 1e-3 if top >= 1e-3 else 1e-6
    factor = shown / per
    return [t * factor for t in nice_ticks(lo / factor, hi / factor)]


#: Candidate spacings of x-axis ticks, in seconds.
_TIME_STEPS: Final = (
    900, 1800, 3600, 7200, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400,
    14 * 86400, 28 * 86400,
)  # fmt: skip


def time_ticks(start: float, end: float, most: int = 7) -> list[tuple[float, str]]:
    """Tick times inside ``start .. end`` at a readable spacing, with their labels (UTC):
    ``Nov 30`` at midnight, ``12:00`` otherwise.

    >>> [label for _, label in time_ticks(0.0, 3 * 86400.0)]
    ['Jan 01', '12:00', 'Jan 02', '12:00', 'Jan 03', '12:00', 'Jan 04']
    """
    span = max(end - start, 1.0)
    step = next((s for s in _TIME_STEPS if span / s <= most), float(_TIME_STEPS[-1]))
    t = math.ceil(start / step) * step
    out: list[tuple[float, str]] = []
    while t <= end:
        d = datetime.fromtimestamp(t, tz=timezone.utc)
        label = d.strftime("%b %d") if d.hour == 0 and d.minute == 0 else d.strftime("%H:%M")
        out.append((float(t), label))
        t += step
    return out


def chart_svg(row: MetricRow, model: Overview, alert: float | None = None) -> str:
    """One metric's chart as an inline ``<svg>`` element (all text escaped)."""
    values = list(row.trend)
    present = [v for v in values if v is not None and math.isfinite(v)]
    label = f"{row.name}: {row.stat} per interval"
    parts = [
        f'<svg viewBox="0 0 {_W} {_H}" role="img" aria-label="{_e(label)}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_e(label)}</title>",
    ]
    x0, x1 = _PAD_L, _W - _PAD_R
    y0, y1 = _H - _PAD_B, _PAD_T
    t0 = max(row.trend_start, model.start) if row.trend_step > 0 else model.start
    t1 = model.end
    span_t = max(t1 - t0, 1e-9)

    def x_of(t: float) -> float:
        return x0 + (min(max(t, t0), t1) - t0) / span_t * (x1 - x0)

    scale_vals = list(present)
    band: tuple[float, float] | None = None
    if row.baseline is not None:
        k = model.threshold_percent / 100.0
        width = abs(row.baseline) * k
        band = (row.baseline - width, row.baseline + width)
        if all(math.isfinite(b) for b in band):
            scale_vals += [band[0], band[1]]
        else:
            band = None
    if alert is not None:
        scale_vals.append(alert)
    # Values beyond +-1e300 are drawn at that bound, so the scale arithmetic below can
    # never overflow into inf or NaN coordinates.
    scale_vals = [_clamp(v) for v in scale_vals]
    lo = min(scale_vals, default=0.0)
    hi = max(scale_vals, default=1.0)
    lo = 0.0 if 0 <= lo < 0.3 * hi else lo
    if hi <= lo:
        delta = abs(lo) / 2 or 1.0
        lo, hi = lo - delta, hi + delta
    ticks = _round_ticks(lo, hi, row.unit if row.stat not in ("rate", "count") else "")
    lo, hi = min(ticks[0], lo), max(ticks[-1], hi)
    if hi <= lo:
        hi = lo + 1.0

    def y_of(v: float) -> float:
        return y0 - (_clamp(v) - lo) / (hi - lo) * (y0 - y1)

    # The "now" window, shaded.
    cx = x_of(model.current_start)
    parts.append(
        f'<rect class="now" x="{cx:.1f}" y="{y1}" width="{max(x1 - cx, 0):.1f}" '
        f'height="{y0 - y1}" fill="#eef2fb"><title>now: since '
        f"{_e(_when(model.current_start))}</title></rect>"
    )
    for tick in ticks:
        yy = y_of(tick)
        parts.append(
            f'<line x1="{x0}" x2="{x1}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#edf0f4" '
            'stroke-width="1"/>'
            f'<text x="{x0 - 6}" y="{yy + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#5b6475">{_e(_stat_text(tick, row))}</text>'
        )
    if band is not None and row.baseline is not None:
        ya, yb = y_of(band[1]), y_of(band[0])
        parts.append(
            f'<rect class="baseline-band" x="{x0}" y="{ya:.1f}" width="{x1 - x0}" '
            f'height="{max(yb - ya, 0.5):.1f}" fill="#2e7d32" fill-opacity="0.10">'
            f"<title>{_e('baseline ' + row.stat + ' ' + _stat_text(row.baseline, row))} "
            f"±{_e(f'{model.threshold_percent:g}')} %</title></rect>"
        )
        yb0 = y_of(row.baseline)
        parts.append(
            f'<line class="baseline" x1="{x0}" x2="{x1}" y1="{yb0:.1f}" y2="{yb0:.1f}" '
            'stroke="#2e7d32" stroke-dasharray="4 3" stroke-width="1"><title>'
            f"{_e('baseline ' + row.stat + ' ' + _stat_text(row.baseline, row))}</title></line>"
        )
    if alert is not None:
        ya = y_of(alert)
        parts.append(
            f'<line class="alert-threshold" x1="{x0}" x2="{x1}" y1="{ya:.1f}" y2="{ya:.1f}" '
            f'stroke="#d43c3c" stroke-width="1.5"><title>alert threshold '
            f"{_e(_stat_text(alert, row))}</title></line>"
        )
    # Axes and time ticks.
    parts.append(
        f'<line x1="{x0}" x2="{x1}" y1="{y0}" y2="{y0}" stroke="#9aa3b2" stroke-width="1"/>'
        f'<line x1="{x0}" x2="{x0}" y1="{y0}" y2="{y1}" stroke="#9aa3b2" stroke-width="1"/>'
    )
    for t, text in time_ticks(t0, t1):
        xx = x_of(t)
        parts.append(
            f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{y0}" y2="{y0 + 4}" stroke="#9aa3b2"/>'
            f'<text class="x-tick" x="{xx:.1f}" y="{y0 + 16}" font-size="11" '
            f'text-anchor="middle" fill="#5b6475">{_e(text)}</text>'
        )
    # The series; gaps (intervals without data) break the line.
    if row.trend_step > 0:
        colour = "#d43c3c" if row.flagged else "#2f6fd6"
        run: list[str] = []
        runs: list[list[str]] = []
        hovers: list[str] = []
        for i, v in enumerate(values):
            begin = row.trend_start + i * row.trend_step
            if v is None or not math.isfinite(v) or begin + row.trend_step <= t0:
                if run:
                    runs.append(run)
                    run = []
                continue
            px = x_of(begin + 0.5 * row.trend_step)
            py = y_of(v)
            run.append(f"{px:.1f},{py:.1f}")
            tip = f"{_when(begin)}: {row.stat} {_stat_text(v, row)}"
            hovers.append(
                f'<circle class="point" cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{colour}" '
                f'fill-opacity="0" stroke="none"><title>{_e(tip)}</title></circle>'
            )
        if run:
            runs.append(run)
        for r in runs:
            if len(r) == 1:
                cxs, cys = r[0].split(",")
                parts.append(f'<circle cx="{cxs}" cy="{cys}" r="2" fill="{colour}"/>')
            else:
                parts.append(
                    f'<polyline class="series" points="{" ".join(r)}" fill="none" '
                    f'stroke="{colour}" stroke-width="1.8" stroke-linejoin="round"/>'
                )
        parts.extend(hovers)
    for cp in row.change_points:
        # A change point found without timestamps has none to draw at.
        at = getattr(cp, "timestamp", None)
        if at is None:
            continue
        px = x_of(float(at))
        what = f" {_stat_text(cp.before, row)} → {_stat_text(cp.after, row)}"
        rel = None if cp.percent is None else cp.percent / 100.0
        what += "" if rel is None else f" ({format_change(rel)})"
        parts.append(
            f'<line class="change-point" x1="{px:.1f}" x2="{px:.1f}" y1="{y1}" y2="{y0}" '
            'stroke="#7b3fb5" stroke-dasharray="5 3" stroke-width="1.5">'
            f"<title>{_e(f'change point {_when(cp.timestamp)}: {row.stat}{what}')}</title>"
            "</line>"
        )
    if not present:
        parts.append(
            f'<text x="{(x0 + x1) / 2}" y="{(y0 + y1) / 2}" text-anchor="middle" '
            'fill="#9aa3b2">no data in this window</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _legend() -> str:
    def swatch(inner: str) -> str:
        return f'<svg viewBox="0 0 28 12" aria-hidden="true">{inner}</svg>'

    items = [
        (swatch('<line x1="0" x2="28" y1="6" y2="6" stroke="#2f6fd6" stroke-width="2"/>'),
         "the statistic per interval (hover a point for its value)"),
        (swatch('<rect x="0" y="0" width="28" height="12" fill="#eef2fb"/>'), "now"),
        (swatch('<rect x="0" y="2" width="28" height="8" fill="#2e7d32" fill-opacity="0.15"/>'
                '<line x1="0" x2="28" y1="6" y2="6" stroke="#2e7d32" stroke-dasharray="4 3"/>'),
         "baseline (dashed) and its ± threshold band"),
        (swatch('<line x1="0" x2="28" y1="6" y2="6" stroke="#d43c3c" stroke-width="1.5"/>'),
         "alert threshold"),
        (swatch('<line x1="14" x2="14" y1="0" y2="12" stroke="#7b3fb5" stroke-width="1.5" '
                'stroke-dasharray="3 2"/>'), "change point"),
    ]  # fmt: skip
    return (
        '<div class="legend">'
        + "".join(f"<span>{s} {_e(text)}</span>" for s, text in items)
        + "</div>"
    )


def _change_html(row: MetricRow) -> str:
    if row.change is None:
        return "-"
    cls = {"worse": "up", "better": "down", "changed": "neutral"}.get(row.verdict or "", "steady")
    return f'<span class="{cls}">{_e(format_change(row.change))}</span>'


def _card(row: MetricRow, model: Overview, alert: float | None) -> str:
    kind = row.metric_type.value
    desc = f"{kind}" + (f", {row.unit}" if row.unit else "")
    if row.description:
        desc += f": {row.description}"
    desc += f"; chart: {row.stat} per {format_value(row.trend_step, 's')}"
    stats = (
        f"{_e(row.stat)} now {_e(_stat_text(row.current, row))} · baseline "
        f"{_e(_stat_text(row.baseline, row))} · change {_change_html(row)}"
    )
    if row.metric_type in (MetricType.HISTOGRAM, MetricType.SUMMARY):
        stats += (
            f"<br>now p50 {_e(format_value(row.p50, row.unit))} · p95 "
            f"{_e(format_value(row.p95, row.unit))} · p99 {_e(format_value(row.p99, row.unit))}"
            f" · {row.count} obs"
        )
    elif row.metric_type is MetricType.COUNTER:
        stats += f"<br>now {_e(format_value(row.total))} in total"
    cls = "card flagged" if row.flagged else "card"
    return (
        f'<section class="{cls}"><h3>{_e(row.name)}</h3><p>{_e(desc)}</p>'
        f'<div class="stats">{stats}</div>{chart_svg(row, model, alert)}</section>'
    )


#: Per metric, per app version: ``(count, p50, p95)`` over the window.
VersionStats = dict[str, dict[str, tuple[int, float | None, float | None]]]


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Sort versions naturally: 1.10 after 1.9."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.\-+_]", version))


def _versions_html(model: Overview, versions: VersionStats) -> str:
    by_name = {r.name: r for r in model.rows}
    cells = []
    for name in sorted(versions):
        row = by_name.get(name)
        unit = "" if row is None else row.unit
        per = versions[name]
        first: float | None = None
        for version in sorted(per, key=_version_key):
            count, p50, p95 = per[version]
            change = ""
            if first is None:
                first = p95
            elif first and p95 is not None:
                change = format_change((p95 - first) / abs(first))
            cells.append(
                f"<tr><td><code>{_e(name)}</code></td><td><code>{_e(version)}</code></td>"
                f'<td class="n">{count}</td><td class="n">{_e(format_value(p50, unit))}</td>'
                f'<td class="n">{_e(format_value(p95, unit))}</td>'
                f'<td class="n">{_e(change)}</td></tr>'
            )
    return (
        '<h2>By app version</h2><p class="meta">Over the whole window.</p>'
        "<table><tr><th>Metric</th><th>Version</th><th>Count</th>"
        "<th>p50</th><th>p95</th><th>p95 vs first</th></tr>" + "".join(cells) + "</table>"
    )


def render_report(
    model: Overview,
    *,
    title: str = "sounding report",
    versions: VersionStats | None = None,
) -> str:
    """The report for ``model`` as one HTML document (a string).

    ``versions`` adds a table of each distribution's p50/p95 per app version (what
    :func:`build_report` reads from the store for metrics recorded under several versions).
    """
    alerts = {a.metric: a.threshold for a in model.alerts if a.threshold is not None}
    since = model.rates_since()  # a brand-new app: rates count from its first data
    rates_since = "" if since is None else f" (rates since the first data, {_e(_when(since))})"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # No scripts, no remote loads: only inline styles and data: images are allowed.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">Data: <code>{_e(model.data_dir)}</code> · window '
        f"{_e(_when(model.start))} → {_e(_when(model.end))} · now = since "
        f"{_e(_when(model.current_start))}{rates_since} · baseline "
        f"{_e(_when(model.baseline_start))} → "
        f"{_e(_when(model.current_start))} · a metric is flagged when its statistic got "
        f"worse by {model.threshold_percent:g} %</p>",
    ]
    if model.rows and not model.history:
        out.append(
            '<div class="new"><strong>Not enough history yet.</strong> Nothing was recorded '
            "before the last day, so there is no baseline to compare with; come back after "
            "a few days of use. The values so far are below.</div>"
        )
    flagged = model.flagged
    if flagged:
        items = "".join(
            f"<li><code>{_e(r.name)}</code> {_e(r.stat)} "
            f"{_e(_stat_text(r.baseline, r))} → {_e(_stat_text(r.current, r))} "
            f"{_change_html(r)}</li>"
            for r in flagged
        )
        out.append(
            f'<div class="flag"><strong>{len(flagged)} regression(s) past '
            f"±{model.threshold_percent:g} %</strong><ul>{items}</ul></div>"
        )
    elif model.rows and model.history:
        out.append('<div class="ok">No metric regressed past the threshold.</div>')
    firing = [a for a in model.alerts if a.firing]
    if model.alerts:
        rows = "".join(
            f"<tr><td>{_e(a.name)}</td><td><code>{_e(a.metric)}</code></td>"
            f"<td>{_e(a.stat)} {_e(a.op)} {_e(format_value(a.threshold, a.unit))} over "
            f"{_e(format_value(a.window, 's'))}</td>"
            f'<td class="n">{_e(format_value(a.value, a.unit))}</td>'
            f"<td>{'<strong class=up>FIRING</strong>' if a.firing else _e(a.status)}</td>"
            f"<td>{_e(_when(a.since)) if a.evaluated else 'not evaluated: now'}</td></tr>"
            for a in model.alerts
        )
        out.append(
            f"<h2>Alerts ({len(firing)} firing)</h2><table><tr><th>Rule</th><th>Metric</th>"
            f"<th>Condition</th><th>Value</th><th>State</th><th>Since</th></tr>"
            f"{rows}</table>"
        )
    out.append("<h2>Metrics</h2>")
    if not model.rows:
        out.append("<p>No metrics recorded in this window.</p>")
    elif not model.history:
        cells = "".join(
            f"<tr><td><code>{_e(r.name)}</code></td><td>{_e(r.stat)}</td>"
            f'<td class="n">{_e(_stat_text(r.current, r))}</td><td class="n">{r.count}</td></tr>'
            for r in model.rows
        )
        out.append(
            "<table><tr><th>Metric</th><th>Statistic</th><th>Now</th><th>Observations</th>"
            f"</tr>{cells}</table>"
        )
    else:
        out.append(_legend())
        out.append('<div class="grid">')
        out.extend(_card(r, model, alerts.get(r.name)) for r in model.rows)
        out.append("</div>")
    if versions:
        out.append(_versions_html(model, versions))
    changed = model.recent_changes()
    if changed:
        cp_cells: list[str] = []
        for crow, cp in changed:
            rel = None if cp.percent is None else cp.percent / 100.0
            cp_cells.append(
                f"<tr><td>{_e(_when(cp.timestamp))}</td><td><code>{_e(crow.name)}</code></td>"
                f"<td>{_e(crow.stat)}</td>"
                f'<td class="n">{_e(_stat_text(cp.before, crow))}</td>'
                f'<td class="n">{_e(_stat_text(cp.after, crow))}</td>'
                f'<td class="n">{_e(format_change(rel))}</td></tr>'
            )
        rows = "".join(cp_cells)
        out.append(
            "<h2>Change points</h2><table><tr><th>When</th><th>Metric</th>"
            f"<th>Statistic</th><th>Before</th><th>After</th><th>Change</th></tr>{rows}</table>"
        )
    out.append("<h2>Errors</h2>")
    if model.errors:
        rows = "".join(
            f'<tr><td><code>{_e(er.exc_type)}</code></td><td class="n">{er.count}</td>'
            f"<td>{_e(_when(er.last_seen))}</td><td>{_e(er.example or '')}</td></tr>"
            for er in model.errors
        )
        out.append(
            "<table><tr><th>Type</th><th>Count</th><th>Last seen</th>"
            f"<th>Example (scrubbed)</th></tr>{rows}</table>"
        )
    else:
        out.append("<p>No errors recorded in this window.</p>")
    s = model.sessions
    if s.count:
        per_version = ", ".join(f"{_e(v)}: {n}" for v, n in s.by_version.items())
        out.append(
            f"<h2>Sessions</h2><p>{s.count} sessions, median length "
            f"{_e(format_value(s.median_duration, 's'))}; by version {per_version}.</p>"
        )
    if model.internal:
        items = ", ".join(f"{_e(k)}: {_e(format_value(v))}" for k, v in model.internal.items())
        out.append(f"<h2>sounding itself</h2><p>Failures and dropped data: {items}.</p>")
    out.append(
        "<footer>Generated by sounding from the local store; nothing in this file was "
        "fetched from or sent to a network.</footer></body></html>"
    )
    return "\n".join(out)


def build_report(
    store: Store,
    *,
    since: TimeLike = "7d",
    now: float | None = None,
    names: Sequence[str] | None = None,
    title: str = "sounding report",
    tags: Mapping[str, str] | None = None,
) -> str:
    """Read ``store`` and render the report for the window ``since`` .. ``now`` (series
    whose tags include ``tags``)."""
    model = build_overview(
        store, since=since, now=now, names=names, tags=tags, points=REPORT_POINTS
    )
    versions: VersionStats = {}
    for row in model.rows:
        if row.metric_type not in (MetricType.HISTOGRAM, MetricType.SUMMARY):
            continue
        found = store.distributions(row.name, model.start, model.end, tags, group_by="app_version")
        per = {
            v: (d.count, d.quantile(0.5), d.quantile(0.95))
            for v, d in found.items()
            if v is not None and d.count
        }
        # One version says nothing a chart does not: only compare when there are several.
        if len(per) > 1:
            versions[row.name] = per
    return render_report(model, title=title, versions=versions)
