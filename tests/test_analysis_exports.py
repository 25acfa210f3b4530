"""The public names of ``sounding.analysis``."""

from __future__ import annotations

import inspect

import sounding.analysis as analysis


def test_all_names_exist_and_are_documented() -> None:
    """Every exported name exists; every exported class and function has a docstring."""
    for name in analysis.__all__:
        obj = getattr(analysis, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), name


def test_exports_are_exactly_the_public_api() -> None:
    """The package exports exactly these names (a change here is an API change)."""
    assert set(analysis.__all__) == {
        "ALERT_KINDS", "ALERT_OPS", "ALERT_STATS", "BASELINE_STATS", "CHANGE_POINT_METHODS",
        "DEFAULT_CHANGE_POINT_METHOD", "HISTORY_POINTS", "NO_DATA_POLICIES",
        "QUADRATIC_LIMIT", "AlertRule",
        "AlertState", "AlertStateStore", "AlertStatus", "Baseline", "CallbackNotifier",
        "ChangePoint", "Comparison", "Deviation",
        "Episode", "Evaluation", "LogNotifier",
        "MannWhitneyResult", "MemoryAlertStateStore", "Notification", "NotificationSink",
        "ReleaseComparison", "SQLiteAlertStateStore", "StatChange", "ValueSource",
        "WebhookError", "WebhookNotifier", "baseline", "baseline_from_distribution",
        "baseline_from_sketches", "changes", "cliffs_delta", "compare", "compare_releases",
        "detect_change_points", "detect_deviations", "evaluate", "load_rules",
        "mann_whitney_u", "metric_history", "parse_duration", "rule_value",
        "rules_from_config", "step", "store_stat", "store_value_source",
    }  # fmt: skip
    assert len(analysis.__all__) == len(set(analysis.__all__))


def test_import_stays_light() -> None:
    """Importing the analysis package does not pull in the store, click or rich."""
    import subprocess
    import sys
    from pathlib import Path

    import sounding

    src = str(Path(sounding.__file__).parents[1])
    code = (
        "import sys, sounding.analysis; "
        "print(sorted(m for m in ('sounding.storage', 'click', 'rich') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": src, "PATH": ""},
    ).stdout.strip()
    assert out == "[]"
