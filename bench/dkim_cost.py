"""What does a DKIM signature cost per e-mail? RSA-2048 against Ed25519.

Makes a fresh key of each kind with openssl, builds N typical e-mails (the
product's multipart/alternative layout, quoted-printable German text, about
5 KB on the wire, each with its own recipient and amounts) and signs every one
through ``DkimKeys.sign``, the way a worker would. Prints milliseconds per
signature (wall clock: mean, median, p99; and CPU time, which other load on the
machine does not inflate) and checks one signature of each with dkimpy.

Also prints the floor for RSA: OpenSSL's private-key operation alone, which no
signing code in any language avoids; and, with ``--dkimpy``, what dkimpy's own
``dkim.sign`` costs for the same e-mails (it parses the PEM key and computes
RSA in pure Python on every call: the figures before ``DkimKeys.sign`` did its
own signing).

The requirement: DKIM costs a worker that otherwise spends 2-3 ms of CPU per
e-mail at most 15 % of its throughput, so RSA-2048 under 0.4 ms of CPU per
e-mail and Ed25519 under 1 ms.

    python -m bench.dkim_cost [--emails 1000] [--dkimpy] [--json out.json]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.policy import compat32
from pathlib import Path

import dkim  # type: ignore[import-untyped]
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, utils

from dispatcher.domain.addresses import Mailbox
from dispatcher.mail.dkim import SIGNED_HEADERS, DkimKeys
from dispatcher.mail.render import RenderedEmail, build_message, message_id_for

_WIRE = compat32.clone(linesep="\r\n")
# The requirement, in ms of CPU per e-mail, and the worker's own cost around it.
BUDGET_MS = {"rsa-2048": 0.4, "ed25519": 1.0}
WORKER_MS = (2.0, 3.0)
_PARAGRAPH = (
    "Guten Tag {name},\n\n"
    "für Ihr Kundenkonto {account} liegt eine neue Rechnung über {amount} € bereit. "
    "Sie finden sie im Kundenportal unter https://portal.example.com/rechnungen/{account}. "
    "Bitte überweisen Sie den Betrag bis zum 15. des Monats; bei Fragen hilft Ihnen unser "
    "Kundenservice gern weiter.\n"
)


def typical_messages(count: int) -> list[bytes]:
    sender = Mailbox("rechnung@example.com", "Kundenportal Beispiel GmbH")
    messages = []
    for i in range(count):
        text = "\n".join(
            _PARAGRAPH.format(
                name=f"Kunde {i}", account=f"K{i:07d}", amount=f"{i % 997},{i % 100:02d}"
            )
            for _ in range(7)
        )
        html = "".join(f"<p>{line}</p>" for line in text.split("\n") if line)
        email = RenderedEmail(subject=f"Ihre Rechnung {i}", text=text, html=html, locale="de")
        recipient = Mailbox(f"kunde{i}@example.org", f"Kunde {i}")
        built = build_message(
            email,
            sender,
            recipient,
            message_id_for(f"ev-{i}", "invoice", recipient.address, "example.com"),
            datetime(2025, 3, 1, 8, 0, tzinfo=UTC),
        )
        messages.append(built.as_bytes(policy=_WIRE))
    return messages


def make_keys(root: Path) -> dict[str, tuple[DkimKeys, Path]]:
    """A fresh key of each kind, loaded as a worker loads them, and its file."""
    keys = {}
    for name, options in {
        "rsa-2048": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        "ed25519": ["-algorithm", "ed25519"],
    }.items():
        path = root / name / "example.com" / "bench.key"
        path.parent.mkdir(parents=True)
        subprocess.run(
            ["openssl", "genpkey", *options, "-out", str(path)], check=True, capture_output=True
        )
        keys[name] = (DkimKeys.load(root / name), path)
    return keys


def measure(
    sign: Callable[[bytes], bytes], messages: list[bytes]
) -> tuple[list[float], float, bytes]:
    """Wall-clock milliseconds per signature, CPU milliseconds per signature, the last one."""
    sign(messages[0])  # warm up
    timings = []
    signed = b""
    cpu_start = time.process_time()
    for message in messages:
        start = time.perf_counter()
        signed = sign(message)
        timings.append((time.perf_counter() - start) * 1000)
    cpu_ms = (time.process_time() - cpu_start) * 1000 / len(messages)
    return timings, cpu_ms, signed


def worker_signer(keys: DkimKeys) -> Callable[[bytes], bytes]:
    """DkimKeys.sign, as the worker calls it."""

    def sign(message: bytes) -> bytes:
        return keys.sign(message, "example.com")

    return sign


def published(keys: DkimKeys) -> Callable[..., bytes]:
    """A dnsfunc for dkim.verify answering with the TXT record dns_record() gives."""
    txt = "".join(re.findall(r'"([^"]*)"', keys.dns_record("example.com")[0])).encode()

    def dnsfunc(*_args: object, **_kwargs: object) -> bytes:
        return txt

    return dnsfunc


def dkimpy_signer(path: Path) -> Callable[[bytes], bytes]:
    """dkimpy's own dkim.sign with the same key, fields and canonicalisation."""
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if isinstance(private, ed25519.Ed25519PrivateKey):
        algorithm, key = b"ed25519-sha256", base64.b64encode(private.private_bytes_raw())
    else:
        algorithm, key = b"rsa-sha256", path.read_bytes()
    include = [name.lower().encode("ascii") for name in SIGNED_HEADERS]

    def sign(message: bytes) -> bytes:
        header: bytes = dkim.sign(
            message,
            b"bench",
            b"example.com",
            key,
            signature_algorithm=algorithm,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=include,
        )
        return header + message

    return sign


def private_key_operation_ms(path: Path, count: int) -> float:
    """CPU milliseconds of one private-key operation alone (OpenSSL), on a SHA-256 digest."""
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    digest = hashlib.sha256(b"bench").digest()
    if isinstance(private, rsa.RSAPrivateKey):
        key = private
        pkcs1, prehashed = padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())

        def operation() -> bytes:
            return key.sign(digest, pkcs1, prehashed)
    else:
        assert isinstance(private, ed25519.Ed25519PrivateKey)
        ed_key = private

        def operation() -> bytes:
            return ed_key.sign(digest)

    operation()
    start = time.process_time()
    for _ in range(count):
        operation()
    return (time.process_time() - start) * 1000 / count


def summary(timings: list[float], cpu_ms: float) -> dict[str, float]:
    ordered = sorted(timings)
    return {
        "mean_ms": statistics.mean(timings),
        "cpu_ms": cpu_ms,
        "median_ms": statistics.median(timings),
        "p99_ms": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))],
        "per_second": 1000 / cpu_ms,
    }


def line(label: str, figures: dict[str, float]) -> str:
    return (
        f"{label:22} CPU {figures['cpu_ms']:.3f} ms per signature "
        f"({figures['per_second']:.0f}/s on one core; wall mean {figures['mean_ms']:.3f}, "
        f"median {figures['median_ms']:.3f}, p99 {figures['p99_ms']:.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=1000)
    parser.add_argument(
        "--dkimpy", action="store_true", help="also time dkimpy's own dkim.sign (slow for RSA)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    messages = typical_messages(args.emails)
    sizes = [len(m) for m in messages]
    print(
        f"{len(messages)} e-mails, multipart/alternative, "
        f"{statistics.mean(sizes) / 1024:.1f} KB on average; milliseconds of CPU per e-mail"
    )
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (keys, path) in make_keys(Path(tmp)).items():
            dnsfunc = published(keys)
            timings, cpu_ms, signed = measure(worker_signer(keys), messages)
            assert dkim.verify(signed, dnsfunc=dnsfunc), name
            results[name] = summary(timings, cpu_ms)
            results[name]["key_operation_ms"] = private_key_operation_ms(path, len(messages))
            print(line(f"{name} DkimKeys.sign", results[name]))
            print(
                f"{'':22} of which the {name} private-key operation alone (OpenSSL): "
                f"{results[name]['key_operation_ms']:.3f} ms"
            )
            if args.dkimpy:
                timings, cpu_ms, signed = measure(dkimpy_signer(path), messages)
                assert dkim.verify(signed, dnsfunc=dnsfunc), name
                results[f"{name} dkimpy"] = summary(timings, cpu_ms)
                print(line(f"{name} dkim.sign", results[f"{name} dkimpy"]))
    for name, budget in BUDGET_MS.items():
        cost = results[name]["cpu_ms"]
        verdict = "meets" if cost < budget else "MISSES"
        shares = ", ".join(
            f"{100 * cost / (worker + cost):.1f} % of a {worker:g} ms worker"
            for worker in WORKER_MS
        )
        print(f"{name} {verdict} the budget of {budget:g} ms per e-mail ({cost:.3f} ms: {shares})")
    if args.json:
        args.json.write_text(json.dumps({"emails": len(messages), "results": results}, indent=2))


if __name__ == "__main__":
    main()
