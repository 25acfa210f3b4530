"""The front door: exactly the documented names, each resolvable, import stays light."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sounding

ROOT = Path(__file__).resolve().parents[1]


def documented_names() -> set[str]:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `(\w+)` \|", text, re.M))


def test_all_is_exactly_the_documented_names() -> None:
    """sounding.__all__ and the table in docs/api.md list the same names."""
    assert set(sounding.__all__) == documented_names()


def test_all_is_sorted() -> None:
    """__all__ is kept sorted so additions are easy to review."""
    assert list(sounding.__all__) == sorted(sounding.__all__)


def test_every_public_name_resolves() -> None:
    """Each name in __all__ loads and is documented with a docstring."""
    for name in sounding.__all__:
        value = getattr(sounding, name)
        if name != "__version__":
            assert getattr(value, "__doc__", None), name


def test_unknown_attribute_is_an_attribute_error() -> None:
    """A typo raises AttributeError naming the attribute."""
    with pytest.raises(AttributeError, match="countre"):
        sounding.countre  # type: ignore[attr-defined]  # noqa: B018


def test_import_loads_no_heavy_module() -> None:
    """`import sounding` alone imports none of the layers, logging, sqlite3 or click."""
    code = (
        "import sys, sounding; "
        "heavy = [m for m in ('sounding.collection.metrics', 'sounding.storage', 'logging', "
        "'sqlite3', 'click', 'rich', 'platformdirs', 'typing') if m in sys.modules]; "
        "print(heavy)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(sounding.__file__).parents[1])}
    out = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "[]"


def test_first_counter_loads_no_exit_or_text_scrubbing_module(tmp_path: Path) -> None:
    """A first counter imports neither the store, logging, getpass/socket nor compiles the
    scrubber's text rules: those wait for the exit flush or the first scrubbed text."""
    code = (
        "import sys, sounding; sounding.counter('x').inc(); "
        "from sounding.collection import scrub; "
        "heavy = [m for m in ('sounding.storage', 'sounding.collection.log', 'logging', "
        "'sqlite3', 'getpass', 'socket', 'click', 'rich', 'platformdirs', 'tempfile') "
        "if m in sys.modules]; "
        "compiled = [n for n in ('_PEM', '_TOKENS', '_PHONE', '_EMAIL_DOMAIN') "
        "if not isinstance(getattr(scrub, n), scrub._LazyPattern) "
        "or scrub._is_compiled(getattr(scrub, n))]; "
        "print(heavy, compiled)"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(sounding.__file__).parents[1]),
        "SOUNDING_DATA_DIR": str(tmp_path / "data"),
    }
    out = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "[] []"


def test_lazy_scrub_pattern_compiles_on_first_use() -> None:
    """A deferred scrubber pattern behaves as the compiled one once used."""
    from sounding.collection import scrub

    lazy = scrub._compile(r"a(b+)", 0)
    assert not scrub._is_compiled(lazy)
    assert lazy.sub("x", "abbbc") == "xc"
    assert scrub._is_compiled(lazy)
    assert [m.group(1) for m in lazy.finditer("ab abb")] == ["b", "bb"]
    assert lazy.pattern == "a(b+)"


#: What the first counter and its exit flush must not import (the public dataclasses, the
#: settings' paths and the event log load on first use only).
_NOT_FOR_A_COUNTER = (
    "dataclasses",
    "inspect",
    "ast",
    "dis",
    "pathlib",
    "urllib.parse",
    "ipaddress",
    "sounding.core.settings",
    "sounding.core.snapshot",
    "sounding.core.consent_choice",
    "sounding.collection.jsonl",
    "sounding.core.sketch",
    "json",
    "typing",
    "re",
    "datetime",
    "signal",
    "contextlib",
)


def test_first_counter_and_its_exit_flush_load_no_dataclasses_nor_pathlib(
    tmp_path: Path,
) -> None:
    """A process that counts once imports neither dataclasses/inspect, pathlib, json, typing,
    re, datetime (sqlite3's adapters), signal nor contextlib, and its exit flush still stores
    the count (the second process: the first one also runs the store's maintenance)."""
    code = (
        "import atexit, sys\n"
        f"unwanted = {_NOT_FOR_A_COUNTER!r}\n"
        # Registered first, so it runs last: after sounding's exit flush.
        "atexit.register(lambda: print('exit', [m for m in unwanted if m in sys.modules]))\n"
        "import sounding\n"
        "sounding.counter('x').inc()\n"
        "print('run', [m for m in unwanted if m in sys.modules])\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(sounding.__file__).parents[1]),
        "SOUNDING_DATA_DIR": str(tmp_path / "data"),
    }
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, check=True
        )
    assert out.stdout.splitlines() == ["run []", "exit []"]
    import sqlite3

    conn = sqlite3.connect(tmp_path / "data" / "telemetry.db")
    try:
        rows = conn.execute(
            "SELECT sum(p.sum) FROM points p JOIN series s ON s.id = p.series_id "
            "WHERE s.name = 'x' AND p.resolution = 60"
        ).fetchall()
    finally:
        conn.close()
    assert rows == [(2.0,)]


def test_metric_snapshot_still_importable_from_core_types() -> None:
    """``from sounding.core.types import MetricSnapshot`` (its old home) gives the public class."""
    import sounding
    from sounding.core.types import MetricSnapshot

    assert MetricSnapshot is sounding.MetricSnapshot
    import sounding.core.types as types

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        types.Nope  # noqa: B018
