"""Public home of sounding's exceptions (see :mod:`sounding.core.exceptions`)."""

from sounding.core.exceptions import (
    ConfigurationError,
    InternalError,
    InvalidNameError,
    InvalidTypeError,
    InvalidValueError,
    MetricTypeConflictError,
    SoundingError,
    StoreError,
)

__all__ = [
    "ConfigurationError",
    "InternalError",
    "InvalidNameError",
    "InvalidTypeError",
    "InvalidValueError",
    "MetricTypeConflictError",
    "SoundingError",
    "StoreError",
]
