"""Benchmark: what a whole process pays - start-up imports, the exit flush, a small CLI.

Run: ``python bench/bench_process.py`` (from the repository, with the bench extra).

Every figure comes from whole ``python`` processes run side by side, with the bytecode cache
warm on both sides (``PYTHONDONTWRITEBYTECODE`` is removed from the children's environment and
each command runs once before it is timed: without it sounding's modules would be compiled on
every start while the installed peers load their ``.pyc``):

- ``python -c 'import sounding; sounding.counter("x").inc()'`` against the same with
  prometheus_client, wall time of the whole process, exit flush included (budget 0.5x);
- the imports pulled in by that first counter, from ``python -X importtime`` (the top-level
  imports after start-up), against ``import prometheus_client`` (budget 25 ms);
- the exit flush of that process: from the first ``atexit`` hook to the last (budget 5 ms);
- an instrumented click CLI (a counter and a timed command) against the same CLI without
  sounding: extra CPU per process (user + system, from ``wait4``; budget 15 ms).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, print_table

SRC = str(Path(__file__).resolve().parents[1] / "src")
RUNS = 15

OURS = 'import sounding; sounding.counter("x").inc()'
PROM = 'import prometheus_client; prometheus_client.Counter("x", "x").inc()'

EXIT_PROBE = """
import atexit, sys, time
_mark = [0.0]
atexit.register(lambda: sys.stderr.write(f"EXIT {time.perf_counter() - _mark[0]}\\n"))
import sounding
sounding.counter("x").inc()
atexit.register(lambda: _mark.__setitem__(0, time.perf_counter()))  # runs first
"""

CLI_PLAIN = """
import click

@click.group()
def cli():
    pass

@cli.command()
@click.argument("path")
def export(path):
    click.echo(path.upper())

cli()
"""

CLI_OURS = """
import click
import sounding
from sounding import track_execution_time

@click.group()
def cli():
    sounding.counter("cli.runs").inc()

@cli.command()
@click.argument("path")
@track_execution_time("cli.export")
def export(path):
    click.echo(path.upper())

cli()
"""


def _env(data_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = SRC
    env["SOUNDING_DATA_DIR"] = data_dir
    return env


def _run(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system) and stderr of one whole process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{args} failed: {err}")
    return wall, usage.ru_utime + usage.ru_stime, err


def _best(
    commands: dict[str, list[str]], env: dict[str, str], runs: int = RUNS
) -> dict[str, tuple[float, float]]:
    """Best wall and best CPU time of each command, run in turns (after one warm-up each)."""
    for args in commands.values():
        _run(args, env)  # writes the bytecode cache, creates the store
    best = {k: (float("inf"), float("inf")) for k in commands}
    for _ in range(runs):
        for name, args in commands.items():
            wall, cpu, _ = _run(args, env)
            w, c = best[name]
            best[name] = (min(w, wall), min(c, cpu))
    return best


def import_ms(code: str, env: dict[str, str], runs: int = RUNS) -> tuple[float, list[str]]:
    """Milliseconds of the top-level imports ``code`` triggers (``-X importtime``, best of
    ``runs`` per module), and the heaviest three."""
    best: dict[str, int] = {}
    for _ in range(runs):
        err = _run([sys.executable, "-X", "importtime", "-c", code], env)[2]
        after_site = False
        for line in err.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            _, cum, name = line.split("|")
            if name.startswith("  "):  # nested: counted in its parent
                continue
            name = name.strip()
            if name == "site":
                after_site = True
                continue
            if after_site:
                best[name] = min(best.get(name, 10**12), int(cum))
    top = sorted(best, key=lambda k: -best[k])[:3]
    return sum(best.values()) / 1000, [f"{k} {best[k] / 1000:.1f}" for k in top]


def main() -> list[Row]:
    """Measure whole processes and print the rows."""
    with tempfile.TemporaryDirectory(prefix="sounding-bench-") as tmp:
        env = _env(str(Path(tmp) / "data"))
        py = sys.executable
        cli_plain = Path(tmp) / "cli_plain.py"
        cli_plain.write_text(CLI_PLAIN)
        cli_ours = Path(tmp) / "cli_ours.py"
        cli_ours.write_text(CLI_OURS)
        whole = _best(
            {
                "bare": [py, "-c", "pass"],
                "ours": [py, "-c", OURS],
                "prom": [py, "-c", PROM],
                "cli_plain": [py, str(cli_plain), "export", "take-1.wav"],
                "cli_ours": [py, str(cli_ours), "export", "take-1.wav"],
            },
            env,
        )
        ours_imp, ours_top = import_ms(OURS, env)
        prom_imp, _prom_top = import_ms("import prometheus_client", env)
        _run([py, "-c", EXIT_PROBE], env)
        exits = []
        for _ in range(RUNS):
            err = _run([py, "-c", EXIT_PROBE], env)[2]
            exits.extend(float(line.split()[1]) for line in err.splitlines() if line.startswith("EXIT"))
    bare_ms = whole["bare"][0] * 1e3
    rows = [
        Row(
            "process: import, counter, exit",
            whole["ours"][0] * 1e3,
            {"prometheus_client": whole["prom"][0] * 1e3},
            budget=0.5,
            note=f"wall; CPU {whole['ours'][1] * 1e3:.0f} vs {whole['prom'][1] * 1e3:.0f} ms; "
            f"`python -c pass` alone {bare_ms:.0f} ms",
        ),
        Row(
            "imports of the first counter",
            ours_imp,
            {"import prometheus_client": prom_imp},
            limit=25.0,
            note="-X importtime; heaviest: " + ", ".join(ours_top),
        ),
        Row(
            "exit flush after one count",
            min(exits) * 1e3 if exits else float("nan"),
            limit=5.0,
            note="first atexit hook to last: collect, write SQLite, close",
        ),
        Row(
            "instrumented click CLI, extra CPU",
            (whole["cli_ours"][1] - whole["cli_plain"][1]) * 1e3,
            limit=15.0,
            note=f"extra CPU per process; the CLI alone {whole['cli_plain'][1] * 1e3:.0f} ms CPU",
        ),
    ]
    print_table("Whole processes (bytecode cache warm on both sides)", rows, unit="ms")
    return rows


if __name__ == "__main__":
    main()
