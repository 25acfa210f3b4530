"""Opt-in error reporting with the real Sentry SDK (seed Day 2), private and never in the way.

Nothing leaves the machine unless the application passes ``enabled=True`` *and* the telemetry
level allows it (``sounding.configure(telemetry_level=...)``; ``DO_NOT_TRACK=1`` or
``SOUNDING_TELEMETRY=off`` force it off). When it does run:

- ``send_default_pii=False``, no local variables, no ``server_name``, and only the vetted
  integrations :data:`SAFE_INTEGRATIONS` (unhandled exceptions and a bounded flush at exit):
  none that records requests, command lines, logs or installed modules;
- every event passes :func:`filter_event` (after the application's own ``before_send``): the
  telemetry level, an allowlist of top-level keys, and the scrubber on every string;
  breadcrumbs are scrubbed as they are added;
- events are written to a bounded outbox (``outbox.db`` in the data directory, mode 0600)
  before they are sent and removed once the server accepted them, so an event that could
  not be sent (offline, server down or hanging) is sent on a later run, scrubbed again;
- shutdown waits at most ``shutdown_timeout`` seconds (default 2) for sending.

Errors recorded by :func:`~sounding.collection.boundary.operation_boundary` and
:class:`~sounding.collection.errors.SentryContext` are captured with their tags, breadcrumbs
and metrics in a scope of their own.

>>> import sounding
>>> from sounding.integrations.sentry import initialize_telemetry
>>> initialize_telemetry("https://public@sentry.example.com/1", enabled=False)
False
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

from sounding.collection import errors as _errors
from sounding.core import health
from sounding.core.config import get_settings, on_configure, request_telemetry_level
from sounding.core.exceptions import ConfigurationError, InvalidTypeError, InvalidValueError
from sounding.core.types import TelemetryLevel
from sounding.storage.outbox import Outbox as _StorageOutbox

if TYPE_CHECKING:
    from sounding.collection.errors import ErrorReport
    from sounding.core.config import Settings

__all__ = [
    "ALLOWED_EVENT_KEYS",
    "SAFE_INTEGRATIONS",
    "Outbox",
    "filter_event",
    "initialize_telemetry",
    "is_enabled",
    "outbox_path",
    "scrub_breadcrumb",
    "shutdown_telemetry",
]

#: Top-level event keys that may be sent; everything else (``user``, ``server_name``,
#: ``modules``, ``_meta``, ...) is removed. ``request`` keeps only its method and URL path.
ALLOWED_EVENT_KEYS: Final = frozenset(
    {
        "event_id",
        "timestamp",
        "start_timestamp",
        "level",
        "logger",
        "platform",
        "release",
        "dist",
        "environment",
        "exception",
        "threads",
        "message",
        "logentry",
        "breadcrumbs",
        "tags",
        "extra",
        "contexts",
        "fingerprint",
        "sdk",
        "type",
        "transaction",
        "request",
    }
)
#: Keys whose values are identifiers or times, passed through unscrubbed.
_STRUCTURAL_KEYS: Final = frozenset({"event_id", "timestamp", "start_timestamp", "type"})
#: The Sentry SDK integrations enabled by default (by class name in ``sentry_sdk.integrations``).
SAFE_INTEGRATIONS: Final = ("excepthook.ExcepthookIntegration", "atexit.AtexitIntegration")
#: Envelopes kept in the outbox at most (the oldest are dropped and counted).
DEFAULT_MAX_QUEUED: Final = 100
#: An envelope larger than this is sent but not kept for a later run.
MAX_ENVELOPE_BYTES: Final = 1 << 20
#: Attribute marking an exception whose event has passed the filter (no duplicate reports:
#: an exception captured by a boundary and later by the excepthook goes out once).
_SENT: Final = "__sounding_sent__"
_EXTRA: Final = "pip install 'sounding[sentry]'"


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.active = False
        self.budget = 2.0
        self.outbox: Outbox | None = None
        self.warned_missing = False
        self.warned_not_started: set[str] = set()


_state = _State()


# ---------------------------------------------------------------------------------------
# Filtering
# ---------------------------------------------------------------------------------------


def _scrub(value: Any) -> Any:
    from sounding.collection.scrub import scrub

    return scrub(value)


def _unhandled(event: dict[str, Any]) -> bool:
    values = (event.get("exception") or {}).get("values") or []
    for value in values:
        mechanism = value.get("mechanism") if isinstance(value, dict) else None
        if isinstance(mechanism, dict) and mechanism.get("handled") is False:
            return True
    return False


def _level_allows(event: dict[str, Any], level: TelemetryLevel) -> bool:
    if level is TelemetryLevel.OFF:
        return False
    if level is TelemetryLevel.CRASH:
        return _unhandled(event)
    if level is TelemetryLevel.ERROR:
        return "exception" in event or event.get("level") in ("error", "fatal", "critical")
    return True


def _request(request: Any) -> dict[str, str] | None:
    # Headers, cookies, query string, body and environment may all be personal: only the
    # method and the URL without its query survive.
    if not isinstance(request, dict):
        return None
    out: dict[str, str] = {}
    if isinstance(request.get("method"), str):
        out["method"] = request["method"]
    url = request.get("url")
    if isinstance(url, str):
        out["url"] = url.split("?", 1)[0].split("#", 1)[0]
    return out or None


def filter_event(event: Any, hint: Any = None) -> dict[str, Any] | None:
    """The always-on ``before_send`` filter: level, allowlist, scrubbing. ``None`` drops.

    - The telemetry level decides first: ``off`` sends nothing, ``crash`` only unhandled
      exceptions (``mechanism.handled`` false), ``error`` exceptions and error-level
      messages, ``all`` everything.
    - Only :data:`ALLOWED_EVENT_KEYS` remain: ``user``, ``server_name``, ``modules`` and
      anything unknown are removed; ``request`` keeps its method and URL path.
    - Every string in what remains (messages, exception values, frame paths and variables,
      breadcrumbs, extra, contexts, tags) passes the scrubber; values under sensitive keys
      are redacted.

    Never raises: if filtering fails the event is dropped (and the failure counted), so
    nothing unfiltered can leave.

    >>> import sounding
    >>> _ = sounding.configure(telemetry_level="error")
    >>> out = filter_event({"level": "error", "message": "mail bob@example.com",
    ...                     "user": {"id": 7}, "server_name": "bobs-laptop"}, {})
    >>> out
    {'level': 'error', 'message': 'mail <email>'}
    >>> sounding.reset()
    """
    try:
        if not isinstance(event, dict):
            return None
        if not _level_allows(event, get_settings().telemetry_level):
            health.count("sentry.filtered_by_level")
            return None
        exc = _hint_exception(hint)
        if exc is not None and getattr(exc, _SENT, False):
            health.count("sentry.duplicate")
            return None
        _strip_frames(event)
        out: dict[str, Any] = {}
        for key, value in event.items():
            if key not in ALLOWED_EVENT_KEYS:
                continue
            if key == "request":
                value = _request(value)
                if value is None:
                    continue
            out[key] = value if key in _STRUCTURAL_KEYS else _scrub(value)
        if exc is not None:
            with contextlib.suppress(Exception):
                setattr(exc, _SENT, True)
        return out
    except Exception as failure:
        health.failure("sentry.filter", failure)
        return None


_SOURCE_CONTEXT_KEYS: Final = ("pre_context", "context_line", "post_context", "vars")


def _strip_frames(event: dict[str, Any]) -> None:
    """Frames keep no source lines and no absolute path (no working directory, no home)."""
    from sounding.collection.errors import relative_path

    holders = [event.get("exception"), event.get("threads")]
    for holder in holders:
        values = holder.get("values") if isinstance(holder, dict) else None
        for value in values if isinstance(values, list) else ():
            trace = value.get("stacktrace") if isinstance(value, dict) else None
            frames = trace.get("frames") if isinstance(trace, dict) else None
            for frame in frames if isinstance(frames, list) else ():
                if not isinstance(frame, dict):
                    continue
                for key in _SOURCE_CONTEXT_KEYS:
                    frame.pop(key, None)
                for key in ("abs_path", "filename"):
                    path = frame.get(key)
                    if isinstance(path, str):
                        frame[key] = relative_path(path)


def _hint_exception(hint: Any) -> BaseException | None:
    if not isinstance(hint, dict):
        return None
    info = hint.get("exc_info")
    if isinstance(info, tuple) and len(info) == 3 and isinstance(info[1], BaseException):
        return info[1]
    return None


def scrub_breadcrumb(crumb: Any, hint: Any = None) -> Any:
    """The ``before_breadcrumb`` hook: a scrubbed copy of the breadcrumb (``None`` on failure)."""
    try:
        return _scrub(crumb)
    except Exception as failure:
        health.failure("sentry.breadcrumb", failure)
        return None


def _chain_before_send(
    user_hook: Callable[[Any, Any], Any] | None,
) -> Callable[[Any, Any], Any]:
    """The application's hook first (it may enrich or drop), then :func:`filter_event`,
    which always has the last word. A hook that raises is counted and skipped."""

    def before_send(event: Any, hint: Any) -> Any:
        if user_hook is not None:
            try:
                result = user_hook(event, hint)
            except Exception as failure:
                health.failure("sentry.before_send", failure)
                result = event
            if result is None:
                return None
            event = result
        return filter_event(event, hint)

    return before_send


# ---------------------------------------------------------------------------------------
# The outbox: envelopes waiting to be sent
# ---------------------------------------------------------------------------------------


def outbox_path(settings: Settings | None = None) -> Path:
    """Where envelopes wait to be sent: ``outbox.db`` in the data directory."""
    return (settings or get_settings()).data_dir / "outbox.db"


class Outbox(_StorageOutbox):
    """The Sentry envelopes' durable queue: :class:`sounding.storage.outbox.Outbox` counting
    its failures and drops under ``sentry.outbox.*``."""

    def __init__(self, path: str | os.PathLike[str], max_items: int = DEFAULT_MAX_QUEUED) -> None:
        super().__init__(
            path, max_items, health_prefix="sentry.outbox", max_item_bytes=MAX_ENVELOPE_BYTES
        )


# ---------------------------------------------------------------------------------------
# The transport: HttpTransport that keeps what it could not send
# ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _transport_base() -> type[Any]:
    from sentry_sdk.envelope import Envelope, Item, PayloadRef
    from sentry_sdk.transport import HttpTransport

    class OutboxTransport(HttpTransport):
        """Writes each envelope to the outbox, sends it, deletes it once accepted.

        Network errors, 408, 429 and 5xx keep the envelope for a later attempt (after the
        next success in this run, or on the next run); other statuses drop it (counted).
        """

        outbox: Outbox

        def __init__(self, options: dict[str, Any]) -> None:
            super().__init__(options)
            self._status: int | None = None
            self._rows_lock = threading.Lock()
            self._inflight: set[int] = set()
            self._waiting: dict[int, Any] = {}
            self._replay()

        # -- sending ----------------------------------------------------------------------
        def capture_envelope(self, envelope: Any) -> None:
            try:
                data = envelope.serialize()
            except Exception as failure:
                health.failure("sentry.serialize", failure)
                return
            self._submit(self.outbox.put(data), envelope)

        def _submit(self, row: int | None, envelope: Any) -> None:
            if row is not None:
                with self._rows_lock:
                    self._inflight.add(row)

            def send() -> None:
                try:
                    self._settle(row, envelope, self._deliver(envelope))
                except Exception as failure:
                    health.failure("sentry.send", failure)

            if not self._worker.submit(send):
                # The queue is full: the envelope stays in the outbox for a later run.
                health.count("sentry.queue_full")
                if row is not None:
                    with self._rows_lock:
                        self._inflight.discard(row)

        def _deliver(self, envelope: Any) -> str:
            self._status = None
            try:
                self._send_envelope(envelope)
            except Exception:
                return "retry"
            status = self._last_status()
            if status is None:  # held back by a rate limit: try again later
                return "retry"
            if 200 <= status < 300:
                return "sent"
            if status in (408, 429) or status >= 500:
                return "retry"
            return "drop"

        def _last_status(self) -> int | None:
            return self._status

        def _handle_response(self, response: Any, envelope: Any) -> None:
            self._status = int(response.status)
            super()._handle_response(response, envelope)

        def _settle(self, row: int | None, envelope: Any, outcome: str) -> None:
            if row is not None:
                with self._rows_lock:
                    self._inflight.discard(row)
            if outcome == "retry":
                health.count("sentry.send_failed")
                if row is not None:
                    self.outbox.failed(row)
                    with self._rows_lock:
                        self._waiting[row] = envelope
                return
            if row is not None:
                self.outbox.delete(row)
            if outcome == "drop":
                health.count("sentry.rejected")
                return
            # The server is reachable again: send what failed earlier in this run.
            with self._rows_lock:
                waiting, self._waiting = self._waiting, {}
            for again, env in waiting.items():
                with self._rows_lock:
                    self._inflight.add(again)
                self._settle(again, env, self._deliver(env))

        # -- a later run ------------------------------------------------------------------
        def _replay(self) -> None:
            with self._rows_lock:
                busy = list(self._inflight)
            for row, data in self.outbox.pending(exclude=busy):
                envelope = self._refilter(data)
                if envelope is None:
                    self.outbox.delete(row)
                    continue
                self._submit(row, envelope)

        @staticmethod
        def _refilter(data: bytes) -> Any:
            # Scrubbed again: the scrubber may have learnt more since the event was written,
            # and the telemetry level may have been lowered.
            try:
                old = Envelope.deserialize(data)
                items = []
                for item in old.items:
                    if item.type != "event":
                        continue
                    payload = item.payload.json
                    event = filter_event(payload, None) if isinstance(payload, dict) else None
                    if event is not None:
                        items.append(Item(payload=PayloadRef(json=event), type="event"))
                if not items:
                    return None
                return Envelope(headers=old.headers, items=items)
            except Exception as failure:
                health.failure("sentry.outbox.replay", failure)
                return None

    return OutboxTransport


def _transport_class(outbox: Outbox) -> type[Any]:
    base = _transport_base()
    return type("OutboxTransport", (base,), {"outbox": outbox})


# ---------------------------------------------------------------------------------------
# Remote capture of sounding's error reports
# ---------------------------------------------------------------------------------------


def _crumb_for_sentry(crumb: dict[str, Any]) -> dict[str, Any]:
    out = dict(crumb)
    ts = out.get("timestamp")
    if isinstance(ts, (int, float)):
        out["timestamp"] = datetime.fromtimestamp(ts, tz=timezone.utc)
    out.setdefault("type", "default")
    return out


def _report(exc: BaseException, report: ErrorReport) -> None:
    """Capture a recorded error to Sentry in a scope of its own (tags do not leak)."""
    if not _state.active:
        return
    import sentry_sdk
    from sentry_sdk.utils import event_from_exception

    client = sentry_sdk.get_client()
    if not client.is_active():
        return
    with sentry_sdk.new_scope() as scope:
        scope.set_level(cast(Any, report.severity.sentry_level))
        for key, value in report.tags.items():
            scope.set_tag(key, value)
        if report.operation is not None:
            scope.set_tag("operation", report.operation)
        scope.set_tag("severity", report.severity.value)
        for crumb in report.breadcrumbs:
            scope.add_breadcrumb(_crumb_for_sentry(crumb))
        context: dict[str, Any] = {"severity": report.severity.value}
        if report.operation is not None:
            context["operation"] = report.operation
        if report.metrics:
            context["metrics"] = dict(report.metrics)
        if report.chain:
            context["chain"] = list(report.chain)
        scope.set_context("sounding", context)
        event, hint = event_from_exception(
            exc,
            client_options=client.options,
            mechanism={"type": "sounding", "handled": report.handled},
        )
        event["level"] = cast(Any, report.severity.sentry_level)
        scope.capture_event(event, hint=hint)


# ---------------------------------------------------------------------------------------
# Setup and shutdown
# ---------------------------------------------------------------------------------------


def _quiet_atexit(pending: int, timeout: float) -> None:
    """AtexitIntegration's callback: say nothing on the user's terminal."""


def _check_args(
    dsn: object,
    enabled: object,
    sample_rate: object,
    before_send: object,
    shutdown_timeout: object,
    max_queued: object,
    environment: object,
    release: object,
) -> None:
    if dsn is not None and not isinstance(dsn, str):
        raise InvalidTypeError("dsn", dsn, "a Sentry DSN string or None")
    if not isinstance(enabled, bool):
        raise InvalidTypeError("enabled", enabled, "True or False")
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, (int, float))
        or not 0.0 <= sample_rate <= 1.0
    ):
        raise InvalidValueError("sample_rate", sample_rate, "a number from 0.0 to 1.0")
    if before_send is not None and not callable(before_send):
        raise InvalidTypeError("before_send", before_send, "a callable(event, hint) or None")
    if shutdown_timeout is not None and (
        isinstance(shutdown_timeout, bool)
        or not isinstance(shutdown_timeout, (int, float))
        or not math.isfinite(shutdown_timeout)
        or not 0 <= shutdown_timeout <= 60
    ):
        raise InvalidValueError(
            "shutdown_timeout", shutdown_timeout, "a number of seconds from 0 to 60"
        )
    if isinstance(max_queued, bool) or not isinstance(max_queued, int) or max_queued < 1:
        raise InvalidValueError("max_queued", max_queued, "an int >= 1")
    for name, value in (("environment", environment), ("release", release)):
        if value is not None and not isinstance(value, str):
            raise InvalidTypeError(name, value, "a str or None")
    if dsn and enabled:
        # Not when disabled: the seed's `initialize_telemetry(dsn='...', enabled=False)`
        # must keep working; whenever the application means to report, a bad DSN is an error.
        _check_dsn(dsn, "dsn")


def _check_dsn(dsn: str, source: str) -> None:
    """Raise for a malformed DSN, with or without sentry-sdk installed (the same rules as
    ``sentry_sdk.utils.Dsn``: http(s), a public key, a host, a numeric project id)."""
    from urllib.parse import urlsplit

    allowed = "a Sentry DSN like https://key@host/1"
    try:
        parts = urlsplit(dsn)
        port = parts.port  # raises for a non-numeric port
        project = parts.path.rstrip("/").rsplit("/", 1)[-1]
    except ValueError:
        raise ConfigurationError(source, dsn, allowed) from None
    ok = (
        parts.scheme in ("http", "https")
        and bool(parts.username)
        and bool(parts.hostname)
        and project.isdigit()
        and (port is None or 0 < port < 65536)
    )
    if not ok:
        raise ConfigurationError(source, dsn, allowed)


def _not_started(why: str, warn: bool = True) -> bool:
    """Say once (a RuntimeWarning per reason) why remote reporting did not start."""
    health.get_logger().info("sounding: remote error reporting not started: %s", why)
    if warn and why not in _state.warned_not_started:
        _state.warned_not_started.add(why)
        warnings.warn(
            f"sounding: remote error reporting not started: {why}; errors are recorded "
            "locally",
            RuntimeWarning,
            stacklevel=3,
        )
    return False


def _echo_transport(dsn: str) -> type[Any]:
    """A transport that prints each event it would send (echo mode) and sends nothing."""
    import json
    import sys
    from urllib.parse import urlsplit

    from sentry_sdk.transport import Transport

    host = urlsplit(dsn).hostname or "?"

    class EchoTransport(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            for item in envelope.items:
                payload = item.payload.json
                if item.type != "event" or not isinstance(payload, dict):
                    continue
                text = json.dumps(payload, indent=2, sort_keys=True, default=str)
                try:
                    sys.stderr.write(f"sounding echo: would send to {host}:\n{text}\n")
                except Exception as failure:
                    health.failure("sentry.echo", failure)

        def flush(self, timeout: float, callback: Any = None) -> None:
            return None

        def kill(self) -> None:
            return None

    return EchoTransport


def initialize_telemetry(
    dsn: str | None = None,
    enabled: bool = False,
    *,
    environment: str | None = None,
    release: str | None = None,
    sample_rate: float = 1.0,
    before_send: Callable[[Any, Any], Any] | None = None,
    shutdown_timeout: float | None = None,
    max_queued: int = DEFAULT_MAX_QUEUED,
    integrations: Sequence[Any] = (),
    transport: Any = None,
) -> bool:
    """Start remote error reporting if, and only if, the application and the user allow it.

    ``enabled=True`` is the application recording its user's consent: when the application
    configured no telemetry level, it means ``error``; a level it did configure (argument,
    TOML, ``configure``) wins, and the user's environment (``DO_NOT_TRACK=1``,
    ``SOUNDING_TELEMETRY``, the choice stored by ``sounding telemetry``) can only lower it.

    Returns ``True`` when Sentry was initialised. Nothing is initialised (and ``False``
    returned) when ``enabled`` is false, when the effective level is ``off``, when there is no
    DSN (argument or ``SENTRY_DSN``), or when ``sentry-sdk`` is not installed; except for
    ``enabled=False`` each says why in a ``RuntimeWarning`` (once per reason) and errors are
    still recorded locally (not when the user decided: the first-run notice of
    :mod:`sounding.consent` or a stored ``off``). In echo mode (``telemetry_echo``) events
    are printed on stderr instead of sent. Calling it again reconfigures; ``enabled=False``
    on a running integration shuts it down.

    - ``release`` defaults to the configured ``app_version``.
    - ``before_send(event, hint)`` runs before :func:`filter_event`; if it raises, the
      failure is counted and the event continues unchanged.
    - ``shutdown_timeout``: seconds to wait for sending at exit (default: the
      ``shutdown_timeout`` setting, 2 s); unsent events stay in the outbox for a later run.
    - ``max_queued``: envelopes kept in the outbox at most.
    - ``integrations``: Sentry integrations to add to :data:`SAFE_INTEGRATIONS`; you vouch
      for what they record.
    - ``transport``: a Sentry transport to use instead of the outbox transport (tests,
      proxies); events it fails to send are not kept.

    Invalid arguments raise :class:`~sounding.exceptions.InvalidValueError`,
    :class:`~sounding.exceptions.InvalidTypeError` or, for a malformed DSN (whether or not
    sentry-sdk is installed and whatever the level, when ``enabled``),
    :class:`~sounding.exceptions.ConfigurationError`.

    >>> import sounding, warnings
    >>> _ = sounding.configure(telemetry_level="off")
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     initialize_telemetry("https://public@sentry.example.com/1", enabled=True)
    False
    >>> print(caught[0].message)  # doctest: +ELLIPSIS
    sounding: remote error reporting not started: telemetry level is off (requested by ...
    >>> sounding.reset()
    """
    _check_args(
        dsn, enabled, sample_rate, before_send, shutdown_timeout, max_queued, environment, release
    )
    with _state.lock:
        if _state.active:
            shutdown_telemetry(0.0 if not enabled else None)
        if not enabled:
            return False
        settings = get_settings()
        if not settings.telemetry_level_set:
            # The application gave its user's consent and asked for no level: errors.
            settings = request_telemetry_level(TelemetryLevel.ERROR)
        if settings.telemetry_level is TelemetryLevel.OFF:
            # The user's own decision (the first-run notice on screen, a stored "off") is
            # not a mistake to warn the end user about; it is logged at INFO.
            from sounding.core import consent

            choice = consent.read_choice(settings.data_dir)
            by_user = consent.notice_shown_this_run() or (
                choice is not None and choice.level is TelemetryLevel.OFF
            )
            return _not_started(
                f"telemetry level is off ({settings.telemetry_reason})", warn=not by_user
            )
        env_dsn = os.environ.get("SENTRY_DSN") or None
        if not dsn and env_dsn is not None:
            _check_dsn(env_dsn, "SENTRY_DSN")
        dsn = dsn or env_dsn
        if dsn is None:
            return _not_started("no DSN given (pass dsn= or set SENTRY_DSN)")
        try:
            import sentry_sdk
        except ImportError:
            if not _state.warned_missing:
                _state.warned_missing = True
                warnings.warn(
                    "sounding: sentry-sdk is not installed, so errors are recorded locally "
                    f"only; install the extra to report them: {_EXTRA}",
                    RuntimeWarning,
                    stacklevel=2,
                )
            return False
        from sentry_sdk.utils import BadDsn, Dsn

        try:
            Dsn(dsn)
        except BadDsn as bad:
            raise ConfigurationError("dsn", dsn, "a Sentry DSN like https://key@host/1") from bad
        budget = settings.shutdown_timeout if shutdown_timeout is None else shutdown_timeout
        outbox: Outbox | None = None
        if transport is None and settings.telemetry_echo:
            transport = _echo_transport(dsn)
        if transport is None:
            outbox = Outbox(outbox_path(settings), max_queued)
            transport = _transport_class(outbox)
        with warnings.catch_warnings():
            # sentry-sdk >= 2.7x prefers ``data_collection``; ``send_default_pii=False`` still
            # works on every 2.x and also turns on the SDK's own denylist scrubber (a second
            # layer under filter_event), so keep it and spare the user the deprecation notice.
            warnings.filterwarnings(
                "ignore", message=".*send_default_pii", category=DeprecationWarning
            )
            _init(
                sentry_sdk,
                dsn,
                environment,
                release or settings.app_version,
                sample_rate,
                before_send,
                integrations,
                budget,
                transport,
            )
        _state.active = True
        _state.budget = float(budget)
        _state.outbox = outbox
        _errors.add_reporter(_report)
        return True


def _init(
    sentry_sdk: Any,
    dsn: str,
    environment: str | None,
    release: str,
    sample_rate: float,
    before_send: Callable[[Any, Any], Any] | None,
    integrations: Sequence[Any],
    budget: float,
    transport: Any,
) -> None:
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        sample_rate=float(sample_rate),
        send_default_pii=False,
        before_send=_chain_before_send(before_send),
        before_breadcrumb=scrub_breadcrumb,
        default_integrations=False,
        auto_enabling_integrations=False,
        integrations=[*_safe_integrations(), *integrations],
        include_local_variables=False,
        # No source lines and no working directory leave the machine (frames are relative).
        include_source_context=False,
        server_name="",
        send_client_reports=False,
        auto_session_tracking=False,
        attach_stacktrace=False,
        shutdown_timeout=float(budget),
        transport=transport,
    )


def _safe_integrations() -> list[Any]:
    from sentry_sdk.integrations.atexit import AtexitIntegration
    from sentry_sdk.integrations.excepthook import ExcepthookIntegration

    return [ExcepthookIntegration(), AtexitIntegration(callback=_quiet_atexit)]


def is_enabled() -> bool:
    """Whether remote error reporting is running."""
    return _state.active


def shutdown_telemetry(timeout: float | None = None) -> bool:
    """Stop remote reporting, waiting at most ``timeout`` seconds (default: the budget given
    to :func:`initialize_telemetry`) for events still being sent. Unsent events stay in the
    outbox. Idempotent; returns ``True`` if it was running. Never raises."""
    with _state.lock:
        if not _state.active:
            return False
        _state.active = False
        _errors.remove_reporter(_report)
        budget = _state.budget if timeout is None else max(0.0, float(timeout))
        try:
            import sentry_sdk

            client = sentry_sdk.get_client()
            # close() flushes for at most `budget` seconds, then abandons the (daemon) worker.
            client.close(timeout=budget, callback=_quiet_atexit)
            sentry_sdk.get_global_scope().set_client(None)
        except Exception as failure:
            health.failure("sentry.shutdown", failure)
        outbox, _state.outbox = _state.outbox, None
        if outbox is not None:
            outbox.close()
        return True


def _on_configure(settings: Settings) -> None:
    # The user lowered the level to off: stop at once (what is unsent stays in the outbox).
    if _state.active and settings.telemetry_level is TelemetryLevel.OFF:
        shutdown_telemetry(0.0)


on_configure(_on_configure)
