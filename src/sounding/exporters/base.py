"""The exporter seam: one Protocol every push exporter implements, and the HTTP transport.

An exporter turns a batch of closed intervals (read from the store after its cursor) into one
HTTP request: :meth:`Exporter.encode` returns a :class:`Payload`, which the delivery loop
(:mod:`sounding.exporters._deliver`) posts through a :class:`Transport` and classifies the
answer. Exporters hold no thread and no connection of their own; the transport is injected,
so tests pass :class:`~sounding.exporters._fake.FakeTransport` (no network), as httpx's
``MockTransport`` does.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from sounding.storage.outbox import Interval, RunningTotal

__all__ = ["Exporter", "Payload", "Response", "Transport", "UrllibTransport"]


@dataclass(frozen=True)
class Payload:
    """One request body ready to send, with its headers and what it holds."""

    body: bytes
    headers: Mapping[str, str]
    #: samples (remote-write) or data points (OTLP) in the body
    samples: int
    #: output series keys whose running totals changed (persisted with the cursor)
    changed: Sequence[str] = field(default_factory=tuple)
    #: the payload for people (echo / dry-run mode): one line per series
    text: str = ""


@dataclass(frozen=True)
class Response:
    """What the server answered: an HTTP status (0 when no answer came) and its body."""

    status: int
    body: str = ""


class Transport(Protocol):
    """Posts one body to a URL; never raises (a connection failure is status 0)."""

    def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> Response: ...


class UrllibTransport:
    """The default transport: the standard library's HTTP client, no extra dependency."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Response:
        """POST ``body``; an HTTP error is a :class:`Response`, a network error status 0."""
        req = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return Response(int(resp.status), resp.read(4096).decode("utf-8", "replace"))
        except urllib.error.HTTPError as exc:
            try:
                text = exc.read(4096).decode("utf-8", "replace")
            except Exception:
                text = ""
            return Response(int(exc.code), text)
        except Exception as exc:
            return Response(0, f"{type(exc).__name__}: {exc}")


@runtime_checkable
class Exporter(Protocol):
    """A push destination: where to send, and how to encode a batch for it."""

    @property
    def url(self) -> str:
        """The endpoint."""
        ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Extra request headers (authentication); never logged."""
        ...

    @property
    def timeout(self) -> float:
        """Seconds per request."""
        ...

    @property
    def transport(self) -> Transport:
        """The transport requests go through."""
        ...

    @property
    def destination(self) -> str:
        """The cursor key: the protocol and URL (plus instance), stable across runs."""
        ...

    def encode(
        self, intervals: Sequence[Interval], totals: Mapping[str, RunningTotal]
    ) -> tuple[Payload, dict[str, RunningTotal]]:
        """One request for ``intervals`` and the running totals it moves to (``totals`` is
        what was acknowledged so far; it is not modified)."""
        ...
