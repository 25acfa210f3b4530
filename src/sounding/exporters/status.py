"""What ``sounding status`` says about exporters: what is sent where, and what was lost."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sounding.core.config import Settings
from sounding.storage.outbox import ExportCursors
from sounding.storage.times import iso

__all__ = ["exporter_status"]


def exporter_status(settings: Settings, data_dir: Path) -> dict[str, Any]:
    """Configured destinations, whether they send now, and each destination's counters."""
    from sounding.exporters._worker import build_exporters, sending_allowed

    configured: list[str] = []
    try:
        configured = [e.destination for e in build_exporters(settings.exporters)]
    except Exception as exc:
        configured = [f"invalid exporters setting: {exc}"]
    allowed = sending_allowed(settings)
    dests: list[dict[str, Any]] = []
    store = data_dir / "telemetry.db"
    if store.exists():
        try:
            conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
            try:
                has = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE name = 'export_cursor'"
                ).fetchone()
                states = ExportCursors.read_only(conn) if has else []
            finally:
                conn.close()
        except sqlite3.Error:
            states = []
        for s in states:
            dests.append(
                {
                    "destination": s.destination,
                    "delivered_until": iso(s.position) if s.position > 0 else None,
                    "samples_sent": s.samples,
                    "samples_refused": s.refused,
                    "failed_attempts": s.failures,
                    "last_success": None if s.last_success is None else iso(s.last_success),
                    "last_error": s.last_error,
                }
            )
    return {
        "configured": configured,
        "sending": bool(configured) and allowed,
        "what": "aggregates only (counters, gauges, histogram buckets), allowlisted tags, "
        "a pseudonymous install id; never events",
        "destinations": dests,
    }


def status_lines(info: dict[str, Any]) -> list[tuple[str, str]]:
    """``(key, value)`` rows for the status table."""
    rows: list[tuple[str, str]] = []
    if info["configured"]:
        state = "sending" if info["sending"] else "configured but not sending (level is not all)"
        rows.append(("Exporters", f"{state}: " + "; ".join(info["configured"])))
        rows.append(("Exported", info["what"]))
    for d in info["destinations"]:
        rows.append(
            (
                "Export cursor",
                f"{d['destination']}: until {d['delivered_until'] or '-'}, "
                f"{d['samples_sent']} samples sent, "
                f"{d['samples_refused']} refused, {d['failed_attempts']} failed attempts"
                + (f"; last error {d['last_error']}" if d["last_error"] else ""),
            )
        )
    return rows
