"""DKIM keys and signatures (CONTRACT §9): keys made here with openssl, checked by dkimpy."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from email.policy import compat32
from pathlib import Path

import dkim  # type: ignore[import-untyped]
import pytest

from dispatcher.domain.addresses import Mailbox
from dispatcher.errors import DispatcherError
from dispatcher.mail import dkim as dkim_keys
from dispatcher.mail.dkim import DkimKeyError, DkimKeys, normalize_domain
from dispatcher.mail.render import RenderedEmail, build_message

_WIRE = compat32.clone(linesep="\r\n")
_RECORD = re.compile(r'^(\S+)\. IN TXT ((?:"[^"]{1,255}" ?)+)$')


def openssl(*args: str) -> None:
    assert shutil.which("openssl"), "the tests make their keys with the openssl command"
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pems(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Private keys of every kind the loader meets, made fresh for this run."""
    d = tmp_path_factory.mktemp("pems")
    openssl("genpkey", "-algorithm", "ed25519", "-out", str(d / "ed25519"))
    openssl("genpkey", "-algorithm", "ed25519", "-out", str(d / "ed25519b"))
    openssl(
        "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(d / "rsa")
    )
    openssl("genrsa", "-traditional", "-out", str(d / "rsa_pkcs1"), "2048")
    openssl(
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:1024",
        "-out",
        str(d / "rsa1024"),
    )
    openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(d / "ec")
    )
    openssl("pkey", "-in", str(d / "ed25519"), "-pubout", "-out", str(d / "public"))
    openssl(
        "pkey",
        "-in",
        str(d / "ed25519"),
        "-aes256",
        "-passout",
        "pass:x",
        "-out",
        str(d / "encrypted"),
    )
    return {path.name: path.read_bytes() for path in d.iterdir()}


def put(root: Path, domain: str, selector: str, pem: bytes) -> Path:
    path = root / domain / f"{selector}.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem)
    return path


def message(
    *, reply_to: str | None = None, cc: str | None = None, sender: str = "billing@example.com"
) -> bytes:
    """A typical e-mail of ours: multipart/alternative, quoted-printable, CRLF."""
    email = RenderedEmail(
        subject="Ihre Rechnung ist da",
        text="Guten Tag,\n\nIhre Rechnung über 12,50 € liegt im Portal bereit.\n" * 20,
        html="<p>Guten Tag,</p><p>Ihre Rechnung über 12,50 € liegt im Portal bereit.</p>" * 20,
        locale="de",
    )
    built = build_message(
        email,
        Mailbox(sender, "Portal"),
        Mailbox("kunde@example.org", "Erika Muster"),
        "<abc@example.com>",
        datetime(2025, 3, 1, 8, 0, tzinfo=UTC),
    )
    if reply_to:
        built["Reply-To"] = reply_to
    if cc:
        built["Cc"] = cc
    return built.as_bytes(policy=_WIRE)


def resolver(keys: DkimKeys, *domains: str) -> Callable[..., bytes | None]:
    """A dnsfunc for dkim.verify answering from dns_record(), as DNS would."""
    zone: dict[bytes, bytes] = {}
    for domain in domains:
        for record in keys.dns_record(domain):
            match = _RECORD.match(record)
            assert match, record
            strings = re.findall(r'"([^"]*)"', match.group(2))
            zone[match.group(1).encode() + b"."] = "".join(strings).encode()

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return zone.get(name.lower())

    return dnsfunc


def tags(signed: bytes) -> dict[str, str]:
    header = signed.split(b"\r\n\r\n")[0].decode()
    value = re.match(r"DKIM-Signature: (.*?)\r\n(?=\S)", header, re.DOTALL)
    assert value, header
    unfolded = re.sub(r"\s+", "", value.group(1))
    return dict(item.split("=", 1) for item in unfolded.split(";") if item)


@pytest.mark.parametrize("kind", ["ed25519", "rsa", "rsa_pkcs1"])
def test_a_signed_email_verifies_against_the_published_record(
    tmp_path: Path, pems: dict[str, bytes], kind: str
) -> None:
    put(tmp_path, "example.com", "portal", pems[kind])
    keys = DkimKeys.load(tmp_path)
    original = message()

    signed = keys.sign(original, "example.com")

    assert signed.startswith(b"DKIM-Signature: ")
    assert signed.endswith(original)
    assert dkim.verify(signed, dnsfunc=resolver(keys, "example.com"))
    found = tags(signed)
    algorithm = "ed25519-sha256" if kind == "ed25519" else "rsa-sha256"
    assert (found["a"], found["c"], found["d"], found["s"]) == (
        algorithm,
        "relaxed/relaxed",
        "example.com",
        "portal",
    )
    assert keys.key_for("example.com").bits == (256 if kind == "ed25519" else 2048)  # type: ignore[union-attr]


def test_the_contract_headers_are_signed_and_reply_to_and_cc_only_when_present(
    tmp_path: Path, pems: dict[str, bytes]
) -> None:
    put(tmp_path, "example.com", "portal", pems["ed25519"])
    keys = DkimKeys.load(tmp_path)
    base = {"from", "to", "subject", "date", "message-id", "mime-version", "content-type"}
    base.add("content-transfer-encoding")

    plain = tags(keys.sign(message(), "example.com"))["h"].split(":")
    both = keys.sign(
        message(reply_to="hilfe@example.com", cc="buchhaltung@example.org"), "example.com"
    )

    assert set(plain) == base
    assert set(tags(both)["h"].split(":")) == base | {"reply-to", "cc"}
    assert dkim.verify(both, dnsfunc=resolver(keys, "example.com"))


def test_a_changed_header_or_body_breaks_the_signature_but_whitespace_does_not(
    tmp_path: Path, pems: dict[str, bytes]
) -> None:
    put(tmp_path, "example.com", "portal", pems["rsa"])
    keys = DkimKeys.load(tmp_path)
    dns = resolver(keys, "example.com")
    signed = keys.sign(message(), "example.com")

    assert not dkim.verify(
        signed.replace(b"Ihre Rechnung ist da", b"Ihre Mahnung ist da"), dnsfunc=dns
    )
    assert not dkim.verify(signed.replace(b"12,50", b"99,50", 1), dnsfunc=dns)
    # relaxed/relaxed: a relay refolding a header or padding lines changes nothing.
    assert dkim.verify(signed.replace(b"Subject: ", b"Subject:    "), dnsfunc=dns)
    assert dkim.verify(signed.replace(b"Guten Tag,\r\n", b"Guten Tag,  \r\n"), dnsfunc=dns)


def test_a_message_with_lf_line_ends_is_signed_with_lf(
    tmp_path: Path, pems: dict[str, bytes]
) -> None:
    put(tmp_path, "example.com", "portal", pems["ed25519"])
    keys = DkimKeys.load(tmp_path)
    original = message().replace(b"\r\n", b"\n")

    signed = keys.sign(original, "example.com")

    assert b"\r" not in signed
    assert dkim.verify(signed, dnsfunc=resolver(keys, "example.com"))


def test_without_a_key_for_the_from_domain_the_message_is_unchanged(
    tmp_path: Path, pems: dict[str, bytes]
) -> None:
    put(tmp_path, "example.com", "portal", pems["ed25519"])
    keys = DkimKeys.load(tmp_path)
    original = message(sender="billing@other.example")

    assert keys.sign(original, "other.example") is original
    assert keys.sign(original, "sub.example.com") is original
    assert keys.sign(original, "not a domain") is original
    assert keys.dns_record("other.example") == []
    assert DkimKeys.load(None).sign(original, "example.com") is original


def test_domains_are_matched_in_any_case_and_idna_form(
    tmp_path: Path, pems: dict[str, bytes]
) -> None:
    put(tmp_path, "Bücher.DE", "portal", pems["ed25519"])
    put(tmp_path, "EXAMPLE.com.", "portal", pems["ed25519b"])
    keys = DkimKeys.load(tmp_path)

    assert keys.domains() == ("example.com", "xn--bcher-kva.de")
    for name in ("xn--bcher-kva.de", "bücher.de", "BÜCHER.DE", "xn--BCHER-kva.de."):
        signed = keys.sign(message(sender="post@xn--bcher-kva.de"), name)
        assert tags(signed)["d"] == "xn--bcher-kva.de"
        assert dkim.verify(signed, dnsfunc=resolver(keys, "bücher.de"))
    assert keys.key_for("Example.COM") is not None
    assert keys.dns_record("bücher.de")[0].startswith("portal._domainkey.xn--bcher-kva.de. IN TXT ")


def test_with_several_selectors_the_name_sorting_last_signs_and_all_are_published(
    tmp_path: Path, pems: dict[str, bytes]
) -> None:
    put(tmp_path, "example.com", "s9", pems["ed25519"])
    put(tmp_path, "example.com", "s10", pems["rsa"])
    put(tmp_path, "example.com", "s2", pems["ed25519b"])
    (tmp_path / "example.com" / "s99.pub").write_text("ignored: not a .key file")
    (tmp_path / "example.com" / ".s100.key").write_text("ignored: hidden")
    (tmp_path / "..data").mkdir()  # Kubernetes' secret volumes have these
    keys = DkimKeys.load(tmp_path)

    assert [k.selector for k in keys.keys_for("example.com")] == ["s2", "s9", "s10"]
    assert tags(keys.sign(message(), "example.com"))["s"] == "s10"
    records = keys.dns_record("example.com")
    assert [r.split(".", 1)[0] for r in records] == ["s2", "s9", "s10"]
    assert len(keys) == 3


def test_dns_records_split_long_strings_at_255_characters(
    tmp_path: Path, pems: dict[str, bytes]
) -> None:
    put(tmp_path, "example.com", "rsa", pems["rsa"])
    put(tmp_path, "example.com", "ed", pems["ed25519"])
    keys = DkimKeys.load(tmp_path)

    ed, rsa = keys.dns_record("example.com")

    assert re.fullmatch(
        r'ed\._domainkey\.example\.com\. IN TXT "v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}="', ed
    )
    match = _RECORD.match(rsa)
    assert match
    strings = re.findall(r'"([^"]*)"', match.group(2))
    assert len(strings) == 2
    assert len(strings[0]) == 255
    assert "".join(strings).startswith("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A")


def test_a_bad_key_is_refused_naming_the_file_and_the_fix(
    tmp_path: Path, pems: dict[str, bytes]
) -> None:
    small = put(tmp_path, "example.com", "small", pems["rsa1024"])

    with pytest.raises(DkimKeyError) as caught:
        DkimKeys.load(tmp_path)

    assert isinstance(caught.value, DispatcherError)
    assert caught.value.problems == (
        f"{small}: the RSA key has 1024 bits, fewer than the 2048 receivers require; replace it: "
        "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out FILE",
    )
    assert str(caught.value) == caught.value.problems[0]


def test_every_bad_file_is_reported_on_one_line_each(
    tmp_path: Path, pems: dict[str, bytes]
) -> None:
    put(tmp_path, "example.com", "good", pems["ed25519"])
    put(tmp_path, "example.com", "small", pems["rsa1024"])
    put(tmp_path, "example.com", "ec", pems["ec"])
    put(tmp_path, "example.com", "public", pems["public"])
    put(tmp_path, "example.com", "locked", pems["encrypted"])
    put(tmp_path, "example.com", "text", b"not a key at all\n")
    put(tmp_path, "example.com", "damaged", pems["ed25519"].replace(b"MC4CAQAw", b"MC4CAQ!w"))
    put(tmp_path, "example.com", "bad_selector", pems["ed25519"])
    (tmp_path / "example.com" / "folder.key").mkdir()
    put(tmp_path, "not_a_domain!", "s1", pems["ed25519"])

    with pytest.raises(DkimKeyError) as caught:
        DkimKeys.load(tmp_path)

    problems = caught.value.problems
    by_file = {p.split(": ", 1)[0].rsplit("/", 1)[-1]: p.split(": ", 1)[1] for p in problems}
    assert sorted(by_file) == sorted(
        [
            "bad_selector.key", "damaged.key", "ec.key", "folder.key", "locked.key",
            "not_a_domain!", "public.key", "small.key", "text.key",
        ]
    )  # fmt: skip
    assert all("\n" not in p for p in problems)
    assert "elliptic-curve (ECDSA) key, which DKIM cannot use" in by_file["ec.key"]
    assert "holds a PUBLIC KEY, not a private key" in by_file["public.key"]
    assert "encrypted with a passphrase" in by_file["locked.key"]
    assert "not a PEM private key; create one with: openssl genpkey" in by_file["text.key"]
    assert "not valid base64" in by_file["damaged.key"]
    assert "cannot read it" in by_file["folder.key"]
    assert "not a usable DKIM selector" in by_file["bad_selector.key"]
    assert "the folder's name must be the sending domain" in by_file["not_a_domain!"]
    assert str(caught.value).endswith(f"(and {len(problems) - 1} more)")


def test_a_keys_folder_that_is_missing_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        DkimKeyError, match=r"DISPATCHER_DKIM_KEYS_DIR names .*, which is not a folder"
    ):
        DkimKeys.load(tmp_path / "missing")


def test_the_private_key_never_shows_in_a_repr(tmp_path: Path, pems: dict[str, bytes]) -> None:
    put(tmp_path, "example.com", "portal", pems["rsa"])
    key = DkimKeys.load(tmp_path).key_for("example.com")

    assert key is not None
    assert "PRIVATE" not in repr(key)
    assert key._signing_key.decode()[40:80] not in repr(key)


def test_the_process_loads_its_keys_once_from_the_environment(
    tmp_path: Path, pems: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    put(tmp_path, "example.com", "portal", pems["ed25519"])
    monkeypatch.setenv("DISPATCHER_DKIM_KEYS_DIR", str(tmp_path))
    dkim_keys.process_keys.cache_clear()
    try:
        signed = dkim_keys.sign(message(), "example.com")
        put(tmp_path, "example.com", "zzz", pems["ed25519b"])  # not seen: loaded once
        assert tags(dkim_keys.sign(message(), "example.com"))["s"] == "portal"
        assert len(dkim_keys.dns_record("example.com")) == 1
        assert dkim.verify(signed, dnsfunc=resolver(dkim_keys.process_keys(), "example.com"))
        monkeypatch.setenv("DISPATCHER_DKIM_KEYS_DIR", "")
        dkim_keys.process_keys.cache_clear()
        assert len(dkim_keys.process_keys()) == 0
    finally:
        dkim_keys.process_keys.cache_clear()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Example.COM.", "example.com"),
        ("bücher.de", "xn--bcher-kva.de"),
        (" a-b.example ", "a-b.example"),
    ],
)
def test_normalize_domain(given: str, expected: str) -> None:
    assert normalize_domain(given) == expected


@pytest.mark.parametrize(
    "given", ["", "a..b", "-a.example", "a_b.example", "a b", "x" * 64 + ".de"]
)
def test_normalize_domain_refuses_what_is_no_host_name(given: str) -> None:
    with pytest.raises(ValueError, match="domain"):
        normalize_domain(given)


def test_selectors_differing_only_in_case_are_one_selector(
    tmp_path: Path, pems: dict[str, bytes]
) -> None:
    put(tmp_path, "example.com", "Portal", pems["ed25519"])
    assert DkimKeys.load(tmp_path).key_for("billing@example.com").selector == "portal"  # type: ignore[union-attr]

    put(tmp_path, "example.com", "portal", pems["ed25519b"])
    with pytest.raises(DkimKeyError, match=r"portal\.key: the same selector as Portal\.key"):
        DkimKeys.load(tmp_path)
