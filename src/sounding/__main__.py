"""``python -m sounding``: the ``sounding`` command line."""

from __future__ import annotations

from sounding.presentation.cli import main

if __name__ == "__main__":
    main(prog_name="sounding")
