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
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping
from itertools import accumulate, repeat
from operator import add, mul, sub

__all__ = ["DEFAULT_RELATIVE_ACCURACY", "QuantileSketch"]

DEFAULT_RELATIVE_ACCURACY = 0.01
#: Values with magnitude below this count as zero (1 ns when the unit is seconds).
MIN_INDEXABLE = 1e-9
#: At most this many buckets per sign; beyond it the lowest buckets are collapsed, which
#: affects only the smallest quantiles (as in DDSketch's collapsing lowest dense store).
MAX_BUCKETS = 4096

_HEADER = struct.Struct("<Bd")  # format version, relative accuracy
_STATS = struct.Struct("<qdddq")  # count, sum, min, max, zero count
_SIZES = struct.Struct("<IIB")  # format 2: positive buckets, negative buckets, 64-bit counts
#: format 3: positive and negative buckets, their first indices, the gap and count typecodes,
#: whether the arrays are zlib-compressed (only from _COMPRESS_FROM bytes)
_SIZES3 = struct.Struct("<IIiiccB")
_COMPRESS_FROM = 64
_CODES = (("B", 0xFF), ("H", 0xFFFF), ("I", 0xFFFFFFFF), ("Q", 0xFFFFFFFFFFFFFFFF))


def _narrowest(largest: int) -> str:
    """The ``array`` typecode of the narrowest unsigned type that holds ``largest``."""
    for code, top in _CODES:
        if largest <= top:
            return code
    raise ValueError(f"a bucket count of {largest} does not fit in 64 bits")


def _deltas(keys: list[int]) -> Iterable[int]:
    # In C: each key minus the one before it (the first minus 0).
    return map(sub, keys, [0, *keys])


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


_new_counter = Counter.__new__
#: relative accuracy -> (gamma, log(gamma), 1 / log(gamma)): sketches are created per interval.
_CONSTANTS: dict[float, tuple[float, float, float]] = {}


def _add_counts(store: Counter[int], other: Mapping[int, int]) -> None:
    """``store += other`` bucket by bucket, in C (``Counter.update`` loops in Python)."""
    if not store:
        dict.update(store, other)
        return
    keys = list(other)
    totals = map(add, map(store.get, keys, repeat(0)), other.values())
    dict.update(store, zip(keys, totals, strict=True))


def _unpack_v3(data: bytes, pos: int) -> tuple[int, int, int, int, array[int], array[int]]:
    """The bucket arrays of a version-3 sketch whose sizes start at ``pos``.

    Returns the positive and negative bucket counts, the first index of each, the index gaps
    and the bucket counts; raises ``ValueError`` when the arrays do not match their sizes.
    """
    n_pos, n_neg, first_pos, first_neg, gap_code, count_code, packed = _SIZES3.unpack_from(
        data, pos
    )
    payload = data[pos + _SIZES3.size :]
    if packed:
        payload = zlib.decompress(payload)
    gaps: array[int] = array(gap_code.decode())
    n_gaps = max(n_pos - 1, 0) + max(n_neg - 1, 0)
    gaps.frombytes(payload[: gaps.itemsize * n_gaps])
    counts: array[int] = array(count_code.decode())
    counts.frombytes(payload[gaps.itemsize * n_gaps :])
    if len(gaps) != n_gaps or len(counts) != n_pos + n_neg:
        raise ValueError("bucket arrays do not match their sizes")
    return n_pos, n_neg, first_pos, first_neg, gaps, counts


class QuantileSketch:
    """Log-bucket quantile sketch with count, sum, min and max.

    ``add`` is O(1); ``merge`` is O(buckets); memory is O(log(max/min) / relative_accuracy),
    bounded by :data:`MAX_BUCKETS` per sign.
    """

    __slots__ = (
        "_cdf",
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
        consts = _CONSTANTS.get(relative_accuracy)
        if consts is None:
            if not 0.0 < relative_accuracy < 1.0:
                raise ValueError(
                    f"relative_accuracy={relative_accuracy!r} is not allowed: "
                    "a number strictly between 0 and 1"
                )
            gamma = (1.0 + relative_accuracy) / (1.0 - relative_accuracy)
            consts = (gamma, math.log(gamma), 1.0 / math.log(gamma))
            if len(_CONSTANTS) < 64:
                _CONSTANTS[relative_accuracy] = consts
        self.relative_accuracy = relative_accuracy
        self.gamma, self._log_gamma, self._inv_log_gamma = consts
        #: sorted positive indices and their running counts, kept until the next change
        self._cdf: tuple[list[int], list[int]] | None = None
        # Counter.__new__ gives the same empty Counter as Counter() without the two Python
        # calls of Counter.__init__ (a sketch is created per interval and per stored row read).
        self.positive: Counter[int] = _new_counter(Counter)
        self.negative: Counter[int] = _new_counter(Counter)
        self.zero_count = 0
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    # -- adding -------------------------------------------------------------------------
    def add(self, value: float, weight: int = 1) -> None:
        """Count ``value`` ``weight`` times. NaN and infinities are the caller's to reject."""
        self._cdf = None
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
        self._cdf = None
        try:
            total = math.fsum(vals)
        except OverflowError:  # finite values whose sum is not: the sum is infinite
            total = sum(vals, 0.0)
        k = self._inv_log_gamma
        log = math.log
        ceil = math.ceil
        lo = MIN_INDEXABLE
        mn = min(vals)
        if mn > lo:
            # All positive (durations): the index of every value computed by a chain of C
            # iterators, counted by Counter's C loop; no Python-level loop at all.
            self.positive.update(map(ceil, map(mul, map(log, vals), repeat(k))))
        else:
            pos = [v for v in vals if v > lo]
            self.positive.update([ceil(log(v) * k) for v in pos])
            neg = [v for v in vals if v < -lo]
            self.negative.update([ceil(log(-v) * k) for v in neg])
            self.zero_count += len(vals) - len(pos) - len(neg)
        self.count += len(vals)
        self.sum += total
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
        self._cdf = None
        _add_counts(self.positive, other.positive)
        if other.negative:
            _add_counts(self.negative, other.negative)
        self.zero_count += other.zero_count
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self._collapse()

    def merge_bytes(self, data: bytes) -> None:
        """Merge the sketch serialised in ``data`` (:meth:`to_bytes`) into this one without
        building it first: a query merging thousands of stored sketches skips one object
        and two dict copies per row. Raises ``ValueError`` on malformed input or another
        accuracy."""
        try:
            version, accuracy = _HEADER.unpack_from(data, 0)
            if version != 3:
                self.merge(QuantileSketch.from_bytes(data))
                return
            if accuracy != self.relative_accuracy and not math.isclose(
                accuracy, self.relative_accuracy
            ):
                raise ValueError(
                    f"cannot merge sketches of relative accuracy {accuracy} "
                    f"into {self.relative_accuracy}: accuracies must match"
                )
            pos = _HEADER.size
            count, total, mn, mx, zero = _STATS.unpack_from(data, pos)
            pos += _STATS.size
            n_pos, n_neg, first_pos, first_neg, gaps, counts = _unpack_v3(data, pos)
        except (struct.error, IndexError, zlib.error, TypeError) as exc:
            raise ValueError(f"malformed sketch bytes: {exc}") from exc
        if not count:
            return
        self._cdf = None
        split = max(n_pos - 1, 0)
        if n_pos:
            keys = list(accumulate(gaps[:split], initial=first_pos))
            store = self.positive
            if store:
                totals = map(add, map(store.get, keys, repeat(0)), counts[:n_pos])
                dict.update(store, zip(keys, totals, strict=True))
            else:
                dict.update(store, zip(keys, counts[:n_pos], strict=True))
        if n_neg:
            keys = list(accumulate(gaps[split:], initial=first_neg))
            store = self.negative
            totals = map(add, map(store.get, keys, repeat(0)), counts[n_pos:])
            dict.update(store, zip(keys, totals, strict=True))
        self.zero_count += zero
        self.count += count
        self.sum += total
        if mn < self.min:
            self.min = mn
        if mx > self.max:
            self.max = mx
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
        neg = self.negative
        if neg:
            keys = sorted(neg, reverse=True)
            cum = list(accumulate(map(neg.__getitem__, keys)))
            i = bisect_right(cum, rank)
            if i < len(keys):
                value = -self._value(keys[i])
                # A bucket's midpoint may lie outside what was observed: never report that.
                return min(max(value, self.min), self.max)
            seen = cum[-1]
        seen += self.zero_count
        if seen > rank:
            return min(max(0.0, self.min), self.max)
        cdf = self._cdf
        if cdf is None:
            # Sorted once per change: a report asks several quantiles of one sketch.
            pos = self.positive
            keys = sorted(pos)
            cdf = self._cdf = (keys, list(accumulate(map(pos.__getitem__, keys))))
        keys, cum = cdf
        # The first bucket whose running total (after the negatives and zeros) passes rank.
        i = bisect_right(cum, rank - seen)
        if i < len(keys):
            return min(max(self._value(keys[i]), self.min), self.max)
        return self.max

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

        Format 3: each store's first index, then the gaps between indices and the counts as
        arrays of the narrowest unsigned type that holds them (one byte each, usually),
        zlib-compressed from 64 bytes (a sketch of a few values is stored as it is).
        Encoding and decoding run in C (``array``, ``map``, ``itertools.accumulate``,
        ``zlib``).
        """
        positive, negative = self.positive, self.negative
        pos_keys = sorted(positive) if 0 not in positive.values() else sorted(+positive)
        neg_keys = (
            [] if not negative
            else sorted(negative) if 0 not in negative.values() else sorted(+negative)
        )  # fmt: skip
        counts = list(map(positive.__getitem__, pos_keys))
        if neg_keys:
            counts.extend(map(negative.__getitem__, neg_keys))
        gaps = list(map(sub, pos_keys[1:], pos_keys))
        if neg_keys:
            gaps.extend(map(sub, neg_keys[1:], neg_keys))
        gap_code = _narrowest(max(gaps) if gaps else 0)
        count_code = _narrowest(max(counts) if counts else 0)
        payload = array(gap_code, gaps).tobytes() + array(count_code, counts).tobytes()
        out = bytearray(_HEADER.pack(3, self.relative_accuracy))
        out += _STATS.pack(
            self.count,
            self.sum,
            self.min if self.count else 0.0,
            self.max if self.count else 0.0,
            self.zero_count,
        )
        packed = len(payload) >= _COMPRESS_FROM
        out += _SIZES3.pack(
            len(pos_keys),
            len(neg_keys),
            pos_keys[0] if pos_keys else 0,
            neg_keys[0] if neg_keys else 0,
            gap_code.encode(),
            count_code.encode(),
            1 if packed else 0,
        )
        if packed:
            # A 512-byte window and a small memory level: the payload is a few hundred bytes,
            # and zlib.compress's default state costs more to set up than to use.
            z = zlib.compressobj(1, zlib.DEFLATED, 9, 4)
            out += z.compress(payload)
            out += z.flush()
        else:  # a few buckets: zlib would only add its header, checksum and time
            out += payload
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> QuantileSketch:
        """Inverse of :meth:`to_bytes` (also reads format 1). Raises ``ValueError`` on
        malformed input."""
        try:
            version, accuracy = _HEADER.unpack_from(data, 0)
            if version not in (1, 2, 3):
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
            elif version == 3:
                n_pos, n_neg, first_pos, first_neg, gaps, counts = _unpack_v3(data, pos)
                split = max(n_pos - 1, 0)
                if n_pos:
                    pos_idx = accumulate(gaps[:split], initial=first_pos)
                    dict.update(sk.positive, zip(pos_idx, counts[:n_pos], strict=True))
                if n_neg:
                    neg_idx = accumulate(gaps[split:], initial=first_neg)
                    dict.update(sk.negative, zip(neg_idx, counts[n_pos:], strict=True))
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
        except (struct.error, IndexError, zlib.error, ValueError, TypeError) as exc:
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


_new_object = object.__new__


def single_value_sketch(value: float, weight: int = 1) -> QuantileSketch:
    """A sketch of ``weight`` copies of ``value`` at the default accuracy: equal to (and
    serialised the same as) ``QuantileSketch()`` followed by ``add(value, weight)``, for
    about half the cost (bulk imports build one per sparse series-interval)."""
    consts = _CONSTANTS.get(DEFAULT_RELATIVE_ACCURACY)
    if consts is None:
        slow = QuantileSketch()
        slow.add(value, weight)
        return slow
    sk: QuantileSketch = _new_object(QuantileSketch)
    sk.relative_accuracy = DEFAULT_RELATIVE_ACCURACY
    sk.gamma, sk._log_gamma, sk._inv_log_gamma = consts
    sk._cdf = None
    positive: Counter[int] = _new_counter(Counter)
    negative: Counter[int] = _new_counter(Counter)
    sk.zero_count = 0
    if value > MIN_INDEXABLE:
        positive[math.ceil(math.log(value) * consts[2])] = weight
    elif value < -MIN_INDEXABLE:
        negative[math.ceil(math.log(-value) * consts[2])] = weight
    else:
        sk.zero_count = weight
    sk.positive = positive
    sk.negative = negative
    sk.count = weight
    sk.sum = 0.0 + value * weight
    sk.min = value
    sk.max = value
    return sk
