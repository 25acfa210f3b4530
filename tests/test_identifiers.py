"""Tests of hash_identifier and its per-install salt file."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import sounding
from sounding.collection.identifiers import (
    HASH_HEX_LENGTH,
    SALT_BYTES,
    hash_identifier,
    reset_salt_cache,
    salt_path,
)
from sounding.core import config, health
from sounding.core.exceptions import InternalError, InvalidTypeError, InvalidValueError


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A fresh data directory per test, and no cached salt."""
    d = tmp_path / "data"
    config.configure(data_dir=d)
    reset_salt_cache()
    health.reset()
    yield d
    config.reset()
    reset_salt_cache()
    health.reset()
    health.set_strict(False)


def _expected(salt: bytes, value: str) -> str:
    return hmac.new(salt, value.encode(), hashlib.sha256).hexdigest()[:HASH_HEX_LENGTH]


def test_hash_is_stable_short_hex() -> None:
    """The same value always gives the same 16-character lower-case hex pseudonym."""
    h = hash_identifier("alice@example.com")
    assert h == hash_identifier("alice@example.com")
    assert len(h) == HASH_HEX_LENGTH == 16
    assert all(c in "0123456789abcdef" for c in h)
    assert hash_identifier("bob@example.com") != h


def test_hash_is_hmac_sha256_of_the_salt_file(data_dir: Path) -> None:
    """The pseudonym is HMAC-SHA256 keyed with the 32 bytes stored in the salt file."""
    h = hash_identifier("user-42")
    salt = (data_dir / "salt").read_bytes()
    assert len(salt) == SALT_BYTES
    assert h == _expected(salt, "user-42")
    assert salt_path() == data_dir / "salt"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_salt_file_and_directory_are_private(data_dir: Path) -> None:
    """The salt file is created with mode 0600, its new directory with 0700."""
    hash_identifier("x")
    assert stat.S_IMODE((data_dir / "salt").stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert sorted(p.name for p in data_dir.iterdir()) == ["salt"]  # no temporary left


def test_existing_salt_is_reused_after_cache_reset(data_dir: Path) -> None:
    """A salt already on disk is read, not replaced, so pseudonyms survive restarts."""
    data_dir.mkdir(parents=True)
    salt = bytes(range(32))
    (data_dir / "salt").write_bytes(salt)
    assert hash_identifier("v") == _expected(salt, "v")
    reset_salt_cache()
    assert hash_identifier("v") == _expected(salt, "v")
    assert (data_dir / "salt").read_bytes() == salt


def test_other_data_dir_gives_other_pseudonyms(tmp_path: Path) -> None:
    """Two installations (data directories) hash the same value differently."""
    first = hash_identifier("same")
    config.configure(data_dir=tmp_path / "other")
    second = hash_identifier("same")
    assert first != second


def test_explicit_salt() -> None:
    """An explicit salt bypasses the salt file and gives the documented HMAC."""
    salt = b"0123456789abcdef0123456789abcdef"
    assert hash_identifier("user-42", salt=salt) == _expected(salt, "user-42")
    assert hash_identifier("user-42", salt=bytearray(salt)) == _expected(salt, "user-42")
    assert hash_identifier("user-42", salt=salt) == "d6f7052197327829"


@pytest.mark.parametrize("value", [42, b"bytes", None, ["x"]])
def test_wrong_value_type_raises(value: object) -> None:
    """A value that is not a str is misuse and raises InvalidTypeError at once."""
    with pytest.raises(InvalidTypeError, match="value="):
        hash_identifier(value)  # type: ignore[arg-type]


def test_wrong_salt_type_and_empty_salt_raise() -> None:
    """A salt that is not bytes, or is empty, raises at once naming the salt."""
    with pytest.raises(InvalidTypeError, match="salt="):
        hash_identifier("x", salt="text")  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="salt="):
        hash_identifier("x", salt=b"")


def test_unwritable_data_dir_falls_back_to_process_salt(tmp_path: Path) -> None:
    """If the salt cannot be stored, a random per-process salt is used and counted."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory's parent should be")
    config.configure(data_dir=blocker / "data")
    h = hash_identifier("x")
    assert h == hash_identifier("x")
    assert len(h) == HASH_HEX_LENGTH
    assert health.counts()["identifiers.salt"] == 1


def test_unwritable_data_dir_raises_in_strict_mode(tmp_path: Path) -> None:
    """In strict (test) mode the salt failure raises InternalError instead."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    config.configure(data_dir=blocker / "data")
    health.set_strict(True)
    with pytest.raises(InternalError, match=r"identifiers\.salt"):
        hash_identifier("x")


def test_corrupt_salt_file_is_not_overwritten(data_dir: Path) -> None:
    """A salt file of the wrong size is left for the user; the failure is counted."""
    data_dir.mkdir(parents=True)
    (data_dir / "salt").write_bytes(b"short")
    assert len(hash_identifier("x")) == HASH_HEX_LENGTH
    assert health.counts()["identifiers.salt"] == 1
    assert (data_dir / "salt").read_bytes() == b"short"


def test_concurrent_processes_agree_on_one_salt(data_dir: Path) -> None:
    """Processes starting together on a fresh data directory all end up with one salt."""
    src = str(Path(sounding.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": src, "SOUNDING_DATA_DIR": str(data_dir)}
    code = (
        "from sounding.collection.identifiers import hash_identifier;print(hash_identifier('same'))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    salt = (data_dir / "salt").read_bytes()
    assert outputs == {_expected(salt, "same")}
