"""Prometheus remote-write 1.0: protobuf ``WriteRequest``, raw (block) snappy, 1.0 headers.

Counters leave as running totals per series (the store keeps per-interval deltas; the totals
sent so far are kept with the destination's cursor, so they continue across runs);
gauges as their last value; histograms and summaries as classic cumulative ``le`` buckets
on one fixed grid derived from the sketch's boundaries (see :class:`BucketGrid`), plus
``_sum`` and ``_count``. Samples are stamped at the end of their interval, so sending an
interval again gives the same samples.

>>> from sounding.exporters import RemoteWriteExporter
>>> exp = RemoteWriteExporter("http://127.0.0.1:9090/api/v1/write", instance="a1b2c3")
>>> exp.destination
'remote-write http://127.0.0.1:9090/api/v1/write instance=a1b2c3'
"""

from __future__ import annotations

import math
import struct
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sounding.core.config import get_settings
from sounding.core.exceptions import InvalidValueError
from sounding.core.sketch import QuantileSketch
from sounding.core.types import MetricType
from sounding.exporters._common import AUTO, check_common, group_intervals, policy
from sounding.exporters._convert import BucketGrid, LabelPolicy, base_unit, labels_key, metric_name
from sounding.exporters.base import Payload, Transport
from sounding.storage.outbox import Interval, RunningTotal

__all__ = ["RemoteWriteExporter", "decode_write_request", "encode_write_request", "snappy_raw"]

#: The remote-write 1.0 request headers (the body's encoding and the protocol version).
HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": "sounding-remote-write",
}
_DOUBLE = struct.Struct("<d")
_TAGGED_DOUBLE = struct.Struct("<Bd")

Series = dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]


class RemoteWriteExporter:
    """Pushes the store's closed intervals to a Prometheus remote-write endpoint.

    ``instance`` labels every series: :data:`AUTO` (default) is this install's random
    pseudonymous id, a string is used as given, ``None`` sends no instance label (for a
    gateway that aggregates). ``tags`` is the allowlist of tag keys (default: every tag the
    metric carries, which are its declared tags plus app version and platform).
    ``bucket_range`` (in the metric's unit) and ``bucket_step`` set the fixed ``le`` grid:
    keep them equal on every install of an application. ``histogram_format="vmrange"``
    sends VictoriaMetrics' sparse ``vmrange`` buckets instead of ``le`` (only the ranges that
    hold observations: far fewer series; VictoriaMetrics only); ``"native"`` sends Prometheus
    native histograms (schema 6; needs ``--enable-feature=native-histograms``, and Prometheus
    2.42 accepts them only for recent data, not back-fill). ``le`` buckets are sent from
    the empty boundary just below the lowest bucket that holds values up to ``+Inf``: the
    cumulative duplicates above the data must stay, or a ``sum by (le)`` across installs or
    tags misses their counts (see docs/fleet.md).
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        instance: Any = AUTO,
        tags: Collection[str] | None = None,
        job: str | None = None,
        bucket_range: tuple[float, float] = (0.01, 60_000.0),
        bucket_step: int = 2,
        histogram_format: str = "le",
        timeout: float = 10.0,
        include_internal: bool = False,
        transport: Transport | None = None,
    ) -> None:
        self.url, self.headers, self.timeout, self.transport = check_common(
            url, headers, timeout, transport
        )
        if not isinstance(bucket_range, (tuple, list)) or len(bucket_range) != 2:
            raise InvalidValueError(
                "bucket_range", bucket_range, "a pair (low, high), 0 < low < high"
            )
        self.grid = BucketGrid(float(bucket_range[0]), float(bucket_range[1]), bucket_step)
        if histogram_format not in ("le", "vmrange", "native"):
            raise InvalidValueError(
                "histogram_format",
                histogram_format,
                "'le' (any engine), 'vmrange' (VictoriaMetrics) or 'native' (Prometheus with "
                "native histograms, live data only)",
            )
        self.histogram_format = histogram_format
        self._instance = instance
        self._tags = tags
        self._job = job
        self._policy: LabelPolicy | None = None
        self._policy_for: tuple[object, ...] = ()
        self.include_internal = bool(include_internal)
        # Validate now (definition time), resolve the install id lazily.
        policy(instance if instance is not AUTO else None, tags, job)
        self._le_cache: dict[float, list[str]] = {}

    @property
    def policy(self) -> LabelPolicy:
        """The labels policy (the install id is read on first use)."""
        # Resolved when used, against the settings then in force (the install id lives in
        # the data dir, the default job is the app name).
        settings = get_settings()
        key = (settings.data_dir, settings.app_name)
        if self._policy is None or self._policy_for != key:
            job = self._job if self._job is not None else settings.app_name
            self._policy = policy(self._instance, self._tags, job)
            self._policy_for = key
        return self._policy

    @property
    def destination(self) -> str:
        """``remote-write URL instance=ID``: the cursor key."""
        return f"remote-write {self.url} instance={self.policy.instance or '-'}"

    def __repr__(self) -> str:
        return f"RemoteWriteExporter({self.url!r})"

    def _le(self, factor: float) -> list[str]:
        les = self._le_cache.get(factor)
        if les is None:
            les = self._le_cache[factor] = self.grid.le_labels(factor)
        return les

    def encode(
        self, intervals: Sequence[Interval], totals: Mapping[str, RunningTotal]
    ) -> tuple[Payload, dict[str, RunningTotal]]:
        """One ``WriteRequest`` for ``intervals``; returns it and the updated running totals."""
        pol = self.policy
        series: Series = {}
        updates: dict[str, RunningTotal] = {}
        sketches: dict[str, QuantileSketch] = {}
        bucket_keys: dict[str, list[tuple[tuple[str, str], ...]]] = {}
        natives: dict[tuple[tuple[str, str], ...], list[bytes]] = {}
        for (name, mtype_s, labels), end, parts in group_intervals(
            intervals, pol.labels, self.include_internal
        ):
            mtype = MetricType(mtype_s)
            unit = parts[0].unit
            _, factor = base_unit(unit)
            prom = metric_name(name, mtype, unit)
            ts = round(end * 1000)
            key = labels_key(prom, labels)
            if mtype is MetricType.GAUGE:
                last = next((p.last for p in reversed(parts) if p.last is not None), None)
                if last is None:
                    cnt = sum(p.count for p in parts)
                    last = sum(p.sum for p in parts) / cnt if cnt else None
                if last is not None:
                    series.setdefault((("__name__", prom), *labels), []).append(
                        (ts, float(last) * factor)
                    )
                continue
            prev = updates.get(key) or totals.get(key) or RunningTotal()
            total = RunningTotal(
                prev.count + sum(p.count for p in parts),
                prev.sum + sum(p.sum for p in parts),
                prev.sketch,
            )
            if mtype is MetricType.COUNTER:
                updates[key] = total
                series.setdefault((("__name__", prom), *labels), []).append(
                    (ts, total.sum * factor)
                )
                continue
            sk = sketches.get(key)
            if sk is None:
                sk = (
                    QuantileSketch.from_bytes(prev.sketch)
                    if prev.sketch is not None
                    else QuantileSketch()
                )
                sketches[key] = sk
            for p in parts:
                if p.sketch is not None:
                    sk.merge(QuantileSketch.from_bytes(p.sketch))
            updates[key] = total
            if self.histogram_format == "native":
                natives.setdefault((("__name__", prom), *labels), []).append(
                    native_histogram(sk, total, factor, ts)
                )
                continue
            if self.histogram_format == "vmrange":
                keys = bucket_keys.get(key)
                if keys is None:
                    bucket = ("__name__", prom + "_bucket")
                    keys = bucket_keys[key] = [
                        (bucket, *_with_label(labels, "vmrange", r))
                        for r in self.grid.vmranges(factor)
                    ]
                for k, c in zip(keys, self.grid.slots(sk), strict=True):
                    if c:
                        got = series.get(k)
                        if got is None:
                            got = series[k] = []
                        got.append((ts, float(c)))
                _sum_count(series, prom, labels, ts, total, factor)
                continue
            first, cum = self.grid.cumulative(sk)
            keys = bucket_keys.get(key)
            if keys is None:
                bucket = ("__name__", prom + "_bucket")
                keys = bucket_keys[key] = [
                    (bucket, *_with_le(labels, le)) for le in self._le(factor)
                ]
            for k, c in zip(keys[first:], cum, strict=True):
                got = series.get(k)
                if got is None:
                    got = series[k] = []
                got.append((ts, float(c)))
            _sum_count(series, prom, labels, ts, total, factor)
        for key, sk in sketches.items():
            updates[key].sketch = sk.to_bytes()
        raw = encode_write_request(series, natives)
        n = sum(len(v) for v in series.values()) + sum(len(v) for v in natives.values())
        payload = Payload(
            body=snappy_raw(raw),
            headers={**HEADERS, **self.headers},
            samples=n,
            changed=tuple(updates),
            text=_describe(series),
        )
        return payload, updates


def _with_le(labels: tuple[tuple[str, str], ...], le: str) -> tuple[tuple[str, str], ...]:
    return _with_label(labels, "le", le)


def _with_label(
    labels: tuple[tuple[str, str], ...], key: str, value: str
) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((*labels, (key, value))))


def _sum_count(
    series: Series,
    prom: str,
    labels: tuple[tuple[str, str], ...],
    ts: int,
    total: RunningTotal,
    factor: float,
) -> None:
    series.setdefault((("__name__", prom + "_sum"), *labels), []).append((ts, total.sum * factor))
    series.setdefault((("__name__", prom + "_count"), *labels), []).append((ts, float(total.count)))


def _describe(series: Series, limit: int = 200) -> str:
    lines = []
    for labels, samples in list(series.items())[:limit]:
        name = labels[0][1]
        rest = ",".join(f'{k}="{v}"' for k, v in labels[1:])
        for ts, v in samples[-1:]:
            lines.append(f"{name}{{{rest}}} {v:g} {ts}  ({len(samples)} samples)")
    if len(series) > limit:
        lines.append(f"... and {len(series) - limit} more series")
    return "\n".join(lines)


# -- protobuf, by hand: four tiny messages are not worth a code generator ----------------
def _varint(n: int, out: bytearray) -> None:
    n &= 0xFFFFFFFFFFFFFFFF
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _field_bytes(tag: int, data: bytes, out: bytearray) -> None:
    out.append(tag)
    _varint(len(data), out)
    out += data


def encode_write_request(
    series: Series, natives: Mapping[tuple[tuple[str, str], ...], list[bytes]] | None = None
) -> bytes:
    """``prometheus.WriteRequest`` bytes for ``{sorted labels: [(ms, value)]}`` plus native
    histograms (``{labels: [encoded prometheus.Histogram]}``)."""
    natives = natives or {}
    if natives:
        series = {**series, **{k: series.get(k, []) for k in natives}}
    out: list[bytes] = []
    label_cache: dict[tuple[str, str], bytes] = {}
    # (sample field header, timestamp field) per timestamp: a batch has few instants.
    ts_cache: dict[int, tuple[bytes, bytes]] = {}
    pack = _TAGGED_DOUBLE.pack
    for labels, samples in series.items():
        parts: list[bytes] = []
        for pair in sorted(labels):
            enc = label_cache.get(pair)
            if enc is None:
                lb = bytearray()
                _field_bytes(0x0A, pair[0].encode(), lb)
                _field_bytes(0x12, pair[1].encode(), lb)
                hdr = bytearray()
                _field_bytes(0x0A, bytes(lb), hdr)
                enc = label_cache[pair] = bytes(hdr)
            parts.append(enc)
        for t, v in samples:
            cached = ts_cache.get(t)
            if cached is None:
                tail = bytearray(b"\x10")
                _varint(t, tail)
                cached = ts_cache[t] = (bytes((0x12, 9 + len(tail))), bytes(tail))
            parts.append(cached[0])
            parts.append(pack(0x09, v))
            parts.append(cached[1])
        for h in natives.get(labels, ()):
            hb = bytearray()
            _field_bytes(0x22, h, hb)
            parts.append(bytes(hb))
        body = b"".join(parts)
        hdr = bytearray(b"\x0a")
        _varint(len(body), hdr)
        out.append(bytes(hdr))
        out.append(body)
    return b"".join(out)


#: Native histogram schema: base ``2 ** (2 ** -6)``, about 1.1 % wide buckets (finer than the
#: sketch's 2 %, so re-bucketing adds at most about 1 %).
NATIVE_SCHEMA = 6


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


def _spans(counts: dict[int, int]) -> tuple[bytes, bytes]:
    """(encoded BucketSpan messages, packed zigzag deltas) for ``{index: count}``."""
    spans = bytearray()
    deltas = bytearray()
    prev_index: int | None = None
    prev_count = 0
    span_start = span_len = 0
    items = sorted(counts.items())

    def close(offset: int, length: int) -> None:
        msg = bytearray(b"\x08")
        _varint(_zigzag(offset) & 0xFFFFFFFF, msg)
        msg.append(0x10)
        _varint(length, msg)
        _field_bytes(0x5A, bytes(msg), spans)

    last_end = 0
    for idx, c in items:
        if prev_index is None:
            span_start, span_len = idx, 1
        elif idx == prev_index + 1:
            span_len += 1
        else:
            close(span_start - last_end, span_len)
            last_end = span_start + span_len
            span_start, span_len = idx, 1
        _varint(_zigzag(c - prev_count), deltas)
        prev_index, prev_count = idx, c
    if prev_index is not None:
        close(span_start - last_end, span_len)
    return bytes(spans), bytes(deltas)


def native_histogram(sketch: QuantileSketch, total: RunningTotal, factor: float, ts: int) -> bytes:
    """A ``prometheus.Histogram`` (integer counts, schema 6) of the running ``sketch``.

    Each sketch bucket goes to the native bucket holding its representative value; zero and
    negative values go to the zero bucket (durations and sizes are not negative).
    """
    k = 2.0**NATIVE_SCHEMA
    counts: dict[int, int] = {}
    for j, c in sketch.positive.items():
        v = 2.0 * sketch.gamma**j / (sketch.gamma + 1.0) * factor
        idx = math.ceil(math.log2(v) * k)
        counts[idx] = counts.get(idx, 0) + c
    zero = sketch.zero_count + sum(sketch.negative.values())
    out = bytearray(b"\x08")
    _varint(total.count, out)
    out.append(0x19)
    out += _DOUBLE.pack(total.sum * factor)
    out.append(0x20)
    _varint(_zigzag(NATIVE_SCHEMA), out)
    out.append(0x29)
    out += _DOUBLE.pack(1e-9 * factor if factor else 1e-9)
    out.append(0x30)
    _varint(zero, out)
    spans, deltas = _spans(counts)
    out += spans
    if deltas:
        _field_bytes(0x62, deltas, out)
    out.append(0x78)
    _varint(ts, out)
    return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = n = 0
    while True:
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, Any]]:
    pos = 0
    out: list[tuple[int, Any]] = []
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, pos = _read_varint(data, pos)
            out.append((num, v))
        elif wire == 1:
            out.append((num, _DOUBLE.unpack_from(data, pos)[0]))
            pos += 8
        elif wire == 2:
            n, pos = _read_varint(data, pos)
            out.append((num, data[pos : pos + n]))
            pos += n
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def decode_write_request(data: bytes) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
    """The inverse of :func:`encode_write_request` (uncompressed bytes), for tests and echo."""
    out: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]] = {}
    for num, ts in _fields(data):
        if num != 1:
            continue
        labels: list[tuple[str, str]] = []
        samples: list[tuple[int, float]] = []
        for f, v in _fields(ts):
            if f == 1:
                kv = dict(_fields(v))
                labels.append((kv.get(1, b"").decode(), kv.get(2, b"").decode()))
            elif f == 2:
                sv = dict(_fields(v))
                t = int(sv.get(2, 0))
                if t >= 1 << 63:
                    t -= 1 << 64
                samples.append((t, float(sv.get(1, 0.0))))
        out[tuple(labels)] = samples
    return out


def snappy_raw(data: bytes) -> bytes:
    """Raw (block) snappy, as remote-write requires: cramjam when installed (the
    ``prometheus`` extra), else a valid literal-only block (no compression)."""
    try:
        import cramjam
    except ImportError:
        return _snappy_literal(data)
    return bytes(cramjam.snappy.compress_raw(data))


def _snappy_literal(data: bytes) -> bytes:
    out = bytearray()
    _varint(len(data), out)
    for i in range(0, len(data), 65536):
        chunk = data[i : i + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 256:
            out += bytes((60 << 2, n))
        else:
            out += bytes((61 << 2, n & 0xFF, n >> 8))
        out += chunk
    return bytes(out)


def snappy_decompress(data: bytes) -> bytes:
    """Decompress a raw snappy block (tests and echo; pure Python, no extra needed)."""
    size, pos = _read_varint(data, 0)
    out = bytearray()
    while pos < len(data):
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:
            n = tag >> 2
            if n >= 60:
                extra = n - 59
                n = int.from_bytes(data[pos : pos + extra], "little")
                pos += extra
            n += 1
            out += data[pos : pos + n]
            pos += n
            continue
        if kind == 1:
            length = 4 + ((tag >> 2) & 7)
            offset = ((tag >> 5) << 8) | data[pos]
            pos += 1
        elif kind == 2:
            length = (tag >> 2) + 1
            offset = int.from_bytes(data[pos : pos + 2], "little")
            pos += 2
        else:
            length = (tag >> 2) + 1
            offset = int.from_bytes(data[pos : pos + 4], "little")
            pos += 4
        if offset == 0 or offset > len(out):
            raise ValueError("corrupt snappy block: bad copy offset")
        start = len(out) - offset
        for k in range(length):  # copies may overlap their own output
            out.append(out[start + k])
    if len(out) != size:
        raise ValueError(f"corrupt snappy block: {len(out)} bytes, header says {size}")
    return bytes(out)
