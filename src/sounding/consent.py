"""Public home of the consent helper (see :mod:`sounding.core.consent`).

>>> import sounding.consent
>>> sounding.consent.WHAT_IS_SENT[sounding.TelemetryLevel.OFF]
'nothing'
"""

from sounding.core.consent import (
    CONSENT_FILE,
    WHAT_IS_SENT,
    ConsentChoice,
    clear_choice,
    consent_path,
    first_run_notice,
    get_choice,
    set_choice,
)

__all__ = [
    "CONSENT_FILE",
    "WHAT_IS_SENT",
    "ConsentChoice",
    "clear_choice",
    "consent_path",
    "first_run_notice",
    "get_choice",
    "set_choice",
]
