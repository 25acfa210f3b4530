"""L4 presentation: the ``sounding`` command line and its shared output helpers.

Nothing is imported here so that ``import sounding`` never pays for click or rich; import
:mod:`sounding.presentation.cli` (the click group ``main``) or
:mod:`sounding.presentation.output` directly.
"""

from __future__ import annotations

__all__: list[str] = []
