"""Stable pseudonyms for identifiers, keyed with a random per-install salt.

``hash_identifier("alice@example.com")`` gives the same short hex string every time on this
installation, so events about one user or one file can be grouped, but it cannot be turned
back into the value: the HMAC key is a random 32-byte salt created on first use in the data
directory (``<data_dir>/salt``, mode 0600), so precomputed lookup tables are useless and the
same value hashes differently on another installation.

>>> from sounding.collection.identifiers import hash_identifier
>>> h = hash_identifier("alice@example.com")
>>> len(h), h == hash_identifier("alice@example.com")
(16, True)
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from pathlib import Path

from sounding.core import health
from sounding.core.config import get_settings
from sounding.core.exceptions import InvalidTypeError, InvalidValueError
from sounding.core.private import open_private, private_dir

__all__ = ["HASH_HEX_LENGTH", "SALT_BYTES", "hash_identifier", "reset_salt_cache", "salt_path"]

#: length of a pseudonym: 16 hex characters, the first 64 bits of HMAC-SHA256
HASH_HEX_LENGTH = 16
#: size of the per-install salt
SALT_BYTES = 32
_SALT_FILE = "salt"

_lock = threading.Lock()
# (data directory the salt belongs to, salt); the salt is read once per data directory.
_cached: tuple[Path, bytes] | None = None
# Used when the data directory cannot hold a salt: random, for this process only.
_process_salt: bytes | None = None


def salt_path() -> Path:
    """Where the per-install salt lives: ``salt`` in the configured data directory."""
    return get_settings().data_dir / _SALT_FILE


def _read_salt(path: Path) -> bytes | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if len(data) != SALT_BYTES:
        raise ValueError(f"{path} holds {len(data)} bytes, expected {SALT_BYTES}")
    return data


def _create_salt(path: Path) -> bytes:
    """Create the salt file atomically; if another process won the race, use its salt."""
    private_dir(path.parent)
    existing = _read_salt(path)
    if existing is not None:
        return existing
    salt = secrets.token_bytes(SALT_BYTES)
    tmp = path.with_name(f".{_SALT_FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(salt)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            # A hard link never replaces an existing file: exactly one process's salt wins
            # and readers never see a half-written file.
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:
            # No hard links on this file system: rename, which may replace a salt created
            # in the same instant by another process (a harmless, astronomically rare race).
            if not path.exists():
                os.replace(tmp, path)
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
    stored = _read_salt(path)
    if stored is None:
        raise FileNotFoundError(f"{path} vanished right after it was created")
    return stored


def _get_salt() -> bytes:
    global _cached, _process_salt
    settings = get_settings()
    if not settings.configured:
        # Library mode writes no file: a salt for this process until the app configures.
        with _lock:
            if _process_salt is None:
                _process_salt = secrets.token_bytes(SALT_BYTES)
            return _process_salt
    data_dir = settings.data_dir
    cached = _cached
    if cached is not None and cached[0] == data_dir:
        return cached[1]
    with _lock:
        cached = _cached
        if cached is not None and cached[0] == data_dir:
            return cached[1]
        path = data_dir / _SALT_FILE
        try:
            salt = _create_salt(path)
        except Exception as exc:  # a read-only or broken data dir: pseudonyms still work
            if _process_salt is None:
                _process_salt = secrets.token_bytes(SALT_BYTES)
            salt = _process_salt
            _cached = (data_dir, salt)
            health.failure("identifiers.salt", exc)
            return salt
        _cached = (data_dir, salt)
        return salt


def hash_identifier(value: str, *, salt: bytes | None = None) -> str:
    """A stable pseudonym for ``value``: 16 hex characters of HMAC-SHA256(salt, value).

    ``salt`` defaults to the per-install salt in the data directory (created on first use;
    if the directory is not writable, a random salt for this process is used instead and
    the failure is counted as ``identifiers.salt``). Pass your own ``salt`` to share
    pseudonyms between installations. With 64 bits, the chance of any collision among
    100 million distinct values is about 0.03 %.

    Raises :class:`~sounding.exceptions.InvalidTypeError` at once if ``value`` is not a
    str or ``salt`` is not bytes, and :class:`~sounding.exceptions.InvalidValueError` for
    an empty salt.

    >>> hash_identifier("user-42", salt=b"0123456789abcdef0123456789abcdef")
    'd6f7052197327829'
    """
    if not isinstance(value, str):
        raise InvalidTypeError("value", value, "a str (the identifier to pseudonymise)")
    if salt is None:
        key = _get_salt()
    elif not isinstance(salt, (bytes, bytearray)):
        raise InvalidTypeError("salt", salt, "bytes, or None for the per-install salt")
    elif not salt:
        raise InvalidValueError("salt", salt, "non-empty bytes (32 random bytes recommended)")
    else:
        key = bytes(salt)
    digest = hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
    return digest[:HASH_HEX_LENGTH]


def reset_salt_cache() -> None:
    """Forget the cached salt (tests): the next hash reads the salt file again."""
    global _cached, _process_salt
    with _lock:
        _cached = None
        _process_salt = None
