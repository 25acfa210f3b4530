"""A mergeable quantile sketch with bounded relative error (DDSketch-style).

Values are counted in logarithmic buckets: bucket ``i`` holds values in
``(gamma**(i-1), gamma**i]`` with ``gamma = (1 + a) / (1 - a)``, so every quantile is
returned within relative error ``a`` (1 % by default) of a value of the right rank. Negative
values use a mirrored store; values too close to zero to matter are counted as zero. Merging
two sketches adds their bucket counts, so percentiles over any range are exact up to ``a``
whatever the resolution the intervals were stored at (see Masson, Rim & Lee, "DDSketch",
VLDB 2019).

>>> s = QuantileSketch()
>>> for v in range(1, 1001):
...     s.add(float(v))
>>> abs(s.quantile(0.5) - 500) / 500 <= 0.01
True
"""

from __future__ import annotations

import math
import struct
import zlib
from array import array
from collections import Counter
from collections.abc import Iterable
from itertools import accumulate

__all__ = ["DEFAULT_RELATIVE_ACCURACY", "QuantileSketch"]

DEFAULT_RELATIVE_ACCURACY = 0.01
#: Values with magnitude below this count as zero (1 ns when the unit is seconds).
MIN_INDEXABLE = 1e-9
#: At most this many buckets per sign; beyond it the lowest buckets are collapsed, which
#: affects only the smallest quantiles (as in DDSketch's collapsing lowest dense store).
MAX_BUCKETS = 4096

_HEADER = struct.Struct("<Bd")  # format version, relative accuracy
_STATS = struct.Struct("<qdddq")  # count, sum, min, max, zero count
_SIZES = struct.Struct("<IIB")  # positive buckets, negative buckets, 64-bit counts flag


def _deltas(keys: list[int]) -> list[int]:
    return [b - a for a, b in zip([0, *keys], keys, strict=False)]


def _encode_varint(n: int, out: bytearray) -> None:
    # ZigZag so negative bucket indices stay short.
    n = (n << 1) ^ (n >> 63)
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return


def _decode_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = 0
    n = 0
    while True:
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
    return (n >> 1) ^ -(n & 1), pos


class QuantileSketch:
    """Log-bucket quantile sketch with count, sum, min and max.

    ``add`` is O(1); ``merge`` is O(buckets); memory is O(log(max/min) / relative_accuracy),
    bounded by :data:`MAX_BUCKETS` per sign.
    """

    __slots__ = (
        "_inv_log_gamma",
        "_log_gamma",
        "count",
        "gamma",
        "max",
        "min",
        "negative",
        "positive",
        "relative_accuracy",
        "sum",
        "zero_count",
    )

    def __init__(self, relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY) -> None:
        if not 0.0 < relative_accuracy < 1.0:
            raise ValueError(
                f"relative_accuracy={relative_accuracy!r} is not allowed: "
                "a number strictly between 0 and 1"
            )
        self.relative_accuracy = relative_accuracy
        self.gamma = (1.0 + relative_accuracy) / (1.0 - relative_accuracy)
        self._log_gamma = math.log(self.gamma)
        self._inv_log_gamma = 1.0 / self._log_gamma
        self.positive: Counter[int] = Counter()
        self.negative: Counter[int] = Counter()
        self.zero_count = 0
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    # -- adding -------------------------------------------------------------------------
    def add(self, value: float, weight: int = 1) -> None:
        """Count ``value`` ``weight`` times. NaN and infinities are the caller's to reject."""
        if value > MIN_INDEXABLE:
            self.positive[math.ceil(math.log(value) * self._inv_log_gamma)] += weight
        elif value < -MIN_INDEXABLE:
            self.negative[math.ceil(math.log(-value) * self._inv_log_gamma)] += weight
        else:
            self.zero_count += weight
        self.count += weight
        self.sum += value * weight
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def add_many(self, values: Iterable[float]) -> None:
        """Count every value in ``values`` (finite numbers); faster than repeated :meth:`add`."""
        vals = list(values)
        if not vals:
            return
        try:
            total = math.fsum(vals)
        except OverflowError:  # finite values whose sum is not: the sum is infinite
            total = sum(vals, 0.0)
        k = self._inv_log_gamma
        log = math.log
        ceil = math.ceil
        lo = MIN_INDEXABLE
        pos = [v for v in vals if v > lo]
        if len(pos) == len(vals):
            self.positive.update([ceil(log(v) * k) for v in pos])
        else:
            self.positive.update([ceil(log(v) * k) for v in pos])
            neg = [v for v in vals if v < -lo]
            self.negative.update([ceil(log(-v) * k) for v in neg])
            self.zero_count += len(vals) - len(pos) - len(neg)
        self.count += len(vals)
        self.sum += total
        mn = min(vals)
        mx = max(vals)
        if mn < self.min:
            self.min = mn
        if mx > self.max:
            self.max = mx
        self._collapse()

    def merge(self, other: QuantileSketch) -> None:
        """Add ``other``'s counts to this sketch (both must have the same accuracy)."""
        if not math.isclose(other.relative_accuracy, self.relative_accuracy):
            raise ValueError(
                f"cannot merge sketches of relative accuracy {other.relative_accuracy} "
                f"into {self.relative_accuracy}: accuracies must match"
            )
        if other.count == 0:
            return
        self.positive.update(other.positive)
        self.negative.update(other.negative)
        self.zero_count += other.zero_count
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self._collapse()

    def copy(self) -> QuantileSketch:
        """An independent copy."""
        new = QuantileSketch(self.relative_accuracy)
        new.merge(self)
        return new

    def _collapse(self) -> None:
        for store in (self.positive, self.negative):
            if len(store) > MAX_BUCKETS:
                keys = sorted(store)
                # Positive: collapse the smallest magnitudes. Negative store is indexed by
                # magnitude too, and its smallest magnitudes are the values nearest zero.
                excess = keys[: len(keys) - MAX_BUCKETS + 1]
                target = excess[-1]
                total = sum(store.pop(k) for k in excess)
                store[target] += total

    # -- reading ------------------------------------------------------------------------
    def _value(self, index: int) -> float:
        # The point of bucket ``index`` that is within relative_accuracy of both its ends.
        return 2.0 * math.exp(index * self._log_gamma) / (self.gamma + 1.0)

    def quantile(self, q: float) -> float | None:
        """The ``q``-quantile (0 <= q <= 1), or ``None`` for an empty sketch.

        ``q=0`` and ``q=1`` return the exact minimum and maximum; every answer lies within
        ``[min, max]``, and with one or two observations it is one of them, exactly.
        """
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"q={q!r} is not allowed: a number between 0 and 1")
        if self.count == 0:
            return None
        if q == 0.0:
            return self.min
        if q == 1.0:
            return self.max
        if self.count <= 2:
            # min and max are the observations themselves: exact (nearest rank).
            return self.min if self.count == 1 or q <= 0.5 else self.max
        rank = q * (self.count - 1)
        seen = 0
        value = self.max
        for idx in sorted(self.negative, reverse=True):
            seen += self.negative[idx]
            if seen > rank:
                value = -self._value(idx)
                break
        else:
            seen += self.zero_count
            if seen > rank:
                value = 0.0
            else:
                for idx in sorted(self.positive):
                    seen += self.positive[idx]
                    if seen > rank:
                        value = self._value(idx)
                        break
        # A bucket's midpoint may lie outside what was observed: never report that.
        return min(max(value, self.min), self.max)

    def quantiles(self, qs: Iterable[float]) -> list[float | None]:
        """Several quantiles at once."""
        return [self.quantile(q) for q in qs]

    @property
    def mean(self) -> float | None:
        """Arithmetic mean, or ``None`` when empty."""
        return self.sum / self.count if self.count else None

    @property
    def bucket_count(self) -> int:
        """Number of non-empty buckets (a measure of memory use)."""
        return len(self.positive) + len(self.negative) + (1 if self.zero_count else 0)

    # -- serialisation ------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """A compact binary form: delta-encoded bucket indices and counts, zlib-compressed.

        Encoding and decoding run in C (``array``, ``itertools.accumulate``, ``zlib``), so a
        sketch of a few hundred buckets round-trips in tens of microseconds.
        """
        pos_keys = sorted(k for k, c in self.positive.items() if c)
        neg_keys = sorted(k for k, c in self.negative.items() if c)
        counts = [self.positive[k] for k in pos_keys] + [self.negative[k] for k in neg_keys]
        wide = bool(counts) and max(counts) > 0xFFFFFFFF
        body = array("i", _deltas(pos_keys))
        body.extend(_deltas(neg_keys))
        payload = body.tobytes() + array("Q" if wide else "I", counts).tobytes()
        out = bytearray(_HEADER.pack(2, self.relative_accuracy))
        out += _STATS.pack(
            self.count,
            self.sum,
            self.min if self.count else 0.0,
            self.max if self.count else 0.0,
            self.zero_count,
        )
        out += _SIZES.pack(len(pos_keys), len(neg_keys), 1 if wide else 0)
        out += zlib.compress(payload, 1)
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> QuantileSketch:
        """Inverse of :meth:`to_bytes` (also reads format 1). Raises ``ValueError`` on
        malformed input."""
        try:
            version, accuracy = _HEADER.unpack_from(data, 0)
            if version not in (1, 2):
                raise ValueError(f"unknown sketch format version {version}")
            sk = cls(accuracy)
            pos = _HEADER.size
            count, total, mn, mx, zero = _STATS.unpack_from(data, pos)
            pos += _STATS.size
            if version == 1:
                for store in (sk.positive, sk.negative):
                    n, pos = _decode_varint(data, pos)
                    prev = 0
                    for _ in range(n):
                        delta, pos = _decode_varint(data, pos)
                        c, pos = _decode_varint(data, pos)
                        prev += delta
                        store[prev] = c
            else:
                n_pos, n_neg, wide = _SIZES.unpack_from(data, pos)
                payload = zlib.decompress(data[pos + _SIZES.size :])
                keys = array("i")
                keys.frombytes(payload[: 4 * (n_pos + n_neg)])
                counts = array("Q" if wide else "I")
                counts.frombytes(payload[4 * (n_pos + n_neg) :])
                if len(keys) != n_pos + n_neg or len(counts) != n_pos + n_neg:
                    raise ValueError("bucket arrays do not match their sizes")
                sk.positive.update(dict(zip(accumulate(keys[:n_pos]), counts[:n_pos], strict=True)))
                sk.negative.update(dict(zip(accumulate(keys[n_pos:]), counts[n_pos:], strict=True)))
        except (struct.error, IndexError, zlib.error) as exc:
            raise ValueError(f"malformed sketch bytes: {exc}") from exc
        sk.count = count
        sk.sum = total
        sk.zero_count = zero
        if count:
            sk.min = mn
            sk.max = mx
        return sk

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantileSketch):
            return NotImplemented
        return (
            self.relative_accuracy == other.relative_accuracy
            and self.count == other.count
            and +self.positive == +other.positive
            and +self.negative == +other.negative
            and self.zero_count == other.zero_count
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"QuantileSketch(count={self.count}, min={self.min if self.count else None}, "
            f"max={self.max if self.count else None}, buckets={self.bucket_count})"
        )
