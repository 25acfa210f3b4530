"""The bridge to the standard library's :mod:`logging`, both ways.

**stdlib -> sounding.** :class:`SoundingHandler` is a :class:`logging.Handler` that turns each
record into a sounding event and runs it through the same pipeline as
:class:`~sounding.collection.log.StructuredLogger` (context, session, scrubbing, the level
filter, the store and the JSON-lines file):

=====================  ===============================================================
event key              from the record
=====================  ===============================================================
``timestamp``          ``record.created``
``level``              the level name (custom levels round down: 25 is ``info``)
``logger``             ``record.name``
``event``              the message template, ``record.msg`` (``"query failed: %s"``), not
                       the formatted message: names stay few and carry no identifiers
``message``            the formatted message, ``record.getMessage()`` (scrubbed), when it
                       differs from the template
``category``           ``extra={"category": ...}``, else ``"system"``
``exc_type/exc_info``  from ``exc_info``: the type name and the scrubbed traceback
other fields           every ``extra={...}`` key; ``stack_info`` when given
=====================  ===============================================================

>>> import logging
>>> from sounding.collection.stdlib import install_logging_handler
>>> handler = install_logging_handler(level=logging.INFO)
>>> logging.getLogger("recorder").warning("disk %s almost full", "D:", extra={"free_mb": 12})
>>> logging.getLogger().removeHandler(handler)

**sounding -> stdlib.** With ``configure(forward_to_logging=True)`` every recorded event is
also handed, already scrubbed, to the stdlib logger ``sounding.events.<logger name>`` as a
:class:`logging.LogRecord` whose message is the event name, whose level is the event's, and
whose attributes are the event's fields (a field named like a LogRecord attribute gets a
``sounding_`` prefix, e.g. ``sounding_module``); ``record.sounding_event`` holds the whole
event and an exception event's scrubbed traceback is in ``exc_text``, so ordinary handlers
and formatters print it.

**No loops.** Records of the ``sounding.events`` loggers, anything logged while the handler
is itself processing a record (in the same thread), and records that came from sounding are
never ingested again; events that came from stdlib are never forwarded back to it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Final

from sounding.collection.log import record_event
from sounding.core import health
from sounding.core.config import LOG_LEVELS
from sounding.core.exceptions import InvalidTypeError, InvalidValueError

__all__ = ["FORWARD_LOGGER", "SoundingHandler", "install_logging_handler"]

#: The stdlib logger (and prefix of the loggers) that sounding's events are forwarded to.
FORWARD_LOGGER: Final = "sounding.events"

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "category",
}

_busy = threading.local()


def _level_number(level: int | str, argument: str = "level") -> int:
    if isinstance(level, bool) or not isinstance(level, (int, str)):
        raise InvalidTypeError(argument, level, "a logging level number or a name like 'info'")
    if isinstance(level, str):
        number = LOG_LEVELS.get(level.lower())
        if number is None:
            raise InvalidValueError(argument, level, "one of " + ", ".join(LOG_LEVELS))
        return number
    if level < 0:
        raise InvalidValueError(argument, level, "a logging level number >= 0")
    return level


class SoundingHandler(logging.Handler):
    """A :class:`logging.Handler` that records stdlib log records as sounding events.

    It never raises into the code that logged (failures are counted as ``log.record``) and
    never re-ingests what sounding itself forwarded to :mod:`logging`.
    """

    def __init__(self, level: int | str = logging.NOTSET) -> None:
        super().__init__(_level_number(level))

    def emit(self, record: logging.LogRecord) -> None:
        """Turn ``record`` into an event and record it."""
        name = record.name
        if name.startswith(FORWARD_LOGGER) and (
            len(name) == len(FORWARD_LOGGER) or name[len(FORWARD_LOGGER)] == "."
        ):
            return
        if getattr(_busy, "active", False) or hasattr(record, "sounding_event"):
            return
        _busy.active = True
        try:
            template = record.msg
            if not isinstance(template, str):
                # logger.error(exc) and friends: the object's text is a message, not a name.
                template = f"<{type(template).__name__}>"
            try:
                message = record.getMessage()
            except Exception as exc:  # arguments that do not fit the format: keep the record
                health.count("log.bad_format")
                message = f"{record.msg!r} {type(exc).__name__}"
            fields: dict[str, Any] = {
                key: value
                for key, value in record.__dict__.items()
                if key not in _STANDARD_ATTRS and not key.startswith("_")
            }
            if message != template:
                fields.setdefault("message", message)
            if record.stack_info:
                fields["stack_info"] = record.stack_info
            record_event(
                record.levelno,
                template,
                logger=name,
                category=getattr(record, "category", None),
                fields=fields,
                exc_info=record.exc_info,
                timestamp=record.created,
                forward=False,
            )
        except Exception as exc:  # never raise into the code that logged (strict mode aside)
            health.failure("log.record", exc)
        finally:
            _busy.active = False


def install_logging_handler(
    level: int | str = logging.NOTSET,
    logger: logging.Logger | str | None = None,
    *,
    set_logger_level: bool = False,
) -> SoundingHandler:
    """Attach a :class:`SoundingHandler` to ``logger`` (the root logger by default) and
    return it; calling it again returns the handler already there, with the new level.

    A handler only sees records that its logger lets through: with the root logger at its
    default ``WARNING``, ``info`` records reach no handler. By default the logger's own level
    is left alone (the application owns it; ``logging.getLogger().setLevel(logging.INFO)``);
    with ``set_logger_level=True`` a logger whose effective level is above ``level`` is
    lowered to it, so that ``install_logging_handler("info", set_logger_level=True)`` records
    ``info`` and above. Otherwise, when the logger would hide records the handler asks for,
    this is counted as ``log.handler_level_hidden`` (see ``sounding status``).

    >>> import logging
    >>> demo = logging.getLogger("demo.bridge")
    >>> handler = install_logging_handler("info", demo, set_logger_level=True)
    >>> logging.getLevelName(demo.level)
    'INFO'
    >>> demo.removeHandler(handler)
    """
    if not isinstance(set_logger_level, bool):
        raise InvalidTypeError("set_logger_level", set_logger_level, "True or False")
    if logger is None or isinstance(logger, str):
        target = logging.getLogger(logger)
    elif isinstance(logger, logging.Logger):
        target = logger
    else:
        raise InvalidTypeError("logger", logger, "a logging.Logger, a logger name or None")
    number = _level_number(level)
    if number and target.getEffectiveLevel() > number:
        if set_logger_level:
            target.setLevel(number)
        else:
            health.count("log.handler_level_hidden")
    for handler in target.handlers:
        if isinstance(handler, SoundingHandler):
            handler.setLevel(number)
            return handler
    handler = SoundingHandler(number)
    target.addHandler(handler)
    return handler
