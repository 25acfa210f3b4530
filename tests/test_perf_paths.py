"""Fast paths of issue 13 keep their behaviour: per-call objects, overflow, log levels."""

from __future__ import annotations

import asyncio

import pytest

import sounding
from sounding.collection.boundary import operation_boundary
from sounding.collection.timing import PerformanceTimer
from sounding.exceptions import InvalidTypeError, InvalidValueError
from sounding.testing import ManualClock, MemorySink


def _durations(sink: MemorySink, name: str) -> tuple[int, float | None, float | None]:
    sounding.flush()
    aggs = sink.aggregates(name, {"status": "ok"})
    count = sum(a.count for a in aggs)
    lo = min((a.min for a in aggs if a.min is not None), default=None)
    hi = max((a.max for a in aggs if a.max is not None), default=None)
    return count, lo, hi


def test_timer_per_call_shares_operation_and_times_each_run(
    sink: MemorySink, clock: ManualClock
) -> None:
    """Timers created per call reuse one checked operation, and each run is its own."""
    for ms in (1, 2, 3):
        with PerformanceTimer("t.percall") as timer:
            clock.advance(ms / 1000)
        assert timer.elapsed_ms == pytest.approx(ms)
    assert PerformanceTimer("t.percall")._op is PerformanceTimer("t.percall")._op
    assert PerformanceTimer("t.percall")._op is not PerformanceTimer("t.percall", 5.0)._op
    count, lo, hi = _durations(sink, "t.percall.duration")
    assert count == 3
    assert lo == pytest.approx(1, rel=0.02)
    assert hi == pytest.approx(3, rel=0.02)


def test_timer_cache_still_rejects_misuse() -> None:
    """A cached operation does not let values equal to valid ones (1 for True) through."""
    PerformanceTimer("t.strict", log_result=True)
    PerformanceTimer("t.strict", threshold_ms=1)
    PerformanceTimer("t.strict", tags={"format": "wav"})
    with pytest.raises(InvalidTypeError, match="log_result"):
        PerformanceTimer("t.strict", log_result=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="threshold_ms"):
        PerformanceTimer("t.strict", threshold_ms=True)
    with pytest.raises(InvalidValueError, match="status"):
        PerformanceTimer("t.strict", tags={"status": "ok"})


def test_timer_tags_cached_only_for_str_values(sink: MemorySink) -> None:
    """Tag values that are equal but render differently (1, True) stay separate series."""
    with PerformanceTimer("t.tagged", tags={"n": 1}):
        pass
    with PerformanceTimer("t.tagged", tags={"n": True}):
        pass
    sounding.flush()
    assert sink.count("t.tagged.duration", {"n": "1"}) == 1
    assert sink.count("t.tagged.duration", {"n": "True"}) == 1


def test_boundary_per_call_is_reused_per_settings() -> None:
    """The same name and settings give the same boundary; other settings a new one."""
    first = operation_boundary("t.same")
    assert operation_boundary("t.same") is first
    other = operation_boundary("t.same", reraise=False)
    assert other is not first
    assert operation_boundary("t.same", reraise=False) is other
    assert operation_boundary("t.same", jitter=False) is not other


def test_boundary_cache_still_rejects_misuse() -> None:
    """After a valid boundary is cached, an argument merely equal to it still raises."""
    operation_boundary("t.misuse", retry_on_failure=True)
    with pytest.raises(InvalidTypeError, match="retry_on_failure"):
        operation_boundary("t.misuse", retry_on_failure=1)  # type: ignore[arg-type]
    operation_boundary("t.misuse", max_retries=1)
    with pytest.raises(InvalidTypeError, match="max_retries"):
        operation_boundary("t.misuse", max_retries=True)


def test_boundary_nested_blocks_keep_their_own_start(
    sink: MemorySink, clock: ManualClock
) -> None:
    """Nested blocks of one boundary, and a task created inside them, time themselves."""
    b = operation_boundary("t.nest")

    async def child() -> None:
        with b:
            clock.advance(0.5)

    with b:  # the fast slot
        clock.advance(1)
        with b:  # the context's stack
            clock.advance(2)
            asyncio.run(child())  # inherits the stack: 0.5 s
        clock.advance(3)
    count, lo, hi = _durations(sink, "t.nest.duration")
    assert count == 3
    assert lo == pytest.approx(500, rel=0.02)
    assert hi == pytest.approx(6500, rel=0.02)
    assert sink.total("t.nest.attempts") == 3


def test_boundary_interleaved_tasks_keep_their_own_start(
    sink: MemorySink, clock: ManualClock
) -> None:
    """Two tasks inside one boundary at once (slot and stack) each record their own time."""
    b = operation_boundary("t.tasks")

    async def main() -> None:
        entered = asyncio.Event()
        release_first = asyncio.Event()
        release_second = asyncio.Event()

        async def first() -> None:
            async with b:  # takes the slot at t=0
                entered.set()
                await release_first.wait()

        async def second() -> None:
            await entered.wait()
            clock.advance(1)
            async with b:  # slot taken: its own stack, from t=1
                await release_second.wait()

        tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
        await asyncio.sleep(0.01)
        clock.advance(1)
        release_first.set()  # first ends at t=2: 2 s
        await asyncio.sleep(0.01)
        clock.advance(5)
        release_second.set()  # second ends at t=7: 6 s
        await asyncio.gather(*tasks)

    asyncio.run(main())
    count, lo, hi = _durations(sink, "t.tasks.duration")
    assert count == 2
    assert lo == pytest.approx(2000, rel=0.02)
    assert hi == pytest.approx(6000, rel=0.02)


def test_overflow_path_keeps_existing_series_and_checks_keys(sink: MemorySink) -> None:
    """Past the limit, known series still count as themselves and bad keys are still refused."""
    from sounding.core import health

    sounding.configure(cardinality_limit=3)
    c = sounding.counter("t.over")
    for tier in ("a", "b", "c", "d"):
        c.inc(tags={"tier": tier})
    c.inc(tags={"tier": "a"})  # an existing series, as written
    c.inc(tags={"tier": "x@example.com"})  # new: overflow, never stored as written
    c.inc(tags={"bad key!": "a"})  # an invalid key is still counted as invalid
    sounding.flush()
    assert sink.total("t.over", {"tier": "a"}) == 2
    assert sink.total("t.over", {"overflow": "true"}) == 2
    assert not any("example.com" in str(a.tags) for a in sink.metrics)
    assert health.counts()["metrics.cardinality_overflow"] == 2
    assert health.counts()["metrics.invalid_tags.t.over"] == 1


def test_level_method_kept_in_variable_follows_configure(sink: MemorySink) -> None:
    """A level method looked up once records nothing below the level, then follows configure()."""
    from sounding.collection.log import get_logger

    sounding.configure(log_level="info")
    log = get_logger("t.levels")
    debug = log.debug
    debug("t.hidden", n=1)
    sounding.configure(log_level="debug")
    debug("t.shown", n=2)
    log.info("t.info")
    sounding.flush()
    names = [e["event"] for e in sink.events]
    assert "t.hidden" not in names
    assert "t.shown" in names
    assert "t.info" in names


def test_level_methods_after_reset_read_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a reset the first call reads the settings again (the environment's level here)."""
    from sounding.collection.log import get_logger
    from sounding.testing import capture, reset

    sounding.configure(log_level="error")
    log = get_logger("t.reset")
    reset()
    monkeypatch.setenv("SOUNDING_LOG_LEVEL", "debug")
    with capture() as fresh:
        log.debug("t.after_reset")
        sounding.flush()
    assert [e["event"] for e in fresh.events if e["event"].startswith("t.")] == ["t.after_reset"]


def _snapshots() -> list[sounding.MetricSnapshot]:
    from datetime import datetime, timezone

    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
    out = []
    for i in range(300):
        when = datetime.fromtimestamp(t0 + i * 7, tz=timezone.utc)
        out.append(sounding.MetricSnapshot("histogram", "t.bulk.latency", 1 + i % 17, when,
                                           {"route": f"r{i % 3}"}))  # fmt: skip
        out.append(sounding.MetricSnapshot("counter", "t.bulk.calls", 1, when))
        out.append(sounding.MetricSnapshot("gauge", "t.bulk.queue", i % 5, when, {"q": "a"}))
    return out


def _agg_view(sink: MemorySink) -> list[tuple[object, ...]]:
    sounding.flush()
    return sorted(
        (a.name, a.tags, a.start, a.count, a.sum, a.min, a.max, a.last,
         None if a.sketch is None else a.sketch.to_bytes())
        for a in sink.metrics
        if a.name.startswith("t.bulk")
    )  # fmt: skip


def test_record_many_stores_what_record_does(clock: ManualClock) -> None:
    """record_many gives the same aggregates as calling record for each snapshot."""
    from sounding.testing import capture

    snaps = _snapshots()
    with capture(clock) as one_by_one:
        for s in snaps:
            sounding.record(s)
        expected = _agg_view(one_by_one)
    with capture(clock) as bulk:
        assert sounding.record_many(iter(snaps)) == len(snaps)
        got = _agg_view(bulk)
    assert got == expected
    assert len(got) > 10


def test_record_many_is_all_or_nothing(sink: MemorySink) -> None:
    """An invalid snapshot anywhere raises before anything is recorded."""
    snaps = _snapshots()
    bad = sounding.MetricSnapshot("counter", "t.bulk.calls", -1.0, snaps[0].timestamp)
    with pytest.raises(InvalidValueError, match=r"snapshot\.value"):
        sounding.record_many([*snaps[:50], bad, *snaps[50:]])
    with pytest.raises(InvalidValueError, match=r"snapshot\.value"):
        sounding.record_many([snaps[0], sounding.MetricSnapshot(
            "gauge", "t.bulk.queue", float("nan"), snaps[0].timestamp)])  # fmt: skip
    with pytest.raises(InvalidTypeError, match="snapshot"):
        sounding.record_many([snaps[0], "not a snapshot"])  # type: ignore[list-item]
    assert _agg_view(sink) == []


def test_record_many_checks_tags_once_and_still_redacts(sink: MemorySink) -> None:
    """A personal tag value is redacted in bulk too (the verdict is cached, not skipped)."""
    from datetime import datetime, timezone

    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    snaps = [
        sounding.MetricSnapshot("counter", "t.bulk.users", 1, when, {"user": "ann@example.com"})
        for _ in range(5)
    ]
    sounding.record_many(snaps)
    sounding.flush()
    (agg,) = sink.aggregates("t.bulk.users")
    assert agg.count == 5
    assert "ann@example.com" not in str(agg.tags)


def _format2(sk: object) -> bytes:
    """The bytes the previous release wrote (format 2), to check they stay readable."""
    import struct
    import zlib
    from array import array

    from sounding.core.sketch import QuantileSketch

    assert isinstance(sk, QuantileSketch)
    pos, neg = sorted(sk.positive), sorted(sk.negative)
    deltas = [b - a for a, b in zip([0, *pos], pos, strict=False)]
    deltas += [b - a for a, b in zip([0, *neg], neg, strict=False)]
    counts = [sk.positive[k] for k in pos] + [sk.negative[k] for k in neg]
    out = struct.pack("<Bd", 2, sk.relative_accuracy)
    out += struct.pack("<qdddq", sk.count, sk.sum, sk.min, sk.max, sk.zero_count)
    out += struct.pack("<IIB", len(pos), len(neg), 0)
    return out + zlib.compress(array("i", deltas).tobytes() + array("I", counts).tobytes())


def test_sketch_bytes_round_trip_and_old_format_reads() -> None:
    """Format 3 round-trips negatives, zeros and huge counts; format 2 bytes still read."""
    from sounding.core.sketch import QuantileSketch

    sk = QuantileSketch()
    sk.add_many([-5.0, -0.5, 0.0, 0.25, 3.0, 3.0, 1e6, 1e-12])
    sk.add(42.0, weight=2**40)  # counts past 32 bits
    back = QuantileSketch.from_bytes(sk.to_bytes())
    assert back == sk
    assert back.quantiles([0.0, 0.1, 0.5, 1.0]) == sk.quantiles([0.0, 0.1, 0.5, 1.0])
    old = QuantileSketch()
    old.add_many([0.5 + i / 10 for i in range(200)])
    assert QuantileSketch.from_bytes(_format2(old)) == old
    empty = QuantileSketch()
    assert QuantileSketch.from_bytes(empty.to_bytes()) == empty
    with pytest.raises(ValueError, match="malformed"):
        QuantileSketch.from_bytes(sk.to_bytes()[:-4])


def test_sketch_quantile_follows_later_changes() -> None:
    """A quantile read caches the sorted buckets; adding and merging invalidate them."""
    from sounding.core.sketch import QuantileSketch

    sk = QuantileSketch()
    sk.add_many([1.0] * 10)
    assert sk.quantile(0.5) == pytest.approx(1.0, rel=0.01)
    sk.add(100.0, weight=30)
    assert sk.quantile(0.5) == pytest.approx(100.0, rel=0.01)
    other = QuantileSketch()
    other.add_many([5.0] * 100)
    sk.merge(other)
    assert sk.quantile(0.5) == pytest.approx(5.0, rel=0.01)
    sk.add_many([7.0] * 500)
    assert sk.quantile(0.5) == pytest.approx(7.0, rel=0.01)


def test_health_tally_counts_without_a_lock_and_rebases_on_reset() -> None:
    """A hot-path tally adds to health.counts() from many threads; reset() starts it at 0."""
    import threading

    from sounding.core import health

    health.reset()
    hit = health.tally("test.tally")
    assert health.tally("test.tally") == hit  # one counter per kind
    health.count("test.tally", 2)

    def work() -> None:
        for _ in range(5000):
            hit()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert health.counts()["test.tally"] == 20002
    health.reset()
    assert "test.tally" not in health.counts()
    hit()
    assert health.counts()["test.tally"] == 1
    health.reset()


def test_overflow_after_the_limit_keeps_every_increment(sink: MemorySink) -> None:
    """Many new tag values past the limit all land in the one overflow series, counted."""
    from sounding.core import health

    sounding.configure(cardinality_limit=2)
    c = sounding.counter("t.over2")
    h = sounding.histogram("t.over2h")
    for i in range(50):
        c.inc(2, {"tier": f"v{i}"})
        h.observe(float(i), {"tier": f"v{i}"})
    sounding.flush()
    assert sink.total("t.over2", {"overflow": "true"}) == 2 * (50 - 2)
    assert sum(a.count for a in sink.aggregates("t.over2h", {"overflow": "true"})) == 48
    assert health.counts()["metrics.cardinality_overflow"] == 2 * 48


def test_remembered_tags_follow_a_mutated_dict_and_alternation(sink: MemorySink) -> None:
    """A tags dict changed after a call, and tags alternating, still count in their series."""
    c = sounding.counter("t.last")
    h = sounding.histogram("t.last_h")
    tags = {"tier": "a"}
    c.inc(1, tags)
    tags["tier"] = "b"  # the same dict object, now another series
    c.inc(2, tags)
    for i in range(40):  # alternating and runs longer than the remembering threshold
        c.inc(1, {"tier": "a" if i % 2 else "b"})
        c.inc(1, {"tier": "c"} if i < 20 else {"tier": "a"})
        h.observe(float(i), {"tier": "a" if i < 30 else "b"})
    c.inc(1, {})  # an empty dict is the untagged series
    sounding.flush()
    assert sink.total("t.last", {"tier": "a"}) == 1 + 20 + 20
    assert sink.total("t.last", {"tier": "b"}) == 2 + 20
    assert sink.total("t.last", {"tier": "c"}) == 20
    assert sink.total("t.last") == 41 + 22 + 20 + 1  # and 1 untagged
    assert sink.count("t.last_h", {"tier": "a"}) == 30
    assert sink.count("t.last_h", {"tier": "b"}) == 10


def test_overflow_index_keeps_known_series_and_resets_with_the_limit(sink: MemorySink) -> None:
    """Past the limit known values count in their series, new ones and non-str ones overflow,
    and a raised limit makes new series again."""
    from sounding.core import health

    sounding.configure(cardinality_limit=3)
    c = sounding.counter("t.spill")
    h = sounding.histogram("t.spill_h")
    for tier in ("a", "b", "c", "d", "e"):
        c.inc(tags={"tier": tier})
        h.observe(1.0, {"tier": tier})
    for _ in range(3):
        c.inc(tags={"tier": "b"})  # known, through the overflow index
        c.inc(tags={"tier": "z"})  # new: overflow
        h.observe(2.0, {"tier": "a"})
        h.observe(2.0, {"tier": "y"})
    c.inc(tags={"tier": 5})  # not a str: the full checks (overflow as well)
    sounding.configure(cardinality_limit=10)
    c.inc(tags={"tier": "f"})  # room again: a series of its own
    sounding.flush()
    assert sink.total("t.spill", {"tier": "b"}) == 4
    assert sink.total("t.spill", {"tier": "f"}) == 1
    assert sink.total("t.spill", {"overflow": "true"}) == 2 + 3 + 1
    assert sink.count("t.spill_h", {"tier": "a"}) == 4
    assert sink.count("t.spill_h", {"overflow": "true"}) == 2 + 3
    assert health.counts()["metrics.cardinality_overflow"] == 2 + 3 + 1 + 2 + 3
