"""Alert evaluation: a pure state machine per (rule, series), persisted state, sinks.

Each evaluation of a rule for a series moves its state::

    inactive --breach--> pending --breach held for_--> firing --recovered--> recovering
       ^                   |  (for_ = 0: straight to firing)      ^  (keep_firing_for = 0:
       |                   +--no breach--> inactive                |   straight to resolved)
       +---- next evaluation without breach ---- resolved <--recovered held keep_firing_for
                                                                   |
                                  recovering --not recovered--> firing (no new notification)

A notification is sent when a rule starts firing and when it resolves, never while it stays
firing. With ``recover_threshold`` (hysteresis) a firing rule only counts as recovered on
the good side of that level, so a value wobbling around the threshold (980, 1010, 990, 1020
against 1000, recovering at 950) notifies once. A missing value (``None``) follows the
rule's ``no_data`` policy: ``keep`` the state as it is, treat it as ``ok`` or as ``alert``.

:func:`evaluate` reads values through a callable ``value_source(rule, now)``, so it runs
without a store in tests; the thin store wrappers provide one that queries the store.

>>> from sounding.analysis import AlertRule, CallbackNotifier, MemoryAlertStateStore, evaluate
>>> rule = AlertRule("slow", "app.latency", threshold=1000, recover_threshold=950)
>>> got = []
>>> store = MemoryAlertStateStore()
>>> for t, v in enumerate([980, 1010, 990, 1020, 900]):
...     _ = evaluate([rule], lambda r, now: v, now=float(t), state_store=store,
...                  sinks=[CallbackNotifier(got.append)], enable_alerts=True)
>>> [(n.kind, n.value) for n in got]
[('firing', 1010.0), ('resolved', 900.0)]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sounding.analysis._robust import median
from sounding.analysis.alert_state import (
    AlertState,
    AlertStateStore,
    AlertStatus,
    MemoryAlertStateStore,
)
from sounding.analysis.changepoints import detect_change_points
from sounding.analysis.deviations import detect_deviations
from sounding.analysis.notify import CallbackNotifier, LogNotifier, Notification, NotificationSink
from sounding.analysis.rules import AlertRule
from sounding.core import health
from sounding.core.exceptions import InvalidTypeError, InvalidValueError

__all__ = ["Evaluation", "ValueSource", "evaluate", "rule_value", "step"]

#: The percent change reported for a change away from a baseline of exactly 0 (finite, so
#: it survives JSON; any threshold below it fires).
_NO_BASELINE_PERCENT = 1e6

#: ``value_source(rule, now)`` returns the value for the rule's own series (a number, or a
#: sequence of recent values for ``deviation``/``change`` rules, or ``None`` for no data),
#: or a mapping of series key to such values for a rule that covers several series.
ValueSource = Callable[[AlertRule, float], Any]


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation did for one (rule, series)."""

    rule: AlertRule
    series: str
    previous: AlertStatus
    status: AlertStatus
    value: float | None
    no_data: bool
    notification: Notification | None
    sent: bool

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {
            "rule": self.rule.name,
            "series": self.series,
            "metric": self.rule.metric,
            "previous": self.previous.value,
            "status": self.status.value,
            "value": self.value,
            "no_data": self.no_data,
            "notification": None if self.notification is None else self.notification.kind,
            "sent": self.sent,
        }


def _number(raw: object) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise InvalidTypeError("value", raw, "a number or None")
    f = float(raw)
    return f if math.isfinite(f) else None


def rule_value(rule: AlertRule, raw: object) -> float | None:
    """The value a rule compares with its threshold, from what the value source returned.

    ``threshold`` rules take a number; ``deviation`` and ``change`` rules a sequence of
    recent values (see :mod:`sounding.analysis.rules`). ``None`` (or an empty sequence)
    means no data.
    """
    if rule.kind == "threshold":
        return _number(raw)
    if raw is None:
        return None
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
        raise InvalidTypeError("value", raw, f"a sequence of numbers for a {rule.kind!r} rule")
    values = [_number(v) for v in raw]
    present = [i for i, v in enumerate(values) if v is not None]
    if not present:
        return None
    if rule.kind == "deviation":
        # One alert per episode: the rule fires while the latest episode is open at the
        # newest point, with the relative change at its start.
        found = detect_deviations(values)
        if found and found[-1].end == present[-1]:
            rel = found[-1].relative_change
            if rel is None:
                return math.copysign(_NO_BASELINE_PERCENT, found[-1].value)
            return rel * 100.0
        return 0.0
    cps = [c.index for c in detect_change_points(values)]
    if not cps or cps[-1] < len(values) - rule.recent:
        return 0.0
    start = cps[-2] if len(cps) > 1 else 0
    before = [v for v in values[start : cps[-1]] if v is not None]
    after = [v for v in values[cps[-1] :] if v is not None]
    old, new = median(before), median(after)
    if old == 0:
        return 0.0 if new == 0 else math.copysign(_NO_BASELINE_PERCENT, new)
    return (new - old) / abs(old) * 100.0


def _notification(
    kind: str, rule: AlertRule, state: AlertState, value: float | None, now: float
) -> Notification:
    assert rule.threshold is not None
    return Notification(
        kind="firing" if kind == "firing" else "resolved",
        rule=rule.name,
        series=state.series,
        metric=rule.metric,
        stat=rule.stat,
        op=rule.op,
        threshold=rule.threshold,
        value=value,
        at=now,
        since=state.active_since if state.active_since is not None else now,
        tags=dict(rule.tags or {}),
        description=rule.description,
    )


def step(
    rule: AlertRule,
    state: AlertState | None,
    value: float | None,
    now: float,
    series: str | None = None,
) -> tuple[AlertState, Notification | None]:
    """One transition of the state machine (pure: no I/O). Returns the new state and the
    notification to send, if any. ``state`` ``None`` means never evaluated (inactive)."""
    key = rule.series if series is None else series
    if state is None:
        state = AlertState(rule=rule.name, series=key, status=AlertStatus.INACTIVE, since=now)
    status = state.status
    if value is None:
        if rule.no_data == "keep":
            return replace(state, value=None, evaluated_at=now), None
        breach, recovered = (True, False) if rule.no_data == "alert" else (False, True)
    else:
        breach, recovered = rule.breaches(value), rule.recovered(value)
    S = AlertStatus

    def move(new: AlertStatus, active_since: float | None) -> AlertState:
        return replace(
            state,
            status=new,
            since=now if new is not status else state.since,
            active_since=active_since,
            value=value,
            evaluated_at=now,
        )

    if status in (S.INACTIVE, S.RESOLVED):
        if breach:
            if rule.for_ <= 0:
                new = move(S.FIRING, now)
                return new, _notification("firing", rule, new, value, now)
            return move(S.PENDING, now), None
        return move(S.INACTIVE, None), None
    if status is S.PENDING:
        if not breach:
            return move(S.INACTIVE, None), None
        started = state.active_since if state.active_since is not None else state.since
        if now - started >= rule.for_:
            new = move(S.FIRING, started)
            return new, _notification("firing", rule, new, value, now)
        return move(S.PENDING, started), None
    if status is S.FIRING:
        if recovered:
            if rule.keep_firing_for <= 0:
                new = move(S.RESOLVED, state.active_since)
                return new, _notification("resolved", rule, new, value, now)
            return move(S.RECOVERING, state.active_since), None
        return move(S.FIRING, state.active_since), None
    # Recovering: back to firing (silently) unless still recovered long enough.
    if not recovered:
        return move(S.FIRING, state.active_since), None
    if now - state.since >= rule.keep_firing_for:
        new = move(S.RESOLVED, state.active_since)
        return new, _notification("resolved", rule, new, value, now)
    return move(S.RECOVERING, state.active_since), None


def _sinks(
    sinks: Iterable[NotificationSink | Callable[[Notification], object]] | None,
) -> list[NotificationSink]:
    if sinks is None:
        return [LogNotifier()]
    out: list[NotificationSink] = []
    for s in sinks:
        if isinstance(s, NotificationSink):
            out.append(s)
        elif callable(s):
            out.append(CallbackNotifier(s))
        else:
            raise InvalidTypeError("sinks", s, "objects with send(notification) or callables")
    return out


def evaluate(
    rules: Iterable[AlertRule],
    value_source: ValueSource,
    now: float | None = None,
    state_store: AlertStateStore | None = None,
    sinks: Iterable[NotificationSink | Callable[[Notification], object]] | None = None,
    enable_alerts: bool | None = None,
) -> list[Evaluation]:
    """Evaluate every rule once at ``now`` and send the resulting notifications.

    ``now`` defaults to the clock's time; ``state_store`` to a fresh memory store;
    ``sinks`` to a :class:`LogNotifier`; ``enable_alerts`` to
    ``MetricsConfig.enable_alerts`` of the current settings. With ``enable_alerts=False``
    states are evaluated and persisted but nothing is sent. Run-time failures (a raising
    value source, state store or sink) are counted through ``sounding.core.health`` and never
    stop the evaluation of the other rules and sinks.
    """
    rules = list(rules)
    names: set[str] = set()
    for r in rules:
        if not isinstance(r, AlertRule):
            raise InvalidTypeError("rules", r, "AlertRule objects")
        if r.name in names:
            # State is kept per rule name: two rules with one name would share it.
            raise InvalidValueError("rules", r.name, "rules with distinct names")
        names.add(r.name)
    if not callable(value_source):
        raise InvalidTypeError("value_source", value_source, "a callable (rule, now) -> value")
    targets = _sinks(sinks)
    if now is None:
        from sounding.core.clock import get_clock

        now = get_clock().time()
    if enable_alerts is None:
        from sounding.core.config import get_settings

        enable_alerts = get_settings().metrics.enable_alerts
    store: AlertStateStore = MemoryAlertStateStore() if state_store is None else state_store
    results: list[Evaluation] = []
    for rule in rules:
        try:
            raw = value_source(rule, now)
        except Exception as exc:
            health.failure("alerts.value_source", exc)
            raw = None
        if isinstance(raw, Mapping):
            per_series: dict[str, object] = {}
            try:
                for k, v in raw.items():
                    per_series[k if type(k) is str else str(k)] = v
            except Exception as exc:  # a key whose str() raises, a mapping that fails
                health.failure("alerts.value_source", exc)
            try:
                known = [s.series for s in store.states(rule.name)]
            except Exception as exc:
                health.failure("alerts.state", exc)
                known = []
            for s in known:
                per_series.setdefault(s, None)
        else:
            per_series = {rule.series: raw}
        for series in sorted(per_series):
            results.append(
                _evaluate_one(rule, series, per_series[series], now, store, targets, enable_alerts)
            )
    return results


def _evaluate_one(
    rule: AlertRule,
    series: str,
    raw: object,
    now: float,
    store: AlertStateStore,
    sinks: list[NotificationSink],
    enable_alerts: bool,
) -> Evaluation:
    try:
        value = rule_value(rule, raw)
    except Exception as exc:
        health.failure("alerts.value", exc)
        value = None
    try:
        previous = store.load(rule.name, series)
    except Exception as exc:
        health.failure("alerts.state", exc)
        previous = None
    state, note = step(rule, previous, value, now, series)
    try:
        store.save(state)
    except Exception as exc:
        health.failure("alerts.state", exc)
    sent = False
    if note is not None and enable_alerts:
        for sink in sinks:
            try:
                sink.send(note)
                sent = True
            except Exception as exc:
                health.failure("alerts.sink", exc)
    return Evaluation(
        rule=rule,
        series=series,
        previous=AlertStatus.INACTIVE if previous is None else previous.status,
        status=state.status,
        value=value,
        no_data=value is None,
        notification=note,
        sent=sent,
    )
