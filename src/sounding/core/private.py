"""Private files and directories: the one place sounding creates what it writes to disk.

Everything sounding stores describes what a user did, so it is readable by that user only:
directories ``0700`` (each missing parent too, whatever the umask), files ``0600``. A path
planted by someone else is not followed: files are opened with ``O_NOFOLLOW`` and must be
regular files owned by the current user, and a data directory that is world-writable (without
the sticky bit) or owned by another user is refused, because anyone could swap its files.

Problems raise :class:`~sounding.core.exceptions.UnsafePathError` (a ``PermissionError``), so
run-time callers that already count ``OSError`` count these too.

>>> import os, tempfile
>>> from pathlib import Path
>>> root = Path(tempfile.mkdtemp())
>>> d = private_dir(root / "a" / "b")
>>> oct(d.stat().st_mode & 0o777)
'0o700'
>>> fd = open_private(d / "events.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
>>> os.close(fd)
>>> oct((d / "events.jsonl").stat().st_mode & 0o777)
'0o600'
"""

from __future__ import annotations

import os
import stat

from sounding.core.exceptions import UnsafePathError

# Not `from typing import TYPE_CHECKING`; the work is done on strings (os.path), and pathlib
# is imported only to return a Path: the exit flush of a short process needs no pathlib.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "check_dir",
    "ensure_private_file",
    "make_private_dir",
    "make_private_file",
    "open_private",
    "private_dir",
    "write_private",
]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def _uid() -> int | None:
    geteuid = getattr(os, "geteuid", None)
    return None if geteuid is None else int(geteuid())


def check_dir(path: str | os.PathLike[str]) -> None:
    """Refuse a directory another user could change: world-writable without the sticky bit,
    or owned by someone else. Raises :class:`UnsafePathError`."""
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"{path} is not a directory")
    uid = _uid()
    if uid is not None and st.st_uid not in (uid, 0) and uid != 0:
        raise UnsafePathError(
            f"refusing the data directory {path}: it belongs to uid {st.st_uid}, not to the "
            f"current user ({uid})"
        )
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        raise UnsafePathError(
            f"refusing the data directory {path}: it is world-writable "
            f"(mode {oct(st.st_mode & 0o7777)}); run `chmod 700 {path}`"
        )


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` and its missing parents as ``0700`` directories (whatever the umask),
    check the result with :func:`check_dir`, and return it."""
    from pathlib import Path

    make_private_dir(path)
    return Path(path)


def make_private_dir(path: str | os.PathLike[str]) -> None:
    """:func:`private_dir` without building a ``Path``."""
    p = os.fspath(path) or os.curdir
    seps = os.sep + (os.altsep or "")
    missing: list[str] = []
    cur = p
    while not os.path.exists(cur):
        # What Path.parent gives: "a/b/" -> "a", "a" -> ".", "/x" -> "/".
        parent = os.path.dirname(cur.rstrip(seps) or cur) or os.curdir
        if parent == cur:
            break
        missing.append(cur)
        cur = parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            continue
        # mkdir's mode is filtered by the umask; the data is private, so say it exactly.
        os.chmod(d, 0o700)
    check_dir(p)


def open_private(path: str | os.PathLike[str], flags: int, *, mode: int = 0o600) -> int:
    """``os.open`` for a private file: never through a symlink, only a regular file owned by
    the current user, its mode tightened to ``0600`` if it was looser. Returns the fd."""
    try:
        fd = os.open(path, flags | _NOFOLLOW | _CLOEXEC | _NONBLOCK, mode)
    except OSError as exc:
        if os.path.islink(path):
            raise UnsafePathError(f"refusing to open {path}: it is a symbolic link") from exc
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(f"refusing to open {path}: not a regular file")
        uid = _uid()
        if uid is not None and st.st_uid != uid:
            raise UnsafePathError(
                f"refusing to open {path}: it belongs to uid {st.st_uid}, not to {uid}"
            )
        # Private: nothing for group or others; the owner keeps what it had, plus read and
        # write when opening to write (so a umask cannot leave a file we cannot append to).
        want = st.st_mode & 0o700
        if flags & (os.O_WRONLY | os.O_RDWR):
            want |= mode & 0o600
        if st.st_mode & 0o777 != want and hasattr(os, "fchmod"):
            os.fchmod(fd, want)
        if _NONBLOCK:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def ensure_private_file(path: str | os.PathLike[str]) -> Path:
    """Make sure ``path`` is a private regular file (created empty ``0600`` in a ``0700``
    directory if missing), for files another library opens by name, such as SQLite's."""
    from pathlib import Path

    make_private_file(path)
    return Path(path)


def make_private_file(path: str | os.PathLike[str]) -> None:
    """:func:`ensure_private_file` without building a ``Path``."""
    p = os.fspath(path)
    make_private_dir(os.path.dirname(p) or os.curdir)
    try:
        fd = open_private(p, os.O_RDWR | os.O_CREAT)
    except PermissionError:
        fd = open_private(p, os.O_RDONLY)  # an existing read-only store (readers)
    os.close(fd)


def write_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, as a new ``0600`` file (an existing file's
    looser mode is not kept, and a symlink at ``path`` is replaced, not followed)."""
    p = os.fspath(path)
    head, name = os.path.split(p)
    # os.urandom, as secrets.token_hex does: importing secrets pulls in hmac and OpenSSL.
    tmp = os.path.join(head, f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
