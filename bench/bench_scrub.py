"""Benchmark: the cost of scrubbing, next to the cost of a stdlib logging call.

``scrub_text`` runs on every log event, so a message without personal data must be cheap.
This prints ns per call for clean messages, for messages with personal data, for ``scrub``
of a typical event dict, and, for context, a stdlib ``logging`` call that formats a record
and writes it to an in-memory stream, all in the same run.

Run: ``python bench/bench_scrub.py``
"""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

# Measure this checkout's code, not whatever sounding is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, best_ns_per_op, print_table
from sounding.collection.scrub import scrub, scrub_text

CLEAN = [
    "recorder.export.duration took 12.5ms for 3 files (format=wav, status=ok) in worker 2",
    "Connection pool exhausted after 30s; retrying request 4/5 to the upstream service",
    "ValueError: Expecting value: line 1 column 1 (char 0) in json/decoder.py line 337",
    "session 550e8400-e29b-41d4-a716-446655440000 started at 2024-01-15T12:30:45Z (3.11.7)",
]
PERSONAL = [
    "login failed for alice.smith@example.com from 10.1.2.3:5432 after 3 attempts",
    "cannot read /home/alice/.config/recorder/settings.toml: permission denied",
    "GET https://bob:hunter2@api.example.com/v1/items?access_token=abc123&page=2",
    "charge declined for card 4111 1111 1111 1111 (Authorization: Bearer eyJhbGciOi.x.y)",
]
EVENT = {
    "timestamp": 1700000000.123,
    "level": "info",
    "category": "export",
    "event": "export.finished",
    "session_id": "550e8400-e29b-41d4-a716-446655440000",
    "message": "exported 3 files in 12.5ms",
    "format": "wav",
    "path": "recordings/2024-01-15/take-3.wav",
    "duration_ms": 12.5,
    "context": {"app_version": "1.4.2", "platform": "linux", "worker": 2},
}


def _stdlib_logger() -> logging.Logger:
    logger = logging.getLogger("bench.scrub.peer")
    logger.handlers.clear()
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def _mean_ns(messages: list[str], number: int) -> float:
    return sum(best_ns_per_op(lambda m=m: scrub_text(m), number=number) for m in messages) / len(
        messages
    )


def main() -> None:
    """Measure and print the table."""
    logger = _stdlib_logger()
    log_ns = best_ns_per_op(
        lambda: logger.info("exported %d files in %.1fms", 3, 12.5), number=20_000
    )
    peers = {"stdlib logging call": log_ns}
    rows = [
        Row("scrub_text, clean ~80-char message", _mean_ns(CLEAN, 50_000), dict(peers)),
        Row("scrub_text, message with personal data", _mean_ns(PERSONAL, 10_000), dict(peers)),
        Row(
            "scrub, 10-field event dict",
            best_ns_per_op(lambda: scrub(EVENT), number=10_000),
            dict(peers),
        ),
    ]
    for message in CLEAN:
        rows.append(
            Row(
                f"  clean: {message[:30]}...",
                best_ns_per_op(lambda m=message: scrub_text(m), number=50_000),
                dict(peers),
            )
        )
    print_table("Scrubbing cost next to a stdlib logging call", rows)


if __name__ == "__main__":
    main()
