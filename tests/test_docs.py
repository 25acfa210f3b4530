"""The README's and docs' Python examples run as written."""

from __future__ import annotations

import re
import warnings
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


def _cli_sections() -> dict[str, str]:
    """docs/cli.md split at its ``## `sounding NAME`` headings, by command name."""
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    sections: dict[str, str] = {}
    for part in re.split(r"^## ", text, flags=re.M)[1:]:
        m = re.match(r"`sounding ([a-z-]+)", part)
        if m:
            sections[m.group(1)] = part
    return sections


def _registered() -> list[tuple[str, list[str]]]:
    import click

    from sounding.presentation.cli import main

    out = []
    for name, command in sorted(main.commands.items()):
        opts = []
        for p in command.params:
            # --data-dir, --app and --local added to every command are the global options.
            if isinstance(p, click.Option) and p.expose_value is not False:
                opts += [o for o in (*p.opts, *p.secondary_opts) if o.startswith("--")]
        out.append((name, opts))
    return out


@pytest.mark.parametrize(("command", "options"), _registered(), ids=[c for c, _ in _registered()])
def test_every_command_and_option_is_documented(command: str, options: list[str]) -> None:
    """docs/cli.md has a section for every registered command naming each of its options."""
    sections = _cli_sections()
    assert command in sections, f"docs/cli.md has no section for `sounding {command}`"
    missing = [o for o in options if not re.search(re.escape(o) + r"(?![a-z-])", sections[command])]
    assert missing == [], f"`sounding {command}` options missing from docs/cli.md: {missing}"


def test_global_options_are_documented() -> None:
    """docs/cli.md's global options table names every option of the sounding group."""
    from sounding.presentation.cli import main

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    table = text.split("## Global options", 1)[1].split("\n## ", 1)[0]
    for p in main.params:
        for opt in p.opts:
            if opt.startswith("--"):
                assert f"`{opt}" in table, opt


def test_help_examples_name_metrics_the_demo_records() -> None:
    """Every recorder.* metric in an example of --help or docs/cli.md is one the demo has."""
    import sounding.presentation.demo as demo
    from sounding.presentation.cli import main
    from sounding.presentation.demo import REGRESSED_METRIC

    source = Path(demo.__file__).read_text(encoding="utf-8")
    known = set(re.findall(r'"(recorder\.[a-z_.]+)"', source)) | {REGRESSED_METRIC}
    texts = [(ROOT / "docs" / "cli.md").read_text(encoding="utf-8")]
    texts += [c.help or "" for c in main.commands.values()] + [main.help or ""]
    used = {m.rstrip(".") for t in texts for m in re.findall(r"recorder\.[a-z_.]+", t)}
    assert used
    assert used <= known, sorted(used - known)


def _console_commands() -> list[tuple[str, str]]:
    """``sounding ...`` command lines in the console blocks of README.md and docs/cli.md."""
    out = []
    block = re.compile(r"^```console\n(.*?)^```", re.S | re.M)
    for path in (ROOT / "README.md", ROOT / "docs" / "cli.md"):
        for body in block.findall(path.read_text(encoding="utf-8")):
            for line in body.splitlines():
                text = line.removeprefix("$ ").split(" #")[0].split(" | ")[0].split(" > ")[0]
                words = text.split()
                while words and "=" in words[0] and not words[0].startswith("-"):
                    words = words[1:]  # VAR=value prefixes
                if words and words[0].endswith("sounding"):
                    out.append((f"{path.name}: {text.strip()}", " ".join(words[1:])))
    return out


@pytest.mark.parametrize(
    ("where", "args"), _console_commands(), ids=[w for w, _ in _console_commands()]
)
def test_documented_command_lines_parse(where: str, args: str) -> None:
    """Every `sounding ...` line in README.md and docs/cli.md names a real command and
    only options it has (parsed by the real click group, not run)."""
    import shlex

    import click

    from sounding.presentation.cli import main

    words = shlex.split(args)
    with main.make_context("sounding", list(words), resilient_parsing=False) as ctx:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # click 8.2 protected_args
            rest = [*ctx.protected_args, *ctx.args]
        assert rest, f"{where}: no command"
        command = main.get_command(ctx, rest[0])
        assert command is not None, f"{where}: no command {rest[0]!r}"
        try:
            command.make_context(rest[0], rest[1:], parent=ctx).close()
        except click.exceptions.Exit:
            pass
        except click.BadParameter as exc:
            # An example file (alerts.toml) need not exist here; any other error counts.
            if "does not exist" not in str(exc):
                pytest.fail(f"{where}: {exc}")
