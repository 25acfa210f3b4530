"""Analysis (L3): baselines, deviation and change-point detection, release comparison and
alert rules. Pure functions over plain sequences and sketches; thin wrappers read the store.

See ``docs/analysis.md`` for the algorithms and the alert state machine.
"""

from __future__ import annotations

from sounding.analysis.alert_state import (
    AlertState,
    AlertStateStore,
    AlertStatus,
    MemoryAlertStateStore,
    SQLiteAlertStateStore,
)
from sounding.analysis.alerts import Evaluation, ValueSource, evaluate, rule_value, step
from sounding.analysis.baselines import (
    BASELINE_STATS,
    Baseline,
    Comparison,
    StatChange,
    baseline_from_distribution,
    baseline_from_sketches,
    compare,
)
from sounding.analysis.changepoints import (
    CHANGE_POINT_METHODS,
    DEFAULT_CHANGE_POINT_METHOD,
    QUADRATIC_LIMIT,
    ChangePoint,
    detect_change_points,
)
from sounding.analysis.deviations import Deviation, Episode, detect_deviations
from sounding.analysis.history import (
    HISTORY_POINTS,
    baseline,
    changes,
    metric_history,
    store_stat,
    store_value_source,
)
from sounding.analysis.notify import (
    CallbackNotifier,
    LogNotifier,
    Notification,
    NotificationSink,
    WebhookError,
    WebhookNotifier,
)
from sounding.analysis.releases import (
    MannWhitneyResult,
    ReleaseComparison,
    cliffs_delta,
    compare_releases,
    mann_whitney_u,
)
from sounding.analysis.rules import (
    ALERT_KINDS,
    ALERT_OPS,
    ALERT_STATS,
    NO_DATA_POLICIES,
    AlertRule,
    load_rules,
    parse_duration,
    rules_from_config,
)

__all__ = [
    "ALERT_KINDS",
    "ALERT_OPS",
    "ALERT_STATS",
    "BASELINE_STATS",
    "CHANGE_POINT_METHODS",
    "DEFAULT_CHANGE_POINT_METHOD",
    "HISTORY_POINTS",
    "NO_DATA_POLICIES",
    "QUADRATIC_LIMIT",
    "AlertRule",
    "AlertState",
    "AlertStateStore",
    "AlertStatus",
    "Baseline",
    "CallbackNotifier",
    "ChangePoint",
    "Comparison",
    "Deviation",
    "Episode",
    "Evaluation",
    "LogNotifier",
    "MannWhitneyResult",
    "MemoryAlertStateStore",
    "Notification",
    "NotificationSink",
    "ReleaseComparison",
    "SQLiteAlertStateStore",
    "StatChange",
    "ValueSource",
    "WebhookError",
    "WebhookNotifier",
    "baseline",
    "baseline_from_distribution",
    "baseline_from_sketches",
    "changes",
    "cliffs_delta",
    "compare",
    "compare_releases",
    "detect_change_points",
    "detect_deviations",
    "evaluate",
    "load_rules",
    "mann_whitney_u",
    "metric_history",
    "parse_duration",
    "rule_value",
    "rules_from_config",
    "step",
    "store_stat",
    "store_value_source",
]
