"""Signed return paths: round trips, the exact format, and every kind of forgery."""

from __future__ import annotations

import hmac
import random
import re
from typing import Any

import pytest

from dispatcher.domain import return_path
from dispatcher.domain.return_path import (
    MAX_DELIVERY_ID,
    MAX_LOCAL_PART,
    make_return_path,
    normalise_domain,
    read_return_path,
)

SECRET = "test-secret-key"
DOMAIN = "bounces.example.com"
# RFC 5321 Dot-string of atext; lowercase only, so case-folding relays cannot hurt it.
DOT_ATOM = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def token_of(address: str) -> tuple[str, str]:
    local = address.rpartition("@")[0]
    delivery, _, signature = local.removeprefix("bounces+").partition("-")
    return delivery, signature


@pytest.mark.parametrize("delivery_id", [0, 1, 42, 4711, 10**12, MAX_DELIVERY_ID])
def test_round_trip(delivery_id: int) -> None:
    address = make_return_path(delivery_id, SECRET, DOMAIN)
    assert read_return_path(address, SECRET, DOMAIN) == delivery_id


def test_the_format_is_pinned() -> None:
    # Return paths in flight for days must still read after a release: a change of
    # layout or key derivation breaks this test first.
    assert (
        make_return_path(4711, SECRET, DOMAIN)
        == "bounces+4711-4t4fnzm76wtk2ufh@bounces.example.com"
    )


@pytest.mark.parametrize("delivery_id", [0, 7, 4711, MAX_DELIVERY_ID])
def test_local_part_is_a_short_lowercase_atom(delivery_id: int) -> None:
    address = make_return_path(delivery_id, SECRET, DOMAIN)
    local, _, domain = address.rpartition("@")
    assert domain == DOMAIN
    assert local.startswith("bounces+")
    assert len(local) <= MAX_LOCAL_PART
    assert local == local.lower()
    assert DOT_ATOM.fullmatch(local)
    assert address.isascii()
    _, signature = token_of(address)
    assert len(signature) >= 12


def test_secret_may_be_bytes() -> None:
    address = make_return_path(9, SECRET.encode(), DOMAIN)
    assert address == make_return_path(9, SECRET, DOMAIN)
    assert read_return_path(address, SECRET.encode(), DOMAIN) == 9


def test_another_secret_reads_nothing() -> None:
    address = make_return_path(9, SECRET, DOMAIN)
    assert read_return_path(address, "another-key", DOMAIN) is None
    assert make_return_path(9, "another-key", DOMAIN) != address


def test_signatures_differ_per_delivery() -> None:
    signatures = {token_of(make_return_path(i, SECRET, DOMAIN))[1] for i in range(500)}
    assert len(signatures) == 500


def genuine() -> str:
    return make_return_path(4711, SECRET, DOMAIN)


def forged_signatures() -> list[str]:
    delivery, signature = token_of(genuine())
    forged = []
    for i, ch in enumerate(signature):
        other = "a" if ch != "a" else "b"
        forged.append(f"bounces+{delivery}-{signature[:i]}{other}{signature[i + 1 :]}@{DOMAIN}")
    return forged


@pytest.mark.parametrize("address", forged_signatures())
def test_any_changed_signature_character_is_refused(address: str) -> None:
    assert read_return_path(address, SECRET, DOMAIN) is None


ALTERED = {
    "other id, same signature": genuine().replace("+4711-", "+4712-"),
    "leading zero": genuine().replace("+4711-", "+04711-"),
    "negative id": genuine().replace("+4711-", "+-4711-"),
    "id too large": f"bounces+{2**64}-{token_of(genuine())[1]}@{DOMAIN}",
    "signature cut short": genuine().replace("h@", "@"),
    "signature extended": genuine().replace("h@", "ha@"),
    "signature missing": f"bounces+4711@{DOMAIN}",
    "signature empty": f"bounces+4711-@{DOMAIN}",
    "id missing": f"bounces+-{token_of(genuine())[1]}@{DOMAIN}",
    "other prefix": genuine().replace("bounces+", "bounce+"),
    "no prefix": genuine().replace("bounces+", ""),
    "prefix twice": genuine().replace("bounces+", "bounces+bounces+"),
    "separator changed": genuine().replace("+4711-", "+4711."),
    "padding": genuine().replace("h@", "h=@"),
    "base32 digit outside the alphabet": genuine()[:20] + "1" + genuine()[21:],
    "space inside": genuine().replace("-", " -"),
    "quoted local part": '"' + genuine().replace("@", '"@'),
    "CRLF injected": genuine().replace("@", "\r\nX-Evil: 1@"),
    "NUL injected": genuine().replace("@", "\x00@"),
    "two at signs": genuine().replace("@", "@@"),
    "non-ASCII look-alike": genuine().replace("bounces", "b\u043eunces"),  # Cyrillic o
}


@pytest.mark.parametrize("address", ALTERED.values(), ids=ALTERED.keys())
def test_altered_return_paths_are_refused(address: str) -> None:
    assert read_return_path(address, SECRET, DOMAIN) is None


MALFORMED = ["", " ", "@", "bounces", "bounces+@", f"@{DOMAIN}", "x" * 100_000, "<>", "a@b@c"]


@pytest.mark.parametrize("address", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_addresses_read_as_none(address: str) -> None:
    assert read_return_path(address, SECRET, DOMAIN) is None


def test_oversized_local_part_is_refused_before_it_is_read() -> None:
    delivery, signature = token_of(genuine())
    padded = f"bounces+{delivery}-{signature}{'a' * 60}@{DOMAIN}"
    assert read_return_path(padded, SECRET, DOMAIN) is None


def test_forgeries_at_random_never_pass() -> None:
    rng = random.Random(20240514)
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    for _ in range(2000):
        delivery = rng.randrange(0, 10**9)
        signature = "".join(rng.choice(alphabet) for _ in range(16))
        assert read_return_path(f"bounces+{delivery}-{signature}@{DOMAIN}", SECRET, DOMAIN) is None


@pytest.mark.parametrize(
    "address",
    [
        genuine().upper(),
        genuine().replace("bounces+", "Bounces+"),
        genuine().replace(DOMAIN, "BOUNCES.Example.Com"),
        f"<{genuine()}>",
        f"  {genuine()}\r\n",
        genuine() + ".",
    ],
    ids=["upper-cased", "capitalised prefix", "domain case", "angle brackets", "whitespace", "dot"],
)
def test_case_and_wrapping_changes_still_read(address: str) -> None:
    # Case-changed tokens name the same delivery: the token is lowercase only, and a
    # relay that upper-cases local parts must not lose the bounce. The signature is
    # checked all the same, on the lowercase form.
    assert read_return_path(address, SECRET, DOMAIN) == 4711


@pytest.mark.parametrize(
    "address_domain",
    ["bounces.example.org", "example.com", "evil.bounces.example.com", "bounces.example.com.evil"],
)
def test_another_domain_reads_nothing(address_domain: str) -> None:
    address = genuine().replace(DOMAIN, address_domain)
    assert read_return_path(address, SECRET, DOMAIN) is None


def test_international_domains_compare_in_either_form() -> None:
    unicode_domain = "bounces.müller-bäckerei.example"
    ascii_domain = "bounces.xn--mller-bckerei-hfb76a.example"
    assert normalise_domain(unicode_domain) == ascii_domain
    address = make_return_path(5, SECRET, unicode_domain)
    assert address.endswith("@" + ascii_domain)
    assert read_return_path(address, SECRET, unicode_domain) == 5
    assert read_return_path(address, SECRET, ascii_domain.upper()) == 5
    unicode_address = address.replace(ascii_domain, unicode_domain)
    assert read_return_path(unicode_address, SECRET, ascii_domain) == 5


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("Bounces.Example.COM", "bounces.example.com"),
        (" bounces.example.com. ", "bounces.example.com"),
        ("b.example", "b.example"),
    ],
)
def test_domains_are_normalised(domain: str, expected: str) -> None:
    assert normalise_domain(domain) == expected
    assert make_return_path(1, SECRET, domain).endswith("@" + expected)


BAD_DOMAINS = [
    "",
    " ",
    ".",
    "localhost",
    "bounces@example.com",
    "bounces example.com",
    "-bounces.example.com",
    "bounces-.example.com",
    "bounces..example.com",
    "bounces_x.example.com",
    "a" * 64 + ".example.com",
    ("a" * 60 + ".") * 5 + "com",
    "[192.0.2.1]",
    "example.com\r\nRCPT TO:<x@y>",
]


@pytest.mark.parametrize("domain", BAD_DOMAINS, ids=range(len(BAD_DOMAINS)))
def test_invalid_domains_are_refused(domain: str) -> None:
    with pytest.raises(ValueError, match="domain"):
        make_return_path(1, SECRET, domain)
    with pytest.raises(ValueError, match="domain"):
        read_return_path(genuine(), SECRET, domain)


@pytest.mark.parametrize("domain", BAD_DOMAINS[1:], ids=range(1, len(BAD_DOMAINS)))
def test_an_address_at_an_invalid_domain_reads_as_none(domain: str) -> None:
    address = genuine().replace(DOMAIN, domain)
    assert read_return_path(address, SECRET, DOMAIN) is None


@pytest.mark.parametrize("delivery_id", [-1, MAX_DELIVERY_ID + 1])
def test_ids_out_of_range_are_refused(delivery_id: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        make_return_path(delivery_id, SECRET, DOMAIN)


@pytest.mark.parametrize("delivery_id", [True, 1.0, "1", None])
def test_ids_must_be_integers(delivery_id: Any) -> None:
    with pytest.raises(TypeError, match="integer"):
        make_return_path(delivery_id, SECRET, DOMAIN)


@pytest.mark.parametrize("secret", ["", b""])
def test_an_empty_secret_is_a_configuration_error(secret: str | bytes) -> None:
    with pytest.raises(ValueError, match="DISPATCHER_SECRET_KEY"):
        make_return_path(1, secret, DOMAIN)
    with pytest.raises(ValueError, match="DISPATCHER_SECRET_KEY"):
        read_return_path(genuine(), secret, DOMAIN)


def test_signatures_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(return_path.hmac, "compare_digest", spy)
    assert read_return_path(genuine(), SECRET, DOMAIN) == 4711
    assert read_return_path(forged_signatures()[0], SECRET, DOMAIN) is None
    assert len(calls) == 2
