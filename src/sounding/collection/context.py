"""Bound context: key-value pairs that every event recorded in the current context carries.

One :class:`~contextvars.ContextVar` per key (structlog's ``contextvars`` style), so a value
bound in one thread or asyncio task never bleeds into another, and binding one key never
copies the others.

>>> from sounding.collection.context import bind_context, bound_context, clear_context, get_context
>>> clear_context()
>>> bind_context(request="r-17")
>>> with bound_context(step="export"):
...     sorted(get_context().items())
[('request', 'r-17'), ('step', 'export')]
>>> get_context()
{'request': 'r-17'}
>>> clear_context()

Carrying context across concurrency boundaries:

* **asyncio tasks** inherit it automatically: ``asyncio.create_task``/``gather`` copy the
  current context when the task is created, so each task sees what was bound before it
  started, and what it binds stays inside the task.
* ``asyncio.to_thread`` and ``loop.run_in_executor`` via :func:`wrap_context` carry it too.
* **threads** do not inherit context by default (before Python 3.14). Use
  :class:`ContextThread` instead of :class:`threading.Thread`,
  :class:`ContextThreadPoolExecutor` instead of
  :class:`~concurrent.futures.ThreadPoolExecutor`, or wrap a callable with
  :func:`wrap_context`.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

__all__ = [
    "ContextThread",
    "ContextThreadPoolExecutor",
    "bind_context",
    "bound_context",
    "clear_context",
    "get_context",
    "unbind_context",
    "wrap_context",
]

P = ParamSpec("P")
R = TypeVar("R")


class _Unbound:
    """The value of a key's ContextVar when the key is not bound in this context."""

    def __repr__(self) -> str:
        return "<unbound>"


_UNBOUND: Final = _Unbound()

# Key -> its ContextVar. Grows only when a new key is bound for the first time; entries are
# never removed, because a ContextVar must live as long as any context that holds it.
_VARS: dict[str, contextvars.ContextVar[Any]] = {}
_VARS_LOCK = threading.Lock()
# The keys bound in the current context, in binding order: reading the context costs what is
# bound now, not every key ever bound (5,000 keys bound once and unbound cost nothing).
_KEYS: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "sounding.context.keys", default=()
)


def _session_value(value: Any) -> str:
    """``session_id`` is stored as given (it is trusted downstream), so make it a scrubbed str
    here: an address or e-mail in it is replaced, and a ``str()`` that raises cannot reach
    the store (where it would fail every retry of its batch)."""
    if type(value) is not str:
        try:
            value = str(value)
            if type(value) is not str:
                raise TypeError("__str__ returned a non-str")
        except Exception:
            from sounding.core import health

            health.count("context.invalid_session_id")
            return f"<{type(value).__name__}>"
    from sounding.collection.scrub import scrub_text

    return scrub_text(value)


def bound_items() -> list[tuple[str, Any]] | tuple[()]:
    """The ``(key, value)`` pairs bound in the current context (the log pipeline's fast path)."""
    keys = _KEYS.get()
    if not keys:
        return ()  # nothing bound: no list to build
    out = []
    for key in keys:
        value = _VARS[key].get()
        if value is not _UNBOUND:
            out.append((key, value))
    return out


def _var(key: str) -> contextvars.ContextVar[Any]:
    var = _VARS.get(key)
    if var is None:
        with _VARS_LOCK:
            var = _VARS.get(key)
            if var is None:
                var = contextvars.ContextVar(f"sounding.context.{key}", default=_UNBOUND)
                _VARS[key] = var
    return var


def bind_context(**kv: Any) -> None:
    """Bind ``kv`` in the current context; every later event here carries these fields.

    The binding lasts until it is unbound or the context ends (the thread, the asyncio task);
    use :func:`bound_context` for a change scoped to a block.
    """
    keys = _KEYS.get()
    added: list[str] = []
    for key, value in kv.items():
        if key == "session_id":
            value = _session_value(value)
        _var(key).set(value)
        if key not in keys:
            added.append(key)
    if added:
        _KEYS.set(keys + tuple(added))


def unbind_context(*keys: str) -> None:
    """Remove ``keys`` from the current context; keys that are not bound are ignored."""
    for key in keys:
        var = _VARS.get(key)
        if var is not None:
            var.set(_UNBOUND)
    bound = _KEYS.get()
    remaining = tuple(k for k in bound if k not in keys)
    if len(remaining) != len(bound):
        _KEYS.set(remaining)


def get_context() -> dict[str, Any]:
    """A new dict of everything bound in the current context."""
    return dict(bound_items())


def clear_context() -> None:
    """Unbind every key in the current context."""
    for key in _KEYS.get():
        _VARS[key].set(_UNBOUND)
    _KEYS.set(())


@contextmanager
def bound_context(**kv: Any) -> Iterator[None]:
    """Bind ``kv`` for the duration of a ``with`` block, then restore the previous values.

    Keys that were unbound before are unbound again; the restore also happens when the block
    raises.

    >>> with bound_context(job="nightly-export"):
    ...     get_context()["job"]
    'nightly-export'
    >>> "job" in get_context()
    False
    """
    tokens: list[tuple[contextvars.ContextVar[Any], contextvars.Token[Any]]] = []
    before = _KEYS.get()
    for key, value in kv.items():
        if key == "session_id":
            value = _session_value(value)
        var = _var(key)
        tokens.append((var, var.set(value)))
    _KEYS.set(tuple(dict.fromkeys(before + tuple(kv))))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
        # Keys bound inside the block (bind_context) stay; the block's own ones are restored.
        current = tuple(dict.fromkeys(before + _KEYS.get()))
        _KEYS.set(tuple(k for k in current if _VARS[k].get() is not _UNBOUND))


def wrap_context(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` bound to a copy of the current context, to be called in another thread.

    Each call runs in its own copy of the captured context, so the same wrapped callable can
    run in several threads at once and what one call binds does not leak into another.

    >>> import threading
    >>> clear_context()
    >>> with bound_context(job="j1"):
    ...     seen = []
    ...     t = threading.Thread(target=wrap_context(lambda: seen.append(get_context())))
    ...     t.start(); t.join()
    >>> seen
    [{'job': 'j1'}]
    """
    captured = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return captured.copy().run(fn, *args, **kwargs)

    return run


class ContextThread(threading.Thread):
    """A :class:`threading.Thread` that runs in a copy of the context of the caller of
    :meth:`start` (the behaviour Python 3.14 offers with ``thread_inherit_context``).

    >>> with bound_context(job="j2"):
    ...     seen = []
    ...     t = ContextThread(target=lambda: seen.append(get_context()))
    ...     t.start(); t.join()
    >>> seen
    [{'job': 'j2'}]
    """

    _sounding_context: contextvars.Context | None = None

    def start(self) -> None:
        """Capture the current context, then start the thread."""
        self._sounding_context = contextvars.copy_context()
        super().start()

    def run(self) -> None:
        """Run the target inside the context captured by :meth:`start`."""
        ctx = self._sounding_context
        if ctx is None:  # run() called directly, as Thread allows: use the caller's context
            super().run()
        else:
            ctx.run(super().run)


if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    class ContextThreadPoolExecutor(ThreadPoolExecutor):
        """A :class:`~concurrent.futures.ThreadPoolExecutor` whose tasks run in a copy of the
        context of the caller of :meth:`submit` (and so of :meth:`map`)."""

        def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]: ...


def _make_executor_class() -> type[ThreadPoolExecutor]:
    # concurrent.futures imports the logging package: define the class on first use only.
    from concurrent.futures import ThreadPoolExecutor

    class ContextThreadPoolExecutor(ThreadPoolExecutor):
        """A :class:`~concurrent.futures.ThreadPoolExecutor` whose tasks run in a copy of the
        context of the caller of :meth:`submit` (and so of :meth:`map`).

        >>> with ContextThreadPoolExecutor(max_workers=2) as pool, bound_context(job="j3"):
        ...     pool.submit(get_context).result()
        {'job': 'j3'}
        """

        def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
            """Schedule ``fn(*args, **kwargs)`` in a copy of the current context."""
            ctx = contextvars.copy_context()
            return super().submit(ctx.run, functools.partial(fn, *args, **kwargs))

    ContextThreadPoolExecutor.__module__ = __name__
    return ContextThreadPoolExecutor


def __getattr__(name: str) -> Any:
    """Define :class:`ContextThreadPoolExecutor` when it is first used (PEP 562)."""
    if name == "ContextThreadPoolExecutor":
        cls = _make_executor_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
