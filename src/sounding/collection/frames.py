"""Frames of stored stacks: file names without the machine's own directories.

A stack recorded with an error names files. Their absolute paths tell where the interpreter,
the virtualenv and the project live (often under the user's home, or in a temporary working
directory), so every stored frame is made relative: to the project (the working directory or
the main script's folder), ``<site-packages>/...`` or ``<stdlib>/...``; any other path is
scrubbed. sounding's own frames (a boundary's or timer's wrapper) are left out of stacks.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import traceback

__all__ = ["clean_traceback", "is_own_file", "relative_path", "reset_path_roots"]

_PACKAGE_DIR: Final = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_roots_cache: list[tuple[str, str]] | None = None


def _path_roots() -> list[tuple[str, str]]:
    """``(absolute prefix, replacement)`` pairs, the longest prefix first."""
    global _roots_cache
    roots = _roots_cache
    if roots is None:
        import site
        import sysconfig

        found: list[tuple[str, str]] = []
        for key in ("purelib", "platlib"):
            found.append((sysconfig.get_paths().get(key, ""), "<site-packages>"))
        try:
            for path in (*site.getsitepackages(), site.getusersitepackages()):
                found.append((path, "<site-packages>"))
        except Exception:  # a virtualenv without these functions: sysconfig's are enough
            pass
        for key in ("stdlib", "platstdlib"):
            found.append((sysconfig.get_paths().get(key, ""), "<stdlib>"))
        main = sys.modules.get("__main__")
        main_file = getattr(main, "__file__", None)
        if isinstance(main_file, str) and main_file:
            found.append((os.path.dirname(os.path.abspath(main_file)), ""))
        roots = [
            (os.path.normcase(os.path.abspath(p)).rstrip(os.sep) + os.sep, mark)
            for p, mark in found
            if p
        ]
        roots.sort(key=lambda r: -len(r[0]))
        _roots_cache = roots
    return roots


def reset_path_roots() -> None:
    """Forget the path prefixes read so far (tests, after a change of ``__main__``)."""
    global _roots_cache
    _roots_cache = None
    _relative_path.cache_clear()


def relative_path(path: str) -> str:
    """A frame's file name without the machine's own directories: relative to the project
    (the working directory or the main script's folder), ``<site-packages>/...`` or
    ``<stdlib>/...``; any other path is scrubbed (home directories become ``~``).

    >>> import json
    >>> relative_path(json.__file__)
    '<stdlib>/json/__init__.py'
    """
    try:
        cwd = os.getcwd()
    except OSError:  # the working directory was deleted
        cwd = ""
    return _relative_path(path, cwd)


def _scrubbed(path: str) -> str:
    # Imported here: the scrubber's patterns are compiled only when a stack is recorded.
    from sounding.collection.scrub import scrub_text

    return scrub_text(path)


@functools.lru_cache(maxsize=1024)
def _relative_path(path: str, cwd: str) -> str:
    if not path or path.startswith("<") or not os.path.isabs(path):
        return _scrubbed(path)
    norm = os.path.normcase(path)
    best: tuple[str, str] | None = None
    candidates = list(_path_roots())
    if cwd:
        candidates.append((os.path.normcase(cwd).rstrip(os.sep) + os.sep, ""))
    for prefix, mark in candidates:
        if norm.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, mark)
    if best is None:
        return _scrubbed(path)
    rest = path[len(best[0]) :].replace(os.sep, "/")
    return f"{best[1]}/{rest}" if best[1] else rest


def is_own_file(filename: str) -> bool:
    """Whether ``filename`` is one of sounding's own modules (a wrapper frame in a stack)."""
    return filename.startswith(_PACKAGE_DIR)


def clean_traceback(exception: traceback.TracebackException) -> traceback.TracebackException:
    """``exception`` (and the exceptions chained to it) with frames as stored: sounding's own
    frames left out (but the innermost), file names made relative. Modified in place."""
    import traceback as tb_module

    seen: set[int] = set()
    current: tb_module.TracebackException | None = exception
    pending: list[tb_module.TracebackException] = []
    while current is not None or pending:
        if current is None:
            current = pending.pop()
        if id(current) in seen:
            current = None
            continue
        seen.add(id(current))
        frames = list(current.stack)
        kept = [
            f for i, f in enumerate(frames) if i == len(frames) - 1 or not is_own_file(f.filename)
        ]
        for frame in kept:
            frame.filename = relative_path(frame.filename)
        current.stack = tb_module.StackSummary.from_list(kept)
        for chained in (current.__cause__, current.__context__):
            if chained is not None:
                pending.append(chained)
        current = None
    return exception
