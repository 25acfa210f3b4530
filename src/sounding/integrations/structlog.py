"""structlog -> sounding: a processor that hands every structlog event to sounding.

Put :class:`SoundingProcessor` in structlog's chain, before the renderer. Each event is
recorded through sounding's pipeline (context, session, scrubbing, the level filter, the
store) and the event dict goes on unchanged to the next processor, so the console output
stays what it was:

>>> import structlog
>>> from sounding.integrations.structlog import SoundingProcessor
>>> structlog.configure(processors=[
...     structlog.processors.add_log_level,
...     SoundingProcessor(),
...     structlog.processors.KeyValueRenderer(),
... ])
>>> structlog.reset_defaults()

======================  ================================================================
sounding event key      from the structlog event dict
======================  ================================================================
``event``               ``event_dict["event"]`` (use a fixed name and keyword fields:
                        ``log.info("export.done", rows=12)``, as structlog recommends)
``level``               the method called (``exception`` is ``error``, ``msg`` ``info``)
``logger``              ``event_dict["logger"]``, else the bound logger's ``name``, else
                        ``"structlog"``
``category``            ``event_dict["category"]``, else ``"system"``
``exc_type/exc_info``   from ``exc_info`` (``True`` or an exception), scrubbed
``timestamp``           a numeric ``event_dict["timestamp"]``, else the clock's time
other fields            every other key (scrubbed like any event)
======================  ================================================================

With ``drop=True`` the processor ends the chain (:class:`structlog.DropEvent`): sounding is
then the only place the event goes. structlog itself is only needed for ``drop=True``; it is
the ``structlog`` extra (``pip install 'sounding[structlog]'``).
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from typing import Any, Final

from sounding.collection.log import record_event
from sounding.core import health
from sounding.core.exceptions import ConfigurationError, InvalidTypeError

__all__ = ["SoundingProcessor"]

_LEVELS: Final = {
    "debug": 10,
    "info": 20,
    "msg": 20,
    "log": 20,
    "warning": 30,
    "warn": 30,
    "error": 40,
    "exception": 40,
    "err": 40,
    "critical": 50,
    "fatal": 50,
}
_RESERVED: Final = frozenset({"event", "level", "logger", "exc_info", "timestamp", "category"})


class SoundingProcessor:
    """A structlog processor that records each event in sounding (see the module docs).

    Never raises into the code that logged: a failure is counted (``log.record``) and the
    event dict is passed on as it came.
    """

    __slots__ = ("_drop_event", "drop")

    def __init__(self, *, drop: bool = False) -> None:
        if not isinstance(drop, bool):
            raise InvalidTypeError("drop", drop, "True or False")
        self.drop = drop
        # Looked up now: a missing structlog is a set-up error, not one at the first event.
        self._drop_event: type[BaseException] | None = _drop_event_class() if drop else None

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """Record ``event_dict``; return it unchanged (or raise DropEvent with ``drop=True``)."""
        try:
            self._record(logger, method_name, event_dict)
        except Exception as exc:  # never raise into the code that logged (strict mode aside)
            health.failure("log.record", exc)
        if self._drop_event is not None:
            raise self._drop_event()
        return event_dict

    @staticmethod
    def _record(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> None:
        level = event_dict.get("level", method_name)
        levelno = _LEVELS.get(str(level).lower(), _LEVELS.get(method_name, 20))
        name = event_dict.get("event")
        event_name = name if isinstance(name, str) else f"<{type(name).__name__}>"
        logger_name = event_dict.get("logger") or getattr(logger, "name", None) or "structlog"
        exc_info: Any = event_dict.get("exc_info")
        if exc_info is True:
            exc_info = sys.exc_info()
        elif isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        timestamp = event_dict.get("timestamp")
        fields = {k: v for k, v in event_dict.items() if k not in _RESERVED}
        if not isinstance(name, str) and name is not None:
            fields["message"] = str(name)
        record_event(
            levelno,
            event_name,
            logger=str(logger_name),
            category=event_dict.get("category"),
            fields=fields,
            exc_info=exc_info if exc_info and exc_info[0] is not None else None,
            timestamp=(
                float(timestamp)
                if isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool)
                else None
            ),
            forward=False,
        )


def _drop_event_class() -> type[BaseException]:
    try:
        import structlog
    except ImportError as exc:
        raise ConfigurationError(
            "drop", True, "drop=False, or install the extra: pip install 'sounding[structlog]'"
        ) from exc
    return structlog.DropEvent
