"""The exit flush's signal mask, set through the C module: SIGINT and SIGTERM are held
while it collects and the previous mask comes back after."""

from __future__ import annotations

import signal
import sys

import pytest

from sounding.collection import metrics
from sounding.core import _sigmask


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="no signal masks here")
def test_hold_blocks_sigint_and_sigterm_and_release_restores() -> None:
    """_hold_signals blocks both signals in the main thread; _release_signals puts back the
    mask it returned."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    previous = metrics._hold_signals()
    try:
        assert previous is not None
        held = signal.pthread_sigmask(signal.SIG_BLOCK, ())
        assert {signal.SIGINT, signal.SIGTERM} <= held
    finally:
        if previous is not None:
            metrics._release_signals(previous)
    assert signal.pthread_sigmask(signal.SIG_BLOCK, ()) == before
    assert {int(s) for s in before} == {int(s) for s in previous}


def test_numbers_are_signals() -> None:
    """The C module's numbers are signal's."""
    assert (_sigmask.SIGINT, _sigmask.SIGTERM) == (signal.SIGINT, signal.SIGTERM)
    if sys.platform != "win32":
        assert (_sigmask.SIG_BLOCK, _sigmask.SIG_SETMASK) == (signal.SIG_BLOCK, signal.SIG_SETMASK)
