"""A mergeable quantile sketch with bounded relative error (DDSketch-style).

Values are counted in logarithmic buckets: bucket ``i`` holds values in
``(gamma**(i-1), gamma**i]`` with ``gamma = (1 + a) / (1 - a)``, so every quantile is
returned within relative error ``a`` (1 % by default) of a value of the right rank. Negative
values use a mirrored store; values too close to zero to matter are counted as zero. Merging
two sketches adds their bucket counts, so percentiles over any range are exact up to ``a``
whatever the resolution the intervals were stored at (see Masson, Rim & Lee, "DDSketch",
VLDB 2019).

Three parts hold the counts. *Dense runs*: per sign, an array of counts from the lowest to
the highest bucket, of the narrowest unsigned type that holds them; ``add`` counts in them
in place, serialising writes their bytes and a quantile scans them. A ``Counter`` per sign:
values added in batches (``add_many``, counted by Counter's C loop) until the next read,
and every count of a sketch too wide for runs. *Lanes*, for merging: one Python integer
per sign in which bucket ``lo + j`` owns bits ``64 j .. 64 j + 63``; adding two such
integers adds every bucket at once (a single C loop over machine words), so merging a
sketch, and merging the bytes of a stored one, costs little per bucket. A read sums the
parts into new runs without changing them (threads may read one sketch at once) and the
next change starts from those. The ``positive`` and ``negative`` Counters a reader sees
are built when asked.

>>> s = QuantileSketch()
>>> for v in range(1, 1001):
...     s.add(float(v))
>>> abs(s.quantile(0.5) - 500) / 500 <= 0.01
True
"""

from __future__ import annotations

import math
import struct
import sys
import zlib
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping
from itertools import accumulate, compress, repeat
from operator import add, mul, neg, sub

__all__ = ["DEFAULT_RELATIVE_ACCURACY", "QuantileSketch"]

DEFAULT_RELATIVE_ACCURACY = 0.01
#: Values with magnitude below this count as zero (1 ns when the unit is seconds).
MIN_INDEXABLE = 1e-9
#: At most this many buckets per sign; beyond it the lowest buckets are collapsed, which
#: affects only the smallest quantiles (as in DDSketch's collapsing lowest dense store).
MAX_BUCKETS = 4096
#: The widest run of buckets (lowest to highest index, empty ones included) held as lanes:
#: 64 kB per sign. A wider sketch (values spanning many decades, few of them) stays in its
#: Counters and is serialised in format 3.
MAX_SPAN = 8192
#: Lanes are 64 bits: while a sketch counts fewer observations than this, no bucket sum can
#: carry into its neighbour (the serialised count is a signed 64-bit integer anyway).
_LANE_LIMIT = 1 << 63

_HEADER = struct.Struct("<Bd")  # format version, relative accuracy
_STATS = struct.Struct("<qdddq")  # count, sum, min, max, zero count
_SIZES = struct.Struct("<IIB")  # format 2: positive buckets, negative buckets, 64-bit counts
#: format 3: positive and negative buckets, their first indices, the gap and count typecodes,
#: whether the arrays are zlib-compressed (only from _COMPRESS_FROM bytes)
_SIZES3 = struct.Struct("<IIiiccB")
#: format 4: the first index and the length of each sign's run of buckets, the bytes per
#: count of each (1, 2, 4 or 8; positive in the low nibble), whether the runs are deflated
_SIZES4 = struct.Struct("<iIiIBB")
_COMPRESS_FROM = 64
_CODES = (("B", 0xFF), ("H", 0xFFFF), ("I", 0xFFFFFFFF), ("Q", 0xFFFFFFFFFFFFFFFF))
_LITTLE = sys.byteorder == "little"
#: (lowest index, lanes) of an empty store
_NO_LANES = (0, 0)
#: running totals per sign: (indices or None for a run, first index, totals), twice
_Totals = tuple[list[int] | None, int, list[int], list[int] | None, int, list[int]]


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


# -- lanes: a run of bucket counts as one integer, 64 bits per bucket -----------------------
def _span(lanes: int) -> int:
    """How many buckets the lanes reach (up to the highest non-empty one)."""
    return (lanes.bit_length() + 63) >> 6


def _counts_between(store: Mapping[int, int], lo: int, hi: int) -> list[int] | None:
    """``store``'s counts from index ``lo`` to ``hi`` (0 where empty), or ``None`` when an
    index of ``store`` lies outside them. A loop over the (few) stored buckets is cheaper
    than looking up every index of the span: 1.4 against 8.5 µs for an hour's rollup of 60
    values (53 buckets over a span of 218)."""
    counts = [0] * (hi - lo + 1)
    try:
        for index, count in store.items():
            if index < lo:
                return None
            counts[index - lo] = count
    except IndexError:
        return None
    return counts


def _lanes_of(store: Mapping[int, int], bounds: tuple[int, int] | None) -> tuple[int, int] | None:
    """``(lowest index, lanes)`` holding ``store``'s counts, or ``None`` when its run of
    buckets is wider than :data:`MAX_SPAN` or a count does not fit in 64 bits. ``bounds``:
    no index of ``store`` is outside them, when known (saves two passes over the indices)."""
    if not store:
        return _NO_LANES
    lo, hi = (min(store), max(store)) if bounds is None else bounds
    if hi - lo >= MAX_SPAN:
        return None if bounds is None else _lanes_of(store, None)
    # The counts of the run, packed as 64-bit words.
    counts = _counts_between(store, lo, hi)
    if counts is None:
        return _lanes_of(store, None)  # an index outside the bounds: never drop it
    try:
        words = array("Q", counts)
    except OverflowError:  # a count below 0 or past 64 bits: the Counters hold it
        return None
    if not _LITTLE:
        words.byteswap()
    return lo, int.from_bytes(words, "little")


def _add_lanes(lo: int, lanes: int, lo2: int, lanes2: int) -> tuple[int, int]:
    """Two runs of lanes added bucket by bucket (aligned on their lowest indices)."""
    if not lanes:
        return lo2, lanes2
    if not lanes2:
        return lo, lanes
    if lo2 >= lo:
        return lo, lanes + (lanes2 << ((lo2 - lo) << 6))
    return lo2, (lanes << ((lo - lo2) << 6)) + lanes2


def _words(lanes: int) -> array[int]:
    """The lanes as an ``array('Q')`` of bucket counts, lowest index first."""
    words: array[int] = array("Q")
    if lanes:
        words.frombytes(lanes.to_bytes(((lanes.bit_length() + 63) >> 6) << 3, "little"))
        if not _LITTLE:
            words.byteswap()
    return words


def _trim(lo: int, lanes: int) -> tuple[int, int]:
    """The same run without its empty lowest buckets (the highest are never kept)."""
    if not lanes:
        return _NO_LANES
    skip = ((lanes & -lanes).bit_length() - 1) >> 6
    return (lo + skip, lanes >> (skip << 6)) if skip else (lo, lanes)


def _width(raw: bytes, n: int) -> int:
    """Bytes per count (1, 2, 4 or 8) that hold every 64-bit little-endian word of ``raw``
    (``n`` of them)."""
    zeros = bytes(n)
    # The highest byte plane that is not all zero (read from the words themselves, not
    # from a bound such as the count: a wrong bound would cut counts short).
    if raw[4::8] != zeros or raw[5::8] != zeros or raw[6::8] != zeros or raw[7::8] != zeros:
        return 8
    if raw[2::8] != zeros or raw[3::8] != zeros:
        return 4
    return 2 if raw[1::8] != zeros else 1


def _v4_body(data: bytes, pos: int, version: int) -> tuple[int, int, int, int, int, bytes, int]:
    """The sizes of a version-4 or -5 sketch whose sizes start at ``pos``, then the bytes
    holding its counts as format 4 lays them out (inflated when deflated) and where they
    start. Format 5 stores the lowest byte plane of each run first, as it is, then the
    higher planes of both runs (deflated or not)."""
    pos_lo, n_pos, neg_lo, n_neg, widths, packed = _SIZES4.unpack_from(data, pos)
    if n_pos > MAX_SPAN or n_neg > MAX_SPAN:
        raise ValueError("a run of buckets longer than format 4 allows")
    pos += _SIZES4.size
    if version == 4:
        if packed:
            data = zlib.decompress(data[pos:], -15)
            pos = 0
        return pos_lo, n_pos, neg_lo, n_neg, widths, data, pos
    plain = pos + n_pos + n_neg
    if plain > len(data):
        raise ValueError("bucket counts are shorter than their sizes")
    rest = zlib.decompress(data[plain:], -15) if packed else data[plain:]
    split = n_pos * max((widths & 0xF) - 1, 0)  # the higher planes of the positive run
    body = b"".join(
        (data[pos : pos + n_pos], rest[:split], data[pos + n_pos : plain], rest[split:])
    )
    return pos_lo, n_pos, neg_lo, n_neg, widths, body, 0


def _unpack_v4(data: bytes, pos: int, version: int = 4) -> tuple[int, int, int, int]:
    """The lanes of a version-4 (or -5) sketch whose sizes start at ``pos``: (positive lo,
    lanes, negative lo, lanes). Raises ``ValueError`` when the runs do not match their
    sizes."""
    pos_lo, n_pos, neg_lo, n_neg, widths, data, pos = _v4_body(data, pos, version)
    pos_lanes, pos = _unpack_run(data, pos, n_pos, widths & 0xF)
    neg_lanes, pos = _unpack_run(data, pos, n_neg, widths >> 4)
    if pos != len(data):
        raise ValueError("bucket counts do not match their sizes")
    return pos_lo, pos_lanes, neg_lo, neg_lanes


#: one sign's run of buckets as format 4 stores it: first index, length, bytes per count,
#: the counts as byte planes (all the low bytes, then the next ones: deflate finds the runs
#: of zeros in the high planes)
_Run = tuple[int, int, int, bytes]
_EMPTY_RUN: _Run = (0, 0, 1, b"")


def _run_of(store: Mapping[int, int], bounds: tuple[int, int] | None) -> _Run | None:
    """``store``'s run of buckets (``None`` when wider than :data:`MAX_SPAN`); ``bounds``
    as for :func:`_lanes_of`."""
    if not store:
        return _EMPTY_RUN
    if len(store) == 1:  # a single value (a sparse interval)
        ((key, c),) = store.items()
        if 0 < c < 256:
            return key, 1, 1, bytes((c,))
    lo, hi = (min(store), max(store)) if bounds is None else bounds
    if hi - lo >= MAX_SPAN:
        return None if bounds is None else _run_of(store, None)
    counts = list(map(store.get, range(lo, hi + 1), repeat(0)))
    if bounds is not None and len(counts) - counts.count(0) != len(store):
        return _run_of(store, None)  # an index outside the bounds: never drop it
    if not counts[0] or not counts[-1]:  # collapsed below the bounds, or an emptied bucket
        first = next((i for i, c in enumerate(counts) if c), None)
        if first is None:
            return _EMPTY_RUN
        last = len(counts) - next(i for i, c in enumerate(reversed(counts)) if c)
        counts = counts[first:last]
        lo += first
    n = len(counts)
    try:
        return lo, n, 1, bytes(counts)  # in C, and raises when a count needs more bytes
    except ValueError:
        pass
    for code, width in (("H", 2), ("I", 4), ("Q", 8)):
        try:
            words = array(code, counts)
        except OverflowError:
            continue
        if words.itemsize != width:  # "I" is 4 bytes wide where Python runs, but check
            words = array("Q", counts)
            width = 8
        if not _LITTLE:
            words.byteswap()
        raw = words.tobytes()
        return lo, n, width, b"".join([raw[p::width] for p in range(width)])
    raise ValueError("a bucket count does not fit in 64 bits")


def _unpack_run(data: bytes, pos: int, n: int, width: int) -> tuple[int, int]:
    """Lanes from ``n`` counts stored as ``width`` byte planes at ``pos``; the end."""
    if width not in (1, 2, 4, 8):
        raise ValueError(f"a count width of {width} bytes")
    end = pos + n * width
    if end > len(data):
        raise ValueError("bucket counts are shorter than their sizes")
    if not n:
        return 0, end
    if width == 1 and n == 1:
        return data[pos], end
    # In C: byte plane ``b`` of every count goes to byte ``b`` of its 64-bit word.
    words = bytearray(n << 3)
    for plane in range(width):
        words[plane::8] = data[pos + plane * n : pos + (plane + 1) * n]
    return int.from_bytes(words, "little"), end


def _fold_lanes(lanes: tuple[int, int, int, int], pos: Counter[int], neg: Counter[int]) -> None:
    """Add the counts in ``lanes`` to the Counters ``pos`` and ``neg``."""
    for lo, run, store in ((lanes[0], lanes[1], pos), (lanes[2], lanes[3], neg)):
        if run:
            words = _words(run)
            # In C: the indices of the non-empty buckets and their counts.
            keys = compress(range(lo, lo + len(words)), words)
            pairs = zip(keys, filter(None, words), strict=True)
            if store:
                _add_counts(store, dict(pairs))
            else:
                dict.update(store, pairs)


# -- dense runs: a sign's counts in an array from its lowest to its highest index -----------
#: array typecode of each count width in bytes
_CODE_OF = {1: "B", 2: "H", 4: "I" if array("I").itemsize == 4 else "L", 8: "Q"}
#: a sketch's counts as dense runs: (positive first index, counts, negative first index,
#: counts), each count array of the narrowest unsigned type that holds its counts
_Dense = tuple[int, "array[int]", int, "array[int]"]
#: the run of a sign without buckets (never changed: ``add`` counts in a run only within
#: it, and runs are copied before anything else adds to them)
_NO_COUNTS = array("B")
_EMPTY_DENSE: _Dense = (0, _NO_COUNTS, 0, _NO_COUNTS)
#: ``_full`` of a sketch whose counts do not fit dense runs (too wide, or a count past 64
#: bits): its Counters hold them
_TOO_WIDE: _Dense = (0, array("B"), 0, array("B"))
#: ``_cdf`` after one quantile of an unchanged sketch (found by a scan, nothing kept): the
#: second builds the running totals
_ASKED_ONCE: _Totals = (None, 0, [], None, 0, [])
#: a quantile scans a run this many buckets at a time, halving the chunk that passes the
#: rank down to at most _CHUNK buckets (summed by one Adler-32 checksum: at most 256)
_BIG_CHUNK = 256
_CHUNK = 16
_adler32 = zlib.adler32
#: at most this many buckets, only added, are written straight from the Counters
_FEW = 8
#: no lanes merged in (``_pend``)
_NO_PEND = (0, 0, 0, 0)


def _array_of_counts(counts: list[int]) -> array[int] | None:
    """``counts`` as an array of the narrowest unsigned type that holds them; ``None`` when
    one is below 0 or past 64 bits."""
    try:
        return array("B", bytes(counts))  # in C; raises when a count needs more than a byte
    except ValueError:
        pass
    for width in (2, 4, 8):
        try:
            return array(_CODE_OF[width], counts)
        except OverflowError:
            continue
    return None


def _trim_array(lo: int, counts: array[int]) -> tuple[int, array[int]]:
    """The run without empty buckets at either end (a bucket added with weight 0)."""
    if not counts or (counts[0] and counts[-1]):
        return lo, counts
    used = [i for i, c in enumerate(counts) if c]
    if not used:
        return 0, array("B")
    return lo + used[0], counts[used[0] : used[-1] + 1]


def _array_of_store(
    store: Mapping[int, int], bounds: tuple[int, int] | None
) -> tuple[int, array[int]] | None:
    """``store``'s counts as a dense run, or ``None`` when wider than :data:`MAX_SPAN` or a
    count does not fit in 64 bits; ``bounds`` as for :func:`_lanes_of`."""
    if not store:
        return 0, array("B")
    lo, hi = (min(store), max(store)) if bounds is None else bounds
    if hi - lo >= MAX_SPAN:
        return None if bounds is None else _array_of_store(store, None)
    counts = _counts_between(store, lo, hi)
    if counts is None:
        return _array_of_store(store, None)  # an index outside the bounds: never drop it
    arr = _array_of_counts(counts)
    return None if arr is None else _trim_array(lo, arr)


def _lanes_of_array(counts: array[int]) -> int:
    """A dense run's counts as lanes (byte ``b`` of each count to byte ``b`` of its word)."""
    if not counts:
        return 0
    if not _LITTLE:
        counts = array(counts.typecode, counts)
        counts.byteswap()
    raw = counts.tobytes()
    width = counts.itemsize
    if width == 8:
        return int.from_bytes(raw, "little")
    words = bytearray(len(counts) << 3)
    for plane in range(width):
        words[plane::8] = raw[plane::width]
    return int.from_bytes(words, "little")


def _array_of_lanes(lo: int, lanes: int) -> tuple[int, array[int]]:
    """The lanes as a dense run, without empty buckets at either end."""
    if not lanes:
        return 0, array("B")
    n = _span(lanes)
    raw = lanes.to_bytes(n << 3, "little")
    skip = (len(raw) - len(raw.lstrip(b"\0"))) >> 3  # the empty lowest buckets
    if skip:
        raw = raw[skip << 3 :]
        lo += skip
        n -= skip
    low = raw[0::8]
    words = bytearray(len(raw))
    words[0::8] = low
    if words == raw:  # every byte but the lowest of each word is zero: one byte per count
        return lo, array("B", low)
    width = _width(raw, n)
    counts: array[int] = array(_CODE_OF[width])
    if width == 8:
        counts.frombytes(raw)
    else:
        narrow = bytearray(n * width)
        for plane in range(width):
            narrow[plane::width] = raw[plane::8]
        counts.frombytes(narrow)
    if not _LITTLE:
        counts.byteswap()
    return lo, counts


def _sum_run(
    base: tuple[int, array[int]] | None,
    store: Counter[int],
    bounds: tuple[int, int] | None,
    lanes: tuple[int, int] | None,
) -> tuple[int, array[int]] | None:
    """One sign's counts as a dense run: those of ``base`` (never changed), of ``store``
    (``bounds`` as for :func:`_lanes_of`) and of ``lanes``; ``None`` when the run would be
    wider than :data:`MAX_SPAN` or a count does not fit in 64 bits."""
    if base is not None and not base[1]:
        base = None
    if lanes is not None and not lanes[1]:
        lanes = None
    if not store:
        if lanes is None:
            return base if base is not None else (0, array("B"))
        if base is None:
            return None if _span(lanes[1]) > MAX_SPAN else _array_of_lanes(*lanes)
    elif base is None and lanes is None:
        return _array_of_store(store, bounds)
    elif lanes is None and base is not None and len(store) <= 32:
        # A few buckets added since the last read: into a copy of the run, when inside it.
        lo, counts = base[0], base[1][:]
        n = len(counts)
        try:
            for key, c in store.items():
                if not 0 <= key - lo < n:
                    break
                counts[key - lo] += c
            else:
                return lo, counts
        except OverflowError:  # past the count width: summed as lanes below
            pass
    lo, total = _NO_LANES
    if base is not None:
        lo, total = base[0], _lanes_of_array(base[1])
    if store:
        more = _lanes_of(store, bounds)
        if more is None:
            return None
        lo, total = _add_lanes(lo, total, *more)
    if lanes is not None:
        lo, total = _add_lanes(lo, total, *lanes)
    lo, total = _trim(lo, total)
    if _span(total) > MAX_SPAN:
        return None
    return _array_of_lanes(lo, total)


def _run_of_array(lo: int, counts: array[int]) -> _Run:
    """A dense run as format 4 stores it (the array's bytes, split into byte planes)."""
    lo, counts = _trim_array(lo, counts)
    if not counts:
        return _EMPTY_RUN
    if not _LITTLE:
        counts = array(counts.typecode, counts)
        counts.byteswap()
    raw = counts.tobytes()
    width = counts.itemsize
    if width == 1:
        return lo, len(counts), 1, raw
    return lo, len(counts), width, b"".join([raw[p::width] for p in range(width)])


def _array_of_run(data: bytes, pos: int, n: int, width: int) -> tuple[array[int], int]:
    """A dense run from ``n`` counts stored as ``width`` byte planes at ``pos``; the end."""
    if width not in (1, 2, 4, 8):
        raise ValueError(f"a count width of {width} bytes")
    end = pos + n * width
    if end > len(data):
        raise ValueError("bucket counts are shorter than their sizes")
    if width == 1:
        return array("B", data[pos:end]), end
    narrow = bytearray(n * width)
    for plane in range(width):
        narrow[plane::width] = data[pos + plane * n : pos + (plane + 1) * n]
    counts: array[int] = array(_CODE_OF[width])
    counts.frombytes(narrow)
    if not _LITTLE:
        counts.byteswap()
    return counts, end


def _unpack_v4_dense(data: bytes, pos: int, version: int) -> _Dense:
    """The dense runs of a version-4 or -5 sketch whose sizes start at ``pos``. Raises
    ``ValueError`` when the runs do not match their sizes."""
    pos_lo, n_pos, neg_lo, n_neg, widths, data, pos = _v4_body(data, pos, version)
    if widths == 0x11:  # one byte per count (nearly every sketch): the arrays at once
        mid = pos + n_pos
        if mid + n_neg != len(data):
            raise ValueError("bucket counts do not match their sizes")
        pos_counts = array("B", data[pos:mid]) if n_pos else _NO_COUNTS
        return pos_lo, pos_counts, neg_lo, array("B", data[mid:]) if n_neg else _NO_COUNTS
    pos_counts, pos = _array_of_run(data, pos, n_pos, widths & 0xF)
    neg_counts, pos = _array_of_run(data, pos, n_neg, widths >> 4)
    if pos != len(data):
        raise ValueError("bucket counts do not match their sizes")
    return pos_lo, pos_counts, neg_lo, neg_counts


#: a run's counts as byte planes, each with the shift of its byte (see :func:`_planes`)
_Planes = list[tuple["bytes | array[int]", int]]


def _planes(counts: array[int]) -> _Planes:
    """The byte planes of ``counts`` (one-byte counts: the array itself), for
    :func:`_sum_of`."""
    width = counts.itemsize
    if width == 1:
        return [(counts, 0)]
    raw = counts.tobytes()
    return [(raw[p::width], (p if _LITTLE else width - 1 - p) << 3) for p in range(width)]


def _sum_of(planes: _Planes, start: int, end: int) -> int:
    """The sum of counts ``start`` to ``end`` (at most 256 of them), in C whatever their
    number: the sum of at most 256 bytes is read from their Adler-32 checksum, whose low
    half is 1 plus that sum modulo 65521 (RFC 1950). 256 * 255 + 1 is less, so it is exact,
    and no Python int is made per count; wider counts are summed byte plane by plane."""
    total = 0
    for plane, shift in planes:
        total += ((_adler32(plane[start:end]) & 0xFFFF) - 1) << shift
    return total


def _total(counts: array[int]) -> int:
    """The sum of a run's counts."""
    planes = _planes(counts)
    n = len(counts)
    return sum(_sum_of(planes, i, min(i + _BIG_CHUNK, n)) for i in range(0, n, _BIG_CHUNK))


def _first_past(counts: array[int], rank: float) -> int:
    """The first index of ``counts`` whose running total passes ``rank`` (>= 0), or
    ``len(counts)``: chunk totals (:func:`_sum_of`) up to the chunk that passes, halved
    until a few counts are left, then their running totals."""
    width = counts.itemsize
    # One- and two-byte counts (nearly every run): the checksums inline.
    low: bytes | array[int] = counts
    high = b""
    planes = None
    if width == 2:
        raw = counts.tobytes()
        low, high = (raw[0::2], raw[1::2]) if _LITTLE else (raw[1::2], raw[0::2])
    elif width != 1:
        planes = _planes(counts)

    def chunk_sum(a: int, b: int) -> int:
        """The sum of counts ``a`` to ``b`` (at most 256 of them), as :func:`_sum_of`."""
        if planes is not None:
            return _sum_of(planes, a, b)
        if width == 1:
            return (_adler32(low[a:b]) & 0xFFFF) - 1
        return (_adler32(low[a:b]) & 0xFFFF) + ((_adler32(high[a:b]) & 0xFFFF) << 8) - 257

    seen = 0
    n = len(counts)
    for start in range(0, n, _BIG_CHUNK):
        end = min(start + _BIG_CHUNK, n)
        total = seen + chunk_sum(start, end)
        if total > rank:
            break
        seen = total
    else:
        return n
    while end - start > _CHUNK:
        mid = (start + end) >> 1
        total = seen + chunk_sum(start, mid)
        if total > rank:
            end = mid
        else:
            seen = total
            start = mid
    running = list(accumulate(counts[start:end], initial=seen))
    return start + bisect_right(running, rank) - 1


def _dict_of_run(lo: int, counts: array[int] | list[int]) -> dict[int, int]:
    """The non-empty buckets of a dense run (in C)."""
    keys = compress(range(lo, lo + len(counts)), counts)
    return dict(zip(keys, filter(None, counts), strict=True))


# -- bucket edges: where the index of a value steps up -------------------------------------
#: relative accuracy -> {index i: the smallest positive float whose index is i or more}
_EDGES: dict[float, dict[int, float]] = {}
#: at most this many edges are kept per accuracy (each found once, by a binary search; a
#: few hundred cover a service's durations, 8192 some 70 decades at 1 %)
_MAX_EDGES = 1 << 13
#: a batch whose values span fewer than 1 / _EDGES_PER_VALUE buckets per value is counted
#: by bisections at the bucket edges (two per bucket cost about what one value's index does)
_EDGES_PER_VALUE = 2
#: narrow batches bisected at every edge, without a walk, after a walk found one dense
_SKIP_WALKS = 8


def _edge(i: int, inv_log_gamma: float, log_gamma: float) -> float | None:
    """The smallest positive float whose bucket index, ``ceil(log(v) * inv_log_gamma)`` as
    :meth:`QuantileSketch.add` computes it, is ``i`` or more (``None`` when no positive
    finite float's is). Found by a binary search between floats just below and above
    ``gamma ** (i - 1)`` (the midpoint of two floats lies between them, so the search ends
    on two neighbours); the index is monotonic in the value, so the values of bucket ``i``
    are exactly those from this edge up to (not including) the next one."""
    log = math.log
    ceil = math.ceil
    largest = sys.float_info.max
    try:
        guess = math.exp((i - 1) * log_gamma)
    except OverflowError:
        guess = largest
    guess = min(max(guess, 5e-324), largest)
    spread = 1e-12  # a few thousand floats either side: the guess is off by some hundreds
    while True:
        below = max(guess * (1.0 - spread), 5e-324)
        above = min(guess * (1.0 + spread), largest)
        if ceil(log(below) * inv_log_gamma) < i <= ceil(log(above) * inv_log_gamma):
            break
        if below == 5e-324 and above == largest:
            return None
        spread = min(spread * 1e4, 0.5)
        if spread == 0.5:
            below, above = 5e-324, largest
            if not ceil(log(below) * inv_log_gamma) < i <= ceil(log(above) * inv_log_gamma):
                return None
            break
    while True:  # ceil(log(below) * k) < i <= ceil(log(above) * k)
        mid = below + (above - below) * 0.5
        if mid <= below or mid >= above:
            return above
        if ceil(log(mid) * inv_log_gamma) >= i:
            above = mid
        else:
            below = mid


def _edges(
    accuracy: float, inv_log_gamma: float, log_gamma: float, first: int, last: int
) -> list[float] | None:
    """The edges (:func:`_edge`) of buckets ``first`` to ``last``, each found once per
    accuracy and kept; ``None`` when one does not exist or too many are kept already."""
    table = _edge_table(accuracy)
    if table is None:
        return None
    wanted = range(first, last + 1)
    try:
        return list(map(table.__getitem__, wanted))
    except KeyError:
        pass
    if len(table) + len(wanted) > _MAX_EDGES:
        return None
    for i in wanted:
        if i not in table:
            edge = _edge(i, inv_log_gamma, log_gamma)
            if edge is None:
                return None
            table[i] = edge
    return list(map(table.__getitem__, wanted))


def _edge_table(accuracy: float) -> dict[int, float] | None:
    """The kept edges of ``accuracy`` (``None`` when 64 accuracies have tables already)."""
    table = _EDGES.get(accuracy)
    if table is None:
        if len(_EDGES) >= 64:
            return None
        table = _EDGES.setdefault(accuracy, {})
    return table


def _walk(
    mags: list[float],
    k: float,
    log_gamma: float,
    accuracy: float,
    low: int,
    counts: list[int] | array[int] | None,
    base: int = 0,
) -> tuple[dict[int, int], int]:
    """Count the occupied buckets of ``mags`` (sorted upwards, the first in bucket ``low``)
    from the first value on; returns the counts and the position of the first value not
    counted. With ``counts`` (buckets ``base`` upwards: a list of zeros, or a dense run of
    the sketch covering the batch's buckets; a narrow batch) the counts are added there
    (the dict returned is empty), else they are returned.

    Each step takes the index of the first value not yet counted and bisects at the edge of
    the bucket above it: the values before that edge are exactly that bucket's. The walk
    stops early (the caller counts the rest) where the buckets turn out densely occupied:
    after three steps in a row to a bucket at most two above the last (narrow: bisecting at
    every edge costs less than a step per bucket), or of fewer than three values each
    (wide: indexing the values costs less); when an edge is not known and no more can be
    kept; and when a count does not fit the run's type (nothing of that bucket added)."""
    n = len(mags)
    found: dict[int, int] = {}
    table = _edge_table(accuracy)
    if table is None:
        return found, 0
    get = table.get
    log = math.log
    ceil = math.ceil
    i = low
    pos = 0
    dense = 0  # steps in a row that cost more than the other way would have
    try:
        while True:
            e = get(i + 1)
            if e is None:
                if len(table) >= _MAX_EDGES:
                    return found, pos
                e = _edge(i + 1, k, log_gamma)
                if e is None:  # no float lies above bucket i: the rest is in it
                    e = math.inf
                else:
                    table[i + 1] = e
            nxt = bisect_left(mags, e, pos)
            if nxt >= n:
                if counts is None:
                    found[i] = n - pos
                else:
                    counts[i - base] += n - pos
                return found, n
            last = i
            i = ceil(log(mags[nxt]) * k)
            if counts is None:
                found[last] = nxt - pos
                dense = dense + 1 if nxt - pos < 3 else 0
            else:
                counts[last - base] += nxt - pos
                dense = dense + 1 if i - last <= 2 else 0
            pos = nxt
            if dense >= 3:
                return found, pos
    except OverflowError:  # past the run's count width: the caller widens it
        return found, pos


class QuantileSketch:
    """Log-bucket quantile sketch with count, sum, min and max.

    ``add`` is O(1); ``merge`` adds lanes (an integer addition per sign, O(buckets) in
    machine words); memory is O(log(max/min) / relative_accuracy), bounded by
    :data:`MAX_BUCKETS` per sign.
    ``positive`` and ``negative`` map bucket indices to counts (read them, do not change
    them: change the sketch through ``add``, ``add_many`` and ``merge``).
    """

    __slots__ = (
        "_bytes",
        "_cdf",
        "_dense",
        "_full",
        "_inv_log_gamma",
        "_lanes",
        "_log_gamma",
        "_merged",
        "_neg",
        "_pend",
        "_pos",
        "_pos_keys",
        "_sparse",
        "_view",
        "_walk_skip",
        "count",
        "gamma",
        "max",
        "min",
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
        # The counts are the sum of three parts. ``_dense``: a run of counts per sign in an
        # array (what ``add`` updates in place, and what a read leaves behind). The Counters
        # ``_pos`` and ``_neg``: values added in batches (counted by Counter's C loop), and
        # every count of a sketch too wide for runs (``_sparse``). ``_pend``: lanes merged in.
        # Counter.__new__ gives the same empty Counter as Counter() without the two Python
        # calls of Counter.__init__ (a sketch is created per interval and per stored row read).
        self._dense: _Dense | None = None
        self._pos: Counter[int] = _new_counter(Counter)
        self._neg: Counter[int] = _new_counter(Counter)
        #: no index of ``_pos`` lies outside these, when known (``None``: not known)
        self._pos_keys: tuple[int, int] | None = None
        #: counts merged in as lanes: (pos lo, pos lanes, neg lo, neg lanes)
        self._pend: tuple[int, int, int, int] | None = None
        #: the Counters hold every count (the run of buckets is wider than MAX_SPAN, a count
        #: is past 64 bits, or the lowest buckets were collapsed)
        self._sparse = False
        #: the last changes were merges (a rollup or a query's result, written once and
        #: kept): deflated whenever that makes the bytes smaller
        self._merged = False
        #: narrow batches still to fold without walking their buckets (see _add_batch)
        self._walk_skip = 0
        # Kept until the next change (a read sets them and changes nothing else, so threads
        # may read one sketch at once): the three parts summed as dense runs (the next change
        # starts from them), the counts as lanes, the running totals a quantile bisects, the
        # serialised bytes and the Counters a reader sees.
        self._full: _Dense | None = None
        self._lanes: tuple[int, int, int, int] | None = None
        self._cdf: _Totals | None = None
        self._bytes: bytes | None = None
        self._view: tuple[Counter[int], Counter[int]] | None = None
        self.zero_count = 0
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    # -- the representations -------------------------------------------------------------
    @property
    def positive(self) -> Counter[int]:
        """Counts of positive values by bucket index."""
        return self._counters()[0]

    @positive.setter
    def positive(self, store: Counter[int]) -> None:
        self._replace(store, None)

    @property
    def negative(self) -> Counter[int]:
        """Counts of negative values by bucket index of their magnitude."""
        return self._counters()[1]

    @negative.setter
    def negative(self, store: Counter[int]) -> None:
        self._replace(None, store)

    def _replace(self, pos: Counter[int] | None, neg: Counter[int] | None) -> None:
        # Assigning a Counter (a fast constructor does) replaces that sign's buckets and
        # forgets everything derived. ``_sparse`` is unset on an instance made without
        # ``__init__`` (``object.__new__``): these assignments then set every slot.
        if getattr(self, "_sparse", None) is None:
            self._pos = _new_counter(Counter) if pos is None else pos
            self._neg = _new_counter(Counter) if neg is None else neg
            self._merged = self._sparse = False
        else:
            if self._dense is not None or self._pend is not None:
                # Every count into new Counters (a reader may hold the view's: copied).
                kept = self._counters()
                self._pos, self._neg = Counter(kept[0]), Counter(kept[1])
            if pos is not None:
                self._pos = pos
            if neg is not None:
                self._neg = neg
            self._sparse = False
        self._pos_keys = self._dense = self._pend = self._full = None
        self._lanes = self._cdf = self._bytes = self._view = None

    def _counters(self) -> tuple[Counter[int], Counter[int]]:
        # Reading never changes the sketch: the Counters of a sketch whose counts are not
        # all in its own Counters are new ones, kept until the next change.
        view = self._view
        if view is not None:
            return view
        if self._dense is None and self._pend is None:
            return self._pos, self._neg
        pos: Counter[int] = _new_counter(Counter)
        neg: Counter[int] = _new_counter(Counter)
        full = self._full_dense()
        if full is not None:
            if full[1]:
                dict.update(pos, _dict_of_run(full[0], full[1]))
            if full[3]:
                dict.update(neg, _dict_of_run(full[2], full[3]))
        else:
            dict.update(pos, self._pos)
            dict.update(neg, self._neg)
            dense = self._dense
            if dense is not None:
                _add_counts(pos, _dict_of_run(dense[0], dense[1]))
                _add_counts(neg, _dict_of_run(dense[2], dense[3]))
            if self._pend is not None:
                _fold_lanes(self._pend, pos, neg)
        view = self._view = (pos, neg)
        return view

    def _full_dense(self) -> _Dense | None:
        """Every count as dense runs (kept until the next change), or ``None`` when they do
        not fit runs (the Counters then hold them, with the other parts added)."""
        if self._sparse:
            return None
        dense = self._dense
        if self._pend is None and not self._pos and not self._neg:
            return _EMPTY_DENSE if dense is None else dense
        full = self._full
        if full is None:
            pend = self._pend
            pos = neg = None
            # Lanes would carry between buckets past 2**63 observations.
            if self.count < _LANE_LIMIT:
                pos = _sum_run(
                    None if dense is None else (dense[0], dense[1]),
                    self._pos,
                    self._pos_keys,
                    None if pend is None else (pend[0], pend[1]),
                )
                neg = _sum_run(
                    None if dense is None else (dense[2], dense[3]),
                    self._neg,
                    None,
                    None if pend is None else (pend[2], pend[3]),
                )
            full = _TOO_WIDE if pos is None or neg is None else (*pos, *neg)
            self._full = full
        return None if full is _TOO_WIDE else full

    def _changing(self) -> None:
        """Before a change: start from the dense runs a read summed, if any, and forget
        everything derived."""
        full = self._full
        if full is not None:
            self._full = None
            self._merged = False  # read since the merge: a live sketch now (merge sets it)
            if full is _TOO_WIDE:
                self._to_sparse()
            else:
                self._dense = full
                self._pos = _new_counter(Counter)
                self._neg = _new_counter(Counter)
                self._pos_keys = self._pend = None
        self._lanes = self._cdf = self._bytes = self._view = None

    def _to_sparse(self) -> None:
        """Move every count into the Counters, for good."""
        dense, pend = self._dense, self._pend
        self._dense = self._pend = self._full = None
        self._pos_keys = None
        self._sparse = True
        if dense is not None:
            _add_counts(self._pos, _dict_of_run(dense[0], dense[1]))
            _add_counts(self._neg, _dict_of_run(dense[2], dense[3]))
        if pend is not None:
            _fold_lanes(pend, self._pos, self._neg)

    def _all_lanes(self) -> tuple[int, int, int, int] | None:
        """Every count as lanes (kept until the next change), or ``None`` when a sign's run
        of buckets is wider than :data:`MAX_SPAN` or a count does not fit in 64 bits."""
        lanes = self._lanes
        if lanes is not None:
            return lanes
        full = self._full_dense()
        if full is not None:
            lanes = (full[0], _lanes_of_array(full[1]), full[2], _lanes_of_array(full[3]))
        else:
            positive, negative = self._counters()
            pos = _lanes_of(positive, None)
            neg = _lanes_of(negative, None)
            if pos is None or neg is None:
                return None
            lanes = (*pos, *neg)
        self._lanes = lanes
        return lanes

    def _take_lanes(self, lanes: tuple[int, int, int, int], count: int) -> None:
        """Add ``lanes`` (``count`` observations) to this sketch's counts."""
        if self._sparse or self.count + count >= _LANE_LIMIT:  # could carry: the Counters
            if not self._sparse:
                self._to_sparse()
            _fold_lanes(lanes, self._pos, self._neg)
            return
        pend = self._pend
        if pend is None:
            self._pend = lanes
        else:
            self._pend = (
                *_add_lanes(pend[0], pend[1], lanes[0], lanes[1]),
                *_add_lanes(pend[2], pend[3], lanes[2], lanes[3]),
            )

    # -- adding -------------------------------------------------------------------------
    def add(self, value: float, weight: int = 1) -> None:
        """Count ``value`` ``weight`` times. NaN and infinities are the caller's to reject."""
        if self._full is not None:
            self._changing()
        else:
            self._lanes = self._cdf = self._bytes = self._view = None
        if value > MIN_INDEXABLE:
            index = math.ceil(math.log(value) * self._inv_log_gamma)
            dense = self._dense
            counted = False
            if dense is not None:
                counts = dense[1]
                i = index - dense[0]
                if 0 <= i < len(counts):
                    try:
                        counts[i] += weight
                        counted = True
                    except OverflowError:  # past the count width: a wider array
                        counted = self._widen(1, i, weight)
            if not counted:
                store = self._pos
                bounds = self._pos_keys
                if not store:
                    self._pos_keys = (index, index)
                elif bounds is not None and not bounds[0] <= index <= bounds[1]:
                    self._pos_keys = (min(bounds[0], index), max(bounds[1], index))
                store[index] += weight
        elif value < -MIN_INDEXABLE:
            index = math.ceil(math.log(-value) * self._inv_log_gamma)
            dense = self._dense
            counted = False
            if dense is not None:
                counts = dense[3]
                i = index - dense[2]
                if 0 <= i < len(counts):
                    try:
                        counts[i] += weight
                        counted = True
                    except OverflowError:  # past the count width: a wider array
                        counted = self._widen(3, i, weight)
            if not counted:
                self._neg[index] += weight
        else:
            self.zero_count += weight
        self.count += weight
        self.sum += value * weight
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def _widen(self, which: int, i: int, weight: int) -> bool:
        """Add ``weight`` to count ``i`` of a dense run (``which``: 1 positive, 3 negative)
        in a copy of the run wide enough for the new count; ``False`` when none is."""
        dense = self._dense
        assert dense is not None
        counts = list(dense[1] if which == 1 else dense[3])
        counts[i] += weight
        wider = _array_of_counts(counts)
        if wider is None:  # below 0 or past 64 bits: the Counter holds it
            return False
        self._dense = (
            (dense[0], wider, dense[2], dense[3])
            if which == 1
            else (dense[0], dense[1], dense[2], wider)
        )
        return True

    def add_many(self, values: Iterable[float]) -> None:
        """Count every value in ``values`` (finite numbers); faster than repeated :meth:`add`.

        The values are sorted (in C), which gives the minimum and maximum and splits the
        signs. A batch that spans few buckets for its size (a histogram's buffer of
        durations) is counted into the sketch's dense run, one occupied bucket at a time
        (:func:`_walk`: the index of the next value, then a bisection at the next bucket's
        edge, :func:`_edge`), or by bisections at every edge of its span when its buckets
        are densely occupied. No index is computed per value. A wide batch is indexed value
        by value into the Counters, unless only its tails are wide (a timer's outliers),
        which are walked too.
        """
        self._add_batch(list(values))

    def _add_batch(self, vals: list[float]) -> None:
        """:meth:`add_many` of a list handed over (it is sorted in place).

        When a narrow batch's walk stops early (its buckets are densely occupied, as the
        durations of one operation a fine clock spreads over a span are), the next
        :data:`_SKIP_WALKS` narrow batches are bisected at every edge without a walk first;
        the buckets are the same either way."""
        if not vals:
            return
        # Unset on a sketch made without __init__ (single_value_sketch): walk.
        skip: int = getattr(self, "_walk_skip", 0)
        walk = not skip
        if self._full is not None:
            self._changing()
        else:
            self._lanes = self._cdf = self._bytes = self._view = None
        self._merged = False
        # A plain sum (a C loop) in the callers' order: for a fold of a few hundred values
        # its rounding error is ~1e-14 of the total, and math.fsum's exact sum costs a
        # quarter of add_many. Finite values whose sum is not give an infinite sum, as
        # repeated add() would.
        total = sum(vals, 0.0)
        vals.sort()
        mn = vals[0]
        mx = vals[-1]
        lo = MIN_INDEXABLE
        if mn > lo:  # all positive (durations)
            dense = self._fold_sorted(vals, 1, walk)
        else:
            # The signs are runs of the sorted values: negatives, then zeros, then positives.
            first_pos = bisect_right(vals, lo)
            end_neg = bisect_left(vals, -lo)
            dense = False
            if first_pos < len(vals):
                dense = self._fold_sorted(vals[first_pos:], 1, walk)
            if end_neg:
                mags = list(map(neg, reversed(vals[:end_neg])))
                dense = self._fold_sorted(mags, 3, walk) or dense
            self.zero_count += first_pos - end_neg
        self.count += len(vals)
        self.sum += total
        if mn < self.min:
            self.min = mn
        if mx > self.max:
            self.max = mx
        self._collapse()
        if dense:
            self._walk_skip = _SKIP_WALKS
        elif skip:
            self._walk_skip = skip - 1

    def _fold_sorted(self, mags: list[float], which: int, walk: bool = True) -> bool:
        """Count ``mags`` (magnitudes above :data:`MIN_INDEXABLE`, sorted upwards) in the
        positive (``which`` 1) or negative (3) buckets.

        The occupied buckets are walked (:func:`_walk`): the index of the first value not yet
        counted, then a bisection at the next bucket's edge, so a batch costs a step per
        occupied bucket, however far apart they are (a timer's durations fall in a few
        buckets, with an outlier now and then). A batch whose buckets turn out mostly
        occupied is finished as before: by bisections at every remaining edge (narrow) or
        value by value (wide); so is a narrow batch without ``walk``. Returns whether a
        narrow batch's walk stopped early."""
        k = self._inv_log_gamma
        lg = self._log_gamma
        log = math.log
        ceil = math.ceil
        n = len(mags)
        # The same arithmetic as add(), and monotonic: the lowest and highest index are
        # those of the smallest and largest value.
        low = ceil(log(mags[0]) * k)
        high = ceil(log(mags[-1]) * k)
        narrow = not self._sparse and (high - low) * _EDGES_PER_VALUE < n
        counts: list[int] | None = None
        base = low
        dense_batch = False
        if low == high:
            found, pos = {low: n}, n
        elif narrow:
            found = {}
            dense = self._dense
            run = None
            if dense is not None:
                run_lo, run = (dense[0], dense[1]) if which == 1 else (dense[2], dense[3])
            edges = None if walk else _edges(self.relative_accuracy, k, lg, low + 1, high)
            if edges is not None:
                # In C: how many values lie below each edge, then the differences.
                cuts = list(map(bisect_left, repeat(mags), edges))
                cuts.append(n)
                counts = list(map(sub, cuts, [0, *cuts]))
                pos = n
            elif not walk:  # no edges (too many kept): the values are indexed
                counts = [0] * (high - low + 1)
                pos = 0
            elif run and run_lo <= low and high < run_lo + len(run):
                # Within the dense run (a timer's batches after the first): counted into
                # it in place, as add() counts.
                pos = _walk(mags, k, self._log_gamma, self.relative_accuracy, low, run, run_lo)[1]
                if pos == n:
                    return False
                dense_batch = True
                base = ceil(log(mags[pos]) * k)
                counts = [0] * (high - base + 1)
            else:
                counts = [0] * (high - low + 1)
                pos = _walk(mags, k, self._log_gamma, self.relative_accuracy, low, counts, low)[1]
                dense_batch = pos < n
        elif (ceil(log(mags[(3 * n) >> 2]) * k) - ceil(log(mags[n >> 2]) * k) + 1) * 5 < n:
            # Wide only by its tails (a timer's outliers): the middle half is in few buckets.
            found, pos = _walk(mags, k, self._log_gamma, self.relative_accuracy, low, None)
        else:
            found, pos = {}, 0
        if counts is not None:
            if pos < n:
                # The rest by bisections at each of its edges (in C).
                first = ceil(log(mags[pos]) * k)
                edges = _edges(self.relative_accuracy, k, self._log_gamma, first + 1, high)
                if edges is not None:
                    cuts = list(map(bisect_left, repeat(mags), edges, repeat(pos)))
                    cuts.append(n)
                    counts[first - base :] = map(sub, cuts, [pos, *cuts])
                    pos = n
            if pos == n and self._add_run(which, base, counts):
                return dense_batch
            # Counted in the Counters: the buckets counted so far, the rest value by value.
            found = _dict_of_run(base, counts)
        elif narrow and self._add_run(which, low, [n]):
            return False
        store = self._pos if which == 1 else self._neg
        if which == 1:
            bounds = self._pos_keys
            if not store:
                self._pos_keys = (low, high)
            elif bounds is not None:
                self._pos_keys = (min(bounds[0], low), max(bounds[1], high))
        if found:
            _add_counts(store, found)
        if pos < n:
            # The index of every value left by a chain of C iterators, counted by
            # Counter's C loop.
            store.update(map(ceil, map(mul, map(log, mags[pos:] if pos else mags), repeat(k))))
        return dense_batch

    def _add_run(self, which: int, low: int, counts: list[int]) -> bool:
        """Add ``counts`` (buckets ``low`` upwards) to the dense run of the positive
        (``which`` 1) or negative (3) buckets; ``False`` when the run would be wider than
        :data:`MAX_SPAN` (nothing added then)."""
        dense = self._dense or _EMPTY_DENSE
        run_lo, run = (dense[0], dense[1]) if which == 1 else (dense[2], dense[3])
        n = len(counts)
        start = low - run_lo
        if run and start >= 0 and start + n <= len(run):
            part = run[start : start + n]
            try:
                # In place, as add() counts (the runs are never shared with a reader).
                run[start : start + n] = array(run.typecode, map(add, part, counts))
                return True
            except OverflowError:  # past the count width: a wider array below
                total = list(run)
                total[start : start + n] = map(add, part, counts)
        elif run:
            first = min(run_lo, low)
            width = max(run_lo + len(run), low + n) - first
            if width > MAX_SPAN:
                return False
            total = [0] * width
            at = run_lo - first
            total[at : at + len(run)] = run
            at = low - first
            total[at : at + n] = map(add, total[at : at + n], counts)
            run_lo = first
        else:
            total = counts
            run_lo = low
        wider = _array_of_counts(total)
        if wider is None:  # past 64 bits: the Counters take it
            return False
        self._dense = (
            (run_lo, wider, dense[2], dense[3])
            if which == 1
            else (dense[0], dense[1], run_lo, wider)
        )
        return True

    def merge(self, other: QuantileSketch) -> None:
        """Add ``other``'s counts to this sketch (both must have the same accuracy)."""
        if not math.isclose(other.relative_accuracy, self.relative_accuracy):
            raise ValueError(
                f"cannot merge sketches of relative accuracy {other.relative_accuracy} "
                f"into {self.relative_accuracy}: accuracies must match"
            )
        if other.count == 0:
            return
        if other is self:
            other = self.copy()
        lanes = other._all_lanes()
        if self._full is not None:
            self._changing()
        else:
            self._lanes = self._cdf = self._bytes = self._view = None
        self._merged = True
        if lanes is not None:
            self._take_lanes(lanes, other.count)
        else:
            positive, negative = other._counters()
            self._pos_keys = None
            _add_counts(self._pos, positive)
            if negative:
                _add_counts(self._neg, negative)
        self.zero_count += other.zero_count
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self._collapse()

    def merge_bytes(self, data: bytes) -> None:
        """Merge the sketch serialised in ``data`` (:meth:`to_bytes`) into this one without
        building it first: a query merging thousands of stored sketches skips one object
        per row, and the counts of formats 4 and 5 are added as lanes. Raises ``ValueError`` on
        malformed input or another accuracy."""
        old = False
        try:
            version, accuracy = _HEADER.unpack_from(data, 0)
            pos = _HEADER.size
            count, total, mn, mx, zero = _STATS.unpack_from(data, pos)
            pos += _STATS.size
            if version not in (3, 4, 5):
                old = True
            elif version != 3:
                lanes = _unpack_v4(data, pos, version)
            else:
                n_pos, n_neg, first_pos, first_neg, gaps, counts = _unpack_v3(data, pos)
        except (struct.error, IndexError, zlib.error, ValueError, TypeError) as exc:
            raise ValueError(f"malformed sketch bytes: {exc}") from exc
        if old:  # formats 1 and 2: decoded first (from_bytes raises on malformed bytes)
            self.merge(QuantileSketch.from_bytes(data))
            return
        if accuracy != self.relative_accuracy and not math.isclose(
            accuracy, self.relative_accuracy
        ):
            raise ValueError(
                f"cannot merge sketches of relative accuracy {accuracy} "
                f"into {self.relative_accuracy}: accuracies must match"
            )
        if not count:
            return
        self._changing()
        self._merged = True
        if version != 3:
            self._take_lanes(lanes, count)
        else:
            split = max(n_pos - 1, 0)
            if n_pos:
                self._pos_keys = None
                keys = list(accumulate(gaps[:split], initial=first_pos))
                store = self._pos
                if store:
                    totals = map(add, map(store.get, keys, repeat(0)), counts[:n_pos])
                    dict.update(store, zip(keys, totals, strict=True))
                else:
                    dict.update(store, zip(keys, counts[:n_pos], strict=True))
            if n_neg:
                keys = list(accumulate(gaps[split:], initial=first_neg))
                store = self._neg
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
        pend = self._pend
        if (
            pend is not None  # the common case of a query merging rows: only lanes
            and self._dense is None
            and pend[1].bit_length() <= (MAX_BUCKETS - len(self._pos)) << 6
            and pend[3].bit_length() <= (MAX_BUCKETS - len(self._neg)) << 6
        ):
            return
        if not self._sparse:
            # At most MAX_BUCKETS buckets per sign when the parts together are no longer
            # (bits: 64 per bucket of the lanes).
            dense, pend = self._dense, self._pend
            if dense is None:
                if pend is None:
                    if len(self._pos) <= MAX_BUCKETS and len(self._neg) <= MAX_BUCKETS:
                        return
                elif (
                    pend[1].bit_length() <= (MAX_BUCKETS - len(self._pos)) << 6
                    and pend[3].bit_length() <= (MAX_BUCKETS - len(self._neg)) << 6
                ):
                    return
            dense, pend = dense or _EMPTY_DENSE, pend or _NO_PEND
            n_pos = len(dense[1]) + len(self._pos) + _span(pend[1])
            if n_pos <= MAX_BUCKETS and len(dense[3]) + len(self._neg) + _span(pend[3]) <= (
                MAX_BUCKETS
            ):
                return
            full = self._full_dense()
            if full is not None and all(
                len(c) - c.count(0) <= MAX_BUCKETS for c in (full[1], full[3])
            ):
                return
            # Too many buckets: the lowest are collapsed in the Counters, which keep them.
            self._changing()
            self._to_sparse()
        for store in (self._pos, self._neg):
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

    def _running_totals(self, full: _Dense | None) -> _Totals:
        """The running totals a quantile bisects, kept until the next change (a report asks
        several quantiles of one sketch): per sign, the bucket indices (``None`` for a run
        from ``first``) and the totals, positive buckets upwards and negative ones from the
        most negative value up."""
        if full is not None:
            pos_lo, pos_counts, neg_lo, neg_counts = full
            neg = neg_counts[::-1]
            cdf: _Totals = (
                None,
                pos_lo,
                list(accumulate(pos_counts)),
                None,
                neg_lo + len(neg) - 1,
                list(accumulate(neg)),
            )
        else:  # too wide for runs: the indices sorted
            pos, negs = self._counters()
            pos_keys = sorted(pos)
            neg_keys = sorted(negs, reverse=True)
            cdf = (
                pos_keys,
                0,
                list(accumulate(map(pos.__getitem__, pos_keys))),
                neg_keys,
                0,
                list(accumulate(map(negs.__getitem__, neg_keys))),
            )
        self._cdf = cdf
        return cdf

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
        cdf = self._cdf
        if cdf is None or cdf is _ASKED_ONCE:
            full = self._full_dense()
            if cdf is None and full is not None:
                # The first question since a change: the runs are scanned (a chunk total at
                # a time), the running totals are built when a second one is asked.
                self._cdf = _ASKED_ONCE
                return self._scan(full, rank)
            cdf = self._running_totals(full)
        pos_keys, pos_lo, pos_cum, neg_keys, neg_hi, neg_cum = cdf
        seen = 0
        if neg_cum:
            # The first bucket whose running total passes rank (an empty bucket never does:
            # its total equals the one before it).
            i = bisect_right(neg_cum, rank)
            if i < len(neg_cum):
                value = -self._value(neg_hi - i if neg_keys is None else neg_keys[i])
                # A bucket's midpoint may lie outside what was observed: never report that.
                return min(max(value, self.min), self.max)
            seen = neg_cum[-1]
        seen += self.zero_count
        if seen > rank:
            return min(max(0.0, self.min), self.max)
        # The first bucket whose running total (after the negatives and zeros) passes rank.
        i = bisect_right(pos_cum, rank - seen)
        if i < len(pos_cum):
            index = pos_lo + i if pos_keys is None else pos_keys[i]
            return min(max(self._value(index), self.min), self.max)
        return self.max

    def _scan(self, full: _Dense, rank: float) -> float:
        """:meth:`quantile` without running totals: the same buckets, found by
        :func:`_first_past`."""
        pos_lo, pos_counts, neg_lo, neg_counts = full
        seen = 0
        if neg_counts:
            i = _first_past(neg_counts[::-1], rank)
            if i < len(neg_counts):
                value = -self._value(neg_lo + len(neg_counts) - 1 - i)
                return min(max(value, self.min), self.max)
            seen = _total(neg_counts)
        seen += self.zero_count
        if seen > rank:
            return min(max(0.0, self.min), self.max)
        i = _first_past(pos_counts, rank - seen)
        if i < len(pos_counts):
            return min(max(self._value(pos_lo + i), self.min), self.max)
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
        """A compact binary form, kept until the sketch changes.

        Format 4: count, sum, min, max and the zero count, then each sign's run of buckets
        from its lowest to its highest non-empty index as one count per bucket (empty ones
        as 0), in the fewest bytes per count that hold the largest (one, usually), stored
        byte plane by byte plane (the high planes of wide counts are mostly zero); deflated
        (zlib level 1, raw) from 64 bytes when a quarter of them or more are zero and that
        makes it smaller. The runs are the arrays the sketch counts in, so writing is
        ``array.tobytes()`` and a header; reading back is ``array(bytes)``.
        A sketch whose run is wider than :data:`MAX_SPAN` is written in format 3.
        """
        out = self._bytes
        if out is not None:
            return out
        if (
            self._dense is None
            and self._pend is None
            and len(self._pos) + len(self._neg) <= _FEW
            and not self._sparse
        ):
            # A few buckets only added (a sparse interval, a single value): written from
            # the Counters, with no runs to keep for a next change.
            pos, neg = _run_of(self._pos, self._pos_keys), _run_of(self._neg, None)
            if pos is not None and neg is not None:
                out = self._bytes = self._to_bytes_v4(pos, neg)
                return out
        full = self._full_dense()
        if full is not None:
            out = self._to_bytes_v4(
                _run_of_array(full[0], full[1]), _run_of_array(full[2], full[3])
            )
        else:
            positive, negative = self._counters()
            pos, neg = _run_of(positive, None), _run_of(negative, None)
            out = self._to_bytes_v3() if pos is None or neg is None else self._to_bytes_v4(pos, neg)
        self._bytes = out
        return out

    def _stats(self) -> bytes:
        return _STATS.pack(
            self.count,
            self.sum,
            self.min if self.count else 0.0,
            self.max if self.count else 0.0,
            self.zero_count,
        )

    def _to_bytes_v4(self, pos: _Run, neg: _Run) -> bytes:
        """Format 4, or format 5 when counts wider than a byte sit in runs with few empty
        buckets: deflate gains little on the lowest byte of such counts and costs most of
        the write, so format 5 stores the lowest byte planes as they are and deflates only
        the higher ones (mostly zeros)."""
        version = 4
        packed = False
        plain = b""
        compact = self._merged
        if pos[2] | neg[2] == 1:
            rest = pos[3] + neg[3]
        else:
            compact = False  # format 5 below is smaller than all of it deflated
            low = pos[3][: pos[1]] + neg[3][: neg[1]]
            if low.count(0) * 4 >= len(low):
                rest = pos[3] + neg[3]  # sparse runs: all of it deflated
            else:
                version = 5
                plain = low
                rest = pos[3][pos[1] :] + neg[3][neg[1] :]
        # Runs with few empty buckets (and narrow counts) gain a sixth or so from deflate,
        # which costs more than the rest of the write: a sketch counted by ``add`` (written
        # at every flush) tries it when a quarter of the bytes are zero (sparse runs, the
        # high planes of wide counts), one that merged others (a rollup, written once and
        # kept) whenever it has 64 bytes or more.
        if len(rest) >= _COMPRESS_FROM and (compact or rest.count(0) * 4 >= len(rest)):
            # Raw deflate (no header, no checksum), a 512-byte window and a small memory
            # level: zlib's default state costs more to set up than the payload to deflate.
            # Counts repeat as single bytes, not as strings: Huffman codes alone are smaller
            # than level 1's matches and cost less; the high planes of format 5 are runs of
            # zeros, which run-length matches shrink best.
            strategy = zlib.Z_RLE if version == 5 else zlib.Z_HUFFMAN_ONLY
            z = zlib.compressobj(1, zlib.DEFLATED, -9, 4, strategy)
            deflated = z.compress(rest) + z.flush()
            if len(deflated) < len(rest):
                rest, packed = deflated, True
        return b"".join(
            (
                _HEADER.pack(version, self.relative_accuracy),
                self._stats(),
                _SIZES4.pack(pos[0], pos[1], neg[0], neg[1], pos[2] | neg[2] << 4, packed),
                plain,
                rest,
            )
        )

    def _to_bytes_v3(self) -> bytes:
        """Format 3: each store's first index, then the gaps between indices and the counts
        as arrays of the narrowest unsigned type that holds them, zlib-compressed from 64
        bytes (for sketches too wide for format 4's runs)."""
        positive, negative = self.positive, self.negative
        pos_keys = sorted(+positive)
        neg_keys = sorted(+negative) if negative else []
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
        out += self._stats()
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
            z = zlib.compressobj(1, zlib.DEFLATED, 9, 4)
            out += z.compress(payload)
            out += z.flush()
        else:  # a few buckets: zlib would only add its header, checksum and time
            out += payload
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> QuantileSketch:
        """Inverse of :meth:`to_bytes` (reads every format written so far, 1 to 5). Raises
        ``ValueError`` on malformed input."""
        try:
            version, accuracy = _HEADER.unpack_from(data, 0)
            if version not in (1, 2, 3, 4, 5):
                raise ValueError(f"unknown sketch format version {version}")
            sk = cls(accuracy)
            pos = _HEADER.size
            count, total, mn, mx, zero = _STATS.unpack_from(data, pos)
            pos += _STATS.size
            if version >= 4:
                dense = _unpack_v4_dense(data, pos, version)
                if dense[1] or dense[3]:
                    sk._dense = dense
                # Written by this version: reading back and writing again costs nothing.
                sk._bytes = bytes(data)
            elif version == 1:
                for store in (sk._pos, sk._neg):
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
                    dict.update(sk._pos, zip(pos_idx, counts[:n_pos], strict=True))
                if n_neg:
                    neg_idx = accumulate(gaps[split:], initial=first_neg)
                    dict.update(sk._neg, zip(neg_idx, counts[n_pos:], strict=True))
            else:
                n_pos, n_neg, wide = _SIZES.unpack_from(data, pos)
                payload = zlib.decompress(data[pos + _SIZES.size :])
                keys = array("i")
                keys.frombytes(payload[: 4 * (n_pos + n_neg)])
                counts = array("Q" if wide else "I")
                counts.frombytes(payload[4 * (n_pos + n_neg) :])
                if len(keys) != n_pos + n_neg or len(counts) != n_pos + n_neg:
                    raise ValueError("bucket arrays do not match their sizes")
                sk._pos.update(dict(zip(accumulate(keys[:n_pos]), counts[:n_pos], strict=True)))
                sk._neg.update(dict(zip(accumulate(keys[n_pos:]), counts[n_pos:], strict=True)))
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


def bucket_indices(values: list[float]) -> list[int] | None:
    """Each value's bucket index at the default accuracy, as ``add`` computes it, or
    ``None`` when a value is not above :data:`MIN_INDEXABLE` (zeros and negatives, which
    :meth:`QuantileSketch.add_many` sorts out itself) or the list is empty. A bulk write
    computes a run's indices once for its hourly and daily rollups
    (:func:`indexed_sketch`)."""
    if not values or not min(values) > MIN_INDEXABLE:
        return None
    consts = _CONSTANTS.get(DEFAULT_RELATIVE_ACCURACY)
    if consts is None:
        QuantileSketch()  # (puts the default accuracy's constants in the table)
        consts = _CONSTANTS[DEFAULT_RELATIVE_ACCURACY]
    return list(map(math.ceil, map(mul, map(math.log, values), repeat(consts[2]))))


def indexed_sketch(
    values: list[float],
    indices: list[int],
    lo: float | None = None,
    hi: float | None = None,
) -> QuantileSketch:
    """A sketch of ``values`` at the default accuracy, given their :func:`bucket_indices`:
    equal to (and serialised the same as) ``QuantileSketch()`` followed by
    ``add_many(values)``, without computing the indices again or sorting (an hour's
    rollup of a sparse import: about 3 µs of the 8 that ``add_many`` of 60 values costs).
    ``indices`` must be ``bucket_indices(values)`` (or a slice of it matching ``values``);
    ``lo`` and ``hi``, when given, ``min(values)`` and ``max(values)``."""
    sk = QuantileSketch()
    if not values:
        return sk
    if lo is None or hi is None:
        lo, hi = min(values), max(values)
    # As add_many counts a wide batch: the Counter's C loop, the run's bounds kept (the
    # indices of the extremes: the index grows with the value; a bound that missed one
    # would only make the readers look the indices up).
    sk._pos.update(indices)
    k = sk._inv_log_gamma
    sk._pos_keys = (math.ceil(math.log(lo) * k), math.ceil(math.log(hi) * k))
    sk.count = len(values)
    sk.sum = 0.0 + sum(values, 0.0)  # add_many's sum, in the callers' order
    sk.min = lo
    sk.max = hi
    sk._collapse()
    return sk
