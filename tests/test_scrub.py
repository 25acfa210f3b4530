"""Unit tests of the scrubber: every kind of personal data is caught, technical text is not."""

from __future__ import annotations

import json
from collections import OrderedDict, namedtuple
from collections.abc import Iterator

import pytest

from sounding.collection import scrub as scrub_mod
from sounding.collection.scrub import (
    MAX_DEPTH,
    REDACTED,
    guard_tag_value,
    is_sensitive_key,
    looks_personal,
    scrub,
    scrub_text,
    set_identity,
)
from sounding.core import health

USER = "alice"
HOST = "alice-laptop.example.net"


@pytest.fixture(autouse=True)
def _identity() -> Iterator[None]:
    """Scrub a known user and host name instead of the machine's."""
    set_identity(USER, HOST)
    health.reset()
    yield
    scrub_mod.reset_identity()
    health.reset()


# (text, expected) pairs: every kind of personal data the scrubber must catch.
PERSONAL = [
    # e-mail addresses
    ("mail alice.smith+tag@example.co.uk now", "mail <email> now"),
    ("From: <bob_99@mail.example.org>", "From: <<email>>"),
    ("user=carol@sub.example.com,", "user=<email>,"),
    ("contact o'brien@example.ie", "contact o'<email>"),
    ("root@[10.0.0.1] said", "<email> said"),
    # IPv4, with and without port; loopback too
    ("peer 192.168.1.20 closed", "peer <ip> closed"),
    ("connect 10.0.0.1:5432 failed", "connect <ip>:5432 failed"),
    ("listening on 127.0.0.1:8000", "listening on <ip>:8000"),
    ("ip=8.8.8.8.", "ip=<ip>."),
    # IPv6: full, compressed, loopback, zone id, bracketed with port, IPv4-mapped
    ("addr 2001:0db8:85a3:0000:0000:8a2e:0370:7334 up", "addr <ip> up"),
    ("addr 2001:db8::8a2e:370:7334 up", "addr <ip> up"),
    ("bind ::1 ok", "bind <ip> ok"),
    ("via fe80::1ff:fe23:4567:890a%eth0 ok", "via <ip> ok"),
    ("GET http://[2001:db8::1]:8080/x", "GET http://[<ip>]:8080/x"),
    ("mapped ::ffff:192.0.2.128 ok", "mapped <ip> ok"),
    ("to 2001:db8::1: refused", "to <ip>: refused"),
    ("listening on fe80::1.", "listening on <ip>."),
    ("from host-10.0.0.1 now", "from host-<ip> now"),
    # home directories, every OS, file URLs, ~user
    ("open /home/alice/projects/x.py", "open ~/projects/x.py"),
    ("open /var/home/dave/x.py", "open ~/x.py"),
    ("open /Users/bob.jones/Library/x.plist", "open ~/Library/x.plist"),
    ("open C:\\Users\\carol\\AppData\\x.ini", "open ~\\AppData\\x.ini"),
    ("open c:\\users\\John Smith\\Desktop\\a b.txt", "open ~\\Desktop\\a b.txt"),
    ("open C:/Users/erin/AppData/x.ini", "open ~/AppData/x.ini"),
    ("repr 'C:\\\\Users\\\\frank\\\\x.ini'", "repr '~\\\\x.ini'"),
    ("see file:///home/gina/notes.txt", "see file://~/notes.txt"),
    ("see file:///C:/Users/hank/notes.txt", "see file:///~/notes.txt"),
    ("cd ~ivan/src", "cd ~/src"),
    ("home is /home/judy", "home is ~"),
    # the current user and host name, as whole words, any case
    ("alice started the job", "<user> started the job"),
    ("by Alice.", "by <user>."),
    ("on alice-laptop.example.net and alice-laptop", "on <host> and <host>"),
    # credentials in URLs
    ("GET https://bob:hunter2@api.example.com/v1", "GET https://<credentials>@api.example.com/v1"),
    ("redis://:s3cret@cache:6379/0", "redis://<credentials>@cache:6379/0"),
    ("postgres://app:pw@db/x", "postgres://<credentials>@db/x"),
    # secret query parameters
    ("GET /cb?code=abc123&state=xyz", "GET /cb?code=<redacted>&state=xyz"),
    ("u?access_token=tok1&page=2", "u?access_token=<redacted>&page=2"),
    ("s3?X-Amz-Signature=deadbeef&X-Amz-Credential=AK%2F1", None),
    ("x?api_key=k1;sig=s2", "x?api_key=<redacted>;sig=<redacted>"),
    # payment card numbers (Luhn-valid), with spaces, dashes, none, next to another number
    ("card 4111 1111 1111 1111 ok", "card <card> ok"),
    ("card 5500-0000-0000-0004 ok", "card <card> ok"),
    ("card 340000000000009 ok", "card <card> ok"),
    ("card 6011000990139424", "card <card>"),
    ("order 7 4111 1111 1111 1111", "order 7 <card>"),
    # well-known secret formats
    ("key AKIAIOSFODNN7EXAMPLE set", "key <secret> set"),
    ("tok ghp_" + "a1B2" * 9 + " end", "tok <secret> end"),
    ("tok github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz end", "tok <secret> end"),
    ("tok xoxb-123456789012-abcdefABCDEF end", "tok <secret> end"),
    ("tok sk_live_4eC39HqLyjWDarjtT1zdp7dc end", "tok <secret> end"),
    ("tok rk_test_4eC39HqLyjWDarjtT1zdp7dc end", "tok <secret> end"),
    ("tok AIzaSyA-1234567890abcdefghijklmnopqrstu end", "tok <secret> end"),
    (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
        "jwt <jwt> end",
    ),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\nok",
        "<private-key>\nok",
    ),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk", "<private-key>"),
    ("Authorization: Bearer abc.def-123\nnext", "Authorization: <redacted>\nnext"),
    ("sent Bearer 3f9a7c2e1b8d and more", "sent Bearer <redacted> and more"),
    ("sent Basic dXNlcjpwYXNzd29yZA== ok", "sent Basic <redacted> ok"),
    ("Cookie: sessionid=abc; csrftoken=def", "Cookie: <redacted>"),
    ("set-cookie: a=b", "set-cookie: <redacted>"),
    # key-value assignments in free text
    ("db_password=hunter2 next", "db_password=<redacted> next"),
    ("secret: 'two words'", "secret: '<redacted>'"),
    ('{"password": "a b c", "n": 1}', '{"password": "<redacted>", "n": 1}'),
    ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None),
    ("X-Auth-Token: t0k3n", "X-Auth-Token: <redacted>"),
    ("apiKey => abc123", "apiKey => <redacted>"),
]


@pytest.mark.parametrize(("text", "expected"), PERSONAL)
def test_scrub_text_removes_personal_data(text: str, expected: str | None) -> None:
    """Each kind of personal data is replaced by a placeholder that names it."""
    out = scrub_text(text)
    if expected is not None:
        assert out == expected
    else:
        assert out != text
        assert "<redacted>" in out


@pytest.mark.parametrize(("text", "expected"), PERSONAL)
def test_scrub_text_is_idempotent_on_personal_data(text: str, expected: str | None) -> None:
    """Scrubbing scrubbed text changes nothing: placeholders are never matched again."""
    once = scrub_text(text)
    assert scrub_text(once) == once


CLEAN = [
    "python 3.11.7 on linux, sounding 0.1.0.dev0, numpy 1.26.4",
    "upgraded from v1.2.3.4 to version 1.2.3.5 (build 2024.01.15.1)",
    "export took 12.5ms (p99 250.0 ms, 1.5s total, 3.2e-05 s min)",
    "src/sounding/collection/scrub.py:42 and ../data/input.wav",
    "/usr/lib/python3.11/json/decoder.py",
    "/var/log/syslog /etc/hosts /opt/app/bin/run /tmp/x /root/.cache/pip",
    "/Users/Shared/Data/x and /home/ and C:\\Users\\Public\\Documents",
    "recorder.export.duration sounding.events.dropped http_requests_total",
    "id 550e8400-e29b-41d4-a716-446655440000 hex deadbeefcafebabe0123456789abcdef",
    "commit 3f786850e3b4c4ac5f3a8e9d2b1c0a9f8e7d6c5b (abbrev 3f78685)",
    "at 2024-01-15T12:30:45.123456+00:00 and 2024-01-15 12:30:45Z, 12:30:45",
    "count 42, -17, 3.14159, 1e10, 0x1F, 1700000000000 ms, 1234567890123456789012",
    "ValueError: Expecting value: line 1 column 1 (char 0)",
    "KeyError: 'user_id' in ConnectionResetError handler",
    "Traceback (most recent call last):\n"
    '  File "/usr/lib/python3.11/json/decoder.py", line 337, in decode\n'
    "    obj, end = self.raw_decode(s, idx=_w(s, 0).end())\n"
    "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
    "token_count=512 max_tokens=1024 password_length=12 token_type=bearer",
    "Bearer authentication failed; Basic auth is disabled",
    "the author: Bob Dylan; Authentication: failed; session_id=abc123",
    "std::vector<int> and a::b",
    "root user admin on localhost ran the runner as ubuntu",
    "@property def x(self) -> int: ... decorated with @functools.cache",
    "GET /api/v1/items?page=2&sort=name&limit=50",
    "~/.config/sounding/config.toml and ~ 5 ms",
    "ratio 1.2.3 4.5.6 and 255.255.255 and 1.2.3.4.5",
    "counts 62964 62964 62964 and 40000 00000 00000 00000 0",
]


@pytest.mark.parametrize("text", CLEAN)
def test_scrub_text_leaves_technical_text_alone(text: str) -> None:
    """Versions, durations, paths, names, ids, timestamps and numbers are not touched."""
    assert scrub_text(text) == text


def test_scrub_text_returns_the_same_object_when_clean() -> None:
    """A clean message is returned as is, without a copy (the cheap path)."""
    s = "nothing personal here, 12.5ms"
    assert scrub_text(s) is s


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWORD",
        "db_password",
        "passwd",
        "pwd",
        "token",
        "X-Auth-Token",
        "accessToken",
        "secret",
        "client_secret",
        "api_key",
        "apiKey",
        "API-KEY",
        "access_key",
        "private_key",
        "cookie",
        "Set-Cookie",
        "authorization",
        "Proxy-Authorization",
        "auth",
        "session",
        "sessionid",
        "JSESSIONID",
        "credentials",
        "ssn",
        "credit_card",
        "creditCardNumber",
        "card_number",
        "cvv",
        "refresh_token",
    ],
)
def test_sensitive_keys(key: str) -> None:
    """Keys naming a secret are recognised on their normalised words, in any case."""
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "author",
        "authority_host",
        "token_count",
        "max_tokens",
        "password_length",
        "token_type",
        "session_id",
        "user",
        "event",
        "message",
        "keyboard",
        "passenger",
        "",
    ],
)
def test_non_sensitive_keys(key: str) -> None:
    """Keys that merely describe a secret, or contain a keyword inside a word, are kept."""
    assert not is_sensitive_key(key)


def test_scrub_dict_redacts_sensitive_keys_whatever_the_value() -> None:
    """Values under sensitive keys become "<redacted>", even numbers and nested structures."""
    event = {
        "password": 1234,
        "X-Auth-Token": None,
        "credentials": {"user": "bob", "pass": "x"},
        "cookie": ["a", "b"],
        "tries": 3,
        "ok": True,
    }
    assert scrub(event) == {
        "password": REDACTED,
        "X-Auth-Token": REDACTED,
        "credentials": REDACTED,
        "cookie": REDACTED,
        "tries": 3,
        "ok": True,
    }


def test_scrub_nested_structures_keep_shape_and_types() -> None:
    """Lists stay lists, tuples tuples, non-strings as they were; strings are scrubbed."""
    marker = object()
    event = {
        "msg": "login by alice@example.com",
        "peers": ["10.0.0.1", ("::1", 443)],
        "n": 1.5,
        "none": None,
        "obj": marker,
        "raw": b"bytes stay",
        "deep": {"path": "/home/bob/x"},
    }
    out = scrub(event)
    assert out == {
        "msg": "login by <email>",
        "peers": ["<ip>", ("<ip>", 443)],
        "n": 1.5,
        "none": None,
        "obj": marker,
        "raw": b"bytes stay",
        "deep": {"path": "~/x"},
    }
    assert out["obj"] is marker
    assert event["msg"] == "login by alice@example.com"  # the input is not modified


def test_scrub_keeps_namedtuples_and_scrubs_sets() -> None:
    """A namedtuple keeps its type; set elements are scrubbed too."""
    Point = namedtuple("Point", ["host", "port"])
    out = scrub({"p": Point("10.1.1.1", 80), "s": {"a@b.io", "x"}, "f": frozenset({"1.1.1.1"})})
    assert out["p"] == Point("<ip>", 80)
    assert type(out["p"]) is Point
    assert out["s"] == {"<email>", "x"}
    assert out["f"] == frozenset({"<ip>"})


def test_scrub_scrubs_keys_and_keeps_colliding_ones_apart() -> None:
    """Personal data in keys is removed; two keys that become equal both survive."""
    out = scrub({"a@example.com": 1, "b@example.com": 2, 7: "10.0.0.1"})
    assert out == {"<email>": 1, "<email>#2": 2, 7: "<ip>"}


def test_scrub_dict_subclass_becomes_dict() -> None:
    """Mapping subclasses are scrubbed into plain dicts."""
    out = scrub(OrderedDict(user="x@y.org"))
    assert out == {"user": "<email>"}


def test_scrub_survives_cycles() -> None:
    """A container that contains itself is cut with "<cycle>"."""
    a: list[object] = ["10.0.0.1"]
    a.append(a)
    d: dict[str, object] = {"x": "y"}
    d["self"] = d
    assert scrub(a) == ["<ip>", "<cycle>"]
    assert scrub(d) == {"x": "y", "self": "<cycle>"}


def test_scrub_shared_references_are_not_cycles() -> None:
    """The same list referenced twice (not a cycle) is scrubbed twice."""
    shared = ["a@b.io"]
    assert scrub([shared, shared]) == [["<email>"], ["<email>"]]


def test_scrub_caps_depth() -> None:
    """Nesting deeper than MAX_DEPTH is replaced instead of recursing without end."""
    deep: dict[str, object] = {}
    node = deep
    for _ in range(5000):
        child: dict[str, object] = {}
        node["k"] = child
        node = child
    node["leak"] = "alice@example.com"
    out = scrub(deep)
    text = json.dumps(out)
    assert "<max-depth>" in text
    assert "example.com" not in text
    assert text.count('"k"') == MAX_DEPTH


def test_scrub_of_plain_objects_returns_them() -> None:
    """Numbers, None and other objects come back as they are."""
    for value in (1, 2.5, None, True, b"x"):
        assert scrub(value) is value


def test_scrub_str_subclass_kept_when_clean() -> None:
    """A clean str subclass is returned unchanged (same object)."""

    class Name(str):
        pass

    n = Name("plain")
    assert scrub(n) is n


def test_scrub_never_raises_and_counts_a_failure() -> None:
    """An object whose iteration fails is replaced by "<redacted>" and counted."""

    class BadList(list[int]):
        def __iter__(self) -> Iterator[int]:
            raise RuntimeError("boom")

    assert scrub(BadList([1])) == REDACTED
    assert health.counts()["scrub.failed"] == 1


def test_generic_user_names_do_not_wipe_words() -> None:
    """A generic account name (root, runner, ubuntu, ...) is never scrubbed as a word."""
    set_identity("runner", "localhost")
    text = "the runner on localhost ran"
    assert scrub_text(text) == text
    assert scrub_text("/home/runner/work/x.py") == "~/work/x.py"


def test_short_user_names_are_not_scrubbed_as_words() -> None:
    """One- and two-letter user names are too short to remove from free text."""
    set_identity("al", "zz")
    text = "al and zz went home"
    assert scrub_text(text) == text


def test_user_name_is_matched_between_non_letters_only() -> None:
    """The user name "alice" leaves "malice" and "alicex" alone but goes from file names
    ("take-alice.wav", "alice_notes") and host-like names ("alice-pc")."""
    assert scrub_text("malice and alicex and alice") == "malice and alicex and <user>"
    assert (
        scrub_text("take-alice.wav alice_notes.txt alice-pc")
        == "take-<user>.wav <user>_notes.txt <user>-pc"
    )


@pytest.mark.parametrize(
    "value",
    [
        "wav", "ok", "200", "linux", "3.11.7", "recorder.export", "GET", "runner",
        "/users/:id", "/api/v1/users/{id}", "react@18.2.0", "@latest",
    ],
)  # fmt: skip
def test_guard_tag_value_keeps_ordinary_values(value: str) -> None:
    """Low-cardinality technical tag values pass unchanged and are not counted."""
    assert guard_tag_value(value) == value
    assert "tags.redacted" not in health.counts()


@pytest.mark.parametrize(
    "value",
    [
        "bob@example.org",
        "bob@localhost",
        "10.0.0.7",
        "::1",
        "/home/bob/x",
        "C:\\Users\\bob",
        "~bob",
        "team@corp",
        "alice",
        "alice-laptop",
        "4111111111111111",
        "1111111111111117",
        "ghp_" + "x1" * 18,
        "password=x",
    ],
)
def test_guard_tag_value_redacts_and_counts_personal_values(value: str) -> None:
    """Personal-looking tag values become "<redacted>" and are counted."""
    assert looks_personal(value)
    assert guard_tag_value(value) == REDACTED
    assert health.counts()["tags.redacted"] == 1


def test_guard_tag_value_stringifies_non_strings() -> None:
    """A number passed as a tag value is checked as its text."""
    assert guard_tag_value(5) == "5"  # type: ignore[arg-type]


def test_guard_tag_value_matches_short_user_name_exactly() -> None:
    """In a tag, even a short user name is personal when it is the whole value."""
    set_identity("al", "zz")
    assert guard_tag_value("al") == REDACTED
    assert guard_tag_value("alpha") == "alpha"


def test_system_identity_is_read_from_the_machine() -> None:
    """Without set_identity, the user and host come from getpass and socket."""
    import getpass
    import socket

    scrub_mod.reset_identity()
    ident = scrub_mod._get_identity()
    assert ident.user == getpass.getuser()
    assert ident.host == socket.gethostname()


PATHOLOGICAL = [
    "a" * 20_000 + " @",
    "a." * 20_000 + "@",
    "a" * 20_000 + "@ ://",
    "a@" + "a." * 20_000,
    "?" + "token" * 4_000 + " =&",
    "1 " * 20_000 + "a",
    "a:" * 20_000,
    "C:\\Users\\" + "a " * 20_000,
    "password" + "=" * 20_000,
    "~" + "a" * 20_000,
    "eyJ" * 7_000,
    "Bearer " * 3_000,
]


@pytest.mark.parametrize("text", PATHOLOGICAL, ids=lambda t: repr(t[:12]))
def test_pathological_inputs_are_scrubbed_in_linear_time(text: str) -> None:
    """Inputs built to make regexes backtrack finish (every pattern is anchored or bounded)."""
    out = scrub_text(text)
    assert isinstance(out, str)
    assert scrub_text(out) == out


def test_many_cards_in_one_run() -> None:
    """Thousands of card numbers in a row are all replaced (no recursion limit)."""
    out = scrub_text("4111 1111 1111 1111 " * 3000)
    assert out == "<card> " * 3000


def test_scrub_text_failure_is_counted_and_redacts(monkeypatch: pytest.MonkeyPatch) -> None:
    """If a rule raises, scrub_text returns "<redacted>" and counts the failure."""

    def broken(s: str) -> str:
        raise RuntimeError("rule failed")

    monkeypatch.setattr(scrub_mod, "_scrub_text", broken)
    assert scrub_text("x" * 100) == REDACTED
    assert health.counts()["scrub.failed"] == 1


def test_scrub_text_hands_non_strings_to_scrub() -> None:
    """A non-str argument is scrubbed as a structure rather than raising."""
    assert scrub_text(["a@b.io"]) == ["<email>"]  # type: ignore[arg-type]
    assert scrub_text(7) == 7  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    ["python 192.168.17.42", "version 10.0.100.7 reached", "build: 172.16.254.1"],
)
def test_an_address_after_a_version_word_is_still_removed(text: str) -> None:
    """A version marker does not protect an address whose parts are not version-sized."""
    assert "<ip>" in scrub_text(text)
