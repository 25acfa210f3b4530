"""Where alert notifications go: a log event (default), a Python callback, a webhook.

A sink is anything with ``send(notification)``; plain callables are accepted too. Sinks may
raise: :func:`~sounding.analysis.evaluate` catches the error, counts it through
``sounding.core.health.failure("alerts.sink", ...)`` and carries on with the other sinks and
rules. The webhook is opt-in: nothing leaves the machine unless you construct one.
"""

from __future__ import annotations

import json
import logging
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from sounding.core.exceptions import InvalidTypeError, InvalidValueError

__all__ = [
    "CallbackNotifier",
    "LogNotifier",
    "Notification",
    "NotificationSink",
    "WebhookError",
    "WebhookNotifier",
    "load_sinks",
]

logger = logging.getLogger("sounding.alerts")


@dataclass(frozen=True)
class Notification:
    """A rule started firing (``kind="firing"``) or resolved (``kind="resolved"``)."""

    kind: Literal["firing", "resolved"]
    rule: str
    series: str
    metric: str
    stat: str
    op: str
    threshold: float
    value: float | None
    at: float
    since: float
    tags: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    @property
    def message(self) -> str:
        """One line for people, e.g. ``[FIRING] slow export: p95 of app.latency = 1.2 > 1``."""
        shown = "no data" if self.value is None else f"{self.value:g}"
        where = f" {{{self.series}}}" if self.series else ""
        return (
            f"[{self.kind.upper()}] {self.rule}{where}: {self.stat} of {self.metric} = "
            f"{shown} (rule: {self.op} {self.threshold:g})"
        )

    def as_dict(self) -> dict[str, Any]:
        """The JSON body the webhook posts."""
        return {
            "kind": self.kind,
            "rule": self.rule,
            "series": self.series,
            "metric": self.metric,
            "stat": self.stat,
            "op": self.op,
            "threshold": self.threshold,
            "value": self.value,
            "at": self.at,
            "since": self.since,
            "tags": dict(self.tags),
            "description": self.description,
            "message": self.message,
        }


@runtime_checkable
class NotificationSink(Protocol):
    """Receives notifications. ``send`` may raise; evaluation counts and continues."""

    def send(self, notification: Notification) -> None:
        """Deliver one notification."""


class LogNotifier:
    """Log each notification to the stdlib logger ``sounding.alerts`` (the default sink):
    firing at WARNING, resolved at INFO, the notification's dict under ``extra["alert"]``."""

    def __init__(self, log: logging.Logger | None = None) -> None:
        self.logger = log or logger

    def send(self, notification: Notification) -> None:
        """Log the notification."""
        level = logging.WARNING if notification.kind == "firing" else logging.INFO
        self.logger.log(level, notification.message, extra={"alert": notification.as_dict()})


class CallbackNotifier:
    """Call ``fn(notification)`` for each notification."""

    def __init__(self, fn: Callable[[Notification], object]) -> None:
        if not callable(fn):
            raise InvalidTypeError("fn", fn, "a callable taking a Notification")
        self.fn = fn

    def send(self, notification: Notification) -> None:
        """Call the callback."""
        self.fn(notification)


class WebhookError(Exception):
    """The webhook could not deliver a notification after all retries."""


def _strict(value: Any) -> Any:
    """``value`` with non-finite floats as ``None``, so the body is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) URLs only (urllib would follow one to ``ftp://``)."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urllib.parse.urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise urllib.error.HTTPError(
                newurl, code, f"refused a redirect to a non-http URL: {newurl}", headers, fp
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(_HttpOnlyRedirects)


def _check_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise InvalidTypeError("headers", headers, "a mapping of str to str")
    out: dict[str, str] = {}
    for key, value in headers.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidTypeError("headers", {key: value}, "a mapping of str to str")
        if not key or any(c in key for c in "\r\n\0:") or any(c in value for c in "\r\n\0"):
            raise InvalidValueError(
                "headers", {key: value}, "names and values without CR, LF or NUL (and names "
                "without ':')"
            )
        out[key] = value
    return out


class WebhookNotifier:
    """POST each notification as JSON to ``url`` (opt-in; nothing is sent otherwise).

    Each attempt has a ``timeout``; connection errors, timeouts and 5xx/429 answers are
    retried up to ``retries`` times with exponential backoff (``backoff``, ``2 x backoff``,
    ...); other 4xx answers are not retried. All attempts together never take longer than
    ``total_timeout`` (default: twice ``timeout``), so a hanging endpoint holds
    :func:`~sounding.analysis.evaluate` for a bounded time. After the last attempt
    :class:`WebhookError` is raised, which evaluation counts as ``alerts.sink`` and otherwise
    ignores. The body is strict JSON (a non-finite value is ``null``); redirects are followed
    only to http(s) URLs; header names and values with CR or LF are refused at construction.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.5,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        total_timeout: float | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise InvalidValueError("url", url, "an http:// or https:// URL with a host")
        if any(c in url for c in "\r\n\0 "):
            raise InvalidValueError("url", url, "a URL without spaces, CR, LF or NUL")
        if not _seconds(timeout, 120) or timeout == 0:
            raise InvalidValueError("timeout", timeout, "seconds, more than 0 and at most 120")
        if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 10:
            raise InvalidValueError("retries", retries, "an integer from 0 to 10")
        if not _seconds(backoff, 60):
            raise InvalidValueError("backoff", backoff, "seconds from 0 to 60")
        if total_timeout is not None and (not _seconds(total_timeout, 600) or total_timeout == 0):
            raise InvalidValueError(
                "total_timeout", total_timeout, "None or seconds, more than 0 and at most 600"
            )
        self.url = url
        self.timeout = float(timeout)
        self.retries = retries
        self.backoff = float(backoff)
        self.total_timeout = 2 * self.timeout if total_timeout is None else float(total_timeout)
        self.headers = {"Content-Type": "application/json", **_check_headers(headers)}
        self._sleep = sleep

    def send(self, notification: Notification) -> None:
        """POST the notification; raises :class:`WebhookError` when every attempt failed."""
        body = json.dumps(
            _strict(notification.as_dict()), default=repr, allow_nan=False
        ).encode("utf-8")
        deadline = time.monotonic() + self.total_timeout
        last: BaseException | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                pause = self.backoff * 2 ** (attempt - 1)
                if time.monotonic() + pause >= deadline:
                    break
                self._sleep(pause)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            request = urllib.request.Request(
                self.url, data=body, headers=self.headers, method="POST"
            )
            try:
                with _opener.open(request, timeout=min(self.timeout, remaining)) as response:
                    # Read in pieces so a server that drips its answer cannot outlast the
                    # deadline (the socket timeout bounds each piece, not the whole).
                    while response.read(65536):
                        if time.monotonic() > deadline:
                            raise TimeoutError("the answer took longer than total_timeout")
                return
            except urllib.error.HTTPError as exc:
                last = exc
                exc.close()
                if exc.code < 500 and exc.code != 429:
                    break
            except (urllib.error.URLError, OSError) as exc:
                last = exc
        raise WebhookError(f"POST {self.url} failed: {last!r}") from last


def _seconds(value: object, most: float) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and 0 <= value <= most  # exact comparisons: NaN and huge ints fail, never overflow
    )


#: Keys of a ``[[notify]]`` table in ``alerts.toml``.
_SINK_KEYS = {
    "log": {"type"},
    "webhook": {"type", "url", "timeout", "total_timeout", "retries", "backoff", "headers"},
}


def load_sinks(path: str | Any) -> list[NotificationSink]:
    """The notification sinks of the ``[[notify]]`` tables of a TOML file (top level, under
    ``[sounding]`` or ``[tool.sounding]``), the file that holds the ``[[alerts]]``::

        [[notify]]
        type = "webhook"
        url = "https://hooks.example.com/sounding"
        timeout = 5
        retries = 2
        headers = { Authorization = "Bearer ..." }

        [[notify]]
        type = "log"          # the stdlib logger "sounding.alerts"

    No ``[[notify]]`` table: an empty list (the evaluator then logs). Raises
    :class:`~sounding.core.exceptions.ConfigurationError` naming the file, the table and
    the key.
    """
    from sounding.core.config import load_toml
    from sounding.core.exceptions import ConfigurationError

    data = load_toml(path)
    tables = data.get("notify", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigurationError(f"{path}: notify", tables, "an array of tables ([[notify]])")
    sinks: list[NotificationSink] = []
    for i, table in enumerate(tables):
        where = f"{path}: notify[{i}]"
        kind = table.get("type")
        if kind not in _SINK_KEYS:
            raise ConfigurationError(f"{where}.type", kind, "'webhook' or 'log'")
        unknown = sorted(set(table) - _SINK_KEYS[kind])
        if unknown:
            allowed = "one of " + ", ".join(sorted(_SINK_KEYS[kind]))
            raise ConfigurationError(f"{where}.{unknown[0]}", table[unknown[0]], allowed)
        if kind == "log":
            sinks.append(LogNotifier())
            continue
        options = {k: v for k, v in table.items() if k not in ("type", "url")}
        try:
            sinks.append(WebhookNotifier(table.get("url"), **options))
        except (InvalidValueError, InvalidTypeError, TypeError) as exc:
            field_name = getattr(exc, "field", "url")
            value = getattr(exc, "value", None)
            allowed = getattr(exc, "allowed", str(exc))
            raise ConfigurationError(f"{where}.{field_name}", value, allowed) from None
    return sinks
