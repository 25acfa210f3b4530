"""From stored intervals to the engines' series: names, base units, labels, bucket grid.

Everything here is shared by the pull (Prometheus exposition) and push (remote-write, OTLP)
exporters, so a metric has the same name, labels and buckets whichever way it leaves.

- Names follow Prometheus: characters outside ``[A-Za-z0-9_:]`` (dots included) become
  ``_``; a unit suffix is added (``_seconds``, ``_bytes``) and counters end in ``_total``.
- Base units: a metric recorded in milliseconds is exported in seconds (values / 1000),
  as Prometheus' naming guide asks; ``s`` and ``bytes`` pass unchanged.
- Labels: the series' tags that pass the allowlist, plus ``instance`` (a random,
  pseudonymous install id by default, never a host or user name) and ``job`` (the app name).
- Histograms and summaries become classic cumulative ``le`` buckets on ONE fixed grid, the
  sketch's own bucket boundaries ``gamma**i`` (every ``step``-th one) between ``low`` and
  ``high``. Every install uses the same grid, so the engine can sum buckets across installs
  and its ``histogram_quantile`` agrees with the merged sketch within the bucket width.
  Buckets below the first non-empty one are left out: their count is zero, so an install
  that omits them adds nothing to a sum by ``le`` either.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from sounding.core.exceptions import InvalidTypeError, InvalidValueError
from sounding.core.sketch import DEFAULT_RELATIVE_ACCURACY, QuantileSketch
from sounding.core.types import MetricType

__all__ = [
    "DEFAULT_TAGS",
    "BucketGrid",
    "LabelPolicy",
    "base_unit",
    "install_id",
    "metric_name",
]

#: Tags that pass the allowlist by default, besides the ones each metric declared.
DEFAULT_TAGS = ("app_version", "platform")
_NAME_BAD = re.compile(r"[^A-Za-z0-9_:]")
_LABEL_BAD = re.compile(r"[^A-Za-z0-9_]")
_INSTALL_ID_FILE = "install-id"
_UNITS: dict[str, tuple[str, float]] = {
    "ms": ("seconds", 1e-3),
    "milliseconds": ("seconds", 1e-3),
    "us": ("seconds", 1e-6),
    "s": ("seconds", 1.0),
    "seconds": ("seconds", 1.0),
    "bytes": ("bytes", 1.0),
    "B": ("bytes", 1.0),
    "kB": ("bytes", 1e3),
    "KB": ("bytes", 1e3),
    "MB": ("bytes", 1e6),
}


def base_unit(unit: str) -> tuple[str, float]:
    """``(suffix, factor)``: the Prometheus base unit for ``unit`` and the value factor.

    >>> base_unit("ms")
    ('seconds', 0.001)
    >>> base_unit("requests")
    ('', 1.0)
    """
    return _UNITS.get(unit.strip(), ("", 1.0))


def metric_name(name: str, metric_type: MetricType, unit: str) -> str:
    """The Prometheus name of a sounding metric (without ``_bucket``/``_sum``/``_count``).

    >>> metric_name("export.duration", MetricType.HISTOGRAM, "ms")
    'export_duration_seconds'
    >>> metric_name("recordings.started", MetricType.COUNTER, "")
    'recordings_started_total'
    """
    out = _NAME_BAD.sub("_", name)
    if out[:1].isdigit():
        out = "_" + out
    suffix, _ = base_unit(unit)
    if suffix and not out.endswith("_" + suffix):
        out += "_" + suffix
    if metric_type is MetricType.COUNTER and not out.endswith("_total"):
        out += "_total"
    return out


def label_name(key: str) -> str:
    """A tag key as a Prometheus label name."""
    out = _LABEL_BAD.sub("_", key)
    if not out or out[:1].isdigit():
        out = "_" + out
    if out.startswith("__"):
        out = "tag" + out
    return out


def install_id(data_dir: Path) -> str:
    """A random, pseudonymous id for this installation (``install-id`` in the data dir).

    Created on first use (16 random hex characters, mode 0600); the same on every run of
    this install, unrelated to the host or user name. A data dir that cannot hold it gets a
    per-process id.
    """
    path = data_dir / _INSTALL_ID_FILE
    try:
        value = path.read_text(encoding="ascii").strip()
        if re.fullmatch(r"[0-9a-f]{16}", value):
            return value
    except OSError:
        pass
    value = secrets.token_hex(8)
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{_INSTALL_ID_FILE}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(value + "\n")
        try:
            os.link(tmp, path)  # never replaces: the first process's id wins
        except FileExistsError:
            tmp.unlink()
            return install_id(data_dir)
        tmp.unlink()
    except OSError:
        pass
    return value


@dataclass(frozen=True)
class LabelPolicy:
    """Which labels a series carries when it leaves: allowlisted tags, instance and job."""

    #: ``None``: every tag the metric carries (its declared tags plus app version and
    #: platform); otherwise only these tag keys
    allow: frozenset[str] | None = None
    instance: str | None = None
    job: str | None = None

    def labels(self, tags: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        """The output labels (sorted, without ``__name__``) for a series' tags."""
        out: dict[str, str] = {}
        for k, v in tags:
            if self.allow is not None and k not in self.allow:
                continue
            name = label_name(k)
            if name in ("instance", "job", "le", "quantile"):
                name = "tag_" + name
            out[name] = v
        if self.job is not None:
            out["job"] = self.job
        if self.instance is not None:
            out["instance"] = self.instance
        return tuple(sorted(out.items()))


def check_allow(tags: Collection[str] | None) -> frozenset[str] | None:
    """Validate an allowlist argument (``None`` = the default)."""
    if tags is None:
        return None
    if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
        raise InvalidTypeError("tags", tags, "a collection of tag names (str) or None")
    return frozenset(tags)


class BucketGrid:
    """Fixed cumulative ``le`` boundaries derived from the sketch's bucket boundaries.

    Boundary ``k`` is ``gamma ** (i0 + k * step)`` in the metric's unit; the same arguments
    give the same boundaries on every install. With ``step=1`` a grid bucket is a sketch
    bucket (2 % wide at the default 1 % accuracy) and the engine's linear interpolation
    stays within about 1 % of the sketch; ``step=2`` halves the buckets for about 2 %.

    >>> g = BucketGrid(low=1.0, high=1000.0, step=2)
    >>> round(g.bounds[0], 3) <= 1.0 < round(g.bounds[1], 3)
    True
    """

    def __init__(
        self,
        low: float = 0.01,
        high: float = 60_000.0,
        step: int = 1,
        relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY,
    ) -> None:
        if not (isinstance(low, (int, float)) and math.isfinite(low) and low > 0):
            raise InvalidValueError("bucket_range", (low, high), "0 < low < high, both finite")
        if not (isinstance(high, (int, float)) and math.isfinite(high) and high > low):
            raise InvalidValueError("bucket_range", (low, high), "0 < low < high, both finite")
        if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= 16:
            raise InvalidValueError("bucket_step", step, "an integer from 1 to 16")
        self.step = step
        self.gamma = (1.0 + relative_accuracy) / (1.0 - relative_accuracy)
        self._lg = math.log(self.gamma)
        i0 = math.floor(math.log(low) / self._lg)
        i1 = math.ceil(math.log(high) / self._lg)
        self.indices = list(range(i0, i1 + 1, step))
        self.bounds = [self.gamma**i for i in self.indices]

    def __len__(self) -> int:
        return len(self.bounds)

    def le_labels(self, factor: float) -> list[str]:
        """The ``le`` label values in the base unit (``factor`` applied), plus ``+Inf``."""
        return [_fmt(b * factor) for b in self.bounds] + ["+Inf"]

    def vmranges(self, factor: float) -> list[str]:
        """VictoriaMetrics ``vmrange`` labels of each slot (base unit, ``factor`` applied):
        slot 0 is everything up to the first boundary, the last one above the grid."""
        edges = [f"{b * factor:.3e}" for b in self.bounds]
        return (
            [f"0...{edges[0]}"]
            + [f"{a}...{b}" for a, b in itertools.pairwise(edges)]
            + [f"{edges[-1]}...+Inf"]
        )

    def slots(self, sketch: QuantileSketch) -> list[int]:
        """Counts per slot: slot ``k`` holds values in ``(bounds[k-1], bounds[k]]`` (slot 0
        also zero and negative values, the last slot values above the grid)."""
        slots = [0] * (len(self.indices) + 1)
        for k, c in self.held(sketch).items():
            slots[k] += c
        return slots

    def cumulative(self, sketch: QuantileSketch) -> tuple[int, list[int]]:
        """``(first, counts)``: cumulative counts at each boundary from index ``first`` on
        (earlier boundaries hold zero), the last entry being ``+Inf`` (the total).

        ``first`` is the empty boundary just below the first bucket that holds values (or 0):
        ``histogram_quantile`` takes a bucket's lower bound from the boundary below it, and
        reads 0 for the lowest one it is given."""
        slots = self.slots(sketch)
        n = len(self.indices)
        first = 0
        while first < n and slots[first] == 0:
            first += 1
        if first > 0:
            first -= 1
        out = []
        run = sum(slots[:first])
        for c in slots[first:]:
            run += c
            out.append(run)
        return first, out

    def held(self, sketch: QuantileSketch) -> dict[int, int]:
        """The slots that hold values and their counts (see :meth:`slots`), computed from
        the sketch's buckets alone (no pass over the empty slots)."""
        out: dict[int, int] = {}
        low = sketch.zero_count + sum(sketch.negative.values())
        if low:
            out[0] = low
        i0, step, n = self.indices[0], self.step, len(self.indices)
        same = abs(sketch.gamma - self.gamma) < 1e-12
        for j, c in sketch.positive.items():
            idx = j if same else math.ceil(math.log(sketch.gamma**j) / self._lg)
            # The first grid index >= idx: indices are i0 + k * step.
            pos = -((i0 - idx) // step)
            pos = 0 if pos < 0 else n if pos > n else pos
            out[pos] = out.get(pos, 0) + c
        return out


def _fmt(v: float) -> str:
    s = f"{v:.6g}"
    return s


def _read_sketch(blob: bytes | None) -> QuantileSketch | None:
    if blob is None:
        return None
    return QuantileSketch.from_bytes(blob)


def merged(a: bytes | None, b: bytes | None) -> QuantileSketch | None:
    """The merge of two sketch blobs (either may be ``None``)."""
    sa, sb = _read_sketch(a), _read_sketch(b)
    if sa is None:
        return sb
    if sb is not None:
        sa.merge(sb)
    return sa


def labels_key(name: str, labels: tuple[tuple[str, str], ...]) -> str:
    """A stable string key for one output series (the running-totals table's key)."""
    return name + "{" + ",".join(f"{k}={v}" for k, v in labels) + "}"


def as_mapping(labels: tuple[tuple[str, str], ...]) -> Mapping[str, str]:
    """The labels as a dict."""
    return dict(labels)
