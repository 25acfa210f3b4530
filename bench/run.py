"""Run the benchmarks in bench/ and print one table: every figure, its budget, OK or OVER.

    python bench/run.py                 # all
    python bench/run.py metrics percall # only bench_metrics.py and bench_percall.py
    python bench/run.py --check         # exit 1 when a figure is over its budget

Timings are for people, never for the test suite: ``--check`` is a tool to run by hand (or
in a job that tolerates a noisy machine), not a test. Scripts that print their own output
(detection quality) run too; their lines come before the table.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent / "src"))
    import _harness

    check = "--check" in argv
    wanted = {a for a in argv if not a.startswith("-")}
    _harness.QUIET = True
    took: list[str] = []
    for path in sorted(HERE.glob("bench_*.py")):
        area = path.stem.removeprefix("bench_")
        if wanted and area not in wanted:
            continue
        print(f"# running {path.name} ...", flush=True)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        t0 = time.perf_counter()
        module.main()
        took.append(f"{area} {time.perf_counter() - t0:.0f} s")
    over = _harness.print_summary()
    print("# took: " + ", ".join(took))
    if check and over:
        print(f"# --check: {over} figure(s) OVER budget", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
