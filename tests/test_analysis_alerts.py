"""Alert rules, the alert state machine, persisted state and notification sinks."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sounding.analysis import (
    AlertRule,
    AlertState,
    AlertStatus,
    CallbackNotifier,
    LogNotifier,
    MemoryAlertStateStore,
    Notification,
    SQLiteAlertStateStore,
    WebhookError,
    WebhookNotifier,
    evaluate,
    load_rules,
    parse_duration,
    rule_value,
    rules_from_config,
    step,
)
from sounding.core import config, health
from sounding.core.config import MetricsConfig
from sounding.core.exceptions import ConfigurationError, InvalidTypeError, InvalidValueError

INA, P, F, R, D = (
    AlertStatus.INACTIVE,
    AlertStatus.PENDING,
    AlertStatus.FIRING,
    AlertStatus.RECOVERING,
    AlertStatus.RESOLVED,
)


def drive(
    rule: AlertRule, script: Sequence[tuple[float, float | None]]
) -> list[tuple[AlertStatus, str | None]]:
    """Run ``evaluate`` over (time, value) steps; return (status, notification kind) each."""
    store = MemoryAlertStateStore()
    got: list[Notification] = []
    out = []
    for t, v in script:
        (ev,) = evaluate(
            [rule],
            lambda r, now, v=v: v,
            now=t,
            state_store=store,
            sinks=[CallbackNotifier(got.append)],
            enable_alerts=True,
        )
        kind = ev.notification.kind if ev.notification else None
        assert ev.sent == (kind is not None)
        out.append((ev.status, kind))
    assert [n.kind for n in got] == [k for _, k in out if k]
    return out


def test_hysteresis_notifies_once() -> None:
    """980, 1010, 990, 1020 against 1000 with recovery at 950 notify once."""
    rule = AlertRule("slow", "app.latency", threshold=1000, recover_threshold=950)
    steps = drive(rule, [(0, 980), (1, 1010), (2, 990), (3, 1020)])
    assert steps == [(INA, None), (F, "firing"), (F, None), (F, None)]


def test_without_hysteresis_the_same_values_flap() -> None:
    """Without a recovery level the same values fire, resolve and fire again."""
    rule = AlertRule("slow", "app.latency", threshold=1000)
    steps = drive(rule, [(0, 980), (1, 1010), (2, 990), (3, 1020)])
    assert steps == [(INA, None), (F, "firing"), (D, "resolved"), (F, "firing")]


def test_every_transition_with_for_and_keep_firing_for() -> None:
    """inactive -> pending -> inactive -> pending -> firing -> recovering -> firing ->
    recovering -> resolved -> inactive, with notifications only on firing and resolved."""
    rule = AlertRule("slow", "m.x", threshold=10, for_=60, keep_firing_for=120)
    script: list[tuple[float, float | None]] = [
        (0, 5),  # inactive
        (30, 11),  # pending (condition starts)
        (60, 9),  # condition gone before for_: inactive
        (90, 12),  # pending again, from 90
        (120, 12),  # 30 s < 60 s: still pending
        (150, 13),  # held 60 s: firing
        (180, 8),  # recovered: recovering
        (200, 15),  # breach again: firing, silently
        (240, 8),  # recovering from 240
        (300, 7),  # 60 s < 120 s: still recovering
        (360, 6),  # 120 s: resolved
        (420, 6),  # next evaluation: inactive
    ]
    assert drive(rule, script) == [
        (INA, None),
        (P, None),
        (INA, None),
        (P, None),
        (P, None),
        (F, "firing"),
        (R, None),
        (F, None),
        (R, None),
        (R, None),
        (D, "resolved"),
        (INA, None),
    ]


def test_resolved_can_fire_again_directly() -> None:
    """A breach right after resolving fires again (a new incident)."""
    rule = AlertRule("slow", "m.x", threshold=10)
    assert drive(rule, [(0, 11), (1, 9), (2, 11)]) == [
        (F, "firing"),
        (D, "resolved"),
        (F, "firing"),
    ]


@pytest.mark.parametrize(
    ("op", "values", "expected"),
    [
        ("<", [5, 3, 6], [(INA, None), (F, "firing"), (D, "resolved")]),
        ("<=", [4, 4, 5], [(F, "firing"), (F, None), (D, "resolved")]),
        (">=", [4, 3, 4], [(F, "firing"), (D, "resolved"), (F, "firing")]),
    ],
)
def test_operators(op: str, values: list[float], expected: list[Any]) -> None:
    """Each comparison operator fires and recovers on the right side of the threshold."""
    rule = AlertRule("r", "m.x", op=op, threshold=4)
    assert drive(rule, list(enumerate(values))) == expected


def test_no_data_keep_leaves_state_untouched() -> None:
    """With no_data='keep' a missing value changes nothing and sends nothing."""
    rule = AlertRule("r", "m.x", threshold=10)
    assert drive(rule, [(0, 11), (1, None), (2, None), (3, 5)]) == [
        (F, "firing"),
        (F, None),
        (F, None),
        (D, "resolved"),
    ]


def test_no_data_ok_resolves() -> None:
    """With no_data='ok' a missing value counts as recovered."""
    rule = AlertRule("r", "m.x", threshold=10, no_data="ok")
    assert drive(rule, [(0, 11), (1, None)]) == [(F, "firing"), (D, "resolved")]


def test_no_data_alert_fires() -> None:
    """With no_data='alert' a missing value counts as breaching."""
    rule = AlertRule("r", "m.x", threshold=10, no_data="alert")
    assert drive(rule, [(0, 1), (1, None)]) == [(INA, None), (F, "firing")]


def test_no_data_is_reported_in_the_evaluation() -> None:
    """The evaluation says when the value was missing."""
    (ev,) = evaluate(
        [AlertRule("r", "m.x", threshold=1)],
        lambda r, now: None,
        now=0.0,
        enable_alerts=True,
        sinks=[],
    )
    assert ev.no_data
    assert ev.value is None
    assert ev.status is INA


def test_enable_alerts_false_evaluates_but_sends_nothing() -> None:
    """enable_alerts=False still moves and persists state, but no sink is called."""
    store = MemoryAlertStateStore()
    got: list[Notification] = []
    rule = AlertRule("r", "m.x", threshold=1)
    (ev,) = evaluate(
        [rule],
        lambda r, now: 5.0,
        now=0.0,
        state_store=store,
        sinks=[got.append],
        enable_alerts=False,
    )
    assert ev.status is F
    assert ev.notification is not None
    assert not ev.sent
    assert got == []
    stored = store.load("r", "")
    assert stored is not None
    assert stored.status is F


def test_enable_alerts_defaults_to_settings() -> None:
    """Without enable_alerts, MetricsConfig.enable_alerts decides (False by default)."""
    got: list[Notification] = []
    rule = AlertRule("r", "m.x", threshold=1)
    evaluate([rule], lambda r, now: 5.0, now=0.0, sinks=[got.append])
    assert got == []
    config.configure(metrics=MetricsConfig(enable_alerts=True))
    evaluate([rule], lambda r, now: 5.0, now=0.0, sinks=[got.append])
    assert [n.kind for n in got] == ["firing"]


def test_failing_sink_never_breaks_evaluation() -> None:
    """A raising sink is counted; the other sinks and the other rules still run."""
    before = health.counts().get("alerts.sink", 0)

    def broken(n: Notification) -> None:
        raise RuntimeError("sink down")

    got: list[Notification] = []
    rules = [AlertRule("a", "m.x", threshold=1), AlertRule("b", "m.y", threshold=1)]
    evs = evaluate(
        rules, lambda r, now: 5.0, now=0.0, sinks=[broken, got.append], enable_alerts=True
    )
    assert [e.status for e in evs] == [F, F]
    assert [n.rule for n in got] == ["a", "b"]
    assert health.counts()["alerts.sink"] == before + 2


def test_failing_value_source_counts_as_no_data() -> None:
    """A raising value source is counted and treated as a missing value."""

    def source(rule: AlertRule, now: float) -> float:
        raise OSError("store locked")

    (ev,) = evaluate(
        [AlertRule("r", "m.x", threshold=1)], source, now=0.0, sinks=[], enable_alerts=True
    )
    assert ev.no_data
    assert health.counts()["alerts.value_source"] == 1


def test_bad_value_type_is_counted() -> None:
    """A value that is not a number is a counted failure, then no data."""
    (ev,) = evaluate(
        [AlertRule("r", "m.x", threshold=1)],
        lambda r, n: "high",
        now=0.0,
        sinks=[],
        enable_alerts=True,
    )
    assert ev.no_data
    assert health.counts()["alerts.value"] == 1


def test_several_series_and_a_vanishing_one() -> None:
    """A mapping gives one state per series; a series missing later gets no data."""
    store = MemoryAlertStateStore()
    rule = AlertRule("r", "m.x", threshold=10, no_data="ok")
    got: list[Notification] = []
    values: dict[str, float] = {"app_version=1.0": 5.0, "app_version=2.0": 50.0}
    evs = evaluate(
        [rule],
        lambda r, now: values,
        now=0.0,
        state_store=store,
        sinks=[got.append],
        enable_alerts=True,
    )
    assert [(e.series, e.status) for e in evs] == [("app_version=1.0", INA), ("app_version=2.0", F)]
    evs = evaluate(
        [rule],
        lambda r, now: {"app_version=1.0": 5.0},
        now=60.0,
        state_store=store,
        sinks=[got.append],
        enable_alerts=True,
    )
    assert [(e.series, e.status, e.no_data) for e in evs] == [
        ("app_version=1.0", INA, False),
        ("app_version=2.0", D, True),
    ]
    assert [(n.kind, n.series) for n in got] == [
        ("firing", "app_version=2.0"),
        ("resolved", "app_version=2.0"),
    ]


def test_notification_content() -> None:
    """A notification carries the rule, value, threshold, incident start and a message."""
    rule = AlertRule(
        "slow export",
        "rec.export",
        stat="p99",
        threshold=0.5,
        for_=10,
        tags={"app_version": "1.2"},
        description="export too slow",
    )
    got: list[Notification] = []
    store = MemoryAlertStateStore()
    for t in (100.0, 115.0):
        evaluate(
            [rule],
            lambda r, now: 0.8,
            now=t,
            state_store=store,
            sinks=[got.append],
            enable_alerts=True,
        )
    (n,) = got
    assert (n.kind, n.rule, n.series, n.stat, n.value, n.threshold) == (
        "firing",
        "slow export",
        "app_version=1.2",
        "p99",
        0.8,
        0.5,
    )
    assert (n.at, n.since) == (115.0, 100.0)
    assert (
        n.message == "[FIRING] slow export {app_version=1.2}: p99 of rec.export = 0.8 (rule: > 0.5)"
    )
    assert json.loads(json.dumps(n.as_dict()))["tags"] == {"app_version": "1.2"}


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.floats(0, 20)), max_size=40),
    st.sampled_from(["keep", "ok", "alert"]),
    st.floats(0, 5),
    st.floats(0, 5),
)
def test_notifications_alternate(
    values: list[float | None], no_data: str, for_: float, keep: float
) -> None:
    """Whatever the values, notifications alternate firing/resolved, starting with firing."""
    rule = AlertRule(
        "r",
        "m.x",
        threshold=10,
        recover_threshold=8,
        for_=for_,
        keep_firing_for=keep,
        no_data=no_data,
    )
    state: AlertState | None = None
    kinds = []
    for t, v in enumerate(values):
        state, note = step(rule, state, v, float(t))
        if note:
            kinds.append(note.kind)
    assert kinds == ["firing", "resolved"] * (len(kinds) // 2) + ["firing"] * (len(kinds) % 2)


# --- persisted state ------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite-file", "sqlite-memory"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryAlertStateStore()
    else:
        path = tmp_path / "alerts.db" if request.param == "sqlite-file" else ":memory:"
        s = SQLiteAlertStateStore(path)
        yield s
        s.close()


def test_store_round_trip(any_store: Any) -> None:
    """A saved state loads back equal; states() lists them sorted, per rule."""
    a = AlertState("r1", "", F, since=10.0, active_since=5.0, value=3.5, evaluated_at=10.0)
    b = AlertState("r1", "v=2", P, since=11.0)
    c = AlertState("r0", "", INA, since=1.0)
    for s in (a, b, c):
        any_store.save(s)
    assert any_store.load("r1", "") == a
    assert any_store.load("r1", "v=2") == b
    assert any_store.load("nope", "") is None
    assert any_store.states() == [c, a, b]
    assert any_store.states("r1") == [a, b]
    any_store.save(AlertState("r1", "", D, since=20.0))
    assert any_store.load("r1", "").status is D


def test_sqlite_state_survives_a_new_process(tmp_path: Path) -> None:
    """State persisted in a SQLite file resumes in a new store object (a new process)."""
    path = tmp_path / "telemetry.db"
    rule = AlertRule("r", "m.x", threshold=10, for_=60)
    s1 = SQLiteAlertStateStore(path)
    (ev,) = evaluate(
        [rule], lambda r, now: 11.0, now=0.0, state_store=s1, sinks=[], enable_alerts=True
    )
    assert ev.status is P
    s1.close()
    s2 = SQLiteAlertStateStore(path)
    got: list[Notification] = []
    (ev,) = evaluate(
        [rule],
        lambda r, now: 11.0,
        now=60.0,
        state_store=s2,
        sinks=[got.append],
        enable_alerts=True,
    )
    assert ev.previous is P
    assert ev.status is F
    assert [n.since for n in got] == [0.0]
    s2.close()


def test_sqlite_table_added_to_existing_database(tmp_path: Path) -> None:
    """The alert_state table is created next to whatever the file already holds."""
    import sqlite3

    path = tmp_path / "existing.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE other(x INTEGER)")
    store = SQLiteAlertStateStore(path)
    store.save(AlertState("r", "", INA, since=0.0))
    store.close()
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert {"other", "alert_state"} <= tables


def test_failing_state_store_is_counted() -> None:
    """A state store that raises is counted; evaluation still returns a result."""

    class Broken(MemoryAlertStateStore):
        def save(self, state: AlertState) -> None:
            raise OSError("disk full")

    (ev,) = evaluate(
        [AlertRule("r", "m.x", threshold=1)],
        lambda r, n: 5.0,
        now=0.0,
        state_store=Broken(),
        sinks=[],
        enable_alerts=True,
    )
    assert ev.status is F
    assert health.counts()["alerts.state"] == 1


# --- sinks ----------------------------------------------------------------------------


def _note(kind: str = "firing") -> Notification:
    return Notification(
        kind=kind,
        rule="r",
        series="",
        metric="m.x",
        stat="p95",  # type: ignore[arg-type]
        op=">",
        threshold=1.0,
        value=2.0,
        at=10.0,
        since=5.0,
    )


def test_log_notifier_levels(caplog: pytest.LogCaptureFixture) -> None:
    """Firing is logged at WARNING and resolved at INFO on ``sounding.alerts``."""
    caplog.set_level(logging.INFO, logger="sounding.alerts")
    sink = LogNotifier()
    sink.send(_note("firing"))
    sink.send(_note("resolved"))
    recs = [r for r in caplog.records if r.name == "sounding.alerts"]
    assert [r.levelno for r in recs] == [logging.WARNING, logging.INFO]
    assert recs[0].alert["rule"] == "r"  # type: ignore[attr-defined]
    assert "[FIRING] r" in recs[0].getMessage()


def test_default_sink_is_the_log(caplog: pytest.LogCaptureFixture) -> None:
    """Without sinks, notifications go to the log."""
    caplog.set_level(logging.INFO, logger="sounding.alerts")
    evaluate([AlertRule("r", "m.x", threshold=1)], lambda r, n: 5.0, now=0.0, enable_alerts=True)
    assert any("[FIRING] r" in r.getMessage() for r in caplog.records)


class _Hook:
    """A real HTTP server on 127.0.0.1 answering with scripted status codes."""

    def __init__(self, codes: list[int], delay: float = 0.0) -> None:
        self.codes = codes
        self.bodies: list[dict[str, Any]] = []
        self.delay = delay
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hook.bodies.append(json.loads(self.rfile.read(length)))
                if hook.delay:
                    threading.Event().wait(hook.delay)
                code = hook.codes.pop(0) if hook.codes else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook_factory() -> Iterator[Any]:
    made: list[_Hook] = []

    def make(codes: list[int], delay: float = 0.0) -> _Hook:
        h = _Hook(codes, delay)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def test_webhook_posts_json(hook_factory: Any) -> None:
    """The webhook POSTs the notification as JSON."""
    hook = hook_factory([200])
    WebhookNotifier(hook.url).send(_note())
    (body,) = hook.bodies
    assert body["kind"] == "firing"
    assert body["rule"] == "r"
    assert body["value"] == 2.0


def test_webhook_retries_server_errors_with_backoff(hook_factory: Any) -> None:
    """5xx answers are retried with exponential backoff until one succeeds."""
    hook = hook_factory([500, 503, 200])
    sleeps: list[float] = []
    WebhookNotifier(hook.url, retries=3, backoff=0.25, sleep=sleeps.append).send(_note())
    assert len(hook.bodies) == 3
    assert sleeps == [0.25, 0.5]


def test_webhook_does_not_retry_client_errors(hook_factory: Any) -> None:
    """A 4xx answer is final: one attempt, then WebhookError."""
    hook = hook_factory([404, 200])
    with pytest.raises(WebhookError):
        WebhookNotifier(hook.url, retries=3, sleep=lambda s: None).send(_note())
    assert len(hook.bodies) == 1


def test_webhook_timeout_is_retried_then_fails(hook_factory: Any) -> None:
    """A server slower than the timeout counts as a failed attempt."""
    hook = hook_factory([200, 200], delay=0.5)
    with pytest.raises(WebhookError):
        WebhookNotifier(
            hook.url, timeout=0.1, retries=1, sleep=lambda s: None, total_timeout=5
        ).send(_note())
    assert len(hook.bodies) == 2


def test_unreachable_webhook_in_evaluation_is_counted(hook_factory: Any) -> None:
    """An unreachable webhook never breaks evaluation; the failure is counted."""
    hook = hook_factory([])
    url = hook.url
    hook.close()
    got: list[Notification] = []
    sink = WebhookNotifier(url, retries=1, timeout=1.0, sleep=lambda s: None)
    (ev,) = evaluate(
        [AlertRule("r", "m.x", threshold=1)],
        lambda r, n: 5.0,
        now=0.0,
        sinks=[sink, got.append],
        enable_alerts=True,
    )
    assert ev.status is F
    assert len(got) == 1
    assert health.counts()["alerts.sink"] == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"url": "ftp://x"},
        {"url": "http://x", "timeout": 0},
        {"url": "http://x", "retries": -1},
        {"url": "http://x", "backoff": -1},
    ],
)
def test_webhook_arguments_checked(kwargs: dict[str, Any]) -> None:
    """Bad webhook settings raise at construction."""
    with pytest.raises(InvalidValueError):
        WebhookNotifier(**kwargs)


# --- rule definitions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": ""}, "AlertRule.name"),
        ({"metric": "9bad"}, "AlertRule.metric"),
        ({"stat": "p420"}, "AlertRule.stat"),
        ({"stat": "median"}, "AlertRule.stat"),
        ({"op": "=="}, "AlertRule.op"),
        ({"threshold": None}, "AlertRule.threshold"),
        ({"threshold": float("nan")}, "AlertRule.threshold"),
        ({"for_": -1}, "AlertRule.for_"),
        ({"keep_firing_for": "soon"}, "AlertRule.keep_firing_for"),
        ({"window": 0}, "AlertRule.window"),
        ({"recover_threshold": 1100}, "AlertRule.recover_threshold"),
        ({"op": "<", "recover_threshold": 900}, "AlertRule.recover_threshold"),
        ({"kind": "magic"}, "AlertRule.kind"),
        ({"no_data": "panic"}, "AlertRule.no_data"),
        ({"recent": 0}, "AlertRule.recent"),
        ({"tags": {"a": 1}}, "AlertRule.tags"),
    ],
)
def test_rule_validation(kwargs: dict[str, Any], field: str) -> None:
    """A bad rule raises at definition, naming the field."""
    base: dict[str, Any] = {"name": "r", "metric": "m.x", "threshold": 1000}
    with pytest.raises((InvalidValueError, InvalidTypeError)) as info:
        AlertRule(**{**base, **kwargs})
    assert info.value.field == field  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("250ms", 0.25),
        ("1.5m", 90.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    """Durations may be seconds or strings with a unit."""
    assert parse_duration(text) == seconds


def test_rules_from_config() -> None:
    """alert_thresholds become p95 rules, or another statistic after a colon."""
    rules = rules_from_config(
        MetricsConfig(alert_thresholds={"app.latency": 0.5, "app.size:max": 1e6})
    )
    assert [(r.metric, r.stat, r.op, r.threshold) for r in rules] == [
        ("app.latency", "p95", ">", 0.5),
        ("app.size", "max", ">", 1e6),
    ]


def test_rules_from_config_bad_stat() -> None:
    """An unknown statistic in alert_thresholds is a configuration error."""
    with pytest.raises(ConfigurationError):
        rules_from_config(MetricsConfig(alert_thresholds={"app.latency:p101": 1.0}))


def test_load_rules_from_toml(tmp_path: Path) -> None:
    """[[alerts]] tables become rules; durations with units; tags as a table."""
    path = tmp_path / "alerts.toml"
    path.write_text(
        '[[alerts]]\nname = "slow export"\nmetric = "recorder.export.duration"\n'
        'stat = "p99"\nthreshold = 0.5\nfor = "5m"\nkeep_firing_for = 600\n'
        'recover_threshold = 0.4\ntags = { app_version = "1.4.2" }\n\n'
        '[[alerts]]\nname = "latency shift"\nmetric = "app.latency"\nkind = "change"\n'
    )
    a, b = load_rules(path)
    assert (a.name, a.stat, a.for_, a.keep_firing_for, a.recover_threshold) == (
        "slow export",
        "p99",
        300.0,
        600.0,
        0.4,
    )
    assert a.series == "app_version=1.4.2"
    assert (b.kind, b.threshold) == ("change", 20.0)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('[[alerts]]\nname = "x"\nmetric = "m.x"\nthreshold = 1\ncolour = "red"\n', "colour"),
        ('[[alerts]]\nmetric = "m.x"\nthreshold = 1\n', "name"),
        ('[[alerts]]\nname = "x"\nmetric = "m.x"\nthreshold = 1\nop = "!"\n', "op"),
        (
            '[[alerts]]\nname = "x"\nmetric = "m.x"\nthreshold = 1\n[[alerts]]\nname = "x"\n'
            'metric = "m.y"\nthreshold = 2\n',
            "name",
        ),
        ("alerts = 3\n", "alerts"),
    ],
)
def test_load_rules_errors_name_the_key(tmp_path: Path, body: str, needle: str) -> None:
    """Errors in the TOML file name the file and the offending key."""
    path = tmp_path / "alerts.toml"
    path.write_text(body)
    with pytest.raises(ConfigurationError) as info:
        load_rules(path)
    assert needle in str(info.value)
    assert "alerts.toml" in str(info.value)


# --- deviation and change-point rules ---------------------------------------------------


def _history(n: int, level: float = 100.0) -> list[float]:
    return [level + (i % 7) - 3 for i in range(n)]


def test_deviation_rule_fires_on_a_spike() -> None:
    """A deviation rule fires when the last point deviates upward by more than 20 %."""
    rule = AlertRule("dev", "app.latency", kind="deviation")
    assert rule_value(rule, _history(60)) == 0.0
    spiked = rule_value(rule, [*_history(60), 200.0])
    assert spiked is not None
    assert spiked > 90
    assert drive(rule, [(0, _history(60)), (1, [*_history(60), 200.0])]) == [  # type: ignore[list-item]
        (INA, None),
        (F, "firing"),
    ]


def test_deviation_rule_downward() -> None:
    """With op '<' the deviation rule watches drops (threshold -20 %)."""
    rule = AlertRule("dev", "app.rate", kind="deviation", op="<")
    assert rule.threshold == -20.0
    value = rule_value(rule, [*_history(60), 10.0])
    assert value is not None
    assert rule.breaches(value)


def test_change_rule_fires_on_a_recent_step() -> None:
    """A change rule fires when a change point started within the last ``recent`` points."""
    rule = AlertRule("chg", "app.latency", kind="change", recent=20)
    old = rule_value(rule, [*_history(100), *_history(100, 150.0)])
    assert old == 0.0  # the step is 100 points old
    new = rule_value(rule, [*_history(100), *_history(12, 150.0)])
    assert new == pytest.approx(50.0, abs=5)
    assert rule.breaches(new)


def test_sequence_rule_rejects_a_number() -> None:
    """A deviation rule needs a sequence; a number is a type error."""
    with pytest.raises(InvalidTypeError):
        rule_value(AlertRule("dev", "m.x", kind="deviation"), 3.0)


def test_duplicate_rule_names_are_rejected() -> None:
    """Two rules with one name would share state: evaluate refuses them at once."""
    rules = [AlertRule("r", "m.x", threshold=1), AlertRule("r", "m.y", threshold=2)]
    with pytest.raises(InvalidValueError):
        evaluate(rules, lambda r, n: 1.0, now=0.0, sinks=[], enable_alerts=True)


@pytest.mark.parametrize(
    ("rules", "source", "sinks"),
    [
        (["not a rule"], lambda r, n: 1.0, []),
        ([], "not callable", []),
        ([], lambda r, n: 1.0, [42]),
    ],
)
def test_evaluate_arguments_checked(rules: Any, source: Any, sinks: Any) -> None:
    """Wrong argument types raise InvalidTypeError before anything is evaluated."""
    with pytest.raises(InvalidTypeError):
        evaluate(rules, source, now=0.0, sinks=sinks, enable_alerts=True)


def test_hanging_webhook_is_bounded_by_total_timeout(hook_factory: Any) -> None:
    """All attempts share total_timeout: a hanging endpoint gets one try, not six."""
    hook = hook_factory([200] * 6, delay=1.0)
    sleeps: list[float] = []
    sink = WebhookNotifier(hook.url, timeout=0.2, retries=5, backoff=0.1, sleep=sleeps.append)
    with pytest.raises(WebhookError):
        sink.send(_note())
    assert sink.total_timeout == 0.4
    assert len(hook.bodies) <= 2
    assert len(sleeps) <= 1


def test_webhook_refuses_redirects_to_other_schemes() -> None:
    """A redirect to ftp:// (or any non-http URL) is refused, not followed."""

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1/steal")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        with pytest.raises(WebhookError, match="non-http"):
            WebhookNotifier(url, retries=0).send(_note())
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"url": "http:///no-host"}, "url"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "http://example.com/a b"}, "url"),
        ({"url": "http://example.com", "headers": {"X-A": "v\r\nX-Evil: 1"}}, "headers"),
        ({"url": "http://example.com", "headers": {"X-A\n": "v"}}, "headers"),
        ({"url": "http://example.com", "timeout": 10**400}, "timeout"),
        ({"url": "http://example.com", "total_timeout": float("nan")}, "total_timeout"),
    ],
)
def test_webhook_construction_refuses_unsafe_arguments(kwargs: dict[str, Any], field: str) -> None:
    """No host, another scheme, CR/LF in headers, absurd timeouts: refused at construction."""
    url = kwargs.pop("url")
    with pytest.raises(InvalidValueError) as info:
        WebhookNotifier(url, **kwargs)
    assert info.value.field == field


def test_webhook_body_is_strict_json(hook_factory: Any) -> None:
    """A non-finite value is sent as null, so the body parses as strict JSON."""
    hook = hook_factory([200])
    note = Notification(
        kind="firing", rule="r", series="", metric="m.x", stat="avg", op=">",
        threshold=1.0, value=float("nan"), at=0.0, since=0.0,
    )  # fmt: skip
    WebhookNotifier(hook.url).send(note)
    (body,) = hook.bodies
    assert body["value"] is None


def test_value_source_key_whose_str_raises_is_counted_not_raised() -> None:
    """evaluate() survives a value source whose keys' str() raises; the good keys still count."""

    class BadKey:
        def __str__(self) -> str:
            raise RuntimeError("no str")

        def __hash__(self) -> int:
            return 1

    got: list[Notification] = []
    results = evaluate(
        [AlertRule("r", "m.x", threshold=1)],
        lambda r, n: {"good": 5.0, BadKey(): 7.0},
        now=0.0,
        sinks=[got.append],
        enable_alerts=True,
    )
    assert [e.series for e in results] == ["good"]
    assert health.counts()["alerts.value_source"] == 1
