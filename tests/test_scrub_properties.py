"""Property tests of the scrubber: planted personal data never survives, clean text is kept.

Personal data of every kind is generated realistically, embedded in random surrounding text
and in random nested dicts, lists and tuples; the planted substring must not be found in the
output (a count is compared, so random surroundings that happen to contain the same text do
not cause false alarms). Clean technical text must come back unchanged, scrubbing must never
raise and must be idempotent.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sounding.collection import scrub as scrub_mod
from sounding.collection.scrub import GENERIC_NAMES, scrub, scrub_text, set_identity

# The identity scrubbed during these tests: names that none of the clean-text strategies
# below can produce (they contain a dash followed by "q").
USER = "alice-q"
HOST = "alice-q-laptop.example.net"

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(autouse=True, scope="module")
def _identity() -> Iterator[None]:
    """Scrub a known user and host name instead of the machine's."""
    set_identity(USER, HOST)
    yield
    scrub_mod.reset_identity()


@dataclass
class Planted:
    """A piece of text with personal data, and the substrings that must not survive."""

    text: str
    secrets: tuple[str, ...]


# ---------------------------------------------------------------------------------------
# Generators of personal data
# ---------------------------------------------------------------------------------------

ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"
_PLACEHOLDER_WORDS = re.compile(
    r"<(?:email|ip|card|secret|jwt|redacted|credentials|private-key|user|host|max-depth|cycle)>"
)


def _not_in_placeholders(name: str) -> bool:
    return not any(name.lower() in p for p in _PLACEHOLDER_WORDS.pattern.split("|"))


user_names = (
    st.from_regex(r"[a-z][a-z0-9_]{3,11}", fullmatch=True)
    .filter(lambda n: n not in GENERIC_NAMES)
    .filter(lambda n: n not in {"shared", "guest", "public", "default"})
    .filter(_not_in_placeholders)
)
labels = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
domains = st.builds(
    lambda parts, tld: ".".join([*parts, tld]),
    st.lists(labels, min_size=1, max_size=3),
    st.from_regex(r"[a-z]{2,6}", fullmatch=True),
)
rel_paths = st.lists(st.from_regex(r"[a-z0-9_.]{1,8}", fullmatch=True), min_size=1, max_size=3)


@st.composite
def emails(draw: st.DrawFn) -> Planted:
    local = draw(st.from_regex(r"[a-z0-9](?:[a-z0-9._+-]{0,14}[a-z0-9])?", fullmatch=True))
    address = f"{local}@{draw(domains)}"
    if draw(st.booleans()):
        address = address.upper() if draw(st.booleans()) else address.title()
    return Planted(address, (address,))


@st.composite
def ipv4s(draw: st.DrawFn) -> Planted:
    ip = str(draw(st.ip_addresses(v=4)))
    port = draw(st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}")))
    return Planted(ip + port, (ip,))


@st.composite
def ipv6s(draw: st.DrawFn) -> Planted:
    addr = draw(st.ip_addresses(v=6))
    assert isinstance(addr, ipaddress.IPv6Address)
    text = addr.exploded if draw(st.booleans()) else addr.compressed
    # Documented rule: an address must hold a decimal digit (so "a::b" stays C++).
    assume(any(c.isdigit() for c in text))
    form = draw(st.sampled_from(["plain", "zone", "bracket"]))
    if form == "zone":
        return Planted(f"{text}%eth0", (text,))
    if form == "bracket":
        return Planted(f"[{text}]:{draw(st.integers(1, 65535))}", (text,))
    return Planted(text, (text,))


@st.composite
def home_paths(draw: st.DrawFn) -> Planted:
    user = draw(user_names)
    rest = draw(rel_paths)
    kind = draw(st.sampled_from(["posix", "mac", "win", "win_slash", "win_repr", "file", "tilde"]))
    if kind == "posix":
        text = "/home/" + user + "/" + "/".join(rest)
    elif kind == "mac":
        text = "/Users/" + user + "/" + "/".join(rest)
    elif kind == "win":
        if draw(st.booleans()):
            user = f"{user} {draw(user_names)}"  # Windows profile names may hold a space
        text = "C:\\Users\\" + user + "\\" + "\\".join(rest)
    elif kind == "win_slash":
        text = "D:/Users/" + user + "/" + "/".join(rest)
    elif kind == "win_repr":
        text = "C:\\\\Users\\\\" + user + "\\\\" + "\\\\".join(rest)
    elif kind == "file":
        text = "file:///home/" + user + "/" + "/".join(rest)
    else:
        text = "~" + user + "/" + "/".join(rest)
    return Planted(text, (user,))


@st.composite
def identities(draw: st.DrawFn) -> Planted:
    which = draw(st.sampled_from([USER, HOST, USER.upper(), HOST.split(".")[0]]))
    return Planted(which, (which,))


@st.composite
def url_credentials(draw: st.DrawFn) -> Planted:
    scheme = draw(st.sampled_from(["https", "http", "ftp", "redis", "postgres", "mongodb+srv"]))
    user = draw(st.from_regex(r"[A-Za-z0-9._-]{1,12}", fullmatch=True))
    password = draw(st.from_regex(r"[A-Za-z0-9._~!$*+-]{4,16}", fullmatch=True))
    path = "/".join(draw(rel_paths))
    text = f"{scheme}://{user}:{password}@{draw(domains)}/{path}"
    return Planted(text, (f"{user}:{password}", password))


@st.composite
def query_secrets(draw: st.DrawFn) -> Planted:
    name = draw(
        st.sampled_from(
            [
                "token", "key", "api_key", "apikey", "access_token", "password", "sig",
                "signature", "secret", "client_secret", "auth", "code", "X-Amz-Signature",
                "X-Amz-Credential", "session", "id_token",
            ]
        )
    )  # fmt: skip
    value = draw(st.text(URLSAFE, min_size=6, max_size=32))
    page = draw(st.integers(1, 99))
    text = f"https://{draw(domains)}/cb?{name}={value}&page={page}"
    if draw(st.booleans()):
        text = f"https://{draw(domains)}/cb?page={page}&{name}={value}"
    return Planted(text, (value,))


def _luhn_complete(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


@st.composite
def cards(draw: st.DrawFn) -> Planted:
    prefix, length = draw(
        st.sampled_from(
            [("4", 16), ("4", 13), ("4", 19), ("51", 16), ("55", 16), ("2221", 16),
             ("34", 15), ("37", 15), ("6011", 16), ("65", 16), ("35", 16), ("36", 14)]
        )
    )  # fmt: skip
    body = prefix + draw(st.text(string.digits, min_size=length - len(prefix) - 1).map(str))
    body = body[: length - 1]
    assume(len(body) == length - 1)
    number = _luhn_complete(body)
    sep = draw(st.sampled_from(["", " ", "-"]))
    if sep and length in (14, 15):  # Amex 4-6-5, Diners 4-6-4
        groups = [number[:4], number[4:10], number[10:]]
    elif sep:
        groups = [number[i : i + 4] for i in range(0, length, 4)]
        if len(groups[-1]) < 3:  # 13 and 19 digits: fold the short tail into the last group
            groups[-2:] = [groups[-2] + groups[-1]]
    else:
        groups = [number]
    text = sep.join(groups)
    return Planted(text, (number, text))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@st.composite
def secret_formats(draw: st.DrawFn) -> Planted:
    kind = draw(
        st.sampled_from(
            [
                "aws_id", "aws_secret", "github", "github_pat", "slack", "stripe", "google",
                "jwt", "pem", "bearer_header", "bearer", "basic", "assign",
            ]
        )
    )  # fmt: skip
    if kind == "aws_id":
        prefix = draw(st.sampled_from(["AKIA", "ASIA", "AROA", "AIDA"]))
        token = prefix + draw(
            st.text(string.ascii_uppercase + string.digits, min_size=16, max_size=16)
        )
        return Planted(token, (token,))
    if kind == "aws_secret":
        secret = draw(st.text(ALNUM + "/+", min_size=40, max_size=40))
        key = draw(st.sampled_from(["aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"]))
        sep = draw(st.sampled_from(["=", " = ", ": "]))
        return Planted(f"{key}{sep}{secret}", (secret,))
    if kind == "github":
        token = draw(st.sampled_from(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"])) + draw(
            st.text(ALNUM, min_size=36, max_size=36)
        )
        return Planted(token, (token,))
    if kind == "github_pat":
        token = (
            "github_pat_"
            + draw(st.text(ALNUM, min_size=22, max_size=22))
            + "_"
            + draw(st.text(ALNUM, min_size=59, max_size=59))
        )
        return Planted(token, (token,))
    if kind == "slack":
        token = (
            "xox"
            + draw(st.sampled_from("abpr"))
            + "-"
            + draw(st.text(string.digits, min_size=10, max_size=13))
            + "-"
            + draw(st.text(ALNUM, min_size=12, max_size=32))
        )
        return Planted(token, (token,))
    if kind == "stripe":
        token = draw(st.sampled_from(["sk_live_", "pk_live_", "rk_live_", "sk_test_"])) + draw(
            st.text(ALNUM, min_size=24, max_size=32)
        )
        return Planted(token, (token,))
    if kind == "google":
        token = "AIza" + draw(st.text(URLSAFE, min_size=35, max_size=35))
        return Planted(token, (token,))
    if kind == "jwt":
        header = _b64url(b'{"alg":"HS256","typ":"JWT"}')
        claims = {"sub": draw(st.text(ALNUM, min_size=1, max_size=12)), "iat": 1700000000}
        payload = _b64url(json.dumps(claims).encode())
        signature = _b64url(draw(st.binary(min_size=16, max_size=32)))
        token = f"{header}.{payload}.{signature}"
        return Planted(token, (token, f"{payload}.{signature}"))
    if kind == "pem":
        kind_name = draw(st.sampled_from(["", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED "]))
        body_lines = [
            base64.b64encode(draw(st.binary(min_size=24, max_size=48))).decode()
            for _ in range(draw(st.integers(1, 3)))
        ]
        text = (
            f"-----BEGIN {kind_name}PRIVATE KEY-----\n"
            + "\n".join(body_lines)
            + f"\n-----END {kind_name}PRIVATE KEY-----"
        )
        return Planted(text, tuple(body_lines))
    if kind in ("bearer_header", "bearer"):
        token = draw(st.text(URLSAFE + ".~+/", min_size=20, max_size=40))
        word = draw(st.sampled_from(["Bearer", "bearer", "Token"]))
        if kind == "bearer_header":
            header = draw(
                st.sampled_from(["Authorization", "authorization", "Proxy-Authorization"])
            )
            return Planted(f"{header}: {word} {token}", (token,))
        return Planted(f"{word} {token}", (token,))
    if kind == "basic":
        user = draw(st.text(ALNUM, min_size=1, max_size=10))
        password = draw(st.text(ALNUM + "!$%", min_size=4, max_size=16))
        encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
        return Planted(f"Authorization: Basic {encoded}", (encoded,))
    key = draw(
        st.sampled_from(
            [
                "password", "db_password", "PASSWD", "secret", "api_key", "apiKey",
                "X-Auth-Token", "client_secret", "access_token", "private_key", "pwd",
                "Cookie", "set-cookie", "sessionid",
            ]
        )
    )  # fmt: skip
    value = draw(st.text(ALNUM + "!#$%*+/?^_~.-", min_size=4, max_size=24))
    form = draw(st.sampled_from(["eq", "colon", "spaced", "quoted", "json", "arrow"]))
    text = {
        "eq": f"{key}={value}",
        "colon": f"{key}: {value}",
        "spaced": f"{key} = {value}",
        "quoted": f"{key}='{value} and more'",
        "json": f'"{key}": "{value}"',
        "arrow": f"{key} => {value}",
    }[form]
    return Planted(text, (value,))


personal = st.one_of(
    emails(),
    ipv4s(),
    ipv6s(),
    home_paths(),
    identities(),
    url_credentials(),
    query_secrets(),
    cards(),
    secret_formats(),
)

# Surrounding text: anything, joined to the planted data with a separator.
filler = st.text(max_size=30)
SEPARATORS = [" ", "\n", ", ", "; ", "(", ") ", "'", '"', "=", ": ", "<", "> ", "\t", " | "]
# Directly before an IPv4 address, " ", "=", ":" and a tab may follow "version" (a
# documented exception, "version 1.2.3.4" is a version); these do not.
SEPARATORS_BEFORE_IP = ["\n", ", ", "; ", "(", "'", '"', "<", " | ", "[", "/"]


def _count(haystack: str, needle: str) -> int:
    return _PLACEHOLDER_WORDS.sub("\x00", haystack).count(needle)


def _assert_gone(out: str, planted: Planted, surroundings: str) -> None:
    # What may legitimately remain: the surroundings and the planted text's other parts
    # (the host of a URL whose password was "aaaa" may well be "aaaa.com").
    rest = planted.text
    removed: list[str] = []
    for secret in sorted(planted.secrets, key=len, reverse=True):
        if not any(secret in longer for longer in removed):
            rest = rest.replace(secret, "\x00", 1)
            removed.append(secret)
    context = surroundings + "\x00" + rest
    for secret in planted.secrets:
        assert _count(out, secret) <= _count(context, secret), (secret, out)


@st.composite
def embedded(draw: st.DrawFn) -> tuple[str, Planted, str]:
    planted = draw(personal)
    before, after = draw(filler), draw(filler)
    ip_like = re.match(r"\[?[0-9a-fA-F:.]+", planted.text) is not None
    sep_before = draw(st.sampled_from(SEPARATORS_BEFORE_IP if ip_like else SEPARATORS))
    sep_after = draw(st.sampled_from(SEPARATORS))
    left = before + sep_before
    right = sep_after + after
    return left + planted.text + right, planted, left + right


@SETTINGS
@given(embedded())
def test_planted_personal_data_never_survives_in_text(case: tuple[str, Planted, str]) -> None:
    """Personal data of every kind, inside random text, is gone after scrub_text."""
    text, planted, surroundings = case
    _assert_gone(scrub_text(text), planted, surroundings)


json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
plain_keys = st.text(max_size=10)


@st.composite
def nested(draw: st.DrawFn) -> tuple[Any, Planted, str]:
    text, planted, surroundings = draw(embedded())
    value: Any = text
    bare: Any = surroundings
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["list", "tuple", "dict", "key"]))
        siblings = draw(st.lists(json_leaves, max_size=3))
        if kind == "list":
            value, bare = [*siblings, value], [*siblings, bare]
        elif kind == "tuple":
            value, bare = (value, *siblings), (bare, *siblings)
        elif kind == "dict":
            key = draw(plain_keys)
            others = draw(st.dictionaries(plain_keys, json_leaves, max_size=3))
            others.pop(key, None)
            value, bare = {**others, key: value}, {**others, key: bare}
        elif isinstance(value, str):
            # The personal data is a dict key.
            value, bare = {value: draw(json_leaves)}, {bare: None}
    return value, planted, json.dumps(bare, default=repr)


def _json_escaped(s: str) -> str:
    return json.dumps(s)[1:-1]


@SETTINGS
@given(nested())
def test_planted_personal_data_never_survives_in_structures(
    case: tuple[Any, Planted, str],
) -> None:
    """Personal data nested in dicts, lists and tuples (values or keys) is gone after scrub."""
    value, planted, surroundings = case
    out = json.dumps(scrub(value), default=repr)
    escaped = Planted(planted.text, tuple(_json_escaped(s) for s in planted.secrets))
    _assert_gone(out, escaped, surroundings)


sensitive_keys = st.sampled_from(
    [
        "password", "Password", "db_password", "passwd", "pwd", "token", "X-Auth-Token",
        "accessToken", "secret", "client_secret", "api_key", "apiKey", "API-KEY", "access_key",
        "private_key", "cookie", "Set-Cookie", "authorization", "auth", "session", "sessionid",
        "credential", "credentials", "ssn", "credit_card", "creditCardNumber", "cvv",
    ]
)  # fmt: skip
secret_values = st.one_of(
    st.text(ALNUM + "!#$%&*+-./:;<=>?@^_~", min_size=8, max_size=24),
    st.integers(10**8, 10**12).map(str),
)


@SETTINGS
@given(
    sensitive_keys,
    secret_values,
    st.sampled_from(["str", "int", "list", "dict"]),
    st.integers(0, 3),
)
def test_values_under_sensitive_keys_never_survive(
    key: str, secret: str, shape: str, depth: int
) -> None:
    """A value under a sensitive key is redacted whatever its type and nesting."""
    inner: Any = {
        "str": secret,
        "int": int(secret) if secret.isdigit() else secret,
        "list": [secret, 1],
        "dict": {"v": secret, "n": [secret]},
    }[shape]
    value: Any = {"event": "login", key: inner}
    for _ in range(depth):
        value = [{"wrapped": value}]
    out = json.dumps(scrub(value))
    assert '"<redacted>"' in out
    assert _count(out, _json_escaped(secret)) == 0


# ---------------------------------------------------------------------------------------
# Clean technical text
# ---------------------------------------------------------------------------------------

versions = st.one_of(
    st.from_regex(r"[0-9]{1,2}\.[0-9]{1,2}(\.[0-9]{1,3})?", fullmatch=True),
    st.from_regex(r"v[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,3}", fullmatch=True),
    st.from_regex(r"[0-9]\.[0-9]{1,2}\.[0-9]{1,2}(rc[0-9]|\.dev[0-9]|a[0-9])", fullmatch=True),
)
durations = st.builds(
    lambda n, unit: f"{n}{unit}",
    st.one_of(st.integers(0, 10**6), st.floats(0, 1e6).map(lambda f: f"{f:.1f}")),
    st.sampled_from(["ns", "us", "µs", "ms", "s", "m", "h", " ms", " s"]),
)
words = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
relative_paths = st.builds(
    lambda parts, ext: "/".join(parts) + ext,
    st.lists(words, min_size=1, max_size=4),
    st.sampled_from(["", ".py", ".json", ".wav", ".txt"]),
)
system_paths = st.builds(
    lambda root, parts: root + "/".join(parts),
    st.sampled_from(
        ["/usr/lib/", "/usr/local/lib/", "/var/log/", "/etc/", "/opt/", "/tmp/", "/srv/"]
    ),
    st.lists(words, min_size=1, max_size=4),
)
module_names = st.builds(".".join, st.lists(words, min_size=1, max_size=5))
hex_ids = st.from_regex(r"[0-9a-f]{7,40}", fullmatch=True)
uuids = st.uuids().map(str)
timestamps = st.datetimes().map(lambda d: d.isoformat())
numbers = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.floats(-1e12, 1e12, allow_nan=False).map(repr),
)
error_names = st.from_regex(r"[A-Z][a-z]{2,10}(Error|Exception|Warning)", fullmatch=True)

clean_pieces = st.one_of(
    versions, durations, relative_paths, system_paths, module_names, hex_ids, uuids,
    timestamps, numbers, error_names,
)  # fmt: skip


# Not a single space between pieces: numbers such as "2000 1001 1001 1001" joined by spaces
# can be printed exactly like a card number (4-4-4-4, Luhn-valid) and are then removed.
@SETTINGS
@given(st.lists(clean_pieces, min_size=1, max_size=8), st.sampled_from([", ", "\n", " | ", "; "]))
def test_clean_technical_text_is_unchanged(pieces: list[str], sep: str) -> None:
    """Versions, durations, paths, module names, ids, timestamps and numbers are kept."""
    text = sep.join(pieces)
    assert scrub_text(text) == text


@SETTINGS
@given(st.dictionaries(words, clean_pieces, max_size=10))
def test_clean_event_dict_is_unchanged(event: dict[str, str]) -> None:
    """An event of clean technical fields comes back equal (keys are plain words)."""
    assume(not any(scrub_mod.is_sensitive_key(k) for k in event))
    assert scrub(event) == event


# ---------------------------------------------------------------------------------------
# Never raises, idempotent
# ---------------------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(),
        st.binary(max_size=8),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=12), children, max_size=4),
        st.frozensets(st.text(max_size=8), max_size=3),
    ),
    max_leaves=20,
)
tricky_text = st.one_of(
    st.text(),
    st.builds(lambda a, p, b: a + p.text + b, st.text(max_size=10), personal, st.text(max_size=10)),
)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_scrub_never_raises_and_is_idempotent(value: Any) -> None:
    """Any json-ish value scrubs without error, and scrubbing twice changes nothing more."""
    once = scrub(value)
    assert scrub(once) == once


@settings(max_examples=300, deadline=None)
@given(tricky_text)
def test_scrub_text_never_raises_and_is_idempotent(text: str) -> None:
    """Arbitrary text scrubs without error; scrub_text(scrub_text(s)) == scrub_text(s)."""
    once = scrub_text(text)
    assert isinstance(once, str)
    assert scrub_text(once) == once
