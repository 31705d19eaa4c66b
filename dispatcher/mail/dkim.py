"""DKIM signing (CONTRACT §9): keys from ``DISPATCHER_DKIM_KEYS_DIR``, signatures by dkimpy.

The directory holds one folder per sending domain and in it one PEM file per
selector::

    $DISPATCHER_DKIM_KEYS_DIR/example.com/2025a.key
    $DISPATCHER_DKIM_KEYS_DIR/example.com/2026a.key

Keys are RSA of at least 2048 bits or Ed25519, unencrypted, PKCS#1 ("BEGIN RSA
PRIVATE KEY") or PKCS#8 ("BEGIN PRIVATE KEY"), as ``openssl genpkey`` writes them.
Folder names are domains in any case, Unicode or ASCII (IDNA) form; hidden
entries (``.git``, Kubernetes' ``..data``) and files not ending in ``.key`` are
ignored. Every key is loaded, checked and test-signed once per process
(``process_keys()``); a key that is unreadable, too small or not a key stops the
process with one line per file that says how to fix it, rather than sending
unsigned mail that the domain's DMARC policy may reject.

Which selector signs: when a domain has several, the one whose name sorts last
(numbers compared as numbers, so ``s10`` comes after ``s9``) signs; name
selectors by date (``2025a``, ``202611``) and the newest one is used. To rotate,
publish the new selector's TXT record first (``DkimKeys.load(staging_dir)
.dns_record(domain)`` computes it from a folder outside the live one), wait for
DNS, then move the file in and restart or reload the workers; keep the old
record published for a few days so mail already underway still verifies.

How a message is signed: dkimpy parses the header, canonicalises (relaxed/
relaxed), picks the header fields and folds the DKIM-Signature field exactly as
its ``DKIM.sign`` does; the private-key operation is OpenSSL's, through the
``cryptography`` package, with the key parsed once when it is loaded. (dkimpy's
own ``DKIM.sign`` parses the PEM file in pure Python and computes RSA with
Python integers on every call: about 7 ms per e-mail for RSA-2048.) Every
signature is the one dkimpy would make, and verifies with ``dkim.verify``.

Signing cost (``python -m bench.dkim_cost``, CPU per 5 KB e-mail, one core
of the development machine): RSA-2048 about 0.43 ms, of which 0.3 ms is
OpenSSL's RSA private-key operation itself and the rest dkimpy's parsing,
canonicalisation and folding; Ed25519 about 0.14 ms. An RSA-4096 key costs
about 2.6 ms per e-mail; 2048 bits is what receivers expect.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias

import dkim  # type: ignore[import-untyped]  # dkimpy ships no type information
import idna
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, utils
from dkim import canonicalization as dkim_canonicalization

from dispatcher.errors import DispatcherError

KEYS_DIR_VARIABLE = "DISPATCHER_DKIM_KEYS_DIR"
MIN_RSA_BITS = 2048
KEY_SUFFIX = ".key"

# Always in h=, present or not: signing an absent field keeps anyone en route
# from adding it without breaking the signature (RFC 6376 §5.4).
SIGNED_HEADERS: tuple[str, ...] = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
)
# Signed when the message has them.
SIGNED_IF_PRESENT: tuple[str, ...] = ("Reply-To", "Cc")

Algorithm = Literal["rsa", "ed25519"]
_PrivateKey: TypeAlias = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

_OID_RSA = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1 rsaEncryption
_OID_ED25519 = bytes.fromhex("2b6570")  # 1.3.101.112
_OTHER_OIDS = {
    bytes.fromhex("2b6571"): "an Ed448 key",
    bytes.fromhex("2a8648ce3d0201"): "an elliptic-curve (ECDSA) key",
    bytes.fromhex("2a864886f70d01010a"): "an RSA-PSS key",
    bytes.fromhex("2a8648ce380401"): "a DSA key",
}
_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL | re.IGNORECASE
)
_SELECTOR = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_ASCII_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_LINE_END = re.compile(rb"\r?\n")
_DIGITS = re.compile(r"(\d+)")
_GENERATE = (
    "create one with: openssl genpkey -algorithm ed25519 -out FILE "
    "(or -algorithm RSA -pkeyopt rsa_keygen_bits:2048)"
)


class DkimKeyError(DispatcherError):
    """The keys folder holds something that cannot sign; ``problems`` has one line each."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        first = self.problems[0] if self.problems else "no details"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(first + more)


class DkimSigningError(DispatcherError):
    """dkimpy cannot parse the message to sign (a malformed header; the keys were checked)."""


class _KeyProblem(ValueError):
    """Why one file is not a usable key; the loader adds the file's name."""


def normalize_domain(domain: str) -> str:
    """A domain's ASCII (IDNA 2008) form in lower case, without a trailing dot.

    Raises ``ValueError`` for something that is not a host name.
    """
    name = domain.strip().rstrip(".")
    if not name:
        raise ValueError("an empty domain")
    if name.isascii():
        name = name.lower()
        labels = name.split(".")
        if len(name) <= 253 and all(_ASCII_LABEL.fullmatch(label) for label in labels):
            return name
        raise ValueError(f"{domain!r} is not a domain name")
    try:
        return idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"{domain!r} is not a domain name ({exc})") from None


def _natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key comparing runs of digits as numbers: s9 < s10."""
    return tuple(
        (1, int(part)) if part.isdigit() else (0, part.lower())
        for part in _DIGITS.split(name)
        if part
    )


# --- a little DER, enough for PKCS#8 and SubjectPublicKeyInfo ---------------


def _der_read(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """One TLV at ``offset``: its tag, its contents and the offset after it."""
    if offset + 2 > len(data):
        raise _KeyProblem("the key's DER data is truncated")
    tag = data[offset]
    length = data[offset + 1]
    offset += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or offset + count > len(data):
            raise _KeyProblem("the key's DER data has an invalid length")
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    end = offset + length
    if end > len(data):
        raise _KeyProblem("the key's DER data is truncated")
    return tag, data[offset:end], end


def _der_children(data: bytes) -> list[tuple[int, bytes]]:
    children = []
    offset = 0
    while offset < len(data):
        tag, contents, offset = _der_read(data, offset)
        children.append((tag, contents))
    return children


# --- keys --------------------------------------------------------------------


@dataclass(frozen=True)
class DkimKey:
    """One selector's key for one domain, checked and ready for dkimpy."""

    domain: str  # ASCII (IDNA) form, lower case
    selector: str
    algorithm: Algorithm
    bits: int
    path: Path
    public_key: str  # base64, the p= tag
    _private_key: _PrivateKey = field(repr=False, compare=False)  # parsed once, by OpenSSL

    @property
    def signature_algorithm(self) -> bytes:
        return b"rsa-sha256" if self.algorithm == "rsa" else b"ed25519-sha256"

    def txt_value(self) -> str:
        """The TXT record's text, unsplit."""
        return f"v=DKIM1; k={self.algorithm}; p={self.public_key}"

    def dns_record(self) -> str:
        """A zone-file line to publish; strings longer than 255 characters are split."""
        value = self.txt_value()
        chunks = [value[i : i + 255] for i in range(0, len(value), 255)]
        quoted = " ".join(f'"{chunk}"' for chunk in chunks)
        return f"{self.selector}._domainkey.{self.domain}. IN TXT {quoted}"


def _parse_key(data: bytes) -> tuple[Algorithm, int, str, _PrivateKey]:
    """Algorithm, bits, public key (base64) and the private key from a PEM file."""
    blocks = [(m.group(1).decode().upper(), m.group(2)) for m in _PEM_BLOCK.finditer(data)]
    if not blocks:
        raise _KeyProblem(f"it is not a PEM private key; {_GENERATE}")
    label, body = next(
        ((lbl, bdy) for lbl, bdy in blocks if lbl.endswith("PRIVATE KEY")), blocks[0]
    )
    if label == "ENCRYPTED PRIVATE KEY" or b"Proc-Type:" in body:
        raise _KeyProblem(
            "the key is encrypted with a passphrase; store it unencrypted (readable by the "
            "dispatcher only): openssl pkey -in FILE -out FILE.plain"
        )
    if label in {"EC PRIVATE KEY", "DSA PRIVATE KEY", "OPENSSH PRIVATE KEY"}:
        raise _KeyProblem(
            f"a {label.removesuffix(' PRIVATE KEY')} key cannot sign DKIM; use RSA or Ed25519: "
            + _GENERATE
        )
    if not label.endswith("PRIVATE KEY"):
        raise _KeyProblem(f"the file holds a {label}, not a private key; {_GENERATE}")
    try:
        der = base64.b64decode(b"".join(body.split()), validate=True)
    except ValueError:
        raise _KeyProblem("the PEM block is not valid base64; the file is damaged") from None
    if label == "RSA PRIVATE KEY":
        return _rsa_key(der)
    if label != "PRIVATE KEY":
        raise _KeyProblem(f"unknown PEM type {label!r}; {_GENERATE}")
    # PKCS#8: SEQUENCE { version, AlgorithmIdentifier { OID, params }, OCTET STRING key }
    tag, info, _ = _der_read(der, 0)
    fields = _der_children(info) if tag == 0x30 else []
    if len(fields) < 3 or fields[1][0] != 0x30 or fields[2][0] != 0x04:
        raise _KeyProblem("the PKCS#8 structure is damaged; export the key again")
    oid_tag, oid, _ = _der_read(fields[1][1], 0)
    if oid_tag != 0x06:
        raise _KeyProblem("the PKCS#8 structure is damaged; export the key again")
    if oid == _OID_RSA:
        return _rsa_key(fields[2][1])
    if oid == _OID_ED25519:
        return _ed25519_key(fields[2][1])
    kind = _OTHER_OIDS.get(oid, "a key of an unknown kind")
    raise _KeyProblem(f"the file holds {kind}, which DKIM cannot use; {_GENERATE}")


def _rsa_key(pkcs1: bytes) -> tuple[Algorithm, int, str, _PrivateKey]:
    try:
        # OpenSSL checks the key as it loads it (p * q = n and the rest).
        key = serialization.load_der_private_key(pkcs1, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise _KeyProblem(
            "the RSA key cannot be read or is inconsistent (damaged); export it again or "
            "create a new one"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _KeyProblem("the file is labelled RSA but holds another kind of key; export it again")
    bits = key.key_size
    if bits < MIN_RSA_BITS:
        raise _KeyProblem(
            f"the RSA key has {bits} bits, fewer than the {MIN_RSA_BITS} receivers require; "
            "replace it: openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out FILE"
        )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "rsa", bits, base64.b64encode(public).decode("ascii"), key


def _ed25519_key(wrapped: bytes) -> tuple[Algorithm, int, str, _PrivateKey]:
    tag, seed, _ = _der_read(wrapped, 0)
    if tag != 0x04 or len(seed) != 32:
        raise _KeyProblem("the Ed25519 key is damaged; create a new one")
    key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes_raw()
    return "ed25519", 256, base64.b64encode(public).decode("ascii"), key


def load_key(path: Path, domain: str, selector: str) -> DkimKey:
    """One key file, parsed and test-signed; ``_KeyProblem`` says what is wrong."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _KeyProblem(
            f"cannot read it ({exc.strerror or exc}); make it readable by the dispatcher's user"
        ) from None
    algorithm, bits, public, private_key = _parse_key(data)
    key = DkimKey(domain, selector, algorithm, bits, path, public, private_key)
    _self_test(key)
    return key


_PROBE_MESSAGE = b"From: probe@invalid\r\nSubject: probe\r\n\r\nprobe\r\n"


def _self_test(key: DkimKey) -> None:
    """Sign a tiny message the way ``DkimKeys.sign`` does; dkimpy must verify it."""
    record = key.txt_value().encode("ascii")
    try:
        header = _signature_header(_PROBE_MESSAGE, key, b"\r\n")
        valid = dkim.verify(header + _PROBE_MESSAGE, dnsfunc=lambda *_a, **_k: record)
    except dkim.DKIMException as exc:
        raise _KeyProblem(
            f"dkimpy cannot check a signature made with it ({exc}); create a new key"
        ) from None
    if not valid:
        raise _KeyProblem("a test signature did not verify; the key is damaged, create a new one")


# --- signing -------------------------------------------------------------------
#
# dkimpy's DKIM.sign and DomainSigner.gen_header, step by step, with two
# differences: the key comes parsed, and the private-key operation is OpenSSL's.
# Parsing and canonicalisation skip work that cannot change the result (see
# _split and _relaxed_body); tests/unit/test_dkim.py compares both with dkimpy's
# functions and verifies every signature with dkim.verify.

_SIGNATURE_FIELD = b"DKIM-Signature"
_RELAXED = dkim_canonicalization.CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
_ALWAYS_SIGNED = tuple(name.lower().encode("ascii") for name in SIGNED_HEADERS)
_SIGNED_WHEN_PRESENT = tuple(name.lower().encode("ascii") for name in SIGNED_IF_PRESENT)
_PKCS1 = padding.PKCS1v15()
_SHA256_DIGEST = utils.Prehashed(hashes.SHA256())

_Header: TypeAlias = list[bytes]  # dkimpy's [name, value] with the value's CRLF


def _split(message: bytes) -> tuple[list[_Header], bytes]:
    """``dkim.rfc822_parse(message)``: the header fields and the body with CRLF.

    dkimpy splits the whole message into lines and joins the body's lines again;
    here only the header is split, and the body is copied once, rewritten only
    when it has a line ending other than CRLF.
    """
    match = _HEADER_END.search(message)
    if match is None or message[:1] in (b"\r", b"\n"):
        headers, body = dkim.rfc822_parse(message)  # no header or no body: as dkimpy does
    else:
        headers, _ = dkim.rfc822_parse(message[: match.start()])
        body = message[match.end() :]
        if body.count(b"\n") != body.count(b"\r\n"):
            body = _LINE_END.sub(b"\r\n", body)
    return list(headers), bytes(body)


def _relaxed_body(body: bytes) -> bytes:
    """dkimpy's relaxed body canonicalisation (RFC 6376 §3.4.4).

    Its first two steps (strip trailing whitespace, compress runs) are regular
    expressions over the whole body and change nothing in a body without a tab,
    a double space or a space before CRLF, which is what ours look like
    (quoted-printable); such a body goes straight to the last steps.
    """
    if b"\t" in body or b"  " in body or b" \r\n" in body:
        canonical = dkim_canonicalization.Relaxed.canonicalize_body(body)
    else:
        canonical = dkim_canonicalization.correct_empty_body(
            dkim_canonicalization.strip_trailing_lines(body)
        )
    return bytes(canonical)


def _signed_headers(headers: list[_Header]) -> list[bytes]:
    """The h= list: the contract's fields, and Reply-To and Cc when the message has them."""
    present = {bytes(name).lower() for name, _ in headers}
    return [*_ALWAYS_SIGNED, *(name for name in _SIGNED_WHEN_PRESENT if name in present)]


def _sign_digest(key: _PrivateKey, digest: bytes) -> bytes:
    """rsa-sha256: RSASSA-PKCS1-v1_5 over the SHA-256 digest; ed25519-sha256: Ed25519 of it."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(digest, _PKCS1, _SHA256_DIGEST)
    return key.sign(digest)


def _fold(value: bytes, linesep: bytes) -> bytes:
    return bytes(dkim.fold(value, namelen=len(_SIGNATURE_FIELD), linesep=linesep))


def _signature_header(message: bytes, key: DkimKey, linesep: bytes) -> bytes:
    """The DKIM-Signature field for ``message``, ending with ``linesep``.

    Raises ``dkim.DKIMException`` for a message dkimpy cannot parse.
    """
    headers, body = _split(message)
    include = _signed_headers(headers)
    domain = key.domain.encode("ascii")
    fields = [
        (b"v", b"1"),
        (b"a", key.signature_algorithm),
        (b"c", b"relaxed/relaxed"),
        (b"d", domain),
        (b"i", b"@" + domain),
        (b"q", b"dns/txt"),
        (b"s", key.selector.encode("ascii")),
        (b"t", str(int(time.time())).encode("ascii")),
        (b"h", b" : ".join(include)),
        (b"bh", base64.b64encode(hashlib.sha256(_relaxed_body(body)).digest())),
        # Sixty characters put b= on a line of its own, so that filling it in
        # later does not refold the tags before it.
        (b"b", b"0" * 60),
    ]
    # What is hashed (dkimpy's hash_headers): the chosen fields, then this one
    # folded with CRLF and b= empty, without its line end; all canonicalised.
    # dkimpy canonicalises every field and then chooses; choosing first (by the
    # lower-case name, as select_headers compares) spares the fields not signed.
    unsigned = dkim.RE_BTAG.sub(rb"\1", _fold(b"; ".join(b"=".join(f) for f in fields), b"\r\n"))
    chosen = dkim.select_headers(headers, include)
    *canonical, (own_name, own_value) = _RELAXED.canonicalize_headers(
        [*chosen, (_SIGNATURE_FIELD, b" " + unsigned)]
    )
    hasher = hashlib.sha256()
    for name, value in canonical:
        hasher.update(name + b":" + value)
    hasher.update(own_name + b":" + own_value.rstrip())
    signature = _sign_digest(key._private_key, hasher.digest())
    fields[-1] = (b"b", base64.b64encode(signature))
    header = b"; ".join(b"=".join(f) for f in fields) + linesep
    return _SIGNATURE_FIELD + b": " + _fold(header, linesep)


def _selector(path: Path, loaded: list[DkimKey]) -> str:
    """The selector a file names, in lower case (DNS ignores case)."""
    selector = path.name.removesuffix(KEY_SUFFIX)
    if not _SELECTOR.fullmatch(selector):
        raise _KeyProblem(
            f"{selector!r} is not a usable DKIM selector; rename the file to letters, digits "
            "and '-' (at most 63) followed by .key"
        )
    selector = selector.lower()
    for key in loaded:
        if key.path.parent == path.parent and key.selector == selector:
            raise _KeyProblem(
                f"the same selector as {key.path.name} (DNS ignores case); remove one of them"
            )
    return selector


class DkimKeys:
    """Every domain's keys; ``sign`` picks the active selector of the From domain."""

    def __init__(self, keys: Iterable[DkimKey] = ()) -> None:
        by_domain: dict[str, list[DkimKey]] = {}
        for key in keys:
            by_domain.setdefault(key.domain, []).append(key)
        self._keys: Mapping[str, tuple[DkimKey, ...]] = {
            domain: tuple(sorted(found, key=lambda k: _natural_key(k.selector)))
            for domain, found in by_domain.items()
        }

    @classmethod
    def load(cls, directory: Path | str | None) -> DkimKeys:
        """Every key under ``directory``; none when it is ``None`` or empty.

        Raises ``DkimKeyError`` listing every file that cannot sign.
        """
        if directory is None or not str(directory).strip():
            return cls()
        root = Path(directory)
        if not root.is_dir():
            raise DkimKeyError(
                [
                    f"{KEYS_DIR_VARIABLE} names {root}, which is not a folder; create it "
                    "(one folder per domain, one SELECTOR.key file each) or unset the variable"
                ]
            )
        keys: list[DkimKey] = []
        problems: list[str] = []
        seen: dict[str, Path] = {}
        for folder in sorted(root.iterdir()):
            if folder.name.startswith(".") or not folder.is_dir():
                continue
            try:
                domain = normalize_domain(folder.name)
            except ValueError as exc:
                problems.append(
                    f"{folder}: the folder's name must be the sending domain, but {exc}; rename it"
                )
                continue
            if domain in seen:
                problems.append(
                    f"{folder}: the same domain as {seen[domain]} ({domain}); merge the two folders"
                )
                continue
            seen[domain] = folder
            for path in sorted(folder.iterdir()):
                if path.name.startswith(".") or path.suffix != KEY_SUFFIX:
                    continue
                try:
                    keys.append(load_key(path, domain, _selector(path, keys)))
                except _KeyProblem as exc:
                    problems.append(f"{path}: {exc}")
        if problems:
            raise DkimKeyError(problems)
        return cls(keys)

    def __len__(self) -> int:
        return sum(len(found) for found in self._keys.values())

    def domains(self) -> tuple[str, ...]:
        return tuple(sorted(self._keys))

    def keys_for(self, domain: str) -> tuple[DkimKey, ...]:
        """All of a domain's keys, the signing one last (an address's domain is taken too)."""
        domain = domain.rpartition("@")[2]
        try:
            return self._keys.get(normalize_domain(domain), ())
        except ValueError:
            return ()

    def key_for(self, domain: str) -> DkimKey | None:
        """The key that signs for ``domain``: the selector whose name sorts last."""
        found = self.keys_for(domain)
        return found[-1] if found else None

    def sign(self, message_bytes: bytes, from_domain: str) -> bytes:
        """The message with a DKIM-Signature prepended, or unchanged without a key."""
        key = self.key_for(from_domain)
        if key is None:
            return message_bytes
        linesep = b"\r\n" if b"\r\n" in message_bytes else b"\n"
        try:
            header = _signature_header(message_bytes, key, linesep)
        except dkim.DKIMException as exc:
            raise DkimSigningError(
                f"could not DKIM-sign an e-mail from {key.domain} with {key.path.name}: {exc}"
            ) from exc
        return header + message_bytes

    def dns_record(self, domain: str) -> list[str]:
        """The TXT records to publish for ``domain``, one per selector; none without keys."""
        return [key.dns_record() for key in self.keys_for(domain)]


@functools.cache
def process_keys() -> DkimKeys:
    """This process's keys, loaded once from ``DISPATCHER_DKIM_KEYS_DIR``.

    Call it when a process starts, so that a bad key stops it there with a
    clear message instead of failing its first e-mail.
    """
    return DkimKeys.load(os.environ.get(KEYS_DIR_VARIABLE) or None)


def sign(message_bytes: bytes, from_domain: str) -> bytes:
    """Sign with this process's keys (see ``DkimKeys.sign``)."""
    return process_keys().sign(message_bytes, from_domain)


def dns_record(domain: str) -> list[str]:
    """This process's TXT records for ``domain`` (see ``DkimKeys.dns_record``)."""
    return process_keys().dns_record(domain)
