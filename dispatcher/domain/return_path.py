"""Signed return paths (VERP): ``bounces+TOKEN@DOMAIN`` names one delivery.

TOKEN is ``<delivery id>-<signature>``: the id in decimal and the first 80 bits
of HMAC-SHA256 over it, in lowercase base32. Only a holder of the secret key
can write a return path that reads back, so a bounce finds its delivery and
nobody can make the dispatcher suppress an address of their choosing.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re

PREFIX = "bounces+"
# A bigint id: the database's largest key fits, so no delivery lacks a return path.
MAX_DELIVERY_ID = 2**63 - 1
SIGNATURE_LENGTH = 16  # base32 characters, 80 bits
# RFC 5321 4.5.3.1: a local part of at most 64 octets, a domain of at most 255.
MAX_LOCAL_PART = 64
MAX_DOMAIN = 253
# Anything longer than a valid address is refused before it is looked at.
MAX_ADDRESS = MAX_LOCAL_PART + 1 + MAX_DOMAIN

# The MAC input starts with a purpose label, so that a signature made here can
# never be replayed against another use of the same secret key, and a new
# label (v2) can retire every return path ever handed out.
_PURPOSE = b"dispatcher return path v1\x00"

# Digits, '-' and base32's a-z2-7 are all RFC 5321 atext, so the local part is a
# plain dot-atom that needs no quoting. The id is canonical (no leading zero),
# so each delivery has exactly one token.
_LOCAL_PART = re.compile(
    rf"{re.escape(PREFIX)}(0|[1-9][0-9]{{0,18}})-([a-z2-7]{{{SIGNATURE_LENGTH}}})",
)
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def make_return_path(delivery_id: int, secret: str | bytes, domain: str) -> str:
    """The envelope sender for one delivery's e-mail: ``bounces+TOKEN@DOMAIN``.

    Raises ValueError for an id out of range, an empty secret or an invalid domain,
    TypeError for an id that is not an int.
    """
    if isinstance(delivery_id, bool) or not isinstance(delivery_id, int):
        raise TypeError(f"a delivery id is an integer, not {type(delivery_id).__name__}")
    if not 0 <= delivery_id <= MAX_DELIVERY_ID:
        raise ValueError(f"delivery id {delivery_id} is out of range (0 to {MAX_DELIVERY_ID})")
    local = f"{PREFIX}{delivery_id}-{_sign(delivery_id, _key(secret))}"
    # The longest id gives 8 + 19 + 1 + 16 = 44 octets; checked all the same, so
    # a change of layout cannot quietly produce addresses relays refuse.
    if len(local) > MAX_LOCAL_PART:  # pragma: no cover - guarded by the layout above
        raise ValueError(f"local part {local!r} exceeds {MAX_LOCAL_PART} octets")
    return f"{local}@{_normalised(domain) if isinstance(domain, str) else normalise_domain(domain)}"


def read_return_path(address: str, secret: str | bytes, domain: str) -> int | None:
    """The delivery id a return path names, or None unless it is genuine and for ``domain``.

    Tolerates surrounding whitespace, angle brackets and changes of case; raises
    ValueError only for an empty secret or an invalid ``domain`` (configuration).
    """
    key = _key(secret)
    expected_domain = normalise_domain(domain)
    if not isinstance(address, str) or len(address) > MAX_ADDRESS + 4:
        return None
    address = address.strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1].strip()
    local, at, their_domain = address.rpartition("@")
    if not at or len(local) > MAX_LOCAL_PART:
        return None
    try:
        if normalise_domain(their_domain) != expected_domain:
            return None
    except ValueError:
        return None
    # The token is written in lowercase only, so case-folding relays cannot
    # damage it; an upper-cased copy is read as the same token. That costs no
    # strength: the alphabet has no letters that differ only by case.
    match = _LOCAL_PART.fullmatch(local.lower())
    if match is None:
        return None
    delivery_id = int(match[1])
    if delivery_id > MAX_DELIVERY_ID:
        return None
    # Compared in constant time, so the response time does not tell a forger how
    # many leading characters of a guessed signature were right.
    if not hmac.compare_digest(match[2], _sign(delivery_id, key)):
        return None
    return delivery_id


def normalise_domain(domain: str) -> str:
    """The bounce domain in lowercase ASCII (IDNA), without a trailing dot.

    Raises ValueError for anything that is not a plain host name.
    """
    if not isinstance(domain, str):
        raise TypeError(f"a bounce domain is text, not {type(domain).__name__}")
    name = domain.strip().rstrip(".")
    if not name or len(name) > MAX_DOMAIN * 4:
        raise ValueError("the bounce domain is empty or far too long")
    try:
        # Python's codec implements IDNA 2003, which maps case and the full-width
        # dot for us; labels already in ASCII pass through it unchanged.
        ascii_name = name.encode("idna").decode("ascii").lower()
    except UnicodeError as error:
        raise ValueError(f"the bounce domain {domain!r} is not a valid host name") from error
    labels = ascii_name.split(".")
    if (
        len(ascii_name) > MAX_DOMAIN
        or len(labels) < 2
        or not all(_LABEL.fullmatch(label) for label in labels)
    ):
        raise ValueError(
            f"the bounce domain {domain!r} is not a host name such as bounces.example.com"
        )
    return ascii_name


# Every e-mail's return path names the same domain or two; IDNA encoding it
# each time had cost a third of making the address.
_normalised = functools.lru_cache(maxsize=16)(normalise_domain)


def _key(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    if not key:
        raise ValueError("return paths need a secret key (DISPATCHER_SECRET_KEY); it is empty")
    return key


def _sign(delivery_id: int, key: bytes) -> str:
    digest = hmac.new(key, _PURPOSE + str(delivery_id).encode("ascii"), hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:SIGNATURE_LENGTH]
