"""The scrubber's newer kinds: phone numbers, MAC addresses, secret formats, IBAN and SSN,
personal keys, the OS user name inside names, and metric names that identify the machine.

Each kind has a property test of the same shape as tests/test_scrub_properties.py: planted
in random text it never survives, and ordinary technical text around it is unchanged.
Secret formats are checked against detect-secrets (a test-time oracle only): each generated
token is one that detect-secrets itself flags, and the scrubber removes it.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sounding
from sounding.collection import scrub as scrub_mod
from sounding.collection.scrub import (
    guard_tag_value,
    is_personal_key,
    scrub,
    scrub_text,
    set_identity,
)
from sounding.exceptions import InvalidNameError

USER = "zoltanq"
HOST = "zoltanq-box.example.net"

SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

DIGITS = string.digits
ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"
LOWER_HEX = "0123456789abcdef"


@pytest.fixture(autouse=True)
def _identity() -> Iterator[None]:
    """Scrub a known user and host name instead of the machine's."""
    set_identity(USER, HOST)
    yield
    scrub_mod.reset_identity()


def digits(n: int, first: str = DIGITS) -> st.SearchStrategy[str]:
    """``n`` decimal digits, the first one drawn from ``first``."""
    return st.builds(
        lambda a, b: a + b, st.sampled_from(first), st.text(DIGITS, min_size=n - 1, max_size=n - 1)
    )


# ---------------------------------------------------------------------------------------
# Phone numbers
# ---------------------------------------------------------------------------------------


@st.composite
def phones(draw: st.DrawFn) -> str:
    """A phone number as people write it: E.164 or a US, UK, FR, DE or IN national form."""
    kind = draw(st.sampled_from(["e164", "e164_grouped", "us", "uk", "fr", "de", "in"]))
    if kind == "e164":
        return "+" + draw(digits(draw(st.integers(10, 15)), "123456789"))
    if kind == "e164_grouped":
        cc = draw(st.sampled_from(["1", "33", "44", "49", "91", "61", "353"]))
        groups = draw(st.lists(st.text(DIGITS, min_size=3, max_size=4), min_size=3, max_size=3))
        sep = draw(st.sampled_from([" ", "-", "."]))
        return f"+{cc} " + sep.join(groups)
    if kind == "us":
        area, exchange, line = draw(digits(3, "23456789")), draw(digits(3)), draw(digits(4))
        form = draw(
            st.sampled_from(
                ["({a}) {e}-{l}", "{a}-{e}-{l}", "{a}.{e}.{l}", "1-{a}-{e}-{l}", "{a} {e} {l}"]
            )
        )
        return form.format(a=area, e=exchange, l=line)
    if kind == "uk":
        return draw(
            st.one_of(
                st.builds(lambda a, b: f"020 {a} {b}", digits(4, "378"), digits(4)),
                st.builds(lambda a, b: f"07{a} {b}", digits(3), digits(6)),
                st.builds(lambda a, b: f"01{a} {b}", digits(3), digits(6)),
            )
        )
    if kind == "fr":
        sep = draw(st.sampled_from([" ", ".", "-"]))
        pairs = [draw(digits(2)) for _ in range(4)]
        return "0" + draw(st.sampled_from("123456789")) + sep + sep.join(pairs)
    if kind == "de":
        area = draw(st.sampled_from(["030", "089", "040", "0171", "0151", "0221"]))
        sep = draw(st.sampled_from([" ", "/", "-"]))
        return area + sep + draw(digits(draw(st.integers(5, 8))))
    return draw(
        st.one_of(
            st.builds(lambda a, b: f"0{a} {b}", digits(5, "6789"), digits(5)),
            st.builds(lambda a, b: f"+91 {a} {b}", digits(5, "6789"), digits(5)),
            st.builds(lambda a, b: f"022 {a} {b}", digits(4), digits(4)),
        )
    )


SEPARATORS = [" ", "\n", ", ", "; ", "(", "'", '"', ": ", "= ", " | ", "\t"]
filler = st.text(max_size=24)


def embed(planted: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, str, str]]:
    """(text, planted, surroundings): ``planted`` between random text and separators."""
    return st.builds(
        lambda b, s1, p, s2, a: (b + s1 + p + s2 + a, p, b + s1 + s2 + a),
        filler,
        st.sampled_from(SEPARATORS),
        planted,
        st.sampled_from(SEPARATORS),
        filler,
    )


def _assert_gone(case: tuple[str, str, str]) -> None:
    text, planted, surroundings = case
    out = scrub_text(text)
    assert out.count(planted) <= surroundings.count(planted), (planted, out)


@SETTINGS
@given(embed(phones()))
def test_phone_numbers_never_survive(case: tuple[str, str, str]) -> None:
    """A phone number in any of the supported forms, inside random text, is gone."""
    _assert_gone(case)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call +1 415 555 2671 now", "call <phone> now"),
        ("sms to +447700900123.", "sms to <phone>."),
        ("(415) 555-2671", "<phone>"),
        ("office 020 7946 0958, mobile 07700 900123", "office <phone>, mobile <phone>"),
        ("tél. 06.12.34.56.78", "tél. <phone>"),
        ("Tel. 030/1234567 oder 0171 1234567", "Tel. <phone> oder <phone>"),
        ("ph 098765 43210 or +91 98765 43210", "ph <phone> or <phone>"),
    ],
)
def test_phone_number_forms(text: str, expected: str) -> None:
    """Each national form and E.164 becomes <phone>, the words around it stay."""
    assert scrub_text(text) == expected


def test_phone_under_keys_is_redacted() -> None:
    """Values under phone-like keys go in structures and in key=value text."""
    out = scrub({"phone": "5551234", "mobileNumber": 12345, "fax": "x", "phone_count": 2})
    assert out == {
        "phone": "<redacted>",
        "mobileNumber": "<redacted>",
        "fax": "<redacted>",
        "phone_count": 2,
    }
    assert scrub_text("phone=5551234 tries=3") == "phone=<redacted> tries=3"


# Ordinary numbers that must never be taken for a phone number (or anything else).
TECHNICAL = [
    "listening on localhost:8080 and [::]:8443",
    "pid 12345 exited with status 137",
    "took 1234.567 ms, 12.5s, 250us",
    "wrote 1048576 bytes (1 MiB) in 3 chunks of 349525",
    "epoch 1700000000 and 1700000000.123456 and 1700000000123",
    "build 20231012.3, build #4521, release 2024.10.1",
    "python 3.11.7, numpy 1.26.4, v10.2.0.1234",
    "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 id deadbeef0012",
    "uuid 550e8400-e29b-41d4-a716-446655440000",
    "2024-01-15T10:30:45.123+05:30 and 15.01.2024 and 2024/01/15 12:30:45",
    "retry 3/10 after 2.5 s, 99.95th percentile 0.0042",
    "offset +1234 lines, delta -12345678, ratio 1e+10",
    "matrix 1024x768, 3840 x 2160, sha256 e3b0c44298fc1c149afbf4c8996fb924",
    "error code 0x80070005 at 0x7ffd5e8c3a10",
    "version 1.2.3-rc.1 and 10.0.19045.3693",
]


@pytest.mark.parametrize("text", TECHNICAL)
def test_technical_numbers_are_unchanged(text: str) -> None:
    """Ports, pids, durations, sizes, epoch times, builds, versions and hex ids are kept."""
    assert scrub_text(text) == text


technical_numbers = st.one_of(
    st.integers(0, 65535).map(lambda p: f"localhost:{p}"),
    st.integers(1, 4_194_304).map(lambda p: f"pid {p}"),
    st.floats(0, 1e6, allow_nan=False).map(lambda f: f"{f:.3f} ms"),
    st.integers(0, 10**12).map(lambda n: f"{n} bytes"),
    st.integers(10**9, 2 * 10**9).map(str),
    st.floats(1e9, 2e9).map(lambda f: f"{f:.6f}"),
    st.builds(lambda y, m, d, n: f"build {y}{m:02d}{d:02d}.{n}", st.integers(2000, 2099),
              st.integers(1, 12), st.integers(1, 28), st.integers(0, 99)),
    st.from_regex(r"[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,3}", fullmatch=True),
    # A hex id made of decimal digits only can be a Luhn-valid card number (4200000222242):
    # that is a card to the scrubber, rightly; all-digit values are covered above.
    st.from_regex(r"[0-9a-f]{7,40}", fullmatch=True).filter(lambda s: not s.isdigit()),
    st.uuids().map(str),
    st.datetimes().map(lambda d: d.isoformat()),
)  # fmt: skip


@SETTINGS
@given(
    st.lists(technical_numbers, min_size=1, max_size=6), st.sampled_from([", ", " | ", "; ", "\n"])
)
def test_technical_numbers_property(pieces: list[str], sep: str) -> None:
    """Random technical numbers joined together come back unchanged."""
    text = sep.join(pieces)
    assert scrub_text(text) == text


# ---------------------------------------------------------------------------------------
# MAC addresses
# ---------------------------------------------------------------------------------------


@st.composite
def macs(draw: st.DrawFn) -> str:
    raw = draw(st.binary(min_size=6, max_size=6)).hex()
    if draw(st.booleans()):
        raw = raw.upper()
    form = draw(st.sampled_from([":", "-", "."]))
    if form == ".":
        return ".".join(raw[i : i + 4] for i in range(0, 12, 4))
    return form.join(raw[i : i + 2] for i in range(0, 12, 2))


@SETTINGS
@given(embed(macs()))
def test_mac_addresses_never_survive(case: tuple[str, str, str]) -> None:
    """A MAC address in colon, dash or dot form, inside random text, is gone."""
    _assert_gone(case)


def test_mac_forms() -> None:
    """All three forms become <mac>; a time or an IPv6 address is not taken for one."""
    text = "eth0 00:1A:2B:3C:4D:5E wlan 00-1a-2b-3c-4d-5e cisco 001a.2b3c.4d5e at 12:30:45"
    assert scrub_text(text) == "eth0 <mac> wlan <mac> cisco <mac> at 12:30:45"
    assert scrub_text("fe80::1ff:fe23:4567:890a") == "<ip>"


# ---------------------------------------------------------------------------------------
# Secret formats, with detect-secrets as the oracle
# ---------------------------------------------------------------------------------------


def _text(alphabet: str, n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=n, max_size=n)


SECRET_FORMATS: dict[str, tuple[str, st.SearchStrategy[str]]] = {
    "gitlab": ("gitlab_token.GitLabTokenDetector",
               st.builds(lambda p, t: f"{p}-{t}", st.sampled_from(["glpat", "gldt", "glrt"]),
                         _text(URLSAFE, 20))),
    "pypi": ("pypi_token.PypiTokenDetector",
             _text(URLSAFE, 80).map(lambda t: "pypi-AgEIcHlwaS5vcmc" + t)),
    "npm": ("npm.NpmDetector",
            _text(ALNUM, 36).map(lambda t: f"//registry.npmjs.org/:_authToken=npm_{t}")),
    "sendgrid": ("sendgrid.SendGridDetector",
                 st.builds(lambda a, b: f"SG.{a}.{b}", _text(URLSAFE, 22), _text(URLSAFE, 43))),
    "twilio": ("twilio.TwilioKeyDetector",
               st.builds(lambda p, t: p + t, st.sampled_from(["AC", "SK"]), _text(LOWER_HEX, 32))),
    "discord": ("discord.DiscordBotTokenDetector",
                st.builds(lambda f, a, b, c: f"{f}{a}.{b}.{c}", st.sampled_from("MNO"),
                          _text(URLSAFE, 23), _text(URLSAFE, 6), _text(URLSAFE, 27))),
    "mailchimp": ("mailchimp.MailchimpDetector",
                  st.builds(lambda t, n: f"{t}-us{n}", _text(LOWER_HEX, 32), st.integers(1, 20))),
    "telegram": ("telegram_token.TelegramBotTokenDetector",
                 st.builds(lambda n, t: f"{n}:{t}", digits(9, "123456789"), _text(URLSAFE, 35))),
    "openai": ("openai.OpenAIDetector",
               st.builds(lambda p, a, b: f"{p}{a}T3BlbkFJ{b}", st.sampled_from(["sk-", "sk-proj-"]),
                         _text(ALNUM, 20), _text(ALNUM, 20))),
    "square": ("square_oauth.SquareOAuthDetector", _text(URLSAFE, 43).map(lambda t: "sq0csp-" + t)),
    "slack_user": ("slack.SlackDetector",
                   st.builds(lambda a, b, c: f"xoxp-{a}-{b}-{c}", digits(11), digits(12),
                             _text(string.ascii_lowercase + DIGITS, 32))),
    "slack_webhook": ("slack.SlackDetector",
                      st.builds(lambda a, b, c: f"https://hooks.slack.com/services/T{a}/B{b}/{c}",
                                _text(ALNUM, 8), _text(ALNUM, 8), _text(ALNUM, 24))),
}  # fmt: skip


def _detector(path: str) -> Any:
    import importlib

    module, cls = path.rsplit(".", 1)
    return getattr(importlib.import_module(f"detect_secrets.plugins.{module}"), cls)()


def _secret_part(kind: str, text: str) -> str:
    # The part that must go: the npm line keeps its registry URL.
    return text.split("=", 1)[1] if kind == "npm" else text


@pytest.mark.parametrize("kind", sorted(SECRET_FORMATS))
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_secret_formats_flagged_by_detect_secrets_never_survive(
    kind: str, data: st.DataObject
) -> None:
    """Each token detect-secrets recognises as its format is removed from surrounding text."""
    path, strategy = SECRET_FORMATS[kind]
    token = data.draw(strategy)
    assert _detector(path).analyze_line(filename="x.env", line=token, line_number=1), token
    text, planted, surroundings = data.draw(embed(st.just(token)))
    out = scrub_text(text)
    secret = _secret_part(kind, planted)
    assert out.count(secret) <= surroundings.count(secret), (secret, out)


@pytest.mark.parametrize(
    "token",
    [
        "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0" * 3,
        "sk-" + "Zz09" * 12,
        "EAAA" + "x1Y2" * 15,
        "sq0atp-" + "a1B2c3D4e5F6g7H8i9J0k1",
        "xoxe.xoxp-1-" + "Ab12" * 30,
    ],
)
def test_newer_secret_formats(token: str) -> None:
    """OpenAI project keys, Square access tokens and Slack rotating tokens become <secret>."""
    assert scrub_text(f"key {token} end") == "key <secret> end"


@st.composite
def ibans(draw: st.DrawFn) -> str:
    country, length = draw(
        st.sampled_from([("DE", 22), ("GB", 22), ("FR", 27), ("ES", 24), ("NL", 18), ("IT", 27)])
    )
    bban = draw(_text(DIGITS, length - 4))
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(numeric) % 97
    iban = f"{country}{check:02d}{bban}"
    if draw(st.booleans()):
        iban = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban


@SETTINGS
@given(embed(ibans()))
def test_ibans_never_survive(case: tuple[str, str, str]) -> None:
    """A checksum-valid IBAN, grouped or not, without any key before it, is gone."""
    _assert_gone(case)


def test_iban_needs_a_valid_checksum() -> None:
    """Letters-and-digits codes that fail the mod-97 check are not taken for an IBAN."""
    assert scrub_text("IBAN DE89 3704 0044 0532 0130 00") == "IBAN <iban>"
    assert scrub_text("part DE00 ABCD EFGH IJKL MN") == "part DE00 ABCD EFGH IJKL MN"


@st.composite
def ssns(draw: st.DrawFn) -> str:
    area = draw(st.integers(1, 899).filter(lambda a: a != 666))
    group, serial = draw(st.integers(1, 99)), draw(st.integers(1, 9999))
    return f"{area:03d}-{group:02d}-{serial:04d}"


@SETTINGS
@given(embed(ssns()))
def test_ssns_never_survive(case: tuple[str, str, str]) -> None:
    """A dashed US social security number inside random text is gone."""
    _assert_gone(case)


def test_ssn_after_the_word_without_dashes() -> None:
    """After "SSN" the number goes whether written with spaces or as nine digits."""
    assert scrub_text("SSN 123 45 6789, ssn#123456789") == "SSN <ssn>, ssn#<ssn>"


# ---------------------------------------------------------------------------------------
# Personal keys
# ---------------------------------------------------------------------------------------

PERSONAL_KEYS = [
    "name", "Name", "full_name", "fullName", "first_name", "firstName", "last_name", "surname",
    "display_name", "username", "address", "street", "street_address", "email", "emailAddress",
    "phone", "phone_number", "ssn", "iban", "dob", "date_of_birth", "birthDate", "postal_code",
]  # fmt: skip
NOT_PERSONAL_KEYS = [
    "host_name", "file_name", "app_name", "event", "operation", "name_length", "email_count",
    "phone_type", "duration_ms", "format", "logger_name", "metric",
]  # fmt: skip


@SETTINGS
@given(st.sampled_from(PERSONAL_KEYS), st.one_of(st.text(min_size=1, max_size=20), st.integers()),
       st.integers(0, 3))  # fmt: skip
def test_values_under_personal_keys_never_survive(key: str, value: Any, depth: int) -> None:
    """A value under a key that names personal data is redacted at any depth."""
    event: Any = {"event": "signup", key: value}
    for _ in range(depth):
        event = {"payload": [event]}
    out = scrub(event)
    for _ in range(depth):
        out = out["payload"][0]
    assert out[key] == "<redacted>"


@pytest.mark.parametrize("key", NOT_PERSONAL_KEYS)
def test_keys_that_describe_or_name_things_are_kept(key: str) -> None:
    """host_name, file_name, name_length and other describing keys keep their value."""
    assert not is_personal_key(key)
    assert scrub({key: "recorder.export"}) == {key: "recorder.export"}


def test_name_in_free_text_is_ordinary_text() -> None:
    """ "table name: users" in a message stays: personal keys apply to structures."""
    assert scrub_text("table name: users") == "table name: users"


# ---------------------------------------------------------------------------------------
# The OS user name inside names, tags and metric names
# ---------------------------------------------------------------------------------------

name_words = st.from_regex(r"[a-z][a-z0-9]{1,8}", fullmatch=True).filter(lambda w: USER not in w)


@SETTINGS
@given(name_words, st.sampled_from(["-", "_", "."]),
       st.sampled_from(["prefix", "suffix", "middle"]),
       st.sampled_from(["", ".wav", ".txt", ".json"]))  # fmt: skip
def test_user_name_inside_file_names_never_survives(
    word: str, sep: str, where: str, ext: str
) -> None:
    """take-<user>.wav, <user>_notes.txt, mix.<user>.v2: the user name is gone, the rest kept."""
    parts = {"prefix": [USER, word], "suffix": [word, USER], "middle": [word, USER, "v2"]}[where]
    name = sep.join(parts) + ext
    out = scrub_text(f"saved {name}")
    assert USER not in out
    assert out == f"saved {name.replace(USER, '<user>')}"


def test_user_name_in_tag_values_is_refused() -> None:
    """A tag value holding the user name in a file or host name is replaced."""
    assert guard_tag_value(f"take-{USER}.wav") == "<redacted>"
    assert guard_tag_value(f"{USER}-laptop") == "<redacted>"
    assert guard_tag_value("take-1.wav") == "take-1.wav"


@pytest.mark.parametrize(
    "make",
    [
        lambda n: sounding.counter(n),
        lambda n: sounding.histogram(n),
        lambda n: sounding.PerformanceTimer(n),
        lambda n: sounding.operation_boundary(n),
    ],
)
@pytest.mark.parametrize("name", [f"{USER}.exports", f"exports.{USER}", "hosts.zoltanq_box.up"])
def test_metric_names_holding_user_or_host_are_refused(
    make: Callable[[str], object], name: str
) -> None:
    """Metric and operation names that identify the machine fail at definition."""
    with pytest.raises(InvalidNameError, match=r"OS (user|host) name"):
        make(name)


def test_ordinary_metric_names_are_accepted() -> None:
    """Names without the user or host name are accepted as before."""
    sounding.counter("recorder.exports").inc()


# A stable pseudo-random sample of hosts, so one run checks many shapes cheaply.
@pytest.mark.parametrize("seed", range(5))
def test_host_name_parts_in_metric_names_are_refused(seed: int) -> None:
    """The short host name as any dot-separated part of a metric name is refused."""
    rng = random.Random(seed)
    parts = [rng.choice(["app", "disk", "export", "queue"]) for _ in range(3)]
    parts.insert(rng.randrange(4), "zoltanq-box".replace("-", "_"))
    with pytest.raises(InvalidNameError):
        sounding.counter(".".join(parts))
