"""Counts of what could not be stored, kept beside the store until it can take them.

When the exit budget runs out (another process holds the store's lock, a huge backlog), what
is left cannot go into the database, but it must not vanish silently either. The runtime
writes how much it lost to a small private JSON file in the data directory
(``unsaved.<pid>.json``: ``{"kind": count}``, the same kinds as the internal health counts).
The next process that writes to that data directory claims the files (an atomic rename, so
two processes never both count one) and stores the counts with its first flush, where
``sounding status`` shows them; ``status`` also adds the files not claimed yet.
"""

from __future__ import annotations

import os

from sounding.core.private import make_private_dir, open_private, write_private

__all__ = ["claim", "peek", "record"]

_PREFIX = "unsaved."
_SUFFIX = ".json"
#: A side file is a few dozen counts; anything larger was not written by us.
_MAX_BYTES = 64 * 1024


# Paths are strings (os.path), not pathlib: the exit flush of a short process imports this.
def _path(data_dir: str | os.PathLike[str]) -> str:
    return os.path.join(data_dir, f"{_PREFIX}{os.getpid()}{_SUFFIX}")


def record(data_dir: str | os.PathLike[str], counts: dict[str, int]) -> None:
    """Add ``counts`` to this process's side file in ``data_dir`` (created private)."""
    counts = {k: int(v) for k, v in counts.items() if int(v) > 0}
    if not counts:
        return
    path = _path(data_dir)
    merged = _read(path)
    for k, v in counts.items():
        merged[k] = merged.get(k, 0) + v
    make_private_dir(data_dir)
    import json  # only when something was lost: every process claims, few record

    write_private(path, json.dumps(merged, sort_keys=True).encode("ascii"))


def _read(path: str) -> dict[str, int]:
    try:
        fd = open_private(path, os.O_RDONLY)
    except FileNotFoundError:
        return {}
    with os.fdopen(fd, "rb") as fh:
        raw = fh.read(_MAX_BYTES + 1)
    if len(raw) > _MAX_BYTES:
        return {}
    import json

    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(k): v
        for k, v in data.items()
        if isinstance(k, str) and type(v) is int and 0 < v < 2**53
    }


def _files(data_dir: str | os.PathLike[str]) -> list[str]:
    try:
        names = os.listdir(data_dir)
    except OSError:
        return []
    return [
        os.path.join(data_dir, n)
        for n in sorted(names)
        if n.startswith(_PREFIX) and n.endswith(_SUFFIX) and n != os.path.basename(_path(data_dir))
    ]


def peek(data_dir: str | os.PathLike[str]) -> dict[str, int]:
    """The counts of every side file in ``data_dir`` not claimed yet (for ``status``)."""
    total: dict[str, int] = {}
    for path in [*_files(data_dir), _path(data_dir)]:
        try:
            for k, v in _read(path).items():
                total[k] = total.get(k, 0) + v
        except OSError:
            continue
    return total


def claim(data_dir: str | os.PathLike[str]) -> dict[str, int]:
    """Take the side files other processes left in ``data_dir``: their counts, summed."""
    total: dict[str, int] = {}
    for path in _files(data_dir):
        head, name = os.path.split(path)
        mine = os.path.join(head, f".claimed.{os.getpid()}.{name}")
        try:
            os.rename(path, mine)  # atomic: exactly one claimant gets each file
        except OSError:
            continue
        try:
            for k, v in _read(mine).items():
                total[k] = total.get(k, 0) + v
        except OSError:
            pass
        finally:
            try:
                os.unlink(mine)
            except OSError:
                pass
    return total
