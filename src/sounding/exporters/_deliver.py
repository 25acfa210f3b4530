"""Delivery: read after the cursor, encode, post, classify the answer, advance the cursor.

At least once: the cursor (and the running totals) move only after the server acknowledged
a batch (2xx), in one transaction, so a crash re-sends at most the batch in flight, with the
same timestamps; acknowledged data is never sent again (VictoriaMetrics would keep both
copies). Bounded everywhere:

- a batch holds at most ``batch_size`` intervals (whole instants);
- a failed request (no answer, 429, 5xx) is retried ``max_attempts`` times with exponential
  backoff and jitter, never past ``deadline``; then delivery stops until the next cycle and
  the data stays for later;
- a request the server refuses for good (4xx other than 429, or Prometheus' 500 "too old
  sample" / "out of bounds" for history older than its window) is counted as refused and
  skipped, so one bad batch cannot block a destination forever;
- history further behind than ``max_backlog`` seconds is skipped and counted.

Every refused or skipped interval is counted (``export.refused``, ``export.backlog_dropped``
health counters and the destination's row), so ``sounding status`` shows it.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sounding.core import health
from sounding.core.clock import get_clock
from sounding.exporters.base import Exporter, Payload, Response
from sounding.storage import _db
from sounding.storage.outbox import CursorState, ExportCursors, RunningTotal, read_intervals

__all__ = ["DeliveryReport", "deliver", "is_permanent"]

#: Prometheus' answers for samples outside its window: retrying them never succeeds.
_TOO_OLD = ("too old sample", "out of bounds", "out of order sample", "duplicate sample")


@dataclass
class DeliveryReport:
    """What one delivery run did."""

    destination: str
    requests: int = 0
    batches: int = 0
    intervals: int = 0
    samples: int = 0
    refused_samples: int = 0
    refused_batches: int = 0
    backlog_dropped: int = 0
    failures: int = 0
    #: why it stopped: "done", "failed", "deadline", "dry-run"
    stopped: str = "done"
    last_error: str | None = None
    errors: list[str] = field(default_factory=list)
    position: float | None = None


def is_permanent(resp: Response) -> bool:
    """True when re-sending the same request cannot succeed (count it and move on)."""
    if 400 <= resp.status < 500 and resp.status != 429:
        return True
    return resp.status == 500 and any(s in resp.body.lower() for s in _TOO_OLD)


def _post(
    exporter: Exporter,
    payload: Payload,
    *,
    max_attempts: int,
    backoff: float,
    deadline: float | None,
    sleep: Callable[[float], None],
) -> tuple[Response, int]:
    resp = Response(0, "not sent")
    attempts = 0
    for attempt in range(max_attempts):
        timeout = exporter.timeout
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0.05:
                break
            timeout = min(timeout, left)
        attempts += 1
        try:
            resp = exporter.transport.post(exporter.url, payload.body, payload.headers, timeout)
        except Exception as exc:  # a custom transport that raises counts as no answer
            resp = Response(0, f"{type(exc).__name__}: {exc}")
        if 200 <= resp.status < 300 or is_permanent(resp):
            return resp, attempts
        if attempt + 1 < max_attempts:
            delay = min(backoff * 2**attempt, 30.0) * (0.5 + random.random() / 2)
            if deadline is not None:
                delay = min(delay, max(deadline - time.monotonic() - 0.05, 0.0))
            if delay > 0:
                sleep(delay)
    return resp, attempts


def deliver(
    exporter: Exporter,
    conn: sqlite3.Connection,
    *,
    since: float,
    until: float | None = None,
    batch_size: int = 2000,
    max_attempts: int = 3,
    backoff: float = 0.5,
    max_backlog: float | None = None,
    deadline: float | None = None,
    dry_run: Callable[[Payload], None] | None = None,
    progress: Callable[[DeliveryReport, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryReport:
    """Send what the store holds for ``exporter`` after its cursor, up to ``until``.

    ``since`` is where a destination with no cursor starts. ``deadline`` is a
    ``time.monotonic()`` value the run never passes. ``dry_run`` receives each payload
    instead of sending it (nothing is recorded). ``progress(report, position)`` is called
    after every batch. Never raises for network or server trouble.
    """
    cursors = ExportCursors(conn)
    state: CursorState = cursors.get(exporter.destination, start=since)
    report = DeliveryReport(exporter.destination, position=state.position)
    end = get_clock().time() if until is None else until
    if max_backlog is not None and state.position < end - max_backlog:
        skip_to = end - max_backlog
        fine = _db.fine_resolutions(conn) or [_db.HOUR]
        marks = ",".join("?" * len(fine))
        (n,) = conn.execute(
            f"SELECT count(*) FROM points WHERE resolution IN ({marks}) "
            "AND bucket_start > ? AND bucket_start <= ?",
            (*fine, state.position, skip_to),
        ).fetchone()
        if n and dry_run is None:
            report.backlog_dropped += int(n)
            health.count("export.backlog_dropped", int(n))
            cursors.advance(state, skip_to, samples=0, refused=int(n), changed=())
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            report.stopped = "deadline"
            break
        rows, pos = read_intervals(conn, state.position, end, batch_size)
        if pos is None:
            break
        payload: Payload
        updates: dict[str, RunningTotal]
        payload, updates = exporter.encode(rows, state.totals)
        report.batches += 1
        report.intervals += len(rows)
        if dry_run is not None:
            dry_run(payload)
            state.totals.update(updates)
            state.position = pos
            report.samples += payload.samples
            report.position = pos
            report.stopped = "dry-run"
            if progress is not None:
                progress(report, pos)
            continue
        if payload.samples == 0:
            cursors.advance(state, pos, samples=0, refused=0, changed=())
            report.position = pos
            continue
        resp, attempts = _post(
            exporter,
            payload,
            max_attempts=max_attempts,
            backoff=backoff,
            deadline=deadline,
            sleep=sleep,
        )
        report.requests += attempts
        if 200 <= resp.status < 300:
            state.totals.update(updates)
            cursors.advance(state, pos, samples=payload.samples, refused=0, changed=updates)
            report.samples += payload.samples
        elif is_permanent(resp):
            # Counted and skipped: the totals move on too, so later totals stay consistent.
            err = f"HTTP {resp.status}: {resp.body.strip()[:300]}"
            state.totals.update(updates)
            cursors.advance(
                state, pos, samples=0, refused=payload.samples, changed=updates, error=err
            )
            health.count("export.refused", payload.samples)
            report.refused_samples += payload.samples
            report.refused_batches += 1
            report.last_error = err
            if len(report.errors) < 5:
                report.errors.append(err)
        else:
            err = f"HTTP {resp.status}: {resp.body.strip()[:300]}" if resp.status else resp.body
            cursors.failed(state, err)
            health.count("export.failed")
            report.failures += 1
            report.last_error = err
            report.stopped = "failed"
            break
        report.position = pos
        if progress is not None:
            progress(report, pos)
    return report
