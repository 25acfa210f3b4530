"""``signal``'s mask functions and numbers, from the C module ``_signal``.

The exit flush blocks SIGINT and SIGTERM around its collect; the ``signal`` module would
convert every signal, handler and mask to an enum on import (about 0.4 ms of a short
process's exit) for numbers sounding only passes back. Type checkers see ``signal``'s
names. ``pthread_sigmask`` (and ``SIG_BLOCK``/``SIG_SETMASK``) is missing where the
platform has none (Windows), as in ``signal``: check with ``hasattr``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from signal import SIG_BLOCK as SIG_BLOCK
    from signal import SIG_SETMASK as SIG_SETMASK
    from signal import SIGINT as SIGINT
    from signal import SIGTERM as SIGTERM
    from signal import pthread_sigmask as pthread_sigmask
else:
    import _signal

    SIGINT = _signal.SIGINT
    SIGTERM = _signal.SIGTERM
    if hasattr(_signal, "pthread_sigmask"):
        SIG_BLOCK = _signal.SIG_BLOCK
        SIG_SETMASK = _signal.SIG_SETMASK
        pthread_sigmask = _signal.pthread_sigmask
