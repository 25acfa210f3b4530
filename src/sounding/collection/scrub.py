"""The scrubber: remove personal data and secrets from text and nested event data.

Everything sounding persists or sends passes :func:`scrub` (structures) or :func:`scrub_text`
(free text). Each rule replaces what it found with a placeholder that says what was removed,
so a scrubbed message stays readable::

    >>> from sounding.collection.scrub import scrub_text
    >>> scrub_text("login failed for alice@example.com from 10.1.2.3:5432")
    'login failed for <email> from <ip>:5432'
    >>> scrub_text("cannot open /home/alice/.config/app.toml")
    'cannot open ~/.config/app.toml'

The rules, in the order they run (an earlier rule's placeholder is never matched again, so
``scrub_text(scrub_text(s)) == scrub_text(s)``):

- PEM private key blocks -> ``<private-key>``
- ``Authorization:``/``Cookie:`` header lines -> ``Authorization: <redacted>``
- JSON Web Tokens -> ``<jwt>``; AWS, GitHub, Slack, Stripe, Google keys -> ``<secret>``
- ``Bearer x``/``Basic x`` -> ``Bearer <redacted>``
- ``https://bob:pw@host`` -> ``https://<credentials>@host``
- secret query parameters and assignments -> ``?token=<redacted>``, ``password=<redacted>``
- e-mail addresses -> ``<email>``
- home directories -> ``~`` (``/home/alice/x`` -> ``~/x``)
- IPv6 and IPv4 addresses -> ``<ip>`` (a port is kept: ``<ip>:80``)
- Luhn-valid payment card numbers -> ``<card>``
- the current user and host name as words -> ``<user>``, ``<host>``

``docs/privacy.md`` explains what is deliberately left alone (versions, durations, system
paths, hex ids, timestamps, ...) and what a pattern-based scrubber cannot catch.

Every rule is guarded by a cheap substring pre-check, so a message without personal data
costs a few substring searches and a handful of small regex scans.
"""

from __future__ import annotations

import functools
import threading

from sounding.core import health
from sounding.core._typing import TypeVar, cast

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from typing import Any, AnyStr

__all__ = [
    "GENERIC_NAMES",
    "MAX_DEPTH",
    "REDACTED",
    "guard_tag_value",
    "identity_in_name",
    "is_personal_key",
    "is_sensitive_key",
    "looks_personal",
    "reset_identity",
    "scrub",
    "scrub_text",
    "set_identity",
]

T = TypeVar("T")

_PATTERN_METHODS = ("search", "match", "fullmatch", "sub", "subn", "finditer", "findall", "split")


class _LazyPattern:
    """A regular expression compiled on its first use, not at import.

    Compiling this module's rules costs more than the rest of the import chain of a first
    counter, and a process that never scrubs text (it only counts) never needs them. The
    first method looked up compiles the pattern and stores its bound methods in the slots,
    so later calls cost what a compiled pattern's do.
    """

    __slots__ = ("_args", *_PATTERN_METHODS)

    def __init__(self, pattern: str | bytes, flags: int) -> None:
        self._args: tuple[Any, int] = (pattern, flags)

    def __getattr__(self, name: str) -> Any:
        import re  # with the first pattern used: a process that only counts never needs it

        compiled = re.compile(*self._args)
        for method in _PATTERN_METHODS:
            object.__setattr__(self, method, getattr(compiled, method))
        return getattr(compiled, name)


def _is_compiled(pattern: object) -> bool:
    """Whether a deferred pattern has been compiled yet (tests of the import cost)."""
    try:
        object.__getattribute__(pattern, "sub")
    except AttributeError:
        return False
    return True


def _compile(pattern: AnyStr, flags: int = 0) -> re.Pattern[AnyStr]:
    """``re.compile``, deferred to the pattern's first use (see :class:`_LazyPattern`)."""
    return cast("re.Pattern[AnyStr]", _LazyPattern(pattern, flags))


#: what a value under a sensitive key, or a secret value in text, becomes
REDACTED = "<redacted>"
#: containers nested deeper than this are replaced by ``"<max-depth>"``
MAX_DEPTH = 32
_MAX_DEPTH_MARK = "<max-depth>"
_CYCLE_MARK = "<cycle>"

# --------------------------------------------------------------------------------------
# Sensitive keys
# --------------------------------------------------------------------------------------

# A key is split into lower-case words ("X-Auth-Token" -> x, auth, token; "apiKey" -> api,
# key). It is sensitive when one word, or two adjacent words joined, is in this set.
_SENSITIVE_WORDS = frozenset(
    {
        "password", "passwd", "pwd", "passphrase", "pass", "token", "secret", "secrets",
        "auth", "authorization", "cookie", "cookies", "credential", "credentials",
        "apikey", "api_key", "access_key", "accesskey", "private_key", "privatekey",
        "secret_key", "client_secret", "set_cookie", "session", "sessionid", "session_key",
        "session_token", "sessid", "phpsessid", "jsessionid", "sid", "csrf", "xsrf",
        "csrftoken", "ssn", "credit_card", "creditcard", "card_number", "cardnumber",
        "cvv", "cvc", "pin", "iban", "signature", "sig", "otp", "mfa", "totp",
        "refresh_token", "access_token", "id_token", "bearer", "ssh_key", "signing_key",
        "encryption_key", "master_key", "license_key", "auth_key", "client_key", "app_key",
        "account_key", "storage_key", "service_key",
        # personal data that is never wanted, in free text or under a key
        "phone", "phone_number", "phonenumber", "mobile", "mobile_number", "telephone",
        "cellphone", "dob", "birthdate", "birth_date", "date_of_birth", "birthday",
        "passport", "passport_number",
    }
)  # fmt: skip
# Keys that name a person or where they live: their values are redacted in structures (a
# field "name" or "address" of an event), but the words alone do not trigger the free-text
# rule, where "table name: users" is ordinary technical text.
_PERSONAL_KEY_WORDS = frozenset(
    {
        "name", "full_name", "fullname", "first_name", "firstname", "last_name", "lastname",
        "given_name", "family_name", "middle_name", "surname", "display_name", "real_name",
        "maiden_name", "username", "user_name", "address", "street", "street_address",
        "home_address", "postal_address", "mailing_address", "billing_address",
        "shipping_address", "email", "e_mail", "email_address", "zipcode", "zip_code",
        "postcode", "postal_code", "fax", "national_id", "tax_id", "social_security",
    }
)  # fmt: skip
# A trailing word that makes the key describe a secret rather than hold one
# ("token_count", "password_length", "token_type", "session_id" is our own random id).
_NOT_SECRET_LAST_WORDS = frozenset(
    {
        "count", "counts", "len", "length", "size", "type", "types", "ttl", "expiry",
        "expires", "expired", "expires_in", "expires_at", "limit", "limits", "used",
        "usage", "id", "ids", "policy", "required", "enabled", "set", "present",
        "valid", "invalid", "age", "name", "names", "version", "source",
    }
)  # fmt: skip
_CAMEL = _compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = _compile(r"[^a-z0-9]+")


def _key_words(key: str) -> list[str]:
    return [w for w in _SPLIT.split(_CAMEL.sub("_", key).lower()) if w]


def _matches(words: list[str], vocabulary: frozenset[str]) -> bool:
    if not words:
        return False
    if len(words) > 1 and words[-1] in _NOT_SECRET_LAST_WORDS:
        # "expires_in" and "session_id" style endings: the key describes, it does not hold.
        tail2 = "_".join(words[-2:])
        if tail2 not in vocabulary:
            return False
    for i, word in enumerate(words):
        if word in vocabulary:
            return True
        if i + 1 < len(words):
            pair = f"{word}_{words[i + 1]}"
            if pair in vocabulary:
                return True
            if i + 2 < len(words) and f"{pair}_{words[i + 2]}" in vocabulary:
                return True
    return False


@functools.lru_cache(maxsize=4096)
def is_sensitive_key(key: str) -> bool:
    """Whether values under ``key`` are redacted whatever their type, in structures and in
    ``key=value`` free text.

    Keys are matched case-insensitively on their words: ``password``, ``db_password``,
    ``X-Auth-Token``, ``apiKey``, ``Set-Cookie``, ``sessionid``, ``phone``, ``dob`` are
    sensitive; ``token_count``, ``password_length``, ``session_id`` (sounding's own random
    session id) and ``author`` are not.

    >>> is_sensitive_key("X-Auth-Token"), is_sensitive_key("token_count")
    (True, False)
    """
    return _matches(_key_words(key), _SENSITIVE_WORDS)


@functools.lru_cache(maxsize=4096)
def is_personal_key(key: str) -> bool:
    """Whether a dict key names personal data, so that its value is redacted in structures:
    every sensitive key (:func:`is_sensitive_key`) and keys naming a person or an address
    (``name``, ``full_name``, ``firstName``, ``email``, ``address``, ``street``...).

    A key that only describes such a value keeps it (``name_length``, ``email_count``), and
    so do names of things (``host_name``, ``file_name``, ``app_name``).

    >>> is_personal_key("firstName"), is_personal_key("file_name")
    (True, False)
    """
    words = _key_words(key)
    return _matches(words, _SENSITIVE_WORDS) or _matches(words, _PERSONAL_KEY_WORDS)


# --------------------------------------------------------------------------------------
# The current user and host
# --------------------------------------------------------------------------------------

#: names never scrubbed as words in free text, because they are generic account or host names
#: or ordinary words (they are still removed from home-directory paths)
GENERIC_NAMES = frozenset(
    {
        "root", "admin", "administrator", "user", "users", "guest", "runner", "ubuntu",
        "debian", "centos", "fedora", "alpine", "arch", "ec2-user", "vagrant", "docker",
        "app", "apps", "www", "www-data", "nobody", "daemon", "test", "tests", "tester",
        "dev", "developer", "build", "builder", "ci", "jenkins", "gitlab-runner", "pi",
        "postgres", "mysql", "redis", "node", "python", "default", "localhost", "host",
        "server", "web", "worker", "sandbox", "container", "vscode", "codespace",
        "codespaces", "home", "system", "service", "operator", "local", "me", "vm",
        "owner", "shared", "public", "main", "master", "runneradmin", "workspace",
        "desktop", "laptop", "computer", "machine", "linux", "windows", "mac", "macbook",
        # sounding's own placeholders, so a user called "email" cannot break them
        "email", "ip", "card", "secret", "jwt", "redacted", "credentials", "private-key",
        "private", "key", "max-depth", "cycle",
    }
)  # fmt: skip
_MIN_NAME_LEN = 3


class _Identity:
    """The current user and host names and the compiled pattern that finds them as words."""

    def __init__(self, user: str, host: str) -> None:
        self.user = user
        self.host = host
        names: list[tuple[str, str]] = []  # (lower-case name, placeholder)
        for name, mark in ((host, "<host>"), (user, "<user>")):
            name = name.strip().lower()
            candidates = [name]
            if mark == "<host>" and "." in name:
                candidates.append(name.split(".", 1)[0])  # the short host name
            for c in candidates:
                if _is_specific_name(c) and all(c != n for n, _ in names):
                    names.append((c, mark))
        # Longest first so "alice-laptop.local" wins over "alice-laptop".
        names.sort(key=lambda nm: -len(nm[0]))
        self.words = tuple(n for n, _ in names)
        self.marks = dict(names)
        # Plain ASCII names are found in a plain ASCII metric name without `re` (a process
        # that only counts never loads it); anything else goes through the pattern.
        self.ascii = all(n.isascii() for n in self.words)
        self._pattern: re.Pattern[str] | None = None

    @property
    def pattern(self) -> re.Pattern[str] | None:
        """The pattern that finds the names as words (compiled on first use), or ``None``."""
        if self._pattern is None and self.words:
            import re

            alternatives = "|".join(re.escape(n) for n in self.words)
            # A name is found between any characters that are not letters or digits, so
            # "take-alice.wav", "alice_notes" and "alice-laptop" lose it too.
            self._pattern = re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])", re.IGNORECASE)
        return self._pattern

    def sub(self, s: str, low: str) -> str:
        if not self.words:
            return s
        for word in self.words:
            if word in low:
                break
        else:
            return s
        marks = self.marks
        pattern = self.pattern
        assert pattern is not None  # there are words
        return pattern.sub(lambda m: marks[m.group(0).lower()], s)

    def found_in(self, name: str) -> str | None:
        """``"user"`` or ``"host"`` when ``name`` holds that name as a word, else ``None``."""
        if not self.words:
            return None
        if self.ascii and name.isascii():
            return self._found_in_ascii(name)
        pattern = self.pattern
        assert pattern is not None  # there are words
        m = pattern.search(name)
        if m is None:
            return None
        return self.marks[m.group(0).lower()].strip("<>")


    def _found_in_ascii(self, name: str) -> str | None:
        # What the pattern's search finds, for ASCII text and names: the leftmost place where
        # a name (longest first) stands between non-alphanumerics, case-insensitively.
        low = name.lower()
        best: tuple[int, int] | None = None
        for i, word in enumerate(self.words):
            at = low.find(word)
            while at != -1 and (best is None or at < best[0]):
                end = at + len(word)
                if (at == 0 or not low[at - 1].isalnum()) and (
                    end == len(low) or not low[end].isalnum()
                ):
                    best = (at, i)
                    break
                at = low.find(word, at + 1)
        if best is None:
            return None
        return self.marks[self.words[best[1]]].strip("<>")


#: What a name's words are made of, for an ASCII name (``\w``, ``.`` and ``-``).
_NAME_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _is_specific_name(name: str) -> bool:
    if len(name) < _MIN_NAME_LEN or name.isdigit() or name in GENERIC_NAMES:
        return False
    if name.isascii():  # words of [\w.-] joined by single spaces, without `re`
        return all(w and _NAME_WORD_CHARS.issuperset(w) for w in name.split(" "))
    import re

    return re.fullmatch(r"[\w.-]+(?: [\w.-]+)*", name) is not None


def _system_user() -> str:
    # getpass.getuser() without importing getpass (and termios with it): the same variables
    # in the same order, then the password database.
    import os

    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        user = os.environ.get(var)
        if user:
            return user
    import pwd

    return pwd.getpwuid(os.getuid())[0]


def _system_host() -> str:
    # socket.gethostname() is uname's node name on POSIX; socket alone costs more import time
    # than this whole module, so it is imported only where uname is missing (Windows).
    import os

    uname = getattr(os, "uname", None)
    if uname is not None:
        return str(uname().nodename)
    import socket

    return socket.gethostname()


def _system_identity() -> _Identity:
    try:
        user = _system_user()
    except Exception:  # no user name (odd containers): nothing to scrub
        user = ""
    try:
        host = _system_host()
    except Exception:  # no host name: nothing to scrub
        host = ""
    return _Identity(user, host)


_identity_lock = threading.Lock()
_identity: _Identity | None = None


def _get_identity() -> _Identity:
    ident = _identity
    if ident is None:
        with _identity_lock:
            ident = _identity
            if ident is None:
                ident = _set_identity_object(_system_identity())
    return ident


def _set_identity_object(ident: _Identity) -> _Identity:
    global _identity
    _identity = ident
    _clear_caches()
    return ident


def _clear_caches() -> None:
    # Cached results depend on the user and host names.
    for cached in ("_scrub_short", "_key_info"):
        fn = globals().get(cached)
        if fn is not None:
            fn.cache_clear()


def set_identity(user: str | None = None, host: str | None = None) -> tuple[str, str]:
    """Set the user and host names to scrub (tests); returns the previous ``(user, host)``.

    A ``None`` argument keeps the current value. :func:`reset_identity` goes back to the
    system's names.
    """
    with _identity_lock:
        old = _identity or _system_identity()
        _set_identity_object(
            _Identity(old.user if user is None else user, old.host if host is None else host)
        )
    return old.user, old.host


def identity_in_name(name: str) -> str | None:
    """``"user"`` or ``"host"`` when ``name`` (a metric or operation name) holds the current
    OS user or host name as a word, else ``None``: such a name is refused at definition.

    >>> previous = set_identity("alice", "alice-pc")
    >>> identity_in_name("alice.exports"), identity_in_name("recorder.exports")
    ('user', None)
    >>> _ = set_identity(*previous)
    """
    return _get_identity().found_in(name)


def reset_identity() -> None:
    """Forget names set by :func:`set_identity`; the system's are read again on next use."""
    global _identity
    with _identity_lock:
        _identity = None
        _clear_caches()


# --------------------------------------------------------------------------------------
# Text rules
# --------------------------------------------------------------------------------------

#: `re`'s flags (IGNORECASE, DOTALL, ASCII) as numbers: `re` loads with the first pattern used.
_I, _S, _A = 2, 16, 256
_PEM = _compile(
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:.*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|.*)",
    _S,
)
# Header lines whose whole value is a credential: redact to the end of the line.
_HEADER = _compile(
    r"(?<![\w-])((?:proxy-)?authorization|set-cookie|cookie|x-api-key|x-auth-token)"
    r"([\"']?[ \t]*:[ \t]*)(?![ \t]*<redacted>)[^\r\n]*",
    _I,
)
_JWT = _compile(
    r"(?<![\w-])eyJ[\w-]{4,}\.eyJ[\w-]*\.[\w-]*|(?<![\w-])eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]+", _A
)
_TOKENS = _compile(
    r"(?:"
    r"(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{30,255}"
    r"|github_pat_[A-Za-z0-9_]{22,255}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{8,}"
    r"|AIza[A-Za-z0-9_-]{35}"
    # GitLab personal, deploy, feed, runner... tokens
    r"|gl(?:pat|dt|ft|soat|rt|ptt|imt|agent|oas|cbt)-[A-Za-z0-9_-]{20,1024}"
    r"|GR1348941[A-Za-z0-9_-]{20,50}"
    r"|pypi-AgE[A-Za-z0-9_-]{50,}"
    r"|npm_[A-Za-z0-9]{36}"
    r"|SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"
    r"|(?:AC|SK)[a-f0-9]{32}"
    r"|sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"
    r"|sq0(?:atp|csp)-[A-Za-z0-9_-]{22,43}"
    r"|EAAA[A-Za-z0-9_-]{60}"
    r"|xoxe(?:\.xox[bp])?-\d-[A-Za-z0-9]{20,}"
    r"|hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+"
    r")(?![\w])",
    _A,
)
# Formats without a literal prefix, each found from a literal part with its own pre-check.
_DISCORD = _compile(
    r"(?<![\w-])[MNO][A-Za-z0-9_-]{23,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}(?![\w-])", _A
)
_DISCORD_TRIGGER = _compile(r"\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27}")
_TELEGRAM = _compile(r"(?<![\w:])\d{8,10}:[A-Za-z0-9_-]{35}(?![\w-])", _A)
_TELEGRAM_TRIGGER = _compile(r":[A-Za-z0-9_-]{35}")
_MAILCHIMP = _compile(r"(?<![\w-])[0-9a-f]{32}-us\d{1,2}(?![\w])", _A)
# IBAN: country, check digits, 11-30 letters and digits, optionally in groups of four;
# only a number whose ISO 7064 mod-97 check holds is taken.
_IBAN = _compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?(?![A-Za-z0-9])",
    _A,
)
# US social security numbers: dashed anywhere (never area 000, 666 or 9xx, group 00 or
# serial 0000), or after the word "SSN" with spaces or nothing between the parts.
_SSN = _compile(
    r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-]|\.\d)"
    r"|(?<=\bSSN)([ #:]*)\d{3}[ ]?\d{2}[ ]?\d{4}(?!\w)",
    _I | _A,
)
# MAC addresses: six pairs of hex digits joined by ":" or "-", or three groups of four
# joined by "." (Cisco).
_MAC = _compile(
    r"(?<![\w:.-])(?:[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}"
    r"|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})(?![\w-]|[:.][0-9A-Fa-f])",
    _A,
)
# Phone numbers: E.164 ("+" and 8-15 digits, in groups or not), and the national forms of
# the US, UK, France, Germany and India, which always have a separator inside (so plain
# numbers, epoch timestamps, ports and ids are never taken for phones).
_PHONE = _compile(
    r"(?<![\w+])\+[1-9](?:[ .-]?\(?\d\)?){7,16}(?![\w]|[.,:/-]?\d)"  # E.164, "tel:+1..."
    r"|(?<![\w+.:/@#-])(?:"
    r"(?:1[ .-])?(?:\(\d{3}\)[ ]?|\d{3}[.-]|\d{3}[ ](?=\d{3}[ ]\d{4}))\d{3}[ .-]\d{4}"  # US
    r"|0[1-9](?P<fr>[ .-])\d{2}(?:(?P=fr)\d{2}){3}"  # FR 01 23 45 67 89
    # Area codes never start with 0 after the trunk prefix.
    r"|\(?0[1-9]\d{1,3}\)?[ -]\d{3,4}[ -]?\d{3,4}"  # UK 020 7946 0958, DE, IN landlines
    r"|\(?0[1-9]\d{1,4}\)?[/ -]\d{4,8}"  # DE 030/1234567, 0171 1234567
    r"|0[6-9]\d{4}[ -]?\d{5}"  # IN mobiles 098765 43210 (without the 0: "+91 98765 43210")
    r")(?![\w]|[.,:/-]?\d)",
    _A,
)

# "Bearer x" / "Token x": x must look like a token (a digit or symbol, or long), so that
# "Bearer authentication failed" stays readable. "Basic x": x must be base64 of "user:pass".
_BEARER = _compile(
    r"\b(Bearer|Token|Negotiate)([ \t]+)(?!<)([A-Za-z0-9._~+/-]+=*)", _I | _A
)
_BASIC = _compile(r"\b(Basic)([ \t]+)([A-Za-z0-9+/]{4,}={0,2})(?![\w+/=])", _I | _A)
# Every pattern below is anchored on a literal ("://", "@", a separator) or bounded, so
# no input makes a regex backtrack quadratically: this runs on arbitrary host data.
_URL_USERINFO = _compile(r"(?!<credentials>@)[^\s/?#@'\"<>]{1,256}@", _A)
_QUERY_PARAM = _compile(r"([?&;])([\w.-]{1,64})=([^&#;\s'\"<>]+)", _A)
_QUERY_WORDS = (
    "token", "key", "secret", "passw", "pwd", "sig", "auth", "code", "credential",
    "session", "sid", "otp", "ticket", "jwt",
)  # fmt: skip
# Free-text assignments: the key before a separator, read on the reversed text (optional
# blanks, an optional closing quote, then the key's characters), must be sensitive
# (is_sensitive_key); then _ASSIGN_VALUE reads the separator and the value.
_KEY_REVERSED = _compile(r"[ \t]*[\"']?([A-Za-z0-9_.-]{1,64})(?![A-Za-z0-9_.-])", _A)
_ASSIGN_VALUE = _compile(
    r"([\"']?[ \t]*(?:=>|:=|[:=])[ \t]*)"
    r"(\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'"
    r"|(?:(?:Bearer|Basic|Token)[ \t]+)?[^\s,;&'\"]+)",
    _A,
)
# E-mail addresses are found from each "@": the domain is matched forwards, the local part
# (at most 64 characters, ending in a letter, digit or "_") backwards on the reversed text.
_EMAIL_DOMAIN = _compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,126}[A-Za-z][A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9]|\[?(?:\d{1,3}\.){3}\d{1,3}\]?",
    _A,
)
_EMAIL_LOCAL_REVERSED = _compile(r"[A-Za-z0-9_][A-Za-z0-9.!#$%*+?^_~-]{0,63}", _A)
# Home directories: POSIX /home/NAME (also /var/home, /usr/home), macOS /Users/NAME,
# Windows X:\Users\NAME and X:/Users/NAME (also with doubled backslashes, as in repr and
# JSON), and ~NAME. Windows names may contain spaces when a separator follows.
_POSIX_HOME = _compile(r"(?:/var|/usr)?/home/(?!\.{1,2}(?:/|$))([^/\s:'\"<>]+)", _A)
_MAC_HOME = _compile(r"/Users/(?!(?:Shared|Guest)(?:/|$))([^/\s:'\"<>]+)", _A)
_WIN_HOME = _compile(
    r"\b[A-Za-z]:(\\{1,2}|/)(?:Users|Documents and Settings)(?:\\{1,2}|/)"
    r"(?!(?:Public|Default|Default User|All Users)(?:[\\/]|$))"
    r"(?:[^\\/:*?\"<>|\s]+(?: [^\\/:*?\"<>|\s]+)*(?=\\|/)|[^\\/:*?\"<>|\s]+)",
    _I | _A,
)
_TILDE_USER = _compile(r"(?<![\w~])~[A-Za-z_][\w.-]*(?=[/\\]|$)", _A)
_IPV6_CANDIDATE = _compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}"
    r"(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?(?:%[\w.-]+)?(?!\w|\.\d)",
    _A,
)
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = _compile(rf"(?<![\w.])({_OCTET}(?:\.{_OCTET}){{3}})(?![\w]|\.\d)", _A)
# "v1.2.3.4", "version 1.2.3.4", "build: 1.2.3.4": a four-part version, not an address.
_VERSION_BEFORE = _compile(
    r"(?:\b[vV]|\b(?:version|release|ver|build|rev|python|pypy)[ \t:=]*)$",
    _I | _A,
)
_DIGIT_RUN = _compile(r"(?<![\w.-])\d(?:[ -]?\d){12,}(?![\w])", _A)
_CARD_FIRST_DIGITS = frozenset("23456")


# Cheap necessary conditions of the rules. sre scans fast only for a literal first character,
# so these start with one ("A", ":", "."); everything else is a plain substring test.
_AWS_GOOGLE_TRIGGER = _compile(r"A(?:KIA|SIA|GPA|IDA|ROA|IPA|NPA|NVA|BIA|CCA|Iza)")
_GITLAB_TRIGGER = _compile(r"gl(?:pat|dt|ft|soat|rt|ptt|imt|agent|oas|cbt)-")
_MAC_COLON_TRIGGER = _compile(r":[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}:")
_MAC_DASH_TRIGGER = _compile(r"-[0-9A-Fa-f]{2}-[0-9A-Fa-f]{2}-[0-9A-Fa-f]{2}-")
_MAC_DOT_TRIGGER = _compile(r"\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}")


def _may_hold_mac(s: str) -> bool:
    return (
        (s.count(":") >= 5 and _MAC_COLON_TRIGGER.search(s) is not None)
        or (s.count("-") >= 5 and _MAC_DASH_TRIGGER.search(s) is not None)
        or (s.count(".") >= 2 and _MAC_DOT_TRIGGER.search(s) is not None)
    )


# An IPv6 address has "::" or, written out, at least five colons between hex groups.
_IPV6_TRIGGER = _compile(r":[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:")
_IPV4_TRIGGER = _compile(r"\.\d{1,3}\.\d{1,3}\.\d")


def _shape_table() -> bytes:
    table = bytearray(b"x" * 256)
    for c in b"abcdefghijklmnopqrstuvwxyz_":
        table[c] = ord("w")
    for c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        table[c] = ord("A")
    for c in b"0123456789":
        table[c] = ord("0")
    for c in b" -.+()/:":
        table[c] = c
    return bytes(table)


# The shape of a text: digits become "0", lower-case letters and "_" "w", capitals "A", a few
# separators stay, anything else is "x". Rules whose necessary condition is a shape ("a digit,
# a dash, two digits") test it with a substring search on the shape, which is far cheaper
# than a regex that cannot start from a literal.
_SHAPE_TABLE = _shape_table()
_CARD_RUN_BYTES = _compile(rb"0[0 -]{11,}0")
_THIRTEEN_DIGITS = b"0" * 13


def _shape(s: str) -> bytes:
    return s.encode("utf-8", "surrogatepass").translate(_SHAPE_TABLE)


def _dashed_digits(shape: bytes) -> bool:
    """3-5 digits, a dash, 3 digits, not inside a hex word (the tail of a UUID): "415-555"."""
    i = shape.find(b"000-000")
    while i >= 0:
        j = i
        while j > 0 and shape[j - 1] == 48:
            j -= 1
        if i - j <= 2 and (j == 0 or shape[j - 1] not in b"wA"):
            return True
        i = shape.find(b"000-000", i + 1)
    return False


def _may_hold_phone(shape: bytes) -> bool:
    return (
        b"+0" in shape
        or b"0 00" in shape
        or (b"000-000" in shape and _dashed_digits(shape))
        or b"0-00-00-00" in shape
        or b"00.00" in shape
        or b"0) 0" in shape
        or b"0)0" in shape
        or b"0/0000" in shape
    )


def _may_hold_card(shape: bytes) -> bool:
    if shape.count(48) < 13:  # fewer than 13 digits in all
        return False
    # With the separators dropped, a card is 13 or more "0"s in a row: one substring search.
    if _THIRTEEN_DIGITS not in shape.translate(None, b" -"):
        return False
    for m in _CARD_RUN_BYTES.finditer(shape):
        run = m.group(0)
        start = m.start()
        if start and shape[start - 1] in b"wA._-":
            # The tail of a word such as a UUID: only a part after a space can be a card.
            run = run.partition(b" ")[2]
        if run.count(b"0") >= 13:
            return True
    return False


def _header_repl(m: re.Match[str]) -> str:
    return f"{m.group(1)}{m.group(2)}{REDACTED}"


def _token_repl(m: re.Match[str]) -> str:
    start = m.start()
    if start and (m.string[start - 1].isalnum() or m.string[start - 1] in "_-"):
        return m.group(0)  # inside a longer word: not a token of this format
    return "<secret>"


def _is_iban(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _iban_repl(m: re.Match[str]) -> str:
    # The match may have taken a group that follows the number ("... 3000 1"): the longest
    # prefix that ends at a group boundary and passes the check is the IBAN.
    text = m.group(0)
    end = len(text)
    while end > 0:
        if _is_iban(text[:end]):
            return "<iban>" + text[end:]
        end = text.rfind(" ", 0, end)
    return text


def _ssn_repl(m: re.Match[str]) -> str:
    lead = m.group(1)
    return "<ssn>" if lead is None else f"{lead}<ssn>"


def _phone_repl(m: re.Match[str]) -> str:
    text = m.group(0)
    if text[0] != "+":
        return "<phone>"
    if not any(not c.isdigit() for c in text[1:]):
        # A bare "+12345678" is as likely a signed count as a phone number.
        return "<phone>" if 10 <= len(text) - 1 <= 15 else text
    # Grouped: the longest run of whole groups with 8-15 digits is the number (the match
    # may have taken a number that follows it: "+33 1 23 45 67 89 2024").
    end = len(text)
    while end > 0:
        digits = sum(c.isdigit() for c in text[:end])
        if digits <= 15:
            return "<phone>" + text[end:] if digits >= 8 else text
        end = max(text.rfind(c, 0, end) for c in " -.(")
    return text


def _bearer_repl(m: re.Match[str]) -> str:
    token = m.group(3)
    looks_like_token = (
        len(token) >= 20
        or any(c.isdigit() or not c.isalpha() for c in token)
        or (len(token) >= 8 and not token.islower() and not token[1:].islower())
    )
    if not looks_like_token or len(token) < 6:
        return m.group(0)
    return f"{m.group(1)}{m.group(2)}{REDACTED}"


def _basic_repl(m: re.Match[str]) -> str:
    import binascii
    from base64 import b64decode

    token = m.group(3)
    padded = token + "=" * (-len(token) % 4)
    try:
        raw = b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return m.group(0)
    if b":" not in raw:
        return m.group(0)
    return f"{m.group(1)}{m.group(2)}{REDACTED}"


def _url_credentials(s: str) -> str:
    pieces: list[str] = []
    done = 0
    i = s.find("://")
    while i >= 0:
        m = _URL_USERINFO.match(s, i + 3)
        if m is not None:
            pieces.append(s[done : i + 3])
            pieces.append("<credentials>@")
            done = m.end()
        i = s.find("://", max(i + 3, done))
    if not pieces:
        return s
    pieces.append(s[done:])
    return "".join(pieces)


def _query_repl(m: re.Match[str]) -> str:
    name = m.group(2).lower()
    for word in _QUERY_WORDS:
        if word in name:
            return f"{m.group(1)}{m.group(2)}={REDACTED}"
    return m.group(0)


def _emails(s: str) -> str:
    n = len(s)
    rev = ""
    pieces: list[str] = []
    done = 0
    i = s.find("@")
    while i >= 0:
        domain = _EMAIL_DOMAIN.match(s, i + 1) if i > done else None
        if domain is not None:
            rev = rev or s[::-1]
            local = _EMAIL_LOCAL_REVERSED.match(rev, n - i)
            if local is not None:
                start = max(n - local.end(), done)
                pieces.append(s[done:start])
                pieces.append("<email>")
                done = domain.end()
                i = s.find("@", done)
                continue
        i = s.find("@", i + 1)
    if not pieces:
        return s
    pieces.append(s[done:])
    return "".join(pieces)


def _separators(s: str) -> list[int]:
    found: list[int] = []
    for sep in ":=":
        i = s.find(sep)
        while i >= 0:
            found.append(i)
            i = s.find(sep, i + 1)
    found.sort()
    return found


def _assign(s: str) -> str:
    """Redact the values of ``key=value`` / ``key: value`` pairs whose key is sensitive.

    Works from the separators: the key is read backwards from each ``:`` or ``=`` (an
    anchored match on the reversed text), so the cost is a few operations per separator.
    """
    seps = _separators(s)
    if not seps:
        return s
    rev = s[::-1]
    n = len(s)
    pieces: list[str] = []
    done = 0  # s[:done] is already in pieces
    pos = 0  # separators before this are inside something handled
    for p in seps:
        if p < pos:
            continue
        km = _KEY_REVERSED.match(rev, n - p)
        if km is None:
            continue
        key_start, key_end = n - km.end(1), n - km.start(1)
        if key_start < done:
            continue
        key = s[key_start:key_end].strip(".-")
        if not key or not is_sensitive_key(key):
            continue
        m = _ASSIGN_VALUE.match(s, key_end)
        if m is None:
            continue
        value = m.group(2)
        pos = m.end()
        if value == REDACTED or value[1:-1] == REDACTED:
            continue
        pieces.append(s[done:key_end])
        pieces.append(m.group(1))
        if value[:1] in "\"'" and len(value) >= 2:
            pieces.append(f"{value[0]}{REDACTED}{value[0]}")
        else:
            pieces.append(REDACTED)
        done = pos
    if not pieces:
        return s
    pieces.append(s[done:])
    return "".join(pieces)


def _home(s: str, low: str) -> str:
    # Windows first: "C:/Users/bob" must not be taken for the macOS "/Users/bob".
    if "users" in low or "documents and settings" in low:
        s = _WIN_HOME.sub("~", s)
    if "/home/" in s:
        s = _POSIX_HOME.sub("~", s)
    if "/Users/" in s:
        s = _MAC_HOME.sub("~", s)
    if "~" in s:
        s = _TILDE_USER.sub("~", s)
    return s


def _ipv6_repl(m: re.Match[str]) -> str:
    import ipaddress  # only when a candidate turns up

    text = m.group(0)
    candidates = [text]
    stripped = text.rstrip(":")
    if stripped != text:
        # "... 2001:db8::1: refused" - the address is followed by a colon.
        candidates += [text[:-1], stripped]
    for cand in candidates:
        addr = cand.split("%", 1)[0]
        colons = addr.count(":")
        # Without "::" an address has exactly 7 colons (6 before an IPv4 tail); this skips
        # times such as 12:30:45 without asking ipaddress.
        if colons < 2 or ("::" not in addr and colons != (6 if "." in addr else 7)):
            continue
        if not any(c.isdigit() for c in addr):
            # "a::b", "std::map", "::": C++ scopes and the unspecified address, not a host.
            continue
        try:
            ipaddress.IPv6Address(addr)
        except ValueError:
            continue
        return "<ip>" + text[len(cand) :]
    return text


def _ipv4_repl(m: re.Match[str]) -> str:
    # A marked four-part version keeps only small parts: "python 3.11.7.1" stays, but
    # "python 192.168.17.42" is an address after a word, and privacy wins the tie.
    if _VERSION_BEFORE.search(m.string, max(0, m.start() - 16), m.start()) and all(
        len(part) <= 2 for part in m.group(1).split(".")
    ):
        return m.group(0)
    return "<ip>"


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _is_card(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and digits[0] in _CARD_FIRST_DIGITS and _luhn(digits)


# How card numbers are printed in groups: 4-4-4-4, Amex 4-6-5, Diners 4-6-4, 19 digits
# 4-4-4-4-3, and the rarer 13, 17 and 18 digit forms.
_CARD_GROUPINGS = frozenset(
    {(4, 4, 4, 4), (4, 6, 5), (4, 6, 4), (4, 4, 4, 4, 3), (4, 4, 5), (4, 4, 4, 4, 1),
     (4, 4, 4, 4, 2)}
)  # fmt: skip
_MAX_GROUPS = 5


def _card_end(parts: list[str], i: int) -> int:
    """The index of the last group of a card number starting at group ``i``, or -1."""
    first = parts[i]
    if 13 <= len(first) <= 19 and _is_card(first):
        return i
    if len(first) != 4:
        return -1
    last = min(len(parts), i + _MAX_GROUPS) - 1
    for j in range(last, i, -1):  # the longest span first
        span = parts[i : j + 1]
        if tuple(map(len, span)) in _CARD_GROUPINGS and _is_card("".join(span)):
            return j
    return -1


def _card_repl(m: re.Match[str]) -> str:
    # A card is one unbroken number, or digit groups as cards are printed (4-4-4-4, 4-6-5):
    # never a slice of a UUID-like "12345678-1234-..." or a date. The run may hold other
    # numbers too ("order 7 4111 1111 1111 1111"), so every span of at most five whole
    # groups is tried, leftmost first: linear in the length of the run.
    import re  # loaded already: this runs inside a pattern's sub

    text = m.group(0)
    parts = re.split(r"[ -]", text)
    seps = re.findall(r"[ -]", text)
    out: list[str] = []
    changed = False
    i = 0
    while i < len(parts):
        end = _card_end(parts, i)
        if end >= 0:
            out.append("<card>")
            changed = True
        else:
            end = i
            out.append(parts[i])
        if end < len(seps):
            out.append(seps[end])
        i = end + 1
    return "".join(out) if changed else text


#: strings up to this length have their scrubbed form cached: event fields such as levels,
#: categories and formats repeat endlessly, so a dict lookup replaces the rule checks
_CACHED_LEN = 48


def scrub_text(s: str) -> str:
    """Remove personal data and secrets from free text; returns ``s`` itself when clean.

    Never raises: should a rule fail, the failure is counted (``scrub.failed``) and
    ``"<redacted>"`` is returned. A non-str argument is handed to :func:`scrub`.

    >>> scrub_text("GET https://bob:pw@api.example.com/v1?token=abc123&page=2")
    'GET https://<credentials>@api.example.com/v1?token=<redacted>&page=2'
    >>> scrub_text("recorder.export.duration 12.5ms python 3.11.7 /usr/lib/python3.11/json")
    'recorder.export.duration 12.5ms python 3.11.7 /usr/lib/python3.11/json'
    """
    raw: object = s
    if not isinstance(raw, str):
        return scrub(raw)  # type: ignore[return-value]
    try:
        if len(s) < 3:
            return s
        if len(s) <= _CACHED_LEN:
            out = _scrub_short(s)
            return s if out == s else out
        return _scrub_text(s)
    except Exception as exc:  # telemetry never raises into the host; nothing may leak
        health.failure("scrub.failed", exc)
        return REDACTED


def _scrub_text(s: str) -> str:
    low = s.lower()
    out = s
    # Each rule runs only when its substring pre-check on the original text passes; the
    # placeholders that rules insert never satisfy another rule's pre-check.
    if "PRIVATE KEY" in s:
        out = _PEM.sub("<private-key>", out)
    has_colon = ":" in s
    has_eq = "=" in s
    if has_colon and (
        "authorization" in low or "cookie" in low or "x-api-key" in low or "x-auth-token" in low
    ):
        out = _HEADER.sub(_header_repl, out)
    if "eyJ" in s:
        out = _JWT.sub("<jwt>", out)
    has_dash = "-" in s
    has_dot = "." in s
    has_under = "_" in s
    # Most formats need a capital letter; a text equal to its lower-case form has none.
    has_upper = low != s
    if (
        (has_upper and _AWS_GOOGLE_TRIGGER.search(s) is not None)
        or "xox" in s
        or (has_under and ("gh" in s or "github_pat" in s or "k_" in s or "npm_" in s))
        or (
            has_dash
            and (
                "sk-" in s
                or "pypi-" in s
                or "sq0" in s
                or ("gl" in s and _GITLAB_TRIGGER.search(s) is not None)
            )
        )
        or (has_dot and ("hooks.slack" in s or (has_upper and "SG." in s)))
        or (
            has_upper
            and len(s) >= 34
            and ("AC" in s or "SK" in s or "EAAA" in s or "GR1348941" in s)
        )
    ):
        # Inlined literal pre-checks of every format in _TOKENS: this runs for every event.
        out = _TOKENS.sub(_token_repl, out)
    if has_colon and len(s) >= 44 and _TELEGRAM_TRIGGER.search(s) is not None:
        out = _TELEGRAM.sub("<secret>", out)
    if has_dash and "-us" in s:
        out = _MAILCHIMP.sub("<secret>", out)
    if has_upper and has_dot and len(s) >= 59 and _DISCORD_TRIGGER.search(s) is not None:
        out = _DISCORD.sub("<secret>", out)
    if "bearer" in low or "token" in low or "negotiate" in low:
        out = _BEARER.sub(_bearer_repl, out)
    if "basic" in low:
        out = _BASIC.sub(_basic_repl, out)
    has_at = "@" in s
    if has_at and "://" in s:
        out = _url_credentials(out)
    if has_eq and ("?" in s or "&" in s or ";" in s):
        out = _QUERY_PARAM.sub(_query_repl, out)
    if (has_eq or has_colon) and (
        "pass" in low
        or "pwd" in low
        or "secret" in low
        or "token" in low
        or "key" in low
        or "auth" in low
        or "cookie" in low
        or "credential" in low
        or "sess" in low
        or "sid" in low
        or "ssn" in low
        or "card" in low
        or "cvv" in low
        or "cvc" in low
        or "mfa" in low
        or "pin" in low
        or "iban" in low
        or "sig" in low
        or "otp" in low
        or "srf" in low
        or "bearer" in low
        or "phone" in low
        or "mobile" in low
        or "dob" in low
        or "birth" in low
        or "passport" in low
    ):
        # Every sensitive key (is_sensitive_key) contains one of these words.
        out = _assign(out)
    if has_at:
        out = _emails(out)
    if "/home/" in s or "/Users/" in s or "~" in s or "users" in low or "documents and" in low:
        out = _home(out, low)
    if (has_colon or has_dash or has_dot) and _may_hold_mac(s):
        out = _MAC.sub("<mac>", out)
    if has_colon and ("::" in s or _IPV6_TRIGGER.search(s) is not None):
        out = _IPV6_CANDIDATE.sub(_ipv6_repl, out)
    if _IPV4_TRIGGER.search(s) is not None:
        out = _IPV4.sub(_ipv4_repl, out)
    # The digit rules look at the shape of the text as the earlier rules left it.
    shape = _shape(out)
    digits = shape.count(48)
    # An IBAN has at least 2 digits, an SSN 9, a phone number 7, a card 13.
    if has_upper and digits >= 2 and b"AA00" in shape:
        out = _IBAN.sub(_iban_repl, out)
    if digits >= 7:
        if digits >= 13 and _may_hold_card(shape):
            out = _DIGIT_RUN.sub(_card_repl, out)
        if digits >= 9 and (b"0-00-0000" in shape or "ssn" in low):
            out = _SSN.sub(_ssn_repl, out)
        if _may_hold_phone(shape):
            out = _PHONE.sub(_phone_repl, out)
    if out is not s:
        low = out.lower()
    return _get_identity().sub(out, low)


_scrub_short = functools.lru_cache(maxsize=4096)(_scrub_text)


# --------------------------------------------------------------------------------------
# Structures
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _key_info(key: str) -> tuple[str, bool]:
    # Keys repeat (the same event fields over and over), so their handling is cached: the
    # scrubbed key, and whether its value is redacted. The scrubbed key counts too
    # ("AKIA..." became "<secret>"), so a second scrub finds nothing more to do.
    new_key = scrub_text(key)
    # The scrubbed key is checked for secrets only: "<email>" is a placeholder, not a field.
    return new_key, is_personal_key(key) or is_sensitive_key(new_key)


def _key_info_uncached(key: str) -> tuple[str, bool]:
    new_key = scrub_text(key)
    # The scrubbed key is checked for secrets only: "<email>" is a placeholder, not a field.
    return new_key, is_personal_key(key) or is_sensitive_key(new_key)


def _scrub(value: Any, depth: int, active: set[int]) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if not isinstance(value, (dict, list, tuple, set, frozenset)):
        return value
    if depth >= MAX_DEPTH:
        return _MAX_DEPTH_MARK
    ident = id(value)
    if ident in active:
        return _CYCLE_MARK
    active.add(ident)
    try:
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            for k, v in value.items():
                if isinstance(k, str):
                    new_k, sensitive = _key_info(k) if len(k) <= 256 else _key_info_uncached(k)
                    new_v = REDACTED if sensitive else _scrub(v, depth + 1, active)
                    if new_k in out:
                        # Two keys scrubbed to the same text ("<email>"): keep both values.
                        n = 2
                        while f"{new_k}#{n}" in out:
                            n += 1
                        new_k = f"{new_k}#{n}"
                    out[new_k] = new_v
                else:
                    out[k] = _scrub(v, depth + 1, active)
            return out
        items = [_scrub(v, depth + 1, active) for v in value]
        if isinstance(value, list):
            return items
        if isinstance(value, tuple):
            if hasattr(value, "_fields"):  # a namedtuple keeps its type
                try:
                    return type(value)(*items)
                except Exception:  # an odd tuple subclass: plain tuple
                    return tuple(items)
            return tuple(items)
        try:
            return type(value)(items) if type(value) in (set, frozenset) else frozenset(items)
        except TypeError:  # a scrubbed element became unhashable: cannot happen for str
            return _MAX_DEPTH_MARK
    finally:
        active.discard(ident)


def scrub(value: T) -> T:
    """A scrubbed copy of ``value``: a str, or nested dicts, lists, tuples and sets of them.

    Strings are passed through :func:`scrub_text`, string keys too (two keys that become
    the same text are kept apart with a ``#2`` suffix); values under sensitive keys
    (:func:`is_sensitive_key`) become ``"<redacted>"`` whatever their type. Other objects
    (numbers, None, bytes, your own classes) are returned as they are. Containers deeper than
    :data:`MAX_DEPTH` become ``"<max-depth>"`` and a container that contains itself
    ``"<cycle>"``. Never raises: if scrubbing fails, the failure is counted
    (``scrub.failed``) and ``"<redacted>"`` is returned so nothing leaks.

    >>> scrub({"user": "alice@example.com", "password": 1234, "tries": 3})
    {'user': '<email>', 'password': '<redacted>', 'tries': 3}
    """
    try:
        if isinstance(value, str):
            return scrub_text(value)  # type: ignore[return-value]
        return _scrub(value, 0, set())  # type: ignore[no-any-return]
    except Exception as exc:  # telemetry never raises into the host
        health.failure("scrub.failed", exc)
        return REDACTED  # type: ignore[return-value]


# --------------------------------------------------------------------------------------
# Metric tag values
# --------------------------------------------------------------------------------------

_TAG_DIGITS = _compile(r"\d(?:[ -]?\d){12,18}")
# "bob@localhost", "team@corp": an address without a dotted domain; "react@18.2.0" is not.
_TAG_ADDRESS = _compile(r"[\w.+%~-]@[A-Za-z0-9.-]*[A-Za-z][A-Za-z0-9.-]*$")


def looks_personal(value: str) -> bool:
    """Whether a short value (a metric tag value) looks personal or secret.

    True when :func:`scrub_text` would change it, and also for shapes that are too loose
    for free text but wrong in a tag: an address without a dotted domain (``bob@localhost``),
    a 13-19 digit Luhn-valid number, the current user or host name as the whole value (even
    a short one).

    >>> looks_personal("wav"), looks_personal("bob@example.org")
    (False, True)
    """
    if scrub_text(value) != value:
        return True
    if "@" in value and _TAG_ADDRESS.search(value):
        return True
    for m in _TAG_DIGITS.finditer(value):
        digits = m.group(0).replace(" ", "").replace("-", "")
        if _luhn(digits):
            return True
    ident = _get_identity()
    low = value.strip().lower()
    for name in (ident.user.lower(), ident.host.lower(), ident.host.lower().split(".")[0]):
        if name and low == name and name not in GENERIC_NAMES:
            return True
    return False


def guard_tag_value(value: str) -> str:
    """``value`` unchanged, or ``"<redacted>"`` (counted as ``tags.redacted``) if personal.

    Metric tags are for low-cardinality, non-personal values such as a format or a
    status; the metrics code calls this once per new series.

    >>> guard_tag_value("wav"), guard_tag_value("10.0.0.7")
    ('wav', '<redacted>')
    """
    try:
        raw: object = value  # callers may pass a number despite the annotation
        if not isinstance(raw, str):
            value = str(raw)
        if looks_personal(value):
            health.count("tags.redacted")
            return REDACTED
        return value
    except Exception as exc:  # telemetry never raises into the host
        health.failure("tags.guard", exc)
        return REDACTED
