"""The demo: a simulated audio recorder instrumented with sounding, run over days of use.

:class:`RecorderApp` is a small but realistic application written against sounding's public
API only: sessions, recordings, processing, exports and saves, operations of very different
speeds, errors whose messages carry personal data (e-mail addresses, home-directory paths)
and flaky disk I/O. :func:`run_demo` drives it over ``days`` simulated days with a manual
clock, so two weeks of use take seconds, and releases a new app version (1.5.0) on the last
day whose export is about 40 % slower: the regression the dashboard must flag.

Everything is deterministic for a seed (``random.Random(seed)``); only the position in
calendar time depends on when it runs (the simulation ends at ``now``).

>>> import tempfile
>>> result = run_demo(days=2, seed=7, data_dir=tempfile.mkdtemp())  # doctest: +SKIP
>>> result.sessions > 0  # doctest: +SKIP
True
"""

from __future__ import annotations

import math
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import sounding
from sounding.analysis import (
    SQLiteAlertStateStore,
    evaluate,
    load_rules,
    store_value_source,
)
from sounding.exceptions import InvalidValueError
from sounding.storage import Store, open_store
from sounding.testing import ManualClock, simulated_time

__all__ = [
    "ALERTS_TOML",
    "DEMO_APP_NAME",
    "DEMO_MARKER",
    "EXPORT_ALERT_MS",
    "REGRESSED_METRIC",
    "DemoResult",
    "RecorderApp",
    "default_demo_dir",
    "prepare_demo_dir",
    "run_demo",
]

#: The demo's application name: its data never mixes with a real application's.
DEMO_APP_NAME: Final = "sounding-demo"
#: A file the demo leaves in its data directory, so it only ever wipes its own data.
DEMO_MARKER: Final = "SOUNDING_DEMO"
#: The metric the injected regression slows down.
REGRESSED_METRIC: Final = "recorder.export.duration"
OLD_VERSION: Final = "1.4.2"
NEW_VERSION: Final = "1.5.0"
#: How much slower an export is in the new version.
REGRESSION_FACTOR: Final = 1.45
#: The p95 export time (ms) above which the demo's alert fires (1.4.2 stays well below).
EXPORT_ALERT_MS: Final = 1400.0
#: The recorder's alert rules, written to ``alerts.toml`` in the demo's data directory where
#: ``sounding alerts`` and the dashboard find them. Evaluated every simulated hour.
ALERTS_TOML: Final = f"""\
# Written by `sounding demo`: the recorder's alert rules (read by `sounding alerts` and
# `sounding dashboard`; their state is kept in telemetry.db, table alert_state).
[[alerts]]
name = "slow exports"
metric = "{REGRESSED_METRIC}"
stat = "p95"
op = ">"
threshold = {EXPORT_ALERT_MS}
recover_threshold = {EXPORT_ALERT_MS - 100}
window = "6h"
for = "1h"
keep_firing_for = "2h"
description = "p95 export time over the last 6 hours"
"""
#: The demo aggregates into 5-minute intervals (fewer, larger writes than the 60 s default).
DEMO_AGGREGATION_INTERVAL: Final = 300

# Personal data the simulated users put into error messages. The store must never hold it:
# tests search the raw database and event log for every one of these strings.
PLANTED_EMAILS: Final = ("maria.lopez@example.com", "j.smith+audio@example.org")
PLANTED_USERS: Final = ("maria.lopez", "jsmith")
PLANTED_PATHS: Final = tuple(f"/home/{u}/Music" for u in PLANTED_USERS)

_FORMATS: Final = ("wav", "mp3", "flac")
#: Median export time per minute of audio (ms); flac compresses hardest.
_EXPORT_MS_PER_MIN: Final = {"wav": 540.0, "mp3": 650.0, "flac": 760.0}
_EFFECTS: Final = ("normalize", "denoise", "trim")
_EFFECT_MS_PER_MIN: Final = {"normalize": 90.0, "denoise": 1400.0, "trim": 25.0}


class DemoDiskError(OSError):
    """The simulated disk failed (the recorder's flaky I/O)."""


class DemoSyncError(ConnectionError):
    """The simulated cloud sync failed."""


@dataclass
class DemoResult:
    """What a demo run produced and where it is."""

    data_dir: Path
    store_path: Path
    start: float
    end: float
    seed: int
    days: int
    sessions: int = 0
    operations: int = 0
    errors: int = 0
    release_time: float = 0.0
    wall_seconds: float = 0.0
    versions: list[str] = field(default_factory=lambda: [OLD_VERSION, NEW_VERSION])


class RecorderApp:
    """A simulated audio recorder, instrumented with sounding's public API.

    Each operation advances the simulated ``clock`` by how long it "takes", inside a sounding
    timer, so the instruments measure simulated time exactly as they would measure real time.
    Sessions are sounding sessions, events go through the structured logger, the flaky save
    runs inside an :func:`operation_boundary` that retries it, and exports and syncs inside a
    :class:`SentryContext` that records their errors (scrubbed) and counts them by type.
    """

    def __init__(
        self,
        clock: ManualClock,
        rng: random.Random,
        on_time: Callable[[], None] | None = None,
    ) -> None:
        self.clock = clock
        self.rng = rng
        # Called whenever simulated time has passed (the driver flushes at interval ends).
        self.on_time = on_time
        self.version = OLD_VERSION
        self.operations = 0
        self.errors = 0
        self.log = sounding.get_logger("recorder", category=sounding.EventCategory.USER_ACTION)
        # The instruments a real application would define once, at import time.
        self.sessions = sounding.counter("recorder.sessions", description="sessions started")
        self.session_length = sounding.histogram(
            "recorder.session.length", unit="s", description="how long a session lasted"
        )
        self.recordings = sounding.counter("recorder.recordings", description="takes recorded")
        self.take_length = sounding.histogram(
            "recorder.recording.length", unit="s", description="length of a recorded take"
        )
        self.device_open = sounding.histogram(
            "recorder.device.open.duration", unit="ms", description="opening the audio input"
        )
        self.processing = sounding.histogram(
            "recorder.processing.duration", unit="ms", description="applying an effect"
        )
        self.export_time = sounding.histogram(
            REGRESSED_METRIC, unit="ms", description="exporting a take to a file"
        )
        self.exports = sounding.counter("recorder.exports", description="files exported")
        self.memory = sounding.gauge("recorder.memory", unit="MB", description="resident memory")
        self.frame_time = sounding.summary(
            "recorder.ui.frame_time", unit="ms", description="UI frame render time"
        )
        # The disk fails now and then: retry twice at once, then give up without crashing.
        # The boundary records recorder.save.attempts/.retries/.failures/.duration itself.
        self.save_project = sounding.operation_boundary(
            "recorder.save",
            retry_on_failure=True,
            max_retries=2,
            retry_delay=0.0,
            retry_exceptions=(DemoDiskError,),
            fallback_value=False,
            reraise=False,
        )(self._write_project)

    # -- simulated work -------------------------------------------------------------------
    def _spend(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass (the work itself)."""
        self.clock.advance(max(seconds, 0.0))
        if self.on_time is not None:
            self.on_time()

    def _lognormal(self, median: float, sigma: float) -> float:
        return median * math.exp(self.rng.gauss(0.0, sigma))

    def open_device(self) -> None:
        """Open the audio input: fast, a few milliseconds."""
        with self.device_open.time():
            self._spend(self._lognormal(0.018, 0.35))
        self.operations += 1

    def record_take(self) -> float:
        """Record one take; returns its length in seconds."""
        length = min(self._lognormal(75.0, 0.35), 1800.0)
        source = self.rng.choice(("usb", "usb", "builtin"))
        self.recordings.inc(tags={"input": source})
        self.take_length.observe(length)
        # The user is recording: simulated time passes, the UI keeps drawing frames.
        self._spend(length)
        for _ in range(5):
            self.frame_time.observe(self._lognormal(6.0, 0.3))
        self.log.info("take.recorded", seconds=round(length, 1), input=source)
        self.operations += 1
        return length

    def process(self, effect: str, length: float) -> None:
        """Apply ``effect`` to a take of ``length`` seconds."""
        median = _EFFECT_MS_PER_MIN[effect] * max(length / 60.0, 0.1) ** 0.8 / 1000.0
        with self.processing.time(tags={"effect": effect}):
            self._spend(self._lognormal(median, 0.25))
        self.operations += 1

    def export(self, fmt: str, length: float, user: str) -> None:
        """Export a take; the slow path the new version regressed."""
        factor = REGRESSION_FACTOR if self.version == NEW_VERSION else 1.0
        median = factor * _EXPORT_MS_PER_MIN[fmt] * max(length / 60.0, 0.2) ** 0.5 / 1000.0
        self.operations += 1
        try:
            with sounding.SentryContext(operation="recorder.export", format=fmt) as ctx:
                ctx.add_breadcrumb("encoding", data={"format": fmt, "seconds": round(length)})
                with self.export_time.time(tags={"format": fmt}):
                    self._spend(self._lognormal(median, 0.15))
                    if self.rng.random() < 0.02:
                        # The message names the user's home directory: stored scrubbed.
                        raise PermissionError(
                            13,
                            "Permission denied",
                            f"/home/{user}/Music/take-{self.rng.randrange(999)}.{fmt}",
                        )
        except PermissionError:
            # Recorded by the context (type, scrubbed message, breadcrumbs); the app goes on.
            self.errors += 1
            return
        self.exports.inc(tags={"format": fmt})
        self.log.info("take.exported", category=sounding.EventCategory.STORAGE, format=fmt)

    def _write_project(self, user: str) -> bool:
        """Write the project file; the simulated disk fails about one time in sixteen."""
        self._spend(self._lognormal(0.045, 0.5))
        if self.rng.random() < 0.06:
            raise DemoDiskError(5, "Input/output error", f"/home/{user}/Music/project.rec")
        return True

    def save(self, user: str) -> None:
        """Save the project through the boundary (retried, never raises)."""
        if not self.save_project(user):
            self.errors += 1
        self.operations += 1

    def sync(self, email: str) -> None:
        """Upload the project to the user's cloud account; sometimes the network fails."""
        self.operations += 1
        try:
            with sounding.SentryContext(operation="recorder.sync"):
                self._spend(self._lognormal(0.4, 0.4))
                if self.rng.random() < 0.05:
                    # The message names the account: stored scrubbed.
                    raise DemoSyncError(f"cloud sync failed for {email}: connection reset")
        except DemoSyncError:
            self.errors += 1

    def session(self, user: str, email: str) -> None:
        """One session of use: open the device, record takes, process, export, save."""
        with sounding.session_scope(edition="desktop"):
            started = self.clock.monotonic()
            self.sessions.inc()
            self.memory.set(self._lognormal(180.0, 0.1))
            self.open_device()
            for _ in range(self.rng.randint(2, 8)):
                length = self.record_take()
                for effect in _EFFECTS:
                    if self.rng.random() < 0.6:
                        self.process(effect, length)
                self.memory.set(self._lognormal(220.0 + length / 10.0, 0.1))
                # Every take is exported, often to several formats.
                for fmt in self.rng.sample(_FORMATS, self.rng.choice((1, 1, 2, 2, 3))):
                    self.export(fmt, length, user)
                # Think time between takes.
                self._spend(self._lognormal(40.0, 0.7))
            self.save(user)
            if self.rng.random() < 0.3:
                self.sync(email)
            self.session_length.observe(self.clock.monotonic() - started)


def default_demo_dir() -> Path:
    """Where the demo keeps its data by default: its own directory, never a real app's."""
    import platformdirs

    return Path(platformdirs.user_data_dir("sounding", appauthor=False)) / DEMO_APP_NAME


def prepare_demo_dir(data_dir: Path) -> None:
    """Make ``data_dir`` an empty demo directory; refuse to touch anything that is not one.

    An existing directory is reused only when it is empty or holds the demo's marker file
    (then the previous demo's data is removed, so every run starts from the same state).
    """
    if data_dir.exists() and not data_dir.is_dir():
        raise InvalidValueError("--data-dir", str(data_dir), "a directory (this is a file)")
    if data_dir.is_dir() and any(data_dir.iterdir()):
        if not (data_dir / DEMO_MARKER).exists():
            raise InvalidValueError(
                "--data-dir",
                str(data_dir),
                "an empty directory or one the demo created before (it holds other data, "
                "which the demo will not overwrite)",
            )
        for child in data_dir.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (data_dir / DEMO_MARKER).write_text(
        "This directory holds data from `sounding demo`; the demo may delete it.\n"
    )


class _HourlyAlerts:
    """Evaluates the demo's alert rules at every simulated hour, keeping their state in the
    store's file (as ``sounding alerts --evaluate`` does)."""

    def __init__(self, data_dir: Path, first: float) -> None:
        self.data_dir = data_dir
        self.rules = load_rules(data_dir / "alerts.toml")
        self.next = math.floor(first / 3600.0) * 3600.0 + 3600.0
        self.store: Store | None = None
        self.states: SQLiteAlertStateStore | None = None

    def run_until(self, until: float) -> None:
        """Evaluate at each hour boundary before ``until`` not evaluated yet."""
        while self.next < until:
            if self.store is None and (self.data_dir / "telemetry.db").exists():
                self.store = open_store(self.data_dir)
                self.states = SQLiteAlertStateStore(self.store.path)
            if self.store is not None:
                evaluate(
                    self.rules,
                    store_value_source(self.store),
                    now=self.next,
                    state_store=self.states,
                    enable_alerts=False,
                )
            self.next += 3600.0

    def close(self) -> None:
        if self.states is not None:
            self.states.close()
        if self.store is not None:
            self.store.close()


def run_demo(
    *,
    days: int = 14,
    seed: int = 1,
    data_dir: str | os.PathLike[str] | None = None,
    now: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DemoResult:
    """Simulate ``days`` days of the recorder's use into the demo's store.

    The simulation ends at ``now`` (default: the current hour) so the dashboard's "last 7
    days" show it; version 1.5.0 is released at the start of the last day. ``progress`` is
    called as ``progress(done, total)`` once per simulated session.
    """
    if isinstance(days, bool) or not isinstance(days, int) or not 2 <= days <= 90:
        raise InvalidValueError("days", days, "a whole number of days from 2 to 90")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidValueError("seed", seed, "an integer")
    wall_start = time.perf_counter()
    directory = Path(data_dir) if data_dir is not None else default_demo_dir()
    prepare_demo_dir(directory)
    (directory / "alerts.toml").write_text(ALERTS_TOML, encoding="utf-8")
    end = float(math.floor((time.time() if now is None else now) / 3600.0) * 3600)
    start = end - days * 86400.0
    release = end - 86400.0
    rng = random.Random(seed)

    # Plan every session first so the progress bar knows the total. Days are counted back
    # from ``end`` (not calendar days), so a seed gives the same data whatever the hour of
    # the run: two quieter "weekend" days a week, sessions spread over the waking hours.
    plan: list[float] = []
    for day in range(days):
        day_start = start + day * 86400.0
        weekend = (days - 1 - day) % 7 in (2, 3)
        for _ in range(rng.randint(8, 14) if weekend else rng.randint(18, 30)):
            plan.append(day_start + rng.uniform(0.5, 23.0) * 3600.0)
    plan.sort()
    users = list(zip(PLANTED_USERS, PLANTED_EMAILS, strict=True))

    sounding.configure(
        app_name=DEMO_APP_NAME,
        app_version=OLD_VERSION,
        data_dir=str(directory),
        metrics=sounding.MetricsConfig(aggregation_interval=DEMO_AGGREGATION_INTERVAL),
        config_file=None,
        # Only the user's privacy switches apply to the demo, not a real app's settings.
        environ={k: v for k, v in os.environ.items() if k in ("DO_NOT_TRACK",)},
    )
    clock = ManualClock(start)
    result = DemoResult(
        data_dir=directory,
        store_path=sounding.get_settings().store_path,
        start=start,
        end=end,
        seed=seed,
        days=days,
        release_time=release,
    )
    step = DEMO_AGGREGATION_INTERVAL
    next_flush = [math.floor(start / step) * step + step]

    def on_time() -> None:
        # What the background writer does in a real process: flush at each interval's end.
        now = clock.time()
        if now >= next_flush[0]:
            sounding.flush()
            next_flush[0] = math.floor(now / step) * step + step

    alerts = _HourlyAlerts(directory, first=start)
    with simulated_time(clock):
        app = RecorderApp(clock, rng, on_time)
        for i, when in enumerate(plan):
            if when <= clock.time():
                # Sessions never overlap: the user starts the next one after this one ended.
                when = clock.time() + 60.0
            if app.version == OLD_VERSION and when >= release:
                clock.set(release)
                # The release: new settings flush what was recorded under the old version.
                sounding.configure(app_version=NEW_VERSION)
                app.version = NEW_VERSION
            # Alert rules are evaluated every hour, as a scheduled `sounding alerts
            # --evaluate` would, idle hours included.
            alerts.run_until(when)
            clock.set(when)
            # Open a fresh interval at the session start (nothing is pending, nothing written).
            sounding.flush()
            next_flush[0] = math.floor(when / step) * step + step
            user, email = users[rng.randrange(len(users))]
            app.session(user, email)
            # The app goes idle: the writer closes the last interval at its boundary.
            clock.set(math.ceil(clock.time() / step) * step)
            sounding.flush()
            result.sessions += 1
            if progress is not None:
                progress(i + 1, len(plan))
        result.operations = app.operations
        result.errors = app.errors
        clock.set(end)
        sounding.flush()
        alerts.run_until(end + 1.0)
    alerts.close()
    sounding.shutdown(timeout=5.0)
    result.wall_seconds = time.perf_counter() - wall_start
    return result

