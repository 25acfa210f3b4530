"""A transport for tests: records every request and answers from a script, no network.

>>> from sounding.exporters._fake import FakeTransport
>>> t = FakeTransport([500, 204])
>>> t.post("http://x/api", b"a", {}, 1.0).status, t.post("http://x/api", b"b", {}, 1.0).status
(500, 204)
>>> len(t.requests)
2
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from sounding.exporters.base import Response

__all__ = ["FakeRequest", "FakeTransport"]


@dataclass(frozen=True)
class FakeRequest:
    """One request the fake received."""

    url: str
    body: bytes
    headers: dict[str, str]


class FakeTransport:
    """Answers each post with the next scripted status (``204`` once the script is used up),
    or with what ``handler(request)`` returns."""

    def __init__(
        self,
        script: Iterable[int | Response] = (),
        handler: Callable[[FakeRequest], Response] | None = None,
    ) -> None:
        self.script = [s if isinstance(s, Response) else Response(s) for s in script]
        self.handler = handler
        self.requests: list[FakeRequest] = []

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Response:
        """Record the request and answer it."""
        req = FakeRequest(url, body, dict(headers))
        self.requests.append(req)
        if self.script:
            return self.script.pop(0)
        if self.handler is not None:
            return self.handler(req)
        return Response(204)
