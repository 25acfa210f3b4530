"""Compact JSON for events: an encoder built once, and the text of a value JSON cannot hold.

``json.JSONEncoder.encode`` builds a new C encoder on every call; for one short event that
setup costs as much as the encoding, so :func:`compact_encoder` builds it once. ``json`` is
imported by the first call, not by this module: a process that only counts encodes nothing.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # (typing is not imported at run time: a process that only counts needs none)
    from collections.abc import Callable
    from typing import Any

__all__ = ["compact_encoder", "safe_repr"]


def safe_repr(value: object) -> str:
    """``repr(value)``, or a placeholder naming its type when that raises (a broken
    ``__repr__``, an int too long for text): one value must not lose an event or a batch.

    >>> safe_repr(10**5000)
    '<int of 16610 bits>'
    """
    try:
        return repr(value)
    except Exception:
        if isinstance(value, int):
            return f"<int of {value.bit_length()} bits>"
        return f"<unrepresentable {type(value).__name__}>"


def compact_encoder(
    *, ensure_ascii: bool, allow_nan: bool, default: Callable[[Any], Any] = safe_repr
) -> Callable[[Any], str]:
    """A function encoding a value as JSON without spaces, ``default`` turning what JSON
    cannot hold into something it can. No circular check: a value that contains itself
    raises ``RecursionError``, for the caller to handle.

    >>> compact_encoder(ensure_ascii=True, allow_nan=False)({"a": [1, "é"]})
    '{"a":[1,"\\\\u00e9"]}'
    """
    import json

    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:  # an interpreter without the C accelerator
        return json.JSONEncoder(
            ensure_ascii=ensure_ascii,
            allow_nan=allow_nan,
            separators=(",", ":"),
            default=default,
            check_circular=False,
        ).encode
    text = json.encoder.encode_basestring_ascii if ensure_ascii else json.encoder.encode_basestring
    c_encode = c_make_encoder(None, default, text, None, ":", ",", False, False, allow_nan)

    def encode(value: Any) -> str:
        return "".join(c_encode(value, 0))

    return encode
