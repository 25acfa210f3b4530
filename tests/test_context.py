"""Bound context: one ContextVar per key, restoring scopes, threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sounding.collection.context import (
    ContextThread,
    ContextThreadPoolExecutor,
    bind_context,
    bound_context,
    clear_context,
    get_context,
    unbind_context,
    wrap_context,
)


@pytest.fixture(autouse=True)
def _clean_context() -> Iterator[None]:
    clear_context()
    yield
    clear_context()


def test_bind_get_unbind_clear() -> None:
    """Bound keys show up in get_context; unbind removes some, clear removes all."""
    bind_context(a=1, b="two")
    assert get_context() == {"a": 1, "b": "two"}
    unbind_context("a", "never-bound")
    assert get_context() == {"b": "two"}
    bind_context(c=None)
    assert get_context() == {"b": "two", "c": None}
    clear_context()
    assert get_context() == {}


def test_get_context_returns_a_copy() -> None:
    """Changing the returned dict does not change what is bound."""
    bind_context(a=1)
    ctx = get_context()
    ctx["a"] = 2
    ctx["b"] = 3
    assert get_context() == {"a": 1}


def test_bound_context_restores_previous_values_and_unbinds_new_keys() -> None:
    """On exit, keys bound before get their old value back and new keys are unbound."""
    bind_context(a="outer")
    with bound_context(a="inner", b="new"):
        assert get_context() == {"a": "inner", "b": "new"}
        with bound_context(b="newer"):
            assert get_context()["b"] == "newer"
        assert get_context()["b"] == "new"
    assert get_context() == {"a": "outer"}


def test_bound_context_restores_on_exception() -> None:
    """An exception leaving the block still restores the context, and passes through."""
    bind_context(a="outer")
    error = RuntimeError("boom")
    with pytest.raises(RuntimeError) as caught, bound_context(a="inner"):
        raise error
    assert caught.value is error
    assert get_context() == {"a": "outer"}


def test_bound_context_restores_after_unbind_inside() -> None:
    """Unbinding inside the block does not stop the previous value coming back."""
    bind_context(a="outer")
    with bound_context(a="inner"):
        unbind_context("a")
        assert "a" not in get_context()
    assert get_context() == {"a": "outer"}


@given(
    st.dictionaries(
        st.from_regex(r"[a-z_][a-z0-9_]{0,15}", fullmatch=True),
        st.one_of(st.integers(), st.text(max_size=20), st.none(), st.floats(allow_nan=False)),
        max_size=8,
    ),
    st.dictionaries(
        st.from_regex(r"[a-z_][a-z0-9_]{0,15}", fullmatch=True), st.integers(), max_size=8
    ),
)
def test_bound_context_round_trip(before: dict[str, Any], inner: dict[str, Any]) -> None:
    """Whatever is bound before and inside, the block sees the merge and exit restores."""
    clear_context()
    bind_context(**before)
    with bound_context(**inner):
        assert get_context() == {**before, **inner}
    assert get_context() == before
    clear_context()


def test_plain_thread_does_not_inherit_but_context_thread_does() -> None:
    """threading.Thread starts with an empty context; ContextThread with a copy of ours."""
    bind_context(request="r-1")
    seen: dict[str, dict[str, Any]] = {}

    def look(label: str) -> None:
        seen[label] = get_context()

    plain = threading.Thread(target=look, args=("plain",))
    plain.start()
    plain.join()
    carried = ContextThread(target=look, args=("carried",))
    carried.start()
    carried.join()
    assert seen == {"plain": {}, "carried": {"request": "r-1"}}


def test_context_thread_changes_do_not_leak_back() -> None:
    """What a ContextThread binds stays in that thread."""
    bind_context(request="r-1")

    def work() -> None:
        bind_context(request="changed", extra=1)

    t = ContextThread(target=work)
    t.start()
    t.join()
    assert get_context() == {"request": "r-1"}


def test_context_thread_captures_at_start() -> None:
    """The context is the one of the caller of start(), like Python 3.14's Thread."""
    seen: list[dict[str, Any]] = []
    t = ContextThread(target=lambda: seen.append(get_context()))
    bind_context(phase="started")
    t.start()
    t.join()
    assert seen == [{"phase": "started"}]


def test_executor_propagates_context_per_submit() -> None:
    """Each submitted task runs in a copy of the context of its submit() call."""
    with ContextThreadPoolExecutor(max_workers=2) as pool:
        futures = []
        for i in range(6):
            with bound_context(job=i):
                futures.append(pool.submit(lambda: get_context()["job"]))
        assert [f.result() for f in futures] == list(range(6))
        with bound_context(job="mapped"):
            assert list(pool.map(lambda _: get_context()["job"], range(3))) == ["mapped"] * 3


def test_wrap_context_runs_each_call_in_a_fresh_copy() -> None:
    """A wrapped callable sees the captured context, and one call's bindings don't leak."""
    bind_context(request="r-9")

    def work() -> dict[str, Any]:
        before = get_context()
        bind_context(leaked=True)
        return before

    wrapped = wrap_context(work)
    clear_context()
    results: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda: results.append(wrapped())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [{"request": "r-9"}] * 3
    assert get_context() == {}


def test_asyncio_to_thread_carries_context() -> None:
    """asyncio.to_thread copies the context into the worker thread by itself."""

    async def main() -> dict[str, Any]:
        with bound_context(request="r-async"):
            return await asyncio.to_thread(get_context)

    assert asyncio.run(main()) == {"request": "r-async"}


def test_asyncio_tasks_inherit_and_do_not_bleed() -> None:
    """gather() of tasks binding different values: each sees its own, none leaks out."""

    async def task(i: int) -> tuple[Any, Any]:
        inherited = get_context().get("parent")
        with bound_context(worker=i):
            # Let the other tasks run and bind their own values in between.
            for _ in range(3):
                await asyncio.sleep(0)
            mine = get_context()["worker"]
        return inherited, mine

    async def main() -> list[tuple[Any, Any]]:
        bind_context(parent="p")
        results = await asyncio.gather(*(task(i) for i in range(10)))
        assert get_context() == {"parent": "p"}
        return list(results)

    assert asyncio.run(main()) == [("p", i) for i in range(10)]


def test_asyncio_task_binding_stays_in_task() -> None:
    """bind_context inside a task does not change the context of the code awaiting it."""

    async def child() -> None:
        bind_context(inside="task")

    async def main() -> dict[str, Any]:
        await asyncio.create_task(child())
        return get_context()

    assert asyncio.run(main()) == {}
