"""The sink protocol: where aggregated intervals and events go on every flush."""

from __future__ import annotations

from collections.abc import Sequence

from sounding.core._typing import Protocol, runtime_checkable
from sounding.core.types import Event, IntervalAggregate

__all__ = ["Sink"]


@runtime_checkable
class Sink(Protocol):
    """Receives one batch per flush. The SQLite store writes it in one transaction.

    ``write`` may raise; the runtime counts the failure, keeps the batch for a bounded number
    of retries, and never lets the exception reach the host application. ``events`` are
    already scrubbed and carry at least ``timestamp``, ``level``, ``category``, ``event``,
    ``logger`` and ``session_id``.
    """

    def write(self, metrics: Sequence[IntervalAggregate], events: Sequence[Event]) -> None:
        """Persist one flush: every aggregate and event, all or nothing."""

    def close(self) -> None:
        """Release resources. Idempotent."""
