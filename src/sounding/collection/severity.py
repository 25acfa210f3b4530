"""Severity and outcome of an exception: the one place that decides how bad a failure is.

Boundaries, error contexts, timers and the crash handler all ask this module, so an
application's classification (:func:`set_severity`, :func:`set_severity_classifier`) applies
everywhere alike.

Two questions are answered here:

- :func:`classify_exception`: the :class:`~sounding.core.types.ErrorSeverity` of an exception
  (a table looked up along the exception's MRO, or the application's classifier);
- :func:`exception_outcome`: whether an exception that ends a call is a failure at all. A
  command-line application ends with ``SystemExit(0)`` or ``click.exceptions.Exit(0)`` on
  success, and a ``click.UsageError`` is the user's mistake, not a bug in the program:

>>> exception_outcome(SystemExit(0)), exception_outcome(KeyError("k"))
('ok', 'error')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, Literal, cast

from sounding.core import health
from sounding.core.exceptions import InvalidTypeError, InvalidValueError
from sounding.core.types import ErrorSeverity

__all__ = [
    "DEFAULT_SEVERITIES",
    "OUTCOMES",
    "Outcome",
    "check_classify",
    "check_ok_exceptions",
    "classify_exception",
    "coerce_severity",
    "exception_outcome",
    "reset_severities",
    "set_severity",
    "set_severity_classifier",
]

#: What ended a call: not a failure (``ok``), the user's mistake (``user_error``, such as a bad
#: command-line argument), or a failure of the program (``error``).
Outcome = Literal["ok", "user_error", "error"]
OUTCOMES: Final = ("ok", "user_error", "error")

#: The default severity of exception types, looked up along the exception's MRO (the most
#: specific entry wins). Unlisted exceptions are ``HIGH``. Change with :func:`set_severity`.
DEFAULT_SEVERITIES: Final[Mapping[type[BaseException], ErrorSeverity]] = {
    MemoryError: ErrorSeverity.CRITICAL,
    SystemError: ErrorSeverity.CRITICAL,
    RecursionError: ErrorSeverity.CRITICAL,
    OSError: ErrorSeverity.HIGH,
    RuntimeError: ErrorSeverity.HIGH,
    ValueError: ErrorSeverity.MEDIUM,
    LookupError: ErrorSeverity.MEDIUM,
    TypeError: ErrorSeverity.MEDIUM,
    AttributeError: ErrorSeverity.MEDIUM,
    ArithmeticError: ErrorSeverity.MEDIUM,
    UnicodeError: ErrorSeverity.MEDIUM,
    Warning: ErrorSeverity.LOW,
}

_severities: dict[type[BaseException], ErrorSeverity] = dict(DEFAULT_SEVERITIES)
_classifier: Callable[[BaseException], ErrorSeverity | None] | None = None


def coerce_severity(value: object, field: str) -> ErrorSeverity:
    """``value`` as an :class:`ErrorSeverity` (a member or its name); raises naming ``field``."""
    if isinstance(value, ErrorSeverity):
        return value
    if isinstance(value, str):
        try:
            return ErrorSeverity(value.lower())
        except ValueError:
            pass
    raise InvalidValueError(
        field, value, "an ErrorSeverity or one of " + ", ".join(s.value for s in ErrorSeverity)
    )


def set_severity(exc_type: type[BaseException], severity: ErrorSeverity | str | None) -> None:
    """Classify ``exc_type`` (and its subclasses without an entry of their own) as ``severity``.

    ``None`` removes the entry, so the type falls back to its base classes' severity.

    >>> from sounding import ErrorSeverity
    >>> set_severity(TimeoutError, ErrorSeverity.MEDIUM)
    >>> classify_exception(TimeoutError("slow disk"))
    <ErrorSeverity.MEDIUM: 'medium'>
    >>> set_severity(TimeoutError, None)
    """
    if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
        raise InvalidTypeError("exc_type", exc_type, "an exception class")
    if severity is None:
        _severities.pop(exc_type, None)
    else:
        _severities[exc_type] = coerce_severity(severity, "severity")


def set_severity_classifier(
    classifier: Callable[[BaseException], ErrorSeverity | None] | None,
) -> Callable[[BaseException], ErrorSeverity | None] | None:
    """Install the application's classifier; returns the previous one (``None``: the default).

    ``classifier(exc)`` returns an :class:`ErrorSeverity`, or ``None`` to use the default
    table. If it raises, the failure is counted (``severity.classifier``) and the default
    table decides: a broken classifier never breaks error handling.

    >>> from sounding import ErrorSeverity
    >>> previous = set_severity_classifier(
    ...     lambda exc: ErrorSeverity.LOW if "optional" in str(exc) else None)
    >>> classify_exception(OSError("optional plugin missing"))
    <ErrorSeverity.LOW: 'low'>
    >>> _ = set_severity_classifier(previous)
    """
    global _classifier
    if classifier is not None and not callable(classifier):
        raise InvalidTypeError("classifier", classifier, "a callable(exc) -> ErrorSeverity or None")
    previous, _classifier = _classifier, classifier
    return previous


def classify_exception(exc: BaseException) -> ErrorSeverity:
    """The severity of ``exc``: the application's classifier, else the table by MRO.

    A user error (see :func:`exception_outcome`) without an entry of its own is ``LOW``.

    >>> classify_exception(MemoryError()), classify_exception(KeyError("k"))
    (<ErrorSeverity.CRITICAL: 'critical'>, <ErrorSeverity.MEDIUM: 'medium'>)
    """
    classifier = _classifier
    if classifier is not None:
        try:
            found = classifier(exc)
            if found is not None:
                return coerce_severity(found, "classifier result")
        except Exception as failure:
            health.failure("severity.classifier", failure)
    user_error = _is_cli_user_error(exc)
    for klass in type(exc).__mro__:
        severity = _severities.get(klass)
        if severity is not None:
            if user_error and klass is not type(exc) and DEFAULT_SEVERITIES.get(klass) is severity:
                # A default entry of a base class (RuntimeError) does not fit a user error.
                return ErrorSeverity.LOW
            return severity
    return ErrorSeverity.LOW if user_error else ErrorSeverity.HIGH


def reset_severities() -> None:
    """Restore the default table and remove the application's classifier (tests)."""
    global _classifier
    _severities.clear()
    _severities.update(DEFAULT_SEVERITIES)
    _classifier = None


# ---------------------------------------------------------------------------------------
# Outcomes: success exits and user errors of command-line applications
# ---------------------------------------------------------------------------------------


def _exit_code(exc: BaseException) -> object:
    if isinstance(exc, SystemExit):
        return exc.code
    # click.exceptions.Exit (a RuntimeError) carries the code it exits with.
    return getattr(exc, "exit_code", _NO_CODE)


_NO_CODE: Final = object()


def _from_click(exc: BaseException) -> bool:
    # Recognised by module, so that click is never imported here.
    return any(
        (getattr(k, "__module__", "") or "").split(".", 1)[0] in ("click", "typer")
        for k in type(exc).__mro__
    )


def _is_cli_user_error(exc: BaseException) -> bool:
    """``click.ClickException`` (a bad argument, ``click.BadParameter``...) and subclasses."""
    if not _from_click(exc):
        return False
    return any(k.__name__ == "ClickException" for k in type(exc).__mro__) or (
        type(exc).__name__ == "Abort"
    )


def exception_outcome(
    exc: BaseException,
    ok_exceptions: tuple[type[BaseException], ...] = (),
    classify: Callable[[BaseException], str | None] | None = None,
) -> Outcome:
    """Whether ``exc`` ending a call is a failure: ``"ok"``, ``"user_error"`` or ``"error"``.

    In this order: the caller's ``classify(exc)`` (an outcome name, or ``None`` for the
    default; a classifier that raises or answers something else is counted as
    ``severity.outcome_classifier`` and ignored), then ``ok_exceptions``, then the defaults:
    an exit with code 0 or ``None`` (``SystemExit``, ``click.exceptions.Exit``) is ``ok``, a
    ``click.ClickException`` or ``click.Abort`` is a ``user_error``, anything else an ``error``.

    >>> exception_outcome(SystemExit(2)), exception_outcome(LookupError(), (LookupError,))
    ('error', 'ok')
    """
    if classify is not None:
        try:
            found = classify(exc)
            if found is not None:
                if found not in OUTCOMES:
                    raise InvalidValueError(
                        "classify result", found, "one of " + ", ".join(OUTCOMES)
                    )
                return found  # type: ignore[return-value]
        except Exception as failure:
            health.failure("severity.outcome_classifier", failure)
    if ok_exceptions and isinstance(exc, ok_exceptions):
        return "ok"
    code = _exit_code(exc)
    if (
        code is not _NO_CODE
        and (isinstance(exc, SystemExit) or _from_click(exc))
        and (code is None or code == 0)
    ):
        return "ok"
    if _is_cli_user_error(exc):
        return "user_error"
    return "error"


def check_ok_exceptions(
    value: object, field: str = "ok_exceptions"
) -> tuple[type[BaseException], ...]:
    """``value`` (an exception class or a tuple of them, possibly empty) as a tuple."""
    types = value if isinstance(value, tuple) else (value,)
    for t in types:
        if not (isinstance(t, type) and issubclass(t, BaseException)):
            raise InvalidTypeError(
                field, value, "an exception class or a tuple of them, e.g. (click.exceptions.Exit,)"
            )
    return cast("tuple[type[BaseException], ...]", types)


def check_classify(
    value: object, field: str = "classify"
) -> Callable[[BaseException], str | None] | None:
    """``value`` if it is ``None`` or callable; raises naming ``field`` otherwise."""
    if value is not None and not callable(value):
        raise InvalidTypeError(
            field, value, "None or a callable(exc) -> 'ok', 'user_error', 'error' or None"
        )
    return cast("Callable[[BaseException], str | None] | None", value)
