"""The checks a counting process makes without `re` accept exactly what the regular
expressions they replace accept (names, tag keys, app names, OS identities in names)."""

from __future__ import annotations

import os
import re
import sys
import types

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sounding.collection import metrics, scrub
from sounding.core import config
from sounding.core.exceptions import InvalidNameError

#: Text that is mostly made of the characters the rules care about, with some others.
_ALPHABET = st.sampled_from("aAzZ09_.-  \n\tK\u212a\u017fé\u00df/") | st.characters()
_TEXT = st.text(_ALPHABET, max_size=70)


@given(_TEXT)
def test_metric_name_check_matches_the_pattern(name: str) -> None:
    """A metric name is letters, digits and '_' in dot-separated parts, starting with a letter."""
    expected = re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*", name) is not None
    assert metrics._is_name(name) == expected


@given(_TEXT)
def test_tag_key_check_matches_the_pattern(key: str) -> None:
    """A tag key is 1-64 letters, digits, '_' or '.', starting with a letter or '_'."""
    expected = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]{0,63}", key) is not None
    assert metrics._is_tag_key(key) == expected


@given(_TEXT)
def test_app_name_check_matches_the_pattern(name: str) -> None:
    """An app name is 1-64 of letters, digits, '.', '_', '-', starting with a letter or digit."""
    expected = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name) is not None
    assert config._is_app_name(name) == expected


@given(st.text(_ALPHABET.filter(lambda c: c not in "/\\\x00"), max_size=70))
def test_implicit_app_name_sanitises_as_the_substitution_did(stem: str) -> None:
    """The app name taken from a script's file name replaces each character outside
    [A-Za-z0-9._-] with '-', as re.sub did, and is refused where the pattern refused it."""
    argv0 = f"/opt/{stem}.py"
    raw = os.path.splitext(os.path.basename(argv0))[0]  # as the function takes it
    clean = re.sub(r"[^A-Za-z0-9._-]", "-", raw).strip("-._")[:64]
    expected = clean if clean and re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", clean) else None
    main = types.ModuleType("__main__")
    main.__spec__ = None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", [argv0])
        mp.setitem(sys.modules, "__main__", main)
        assert config._implicit_app_name() == expected


def test_trailing_newline_is_not_part_of_a_valid_name() -> None:
    """A metric name or tag key ending in a newline is refused (the pattern's `$` let it by)."""
    with pytest.raises(InvalidNameError):
        metrics.validate_name("requests\n")
    with pytest.raises(InvalidNameError):
        metrics._validate_tag_key("route\n")


_WORDS = st.text(st.sampled_from("abAB1-._ K\u212aé"), min_size=1, max_size=12)


@given(user=_WORDS, host=_WORDS, name=st.text(st.sampled_from("abAB1-._ xK\u212aé"), max_size=40))
def test_identity_found_in_a_name_as_the_pattern_finds_it(user: str, host: str, name: str) -> None:
    """The OS user or host name is found in an ASCII name where the case-insensitive word
    pattern finds it (the same one of the two when both are there); other text uses it."""
    ident = scrub._Identity(user, host)
    if ident.pattern is None:
        assert ident.found_in(name) is None
        return
    m = ident.pattern.search(name)
    expected = None if m is None else ident.marks[m.group(0).lower()].strip("<>")
    assert ident.found_in(name) == expected


@given(st.text(_ALPHABET, max_size=20))
def test_specific_name_check_matches_the_pattern(name: str) -> None:
    """A user or host name is scrubbed when its words are made of \\w, '.' and '-'."""
    expected = (
        len(name) >= scrub._MIN_NAME_LEN
        and not name.isdigit()
        and name not in scrub.GENERIC_NAMES
        and re.fullmatch(r"[\w.-]+(?: [\w.-]+)*", name) is not None
    )
    assert scrub._is_specific_name(name) == expected


def test_scrub_flags_are_res_flags() -> None:
    """The scrubber's flag numbers are re's IGNORECASE, DOTALL and ASCII."""
    assert (scrub._I, scrub._S, scrub._A) == (re.IGNORECASE, re.DOTALL, re.ASCII)
