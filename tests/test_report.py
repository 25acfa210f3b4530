"""The HTML report: self-contained, charts for every metric, every stored string escaped,
and it renders in a real headless Chromium with a clean console."""

from __future__ import annotations

import html.parser
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sounding
from sounding import MetricSnapshot, MetricType
from sounding.analysis.overview import Windows
from sounding.core.config import MetricsConfig
from sounding.presentation.dashboard import (
    ChangePoint,
    DashboardModel,
    ErrorRow,
    MetricRow,
)
from sounding.presentation.report import build_report, chart_svg, render_report
from sounding.storage import open_store

NOW = 1_769_904_000.0  # 2026-02-01T00:00Z
HOUR = 3600.0
HOSTILE = '<script>document.title="pwned"</script><img src=x onerror="alert(1)">'

#: The only elements a report may contain.
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "div", "section",
    "code", "span", "strong", "ul", "li", "table", "tr", "th", "td", "footer", "br", "svg", "rect",
    "line", "text", "polyline", "circle",
}  # fmt: skip


class _Tags(html.parser.HTMLParser):
    """Collects every element and attribute name the browser would see."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.update(name for name, _ in attrs)


def _structure(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    parser.close()
    return parser


def _fill(data_dir: Path) -> None:
    """Two days of a latency that steps up, a counter and a hostile error type and text."""
    sounding.configure(
        app_name="report-test",
        data_dir=str(data_dir),
        default_tags={},
        metrics=MetricsConfig(alert_thresholds={"app.op.duration": 140.0}),
    )
    sounding.histogram("app.op.duration", unit="ms", description=HOSTILE)
    rng = random.Random(3)
    for h in range(9 * 24):
        t0 = NOW - 9 * 86400 + h * HOUR
        center = 150.0 if t0 >= NOW - 86400 else 100.0
        for k in range(4):
            ts = t0 + k * 900 + 10
            value = center * rng.uniform(0.95, 1.05)
            sounding.record(MetricSnapshot(MetricType.HISTOGRAM, "app.op.duration", value, ts))
            sounding.record(MetricSnapshot(MetricType.COUNTER, "app.requests", 1.0, ts))
    sounding.record(
        MetricSnapshot(MetricType.COUNTER, "app.failures", 2.0, NOW - HOUR, {"exc_type": HOSTILE})
    )
    assert sounding.flush()


@pytest.fixture
def report_html(data_dir: Path) -> str:
    _fill(data_dir)
    with open_store(data_dir) as store:
        return build_report(store, now=NOW, since="7d")


def test_report_is_self_contained(report_html: str) -> None:
    """No script, no external URL, no remote load: a CSP forbids them and none are used."""
    page = report_html
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower()
    assert "Content-Security-Policy" in page
    for needle in ("http://", "https://", "@import", "url("):
        assert needle not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert not _structure(page).attrs & {"src", "href", "xlink:href", "action"}


def test_report_has_a_chart_per_metric_with_bands_markers_and_alerts(report_html: str) -> None:
    """Each metric gets an SVG chart; the regressed one has a baseline band, a change point,
    the alert threshold line, and is listed among the regressions."""
    tags = _structure(report_html).tags
    # app.failures, app.op.duration, app.requests; the legend's swatches are not charts.
    assert report_html.count('role="img"') == 3
    assert tags.count("polyline") >= 2
    # app.failures only happened now: it has no baseline to draw.
    assert report_html.count('class="baseline-band"') == 2
    assert 'class="change-point"' in report_html
    assert 'class="alert-threshold"' in report_html
    assert "1 regression(s) past ±20 %" in report_html
    assert "FIRING" in report_html


def test_hostile_text_is_escaped_everywhere(report_html: str) -> None:
    """A description and an error type full of HTML are shown as text, never as elements."""
    parsed = _structure(report_html)
    assert set(parsed.tags) <= ALLOWED_TAGS
    assert not {a for a in parsed.attrs if a.startswith("on")}
    assert "&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;" in report_html


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60
) | st.sampled_from([HOSTILE, "</svg><script>x</script>", '" onload="x', "]]><!--", "&amp;"])


@settings(max_examples=60, deadline=None)
@given(name=_text, desc=_text, unit=_text, exc=_text, example=_text, data_dir=_text)
def test_render_never_leaks_markup(
    name: str, desc: str, unit: str, exc: str, example: str, data_dir: str
) -> None:
    """Whatever the stored strings, the page has only the report's own elements and no
    event-handler attributes."""
    row = MetricRow(
        name=name, metric_type=MetricType.HISTOGRAM, unit=unit, description=desc, series=1,
        count=10, total=100.0, rate_per_hour=1.0, p50=1.0, p95=2.0, p99=3.0, stat="p95",
        current=2.0, baseline=1.0, baseline_count=10, change=1.0, flagged=True,
        trend=(1.0, None, 2.0, 3.0), trend_start=0.0, trend_step=3600.0,
        change_points=(ChangePoint(2, 7200.0, 1.0, 2.5),),
    )  # fmt: skip
    model = DashboardModel(
        data_dir=data_dir,
        windows=Windows(
            start=0.0, end=14400.0, current_start=10800.0, baseline_start=0.0, baseline_end=10800.0
        ),
        threshold_percent=20.0, rows=(row,), errors=(ErrorRow(exc, 3, 100.0, example),),
    )  # fmt: skip
    parsed = _structure(render_report(model))
    assert set(parsed.tags) <= ALLOWED_TAGS
    assert not {a for a in parsed.attrs if a.startswith("on")}


def test_empty_model_renders_a_page_without_charts() -> None:
    """No data still gives a valid page that says so."""
    model = DashboardModel.empty(data_dir="/nowhere", start=0.0, end=86400.0)
    page = render_report(model)
    assert "No metrics recorded in this window." in page
    assert "<svg" not in page


def test_chart_of_a_series_without_data_says_so() -> None:
    """A chart whose window holds no values shows a note instead of a line."""
    row = MetricRow(
        name="x", metric_type=MetricType.GAUGE, unit="", description="", series=1, count=0,
        total=None, rate_per_hour=None, p50=None, p95=None, p99=None, stat="avg",
        current=None, baseline=None, baseline_count=0, change=None, flagged=False,
        trend=(None, None), trend_start=0.0, trend_step=60.0,
    )  # fmt: skip
    model = DashboardModel.empty(data_dir="/d", start=0.0, end=120.0)
    svg = chart_svg(row, model)
    assert "no data in this window" in svg
    assert "polyline" not in svg


# -- in a real browser -------------------------------------------------------------------------


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium is needed for this test: apt-get install -y chromium"
    return found


def _open_in_chromium(page: Path, profile: Path) -> tuple[str, str]:
    """Load ``page`` headless; return the DOM after load and the browser's log."""
    proc = subprocess.run(
        [
            _chromium(), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
            "--dump-dom", page.as_uri(),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


def _console_lines(log: str, page: Path) -> list[str]:
    """The page's console messages (Chromium logs them as ``CONSOLE`` lines with the source)."""
    return [line for line in log.splitlines() if "CONSOLE" in line and page.as_uri() in line]


@pytest.mark.needs_extras
def test_report_renders_in_chromium_with_a_clean_console(
    report_html: str, tmp_path: Path
) -> None:
    """Chromium loads the report: every chart is in the DOM, nothing ran, the console is
    empty (a control page proves console messages would be seen)."""
    control = tmp_path / "control.html"
    control.write_text(
        '<!DOCTYPE html><html><body><script>console.error("control-error")</script>'
        "</body></html>"
    )
    _, log = _open_in_chromium(control, tmp_path / "profile")
    assert any("control-error" in line for line in _console_lines(log, control))

    page = tmp_path / "report.html"
    page.write_text(report_html, encoding="utf-8")
    dom, log = _open_in_chromium(page, tmp_path / "profile")
    assert _console_lines(log, page) == []
    assert dom.count('role="img"') == 3
    assert dom.count("<polyline") >= 2
    assert "<title>sounding report</title>" in dom
    assert "pwned" not in dom.split("</title>")[0]
    assert "<script" not in dom


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
        min_size=1,
        max_size=20,
    ),
    baseline=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
)
def test_chart_coordinates_are_always_finite(
    values: list[float | None], baseline: float | None
) -> None:
    """Whatever the values (zero, negative, near the float maximum), the chart's numbers are
    finite: no NaN or infinity reaches the SVG."""
    row = MetricRow(
        name="m", metric_type=MetricType.GAUGE, unit="", description="", series=1, count=1,
        total=None, rate_per_hour=None, p50=None, p95=None, p99=None, stat="avg",
        current=None, baseline=baseline, baseline_count=1, change=None, flagged=False,
        trend=tuple(values), trend_start=0.0, trend_step=60.0,
    )  # fmt: skip
    model = DashboardModel.empty(data_dir="/d", start=0.0, end=60.0 * len(values))
    svg = chart_svg(row, model, alert=baseline)
    assert "nan" not in svg.lower()
    assert "inf" not in svg.lower()


def test_versions_are_compared_in_natural_order(data_dir: Path) -> None:
    """A distribution recorded under several app versions gets a per-version table, in
    version order (1.9 before 1.10), with the p95 change against the first."""
    sounding.configure(app_name="report-test", data_dir=str(data_dir), default_tags={})
    sounding.histogram("app.op.duration", unit="ms")
    for i in range(200):
        ts = NOW - 2 * 86400 + i * 600
        version, value = ("1.9", 100.0) if i < 100 else ("1.10", 150.0)
        sounding.record(
            MetricSnapshot(MetricType.HISTOGRAM, "app.op.duration", value, ts,
                           {"app_version": version})
        )  # fmt: skip
    assert sounding.flush()
    with open_store(data_dir) as store:
        page = build_report(store, now=NOW, since="7d")
    table = page.split("<h2>By app version</h2>")[1].split("</table>")[0]
    assert table.index("<code>1.9</code>") < table.index("<code>1.10</code>")
    assert "+50 %" in table


def test_report_has_a_legend_ticks_and_hover_values(report_html: str) -> None:
    """A legend names the band, the baseline, the threshold and change points; x ticks are
    readable dates inside the window; every drawn point carries its value in a <title>."""
    assert 'class="legend"' in report_html
    for words in ("baseline (dashed)", "threshold band", "alert threshold", "change point"):
        assert words in report_html
    ticks = re.findall(r'<text class="x-tick"[^>]*>([^<]+)</text>', report_html)
    assert ticks
    assert all(re.fullmatch(r"[A-Z][a-z]{2} \d\d|\d\d:\d\d", t) for t in ticks)
    assert "Jan 26" in ticks  # inside the 7-day window ending 2026-02-01
    assert "Jan 20" not in ticks  # before it
    hovers = re.findall(r'<circle class="point"[^>]*><title>([^<]+)</title>', report_html)
    assert hovers
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: (p95|rate|avg) ", h) for h in hovers)


def test_y_ticks_are_round_values(report_html: str) -> None:
    """The y axis of the latency chart is labelled at round milliseconds."""
    svg = report_html.split('aria-label="app.op.duration: p95 per interval"')[1]
    svg = svg.split("</svg>")[0]
    labels = re.findall(r'text-anchor="end" fill="#5b6475">([^<]+)</text>', svg)
    assert labels
    assert all(re.fullmatch(r"\d+(0|5) ms|0 ms", label) for label in labels), labels


def test_a_failure_counter_going_down_is_not_red() -> None:
    """Fallbacks that fell are shown as better (green), never with the regression colour."""
    row = MetricRow(
        name="app.save.fallbacks", metric_type=MetricType.COUNTER, unit="", description="",
        series=1, count=3, total=3.0, rate_per_hour=0.1, p50=None, p95=None, p99=None,
        stat="rate", current=0.1, baseline=0.5, baseline_count=80, change=-0.8,
        flagged=False, polarity="up", verdict="better", trend=(0.5, 0.1),
        trend_start=0.0, trend_step=3600.0,
    )  # fmt: skip
    model = DashboardModel(
        data_dir="/d",
        windows=Windows(
            start=0.0, end=7200.0, current_start=3600.0, baseline_start=0.0, baseline_end=3600.0
        ),
        threshold_percent=20.0, rows=(row,),
    )  # fmt: skip
    page = render_report(model)
    assert '<span class="down">-80 %</span>' in page
    assert 'class="up"' not in page


def test_a_unit_that_only_looks_like_a_rate_is_written_plainly() -> None:
    """A unit "/" or "/x" (not a rate unit) is written as a plain unit, never a KeyError."""
    from sounding.presentation._format import format_value

    assert format_value(1.0, "/") == "1 /"
    assert format_value(0.5, "/s") == "0.5/s"


def test_nice_ticks_survive_a_span_that_underflows() -> None:
    """A span too small for round ticks (0 .. 5e-324) gives its two ends, never a math error."""
    from sounding.presentation.report import nice_ticks

    assert nice_ticks(0.0, 5e-324) == [0.0, 5e-324]
