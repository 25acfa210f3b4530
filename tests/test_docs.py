"""The README's and docs' Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def examples() -> list[tuple[str, str]]:
    out = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for i, block in enumerate(FENCE.findall(path.read_text(encoding="utf-8"))):
            out.append((f"{path.relative_to(ROOT)}#{i + 1}", block))
    return out


@pytest.mark.parametrize(("where", "code"), examples(), ids=[w for w, _ in examples()])
def test_example_runs(where: str, code: str, data_dir: Path) -> None:
    """Each fenced python block executes without error in a private data dir."""
    import sounding

    namespace: dict[str, object] = {"__name__": "__docs__"}
    exec(compile(code, where, "exec"), namespace)
    sounding.shutdown(timeout=5)


def test_every_doc_is_linked_from_the_index() -> None:
    """docs/index.md links every page in docs/."""
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    missing = [p.name for p in (ROOT / "docs").glob("*.md") if p.name != "index.md"
               and f"({p.name})" not in index]
    assert missing == []
