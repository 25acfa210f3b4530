"""Analysis (L3): baselines, deviation and change-point detection, release comparison and
alert rules. Pure functions over plain sequences and sketches; thin wrappers read the store.

See ``docs/analysis.md`` for the algorithms and the alert state machine.
"""

from __future__ import annotations

from sounding.analysis.baseline import (
    BASELINE_STATS,
    Baseline,
    Comparison,
    StatChange,
    baseline_from_sketches,
    compare,
)
from sounding.analysis.changepoints import (
    CHANGE_POINT_METHODS,
    DEFAULT_CHANGE_POINT_METHOD,
    detect_change_points,
)
from sounding.analysis.deviations import Deviation, detect_deviations
from sounding.analysis.releases import (
    MannWhitneyResult,
    ReleaseComparison,
    cliffs_delta,
    compare_releases,
    mann_whitney_u,
)

__all__ = [
    "BASELINE_STATS",
    "CHANGE_POINT_METHODS",
    "DEFAULT_CHANGE_POINT_METHOD",
    "Baseline",
    "Comparison",
    "Deviation",
    "MannWhitneyResult",
    "ReleaseComparison",
    "StatChange",
    "baseline_from_sketches",
    "cliffs_delta",
    "compare",
    "compare_releases",
    "detect_change_points",
    "detect_deviations",
    "mann_whitney_u",
]
